"""Counts said in number where the count is known (:func:`phoneemu.words.counted`): ``1 phone``, ``2 nodes``,
never ``1 phone(s)``. Was (walk-through): ``lab mixed-mode off`` said ``1 phone(s) in a secure mode``, ``lab
init`` ``1 node(s)`` (and ``ITLRecovery 1 years``), a scenario naming node 2's service ``has 1 node(s)``, a
predicted SIP forecast ``1 of the 1 CallManager certificate(s)``, a fleet's prediction ``1 file(s) given
but asked for by no phone``, a capture scan ``... and 1 more warning(s)``, a replay's offline TVS ``1
exchange(s) decrypted``.

"(s)" stays where the count is not known where the text is written: a fleet's failure kinds (``3
packet(s)``: one kind for phones with 1 and with 3, :mod:`phoneemu.fleet.alike`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import pytest

from phoneemu.cli import main
from tests.helpers import loader_error

NOW = 1_780_000_000


def _err(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main([*argv, "--now", str(NOW)]) == 0
    return capsys.readouterr().err


@pytest.mark.parametrize("phones", [1, 2])
def test_mixed_mode_off_counts_the_phones_in_a_secure_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           phones: int) -> None:
    from phoneemu.lab.cluster import LabCluster

    lab = LabCluster.init(tmp_path / "lab", seed=3, key_spec="rsa1024", now=NOW)
    macs = [f"0A00000015{n:02X}" for n in range(phones)]
    for mac in macs:
        lab.add_phone(mac, now=NOW)
    root = lab.root
    _err(["lab", "mixed-mode", str(root), "on"], capsys)
    for mac in macs:
        _err(["lab", "security-mode", str(root), "--mac", mac, "encrypted"], capsys)
    err = _err(["lab", "mixed-mode", str(root), "off"], capsys)
    assert "(s)" not in err, err
    if phones == 1:
        assert "note: 1 phone in a secure mode" in err and "so it asks for it four times" in err, err
        assert err.endswith("says so in its config\n"), err
    else:
        assert "note: 2 phones in a secure mode" in err and "so each asks for it four times" in err, err
        assert err.endswith("says so in their configs\n"), err


def test_lab_init_counts_nodes_and_years(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "init", str(tmp_path / "one"), "--seed", "3", "--key", "rsa1024", "--now", str(NOW),
                 "--itlrecovery-years", "1"]) == 0
    out = capsys.readouterr().out
    assert ", 1 node, ITLRecovery 1 year)" in out, out
    assert main(["lab", "init", str(tmp_path / "two"), "--seed", "3", "--key", "rsa1024", "--now", str(NOW),
                 "--nodes", "2"]) == 0
    out = capsys.readouterr().out
    assert ", 2 nodes, ITLRecovery 20 years)" in out, out


def test_a_scenario_naming_a_node_not_there_counts_the_nodes() -> None:
    text = str(loader_error("- service: {tvs-2: stop}"))
    assert "has 1 node at this step" in text, text


def test_the_sip_forecast_counts_the_callmanager_certificates() -> None:
    from phoneemu.scenario.predict_sip import SipForecast, SipMoment

    before = SipMoment(transport="tls", transport_rule="G.9", certificates=(("CallManager", "G.5-x", False),))
    after = SipMoment(transport="tls", transport_rule="G.9", certificates=(("CallManager", "G.5-y", True),))
    (line,) = [ln for ln in SipForecast(before=before, after=after).lines() if "until it resets" in ln]
    assert "refuses 1 of the 1 CallManager certificate (G.5)" in line, line


def test_a_fleet_prediction_counts_the_files_no_phone_asked_for() -> None:
    from phoneemu.scenario.predict import FleetPhone, _noting_unasked

    phones = [FleetPhone(entry="0A0000001501", mac="0A0000001501", outcome="accepted")]
    inputs = SimpleNamespace(named=(Path("new/ITLFile.tlv"),))
    (phone,) = _noting_unasked(phones, inputs, set())  # type: ignore[arg-type]
    assert phone.notes == ("1 file given but asked for by no phone of the fleet: ITLFile.tlv (not part of "
                           "any prediction)",)


def test_a_capture_scan_counts_the_warnings_not_kept() -> None:
    from phoneemu.scenario.replay_tvs import MAX_WARNINGS, ScanWarnings

    warnings = ScanWarnings()
    for n in range(MAX_WARNINGS + 1):
        warnings(f"warning {n}")
    assert warnings.lines()[-1] == "... and 1 more warning"


def test_a_replay_counts_the_tvs_exchanges_decrypted() -> None:
    from phoneemu.commands._replay_all import offline_words

    args = argparse.Namespace(installed_ctl=None, installed_itl=None, installed_config=None, tvs_cert=[],
                              keylog=Path("k.keys"))
    _holding, tvs = offline_words(args, SimpleNamespace(decrypted=1))  # type: ignore[arg-type]
    assert tvs == "answers from the capture (1 exchange decrypted)"
