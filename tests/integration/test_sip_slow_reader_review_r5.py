"""The lab SIP registrar serves a client that reads slowly but steadily (review R5 of 10ca463;
:mod:`phoneemu.lab.sip_service` rules): while answers wait unsent, the client must take at least
``TAKEN_PER_WAIT`` bytes of them each ``read_timeout`` — was: all of asyncio's 48 KiB between its
write-buffer marks (or, at the end, all that was unsent) within one ``read_timeout``, so a client pipelining
REGISTERs and reading ~40 KB/s was cut after half a second.

Over real loopback sockets, small socket buffers as in ``test_redteam_lab_tcp`` (a few hundred answers
fill what the kernel holds). The client reads :data:`PIECE` bytes every :data:`GAP_S` — about 40 KB/s,
well above ``TAKEN_PER_WAIT`` a ``read_timeout`` however loaded the machine, well below the 96 KB/s the
old rule asked. No elapsed time is asserted: that every REGISTER was answered and nothing was cut is.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from phoneemu.net.tls import TlsServer
from tests.sip_helpers import (
    SLOW_HOST,
    SLOW_MAC,
    connect_not_reading,
    pipelined_register,
    small_buffer_registrar,
)

READ_TIMEOUT = 0.5
REGISTERS = 450  # ~150 KB of answers: more than the kernel and asyncio's 64 KiB mark hold
PIECE = 2048
GAP_S = 0.05
RECV_WAIT_S = 5.0  # the longest one read of the client waits (a test gone wrong ends)


async def _read_steadily(sock: socket.socket, last: bytes) -> tuple[int, str]:
    """Read :data:`PIECE` bytes every :data:`GAP_S` until ``last`` came; (bytes read, how it ended)."""
    loop = asyncio.get_running_loop()
    got = bytearray()
    for _ in range(REGISTERS * 1000 // PIECE + 100):  # bounded: answers are well under 1000 bytes each
        try:
            more = await asyncio.wait_for(loop.sock_recv(sock, PIECE), RECV_WAIT_S)
        except (ConnectionError, TimeoutError) as exc:
            return len(got), f"cut: {exc!r}"
        if not more:
            return len(got), "cut: end of stream"
        got += more
        if last in got[-len(last) - PIECE:]:
            return len(got), "all answered"
        await asyncio.sleep(GAP_S)
    return len(got), "too many reads"


@pytest.mark.parametrize("then_close", [False, True], ids=["pipelining", "pipelined-then-closed"])
def test_sip_review_r5_a_client_reading_slowly_but_steadily_is_not_cut(then_close: bool) -> None:
    handler, outcomes = small_buffer_registrar(READ_TIMEOUT)

    async def main() -> tuple[int, str]:
        async with TlsServer(handler, None, SLOW_HOST, 0, name="sip") as srv:
            sock = await connect_not_reading(srv.port)
            loop = asyncio.get_running_loop()
            requests = b"".join(pipelined_register(n) for n in range(1, REGISTERS + 1))
            sending = asyncio.ensure_future(loop.sock_sendall(sock, requests))
            try:
                if then_close:
                    sending.add_done_callback(lambda _: sock.shutdown(socket.SHUT_WR))
                return await _read_steadily(sock, f"CSeq: {REGISTERS} REGISTER".encode())
            finally:
                sending.cancel()
                sock.close()

    read, ended = asyncio.run(main())
    assert ended == "all answered", (read, ended, [o for o in outcomes if o[1] == "timeout"])
    assert outcomes.count((f"SEP{SLOW_MAC}", "registered")) == REGISTERS
    assert ("?", "timeout") not in outcomes
