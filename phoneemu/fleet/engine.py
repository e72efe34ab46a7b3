"""Fleet engine for one process: many real phones booting concurrently in one asyncio loop (issue #6).

Rules:

* Every phone is a real :class:`phoneemu.phone.phone.Phone` and boots with :meth:`Phone.boot` — the
  same boot sequence, rules (spec §G) and fetch code as a single phone. Nothing is decided here.
* Concurrency is bounded: at most ``concurrency`` boots hold a turn at once, phones taking turns in
  MAC order; a phone boots once per run. A phone pausing before a CAPF retry (``capf_retry_delay``,
  spec §F.1: 30 s) gives its turn to the next phone and takes one again to go on, so a CAPF outage
  does not stall the phones not yet started for 3 x 30 s per turn; progress reports count the phones
  pausing. A run can also be bounded in time (``max_time_s``): after it no new boot starts and the
  phones not started are counted as ``not-started``; the same once ``give_up_unanswered`` boots of a
  shard ended and not one of their requests got an answer (our convention: nothing answers there).
* What phones of one process share (immutable or process-wide, never per-phone copies):
  one :class:`~phoneemu.net.tftp_client.TftpClientPool` (bounded UDP sockets, reused), the TLS client
  context for TVS, one TVS asker and one CAPF runner per model, the
  :data:`~phoneemu.phone.store.SHARED_CACHE` of parsed trust lists/configs keyed
  by SHA-256 of the bytes, and — in fleet shards — a :class:`~phoneemu.crypto.signatures.VerifyCache`
  so identical signed files are verified once per process (successful checks only).
* A phone's own state stays small: in-memory trust store (``flash=None``) unless a flash directory is
  given (then ``DIR/<MAC>``; a flash another process holds is never waited for in the loop: the phone is
  not booted, or its boot fails, its reason naming the folder — :mod:`phoneemu.phone.flash`), a small
  event log (``event_limit``, our fleet default 32 events and 8 statuses instead of 200/30; its deques
  made at the first event), the parts of a previous config equal across phones held once
  (:func:`phoneemu.formats.config.parse`), and the full :class:`BootReport` is
  reduced to a :class:`~phoneemu.fleet.metrics.BootRecord` right after the boot. A shard makes each phone
  as its boot starts (:class:`PhoneMaker`: what the phones share made once, before the storm), and lets it
  go as its boot ends (its reference count frees it: a phone holds no reference cycle): it holds the MACs
  still to boot and the phones booting, never a phone for each (was: every phone made before the first
  boot — with ``--flash``, each flash read, its lab MIC checked: 3,000 phones took 7 to 20 s of silence
  before the storm, uncounted in its time, deaf to ``--max-time`` and Ctrl-C; their making is now part of
  the storm, each phone's latency counting it from the start of its making, and a phone that cannot be
  made is counted failed when its turn comes). What the setup made is moved out of the cyclic GC's reach
  (``gc.freeze``) for the storm, and the GC runs less often during the storm
  (:data:`_STORM_GC_THRESHOLD`, restored afterwards).
* :class:`Prestate` (benchmarks and tests, our convention) puts phones in the state an earlier boot
  would have left: the given CTL/ITL installed (parsed once, shared) and each phone's own previous
  config read from ``config_dir`` — as if installed by the rules named in :data:`PRESTATE_RULES`.
* ``blksize`` (our fleet option, default None = what the phone asks by itself, 512-byte blocks):
  the phones' TFTP requests carry this RFC 2348 block size — the same fetcher classes the phone
  builds (:meth:`Phone.fetcher_for`: HTTP 6970 then TFTP when profile and target allow), with the
  option set; fewer datagrams per file for phone and server.
* ``address`` (``fleet boot --tftp NAME``: the name looked up once, before any phone boots; DHCP option
  150 gives real phones an address): the phones' fetchers ask ``target`` at that address, built once per
  shard (:func:`asked_target`), while ``target`` stays what the command says: each phone's report and
  ``last-boot.json``, the give-up line name the name given, as ``boot``'s do (they named the address).
* The HTTPS config download (TCP 6971, spec §H.1): every phone boots with the getter ``boot`` gives one
  (:meth:`Phone.https_config_for` of the asked target: ``target.https_config_port``, ``fleet boot
  --https-config-port`` or the lab's recorded ``https-config``, default 6971; none with
  ``use_https_config`` off, ``--no-https-config``), also when the fleet passes its own fetcher
  (``blksize``, ``address``: it asked nothing there before). The boot asks it only when the phone's rules
  say so (:func:`~phoneemu.phone.rules.https_config_applies`); the phones of a shard share one getter per
  model (stateless: the model's TLS versions), so a phone to which it does not apply costs nothing
  (:class:`_HttpsConfigWays`).
* Every TFTP transfer and HTTP download is capped in time like a single phone's (``fetch_max_time``, None =
  the phone's default :func:`~phoneemu.phone.phone.default_tftp_max_time`; our convention, see
  :mod:`phoneemu.phone.phone`): the phones and the ``blksize`` fetchers pass the same cap.
* ``mic_dir`` (``fleet boot --lab DIR``: the lab's ``phones`` folder): each phone holds the MIC the lab
  issued it (:func:`phoneemu.fleet.mics.lab_mic`), and ``symmetric_keys`` the manual config key the lab
  encrypts its config with, typed in (models with one, spec §C.5); ``auth_strings`` (else
  ``auth_string``) the CAPF authentication string typed in (spec §F.7); a phone whose MIC files do not load,
  whose key its model refuses, or whose flash cannot be read or written (a file where its folder goes), is
  not made and counts as failed (outcome ``error``, rule ``not-booted``, the reason naming the file, the
  key or the folder); the other phones boot on.
* A shard's TFTP client pool counts its requests (transfers started), those that sent a packet again
  after a timeout, and those packets (the pool's own counters,
  :class:`~phoneemu.net.tftp_client.TftpClientPool`: nothing added per packet but on the retransmission
  path): the summary's ``tftp`` figures.
* :func:`boot_many` is the single-process entry point the scenario runner uses for phone groups with
  ``count > 1``; it returns the full reports in the order of the phones.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import itertools
import operator
import resource
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from phoneemu.crypto import signatures
from phoneemu.crypto.certs import load_cert_der
from phoneemu.errors import DecodeError, EncodeError, PhoneEmuError
from phoneemu.fifo_slots import FifoSlots
from phoneemu.files import phone_config_in
from phoneemu.fleet.loop import resolve_event_loop
from phoneemu.fleet.metrics import NOT_BOOTED, BootRecord, FleetMetrics, mac_runs, peak_rss_mib
from phoneemu.fleet.mics import lab_mic
from phoneemu.formats import config as config_fmt
from phoneemu.formats import signed
from phoneemu.net.fetch import Fetcher, HttpFetcher, HttpThenTftpFetcher, TftpFetcher
from phoneemu.net.tftp_client import QUARANTINE_S, TftpClientPool
from phoneemu.phone.boot import (
    BootReport,
    BootTarget,
    CapfRunner,
    HttpsConfigGetter,
    TvsAsker,
    net_capf_runner,
    net_tvs_asker,
)
from phoneemu.phone.events import EventLog
from phoneemu.phone.flash import FLEET_LOCK_WAIT, Flash, FlashInUseError
from phoneemu.phone.phone import Phone, check_flash_owner
from phoneemu.phone.profile import PhoneProfile, get_profile, profile_from_dict
from phoneemu.phone.sip import SipResult
from phoneemu.phone.store import SHARED_CACHE, AcceptedConfig
from phoneemu.values import host_port

__all__ = [
    "FAILING_SHOWN",
    "PRESTATE_RULES",
    "FleetSpec",
    "PhoneMaker",
    "Prestate",
    "ShardResult",
    "asked_target",
    "boot_many",
    "fetcher_for",
    "mac_range",
    "mac_text",
    "make_phones",
    "parse_mac",
    "run_shard",
]

#: Cyclic-GC thresholds during a storm: a boot makes a few thousand short-lived objects, and the
#: default (700, 10, 10) runs ~90 collections per 1,000 boots (measured: 0.09 ms of CPU per boot);
#: these run ~5 (0.03 ms per boot). Restored when the shard ends.
_STORM_GC_THRESHOLD = (10_000, 50, 100)

#: The rules a :class:`Prestate` pretends installed the CTL, the ITL and the config.
PRESTATE_RULES = ("G.2-first-ctl-tofu", "G.2-first-itl-tofu", "G.4-signed-by-ctl-tftp")
_MAC_MAX = (1 << 48) - 1
_T = TypeVar("_T")


def parse_mac(text: str) -> int:
    """A MAC (any usual notation) as an integer."""
    return int(config_fmt.normalise_mac(text), 16)


def mac_text(value: int) -> str:
    """12 upper-case hex digits."""
    if not 0 <= value <= _MAC_MAX:
        raise EncodeError(f"MAC value {value} outside 48 bits", path="mac")
    return f"{value:012X}"


def mac_range(start: int, count: int) -> range:
    """``count`` consecutive MACs from ``start`` (EncodeError when they overflow 48 bits)."""
    if count < 0 or start < 0 or start + count - 1 > _MAC_MAX:
        raise EncodeError(f"{count} MACs from {start:012X} overflow 48 bits", path="mac_start")
    return range(start, start + count)


@dataclass(frozen=True, kw_only=True)
class Prestate:
    """State left by an earlier boot (see module docstring): CTL/ITL bytes, previous configs' folder."""

    ctl: bytes | None = None
    itl: bytes | None = None
    config_dir: str | None = None  # holds SEP<MAC>.cnf.xml.sgn (or .cnf.xml) per phone


@dataclass(frozen=True, kw_only=True)
class FleetSpec:
    """What a fleet run boots; picklable (sent to every shard process)."""

    target: BootTarget  # what the phones' reports, last-boot.json and the give-up line name
    count: int
    #: the address the phones ask (``fleet boot --tftp NAME``: the name looked up once); None: target.host
    address: str | None = None
    mac_start: int = 0x0A0000000000
    profile: str = "cp-8861"
    #: boots under way per process. Throughput is CPU-bound: more batches the loop's wake-ups (8k storm,
    #: 2 cores: 128 → about 3 % less CPU per boot, 192 → up to 10 % less phone CPU) but the extra
    #: phones only queue, so each boot's latency grows with it (p99 doubles at 128): 64 keeps latencies
    #: those of the cluster, not of our queue
    concurrency: int = 64
    fetch_timeout: float = 2.0  # one wait (s): a TFTP packet, each wait of an HTTP GET (as `boot --timeout`)
    fetch_retries: int = 5
    #: whole-transfer cap of each TFTP and HTTP download (s); None: the phone's default
    #: (default_tftp_max_time)
    fetch_max_time: float | None = None
    tvs_timeout: float = 10.0
    max_sockets: int = 1024
    #: seconds a TFTP socket not reused keeps its port (``fleet boot --tftp-quarantine``; 0: closed at once)
    tftp_quarantine_s: float = QUARANTINE_S
    flash_dir: str | None = None
    clock_offset_s: int = 0
    event_limit: int = 32
    verify_cache: bool = True
    max_time_s: float | None = None
    prestate: Prestate | None = None
    keep_records: bool = False
    blksize: int | None = None  # RFC 2348 TFTP block size to ask for; None = the phone's own (512)
    event_loop: str = "auto"  # shard processes' loop: "auto" (uvloop when installed), "asyncio", "uvloop"
    keylog: str | None = None  # append the phones' TLS secrets (TVS) here: Wireshark, replay --keylog
    #: a lab's ``phones`` folder: each phone holds the MIC the lab issued it (``fleet.mics``); None: no MIC
    mic_dir: str | None = None
    #: MAC -> the manual config key (hex) typed into that phone (``fleet boot --lab``: the lab's key for a
    #: phone with symmetric encryption); set on phones whose model takes one (spec §C.5)
    symmetric_keys: dict[str, str] = field(default_factory=dict)
    #: the phones' pause before each CAPF retry (s; spec §F.1: 3 retries, 30 s apart); a pausing phone
    #: gives its turn (``concurrency``) to the next phone while it waits
    capf_retry_delay: float = 30.0
    #: the CAPF authentication string every phone has typed in (``fleet boot --auth-string``, spec §F.7)
    auth_string: str | None = None
    #: MAC -> the string the lab set for that phone's pending operation (``fleet boot --lab``); wins
    auth_strings: dict[str, str] = field(default_factory=dict)
    #: MAC -> that phone's model profile (a site of several models: ``fleet boot --models``, or each lab
    #: phone's model); the others are ``profile``
    profiles: dict[str, str] = field(default_factory=dict)
    #: the phones' MACs, when they are not ``count`` consecutive ones from ``mac_start`` (a site's phones:
    #: ``fleet boot --models FILE`` without --count); ``count`` is then their number
    macs: tuple[int, ...] = ()
    #: start no new boot once this many boots of a shard have ended and not one request of any of them got
    #: an answer (``BootRecord.answered``): nothing answers at the target (a wrong address, a cluster
    #: down), and every later phone would wait out the same timeouts; None: boot every phone anyway
    give_up_unanswered: int | None = None
    #: after its boot each phone whose config was accepted registers over SIP with this registrar (host,
    #: TCP port, TLS port; spec §G.13, ``fleet boot --register``; host None: the CallManagers its config
    #: names, spec §H.5): ``BootRecord.sip``; None: no registration
    register: tuple[str | None, int, int] | None = None
    #: with ``register``: over the registered connection each phone calls this SIP user and exchanges
    #: that many media packets each way (spec §G.14, ``fleet boot --call``): ``BootRecord.media``
    call: tuple[str, int] | None = None
    #: DER of the firmware image-signing certificates every phone trusts (spec §D; ``fleet boot
    #: --image-signer``, and the lab's with ``--lab``, as ``boot`` has them): a load they signed is
    #: ``D-signed-by-image-key``, not ``D-unknown-signer``
    image_signers: tuple[bytes, ...] = ()
    #: profile fields every phone's model profile has overridden, as a scenario's ``profile`` mapping
    #: (:func:`~phoneemu.phone.profile.profile_from_dict`; ``fleet boot --capf-keygen-seconds``)
    profile_overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.count < 0:
            raise EncodeError(f"count {self.count} is negative", path="count")
        if self.call is not None and (self.register is None or not 1 <= self.call[1] <= 1000):
            raise EncodeError("call needs register, and 1..1000 packets", path="call")
        if self.concurrency < 1:
            raise EncodeError("concurrency must be at least 1", path="concurrency")
        if self.max_sockets < 1:
            raise EncodeError("max_sockets must be at least 1", path="max_sockets")
        if not self.tftp_quarantine_s >= 0:  # NaN too
            raise EncodeError(f"tftp_quarantine_s {self.tftp_quarantine_s} is not a number of seconds >= 0",
                              path="tftp_quarantine_s")
        if self.give_up_unanswered is not None and self.give_up_unanswered < 1:
            raise EncodeError("give_up_unanswered must be at least 1 (or None)", path="give_up_unanswered")
        if self.event_limit < 1:
            raise EncodeError("event_limit must be at least 1", path="event_limit")
        if not self.capf_retry_delay >= 0:  # NaN too
            raise EncodeError(f"capf_retry_delay {self.capf_retry_delay} is not a number of seconds >= 0",
                              path="capf_retry_delay")
        if self.auth_string is not None and not (self.auth_string.isascii() and self.auth_string.isdigit()
                                                 and 4 <= len(self.auth_string) <= 16):
            raise EncodeError(f"--auth-string {self.auth_string!r}: 4..16 digits (spec §F.7)",
                              path="auth-string")
        if self.blksize is not None and not 8 <= self.blksize <= 65464:
            raise EncodeError(f"blksize {self.blksize} outside 8..65464 (RFC 2348)", path="blksize")
        if self.macs:
            if len(self.macs) != self.count:
                raise EncodeError(f"count {self.count} is not the {len(self.macs)} MACs given", path="count")
            if len(set(self.macs)) != len(self.macs):
                raise EncodeError("a MAC is given twice", path="macs")
            for value in self.macs:
                mac_text(value)  # raises outside 48 bits
        else:
            mac_range(self.mac_start, self.count)
        resolve_event_loop(self.event_loop)  # raises for an unknown or missing loop
        for name in {self.profile, *self.profiles.values()}:
            profile_from_dict(name, self.profile_overrides)  # raises for an unknown name, a bad override


def fleet_macs(spec: FleetSpec) -> Sequence[int]:
    """The MACs of a fleet, in boot order: ``spec.macs``, else ``count`` consecutive from ``mac_start``."""
    return spec.macs or mac_range(spec.mac_start, spec.count)


@dataclass(kw_only=True)
class ShardResult:
    """What one process reports back: metrics, optional records and cache figures."""

    shard: int
    metrics: FleetMetrics
    records: list[BootRecord] = field(default_factory=list)
    not_started: int = 0
    setup_s: float = 0.0
    verify_hits: int = 0
    verify_misses: int = 0
    intern_hits: int = 0
    intern_misses: int = 0
    cpu_s: float = 0.0  # user + system CPU time of this process during the boots
    gave_up: str | None = None  # why no new boot started (FleetSpec.give_up_unanswered), else None
    #: the MACs of the phones not started, as runs of consecutive MACs (first, last), in boot order: the
    #: shard's queue when it stopped (was not kept: ``fleet boot`` named them only when it kept records)
    not_started_runs: list[tuple[int, int]] = field(default_factory=list)

    def to_state(self) -> dict[str, Any]:
        return {"shard": self.shard, "metrics": self.metrics.to_state(),
                "records": [r.as_dict() for r in self.records], "not_started": self.not_started,
                "not_started_runs": [list(run) for run in self.not_started_runs],
                "setup_s": self.setup_s, "verify_hits": self.verify_hits, "verify_misses": self.verify_misses,
                "intern_hits": self.intern_hits, "intern_misses": self.intern_misses, "cpu_s": self.cpu_s,
                "gave_up": self.gave_up}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ShardResult:
        recs = [BootRecord.from_dict(r) for r in state["records"]]
        return cls(shard=int(state["shard"]), metrics=FleetMetrics.from_state(state["metrics"]), records=recs,
                   not_started=int(state["not_started"]), setup_s=float(state["setup_s"]),
                   verify_hits=int(state["verify_hits"]), verify_misses=int(state["verify_misses"]),
                   intern_hits=int(state["intern_hits"]), intern_misses=int(state["intern_misses"]),
                   cpu_s=float(state["cpu_s"]), gave_up=state.get("gave_up"),
                   not_started_runs=[(int(a), int(b)) for a, b in state.get("not_started_runs", ())])


# --------------------------------------------------------------------------- scenario entry point
async def _register(phone: Phone, spec: FleetSpec, rec: BootRecord) -> BootRecord:
    """``spec.register`` (and ``spec.call`` over that connection) after a boot whose config was accepted:
    the record with its registration's (and call's) outcome."""
    assert spec.register is not None
    host, sip_port, sips_port = spec.register
    media: dict[str, str | None] = {}
    if spec.call is not None:
        called = await phone.call(host, sip_port, sips_port, target=spec.call[0], packets=spec.call[1],
                                  timeout=spec.tvs_timeout)
        sip = called.registration
        if sip is not None and sip.registered:
            flowed = called.media_flowed
            media = {"media": called.rule, "media_suite": (called.suite or "RTP") if flowed else None,
                     "media_reason": None if flowed else called.reason[:300]}
    else:
        sip = await phone.register_sip(host, sip_port, sips_port, timeout=spec.tvs_timeout)
    assert sip is not None
    return dataclasses.replace(rec, sip=sip.rule, sip_reason=None if sip.registered else sip.reason[:300],
                               sip_server=sip_server_of(sip), sip_passed_over=sip.passed_over or None,
                               **media)  # type: ignore[arg-type]


def sip_server_of(result: SipResult) -> str | None:
    """``HOST:PORT over tls`` of the CallManager a registration ended with (None: none was tried)."""
    if not result.server:
        return None
    return f"{result.server} over {result.transport}" if result.transport else result.server


async def boot_many(phones: list[Phone], target: BootTarget, *, concurrency: int) -> list[BootReport]:
    """Boot every phone once against ``target``, at most ``concurrency`` at a time; reports in order."""
    if concurrency < 1:
        raise EncodeError("concurrency must be at least 1", path="concurrency")
    reports: list[BootReport | None] = [None] * len(phones)
    todo = iter(range(len(phones)))

    async def worker() -> None:
        for i in todo:
            reports[i] = await phones[i].boot(target)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(phones)))))
    return [r for r in reports if r is not None]


# --------------------------------------------------------------------------- one shard
def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _previous_config(config_dir: Path, mac: str) -> AcceptedConfig | None:
    """The phone's previous config: the body of ``SEP<MAC>.cnf.xml.sgn`` (else ``.cnf.xml``)."""
    found = phone_config_in(config_dir, mac)
    if found is None:
        return None
    try:
        data = found.read_bytes()
        xml = signed.parse(data).body if found.name.endswith(".sgn") else data
        return AcceptedConfig(file=found.name, xml=xml, config=config_fmt.parse(xml))
    except (OSError, DecodeError):
        return None


class _Prestater:
    """Applies a :class:`Prestate` to new phones (trust lists parsed once per process)."""

    def __init__(self, pre: Prestate, profile: PhoneProfile) -> None:
        limit = profile.trust_list_limit
        self.ctl = SHARED_CACHE.trust_list(pre.ctl, kind="CTL", limit=limit) if pre.ctl else None
        self.itl = SHARED_CACHE.trust_list(pre.itl, kind="ITL", limit=limit) if pre.itl else None
        self.config_dir = Path(pre.config_dir) if pre.config_dir else None

    def apply(self, phone: Phone) -> None:
        """Each part given replaces the phone's own; a part not given keeps what its --flash holds (its
        CTL, ITL, config and their rules), as ``--installed-itl`` documents: not wiped."""
        store = phone.store
        ctl_rule: str | None
        itl_rule: str | None
        cfg_rule: str | None
        ctl, itl, cfg = store.ctl, store.itl, store.config
        ctl_rule, itl_rule, cfg_rule = store.ctl_rule, store.itl_rule, store.config_rule
        if self.ctl is not None:
            ctl, ctl_rule = self.ctl, PRESTATE_RULES[0]
        if self.itl is not None:
            itl, itl_rule = self.itl, PRESTATE_RULES[1]
        if self.config_dir is not None:
            cfg, cfg_rule = _previous_config(self.config_dir, phone.mac), PRESTATE_RULES[2]
        store.restore(ctl=ctl, itl=itl, config=cfg, ctl_rule=ctl_rule, itl_rule=itl_rule,
                      config_rule=cfg_rule)


def asked_target(spec: FleetSpec) -> BootTarget:
    """``spec.target`` at ``spec.address``, the target the phones' fetchers ask (module rules); the target
    itself when no other address is given."""
    if spec.address is None or spec.address == spec.target.host:
        return spec.target
    return dataclasses.replace(spec.target, host=spec.address)


def fetcher_for(phone: Phone, spec: FleetSpec, pool: TftpClientPool | None,
                asked: BootTarget | None = None) -> Fetcher | None:
    """``Phone.fetcher_for`` of ``asked`` (default :func:`asked_target`) with ``spec.blksize``; None = let
    the phone choose (no option, ``spec.target`` itself asked)."""
    t = asked if asked is not None else asked_target(spec)
    if spec.blksize is None:
        return None if t is spec.target else phone.fetcher_for(t)
    tftp = TftpFetcher(t.host, t.tftp_port, blksize=spec.blksize, timeout=spec.fetch_timeout,
                       retries=spec.fetch_retries, pool=pool, max_time=phone.fetch_max_time)
    if t.use_http and phone.profile.uses_http_first:
        http = HttpFetcher(t.host, t.http_port or 6970, timeout=phone.http_timeout,
                           max_time=phone.fetch_max_time)
        return HttpThenTftpFetcher(http, tftp)
    return tftp


class _HttpsConfigWays:
    """The HTTPS config download's getter (§H.1) each phone of a shard boots with (module rules): one per
    model, made at its first phone (:meth:`Phone.https_config_for` of ``asked``: the model's TLS versions,
    the fleet's keylog and HTTP wait, the same for every phone) and shared, a getter holding no state
    between requests; None when ``asked`` says not to (``use_https_config`` off). Whether a phone asks it is
    its boot's rule (:func:`~phoneemu.phone.rules.https_config_applies`), not this one's."""

    __slots__ = ("_asked", "_made")

    def __init__(self, asked: BootTarget) -> None:
        self._asked = asked
        self._made: dict[str, HttpsConfigGetter | None] = {}

    def of(self, phone: Phone) -> HttpsConfigGetter | None:
        name = phone.profile.name
        if name not in self._made:
            self._made[name] = phone.https_config_for(self._asked)
        return self._made[name]


def _raised_text(exc: BaseException) -> str:
    """A boot's exception as one line: ``RuntimeError: boom (at phone/boot.py:120 in boot)``, where it was
    raised (the innermost frame; was the exception's text twice: ``RuntimeError: boom RuntimeError:
    boom``)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    if frames:
        last = frames[-1]
        parts = Path(last.filename).parts
        where = f" (at {'/'.join(parts[-2:])}:{last.lineno} in {last.name})"
    text = " ".join(str(exc).split())  # one line, whatever the exception's text holds
    return f"{type(exc).__name__}: {text}{where}"


class _UnreadyError(Exception):
    """A phone of the run that cannot be made, and why (its lab MIC, its flash, its manual key)."""

    def __init__(self, why: str, error: PhoneEmuError) -> None:
        super().__init__(why)
        self.why = why
        self.error = error


def _checked(what: str, step: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """``step(*args, **kwargs)``; a PhoneEmuError becomes :class:`_UnreadyError` saying ``what`` failed."""
    try:
        return step(*args, **kwargs)
    except PhoneEmuError as exc:
        raise _UnreadyError(f"{what}: {exc}", exc) from exc


class _Model:
    """What the phones of one model share: the profile, the TVS asker and CAPF runner (the model's TLS
    versions; stateless, so one for all: issue #6, each phone made its own CAPF runner) and the
    prestate (the model's trust-list limit)."""

    __slots__ = ("capf", "prestate", "profile", "tvs")

    def __init__(self, spec: FleetSpec, name: str, tvs: TvsAsker | None) -> None:
        overrides = spec.profile_overrides
        self.profile = profile = profile_from_dict(name, overrides) if overrides else get_profile(name)
        self.tvs = tvs if tvs is not None else net_tvs_asker(
            timeout=spec.tvs_timeout, tls_versions=profile.tls_versions, keylog=spec.keylog)
        # the runner a Phone makes by default (its capf_timeout, 30 s), made once
        self.capf: CapfRunner = net_capf_runner(tls_versions=profile.tls_versions, keylog=spec.keylog)
        self.prestate = _Prestater(spec.prestate, profile) if spec.prestate is not None else None


class _Models:
    """Per model profile of a fleet (``FleetSpec.profiles``): its :class:`_Model`, made once."""

    def __init__(self, spec: FleetSpec, tvs: TvsAsker | None) -> None:
        self.spec, self.tvs = spec, tvs
        self._made: dict[str, _Model] = {}

    def of(self, mac: str) -> _Model:
        name = self.spec.profiles.get(mac, self.spec.profile)
        made = self._made.get(name)
        if made is None:
            made = self._made[name] = _Model(self.spec, name, self.tvs)
        return made


def fleet_clock(offset: int) -> Callable[[], int]:
    """The phones' clock: ``int(time.time()) + offset`` at each call (Unix seconds, the scenario's offset).
    Built of C callables (``time.time`` read by ``iter``, ``int`` and ``+`` applied by ``map``): a read runs
    no Python function, where a closure ran one for each of a boot's ~27 reads (issue #6). ``time.time`` is
    the one ``time`` holds when the clock is made: a fake patched later is not read (patch it first)."""
    seconds = map(int, iter(time.time, None))  # time.time() never returns None: the iterator never ends
    return map(operator.add, seconds, itertools.repeat(offset)).__next__


class PhoneMaker:
    """What the phones of a fleet process share while they are made (:func:`make_phones`): the clock, each
    model's profile, TVS asker, CAPF runner and prestate, the lab's ``phones`` folder, the image-signing
    certificates (parsed once), the TFTP pool and the pause before a CAPF retry (``sleep``). The fleet's
    flash folder (``spec.flash_dir``) is made here: one that cannot be (under a file) is an OSError of the
    setup, before any phone, not each phone's failure."""

    __slots__ = ("clock", "mic_dir", "models", "pool", "signers", "sleep", "spec")

    def __init__(self, spec: FleetSpec, *, pool: TftpClientPool | None, tvs: TvsAsker | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if spec.flash_dir:
            Path(spec.flash_dir).mkdir(parents=True, exist_ok=True)
        self.spec, self.pool, self.sleep = spec, pool, sleep
        self.clock = fleet_clock(spec.clock_offset_s)
        self.models = _Models(spec, tvs)
        self.mic_dir = Path(spec.mic_dir) if spec.mic_dir is not None else None
        self.signers = tuple(load_cert_der(der, path="image_signers") for der in spec.image_signers)

    def make(self, mac: str) -> Phone:
        """The phone ``mac`` (see :func:`make_phones`); :class:`_UnreadyError` or :class:`FlashInUseError`
        when it cannot be made."""
        spec, model = self.spec, self.models.of(mac)
        profile, pre = model.profile, model.prestate
        mic = _checked("lab MIC", lab_mic, self.mic_dir, mac) if self.mic_dir is not None else None
        flash = None
        if spec.flash_dir:
            folder = Path(spec.flash_dir) / mac
            _checked("flash", check_flash_owner, folder, mac=mac, profile=profile.name)
            # atomic, not fsynced (our convention): the fsyncs halved a --flash storm's rate on a VM disk;
            # another process's hold waited for FLEET_LOCK_WAIT at most (this loop's other phones would
            # stall, flash module rules): past it this phone fails, its reason naming the folder
            flash = Flash(folder, profile=profile, durable=False, lock_wait=FLEET_LOCK_WAIT)
        phone = Phone(mac=mac, profile=profile, flash=flash, clock=self.clock, mic=mic,
                      events=EventLog(spec.event_limit, max(1, min(8, spec.event_limit))),
                      fetch_timeout=spec.fetch_timeout, fetch_retries=spec.fetch_retries,
                      fetch_max_time=spec.fetch_max_time, http_timeout=spec.fetch_timeout,
                      tftp_pool=self.pool, tvs=model.tvs, capf=model.capf, keylog=spec.keylog,
                      capf_retry_delay=spec.capf_retry_delay, sleep=self.sleep, image_signers=self.signers)
        if pre is not None:
            pre.apply(phone)
        key = spec.symmetric_keys.get(mac)
        if key is not None and profile.symmetric_key_bits:
            _checked("lab symmetric key", phone.set_symmetric_key, key)
        auth = spec.auth_strings.get(mac, spec.auth_string)
        if auth is not None:
            _checked("CAPF authentication string", phone.enter_auth_string, auth)
        return phone


def make_phones(spec: FleetSpec, macs: Sequence[int], *, pool: TftpClientPool | None,
                tvs: TvsAsker | None = None, unready: list[tuple[str, str]] | None = None,
                sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                maker: PhoneMaker | None = None) -> list[Phone]:
    """The phones of ``macs`` (shared pool and TVS asker; prestate applied; ``spec.mic_dir`` and
    ``spec.symmetric_keys``: each with its lab MIC and manual key; ``sleep``: their pause before a CAPF
    retry; ``maker``: what they share, made once by the caller — a shard makes each phone as its boot
    starts — else here for these phones). A phone whose lab MIC does not load, whose flash folder is another
    phone's or another model's (:func:`~phoneemu.phone.phone.check_flash_owner`) or held by another process
    (never waited for: :mod:`phoneemu.phone.flash` rules), or whose key its model refuses, is not made: its
    MAC and why go to ``unready`` (the error is raised when it is None)."""
    made = maker if maker is not None else PhoneMaker(spec, pool=pool, tvs=tvs, sleep=sleep)
    phones: list[Phone] = []
    for value in macs:
        mac = mac_text(value)
        try:
            phone = made.make(mac)
        except _UnreadyError as exc:
            if unready is None:
                raise exc.error from None
            unready.append((mac, exc.why))
            continue
        except FlashInUseError as exc:  # its flash held by another process: not waited for (above)
            if unready is None:
                raise
            unready.append((mac, f"flash: {exc}"))
            continue
        phones.append(phone)
    return phones


class _Turns(FifoSlots):
    """At most ``n`` boots of a shard hold a turn at once (``take`` / ``give``: :class:`FifoSlots`, served
    in the order they asked, a free turn taken without a lock's coroutines): a shard takes and gives one a
    boot (issue #6). A phone pausing before a CAPF retry (its ``sleep``, spec §F.1: 30 s) gives its turn to
    the next phone meanwhile and takes one again to go on, so a CAPF outage does not hold every turn for
    3 x 30 s while the other phones wait to start; ``pausing`` counts them. After ``stop()`` (Ctrl-C,
    --max-time) pauses end at once: the boots under way finish now, not after their remaining pauses."""

    __slots__ = ("_stopped", "pausing")

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self._stopped = asyncio.Event()
        self.pausing = 0

    def stop(self) -> None:
        self._stopped.set()

    async def pause(self, seconds: float) -> None:
        self.pausing += 1
        self.give()
        try:
            if not self._stopped.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), seconds)
        finally:
            self.pausing -= 1
        await self.take()  # (cancelled: no turn taken back; the run is ending anyway)


#: how many of the most common failures (deciding rules) progress reports carry, a shard's and the merge
FAILING_SHOWN = 3


def _gave_up_text(unanswered: int, where: str) -> str:
    """Why a shard gives up (``FleetSpec.give_up_unanswered``), counted in number: ``the first phone got no
    answer ...``, ``the first 32 phones got no answer ...``."""
    first = "the first phone" if unanswered == 1 else f"the first {unanswered} phones"
    return f"{first} got no answer to any request from {where} (every one timed out or was unreachable)"


async def run_shard(spec: FleetSpec, macs: Sequence[int], *, shard: int = 0,
                    on_progress: Callable[[int, int, dict[str, int], int, int], None] | None = None,
                    ready: Callable[[], Any] | None = None,
                    progress_interval: float = 0.25,
                    should_stop: Callable[[], bool] | None = None,
                    on_give_up: Callable[[str], None] | None = None) -> ShardResult:
    """Boot the phones ``macs`` of ``spec`` in this loop; see the module docstring.

    ``ready`` (optional, may be a coroutine function) is awaited after the setup (what the phones share:
    :class:`PhoneMaker`; ``ShardResult.setup_s``) and before the first phone is made and booted (shards
    start their storm together). ``on_progress(done, ok, failing, pausing, capf_failed)``
    (``failing``: the deciding rules of the most common failures so far, with their counts; ``pausing``:
    the phones waiting before a CAPF retry now; ``capf_failed``: of the ``ok``, those whose CAPF operation
    failed, as the summary says them) is called every
    ``progress_interval`` seconds and at the end. Once ``should_stop()`` is true no new boot starts
    (the boots under way finish; the rest count as not started), like the end of ``max_time_s``.
    ``on_give_up(reason)`` is told once when the shard gives up (``FleetSpec.give_up_unanswered``).
    """
    t_setup = time.perf_counter()
    old_gc_threshold = gc.get_threshold()
    cache = signatures.VerifyCache() if spec.verify_cache else None
    old_cache = signatures.set_verify_cache(cache) if cache is not None else None
    cache_hits0, cache_miss0 = SHARED_CACHE.hits, SHARED_CACHE.misses
    metrics = FleetMetrics()
    records: list[BootRecord] = []
    pool = TftpClientPool(max_sockets=spec.max_sockets, timeout=spec.fetch_timeout,
                          retries=spec.fetch_retries, quarantine_s=spec.tftp_quarantine_s)
    try:
        turns = _Turns(spec.concurrency)
        asked = asked_target(spec)  # once: the phones ask its address, their reports name spec.target
        https_config = _HttpsConfigWays(asked)  # §H.1, 6971: one getter a model, shared by its phones
        maker = PhoneMaker(spec, pool=pool, sleep=turns.pause)  # shared; each phone made as its boot starts
        waiting = deque(macs)
        # the long-lived objects of the setup (models, askers, caches): kept out of the cyclic GC's full
        # collections during the storm (gc.freeze moves them to the permanent generation)
        gc.collect()
        gc.freeze()
        gc.set_threshold(*_STORM_GC_THRESHOLD)
        setup_s = time.perf_counter() - t_setup
        if ready is not None:
            got = ready()
            if asyncio.iscoroutine(got):
                await got
        cpu0 = _cpu_s()
        start = time.perf_counter()
        stop_at = start + spec.max_time_s if spec.max_time_s is not None else None
        done, ok = 0, 0
        unanswered, answered = 0, False  # FleetSpec.give_up_unanswered
        gave_up: str | None = None

        def stopping() -> bool:
            """No new boot starts (``max_time_s`` reached, ``should_stop()``, or nothing answers)."""
            return (stop_at is not None and time.perf_counter() >= stop_at) or gave_up is not None or \
                (should_stop is not None and should_stop())

        def heard(rec: BootRecord) -> None:
            """Count a boot towards ``give_up_unanswered``."""
            nonlocal unanswered, answered, gave_up
            if rec.answered:
                answered = True
                return
            unanswered += 1
            limit = spec.give_up_unanswered
            if limit is not None and not answered and unanswered >= limit and gave_up is None:
                where = host_port(spec.target.host, spec.target.tftp_port)
                gave_up = _gave_up_text(unanswered, where)
                turns.stop()  # pausing phones go on at once
                if on_give_up is not None:
                    on_give_up(gave_up)

        def keep(rec: BootRecord) -> None:
            """Count a record (and keep it for --json and --junit)."""
            nonlocal done
            metrics.add(rec)
            if spec.keep_records:
                records.append(rec)
            done += 1

        def made(value: int) -> Phone | None:
            """The phone ``value``, made as its boot starts (module rules); None when it cannot be (its lab
            MIC, its flash, its key: a failed phone, never booted, its reason said)."""
            unready: list[tuple[str, str]] = []
            try:
                phones = make_phones(spec, (value,), pool=pool, unready=unready, sleep=turns.pause,
                                     maker=maker)
            except OSError as exc:  # its flash cannot be read or written (a file where its folder goes)
                unready.append((mac_text(value), f"flash: {exc}"))
                phones = []
            for mac, why in unready:
                keep(BootRecord(mac=mac, outcome="error", rule=NOT_BOOTED, latency_s=0.0, end_s=0.0,
                                reason=why[:300]))
            return phones[0] if phones else None

        async def boot_one(value: int) -> None:
            """One phone's making and boot, holding a turn (``turns``) except while it pauses."""
            nonlocal done, ok
            try:
                t0 = time.perf_counter()
                phone = made(value)
                if phone is None:
                    return
                try:
                    report = await phone.boot(spec.target, fetcher=fetcher_for(phone, spec, pool, asked),
                                              https_config=https_config.of(phone))
                except Exception as exc:  # the boot contract says never; count it, keep its record, go on
                    t1 = time.perf_counter()
                    rec = metrics.add_error(phone.mac, _raised_text(exc), latency_s=t1 - t0, end_s=t1 - start)
                    if spec.keep_records:  # was counted only: --json and --junit lacked the phone
                        records.append(rec)
                    done += 1
                    return
                t1 = time.perf_counter()
                rec = BootRecord.of(report, latency_s=t1 - t0, end_s=t1 - start,
                                    profile=phone.profile.name if spec.profiles else None)
                if spec.register is not None and report.config == "accepted":
                    rec = await _register(phone, spec, rec)
                heard(rec)
                keep(rec)
                ok += rec.outcome == "ok"
            finally:
                turns.give()

        def report_progress() -> None:
            if on_progress is not None:
                on_progress(done, ok, dict(metrics.failed_by_rule.most_common(FAILING_SHOWN)), turns.pausing,
                            metrics.booted_capf_failed)

        async def reporter() -> None:
            while True:
                await asyncio.sleep(progress_interval)
                report_progress()
                if stopping():
                    turns.stop()  # pausing phones go on at once

        rep = asyncio.create_task(reporter())
        booting: set[asyncio.Task[None]] = set()
        try:
            while waiting:
                await turns.take()
                if stopping():
                    turns.give()
                    break
                task = asyncio.create_task(boot_one(waiting.popleft()))  # its task alone holds it: freed
                booting.add(task)  # when its boot ends (module rule)
                task.add_done_callback(booting.discard)
            if booting:
                await asyncio.gather(*booting)
        finally:
            rep.cancel()
            for task in booting:
                task.cancel()
        metrics.wall_s = time.perf_counter() - start
        cpu_s = _cpu_s() - cpu0
        report_progress()
        metrics.peak_rss[f"shard-{shard}"] = peak_rss_mib()
        metrics.add_tftp(requests=pool.requests, retransmitted=pool.retransmitted,
                         retransmits=pool.retransmits)
        return ShardResult(shard=shard, metrics=metrics, records=records,
                           not_started=len(macs) - done, not_started_runs=mac_runs(waiting),
                           setup_s=setup_s, verify_hits=cache.hits if cache else 0,
                           verify_misses=cache.misses if cache else 0,
                           intern_hits=SHARED_CACHE.hits - cache_hits0,
                           intern_misses=SHARED_CACHE.misses - cache_miss0, cpu_s=cpu_s, gave_up=gave_up)
    finally:
        if cache is not None:
            signatures.set_verify_cache(old_cache)
        gc.set_threshold(*old_gc_threshold)
        gc.unfreeze()
        await pool.close()
