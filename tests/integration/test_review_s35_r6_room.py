"""Review R6 of 76c6cb5 (TlsServer makes room under a silent flood, phoneemu.net._room): whom a full server
closes for a newcomer. Real sockets over loopback: 127.0.0.2 and 127.0.0.3 are other addresses of the
loopback interface (Linux)."""

from __future__ import annotations

import asyncio

from phoneemu.net.tls import (
    TlsAcceptProtocol,
    TlsServer,
)
from tests.helpers import run, self_signed_server_context
from tests.polling import poll_until
from tests.room_helpers import (
    FLOODER,
    HOST,
    close_all,
    echo,
    echo_of,
    handshaken,
    silent_connections,
    was_cut,
)


def test_the_flooding_address_gives_way_before_one_whose_many_connections_are_served() -> None:
    """A fleet's address holds four connections past their handshake (served, kept: CAPF sessions, SIP
    registrations) and one phone slow in its handshake; another address holds two silent connections, past
    the grace too. A newcomer takes the place of the flood's oldest: the address with the most connections
    *in their handshake* gives way first (was: the fleet's, holding the most connections of any kind — a
    flood of fewer connections than a fleet's sessions had the fleet's slow phones closed before any of
    its own)."""
    ctx = self_signed_server_context("r6-most-silent", 1)

    async def main() -> None:
        async with TlsServer(echo, ctx, HOST, 0, max_connections=7, handshake_timeout=30,
                             first_request_grace=0.2) as srv:
            served = await handshaken(srv.port, 4)
            slow = await silent_connections(srv.port, HOST, 1)
            flood = await silent_connections(srv.port, FLOODER, 2)
            held = served + slow + flood
            try:
                await poll_until(lambda: len(srv._active) == 7, "the server full", within=5, every=0.01)
                await asyncio.sleep(0.3)  # every silent one past its grace
                [newcomer] = await handshaken(srv.port, 1)
                held.append(newcomer)
                assert await echo_of(newcomer) == b"hello"
                assert srv.evicted == 1
                assert [await was_cut(r) for r, _w in slow + flood] == [False, True, False]
                for client in served:  # never closed for room
                    assert await echo_of(client) == b"hello"
            finally:
                close_all(held)
    run(main())


def test_a_client_that_hung_up_in_its_handshake_is_no_longer_one_to_close() -> None:
    """A silent connection past its grace whose client then hangs up: from the server's reading of that end
    (its handshake failed) it is out of the choice, so a newcomer accepted in the iteration before, whose
    turn comes first, does not close it "to make room" (was: chosen until its task ran — counted in
    ``evicted``, logged as closed for room, its handshake failure neither logged nor counted; under a flood
    of newcomers, every client that hung up so)."""
    ctx = self_signed_server_context("r6-hung-up", 2)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with TlsServer(echo, ctx, HOST, 0, max_connections=1, handshake_timeout=30,
                             first_request_grace=0.1) as srv:
            accepted: list[asyncio.Protocol] = []
            chosen: list[object] = []
            spawn = srv._spawn

            def noted(conn: TlsAcceptProtocol) -> None:
                spawn(conn)
                accepted.append(conn)
                eof_received = conn.eof_received

                def eof_then_choice() -> bool | None:
                    keep = eof_received()
                    chosen.append(srv._by_address.victim(loop.time()))  # a newcomer's turn, now
                    return keep
                conn.eof_received = eof_then_choice  # type: ignore[method-assign]

            srv._spawn = noted  # type: ignore[method-assign]
            [(_reader, writer)] = await silent_connections(srv.port, FLOODER, 1)
            try:
                await poll_until(lambda: bool(accepted), "accepted", within=5, every=0.01)
                await asyncio.sleep(0.2)  # past its grace
                writer.write_eof()
                await poll_until(lambda: bool(chosen), "its end read", within=5, every=0.01)
                assert chosen == [None]
                await poll_until(lambda: srv.handshake_failures == 1, "its failure said", within=5,
                                 every=0.01)
                assert srv.evicted == 0
            finally:
                writer.close()
    run(main())
