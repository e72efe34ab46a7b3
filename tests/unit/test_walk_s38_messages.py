"""Messages a voice engineer new to the tool met rehearsing a migration and a certificate regeneration with
rollback from the README alone (session 38, walk G); each now says what to type.

* ``lab regenerate DIR tftp`` ("regenerate the TFTP certificate", as CUCM's admins say it) listed the
  names the lab takes, none of them ``tftp``: the TFTP certificate is the CallManager one (spec §G.5), and
  the refusal now says so with the command; ``CallManager`` is told its lower-case name.
* ``lab rollback DIR`` without on/off said "the following arguments are required: state" under a usage
  line that shows ``{on,off}``; every on/off operation now names it as its usage line does.
* ``fleet boot --lab DIR --flash DIR`` of an empty folder (a refused first run leaves it made) said only
  "empty": it now says what a first boot needs, as the folder without a phone's flash already did.
* ``predict --fleet-flash`` offline headed its summary "TVS unreachable", read as an outage (its ways out
  then say to start TVS): a note now says TVS was not asked and how to ask it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import boot_offline_into, pristine_lab, run

NOW = 1_780_000_000
MAC = "0A0000003801"

base_lab, lab = pristine_lab("walk-s38", now=NOW, phones={MAC: {"now": NOW}})


@pytest.mark.parametrize(("cert", "meant"), [
    ("tftp", "the TFTP certificate is the CallManager one (CUCM's TFTP signs the configs with it, spec G.5): "
             "phoneemu lab regenerate {lab} callmanager"),
    ("TFTP", "the TFTP certificate is the CallManager one (CUCM's TFTP signs the configs with it, spec G.5): "
             "phoneemu lab regenerate {lab} callmanager"),
    ("CallManager", "names are lower case: phoneemu lab regenerate {lab} callmanager"),
    ("TVS", "names are lower case: phoneemu lab regenerate {lab} tvs"),
])
def test_regenerate_tftp_names_the_callmanager_certificate(
        lab: LabCluster, cert: str, meant: str, capsys: pytest.CaptureFixture[str]) -> None:
    generation = LabCluster.open(lab.root).state.generation
    assert main(["lab", "regenerate", str(lab.root), cert]) == 2
    err = capsys.readouterr().err
    refused = f"phoneemu lab regenerate: CERT: cannot regenerate '{cert}': one of callmanager, "
    assert err.startswith(refused), err
    assert err.endswith("; " + meant.format(lab=lab.root) + "\n"), err
    assert LabCluster.open(lab.root).state.generation == generation  # refused: nothing changed


def test_an_unknown_certificate_gets_no_guess(lab: LabCluster, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "regenerate", str(lab.root), "sast"]) == 2
    err = capsys.readouterr().err
    assert "cannot regenerate 'sast'" in err and "callmanager, capf" in err
    assert "names are lower case" not in err and "TFTP certificate" not in err


@pytest.mark.parametrize("operation", ["rollback", "mixed-mode", "sbd", "itl-capf"])
def test_a_missing_on_off_is_named_as_the_usage_line_shows_it(
        lab: LabCluster, operation: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["lab", operation, str(lab.root)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "DIR {on,off}\n" in err, err
    assert err.rstrip().endswith(f"phoneemu lab {operation}: error: the following arguments are required: "
                                 "{on,off}"), err
    assert "state" not in err


def test_an_empty_fleet_flash_folder_says_what_a_first_boot_needs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "fleet"
    empty.mkdir()
    assert main(["fleet", "boot", "--tftp", "127.0.0.1:9", "--flash", str(empty)]) == 2
    err = capsys.readouterr().err
    assert err == (f"phoneemu fleet boot: --flash {empty}: empty (no phone's flash in it yet); a first "
                   "boot of a fleet: give --count N (with --mac-start MAC) or --models FILE\n"), err


def test_an_offline_fleet_prediction_says_tvs_was_not_asked(
        lab: LabCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = tmp_path / "fleet"
    for report in run(boot_offline_into(fleet, lab, [MAC], now=NOW)):
        assert report.ok
    lab.regenerate("itlrecovery", now=NOW)  # its signer now known to TVS alone
    note = "note: TVS not asked (offline); --tvs-live asks the TVS servers the phones' configs name"
    argv = ["predict", "--fleet-flash", str(fleet), "--now", str(NOW), str(lab.root / "tftp")]
    assert main(argv) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("; TVS unreachable") and lines[1] == note, lines[:3]
    assert main([*argv, "--tvs-reachable"]) == 1  # TVS stood for: no such note
    assert note not in capsys.readouterr().out
