"""The lab TVS server on the event loop's thread: ``ssl.SSLObject`` over non-blocking sockets (spec §E, §H.6).

Same service as :mod:`phoneemu.lab.tvs_threaded` and :mod:`phoneemu.lab.tvs_service`; only the I/O
differs. This is the lab's default TVS (``LabServers(tvs_impl="loop")``).

Why: a boot storm opens one TVS connection per phone boot (issue #6). The threaded server hands the
GIL between its workers and the loop a dozen times per connection and sleeps in blocking reads, so
every connection costs thread switches (``futex``, scheduler) on top of the TLS; asyncio's TLS
(:mod:`.tvs_service`) runs a stream, a protocol and a task per connection. Here each connection is
a few callbacks: the listening socket and every connection are read by loop reader callbacks that
feed OpenSSL's memory BIOs and drive the same state machine (``do_handshake``/``read``/``write``),
so the cryptography, the certificates and the bytes on the wire are the same; the RSA operation of
the handshake runs on the loop thread (0.3 ms; the lab's TFTP waits that long at most).
Measured in the 4,000-phone boot storm (``bench/fleet.py``, 2 cores, four runs alternated, 2026-12-04):
CPU per boot phone + lab 2.14-2.19 + 1.30-1.33 ms with the threads, 1.69-1.81 + 0.87-0.93 ms with this
server (the phones' sends no longer wake blocked worker threads).

Rules (identical to :class:`phoneemu.lab.tvs_threaded.ThreadedTvsServer` unless said):

* TLS 1.0 to 1.3 with the cluster's *current* TVS identity (:class:`~.tvs_threaded.IdentityContext`:
  looked up at every accepted connection, a new context when the certificate changed); the CUCM 14
  cipher list; no session tickets (``num_tickets = 0``, ``OP_NO_TICKET``: phones never resume, §E.1).
  After a TLS 1.3 handshake the client's Finished is ACKed at once (``TCP_QUICKACK``; TLS 1.2
  answers the client's Finished with the server's, which carries the ACK). What reading makes OpenSSL
  write is sent at once: the ``no_renegotiation`` warning alert refusing a TLS 1.2 client's
  renegotiation (OpenSSL 3 refuses a client's by default), a TLS 1.3 KeyUpdate (was: kept until the next
  reply, so a client asking to renegotiate waited its read timeout).
* Bounded: at most ``max_connections`` connections at once (accepting pauses until one ends; the
  listen ``backlog`` bounds those waiting). The handshake must complete within
  ``handshake_timeout`` (total); each request must be complete within ``handler.read_timeout`` of
  the handshake or of the previous answer (bytes that do not complete a frame do not extend it), and
  its reply must be taken by the kernel within ``handler.read_timeout``; at most
  ``handler.max_requests`` requests per connection. One timer per connection, re-armed only when a
  deadline moves earlier.
* Fair under a connection flood (ours): when the server is full and a new connection waits, the
  connection silent longest among those that have not sent a complete first request yet (no handshake
  finished, or no whole TVS frame after it) is closed to make room if its client has sent nothing for
  ``first_request_grace`` (1 s; since it connected, or since its last bytes) and nothing of it waits
  unread in the kernel (a peek), one taken from the address holding the most such first. Was:
  open for the grace, so under a load that slowed handshakes past 1 s (the server's loop busy, the
  bytes of a client's next flight waiting unread; a client answering each step in 0.35 s) a fleet's
  phones were cut in the middle of their handshake while they kept talking. Each is logged like a refused
  connection (:class:`phoneemu.net._refusals.RefusalLog`: at once, then at most a line a second with
  the count) and counted in :attr:`LoopTvsServer.evicted`. Was: accepting paused at the cap, so 1,100
  silent connections from one address held every place until their handshake timeout and let 3 of 7
  queries from other addresses through within 5 s. No per-address cap: a fleet boots from one address
  (40,000 phones from 127.0.0.1). A connection heard from within its grace, or that has sent a request,
  is never closed for room, so a boot storm's connections are not (a client trickling a byte each
  second keeps its place until ``handshake_timeout`` or ``read_timeout``, as before); with none to
  close, accepting pauses until one ends or the silent longest reaches its grace. Bookkeeping is O(1)
  per connection and read (per address: a count and the connections yet to ask, silent longest first,
  one moved to the end when it is heard; an address leaves with its last connection); choosing whom to
  close reads each address once (at most ``max_connections``), again for each candidate found with
  bytes waiting (at most :data:`~phoneemu.net._room.PEEKS_PER_CHOICE`). The rule and its bookkeeping are
  :mod:`phoneemu.net._room`'s, shared with :class:`phoneemu.net.tls.TlsServer` (CAPF, HTTPS, SIP over TLS).
* Requests: every complete frame is answered with :func:`phoneemu.protocols.tvs.answer` and
  ``handler.lookup``; a malformed, truncated or unexpected frame, a timeout or a lost connection
  closes that one connection with the reason logged and counted in ``handler.refused``. A handshake
  failure is logged and counted in :attr:`LoopTvsServer.errors`.
* Logging: "TLS HS Done" per connection and one line per request (§H.6); ``handler.on_log`` is
  called on the loop, before the reply is sent.
* Close: when the peer closed first (end of stream between requests), the socket is just closed;
  otherwise unread input is discarded (so the kernel sends FIN, not RST) and a close_notify is sent
  without waiting for the peer's. :meth:`LoopTvsServer.close` stops accepting and cuts every open
  connection at once. The port can be bound again at once (``SO_REUSEADDR``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
from collections.abc import Callable, Mapping
from pathlib import Path

from phoneemu.errors import PhoneEmuError
from phoneemu.lab.pki import Identity
from phoneemu.lab.tvs_service import TvsConnectionLog, TvsHandler, address_text, answer_frames
from phoneemu.lab.tvs_threaded import IdentityContext
from phoneemu.net._listen import tcp_listener
from phoneemu.net._refusals import RefusalLog
from phoneemu.net._room import DEFAULT_GRACE, Room, checked_grace, input_waits
from phoneemu.net.tls import FailureLog, handshake_failure
from phoneemu.protocols import tvs

__all__ = ["DEFAULT_FIRST_REQUEST_GRACE", "DEFAULT_MAX_CONNECTIONS", "LoopTvsServer"]

_log = logging.getLogger("phoneemu.lab.tvs")

DEFAULT_MAX_CONNECTIONS = 1024
#: seconds a connection may take to send its first complete request before a full server may close it
DEFAULT_FIRST_REQUEST_GRACE = DEFAULT_GRACE
_READ_SIZE = 65536
_RECORD_SIZE = 16384  # SSLObject.read returns one record at most: 16 KiB of plaintext (RFC 5246 §6.2.1)
_ACCEPT_BATCH = 64  # connections accepted per readiness event of the listening socket
_ACCEPT_RETRY = 0.05  # seconds to wait after EMFILE and similar before accepting again
_DRAIN_READS = 16  # at most 16 x 64 KiB of unread input discarded at close
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux
_VALID = bytes([tvs.TvsStatus.VALID])


class _Connection:
    """One accepted connection: handshake, then the request loop, driven by reader callbacks."""

    __slots__ = ("_closing", "_decoder", "_eof", "_fd", "_in", "_out", "_reading", "_wbuf", "_writing",
                 "deadline", "handshaken", "heard", "host", "obj", "opened", "peer", "seen", "server", "sock",
                 "timer", "timer_at", "tls")

    def __init__(self, server: LoopTvsServer, sock: socket.socket, peer: str, host: str,
                 ctx: ssl.SSLContext) -> None:
        self.server = server
        self.sock = sock
        self.peer = peer
        self.host = host  # the peer's address without the port (fairness, module docstring)
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self._in, self._out, server_side=True)
        self._fd = sock.fileno()
        self.tls = ""
        self.handshaken = False
        self._decoder = tvs.FrameDecoder()
        self.seen = 0
        self._eof = False
        self._closing = False  # close once the write buffer is empty
        self._wbuf = b""  # bytes the kernel did not take yet
        self._writing = False
        loop = server.loop
        self.opened = loop.time()
        self.heard = self.opened  # when its client last sent bytes (fairness, module docstring)
        self.deadline = self.opened + server.handshake_timeout  # total, for the handshake
        self.timer_at = self.deadline
        self.timer: asyncio.TimerHandle | None = loop.call_at(self.deadline, self._on_timer)
        loop.add_reader(self._fd, self._on_readable)
        self._reading = True

    # --- I/O -------------------------------------------------------------------------------------
    def _on_readable(self) -> None:
        try:
            data = self.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        if data:
            self._in.write(data)
            if self.seen == 0:  # not asked yet: heard from now (fairness, module docstring)
                self.server._heard(self)
        else:
            self._eof = True
            self._stop_reading()
            self._in.write_eof()
        if self.handshaken:
            self._serve()
        else:
            self._handshake()

    def input_waits(self) -> bool:
        """Whether bytes from the client wait unread in the kernel (a peek): it spoke, the loop did not read
        it yet (fairness, module docstring). Its end or an error: False."""
        return input_waits(self.sock)

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            with contextlib.suppress(Exception):  # the loop may be closing
                self.server.loop.remove_reader(self._fd)

    def _flush(self) -> bool:
        """Send what OpenSSL wrote; False when the connection was lost (already closed)."""
        data = self._out.read()
        if not data:
            return True
        if self._wbuf:
            self._wbuf += data
            return True
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._lost(exc)
            return False
        if sent < len(data):
            self._wbuf = data[sent:]
            self._writing = True
            self.server.loop.add_writer(self._fd, self._on_writable)
        return True

    def _on_writable(self) -> None:
        try:
            sent = self.sock.send(self._wbuf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(exc)
            return
        self._wbuf = self._wbuf[sent:]
        if not self._wbuf:
            self._stop_writing()
            if self._closing:
                self.close(peer_closed=self._eof and not self._decoder.buffered)

    def _stop_writing(self) -> None:
        if self._writing:
            self._writing = False
            with contextlib.suppress(Exception):
                self.server.loop.remove_writer(self._fd)

    def _lost(self, exc: OSError) -> None:
        if self.handshaken:
            self._refuse(f"connection lost: {exc}")
        else:
            why = handshake_failure(exc)
            self._handshake_failed(f"TLS handshake failed: {why}", why)
        self.close(peer_closed=True)

    # --- deadlines -------------------------------------------------------------------------------
    def _set_deadline(self, at: float) -> None:
        """The current step must be over by ``at``; the timer moves only when that is earlier."""
        self.deadline = at
        if at < self.timer_at:
            if self.timer is not None:
                self.timer.cancel()
            self.timer_at = at
            self.timer = self.server.loop.call_at(at, self._on_timer)

    def _on_timer(self) -> None:
        self.timer = None
        if self.sock.fileno() < 0:
            return
        loop = self.server.loop
        if loop.time() < self.deadline:
            self.timer_at = self.deadline
            self.timer = loop.call_at(self.deadline, self._on_timer)
            return
        if not self.handshaken:
            self._handshake_failed(f"TLS handshake timeout after {self.server.handshake_timeout:g}s",
                                   "timeout")
            self.close(peer_closed=True)
            return
        handler = self.server.handler
        if self._wbuf:
            self._refuse(f"timeout: reply not taken within {handler.read_timeout}s")
        elif self.seen == 0 or self._decoder.buffered:
            self._refuse(f"timeout: no complete request within {handler.read_timeout}s "
                         f"({self._decoder.buffered} byte(s) buffered)")
        else:
            _log.debug("tvs: %s idle for %ss after %d request(s): closing", self.peer, handler.read_timeout,
                       self.seen)
        self._wbuf = b""
        self.close()

    # --- handshake -------------------------------------------------------------------------------
    def _handshake(self) -> None:
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return
        except (ssl.SSLError, ValueError) as exc:
            self._flush()  # the alert, for the client's log
            why = handshake_failure(exc)
            self._handshake_failed(f"TLS handshake failed: {why}", why)
            self.close(peer_closed=True)
            return
        self.handshaken = True
        if not self._flush():
            return
        obj = self.obj
        version = obj.version()
        if version == "TLSv1.3" and _QUICKACK is not None:  # ACK the client's Finished now
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        cipher = obj.cipher()
        self.tls = f"{version} {cipher[0] if cipher else '?'}"
        _log.info("tvs: %s TLS HS Done (%s)", self.peer, self.tls)
        self._set_deadline(self.server.loop.time() + self.server.handler.read_timeout)
        self._serve()  # a TLS 1.3 client's first request may have come with its Finished

    def _handshake_failed(self, reason: str, kind: str) -> None:
        """Count a failed handshake and log it as :class:`~phoneemu.net.tls.TlsServer` does (its words and
        its rule: at most a line a second, counted under ``kind``; was a warning each, a flood's lines)."""
        server = self.server
        server.errors += 1
        server.failures.failed(self.peer, reason, kind)

    # --- requests --------------------------------------------------------------------------------
    def _serve(self) -> None:
        """Answer every complete request OpenSSL has decrypted (see :meth:`TvsHandler.__call__`)."""
        if self._closing:
            return
        obj = self.obj
        while True:
            try:
                data = obj.read(_RECORD_SIZE)
            except ssl.SSLWantReadError:
                self._flush()  # what reading made OpenSSL write: a no_renegotiation alert, a KeyUpdate
                return
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                data = b""
            except ssl.SSLError as exc:
                self._refuse(f"connection lost: {exc}")
                self.close()
                return
            if not data:
                self._end_of_stream()
                return
            if not self._answer_data(data):
                return

    def _end_of_stream(self) -> None:
        if self._decoder.buffered:
            self._refuse(f"truncated: connection closed inside a frame ({self._decoder.buffered} byte(s) "
                         "buffered)")
            self.close()
            return
        self._closing = True
        if not self._wbuf:
            self.close(peer_closed=True)

    def _answer_data(self, data: bytes) -> bool:
        """Answer the frames ``data`` completes; False when the connection is to end."""
        server = self.server
        handler = server.handler
        replies, bad = answer_frames(self._decoder, data, server.answer,
                                     limit=handler.max_requests - self.seen)
        if bad is not None and not replies:
            self._refuse(f"malformed: {bad}")
            self.close()
            return False
        if replies:  # the replies and the next request: read_timeout from now (partial data: not)
            self._set_deadline(server.loop.time() + handler.read_timeout)
            if self.seen == 0:
                server._asked(self)
        obj = self.obj
        for req, reply in replies:
            self.seen += 1
            kind = "VERIFY" if isinstance(req, tvs.VerifyRequest) else "QUERY"
            outcome = "valid" if reply.get(tvs.TvsTag.STATUS) == _VALID else "invalid"
            handler.answered += 1
            _log.info("tvs: %s %s %s from %s: %s", self.peer, self.tls, kind, req.device_name, outcome)
            if handler.on_log is not None:
                handler._emit(TvsConnectionLog(peer=self.peer, tls=self.tls, request=kind,
                                               device_name=req.device_name, outcome=outcome))
            obj.write(tvs.encode(reply))
        if replies and not self._flush():
            return False
        if bad is not None:  # garbage after good frames in the same read: answered them first
            self._refuse(f"malformed: {bad}")
            self._close_after_write()
            return False
        if self.seen >= handler.max_requests:
            _log.info("tvs: %s reached %d requests: closing", self.peer, handler.max_requests)
            self._close_after_write()
            return False
        return True

    def _close_after_write(self) -> None:
        self._closing = True
        self._stop_reading()
        if not self._wbuf:
            self.close()

    def _refuse(self, reason: str) -> None:
        handler = self.server.handler
        handler.refused += 1
        _log.warning("tvs: %s (%s) closed: %s", self.peer, self.tls, reason)
        handler._emit(TvsConnectionLog(peer=self.peer, tls=self.tls, request="", device_name="",
                                       outcome=reason))

    # --- close -----------------------------------------------------------------------------------
    def close(self, *, peer_closed: bool = False) -> None:
        """Close (see "Close" in the module docstring); idempotent."""
        sock = self.sock
        if sock.fileno() < 0:
            return
        self._stop_reading()
        self._stop_writing()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if not peer_closed:
            with contextlib.suppress(OSError):
                for _ in range(_DRAIN_READS):
                    if not sock.recv(_READ_SIZE):
                        break
            if self.handshaken and not self._wbuf:
                with contextlib.suppress(ssl.SSLError, ValueError):
                    self.obj.unwrap()  # close_notify into the BIO; the peer's is not awaited
                with contextlib.suppress(OSError):
                    sock.send(self._out.read())
        sock.close()
        self.server._forget(self)


class LoopTvsServer:
    """TVS on ``host:port`` served on the running event loop; ``start``/``close`` are coroutines, like
    :class:`phoneemu.lab.tvs_threaded.ThreadedTvsServer` which it stands in for in
    :class:`phoneemu.lab.servers.LabServers`."""

    def __init__(self, handler: TvsHandler, identity: Callable[[], Identity], host: str = "127.0.0.1",
                 port: int = 0, *, max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 handshake_timeout: float = 10.0, backlog: int = 1024, keylog: Path | None = None,
                 name: str = "tvs", failure_log_level: int = logging.WARNING,
                 first_request_grace: float = DEFAULT_FIRST_REQUEST_GRACE) -> None:
        if max_connections < 1:
            raise PhoneEmuError(f"max_connections {max_connections}: at least 1", path="max_connections")
        self.handler = handler
        self.host = host
        self.requested_port = port
        self.max_connections = max_connections
        self.handshake_timeout = handshake_timeout
        self.backlog = backlog
        self.name = name
        self.failure_log_level = failure_log_level
        #: failed handshakes' log lines (:class:`~phoneemu.net.tls.FailureLog`: TlsServer's rule)
        self.failures = FailureLog(_log, name, level=failure_log_level)
        #: the open connections by address, and whom to close for room (module docstring, "Fair")
        self._room: Room[_Connection] = Room(checked_grace(first_request_grace))
        self.contexts = IdentityContext(identity, keylog=keylog)
        self.connections = 0
        self.errors = 0
        #: connections closed to make room for a waiting one (module docstring, "Fair")
        self.evicted = 0
        self.refusals = RefusalLog(_log, name)
        self._open: set[_Connection] = set()
        self._listener: socket.socket | None = None
        self._accepting = False
        self._retry: asyncio.TimerHandle | None = None
        self._room_at: asyncio.TimerHandle | None = None  # the oldest unasked connection's grace ends
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def first_request_grace(self) -> float:
        """Seconds of silence after which a full server may close a connection without a request."""
        return self._room.grace

    @property
    def _addresses(self) -> Mapping[str, object]:
        """The addresses holding open connections (the room's)."""
        return self._room.addresses

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "server not started"
        return self._loop

    @property
    def port(self) -> int:
        assert self._listener is not None, "server not started"
        return int(self._listener.getsockname()[1])

    async def start(self) -> LoopTvsServer:
        """Bind and listen (OSError as :func:`asyncio.start_server` raises it), then accept on the loop."""
        self._loop = asyncio.get_running_loop()
        self._listener = tcp_listener(self.host, self.requested_port, backlog=self.backlog)
        self._accept_on()
        return self

    async def close(self) -> None:
        """Stop accepting and cut every open connection."""
        listener = self._listener
        if listener is None:
            return
        self._accept_off()
        for timer in (self._retry, self._room_at):
            if timer is not None:
                timer.cancel()
        self._retry = self._room_at = None
        listener.close()
        self._listener = None
        for conn in list(self._open):
            conn._closing = True  # cut by close(): no log, as the asyncio server cancels silently
            conn.close()
        self._open.clear()
        self._room.clear()
        self.refusals.flush()
        self.failures.flush()  # and failed handshakes

    async def __aenter__(self) -> LoopTvsServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- accepting -------------------------------------------------------------------------------
    def _accept_on(self) -> None:
        if not self._accepting and self._listener is not None:
            self._accepting = True
            self.loop.add_reader(self._listener.fileno(), self._on_accept)

    def _accept_off(self) -> None:
        if self._accepting and self._listener is not None:
            self._accepting = False
            with contextlib.suppress(Exception):
                self.loop.remove_reader(self._listener.fileno())

    def _on_accept(self) -> None:
        listener = self._listener
        if listener is None:
            return
        for _ in range(_ACCEPT_BATCH):
            victim = None
            if len(self._open) >= self.max_connections:
                victim = self._victim()
                if victim is None:
                    self._wait_for_room()
                    return
            try:
                raw, addr = listener.accept()  # non-blocking listener: no setblocking(True) for raw
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno == errno.ECONNABORTED:
                    continue
                _log.warning("%s: accept failed: %s", self.name, exc)
                self._accept_off()
                self._retry = self.loop.call_later(_ACCEPT_RETRY, self._accept_again)
                return
            if victim is not None:  # closed only once a connection was taken from the queue
                self._evict(victim)
            self._connection(raw, addr)

    def _accept_again(self) -> None:
        self._retry = None
        self._accept_on()

    def _connection(self, raw: socket.socket, addr: object) -> None:
        peer = address_text(addr)
        host = str(addr[0]) if isinstance(addr, tuple) and addr else peer
        try:
            raw.setblocking(False)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(self, raw, peer, host, self.contexts.context())
        except (OSError, ValueError) as exc:
            raw.close()
            _log.warning("%s: connection from %s failed: %s", self.name, peer, exc)
            return
        self._open.add(conn)
        self.connections += 1
        self._room.opened(conn, conn.opened)

    def _heard(self, conn: _Connection) -> None:
        """``conn``'s client sent bytes before its first request: silent least long of its address."""
        self._room.heard(conn, self.loop.time())

    def _asked(self, conn: _Connection) -> None:
        """``conn`` sent its first complete request: never closed for room from now on."""
        self._room.asked(conn)

    def _forget(self, conn: _Connection) -> None:
        if conn not in self._open:
            return
        self._open.discard(conn)
        self._room.closed(conn)
        if not self._accepting and self._listener is not None and self._retry is None:
            self._accept_on()

    # --- fairness (module docstring, "Fair") -----------------------------------------------------
    def _victim(self) -> _Connection | None:
        """The connection to close for a waiting one (:meth:`phoneemu.net._room.Room.victim`): silent past
        its grace without a request and nothing of it waiting unread, from the address holding the most
        connections without one, the silent longest; None when there is none."""
        return self._room.victim(self.loop.time())

    def _wait_for_room(self) -> None:
        """Full, none to close: accepting pauses until a connection ends (:meth:`_forget`) or the oldest
        unasked one reaches its grace (then a waiting connection, if any, makes it the victim): the one
        silent longest, first of its address's."""
        self._accept_off()
        if self._room_at is not None:
            return  # armed for an earlier or the same time: the oldest only gets younger
        due = self._room.silence_due()
        if due is not None:
            self._room_at = self.loop.call_at(due, self._room_due)

    def _room_due(self) -> None:
        self._room_at = None
        if self._retry is None:
            self._accept_on()

    def _evict(self, victim: _Connection) -> None:
        """Close ``victim`` to make room (logged like a refusal, counted in :attr:`evicted`)."""
        self.evicted += 1
        held = self._room.held(victim.host)
        step = "handshake done" if victim.handshaken else "TLS handshake unfinished"
        self.refusals.refused(victim.peer, f"closed to make room: no complete request, silent for "
                                           f"{self.first_request_grace:g} s ({step}; {len(self._open)} open, "
                                           f"max_connections {self.max_connections}; {victim.host} holds "
                                           f"{held})")
        victim.close()

    def answer(self, msg: tvs.TvsMessage) -> tuple[tvs.VerifyRequest | tvs.QueryRequest, tvs.TvsMessage]:
        """Same steps as :class:`phoneemu.protocols.tvs.TvsServerConnection`, keeping the typed pair."""
        req = tvs.parse_request(msg)
        tvs.validate_device_name(req.device_name)  # lenient: tvsd's strict check is optional (§E.6)
        return req, tvs.answer(req, self.handler.lookup)
