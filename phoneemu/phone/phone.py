"""The phone orchestrator: one emulated phone, its flash, trust store and boots (spec §G, §F, §C.5).

:class:`Phone` ties the pieces together: the trust store (loaded from flash, spec §G.1), the event
log (last 200 events, last 30 status messages, spec §H.2), the boot sequence
(:mod:`phoneemu.phone.boot`) and the user actions of the phone's Settings menu:

* :meth:`Phone.erase_trust` — Settings → erase CTL/ITL ("Erasing CTL and ITL files", spec §G.6);
* :meth:`Phone.factory_reset` — everything but the MIC is forgotten (spec §G.6);
* :meth:`Phone.set_symmetric_key` — "Set Cfg Encrypt Key" (hex; 32 zero digits clear it, spec §C.5);
* :meth:`Phone.open_https` — open an HTTPS application server (directory, XML services), authenticated
  through the CTL/ITL or TVS VERIFY (spec §E.7.1, :mod:`phoneemu.phone.https`);
* :meth:`Phone.enter_auth_string` — the CAPF authentication string (4..16 digits, spec §F.7), used at
  the next CAPF session that asks for one (capfAuthMode 1).

Rebooting is calling :meth:`Phone.boot` again: state persists in flash; the TVS cache (RAM) is kept by
this object across boots and honours its TTL (our convention, see :mod:`phoneemu.phone.boot`).

The transport a boot uses (spec §H.1): HTTP 6970 first, TFTP on failure, when the profile says so
(``uses_http_first``) and the target allows it (``use_http``); TFTP only otherwise. Tests and tools
may pass any :class:`~phoneemu.net.fetch.Fetcher` (e.g. a :class:`~phoneemu.net.fetch.MemoryFetcher`).
The config may come over HTTPS first (TCP 6971, §H.1, when the phone's rules say so): a boot that builds
its fetcher from the target builds that way too (:meth:`Phone.https_config_for`: the target's
``https_config_port``, 6971 by default, unless ``use_https_config`` is off); one given a fetcher uses the
``https_config`` getter it is given, if any (an offline boot: none, the config is not asked over HTTPS).

The whole-transfer cap of a TFTP download (our convention; the spec gives none, §H.3 only names the
per-packet "TFTP timeout"): the per-packet timeout and its retries do not bound a transfer — a server
that sends each block just inside the timeout holds the phone for ``max_size / 512`` timeouts (hours
for the 16 MiB limit). So every TFTP transfer of a phone is also cut after ``fetch_max_time`` seconds;
by default :func:`default_tftp_max_time`: :data:`DEFAULT_TFTP_MAX_TIME` (60 s), raised to twice one
block's full retry budget (``2 * fetch_timeout * (fetch_retries + 1)``) when that is longer. Why 60 s:
the files a phone fetches at boot are small (trust lists up to the profile's ``trust_list_limit``, 64
KiB by default; configs of a few KiB) — about 130 lockstep 512-byte blocks, under 15 s even at 100 ms
per round trip; 60 s leaves a wide margin for a loaded server, and a stalled transfer still ends with
its own "stalled at block B after N retries" rather than the cap. A transfer cut by the cap fails with
``kind="timeout"``: the timeline says "TFTP transfer of NAME took longer than N s (at block B)" and the
status shows "TFTP timeout" (spec §H.3). An HTTP 6970 download is capped by the same ``fetch_max_time``,
``http_timeout`` bounding each of its waits (:mod:`phoneemu.net.http`).

Our conventions: beside the flash files the phone writes ``phone.json`` (MAC and profile name) so
``phoneemu phone show`` and repeated ``phoneemu boot --flash DIR`` runs know whose flash it is. A MIC
given to the constructor replaces the one in flash (the MIC is fixed for the phone's life). Made from a
flash, the phone writes it back at once only when that changes something
(:meth:`~phoneemu.phone.flash.Flash.unchanged`): a new folder (its ``phone.json`` and ``state.json``), a
MIC other than the one on flash, a flash whose load noted a problem (the save settles it as its rules
say), a ``state.json`` or ``phone.json`` other than a save writes (an older phoneemu's), a folder not
0700; a flash it loaded as a save would leave it is not touched (was: written back at every
construction, each file read again to find it unchanged — a third of a fleet's setup).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography import x509

from phoneemu import json_doc
from phoneemu.crypto.keys import PrivateKey
from phoneemu.errors import DecodeError, EncodeError, PhoneEmuError
from phoneemu.files import read_at_most
from phoneemu.formats import config as config_fmt
from phoneemu.net.fetch import Fetcher, HttpFetcher, HttpThenTftpFetcher, TftpFetcher
from phoneemu.net.tftp_client import TftpClientPool
from phoneemu.phone.answer import answer_call
from phoneemu.phone.boot import (
    BootReport,
    BootTarget,
    CapfRunner,
    HttpsConfigGetter,
    TvsAsker,
    net_capf_runner,
    net_tvs_asker,
    run_boot,
)
from phoneemu.phone.call import CallResult, place_call
from phoneemu.phone.events import EventLog
from phoneemu.phone.flash import Flash, dropped_credential
from phoneemu.phone.https import HttpsResult, directory_scheme, open_https, open_plain_http
from phoneemu.phone.https_config import HTTPS_CONFIG_PORT, HttpsConfigClient
from phoneemu.phone.profile import PROFILES, PhoneProfile
from phoneemu.phone.sip import DigestCache, SipResult
from phoneemu.phone.sip import register as register_sip
from phoneemu.phone.store import Credential, TrustStore
from phoneemu.protocols.sip import SIP_PORT, SIPS_PORT

__all__ = ["DEFAULT_TFTP_MAX_TIME", "PHONE_FILE", "Phone", "check_flash_owner", "default_tftp_max_time",
           "read_phone_file"]

#: Seconds a phone's whole TFTP transfer may take by default (our convention, see module docstring)
DEFAULT_TFTP_MAX_TIME = 60.0


def default_tftp_max_time(fetch_timeout: float, fetch_retries: int) -> float:
    """The phone's default whole-transfer TFTP cap: 60 s, or twice one block's retry budget when longer."""
    return max(DEFAULT_TFTP_MAX_TIME, 2.0 * fetch_timeout * (fetch_retries + 1))

#: Our identity file in the flash directory: {"mac": ..., "profile": ...}.
PHONE_FILE = "phone.json"


def read_phone_file(path: Path | str) -> dict[str, Any]:
    """The ``phone.json`` of a flash directory ({} when there is none). A file that is there but
    cannot be used is a DecodeError naming it and where it goes wrong (not "no phone.json"): not
    JSON (nested too deeply too), not an object, a ``mac`` that is not a MAC (text) or a ``profile`` that
    is not the name of a profile (a list, a number: never a TypeError)."""
    p = Path(path) / PHONE_FILE
    try:
        data = read_at_most(p, 4096, what=PHONE_FILE)
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except OSError as exc:
        raise DecodeError(f"cannot read: {exc.strerror or exc}", path=str(p)) from None
    except PhoneEmuError as exc:
        raise DecodeError(f"{exc.message}; delete it and boot with --mac", path=str(p)) from None
    try:
        obj = json_doc.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DecodeError("corrupt: not UTF-8; delete it and boot with --mac", path=str(p),
                          offset=exc.start) from None
    except json.JSONDecodeError as exc:
        why = exc.msg.removesuffix(" at")
        raise DecodeError(f"corrupt: {why} at line {exc.lineno} column {exc.colno}; delete it and boot "
                          f"with --mac", path=str(p), offset=exc.pos) from None
    if not isinstance(obj, dict):
        raise DecodeError(f"corrupt: expected a JSON object, got {type(obj).__name__}; delete it and "
                          f"boot with --mac", path=str(p))
    if "mac" in obj:
        try:
            config_fmt.normalise_mac(obj["mac"])
        except EncodeError as exc:
            raise DecodeError(f"corrupt: mac: {exc.message}; delete it and boot with --mac",
                              path=str(p)) from None
    if "profile" in obj and not (isinstance(obj["profile"], str) and obj["profile"] in PROFILES):
        raise DecodeError(f"corrupt: profile {json.dumps(obj['profile'])[:60]} is none of "
                          f"{', '.join(sorted(PROFILES))}; delete it and boot with --mac", path=str(p))
    return obj


def check_flash_owner(path: Path | str, *, mac: str, profile: str) -> None:
    """A flash belongs to one phone, of one model: a ``phone.json`` naming another MAC, or another
    profile, is refused (a DecodeError naming the folder and the way out). Booting a cp-8861's flash
    as a cp-7940 would have relabelled it and kept an ITL the model never installs."""
    ident = read_phone_file(path)
    if ident.get("mac") and config_fmt.normalise_mac(ident["mac"]) != mac:
        raise DecodeError(f"holds the flash of phone {ident['mac']}, not {mac}", path=str(path))
    if ident.get("profile") and ident["profile"] != profile:
        raise DecodeError(f"holds the flash of a {ident['profile']}, not a {profile}: a flash belongs to one "
                          f"model (--profile {ident['profile']}, or another flash folder)", path=str(path))


def _last_boot(report: BootReport, store: TrustStore, at: int) -> dict[str, Any]:
    """What ``last-boot.json`` keeps of a boot (:mod:`phoneemu.phone.flash`); ``"reset_signer_held": false``
    where the ITL it refused showed that the phone's lists lack the signer of the bulk ITL reset
    (``report.held``, :attr:`phoneemu.phone.ways_out.HeldLists.reset_untrusted`), which ``phone show`` cannot
    tell from the flash (was not kept: ``phone show`` offered the reset ``boot`` had left out); absent where
    not, as in a flash of an older phoneemu. ``"ctl_reset_signer_held": false`` the same of the CTL reset,
    where the CTL it refused showed it (:attr:`~phoneemu.phone.ways_out.HeldLists.ctl_reset_untrusted`)."""
    d = report.deciding
    deciding = None if d is None else d.summary()
    t = report.target
    untrusted = report.held is not None and report.held.reset_untrusted
    ctl_untrusted = report.held is not None and report.held.ctl_reset_untrusted
    return {**({"reset_signer_held": False} if untrusted else {}),
            **({"ctl_reset_signer_held": False} if ctl_untrusted else {}),
            "at": at, "target": None if t is None else f"{t.host} (tftp {t.tftp_port})", "ok": report.ok,
            "locked_out": report.locked_out, "locked_by": sorted(store.locked_by),
            "trust": dict(report.trust),
            "config": report.config, "config_file": report.config_file, "deciding": deciding,
            "deciding_rule": None if d is None else d.rule, "deciding_kind": None if d is None else d.kind,
            "deciding_reason_code": None if d is None or d.reason_code is None else d.reason_code.value,
            "statuses": list(report.statuses)}


class Phone:
    """One emulated phone (see module docstring). ``clock`` returns Unix seconds (the scenario clock)."""

    def __init__(
        self,
        *,
        mac: str,
        profile: PhoneProfile,
        flash: Flash | None,
        clock: Callable[[], int],
        mic: tuple[x509.Certificate, PrivateKey] | Credential | None = None,
        events: EventLog | None = None,
        image_signers: Sequence[x509.Certificate] = (),
        capf_retries: int = 3,
        capf_retry_delay: float = 30.0,
        fetch_timeout: float = 1.0,
        fetch_retries: int = 5,
        fetch_max_time: float | None = None,
        http_timeout: float = 5.0,
        tvs_timeout: float = 5.0,
        capf_timeout: float = 30.0,
        tftp_pool: TftpClientPool | None = None,
        tvs: TvsAsker | None = None,
        capf: CapfRunner | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        keylog: str | Path | None = None,
    ) -> None:
        self.mac = config_fmt.normalise_mac(mac)
        self._profile = profile
        self.flash = flash
        self.clock = clock
        self.events = events if events is not None else EventLog()
        self.image_signers = tuple(image_signers)
        self.capf_retries = capf_retries
        self.capf_retry_delay = capf_retry_delay
        self.fetch_timeout = fetch_timeout
        self.fetch_retries = fetch_retries
        #: whole-transfer cap of each TFTP download (seconds); None given: default_tftp_max_time
        self.fetch_max_time = (fetch_max_time if fetch_max_time is not None
                               else default_tftp_max_time(fetch_timeout, fetch_retries))
        if self.fetch_max_time <= 0:
            raise EncodeError(f"fetch_max_time {self.fetch_max_time:g} s is not positive",
                              path="fetch_max_time")
        self.http_timeout = http_timeout
        self.tftp_pool = tftp_pool
        log = str(keylog) if keylog is not None else None
        self._tvs = tvs if tvs is not None else net_tvs_asker(
            timeout=tvs_timeout, tls_versions=profile.tls_versions, keylog=log)
        self._capf = capf if capf is not None else net_capf_runner(
            timeout=capf_timeout, tls_versions=profile.tls_versions, keylog=log)
        self._sleep = sleep
        self.tvs_timeout = tvs_timeout
        self._keylog = log
        self._auth_string: str | None = None
        self._digest_cache: DigestCache | None = None  # the registrar's last challenge (RAM: a boot forgets)
        #: shown by the next boot (the store was loaded without them); a tuple: () is shared (issue #6)
        self._flash_problems: tuple[str, ...] = ()
        if flash is not None:
            self._store = flash.load()
            self._flash_problems = tuple(f"flash: {problem}" for problem in flash.problems)
        else:
            self._store = TrustStore(profile=profile)
        if mic is not None:
            self._store.mic = mic if isinstance(mic, Credential) else Credential.of(*mic)
            # a damaged MIC on flash is still reported, with what happens now: the given one replaces it
            given = "not loaded (the MIC given replaces it)"
            self._flash_problems = tuple(p.replace(dropped_credential("mic"), given)
                                         for p in self._flash_problems)
        if flash is not None and not flash.unchanged(self._store, identity=self._identity()):
            self._save()  # a new folder, a MIC given, a flash a save repairs or completes (module docstring)

    # ------------------------------------------------------------------ views
    @property
    def store(self) -> TrustStore:
        return self._store

    @property
    def profile(self) -> PhoneProfile:
        return self._profile

    @property
    def auth_string(self) -> str | None:
        return self._auth_string

    # ------------------------------------------------------------------ persistence
    def _identity(self) -> bytes:
        """This phone's ``phone.json``: its MAC and profile name."""
        return json.dumps({"mac": self.mac, "profile": self._profile.name}, sort_keys=True).encode()

    def _save(self, store: TrustStore | None = None) -> None:
        if self.flash is None:
            return
        # phone.json in the save's lock, as the flash's own files (was written after it: flash module rules)
        self.flash.save(store if store is not None else self._store, identity=self._identity())

    def save_to(self, flash: Flash, last_report: BootReport | None = None) -> None:
        """Write this phone's trust store, keys and identity into ``flash`` (another phone's folder is
        never this phone's flash: ``replay --all --export-flash`` writes each replayed phone's state);
        ``last_report``: its last boot, as ``last-boot.json``."""
        held, self.flash = self.flash, flash
        try:
            self._save()
            if last_report is not None:
                flash.save_last_boot(_last_boot(last_report, self._store, self.clock()))
        finally:
            self.flash = held

    # ------------------------------------------------------------------ user actions
    def erase_trust(self) -> str:
        """Settings → erase CTL and ITL (spec §G.6); returns the status message."""
        msg = self._store.erase_trust_lists()
        if self.flash is not None:
            self.flash.erase_trust_lists()
        self.events.status(msg)
        return msg

    def factory_reset(self) -> str:
        """Forget everything but the MIC (spec §G.6); returns the status message."""
        msg = self._store.factory_reset()
        if self.flash is not None:
            self.flash.factory_reset()
            self._save()
        self._auth_string = None
        self.events.status(msg)
        return msg

    def set_symmetric_key(self, key: str | bytes | None) -> None:
        """Set the manual config key (hex string or bytes); None or all zero digits clears it (spec §C.5). The
        flash is written when the key changes."""
        raw: bytes | None
        if key is None or isinstance(key, bytes):
            raw = key
        else:
            text = key.strip().replace(":", "").replace(" ", "")
            try:
                raw = bytes.fromhex(text)
            except ValueError:  # what is wrong, said as everywhere a key is typed (was: "is not hex")
                raise EncodeError(f"symmetric key {key!r}: {self._key_problem(key)}",
                                  path="symmetric_key") from None
        held = self._store.symmetric_key
        self._store.set_symmetric_key(raw)
        if self._store.symmetric_key != held:  # the key it holds, typed again (fleet boot --lab): not saved
            self._save()

    def _key_problem(self, typed: str) -> str:
        """What is wrong with a manual key ``typed`` that is not hex (:func:`.encrypted.hex_key_problem`:
        a character that is no hex digit and where, or an odd number of digits, with the count this
        profile takes: 32 for a 128-bit key)."""
        from phoneemu.formats.encrypted import hex_key_problem

        bits = self.profile.symmetric_key_bits
        digits, wants = ((bits // 4,), f"{self.profile.name} takes") if bits else ((32, 64),
                                                                                   "a manual key has")
        return hex_key_problem(typed, digits=digits, wants=wants, ignore=": ") or "not hex"

    def enter_auth_string(self, digits: str | int | None) -> None:
        """Type the CAPF authentication string (4..16 digits, spec §F.7); None clears it."""
        if digits is None:
            self._auth_string = None
            return
        text = str(digits).strip()
        if not (text.isascii() and text.isdigit() and 4 <= len(text) <= 16):
            raise EncodeError("CAPF authentication string must be 4..16 digits", path="auth_string")
        self._auth_string = text

    # ------------------------------------------------------------------ boot
    def fetcher_for(self, target: BootTarget) -> Fetcher:
        """HTTP 6970 then TFTP when profile and target allow (spec §H.1), else TFTP only; each download
        capped at ``fetch_max_time`` in all, over HTTP too (``http_timeout`` bounds each HTTP wait)."""
        tftp = TftpFetcher(target.host, target.tftp_port, timeout=self.fetch_timeout,
                           retries=self.fetch_retries, pool=self.tftp_pool, max_time=self.fetch_max_time)
        if target.use_http and self._profile.uses_http_first:
            http = HttpFetcher(target.host, target.http_port or 6970, timeout=self.http_timeout,
                               max_time=self.fetch_max_time)
            return HttpThenTftpFetcher(http, tftp)
        return tftp

    def https_config_for(self, target: BootTarget) -> HttpsConfigGetter | None:
        """The way to ``target``'s HTTPS config download (TCP ``https_config_port``, default 6971, spec §H.1),
        in the profile's TLS versions, the whole exchange bounded by ``http_timeout``; None when the target
        says not to (``use_https_config`` off). Whether it is asked is the boot's rule."""
        if not target.use_https_config:
            return None
        return HttpsConfigClient(target.host, target.https_config_port or HTTPS_CONFIG_PORT,
                                 timeout=self.http_timeout, tls_versions=self._profile.tls_versions,
                                 keylog=self._keylog)

    async def boot(self, target: BootTarget, *, fetcher: Fetcher | None = None,
                   https_config: HttpsConfigGetter | None = None) -> BootReport:
        """Boot against ``target`` (or through ``fetcher``); the report of this boot. The HTTPS config
        download (§H.1): ``https_config`` when given, else built from ``target`` when no ``fetcher`` is
        given (:meth:`https_config_for`), else not tried (module docstring)."""
        def used() -> None:
            self._auth_string = None

        if https_config is None and fetcher is None:
            https_config = self.https_config_for(target)

        self._digest_cache = None  # RAM: a reboot forgets the registrar's last challenge
        report = await run_boot(
            mac=self.mac, profile=self._profile, store=self._store,
            fetcher=fetcher if fetcher is not None else self.fetcher_for(target), clock=self.clock,
            events=self.events, image_signers=self.image_signers, tvs=self._tvs, capf=self._capf,
            auth_string=self._auth_string, capf_retries=self.capf_retries,
            capf_retry_delay=self.capf_retry_delay, save=self._save if self.flash is not None else None,
            sleep=self._sleep, target=target,
            on_auth_string_used=used, flash_problems=self._flash_problems, https_config=https_config)
        self._flash_problems = ()
        if self.flash is not None:
            self.flash.save_last_boot(_last_boot(report, self._store, self.clock()))
        return report

    async def open_https(self, host: str, port: int, *, timeout: float | None = None) -> HttpsResult:
        """Open an HTTPS application server, authenticating it via CTL/ITL or TVS (spec §E.7.1)."""
        return await open_https(host, port, store=self._store, profile=self._profile, mac=self.mac,
                                events=self.events, clock=self.clock,
                                timeout=timeout if timeout is not None else self.http_timeout,
                                tvs_timeout=self.tvs_timeout, keylog=self._keylog)

    def directory_scheme(self) -> str:
        """``http`` when the config the phone holds names an http:// secure directory URL, else ``https``
        (:func:`phoneemu.phone.https.directory_scheme`)."""
        held = self._store.config
        return directory_scheme(held.config if held is not None else None)

    async def open_plain_http(self, host: str, port: int, *, timeout: float | None = None) -> HttpsResult:
        """Open the directory over plain HTTP, as a config with an http:// secure URL has it (no certificate
        to check, ``E.7.1-plain-http``)."""
        return await open_plain_http(host, port, mac=self.mac, events=self.events, clock=self.clock,
                                     timeout=timeout if timeout is not None else self.http_timeout)

    async def register_sip(self, host: str | None, sip_port: int = SIP_PORT, sips_port: int = SIPS_PORT, *,
                           timeout: float | None = None) -> SipResult:
        """Register with the CallManager's SIP registrar at ``host`` (None: the CallManagers the config's
        ``devicePool`` names, each on its own ports), over TCP (``sip_port``) or, when §G.9 says TLS,
        over TLS (``sips_port``), answering its digest challenge (spec §G.13)."""
        return await register_sip(self._store, self._profile, self.mac, host, sip_port=sip_port,
                                  sips_port=sips_port, events=self.events, clock=self.clock,
                                  timeout=timeout if timeout is not None else self.http_timeout,
                                  keylog=self._keylog, cache=self._digest)

    async def call(self, host: str | None, sip_port: int = SIP_PORT, sips_port: int = SIPS_PORT, *,
                   target: str, packets: int = 10, timeout: float | None = None,
                   pace: float = 0.0) -> CallResult:
        """Register as :meth:`register_sip` does and, over that connection, call ``target`` (a media
        resource: ``moh``, ``annunciator``, ``ivr``) and exchange ``packets`` RTP/SRTP packets (§G.14)."""
        wait = timeout if timeout is not None else self.http_timeout
        return await place_call(self._store, self._profile, self.mac, host, target=target, sip_port=sip_port,
                                sips_port=sips_port, events=self.events, clock=self.clock, timeout=wait,
                                packets=packets, keylog=self._keylog, cache=self._digest, pace=pace)

    async def answer(self, host: str | None, sip_port: int = SIP_PORT, sips_port: int = SIPS_PORT, *,
                     wait: float = 30.0, ready: Callable[[], None] | None = None,
                     timeout: float | None = None, pace: float = 0.0) -> CallResult:
        """Register as :meth:`register_sip` does, keep that connection, and answer the call the
        CallManager brings there within ``wait`` seconds (another phone's :meth:`call`, spec §G.14);
        ``ready()`` once registered."""
        return await answer_call(self._store, self._profile, self.mac, host, sip_port=sip_port,
                                 sips_port=sips_port, events=self.events, clock=self.clock,
                                 timeout=timeout if timeout is not None else self.http_timeout, wait=wait,
                                 keylog=self._keylog, cache=self._digest, ready=ready, pace=pace)

    @property
    def _digest(self) -> DigestCache:
        if self._digest_cache is None:
            self._digest_cache = DigestCache()
        return self._digest_cache

    @classmethod
    def from_flash(cls, path: Path | str, *, profile: PhoneProfile, clock: Callable[[], int],
                   mac: str | None = None, **kw: Any) -> Phone:
        """A phone for an existing flash directory (MAC from ``phone.json`` unless given)."""
        ident = read_phone_file(path)
        mac = mac or ident.get("mac")
        if not isinstance(mac, str):
            raise DecodeError(f"{path}: no {PHONE_FILE} naming the phone's MAC; give --mac", path=str(path))
        return cls(mac=mac, profile=profile, flash=Flash(path, profile=profile), clock=clock, **kw)
