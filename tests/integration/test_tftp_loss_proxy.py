"""A lossy UDP proxy for TFTP tests (loopback only): sits between TFTP clients and a server and drops,
duplicates, delays (reorders) datagrams with a seeded :class:`random.Random`.

Transfer IDs are kept: a datagram the server sends from port P reaches the client from a proxy port of
its own for (client, P), so a client sees the server's per-transfer ports as distinct ports (RFC 1350),
and what the client sends there goes on to the server's port P. Counters per opcode and direction let
a test count retransmissions and spot a storm. Bounded: at most ``max_sessions`` clients and
``max_ports`` server ports per client, every impairment delay at most ``delay + jitter``, and the proxy
stops by itself after ``lifetime`` seconds.

A test may script the link instead of drawing its fate: ``intercept(direction, datagram, send)`` is asked
first for every datagram; returning True, it has taken the datagram and calls ``send()`` when it lets it
through (at once, later, or never: lost), always to the destination the datagram was sent to.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import socket
from collections.abc import Callable
from typing import Any

HOST = "127.0.0.1"
_OPS = {1: "RRQ", 2: "WRQ", 3: "DATA", 4: "ACK", 5: "ERROR", 6: "OACK"}


def opname(data: bytes) -> str:
    return _OPS.get(data[1], "?") if len(data) >= 2 and data[0] == 0 else "?"


class _Proto(asyncio.DatagramProtocol):
    def __init__(self, on: Any) -> None:
        self.on = on

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.on(data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP errors: the network drops them
        pass


class _Session:
    """One client: an upstream socket towards the server, a downstream socket per server port."""

    def __init__(self, client: tuple[str, int]) -> None:
        self.client = client
        self.up: asyncio.DatagramTransport | None = None
        self.down: dict[int, asyncio.DatagramTransport] = {}


class LossyProxy:
    """``async with LossyProxy(server_port, loss=0.05, seed=1) as p: p.port``; counters in ``p.sent``."""

    def __init__(self, server_port: int, *, loss: float = 0.0, dup: float = 0.0, delay: float = 0.0,
                 jitter: float = 0.0, seed: int = 0, lifetime: float = 60.0, max_sessions: int = 4096,
                 max_ports: int = 64, loss_to_server: float | None = None,
                 loss_to_client: float | None = None) -> None:
        self.server = (HOST, server_port)
        self.loss_up = loss if loss_to_server is None else loss_to_server
        self.loss_down = loss if loss_to_client is None else loss_to_client
        self.dup, self.delay, self.jitter = dup, delay, jitter
        self.rng = random.Random(seed)
        self.lifetime, self.max_sessions, self.max_ports = lifetime, max_sessions, max_ports
        self.sessions: dict[tuple[str, int], _Session] = {}
        # (direction, opcode) -> count; direction "up" client->server, "down" server->client
        self.seen: collections.Counter[tuple[str, str]] = collections.Counter()
        self.sent: collections.Counter[tuple[str, str]] = collections.Counter()
        self.dropped: collections.Counter[tuple[str, str]] = collections.Counter()
        self.duplicated = 0
        self.log: list[tuple[str, tuple[Any, ...], bytes]] = []  # (direction, client, datagram) as seen
        self.keep_log = False
        #: a scripted link (module docstring): (direction, datagram, send) -> taken
        self.intercept: Callable[[str, bytes, Callable[[], None]], bool] | None = None
        self._main: asyncio.DatagramTransport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopper: asyncio.TimerHandle | None = None
        self._handles: set[asyncio.TimerHandle] = set()
        self.port = 0

    async def start(self) -> LossyProxy:
        self._loop = asyncio.get_running_loop()
        tr, _ = await self._loop.create_datagram_endpoint(lambda: _Proto(self._from_client_main),
                                                          local_addr=(HOST, 0), family=socket.AF_INET)
        self._main = tr
        self.port = int(tr.get_extra_info("sockname")[1])
        self._stopper = self._loop.call_later(self.lifetime, self.close_now)
        return self

    async def __aenter__(self) -> LossyProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        self.close_now()
        await asyncio.sleep(0)

    def close_now(self) -> None:
        for h in self._handles:
            h.cancel()
        self._handles.clear()
        if self._stopper is not None:
            self._stopper.cancel()
            self._stopper = None
        for s in self.sessions.values():
            if s.up is not None:
                s.up.close()
            for d in s.down.values():
                d.close()
        self.sessions.clear()
        if self._main is not None:
            self._main.close()
            self._main = None

    # --- impairments -----------------------------------------------------------------------
    def _forward(self, direction: str, tr: asyncio.DatagramTransport | None, data: bytes,
                 dest: tuple[Any, ...]) -> None:
        op = opname(data)
        self.seen[direction, op] += 1
        if self.intercept is not None and self.intercept(direction, data,
                                                         lambda: self._out(direction, op, tr, data, dest)):
            return
        loss = self.loss_up if direction == "up" else self.loss_down
        copies = 1
        if self.dup > 0.0 and self.rng.random() < self.dup:
            copies = 2
            self.duplicated += 1
        for _ in range(copies):
            if loss > 0.0 and self.rng.random() < loss:
                self.dropped[direction, op] += 1
                continue
            wait = self.delay + (self.rng.random() * self.jitter if self.jitter > 0.0 else 0.0)
            if wait <= 0.0:
                self._out(direction, op, tr, data, dest)
            else:
                assert self._loop is not None

                def fire(h_ref: list[asyncio.TimerHandle]) -> None:
                    self._handles.discard(h_ref[0])
                    self._out(direction, op, tr, data, dest)

                ref: list[asyncio.TimerHandle] = []
                h = self._loop.call_later(wait, fire, ref)
                ref.append(h)
                self._handles.add(h)

    def _out(self, direction: str, op: str, tr: asyncio.DatagramTransport | None, data: bytes,
             dest: tuple[Any, ...]) -> None:
        if tr is None or tr.is_closing():
            return
        self.sent[direction, op] += 1
        tr.sendto(data, dest)

    # --- plumbing -------------------------------------------------------------------------
    def _session(self, client: tuple[str, int]) -> _Session | None:
        s = self.sessions.get(client)
        if s is not None:
            return s
        if len(self.sessions) >= self.max_sessions or self._loop is None:
            return None
        s = _Session(client)
        self.sessions[client] = s
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((HOST, 0))
        sock.setblocking(False)
        tr, _ = _sync_endpoint(self._loop, sock, lambda d, a: self._from_server(s, d, a))
        s.up = tr
        return s

    def _from_client_main(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if self.keep_log:
            self.log.append(("up", addr, data))
        s = self._session((addr[0], addr[1]))
        if s is not None:
            self._forward("up", s.up, data, self.server)

    def _from_client_tid(self, s: _Session, sport: int, data: bytes, addr: tuple[Any, ...]) -> None:
        if (addr[0], addr[1]) != s.client:
            return  # another client on this session's port: not ours to pass on
        if self.keep_log:
            self.log.append(("up", addr, data))
        self._forward("up", s.up, data, (HOST, sport))

    def _from_server(self, s: _Session, data: bytes, addr: tuple[Any, ...]) -> None:
        sport = int(addr[1])
        if self.keep_log:
            self.log.append(("down", s.client, data))
        if sport == self.server[1]:
            tr = self._main  # a single-socket server: answer from the proxy's main port
        else:
            tr = s.down.get(sport)
            if tr is None:
                if len(s.down) >= self.max_ports or self._loop is None:
                    return
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind((HOST, 0))
                sock.setblocking(False)
                tr, _ = _sync_endpoint(self._loop, sock, lambda d, a: self._from_client_tid(s, sport, d, a))
                s.down[sport] = tr
        self._forward("down", tr, data, s.client)

    # --- figures --------------------------------------------------------------------------
    def count(self, direction: str, op: str, what: str = "sent") -> int:
        return int(getattr(self, what)[direction, op])


class _SyncTransport:
    """A minimal datagram transport over a non-blocking socket read with ``loop.add_reader``
    (created synchronously, inside a datagram callback)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, on: Any) -> None:
        self.loop, self.sock, self.on = loop, sock, on
        self._closing = False
        loop.add_reader(sock.fileno(), self._ready)

    def _ready(self) -> None:
        for _ in range(64):
            try:
                data, addr = self.sock.recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ICMP port unreachable and the like
                continue
            self.on(data, addr)

    def sendto(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if self._closing:
            return
        with contextlib.suppress(OSError):  # a full buffer or an ICMP error: lost, as on a network
            self.sock.sendto(data, addr)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()


def _sync_endpoint(loop: asyncio.AbstractEventLoop, sock: socket.socket, on: Any) -> tuple[Any, None]:
    return _SyncTransport(loop, sock, on), None


# --- the proxy itself ---------------------------------------------------------------------
def test_proxy_keeps_transfer_ids_and_counts() -> None:
    """Without impairment the proxy passes a whole transfer (lab server, ephemeral TIDs) unchanged."""
    from phoneemu.net.tftp import TftpServer, tftp_get

    async def go() -> None:
        data = bytes(range(256)) * 9  # 2304 bytes: 4 full blocks and a short one
        async with TftpServer({"f": data}, port=0) as srv, LossyProxy(srv.port, lifetime=10.0) as p:
            got = await asyncio.wait_for(tftp_get(HOST, p.port, "f", timeout=0.5), 5.0)
            assert got == data
            assert p.count("down", "DATA") == 5 and p.count("up", "ACK") == 5
            assert p.count("up", "RRQ") == 1
            assert len(p.sessions) == 1 and len(next(iter(p.sessions.values())).down) == 1

    asyncio.run(go())
