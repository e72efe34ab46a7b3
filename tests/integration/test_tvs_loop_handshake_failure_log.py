"""The lab's loop TVS (``lab serve``'s default, :mod:`phoneemu.lab.tvs_loop`) logs failed TLS handshakes by
:class:`phoneemu.net.tls.TlsServer`'s rule, over loopback: the first at once, then at most a line a second
with the exact count (:class:`phoneemu.net.tls.FailureLog`; was: a warning line each, a flood's worth).
"""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.tvs_loop import LoopTvsServer
from phoneemu.lab.tvs_service import TvsHandler
from tests.helpers import lab_template
from tests.polling import poll_until

HOST = "127.0.0.1"
FLOOD = 120
WAIT_S = 10.0
LOGGER = "phoneemu.lab.tvs"
NOT_A_HELLO = b"GET / HTTP/1.1\r\n\r\n"

template = lab_template("tvsloopfail", seed=None, phones={})


def _said(lines: list[str]) -> int:
    """The failures the warning lines say: a line with a peer is one, a counted line its count."""
    total = 0
    for line in lines:
        counted = re.fullmatch(r"tvs: ([\d,]+) TLS handshakes? failed in the last \d+\.\d s \(.+\)", line)
        total += int(counted.group(1).replace(",", "")) if counted else 1
        assert counted or re.fullmatch(r"tvs: 127\.0\.0\.1:\d+: TLS handshake failed: .+", line), line
    return total


def test_a_flood_of_failed_handshakes_is_counted_not_said_each(cluster: LabCluster,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)

    def warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records
                if r.name == LOGGER and r.levelno == logging.WARNING and "TLS handshake" in r.getMessage()]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        handler = TvsHandler(cluster.tvs_lookup, read_timeout=WAIT_S)
        async with LoopTvsServer(handler, cluster.tvs_identity, HOST, 0, handshake_timeout=WAIT_S) as srv:
            started = loop.time()
            for n in range(FLOOD):
                _r, w = await asyncio.open_connection(HOST, srv.port)
                if n % 2:
                    w.write(NOT_A_HELLO)
                w.close()
            await poll_until(lambda: srv.errors == FLOOD, "every handshake failed", within=WAIT_S, every=0.02)
            await poll_until(lambda: _said(warnings()) == FLOOD, "every failure said", within=WAIT_S,
                             every=0.02)
            elapsed = loop.time() - started
            assert len(warnings()) <= 2 + int(elapsed), (len(warnings()), elapsed, warnings()[:3])
        assert _said(warnings()) == FLOOD  # the close said nothing twice

    asyncio.run(main())
