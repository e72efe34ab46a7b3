"""Walk s41, reproducing ITL lockouts with the lab: ways out that cannot work, and predict's JSON.

* ``lab regenerate`` of the CallManager, TVS and ITLRecovery certificates, no boot between: ``boot --lab``
  locks out (``G.3.4-tvs-server-untrusted``) and its first way out was the bulk ITL reset — signed by the
  new CallManager key the phone does not hold: followed, the same lockout and the same way again. Not
  offered now (text and JSON); erasing the lists, which the lab's own warning names, recovers.
* Phones holding A's ITL moved to B (``G.3.4-tvs-unknown-signer``) were offered B's bulk ITL reset, "their
  own cluster": B's CallManager key was never in their ITL.
* ``predict --fleet-flash --json`` said ``"locked out"`` where fleet boot says ``locked-out``, and its
  ways had no ``run`` (the filled-in command ``fleet boot --json`` gives).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import boot_into_flash, boot_offline_into, run, serve_in_thread
from tests.ways_out_helpers import last_boot_without

NOW = 1_780_000_000
MAC = "0A000000C401"
MACS = [f"0A000000C4{i:02X}" for i in range(2, 4)]


def _boot(argv: list[str], capsys: pytest.CaptureFixture[str], rc: int) -> str:
    capsys.readouterr()
    assert main(argv) == rc
    return capsys.readouterr().out


def test_no_bulk_itl_reset_where_the_callmanager_key_is_new_too(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    lab = LabCluster.init(tmp_path / "lab", seed=41, key_spec="rsa1024", now=NOW)
    lab.add_phone(MAC, now=NOW)
    flash = tmp_path / "ph"
    ports, stop = serve_in_thread(lab)  # records its ports: the config the phone takes names its TVS
    try:
        assert boot_into_flash(lab, flash, MAC, now=NOW).ok
    finally:
        stop()
    for cert in ("callmanager", "tvs", "itlrecovery"):
        lab.regenerate(cert, now=NOW)
    again, stop = serve_in_thread(lab, tftp_port=ports["tftp"], tvs_port=ports["tvs"])
    argv = ["boot", "--lab", str(lab.root), "--tftp", f"127.0.0.1:{again['tftp']}", "--no-http",
            "--flash", str(flash), "--now", str(NOW), "--timeout", "5"]
    try:
        text = _boot(argv, capsys, 1)
        report = json.loads(_boot([*argv, "--json"], capsys, 1))["report"]
    finally:
        stop()
    assert "deciding:  G.3.4-tvs-server-untrusted (rejected)" in text, text
    assert "itl-reset" not in text, text
    assert [w["lab"] for w in report["ways_out"]] == ["phoneemu lab rollback OLD on",
                                                      "phoneemu phone erase --flash FLASH"]
    assert f"lab: phoneemu phone erase --flash {flash}" in text, text
    _phone_show_says_as_boot(flash, capsys)
    # the way left works: the lists erased, the phone takes the lab's on first use
    assert main(["phone", "erase", "--flash", str(flash)]) == 0
    assert boot_into_flash(lab, flash, MAC, now=NOW).ok


def _phone_show_says_as_boot(flash: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``phone show --flash`` and ``--fleet-flash`` of the locked phone: no bulk ITL reset either, as its boot
    said (``last-boot.json`` keeps ``reset_signer_held``; was: rebuilt from the flash, the reset offered);
    a ``last-boot.json`` of an older phoneemu, without it, reads as before: offered."""
    show = ["phone", "show", "--flash", str(flash)]
    fleet_show = ["phone", "show", "--fleet-flash", str(flash.parent)]
    labs = ["phoneemu lab rollback OLD on", "phoneemu phone erase --flash FLASH"]
    doc = json.loads(_boot([*show, "--json"], capsys, 0))
    assert doc["last_boot"]["reset_signer_held"] is False
    assert [w["lab"] for w in doc["ways_out"]] == labs
    text = _boot(show, capsys, 0)
    assert "itl-reset" not in text and f"lab: phoneemu phone erase --flash {flash}" in text, text
    (group,) = json.loads(_boot([*fleet_show, "--json"], capsys, 0))["ways_out"]
    assert group["held"]["reset_signer_held"] is False
    assert not any("itl-reset" in w["lab"] for w in group["ways"]), group
    assert "itl-reset" not in _boot(fleet_show, capsys, 0)
    with last_boot_without(flash, "reset_signer_held"):  # an older phoneemu's: the reset offered as before
        assert "itl-reset" in _boot(show, capsys, 0)
        assert "itl-reset" in _boot(fleet_show, capsys, 0)


def test_no_bulk_itl_reset_on_the_cluster_they_moved_to(tmp_path: Path) -> None:
    old = LabCluster.init(tmp_path / "a", seed=42, key_spec="rsa1024", now=NOW, name="a")
    new = LabCluster.init(tmp_path / "b", seed=43, key_spec="rsa1024", now=NOW, name="b")
    for lab in (old, new):
        lab.add_phone(MAC, now=NOW)
    flash = tmp_path / "ph"
    _ports, stop = serve_in_thread(old)  # the old cluster's TVS, which the phone's config names
    try:
        assert boot_into_flash(old, flash, MAC, now=NOW).ok
        moved = boot_into_flash(new, flash, MAC, now=NOW)
    finally:
        stop()
    assert moved.locked_out and moved.deciding.rule == "G.3.4-tvs-unknown-signer", moved.deciding
    assert moved.held.reset_untrusted
    assert [w["lab"] for w in moved.as_dict()["ways_out"]] == [
        "phoneemu lab exchange OLD NEW && phoneemu lab restart-tvs OLD", "phoneemu lab rollback OLD on",
        "phoneemu phone erase --flash FLASH"]


def test_predict_json_says_fleet_boot_s_outcome_and_fills_the_ways_in(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "lab"
    lab = LabCluster.init(root, key_spec="rsa1024", now=NOW, host="127.0.0.1", seed=44)
    lab.add_phones(MACS, now=NOW)
    fleet = tmp_path / "fleet"
    run(boot_offline_into(fleet, lab, MACS, now=NOW))
    assert main(["lab", "regenerate", str(root), "itlrecovery", "--now", str(NOW)]) == 0
    out_file = tmp_path / "predict.json"
    argv = ["predict", "--fleet-flash", str(fleet), "--now", str(NOW), str(root / "tftp")]
    doc = json.loads(_boot([*argv, "--json"], capsys, 1))
    last = _boot([*argv, "--json-file", str(out_file)], capsys, 1).splitlines()[-1]
    assert last.startswith("result: 2 of 2"), last
    assert json.loads(out_file.read_text()) == doc
    assert doc["outcomes"] == {"accepted": 0, "locked-out": 2, "failed": 0}
    assert {r["outcome"] for r in doc["rules"]} == {"locked-out"}
    assert {ph["outcome"] for ph in doc["phones"]} == {"locked-out"}
    assert doc["by_model"] == {"cp-8861": {"locked-out": 2}}
    (group,) = doc["ways_out"]
    runs = [w["run"] for w in group["ways"]]
    assert f"phoneemu phone erase --fleet-flash {fleet}" in runs, runs
    assert f"phoneemu lab itl-reset {root} localkey && phoneemu fleet boot --lab {root} --flash {fleet} && " \
           f"phoneemu lab restart-tftp {root}" in runs, runs
    # the text still says it in words
    text = _boot(argv, capsys, 1)
    assert "  locked out: 2" in text, text
