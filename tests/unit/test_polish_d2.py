"""Review polish (task D2), each with what a user saw before:

* ``fleet boot --json``: a phone never booted (rule ``not-booted``) had ``latency_ms: 0`` and ``end_s: 0`` in
  its record, a boot of 0 ms ending at 0 s: both null now, and the record still crosses a shard's pipe;
* ``run``'s text of a failed ``holds_for`` with more than 10 groups of phones ended "... that failed
  otherwise" under "the phones that did not match": it says "did not match otherwise" (or "matched
  otherwise" when the phones shown are those that matched);
* ``inspect --cert key.der`` (a DER private key) said "not a certificate" alone: it points to ``--key``;
* a damaged DER certificate was said in cryptography's own words (``error parsing asn1 value: ParseError {
  kind: UnexpectedTag { ... } }``): a phrase naming the field, as RFC 5280 names it;
* every placeholder word of the ways out's lab commands has a meaning :func:`placeholder_lines` can say.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from phoneemu.cli import main
from phoneemu.commands import fleet as fleet_cmd
from phoneemu.crypto.certs import load_cert_der
from phoneemu.errors import DecodeError
from phoneemu.fleet.metrics import NOT_BOOTED, BootRecord, FleetMetrics
from phoneemu.fleet.shard import FleetResult, ShardResult
from phoneemu.phone.ways_out import PLACEHOLDERS, WAYS_BY_KIND
from phoneemu.scenario.model import HoldsFor
from phoneemu.scenario.reports import MAX_GROUPS_SHOWN, render_text
from phoneemu.scenario.results import CheckResult, ExpectationResult, RunSummary, ScenarioResult
from tests.signer_helpers import self_signed

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
SIGNED = str(VECTORS / "SEP001122334455.cnf.xml.sgn")


# --------------------------------------------------------------------------- fleet boot --json
def test_a_phone_never_booted_has_no_latency_in_the_json(tmp_path: Path) -> None:
    never = BootRecord(mac="0A0000000D01", outcome="error", rule=NOT_BOOTED, latency_s=0.0, end_s=0.0,
                       reason="its lab MIC does not load")
    booted = BootRecord(mac="0A0000000D02", outcome="ok", rule="G.4-signed-by-itl-tftp", latency_s=0.025,
                        end_s=1.5)
    metrics = FleetMetrics()
    for rec in (never, booted):
        metrics.add(rec)
        assert BootRecord.from_dict(rec.as_dict()) == rec  # a shard's pipe
    result = FleetResult(metrics=metrics, shards=[ShardResult(shard=0, metrics=metrics)],
                         records=[never, booted])
    report = tmp_path / "fleet.json"
    fleet_cmd._write_json(report, result, "127.0.0.1", None, profile="cp-8861")
    doc = json.loads(report.read_text())
    phones = {p["mac"]: p for p in doc["phones"]}
    assert (phones[never.mac]["latency_ms"], phones[never.mac]["end_s"]) == (None, None)
    assert (phones[booted.mac]["latency_ms"], phones[booted.mac]["end_s"]) == (25.0, 1.5)
    (failure,) = doc["summary"]["failures"]
    assert failure["mac"] == never.mac and failure["latency_ms"] is None
    assert doc["summary"]["latency_ms"]["max"] == 25.0


# --------------------------------------------------------------------------- run's text report
def _bound_failure(phones: int, *, at_least: int = 0, at_most: int | None = None) -> str:
    """The text of a ``holds_for`` expectation whose ``phones`` each count their own retransmissions
    (a group each): none held (``at_least``) or each held (``at_most``)."""
    held = at_most is not None
    e = ExpectationResult(where="f.yaml:7", label="few retransmissions", xfail=None,
                          holds_for=HoldsFor(at_least=at_least, at_most=at_most, text="the bound"))
    for i in range(phones):
        e.checks.append(CheckResult(phone=f"0A{i:010X}", check="retransmissions",
                                    expected=i + 1 if held else 0, actual=i + 1, held=held))
    return render_text(RunSummary(scenarios=[ScenarioResult(name="b", path="f.yaml", reproduces="",
                                                            expectations=[e], phones=phones)]))


def test_a_bounds_groups_not_shown_are_said_as_its_phones_are() -> None:
    rest = 2
    text = _bound_failure(MAX_GROUPS_SHOWN + rest, at_least=MAX_GROUPS_SHOWN + rest)
    assert f"the {MAX_GROUPS_SHOWN + rest} phones that did not match:" in text, text
    assert f"... and {rest} more groups of {rest} phones that did not match otherwise (the JSON" in text, text
    assert "failed otherwise" not in text
    text = _bound_failure(MAX_GROUPS_SHOWN + rest, at_most=0)  # "none": the phones that matched are shown
    assert f"the {MAX_GROUPS_SHOWN + rest} phones that matched:" in text, text
    assert f"... and {rest} more groups of {rest} phones that matched otherwise (the JSON" in text, text


# --------------------------------------------------------------------------- inspect
def _inspect_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["inspect", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, (out, err)
    return err


@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.PKCS8,
                                 serialization.PrivateFormat.TraditionalOpenSSL], ids=["pkcs8", "pkcs1"])
def test_a_private_key_given_as_cert_is_pointed_to_key(tmp_path: Path, fmt: serialization.PrivateFormat,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    key, _cert = self_signed("CN=d2-key;O=phoneemu", seed="polish-d2", serial=0xD2)
    der = tmp_path / "key.der"
    der.write_bytes(key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption()))
    err = _inspect_error([SIGNED, "--cert", str(der)], capsys)
    assert "not a certificate: --key takes a private key (PEM or DER) to decrypt an .enc.sgn" in err, err
    pem = tmp_path / "key.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()))
    err = _inspect_error([SIGNED, "--cert", str(pem)], capsys)
    assert err == f"phoneemu inspect: --cert {pem}: no certificate in PEM (nor a CTL/ITL): it holds a " \
                  "private key: give it as --key to decrypt an .enc.sgn\n", err


# --------------------------------------------------------------------------- a damaged DER certificate
@pytest.mark.parametrize(("der", "said"), [
    (b"\x30\x03\x02\x01\x05", "unexpected ASN.1 tag (INTEGER) at tbsCertificate"),
    (b"\x30\x00", "truncated (the data ends inside an element) at tbsCertificate"),
    (b"", "truncated (the data ends inside an element)"),
], ids=["integer-for-tbs", "empty-sequence", "empty"])
def test_a_damaged_der_certificate_is_said_in_words(der: bytes, said: str) -> None:
    with pytest.raises(DecodeError) as caught:
        load_cert_der(der)
    assert caught.value.message == f"not a DER X.509 certificate: {said}"


def test_each_damaged_byte_of_a_certificate_is_said_without_cryptographys_text(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every byte of a real certificate's first 200 changed to a tag (bounded): what does not load is said
    in words — never ``ParseError {``, a Rust struct — and ``inspect --cert`` says it so too."""
    _key, cert = self_signed("CN=d2-cert;O=phoneemu", seed="polish-d2", serial=0xD3)
    good = cert.public_bytes(serialization.Encoding.DER)
    said: set[str] = set()
    for i in range(4, 200):
        data = good[:i] + b"\x05" + good[i + 1:]  # a NULL where something else was
        try:
            load_cert_der(data)
        except DecodeError as exc:
            said.add(exc.message)
    assert said and not [s for s in said if re.search(r"ParseError|\{|asn1 value", s)], said
    assert any(re.fullmatch(r"not a DER X\.509 certificate: unexpected ASN\.1 tag \(NULL\) at "
                            r"tbsCertificate(\.\w+)+", s) for s in said), said
    damaged = tmp_path / "cert.der"
    assert good[8:11] == bytes.fromhex("a00302")  # version [0] EXPLICIT, its INTEGER
    damaged.write_bytes(good[:10] + b"\x05" + good[11:])  # a NULL where the version's INTEGER is
    err = _inspect_error([SIGNED, "--cert", str(damaged)], capsys)
    assert err == f"phoneemu inspect: --cert {damaged}: certificate: not a DER X.509 certificate: " \
                  "unexpected ASN.1 tag (NULL) at tbsCertificate.version\n", err


# --------------------------------------------------------------------------- the placeholders
def test_every_placeholder_of_the_catalogue_has_a_meaning() -> None:
    words = {word for table in WAYS_BY_KIND.values() for ways in table.values() for way in ways
             for command in (way.lab, way.fleet_lab) for word in command.split() if word.isupper()}
    assert words - {"&&"} <= set(PLACEHOLDERS), words - set(PLACEHOLDERS)
    assert {"DIR", "OLD", "NEW", "FLEET"} <= words
