"""TLS for TVS (TCP 2445, spec §E.1) and CAPF (TCP 3804, spec §F.1): contexts, servers, connections.

Rules:

* Contexts are built from our objects (private key + x509 chain). The key and chain are written to a
  private temporary file (mode 0600) only for the duration of ``load_cert_chain`` and then removed.
* Versions are configurable from TLS 1.0 to 1.3 (7900-series phones speak only TLS 1.0, §E.1/§F.1).
  OpenSSL 3 refuses TLS < 1.2 at its default security level, so when a version below 1.2 is allowed
  the cipher string becomes ``DEFAULT:@SECLEVEL=0`` (or the caller's ciphers plus ``@SECLEVEL=0``).
* Phones check the TVS/CAPF certificate against their ITL entry themselves (§E.1, §G), so the
  client side offers :func:`client_context_verify_after_handshake` (``CERT_NONE``; the caller MUST
  compare :func:`peer_certificate_der` with its trust store) besides :func:`client_context` that
  trusts exactly the given certificates (partial chains allowed, so a pinned leaf is an anchor).
  Host names are never checked: phones compare certificates, not names (SNI is still sent for a host
  name, not for an IP address). Client contexts refuse a server's renegotiation request
  (``OP_NO_RENEGOTIATION``: a ``no_renegotiation`` warning alert; a server that insists, as OpenSSL's
  does, then ends the connection with a fatal alert — a named "tls" error): the certificate the caller
  compared after the handshake stays the connection's, and a renegotiation left half done (the peer
  certificate then unreadable, the version ``?``) cannot happen.
* ``keylog_filename`` appends NSS key-log lines so Wireshark can decrypt a capture; the file holds every
  session's secrets, so it is made 0600 whatever the umask (:func:`phoneemu.files.private_file`). A
  context holds its key log open (OpenSSL's): a phone's context that writes one is shared only while
  something uses it (:func:`phone_client_context`), never kept for the process.
* :class:`TlsServer` runs a per-connection handler ``async (reader, writer)``; an exception in one
  connection (handshake failure included) is logged with peer and reason and never stops the server.
* Descriptors: besides its own ``max_connections``, a :class:`TlsServer` may draw on a
  :class:`ConnectionBudget` shared with other servers of the process (the lab's TLS and TCP listeners
  share one, a fraction of the open-file limit): a connection flood on one port is refused beyond it
  instead of taking the descriptors the TFTP, HTTP and TVS servers of the same process need.
* Room under a flood (ours, :mod:`phoneemu.net._room`, the lab's loop TVS's rule): a TLS connection
  accepted when the server is full (its ``max_connections``, or no place left in the shared budget) takes
  the place of the connection whose client has been silent longest — still in its TLS handshake (for this
  server the first request is the finished handshake: what it sees of every protocol it carries; a
  client that completed one is never closed for room), nothing from it for ``first_request_grace`` (1 s)
  since it connected or its last bytes, nothing of it waiting unread (a peek) — one of the address
  holding the most connections in their handshake first. That one is aborted, logged like a refusal and
  counted in ``evicted``; with none such the newcomer is refused as before. Was: refused, so a flood of silent
  connections from one address held every place until their handshake timeout (10 s in the lab) and
  turned every other client away. Plain TCP (no context: the directory, SIP over TCP): the first step is
  the client's first bytes (every plain protocol the lab serves has the client speak first: HTTP, SIP),
  so a connection that sent none for the grace is one to close (was: plain TCP kept refusing at the cap,
  its reads unseen). Each read of a connection in its handshake costs a few dict operations (O(1)); after
  it, one attribute test.
* Room across a shared budget (:class:`phoneemu.net._room.Rooms`): full at its own ``max_connections``, a
  server closes one of its own connections (only that frees one of its places); with places of its own
  but the shared :class:`ConnectionBudget` full, the choice is made across every server sharing the budget
  by the same rule — the address holding the most connections yet to ask over all of them gives way first,
  its silent longest whichever server holds it (each past its own server's grace) — and that server closes
  it, logged with its refusals (``closed to make room for capf: ...``), counted in its ``evicted``, the budget
  place passed to the newcomer. Was: a silent flood on one server (the directory, SIP over TCP) took the
  budget and every other server refused newcomers until the flood's timeout.
* Refused connections are logged at most once a second per server, with their exact count
  (:class:`phoneemu.net._refusals.RefusalLog`; was: a line each, 275,732 lines in a 30 s CAPF flood).
* Failed TLS handshakes follow the same rule (:class:`FailureLog`, the refusals' timer): the first after a
  quiet second at once with its peer and reason (``tvs: 10.0.0.7:51234: TLS handshake failed: WHY``), then
  at most a line a second per server with the exact count and the reasons counted (``tvs: 1,093 TLS
  handshakes failed in the last 1.0 s (UNEXPECTED_EOF_WHILE_READING 1,090, WRONG_VERSION_NUMBER 3)``), the
  last count when the flood ends or the server closes; each of them is still a line at INFO (``lab serve
  -v``) and reaches ``on_handshake_error``. Was: a warning line each, ~1,000 lines as a 1,100-connection
  flood closed.
* A connection's close waits for what is still unsent while the client goes on taking it: at least
  :data:`~phoneemu.net._taken.TAKEN_PER_IDLE` bytes of it (all, when fewer) within each
  :data:`CLOSE_WAIT_S`, else the connection is aborted (logged) — the lab's one rule for a client taking
  what it was sent (:mod:`phoneemu.net._taken`: the transport's buffer plus the kernel's send queue
  shrinking). A client that does not read cannot hold the connection (was: left open, its descriptor
  held, no longer counted by ``max_connections``); one reading the end of a large answer slowly but
  steadily gets it (was: all of it had to be taken within :data:`CLOSE_WAIT_S`, so the TVS, CAPF, HTTPS
  and SIP-over-TLS servers cut a client reading under some tens of KB/s at the close). The server's own
  close does not wait for it: what is unsent then is dropped (was: the close waited as long as such a
  client read, or, the connection's close under way, left it sending with nothing to cut it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import tempfile
import warnings
import weakref
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import cast

from cryptography import x509

from phoneemu.crypto.certs import cert_der
from phoneemu.crypto.keys import PrivateKey, private_key_pem
from phoneemu.errors import DecodeError, TransportError
from phoneemu.files import private_file
from phoneemu.net._listen import close_listening, is_ipv6_any, serving, tcp_listener
from phoneemu.net._oserror import os_error_text
from phoneemu.net._refusals import REFUSAL_LOG_INTERVAL, RefusalLog
from phoneemu.net._room import DEFAULT_GRACE, Room, Rooms, input_waits
from phoneemu.net._taken import TAKEN_PER_IDLE, unsent, until_taken
from phoneemu.net.capture import note_connect, note_peer
from phoneemu.net.tls_accept import TlsAcceptProtocol
from phoneemu.phone.profile import TLS_VERSIONS
from phoneemu.values import host_port

__all__ = [
    "CUCM_SIP_LINE_CIPHERS",
    "CUCM_TVS_CIPHERS",
    "PHONE_AUTHENTICATED_CIPHERS",
    "PHONE_TLS12_CIPHERS",
    "ConnectionBudget",
    "FailureLog",
    "Handler",
    "TlsServer",
    "client_certificate_refused",
    "client_context",
    "client_context_verify_after_handshake",
    "open_tls_connection",
    "peer_certificate_der",
    "server_context",
    "tls_version",
]

_log = logging.getLogger("phoneemu.net.tls")

_VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1, "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3,
}
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
#: seconds within which a closing connection's client must take some of its unsent bytes, else it is
#: aborted (module rules: :data:`~phoneemu.net._taken.TAKEN_PER_IDLE` of them each)
CLOSE_WAIT_S = 1.0


def tls_version(text: str | ssl.TLSVersion) -> ssl.TLSVersion:
    """``"1.0"``..``"1.3"`` (or ``"TLSv1.2"``) to :class:`ssl.TLSVersion`."""
    if isinstance(text, ssl.TLSVersion):
        return text
    key = text.lower().removeprefix("tlsv").removeprefix("tls")
    if key == "1":
        key = "1.0"
    if key not in _VERSIONS:
        raise TransportError(f"unknown TLS version {text!r} (1.0, 1.1, 1.2, 1.3)", kind="error")
    return _VERSIONS[key]


def _pem(cert: x509.Certificate) -> str:
    return ssl.DER_cert_to_PEM_cert(cert_der(cert))


def _configure(ctx: ssl.SSLContext, *, min_version: str | ssl.TLSVersion, max_version: str | ssl.TLSVersion,
               ciphers: str | None, keylog_filename: str | Path | None) -> None:
    lo, hi = tls_version(min_version), tls_version(max_version)
    if lo > hi:
        raise TransportError(f"TLS min version {lo.name} above max {hi.name}", kind="error")
    if lo < ssl.TLSVersion.TLSv1_2:
        ctx.set_ciphers(f"{ciphers or 'DEFAULT'}:@SECLEVEL=0")
    elif ciphers:
        ctx.set_ciphers(ciphers)
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated, and wanted here: old phones (§E.1)
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = lo
        ctx.maximum_version = hi
    if keylog_filename is not None:
        with contextlib.suppress(OSError):  # (one that cannot be opened: the line below says so)
            private_file(keylog_filename)  # session secrets: 0600 whatever the umask (module rules)
        ctx.keylog_filename = str(keylog_filename)


def _load_chain(ctx: ssl.SSLContext, key: PrivateKey, chain: Sequence[x509.Certificate]) -> None:
    if not chain:
        raise TransportError("a certificate chain needs at least one certificate", kind="error")
    fd, name = tempfile.mkstemp(prefix="phoneemu-tls-", suffix=".pem")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(private_key_pem(key))
            for cert in chain:
                fh.write(_pem(cert).encode("ascii"))
        ctx.load_cert_chain(name)
    except ssl.SSLError as exc:
        raise TransportError(f"cannot load key/certificate: {exc}", kind="tls") from exc
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def _chain(certs: x509.Certificate | Sequence[x509.Certificate]) -> list[x509.Certificate]:
    return [certs] if isinstance(certs, x509.Certificate) else list(certs)


def server_context(
    chain: x509.Certificate | Sequence[x509.Certificate],
    key: PrivateKey,
    *,
    min_version: str | ssl.TLSVersion = "1.2",
    max_version: str | ssl.TLSVersion = "1.3",
    ciphers: str | None = None,
    keylog_filename: str | Path | None = None,
    client_trust: Sequence[x509.Certificate] | None = None,
    require_client_cert: bool = False,
) -> ssl.SSLContext:
    """Server context presenting ``chain`` (leaf first); optionally asks for a client certificate.

    With ``client_trust`` the client certificate is verified against those certificates
    (``require_client_cert`` makes it mandatory); without it a client certificate is requested but
    not verified (``CERT_OPTIONAL`` needs a trust store, so none is requested in that case).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _configure(ctx, min_version=min_version, max_version=max_version, ciphers=ciphers,
               keylog_filename=keylog_filename)
    _load_chain(ctx, key, _chain(chain))
    if client_trust:
        ctx.load_verify_locations(cadata="".join(_pem(c) for c in client_trust))
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return ctx


def client_context(
    *,
    trust: Sequence[x509.Certificate],
    chain: x509.Certificate | Sequence[x509.Certificate] | None = None,
    key: PrivateKey | None = None,
    min_version: str | ssl.TLSVersion = "1.2",
    max_version: str | ssl.TLSVersion = "1.3",
    ciphers: str | None = None,
    keylog_filename: str | Path | None = None,
) -> ssl.SSLContext:
    """Client context that accepts only servers whose chain reaches one of ``trust`` (names unchecked)."""
    if not trust:
        raise TransportError("client_context needs at least one trusted certificate", kind="error")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata="".join(_pem(c) for c in trust))
    ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    _configure(ctx, min_version=min_version, max_version=max_version, ciphers=ciphers,
               keylog_filename=keylog_filename)
    ctx.options |= ssl.OP_NO_RENEGOTIATION  # module docstring
    if chain is not None and key is not None:
        _load_chain(ctx, key, _chain(chain))
    return ctx


def client_context_verify_after_handshake(
    *,
    chain: x509.Certificate | Sequence[x509.Certificate] | None = None,
    key: PrivateKey | None = None,
    min_version: str | ssl.TLSVersion = "1.2",
    max_version: str | ssl.TLSVersion = "1.3",
    ciphers: str | None = None,
    keylog_filename: str | Path | None = None,
) -> ssl.SSLContext:
    """``CERT_NONE`` client context: the caller MUST check :func:`peer_certificate_der` itself.

    This is how phones talk to TVS/CAPF: they compare the presented certificate with their ITL
    entry (spec §E.1) instead of building a chain.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    _configure(ctx, min_version=min_version, max_version=max_version, ciphers=ciphers,
               keylog_filename=keylog_filename)
    ctx.options |= ssl.OP_NO_RENEGOTIATION  # module docstring
    if chain is not None and key is not None:
        _load_chain(ctx, key, _chain(chain))
    return ctx


def peer_certificate_der(
    ssl_object: ssl.SSLObject | ssl.SSLSocket | asyncio.StreamWriter | None,
) -> bytes | None:
    """DER of the peer's leaf certificate (works in CERT_NONE mode), or None when there is none."""
    obj = ssl_object
    if isinstance(obj, asyncio.StreamWriter):
        obj = obj.get_extra_info("ssl_object")
    if obj is None:
        return None
    der: bytes | None = obj.getpeercert(binary_form=True)
    return der


async def open_tls_connection(host: str, port: int, ctx: ssl.SSLContext, *, timeout: float = 10.0,
                              server_hostname: str | None = None
                              ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect and handshake; TransportError kind "unreachable" / "timeout" / "tls" (a server that closes
    in the handshake: "unreachable", said so, not "cannot connect"). Where it connects is told to a live
    capture (:func:`phoneemu.net.capture.note_connect`)."""
    try:
        note_connect(host, port)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ctx, server_hostname=server_hostname or host,
                                    ssl_handshake_timeout=timeout), timeout)
        note_peer(writer.get_extra_info("peername"))
        return reader, writer
    except TimeoutError:
        raise TransportError(f"{host_port(host, port)}: TLS connect timeout after {timeout}s",
                             kind="timeout") from None
    except ssl.SSLError as exc:
        raise TransportError(f"{host_port(host, port)}: TLS handshake failed: {exc.reason or exc}",
                             kind="tls") from exc
    except UnicodeError as exc:  # a name IDNA cannot encode ("a..b", a label over 63 characters)
        raise TransportError(f"{host_port(host, port)}: cannot resolve: not a valid host name",
                             kind="unreachable") from exc
    except OSError as exc:
        if exc.errno is None and isinstance(exc, ConnectionError):  # asyncio's: lost in the handshake
            raise TransportError(f"{host_port(host, port)}: the server closed the connection during the TLS "
                                 f"handshake", kind="unreachable") from exc
        raise TransportError(f"{host_port(host, port)}: cannot connect: {os_error_text(exc)}",
                             kind="unreachable") from exc


def handshake_failure(exc: BaseException) -> str:
    """Why a TLS handshake failed, as every lab TLS server logs it (``tvs: 10.0.0.7:51234: TLS handshake
    failed: WHY``): OpenSSL's reason (``WRONG_VERSION_NUMBER``, ``TLSV1_ALERT_UNKNOWN_CA``), else the
    error's type and its message when it has one (``ConnectionResetError``)."""
    if isinstance(exc, ssl.SSLError) and exc.reason:
        why = getattr(exc, "verify_message", None)  # a certificate that did not verify says why
        return f"{exc.reason} ({why})" if why else str(exc.reason)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def presented_text(client_start: bytes) -> str:
    """``; the client presented SUBJECT issued by ISSUER`` when the client's start of a TLS 1.0-1.2
    handshake holds its certificate (what a refused phone presented: its LSC of another CAPF), else ""."""
    from phoneemu.crypto import certs
    from phoneemu.net.tls_handshake import client_certificate

    der = client_certificate(client_start)
    if der is None:
        return ""
    try:
        cert = certs.load_cert_der(der)
    except DecodeError:
        return "; the client presented an unreadable certificate"
    return (f"; the client presented {certs.dn_text(cert.subject)} issued by {certs.dn_text(cert.issuer)} "
            f"(serial {cert.serial_number:X})")


def _peer_of(peername: object) -> str:
    """``host:port`` (``[host]:port`` for IPv6) of a transport's ``peername`` (``?`` when there is none)."""
    if isinstance(peername, tuple) and len(peername) >= 2:
        host = str(peername[0])
        return host_port(host, peername[1])
    return "?"


#: reasons a :class:`FailureLog` line names, the most frequent first; the others are summed
FAILURE_KINDS_SAID = 4
#: distinct reasons a :class:`FailureLog` counts in one interval; further ones are counted as ``other``
_FAILURE_KINDS_KEPT = 64


class FailureLog(RefusalLog):
    """The log lines of one server's failures of one sort (module rules; the TLS servers' failed handshakes,
    the HTTP server's malformed requests): ``failed(peer, why, kind)`` for each, ``flush()`` when the server
    closes, ``total`` counts them all. :class:`~phoneemu.net._refusals.RefusalLog`'s rule and timer: the
    first after a quiet ``interval`` said at once at ``level`` (``NAME: PEER: WHY``), the others of each
    interval in one line with their count and their ``kind`` counted (``NAME: 1,093 TLS handshakes failed
    in the last 1.0 s (UNEXPECTED_EOF_WHILE_READING 1,090, ...)``); each of those is still a line at
    ``each_level`` (INFO: ``lab serve -v``). ``what``: the singular and plural of the count's words. Calls are
    made on the server's event loop; with none running (a handler called directly) each is said at once."""

    __slots__ = ("_kinds", "each_level", "what")

    def __init__(self, logger: logging.Logger, name: str,
                 what: tuple[str, str] = ("TLS handshake failed", "TLS handshakes failed"), *,
                 level: int = logging.WARNING, each_level: int = logging.INFO,
                 interval: float = REFUSAL_LOG_INTERVAL) -> None:
        super().__init__(logger, name, interval=interval, level=level)
        self.what = what
        self.each_level = each_level
        self._kinds: dict[str, int] = {}  # kind -> count, in the current interval

    def failed(self, peer: str, why: str, kind: str) -> None:
        """One more failure of ``peer`` (``host:port``) for ``why`` (its line), counted under ``kind`` (a
        short, bounded word: OpenSSL's reason, a status): said at once when none was in the last interval
        (or no event loop runs), else counted for the interval's line (and said at ``each_level``)."""
        self.total += 1
        if self._timer is None:
            self.logger.log(self.level, "%s: %s: %s", self.name, peer, why)
            with contextlib.suppress(RuntimeError):  # no running loop: no interval, each said at once
                self._start_interval()
            return
        self.logger.log(self.each_level, "%s: %s: %s", self.name, peer, why)
        self._pending += 1
        kinds = self._kinds
        key = kind if kind in kinds or len(kinds) < _FAILURE_KINDS_KEPT else "other"
        kinds[key] = kinds.get(key, 0) + 1

    def _say(self) -> None:
        """The interval's line: its count and the reasons counted (the most frequent first)."""
        count, self._pending = self._pending, 0
        kinds, self._kinds = self._kinds, {}
        elapsed = asyncio.get_running_loop().time() - self._since
        self.logger.log(self.level, "%s: %s %s in the last %.1f s (%s)", self.name, f"{count:,}",
                        self.what[0] if count == 1 else self.what[1], elapsed, kinds_text(kinds))


def kinds_text(kinds: dict[str, int]) -> str:
    """``A 1,090, B 3``: each kind with its count, the most frequent first (then by name), at most
    :data:`FAILURE_KINDS_SAID` of them, the rest summed (``, 5 of 2 other reasons``)."""
    ranked = sorted(kinds.items(), key=lambda item: (-item[1], item[0]))
    said = [f"{kind} {n:,}" for kind, n in ranked[:FAILURE_KINDS_SAID]]
    rest = ranked[FAILURE_KINDS_SAID:]
    if rest:
        said.append(f"{sum(n for _, n in rest):,} of {len(rest)} other reasons")
    return ", ".join(said)


class _TlsStreamProtocol(asyncio.StreamReaderProtocol):
    """The stream protocol over a TLS connection: the reader sees the peer's end of stream (or its
    close_notify), and the connection closes then — TLS has no half-close (a phone refusing our
    certificate, spec §E.1, §F.1, sends its Finished and its close together)."""

    def eof_received(self) -> bool:
        super().eof_received()  # the reader sees its end of file
        return False


class ConnectionBudget:
    """Connections several servers hold open together, at most ``limit`` (module rules; ``TlsServer``'s
    ``budget``). ``take()`` is False when none is left; ``give_back()`` returns one. ``rooms``: the rooms of
    the servers drawing on it, for the choice across them when it is full (module rules, "Room across a
    shared budget"); its servers run on one event loop."""

    __slots__ = ("limit", "open", "rooms")

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.open = 0
        self.rooms: Rooms[_Place] = Rooms()

    def take(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def give_back(self) -> None:
        self.open = max(0, self.open - 1)


class _Place:
    """A connection of a :class:`TlsServer` in its room (module rules, "Room under a flood"): until its first
    step (a TLS handshake's end, a plain connection's first bytes) each read says its client spoke; that
    step (or its failure, or its handler's end) takes it out of the choice, its loss out of the room.
    ``evicted``: closed for room (nothing more to say of it). Mixed into the connection's protocol
    (``_init_place`` in its ``__init__``)."""

    host: str
    heard: float
    task: asyncio.Task[None] | None
    evicted: bool
    server: TlsServer | None

    def _init_place(self) -> None:
        self.host = "?"  # the peer's address without the port
        self.heard = 0.0  # when its client last sent bytes (set by the room)
        self.task = None
        self.evicted = False
        self.server = None  # whose room it is in
        self._room: Room[_Place] | None = None  # from its admission until the connection is lost
        self._clock: Callable[[], float] | None = None
        self._choosable = False  # in the choice: each read is noted

    def transport_of(self) -> asyncio.Transport | None:
        raise NotImplementedError

    def enter(self, server: TlsServer, task: asyncio.Task[None]) -> None:
        """Admitted: counted for its address in ``server``'s room, in the choice, heard from now."""
        loop = asyncio.get_running_loop()
        transport = self.transport_of()
        peername = transport.get_extra_info("peername") if transport is not None else None
        self.host = str(peername[0]) if isinstance(peername, tuple) and peername else "?"
        self.task, self.server = task, server
        room = server._by_address
        self._room, self._clock, self._choosable = room, loop.time, True
        room.opened(self, loop.time())

    def leave_choice(self) -> None:
        """Never closed for room from now on (its first step made, or it is ending)."""
        if self._choosable:
            self._choosable = False
            if self._room is not None:
                self._room.asked(self)

    def spoke(self) -> None:
        """Its client sent bytes before its first step ended: heard from now (O(1), module rules)."""
        if self._room is not None and self._clock is not None:
            self._room.heard(self, self._clock())

    def left(self) -> None:
        """The connection is lost: out of the room."""
        room, self._room = self._room, None
        self._choosable = False
        if room is not None:
            room.closed(self)

    def input_waits(self) -> bool:
        """Whether bytes of the client wait unread in the kernel (:func:`phoneemu.net._room.input_waits`,
        on the transport's descriptor)."""
        raw = self.transport_of()
        sock = raw.get_extra_info("socket") if raw is not None and not raw.is_closing() else None
        fd = sock.fileno() if sock is not None else -1
        if fd < 0:
            return False
        try:
            probe = socket.socket(fileno=fd)  # the transport's own socket object offers no recv
        except OSError:
            return False
        try:
            probe.setblocking(False)
            return input_waits(probe)
        finally:
            probe.detach()  # the descriptor stays the transport's


class _Accepted(TlsAcceptProtocol, _Place):
    """An accepted TLS connection of a :class:`TlsServer` in its room (:class:`_Place`): its first step is
    its handshake's end."""

    def __init__(self, ctx: ssl.SSLContext, on_connection: Callable[[TlsAcceptProtocol], None]) -> None:
        super().__init__(ctx, on_connection)
        self._init_place()

    def transport_of(self) -> asyncio.Transport | None:
        return self.raw

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._choosable:  # in its handshake: O(1) (module rules)
            hs = self.handshake
            if hs is None or hs.done():
                self.leave_choice()
            else:
                self.spoke()

    def eof_received(self) -> bool:
        """The client's end fails a handshake under way: out of the choice at once (was: until its task ran,
        so a newcomer's turn before it closed it "for room", its failure unsaid)."""
        keep = super().eof_received()
        hs = self.handshake
        if hs is None or hs.done():
            self.leave_choice()
        return keep

    def connection_lost(self, exc: Exception | None) -> None:
        self.left()
        super().connection_lost(exc)


class _Plain(asyncio.StreamReaderProtocol, _Place):
    """An accepted plain TCP connection of a :class:`TlsServer` in its room (:class:`_Place`): its first step
    is its client's first bytes (module rules: the lab's plain protocols have the client speak first)."""

    def __init__(self, reader: asyncio.StreamReader,
                 on_connect: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]) -> None:
        super().__init__(reader, on_connect)
        self._init_place()
        self._tcp: asyncio.Transport | None = None
        self._spoken = False  # bytes came (before its admission too)

    def transport_of(self) -> asyncio.Transport | None:
        return self._tcp

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._tcp = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        super().connection_made(transport)

    def enter(self, server: TlsServer, task: asyncio.Task[None]) -> None:
        super().enter(server, task)
        if self._spoken:  # before its task ran: asked already
            self.leave_choice()

    def data_received(self, data: bytes) -> None:
        if data:
            self._spoken = True
            self.leave_choice()
        super().data_received(data)

    def eof_received(self) -> bool:
        self.leave_choice()
        return bool(super().eof_received())

    def connection_lost(self, exc: Exception | None) -> None:
        self.left()
        super().connection_lost(exc)


class TlsServer:
    """``async with TlsServer(handler, ctx, port=0) as srv`` — one isolated handler per connection.

    With a context, TLS is :class:`phoneemu.net.tls_accept.TlsAcceptProtocol` on every loop (asyncio's
    own TLS drops the alert of a failed handshake: a client refused for its certificate saw a reset);
    each failed handshake (its alert sent) is counted in ``handshake_failures``, logged (warning, or
    ``failure_log_level``; a flood at most a line a second with its count: ``failures``, module rules) and
    passed to ``on_handshake_error(peer, reason)`` — a phone that refuses the lab's certificate shows up.

    At most ``max_connections`` connections are open at once, those still in their handshake
    included (plain TCP: from the handler's start): one more is closed at once
    (logged, counted in ``refused``), so a flood of TCP connections that never send a ClientHello
    cannot hold more descriptors than that. With a shared ``budget`` (:class:`ConnectionBudget`), a
    connection also needs one of its places, given back when the connection ends. Refusals are logged at
    most once a second with their count (``refusals``, module rules). Full, a TLS connection takes the
    place (and the budget place) of one silent past ``first_request_grace`` in its handshake, if there is
    one (counted in ``evicted``, logged with the refusals; module rules, "Room under a flood"); with places
    of its own but the shared budget full, of one silent in any server sharing the budget (module rules,
    "Room across a shared budget"). Plain TCP likewise, its first bytes for the handshake's end."""

    def __init__(self, handler: Handler, ctx: ssl.SSLContext | None, host: str = "127.0.0.1",
                 port: int = 0, *, name: str = "tls", handshake_timeout: float = 10.0,
                 max_connections: int = 1024, backlog: int = 1024,
                 on_handshake_error: Callable[[str, str], None] | None = None,
                 failure_log_level: int = logging.WARNING, budget: ConnectionBudget | None = None,
                 first_request_grace: float = DEFAULT_GRACE) -> None:
        self.handler = handler
        self.budget = budget
        self.failure_log_level = failure_log_level
        self.backlog = backlog  # listen queue: TLS connection storms (fleets) overflow asyncio's 100
        self.ctx = ctx
        self.host = host
        self.requested_port = port
        self.name = name
        self.handshake_timeout = handshake_timeout
        self.max_connections = max_connections
        self.errors = 0
        self.connections = 0
        self.handshake_failures = 0
        self.refused = 0
        #: connections closed to make room for a newcomer (module rules, "Room under a flood")
        self.evicted = 0
        self.refusals = RefusalLog(_log, name)
        #: failed handshakes: at once, then at most a line a second with their count (module rules)
        self.failures = FailureLog(_log, name, level=failure_log_level)
        self.on_handshake_error = on_handshake_error
        self._active: set[asyncio.Task[None]] = set()
        #: the connections by address, and whom to close for room (a PhoneEmuError for a bad grace)
        self._by_address: Room[_Place] = Room(first_request_grace)
        #: the tasks of connections closed for room, still ending: their places are the newcomers'
        self._passed: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> TlsServer:
        loop = asyncio.get_running_loop()
        # ``::``: a dual-stack socket, IPv4 clients too (phoneemu.net._listen)
        sock = tcp_listener(self.host, self.requested_port, backlog=self.backlog) \
            if is_ipv6_any(self.host) else None
        if self.ctx is not None:
            ctx = self.ctx

            def factory() -> TlsAcceptProtocol:
                return _Accepted(ctx, self._spawn)
            if sock is not None:
                unstarted = loop.create_server(factory, sock=sock, backlog=self.backlog, start_serving=False)
            else:
                unstarted = loop.create_server(factory, self.host, self.requested_port, backlog=self.backlog,
                                               start_serving=False)
        else:
            def plain() -> asyncio.Protocol:  # asyncio.start_server's, in the room (module rules)
                return _Plain(asyncio.StreamReader(), self._on_connect)
            if sock is not None:
                unstarted = loop.create_server(plain, sock=sock, backlog=self.backlog, start_serving=False)
            else:
                unstarted = loop.create_server(plain, self.host, self.requested_port, backlog=self.backlog,
                                               start_serving=False)
        # a start that does not return (cancelled) leaves nothing listening (phoneemu.net._listen.serving)
        self._server = await serving(unstarted, sock)
        if self.budget is not None:
            self.budget.rooms.add(self._by_address)  # (module rules, "Room across a shared budget")
        return self

    @property
    def first_request_grace(self) -> float:
        """Seconds of silence in its handshake after which a full server may close a connection for room."""
        return self._by_address.grace

    def _spawn(self, conn: TlsAcceptProtocol) -> None:
        raw = conn.raw
        assert raw is not None and isinstance(conn, _Accepted)
        if not self._admit(raw.get_extra_info("peername")):  # before the handshake (class docstring)
            raw.abort()
            return
        task = asyncio.get_running_loop().create_task(self._tls_connection(conn))
        conn.enter(self, task)
        self._hold(task)

    def _held(self) -> int:
        """Connections holding a place: the open ones but those closed for room, still ending."""
        return len(self._active) - len(self._passed)

    def _admit(self, peername: object) -> bool:
        """A place for a newcomer: below ``max_connections`` with a place of the shared budget taken; else the
        places of one closed for room — of this server when it is at its own cap, else of any server sharing
        the budget (module rules). None to close: refused (counted, logged), False."""
        now = asyncio.get_running_loop().time()
        if self._held() >= self.max_connections:
            victim = self._by_address.victim(now)
        elif self.budget is None or self.budget.take():
            return True
        else:
            victim = self.budget.rooms.victim(now)
        owner = victim.server if victim is not None else None
        if victim is None or owner is None:
            self._refuse(peername)
            return False
        owner._evict(victim, self)  # its places are the newcomer's
        return True

    def _evict(self, victim: _Place, newcomer: TlsServer) -> None:
        """Abort ``victim`` to make room for a newcomer of ``newcomer`` (this server or one sharing its
        budget); its places pass to the newcomer (logged like a refusal, counted in :attr:`evicted`; module
        rules, "Room under a flood")."""
        self.evicted += 1
        victim.evicted = True
        raw = victim.transport_of()
        peername = raw.get_extra_info("peername") if raw is not None else None
        held = self._by_address.held(victim.host)
        step = "TLS handshake unfinished" if isinstance(victim, _Accepted) else "nothing received"
        whom = "" if newcomer is self else f" for {newcomer.name}"
        self.refusals.refused(_peer_of(peername), f"closed to make room{whom}: {step}, silent "
                                                  f"for {self.first_request_grace:g} s ({self._pool_text()}; "
                                                  f"{victim.host} holds {held})")
        victim.leave_choice()  # not chosen twice while it ends
        if victim.task in self._active:
            self._passed.add(victim.task)
        if raw is not None:
            raw.abort()

    def _hold(self, task: asyncio.Task[None]) -> None:
        """Count ``task``'s connection until it ends (its budget place, taken by :meth:`_room`, then given
        back — or passed on with it, closed for room)."""
        self._active.add(task)
        task.add_done_callback(self._release)

    def _release(self, task: asyncio.Task[None]) -> None:
        self._active.discard(task)
        if task in self._passed:  # its places are a newcomer's (_evict)
            self._passed.discard(task)
            return
        if self.budget is not None:
            self.budget.give_back()

    async def _tls_connection(self, conn: _Accepted) -> None:
        """Wait for the handshake, then the handler with a StreamReader/Writer over the TLS transport."""
        raw, handshake = conn.raw, conn.handshake
        assert raw is not None and handshake is not None
        peer = _peer_of(raw.get_extra_info("peername"))
        try:
            await asyncio.wait_for(handshake, self.handshake_timeout)
        except asyncio.CancelledError:
            raw.abort()
            raise
        except TimeoutError:
            raw.abort()
            self._handshake_failed(peer, f"TLS handshake timeout after {self.handshake_timeout:g}s",
                                   "timeout")
            return
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError; the alert is on its way
            if not conn.evicted:  # (one closed for room is said with the refusals)
                why = handshake_failure(exc)
                presented = presented_text(conn.client_start)
                self._handshake_failed(peer, f"TLS handshake failed: {why}{presented}", why)
            return
        finally:
            conn.leave_choice()
        reader = asyncio.StreamReader()
        protocol = _TlsStreamProtocol(reader)
        tls = conn.attach(protocol)
        writer = asyncio.StreamWriter(tls, protocol, reader, asyncio.get_running_loop())
        await self._on_connect(reader, writer)

    def _refuse(self, peername: object) -> None:
        """Count a refused connection; logged at most once a second (module rules)."""
        self.refused += 1
        self.refusals.refused(_peer_of(peername), f"pool full ({self._pool_text()})")

    def _pool_text(self) -> str:
        """``N open, max_connections M`` and the shared budget's use, for a refusal's log line."""
        budget = self.budget
        shared = f", {budget.open} of {budget.limit} shared by the servers" if budget is not None else ""
        return f"{self._held()} open, max_connections {self.max_connections}{shared}"

    def _handshake_failed(self, peer: str, reason: str, kind: str) -> None:
        """Count a failed handshake, log it (at most a line a second, module rules: :class:`FailureLog`,
        counted under ``kind``) and tell ``on_handshake_error``."""
        self.handshake_failures += 1
        self.failures.failed(peer, reason, kind)
        if self.on_handshake_error is not None:
            try:
                self.on_handshake_error(peer, reason)
            except Exception:
                _log.exception("%s: on_handshake_error callback failed", self.name)

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.sockets[0].getsockname()[1])

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = _peer_of(peername)
        task = asyncio.current_task()
        plain = writer.transport.get_protocol()
        if task is not None and task not in self._active:  # plain TCP (a TLS one is counted by _spawn)
            if not self._admit(peername):
                writer.close()
                return
            self._hold(task)
            if isinstance(plain, _Plain):
                plain.enter(self, task)
        self.connections += 1
        cancelled = False
        try:
            await self.handler(reader, writer)
        except asyncio.CancelledError:
            # the connection's own task, cancelled by close(): it ends here. Raised further, asyncio's
            # start_server callback (plain TCP) would log "Exception in callback" for it
            cancelled = True
            return
        except Exception as exc:
            if not (isinstance(plain, _Plain) and plain.evicted):  # (one closed for room: said with refusals)
                self.errors += 1
                _log.warning("%s: connection from %s failed: %s: %s", self.name, peer, type(exc).__name__,
                             exc)
        finally:
            if isinstance(plain, _Plain):  # ending: never closed for room, its places given back as it ends
                plain.leave_choice()  # (was: chosen until its loss, a newcomer let in on a place given back)
            await self._close_connection(writer, peer, ending=cancelled)
            if task is not None and task not in self._passed:  # (a passed one: _release)
                self._active.discard(task)  # after the close: its descriptor counted until then

    async def _close_connection(self, writer: asyncio.StreamWriter, peer: str, *,
                                ending: bool = False) -> None:
        """Close; the client must go on taking what is still unsent (module rules:
        :func:`phoneemu.net._taken.until_taken` each :data:`CLOSE_WAIT_S`), else the connection is aborted
        (logged). ``ending``, or cancelled meanwhile: the server's close, which ends every connection —
        what is unsent is dropped (was: waited for, the close held for as long as a slow client reads; or,
        cancelled, left sending with nothing to cut it)."""
        writer.close()
        if ending:
            _end_now(writer)
            return
        unsent_at_close = unsent(writer)
        try:
            left = await until_taken(writer, writer.wait_closed(), CLOSE_WAIT_S)
        except asyncio.CancelledError:  # not raised further: as the handler's (_on_connect)
            _end_now(writer)
            return
        except Exception:  # the connection's own end (a reset, a TLS error): closed
            return
        if left is not None:
            _log.warning("%s: %s did not take the last %d bytes sent within %gs of the end, nor %d bytes of "
                         "them in each %gs after (%d unsent): connection aborted", self.name, peer,
                         unsent_at_close, CLOSE_WAIT_S, TAKEN_PER_IDLE, CLOSE_WAIT_S, left)
            writer.transport.abort()

    async def close(self) -> None:
        """Stop listening and end every connection, those accepted just before included
        (:func:`phoneemu.net._listen.close_listening`)."""
        if self._server is None:
            return
        await close_listening(self._server, self._cancel_active)
        if self._active:
            await asyncio.gather(*self._active, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None
        if self.budget is not None:
            self.budget.rooms.remove(self._by_address)
        self._by_address.clear()
        self._passed.clear()
        self.refusals.flush()  # the last interval's refusals said (module rules)
        self.failures.flush()  # and failed handshakes

    def _cancel_active(self) -> None:
        for task in list(self._active):
            task.cancel()

    async def __aenter__(self) -> TlsServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _end_now(writer: asyncio.StreamWriter) -> None:
    """End a closed connection at once: aborted when some of what was written is still in the transport's
    buffer (what the kernel holds it still sends), so no descriptor outlives the server's close."""
    if writer.transport.get_write_buffer_size():
        writer.transport.abort()


#: The TVS cipher list of CUCM 14, in its order (spec §E.1 [CSC-compat14]): RSA key transport first,
#: then ECDHE-RSA. Lab TVS servers use it with server preference (TLS 1.2 and below).
CUCM_TVS_CIPHERS = ("AES256-GCM-SHA384:AES256-SHA256:AES256-SHA:AES128-GCM-SHA256:AES128-SHA256:AES128-SHA:"
                    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-SHA384:"
                    "ECDHE-RSA-AES128-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256")
#: The SIP line's TLS 1.2 ciphers of CUCM (seed "AES 256 and SHA-2 Support in TLS":
#: ECDH-RSA-AES128-GCM-SHA256, ECDH-RSA-AES256-GCM-SHA384, and still AES128-SHA); its note: "Cisco Endpoints
#: (phones) do not support the above mentioned new ciphers", so a phone negotiates AES128-SHA. (OpenSSL 3
#: has no static-ECDH suites: the lab registrar offers AES128-SHA alone, what phones get from CUCM anyway.)
CUCM_SIP_LINE_CIPHERS = ("ECDH-RSA-AES128-GCM-SHA256:ECDH-RSA-AES256-GCM-SHA384:AES128-SHA:NULL-SHA"
                         ":@SECLEVEL=0")
#: what a phone in "Authenticated" device security mode offers its CallManager: TLS with NULL-SHA —
#: signalling authenticated, not encrypted (spec §G.14; OpenSSL leaves NULL ciphers out above level 0)
PHONE_AUTHENTICATED_CIPHERS = "NULL-SHA:@SECLEVEL=0"
#: What an emulated phone offers up to TLS 1.2 — our convention (spec [UNK]): the cipher a CUCM TVS
#: was seen to negotiate with an 8861 (AES256-SHA, §E.1), the other RSA key-transport suites of the
#: CUCM 14 list, then ECDHE with RSA or ECDSA keys (an EC TVS identity still works).
PHONE_TLS12_CIPHERS = ("AES256-SHA:AES128-SHA:AES256-GCM-SHA384:AES128-GCM-SHA256:"
                       "AES256-SHA256:AES128-SHA256:"
                       "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256:"
                       "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256")

_PHONE_CONTEXTS: dict[tuple[str, str, str | None], ssl.SSLContext] = {}
_PHONE_IDENTITY_CONTEXTS: dict[tuple[str, str, str | None, bytes], ssl.SSLContext] = {}
#: the phone contexts that write a key log, each shared while something holds it (a fleet's TVS askers, a
#: connection): each holds its key log open, so none is kept past its last user (was: in the two dicts
#: above for the process's life, one open key log each: a ``run --capture`` of N scenarios in one process
#: held N open to its end, an in-process ``boot --keylog`` its file after it returned, and a key log removed
#: and made again at a path used before got no line, every one written to the removed file)
_PHONE_KEYLOG_CONTEXTS: weakref.WeakValueDictionary[tuple[str | bytes | None, ...], ssl.SSLContext] = \
    weakref.WeakValueDictionary()
#: client contexts with a phone's own certificate kept (a fleet registering over TLS reuses none of them)
_IDENTITY_CONTEXTS = 64


def phone_client_context(versions: Sequence[str], keylog: str | Path | None = None, *,
                         identity: tuple[x509.Certificate, PrivateKey] | None = None,
                         authenticated_only: bool = False) -> ssl.SSLContext:
    """The ``CERT_NONE`` client context an emulated phone uses for TVS and CAPF, limited to the TLS
    versions of its profile (7900-series phones speak only TLS 1.0, spec §E.1/§F.1); one shared
    context per (versions, key log) so that thousands of phones do not each build one (with a key log,
    while something holds it: :data:`_PHONE_KEYLOG_CONTEXTS`). With ``identity`` (certificate, key) the
    context presents it when the server asks (the phone's LSC or MIC to a CallManager, spec §F.9): a
    context of its own, the last :data:`_IDENTITY_CONTEXTS` kept (with a key log, while held).
    ``authenticated_only``: NULL-SHA alone, up to TLS 1.2 (a phone in "Authenticated" device security mode
    to its CallManager: signalling authenticated, not encrypted, spec §G.14)."""
    picked = sorted({v for v in versions if v in TLS_VERSIONS}, key=TLS_VERSIONS.index) or ["1.2", "1.3"]
    null = authenticated_only and picked[0] != "1.3"
    if null:
        picked = [v for v in picked if v != "1.3"]
    key = (picked[0], picked[-1], str(keylog) if keylog is not None else None)
    if identity is not None:
        own = (*key, cert_der(identity[0]) + (b"null" if null else b""))
        ctx = _PHONE_IDENTITY_CONTEXTS.pop(own, None) if keylog is None else _PHONE_KEYLOG_CONTEXTS.get(own)
        if ctx is None:
            ctx = client_context_verify_after_handshake(  # (any key size it holds: a 1024-bit MIC too)
                chain=identity[0], key=identity[1], min_version=picked[0], max_version=picked[-1],
                keylog_filename=keylog,
                ciphers=PHONE_AUTHENTICATED_CIPHERS if null else f"{PHONE_TLS12_CIPHERS}:@SECLEVEL=0")
        if keylog is not None:
            _PHONE_KEYLOG_CONTEXTS[own] = ctx
            return ctx
        _PHONE_IDENTITY_CONTEXTS[own] = ctx  # the most recently used last
        while len(_PHONE_IDENTITY_CONTEXTS) > _IDENTITY_CONTEXTS:
            del _PHONE_IDENTITY_CONTEXTS[next(iter(_PHONE_IDENTITY_CONTEXTS))]
        return ctx
    shared = (key[0], key[1] + ("-null" if null else ""), key[2])
    ctx = _PHONE_CONTEXTS.get(shared) if keylog is None else _PHONE_KEYLOG_CONTEXTS.get(shared)
    if ctx is None:
        ctx = client_context_verify_after_handshake(
            min_version=picked[0], max_version=picked[-1], keylog_filename=keylog,
            ciphers=PHONE_AUTHENTICATED_CIPHERS if null else PHONE_TLS12_CIPHERS)
        if keylog is None:
            _PHONE_CONTEXTS[shared] = ctx
        else:
            _PHONE_KEYLOG_CONTEXTS[shared] = ctx
    return ctx


#: the TLS alerts (OpenSSL's reason names) a server sends when it refuses the client's certificate, or
#: the absence of one it requires
_CLIENT_CERT_ALERTS = ("ALERT_UNKNOWN_CA", "ALERT_BAD_CERTIFICATE", "CERTIFICATE_REQUIRED",
                       "ALERT_CERTIFICATE_EXPIRED", "ALERT_CERTIFICATE_UNKNOWN",
                       "ALERT_UNSUPPORTED_CERTIFICATE", "ALERT_CERTIFICATE_REVOKED", "ALERT_ACCESS_DENIED")


def client_certificate_refused(message: str, *, presented: bool) -> bool:
    """Whether a handshake failure ``message`` (:func:`open_tls_connection`'s) is the server refusing the
    client's certificate — or, when none was ``presented``, a handshake failure alert (TLS 1.2 servers
    send that one when they require a certificate)."""
    refused = any(a in message for a in _CLIENT_CERT_ALERTS)
    return refused or (not presented and "HANDSHAKE_FAILURE" in message)
