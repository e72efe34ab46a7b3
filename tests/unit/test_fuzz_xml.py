"""Hostile XML in a signed config's body (phoneemu.fuzz.xmlmut, the ``config-xml`` mutator) and the
``sgn`` target parsing that body as a phone would (spec §C.1, §C.2)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.errors import DecodeError, VerificationError
from phoneemu.formats import config as config_fmt
from phoneemu.formats import signed
from phoneemu.fuzz.corpus import build_corpus
from phoneemu.fuzz.mutators import Mutator, mutators_for
from phoneemu.fuzz.targets import RoundTripError, phoneemu_callable
from phoneemu.fuzz.xmlmut import MAX_BODY, XML_OPS, mutate_xml

CORPUS = build_corpus("sgn")
CONFIG_BODY = signed.parse(CORPUS.seeds[CORPUS.names.index("config")]).body


def _resigned_config(body: bytes, filename: str = "SEP001122334455.cnf.xml.sgn") -> bytes:
    return signed.build(body=body, filename=filename, signer=CORPUS.signer.signer, timestamp=1_700_000_000)


@pytest.mark.parametrize("name", sorted(XML_OPS))
def test_each_operation_is_deterministic_bounded_and_changes_the_body(name: str) -> None:
    outs = {XML_OPS[name](CONFIG_BODY, random.Random(i)) for i in range(40)}
    assert CONFIG_BODY not in outs or len(outs) > 1
    assert all(XML_OPS[name](CONFIG_BODY, random.Random(i)) == XML_OPS[name](CONFIG_BODY, random.Random(i))
               for i in range(5))
    assert max(len(mutate_xml(CONFIG_BODY, random.Random(i))) for i in range(200)) <= MAX_BODY


def test_the_operations_reach_the_parsers_refusals() -> None:
    """What each family is for: the config parser refuses it naming why (not only "not well-formed")."""
    seen: dict[str, set[str]] = {}
    for name, op in XML_OPS.items():
        for i in range(60):
            try:
                config_fmt.parse(op(CONFIG_BODY, random.Random(i)))
            except DecodeError as exc:
                seen.setdefault(name, set()).add(exc.message)
    text = {name: " | ".join(sorted(msgs)) for name, msgs in seen.items()}
    assert "entity" in text["entities"] or "DTD" in text["entities"]
    assert "nested deeper than 64 levels" in text["nesting"]
    assert "appears more than once" in text["duplicate-or-drop"]
    assert "is not an integer" in text["typed-value"]
    assert "TVS servers, at most 5" in text["server-list"] and "CAPF servers" in text["server-list"]
    assert "config limit" in text["long-text"]
    assert "encoding" in text["encoding"]


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 3))
def test_chained_operations_only_ever_raise_decode_error(seed: int, count: int) -> None:
    rng = random.Random(seed)
    body = CONFIG_BODY
    for _ in range(count):
        body = mutate_xml(body, rng)
    try:
        cfg = config_fmt.parse(body)
    except DecodeError:
        return
    rebuilt = config_fmt.build(cfg)  # may be a little longer than a body just under the limit
    assert config_fmt.parse(rebuilt, limit=max(config_fmt.CONFIG_LIMIT, len(rebuilt))) == cfg


def test_config_xml_is_an_sgn_mutator_only() -> None:
    assert "config-xml" in mutators_for("sgn")
    assert all("config-xml" not in mutators_for(f) for f in ("itl", "ctl", "enc", "firmware"))
    m = Mutator(CORPUS, resign_ratio=1.0, only=["config-xml"])
    mutants = [m.mutate(random.Random(i)) for i in range(60)]
    applied = [mu for mu in mutants if "config-xml" in mu.ops]
    assert applied and all(signed.parse(mu.data).body != CONFIG_BODY for mu in applied
                           if mu.ops == ("config-xml",))


def test_sgn_target_parses_a_signed_config_body_as_a_phone_would() -> None:
    """Past the signature, a ``*.cnf.xml.sgn`` body is the phone's config: a bad one is a rejection
    (before, the target stopped at the signature and took any body); another signed file's is not parsed."""
    run = phoneemu_callable("sgn", CORPUS)
    run(_resigned_config(CONFIG_BODY))
    bad = CONFIG_BODY.replace(b">2<", b">9<")
    with pytest.raises(DecodeError, match=r"deviceSecurityMode: '9' is not an integer in 1\.\.3"):
        run(_resigned_config(bad))
    run(_resigned_config(bad, filename="Ringlist.xml.sgn"))  # not a config: its body is not parsed
    with pytest.raises(VerificationError):  # a stale signature still stops it first
        run(_resigned_config(bad)[:-1] + b"x")


def test_sgn_target_reads_the_call_managers_and_credentials_a_registering_phone_reads() -> None:
    """The ``config-sip`` seed carries a ``devicePool`` and ``sipLines`` (spec §H.5, §G.13): the target
    reads them as ``phone/sip.py`` does, so a malformed member or line is a rejection naming it."""
    run = phoneemu_callable("sgn", CORPUS)
    body = signed.parse(CORPUS.seeds[CORPUS.names.index("config-sip")]).body
    run(_resigned_config(body))
    cut = body.replace(b"<processNodeName>10.0.0.2</processNodeName>", b"")
    with pytest.raises(DecodeError, match=r"member\[1\]\.callManager"):
        run(_resigned_config(cut))
    twice = body.replace(b"<authName>alice</authName>", b"<authName>a</authName><authName>b</authName>")
    with pytest.raises(DecodeError, match="authName"):
        run(_resigned_config(twice))


def test_sgn_target_round_trip_oracle_on_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """A config model that loses a field on the way back is a finding, not a rejection."""
    run = phoneemu_callable("sgn", CORPUS)
    real_build = config_fmt.build
    monkeypatch.setattr(config_fmt, "build",
                        lambda cfg: real_build(cfg).replace(b"sip88xx.14-2-1", b"lost"))
    with pytest.raises(RoundTripError, match="device config"):
        run(_resigned_config(CONFIG_BODY))
    monkeypatch.setattr(config_fmt, "build", lambda cfg: b"<device><x></device>")
    with pytest.raises(RoundTripError, match=r"does not build and parse back: .*not well-formed"):
        run(_resigned_config(CONFIG_BODY))  # a DecodeError on the way back is no rejection


def test_a_body_just_under_the_limit_round_trips() -> None:
    """Found by this mutator: a config body just under 256 KiB is taken, and its canonical form (with
    the security block written out) is a few bytes longer; the oracle must not call that a finding."""
    filler = b"A" * (config_fmt.CONFIG_LIMIT - len(CONFIG_BODY) - 64)
    body = CONFIG_BODY.replace(b"<device>", b"<device><big>" + filler + b"</big>")
    assert len(config_fmt.build(config_fmt.parse(body))) > config_fmt.CONFIG_LIMIT
    phoneemu_callable("sgn", CORPUS)(_resigned_config(body))
