"""``predict`` says why ``--tvs-cert`` went unused, and reads (or explains) an encrypted installed config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster

NOW = 1_780_000_000
MAC = "0A00000000D2"


@pytest.fixture
def files(tmp_path: Path) -> Path:
    a = LabCluster.init(tmp_path / "a", seed=31, key_spec="rsa1024", now=NOW, name="a")
    a.add_phone(MAC, now=NOW)
    b = LabCluster.init(tmp_path / "b", seed=32, key_spec="rsa1024", now=NOW, name="b")
    b.add_phone(MAC, now=NOW)
    out = tmp_path / "f"
    out.mkdir()
    (out / "a-ITLFile.tlv").write_bytes(a.files()["ITLFile.tlv"])
    (out / "a.cnf.xml.sgn").write_bytes(a.files()[f"SEP{MAC}.cnf.xml.sgn"])
    a.set_encryption([MAC], True, mode="pki", now=NOW)
    (out / "a.cnf.xml.enc.sgn").write_bytes(a.files()[f"SEP{MAC}.cnf.xml.enc.sgn"])
    (out / "a-short.cnf.xml.sgn").write_bytes(a.files()[f"SEP{MAC}.cnf.xml.sgn"])  # encrypted: the short one
    (out / "phone.key").write_bytes((a.root / "phones" / MAC / "mic.key").read_bytes())
    (out / "ITLFile.tlv").write_bytes(b.files()["ITLFile.tlv"])
    (out / f"SEP{MAC}.cnf.xml.sgn").write_bytes(b.files()[f"SEP{MAC}.cnf.xml.sgn"])
    (out / "b-itlrecovery.pem").write_bytes(b.identity("itlrecovery").cert.public_bytes(Encoding.PEM))
    (out / "no-tvs.cnf.xml").write_text("<device><fullConfig>true</fullConfig></device>\n")
    return out


def _predict(f: Path, *extra: str) -> list[str]:
    return ["predict", "--installed-itl", str(f / "a-ITLFile.tlv"), "--now", str(NOW),
            "--tvs-cert", str(f / "b-itlrecovery.pem"), *extra, str(f / "ITLFile.tlv"),
            str(f / f"SEP{MAC}.cnf.xml.sgn")]


def test_tvs_cert_without_an_installed_config_says_it_is_unused(files: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_predict(files)) == 1
    out = capsys.readouterr().out
    assert "note: --tvs-cert not used: the phone learns its TVS servers from its current config" in out
    assert main(_predict(files, "--installed-config", str(files / "no-tvs.cnf.xml"), "--json")) == 1
    doc = json.loads(capsys.readouterr().out)
    assert any("no-tvs.cnf.xml names no TVS server" in n for n in doc["notes"])
    assert main(_predict(files, "--installed-config", str(files / "a.cnf.xml.sgn"))) == 0
    assert "note:" not in capsys.readouterr().out


def test_an_encrypted_installed_config_needs_the_phone_key(files: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    enc = str(files / "a.cnf.xml.enc.sgn")
    assert main(_predict(files, "--installed-config", enc)) == 2
    err = capsys.readouterr().err
    assert "installed config is encrypted (.enc.sgn)" in err and "--installed-config-key" in err
    assert "well-formed" not in err
    assert main(_predict(files, "--installed-config", enc, "--installed-config-key",
                         str(files / "phone.key"))) == 0
    out = capsys.readouterr().out
    assert "G.3.4-vouched-by-tvs" in out and "note:" not in out


def test_an_encrypted_short_config_points_at_the_full_one(files: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The .cnf.xml.sgn of an encrypted phone is its short config (spec §G.12): the note says which file
    and option give the TVS servers, not only that it names none."""
    assert main(_predict(files, "--installed-config", str(files / "a-short.cnf.xml.sgn"), "--json")) == 1
    notes = json.loads(capsys.readouterr().out)["notes"]
    assert any("a-short.cnf.xml.sgn is the short config of an encrypted phone" in n
               and "--installed-config-key" in n for n in notes), notes
