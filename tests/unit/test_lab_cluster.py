"""Lab cluster: served files and what every admin operation does to them (spec §B.5, §B.7, §C, §G)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509

from phoneemu.crypto import certs, keys
from phoneemu.crypto.keys import KeySpec
from phoneemu.errors import DecodeError, EncodeError, PhoneEmuError, SizeLimitError, VerificationError
from phoneemu.formats import config, encrypted, firmware, signed, trustlist
from phoneemu.formats.trustlist import Role, TrustList
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.pki import Identity
from tests.helpers import pristine_lab

NOW = 1_780_000_000  # 2026-05-28
MAC = "001122334455"
MAC2 = "0011223344AA"


def _init(root: Path, seed: int | None = 5, **kw: object) -> LabCluster:
    return LabCluster.init(root, seed=seed, key_spec="rsa1024", now=NOW, **kw)  # type: ignore[arg-type]


# ``lab``: a seeded lab with phone MAC, made once per module (``base_lab``), each test changing a copy of it,
# opened as every command opens one (its key generation and first build, most of a test's time, done once)
base_lab, lab = pristine_lab("lab-cluster", now=NOW, phones={MAC: {}}, seed=5)


def _tl(c: LabCluster, name: str = "ITLFile.tlv") -> TrustList:
    data = c.get(name)
    assert data is not None, name
    return trustlist.parse(data)


def _signed_by(tl: TrustList, ident: Identity) -> bool:
    return tl.header.signer.serial == certs.serial_bytes(ident.cert.serial_number)


def _roles(tl: TrustList, ident: Identity) -> set[int]:
    der = ident.der
    return {r.role for r in tl.records if r.certificate == der}


# --------------------------------------------------------------------------- served files
def test_initial_itl_records_and_signer(lab: LabCluster) -> None:
    itl = _tl(lab)
    assert itl.kind == "ITL"
    assert itl.verify_self().certificate == lab.identity("itlrecovery").der
    assert _signed_by(itl, lab.identity("itlrecovery"))
    assert _roles(itl, lab.identity("itlrecovery")) == {Role.SAST}
    assert _roles(itl, lab.callmanager()) == {Role.SAST, Role.CCM_TFTP}
    assert _roles(itl, lab.tvs_identity()) == {Role.TVS}
    assert _roles(itl, lab.identity("capf")) == {Role.CAPF}
    assert all(r.dns_name == "127.0.0.1" and r.ip_address == bytes([127, 0, 0, 1]) for r in itl.records)
    assert itl.header.timestamp == NOW
    assert lab.get("CTLFile.tlv") is None


def test_per_device_trust_lists(lab: LabCluster) -> None:
    files = lab.files()
    assert files[f"ITLSEP{MAC}.tlv"] == files["ITLFile.tlv"]
    assert trustlist.parse(files[f"ITLSEP{MAC}.tlv"]).header.filename == "ITLFile.tlv"
    assert lab.get("ITLSEPAABBCCDDEEFF.tlv") == files["ITLFile.tlv"]  # any MAC is answered
    assert "ITLSEPAABBCCDDEEFF.tlv" not in files
    assert lab.get("CTLSEPAABBCCDDEEFF.tlv") is None  # no CTL yet
    assert lab.get("nothing.xml") is None


def test_multi_node_itl_and_ctl(tmp_path: Path) -> None:
    c = _init(tmp_path / "n3", nodes=3)
    itl = _tl(c)
    tvs_records = [r for r in itl.records if r.role == Role.TVS]
    assert len(tvs_records) == 3
    c.set_mixed_mode(True)
    ctl = _tl(c, "CTLFile.tlv")
    ccm = [r for r in ctl.records if r.role == Role.CCM_TFTP]
    assert {r.certificate for r in ccm} == {c.callmanager(n).der for n in (1, 2, 3)}


def test_https_ec_tftp_record(tmp_path: Path) -> None:
    c = _init(tmp_path / "h", https_key="ec-p256")
    itl = _tl(c)
    https = c.identity("tftp-https")
    assert _roles(itl, https) == {Role.TFTP}
    rec = next(r for r in itl.records if r.certificate == https.der)
    assert rec.public_key is not None and rec.public_key[:1] == b"\x04" and len(rec.public_key) == 65
    assert itl.header.signer_version == (1, 1)
    itl.verify_self()
    assert (c.tvs_lookup(https.der) or pytest.fail("TVS")).roles == (Role.TFTP,)
    assert _tl(_init(tmp_path / "plain")).header.signer_version is None


def test_device_config_signed_and_names_servers(lab: LabCluster) -> None:
    sgn = signed.parse(lab.get(f"SEP{MAC}.cnf.xml.sgn") or b"")
    signed.verify(sgn, lab.callmanager().cert)
    assert sgn.body == lab.get(f"SEP{MAC}.cnf.xml")
    cfg = config.parse(sgn.body)
    assert cfg.full_config and not cfg.encr_config
    assert cfg.device_name == f"SEP{MAC}"
    assert [(s.host, s.port) for s in cfg.tvs_servers] == [("127.0.0.1", 2445)]
    assert [(s.host, s.port) for s in cfg.capf_servers] == [("127.0.0.1", 3804)]
    lab.set_ports(tvs=40001, capf=40002)
    cfg = config.parse(lab.get(f"SEP{MAC}.cnf.xml") or b"")
    assert [s.port for s in cfg.tvs_servers] == [40001]
    assert [s.port for s in cfg.capf_servers] == [40002]
    assert lab.get(f"SEP{MAC}.cnf.xml.enc.sgn") is None


def test_default_config_and_static_files(lab: LabCluster) -> None:
    default = lab.get("XmlDefault.cnf.xml")
    assert default is not None and config.parse(default).device_name is None
    sf = signed.parse(lab.get("XmlDefault.cnf.xml.sgn") or b"")
    signed.verify(sf, lab.callmanager().cert)
    assert sf.body == default
    signed.verify(signed.parse(lab.get("g3-tones.xml.sgn") or b""), lab.callmanager().cert)
    lab.set_sbd(False)
    assert lab.get("XmlDefault.cnf.xml.sgn") is None and lab.get("XmlDefault.cnf.xml") is not None
    lab.set_autoregistration(False)
    assert lab.get("XmlDefault.cnf.xml") is None


def test_files_on_disk_match_memory_and_open(tmp_path: Path) -> None:
    lab = _init(tmp_path / "lab")  # made here, not a copy opened: init's files in memory, against the disk
    lab.add_phone(MAC)
    on_disk = {p.name: p.read_bytes() for p in (lab.root / "tftp").iterdir()}
    assert on_disk == dict(lab.files())
    again = LabCluster.open(lab.root)
    assert dict(again.files()) == dict(lab.files())
    assert again.generation == lab.generation
    assert again.tvs_lookup(lab.callmanager().der) is not None


def test_open_rejects_non_cluster(tmp_path: Path) -> None:
    with pytest.raises(DecodeError, match="not a lab cluster"):
        LabCluster.open(tmp_path)
    (tmp_path / "cluster.json").write_text("{nope")
    with pytest.raises(DecodeError, match="not JSON"):
        LabCluster.open(tmp_path)


def test_init_refuses_existing_and_bad_options(tmp_path: Path) -> None:
    _init(tmp_path / "a")
    with pytest.raises(PhoneEmuError, match="already"):
        _init(tmp_path / "a")
    with pytest.raises(EncodeError):
        _init(tmp_path / "b", nodes=0)
    with pytest.raises(EncodeError):
        LabCluster.init(tmp_path / "c", key_spec="ec-p256")


def test_seeded_init_is_deterministic(tmp_path: Path) -> None:
    a = _init(tmp_path / "a", seed=11)
    b = _init(tmp_path / "b", seed=11)
    for c in (a, b):
        c.add_phone(MAC, encrypt="pki")
    # every file but the PKI .enc.sgn (RSA PKCS#1 v1.5 wrap padding is random by construction)
    enc = f"SEP{MAC}.cnf.xml.enc.sgn"
    same_a = {k: v for k, v in a.files().items() if k != enc}
    assert same_a == {k: v for k, v in b.files().items() if k != enc}
    assert set(a.files()) == set(b.files())
    key_a, key_b = (tmp_path / d / "private/itlrecovery.key" for d in ("a", "b"))
    assert key_a.read_bytes() == key_b.read_bytes()
    d = _init(tmp_path / "d", seed=12)
    assert d.get("ITLFile.tlv") != a.get("ITLFile.tlv")


def test_private_keys_mode_0600(lab: LabCluster) -> None:
    for p in [*(lab.root / "private").iterdir(), lab.phone_dir(MAC) / "mic.key"]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


def test_itlrecovery_years(tmp_path: Path) -> None:
    fresh = _init(tmp_path / "f")
    up = _init(tmp_path / "u", upgraded=True)
    for c, years in ((fresh, 20), (up, 5)):
        cert = c.identity("itlrecovery").cert
        assert cert.not_valid_after_utc.year - cert.not_valid_before_utc.year == years
    assert up.summary()["itlrecovery_years"] == 5 and up.summary()["itlrecovery_regenerate_years"] == 20
    # seed: "when you regenerate an ITLRecovery certificate ... the validity of ITLRecovery gets extended
    # to 20 years" — on an upgraded cluster too (it used to stay 5)
    up.regenerate("itlrecovery")
    assert up.itlrecovery_validity_years() == 20 and up.summary()["itlrecovery_years"] == 20
    up.set_upgraded(True)  # marking the cluster upgraded keeps the certificate and the regeneration validity
    assert up.itlrecovery_validity_years() == 20 and up.state.itlrecovery_years == 20
    up.set_upgraded(True, years=10)  # 5/10/15/20 selectable (spec §G.8): from the next regeneration
    assert up.itlrecovery_validity_years() == 20
    up.regenerate("itlrecovery")
    assert up.itlrecovery_validity_years() == 10
    for bad in (0, -3, 100_000):  # 100,000 years would overflow the certificate dates at regeneration
        with pytest.raises(EncodeError, match=r"outside 1\.\.30"):
            up.set_upgraded(True, years=bad)


# --------------------------------------------------------------------------- admin operations
def test_regenerate_callmanager(lab: LabCluster) -> None:
    old = lab.callmanager()
    gen = lab.generation
    lab.regenerate("callmanager", now=NOW + 60)
    new = lab.callmanager()
    assert new.der != old.der and lab.generation == gen + 1
    itl = _tl(lab)
    assert _roles(itl, new) == {Role.SAST, Role.CCM_TFTP} and _roles(itl, old) == set()
    assert _signed_by(itl, lab.identity("itlrecovery"))  # still the anchor phones know
    sgn = signed.parse(lab.get(f"SEP{MAC}.cnf.xml.sgn") or b"")
    signed.verify(sgn, new.cert)
    with pytest.raises(VerificationError):
        signed.verify(sgn, old.cert)
    assert lab.tvs_lookup(new.der) is not None and lab.tvs_lookup(old.der) is None
    assert lab.clock == NOW + 60
    assert LabCluster.open(lab.root).callmanager().der == new.der


def test_regenerate_itlrecovery_needs_tvs(lab: LabCluster) -> None:
    old_itl = _tl(lab)
    lab.regenerate("itlrecovery")
    new_itl = _tl(lab)
    new_rec = lab.identity("itlrecovery")
    assert new_itl.verify_self().certificate == new_rec.der
    # the phone's installed ITL does not hold the new signer (spec §G.3 step 3 fails)...
    assert all(r.serial != new_itl.header.signer.serial for r in old_itl.records)
    # ...but TVS (QUERY by issuer + serial) vouches for it with role SAST (step 4)
    signer = new_itl.header.signer
    entry = lab.tvs_lookup((signer.issuer, signer.serial, signer.name))
    assert entry is not None and Role.SAST in entry.roles and entry.cert_der == new_rec.der


@pytest.mark.parametrize("name, role", [("tvs", Role.TVS), ("capf", Role.CAPF)])
def test_regenerate_tvs_capf(lab: LabCluster, name: str, role: int) -> None:
    old = lab.identity(name)
    lab.regenerate(name)
    assert _roles(_tl(lab), lab.identity(name)) == {role}
    assert _roles(_tl(lab), old) == set()


def test_regenerate_rejects_unknown(lab: LabCluster) -> None:
    with pytest.raises(EncodeError):
        lab.regenerate("mfgca")
    with pytest.raises(EncodeError):
        lab.regenerate("tvs-2")  # single node


def test_mixed_mode_on_off(lab: LabCluster) -> None:
    with pytest.raises(PhoneEmuError):
        lab.set_mixed_mode(False)
    lab.set_mixed_mode(True)
    ctl = _tl(lab, "CTLFile.tlv")
    assert ctl.kind == "CTL"
    assert ctl.verify_self().certificate == lab.identity("itlrecovery").der
    assert [r.role for r in ctl.records] == [Role.SAST, Role.SAST, Role.CCM_TFTP, Role.CAPF]
    assert _roles(ctl, lab.callmanager()) == {Role.SAST, Role.CCM_TFTP}
    assert not any(r.role == Role.TVS for r in ctl.records)
    assert all(r.signature is not None for r in ctl.records)
    assert lab.get(f"CTLSEP{MAC}.tlv") == lab.get("CTLFile.tlv")
    lab.set_mixed_mode(False)
    ctl = _tl(lab, "CTLFile.tlv")  # the CTL stays (non-secure)...
    ccm = [r for r in ctl.records if r.role == Role.CCM_TFTP]
    assert len(ccm) == 1 and ccm[0].is_empty  # ...with its CCM+TFTP records emptied
    assert ccm[0].dns_name == "127.0.0.1" and ccm[0].ip_address == bytes([127, 0, 0, 1])
    # RECORD_LENGTH + DNS_NAME "127.0.0.1\0" + ROLE + IP_ADDRESS (33 bytes for a 12-char IP, spec §B.7)
    assert len(trustlist.build_record(ccm[0])) == 5 + (3 + 10) + 5 + (3 + 4)
    capf = next(r for r in ctl.records if r.role == Role.CAPF)
    assert capf.signature is None and capf.certificate == lab.identity("capf").der
    ctl.verify_self()


def test_itl_reset_localkey_until_tftp_restart(lab: LabCluster) -> None:
    lab.itl_reset("localkey")
    itl = _tl(lab)
    assert _signed_by(itl, lab.callmanager())
    assert itl.verify_self().role == Role.SAST
    lab.restart_tftp()
    assert _signed_by(_tl(lab), lab.identity("itlrecovery"))


def test_itl_reset_remotekey_restores_exported_recovery_key(lab: LabCluster, tmp_path: Path) -> None:
    exported = lab.identity("itlrecovery")
    key_file = tmp_path / "ITLRecovery.pem"
    lab.export_itlrecovery(key_file)
    lab.regenerate("itlrecovery")
    assert lab.identity("itlrecovery").der != exported.der
    with pytest.raises(EncodeError):
        lab.itl_reset("remotekey")
    lab.itl_reset("remotekey", key_file=key_file)
    assert lab.identity("itlrecovery").der == exported.der
    itl = _tl(lab)
    assert _signed_by(itl, lab.callmanager())
    assert _roles(itl, exported) == {Role.SAST}
    lab.restart_tftp()
    assert _signed_by(_tl(lab), exported)
    assert LabCluster.open(lab.root).identity("itlrecovery").der == exported.der


def test_import_itlrecovery(lab: LabCluster, tmp_path: Path) -> None:
    other = _init(tmp_path / "other", seed=77, name="other")
    other.export_itlrecovery(tmp_path / "k.pem")
    lab.import_itlrecovery(tmp_path / "k.pem")
    assert _signed_by(_tl(lab), other.identity("itlrecovery"))


def test_ctl_reset_and_update(lab: LabCluster) -> None:
    with pytest.raises(PhoneEmuError):
        lab.ctl_reset("localkey")
    lab.set_mixed_mode(True)
    lab.ctl_reset("localkey")
    ctl = _tl(lab, "CTLFile.tlv")
    assert _signed_by(ctl, lab.callmanager())
    ctl.verify_self()
    assert _signed_by(_tl(lab), lab.identity("itlrecovery"))  # the ITL is untouched
    lab.ctl_update()
    assert _signed_by(_tl(lab, "CTLFile.tlv"), lab.identity("itlrecovery"))


def test_rollback_serves_empty_itl(lab: LabCluster) -> None:
    lab.set_rollback(True)
    itl = _tl(lab)
    assert itl.is_empty
    assert itl.verify_self().certificate == lab.identity("itlrecovery").der  # signer phones already trust
    by_role = {r.role: r for r in itl.records}
    assert by_role[Role.TVS].is_empty and by_role[Role.CCM_TFTP].is_empty
    assert by_role[Role.CAPF].certificate == lab.identity("capf").der  # CAPF intact
    assert lab.get(f"ITLSEP{MAC}.tlv") == lab.get("ITLFile.tlv")
    lab.set_rollback(False)
    assert not _tl(lab).is_empty


def test_add_certs_crosses_64k(lab: LabCluster) -> None:
    lab.add_certs(10)
    itl = _tl(lab)
    assert sum(r.role == Role.TVS for r in itl.records) == 11
    assert lab.tvs_lookup(lab.identity("extra-10").der) is not None
    lab.add_certs(50)
    data = lab.get("ITLFile.tlv") or b""
    assert len(data) > 65536
    with pytest.raises(SizeLimitError):
        trustlist.parse(data)
    big = trustlist.parse(data, limit=1 << 20)
    big.verify_self()
    assert len(big.records) == 5 + 60
    with pytest.raises(EncodeError):
        lab.add_certs(0)
    # back under 64 KB: remove some, then the rest (an oversized-ITL test is undone)
    lab.remove_certs(20)
    assert len(trustlist.parse(lab.get("ITLFile.tlv") or b"", limit=1 << 20).records) == 5 + 40
    assert lab.tvs_lookup(lab.identity("extra-50").der) is None  # TVS no longer knows the removed ones
    lab.apply("remove-certs")
    assert len(_tl(lab).records) == 5 and lab.state.extra_certs == 0
    with pytest.raises(EncodeError, match="no extra certificates"):
        lab.remove_certs()
    lab.add_certs(1)  # the names are reused
    assert sum(r.role == Role.TVS for r in _tl(lab).records) == 2


def test_encryption_pki_wraps_to_mic_then_lsc(lab: LabCluster) -> None:
    lab.set_encryption([MAC], True)
    mic, mic_key = lab.phone_identity(MAC)
    ef = encrypted.parse(lab.get(f"SEP{MAC}.cnf.xml.enc.sgn") or b"")
    encrypted.verify(ef, lab.callmanager().cert)
    full = config.parse(encrypted.decrypt_pki(ef, mic_key))
    assert full.full_config and full.device_name == f"SEP{MAC}"
    stub = config.parse(signed.parse(lab.get(f"SEP{MAC}.cnf.xml.sgn") or b"").body)
    assert stub.is_stub and stub.encr_config
    assert stub.cert_hash == hashlib.md5(certs.cert_der(mic)).hexdigest()
    assert lab.get(f"SEP{MAC}.cnf.xml") == signed.parse(lab.get(f"SEP{MAC}.cnf.xml.sgn") or b"").body
    # CAPF issues an LSC: configs are now wrapped to it
    lsc_key = keys.generate_key(KeySpec(kind="rsa", bits=1024), unsafe_seed="lsc-key")
    lsc = certs.load_cert_der(lab.issue_lsc(f"SEP{MAC}", keys.public_key_spki_der(lsc_key.public_key())))
    lab.record_lsc(MAC, lsc)
    ef = encrypted.parse(lab.get(f"SEP{MAC}.cnf.xml.enc.sgn") or b"")
    assert config.parse(encrypted.decrypt_pki(ef, lsc_key)).full_config
    stub = config.parse(lab.get(f"SEP{MAC}.cnf.xml") or b"")
    assert stub.cert_hash == hashlib.md5(certs.cert_der(lsc)).hexdigest()
    lab.set_encryption([MAC], False)
    assert lab.get(f"SEP{MAC}.cnf.xml.enc.sgn") is None
    assert config.parse(lab.get(f"SEP{MAC}.cnf.xml") or b"").full_config


def test_encryption_symmetric(lab: LabCluster) -> None:
    key_hex = "00112233445566778899aabbccddeeff"
    with pytest.raises(EncodeError):
        lab.set_encryption([MAC], True, mode="symmetric")
    lab.set_encryption([MAC], True, mode="symmetric", symmetric_key=key_hex)
    ef = encrypted.parse(lab.get(f"SEP{MAC}.cnf.xml.enc.sgn") or b"")
    assert config.parse(encrypted.decrypt_symmetric(ef, bytes.fromhex(key_hex))).device_name == f"SEP{MAC}"
    assert lab.get(f"SEP{MAC}.cnf.xml.sgn") is None


def test_signature_algorithm(lab: LabCluster) -> None:
    assert _tl(lab).header.hash_alg == 1
    lab.set_signature_algorithm("sha512")
    assert _tl(lab).header.hash_alg == 3
    sgn = signed.parse(lab.get(f"SEP{MAC}.cnf.xml.sgn") or b"")
    assert sgn.header.hash_alg == 3
    signed.verify(sgn, lab.callmanager().cert)
    with pytest.raises(EncodeError):
        lab.set_signature_algorithm("md5")


def test_exchange_certificates(tmp_path: Path) -> None:
    a = _init(tmp_path / "a", seed=21, name="alpha")
    b = _init(tmp_path / "b", seed=22, name="beta")
    assert a.tvs_lookup(b.callmanager().der) is None
    a.exchange_certificates(b)
    for me, peer in ((a, b), (b, a)):
        for ident in (peer.callmanager(), peer.identity("itlrecovery")):
            entry = me.tvs_lookup(ident.der)
            assert entry is not None and set(entry.roles) == {Role.SAST, Role.TFTP}
    # persisted on both sides; repeating adds nothing
    assert LabCluster.open(b.root).tvs_lookup(a.callmanager().der) is not None
    a.exchange_certificates(b.root)
    assert len(a.state.tvs_trust) == 2
    with pytest.raises(PhoneEmuError):
        a.exchange_certificates(a)


def test_tamper_until_next_rebuild(lab: LabCluster) -> None:
    good = lab.get("ITLFile.tlv") or b""
    off = lab.tamper("ITLFile.tlv", offset=200)
    bad = lab.get("ITLFile.tlv") or b""
    assert off == 200 and bad[200] == good[200] ^ 0xFF
    assert lab.get(f"ITLSEP{MAC}.tlv") == bad
    with pytest.raises((VerificationError, DecodeError)):
        trustlist.parse(bad).verify_self()
    assert LabCluster.open(lab.root).get("ITLFile.tlv") == bad  # persists until a rebuild
    lab.tamper(f"SEP{MAC}.cnf.xml.sgn")  # default: last byte
    with pytest.raises(VerificationError):
        signed.verify(signed.parse(lab.get(f"SEP{MAC}.cnf.xml.sgn") or b""), lab.callmanager().cert)
    lab.restart_tftp()  # any state change rebuilds
    assert lab.get("ITLFile.tlv") == good
    assert lab.state.tampered == {}
    with pytest.raises(PhoneEmuError):
        lab.tamper("missing.xml")
    with pytest.raises(EncodeError):
        lab.tamper("ITLFile.tlv", offset=10**6)


def test_tvs_lookup_verify_and_query(lab: LabCluster) -> None:
    tvs = lab.tvs_identity()
    entry = lab.tvs_lookup(tvs.der)
    assert entry is not None and entry.roles == (Role.TVS,) and entry.ttl == 86400
    cert = tvs.cert
    query = (certs.dn_text(cert.issuer), certs.serial_bytes(cert.serial_number), "")
    assert lab.tvs_lookup(query) == entry
    rfc_style = (cert.issuer.rfc4514_string(), certs.serial_bytes(cert.serial_number),
                 certs.dn_text(cert.subject))
    assert lab.tvs_lookup(rfc_style) == entry
    assert lab.tvs_lookup((certs.dn_text(cert.issuer), b"\x01", "")) is None
    assert lab.tvs_lookup(b"not a cert") is None
    mic, _ = lab.phone_identity(MAC)
    assert lab.tvs_lookup(certs.cert_der(mic)) is None
    lab.set_tvs_ttl(600)
    assert (lab.tvs_lookup(tvs.der) or entry).ttl == 600


def test_firmware_loads(lab: LabCluster) -> None:
    lab.set_load("sip88xx.14-2-1-0001-1")
    name = firmware.loads_file_name("sip88xx.14-2-1-0001-1")
    img = firmware.parse(lab.get(name) or b"")
    assert img.load_name == "sip88xx.14-2-1-0001-1"
    firmware.verify(img, lab.identity("imagesigning").cert)
    assert config.parse(lab.get(f"SEP{MAC}.cnf.xml") or b"").load_information == "sip88xx.14-2-1-0001-1"
    lab.set_load("sip88xx.bad", macs=[MAC], tamper=True)
    assert config.parse(lab.get(f"SEP{MAC}.cnf.xml") or b"").load_information == "sip88xx.bad"
    with pytest.raises((VerificationError, DecodeError)):
        firmware.verify(firmware.parse(lab.get("sip88xx.bad.loads") or b""),
                        lab.identity("imagesigning").cert)


def test_capf_pending_and_device_certs(lab: LabCluster) -> None:
    assert lab.capf_pending(MAC) is None
    lab.set_capf([MAC], "install", auth_mode=1, auth_string="1234", key="ec-p256")
    pending = lab.capf_pending(MAC)
    assert pending is not None and pending.operation == "install" and pending.auth_string == "1234"
    assert pending.key_type == "ec" and pending.curve == "p256"
    assert config.parse(lab.get(f"SEP{MAC}.cnf.xml") or b"").capf_auth_mode == 1
    mic, _ = lab.phone_identity(MAC)
    lab.verify_device_cert(mic, 2)
    with pytest.raises(VerificationError):
        lab.verify_device_cert(mic, 1)  # a MIC is not an LSC
    with pytest.raises(VerificationError):
        lab.verify_device_cert(lab.callmanager().cert, 2)
    lsc_key = keys.generate_key(KeySpec(kind="ec", curve="p256"), unsafe_seed="ec-lsc")
    lsc = certs.load_cert_der(lab.issue_lsc(f"SEP{MAC}", lsc_key.public_key()))
    lab.verify_device_cert(lsc, 1)
    lab.record_lsc(MAC, lsc)
    assert lab.capf_pending(MAC) is None and lab.phone_lsc(MAC) == lsc
    lab.set_capf([MAC], "delete")
    lab.capf_done(MAC)
    assert lab.phone_lsc(MAC) is None and lab.capf_pending(MAC) is None
    with pytest.raises(EncodeError):
        lab.set_capf([MAC], "install", auth_mode=1, auth_string="12")


def test_capf_outcome_keeps_a_pending_operation_set_after_the_session_began(lab: LabCluster) -> None:
    """``operation``: what the CAPF session ran. Its outcome is recorded (the phone has, or no longer has,
    the LSC); the pending operation is cleared only while it is still that one."""
    lsc_key = keys.generate_key(KeySpec(kind="ec", curve="p256"), unsafe_seed="ec-lsc")
    lsc = certs.load_cert_der(lab.issue_lsc(f"SEP{MAC}", lsc_key.public_key()))
    lab.set_capf([MAC], "delete")  # set while an install ran
    lab.record_lsc(MAC, lsc, operation="install")
    assert lab.phone_lsc(MAC) == lsc and lab.state.phones[MAC].capf_operation == "delete"
    assert lab.state.log[-1].args["pending"] == "delete"
    lab.set_capf([MAC], "install", auth_mode=2)  # set while the delete ran
    lab.capf_done(MAC, operation="delete")
    assert lab.phone_lsc(MAC) is None and not lab.state.phones[MAC].has_lsc  # the phone deleted it
    pending = lab.capf_pending(MAC)
    assert pending is not None and pending.operation == "install"
    lab.capf_done(MAC, operation="fetch")  # a fetch outcome: nothing to forget, install still pending
    assert lab.state.phones[MAC].capf_operation == "install"
    lab.record_lsc(MAC, lsc, operation="install")
    assert lab.capf_pending(MAC) is None


def test_add_phone_options_and_update(lab: LabCluster) -> None:
    lab.add_phone("00:11:22:33:44:aa", model="7841", capf_operation="install", auth_string="9876")
    ph = lab.state.phones[MAC2]
    assert ph.model == "7841" and ph.capf_operation == "install" and ph.capf_auth_mode == 1
    mic_before = lab.phone_identity(MAC2)[0]
    lab.add_phone(MAC2, encrypt="pki")  # update keeps the MIC
    assert lab.phone_identity(MAC2)[0] == mic_before
    assert lab.get(f"SEP{MAC2}.cnf.xml.enc.sgn") is not None
    with pytest.raises(EncodeError):
        lab.add_phone("xyz")
    with pytest.raises(PhoneEmuError):
        lab.phone_identity("AABBCCDDEEFF")


def test_adding_phones_rebuilds_only_their_files(lab: LabCluster) -> None:
    before = dict(lab.files())
    lab.add_phones([MAC2, "0011223344BB"], model="CP-7841", capf={"operation": "install",
                                                                  "auth_mode": "null-string"}, now=NOW + 99)
    after = lab.files()
    for name, data in before.items():
        assert after[name] == data, name  # nothing else re-signed (spec §C.1)
    assert {f"SEP{MAC2}.cnf.xml.sgn", "ITLSEP0011223344BB.tlv"} <= set(after)
    assert signed.parse(after[f"SEP{MAC2}.cnf.xml.sgn"]).header.timestamp == NOW + 99
    ph = lab.state.phones[MAC2]
    assert ph.model == "7841" and ph.capf_operation == "install" and ph.capf_auth_mode == 2
    assert [e.op for e in lab.state.log][-1] == "phone-add"
    on_disk = {p.name: p.read_bytes() for p in (lab.root / "tftp").iterdir()}
    assert on_disk == dict(after)
    lab.set_encryption([MAC2], True)
    lab.set_encryption([MAC2], False)
    assert not (lab.root / "tftp" / f"SEP{MAC2}.cnf.xml.enc.sgn").exists()
    with pytest.raises(EncodeError):
        lab.add_phone(MAC2, capf_auth_mode="sometimes")
    assert lab.state.phones[MAC2].capf_auth_mode == 2  # a refused update changes nothing


def test_apply_dispatcher_and_log(lab: LabCluster, tmp_path: Path) -> None:
    lab.apply("mixed-mode", now=NOW + 10, on=True)
    lab.apply("rollback", on="on")
    lab.apply("signature-algorithm", hash="sha512")
    lab.apply("encryption", macs=[MAC], on=True, mode="pki")
    lab.apply("add-certs", count=2)
    lab.apply("regenerate", cert="tvs")
    lab.apply("itl-reset", key="localkey")
    lab.apply("restart-tftp")
    lab.apply("ctl-reset", key="localkey")
    lab.apply("ctl-update")
    lab.apply("restart-tvs")
    lab.apply("tvs-ttl", seconds=120)
    lab.apply("autoregistration", on=False)
    lab.apply("load", name="sip78xx.1", macs=[MAC])
    lab.apply("capf", macs=[MAC], operation="fetch")
    lab.apply("tamper", file="ITLFile.tlv", offset=5)
    other = _init(tmp_path / "peer", seed=9, name="peer")
    lab.apply("exchange", other=other)
    ops = [e.op for e in lab.state.log]
    assert ops[0] == "init" and "tamper" in ops and ops[-1] == "exchange"
    assert lab.state.log[1].time == NOW and lab.state.log[2].time == NOW + 10
    with pytest.raises(EncodeError, match="unknown lab operation"):
        lab.apply("format-disk")
    with pytest.raises(EncodeError, match="missing argument"):
        lab.apply("regenerate")
    with pytest.raises(EncodeError):
        lab.apply("rollback", on="maybe")


def test_clock_advance(lab: LabCluster) -> None:
    lab.advance_clock(3600)
    assert lab.clock == NOW + 3600
    lab.restart_tftp()  # the ITL is not modified: it keeps its bytes, hence its signing time
    assert _tl(lab).header.timestamp == NOW
    lab.regenerate("tvs")  # a modified ITL is signed at the lab clock
    assert _tl(lab).header.timestamp == NOW + 3600
    with pytest.raises(EncodeError):
        lab.advance_clock(-1)


def test_reload_if_changed(lab: LabCluster) -> None:
    server_view = LabCluster.open(lab.root)
    assert not server_view.reload_if_changed()
    lab.regenerate("callmanager")
    assert server_view.reload_if_changed()
    assert not server_view.reload_if_changed()
    assert server_view.get("ITLFile.tlv") == lab.get("ITLFile.tlv")


def test_an_unloadable_saved_state_is_reported_once(lab: LabCluster) -> None:
    """A broken cluster.json raises once; the old files stay served; a later good save loads."""
    server_view = LabCluster.open(lab.root)
    served = server_view.get("ITLFile.tlv")
    state = lab.root / "cluster.json"
    good = state.read_bytes()
    broken = lab.root / "broken.json"
    broken.write_text("{ not json")
    broken.replace(state)  # a new inode, like an atomic save
    with pytest.raises(PhoneEmuError):
        server_view.reload_if_changed()
    assert not server_view.reload_if_changed()  # not retried until the file changes again
    assert server_view.get("ITLFile.tlv") == served
    state.write_bytes(good)
    lab.regenerate("callmanager")
    assert server_view.reload_if_changed()
    assert server_view.get("ITLFile.tlv") == lab.get("ITLFile.tlv") != served


@pytest.mark.parametrize(("key", "value", "where"), [
    ("clock", None, "clock"), ("clock", "x", "clock"), ("clock", 2**70, "clock"), ("clock", 1.5, "clock"),
    ("generation", None, "generation"), ("hash_alg", None, "hash_alg"), ("host", -1, "host"),
    ("key_spec", None, "key_spec"), ("nodes", None, "nodes"), ("extra_certs", True, "extra_certs"),
    ("ports", None, "ports"), ("ports", "x", "ports"), ("ports", {}, "ports"),
    ("ports", {"tftp": "69"}, "ports"),
    ("ports", {"tftp": 69, "http": 6970, "tvs": 2445, "capf": 99999}, "ports"),
    ("loads", None, "loads"), ("tampered", [], "tampered"), ("stopped", [1], "stopped"),
    ("phones", {MAC: {"mac": MAC, "digest_user": -1}}, f"phones.{MAC}:digest_user"),
    ("log", [{"time": "x", "generation": 1, "op": "init"}], "log[0]:time"),
    # in range too, not only of the type (a security_mode 7 was a KeyError out of lab show)
    ("phones", {MAC: {"mac": MAC, "security_mode": 7}}, f"phones.{MAC}:security_mode"),
    ("phones", {MAC: {"mac": MAC, "security_mode": -1}}, f"phones.{MAC}:security_mode"),
    ("phones", {MAC: {"mac": MAC, "capf_auth_mode": 5}}, f"phones.{MAC}:capf_auth_mode"),
    ("phones", {MAC: {"mac": MAC, "encrypt": "aes"}}, f"phones.{MAC}:encrypt"),
    ("phones", {MAC: {"mac": MAC, "capf_operation": "x"}}, f"phones.{MAC}:capf_operation"),
    ("phones", {MAC: {"mac": MAC, "symmetric_key": "zz"}}, f"phones.{MAC}:symmetric_key"),
    ("phones", {MAC: {"mac": MAC, "lsc_key": "rsa1"}}, f"phones.{MAC}:lsc_key"),
    ("phones", {MAC: {"mac": "nope"}}, f"phones.{MAC}:mac"),
    ("hash_alg", 2, "hash_alg"), ("nodes", 0, "nodes"), ("nodes", 9, "nodes"), ("tvs_ttl", 0, "tvs_ttl"),
    ("itlrecovery_years", 99, "itlrecovery_years"), ("key_spec", "rsa7", "key_spec"),
    ("https_key", "dsa", "https_key"), ("itl_signer", "x", "itl_signer"), ("ctl_signer", "x", "ctl_signer"),
    ("extra_certs", -1, "extra_certs"),
])
def test_a_damaged_state_names_the_key(key: str, value: object, where: str) -> None:
    """Were TypeError / AttributeError / KeyError / OverflowError tracebacks out of every lab command:
    cluster.json was checked for unknown keys only, not for the type of each value."""
    import json

    from phoneemu.lab.state import ClusterState, PhoneState

    good = ClusterState(phones={MAC: PhoneState(mac=MAC)}, clock=NOW)
    assert ClusterState.from_json(good.to_json()) == good
    doc = json.loads(good.to_json())
    doc[key] = value
    with pytest.raises(DecodeError) as info:
        ClusterState.from_json(json.dumps(doc))
    assert info.value.path == f"cluster.json:{where}", str(info.value)


def test_a_config_is_re_signed_only_when_its_data_changes(lab: LabCluster) -> None:
    """A cluster-wide operation that leaves a phone's config as it was (a TVS TTL, on a later clock) keeps
    its signed file byte for byte (spec §C.1; was re-signed with the new time, every phone of the lab);
    a change of its data re-signs it; a tampered copy is signed anew by the next rebuild."""
    name = f"SEP{MAC}.cnf.xml.sgn"
    before = lab.files()[name]
    lab.set_tvs_ttl(1234, now=NOW + 3600)
    assert lab.files()[name] == before and LabCluster.open(lab.root).files()[name] == before
    lab.set_security_mode([MAC], "authenticated", now=NOW + 7200)
    changed = lab.files()[name]
    assert changed != before and signed.parse(changed).header.timestamp == NOW + 7200
    lab.tamper(name, now=NOW + 7200)
    lab.set_tvs_ttl(4321, now=NOW + 7200)
    assert lab.files()[name] == changed  # the same data and time: the same bytes as before the flip
    reopened = LabCluster.open(lab.root)
    reopened.set_tvs_ttl(99, now=NOW + 9000)  # another process: compares with the files it read
    assert reopened.files()[name] == changed


def test_state_json_puts_each_phone_and_log_entry_on_its_own_line() -> None:
    """Our layout (lab/state.py): what ``asdict`` gives, one key per line, a phone or a log entry per
    line (``grep MAC cluster.json``), written by the C encoder (was an indented dump, 3x slower)."""
    import json
    from dataclasses import asdict

    from phoneemu.lab.state import ClusterState, LogEntry, PhoneState, TrustedCert

    macs = [f"0A00000000{i:02X}" for i in range(3)]
    st = ClusterState(phones={m: PhoneState(mac=m, digest_user="a\"b\u00e9") for m in macs}, clock=NOW,
                      log=[LogEntry(time=NOW, generation=i, op="x", args={"k": [1, None]}) for i in range(2)],
                      tvs_trust=[TrustedCert(pem="-----\n", roles=[0])])
    text = st.to_json()
    assert json.loads(text) == asdict(st) and ClusterState.from_json(text) == st
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}" and text.endswith("}\n")
    for m in macs:
        (line,) = [ln for ln in lines if m in ln]
        assert json.loads(line.split(": ", 1)[1].rstrip(",")) == asdict(st.phones[m])
    assert sum('"op": "x"' in ln for ln in lines) == 2
    assert '  "ports": {"capf": 3804' in text and '  "loads": {}' in text and '  "log": [' in text
    empty = ClusterState()
    assert json.loads(empty.to_json()) == asdict(empty)


def test_a_cluster_json_nested_too_deeply_is_not_json() -> None:
    """Was a RecursionError traceback out of every lab command."""
    from phoneemu.lab.state import ClusterState

    for text in ("[" * 4000, '{"version": 1, "log": [{"args": ' + '{"a": ' * 3000):
        with pytest.raises(DecodeError, match="not JSON: nested too deeply") as info:
            ClusterState.from_json(text)
        assert info.value.path == "cluster.json"


@pytest.mark.parametrize(("edit", "words"), [
    ({"security_mode": 7}, f"cluster.json:phones.{MAC}:security_mode: 7 is outside 1..3"),
    ({"capf_auth_mode": -1}, f"cluster.json:phones.{MAC}:capf_auth_mode: -1 is outside 0..4"),
    (None, "cluster.json: not JSON: nested too deeply"),
])
def test_lab_commands_on_a_state_out_of_range_say_where(lab: LabCluster, capsys: pytest.CaptureFixture[str],
                                                         edit: dict[str, int] | None, words: str) -> None:
    """``lab show`` died with KeyError (security_mode 7) or RecursionError; ``mixed-mode`` and ``phone add``
    took the state as it was."""
    import json

    from phoneemu.cli import main

    state = lab.root / "cluster.json"
    if edit is None:
        state.write_text("[" * 4000)
    else:
        doc = json.loads(state.read_text())
        doc["phones"].setdefault(MAC, {"mac": MAC}).update(edit)
        state.write_text(json.dumps(doc))
    for argv in (["lab", "show", str(lab.root)], ["lab", "mixed-mode", str(lab.root), "on"],
                 ["lab", "phone", "add", str(lab.root), "--mac", "0A0000000077"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err and "Traceback" not in err, (argv, err)


def test_lab_show_of_a_damaged_state_is_one_line(lab: LabCluster, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from phoneemu.cli import main

    state = lab.root / "cluster.json"
    doc = json.loads(state.read_text())
    doc["clock"] = None
    state.write_text(json.dumps(doc))
    assert main(["lab", "show", str(lab.root)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cluster.json:clock: null is not of type int" in err, err


def test_show_itl_ctl(lab: LabCluster) -> None:
    text = lab.show_itl()
    assert "The checksum value of the ITL file:" in text
    assert lab.summary()["itl_md5"] in text
    assert "This etoken was used to sign the ITL file." in text
    assert "This etoken was not used to sign the ITL file." in text
    assert "verified successfully" in text
    assert "CTL File not found" in lab.show_ctl()
    lab.set_mixed_mode(True)
    assert "CCM+TFTP" in lab.show_ctl()


# --------------------------------------------------------------------------- show itl checksums
def test_checksums_match_show_itl_and_change_only_with_the_itl(lab: LabCluster) -> None:
    sums = lab.checksums("ITL")
    assert sums is not None and lab.checksums("CTL") is None
    itl = lab.get("ITLFile.tlv")
    assert itl is not None and sums["sha1"] == hashlib.sha1(itl).hexdigest()
    shown = lab.show_itl()
    assert f"{sums['md5']}(MD5)" in shown and f"{sums['sha1']}(SHA1)" in shown
    # a later rebuild that does not modify the ITL keeps it byte for byte (seed "Initial Trust List")
    lab.restart_tvs(now=NOW + 7200)
    lab.set_encryption([MAC], True, now=NOW + 7300)
    assert lab.get("ITLFile.tlv") == itl and lab.get(f"ITLSEP{MAC}.tlv") == itl
    assert lab.checksums("ITL") == sums
    lab.regenerate("tvs", now=NOW + 7400)
    changed = lab.checksums("ITL")
    assert changed is not None and changed["sha1"] != sums["sha1"]
    assert lab.get(f"ITLSEP{MAC}.tlv") == lab.get("ITLFile.tlv")


def test_tampered_itl_is_rebuilt_not_kept(lab: LabCluster) -> None:
    itl = lab.get("ITLFile.tlv")
    lab.tamper("ITLFile.tlv")
    tampered = lab.get("ITLFile.tlv")
    lab.restart_tvs(now=NOW + 60)
    rebuilt = lab.get("ITLFile.tlv")
    assert rebuilt is not None and rebuilt not in (tampered, itl)  # re-signed, never the tampered copy
    trustlist.parse(rebuilt).verify_self()


# --------------------------------------------------------------------------- nodes
def test_add_and_remove_node(lab: LabCluster) -> None:
    lab.add_node(now=NOW + 10)
    assert lab.state.nodes == 2
    tvs2 = lab.tvs_identity(2)
    itl = _tl(lab)
    assert Role.TVS in _roles(itl, tvs2) and lab.tvs_lookup(tvs2.der) is not None
    # the node's TVS is listed once the servers record its port, in node (priority) order
    cfg = config.parse(lab.get(f"SEP{MAC}.cnf.xml") or b"")
    assert [s.port for s in cfg.tvs_servers] == [2445]
    lab.set_ports(tvs=40001, **{"tvs-2": 40002})
    cfg = config.parse(lab.get(f"SEP{MAC}.cnf.xml") or b"")
    assert [(s.port, s.priority) for s in cfg.tvs_servers] == [(40001, 0), (40002, 1)]
    with pytest.raises(EncodeError):
        lab.set_ports(**{"tvs-3": 40003})  # no third node
    lab.remove_node(now=NOW + 20)
    assert lab.state.nodes == 1 and "tvs-2" not in lab.state.ports
    assert not _roles(_tl(lab), tvs2) and lab.tvs_lookup(tvs2.der) is None
    cfg = config.parse(lab.get(f"SEP{MAC}.cnf.xml") or b"")
    assert [s.port for s in cfg.tvs_servers] == [40001]
    with pytest.raises(PhoneEmuError):
        lab.remove_node()  # never the publisher
    lab.add_node(now=NOW + 30)  # a node added again gets new certificates
    assert lab.tvs_identity(2).der != tvs2.der


def test_eight_nodes_configs_list_at_most_five_tvs(lab: LabCluster) -> None:
    """add-node goes to 8 nodes, a config names at most 5 TVS servers: recording the running TVS
    ports of 8 nodes (lab serve) must not fail to build the configs."""
    for i in range(7):
        lab.add_node(now=NOW + 10 + i)
    with pytest.raises(EncodeError, match="at most 8 nodes"):
        lab.add_node()
    lab.set_ports(tvs=40001, **{f"tvs-{n}": 40000 + n for n in range(2, 9)})
    cfg = config.parse(lab.get(f"SEP{MAC}.cnf.xml") or b"")
    assert [s.port for s in cfg.tvs_servers] == [40001, 40002, 40003, 40004, 40005]
    assert sum(1 for r in _tl(lab).records if r.role == Role.TVS) >= 8


def test_security_mode_in_device_config(lab: LabCluster) -> None:
    assert config.parse(lab.get(f"SEP{MAC}.cnf.xml") or b"").device_security_mode == 1
    lab.set_security_mode([MAC], "encrypted")
    assert config.parse(lab.get(f"SEP{MAC}.cnf.xml") or b"").device_security_mode == 3
    lab.apply("security-mode", macs=[MAC], mode="authenticated")
    assert lab.state.phones[MAC].security_mode == 2
    with pytest.raises(EncodeError):
        lab.set_security_mode([MAC], "paranoid")


def test_pre_8_0_cluster_serves_no_itl_and_unsigned_files(tmp_path: Path) -> None:
    c = _init(tmp_path / "old", pre_8_0=True)
    c.add_phone(MAC)
    names = set(c.files())
    assert "ITLFile.tlv" not in names and c.get(f"ITLSEP{MAC}.tlv") is None
    assert f"SEP{MAC}.cnf.xml" in names and f"SEP{MAC}.cnf.xml.sgn" not in names
    assert "XmlDefault.cnf.xml.sgn" not in names and "g3-tones.xml.sgn" not in names
    assert config.parse(c.get(f"SEP{MAC}.cnf.xml") or b"").tvs_servers == ()
    c.set_mixed_mode(True)  # a pre-8.0 mixed-mode cluster signs its files (CTL, no ITL)
    names = set(c.files())
    assert "CTLFile.tlv" in names and "ITLFile.tlv" not in names and f"SEP{MAC}.cnf.xml.sgn" in names


def test_phone_identity_follows_a_replaced_mic(tmp_path: Path) -> None:
    c = _init(tmp_path / "lab", seed=None)
    c.pki.prepare_mic_keys(2)
    c.add_phones([MAC, MAC2])
    first, first_key = c.phone_identity(MAC)
    assert c.phone_identity(MAC) == (first, first_key)  # cached while mic.key is unchanged
    assert first_key.public_key() != c.phone_identity(MAC2)[1].public_key()  # one key per phone
    other = c.pki.issue_mic(MAC, now=NOW)
    # another process (``lab phone add``) imports a MIC for the phone: the cached one is stale
    LabCluster.open(tmp_path / "lab").add_phone(MAC, mic=other)
    cert, key = c.phone_identity(MAC)
    assert cert == other[0] and key.public_key() == other[1].public_key()


def test_prepare_mic_keys_is_a_no_op_for_seeded_labs(tmp_path: Path) -> None:
    c = _init(tmp_path / "lab", seed=7)
    c.pki.prepare_mic_keys(3)
    c.add_phone(MAC)
    again = _init(tmp_path / "lab2", seed=7)
    again.add_phone(MAC)
    assert c.phone_identity(MAC)[0] == again.phone_identity(MAC)[0]


def test_itl_capf_off_drops_the_capf_record_but_tvs_still_knows_it(lab: LabCluster) -> None:
    """Seed "Initial Trust List": the CAPF certificate "isn't required in the ITL File (TVS can
    authenticate it)" — admin op ``itl-capf``."""
    capf_der = lab.identity("capf").der
    assert Role.CAPF in [r.role for r in _tl(lab).records]
    lab.apply("itl-capf", on=False, now=NOW + 60)
    itl = _tl(lab)
    assert Role.CAPF not in [r.role for r in itl.records]
    assert lab.state.itl_capf is False
    entry = lab.tvs_lookup(capf_der)
    assert entry is not None and Role.CAPF in entry.roles
    lab.apply("itl-capf", on=True, now=NOW + 120)
    assert Role.CAPF in [r.role for r in _tl(lab).records]
    assert LabCluster.open(lab.root).state.itl_capf is True


def test_centralized_tftp_serves_the_home_clusters_device_configs(tmp_path: Path) -> None:
    """Seed "Update ITL File for Cisco Unified IP Phones", spec §G.11: a central TFTP serves the home
    cluster's configuration files as the home cluster signed them, beside its own trust lists."""
    home, central = _init(tmp_path / "home", seed=5), _init(tmp_path / "central", seed=6)
    home.add_phone(MAC)
    name = f"SEP{MAC}.cnf.xml.sgn"
    assert central.get(name) is None
    central.serve_device_files_of(home)
    assert central.get(name) == home.get(name)
    assert central.get(f"ITLSEP{MAC}.tlv") == central.get("ITLFile.tlv") != home.get("ITLFile.tlv")
    assert central.get("SEP001122334499.cnf.xml.sgn") is None  # a device neither cluster knows
    with pytest.raises(EncodeError):
        central.serve_device_files_of(central)


def test_digest_credentials_in_config_in_the_clear_only_unencrypted(lab: LabCluster) -> None:
    """Seed "Digest Authentication": the credentials are in the config the TFTP server offers; an
    encrypted config keeps them out of the clear; "Exclude Digest Credential" leaves them out."""
    lab.add_phone(MAC2, encrypt="pki")
    lab.apply("digest", macs=[MAC, MAC2], user="alice", password="s3cret<&>", now=NOW + 60)
    sgn = lab.get(f"SEP{MAC}.cnf.xml.sgn")
    assert sgn is not None and b"<authName>alice</authName>" in sgn and b"s3cret&lt;&amp;&gt;" in sgn
    served = [v for k, v in lab.files().items() if MAC2 in k and ".cnf.xml" in k]
    assert served and not any(b"s3cret" in v or b"alice" in v for v in served)
    lab.apply("digest", macs=[MAC], user="alice", password="s3cret", exclude=True, now=NOW + 120)
    assert b"alice" not in (lab.get(f"SEP{MAC}.cnf.xml.sgn") or b"")
    with pytest.raises(EncodeError, match="password"):
        lab.apply("digest", macs=[MAC], user="bob", now=NOW + 180)


def test_throw_away_cluster_skips_fsync_and_keeps_key_modes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    c = _init(tmp_path / "scratch", durable=False)
    c.add_phone(MAC)
    c.apply("regenerate", now=NOW, cert="callmanager")
    assert synced == []
    assert stat.S_IMODE(c.pki.key_path("callmanager").stat().st_mode) == 0o600
    assert stat.S_IMODE((c.phone_dir(MAC) / "mic.key").stat().st_mode) == 0o600
    assert LabCluster.open(tmp_path / "scratch", durable=False).pki.durable is False
    _init(tmp_path / "kept")  # the default: keys and certificates survive a crash
    assert synced


def _boom(*_a: object, **_k: object) -> None:
    raise OSError(28, "No space left on device")


def _an_lsc(lab: LabCluster, seed: str) -> x509.Certificate:
    key = keys.generate_key(KeySpec(kind="ec", curve="p256"), unsafe_seed=seed)
    return certs.load_cert_der(lab.issue_lsc(f"SEP{MAC}", key.public_key()))


def test_an_lsc_record_whose_state_save_fails_leaves_the_lab_as_it_was(
        lab: LabCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """The state save fails (full disk, or a kill before it): a reloaded lab records no LSC and
    ``phone_lsc`` agrees with it. Before, ``lsc.pem`` was written first and a reloaded lab held an LSC its
    state did not know (has_lsc False, ``capf-lsc`` not logged)."""
    lab.set_capf([MAC], "install", auth_mode=2)
    first = _an_lsc(lab, "lsc-1")
    monkeypatch.setattr("phoneemu.lab.cluster.save_state", _boom)
    with pytest.raises(OSError):
        lab.record_lsc(MAC, first, operation="install")
    monkeypatch.undo()
    again = LabCluster.open(lab.root)
    assert not again.state.phones[MAC].has_lsc and again.phone_lsc(MAC) is None
    assert again.capf_pending(MAC) is not None  # still pending: the phone's retry installs it
    again.record_lsc(MAC, first, operation="install")
    assert LabCluster.open(lab.root).phone_lsc(MAC) == first


def test_a_second_lsc_record_whose_save_fails_keeps_the_first(
        lab: LabCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = _an_lsc(lab, "lsc-1"), _an_lsc(lab, "lsc-2")
    lab.record_lsc(MAC, first)
    monkeypatch.setattr("phoneemu.lab.cluster.save_state", _boom)
    with pytest.raises(OSError):
        lab.record_lsc(MAC, second)
    monkeypatch.undo()
    again = LabCluster.open(lab.root)
    assert again.state.phones[MAC].has_lsc and again.phone_lsc(MAC) == first


def test_an_lsc_record_killed_after_its_save_is_the_new_lsc(
        lab: LabCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed between the save and the rename of the staged file: the state names the new LSC and
    ``phone_lsc`` (and the encrypted config, wrapped to it) follow the state."""
    first, second = _an_lsc(lab, "lsc-1"), _an_lsc(lab, "lsc-2")
    lab.record_lsc(MAC, first)
    monkeypatch.setattr(LabCluster, "_settle_lsc", lambda _self, _ph: None)
    lab.record_lsc(MAC, second)
    monkeypatch.undo()
    again = LabCluster.open(lab.root)
    assert again.phone_lsc(MAC) == second


def test_a_delete_whose_state_save_fails_keeps_the_lsc(
        lab: LabCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """capf_done after a delete: the save fails, the state still records the LSC and ``lsc.pem`` is still
    there. Before, ``lsc.pem`` was removed first: the reloaded state said has_lsc with no LSC to read."""
    first = _an_lsc(lab, "lsc-1")
    lab.record_lsc(MAC, first)
    lab.set_capf([MAC], "delete")
    monkeypatch.setattr("phoneemu.lab.cluster.save_state", _boom)
    with pytest.raises(OSError):
        lab.capf_done(MAC, operation="delete")
    monkeypatch.undo()
    again = LabCluster.open(lab.root)
    assert again.state.phones[MAC].has_lsc and again.phone_lsc(MAC) == first
    again.capf_done(MAC, operation="delete")
    assert not (lab.phone_dir(MAC) / "lsc.pem").exists()
    assert LabCluster.open(lab.root).phone_lsc(MAC) is None


def test_a_lab_saved_before_lsc_sha256_reads_its_lsc_pem(lab: LabCluster) -> None:
    """A state without ``lsc_sha256`` (saved by an earlier version) and ``has_lsc``: ``lsc.pem`` as it is."""
    first = _an_lsc(lab, "lsc-1")
    lab.record_lsc(MAC, first)
    path = lab.root / "cluster.json"
    path.write_text(path.read_text().replace(f'"lsc_sha256": "{lab.state.phones[MAC].lsc_sha256}"',
                                             '"lsc_sha256": null'))
    again = LabCluster.open(lab.root)
    assert again.state.phones[MAC].lsc_sha256 is None and again.phone_lsc(MAC) == first


def test_an_opened_lab_reads_its_served_files_when_first_used(lab: LabCluster,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """``LabCluster.open`` reads no served file: ``lab show`` (summary, checksums, ``show itl``) reads
    the ITL and CTL alone (a 40,000-phone lab's show read 80,000 files: 16 s cold); serving one reads
    them all, once, as they were written."""
    lab.set_mixed_mode(True, now=NOW)
    written = dict(lab.files())
    reads: list[str] = []
    real = LabCluster._read_served

    def counted(self: LabCluster) -> dict[str, bytes]:
        reads.append("all")
        return real(self)

    monkeypatch.setattr(LabCluster, "_read_served", counted)
    opened = LabCluster.open(lab.root)
    summary = opened.summary()
    assert summary["itl_md5"] == hashlib.md5(written["ITLFile.tlv"], usedforsecurity=False).hexdigest()
    assert summary["ctl_md5"] == hashlib.md5(written["CTLFile.tlv"], usedforsecurity=False).hexdigest()
    assert summary["files"] == len(written)
    assert opened.checksums("ITL") == lab.checksums("ITL") and "ITL Record #:" in opened.show_itl()
    assert reads == []
    assert opened.get(f"SEP{MAC}.cnf.xml.sgn") == written[f"SEP{MAC}.cnf.xml.sgn"]
    assert opened.files() == written and reads == ["all"]


def test_a_phone_level_change_rebuilds_only_that_phones_files(lab: LabCluster) -> None:
    """``lab digest`` changes the named phones' configs only, and ``lab service`` no file: neither
    rebuilds every served file (40,000 phones: tens of seconds each, with the "building the served files
    again" notice); the changed config carries the credentials, the others are the same bytes."""
    other = "0A00000000E1"
    lab.add_phone(other, now=NOW)
    before = {n: lab.get(n) for n in lab.files()}
    rebuilds: list[int] = []
    lab.on_rebuild = rebuilds.append
    lab.set_digest(["00:11:22:33:44:55"], "alice", "pw", now=NOW + 1)  # normalised as usual
    lab.set_service("tvs", False, now=NOW + 2)
    assert rebuilds == []
    changed = {n for n in lab.files() if lab.get(n) != before.get(n)}
    assert changed == {f"SEP{MAC}.cnf.xml", f"SEP{MAC}.cnf.xml.sgn"}
    cfg = config.parse(lab.get(f"SEP{MAC}.cnf.xml") or b"")
    assert config.digest_credentials(cfg) == ("alice", "pw")


def test_a_removed_nodes_stopped_services_go_with_it(lab: LabCluster) -> None:
    """``service tvs-2 stop`` then ``remove-node``: the mark goes with the node — a node added later is a
    new one, its TVS started (lab serve started it and lab show said ``stopped: tvs-2`` at once)."""
    lab.add_node(now=NOW + 10)
    lab.set_service("tvs-2", False, now=NOW + 11)
    lab.set_service("tvs", False, now=NOW + 12)
    assert lab.state.stopped == ["tvs", "tvs-2"]
    lab.remove_node(now=NOW + 20)
    assert lab.state.stopped == ["tvs"]  # the publisher's outage stays
    lab.add_node(now=NOW + 30)
    assert lab.state.stopped == ["tvs"]
