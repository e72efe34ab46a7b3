"""Servers sharing one ConnectionBudget (the lab's TLS and TCP listeners) under a connection flood: with the
budget full, a newcomer on one server takes the place of the connection silent longest yet to ask — of the
address holding the most such over every server, whichever server holds it (phoneemu.net.tls, "Room across
a shared budget"; phoneemu.net._room.Rooms). Plain TCP's first step is the client's first bytes. Real
sockets over loopback: 127.0.0.2 and 127.0.0.3 are other addresses of the loopback interface (Linux)."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

import pytest

from phoneemu.errors import TransportError
from phoneemu.net.tls import ConnectionBudget, TlsServer
from tests.helpers import run, self_signed_server_context
from tests.polling import poll_until
from tests.room_helpers import (
    FLOODER,
    HOST,
    OTHER,
    close_all,
    echo,
    echo_of,
    echoed,
    handshaken,
    silent_connections,
    was_cut,
)

GRACE = 0.2


def _shared(name: str, ctx: ssl.SSLContext | None, budget: ConnectionBudget, *, grace: float = GRACE,
            **options: Any) -> TlsServer:
    """An echo server named as the lab's ``name`` (TLS with ``ctx``, else plain TCP) on :data:`HOST`, drawing
    on ``budget``, its first-request grace ``grace`` (handshakes may take 30 s)."""
    return TlsServer(echo, ctx, HOST, 0, name=name, handshake_timeout=30, first_request_grace=grace,
                     budget=budget, **options)


def test_a_silent_flood_on_a_plain_server_leaves_room_for_a_tls_newcomer_on_another(
        caplog: pytest.LogCaptureFixture) -> None:
    """The budget (3) full of silent plain TCP connections on the directory, its own cap far off: a TLS client
    of CAPF takes the place of the flood's oldest (was: refused until the flood's timeout); every budget
    place is given back at the end."""
    ctx = self_signed_server_context("budget-room-flood", 1)
    budget = ConnectionBudget(3)

    async def main() -> None:
        async with _shared("directory", None, budget) as directory, \
                _shared("capf", ctx, budget) as capf:
            flood = await silent_connections(directory.port, FLOODER, 3)
            try:
                await poll_until(lambda: budget.open == 3, "the budget full", within=5, every=0.01)
                await asyncio.sleep(GRACE * 1.5)  # the flood silent past its grace
                assert await echoed(capf.port) == b"hello"
                assert directory.evicted == 1 and capf.evicted == 0
                assert capf.refused == 0 and directory.errors == 0 and capf.errors == 0
                assert [await was_cut(r) for r, _w in flood] == [True, False, False]
                await poll_until(lambda: budget.open == 2, "the newcomer's place given back", within=5,
                                 every=0.01)
            finally:
                close_all(flood)
            await poll_until(lambda: not directory._active, "every connection gone", within=5, every=0.01)
            assert budget.open == 0 and not directory._passed
        said = [r.getMessage() for r in caplog.records if "closed to make room" in r.getMessage()]
        assert said and said[0].startswith(f"directory: refused a connection from {FLOODER}:")
        assert f"closed to make room for capf: nothing received, silent for {GRACE:g} s (3 open, " \
               f"max_connections 1024, 3 of 3 shared by the servers; {FLOODER} holds 3)" in said[0]

    with caplog.at_level(logging.WARNING, logger="phoneemu.net.tls"):
        run(main())


def test_the_address_holding_most_over_every_server_gives_way_first() -> None:
    """127.0.0.3 holds one silent connection (the oldest) on the directory, 127.0.0.2 one on CAPF and one on
    the directory: no server's own room has 127.0.0.2 holding more, over both it holds the most, so a
    newcomer on a third server (HTTPS, holding none) takes the place of 127.0.0.2's oldest (on CAPF), not of
    127.0.0.3's older one."""
    ctx = self_signed_server_context("budget-room-address", 2)
    budget = ConnectionBudget(3)

    async def main() -> None:
        async with _shared("directory", None, budget) as directory, \
                _shared("capf", ctx, budget) as capf, \
                _shared("https", ctx, budget) as https:
            alone = await silent_connections(directory.port, OTHER, 1)
            await poll_until(lambda: budget.open == 1, "127.0.0.3 first", within=5, every=0.01)
            on_capf = await silent_connections(capf.port, FLOODER, 1)
            await poll_until(lambda: budget.open == 2, "127.0.0.2 on CAPF next", within=5, every=0.01)
            on_directory = await silent_connections(directory.port, FLOODER, 1)
            held = alone + on_capf + on_directory
            try:
                await poll_until(lambda: budget.open == 3, "the budget full", within=5, every=0.01)
                await asyncio.sleep(GRACE * 1.5)
                assert await echoed(https.port) == b"hello"
                assert capf.evicted == 1 and directory.evicted == 0 and https.refused == 0
                assert [await was_cut(r) for r, _w in held] == [False, True, False]
            finally:
                close_all(held)
    run(main())


def test_plain_connections_that_spoke_are_kept_however_silent() -> None:
    """The budget (2) full of plain TCP connections that each sent the start of a request and then nothing,
    past the grace: a CAPF newcomer is refused (none is closed for it), and each is served when it ends its
    request."""
    ctx = self_signed_server_context("budget-room-spoke", 3)
    budget = ConnectionBudget(2)

    async def main() -> None:
        async with _shared("directory", None, budget, grace=0.1) as directory, \
                _shared("capf", ctx, budget, grace=0.1) as capf:
            kept = await silent_connections(directory.port, FLOODER, 2)
            try:
                for _r, writer in kept:
                    writer.write(b"he")
                await poll_until(lambda: budget.open == 2, "the budget full", within=5, every=0.01)
                await asyncio.sleep(0.3)
                with pytest.raises(TransportError):
                    await echoed(capf.port)
                assert directory.evicted == 0 and capf.evicted == 0 and capf.refused == 1
                for reader, writer in kept:
                    writer.write(b"llo")
                    assert await asyncio.wait_for(reader.readexactly(5), 5) == b"hello"
            finally:
                close_all(kept)
    run(main())


def test_a_server_at_its_own_cap_closes_only_its_own() -> None:
    """CAPF at its own cap (1) with a client past its handshake, the directory holding a silent plain
    connection past the grace, the budget not full: a CAPF newcomer is refused (closing the directory's
    would free no place of CAPF's), the directory's connection is kept."""
    ctx = self_signed_server_context("budget-room-own", 4)
    budget = ConnectionBudget(10)

    async def main() -> None:
        async with _shared("directory", None, budget, grace=0.1) as directory, \
                _shared("capf", ctx, budget, grace=0.1, max_connections=1) as capf:
            silent = await silent_connections(directory.port, FLOODER, 1)
            served = await handshaken(capf.port, 1)
            try:
                await poll_until(lambda: budget.open == 2, "both in", within=5, every=0.01)
                await asyncio.sleep(0.3)
                with pytest.raises(TransportError):
                    await echoed(capf.port)
                assert capf.refused == 1 and directory.evicted == 0 and capf.evicted == 0
                assert not await was_cut(silent[0][0])
                assert await echo_of(served[0]) == b"hello"
            finally:
                close_all(silent + served)
    run(main())


def test_a_plain_connection_whose_handler_ended_is_not_closed_for_room() -> None:
    """The budget (1) held by the directory's silent plain connection, past its grace; its handler cancelled
    (as the directory's close cuts it) ends, its connection not lost yet: a CAPF newcomer's turn in that
    loop iteration is refused (none to close; the ended handler gives its place back), the budget right
    after. Was: let in by closing it, while its handler gave the place back all the same — the newcomer held
    a place the budget did not count (one more connection than the limit)."""
    ctx = self_signed_server_context("budget-room-ended", 5)
    budget = ConnectionBudget(1)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with _shared("directory", None, budget) as directory, \
                _shared("capf", ctx, budget) as capf:
            flood = await silent_connections(directory.port, FLOODER, 1)
            try:
                await poll_until(lambda: budget.open == 1 and len(directory._active) == 1, "the budget full",
                                 within=5, every=0.01)
                await asyncio.sleep(GRACE * 1.5)  # silent past its grace
                [task] = directory._active
                admitted: list[bool] = []
                # its handler ends in the next loop iteration, its connection is lost in the one after; a
                # newcomer's turn (its task's first step) in between
                task.cancel()
                loop.call_soon(lambda: admitted.append(capf._admit((HOST, 4711))))
                rooms = directory._by_address.addresses
                await poll_until(lambda: bool(admitted) and task.done() and not rooms,
                                 "the handler ended, its connection lost", within=5, every=0.01)
                await asyncio.sleep(0)  # (the task's done callbacks: its places given back)
                assert admitted == [False] and capf.refused == 1 and directory.evicted == 0
                assert budget.open == 0 and not directory._active and not directory._passed
            finally:
                close_all(flood)
    run(main())
