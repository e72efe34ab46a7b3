"""TlsServer (CAPF, HTTPS, SIP over TLS, the asyncio TVS) under a connection flood: a full server closes the
connection silent longest in its TLS handshake, past ``first_request_grace``, for a newcomer — from the
address holding the most connections first — and never one that finished its handshake or spoke within its
grace (phoneemu.net.tls, "Room under a flood"; phoneemu.net._room). Real sockets over loopback: 127.0.0.2
and 127.0.0.3 are other addresses of the loopback interface (Linux)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from phoneemu.errors import PhoneEmuError, TransportError
from phoneemu.net.tls import (
    ConnectionBudget,
    TlsAcceptProtocol,
    TlsServer,
    client_context_verify_after_handshake,
)
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

GRACE = 0.3


def test_a_silent_flood_from_one_address_leaves_room_for_real_clients(
        caplog: pytest.LogCaptureFixture) -> None:
    """6 places, 10 silent connections from one address (4 refused), then 5 real clients from another once
    the flood is past its grace: each takes the place of the flood's oldest, all are served (was: refused,
    the flood holding every place until its 30 s handshake timeout)."""
    ctx = self_signed_server_context("room-flood", 1)

    async def main() -> None:
        async with TlsServer(echo, ctx, HOST, 0, name="capf", max_connections=6, handshake_timeout=30,
                             first_request_grace=GRACE) as srv:
            flood = await silent_connections(srv.port, FLOODER, 10)
            try:
                await poll_until(lambda: srv.refused == 4, "the flood holds every place", within=5,
                                 every=0.02)
                await asyncio.sleep(GRACE * 1.5)  # the flood silent past its grace
                assert await asyncio.gather(*(echoed(srv.port) for _ in range(5))) == [b"hello"] * 5
                assert srv.evicted == 5 and srv.refused == 4
                assert srv.handshake_failures == 0 and srv.errors == 0  # (the evicted said as refusals)
                cut = [await was_cut(r) for r, _w in flood]
                assert cut == [True] * 5 + [False] + [True] * 4  # the oldest five, then the refused four
            finally:
                close_all(flood)
            await poll_until(lambda: not srv._by_address.addresses, "no address kept once its connections "
                             "are gone", within=5, every=0.02)
        assert srv.refusals.total == srv.refused + srv.evicted
        said = [r.getMessage() for r in caplog.records if "closed to make room" in r.getMessage()]
        assert said, [r.getMessage() for r in caplog.records]
        assert "closed to make room: TLS handshake unfinished, silent for 0.3 s (6 open, " \
               f"max_connections 6; {FLOODER} holds " in said[0]

    with caplog.at_level(logging.WARNING, logger="phoneemu.net.tls"):
        run(main())


def test_clients_that_finished_their_handshake_are_kept_however_silent() -> None:
    """Full with three clients that finished their handshake and say nothing past the grace: newcomers are
    refused, none of the three is closed, and each is served when it asks."""
    ctx = self_signed_server_context("room-handshaken", 2)

    async def main() -> None:
        async with TlsServer(echo, ctx, HOST, 0, max_connections=3, handshake_timeout=30,
                             first_request_grace=0.1) as srv:
            kept = await handshaken(srv.port, 3)
            try:
                await asyncio.sleep(0.4)
                for _ in range(4):
                    with pytest.raises(TransportError):
                        await echoed(srv.port)
                assert srv.evicted == 0 and srv.refused == 4
                for client in kept:
                    assert await echo_of(client) == b"hello"
            finally:
                close_all(kept)
    run(main())


def test_a_storm_of_real_clients_at_a_full_server_loses_none() -> None:
    """12 clients at 3 places, each held 0.4 s after its request (past the 0.3 s grace): the refused retry,
    as phones do; every one is served and none is closed for room."""
    ctx = self_signed_server_context("room-storm", 3)

    async def slow_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.readexactly(5)
        await asyncio.sleep(0.4)
        writer.write(data)
        await writer.drain()

    async def phone(port: int) -> bytes:
        for _ in range(400):  # 20 s at most
            try:
                return await echoed(port)
            except TransportError:
                await asyncio.sleep(0.05)
        raise AssertionError("never served")

    async def main() -> None:
        async with TlsServer(slow_echo, ctx, HOST, 0, max_connections=3, handshake_timeout=10,
                             first_request_grace=GRACE) as srv:
            assert await asyncio.gather(*(phone(srv.port) for _ in range(12))) == [b"hello"] * 12
            assert srv.evicted == 0 and srv.errors == 0 and srv.connections == 12
    run(main(), limit=60)


def test_a_client_heard_from_within_its_grace_keeps_its_place() -> None:
    """Two connections from one address: the older sends the first byte of a ClientHello after the younger
    connected; past the younger's grace, a newcomer takes the younger's place (silent longest), not the
    older's (heard from since)."""
    ctx = self_signed_server_context("room-heard", 4)
    grace = 0.5

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with TlsServer(echo, ctx, HOST, 0, max_connections=2, handshake_timeout=30,
                             first_request_grace=grace) as srv:
            older = await silent_connections(srv.port, FLOODER, 1)
            younger = await silent_connections(srv.port, FLOODER, 1)
            opened = loop.time()
            try:
                await poll_until(lambda: len(srv._active) == 2, "both in", within=5, every=0.01)
                await asyncio.sleep(0.3)
                older[0][1].write(b"\x16")  # a handshake record begins
                await asyncio.sleep(opened + grace + 0.1 - loop.time())
                assert await echoed(srv.port) == b"hello"
                assert srv.evicted == 1
                assert [await was_cut(r) for r, _w in older + younger] == [False, True]
            finally:
                close_all(older + younger)
    run(main())


def test_the_address_holding_most_connections_gives_way_first() -> None:
    """One silent connection from 127.0.0.3, older than the three of 127.0.0.2: a newcomer takes the place
    of 127.0.0.2's oldest, not of the single older one."""
    ctx = self_signed_server_context("room-address", 5)

    async def main() -> None:
        async with TlsServer(echo, ctx, HOST, 0, max_connections=4, handshake_timeout=30,
                             first_request_grace=0.2) as srv:
            alone = await silent_connections(srv.port, OTHER, 1)
            await poll_until(lambda: len(srv._active) == 1, "127.0.0.3 first", within=5, every=0.01)
            many = await silent_connections(srv.port, FLOODER, 3)
            try:
                await poll_until(lambda: len(srv._active) == 4, "the server full", within=5, every=0.01)
                await asyncio.sleep(0.3)
                assert await echoed(srv.port) == b"hello"
                assert srv.evicted == 1
                assert [await was_cut(r) for r, _w in alone + many] == [False, True, False, False]
            finally:
                close_all(alone + many)
    run(main())


def test_the_place_of_the_shared_budget_passes_to_the_newcomer() -> None:
    """The shared budget full of one server's silent connections (its own cap far off): a real client
    takes one's place, budget place included; every place is given back at the end (none leaked, none
    given back twice)."""
    ctx = self_signed_server_context("room-budget", 6)
    budget = ConnectionBudget(3)

    async def main() -> None:
        async with TlsServer(echo, ctx, HOST, 0, max_connections=100, handshake_timeout=30,
                             first_request_grace=0.2, budget=budget) as srv:
            flood = await silent_connections(srv.port, FLOODER, 3)
            try:
                await poll_until(lambda: budget.open == 3, "the budget full", within=5, every=0.01)
                await asyncio.sleep(0.3)
                assert await echoed(srv.port) == b"hello"
                assert srv.evicted == 1 and srv.refused == 0
                await poll_until(lambda: budget.open == 2, "the newcomer's place given back", within=5,
                                 every=0.01)
                assert not srv._passed
            finally:
                close_all(flood)
            await poll_until(lambda: not srv._active, "every connection gone", within=5, every=0.01)
            assert budget.open == 0
    run(main())


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_bytes_waiting_unread_are_seen_and_the_connection_still_works(loop_name: str) -> None:
    """The peek on a connection's descriptor: a ClientHello the server has not read yet (reading paused, as
    a busy loop) is seen, nothing is consumed, and the transport's socket stays open: the handshake then
    completes and the client is served."""
    from phoneemu.fleet.loop import resolve_event_loop, run_on

    if resolve_event_loop("auto") != "uvloop" and loop_name == "uvloop":
        pytest.skip("uvloop not installed")
    ctx = self_signed_server_context("room-peek", 7)

    async def main() -> None:
        async with TlsServer(echo, ctx, HOST, 0, handshake_timeout=10) as srv:
            accepted: list[TlsAcceptProtocol] = []
            spawn = srv._spawn

            def noted(conn: TlsAcceptProtocol) -> None:
                spawn(conn)
                accepted.append(conn)

            srv._spawn = noted  # type: ignore[method-assign]
            reader, writer = await asyncio.open_connection(HOST, srv.port)  # TCP first, TLS below
            try:
                await poll_until(lambda: bool(accepted), "accepted", within=5, every=0.01)
                conn = accepted[0]
                raw = conn.raw
                assert raw is not None
                waits = conn.input_waits  # type: ignore[attr-defined]
                assert not waits()
                raw.pause_reading()  # the server's loop busy: what comes waits unread
                tls = asyncio.ensure_future(writer.start_tls(client_context_verify_after_handshake()))
                await poll_until(waits, "the ClientHello waits unread", within=5, every=0.01)
                assert waits()  # peeked, not consumed
                raw.resume_reading()
                await asyncio.wait_for(tls, 5)
                assert await echo_of((reader, writer)) == b"hello"
            finally:
                writer.close()

    run_on(loop_name, asyncio.wait_for(main(), 10))


def test_first_request_grace_must_not_be_negative() -> None:
    with pytest.raises(PhoneEmuError, match="first_request_grace"):
        TlsServer(echo, None, HOST, 0, first_request_grace=-1)
