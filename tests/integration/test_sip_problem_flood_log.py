"""A flood of bad SIP requests is said under the lab's flood rule (:mod:`phoneemu.lab.sip_service` rules).

Rule under test: the registrar's problems (``malformed``, ``truncated``, ``timeout``) follow the rule of the
lab's other servers (:class:`phoneemu.net.tls.FailureLog`): the first after a quiet second at once at
``problem_log_level``, the others of each second in one line with their count (each still a line at
INFO), ``flush()`` saying the last count. Was: a WARNING line each — and a request missing its dialog
headers is answered 400 (fde08ab), so one connection wrote a warning per request, as fast as it sent them
(the disk-filling flood the rule was made for). The connection rule (closed after ``max_refused_in_a_row``
refusals) is raised above the flood here: these tests are about the log.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

import pytest

from phoneemu.lab.sip_service import SipRegistrar
from phoneemu.net.tls import TlsServer
from tests.helpers import run

HOST = "127.0.0.1"
LOGGER = "phoneemu.lab.sip"
FLOOD = 300
#: a request with none of Via, From, To, Call-ID, CSeq: 400 (module rules)
HEADERLESS = b"OPTIONS sip:lab SIP/2.0\r\nContent-Length: 0\r\n\r\n"
#: no device known (none is asked: every request is refused first)
KNOWN: dict[str, tuple[str | None, str | None]] = {}
_COUNTED = re.compile(r"sip: ([0-9,]+) SIP problems? in the last ")


async def _flood(registrar: SipRegistrar) -> float:
    """Send :data:`FLOOD` header-less requests on one connection and read every answer; the seconds taken
    (the registrar flushed at the end, as the lab's stop does)."""
    start = time.monotonic()
    async with TlsServer(registrar, None, HOST, 0, name="sip") as srv:
        reader, writer = await asyncio.open_connection(HOST, srv.port)
        writer.write(HEADERLESS * FLOOD)
        await writer.drain()
        answers = 0
        data = b""
        while answers < FLOOD:
            chunk = await asyncio.wait_for(reader.read(65536), 10)
            assert chunk, f"closed after {answers} answers"
            data += chunk
            answers = data.count(b"SIP/2.0 400 ")
        writer.close()
    registrar.flush()
    return time.monotonic() - start


def test_a_flood_of_bad_requests_is_a_line_a_second_with_its_count(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    took = run(_flood(SipRegistrar(KNOWN.get, read_timeout=5.0, max_refused_in_a_row=FLOOD + 1)))
    records = [r for r in caplog.records if r.name == LOGGER]
    warned = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    # the first at once, then at most a line a second (and the last count, said by flush)
    assert 1 <= len(warned) <= 2 + int(took), warned[:5]
    assert warned[0].startswith("sip: 127.0.0.1:") and " malformed OPTIONS: no Via, From, To" in warned[0]
    counted = [int(m[1].replace(",", "")) for line in warned[1:] if (m := _COUNTED.match(line))]
    assert len(counted) == len(warned) - 1, warned
    assert 1 + sum(counted) == FLOOD  # exact: nothing lost, nothing counted twice
    assert all("(malformed " in line for line in warned[1:]), warned
    each = [r for r in records if r.levelno == logging.INFO and " malformed OPTIONS: " in r.getMessage()]
    assert len(each) == FLOOD - 1  # each one still a line at INFO (lab serve -v)


def test_the_problem_level_is_the_flood_lines_level(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    registrar = SipRegistrar(KNOWN.get, read_timeout=5.0, problem_log_level=logging.INFO,
                             max_refused_in_a_row=FLOOD + 1)
    assert registrar.problem_log_level == logging.INFO
    run(_flood(registrar))
    assert not [r for r in caplog.records if r.name == LOGGER and r.levelno > logging.INFO]
