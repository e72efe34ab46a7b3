"""``phoneemu tvs`` (red team R14): a request that cannot be sent is refused before any server is asked,
naming the option or the file at fault (spec §E.2: a TVS body is at most 65535 bytes; §E.4: the device name
is ASCII). No server is needed: nothing is sent (the address given is never connected to)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.crypto import certs
from phoneemu.crypto.keys import KeySpec, generate_key

#: nothing listens there, and nothing is asked: every case is refused first
SERVER = "127.0.0.1:9"


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert captured.out == "" and len(lines) == 1 and "Traceback" not in captured.err, captured
    return lines[0]


def _big_cert(tmp_path: Path, units: int) -> Path:
    """A self-signed certificate whose subject (and so issuer) holds ``units`` OU values of 48 bytes."""
    key = generate_key(KeySpec.parse("ec-p256"), unsafe_seed="r14-big")
    subject = ";".join(["CN=big", *(f"OU=unit{i:04d}{'x' * 40}" for i in range(units))])
    cert = certs.issue_certificate(certs.CertRequest(
        subject=subject, public_key=key.public_key(), serial=5,
        not_before=dt.datetime(2024, 1, 1, tzinfo=dt.UTC), not_after=dt.datetime(2044, 1, 1, tzinfo=dt.UTC)),
        issuer_key=key)
    path = tmp_path / "big.pem"
    path.write_bytes(certs.cert_pem(cert))
    return path


def test_a_certificate_too_large_to_ask_about_names_its_file(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Was ``tvs: elements: body of 72851 bytes exceeds 65535`` (QUERY) and ``element.value (tag 3): element
    value of ... bytes exceeds 65535`` (VERIFY): neither the file nor what it means for a phone."""
    big = _big_cert(tmp_path, 700)  # subject and issuer about 36 KB each: a QUERY body above 64 KiB
    assert main(["tvs", SERVER, str(big)]) == 2
    line = _one_line(capsys)
    assert f"{big}: the signer's subject and issuer (" in line and "do not fit in a TVS QUERY" in line, line
    assert "no phone can ask TVS about it" in line, line
    assert main(["tvs", SERVER, str(big), "--verify"]) == 2
    line = _one_line(capsys)
    assert f"{big}: the certificate (" in line and "does not fit in a TVS VERIFY" in line, line


@pytest.mark.parametrize(("name", "said"), [
    ("x" * 70_000, "--device-name NAME: a device name of 70000 characters makes the TVS QUERY longer"),
    ("CP-8861-SEP\u00e9", "--device-name NAME: device name 'CP-8861-SEP\u00e9' is not ASCII"),
    ("CP-8861\0SEP", "--device-name NAME: device name 'CP-8861\\x00SEP' is not ASCII without NUL"),
])
def test_a_device_name_that_cannot_be_sent_names_the_option(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, said: str) -> None:
    """Was ``tvs: device_name: device name ... is not ASCII`` or ``element.value (tag 1): element value of
    70001 bytes exceeds 65535``: no option named (and the 70,000 characters echoed)."""
    pem = _big_cert(tmp_path, 1)
    assert main(["tvs", SERVER, str(pem), "--device-name", name]) == 2
    line = _one_line(capsys)
    assert said in line and len(line) < 400, line
