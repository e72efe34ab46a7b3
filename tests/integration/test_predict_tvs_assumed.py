"""``predict`` offline, the TVS server's certificate behind a rollback ITL (spec §B.7, §E.1, §G.3.6).

The rollback ITL blanks its TVS records: offline, without ``--tvs-server-cert``, it cannot tell the
certificate the TVS presents. With the TVS's own certificate among the ``--tvs-cert`` ones the prediction
is the boot's (a regenerated TVS refused: locked out); with nothing to tell, the TVS is assumed trusted
and a note says so — in the text, the JSON and the JUnit report — naming how to remove the assumption.
A migration (the new ITL names another cluster's TVS records) keeps its notes.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET  # our own report, not untrusted input
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster

NOW = 1_780_000_000
MAC = "0A00000000D7"
ASSUMED = "assumed to present a certificate the installed ITL trusts"


def _cluster(tmp: Path, name: str, seed: int) -> LabCluster:
    c = LabCluster.init(tmp / name, seed=seed, key_spec="rsa1024", now=NOW, name=name)
    c.add_phone(MAC, now=NOW)
    return c


def _pem(c: LabCluster, name: str, path: Path) -> str:
    cert = c.tvs_identity(1).cert if name == "tvs" else c.identity(name).cert
    path.write_bytes(cert.public_bytes(Encoding.PEM))
    return str(path)


@pytest.fixture
def rolled_back(tmp_path: Path) -> tuple[list[str], LabCluster, Path]:
    """The phone's ITL and config; then ITLRecovery and TVS regenerated and the rollback ITL served."""
    c = _cluster(tmp_path, "c", 41)
    old = tmp_path / "old"
    old.mkdir()
    for name in ("ITLFile.tlv", f"SEP{MAC}.cnf.xml.sgn"):
        (old / name).write_bytes(c.files()[name])
    c.regenerate("itlrecovery", now=NOW)
    c.regenerate("tvs", now=NOW)
    c.set_rollback(True, now=NOW)
    common = ["predict", "--installed-itl", str(old / "ITLFile.tlv"), "--installed-config",
              str(old / f"SEP{MAC}.cnf.xml.sgn"), "--mac", MAC, "--now", str(NOW)]
    return common, c, tmp_path


def test_nothing_to_tell_the_tvs_certificate_is_a_note_everywhere(
        rolled_back: tuple[list[str], LabCluster, Path], capsys: pytest.CaptureFixture[str]) -> None:
    common, c, tmp = rolled_back
    itlrecovery = _pem(c, "itlrecovery", tmp / "itlrecovery.pem")
    junit = tmp / "p.xml"
    rc = main([*common, "--tvs-cert", itlrecovery, "--junit", str(junit), str(c.root / "tftp")])
    out = capsys.readouterr().out
    assert rc == 0 and "G.3.4-vouched-by-tvs" in out  # what the prediction can see: accepted
    (line,) = [ln for ln in out.splitlines() if ASSUMED in ln]
    assert line.startswith("  note: TVS ") and "--tvs-server-cert PEM" in line and "--tvs-live" in line
    case = ET.parse(junit).getroot().find("testsuite/testcase")
    assert case is not None and case.find("failure") is None
    system_out = case.find("system-out")
    assert system_out is not None and ASSUMED in (system_out.text or "")

    assert main([*common, "--tvs-cert", itlrecovery, "--json", str(c.root / "tftp")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [n for n in doc["notes"] if ASSUMED in n] == [line.removeprefix("  note: ")]
    # --tvs-reachable: TVS answers, the server assumed trusted as well
    assert main([*common, "--tvs-reachable", "--json", str(c.root / "tftp")]) == 1
    assert any(ASSUMED in n for n in json.loads(capsys.readouterr().out)["notes"])
    # TVS unreachable (the default): nothing was asked, nothing assumed
    assert main([*common, "--json", str(c.root / "tftp")]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["report"]["deciding"]["rule"] == "G.3.4-tvs-unreachable" and doc["notes"] == []


def test_the_tvs_certificate_given_predicts_the_lockout(
        rolled_back: tuple[list[str], LabCluster, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """The lab's TVS certificate among the --tvs-cert ones (the TVS vouches for its own), or given as the
    one it presents: the phone refuses it (spec §E.1), as the real boot does; nothing assumed."""
    common, c, tmp = rolled_back
    itlrecovery = _pem(c, "itlrecovery", tmp / "itlrecovery.pem")
    tvs = _pem(c, "tvs", tmp / "tvs.pem")
    for extra in (["--tvs-cert", tvs], ["--tvs-server-cert", tvs]):
        assert main([*common, "--tvs-cert", itlrecovery, *extra, "--json", str(c.root / "tftp")]) == 1
        doc = json.loads(capsys.readouterr().out)
        assert doc["report"]["deciding"]["rule"] == "G.3.4-tvs-server-untrusted", extra
        assert not any(ASSUMED in n for n in doc["notes"]), doc["notes"]
        (refused,) = doc["notes"]
        assert "presents CN=c-pub-TVS" in refused and "not a TVS record of the installed ITL" in refused


def test_a_migration_keeps_its_notes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Cluster A's phone, cluster B's files: B's ITL names B's TVS records (another cluster's), A's TVS is
    taken to present what the phone trusts, by convention, with no note (as before)."""
    a, b = _cluster(tmp_path, "a", 42), _cluster(tmp_path, "b", 43)
    old = tmp_path / "a-files"
    old.mkdir()
    for name in ("ITLFile.tlv", f"SEP{MAC}.cnf.xml.sgn"):
        (old / name).write_bytes(a.files()[name])
    common = ["predict", "--installed-itl", str(old / "ITLFile.tlv"), "--installed-config",
              str(old / f"SEP{MAC}.cnf.xml.sgn"), "--mac", MAC, "--now", str(NOW), "--json"]
    itlrecovery = _pem(b, "itlrecovery", tmp_path / "b-itlrecovery.pem")
    a_tvs = _pem(a, "tvs", tmp_path / "a-tvs.pem")
    for extra in ([], ["--tvs-cert", a_tvs]):  # A's own TVS certificate too: unchanged, trusted
        assert main([*common, "--tvs-cert", itlrecovery, *extra, str(b.root / "tftp")]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["report"]["trust"]["ITL"] == "updated" and doc["notes"] == [], extra
