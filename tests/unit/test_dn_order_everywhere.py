"""One issuer-name comparison (spec §A.7, §B.4): ``certs.dn_key`` / ``certs.same_issuer``, used by the phone
(``phone.rules``), ``inspect`` (:meth:`TrustList.names_signer`, :meth:`TrustList.signer_index`) and the lab
TVS (:meth:`LabCluster.tvs_lookup`). CUCM writes a DN most-specific first with ``;``, certutils in the
certificate's stored order with ``,``; "phones evidently accept either" (§A.7).

Was: only the phone compared in any RDN order. The lab TVS answered a QUERY naming the issuer in
certutils' order "not found", and ``inspect`` called the signer of an ITL whose header was written so
``unknown-signer`` while the phone took the list."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from functools import cache
from pathlib import Path

import pytest
from cryptography import x509

from phoneemu.cli import main
from phoneemu.crypto import certs
from phoneemu.crypto.keys import KeySpec, generate_key
from phoneemu.formats import header
from phoneemu.formats import trustlist as tlist
from phoneemu.formats.header import FileSigner, SignerInfo
from phoneemu.formats.trustlist import Role, TrustRecord
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone import rules
from phoneemu.protocols import tvs
from tests.helpers import pristine_lab

NOW = 1_800_000_000
MAC = "001122334466"
CA_SUBJECT = "CN=Lab_Issuing_CA;OU=VTG;O=Lab;L=Krakow;C=PL"

base_lab, lab = pristine_lab("dn-order", now=NOW, phones={}, seed=11)


def _stored_order(name: x509.Name) -> str:
    """``name`` as certutils writes it (§A.7): RFC 4514 attributes in stored order, joined with ``,`` (the
    RDNs in the opposite order to ``certs.dn_text``'s CUCM text)."""
    return ",".join(a.rfc4514_string() for a in name)


@cache
def _issued(label: str, subject: str, ca_subject: str = CA_SUBJECT) -> FileSigner:
    """An RSA-1024 certificate of ``subject`` issued by a CA named ``ca_subject`` (issuer != subject)."""
    ca_key = generate_key(KeySpec.parse("rsa1024"), unsafe_seed=f"dn-order-ca {ca_subject}")
    key = generate_key(KeySpec.parse("rsa1024"), unsafe_seed=f"dn-order-{label} {ca_subject}")
    t = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    ca = certs.issue_certificate(
        certs.CertRequest(subject=ca_subject, public_key=ca_key.public_key(), serial=0xCA,
                          not_before=t - dt.timedelta(days=1), not_after=t + dt.timedelta(days=365)),
        issuer_key=ca_key)
    req = certs.CertRequest(subject=subject, public_key=key.public_key(), serial=0x5A57,
                            not_before=t - dt.timedelta(days=1), not_after=t + dt.timedelta(days=365))
    return FileSigner(key=key, cert=certs.issue_certificate(req, issuer_key=ca_key, issuer=ca))


def _certutils_signed(records: list[TrustRecord], signer: FileSigner) -> bytes:
    """An ITL of ``records`` signed by ``signer`` with its header's tags 4/5/6 written as certutils writes
    them (stored order, ``,``)."""
    data = tlist.build(kind="ITL", records=records, signer=signer, timestamp=NOW)
    h = header.parse_header(data, fmt="test").header
    cert = signer.cert
    info = SignerInfo(name=_stored_order(cert.subject), serial=certs.serial_bytes(cert.serial_number),
                      issuer=_stored_order(cert.issuer))
    assert certs.normalise_dn(info.issuer) != certs.normalise_dn(certs.dn_text(cert.issuer))
    return header.sign_header(h, data[h.header_length:], signer, signer_info=info)


def test_dn_key_ignores_rdn_order_separator_case_and_spacing() -> None:
    cucm = "CN=cucm-pub;OU=TAC;O=Cisco;L=Krakow;C=PL"
    assert certs.dn_key(cucm) == certs.dn_key("C=PL, L=Krakow, O=Cisco, OU=TAC, CN=CUCM-PUB")
    assert certs.same_issuer("C=PL,L=Krakow,O=Cisco,OU=TAC,CN=cucm-pub", cucm)
    assert not certs.same_issuer(cucm.replace("OU=TAC", "OU=TAX"), cucm)
    assert not certs.same_issuer(cucm + ";OU=TAC", cucm)  # a repeated RDN is another name
    assert certs.same_issuer(None, cucm)
    long = ";".join(f"OU=u{i}" for i in range(400))  # past the memo's bound: the same key, not remembered
    assert len(long) > 1024 and certs.dn_key(long) == certs.dn_key(",".join(reversed(long.split(";"))))
    assert rules._same_issuer is certs.same_issuer  # the phone's comparison is this one


@pytest.mark.parametrize("name", ["callmanager", "tvs", "itlrecovery"])
def test_the_lab_tvs_answers_a_query_naming_issuer_and_subject_in_certutils_order(lab: LabCluster,
                                                                                name: str) -> None:
    """A QUERY (§E.6) from a phone or client writing DNs as certutils does: TVS returns the certificate
    (was: STATUS 1, "not found", as for an unknown one)."""
    ident = {"callmanager": lab.callmanager, "tvs": lab.tvs_identity,
             "itlrecovery": lambda: lab.pki.get("itlrecovery")}[name]()
    cert = ident.cert
    serial = certs.serial_bytes(cert.serial_number)
    issuer, subject = _stored_order(cert.issuer), _stored_order(cert.subject)
    assert certs.normalise_dn(issuer) != certs.normalise_dn(certs.dn_text(cert.issuer))  # the order differs
    want = lab.tvs_lookup(ident.der)
    assert want is not None
    assert lab.tvs_lookup((issuer, serial, subject)) == want
    assert lab.tvs_lookup((issuer, serial, "")) == want
    assert lab.tvs_lookup((issuer.upper().replace(",", ", "), serial, subject)) == want
    request = tvs.parse_request(tvs.query_request(9, f"SEP{MAC}", subject, issuer, serial))
    reply = tvs.TvsResponse.from_message(tvs.answer(request, lab.tvs_lookup))
    assert reply.valid and reply.certificate == ident.der and reply.roles == want.roles
    # still told apart: another issuer, another subject, another serial
    assert lab.tvs_lookup((issuer.replace("CN=", "CN=x", 1), serial, subject)) is None
    assert lab.tvs_lookup((issuer + ",OU=extra", serial, subject)) is None
    assert lab.tvs_lookup((issuer, serial, subject + ",OU=extra")) is None
    assert lab.tvs_lookup((issuer, serial + b"\x01", subject)) is None


def test_inspect_names_the_signer_of_an_itl_whose_header_is_in_certutils_order(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The header names the ITLRecovery record's issuer in stored order: ``inspect`` verifies the list with
    that record, as the phone takes it (was: ``unknown-signer``, exit 1, "no record names the signer")."""
    other = _issued("tftp", "CN=lab-tftp;OU=VTG;O=Lab;L=Krakow;C=PL")
    recovery = _issued("recovery", "CN=ITLRECOVERY_lab;OU=VTG;O=Lab;L=Krakow;C=PL")
    records = [TrustRecord.from_certificate(other.cert, Role.TFTP),
               TrustRecord.from_certificate(recovery.cert, Role.SAST)]
    itl = tmp_path / "ITLFile.tlv"
    itl.write_bytes(_certutils_signed(records, recovery))
    tl = tlist.parse(itl.read_bytes())
    assert [tl.names_signer(i) for i in range(len(tl))] == [False, True]
    assert main(["inspect", str(itl), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    signature = next(c for c in report["checks"] if c["check"] == "signature")
    assert signature == {"check": "signature", "ok": True, "detail": "verified with its own SAST record #2"}


def test_the_signer_record_is_the_one_naming_the_issuer_in_either_order() -> None:
    """Two SAST records with the signer's serial and key, one with another issuer: the one naming the
    header's issuer (certutils order) is the signer, as for the phone (was: neither matched by issuer, so
    the first by serial was named, the other issuer's)."""
    signer = _issued("twin", "CN=ITLRECOVERY_twin;OU=VTG;O=Lab;L=Krakow;C=PL")
    right = TrustRecord.from_certificate(signer.cert, Role.SAST)
    wrong = dataclasses.replace(right, issuer="CN=Another_CA;OU=VTG;O=Lab;L=Krakow;C=PL")
    tl = tlist.parse(_certutils_signed([wrong, right], signer))
    assert tl.signer_index() == 1 and tl.signer_record() == right
    assert [tl.names_signer(i) for i in range(len(tl))] == [False, True]


# --------------------------------------------------------------------------- one manual-key message
# (spec §C.5; ``encrypted.hex_key_problem``, the phone's own manual key entry): ``lab phone add`` /
# ``lab encryption --symmetric-key`` say what is wrong with a mistyped key, as ``boot --key`` does (was:
# "symmetric key must be 32 or 64 hex digits (128/256 bits, spec §C.5)" whatever the mistake).

@pytest.mark.parametrize(("typed", "said"), [
    ("0x" + "ab" * 15, "symmetric key: character 'x' at position 2 is not a hex digit (0-9, a-f) "
                       "(spec §C.5)"),
    ("ab" * 15 + "a", "symmetric key: 31 hex digits, an odd number (two make a byte): a manual key has 32 "
                      "(a 128-bit key) or 64 (a 256-bit key) (spec §C.5)"),
    ("ab" * 17, "symmetric key: 34 hex digits: a manual key has 32 (a 128-bit key) or 64"),
], ids=["not-hex", "odd", "34-digits"])
def test_a_mistyped_symmetric_key_for_the_lab_says_what_is_wrong(lab: LabCluster, typed: str, said: str,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "phone", "add", str(lab.root), "--mac", MAC, "--encrypt", "symmetric",
                 "--symmetric-key", typed]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--symmetric-key" in err and said in err, err
    assert MAC not in LabCluster.open(lab.root).state.phones
