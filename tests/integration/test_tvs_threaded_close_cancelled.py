"""``ThreadedTvsServer.close`` cancelled while it joins its threads (phoneemu.lab.tvs_threaded): the listening
socket is closed all the same. Before, the cancel skipped ``listener.close()`` (and the close forgot its
threads), so the socket stayed open while the loop ran and was left to the garbage collector."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import warnings
from pathlib import Path

import pytest

from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.tvs_service import TvsHandler
from phoneemu.lab.tvs_threaded import ThreadedTvsServer
from phoneemu.net.tvs_client import tvs_verify
from phoneemu.protocols.tvs import QueryKey, TvsEntry
from tests.helpers import lab_template, open_sockets, run

HOST = "127.0.0.1"
template = lab_template("tvsclosecancel", seed=13, phones={})

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd (Linux)")


def test_close_cancelled_mid_join_still_closes_the_listener(cluster: LabCluster) -> None:
    """A worker held in a slow lookup keeps the join waiting; the close is cancelled then. The listener is
    closed at once; the worker ends when its lookup returns; no socket is left open, none to the GC."""
    entered, release = threading.Event(), threading.Event()

    def slow_lookup(key: bytes | QueryKey) -> TvsEntry | None:
        entered.set()
        release.wait(5.0)
        return None

    async def main() -> int:
        before = open_sockets()
        srv = ThreadedTvsServer(TvsHandler(slow_lookup), cluster.tvs_identity, HOST, 0, workers=2,
                                stop_timeout=5.0)
        await srv.start()
        query = asyncio.ensure_future(tvs_verify([(HOST, srv.port)], "CP-8861-SEP001122334455",
                                                 b"\x30\x03\x02\x01\x07", timeout=5))
        for _ in range(250):  # the worker in the lookup
            if entered.is_set():
                break
            await asyncio.sleep(0.02)
        closing = asyncio.ensure_future(srv.close())
        await asyncio.sleep(0.05)  # in the join: the worker is still in its lookup
        assert not closing.done()
        closing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await closing
        release.set()
        with contextlib.suppress(Exception):
            await query
        for _ in range(250):  # the worker ends on its own
            if not [t for t in threading.enumerate() if t.name.startswith("tvs-")]:
                break
            await asyncio.sleep(0.02)
        return open_sockets() - before  # the server still referenced: nothing the GC could close

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert run(main(), limit=20) == 0  # old code: 1, the listener
        gc.collect()
    assert [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)] == []
