"""A mixed-mode lab's CTL lockouts: the CTL reset offered only where the phone can take the reset CTL.

``lab regenerate`` of the CallManager, TVS and ITLRecovery certificates of a mixed-mode lab whose phone holds
its CTL, no boot between: ``boot --lab`` locks out on the CTL (``G.3.4-tvs-server-untrusted``) and its first
way out was the CTL reset — signed by the new CallManager key the phone does not hold (``lab ctl-reset``
itself warns that it does not help): followed, the same lockout and the same way again. Not offered now
(boot's text and JSON, ``phone show`` and ``--fleet-flash``, through ``last-boot.json``); erasing the lists
recovers. With the CallManager key kept (TVS and ITLRecovery regenerated) the CTL reset is offered and works.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import boot_into_flash, serve_in_thread
from tests.ways_out_helpers import last_boot_without

NOW = 1_780_000_000
MAC = "0A000000C601"
RESET = "ctl-reset"


def _run(argv: list[str], capsys: pytest.CaptureFixture[str], rc: int) -> str:
    capsys.readouterr()
    assert main(argv) == rc
    return capsys.readouterr().out


def _locked_by(tmp_path: Path, certs: tuple[str, ...], seed: int) -> tuple[LabCluster, Path, dict[str, int]]:
    """A mixed-mode lab, its phone booted holding its CTL and ITL, then ``certs`` regenerated."""
    lab = LabCluster.init(tmp_path / "lab", seed=seed, key_spec="rsa1024", now=NOW)
    lab.set_mixed_mode(True, now=NOW)
    lab.add_phone(MAC, now=NOW)
    flash = tmp_path / "ph"
    ports, stop = serve_in_thread(lab)  # records its ports: the config the phone takes names its TVS
    try:
        first = boot_into_flash(lab, flash, MAC, now=NOW)
    finally:
        stop()
    assert first.ok and first.trust == {"CTL": "installed", "ITL": "installed"}, first.trust
    for cert in certs:
        lab.regenerate(cert, now=NOW)
    return lab, flash, ports


def _boot(lab: LabCluster, flash: Path, ports: dict[str, int], capsys: pytest.CaptureFixture[str],
          rc: int) -> tuple[str, dict[str, Any]]:
    """``boot --lab`` of the phone against the lab served now: its text and JSON report."""
    served, stop = serve_in_thread(LabCluster.open(lab.root), tftp_port=ports["tftp"], tvs_port=ports["tvs"])
    argv = ["boot", "--lab", str(lab.root), "--tftp", f"127.0.0.1:{served['tftp']}", "--no-http",
            "--flash", str(flash), "--now", str(NOW), "--timeout", "5"]
    try:
        text = _run(argv, capsys, rc)
        report = json.loads(_run([*argv, "--json"], capsys, rc))["report"]
    finally:
        stop()
    return text, report


def test_no_ctl_reset_where_the_callmanager_key_is_new_too(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    lab, flash, ports = _locked_by(tmp_path, ("callmanager", "tvs", "itlrecovery"), 61)
    text, report = _boot(lab, flash, ports, capsys, 1)
    assert "deciding:  G.3.4-tvs-server-untrusted (rejected) CTLSEP" in text, text
    assert RESET not in text, text
    assert [w["lab"] for w in report["ways_out"]] == ["phoneemu phone erase --flash FLASH"]
    assert json.loads((flash / "last-boot.json").read_text())["ctl_reset_signer_held"] is False
    _phone_show_says_as_boot(flash, capsys)
    # the reset would not have helped: followed, the phone refuses the reset CTL (the new CallManager key)
    assert main(["lab", "ctl-reset", str(lab.root), "localkey", "--now", str(NOW)]) == 0
    text, _report = _boot(lab, flash, ports, capsys, 1)
    assert "CTLSEP0A000000C601.tlv: G.3.4-tvs-server-untrusted rejected (signer CN=lab-pub;" in text, text
    assert RESET not in text.split("deciding:")[1], text
    assert main(["lab", "ctl-update", str(lab.root), "--now", str(NOW)]) == 0
    # the way left works: the lists erased, the phone takes the lab's on first use
    assert main(["phone", "erase", "--flash", str(flash)]) == 0
    assert boot_into_flash(LabCluster.open(lab.root), flash, MAC, now=NOW).ok


def _phone_show_says_as_boot(flash: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``phone show --flash`` and ``--fleet-flash``: no CTL reset either, as the boot said
    (``last-boot.json``'s ``ctl_reset_signer_held``); one of an older phoneemu, without it: offered."""
    show = ["phone", "show", "--flash", str(flash)]
    fleet_show = ["phone", "show", "--fleet-flash", str(flash.parent)]
    doc = json.loads(_run([*show, "--json"], capsys, 0))
    assert [w["lab"] for w in doc["ways_out"]] == ["phoneemu phone erase --flash FLASH"]
    assert RESET not in _run(show, capsys, 0)
    (group,) = json.loads(_run([*fleet_show, "--json"], capsys, 0))["ways_out"]
    assert group["held"]["ctl_reset_signer_held"] is False, group
    assert not any(RESET in w["lab"] for w in group["ways"]), group
    assert "not the signer of the CTL reset" in _run(fleet_show, capsys, 0)
    with last_boot_without(flash, "ctl_reset_signer_held"):  # an older phoneemu's: offered as before
        assert RESET in _run(show, capsys, 0)
        assert RESET in _run(fleet_show, capsys, 0)


def test_the_ctl_reset_still_offered_where_it_helps(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    lab, flash, ports = _locked_by(tmp_path, ("tvs", "itlrecovery"), 62)
    text, report = _boot(lab, flash, ports, capsys, 1)
    assert "deciding:  G.3.4-tvs-server-untrusted (rejected) CTLSEP" in text, text
    assert RESET in report["ways_out"][0]["lab"], report["ways_out"]
    assert "ctl_reset_signer_held" not in json.loads((flash / "last-boot.json").read_text())
    assert main(["lab", "ctl-reset", str(lab.root), "localkey", "--now", str(NOW)]) == 0
    text, _report = _boot(lab, flash, ports, capsys, 0)
    assert "trust:     CTL updated, ITL updated" in text, text
