"""An attacker on the path of the SIP line between the phones and the lab's CallManager (seed
"Authentication, Integrity, and Authorization": modification of call-processing signalling,
man-in-the-middle, identity theft, replay; spec §G.13, §G.14).

Ours (the spec has no attacker): a scenario's ``network: {tamper_signalling: true}`` and
``{replay_sip: true}`` turn it on for a lab cluster's registrar (:mod:`.sip_service`). Rules:

* **Clear signalling is rewritten** (``tamper``; SIP over TCP): the audio stream of the SDP offer of a
  call's INVITE and of the SDP answer of its ``200`` gets the attacker's own media address and port (a
  ``c=`` of the audio section's own; other media and attributes untouched) — two UDP ports, one facing
  the phone (posing as the far end, on the lab's address), one facing the far end (posing as the phone,
  on the phone's own address) — and the attacker relays the media both ways, counting the packets. A
  man in the middle neither end can see: the call works, its media goes through the attacker.
* **TLS signalling cannot be rewritten**: the attacker alters the TLS record that carries the call's
  answer on its way to the phone — the SDP address in it when the record is readable (authenticated
  mode, NULL-SHA: signed, not encrypted), one byte otherwise. The record's MAC no longer verifies: the
  phone's TLS refuses it and drops the connection (``G.14-signalling-tampered``): the modification is
  detected, the call fails.
* **Replay** (``replay``; digest authentication): a REGISTER a phone sent over TCP, once the registrar
  has answered it, is sent again, as the attacker captured it, on the attacker's own TCP connection to
  the registrar. The answer is recorded: ``refused`` (``401``: its nonce count is not above the last
  one, RFC 2617 §3.2.2), ``accepted`` (``200``: a device without digest authentication — the attacker
  now holds its registration). Over TLS nothing can be captured: no replay.
* What it relays (ours): a stream with a port (not 0: refused, RFC 3264 §6) at a unicast address (not
  ``0.0.0.0`` / ``::``, a multicast group or the broadcast address: the relay would listen on every
  interface or a group) that this host can bind, of the family of the relay's other side (the lab's
  address for an offer, the phone's for an answer: a relay cannot send from IPv4 to IPv6); any other
  offer or answer passes unchanged. One relay per Call-ID: an INVITE sent again with the same Call-ID
  before its call was answered (after a ``401`` challenge, RFC 3261 §22.2) gets a fresh relay, the old
  one closed; a final answer other than ``200`` (or a ``200`` without media the attacker relays) closes
  the call's relay at once. The relay forwards only what comes from the expected end (an address
  compared as an address, whatever its written form) and drops what its outgoing socket cannot take
  (more than :data:`MAX_BUFFERED` bytes waiting): a flood is never buffered.
  :meth:`SignallingAttacker.close` closes every relay (the lab stops).
* A replay's answer is its final response: provisional ``1xx`` ones are skipped; a request, garbage,
  nothing within ``io_timeout`` or no final response within :data:`MAX_ANSWER` bytes is ``none (why)``.
  One replay per device at a time; a replay promised (:meth:`SignallingAttacker.will_replay`) but never
  made (the phone's connection dropped first) is given up after three ``io_timeout``.
* What it did is kept per device (:meth:`SignallingAttacker.seen`) for the scenario checks
  (``media_intercepted``, ``sip_replay``). Bounded: at most :data:`MAX_RELAYS` relays at once (the
  oldest closed first), each closed after ``relay_timeout`` seconds; at most :data:`MAX_DEVICES`
  device records; a replay's answer read within ``io_timeout`` and :data:`MAX_ANSWER` bytes, its
  connection closed within ``io_timeout`` more (then reset).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from phoneemu.errors import DecodeError
from phoneemu.protocols import sdp, sip
from phoneemu.values import host_port

__all__ = ["MAX_ANSWER", "MAX_BUFFERED", "MAX_DEVICES", "MAX_RELAYS", "OnPathSeen", "SignallingAttacker",
           "alter_tls_record"]

_log = logging.getLogger("phoneemu.lab.on_path")

MAX_RELAYS = 256
MAX_DEVICES = 10_000
MAX_ANSWER = 65_536
#: bytes a relay's outgoing socket may hold unsent before what comes is dropped (a flood is not buffered)
MAX_BUFFERED = 65_536
_APPLICATION_DATA = 23  # TLS record content type (RFC 5246 §6.2.1)


@dataclass(frozen=True, slots=True)
class OnPathSeen:
    """What the attacker did to one device's last call and registration."""

    intercepted: int = 0  # media packets of its last call relayed through the attacker (both ways)
    tampered: str = ""  # what it changed of its signalling ("" nothing)
    replay: str = "none"  # its last REGISTER replayed: refused / accepted / none


def alter_tls_record(data: bytes) -> tuple[bytes, str]:
    """``data`` (TLS records) with its first non-empty application-data record altered, and how: the
    first address character after ``c=IN IP4 `` / ``c=IN IP6 `` when the record is readable (NULL
    cipher), else the middle byte of its payload flipped; unchanged ("") when it has no such record."""
    offset = 0
    while offset + 5 <= len(data):
        kind, length = data[offset], int.from_bytes(data[offset + 3:offset + 5], "big")
        start, end = offset + 5, min(offset + 5 + length, len(data))
        if kind == _APPLICATION_DATA and end > start:
            out = bytearray(data)
            found = max(data.find(b"c=IN IP4 ", start, end), data.find(b"c=IN IP6 ", start, end))
            if found >= 0 and found + 9 < end:
                at = found + 9
                out[at] = ord("9") if out[at] != ord("9") else ord("8")
                return bytes(out), f"the SDP address in the readable TLS record at offset {offset} rewritten"
            at = (start + end) // 2
            out[at] ^= 0x01
            return bytes(out), f"one byte of the encrypted TLS record at offset {offset} flipped"
        offset = start + length
    return data, ""


_Ip = ipaddress.IPv4Address | ipaddress.IPv6Address


def _ip(host: str) -> _Ip | None:
    """``host`` (an IP literal, as written or as a socket reports it) as an address; None otherwise."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _relayable(address: str, port: int, *, beside: str) -> bool:
    """Whether media at ``address``:``port`` is relayed (module rules): a port, a unicast address of the
    family of ``beside`` (the relay's other port's address; not checked when that is no IP literal)."""
    ip, other = _ip(address), _ip(beside)
    return (port != 0 and ip is not None and not ip.is_unspecified and not ip.is_multicast
            and ip != ipaddress.IPv4Address("255.255.255.255")
            and (other is None or other.version == ip.version))


class _Relay:
    """One call's media through the attacker: ``phone`` and ``far`` are the real ends (as written in the
    SDP: where to send), ``phone_end`` / ``far_end`` the same as addresses (what a source is compared to)."""

    def __init__(self, device: str, phone: tuple[str, int]) -> None:
        self.device = device
        self.phone = phone
        self.phone_end = (_ip(phone[0]), phone[1])
        self.far: tuple[str, int] | None = None
        self.far_end: tuple[_Ip | None, int] | None = None
        self.packets = 0
        self.facing_phone: asyncio.DatagramTransport | None = None  # poses as the far end
        self.facing_far: asyncio.DatagramTransport | None = None  # poses as the phone
        self.timer: asyncio.TimerHandle | None = None

    def close(self) -> None:
        for transport in (self.facing_phone, self.facing_far):
            if transport is not None:
                transport.close()
        if self.timer is not None:
            self.timer.cancel()


def _backlog(transport: asyncio.DatagramTransport) -> int:
    """Bytes ``transport`` holds unsent (asyncio's datagram transports buffer what would block)."""
    size = getattr(transport, "get_write_buffer_size", None)
    return int(size()) if size is not None else 0


class _RelaySide(asyncio.DatagramProtocol):
    """A relay's UDP port: what comes from the expected end goes on to the other one."""

    def __init__(self, relay: _Relay, *, facing_phone: bool) -> None:
        self.relay = relay
        self.facing_phone = facing_phone

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        r = self.relay
        if r.far is None or r.facing_far is None or r.facing_phone is None:
            return
        source = (_ip(str(addr[0])), int(addr[1]))
        if self.facing_phone and source == r.phone_end:
            out, to = r.facing_far, r.far
        elif not self.facing_phone and source == r.far_end:
            out, to = r.facing_phone, r.phone
        else:
            return
        if _backlog(out) > MAX_BUFFERED:  # its socket does not keep up: dropped, not buffered
            return
        out.sendto(data, to)
        r.packets += 1


def _rewritten(body: bytes, address: str, port: int) -> tuple[bytes, sdp.AudioOffer] | None:
    """The SDP ``body`` with the address and port of its (first) audio stream replaced, and the stream as
    it was; None when it is not an SDP the attacker can read. Only the audio section changes — its port,
    and a ``c=`` of its own (replaced, or added after the ``m=`` / ``i=`` lines; it overrides the session's,
    RFC 4566 §5.7) —: other media, attributes and the line ends stay as they came."""
    try:
        original = sdp.parse_sdp(body)
    except DecodeError:
        return None
    lines = body.split(b"\n")
    start = next((i for i, line in enumerate(lines) if line.startswith(b"m=audio ")), None)
    if start is None:  # pragma: no cover - parse_sdp found one
        return None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(b"m=")), len(lines))
    cr = b"\r" if lines[start].endswith(b"\r") else b""
    fields = lines[start].rstrip(b"\r").split(b" ")
    lines[start] = b" ".join([fields[0], str(port).encode(), *fields[2:]]) + cr
    c_line = f"c=IN {'IP6' if ':' in address else 'IP4'} {address}".encode() + cr
    own = next((i for i in range(start + 1, end) if lines[i].startswith(b"c=")), None)
    if own is not None:
        lines[own] = c_line
    else:
        at = start + 1 + (start + 1 < end and lines[start + 1].startswith(b"i="))
        lines.insert(at, c_line)
    out = b"\n".join(lines)
    try:
        sdp.parse_sdp(out)
    except DecodeError:
        return None
    return out, original


def _with_body(msg: sip.SipMessage, body: bytes) -> sip.SipMessage:
    headers = tuple((k, v) for k, v in msg.headers if k.lower() not in ("content-length", "l"))
    return dataclasses.replace(msg, headers=(*headers, ("Content-Length", str(len(body)))), body=body)


class SignallingAttacker:
    """The on-path attacker of one lab registrar (module rules); ``tamper`` / ``replay`` switch its two
    attacks (a scenario's ``network`` step)."""

    def __init__(self, *, io_timeout: float = 5.0, relay_timeout: float = 60.0,
                 on_log: Callable[[str, str], None] | None = None) -> None:
        self.tamper = False
        self.replay = False
        self.io_timeout = io_timeout
        self.relay_timeout = relay_timeout
        self.on_log = on_log
        self._relays: collections.OrderedDict[str, _Relay] = collections.OrderedDict()  # by Call-ID
        self._seen: collections.OrderedDict[str, OnPathSeen] = collections.OrderedDict()
        #: device -> (set once its replay is answered, when a replay never made is given up)
        self._replaying: dict[str, tuple[asyncio.Event, float]] = {}
        self._own: set[str] = set()  # HOST:PORT of the attacker's own connections (never replayed again)

    @property
    def active(self) -> bool:
        return self.tamper or self.replay

    # --- what it did ---------------------------------------------------------------------
    def seen(self, device: str) -> OnPathSeen:
        """What the attacker did to ``device`` (``SEP<MAC>``) since :meth:`forget`; its last call's
        intercepted packets are counted as they pass."""
        found = self._seen.get(device, OnPathSeen())
        relay = next((r for r in reversed(self._relays.values()) if r.device == device), None)
        return dataclasses.replace(found, intercepted=relay.packets) if relay is not None else found

    async def settled(self, device: str) -> OnPathSeen:
        """:meth:`seen`, once a replay of ``device``'s REGISTER under way has its answer (at most
        ``io_timeout`` seconds)."""
        pending = self._replaying.get(device)
        if pending is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pending[0].wait(), self.io_timeout)
        return self.seen(device)

    def forget(self, device: str) -> None:
        """Start ``device``'s record afresh (a scenario step about to run)."""
        self._seen.pop(device, None)
        for call_id in [c for c, r in self._relays.items() if r.device == device]:
            self._relays.pop(call_id).close()

    def _note(self, device: str, *, tampered: str | None = None, replay: str | None = None) -> None:
        before = self._seen.get(device, OnPathSeen())
        self._seen[device] = OnPathSeen(intercepted=before.intercepted,
                                        tampered=before.tampered if tampered is None else tampered,
                                        replay=before.replay if replay is None else replay)
        self._seen.move_to_end(device)
        while len(self._seen) > MAX_DEVICES:
            self._seen.popitem(last=False)
        detail = tampered if tampered is not None else f"REGISTER replayed: {replay}"
        _log.info("on-path attacker %s: %s", device, detail)
        if self.on_log is not None:
            self.on_log(device, detail)

    # --- clear signalling ----------------------------------------------------------------
    async def offer_in(self, msg: sip.SipMessage, *, device: str, lab_host: str) -> sip.SipMessage:
        """The INVITE ``msg`` came over TCP: its SDP offer now names the attacker's port facing the far
        end (on the phone's own address); unchanged when it carries no SDP the attacker reads."""
        call_id = msg.header("call-id") or ""
        if not self.tamper or msg.method != "INVITE" or not call_id:
            return msg
        before = self._relays.get(call_id)
        if before is not None and before.far is not None:  # an answered call's (re-)INVITE
            return msg
        try:
            offer = sdp.parse_sdp(msg.body)
        except DecodeError:
            return msg
        if not _relayable(offer.address, offer.port, beside=lab_host):
            return msg
        relay = _Relay(device, (offer.address, offer.port))
        loop = asyncio.get_running_loop()
        try:
            relay.facing_far, _ = await loop.create_datagram_endpoint(
                lambda: _RelaySide(relay, facing_phone=False), local_addr=(offer.address, 0))
            relay.facing_phone, _ = await loop.create_datagram_endpoint(
                lambda: _RelaySide(relay, facing_phone=True), local_addr=(lab_host, 0))
        except OSError as exc:
            relay.close()
            _log.info("on-path attacker: no relay port for %s: %s", device, exc)
            return msg
        changed = _rewritten(msg.body, offer.address, relay.facing_far.get_extra_info("sockname")[1])
        if changed is None:  # a c= line added past the SDP size limit
            relay.close()
            return msg
        self._keep(call_id, relay)
        return _with_body(msg, changed[0])

    def answer_out(self, request: sip.SipMessage, reply: bytes) -> bytes:
        """``reply`` (bytes on their way to the phone over TCP) to the INVITE ``request`` whose offer was
        rewritten: its SDP answer now names the attacker's port facing the phone."""
        call_id = request.header("call-id") or ""
        relay = self._relays.get(call_id)
        if relay is None or relay.facing_phone is None or relay.far is not None:
            return reply
        try:
            msg = sip.parse_message(reply)
        except DecodeError:
            return reply
        if msg.status is None or msg.status < 200:  # a provisional answer: the final one is still to come
            return reply
        host, port = relay.facing_phone.get_extra_info("sockname")[:2]
        changed = _rewritten(msg.body, str(host), int(port)) if msg.status == 200 else None
        if changed is None or not _relayable(changed[1].address, changed[1].port, beside=relay.phone[0]):
            self._drop(call_id, relay)  # refused, or no media the attacker relays: the call's relay goes
            return reply
        relay.far = (changed[1].address, changed[1].port)
        relay.far_end = (_ip(relay.far[0]), relay.far[1])
        self._note(relay.device, tampered="the call's media redirected through the attacker (SDP rewritten "
                   "over TCP)")
        return sip.message_bytes(_with_body(msg, changed[0]))

    def _keep(self, call_id: str, relay: _Relay) -> None:
        """``relay`` is ``call_id``'s: one it had before (its INVITE sent again, or sent twice at once) is
        closed; past :data:`MAX_RELAYS` the oldest is."""
        before = self._relays.pop(call_id, None)
        if before is not None and before is not relay:
            before.close()
        self._relays[call_id] = relay
        while len(self._relays) > MAX_RELAYS:
            self._relays.popitem(last=False)[1].close()
        relay.timer = asyncio.get_running_loop().call_later(self.relay_timeout, self._drop, call_id, relay)

    def _drop(self, call_id: str, relay: _Relay) -> None:
        if self._relays.get(call_id) is relay:
            del self._relays[call_id]
        relay.close()

    def close(self) -> None:
        """Close every relay (the lab stops); a replay under way ends on its own within its timeouts."""
        while self._relays:
            self._relays.popitem(last=False)[1].close()

    # --- TLS signalling ------------------------------------------------------------------
    def alter_answer(self, device: str) -> Callable[[bytes], bytes]:
        """What alters the TLS records of a call's answer on their way to ``device`` (module rules)."""
        def alter(data: bytes) -> bytes:
            out, how = alter_tls_record(data)
            if how:
                self._note(device, tampered=how)
            return out
        return alter

    # --- replay --------------------------------------------------------------------------
    def will_replay(self, msg: sip.SipMessage, *, device: str, peer: str) -> bool:
        """Whether the attacker replays the REGISTER ``msg`` that came from ``peer`` (``HOST:PORT``; not
        one of its own replays) — :meth:`replay_register` follows. Called before the phone has its
        answer, so that :meth:`settled` waits for the replay's."""
        if not self.replay or msg.method != "REGISTER" or peer in self._own:
            return False
        now = time.monotonic()
        for stale in [d for d, (_, until) in self._replaying.items() if until <= now]:
            self._replaying.pop(stale)[0].set()  # promised, never made: its phone's connection dropped first
        if device in self._replaying or len(self._replaying) >= MAX_RELAYS:
            return False  # one at a time per device; bounded
        self._replaying[device] = (asyncio.Event(), now + 3 * self.io_timeout)
        return True

    async def replay_register(self, msg: sip.SipMessage, *, device: str, registrar: tuple[str, int]) -> None:
        """Send the REGISTER ``msg`` a phone sent over TCP again, from the attacker's own connection to
        ``registrar``; its answer is recorded (module rules). :meth:`will_replay` said yes first."""
        try:
            await self._replay(msg, device=device, registrar=registrar)
        finally:
            done = self._replaying.pop(device, None)
            if done is not None:
                done[0].set()

    async def _replay(self, msg: sip.SipMessage, *, device: str, registrar: tuple[str, int]) -> None:
        outcome, mine = "none", ""
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(self.io_timeout):
                reader, writer = await asyncio.open_connection(*registrar)
                own = writer.get_extra_info("sockname")
                mine = host_port(own[0], own[1]) if own else ""
                self._own.add(mine)
                writer.write(sip.message_bytes(msg))
                await writer.drain()
                outcome = await self._answer_of(reader)
        except (OSError, TimeoutError, DecodeError) as exc:
            outcome = f"none ({str(exc)[:200] or type(exc).__name__})"
        finally:
            if writer is not None:
                writer.close()
                try:  # what it wrote may still wait for a registrar that does not read: bounded, then reset
                    await asyncio.wait_for(writer.wait_closed(), self.io_timeout)
                except (OSError, TimeoutError):
                    writer.transport.abort()
            self._own.discard(mine)
        self._note(device, replay=outcome)

    @staticmethod
    async def _answer_of(reader: asyncio.StreamReader) -> str:
        """The outcome of the registrar's final response (module rules); DecodeError for garbage."""
        stream, total = sip.SipStream(), 0
        while True:
            while (answer := stream.next()) is None:
                chunk = await reader.read(4096)
                total += len(chunk)
                if not chunk:
                    return "none (no answer)"
                if total > MAX_ANSWER:
                    return f"none (no final answer within {MAX_ANSWER} bytes)"
                stream.feed(chunk)
            if answer.status is None:
                return f"none (not an answer: a {answer.method} request)"
            if answer.status >= 200:
                break
        if answer.status == 200:
            return "accepted"
        return "refused" if answer.status in (401, 403, 407) else f"answered {answer.status}"
