"""The lean TLS client connection (phoneemu.net.tls_client) over loopback: bytes, errors, bounds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from phoneemu.crypto.certs import cert_der
from phoneemu.errors import TransportError
from phoneemu.net.tls import (
    CUCM_TVS_CIPHERS,
    TlsServer,
    phone_client_context,
    server_context,
)
from phoneemu.net.tls_client import TlsClientConnection
from tests.helpers import run_within
from tests.integration.test_tls import HOST, echo, identity

run = run_within(20)


def test_round_trip_peer_certificate_and_cucm_cipher() -> None:
    """A phone (TLS 1.2) against a server with the CUCM 14 TVS list gets RSA key transport (§E.1)."""
    key, cert = identity("rsa2048", "tvs-lean")

    async def main() -> None:
        sctx = server_context(cert, key, min_version="1.0", max_version="1.3", ciphers=CUCM_TVS_CIPHERS)
        async with TlsServer(echo, sctx, HOST, 0) as srv:
            conn = await TlsClientConnection.open(HOST, srv.port, phone_client_context(("1.2",)), timeout=5)
            try:
                await conn.send(b"hello")
                got = b""
                for _ in range(10):
                    data = await conn.recv()
                    if not data:
                        break
                    got += data
                assert got == b"hello-"
                assert conn.peer_cert == cert_der(cert)
                assert conn.description == "TLSv1.2 AES256-GCM-SHA384"
            finally:
                conn.close()

    run(main())


def test_old_phone_tls10_still_connects() -> None:
    key, cert = identity("rsa2048", "tvs-old")

    async def main() -> None:
        sctx = server_context(cert, key, min_version="1.0", max_version="1.3", ciphers=CUCM_TVS_CIPHERS)
        async with TlsServer(echo, sctx, HOST, 0) as srv:
            conn = await TlsClientConnection.open(HOST, srv.port, phone_client_context(("1.0",)), timeout=5)
            conn.close()
            assert conn.description.startswith("TLSv1 ")

    run(main())


async def _raw_server(handler: object) -> tuple[asyncio.Server, int]:
    srv = await asyncio.start_server(handler, HOST, 0)  # type: ignore[arg-type]
    return srv, int(srv.sockets[0].getsockname()[1])


# a server that closes with our ClientHello unread resets the connection: "unreachable", like a lost link
@pytest.mark.parametrize(("behaviour", "kinds"), [("close", {"unreachable", "tls"}), ("garbage", {"tls"}),
                                                  ("silent", {"timeout"})])
def test_broken_servers_are_named_errors(behaviour: str, kinds: set[str]) -> None:
    async def main() -> None:
        done = asyncio.Event()

        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if behaviour == "garbage":
                await reader.read(100)
                writer.write(b"HTTP/1.0 400 nonsense\r\n\r\n" * 4)
                await writer.drain()
            elif behaviour == "silent":
                await done.wait()
            writer.close()

        srv, port = await _raw_server(handler)
        try:
            with pytest.raises(TransportError) as err:
                await TlsClientConnection.open(HOST, port, phone_client_context(("1.2",)), timeout=0.5)
            assert err.value.kind in kinds
            assert f"{HOST}:{port}" in str(err.value)
        finally:
            done.set()
            srv.close()
            await srv.wait_closed()

    run(main())


def test_connection_refused_is_unreachable() -> None:
    async def main() -> None:
        srv, port = await _raw_server(lambda r, w: None)
        srv.close()
        await srv.wait_closed()
        with pytest.raises(TransportError) as err:
            await TlsClientConnection.open(HOST, port, phone_client_context(("1.2",)), timeout=1)
        assert err.value.kind == "unreachable"

    run(main())


def test_phone_key_log_written_for_wireshark(tmp_path: Path) -> None:
    """The phone's key log (``Phone(keylog=...)``) works through the lean client too."""
    key, cert = identity("rsa2048", "tvs-keylog")
    keylog = tmp_path / "phone.keys"

    async def main() -> None:
        sctx = server_context(cert, key, min_version="1.0", max_version="1.3", ciphers=CUCM_TVS_CIPHERS)
        async with TlsServer(echo, sctx, HOST, 0) as srv:
            conn = await TlsClientConnection.open(HOST, srv.port, phone_client_context(("1.2",), keylog),
                                                  timeout=5)
            conn.close()

    run(main())
    assert "CLIENT_RANDOM " in keylog.read_text()


def test_host_name_resolved_and_each_address_tried() -> None:
    """A TVS named by host name (configs may carry names): resolved, addresses tried in order."""
    key, cert = identity("rsa2048", "tvs-named")

    async def main() -> None:
        sctx = server_context(cert, key, min_version="1.0", max_version="1.3", ciphers=CUCM_TVS_CIPHERS)
        async with TlsServer(echo, sctx, HOST, 0) as srv:  # 127.0.0.1 only: "localhost" may try ::1 first
            conn = await TlsClientConnection.open("localhost", srv.port, phone_client_context(("1.2",)),
                                                  timeout=5)
            assert conn.peer_cert == cert_der(cert)
            conn.close()

    run(main())
