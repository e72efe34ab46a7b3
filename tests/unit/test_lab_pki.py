"""Lab PKI: key storage modes, seeded determinism, validity, MIC and LSC issuance (spec §F.9, §G.8)."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from phoneemu.crypto import certs, keys
from phoneemu.crypto.keys import KeySpec
from phoneemu.errors import DecodeError, EncodeError, VerificationError
from phoneemu.lab.pki import LAB_EPOCH, LabPki, add_years

NOW = int(dt.datetime(2026, 6, 1, tzinfo=dt.UTC).timestamp())
RSA1024 = KeySpec(kind="rsa", bits=1024)


def _pki(root: Path, seed: int | None = 7, name: str = "t") -> LabPki:
    return LabPki(root, seed=seed, key_spec=RSA1024, cluster_name=name)


def test_keys_are_0600_and_certs_pem(tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    ident = pki.create("callmanager", now=NOW)
    mode = stat.S_IMODE(pki.key_path("callmanager").stat().st_mode)
    assert mode == 0o600
    assert pki.cert_path("callmanager").read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
    fresh = _pki(tmp_path)
    loaded = fresh.get("callmanager")
    assert loaded.cert == ident.cert
    spki = keys.public_key_spki_der
    assert spki(loaded.key.public_key()) == spki(ident.key.public_key())


def test_seeded_identities_are_identical_across_directories(tmp_path: Path) -> None:
    a = _pki(tmp_path / "a").create("itlrecovery", now=NOW, years=20)
    b = _pki(tmp_path / "b").create("itlrecovery", now=NOW + 12345, years=20)
    assert certs.cert_der(a.cert) == certs.cert_der(b.cert)
    assert a.cert.not_valid_before_utc == LAB_EPOCH
    c = _pki(tmp_path / "c", seed=8).create("itlrecovery", now=NOW, years=20)
    assert c.cert.serial_number != a.cert.serial_number


def test_generation_changes_key_and_serial(tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    g0 = pki.create("callmanager", now=NOW)
    g1 = pki.create("callmanager", now=NOW, generation=1)
    assert g0.cert.serial_number != g1.cert.serial_number
    assert g0.cert.public_key() != g1.cert.public_key()
    # regenerated certificates start at the lab clock (minus a day of skew allowance)
    assert g1.cert.not_valid_before_utc == dt.datetime.fromtimestamp(NOW, dt.UTC) - dt.timedelta(days=1)


@pytest.mark.parametrize("years", [5, 20, 10])
def test_itlrecovery_validity_years(tmp_path: Path, years: int) -> None:
    ident = _pki(tmp_path).create("itlrecovery", now=NOW, years=years)
    assert ident.cert.not_valid_after_utc == add_years(ident.cert.not_valid_before_utc, years)
    assert len(certs.serial_bytes(ident.cert.serial_number)) == 16  # CUCM self-signed serials (§B.2)


def test_unseeded_identities_differ(tmp_path: Path) -> None:
    a = _pki(tmp_path / "a", seed=None).create("tvs", now=NOW)
    b = _pki(tmp_path / "b", seed=None).create("tvs", now=NOW)
    assert a.cert.serial_number != b.cert.serial_number
    assert a.cert.not_valid_before_utc == dt.datetime.fromtimestamp(NOW, dt.UTC) - dt.timedelta(days=1)


def test_mic_issued_by_manufacturer_for_ten_years(tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    pki.create("mfgca", now=NOW)
    cert, key = pki.issue_mic("001122334455", model="8861", now=NOW)
    assert cert.issuer == pki.get("mfgca").cert.subject
    cert.verify_directly_issued_by(pki.get("mfgca").cert)
    assert "SEP001122334455" in certs.dn_text(cert.subject)
    assert cert.not_valid_after_utc == add_years(cert.not_valid_before_utc, 10)
    assert keys.public_key_spki_der(key.public_key()) == keys.public_key_spki_der(certs.cert_public_key(cert))
    pki.verify_issued(cert, "mfgca", what="MIC")
    # seeded: the same MAC gives the same MIC in another seeded cluster (shared manufacturer)
    other = LabPki(tmp_path / "o", seed=99, key_spec=RSA1024, cluster_name="other")
    other.create("mfgca", now=NOW)
    cert2, _ = other.issue_mic("001122334455", model="8861", now=NOW)
    assert certs.cert_der(cert2) == certs.cert_der(cert)


def test_lsc_fields_follow_capfd(tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    capf = pki.create("capf", now=NOW)
    phone_key = keys.generate_key(RSA1024, unsafe_seed="phone-lsc")
    lsc = pki.issue_lsc("SEP001122334455", keys.public_key_spki_der(phone_key.public_key()), now=NOW, days=30)
    assert lsc.issuer == capf.cert.subject
    lsc.verify_directly_issued_by(capf.cert)
    assert lsc.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "SEP001122334455"
    assert lsc.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME) == \
        capf.cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    san = lsc.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["SEP001122334455"]
    bc = lsc.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = lsc.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.key_encipherment
    eku = lsc.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH,
                        x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5")}
    assert lsc.signature_hash_algorithm is not None and lsc.signature_hash_algorithm.name == "sha256"
    assert lsc.not_valid_after_utc - dt.datetime.fromtimestamp(NOW, dt.UTC) == dt.timedelta(days=30)
    pki.verify_issued(lsc, "capf", what="LSC")
    pki.create("mfgca", now=NOW)
    with pytest.raises(VerificationError):
        pki.verify_issued(lsc, "mfgca", what="MIC")


def test_lsc_rejects_bad_input(tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    pki.create("capf", now=NOW)
    key = keys.generate_key(RSA1024, unsafe_seed="phone-lsc")
    with pytest.raises(EncodeError):
        pki.issue_lsc("SEP0011", key.public_key(), now=NOW, days=0)
    with pytest.raises(EncodeError):
        pki.issue_lsc("bad name!", key.public_key(), now=NOW)
    with pytest.raises(DecodeError):
        pki.issue_lsc("SEP0011", b"not a key", now=NOW)


def test_export_import_identity(tmp_path: Path) -> None:
    pki = _pki(tmp_path)
    ident = pki.create("itlrecovery", now=NOW, years=20)
    out = tmp_path / "ITLRecovery.pem"
    pki.export_identity("itlrecovery", out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    back = LabPki.read_identity_file(out, "itlrecovery")
    assert back.cert == ident.cert
    # a key that does not match the certificate is refused
    other = pki.create("tvs", now=NOW)
    cert_part = out.read_bytes().split(b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n"
    out.write_bytes(cert_part + keys.private_key_pem(other.key))
    with pytest.raises(DecodeError, match="does not match"):
        LabPki.read_identity_file(out, "itlrecovery")


def test_missing_identity_is_a_decode_error(tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match="missing"):
        _pki(tmp_path).get("capf")


def test_ec_identity_for_records(tmp_path: Path) -> None:
    ident = _pki(tmp_path).create("https", now=NOW, spec=KeySpec(kind="ec", curve="p256"))
    assert keys.key_description(ident.key) == "EC secp256r1"


def test_dn_common_name_reads_either_separator_and_falls_back_to_the_text() -> None:
    from phoneemu.crypto.certs import dn_common_name

    assert dn_common_name("CN=ITLRECOVERY_lab-pub;OU=phoneemu;O=lab") == "ITLRECOVERY_lab-pub"
    assert dn_common_name("O=lab, cn = tvs-1 ,C=US") == "tvs-1"
    assert dn_common_name("OU=phoneemu;O=lab") == "OU=phoneemu;O=lab"  # no CN: the whole DN
