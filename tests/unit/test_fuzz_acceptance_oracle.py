"""The acceptance oracle of ``fuzz --target phoneemu`` (phoneemu.fuzz.acceptance): the phone's §G decision
on a mutant; an acceptance no held key of the right role signed is a finding (``accepted-unverified``)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from phoneemu.crypto.keys import KeySpec, generate_key
from phoneemu.errors import DecodeError
from phoneemu.formats import signed, trustlist
from phoneemu.formats.header import FileSigner, parse_header
from phoneemu.fuzz import acceptance
from phoneemu.fuzz.corpus import Corpus, build_corpus
from phoneemu.fuzz.engine import FuzzConfig, fuzz
from phoneemu.fuzz.mutators import Mutator
from phoneemu.fuzz.targets import AcceptedUnverifiedError, PythonTarget, phoneemu_callable
from phoneemu.phone import rules
from phoneemu.phone.events import Decision


def _seed(corpus: Corpus, name: str) -> bytes:
    return corpus.seeds[corpus.names.index(name)]


def _tampered(data: bytes) -> bytes:
    """``data`` with a byte of its signature (tag 12's value) flipped: the signature no longer holds."""
    start, _ = parse_header(data, fmt="fuzz").signature_span
    at = start + 3 + 5
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def _accept_all(kind: str) -> object:
    """A rule that accepts anything: what a §G hole would look like."""
    def decide(*_a: object, **_k: object) -> Decision:
        return Decision(rule="X-accepts-anything", accepted=True, reason="deliberately", file="f", kind=kind)
    return decide


def _target(fmt: str, corpus: Corpus | None = None) -> PythonTarget:
    """The in-process target, its held phone built (by the real rules) before a test patches them."""
    c = corpus if corpus is not None else build_corpus(fmt)
    return PythonTarget(phoneemu_callable(fmt, c), warnings_as_errors=True)


def _run(target: PythonTarget, data: bytes) -> tuple[str, str, str]:
    o = target.run(data)
    return o.status, o.signature, o.detail


@pytest.mark.parametrize(("fmt", "rule", "seed"), [
    ("itl", "decide_trust_list", "sast-only-sha512"),
    ("ctl", "decide_trust_list", "etoken-like"),
    ("sgn", "decide_config", "config"),
    ("sgn", "decide_static_file", "ringlist-sha512"),
    ("enc", "decide_config", "pki-sha1"),
])
def test_an_accepted_mutant_with_a_stale_signature_is_a_finding(monkeypatch: pytest.MonkeyPatch, fmt: str,
                                                               rule: str, seed: str) -> None:
    corpus = build_corpus(fmt)
    bad = _tampered(_seed(corpus, seed))
    target = _target(fmt, corpus)
    status, _, _ = _run(target, bad)
    assert status == "handled"  # the real rules reject it (and the signature check before them)
    monkeypatch.setattr(rules, rule, _accept_all(fmt))
    status, signature, detail = _run(target, bad)
    assert status == "accepted-unverified"
    assert signature == f"accepted by X-accepts-anything ({fmt}), signed by no key allowed to sign it"
    assert "X-accepts-anything" in detail and "verifies with no" in detail


def test_a_genuine_resigned_update_is_no_finding() -> None:
    """An ITL update signed by the held ITL's SAST (ITLRecovery) key: accepted (G.3.3), and it verifies."""
    corpus = build_corpus("itl")
    full = trustlist.parse(_seed(corpus, "full"))
    update = trustlist.build(kind="ITL", records=list(full.records)[:3], signer=corpus.signer.signer,
                             timestamp=1_767_225_700)
    phone = acceptance.held_phone("itl", corpus)
    d = acceptance.check_acceptance("itl", phone, update)
    assert (d.rule, d.accepted) == ("G.3.3-signed-by-itl-sast", True)
    assert _run(_target("itl", corpus), update)[0] == "ok"


def _foreign_itl() -> bytes:
    """An ITL signed by a key no corpus list holds (its own SAST record names it)."""
    from phoneemu.crypto import certs
    from phoneemu.fuzz.corpus import _NOT_AFTER, _NOT_BEFORE

    key = generate_key(KeySpec(kind="rsa", bits=1024), unsafe_seed="fz-oracle-foreign")
    cert = certs.issue_certificate(certs.CertRequest(subject="CN=foreign;O=elsewhere", serial=77,
                                                     public_key=key.public_key(), not_before=_NOT_BEFORE,
                                                     not_after=_NOT_AFTER), issuer_key=key)
    rec = trustlist.TrustRecord.from_certificate(cert, trustlist.Role.SAST)
    return trustlist.build(kind="ITL", records=[rec], signer=FileSigner(key=key, cert=cert),
                           timestamp=1_767_225_700)


def test_an_itl_by_an_unknown_signer_is_rejected_and_no_finding() -> None:
    d = acceptance.check_acceptance("itl", acceptance.held_phone("itl", build_corpus("itl")), _foreign_itl())
    assert not d.accepted and d.rule == "G.3.4-tvs-unreachable"  # TVS listed in the held config, offline


@pytest.mark.parametrize(("held", "rule"), [("rollback", "G.3.6-empty-itl-accepts-any"),
                                            ("", "G.2-first-itl-tofu")])
def test_acceptances_that_section_g_allows_unsigned_are_no_finding(held: str, rule: str) -> None:
    """§G.3 step 6 / §B.7 (the rollback ITL held: any new ITL) and §G.2 (no list held: trust on first use)
    accept an ITL no held key signed: the oracle names them, no finding."""
    corpus = build_corpus("itl")
    itl = _seed(corpus, held) if held else b""
    phone = acceptance.held_phone("itl", corpus, itl=itl, tvs=False)
    d = acceptance.check_acceptance("itl", phone, _foreign_itl())
    assert (d.rule, d.accepted) == (rule, True)


def test_a_config_with_a_stale_signature_under_the_rollback_itl_is_no_finding() -> None:
    """§G.4 third row, §G.11: the rollback ITL (and no CTL) disables signature checks."""
    corpus = build_corpus("sgn")
    phone = acceptance.held_phone("sgn", corpus, itl=_seed(build_corpus("itl"), "rollback"), ctl=b"",
                                  tvs=False)
    d = acceptance.check_acceptance("sgn", phone, _tampered(_seed(corpus, "config")))
    assert (d.rule, d.accepted) == ("G.4-empty-itl-signature-unchecked", True)


def test_a_config_signed_by_a_sast_only_key_is_a_finding_when_accepted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The role matters (§G.5): a config that verifies with the held SAST (ITLRecovery) key, not a
    CCM+TFTP/TFTP one, accepted, is a finding."""
    corpus = build_corpus("sgn")
    sast = build_corpus("itl").signer
    sf = signed.parse(_seed(corpus, "config"))
    by_sast = signed.build(body=sf.body, filename=sf.header.filename, signer=sast.signer, timestamp=1)
    phone = acceptance.held_phone("sgn", corpus)
    assert not acceptance.check_acceptance("sgn", phone, by_sast).accepted
    monkeypatch.setattr(rules, "decide_config", _accept_all("config"))
    with pytest.raises(AcceptedUnverifiedError, match="CCM\\+TFTP/TFTP"):
        acceptance.check_acceptance("sgn", phone, by_sast)


def test_the_held_phone_is_built_once_and_never_changed() -> None:
    corpus = build_corpus("ctl")
    run = phoneemu_callable("ctl", corpus)
    phone = acceptance.held_phone("ctl", corpus)
    before = (phone.store.ctl, phone.store.itl, phone.store.locked, phone.store.config)
    for data in [*corpus.seeds, *(_tampered(s) for s in corpus.seeds), _foreign_itl(), b"\x01\x02"]:
        with contextlib.suppress(Exception):  # rejections; the point is the store after
            run(data)
        acceptance.check_acceptance("ctl", phone, data)
    assert (phone.store.ctl, phone.store.itl, phone.store.locked, phone.store.config) == before


def test_a_rule_that_raises_instead_of_deciding_is_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    def raises(*_a: object, **_k: object) -> Decision:
        raise DecodeError("a rule raised", fmt="trustlist", offset=0)

    target = _target("itl")
    monkeypatch.setattr(rules, "decide_trust_list", raises)
    status, signature, _ = _run(target, _seed(build_corpus("itl"), "full"))
    assert status == "crash" and signature.startswith("DecisionRaisedError at ")


def test_a_crash_of_the_parsing_stages_keeps_its_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stage runs after the others whatever they raised; their crash is still the finding (its signature
    unchanged, so that it minimises as before), unless the oracle finds an acceptance."""
    from phoneemu.fuzz import targets

    def stages(*_a: object, **_k: object) -> object:
        def run(_data: bytes) -> None:
            raise IndexError("parser bug")
        return run

    monkeypatch.setattr(targets, "_stages_callable", stages)
    seed = _seed(build_corpus("itl"), "full")
    target = _target("itl")
    status, signature, _ = _run(target, seed)
    assert status == "crash" and signature.startswith("IndexError at ")
    monkeypatch.setattr(rules, "decide_trust_list", _accept_all("ITL"))
    assert _run(target, _tampered(seed))[0] == "accepted-unverified"


def test_without_acceptance_the_rules_are_not_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = build_corpus("itl")
    target = PythonTarget(phoneemu_callable("itl", corpus, acceptance=False))
    monkeypatch.setattr(rules, "decide_trust_list", _accept_all("ITL"))
    o = target.run(_tampered(corpus.seeds[0]))
    assert o.status == "handled"


def test_firmware_and_messages_have_no_acceptance_stage() -> None:
    assert acceptance.acceptance_stage("firmware", build_corpus("firmware")) is None
    assert acceptance.acceptance_stage("tvs-response", build_corpus("tvs-response")) is None


@pytest.mark.parametrize("fmt", ["itl", "sgn"])
def test_a_short_resigned_campaign_finds_nothing_and_a_hole_is_saved(tmp_path: Path, fmt: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = build_corpus(fmt)
    target = PythonTarget(phoneemu_callable(fmt, corpus), hang_after=5.0, warnings_as_errors=True)
    report = fuzz(FuzzConfig(fmt=fmt, runs=300, seed=3, out=tmp_path / "a", minimize=False), target,
                  Mutator(corpus, resign_ratio=1.0))
    assert report.findings == {}, report.findings
    assert report.statuses["ok"] > 0  # some mutants were accepted, and verified
    monkeypatch.setattr(rules, "decide_trust_list" if fmt == "itl" else "decide_config", _accept_all(fmt))
    monkeypatch.setattr(rules, "decide_static_file", _accept_all(fmt))
    report = fuzz(FuzzConfig(fmt=fmt, runs=200, seed=3, out=tmp_path / "b", minimize=True,
                             minimize_attempts=50, minimize_time=2.0),
                  target, Mutator(corpus, resign_ratio=0.0))
    sig = f"accepted by X-accepts-anything ({fmt}), signed by no key allowed to sign it"
    assert list(report.findings) == [sig]
    f = report.findings[sig]
    assert f.kind == "accepted-unverified" and f.directory is not None
    info = json.loads((f.directory / "info.json").read_text())
    assert info["kind"] == "accepted-unverified" and info["signature"] == sig
    assert report.statuses["accepted-unverified"] == f.count

