"""The lab's CallManager between two phones: a call from one registered phone to another, its SDES keys
passed on only where every hop is encrypted (spec §G.14, seed "Media Encryption").

CUCM is a back-to-back user agent: it takes the caller's INVITE and makes its own to the called phone,
over the connection that phone registered on. Rules (the relaying itself is ours; the SRTP rule is the
seed's):

* A phone is reachable while the connection it registered on is open (``line_up`` / ``line_down``);
  a call to ``sip:SEP<MAC>@…`` of a phone not reachable is ``480 Temporarily Unavailable``.
* The caller's SDP offer goes on to the called phone unchanged when **both** legs are TLS; otherwise
  its ``a=crypto`` lines are taken out and its profile made ``RTP/AVP`` ("SRTP is used only if every
  device on the hop supports it, otherwise RTP": SDES keys never cross a TCP leg). The called phone's
  answer comes back the same way.
* The called phone's final response is relayed to the caller (its body and ``X-Phoneemu-Media`` too); a
  final response other than 2xx is ACKed on the called phone's leg (RFC 3261 §17.1.1.3); none within
  ``answer_timeout`` seconds, or its connection closing first: ``408 Request Timeout``. The caller's
  ACK and BYE go on to the called phone; the BYE's ``200`` comes back.
  They must come over the connection the INVITE came on (ours: a phone sends a call's requests over
  the connection it registered on): an ACK from another connection is dropped and logged, a BYE is
  answered ``481`` — knowing a Call-ID is not enough to make the lab write to a phone.
* Bounded: at most :data:`MAX_RELAYED` calls at once (``503`` beyond), each forgotten after its BYE or
  ``call_timeout`` seconds; responses no call waits for are dropped; a called phone that does not read
  what the lab writes to it has at most :data:`MAX_UNSENT` bytes queued for it — past that the lab
  writes nothing more to it (an ACK is dropped, a request answered ``408``), logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from phoneemu.errors import DecodeError
from phoneemu.protocols import sdp, sip
from phoneemu.protocols.media import AVP

__all__ = ["MAX_RELAYED", "MAX_UNSENT", "CallRelay"]

_log = logging.getLogger("phoneemu.lab.relay")
MAX_RELAYED = 256
#: bytes the lab queues for a called phone that does not read (module rules; a SIP message is at most
#: MAX_HEAD + MAX_BODY = 12 KiB)
MAX_UNSENT = 64 * 1024
_REASONS = {400: "Bad Request", 408: "Request Timeout", 480: "Temporarily Unavailable",
            503: "Service Unavailable"}
_RELAYED_HEADERS = ("Content-Type", "X-Phoneemu-Packets", "X-Phoneemu-Media")


@dataclass(frozen=True, slots=True)
class _Line:
    """A registered phone's connection: where requests to it go."""

    writer: asyncio.StreamWriter
    over_tls: bool
    local: str  # the lab's end of it, HOST:PORT (the Via of what the lab sends there)


@dataclass(slots=True)
class _Relayed:
    """A call relayed: the called phone's line, the caller's device and the connection its INVITE came on."""

    callee: _Line
    device: str
    caller: object
    timer: asyncio.TimerHandle | None = None


def _keys_out(body: bytes) -> bytes:
    """An SDP without its ``a=crypto`` lines, as ``RTP/AVP`` (module rules); malformed: unchanged (the
    phone at the other end refuses it)."""
    try:
        offer = sdp.parse_sdp(body)
    except DecodeError:
        return body
    return sdp.build_sdp(dataclasses.replace(offer, profile=AVP, crypto=()))


class CallRelay:
    """Calls between the registered phones of one registrar (module rules)."""

    def __init__(self, *, answer_timeout: float = 10.0, call_timeout: float = 60.0,
                 on_log: Callable[[str, str, str], None] | None = None) -> None:
        self.answer_timeout = answer_timeout
        self.call_timeout = call_timeout
        self.on_log = on_log
        self._lines: dict[str, _Line] = {}
        #: (Call-ID, CSeq) -> the final response a relayed request waits for, and the line it went to
        self._waiting: dict[tuple[str, str],
                            tuple[asyncio.Future[sip.SipMessage], asyncio.StreamWriter]] = {}
        self._calls: dict[str, _Relayed] = {}

    def _log(self, device: str, outcome: str, detail: str) -> None:
        _log.info("relay %s: %s %s", device, outcome, detail)
        if self.on_log is not None:
            self.on_log(device, outcome, detail)

    # --- lines -----------------------------------------------------------------------
    def line_up(self, device: str, writer: asyncio.StreamWriter, *, over_tls: bool, local: str) -> None:
        """``device`` (``SEP<MAC>``) registered over this connection: calls to it go there."""
        self._lines[device.upper()] = _Line(writer, over_tls, local)

    def line_down(self, writer: asyncio.StreamWriter) -> None:
        """This connection closed: the phones registered over it are not reachable any more, and what
        waits for their answer gets none at once."""
        for device in [d for d, line in self._lines.items() if line.writer is writer]:
            del self._lines[device]
        for waiting, to in self._waiting.values():
            if to is writer and not waiting.done():
                waiting.set_exception(ConnectionResetError("the called phone's connection closed"))

    def reaches(self, user: str) -> bool:
        """Whether ``user`` names a registered phone (``SEP<MAC>``)."""
        return user.upper() in self._lines

    def owns(self, msg: sip.SipMessage) -> bool:
        """Whether ``msg`` (an ACK or BYE) belongs to a relayed call."""
        return (msg.header("call-id") or "") in self._calls

    def response(self, msg: sip.SipMessage) -> None:
        """A response a called phone sent: to the request waiting for it (else dropped)."""
        key = ((msg.header("call-id") or ""), (msg.header("cseq") or "").strip())
        found = self._waiting.get(key)
        if found is not None and not found[0].done() and msg.status is not None and msg.status >= 200:
            found[0].set_result(msg)

    # --- a call ----------------------------------------------------------------------
    async def invite(self, msg: sip.SipMessage, *, user: str, caller_tls: bool, device: str,
                     origin: object = None) -> bytes:
        """The caller's INVITE to ``user`` over connection ``origin``: relayed, and the response to send
        the caller."""
        callee = self._lines.get(user.upper())
        if callee is None:
            return _response(msg, 480)
        call_id = msg.header("call-id") or ""
        if len(self._calls) >= MAX_RELAYED and call_id not in self._calls:
            return _response(msg, 503)
        hops_tls = caller_tls and callee.over_tls
        offer = msg.body if hops_tls else _keys_out(msg.body)
        relayed = _Relayed(callee=callee, device=device, caller=origin)
        self._forget(call_id)
        self._calls[call_id] = relayed
        relayed.timer = asyncio.get_running_loop().call_later(self.call_timeout, self._forget, call_id)
        answer, branch = await self._ask(msg, callee, user, offer, device)
        if answer is not None and answer.status is not None and answer.status >= 300:  # ACKed on that leg
            number = ((msg.header("cseq") or "").split() or ["0"])[0]
            dialog = [(k, answer.header(k) or "") for k in ("From", "To", "Call-ID")]
            ack = sip.SipMessage(method="ACK", uri=msg.uri, headers=(*dialog, ("CSeq", f"{number} ACK")))
            self._write(callee, self._request(ack, callee, b"", user=user, branch=branch), device)
        if answer is None:
            self._forget(call_id)
            self._log(device, "no-answer", f"{user} did not answer within {self.answer_timeout:g}s")
            return _response(msg, 408)
        body = answer.body if hops_tls or not answer.body else _keys_out(answer.body)
        how = "keys passed on (TLS both ways)" if hops_tls else "keys taken out (a leg over TCP): RTP"
        self._log(device, "relayed", f"to {user}: {answer.status} {answer.reason}; {how}")
        if answer.status != 200:
            self._forget(call_id)
        return _response(msg, answer.status or 500, _extra(answer), body, reason=answer.reason)

    def ack(self, msg: sip.SipMessage, origin: object = None) -> None:
        """The caller's ACK over connection ``origin``, on to the called phone (module rules)."""
        relayed = self._calls.get(msg.header("call-id") or "")
        if relayed is None:
            return
        if relayed.caller is not origin:
            self._log(relayed.device, "ack-dropped", "an ACK of this call from another connection than the "
                      "INVITE's")
            return
        self._write(relayed.callee, self._request(msg, relayed.callee, b""), relayed.device)

    async def bye(self, msg: sip.SipMessage, origin: object = None) -> bytes:
        """The caller's BYE over connection ``origin``, on to the called phone; its 200 back (what it
        counted of the media); ``481`` from another connection than the INVITE's (module rules)."""
        call_id = msg.header("call-id") or ""
        relayed = self._calls.get(call_id)
        if relayed is None:
            return _response(msg, 400)
        if relayed.caller is not origin:
            self._log(relayed.device, "bye-refused", "a BYE of this call from another connection than the "
                      "INVITE's: 481")
            return _response(msg, 481)
        answer, _branch = await self._ask(msg, relayed.callee, "", b"", relayed.device)
        self._forget(call_id)
        if answer is None:
            return _response(msg, 408)
        return _response(msg, answer.status or 500, _extra(answer), reason=answer.reason)

    async def _ask(self, msg: sip.SipMessage, callee: _Line, user: str, body: bytes,
                   device: str) -> tuple[sip.SipMessage | None, str]:
        """Send ``msg`` on to the called phone and wait for its final response (None: none in time, or
        its connection closed); with the branch of the Via it was sent with."""
        key = ((msg.header("call-id") or ""), (msg.header("cseq") or "").strip())
        waiting: asyncio.Future[sip.SipMessage] = asyncio.get_running_loop().create_future()
        self._waiting[key] = (waiting, callee.writer)
        branch = f"z9hG4bK{secrets.token_hex(8)}"
        try:
            if not self._write(callee, self._request(msg, callee, body, user=user, branch=branch), device):
                return None, branch
            # no drain: what is queued for the called phone is bounded by _write, and a drain waits for
            # a phone that does not read as long as its connection stays up
            return await asyncio.wait_for(waiting, self.answer_timeout), branch
        except (TimeoutError, ConnectionError, OSError):
            return None, branch
        finally:
            self._waiting.pop(key, None)

    def _write(self, callee: _Line, data: bytes, device: str) -> bool:
        """Queue ``data`` for the called phone unless :data:`MAX_UNSENT` bytes wait for it already (module
        rules); False: not written (logged)."""
        transport = callee.writer.transport
        unsent = transport.get_write_buffer_size()
        if transport.is_closing() or unsent + len(data) > MAX_UNSENT:
            self._log(device, "not-written", f"the called phone's connection holds {unsent} unsent bytes "
                      f"(at most {MAX_UNSENT}): it does not read what the lab sends it")
            return False
        callee.writer.write(data)
        return True

    @staticmethod
    def _request(msg: sip.SipMessage, callee: _Line, body: bytes, *, user: str = "",
                 branch: str = "") -> bytes:
        """``msg`` as the lab sends it to the called phone: its own Via, the rest as the caller wrote."""
        uri = msg.uri or ""
        if user:
            host = callee.local.rsplit(":", 1)[0]
            uri = f"sip:{user}@{host}"
        transport = "TLS" if callee.over_tls else "TCP"
        branch = branch or f"z9hG4bK{secrets.token_hex(8)}"
        headers = [("Via", f"SIP/2.0/{transport} {callee.local};branch={branch}")]
        for k in ("From", "To", "Call-ID", "CSeq", "Max-Forwards", *_RELAYED_HEADERS):
            v = msg.header(k)
            if v is not None and (body or k != "Content-Type"):
                headers.append((k, v))
        return sip.build_message(f"{msg.method} {uri} SIP/2.0", headers, body)

    def _forget(self, call_id: str) -> None:
        relayed = self._calls.pop(call_id, None)
        if relayed is not None and relayed.timer is not None:
            relayed.timer.cancel()


def _extra(answer: sip.SipMessage) -> list[tuple[str, str]]:
    return [(k, v) for k in ("Contact", *_RELAYED_HEADERS) if (v := answer.header(k)) is not None]


def _response(msg: sip.SipMessage, status: int, extra: list[tuple[str, str]] | None = None,
              body: bytes = b"", *, reason: str = "") -> bytes:
    """A response to the caller's ``msg`` (:func:`phoneemu.protocols.sip.response_to`)."""
    return sip.response_to(msg, status, reason or _REASONS.get(status, "OK"), extra, to_tag="lab", body=body)
