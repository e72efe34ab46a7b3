"""One phone's ways out in text are its JSON's, chosen by the lists it holds after the boot
(``BootReport.held``): ``boot`` (:func:`phoneemu.commands.boot.outcome_lines`), one-phone ``predict`` and
``replay --mac`` (:func:`phoneemu.commands.boot.offline_boot_lines`).

Was: the text read the lists from the flash as it was before a ``predict`` (a phone holding a CTL and the
full ITL, taking the rollback ITL, was told the bulk ITL reset, its JSON to turn the rollback off), and
without a flash (``boot`` without ``--flash``, ``predict --installed-*``, ``replay``) gave the table's ways,
``lab rollback ... on`` among them, to a phone holding a CTL and the rollback ITL (spec §G.3 note).

The lab: mixed mode on, then the rollback on and mixed mode off (its CTL kept, CCM+TFTP records emptied,
§B.5): a phone holding its CTL takes the rollback ITL and refuses its config (``G.4-reject-unknown-signer``;
no TVS is asked: the rollback ITL names none).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from phoneemu.net.capture import PcapWriter
from phoneemu.phone import ways_out as wo
from tests.helpers import boot_into_flash, mixed_mode_lab, serve_in_thread
from tests.replay_helpers import captured_tftp_read

NOW = 1_780_000_000
MAC = "0A0000000001"
RULE = "G.4-reject-unknown-signer"


def _mixed_mode_lab(root: Path) -> LabCluster:
    return mixed_mode_lab(root, seed=31, name="old", mac=MAC, now=NOW)


def _locking(lab: LabCluster) -> LabCluster:
    """``lab`` serving the rollback ITL and a CTL without CCM+TFTP records: its config is refused."""
    lab.set_rollback(True, now=NOW)
    lab.set_mixed_mode(False, now=NOW)
    return lab


def _said_ways(text: str) -> list[str]:
    """The ``way out (<situation>): <action>`` lines of a text, without their indent."""
    return [line.strip() for line in text.splitlines() if line.strip().startswith("way out (")]


def _json_ways(ways: list[dict[str, Any]]) -> list[str]:
    """A JSON ``ways_out`` as the text says each way."""
    return [f"way out ({w['when']}): {w['action']}" for w in ways]


def _holding_ctl_and_rollback_itl(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The JSON ways of a boot report locked under :data:`RULE` holding a CTL and the rollback ITL: the
    rollback off first (:func:`phoneemu.phone.ways_out._for_held`), not the table's."""
    assert report["locked_out"] is True and report["deciding"]["rule"] == RULE, report["deciding"]
    ways: list[dict[str, Any]] = report["ways_out"]
    held = wo.ways_out_json(RULE, "config", held=wo.HeldLists(ctl=True, empty_itl=True))
    assert [w["lab"] for w in ways] == [w["lab"] for w in held]
    assert ways[0]["lab"] == "phoneemu lab rollback DIR off"
    assert [w["lab"] for w in ways] != [w["lab"] for w in wo.ways_out_json(RULE, "config")]
    return ways


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 1
    return capsys.readouterr().out


def _says_the_json_s_ways(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The text of ``phoneemu ARGV`` (exit 1), which says the ways of its ``--json`` report's, held lists'
    (:func:`_holding_ctl_and_rollback_itl`)."""
    text = _run(argv, capsys)
    ways = _holding_ctl_and_rollback_itl(json.loads(_run([*argv, "--json"], capsys))["report"])
    assert _said_ways(text) == _json_ways(ways), text
    return text


def test_predict_from_a_flash_taking_the_rollback_itl_says_the_json_s_ways(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The flash holds the CTL and the full ITL; the new files bring the rollback ITL and lock it: the text
    was chosen by the flash before the prediction (the bulk ITL reset), the JSON by what it would hold."""
    lab = _mixed_mode_lab(tmp_path / "lab")
    flash = tmp_path / "ph1"
    assert boot_into_flash(lab, flash, MAC, now=NOW).ok
    assert wo.held_lists(flash) == wo.HeldLists(ctl=True, empty_itl=False)
    _locking(lab)
    argv = ["predict", "--flash", str(flash), "--now", str(NOW), str(lab.root / "tftp")]
    text = _says_the_json_s_ways(argv, capsys)
    assert "lab: phoneemu lab itl-reset" not in text


def test_predict_of_installed_lists_says_the_json_s_ways(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """``--installed-ctl``/``--installed-itl`` holding a CTL and the rollback ITL (no flash to read): the
    text gave the table's ways, the rollback turned on among them."""
    lab = _mixed_mode_lab(tmp_path / "lab")
    flash = tmp_path / "ph1"
    assert boot_into_flash(lab, flash, MAC, now=NOW).ok
    lab.set_rollback(True, now=NOW)
    assert boot_into_flash(lab, flash, MAC, now=NOW).trust["ITL"] == "empty"
    held = tmp_path / "held"
    held.mkdir()
    for name in ("CTLFile.tlv", "ITLFile.tlv"):
        shutil.copy(flash / name, held / name)
    lab.set_mixed_mode(False, now=NOW)
    argv = ["predict", "--installed-ctl", str(held / "CTLFile.tlv"), "--installed-itl",
            str(held / "ITLFile.tlv"), "--mac", MAC, "--now", str(NOW), str(lab.root / "tftp")]
    text = _says_the_json_s_ways(argv, capsys)
    assert "lab: phoneemu lab rollback DIR on" not in text


def test_boot_without_a_flash_says_the_json_s_ways(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """``boot`` without ``--flash``: the phone takes the CTL and the rollback ITL on first use and refuses
    its config; the text gave the table's ways (no flash to read), its JSON the held lists'."""
    lab = _locking(_mixed_mode_lab(tmp_path / "lab"))
    ports, stop = serve_in_thread(lab)
    try:
        argv = ["boot", "--tftp", f"127.0.0.1:{ports['tftp']}", "--no-http", "--lab", str(lab.root),
                "--mac", MAC, "--now", str(NOW), "--timeout", "5"]
        text = _run(argv, capsys)
        report = json.loads(_run([*argv, "--json"], capsys))["report"]
    finally:
        stop()
    ways = _holding_ctl_and_rollback_itl(report)
    assert _said_ways(text) == _json_ways(ways), text
    assert "nothing to erase: its flash was not kept" in text


def _capture(path: Path, lab: LabCluster) -> Path:
    """One boot of :data:`MAC` over TFTP on ``lab``'s files."""
    names = (f"CTLSEP{MAC}.tlv", f"ITLSEP{MAC}.tlv", f"SEP{MAC}.cnf.xml.sgn")
    clock = iter(range(NOW, NOW + 1_000))
    with PcapWriter(path, clock=lambda: float(next(clock))) as w:
        for i, name in enumerate(names):
            captured_tftp_read(w, name, lab.get(name), 40000 + i)
    return path


def test_replay_of_such_a_boot_says_the_json_s_ways(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """``replay --mac``: the replayed phone takes the CTL and the rollback ITL and refuses its config; the
    text gave the table's ways (no flash), each boot's JSON the held lists'."""
    pcap = _capture(tmp_path / "site.pcap", _locking(_mixed_mode_lab(tmp_path / "lab")))
    argv = ["replay", str(pcap), "--mac", MAC, "--now", str(NOW)]
    text = _run(argv, capsys)
    boots = json.loads(_run([*argv, "--json"], capsys))["boots"]
    assert len(boots) == 1
    ways = _holding_ctl_and_rollback_itl(boots[0]["report"])
    assert _said_ways(text) == _json_ways(ways), text
