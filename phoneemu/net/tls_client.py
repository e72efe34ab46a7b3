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
  ``"unreachable"`` (like a lost connection).
* ``TCP_NODELAY``: a TLS flight and the request that follows it are written together, never held
  back by Nagle's algorithm.
* :meth:`TlsClientConnection.close` closes the TCP connection without a close_notify alert (the
  application framing delimits messages, spec §E.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl

from phoneemu.errors import TransportError

__all__ = ["TlsClientConnection"]

_READ_SIZE = 65536
_MAX_ADDRESSES = 8  # addresses of one name tried, in the resolver's order


def _addresses(host: str, port: int) -> list[tuple[int, tuple[str, int]]] | None:
    """``[(family, address)]`` for an IP literal (no lookup), None for a name."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return [(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, (str(ip), port))]


async def _connect(loop: asyncio.AbstractEventLoop, host: str, port: int) -> socket.socket:
    """A connected non-blocking ``TCP_NODELAY`` socket to the first address of ``host`` that answers."""
    targets = _addresses(host, port)
    if targets is None:
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise TransportError(f"{host}:{port}: cannot resolve: {exc}", kind="unreachable") from exc
        targets = [(int(info[0]), (str(info[4][0]), int(info[4][1]))) for info in infos[:_MAX_ADDRESSES]]
    failures: list[str] = []
    for family, addr in targets:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await loop.sock_connect(sock, addr)
            return sock
        except OSError as exc:
            sock.close()
            failures.append(f"{addr[0]}: {exc}")
        except BaseException:
            sock.close()
            raise
    raise TransportError(f"{host}:{port}: cannot connect: {'; '.join(failures) or 'no address'}",
                         kind="unreachable")


class TlsClientConnection:
    """``conn = await TlsClientConnection.open(host, port, ctx, timeout=5)``; ``send``/``recv``/``close``."""

    __slots__ = ("_in", "_loop", "_out", "_sock", "deadline", "host", "obj", "port")

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

    @classmethod
    async def open(cls, host: str, port: int, ctx: ssl.SSLContext, *, timeout: float,
                   server_hostname: str | None = None) -> TlsClientConnection:
        """Connect and complete the handshake within ``timeout`` seconds (see module docstring)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        step = "connect"
        sock: socket.socket | None = None
        try:
            async with asyncio.timeout_at(deadline):
                sock = await _connect(loop, host, port)
                step = "TLS handshake"
                incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
                obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_hostname or host)
                conn = cls(loop, sock, obj, incoming, outgoing, host=host, port=port, deadline=deadline)
                await conn._handshake()
            return conn
        except TimeoutError:
            if sock is not None:
                sock.close()
            raise TransportError(f"{host}:{port}: {step} timeout after {timeout}s", kind="timeout") from None
        except BaseException:
            if sock is not None:
                sock.close()
            raise

    async def _handshake(self) -> None:
        for _ in range(64):  # a handshake is a few flights; bounded all the same
            try:
                self.obj.do_handshake()
                return  # the last flight stays in the BIO: sent with the first request
            except ssl.SSLWantReadError:
                await self._flush()
                await self._fill()
            except ssl.SSLError as exc:
                with contextlib.suppress(Exception):
                    await self._flush()  # the alert, for the server's log
                raise TransportError(f"{self.host}:{self.port}: TLS handshake failed: {exc.reason or exc}",
                                     kind="tls") from exc
        raise TransportError(f"{self.host}:{self.port}: TLS handshake did not finish", kind="tls")

    async def _flush(self) -> None:
        data = self._out.read()
        if not data:
            return
        try:
            await self._loop.sock_sendall(self._sock, data)
        except OSError as exc:
            raise TransportError(f"{self.host}:{self.port}: connection lost: {exc}",
                                 kind="unreachable") from exc

    async def _fill(self) -> None:
        try:
            data = await self._loop.sock_recv(self._sock, _READ_SIZE)
        except OSError as exc:
            raise TransportError(f"{self.host}:{self.port}: connection lost: {exc}",
                                 kind="unreachable") from exc
        if not data:
            self._in.write_eof()
        else:
            self._in.write(data)

    @property
    def peer_cert(self) -> bytes | None:
        """DER of the server's leaf certificate (present in CERT_NONE mode too)."""
        der: bytes | None = self.obj.getpeercert(binary_form=True)
        return der

    @property
    def description(self) -> str:
        """e.g. ``"TLSv1.2 AES256-GCM-SHA384"``."""
        cipher = self.obj.cipher()
        return f"{self.obj.version() or '?'} {cipher[0] if cipher else '?'}"

    async def send(self, data: bytes) -> None:
        try:
            self.obj.write(data)
        except ssl.SSLError as exc:
            raise TransportError(f"{self.host}:{self.port}: TLS error: {exc.reason or exc}",
                                 kind="tls") from exc
        await self._flush()

    async def recv(self) -> bytes:
        """Some application bytes; ``b""`` at the end of the stream. No time bound of its own: the
        caller bounds its exchange (e.g. ``asyncio.timeout_at(conn.deadline)``)."""
        for _ in range(1024):  # each round reads one TCP segment batch; records are ≤ 16 KiB
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
                raise TransportError(f"{self.host}:{self.port}: TLS error: {exc.reason or exc}",
                                     kind="tls") from exc
        raise TransportError(f"{self.host}:{self.port}: no complete TLS record", kind="protocol")

    def close(self) -> None:
        """Close the socket (TCP FIN) without a TLS close_notify: the TVS/CAPF framing says where a
        message ends, so no truncation can go unnoticed, and one segment less per connection."""
        self._sock.close()
