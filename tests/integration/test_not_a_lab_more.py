"""Against a cluster that is not a lab, two more (loopback only):

* ``boot`` / ``fleet boot --tftp NAME``: the name is looked up once, before any phone boots
  (``_cluster_address.check_resolves``), and the phones are pointed at its address, as DHCP option 150
  points real ones; the commands still say the name. Each TFTP transfer and HTTP request of each phone
  looked it up again (a 40,000-phone storm: 200,000 lookups in the loops' executors);
* ``phone show --fleet-flash FLEET --cluster FOLDER`` with a folder of the cluster's files (no lab): the
  ways out name no lab command (``ways_out.NOT_A_LAB``); they printed ``lab:`` lines of a lab the user
  does not have.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import boot_offline_into, count_lookups, run, serve_in_thread

NOW = 1_780_000_000
MAC = "0A0000000F01"
FLEET = ["0A0000000F10", "0A0000000F11", "0A0000000F12"]
NAME = "localhost"


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every ``socket.getaddrinfo`` of ``NAME`` in this process (tests.helpers.count_lookups)."""
    return count_lookups(monkeypatch, NAME)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, int]]:
    """A lab of ``MAC`` and ``FLEET`` served on 127.0.0.1 in a thread: its ports."""
    if socket.getaddrinfo(NAME, 69, type=socket.SOCK_DGRAM)[0][4][0] != "127.0.0.1":
        pytest.skip(f"{NAME} does not resolve to 127.0.0.1 first here")
    lab = LabCluster.init(tmp_path / "lab", seed=11, key_spec="rsa1024", now=NOW, host="127.0.0.1")
    lab.add_phones([MAC, *FLEET], now=NOW)
    ports, stop = serve_in_thread(lab)
    try:
        yield ports
    finally:
        stop()


def test_boot_looks_a_tftp_name_up_once_and_says_it_as_given(
        served: dict[str, int], lookups: list[Any], capsys: pytest.CaptureFixture[str]) -> None:
    at = ["--tftp", f"{NAME}:{served['tftp']}", "--http-port", str(served["http"]), "--timeout", "2"]
    assert main(["boot", "--mac", MAC, "--now", str(NOW), *at, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["report"]
    assert len(lookups) == 1, lookups  # check_resolves's; was 7: one more per request, TFTP and HTTP
    assert report["ok"] and report["target"] == f"{NAME} (tftp {served['tftp']}, http {served['http']})"


def test_fleet_boot_looks_a_tftp_name_up_once_and_says_it_as_given(
        served: dict[str, int], lookups: list[Any], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """``--shards 0``: the phones boot in this process, on asyncio's loop (its lookups go through
    ``socket.getaddrinfo``; uvloop's do not)."""
    at = ["--tftp", f"{NAME}:{served['tftp']}", "--http-port", str(served["http"]), "--timeout", "2"]
    said = f"{NAME} (tftp {served['tftp']}, http {served['http']})"
    n = len(FLEET)
    assert main(["fleet", "boot", "--mac", FLEET[0], "--count", str(n), "--shards", "0", "--event-loop",
                 "asyncio", *at, "--json", str(tmp_path / "run.json")]) == 0
    out, err = capsys.readouterr()
    assert len(lookups) == 1, lookups  # check_resolves's; was 19: one more per request of each phone
    assert f"{n} phones: {n} booted, 0 failed" in out, out
    assert f"-> {said}" in err, err
    assert json.loads((tmp_path / "run.json").read_text())["target"] == said


@pytest.fixture
def locked_fleet(tmp_path: Path) -> tuple[Path, LabCluster]:
    """Three phones on a lab's first ITL, locked out at their next boot after ITLRecovery was regenerated
    while TVS could not be reached (spec §G.3.4)."""
    lab = LabCluster.init(tmp_path / "lab", seed=43, key_spec="rsa1024", now=NOW, name="c")
    lab.add_phones(FLEET, now=NOW)
    folder = tmp_path / "fleet"
    assert all(r.ok for r in run(boot_offline_into(folder, lab, FLEET, now=NOW)))
    lab.regenerate("itlrecovery", now=NOW)
    assert all(r.locked_out for r in run(boot_offline_into(folder, lab, FLEET, now=NOW)))
    return folder, lab


def test_fleet_show_against_a_folder_of_files_names_no_lab_command(
        locked_fleet: tuple[Path, LabCluster], capsys: pytest.CaptureFixture[str]) -> None:
    folder, lab = locked_fleet
    files = lab.root / "tftp"  # the files a real cluster serves (tftp get), not a lab
    assert main(["phone", "show", "--fleet-flash", str(folder), "--cluster", str(files)]) == 0
    out = capsys.readouterr().out
    assert f"locked out G.3.4-tvs-unreachable (ITL)      {len(FLEET)}" in out, out
    ways = out[out.index("way out ("):]
    assert not re.search(r"^\s*lab: ", ways, re.MULTILINE), ways  # was: lab: phoneemu lab service DIR ...
    assert "phoneemu lab " not in ways and "--lab" not in ways, ways
    erase = f"on the emulated phones: phoneemu phone erase --fleet-flash {folder}   rehearse in a lab: "
    assert erase in ways, ways

    # with the lab itself: its commands, the folder filled in, as before
    assert main(["phone", "show", "--fleet-flash", str(folder), "--cluster", str(lab.root)]) == 0
    out = capsys.readouterr().out
    assert f"lab: phoneemu lab service {lab.root} tvs start" in out, out
