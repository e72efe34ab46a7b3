"""The phone answers a call another phone places through the CallManager (spec §G.14, seed "Media
Encryption": "If the devices support SRTP, the system uses a SRTP connection. If at least one device does
not support SRTP, the system uses an RTP connection").

Steps:

1. The phone registers (:func:`phoneemu.phone.sip.register`) and keeps that connection: the CallManager
   sends calls for it there. ``ready()`` is called once it is registered.
2. It waits for an INVITE (at most ``wait`` seconds; another request is answered as while the phone
   waits for a response, :func:`phoneemu.protocols.sip.answer_request`: OPTIONS ``200``, another
   method ``405``/``481``, an unknown one ``501``, at most :data:`MAX_OTHER` of them). Its own §G.14
   offer rule (encrypted mode over TLS, a model with SRTP) and the offer decide the answer
   (:func:`phoneemu.phone.media_rules.decide_incoming`): ``RTP/SAVP`` with the offered tag and a
   master key of its own, or ``RTP/AVP``; an offer it cannot take (malformed, refused stream, no
   G.711) gets ``488``.
3. After the ACK it sends as many 20 ms tone packets as the INVITE's ``X-Phoneemu-Packets`` asks (ours,
   1..1000, default 10) to the offer's address and takes what comes from there, over SRTP each packet's
   tag verified (:mod:`phoneemu.phone.media_port`).
4. The BYE gets ``200`` with what it counted (``X-Phoneemu-Media``, ours); the verdict
   (:func:`~phoneemu.phone.media_rules.decide_media_received`) is logged with the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable
from pathlib import Path

from phoneemu.crypto import srtp
from phoneemu.errors import DecodeError, TransportError
from phoneemu.phone import media_rules
from phoneemu.phone.call import CallResult, CallSide
from phoneemu.phone.events import Decision, EventLog
from phoneemu.phone.media_port import MEDIA_WAIT, Received, RtpPort, send_tone
from phoneemu.phone.profile import PhoneProfile
from phoneemu.phone.sip import DigestCache, SipSession, register
from phoneemu.phone.store import TrustStore
from phoneemu.protocols import sdp, sip
from phoneemu.protocols.media import AVP, MEDIA_HEADER, PACKETS_HEADER, SAVP, packets_asked

__all__ = ["MAX_OTHER", "answer_call"]

MAX_OTHER = 16


async def answer_call(store: TrustStore, profile: PhoneProfile, mac: str, host: str | None, *, sip_port: int,
                      sips_port: int, events: EventLog, clock: Callable[[], int], timeout: float = 5.0,
                      wait: float = 30.0, keylog: str | Path | None = None, cache: DigestCache | None = None,
                      ready: Callable[[], None] | None = None, pace: float = 0.0) -> CallResult:
    """Register, wait for a call on that connection and answer it (module docstring)."""
    ended: list[CallResult] = []

    async def line(session: SipSession) -> None:
        if ready is not None:
            ready()
        ended.append(await _Answering(session, store=store, profile=profile, events=events, clock=clock,
                                      pace=pace).run(wait))

    reg = await register(store, profile, mac, host, sip_port=sip_port, sips_port=sips_port, events=events,
                         clock=clock, timeout=timeout, keylog=keylog, cache=cache, then=line)
    if not ended:
        if ready is not None:
            ready()
        return CallResult(rule=reg.rule, accepted=False, rules=reg.rules, registration=reg,
                          reason=f"not registered, no call can come: {reg.reason}")
    return dataclasses.replace(ended[0], rules=(*reg.rules, *ended[0].rules), registration=reg)


class _Answering(CallSide):
    """The called side of one call over a registered connection (module docstring, steps 2-4)."""

    async def _next_request(self, until: float) -> sip.SipMessage | None:
        """The next request on the connection before ``until`` (loop time); None at the deadline or when
        the connection ends. Responses are skipped."""
        loop = asyncio.get_running_loop()
        while True:
            msg = self.s.stream.next()
            if msg is not None:
                if msg.method is not None:
                    return msg
                continue
            left = until - loop.time()
            if left <= 0:
                return None
            try:
                chunk = await asyncio.wait_for(self.s.reader.read(4096), left)
            except TimeoutError:
                return None
            if not chunk:
                return None
            self.s.stream.feed(chunk)

    def _reply(self, msg: sip.SipMessage, status: int, reason: str,
               extra: list[tuple[str, str]] | None = None, body: bytes = b"") -> None:
        self.s.writer.write(sip.response_to(msg, status, reason, extra, to_tag=self.tag, body=body))

    async def run(self, wait: float) -> CallResult:
        if self.store.config is None:  # pragma: no cover - a registration needs a config
            return self._end(_refused("no accepted config"))
        own = self._log(media_rules.decide_media_offer(self.store.config.config, transport=self.s.transport,
                                                        profile=self.profile))
        loop = asyncio.get_running_loop()
        until = loop.time() + wait
        try:
            invite = None
            for _ in range(MAX_OTHER + 1):
                msg = await self._next_request(until)
                if msg is None or msg.method == "INVITE":
                    invite = msg
                    break
                _, reply = sip.answer_request(msg, to_tag=self.tag)  # OPTIONS 200, others 405/501/481
                if reply is not None:
                    self.s.writer.write(reply)
            if invite is None:
                return self._end(_refused(f"no call came within {wait:g}s"))
            return await self._answer(invite, own, until)
        except (TransportError, DecodeError, OSError) as exc:
            return self._end(_refused(f"the call's SIP exchange failed: {exc or type(exc).__name__}"))

    async def _answer(self, invite: sip.SipMessage, own: Decision, until: float) -> CallResult:
        named = invite.header("from") or "?"
        caller = "from " + named[named.find("<") + 1:named.find(">")] if "<" in named and ">" in named \
            else f"from {named}"
        caller = caller[:90]
        try:
            offer = sdp.parse_sdp(invite.body)
        except DecodeError as exc:
            self._reply(invite, 488, "Not Acceptable Here")
            return self._end(Decision(rule="G.14-answer-refused", accepted=False, file="", kind="media",
                                      reason=f"the offer does not parse: {exc}"), target=caller)
        verdict, chosen = media_rules.decide_incoming(offer, own=own, suites=self.profile.srtp_suites)
        if verdict.rule == "G.14-media-refused":
            self._reply(invite, 488, "Not Acceptable Here")
            return self._end(verdict, target=caller)
        if verdict is not own:
            self._log(verdict)
        offered = tuple(c.suite for c in offer.crypto)
        packets = packets_asked(invite.header(PACKETS_HEADER))
        local_host = self.s.writer.get_extra_info("sockname")[0]
        received = Received(enough=packets, source=(offer.address, offer.port))
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(lambda: RtpPort(received),
                                                                                 local_addr=(local_host, 0))
        try:
            send: srtp.SrtpContext | None = None
            crypto: tuple[sdp.Crypto, ...] = ()
            if chosen is not None:
                key, salt = srtp.make_master_key()
                send = srtp.SrtpContext(chosen.suite, key, salt)
                received.context = srtp.SrtpContext(chosen.suite, *srtp.parse_inline_key(chosen.key_params))
                mine = sdp.Crypto(tag=chosen.tag, suite=chosen.suite, key_params=srtp.inline_key(key, salt))
                crypto = (mine,)
            port = transport.get_extra_info("sockname")[1]
            body = sdp.build_sdp(sdp.AudioOffer(address=local_host, port=port, formats=(0,), crypto=crypto,
                                                profile=SAVP if crypto else AVP, session_id=port, version=1,
                                                origin_user=self.s.device))
            self._reply(invite, 200, "OK", [("Contact", f"<sip:{self.s.device}@{self.s.local}>"),
                                            ("Content-Type", "application/sdp")], body)
            ack = await self._next_request(until)
            if ack is None or ack.method != "ACK":
                return self._end(_refused("no ACK for the 200"), target=caller, offered=offered, status=200)
            sent = await send_tone(transport, send, (offer.address, offer.port), packets, pace=self.pace)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(received.done.wait(), MEDIA_WAIT)
            bye = await self._next_request(until)
            counts = (f"received={received.received} authenticated={received.authenticated} "
                      f"refused={received.refused}")
            if bye is not None and bye.method == "BYE":
                self._reply(bye, 200, "OK", [(MEDIA_HEADER, counts)])
        finally:
            transport.close()
        result = media_rules.decide_media_received(verdict, srtp_used=send is not None,
                                                   received=received.received,
                                                   authenticated=received.authenticated,
                                                   refused=received.refused, refusal=received.refusal)
        media = "none" if received.received == 0 else "srtp" if send is not None else "rtp"
        return self._end(result, target=caller, media=media, suite=chosen.suite if chosen else "",
                         offered=offered, status=200, sent=sent, received=received.received,
                         authenticated=received.authenticated, refused=received.refused,
                         refusal=received.refusal)


def _refused(reason: str) -> Decision:
    return Decision(rule="G.14-call-refused", accepted=False, reason=reason, file="", kind="media")
