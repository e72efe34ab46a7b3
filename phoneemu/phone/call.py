"""The phone places a call and checks its media: SDP offer/answer with SDES keys, then RTP or SRTP over
UDP (spec §G.14, seed "Media Encryption"; RFC 3261, RFC 3264, RFC 4568, RFC 3711).

Steps:

1. The phone registers (:func:`phoneemu.phone.sip.register`: §G.9 transport, §G.5 registrar certificate,
   §G.13 digest); a registration that fails ends the call before it starts, with the registration's rule.
2. Over the same connection it decides its offer (:func:`phoneemu.phone.media_rules.decide_media_offer`):
   SRTP only in encrypted mode over TLS — one ``a=crypto`` line per suite of its model, each with a
   fresh master key the phone generated itself (SIP phones generate their own keys, seed); else RTP.
3. ``INVITE sip:<target>@<registrar>`` with the SDP offer; a digest challenge is answered as for the
   REGISTER (the last challenge answered at once, RFC 2617 nonce count). A final status other than
   ``200``: ``G.14-call-refused`` — a 401 whose digest challenge does not parse too, its reason naming
   the field and offset (ours, as the REGISTER's, :mod:`phoneemu.phone.sip`: the far end answered, so
   it is a refusal, not a failed exchange; to the BYE it is noted and the call's verdict stands, as a
   BYE with no answer in time, one that does not parse or a closed connection); a TLS
   record from the CallManager that fails its integrity check (an attacker on the path altered it):
   ``G.14-signalling-tampered``, the connection dropped. The ``200``'s
   SDP answer is judged (:func:`~phoneemu.phone.media_rules.decide_media_answer`) and ACKed; an answer
   the phone refuses ends the call (BYE). An answer whose media address is multicast (SDP allows it, with
   a TTL) is refused too (``G.14-answer-refused``; ours: the phone offered a unicast stream, RFC 3264
   §6.2 answers multicast only to multicast, and it sends no media to a group). Requests the CallManager
   sends meanwhile (OPTIONS...) are answered, never taken for the INVITE's answer
   (:func:`phoneemu.phone.sip.exchange`).
4. Media: from a UDP port of the phone's own address the phone sends ``packets`` 20 ms G.711 packets to
   the answer's address and port (SRTP-protected with its own key, or plain RTP), and takes what comes
   from there — over SRTP a packet counts only when its authentication tag verifies (RFC 3711); it stops
   once ``packets`` packets came or ``media_wait`` seconds passed. Ours: the far end is asked to play as
   many (``X-Phoneemu-Packets``) and reports what it received in its 200 to the BYE (``X-Phoneemu-Media``,
   :mod:`phoneemu.lab.media_service`).
5. BYE; the verdict (:func:`~phoneemu.phone.media_rules.decide_media_received`) is logged with the others.
   A BYE refused or failed (even by a TLS record altered) is noted (``sip`` event), the verdict stands.

Bounded: at most :data:`MAX_CALL_PACKETS` packets each way, datagrams from another address ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import secrets
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from phoneemu.crypto import srtp
from phoneemu.errors import DecodeError, EncodeError, TransportError
from phoneemu.phone import media_rules
from phoneemu.phone.events import Decision, EventLog
from phoneemu.phone.media_port import MEDIA_WAIT, Received, RtpPort, send_tone
from phoneemu.phone.profile import PhoneProfile
from phoneemu.phone.sip import DigestCache, SipResult, SipSession, answer_challenge, exchange, register
from phoneemu.phone.store import TrustStore
from phoneemu.protocols import sdp, sip
from phoneemu.protocols.media import AVP, MEDIA_HEADER, PACKETS_HEADER, SAVP

__all__ = ["MAX_CALL_PACKETS", "CallResult", "CallSide", "place_call"]

MAX_CALL_PACKETS = 1000
#: answers after which the phone ends the call at once (no media)
_ENDS_CALL = ("G.14-answer-refused", "G.14-media-refused")


@dataclass(frozen=True, kw_only=True, slots=True)
class CallResult:
    """How a call ended: the deciding rule and why, the media it carried and what was counted."""

    rule: str
    accepted: bool
    reason: str
    media: str = "none"  # "srtp" | "rtp" | "none" (no media flowed)
    suite: str = ""  # the SRTP suite used
    offered: tuple[str, ...] = ()  # the suites the phone offered (none: RTP offered)
    target: str = ""
    status: int | None = None  # the INVITE's final status
    sent: int = 0
    received: int = 0  # packets from the far end's address
    authenticated: int = 0  # of those, SRTP packets whose tag verified
    refused: int = 0  # of those, packets dropped (tag, replay, malformed)
    refusal: str = ""  # why the first one was dropped
    far_end: str = ""  # what the far end counted of the phone's packets (ours: X-Phoneemu-Media)
    rules: tuple[str, ...] = ()  # every rule applied: the registration's, then the call's
    registration: SipResult | None = None

    @property
    def media_flowed(self) -> bool:
        """Media came from the far end, readable (over SRTP: authenticated): the call did its job."""
        return self.rule not in media_rules.NO_MEDIA and self.registration is not None and \
            self.registration.registered


async def place_call(store: TrustStore, profile: PhoneProfile, mac: str, host: str | None, *, target: str,
                     sip_port: int, sips_port: int, events: EventLog, clock: Callable[[], int],
                     timeout: float = 5.0, packets: int = 10, keylog: str | Path | None = None,
                     cache: DigestCache | None = None, pace: float = 0.0) -> CallResult:
    """Register, call ``target`` (``moh``, ``annunciator``, ``ivr`` on the lab) and exchange ``packets``
    media packets each way (module docstring); every decision is logged."""
    if not 1 <= packets <= MAX_CALL_PACKETS:
        raise EncodeError(f"packets {packets} outside 1..{MAX_CALL_PACKETS}", path="packets")
    ended: list[CallResult] = []

    async def call(session: SipSession) -> None:
        ended.append(await _Call(session, store=store, profile=profile, target=target, packets=packets,
                                 events=events, clock=clock, pace=pace).run())

    reg = await register(store, profile, mac, host, sip_port=sip_port, sips_port=sips_port, events=events,
                         clock=clock, timeout=timeout, keylog=keylog, cache=cache, then=call)
    if not ended:
        return CallResult(rule=reg.rule, accepted=False, target=target, rules=reg.rules, registration=reg,
                          reason=f"not registered, no call: {reg.reason}")
    return dataclasses.replace(ended[0], rules=(*reg.rules, *ended[0].rules), registration=reg)


def _multicast_answer(answer: sdp.AudioOffer) -> Decision:
    """An answer naming a multicast media address to the phone's unicast offer: refused, no media sent
    there (ours; RFC 3264 §6.2 has a multicast answer only to a multicast offer)."""
    scope = f", TTL {answer.ttl}" if answer.ttl is not None else ""
    scope += f", {answer.address_count} addresses" if answer.address_count != 1 else ""
    return Decision(rule="G.14-answer-refused", accepted=False, file="", kind="media",
                    reason=f"the answer's media address {answer.address} is multicast{scope}: the phone "
                           "offered a unicast stream and sends no media to a group")


def _refused(reason: str) -> Decision:
    return Decision(rule="G.14-call-refused", accepted=False, reason=reason, file="", kind="media")


#: OpenSSL's reasons for a record whose MAC or AEAD tag does not verify (RFC 5246 §7.2.2 bad_record_mac)
_RECORD_ALTERED = ("BAD_RECORD_MAC", "DECRYPTION_FAILED")


def _exchange_failed(exc: BaseException) -> Decision:
    """The call's SIP exchange failed: ``G.14-signalling-tampered`` when a TLS record from the CallManager
    did not verify (altered on the way: authenticated signalling detects it, seed "Authentication,
    Integrity, and Authorization"; the connection is dropped), else ``G.14-call-refused``."""
    if isinstance(exc, ssl.SSLError) and any(r in str(exc).upper() for r in _RECORD_ALTERED):
        return Decision(rule="G.14-signalling-tampered", accepted=False, file="", kind="media",
                        reason=f"a TLS record from the CallManager failed its integrity check"
                               f" ({getattr(exc, 'reason', None) or exc}):"
                               " altered on the way; the phone drops the connection and the call")
    return _refused(f"the call's SIP exchange failed: {exc or type(exc).__name__}")


class CallSide:
    """One side of a call over a registered connection (the calling phone's, or the called one's,
    :mod:`phoneemu.phone.answer`): its decisions logged and collected, its dialog tag."""

    def __init__(self, session: SipSession, *, store: TrustStore, profile: PhoneProfile, events: EventLog,
                 clock: Callable[[], int], target: str = "", pace: float = 0.0) -> None:
        self.s = session
        self.pace = pace  # seconds between the media packets it sends (0: at once)
        self.store = store
        self.profile = profile
        self.events = events
        self.clock = clock
        self.target = target
        self.tag = secrets.token_hex(4)
        self.rules: list[str] = []

    def _log(self, d: Decision) -> Decision:
        self.events.record(d, time=self.clock(), phone=self.s.mac)
        self.rules.append(d.rule)
        return d

    def _end(self, d: Decision, **kw: object) -> CallResult:
        """The call's result, ``d`` its deciding rule (logged); ``kw`` the other fields."""
        self._log(d)
        kw.setdefault("target", self.target)
        return CallResult(rule=d.rule, accepted=d.accepted, reason=d.reason, rules=tuple(self.rules),
                          **kw)  # type: ignore[arg-type]


class _Call(CallSide):
    """One call over a registered connection (module docstring, steps 2-5)."""

    def __init__(self, session: SipSession, *, store: TrustStore, profile: PhoneProfile, target: str,
                 packets: int, events: EventLog, clock: Callable[[], int], pace: float = 0.0) -> None:
        super().__init__(session, store=store, profile=profile, events=events, clock=clock, target=target,
                         pace=pace)
        self.packets = packets
        self.uri = f"sip:{target}@[{session.host}]" if ":" in session.host else f"sip:{target}@{session.host}"
        self.call_id = f"{secrets.token_hex(8)}@{session.device}"
        self.cseq = 0
        self.to = f"<{self.uri}>"

    def _request(self, method: str, body: bytes = b"", *, cseq: int | None = None,
                 authorize: bool = True, branch: str | None = None, to: str | None = None) -> bytes:
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        aor = self.s.host if ":" not in self.s.host else f"[{self.s.host}]"
        headers = [
            ("Via", f"SIP/2.0/{self.s.transport.upper()} {self.s.local};branch={branch or self._branch()}"),
            ("Max-Forwards", "70"), ("From", f"<sip:{self.s.user}@{aor}>;tag={self.tag}"),
            ("To", to or self.to),
            ("Call-ID", self.call_id), ("CSeq", f"{cseq} {method}"),
            ("Contact", f"<sip:{self.s.device}@{self.s.local};transport={self.s.transport}>;"
                        f'+sip.instance="<urn:uuid:00000000-0000-0000-0000-{self.s.mac}>"'),
            ("User-Agent", "phoneemu"),
        ]
        if method == "INVITE":
            headers += [("Content-Type", "application/sdp"), (PACKETS_HEADER, str(self.packets))]
        if authorize and self.s.creds is not None and self.s.cache.challenge is not None:
            headers.append(("Authorization", answer_challenge(self.s.cache, self.s.cache.challenge,
                                                              self.s.creds, method=method, uri=self.uri)))
        return sip.build_message(f"{method} {self.uri} SIP/2.0", headers, body)

    @staticmethod
    def _branch() -> str:
        return f"z9hG4bK{secrets.token_hex(8)}"

    async def _transaction(self, method: str, body: bytes = b"") -> tuple[sip.SipMessage, str]:
        """``method`` until it is not challenged (one answer to a fresh challenge, RFC 2617): the final
        response and, when it is a 401 whose digest challenge does not parse, that parse error (field,
        offset) for the refusal's reason, else "". Ours, as the REGISTER's (spec §G.13 is silent): the far
        end answered, so it is a refusal, not a failed exchange."""
        for attempt in range(2):
            branch = self._branch()
            resp = await exchange(self.s.reader, self.s.writer, self._request(method, body, branch=branch),
                                  timeout=self.s.timeout, stream=self.s.stream)
            if method == "INVITE" and resp.status is not None and resp.status >= 300:
                self._ack(resp, branch=branch, dialog=False)  # a non-2xx is ACKed too (RFC 3261 §17.1.1.3)
            if resp.status != 401 or self.s.creds is None or attempt == 1:
                return resp, ""
            try:
                offered = sip.digest_challenges(resp)
            except DecodeError as exc:
                return resp, f"its digest challenge does not parse ({exc})"
            challenge = sip.pick_challenge(offered)  # of several, the MD5 one
            if challenge is None:  # none the phone can answer (SHA-256 only, Basic): the 401 is the answer
                return resp, ""
            self.s.cache.challenge, self.s.cache.nc = challenge, 0
        return resp, ""  # pragma: no cover - the loop returns

    def _answered(self, method: str, resp: sip.SipMessage, why: str) -> str:
        """``INVITE moh: 401 Unauthorized[: why]``: what ``method``'s final response said."""
        said = f"{method} {self.target}: {resp.status} {resp.reason}".rstrip()
        return f"{said}: {why}" if why else said

    def _ack(self, resp: sip.SipMessage, *, branch: str | None = None, dialog: bool = True) -> None:
        """ACK ``resp``, with its To (tag); a 2xx's To is the dialog's from then on (its remote tag, RFC 3261
        §12.1.2) — a non-2xx's is not: the INVITE sent again after a 401 is outside any dialog, no To tag
        (§8.1.1.2)."""
        to = resp.header("to") or self.to
        if dialog:
            self.to = to
        self.s.writer.write(self._request("ACK", cseq=self.cseq, authorize=False, branch=branch, to=to))

    async def run(self) -> CallResult:
        if self.store.config is None:  # pragma: no cover - a registration needs a config
            return self._end(_refused("no accepted config"))
        cfg = self.store.config.config
        offer_d = self._log(media_rules.decide_media_offer(cfg, transport=self.s.transport,
                                                           profile=self.profile))
        loop = asyncio.get_running_loop()
        received = Received(enough=self.packets)
        local_host = self.s.writer.get_extra_info("sockname")[0]
        try:
            transport, _ = await loop.create_datagram_endpoint(lambda: RtpPort(received),
                                                               local_addr=(local_host, 0))
        except OSError as exc:
            return self._end(_refused(f"no RTP port on {local_host}: {exc}"))
        try:
            return await self._converse(offer_d, transport, received, local_host)
        except (TransportError, DecodeError, OSError, TimeoutError) as exc:
            return self._end(_exchange_failed(exc))
        finally:
            transport.close()

    async def _converse(self, offer_d: Decision, transport: asyncio.DatagramTransport, received: Received,
                        local_host: str) -> CallResult:
        keys: dict[int, tuple[str, bytes, bytes]] = {}
        crypto: list[sdp.Crypto] = []
        if offer_d.accepted:
            for tag, suite in enumerate(self.profile.srtp_suites, 1):
                key, salt = srtp.make_master_key()
                keys[tag] = (suite, key, salt)
                crypto.append(sdp.Crypto(tag=tag, suite=suite, key_params=srtp.inline_key(key, salt)))
        offered = tuple(c.suite for c in crypto)
        port = transport.get_extra_info("sockname")[1]
        body = sdp.build_sdp(sdp.AudioOffer(address=local_host, port=port, profile=SAVP if crypto else AVP,
                                            formats=(0,), crypto=tuple(crypto), session_id=port, version=1,
                                            origin_user=self.s.device))
        resp, why = await self._transaction("INVITE", body)
        if resp.status != 200:
            return self._end(_refused(self._answered("INVITE", resp, why)), offered=offered,
                             status=resp.status)
        answer: sdp.AudioOffer | None = None
        try:
            answer = sdp.parse_sdp(resp.body)
        except DecodeError as exc:
            answer_d: Decision = Decision(rule="G.14-answer-refused", accepted=False, file="", kind="media",
                                          reason=f"the SDP answer does not parse: {exc}")
            chosen = None
        else:
            answer_d, chosen = media_rules.decide_media_answer(tuple(crypto), answer, offer_rule=offer_d)
            if answer_d.rule not in _ENDS_CALL and ipaddress.ip_address(answer.address).is_multicast:
                answer_d, chosen = _multicast_answer(answer), None
        if answer is None or answer_d.rule in _ENDS_CALL:
            self._ack(resp)
            await self._bye()
            return self._end(answer_d, offered=offered, status=200)
        send, srtp_suite = None, ""
        if chosen is not None:  # the keys are ready before the ACK: the far end plays on it
            suite, key, salt = keys[chosen.tag]
            send, srtp_suite = srtp.SrtpContext(suite, key, salt), suite
            received.context = srtp.SrtpContext(suite, *srtp.parse_inline_key(chosen.key_params))
        received.source = (answer.address, answer.port)
        self._ack(resp)
        if answer_d is not offer_d:
            self._log(answer_d)
        sent = await send_tone(transport, send, (answer.address, answer.port), self.packets, pace=self.pace)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(received.done.wait(), MEDIA_WAIT)
        far_end = await self._bye()
        verdict = media_rules.decide_media_received(answer_d, srtp_used=send is not None,
                                                    received=received.received,
                                                    authenticated=received.authenticated,
                                                    refused=received.refused, refusal=received.refusal)
        media = "none" if received.received == 0 else "srtp" if send is not None else "rtp"
        return self._end(verdict, media=media, suite=srtp_suite, offered=offered, status=200, sent=sent,
                         received=received.received, authenticated=received.authenticated,
                         refused=received.refused, refusal=received.refusal, far_end=far_end)

    async def _bye(self) -> str:
        """BYE; what the far end reported of the phone's media ("" when it said nothing). A BYE refused
        (a 401 whose challenge does not parse...) or failed (no answer in time, one that does not parse,
        the connection closed, a TLS record altered) leaves the call's verdict as it was — the call was
        made and its media judged — and is noted in the event log (``sip``; ours)."""
        try:
            resp, why = await self._transaction("BYE")
        except (TransportError, DecodeError, OSError, TimeoutError) as exc:
            self._note_bye(f"BYE {self.target}: {_exchange_failed(exc).reason}")
            return ""
        if resp.status == 200:
            return (resp.header(MEDIA_HEADER) or "")[:200]
        self._note_bye(self._answered("BYE", resp, why))
        return ""

    def _note_bye(self, detail: str) -> None:
        self.events.note(time=self.clock(), phone=self.s.mac, kind="sip", detail=detail)
