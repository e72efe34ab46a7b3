"""The world a scenario runs in: lab clusters with their servers on loopback, and phones.

Each built-in lab cluster gets its own loopback address (127.0.0.11, .12, ...) and
ephemeral ports, so several clusters can run side by side and a capture shows which is
which. Phones boot over real sockets (TFTP/HTTP, TLS to TVS and CAPF).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cryptography import x509

from phoneemu.crypto.keys import KeySpec, key_description
from phoneemu.errors import ScenarioError
from phoneemu.fleet.engine import boot_many
from phoneemu.formats.trustlist import TrustList
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.on_path import OnPathSeen, SignallingAttacker
from phoneemu.lab.servers import LabServers
from phoneemu.phone.boot import BootReport, BootTarget
from phoneemu.phone.call import CallResult
from phoneemu.phone.flash import Flash
from phoneemu.phone.https import HttpsResult
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import PhoneProfile, profile_from_dict
from phoneemu.phone.sip import SipResult
from phoneemu.protocols.sip import SIP_PORT, SIPS_PORT
from phoneemu.scenario.clock import ScenarioClock
from phoneemu.scenario.model import ClusterSpec, PhoneGroup, Scenario, Step
from phoneemu.values import parse_host_port

__all__ = ["PhoneHandle", "World"]

#: Lab clusters of a scenario listen on 127.0.0.<base>, <base+1>, ... (within the capture range .11-.40).
DEFAULT_LAB_HOST_BASE = 11
_BOOT_CONCURRENCY = 256


@dataclass
class ClusterHandle:
    spec: ClusterSpec
    host: str
    tftp_port: int
    http_port: int | None
    cluster: LabCluster | None = None
    servers: LabServers | None = None
    #: the HTTPS config download (spec §H.1): a lab's runs only with its ``tftp-https`` identity (its port,
    #: else not asked); an external cluster's is asked on 6971 when the phone's rules say so
    https_config_port: int | None = None
    use_https_config: bool = True
    #: the last CAPF log line per device, and the request log it was read from (its length, last entry)
    _capf_seen: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    _capf_seen_of: tuple[int, object] = field(default=(0, None), repr=False, compare=False)

    def target(self) -> BootTarget:
        return BootTarget(host=self.host, tftp_port=self.tftp_port, http_port=self.http_port,
                          use_http=self.http_port is not None, https_config_port=self.https_config_port,
                          use_https_config=self.use_https_config)

    def capf_log_of(self, device: str) -> str | None:
        """How the lab's CAPF server logged ``device``'s last session (None: none logged). The request log
        is read once while it is unchanged, not once per phone: an expectation on 100,000 phones is one
        pass over it, not 100,000 (its length and last entry tell a change: it only grows at the end, its
        start trimmed)."""
        if self.servers is None:
            return None
        log = self.servers.requests
        size = len(log)
        last = log[-1] if log else None  # held: no other entry can take its identity
        if size != self._capf_seen_of[0] or last is not self._capf_seen_of[1]:
            seen = list(log)  # one copy, read after its state: the threaded TVS server appends meanwhile
            self._capf_seen = {e.name: e.detail for e in seen if e.service == "capf"}
            self._capf_seen_of = (size, last)
        return self._capf_seen.get(device)


@dataclass
class PhoneHandle:
    """A phone plus what the checks read (``checks.PhoneView``)."""

    mac: str
    group: str
    phone: Phone
    cluster: str
    spec: PhoneGroup
    mic: tuple[Any, Any] | None = None
    report: BootReport | None = None
    history: list[BootReport] = field(default_factory=list)
    https: HttpsResult | None = None  # the last ``https`` step's result (spec §E.7.1)
    sip: SipResult | None = None  # the last ``sip`` step's result (spec §G.13)
    call: CallResult | None = None  # the last ``call`` step's result (spec §G.14)
    #: what the lab's on-path attacker did to the last ``sip`` / ``call`` step (``network: {tamper_signalling,
    #: replay_sip}``, :mod:`phoneemu.lab.on_path`); None: no lab registrar, or before any
    on_path: OnPathSeen | None = None
    #: (cluster name, "ITL"/"CTL") -> what that cluster's ``show itl``/``show ctl`` prints as checksums
    served_checksums: Callable[[str, str], dict[str, str] | None] | None = None
    #: the lab cluster holding this phone's device entry now (None: a real cluster), for the CAPF checks
    device_lab: Callable[[PhoneHandle], ClusterHandle | None] | None = None

    def has_trust(self, kind: str) -> bool:
        return self.phone.store.trust_list(kind) is not None

    def trust_is_empty(self, kind: str) -> bool:
        tl = self.phone.store.trust_list(kind)
        return tl is not None and tl.is_empty

    def has_lsc(self) -> bool:
        return self.phone.store.lsc is not None

    def config_xml(self) -> bytes | None:
        acc = self.phone.store.config
        return acc.xml if acc is not None else None

    def lsc_key(self) -> str | None:
        lsc = self.phone.store.lsc
        if lsc is None:
            return None
        return key_description(x509.load_der_x509_certificate(lsc.cert_der).public_key())  # type: ignore[arg-type]

    def trust_list(self, kind: str) -> TrustList | None:
        return self.phone.store.trust_list(kind)

    def reported_checksum(self, kind: str) -> tuple[str, str] | None:
        """(md5|sha1, hex) of the installed list as the phone shows and reports it (spec §G.1, §H.4)."""
        tl = self.trust_list(kind)
        if tl is None:
            return None
        alg = self.phone.profile.status_checksum
        return (alg, tl.md5()) if alg == "md5" else ("sha1", tl.sha1())

    def cluster_checksums(self, kind: str) -> dict[str, str] | None:
        """The checksums the phone's current cluster prints in ``show itl``/``show ctl`` (None: a real
        cluster, or no such file)."""
        return self.served_checksums(self.cluster, kind) if self.served_checksums is not None else None

    def capf_pending(self) -> str:
        """The CAPF operation the phone's lab cluster holds pending for it (install, fetch, delete; none;
        unknown for a real cluster): a session cut before its end leaves it pending (spec §F.6)."""
        handle = self.device_lab(self) if self.device_lab is not None else None
        if handle is None or handle.cluster is None:
            return "unknown"
        pending = handle.cluster.capf_pending(self.mac)
        return pending.operation if pending is not None else "none"

    def capf_server_log(self) -> str | None:
        """How the lab's CAPF server logged the last session of this phone (``op=install timeout: ...``),
        None when it logged none (or a real cluster)."""
        handle = self.device_lab(self) if self.device_lab is not None else None
        return handle.capf_log_of(f"SEP{self.mac}") if handle is not None else None

    @property
    def running_load(self) -> str | None:
        return self.phone.store.firmware_load

    def timeline(self) -> list[str]:
        lines: list[str] = []
        for i, rep in enumerate(self.history, 1):
            lines.append(f"-- boot {i} against {rep.target if hasattr(rep, 'target') else '?'}")
            lines.extend(rep.timeline)
        if self.https is not None:
            r = self.https
            lines.append(f"-- last https {r.server}: {'trusted' if r.trusted else 'untrusted'} ({r.how}) "
                         f"{r.rule or '-'}: {r.reason}")
        if self.sip is not None:
            g = self.sip
            lines.append(f"-- last sip {g.server or '-'} {g.transport or '-'}: {g.rule}: {g.reason}")
        if self.call is not None:
            c = self.call
            suite = f" {c.suite}" if c.suite else ""
            refused = f": {c.refusal}" if c.refusal else ""
            lines.append(f"-- last call {c.target}: media {c.media}{suite}, {c.rule}: {c.reason}; "
                         f"sent {c.sent}, received {c.received} (authenticated {c.authenticated}, "
                         f"refused {c.refused}{refused}); far end: {c.far_end or '-'}")
        if self.on_path is not None and (self.on_path.tampered or self.on_path.replay != "none"):
            o = self.on_path
            lines.append(f"-- on-path attacker: {o.tampered or 'nothing changed'}; media packets relayed "
                         f"{o.intercepted}; REGISTER replayed: {o.replay}")
        return lines


class _EnrolStoppedError(Exception):
    """The scenario was cancelled while its phones were being enrolled (:meth:`World._enrol`)."""


def _enrol_in_thread(lab: LabCluster, group: PhoneGroup, macs: list[str], now: int,
                     stop: threading.Event) -> None:
    """The blocking part of :meth:`World._enrol`: MIC keys, then the device entries of a registered group;
    stops between two keys or two phones once ``stop`` is set."""
    spec = KeySpec.parse(lab.state.key_spec) if group.registered else lab.pki.key_spec
    lab.pki.prepare_mic_keys(len(macs), spec, stop=stop.is_set)

    def progress(_done: int, _total: int) -> None:
        if stop.is_set():
            raise _EnrolStoppedError

    if group.registered and not stop.is_set():
        with contextlib.suppress(_EnrolStoppedError):
            lab.add_phones(macs, model=_profile(group).model, encrypt=group.encrypt,
                           symmetric_key=group.symmetric_key, capf=group.capf, now=now, progress=progress)


class World:
    """Owns clusters, servers, phones and the scenario clock for one scenario run."""

    def __init__(self, scenario: Scenario, workdir: Path, *, start_time: int,
                 keylog: Path | None = None, capture: Any = None,
                 host_base: int = DEFAULT_LAB_HOST_BASE) -> None:
        self.scenario = scenario
        self.workdir = workdir
        self.clock = ScenarioClock(start_time)
        self.keylog = keylog
        self.capture = capture
        self.host_base = host_base
        self.clusters: dict[str, ClusterHandle] = {}
        self.phones: dict[str, PhoneHandle] = {}
        self.groups: dict[str, list[str]] = {}

    # --- set-up -------------------------------------------------------------------------
    async def start(self) -> None:
        for i, spec in enumerate(self.scenario.clusters.values()):
            self.clusters[spec.name] = await self._start_cluster(spec, i)
        for spec in self.scenario.clusters.values():  # centralized TFTP (seed "Update ITL File", §G.11)
            central, home = self.clusters[spec.name].cluster, spec.options.get("tftp_for")
            if central is not None and home is not None:
                home_lab = self.clusters[home].cluster
                assert home_lab is not None  # the loader accepts only built-in labs
                central.serve_device_files_of(home_lab)
        for group in self.scenario.phones.values():
            self.groups[group.name] = []
            macs = list(group.macs())
            for mac in macs:
                if mac in self.phones:
                    raise ScenarioError(f"MAC {mac} of group {group.name!r} is already used by group "
                                        f"{self.phones[mac].group!r}", file=group.where)
            await self._enrol(group, macs)
            for mac in macs:
                self.phones[mac] = self._make_phone(group, mac)
                self.groups[group.name].append(mac)

    async def _enrol(self, group: PhoneGroup, macs: list[str]) -> None:
        """Give a group's phones their MICs, and device entries if registered, in one state write — in a
        thread, so that the scenario can be cancelled meanwhile (Ctrl-C, SIGTERM, its time limit: the keys
        and MICs of 100,000 phones take hours, and blocked the event loop, where a cancellation never
        arrived). Cancelled, the thread is told to stop and waited for (it ends within a few keys), so
        nothing writes into the lab's folder once the scenario is cleaning it up."""
        lab = self.clusters[group.cluster].cluster
        if lab is None:
            return
        stop = threading.Event()
        work = asyncio.get_running_loop().run_in_executor(
            None, _enrol_in_thread, lab, group, macs, self.clock(), stop)
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            stop.set()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await work
            raise

    async def _start_cluster(self, spec: ClusterSpec, index: int) -> ClusterHandle:
        if spec.external is not None:
            host, port = parse_host_port(spec.external["tftp"], what="tftp")  # checked by the loader
            http = int(spec.external.get("http_port", 6970))
            use_http = spec.external.get("use_http", True) is True
            return ClusterHandle(spec=spec, host=host, tftp_port=port, http_port=http if use_http else None)
        host = f"127.0.0.{self.host_base + index}"
        opts = dict(spec.options)
        cluster = LabCluster.init(
            self.workdir / "clusters" / spec.name, seed=spec.seed,
            name=spec.name, host=host, now=self.clock(), durable=False, **_init_options(opts),
        )
        for op, args in _initial_operations(opts):
            cluster.apply(op, now=self.clock(), **args)
        # a scenario that registers runs the registrar from the start, so the configs name its ports
        # (devicePool, spec §H.5) and the phones find it there
        registers = any(isinstance(step, Step) and step.kind in ("sip", "call")
                        for step in self.scenario.steps)
        servers = LabServers(cluster, host=host, keylog=self.keylog, capture=self.capture,
                             clock=self.clock, sip_ports={"sip": 0, "sips": 0} if registers else None,
                             handshake_log_level=logging.INFO,  # expected refusals: the request log has them
                             **_capf_bounds(opts))
        await servers.start()
        https_config = servers.ports.get("https-config")  # running only with the lab's HTTPS identity
        return ClusterHandle(spec=spec, host=host, tftp_port=servers.ports["tftp"],
                             http_port=servers.ports["http"], cluster=cluster, servers=servers,
                             https_config_port=https_config, use_https_config=https_config is not None)

    def _make_phone(self, group: PhoneGroup, mac: str) -> PhoneHandle:
        handle = self.clusters[group.cluster]
        profile = _profile(group)
        mic = None
        if handle.cluster is not None:
            if group.registered:  # added by _enrol
                mic = handle.cluster.phone_identity(mac)
            else:  # autoregistration: a MIC from the manufacturer, no device entry (§G.10)
                mic = handle.cluster.pki.issue_mic(mac, model=profile.model, now=self.clock())
        flash = Flash(self.workdir / "phones" / mac, profile=profile, durable=False)
        timing: dict[str, Any] = {}  # the group's tftp/http/tvs timing; the phone's own defaults otherwise
        for arg, ms in (("fetch_timeout", group.tftp_timeout_ms), ("http_timeout", group.http_timeout_ms),
                        ("tvs_timeout", group.tvs_timeout_ms), ("fetch_max_time", group.tftp_max_time_ms)):
            if ms is not None:
                timing[arg] = ms / 1000.0
        if group.tftp_retries is not None:
            timing["fetch_retries"] = group.tftp_retries
        phone = Phone(mac=mac, profile=profile, flash=flash, clock=self.clock, mic=mic,
                      image_signers=self.image_signers(), capf_retry_delay=0.0, keylog=self.keylog, **timing)
        if group.symmetric_key and profile.symmetric_key_bits:
            phone.set_symmetric_key(group.symmetric_key)
        return PhoneHandle(mac=mac, group=group.name, phone=phone, cluster=group.cluster, spec=group, mic=mic,
                           served_checksums=self._served_checksums, device_lab=self._device_lab)

    def _device_lab(self, p: PhoneHandle) -> ClusterHandle | None:
        """The lab cluster with ``p``'s device entry: its cluster's, or, when that is the centralized TFTP
        of the phone's own cluster (``tftp_for``, :meth:`register_on`), the home cluster's; None: real."""
        handle = self.clusters[p.cluster]
        if handle.spec.options.get("tftp_for") == p.spec.cluster:
            handle = self.clusters[p.spec.cluster]
        return handle if handle.cluster is not None else None

    def _served_checksums(self, cluster: str, kind: str) -> dict[str, str] | None:
        lab = self.clusters[cluster].cluster
        want: Literal["CTL", "ITL"] = "CTL" if kind == "CTL" else "ITL"
        return lab.checksums(want) if lab is not None else None

    def register_on(self, p: PhoneHandle, cluster: str) -> None:
        """A phone moved to ``cluster`` keeps its MIC; a lab cluster gets a device entry for it."""
        p.cluster = cluster
        if self.clusters[cluster].spec.options.get("tftp_for") == p.spec.cluster:
            return  # the centralized TFTP of the phone's own cluster: the device entry stays there
        lab = self.clusters[cluster].cluster
        if lab is not None and p.spec.registered:
            lab.add_phone(p.mac, model=p.phone.profile.model, encrypt=p.spec.encrypt,
                          symmetric_key=p.spec.symmetric_key, mic=p.mic, now=self.clock())

    def image_signers(self) -> list[Any]:
        """Phones trust the image-signing certificate of every lab cluster (one vendor key, §D)."""
        return [h.cluster.identity("imagesigning").cert for h in self.clusters.values()
                if h.cluster is not None]

    async def close(self) -> None:
        """Stop every cluster's lab servers: one whose stop raises leaves no other running (each is
        stopped, then the first error raised; the runner reports it and closes the capture all the same)."""
        errors: list[Exception] = []
        for h in self.clusters.values():
            if h.servers is not None:
                try:
                    await h.servers.stop()
                except Exception as exc:
                    errors.append(exc)
        if errors:
            raise errors[0]

    # --- selection ----------------------------------------------------------------------
    def select(self, refs: tuple[str, ...]) -> list[PhoneHandle]:
        out: list[PhoneHandle] = []
        for ref in refs:
            if ref == "all":
                out.extend(self.phones.values())
            elif ref in self.groups:
                out.extend(self.phones[m] for m in self.groups[ref])
            else:
                mac = ref.replace(":", "").upper()
                if mac not in self.phones:
                    raise ScenarioError(f"no phone with MAC {mac}")
                out.append(self.phones[mac])
        unique: dict[str, PhoneHandle] = {}
        for p in out:
            unique.setdefault(p.mac, p)
        return list(unique.values())

    def lab(self, name: str, where: str) -> ClusterHandle:
        h = self.clusters[name]
        if h.cluster is None or h.servers is None:
            raise ScenarioError(f"cluster {name!r} is external: lab operations need the built-in lab",
                                file=where)
        return h

    # --- actions ------------------------------------------------------------------------
    async def boot(self, phones: list[PhoneHandle]) -> None:
        """Boot ``phones`` concurrently through the fleet engine, one batch per target cluster."""
        by_cluster: dict[str, list[PhoneHandle]] = {}
        for p in phones:
            by_cluster.setdefault(p.cluster, []).append(p)

        async def batch(cluster: str, handles: list[PhoneHandle]) -> None:
            reports = await boot_many([h.phone for h in handles], self.clusters[cluster].target(),
                                      concurrency=_BOOT_CONCURRENCY)
            for h, report in zip(handles, reports, strict=True):
                h.report = report
                h.history.append(report)

        await asyncio.gather(*(batch(c, hs) for c, hs in by_cluster.items()))

    async def https(self, phones: list[PhoneHandle], cluster: str | None, where: str) -> None:
        """Each phone opens the directory service of ``cluster`` (default: its own cluster), started on
        demand: over HTTPS (spec §E.7.1), or over plain HTTP when its config's secure directory URL is
        http:// (``secure-urls``, spec §G.11; the scheme is the phone's, where it listens the lab's); the
        result is kept on the handle for the ``https`` check."""
        for p in phones:
            h = self.lab(cluster or p.cluster, where)
            assert h.servers is not None
            service = "directory" if p.phone.directory_scheme() == "http" else "https"
            if not h.servers.running(service):
                await h.servers.start_service(service)
            port = h.servers.ports[service]
            p.https = await (p.phone.open_plain_http(h.host, port) if service == "directory"
                             else p.phone.open_https(h.host, port))

    async def sip(self, phones: list[PhoneHandle], cluster: str | None, where: str) -> None:
        """Each phone registers (spec §G.13, §G.9): with ``cluster``'s SIP registrar when the step names
        one, else with the CallManagers its config names (spec §H.5) — unless its own cluster is a real
        one whose ``external.sip`` says where; the result is kept for the ``sip`` checks."""
        for p in phones:
            host, sip_port, sips_port = await self._registrar(cluster, p.cluster, where)
            attacker = self._attacker(cluster or p.cluster, p)
            p.sip = await p.phone.register_sip(host, sip_port, sips_port)
            p.on_path = await attacker.settled(f"SEP{p.mac}") if attacker is not None else None

    def _attacker(self, name: str, p: PhoneHandle) -> SignallingAttacker | None:
        """The on-path attacker of lab cluster ``name``'s registrar, ``p``'s record there started afresh
        (None: a real cluster)."""
        servers = self.clusters[name].servers
        if servers is None:
            return None
        servers.attacker.forget(f"SEP{p.mac}")
        return servers.attacker

    async def call(self, phones: list[PhoneHandle], cluster: str | None, where: str, *, to: str,
                   packets: int) -> None:
        """Each phone registers as for the ``sip`` step and, over that connection, calls ``to`` — a media
        resource, or the phone of group ``to``, which registers and answers meanwhile — and exchanges
        ``packets`` media packets (spec §G.14); each result is kept for the ``media`` checks (its
        registration for the ``sip`` ones)."""
        callee = self.select((to,))[0] if to in self.groups else None
        for p in phones:
            registrar = await self._registrar(cluster, p.cluster, where)
            attacker = self._attacker(cluster or p.cluster, p)
            await self._call_one(p, callee, cluster, where, registrar, to=to, packets=packets)
            if attacker is not None:
                p.on_path = await attacker.settled(f"SEP{p.mac}")

    async def _call_one(self, p: PhoneHandle, callee: PhoneHandle | None, cluster: str | None, where: str,
                        registrar: tuple[str | None, int, int], *, to: str, packets: int) -> None:
        """``p`` calls a media resource ``to`` or the phone ``callee`` (:meth:`call`) through ``registrar``
        (host, SIP port, SIPS port)."""
        host, sip_port, sips_port = registrar
        if callee is None:
            p.call = await p.phone.call(host, sip_port, sips_port, target=to, packets=packets)
            p.sip = p.call.registration
            return
        ready = asyncio.Event()
        b_host, b_sip, b_sips = await self._registrar(cluster, callee.cluster, where)
        b_attacker = self._attacker(cluster or callee.cluster, callee)
        answering = asyncio.create_task(callee.phone.answer(b_host, b_sip, b_sips, wait=30.0,
                                                            ready=ready.set))
        await ready.wait()
        if b_attacker is not None:  # a replay of its REGISTER answered first: it may hold the line now
            callee.on_path = await b_attacker.settled(f"SEP{callee.mac}")
        p.call = await p.phone.call(host, sip_port, sips_port, target=f"SEP{callee.mac}", packets=packets)
        if not p.call.registration or not p.call.registration.registered or \
                p.call.rule in ("G.14-call-refused", "G.14-signalling-tampered"):
            answering.cancel()
        callee.call = None  # a call that never reached it leaves none (not its previous one)
        with contextlib.suppress(asyncio.CancelledError):
            callee.call = await answering
        p.sip = p.call.registration
        if callee.call is not None:
            callee.sip = callee.call.registration

    async def _registrar(self, named: str | None, own: str, where: str) -> tuple[str | None, int, int]:
        """The SIP registrar of cluster ``named``, or of the phone's ``own`` cluster (host None: the
        config's CallManagers): a real cluster's ``external.sip`` (TCP, 5060 by default) and
        ``sips_port`` (5061), or a lab's own, its listeners started on demand when the step names it."""
        name = named or own
        spec = self.clusters[name].spec
        if spec.external is not None:
            if "sip" not in spec.external:
                if named is None:
                    return None, SIP_PORT, SIPS_PORT
                raise ScenarioError(f"cluster {name!r} is external: name its SIP registrar for the sip step "
                                    "(external: {sip: HOST[:PORT], sips_port: N})", file=where)
            host, port = parse_host_port(spec.external["sip"], what="sip", default_port=SIP_PORT)
            return host, port, int(spec.external.get("sips_port", SIPS_PORT))
        if named is None:
            return None, SIP_PORT, SIPS_PORT
        h = self.lab(name, where)
        assert h.servers is not None
        for service in ("sip", "sips"):
            if not h.servers.running(service):
                await h.servers.start_service(service)
        return h.host, h.servers.ports["sip"], h.servers.ports["sips"]

    def now_datetime(self) -> dt.datetime:
        return self.clock.datetime()


def _profile(group: PhoneGroup) -> PhoneProfile:
    try:
        return profile_from_dict(group.profile, group.profile_overrides)
    except ScenarioError as exc:
        field = f"phones.{group.name}.profile" + (f".{exc.path}" if exc.path else "")
        raise ScenarioError(exc.message, file=group.where, path=field) from None


_INIT_KEYS = {"nodes", "key", "itlrecovery_years", "upgraded", "tvs_ttl", "sbd", "load",
              "autoregistration", "itl_signer", "pre_8_0", "https_key"}


def _init_options(opts: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in opts.items() if k in _INIT_KEYS}


def _capf_bounds(opts: dict[str, Any]) -> dict[str, Any]:
    """The lab CAPF server's bounds a cluster's ``capf: {read_timeout, session_timeout, max_in_progress}``
    sets (ours, as ``lab serve --capf-*``; spec §F.6, §F.8), as :class:`LabServers` arguments; those left
    out keep the servers' defaults (30 s, 120 s, 256)."""
    names = {"read_timeout": "capf_read_timeout", "session_timeout": "capf_session_timeout",
             "max_in_progress": "capf_max_in_progress"}
    return {names[key]: value for key, value in opts.get("capf", {}).items()}


def _initial_operations(opts: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    ops: list[tuple[str, dict[str, Any]]] = []
    if opts.get("mixed_mode"):
        ops.append(("mixed-mode", {"on": True}))
    if "signature_algorithm" in opts:
        ops.append(("signature-algorithm", {"hash": opts["signature_algorithm"]}))
    if opts.get("extra_certs"):
        ops.append(("add-certs", {"count": int(opts["extra_certs"])}))
    if opts.get("rollback"):
        ops.append(("rollback", {"on": True}))
    return ops
