"""``replay --all``'s summary says, once under its ways out, what each placeholder their commands leave stands
for and why it is left, in ``replay --mac``'s words (:func:`phoneemu.phone.ways_out.placeholder_lines`), as
the other fleet summaries do. Was: ``DIR``, ``OLD`` and ``FLEET`` bare, with no legend. The capture's phones
moved to another cluster: its bulk ITL reset (``lab itl-reset DIR``), signed by a CallManager key not in their
ITL, is not among their ways (walk s41), so DIR is said only where a way leaves it (the last test).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.commands._replay_all import fleet_text
from tests.helpers import legend_of, placeholders_left

ROOT = Path(__file__).resolve().parents[2]
PCAP = ROOT / "captures" / "migration-itl-signer-unknown.pcap"  # two phones, each locked out at its 2nd boot


@pytest.fixture
def offline(tmp_path: Path) -> Path:
    """:data:`PCAP` without its key log beside it: replayed offline, TVS unreachable."""
    shutil.copyfile(PCAP, tmp_path / PCAP.name)
    return tmp_path / PCAP.name


OLD = ("OLD: the lab folder of the cluster the phones left (not known to replay: the cluster the phones came "
       "from)")


def test_the_summary_says_what_each_placeholder_left_stands_for(offline: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(offline), "--all"]) == 1
    out = capsys.readouterr().out
    assert "itl-reset" not in out, out
    assert placeholders_left(out) == {"OLD", "FLEET"}, out
    assert legend_of(out) == [
        OLD,
        "FLEET: the folder of the phones' flashes, as fleet boot --flash keeps them (not known to replay: no "
        "--fleet-flash or --export-flash names the phones' flashes)"], out
    lines = out.splitlines()
    at = lines.index(legend_of(out)[0])
    assert lines[at - 1].strip().startswith("lab: ") and lines[at + 2].startswith("result: "), lines


def test_the_flashes_written_fill_fleet(offline: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(offline), "--all", "--export-flash", str(tmp_path / "flashes")]) == 1
    out = capsys.readouterr().out
    assert f"phone erase --fleet-flash {tmp_path / 'flashes'}" in out, out
    assert [line.split(":")[0] for line in legend_of(out)] == ["OLD"], out


def test_more_servers_than_one_are_not_named() -> None:
    rule = "G.3.4-tvs-unreachable"
    doc = {"phones": 60, "by_outcome": {"locked-out": 60}, "changed": {}, "note_kinds": [],
           "skipped_kinds": [], "partial_kinds": [], "failure_kinds": [], "failure_kinds_not_kept": 0,
           "sip_checked": 0, "exit_why": None, "by_rule": {}, "by_model": {}, "by_trust": {},
           "ways_out": [{"rule": rule, "kind": "ITL", "phones": 60, "ways": [{"lab": "x"}],
                         "reason_code": None, "no_way_out": None}]}
    text = fleet_text(doc, "head", {"FLEET": "/f"}, servers=["10.0.0.1", "10.0.0.2"])
    assert legend_of(text) == [
        "DIR: the lab folder (not known to replay: the lab serving the address each locked-out phone's last "
        "boot went against)", OLD], text
