"""Connection errors in words (phoneemu.net._oserror): never Python's errno text, never an empty reason
after "cannot connect:" (a TLS peer that closed during the handshake said "cannot connect: ")."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest

from phoneemu.errors import TransportError
from phoneemu.net._oserror import os_error_text
from phoneemu.net.tls import open_tls_connection


def test_connect_call_failed_is_said_in_words() -> None:
    exc = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 6970)")
    assert os_error_text(exc) == "connection refused by 127.0.0.1:6970"
    both = OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 2445, 0, 0), "
                   "[Errno 111] Connect call failed ('127.0.0.1', 2445)")
    assert os_error_text(both) == ("Multiple exceptions: connection refused by [::1]:2445, "
                                   "connection refused by 127.0.0.1:2445")


def test_an_error_without_text_says_what_happened() -> None:
    assert os_error_text(ConnectionResetError()) == "the connection closed (ConnectionResetError)"
    assert os_error_text(OSError(13, "Permission denied")) == "permission denied"


def test_a_tls_peer_closing_during_the_handshake_is_not_an_empty_reason() -> None:
    """A CAPF or TVS server that accepts and closes at once: the client's error names what happened."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    async def main() -> str:
        loop = asyncio.get_running_loop()

        async def close_at_once() -> None:
            conn, _ = await loop.sock_accept(listener)
            conn.close()
        listener.setblocking(False)
        closer = asyncio.ensure_future(close_at_once())
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        try:
            await open_tls_connection("127.0.0.1", port, ctx, timeout=5)
        except TransportError as exc:
            return str(exc)
        finally:
            await closer
        raise AssertionError("connected")

    try:
        text = asyncio.run(main())
    finally:
        listener.close()
    assert not text.rstrip().endswith(":"), text
    assert f"127.0.0.1:{port}" in text


@pytest.mark.parametrize("exc", [OSError(), ConnectionAbortedError(), BrokenPipeError()])
def test_every_reason_has_words(exc: OSError) -> None:
    assert os_error_text(exc).strip()


def test_the_tvs_client_socket_says_refused_in_words() -> None:
    from phoneemu.net import tls_client

    async def main() -> str:
        try:
            await tls_client._connect(asyncio.get_running_loop(), "127.0.0.1", 1)
        except TransportError as exc:
            return str(exc)
        raise AssertionError("connected to port 1")
    assert asyncio.run(main()) == "127.0.0.1:1: cannot connect: 127.0.0.1: connection refused"
