"""``lab init`` gives the served ITL's md5 and sha1, as ``lab show`` and CUCM's ``show itl`` do (spec §H.4):
a phone shows one of them, which by its model (§G.1: a cp-8861's SHA-1, which ``phone show`` prints); the md5
alone had a newcomer compare an MD5 with a SHA-1. ``lab phone add --encrypt`` says the config it serves is
encrypted, as ``lab show`` words it; ``lab phone --help`` has a description and examples."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from phoneemu.cli import build_parser, main
from tests.helpers import cli_parsers

MAC = "001122334455"


@pytest.fixture
def lab_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    d = tmp_path / "lab"
    assert main(["lab", "init", str(d), "--seed", "4", "--key", "rsa1024", "--now", "1780000000"]) == 0
    return d


def test_init_gives_the_itl_md5_and_sha1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "lab"
    assert main(["lab", "init", str(d), "--seed", "4", "--key", "rsa1024", "--now", "1780000000"]) == 0
    out = capsys.readouterr().out
    itl = (d / "tftp" / "ITLFile.tlv").read_bytes()
    md5 = hashlib.md5(itl, usedforsecurity=False).hexdigest()
    sha1 = hashlib.sha1(itl, usedforsecurity=False).hexdigest()
    assert f"ITL md5 {md5}  sha1 {sha1}  " in out
    assert main(["lab", "show", str(d)]) == 0  # the same words as lab show's
    assert f"md5 {md5}  sha1 {sha1}" in capsys.readouterr().out


@pytest.mark.parametrize(("options", "said"), [
    (["--encrypt", "pki"], f"; encrypt pki: config served as SEP{MAC}.cnf.xml.enc.sgn, encrypted for its "
                           "certificate"),
    (["--encrypt", "symmetric", "--symmetric-key", "00112233445566778899AABBCCDDEEFF", "--model", "7962"],
     f"; encrypt symmetric: config served as SEP{MAC}.cnf.xml.enc.sgn, encrypted with its manual key"),
])
def test_phone_add_encrypt_says_the_config_is_served_encrypted(lab_dir: Path, options: list[str], said: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["lab", "phone", "add", str(lab_dir), "--mac", MAC, *options]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"phone {MAC}: MIC in ") and first.endswith(said), first
    assert (lab_dir / "tftp" / f"SEP{MAC}.cnf.xml.enc.sgn").is_file()  # what it says is served


def test_phone_add_count_encrypt_says_it_of_each(lab_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["lab", "phone", "add", str(lab_dir), "--mac", MAC, "--count", "2", "--encrypt", "pki"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith("; encrypt pki: configs served as SEP<MAC>.cnf.xml.enc.sgn, encrypted for each "
                          "one's certificate"), first


def test_phone_add_without_encrypt_says_nothing_of_it(lab_dir: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["lab", "phone", "add", str(lab_dir), "--mac", MAC]) == 0
    assert "; encrypt" not in capsys.readouterr().out


def test_lab_phone_help_has_a_description_and_examples() -> None:
    text = dict(cli_parsers(build_parser()))["phoneemu lab phone"].format_help()
    assert "Phones known to the cluster. add: add a phone" in " ".join(text.split())
    assert "\nexamples:\n  phoneemu lab phone add /tmp/lab --mac 001122334455 --encrypt pki\n" in text


def test_every_operation_ends_with_the_itl_md5_and_sha1(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A lab operation's last line (and lab serve's picked-up line: one function) gives both checksums of
    the served ITL (was md5 only: a cp-8861 shows the SHA-1)."""
    from phoneemu.lab.cluster import LabCluster
    from phoneemu.lab.trust_line import trust_line

    lab = LabCluster.init(tmp_path / "lab", seed=5, key_spec="rsa1024")
    lab.add_phone("0A0000000001")
    itl = (tmp_path / "lab" / "tftp" / "ITLFile.tlv").read_bytes()
    md5 = hashlib.md5(itl, usedforsecurity=False).hexdigest()
    sha1 = hashlib.sha1(itl, usedforsecurity=False).hexdigest()
    assert f"; ITL md5 {md5}  sha1 {sha1}; ITL signed by " in trust_line(lab)
