"""The lockout rehearsals of the README (s39b), run in process on a lab of three phones: what misled.

* ``predict --fleet-flash FLEET lab/tftp/`` after ``lab regenerate DIR itlrecovery``, no TVS option: the
  offline TVS is unreachable, so every phone is G.3.4-tvs-unreachable; the result said ``3 of 3 phones
  would lock out`` plainly where the real boot is ok (TVS vouches). It says the lockouts rest on it now, one
  phone's ``--flash`` too, the JSON counts them and the JUnit failure says so.
* Their ways out listed ``lab rollback OLD on`` before the bulk ITL reset: on the phones' own cluster the
  rollback ITL has the signer they refuse. The reset comes first now, and the rollback says it is a
  migration's.
* ``lab regenerate`` warnings and ``lab itl-reset`` notes said one phone's ``boot --lab DIR --flash FLASH``
  on a lab of many phones: the fleet's ``fleet boot --lab DIR --flash FLEET`` now.
* ``lab show`` gave an ITL above the phones' 64 KiB limit as a size alone: it says what it does now.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import boot_offline_into, fsyncs_skipped, run

NOW = 1_780_000_000
MACS = [f"0A00000039{i:02X}" for i in range(3)]
ASK = "(offline: ask it with --tvs-live, or give --tvs-cert)"

no_fsync = fsyncs_skipped()


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    """A lab of three phones, each booted once into ``tmp_path/fleet/<MAC>``; then ITLRecovery
    regenerated (through the CLI, as the walk-through did: its warnings are not asserted here)."""
    root = tmp_path / "lab"
    c = LabCluster.init(root, key_spec="rsa1024", now=NOW, host="127.0.0.1")
    c.add_phones(MACS, now=NOW)
    run(boot_offline_into(tmp_path / "fleet", c, MACS, now=NOW))
    assert main(["lab", "regenerate", str(root), "itlrecovery", "--now", str(NOW)]) == 0
    return root


def _out(capsys: pytest.CaptureFixture[str], rc: int, *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == rc
    return capsys.readouterr().out


def test_the_fleet_forecast_says_its_lockouts_rest_on_the_offline_tvs(
        lab: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet, tftp, junit = tmp_path / "fleet", lab / "tftp", tmp_path / "predict.xml"
    out = _out(capsys, 1, "predict", "--fleet-flash", str(fleet), "--now", str(NOW), "--junit", str(junit),
               str(tftp))
    last = out.splitlines()[-1]
    assert last == f"result: 3 of 3 phones would lock out if their TVS cannot be reached {ASK}"
    # the ways out: the bulk ITL reset that works on their own cluster before the migration's rollback
    assert out.index("phoneemu lab itl-reset") < out.index("phoneemu lab rollback OLD on"), out
    assert "(a migration, moving away from a cluster that still serves them; not a lockout on their own " \
           "cluster, whose rollback ITL has the signer they refuse)" in out
    doc = json.loads(_out(capsys, 1, "predict", "--fleet-flash", str(fleet), "--now", str(NOW), "--json",
                          str(tftp)))
    assert doc["locked_out_tvs_offline"] == 3 and doc["outcomes"]["locked-out"] == 3
    failures = [f for f in ET.parse(junit).getroot().iter("failure")]
    assert len(failures) == 3 and all(f"locked out if its TVS cannot be reached {ASK}" in (f.text or "")
                                      for f in failures)
    # a TVS that answers and knows none of the new certificates: a lockout said plainly
    out = _out(capsys, 1, "predict", "--fleet-flash", str(fleet), "--now", str(NOW), "--tvs-reachable",
               str(tftp))
    assert "G.3.4-tvs-unknown-signer" in out
    assert out.splitlines()[-1] == "result: 3 of 3 phones would lock out"


def test_one_phones_forecast_says_it_too(lab: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    flash, tftp = tmp_path / "fleet" / MACS[0], lab / "tftp"
    out = _out(capsys, 1, "predict", "--flash", str(flash), "--now", str(NOW), str(tftp))
    result = next(line for line in out.splitlines() if line.startswith("  result:"))
    assert result.endswith(f"; locked out: yes, if its TVS cannot be reached {ASK}"), result
    assert out.index("phoneemu lab itl-reset") < out.index("phoneemu lab rollback OLD on"), out
    doc = json.loads(_out(capsys, 1, "predict", "--flash", str(flash), "--now", str(NOW), "--json",
                          str(tftp)))
    assert doc["locked_out_tvs_offline"] is True
    doc = json.loads(_out(capsys, 1, "predict", "--flash", str(flash), "--now", str(NOW), "--json",
                          "--tvs-reachable", str(tftp)))
    assert doc["locked_out_tvs_offline"] is False


def test_the_lab_of_many_phones_is_told_the_fleet_boot(lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["lab", "regenerate", str(lab), "tvs", "--now", str(NOW)]) == 0
    warning = capsys.readouterr().err
    fleet_reset = (f"phoneemu lab itl-reset {lab} localkey && phoneemu fleet boot --lab {lab} --flash "
                   f"FLEET && phoneemu lab restart-tftp {lab} (FLEET: the folder of the phones' flashes, as "
                   "fleet boot --flash keeps them)")
    assert fleet_reset in warning, warning
    assert "--flash FLASH" not in warning
    assert main(["lab", "itl-reset", str(lab), "localkey", "--now", str(NOW)]) == 0
    note = capsys.readouterr().err
    then = f"phoneemu fleet boot --lab {lab} --flash FLEET), then phoneemu lab restart-tftp {lab}"
    assert then in note, note
    assert "--flash FLASH" not in note


def test_lab_show_says_an_itl_above_the_limit_locks_the_phones_out(
        lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "add-certs", str(lab), "--count", "60", "--now", str(NOW)]) == 0
    out = _out(capsys, 0, "lab", "show", str(lab))
    itl = out.splitlines().index(next(line for line in out.splitlines() if line.startswith("ITL:")))
    size = (lab / "tftp" / "ITLFile.tlv").stat().st_size
    below = out.splitlines()[itl + 1].strip()
    assert below.startswith(f"note: the ITL is {size} bytes, above the phones' 64 KiB (65536-byte) "
                            "limit"), out
    assert "locked out (G.3.1-oversize" in below
    assert f"phoneemu lab remove-certs {lab} brings it back under" in below
    assert main(["lab", "remove-certs", str(lab), "--now", str(NOW)]) == 0
    assert "64 KiB" not in _out(capsys, 0, "lab", "show", str(lab))
