"""Minimal asyncio HTTP/1.1 file server and client for the phone download port (spec §H.1, TCP 6970).

Rules:

* Server: GET and HEAD only (other methods → 405); the path is percent-decoded, the query string
  ignored, one leading ``/`` removed, and the rest is the TFTP file name served by the same provider
  as TFTP. A name refused by :func:`~phoneemu.net.tftp_codec.unsafe_name_reason` → 403 (logged);
  missing → 404; a malformed request line or header → 400; a request line plus headers above
  ``max_header`` bytes (default 8 KiB) → 431; a head cut by the client's close → 400; a head begun
  but not ended within ``idle_timeout`` (a slow or stalled client; on a connection's first request,
  also one not begun) → 408, an idle keep-alive connection closed silently; a control character other
  than HTAB in the head → 400; each logged with its peer, status and reason (WARNING, as a refused path:
  at once, then a flood's at most once a second with its count by status, ``http: 1,234 malformed requests
  in the last 1.0 s (400 1,200, 431 34)``: :class:`phoneemu.net.tls.FailureLog`; was: INFO, nothing at
  ``lab serve``'s default level; a connection that sent nothing is still INFO). A line of the head ends
  with CRLF or a bare LF (RFC 9112 §2.2 lets a server take LF), empty lines before the request line are
  skipped (§2.2). A request body is not accepted (Content-Length > 0 or chunked → 400): every Content-Length
  line is checked, not only the last (``Content-Length: 28`` then ``Content-Length: 0`` is 400 and the
  connection closed, RFC 9112 §6.3 item 5 — taking the last, the 28 bytes a front end counts as the
  body were served as a second, smuggled request). A Content-Length is ``1*DIGIT`` (RFC 9110 §8.6):
  ``00`` and ``000`` are 0, no body, served (was: 400); a value that is not digits alone (a sign, a list,
  empty) → 400. A request line whose version is not
  ``HTTP/1.<digit>`` (§2.3) or a request with two Host lines (§3.2) → 400. An HTTP/1.1 request with
  no Host line is served (ours; §3.2 says 400): the server has one set of files, Host picks nothing and
  is never echoed, and a device under test that leaves it out still gets its files. ``Connection`` is a
  list of tokens (RFC 9110 §7.6.1): ``close`` among them closes.
  Keep-alive follows HTTP/1.1 defaults, bounded by ``max_requests`` per connection (the last response
  says ``Connection: close``) and an ``idle_timeout``. A response is written 256 KiB at a time
  (:data:`_WRITE_CHUNK`); while some of it waits unsent, the client must take at least
  :data:`TAKEN_PER_IDLE` bytes of it (all, when fewer) within each ``idle_timeout``, else its connection
  is aborted (logged): one that asks for a large file and never reads, or takes a byte now and then,
  cannot hold a connection for ever; one reading slowly but steadily gets the file — a phone at a remote
  site fetching a firmware load over a slow WAN link (spec §D, §H.1) (was: each 256 KiB piece had to be
  taken whole within ``idle_timeout``: a client reading under ~26 KB/s at the default 10 s was cut though
  it kept reading). Taken is acknowledged by the client's TCP: the transport's buffer plus the kernel's
  send queue (``SIOCOUTQ``: Linux; elsewhere the buffer alone) shrinking — the kernel takes more of the
  buffer only once a third of its own is free, which a steady reader may need longer than
  ``idle_timeout`` for. It is looked at four times an ``idle_timeout``: a client that stops taking is cut
  within about 1.25 ``idle_timeout`` (the rule: :mod:`phoneemu.net._taken`, the SIP registrar's and the
  TLS servers' close's too). What is still unsent when a connection ends is held to the same
  rule (was: the close waited for ever, the descriptor held and no longer counted by
  ``max_connections``; then all of it had to be taken within ``idle_timeout``). The floor (ours), 1 KiB
  an ``idle_timeout``, 100 B/s at the default: far below a phone's share of a slow link (10 phones on
  64 kbit/s: some 800 B/s each), yet it bounds how long a response can hold a connection, to about
  (its size / 1 KiB) ``idle_timeout``s — a 16 MiB firmware load some 45 hours at the default, each of
  up to ``max_requests`` on a kept-alive connection; no cap on the whole response besides, which would
  cut the slow site it is for. ``max_connections`` bounds the descriptors such clients hold, not their
  share of the server: one client taking the floor on every place (~100 B/s a connection) has the
  others answered 503 that long (one opening silent connections could already, each ``idle_timeout``;
  review R3). A client's TCP opens a
  full receive window again in steps of about a segment (silly-window avoidance, RFC 1122 §4.2.3.3), so
  one taking less than ~1.5 KB an ``idle_timeout`` may be cut. At most ``max_connections``
  connections are open at once (default: a quarter of the open-file limit, beside the TFTP server's
  half); one more is answered 503 and closed, so a connection flood cannot take the file descriptors
  the other lab servers need. The 503 is followed by the end of our side, then what the client sends is
  read and dropped until its end (at most :data:`_REFUSAL_READ` bytes within :data:`_REFUSAL_LINGER_S`,
  and at most a quarter of ``max_connections`` refused connections at a time: beyond, closed at once):
  closed with its request unread, the connection was reset and a client reading to the end lost the 503.
  Refusals are logged at most once a second with their count (:class:`phoneemu.net._refusals.RefusalLog`;
  was: a line each); ``on_request`` is still told of each.
  A connection whose first bytes are a TLS handshake record (``16 03 00``..``16 03 04``: an ``https://``
  URL to this port, or a phone speaking HTTPS to the wrong port; HTTPS config download is TCP 6971 on
  CUCM, spec §H.1) is answered at once with a plaintext fatal TLS alert, ``protocol_version`` (70): this
  port speaks no TLS version (was: held until ``idle_timeout``, then a 408 a TLS client cannot read).
  Ours, of the honest answers: OpenSSL clients then say ``tlsv1 alert protocol version`` (Python's ssl:
  ``[SSL: TLSV1_ALERT_PROTOCOL_VERSION]``; curl: ``error:0A00042E ... tlsv1 alert protocol version``), an
  answer from the server, where a bare close says ``EOF occurred in violation of protocol`` / curl's
  ``SSL_ERROR_SYSCALL``, read as a network fault; ``handshake_failure`` (40) is what a TLS server requiring
  a client certificate sends (:func:`phoneemu.net.tls.client_certificate_refused` reads it so). Then our
  side is ended and the rest of the hello read and dropped until the client's end (at most
  :data:`_TLS_HELLO_READ` bytes within :data:`_REFUSAL_LINGER_S`: closed with it unread, the connection
  was reset and the client could lose the alert). It is logged (WARNING) as a refusal, through its own
  :class:`~phoneemu.net._refusals.RefusalLog` (``tls_hellos``): at most one line per connection, a flood's
  at most once a second with their count; ``on_request`` is not told (no HTTP status was sent).
  The listen ``backlog`` (default 1024, as the TVS servers') holds a fleet's connection storm: with
  asyncio's default of 100 the kernel dropped SYNs of a 128-phone storm and those phones waited for
  TCP's 1 s SYN retransmission.
* Client :func:`http_get`: ``GET`` with ``Accept-Encoding: identity`` and ``Connection: close``; 200 →
  body (bounded by ``max_size``), 404 → ``TransportError(kind="not-found", code=404)``, 403 →
  ``"refused"``, other statuses → ``"error"`` with the status as ``code``; a redirect (3xx) is never
  followed (its reason names the ``Location``: a redirect to another host reaches nothing); a 101
  (Switching Protocols) → ``"protocol"`` (code 101): the GET asked for no Upgrade, and a server switches
  only to a protocol the client asked for (RFC 9110 §15.2.2), so the answer is no HTTP file server's and
  the phone asks TFTP (:mod:`phoneemu.net.fetch`; was ``"error"``, the file not asked of TFTP); connect
  failures → ``"unreachable"``; time-outs → ``"timeout"``; malformed answers → ``"protocol"``.
  Content-Length, chunked and read-to-EOF bodies are accepted (a real cluster may send any of them). A
  connection handler never lets an exception escape (it is logged with the peer).
* Two time bounds (our convention, as TFTP's per-datagram timeout and whole-transfer cap; spec §H.1 names
  no timer): ``timeout`` bounds each wait — the connection, then the response head (all of it), then each
  read of the body (a chunked body's size and trailer lines included): no progress for ``timeout`` seconds
  ends the exchange, a body still coming steadily does not (was: ``timeout`` bounded the whole exchange,
  so a file taking longer over a slow link was cut and asked of TFTP, slower still). ``max_time``
  (default :data:`DEFAULT_MAX_TIME`, None: none) bounds the whole exchange, connection included, until
  the body has come whole: a server trickling a byte just inside ``timeout`` is cut there; a file come
  whole just before it is kept (the close then has one ``timeout``).
* A time-out says how far the exchange got, in its one line (ours): no connection (a firewall dropping
  the port, a host down), connected with no response (not an HTTP file server), ``no data for S s with the
  M-byte body under way`` (a stalled server or link), or, the cap, ``took longer than T s in all (the
  M-byte body under way)``; a response head begun but not ended within ``timeout`` is said so (was: "no
  response to the GET", a status line come). The bytes come so far are not said: a fleet's alike failures
  (:mod:`phoneemu.fleet.alike`) are grouped by their text, and phones cut at different bytes of one file
  are one kind (the live "still downloading" line of ``boot`` says the count). The error
  (:class:`HttpTimeoutError`) says it too: ``responded`` when the server had sent its response head — an
  HTTP file server that answered, too slowly, not a wrong port (``boot``'s note on an HTTP that answered
  none of its requests) — and ``capped`` when ``max_time`` cut it (not a wait).
* Progress (ours, as :func:`~phoneemu.net.tftp_client.tftp_get`'s): ``on_start``, when given to
  :func:`http_get`, is called once as the exchange starts with a reader of the body bytes received so
  far, read when wanted (``boot``'s word on a slow file over HTTP: was "still waiting ... a server that
  does not answer" while the file came).
* The client reads a response head strictly (RFC 9112), each refusal a ``"protocol"`` error naming the
  header line. A line ends with CRLF or a bare LF (§2.2, as the server takes them; chunk-size and trailer
  lines too); the head is at most ``max_header`` bytes, the trailer section too. A response must begin
  ``HTTP/`` (empty lines before it skipped): one that does not is refused at its first byte that cannot
  begin ``HTTP/``, as it comes — an HTTP/0.9 server sending the file with no status line, or another
  service on the port (was: waited for until it closed, "connection closed before the end of the response
  head", or the timeout, "no response to the GET"). The refusal quotes the bytes in hex up to that byte,
  never further (``begins 53 ('S')``, ``begins 48 54 58 ('HTX')``), and says what a first byte refused
  may be (0x16 a TLS handshake: an HTTPS server on the port; 0x15 a TLS alert: a TLS server; ``S``: SSH
  or SIP): the same text whatever pieces the bytes came in (was: the bytes the first read held, up to 5:
  ``ITTP/`` whole, ``I`` when the ``I`` came alone).
  The status line is ``HTTP/1.0`` or ``HTTP/1.1`` and a status of 100..599 (RFC 9110 §15),
  its reason phrase HTAB, SP, VCHAR or obs-text (RFC 9112 §4: a NUL or another control character is
  refused); a field with a CR or NUL in it is refused (RFC 9110 §5.5); a field line without ``:`` or whose
  name is not a token (§5.1, §5.6.2: white space in or before it, a control character in it) is refused;
  an obs-fold line is joined to the one before with a space (§5.2, what a user agent must do);
  Content-Length values that differ, in one field or repeated fields, are refused (§6.3 item 5; equal
  repeats are accepted); Transfer-Encoding together with Content-Length is refused (§6.3 item 3 says it
  "ought to be handled as an error": it is the shape of response splitting); a transfer coding other than
  ``chunked`` is refused (the phone decodes none), and Transfer-Encoding in an HTTP/1.0 response too
  (§6.1: faulty framing); a Content-Encoding other than ``identity`` is refused (the client asked for
  identity; gzip bytes taken for the file would fail later for a wrong reason); a chunk size must be bare
  hex digits, extensions after ``;`` dropped (§7.1). Interim 1xx responses before the final one are
  skipped (RFC 9110 §15.2), at most :data:`_MAX_INTERIM` of them (our bound).
* These client rules live in one place, :func:`read_response` (head, then body), used by :func:`http_get`
  and by the phone's HTTPS application server fetch (:mod:`phoneemu.phone.https`).
* The client's ``Host`` is :func:`host_header` (RFC 9110 §7.2, ``uri-host [":" port]``): the port only when
  it is not the scheme's default (80 for ``http``: RFC 3986 §6.2.3 leaves the default out), an IPv6
  literal in brackets without its zone (``%eth0`` is local to this host: RFC 6874 §4), a name that is not
  ASCII in its IDNA form (as it was resolved); the value is always ASCII of the ``uri-host`` grammar.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import quote, unquote

from phoneemu.errors import TransportError
from phoneemu.net._listen import close_listening, is_ipv6_any, serving, tcp_listener
from phoneemu.net._oserror import os_error_text
from phoneemu.net._refusals import RefusalLog
from phoneemu.net._taken import TAKEN_PER_IDLE, unsent, until_taken
from phoneemu.net.capture import note_connect, note_peer
from phoneemu.net.tftp_codec import unsafe_name_reason
from phoneemu.net.tftp_server import Provider, provider_from, transfer_socket_budget
from phoneemu.values import host_port, is_ascii_digits, parse_ascii_int

__all__ = ["DEFAULT_MAX_TIME", "TAKEN_PER_IDLE", "HttpServer", "HttpTimeoutError", "host_header", "http_get",
           "read_response"]

_log = logging.getLogger("phoneemu.net.http")
_WRITE_CHUNK = 256 * 1024  # a response is written and drained in pieces of this size (module docstring)
_ALLOW = "Allow: GET, HEAD\r\n"  # RFC 9110 §15.5.6: a 405 names the methods that are
_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            408: "Request Timeout", 413: "Content Too Large", 431: "Request Header Fields Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # in a request head line or a reason phrase: not HTAB
_VERSION = re.compile(r"HTTP/1\.[0-9]")  # RFC 9112 §2.3: "HTTP/" DIGIT "." DIGIT, major version 1
_MAX_INTERIM = 8  # 1xx responses the client skips before it calls the answer malformed (docstring)
#: RFC 9110 §5.1: a field name is a token (§5.6.2: tchar)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_STATUS_START = b"HTTP/"  # RFC 9112 §4: what every status line begins with (HTTP-name is case-sensitive)
#: what a response that is not HTTP may be, told by its first byte: the one refused (module docstring)
_LOOKS_LIKE = {0x16: "TLS, an HTTPS server?", 0x15: "a TLS alert, a TLS server?", 0x53: "SSH or SIP?"}
_REFUSAL_READ = 4096  # bytes of a refused connection's request read and dropped after its 503 (docstring)
_REFUSAL_LINGER_S = 1.0  # ... within at most this (or idle_timeout when shorter)
#: a TLS handshake record's first bytes, one set of values each: type 22, version 3.0 (SSL 3) .. 3.4
_TLS_HANDSHAKE_START = ((0x16,), (0x03,), range(5))
#: our answer to it (module docstring): an alert record (21), record version 3.1, length 2, fatal (2)
#: protocol_version (70; RFC 8446 §6.2)
_TLS_PROTOCOL_VERSION_ALERT = bytes((0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 70))
_TLS_HELLO_READ = 5 + 2**14  # bytes of the hello read and dropped after the alert: one whole record
_TLS_HELLO_REFUSAL = ("a TLS ClientHello on this plain HTTP port (HTTPS config download is TCP 6971 on CUCM, "
                      "spec §H.1): answered with a TLS protocol_version alert")


class _BadRequestError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class _TlsHelloError(Exception):
    """The connection's first bytes are a TLS handshake record (see the module docstring)."""


class _SlowReaderError(Exception):
    """The client did not take a response within ``idle_timeout`` (see the module docstring)."""


class HttpServer:
    """``async with HttpServer(files, port=0) as srv: srv.port`` — GET/HEAD of the provider's files."""

    def __init__(self, source: Provider | Mapping[str, bytes] | str | Path, host: str = "127.0.0.1",
                 port: int = 6970, *, max_header: int = 8192, max_file_size: int = 32 * 1024 * 1024,
                 idle_timeout: float = 10.0, max_requests: int = 100, max_connections: int | None = None,
                 on_request: Callable[[tuple[str, int], str, str, int], None] | None = None,
                 backlog: int = 1024, allow_peer: Callable[[str], bool] | None = None) -> None:
        self.provider = provider_from(source, max_file_size=max_file_size)
        #: ``allow_peer(host)`` False: that host is answered 403, the provider not asked (as TFTP's)
        self.allow_peer = allow_peer
        self.backlog = backlog
        self.host = host
        self.requested_port = port
        self.max_header = max_header
        self.max_file_size = max_file_size
        self.idle_timeout = idle_timeout
        self.max_requests = max_requests
        self.max_connections = max_connections if max_connections is not None else \
            transfer_socket_budget(0.25)
        self.on_request = on_request
        #: refused connections read until their end at once, at most (module rules); beyond, closed at once
        self.max_refusing = max(1, self.max_connections // 4)
        self.refusals = RefusalLog(_log, "http")
        #: TLS ClientHellos refused on this plain port (module rules; their own, the reason differs)
        self.tls_hellos = RefusalLog(_log, "http")
        # (imported here: the client side of this module stays clear of cryptography, which tls imports)
        from phoneemu.net.tls import FailureLog

        #: malformed requests (400, 405, 431; 408 for a head begun): the TLS servers' failed handshakes' rule
        self.malformed = FailureLog(_log, "http", ("malformed request", "malformed requests"))
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._refusing: set[asyncio.StreamWriter] = set()

    async def start(self) -> HttpServer:
        """Listen on ``host:port``; a start that does not return (cancelled) leaves nothing listening
        (:func:`phoneemu.net._listen.serving`)."""
        if is_ipv6_any(self.host):  # dual-stack: IPv4 clients too (phoneemu.net._listen)
            sock = tcp_listener(self.host, self.requested_port, backlog=self.backlog)
            self._server = await serving(asyncio.start_server(self._handle, sock=sock, limit=self.max_header,
                                                              backlog=self.backlog,  # (asyncio listens again)
                                                              start_serving=False), sock)
        else:
            self._server = await serving(asyncio.start_server(
                self._handle, self.host, self.requested_port, limit=self.max_header, backlog=self.backlog,
                start_serving=False))
        return self

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop listening and close every connection, those accepted just before included
        (:func:`phoneemu.net._listen.close_listening`)."""
        if self._server is not None:
            await close_listening(self._server, self._close_writers)
            await self._server.wait_closed()
            self._server = None
            self.refusals.flush()  # the last interval's refusals said (module rules)
            self.tls_hellos.flush()
            self.malformed.flush()

    def _close_writers(self) -> None:
        """End every connection: one with some of a response still in its transport's buffer is aborted
        (was: closed, and a client reading it slowly but steadily went on being served after the close,
        its handler still writing, for as long as it read — the taken rule's floor, module rules)."""
        for w in [*self._writers, *self._refusing]:
            if w.transport.get_write_buffer_size():
                w.transport.abort()
            else:
                w.close()

    async def __aenter__(self) -> HttpServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = (str(peername[0]), int(peername[1])) if peername else ("?", 0)
        if len(self._writers) >= self.max_connections:
            await self._refuse(reader, writer, peer)
            return
        self._writers.add(writer)
        try:
            for served in range(self.max_requests):
                got = bytearray()  # this request's head so far: a time-out with some of it is a 408
                try:
                    head = await asyncio.wait_for(_read_head(reader, got, self.max_header, first=served == 0),
                                                  self.idle_timeout)
                except _TlsHelloError:
                    await self._answer_tls_hello(reader, writer, peer)
                    return
                except (asyncio.LimitOverrunError, ValueError):
                    self._malformed(peer, 431, f"no blank line within {self.max_header} bytes (max_header)")
                    await self._respond(writer, peer, "", 431, b"", head_only=False, keep=False)
                    return
                except asyncio.IncompleteReadError as exc:
                    if got.strip() or exc.partial.strip():
                        self._malformed(peer, 400, f"request head cut at byte {len(got) + len(exc.partial)}: "
                                                   "connection closed before the blank line")
                        await self._respond(writer, peer, "", 400, b"", head_only=False, keep=False)
                    return
                except TimeoutError:
                    if got.strip():  # a head begun, not ended: a slow or stalled client
                        self._malformed(peer, 408, f"no complete request head within {self.idle_timeout:g}s")
                    elif served == 0:  # a connection that sent nothing (a port check): said at INFO
                        _log.info("http: no request from %s within %gs: 408", host_port(*peer),
                                  self.idle_timeout)
                    if served == 0 or got.strip():  # not an idle keep-alive connection: say why it ends
                        await self._respond(writer, peer, "", 408, b"", head_only=False, keep=False)
                    return
                try:
                    method, name, keep = self._parse(head)
                except _BadRequestError as exc:
                    self._malformed(peer, exc.status, str(exc))
                    await self._respond(writer, peer, "", exc.status, b"", head_only=False, keep=False)
                    return
                keep = keep and served + 1 < self.max_requests  # the last one says Connection: close
                status, body = self._lookup(name, peer)
                await self._respond(writer, peer, name, status, body, head_only=method == "HEAD", keep=keep,
                                    method=method)
                if not keep:
                    return
        except _SlowReaderError as exc:
            _log.warning("http: %s", exc)
            writer.transport.abort()  # close() would wait for the unsent data to be taken
        except (ConnectionError, OSError) as exc:
            _log.debug("http: connection from %s lost: %s", peer, exc)
        except Exception:
            _log.exception("http: connection from %s failed", peer)
        finally:
            await self._close_connection(writer, peer)
            self._writers.discard(writer)  # after the close: its descriptor counted until then

    def _malformed(self, peer: tuple[str, int], status: int, why: str) -> None:
        """A malformed request answered ``status`` (400, 405, 408, 431): a warning at once, a flood's at most
        a line a second with their count by status (module rules: :attr:`malformed`)."""
        self.malformed.failed(host_port(peer[0], peer[1]), f"{status} {_REASONS[status]}: {why}", str(status))

    async def _refuse(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      peer: tuple[str, int]) -> None:
        """At ``max_connections``: a 503, our side ended, the client's request read and dropped, then the
        close (module rules: closed with the request unread, the connection was reset, the 503 lost)."""
        why = f"pool full ({len(self._writers)} open, max_connections {self.max_connections}): answered 503"
        self.refusals.refused(host_port(peer[0], peer[1]), why)
        linger = len(self._refusing) < self.max_refusing
        if linger:
            self._refusing.add(writer)
        try:
            with contextlib.suppress(Exception):  # (a reset, a client gone, the time up: nothing more to say)
                await self._respond(writer, peer, "", 503, b"", head_only=False, keep=False)
                if linger:
                    await self._read_to_end(reader, writer)
        finally:
            writer.close()
            self._refusing.discard(writer)

    async def _answer_tls_hello(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                peer: tuple[str, int]) -> None:
        """A TLS ClientHello on this plain port (module rules): a fatal protocol_version alert at once, our
        side ended, the rest of the hello read and dropped until the client's end; said as a refusal."""
        self.tls_hellos.refused(host_port(peer[0], peer[1]), _TLS_HELLO_REFUSAL)
        writer.write(_TLS_PROTOCOL_VERSION_ALERT)
        with contextlib.suppress(TimeoutError):  # a client not ending its side: closed after the linger
            await self._read_to_end(reader, writer, _TLS_HELLO_READ)

    async def _read_to_end(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           limit: int = _REFUSAL_READ) -> None:
        """End our side, then read and drop what the client sends until its end of stream: at most
        ``limit`` bytes within :data:`_REFUSAL_LINGER_S` (or ``idle_timeout``, when shorter)."""
        if writer.can_write_eof():
            writer.write_eof()
        async with asyncio.timeout(min(_REFUSAL_LINGER_S, self.idle_timeout)):
            taken = 0
            while taken <= limit:  # bounded: each read takes at least a byte, or ends
                chunk = await reader.read(_REFUSAL_READ)
                if not chunk:
                    return
                taken += len(chunk)

    async def _close_connection(self, writer: asyncio.StreamWriter, peer: tuple[str, int]) -> None:
        """Close a connection; the client must go on taking what is still unsent (module rules:
        :func:`phoneemu.net._taken.until_taken`), else the connection is aborted (logged): a close waits
        for its unsent bytes, and one that waited for ever held the descriptor of a client that never
        reads, uncounted by ``max_connections``."""
        writer.close()
        if not writer.transport.get_write_buffer_size():  # the common case: no timer (the kernel sends it)
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return
        unsent_at_close = unsent(writer)
        try:
            left = await until_taken(writer, writer.wait_closed(), self.idle_timeout)
        except (ConnectionError, OSError):  # the connection's own end (a reset): closed
            return
        if left is not None:
            _log.warning("http: %s did not take the last %d bytes sent within %gs of the end, nor %d bytes "
                         "of them in each %gs after (%d unsent): connection aborted",
                         host_port(peer[0], peer[1]), unsent_at_close, self.idle_timeout, TAKEN_PER_IDLE,
                         self.idle_timeout, left)
            writer.transport.abort()

    def _parse(self, head: bytes) -> tuple[str, str, bool]:
        try:
            text = head.decode("ascii")
        except UnicodeDecodeError:
            raise _BadRequestError(400, "non-ASCII request head") from None
        lines = [line.removesuffix("\r") for line in text.lstrip("\r\n").split("\n")]
        bad = next((line for line in lines if _CONTROL.search(line)), None)
        if bad is not None:
            raise _BadRequestError(400, f"control character in the request head: {bad[:80]!r}")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not _VERSION.fullmatch(parts[2]):
            raise _BadRequestError(400, f"malformed request line {lines[0][:80]!r}")
        method, target, version = parts
        headers: dict[str, list[str]] = {}
        for line in lines[1:]:
            if not line:
                continue
            key, sep, value = line.partition(":")
            if not sep or not key or key != key.strip() or any(c in key for c in " \t"):
                raise _BadRequestError(400, f"malformed header {line[:80]!r}")
            headers.setdefault(key.lower(), []).append(value.strip())
        if method not in ("GET", "HEAD"):  # before the body check: a POST is told 405, not 400
            raise _BadRequestError(405, f"method {method[:16]!r} not allowed")
        lengths = headers.get("content-length", [])
        if not all(_is_zero_length(v) for v in lengths) or "transfer-encoding" in headers:  # every line
            said = [f"Content-Length {', '.join(lengths)[:40]!r}"] if lengths else []
            said += ["Transfer-Encoding"] if "transfer-encoding" in headers else []
            raise _BadRequestError(400, f"request body not accepted ({', '.join(said)})")
        if len(headers.get("host", [])) > 1:
            raise _BadRequestError(400, "more than one Host header")
        if not target.startswith("/"):
            raise _BadRequestError(400, "target must start with /")
        conn = {token.strip().lower()
                for value in headers.get("connection", []) for token in value.split(",")}
        keep = "close" not in conn and (version != "HTTP/1.0" or "keep-alive" in conn)
        path = target.split("?", 1)[0]
        try:
            name = unquote(path[1:], errors="strict")
        except UnicodeDecodeError:
            raise _BadRequestError(400, "path is not UTF-8") from None
        return method, name, keep

    def _lookup(self, name: str, peer: tuple[str, int]) -> tuple[int, bytes]:
        """The status and body of a GET of ``name`` (module rules)."""
        reason = unsafe_name_reason(name)
        if reason is not None:
            _log.warning("http: refused %r from %s: %s", name, peer, reason)
            return 403, b""
        if self.allow_peer is not None and not self.allow_peer(peer[0]):
            return 403, b""
        try:
            data = self.provider(name)
        except TransportError:
            return 413, b""
        except Exception:
            _log.exception("http: provider failed for %r", name)
            return 500, b""
        if data is None:
            return 404, b""
        if len(data) > self.max_file_size:
            return 413, b""
        return 200, data

    async def _respond(self, writer: asyncio.StreamWriter, peer: tuple[str, int], name: str, status: int,
                       body: bytes, *, head_only: bool, keep: bool, method: str = "-") -> None:
        """Write the response; ``on_request(peer, method, name, status)`` is told first (method ``-`` and
        name empty: a request refused before both were read). A connection closing (the server's close
        aborts it) ends the response: ConnectionResetError (was: every piece left written into the
        aborted transport — asyncio logged "socket.send() raised exception." for each past the fifth,
        uvloop raised RuntimeError, logged as the connection's failure)."""
        if self.on_request is not None:
            try:
                self.on_request(peer, method, name, status)
            except Exception:
                _log.exception("http: on_request callback failed")
        head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                f"Content-Length: {len(body)}\r\nContent-Type: application/octet-stream\r\n"
                f"{_ALLOW if status == 405 else ''}"
                f"Connection: {'keep-alive' if keep else 'close'}\r\n\r\n").encode("ascii")
        view = memoryview(b"" if head_only else body)
        for off in range(0, max(len(view), 1), _WRITE_CHUNK):  # head with the first piece
            if writer.transport.is_closing():  # the server's close aborted it (its drain then ends quietly)
                raise ConnectionResetError(f"connection closed with {off} of {len(view)} body bytes written")
            piece = view[off : off + _WRITE_CHUNK]
            writer.write(head + piece if off == 0 else piece)
            if not writer.transport.get_write_buffer_size():
                continue  # the kernel took it all: no drain to wait for (no timer, no task per response)
            left = await until_taken(writer, writer.drain(), self.idle_timeout)
            if left is not None:
                raise _SlowReaderError(
                    f"{host_port(peer[0], peer[1])} did not take the {status} response to {name!r} within "
                    f"{self.idle_timeout:g}s, nor {TAKEN_PER_IDLE} bytes of it in each "
                    f"{self.idle_timeout:g}s ({off} of {len(view)} body bytes written, {left} unsent): "
                    "connection aborted")


def _is_zero_length(value: str) -> bool:
    """A Content-Length value saying no body: ``1*DIGIT`` (RFC 9110 §8.6) whose value is 0 — ``0``, ``00``,
    ``000`` alike; a sign, a list, an empty value are not (module rules)."""
    return is_ascii_digits(value) and not value.strip("0")


async def _read_head(reader: asyncio.StreamReader, got: bytearray, max_header: int, *,
                     first: bool = False) -> bytes:
    """A request head up to its empty line, into ``got`` as it comes (module rules: CRLF or LF ends a
    line); ValueError past ``max_header`` bytes, LimitOverrunError for a longer line, IncompleteReadError
    when the client closes first. ``first`` (a connection's first request): :func:`_check_not_tls` first,
    its bytes the head's start."""
    if first:
        await _check_not_tls(reader, got)
    pending = bytes(got)  # read, not yet cut into lines
    while True:
        if b"\n" in pending:
            line, _, pending = pending.partition(b"\n")
            line += b"\n"
        else:
            more = await reader.readuntil(b"\n")
            got += more
            line, pending = pending + more, b""
        if len(got) > max_header:
            raise ValueError("request head above max_header")
        if line in (b"\n", b"\r\n") and got.strip():  # an empty line ends a head that has begun
            return bytes(got)


async def _check_not_tls(reader: asyncio.StreamReader, got: bytearray) -> None:
    """The connection's first byte into ``got``, and the next while they are a TLS handshake record's start
    (:data:`_TLS_HANDSHAKE_START`; a byte that is not ends it: no wait for more than a request sends);
    all three → :class:`_TlsHelloError` (module rules). IncompleteReadError when the client closes first."""
    for at, allowed in enumerate(_TLS_HANDSHAKE_START):
        got += await reader.readexactly(1)
        if got[at] not in allowed:
            return
    raise _TlsHelloError


#: what a reg-name keeps as it is (RFC 3986 §3.2.2: unreserved and sub-delims); the rest is %-encoded
_REG_NAME_SAFE = "!$&'()*+,;=-._~"


def host_header(host: str, port: int, default_port: int) -> str:
    """The ``Host`` field value of a request to ``host`` port ``port`` (module rules; RFC 9110 §7.2):
    ``host`` alone when ``port`` is ``default_port`` (80 for ``http``, 443 for ``https``), else
    ``host:port``; an IPv6 address (bare or in brackets) as ``[addr]`` without a ``%zone`` (RFC 3986
    §3.2.2, RFC 6874 §4); a name in its IDNA A-label form, any byte outside a reg-name %-encoded
    (RFC 3986 §3.2.2; a name IDNA cannot encode: its UTF-8). Always ASCII: it cannot end the header line.

    ``host_header("10.0.0.1", 6970, 80)`` is ``10.0.0.1:6970``; ``host_header("fe80::1%eth0", 443, 443)``
    is ``[fe80::1]``."""
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    literal = bare.split("%", 1)[0]
    try:
        addr = ipaddress.ip_address(literal)
    except ValueError:
        addr = None
    if addr is not None:  # as written (hex digits, colons, dots), as the URL or the option gave it
        text = f"[{literal}]" if addr.version == 6 else literal
    else:
        try:
            ascii_name: str | bytes = bare.encode("idna").decode("ascii") if not bare.isascii() else bare
        except UnicodeError:  # "a..b", a label over 63 characters: said by the connect before this
            try:
                ascii_name = bare.encode("utf-8", "surrogateescape")  # a byte read as a surrogate: itself
            except UnicodeError:
                ascii_name = bare.encode("utf-8", "surrogatepass")
        text = quote(ascii_name, safe=_REG_NAME_SAFE)
    return text if port == default_port else f"{text}:{port}"


class HttpTimeoutError(TransportError):
    """:func:`http_get`'s time-out (kind ``"timeout"``); ``responded``: the server had sent its response
    head, its body was still coming; ``capped``: ``max_time`` cut it, not a wait (module rules)."""

    responded = False
    capped = False


#: seconds one HTTP download may take in all by default (module rules; as the phone's TFTP cap)
DEFAULT_MAX_TIME = 60.0


class _Progress:
    """How far one exchange got (module rules): connected, a response head begun, the final head read (with
    its Content-Length), and the body bytes received so far (calling it reads them). Each step
    (:meth:`moved`) starts the wait of ``timeout`` seconds again on the exchange's timer (:meth:`watch`),
    never past the cap of ``max_time`` seconds from the exchange's start."""

    def __init__(self, timeout: float, max_time: float | None) -> None:
        self.connected = False
        self.began = False  # the response head's first bytes came (it may not have ended)
        self.head = False
        self.length: int | None = None
        self.body = 0
        self.timeout = timeout
        self.max_time = max_time
        self.capped = False  # the timer's deadline is the cap's, not the wait's
        self._clock = asyncio.get_running_loop().time
        self._cap_at = None if max_time is None else self._clock() + max_time
        self._timer: asyncio.Timeout | None = None

    def __call__(self) -> int:
        return self.body

    def watch(self, timer: asyncio.Timeout) -> None:
        """Bound the exchange ``timer`` runs in (module rules), from now."""
        self._timer = timer
        self.moved()

    def moved(self) -> None:
        """A step of the exchange (connected, the head read, body bytes): the wait starts again."""
        timer = self._timer
        if timer is None or timer.expired():
            return
        wait_until = self._clock() + self.timeout
        cap_at = self._cap_at
        self.capped = cap_at is not None and cap_at <= wait_until
        timer.reschedule(wait_until if cap_at is None else min(cap_at, wait_until))

    def received(self, count: int) -> None:
        """``count`` more body bytes came."""
        self.body += count
        self.moved()

    def finished(self) -> None:
        """The body came whole while the timer's deadline was the cap's (:attr:`capped`): the cap no longer
        applies (a file come at the cap's last moment is not thrown away while its connection closes); the
        close has one wait, as it has when the deadline is a wait's."""
        self._cap_at = None
        self.moved()

    def timed_out(self, where: str, port: int, name: str) -> HttpTimeoutError:
        """The error of an exchange (``where``: its URL) its timer cut (module rules)."""
        if self.capped:
            text = f"{where}: took longer than {self.max_time:g} s in all ({self._so_far()})"
        elif self.head:
            text = (f"{where}: no data for {self.timeout:g} s with {self._body_said()} under way (a stalled "
                    "server or link: a longer timeout waits longer)")
        else:
            text = f"{where}: timeout after {self.timeout}s, {self.stalled(port)}"
        error = HttpTimeoutError(text, kind="timeout", path=name)
        error.responded, error.capped = self.head, self.capped
        return error

    def _so_far(self) -> str:
        """How far a capped exchange got: its body under way, or no response yet, or no connection."""
        if not self.connected:
            return "no connection yet"
        if not self.head:
            return "the response head under way" if self.began else "connected, no response yet"
        return f"{self._body_said()} under way"

    def _body_said(self) -> str:
        """``the 8920-byte body`` (``the body`` when its length was not said). No count of the bytes come so
        far: a fleet groups its failures by their text, and phones cut at different bytes of one file are
        one kind (the live "still downloading" line says the count)."""
        return f"the {self.length}-byte body" if self.length is not None else "the body"

    def stalled(self, port: int) -> str:
        """Where a wait before the response head cut the exchange and what to try (module rules)."""
        if not self.connected:
            return (f"no connection (a firewall dropping TCP {port}, or the host down: is the HTTP file "
                    "service reachable from here?)")
        if self.began:  # (was: "no response", a status line come)
            return "the response head begun, not ended (a stalled server or link)"
        return f"connected, but no response to the GET (is port {port} an HTTP file server?)"


async def http_get(host: str, port: int, path: str, *, timeout: float = 5.0,
                   max_time: float | None = DEFAULT_MAX_TIME, max_size: int = 16 * 1024 * 1024,
                   max_header: int = 8192,
                   on_start: Callable[[Callable[[], int]], None] | None = None) -> bytes:
    """GET ``path`` (a TFTP name or ``/name``) and return the body; TransportError on failure. ``timeout``
    bounds each wait, ``max_time`` the whole exchange (module rules). ``on_start``: given a reader of the
    body bytes received so far, once, as the exchange starts."""
    name = path.lstrip("/")
    progress = _Progress(timeout, max_time)
    if on_start is not None:
        on_start(progress)
    timer = asyncio.timeout(None)
    try:
        async with timer:
            progress.watch(timer)
            return await _get(host, port, name, max_size, max_header, progress=progress)
    except TimeoutError:
        if not timer.expired():
            raise
        raise progress.timed_out(f"http://{host_port(host, port)}/{name}", port, name) from None


async def _read_chunked(reader: asyncio.StreamReader, name: str, max_size: int, max_header: int,
                        progress: _Progress | None = None) -> bytes:
    """RFC 9112 §7.1 chunked body, bounded by ``max_size``; trailers are read and dropped (at most
    ``max_header`` bytes of them). A line may end with a bare LF (§2.2, as in the head). ``progress``
    counts the body bytes as they come; the framing come (a chunk-size line, a chunk's CRLF, a trailer line)
    is progress too: a server sending a chunk's size, then its data, is not said to have sent nothing."""
    body = bytearray()
    try:
        while True:
            line = await reader.readuntil(b"\n")
            if progress is not None:
                progress.moved()
            size_text = line.rstrip(b"\r\n").split(b";", 1)[0].rstrip(b" \t")
            if not size_text or len(size_text) > 8 or size_text.strip(b"0123456789abcdefABCDEF"):
                raise TransportError(f"bad chunk size {size_text[:16]!r}", kind="protocol", path=name)
            size = int(size_text, 16)
            if size == 0:
                trailers = 0
                while (line := await reader.readuntil(b"\n")) not in (b"\r\n", b"\n"):
                    if progress is not None:
                        progress.moved()
                    trailers += len(line)
                    if trailers > max_header:
                        raise TransportError(f"chunked trailers above {max_header} bytes", kind="protocol",
                                             path=name)
                return bytes(body)
            if len(body) + size > max_size:
                raise TransportError(f"body above {max_size} bytes", kind="too-large", path=name)
            body += await _read_exactly(reader, size, progress)
            end = await reader.readexactly(1)
            if end == b"\r":
                end += await reader.readexactly(1)
            if end not in (b"\r\n", b"\n"):
                raise TransportError("chunk not followed by CRLF", kind="protocol", path=name)
            if progress is not None:
                progress.moved()
    except asyncio.IncompleteReadError as exc:
        raise TransportError(f"connection closed inside the chunked body ({len(body)} body bytes read)",
                             kind="protocol", path=name) from exc
    except (asyncio.LimitOverrunError, ValueError) as exc:
        raise TransportError(f"chunked body malformed: a chunk-size or trailer line above {max_header} bytes",
                             kind="protocol", path=name) from exc


async def read_response(reader: asyncio.StreamReader, name: str, *, max_size: int, max_header: int,
                        check: Callable[[int, dict[str, list[str]]], None] | None = None,
                        progress: _Progress | None = None) -> tuple[int, dict[str, list[str]], bytes]:
    """One response to a GET read by the client rules of the module docstring (the one place for them:
    :func:`http_get` and the phone's HTTPS application server fetch, :mod:`phoneemu.phone.https`): the final
    status (interim 1xx skipped), the header fields (lower-case name → values in order) and the body —
    Content-Length, chunked or read to EOF, at most ``max_size`` bytes; none after a 101, 204 or 304 (RFC 9112
    §6.3 item 1). ``check(status, fields)`` is called after the head, before any of the body is read: what
    it raises ends the read (http_get refuses a non-200 so). A malformed answer → ``TransportError`` kind
    ``"protocol"``, a body above ``max_size`` → ``"too-large"``, both with ``path=name``. No time bound
    here: the caller bounds the exchange (:func:`http_get`: each wait and the whole).
    ``progress`` (:func:`http_get`'s) is told of the head and counts the body bytes as they come."""
    status, version, fields = await _read_final_head(reader, name, max_header, progress)
    if check is not None:
        check(status, fields)
    if status in (101, 204, 304):
        return status, fields, b""
    _check_content_coding(fields, name)
    length = _body_length(fields, name, version)
    if progress is not None:
        progress.head, progress.length = True, None if length == _CHUNKED else length
        progress.moved()
    if length == _CHUNKED:
        return status, fields, await _read_chunked(reader, name, max_size, max_header, progress)
    if length is not None:
        if length > max_size:
            raise TransportError(f"body of {length} bytes above {max_size}", kind="too-large", path=name)
        try:
            return status, fields, await _read_exactly(reader, length, progress)
        except asyncio.IncompleteReadError as exc:
            raise TransportError(f"body truncated at {len(exc.partial)} of {length}", kind="protocol",
                                 path=name) from exc
    body = bytearray()  # grown in place: a body read to the end of the stream costs linear time
    while len(body) <= max_size:
        more = await reader.read(max_size + 1 - len(body))
        if not more:
            break
        body += more
        if progress is not None:
            progress.received(len(more))
    if len(body) > max_size:
        raise TransportError(f"body above {max_size} bytes", kind="too-large", path=name)
    return status, fields, bytes(body)


#: bytes :func:`_read_exactly` asks the stream for at a time (a body's progress is counted per piece)
_READ_PIECE = 64 * 1024


async def _read_exactly(reader: asyncio.StreamReader, size: int, progress: _Progress | None) -> bytes:
    """``reader.readexactly(size)``, read a piece at a time when ``progress`` counts the body (a large
    file's bytes so far are then known while it comes); IncompleteReadError as readexactly's."""
    if progress is None:
        return await reader.readexactly(size)
    got = bytearray()
    while len(got) < size:
        piece = await reader.read(min(_READ_PIECE, size - len(got)))
        if not piece:
            raise asyncio.IncompleteReadError(bytes(got), size)
        got += piece
        progress.received(len(piece))
    return bytes(got)


async def _get(host: str, port: int, name: str, max_size: int, max_header: int, *,
               progress: _Progress | None = None) -> bytes:
    try:
        note_connect(host, port)  # a live capture's: the phones' host (phoneemu.net.capture rules)
        reader, writer = await asyncio.open_connection(host, port, limit=max_header)
        note_peer(writer.get_extra_info("peername"))
        if progress is not None:
            progress.connected = True
            progress.moved()
    except OSError as exc:
        raise TransportError(f"http://{host_port(host, port)}: cannot connect: {os_error_text(exc)}",
                             kind="unreachable", path=name) from exc
    except UnicodeError as exc:  # a name IDNA cannot encode ("a..b", a label over 63 characters)
        raise TransportError(f"http://{host_port(host, port)}: cannot resolve: not a valid host name",
                             kind="unreachable", path=name) from exc
    try:
        writer.write(f"GET /{quote(name)} HTTP/1.1\r\nHost: {host_header(host, port, 80)}\r\n"
                     "Accept-Encoding: identity\r\nConnection: close\r\n\r\n".encode("ascii"))
        await writer.drain()
        _, _, body = await read_response(reader, name, max_size=max_size, max_header=max_header,
                                         check=lambda status, fields: _only_200(status, fields, name),
                                         progress=progress)
        if progress is not None and progress.capped:  # (else the deadline is a wait's: no call a boot)
            progress.finished()
        return body
    except (ConnectionError, OSError) as exc:
        raise TransportError(f"http://{host_port(host, port)}/{name}: {os_error_text(exc)}",
                             kind="unreachable", path=name) from exc
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


_CHUNKED = -1  # what _body_length returns for a chunked body


def _only_200(status: int, headers: dict[str, list[str]], name: str) -> None:
    """:func:`http_get`'s status rule (module docstring), before any of the body is read."""
    if status == 101:  # RFC 9110 §15.2.2: never to a request without Upgrade (module docstring)
        raise TransportError(f"HTTP 101 (Switching Protocols) for /{name}, a GET that asked for no Upgrade: "
                             "not an answer an HTTP file server gives", kind="protocol", code=101, path=name)
    if status != 200:
        kind = {404: "not-found", 403: "refused"}.get(status, "error")
        why = ""
        if 300 <= status < 400:  # never followed (module docstring)
            where = headers.get("location", [])
            why = f" (redirect to {where[0][:120]!r}, not followed)" if where else " (redirect, not followed)"
        raise TransportError(f"HTTP {status} for /{name}{why}", kind=kind, code=status, path=name)


async def _response_head(reader: asyncio.StreamReader, name: str, max_header: int,
                         progress: _Progress | None = None) -> list[str]:
    """The lines of one response head, line ends removed: CRLF or a bare LF ends a line (RFC 9112 §2.2,
    as the server takes them), at most ``max_header`` bytes. Its first bytes must begin a status line
    (``HTTP/``): any others are refused as they come (:func:`_status_start`)."""
    got = 0
    start = b""  # "HTTP/" once read, until the status line's rest is read too
    lines: list[str] = []
    try:
        start, got = await _status_start(reader, name, max_header, progress)  # got: the empty lines
        while True:
            line = start + await reader.readuntil(b"\n")
            start = b""
            got += len(line)
            if got > max_header:
                raise ValueError("response head above max_header")
            if line in (b"\r\n", b"\n"):
                return lines  # (empty lines before the status line: skipped by _status_start)
            lines.append(line.removesuffix(b"\n").removesuffix(b"\r").decode("latin-1"))
    except (asyncio.LimitOverrunError, ValueError) as exc:
        raise TransportError(f"response head above {max_header} bytes", kind="protocol", path=name) from exc
    except asyncio.IncompleteReadError as exc:  # (cut in the status line: its "HTTP/" counted too)
        come = got + len(start) + len(exc.partial)
        said = f" (after {come} bytes of it)" if come else ""
        raise TransportError(f"connection closed before the end of the response head{said}",
                             kind="protocol", path=name) from exc


async def _status_start(reader: asyncio.StreamReader, name: str, max_header: int,
                        progress: _Progress | None) -> tuple[bytes, int]:
    """The first bytes of a response head, ``HTTP/``, and the bytes of the empty lines skipped before them
    (at most ``max_header`` bytes in all). The first byte that cannot begin a status line is refused as it
    comes (:func:`_not_http`), whatever pieces the bytes came in: a server that is not HTTP, or an HTTP/0.9
    one sending the file with no status line, was waited for until it closed or the timeout (was:
    "connection closed before the end of the response head", or "no response to the GET").
    ValueError: ``max_header`` passed; IncompleteReadError: closed before."""
    got = bytearray()  # every byte read here, the empty lines skipped too
    start = b""
    while start != _STATUS_START:
        more = await reader.read(len(_STATUS_START) - len(start))  # never more than the status line's start
        if not more:
            raise asyncio.IncompleteReadError(bytes(got), None)
        if progress is not None:
            progress.began = True
        for byte in more:  # one at a time: the refusal and the bound alike, however the bytes were cut
            got.append(byte)
            if len(got) > max_header:
                raise ValueError("response head above max_header")
            start = _after_an_empty_line(start + bytes((byte,)))
            if start and start != b"\r" and not _STATUS_START.startswith(start):
                raise _not_http(start, len(got) - len(start), name)
    return start, len(got) - len(start)


def _after_an_empty_line(start: bytes) -> bytes:
    """``start`` with an empty line before the head (ours: skipped) taken away: nothing is left of it."""
    return b"" if start in (b"\n", b"\r\n") else start


def _not_http(start: bytes, skipped: int, name: str) -> TransportError:
    """The refusal of a response whose first bytes ``start`` (after ``skipped`` bytes of empty lines) end
    with the first that cannot begin ``HTTP/``: they are quoted up to it, never further, so the text is the
    same whichever pieces they came in; what they may be is told by that byte when it is the first
    (:data:`_LOOKS_LIKE`; module docstring)."""
    shown = " ".join(f"{b:02x}" for b in start)
    text = start.decode("latin-1")
    said = f" ({text!r})" if text.isascii() and text.isprintable() else ""  # text: "S", "HTX"
    after = f" after {skipped} byte{'s' * (skipped != 1)} of empty lines" if skipped else ""
    like = f": looks like {_LOOKS_LIKE[start[0]]}" if start[0] in _LOOKS_LIKE else ""
    return TransportError(f"malformed status line: the response begins {shown}{said}{after}, not 'HTTP/' "
                          f"(an HTTP/0.9 server sending the file with no status line, or not an HTTP "
                          f"server{like})", kind="protocol", path=name)


async def _read_final_head(reader: asyncio.StreamReader, name: str, max_header: int,
                           progress: _Progress | None = None) -> tuple[int, str, dict[str, list[str]]]:
    """The status, HTTP version and header fields of the final response, interim 1xx ones skipped
    (module docstring); ``progress`` is told when its first bytes came."""
    for _ in range(_MAX_INTERIM + 1):
        lines = await _response_head(reader, name, max_header, progress)
        status_parts = lines[0].split(" ", 2)
        if (len(status_parts) < 2 or status_parts[0] not in ("HTTP/1.0", "HTTP/1.1")
                or len(status_parts[1]) != 3 or not is_ascii_digits(status_parts[1])
                or not 100 <= int(status_parts[1]) <= 599):
            raise TransportError(f"malformed status line {lines[0][:80]!r}", kind="protocol", path=name)
        if len(status_parts) == 3 and _CONTROL.search(status_parts[2]):
            raise TransportError(f"control character in the reason phrase of status line {lines[0][:80]!r} "
                                 "(RFC 9112 §4)", kind="protocol", path=name)
        status = int(status_parts[1])
        if status >= 200 or status == 101:
            return status, status_parts[0], _header_fields(lines[1:], name)
    raise TransportError(f"more than {_MAX_INTERIM} interim 1xx responses", kind="protocol", path=name)


def _header_fields(lines: list[str], name: str) -> dict[str, list[str]]:
    """Field lines → lower-case name → values in order; RFC 9112 §5 (module docstring)."""
    fields: dict[str, list[str]] = {}
    last: list[str] | None = None
    for number, line in enumerate(lines, start=2):
        if "\r" in line or "\0" in line:  # an obs-fold line too: it becomes part of a field's value
            raise TransportError(f"header line {number}: CR or NUL in field {line[:60]!r}", kind="protocol",
                                 path=name)
        if line[:1] in (" ", "\t"):
            if last is None:
                raise TransportError(f"header line {number}: continuation line with no field before it",
                                     kind="protocol", path=name)
            last[-1] = (last[-1] + " " + line.strip(" \t")).strip(" ")
            continue
        field_name, colon, value = line.partition(":")
        if not colon or not _TOKEN.fullmatch(field_name):  # white space or a control character in it too
            raise TransportError(f"header line {number}: malformed field {line[:60]!r}", kind="protocol",
                                 path=name)
        last = fields.setdefault(field_name.lower(), [])
        last.append(value.strip(" \t"))
    return fields


def _check_content_coding(fields: dict[str, list[str]], name: str) -> None:
    """A content coding other than identity is refused (module docstring): the client asked for
    ``identity`` and decodes none, and gzip bytes taken as the file would fail later with a wrong reason."""
    codings = [c.strip().lower() for v in fields.get("content-encoding", []) for c in v.split(",")
               if c.strip()]
    if any(c != "identity" for c in codings):
        raise TransportError(f"unrequested Content-Encoding {', '.join(codings)[:40]!r} (asked for identity)",
                             kind="protocol", path=name)


def _body_length(fields: dict[str, list[str]], name: str, version: str = "HTTP/1.1") -> int | None:
    """Content-Length, :data:`_CHUNKED`, or None (read to EOF); RFC 9112 §6.3 (module docstring)."""
    codings = [c.strip().lower() for v in fields.get("transfer-encoding", []) for c in v.split(",")
               if c.strip()]
    lengths = {v.strip() for value in fields.get("content-length", []) for v in value.split(",")}
    has_te = "transfer-encoding" in fields  # present, even empty ("Transfer-Encoding: ,"): asks for framing
    if has_te and version == "HTTP/1.0":
        raise TransportError("Transfer-Encoding in an HTTP/1.0 response (RFC 9112 §6.1: faulty framing)",
                             kind="protocol", path=name)
    if has_te:
        if lengths:
            raise TransportError("both Transfer-Encoding and Content-Length (response splitting?)",
                                 kind="protocol", path=name)
        if codings != ["chunked"]:
            raise TransportError(f"unsupported transfer coding {', '.join(codings)[:40]!r}",
                                 kind="protocol", path=name)
        return _CHUNKED
    if not lengths:
        return None
    values = {_length_value(text, name) for text in lengths}  # by value: "0" and "00" agree (§8.6)
    if len(values) > 1:
        raise TransportError(f"Content-Length values differ: {', '.join(sorted(lengths))[:60]}",
                             kind="protocol", path=name)
    return values.pop()


def _length_value(text: str, name: str) -> int:
    """One Content-Length value (``1*DIGIT``, RFC 9110 §8.6: leading zeros are the same number, however
    many); TransportError for anything else or a value of more than 20 digits."""
    parsed = parse_ascii_int(text.lstrip("0") or "0") if is_ascii_digits(text) else None
    if parsed is None:
        raise TransportError(f"bad Content-Length {text[:20]!r}", kind="protocol", path=name)
    return parsed
