"""``lab show DIR`` says its values as its other lines do: the ports as ``tftp 69, http 6970, ...`` and
whose they are, settings ``on``/``off``, nothing as ``none``, a tampered file with its byte (was Python's
reprs: ``{'capf': 3804, 'http': 6970, ...}``, ``False``, ``None``, ``{'ITLFile.tlv': 100}``); ``--json``
keeps the values themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster

NOW = 1_780_000_000


def _shown(root: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """``lab show``'s ``key: value`` lines, by key."""
    assert main(["lab", "show", str(root)]) == 0
    out = capsys.readouterr().out
    for python in ("{", "}", "True", "False", "None"):
        assert python not in out, out
    return {key: value.strip() for key, sep, value in (line.partition(":") for line in out.splitlines()
                                                       if not line.startswith(" ")) if sep}


def test_lab_show_says_ports_settings_and_tampering_plainly(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    lab = LabCluster.init(tmp_path / "lab", seed=3, key_spec="rsa1024", now=NOW, host="127.0.0.1")
    shown = _shown(lab.root, capsys)
    assert shown["ports"] == ("tftp 69, http 6970, tvs 2445, capf 3804 (the real CUCM ports: no lab serve "
                              "has recorded its own)")
    assert (shown["mixed_mode"], shown["rollback"], shown["sbd"]) == ("off", "off", "on")
    assert (shown["ctl_signer"], shown["load"]) == ("none", "none")

    lab.set_ports(tftp=16969, http=16970, sip=15060, now=NOW)  # as lab serve --sip-port records them
    assert main(["lab", "tamper", str(lab.root), "ITLFile.tlv", "--offset", "100"]) == 0
    capsys.readouterr()
    shown = _shown(lab.root, capsys)
    assert shown["ports"] == ("tftp 16969, http 16970, tvs 2445, capf 3804, sip 15060 (where lab serve last "
                              "listened: the ports it recorded)")
    assert shown["tampered"].startswith("ITLFile.tlv byte 100"), shown["tampered"]
    said = shown["tampered"]
    assert said.endswith("(flipped until a cluster-wide operation rebuilds it)"), said

    assert main(["lab", "show", str(lab.root), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ports"] == {"tftp": 16969, "http": 16970, "tvs": 2445, "capf": 3804, "sip": 15060}
    assert doc["mixed_mode"] is False and doc["load"] is None and doc["tampered"]["ITLFile.tlv"] == 100
