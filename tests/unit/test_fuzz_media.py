"""fuzz --format srtp | sdp: a call's SRTP packets and SDP offers/answers (spec §G.14, RFC 3711, RFC 4568)."""

from __future__ import annotations

import dataclasses
import gc
import os
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.crypto import srtp
from phoneemu.errors import DecodeError
from phoneemu.fuzz.corpus import build_corpus
from phoneemu.fuzz.engine import FuzzConfig, FuzzReport, fuzz, input_for
from phoneemu.fuzz.mediamsg import (
    MAX_PACKETS,
    SRTP_KEYS,
    SUITE_CODES,
    MediaAcceptanceError,
    SdpMutator,
    SrtpMutator,
    srtp_frames,
)
from phoneemu.fuzz.mutators import Mutator
from phoneemu.fuzz.targets import PythonTarget, phoneemu_callable
from phoneemu.protocols import rtp, sdp
from phoneemu.protocols.media import AVP, SAVP


def _packets(data: bytes) -> tuple[int, list[bytes]]:
    code, pos, out = data[0], 1, []
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 2], "big")
        out.append(data[pos + 2:pos + 2 + n])
        pos += 2 + n
    assert pos == len(data)
    return code, out


def _campaign(fmt: str, runs: int, seed: int, out: Path | None = None) -> FuzzReport:
    c = build_corpus(fmt)
    return fuzz(FuzzConfig(fmt=fmt, seed=seed, runs=runs, minimize=False, out=out),
                PythonTarget(phoneemu_callable(fmt, c), hang_after=5.0, warnings_as_errors=True), Mutator(c))


def test_srtp_seeds_are_streams_the_fixed_keys_verify() -> None:
    """Each seed is one suite's stream of four G.711 packets (one with CSRCs and an extension, one
    padded); a fresh receiver with the suite's key takes all of them, the wrap stream ends on ROC 1."""
    c = build_corpus("srtp")
    assert c.names == ("stream-80", "wrap-80", "stream-32", "wrap-32")
    for name, seed in zip(c.names, c.seeds, strict=True):
        code, packets = _packets(seed)
        suite = SUITE_CODES[code]
        assert suite.endswith(name[-2:]) and len(packets) == 4
        ctx = srtp.SrtpContext(suite, *SRTP_KEYS[suite])
        plain = [rtp.parse_rtp(ctx.unprotect(p)) for p in packets]
        assert [p.payload for p in plain] == [rtp.g711_tone(n) for n in range(4)]
        assert plain[0].marker and len(plain[1].csrcs) == 2 and plain[1].extension is not None
        assert plain[2].padding == 4
        assert ctx.roc(plain[0].ssrc) == (1 if name.startswith("wrap") else 0)
        with pytest.raises(DecodeError, match="already received"):
            ctx.unprotect(packets[3])
    assert build_corpus("srtp").seeds == c.seeds  # deterministic (fixed keys, SSRCs, sequence numbers)


def test_sdp_seeds_are_the_phones_offers_and_the_labs_answers() -> None:
    c = build_corpus("sdp")
    got = {name: sdp.parse_sdp(seed) for name, seed in zip(c.names, c.seeds, strict=True)}
    assert [(o.profile, [(x.tag, x.suite[-2:]) for x in o.crypto]) for o in got.values()] == [
        (SAVP, [(1, "80"), (2, "32")]), (AVP, []), (SAVP, [(1, "80")]), (SAVP, [(2, "32")]), (AVP, [])]
    for name, seed in zip(c.names, c.seeds, strict=True):
        assert sdp.build_sdp(got[name]) == seed
        for x in got[name].crypto:
            assert [len(k) for k in srtp.parse_inline_key(x.key_params)] == [16, 14]


@pytest.mark.parametrize("fmt", ["srtp", "sdp"])
def test_seeds_pass_garbage_is_rejected_and_mutants_are_deterministic(fmt: str) -> None:
    c = build_corpus(fmt)
    t = PythonTarget(phoneemu_callable(fmt, c), warnings_as_errors=True)
    assert [t.run(s).status for s in c.seeds] == ["ok"] * len(c.seeds)
    for junk in (b"", b"\x00", b"\x01\x00\x02ab", b"\x07" + c.seeds[0][1:], b"v=0\r\n", b"\xff" * 30):
        assert t.run(junk).status == "handled", junk
    mut = Mutator(c)
    assert mut.names == (SrtpMutator.OPS if fmt == "srtp" else SdpMutator.OPS)
    ops: set[str] = set()
    for i in range(500):
        a, b = input_for(mut, 9, i), input_for(mut, 9, i)
        assert (a.data, a.ops) == (b.data, b.ops)
        ops.update(a.ops)
    assert set(mut.names) <= ops


def test_srtp_packets_past_the_limit_and_a_broken_frame_are_refused() -> None:
    c = build_corpus("srtp")
    run = phoneemu_callable("srtp", c)
    code, packets = _packets(c.seeds[0])
    run(srtp_frames(code, packets[:2]))  # a stream cut short: taken
    with pytest.raises(DecodeError, match="1 of 2 packet"):
        run(srtp_frames(code, [packets[0], packets[0]]))  # the replay refused, the input too
    with pytest.raises(DecodeError, match=f"more than {MAX_PACKETS}"):
        run(srtp_frames(code, [packets[0]] * (MAX_PACKETS + 1)))
    with pytest.raises(DecodeError, match="runs past"):
        run(srtp_frames(code, packets)[:-1])
    with pytest.raises(DecodeError, match="auth_tag"):
        run(srtp_frames(1 - code, packets))  # the other suite's key


@pytest.mark.parametrize("fmt", ["srtp", "sdp"])
def test_a_short_campaign_finds_nothing(fmt: str) -> None:
    report = _campaign(fmt, 400, 2026)
    assert not report.findings, {s: f.detail for s, f in report.findings.items()}
    assert report.statuses["handled"] > 100 and report.statuses["ok"] > 20


def test_the_lab_answers_an_offer_and_leaks_no_socket() -> None:
    """The phone's SRTP offer gets a 200 with SAVP and one crypto line from a MediaResources that is
    closed after each input: no UDP socket stays open."""
    c = build_corpus("sdp")
    run = phoneemu_callable("sdp", c)
    offer = c.seeds[c.names.index("phone-offer-srtp")]
    run(offer)
    gc.collect()  # what earlier tests of this worker left to the collector is closed before counting
    before = sorted(os.listdir("/proc/self/fd"))
    for _ in range(30):
        run(offer)
    gc.collect()
    after = sorted(os.listdir("/proc/self/fd"))
    assert len(after) <= len(before), (before, after)  # a leak is one more socket an input


def test_a_receiver_without_the_tag_check_is_a_finding(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    """Planted: unprotect that takes a packet whose tag does not verify."""
    real = srtp.SrtpContext.unprotect

    def no_tag_check(self: srtp.SrtpContext, packet: bytes) -> bytes:
        try:
            return real(self, packet)
        except DecodeError as exc:
            if exc.path != "auth_tag":
                raise
            return packet[:-self.tag_length]

    monkeypatch.setattr(srtp.SrtpContext, "unprotect", no_tag_check)
    report = _campaign("srtp", 200, 7, tmp_path)
    assert any(sig.startswith("MediaAcceptanceError") for sig in report.findings), report.findings
    assert list((tmp_path / "crashes").iterdir())


def test_a_receiver_that_forgets_or_spoils_its_state_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Planted: a receiver without replay protection; a refusal that moves the highest index."""
    c = build_corpus("srtp")
    code, packets = _packets(c.seeds[0])
    real = srtp.SrtpContext.unprotect

    def forgetful(self: srtp.SrtpContext, packet: bytes) -> bytes:
        self._received.clear()
        return real(self, packet)

    monkeypatch.setattr(srtp.SrtpContext, "unprotect", forgetful)
    with pytest.raises(MediaAcceptanceError, match="replay accepted"):
        phoneemu_callable("srtp", c)(srtp_frames(code, [packets[0], packets[1], packets[0]]))

    def spoiling(self: srtp.SrtpContext, packet: bytes) -> bytes:
        try:
            return real(self, packet)
        except DecodeError:
            for got in self._received.values():
                got.highest += 1
            raise

    monkeypatch.setattr(srtp.SrtpContext, "unprotect", spoiling)
    forged = packets[1][:-1] + bytes((packets[1][-1] ^ 1,))
    with pytest.raises(MediaAcceptanceError, match="changed the receiving state"):
        phoneemu_callable("srtp", c)(srtp_frames(code, [packets[0], forged]))


def test_a_phone_taking_any_crypto_tag_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Planted: decide_media_answer that accepts an SAVP answer's one crypto line whatever its tag."""
    from phoneemu.phone import media_rules

    real = media_rules.decide_media_answer

    def any_tag(offered: tuple[sdp.Crypto, ...], answer: sdp.AudioOffer, **kw: Any) -> Any:
        d, chosen = real(offered, answer, **kw)
        if d.rule == "G.14-answer-refused" and offered and answer.profile == SAVP and len(answer.crypto) == 1:
            return dataclasses.replace(d, rule="G.14-srtp", accepted=True), answer.crypto[0]
        return d, chosen

    monkeypatch.setattr(media_rules, "decide_media_answer", any_tag)
    c = build_corpus("sdp")
    answer = c.seeds[c.names.index("lab-answer-srtp-80")]
    with pytest.raises(MediaAcceptanceError, match="tag and suite not offered"):
        phoneemu_callable("sdp", c)(answer.replace(b"a=crypto:1 ", b"a=crypto:7 "))
    report = _campaign("sdp", 300, 3)
    assert any(sig.startswith("MediaAcceptanceError") for sig in report.findings), report.findings


def test_cli_help_export_and_serve_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["fuzz", "--help"])
    out = capsys.readouterr().out
    assert "srtp" in out and "sdp" in out
    for fmt, suffix in (("srtp", ".srtp"), ("sdp", ".sdp")):
        assert main(["fuzz", "--format", fmt, "--serve", "--runs", "1", "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip()
        assert "--serve" in err and "--target" in err and len(err.splitlines()) == 1
        assert main(["fuzz", "--format", fmt, "--export-corpus", str(tmp_path / fmt)]) == 0
        assert len(list((tmp_path / fmt).glob(f"*{suffix}"))) == len(build_corpus(fmt).seeds)
        assert main(["fuzz", "--format", fmt, "--target", "phoneemu", "--runs", "100",
                     "--out", str(tmp_path / f"run-{fmt}"), "-q"]) == 0


def test_an_mki_taken_as_srtp_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bug the oracle was checked against (fixed in efdb013): an answer whose crypto line carries an
    MKI — which the phone's SRTP does not read — taken as G.14-srtp."""
    from phoneemu.phone import media_rules

    c = build_corpus("sdp")
    answer = c.seeds[c.names.index("lab-answer-srtp-80")]
    key = answer.partition(b"inline:")[2].partition(b"\r\n")[0]
    with_mki = answer.replace(key, key + b"|2^20|1:4")
    run = phoneemu_callable("sdp", c)
    run(with_mki)  # refused by the phone: not a finding
    real = media_rules.decide_media_answer

    def mki_ignored(offered: tuple[sdp.Crypto, ...], ans: sdp.AudioOffer, **kw: Any) -> Any:
        d, chosen = real(offered, dataclasses.replace(ans, crypto=tuple(dataclasses.replace(x, mki="")
                                                                         for x in ans.crypto)), **kw)
        return d, (ans.crypto[0] if chosen is not None else None)

    monkeypatch.setattr(media_rules, "decide_media_answer", mki_ignored)
    with pytest.raises(MediaAcceptanceError, match="MKI"):
        run(with_mki)


def test_a_called_phone_answering_srtp_against_its_rule_is_a_finding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Planted: decide_incoming that answers SRTP whatever the phone's own rule (an authenticated phone
    taking the caller's keys): the sdp oracle of the called phone reports it."""
    from phoneemu.phone import media_rules

    c = build_corpus("sdp")
    offer = next(seed for name, seed in zip(c.names, c.seeds, strict=True) if b"a=crypto" in seed
                 and "answer" not in name)
    run = phoneemu_callable("sdp", c)
    run(offer)  # the real rule: not a finding
    real = media_rules.decide_incoming

    def ignores_own(o: sdp.AudioOffer, *, own: Any, suites: tuple[str, ...]) -> Any:
        return real(o, own=dataclasses.replace(own, accepted=True, rule="G.14-offer-srtp"), suites=suites)

    monkeypatch.setattr(media_rules, "decide_incoming", ignores_own)
    with pytest.raises(MediaAcceptanceError, match="whose rule says RTP"):
        run(offer)
