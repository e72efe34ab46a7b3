"""Every lab service in one asyncio loop: TFTP, HTTP 6970, TVS 2445, CAPF 3804, HTTPS 6971 (spec §H.1, §H.6).

Rules:

* One :class:`LabServers` per cluster. ``start()`` first reads the lab whole (state and served files of
  one save, under the lab lock: :meth:`LabCluster.read_whole`, an operation under way waited for like
  the port record below), then binds every service (port 0 = ephemeral), then
  records the real ports in the cluster state (:meth:`LabCluster.set_ports`), which rebuilds the
  files so the device configs name them (TVS and CAPF servers in ``SEP<MAC>.cnf.xml``, spec §H.5).
  That write (and every other the servers make of their own, :meth:`update_cluster`) holds the lab
  lock exclusively on the state as saved (:meth:`LabCluster.update_locked`): while a ``phoneemu lab``
  operation holds the lock it waits (trying every :data:`LOCK_POLL_S`, the loop not blocked; logged
  once after :data:`LOCK_WAIT_S`), then re-reads what the operation saved and records the ports in
  it — neither write is lost.
  After :meth:`LabServers.request_stop` (``lab serve``'s SIGINT/SIGTERM, noted even during a write)
  no write of the servers' own begins: the one under way finishes, then :meth:`LabServers.stop`.
  The other writes the servers make go the same way: the HTTPS identity ``tomcat`` made on first use
  (:meth:`LabCluster.app_server_identity`, when ``https`` starts) waits like the ports; a CAPF outcome
  (LSC recorded, pending operation cleared, :mod:`.capf_service`) waits at most ``capf_lock_wait``
  seconds, then the phone is told the operation failed and nothing is written. TFTP, HTTP and TVS only
  read the lab (a reload that finds ``DIR/tftp`` gone rebuilds those files from the saved state, under
  the shared lock: derived files, each written atomically, the state untouched).
* TFTP and HTTP serve the cluster's in-memory files (:meth:`LabCluster.get`, per-device trust-list
  names included); TVS answers from :meth:`LabCluster.tvs_lookup` (:mod:`.tvs_service`); CAPF runs the
  pending operation of the device (:mod:`.capf_service`).
* TVS and CAPF present the cluster's *current* TVS/CAPF identity: the certificate is looked up at
  every handshake (an SNI callback swaps in a context built for the current identity), so a
  ``regenerate tvs`` takes effect on the next connection, as with CUCM's ``restart TVS``.
* ``stop_service(name)`` / ``start_service(name)`` stop one service and bring it back on the same port
  (a TVS outage, spec §E.7.6). With ``watch`` (``lab serve``) the cluster's ``stopped`` list (``phoneemu
  lab service DIR tvs stop|start``, another process) is followed the same way (:meth:`sync_stopped`):
  at start and within the watch interval; a service that cannot start again (another program took
  its port meanwhile) stays stopped, is logged once and tried again at every interval.
  A reload reads the lab under its lock (``DIR/.lab.lock``, :mod:`phoneemu.lab.lock`), never while a
  ``phoneemu lab`` operation is writing it: the periodic one waits up to :data:`LOCK_WAIT_S` (trying
  every :data:`LOCK_POLL_S`, the loop serving meanwhile), then skips this reload (logged) and tries
  again at the next poll; a per-request one does not wait (the request gets the state already loaded).
  ``on_notice(text)`` is told what an operator watching ``lab serve`` wants to see happen:
  each reload that found a change (``picked up a change to the lab: generation 4; ITL md5 ...  sha1 ...; ITL
  signed by ...``, from whichever thread served the request that noticed it) and each node's TVS
  started or stopped by ``add-node`` / ``remove-node`` (``tvs-2 listening on tls 127.0.0.1:40123``), and
  each service ``phoneemu lab service`` takes down or brings back, and, at start, ports other than the
  lab recorded (every served file is rebuilt: configs name them) (without ``on_notice``: logged).
  ``set_network(loss, delay_s, seed)`` degrades TFTP and HTTP replies: TFTP drops each datagram with
  probability ``loss`` and delays each sent one by ``delay_s`` (the TFTP server's hooks); HTTP —
  **our convention**, TCP does not lose packets visibly — waits ``delay_s`` before each response and,
  with probability ``loss``, drops the connection without one. Each drop is a pure function of the
  ``seed`` and what is dropped (**our convention**, :func:`~phoneemu.net.tftp_server.is_lost`), never of
  the order phones reach the lab: TFTP's as its server's module docstring says (file name, RRQ copy,
  block, the k-th sending); HTTP's of the file name and the n-th request for it on its connection. Same
  seed, same phones lose the same packets, however phones booting together interleave.
  ``tftp_timeout_s`` / ``tftp_retries`` set the TFTP server's own retransmission timing (a lost DATA is
  sent again only when the server's timer runs out: a duplicate ACK is ignored, RFC 1123 §4.2.3.1);
  None keeps the server's default (1 s, 5 retries).
  ``fail`` (file names, ``*``/``?`` patterns) makes every download of those files fail — a TFTP
  failure of one file (spec §G.3.5 "network or TFTP failure"): HTTP answers 500 (no fallback to
  TFTP), TFTP answers ERROR 0; the phone shows "TFTP error" (§H.3). Our convention.
  ``tamper_media`` flips one payload byte of every packet the media resources play (an attacker on the
  path, :mod:`.media_service`): SRTP phones drop them, RTP phones cannot tell.
  ``tamper_signalling`` / ``replay_sip`` put an attacker on the path of the SIP line (:mod:`.on_path`,
  ours): over TCP it rewrites a call's SDP and relays its media / replays REGISTERs; over TLS it can only
  alter records, which the phone then refuses.
* Every node runs TVS (seed "Default Security Overview"): ``tvs`` is node 1's, ``tvs-2`` ... ``tvs-8``
  those of the other nodes, each presenting its node's TVS identity and answering from the same
  cluster knowledge; their ports are recorded in the cluster as ``tvs-N`` so device configs list them
  in node (priority) order and phones fail over (spec §E.7.5). :meth:`sync_nodes` starts/stops them
  after the cluster gains or loses a node (``add-node`` / ``remove-node``).
* ``directory`` is the same directory service over plain HTTP (on demand, ``start_service("directory")``):
  what a phone whose config names an http:// secure directory URL opens (``secure-urls http``).
* ``https`` is the HTTPS application server ("directory service", :mod:`.https_service`) presenting
  the cluster's ``tomcat`` identity, which TVS vouches for (spec §E.7.1). It starts with the others
  only when ``app_https=True``; otherwise ``start_service("https")`` starts it on demand (port 0
  the first time). Its port is in ``ports`` but not in the cluster state (configs do not name it).
* ``https-config`` is the HTTPS configuration download (TCP 6971, spec §H.1, :mod:`.https_config_service`):
  started with the others for a lab with the ``tftp-https`` identity (``lab init --https-key``; a lab
  without it has no such service), presenting that identity — the ITL's EC record with the TFTP role
  (§G.5), the current one at each handshake like TVS's — over TLS 1.2 or 1.3. ``GET
  /SEP<MAC>.cnf.xml.sgn`` gets the unsigned ``SEP<MAC>.cnf.xml`` the lab serves (the stub for an encrypted
  config: ours), read as TFTP and HTTP read it (``fail`` patterns: 500). Its port is recorded in the
  cluster (``https-config``; no config names it).
* ``sip`` (TCP) and ``sips`` (TLS, presenting node 1's CallManager certificate, the CTL's CCM+TFTP
  record) are the SIP registrar (:mod:`.sip_service`, digest authentication, spec §G.13), started on
  demand like ``https`` (``start_service("sip")``). Started with the others (``sip_ports``, lab serve
  ``--sip-port`` / ``--sips-port``) their ports are recorded: configs name them in ``devicePool``
  (spec §H.5), where a phone told to register without an address finds its CallManager; started on
  demand they are not (a scenario's ``sip`` step gives the phone the registrar's address); a
  registered phone's ITL report is kept in ``registrations`` and, with ``watch`` (lab serve), written to
  ``DIR/registrations.json`` for ``lab show`` (:mod:`.registrations`). A call between two phones is
  routed by the dial plan the cluster holds (each phone's partition and calling search space, seed
  "Authorization", :mod:`.dial_plan`), read at each call: with ``watch`` the change an operation saved.
* ``requests`` records what was asked and how it ended (service, peer, name, outcome), bounded to
  the last ``max_log`` entries; with ``keep_requests=False`` (``lab serve``, which never reads it) none
  is kept — the log lines are unchanged — and ``requests`` stays empty (100,000 entries are ~30 MB).
  ``clock`` (Unix seconds, the scenario clock) dates the cluster operations the servers trigger (port
  record, LSC issue/record).
* Descriptors (ours): one process serves every service, so each has a share of the open-file limit
  (:func:`phoneemu.net.tftp_server.transfer_socket_budget`): TFTP transfers half, HTTP connections a
  quarter (their servers' own bounds), node 1's TVS :data:`TVS_SHARE`, each other node's TVS
  :data:`NODE_TVS_SHARE` (a full TVS stops accepting: the listen queue holds the rest, and a connection
  waiting there makes room by closing the oldest one silent past its grace, :mod:`phoneemu.lab.tvs_loop`),
  and every TLS or TCP listener besides (CAPF, the registrars, both HTTPS, the directory, an ``asyncio`` TVS)
  together :data:`TLS_SHARE`, at least :data:`TLS_FLOOR` where a quarter of the limit allows (one
  :class:`phoneemu.net.tls.ConnectionBudget`; one more connection is closed at once, logged — or, the
  budget full, takes the place of the one silent longest yet to ask of any of these servers, the address
  holding the most such over all of them first: :mod:`phoneemu.net._room`). A flood
  of connections that never finish their handshake on one port so cannot take the descriptors the
  other services need (before: TVS and CAPF took up to 1,024 each whatever the
  limit, and at the common soft limit of 1,024 one TVS flood left HTTP unable to accept and TFTP
  answering "server busy").
* ``keylog`` appends NSS key-log lines for TVS/CAPF (Wireshark); ``capture`` (a
  :class:`phoneemu.net.capture.PcapWriter` or any ``UdpSink``) sees every TFTP datagram. TLS
  traffic is not re-synthesised into the pcap: use the key log with a real capture. A capture with a
  ``listening(protocol, host, port)`` method (a scenario's, :mod:`phoneemu.scenario.capturing`) is told
  each service's protocol, address and port as soon as it listens (every start, restart and node).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fnmatch
import ipaddress
import logging
import os
import socket
import ssl
import struct
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509

from phoneemu.errors import PhoneEmuError, TransportError
from phoneemu.formats._tlv import printable
from phoneemu.lab.call_relay import CallRelay
from phoneemu.lab.capf_service import CAPF_LOCK_WAIT_S, CapfHandler, CapfSessionLog
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.dial_plan import DialPlan
from phoneemu.lab.https_config_service import CONTENT_TYPE, HttpsConfigFiles
from phoneemu.lab.https_service import PLAIN_DIRECTORY_XML, HttpsAppHandler
from phoneemu.lab.lock import LOCK_FILE, LOCK_POLL_S, LOCK_WAIT_S, LabBusyError, when_lab_lock_free
from phoneemu.lab.media_service import MediaResources
from phoneemu.lab.on_path import SignallingAttacker
from phoneemu.lab.pki import Identity
from phoneemu.lab.registrations import REGISTRATIONS_FILE, read_registrations, write_registrations
from phoneemu.lab.sip_service import SipRegistrar
from phoneemu.lab.state import DEFAULT_PORTS, HTTPS_CONFIG_PORT, node_registrars
from phoneemu.lab.tvs_loop import DEFAULT_MAX_CONNECTIONS, LoopTvsServer
from phoneemu.lab.tvs_service import TvsConnectionLog, TvsHandler
from phoneemu.lab.tvs_threaded import ThreadedTvsServer
from phoneemu.net.capture import UdpSink
from phoneemu.net.http import HttpServer
from phoneemu.net.tftp import DEFAULT_RETRIES, DEFAULT_TIMEOUT, TftpRequestEvent, TftpServer
from phoneemu.net.tftp_server import is_lost, loss_key, transfer_socket_budget
from phoneemu.net.tls import (
    CUCM_SIP_LINE_CIPHERS,
    CUCM_TVS_CIPHERS,
    ConnectionBudget,
    TlsServer,
    server_context,
)
from phoneemu.protocols.capf import MAX_IN_PROGRESS
from phoneemu.protocols.sip import SIP_PORT, SIPS_PORT
from phoneemu.values import host_port

__all__ = ["NODE_TVS_SHARE", "SERVICES", "TLS_FLOOR", "TLS_SHARE", "TVS_SHARE", "LabServers", "RequestLog",
           "port_holder", "tls_connections"]

_log = logging.getLogger("phoneemu.lab.servers")
_T = TypeVar("_T")

SERVICES = ("tftp", "http", "tvs", "capf", "https-config", "https", "directory", "sip", "sips")
#: the services a lab has only with its ``tftp-https`` identity (``lab init --https-key``), by name
_HTTPS_KEY_SERVICES = frozenset({"https-config"})
#: the registrar's ports a lab's configs name before ``lab serve --sip-port`` / ``--sips-port`` recorded any
_SIP_DEFAULTS = {"sip": SIP_PORT, "sips": SIPS_PORT}
#: shares of the open-file limit (module docstring "Descriptors"): node 1's TVS, each other node's TVS, and
#: every other TLS/TCP listener together (TFTP has 1/2, HTTP 1/4: their servers' own defaults)
TVS_SHARE = 1 / 16
NODE_TVS_SHARE = 1 / 64
TLS_SHARE = 1 / 16
#: ... but the shared TLS/TCP pool holds at least this many, where a quarter of the limit has room for them:
#: a CAPF enrolment or SIP registration storm of a few hundred phones under the common soft limit of 1,024
#: (a scenario's in-process lab) is not refused at 64 connections
TLS_FLOOR = 256
#: services started only when asked (``start_service``): their ports are not in the lab's configs
ON_DEMAND = frozenset({"https", "directory", "sip", "sips"})
#: the real CUCM port of each service ``lab serve`` has a port option for (spec §H.1)
_DEFAULT_PORTS = {**DEFAULT_PORTS, "https-config": HTTPS_CONFIG_PORT}

#: TVS server: on the loop (tvs_loop, least CPU), worker threads (tvs_threaded) or asyncio TLS (tvs_service)
TVS_IMPLS = ("loop", "threads", "asyncio")
_HTTP_OUTCOMES = {200: "ok", 403: "refused", 404: "not-found", 400: "malformed", 405: "refused",
                  413: "too-large", 431: "malformed"}


def _attribute(name: str) -> str:
    """The :class:`LabServers` attribute holding service ``name``'s server (``https-config``:
    ``https_config``)."""
    return name.replace("-", "_")


@dataclass(frozen=True, kw_only=True)
class RequestLog:
    """One request seen by a lab service. ``time`` is the wall clock (``time.time()``)."""

    service: str
    peer: str
    name: str
    outcome: str
    detail: str = ""
    time: float = 0.0


class _Network:
    """Loss/delay settings shared by TFTP and HTTP (see module docstring)."""

    def __init__(self) -> None:
        self.loss = 0.0
        self.delay = 0.0
        self.seed = 0
        self.loss_key = loss_key(0)
        self.fail: tuple[str, ...] = ()
        self.tftp_timeout = DEFAULT_TIMEOUT
        self.tftp_retries = DEFAULT_RETRIES
        self.tamper_media = False  # the media resources' packets tampered with on the way (§G.14)

    def fails(self, name: str) -> bool:
        """True when downloads of ``name`` are made to fail (``fail`` patterns)."""
        return bool(self.fail) and any(fnmatch.fnmatchcase(name, pattern) for pattern in self.fail)

    def set_seed(self, seed: int) -> None:
        """Draw every later drop from ``seed`` (:func:`~phoneemu.net.tftp_server.loss_key`)."""
        self.seed = seed
        self.loss_key = loss_key(seed)

    def drops_http(self, name: str, n: int) -> bool:
        """Whether the response to the ``n``-th request for ``name`` on its connection is dropped: a pure
        function of the seed and those (module docstring; the TFTP server's draws are its own)."""
        return self.loss > 0.0 and is_lost(self.loss_key, self.loss, ("http", name, n))


class _LabHttpServer(HttpServer):
    """:class:`HttpServer` whose responses honour :class:`_Network` (delay, dropped connection)."""

    def __init__(self, *args: Any, network: _Network, on_drop: Callable[[tuple[str, int], str], None],
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.network = network
        self.on_drop = on_drop
        #: connection → file name → requests for it so far (the loss draws; gone with the connection)
        self._asked: weakref.WeakKeyDictionary[asyncio.StreamWriter, dict[str, int]] = \
            weakref.WeakKeyDictionary()

    def _lookup(self, name: str, peer: tuple[str, int]) -> tuple[int, bytes]:
        if self.network.fails(name):
            return 500, b""
        return super()._lookup(name, peer)

    async def _respond(self, writer: asyncio.StreamWriter, peer: tuple[str, int], name: str, status: int,
                       body: bytes, *, head_only: bool, keep: bool, method: str = "-") -> None:
        if self.network.delay > 0.0:
            await asyncio.sleep(self.network.delay)
        if self.network.loss > 0.0 and self.network.drops_http(name, self._nth_request(writer, name)):
            self.on_drop(peer, name)
            raise ConnectionResetError("lab network: response dropped")
        await super()._respond(writer, peer, name, status, body, head_only=head_only, keep=keep,
                               method=method)

    def _nth_request(self, writer: asyncio.StreamWriter, name: str) -> int:
        """Which request for ``name`` on the connection of ``writer`` this is (1 for the first)."""
        asked = self._asked.setdefault(writer, {})
        n = asked[name] = asked.get(name, 0) + 1
        return n


#: OpenSSL's X509_V_FLAG_NO_CHECK_TIME (Python's ssl has no name for it)
_X509_V_FLAG_NO_CHECK_TIME = 0x200000


class _IdentityContexts:
    """Server contexts for the current TVS/CAPF identity, swapped in at each handshake (SNI callback).

    ``client_trust`` (the registrar over TLS): the phone's certificate is asked for and, when given,
    verified against the certificates it gives, taken again at each handshake (mutual TLS, seed "Device
    Authentication"); one that does not verify fails the handshake."""

    def __init__(self, identity: Callable[[], Identity], *, keylog: Path | None,
                 ciphers: str | None = None,
                 client_trust: Callable[[], tuple[x509.Certificate, ...]] | None = None,
                 min_version: str = "1.0") -> None:
        self._identity = identity
        self._keylog = keylog
        self._min_version = min_version
        self._ciphers = ciphers
        self._client_trust = client_trust
        self._current: tuple[x509.Certificate, tuple[x509.Certificate, ...], ssl.SSLContext] | None = None
        self.base = self._build(identity(), self._trust())
        self.base.sni_callback = self._on_hello

    def _trust(self) -> tuple[x509.Certificate, ...]:
        return self._client_trust() if self._client_trust is not None else ()

    def _build(self, ident: Identity, trust: tuple[x509.Certificate, ...]) -> ssl.SSLContext:
        # TLS 1.0..1.3 (unless ``min_version``): old phones speak only TLS 1.0 (spec §E.1, §F.1); no client
        # certificate (tvsd uses CERT_NONE) unless ``client_trust``
        # (the certificate is asked for, not required: a phone without one gets the registrar's 403, a
        # phone whose certificate does not verify the handshake's alert, phoneemu.net.tls_accept)
        ctx = server_context(ident.cert, ident.key, min_version=self._min_version, max_version="1.3",
                             keylog_filename=self._keylog, ciphers=self._ciphers, client_trust=trust or None)
        if trust:  # validity is the lab clock's, not the system's: OpenSSL checks the chain, not the dates
            ctx.verify_flags |= _X509_V_FLAG_NO_CHECK_TIME
        self._current = (ident.cert, trust, ctx)
        return ctx

    def context(self) -> ssl.SSLContext:
        ident, trust = self._identity(), self._trust()
        current = self._current
        if current is not None and current[0] == ident.cert and current[1] == trust:
            return current[2]
        _log.info("tls: presenting %s", ident.name)
        ctx = self._build(ident, trust)
        ctx.sni_callback = self._on_hello
        return ctx

    def _on_hello(self, sslobj: Any, _server_name: str | None, ctx: ssl.SSLContext) -> None:
        try:
            wanted = self.context()
        except PhoneEmuError as exc:  # identity unreadable: keep the old context, say why
            _log.warning("tls: cannot load the current identity: %s", exc)
            return
        if wanted is not ctx:
            sslobj.context = wanted


def tls_connections() -> int:
    """Connections the lab's TLS/TCP listeners hold together: :data:`TLS_SHARE` of the open-file limit,
    at least :data:`TLS_FLOOR` if a quarter of the limit allows (module docstring "Descriptors")."""
    return max(transfer_socket_budget(TLS_SHARE), min(TLS_FLOOR, transfer_socket_budget(1 / 4)))


def _tvs_connections(share: float) -> int:
    """Connections a TVS on the loop holds at once: ``share`` of the open-file limit, at most its default
    (module docstring "Descriptors")."""
    return min(DEFAULT_MAX_CONNECTIONS, transfer_socket_budget(share))


class LabServers:
    """TFTP, HTTP, TVS and CAPF of one :class:`LabCluster` on ``host``; ``async with`` works."""

    def __init__(
        self,
        cluster: LabCluster,
        *,
        host: str = "127.0.0.1",
        tftp_port: int = 0,
        http_port: int = 0,
        tvs_port: int = 0,
        capf_port: int = 0,
        keylog: Path | None = None,
        capture: UdpSink | None = None,
        clock: Callable[[], int] | None = None,
        io_timeout: float = 10.0,
        capf_session_timeout: float = 120.0,
        capf_lock_wait: float = CAPF_LOCK_WAIT_S,
        capf_read_timeout: float | None = None,
        capf_max_in_progress: int = MAX_IN_PROGRESS,
        tftp_tid_mode: str = "ephemeral",
        watch: float | None = None,
        max_log: int = 100_000,
        keep_requests: bool = True,
        tvs_impl: str = "loop",
        app_https: bool = False,
        https_port: int = 0,
        https_config_port: int = 0,
        on_notice: Callable[[str], None] | None = None,
        sip_ports: Mapping[str, int | None] | None = None,
        handshake_log_level: int = logging.WARNING,
    ) -> None:
        self.cluster = cluster
        #: the level failed TLS handshakes (and CAPF sessions ending in a timeout or a malformed message)
        #: are logged at (a scenario's lab: INFO, its request log has them; a rehearsed slow phone's cut
        #: session is no warning on the run's stderr)
        self.handshake_log_level = handshake_log_level
        self.on_notice = on_notice
        self.host = host
        self.requested = {"tftp": tftp_port, "http": http_port, "tvs": tvs_port, "capf": capf_port,
                          "https": https_port, "https-config": https_config_port, "directory": 0, "sip": 0,
                          "sips": 0}
        #: the SIP registrar's listeners started with the others (``lab serve --sip-port``), by port
        self.sip_at_start = {k: v for k, v in (sip_ports or {}).items()
                             if v is not None and k in ("sip", "sips")}
        self.requested.update(self.sip_at_start)
        self.app_https = app_https
        self.keylog = keylog
        self.capture = capture
        self.clock = clock
        self.io_timeout = io_timeout
        self.capf_session_timeout = capf_session_timeout
        if tftp_tid_mode not in ("ephemeral", "shared"):
            raise PhoneEmuError(f"tftp_tid_mode {tftp_tid_mode!r}: ephemeral or shared", path="tftp_tid_mode")
        self.tftp_tid_mode = tftp_tid_mode
        self.watch = watch
        self._state_stopped: set[str] = set()  # services stopped because the cluster lists them
        self._restart_errors: dict[str, str] = {}  # service -> why it could not start again (logged once)
        self.max_log = max_log
        #: False: no :class:`RequestLog` is kept (``requests`` stays empty; module docstring)
        self.keep_requests = keep_requests
        if tvs_impl not in TVS_IMPLS:
            raise PhoneEmuError(f"tvs_impl {tvs_impl!r}: loop, threads or asyncio", path="tvs_impl")
        self.tvs_impl = tvs_impl
        self.ports: dict[str, int] = {}
        self.requests: list[RequestLog] = []
        self._record_lock = threading.Lock()
        self.network = _Network()
        self.tftp: TftpServer | None = None
        self.http: HttpServer | None = None
        self.tvs: TlsServer | ThreadedTvsServer | LoopTvsServer | None = None
        self.capf: TlsServer | None = None
        self.https: TlsServer | None = None
        self.https_handler = HttpsAppHandler(read_timeout=io_timeout, on_log=self._request_logger("https"))
        #: the HTTPS configuration download (6971), run for a lab with the ``tftp-https`` identity
        self.https_config: TlsServer | None = None
        self.https_config_handler = HttpsAppHandler(
            read_timeout=io_timeout, on_log=self._request_logger("https-config"), service="https-config",
            answer=HttpsConfigFiles(self._served_file, self.network.fails), content_type=CONTENT_TYPE,
            logger=logging.getLogger("phoneemu.lab.https_config"))
        self._https_config_ctx: _IdentityContexts | None = None
        #: the same directory over plain HTTP, for configs whose secure URLs are http:// (``secure-urls``)
        self.directory: TlsServer | None = None
        self.directory_handler = HttpsAppHandler(read_timeout=io_timeout,
                                                 on_log=self._request_logger("directory"),
                                                 body=PLAIN_DIRECTORY_XML)
        self.sip: TlsServer | None = None
        self.sips: TlsServer | None = None
        self.media = MediaResources(on_log=self._on_media, tamper=lambda: self.network.tamper_media)
        self.relay = CallRelay(answer_timeout=io_timeout, on_log=self._on_relay)
        self.attacker = SignallingAttacker(io_timeout=io_timeout, on_log=self._on_attacker)
        self.sip_handler = SipRegistrar(self._sip_credentials, clock=clock, read_timeout=io_timeout,
                                        on_log=self._on_sip, on_registered=self._on_registered,
                                        media=self.media, relay=self.relay, attacker=self.attacker,
                                        dial_plan=self._dial_plan, problem_log_level=handshake_log_level)
        #: MAC -> (the ITL checksum it reported at its last registration, when): spec §G.1, ``lab show``'s
        #: ITL File Status once ``lab serve`` has written them (``registrations.json``, every watch interval)
        self.registrations: dict[str, tuple[str, int]] = {}
        self._registrations_written = 0  # how many reports were written (a change writes them again)
        self._registrations_seen = 0
        self.tvs_handler = TvsHandler(cluster.tvs_lookup, read_timeout=io_timeout, on_log=self._on_tvs)
        # CAPF's read timeout: 3 x io_timeout unless given (lab serve --capf-read-timeout)
        read = io_timeout * 3 if capf_read_timeout is None else capf_read_timeout
        self.capf_handler = CapfHandler(cluster, clock=clock, read_timeout=read,
                                        session_timeout=capf_session_timeout, lock_wait=capf_lock_wait,
                                        max_in_progress=capf_max_in_progress, on_log=self._on_capf,
                                        problem_log_level=handshake_log_level)
        # "tvs-2" ... (node 1 is ``tvs``)
        self.tvs_nodes: dict[str, TlsServer | ThreadedTvsServer | LoopTvsServer] = {}
        # "sip-2", "sips-2" ... (node 1's are ``sip`` / ``sips``)
        self.sip_nodes: dict[str, TlsServer] = {}
        self._tvs_ctx: _IdentityContexts | None = None
        self._capf_ctx: _IdentityContexts | None = None
        #: the descriptors every TlsServer of the lab shares (module docstring "Descriptors")
        self.tls_budget = ConnectionBudget(tls_connections())
        self._watch_task: asyncio.Task[None] | None = None
        self._started = False
        #: a stop is coming (:meth:`request_stop`): no write of the servers' own begins
        self.stopping = False

    # --- lifecycle -------------------------------------------------------------------
    async def start(self) -> LabServers:
        """Bind every service, then record the real ports in the cluster (configs name them). A start that
        does not return (cancelled: a signal while it binds or waits for the lab lock; failed) closes every
        server it started: no port is left taken."""
        if self._started:
            return self
        # read before the first request, not while a storm waits on it; and whole: the state and files of
        # one save, under the lab lock (an operation under way is waited for). Before, a lab opened while an
        # operation wrote it was served as read — its new files beside the old state — until the
        # operation ended and the port record below re-read it.
        await when_lab_lock_free(self.cluster.read_whole, root=self.cluster.root,
                                 what="record this server's change (the lab read whole first)")
        if self.stopping:  # a signal while the lab was read: nothing bound, nothing written
            return self
        # TVS: the CUCM 14 cipher list in its order (spec §E.1): TLS 1.2 phones get RSA key transport
        self._tvs_ctx = _IdentityContexts(self._tvs_identity, keylog=self.keylog,
                                          ciphers=CUCM_TVS_CIPHERS)
        self._capf_ctx = _IdentityContexts(self._capf_identity, keylog=self.keylog)
        try:
            await self._bind_all()
            self._started = True
            if self.stopping:  # a signal while the ports were bound: no write for a server ending
                return self  # (stop follows)
            await self.update_cluster(self._record_ports)
            if self.watch is not None:  # a served lab (lab serve) follows ``phoneemu lab service``
                self._load_registrations()
                await self.sync_stopped()
                self._watch_task = asyncio.create_task(self._watch_loop(self.watch))
        except BaseException:  # cancelled (a signal while the lab lock is held) or failed: nothing left open
            await self._stop_all()
            self._started = False
            raise
        where = {"::": "every address ([::])", "0.0.0.0": "every IPv4 address (0.0.0.0)"}.get(self.host,
                                                                                             self.host)
        _log.info("lab servers on %s: %s", where, ", ".join(f"{k} {v}" for k, v in self.ports.items()))
        return self

    async def _bind_all(self) -> None:
        """Start every service asked for, then every node's TVS and registrars."""
        for name in self._services():
            if name not in ON_DEMAND or (name == "https" and self.app_https) or name in self.sip_at_start:
                await self._start(name, self.requested[name])
        for name in self._node_names():
            await self._start(name, 0)

    def request_stop(self) -> None:
        """A stop is coming (``lab serve``'s signal handler, which may run in the middle of a lab write):
        the servers begin no write of their own after it — the start's port record, the watch loop's
        node and service changes — and the write under way finishes; :meth:`stop` follows. Sets a flag
        only, so a signal handler may call it."""
        self.stopping = True

    async def stop(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
            self._watch_task = None
            self._write_registrations()  # the last reports too
        await self._stop_all()
        self.capf_handler.flush()  # a flood's last failed sessions, counted in the interval under way
        self.sip_handler.flush()  # and its SIP problems
        self.media.close()
        self.attacker.close()  # its media relays' sockets
        self._started = False
        self.stopping = False

    async def __aenter__(self) -> LabServers:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop_service(self, name: str) -> None:
        """Stop one service (its port stays reserved for :meth:`start_service`)."""
        self._check_name(name)
        await self._stop(name)

    async def start_service(self, name: str) -> None:
        """Start one stopped service again on the port it had."""
        self._check_name(name)
        if self._running(name):
            return
        await self._start(name, self.ports.get(name, self.requested.get(name, 0)))

    async def sync_nodes(self) -> None:
        """Run a TVS (and, when SIP is served, a registrar) for every node of the cluster (start new
        nodes', stop removed ones') and record the ports, so device configs list exactly the running
        nodes' TVS servers and CallManagers."""
        wanted = set(self._node_names())
        for name in sorted((set(self.tvs_nodes) | set(self.sip_nodes)) - wanted):
            await self._stop(name)
            self.ports.pop(name, None)
            self._notice(f"{name} stopped (its node was removed)")
        for name in sorted(wanted):
            if name not in self.ports:
                await self._start(name, 0)
                if name in self.ports:
                    how = "tcp" if name.startswith("sip-") else "tls"
                    self._notice(f"{name} listening on {how} {host_port(self.host, self.ports[name])} "
                                 "(a node was added)")
        await self.update_cluster(self._record_ports)

    def _notice(self, text: str, *, or_log: bool = False) -> None:
        """Tell ``on_notice`` (see module docstring); its failure is logged, never the request's.
        Without ``on_notice`` (scenarios, tests), ``or_log`` makes it a warning in the log instead."""
        if self.on_notice is None:
            if or_log:
                _log.warning("lab: %s", text)
            return
        try:
            self.on_notice(text)
        except Exception:
            _log.exception("lab: on_notice callback failed")

    def _record_ports(self) -> None:
        """Record the listening ports in the cluster (the nodes' TVS ports only of nodes it still has).
        Ports other than those recorded rebuild every served file (configs name them, spec §H.5): a
        notice says so first (a 40,000-phone lab takes about a minute, with nothing else to see); a new
        node's TVS port has its own notice (``sync_nodes``)."""
        nodes = set(self._node_names())
        ports = {k: v for k, v in self.ports.items()
                 if k in DEFAULT_PORTS or k in nodes or k in self.sip_at_start or k in _HTTPS_KEY_SERVICES}
        recorded = self.cluster.state.ports
        named = {**_SIP_DEFAULTS, **recorded}  # the SIP ports configs name until recorded (devicePool)
        moved = [f"{k} {named[k]} -> {v}" for k, v in ports.items() if named.get(k, v) != v]
        if moved:
            phones = len(self.cluster.state.phones)
            self._notice(f"ports other than the lab recorded ({', '.join(moved)}): its files name them; "
                         f"rebuilding every served file ({phones} phone{'s' if phones != 1 else ''}) ...")
        self.cluster.set_ports(now=self._now(), **ports)

    async def update_cluster(self, change: Callable[[], _T], *, limit: float | None = None) -> _T:
        """Run ``change`` (a cluster change that saves the state) under the lab lock held exclusively,
        on the state as saved (:meth:`LabCluster.update_locked`). While a ``phoneemu lab`` operation
        holds the lock, try again every :data:`LOCK_POLL_S` (the loop keeps serving), logging once
        after :data:`LOCK_WAIT_S` (:func:`phoneemu.lab.lock.when_lab_lock_free`): the write waits for the
        operation, it is never skipped — unless ``limit`` (seconds) is given: then, the lock still held
        after it, :class:`LabBusyError` and nothing was written."""
        return await when_lab_lock_free(lambda: self.cluster.update_locked(change, wait=False),
                                        root=self.cluster.root, limit=limit)

    async def sync_stopped(self) -> list[tuple[str, str]]:
        """Follow the cluster's ``stopped`` services (``phoneemu lab service DIR NAME stop|start``): stop
        those listed, start again those this method stopped and the list no longer names. Returns the
        changes made, ``(name, "stopped"|"started")``."""
        wanted = set(self.cluster.state.stopped)
        changes: list[tuple[str, str]] = []
        for name in sorted(wanted - self._state_stopped):
            if name in self._services() or name in self._node_names():
                self._state_stopped.add(name)  # before the await: a reader never sees it half-done
                await self._stop(name)
                changes.append((name, "stopped"))
                self._notice(f"{name} stopped (phoneemu lab service ... {name} start brings it back)",
                             or_log=True)
        for name in sorted(self._state_stopped - wanted):
            self._state_stopped.discard(name)
            if name in self._services() or name in self._node_names():
                try:
                    await self.start_service(name)
                except PhoneEmuError as exc:  # e.g. another program took its port meanwhile
                    self._state_stopped.add(name)  # still stopped: tried again at the next call
                    if self._restart_errors.get(name) != exc.message:  # said once, not every interval
                        _log.warning("lab: cannot start %s again (tried again every watch interval): %s",
                                     name, exc)
                    self._restart_errors[name] = exc.message
                    continue
                self._restart_errors.pop(name, None)
                changes.append((name, "started"))
                self._notice(f"{name} started again", or_log=True)
        return changes

    @property
    def stopped_by_cluster(self) -> frozenset[str]:
        """Services stopped because the cluster's ``stopped`` list names them (:meth:`sync_stopped`)."""
        return frozenset(self._state_stopped)

    def _node_tvs_names(self) -> list[str]:
        return [f"tvs-{n}" for n in range(2, self.cluster.state.nodes + 1)]

    def _node_sip_names(self) -> list[str]:
        """``sip-N`` / ``sips-N``: nodes 2.. 's registrars, run when node 1's were started with the others
        (``sip_ports``), at most the nodes a config's CallManager group lists."""
        return [name for name in node_registrars(self.cluster.state.nodes)
                if name.rsplit("-", 1)[0] in self.sip_at_start]

    def _node_names(self) -> list[str]:
        """The services of nodes 2..: every node's TVS, and its registrar (:meth:`_node_sip_names`)."""
        return [*self._node_tvs_names(), *self._node_sip_names()]

    def running(self, name: str) -> bool:
        self._check_name(name)
        return self._running(name)

    def set_network(self, loss: float = 0.0, delay_s: float = 0.0, seed: int = 0,
                    fail: tuple[str, ...] | list[str] = (), *, tftp_timeout_s: float | None = None,
                    tftp_retries: int | None = None, tamper_media: bool = False,
                    tamper_signalling: bool = False, replay_sip: bool = False) -> None:
        """Drop TFTP datagrams / HTTP responses with probability ``loss``; delay them by ``delay_s``;
        make every download of the files matching ``fail`` fail; retransmit TFTP DATA after
        ``tftp_timeout_s``, at most ``tftp_retries`` times; flip a byte of every media packet the
        media resources play (``tamper_media``, spec §G.14); put an attacker on the path of the SIP line
        (``tamper_signalling``, ``replay_sip``: :mod:`.on_path`) (see the module docstring)."""
        if not 0.0 <= loss < 1.0:
            raise PhoneEmuError(f"loss {loss} outside [0, 1)", path="loss")
        if delay_s < 0.0:
            raise PhoneEmuError(f"delay {delay_s} is negative", path="delay_s")
        if tftp_timeout_s is not None and tftp_timeout_s <= 0.0:
            raise PhoneEmuError(f"TFTP timeout {tftp_timeout_s} s is not positive", path="tftp_timeout_s")
        if tftp_retries is not None and tftp_retries < 0:
            raise PhoneEmuError(f"TFTP retries {tftp_retries} is negative", path="tftp_retries")
        self.network.tftp_timeout = DEFAULT_TIMEOUT if tftp_timeout_s is None else tftp_timeout_s
        self.network.tftp_retries = DEFAULT_RETRIES if tftp_retries is None else tftp_retries
        self.network.loss = loss
        self.network.delay = delay_s
        self.network.set_seed(seed)
        self.network.fail = tuple(str(f) for f in fail)
        self.network.tamper_media = tamper_media
        self.attacker.tamper = tamper_signalling
        self.attacker.replay = replay_sip
        if self.tftp is not None:
            self._apply_tftp_network(self.tftp)

    # --- internals -------------------------------------------------------------------
    def _services(self) -> tuple[str, ...]:
        """:data:`SERVICES` this lab has: ``https-config`` only with its ``tftp-https`` identity."""
        if self.cluster.state.https_key is not None:
            return SERVICES
        return tuple(name for name in SERVICES if name not in _HTTPS_KEY_SERVICES)

    def _check_name(self, name: str) -> None:
        if name not in self._services() and name not in self._node_names():
            known = [*self._services(), *self._node_names()]
            raise PhoneEmuError(f"unknown service {name!r}; one of {', '.join(known)}", path="service")

    def _running(self, name: str) -> bool:
        if name.startswith("tvs-"):
            return name in self.tvs_nodes
        if name.startswith(("sip-", "sips-")):
            return name in self.sip_nodes
        return getattr(self, _attribute(name)) is not None

    def _now(self) -> int | None:
        return self.clock() if self.clock is not None else None

    def _apply_tftp_network(self, srv: TftpServer) -> None:
        srv.loss = self.network.loss
        srv.delay = self.network.delay
        srv.timeout = self.network.tftp_timeout
        srv.retries = self.network.tftp_retries
        srv.seed = self.network.seed  # its draws name TFTP datagrams: never the same as HTTP's

    async def _start(self, name: str, port: int) -> None:
        """Start service ``name`` on ``port``; port 0 (any free port, and every node's TVS) takes the
        port the lab recorded for it when that one is free (our convention): a lab served again keeps
        its ports, so its files (configs name them) are not all rebuilt and a phone's installed config
        still names the right TVS. A recorded default port (69, 6970, 2445, 3804, 6971) or one below 1024 is
        never taken unasked (it is for whoever asks for it by number)."""
        recorded = self.cluster.state.ports.get(name) if port == 0 else None
        if recorded is not None and recorded >= 1024 and recorded != _DEFAULT_PORTS.get(name):
            try:
                await self._start_on(name, recorded)
                return
            except TransportError:
                pass  # in use (another lab, another run): any free port, as asked
        await self._start_on(name, port)

    async def _start_on(self, name: str, port: int) -> None:
        try:
            if name == "tftp":
                tftp = TftpServer(self._served_file, self.host, port, on_request=self._on_tftp,
                                  capture=self.capture, tid_mode=self.tftp_tid_mode,  # type: ignore[arg-type]
                                  max_transfers=65536)
                self._apply_tftp_network(tftp)
                self.tftp = await tftp.start()
                bound = tftp.port
            elif name == "http":
                http = _LabHttpServer(self._served_file, self.host, port, network=self.network,
                                      on_drop=self._on_http_drop, on_request=self._on_http,
                                      idle_timeout=self.io_timeout)
                self.http = await http.start()
                bound = http.port
            elif name.startswith("tvs-"):
                node = int(name.split("-", 1)[1])
                bound = await self._start_node_tvs(name, node, port)
            elif name.startswith(("sip-", "sips-")):
                bound = await self._start_node_sip(name, port)
            elif name == "tvs" and self.tvs_impl == "loop":
                tvs_l = LoopTvsServer(self.tvs_handler, self._tvs_identity, self.host, port,
                                      handshake_timeout=self.io_timeout, keylog=self.keylog,
                                      failure_log_level=self.handshake_log_level,
                                      max_connections=_tvs_connections(TVS_SHARE))
                self.tvs = await tvs_l.start()
                bound = tvs_l.port
            elif name == "tvs" and self.tvs_impl == "threads":
                tvs_t = ThreadedTvsServer(self.tvs_handler, self._tvs_identity, self.host, port,
                                          handshake_timeout=self.io_timeout, keylog=self.keylog,
                                          log_on_loop=False)  # _record takes a lock
                self.tvs = await tvs_t.start()
                bound = tvs_t.port
            elif name == "tvs":
                assert self._tvs_ctx is not None
                tvs = TlsServer(self.tvs_handler, self._tvs_ctx.base, self.host, port, name="tvs",
                                handshake_timeout=self.io_timeout, failure_log_level=self.handshake_log_level,
                                on_handshake_error=self._handshake_logger("tvs"), budget=self.tls_budget)
                self.tvs = await tvs.start()
                bound = tvs.port
            elif name == "https":  # made (and vouched for by TVS) on first use: a write of the lab
                now = self._now()
                ident = await self.update_cluster(lambda: self.cluster.app_server_identity(now=now))
                https = TlsServer(self.https_handler, server_context(
                    ident.cert, ident.key, min_version="1.0", max_version="1.3", keylog_filename=self.keylog),
                    self.host, port, name="https", handshake_timeout=self.io_timeout,
                    on_handshake_error=self._handshake_logger("https"),
                    failure_log_level=self.handshake_log_level, budget=self.tls_budget)
                self.https = await https.start()
                bound = https.port
            elif name == "https-config":
                bound = await self._start_https_config(port)
            elif name == "directory":
                directory = TlsServer(self.directory_handler, None, self.host, port, name="directory",
                                      budget=self.tls_budget)
                self.directory = await directory.start()
                bound = directory.port
            elif name in ("sip", "sips"):
                sip_srv = self._registrar(name, 1, port)
                setattr(self, name, await sip_srv.start())
                bound = sip_srv.port
            else:
                assert self._capf_ctx is not None
                capf = TlsServer(self.capf_handler, self._capf_ctx.base, self.host, port, name="capf",
                                 handshake_timeout=self.io_timeout,
                                 on_handshake_error=self._handshake_logger("capf"),
                                 failure_log_level=self.handshake_log_level, budget=self.tls_budget)
                self.capf = await capf.start()
                bound = capf.port
        except OSError as exc:
            raise _bind_error(name, self.host, port, exc) from exc
        self.ports[name] = bound
        self._declare_listening(name, bound)

    def _declare_listening(self, name: str, port: int) -> None:
        """Tell a capture that asks (its ``listening``: :class:`phoneemu.scenario.capturing.CaptureSink`)
        that service ``name`` listens on ``port``: its packets are ours without a look at the socket tables
        (module docstring)."""
        listening = getattr(self.capture, "listening", None)
        if listening is not None:
            listening("udp" if name == "tftp" else "tcp", self.host, port)

    async def _start_node_tvs(self, name: str, node: int, port: int) -> int:
        """TVS of node ``node`` (2..8): same handler, that node's TVS identity."""
        def identity() -> Identity:
            self._fresh()
            return self.cluster.tvs_identity(node)

        if self.tvs_impl == "loop":
            on_loop = LoopTvsServer(self.tvs_handler, identity, self.host, port,
                                    handshake_timeout=self.io_timeout, keylog=self.keylog, name=name,
                                    failure_log_level=self.handshake_log_level,
                                    max_connections=_tvs_connections(NODE_TVS_SHARE))
            self.tvs_nodes[name] = await on_loop.start()
            return on_loop.port
        if self.tvs_impl == "threads":
            threaded = ThreadedTvsServer(self.tvs_handler, identity, self.host, port,
                                         handshake_timeout=self.io_timeout, keylog=self.keylog,
                                         log_on_loop=False)
            self.tvs_nodes[name] = await threaded.start()
            return threaded.port
        ctx = _IdentityContexts(identity, keylog=self.keylog, ciphers=CUCM_TVS_CIPHERS)
        tls = TlsServer(self.tvs_handler, ctx.base, self.host, port, name=name,
                        handshake_timeout=self.io_timeout, failure_log_level=self.handshake_log_level,
                        budget=self.tls_budget)
        self.tvs_nodes[name] = await tls.start()
        return tls.port

    async def _start_https_config(self, port: int) -> int:
        """The HTTPS configuration download (module docstring): the current ``tftp-https`` identity at each
        handshake, TLS 1.2 or 1.3 (its EC key: ECDSA suites)."""
        if self._https_config_ctx is None:
            self._https_config_ctx = _IdentityContexts(self._https_config_identity, keylog=self.keylog,
                                                       min_version="1.2")
        srv = TlsServer(self.https_config_handler, self._https_config_ctx.base, self.host, port,
                        name="https-config", handshake_timeout=self.io_timeout,
                        on_handshake_error=self._handshake_logger("https-config"),
                        failure_log_level=self.handshake_log_level, budget=self.tls_budget)
        self.https_config = await srv.start()
        return srv.port

    def _registrar(self, name: str, node: int, port: int) -> TlsServer:
        """Node ``node``'s registrar ``name`` (``sip``/``sips``, ``-N``): over TLS presenting that node's
        CallManager certificate, the CTL's CCM+TFTP record of the node (§G.5), the current one at each
        handshake (a regenerated certificate is presented at once)."""
        ctx = None
        if name.startswith("sips"):
            def identity() -> Identity:
                self._fresh()
                return self.cluster.callmanager(node)

            ctx = _IdentityContexts(identity, keylog=self.keylog, ciphers=CUCM_SIP_LINE_CIPHERS,
                                    client_trust=self._device_trust).base
        return TlsServer(self.sip_handler, ctx, self.host, port, name=name, handshake_timeout=self.io_timeout,
                         failure_log_level=self.handshake_log_level,
                         on_handshake_error=self._handshake_logger(name), budget=self.tls_budget)

    async def _start_node_sip(self, name: str, port: int) -> int:
        """The registrar ``sip-N`` / ``sips-N`` of node N (2..)."""
        srv = self._registrar(name, int(name.rsplit("-", 1)[1]), port)
        self.sip_nodes[name] = await srv.start()
        return srv.port

    async def _stop(self, name: str) -> None:
        if name.startswith(("tvs-", "sip-", "sips-")):
            node_srv = (self.tvs_nodes if name.startswith("tvs-") else self.sip_nodes).pop(name, None)
            if node_srv is not None:
                await node_srv.close()
            return
        srv = getattr(self, _attribute(name))
        if srv is None:
            return
        setattr(self, _attribute(name), None)
        await srv.close()

    async def _stop_all(self) -> None:
        """Stop every server, each whatever became of the others: a cancel arriving while one closes
        (a close waits a few loop iterations, :func:`phoneemu.net._listen.close_listening`) is raised
        once all are closed, not before the rest (they would be left listening)."""
        cancelled: asyncio.CancelledError | None = None
        for name in [*sorted([*self.tvs_nodes, *self.sip_nodes]), *reversed(SERVICES)]:
            try:
                await self._stop(name)
            except asyncio.CancelledError as exc:
                cancelled = cancelled or exc
            except Exception:  # noqa: S110 -- a server that fails to close is not to stop the others
                pass
        if cancelled is not None:
            raise cancelled

    async def _watch_loop(self, interval: float) -> None:
        """Pick up changes made by another process (``phoneemu lab ...`` while ``lab serve`` runs)."""
        while not self.stopping:
            await asyncio.sleep(interval)
            await self._reload_waiting(min(interval, LOCK_WAIT_S))
            if self.stopping:  # came during the reload: stop() writes the registrations
                return
            self._write_registrations()
            await self.sync_stopped()
            if set(self._node_names()) != {k for k in self.ports if k.startswith(("tvs-", "sip-", "sips-"))}:
                try:  # another process added or removed a node: run (or stop) its TVS (and registrar)
                    await self.sync_nodes()
                except PhoneEmuError as exc:
                    _log.warning("lab: cannot follow the cluster's nodes: %s", exc)

    async def _reload_waiting(self, wait: float) -> None:
        """The periodic reload: while a ``phoneemu lab`` operation holds the lab lock, try again every
        :data:`LOCK_POLL_S` for at most ``wait`` seconds (the loop keeps serving meanwhile); still held:
        skipped, logged, tried again at the next poll."""
        for _ in range(max(1, round(wait / LOCK_POLL_S))):
            if self._reload():
                return
            await asyncio.sleep(LOCK_POLL_S)
        if not self._reload():
            _log.warning("lab: %s held by a phoneemu lab command for %.2fs: reload skipped, tried again at "
                         "the next poll", self.cluster.root / LOCK_FILE, wait)

    def _reload(self) -> bool:
        """Reload a changed cluster; False when the lab lock is held (nothing read), else True."""
        try:
            if self.cluster.reload_if_changed():
                _log.info("lab: cluster state changed on disk (generation %d): reloaded",
                          self.cluster.generation)
                from phoneemu.lab.trust_line import trust_line

                self._notice(f"picked up a change to the lab: {trust_line(self.cluster)}")
        except LabBusyError:
            _log.debug("lab: %s held: reload deferred", self.cluster.root / LOCK_FILE)
            return False
        except PhoneEmuError as exc:
            _log.warning("lab: cannot reload the cluster: %s", exc)
        return True

    # With ``watch``, every request first picks up a change another process saved (one ``stat``): a
    # boot right after ``phoneemu lab <operation>`` sees the new files, TVS certificate and TVS
    # knowledge (e.g. after ``exchange``), not those of up to ``watch`` seconds ago. TFTP/HTTP check
    # per file, TVS and CAPF per connection (their identity is asked for at every accept).
    def _fresh(self) -> None:
        if self.watch is not None:
            self._reload()

    def _served_file(self, name: str) -> bytes | None:
        if self.network.fails(name):  # TFTP: ERROR 0 (HTTP answers 500 before asking)
            raise TransportError(f"lab network: download of {name} fails", kind="error", path=name)
        self._fresh()
        return self.cluster.get(name)

    def _tvs_identity(self) -> Identity:
        self._fresh()
        return self.cluster.tvs_identity()

    def _device_trust(self) -> tuple[x509.Certificate, ...]:
        """What the registrar over TLS accepts a phone's certificate from (mutual TLS, seed "Device
        Authentication"; CUCM's CallManager-trust): the manufacturing CA (MICs) and the current CAPF
        (LSCs). Ours: a regenerated CAPF's earlier LSCs are refused — the lab's trust is CUCM's after
        the old CAPF certificate was deleted from CallManager-trust."""
        return self.cluster.identity("mfgca").cert, self.cluster.identity("capf").cert

    def _capf_identity(self) -> Identity:
        self._fresh()
        return self.cluster.identity("capf")

    def _https_config_identity(self) -> Identity:
        self._fresh()
        return self.cluster.identity("tftp-https")

    # --- observation -----------------------------------------------------------------
    def _record(self, entry: RequestLog) -> None:
        if not self.keep_requests:
            return
        with self._record_lock:  # the threaded TVS server records from its worker threads
            self.requests.append(entry)
            if len(self.requests) > self.max_log:
                del self.requests[: len(self.requests) - self.max_log // 2]

    def _handshake_logger(self, service: str) -> Callable[[str, str], None]:
        """A failed TLS handshake (a phone refusing our certificate, a port scanner) in the request log;
        TlsServer has logged it as a warning already."""
        def record(peer: str, reason: str) -> None:
            self._record(RequestLog(service=service, peer=peer, name="", outcome="tls-failed", detail=reason,
                                    time=time.time()))
        return record

    def _on_tftp(self, ev: TftpRequestEvent) -> None:
        if _log.isEnabledFor(logging.INFO):  # the size/detail text only when someone reads the log
            _log.info("tftp: %s RRQ %s: %s%s", host_port(ev.peer[0], ev.peer[1]), ev.filename, ev.outcome,
                      f" ({ev.size} bytes)" if ev.outcome == "ok" else f" ({ev.detail})" if ev.detail else "")
        if self.keep_requests:  # the busiest service: no entry built when none is kept
            self._record(RequestLog(service="tftp", peer=host_port(ev.peer[0], ev.peer[1]),
                                    name=ev.filename, outcome=ev.outcome, detail=ev.detail, time=time.time()))

    def _on_http(self, peer: tuple[str, int], method: str, name: str, status: int) -> None:
        # (a request refused before its method and name were read has "-" here: the HTTP server's own line
        # says why; a connection refused at max_connections, its 503, has no line each: the server says
        # them at most once a second with their count, a flood does not fill the log; its entry is kept)
        if status != 503 or method != "-":
            _log.info("http: %s %s %s: %d", host_port(peer[0], peer[1]), method, name or "-", status)
        self._record(RequestLog(service="http", peer=host_port(peer[0], peer[1]), name=name,
                                outcome=_HTTP_OUTCOMES.get(status, "error"), detail=f"HTTP {status}",
                                time=time.time()))

    def _on_http_drop(self, peer: tuple[str, int], name: str) -> None:
        self._record(RequestLog(service="http", peer=host_port(peer[0], peer[1]),
                                name=name, outcome="dropped",
                                detail="lab network loss", time=time.time()))

    def _on_tvs(self, e: TvsConnectionLog) -> None:
        name = f"{e.request} {e.device_name}" if e.request else ""
        outcome = e.outcome if e.request else e.outcome.split(":", 1)[0]
        self._record(RequestLog(service="tvs", peer=e.peer, name=name, outcome=outcome,
                                detail=e.tls if e.request else f"{e.tls}: {e.outcome}", time=time.time()))

    def _request_logger(self, service: str) -> Callable[[str, str, int], None]:
        """An answered request of ``service`` (``https``, ``https-config``, ``directory``: their
        :class:`HttpsAppHandler`) in the request log."""
        def record(peer: str, path: str, status: int) -> None:
            self._record(RequestLog(service=service, peer=peer, name=path,
                                    outcome=_HTTP_OUTCOMES.get(status, "error"), detail=f"HTTP {status}",
                                    time=time.time()))
        return record

    def _sip_credentials(self, mac: str) -> tuple[str | None, str | None] | None:
        """The registrar's view of a device: its digest user and password, None when unknown."""
        self._fresh()
        ph = self.cluster.state.phones.get(mac)
        return None if ph is None else (ph.digest_user, ph.digest_password)

    def _dial_plan(self, mac: str) -> DialPlan | None:
        """The registrar's view of a device's partition and calling search space (seed "Authorization",
        :mod:`.dial_plan`), as saved now (``lab serve``: a change another process saved is picked up
        first); None when unknown."""
        self._fresh()
        return self.cluster.dial_plan(mac)

    def _on_registered(self, mac: str, itl: str | None) -> None:
        if itl is not None:
            self.registrations[mac] = (itl, self._now() or int(time.time()))
            self._registrations_seen += 1

    def _load_registrations(self) -> None:
        """The reports an earlier ``lab serve`` wrote, under those of this one: a restart loses none (the
        first registration wrote the file whole, with itself alone). An unreadable file is said once and
        kept until a registration writes a new one."""
        earlier, problem = read_registrations(self.cluster.root)
        if problem is not None:
            _log.warning("lab: %s", problem)
        self.registrations = {**earlier, **self.registrations}

    def _write_registrations(self) -> None:
        """``DIR/registrations.json`` when a report came since the last write (lab serve's watch loop)."""
        if self._registrations_seen == self._registrations_written:
            return
        self._registrations_written = self._registrations_seen
        try:
            write_registrations(self.cluster.root, self.registrations)
        except (OSError, PhoneEmuError) as exc:
            _log.warning("lab: cannot write %s: %s", self.cluster.root / REGISTRATIONS_FILE, exc)

    def _on_sip(self, peer: str, device: str, outcome: str, detail: str) -> None:
        self._record(RequestLog(service="sip", peer=peer, name=device, outcome=outcome, detail=detail,
                                time=time.time()))

    def _on_media(self, device: str, outcome: str, detail: str) -> None:
        self._record(RequestLog(service="media", peer="", name=device, outcome=outcome, detail=detail,
                                time=time.time()))

    def _on_relay(self, device: str, outcome: str, detail: str) -> None:
        self._record(RequestLog(service="relay", peer="", name=device, outcome=outcome, detail=detail,
                                time=time.time()))

    def _on_attacker(self, device: str, detail: str) -> None:
        self._record(RequestLog(service="on-path", peer="", name=device, outcome="attacked", detail=detail,
                                time=time.time()))

    def _on_capf(self, e: CapfSessionLog) -> None:
        outcome = e.outcome.split(":", 1)[0]
        self._record(RequestLog(service="capf", peer=e.peer, name=e.device_name, outcome=outcome,
                                detail=f"op={e.operation or '-'} {e.outcome} {e.detail}".strip(),
                                time=time.time()))


def _bind_error(name: str, host: str, port: int, exc: OSError) -> TransportError:
    """One line for a port that cannot be bound, saying what to change: the option that moves the
    service (``--tftp-port`` ..., for the services ``lab serve`` has one for; 0 = any free port). A port
    in use never gets the port that failed suggested back; it names the process holding it when this one
    may know (:func:`port_holder`)."""
    option = f"--{name}-port" if name in _DEFAULT_PORTS or name in ("sip", "sips") else None
    if exc.errno in (errno.EACCES, errno.EPERM):
        hint = " (ports below 1024 need privileges"
        hint += "; try --tftp-port 6969)" if name == "tftp" else (f"; pick {option} 1024 or above)" if option
                                                                 else ")")
        kind = "permission"
    elif exc.errno == errno.EADDRINUSE:
        holder = port_holder(port, udp=name == "tftp", host=host)
        hint = f" (held by {holder}" if holder else " (port in use, e.g. by another 'phoneemu lab serve'"
        hint += f": stop it, or pick another {option} (0 = any free port))" if option else ")"
        kind = "in-use"
    else:
        hint = ""
        kind = "unreachable"
    if isinstance(exc, socket.gaierror):  # a --host name that does not resolve: its errno is not errno's
        reason = exc.strerror or str(exc)
    else:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)  # asyncio wraps it in a longer text
    return TransportError(f"cannot listen for {name} on {host_port(host, port)}: {reason}{hint}", kind=kind)


#: at most this many entries of ``/proc`` looked at to name a port's holder — socket table rows and other
#: processes' open files (an error path only; a machine with a million sockets or open files: about 1 s)
_HOLDER_SCAN_LIMIT = 200_000


def port_holder(port: int, *, udp: bool, host: str | None = None, proc: Path = Path("/proc")) -> str | None:
    """``pid 1234 (phoneemu lab serve /tmp/lab ...)``: the other process holding ``port`` (a TCP listener, or
    a UDP socket) on an address that clashes with ``host`` (:func:`_clashes`: the same address, or a
    wildcard; ``host`` None or a name: any address), as Linux's ``/proc`` tells it: the socket's inode in
    ``net/tcp[6]`` / ``net/udp[6]``, then the process with that socket open. None when it cannot be known —
    not Linux, another user's process (its descriptors are not ours to read), this process itself — or after
    :data:`_HOLDER_SCAN_LIMIT` entries looked at (rows and descriptors). Was: any socket of that port number,
    so a lab served on 127.0.0.11 was named for a port taken on 127.0.0.12."""
    wanted = _address(host) if host is not None else None
    looked = 0
    inodes = set()
    for table in ("udp", "udp6") if udp else ("tcp", "tcp6"):
        try:
            with (proc / "net" / table).open("rb") as rows:
                next(rows, None)  # the heading
                for row in rows:
                    looked += 1
                    if looked > _HOLDER_SCAN_LIMIT:
                        return None
                    f = row.split()
                    listening = udp or f[3] == b"0A"  # (0A: TCP's LISTEN)
                    if len(f) < 10 or b":" not in f[1] or f[9] == b"0" or not listening:
                        continue
                    address, _, number = f[1].partition(b":")
                    with contextlib.suppress(ValueError):
                        if int(number, 16) == port and _clashes(_proc_address(address), wanted):
                            inodes.add(f"socket:[{f[9].decode('ascii', 'replace')}]")
        except OSError:
            continue
    if not inodes:
        return None
    try:
        pids = [e.name for e in os.scandir(proc) if e.name.isdigit() and int(e.name) != os.getpid()]
    except OSError:
        return None
    for pid in pids:
        try:
            fds = os.scandir(proc / pid / "fd")
            with fds:
                for fd in fds:
                    looked += 1
                    if looked > _HOLDER_SCAN_LIMIT:
                        return None
                    with contextlib.suppress(OSError):
                        if os.readlink(fd.path) in inodes:
                            return f"pid {pid} ({_command_line(proc / pid)})"
        except OSError:  # gone, or another user's
            continue
    return None


_IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> _IPAddress | None:
    """``text`` as an address (an IPv4-mapped IPv6 one as its IPv4 address); None for a name."""
    try:
        address = ipaddress.ip_address(text.strip().removeprefix("[").removesuffix("]"))
    except ValueError:
        return None
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    return mapped if mapped is not None else address


def _proc_address(text: bytes) -> _IPAddress | None:
    """A ``/proc/net`` table's local address: 8 or 32 hex digits, each 32-bit word in this machine's byte
    order; None when it is neither."""
    if len(text) not in (8, 32):
        return None
    packed = b"".join(struct.pack("=I", int(text[i:i + 8], 16)) for i in range(0, len(text), 8))
    return _address(str(ipaddress.ip_address(packed)))


def _clashes(bound: _IPAddress | None, host: _IPAddress | None) -> bool:
    """Whether a socket bound to ``bound`` keeps a listener on ``host`` from the same port: the same address,
    or either a wildcard of its family, ``::`` of both (dual-stack); None (a name, an unknown row): yes."""
    if bound is None or host is None or bound == host:
        return True
    if host.is_unspecified:
        return host.version == 6 or bound.version == 4 or bound.is_unspecified
    if bound.is_unspecified:
        return bound.version == 6 or host.version == 4
    return False


def _command_line(where: Path) -> str:
    """A process's command line, one printable line of at most 80 characters (its program's path cut to
    its name: ``phoneemu lab serve /tmp/lab ...``, not ``/usr/bin/python3 /usr/local/bin/phoneemu ...``)."""
    try:
        words = [w.decode("utf-8", "replace") for w in (where / "cmdline").read_bytes().split(b"\0") if w]
    except OSError:
        words = []
    if len(words) > 1 and os.path.basename(words[0]).startswith("python") and not words[1].startswith("-"):
        words = words[1:]  # the interpreter of a script: the script names it better
    if words:
        words[0] = os.path.basename(words[0])
    text = printable(" ".join(words)) if words else "?"
    return text if len(text) <= 80 else text[:77] + "..."
