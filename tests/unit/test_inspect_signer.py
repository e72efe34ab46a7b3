"""``inspect`` says "verified" only for a signer a phone finds (spec §B.4, §G.3 step 1: issuer + serial).

Before: a CTL/ITL whose header names its signer by an issuer that is not the one in the list's own SAST
record with that serial was "verified successfully": ``TrustList.signer_index`` falls back to the serial
(kept: ``lab show-itl`` and others name the record that signed), while a phone finds no SAST record naming
the signer — it refuses the list as an update (``G.3.1-no-signer-record``) and, holding it, the next list
that signer signs (``G.3.5-reject-unknown-signer``). Now the ``signature`` check fails (exit 1) and says
both: the signature verifies with the record found by serial, and what a phone does, by its rule ids.

A ``.sgn`` checked with ``--cert ITLFile.tlv`` is verified by whichever record's certificate verifies it,
whatever its role: a success now says so (whether a phone takes that signer for that file is predict's).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.crypto import certs
from phoneemu.formats import trustlist
from phoneemu.formats.trustlist import Role, TrustRecord
from phoneemu.inspection import inspect_bytes
from phoneemu.phone import rules
from tests.unit.test_rules import CFG, NOW, P8861, Ident, ident, install, itl_a, new_store, sgn, tl

OTHER_ISSUER = "CN=Another CA;O=Elsewhere"


def _signer() -> Ident:
    return ident("recovery-a")  # the SAST of itl_a: a phone holding itl_a trusts its key


def _itl(sast: TrustRecord, *, ts: int = NOW, extra: tuple[TrustRecord, ...] = ()) -> bytes:
    """An ITL signed by :func:`_signer` whose SAST record for it is ``sast`` (cluster A's other records)."""
    recs = [*extra, sast, ident("cm-a").record(Role.CCM_TFTP), ident("tvs-a").record(Role.TVS)]
    return tl("ITL", _signer(), recs, ts=ts)


def _serial_only() -> TrustRecord:
    """The signer's SAST record, its certificate and serial, but tag 5 naming another issuer."""
    return replace(_signer().record(Role.SAST), issuer=OTHER_ISSUER)


def _signature(report: dict[str, object]) -> dict[str, object]:
    checks = report["checks"]
    assert isinstance(checks, list)
    return next(c for c in checks if c["check"] == "signature")


def _phone_rules(data: bytes, next_data: bytes) -> tuple[str, str]:
    """What a phone does with ``data``: as an update to itl_a (signed by a key it trusts), and holding it
    (taken on first contact) with ``next_data``, the next list of the same signer."""
    trusting = new_store()
    install(trusting, "ITL", itl_a())
    update = rules.decide_trust_list(trusting, data, kind="ITL", profile=P8861, now=NOW)
    holding = new_store()
    assert install(holding, "ITL", data).rule == "G.2-first-itl-tofu"
    later = rules.decide_trust_list(holding, next_data, kind="ITL", profile=P8861, now=NOW)
    assert not update.accepted and not later.accepted, (update, later)
    return update.rule, later.rule


# --------------------------------------------------------------------------- trust list, own signer
def test_inspect_signer_found_by_serial_only_is_not_verified_and_names_the_phone_rules() -> None:
    data = _itl(_serial_only())
    update_rule, later_rule = _phone_rules(data, _itl(_serial_only(), ts=NOW + 60))
    assert (update_rule, later_rule) == ("G.3.1-no-signer-record", "G.3.5-reject-unknown-signer")
    check = _signature(inspect_bytes(data, name="ITLFile.tlv"))
    assert check["ok"] is False and check["reason"] == "unknown-signer", check
    detail = str(check["detail"])
    assert detail.startswith("the signature verifies with SAST record #1, found by its serial only: "), detail
    assert repr(OTHER_ISSUER) in detail and repr(certs.dn_text(_signer().cert.issuer)) in detail
    assert update_rule in detail and later_rule in detail


def test_inspect_signer_serial_only_fallback_kept_for_the_other_callers() -> None:
    """``signer_index`` / ``verify_self`` still find the record by serial (``lab show-itl`` names it as
    the one used to sign); :meth:`TrustList.names_signer` is the phone's reading."""
    parsed = trustlist.parse(_itl(_serial_only()))
    assert parsed.signer_index() == 0 and parsed.verify_self() == _serial_only()
    assert not parsed.names_signer(0) and parsed.verifies_with_record(0)
    report = inspect_bytes(parsed.raw, name="ITLFile.tlv")
    assert report["records"][0]["used_to_sign"] is True  # its key did sign the file


def test_inspect_signer_cli_text_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "ITLFile.tlv"
    p.write_bytes(_itl(_serial_only()))
    assert main(["inspect", str(p)]) == 1
    out, err = capsys.readouterr()
    assert "verified successfully" not in out
    assert "signature: FAILED (unknown-signer): the signature verifies with SAST record #1" in out
    assert err.startswith(f"phoneemu inspect: {p}: signature check failed (unknown-signer): "), err
    assert "G.3.1-no-signer-record" in err
    assert main(["inspect", "--json", str(p)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["checks"][0]["ok"] is False and "G.3.5-reject-unknown-signer" in doc["checks"][0]["detail"]


@pytest.mark.parametrize("issuer", ["formatting", "absent"])
def test_inspect_signer_issuer_a_phone_matches_is_still_verified(issuer: str) -> None:
    """Issuer text that differs only in formatting (',' for ';', case), or a record without ISSUER_NAME:
    a phone takes the record as the signer, and inspect verifies."""
    own = certs.dn_text(_signer().cert.issuer).replace(";", ",").upper() if issuer == "formatting" else None
    data = _itl(replace(_signer().record(Role.SAST), issuer=own))
    trusting = new_store()
    install(trusting, "ITL", itl_a())
    assert install(trusting, "ITL", data).rule == "G.3.3-signed-by-itl-sast"
    check = _signature(inspect_bytes(data, name="ITLFile.tlv"))
    assert check == {"check": "signature", "ok": True, "detail": "verified with its own SAST record #1"}


def test_inspect_signer_named_by_a_record_with_another_key_is_a_bad_signature() -> None:
    """A SAST record without ISSUER_NAME, the signer's serial but another key, comes first; the record
    found by serial only (another issuer) holds the signing key. A phone takes the first as the signer,
    so holding this list it refuses the next one: G.3-bad-signature (inspect said "verified")."""
    serial = _signer().record(Role.SAST).serial
    imposter = replace(ident("cm-a").record(Role.SAST), serial=serial, issuer=None)
    data = _itl(_serial_only(), extra=(imposter,))
    holding = new_store()
    install(holding, "ITL", data)
    later = rules.decide_trust_list(holding, _itl(_serial_only(), ts=NOW + 60, extra=(imposter,)),
                                    kind="ITL", profile=P8861, now=NOW)
    assert later.rule == "G.3-bad-signature" and not later.accepted
    check = _signature(inspect_bytes(data, name="ITLFile.tlv"))
    assert check["ok"] is False and check["reason"] == "bad-signature", check
    assert "to a phone the signer is SAST record #1, whose key does not verify it" in str(check["detail"])
    assert later.rule in str(check["detail"])


# --------------------------------------------------------------------------- .sgn with --cert ITLFile.tlv
def test_inspect_signer_of_a_sgn_by_a_trust_list_record_says_its_role_was_not_checked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A config signed by the ITL's TVS certificate: the phone refuses it (a TVS record signs no config,
    §G.4); inspect's success says the signature only was checked, whatever the role."""
    itl = tmp_path / "ITLFile.tlv"
    itl.write_bytes(itl_a())
    data = sgn(ident("tvs-a"))
    store = new_store()
    install(store, "ITL", itl_a())
    assert not rules.decide_config(store, CFG + ".sgn", data, profile=P8861, now=NOW).accepted
    f = tmp_path / f"{CFG}.sgn"
    f.write_bytes(data)
    assert main(["inspect", str(f), "--cert", str(itl)]) == 0
    out = capsys.readouterr().out.splitlines()[-1]
    assert f"({itl} #3 TVS); the signature only, whatever that record's role: whether a phone accepts this " \
           "signer for this file is predict's question" in out, out
    pem = tmp_path / "tvs.pem"
    pem.write_bytes(certs.cert_pem(ident("tvs-a").cert))
    assert main(["inspect", str(f), "--cert", str(pem)]) == 0
    assert "whatever that record's role" not in capsys.readouterr().out  # a certificate given as such
