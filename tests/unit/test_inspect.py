"""``phoneemu inspect`` (spec §H.4): text and JSON output, checks, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from phoneemu.cli import main
from phoneemu.crypto import keys

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def _pem(tmp_path: Path, name: str, *parts: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(b"".join(parts))
    return p


def test_itl_text_show_itl_style(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(VECTORS / "itl_lab.tlv")]) == 0
    out = capsys.readouterr().out
    size = len((VECTORS / "itl_lab.tlv").read_bytes())
    assert "(MD5)" in out and "(SHA1)" in out and f"Length of ITL file: {size}" in out
    assert "Version:        1.2" in out and "HeaderLength:   436 (BYTES)" in out
    assert "ITL Record #:5" in out and "System Administrator Security Token" in out
    assert "This etoken was used to sign the ITL file." in out
    assert "EC secp256r1" in out and "(SHA1 Hash HEX)" in out
    assert "The ITL file was verified successfully" in out


def test_ctl_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "--json", str(VECTORS / "ctl_nonsecure_3746.tlv")]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "ctl" and doc["length"] == 3746
    assert [r["role_text"] for r in doc["records"]] == [
        "System Administrator Security Token", "System Administrator Security Token", "CCM+TFTP", "CAPF",
        "CCM+TFTP"]
    assert [r["used_to_sign"] for r in doc["records"]] == [True, False, False, False, False]
    first = doc["records"][0]
    assert first["serial"].count(":") == 9 and first["key_algorithm"] == "RSA" and first["key_size"] == 1024
    assert doc["records"][2]["empty"] and doc["checks"][0]["ok"]


def test_tampered_trust_list_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = bytearray((VECTORS / "itl_lab.tlv").read_bytes())
    data[-20] ^= 0xFF
    p = tmp_path / "ITLFile.tlv"
    p.write_bytes(bytes(data))
    assert main(["inspect", str(p)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad-signature" in err[0]


@pytest.mark.parametrize("content", [b"", b"\x01\x00\x02\x01", b"garbage", bytes(range(256)) * 3])
def test_garbage_exits_2_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes) -> None:
    p = tmp_path / "x.tlv"
    p.write_bytes(content)
    assert main(["inspect", str(p)]) == 2
    captured = capsys.readouterr()
    assert len(captured.err.strip().splitlines()) == 1 and "Traceback" not in captured.err


def test_missing_file_and_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(tmp_path / "nope.tlv")]) == 2
    assert main(["inspect", "--limit", "1000", str(VECTORS / "itl_lab.tlv")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "1000" in err[1]


def test_sgn_with_certs(tmp_path: Path, pki: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    lab = pki.lab()
    right = _pem(tmp_path, "cm.pem", lab["callmanager"].cert.public_bytes(Encoding.PEM))
    wrong = _pem(tmp_path, "tvs.pem", lab["tvs"].cert.public_bytes(Encoding.PEM))
    sgn = str(VECTORS / "SEP001122334455.cnf.xml.sgn")
    assert main(["inspect", sgn]) == 0
    assert "signature not checked" in capsys.readouterr().out
    assert main(["inspect", sgn, "--cert", str(wrong), "--cert", str(right)]) == 0
    assert "verified successfully" in capsys.readouterr().out
    # a certificate that is not the signer: said so, naming the signer (not "the signature does not verify")
    assert main(["inspect", sgn, "--cert", str(wrong)]) == 1
    err = capsys.readouterr().err
    assert "(unknown-signer): signed by CN=" in err and "not by the given certificate: " in err
    assert "tvs.pem" in err and "bad-signature" not in err
    # the signer's certificate on a tampered file: the signature does not verify
    data = bytearray(Path(sgn).read_bytes())
    data[-3] ^= 0x01
    bad = tmp_path / "SEP001122334455.cnf.xml.sgn"
    bad.write_bytes(bytes(data))
    assert main(["inspect", str(bad), "--cert", str(right)]) == 1
    assert "bad-signature" in capsys.readouterr().err


def test_enc_sgn_decrypt(tmp_path: Path, pki: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    encrypted = pytest.importorskip("phoneemu.formats.encrypted")
    lab = pki.lab()
    phone = pki.identity("CN=SEP001122334455;O=phone", spec="rsa1024", seed="inspect-phone")
    data = encrypted.build_pki(plaintext=b"<device>secret</device>", filename="SEP0011.cnf.xml.enc.sgn",
                               signer=lab["callmanager"].signer, recipient_cert=phone.cert, timestamp=1,
                               rand=os.urandom)
    f = tmp_path / "SEP001122334455.cnf.xml.enc.sgn"
    f.write_bytes(data)
    key_pem = _pem(tmp_path, "phone.pem", keys.private_key_pem(phone.key),
                   phone.cert.public_bytes(Encoding.PEM))
    cm = _pem(tmp_path, "cm.pem", lab["callmanager"].cert.public_bytes(Encoding.PEM))
    assert main(["inspect", str(f), "--cert", str(cm), "--key", str(key_pem), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "enc" and doc["plaintext"] == "<device>secret</device>"
    assert {c["check"] for c in doc["checks"]} == {"signature", "decrypt"}
    other = pki.identity("CN=other-phone;O=phone", spec="rsa1024", seed="inspect-other")
    bad_key = _pem(tmp_path, "other.pem", keys.private_key_pem(other.key))
    assert main(["inspect", str(f), "--key", str(bad_key)]) == 1
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_degrades_without_optional_modules(tmp_path: Path, pki: ModuleType, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    encrypted = pytest.importorskip("phoneemu.formats.encrypted")
    from phoneemu import inspection as cmd

    lab = pki.lab()
    phone = pki.identity("CN=SEP001122334455;O=phone", spec="rsa1024", seed="inspect-phone")
    f = tmp_path / "SEP0011.cnf.xml.enc.sgn"
    cm = lab["callmanager"].signer
    f.write_bytes(encrypted.build_pki(plaintext=b"<device/>", filename=f.name, signer=cm,
                                      recipient_cert=phone.cert, timestamp=1, rand=os.urandom))
    monkeypatch.setattr(cmd, "_optional", lambda name: None)
    assert main(["inspect", str(f)]) == 0
    assert "encrypted module not available" in capsys.readouterr().out
    x = tmp_path / "SEP0011.cnf.xml"
    x.write_bytes(b"<device><fullConfig>true</fullConfig></device>")
    assert main(["inspect", str(x)]) == 0
    assert "config module not available" in capsys.readouterr().out


def test_xml_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("phoneemu.formats.config")
    x = tmp_path / "SEP0011.cnf.xml"
    x.write_bytes(b'<?xml version="1.0"?><device><fullConfig>false</fullConfig><encrConfig>true</encrConfig>'
                  b"</device>")
    assert main(["inspect", "--json", str(x)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["format"] == "xml"
    assert doc["config"]["full_config"] is False and doc["config"]["encr_config"] is True


def test_limit_applies_to_a_config_xml_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--help: a config XML's own limit is 256 KiB and --limit sets it, as for every other format (it
    was ignored: a larger --limit still refused the file)."""
    x = tmp_path / "SEP001122334455.cnf.xml"
    x.write_bytes(b"<device>" + b"<!-- padding -->" * 20_000 + b"<fullConfig>true</fullConfig></device>")
    assert 256 * 1024 < x.stat().st_size < 400_000
    assert main(["inspect", str(x)]) == 2
    assert "262144-byte config limit" in capsys.readouterr().err
    assert main(["inspect", "--limit", "400000", str(x)]) == 0
    assert main(["inspect", "--limit", "1000", str(x)]) == 2


@pytest.mark.parametrize("head", [b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a"])
def test_a_capture_is_named_and_replay_suggested(tmp_path: Path, head: bytes,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from phoneemu.cli import main

    cap = tmp_path / "site.pcap"
    cap.write_bytes(head)
    with cap.open("r+b") as fh:  # 17 MiB (sparse), past inspect's limit: named before the size check
        fh.truncate(17 << 20)
    assert main(["inspect", str(cap)]) == 2
    err = capsys.readouterr().err
    kind = "pcapng" if head == b"\x0a\x0d\x0d\x0a" else "pcap"
    assert f"{cap}: a packet capture ({kind}), not a file phoneemu inspect decodes: phoneemu replay {cap} " \
        "--list" in err


def test_a_gzipped_capture_is_named_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``x.pcap.gz`` (replay and wireshark read it) is named as a capture, not 'not a signed header'."""
    import gzip

    from phoneemu.cli import main

    cap = tmp_path / "site.pcap.gz"
    cap.write_bytes(gzip.compress(b"\xd4\xc3\xb2\xa1" + bytes(20)))
    assert main(["inspect", str(cap)]) == 2
    assert f"{cap}: a packet capture (gzipped pcap)" in capsys.readouterr().err
    other = tmp_path / "notes.gz"
    other.write_bytes(gzip.compress(b"hello"))
    assert main(["inspect", str(other)]) == 2
    assert "a packet capture" not in capsys.readouterr().err


def test_a_trust_list_as_cert_gives_its_records_certificates(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """``--cert ITLFile.tlv``: the signer is looked for among the trust list's certificates (the file
    a user has from ``tftp get``), each named by its record; a damaged list or another signed file
    is one line naming it, exit 2."""
    sgn = str(VECTORS / "SEP001122334455.cnf.xml.sgn")
    assert main(["inspect", sgn, "--cert", str(VECTORS / "itl_lab.tlv")]) == 0
    out = capsys.readouterr().out
    assert "verified successfully" in out and "itl_lab.tlv #" in out
    assert main(["inspect", sgn, "--cert", str(VECTORS / "ctl_nonsecure_3746.tlv")]) == 1
    assert "(unknown-signer)" in capsys.readouterr().err
    cut = tmp_path / "cut.tlv"
    cut.write_bytes((VECTORS / "itl_lab.tlv").read_bytes()[:1500])
    assert main(["inspect", sgn, "--cert", str(cut)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cut.tlv" in err[0]
    assert main(["inspect", sgn, "--cert", sgn]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a certificate (PEM) nor a CTL/ITL" in err[0]
