"""Failed TLS handshakes under a flood, over loopback sockets (:mod:`phoneemu.net.tls` rules).

Rules under test: the first failed handshake after a quiet interval is said at once with its peer and
reason, the others at most once an interval per server with their exact count and their reasons counted,
the last partial interval when the flood ends or the server closes (:class:`phoneemu.net.tls.FailureLog`,
the refusals' rule; was: a warning line each — ~1,000 ``TLS handshake failed: UNEXPECTED_EOF_WHILE_READING``
lines as a 1,100-connection flood closed); each is still a line at INFO (``lab serve -v``) and reaches
``on_handshake_error``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable

import pytest

from phoneemu.net.tls import FailureLog, TlsServer, kinds_text
from tests.helpers import self_signed_server_context
from tests.polling import poll_until

HOST = "127.0.0.1"
FLOOD = 200
WAIT_S = 10.0
LOGGER = "phoneemu.net.tls"
#: a TLS 1.2 record header of a handshake record, then not a ClientHello: WRONG_VERSION_NUMBER or the like
NOT_A_HELLO = b"GET / HTTP/1.1\r\n\r\n"


async def _until(check: Callable[[], bool], what: str) -> None:
    await poll_until(check, what, within=WAIT_S, every=0.02)


def _failure_lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == LOGGER and r.levelno == level and "TLS handshake" in r.getMessage()]


def _count_of(line: str) -> int:
    """The failures one warning line says: ``tvs: 127.0.0.1:N: TLS handshake failed: WHY`` is one, ``tvs:
    1,093 TLS handshakes failed in the last 1.0 s (...)`` its count."""
    counted = re.fullmatch(r"tvs: ([\d,]+) TLS handshakes? failed in the last \d+\.\d s \((.+)\)", line)
    if counted:
        return int(counted.group(1).replace(",", ""))
    assert re.fullmatch(r"tvs: 127\.0\.0\.1:\d+: TLS handshake failed: .+", line), line
    return 1


def _said(caplog: pytest.LogCaptureFixture) -> int:
    return sum(_count_of(line) for line in _failure_lines(caplog, logging.WARNING))


def test_a_flood_of_failed_handshakes_is_said_once_a_second_with_its_exact_count(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    told: list[str] = []

    async def never_called(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        w.close()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        ctx = self_signed_server_context("flood", 1)
        async with TlsServer(never_called, ctx, HOST, 0, name="tvs", handshake_timeout=WAIT_S,
                             on_handshake_error=lambda peer, _why: told.append(peer)) as srv:
            started = loop.time()
            for n in range(FLOOD):
                _r, w = await asyncio.open_connection(HOST, srv.port)
                if n % 2:
                    w.write(NOT_A_HELLO)  # a reason of its own
                w.close()
            await _until(lambda: srv.handshake_failures == FLOOD, "every handshake failed")
            # the flood over, its last interval is said by the timer, not only at the close
            await _until(lambda: _said(caplog) == FLOOD, "every failure said")
            elapsed = loop.time() - started
            warnings = _failure_lines(caplog, logging.WARNING)
            assert 2 <= len(warnings) <= 2 + int(elapsed), (len(warnings), elapsed, warnings[:3])
            first = r"tvs: 127\.0\.0\.1:\d+: TLS handshake failed: \S.*"
            assert re.fullmatch(first, warnings[0]), warnings[0]
            counted = [line for line in warnings[1:] if "in the last" in line]
            assert counted and all("(" in line for line in counted), counted
            # nothing lost: every one at INFO besides (lab serve -v), and told
            each = [m for m in _failure_lines(caplog, logging.INFO) if ": TLS handshake failed: " in m]
            assert len(each) == FLOOD - 1, len(each)
        assert _said(caplog) == FLOOD  # the close said nothing twice
        assert len(told) == FLOOD

    asyncio.run(main())


def test_the_last_count_is_said_when_the_server_closes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)

    async def main() -> None:
        log = FailureLog(logging.getLogger(LOGGER), "tvs", interval=WAIT_S * 10)
        for n in range(5):
            log.failed(f"127.0.0.1:{1000 + n}", "TLS handshake failed: WHY", "A" if n < 4 else "B")
        assert _failure_lines(caplog, logging.WARNING) == ["tvs: 127.0.0.1:1000: TLS handshake failed: WHY"]
        log.flush()
        lines = _failure_lines(caplog, logging.WARNING)
        counted = r"tvs: 4 TLS handshakes failed in the last 0\.\d s \(A 3, B 1\)"
        assert len(lines) == 2 and re.fullmatch(counted, lines[1]), lines
        assert log.total == 5

    asyncio.run(main())


def test_without_an_event_loop_each_failure_is_said_at_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    log = FailureLog(logging.getLogger(LOGGER), "tvs")
    log.failed("127.0.0.1:1", "TLS handshake failed: A", "A")
    log.failed("127.0.0.1:2", "TLS handshake failed: A", "A")
    log.flush()
    assert len(_failure_lines(caplog, logging.WARNING)) == 2


def test_the_reasons_said_are_the_most_frequent_the_rest_summed() -> None:
    assert kinds_text({"B": 3, "A": 1_090}) == "A 1,090, B 3"
    assert kinds_text({k: n for n, k in enumerate("abcdef", 1)}) == "f 6, e 5, d 4, c 3, 3 of 2 other reasons"
