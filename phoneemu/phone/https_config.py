"""The phone's HTTPS config download client: TCP 6971 (spec §H.1), the transport of the boot's config step.

:class:`HttpsConfigClient` (``await client(name, accept_server=...)``) is the boot's ``https_config``
getter (:class:`phoneemu.phone.boot.HttpsConfigGetter`); the boot decides when it is used
(:func:`phoneemu.phone.rules.https_config_applies`) and what its certificate and file mean
(:func:`~phoneemu.phone.rules.decide_https_config_server`, :func:`~phoneemu.phone.rules.decide_https_config`).

Rules:

1. TLS (:class:`~phoneemu.net.tls_client.TlsClientConnection`) with the phone's ``CERT_NONE`` client context
   in the profile's TLS versions; connect and handshake bounded by ``timeout``.
2. ``accept_server(der)`` judges the certificate presented before anything is sent: refused, the
   connection is closed without a request (TransportError kind ``"tls"``, :data:`SERVER_REFUSED`).
3. ``GET /<name> HTTP/1.1`` (``Host``, ``Connection: close``); the response is read by
   :func:`phoneemu.net.http.read_response`, the rules of the phone's file fetches (interim 1xx skipped,
   Content-Length, chunked or read-to-end bodies, a strict head), the body at most ``max_size`` bytes
   (refused above it, never kept cut short: kind ``"too-large"``; by default the config parser's own cap,
   :data:`phoneemu.formats.config.CONFIG_LIMIT`: a larger body could be no config, so it is not downloaded).
   The whole exchange, connection included, is bounded by ``timeout`` (kind ``"timeout"``): a server
   trickling bytes is cut.
4. 200: the body. 404: kind ``"not-found"``; any other status: kind ``"error"`` naming it; a malformed
   response: kind ``"protocol"``. A body delimited by the connection's end is kept only when TLS ended it
   with a close_notify (RFC 9112 §9.8, as :mod:`phoneemu.phone.https`): a bare TCP close may be a cut.

Our conventions: no redirect is followed (the phone asks the host DHCP option 150 named); the port is
:data:`HTTPS_CONFIG_PORT` unless the target says another (a lab's); the client keeps no connection
between requests (``Connection: close``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Sequence
from urllib.parse import quote

from phoneemu.errors import TransportError
from phoneemu.formats.config import CONFIG_LIMIT
from phoneemu.net.http import host_header, read_response
from phoneemu.net.tls import phone_client_context
from phoneemu.net.tls_client import TlsClientConnection
from phoneemu.phone.https import ended_by_close_notify, read_to_close
from phoneemu.values import host_port

__all__ = ["HTTPS_CONFIG_PORT", "SERVER_REFUSED", "HttpsConfigClient"]

#: The HTTPS config download port (spec §H.1)
HTTPS_CONFIG_PORT = 6971
#: A refused server's failure (after ``HOST:PORT: ``): its certificate is no ITL TFTP EC record (§G.5)
SERVER_REFUSED = "HTTPS config server certificate not accepted (not an ITL TFTP record with an EC key)"
_MAX_HEAD = 8192  # bytes of a response head, as phoneemu.net.http's default
#: bytes the server may send in all, beyond the body's cap: the head and a chunked body's framing (ours)
_FRAMING = 64 * 1024


async def _pump(conn: TlsClientConnection, reader: asyncio.StreamReader, limit: int) -> None:
    """Feed what the connection receives into ``reader`` until its end; at most ``limit`` bytes (more is a
    ``"too-large"`` failure of the read); a transport failure is the read's."""
    fed = 0
    try:
        while data := await conn.recv():
            fed += len(data)
            if fed > limit:
                raise TransportError(f"{host_port(conn.host, conn.port)}: the response goes on past {limit} "
                                     "bytes", kind="too-large")
            reader.feed_data(data)
        reader.feed_eof()
    except TransportError as exc:
        reader.set_exception(exc)


class HttpsConfigClient:
    """``await client(name, accept_server=check)`` → the body of ``https://host:port/name`` (module rules)."""

    def __init__(self, host: str, port: int = HTTPS_CONFIG_PORT, *, timeout: float = 5.0,
                 tls_versions: Sequence[str] = ("1.2", "1.3"), keylog: str | None = None,
                 max_size: int = CONFIG_LIMIT) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.tls_versions = tuple(tls_versions)
        self.keylog = keylog
        self.max_size = max_size
        self._context: ssl.SSLContext | None = None  # looked up at the first request, then held

    @property
    def where(self) -> str:
        """``HOST:PORT`` asked (``[V6]:PORT``)."""
        return host_port(self.host, self.port)

    async def __call__(self, name: str, *, accept_server: Callable[[bytes | None], bool]) -> bytes:
        where = self.where
        if self._context is None:  # held: one with a key log is kept only while held (net.tls)
            self._context = phone_client_context(self.tls_versions, self.keylog)
        ctx = self._context
        try:
            conn = await TlsClientConnection.open(self.host, self.port, ctx, timeout=self.timeout)
        except ValueError as exc:  # a name IDNA cannot encode: no lookup
            raise TransportError(f"{where}: cannot resolve: not a valid host name ({exc})",
                                 kind="unreachable", path=name) from exc
        try:
            if not accept_server(conn.peer_cert):
                raise TransportError(f"{where}: {SERVER_REFUSED}", kind="tls", path=name)
            async with asyncio.timeout_at(conn.deadline):  # connect + handshake + exchange: one bound
                return await self._exchange(conn, name)
        except TimeoutError:
            raise TransportError(f"https://{where}/{name}: no complete response within {self.timeout:g}s",
                                 kind="timeout", path=name) from None
        finally:
            conn.close()

    async def _exchange(self, conn: TlsClientConnection, name: str) -> bytes:
        """Rules 3-4 of the module docstring over the open connection ``conn``."""
        where = f"https://{self.where}/{name}"
        await conn.send(f"GET /{quote(name)} HTTP/1.1\r\nHost: {host_header(self.host, self.port, 443)}\r\n"
                        "Accept-Encoding: identity\r\nConnection: close\r\n\r\n".encode("ascii"))
        reader = asyncio.StreamReader(limit=_MAX_HEAD)
        pump = asyncio.create_task(_pump(conn, reader, self.max_size + _FRAMING))
        try:
            status, fields, body = await read_response(reader, name, max_size=self.max_size,
                                                       max_header=_MAX_HEAD)
            if read_to_close(status, fields):
                await pump  # the end of the stream was read: the pump has ended
                if not ended_by_close_notify(conn.obj):
                    raise TransportError(f"{where}: HTTP {status} body ({len(body)} bytes, no "
                                         "Content-Length, not chunked) ended by a TCP close without the TLS "
                                         "close_notify: it may have been cut short, not kept (RFC 9112 §9.8)",
                                         kind="protocol", path=name)
        except TransportError as exc:
            if exc.kind in ("too-large", "protocol") and not exc.message.startswith(where):
                raise TransportError(f"{where}: {exc.message}", kind=exc.kind, path=name) from exc
            raise
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        if status == 404:
            raise TransportError(f"{where}: HTTP 404, not found", kind="not-found", path=name)
        if status != 200:
            raise TransportError(f"{where}: HTTP {status}, not 200", kind="error", path=name)
        return body
