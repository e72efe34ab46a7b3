"""The lab TVS on the loop (phoneemu.lab.tvs_loop) under a connection flood: a full server closes the oldest
connection past its first-request grace to let a waiting one in, from the address holding the most
connections first, and never one that asked or is within its grace (module docstring, "Fair"). Real
sockets over loopback: 127.0.0.2 and 127.0.0.3 are other addresses of the loopback interface (Linux)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from phoneemu.errors import PhoneEmuError
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.tvs_loop import LoopTvsServer
from phoneemu.lab.tvs_service import TvsHandler
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

template = lab_template("tvsfair", seed=13, phones={MAC: {}})


def test_silent_flood_from_one_address_leaves_room_for_other_addresses(
        cluster: LabCluster, caplog: pytest.LogCaptureFixture) -> None:
    """The red team's flood, small: 20 places, 30 silent connections from one address (10 wait in the
    listen queue), then 7 queries from another address; handshake and read timeouts 30 s, so on the old
    server (accepting paused at the cap) none is answered within its 8 s."""
    known = cluster.callmanager().der
    handler = TvsHandler(cluster.tvs_lookup, read_timeout=30.0)

    async def main() -> None:
        async with LoopTvsServer(handler, cluster.tvs_identity, HOST, 0, max_connections=20,
                                 handshake_timeout=30.0) as srv:
            flood = await silent_connections(srv.port, FLOODER, 30)
            try:
                await poll_until(lambda: srv.connections == 20, "the flood holds every place", within=5,
                                 every=0.02)
                replies = await asyncio.gather(*(tvs_verify([(HOST, srv.port)], DEVICE, known, timeout=8)
                                                 for _ in range(7)))
                assert [r.valid for r in replies] == [True] * 7
                assert handler.answered == 7 and srv.errors == 0
                assert srv.evicted >= 7  # the flood's queued ones were let in too, each for an older one
                assert srv.refusals.total == srv.evicted
                cut = [await was_cut(r) for r, _w in flood]
                assert sum(cut) == srv.evicted  # the oldest first: the first connections of the flood
                assert cut[:srv.evicted] == [True] * srv.evicted
            finally:
                close_all(flood)
            await poll_until(lambda: not srv._addresses, "no address kept once its connections are gone",
                             within=5, every=0.02)
        said = [r.getMessage() for r in caplog.records if "closed to make room" in r.getMessage()]
        assert said and said[0].startswith(f"tvs: refused a connection from {FLOODER}:")
        assert "no complete request, silent for 1 s (TLS handshake unfinished; 20 open, " \
               f"max_connections 20; {FLOODER} holds 20)" in said[0]

    with caplog.at_level(logging.WARNING, logger="phoneemu.lab.tvs"):
        run(main())


def test_a_storm_of_real_clients_at_a_full_server_loses_none(cluster: LabCluster) -> None:
    """A boot storm from one address: 150 phones at 8 places; each connection asks within its grace, so
    none is closed for room and every one is answered."""
    known = cluster.callmanager().der
    handler = TvsHandler(cluster.tvs_lookup, read_timeout=10.0)

    async def main() -> None:
        async with LoopTvsServer(handler, cluster.tvs_identity, HOST, 0, max_connections=8) as srv:
            replies = await asyncio.gather(*(tvs_verify([(HOST, srv.port)], DEVICE, known, timeout=20)
                                             for _ in range(150)))
            assert sum(r.valid for r in replies) == 150
            assert srv.evicted == 0 and handler.refused == 0 and srv.errors == 0
            assert srv.connections == 150
    run(main(), limit=60)


def test_the_address_holding_most_connections_gives_way_first(cluster: LabCluster) -> None:
    """One silent connection from 127.0.0.3, older than the three of 127.0.0.2: a waiting query takes the
    place of 127.0.0.2's oldest, not of the single older one."""
    known = cluster.callmanager().der
    handler = TvsHandler(cluster.tvs_lookup, read_timeout=30.0)

    async def main() -> None:
        async with LoopTvsServer(handler, cluster.tvs_identity, HOST, 0, max_connections=4,
                                 handshake_timeout=30.0, first_request_grace=0.2) as srv:
            # all four past their grace when the query comes (else, the three opened a few ms after the one,
            # the one alone is past it when the server makes room: flaky under load)
            await most_held_address_gives_way(srv, known, DEVICE, many=3, wait=0.3)
    run(main())


def test_connections_that_asked_are_kept_however_old(cluster: LabCluster) -> None:
    """Full with two connections that each had an answer and stay open, idle, past a 0.1 s grace: a
    query waits in the listen queue (none is closed for it) and gets in when one of them ends."""
    handler = TvsHandler(cluster.tvs_lookup, read_timeout=30.0)

    async def main() -> None:
        async with LoopTvsServer(handler, cluster.tvs_identity, HOST, 0, max_connections=2,
                                 handshake_timeout=30.0, first_request_grace=0.1) as srv:
            await asked_ones_kept(srv, handler, cluster.callmanager().der, DEVICE)
    run(main())


def test_first_request_grace_must_not_be_negative(cluster: LabCluster) -> None:
    with pytest.raises(PhoneEmuError, match="first_request_grace"):
        LoopTvsServer(TvsHandler(cluster.tvs_lookup), cluster.tvs_identity, HOST, 0, first_request_grace=-1)
