"""A §G.9 retry's CTL that locks the phone: the config read is acted on in no way (spec §G.3.5, §G.9, §F).

Ours [INF] (``phoneemu.phone.boot``, module docstring): the phone settles its trust (the §G.9 retries)
before it acts on the config it read — CAPF operation, static files, firmware. A retry whose CTL is
refused locks the phone, so the config read is ignored and nothing it asked for is done: no CAPF
session (no LSC enrolled, none on the flash), no static file asked for, no load. A retry that settles
without a lock (TCP after the attempts, or a CTL installed) goes on to CAPF as before. Only the CAPF
operation a short config asks for (§G.12.2, to read the encrypted config) precedes the lock, and stays.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path

from phoneemu.crypto.keys import KeySpec, generate_key, public_key_spki_der
from phoneemu.formats import config, signed
from phoneemu.formats.config import Server
from phoneemu.lab.cluster import LabCluster
from phoneemu.net.fetch import MemoryFetcher
from phoneemu.phone.boot import BootReport
from phoneemu.phone.events import QueryKey
from phoneemu.phone.flash import Flash
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import TvsResult, TvsStatus
from phoneemu.protocols.capf import CapfClientSession, CapfResult
from tests.helpers import pristine_lab
from tests.unit.test_locked_boot import CONFIG, MAC, NOW, TARGET, CtlOnRetry, lab_config, rogue_ctl

CAPF_SERVER = Server(host="127.0.0.1", port=3804)

base_lab, lab = pristine_lab("locked-boot-capf", now=NOW, phones={MAC: {"now": NOW, "lsc_key": "rsa1024"}})


async def tvs_knows_nothing(servers: object, key: QueryKey, *, device_name: str,
                            accept_server: Callable[[bytes | None], bool] | None) -> TvsResult:
    return TvsStatus.NOT_FOUND


class IssuingCapf:
    """A CAPF server that issues an LSC (signed by the lab's CAPF) at every session asked of it."""

    def __init__(self, lab: LabCluster) -> None:
        self.lab = lab
        self.sessions = 0

    async def __call__(self, server: Server, session: CapfClientSession, *,
                       accept_server: Callable[[bytes | None], bool] | None) -> CapfResult:
        self.sessions += 1
        assert accept_server is not None and accept_server(self.lab.identity("capf").der)
        key = generate_key(KeySpec.parse("rsa1024"))
        der = self.lab.issue_lsc(session.device_name, public_key_spki_der(key.public_key()), now=NOW)
        self.lab.record_lsc(MAC, der, now=NOW)  # the encrypted config is wrapped to it from now on
        return CapfResult(outcome="installed", reason=1, certificate=der, key=key)


def make_phone(lab: LabCluster, capf: IssuingCapf, flash: Path, *, mic: LabCluster | None = None) -> Phone:
    """A CP-8861 with a flash; its MIC is the one ``mic`` (default ``lab``) issued for it."""
    prof = get_profile("cp-8861")
    return Phone(mac=MAC, profile=prof, flash=Flash(flash, profile=prof), clock=lambda: NOW,
                 mic=(mic or lab).phone_identity(MAC), image_signers=[lab.identity("imagesigning").cert],
                 tvs=tvs_knows_nothing, capf=capf, capf_retry_delay=0)


def boot(p: Phone, files: Callable[[str], bytes | None]) -> tuple[BootReport, list[str]]:
    f = MemoryFetcher(files)
    return asyncio.run(p.boot(TARGET, fetcher=f)), list(f.requests)


def rule_list(r: BootReport) -> list[str]:
    return [d.rule for d in r.decisions]


def secure_config_asking_capf(lab: LabCluster) -> bytes:
    """The lab's config in encrypted mode (§G.9 applies: no CTL), asking for a CAPF operation by null
    string (capfAuthMode 2) and naming a static file (the locale's tones)."""
    cfg = dataclasses.replace(lab_config(lab), device_security_mode=3, capf_auth_mode=2,
                              capf_servers=(CAPF_SERVER,), network_locale="United_States")
    assert cfg.static_files, cfg
    return signed.build(body=config.build(cfg), filename=CONFIG, signer=lab.callmanager().signer,
                        timestamp=NOW)


def first_boot(lab: LabCluster, p: Phone) -> None:
    """ITL and the lab's config installed (no CTL: the lab is not in mixed mode; no CAPF asked)."""
    r, _ = boot(p, lab.get)
    assert r.ok and r.trust == {"CTL": "absent", "ITL": "installed"} and r.lsc == "absent", rule_list(r)


def test_a_ctl_refused_on_a_g9_retry_leaves_no_lsc_enrolled(lab: LabCluster, tmp_path: Path) -> None:
    """The config (encrypted mode, capfAuthMode 2, a static file) is accepted; a §G.9 retry's CTL is
    refused (its signer unknown to the ITL and to TVS): the phone is locked and ignores the config, so
    the CAPF operation it asked for is not done — no session, no LSC in RAM or on the flash — and no
    static file is asked for. Was: CAPF ran before the retries and the LSC it enrolled stayed installed."""
    capf = IssuingCapf(lab)
    p = make_phone(lab, capf, tmp_path / "flash")
    first_boot(lab, p)
    rogue = rogue_ctl(lab)
    files = CtlOnRetry(lab, rogue, secure_config_asking_capf(lab))
    r, requests = boot(p, files)
    assert files.ctl_requests > 2, requests  # a retry was served the CTL
    assert "G.4-signed-by-itl-tftp" in rule_list(r)  # the config was read and accepted first
    assert r.trust["CTL"] == "rejected" and r.locked_out and not r.ok, rule_list(r)
    assert rule_list(r)[-1] == "G.3.5-locked-ignores-config"
    assert capf.sessions == 0 and not any(d.kind == "capf" for d in r.decisions), rule_list(r)
    assert r.lsc == "absent" and p.store.lsc is None and p.store.capf_auth_mode == 0
    assert Flash(tmp_path / "flash", profile=p.profile).load().lsc is None
    assert r.static == {} and not any("g3-tones" in n for n in requests), requests


def test_a_g9_retry_that_settles_on_tcp_goes_on_to_capf_and_the_static_files(lab: LabCluster,
                                                                             tmp_path: Path) -> None:
    """No CTL served at any retry: the §G.9 attempts end in TCP (no lock), and only then is the config
    acted on — the CAPF operation enrols an LSC (kept on the flash), the static file is asked for. (Was:
    the same outcome, with CAPF before the retries.)"""
    capf = IssuingCapf(lab)
    p = make_phone(lab, capf, tmp_path / "flash")
    first_boot(lab, p)
    r, requests = boot(p, CtlOnRetry(lab, None, secure_config_asking_capf(lab)))
    assert r.ok and not r.locked_out and "G.9-fallback-tcp" in rule_list(r), rule_list(r)
    assert capf.sessions == 1 and "F.6-lsc-installed" in rule_list(r) and r.lsc == "installed"
    assert rule_list(r).index("G.9-fallback-tcp") < rule_list(r).index("F.6-lsc-installed")
    assert Flash(tmp_path / "flash", profile=p.profile).load().lsc is not None
    assert any("g3-tones" in n for n in requests) and r.static, requests


def test_an_lsc_a_short_config_asked_for_stays_when_the_encrypted_config_then_locks(
        lab: LabCluster, tmp_path: Path) -> None:
    """Pinned (ours [INF], ``phoneemu.phone.boot``): the CAPF operation of §G.12.2 — asked for by the short
    config, before the phone can read its security mode (it is in the encrypted config that LSC lets it
    read) — stays done when the encrypted config's §G.9 retry then locks the phone: the lock ignores the
    config read, not the phone's own credential the cluster enrolled so that it could read it."""
    other = LabCluster.init(tmp_path / "other", key_spec="rsa1024", now=NOW)
    other.add_phone(MAC, now=NOW)  # a MIC the lab does not wrap the encrypted config to
    capf = IssuingCapf(lab)
    p = make_phone(lab, capf, tmp_path / "flash", mic=other)
    first_boot(lab, p)
    lab.set_encryption([MAC], True, now=NOW)
    lab.set_capf([MAC], "install", auth_mode="null-string", key="rsa1024", now=NOW)
    lab.set_security_mode([MAC], "encrypted", now=NOW)
    rogue = rogue_ctl(lab)
    r, _ = boot(p, CtlOnRetry(lab, rogue))
    seen = rule_list(r)
    assert "G.12.2-cert-hash-mismatch" in seen and "G.12.3-decrypted" in seen, seen
    assert seen.index("F.6-lsc-installed") < seen.index("G.9-retry-trust-file"), seen
    assert r.locked_out and not r.ok and seen[-1] == "G.3.5-locked-ignores-config"
    assert capf.sessions == 1 and r.lsc == "installed" and p.store.lsc is not None
    assert Flash(tmp_path / "flash", profile=p.profile).load().lsc is not None


def test_replay_of_the_locked_boot_decides_the_same(lab: LabCluster, tmp_path: Path) -> None:
    """``replay`` of the two boots' capture (their downloads in request order, as a pcap scan indexes
    them) decides the locked boot as the live phone did: the same decisions in the same order (no CAPF
    decision, no static file), the CTL refusal of the §G.9 retry deciding, the config ignored."""
    from tests.unit.test_review_decisions import live_boot, outcome, replayed

    p = make_phone(lab, IssuingCapf(lab), tmp_path / "flash")
    log: list[tuple[str, bytes | None]] = []
    live_boot(p, lab.get, log)
    rogue = rogue_ctl(lab)
    r = live_boot(p, CtlOnRetry(lab, rogue, secure_config_asking_capf(lab)), log)
    assert r.locked_out and r.deciding is not None and r.deciding.reason.startswith("§G.9 retry 1:")
    first, again = replayed(lab, log)
    assert first.ok and outcome(again) == outcome(r)
    assert again.lsc == r.lsc == "absent" and again.static == r.static == {}
