"""Hostile clients against the lab's SIP registrar and HTTPS application server (campaign findings).

Rules: a client sending a message one byte at a time cannot hold a registrar connection (each message
must be complete within ``read_timeout``, :mod:`phoneemu.lab.sip_service`); a client that leaves before
taking an answer ends its connection quietly, logged — no exception escapes a handler."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from phoneemu.lab.capf_service import CapfHandler, CapfSessionLog
from phoneemu.lab.https_service import HttpsAppHandler
from phoneemu.lab.sip_service import SipRegistrar
from phoneemu.lab.tvs_service import TvsConnectionLog, TvsHandler
from phoneemu.net.tls import TlsServer
from phoneemu.protocols import capf, sip, tvs
from tests.helpers import run

HOST = "127.0.0.1"
MAC = "0011223344DD"


def _register() -> bytes:
    return sip.build_message("REGISTER sip:127.0.0.1 SIP/2.0", [
        ("Via", "SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKdrip"), ("From", f"<sip:SEP{MAC}@127.0.0.1>;tag=t"),
        ("To", f"<sip:SEP{MAC}@127.0.0.1>"), ("Call-ID", "drip"), ("CSeq", "1 REGISTER"),
        ("Contact", f"<sip:SEP{MAC}@127.0.0.1;transport=tcp>")])


def _registrar(logged: list[tuple[str, str, str, str]], read_timeout: float) -> SipRegistrar:
    """A registrar knowing ``MAC`` (no digest user: a whole REGISTER is answered 200 at once)."""
    return SipRegistrar(lambda mac: (None, None) if mac == MAC else None, read_timeout=read_timeout,
                        on_log=lambda *entry: logged.append(entry))


async def _drip(port: int, data: bytes, *, interval: float, most: int) -> tuple[int, bytes]:
    """Send ``data`` one byte per ``interval``, at most ``most`` bytes; (bytes sent when the server
    closed, or ``most`` when it did not; what it answered)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    sent = 0
    try:
        while sent < min(most, len(data)):
            writer.write(data[sent:sent + 1])
            await writer.drain()
            sent += 1
            try:
                got = await asyncio.wait_for(reader.read(4096), interval)
            except TimeoutError:
                continue
            return sent, got
        return sent, b""
    except ConnectionError:
        return sent, b""
    finally:
        writer.close()


def test_a_register_dripped_one_byte_at_a_time_is_cut_at_read_timeout() -> None:
    """A REGISTER sent a byte every 0.05 s, each byte well inside ``read_timeout`` (0.4 s) of the one
    before: the registrar closes the connection once the message is 0.4 s old, logged ``timeout`` with
    the bytes it had. (Before: every byte started the timeout again — a connection held for as long as
    the client liked, the whole REGISTER answered 200 after many seconds.)"""
    logged: list[tuple[str, str, str, str]] = []
    message = _register()
    assert len(message) > 60

    async def main() -> tuple[int, bytes]:
        async with TlsServer(_registrar(logged, 0.4), None, HOST, 0, name="sip") as srv:
            return await _drip(srv.port, message, interval=0.05, most=60)  # 3 s at most

    sent, answer = run(main())
    assert answer == b"" and sent < 60, (sent, answer[:60])
    timeouts = [entry for entry in logged if entry[2] == "timeout"]
    assert len(timeouts) == 1 and "no complete message within 0.4s" in timeouts[0][3], logged
    assert "byte(s) of one received" in timeouts[0][3]


def test_crlf_keep_alives_hold_an_idle_registrar_connection() -> None:
    """CRLF keep-alives (RFC 5626 §4.4.1) more often than ``read_timeout`` hold the connection past it;
    a REGISTER after them is answered."""
    logged: list[tuple[str, str, str, str]] = []

    async def main() -> bytes:
        async with TlsServer(_registrar(logged, 0.3), None, HOST, 0, name="sip") as srv:
            reader, writer = await asyncio.open_connection(HOST, srv.port)
            try:
                for _ in range(4):  # 0.6 s in all, twice read_timeout
                    writer.write(b"\r\n\r\n")
                    await writer.drain()
                    await asyncio.sleep(0.15)
                writer.write(_register())
                return await asyncio.wait_for(reader.read(4096), 2)
            finally:
                writer.close()

    assert run(main()).startswith(b"SIP/2.0 200 OK"), logged


class _GoneWriter:
    """A StreamWriter whose client has left: from its ``drains``-th call on (0: the first), ``drain``
    raises as asyncio's does after connection_lost. ``on_write(data)`` sees every write."""

    def __init__(self, *, drains: int = 0, on_write: Callable[[bytes], None] | None = None) -> None:
        self.written = b""
        self.closed = False
        self._drains_left = drains
        self._on_write = on_write

    def write(self, data: bytes) -> None:
        self.written += data
        if self._on_write is not None:
            self._on_write(data)

    async def drain(self) -> None:
        if self._drains_left > 0:
            self._drains_left -= 1
            return
        raise ConnectionResetError("Connection lost")

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name in ("peername", "sockname") else default

    def close(self) -> None:
        self.closed = True

    async def wait_closed(self) -> None:
        return None

    @property
    def transport(self) -> _GoneTransport:
        return _GoneTransport(self)


class _GoneTransport:
    """The transport of a :class:`_GoneWriter`: what was written is unsent (the client left) until the
    writer is closed."""

    def __init__(self, writer: _GoneWriter) -> None:
        self._writer = writer

    def get_write_buffer_size(self) -> int:
        return 0 if self._writer.closed else len(self._writer.written)

    def abort(self) -> None:
        self._writer.closed = True


def _reader(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


def test_a_malformed_sip_message_from_a_client_gone_ends_quietly() -> None:
    """A malformed message is logged ``malformed``; its 400 cannot be sent (the client left): the
    handler ends without an exception (before: ConnectionResetError escaped, TlsServer's warning
    "connection from ... failed")."""
    logged: list[tuple[str, str, str, str]] = []
    writer = _GoneWriter()

    async def main() -> None:
        await _registrar(logged, 1.0)(_reader(b"NOT SIP AT ALL\r\n\r\n"), writer)  # type: ignore[arg-type]

    run(main(), limit=5)
    assert [entry[2] for entry in logged] == ["malformed"]
    assert writer.written.startswith(b"SIP/2.0 400 Bad Request") and writer.closed


@pytest.mark.parametrize("request_head", [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                                          b"BREW /pot HTCPCP/1.0\r\n\r\n"])
def test_an_https_client_gone_before_the_answer_is_logged_not_an_error(
        request_head: bytes, caplog: pytest.LogCaptureFixture) -> None:
    """The HTTPS application server's answer to a client that left: logged (INFO), not counted as
    answered, no exception (before: ConnectionResetError escaped the handler — TlsServer's warning
    "https: connection from ... failed: ConnectionResetError", counted in its ``errors``)."""
    seen: list[tuple[str, str, int]] = []
    handler = HttpsAppHandler(read_timeout=1.0, on_log=lambda *entry: seen.append(entry))

    async def main() -> None:
        await handler(_reader(request_head), _GoneWriter())  # type: ignore[arg-type]

    with caplog.at_level(logging.INFO, logger="phoneemu.lab.https"):
        run(main(), limit=5)
    assert handler.answered == 0 and seen == []
    assert any("closed before taking the" in r.getMessage() for r in caplog.records), caplog.text


def test_a_capf_phone_gone_before_end_session_is_logged_not_an_error() -> None:
    """A phone that sends its AUTH_RESPONSE and leaves: the END_SESSION (nothing pending) cannot be sent;
    the session ends logged ``closed: connection lost ...`` naming the outcome, no exception (before:
    ConnectionResetError escaped the handler, TlsServer's "capf: connection from ... failed", and the
    session had no log line)."""
    seen: list[CapfSessionLog] = []
    lab = SimpleNamespace(state=SimpleNamespace(phones={MAC: None}), capf_pending=lambda _mac: None)
    handler = CapfHandler(lab, read_timeout=1.0, session_timeout=2.0, on_log=seen.append)  # type: ignore[arg-type]

    async def main() -> None:
        reader = asyncio.StreamReader()

        def answer_auth_request(frame: bytes) -> None:  # the phone's AUTH_RESPONSE, then it is gone
            sent = capf.decode(frame)
            if sent.command != capf.CapfCommand.AUTH_REQUEST:
                return
            reader.feed_data(capf.encode(capf.message(capf.CapfCommand.AUTH_RESPONSE, sent.session_id, (
                capf.CapfTag.DEVICE_NAME, capf.encode_cstring(f"SEP{MAC}")))))
            reader.feed_eof()

        writer = _GoneWriter(drains=1, on_write=answer_auth_request)  # AUTH_REQUEST taken, END_SESSION not
        await handler(reader, writer)  # type: ignore[arg-type]

    run(main(), limit=5)
    assert [(e.device_name, e.operation) for e in seen] == [(f"SEP{MAC}", "none")], seen
    assert seen[0].outcome.startswith("closed: connection lost in state ended after nothing-pending: "), seen


def test_a_tvs_client_gone_before_its_answer_is_refused_not_an_error() -> None:
    """The asyncio TVS server (``tvs_impl="asyncio"``): a VERIFY answered to a client that left is logged
    as its connection closed — ``connection lost before the answer was taken`` — after the request's own
    line, no exception (before: ConnectionResetError escaped the handler, TlsServer's "tvs: connection from
    ... failed")."""
    seen: list[TvsConnectionLog] = []
    handler = TvsHandler(lambda _key: None, read_timeout=1.0, on_log=seen.append)
    request = tvs.encode(tvs.verify_request(7, f"CP-8861-SEP{MAC}", b"\x30\x03\x02\x01\x01"))

    async def main() -> None:
        await handler(_reader(request), _GoneWriter())  # type: ignore[arg-type]

    run(main(), limit=5)
    outcomes = [e.outcome.split(":", 1)[0] for e in seen]
    assert outcomes == ["invalid", "connection lost before the answer was taken"], seen
    assert handler.answered == 1 and handler.refused == 1
