"""``phone show --fleet-flash FLEET`` without ``--cluster`` tells a lab from a cluster that is not one by
the lists its locked phones hold (:mod:`phoneemu.phone.show_fleet`, :mod:`phoneemu.phone.lab_signers`), as
``phone show --flash`` does for one phone (loopback, no socket even).

The lockout of :mod:`tests.integration.test_not_a_lab_from_files`: the fleet holds a cluster's first ITL,
its ITLRecovery is regenerated and TVS cannot be reached (``G.3.4-tvs-unreachable``). A lab's lists: the
ways out name lab commands, as before. A cluster's whose certificates say ``O=Example Corp``: no lab
command (was ``lab: phoneemu lab service DIR tvs start`` for a lab the user does not have), the command on
the emulated phones and the rehearsal in a lab instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phoneemu.cli import main
from tests.integration.test_not_a_lab_from_files import FLEET, _cluster, _locked_fleet, _said_as


@pytest.mark.parametrize("kind", ["lab", "real"])
def test_fleet_show_says_lab_commands_only_for_a_labs_lists(
        kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    fleet = _locked_fleet(tmp_path, _cluster(tmp_path, monkeypatch, kind))
    assert main(["phone", "show", "--fleet-flash", str(fleet)]) == 0
    out = capsys.readouterr().out
    assert f"ways out of G.3.4-tvs-unreachable (ITL; {len(FLEET)} phones locked out):" in out, out
    _said_as(out, kind, f"on the emulated phones: phoneemu phone erase --fleet-flash {fleet}")
    assert main(["phone", "show", "--fleet-flash", str(fleet), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["signed_by_lab"] is (kind == "lab")
    assert [r["signed_by_lab"] for r in doc["records"]] == [kind == "lab"] * len(FLEET)
