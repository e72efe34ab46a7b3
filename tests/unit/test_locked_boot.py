"""A boot that ends locked (spec §G.3.5, §G.9): what the phone still acts on, over MemoryFetcher.

* A trust list refused in the trust phase: the served config is ignored, so no static file, CAPF
  operation or firmware image is asked for; the phone keeps the config it held (what SIP registers with).
* A CTL refused on a §G.9 retry, after the config was read (ours [INF], ``phoneemu.phone.boot``): the
  config read is not kept, no firmware is fetched, the report is not ok — as for a lock in the trust phase.
  A retry that *installs* a CTL locks nothing: the boot goes on to the firmware.
* The TVS answer cache (spec §E.7.2, §E.7.3, §G.1; ours, ``phoneemu.phone.store``): a config naming other
  TVS servers keeps it (an answer may come from a server the config no longer names); an ITL update
  flushes it, so no answer outlives the ITL that trusted its server (§E.1).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

from phoneemu.crypto import certs
from phoneemu.formats import config, signed, trustlist
from phoneemu.formats.config import DeviceConfig, Server
from phoneemu.formats.trustlist import Role
from phoneemu.lab.cluster import LabCluster
from phoneemu.net.fetch import MemoryFetcher
from phoneemu.phone.boot import BootReport, BootTarget
from phoneemu.phone.events import QueryKey
from phoneemu.phone.flash import Flash
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import TvsAnswer, TvsResult, TvsStatus
from phoneemu.protocols.capf import CapfClientSession, CapfResult
from tests.helpers import pristine_lab

NOW = 1_780_000_000
MAC = "0A00000000D9"
TARGET = BootTarget(host="127.0.0.1", tftp_port=69)
LOAD = "sip88xx.9-9-9"
CONFIG = config.config_file_name(MAC, "sgn")

base_lab, lab = pristine_lab("locked-boot", now=NOW, phones={MAC: {"now": NOW, "lsc_key": "rsa1024"}})

Files = Callable[[str], bytes | None]


class Tvs:
    """TVS answering ``answers`` by certificate serial (else "not found"); records the servers asked."""

    def __init__(self, lab: LabCluster, answers: dict[bytes, TvsAnswer] | None = None) -> None:
        self.lab = lab
        self.answers = answers or {}
        self.asked: list[tuple[tuple[str, int], ...]] = []

    async def __call__(self, servers: Sequence[Server], key: QueryKey, *, device_name: str,
                       accept_server: Callable[[bytes | None], bool] | None) -> TvsResult:
        self.asked.append(tuple((s.host, s.port) for s in servers))
        assert accept_server is not None and accept_server(self.lab.tvs_identity().der)
        return self.answers.get(key.serial, TvsStatus.NOT_FOUND)


class Capf:
    """A CAPF server that only counts the sessions asked of it."""

    def __init__(self) -> None:
        self.sessions = 0

    async def __call__(self, server: Server, session: CapfClientSession, *,
                       accept_server: Callable[[bytes | None], bool] | None) -> CapfResult:
        self.sessions += 1
        return CapfResult(outcome="nothing-pending", reason=1)


def make_phone(lab: LabCluster, tvs: Tvs, *, capf: Capf | None = None, flash: Path | None = None) -> Phone:
    prof = get_profile("cp-8861")
    return Phone(mac=MAC, profile=prof, flash=Flash(flash, profile=prof) if flash is not None else None,
                 clock=lambda: NOW, mic=lab.phone_identity(MAC),
                 image_signers=[lab.identity("imagesigning").cert], tvs=tvs, capf=capf or Capf(),
                 capf_retry_delay=0)


def boot(p: Phone, files: Files) -> tuple[BootReport, list[str]]:
    f = MemoryFetcher(files)
    return asyncio.run(p.boot(TARGET, fetcher=f)), list(f.requests)


def lab_config(lab: LabCluster) -> DeviceConfig:
    data = lab.get(CONFIG)
    assert data is not None
    return config.parse(signed.parse(data).body)


def signed_config(lab: LabCluster, cfg: DeviceConfig, *, signer: str = "callmanager") -> bytes:
    ident = lab.callmanager() if signer == "callmanager" else lab.identity(signer)
    return signed.build(body=config.build(cfg), filename=CONFIG, signer=ident.signer, timestamp=NOW)


def serving(lab: LabCluster, overrides: dict[str, bytes | None]) -> Files:
    return lambda n: overrides[n] if n in overrides else lab.get(n)


def rule_list(r: BootReport) -> list[str]:
    return [d.rule for d in r.decisions]


def first_boot(lab: LabCluster, p: Phone) -> BootReport:
    """ITL and the lab's config installed (no CTL: the lab is not in mixed mode)."""
    r, _ = boot(p, lab.get)
    assert r.ok and r.trust == {"CTL": "absent", "ITL": "installed"} and not r.locked_out, rule_list(r)
    return r


def secure_config_with_load(lab: LabCluster) -> bytes:
    """The lab's config in encrypted mode (§G.9 applies: no CTL) naming a new signed load."""
    lab.set_load(LOAD, now=NOW)
    cfg = dataclasses.replace(lab_config(lab), device_security_mode=3, load_information=LOAD)
    return signed_config(lab, cfg)


def rogue_ctl(lab: LabCluster) -> bytes:
    """A CTL of ``lab``'s ITL records signed by its CAPF key: a signer unknown to the ITL and to TVS."""
    return trustlist.build(kind="CTL", records=lab.itl_records(), signer=lab.identity("capf").signer,
                           timestamp=NOW)


class CtlOnRetry:
    """No CTL on the boot's first requests; from the §G.9 retries on, ``ctl`` under every CTL name (None:
    still not found). The signed config is ``config_data`` (None: the lab's)."""

    def __init__(self, lab: LabCluster, ctl: bytes | None, config_data: bytes | None = None) -> None:
        self.lab = lab
        self.ctl = ctl
        self.config_data = config_data
        self.ctl_requests = 0

    def __call__(self, name: str) -> bytes | None:
        if name.startswith("CTL"):
            self.ctl_requests += 1
            return self.ctl if self.ctl_requests > 2 else None  # CTLSEP and CTLFile: not found at first
        return self.config_data if name == CONFIG and self.config_data else self.lab.get(name)


# --------------------------------------------------------------------------- §G.9 retry refused: fixed
def test_ctl_refused_on_a_g9_retry_keeps_the_old_config_and_fetches_no_firmware(lab: LabCluster,
                                                                              tmp_path: Path) -> None:
    """The red team's case: the config (encrypted mode, a new load) is accepted, a §G.9 retry's CTL is
    refused (signer unknown to the ITL and to TVS): the phone is locked. It must not act on the config it
    read: no firmware fetched or installed, the config held before the boot kept (in RAM and on flash,
    what SIP would register with), the boot reported locked and not ok, deciding = the CTL refusal.
    Was: the firmware installed and the boot ok on the new config."""
    p = make_phone(lab, Tvs(lab), flash=tmp_path / "flash")
    first_boot(lab, p)
    held = p.store.config
    assert held is not None
    rogue = rogue_ctl(lab)
    files = CtlOnRetry(lab, rogue, secure_config_with_load(lab))
    r, requests = boot(p, files)
    assert files.ctl_requests > 2, requests  # a retry was served the CTL
    assert "G.4-signed-by-itl-tftp" in rule_list(r)  # the config was read and accepted first
    assert r.trust["CTL"] == "rejected" and p.store.locked_by == {"CTL"} and r.locked_out
    assert r.deciding is not None and r.deciding.kind == "CTL" and not r.deciding.accepted
    assert r.deciding.reason.startswith("§G.9 retry 1:"), r.deciding.reason
    assert not r.ok and r.config == "rejected" and rule_list(r)[-1] == "G.3.5-locked-ignores-config"
    assert "§G.9 retry's CTL was refused" in r.decisions[-1].reason
    assert r.firmware == "none" and r.load is None and p.store.firmware_load is None
    assert not any(n.endswith(".loads") for n in requests), requests
    assert p.store.config is held and p.store.config.config.device_security_mode != 3
    reloaded = Flash(tmp_path / "flash", profile=p.profile).load()
    assert reloaded.config is not None and reloaded.config.xml == held.xml and reloaded.firmware_load is None


def test_ctl_refused_on_a_g9_retry_at_first_contact_keeps_no_config(lab: LabCluster) -> None:
    """The same at first contact (no trust list: the unsigned config is accepted, §G.2): a malformed CTL on
    the retry locks the phone (store convention: a first list refused locks it too) — it takes no config,
    as a refusal in the trust phase would have it. Was: the unsigned config kept and its load installed."""
    p = make_phone(lab, Tvs(lab))
    lab.set_load(LOAD, now=NOW)
    cfg = dataclasses.replace(lab_config(lab), device_security_mode=3, load_information=LOAD)
    plain = config.build(cfg)
    files = CtlOnRetry(lab, b"\x01\x00\x02junk", plain)
    no_itl = config.config_file_name(MAC, "plain")
    r, requests = boot(p, lambda n: None if n.startswith("ITL") else plain if n == no_itl else files(n))
    assert "G.4-unsigned-no-trust-list" in rule_list(r) and "G.3.1-malformed" in rule_list(r), rule_list(r)
    assert not r.ok and r.config == "rejected" and rule_list(r)[-1] == "G.3.5-locked-ignores-config"
    assert p.store.config is None and p.store.firmware_load is None and r.firmware == "none"
    assert not any(n.endswith(".loads") for n in requests), requests


# --------------------------------------------------------------------------- pinned (passed before)
def test_ctl_installed_on_a_g9_retry_goes_on_to_the_firmware(lab: LabCluster) -> None:
    """A retry's CTL accepted (signed by the ITLRecovery key, a SAST record of the ITL, §G.3.3) locks
    nothing: TLS from then on, the config kept, the new load installed."""
    p = make_phone(lab, Tvs(lab))
    first_boot(lab, p)
    lab.set_mixed_mode(True, now=NOW)
    ctl = lab.get("CTLFile.tlv")
    assert ctl is not None
    r, _ = boot(p, CtlOnRetry(lab, ctl, secure_config_with_load(lab)))
    assert r.ok and not r.locked_out and r.trust["CTL"] == "installed", rule_list(r)
    assert "G.3.3-signed-by-itl-sast" in rule_list(r) and "G.9-tls-with-ctl" in rule_list(r)
    assert r.firmware == "accepted" and p.store.firmware_load == LOAD


def test_a_trust_list_refused_first_means_no_static_file_capf_or_firmware(lab: LabCluster) -> None:
    """Spec §G.3.5: an ITL update refused (new ITLRecovery signer, unknown to TVS) → the served config is
    ignored, so nothing it names is acted on: no static file, no CAPF session (capfAuthMode 2), no load; the
    phone keeps the config it held (what a SIP registration uses: not a change, §G.3.5)."""
    capf = Capf()
    p = make_phone(lab, Tvs(lab), capf=capf)
    first_boot(lab, p)
    held = p.store.config
    lab.regenerate("itlrecovery", now=NOW)
    lab.set_load(LOAD, now=NOW)
    cfg = dataclasses.replace(lab_config(lab), load_information=LOAD, capf_auth_mode=2,
                              capf_servers=(Server(host="127.0.0.1", port=3804),))
    r, requests = boot(p, serving(lab, {CONFIG: signed_config(lab, cfg)}))
    assert r.trust["ITL"] == "rejected" and r.locked_out and not r.ok, rule_list(r)
    assert rule_list(r)[-1] == "G.3.5-locked-ignores-config"
    assert requests[-1] == CONFIG, requests  # nothing asked after the config
    assert capf.sessions == 0 and r.firmware == "none" and r.static == {}
    assert p.store.config is held and p.store.firmware_load is None


# --------------------------------------------------------------------------- the TVS cache (§E.7.2)
def tvs_signed_setup(lab: LabCluster) -> tuple[Tvs, Callable[..., bytes]]:
    """Configs signed by a certificate the ITL lists only as CAPF (role 4): the phone asks TVS, which
    vouches for it with role TFTP (§G.4 (c)) for a day. (The first boot's config is the CallManager's:
    a phone with no config has no TVS server to ask.)"""
    capf = lab.identity("capf")
    answer = TvsAnswer(cert_der=capf.der, roles=frozenset({Role.TFTP}), ttl=86_400)
    tvs = Tvs(lab, {certs.serial_bytes(capf.cert.serial_number): answer})

    def config_naming(servers: tuple[Server, ...], signer: str = "capf") -> bytes:
        return signed_config(lab, dataclasses.replace(lab_config(lab), tvs_servers=servers), signer=signer)
    return tvs, config_naming


OLD_TVS = (Server(host="10.1.1.1", port=2445),)
NEW_TVS = (Server(host="10.2.2.2", port=2445),)


def test_the_tvs_cache_outlives_a_config_naming_other_servers_not_the_itl(lab: LabCluster) -> None:
    """Pinned (ours, ``phoneemu.phone.store``; the spec names only the trust-list flush, §E.7.3): a config
    naming other TVS servers keeps the cache — boots 3 and 4 decide the config on the answer the old server
    gave, TVS not asked. The phone never trusts a file on an answer past the ITL that trusted the answering
    server (§E.1): an ITL update flushes the cache and the next file asks the config's servers again."""
    tvs, config_naming = tvs_signed_setup(lab)
    p = make_phone(lab, tvs)
    boot(p, serving(lab, {CONFIG: config_naming(OLD_TVS, "callmanager")}))
    r, _ = boot(p, serving(lab, {CONFIG: config_naming(OLD_TVS)}))
    assert r.ok and "G.4-vouched-by-tvs" in rule_list(r) and p.store.tvs_cache_size == 1, rule_list(r)
    assert tvs.asked == [(("10.1.1.1", 2445),)]
    for _ in range(2):
        r, _ = boot(p, serving(lab, {CONFIG: config_naming(NEW_TVS)}))
        assert r.ok and "G.4-vouched-by-tvs" in rule_list(r), rule_list(r)
    assert p.store.tvs_servers == NEW_TVS and len(tvs.asked) == 1 and p.store.tvs_cache_size == 1
    lab.regenerate("itlrecovery", now=NOW)  # the next ITL's signer: vouched for by TVS (SAST)
    itlr = lab.identity("itlrecovery")
    tvs.answers[certs.serial_bytes(itlr.cert.serial_number)] = TvsAnswer(
        cert_der=itlr.der, roles=frozenset({Role.SAST}), ttl=86_400)
    r, _ = boot(p, serving(lab, {CONFIG: config_naming(NEW_TVS)}))
    assert r.ok and r.trust["ITL"] == "updated" and "G.3.4-vouched-by-tvs" in rule_list(r), rule_list(r)
    assert tvs.asked[1:] == [(("10.2.2.2", 2445),)] * 2  # the ITL's signer, then the config's again
    assert any("TVS Certificate cache flush request" in t for t in r.timeline)
