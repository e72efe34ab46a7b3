"""``predict --models``: a lockout is said to rest on *no config given* only when the missing config is all
that keeps TVS from being asked (task REV-REPLAY, spec §E.7.5, §G.3.4, §G.4).

Was: any reason holding "TVS not usable" was taken for it — phones holding a CTL and no ITL (a config would
not help: TVS is not usable without an ITL TVS record) were said to lock out "only because no config was
given", 2 of 2 where giving the configs still locks both out; and a config refused by its signer (G.4, whose
reason read "TVS is not usable") was counted as a real lockout where the phone's config would name its TVS.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone.rules import NO_CONFIG_HELD, TVS_NOT_USABLE
from phoneemu.scenario.predict import NO_CONFIG_GIVEN

NOW = 1_780_000_000
MAC = "0A00000000E1"


def _export(where: Path) -> Path:
    """A CUCM export listing :data:`MAC` as an 8861."""
    export = where / "phones.csv"
    export.write_text(f"Device Name,Device Type\nSEP{MAC},Cisco 8861\n")
    return export


def _predict(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[str, dict[str, Any]]:
    """``predict`` as text and as JSON: its last line and the document."""
    assert main(["predict", "--now", str(NOW), *argv]) == 1
    last = capsys.readouterr().out.splitlines()[-1]
    assert main(["predict", "--now", str(NOW), "--json", *argv]) == 1
    return last, json.loads(capsys.readouterr().out)


def test_phones_holding_no_itl_lock_out_config_or_not(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Holding the mixed-mode cluster's CTL and no ITL, its ITLRecovery regenerated: TVS is not usable for
    want of an ITL as well as of a config, so the lockout is a forecast, config given or not."""
    lab = LabCluster.init(tmp_path / "lab", seed=44, key_spec="rsa1024", now=NOW, name="c")
    lab.set_mixed_mode(True, now=NOW)
    lab.add_phones([MAC], now=NOW)
    files = lab.files()
    (tmp_path / "CTLFile.tlv").write_bytes(files["CTLFile.tlv"])
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / f"SEP{MAC}.cnf.xml.sgn").write_bytes(files[f"SEP{MAC}.cnf.xml.sgn"])
    lab.regenerate("itlrecovery", now=NOW)
    held = ["--models", str(_export(tmp_path)), "--installed-ctl", str(tmp_path / "CTLFile.tlv")]
    last, doc = _predict(capsys, *held, str(lab.root / "tftp"))
    reason = doc["phones"][0]["deciding"]["reason"]
    assert f"{TVS_NOT_USABLE}: {NO_CONFIG_HELD} and no ITL installed" in reason, reason
    assert last == "result: 1 of 1 phone would lock out", last
    assert doc["locked_out_no_config"] == 0
    with_config, _doc = _predict(capsys, *held, "--installed-config-dir", str(configs),
                                 str(lab.root / "tftp"))
    assert with_config == last  # the config given changes nothing


def test_config_refused_for_want_of_its_tvs_rests_on_no_config(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """The ITL unchanged, the config signed by another cluster's key: refused under G.4 because no config
    names a TVS to ask — said to rest on no config given, as a trust list's G.3.5 is."""
    a = LabCluster.init(tmp_path / "a", seed=45, key_spec="rsa1024", now=NOW, name="a")
    b = LabCluster.init(tmp_path / "b", seed=46, key_spec="rsa1024", now=NOW, name="b")
    for lab in (a, b):
        lab.add_phones([MAC], now=NOW)
    new = tmp_path / "new"
    new.mkdir()
    (tmp_path / "ITLFile.tlv").write_bytes(a.files()["ITLFile.tlv"])
    (new / "ITLFile.tlv").write_bytes(a.files()["ITLFile.tlv"])
    (new / f"SEP{MAC}.cnf.xml.sgn").write_bytes(b.files()[f"SEP{MAC}.cnf.xml.sgn"])
    last, doc = _predict(capsys, "--models", str(_export(tmp_path)), "--installed-itl",
                         str(tmp_path / "ITLFile.tlv"), str(new))
    assert doc["phones"][0]["deciding"]["rule"] == "G.4-reject-unknown-signer"
    assert doc["locked_out_no_config"] == 1
    assert last == f"result: 1 of 1 phone would lock out only because no config was given for them " \
        f"({NO_CONFIG_GIVEN})", last
