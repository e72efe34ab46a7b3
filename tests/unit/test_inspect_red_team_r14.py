"""``phoneemu inspect`` (red team R14): what a file holds reaches the terminal escaped, never as it is.

Anyone may encrypt a config to a phone's certificate (it is public), and a config XML may hold any
character XML carries: the text output escapes control characters (C0 and C1) and the characters that turn
a line around (U+202E), keeping a decrypted config's lines and tabs; the JSON output holds them as they are
(JSON escapes them). A pipe that never ends is said naming it once."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.crypto import certs, keys
from phoneemu.formats import encrypted, signed
from tests.signer_helpers import file_signer, self_signed

#: a crafted plaintext: retitles the terminal, clears it, colours it; CRLF line ends and a tab
HOSTILE = b"<device>\r\n\t<a>\x1b]2;pwned\x07\x1b[2J\x1b[31mRED\xc2\x9b</a>\r\n</device>\n"


def test_a_decrypted_config_is_shown_escaped_line_by_line(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Was the plaintext as it was when it held a line break: its escape sequences reached the terminal of
    whoever inspected the file with the phone's key (exit 0: no signer given)."""
    phone_key, phone_cert = self_signed("CN=SEP0A0000000E14;O=phone", seed="r14-phone", serial=14)
    signer = self_signed("CN=anyone;O=attacker", seed="r14-anyone", serial=15)
    f = tmp_path / "SEP0A0000000E14.cnf.xml.enc.sgn"
    f.write_bytes(encrypted.build_pki(plaintext=HOSTILE, filename=f.name, signer=file_signer(signer),
                                      recipient_cert=phone_cert, timestamp=1, rand=os.urandom))
    key = tmp_path / "phone.key"
    key.write_bytes(keys.private_key_pem(phone_key))
    assert main(["inspect", str(f), "--key", str(key)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u009b" not in out and "\r" not in out, out
    shown = out.split("Plaintext:\n", 1)[1].splitlines()
    escaped = "\t<a>\\x1b]2;pwned\\x07\\x1b[2J\\x1b[31mRED\\u009b</a>"
    assert shown[:3] == ["<device>", escaped, "</device>"], shown
    assert main(["inspect", str(f), "--key", str(key), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["plaintext"] == HOSTILE.decode()  # as it is


def test_config_values_are_shown_escaped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Was each value as it was: U+202E in ``<deviceName>`` turned the rest of the line around, U+009B (CSI)
    in ``<loadInformation>`` went to the terminal."""
    x = tmp_path / "SEP0A0000000E14.cnf.xml"
    x.write_text("<device><deviceName>SEP\u202e0A0000000E14</deviceName><loadInformation>x\u009b31m"
                 "</loadInformation><TVS><members><member priority=\"0\"><port>2445</port><address>tvs\u202e"
                 "</address></member></members></TVS></device>", encoding="utf-8")
    assert main(["inspect", str(x)]) == 0
    out = capsys.readouterr().out
    assert "\u202e" not in out and "\u009b" not in out, out
    assert "  device_name: SEP\\u202e0A0000000E14" in out and "  load_information: x\\u009b31m" in out, out
    assert "  tvs_servers: [tvs\\u202e:2445 (priority 0)]" in out, out
    assert main(["inspect", str(x), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["device_name"] == "SEP\u202e0A0000000E14"


def test_notes_and_check_details_are_shown_escaped(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A note names the --key file and a check the --cert one and the signer's subject: escaped too."""
    x = tmp_path / "SEP0A0000000E14.cnf.xml"
    x.write_bytes(b"<device><fullConfig>true</fullConfig></device>")
    key_pem = tmp_path / "k\x1b[2J.pem"
    key_pem.write_bytes(keys.private_key_pem(self_signed("CN=k;O=k", seed="r14-k", serial=16)[0]))
    assert main(["inspect", str(x), "--key", str(key_pem)]) == 0
    out = capsys.readouterr().out
    assert "Note: key k\\x1b[2J.pem not used" in out and "\x1b" not in out, out
    signer = self_signed("CN=signer\x1b[31m;O=r14", seed="r14-signer", serial=17)
    sgn = tmp_path / "SEP0A0000000E14.cnf.xml.sgn"
    sgn.write_bytes(signed.build(body=b"<device/>", filename=sgn.name, signer=file_signer(signer),
                                 timestamp=1))
    cert = tmp_path / "signer.pem"
    cert.write_bytes(certs.cert_pem(signer[1]))
    assert main(["inspect", str(sgn), "--cert", str(cert)]) == 0
    out = capsys.readouterr().out
    assert "verified with CN=signer\\x1b[31m;O=r14" in out and "\x1b" not in out, out


def test_a_pipe_that_never_ends_is_named_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A FIFO whose writer stays silent is given up (``read_at_most``'s timeout, 10 s; 0.2 s here), said
    naming it once (was ``F: F: file: no end of file ...``)."""
    from phoneemu import files
    from phoneemu.commands import inspect as command

    def read_quickly(path: Path | str, limit: int, *, what: str = "file") -> bytes:
        return files.read_at_most(path, limit, what=what, timeout=0.2)

    monkeypatch.setattr(command, "read_at_most", read_quickly)
    fifo = tmp_path / "ITLFile.tlv"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)  # a writer that never writes nor closes (until the test ends)
    try:
        assert main(["inspect", str(fifo)]) == 2
    finally:
        os.close(writer)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].count(str(fifo)) == 1, err
    assert f"{fifo}: file: no end of file after 0.2 s" in err[0], err
