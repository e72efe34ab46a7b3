"""``predict --tvs-reachable`` with no ``--tvs-cert``: a TVS that answers "not found" to everything. After
``lab regenerate DIR itlrecovery`` on the phones' own cluster it predicts a lockout
(``G.3.4-tvs-unknown-signer``) the reboot does not meet (their TVS knows its new ITLRecovery): the verdict
says it rests on that TVS, as one resting on the offline TVS is qualified — a note (text, JSON, each JUnit
failure) and a count in the JSON, one phone and a fleet alike (was: ``locked out: yes`` and nothing else,
its first way out a move to another cluster). The result line stays plain (that TVS stands in for one that
does not know the signer, a real case: tests/integration/test_walk_s39b_lockout_rehearsals.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from phoneemu.scenario.predict import TVS_KNOWS_NOTHING
from tests.helpers import boot_offline_into, run

NOW = 1_780_000_000
OLD = ["0A00000000E1", "0A00000000E2"]  # booted before ITLRecovery was regenerated
NEW = ["0A00000000F1"]  # booted after


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The lab folder (ITLRecovery regenerated) and the fleet's flash folder."""
    tmp = tmp_path_factory.mktemp("knows-nothing")
    c = LabCluster.init(tmp / "lab", seed=43, key_spec="rsa1024", now=NOW, name="c")
    c.add_phones([*OLD, *NEW], now=NOW)
    fleet = tmp / "fleet"
    run(boot_offline_into(fleet, c, OLD, now=NOW))
    c.regenerate("itlrecovery", now=NOW)
    run(boot_offline_into(fleet, c, NEW, now=NOW))
    return tmp / "lab", fleet


def _predict(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    rc = main(["predict", "--now", str(NOW), *argv])
    return rc, capsys.readouterr().out


def test_one_phone_says_its_lockout_rests_on_the_tvs_that_knows_nothing(
        lab: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dir_, fleet = lab
    flash = ["--flash", str(fleet / OLD[0]), str(dir_ / "tftp")]
    rc, out = _predict(capsys, "--tvs-reachable", "--junit", str(tmp_path / "j.xml"), *flash)
    assert rc == 1 and "G.3.4-tvs-unknown-signer" in out and "locked out: yes" in out
    assert f"  note: {TVS_KNOWS_NOTHING}" in out, out
    assert f"note: {TVS_KNOWS_NOTHING}" in (tmp_path / "j.xml").read_text()
    rc, out = _predict(capsys, "--tvs-reachable", "--json", *flash)
    doc = json.loads(out)
    assert rc == 1 and doc["locked_out_tvs_knows_nothing"] is True and TVS_KNOWS_NOTHING in doc["notes"]
    # the certificate the note names: the real boot's verdict
    pem = str(dir_ / "certs" / "itlrecovery.pem")
    rc, out = _predict(capsys, "--tvs-reachable", "--tvs-cert", pem, *flash)
    assert rc == 0 and "locked out: no" in out and TVS_KNOWS_NOTHING not in out, out


def test_no_such_note_where_the_verdict_does_not_rest_on_it(
        lab: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    dir_, fleet = lab
    rc, out = _predict(capsys, "--tvs-reachable", "--flash", str(fleet / NEW[0]), str(dir_ / "tftp"))
    assert rc == 0 and TVS_KNOWS_NOTHING not in out, out  # accepted: no TVS asked
    rc, out = _predict(capsys, "--json", "--flash", str(fleet / OLD[0]), str(dir_ / "tftp"))  # offline
    doc = json.loads(out)
    assert doc["locked_out_tvs_offline"] is True and doc["locked_out_tvs_knows_nothing"] is False
    assert TVS_KNOWS_NOTHING not in doc["notes"]


def test_a_fleet_says_how_many_lockouts_rest_on_the_tvs_that_knows_nothing(
        lab: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dir_, fleet = lab
    argv = ["--fleet-flash", str(fleet), "--tvs-reachable", "--junit", str(tmp_path / "j.xml"),
            "--json-file", str(tmp_path / "p.json"), str(dir_ / "tftp")]
    rc, out = _predict(capsys, *argv)
    assert rc == 1
    assert out.rstrip().splitlines()[-1] == "result: 2 of 3 phones would lock out", out
    assert f"note for 2 phones ({OLD[0]} {OLD[1]}): {TVS_KNOWS_NOTHING}" in out, out
    doc = json.loads((tmp_path / "p.json").read_text())
    assert doc["locked_out_tvs_knows_nothing"] == 2 and doc["locked_out_tvs_offline"] == 0
    assert [TVS_KNOWS_NOTHING in ph["notes"] for ph in doc["phones"]].count(True) == 2
    assert (tmp_path / "j.xml").read_text().count(f"note: {TVS_KNOWS_NOTHING}") == 2
