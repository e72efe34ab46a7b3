"""Every §G rule of phoneemu.phone.rules, positive and negative, on real signed files (seeded keys)."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from functools import cache

import pytest
from cryptography import x509

from phoneemu.crypto import certs
from phoneemu.crypto.hashes import HashAlg
from phoneemu.crypto.keys import KeySpec, PrivateKey, generate_key
from phoneemu.errors import VerifyReason
from phoneemu.formats import config as config_fmt
from phoneemu.formats import encrypted, firmware, signed, trustlist
from phoneemu.formats.config import DeviceConfig, Server
from phoneemu.formats.header import FileSigner
from phoneemu.formats.trustlist import Role, TrustRecord
from phoneemu.phone import rules, status
from phoneemu.phone.events import Decision
from phoneemu.phone.profile import PhoneProfile, get_profile, profile_from_dict
from phoneemu.phone.rule_ids import is_known
from phoneemu.phone.store import Credential, InternCache, TrustStore, TvsAnswer, TvsStatus

NOW = 1_800_000_000
DAY = 86400
MAC = "001122334455"
CFG = f"SEP{MAC}.cnf.xml"
P8861 = get_profile("cp-8861")
P7962 = get_profile("cp-7962")
P7940 = get_profile("cp-7940")
PSYM = get_profile("cp-7942-symmetric")


@dataclass(frozen=True)
class Ident:
    key: PrivateKey
    cert: x509.Certificate

    @property
    def signer(self) -> FileSigner:
        return FileSigner(key=self.key, cert=self.cert)

    def record(self, role: int) -> TrustRecord:
        return TrustRecord.from_certificate(self.cert, role, dns_name="cucm", ip="10.0.0.1")


_serial = iter(range(1000, 10**6))


@cache
def ident(name: str, *, spec: str = "rsa1024", before: int = 365, after: int = 3650) -> Ident:
    key = generate_key(KeySpec.parse(spec), unsafe_seed=f"rules-{name}-{spec}")
    t = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    req = certs.CertRequest(subject=f"CN={name};OU=VTG;O=Lab", public_key=key.public_key(),
                            serial=next(_serial), not_before=t - dt.timedelta(days=before),
                            not_after=t + dt.timedelta(days=after))
    return Ident(key=key, cert=certs.issue_certificate(req, issuer_key=key))


def tl(kind: str, signer: Ident, recs: list[TrustRecord], *, hash_alg: int = 1, ts: int = NOW) -> bytes:
    return trustlist.build(kind=kind, records=recs, signer=signer.signer, timestamp=ts,  # type: ignore[arg-type]
                           hash_alg=hash_alg)


def itl_a(*, ts: int = NOW, extra: list[TrustRecord] | None = None) -> bytes:
    rec, cm, tvs = ident("recovery-a"), ident("cm-a"), ident("tvs-a")
    recs = [rec.record(Role.SAST), cm.record(Role.CCM_TFTP), tvs.record(Role.TVS), *(extra or [])]
    return tl("ITL", rec, recs, ts=ts)


def itl_b() -> bytes:
    rec, cm = ident("recovery-b"), ident("cm-b")
    return tl("ITL", rec, [rec.record(Role.SAST), cm.record(Role.CCM_TFTP)])


def ctl_a(*, ts: int = NOW) -> bytes:
    rec, cm, capf = ident("recovery-a"), ident("cm-a"), ident("capf-a")
    recs = [cm.record(Role.SAST), rec.record(Role.SAST), cm.record(Role.CCM_TFTP), capf.record(Role.CAPF)]
    return tl("CTL", cm, recs, ts=ts)


def xml(**kw: object) -> bytes:
    base: dict[str, object] = {"device_name": f"SEP{MAC}",
                               "tvs_servers": (Server(host="127.0.0.1", port=2445, priority=0),)}
    base.update(kw)
    return config_fmt.build(DeviceConfig(**base))  # type: ignore[arg-type]


def sgn(signer: Ident, body: bytes | None = None, *, hash_alg: int = 1) -> bytes:
    return signed.build(body=xml() if body is None else body, filename=CFG + ".sgn", signer=signer.signer,
                        timestamp=NOW, hash_alg=hash_alg)


def tamper(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0x01])


def new_store(profile: PhoneProfile = P8861, *, mic: Ident | None = None) -> TrustStore:
    cred = Credential.of(mic.cert, mic.key) if mic is not None else None
    return TrustStore(profile=profile, mic=cred, intern=InternCache())


def install(store: TrustStore, kind: str, data: bytes, profile: PhoneProfile = P8861) -> Decision:
    d = rules.decide_trust_list(store, data, kind=kind, profile=profile, now=NOW)  # type: ignore[arg-type]
    assert d.accepted, d
    store.apply(d)
    return d


def with_itl_and_config(profile: PhoneProfile = P8861) -> TrustStore:
    """A booted phone: ITL of cluster A (TOFU) and its signed config (TVS servers listed)."""
    s = new_store(profile)
    install(s, "ITL", itl_a(), profile)
    d = rules.decide_config(s, CFG + ".sgn", sgn(ident("cm-a")), profile=profile, now=NOW)
    assert d.accepted, d
    s.apply(d)
    return s


def expect(d: Decision, rule: str, accepted: bool, code: VerifyReason | None = None) -> None:
    assert d.rule == rule, d
    assert d.accepted is accepted, d
    assert d.reason_code == code, d


# --------------------------------------------------------------------------- §G.2 first contact
def test_first_itl_tofu_and_status() -> None:
    s = new_store()
    d = rules.decide_trust_list(s, itl_b(), kind="ITL", profile=P8861, now=NOW)
    expect(d, "G.2-first-itl-tofu", True)
    assert d.status == status.ITL_INSTALLED
    assert s.apply(d) == status.ITL_INSTALLED
    assert s.itl is not None and s.itl_rule == "G.2-first-itl-tofu"


def test_first_ctl_with_an_itl_installed_needs_an_itl_signer() -> None:
    """§G.3 applies "when one is installed": a first CTL is not taken on trust past an ITL (no bypass
    of the ITL lockout by a foreign mixed-mode cluster)."""
    s = new_store()
    install(s, "ITL", itl_a())
    foreign = ident("recovery-b")
    d = rules.decide_trust_list(s, tl("CTL", foreign, [foreign.record(Role.SAST)]), kind="CTL", profile=P8861,
                                now=NOW)
    assert not d.accepted and d.rule != "G.2-first-ctl-tofu"
    assert s.ctl is None
    rec = ident("recovery-a")  # the ITL's SAST (tokenless mixed mode: CTL signed by ITLRecovery)
    mixed_mode_ctl = tl("CTL", rec, [rec.record(Role.SAST)])
    d = rules.decide_trust_list(s, mixed_mode_ctl, kind="CTL", profile=P8861, now=NOW)
    expect(d, "G.3.3-signed-by-itl-sast", True)


def test_first_ctl_tofu_with_no_itl() -> None:
    s = new_store()
    d = rules.decide_trust_list(s, ctl_a(), kind="CTL", profile=P8861, now=NOW)
    expect(d, "G.2-first-ctl-tofu", True)


def test_first_itl_with_ctl_installed_needs_ctl_signer() -> None:
    s = new_store()
    install(s, "CTL", ctl_a())
    expect(rules.decide_trust_list(s, itl_a(), kind="ITL", profile=P8861, now=NOW),
           "G.3.2-signed-by-ctl", True)
    d = rules.decide_trust_list(s, itl_b(), kind="ITL", profile=P8861, now=NOW)
    expect(d, "G.3.5-reject-unknown-signer", False, VerifyReason.UNKNOWN_SIGNER)
    assert d.status == status.TRUST_LIST_UPDATE_FAILED


def test_legacy_phone_ignores_itl() -> None:
    s = new_store(P7940)
    d = rules.decide_trust_list(s, itl_a(), kind="ITL", profile=P7940, now=NOW)
    expect(d, "G.2-legacy-ignores-itl", False)
    assert d.status == status.NO_TRUST_LIST
    s.apply(d)
    assert s.itl is None and not s.locked
    expect(rules.decide_config(s, CFG, xml(), profile=P7940, now=NOW), "G.4-unsigned-no-trust-list", True)


# --------------------------------------------------------------------------- §G.3 updates
def test_update_signed_by_itl_sast() -> None:
    s = new_store()
    install(s, "ITL", itl_a())
    d = rules.decide_trust_list(s, itl_a(ts=NOW + 60), kind="ITL", profile=P8861, now=NOW)
    expect(d, "G.3.3-signed-by-itl-sast", True)
    assert d.status == status.TRUST_LIST_UPDATED and "recovery-a" in (d.signer or "")


def test_update_signed_by_ctl() -> None:
    s = new_store()
    install(s, "CTL", ctl_a())
    expect(rules.decide_trust_list(s, ctl_a(ts=NOW + 1), kind="CTL", profile=P8861, now=NOW),
           "G.3.2-signed-by-ctl", True)


def test_unchanged_file() -> None:
    s = with_itl_and_config()
    s.cache_tvs(rules.query_key(trustlist.parse(itl_b()).header), TvsAnswer(
        cert_der=certs.cert_der(ident("recovery-b").cert), roles=frozenset({0})), NOW)
    d = rules.decide_trust_list(s, itl_a(), kind="ITL", profile=P8861, now=NOW)
    expect(d, "G.3-unchanged", True)
    s.apply(d)
    assert s.tvs_cache_size == 1  # nothing installed, cache kept


def test_tampered_trust_list() -> None:
    s = new_store()
    install(s, "ITL", itl_a())
    d = rules.decide_trust_list(s, tamper(itl_a(ts=NOW + 5)), kind="ITL", profile=P8861, now=NOW)
    expect(d, "G.3-bad-signature", False, VerifyReason.BAD_SIGNATURE)
    s.apply(d)
    assert s.locked and s.itl is not None and s.itl.raw == itl_a()  # old file kept


def test_unknown_signer_locks_phone() -> None:
    s = new_store()
    install(s, "ITL", itl_a())
    d = rules.decide_trust_list(s, itl_b(), kind="ITL", profile=P8861, now=NOW)
    expect(d, "G.3.5-reject-unknown-signer", False, VerifyReason.UNKNOWN_SIGNER)
    s.apply(d)
    assert s.locked
    expect(rules.decide_config(s, CFG + ".sgn", sgn(ident("cm-a")), profile=P8861, now=NOW),
           "G.3.5-locked-ignores-config", False, VerifyReason.UNKNOWN_SIGNER)


def test_signer_with_wrong_role_in_itl() -> None:
    s = new_store()
    install(s, "ITL", itl_a())  # cm-a is CCM+TFTP only
    cm = ident("cm-a")
    d = rules.decide_trust_list(s, tl("ITL", cm, [cm.record(Role.SAST)]), kind="ITL", profile=P8861, now=NOW)
    expect(d, "G.3.5-reject-unknown-signer", False, VerifyReason.WRONG_ROLE)


def test_itl_reset_signed_by_callmanager_sast() -> None:
    """§G.7: the ITL temporarily signed by the CallManager key is trusted via its SAST record."""
    rec, cm = ident("recovery-a"), ident("cm-a")
    current = tl("ITL", rec, [rec.record(Role.SAST), cm.record(Role.SAST), cm.record(Role.CCM_TFTP)])
    s = new_store()
    install(s, "ITL", current)
    reset = tl("ITL", cm, [cm.record(Role.SAST), cm.record(Role.CCM_TFTP)], ts=NOW + 10)
    expect(rules.decide_trust_list(s, reset, kind="ITL", profile=P8861, now=NOW),
           "G.3.3-signed-by-itl-sast", True)


# --------------------------------------------------------------------------- §G.3.4 TVS
def _tvs(name: str, roles: set[int], ttl: int = 3600) -> TvsAnswer:
    return TvsAnswer(cert_der=certs.cert_der(ident(name).cert), roles=frozenset(roles), ttl=ttl)


def test_tvs_two_phase_and_cache() -> None:
    s = with_itl_and_config()
    d = rules.decide_trust_list(s, itl_b(), kind="ITL", profile=P8861, now=NOW)
    expect(d, "G.3.4-needs-tvs", False)
    assert d.pending and d.action == "ask-tvs" and d.needs_tvs is not None
    assert d.needs_tvs.serial == certs.serial_bytes(ident("recovery-b").cert.serial_number)
    s.apply(d)
    assert not s.locked  # a pending decision never locks
    answer = _tvs("recovery-b", {0, 2}, ttl=100)
    s.cache_tvs(d.needs_tvs, answer, NOW)
    d2 = rules.decide_trust_list(s, itl_b(), kind="ITL", profile=P8861, now=NOW + 50)  # from cache
    expect(d2, "G.3.4-vouched-by-tvs", True)
    assert rules.decide_trust_list(s, itl_b(), kind="ITL", profile=P8861, now=NOW + 100).pending  # expired
    s.apply(d2)
    assert s.itl is not None and s.itl.raw == itl_b() and s.tvs_cache_size == 0  # flushed §E.7.3


def test_tvs_answer_passed_in() -> None:
    s = with_itl_and_config()
    expect(rules.decide_trust_list(s, itl_b(), kind="ITL", profile=P8861, now=NOW,
                                   tvs_answer=_tvs("recovery-b", {0})), "G.3.4-vouched-by-tvs", True)


@pytest.mark.parametrize(("answer", "rule", "code"), [
    (TvsStatus.UNREACHABLE, "G.3.4-tvs-unreachable", VerifyReason.TVS_UNREACHABLE),
    (TvsStatus.NOT_FOUND, "G.3.4-tvs-unknown-signer", VerifyReason.UNKNOWN_SIGNER),
    ("other-cert", "G.3.4-tvs-unknown-signer", VerifyReason.UNKNOWN_SIGNER),
    ("wrong-role", "G.3.4-tvs-wrong-role", VerifyReason.WRONG_ROLE),
    ("tampered", "G.3-bad-signature", VerifyReason.BAD_SIGNATURE),
])
def test_tvs_failures(answer: object, rule: str, code: VerifyReason) -> None:
    s = with_itl_and_config()
    data = itl_b()
    tvs: TvsAnswer | TvsStatus
    if answer == "other-cert":
        tvs = _tvs("cm-b", {0})
    elif answer == "wrong-role":
        tvs = _tvs("recovery-b", {2, 3})
    elif answer == "tampered":
        tvs, data = _tvs("recovery-b", {0}), tamper(data)
    else:
        assert isinstance(answer, TvsStatus)
        tvs = answer
    d = rules.decide_trust_list(s, data, kind="ITL", profile=P8861, now=NOW, tvs_answer=tvs)
    expect(d, rule, False, code)
    s.apply(d)
    assert s.locked and s.itl is not None and s.itl.raw == itl_a()


def test_tvs_not_used_without_tvs_record() -> None:
    rec, cm = ident("recovery-a"), ident("cm-a")
    s = new_store()
    install(s, "ITL", tl("ITL", rec, [rec.record(Role.SAST), cm.record(Role.CCM_TFTP)]))
    s.apply(rules.decide_config(s, CFG + ".sgn", sgn(cm), profile=P8861, now=NOW))
    assert s.tvs_servers
    expect(rules.decide_trust_list(s, itl_b(), kind="ITL", profile=P8861, now=NOW),
           "G.3.5-reject-unknown-signer", False, VerifyReason.UNKNOWN_SIGNER)


def test_tvs_not_used_by_profile_without_tvs() -> None:
    prof = profile_from_dict("cp-8861", {"tvs_enabled": False})
    s = with_itl_and_config(prof)
    expect(rules.decide_trust_list(s, itl_b(), kind="ITL", profile=prof, now=NOW),
           "G.3.5-reject-unknown-signer", False, VerifyReason.UNKNOWN_SIGNER)


# --------------------------------------------------------------------------- §G.3.6 rollback ITL
def test_empty_itl_accepts_any_itl_and_unsigned_config() -> None:
    rec = ident("recovery-a")
    s = new_store()
    install(s, "ITL", itl_a())
    parsed = trustlist.parse(itl_a())
    rollback = tl("ITL", rec, list(trustlist.rollback_records(parsed.records)), ts=NOW + 5)
    install(s, "ITL", rollback)
    assert s.itl_is_empty and s.itl_rule == "G.3.3-signed-by-itl-sast"
    expect(rules.decide_config(s, CFG, xml(), profile=P8861, now=NOW), "G.4-empty-itl-accepts-unsigned", True)
    expect(rules.decide_config(s, CFG + ".sgn", sgn(ident("cm-b")), profile=P8861, now=NOW),
           "G.4-empty-itl-signature-unchecked", True)
    expect(rules.decide_trust_list(s, itl_b(), kind="ITL", profile=P8861, now=NOW),
           "G.3.6-empty-itl-accepts-any", True)


# --------------------------------------------------------------------------- profile limits
def test_oversize_trust_list() -> None:
    rec = ident("recovery-a")
    many = [rec.record(Role.SAST)] + [ident("cm-a").record(Role.CCM_TFTP)] * 80
    big = trustlist.build(kind="ITL", records=many, signer=rec.signer, timestamp=NOW)
    assert len(big) > 65536
    d = rules.decide_trust_list(new_store(), big, kind="ITL", profile=P8861, now=NOW)
    expect(d, "G.3.1-oversize", False, VerifyReason.TOO_LARGE)
    small = profile_from_dict("cp-8861", {"trust_list_limit": 2048})
    expect(rules.decide_trust_list(new_store(small), itl_a(), kind="ITL", profile=small, now=NOW),
           "G.3.1-oversize", False, VerifyReason.TOO_LARGE)


def test_malformed_trust_list() -> None:
    expect(rules.decide_trust_list(new_store(), b"\x01\x00\x02junk", kind="ITL", profile=P8861, now=NOW),
           "G.3.1-malformed", False, VerifyReason.OTHER)
    good = itl_a()
    off = trustlist.parse(good).body_offset + 6  # length of the record's second TLV
    broken = good[:off] + b"\xff" + good[off + 1:]
    d = rules.decide_trust_list(new_store(), broken, kind="ITL", profile=P8861, now=NOW)
    expect(d, "G.3.1-malformed", False, VerifyReason.OTHER)  # even TOFU refuses an undecodable record
    assert "record[0]" in d.reason


def test_unsupported_hash() -> None:
    rec = ident("recovery-a")
    data = tl("ITL", rec, [rec.record(Role.SAST)], hash_alg=HashAlg.SHA512)
    expect(rules.decide_trust_list(new_store(P7962), data, kind="ITL", profile=P7962, now=NOW),
           "G.3.1-unsupported-hash", False, VerifyReason.UNSUPPORTED_HASH)
    expect(rules.decide_trust_list(new_store(), data, kind="ITL", profile=P8861, now=NOW),
           "G.2-first-itl-tofu", True)


def test_unsupported_key_ec_and_size() -> None:
    ec = ident("ec-sast", spec="ec-p256")
    first = tl("ITL", ec, [ec.record(Role.SAST)])
    s = new_store(P7962)
    install(s, "ITL", first, P7962)  # TOFU checks no key
    expect(rules.decide_trust_list(s, tl("ITL", ec, [ec.record(Role.SAST)], ts=NOW + 1), kind="ITL",
                                   profile=P7962, now=NOW), "G.3-unsupported-key", False,
           VerifyReason.UNSUPPORTED_KEY)
    s8861 = new_store()
    install(s8861, "ITL", first)
    expect(rules.decide_trust_list(s8861, tl("ITL", ec, [ec.record(Role.SAST)], ts=NOW + 1), kind="ITL",
                                   profile=P8861, now=NOW), "G.3.3-signed-by-itl-sast", True)
    big = ident("rsa2048-sast", spec="rsa2048")
    tiny = profile_from_dict("cp-7962", {"max_rsa_bits": 1024})
    s2 = new_store(tiny)
    install(s2, "ITL", tl("ITL", big, [big.record(Role.SAST)]), tiny)
    expect(rules.decide_trust_list(s2, tl("ITL", big, [big.record(Role.SAST)], ts=NOW + 1), kind="ITL",
                                   profile=tiny, now=NOW), "G.3-unsupported-key", False,
           VerifyReason.UNSUPPORTED_KEY)


def test_expired_and_not_yet_valid_signer() -> None:
    old = ident("old-sast", before=4000, after=-1)
    s = new_store()
    install(s, "ITL", tl("ITL", old, [old.record(Role.SAST)]))
    expect(rules.decide_trust_list(s, tl("ITL", old, [old.record(Role.SAST)], ts=NOW + 1), kind="ITL",
                                   profile=P8861, now=NOW), "G.3-expired-signer", False, VerifyReason.EXPIRED)
    future = ident("future-sast", before=-2, after=10)
    s2 = new_store()
    install(s2, "ITL", tl("ITL", future, [future.record(Role.SAST)]))
    upd = tl("ITL", future, [future.record(Role.SAST)], ts=NOW + 1)
    expect(rules.decide_trust_list(s2, upd, kind="ITL", profile=P8861, now=NOW), "G.3-expired-signer", False,
           VerifyReason.EXPIRED)
    expect(rules.decide_trust_list(s2, upd, kind="ITL", profile=P8861, now=NOW + 3 * DAY),
           "G.3.3-signed-by-itl-sast", True)


# --------------------------------------------------------------------------- §G.4 configs
def test_unsigned_config() -> None:
    s = new_store()
    d = rules.decide_config(s, CFG, xml(), profile=P8861, now=NOW)
    expect(d, "G.4-unsigned-no-trust-list", True)
    s.apply(d)
    assert s.config_rule == "G.4-unsigned-no-trust-list" and s.tvs_servers[0].port == 2445
    install(s, "ITL", itl_a())
    expect(rules.decide_config(s, CFG, xml(), profile=P8861, now=NOW), "G.4-unsigned-rejected", False,
           VerifyReason.NOT_SIGNED)


def test_signed_config_by_itl_and_ctl() -> None:
    s = new_store()
    install(s, "ITL", itl_a())
    expect(rules.decide_config(s, CFG + ".sgn", sgn(ident("cm-a")), profile=P8861, now=NOW),
           "G.4-signed-by-itl-tftp", True)
    s2 = new_store()
    install(s2, "CTL", ctl_a())
    expect(rules.decide_config(s2, CFG + ".sgn", sgn(ident("cm-a")), profile=P8861, now=NOW),
           "G.4-signed-by-ctl-tftp", True)


def test_signed_config_negative() -> None:
    s = new_store()
    install(s, "ITL", itl_a())
    expect(rules.decide_config(s, CFG + ".sgn", tamper(sgn(ident("cm-a"))), profile=P8861, now=NOW),
           "G.4-bad-signature", False, VerifyReason.BAD_SIGNATURE)  # signature checked before the XML
    body = xml() + b"   "
    bad = signed.build(body=body, filename=CFG + ".sgn", signer=ident("cm-a").signer, timestamp=NOW)
    forged = bad[:-3] + b"\n\n\n"
    expect(rules.decide_config(s, CFG + ".sgn", forged, profile=P8861, now=NOW), "G.4-bad-signature", False,
           VerifyReason.BAD_SIGNATURE)
    expect(rules.decide_config(s, CFG + ".sgn", sgn(ident("recovery-a")), profile=P8861, now=NOW),
           "G.4-reject-unknown-signer", False, VerifyReason.WRONG_ROLE)
    expect(rules.decide_config(s, CFG + ".sgn", sgn(ident("cm-b")), profile=P8861, now=NOW),
           "G.4-reject-unknown-signer", False, VerifyReason.UNKNOWN_SIGNER)
    expect(rules.decide_config(s, CFG + ".sgn", b"garbage", profile=P8861, now=NOW), "G.4-malformed", False,
           VerifyReason.OTHER)
    not_xml = signed.build(body=b"<nope", filename=CFG + ".sgn", signer=ident("cm-a").signer, timestamp=NOW)
    expect(rules.decide_config(s, CFG + ".sgn", not_xml, profile=P8861, now=NOW), "G.4-malformed", False,
           VerifyReason.OTHER)


def test_signed_config_profile_limits_and_expiry() -> None:
    s = new_store(P7962)
    install(s, "ITL", itl_a(), P7962)
    expect(rules.decide_config(s, CFG + ".sgn", sgn(ident("cm-a"), hash_alg=3), profile=P7962, now=NOW),
           "G.4-unsupported-hash", False, VerifyReason.UNSUPPORTED_HASH)
    old = ident("old-cm", before=4000, after=-1)
    s2 = new_store()
    rec = ident("recovery-a")
    install(s2, "ITL", tl("ITL", rec, [rec.record(Role.SAST), old.record(Role.TFTP)]))
    expect(rules.decide_config(s2, CFG + ".sgn", sgn(old), profile=P8861, now=NOW), "G.4-expired-signer",
           False, VerifyReason.EXPIRED)
    ec = ident("ec-tftp", spec="ec-p256")
    s3 = new_store(P7962)
    install(s3, "ITL", tl("ITL", rec, [rec.record(Role.SAST), ec.record(Role.TFTP)]), P7962)
    expect(rules.decide_config(s3, CFG + ".sgn", sgn(ec), profile=P7962, now=NOW), "G.4-unsupported-key",
           False, VerifyReason.UNSUPPORTED_KEY)


def test_signed_config_without_trust_list() -> None:
    expect(rules.decide_config(new_store(), CFG + ".sgn", sgn(ident("cm-b")), profile=P8861, now=NOW),
           "G.4-signed-unchecked-no-trust-list", True)


@pytest.mark.parametrize(("answer", "rule", "accepted", "code"), [
    (None, "G.4-needs-tvs", False, None),
    ("ok", "G.4-vouched-by-tvs", True, None),
    ("sast-only", "G.4-tvs-wrong-role", False, VerifyReason.WRONG_ROLE),
    (TvsStatus.UNREACHABLE, "G.4-tvs-unreachable", False, VerifyReason.TVS_UNREACHABLE),
    (TvsStatus.NOT_FOUND, "G.4-tvs-unknown-signer", False, VerifyReason.UNKNOWN_SIGNER),
])
def test_signed_config_via_tvs(answer: object, rule: str, accepted: bool, code: VerifyReason | None) -> None:
    s = with_itl_and_config()
    tvs: TvsAnswer | TvsStatus | None
    if answer == "ok":
        tvs = _tvs("cm-b", {Role.CCM_TFTP})
    elif answer == "sast-only":
        tvs = _tvs("cm-b", {Role.SAST})
    else:
        tvs = answer  # type: ignore[assignment]
    d = rules.decide_config(s, CFG + ".sgn", sgn(ident("cm-b")), profile=P8861, now=NOW, tvs_answer=tvs)
    expect(d, rule, accepted, code)
    if answer is None:
        assert d.needs_tvs is not None and d.pending


# --------------------------------------------------------------------------- §G.12 encrypted configs
def _enc_pki(recipient: Ident, signer: Ident, plaintext: bytes | None = None) -> bytes:
    return encrypted.build_pki(plaintext=plaintext or xml(), filename=CFG + ".enc.sgn", signer=signer.signer,
                               recipient_cert=recipient.cert, timestamp=NOW,
                               rand=random.Random(7).randbytes)


def test_encrypted_pki() -> None:
    phone = ident("mic-phone")
    s = new_store(mic=phone)
    install(s, "ITL", itl_a())
    d = rules.decide_config(s, CFG + ".enc.sgn", _enc_pki(phone, ident("cm-a")), profile=P8861, now=NOW)
    expect(d, "G.12.3-decrypted", True)
    s.apply(d)
    assert s.config is not None and s.config.file == CFG + ".enc.sgn"
    wrong = _enc_pki(ident("other-phone"), ident("cm-a"))
    d2 = rules.decide_config(s, CFG + ".enc.sgn", wrong, profile=P8861, now=NOW)
    assert d2.rule == "G.12.3-decrypt-failed" and not d2.accepted and d2.action == "start-capf"
    assert d2.reason_code in (VerifyReason.DECRYPT_FAILED, VerifyReason.HASH_MISMATCH)
    s_nokey = new_store()
    install(s_nokey, "ITL", itl_a())
    d3 = rules.decide_config(s_nokey, CFG + ".enc.sgn", _enc_pki(phone, ident("cm-a")), profile=P8861,
                             now=NOW)
    expect(d3, "G.12.3-no-key", False, VerifyReason.DECRYPT_FAILED)
    assert rules.decide_config(s, CFG + ".enc.sgn", _enc_pki(phone, ident("cm-b")), profile=P8861,
                               now=NOW).rule == "G.4-needs-tvs"  # config now lists TVS servers
    expect(rules.decide_config(s_nokey, CFG + ".enc.sgn", _enc_pki(phone, ident("cm-b")), profile=P8861,
                               now=NOW), "G.4-reject-unknown-signer", False, VerifyReason.UNKNOWN_SIGNER)


def test_encrypted_symmetric() -> None:
    key = bytes(range(16))
    data = encrypted.build_symmetric(plaintext=xml(), filename=CFG + ".enc.sgn", signer=ident("cm-b").signer,
                                     key=key, timestamp=NOW, rand=random.Random(3).randbytes)
    s = new_store(PSYM)
    install(s, "ITL", itl_a(), PSYM)
    expect(rules.decide_config(s, CFG + ".enc.sgn", data, profile=PSYM, now=NOW), "G.12.3-no-key", False,
           VerifyReason.DECRYPT_FAILED)
    s.set_symmetric_key(bytes(16 * [9]))
    d = rules.decide_config(s, CFG + ".enc.sgn", data, profile=PSYM, now=NOW)
    assert d.rule == "G.12.3-decrypt-failed" and d.action is None  # no CAPF on a symmetric-only phone
    s.set_symmetric_key(key)
    d2 = rules.decide_config(s, CFG + ".enc.sgn", data, profile=PSYM, now=NOW)
    expect(d2, "G.12.3-decrypted", True)  # cm-b unknown, but this model ignores the .enc.sgn signer (§C.3)
    assert "signer-not-checked" in d2.reason


def test_encrypted_config_with_a_plaintext_hash_the_model_lacks_is_refused() -> None:
    """The plaintext hash (tag 26) is the phone's own check, even where it ignores the signer (§C.3): a
    SHA-1-only model cannot compute SHA-512 (§A.4), so it refuses the file — it was decrypted and
    'hash checked' with a hash the model does not have."""
    key = bytes(range(16))
    data = encrypted.build_symmetric(plaintext=xml(), filename=CFG + ".enc.sgn", signer=ident("cm-b").signer,
                                     key=key, timestamp=NOW, hash_alg=3, rand=random.Random(3).randbytes)
    s = new_store(PSYM)
    install(s, "ITL", itl_a(), PSYM)
    s.set_symmetric_key(key)
    assert not PSYM.supports_hash(3)
    expect(rules.decide_config(s, CFG + ".enc.sgn", data, profile=PSYM, now=NOW), "G.12.3-decrypt-failed",
           False, VerifyReason.UNSUPPORTED_HASH)


def test_short_config() -> None:
    phone = ident("mic-phone")
    s = new_store(mic=phone)
    md5 = certs.fingerprint(phone.cert, "md5")
    stub = config_fmt.stub_of(config_fmt.parse(xml()), md5)
    d = rules.decide_short_config(s, stub, profile=P8861)
    assert d.rule == "G.12.2-cert-hash-match" and d.accepted and d.action == "fetch-encrypted"
    sha1 = config_fmt.stub_of(config_fmt.parse(xml()), certs.fingerprint(phone.cert, "sha1").upper())
    assert rules.decide_short_config(s, sha1, profile=P8861).rule == "G.12.2-cert-hash-match"
    mism = config_fmt.stub_of(config_fmt.parse(xml()), "0" * 32)
    d2 = rules.decide_short_config(s, mism, profile=P8861)
    expect(d2, "G.12.2-cert-hash-mismatch", False, VerifyReason.HASH_MISMATCH)
    assert d2.action == "start-capf"
    auth = config_fmt.stub_of(config_fmt.parse(xml(capf_auth_mode=1)), "0" * 32)
    assert rules.decide_short_config(s, auth, profile=P8861).action == "wait-auth-string"
    assert rules.decide_short_config(new_store(), stub, profile=P8861).rule == "G.12.2-cert-hash-mismatch"
    expect(rules.decide_short_config(s, config_fmt.parse(xml()), profile=P8861), "G.12.1-plain-config", True)
    sym = new_store(PSYM)
    expect(rules.decide_short_config(sym, stub, profile=PSYM), "G.12.2-no-symmetric-key", False,
           VerifyReason.DECRYPT_FAILED)
    sym.set_symmetric_key(bytes(range(16)))
    assert rules.decide_short_config(sym, stub, profile=PSYM).action == "fetch-encrypted"


# --------------------------------------------------------------------------- §D firmware
def _fw(signer: Ident, name: str = "sip88xx.14-2-1", hash_alg: int = 3) -> bytes:
    return firmware.build(load_name=name, payload=b"\x7fELF" + bytes(200), signer=signer.signer,
                          timestamp=NOW, hash_alg=hash_alg)


def test_firmware() -> None:
    img = ident("imagesigning")
    s = new_store()
    s.firmware_load = "sip88xx.12-8-1"
    d = rules.decide_firmware(s, _fw(img), profile=P8861, now=NOW, image_signers=[img.cert])
    expect(d, "D-signed-by-image-key", True)
    s.apply(d)
    assert s.firmware_load == "sip88xx.14-2-1"
    expect(rules.decide_firmware(s, _fw(img), profile=P8861, now=NOW, image_signers=[img.cert]),
           "D-already-running", True)
    for data, rule, code, prof in (
        (_fw(ident("cm-a"), "x.2"), "D-unknown-signer", VerifyReason.UNKNOWN_SIGNER, P8861),
        (tamper(_fw(img, "x.3")), "D-bad-signature", VerifyReason.BAD_SIGNATURE, P8861),
        (_fw(img, "x.4"), "D-unsupported-hash", VerifyReason.UNSUPPORTED_HASH, P7962),
        (b"nonsense", "D-malformed", VerifyReason.OTHER, P8861),
    ):
        d2 = rules.decide_firmware(s, data, profile=prof, now=NOW, image_signers=[img.cert])
        expect(d2, rule, False, code)
        s.apply(d2)
        assert s.firmware_load == "sip88xx.14-2-1"  # failure keeps the running load
    old = ident("old-imagesigning", before=4000, after=-1)
    expect(rules.decide_firmware(s, _fw(old, "x.5"), profile=P8861, now=NOW, image_signers=[old.cert]),
           "D-expired-signer", False, VerifyReason.EXPIRED)


# --------------------------------------------------------------------------- §G.9, §G.10, §C.6
def test_secure_transport() -> None:
    secure = config_fmt.parse(xml(device_security_mode=3))
    plain = config_fmt.parse(xml())
    s = new_store()
    assert rules.decide_secure_transport(s, plain, profile=P8861, attempts=0) is None  # no §G.9 question
    assert not is_known("G.9-non-secure")
    d = rules.decide_secure_transport(s, secure, profile=P8861, attempts=3)
    assert d is not None and (d.rule, d.accepted, d.action) == ("G.9-retry-trust-file", False, "retry")
    d = rules.decide_secure_transport(s, secure, profile=P8861, attempts=4)
    assert d is not None and (d.rule, d.action) == ("G.9-fallback-tcp", "use-tcp")
    install(s, "CTL", ctl_a())
    d = rules.decide_secure_transport(s, secure, profile=P8861, attempts=0)
    assert d is not None and d.action == "use-tls"


def test_auto_registration() -> None:
    s = new_store()
    assert rules.decide_auto_registration(s, profile=P8861, device_config_found=True,
                                          default_config_found=True).rule == "G.10-device-config"
    d = rules.decide_auto_registration(s, profile=P8861, device_config_found=False, default_config_found=True)
    assert (d.rule, d.file) == ("G.10-use-default-config", "XmlDefault.cnf.xml")
    install(s, "ITL", itl_a())
    d = rules.decide_auto_registration(s, profile=P8861, device_config_found=False,
                                       default_config_found=False)
    assert (d.rule, d.accepted, d.file) == ("G.10-no-config", False, "XmlDefault.cnf.xml.sgn")
    assert d.status == status.cfg_file_not_found("Cfg File")


def test_config_request_names() -> None:
    s = new_store()
    assert rules.config_request_names(s, P8861, MAC) == (CFG,)
    install(s, "ITL", itl_a())
    assert rules.config_request_names(s, P8861, MAC) == (CFG + ".sgn",)
    sym = new_store(PSYM)
    sym.set_symmetric_key(bytes(range(16)))
    assert rules.config_request_names(sym, PSYM, MAC) == (CFG + ".enc.sgn", CFG)
    assert rules.config_request_names(s, P7940, MAC) == (CFG,)
    # a legacy phone holding a mixed-mode cluster's CTL accepts only signed configs (§G.4): it asks for
    # the signed one (§C.6 row 5; it asked for the plain one alone and could never take a config)
    legacy = new_store(P7940)
    install(legacy, "CTL", ctl_a(), P7940)
    assert rules.config_request_names(legacy, P7940, MAC) == (CFG + ".sgn",)


def test_every_rule_name_in_the_code_is_documented() -> None:
    """The module docstring lists every rule name the code can return (and the scheme holds)."""
    import inspect
    import re

    doc = rules.__doc__ or ""
    code = inspect.getsource(rules).replace(doc, "")
    names = set(re.findall(r'"((?:G|D)[.0-9]*-[a-z0-9.-]+)"', code))
    prefixes = {"G.3", "G.4", "D"}  # built with _fail_rule(prefix, reason)
    names |= {f"{p}-{suffix}" for p in prefixes for suffix in ("unsupported-hash", "unsupported-key",
                                                                 "expired-signer", "bad-signature")}
    assert len(names) > 40
    missing = sorted(n for n in names if f"``{n}``" not in doc)
    assert not missing, missing


def test_encrypted_config_missing_is_a_named_rejection() -> None:
    """§G.12: encrConfig=true but the .enc.sgn is not there — no config, status names the file."""
    d = rules.encrypted_config_missing("SEP001122334455.cnf.xml.enc.sgn", transport="not-found",
                                       not_found=True)
    assert (d.rule, d.accepted, d.kind) == ("G.12.5-encrypted-config-missing", False, "config")
    assert d.reason_code is VerifyReason.NOT_FOUND and "SEP001122334455.cnf.xml.enc.sgn" in (d.status or "")
    timeout = rules.encrypted_config_missing("x.enc.sgn", transport="timeout", not_found=False)
    assert timeout.status is None and "timeout" in timeout.reason


def test_7962_pki_enc_signer_checked() -> None:
    """§G.12 step 3: a PKI ``.enc.sgn`` is signature-checked even on a model whose ``enc_signer_checked``
    is False (that flag models the manual-key path only, spec §C.3/§C.5): anyone can encrypt to the
    phone's public key, so an attacker-signed file must be refused."""
    phone = ident("mic-phone")
    s = new_store(P7962, mic=phone)
    install(s, "ITL", itl_a(), P7962)
    forged = _enc_pki(phone, ident("attacker"))
    expect(rules.decide_config(s, CFG + ".enc.sgn", forged, profile=P7962, now=NOW),
           "G.4-reject-unknown-signer", False, VerifyReason.UNKNOWN_SIGNER)
    good = rules.decide_config(s, CFG + ".enc.sgn", _enc_pki(phone, ident("cm-a")), profile=P7962, now=NOW)
    expect(good, "G.12.3-decrypted", True)
    assert "signer-not-checked" not in good.reason


# --------------------------------------------------------------------------- §A.2 tag 14 header FILENAME
def test_itl_served_as_ctl_is_refused_even_on_first_contact() -> None:
    """An ITL's bytes served under the CTL name: the header FILENAME says ITLFile.tlv (§A.2, §B.1)."""
    d = rules.decide_trust_list(new_store(), itl_a(), kind="CTL", profile=P8861, now=NOW,
                                file=f"CTLSEP{MAC}.tlv")
    expect(d, "G.3.1-wrong-file-name", False, VerifyReason.OTHER)
    d2 = rules.decide_trust_list(new_store(), ctl_a(), kind="ITL", profile=P8861, now=NOW, file="ITLFile.tlv")
    expect(d2, "G.3.1-wrong-file-name", False, VerifyReason.OTHER)
    # the per-device name keeps the generic name inside (§B.1); a per-device list may name itself
    assert rules.decide_trust_list(new_store(), itl_a(), kind="ITL", profile=P8861, now=NOW,
                                   file=f"ITLSEP{MAC}.tlv").accepted
    own = trustlist.build(kind="ITL", records=[ident("recovery-a").record(Role.SAST)],
                          signer=ident("recovery-a").signer, timestamp=NOW, filename=f"itlsep{MAC}.tlv")
    assert rules.trust_list_name_problem(f"itlsep{MAC}.tlv", kind="ITL", requested=f"ITLSEP{MAC}.tlv") is None
    assert rules.decide_trust_list(new_store(), own, kind="ITL", profile=P8861, now=NOW,
                                   file=f"ITLSEP{MAC}.tlv").accepted
    other = rules.decide_trust_list(new_store(), own, kind="ITL", profile=P8861, now=NOW,
                                    file="ITLSEP0A0B0C0D0E0F.tlv")
    expect(other, "G.3.1-wrong-file-name", False, VerifyReason.OTHER)  # another phone's per-device ITL


def test_another_phones_config_is_refused() -> None:
    """SEPAAA's correctly signed config served when SEPBBB's was requested (§A.2 tag 14, §C.1)."""
    s = with_itl_and_config()
    theirs = signed.build(body=xml(device_name="SEPAAAAAAAAAAAA"), filename="SEPAAAAAAAAAAAA.cnf.xml.sgn",
                          signer=ident("cm-a").signer, timestamp=NOW)
    d = rules.decide_config(s, CFG + ".sgn", theirs, profile=P8861, now=NOW)
    expect(d, "G.4-wrong-file-name", False, VerifyReason.OTHER)
    assert "SEPAAAAAAAAAAAA.cnf.xml.sgn" in d.reason
    # case of the MAC digits does not matter (our convention)
    lower = signed.build(body=xml(), filename=CFG.lower() + ".sgn", signer=ident("cm-a").signer,
                         timestamp=NOW)
    assert rules.decide_config(s, CFG + ".sgn", lower, profile=P8861, now=NOW).accepted
    # an .sgn is not the .enc.sgn: the extension is part of the name
    phone = ident("mic-phone")
    s2 = new_store(mic=phone)
    install(s2, "ITL", itl_a())
    enc_as_sgn = encrypted.build_pki(plaintext=xml(), filename=CFG + ".sgn", signer=ident("cm-a").signer,
                                     recipient_cert=phone.cert, timestamp=NOW,
                                     rand=random.Random(7).randbytes)
    expect(rules.decide_config(s2, CFG + ".enc.sgn", enc_as_sgn, profile=P8861, now=NOW),
           "G.4-wrong-file-name", False, VerifyReason.OTHER)
    # also with no trust list (the phone must never take another phone's file)
    expect(rules.decide_config(new_store(), CFG + ".sgn", theirs, profile=P8861, now=NOW),
           "G.4-wrong-file-name", False, VerifyReason.OTHER)


# --------------------------------------------------------------------------- §F.1 CAPF / §E.1 TVS peers
def _forged(like: Ident) -> bytes:
    """A self-made certificate copying ``like``'s subject, issuer and serial, with another key."""
    key = generate_key(KeySpec.parse("rsa1024"), unsafe_seed="rules-forger")
    t = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    req = certs.CertRequest(subject=certs.dn_text(like.cert.subject), public_key=key.public_key(),
                            serial=like.cert.serial_number, not_before=t - dt.timedelta(days=1),
                            not_after=t + dt.timedelta(days=30))
    return certs.cert_der(certs.issue_certificate(req, issuer_key=key))


def test_capf_server_rule() -> None:
    capf = ident("capf-a")
    der = certs.cert_der(capf.cert)
    s = with_itl_and_config()  # ITL A has no CAPF record; its config lists TVS
    d = rules.decide_capf_server(s, der, profile=P8861, now=NOW)
    assert d.rule == "F.1-capf-needs-tvs" and d.pending and d.needs_tvs is not None
    ok = TvsAnswer(cert_der=der, roles=frozenset({Role.CAPF}), ttl=60)
    expect(rules.decide_capf_server(s, der, profile=P8861, now=NOW, tvs_answer=ok), "F.1-capf-vouched-by-tvs",
           True)
    wrong = TvsAnswer(cert_der=der, roles=frozenset({Role.TVS}), ttl=60)
    expect(rules.decide_capf_server(s, der, profile=P8861, now=NOW, tvs_answer=wrong),
           "F.1-capf-server-untrusted", False, VerifyReason.WRONG_ROLE)
    for answer, code in ((TvsStatus.NOT_FOUND, VerifyReason.UNKNOWN_SIGNER),
                         (TvsStatus.UNREACHABLE, VerifyReason.TVS_UNREACHABLE),
                         (TvsAnswer(cert_der=_forged(capf), roles=frozenset({Role.CAPF}), ttl=60),
                          VerifyReason.UNKNOWN_SIGNER)):
        expect(rules.decide_capf_server(s, der, profile=P8861, now=NOW, tvs_answer=answer),
               "F.1-capf-server-untrusted", False, code)
    # no TVS servers (no config): nothing vouches
    s2 = new_store()
    install(s2, "ITL", itl_a())
    expect(rules.decide_capf_server(s2, der, profile=P8861, now=NOW), "F.1-capf-server-untrusted", False,
           VerifyReason.UNKNOWN_SIGNER)
    expect(rules.decide_capf_server(new_store(), der, profile=P8861, now=NOW), "F.1-capf-server-untrusted",
           False, VerifyReason.UNKNOWN_SIGNER)
    expect(rules.decide_capf_server(s2, None, profile=P8861, now=NOW), "F.1-capf-server-untrusted", False,
           VerifyReason.NO_CERTIFICATE)
    # the CAPF record of the CTL; a certificate forging its serial and issuer is not it
    s3 = new_store()
    install(s3, "CTL", ctl_a())
    expect(rules.decide_capf_server(s3, der, profile=P8861, now=NOW), "F.1-capf-cert-in-trust-list", True)
    expect(rules.decide_capf_server(s3, _forged(capf), profile=P8861, now=NOW), "F.1-capf-server-untrusted",
           False, VerifyReason.UNKNOWN_SIGNER)


def test_record_matches_peer_by_key_never_by_serial_alone() -> None:
    tvs = ident("tvs-a")
    der = certs.cert_der(tvs.cert)
    full = tvs.record(Role.TVS)
    key_only = TrustRecord(role=Role.TVS, subject=full.subject, issuer=full.issuer, serial=full.serial,
                           public_key=full.public_key)
    names_only = TrustRecord(role=Role.TVS, subject=full.subject, issuer=full.issuer, serial=full.serial)
    forged = _forged(tvs)
    forged_cert = certs.load_cert_der(forged)
    for rec in (full, key_only):
        assert rules.record_matches_peer(rec, der, tvs.cert)
        assert not rules.record_matches_peer(rec, forged, forged_cert)
    assert not rules.record_matches_peer(names_only, der, tvs.cert)
    # an ITL whose TVS record has neither certificate nor key: TVS is not usable and no server trusted
    rec = ident("recovery-a")
    s = new_store()
    install(s, "ITL", tl("ITL", rec, [rec.record(Role.SAST), ident("cm-a").record(Role.CCM_TFTP),
                                      names_only]))
    d = rules.decide_config(s, CFG + ".sgn", sgn(ident("cm-a")), profile=P8861, now=NOW)
    s.apply(d)
    assert s.tvs_servers and not rules.tvs_usable(s, P8861) and not rules.tvs_server_trusted(s, der)
    expect(rules.decide_trust_list(s, itl_b(), kind="ITL", profile=P8861, now=NOW),
           "G.3.5-reject-unknown-signer", False, VerifyReason.UNKNOWN_SIGNER)
    s2 = with_itl_and_config()
    assert rules.tvs_server_trusted(s2, der) and not rules.tvs_server_trusted(s2, forged)
    expect(rules.decide_trust_list(s2, itl_b(), kind="ITL", profile=P8861, now=NOW,
                                   tvs_answer=TvsStatus.SERVER_UNTRUSTED),
           "G.3.4-tvs-server-untrusted", False, VerifyReason.TVS_UNREACHABLE)
    expect(rules.decide_config(s2, CFG + ".sgn", sgn(ident("cm-b")), profile=P8861, now=NOW,
                               tvs_answer=TvsStatus.SERVER_UNTRUSTED),
           "G.4-tvs-server-untrusted", False, VerifyReason.TVS_UNREACHABLE)


def test_locked_phone_says_it_keeps_an_unchanged_config() -> None:
    """§G.3.5: a locked phone "ignores configuration changes" and keeps its installed config; when the
    served config is that same config the outcome says so rather than just "ignored"."""
    s = with_itl_and_config()
    s.locked = True
    d = rules.decide_config(s, CFG + ".sgn", sgn(ident("cm-a")), profile=P8861, now=NOW)
    expect(d, "G.3.5-locked-ignores-config", False, VerifyReason.UNKNOWN_SIGNER)
    assert "unchanged" in d.reason and "keeps running its installed config" in d.reason
    changed = rules.decide_config(s, CFG + ".sgn", sgn(ident("cm-a"), xml(capf_auth_mode=2)), profile=P8861,
                                  now=NOW)
    expect(changed, "G.3.5-locked-ignores-config", False, VerifyReason.UNKNOWN_SIGNER)
    assert "unchanged" not in changed.reason and "keeps its installed config" in changed.reason
    enc = rules.decide_config(s, CFG + ".enc.sgn", sgn(ident("cm-a")), profile=P8861, now=NOW)
    assert "unchanged" not in enc.reason  # an .enc.sgn cannot be compared without decrypting


def test_firmware_must_be_the_requested_load() -> None:
    """§D: a genuinely signed *other* load served under the requested name (a downgrade) is refused."""
    img = ident("imagesigning")
    s = new_store()
    old = _fw(img, "sip88xx.10-0-1")
    d = rules.decide_firmware(s, old, profile=P8861, now=NOW, image_signers=[img.cert],
                              file="sip88xx.14-2-1.loads", requested_load="sip88xx.14-2-1")
    expect(d, "D-wrong-load", False, VerifyReason.OTHER)
    assert s.firmware_load is None
    good = rules.decide_firmware(s, _fw(img), profile=P8861, now=NOW, image_signers=[img.cert],
                                 file="sip88xx.14-2-1.loads", requested_load="sip88xx.14-2-1")
    expect(good, "D-signed-by-image-key", True)
    renamed = firmware.build(load_name="sip88xx.14-2-1", payload=bytes(10), signer=img.signer, timestamp=NOW,
                             hash_alg=3, filename="other.loads")
    expect(rules.decide_firmware(s, renamed, profile=P8861, now=NOW, image_signers=[img.cert],
                                 file="sip88xx.14-2-1.loads", requested_load="sip88xx.14-2-1"),
           "D-wrong-load", False, VerifyReason.OTHER)


@pytest.mark.parametrize("name", [
    "\u0131TLFile.tlv",       # dotless i: str.upper() gives I
    "ITL\ufb01le.tlv",         # fi ligature: str.upper() gives FI
    "ITLFile.tlv\0",          # NUL inside the name
    "ITLFile.tlv\0.sgn",
    "../ITLFile.tlv",
    "ITLFile.tlv/..",
    "ITLFile.tlv ",
    "CTLFile.tlv",
    "ITLFile.tlv" + "x" * 70_000,
])
def test_trust_list_names_that_only_look_right_are_refused(name: str) -> None:
    problem = rules.trust_list_name_problem(name, kind="ITL", requested=f"ITLSEP{MAC}.tlv")
    assert problem is not None and len(problem) < 400


@pytest.mark.parametrize("name", [
    f"\u017fEP{MAC}.cnf.xml.sgn", f"SEP{MAC}.cnf.xml.\u017fgn",  # long s: str.upper() gives S
    f"\uff33EP{MAC}.cnf.xml.sgn",  # fullwidth S
    f"SEP{MAC}.cnf.xml.sgn\0", f"../SEP{MAC}.cnf.xml.sgn", f"SEP{MAC}.cnf.xml", f"SEP{MAC}.cnf.xml.enc.sgn",
])
def test_signed_file_names_that_only_look_right_are_refused(name: str) -> None:
    assert rules.signed_file_name_problem(name, f"SEP{MAC}.cnf.xml.sgn") is not None


def test_file_names_fold_ascii_case_and_separators_only() -> None:
    assert rules.signed_file_name_problem(f"sep{MAC.lower()}.CNF.xml.sgn", f"SEP{MAC}.cnf.xml.sgn") is None
    assert rules.signed_file_name_problem("\\Sub\\x.sgn", "sub/X.sgn") is None
    assert rules.trust_list_name_problem("/itlfile.TLV", kind="ITL") is None


def test_key_only_record_needs_the_same_key_serial_and_issuer() -> None:
    """A record with a key but no certificate: a certificate with another key never matches, nor one
    with the same key but another serial or issuer (spec §B.2, our convention)."""
    tvs = ident("tvs-a")
    full = tvs.record(Role.TVS)
    t = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)

    def reissued(serial: int, issuer_key: object | None = None) -> tuple[bytes, object]:
        req = certs.CertRequest(subject=certs.dn_text(tvs.cert.subject), public_key=tvs.cert.public_key(),
                                serial=serial, not_before=t - dt.timedelta(days=1),
                                not_after=t + dt.timedelta(days=30))
        key = issuer_key or generate_key(KeySpec.parse("rsa1024"), unsafe_seed="rules-issuer")
        der = certs.cert_der(certs.issue_certificate(req, issuer_key=key))  # type: ignore[arg-type]
        return der, certs.load_cert_der(der)

    key_only = TrustRecord(role=Role.TVS, subject=full.subject, issuer=full.issuer, serial=full.serial,
                           public_key=full.public_key)
    bare_key = TrustRecord(role=Role.TVS, public_key=full.public_key)
    other_serial = reissued(tvs.cert.serial_number + 1)
    assert not rules.record_matches_peer(key_only, *other_serial)  # type: ignore[arg-type]
    assert rules.record_matches_peer(bare_key, *other_serial)      # type: ignore[arg-type]
    forged = _forged(tvs)
    assert not rules.record_matches_peer(bare_key, forged, certs.load_cert_der(forged))
    garbled = TrustRecord(role=Role.TVS, public_key=b"\x30\x03\x02\x01\x01")
    assert not rules.record_matches_peer(garbled, certs.cert_der(tvs.cert), tvs.cert)


def _unusable(rec: TrustRecord) -> TrustRecord:
    """``rec`` with a key that is neither PKCS#1 RSA nor an EC point, and no certificate to fall back on."""
    return TrustRecord(role=rec.role, dns_name=rec.dns_name, subject=rec.subject, issuer=rec.issuer,
                       serial=rec.serial, public_key=b"\x30\x03\x02\x01\x01", ip_address=rec.ip_address)


def test_signer_record_without_a_usable_key_rejects_never_skips() -> None:
    """§G.3/§G.4: the installed record naming the signer has a key that does not decode: the file is
    rejected as a bad signature (UNSUPPORTED_KEY), not accepted and not passed to another anchor."""
    rec, cm, other = ident("recovery-a"), ident("cm-a"), ident("recovery-x")
    s = new_store()
    install(s, "ITL", tl("ITL", rec, [rec.record(Role.SAST), _unusable(cm.record(Role.CCM_TFTP)),
                                      _unusable(other.record(Role.SAST))]))
    d = rules.decide_config(s, CFG + ".sgn", sgn(cm), profile=P8861, now=NOW)
    expect(d, "G.4-bad-signature", False, VerifyReason.UNSUPPORTED_KEY)
    assert "no usable key" in d.reason
    update = tl("ITL", other, [other.record(Role.SAST), rec.record(Role.SAST)], ts=NOW + 1)
    d2 = rules.decide_trust_list(s, update, kind="ITL", profile=P8861, now=NOW)
    expect(d2, "G.3-bad-signature", False, VerifyReason.UNSUPPORTED_KEY)
    assert s.itl is not None and s.itl.raw != update  # the installed ITL stays


def test_static_file_trust_states() -> None:
    """§G.4 for a static file in each trust state: none (unsigned or signed, not checked), rollback ITL
    (likewise), an installed ITL (unsigned refused; signed checked; damaged or misnamed refused)."""
    body = b"<ringList/>"
    name = "RingList.xml"

    def static(s: TrustStore, file_name: str, data: bytes) -> Decision:
        return rules.decide_static_file(s, file_name, data, profile=P8861, now=NOW)

    def signed_as(file_name: str, signer: Ident) -> bytes:
        return signed.build(body=body, filename=file_name, signer=signer.signer, timestamp=NOW, hash_alg=1)

    none = new_store()
    expect(static(none, name, body), "G.4-unsigned-no-trust-list", True)
    expect(static(none, name + ".sgn", signed_as(name + ".sgn", ident("cm-x"))),
           "G.4-signed-unchecked-no-trust-list", True)
    rollback = new_store()
    install(rollback, "ITL", tl("ITL", ident("recovery-a"), []))
    expect(static(rollback, name, body), "G.4-empty-itl-accepts-unsigned", True)
    expect(static(rollback, name + ".sgn", signed_as(name + ".sgn", ident("cm-x"))),
           "G.4-empty-itl-signature-unchecked", True)
    s = with_itl_and_config()
    expect(static(s, name, body), "G.4-unsigned-rejected", False, VerifyReason.NOT_SIGNED)
    expect(static(s, name + ".sgn", signed_as(name + ".sgn", ident("cm-a"))), "G.4-signed-by-itl-tftp", True)
    expect(static(s, name + ".sgn", b"\x01\x02garbage"), "G.4-malformed", False, VerifyReason.OTHER)
    expect(static(s, name + ".sgn", signed_as("Other.xml.sgn", ident("cm-a"))), "G.4-wrong-file-name", False,
           VerifyReason.OTHER)
    expect(static(s, name + ".sgn", tamper(signed_as(name + ".sgn", ident("cm-a")))), "G.4-bad-signature",
           False, VerifyReason.BAD_SIGNATURE)


def test_capf_server_certificate_that_does_not_decode_is_refused() -> None:
    """§F.1, §G.5: a CAPF server presenting bytes that are not a certificate is refused, saying so."""
    s = with_itl_and_config()
    d = rules.decide_capf_server(s, b"\x30\x03\x02\x01\x01", profile=P8861, now=NOW)
    assert not d.accepted and d.reason_code == VerifyReason.OTHER and "unreadable" in d.reason, d
