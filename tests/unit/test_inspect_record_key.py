"""``inspect`` (and ``lab show``, ``phone show``: the same :func:`phoneemu.inspection.inspect_bytes`) verify a
trust list as the phone does (spec §G.3 step 2): a record carrying a certificate by the certificate's key,
its PUBLIC_KEY (tag 7) only when it has none (:meth:`TrustRecord.signature_key`, the one rule).

Before: ``TrustList.verify_self`` took tag 7 first, so ``inspect`` called "verified" a list signed by the
tag-7 key of a record pairing a valid certificate with another (expired) key — a list the phone refuses
(``G.3-bad-signature``) — and "FAILED" the one signed by the certificate's key, which the phone takes.
A record whose tag 7 is not its certificate's key is now named in a note. The mismatched record is built
as in ``tests/unit/test_redteam_phone_record_key.py``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.crypto import keys
from phoneemu.errors import DecodeError, VerificationError, VerifyReason
from phoneemu.formats import trustlist
from phoneemu.formats.trustlist import Role, TrustRecord
from phoneemu.inspection import inspect_bytes
from phoneemu.phone import rules
from tests.unit.test_acceptance_audit import _signed_naming
from tests.unit.test_rules import NOW, P8861, Ident, ident, install, new_store, tl

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def _records(recs: Sequence[TrustRecord]) -> bytes:
    return b"".join(trustlist.build_record(r) for r in recs)


def _sast() -> Ident:
    return ident("ik-sast")


def _stale() -> Ident:
    """A certificate that expired ten days before NOW: the key a mismatched record's tag 7 carries."""
    return ident("ik-sast-stale", before=3650, after=-10)


def _mixed() -> TrustRecord:
    """The SAST record of :func:`_sast` (its certificate, serial, issuer) with the tag 7 of :func:`_stale`."""
    return replace(_sast().record(Role.SAST),
                   public_key=keys.encode_record_public_key(_stale().key.public_key()))


def _itl_signed_by(by: Ident) -> bytes:
    """An ITL whose own SAST record is the mixed one, its header naming that record, signed by ``by``."""
    body = _records([_mixed(), ident("ik-cm").record(Role.CCM_TFTP)])
    return _signed_naming(_sast(), by, body, filename="ITLFile.tlv")


# --------------------------------------------------------------------------- the rule, in formats
def test_signature_key_is_the_certificates_key_and_tag7_only_without_a_certificate() -> None:
    cert_key = keys.encode_record_public_key(_sast().key.public_key())
    rec = _mixed()
    assert keys.encode_record_public_key(rec.public_key_obj()) != cert_key  # tag 7 says the stale key
    assert keys.encode_record_public_key(rec.signature_key()) == cert_key
    bare = replace(rec, certificate=None)
    assert keys.encode_record_public_key(bare.signature_key()) == \
        keys.encode_record_public_key(_stale().key.public_key())


def test_key_disagreement_names_a_tag7_that_is_not_the_certificates_key() -> None:
    assert _sast().record(Role.SAST).key_disagreement() is None  # CUCM's field set: the same key twice
    assert replace(_mixed(), certificate=None).key_disagreement() is None  # tag 7 only: nothing to differ
    assert replace(_mixed(), public_key=None).key_disagreement() is None  # certificate only
    assert "another key" in (_mixed().key_disagreement() or "")
    garbled = replace(_mixed(), public_key=b"\x04\x01\x02")
    assert "does not decode" in (garbled.key_disagreement() or "")
    broken_cert = replace(_mixed(), certificate=b"\x30\x03\x02\x01\x01")
    assert broken_cert.key_disagreement() is None  # no certificate key to differ from: signature_key says
    with pytest.raises(DecodeError):
        broken_cert.signature_key()


def test_verify_self_uses_the_certificates_key() -> None:
    trustlist.parse(_itl_signed_by(_sast())).verify_self()
    with pytest.raises(VerificationError) as caught:
        trustlist.parse(_itl_signed_by(_stale())).verify_self()
    assert caught.value.reason is VerifyReason.BAD_SIGNATURE


# --------------------------------------------------------------------------- inspect agrees with the phone
@pytest.mark.parametrize("signer", ["certificate key", "tag 7 key"])
def test_inspect_calls_verified_exactly_what_the_phone_accepts(signer: str) -> None:
    """The same bytes: the phone (the mixed record installed) and ``inspect`` (the file's own record)
    agree."""
    by = _sast() if signer == "certificate key" else _stale()
    data = _itl_signed_by(by)
    store = new_store()
    install(store, "ITL", tl("ITL", _sast(), [_mixed(), ident("ik-cm").record(Role.CCM_TFTP)]))
    phone = rules.decide_trust_list(store, data, kind="ITL", profile=P8861, now=NOW)
    report = inspect_bytes(data, name="ITLFile.tlv")
    signature = next(c for c in report["checks"] if c["check"] == "signature")
    assert signature["ok"] is phone.accepted is (signer == "certificate key"), (phone, signature)
    if not signature["ok"]:
        assert signature["reason"] == "bad-signature" and phone.rule == "G.3-bad-signature"


def test_inspect_cli_refuses_a_list_signed_by_the_tag7_key(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "ITLFile.tlv"
    p.write_bytes(_itl_signed_by(_stale()))
    assert main(["inspect", str(p)]) == 1
    captured = capsys.readouterr()
    assert "verified successfully" not in captured.out
    assert "bad-signature" in captured.err


def test_inspect_cli_verifies_by_the_certificate_and_names_the_mismatched_record(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "ITLFile.tlv"
    p.write_bytes(_itl_signed_by(_sast()))
    assert main(["inspect", str(p)]) == 0
    out = capsys.readouterr().out
    assert "The ITL file was verified successfully" in out
    notes = [line for line in out.splitlines() if "PUBLIC_KEY (tag 7)" in line]
    assert len(notes) == 1, out
    assert notes[0].startswith("Note: ITL record #1 (System Administrator Security Token): ")
    assert "certificate's key" in notes[0]
    assert main(["inspect", "--json", str(p)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [n for n in doc["notes"] if "record #1" in n] and doc["checks"][0]["ok"]
    first = doc["records"][0]
    assert (first["key_algorithm"], first["key_size"]) == ("RSA", 1024)


def test_no_note_for_records_whose_key_and_certificate_agree(capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("itl_lab.tlv", "ctl_nonsecure_3746.tlv"):
        assert main(["inspect", str(VECTORS / name)]) == 0
        assert "PUBLIC_KEY (tag 7)" not in capsys.readouterr().out
