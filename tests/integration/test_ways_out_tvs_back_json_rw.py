"""Bringing TVS back: the JSON's ``lab`` names the cluster the text names (review of s39's ways out).

A migration's phone (booted on ``old``, moved to ``new``) names old's TVS in its config; with it down, the
text of ``boot``, ``phone show``, ``predict`` and ``replay`` says ``lab service OLD tvs start``, while the
``ways_out`` of their JSON said ``lab service DIR tvs start`` — DIR, the lab booted against, whose TVS
runs: a CI job filling DIR in started the wrong TVS (``fleet boot --json`` said DIR in ``lab`` and OLD in
``run``). A phone of ``new`` itself, its own TVS down, is told DIR in both.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import serve_in_thread
from tests.ways_out_helpers import MACS, NOW, migration_labs

_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
OLD_HOST, NEW_HOST = f"127.41.{_WORKER}.58", f"127.41.{_WORKER}.59"
OWN = "phoneemu lab service DIR tvs start"
ELSEWHERE = "phoneemu lab service OLD tvs start"
EXPECTED = {"moved": ELSEWHERE, "stayed": OWN}


@pytest.fixture(scope="module")
def labs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`tests.ways_out_helpers.migration_labs` on addresses of this module's own."""
    return migration_labs(tmp_path_factory.mktemp("rw"), hosts=(OLD_HOST, NEW_HOST), seeds=(41, 42))


def _json(argv: list[str], capsys: pytest.CaptureFixture[str], status: int) -> Any:
    assert main(argv) == status
    return json.loads(capsys.readouterr().out)


def _tvs_back(ways: list[dict[str, Any]]) -> list[str]:
    """The ``lab`` of the TVS-back ways of a JSON ``ways_out``."""
    return [w["lab"] for w in ways if w["lab"].endswith(" tvs start")]


@pytest.mark.parametrize("fleet", ["moved", "stayed"])
def test_phone_show_json_names_the_tvs_its_text_names(labs: Path, capsys: pytest.CaptureFixture[str],
                                                      fleet: str) -> None:
    doc = _json(["phone", "show", "--flash", str(labs / fleet / MACS[0]), "--json"], capsys, 0)
    assert _tvs_back(doc["ways_out"]) == [EXPECTED[fleet]], doc["ways_out"]


@pytest.mark.parametrize("fleet", ["moved", "stayed"])
def test_predict_json_names_the_tvs_its_text_names(labs: Path, capsys: pytest.CaptureFixture[str],
                                                   fleet: str) -> None:
    argv = ["predict", "--flash", str(labs / f"{fleet}-before" / MACS[0]), "--now", str(NOW),
            str(labs / "new" / "tftp"), "--json"]
    doc = _json(argv, capsys, 1)
    assert _tvs_back(doc["report"]["ways_out"]) == [EXPECTED[fleet]], doc["report"]["ways_out"]


@pytest.mark.parametrize("fleet", ["moved", "stayed"])
def test_replay_json_names_the_tvs_its_text_names(labs: Path, capsys: pytest.CaptureFixture[str],
                                                  fleet: str) -> None:
    argv = ["replay", str(labs / f"{fleet}.pcap"), "--mac", MACS[0], "--flash",
            str(labs / f"{fleet}-before" / MACS[0]), "--json"]
    doc = _json(argv, capsys, 1)
    (boot,) = doc["boots"]
    assert _tvs_back(boot["report"]["ways_out"]) == [EXPECTED[fleet]], boot["report"]["ways_out"]


def test_boot_and_fleet_boot_json_name_the_tvs_their_text_names(
        labs: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """``boot --json`` of each fleet's phone as it was before, against new served (its TVS down), and
    ``fleet boot --json``'s ``lab`` beside its ``run``."""
    new = LabCluster.open(labs / "new")
    ports, stop = serve_in_thread(new, host=NEW_HOST)
    try:
        new.set_ports(tftp=ports["tftp"], http=ports["http"], tvs=2445, now=NOW)
        for fleet, expected in EXPECTED.items():
            flash = tmp_path / fleet
            shutil.copytree(labs / f"{fleet}-before", flash)
            doc = _json(["boot", "--lab", str(new.root), "--flash", str(flash / MACS[0]), "--now", str(NOW),
                         "--json"], capsys, 1)
            assert _tvs_back(doc["report"]["ways_out"]) == [expected], doc["report"]["ways_out"]
            report = tmp_path / f"{fleet}.json"
            assert main(["fleet", "boot", "--lab", str(new.root), "--flash", str(flash), "--shards", "0",
                         "--json", str(report)]) == 1
            capsys.readouterr()
            (group,) = json.loads(report.read_text())["summary"]["ways_out"]
            assert _tvs_back(group["ways"]) == [expected], group["ways"]
    finally:
        stop()


@pytest.mark.parametrize("fleet", ["moved", "stayed"])
def test_fleet_summaries_json_name_the_tvs_their_text_names(labs: Path, capsys: pytest.CaptureFixture[str],
                                                            fleet: str) -> None:
    """``predict --fleet-flash``, ``replay --all`` and ``phone show --fleet-flash`` (with and without
    ``--cluster``): each group's ``lab`` in their JSON ``ways_out``."""
    new = str(labs / "new")
    before = str(labs / f"{fleet}-before")
    own = f"phoneemu lab service {new} tvs start"  # not a placeholder: not in a JSON "lab"
    runs = [(["predict", "--fleet-flash", before, "--now", str(NOW), str(labs / "new" / "tftp"), "--json"],
             1),
            (["replay", str(labs / f"{fleet}.pcap"), "--all", "--fleet-flash", before, "--json"], 1),
            (["phone", "show", "--fleet-flash", str(labs / fleet), "--json"], 0),
            (["phone", "show", "--fleet-flash", str(labs / fleet), "--cluster", new, "--json"], 0)]
    for argv, status in runs:
        (group,) = _json(argv, capsys, status)["ways_out"]
        assert _tvs_back(group["ways"]) == [EXPECTED[fleet]], (argv, group["ways"])
        assert own not in json.dumps([w["lab"] for w in group["ways"]]), argv
        # moved: not new's TVS in the filled-in command either (predict's "run", as fleet boot's); stayed:
        # new's own TVS is theirs, DIR filled in
        runs = [w["run"] for w in group["ways"] if "run" in w and w["lab"].endswith(" tvs start")]
        assert own not in runs if fleet == "moved" else runs in ([], [own]), (argv, runs)
