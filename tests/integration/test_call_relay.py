"""Calls between two emulated phones through the lab's CallManager (spec §G.14, seed "Media Encryption":
"If the devices support SRTP, the system uses a SRTP connection. If at least one device does not support
SRTP, the system uses an RTP connection"): the ``call`` step's loader rules, scenarios phone to phone,
the registrar's relay driven by raw SIP clients over loopback, and hostile answers of a called phone."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.crypto import srtp
from phoneemu.errors import ScenarioError
from phoneemu.lab.call_relay import CallRelay
from phoneemu.lab.sip_service import SipRegistrar
from phoneemu.net.tls import TlsServer
from phoneemu.phone.call import CallResult
from phoneemu.protocols import sdp, sip
from phoneemu.protocols.media import AVP, MEDIA_HEADER, SAVP
from phoneemu.scenario import world as world_mod
from phoneemu.scenario.loader import load_text
from phoneemu.scenario.results import ScenarioResult
from tests.helpers import RawSipPhone, run_passing_scenario

S80 = "AES_CM_128_HMAC_SHA1_80"
S32 = "AES_CM_128_HMAC_SHA1_32"
A = "0A00000C0A01"  # the calling phone of the raw tests
B = "0A00000C0A02"  # the called phone
STRANGER = "0A00000C0AFF"  # known to the cluster, never registered
PEER = "127.0.0.1:5999"
LOCAL = "127.0.0.1:5060"

# -- 1. the loader -------------------------------------------------------------------------------------------

_LOADER_HEAD = """\
reproduces: spec G.14
phones:
  a: {mac: 0A00000C0001}
  pair: {mac: 0A00000C0002, count: 2}
  solo: {mac: 0A00000C0010}
steps:
  - boot: all
"""


def _load_call(step: str) -> None:
    load_text(_LOADER_HEAD + f"  - call: {step}\n  - expect: {{phones: a, media: srtp}}\n", "t.yaml")


@pytest.mark.parametrize(("step", "words"), [
    ("{phones: a, to: pair}", "the called group 'pair' must be one phone"),
    ("{phones: [a, solo], to: solo}", "not among the callers"),
    ("{phones: all, to: solo}", "not among the callers"),
    ("{phones: solo, to: solo}", "not among the callers"),
])
def test_the_called_group_must_be_one_phone_not_among_the_callers(step: str, words: str) -> None:
    with pytest.raises(ScenarioError, match=r"t\.yaml:8 steps\[1\]\.call\.to: ") as info:
        _load_call(step)
    assert words in str(info.value)


@pytest.mark.parametrize(("to", "near"), [("sol", "solo"), ("paire", "pair"), ("mho", "moh")])
def test_a_typo_in_the_called_name_suggests_the_nearest(to: str, near: str) -> None:
    with pytest.raises(ScenarioError, match=r"steps\[1\]\.call\.to: expected one of moh") as info:
        _load_call(f"{{phones: a, to: {to}}}")
    assert f"got {to!r} — did you mean {near!r}?" in str(info.value)


def test_a_one_phone_group_not_among_the_callers_loads() -> None:
    scenario = load_text(_LOADER_HEAD + "  - call: {phones: [a], to: solo, packets: 3}\n"
                         "  - expect: {phones: a, media: srtp}\n", "t.yaml")
    step = scenario.steps[1]
    assert getattr(step, "args", None) == {"phones": ("a",), "to": "solo", "packets": 3, "cluster": None}


def test_the_called_phone_named_by_its_mac_among_the_callers_is_refused() -> None:
    with pytest.raises(ScenarioError, match="not among the callers"):
        _load_call("{phones: ['0A00000C0010'], to: solo}")


# -- 2. scenarios phone to phone (in process) ----------------------------------------------------------------

HEAD = """\
# Reproduces: spec G.14 (test scenario)
reproduces: spec G.14
clusters:
  lab: {mixed_mode: true}
"""


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
         body: str) -> tuple[ScenarioResult, dict[str, CallResult | None]]:
    """Run a scenario in process; its result and each phone's last call (by group name)."""
    calls: dict[str, CallResult | None] = {}
    orig = world_mod.World.close

    async def close(self: world_mod.World) -> None:
        calls.update({h.group: h.call for h in self.phones.values()})
        await orig(self)

    monkeypatch.setattr(world_mod.World, "close", close)
    return run_passing_scenario(tmp_path / f"{name}.yaml", HEAD + body), calls


def _counts(n: int, *, authenticated: bool) -> str:
    return f"received={n} authenticated={n if authenticated else 0} refused=0"


def test_two_encrypted_phones_get_srtp_end_to_end_and_count_every_packet(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, calls = _run(tmp_path, monkeypatch, "enc-enc", """\
phones:
  alice: {mac: 0A00000C1001}
  bob: {mac: 0A00000C1002}
steps:
  - admin: {op: security-mode, phones: all, mode: encrypted}
  - boot: all
  - call: {phones: alice, to: bob, packets: 6}
  - expect: {phones: [alice, bob], media: srtp, media_suite: AES_CM_128_HMAC_SHA1_80, media_refused: 0,
             rule: G.14-srtp, sip: registered, sip_transport: tls}
""")
    alice, bob = calls["alice"], calls["bob"]
    assert alice is not None and bob is not None
    assert (alice.status, alice.sent, alice.received, alice.authenticated) == (200, 6, 6, 6)
    assert alice.far_end == _counts(6, authenticated=True)  # what bob counted of alice's packets
    assert alice.offered == (S80, S32) and alice.target == "SEP0A00000C1002"
    assert (bob.sent, bob.received, bob.authenticated, bob.refused) == (6, 6, 6, 0)
    assert bob.offered == (S80, S32)  # the keys crossed two TLS legs unchanged
    assert "SEP0A00000C1001" in bob.target


def test_an_encrypted_caller_and_a_32_only_callee_both_use_the_32_bit_tag(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, calls = _run(tmp_path, monkeypatch, "enc-32", """\
phones:
  alice: {mac: 0A00000C2001}
  carol: {mac: 0A00000C2002, profile: {base: cp-8861, srtp_suites: [AES_CM_128_HMAC_SHA1_32]}}
steps:
  - admin: {op: security-mode, phones: all, mode: encrypted}
  - boot: all
  - call: {phones: alice, to: carol, packets: 3}
  - expect: {phones: [alice, carol], media: srtp, media_suite: AES_CM_128_HMAC_SHA1_32, media_refused: 0,
             rule: G.14-srtp}
""")
    alice, carol = calls["alice"], calls["carol"]
    assert alice is not None and carol is not None
    assert (alice.suite, carol.suite) == (S32, S32)
    assert alice.far_end == _counts(3, authenticated=True)
    assert carol.authenticated == 3


def test_a_non_secure_caller_gives_the_encrypted_callee_rtp_and_no_keys(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, calls = _run(tmp_path, monkeypatch, "plain-enc", """\
phones:
  dave: {mac: 0A00000C3001}
  bob: {mac: 0A00000C3002}
steps:
  - admin: {op: security-mode, phones: bob, mode: encrypted}
  - boot: all
  - call: {phones: dave, to: bob, packets: 4}
  - expect: {phones: bob, media: rtp, media_suite: none, rule: G.14-rtp-fallback, sip_transport: tls}
  - expect: {phones: dave, media: rtp, media_suite: none, rule: G.14-rtp-not-encrypted-mode,
             sip_transport: tcp}
""")
    dave, bob = calls["dave"], calls["bob"]
    assert dave is not None and bob is not None
    assert dave.offered == () and bob.offered == ()  # no a=crypto reached bob
    assert dave.far_end == _counts(4, authenticated=False)
    assert (bob.received, bob.authenticated, bob.refused) == (4, 0, 0)


def test_phones_with_digest_credentials_still_connect(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Both phones are challenged: the caller's INVITE and BYE, the callee's REGISTER answer the challenge."""
    _, calls = _run(tmp_path, monkeypatch, "digest", """\
phones:
  alice: {mac: 0A00000C4001}
  bob: {mac: 0A00000C4002}
steps:
  - admin: {op: digest, phones: alice, user: alice, password: s3cret-a}
  - admin: {op: digest, phones: bob, user: bob, password: s3cret-b}
  - admin: {op: security-mode, phones: all, mode: encrypted}
  - boot: all
  - call: {phones: alice, to: bob, packets: 3}
  - expect: {phones: [alice, bob], media: srtp, media_refused: 0, rule: G.14-srtp, sip: registered,
             sip_challenged: true}
""")
    alice = calls["alice"]
    assert alice is not None and alice.far_end == _counts(3, authenticated=True)


# -- 3. the registrar's relay against raw SIP clients over loopback ------------------------------------------

def _srtp_offer(port: int = 40000) -> bytes:
    crypto = (sdp.Crypto(tag=1, suite=S80, key_params=srtp.inline_key(*srtp.make_master_key())),
              sdp.Crypto(tag=2, suite=S32, key_params=srtp.inline_key(*srtp.make_master_key())))
    return sdp.build_sdp(sdp.AudioOffer(address="127.0.0.1", port=port, profile=SAVP, formats=(0,),
                                        crypto=crypto))


async def _until(cond: Callable[[], bool], timeout: float = 1.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond() and loop.time() < end:
        await asyncio.sleep(0.005)


@dataclasses.dataclass
class _Lab:
    relay: CallRelay
    server: TlsServer
    log: list[tuple[str, str, str]]

    @asynccontextmanager
    async def phone(self, mac: str, *, register: bool = True) -> AsyncIterator[RawSipPhone]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.server.port)
        client = RawSipPhone(reader, writer, mac)
        try:
            if register:
                ok = await client.register()
                assert ok is not None and ok.status == 200, ok
                await _until(lambda: self.relay.reaches(f"SEP{mac}"))
                assert self.relay.reaches(f"SEP{mac}")
            yield client
        finally:
            writer.close()


def _in_lab(body: Callable[[_Lab], Any], *, answer_timeout: float = 0.3) -> _Lab:
    log: list[tuple[str, str, str]] = []
    relay = CallRelay(answer_timeout=answer_timeout, on_log=lambda *a: log.append(a))
    known = {mac: (None, None) for mac in (A, B, STRANGER)}
    reg = SipRegistrar(known.get, relay=relay, read_timeout=5.0)

    async def main() -> _Lab:
        async with TlsServer(reg, None, "127.0.0.1", 0, name="sip") as srv:
            lab = _Lab(relay, srv, log)
            await body(lab)
            await asyncio.sleep(0.01)  # the server sees the clients' connections close
        assert srv.errors == 0  # nothing raised out of the registrar
        return lab

    return asyncio.run(main())


def test_a_call_to_a_phone_never_registered_is_480() -> None:
    async def body(lab: _Lab) -> None:
        async with lab.phone(A) as a:
            for callee in (STRANGER, "0A00000C0B00"):  # known but not registered, unknown to the cluster
                a.invite(callee, _srtp_offer(), call_id=f"c-{callee}")
                resp = await a.read()
                assert resp is not None and (resp.status, resp.reason) == (480, "Temporarily Unavailable")
                assert resp.header("call-id") == f"c-{callee}" and resp.header("cseq") == "1 INVITE"
                assert (resp.header("to") or "").endswith(";tag=lab") and not resp.body
            assert lab.relay._calls == {}

    _in_lab(body)


def test_no_answer_within_the_timeout_is_408_and_the_call_is_forgotten() -> None:
    async def body(lab: _Lab) -> None:
        async with lab.phone(B) as b, lab.phone(A) as a:
            started = time.monotonic()
            a.invite(B, _srtp_offer())
            relayed = await b.read()
            assert relayed is not None and relayed.method == "INVITE"  # the callee got it, never answers
            resp = await a.read()
            took = time.monotonic() - started
            assert resp is not None and resp.status == 408 and resp.reason == "Request Timeout"
            assert 0.25 <= took < 1.0, took
            assert lab.relay._calls == {} and lab.relay._waiting == {}
            assert lab.relay.reaches(f"SEP{B}")  # its line stays up
            # the relay forgot the call: its BYE is not relayed (no call at all: 481, the relay has no media)
            a.request("BYE", f"sip:SEP{B}@127.0.0.1", call_id="call-1@a", cseq=2)
            bye = await a.read()
            assert bye is not None and bye.status == 481
            assert await b.read(0.1) is None  # nothing went on to the callee
            b.reply(relayed, 200, "OK")  # an answer after the 408: dropped
            assert await b.read(0.1) is None

    lab = _in_lab(body)
    assert [(d, o) for d, o, _ in lab.log] == [(f"SEP{A}", "no-answer")]


def test_the_callees_486_reaches_the_caller() -> None:
    async def body(lab: _Lab) -> None:
        async with lab.phone(B) as b, lab.phone(A) as a:
            a.invite(B, _srtp_offer())
            relayed = await b.read()
            assert relayed is not None and relayed.method == "INVITE"
            b.reply(relayed, 486, "Busy Here")
            resp = await a.read()
            assert resp is not None and (resp.status, resp.reason) == (486, "Busy Here")
            assert resp.header("call-id") == "call-1@a" and resp.header("via") == a.via
            assert not resp.body
            assert lab.relay._calls == {}

    lab = _in_lab(body)
    assert [o for _, o, _ in lab.log] == ["relayed"] and "486 Busy Here" in lab.log[0][2]


def test_the_lab_acks_the_callees_486() -> None:
    async def body(lab: _Lab) -> None:
        async with lab.phone(B) as b, lab.phone(A) as a:
            a.invite(B, _srtp_offer())
            relayed = await b.read()
            assert relayed is not None
            b.reply(relayed, 486, "Busy Here")
            resp = await a.read()
            assert resp is not None and resp.status == 486
            a.request("ACK", f"sip:SEP{B}@127.0.0.1", call_id="call-1@a", cseq=1,
                      to=resp.header("to"))
            ack = await b.read(0.3)
            assert ack is not None and ack.method == "ACK" and ack.header("call-id") == "call-1@a"

    _in_lab(body)


def test_over_tcp_legs_the_keys_are_taken_out_both_ways_and_the_call_completes() -> None:
    async def body(lab: _Lab) -> None:
        async with lab.phone(B) as b, lab.phone(A) as a:
            a.invite(B, _srtp_offer())
            relayed = await b.read()
            assert relayed is not None and relayed.method == "INVITE"
            assert relayed.uri == f"sip:SEP{B}@127.0.0.1"
            assert b"a=crypto" not in relayed.body and b"RTP/SAVP" not in relayed.body
            offer = sdp.parse_sdp(relayed.body)
            assert (offer.profile, offer.crypto, offer.port) == (AVP, (), 40000)
            via = relayed.header("via") or ""
            assert via.startswith(f"SIP/2.0/TCP 127.0.0.1:{lab.server.port};branch=z9hG4bK"), via
            assert via != a.via
            assert [k.lower() for k, _ in relayed.headers].count("via") == 1  # the lab's only
            for name in ("from", "to", "call-id", "cseq", "x-phoneemu-packets"):
                assert relayed.header(name) is not None, name
            assert relayed.header("call-id") == "call-1@a" and relayed.header("x-phoneemu-packets") == "3"
            # the callee answers with keys of its own: they never cross the TCP leg either
            key = srtp.inline_key(*srtp.make_master_key())
            answer = sdp.build_sdp(sdp.AudioOffer(address="127.0.0.1", port=41000, profile=SAVP, formats=(0,),
                                                  crypto=(sdp.Crypto(tag=1, suite=S80, key_params=key),)))
            b.reply(relayed, 200, "OK", extra=[("Contact", f"<sip:SEP{B}@127.0.0.1>"),
                                               ("Content-Type", "application/sdp")], body=answer)
            ok = await a.read()
            assert ok is not None and ok.status == 200 and ok.header("via") == a.via
            assert b"a=crypto" not in ok.body
            got = sdp.parse_sdp(ok.body)
            assert (got.profile, got.crypto, got.port) == (AVP, (), 41000)
            assert ok.header("content-type") == "application/sdp"
            assert lab.relay.owns(sip.SipMessage(method="ACK", headers=(("Call-ID", "call-1@a"),)))
            # ACK and BYE go on to the callee; the BYE's 200 (its media counts) comes back
            a.request("ACK", f"sip:SEP{B}@127.0.0.1", call_id="call-1@a", cseq=1, to=ok.header("to"))
            ack = await b.read()
            assert ack is not None and ack.method == "ACK" and ack.header("call-id") == "call-1@a"
            assert (ack.header("via") or "").startswith(f"SIP/2.0/TCP 127.0.0.1:{lab.server.port};")
            a.request("BYE", f"sip:SEP{B}@127.0.0.1", call_id="call-1@a", cseq=2, to=ok.header("to"))
            bye = await b.read()
            assert bye is not None and bye.method == "BYE" and bye.header("cseq") == "2 BYE"
            b.reply(bye, 200, "OK", extra=[(MEDIA_HEADER, "received=3 authenticated=0 refused=0")])
            done = await a.read()
            assert done is not None and done.status == 200 and done.header("cseq") == "2 BYE"
            assert done.header(MEDIA_HEADER) == "received=3 authenticated=0 refused=0"
            assert lab.relay._calls == {}

    lab = _in_lab(body)
    assert [o for _, o, _ in lab.log] == ["relayed"] and "keys taken out" in lab.log[0][2]


def test_a_callee_whose_connection_closes_is_not_reachable_any_more() -> None:
    async def body(lab: _Lab) -> None:
        async with lab.phone(A) as a:
            async with lab.phone(B):
                assert lab.relay.reaches(f"SEP{B}") and lab.relay.reaches(f"sep{B.lower()}")
            await _until(lambda: not lab.relay.reaches(f"SEP{B}"))
            assert not lab.relay.reaches(f"SEP{B}") and lab.relay.reaches(f"SEP{A}")
            started = time.monotonic()
            a.invite(B, _srtp_offer())
            resp = await a.read()
            assert resp is not None and resp.status == 480
            assert time.monotonic() - started < 0.25  # at once, not after the answer timeout

    _in_lab(body)


def test_responses_no_call_waits_for_are_dropped() -> None:
    async def body(lab: _Lab) -> None:
        async with lab.phone(B) as b, lab.phone(A) as a:
            stray = sip.SipMessage(method="INVITE", uri=f"sip:SEP{A}@127.0.0.1", headers=(
                ("Via", b.via), ("From", f"<sip:SEP{A}@127.0.0.1>;tag=x"), ("To", f"<sip:SEP{B}@127.0.0.1>"),
                ("Call-ID", "no-such-call@nowhere"), ("CSeq", "7 INVITE")))
            for status, reason in ((200, "OK"), (486, "Busy Here"), (180, "Ringing"), (699, "Odd")):
                b.reply(stray, status, reason)
            lab.relay.response(sip.parse_message(sip.response_to(stray, 200, "OK")))  # in process too
            assert await b.read(0.15) is None  # no 400, the connection stays open
            assert lab.relay.reaches(f"SEP{B}") and lab.relay._waiting == {}
            # and the line still carries calls: a 180 is not final, the 200 is
            a.invite(B, _srtp_offer(), call_id="after@a")
            relayed = await b.read()
            assert relayed is not None and relayed.header("call-id") == "after@a"
            b.reply(relayed, 180, "Ringing")
            b.reply(dataclasses.replace(relayed, headers=tuple(
                (k, "no-such-call@nowhere" if k.lower() == "call-id" else v) for k, v in relayed.headers)),
                603, "Decline")
            b.reply(relayed, 480, "Temporarily Unavailable")
            resp = await a.read()
            assert resp is not None and resp.status == 480 and resp.header("call-id") == "after@a"

    _in_lab(body)


# -- 4. random bytes for the callee's answer (in process) ----------------------------------------------------

class _Writer:
    """The called phone's connection as the registrar writes to it (in process)."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    @property
    def transport(self) -> _Writer:  # what the relay asks of the transport: its unsent bytes, closing
        return self

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def _invite(body: bytes) -> sip.SipMessage:
    return sip.parse_message(sip.build_message(f"INVITE sip:SEP{B}@127.0.0.1 SIP/2.0", [
        ("Via", f"SIP/2.0/TCP {PEER};branch=z9hG4bKprop"), ("From", f"<sip:SEP{A}@127.0.0.1>;tag=a"),
        ("To", f"<sip:SEP{B}@127.0.0.1>"), ("Call-ID", "prop@a"), ("CSeq", "1 INVITE"),
        ("Content-Type", "application/sdp")], body))


_ANSWERS = (st.binary(max_size=300).map(lambda data: (None, data))
            | st.tuples(st.integers(100, 699), st.binary(max_size=60)))


@settings(max_examples=50, deadline=None)
@given(_ANSWERS)
def test_random_bytes_for_the_callees_answer_never_raise_and_the_caller_gets_a_final_response(
        answer: tuple[int | None, bytes]) -> None:
    """Random bytes — or a well-formed response of any status then random bytes — as what the called phone
    sends back: the registrar's handler of its connection returns (nothing raised), the line goes down
    with the connection, and the caller gets that final status or 408."""
    status, tail = answer

    async def main() -> tuple[sip.SipMessage, CallRelay]:
        # the line going down ends the wait at once (408 without a final status): the answer timeout is
        # only a bound here, long enough that a loaded machine never turns a final status into 408
        relay = CallRelay(answer_timeout=10.0)
        reg = SipRegistrar({A: (None, None), B: (None, None)}.get, relay=relay, read_timeout=1.0)
        writer = _Writer()
        relay.line_up(f"SEP{B}", cast(asyncio.StreamWriter, writer), over_tls=False, local=LOCAL)
        caller = asyncio.create_task(reg.respond(_invite(_srtp_offer()), PEER, local=LOCAL))
        await _until(lambda: bool(writer.data))
        relayed = sip.parse_message(bytes(writer.data))
        assert b"a=crypto" not in relayed.body
        reader = asyncio.StreamReader()
        reader.feed_data((sip.response_to(relayed, status, "X") if status is not None else b"") + tail)
        reader.feed_eof()
        await reg(reader, cast(asyncio.StreamWriter, writer))  # raises nothing
        assert writer.closed and not relay.reaches(f"SEP{B}")
        return sip.parse_message(await caller), relay

    resp, relay = asyncio.run(main())
    expected = status if status is not None and status >= 200 else 408
    assert resp.status == expected and resp.header("call-id") == "prop@a"
    assert relay._waiting == {}
    assert ("prop@a" in relay._calls) == (expected == 200)  # only an answered call is kept (for its BYE)


# -- 5. what a connection other than the caller's, or a callee that does not read, can make the lab do -------

def test_an_ack_or_bye_from_another_connection_than_the_invites_goes_nowhere() -> None:
    """Knowing a call's Call-ID was enough for any connection — even one of an unknown device, an ACK is
    never authenticated — to make the lab write to the called phone (and, flooding, grow its memory)."""
    async def body(lab: _Lab) -> None:
        async with lab.phone(B) as b, lab.phone(A) as a, lab.phone(STRANGER, register=False) as other:
            a.invite(B, _srtp_offer())
            relayed = await b.read()
            assert relayed is not None
            b.reply(relayed, 200, "OK", extra=[("Content-Type", "application/sdp")], body=relayed.body)
            ok = await a.read()
            assert ok is not None and ok.status == 200
            for _ in range(3):
                other.request("ACK", f"sip:SEP{B}@127.0.0.1", call_id="call-1@a", cseq=1, to=ok.header("to"))
            other.request("BYE", f"sip:SEP{B}@127.0.0.1", call_id="call-1@a", cseq=2, to=ok.header("to"))
            refused = await other.read()
            assert refused is not None and refused.status == 481
            assert await b.read(0.15) is None  # nothing reached the called phone
            a.request("ACK", f"sip:SEP{B}@127.0.0.1", call_id="call-1@a", cseq=1, to=ok.header("to"))
            ack = await b.read()
            assert ack is not None and ack.method == "ACK"  # the caller's own still does

    lab = _in_lab(body)
    assert [o for _, o, _ in lab.log].count("ack-dropped") == 3
    assert [o for _, o, _ in lab.log].count("bye-refused") == 1


class _StuckWriter(_Writer):
    """A called phone's connection that takes nothing: ``unsent`` bytes queued, its drain never ends."""

    def __init__(self, unsent: int) -> None:
        super().__init__()
        self.unsent = unsent

    def get_write_buffer_size(self) -> int:
        return self.unsent + len(self.data)

    async def drain(self) -> None:
        await asyncio.sleep(3600)


def test_a_called_phone_that_does_not_read_bounds_what_the_lab_queues_and_the_caller_still_gets_answers(
) -> None:
    """The relay wrote every ACK to a called phone that did not read (20,000 ACKs: +140 MB of server
    memory), and the caller's BYE waited for that phone's drain outside the answer time-out, for ever."""
    from phoneemu.lab.call_relay import MAX_UNSENT

    async def main() -> tuple[CallRelay, list[tuple[str, str, str]], float]:
        log: list[tuple[str, str, str]] = []
        relay = CallRelay(answer_timeout=0.3, on_log=lambda *a: log.append(a))
        writer = _StuckWriter(unsent=0)
        relay.line_up(f"SEP{B}", cast(asyncio.StreamWriter, writer), over_tls=False, local=LOCAL)
        origin = object()
        call = asyncio.create_task(relay.invite(_invite(_srtp_offer()), user=f"SEP{B}", caller_tls=False,
                                                device=f"SEP{A}", origin=origin))
        await _until(lambda: bool(writer.data))
        relayed = sip.parse_message(bytes(writer.data))
        relay.response(sip.parse_message(sip.response_to(relayed, 200, "OK")))
        assert sip.parse_message(await call).status == 200
        ack = sip.parse_message(sip.build_message(f"ACK sip:SEP{B}@127.0.0.1 SIP/2.0", [
            ("From", f"<sip:SEP{A}@127.0.0.1>;tag=a"), ("To", f"<sip:{'x' * 4000}@y>;tag=lab"),
            ("Call-ID", "prop@a"), ("CSeq", "1 ACK")]))
        for _ in range(100):
            relay.ack(ack, origin)
        assert MAX_UNSENT - 4500 < len(writer.data) <= MAX_UNSENT
        bye = sip.parse_message(sip.build_message(f"BYE sip:SEP{B}@127.0.0.1 SIP/2.0", [
            ("From", f"<sip:SEP{A}@127.0.0.1>;tag=a"), ("To", "<sip:x@y>;tag=lab"), ("Call-ID", "prop@a"),
            ("CSeq", "2 BYE")]))
        writer.unsent = 0  # room again, but the drain never ends: the BYE is answered within its time-out
        writer.data.clear()
        started = time.monotonic()
        resp = sip.parse_message(await asyncio.wait_for(relay.bye(bye, origin), 5))
        assert resp.status == 408
        return relay, log, time.monotonic() - started

    relay, log, took = asyncio.run(main())
    assert took < 2.0, took
    assert relay._calls == {} and relay._waiting == {}
    assert [o for _, o, _ in log].count("not-written") > 80
