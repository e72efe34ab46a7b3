"""The lab registrar's log levels, over loopback (:mod:`phoneemu.lab.sip_service` rules).

Rules under test: a problem of the client's message or connection — ``malformed`` (400), ``truncated``
(closed inside a message), ``timeout`` (cut by the server) — is a WARNING line, as TVS's and CAPF's are
(was: INFO, so a plain ``lab serve`` said nothing of a malformed SIP message; a truncated one was not
logged at all); a phone's own outcomes (registered, unknown-device ...) stay at INFO; ``problem_log_level``
lowers the problems (a scenario's lab).
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from phoneemu.lab.sip_service import SipRegistrar
from phoneemu.net.tls import TlsServer
from tests.helpers import run
from tests.sip_helpers import SLOW_MAC, pipelined_register

HOST = "127.0.0.1"
LOGGER = "phoneemu.lab.sip"
READ_TIMEOUT = 0.3
KNOWN = {SLOW_MAC: (None, None)}  # a device without a digest user: registered at once


async def _talk(registrar: SipRegistrar, data: bytes, *, close: bool) -> bytes:
    """Send ``data`` to ``registrar`` over TCP (then our side's end when ``close``); what it answers."""
    async with TlsServer(registrar, None, HOST, 0, name="sip") as srv:
        reader, writer = await asyncio.open_connection(HOST, srv.port)
        writer.write(data)
        await writer.drain()
        if close:
            writer.write_eof()
        out = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        for _ in range(100):  # the handler's last line (a truncated message) is written as it ends
            if not srv._active:
                break
            await asyncio.sleep(0.02)
        return out


def _lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOGGER]


MALFORMED = b"REGISTER sip:lab SIP/2.0\r\nbroken line\r\n\r\n"


@pytest.mark.parametrize(("data", "close", "outcome"), [
    (MALFORMED, False, "malformed"),
    (pipelined_register(1)[:60], True, "truncated"),
    (pipelined_register(1)[:60], False, "timeout"),
], ids=["malformed", "truncated", "timeout"])
def test_a_problem_of_the_clients_message_is_a_warning(data: bytes, close: bool, outcome: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    out = run(_talk(SipRegistrar(KNOWN.get, read_timeout=READ_TIMEOUT), data, close=close))
    assert out.startswith(b"SIP/2.0 400 ") if outcome == "malformed" else out == b"", out[:80]
    lines = _lines(caplog)
    assert len(lines) == 1 and lines[0][0] == logging.WARNING, lines
    assert lines[0][1].startswith("sip: 127.0.0.1:") and f" ?: {outcome} " in lines[0][1], lines
    if outcome == "truncated":
        assert lines[0][1].endswith("connection closed inside a message (60 byte(s) of it received)"), lines


def test_a_phones_own_outcomes_stay_at_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    unknown = pipelined_register(1).replace(SLOW_MAC.encode(), b"0011223344BB")
    out = run(_talk(SipRegistrar(KNOWN.get, read_timeout=READ_TIMEOUT), pipelined_register(1) + unknown,
                    close=True))
    assert out.startswith(b"SIP/2.0 200 ") and b"SIP/2.0 404 " in out, out[:200]
    lines = _lines(caplog)
    assert [(level, line.split(": ")[2].split(" ")[0]) for level, line in lines] == [
        (logging.INFO, "registered"), (logging.INFO, "unknown-device")], lines


def test_a_scenarios_lab_says_the_problems_at_its_level(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    run(_talk(SipRegistrar(KNOWN.get, read_timeout=READ_TIMEOUT, problem_log_level=logging.INFO), MALFORMED,
              close=False))
    assert [level for level, _line in _lines(caplog)] == [logging.INFO]
