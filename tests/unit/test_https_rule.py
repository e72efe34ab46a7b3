"""decide_https_server (spec §E.7.1, §E.7.6, §G.5): every branch, on real certificates (seeded keys)."""

from __future__ import annotations

import re

from phoneemu.crypto import certs
from phoneemu.errors import VerifyReason
from phoneemu.formats.trustlist import Role
from phoneemu.phone import rules
from phoneemu.phone.events import Decision
from phoneemu.phone.store import TrustStore, TvsAnswer, TvsStatus
from tests.unit.test_rules import NOW, P7940, P8861, ident, install, itl_a, new_store, xml

SERVER = "127.0.0.1:8443"


def tomcat_der() -> bytes:
    return certs.cert_der(ident("tomcat-https").cert)


def store_with_tvs() -> TrustStore:
    """A phone with a config naming TVS servers and an ITL with a TVS record: TVS usable."""
    store = new_store()
    d = rules.decide_config(store, "SEP001122334455.cnf.xml", xml(), profile=P8861, now=NOW)
    assert d.accepted, d
    store.apply(d)
    install(store, "ITL", itl_a())
    assert rules.tvs_usable(store, P8861)
    return store


def decide(store: TrustStore, der: bytes | None, **kw: object) -> Decision:
    return rules.decide_https_server(store, der, profile=P8861, now=NOW, server=SERVER, **kw)  # type: ignore[arg-type]


def test_cert_in_trust_list_by_der() -> None:
    store = new_store()
    app = ident("app-in-itl")
    install(store, "ITL", itl_a(extra=[app.record(Role.APP_SERVER)]))
    d = decide(store, certs.cert_der(app.cert))
    assert d.accepted and d.rule == "E.7.1-https-cert-in-trust-list" and d.kind == "https"
    # The CallManager record (CCM+TFTP) also authenticates HTTPS.
    d = decide(store, certs.cert_der(ident("cm-a").cert))
    assert d.accepted and d.rule == "E.7.1-https-cert-in-trust-list"


def test_tvs_record_is_not_an_https_role() -> None:
    store = new_store()
    install(store, "ITL", itl_a())
    d = decide(store, certs.cert_der(ident("tvs-a").cert))
    # No config with TVS servers: TVS not usable, and the TVS role does not authenticate HTTPS.
    assert not d.accepted and d.rule == "E.7.1-https-not-trusted"
    assert d.reason_code is VerifyReason.UNKNOWN_SIGNER and d.status == "Host Not Found"


def test_needs_tvs_then_vouched_then_cached() -> None:
    store = store_with_tvs()
    der = tomcat_der()
    d = decide(store, der)
    assert d.pending and d.rule == "E.7.1-https-needs-tvs" and not d.accepted
    assert d.needs_tvs == rules.https_query_key(certs.load_cert_der(der))
    answer = TvsAnswer(cert_der=der, roles=frozenset({Role.APP_SERVER}), ttl=3600)
    d2 = decide(store, der, tvs_answer=answer)
    assert d2.accepted and d2.rule == "E.7.1-https-vouched-by-tvs"
    assert d.needs_tvs is not None
    store.cache_tvs(d.needs_tvs, answer, NOW)
    d3 = decide(store, der)
    assert d3.accepted and d3.rule == "E.7.1-https-cached"
    # Beyond the TTL the cache no longer answers: TVS must be asked again.
    d4 = rules.decide_https_server(store, der, profile=P8861, now=NOW + 3600, server=SERVER)
    assert d4.pending and d4.rule == "E.7.1-https-needs-tvs"


def test_tvs_unknown_and_unreachable_show_host_not_found() -> None:
    store = store_with_tvs()
    der = tomcat_der()
    d = decide(store, der, tvs_answer=TvsStatus.NOT_FOUND)
    assert not d.accepted and d.rule == "E.7.1-https-tvs-unknown" and d.status == "Host Not Found"
    assert d.reason_code is VerifyReason.UNKNOWN_SIGNER and not d.pending
    d = decide(store, der, tvs_answer=TvsStatus.UNREACHABLE)
    assert not d.accepted and d.rule == "E.7.1-https-tvs-unreachable" and d.status == "Host Not Found"
    assert d.reason_code is VerifyReason.TVS_UNREACHABLE
    # An answer about another certificate is not a vouching for this one.
    other = TvsAnswer(cert_der=certs.cert_der(ident("cm-a").cert), roles=frozenset({Role.APP_SERVER}))
    assert decide(store, der, tvs_answer=other).rule == "E.7.1-https-tvs-unknown"


def test_tvs_wrong_role() -> None:
    store = store_with_tvs()
    der = tomcat_der()
    d = decide(store, der, tvs_answer=TvsAnswer(cert_der=der, roles=frozenset({Role.SAST, Role.TVS})))
    assert not d.accepted and d.rule == "E.7.1-https-tvs-wrong-role"
    assert d.reason_code is VerifyReason.WRONG_ROLE


def test_tvs_not_usable_without_tvs_model() -> None:
    store = store_with_tvs()
    d = rules.decide_https_server(store, tomcat_der(), profile=P7940, now=NOW, server=SERVER)
    assert not d.accepted and d.rule == "E.7.1-https-not-trusted"


def test_malformed_or_missing_certificate() -> None:
    store = store_with_tvs()
    for bad in (None, b"", b"\x30\x03\x02\x01"):
        d = decide(store, bad)
        assert not d.accepted and d.rule == "E.7.1-https-malformed" and d.reason_code is VerifyReason.OTHER


def test_https_rule_names_are_documented() -> None:
    import inspect

    doc = rules.__doc__ or ""
    code = inspect.getsource(rules).replace(doc, "")
    names = set(re.findall(r'"(E\.7\.1-https-[a-z0-9-]+)"', code))
    assert len(names) == 12, names
    missing = sorted(n for n in names if f"``{n}``" not in doc)
    assert not missing, missing


def test_locked_phone_fails_https_even_for_a_listed_server() -> None:
    """§G.3.5: after a failed trust-list update the phone is locked and its HTTPS services fail."""
    store = new_store()
    app = ident("app-in-itl")
    install(store, "ITL", itl_a(extra=[app.record(Role.APP_SERVER)]))
    assert decide(store, certs.cert_der(app.cert)).accepted
    store.locked = True
    d = decide(store, certs.cert_der(app.cert))
    assert not d.accepted and d.rule == "E.7.1-https-phone-locked" and d.status == "Host Not Found"


def test_forged_serial_and_issuer_is_not_the_listed_server() -> None:
    """A self-made certificate copying a listed server's serial and issuer (another key) is not that
    server: a record matches by its certificate, or by its key (:func:`rules.record_matches_peer`)."""
    from tests.unit.test_rules import _forged

    store = new_store()
    app = ident("app-in-itl")
    install(store, "ITL", itl_a(extra=[app.record(Role.APP_SERVER)]))
    d = decide(store, _forged(app))
    assert not d.accepted and d.rule == "E.7.1-https-not-trusted"


def test_tvs_server_untrusted_has_its_own_rule() -> None:
    """Every TVS server reached presented a certificate that is no ITL TVS record (§E.1)."""
    d = decide(store_with_tvs(), tomcat_der(), tvs_answer=TvsStatus.SERVER_UNTRUSTED)
    assert not d.accepted and d.rule == "E.7.1-https-tvs-server-untrusted" and d.status == "Host Not Found"
    assert d.reason_code is VerifyReason.TVS_UNREACHABLE
