"""``predict`` given an installed file of the wrong kind says what the file is, what the option takes and
what to give instead (``--installed-config cert.der: a DER file (CERTIFICATE), not a config (.cnf.xml,
.cnf.xml.sgn or .enc.sgn): give ...``); a damaged file of the right kind keeps its parser's error (where,
what). Files only, no socket.

Was the parser's first complaint: "not well-formed XML at line 1 column 1" (a DER or PEM certificate or key,
an empty file given as ``--installed-config``), "the first TLV must be VERSION (tag 1)" or "a record must
start with RECORD_LENGTH" (a certificate, key or config given as ``--installed-itl`` / ``--installed-ctl``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.crypto.certs import cert_der, cert_pem
from phoneemu.crypto.keys import private_key_pem
from tests.signer_helpers import self_signed

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
NOW = "1780000000"
CONFIG_TAKES = "not a config (.cnf.xml, .cnf.xml.sgn or .enc.sgn): give the phone's config now"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A DER and a PEM certificate, a PEM key, a cut DER certificate, a signed and a plain config, an empty
    file, a cut ITL; and the new ITL predicted against."""
    key, cert = self_signed("CN=predict-kind;O=phoneemu", seed="predict-kind", serial=0x10)
    signed_config = (VECTORS / "SEP001122334455.cnf.xml.sgn").read_bytes()
    made = {"cert.der": cert_der(cert), "cert.pem": cert_pem(cert), "key.pem": private_key_pem(key),
            "cut.der": cert_der(cert)[:200], "SEP001122334455.cnf.xml.sgn": signed_config,
            "SEP001122334455.cnf.xml": b"<device><deviceProtocol>SIP</deviceProtocol></device>\n",
            "empty.cnf.xml": b"", "cut.tlv": (VECTORS / "itl_lab.tlv").read_bytes()[:300],
            "ITLFile.tlv": (VECTORS / "itl_lab.tlv").read_bytes()}
    out: dict[str, Path] = {}
    for name, data in made.items():
        out[name] = tmp_path / name
        out[name].write_bytes(data)
    return out


def _predict_err(capsys: pytest.CaptureFixture[str], files: dict[str, Path], *options: str) -> str:
    """predict's one error line for ``options`` (exit 2, nothing predicted)."""
    assert main(["predict", *options, "--now", NOW, str(files["ITLFile.tlv"])]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1, captured
    return captured.err


def test_a_der_certificate_given_as_the_installed_config_is_named(files: dict[str, Path],
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    err = _predict_err(capsys, files, "--installed-config", str(files["cert.der"]))
    der = files["cert.der"]
    said = f"phoneemu predict: --installed-config {der}: a DER file (CERTIFICATE), {CONFIG_TAKES}"
    assert err.startswith(said), err  # was "not well-formed XML at line 1 column 1"
    assert "a certificate TVS vouches for is --tvs-cert's (PEM)" in err and "XML" not in err


@pytest.mark.parametrize(("name", "words"), [("cert.pem", "a PEM file (CERTIFICATE)"),
                                             ("key.pem", "a PEM file (PRIVATE KEY)"),
                                             ("empty.cnf.xml", "an empty file (0 bytes)")])
def test_a_pem_file_or_nothing_given_as_the_installed_config_is_named(
        name: str, words: str, files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    err = _predict_err(capsys, files, "--installed-config", str(files[name]))
    assert f"--installed-config {files[name]}: {words}, {CONFIG_TAKES}" in err, err
    assert "well-formed" not in err
    if name == "key.pem":  # what the key is for
        assert err.rstrip().endswith("the phone's private key is --installed-config-key's (PEM)"), err


@pytest.mark.parametrize("option", ["--installed-itl", "--installed-ctl"])
@pytest.mark.parametrize(("name", "words", "instead"), [
    ("cert.der", "a DER file (CERTIFICATE)", "; a certificate TVS vouches for is --tvs-cert's (PEM)"),
    ("key.pem", "a PEM file (PRIVATE KEY)", "; the phone's private key is --installed-config-key's (PEM)"),
    ("SEP001122334455.cnf.xml.sgn", "a signed file (.sgn)", "; a phone's config is --installed-config's"),
    ("SEP001122334455.cnf.xml", "a config XML", "; a phone's config is --installed-config's"),
    ("empty.cnf.xml", "an empty file (0 bytes)", "")])
def test_a_file_of_another_kind_given_as_an_installed_trust_list_is_named(
        option: str, name: str, words: str, instead: str, files: dict[str, Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    err = _predict_err(capsys, files, option, str(files[name]))
    kind = option[-3:].upper()
    takes = f"not an {kind} ({kind}File.tlv)" if kind == "ITL" else f"not a {kind} ({kind}File.tlv)"
    said = (f"phoneemu predict: {option} {files[name]}: {words}, {takes}: give the {kind} the phone holds "
            f"now (tftp get {kind}File.tlv from its cluster){instead}\n")
    assert err == said, err  # was "the first TLV must be VERSION", "RECORD_LENGTH", "need 1 byte"


def test_a_cut_der_certificate_is_named_with_where_it_goes_wrong(files: dict[str, Path],
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    err = _predict_err(capsys, files, "--installed-config", str(files["cut.der"]))
    assert f"--installed-config {files['cut.der']}: a damaged DER file (der: SEQUENCE at offset 200: " \
           "truncated" in err, err  # was "not well-formed XML at line 1 column 1"
    assert CONFIG_TAKES in err


def test_a_damaged_file_of_the_kind_asked_for_keeps_its_parsers_error(
        files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    """Not a file of another kind: where and what its parser found (unchanged)."""
    err = _predict_err(capsys, files, "--installed-itl", str(files["cut.tlv"]))
    assert f"installed-itl: {files['cut.tlv']}: installed ITL: trustlist: " in err and "offset" in err, err
    assert "not an ITL" not in err


def test_a_listed_phones_config_of_another_kind_names_the_config_folder(
        files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--models``: the phone's config comes from ``--installed-config-dir``, which its reason names (a
    phone skipped; nothing predicted, exit 2)."""
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "SEP0A0000000F01.cnf.xml.sgn").write_bytes(files["cert.der"].read_bytes())
    export = tmp_path / "phones.csv"
    export.write_text("Device Name,Device Type\nSEP0A0000000F01,Cisco 8861\n")
    assert main(["predict", "--models", str(export), "--installed-config-dir", str(configs), "--now", NOW,
                 str(files["ITLFile.tlv"])]) == 2
    out = capsys.readouterr().out
    config = configs / "SEP0A0000000F01.cnf.xml.sgn"
    said = (f"--installed-config-dir {config}: a DER file (CERTIFICATE), not a config (.cnf.xml, "
            ".cnf.xml.sgn or .enc.sgn): put the phone's SEP<MAC>.cnf.xml.sgn (or .cnf.xml) there")
    assert said in out, out


def test_tvs_config_of_another_kind_names_tvs_option(files: dict[str, Path],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The same rule for ``tvs --config`` (the config read by predict's code), in tvs's words."""
    assert main(["tvs", str(files["cert.pem"]), "--config", str(files["cert.der"])]) == 2
    err = capsys.readouterr().err
    der = files["cert.der"]
    assert err.startswith(f"phoneemu tvs: --config {der}: a DER file (CERTIFICATE), not a config (.cnf.xml "
                          "or .cnf.xml.sgn): give the phone's config"), err
    assert "--installed" not in err
