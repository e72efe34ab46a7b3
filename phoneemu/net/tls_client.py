"""A lean asyncio TLS client connection: ``ssl.SSLObject`` over a non-blocking socket (spec §E.1).

Why not ``asyncio.open_connection(ssl=...)``: its SSL protocol machinery (transport, protocol,
stream reader/writer, one task per ``wait_for``) costs more Python time per short connection than
the TLS handshake itself; fleets open one TVS connection per phone boot (issue #6). This class
drives the same OpenSSL state machine through memory BIOs with the loop's socket calls, so the
cryptography, the certificates and the bytes on the wire are the same.

Rules:

* :meth:`TlsClientConnection.open` bounds connect and handshake by one deadline (past it,
  ``TransportError(kind="timeout")``); ``send``/``recv`` are bounded by the caller, who holds
  :attr:`TlsClientConnection.deadline` (one timer per exchange, not one per read). Connect
  failures are ``"unreachable"``, TLS failures ``"tls"``, a peer that closes or resets mid-way
  ``"unreachable"`` (like a lost connection; one that closes in the handshake is said to have closed
  it, with how many bytes it had sent, not OpenSSL's ``UNEXPECTED_EOF_WHILE_READING``).
* The handshake is bounded by that deadline and by bytes, never by a count of reads: a legitimate
  server whose flights arrive in many small pieces (a long chain, a link or middlebox that delivers
  each segment on its own) completes it however many reads it takes; a server that has sent more than
  :data:`HANDSHAKE_MAX_BYTES` (1 MiB, far above any real chain) without ending it is a ``"tls"``
  failure (one that streams endless HelloRequests, which OpenSSL skips), and a trickler is cut by the
  deadline. (Each read round follows at least one new byte or the end of the stream.)
* :attr:`TlsClientConnection.peer_cert` and :attr:`~TlsClientConnection.description` are those of the
  handshake, read when it ends: the certificate the caller compares with its trust list stays the
  connection's, and reading it after a later TLS error (OpenSSL then says "handshake not done yet":
  a ValueError) or a declined renegotiation (phoneemu.net.tls) cannot fail.
* A server that answers, but not with TLS — its first bytes no TLS record header (a content type 20-24, then
  version major 3): an HTTP or SSH server on the TVS port, a SIP server on the SIPS port, a TVS or CAPF
  speaking its frames without TLS — is said so, whatever ended the handshake (OpenSSL's
  ``WRONG_VERSION_NUMBER``, the server closing, the deadline), and refused at its first byte that cannot
  begin a record as it comes (no wait for OpenSSL's 5-byte record header): ``HOST:PORT: the server
  answered, but not with TLS (it begins 48 ('H'): looks like HTTP?)``, kind ``"tls"`` as a handshake
  failure (ours) — told apart from a real handshake failure (a TLS alert, a version refused) and from no
  answer (closed with nothing sent, a timeout with nothing heard). Its bytes are quoted up to that byte,
  never further (at most two: ``begins 16 01``), and what it may be is told by that byte
  when it is the first ('H' HTTP, 'S' SSH or SIP, 0x57 a TVS frame, 0x55 a CAPF frame): the same text
  whatever pieces the bytes came in (was: the bytes the handshake's reads held, up to 8: ``48 54 54 50 2f
  31 2e 31 ...`` whole, ``48 54 54 50 2f`` a byte at a time).
* A handshake failure after the server asked for a client certificate (its TLS 1.0-1.2
  CertificateRequest, read from the server's first :data:`~phoneemu.net.tls_handshake.HANDSHAKE_LIMIT`
  bytes, kept until the handshake ends) says so: a TLS 1.2 server that requires one answers a phone
  without one with a bare ``handshake_failure`` alert.
* ``TCP_NODELAY``: a TLS flight and the request that follows it are written together, never held
  back by Nagle's algorithm.
* :meth:`TlsClientConnection.close` closes the TCP connection without a close_notify alert (the
  application framing delimits messages, spec §E.2).
* Reads: one reader callback registered for the connection's life puts what arrives into the
  incoming BIO and wakes the coroutine waiting for it; writes go straight to the socket (a flight
  fits the send buffer) and wait for writability only when the kernel takes part of it. Per
  connection this is one poll registration instead of one per read (``loop.sock_recv``): about
  half the ``epoll_ctl``/``ioctl`` calls of a TVS exchange (issue #6).
* Connect: the socket connects to the resolved address itself (:func:`_sock_connect`), not with
  ``loop.sock_connect``: uvloop's resolves the address again with a ``getaddrinfo`` on libuv's thread
  pool (its numeric fast path does not take the call's socket type), a thread hand-off per TVS
  connection. A connection the kernel completed at once (loopback) is seen with one ``poll``
  instead of a writer registration and a loop iteration.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import ipaddress
import os
import select
import socket
import ssl
from collections.abc import Sequence

from phoneemu.errors import TransportError
from phoneemu.net._oserror import os_error_text
from phoneemu.net.capture import note_connect
from phoneemu.net.tls_handshake import HANDSHAKE_LIMIT, handshake_messages
from phoneemu.values import host_port

__all__ = ["HANDSHAKE_MAX_BYTES", "NOT_TLS", "RECV_MAX_ROUNDS", "TlsClientConnection"]

#: Bytes from the server after which a handshake that has not ended fails (module docstring)
HANDSHAKE_MAX_BYTES = 1 << 20
#: reads one :meth:`TlsClientConnection.recv` makes at most before a record is whole: each follows at least
#: one new byte, so a record (at most 16 KiB + 256 + 5 bytes, RFC 8446 §5.2) and the post-handshake messages
#: before it fit even a byte at a time (was 1,024 reads: a 16 KiB record delivered in small pieces was "no
#: complete TLS record"); the caller's deadline bounds the time
RECV_MAX_ROUNDS = 1 << 17
#: what a refusal of a server that answered with no TLS record says (kind ``"tls"``; ``phoneemu tvs`` tells
#: it apart from a handshake that failed by these words)
NOT_TLS = "the server answered, but not with TLS"

#: TLS record content types (RFC 8446 §5.1, RFC 6520): the first byte of a server's answer that is TLS
_TLS_RECORD_TYPES = frozenset({20, 21, 22, 23, 24})
#: what a server's answer that is not TLS may be, told by its first byte: the one refused (module docstring)
_LOOKS_LIKE = {0x48: "HTTP?", 0x53: "SSH or SIP?", 0x57: "a TVS frame, a TVS without TLS? (spec §E.2)",
               0x55: "a CAPF frame, a CAPF without TLS? (spec §F.2)"}

_READ_SIZE = 65536
_MAX_ADDRESSES = 8  # addresses of one name tried, in the resolver's order


@functools.lru_cache(maxsize=256)
def _addresses(host: str, port: int) -> tuple[tuple[int, tuple[str, int]], ...] | None:
    """``((family, address),)`` for an IP literal (no lookup; remembered), None for a name."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return ((socket.AF_INET6 if ip.version == 6 else socket.AF_INET, (str(ip), port)),)


def _hostname(ctx: ssl.SSLContext, name: str, port: int) -> str | None:
    """The ``server_hostname`` to wrap with: ``name``, or None for an IP address when ``ctx`` checks no host
    name. OpenSSL sends no SNI for an address either way (RFC 6066 §3), so the ClientHello is the same; None
    spares Python's IDNA encoding of the address, a TVS connection per phone boot (issue #6)."""
    if not ctx.check_hostname and _addresses(name, port) is not None:
        return None
    return name


_CERTIFICATE_REQUEST = 13  # handshake message type (RFC 5246 §7.4.4)
_IN_PROGRESS = frozenset({errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR})


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def _sock_connect(loop: asyncio.AbstractEventLoop, sock: socket.socket, addr: tuple[str, int]) -> None:
    """Connect the non-blocking ``sock`` to the IP address ``addr`` (see "Connect" in the module docstring);
    OSError when it fails."""
    err = sock.connect_ex(addr)
    if err == 0:
        return
    if err not in _IN_PROGRESS:
        raise OSError(err, os.strerror(err))
    fd = sock.fileno()
    probe = select.poll()
    probe.register(fd, select.POLLOUT)
    if not probe.poll(0):  # still in progress: wait for the loop to see it writable
        fut = loop.create_future()
        loop.add_writer(fd, _wake, fut)
        try:
            await fut
        finally:
            loop.remove_writer(fd)
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, os.strerror(err))


async def _connect(loop: asyncio.AbstractEventLoop, host: str, port: int) -> socket.socket:
    """A connected non-blocking ``TCP_NODELAY`` socket to the first address of ``host`` that answers."""
    targets: Sequence[tuple[int, tuple[str, int]]] | None = _addresses(host, port)
    if targets is None:
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise TransportError(f"{host_port(host, port)}: cannot resolve: {exc}",
                                 kind="unreachable") from exc
        targets = [(int(info[0]), (str(info[4][0]), int(info[4][1]))) for info in infos[:_MAX_ADDRESSES]]
    failures: list[str] = []
    for family, addr in targets:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            note_connect(*addr)  # a live capture's: the phones' host (phoneemu.net.capture rules)
            await _sock_connect(loop, sock, addr)
            return sock
        except OSError as exc:
            sock.close()
            failures.append(f"{addr[0]}: {os_error_text(exc)}")
        except BaseException:
            sock.close()
            raise
    raise TransportError(f"{host_port(host, port)}: cannot connect: {'; '.join(failures) or 'no address'}",
                         kind="unreachable")


def _handshake_records(stream: bytes) -> bytes:
    """``stream`` up to its first record that is not a handshake record (the alert that ended it)."""
    pos = 0
    for _ in range(HANDSHAKE_LIMIT // 5):
        if pos + 5 > len(stream) or stream[pos] != 22:
            break
        pos += 5 + int.from_bytes(stream[pos + 3:pos + 5], "big")
    return stream[:pos]


def _refused_head(head: bytes | bytearray) -> bytes:
    """``head`` up to its first byte that cannot begin a TLS record (a content type 20-24, then version major
    3), or ``b""`` when none of it is refused: it may be TLS (module docstring)."""
    if head[:1] and head[0] not in _TLS_RECORD_TYPES:
        return bytes(head[:1])
    if head[1:2] and head[1] != 3:
        return bytes(head[:2])
    return b""


def _discard(conn: TlsClientConnection | None, sock: socket.socket | None) -> None:
    """Close what a failed :meth:`TlsClientConnection.open` had made."""
    if conn is not None:
        conn.close()
    elif sock is not None:
        sock.close()


class TlsClientConnection:
    """``conn = await TlsClientConnection.open(host, port, ctx, timeout=5)``; ``send``/``recv``/``close``."""

    __slots__ = ("_described", "_eof", "_fd", "_fresh", "_got", "_head", "_in", "_loop", "_lost", "_out",
                 "_peer", "_reading", "_seen", "_sock", "_waiter", "deadline", "host", "obj", "port")

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, obj: ssl.SSLObject,
                 incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, *, host: str, port: int,
                 deadline: float) -> None:
        self._loop = loop
        self._sock = sock
        self.obj = obj
        self._in = incoming
        self._out = outgoing
        self.host = host
        self.port = port
        self.deadline = deadline
        self._fd = sock.fileno()
        self._waiter: asyncio.Future[None] | None = None
        self._fresh = False  # bytes (or the end of the stream) arrived since the last _fill
        self._eof = False
        self._lost: OSError | None = None
        self._seen: bytearray | None = bytearray()  # the server's bytes until the handshake ends (bounded)
        self._got = 0  # how many bytes the server sent in the handshake (HANDSHAKE_MAX_BYTES)
        self._head = b""  # the server's first bytes up to one refused, when the handshake failed (docstring)
        self._peer: bytes | None = None  # the handshake's server certificate and description (docstring)
        self._described = "? ?"
        loop.add_reader(self._fd, self._on_readable)  # one registration for the connection's life
        self._reading = True

    @classmethod
    async def open(cls, host: str, port: int, ctx: ssl.SSLContext, *, timeout: float,
                   server_hostname: str | None = None) -> TlsClientConnection:
        """Connect and complete the handshake within ``timeout`` seconds (see module docstring)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        step = "connect"
        sock: socket.socket | None = None
        conn: TlsClientConnection | None = None
        try:
            async with asyncio.timeout_at(deadline):
                sock = await _connect(loop, host, port)
                step = "TLS handshake"
                incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
                name = _hostname(ctx, server_hostname or host, port)
                obj = ctx.wrap_bio(incoming, outgoing, server_hostname=name)
                conn = cls(loop, sock, obj, incoming, outgoing, host=host, port=port, deadline=deadline)
                await conn._handshake()
            return conn
        except TimeoutError:
            _discard(conn, sock)
            not_tls = conn._not_tls() if conn is not None else None
            if not_tls is not None:  # it answered something, then nothing more in time (module docstring)
                raise not_tls from None
            raise TransportError(f"{host_port(host, port)}: {step} timeout after {timeout}s",
                                 kind="timeout") from None
        except TransportError as exc:
            _discard(conn, sock)
            not_tls = conn._not_tls() if conn is not None else None
            if not_tls is None:
                raise
            raise not_tls from exc
        except BaseException:
            _discard(conn, sock)
            raise

    async def _handshake(self) -> None:
        """Drive the handshake to its end; bounded by the deadline (the caller's) and by
        :data:`HANDSHAKE_MAX_BYTES` from the server, not by a count of reads (module docstring)."""
        try:
            for _ in range(HANDSHAKE_MAX_BYTES + 2):  # each round follows >= 1 new byte or the end of stream
                try:
                    self.obj.do_handshake()
                    self._peer = self.obj.getpeercert(binary_form=True)
                    cipher = self.obj.cipher()
                    self._described = f"{self.obj.version() or '?'} {cipher[0] if cipher else '?'}"
                    return  # the last flight stays in the BIO: sent with the first request
                except ssl.SSLWantReadError:
                    if self._eof:  # OpenSSL was given the end of the stream and wants more: no round spins
                        raise self._closed_in_handshake() from None
                    await self._flush()
                    await self._fill()
                except ssl.SSLError as exc:
                    raise await self._handshake_error(exc) from exc
                if _refused_head(self._seen or b""):  # as it comes, not at OpenSSL's 5th byte (docstring)
                    where = host_port(self.host, self.port)
                    raise TransportError(f"{where}: TLS handshake failed: no TLS record header", kind="tls")
                if self._got > HANDSHAKE_MAX_BYTES:
                    break
            raise TransportError(f"{host_port(self.host, self.port)}: TLS handshake did not finish within "
                                 f"{HANDSHAKE_MAX_BYTES} bytes from the server ({self._got} received)",
                                 kind="tls")
        except BaseException:  # (a timeout's cancellation too) its first bytes refused, for open's reason
            self._head = _refused_head(self._seen or b"")
            raise
        finally:
            self._seen = None

    def _not_tls(self) -> TransportError | None:
        """The failure of a handshake whose server answered with bytes that are no TLS record, quoted up to
        the first that cannot begin one, its hint told by that byte when it is the first (module docstring);
        or None: nothing came, or what came may be TLS."""
        head = self._head
        if not head:
            return None
        shown = " ".join(f"{b:02x}" for b in head)
        text = head.decode("latin-1")
        said = f" ({text!r})" if text.isascii() and text.isprintable() else ""  # text: "H", "S"
        like = f": looks like {_LOOKS_LIKE[head[0]]}" if len(head) == 1 and head[0] in _LOOKS_LIKE else ""
        return TransportError(f"{host_port(self.host, self.port)}: {NOT_TLS} (it begins {shown}{said}{like})",
                              kind="tls")

    async def _handshake_error(self, exc: ssl.SSLError) -> TransportError:
        """Why the handshake failed, in words (module docstring)."""
        where = host_port(self.host, self.port)
        seen = bytes(self._seen or b"")
        if self._eof and (isinstance(exc, ssl.SSLEOFError) or exc.reason == "UNEXPECTED_EOF_WHILE_READING"):
            return self._closed_in_handshake()
        with contextlib.suppress(Exception):
            await self._flush()  # the alert, for the server's log
        why = ""
        with contextlib.suppress(Exception):  # (a server's bytes that do not frame: no hint, the reason)
            if any(kind == _CERTIFICATE_REQUEST for kind, _ in handshake_messages(_handshake_records(seen))):
                why = " (the server asked for a client certificate)"
        return TransportError(f"{where}: TLS handshake failed: {exc.reason or exc}{why}", kind="tls")

    def _closed_in_handshake(self) -> TransportError:
        """The server closed the connection before the handshake ended: said with how much it had sent."""
        where = host_port(self.host, self.port)
        return TransportError(f"{where}: the server closed the connection during the TLS handshake "
                              f"({self._got} bytes from it)", kind="unreachable")

    def _on_readable(self) -> None:
        """Reader callback: what the socket holds goes into the incoming BIO; a waiting _fill wakes."""
        try:
            data = self._sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost = exc
            data = b""
        if data:
            self._in.write(data)
            seen = self._seen
            if seen is not None:  # in the handshake: counted, its first bytes kept (module docstring)
                self._got += len(data)
                if len(seen) < HANDSHAKE_LIMIT:
                    seen += data[:HANDSHAKE_LIMIT - len(seen)]
        else:  # end of stream (or a reset): no more reads
            self._eof = True
            self._stop_reading()
        self._fresh = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _stop_reading(self) -> None:
        if self._reading:
            self._reading = False
            try:  # noqa: SIM105 - contextlib.suppress costs three calls a connection (issue #6)
                self._loop.remove_reader(self._fd)
            except Exception:  # noqa: S110 - the loop may be closing
                pass

    async def _flush(self) -> None:
        data = self._out.read()
        if not data:
            return
        try:
            try:
                sent = self._sock.send(data)  # a flight fits the send buffer: no wait, no future
            except (BlockingIOError, InterruptedError):
                sent = 0
            if sent < len(data):
                await self._loop.sock_sendall(self._sock, data[sent:])
        except OSError as exc:
            raise TransportError(f"{host_port(self.host, self.port)}: connection lost: {exc}",
                                 kind="unreachable") from exc

    async def _fill(self) -> None:
        """Wait until the reader callback has put new bytes (or the end of the stream) in the BIO."""
        if not self._fresh and not self._eof:
            waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        self._fresh = False
        if self._lost is not None:
            raise TransportError(f"{host_port(self.host, self.port)}: connection lost: {self._lost}",
                                 kind="unreachable") from self._lost
        if self._eof:
            self._in.write_eof()

    @property
    def peer_cert(self) -> bytes | None:
        """DER of the server's leaf certificate (present in CERT_NONE mode too), as the handshake gave it.

        Nothing here checks it: the caller matches it with the phone's trust list
        (:mod:`phoneemu.phone.rules`), which checks no validity dates of TLS peers (spec: none documented)."""
        return self._peer

    @property
    def description(self) -> str:
        """e.g. ``"TLSv1.2 AES256-GCM-SHA384"``, of the handshake."""
        return self._described

    async def send(self, data: bytes) -> None:
        try:
            self.obj.write(data)
        except ssl.SSLError as exc:
            raise TransportError(f"{host_port(self.host, self.port)}: TLS error: {exc.reason or exc}",
                                 kind="tls") from exc
        await self._flush()

    async def recv(self) -> bytes:
        """Some application bytes; ``b""`` at the end of the stream. No time bound of its own: the
        caller bounds its exchange (e.g. ``asyncio.timeout_at(conn.deadline)``)."""
        for _ in range(RECV_MAX_ROUNDS):  # each round follows >= 1 new byte or the end of the stream
            try:
                return self.obj.read(_READ_SIZE)
            except ssl.SSLWantReadError:
                await self._flush()  # e.g. a key update answer
                await self._fill()
            except ssl.SSLZeroReturnError:
                return b""
            except ssl.SSLEOFError:
                return b""
            except ssl.SSLError as exc:
                raise TransportError(f"{host_port(self.host, self.port)}: TLS error: {exc.reason or exc}",
                                     kind="tls") from exc
        where = host_port(self.host, self.port)
        raise TransportError(f"{where}: no complete TLS record within {RECV_MAX_ROUNDS} reads",
                             kind="protocol")

    def close(self) -> None:
        """Close the socket (TCP FIN) without a TLS close_notify: the TVS/CAPF framing says where a
        message ends, so no truncation can go unnoticed, and one segment less per connection."""
        self._stop_reading()
        self._sock.close()
