"""fuzz --format tvs-response | tvs-request | capf: TVS and CAPF messages (spec §E, §F)."""

from __future__ import annotations

import contextlib
import dataclasses
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneemu.cli import main
from phoneemu.errors import DecodeError, VerificationError
from phoneemu.fuzz import MESSAGE_FORMATS
from phoneemu.fuzz.corpus import build_corpus
from phoneemu.fuzz.engine import FuzzConfig, fuzz, input_for
from phoneemu.fuzz.mediamsg import SdpMutator, SrtpMutator
from phoneemu.fuzz.messages import MessageMutator
from phoneemu.fuzz.mutators import Mutator
from phoneemu.fuzz.sipmsg import SipMutator
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
    assert set(mut.names) <= ops
    assert mut.names == {"srtp": SrtpMutator.OPS, "sdp": SdpMutator.OPS}.get(
        fmt, SipMutator.OPS if fmt.startswith("sip") else MessageMutator.OPS)


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
    for fmt in ("firmware", "tvs-response", "tvs-request", "capf", "sip-response", "sip-request"):
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


# --------------------------------------------------------------------------- SIP (spec §G.13)
#: (of the phone target's first REGISTER: its Via branch, Call-ID and CSeq, else it is not the answer)
HOSTILE_CHALLENGE = (b"SIP/2.0 401 \r\nWWW-Authenticate:Digest realm=\".\",a=\"\",nonce=\"5eed\x10\\\r1\"\r\n"
                     b"Via: SIP/2.0/TCP 10.0.0.9:5060;branch=z9hG4bK0001\r\n"
                     b"Call-ID: fuzz0001@SEP001122334455\r\nCSeq: 1 REGISTER\r\nContent-Length:0\r\n\r\n")


def test_sip_targets_run_the_phone_and_the_lab_registrar() -> None:
    """Every seed is what a registration is made of: the phone registers through the pipelined answers
    of one connection (a 401 then the 200: bytes after a response wait for the next exchange — they
    were dropped, the phone said "closed without answering"), the registrar answers each REGISTER."""
    for fmt in ("sip-response", "sip-request"):
        c = build_corpus(fmt)
        t = PythonTarget(phoneemu_callable(fmt, c), warnings_as_errors=True)
        assert [t.run(s).status for s in c.seeds] == ["ok"] * len(c.seeds), fmt
        for junk in (b"", b"SIP/2.0 200 OK\r\n", b"\xff" * 40 + b"\r\n\r\n", b"REGISTER x SIP/2.0\r\n\r\n"):
            assert t.run(junk).status == "handled", (fmt, junk)


def test_a_challenge_with_control_characters_is_refused_not_echoed() -> None:
    """Fuzzing found it: a 401 whose nonce carries a control character (escaped or not) was answered
    with an Authorization header echoing it — a header injected from the registrar's answer. The
    challenge is now a DecodeError naming the parameter (RFC 3261 qdtext), nothing is echoed."""
    from phoneemu.protocols import sip

    with pytest.raises(DecodeError, match="'nonce' carries control character 0x10"):
        sip.parse_digest('Digest realm="r", nonce="5eed\x10"')
    with pytest.raises(DecodeError, match="control character 0x0d"):
        sip.parse_digest('Digest realm="r", nonce="a\\\rb"', field="Authorization")
    assert sip.parse_digest('Digest realm="a\tb"')["realm"] == "a\tb"  # HTAB is linear white space
    c = build_corpus("sip-response")
    assert PythonTarget(phoneemu_callable("sip-response", c)).run(HOSTILE_CHALLENGE).status == "handled"


def test_the_sip_oracles_find_a_phone_or_registrar_that_accepts_wrongly(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    """Planted bugs are findings: a phone that echoes a hostile nonce, a phone that calls a 403 a
    registration, a registrar that takes any digest answer (found by a short campaign)."""
    import re

    from phoneemu.fuzz.sipmsg import SipAcceptanceError
    from phoneemu.lab import sip_service
    from phoneemu.phone import sip as phone_sip
    from phoneemu.protocols import sip

    monkeypatch.setattr(sip, "_CONTROL_RE", re.compile(r"(?!)"))  # the check undone
    c = build_corpus("sip-response")
    with pytest.raises(SipAcceptanceError, match="control character 0x10"):
        phoneemu_callable("sip-response", c)(HOSTILE_CHALLENGE)
    monkeypatch.undo()

    async def always_registered(*_a: object, done: Callable[..., object], **_k: object) -> object:
        return done("G.13-registered", True, "200 OK")

    monkeypatch.setattr(phone_sip, "_converse", always_registered)
    with pytest.raises(SipAcceptanceError, match="without a final 200"):
        phoneemu_callable("sip-response", c)(c.seeds[c.names.index("forbidden")])
    monkeypatch.undo()

    monkeypatch.setattr(sip_service.SipRegistrar, "_check", lambda *_a, **_k: None)
    c = build_corpus("sip-request")
    report = fuzz(FuzzConfig(fmt="sip-request", seed=7, runs=400, minimize=False, out=tmp_path),
                  PythonTarget(phoneemu_callable("sip-request", c)), Mutator(c))
    assert any(sig.startswith("SipAcceptanceError") for sig in report.findings), report.findings


def test_a_device_under_test_gets_mutants_as_answers_to_its_registers(tmp_path: Path) -> None:
    """``fuzz --format sip-response --serve``: each REGISTER of the device gets the next mutant (saved
    and logged, as a served file is), past --runs a 503; a device that sends nothing more within
    --silent-after of a mutant is a finding saved under crashes/silent-<index>/; --mac picks the
    device by the REGISTER's From."""
    import asyncio
    import json

    from phoneemu.fuzz.engine import input_for
    from phoneemu.fuzz.sipserve import answer_for, seed_values, serve_sip_session
    from phoneemu.fuzz.targets import ServeSession
    from phoneemu.phone.sip import _Register
    from phoneemu.protocols import sip

    mutator = Mutator(build_corpus("sip-response"))

    def make(index: int, _name: str) -> tuple[bytes, dict[str, object]]:
        m = input_for(mutator, 5, index)
        return m.data, {"ops": list(m.ops)}

    session = ServeSession(fmt="sip-response", make=make, seed=5, out=tmp_path, runs=2, mac="001122334455",
                           silent_after=0.3)
    got: list[bytes] = []
    sent: list[bytes] = []

    async def device(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for mac in ("001122334455", "00112233445F", "001122334455"):  # the middle one: another device
            sent.append(_Register(mac, "127.0.0.1", "tcp", "127.0.0.1:40000").request())
            writer.write(sent[-1])
            await writer.drain()
            await asyncio.sleep(0.1)
            got.append(await asyncio.wait_for(reader.read(1 << 20), 5))
        got.append(await asyncio.wait_for(reader.read(1 << 20), 5))  # silent: the session ends, then EOF
        writer.close()

    async def main() -> None:
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        serving = asyncio.create_task(serve_sip_session(session, port=0, time_limit=10,
                                                        ready=ready.set_result))
        await device(await ready)
        await serving

    asyncio.run(asyncio.wait_for(main(), 20))
    values = seed_values(mutator.corpus.seeds)  # each mutant answers the REGISTER it is served for
    assert got[0] == answer_for(input_for(mutator, 5, 0).data, sip.parse_message(sent[0]), values)[0]
    assert got[2] == answer_for(input_for(mutator, 5, 1).data, sip.parse_message(sent[2]), values)[0]
    assert sip.parse_message(got[1]).status == 503  # another device (--mac): no mutant for it
    assert got[3] == b""  # the session over (--runs served, the last one watched out)
    log = [json.loads(line) for line in session.log_path.read_text().splitlines()]
    assert [e["index"] for e in log if e["event"] == "served"] == [0, 1]
    assert sum(e.get("protocol") == "sip" for e in log) == 3
    assert [f["index"] for f in session.silences] == [1]  # nothing more after the last mutant
    assert (tmp_path / "crashes" / "silent-000001" / "input.bin").read_bytes() == got[2]
