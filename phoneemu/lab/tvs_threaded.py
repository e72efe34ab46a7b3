"""The lab TVS server on blocking sockets and a fixed pool of worker threads (spec §E, §H.6).

Same service as :mod:`phoneemu.lab.tvs_service` (the asyncio version); only the I/O differs.
``LabServers(tvs_impl="threads")``; the lab's default is now :mod:`phoneemu.lab.tvs_loop` (the same
TLS on the event loop's thread, without the thread switches: less CPU per connection on both the lab's
and the clients' side, see there).

Why threads: CPython's :class:`ssl.SSLSocket` releases the GIL inside ``SSL_do_handshake``,
``SSL_read`` and ``SSL_write`` on a real socket, so the RSA private-key operation of each
handshake (key transport with the CUCM 14 cipher list, or the ECDHE signature) — the bulk of a
verify's CPU — runs on both cores at once, with little Python per connection. asyncio's TLS
runs a Python state machine over memory BIOs per record instead, all on the loop's one thread.

Rules (identical to :class:`phoneemu.lab.tvs_service.TvsHandler` unless said):

* ``workers`` threads each ``accept()`` on one shared listening socket (the kernel wakes one
  blocked ``accept`` per connection), handshake, serve, close, and accept again. The pool bounds the
  connections served at once (``workers``); the listen ``backlog`` bounds those waiting.
* TLS 1.0 to 1.3 with the cluster's *current* TVS identity: ``identity()`` is called at every
  accepted connection and a new server context is built when the certificate changed (``regenerate
  tvs`` takes effect on the next connection). If the identity cannot be loaded, the previous
  context stays and the reason is logged. Below TLS 1.2 the cipher string is ``@SECLEVEL=0``
  (:func:`phoneemu.net.tls.server_context`). **Our choice**: ``num_tickets = 0`` — no TLS 1.3
  session tickets are sent (phones never resume: "caching disabled, session not saved", §E.1).
  Without tickets the server sends nothing after the client's Finished, so a client that writes its
  request right after Finished (Nagle on, as most do) waits for our delayed ACK (~40 ms on Linux):
  we ask for the ACK at once (``TCP_QUICKACK`` after the handshake). Measured with 16 C clients:
  345 verifies/s without tickets, 780 with 2 tickets, 884 without tickets and with the quick ACK.
  The same for TLS 1.0-1.2 (phones negotiate TLS 1.2): ``OP_NO_TICKET``, no NewSessionTicket.
* Workers (:data:`DEFAULT_WORKERS` = 12): the pool size is also the number of connections worked on
  at once, and every running worker hands the GIL back and forth (~12 GIL hand-offs per connection);
  on 2 cores, 8-12 workers cost the least CPU per verify (measured with 16 C clients: 8 → 973/s
  1.12 ms, 12 → 971/s 1.13 ms, 16 → 853/s 1.29 ms, 24 → 862/s 1.31 ms server CPU per verify).
  Connections beyond the pool wait in the listen queue; an idle client holds a worker for at most
  the handshake or read timeout — or, when connections wait, until it is closed for room (below).
* Room under a flood (ours, :mod:`phoneemu.net._room`, the loop TVS's rule): when every worker holds a
  connection and more wait in the listen queue (the kernel's count), the watchdog closes, for each waiting
  one, the connection silent longest among those without a complete first request (handshake unfinished,
  or no whole TVS frame after it) whose client has sent nothing for ``first_request_grace`` (1 s; since it
  connected or its last bytes), one taken from the address holding the most such first; its worker then
  takes the next waiting connection. The workers block inside OpenSSL's handshake, so the server does not
  see a client's handshake bytes: the kernel says when data last came (Linux ``TCP_INFO``,
  :func:`phoneemu.net._room.spoke_within`), and bytes waiting unread are peeked at; a candidate heard
  within its grace is heard from now and the choice made again. Each is logged like a refused connection
  (:class:`phoneemu.net._refusals.RefusalLog`, on the loop) and counted in
  :attr:`ThreadedTvsServer.evicted`; it ends silently otherwise (not a handshake failure, not a refused
  request). Connections that asked are never closed for room. At most one choice per waiting connection
  and watchdog tick. Where the kernel cannot say (not Linux) no room is made. Was: a flood of silent
  connections held every worker until its handshake timeout and real phones waited in the queue.
* Timeouts: the handshake must complete within ``handshake_timeout`` (total); each request must be
  complete within ``handler.read_timeout`` of the handshake or of the previous answer (bytes that do
  not complete a frame do not extend it: no slow-drip client holds a worker), and its reply must be
  sent within ``handler.read_timeout``; at most ``handler.max_requests`` requests per connection
  (frames beyond it in the same read are not answered). The sockets are blocking, without a
  socket timeout: one **watchdog** thread checks the open connections' deadlines every
  :attr:`ThreadedTvsServer.tick` seconds (at most 0.1 s, at most a quarter of the shortest timeout)
  and shuts an overdue connection down (reading side first: ``OP_IGNORE_UNEXPECTED_EOF`` keeps
  OpenSSL from answering that end of stream with an alert), which ends the blocked handshake, read or
  write; the worker then logs and counts it as the timeout it is and closes as before. Why: in
  CPython's timeout mode every TLS read is a non-blocking ``read`` → ``EAGAIN`` → ``poll`` →
  ``read``, the GIL released and retaken around each step; a blocking socket lets OpenSSL sleep in
  one ``read``. Measured: see "CPU" below.
* Requests: every complete frame is answered with :func:`phoneemu.protocols.tvs.answer` and
  ``handler.lookup`` (the steps of :class:`phoneemu.protocols.tvs.TvsServerConnection`); a
  malformed, truncated or unexpected frame, a timeout or a lost connection closes that one
  connection with the reason logged and counted in ``handler.refused``. A handshake failure is
  logged and counted in :attr:`ThreadedTvsServer.errors` (the asyncio server never calls its
  handler for those either).
* Logging: "TLS HS Done" per connection and one line per request (§H.6), as the asyncio version.
  With ``log_on_loop=True`` (the default) ``handler.on_log`` is called **on the event loop that
  ran** :meth:`ThreadedTvsServer.start` (entries are queued by the workers and handed over in order
  with ``call_soon_threadsafe``), so any callback works unchanged. With ``log_on_loop=False`` it is
  called on the worker thread, one call at a time (a lock), before the reply is sent: for callbacks
  that are thread-safe themselves (:class:`phoneemu.lab.servers.LabServers` locks its request log).
  Waking the loop costs ~0.25 ms of CPU per verify on 2 cores (a thread switch and GIL hand-offs:
  measured 855 verifies/s with the hand-off, 1101 with no callback at all). Counters
  ``handler.answered``/``handler.refused`` are updated under a lock.
* CPU (2026-11-28, 2 cores shared with other jobs, load average 3-7): ``python -m bench.lab --only tvs
  --client-kind c --tvs-impl threads --tls 1.2 --seconds 4``, old and new server alternated three
  times: 0.93 / 0.98 / 0.95 ms server CPU per verify with socket timeouts and TLS 1.2 tickets,
  0.82 / 0.89 / 0.86 ms with blocking sockets, the watchdog and ``OP_NO_TICKET``. In the 2,000-phone
  boot storm (one QUERY per boot) the lab's TVS threads went from 0.97-1.02 to 0.89-0.95 ms per boot.
* Stop: :meth:`close` shuts the listening socket down (wakes every blocked ``accept``), shuts
  down every open connection, and joins the workers and the watchdog within ``stop_timeout``
  seconds, waiting on the loop itself (a poll every :data:`_JOIN_POLL` s), not in the loop's default
  executor: a full executor (the CAPF clients' key work in the same process) made the join wait its
  turn there, however long. A connection cut by the stop ends silently (not a handshake failure, not
  a refused request), as the asyncio servers cancel their handlers. The port can be bound again at
  once (``SO_REUSEADDR``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509

from phoneemu.errors import PhoneEmuError
from phoneemu.lab.pki import Identity
from phoneemu.lab.tvs_service import TvsConnectionLog, TvsHandler, address_text, answer_frames
from phoneemu.net._listen import tcp_listener
from phoneemu.net._refusals import RefusalLog
from phoneemu.net._room import (
    DEFAULT_GRACE,
    KERNEL_SAYS,
    Room,
    accept_queue,
    checked_grace,
    input_waits,
    spoke_within,
)
from phoneemu.net.tls import CUCM_TVS_CIPHERS, handshake_failure, server_context
from phoneemu.protocols import tvs

__all__ = ["DEFAULT_WORKERS", "IdentityContext", "ThreadedTvsServer"]

_log = logging.getLogger("phoneemu.lab.tvs")

_READ_SIZE = 16384  # SSL_read returns one record at most: 16 KiB of plaintext (RFC 5246 §6.2.1)
_DRAIN_SIZE = 65536
DEFAULT_WORKERS = 12  # see "Workers" in the module docstring
_ACCEPT_RETRY = 0.05  # seconds to wait after EMFILE and similar before accepting again
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux
_DRAIN_READS = 16  # at most 16 x 64 KiB (_DRAIN_SIZE) of unread input discarded at close
_MAX_TICK = 0.1  # seconds between two watchdog checks, at most
_JOIN_POLL = 0.01  # seconds between two looks at the threads :meth:`ThreadedTvsServer.close` joins
_WAKE_EVERY = 0.1  # seconds a thread may outlive the listener's shutdown before its accept is woken


class _Deadline:
    """One accepted connection: when its current step must be over (``fired`` once the watchdog cut it),
    and its place in the room (module rules, "Room under a flood"; ``evicted``: closed for room)."""

    __slots__ = ("at", "cut", "evicted", "fired", "grace", "handshaken", "heard", "host", "peer", "sock")

    def __init__(self, at: float, *, host: str = "?", peer: str = "?", grace: float = DEFAULT_GRACE) -> None:
        self.at = at
        self.fired = False
        self.cut = False
        self.host = host  # the peer's address without the port
        self.peer = peer
        self.grace = grace
        self.heard = 0.0  # set by the room
        self.handshaken = False
        self.evicted = False
        self.sock: socket.socket | None = None

    def input_waits(self) -> bool:
        """Whether its client spoke: bytes of it wait unread, or the kernel received some within the grace
        (its worker reads inside OpenSSL's handshake, unseen; module rules)."""
        sock = self.sock
        return sock is not None and (input_waits(sock) or spoke_within(sock, self.grace))


class IdentityContext:
    """The server context for the current identity, rebuilt when its certificate changes.

    Thread-safe: ``context()`` may be called from every worker; a rebuild happens once per change.
    """

    def __init__(self, identity: Callable[[], Identity], *, keylog: Path | None = None,
                 num_tickets: int = 0) -> None:
        self._identity = identity
        self._keylog = keylog
        self._num_tickets = num_tickets
        self._lock = threading.Lock()
        ident = identity()
        self._current: tuple[x509.Certificate, ssl.SSLContext] = (ident.cert, self._build(ident))

    def _build(self, ident: Identity) -> ssl.SSLContext:
        # TLS 1.0..1.3: old phones speak only TLS 1.0 (spec §E.1); no client certificate (CERT_NONE).
        # the CUCM 14 TVS cipher list in its order (spec §E.1): TLS 1.2 phones get RSA key transport
        ctx = server_context(ident.cert, ident.key, min_version="1.0", max_version="1.3",
                             keylog_filename=self._keylog, ciphers=CUCM_TVS_CIPHERS)
        ctx.num_tickets = self._num_tickets
        if self._num_tickets == 0:
            ctx.options |= ssl.OP_NO_TICKET  # TLS 1.2: no NewSessionTicket either (see module docstring)
        # An end of stream without close_notify reads as a clean end (the request loop treats both alike:
        # suppress_ragged_eofs) and makes OpenSSL send no fatal alert: the watchdog's cut stays silent.
        ctx.options |= ssl.OP_IGNORE_UNEXPECTED_EOF
        return ctx

    def context(self) -> ssl.SSLContext:
        try:
            ident = self._identity()
        except PhoneEmuError as exc:
            _log.warning("tls: cannot load the current identity: %s", exc)
            return self._current[1]
        cert, ctx = self._current
        if ident.cert is cert:
            return ctx
        with self._lock:
            cert, ctx = self._current
            if ident.cert is cert or ident.cert == cert:
                self._current = (ident.cert, ctx)
                return ctx
            _log.info("tls: presenting %s", ident.name)
            try:
                ctx = self._build(ident)
            except PhoneEmuError as exc:
                _log.warning("tls: cannot load the current identity: %s", exc)
                return self._current[1]
            self._current = (ident.cert, ctx)
            return ctx


class ThreadedTvsServer:
    """TVS on ``host:port`` served by ``workers`` threads; ``start``/``close`` are coroutines so that it
    stands in for :class:`phoneemu.net.tls.TlsServer` in :class:`phoneemu.lab.servers.LabServers`."""

    def __init__(self, handler: TvsHandler, identity: Callable[[], Identity], host: str = "127.0.0.1",
                 port: int = 0, *, workers: int = DEFAULT_WORKERS, handshake_timeout: float = 10.0,
                 backlog: int = 1024, keylog: Path | None = None, stop_timeout: float = 5.0,
                 name: str = "tvs", log_on_loop: bool = True,
                 first_request_grace: float = DEFAULT_GRACE) -> None:
        if workers < 1:
            raise PhoneEmuError(f"workers {workers}: at least 1", path="workers")
        #: the open connections by address, and whom to close for room (module rules, under ``_lock``)
        self._room: Room[_Deadline] = Room(checked_grace(first_request_grace))
        #: connections closed to make room for a waiting one (module rules, "Room under a flood")
        self.evicted = 0
        self.refusals = RefusalLog(_log, name)
        self._held = 0  # workers holding a connection not closed for room (under ``_lock``)
        self.handler = handler
        self.host = host
        self.requested_port = port
        self.workers = workers
        self.handshake_timeout = handshake_timeout
        self.backlog = backlog
        self.stop_timeout = stop_timeout
        self.name = name
        self.log_on_loop = log_on_loop
        self.contexts = IdentityContext(identity, keylog=keylog)
        self.connections = 0
        self.errors = 0
        self._lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._open: dict[socket.socket, _Deadline] = {}
        self.tick = _MAX_TICK
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: collections.deque[TvsConnectionLog] = collections.deque()
        self._drain_scheduled = False

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> ThreadedTvsServer:
        """Bind and listen (OSError as :func:`asyncio.start_server` raises it), then start the pool."""
        self._loop = asyncio.get_running_loop()
        # blocking, no timeout: each worker sleeps in accept() until woken for it
        self._listener = tcp_listener(self.host, self.requested_port, backlog=self.backlog, blocking=True)
        self._stopping.clear()
        shortest = min(self.handshake_timeout, self.handler.read_timeout)
        self.tick = max(0.001, min(_MAX_TICK, shortest / 4))
        self._threads = [threading.Thread(target=self._worker, name=f"{self.name}-worker-{i}", daemon=True)
                         for i in range(self.workers)]
        self._threads.append(threading.Thread(target=self._watchdog, name=f"{self.name}-watchdog",
                                              daemon=True))
        for t in self._threads:
            t.start()
        return self

    @property
    def first_request_grace(self) -> float:
        """Seconds of silence after which a full server may close a connection without a request."""
        return self._room.grace

    @property
    def port(self) -> int:
        assert self._listener is not None, "server not started"
        return int(self._listener.getsockname()[1])

    async def close(self) -> None:
        """Stop accepting, cut open connections, join the workers (at most ``stop_timeout`` s), close the
        listener. Cancelled while it joins, the listener is closed all the same (the threads, told to
        stop, end on their own); before, the cancel left it open while the loop ran."""
        listener = self._listener
        if listener is None:
            return
        self._stopping.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # Linux: every blocked accept() returns EINVAL
        with self._lock:
            for conn in list(self._open):
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(conn, socket.SHUT_RDWR)
        threads, self._threads = self._threads, []
        try:
            await self._join(threads, self.stop_timeout)
        finally:
            listener.close()
            self._listener = None
            self._drain()
            with self._lock:
                self._room.clear()
        await asyncio.sleep(0)  # the refusals the watchdog handed over (_refused), then the last said
        self.refusals.flush()
        alive = [t.name for t in threads if t.is_alive()]
        if alive:
            _log.warning("%s: %d worker(s) still running after %ss: %s", self.name, len(alive),
                         self.stop_timeout, ", ".join(alive[:4]))

    async def _join(self, threads: list[threading.Thread], timeout: float) -> None:
        """Wait until ``threads`` have ended, ``timeout`` s at most, looking every :data:`_JOIN_POLL` s
        from the loop (module rules, "Stop": never in the loop's executor)."""
        start = time.monotonic()
        woken = start
        while any(t.is_alive() for t in threads):
            now = time.monotonic()
            if now - start >= timeout:
                return
            if now - woken >= _WAKE_EVERY and self._listener is not None:
                woken = now
                self._wake_acceptors()  # platforms where shutdown() does not wake accept()
            await asyncio.sleep(_JOIN_POLL)

    def _wake_acceptors(self) -> None:
        listener = self._listener
        if listener is None:
            return
        with contextlib.suppress(OSError), socket.create_connection(listener.getsockname()[:2], timeout=0.1):
            pass

    async def __aenter__(self) -> ThreadedTvsServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- workers ---------------------------------------------------------------------------------
    def _watchdog(self) -> None:
        """Shut down every connection past its deadline (see "Timeouts" in the module docstring)."""
        while not self._stopping.wait(self.tick):
            now = time.monotonic()
            with self._lock:
                for conn, deadline in self._open.items():
                    if now < deadline.at:
                        continue
                    # First the reading side only: the blocked handshake or read returns at once, and the
                    # worker counts and logs the timeout before the peer sees the connection end. A worker
                    # blocked in a write is woken a tick later by shutting the writing side too.
                    # socket.socket.shutdown, not SSLSocket's: that one also drops the TLS state.
                    if not deadline.fired:
                        deadline.fired = True
                        with contextlib.suppress(OSError):
                            socket.socket.shutdown(conn, socket.SHUT_RD)
                    elif now >= deadline.at + 2 * self.tick and not deadline.cut:
                        deadline.cut = True
                        with contextlib.suppress(OSError):
                            socket.socket.shutdown(conn, socket.SHUT_RDWR)
                if KERNEL_SAYS:
                    self._make_room(now)

    def _make_room(self, now: float) -> None:
        """Under ``_lock``, from the watchdog: close for room one connection for each waiting in the listen
        queue that no worker is free for, or about to be (module rules, "Room under a flood")."""
        listener = self._listener
        if listener is None or self._stopping.is_set():
            return
        waiting = accept_queue(listener)
        for _ in range(min(waiting - (self.workers - self._held), self.workers)):
            victim = self._room.victim(now)
            if victim is None:
                return
            self._evict(victim)

    def _evict(self, victim: _Deadline) -> None:
        """Under ``_lock``: shut ``victim`` down for room; its worker ends it silently and accepts the next
        (logged like a refusal, counted in :attr:`evicted`)."""
        victim.evicted = True
        self.evicted += 1
        self._held -= 1  # its worker is the waiting connection's
        self._room.asked(victim)  # not chosen twice while it ends
        step = "handshake done" if victim.handshaken else "TLS handshake unfinished"
        self._refused(victim.peer, f"closed to make room: no complete request, silent for "
                                   f"{self.first_request_grace:g} s ({step}; {len(self._open)} open, "
                                   f"workers {self.workers}; {victim.host} holds "
                                   f"{self._room.held(victim.host)})")
        if victim.sock is not None:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(victim.sock, socket.SHUT_RDWR)

    def _refused(self, peer: str, why: str) -> None:
        """``refusals.refused`` on the loop (its timer is the loop's); the loop closed: said here."""
        loop = self._loop
        try:
            if loop is None:
                raise RuntimeError("no loop")
            loop.call_soon_threadsafe(self.refusals.refused, peer, why)
        except RuntimeError:
            _log.warning("%s: refused a connection from %s: %s", self.name, peer, why)

    def _worker(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stopping.is_set():
            try:
                raw, addr = listener.accept()
            except OSError as exc:
                if self._stopping.is_set() or exc.errno in (errno.EINVAL, errno.EBADF):
                    return
                if exc.errno != errno.ECONNABORTED:
                    _log.warning("%s: accept failed: %s", self.name, exc)
                    time.sleep(_ACCEPT_RETRY)
                continue
            if self._stopping.is_set():
                raw.close()
                return
            peer = address_text(addr)
            host = str(addr[0]) if isinstance(addr, tuple) and addr else peer
            entry = _Deadline(time.monotonic() + self.handshake_timeout, host=host, peer=peer,
                              grace=self._room.grace)  # total, watched by _watchdog
            with self._lock:
                self._held += 1
            try:
                self._connection(raw, entry)
            except Exception as exc:  # a bug must not kill the worker
                with self._lock:
                    self.errors += 1
                _log.warning("%s: connection from %s failed: %s: %s", self.name, peer, type(exc).__name__,
                             exc)
            finally:
                with self._lock:
                    if not entry.evicted:  # (one closed for room was given back then)
                        self._held -= 1

    def _connection(self, raw: socket.socket, deadline: _Deadline) -> None:
        peer = deadline.peer
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if raw.gettimeout() is not None:  # a process-wide socket.setdefaulttimeout()
                raw.settimeout(None)
            conn = self.contexts.context().wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        except (OSError, ValueError) as exc:
            raw.close()
            _log.warning("%s: connection from %s failed: %s", self.name, peer, exc)
            return
        deadline.sock = conn
        with self._lock:
            self._open[conn] = deadline
            self.connections += 1
            self._room.opened(deadline, time.monotonic())  # (under the lock: each address's order kept)
        peer_closed = False
        try:
            if self._stopping.is_set():
                return
            try:
                conn.do_handshake()
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                if self._stopping.is_set() or deadline.evicted:
                    return  # cut by close() or for room: silent (module rules, "Stop", "Room")
                with self._lock:
                    self.errors += 1
                if deadline.fired:
                    _log.warning("%s: %s: TLS handshake timeout after %gs", self.name, peer,
                                 self.handshake_timeout)
                else:
                    _log.warning("%s: %s: TLS handshake failed: %s", self.name, peer, handshake_failure(exc))
                return
            if deadline.evicted:
                return
            if deadline.fired:  # cut just as it completed: the deadline passed all the same
                with self._lock:
                    self.errors += 1
                _log.warning("%s: %s: TLS handshake timeout after %gs", self.name, peer,
                             self.handshake_timeout)
                return
            deadline.handshaken = True
            if _QUICKACK is not None:  # ACK the client's Finished now (see module docstring)
                with contextlib.suppress(OSError):
                    conn.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            peer_closed = self._serve(conn, peer, deadline)
        finally:
            with self._lock:
                self._open.pop(conn, None)
                self._room.closed(deadline)
            self._close(conn, peer_closed=peer_closed)

    @staticmethod
    def _close(conn: ssl.SSLSocket, *, peer_closed: bool = False) -> None:
        """Discard unread input, send close_notify without waiting for the peer's (as asyncio's close
        does), then close. Unread input would make the kernel answer with RST instead of FIN (asyncio
        reads eagerly, so its peers see a clean close after e.g. a failed handshake). When the peer
        closed first (end of stream read, nothing buffered) there is nothing to discard and nobody
        left to notify: just close (3 system calls fewer per verify)."""
        if peer_closed:
            conn.close()
            return
        with contextlib.suppress(OSError, ValueError):
            conn.setblocking(False)
            for _ in range(_DRAIN_READS):
                if not socket.socket.recv(conn, _DRAIN_SIZE):
                    break
        with contextlib.suppress(OSError, ValueError):
            conn.unwrap()
        conn.close()

    def _serve(self, conn: ssl.SSLSocket, peer: str, deadline: _Deadline) -> bool:
        """The request loop of :meth:`TvsHandler.__call__`, on a blocking TLS socket whose ``deadline``
        the watchdog enforces; True when it ended because the peer closed cleanly between requests."""
        handler = self.handler
        cipher = conn.cipher()
        tls = f"{conn.version()} {cipher[0] if cipher else '?'}"
        _log.info("tvs: %s TLS HS Done (%s)", peer, tls)
        decoder = tvs.FrameDecoder()
        seen = 0
        deadline.at = time.monotonic() + handler.read_timeout  # for the first complete request
        while True:
            error: Exception | None = None
            try:
                data = conn.recv(_READ_SIZE)
            except (OSError, ValueError) as exc:  # ConnectionError and ssl.SSLError included
                data, error = b"", exc
            if deadline.evicted:  # closed for room: said with the refusals
                return False
            if deadline.fired:
                if seen == 0 or decoder.buffered:
                    self._refuse(peer, tls, f"timeout: no complete request within {handler.read_timeout}s "
                                            f"({decoder.buffered} byte(s) buffered)")
                else:
                    _log.debug("tvs: %s idle for %ss after %d request(s): closing", peer,
                               handler.read_timeout, seen)
                return False
            if self._stopping.is_set() and (error is not None or not data):
                return False  # cut by close(): the asyncio server cancels its handlers silently too
            if error is not None:
                self._refuse(peer, tls, f"connection lost: {error}")
                return False
            if not data:
                if decoder.buffered:
                    self._refuse(peer, tls, f"truncated: connection closed inside a frame "
                                            f"({decoder.buffered} byte(s) buffered)")
                    return False
                return True
            replies, bad = answer_frames(decoder, data, self._answer, limit=handler.max_requests - seen)
            if bad is not None and not replies:
                self._refuse(peer, tls, f"malformed: {bad}")
                return False
            if replies:  # the replies and the next request: read_timeout from now (partial data: not)
                deadline.at = time.monotonic() + handler.read_timeout
            if seen == 0:  # not asked yet: asked now, or heard from (module rules, "Room under a flood")
                with self._lock:
                    if replies:
                        self._room.asked(deadline)
                    else:
                        self._room.heard(deadline, time.monotonic())
            out = []
            for req, reply in replies:
                seen += 1
                kind = "VERIFY" if isinstance(req, tvs.VerifyRequest) else "QUERY"
                outcome = "valid" if reply.get(tvs.TvsTag.STATUS) == bytes([tvs.TvsStatus.VALID]) \
                    else "invalid"
                with self._lock:
                    handler.answered += 1
                _log.info("tvs: %s %s %s from %s: %s", peer, tls, kind, req.device_name, outcome)
                self._emit(TvsConnectionLog(peer=peer, tls=tls, request=kind, device_name=req.device_name,
                                            outcome=outcome))
                out.append(tvs.encode(reply))
            if out:
                try:
                    conn.sendall(b"".join(out))
                except (OSError, ValueError) as exc:
                    if deadline.evicted:
                        pass  # closed for room as it asked: said with the refusals
                    elif deadline.fired:
                        self._refuse(peer, tls, f"timeout: reply not taken within {handler.read_timeout}s")
                    elif not self._stopping.is_set():
                        self._refuse(peer, tls, f"connection lost: {exc}")
                    return False
            if bad is not None:  # garbage after good frames in the same read: answered them first
                self._refuse(peer, tls, f"malformed: {bad}")
                return False
            if seen >= handler.max_requests:
                _log.info("tvs: %s reached %d requests: closing", peer, handler.max_requests)
                return False

    def _answer(self, msg: tvs.TvsMessage) -> tuple[tvs.VerifyRequest | tvs.QueryRequest, tvs.TvsMessage]:
        """Same steps as :class:`phoneemu.protocols.tvs.TvsServerConnection`, keeping the typed pair."""
        req = tvs.parse_request(msg)
        tvs.validate_device_name(req.device_name)  # lenient: tvsd's strict check is optional (§E.6)
        return req, tvs.answer(req, self.handler.lookup)

    def _refuse(self, peer: str, tls: str, reason: str) -> None:
        with self._lock:
            self.handler.refused += 1
        _log.warning("tvs: %s (%s) closed: %s", peer, tls, reason)
        self._emit(TvsConnectionLog(peer=peer, tls=tls, request="", device_name="", outcome=reason))

    # --- log hand-over to the event loop ---------------------------------------------------------
    def _emit(self, entry: TvsConnectionLog) -> None:
        on_log = self.handler.on_log
        if on_log is None:
            return
        if not self.log_on_loop:
            with self._log_lock:
                try:
                    on_log(entry)
                except Exception:
                    _log.exception("tvs: log callback failed")
            return
        self._pending.append(entry)
        if self._drain_scheduled:
            return  # the scheduled drain has not cleared the flag yet, so it will see this entry
        self._drain_scheduled = True
        loop = self._loop
        try:
            if loop is None:
                raise RuntimeError("no loop")
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError:  # loop closed: deliver here rather than lose the entry
            self._drain()

    def _drain(self) -> None:
        self._drain_scheduled = False
        on_log = self.handler.on_log
        while True:
            try:
                entry = self._pending.popleft()
            except IndexError:
                return
            if on_log is None:
                continue
            try:
                on_log(entry)
            except Exception:
                _log.exception("tvs: log callback failed")
