"""``predict --models``: a listed phone with no config given (none in ``--installed-config-dir``) holds no
TVS server, so an ITL whose signer only its TVS could vouch for is rejected (G.3.5) — a lockout that rests
on the config missing, not a forecast: the real phone holds its config and asks its TVS. The result line,
the JSON (``locked_out_no_config``) and the JUnit case say so, as they say a lockout resting on the offline
TVS (was: ``result: 3 of 5 phones would lock out`` where the real fleet boot was 5 ok, TVS vouching)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from phoneemu.scenario.predict import NO_CONFIG_GIVEN, TVS_OFFLINE_ASK

NOW = 1_780_000_000
MACS = [f"0A00000000C{i}" for i in range(1, 6)]
CONFIGURED = MACS[:2]  # old/ holds the configs of these two only
NOT_GIVEN = f"only because no config was given for them ({NO_CONFIG_GIVEN})"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, Path]:
    """The CUCM export, the old cluster's folder (its ITL, two phones' configs), the TFTP root after
    ITLRecovery was regenerated, the new ITLRecovery certificate (its TVS vouches for it)."""
    tmp = tmp_path_factory.mktemp("site")
    c = LabCluster.init(tmp / "lab", seed=43, key_spec="rsa1024", now=NOW, name="c")
    c.add_phones(MACS, now=NOW)
    old = tmp / "old"
    old.mkdir()
    files = c.files()
    for name in ("ITLFile.tlv", *(f"SEP{mac}.cnf.xml.sgn" for mac in CONFIGURED)):
        (old / name).write_bytes(files[name])
    c.regenerate("itlrecovery", now=NOW)
    pem = tmp / "itlrecovery.pem"
    pem.write_bytes(c.identity("itlrecovery").cert.public_bytes(Encoding.PEM))
    export = tmp / "phones.csv"
    export.write_text("Device Name,Device Type\n" + "".join(f"SEP{mac},Cisco 8861\n" for mac in MACS))
    return export, old, tmp / "lab" / "tftp", pem


def _predict(site: tuple[Path, Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str],
             *more: str) -> tuple[str, dict[str, Any], Any]:
    export, old, new, _pem = site
    json_file, junit = tmp_path / "site.json", tmp_path / "site.xml"
    assert main(["predict", "--models", str(export), "--installed-itl", str(old / "ITLFile.tlv"),
                 "--installed-config-dir", str(old), "--now", str(NOW), "--json-file", str(json_file),
                 "--junit", str(junit), *more, str(new)]) == 1
    return capsys.readouterr().out, json.loads(json_file.read_text()), ET.parse(junit)


def test_lockouts_of_phones_without_a_config_are_said_as_such(
        site: tuple[Path, Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, doc, junit = _predict(site, tmp_path, capsys, "--tvs-cert", str(site[3]))
    assert "  accepted:   2" in out and "  locked out: 3" in out, out
    assert "G.3.5-reject-unknown-signer" in out, out
    assert out.splitlines()[-1] == f"result: 3 of 5 phones would lock out {NOT_GIVEN}", out
    assert doc["locked_out_no_config"] == 3 and doc["locked_out_tvs_offline"] == 0
    failures = {case.get("name"): case.find("failure") for case in junit.iter("testcase")}
    for mac in MACS:
        failure = failures[mac]
        if mac in CONFIGURED:
            assert failure is None
        else:
            assert failure is not None and failure.text is not None
            assert f"locked out only because no config was given for it ({NO_CONFIG_GIVEN})" in failure.text


def test_beside_lockouts_resting_on_the_offline_tvs_each_is_counted(
        site: tuple[Path, Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, doc, _junit = _predict(site, tmp_path, capsys)
    assert out.splitlines()[-1] == (
        "result: 5 of 5 phones would lock out, 2 of them if their TVS cannot be reached "
        f"({TVS_OFFLINE_ASK}), 3 of them {NOT_GIVEN}"), out
    assert doc["locked_out_no_config"] == 3 and doc["locked_out_tvs_offline"] == 2
