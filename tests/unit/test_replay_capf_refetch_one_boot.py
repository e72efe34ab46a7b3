"""``replay`` of a secure-mode boot whose CAPF operation changed the LSC: one boot, as the live phone made.

Since the §G.9 retries come before the config is acted on (``phoneemu.phone.boot``, ours [INF]), a phone
in secure mode without a CTL asks for ``CTLSEP<MAC>.tlv`` three more times right after its config, then
runs the CAPF operation the config asks for; the new LSC makes it retrieve its config again (§G.12.4).
So the capture shows the run of CTL retries followed straight by the config, with no ``ITLSEP<MAC>.tlv``
between them: the same boot (``phoneemu.scenario.replay`` module rules), not a new one started by the
last retry (was: live 3 boots, replay 4 — the CAPF boot split in two).

The "capture" is the live boots' downloads in request order, indexed as a pcap scan indexes them
(:func:`tests.unit.test_review_decisions.replayed`). CAPF is unavailable offline, so the replayed boot's
CAPF decision is ``F.1-capf-unreachable`` and it reads its config once: every other decision is the
live one, in the same order.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from phoneemu.formats import config, signed
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone.boot import BootReport
from phoneemu.scenario._capture_flows import Download
from phoneemu.scenario.replay import boot_groups
from tests.helpers import pristine_lab
from tests.unit.test_locked_boot import CONFIG, MAC, NOW, lab_config
from tests.unit.test_locked_boot_capf import CAPF_SERVER, IssuingCapf, make_phone
from tests.unit.test_review_decisions import live_boot, outcome, replayed

base_lab, lab = pristine_lab("replay-capf-refetch", now=NOW, phones={MAC: {"now": NOW, "lsc_key": "rsa1024"}})


def secure_config(lab: LabCluster, *, capf_auth_mode: int) -> bytes:
    """The lab's config in encrypted mode (§G.9 applies: the lab serves no CTL), signed, asking for a
    CAPF operation by null string (capfAuthMode 2) or for none (0)."""
    cfg = dataclasses.replace(lab_config(lab), device_security_mode=3, capf_auth_mode=capf_auth_mode,
                              capf_servers=(CAPF_SERVER,), network_locale="United_States")
    return signed.build(body=config.build(cfg), filename=CONFIG, signer=lab.callmanager().signer,
                        timestamp=NOW)


class SecureCluster:
    """The lab's files, with the secure config: asking for CAPF until ``capf`` has enrolled an LSC, then
    not (the operation is done)."""

    def __init__(self, lab: LabCluster, capf: IssuingCapf) -> None:
        self.lab = lab
        self.capf = capf
        self.asking = secure_config(lab, capf_auth_mode=2)
        self.done = secure_config(lab, capf_auth_mode=0)

    def __call__(self, name: str) -> bytes | None:
        if name == CONFIG:
            return self.done if self.capf.sessions else self.asking
        return self.lab.get(name)


def rules_of(r: BootReport) -> list[tuple[str, str, bool]]:
    return [(d.rule, d.kind, d.accepted) for d in r.decisions]


def test_a_capf_boots_config_retrieved_after_the_g9_retries_is_the_same_boot(lab: LabCluster,
                                                                            tmp_path: Path) -> None:
    capf = IssuingCapf(lab)
    p = make_phone(lab, capf, tmp_path / "flash")
    log: list[tuple[str, bytes | None]] = []
    files = SecureCluster(lab, capf)
    live = [live_boot(p, lab.get, log), live_boot(p, files, log), live_boot(p, files, log)]
    capf_boot = rules_of(live[1])
    assert capf.sessions == 1 and live[1].lsc == "installed", capf_boot
    seen = [rule for rule, _kind, _ok in capf_boot]
    assert seen.index("G.9-fallback-tcp") < seen.index("F.6-lsc-installed"), seen
    requests = [name for name, _data in log]
    capf_boot_own = [n for n in requests if MAC in n][3:]  # boot 1: CTLSEP, ITLSEP, the config
    assert capf_boot_own[:8] == [f"CTLSEP{MAC}.tlv", f"ITLSEP{MAC}.tlv", CONFIG, *[f"CTLSEP{MAC}.tlv"] * 3,
                                 CONFIG, f"CTLSEP{MAC}.tlv"], capf_boot_own  # the config again, then boot 3

    again = replayed(lab, log)
    assert len(again) == len(live) == 3, [rules_of(r) for r in again]  # was 4: the CAPF boot in two
    assert outcome(again[0]) == outcome(live[0])
    assert outcome(again[2]) == outcome(live[2])
    # the CAPF boot: offline, CAPF is unreachable and the config is read once; the rest as live
    start = next(i for i, (_rule, kind, _ok) in enumerate(capf_boot) if kind == "capf")  # the server checked
    at = capf_boot.index(("F.6-lsc-installed", "capf", True))
    assert capf_boot[at + 1][1:] == ("config", True), capf_boot  # retrieved again
    expected = [*capf_boot[:start], ("F.1-capf-unreachable", "capf", False), *capf_boot[at + 2:]]
    assert any(kind == "static" for _rule, kind, _ok in expected), expected
    assert rules_of(again[1]) == expected
    assert (again[1].ok, again[1].locked_out, again[1].config) == (live[1].ok, live[1].locked_out, "accepted")


def _download(name: str, order: int) -> Download:
    return Download(name=name, protocol="tftp", client=("127.0.0.5", 40000 + order), server=("127.0.0.1", 69),
                    start=float(order), end=float(order), outcome="not-found", data=None, size=None,
                    order=order)


def test_boot_groups_keep_the_config_retrieved_after_the_retries_and_split_where_the_itl_follows() -> None:
    """The rule itself (module rules): a run of CTL requests starts a boot at its last fetch only when the
    ITL request follows it — when the phone asks for its ITL at all; the retries of a boot that ran no CAPF
    stay with it, the last of the run starting the next boot (its window keeps the boot's static files and
    load, requested after the retries)."""
    ctl, itl, cfg = f"CTLSEP{MAC}.tlv", f"ITLSEP{MAC}.tlv", CONFIG

    def groups(*names: str) -> list[list[str]]:
        own = [_download(n, i) for i, n in enumerate(names)]
        return [[d.name[:3] for d in g] for g in boot_groups(own, MAC)]

    capf_boot = (ctl, itl, cfg, ctl, ctl, ctl, cfg)
    assert groups(*capf_boot, *capf_boot) == [["CTL", "ITL", "SEP", "CTL", "CTL", "CTL", "SEP"]] * 2
    # one retry only (a CTL with a CUCM certificate installed by it), then CAPF's config again
    assert groups(ctl, itl, cfg, ctl, cfg, ctl, itl, cfg) == [["CTL", "ITL", "SEP", "CTL", "SEP"],
                                                              ["CTL", "ITL", "SEP"]]
    # no CAPF: the retries stay with their boot, the last of the run starts the next
    assert groups(ctl, itl, cfg, ctl, ctl, ctl, ctl, itl, cfg) == [["CTL", "ITL", "SEP", "CTL", "CTL", "CTL"],
                                                                   ["CTL", "ITL", "SEP"]]
    # a model asking for no ITL (cp-7940): the CTL request followed by the config starts a boot, as before
    assert groups(ctl, cfg, ctl, cfg) == [["CTL", "SEP"], ["CTL", "SEP"]]
