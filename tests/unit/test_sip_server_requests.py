"""Requests a registrar sends the phone on its SIP connection while the phone waits for a response of its
own (RFC 3261 §8.2, §11.2): an OPTIONS keep-alive between the 401 and the 200 is answered 200 (Allow,
Accept, Supported), another method 405 / 501, none is taken for the answer to the phone's REGISTER, and a
flood of them neither grows without bound nor holds the phone past its timeout. A scripted registrar on
127.0.0.1 talks to :func:`phoneemu.phone.sip.register`; then the same over a call's INVITE, and a
multicast SDP answer (it parses now) the calling phone sends no media to."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest

from phoneemu.phone.call import CallResult, place_call
from phoneemu.phone.events import EventLog
from phoneemu.phone.sip import MAX_SERVER_REQUESTS, SipResult
from phoneemu.phone.store import TrustStore
from phoneemu.protocols import sip
from tests.helpers import register_with, sip_line_store

MAC = "0011223344AB"
USER, PASSWORD, REALM = "alice", "s3cret", "ccmsipline"
MD5 = f'Digest realm="{REALM}", nonce="n1", algorithm=MD5, qop="auth"'
#: a hang guard only (the phone's own timeout is far below it), never a measured time
GUARD = 30.0


def _store() -> TrustStore:
    store: TrustStore = sip_line_store(MAC, USER, PASSWORD)
    return store


class _Peer:
    """The registrar's end of one connection: the phone's messages one at a time, bytes written back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.stream = sip.SipStream()

    async def recv(self, wait: float = 3.0) -> sip.SipMessage | None:
        """The phone's next message; None when it closed the connection or said nothing within ``wait``."""
        for _ in range(1000):  # bounded: each round reads a chunk or ends
            msg = self.stream.next()
            if msg is not None:
                return msg
            try:
                chunk = await asyncio.wait_for(self.reader.read(4096), wait)
            except TimeoutError:
                return None
            if not chunk:
                return None
            self.stream.feed(chunk)
        return None

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()


Script = Callable[[_Peer], Awaitable[None]]


def _run(script: Script, *, timeout: float = 1.0) -> SipResult:
    """Register with a registrar that plays ``script`` on the phone's connection."""
    store = _store()

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await script(_Peer(r, w))

    async def body() -> SipResult:
        result, tasks = await register_with(serve, store, MAC, timeout=timeout, wait=GUARD)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]  # the script's own assertion
        res: SipResult = result
        return res

    return asyncio.run(asyncio.wait_for(body(), GUARD))


def _request(method: str, cseq: int = 1, *, drop: str = "", to_tag: str = "") -> bytes:
    """A request of the registrar's to the phone (Via, From, To, Call-ID, CSeq; ``drop`` one left out)."""
    headers = [("Via", f"SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKsrv{method}{cseq}"),
               ("From", "<sip:ccm@127.0.0.1>;tag=srv1"),
               ("To", f"<sip:SEP{MAC}@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")),
               ("Call-ID", f"keepalive-{cseq}@ccm"), ("CSeq", f"{cseq} {method}"), ("Max-Forwards", "70")]
    headers = [(k, v) for k, v in headers if k != drop]
    return sip.build_message(f"{method} sip:SEP{MAC}@127.0.0.1:5060 SIP/2.0", headers)


def _echoes(reply: sip.SipMessage, request: bytes) -> None:
    """``reply`` echoes ``request``'s Via, From, Call-ID, CSeq and To, with a To tag of the phone's."""
    sent = sip.parse_message(request)
    for name in ("via", "from", "call-id", "cseq"):
        assert reply.header(name) == sent.header(name), name
    to = reply.header("to") or ""
    assert to.startswith(sent.header("to") or "?") and ";tag=" in to, to


def test_options_between_the_401_and_the_200_is_answered_and_not_taken_for_the_answer() -> None:
    """RFC 3261 §11.2: the registrar pings the phone with OPTIONS after its challenge and before its 200,
    and waits for the phone's answer; the phone answers 200 (Allow, Accept, Supported), echoing the
    request, and then takes the registrar's 200 for its REGISTER. Before: the OPTIONS was skipped
    unanswered, the registrar never said 200, the phone timed out (G.13-unreachable)."""
    seen: list[sip.SipMessage] = []

    async def script(peer: _Peer) -> None:
        first = await peer.recv()
        assert first is not None and first.method == "REGISTER"
        await peer.send(sip.response_to(first, 401, "Unauthorized", [("WWW-Authenticate", MD5)]))
        second = await peer.recv()
        assert second is not None and second.method == "REGISTER" and second.header("authorization")
        options = _request("OPTIONS", 7)
        await peer.send(options)
        reply = await peer.recv(wait=3.0)
        assert reply is not None, "the phone did not answer the OPTIONS"
        seen.append(reply)
        _echoes(reply, options)
        await peer.send(sip.response_to(second, 200, "OK"))
        await peer.recv(wait=3.0)  # the phone hangs up

    res = _run(script, timeout=2.0)
    assert (res.registered, res.rule, res.challenged) == (True, "G.13-registered", True), res.reason
    reply = seen[0]
    assert (reply.status, reply.reason) == (200, "OK")
    assert "OPTIONS" in (reply.header("allow") or "") and "INVITE" in (reply.header("allow") or "")
    assert reply.header("accept") == "application/sdp"
    assert reply.header("supported") == ""  # present: no extension supported


def test_options_in_the_segment_before_the_200_and_before_the_401_is_answered() -> None:
    """The ping may share a TCP segment with the answer (before it): answered, and the answer still
    taken; an OPTIONS whose CSeq number is the phone's own is still a request, not an answer."""
    replies: list[sip.SipMessage] = []

    async def script(peer: _Peer) -> None:
        first = await peer.recv()
        assert first is not None
        await peer.send(_request("OPTIONS", 1) + sip.response_to(first, 401, "Unauthorized",
                                                                 [("WWW-Authenticate", MD5)]))
        for _ in range(2):  # the OPTIONS' 200 and the next REGISTER, in whichever order
            msg = await peer.recv()
            assert msg is not None
            if msg.status is not None:
                replies.append(msg)
            else:
                second = msg
        await peer.send(_request("OPTIONS", 2) + sip.response_to(second, 200, "OK"))
        msg = await peer.recv()
        assert msg is not None and msg.status is not None
        replies.append(msg)

    res = _run(script)
    assert res.rule == "G.13-registered", res.reason
    assert [(r.status, r.header("cseq")) for r in replies] == [(200, "1 OPTIONS"), (200, "2 OPTIONS")]


def test_other_requests_get_405_501_486_481_or_400_and_an_ack_nothing() -> None:
    """RFC 3261 §8.2.1: a method the phone knows but does not take here 405 with Allow (NOTIFY, a REGISTER
    carrying the phone's own CSeq: still a request, never its answer), one it does not know 501; an
    INVITE while it waits for its own answer 486, a BYE / CANCEL of no dialog it knows 481; a request
    without a Call-ID 400 naming it; an ACK is never answered (§17.1.1.3). Each echoes the request."""
    sent = [_request("NOTIFY", 3), _request("FOO", 4), _request("INVITE", 5), _request("BYE", 6),
            _request("CANCEL", 7), _request("ACK", 5), _request("NOTIFY", 8, drop="Call-ID"),
            _request("OPTIONS", 9, to_tag="given")]
    replies: list[sip.SipMessage] = []

    async def script(peer: _Peer) -> None:
        first = await peer.recv()
        assert first is not None
        own = sip.build_message(f"REGISTER sip:SEP{MAC}@127.0.0.1 SIP/2.0",
                                [(k, v) for k in ("Via", "From", "To", "Call-ID", "CSeq")
                                 if (v := first.header(k)) is not None])
        await peer.send(own + b"".join(sent))
        for _ in range(len(sent)):  # one fewer answer than requests (the ACK), plus the REGISTER's
            msg = await peer.recv()
            assert msg is not None, "the phone did not answer a request"
            replies.append(msg)
        await peer.send(sip.response_to(first, 200, "OK"))
        await peer.recv()

    res = _run(script, timeout=2.0)
    assert res.rule == "G.13-registered", res.reason
    got = [(r.status, r.header("cseq")) for r in replies]
    assert got == [(405, "1 REGISTER"), (405, "3 NOTIFY"), (501, "4 FOO"), (486, "5 INVITE"), (481, "6 BYE"),
                   (481, "7 CANCEL"), (400, "8 NOTIFY"), (200, "9 OPTIONS")]
    for reply in replies[:6]:
        assert "OPTIONS" in (reply.header("allow") or ""), reply
    assert "Call-ID" in replies[6].reason and replies[6].header("call-id") is None
    assert (replies[7].header("to") or "").endswith(";tag=given")  # its own tag kept, no second one
    for reply, request in zip(replies[1:6], sent[:5], strict=True):
        _echoes(reply, request)


def test_a_flood_of_server_requests_is_bounded_and_the_phone_still_times_out() -> None:
    """A registrar that sends OPTIONS after OPTIONS and never answers the REGISTER: the phone answers at
    most MAX_SERVER_REQUESTS of them and ends at its own timeout, naming what it answered (the flood
    goes on far longer than the phone's timeout: a phone it held would hit the test's hang guard)."""
    answered: list[sip.SipMessage] = []

    async def reader(peer: _Peer) -> None:
        while (msg := await peer.recv(wait=GUARD)) is not None:  # until the phone hangs up
            if msg.status is not None:
                answered.append(msg)

    async def script(peer: _Peer) -> None:
        first = await peer.recv()
        assert first is not None
        counting = asyncio.create_task(reader(peer))
        try:
            for n in range(4000):  # bounded: ~20 s of pings at most; the phone's timeout is 0.5 s
                if counting.done():
                    break
                peer.writer.write(_request("OPTIONS", n + 1))
                await asyncio.sleep(0.005)
        finally:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(counting, GUARD)

    res = _run(script, timeout=0.5)
    assert (res.registered, res.rule) == (False, "G.13-unreachable"), res.reason
    assert "no SIP response within 0.5s" in res.reason
    assert f"{MAX_SERVER_REQUESTS} request(s) of the server answered" in res.reason, res.reason
    assert len(answered) == MAX_SERVER_REQUESTS
    assert [r.header("cseq") for r in answered] == [f"{n} OPTIONS" for n in range(1, MAX_SERVER_REQUESTS + 1)]


@pytest.mark.parametrize(("method", "status"), [("OPTIONS", 200), ("NOTIFY", 405), ("SUBSCRIBE", 405),
                                                ("XYZ", 501), ("INVITE", 486), ("BYE", 481)])
def test_answer_request_sans_io(method: str, status: int) -> None:
    request = sip.parse_message(_request(method, 3))
    got, data = sip.answer_request(request, to_tag="abc")
    assert got == status and data is not None
    reply = sip.parse_message(data)
    assert reply.status == status and reply.header("to") == f"<sip:SEP{MAC}@127.0.0.1>;tag=abc"
    _echoes(reply, _request(method, 3))
    assert sip.answer_request(sip.parse_message(_request("ACK")), to_tag="abc") == (0, None)


# -- the call over the registered connection (phoneemu.phone.call) ---------------------------------------

def _sdp(c_line: str, port: int = 40000) -> bytes:
    return (f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n{c_line}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0\r\n"
            "a=sendrecv \r\n").encode()


def _call(body: bytes, *, ping: bool) -> tuple[CallResult, list[sip.SipMessage]]:
    """The phone registers with, then calls ``moh`` at, a far end on loopback answering the INVITE with a
    200 carrying ``body`` (after an OPTIONS it waits to see answered, when ``ping``); what it read."""
    seen: list[sip.SipMessage] = []

    async def script(peer: _Peer) -> None:
        for _ in range(10):  # REGISTER, INVITE, the OPTIONS' answer, ACK, BYE: bounded
            msg = await peer.recv()
            if msg is None:
                return
            seen.append(msg)
            if msg.method in ("REGISTER", "BYE"):
                await peer.send(sip.response_to(msg, 200, "OK", [("Expires", "3600")]))
            elif msg.method == "INVITE":
                if ping:
                    await peer.send(_request("OPTIONS", 11))
                    reply = await peer.recv()
                    assert reply is not None and reply.status == 200, "the phone did not answer the OPTIONS"
                    seen.append(reply)
                await peer.send(sip.response_to(msg, 200, "OK", [("Content-Type", "application/sdp")],
                                                to_tag="far", body=body))

    async def body_() -> CallResult:
        server = await asyncio.start_server(lambda r, w: _serve(script, r, w), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            store = _store()
            return await place_call(store, store.profile, MAC, "127.0.0.1", target="moh", sip_port=port,
                                    sips_port=1, events=EventLog(100), clock=lambda: 0, timeout=2.0,
                                    packets=3)
        finally:
            server.close()
            await server.wait_closed()

    return asyncio.run(asyncio.wait_for(body_(), GUARD)), seen


async def _serve(script: Script, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    try:
        with contextlib.suppress(ConnectionError):
            await script(_Peer(r, w))
    finally:
        w.close()


def test_an_options_between_the_invite_and_its_200_is_answered_and_the_call_goes_on() -> None:
    """The CallManager pings the phone while it waits for its INVITE's answer: answered 200, and the 200
    that follows is the INVITE's (here a refused stream, port 0: the call ends with a BYE, no media)."""
    res, seen = _call(_sdp("c=IN IP4 127.0.0.1", port=0), ping=True)
    assert (res.rule, res.status) == ("G.14-media-refused", 200), res.reason
    assert [m.method or m.status for m in seen] == ["REGISTER", "INVITE", 200, "ACK", "BYE"]
    assert seen[2].header("cseq") == "11 OPTIONS"


def test_a_multicast_answer_parses_but_the_phone_sends_no_media_to_the_group() -> None:
    """``c=IN IP4 224.2.1.1/127`` parses now (RFC 4566 §5.7), but to its unicast offer the phone takes no
    multicast answer: G.14-answer-refused naming it, nothing sent there, the call hung up (before: the
    SDP did not parse at all)."""
    res, seen = _call(_sdp("c=IN IP4 224.2.1.1/127/2"), ping=False)
    assert (res.rule, res.accepted, res.media, res.sent) == ("G.14-answer-refused", False, "none", 0)
    assert "224.2.1.1 is multicast, TTL 127, 2 addresses" in res.reason, res.reason
    assert [m.method for m in seen] == ["REGISTER", "INVITE", "ACK", "BYE"]


def test_the_answering_phone_answers_an_options_while_it_waits_for_the_call() -> None:
    """A phone waiting for a call (``boot --answer``) answers the CallManager's OPTIONS keep-alive ``200``
    with Allow, as while it waits for a response (before: ``405 Method Not Allowed``), and an unknown
    method ``501``; neither is the call it waits for (none comes: it ends at its wait)."""
    from phoneemu.phone.answer import answer_call

    seen: list[sip.SipMessage] = []

    async def script(peer: _Peer) -> None:
        reg = await peer.recv()
        assert reg is not None and reg.method == "REGISTER"
        await peer.send(sip.response_to(reg, 200, "OK", [("Expires", "3600")], to_tag="reg"))
        for method in ("OPTIONS", "FROBNICATE"):
            await peer.send(_request(method, 7))
            reply = await peer.recv()
            assert reply is not None
            seen.append(reply)
        await peer.recv(wait=5.0)  # until the phone gives up waiting and closes

    async def body() -> CallResult:
        server = await asyncio.start_server(lambda r, w: _serve(script, r, w), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            store = _store()
            return await answer_call(store, store.profile, MAC, "127.0.0.1", sip_port=port, sips_port=1,
                                     events=EventLog(100), clock=lambda: 0, timeout=2.0, wait=1.0)
        finally:
            server.close()
            await server.wait_closed()

    res = asyncio.run(asyncio.wait_for(body(), GUARD))
    assert not res.accepted and "no call came" in res.reason, res.reason
    assert [m.status for m in seen] == [200, 501]
    assert "OPTIONS" in (seen[0].header("allow") or "")
    _echoes(seen[0], _request("OPTIONS", 7))
