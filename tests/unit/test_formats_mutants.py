"""Checks under the §G rules that a mutation run found unpinned: the signed header (spec §A), trust lists
(§B), signed, encrypted and firmware files (§C, §D), signatures, certificates and the phone's trust store
(§G.1). Each test fails when one comparison, bound or check that decides whether bytes are what they
claim is changed (a length off by one, a check dropped, a role or issuer rule loosened, a memo keyed on
too little), so such a change cannot pass the suite unnoticed."""

from __future__ import annotations

import dataclasses
import hashlib
from types import ModuleType

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from phoneemu.crypto import certs, cipher, keys, signatures
from phoneemu.crypto.hashes import HashAlg, digest
from phoneemu.errors import (
    DecodeError,
    DecryptionError,
    EncodeError,
    SizeLimitError,
    VerificationError,
    VerifyReason,
)
from phoneemu.formats import encrypted as enc
from phoneemu.formats import firmware as fw
from phoneemu.formats import header as hdr
from phoneemu.formats import signed
from phoneemu.formats import trustlist as tlist
from phoneemu.formats.trustlist import Role, TrustRecord
from phoneemu.phone.events import Decision, QueryKey
from phoneemu.phone.profile import get_profile, profile_from_dict
from phoneemu.phone.store import Credential, InternCache, TrustStore, TvsAnswer, TvsStatus, query_answer
from tests.signer_helpers import file_signer, self_signed
from tests.unit.test_encrypted import XML, identity, pki_file, resign, tftp
from tests.unit.test_firmware import image, image_signer
from tests.unit.test_header import REST, SIGINFO, SIGNER, raw_header, tlv

NOW = 1_800_000_000


def _signer(name: str, serial: int = 501) -> hdr.FileSigner:
    return file_signer(self_signed(f"CN={name};O=phoneemu", seed=f"formats-mutants-{name}", serial=serial))


# --------------------------------------------------------------------------- signed header (§A)
@pytest.mark.parametrize(("at", "value", "why"), [
    (1, b"\x00\x03", "VERSION length must be 2"), (1, b"\x01\x02", "VERSION length must be 2"),
    (6, b"\x00\x03", "HEADER_LENGTH length must be 2"), (6, b"\x01\x02", "HEADER_LENGTH length must be 2"),
])
def test_version_and_header_length_values_are_exactly_two_bytes(at: int, value: bytes, why: str) -> None:
    """§A.2: VERSION and HEADER_LENGTH are 2-byte values; a length of 3, or of 0x0102 (low byte 2), is not."""
    data = bytearray(raw_header(SIGNER + SIGINFO + REST, body=b"BODY"))
    hdr.parse_header(bytes(data), fmt="header")
    data[at:at + 2] = value
    with pytest.raises(DecodeError, match=why) as info:
        hdr.parse_header(bytes(data), fmt="header")
    assert info.value.offset == at


def test_a_tlv_cut_inside_its_length_at_the_end_of_the_file_is_a_decode_error() -> None:
    """A tag and one length byte as the last bytes of the header and the file: a short read (DecodeError
    naming the length), never an IndexError (design §3.3: no other exception escapes a parser)."""
    data = raw_header(SIGNER + SIGINFO + REST + b"\x63\x00")
    with pytest.raises(DecodeError, match="length"):
        hdr.parse_header(data, fmt="header")


@pytest.mark.parametrize("inner", [
    # an unknown tag inside SIGNER_INFO whose value runs one byte past the container
    tlv(3, tlv(4, b"CN=a\0") + tlv(5, b"\x01") + tlv(6, b"CN=a\0") + b"\x63\x00\x02X") + SIGINFO + REST,
    # a known leaf (SERIAL_NUMBER, last in its container) one byte past SIGNER_INFO
    tlv(3, tlv(4, b"CN=a\0") + tlv(6, b"CN=a\0") + b"\x05\x00\x02\x01") + SIGINFO + REST,
    # an unknown tag at the top level one byte past HEADER_LENGTH (into the body)
    SIGNER + SIGINFO + REST + b"\x63\x00\x02X",
], ids=["unknown-in-container", "leaf-in-container", "unknown-past-header"])
def test_a_value_one_byte_past_its_container_is_a_decode_error(inner: bytes) -> None:
    """§A.2, design §3.3: a nested length overrunning its container (or the header) by even one byte is a
    DecodeError; the byte after it belongs to the next TLV or the body."""
    with pytest.raises(DecodeError):
        hdr.parse_header(raw_header(inner, body=b"BODY"), fmt="header")


def test_a_header_of_65536_bytes_is_an_encode_error() -> None:
    """HEADER_LENGTH is a uint16 (§A.2): a header that pads to 65536 bytes cannot be built (EncodeError
    naming its size), never an OverflowError; 65532 bytes still build."""
    base = hdr.SignedHeader(version=(1, 0), signer=hdr.SignerInfo(name="CN=a", serial=b"\x01", issuer="CN=a"),
                            hash_alg=1, modulus_code=1, signature=bytes(128), filename="f.sgn", timestamp=1,
                            unknown=(hdr.UnknownTag(tag=0x63, value=b""),))
    unpadded = len(hdr.build_header(base).rstrip(b"\x0d"))
    fill = 65536 - unpadded

    def sized(n: int) -> hdr.SignedHeader:
        return dataclasses.replace(base, unknown=(hdr.UnknownTag(tag=0x63, value=bytes(n)),))

    with pytest.raises(EncodeError, match="header of 65536 bytes exceeds 65535"):
        hdr.build_header(sized(fill))
    assert len(hdr.build_header(sized(fill - 4))) == 65532


@pytest.mark.parametrize(("bits", "code"), [(512, 0), (1024, 1), (2048, 2), (4096, 3)])
def test_rsa_modulus_codes_of_spec_a5(bits: int, code: int) -> None:
    """§A.5: tag 11 is 0, 1, 2, 3 for 512-, 1024-, 2048- and 4096-bit RSA signers."""
    key = rsa.RSAPublicNumbers(65537, (1 << (bits - 1)) | 0x10001).public_key()
    assert hdr.modulus_code_for_key(key) == code


def test_the_modulus_code_memo_stays_bounded() -> None:
    """The verifying key's modulus code is remembered per key object, at most 256 of them (memory stays
    bounded whatever number of keys a long run verifies with)."""
    parsed = hdr.parse_header(raw_header(SIGNER + SIGINFO + REST), fmt="header")
    for _ in range(300):
        key = keys.generate_key(keys.KeySpec(kind="ec")).public_key()
        with pytest.raises(VerificationError):
            hdr.verify_signature(parsed, key, fmt="header")
    assert len(hdr._KEY_CODES) <= 256


# --------------------------------------------------------------------------- trust lists (§B)
def test_the_record_length_chain_is_checked_by_parse_itself(vectors: dict[str, bytes]) -> None:
    """``parse`` checks the RECORD_LENGTH chain before any record is decoded (module docstring): a last
    record one byte short, or a first TLV of length 0x0102, is a DecodeError of ``parse`` (lazy)."""
    data = vectors["itl_lab.tlv"]
    with pytest.raises(DecodeError, match="outside") as info:
        tlist.parse(data[:-1])
    last = len(tlist.parse(data)) - 1
    assert info.value.path == f"record[{last}].record_length"
    body_at = tlist.parse(data).body_offset
    bad = bytearray(data)
    bad[body_at + 1] = 1  # RECORD_LENGTH's own length 0x0102 instead of 0x0002
    with pytest.raises(DecodeError, match="must start with RECORD_LENGTH") as info:
        tlist.parse(bytes(bad))
    assert info.value.offset == body_at


def test_parse_record_refuses_a_span_past_the_data() -> None:
    """A span ending past the bytes given is a DecodeError, even when RECORD_LENGTH claims that span."""
    raw = b"\x01\x00\x02\x00\x0b" + b"\x04\x00\x02\x00\x00"  # RECORD_LENGTH 11, 10 bytes given
    with pytest.raises(DecodeError, match="outside the 10 bytes given"):
        tlist.parse_record(raw, 0, 11)


def test_the_issuer_and_serial_match_is_preferred_over_a_serial_only_one(pki: ModuleType) -> None:
    """§B.4: the signer is the SAST record with the header's issuer and serial; a SAST record with only
    the serial (another issuer, another key) listed first is not taken for it."""
    lab = pki.lab()
    cm = lab["callmanager"]
    own = TrustRecord.from_certificate(cm.cert, Role.SAST)
    impostor = dataclasses.replace(TrustRecord.from_certificate(lab["tvs"].cert, Role.SAST),
                                   serial=own.serial, issuer="CN=Another CA;O=elsewhere")
    tl = tlist.parse(tlist.build(kind="ITL", records=[impostor, own], signer=cm.signer, timestamp=1))
    assert tl.signer_index() == 1
    assert tl.verify_self() == own


@pytest.mark.parametrize("role", [Role.CCM, Role.CCM_TFTP, Role.TFTP, Role.CAPF, Role.SRST, Role.APP_SERVER,
                                  Role.TVS])
def test_only_a_sast_record_signs_a_trust_list(pki: ModuleType, role: Role) -> None:
    """§B.4: a signer found only in a record of another role is WRONG_ROLE, whatever that role."""
    cm = pki.lab()["callmanager"]
    data = tlist.build(kind="ITL", records=[TrustRecord.from_certificate(cm.cert, role)], signer=cm.signer,
                       timestamp=1)
    with pytest.raises(VerificationError) as info:
        tlist.parse(data).verify_self()
    assert info.value.reason is VerifyReason.WRONG_ROLE


@pytest.mark.parametrize("issuer", [
    "CN=LAB-PUB;OU=VTG;O=PHONEEMU;C=NZ",  # case
    "CN=lab-pub, OU=VTG, O=phoneemu, C=NZ",  # RFC 4514 ',' separators
    "CN = lab-pub ; OU = VTG ; O = phoneemu ; C = NZ",  # spacing
], ids=["case", "commas", "spaces"])
def test_names_signer_reads_role_and_issuer_as_a_phone(pki: ModuleType, issuer: str) -> None:
    """:meth:`TrustList.names_signer` (§B.4, §G.3 step 1): only a SAST record names the signer, unless
    ``any_role``; its issuer is compared after ``normalise_dn`` (case, separators, spacing: §A.7)."""
    cm = pki.lab()["callmanager"]
    assert certs.dn_text(cm.cert.issuer) == "CN=lab-pub;OU=VTG;O=phoneemu;C=NZ"
    as_tftp = TrustRecord.from_certificate(cm.cert, Role.TFTP)
    relabelled = dataclasses.replace(TrustRecord.from_certificate(cm.cert, Role.SAST), issuer=issuer)
    tl = tlist.parse(tlist.build(kind="ITL", records=[as_tftp, relabelled], signer=cm.signer, timestamp=1))
    assert not tl.names_signer(0) and tl.names_signer(0, any_role=True)
    assert tl.names_signer(1)
    assert certs.normalise_dn(issuer) == certs.normalise_dn(certs.dn_text(cm.cert.issuer))


def test_a_record_with_a_certificate_or_a_cert_hash_is_not_blank(pki: ModuleType) -> None:
    """§B.7: a blank ("empty") record has no subject, issuer, serial, key, signature or certificate (nor a
    CERTIFICATE_HASH, ours): a TVS or TFTP record carrying either keeps an ITL from being a rollback one."""
    lab = pki.lab()
    der = certs.cert_der(lab["tvs"].cert)
    with_cert = TrustRecord(role=Role.TVS, dns_name="tvs", certificate=der)
    with_hash = TrustRecord(role=Role.TFTP, dns_name="tftp", cert_hash=hashlib.sha1(der).digest())
    assert not with_cert.is_empty and not with_hash.is_empty
    sast = TrustRecord.from_certificate(lab["callmanager"].cert, Role.SAST)
    for rec in (with_cert, with_hash):
        tl = tlist.parse(tlist.build(kind="ITL", records=[sast, rec], signer=lab["callmanager"].signer,
                                     timestamp=1))
        assert not tl.is_empty


@pytest.mark.parametrize(("filename", "kind"), [
    ("CTLFile.tlv", "CTL"), ("ctlSEP001122334455.tlv", "CTL"), ("dir/CTLFile.tlv", "CTL"),
    ("ITLFile.tlv", "ITL"), ("ITLFile-CTL.tlv", "ITL"), ("CTL/ITLFile.tlv", "ITL"),
])
def test_the_kind_comes_from_the_start_of_the_file_name(pki: ModuleType, filename: str, kind: str) -> None:
    """``parse`` without ``kind``: a FILENAME whose base name starts with ``CTL`` is a CTL, others ITLs."""
    cm = pki.lab()["callmanager"]
    data = tlist.build(kind="ITL", records=[TrustRecord.from_certificate(cm.cert, Role.SAST)],
                       signer=cm.signer, timestamp=1, filename=filename)
    assert tlist.parse(data).kind == kind


def test_a_parsed_record_given_another_field_rebuilds_with_it(vectors: dict[str, bytes]) -> None:
    """A parsed record keeps its TLV order only while it names exactly its fields: one added or removed
    (``dataclasses.replace``) is written in CUCM order, nothing lost and nothing stale (§B.2)."""
    rec = tlist.parse(vectors["itl_lab.tlv"]).record(0)
    for changed in (dataclasses.replace(rec, cert_hash=b"\x22" * 20, hash_alg=1),
                    dataclasses.replace(rec, certificate=None)):
        raw = tlist.build_record(changed)
        assert tlist.parse_record(raw, 0, len(raw)) == changed


# --------------------------------------------------------------------------- signed files (§C.1)
def test_signed_build_defaults_and_its_empty_file_name() -> None:
    """§C.1, §A.4, §A.6: a ``.sgn`` is built with HEADER_VERSION 1.0 and hash code 1 (SHA-1, CUCM's
    default) unless told; an empty FILENAME is refused."""
    data = signed.build(body=XML, filename="SEP001122334455.cnf.xml.sgn", signer=tftp(), timestamp=1)
    h = signed.parse(data).header
    assert (h.version, h.hash_alg) == ((1, 0), 1)
    with pytest.raises(EncodeError, match="filename"):
        signed.build(body=XML, filename="", signer=tftp(), timestamp=1)


def test_a_signed_file_with_an_empty_body_is_verified_too() -> None:
    """§A.3: the signature covers the header also when the original file is empty: another key refuses it."""
    sf = signed.parse(signed.build(body=b"", filename="empty.sgn", signer=tftp(), timestamp=1))
    signed.verify(sf, tftp().cert)
    with pytest.raises(VerificationError):
        signed.verify(sf, _signer("other").cert)


# --------------------------------------------------------------------------- encrypted configs (§C.3)
@pytest.mark.parametrize(("padded", "count", "why"), [
    (b"\x0d" * 16, 0, "pad count 0 is outside 1..16"),
    (b"\x0d" * 4, 5, "pad count 5 is outside 1..16 or longer"),
])
def test_a_bad_pad_count_is_told_at_tag_20(padded: bytes, count: int, why: str) -> None:
    """§C.3 step 3: the pad count is 1..16 and at most the data; a count outside is tag 20's fault, not the
    pad bytes' (design §3.7)."""
    with pytest.raises(DecryptionError, match=why) as info:
        enc.unpad(padded, count)
    assert (info.value.tag, info.value.path) == (20, "header.encryption_padding")


def _phone_key() -> keys.PrivateKey:
    return identity("phone", "rsa2048")[0]


@pytest.mark.parametrize("change", ["last-byte", "prefix"])
def test_the_plaintext_hash_must_equal_tag_27_in_full(change: str) -> None:
    """§C.3 step 7: the hash of the decrypted plaintext is compared with all of tag 27: a tag 27 differing
    in its last byte, or only the right digest's first 16 bytes, is HASH_MISMATCH."""
    good = hashlib.sha1(XML).digest()
    tag27 = good[:-1] + bytes([good[-1] ^ 1]) if change == "last-byte" else good[:16]
    ef = enc.parse(resign(pki_file(), plaintext_hash=tag27))
    with pytest.raises(DecryptionError) as info:
        enc.decrypt_pki(ef, _phone_key())
    assert info.value.reason is VerifyReason.HASH_MISMATCH and info.value.tag == 27


def test_an_empty_tag_27_never_matches() -> None:
    """§C.3: tag 27 is the plaintext's digest; an empty one matches no plaintext, not even an empty one."""
    ef = enc.parse(resign(pki_file(b""), plaintext_hash=b""))
    with pytest.raises(DecryptionError) as info:
        enc.decrypt_pki(ef, _phone_key())
    assert info.value.reason is VerifyReason.HASH_MISMATCH


def test_an_unwrapped_key_other_than_16_bytes_is_refused() -> None:
    """§C.3 step 2: the wrapped key is a 16-byte AES-128 key; a 32-byte one (the file otherwise right,
    AES-256) is refused at tag 25."""
    key32, iv = bytes(range(32)), bytes(16)
    padded, p = enc.pad(XML)
    wrapped = cipher.rsa_wrap(certs.cert_public_key(identity("phone", "rsa2048")[1]), key32)
    info = hdr.EncryptionInfo(mode=0, iv=iv, padding=p, key_info_unknown=0, key_size=8 * len(wrapped),
                              key_algorithm=1, wrapped_key=wrapped, hash_alg=1,
                              plaintext_hash=hashlib.sha1(XML).digest())
    data = hdr.sign_file(version=(2, 0), filename="x.cnf.xml.enc.sgn", timestamp=1,
                         body=cipher.aes_cbc_encrypt(key32, iv, padded), signer=tftp(), encryption=info)
    with pytest.raises(DecryptionError, match="unwrapped key is 32 bytes") as err:
        enc.decrypt_pki(enc.parse(data), _phone_key())
    assert err.value.tag == 25


def test_hash_code_2_is_sha256() -> None:
    """§A.4: code 2 is SHA-256 (32 bytes), in tag 27 as in the signature."""
    assert digest(HashAlg.SHA256, XML) == hashlib.sha256(XML).digest()
    assert enc.parse(pki_file(hash_alg=2)).encryption.plaintext_hash == hashlib.sha256(XML).digest()


# --------------------------------------------------------------------------- firmware (§D, ours)
def test_firmware_signer_found_by_serial_when_the_issuer_text_differs() -> None:
    """Ours (module docstring, as §B.4): the trusted image-signing certificate with the header's serial
    signs the load when no certificate matches serial and issuer."""
    signer = image_signer()
    img = fw.parse(image())
    info = dataclasses.replace(signer.info, issuer="CN=Some Other Name;O=elsewhere")
    data = hdr.sign_header(img.header, img.raw[img.header.header_length:], signer, signer_info=info)
    assert fw.verify(fw.parse(data), [image_signer("unrelated", serial=78).cert, signer.cert]) == signer.cert


def test_firmware_is_built_with_sha512_by_default() -> None:
    """Ours (module docstring): a firmware load is signed with hash code 3 (SHA-512) unless told."""
    data = fw.build(load_name="load-1", payload=b"image", signer=image_signer(), timestamp=1)
    assert fw.parse(data).header.hash_alg == 3


# --------------------------------------------------------------------------- signatures
def test_an_rsa_signature_of_the_wrong_length_is_named_so() -> None:
    """A signature whose length is not the signer's modulus length is BAD_SIGNATURE saying both lengths."""
    signer = tftp()
    sig = signatures.sign(signer.key, b"data", HashAlg.SHA1)
    with pytest.raises(VerificationError, match="signature is 127 bytes, the signer's RSA-1024 key needs 12"):
        signatures.verify(signer.key.public_key(), sig[1:], b"data", HashAlg.SHA1)


def test_the_verify_cache_remembers_only_successes_of_that_very_signature() -> None:
    """Module docstring: the memo is keyed by the signature too, and a failure is never remembered — with
    a cache installed, another signature over the same bytes, or a refused one asked again, still fails."""
    signer = tftp()
    key = signer.key.public_key()
    sig = signatures.sign(signer.key, b"signed bytes", HashAlg.SHA1)
    forged = sig[:-1] + bytes([sig[-1] ^ 1])
    old = signatures.set_verify_cache(signatures.VerifyCache())
    try:
        for _ in range(2):
            with pytest.raises(VerificationError):
                signatures.verify(key, forged, b"signed bytes", HashAlg.SHA1)
        signatures.verify(key, sig, b"signed bytes", HashAlg.SHA1)
        with pytest.raises(VerificationError):
            signatures.verify(key, forged, b"signed bytes", HashAlg.SHA1)
    finally:
        signatures.set_verify_cache(old)


def test_the_verify_cache_is_bounded() -> None:
    cache = signatures.VerifyCache(max_items=2)
    for k in (b"a", b"b", b"c"):
        cache.remember(k)
    assert len(cache) == 2 and not cache.seen(b"a") and cache.seen(b"c")


def test_a_capf_rsa_signature_is_one_modulus_long_and_below_the_modulus() -> None:
    """§F.7 (RFC 8017 §8.2.2): the signature is exactly k bytes and its integer below n — ``s + n`` (same
    value mod n) and ``00 || s`` (same integer, k + 1 bytes) are refused."""
    key = tftp().key
    assert isinstance(key, rsa.RSAPrivateKey)
    pub = key.public_key()
    n, k = pub.public_numbers().n, (pub.key_size + 7) // 8
    for i in range(64):  # a signature with room for s + n in k bytes (about half of them)
        data = b"auth data %d" % i
        s = int.from_bytes(signatures.sign_raw_digest(key, data, HashAlg.SHA1), "big")
        if s + n < 1 << (8 * k):
            break
    else:  # pragma: no cover - 64 misses in a row do not happen
        pytest.fail("no signature with room for s + n")
    signatures.verify_raw_digest(pub, s.to_bytes(k, "big"), data, HashAlg.SHA1)
    for bad in ((s + n).to_bytes(k, "big"), b"\x00" + s.to_bytes(k, "big")):
        with pytest.raises(VerificationError) as info:
            signatures.verify_raw_digest(pub, bad, data, HashAlg.SHA1)
        assert info.value.reason is VerifyReason.BAD_SIGNATURE


@pytest.mark.parametrize(("e", "bits", "reason"), [
    ((1 << 63) | 1, 1024, VerifyReason.BAD_SIGNATURE), ((1 << 64) | 1, 1024, VerifyReason.UNSUPPORTED_KEY),
    (65537, 16384, VerifyReason.BAD_SIGNATURE), (65537, 16392, VerifyReason.UNSUPPORTED_KEY),
], ids=["e-64-bits", "e-65-bits", "n-16384-bits", "n-16392-bits"])
def test_capf_raw_rsa_limits_are_openssls(e: int, bits: int, reason: VerifyReason) -> None:
    """OpenSSL's limits (module docstring): a public exponent of up to 64 bits and a modulus of up to
    16384 bits are checked (a wrong signature is BAD_SIGNATURE); one bit more is UNSUPPORTED_KEY."""
    pub = rsa.RSAPublicNumbers(e, (1 << (bits - 1)) | (1 << 80) | 1).public_key()
    with pytest.raises(VerificationError) as info:
        signatures.verify_raw_digest(pub, bytes(bits // 8), b"auth data", HashAlg.SHA1)
    assert info.value.reason is reason


def test_a_tampered_capf_ec_signature_is_refused() -> None:
    """§F.7 with an EC key (ECDSA over the bare hash): a signature over other data is BAD_SIGNATURE."""
    key = keys.generate_key(keys.KeySpec(kind="ec"))
    sig = signatures.sign_raw_digest(key, b"auth data", HashAlg.SHA512)
    signatures.verify_raw_digest(key.public_key(), sig, b"auth data", HashAlg.SHA512)
    with pytest.raises(VerificationError) as info:
        signatures.verify_raw_digest(key.public_key(), sig, b"other data", HashAlg.SHA512)
    assert info.value.reason is VerifyReason.BAD_SIGNATURE


# --------------------------------------------------------------------------- certificates
def test_serial_zero_is_one_byte() -> None:
    """§A.2 tag 5: big-endian, minimal length, no sign byte — and at least one byte (serial 0 is 00)."""
    assert certs.serial_bytes(0) == b"\x00" and certs.serial_bytes(0x80) == b"\x80"


def test_der_extent_problems_at_their_edges() -> None:
    """A stored certificate one byte short, one byte long, or with an indefinite (0x80) length is named."""
    der = certs.cert_der(tftp().cert)
    assert certs.der_extent_problem(der) is None
    short = certs.der_extent_problem(der[:-1])
    assert short is not None and short[0].startswith("truncated")
    assert certs.der_extent_problem(der + b"\x00") == ("1 bytes after the end of the certificate", len(der))
    assert certs.der_extent_problem(b"\x30\x80" + der[4:]) == ("length byte 0x80 is not a DER length", 1)


def test_a_certificate_with_a_duplicate_extension_is_refused_when_loaded() -> None:
    """``load_cert_der`` reads the lazily parsed fields itself, extensions included: a certificate with two
    BasicConstraints extensions is a DecodeError there, not an exception out of whatever reads it later."""
    der = certs.cert_der(tftp().cert)
    key_usage, basic_constraints = bytes.fromhex("0603551d0f"), bytes.fromhex("0603551d13")
    assert der.count(key_usage) == 1
    with pytest.raises(DecodeError, match=r"Duplicate 2\.5\.29\.19 extension"):
        certs.load_cert_der(der.replace(key_usage, basic_constraints))


# --------------------------------------------------------------------------- the trust store (§G.1)
P = get_profile("cp-8861")


def _itl(pki: ModuleType, filename: str | None = None) -> tlist.TrustList:
    cm = pki.lab()["callmanager"]
    data = tlist.build(kind="ITL", records=[TrustRecord.from_certificate(cm.cert, Role.SAST)],
                       signer=cm.signer, timestamp=1, filename=filename)
    return tlist.parse(data)


def _install(store: TrustStore, tl: tlist.TrustList) -> None:
    store.apply(Decision(rule="G.2-first-itl-tofu", accepted=True, reason="", file="", kind=tl.kind,
                         artefact=tl))


def test_a_pending_tvs_question_never_locks() -> None:
    """§G.3.5 (module docstring): a refused update locks, a pending TVS question does not, even one carrying
    a reason code."""
    s = TrustStore(profile=P, intern=InternCache())
    s.apply(Decision(rule="G.3.4-needs-tvs", accepted=False, reason="", file="", kind="ITL",
                     reason_code=VerifyReason.UNKNOWN_SIGNER,
                     needs_tvs=QueryKey(subject="a", issuer="b", serial=b"\x01")))
    assert not s.locked


def test_a_trust_list_of_exactly_the_limit_is_stored(pki: ModuleType) -> None:
    """§B.5: the limit is the largest list stored: exactly that size installs, one byte more is refused."""
    tl = _itl(pki)
    at = TrustStore(profile=profile_from_dict("cp-8861", {"trust_list_limit": len(tl.raw)}),
                    intern=InternCache())
    _install(at, tl)
    assert at.itl is tl
    below = TrustStore(profile=profile_from_dict("cp-8861", {"trust_list_limit": len(tl.raw) - 1}),
                       intern=InternCache())
    with pytest.raises(SizeLimitError):
        _install(below, tl)


def test_the_intern_cache_keeps_ctl_and_itl_of_the_same_bytes_apart(pki: ModuleType) -> None:
    """The same bytes read as a CTL and as an ITL are two parses, each of its own kind (§G.1: the phone keeps
    a CTL and an ITL)."""
    raw = _itl(pki).raw
    cache = InternCache()
    assert cache.trust_list(raw, kind="CTL", limit=65536).kind == "CTL"
    assert cache.trust_list(raw, kind="ITL", limit=65536).kind == "ITL"
    other = InternCache()
    assert other.adopt_trust_list(tlist.parse(raw, kind="CTL")).kind == "CTL"
    assert other.adopt_trust_list(tlist.parse(raw, kind="ITL")).kind == "ITL"


def test_a_tvs_entry_is_gone_at_its_expiry_second(pki: ModuleType) -> None:
    """§H.2: an answer cached for ``ttl`` seconds at ``now`` is gone at ``now + ttl`` (as ``tvs_lookup``)."""
    s = TrustStore(profile=P, intern=InternCache())
    key = QueryKey(subject="a", issuer="b", serial=b"\x01")
    der = certs.cert_der(pki.lab()["tvs"].cert)
    assert s.cache_tvs(key, TvsAnswer(cert_der=der, roles=frozenset({3}), ttl=10, cert_from_tvs=False), 100)
    assert s.expire_tvs(109) == 1
    assert s.expire_tvs(110) == 0 and s.tvs_cache_size == 0


def test_tvs_ttls_are_clamped_to_0_through_30_days() -> None:
    """§H.2: a negative TTL is 0 and one above 2592000 s is 2592000; exactly 2592000 is allowed."""
    assert TvsAnswer.from_reply(b"", [21], -5).ttl == 0
    assert TvsAnswer.from_reply(b"", [21], 2_592_001).ttl == 2_592_000
    assert TvsAnswer(cert_der=b"", roles=frozenset(), ttl=2_592_000).ttl == 2_592_000


@dataclasses.dataclass
class _Response:
    valid: bool
    certificate: bytes | None
    roles: tuple[int, ...] = (3,)
    ttl: int | None = None


def test_an_invalid_tvs_answer_with_a_certificate_is_not_found() -> None:
    """§E.7.2: only a *valid* QUERY answer with a certificate is kept; an invalid one is "not found"."""
    assert query_answer(_Response(valid=False, certificate=b"\x30\x00")) is TvsStatus.NOT_FOUND
    assert isinstance(query_answer(_Response(valid=True, certificate=b"\x30\x00")), TvsAnswer)


def test_factory_reset_clears_the_manual_key_and_an_empty_key_is_refused() -> None:
    """§G.6 "reset security settings" forgets the manual config key; ``set_symmetric_key(b"")`` is refused
    (only 16 or 32 zero bytes, or None, clear the key: §C.5)."""
    s = TrustStore(profile=get_profile("cp-7942-symmetric"), intern=InternCache())
    s.set_symmetric_key(bytes(range(1, 17)))
    s.factory_reset()
    assert s.symmetric_key is None
    s.set_symmetric_key(bytes(range(1, 17)))
    with pytest.raises(EncodeError, match="empty key"):
        s.set_symmetric_key(b"")
    with pytest.raises(EncodeError):
        s.set_symmetric_key(bytes(8))
    assert s.symmetric_key == bytes(range(1, 17))


def test_a_credential_pair_of_two_identities_is_refused() -> None:
    """A stored certificate with another identity's private key is a DecodeError naming the key file."""
    key_a, _ = identity("pair-a")
    _, cert_b = identity("pair-b")
    with pytest.raises(DecodeError, match="not the private key") as info:
        Credential.check_pair(cert_b, keys.private_key_pem(key_a), cert_name="mic.der", key_name="mic.key")
    assert info.value.path == "mic.key"


def test_the_phone_encrypts_for_its_lsc_when_it_has_one() -> None:
    """§C.4: the certificate for config encryption is the LSC if present, else the MIC."""
    mic = Credential.of(identity("mic")[1], identity("mic")[0])
    lsc = Credential.of(identity("lsc")[1], identity("lsc")[0])
    s = TrustStore(profile=P, mic=mic, intern=InternCache())
    assert s.credential is mic
    s.lsc = lsc
    assert s.credential is lsc


def test_no_itl_is_not_an_empty_itl(pki: ModuleType) -> None:
    """§G.3.6, §G.6: only an *installed* rollback ITL makes a phone take any unsigned config; a phone holding
    no ITL (a CTL only) does not have an empty one."""
    s = TrustStore(profile=P, intern=InternCache())
    assert not s.itl_is_empty
    ctl = _itl(pki, filename="CTLFile.tlv")
    assert ctl.kind == "CTL"
    _install(s, ctl)
    assert s.ctl is not None and not s.itl_is_empty


def test_restore_without_a_ctl_leaves_none(pki: ModuleType) -> None:
    """State read back from flash replaces the store's: no CTL on flash is no CTL held."""
    s = TrustStore(profile=P, intern=InternCache())
    _install(s, _itl(pki, filename="CTLFile.tlv"))
    s.restore(ctl=None, itl=_itl(pki), config=None, ctl_rule=None, itl_rule="G.2-first-itl-tofu",
              config_rule=None)
    assert s.ctl is None and s.ctl_rule is None and s.itl is not None
