"""The lab CAPF server on a client that leaves inside a frame (spec §F.2; :mod:`phoneemu.lab.capf_service`).

Rule: a connection that ends inside a frame the client began is logged ``truncated`` as a problem, with the
bytes of the frame received and the state; one that ends between frames is a clean ``closed: peer closed``
(INFO)."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest

from phoneemu.lab.capf_service import CapfHandler, CapfSessionLog
from phoneemu.net.tls import TlsServer
from phoneemu.protocols import capf
from tests.helpers import run

HOST = "127.0.0.1"
MAC = "0011223344DF"


def _lab() -> SimpleNamespace:
    """Just what :class:`CapfHandler` reads of a cluster that knows ``MAC`` with nothing pending."""
    return SimpleNamespace(state=SimpleNamespace(phones={MAC: None}), capf_pending=lambda _mac: None)


def _auth_response(session_id: int) -> bytes:
    return capf.encode(capf.message(capf.CapfCommand.AUTH_RESPONSE, session_id,
                                    (capf.CapfTag.DEVICE_NAME, capf.encode_cstring(f"SEP{MAC}"))))


def _session(sent: int) -> CapfSessionLog:
    """The session logged when a client reads AUTH_REQUEST, sends the first ``sent`` bytes of its
    AUTH_RESPONSE and closes."""
    seen: list[CapfSessionLog] = []
    handler = CapfHandler(_lab(), read_timeout=5.0, session_timeout=20.0,  # type: ignore[arg-type]
                          on_log=seen.append)

    async def main() -> None:
        async with TlsServer(handler, None, HOST, 0) as srv:
            reader, writer = await asyncio.open_connection(HOST, srv.port)
            request = await auth_request(reader)
            writer.write(_auth_response(request.session_id)[:sent])
            await writer.drain()
            writer.close()
            for _ in range(250):  # the handler logs the session's end as it sees the close: bounded wait
                if seen:
                    return
                await asyncio.sleep(0.02)

    run(main(), limit=30)
    assert len(seen) == 1, seen
    return seen[0]


@pytest.mark.parametrize("sent", [1, 5, 9])
def test_a_client_closing_inside_its_frame_is_logged_truncated_as_a_problem(
        sent: int, caplog: pytest.LogCaptureFixture) -> None:
    """Was ``closed: peer closed in state wait-auth`` at INFO: a cut frame looked like a clean close."""
    with caplog.at_level(logging.INFO, logger="phoneemu.lab.capf"):
        entry = _session(sent)
    assert entry.outcome == (f"truncated: peer closed inside a frame ({sent} byte(s) received) "
                             "in state wait-auth"), entry
    assert any(r.levelno >= logging.WARNING and "truncated" in r.getMessage() for r in caplog.records)


def test_a_client_closing_between_frames_is_a_clean_close(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="phoneemu.lab.capf"):
        entry = _session(0)
    assert entry.outcome == "closed: peer closed in state wait-auth", entry
    assert not any(r.levelno >= logging.WARNING for r in caplog.records if r.name == "phoneemu.lab.capf")


async def auth_request(reader: asyncio.StreamReader) -> capf.CapfMessage:
    """The server's first message, its AUTH_REQUEST, read within 5 s a read (the server closing first: an
    assertion)."""
    decoder = capf.FrameDecoder()
    got: list[capf.CapfMessage] = []
    while not got:
        chunk = await asyncio.wait_for(reader.read(4096), 5)
        assert chunk, "the server closed before AUTH_REQUEST"
        got = decoder.feed(chunk)
    return got[0]
