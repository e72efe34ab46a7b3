"""fuzz --format tvs-response | tvs-request | capf: TVS and CAPF messages (spec §E, §F)."""

from __future__ import annotations

import contextlib
import dataclasses
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneemu.cli import main
from phoneemu.errors import DecodeError, VerificationError
from phoneemu.fuzz import MESSAGE_FORMATS
from phoneemu.fuzz.corpus import build_corpus
from phoneemu.fuzz.engine import FuzzConfig, fuzz, input_for
from phoneemu.fuzz.messages import MessageMutator
from phoneemu.fuzz.mutators import Mutator
from phoneemu.fuzz.strategies import mutated
from phoneemu.fuzz.targets import PythonTarget, phoneemu_callable
from phoneemu.protocols import capf, tvs


@pytest.mark.parametrize("fmt", MESSAGE_FORMATS)
def test_seeds_pass_and_garbage_is_rejected(fmt: str) -> None:
    c = build_corpus(fmt)
    t = PythonTarget(phoneemu_callable(fmt, c), warnings_as_errors=True)
    for seed in c.seeds:
        assert t.run(seed).status == "ok", fmt
    for junk in (b"", b"\x57", b"\x01\x00\x02\x01\x02garbage", b"\x57\x01\x02\x00" + bytes(6),
                 b"\x55\x01" + bytes(6) + b"\x07\xff\xff"):
        assert t.run(junk).status == "handled", (fmt, junk)


@pytest.mark.parametrize("fmt", MESSAGE_FORMATS)
def test_mutants_are_deterministic_and_use_every_op(fmt: str) -> None:
    mut = Mutator(build_corpus(fmt))
    ops: set[str] = set()
    for i in range(600):
        a, b = input_for(mut, 3, i), input_for(mut, 3, i)
        assert (a.data, a.ops) == (b.data, b.ops)
        assert not a.resigned
        ops.update(a.ops)
    assert set(MessageMutator.OPS) <= ops


def test_lies_are_named_where() -> None:
    """A lying body length or element length is a DecodeError naming the field and offset."""
    seed = build_corpus("tvs-response").seeds[0]
    with pytest.raises(DecodeError) as err:
        tvs.decode(seed[:8] + b"\xff\xff" + seed[10:])
    assert err.value.offset is not None
    with pytest.raises(DecodeError) as err:
        capf.decode(build_corpus("capf").seeds[0][:9] + b"\xff\xff")
    assert err.value.offset is not None


@pytest.mark.parametrize("fmt", MESSAGE_FORMATS)
def test_campaign_sample_has_no_findings(fmt: str) -> None:
    c = build_corpus(fmt)
    report = fuzz(FuzzConfig(fmt=fmt, seed=2026, runs=600, minimize=False),
                  PythonTarget(phoneemu_callable(fmt, c), hang_after=5.0, warnings_as_errors=True),
                  Mutator(c))
    assert not report.findings, {s: f.detail for s, f in report.findings.items()}
    assert report.statuses["handled"] > 150 and report.statuses["ok"] > 50


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st_fmt=st.sampled_from(MESSAGE_FORMATS), seed=st.integers(0, 2**32 - 1))
def test_our_message_targets_only_reject(st_fmt: str, seed: int) -> None:
    c = build_corpus(st_fmt)
    data = Mutator(c).mutate(random.Random(seed)).data
    with contextlib.suppress(DecodeError, VerificationError):  # anything else fails the test
        phoneemu_callable(st_fmt, c)(data)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated("capf"))
def test_strategy_mutated_capf_only_raises_project_errors(data: bytes) -> None:
    with contextlib.suppress(DecodeError, VerificationError):
        phoneemu_callable("capf", build_corpus("capf"))(data)


def _buggy_tvs_client(data: bytes) -> None:
    """A user's TVS response parser with a bug: it assumes the first element is STATUS."""
    msg = tvs.decode(data)  # our DecodeError: a rejection
    if msg.elements[0].tag != tvs.TvsTag.STATUS:  # IndexError on a message without elements
        raise DecodeError("first element is not STATUS", fmt="tvs")


def test_a_buggy_user_target_is_a_finding(tmp_path: Path) -> None:
    c = build_corpus("tvs-response")
    report = fuzz(FuzzConfig(fmt="tvs-response", seed=1, runs=1500, minimize=False, out=tmp_path),
                  PythonTarget(_buggy_tvs_client, name="buggy"), Mutator(c))
    assert any(sig.startswith("IndexError") for sig in report.findings), report.findings
    assert list((tmp_path / "crashes").iterdir())


def test_cli_serve_refused_and_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuzz", "--format", "tvs-request", "--serve", "--runs", "1",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--serve" in err and "--target" in err and len(err.splitlines()) == 1
    assert main(["fuzz", "--format", "capf", "--export-corpus", str(tmp_path / "seeds")]) == 0
    assert len(list((tmp_path / "seeds").glob("*.bin"))) == 6
    assert main(["fuzz", "--format", "tvs-response", "--target", "phoneemu", "--runs", "200",
                 "--out", str(tmp_path / "run"), "-q"]) == 0


def test_help_lists_the_new_formats(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["fuzz", "--help"])
    out = capsys.readouterr().out
    for fmt in ("firmware", "tvs-response", "tvs-request", "capf"):
        assert fmt in out


def _tvs_response_rules(monkeypatch: pytest.MonkeyPatch, always_accept: bool = False) -> list[str]:
    """The §G.3.4 rules the tvs-response target's phone reaches (optionally: a broken rule that accepts)."""
    from phoneemu.phone import rules

    seen: list[str] = []
    real = rules.decide_trust_list

    def spy(*args: object, **kw: object) -> object:
        d = real(*args, **kw)  # type: ignore[arg-type]
        if kw.get("tvs_answer") is None:  # the phone being set up, not an answer
            return d
        if always_accept:
            d = dataclasses.replace(d, accepted=True, rule="G.3.4-broken", reason_code=None)
        seen.append(d.rule)
        return d

    monkeypatch.setattr(rules, "decide_trust_list", spy)
    return seen


def test_tvs_responses_reach_the_phones_trust_list_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each decoded seed answer is what a phone then decides an ITL on (spec §G.3.4), the accepting
    path included; a response vouching for another certificate with role SAST is not accepted."""
    c = build_corpus("tvs-response")
    seen = _tvs_response_rules(monkeypatch)
    run = phoneemu_callable("tvs-response", c)
    for seed in c.seeds:
        run(seed)
    assert seen == ["G.3.4-tvs-unknown-signer", "G.3.4-tvs-unknown-signer", "G.3.4-tvs-wrong-role",
                    "G.3.4-vouched-by-tvs"]
    vouched = tvs.decode(c.seeds[c.names.index("query-vouches-signer")])
    other = c.donor_certs[0]  # the ITLRecovery certificate: not the signer
    elements = tuple(dataclasses.replace(e, value=other) if e.tag == tvs.TvsTag.CERTIFICATE else e
                     for e in vouched.elements)
    assert elements != vouched.elements
    forged = dataclasses.replace(vouched, elements=elements)
    run(tvs.encode(forged))
    assert seen[-1] == "G.3.4-tvs-unknown-signer"


def test_a_phone_accepting_on_a_bad_tvs_answer_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    """The oracle: a rule that accepts the ITL on the wrong-role answer is a TvsAcceptanceError."""
    from phoneemu.fuzz.messages import TvsAcceptanceError

    c = build_corpus("tvs-response")
    _tvs_response_rules(monkeypatch, always_accept=True)
    run = phoneemu_callable("tvs-response", c)
    run(c.seeds[c.names.index("query-vouches-signer")])  # a good answer: accepting is right
    with pytest.raises(TvsAcceptanceError, match="does not vouch"):
        run(c.seeds[c.names.index("query-valid")])  # role CCM only
