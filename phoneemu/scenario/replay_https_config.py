"""The HTTPS config downloads of a capture (TCP 6971, spec §H.1), for ``phoneemu replay``.

A phone whose ITL has signer version 1.1 and a TFTP record with an EC key asks TCP 6971 for
``SEP<MAC>.cnf.xml.sgn`` before the normal way (:mod:`phoneemu.phone.boot`, step 2 "HTTPS first"). A replayed
boot is given an ``https_config`` getter (:class:`phoneemu.phone.boot.HttpsConfigGetter`) answering that
request from the capture, so that it decides as the live phone did.

Rules (*our conventions*: the spec says nothing of replays):

* **Recognised by the request, not the port** (a lab's port is ephemeral): every TLS connection of the capture
  is decrypted with the key log (:class:`phoneemu.scenario.replay_tvs.TvsCollector`); one whose client data
  opens with an HTTP ``GET`` (the capture's request-line reading,
  :func:`phoneemu.scenario._capture_flows.first_request`) of ``SEP<MAC>.cnf.xml.sgn`` is that phone's HTTPS
  config exchange (:class:`CapturedHttpsConfig`): kept with the certificate its server presented
  (:func:`phoneemu.net.tls_decrypt.presented_certificate`), the server's decrypted bytes and whether it ended
  them with a close_notify. ``replay --mac`` keeps the phone's own (the others' servers remembered);
  ``--all`` every phone's. The server's bytes are kept up to what the live client reads
  (:data:`MAX_RESPONSE`, beyond: "too-large" as live), identical ones once, at most :data:`MAX_KEPT_BYTES`
  in all (beyond, an exchange is kept without them, and its replay says so).
* **A replayed boot's request** is answered with the first captured exchange of the same phone (the MAC of
  the name asked) inside the boot's window (from its first request to the phone's next boot, ranks in
  capture order: :mod:`phoneemu.scenario.replay`), each used once, in capture order. The getter first calls
  ``accept_server(certificate)``: the replayed phone's own rule (§G.5) judges the captured certificate — a
  certificate it refuses (another server's, a MITM's) is refused as the live client refuses it, before the
  request (kind ``tls``, :data:`~phoneemu.phone.https_config.SERVER_REFUSED`). Then the captured response is
  read by the live client's rules (:func:`phoneemu.net.http.read_response`; a body delimited by the end of
  the connection is kept only after a close_notify): 200 → the body; 404 → kind ``not-found``; another
  status → ``error``; a malformed answer → ``protocol``; no answer at all → ``unreachable`` ("captured HTTPS
  config request got no answer"). A certificate the capture does not show (TLS 1.3 without its handshake
  secret in the key log) is not judged: ``unreachable``, saying why.
* **A server the phone refused** sent no request (the phone hung up after the handshake, §G.5): such a
  connection (:class:`phoneemu.scenario.replay_tvs.CapturedCert`) counts as the boot's HTTPS config connection
  when its server is the boot's server address (the phone asks 6971 of its TFTP host) on port 6971 or on a
  port where the capture holds an HTTPS config request, it comes from a client address of the boot (any
  client's when the boot's addresses are shared by several phones; never one whose client certificate names
  another phone), and lies in the span the phone's config step had (from the latest of the phone's requests
  answered so far to its next, :meth:`phoneemu.scenario.replay.ReplayFetcher.span`): its certificate is judged
  by the phone's rule — refused, as live (``H.1-https-config-server-untrusted``, then the normal way);
  accepted (the replayed phone holds another ITL), its request is not in the capture: ``unreachable``. Of such
  a connection and a captured exchange, the one first in capture order is the boot's.
* **Nothing captured** for the boot: ``unreachable`` naming the boot's server and port 6971 (or the port
  the capture's HTTPS config requests went to on that host): the phone goes the normal way, as live when 6971
  does not answer. **Without a key log** no connection can be read: the same, and the scan warns once,
  naming how many TLS connections to TCP 6971 the capture holds (:func:`unread_warning`).
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from phoneemu.errors import TransportError
from phoneemu.formats.config import CONFIG_LIMIT
from phoneemu.net.http import read_response
from phoneemu.net.tls_decrypt import DecryptedTls, KeyLog, presented_certificate
from phoneemu.phone.https import read_to_close
from phoneemu.phone.https_config import HTTPS_CONFIG_PORT, SERVER_REFUSED
from phoneemu.scenario._capture_flows import Endpoint, first_request, host_key
from phoneemu.values import host_port
from phoneemu.words import counted

__all__ = ["MAX_KEPT_BYTES", "MAX_RESPONSE", "NOT_READ", "NO_ANSWER", "NO_EXCHANGE", "CapturedHttpsConfig",
           "CapturedHttpsConfigGetter", "HttpsConfigCapture", "HttpsConfigCollector", "HttpsConfigReplay",
           "unread_warning"]

_MAX_HEAD = 8192  # bytes of a response head, as the live client (phoneemu.phone.https_config)
MAX_RESPONSE = CONFIG_LIMIT + 64 * 1024
"""The server bytes of one exchange kept: what the live client reads at most (the config parser's cap and
64 KiB of head and framing, :mod:`phoneemu.phone.https_config`); more is its "too-large"."""
MAX_KEPT_BYTES = 64 << 20
"""The server bytes of the exchanges kept in all (identical ones once; module rules)."""
NO_EXCHANGE = "no HTTPS config download of this phone in the capture"
NO_ANSWER = "captured HTTPS config request got no answer"
NOT_READ = "the capture's TLS connections are not read without --keylog"
_CONFIG_NAME = re.compile(r"SEP([0-9A-Fa-f]{12})\.cnf\.xml\.sgn", re.ASCII)


def unread_warning(connections: int) -> str:
    """The scan's warning without a key log (module rules): ``connections`` TLS connections to TCP 6971."""
    return (f"{counted(connections, 'TLS connection')} to TCP port {HTTPS_CONFIG_PORT} (the HTTPS config "
            "download, spec §H.1) cannot be read without --keylog: a phone that took its config that way is "
            "replayed as if the port had not answered (give the capture's TLS key log)")


@dataclass(frozen=True, kw_only=True, slots=True)
class CapturedHttpsConfig:
    """One HTTPS config request of the capture (module rules) and what its server sent back."""

    start: float
    client: Endpoint
    server: Endpoint
    order: int  # rank of its connection in capture order
    name: str  # the file asked, ``SEP<MAC>.cnf.xml.sgn``
    mac: str
    tls: str
    certificate: bytes | None  # the certificate its server presented (None: not known, ``why``)
    why: str = ""
    response: bytes | None = None  # the server's decrypted bytes (None: not kept, ``not_kept``)
    close_notify: bool = False  # the server ended them with a TLS close_notify
    too_long: bool = False  # the server sent more than MAX_RESPONSE bytes
    not_kept: str = ""

    def describe(self) -> str:
        return (f"https-config {host_port(*self.server)} {self.name}: "
                f"{len(self.response) if self.response is not None else 'not kept'} bytes back ({self.tls})")


class _Shown(Protocol):
    """A connection whose client sent nothing after the handshake (:class:`~phoneemu.scenario.replay_tvs.
    CapturedCert`)."""

    @property
    def client(self) -> Endpoint: ...
    @property
    def server(self) -> Endpoint: ...
    @property
    def certificate(self) -> bytes: ...
    @property
    def order(self) -> int: ...
    @property
    def mac(self) -> str | None: ...


@dataclass(frozen=True, kw_only=True)
class HttpsConfigCapture:
    """What the scan kept of the HTTPS config downloads (module rules)."""

    exchanges: tuple[CapturedHttpsConfig, ...] = ()
    #: the servers (address, port) every recognised request went to, any phone's
    servers: frozenset[tuple[str, int]] = frozenset()
    #: the connections without a request (the TVS scan's, :attr:`~phoneemu.scenario.replay_tvs.TvsCapture.
    #: presented`): a server the phone refused
    presented: tuple[_Shown, ...] = ()
    read: bool = True  # False: no key log, nothing could be read
    unread: int = 0  # without a key log: TLS connections to TCP 6971
    unlisted: int = 0  # recognised, not kept (another phone's for --mac, beyond the caps)

    def replayer(self) -> HttpsConfigReplay:
        """One phone's replay of its boots, in order (each exchange used once)."""
        return HttpsConfigReplay(self)

    @functools.cached_property
    def exchanges_of(self) -> dict[str, tuple[list[int], list[int]]]:
        """Per phone (MAC), the ranks of its exchanges and their indices, in capture order (built once for
        all the phones of ``replay --all``)."""
        out: dict[str, tuple[list[int], list[int]]] = {}
        for i, ex in enumerate(self.exchanges):  # sorted by rank
            ranks, indices = out.setdefault(ex.mac, ([], []))
            ranks.append(ex.order)
            indices.append(i)
        return out

    @functools.cached_property
    def shown_at(self) -> dict[str, tuple[list[int], list[int]]]:
        """Per server address, the connections without a request to a port an HTTPS config connection may
        use (module rules, "A server the phone refused"): their ranks and indices, in capture order."""
        out: dict[str, tuple[list[int], list[int]]] = {}
        for i in sorted(range(len(self.presented)), key=lambda i: self.presented[i].order):
            c = self.presented[i]
            host, port = host_key(c.server[0]), c.server[1]
            if port == HTTPS_CONFIG_PORT or (host, port) in self.servers:
                ranks, indices = out.setdefault(host, ([], []))
                ranks.append(c.order)
                indices.append(i)
        return out


class HttpsConfigCollector:
    """Keeps the HTTPS config exchanges of decrypted TLS connections (module rules): all of them up to
    ``limit``, beyond only ``mac``'s (with ``mac``: only its own); ``admit(exchange)`` may refuse one (a
    budget's: its answer is then not held either), ``certificate(der)`` gives the one copy of a certificate
    kept (None: beyond the caps)."""

    def __init__(self, *, mac: str | None = None, limit: int = 10_000,
                 certificate: Callable[[bytes | None], bytes | None] = lambda der: der) -> None:
        self.mac, self.limit, self.certificate = mac, limit, certificate
        self.found: list[CapturedHttpsConfig] = []
        self.servers: set[tuple[str, int]] = set()
        self.unlisted = 0
        self.admit: Callable[[CapturedHttpsConfig], bool] = lambda _ex: True
        self._bytes: dict[bytes, bytes] = {}
        self._held = 0

    def connection(self, *, client: Endpoint, server: Endpoint, start: float, order: int, plain: DecryptedTls,
                   client_stream: bytes, server_stream: bytes, secrets: KeyLog | dict[bytes, bytes]) -> bool:
        """Keep the connection's exchange when it is an HTTPS config request (True), else False."""
        asked = first_request(plain.client_data)
        found = _CONFIG_NAME.fullmatch(asked[1]) if asked is not None and asked[0] == "GET" else None
        if found is None or asked is None:
            return False
        if len(self.servers) < self.limit:
            self.servers.add((host_key(server[0]), server[1]))
        mac = found[1].upper()
        if (self.mac is not None and mac != self.mac) or (len(self.found) >= self.limit and mac != self.mac):
            self.unlisted += 1
            return True
        der, why = presented_certificate(client_stream, server_stream, secrets)
        kept = self.certificate(der)
        if der is not None and kept is None:
            why = "beyond the certificates a replay keeps"
        data = plain.server_data
        too_long = len(data) > MAX_RESPONSE
        answers = len(self._bytes)
        response, not_kept = self._kept(data[:MAX_RESPONSE])
        ex = CapturedHttpsConfig(start=start, client=client, server=server, order=order, name=asked[1],
                                 mac=mac, tls=plain.description, certificate=kept, why=why, response=response,
                                 close_notify=plain.server_close_notify, too_long=too_long,
                                 not_kept=not_kept)
        if self.admit(ex):
            self.found.append(ex)
        else:
            self.unlisted += 1
            if response is not None and len(self._bytes) > answers:  # its answer new: not held either (was:
                del self._bytes[response]  # held to the scan's end, counted nowhere: beyond --max-memory)
                self._held -= len(response)
        return True

    def _kept(self, data: bytes) -> tuple[bytes | None, str]:
        """The one copy of ``data`` kept, or None and why (module rules)."""
        kept = self._bytes.get(data)
        if kept is not None:
            return kept, ""
        if self._held + len(data) > MAX_KEPT_BYTES:
            return None, f"the captured answer is not kept (beyond the {MAX_KEPT_BYTES >> 20} MiB of HTTPS " \
                         "config answers a replay keeps)"
        self._held += len(data)
        self._bytes[data] = data
        return data, ""

    def result(self, presented: tuple[_Shown, ...] = ()) -> HttpsConfigCapture:
        return HttpsConfigCapture(exchanges=tuple(sorted(self.found, key=lambda e: e.order)),
                                  servers=frozenset(self.servers), presented=presented,
                                  unlisted=self.unlisted)


class HttpsConfigReplay:
    """The HTTPS config exchanges of one phone's replayed boots (module rules): :meth:`getter` per boot."""

    def __init__(self, capture: HttpsConfigCapture) -> None:
        self.capture = capture
        self.used: set[int] = set()  # exchanges used (indices)
        self.shown_used: set[int] = set()  # connections without a request used (indices)

    def getter(self, *, mac: str, server: str, window: tuple[float, float],
               span: Callable[[], tuple[float, float]], clients: frozenset[str] = frozenset(),
               served: list[tuple[str, str]] | None = None) -> CapturedHttpsConfigGetter:
        """The ``https_config`` getter of one boot of ``mac`` against ``server`` (its window's ranks,
        ``span()`` the config step's, ``clients`` its addresses no other phone uses; each captured answer
        used is added to ``served`` as ``(name, what)``)."""
        return CapturedHttpsConfigGetter(self, mac=mac, server=server, window=window, span=span,
                                         clients=clients, served=served if served is not None else [])

    def exchange(self, mac: str, window: tuple[float, float]) -> int | None:
        """The first unused exchange of ``mac`` inside ``window``."""
        ranks, indices = self.capture.exchanges_of.get(mac, ([], []))
        lo, hi = bisect.bisect_left(ranks, window[0]), bisect.bisect_left(ranks, window[1])
        return next((i for i in indices[lo:hi] if i not in self.used), None)

    def shown(self, mac: str, server: str, span: tuple[float, float], clients: frozenset[str]) -> int | None:
        """The first unused connection without a request that is the boot's HTTPS config connection (module
        rules, "A server the phone refused")."""
        ranks, indices = self.capture.shown_at.get(host_key(server), ([], []))
        for i in indices[bisect.bisect_left(ranks, span[0]):bisect.bisect_left(ranks, span[1])]:
            c = self.capture.presented[i]
            if i in self.shown_used or (c.mac is not None and c.mac != mac) or \
                    (clients and c.client[0] not in clients):
                continue
            return i
        return None

    def port_on(self, server: str) -> int:
        """The port the boot's request goes to when nothing was captured: 6971, or the one the capture's
        HTTPS config requests went to on ``server`` (the lowest of several)."""
        host = host_key(server)
        return min((p for h, p in self.capture.servers if h == host), default=HTTPS_CONFIG_PORT)


class CapturedHttpsConfigGetter:
    """A replayed boot's :class:`~phoneemu.phone.boot.HttpsConfigGetter` (module rules)."""

    def __init__(self, replay: HttpsConfigReplay, *, mac: str, server: str, window: tuple[float, float],
                 span: Callable[[], tuple[float, float]], clients: frozenset[str],
                 served: list[tuple[str, str]]) -> None:
        self.replay, self.mac, self.server, self.window = replay, mac, server, window
        self.span, self.clients, self.served = span, clients, served

    def _pick(self) -> tuple[str, int] | None:
        """("exchange" or "shown", index) of the boot's connection, first in capture order; None: none."""
        if not self.replay.capture.read:
            return None
        capture = self.replay.capture
        ex = self.replay.exchange(self.mac, self.window)
        shown = None
        if capture.presented:
            shown = self.replay.shown(self.mac, self.server, self.span(), self.clients)
        if ex is None and shown is None:
            return None
        if shown is None or (ex is not None and capture.exchanges[ex].order < capture.presented[shown].order):
            assert ex is not None
            return "exchange", ex
        return "shown", shown

    def _where(self, pick: tuple[str, int] | None) -> str:
        capture = self.replay.capture
        if pick is None:
            return host_port(self.server, self.replay.port_on(self.server))
        what, i = pick
        server = capture.exchanges[i].server if what == "exchange" else capture.presented[i].server
        return host_port(*server)

    @property
    def where(self) -> str:
        """``HOST:PORT`` of the captured connection the request is answered from (module rules)."""
        return self._where(self._pick())

    async def __call__(self, name: str, *, accept_server: Callable[[bytes | None], bool]) -> bytes:
        pick = self._pick()
        where = self._where(pick)
        if pick is None:
            why = NOT_READ if not self.replay.capture.read else NO_EXCHANGE
            raise TransportError(f"{where}: {why}", kind="unreachable", path=name)
        what, i = pick
        if what == "shown":
            self.replay.shown_used.add(i)
            if not accept_server(self.replay.capture.presented[i].certificate):
                self.served.append((name, f"server certificate refused via https {where} (captured)"))
                raise TransportError(f"{where}: {SERVER_REFUSED}", kind="tls", path=name)
            self.served.append((name, f"no request in the capture via https {where}"))
            raise TransportError(f"{where}: {NO_EXCHANGE} (the captured connection to it sent no request: "
                                 "the live phone refused its certificate)", kind="unreachable", path=name)
        self.replay.used.add(i)
        ex = self.replay.capture.exchanges[i]
        try:
            body = await _answer(ex, name, where, accept_server)
        except TransportError as exc:
            self.served.append((name, f"{exc.kind} via https {where} (captured)"))
            raise
        self.served.append((name, f"{len(body)} bytes via https {where} (captured)"))
        return body


async def _answer(ex: CapturedHttpsConfig, name: str, where: str,
                  accept_server: Callable[[bytes | None], bool]) -> bytes:
    """The captured exchange ``ex`` as the live client reads it (module rules)."""
    if ex.certificate is None:
        raise TransportError(f"{where}: the certificate its server presented is not known ({ex.why}): not "
                             "judged", kind="unreachable", path=name)
    if not accept_server(ex.certificate):
        raise TransportError(f"{where}: {SERVER_REFUSED}", kind="tls", path=name)
    url = f"https://{where}/{name}"
    if ex.response is None:
        raise TransportError(f"{url}: {ex.not_kept}", kind="error", path=name)
    if not ex.response:
        raise TransportError(f"{url}: {NO_ANSWER}", kind="unreachable", path=name)
    if ex.too_long:
        raise TransportError(f"{url}: the response goes on past {MAX_RESPONSE} bytes", kind="too-large",
                             path=name)
    reader = asyncio.StreamReader(limit=_MAX_HEAD)
    reader.feed_data(ex.response)
    reader.feed_eof()
    try:
        status, fields, body = await read_response(reader, name, max_size=CONFIG_LIMIT, max_header=_MAX_HEAD)
    except TransportError as exc:
        raise TransportError(f"{url}: {exc.message}", kind=exc.kind, path=name) from exc
    if read_to_close(status, fields) and not ex.close_notify:
        raise TransportError(f"{url}: HTTP {status} body ({len(body)} bytes, no Content-Length, not chunked) "
                             "ended by a TCP close without the TLS close_notify: it may have been cut short, "
                             "not kept (RFC 9112 §9.8)", kind="protocol", path=name)
    if status == 404:
        raise TransportError(f"{url}: HTTP 404, not found", kind="not-found", path=name)
    if status != 200:
        raise TransportError(f"{url}: HTTP {status}, not 200", kind="error", path=name)
    return body
