"""The lab's on-path attacker over loopback: the media relay it sets up by rewriting clear SDP, and the
REGISTER it replays (phoneemu/lab/on_path.py; seed "Authentication, Integrity, and Authorization")."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from phoneemu.lab import on_path
from phoneemu.lab.on_path import SignallingAttacker
from phoneemu.lab.sip_service import SipRegistrar
from phoneemu.net.tls import TlsServer
from phoneemu.protocols import sdp, sip
from phoneemu.protocols.media import AVP
from tests.helpers import loader_error
from tests.sip_helpers import next_message, register_request, right_authorization

MAC = "0A00000D0001"


class _Ear(asyncio.DatagramProtocol):
    """A UDP end that keeps what it receives, with the source."""

    def __init__(self) -> None:
        self.got: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.got.put_nowait((data, (str(addr[0]), int(addr[1]))))


async def _ear() -> tuple[asyncio.DatagramTransport, _Ear, int]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_Ear, local_addr=("127.0.0.1", 0))
    return transport, proto, transport.get_extra_info("sockname")[1]


def _offer(port: int) -> bytes:
    return sdp.build_sdp(sdp.AudioOffer(address="127.0.0.1", port=port, profile=AVP, formats=(0,)))


def _invite(body: bytes, call_id: str = "call-1") -> sip.SipMessage:
    return sip.parse_message(sip.build_message("INVITE sip:moh@127.0.0.1 SIP/2.0", [
        ("From", f"<sip:SEP{MAC}@lab>;tag=1"), ("To", "<sip:moh@lab>"), ("Call-ID", call_id),
        ("CSeq", "1 INVITE"), ("Content-Type", "application/sdp")], body))


def test_clear_sdp_is_rewritten_and_the_media_relayed_both_ways() -> None:
    async def body() -> None:
        attacker = SignallingAttacker()
        attacker.tamper = True
        phone_t, phone, phone_port = await _ear()
        far_t, far, far_port = await _ear()
        try:
            invite = await attacker.offer_in(_invite(_offer(phone_port)), device=f"SEP{MAC}",
                                             lab_host="127.0.0.1")
            seen_by_far = sdp.parse_sdp(invite.body)
            assert seen_by_far.port != phone_port and invite.header("content-length") == str(len(invite.body))
            reply = sip.response_to(invite, 200, "OK", [("Content-Type", "application/sdp")],
                                    body=_offer(far_port))
            rewritten = sip.parse_message(attacker.answer_out(invite, reply))
            seen_by_phone = sdp.parse_sdp(rewritten.body)
            assert seen_by_phone.port not in (far_port, phone_port)
            phone_t.sendto(b"to the far end", ("127.0.0.1", seen_by_phone.port))
            data, source = await asyncio.wait_for(far.got.get(), 5)
            assert data == b"to the far end" and source[1] == seen_by_far.port  # posing as the phone
            far_t.sendto(b"to the phone", ("127.0.0.1", seen_by_far.port))
            data, source = await asyncio.wait_for(phone.got.get(), 5)
            assert data == b"to the phone" and source[1] == seen_by_phone.port  # posing as the far end
            far_t.sendto(b"stranger", ("127.0.0.1", seen_by_phone.port))  # not from the phone: dropped
            await asyncio.sleep(0.05)
            seen = attacker.seen(f"SEP{MAC}")
            assert seen.intercepted == 2 and "redirected" in seen.tampered
            attacker.forget(f"SEP{MAC}")
            assert attacker.seen(f"SEP{MAC}").intercepted == 0
        finally:
            phone_t.close()
            far_t.close()

    asyncio.run(body())


@pytest.mark.parametrize("body", [b"", b"not sdp at all", b"v=0\r\n"])
def test_what_is_not_sdp_passes_unchanged(body: bytes) -> None:
    async def run() -> None:
        attacker = SignallingAttacker()
        attacker.tamper = True
        invite = _invite(body)
        assert await attacker.offer_in(invite, device="SEP?", lab_host="127.0.0.1") == invite
        reply = sip.response_to(invite, 200, "OK", body=body)
        assert attacker.answer_out(invite, reply) == reply

    asyncio.run(run())


def test_relays_are_bounded_and_the_oldest_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(on_path, "MAX_RELAYS", 3)

    async def body() -> None:
        attacker = SignallingAttacker()
        attacker.tamper = True
        for n in range(5):
            await attacker.offer_in(_invite(_offer(4000 + n), call_id=f"c{n}"), device=f"SEP{MAC}",
                                    lab_host="127.0.0.1")
        relays = attacker._relays
        assert list(relays) == ["c2", "c3", "c4"]
        attacker.forget(f"SEP{MAC}")
        assert not relays

    asyncio.run(body())


@pytest.mark.parametrize(("creds", "outcome"), [((None, None), "accepted"), (("alice", "secret"), "refused")])
def test_a_replayed_register_is_answered_once(creds: tuple[str | None, str | None], outcome: str) -> None:
    """The attacker replays what a phone sent, never its own replay again (before the fix its replay was
    replayed, connection after connection, until the run ended)."""
    log: list[str] = []
    attacker = SignallingAttacker(io_timeout=5.0)
    attacker.replay = True
    reg = SipRegistrar({MAC: creds}.get, on_log=lambda _p, d, o, _w: log.append(o), attacker=attacker)

    async def body() -> str:
        async with TlsServer(reg, None, "127.0.0.1", 0) as srv:
            r, w = await asyncio.open_connection("127.0.0.1", srv.port)
            stream = sip.SipStream()
            w.write(sip.message_bytes(register_request(MAC)))
            answer = await next_message(r, stream)
            if answer is not None and answer.status == 401:
                challenge = sip.parse_digest(answer.header("www-authenticate") or "")
                w.write(sip.message_bytes(register_request(MAC, right_authorization(reg, MAC, challenge, 1))))
                answer = await next_message(r, stream)
            assert answer is not None and answer.status == 200
            seen = await attacker.settled(f"SEP{MAC}")
            await asyncio.sleep(0.2)  # a replay of the replay would be under way by now
            w.close()
            return seen.replay

    assert asyncio.run(body()) == outcome
    expected = "registered" if outcome == "accepted" else "replayed"
    assert log.count(expected) == 1 if outcome == "refused" else log.count("registered") == 2, log


def test_a_replay_to_a_closed_registrar_is_recorded_as_none() -> None:
    async def body() -> str:
        attacker = SignallingAttacker(io_timeout=1.0)
        attacker.replay = True
        msg = register_request(MAC)
        assert attacker.will_replay(msg, device=f"SEP{MAC}", peer="127.0.0.1:1")
        await attacker.replay_register(msg, device=f"SEP{MAC}", registrar=("127.0.0.1", 1))
        return (await attacker.settled(f"SEP{MAC}")).replay

    assert asyncio.run(body()).startswith("none (")


def test_the_seen_record_is_a_value() -> None:
    seen = on_path.OnPathSeen()
    assert dataclasses.replace(seen, replay="refused").replay == "refused" and seen.replay == "none"



@pytest.mark.parametrize(("step", "where"), [
    ("- network: {tamper_signalling: 1}", "network.tamper_signalling"),
    ("- network: {replay_sip: yes please}", "network.replay_sip"),
    ("- network: {tamper_sip: true}", "tamper_sip"),
    ("- expect: {phones: a, sip_replay: maybe}", "sip_replay"),
    ("- expect: {phones: a, media_intercepted: -1}", "media_intercepted"),
    ("- expect: {phones: a, media_intercepted: lots}", "media_intercepted"),
])
def test_the_loader_names_a_bad_attacker_setting(step: str, where: str) -> None:
    assert where in str(loader_error(step))


def test_lab_serve_attack_needs_a_sip_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from phoneemu.cli import main

    assert main(["lab", "serve", str(tmp_path), "--attack", "replay-sip"]) != 0
    assert "--sip-port" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["lab", "serve", str(tmp_path), "--sip-port", "0", "--attack", "eavesdrop"])


def test_only_the_audio_stream_is_redirected_the_rest_of_the_sdp_stays() -> None:
    """A rich offer (video, attributes the lab does not know, a session-level c=): the attacker changes the
    audio port and gives the audio section a c= of its own; everything else, line ends too, is as it came
    (it rebuilt the whole SDP, dropping the video: a careful end could see it)."""
    rich = (b"v=0\r\no=phone 7 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            b"m=audio 40000 RTP/AVP 0 101\r\ni=voice\r\na=rtpmap:0 PCMU/8000\r\na=x-vendor:thing\r\n"
            b"m=video 40002 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n")

    async def body() -> bytes:
        attacker = SignallingAttacker()
        attacker.tamper = True
        try:
            out = await attacker.offer_in(_invite(rich), device=f"SEP{MAC}", lab_host="127.0.0.1")
            return out.body
        finally:
            attacker.close()

    out = asyncio.run(body())
    audio = sdp.parse_sdp(out)
    assert audio.address == "127.0.0.1" and audio.port != 40000
    expected = rich.replace(b"m=audio 40000 ", f"m=audio {audio.port} ".encode()).replace(
        b"i=voice\r\n", b"i=voice\r\nc=IN IP4 127.0.0.1\r\n")
    assert out == expected
