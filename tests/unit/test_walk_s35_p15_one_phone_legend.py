"""One phone's ways out in ``predict`` and ``replay --mac`` say once, under them, what each placeholder their
commands leave stands for and why it is left, as ``boot``, ``phone show`` and a fleet's text do
(:func:`phoneemu.phone.ways_out.legend_lines`). Was (walk-through): ``DIR``, ``OLD`` and ``FLASH`` bare, with
no legend. ``predict`` fills ``OLD`` when its ``--installed-*`` files are another lab's served files. A
phone moved to another cluster is not offered its bulk ITL reset (``lab itl-reset DIR``: signed by a
CallManager key not in its ITL, walk s41), so DIR is left only where a way still names it (an ITLRecovery
regenerated on the phone's own cluster).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from phoneemu.cli import main
from tests.helpers import legend_of, moved_labs, placeholders_left

NOW = 1_780_000_000
MAC = "0A00000000D1"
ROOT = Path(__file__).resolve().parents[2]
PCAP = ROOT / "captures" / "migration-itl-signer-unknown.pcap"
PCAP_MAC = "0A0000000501"


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Labs ``a`` (the phone's ITL now) and ``b`` (where it moves): b's ITL is signed by a signer a's ITL
    does not name and no TVS is asked (G.3.5-reject-unknown-signer); a copy of a's ITL outside any lab."""
    return moved_labs(tmp_path_factory.mktemp("moved"), mac=MAC, now=NOW, seeds=(21, 22))


def _predict(capsys: pytest.CaptureFixture[str], installed: Path, new: Path, *more: str) -> str:
    assert main(["predict", "--installed-itl", str(installed), "--now", str(NOW), *more, str(new)]) == 1
    out = capsys.readouterr().out
    assert "deciding: G.3.5-reject-unknown-signer (rejected)" in out, out
    return out


def test_predict_says_what_old_and_flash_stand_for(moved: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _predict(capsys, moved / "a-ITLFile.tlv", moved / "b" / "tftp")
    assert "itl-reset" not in out, out  # b's bulk ITL reset: signed by b's CallManager, not in a's ITL
    assert placeholders_left(out) == {"OLD", "FLASH"}, out
    assert legend_of(out) == [
        "OLD: the lab folder of the cluster the phones left (not known to predict: the --installed-* files "
        "are not in another lab's served folder)",
        "FLASH: the phone's flash folder, as boot --flash keeps it (not known to predict: no --flash names "
        "an emulated phone's; the phone is predicted from files)"], out
    lines = out.splitlines()
    at = lines.index("  " + legend_of(out)[0])
    assert lines[at - 1].strip().startswith("lab: ") and lines[at + 1].strip().startswith("FLASH: "), lines


def test_predict_fills_old_with_the_lab_the_installed_files_are(moved: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out = _predict(capsys, moved / "a" / "tftp" / "ITLFile.tlv", moved / "b" / "tftp")
    assert f"lab: phoneemu lab rollback {moved / 'a'} on" in out, out
    assert placeholders_left(out) == {"FLASH"}, out
    assert [line.split(":")[0] for line in legend_of(out)] == ["FLASH"], out


def test_predict_of_one_lab_fills_no_old_and_says_dir_left(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Installed and new files of the same lab (its ITLRecovery regenerated: the bulk ITL reset, signed by
    the CallManager key the installed ITL holds, is a way): OLD is not that lab; new files outside a lab's
    served folder: DIR left, and said why."""
    from phoneemu.lab.cluster import LabCluster

    lab = LabCluster.init(tmp_path / "c", seed=23, key_spec="rsa1024", now=NOW, name="c")
    lab.add_phone(MAC, now=NOW)
    installed = tmp_path / "c-ITLFile.tlv"
    shutil.copyfile(lab.root / "tftp" / "ITLFile.tlv", installed)
    lab.regenerate("itlrecovery", now=NOW)
    elsewhere = tmp_path / "loose"
    elsewhere.mkdir()
    shutil.copyfile(lab.root / "tftp" / "ITLFile.tlv", elsewhere / "ITLFile.tlv")
    out = _predict(capsys, installed, elsewhere / "ITLFile.tlv")
    assert "lab: phoneemu lab itl-reset DIR localkey" in out, out
    assert placeholders_left(out) == {"DIR", "OLD", "FLASH"}, out
    assert legend_of(out)[0] == ("DIR: the lab folder (not known to predict: the new files are not one "
                                 "lab's served folder (LAB/tftp) or files in it)"), out


def test_predict_accepted_says_no_legend(moved: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--installed-itl", str(moved / "b" / "tftp" / "ITLFile.tlv"), "--now", str(NOW),
                 str(moved / "b" / "tftp")]) == 0
    assert legend_of(capsys.readouterr().out) == []


def test_replay_says_what_dir_old_and_flash_stand_for(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(PCAP), "--no-keylog", "--mac", PCAP_MAC]) == 1
    out = capsys.readouterr().out
    assert "deciding: G.3.4-tvs-unreachable (rejected)" in out, out
    assert "itl-reset" not in out, out  # moved: the new cluster's reset is signed by a key not in its ITL
    assert placeholders_left(out) == {"OLD", "FLASH"}, out
    assert legend_of(out) == [
        "OLD: the lab folder of the cluster the phones left (not known to replay: the cluster the phone came "
        "from)",
        "FLASH: the phone's flash folder, as boot --flash keeps it (not known to replay: no --flash names "
        "the emulated phone's)"], out
    assert out.rstrip("\n").splitlines()[-1].strip().startswith("FLASH: ")  # once, under the boots


def test_replay_json_carries_no_legend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(PCAP), "--no-keylog", "--mac", PCAP_MAC, "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["boots"][-1]["report"]["locked_out"] is True


def test_replay_fills_flash_with_its_flash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``replay --flash`` names the emulated phone: its ways' commands act on that flash, no FLASH left."""
    flash = tmp_path / "flash"
    flash.mkdir()
    (flash / "phone.json").write_text(json.dumps({"mac": PCAP_MAC, "profile": "cp-8861"}))
    assert main(["replay", str(PCAP), "--no-keylog", "--flash", str(flash)]) == 1
    out = capsys.readouterr().out
    assert f"lab: phoneemu phone erase --flash {flash}" in out, out
    assert placeholders_left(out) == {"OLD"}, out
    assert [line.split(":")[0] for line in legend_of(out)] == ["OLD"], out
