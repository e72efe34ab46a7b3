"""The lab's media resources: calls to music on hold, the annunciator and IVR, with SRTP (spec §G.14).

A stand-in for CUCM's IP Voice Media Streaming application as a phone's call sees it (seed "AES 80-Bit
Authentication Support": "when a phone securely connects with IPVMS, precedence is given to the
AES_CM_128_HMAC_SHA1_80 crypto cipher ... if a phone does not support 80-bit or 32-bit authentication
tag, the negotiation occurs over RTP"). The registrar (:mod:`.sip_service`) hands it the INVITE, ACK and
BYE of a device it has authenticated. Rules:

* A call is addressed to ``sip:moh@…``, ``sip:annunciator@…`` or ``sip:ivr@…`` (ours: the lab has no
  directory numbers); another user is ``404``. The body must be an SDP offer (``application/sdp``,
  :mod:`phoneemu.protocols.sdp`; malformed: ``400``) for G.711 µ-law (payload type 0) whose media
  address is the address the INVITE came from (the lab sends media only to the phone that asked; else
  ``488``).
* The answer (§G.14 table, :func:`phoneemu.protocols.media.pick_offered`): an ``RTP/SAVP`` offer
  that came over **TLS** with a suite both support (in a usable line: no MKI, a key of 16 + 14 bytes) gets
  ``RTP/SAVP`` and one ``a=crypto`` line — the offered tag and suite, the resource's own fresh master
  key; any other offer gets ``RTP/AVP`` (the fall-back to RTP; over TCP the keys would travel in the
  clear, so the lab does not use them).
* Media (ours): on the ACK the resource plays, at once, as many 20 ms G.711 packets of a 1 kHz tone as
  the INVITE's ``X-Phoneemu-Packets`` asks (:func:`phoneemu.protocols.media.packets_asked`: 1..1000,
  default 10) from the port of its answer to the phone's; it counts the phone's packets (authenticated
  with the phone's key over SRTP). The ``200`` to the BYE reports them: ``X-Phoneemu-Media: received=N
  authenticated=N refused=N`` (ours).
* ``tamper()`` (a scenario's ``network: {tamper_media: true}``): every packet the resource plays has one
  payload byte flipped on its way, as an attacker on the path would — SRTP phones drop them all, RTP
  phones play them.
* Bounded: at most :data:`MAX_CALLS` calls at once (``503`` beyond; a call counts from its INVITE, while
  its RTP port opens too), each closed after ``call_timeout`` seconds; an ACK or BYE of no call is
  ignored / ``481``, and so is one from another connection than the INVITE's (ours: knowing a Call-ID
  is not enough to start or end a call's media; an ACK is never authenticated). An INVITE of a Call-ID
  whose port is still opening is ``491 Request Pending``; a later one (authenticated, from any
  connection: a phone that reconnected) replaces the earlier call, its port closed. No RTP port to be
  had (the system's limit): ``503``, logged.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from phoneemu.crypto import srtp
from phoneemu.errors import DecodeError
from phoneemu.protocols import rtp, sdp, sip
from phoneemu.protocols.media import (
    AVP,
    MEDIA_HEADER,
    PACKETS_HEADER,
    SAVP,
    SRTP_PREFERENCE,
    packets_asked,
    pick_offered,
)

__all__ = ["MAX_CALLS", "RESOURCES", "MediaResources"]

_log = logging.getLogger("phoneemu.lab.media")

#: the lab's media resources, by the user part of the request URI (ours)
RESOURCES = {"moh": "music on hold", "annunciator": "annunciator", "ivr": "IVR"}
MAX_CALLS = 256
#: seconds a BYE's answer waits for the phone's packets still on their way (ours)
BYE_WAIT = 1.0
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 415: "Unsupported Media Type",
            481: "Call/Transaction Does Not Exist", 488: "Not Acceptable Here", 491: "Request Pending",
            503: "Service Unavailable"}


@dataclass(kw_only=True, slots=True)
class _Call:
    """One call's media: where it goes, its keys, what came from the phone."""

    resource: str
    device: str
    phone: tuple[str, int]
    packets: int
    send: srtp.SrtpContext | None
    receive: srtp.SrtpContext | None
    origin: object = None  # the connection its INVITE came on
    transport: asyncio.DatagramTransport | None = None
    received: int = 0
    authenticated: int = 0
    refused: int = 0
    played: bool = False
    timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    def report(self) -> str:
        return f"received={self.received} authenticated={self.authenticated} refused={self.refused}"


class _Media(asyncio.DatagramProtocol):
    """The resource's RTP port of one call: counts what the phone sends (nothing else is kept)."""

    def __init__(self, call: _Call) -> None:
        self.call = call

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        call = self.call
        if (addr[0], addr[1]) != call.phone:
            return  # not the phone of this call
        call.received += 1
        try:
            if call.receive is not None:
                call.receive.unprotect(data)
            else:
                rtp.parse_rtp(data)
            call.authenticated += call.receive is not None
        except DecodeError:
            call.refused += 1


def _same_host(a: str, b: str) -> bool:
    try:
        return ipaddress.ip_address(a) == ipaddress.ip_address(b)
    except ValueError:
        return False


class MediaResources:
    """Answers the calls the registrar hands over (module rules). Each call's RTP port listens on the
    address the INVITE came to; ``tamper()`` says whether the played packets are tampered with."""

    def __init__(self, *, suites: tuple[str, ...] = SRTP_PREFERENCE, call_timeout: float = 30.0,
                 on_log: Callable[[str, str, str], None] | None = None,
                 tamper: Callable[[], bool] | None = None) -> None:
        self.suites = suites
        self.call_timeout = call_timeout
        self.on_log = on_log
        self.tamper = tamper if tamper is not None else (lambda: False)
        self._calls: dict[str, _Call] = {}

    def _log(self, device: str, outcome: str, detail: str) -> None:
        _log.info("media %s: %s %s", device, outcome, detail)
        if self.on_log is not None:
            self.on_log(device, outcome, detail)

    async def invite(self, msg: sip.SipMessage, *, peer_host: str, local_host: str, over_tls: bool,
                     device: str, origin: object = None) -> bytes:
        """The response to an authenticated INVITE from ``peer_host`` that came to ``local_host`` over
        connection ``origin``."""
        user = sip.request_user(msg).lower()
        if user not in RESOURCES:
            self._log(device, "not-found", f"no media resource {user[:40]!r} (moh, annunciator, ivr)")
            return _response(msg, 404)
        if (msg.header("content-type") or "").split(";")[0].strip().lower() != "application/sdp":
            return _response(msg, 415, [("Accept", "application/sdp")])
        try:
            offer = sdp.parse_sdp(msg.body)
        except DecodeError as exc:
            self._log(device, "malformed", f"SDP offer: {exc}")
            return _response(msg, 400, [("Warning", f'399 phoneemu "{_quoted(str(exc))}"')])
        problem = self._offer_problem(offer, peer_host)
        if problem is not None:
            self._log(device, "not-acceptable", problem)
            return _response(msg, 488, [("Warning", f'304 phoneemu "{_quoted(problem)}"')])
        call_id = msg.header("call-id") or ""
        earlier = self._calls.get(call_id)
        if earlier is not None and earlier.transport is None:
            self._log(device, "pending", "an INVITE of this Call-ID is still being answered")
            return _response(msg, 491)
        if len(self._calls) >= MAX_CALLS and earlier is None:
            self._log(device, "busy", f"{MAX_CALLS} calls already")
            return _response(msg, 503)
        packets = packets_asked(msg.header(PACKETS_HEADER))
        answer, call = self._answer(offer, over_tls=over_tls, resource=user, device=device, packets=packets,
                                    host=local_host)
        call.origin = origin
        self._drop(call_id)
        self._calls[call_id] = call  # counted, and this Call-ID taken, before the await (module rules)
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(lambda: _Media(call),
                                                               local_addr=(local_host, 0))
        except OSError as exc:
            self._calls.pop(call_id, None)
            self._log(device, "no-port", f"no RTP port on {local_host}: {exc}")
            return _response(msg, 503)
        if self._calls.get(call_id) is not call:  # ended meanwhile (the lab stopping)
            transport.close()
            return _response(msg, 503)
        call.transport = transport
        port = transport.get_extra_info("sockname")[1]
        call.timer = loop.call_later(self.call_timeout, self._drop, call_id)
        body = sdp.build_sdp(sdp.AudioOffer(address=local_host, port=port, profile=answer.profile,
                                            formats=(0,), crypto=answer.crypto, session_id=port, version=1,
                                            origin_user=user))
        how = f"SRTP {answer.crypto[0].suite}" if answer.crypto else "RTP"
        self._log(device, "answered", f"{RESOURCES[user]}: {how}")
        contact = f"<sip:{user}@{local_host}>" if ":" not in local_host else f"<sip:{user}@[{local_host}]>"
        return _response(msg, 200, [("Contact", contact), ("Content-Type", "application/sdp")], body)

    @staticmethod
    def _offer_problem(offer: sdp.AudioOffer, peer_host: str) -> str | None:
        if offer.port == 0:
            return "the offer's audio stream is refused already (port 0)"
        if 0 not in offer.formats:
            return f"no G.711 µ-law (payload type 0) among the offered formats {list(offer.formats)[:8]}"
        if not _same_host(offer.address, peer_host):
            return (f"media address {offer.address} is not the address the INVITE came from ({peer_host}): "
                    "the lab sends media only to the phone that asked")
        return None

    def _answer(self, offer: sdp.AudioOffer, *, over_tls: bool, resource: str, device: str,
                packets: int, host: str) -> tuple[sdp.AudioOffer, _Call]:
        """The answer's profile and crypto, and the call with its keys (module rules, §G.14)."""
        phone = (offer.address, offer.port)
        chosen = pick_offered(offer.crypto, self.suites) if offer.profile == SAVP and over_tls else None
        if chosen is not None:
            key, salt = srtp.make_master_key()
            crypto = sdp.Crypto(tag=chosen.tag, suite=chosen.suite, key_params=srtp.inline_key(key, salt))
            call = _Call(resource=resource, device=device, phone=phone, packets=packets,
                         send=srtp.SrtpContext(chosen.suite, key, salt),
                         receive=srtp.SrtpContext(chosen.suite, *srtp.parse_inline_key(chosen.key_params)))
            return sdp.AudioOffer(address=host, port=0, profile=SAVP, formats=(0,), crypto=(crypto,)), call
        call = _Call(resource=resource, device=device, phone=phone, packets=packets, send=None, receive=None)
        return sdp.AudioOffer(address=host, port=0, profile=AVP, formats=(0,)), call

    def ack(self, msg: sip.SipMessage, origin: object = None) -> None:
        """The ACK of an answered call over its INVITE's connection ``origin``: play its packets once
        (module rules, "Media")."""
        call = self._calls.get(msg.header("call-id") or "")
        if call is None or call.played or call.transport is None or call.origin is not origin:
            return
        call.played = True
        tampered = self.tamper()
        for packet in rtp.tone_packets(call.packets):
            wire = call.send.protect(packet) if call.send is not None else packet
            if tampered:  # an attacker on the path: one payload byte flipped
                wire = wire[:12] + bytes([wire[12] ^ 0x5A]) + wire[13:]
            call.transport.sendto(wire, call.phone)
        self._log(call.device, "played", f"{call.packets} packet(s) of {RESOURCES[call.resource]}"
                  f"{' (tampered on the way)' if tampered else ''}")

    async def bye(self, msg: sip.SipMessage, origin: object = None) -> bytes:
        """The 200 to a BYE, with what came from the phone (``481`` for no such call). The BYE comes over
        TCP, the media over UDP: the phone's last packets may still wait in the socket, so the count waits
        for as many as the call asked the resource to play (the phone sends as many), at most
        :data:`BYE_WAIT` seconds."""
        call_id = msg.header("call-id") or ""
        call = self._calls.get(call_id)
        if call is None or call.transport is None or call.origin is not origin:
            return _response(msg, 481)
        loop = asyncio.get_running_loop()
        until = loop.time() + BYE_WAIT
        while call.received < call.packets and loop.time() < until:
            await asyncio.sleep(0.005)
        self._drop(call_id)
        self._log(call.device, "ended", call.report())
        return _response(msg, 200, [(MEDIA_HEADER, call.report())])

    def _drop(self, call_id: str) -> None:
        call = self._calls.pop(call_id, None)
        if call is None:
            return
        if call.timer is not None:
            call.timer.cancel()
        if call.transport is not None:
            call.transport.close()

    def close(self) -> None:
        """End every call (the lab stops)."""
        for call_id in list(self._calls):
            self._drop(call_id)


def _quoted(text: str) -> str:
    """``text`` fit for a quoted Warning text (no quotes, backslashes or control characters; 200 chars)."""
    return "".join(c for c in text if c.isprintable() and c not in '"\\')[:200]


def _response(msg: sip.SipMessage, status: int, extra: list[tuple[str, str]] | None = None,
              body: bytes = b"") -> bytes:
    """A response to ``msg`` (:func:`phoneemu.protocols.sip.response_to`) with ``body``."""
    return sip.response_to(msg, status, _REASONS[status], extra, to_tag="lab", body=body)
