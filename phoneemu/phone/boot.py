"""The phone's boot sequence (spec §C.6, §G, §D, §E.7, §F.1, §H.3): fetch, decide, install, report.

One boot, in order (step 4 comes as soon as a config is accepted, before its steps 2a and 3):

1. **Trust files** (spec §C.6 rows 1-4) in the profile's order (``profile.trust_file_names(mac)``):
   per kind the per-device name (``CTLSEP<MAC>.tlv`` / ``ITLSEP<MAC>.tlv``) first and the generic name
   only when the per-device one was not found (spec §C.6 row 4: ``ITLFile.tlv`` "after ITLSEP is not
   found"). Any other failure of the per-device name (a time-out, an access error, the server gone) ends
   that kind for this boot: the phone keeps what it holds and does not take the cluster's generic file in
   place of a per-device one it could not read (the timeline says the generic name was not asked).
   "File not found" is normal for every trust file
   (status ``File Not Found <CTLFile.tlv>``, informational). Each file goes to
   :func:`~phoneemu.phone.rules.decide_trust_list`; when the rule asks for TVS the phone sends a QUERY
   to the TVS servers of its current config, caches the answer (TTL) and asks the rule again with it
   (``TvsStatus.UNREACHABLE`` when no server answers). An installed trust list flushes the TVS cache
   (spec §E.7.3, done by :meth:`TrustStore.apply`). The phone talks only to a TVS server whose
   certificate matches an ITL TVS record (role 21; :func:`~phoneemu.phone.rules.tvs_server_trusted`,
   spec §E.1, §G.5); when every server reached is refused the answer is
   ``TvsStatus.SERVER_UNTRUSTED`` (rules ``G.3.4-`` / ``G.4-tvs-server-untrusted``).
2. **Config** (spec §C.6 row 5, §G.4, §G.12): the names of
   :func:`~phoneemu.phone.rules.config_request_names` in order; the first one found decides. A short
   config (``encrConfig=true`` or ``fullConfig=false``) goes through
   :func:`~phoneemu.phone.rules.decide_short_config` (certHash compare → fetch ``.enc.sgn``; mismatch →
   CAPF when ``capfAuthMode`` allows, or wait for an auth string). An ``.enc.sgn`` that fails to
   decrypt makes the phone read the short config (the next name) to learn about CAPF. No device
   config at all → auto-registration default config (spec §G.10). An accepted config is acted on (CAPF,
   static files, firmware) only after the §G.9 retries of step 4, which come right after it (ours [INF]).
   **HTTPS first** (spec §H.1, §G.5): when :func:`~phoneemu.phone.rules.https_config_applies` (an EC-capable
   model, an ITL of signer version 1.1 holding a TFTP record with an EC key, not locked) and the boot was
   given a way to TCP 6971 (``https_config``; None: not tried), the phone first asks that port for
   ``SEP<MAC>.cnf.xml.sgn`` and takes the file it serves as the unsigned config. The server's certificate
   must be such a record (:func:`~phoneemu.phone.rules.decide_https_config_server`), else the request is not
   sent. A trusted server's config is decided by :func:`~phoneemu.phone.rules.decide_https_config`
   (``H.1-https-config``) and goes the way a config accepted by §G.4 goes (a short one to §G.12: its
   ``.enc.sgn`` over the normal fetcher); ``fetched_over`` says ``https`` (for a config taken only). A
   refused certificate (``H.1-https-config-server-untrusted``), a file that is no config
   (``H.1-https-config-malformed``) or another device's config (``H.1-https-config-wrong-device``: its
   ``<deviceName>``, ours) is recorded, then the config is asked for the normal way, as above (ours); a
   transport failure (unreachable, refused, a time-out, 404, 5xx, a malformed response) is a timeline note,
   then the normal way: no decision, no status, no failed download (as HTTP 6970 falling back to TFTP).
2a. **Static files** (spec §C.6 row 6, §G.4; seed "File Authentication": "the phone verifies the
   integrity of the files by validating the signature") once a config is accepted and step 4 left the
   phone unlocked: each file the config names (:attr:`DeviceConfig.static_files`: the locale's
   ``g3-tones.xml``, the dial-rule file) is requested as ``<name>.sgn`` with a trust list installed
   (plain without), decided by :func:`~phoneemu.phone.rules.decide_static_file` (the §G.4 signer rules
   of configs, TVS included) and recorded (kind ``static``); a rejected file is not used (report
   ``static``: name → accepted / rejected / not-found / failed). "Not found" is normal and not a decision.
3. **CAPF** (spec §F, §G.12.2/§G.12.4) when the accepted (or short) config has ``capfAuthMode`` ≠ 0 —
   for an accepted config once step 4 left the phone unlocked:
   TLS to the config's CAPF server (port from the XML), :class:`CapfClientSession` with the LSC/MIC per
   the mode's precedence (§F.7) or the entered auth string; key generated as the server asks. The
   CAPF certificate must be a CAPF record of the installed CTL/ITL or be vouched for by TVS with the
   CAPF role (:func:`~phoneemu.phone.rules.decide_capf_server`, spec §F.1, §G.5): an unknown certificate
   makes the phone ask TVS (QUERY, our convention) and, vouched for, connect again at once; otherwise
   the attempt ends before anything is sent and, when it was the last, ``F.1-capf-server-untrusted`` is
   the outcome (the last attempt decides). TVS's answer about a certificate (vouched, unknown) holds for
   the CAPF operation; "TVS unreachable" holds for one attempt only, so a retry asks again. A reconnect
   after the vouch that presents another certificate needing TVS is refused for that attempt.
   A new or deleted LSC makes the phone retrieve its config once more (§G.12.4). Communication
   failures are retried 3 more times, ``capf_retry_delay`` apart (§F.1: 30 s; injectable so scenario
   clocks do not sleep). At most one CAPF operation per boot.
4. **Secure transport** (spec §G.9) for configs in authenticated/encrypted mode, as soon as such a config
   is accepted (before its CAPF operation, static files and firmware; once a boot, not again for the config
   retrieved after CAPF, §G.12.4): without a CUCM certificate in a CTL the phone asks for the CTL until it
   has tried the profile's attempts in all (four: the request of step 1 is the first, so three more), then
   uses TCP. Each retry's trust-file decision is recorded on its own (reason ``§G.9 retry N: ...``); the
   report's ``trust`` outcome for the kind stays the boot's first meaningful one
   (installed/updated/empty/rejected) unless a retry changes the installed list. A retry whose CTL is
   refused locks the phone (§G.3.5) after the config was read: the boot then ignores that config (ours
   [INF], below): steps 2a, 3 and 5 do not run for it.
5. **Firmware** (spec §D), on a phone not locked: when ``loadInformation`` differs from the running load,
   fetch ``<load>.loads`` and decide with :func:`~phoneemu.phone.rules.decide_firmware` against the
   image-signing certificates the phone trusts; failure keeps the running load.

Every decision is recorded (event log, timeline, report — a *pending* "ask TVS" decision only in the
event log and timeline: the report lists final decisions); transport failures become statuses
(spec §H.3 "TFTP timeout", "TFTP error", "TFTP access error") and decisions, never exceptions: the
boot always returns a :class:`BootReport`. Flash is written after each install and at the end.

Decisions the boot itself makes (the rules module has no I/O to decide them), named like the rules:
``H.3-config-transport-failed`` (no config could be fetched: timeouts/errors, not "not found"),
``G.12.5-encrypted-config-missing`` (short config says encrypted, ``.enc.sgn`` not served),
``D-fetch-failed`` (the load named by the config could not be fetched; running load kept),
``F.1-capf-unreachable`` / ``F.1-no-capf-server`` /
``F.1-capf-not-supported``, ``F.7-wait-auth-string`` / ``F.7-no-capf-operation``, and the CAPF outcomes
``F.6-lsc-installed`` / ``F.6-lsc-deleted`` / ``F.6-fetched`` / ``F.6-nothing-pending`` /
``F.6-capf-rejected``.

Our conventions (spec [UNK]/[INF]):

* The TVS certificate cache lives in the phone's RAM across boots of one :class:`Phone` object and
  honours the TTL TVS returned; the "locked" flag is re-evaluated at every boot (flash doc).
* Transport failures of trust files do not lock the phone (the rules decide locking).
* A boot that ends locked acts on nothing it read (spec §G.3.5 "ignores configuration changes"; the
  spec is silent on a lock that comes after the config, [INF]): when a §G.9 retry's CTL is refused, the
  config read this boot is not kept — the phone holds the config it held before the boot (none on first
  contact), the config outcome is ``G.3.5-locked-ignores-config`` (the report not ok, as for a lock in
  step 1) and no firmware is fetched, so nothing registers or upgrades on it. The phone settles its trust
  (the §G.9 retries) before it acts on a config, so nothing the ignored config asks for is done: no CAPF
  operation (no LSC enrolled or deleted, on flash or in RAM), no static file, no load. Only a CAPF
  operation a *short* config asks for (§G.12.2) can precede the lock — the phone needs its LSC to read the
  encrypted config that names its security mode — and it stays done: the lock ignores the config read,
  not the phone's own credential, enrolled by a CAPF server §F.1 authenticated, that the cluster now
  wraps its configs to.
* ``locked_out`` = the phone holds a trust list and a trust-list update was rejected by a rule, or
  the config was refused by a signer rule (§G.3.5 / §G.4).
* ``deciding`` = when the boot ended with an accepted config: the first rejected trust-list, static
  file, CAPF or firmware decision, else the config acceptance; otherwise the first rejected trust list
  (the refusal that locked the phone, also on a §G.9 retry after a CAPF decision of a short config),
  else the first rejection of the boot. An HTTPS config refusal after which the phone went the normal way
  (``H.1-https-config-server-untrusted``, ``-malformed``, ``-wrong-device``) decides only when nothing else
  does: the normal way's outcome is the boot's (ours); it never locks the phone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography import x509

from phoneemu.errors import EncodeError, PhoneEmuError, TransportError, VerifyReason
from phoneemu.formats import config as config_fmt
from phoneemu.formats import firmware as firmware_fmt
from phoneemu.formats.config import DeviceConfig, Server
from phoneemu.formats.trustlist import TrustList, TrustRecord, roles_text
from phoneemu.net.fetch import Fetcher
from phoneemu.phone import rules, status
from phoneemu.phone.events import Decision, EventLog, QueryKey
from phoneemu.phone.profile import PhoneProfile
from phoneemu.phone.store import (
    AcceptedConfig,
    Credential,
    TrustStore,
    TvsAnswer,
    TvsResult,
    TvsStatus,
    query_answer,
)
from phoneemu.phone.ways_out import HeldLists, no_way_out, ways_out_json
from phoneemu.protocols import tvs as tvs_proto
from phoneemu.protocols.capf import CapfClientSession, CapfResult
from phoneemu.values import host_port

__all__ = [
    "AUTH_STRING_WAIT",
    "NO_CAPF_CERTIFICATE",
    "BootReport",
    "BootTarget",
    "CapfRunner",
    "HttpsConfigGetter",
    "TvsAsker",
    "net_capf_runner",
    "net_tvs_asker",
    "run_boot",
    "transport_status",
]

#: Status shown while the phone waits for a CAPF authentication string (ours; spec §F.1 UI).
AUTH_STRING_WAIT = "LSC: waiting for authentication string"


# --------------------------------------------------------------------------- contract types
@dataclass(frozen=True, kw_only=True)
class BootTarget:
    """The cluster DHCP option 150 points at: TFTP ``host:tftp_port``; HTTP 6970 first when ``use_http``;
    the HTTPS config download on ``https_config_port`` (None: 6971, spec §H.1) when ``use_https_config``
    and the phone's rules say so (:func:`~phoneemu.phone.rules.https_config_applies`)."""

    host: str
    tftp_port: int = 69
    http_port: int | None = None
    use_http: bool = True
    https_config_port: int | None = None
    use_https_config: bool = True

    def __post_init__(self) -> None:
        if not self.host:
            raise EncodeError("boot target host must not be empty", path="host")
        for name, port in (("tftp_port", self.tftp_port), ("http_port", self.http_port),
                           ("https_config_port", self.https_config_port)):
            if port is not None and not 0 < port < 65536:
                raise EncodeError(f"{name} {port} outside 1..65535", path=name)

    def __str__(self) -> str:
        http = f", http {self.http_port or 6970}" if self.use_http else ""
        return f"{self.host} (tftp {self.tftp_port}{http})"


#: downloads a boot report lists as failed in transport at most (``BootReport.failed_downloads``)
FAILED_DOWNLOADS_KEPT = 6


@dataclass(frozen=True, kw_only=True)
class BootReport:
    """What one boot ended with (docs/internals.md "Phone ↔ runner/fleet contract")."""

    mac: str
    ok: bool
    trust: dict[str, str]
    config: str
    config_file: str | None
    encrypted: bool
    decisions: tuple[Decision, ...]
    deciding: Decision | None
    statuses: tuple[str, ...]
    firmware: str
    load: str | None
    lsc: str
    locked_out: bool
    tvs_used: bool
    timeline: tuple[str, ...]
    duration_s: float
    target: BootTarget | None = None
    static: dict[str, str] = dataclasses.field(default_factory=dict)
    #: TFTP packets (RRQ or ACK) the phone sent again after a timeout during this boot (RFC 1350, §H.3)
    retransmits: int = 0
    #: file name → the transport it came over this boot ("http", "tftp", "https": 6971; §H.1), for files
    #: received
    fetched_over: dict[str, str] = dataclasses.field(default_factory=dict)
    #: the pending "ask TVS" decisions of this boot (``G.3.4-needs-tvs`` ...), in order: not outcomes, so
    #: not in ``decisions``, but rules the phone applied (a scenario's ``rule:`` check sees them)
    pending: tuple[Decision, ...] = ()
    #: whether any request of this boot got an answer from the cluster (a file, not found, refused, an
    #: error): False when every one timed out or was unreachable (nothing there, or nothing answering)
    answered: bool = True
    #: the downloads of this boot that failed in transport, (file, failure kind: "timeout", "unreachable",
    #: "refused", "error", ...) in order, at most :data:`FAILED_DOWNLOADS_KEPT`; "not found" is no failure
    #: (normal for trust files, §C.6): a phone that booted on what it had says so (a fleet's summary)
    failed_downloads: tuple[tuple[str, str], ...] = ()
    #: the trust lists the phone holds after this boot (a CTL; the rollback ITL), which choose its ways out
    #: (:func:`phoneemu.phone.ways_out.ways_out`): ``ways_out`` of :meth:`as_dict` as the text reads them
    #: from its flash (was: the table's, the rollback ways too, for a phone holding a CTL); None: not known
    held: HeldLists | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (decisions as dicts; reason codes as their stable names)."""
        return {
            "mac": self.mac, "ok": self.ok, "target": str(self.target) if self.target else None,
            "trust": dict(self.trust), "config": self.config, "config_file": self.config_file,
            "encrypted": self.encrypted, "firmware": self.firmware, "load": self.load, "lsc": self.lsc,
            "locked_out": self.locked_out, "tvs_used": self.tvs_used,
            "deciding": decision_dict(self.deciding) if self.deciding is not None else None,
            "decisions": [decision_dict(d) for d in self.decisions],
            "statuses": list(self.statuses), "timeline": list(self.timeline), "static": dict(self.static),
            "retransmits": self.retransmits, "fetched_over": dict(self.fetched_over),
            "answered": self.answered, "duration_s": round(self.duration_s, 4),
            "failed_downloads": [list(f) for f in self.failed_downloads],
            "ways_out": ways_out_json(self.deciding.rule, self.deciding.kind,
                                      reason_code=self.deciding.reason_code, held=self.held)
            if self.locked_out and self.deciding is not None else [],
            # why a lockout has no documented way out (phone.ways_out.NO_WAY_OUT); null when it has ways
            # out or is no lockout
            "no_way_out": no_way_out(self.deciding.rule, self.deciding.kind)
            if self.locked_out and self.deciding is not None else None,
        }


#: the F.6 reason of a CAPF session a phone holding no certificate could not authenticate (capfAuthMode 3, 4,
#: spec §F.7): ``boot``'s no-MIC hint reads it
NO_CAPF_CERTIFICATE = "the phone holds no certificate to authenticate with"

def decision_dict(d: Decision) -> dict[str, Any]:
    """A decision as a JSON-ready dict."""
    return {"rule": d.rule, "accepted": d.accepted, "kind": d.kind, "file": d.file, "signer": d.signer,
            "reason": d.reason, "reason_code": d.reason_code.value if d.reason_code is not None else None,
            "status": d.status, "action": d.action, "pending": d.pending}


class TvsAsker(Protocol):
    """Send a TVS QUERY for ``key`` to ``servers``; TransportError when none answers."""

    def __call__(self, servers: Sequence[Server], key: QueryKey, *, device_name: str,
                 accept_server: Callable[[bytes | None], bool] | None) -> Awaitable[TvsResult]: ...


class CapfRunner(Protocol):
    """Run ``session`` against the CAPF ``server``; TransportError on communication failure."""

    def __call__(self, server: Server, session: CapfClientSession, *,
                 accept_server: Callable[[bytes | None], bool] | None) -> Awaitable[CapfResult]: ...


class HttpsConfigGetter(Protocol):
    """GET ``name`` from the HTTPS config server at :attr:`where` (TCP 6971, spec §H.1): the body of a 200.
    ``accept_server(der)`` judges its certificate before the request is sent; refused, or any failure: a
    TransportError (kind "not-found" for a 404; :class:`phoneemu.phone.https_config.HttpsConfigClient`)."""

    @property
    def where(self) -> str: ...

    def __call__(self, name: str, *, accept_server: Callable[[bytes | None], bool]) -> Awaitable[bytes]: ...


@functools.lru_cache(maxsize=4)
def _hms(now: int) -> str:
    """``HH:MM:SS`` (UTC) of ``now`` for timelines. The last seconds' texts are kept: fleets stamp thousands
    of lines per second, and a second already stamped is found by the cache's C code, no Python call
    (issue #6: ~15 a boot)."""
    return dt.datetime.fromtimestamp(now, dt.UTC).strftime("%H:%M:%S")


#: never a clock's reading: the sentinel of ``_Boot.now``'s ``iter(clock, sentinel)``
_NO_READING = object()

#: Trust-file outcomes a §G.9 retry does not overwrite, and the ones it may overwrite them with.
_MEANINGFUL = frozenset({"installed", "updated", "empty", "rejected"})
#: TransportError kinds that are no answer from the cluster (BootReport.answered)
_NO_ANSWER = frozenset({"timeout", "unreachable"})
#: refusals of the HTTPS config download after which the phone asks the normal way (module docstring)
_HTTPS_CONFIG_FELL_BACK = frozenset({"H.1-https-config-server-untrusted", "H.1-https-config-malformed",
                                     "H.1-https-config-wrong-device"})
_CHANGES = frozenset({"installed", "updated", "empty"})


def net_tvs_asker(*, timeout: float = 5.0, tls_versions: Sequence[str] = ("1.2", "1.3"),
                  keylog: str | None = None) -> TvsAsker:
    """TVS over TLS with failover (:mod:`phoneemu.net.tvs_client`), in the profile's TLS versions: the
    phone's TLS context (one per versions and key log, :func:`~phoneemu.net.tls.phone_client_context`)
    looked up at the first question, not at each (a fleet's askers are shared: issue #6)."""
    contexts: list[ssl.SSLContext] = []

    async def ask(servers: Sequence[Server], key: QueryKey, *, device_name: str,
                  accept_server: Callable[[bytes | None], bool] | None) -> TvsResult:
        from phoneemu.net.tvs_client import tvs_query
        if not contexts:
            from phoneemu.net.tls import phone_client_context
            contexts.append(phone_client_context(tls_versions, keylog))
        reply = await tvs_query(servers, device_name, key.subject, key.issuer, key.serial, timeout=timeout,
                                accept_server=accept_server, tls=contexts[0])
        return query_answer(reply)
    return ask


def net_capf_runner(*, timeout: float = 30.0, tls_versions: Sequence[str] = ("1.2", "1.3"),
                    keylog: str | None = None) -> CapfRunner:
    """CAPF over TLS (:mod:`phoneemu.net.capf_client`); each read bounded by ``timeout``, the whole
    session by ``4 * timeout`` plus the phone's own key generation time (a profile's
    ``capf_keygen_seconds``, spec §F.8: not charged to the server). The TLS context is looked up at the
    first session and held by the runner, as :func:`net_tvs_asker` holds its own (one with a key log is
    kept only while held: a fleet's runner built one per phone)."""
    contexts: list[ssl.SSLContext] = []

    async def run(server: Server, session: CapfClientSession, *,
                  accept_server: Callable[[bytes | None], bool] | None) -> CapfResult:
        from phoneemu.net.capf_client import capf_session
        if not contexts:
            from phoneemu.net.tls import phone_client_context
            contexts.append(phone_client_context(tls_versions, keylog))
        bound = 4 * timeout + session.keygen_seconds  # the phone's own key generation not charged
        try:
            outcome = await asyncio.wait_for(
                capf_session(server, session, timeout=timeout, accept_server=accept_server,
                             tls=contexts[0]), bound)
        except TimeoutError:
            raise TransportError(f"{host_port(server.host, server.port)}: CAPF session longer than "
                                 f"{bound:g}s",
                                 kind="timeout") from None
        return outcome.result
    return run


def transport_status(exc: TransportError) -> str:
    """The §H.3 status text for a transport failure."""
    if exc.kind == "timeout":
        return status.TFTP_TIMEOUT
    if exc.kind == "refused":
        return status.TFTP_ACCESS_ERROR
    return status.TFTP_ERROR


# --------------------------------------------------------------------------- the sequence
def _trust_kind(name: str) -> str:
    """``CTL`` for ``CTLSEP<MAC>.tlv`` / ``CTLFile.tlv``, else ``ITL``."""
    return "CTL" if name.upper().startswith("CTL") else "ITL"


class _Fail:
    """A failed fetch: the transport error (``not_found`` for "file not found")."""

    __slots__ = ("error",)

    def __init__(self, error: TransportError) -> None:
        self.error = error

    @property
    def not_found(self) -> bool:
        return self.error.kind == "not-found"


@dataclass(slots=True)
class _CapfServerCheck:
    """§F.1, §G.5 for one connection to a CAPF server: the ``accept_server`` callback. It decides the
    certificate the server presents (``decide``: :func:`rules.decide_capf_server`) and keeps what was
    presented and decided, so a refused connection can say which decision refused it."""

    decide: Callable[[bytes], Decision]
    presented: bytes | None = None
    decision: Decision | None = None

    def __call__(self, der: bytes | None) -> bool:
        self.presented = der or b""
        self.decision = self.decide(self.presented)
        return self.decision.accepted

    def refused_by(self, exc: TransportError) -> Decision | None:
        """The decision that refused the server when ``exc`` is the TLS client's refusal, else None."""
        refused = exc.kind == "tls" and "not accepted" in exc.message
        d = self.decision
        return d if refused and d is not None and not d.accepted else None


@dataclass(slots=True)
class _HttpsConfigCheck:
    """§H.1, §G.5 for the one connection to the HTTPS config server: the ``accept_server`` callback,
    keeping the decision (:func:`rules.decide_https_config_server`) about the certificate presented."""

    decide: Callable[[bytes | None], Decision]
    decision: Decision | None = None

    def __call__(self, der: bytes | None) -> bool:
        self.decision = self.decide(der)
        return self.decision.accepted


@dataclass(frozen=True, kw_only=True)
class _CapfFailed:
    """A CAPF attempt that ended without a result: the timeline note, the message for
    ``F.1-capf-unreachable``, and the §F.1 decision that refused the server when that was the cause."""

    note: str
    message: str
    refused: Decision | None = None


class _Boot:
    def __init__(self, *, mac: str, profile: PhoneProfile, store: TrustStore, fetcher: Fetcher,
                 clock: Callable[[], int], events: EventLog, image_signers: Sequence[x509.Certificate],
                 tvs: TvsAsker, capf: CapfRunner, auth_string: str | None, capf_retries: int,
                 capf_retry_delay: float, save: Callable[[TrustStore], None] | None,
                 sleep: Callable[[float], Awaitable[None]],
                 https_config: HttpsConfigGetter | None = None) -> None:
        self.mac = mac
        self.device_name = config_fmt.device_name_for(mac)
        self.profile = profile
        self.store = store
        self.fetcher = fetcher
        self.clock = clock
        #: ``int(clock())`` at each call, built of C callables (``iter`` calls the clock, ``map`` applies
        #: ``int``): a read runs no Python of ours, where a method ran one for each of a boot's ~27 reads
        #: (issue #6). The clock's own errors come through as they are.
        self.now: Callable[[], int] = map(int, iter(clock, _NO_READING)).__next__
        self.events = events
        self.image_signers = tuple(image_signers)
        self.tvs = tvs
        self.capf = capf
        self.https_config = https_config
        self.auth_string = auth_string
        self.capf_retries = capf_retries
        self.capf_retry_delay = capf_retry_delay
        self.save_cb = save
        self.sleep = sleep
        self.decisions: list[Decision] = []
        self.pending: list[Decision] = []
        self.statuses: list[str] = []
        self.timeline: list[str] = []
        self.trust: dict[str, str] = {}
        self.tvs_used = False
        self.tvs_failure: str | None = None  # why the last TVS question got no answer (server, error)
        self.tvs_too_large: str | None = None  # the last QUERY could not be sent at all (spec §E.2)
        self.lsc: str | None = None
        self.capf_done = False
        self.secure_transport_done = False  # the §G.9 retries are made once a boot (secure_transport)
        self.config = "none"
        self.config_file: str | None = None
        self.config_decision: Decision | None = None
        self.encrypted = False
        self.firmware = "none"
        self.static: dict[str, str] = {}
        self.retransmits = 0
        self.fetched_over: dict[str, str] = {}
        self.answered = False  # BootReport.answered
        self.failed_downloads: list[tuple[str, str]] = []  # BootReport.failed_downloads
        self.flash_problems: tuple[str, ...] = ()
        #: the config files decided this boot, name -> bytes served (a config a lock makes the boot ignore
        #: is decided again by name: ``ignore_config_read``)
        self.config_served: dict[str, bytes] = {}
        #: the ITL this boot refused last (bytes served), which tells whether the bulk ITL reset can help
        #: (``BootReport.held``: :meth:`phoneemu.phone.ways_out.HeldLists.after_boot`)
        self.refused_itl: bytes | None = None
        #: the CTL this boot refused last (bytes served), which tells whether the CTL reset can help (the
        #: same; kept on a rejection only: a boot that refused nothing does no more)
        self.refused_ctl: bytes | None = None
        #: what the store held before this boot: config, its rule, the pending CAPF auth mode
        self.config_held = (store.config, store.config_rule, store.capf_auth_mode)

    # ------------------------------------------------------------------ recording
    def note(self, kind: str, text: str, *, file: str | None = None) -> None:
        now = self.now()  # one clock read for the event and its timeline line
        self.events.note(time=now, phone=self.mac, kind=kind, file=file, detail=text)
        self.timeline.append(f"{_hms(now)} {file + ': ' if file else ''}{text}")

    def show(self, text: str) -> None:
        self.statuses.append(text)
        self.events.status(text)
        self.timeline.append(f"{_hms(self.now())} status: {text}")

    def record(self, d: Decision) -> None:
        """Record ``d`` (event log, timeline; the report unless pending) and apply it unless pending. One
        clock read for the event and its timeline lines, the status shown included (as :meth:`note`)."""
        pending = d.needs_tvs is not None  # (d.pending, without the property's call: issue #6)
        (self.pending if pending else self.decisions).append(d)
        now = self.now()
        self.events.log(d, time=now, phone=self.mac)
        verdict = "pending" if pending else ("accepted" if d.accepted else "rejected")
        who = f" (signer {d.signer})" if d.signer else ""
        where = d.file or d.kind or "-"
        stamp = _hms(now)
        self.timeline.append(f"{stamp} {where}: {d.rule} {verdict}{who}: {d.reason}")
        if pending:
            return
        shown = self.store.apply(d)
        if shown:
            self.statuses.append(shown)
            self.timeline.append(f"{stamp} status: {shown}")

    def save(self) -> None:
        if self.save_cb is None:
            return
        try:
            self.save_cb(self.store)
        except OSError as exc:
            self.note("flash", f"flash write failed: {exc}")

    # ------------------------------------------------------------------ I/O helpers
    async def fetch(self, name: str) -> bytes | _Fail:
        fetcher = self.fetcher
        self.events.note(time=self.now(), phone=self.mac, kind="request", file=name)
        # the fetcher's TFTP retransmissions so far (``Fetcher.retransmits``; 0 when it keeps none)
        before = int(getattr(fetcher, "retransmits", 0))
        try:
            data = await fetcher.fetch(name)
        except TransportError as exc:
            http: TransportError | None = getattr(fetcher, "last_fallback", None)  # HTTP, then TFTP
            self.answered |= exc.kind not in _NO_ANSWER or (http is not None and http.kind not in _NO_ANSWER)
            return _Fail(self._with_fallback(exc))
        except PhoneEmuError as exc:
            self.answered = True
            return _Fail(self._with_fallback(TransportError(f"{exc}", kind="protocol", path=name)))
        except OSError as exc:
            return _Fail(self._with_fallback(TransportError(f"{exc}", kind="error", path=name)))
        finally:
            sent_again = int(getattr(fetcher, "retransmits", 0)) - before
            self.retransmits += sent_again
        self.answered = True
        again = f" ({sent_again} TFTP retransmission{'s' if sent_again != 1 else ''})" if sent_again else ""
        fell_back = self._fallback_text() if getattr(fetcher, "last_fallback", None) is not None else ""
        self.note("fetched", f"{len(data)} bytes{fell_back}{again}", file=name)
        over = getattr(fetcher, "transport", "")
        if over:
            self.fetched_over[name] = over
        return data

    def _fallback_text(self) -> str:
        """`` over TFTP (HTTP 6970 failed: ...)`` when the last fetch fell back from HTTP (§H.1), else ""; the
        port named is the one tried (``--http-port``), not always 6970."""
        exc: TransportError | None = getattr(self.fetcher, "last_fallback", None)
        if exc is None:
            return ""
        port = getattr(getattr(self.fetcher, "http", None), "port", 6970)
        return f" over TFTP (HTTP {port} {exc.kind}: {exc.message})"

    def _with_fallback(self, exc: TransportError) -> TransportError:
        """A TFTP failure after an HTTP fallback names the HTTP failure too (the user sees both)."""
        text = self._fallback_text()
        if not text or exc.kind == "not-found":
            return exc
        return TransportError(f"{exc.message}{text}", kind=exc.kind, path=exc.path, code=exc.code)

    def fetch_failed(self, name: str, fail: _Fail, *, trust_file: bool) -> None:
        if fail.not_found:
            self.note("not-found", "file not found", file=name)
            if trust_file:
                self.show(status.file_not_found(name))
            return
        self.note("transport", f"{fail.error.kind}: {fail.error.message}", file=name)
        self.show(transport_status(fail.error))
        failed = (name, fail.error.kind)
        if len(self.failed_downloads) < FAILED_DOWNLOADS_KEPT and failed not in self.failed_downloads:
            self.failed_downloads.append(failed)

    async def ask_tvs(self, key: QueryKey) -> TvsResult:
        """QUERY the config's TVS servers about ``key`` (spec §E.7.2); cache an answer about it.

        A QUERY whose signer subject + issuer do not fit the frame (uint16 body length, spec §E.2) is not
        sent: ``TvsStatus.UNREACHABLE`` with :attr:`tvs_too_large` saying why, which
        :meth:`decide_with_tvs` makes the deciding reason (reason code ``too-large``), never "TVS
        unreachable" nor "TVS exchange failed" (the codec's EncodeError). The timeline says it in order: the
        servers to try (``connecting to HOST:PORT, ...``), a refused one by its ``HOST:PORT`` (``not used``),
        and ``QUERY ... to HOST:PORT`` once a server's certificate is accepted and the QUERY goes to it (an
        asker that judges none: once it answers)."""
        servers = self.store.tvs_servers
        self.tvs_used = True
        self.tvs_too_large = None
        from phoneemu.net.tvs_client import server_judged, server_order  # (lazy: the I/O module)

        device = tvs_proto.phone_device_name(self.profile.model, self.device_name)  # CP-8861-SEP<MAC> (§E.4)
        if not tvs_proto.query_request_fits(device, key.subject, key.issuer, key.serial):
            self.tvs_too_large = (
                f"device name, signer subject and issuer ({len(device)}, {len(key.subject)} and "
                f"{len(key.issuer)} characters) do not fit a TVS QUERY request (body at most "
                f"{tvs_proto.MAX_FRAME - tvs_proto.HEADER_SIZE} bytes, spec §E.2): TVS not asked, the signer "
                "cannot be vouched for")
            self.note("tvs", self.tvs_too_large)
            return TvsStatus.UNREACHABLE
        where = ", ".join(host_port(h, p) for h, p in server_order(servers))  # in the order they are tried
        about = f"{key.subject} (serial {key.serial.hex().upper()})"
        query = f"QUERY {about}"
        # in the order it happens: the servers tried, each refused one not used, the QUERY only when sent
        # (was "QUERY ... to HOST:PORT" first, then "... not used": read as sent, it was not)
        self.note("tvs", f"asking TVS about {about}: connecting to {where}")
        check = rules.TvsServerCheck(self.store)
        sent: list[str] = []  # the servers a QUERY went to (their certificate accepted)

        def accept(der: bytes | None) -> bool:
            ok = check(der)
            server = server_judged()  # None only from an asker other than phoneemu.net.tvs_client
            if ok:
                sent.append(server or where)
                self.note("tvs", f"{query} to {server or where}")
            else:
                self.note("tvs", f"TVS server {server + ' ' if server else ''}certificate is not an ITL TVS "
                                 "record: not used (spec E.1)")
            return ok

        try:
            answer = await self.tvs(servers, key, device_name=device, accept_server=accept)
            if not sent:  # an asker that judges no server certificate (predict's, replay's offline TVS)
                self.note("tvs", f"{query} to {where}")
        except TransportError as exc:
            self.tvs_failure = exc.message
            if check.refused:  # servers were reached, and every one was refused
                self.note("tvs", f"no trusted TVS server ({exc.kind}): {exc.message}")
                return TvsStatus.SERVER_UNTRUSTED
            self.note("tvs", f"TVS unreachable ({exc.kind}): {exc.message}")
            return TvsStatus.UNREACHABLE
        except (PhoneEmuError, OSError) as exc:
            self.tvs_failure = f"TVS exchange failed: {exc}"
            self.note("tvs", self.tvs_failure)
            return TvsStatus.UNREACHABLE
        if isinstance(answer, TvsAnswer):
            self.note("tvs", f"TVS knows the certificate, roles {roles_text(answer.roles)}, "
                             f"TTL {answer.ttl}s")
            if (other := answer.mismatch(key)) is not None:  # refused by the rules, and by the cache
                self.note("tvs", f"{other}: not the certificate asked about, not cached")
            self.store.cache_tvs(key, answer, self.now())  # the verdict above is kept on the answer
        else:
            self.note("tvs", f"TVS answer: {answer.value}")
        return answer

    async def decide_with_tvs(self, decide: Callable[[TvsResult | None], Decision]) -> Decision:
        """Run a rule; when it asks for TVS, record the pending decision, ask, and run it again. A decision
        that TVS gave no answer names why (``... (no TVS server answered: 10.0.0.5:2445: cannot connect:
        ...)``): a fleet summary shows the deciding reason only, not the phone's timeline."""
        d = decide(None)
        if d.needs_tvs is not None:  # (d.pending, without the property's call: issue #6)
            self.record(d)
            answer = await self.ask_tvs(d.needs_tvs)
            d = decide(answer)
            if answer is TvsStatus.UNREACHABLE and self.tvs_too_large and not d.accepted:
                # no "<section>-tvs-query-too-large" id: a signed header's names fit its uint16 length
                # (§A.2), so they fit a QUERY from every CP-<4 digits> model (§E.2, §E.4); only a profile
                # with a model name of ~1,500 characters gets here. The "unreachable" rule carries the
                # reason and code of what happened
                d = dataclasses.replace(d, reason=self.tvs_too_large, reason_code=VerifyReason.TOO_LARGE)
            elif answer in (TvsStatus.UNREACHABLE, TvsStatus.SERVER_UNTRUSTED) and self.tvs_failure \
                    and not d.accepted:
                d = dataclasses.replace(d, reason=f"{d.reason} ({self.tvs_failure})")
        if "tvs" in d.rule:
            self.tvs_used = True
        return d

    # ------------------------------------------------------------------ 1. trust files
    async def trust_phase(self, kinds: frozenset[str] = frozenset({"CTL", "ITL"}), *, retry: int = 0) -> None:
        """Fetch and decide the trust files; ``retry`` > 0 for the §G.9 retries (their decisions say so,
        and they replace the boot's outcome for a kind only with a change: installed/updated/empty)."""
        names = self.profile.trust_file_names(self.mac)
        done: set[str] = set()  # kinds fetched, or ended by a failure other than "not found"
        for i, name in enumerate(names):
            kind = _trust_kind(name)
            if kind not in kinds or kind in done:
                continue
            got = await self.fetch(name)
            if isinstance(got, _Fail):
                self.fetch_failed(name, got, trust_file=True)
                if not got.not_found:  # §C.6: the next name of the kind only after "not found"
                    done.add(kind)
                    for later in (n for n in names[i + 1:] if _trust_kind(n) == kind):
                        self.note("not-asked", f"not asked: {name} failed ({got.error.kind}), not "
                                  "\"not found\" (spec §C.6)", file=later)
                continue
            done.add(kind)
            await self.install_trust(kind, name, got, retry=retry)

    def _trust_outcome(self, kind: str, outcome: str, *, retry: int) -> None:
        """The boot's outcome for ``kind``: a §G.9 retry keeps an earlier meaningful outcome
        (installed/updated/empty/rejected) unless the retry itself changed the installed list."""
        if retry and self.trust.get(kind) in _MEANINGFUL and outcome not in _CHANGES:
            return
        self.trust[kind] = outcome

    async def install_trust(self, kind: str, name: str, data: bytes, *, retry: int = 0) -> None:
        before = self.store.trust_list(kind)
        k: rules.TrustKind = "CTL" if kind == "CTL" else "ITL"
        d = await self.decide_with_tvs(lambda ans: rules.decide_trust_list(
            self.store, data, kind=k, profile=self.profile, now=self.now(), tvs_answer=ans, file=name))
        if retry:
            d = dataclasses.replace(d, reason=f"§G.9 retry {retry}: {d.reason}")
        cache = self.store.tvs_cache_size
        self.record(d)
        after = self.store.trust_list(kind)
        if d.accepted and after is not before and after is not None:
            self._trust_outcome(kind, "empty" if after.is_empty else ("installed" if before is None else
                                                                       "updated"), retry=retry)
            if cache:
                self.note("tvs", "TVS Certificate cache flush request")
            self.save()
        elif d.accepted:
            self._trust_outcome(kind, "unchanged", retry=retry)
        elif d.reason_code is None:  # a legacy phone ignoring the ITL: not a rejection
            self.trust.setdefault(kind, "unchanged" if before is not None else "absent")
        else:
            self._trust_outcome(kind, "rejected", retry=retry)
            self.refused_itl = data if k == "ITL" else self.refused_itl
            self.refused_ctl = data if k == "CTL" else self.refused_ctl

    # ------------------------------------------------------------------ 2. config
    async def config_phase(self) -> None:
        for _round in range(2):
            retry = await self.config_round()
            if not retry:
                return
            self.note("config", "LSC changed: retrieving the configuration again (spec §G.12.4)")

    async def decide_config(self, name: str, data: bytes) -> Decision:
        self.config_served[name] = data
        return await self.decide_with_tvs(lambda ans: rules.decide_config(
            self.store, name, data, profile=self.profile, now=self.now(), tvs_answer=ans))

    def accept_config(self, d: Decision) -> None:
        self.record(d)
        self.config, self.config_file, self.config_decision = "accepted", d.file, d
        self.encrypted = d.file.endswith(".enc.sgn")
        self.save()

    def reject_config(self, d: Decision) -> None:
        if d not in self.decisions:
            self.record(d)
        self.config, self.config_file, self.config_decision = "rejected", d.file, d

    async def config_round(self) -> bool:
        """One retrieval; True when CAPF changed the LSC and the phone should retrieve again."""
        over_https = await self.https_config_round()
        if over_https is not None:
            return over_https
        names = rules.config_request_names(self.store, self.profile, self.mac)
        found = False
        failures: list[_Fail] = []
        enc_failure: Decision | None = None
        for i, name in enumerate(names):
            got = await self.fetch(name)
            if isinstance(got, _Fail):
                self.fetch_failed(name, got, trust_file=False)
                failures.append(got)
                continue
            found = True
            d = await self.decide_config(name, got)
            if not d.accepted:
                if name.endswith(".enc.sgn") and d.action == "start-capf" and i + 1 < len(names):
                    self.record(d)  # §G.12.3 decrypt failed: read the short config to learn about CAPF
                    enc_failure = d
                    continue
                self.reject_config(d)
                return False
            art = d.artefact
            assert isinstance(art, AcceptedConfig)
            cfg = art.config
            if name.endswith(".enc.sgn") or (cfg.full_config and not cfg.encr_config):
                self.accept_config(d)
                return await self.act_on_config(cfg)
            return await self.short_config(d, cfg, enc_failure)
        if enc_failure is not None:
            self.reject_config(enc_failure)
        elif not found and all(f.not_found for f in failures):
            await self.auto_registration()
        elif not found:
            err = next(f.error for f in failures if not f.not_found)
            self.reject_config(Decision(
                rule="H.3-config-transport-failed", accepted=False, file=names[-1], kind="config",
                reason=f"no config could be fetched: {err.kind}: {err.message}",
                reason_code=VerifyReason.OTHER))
            self.config = "none"
        return False

    async def https_config_round(self) -> bool | None:
        """§H.1 (module docstring, step 2 "HTTPS first"): the config over TCP 6971 when the rules say so and
        the boot has a way there; :meth:`config_round`'s answer once a config came over it, None when the
        phone asks the normal way (not tried, refused, no config, a transport failure)."""
        getter = self.https_config
        if getter is None or not rules.https_config_applies(self.store, self.profile):
            return None
        name = config_fmt.config_file_name(self.mac, "plain") + ".sgn"
        where = getter.where
        check = _HttpsConfigCheck(lambda der: rules.decide_https_config_server(self.store, der, file=name,
                                                                             server=where))
        self.events.note(time=self.now(), phone=self.mac, kind="request", file=name)
        normal = "the config is asked for over HTTP/TFTP"
        try:
            body = await getter(name, accept_server=check)
        except TransportError as exc:
            refused = check.decision if check.decision is not None and not check.decision.accepted else None
            if refused is not None:
                self.record(refused)
                self.note("https-config", f"HTTPS {where}: server not trusted: {normal}", file=name)
            else:
                self.note("https-config", f"HTTPS {where} {exc.kind}: {exc.message}: {normal}", file=name)
            self.answered |= exc.kind not in _NO_ANSWER
            return None
        except (PhoneEmuError, OSError) as exc:
            self.note("https-config", f"HTTPS {where} error: {exc}: {normal}", file=name)
            return None
        self.answered = True
        self.note("fetched", f"{len(body)} bytes over HTTPS ({where}, spec §H.1)", file=name)
        server = check.decision
        if server is None or not server.accepted:  # a getter (not ours) that had no certificate judged
            self.record(server or rules.decide_https_config_server(self.store, None, file=name, server=where))
            self.note("https-config", f"HTTPS {where}: server not trusted: {normal}", file=name)
            return None
        d = rules.decide_https_config(self.store, name, body, server=server)
        if not d.accepted:
            self.record(d)
            self.note("https-config", normal, file=name)
            return None
        self.config_served[name] = body
        # only a config taken came over HTTPS: a refused body is not the file the boot names (it said
        # "config: none (SEP<MAC>.cnf.xml.sgn) over HTTPS" when the normal way then got nothing)
        self.fetched_over[name] = "https"
        art = d.artefact
        assert isinstance(art, AcceptedConfig)
        cfg = art.config
        if cfg.full_config and not cfg.encr_config:
            self.accept_config(d)
            return await self.act_on_config(cfg)
        return await self.short_config(d, cfg, None)

    async def short_config(self, d: Decision, cfg: DeviceConfig, enc_failure: Decision | None) -> bool:
        """§G.12 steps 1-3 from a short config accepted by the signer rules (not installed itself)."""
        sd = rules.decide_short_config(self.store, cfg, profile=self.profile, file=d.file)
        if sd.accepted and sd.action != "fetch-encrypted":
            self.accept_config(d)  # G.12.1: encrConfig=false: this config is the one to use
            self.record(sd)
            return await self.act_on_config(cfg)
        self.record(Decision(rule=d.rule, accepted=True, reason=f"short config read: {d.reason}",
                             file=d.file, signer=d.signer, kind="config"))
        self.record(sd)
        if sd.action == "fetch-encrypted":
            if enc_failure is not None:
                self.reject_config(enc_failure)
                return await self.capf_if_asked(cfg, forced=True)
            enc = config_fmt.config_file_name(self.mac, "enc")
            got = await self.fetch(enc)
            if isinstance(got, _Fail):
                self.fetch_failed(enc, got, trust_file=False)
                self.reject_config(rules.encrypted_config_missing(enc, transport=got.error.kind,
                                                                  not_found=got.not_found))
                return False
            d2 = await self.decide_config(enc, got)
            if d2.accepted:
                self.accept_config(d2)
                art = d2.artefact
                assert isinstance(art, AcceptedConfig)
                return await self.act_on_config(art.config)
            self.reject_config(d2)
            if d2.action == "start-capf":
                return await self.capf_if_asked(cfg, forced=True)
            return False
        self.config, self.config_file, self.config_decision = "rejected", d.file, sd
        if sd.action in ("start-capf", "wait-auth-string"):
            return await self.capf_if_asked(cfg, forced=True)
        return False

    async def auto_registration(self) -> None:
        """§G.10: no device config → the default config (signed when a trust list is installed)."""
        probe = rules.decide_auto_registration(self.store, profile=self.profile, device_config_found=False,
                                               default_config_found=False)
        name = probe.file
        got = await self.fetch(name)
        if isinstance(got, _Fail):
            self.fetch_failed(name, got, trust_file=False)
            self.record(probe)
            self.config, self.config_file, self.config_decision = "none", None, probe
            return
        self.record(rules.decide_auto_registration(self.store, profile=self.profile,
                                                   device_config_found=False, default_config_found=True))
        d = await self.decide_config(name, got)
        if d.accepted:
            self.accept_config(d)
        else:
            self.reject_config(d)

    async def act_on_config(self, cfg: DeviceConfig) -> bool:
        """The accepted config ``cfg`` is acted on only once the phone's trust is settled (ours [INF], module
        docstring): the §G.9 retries first; a retry's refused CTL locks the phone (§G.3.5), which then asks
        for no CAPF operation. Else CAPF when ``cfg`` asks; True when the LSC changed (§G.12.4)."""
        await self.secure_transport(cfg)
        if self.store.locked:
            return False
        return await self.capf_if_asked(cfg)

    # ------------------------------------------------------------------ 3. CAPF
    async def capf_if_asked(self, cfg: DeviceConfig, *, forced: bool = False) -> bool:
        """Run CAPF when ``cfg`` asks (capfAuthMode ≠ 0); True when the LSC changed."""
        mode = cfg.capf_auth_mode
        if self.capf_done or (mode == 0 and not forced):
            return False
        if mode == 0:
            self.record(Decision(rule="F.7-no-capf-operation", accepted=False, file="", kind="capf",
                                 reason="the config asks for no CAPF operation (capfAuthMode 0): the phone "
                                 "cannot obtain a certificate the cluster knows",
                                 reason_code=VerifyReason.OTHER))
            return False
        if not self.profile.capf or not self.profile.pki_capable:
            self.record(Decision(rule="F.1-capf-not-supported", accepted=False, file="", kind="capf",
                                 reason=f"{self.profile.name} has no CAPF client",
                                 reason_code=VerifyReason.OTHER))
            return False
        if not cfg.capf_servers:
            self.record(Decision(rule="F.1-no-capf-server", accepted=False, file="", kind="capf",
                                 reason="capfAuthMode set but no <capfList> server",
                                 reason_code=VerifyReason.OTHER))
            return False
        if mode == 1 and not self.auth_string:
            self.show(AUTH_STRING_WAIT)
            self.record(Decision(rule="F.7-wait-auth-string", accepted=False, file="", kind="capf",
                                 reason="CAPF by authentication string: no string entered on the phone",
                                 reason_code=VerifyReason.OTHER, action="wait-auth-string"))
            return False
        self.capf_done = True
        return await self.run_capf(cfg, mode)

    def _capf_session(self, mode: int) -> CapfClientSession:
        lsc, mic = self.store.lsc, self.store.mic
        first, second = (lsc, mic) if mode != 4 else (mic, lsc)
        cred: Credential | None = first or second
        return CapfClientSession(
            device_name=self.device_name, auth_string=self.auth_string or "", auth_mode=mode,
            cert_der=cred.cert_der if cred else None, cert_key=cred.key() if cred else None,
            current_lsc=lsc.cert_der if lsc else None,
            now=dt.datetime.fromtimestamp(self.now(), dt.UTC),  # an LSC outside its validity is refused
            max_rsa_bits=self.profile.max_rsa_bits, ec_support=self.profile.ec_support,  # keys it can make
            keygen_seconds=self.profile.capf_keygen_seconds,  # how long it takes (spec §F.8)
            in_progress_every=self.profile.capf_in_progress_seconds)

    async def run_capf(self, cfg: DeviceConfig, mode: int) -> bool:
        """§F.1: the CAPF operation; a communication failure (a refused CAPF server included) is retried
        ``capf_retries`` more times, ``capf_retry_delay`` apart, over the servers in priority order. The
        last attempt's failure decides: the §F.1 decision that refused its server, else
        ``F.1-capf-unreachable``. TVS answers about a certificate (vouched, or unknown to TVS) hold for
        it for the whole operation; "no answer" (TVS unreachable or untrusted,
        :attr:`TvsStatus.unanswered`) holds only for the attempt it came in, so a retry asks TVS again."""
        servers = sorted(cfg.capf_servers, key=lambda s: s.priority)
        known: dict[bytes, TvsResult] = {}
        failed: _CapfFailed | None = None
        for attempt in range(1 + self.capf_retries):
            if attempt:
                self.note("capf", f"CAPF retry {attempt} of {self.capf_retries} after "
                          f"{self.capf_retry_delay:g}s")
                await self.sleep(self.capf_retry_delay)
            server = servers[attempt % len(servers)]
            self.note("capf", f"CAPF session with {host_port(server.host, server.port)} (auth mode {mode})")
            got = await self.capf_attempt(server, mode, known)
            if isinstance(got, CapfResult):
                return self.capf_result(got, mode)
            failed = got
            self.note("capf", failed.note)
        assert failed is not None
        after = f"after {1 + self.capf_retries} attempts"
        if failed.refused is not None:
            self.record(dataclasses.replace(failed.refused, reason=f"{after}: {failed.refused.reason}"))
        else:
            self.record(Decision(rule="F.1-capf-unreachable", accepted=False, file="", kind="capf",
                                 reason=f"{after}: {failed.message}", reason_code=VerifyReason.OTHER))
        return False

    async def capf_attempt(self, server: Server, mode: int,
                           known: dict[bytes, TvsResult]) -> CapfResult | _CapfFailed:
        """One attempt (§F.1, §G.5): connect; when :func:`rules.decide_capf_server` asks for TVS about the
        certificate presented, ask (QUERY) and, vouched for, connect again at once. Otherwise the refusal
        stands for this attempt. ``known`` holds the operation's answers about certificates; this attempt
        adds its answer there unless it is "no answer" (kept for this attempt only). One TVS question per
        attempt (our convention): a reconnect presenting another certificate that needs TVS is refused
        (``vouched_for`` of :func:`rules.decide_capf_server`), and the next attempt asks about it."""
        where = host_port(server.host, server.port)
        answers = dict(known)

        def decide(der: bytes, vouched_for: str | None = None) -> Decision:
            return rules.decide_capf_server(self.store, der, profile=self.profile, now=self.now(),
                                            tvs_answer=answers.get(der), server=where,
                                            vouched_for=vouched_for)

        check = _CapfServerCheck(decide)
        got = await self.capf_connect(server, mode, check)
        if check.decision is not None and check.decision.accepted:  # a rule applied: the report says so
            self.record(check.decision)
        if not isinstance(got, _CapfFailed) or got.refused is None or not got.refused.pending:
            return got
        assert got.refused.needs_tvs is not None and check.presented is not None
        self.record(got.refused)
        answer = answers[check.presented] = await self.ask_tvs(got.refused.needs_tvs)
        if not (isinstance(answer, TvsStatus) and answer.unanswered):
            known[check.presented] = answer
        d = decide(check.presented)
        if not d.accepted:
            return dataclasses.replace(got, refused=d)
        self.record(d)
        return await self.capf_connect(server, mode,
                                       _CapfServerCheck(functools.partial(decide, vouched_for=d.signer)))

    async def capf_connect(self, server: Server, mode: int,
                           check: _CapfServerCheck) -> CapfResult | _CapfFailed:
        """One TLS connection and CAPF session, ``check`` judging the server's certificate."""
        try:
            return await self.capf(server, self._capf_session(mode), accept_server=check)
        except TransportError as exc:
            return _CapfFailed(note=f"CAPF {exc.kind}: {exc.message}", message=exc.message,
                               refused=check.refused_by(exc))
        except (PhoneEmuError, OSError) as exc:
            return _CapfFailed(note=f"CAPF error: {exc}", message=str(exc))

    def capf_result(self, result: CapfResult, mode: int) -> bool:
        out = result.outcome
        if out == "installed" and result.certificate is not None and result.key is not None:
            self.store.lsc = Credential.of_der(result.certificate, result.key)
            self.lsc = "installed"
            self.auth_string = None
            self.record(Decision(rule="F.6-lsc-installed", accepted=True, file="", kind="capf",
                                 reason="CAPF issued an LSC; stored with its private key"))
            self.save()
            return True
        if out == "deleted":
            self.store.lsc = None
            self.lsc = "deleted"
            self.record(Decision(rule="F.6-lsc-deleted", accepted=True, file="", kind="capf",
                                 reason="CAPF deleted the LSC"))
            self.save()
            return True
        if out in ("fetched", "nothing-pending"):
            self.lsc = "unchanged"
            self.record(Decision(rule=f"F.6-{out}", accepted=True, file="", kind="capf",
                                 reason=f"CAPF session ended: {out}"))
            return False
        why = f"CAPF ended the session: {result.detail or out} (reason {result.reason})"
        if mode in (3, 4) and self.store.lsc is None and self.store.mic is None:
            held = "an LSC or a MIC" if mode == 3 else "a MIC or an LSC"
            why += (f"; {NO_CAPF_CERTIFICATE} (capfAuthMode {mode} needs "
                    f"{held}, spec §F.7)")
        self.record(Decision(rule="F.6-capf-rejected", accepted=False, file="", kind="capf", reason=why,
                             reason_code=VerifyReason.OTHER))
        return False

    # ------------------------------------------------------------------ 5. firmware
    async def firmware_phase(self, cfg: DeviceConfig) -> None:
        load = cfg.load_information
        if not load:
            return
        if load == self.store.firmware_load:
            self.firmware = "unchanged"
            return
        try:
            name = firmware_fmt.loads_file_name(load)
        except EncodeError as exc:
            self.record(Decision(rule="D-malformed", accepted=False, file=load, kind="firmware",
                                 reason=f"bad load name: {exc.message}", reason_code=VerifyReason.OTHER))
            self.firmware = "rejected"
            return
        got = await self.fetch(name)
        if isinstance(got, _Fail):
            self.fetch_failed(name, got, trust_file=False)
            self.record(Decision(rule="D-fetch-failed", accepted=False, file=name, kind="firmware",
                                 reason=f"{got.error.kind}: keeps running load "
                                 f"{self.store.firmware_load or '(none)'}",
                                 reason_code=VerifyReason.NOT_FOUND if got.not_found else VerifyReason.OTHER))
            self.firmware = "rejected"
            return
        d = rules.decide_firmware(self.store, got, profile=self.profile, now=self.now(),
                                  image_signers=self.image_signers, file=name, requested_load=load)
        self.record(d)
        self.firmware = "accepted" if d.accepted else "rejected"
        if d.accepted:
            self.save()

    # ------------------------------------------------------------------ 2a. static files
    async def static_phase(self, cfg: DeviceConfig) -> None:
        """§C.6 row 6, §G.4: fetch and verify the static files the accepted config names."""
        for base in cfg.static_files:
            name = rules.static_request_name(self.store, self.profile, base)
            got = await self.fetch(name)
            if isinstance(got, _Fail):
                self.fetch_failed(name, got, trust_file=False)
                self.static[base] = "not-found" if got.not_found else "failed"
                continue
            d = await self.decide_static(name, got)
            self.record(d)
            self.static[base] = "accepted" if d.accepted else "rejected"

    async def decide_static(self, name: str, data: bytes) -> Decision:
        return await self.decide_with_tvs(lambda ans: rules.decide_static_file(
            self.store, name, data, profile=self.profile, now=self.now(), tvs_answer=ans))

    # ------------------------------------------------------------------ 4. §G.9
    async def secure_transport(self, cfg: DeviceConfig) -> None:
        """§G.9 for the accepted config ``cfg``, once a boot (a config retrieved again after CAPF, §G.12.4,
        is not retried for): in secure mode without a CUCM certificate in a CTL, ask for the CTL again."""
        if cfg.device_security_mode <= 1 or self.secure_transport_done:
            return
        self.secure_transport_done = True
        # §G.9 "tries four times": the trust-phase request at the start of the boot was the first try
        for made in range(1, self.profile.secure_mode_attempts + 1):
            d = rules.decide_secure_transport(self.store, cfg, profile=self.profile, attempts=made)
            if d is None:  # non-secure: no §G.9 decision
                return
            self.record(d)
            if d.action != "retry":
                return
            await self.trust_phase(frozenset({"CTL"}), retry=made)

    def ignore_config_read(self) -> None:
        """§G.3.5 after §G.9 (ours [INF], module docstring): a retry's refused CTL locked the phone after the
        config was read; the phone keeps the config it held before the boot, and the config read is decided
        again by the locked store (``G.3.5-locked-ignores-config``)."""
        held, rule, mode = self.config_held
        self.store.reinstate_config(held, rule, capf_auth_mode=mode)
        name = self.config_file or ""
        d = rules.decide_config(self.store, name, self.config_served.get(name, b""), profile=self.profile,
                                now=self.now())
        assert not d.accepted, d  # the store is locked: every config is refused
        self.reject_config(dataclasses.replace(
            d, reason=f"a §G.9 retry's CTL was refused after {name} was read: {d.reason}"))

    # ------------------------------------------------------------------ run
    async def run(self) -> None:
        self.store.locked = False  # RAM flag: re-evaluated at every boot (flash module docstring)
        self.note("boot", f"boot {self.device_name} ({self.profile.name}); running load "
                  f"{self.store.firmware_load or '(none)'}")
        for text in self.flash_problems:  # what the flash could not give back: this boot starts without it
            self.show(text)
        await self.trust_phase()
        if self.trust.get("CTL") == "installed" and self.trust.get("ITL") == "installed":
            self.show(status.CTL_AND_ITL_INSTALLED)
        if not self.store.has_trust_list and not any(
                d.kind in ("CTL", "ITL") and not d.accepted for d in self.decisions):
            self.show(status.NO_TRUST_LIST)
        await self.config_phase()
        cfg = self.store.config.config if self.config == "accepted" and self.store.config else None
        if cfg is not None:
            await self.secure_transport(cfg)  # done already unless no CAPF step came (auto-registration)
            if self.store.locked:  # a §G.9 retry's CTL was refused: the config read is not acted on
                self.ignore_config_read()
            else:
                await self.static_phase(cfg)
                await self.firmware_phase(cfg)
        self.save()

    def report(self, duration: float, target: BootTarget | None) -> BootReport:
        trust = {}
        for kind in ("CTL", "ITL"):
            held = self.store.trust_list(kind)
            trust[kind] = self.trust.get(kind, "unchanged" if held is not None else "absent")
        rejected = [d for d in self.decisions
                    if not d.accepted and not d.pending and d.reason_code is not None]
        ok = self.config == "accepted"
        deciding: Decision | None
        if ok:
            standing = [d for d in rejected if d.kind in ("CTL", "ITL", "capf", "firmware", "static")]
            deciding = standing[0] if standing else self.config_decision
        else:  # a trust-list refusal locked the phone (§G.3.5): it decides, also after a §G.9 retry
            locking = [d for d in rejected if d.kind in ("CTL", "ITL")]
            # an HTTPS config refusal the phone went past decides only when nothing else does (docstring)
            others = [d for d in rejected if d.rule not in _HTTPS_CONFIG_FELL_BACK]
            deciding = locking[0] if locking else others[0] if others else self.config_decision or \
                (rejected[0] if rejected else None)
        trust_rejected = any(d.kind in ("CTL", "ITL") for d in rejected)
        signer_refused = self.config == "rejected" and self.config_decision is not None and \
            self.config_decision.rule.startswith(("G.4-", "G.3.5-"))
        locked = self.store.has_trust_list and (trust_rejected or signer_refused or self.store.locked)
        held_lsc = "present" if self.store.lsc is not None else "absent"
        lsc = self.lsc if self.lsc is not None else held_lsc
        return BootReport(
            mac=self.mac, ok=ok, trust=trust, config=self.config, config_file=self.config_file,
            encrypted=self.encrypted and ok, decisions=tuple(self.decisions), deciding=deciding,
            statuses=tuple(self.statuses), firmware=self.firmware, load=self.store.firmware_load, lsc=lsc,
            locked_out=locked, tvs_used=self.tvs_used, timeline=tuple(self.timeline), duration_s=duration,
            target=target, static=dict(self.static), retransmits=self.retransmits,
            fetched_over=self.fetched_over, pending=tuple(self.pending), answered=self.answered,
            failed_downloads=tuple(self.failed_downloads),
            held=HeldLists.after_boot(self.store, self.refused_itl, self.refused_ctl))


def _records(tl: TrustList) -> list[TrustRecord]:
    return list(tl.records)


async def run_boot(
    *,
    mac: str,
    profile: PhoneProfile,
    store: TrustStore,
    fetcher: Fetcher,
    clock: Callable[[], int],
    events: EventLog | None = None,
    image_signers: Sequence[x509.Certificate] = (),
    tvs: TvsAsker | None = None,
    capf: CapfRunner | None = None,
    auth_string: str | None = None,
    capf_retries: int = 3,
    capf_retry_delay: float = 30.0,
    save: Callable[[TrustStore], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    target: BootTarget | None = None,
    on_auth_string_used: Callable[[], None] | None = None,
    flash_problems: Sequence[str] = (),
    https_config: HttpsConfigGetter | None = None,
) -> BootReport:
    """Boot once (see module docstring); returns the report in all cases except programming errors.

    ``flash_problems``: statuses shown first (stored files that could not be loaded, e.g. a trust list
    left damaged: the phone boots as if it were absent, :mod:`phoneemu.phone.flash`). ``https_config``:
    the way to the HTTPS config download (TCP 6971, §H.1); None: not tried (an offline boot,
    ``--no-https-config``)."""
    started = time.monotonic()
    boot = _Boot(mac=config_fmt.normalise_mac(mac), profile=profile, store=store, fetcher=fetcher,
                 clock=clock,
                 events=events if events is not None else EventLog(), image_signers=image_signers,
                 tvs=tvs if tvs is not None else net_tvs_asker(),
                 capf=capf if capf is not None else net_capf_runner(), auth_string=auth_string,
                 capf_retries=max(0, capf_retries), capf_retry_delay=max(0.0, capf_retry_delay), save=save,
                 sleep=sleep, https_config=https_config)
    boot.flash_problems = tuple(flash_problems)
    await boot.run()
    if auth_string and boot.auth_string is None and on_auth_string_used is not None:
        on_auth_string_used()
    return boot.report(time.monotonic() - started, target)
