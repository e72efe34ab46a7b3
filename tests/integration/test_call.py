"""Calls with SRTP media end to end over loopback (spec §G.14): scenarios with a call step, the lab's
media resources fed hostile INVITEs, and the phone against a hostile far end."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.crypto import srtp
from phoneemu.formats import config as config_fmt
from phoneemu.lab.media_service import MediaResources
from phoneemu.lab.sip_service import SipRegistrar
from phoneemu.net.tls import TlsServer
from phoneemu.phone.call import CallResult, place_call
from phoneemu.phone.events import EventLog
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import AcceptedConfig, TrustStore
from phoneemu.protocols import rtp, sdp, sip
from phoneemu.protocols.media import AVP, MEDIA_HEADER, SAVP
from phoneemu.scenario.loader import load_file
from phoneemu.scenario.results import Outcome, ScenarioResult
from phoneemu.scenario.runner import RunOptions, run_scenario
from tests.helpers import run_passing_scenario, sip_line_store
from tests.sip_helpers import answer_requests

S80 = "AES_CM_128_HMAC_SHA1_80"
S32 = "AES_CM_128_HMAC_SHA1_32"
MAC = "0011223344AA"
PEER = "127.0.0.1:5999"  # the phone's end of the SIP connection, as the registrar sees it
LOCAL = "127.0.0.1:5060"

# -- a. scenarios with a call step ---------------------------------------------------------------------------

HEAD = """\
# Reproduces: spec G.14 (test scenario)
reproduces: spec G.14
"""


def _run(tmp_path: Path, name: str, body: str) -> ScenarioResult:
    result: ScenarioResult = run_passing_scenario(tmp_path / f"{name}.yaml", HEAD + body)
    return result


def test_encrypted_phones_in_mixed_mode_get_srtp_by_the_table_others_rtp(tmp_path: Path) -> None:
    """Mixed mode (a CTL: TLS signalling): encrypted mode offers SRTP, the lab picks _80 when both are
    offered, _32 when only it is; a model without SRTP and an authenticated-mode phone get RTP."""
    _run(tmp_path, "mixed", """\
clusters:
  lab: {mixed_mode: true}
phones:
  enc: {mac: 0A00000E0001}
  enc32: {mac: 0A00000E0002, profile: {base: cp-8861, srtp_suites: [AES_CM_128_HMAC_SHA1_32]}}
  nosrtp: {mac: 0A00000E0003, profile: {base: cp-8861, srtp_suites: []}}
  auth: {mac: 0A00000E0004}
steps:
  - admin: {op: security-mode, phones: [enc, enc32, nosrtp], mode: encrypted}
  - admin: {op: security-mode, phones: auth, mode: authenticated}
  - boot: all
  - call: {phones: all, to: moh, packets: 5}
  - expect: {phones: enc, media: srtp, media_suite: AES_CM_128_HMAC_SHA1_80, media_refused: 0,
             rule: [G.14-offer-srtp], sip: registered, sip_transport: tls}
  - expect: {phones: enc, rule: G.14-srtp}
  - expect: {phones: enc32, media: srtp, media_suite: AES_CM_128_HMAC_SHA1_32, media_refused: 0,
             rule: G.14-srtp}
  - expect: {phones: nosrtp, media: rtp, media_suite: none, rule: G.14-rtp-phone-no-srtp,
             sip_transport: tls}
  - expect: {phones: auth, media: rtp, media_suite: none, rule: G.14-rtp-not-encrypted-mode,
             sip_transport: tls}
""")


def test_a_wrong_expectation_fails(tmp_path: Path) -> None:
    """The media checks do check: _32 expected of an _80 call is a FAIL naming both."""
    f = tmp_path / "wrong.yaml"
    f.write_text(HEAD + """\
clusters:
  lab: {mixed_mode: true}
phones:
  enc: {mac: 0A00000E0011}
steps:
  - admin: {op: security-mode, phones: enc, mode: encrypted}
  - boot: all
  - call: {phones: enc, to: ivr, packets: 2}
  - expect: {phones: enc, media_suite: AES_CM_128_HMAC_SHA1_32}
""")
    result = asyncio.run(run_scenario(load_file(f), RunOptions()))
    assert result.outcome is Outcome.FAIL
    [check] = result.expectations[0].checks
    assert (check.expected, check.actual) == (S32, S80)


def test_encrypted_mode_without_a_ctl_signals_over_tcp_and_gets_rtp(tmp_path: Path) -> None:
    """Not mixed mode: no CUCM certificate in a CTL, the phone falls back to TCP after its trust file
    attempts (§G.9) and keeps its keys to itself: RTP."""
    _run(tmp_path, "tcp", """\
clusters:
  lab: {}
phones:
  enc: {mac: 0A00000E0021}
steps:
  - admin: {op: security-mode, phones: enc, mode: encrypted}
  - boot: all
  - call: {phones: enc, to: ivr, packets: 3}
  - expect: {phones: enc, media: rtp, media_suite: none, rule: [G.9-fallback-tcp],
             sip: registered, sip_transport: tcp}
  - expect: {phones: enc, rule: G.14-rtp-signalling-not-tls}
""")


def test_tampered_media_is_dropped_over_srtp_and_played_over_rtp(tmp_path: Path) -> None:
    _run(tmp_path, "tamper", """\
clusters:
  lab: {mixed_mode: true}
phones:
  enc: {mac: 0A00000E0031}
  plain: {mac: 0A00000E0032}
steps:
  - admin: {op: security-mode, phones: enc, mode: encrypted}
  - boot: all
  - network: {tamper_media: true}
  - call: {phones: all, to: annunciator, packets: 7}
  - expect: {phones: enc, media: srtp, media_suite: AES_CM_128_HMAC_SHA1_80, media_refused: 7,
             rule: G.14-media-unauthenticated}
  - expect: {phones: plain, media: rtp, media_refused: 0, rule: G.14-rtp-not-encrypted-mode}
  - network: {tamper_media: false}
  - call: {phones: enc, to: annunciator, packets: 7}
  - expect: {phones: enc, label: the path is clean again, media: srtp, media_refused: 0, rule: G.14-srtp}
""")


def test_a_phone_with_digest_credentials_still_calls(tmp_path: Path) -> None:
    """A digest user: the REGISTER is challenged, the INVITE and BYE answer the cached challenge."""
    _run(tmp_path, "digest", """\
clusters:
  lab: {mixed_mode: true}
phones:
  dig: {mac: 0A00000E0041}
  digenc: {mac: 0A00000E0042}
steps:
  - admin: {op: digest, phones: dig, user: alice, password: s3cret}
  - admin: {op: digest, phones: digenc, user: bob, password: s3cret-too}
  - admin: {op: security-mode, phones: digenc, mode: encrypted}
  - boot: all
  - call: {phones: all, to: moh, packets: 4}
  - expect: {phones: dig, media: rtp, media_refused: 0, sip: registered, sip_challenged: true,
             rule: G.14-rtp-not-encrypted-mode}
  - expect: {phones: digenc, media: srtp, media_refused: 0, sip: registered, sip_challenged: true,
             sip_transport: tls, rule: G.14-srtp}
""")


def test_an_srtp_answer_with_a_tag_the_phone_did_not_offer_ends_the_call(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A far end (here the lab, tampered with) answering the phone's SRTP offer over TLS with a crypto
    tag it never offered: G.14-answer-refused, no media, and the phone hangs up (the lab sees a BYE)."""
    orig = MediaResources._answer

    def wrong_tag(self: MediaResources, offer: sdp.AudioOffer, **kw: Any) -> Any:
        answer, call = orig(self, offer, **kw)
        if answer.crypto:
            answer = dataclasses.replace(answer, crypto=(dataclasses.replace(answer.crypto[0], tag=99),))
        return answer, call

    monkeypatch.setattr(MediaResources, "_answer", wrong_tag)
    # the BYE waits for the 3 packets asked (none should come) up to BYE_WAIT (1 s); a packet the phone
    # sent before its BYE is on loopback well within a quarter of that
    monkeypatch.setattr("phoneemu.lab.media_service.BYE_WAIT", 0.25)
    caplog.set_level(logging.INFO, logger="phoneemu.lab.media")
    _run(tmp_path, "wrongtag", """\
clusters:
  lab: {mixed_mode: true}
phones:
  enc: {mac: 0A00000E0051}
steps:
  - admin: {op: security-mode, phones: enc, mode: encrypted}
  - boot: all
  - call: {phones: enc, to: moh, packets: 3}
  - expect: {phones: enc, media: none, media_suite: none, rule: G.14-answer-refused, sip: registered}
""")
    lines = [r.getMessage() for r in caplog.records if r.name == "phoneemu.lab.media"]
    # a 200 is ACKed even when refused (RFC 3261 §13.2.2.4), so the lab plays; then the phone's BYE
    assert [m.split(": ", 1)[1].split(" ", 1)[0] for m in lines] == ["answered", "played", "ended"], lines
    assert "SRTP AES_CM_128_HMAC_SHA1_80" in lines[0] and "received=0 " in lines[2], lines


# -- b. the lab's media resources fed directly ---------------------------------------------------------------

def _offer(port: int = 40000, *, address: str = "127.0.0.1", profile: str = AVP,
           crypto: tuple[sdp.Crypto, ...] = (), formats: tuple[int, ...] = (0,)) -> bytes:
    return sdp.build_sdp(sdp.AudioOffer(address=address, port=port, profile=profile, formats=formats,
                                        crypto=crypto))


def _request(method: str, body: bytes = b"", *, user: str = "moh", call_id: str = "call-1@x",
             content_type: str | None = "application/sdp", extra: str = "", cseq: int = 1) -> sip.SipMessage:
    head = (f"{method} sip:{user}@127.0.0.1 SIP/2.0\r\n"
            "Via: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK77\r\n"
            f"From: <sip:SEP{MAC}@127.0.0.1>;tag=ph\r\n"
            f"To: <sip:{user}@127.0.0.1>\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {cseq} {method}\r\n"
            + (f"Content-Type: {content_type}\r\n" if content_type is not None else "")
            + extra
            + f"Content-Length: {len(body)}\r\n\r\n")
    return sip.parse_message(head.encode("utf-8") + body)


def _lab(users: dict[str, tuple[str | None, str | None]] | None = None,
         **kw: Any) -> tuple[SipRegistrar, MediaResources, list[tuple[str, str]]]:
    log: list[tuple[str, str]] = []
    media = MediaResources(on_log=lambda _device, outcome, detail: log.append((outcome, detail)), **kw)
    reg = SipRegistrar((users if users is not None else {MAC: (None, None)}).get, media=media)
    return reg, media, log


async def _respond(reg: SipRegistrar, msg: sip.SipMessage) -> sip.SipMessage | None:
    raw = await reg.respond(msg, PEER, local=LOCAL)
    return sip.parse_message(raw) if raw else None


def _in_lab(body: Callable[[SipRegistrar, MediaResources, list[tuple[str, str]]], Awaitable[None]],
            **kw: Any) -> list[tuple[str, str]]:
    reg, media, log = _lab(**kw)

    async def main() -> None:
        try:
            await body(reg, media, log)
        finally:
            media.close()

    asyncio.run(main())
    return log


def test_hostile_invites_get_the_right_refusal_and_open_no_call() -> None:
    cases: list[tuple[str, sip.SipMessage, int]] = [
        ("no body, no Content-Type", _request("INVITE", content_type=None), 415),
        ("an empty SDP body", _request("INVITE", b""), 400),
        ("wrong Content-Type", _request("INVITE", _offer(), content_type="text/plain"), 415),
        ("malformed SDP", _request("INVITE", b"v=0\r\nthis is no sdp\r\n"), 400),
        ("SDP with no audio", _request("INVITE", b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n"
                                                 b"c=IN IP4 127.0.0.1\r\nt=0 0\r\n"), 400),
        ("media to another host", _request("INVITE", _offer(address="127.0.0.2")), 488),
        ("media to a v6 host", _request("INVITE", _offer(address="::1")), 488),
        ("port 0", _request("INVITE", _offer(port=0)), 488),
        ("no G.711 u-law", _request("INVITE", _offer(formats=(8, 18))), 488),
        ("unknown resource", _request("INVITE", _offer(), user="voicemail"), 404),
        ("no such user at all", _request("INVITE", _offer(), user=""), 404),
        ("BYE of no call", _request("BYE", call_id="nothing@x", cseq=2, content_type=None), 481),
    ]

    async def body(reg: SipRegistrar, media: MediaResources, log: list[tuple[str, str]]) -> None:
        for why, msg, status in cases:
            resp = await _respond(reg, msg)
            assert resp is not None and resp.status == status, (why, resp)
            for name in ("call-id", "cseq"):
                assert resp.header(name) == msg.header(name), why
            assert (resp.header("to") or "").endswith(";tag=lab"), why
            if status == 415:
                assert resp.header("accept") == "application/sdp"
            if status in (400, 488):
                warning = resp.header("warning") or ""
                assert re.fullmatch(r'(399|304) phoneemu "[^"\\]*"', warning), (why, warning)
            assert not resp.body, why
        assert await _respond(reg, _request("ACK", call_id="nothing@x")) is None  # ignored, no answer
        assert media._calls == {}

    log = _in_lab(body)
    outcomes = [o for o, _ in log]
    assert outcomes.count("not-found") == 2 and outcomes.count("malformed") == 3
    assert outcomes.count("not-acceptable") == 4 and "answered" not in outcomes and "played" not in outcomes


def test_invite_of_an_unknown_or_unauthenticated_device_is_refused_before_the_media() -> None:
    async def body(reg: SipRegistrar, media: MediaResources, log: list[tuple[str, str]]) -> None:
        stranger = _request("INVITE", _offer()).headers
        stranger = tuple((k, v.replace(MAC, "00112233FFFF")) for k, v in stranger)
        msg = dataclasses.replace(_request("INVITE", _offer()), headers=stranger)
        assert (r := await _respond(reg, msg)) is not None and r.status == 404
        challenged = await _respond(reg, _request("INVITE", _offer(), extra=""))
        assert challenged is not None and challenged.status == 401
        assert (challenged.header("www-authenticate") or "").startswith("Digest ")
        bye = await _respond(reg, _request("BYE", call_id="nothing@x"))
        assert bye is not None and bye.status == 401  # a BYE is authenticated like the INVITE
        options = await _respond(reg, _request("OPTIONS"))
        assert options is not None and options.status == 405
        assert "INVITE" in (options.header("allow") or "")
        assert media._calls == {}

    log = _in_lab(body, users={MAC: ("alice", "pw")})
    assert log == []  # nothing reached the media resources


class _Udp(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[tuple[bytes, tuple[str, int]]] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.got.append((data, addr))


async def _udp() -> tuple[asyncio.DatagramTransport, _Udp, int]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_Udp, local_addr=("127.0.0.1", 0))
    return transport, proto, transport.get_extra_info("sockname")[1]


async def _until(cond: Callable[[], bool], timeout: float = 1.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond() and loop.time() < end:
        await asyncio.sleep(0.005)


def _packets(n: int) -> list[bytes]:
    return [rtp.build_rtp(rtp.RtpPacket(payload_type=0, sequence=100 + i, timestamp=160 * i, ssrc=0x1234,
                                        payload=rtp.g711_tone(i))) for i in range(n)]


def test_an_rtp_call_plays_on_ack_and_reports_on_bye(monkeypatch: pytest.MonkeyPatch) -> None:
    from phoneemu.lab import media_service

    # 5 of the 6 packets come (one is garbage): the BYE would wait out BYE_WAIT (1 s) for the sixth
    monkeypatch.setattr(media_service, "BYE_WAIT", 0.05)

    async def body(reg: SipRegistrar, media: MediaResources, log: list[tuple[str, str]]) -> None:
        transport, udp, port = await _udp()
        try:
            ok = await _respond(reg, _request("INVITE", _offer(port), extra="X-Phoneemu-Packets: 6\r\n"))
            assert ok is not None and ok.status == 200
            assert ok.header("content-type") == "application/sdp"
            answer = sdp.parse_sdp(ok.body)
            assert (answer.address, answer.profile, answer.crypto, answer.formats) == (
                "127.0.0.1", AVP, (), (0,))
            assert answer.port not in (0, port)
            await _until(lambda: False, 0.05)
            assert udp.got == []  # nothing before the ACK
            assert await _respond(reg, _request("ACK", cseq=1)) is None
            await _until(lambda: len(udp.got) >= 6)
            assert len(udp.got) == 6 and {a for _, a in udp.got} == {("127.0.0.1", answer.port)}
            assert all(rtp.parse_rtp(d).payload_type == 0 for d, _ in udp.got)
            assert await _respond(reg, _request("ACK", cseq=1)) is None  # a second ACK plays nothing more
            for p in _packets(4):
                transport.sendto(p, ("127.0.0.1", answer.port))
            transport.sendto(b"\x00garbage", ("127.0.0.1", answer.port))
            call = media._calls["call-1@x"]
            await _until(lambda: call.received >= 5)
            bye = await _respond(reg, _request("BYE", cseq=2))
            assert bye is not None and bye.status == 200
            assert bye.header(MEDIA_HEADER) == "received=5 authenticated=0 refused=1"
            assert len(udp.got) == 6 and media._calls == {}
            again = await _respond(reg, _request("BYE", cseq=3))
            assert again is not None and again.status == 481
        finally:
            transport.close()

    log = _in_lab(body)
    assert [o for o, _ in log] == ["answered", "played", "ended"]


@pytest.mark.parametrize(("offered", "lab_suites", "chosen"), [
    ((S32, S80), (S80, S32), S80),
    ((S32,), (S80, S32), S32),
    ((S80,), (S80, S32), S80),
    ((S80, S32), (S32,), S32),
])
def test_an_srtp_offer_over_tls_is_answered_by_the_table(offered: tuple[str, ...],
                                                         lab_suites: tuple[str, ...], chosen: str) -> None:
    """Straight to the media resources over TLS (the registrar wants a device certificate there): the
    answer carries the offered tag of the chosen suite and a fresh key; media flows both ways under it."""
    keys = {suite: srtp.make_master_key() for suite in offered}
    crypto = tuple(sdp.Crypto(tag=n, suite=s, key_params=srtp.inline_key(*keys[s]))
                   for n, s in enumerate(offered, 1))

    async def body(reg: SipRegistrar, media: MediaResources, log: list[tuple[str, str]]) -> None:
        transport, udp, port = await _udp()
        try:
            raw = await media.invite(_request("INVITE", _offer(port, profile=SAVP, crypto=crypto),
                                              extra="X-Phoneemu-Packets: 3\r\n"),
                                     peer_host="127.0.0.1", local_host="127.0.0.1", over_tls=True,
                                     device=f"SEP{MAC}")
            answer = sdp.parse_sdp(sip.parse_message(raw).body)
            assert answer.profile == SAVP and len(answer.crypto) == 1
            mine = next(c for c in crypto if c.suite == chosen)
            got = answer.crypto[0]
            assert (got.tag, got.suite) == (mine.tag, chosen) and got.key_params != mine.key_params
            media.ack(_request("ACK"))
            await _until(lambda: len(udp.got) >= 3)
            theirs = srtp.SrtpContext(chosen, *srtp.parse_inline_key(got.key_params))
            assert [rtp.parse_rtp(theirs.unprotect(d)).payload == rtp.g711_tone(n)
                    for n, (d, _) in enumerate(udp.got)] == [True] * 3
            send = srtp.SrtpContext(chosen, *keys[chosen])
            for p in _packets(3):
                transport.sendto(send.protect(p), ("127.0.0.1", answer.port))
            call = media._calls["call-1@x"]
            await _until(lambda: call.received >= 3)
            bye = sip.parse_message(await media.bye(_request("BYE", cseq=2)))
            assert bye.header(MEDIA_HEADER) == "received=3 authenticated=3 refused=0"
        finally:
            transport.close()

    _in_lab(body, suites=lab_suites)


@pytest.mark.parametrize(("why", "over_tls", "crypto"), [
    ("over TCP the keys travel in the clear", False, ((1, S80, None),)),
    ("only GCM offered", True, ((1, "AEAD_AES_128_GCM", None),)),
    ("the chosen suite's key is unusable", True, ((1, S80, "QUFBQQ=="),)),
    ("no crypto line at all", True, ()),
])
def test_srtp_offers_the_lab_cannot_use_fall_back_to_rtp(
        why: str, over_tls: bool, crypto: tuple[tuple[int, str, str | None], ...]) -> None:
    lines = tuple(sdp.Crypto(tag=t, suite=s,
                             key_params=k if k is not None else srtp.inline_key(*srtp.make_master_key()))
                  for t, s, k in crypto)

    async def body(reg: SipRegistrar, media: MediaResources, log: list[tuple[str, str]]) -> None:
        raw = await media.invite(_request("INVITE", _offer(profile=SAVP, crypto=lines)),
                                 peer_host="127.0.0.1", local_host="127.0.0.1", over_tls=over_tls,
                                 device=f"SEP{MAC}")
        resp = sip.parse_message(raw)
        assert resp.status == 200, why
        answer = sdp.parse_sdp(resp.body)
        assert (answer.profile, answer.crypto) == (AVP, ()), why

    _in_lab(body)


def test_a_unicode_digit_packet_count_is_the_default() -> None:
    async def body(reg: SipRegistrar, media: MediaResources, log: list[tuple[str, str]]) -> None:
        resp = await _respond(reg, _request("INVITE", _offer(), extra="X-Phoneemu-Packets: \u00b2\r\n"))
        assert resp is not None and resp.status == 200
        assert media._calls["call-1@x"].packets == 10

    _in_lab(body)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400)  # random bytes, or the start of a good offer then random bytes
       | st.builds(lambda tail: _offer()[: len(tail) % 200] + tail, st.binary(max_size=80)))
def test_random_bytes_as_an_invite_body_are_refused_never_raised(data: bytes) -> None:
    async def main() -> tuple[int | None, int]:
        reg, media, _log = _lab()
        try:
            raw = await reg.respond(_request("INVITE", data), PEER, local=LOCAL)
            return sip.parse_message(raw).status, len(media._calls)
        finally:
            media.close()

    status, calls = asyncio.run(main())
    assert status in (400, 488) and calls == 0


# -- c. the phone against a hostile far end ------------------------------------------------------------------

def _store() -> TrustStore:
    """A phone's trust store holding an accepted config without a SIP line's credentials."""
    store = TrustStore(profile=get_profile("cp-8861"))
    cfg = config_fmt.DeviceConfig(device_name=f"SEP{MAC}")
    store.config = AcceptedConfig(file=f"SEP{MAC}.cnf.xml", xml=config_fmt.build(cfg), config=cfg)
    return store


Answerer = Callable[[sip.SipMessage, list[sip.SipMessage]], bytes | None]


async def _call_far_end(answer: Answerer, *, store: TrustStore | None = None,
                        timeout: float = 1.0) -> tuple[CallResult, list[sip.SipMessage]]:
    """The phone registers with, then calls, a server on loopback whose answers ``answer`` writes
    (None: a 200 for REGISTER and BYE, nothing for ACK); (the call's result, every request the server
    read, once the phone hung up)."""
    seen: list[sip.SipMessage] = []
    done = asyncio.Event()

    def far_end(msg: sip.SipMessage) -> bytes | None:
        seen.append(msg)
        out = answer(msg, seen)
        if out is None and msg.method in ("REGISTER", "BYE"):
            out = sip.response_to(msg, 200, "OK", [("Expires", "3600")])
        return out

    async def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            await answer_requests(r, w, far_end)
        finally:
            done.set()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        profile = get_profile("cp-8861")
        res = await place_call(store or _store(), profile, MAC, "127.0.0.1", target="moh", sip_port=port,
                               sips_port=1, events=EventLog(100), clock=lambda: 0, timeout=timeout, packets=3)
        await asyncio.wait_for(done.wait(), 2)
    finally:
        server.close()
        await server.wait_closed()
    return res, seen


def _ok_with(body: bytes) -> Answerer:
    def answer(msg: sip.SipMessage, _seen: list[sip.SipMessage]) -> bytes | None:
        if msg.method != "INVITE":
            return None
        return sip.response_to(msg, 200, "OK", [("Content-Type", "application/sdp")], to_tag="far", body=body)
    return answer


def _methods(seen: list[sip.SipMessage]) -> list[str | None]:
    return [m.method for m in seen]


def test_srtp_answered_to_the_phones_rtp_offer_ends_the_call_with_a_bye() -> None:
    """Over TCP the phone offers RTP; a far end answering RTP/SAVP with a key is refused and hung up on."""
    key = srtp.inline_key(*srtp.make_master_key())
    body = _offer(40000, profile=SAVP, crypto=(sdp.Crypto(tag=1, suite=S80, key_params=key),))
    res, seen = asyncio.run(_call_far_end(_ok_with(body)))
    assert (res.rule, res.accepted, res.status, res.media) == ("G.14-answer-refused", False, 200, "none")
    assert "RTP offer" in res.reason and res.offered == () and res.sent == 0
    assert res.rules == ("G.13-registered", "G.14-rtp-not-encrypted-mode", "G.14-answer-refused")
    assert _methods(seen) == ["REGISTER", "INVITE", "ACK", "BYE"]
    invite = seen[1]
    offer = sdp.parse_sdp(invite.body)
    assert (offer.profile, offer.crypto, offer.address) == (AVP, (), "127.0.0.1")
    assert invite.header("content-type") == "application/sdp"
    assert all(m.header("call-id") == invite.header("call-id") for m in seen[1:])
    assert (seen[3].header("to") or "").endswith(";tag=far")  # the BYE is in the dialog


@pytest.mark.parametrize(("why", "body", "rule"), [
    ("no SDP in the 200", b"", "G.14-answer-refused"),
    ("garbage SDP", b"v=0\r\n\x01\r\n", "G.14-answer-refused"),
    ("audio refused (port 0)", _offer(0), "G.14-media-refused"),
])
def test_an_unusable_answer_ends_the_call(why: str, body: bytes, rule: str) -> None:
    res, seen = asyncio.run(_call_far_end(_ok_with(body)))
    assert (res.rule, res.media, res.status) == (rule, "none", 200), why
    assert _methods(seen) == ["REGISTER", "INVITE", "ACK", "BYE"], why


def test_a_busy_far_end_is_call_refused_and_the_486_is_acked() -> None:
    def busy(msg: sip.SipMessage, _seen: list[sip.SipMessage]) -> bytes | None:
        return sip.response_to(msg, 486, "Busy Here", to_tag="far") if msg.method == "INVITE" else None

    res, seen = asyncio.run(_call_far_end(busy))
    assert (res.rule, res.accepted, res.status, res.media) == ("G.14-call-refused", False, 486, "none")
    assert "486 Busy Here" in res.reason
    assert _methods(seen) == ["REGISTER", "INVITE", "ACK"]  # a non-2xx final response is ACKed, no BYE
    ack = seen[2]
    assert ack.header("cseq") == seen[1].header("cseq").replace("INVITE", "ACK")  # type: ignore[union-attr]
    assert ack.header("via") == seen[1].header("via")  # the same transaction (RFC 3261 §17.1.1.3)


@pytest.mark.parametrize("garbage", [b"\x00\xffGARBAGE\r\n\r\n",
                                     b"SIP/2.0 200 OK\r\nContent-Length: x\r\n\r\n"])
def test_garbage_for_an_answer_is_call_refused_nothing_raised(garbage: bytes) -> None:
    def hostile(msg: sip.SipMessage, _seen: list[sip.SipMessage]) -> bytes | None:
        return garbage if msg.method == "INVITE" else None

    res, seen = asyncio.run(_call_far_end(hostile))
    assert (res.rule, res.accepted, res.media, res.status) == ("G.14-call-refused", False, "none", None)
    assert "SIP exchange failed" in res.reason
    assert _methods(seen)[:2] == ["REGISTER", "INVITE"]


def test_silence_after_the_invite_is_call_refused_within_the_timeout() -> None:
    def silent(msg: sip.SipMessage, _seen: list[sip.SipMessage]) -> bytes | None:
        return b"" if msg.method == "INVITE" else None

    res, _seen = asyncio.run(_call_far_end(silent, timeout=0.3))
    assert res.rule == "G.14-call-refused" and "no SIP response within 0.3s" in res.reason


def test_a_registration_that_fails_places_no_call() -> None:
    def refuse(msg: sip.SipMessage, _seen: list[sip.SipMessage]) -> bytes | None:
        return sip.response_to(msg, 403, "Forbidden") if msg.method == "REGISTER" else None

    res, seen = asyncio.run(_call_far_end(refuse))
    assert res.rule == "G.13-registrar-refused" and res.registration is not None
    assert "no call" in res.reason and _methods(seen) == ["REGISTER"]


def test_against_the_lab_the_invite_and_bye_answer_the_cached_challenge() -> None:
    """The phone against the lab registrar and media resources (TCP): the REGISTER is challenged once,
    the INVITE and BYE carry the answer to that challenge (the next nonce counts): no second 401."""
    outcomes: list[str] = []
    media = MediaResources()
    reg = SipRegistrar({MAC: ("alice", "s3cret")}.get, media=media,
                       on_log=lambda _peer, _device, outcome, _detail: outcomes.append(outcome))

    async def main() -> CallResult:
        try:
            async with TlsServer(reg, None, "127.0.0.1", 0) as srv:
                return await place_call(sip_line_store(MAC, "alice", "s3cret"), get_profile("cp-8861"), MAC,
                                        "127.0.0.1", target="ivr", sip_port=srv.port, sips_port=1,
                                        events=EventLog(100), clock=lambda: 0, timeout=2.0, packets=5)
        finally:
            media.close()

    res = asyncio.run(main())
    assert (res.rule, res.media, res.status, res.received, res.refused) == (
        "G.14-rtp-not-encrypted-mode", "rtp", 200, 5, 0)
    assert res.registration is not None and res.registration.challenged
    assert res.far_end == "received=5 authenticated=0 refused=0"
    assert outcomes == ["challenged", "registered", "authenticated", "authenticated"]


def test_an_invite_retried_after_a_401_has_no_to_tag() -> None:
    def challenge_invite(msg: sip.SipMessage, seen: list[sip.SipMessage]) -> bytes | None:
        if msg.method == "REGISTER":
            return None
        if msg.method == "INVITE" and sum(m.method == "INVITE" for m in seen) == 1:
            www = 'Digest realm="ccmsipline", nonce="abc123", algorithm=MD5, qop="auth"'
            return sip.response_to(msg, 401, "Unauthorized", [("WWW-Authenticate", www)], to_tag="far401")
        if msg.method == "INVITE":
            return sip.response_to(msg, 486, "Busy Here", to_tag="far")
        return None

    res, seen = asyncio.run(_call_far_end(challenge_invite, store=sip_line_store(MAC, "alice", "s3cret")))
    invites = [m for m in seen if m.method == "INVITE"]
    assert len(invites) == 2 and res.status == 486
    assert invites[1].header("authorization") is not None
    assert ";tag=" not in (invites[1].header("to") or "")


def test_an_invite_challenged_sha256_then_md5_is_answered_with_the_md5_challenge() -> None:
    """Of several WWW-Authenticate challenges (RFC 7616 §3.7: SHA-256 first, then MD5) the INVITE's retry
    answers the MD5 one, with its nonce: it answered the first header's nonce with MD5."""
    def challenge_invite(msg: sip.SipMessage, seen: list[sip.SipMessage]) -> bytes | None:
        if msg.method == "REGISTER":
            return None
        if msg.method == "INVITE" and sum(m.method == "INVITE" for m in seen) == 1:
            sha = 'Digest realm="ccmsipline", nonce="sha-nonce", algorithm=SHA-256, qop="auth"'
            md5 = 'Digest realm="ccmsipline", nonce="md5-nonce", algorithm=MD5, qop="auth"'
            return sip.response_to(msg, 401, "Unauthorized", [("WWW-Authenticate", sha),
                                                               ("WWW-Authenticate", md5)], to_tag="far401")
        if msg.method == "INVITE":
            return sip.response_to(msg, 486, "Busy Here", to_tag="far")
        return None

    res, seen = asyncio.run(_call_far_end(challenge_invite, store=sip_line_store(MAC, "alice", "s3cret")))
    invites = [m for m in seen if m.method == "INVITE"]
    assert len(invites) == 2 and res.status == 486
    answer = sip.parse_digest(invites[1].header("authorization") or "", field="Authorization")
    assert answer["nonce"] == "md5-nonce" and answer.get("algorithm", "MD5").upper() == "MD5"


def test_nothing_raised_is_the_contract_of_place_call() -> None:
    """Out-of-range packet counts are the caller's mistake (EncodeError), not a call result."""
    from phoneemu.errors import EncodeError

    async def main(packets: int) -> None:
        await place_call(_store(), get_profile("cp-8861"), MAC, "127.0.0.1", target="moh", sip_port=1,
                         sips_port=1, events=EventLog(10), clock=lambda: 0, packets=packets)

    for packets in (0, 1001):
        with pytest.raises(EncodeError):
            asyncio.run(main(packets))


def _open_udp_sockets() -> int:
    """UDP sockets this process holds (Linux: /proc/self/fd links to socket inodes in /proc/net/udp)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    udp = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with contextlib.suppress(OSError), open(table) as f:
            udp |= {line.split()[9] for line in f.readlines()[1:]}
    return len(inodes & udp)


@pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="counts sockets through /proc (Linux)")
def test_invites_at_once_neither_leak_rtp_ports_nor_pass_the_call_limit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The call limit and the Call-ID were checked before the RTP port's await and the call stored after
    it: two INVITEs of one Call-ID at once left a port open for ever, and 300 INVITEs at once all got
    200 past MAX_CALLS (256)."""
    from phoneemu.lab import media_service

    monkeypatch.setattr(media_service, "MAX_CALLS", 5)
    # no packets ever come from these calls: each BYE would wait out BYE_WAIT (1 s) for them
    monkeypatch.setattr(media_service, "BYE_WAIT", 0.02)

    async def body(reg: SipRegistrar, media: MediaResources, log: list[tuple[str, str]]) -> None:
        before = _open_udp_sockets()
        twice = await asyncio.gather(*(_respond(reg, _request("INVITE", _offer(), call_id="same@x"))
                                       for _ in range(2)))
        assert sorted(r.status for r in twice if r is not None) == [200, 491]
        many = await asyncio.gather(*(_respond(reg, _request("INVITE", _offer(), call_id=f"c{i}@x"))
                                      for i in range(8)))
        assert sorted(r.status for r in many if r is not None) == [200] * 4 + [503] * 4
        assert len(media._calls) == 5 and _open_udp_sockets() - before == 5
        for call_id in [*media._calls]:
            bye = await _respond(reg, _request("BYE", call_id=call_id, cseq=2, content_type=None))
            assert bye is not None and bye.status == 200
        await _until(lambda: _open_udp_sockets() == before)  # a transport closes on the next loop turn
        assert media._calls == {} and _open_udp_sockets() == before

    log = _in_lab(body)
    assert [o for o, _ in log].count("pending") == 1 and [o for o, _ in log].count("busy") == 4


def test_an_ack_or_bye_from_another_connection_than_the_invites_neither_plays_nor_ends_the_call() -> None:
    async def body(reg: SipRegistrar, media: MediaResources, log: list[tuple[str, str]]) -> None:
        transport, udp, port = await _udp()
        mine, other = object(), object()
        try:
            ok = await reg.respond(_request("INVITE", _offer(port)), PEER, local=LOCAL, origin=mine)
            assert sip.parse_message(ok).status == 200
            assert await reg.respond(_request("ACK"), PEER, local=LOCAL, origin=other) == b""
            bye = await reg.respond(_request("BYE", cseq=2, content_type=None), PEER, local=LOCAL,
                                    origin=other)
            assert sip.parse_message(bye).status == 481
            await _until(lambda: False, 0.1)
            assert udp.got == [] and "call-1@x" in media._calls  # not played, not ended
            assert await reg.respond(_request("ACK"), PEER, local=LOCAL, origin=mine) == b""
            await _until(lambda: len(udp.got) >= 10)
            assert len(udp.got) == 10
            again = await reg.respond(_request("INVITE", _offer(port), cseq=3), PEER, local=LOCAL,
                                      origin=other)  # authenticated: a phone that reconnected replaces it
            assert sip.parse_message(again).status == 200 and media._calls["call-1@x"].origin is other
        finally:
            transport.close()

    _in_lab(body)
