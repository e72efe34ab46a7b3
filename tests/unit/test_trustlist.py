"""CTL/ITL (spec §B): records, roles, keys, signer matching, size limit, vectors."""

from __future__ import annotations

import dataclasses
from types import ModuleType

import pytest

from phoneemu.crypto import certs, keys
from phoneemu.errors import DecodeError, SizeLimitError, VerificationError, VerifyReason
from phoneemu.formats import trustlist as tlist
from phoneemu.formats.trustlist import Role, TrustRecord

TLV_FILES = ["itl_lab.tlv", "ctl_sha512.tlv", "itl_rollback.tlv", "itl_unknown_tags.tlv",
             "itl_worked_example.tlv", "ctl_tokenless_4947.tlv", "ctl_nonsecure_3746.tlv"]


@pytest.mark.parametrize("name", TLV_FILES)
def test_vectors_parse_verify_and_round_trip(vectors: dict[str, bytes], name: str) -> None:
    tl = tlist.parse(vectors[name], lazy=False)
    signer = tl.verify_self()
    assert signer.role == Role.SAST
    assert tlist.serialise(tl) == vectors[name]
    assert tl.kind == ("CTL" if name.startswith("ctl") else "ITL")


def test_vectors_regenerate_identically(vectors: dict[str, bytes], make_vectors: ModuleType) -> None:
    assert make_vectors.build_all() == {k: v for k, v in vectors.items() if k in make_vectors.VECTORS}
    assert set(make_vectors.VECTORS) <= set(vectors)


def test_cucm_lengths_of_spec_b6(vectors: dict[str, bytes]) -> None:
    tokenless = tlist.parse(vectors["ctl_tokenless_4947.tlv"])
    assert len(tokenless.raw) == 4947 and tokenless.body_offset == 336
    assert [e - s for s, e in tokenless.spans] == [1156, 1156, 1138, 1161]
    assert [r.role for r in tokenless.records] == [Role.SAST, Role.CCM_TFTP, Role.CAPF, Role.CCM_TFTP]
    r = tokenless.records[0]
    assert r.public_key is not None and len(r.public_key) == 140
    assert r.signature is not None and len(r.signature) == 128 and r.dns_name == "cucm-1051-a-pub"
    nonsecure = tlist.parse(vectors["ctl_nonsecure_3746.tlv"])
    assert [e - s for s, e in nonsecure.spans] == [1186, 1186, 33, 1004, 33]
    empty = nonsecure.records[2]
    assert empty.is_empty and empty.dns_name == "10.48.47.153"
    assert empty.ip_address == bytes([10, 48, 47, 153])
    etoken = nonsecure.records[0]
    assert etoken.signature is None and etoken.dns_name == "" and etoken.serial is not None
    assert len(etoken.serial) == 10 and etoken.serial[0] & 0x80
    assert nonsecure.records[3].signature is None
    assert nonsecure.signer_index() == 0


def test_roles_keys_and_lazy_certificate(vectors: dict[str, bytes]) -> None:
    tl = tlist.parse(vectors["itl_unknown_tags.tlv"])
    roles = [r.role for r in tl.records]
    assert roles == [0, 2, 21, 4, 3, 9, 5, 7, 21]
    assert [tlist.role_text(c) for c in (0, 2, 9)] == ["System Administrator Security Token", "CCM+TFTP",
                                                     "Unknown (9)"]
    ec_rec = tl.records[4]
    assert ec_rec.public_key is not None and ec_rec.public_key[0] == 4 and len(ec_rec.public_key) == 65
    assert keys.key_description(ec_rec.public_key_obj()) == "EC secp256r1"
    assert keys.key_description(tl.records[0].public_key_obj()) == "RSA 2048"
    assert ec_rec.sha1_fingerprint() == certs.fingerprint(ec_rec.x509(), "sha1")
    assert tl.records[2].unknown == (tlist.RecordUnknown(tag=42, value=b"x"),)
    last = tl.records[8]
    assert last.cert_hash == b"\xaa" * 20 and last.hash_alg == 1


def test_rollback_itl(vectors: dict[str, bytes]) -> None:
    tl = tlist.parse(vectors["itl_rollback.tlv"])
    assert tl.is_empty
    assert not tlist.parse(vectors["itl_lab.tlv"]).is_empty
    by_role = {r.role: r for r in tl.records}
    assert by_role[Role.TVS].is_empty and by_role[Role.CCM_TFTP].is_empty and by_role[Role.TFTP].is_empty
    assert not by_role[Role.CAPF].is_empty and not by_role[Role.SAST].is_empty
    tl.verify_self()


def test_size_limit_before_parsing(vectors: dict[str, bytes]) -> None:
    junk = b"\xff" * 65537
    with pytest.raises(SizeLimitError) as ei:
        tlist.parse(junk)
    assert ei.value.fmt == "trustlist"
    with pytest.raises(SizeLimitError):
        tlist.parse(vectors["itl_lab.tlv"], limit=1000)
    tlist.parse(vectors["itl_lab.tlv"], limit=len(vectors["itl_lab.tlv"]))


def test_39_certificate_itl_stays_under_64k(pki: ModuleType) -> None:
    lab = pki.lab()
    recs = [TrustRecord.from_certificate(lab["itlrecovery"].cert, Role.SAST)]
    cert = lab["itlrecovery"].cert
    recs += [TrustRecord.from_certificate(cert, Role.TVS, dns_name=f"node{i}") for i in range(38)]
    data = tlist.build(kind="ITL", records=recs, signer=lab["itlrecovery"].signer, timestamp=1)
    assert len(data) < 65536
    assert len(tlist.parse(data)) == 39
    recs += [TrustRecord.from_certificate(cert, Role.TVS, dns_name=f"x{i}") for i in range(5)]
    big = tlist.build(kind="ITL", records=recs, signer=lab["itlrecovery"].signer, timestamp=1)
    with pytest.raises(SizeLimitError):
        tlist.parse(big)


def test_signer_matching_reasons(pki: ModuleType) -> None:
    lab = pki.lab()
    cm = lab["callmanager"]
    sast = TrustRecord.from_certificate(lab["itlrecovery"].cert, Role.SAST)
    as_ccm = TrustRecord.from_certificate(cm.cert, Role.CCM_TFTP)
    # Signed by CallManager but CallManager is only a CCM+TFTP record: wrong role.
    with pytest.raises(VerificationError) as ei:
        data = tlist.build(kind="ITL", records=[sast, as_ccm], signer=cm.signer, timestamp=1)
        tlist.parse(data).verify_self()
    assert ei.value.reason is VerifyReason.WRONG_ROLE
    # Signed by a key that is in no record: unknown signer.
    with pytest.raises(VerificationError) as ei:
        tlist.parse(tlist.build(kind="ITL", records=[sast], signer=cm.signer, timestamp=1)).verify_self()
    assert ei.value.reason is VerifyReason.UNKNOWN_SIGNER
    # A SAST record with the right serial but the wrong key (its PUBLIC_KEY, no certificate: a record
    # with a certificate is verified by the certificate's key, spec §G.3 step 2): bad signature.
    forged = dataclasses.replace(TrustRecord.from_certificate(cm.cert, Role.SAST), certificate=None,
                                 public_key=TrustRecord.from_certificate(lab["tvs"].cert, 21).public_key)
    with pytest.raises(VerificationError) as ei:
        tlist.parse(tlist.build(kind="ITL", records=[forged], signer=cm.signer, timestamp=1)).verify_self()
    assert ei.value.reason is VerifyReason.BAD_SIGNATURE
    # Issuer text differing only in format (',' vs ';', case) still matches.
    relabel = dataclasses.replace(TrustRecord.from_certificate(cm.cert, Role.SAST),
                                  issuer=certs.dn_text(cm.cert.issuer).replace(";", ",").upper())
    tlist.parse(tlist.build(kind="CTL", records=[relabel], signer=cm.signer, timestamp=1)).verify_self()
    # verify_with an explicit key / certificate
    tl = tlist.parse(tlist.build(kind="ITL", records=[sast], signer=lab["itlrecovery"].signer, timestamp=1))
    tl.verify_with(lab["itlrecovery"].cert)
    with pytest.raises(VerificationError):
        tl.verify_with(cm.cert.public_key())


def test_record_round_trip_and_builder_order(pki: ModuleType) -> None:
    lab = pki.lab()
    rec = TrustRecord.from_certificate(lab["capf"].cert, Role.CAPF, dns_name="n", ip="10.1.2.3")
    raw = tlist.build_record(rec)
    tags, pos = [], 0
    while pos < len(raw):
        tags.append(raw[pos])
        pos += 3 + int.from_bytes(raw[pos + 1:pos + 3], "big")
    assert tags == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert int.from_bytes(raw[3:5], "big") == len(raw)
    assert tlist.parse_record(raw, 0, len(raw)) == rec


def _rec(inner: bytes) -> bytes:
    return b"\x01\x00\x02" + (5 + len(inner)).to_bytes(2, "big") + inner


@pytest.mark.parametrize(("body", "why"), [
    (b"\x02\x00\x02\x00\x05", "RECORD_LENGTH"),
    (b"\x01\x00\x02\x00\x04", "outside"),
    (b"\x01\x00\x02\x00\x09\x04\x00\x02\x00", "need"),
    (_rec(b""), "ROLE"),
    (_rec(b"\x04\x00\x01\x00\x03\x00\x00"), "expected 2"),
    (_rec(b"\x04\x00\x02\x00\x00\x03\x00\x02X"), "need"),
    (_rec(b"\x04\x00\x02\x00\x00\x03\x00\x01X"), "NUL"),
    (_rec(b"\x04\x00\x02\x00\x00\x04\x00\x02\x00\x00"), "duplicate"),
    (_rec(b"\x04\x00\x02\x00\x00\x01\x00\x02\x00\x00"), "duplicate RECORD_LENGTH"),
], ids=["not-record-length", "too-short", "overrun", "no-role", "role-size", "value-overrun", "no-nul",
        "dup", "dup-length"])
def test_malformed_records(vectors: dict[str, bytes], body: bytes, why: str) -> None:
    base = vectors["itl_lab.tlv"]
    tl0 = tlist.parse(base)
    data = base[:tl0.body_offset] + body
    with pytest.raises(DecodeError, match=why) as ei:
        tlist.parse(data, lazy=False)
    assert ei.value.fmt == "trustlist"


def test_roles_text_names_codes_for_reasons() -> None:
    """Reasons name roles as ``SAST (0), CAPF (4)``, not as ``[<Role.SAST: 0>, ...]`` (spec §B.3)."""
    from phoneemu.formats.trustlist import Role, roles_text

    assert roles_text([Role.CAPF, 0, 2, 21, 99]) == "SAST (0), CCM+TFTP (2), CAPF (4), TVS (21), Unknown (99)"
    assert roles_text(frozenset()) == "none"


def test_parse_record_checks_its_own_span(vectors: dict[str, bytes]) -> None:
    """``parse_record`` called with a span the list scan did not make: the record must begin with
    RECORD_LENGTH and that length must be the span's, each error naming the offset."""
    data = vectors["itl_lab.tlv"]
    tl0 = tlist.parse(data)
    start = tl0.body_offset
    length = int.from_bytes(data[start + 3:start + 5], "big")
    assert tlist.parse_record(data, start, start + length) == tl0.record(0)
    with pytest.raises(DecodeError, match=r"must start with RECORD_LENGTH") as e1:
        tlist.parse_record(data, start + 1, start + length)
    assert e1.value.offset == start + 1
    with pytest.raises(DecodeError, match=rf"RECORD_LENGTH {length} != record span {length - 1}") as e2:
        tlist.parse_record(data, start, start + length - 1)
    assert e2.value.offset == start + 3 and e2.value.path == "record[0].record_length"
