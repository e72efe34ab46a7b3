"""The lab TVS on worker threads (phoneemu.lab.tvs_threaded) under a connection flood: with every worker
holding a silent connection and more waiting in the listen queue, the watchdog closes the one silent longest
past its first-request grace — from the address holding the most such first — and never one that asked
(module docstring, "Room under a flood"; phoneemu.net._room). Real sockets over loopback: 127.0.0.2 and
127.0.0.3 are other addresses of the loopback interface (Linux: the kernel's TCP_INFO says when data came)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from phoneemu.errors import PhoneEmuError
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.tvs_service import TvsHandler
from phoneemu.lab.tvs_threaded import ThreadedTvsServer
from phoneemu.net._room import KERNEL_SAYS
from phoneemu.net.tvs_client import tvs_verify
from tests.helpers import lab_template, run
from tests.polling import poll_until
from tests.room_helpers import (
    FLOODER,
    HOST,
    asked_ones_kept,
    close_all,
    most_held_address_gives_way,
    silent_connections,
    was_cut,
)

MAC = "001122334455"
DEVICE = f"CP-8861-SEP{MAC}"
GRACE = 0.2

template = lab_template("tvsthreadroom", seed=17, phones={MAC: {}})
needs_kernel = pytest.mark.skipif(not KERNEL_SAYS, reason="the kernel does not say when data came (Linux)")


@needs_kernel
def test_a_silent_flood_from_one_address_leaves_room_for_queries_from_another(
        cluster: LabCluster, caplog: pytest.LogCaptureFixture) -> None:
    """4 workers, 7 silent connections from 127.0.0.2 (3 wait in the queue), then 5 queries from 127.0.0.1:
    all answered within their 8 s (was: none, every worker held until the flood's 30 s handshake timeout)."""
    known = cluster.callmanager().der
    handler = TvsHandler(cluster.tvs_lookup, read_timeout=30.0)

    async def main() -> None:
        async with ThreadedTvsServer(handler, cluster.tvs_identity, HOST, 0, workers=4,
                                     handshake_timeout=30.0, first_request_grace=GRACE) as srv:
            flood = await silent_connections(srv.port, FLOODER, 7)
            try:
                await poll_until(lambda: srv.connections == 4, "the flood holds every worker", within=5,
                                 every=0.01)
                replies = await asyncio.gather(*(tvs_verify([(HOST, srv.port)], DEVICE, known, timeout=8)
                                                 for _ in range(5)))
                assert [r.valid for r in replies] == [True] * 5
                assert handler.answered == 5 and handler.refused == 0 and srv.errors == 0
                assert srv.evicted >= 4  # the flood's queued ones may be let in too, each for an older one
                cut = [await was_cut(r) for r, _w in flood]
                assert sum(cut) == srv.evicted
                assert cut[:4] == [True] * 4  # the oldest first
            finally:
                close_all(flood)
        assert srv.refusals.total == srv.evicted  # every one said (the last ones at the close)
        said = [r.getMessage() for r in caplog.records if "closed to make room" in r.getMessage()]
        assert said and said[0].startswith(f"tvs: refused a connection from {FLOODER}:")
        assert f"no complete request, silent for {GRACE:g} s (TLS handshake unfinished; 4 open, workers 4; " \
               f"{FLOODER} holds 4)" in said[0]

    with caplog.at_level(logging.WARNING, logger="phoneemu.lab.tvs"):
        run(main())


@needs_kernel
def test_the_address_holding_most_connections_gives_way_first(cluster: LabCluster) -> None:
    """One silent connection from 127.0.0.3, older than the two of 127.0.0.2: a waiting query takes the
    place of 127.0.0.2's oldest, not of the single older one."""
    known = cluster.callmanager().der
    handler = TvsHandler(cluster.tvs_lookup, read_timeout=30.0)

    async def main() -> None:
        async with ThreadedTvsServer(handler, cluster.tvs_identity, HOST, 0, workers=3,
                                     handshake_timeout=30.0, first_request_grace=GRACE) as srv:
            await most_held_address_gives_way(srv, known, DEVICE, many=2, wait=GRACE * 1.5)
    run(main())


@needs_kernel
def test_a_client_the_kernel_heard_within_its_grace_keeps_its_place(cluster: LabCluster) -> None:
    """Two workers held from one address; the older connection sends the first byte of a ClientHello (read by
    its worker inside OpenSSL, unseen by the server) after the younger connected: past the younger's grace
    a query takes the younger's place, not the older's (heard from since, as the kernel says)."""
    known = cluster.callmanager().der
    handler = TvsHandler(cluster.tvs_lookup, read_timeout=30.0)
    grace = 0.5

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with ThreadedTvsServer(handler, cluster.tvs_identity, HOST, 0, workers=2,
                                     handshake_timeout=30.0, first_request_grace=grace) as srv:
            older = await silent_connections(srv.port, FLOODER, 1)
            younger = await silent_connections(srv.port, FLOODER, 1)
            opened = loop.time()
            try:
                await poll_until(lambda: srv.connections == 2, "both in", within=5, every=0.01)
                await asyncio.sleep(0.3)
                older[0][1].write(b"\x16")  # a handshake record begins
                await asyncio.sleep(opened + grace + 0.1 - loop.time())
                reply = await tvs_verify([(HOST, srv.port)], DEVICE, known, timeout=8)
                assert reply.valid and srv.evicted == 1
                assert [await was_cut(r) for r, _w in older + younger] == [False, True]
            finally:
                close_all(older + younger)
    run(main())


def test_connections_that_asked_are_kept_however_old(cluster: LabCluster) -> None:
    """Both workers hold connections that each had an answer and stay open, idle, past a 0.1 s grace: a
    query waits in the listen queue (none is closed for it) and gets in when one of them ends."""
    handler = TvsHandler(cluster.tvs_lookup, read_timeout=30.0)

    async def main() -> None:
        async with ThreadedTvsServer(handler, cluster.tvs_identity, HOST, 0, workers=2,
                                     handshake_timeout=30.0, first_request_grace=0.1) as srv:
            await asked_ones_kept(srv, handler, cluster.callmanager().der, DEVICE)
    run(main())


def test_first_request_grace_must_not_be_negative(cluster: LabCluster) -> None:
    with pytest.raises(PhoneEmuError, match="first_request_grace"):
        ThreadedTvsServer(TvsHandler(cluster.tvs_lookup), cluster.tvs_identity, HOST, 0,
                          first_request_grace=-1)
