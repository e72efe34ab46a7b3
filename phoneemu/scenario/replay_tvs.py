"""The TVS exchanges of a capture, decrypted with its TLS key log, for ``phoneemu replay --keylog``.

Rules (spec §E.1 TLS, §E.2 framing, §E.5/§E.6 QUERY and its answer; *our conventions* marked):

* Every TCP connection of the capture whose client stream starts with a TLS handshake record is
  decrypted with :func:`phoneemu.net.tls_decrypt.decrypt_tls` (TLS 1.0-1.3; the client is the SYN's
  sender, else the side that sent the ClientHello). A connection that cannot be decrypted (no key-log
  entry, an unknown suite, a record that does not decrypt) is listed with the reason.
* Decrypted client data that does not frame as TVS messages (HTTPS, CAPF) is not TVS: counted,
  not an error. A phone's HTTPS config request (TCP 6971, spec §H.1) is kept for the replay of its config
  download (:mod:`phoneemu.scenario.replay_https_config`, :attr:`TvsCapture.https`).
  Each request is paired with the next response of the same session id; a request
  without one (the connection was cut) has ``response`` None.
* **Our convention** for the offline TVS of a replayed boot: a phone's QUERY is answered with the
  captured answer to a QUERY *of the same phone (the MAC in the device name, ``SEP<MAC>`` or
  ``CP-<model>-SEP<MAC>``), issuer and serial* (DN compared in any RDN order, ``certs.dn_key``, spec
  §A.7; serial as a number) made inside that question's span (by rank in capture order: a connection's
  rank is that of its first packet, see :mod:`phoneemu.scenario._capture_flows`): from the boot's latest
  own request answered so far to its next one, within its window — from its first request to the phone's
  next boot (:mod:`phoneemu.scenario.replay`, "TVS questions"); each captured exchange used once, in
  capture order.
* **Failover** (spec §E.1: the servers are tried in priority order, the first that answers is used;
  *our convention* for matching a question to its tries): one question of the phone takes the next such
  exchanges in capture order, one per server (a server asked again is the next question's) and at most
  as many as its config has servers (one when it names none), up to the first answered one: the
  answer, whichever server gave it. A captured request without an answer (the connection was cut) is
  that server's failure, and the phone went on to the next. A
  valid answer with a certificate becomes that certificate, its roles and TTL; any other status is
  "not found"; tries that all went unanswered, or no captured exchange at all, are
  "unreachable" — the latter, unless ``--tvs-cert`` is given, which then answers as without a key log.
  Said as the live client says it (:func:`phoneemu.scenario.replay.no_tvs_answer`): ``no TVS server
  answered: HOST:PORT: why; ...``, each server of the phone's config in the order it is tried, with
  ``captured TVS query got no answer`` when its captured QUERY went unanswered, else ``no such TVS query
  of this phone in the capture``; an address the config does not name (a host name in the config, a NAT)
  is named as captured, after them (alone when the config names none of the addresses tried).
* **A TVS server the phone refused** (spec §E.1, §G.3.4 ``tvs-server-untrusted``): a phone that does not find
  the TVS certificate among its ITL TVS records hangs up after the handshake and sends no QUERY. So each
  decrypted TLS connection whose client sent no application data is kept with the certificate its server
  presented (:func:`phoneemu.net.tls_decrypt.presented_certificate`: in clear up to TLS 1.2, from the
  handshake the key log opens in TLS 1.3) — :class:`CapturedCert`; at most ``limit`` of them, beyond that only
  those of the replayed phone (the MAC of a client certificate, else its client addresses) up to twice
  ``limit`` in all; one copy of each distinct certificate, at most :data:`MAX_CERTIFICATES` and
  :data:`MAX_CERTIFICATE_BYTES` (the others counted). *Our convention*: when a boot's window holds no QUERY of
  the phone to answer with, its TVS servers are taken in the order the phone tries them (§E.1), and for each
  the first such connection to that address and port inside the window not used yet — from a client address of
  the boot (one no other phone uses), else from any client when the phone's addresses are shared (a fleet on
  one host), never one whose client certificate names another phone — is judged by the phone's own server
  check (the ``accept_server`` of its TVS exchange, the one the live client runs, through
  :func:`phoneemu.net.tvs_client.judge_server`: the phone's note of a refusal names the server). Every server
  refused that way: no TVS server answered, naming each, as the live client says it (rule
  ``G.3.4-tvs-server-untrusted``); a server without such a connection counts as not reached; one the phone
  accepts would have been asked: its QUERY is not in the capture ("unreachable" as above). A connection
  refused or never answered stays "unreachable". The refusal comes before ``--tvs-cert``: a phone that
  refuses the server never asks it.
* **Refused, then failed over** (spec §E.1; *our convention* for which connection): when a server
  answers the question, each server of the phone's order ahead of it with no QUERY among the question's
  tries has its first connection without a request (as above) from the start of the question's span up
  to the answering connection judged by the phone's own server check: a refusal is noted in the boot's
  timeline as the live boot notes it (``TVS server HOST:PORT certificate is not an ITL TVS record: not
  used (spec E.1)``); the answer stands either way. A server down before TLS left nothing to judge, and
  the live boot notes nothing of it when the next one answers.
* **Refused, then cut** (spec §E.1; *our convention* for which connection): each QUERY connection keeps
  the certificate its server presented (:attr:`CapturedTvs.certificate`, one copy of each distinct
  certificate with those above, within the same caps). When every try of a question went unanswered and
  each try's certificate is known, the phone's check judges the servers in its order: a tried one by
  that certificate (accepted, as the live phone did before sending its QUERY: "captured TVS query got no
  answer"), another by its first connection without a request in the question's span (up to the last
  try when it comes before a tried one); a refusal is noted as the live boot notes it and named
  ``HOST:PORT: TVS certificate not accepted (not the ITL TVS record)`` in the failure, kind ``tls``
  when it is the last one. So a boot whose phone refused A and whose QUERY to B was cut replays as the
  live boot: A refused and noted, TVS unreachable (not "no trusted TVS server": B was accepted). A try
  whose certificate is not known (beyond the caps, TLS 1.3 without its handshake secret): nothing is
  judged, as before.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phoneemu.errors import DecodeError, TransportError
from phoneemu.formats._tlv import printable
from phoneemu.net.capture import PcapPacket, read_pcap
from phoneemu.net.tls_decrypt import KeyLog, decrypt_tls, key_problem, presented_certificate
from phoneemu.net.tls_handshake import client_certificate, device_of_certificate
from phoneemu.net.tvs_client import NO_TVS_ANSWER, SERVER_REFUSED, judge_server, server_order
from phoneemu.phone.https_config import HTTPS_CONFIG_PORT
from phoneemu.protocols import tvs
from phoneemu.scenario._capture_flows import (
    MAX_TLS_STREAM,
    Endpoint,
    FlowScanner,
    Limits,
    host_key,
    reassembly_for,
)
from phoneemu.scenario.replay import CaptureIndex, no_tvs_answer, phone_sink
from phoneemu.scenario.replay_https_config import HttpsConfigCapture, HttpsConfigCollector, unread_warning
from phoneemu.values import host_port
from phoneemu.words import counted

__all__ = ["MAX_CERTIFICATES", "MAX_CERTIFICATE_BYTES", "MAX_LISTED_EXCHANGES", "REFUSED", "CaptureScan",
           "CapturedCert", "CapturedTvs", "ScanWarnings", "TvsCapture", "TvsCollector", "feed_capture",
           "no_tvs", "scan_capture", "tvs_from_packets"]

_MAX_MESSAGES = 64  # TVS requests of one connection taken (phones send one, §E.7)
MAX_LISTED_EXCHANGES = 10_000
"""TVS exchanges (and undecryptable connections) kept of other phones than the replayed one."""
MAX_CERTIFICATES = 1_000
"""Distinct server certificates kept of connections without a request (module rules)."""
MAX_CERTIFICATE_BYTES = 8 << 20
"""Their bytes at most (one may be ~80 KiB: 1,000 would hold ~80 MiB outside --max-memory's account)."""
REFUSED = SERVER_REFUSED
"""What the phone's TVS client says of a server whose certificate it refused (after ``HOST:PORT: ``,
:data:`phoneemu.net.tvs_client.SERVER_REFUSED`)."""
_SEP_MAC = re.compile(r"SEP([0-9A-Fa-f]{12})")
_NO_QUERY = "no such TVS query of this phone in the capture"
_CUT = "captured TVS query got no answer"


def _mac_in(device_name: str) -> str | None:
    m = _SEP_MAC.search(device_name)
    return m.group(1).upper() if m else None


@dataclass(frozen=True, kw_only=True)
class CapturedTvs:
    """One TVS request seen in the capture and the answer it got."""

    start: float
    client: Endpoint
    server: Endpoint
    tls: str
    request: tvs.QueryRequest | tvs.VerifyRequest
    response: tvs.TvsResponse | None
    order: int = 0  # rank of its connection in capture order (module rules)
    #: the certificate its server presented (module rules, "Refused, then cut"); None: not read, or beyond
    #: the certificates' caps
    certificate: bytes | None = None

    @property
    def mac(self) -> str | None:
        """The asking phone's MAC, from the device name (``SEP<MAC>``, ``CP-<model>-SEP<MAC>``)."""
        return _mac_in(self.request.device_name)

    def describe(self) -> str:
        r = self.request
        if isinstance(r, tvs.QueryRequest):
            what = f"QUERY issuer {printable(r.issuer)} serial {r.serial.hex()}"
        else:
            what = f"VERIFY certificate of {len(r.certificate)} bytes"
        if self.response is None:
            answer = "no answer (connection cut)"
        elif self.response.valid:
            answer = f"valid, roles {list(self.response.roles)}, TTL {self.response.ttl}"
        else:
            code = self.response.status
            name = tvs.TvsStatus(code).name if code in tvs.TvsStatus._value2member_map_ else "unknown"
            answer = f"status {code} ({name})"
        # the captured device name and issuer with their control characters escaped (printed as is)
        server = host_port(self.server[0], self.server[1])
        return (f"tvs {server} {printable(r.device_name)}: {what} -> {answer} "
                f"({self.tls})")


@dataclass(frozen=True, kw_only=True, slots=True)
class CapturedCert:
    """A TLS connection whose client sent nothing after the handshake, and the certificate its server
    presented (module rules, "A TVS server the phone refused")."""

    start: float
    client: Endpoint
    server: Endpoint
    certificate: bytes
    order: int = 0  # rank of the connection in capture order
    mac: str | None = None  # the phone its client certificate names (mutual TLS), if any


@dataclass(frozen=True, kw_only=True)
class TvsCapture:
    """What the key log opened: the TVS exchanges, and the TLS connections it could not."""

    exchanges: tuple[CapturedTvs, ...]
    tls_connections: int
    not_tvs: int
    problems: tuple[str, ...]
    unlisted: int = 0  # exchanges decrypted but not kept (other phones', beyond MAX_LISTED_EXCHANGES)
    unlisted_problems: int = 0
    #: connections without a request and the certificate each server presented (module rules)
    presented: tuple[CapturedCert, ...] = ()
    unlisted_presented: int = 0
    #: the HTTPS config downloads (:mod:`phoneemu.scenario.replay_https_config`)
    https: HttpsConfigCapture = dataclasses.field(default_factory=HttpsConfigCapture)

    @property
    def decrypted(self) -> int:
        """TVS exchanges decrypted, kept or not."""
        return len(self.exchanges) + self.unlisted

    @functools.cached_property
    def _queries_of(self) -> dict[str | None, tuple[list[int], list[int]]]:
        """The QUERY exchanges of each phone (by the MAC in the device name), in capture order (the rank
        of their connection: a cut one is listed when its connection ends, maybe after a later one): their
        ranks and their indices."""
        out: dict[str | None, tuple[list[int], list[int]]] = {}
        for i in sorted(range(len(self.exchanges)), key=lambda i: self.exchanges[i].order):
            ex = self.exchanges[i]
            if isinstance(ex.request, tvs.QueryRequest):
                ranks, indices = out.setdefault(_mac_in(ex.request.device_name), ([], []))
                ranks.append(ex.order)
                indices.append(i)
        return out

    @functools.cached_property
    def _presented_at(self) -> dict[tuple[str, int], tuple[list[int], list[int]]]:
        """Per server address and port: the ranks of :attr:`presented` there and their indices, in
        capture order."""
        out: dict[tuple[str, int], tuple[list[int], list[int]]] = {}
        for i in sorted(range(len(self.presented)), key=lambda i: self.presented[i].order):
            c = self.presented[i]
            ranks, indices = out.setdefault((host_key(c.server[0]), c.server[1]), ([], []))
            ranks.append(c.order)
            indices.append(i)
        return out

    def _questions(self, mac: str | None, issuer: tuple[str, ...], serial: int, window: tuple[float, float],
                   used: set[int]) -> list[int]:
        """The QUERY exchanges of ``mac`` about ``issuer`` (its ``certs.dn_key``: a QUERY naming it in any
        RDN order, as the lab TVS compares it, spec §A.7, §B.4) and ``serial`` in ``window``, not in
        ``used``, in capture order; only those in ``window`` are looked at (a capture of many boots of one
        phone, each asking TVS, is not read again at each question)."""
        from phoneemu.crypto.certs import dn_key

        ranks, indices = self._queries_of.get(mac, ([], []))
        out = []
        for i in indices[bisect.bisect_left(ranks, window[0]):bisect.bisect_left(ranks, window[1])]:
            r = self.exchanges[i].request
            assert isinstance(r, tvs.QueryRequest)
            if i not in used and dn_key(r.issuer) == issuer and \
                    int.from_bytes(r.serial, "big") == serial:
                out.append(i)
        return out

    def _tries(self, order: Sequence[tuple[str, int]], candidates: Sequence[int]) -> list[int]:
        """The exchanges of one question among ``candidates`` (module rules, "Failover", spec §E.1): in
        capture order, one per server (a server again is the next question's), at most ``len(order)``
        (one when empty), up to the first answered one."""
        tries: list[int] = []
        servers: set[tuple[str, int]] = set()
        for i in candidates[:max(1, len(order))]:
            ex = self.exchanges[i]
            server = (host_key(ex.server[0]), ex.server[1])
            if server in servers:
                break
            servers.add(server)
            tries.append(i)
            if ex.response is not None:
                break
        return tries

    def _unanswered(self, order: Sequence[tuple[str, int]], tries: Sequence[int]) -> TransportError:
        """The live client's failure when every try of a question went unanswered (module rules): each
        server of ``order`` in turn, then each captured address it does not name."""
        captured = {(host_key(h), p): (h, p) for h, p in (self.exchanges[i].server for i in tries)}
        configured = {(host_key(h), p) for h, p in order}
        failures = [f"{host_port(h, p)}: {_CUT if (host_key(h), p) in captured else _NO_QUERY}"
                    for h, p in order] if configured & captured.keys() else []
        failures += [f"{host_port(h, p)}: {_CUT}" for k, (h, p) in captured.items() if k not in configured]
        return TransportError(NO_TVS_ANSWER + "; ".join(failures), kind="unreachable")

    def _shown(self, host: str, port: int, *, mac: str | None, window: tuple[float, float],
               clients: frozenset[str], used: set[int]) -> CapturedCert | None:
        """The first connection to ``host:port`` in ``window`` the phone may have made (module rules),
        not in ``used`` (then added to it); ``clients``: the boot's own addresses (empty: any)."""
        ranks, indices = self._presented_at.get((host_key(host), port), ([], []))
        for i in indices[bisect.bisect_left(ranks, window[0]):bisect.bisect_left(ranks, window[1])]:
            c = self.presented[i]
            if i in used or (c.mac is not None and c.mac != mac) or (clients and c.client[0] not in clients):
                continue
            used.add(i)
            return c
        return None

    def _refused(self, servers: Any, *, mac: str | None, window: tuple[float, float], clients: frozenset[str],
                 used: set[int], accept_server: Callable[[bytes | None], bool]) -> TransportError | None:
        """§E.1 on the certificates the phone's TVS servers presented in the window (module rules): the
        error of the live client when it refused every one it reached, else None."""
        failures: list[str] = []
        refused = False
        for host, port in server_order(servers):
            c = self._shown(host, port, mac=mac, window=window, clients=clients, used=used)
            if c is None:
                failures.append(f"{host_port(host, port)}: no connection to it in the capture")
                continue
            if judge_server(accept_server, host, port, c.certificate):  # the refusal's note names it
                return None  # the phone would have asked this one: its QUERY is not in the capture
            refused = True
            failures.append(f"{host_port(host, port)}: {REFUSED}")
        if not refused:
            return None
        last = "tls" if failures[-1].endswith(REFUSED) else "unreachable"
        return TransportError(NO_TVS_ANSWER + "; ".join(failures), kind=last)

    def _passed_over(self, order: Sequence[tuple[str, int]], tries: Sequence[int], *, mac: str | None,
                     start: float, clients: frozenset[str], used: set[int],
                     accept_server: Callable[[bytes | None], bool]) -> None:
        """§E.1 on the servers the phone tried before the one that answered (module rules, "Refused, then
        failed over"): each server of ``order`` ahead of the answering one without a QUERY among ``tries``
        has its first connection without a request from ``start`` up to the answer judged by the phone's
        check, whose note of a refusal names it as the live boot's does."""
        answered = self.exchanges[tries[-1]]
        asked = {(host_key(h), p) for h, p in (self.exchanges[i].server for i in tries)}
        keys = [(host_key(h), p) for h, p in order]
        last = (host_key(answered.server[0]), answered.server[1])
        ahead = order[:keys.index(last)] if last in keys else order
        for host, port in ahead:
            if (host_key(host), port) in asked:
                continue
            c = self._shown(host, port, mac=mac, window=(start, answered.order), clients=clients, used=used)
            if c is not None:
                judge_server(accept_server, host, port, c.certificate)

    def _judged_unanswered(self, order: Sequence[tuple[str, int]], tries: Sequence[int], *, mac: str | None,
                           span: tuple[float, float], clients: frozenset[str], used: set[int],
                           accept_server: Callable[[bytes | None], bool]) -> TransportError:
        """§E.1 when every try of a question went unanswered and each try's certificate is known (module
        rules, "Refused, then cut"): the servers judged by the phone's check in its order — a tried one by
        the certificate its QUERY connection presented, another by its first connection without a
        request in ``span`` (up to the last try when it comes before a tried one) — and the live client's
        failure naming each (a refused one as refused)."""
        tried = {(host_key(h), p): i for i in tries for h, p in [self.exchanges[i].server]}
        keys = [(host_key(h), p) for h, p in order]
        named = list(order) if tried.keys() & set(keys) else []  # as _unanswered names them
        named += [self.exchanges[i].server for k, i in tried.items() if k not in keys]
        ahead = max((n for n, k in enumerate(keys) if k in tried), default=-1)  # the last tried, in order
        failures: list[str] = []
        done: set[tuple[str, int]] = set()
        for n, (host, port) in enumerate(named):
            key = (host_key(host), port)
            if key in done:
                continue
            done.add(key)
            if key in tried:
                accepted = judge_server(accept_server, host, port, self.exchanges[tried[key]].certificate)
                failures.append(f"{host_port(host, port)}: {_CUT if accepted else REFUSED}")
                continue
            until = self.exchanges[tries[-1]].order if n < ahead else span[1]
            c = self._shown(host, port, mac=mac, window=(span[0], until), clients=clients, used=used)
            refused = c is not None and not judge_server(accept_server, host, port, c.certificate)
            failures.append(f"{host_port(host, port)}: {REFUSED if refused else _NO_QUERY}")
        last = "tls" if failures[-1].endswith(REFUSED) else "unreachable"
        return TransportError(NO_TVS_ANSWER + "; ".join(failures), kind=last)

    def asker(self, window: Callable[[], tuple[float, float]], fallback: Any = None,
              clients: Callable[[], frozenset[str]] | None = None) -> Any:
        """A :class:`~phoneemu.phone.boot.TvsAsker` answering from the capture (module rules);
        ``window()`` gives the current boot's ``(start, stop)`` ranks in capture order, ``clients()``
        its client addresses no other phone uses (empty, or no ``clients``: any client's connection)."""
        from phoneemu.crypto.certs import dn_key
        from phoneemu.phone.store import TvsAnswer, TvsStatus

        used: set[int] = set()
        shown: set[int] = set()  # presented connections used

        async def ask(servers: Any, key: Any, *, device_name: str, **kw: Any) -> Any:
            start, stop = window()
            mac = _mac_in(device_name)
            order = server_order(servers)
            issuer, serial = dn_key(key.issuer), int.from_bytes(key.serial, "big")
            tries = self._tries(order, self._questions(mac, issuer, serial, (start, stop), used))
            used.update(tries)
            resp = self.exchanges[tries[-1]].response if tries else None
            check = kw.get("accept_server")
            if resp is not None:  # the first server that answered (§E.1 failover)
                if check is not None and self.presented:  # the servers refused before it, noted
                    self._passed_over(order, tries, mac=mac, start=start, used=shown, accept_server=check,
                                      clients=clients() if clients is not None else frozenset())
                if resp.valid and resp.certificate:
                    return TvsAnswer.from_reply(resp.certificate, resp.roles, resp.ttl)
                return TvsStatus.NOT_FOUND
            if tries:  # every server tried went unanswered, each named
                if check is not None and all(self.exchanges[i].certificate is not None for i in tries):
                    raise self._judged_unanswered(order, tries, mac=mac, span=(start, stop), used=shown,
                                                  accept_server=check,
                                                  clients=clients() if clients is not None else frozenset())
                raise self._unanswered(order, tries)
            if check is not None and self.presented:
                refused = self._refused(servers, mac=mac, window=(start, stop), used=shown,
                                        accept_server=check,
                                        clients=clients() if clients is not None else frozenset())
                if refused is not None:
                    raise refused
            if fallback is not None:
                return await fallback(servers, key, device_name=device_name, **kw)
            raise no_tvs_answer(servers, _NO_QUERY, kind="unreachable")
        return ask


def _messages(data: bytes) -> list[tvs.TvsMessage]:
    decoder = tvs.FrameDecoder()
    msgs = decoder.feed(data)
    if decoder.error is not None:
        raise decoder.error
    return msgs[:_MAX_MESSAGES]


def _pair(requests: Sequence[tvs.TvsMessage], responses: Sequence[tvs.TvsMessage]
          ) -> list[tuple[tvs.QueryRequest | tvs.VerifyRequest, tvs.TvsResponse | None]]:
    left = list(responses)
    out: list[tuple[tvs.QueryRequest | tvs.VerifyRequest, tvs.TvsResponse | None]] = []
    for msg in requests:
        request = tvs.parse_request(msg)
        match = next((m for m in left if m.session_id == msg.session_id), None)
        if match is not None:
            left.remove(match)
        out.append((request, tvs.TvsResponse.from_message(match) if match is not None else None))
    return out


class TvsCollector:
    """A :class:`~phoneemu.scenario._capture_flows.TlsSink` decrypting each TLS connection as it ends
    and keeping its TVS exchanges: all of them up to ``limit``, beyond that only those of ``mac``
    (the others are counted in :attr:`TvsCapture.unlisted`); and each connection whose client sent
    nothing, with the certificate its server presented (module rules; beyond ``limit`` those of
    ``mac`` or from ``addresses``, the phone's client addresses as the scan learns them)."""

    def __init__(self, secrets: KeyLog | dict[bytes, bytes], *, mac: str | None = None,
                 limit: int = MAX_LISTED_EXCHANGES, addresses: Collection[str] = ()) -> None:
        self.secrets, self.mac, self.limit = secrets, mac, limit
        self.addresses = addresses  # the replayed phone's client addresses, as the scan learns them
        self.found: list[CapturedTvs] = []
        self.problems: list[str] = []
        self.not_tvs = 0
        self.unlisted = 0
        self.unlisted_problems = 0
        self.presented: list[CapturedCert] = []
        self.unlisted_presented = 0
        self._certificates: dict[bytes, bytes] = {}
        self._certificate_bytes = 0
        #: the HTTPS config requests (TCP 6971, spec §H.1), their certificates kept with the others
        self.https = HttpsConfigCollector(mac=mac, limit=limit, certificate=self._kept)

    def early_problem(self, client_start: bytes, server_start: bytes) -> str | None:
        verdict = key_problem(client_start, server_start, self.secrets)
        if isinstance(verdict, DecodeError):
            return str(verdict)
        return "" if verdict else None

    def connection(self, *, client: Endpoint, server: Endpoint, start: float, order: int,
                   client_stream: bytes | None, server_stream: bytes | None, problem: str) -> None:
        where = f"{host_port(client[0], client[1])} -> {host_port(server[0], server[1])}"
        if client_stream is None or server_stream is None:
            self._problem(f"{where}: {problem}")
            return
        try:
            plain = decrypt_tls(client_stream, server_stream, self.secrets)
        except DecodeError as exc:
            self._problem(f"{where}: {exc}")
            return
        if self.https.connection(client=client, server=server, start=start, order=order, plain=plain,
                                 client_stream=client_stream, server_stream=server_stream,
                                 secrets=self.secrets):
            self.not_tvs += 1  # HTTPS: the config download of spec §H.1
            return
        try:
            pairs = _pair(_messages(plain.client_data), _messages(plain.server_data))
        except DecodeError:
            self.not_tvs += 1  # HTTPS, CAPF or anything else over TLS
            return
        if not pairs:
            self.not_tvs += 1
            if not plain.client_data:  # the client hung up after the handshake (module rules)
                self._presented(client, server, start=start, order=order, client_stream=client_stream,
                                server_stream=server_stream)
        shown: list[bytes | None] = []  # the server's certificate, read once for the connection's exchanges
        for req, resp in pairs:
            if len(self.found) >= self.limit and (self.mac is None or _mac_in(req.device_name) != self.mac):
                self.unlisted += 1
                continue
            if not shown:
                shown.append(self._kept(presented_certificate(client_stream, server_stream, self.secrets)[0]))
            self.found.append(CapturedTvs(start=start, client=client, server=server, tls=plain.description,
                                          request=req, response=resp, order=order, certificate=shown[0]))

    def _presented(self, client: Endpoint, server: Endpoint, *, start: float, order: int,
                   client_stream: bytes, server_stream: bytes) -> None:
        cert, _why = presented_certificate(client_stream, server_stream, self.secrets)
        if cert is None:
            return
        mac = device_of_certificate(client_certificate(client_stream))
        mine = (mac is not None and mac == self.mac) or client[0] in self.addresses
        kept = None
        if (len(self.presented) < self.limit or mine) and len(self.presented) < 2 * self.limit:
            kept = self._kept(cert)
        if kept is None:
            self.unlisted_presented += 1
            return
        self.presented.append(CapturedCert(start=start, client=client, server=server, certificate=kept,
                                           order=order, mac=mac))

    def _kept(self, cert: bytes | None) -> bytes | None:
        """The one copy of ``cert`` kept for every connection that presented it; None beyond
        :data:`MAX_CERTIFICATES` distinct certificates or :data:`MAX_CERTIFICATE_BYTES` (module rules)."""
        if cert is None:
            return None
        kept = self._certificates.get(cert)
        if kept is None:
            if len(self._certificates) >= MAX_CERTIFICATES or \
                    self._certificate_bytes + len(cert) > MAX_CERTIFICATE_BYTES:
                return None
            kept = self._certificates[cert] = cert
            self._certificate_bytes += len(cert)
        return kept

    def _problem(self, text: str) -> None:
        if len(self.problems) < self.limit:
            self.problems.append(text)
        else:
            self.unlisted_problems += 1

    def result(self, tls_connections: int) -> TvsCapture:
        presented = tuple(self.presented)
        return TvsCapture(exchanges=tuple(self.found), tls_connections=tls_connections, not_tvs=self.not_tvs,
                          problems=tuple(self.problems), unlisted=self.unlisted,
                          unlisted_problems=self.unlisted_problems, presented=presented,
                          unlisted_presented=self.unlisted_presented, https=self.https.result(presented))


def tvs_from_packets(packets: Iterable[PcapPacket], secrets: KeyLog | dict[bytes, bytes],
                     *, max_stream: int = MAX_TLS_STREAM) -> TvsCapture:
    """Decrypt the TLS connections of ``packets`` and collect their TVS exchanges (module rules);
    ``max_stream``: bytes kept per direction of a connection. The file requests are read too (listed,
    no bytes kept), so that the connections' ranks are those an index of the same packets gives
    (:func:`phoneemu.scenario.replay.index_packets`: a TVS question is matched by rank)."""
    collector = TvsCollector(secrets)
    scanner = FlowScanner(phone_sink(None), tls=collector, limits=Limits(max_tls_stream=max_stream))
    for pkt in packets:
        scanner.feed(pkt)
    scanner.close()
    return collector.result(scanner.tls_connections)


@dataclass(frozen=True, kw_only=True)
class CaptureScan:
    """What one pass over a capture kept: the downloads, the TVS exchanges (with a key log) and the
    warnings of caps that were hit."""

    index: CaptureIndex
    tvs: TvsCapture
    warnings: tuple[str, ...]
    #: the SIP connections (:mod:`phoneemu.scenario.replay_sip`; a replay of one phone only)
    sip: tuple[Any, ...] = ()


MAX_WARNINGS = 100


class ScanWarnings:
    """A capture scan's warnings (``warn(text)``): the first :data:`MAX_WARNINGS` kept, the rest counted;
    a capture that ends inside a packet (``cut_short``) says so first — it is why the end is missing."""

    def __init__(self) -> None:
        self._kept: list[str] = []
        self._dropped = 0
        self._cut: list[str] = []

    def __call__(self, text: str) -> None:
        if len(self._kept) < MAX_WARNINGS:
            self._kept.append(text)
        else:
            self._dropped += 1

    def cut_short(self, exc: DecodeError) -> None:
        self._cut.append(f"{exc}: the capture ends inside this packet (tcpdump stopped, disk full?); "
                         "the packets before it are read")

    def lines(self) -> list[str]:
        more = [f"... and {counted(self._dropped, 'more warning')}"] if self._dropped else []
        return [*self._cut, *self._kept, *more]


def feed_capture(path: str | Path, scanner: FlowScanner, warnings: ScanWarnings, *,
                 progress: Callable[[int], None] | None = None, every: int = 4096) -> None:
    """Read ``path`` packet by packet into ``scanner`` and close it (DecodeError naming the offset for
    a malformed capture; one cut inside a packet is a warning); ``progress(offset)`` every ``every``
    packets."""
    frags = reassembly_for(scanner.limits, warnings)  # counted in the overall budget (_capture_flows)
    scanner.outside = lambda: frags.reserved
    for n, pkt in enumerate(read_pcap(path, cut_short=warnings.cut_short, note=warnings, reassembly=frags)):
        scanner.feed(pkt)
        if progress is not None and not n % every:
            progress(pkt.offset)
    scanner.close()


def no_tvs(scanner: FlowScanner) -> TvsCapture:
    """What a scan without a key log knows of TLS: how many connections it saw (and how many to TCP 6971,
    the HTTPS config download it cannot read, :mod:`phoneemu.scenario.replay_https_config`)."""
    unread = scanner.tls_ports.get(HTTPS_CONFIG_PORT, 0)
    return TvsCapture(exchanges=(), tls_connections=scanner.tls_connections, not_tvs=0, problems=(),
                      https=HttpsConfigCapture(read=False, unread=unread))


def scan_capture(path: str | Path, *, mac: str | None = None, secrets: KeyLog | None = None,
                 limits: Limits | None = None) -> CaptureScan:
    """Read a capture once, packet by packet, keeping what the replay of ``mac`` needs (None: the
    listing of every phone, without file contents); with ``secrets`` the TLS connections are decrypted
    as they end; with ``mac`` the SIP connections are kept too (:mod:`phoneemu.scenario.replay_sip`).
    Memory stays bounded (:mod:`phoneemu.scenario._capture_flows`); malformed input raises
    DecodeError naming the offset."""
    from phoneemu.scenario.replay_sip import SipCollector

    warnings = ScanWarnings()
    sink = phone_sink(mac)
    addresses: Collection[str] = getattr(sink, "addresses", ())  # the phone's, as the scan learns them
    collector = TvsCollector(secrets, mac=mac, addresses=addresses) if secrets is not None else None
    sips = SipCollector(secrets) if mac is not None else None
    scanner = FlowScanner(sink, tls=collector, limits=limits, warn=warnings, sip=sips, media=sips)
    feed_capture(path, scanner, warnings)
    if sips is not None:
        sips.finish()
    tvs = collector.result(scanner.tls_connections) if collector is not None else no_tvs(scanner)
    if tvs.https.unread:
        warnings(unread_warning(tvs.https.unread))
    index = sink.index(scanner, warnings.lines())
    return CaptureScan(index=index, tvs=tvs, warnings=index.warnings,
                       sip=tuple(sips.found) if sips is not None else ())
