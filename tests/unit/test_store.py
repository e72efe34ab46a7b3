"""TrustStore (spec §G.1, §B.5, §E.7.3), InternCache sharing, Decision/EventLog bounds (§H.2)."""

from __future__ import annotations

import datetime as dt
from functools import cache

import pytest
from cryptography import x509

from phoneemu.crypto import certs, keys
from phoneemu.crypto.keys import KeySpec, PrivateKey, generate_key
from phoneemu.errors import EncodeError, SizeLimitError, VerifyReason
from phoneemu.formats import config as config_fmt
from phoneemu.formats import trustlist
from phoneemu.formats.config import DeviceConfig, Server
from phoneemu.formats.header import FileSigner
from phoneemu.formats.trustlist import Role, TrustRecord
from phoneemu.phone import rules, status
from phoneemu.phone.events import Decision, Event, EventLog, QueryKey
from phoneemu.phone.profile import get_profile, profile_from_dict
from phoneemu.phone.store import (
    TVS_CACHE_MAX,
    AcceptedConfig,
    Credential,
    InternCache,
    TrustStore,
    TvsAnswer,
    TvsStatus,
)

NOW = 1_800_000_000
P = get_profile("cp-8861")


@cache
def _ident(name: str) -> tuple[PrivateKey, x509.Certificate]:
    key = generate_key(KeySpec(kind="rsa", bits=1024), unsafe_seed=f"store-{name}")
    t = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    req = certs.CertRequest(subject=f"CN={name}", public_key=key.public_key(), serial=len(name) + 7,
                            not_before=t - dt.timedelta(days=1), not_after=t + dt.timedelta(days=900))
    return key, certs.issue_certificate(req, issuer_key=key)


def _itl(ts: int = NOW, n: int = 1) -> bytes:
    key, cert = _ident("sast")
    recs = [TrustRecord.from_certificate(cert, Role.SAST)] * n
    return trustlist.build(kind="ITL", records=recs, signer=FileSigner(key=key, cert=cert), timestamp=ts)


def _xml() -> bytes:
    servers = (Server(host="127.0.0.1", port=2445),)
    cfg = DeviceConfig(device_name="SEP001122334455", tvs_servers=servers, capf_auth_mode=2)
    return config_fmt.build(cfg)


def _store(**kw: object) -> TrustStore:
    return TrustStore(profile=P, intern=InternCache(), **kw)  # type: ignore[arg-type]


def test_intern_shares_parsed_lists_and_bytes() -> None:
    cache = InternCache()
    a, b = TrustStore(profile=P, intern=cache), TrustStore(profile=P, intern=cache)
    raw = _itl()
    for s in (a, b):
        d = rules.decide_trust_list(s, bytes(raw), kind="ITL", profile=P, now=NOW)
        s.apply(d)
    assert a.itl is b.itl and a.itl is not None
    assert cache.hits >= 1
    ca = cache.config(bytes(_xml()), file="x.cnf.xml")
    assert cache.config(bytes(_xml()), file="x.cnf.xml") is ca
    assert cache.adopt_config(AcceptedConfig(file="x.cnf.xml", xml=ca.xml, config=ca.config)) is ca


def test_intern_cache_is_bounded() -> None:
    cache = InternCache(max_items=2)
    for i in range(4):
        cache.trust_list(_itl(NOW + i), kind="ITL", limit=65536)
    assert len(cache) == 2
    with pytest.raises(SizeLimitError):
        cache.trust_list(_itl(), kind="ITL", limit=1024)


def test_apply_installs_only_accepting_decisions() -> None:
    s = _store()
    tl = trustlist.parse(_itl())
    s.apply(Decision(rule="G.3.5-reject-unknown-signer", accepted=False, reason="no", file="ITLFile.tlv",
                     reason_code=VerifyReason.UNKNOWN_SIGNER, kind="ITL", artefact=tl))
    assert s.itl is None and s.locked
    s.apply(Decision(rule="G.2-first-itl-tofu", accepted=True, reason="ok", file="ITLFile.tlv", kind="ITL",
                     artefact=tl))
    assert s.itl is not None and s.itl_rule == "G.2-first-itl-tofu" and not s.locked
    with pytest.raises(EncodeError):
        s.apply(Decision(rule="x", accepted=True, reason="", file="", kind="CTL", artefact=tl))
    with pytest.raises(EncodeError):
        s.apply(Decision(rule="x", accepted=True, reason="", file="", kind="ITL", artefact=object()))


def test_lock_is_cleared_only_by_installing_the_refused_kind() -> None:
    """§G.3.5: a refused CTL keeps the phone locked when an ITL is installed afterwards."""
    s = _store()
    tl = trustlist.parse(_itl())
    s.apply(Decision(rule="G.3.5-reject-unknown-signer", accepted=False, reason="no", file="CTLFile.tlv",
                     reason_code=VerifyReason.UNKNOWN_SIGNER, kind="CTL"))
    assert s.locked and s.locked_by == {"CTL"}
    s.apply(Decision(rule="G.2-first-itl-tofu", accepted=True, reason="ok", file="ITLFile.tlv", kind="ITL",
                     artefact=tl))
    assert s.itl is not None and s.locked and s.locked_by == {"CTL"}
    s.erase_trust_lists()
    assert not s.locked


def test_store_never_holds_oversize_trust_list() -> None:
    small = profile_from_dict("cp-8861", {"trust_list_limit": 2048})
    s = TrustStore(profile=small, intern=InternCache())
    big = trustlist.parse(_itl(n=4))
    assert len(big.raw) > 2048
    with pytest.raises(SizeLimitError):
        s.apply(Decision(rule="G.2-first-itl-tofu", accepted=True, reason="", file="", kind="ITL",
                         artefact=big))
    assert s.itl is None
    with pytest.raises(SizeLimitError):
        s.restore(ctl=None, itl=big, config=None, ctl_rule=None, itl_rule="x", config_rule=None)


def test_pending_and_legacy_decisions_do_not_lock() -> None:
    s = _store()
    s.apply(Decision(rule="G.3.4-needs-tvs", accepted=False, reason="", file="", kind="ITL",
                     needs_tvs=QueryKey(subject="a", issuer="b", serial=b"\x01")))
    s.apply(Decision(rule="G.2-legacy-ignores-itl", accepted=False, reason="", file="", kind="ITL"))
    s.apply(Decision(rule="G.4-unsigned-rejected", accepted=False, reason="", file="", kind="config",
                     reason_code=VerifyReason.NOT_SIGNED))
    assert not s.locked


def _asked(cert: x509.Certificate, subject: str | None = None) -> QueryKey:
    """The TVS QUERY key about ``cert`` (spec §E.7.2); another ``subject`` only tells keys apart (an answer
    is about the certificate asked when serial and issuer match)."""
    return QueryKey(subject=certs.dn_text(cert.subject) if subject is None else subject,
                    issuer=certs.dn_text(cert.issuer), serial=certs.serial_bytes(cert.serial_number))


def test_tvs_cache_ttl_flush_and_bound() -> None:
    s = _store()
    cert = _ident("tvs-signer")[1]
    key = _asked(cert)
    ans = TvsAnswer(cert_der=certs.cert_der(cert), roles=frozenset({0}), ttl=10)
    s.cache_tvs(key, ans, NOW)
    s.cache_tvs(_asked(cert, "y"), TvsStatus.NOT_FOUND, NOW)  # not cached
    s.cache_tvs(_asked(cert, "z"), TvsAnswer(cert_der=certs.cert_der(cert), roles=frozenset(), ttl=0), NOW)
    assert s.tvs_cache_size == 1
    assert s.tvs_lookup(key, NOW + 9) == ans
    assert s.tvs_lookup(key, NOW + 10) is None and s.tvs_cache_size == 0
    for i in range(TVS_CACHE_MAX + 5):
        s.cache_tvs(_asked(cert, str(i)), ans, NOW)
    assert s.tvs_cache_size == TVS_CACHE_MAX
    assert s.expire_tvs(NOW + 5) == TVS_CACHE_MAX and s.expire_tvs(NOW + 11) == 0
    s.cache_tvs(key, ans, NOW)
    s.apply(rules.decide_trust_list(s, _itl(), kind="ITL", profile=P, now=NOW))
    assert s.tvs_cache_size == 0  # §E.7.3 flush after a trust-list update
    with pytest.raises(EncodeError):
        TvsAnswer(cert_der=b"", roles=frozenset(), ttl=3_000_000)


def test_the_tvs_cache_refuses_an_answer_about_another_certificate() -> None:
    """§E.7.2, §G.3.4: a QUERY answer whose certificate is not the one asked (serial or issuer differ) or
    cannot be read is refused by every rule; the store itself does not cache it (cached, it would be
    refused until its TTL ran out although TVS was fixed meanwhile). A VERIFY answer holds the
    certificate the phone sent: always about it."""
    s = _store()
    asked, other = _ident("tvs-asked")[1], _ident("tvs-other")[1]
    key = _asked(asked)
    for der in (certs.cert_der(other), b"der"):
        assert s.cache_tvs(key, TvsAnswer(cert_der=der, roles=frozenset({0}), ttl=600), NOW) is False
    assert s.tvs_cache_size == 0 and s.tvs_lookup(key, NOW) is None
    verify = TvsAnswer(cert_der=b"der", roles=frozenset({7}), ttl=600, cert_from_tvs=False)
    assert s.cache_tvs(key, verify, NOW) is True and s.tvs_lookup(key, NOW) == verify
    right = TvsAnswer(cert_der=certs.cert_der(asked), roles=frozenset({0}), ttl=600)
    assert s.cache_tvs(key, right, NOW) is True and s.tvs_lookup(key, NOW) == right


def test_an_answer_is_judged_once_for_the_boot_note_and_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The boot notes a mismatch and then caches (a fleet's hot path): the certificate is checked once,
    the verdict kept on the answer for that key; another key is judged afresh."""
    judged: list[QueryKey] = []
    real = rules.tvs_cert_mismatch

    def counting(cert: x509.Certificate, key: QueryKey) -> tuple[str, ...]:
        judged.append(key)
        return real(cert, key)

    monkeypatch.setattr(rules, "tvs_cert_mismatch", counting)
    asked, other = _ident("tvs-asked")[1], _ident("tvs-other")[1]
    s = _store()
    for cert in (asked, other):
        answer = TvsAnswer(cert_der=certs.cert_der(cert), roles=frozenset({0}), ttl=600)
        first = answer.mismatch(_asked(asked))
        assert s.cache_tvs(_asked(asked), answer, NOW) is (first is None)
        assert judged == [_asked(asked)], judged
        judged.clear()
    assert answer.mismatch(_asked(other)) is None and judged == [_asked(other)]


def test_config_sets_tvs_servers_and_capf_mode() -> None:
    s = _store()
    d = rules.decide_config(s, "SEP001122334455.cnf.xml", _xml(), profile=P, now=NOW)
    s.apply(d)
    assert s.tvs_servers == (Server(host="127.0.0.1", port=2445),)
    assert s.capf_auth_mode == 2 and s.config_rule == d.rule


def test_unchanged_config_reuses_the_installed_parse_only() -> None:
    """A re-downloaded, byte-identical config is still decided by the rules; only its parse is reused."""
    cache = InternCache(max_items=1)
    s = TrustStore(profile=P, intern=cache)
    name = "SEP001122334455.cnf.xml"
    s.apply(rules.decide_config(s, name, _xml(), profile=P, now=NOW))
    installed = s.config
    assert installed is not None
    cache.config(b"<device/>", file="evicts.cnf.xml")  # the intern cache no longer holds it
    again = rules.decide_config(s, name, bytes(_xml()), profile=P, now=NOW)
    assert again.accepted and again.artefact is installed
    other = rules.decide_config(s, "SEP001122334466.cnf.xml", _xml(), profile=P, now=NOW)
    assert other.artefact is not installed  # another file name: parsed on its own
    changed = _xml().replace(b"</device>", b"<!-- changed --></device>")
    assert changed != _xml()
    d = rules.decide_config(s, name, changed, profile=P, now=NOW)
    assert isinstance(d.artefact, AcceptedConfig) and d.artefact is not installed
    assert d.artefact.xml == changed


def test_erase_and_factory_reset_keep_mic() -> None:
    key, cert = _ident("mic")
    mic = Credential.of(cert, key)
    s = _store(mic=mic)
    s.apply(rules.decide_config(s, "SEP001122334455.cnf.xml", _xml(), profile=P, now=NOW))
    s.apply(rules.decide_trust_list(s, _itl(), kind="ITL", profile=P, now=NOW))
    assert s.config is not None
    s.lsc = mic
    s.firmware_load = "load"
    s.locked = True
    assert s.erase_trust_lists() == status.ERASING_CTL_ITL
    assert s.itl is None and s.itl_rule is None and not s.locked
    s.apply(rules.decide_trust_list(s, _itl(), kind="ITL", profile=P, now=NOW))
    s.factory_reset()
    state: tuple[object, ...] = (s.itl, s.ctl, s.config, s.lsc, s.symmetric_key, s.firmware_load)
    assert state == (None,) * 6
    assert s.mic == mic and s.mic.cert() == cert and s.credential is mic
    assert keys.public_key_spki_der(s.mic.key().public_key()) == keys.public_key_spki_der(key.public_key())


def test_itl_checksum_style() -> None:
    for name, n in (("cp-8861", 40), ("cp-7962", 32)):
        prof = get_profile(name)
        s = TrustStore(profile=prof, intern=InternCache())
        assert s.itl_checksum() is None
        s.apply(rules.decide_trust_list(s, _itl(), kind="ITL", profile=prof, now=NOW))
        assert len(s.itl_checksum() or "") == n


def test_symmetric_key() -> None:
    s = TrustStore(profile=get_profile("cp-7942-symmetric"), intern=InternCache())
    s.set_symmetric_key(bytes(range(1, 17)))
    assert s.symmetric_key == bytes(range(1, 17))
    s.set_symmetric_key(bytes(16))  # 32 zero digits clear the key (§C.5)
    assert s.symmetric_key is None
    with pytest.raises(EncodeError, match="128-bit keys"):
        s.set_symmetric_key(bytes(range(1, 33)))
    pki_only = TrustStore(profile=get_profile("cp-8861"), intern=InternCache())
    with pytest.raises(EncodeError, match="cp-8861 has no manual config key"):
        pki_only.set_symmetric_key(bytes(range(1, 17)))
    pki_only.set_symmetric_key(bytes(16))  # clearing is always fine


def test_store_is_slotted() -> None:
    assert not hasattr(_store(), "__dict__")


def test_decision_validation_and_event_log() -> None:
    with pytest.raises(EncodeError):
        Decision(rule="", accepted=True, reason="", file="")
    with pytest.raises(EncodeError):
        Decision(rule="r", accepted=True, reason="", file="", reason_code=VerifyReason.OTHER)
    with pytest.raises(EncodeError):
        Decision(rule="r", accepted=True, reason="", file="", needs_tvs=QueryKey(subject="", issuer="",
                                                                                serial=b""))
    log = EventLog(limit=5)
    for i in range(40):
        log.record(Decision(rule=f"r{i}", accepted=False, reason="x", file="f", status=f"s{i}",
                            reason_code=VerifyReason.BAD_SIGNATURE), time=i, phone="SEP1")
    assert len(log) == 5 and [e.rule for e in log] == [f"r{i}" for i in range(35, 40)]
    assert len(log.status_messages) == status.STATUS_MESSAGES_KEPT == 30
    assert log.status_messages[-1] == "s39"
    assert log.events[-1] == Event(time=39, phone="SEP1", kind="decision", rule="r39", file="f", reason="x",
                                   accepted=False, detail="bad-signature")
    log.status(status.file_not_found("CTLFile.tlv"))
    assert log.status_messages[-1] == "File Not Found <CTLFile.tlv>"
    with pytest.raises(EncodeError):
        EventLog(limit=0)


def test_status_texts() -> None:
    assert status.installed_message(ctl=True, itl=True) == "CTL and ITL installed"
    assert status.installed_message(ctl=True, itl=False) == "CTL installed"
    assert status.installed_message(ctl=False, itl=True) == "ITL installed"
    assert status.installed_message(ctl=False, itl=False) == "No Trust List installed"
    assert status.cfg_file_not_found("Cfg File") == "File not found <Cfg File>"


def test_credential_key_is_parsed_once_per_pem_object(monkeypatch: pytest.MonkeyPatch) -> None:
    key, cert = _ident("cred-memo")
    made = Credential.of(cert, key)
    loads: list[bytes] = []
    real = keys.load_private_key_pem

    def counting(data: bytes, *, source: str = "key") -> PrivateKey:
        loads.append(data)
        return real(data, source=source)

    monkeypatch.setattr(keys, "load_private_key_pem", counting)
    assert made.key() is key and loads == []  # made from the key: never parsed
    from_flash = Credential(cert_der=made.cert_der, key_pem=bytes(bytearray(made.key_pem)))
    first = from_flash.key()
    assert from_flash.key() is first and len(loads) == 1  # loaded once, then remembered
    assert keys.private_key_pem(first) == made.key_pem
    assert Credential.of_der(made.cert_der, key) == made  # equal credentials, whatever the memo holds
