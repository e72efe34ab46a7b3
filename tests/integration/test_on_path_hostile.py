"""The lab's on-path attacker fed hostile input over loopback (phoneemu/lab/on_path.py, driven by
phoneemu/lab/sip_service.py): hostile SDP offers and answers, hostile Call-IDs, its media relay under
strangers and floods, relays closed, REGISTER replays whose answer is garbage, never comes or is huge,
and a registrar with the attacker and the media resources serving hostile INVITEs client after client."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
import random
import warnings
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneemu.errors import DecodeError
from phoneemu.fuzz.mediamsg import SdpMutator, media_seeds
from phoneemu.lab import on_path
from phoneemu.lab.media_service import MediaResources
from phoneemu.lab.on_path import SignallingAttacker
from phoneemu.lab.sip_service import SipRegistrar
from phoneemu.net.tls import TlsServer
from phoneemu.protocols import sdp, sip
from phoneemu.protocols.media import AVP
from phoneemu.protocols.sdp import AudioOffer
from tests.helpers import v6_loopback_missing
from tests.sip_helpers import next_message, register_request

MAC = "0A00000D0201"
DEVICE = f"SEP{MAC}"
LAB = "127.0.0.1"


def _ipv6() -> bool:
    return v6_loopback_missing() is None


needs_ipv6 = pytest.mark.skipif(not _ipv6(), reason="no IPv6 loopback")


# -- helpers -------------------------------------------------------------------------------------------------

class _Ear(asyncio.DatagramProtocol):
    """A UDP end that keeps what it receives, with the source."""

    def __init__(self) -> None:
        self.got: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.got.put_nowait((data, (str(addr[0]), int(addr[1]))))


async def _ear(host: str = LAB) -> tuple[asyncio.DatagramTransport, _Ear, int]:
    transport, proto = await asyncio.get_running_loop().create_datagram_endpoint(_Ear, local_addr=(host, 0))
    return transport, proto, transport.get_extra_info("sockname")[1]


def _offer(port: int, address: str = LAB) -> bytes:
    ip = ipaddress.ip_address(address)
    ttl = 1 if ip.version == 4 and ip.is_multicast else None  # RFC 4566 §5.7: IPv4 multicast carries a TTL
    return sdp.build_sdp(AudioOffer(address=address, port=port, profile=AVP, formats=(0,), ttl=ttl))


def _invite(body: bytes, call_id: str = "call-1", cseq: int = 1) -> sip.SipMessage:
    return sip.parse_message(sip.build_message("INVITE sip:moh@127.0.0.1 SIP/2.0", [
        ("From", f"<sip:{DEVICE}@lab>;tag=1"), ("To", "<sip:moh@lab>"), ("Call-ID", call_id),
        ("CSeq", f"{cseq} INVITE"), ("Content-Type", "application/sdp")], body))


def _tamperer(**kw: Any) -> SignallingAttacker:
    attacker = SignallingAttacker(**kw)
    attacker.tamper = True
    return attacker


def _relays(attacker: SignallingAttacker) -> list[Any]:
    return list(attacker._relays.values())


def _closed(relay: Any) -> bool:
    return all(t is None or t.is_closing() for t in (relay.facing_phone, relay.facing_far))


@contextlib.contextmanager
def _no_resource_warning() -> Iterator[None]:
    """What was left open is collected inside: a ResourceWarning (unclosed transport or socket) fails.

    What existed before the block is frozen (``gc.freeze``) while it runs, so the collection at its end
    walks only the objects the block made — where its leaks are — and not the whole worker's heap (a full
    collection of a worker deep into the suite took ~0.1 s, and the hypothesis test pays it per example)."""
    gc.freeze()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            yield
            gc.collect()
    finally:
        gc.unfreeze()
    leaked = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaked, [str(w.message) for w in leaked]


# -- 1. offer_in / answer_out with hostile input (hypothesis) ------------------------------------------------

_MUTATOR = SdpMutator("sdp", tuple(body for _, body in media_seeds("sdp")))
_ADDRESSES = ["127.0.0.1", "127.0.0.2", "0.0.0.0", "224.0.0.1", "255.255.255.255", "192.0.2.1", "10.255.0.1"]
if _ipv6():
    _ADDRESSES += ["::1", "0:0:0:0:0:0:0:1", "::", "ff02::1", "2001:db8::1"]


def _mutant(seed: int, local: bool) -> bytes:
    body = _MUTATOR.mutate(random.Random(seed))[1]
    return body.replace(b"10.0.0.9", b"127.0.0.1").replace(b"10.0.0.1", b"127.0.0.1") if local else body


_SDP = st.one_of(
    st.builds(_mutant, st.integers(0, 2**64 - 1), st.booleans()),
    st.builds(lambda a, p: _offer(p, a), st.sampled_from(_ADDRESSES), st.sampled_from([0, 1, 65535, 20000])),
    st.binary(max_size=200),
    st.just(b""),
)
_CALL_IDS = st.one_of(st.sampled_from(["", "same", "same", "x" * 7000, "ünï", "a b", "c@h"]),
                      st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20))
_STATUS = st.sampled_from([100, 180, 200, 200, 200, 401, 404, 488, 500])


def _unicast(host: str) -> bool:
    ip = ipaddress.ip_address(host)
    return not (ip.is_unspecified or ip.is_multicast or str(ip) == "255.255.255.255")


def _check_out(invite: sip.SipMessage, out: sip.SipMessage) -> None:
    """An INVITE the attacker passed on: unchanged, or its SDP's port alone changed, Content-Length right."""
    if out == invite:
        return
    assert out.header("content-length") == str(len(out.body))
    assert sip.parse_message(sip.message_bytes(out)).body == out.body
    before, after = sdp.parse_sdp(invite.body), sdp.parse_sdp(out.body)
    assert after.address == before.address and after.port != before.port
    assert before.port != 0 and _unicast(before.address), "relayed a refused stream or a non-unicast address"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_CALL_IDS, _SDP, _STATUS, _SDP, st.booleans()), min_size=1, max_size=6))
def test_hostile_offers_and_answers_pass_parseable_or_unchanged(
        calls: list[tuple[str, bytes, int, bytes, bool]]) -> None:
    """Whatever the offer (mutated SDP, an address that is not this host's, IPv6, port 0 or 65535, not SDP
    at all), the Call-ID (empty, huge, repeated) and the answer (another status, hostile SDP, not SIP, a
    second one), the attacker returns a message that parses, raises nothing, and keeps at most
    MAX_RELAYS relays, each bound to the address the offer named, a unicast one."""
    async def body() -> None:
        attacker = _tamperer()
        try:
            for call_id, offer, status, answer, garbage in calls:
                try:
                    invite = _invite(offer, call_id)
                except DecodeError:  # an offer over the SIP body limit: not a message the registrar passes on
                    continue
                out = await attacker.offer_in(invite, device=DEVICE, lab_host=LAB)
                _check_out(invite, out)
                assert len(attacker._relays) <= on_path.MAX_RELAYS
                for relay in _relays(attacker):
                    host = relay.facing_far.get_extra_info("sockname")[0]
                    assert _unicast(host) and relay.facing_phone.get_extra_info("sockname")[0] == LAB
                reply = b"\x16\x03\x01garbage" if garbage else sip.response_to(out, status, "X", body=answer)
                for _ in range(2):  # a second answer to the same call changes nothing more
                    got = attacker.answer_out(out, reply)
                    assert isinstance(got, bytes)
                    if got != reply:
                        assert status == 200 and not garbage
                        parsed = sip.parse_message(got)
                        assert sdp.parse_sdp(parsed.body).address == LAB
                    reply = got
                stranger = sip.response_to(_invite(b"", "nobody-has-this-call"), 200, "OK", body=answer)
                assert attacker.answer_out(_invite(b"", "nobody-has-this-call"), stranger) == stranger
        finally:
            attacker.close()

    with pytest.MonkeyPatch.context() as mp, _no_resource_warning():
        mp.setattr(on_path, "MAX_RELAYS", 3)
        asyncio.run(body())


@pytest.mark.parametrize("address", ["0.0.0.0", "224.0.0.1", "192.0.2.1"])
def test_an_offer_the_attacker_cannot_or_must_not_bind_passes_unchanged(address: str) -> None:
    """0.0.0.0 (hold, RFC 2543) and a multicast group would bind the relay to every interface or a
    group; a documentation address is not this host's. Before the fix 0.0.0.0 and 224.0.0.1 got relays."""
    async def body() -> None:
        attacker = _tamperer()
        invite = _invite(_offer(4000, address))
        try:
            assert await attacker.offer_in(invite, device=DEVICE, lab_host=LAB) == invite
            assert not attacker._relays
        finally:
            attacker.close()

    asyncio.run(body())


def test_a_refused_stream_port_0_is_not_turned_into_a_live_one() -> None:
    """Port 0 is a stream refused (RFC 3264 §6): rewriting it would make both ends see a stream neither
    asked for. Before the fix the offer got the relay's port, the answer too."""
    async def body() -> None:
        attacker = _tamperer()
        try:
            invite = _invite(_offer(0))
            assert await attacker.offer_in(invite, device=DEVICE, lab_host=LAB) == invite
            live = await attacker.offer_in(_invite(_offer(4000), "c2"), device=DEVICE, lab_host=LAB)
            refused = sip.response_to(live, 200, "OK", body=_offer(0))
            assert attacker.answer_out(live, refused) == refused
        finally:
            attacker.close()

    asyncio.run(body())


def test_port_65535_is_relayed() -> None:
    async def body() -> None:
        attacker = _tamperer()
        try:
            invite = _invite(_offer(65535))
            out = await attacker.offer_in(invite, device=DEVICE, lab_host=LAB)
            assert sdp.parse_sdp(out.body).port != 65535
            reply = attacker.answer_out(out, sip.response_to(out, 200, "OK", body=_offer(65535)))
            assert sdp.parse_sdp(sip.parse_message(reply).body).port != 65535
        finally:
            attacker.close()

    asyncio.run(body())


def test_answers_that_change_nothing() -> None:
    """A reply that is not SIP, a non-200, a 200 without SDP, a second 200, a 200 to a call never offered."""
    async def body() -> None:
        attacker = _tamperer()
        try:
            out = await attacker.offer_in(_invite(_offer(4000)), device=DEVICE, lab_host=LAB)
            for reply in (b"", b"HTTP/1.1 200 OK\r\n\r\n", b"\x00" * 100, b"SIP/2.0 200 OK\r\n\r\n",
                          sip.response_to(out, 180, "Ringing", body=_offer(5000)),
                          sip.response_to(out, 200, "OK", body=_offer(5000))[:-3]):
                assert attacker.answer_out(out, reply) == reply
            first = attacker.answer_out(out, sip.response_to(out, 200, "OK", body=_offer(5000)))
            assert sdp.parse_sdp(sip.parse_message(first).body).port != 5000
            again = sip.response_to(out, 200, "OK", body=_offer(5002))
            assert attacker.answer_out(out, again) == again
            for n, body in enumerate((b"v=0\r\n", _offer(0), _offer(5000, "0.0.0.0"))):  # no media it relays
                call = await attacker.offer_in(_invite(_offer(4000), f"u{n}"), device=DEVICE, lab_host=LAB)
                assert f"u{n}" in attacker._relays
                reply = sip.response_to(call, 200, "OK", body=body)
                assert attacker.answer_out(call, reply) == reply
                assert f"u{n}" not in attacker._relays  # closed at once
            other = _invite(_offer(4000), "never-offered")
            assert attacker.answer_out(other, sip.response_to(other, 200, "OK", body=_offer(5000))) == \
                sip.response_to(other, 200, "OK", body=_offer(5000))
        finally:
            attacker.close()

    asyncio.run(body())


def test_a_final_refusal_closes_the_relay_at_once() -> None:
    """A call refused (488, 404, 401...) has no media: its relay's two ports are closed then, not after
    relay_timeout (before the fix they stayed open a minute, up to MAX_RELAYS of them)."""
    async def body() -> None:
        attacker = _tamperer()
        try:
            out = await attacker.offer_in(_invite(_offer(4000)), device=DEVICE, lab_host=LAB)
            (relay,) = _relays(attacker)
            assert attacker.answer_out(out, sip.response_to(out, 180, "Ringing")) is not None
            assert not _closed(relay)
            refused = sip.response_to(out, 488, "Not Acceptable Here")
            assert attacker.answer_out(out, refused) == refused
            assert _closed(relay) and not attacker._relays
        finally:
            attacker.close()

    asyncio.run(body())


def test_an_invite_sent_again_with_the_same_call_id_is_rewritten_again() -> None:
    """A phone with a digest user sends its INVITE, gets 401, sends it again with the same Call-ID
    (RFC 3261 §22.2). Before the fix the second offer passed unchanged (a relay for the call was there
    already): the far end sent its media straight to the phone, half the call escaped the attacker."""
    async def body() -> None:
        attacker = _tamperer()
        phone_t, phone, phone_port = await _ear()
        far_t, far, far_port = await _ear()
        try:
            first = await attacker.offer_in(_invite(_offer(phone_port)), device=DEVICE, lab_host=LAB)
            assert sdp.parse_sdp(first.body).port != phone_port
            again = await attacker.offer_in(_invite(_offer(phone_port), cseq=2), device=DEVICE, lab_host=LAB)
            seen_by_far = sdp.parse_sdp(again.body)
            assert seen_by_far.port != phone_port
            assert len(attacker._relays) == 1
            reply = attacker.answer_out(again, sip.response_to(again, 200, "OK", body=_offer(far_port)))
            seen_by_phone = sdp.parse_sdp(sip.parse_message(reply).body)
            far_t.sendto(b"to the phone", (LAB, seen_by_far.port))
            assert (await asyncio.wait_for(phone.got.get(), 5))[0] == b"to the phone"
            phone_t.sendto(b"to the far end", (LAB, seen_by_phone.port))
            assert (await asyncio.wait_for(far.got.get(), 5))[0] == b"to the far end"
            assert attacker.seen(DEVICE).intercepted == 2
        finally:
            attacker.close()
            phone_t.close()
            far_t.close()

    with _no_resource_warning():
        asyncio.run(body())


def test_concurrent_invites_with_one_call_id_leave_no_relay_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the fix each of them bound two ports, one relay was kept, the others stayed open until
    relay_timeout outside any bound (MAX_RELAYS did not count them)."""
    made: list[Any] = []

    class _Counted(on_path._Relay):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            made.append(self)

    monkeypatch.setattr(on_path, "_Relay", _Counted)

    async def body() -> None:
        attacker = _tamperer()
        try:
            await asyncio.gather(*(attacker.offer_in(_invite(_offer(4000 + n), "one-call"), device=DEVICE,
                                                     lab_host=LAB) for n in range(20)))
            assert len(attacker._relays) == 1
            open_ = [r for r in made if not _closed(r)]
            assert len(open_) == 1, f"{len(open_)} relays open"
        finally:
            attacker.close()

    with _no_resource_warning():
        asyncio.run(body())


@needs_ipv6
@pytest.mark.parametrize("written", ["::1", "0:0:0:0:0:0:0:1", "0::1"])
def test_an_ipv6_call_is_relayed_both_ways(written: str) -> None:
    """IPv6 media, the address written in any of its forms (before the fix a form other than the one the
    socket reports, ``::1``, had every packet from the phone dropped as a stranger's)."""
    async def body() -> None:
        attacker = _tamperer()
        phone_t, phone, phone_port = await _ear("::1")
        far_t, far, far_port = await _ear("::1")
        try:
            invite = await attacker.offer_in(_invite(_offer(phone_port, written)), device=DEVICE,
                                             lab_host="::1")
            seen_by_far = sdp.parse_sdp(invite.body)
            assert seen_by_far.address == written and seen_by_far.port != phone_port
            answer = sip.response_to(invite, 200, "OK", body=_offer(far_port, "::1"))
            reply = attacker.answer_out(invite, answer)
            seen_by_phone = sdp.parse_sdp(sip.parse_message(reply).body)
            assert seen_by_phone.address == "::1"
            phone_t.sendto(b"to the far end", ("::1", seen_by_phone.port))
            assert (await asyncio.wait_for(far.got.get(), 5))[0] == b"to the far end"
            far_t.sendto(b"to the phone", ("::1", seen_by_far.port))
            assert (await asyncio.wait_for(phone.got.get(), 5))[0] == b"to the phone"
        finally:
            attacker.close()
            phone_t.close()
            far_t.close()

    asyncio.run(body())


@needs_ipv6
def test_a_call_across_address_families_is_not_relayed() -> None:
    """A relay's port facing the phone is on the lab's address, its port facing the far end on the phone's:
    an IPv6 offer on an IPv4 line (or an IPv4 answer to an IPv6 offer) would have the relay send from one
    family to the other — every packet lost without a word. Before the fix both were rewritten."""
    async def body() -> None:
        attacker = _tamperer()
        try:
            v6_on_v4 = _invite(_offer(4000, "::1"))
            assert await attacker.offer_in(v6_on_v4, device=DEVICE, lab_host=LAB) == v6_on_v4
            assert not attacker._relays
            out = await attacker.offer_in(_invite(_offer(4000, "::1"), "v6"), device=DEVICE, lab_host="::1")
            assert out.body != _offer(4000, "::1")
            v4_answer = sip.response_to(out, 200, "OK", body=_offer(5000, LAB))
            assert attacker.answer_out(out, v4_answer) == v4_answer
            assert not attacker._relays
        finally:
            attacker.close()

    asyncio.run(body())


# -- 2. the relay --------------------------------------------------------------------------------------------

async def _relayed_call(attacker: SignallingAttacker
                        ) -> tuple[Any, Callable[[], Awaitable[None]], dict[str, Any]]:
    """A call through the attacker: the phone, the far end and a stranger as UDP ends."""
    phone_t, phone, phone_port = await _ear()
    far_t, far, far_port = await _ear()
    stranger_t, stranger, _ = await _ear()
    invite = await attacker.offer_in(_invite(_offer(phone_port)), device=DEVICE, lab_host=LAB)
    reply = attacker.answer_out(invite, sip.response_to(invite, 200, "OK", body=_offer(far_port)))
    ends = {"phone": (phone_t, phone), "far": (far_t, far), "stranger": (stranger_t, stranger),
            "to_far": (LAB, sdp.parse_sdp(sip.parse_message(reply).body).port),  # the phone sends here
            "to_phone": (LAB, sdp.parse_sdp(invite.body).port)}  # the far end sends here

    async def close() -> None:
        for t in (phone_t, far_t, stranger_t):
            t.close()
        await asyncio.sleep(0)

    return _relays(attacker)[0], close, ends


async def _quiet(ear: _Ear, wait: float = 0.05) -> list[bytes]:
    await asyncio.sleep(wait)
    got = []
    while not ear.got.empty():
        got.append(ear.got.get_nowait()[0])
    return got


def test_datagrams_from_strangers_are_dropped() -> None:
    """A stranger on either port, the far end on the port facing the phone, the phone on the port facing
    the far end: nothing goes on, nothing is counted."""
    async def body() -> None:
        attacker = _tamperer()
        relay, close, ends = await _relayed_call(attacker)
        try:
            stranger_t = ends["stranger"][0]
            for port in (ends["to_far"], ends["to_phone"]):
                stranger_t.sendto(b"stranger", port)
            ends["far"][0].sendto(b"far on the wrong port", ends["to_far"])
            ends["phone"][0].sendto(b"phone on the wrong port", ends["to_phone"])
            assert await _quiet(ends["phone"][1]) == [] and await _quiet(ends["far"][1], 0) == []
            assert relay.packets == 0 and attacker.seen(DEVICE).intercepted == 0
        finally:
            attacker.close()
            await close()

    asyncio.run(body())


def test_a_flood_is_forwarded_and_nothing_accumulates() -> None:
    async def body() -> None:
        attacker = _tamperer()
        relay, close, ends = await _relayed_call(attacker)
        try:
            phone_t, stranger_t = ends["phone"][0], ends["stranger"][0]
            for n in range(3000):
                phone_t.sendto(b"x" * 160, ends["to_far"])
                stranger_t.sendto(b"y" * 1400, ends["to_far"])
                if n % 200 == 0:
                    await asyncio.sleep(0)
            await asyncio.sleep(0.1)
            got = await _quiet(ends["far"][1], 0)
            assert 0 < len(got) <= 3000 and set(got) == {b"x" * 160}
            assert len(got) <= relay.packets <= 3000  # the kernel may drop some on the far side
            assert relay.facing_far.get_write_buffer_size() == 0
            assert relay.facing_phone.get_write_buffer_size() == 0
            assert len(attacker._relays) == 1 and len(attacker._seen) == 1
        finally:
            attacker.close()
            await close()

    asyncio.run(body())


class _Stuck(asyncio.DatagramTransport):
    """A transport whose socket would block: asyncio keeps what is sent in its buffer."""

    def __init__(self) -> None:
        super().__init__()
        self.buffered = 0

    def sendto(self, data: Any, addr: Any = None) -> None:
        self.buffered += len(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered


def test_a_flood_into_a_blocked_socket_is_dropped_not_buffered() -> None:
    """asyncio buffers, without limit, a datagram its socket would block on. Before the fix the relay
    forwarded everything: the buffer grew with the flood (10 MB here)."""
    relay = on_path._Relay(DEVICE, ("127.0.0.1", 4000))
    relay.far = ("127.0.0.1", 5000)
    stuck, other = _Stuck(), _Stuck()
    relay.facing_far, relay.facing_phone = stuck, other
    side = on_path._RelaySide(relay, facing_phone=True)
    for _ in range(10_000):
        side.datagram_received(b"x" * 1000, ("127.0.0.1", 4000))
    assert stuck.buffered <= 256 * 1024, f"{stuck.buffered} bytes buffered"
    stuck.buffered = 0  # the socket drained
    side.datagram_received(b"after", ("127.0.0.1", 4000))
    assert stuck.buffered == len(b"after")


def test_a_relay_forgotten_or_expired_stops_forwarding_and_closes_its_ports() -> None:
    async def body() -> None:
        attacker = _tamperer(relay_timeout=0.1)
        relay, close, ends = await _relayed_call(attacker)
        try:
            attacker.forget(DEVICE)
            assert _closed(relay) and not attacker._relays
            ends["phone"][0].sendto(b"late", ends["to_far"])
            assert await _quiet(ends["far"][1]) == []
            relay2, close2, ends2 = await _relayed_call(attacker)
            await asyncio.sleep(0.3)  # relay_timeout passes
            assert _closed(relay2) and not attacker._relays
            ends2["phone"][0].sendto(b"late", ends2["to_far"])
            assert await _quiet(ends2["far"][1]) == []
            await close2()
        finally:
            attacker.close()
            await close()

    with _no_resource_warning():
        asyncio.run(body())


def test_close_closes_every_relay() -> None:
    """The lab stops: every relay's ports are closed (before the fix there was no way but forget, device
    by device, and the lab's stop left them to the garbage collector: ResourceWarning)."""
    async def body() -> list[Any]:
        attacker = _tamperer()
        for n in range(4):
            await attacker.offer_in(_invite(_offer(4000 + n), f"c{n}"), device=f"SEP0A00000D030{n}",
                                    lab_host=LAB)
        relays = _relays(attacker)
        attacker.close()
        assert not attacker._relays
        return relays

    with _no_resource_warning():
        relays = asyncio.run(body())
    assert len(relays) == 4 and all(_closed(r) for r in relays)


# -- 3. the replay -------------------------------------------------------------------------------------------

async def _fake_registrar(answer: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
                          ) -> tuple[asyncio.Server, int]:
    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        try:
            await answer(r, w)
        except (ConnectionError, OSError):
            pass
        finally:
            w.close()

    server = await asyncio.start_server(handle, LAB, 0)
    return server, server.sockets[0].getsockname()[1]


async def _replayed(answer: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]], *,
                    io_timeout: float = 0.5, msg: sip.SipMessage | None = None) -> str:
    """What the attacker records when the registrar answers a replay with ``answer``; never more than
    io_timeout (plus slack) for replay_register and for settled."""
    attacker = SignallingAttacker(io_timeout=io_timeout)
    attacker.replay = True
    server, port = await _fake_registrar(answer)
    register = msg if msg is not None else register_request(MAC)
    try:
        assert attacker.will_replay(register, device=DEVICE, peer="127.0.0.1:1")
        settled = asyncio.ensure_future(attacker.settled(DEVICE))
        await asyncio.wait_for(attacker.replay_register(register, device=DEVICE, registrar=(LAB, port)),
                               io_timeout * 2 + 2)
        await asyncio.wait_for(settled, 1)
        return attacker.seen(DEVICE).replay
    finally:
        server.close()
        await server.wait_closed()


def _answering(answer: bytes, *, then: float = 0.0
               ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A registrar that reads the replay, writes ``answer``, waits ``then`` seconds and closes."""
    async def go(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.read(4096)
        w.write(answer)
        await w.drain()
        await asyncio.sleep(then)

    return go


@pytest.mark.parametrize("answer", [
    b"\x16\x03\x01\x02\x00garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"SIP/2.0 200 OK\r\n\r\n",  # no Content-Length
    b"SIP/2.0 200 OK\r\nContent-Length: 99999999\r\n\r\n",
    b"SIP/2.0 401 Unauthorized\r\nX: " + b"y" * 20_000 + b"\r\n",  # no end of head within the limit
    b"\xff\xfe" * 30_000,
])
def test_a_garbage_or_huge_answer_is_none(answer: bytes) -> None:
    outcome = asyncio.run(_replayed(_answering(answer, then=0.2)))
    assert outcome.startswith("none (") and len(outcome) < 400, outcome


def test_an_answer_that_never_comes_is_none_within_io_timeout() -> None:
    async def silent(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    assert asyncio.run(_replayed(silent, io_timeout=0.3)) == "none (TimeoutError)"


def test_an_answer_cut_short_is_none() -> None:
    assert asyncio.run(_replayed(
        _answering(b"SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nabc"))) == "none (no answer)"


def test_a_request_is_not_an_answer() -> None:
    """Before the fix a request on the connection was recorded ``answered None``."""
    outcome = asyncio.run(_replayed(_answering(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n")))
    assert outcome.startswith("none (") and "request" in outcome, outcome


def test_provisional_answers_are_skipped_for_the_final_one() -> None:
    """RFC 3261 §8.1.3.1: a 1xx is not the answer. Before the fix ``answered 100`` was recorded."""
    trying = b"SIP/2.0 100 Trying\r\nContent-Length: 0\r\n\r\n"
    assert asyncio.run(_replayed(_answering(
        trying * 3 + b"SIP/2.0 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"))) == "refused"


def test_an_endless_stream_of_provisional_answers_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(on_path, "MAX_ANSWER", 2000)

    async def chatty(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await r.read(4096)
        for _ in range(1000):
            w.write(b"SIP/2.0 100 Trying\r\nContent-Length: 0\r\n\r\n")
            await w.drain()
            await asyncio.sleep(0)

    outcome = asyncio.run(_replayed(chatty, io_timeout=2.0))
    assert outcome.startswith("none (") and "2000" in outcome, outcome


def test_a_replay_to_a_registrar_that_never_reads_ends_within_io_timeout() -> None:
    """The attacker's connection closed while what it wrote is still unsent: the close waits for the
    peer to read it. Before the fix ``wait_closed`` had no bound — replay_register never returned."""
    big = sip.SipMessage(method="REGISTER", uri="sip:lab", headers=(("From", f"<sip:{DEVICE}@lab>"),),
                         body=b"x" * 16_000_000)

    async def deaf(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    assert asyncio.run(_replayed(deaf, io_timeout=0.3, msg=big)).startswith("none (")


def test_a_replay_promised_but_never_made_locks_nothing_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """will_replay said yes, then the phone's connection dropped before its answer was written: the
    registrar never calls replay_register. Before the fix such devices stayed "replaying" for ever:
    settled waited io_timeout for them each time, and past MAX_RELAYS of them no device was replayed."""
    monkeypatch.setattr(on_path, "MAX_RELAYS", 2)

    async def body() -> None:
        attacker = SignallingAttacker(io_timeout=0.1)
        attacker.replay = True
        msg = register_request(MAC)
        assert attacker.will_replay(msg, device="SEP0A00000D0301", peer="127.0.0.1:1")
        assert attacker.will_replay(msg, device="SEP0A00000D0302", peer="127.0.0.1:2")
        assert not attacker.will_replay(msg, device="SEP0A00000D0303", peer="127.0.0.1:3")  # the bound
        await asyncio.sleep(0.35)  # longer than any replay takes
        assert attacker.will_replay(msg, device="SEP0A00000D0303", peer="127.0.0.1:3")
        await asyncio.wait_for(attacker.settled("SEP0A00000D0301"), 0.05)  # no wait: nothing under way

    asyncio.run(body())


def test_many_phones_registering_at_once_are_each_replayed_once() -> None:
    n = 24
    macs = [f"0A00000D{0x400 + i:04X}" for i in range(n)]
    registered: dict[str, int] = {}
    attacker = SignallingAttacker(io_timeout=5.0)
    attacker.replay = True

    def log(_peer: str, device: str, outcome: str, _why: str) -> None:
        if outcome == "registered":
            registered[device] = registered.get(device, 0) + 1

    reg = SipRegistrar(dict.fromkeys(macs, (None, None)).get, on_log=log, attacker=attacker)

    async def phone(port: int, mac: str) -> int:
        answer = await _exchange(port, sip.message_bytes(register_request(mac)))
        return 0 if answer is None else answer.status or 0

    async def body() -> list[str]:
        async with TlsServer(reg, None, LAB, 0) as srv:
            statuses = await asyncio.gather(*(phone(srv.port, m) for m in macs))
            assert statuses == [200] * n
            seen = await asyncio.gather(*(attacker.settled(f"SEP{m}") for m in macs))
            await asyncio.sleep(0.2)  # a replay of a replay would be under way by now
            return [s.replay for s in seen]

    assert asyncio.run(body()) == ["accepted"] * n
    assert registered == {f"SEP{m}": 2 for m in macs}  # the phone's and the attacker's, no more
    assert not attacker._replaying and not attacker._own


# -- 4. end to end through the registrar ---------------------------------------------------------------------

def _invite_bytes(body: bytes, call_id: str, *, auth: str | None = None, cseq: int = 1,
                  port_in_sdp: int | None = None) -> bytes:
    headers = [("Via", "SIP/2.0/TCP 127.0.0.1:5;branch=z9hG4bK1"), ("From", f"<sip:{DEVICE}@lab>;tag=1"),
               ("To", "<sip:moh@lab>"), ("Call-ID", call_id), ("CSeq", f"{cseq} INVITE"),
               ("Content-Type", "application/sdp")]
    if auth is not None:
        headers.append(("Authorization", auth))
    return sip.build_message("INVITE sip:moh@127.0.0.1 SIP/2.0", headers, body)


async def _exchange(port: int, data: bytes) -> sip.SipMessage | None:
    """One request on a fresh connection; the answer (None: the connection closed without one)."""
    r, w = await asyncio.open_connection(LAB, port)
    try:
        w.write(data)
        return await next_message(r, sip.SipStream())
    finally:
        w.close()


_HOSTILE_BODIES = [b"", b"not sdp", b"v=0\r\n", _offer(0), _offer(65535), _offer(4000, "0.0.0.0"),
                   _offer(4000, "224.0.0.1"), _offer(4000, "192.0.2.1"), _offer(4000, "127.0.0.2"),
                   b"\xff" * 300, _offer(4000) + b"a=" + b"z" * 600 + b"\r\n"]
if _ipv6():
    _HOSTILE_BODIES += [_offer(4000, "::1"), _offer(4000, "0:0:0:0:0:0:0:1")]


def test_the_registrar_with_the_attacker_serves_hostile_invites_client_after_client(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(on_path, "MAX_RELAYS", 8)
    media = MediaResources()
    attacker = _tamperer()
    # the clients' mistakes (an empty Call-ID, bytes that are no SIP) at INFO, as a scenario's lab logs them:
    # any other warning is the registrar's own
    reg = SipRegistrar({MAC: (None, None)}.get, media=media, attacker=attacker,
                       problem_log_level=logging.INFO)
    mutants = [_mutant(seed, True) for seed in range(40)]

    async def body() -> list[int | None]:
        try:
            return await serve()
        finally:
            attacker.close()
            media.close()

    async def serve() -> list[int | None]:
        statuses: list[int | None] = []
        async with TlsServer(reg, None, LAB, 0) as srv:
            for n, offer in enumerate([*_HOSTILE_BODIES, *mutants]):
                for call_id in (f"c{n}", "", "x" * 7000):
                    answer = await _exchange(srv.port, _invite_bytes(offer, call_id))
                    statuses.append(None if answer is None else answer.status)
                    if answer is not None and answer.status == 200:
                        got = sdp.parse_sdp(answer.body)  # the SDP answer is readable
                        assert got.address == LAB
            for raw in (b"INVITE sip:moh@127.0.0.1 SIP/2.0\r\nContent-Length: 5000\r\n\r\n",
                        b"\x16\x03\x01" + b"\x00" * 100 + b"\r\n\r\n", b"INVITE x\r\n\r\n"):
                answer = await _exchange(srv.port, raw)
                statuses.append(None if answer is None else answer.status)
            good = await _exchange(srv.port, _invite_bytes(_offer(4000), "the-next-client"))
            assert good is not None and good.status == 200  # still serving
        return statuses

    statuses = asyncio.run(body())
    assert set(statuses) <= {200, 400, 404, 415, 488, 503}, statuses
    assert 200 in statuses and 400 in statuses and 488 in statuses
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR
           or (r.levelno >= logging.WARNING and r.name != "phoneemu.lab.on_path")]
    assert not bad, [r.getMessage()[:200] for r in bad]
    assert len(attacker._relays) <= on_path.MAX_RELAYS


def test_a_digest_phones_call_is_intercepted_both_ways_end_to_end() -> None:
    """INVITE, 401, the INVITE again with the same Call-ID and its digest answer, 200, ACK: the lab's
    media resource plays its packets through the attacker to the phone (before the fix the second offer
    passed unchanged and the resource played straight to the phone: nothing intercepted)."""
    media = MediaResources()
    attacker = _tamperer()
    reg = SipRegistrar({MAC: ("alice", "secret")}.get, media=media, attacker=attacker)

    async def body() -> int:
        phone_t, phone, phone_port = await _ear()
        try:
            async with TlsServer(reg, None, LAB, 0) as srv:
                r, w = await asyncio.open_connection(LAB, srv.port)
                stream = sip.SipStream()

                async def ask(data: bytes) -> sip.SipMessage:
                    w.write(data)
                    msg = await next_message(r, stream)
                    assert msg is not None, "the registrar closed"
                    return msg

                challenge = await ask(_invite_bytes(_offer(phone_port), "digest-call"))
                assert challenge.status == 401
                nonce = sip.parse_digest(challenge.header("www-authenticate") or "")["nonce"]
                uri = "sip:moh@127.0.0.1"
                auth = sip.format_digest([
                    ("username", "alice"), ("realm", sip.REALM), ("nonce", nonce), ("uri", uri),
                    ("qop", "auth"), ("nc", "00000001"), ("cnonce", "c"),
                    ("response", sip.digest_response(username="alice", realm=sip.REALM, password="secret",
                                                     method="INVITE", uri=uri, nonce=nonce, nc="00000001",
                                                     cnonce="c", qop="auth"))],
                    unquoted=frozenset({"qop", "nc"}))
                ok = await ask(_invite_bytes(_offer(phone_port), "digest-call", auth=auth, cseq=2))
                assert ok.status == 200
                w.write(sip.build_message("ACK sip:moh@127.0.0.1 SIP/2.0", [
                    ("Via", "SIP/2.0/TCP 127.0.0.1:5;branch=z9hG4bK2"),
                    ("From", f"<sip:{DEVICE}@lab>;tag=1"), ("To", "<sip:moh@lab>;tag=lab"),
                    ("Call-ID", "digest-call"), ("CSeq", "2 ACK")]))
                await w.drain()
                _, source = await asyncio.wait_for(phone.got.get(), 5)
                assert source[1] == sdp.parse_sdp(ok.body).port  # from the attacker, posing as the resource
                w.close()
                return attacker.seen(DEVICE).intercepted
        finally:
            phone_t.close()
            attacker.close()
            media.close()

    assert asyncio.run(body()) >= 1
