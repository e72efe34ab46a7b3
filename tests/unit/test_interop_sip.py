"""Interoperability of the phone's SIP registration (spec §G.13, RFC 3261, RFC 2617/7616) with registrars
that behave otherwise than the lab's, legitimately (CUCM and other SIP servers) or hostilely: a scripted
registrar on 127.0.0.1 answers each REGISTER as the test says, and the phone's result is checked."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable

import pytest

from phoneemu.phone.sip import SipResult
from phoneemu.phone.store import TrustStore
from phoneemu.protocols import sip
from tests.helpers import register_with, sip_line_store
from tests.sip_helpers import HANG_UP, answer_requests, as_pieces

MAC = "0011223344AA"
USER, PASSWORD, REALM = "alice", "s3cret", "ccmsipline"

#: what the registrar answers one REGISTER: bytes, pieces written apart (TCP segments), or None (nothing)
Answer = Callable[[sip.SipMessage], bytes | list[bytes] | None]


def _store() -> TrustStore:
    store: TrustStore = sip_line_store(MAC, USER, PASSWORD)
    return store


def _run(script: list[Answer], *, timeout: float = 1.0, close_after: bool = False,
         ) -> tuple[SipResult, list[sip.SipMessage]]:
    """Register against a registrar answering the phone's n-th request with ``script[n]``; the result and
    the requests the registrar read."""
    got: list[sip.SipMessage] = []
    store = _store()

    def answer(msg: sip.SipMessage) -> bytes | list[bytes] | None:
        got.append(msg)
        if len(got) > len(script):
            return None
        out = script[len(got) - 1](msg)
        return [*as_pieces(out), HANG_UP] if close_after and len(got) == len(script) else out

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await answer_requests(r, w, answer, gap=0.02)  # each piece a segment of its own

    async def body() -> SipResult:
        result, _tasks = await register_with(serve, store, MAC, timeout=timeout, wait=2)
        res: SipResult = result
        return res

    started = time.monotonic()
    res = asyncio.run(body())
    assert time.monotonic() - started < timeout * 4 + 1
    return res, got


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _expected(msg: sip.SipMessage, *, password: str = PASSWORD, realm: str = REALM) -> str:
    """The right digest response of ``msg``'s Authorization (computed here, independently)."""
    a = sip.parse_digest(msg.header("authorization") or "", field="Authorization")
    ha1 = _md5(f"{a['username']}:{realm}:{password}")
    if a.get("algorithm", "MD5").upper() == "MD5-SESS":
        ha1 = _md5(f"{ha1}:{a['nonce']}:{a['cnonce']}")
    ha2 = _md5(f"REGISTER:{a['uri']}") if a.get("qop") != "auth-int" else \
        _md5(f"REGISTER:{a['uri']}:{_md5('')}")
    if "qop" in a:
        return _md5(f"{ha1}:{a['nonce']}:{a['nc']}:{a['cnonce']}:{a['qop']}:{ha2}")
    return _md5(f"{ha1}:{a['nonce']}:{ha2}")


def _reply(status: int, reason: str, extra: list[tuple[str, str]] | None = None) -> Answer:
    return lambda msg: sip.response_to(msg, status, reason, extra)


def _challenge(*values: str) -> Answer:
    return _reply(401, "Unauthorized", [("WWW-Authenticate", v) for v in values])


def _ok_if_right(challenge: str = "", extra: list[tuple[str, str]] | None = None) -> Answer:
    """200 when the Authorization answers ``challenge`` (its nonce, algorithm, a qop it offered, its opaque)
    with the right response, else 403 naming what is wrong (a refusal the phone cannot take for success)."""
    want = sip.parse_digest(challenge) if challenge else {}

    def answer(msg: sip.SipMessage) -> bytes:
        auth = msg.header("authorization")
        if auth is None:
            return sip.response_to(msg, 403, "No Authorization")
        a = sip.parse_digest(auth, field="Authorization")
        qops = {q.strip() for q in want.get("qop", "").split(",") if q.strip()}
        wrong = [k for k, bad in [
            ("nonce", "nonce" in want and a.get("nonce") != want["nonce"]),
            ("algorithm", a.get("algorithm", "MD5").upper() != want.get("algorithm", "MD5").upper()),
            ("qop", (a.get("qop") not in qops) if qops else "qop" in a),
            ("opaque", a.get("opaque") != want.get("opaque")),
            ("response", a.get("response") != _expected(msg)),
        ] if bad]
        if wrong:
            return sip.response_to(msg, 403, f"Wrong {' '.join(wrong)}")
        return sip.response_to(msg, 200, "OK", extra)
    return answer


MD5 = f'Digest realm="{REALM}", nonce="n1", algorithm=MD5, qop="auth"'

SHA256 = f'Digest realm="{REALM}", nonce="s1", algorithm=SHA-256, qop="auth"'


def _raw(data: bytes) -> Answer:
    return lambda _msg: data


def _templated(text: str) -> Answer:
    """A response written by hand (any spelling), echoing the request's Via, From, To, Call-ID, CSeq."""
    def answer(msg: sip.SipMessage) -> bytes:
        return text.format(via=msg.header("via"), frm=msg.header("from"), to=msg.header("to"),
                           cid=msg.header("call-id"), cseq=msg.header("cseq")).encode()
    return answer


# -- digest challenges ---------------------------------------------------------------------------------

@pytest.mark.parametrize("challenge", [
    MD5,
    f'Digest realm="{REALM}", nonce="n1"',  # no qop: RFC 2069 compatibility
    f'Digest realm="{REALM}", nonce="n1", qop="auth,auth-int"',
    f'Digest realm="{REALM}", nonce="n\\"1\\\\x", qop="auth"',  # escaped quote and backslash
    f'Digest  realm = "{REALM}" ,nonce="n1",algorithm="MD5"',  # white space, a quoted token
], ids=["md5-auth", "no-qop", "auth-and-auth-int", "escaped-quotes", "spacing"])
def test_digest_challenges_cucm_and_others_give_are_answered(challenge: str) -> None:
    res, got = _run([_challenge(challenge), _ok_if_right(challenge)])
    assert (res.rule, res.reason) == ("G.13-registered", "200 OK (after a digest challenge)")
    assert res.challenged and len(got) == 2


@pytest.mark.parametrize("challenge", [
    f'Digest realm="{REALM}", nonce="n1", algorithm=MD5-sess, qop="auth"',
    f'Digest realm="{REALM}", nonce="n1", qop="auth-int"',
    f'Digest realm="{REALM}", nonce="n1", qop=auth, opaque="op \\"1\\""',
], ids=["md5-sess", "auth-int-only", "opaque"])
def test_md5_sess_auth_int_and_opaque_are_answered_as_rfc_2617_says(challenge: str) -> None:
    """RFC 2617 §3.2.2: the challenge's algorithm (MD5-sess: HA1 over nonce and cnonce), qop auth-int
    when that is all it offers (HA2 over the empty body's MD5), its opaque returned unchanged."""
    res, _ = _run([_challenge(challenge), _ok_if_right(challenge)])
    assert (res.rule, res.reason) == ("G.13-registered", "200 OK (after a digest challenge)")


def test_of_several_challenges_the_phone_answers_the_md5_one() -> None:
    """RFC 7616 §3.7: a registrar may offer SHA-256 first, then MD5 (each its own nonce)."""
    res, got = _run([_challenge(SHA256, MD5), _ok_if_right(MD5)])
    assert res.rule == "G.13-registered", res.reason
    assert 'nonce="n1"' in (got[1].header("authorization") or "")


def test_a_challenge_the_phone_cannot_answer_is_named_not_taken_for_a_wrong_password() -> None:
    """SHA-256 alone, a 401 without (or with a Basic) challenge, or with no nonce: refused, naming it;
    not ``unreachable`` (which would send the phone on to the next CallManager) nor a bad password."""
    res, got = _run([_challenge(SHA256), _challenge(SHA256)])
    assert res.rule == "G.13-registrar-refused" and "SHA-256" in res.reason and len(got) == 1
    for script, words in [([_reply(401, "Unauthorized")], "without a Digest challenge (no WWW-Authenticate)"),
                          ([_challenge('Basic realm="x"')], "without a Digest challenge (only Basic)"),
                          ([_challenge(f'Digest realm="{REALM}"')], "no nonce")]:
        res, _ = _run(script)
        assert (res.rule, res.registered, res.status) == ("G.13-registrar-refused", False, 401), res.reason
        assert words in res.reason


def test_a_challenge_naming_a_parameter_twice_is_malformed_not_answered() -> None:
    """RFC 7235 §2.1: each parameter name once per challenge. ``realm`` twice was read last-wins and
    answered over the second realm; now the challenge is malformed, as one whose parameters do not parse:
    the registrar answered, refusing (``G.13-registrar-refused``, status 401, naming the field, the
    parameter and its offset; was ``G.13-unreachable``), no answer sent. Beside a challenge that parses,
    it is left out and that one is answered."""
    twice = f'Digest realm="{REALM}", nonce="n1", qop="auth", Realm="elsewhere"'
    unparsed = f'Digest realm="{REALM}", nonce="n1" qop="auth"'  # no comma
    for challenge, words in [(twice, "parameter 'Realm' given twice"), (unparsed, "does not parse")]:
        res, got = _run([_challenge(challenge), _ok_if_right(MD5)])
        outcome = (res.rule, res.registered, res.status, len(got))
        assert outcome == ("G.13-registrar-refused", False, 401, 1), res.reason
        assert "WWW-Authenticate" in res.reason and "at offset" in res.reason, res.reason
        assert words in res.reason, res.reason
    res, got = _run([_challenge(twice, MD5), _ok_if_right(MD5)])
    assert res.rule == "G.13-registered", res.reason
    assert 'realm="ccmsipline"' in (got[1].header("authorization") or "")


def test_a_stale_second_challenge_is_answered_with_its_new_nonce() -> None:
    stale = f'Digest realm="{REALM}", nonce="n2", qop="auth", stale=TRUE'
    res, got = _run([_challenge(MD5), _challenge(stale), _ok_if_right(stale)])
    assert (res.rule, res.stale, len(got)) == ("G.13-registered", True, 3)


def test_challenges_over_and_over_are_bounded() -> None:
    res, got = _run([_challenge(MD5)] * 10)
    assert res.rule == "G.13-digest-rejected" and len(got) == 2
    stale = f'Digest realm="{REALM}", nonce="n2", qop="auth", stale=true'
    res, got = _run([_challenge(MD5)] + [_challenge(stale)] * 10)
    assert res.rule == "G.13-digest-rejected" and "still challenged after 3" in res.reason and len(got) == 3


def test_a_proxy_challenge_is_refused_with_a_reason_that_says_so() -> None:
    res, _ = _run([_reply(407, "Proxy Authentication Required", [("Proxy-Authenticate", MD5)])])
    assert (res.rule, res.status) == ("G.13-registrar-refused", 407)
    assert "Proxy-Authenticate" in res.reason and "401 WWW-Authenticate" in res.reason


# -- other final responses -----------------------------------------------------------------------------

def test_423_interval_too_brief_is_asked_again_with_min_expires() -> None:
    """RFC 3261 §10.2.8; bounded: a Min-Expires over a day, or again and again, is a refusal."""
    def ok_if_long(msg: sip.SipMessage) -> bytes:
        return sip.response_to(msg, 200 if msg.header("expires") == "7200" else 403, "x")
    res, got = _run([_reply(423, "Interval Too Brief", [("Min-Expires", "7200")]), ok_if_long])
    assert res.rule == "G.13-registered" and [m.header("expires") for m in got] == ["3600", "7200"]
    res, got = _run([_challenge(MD5), _reply(423, "Interval Too Brief", [("Min-Expires", "7200")]),
                     _ok_if_right(MD5)])
    assert res.rule == "G.13-registered" and got[2].header("expires") == "7200", res.reason
    res, got = _run([_reply(423, "Interval Too Brief", [("Min-Expires", "999999")])])
    assert res.rule == "G.13-registrar-refused" and "Min-Expires 999999" in res.reason and len(got) == 1
    res, got = _run([_reply(423, "Interval Too Brief", [("Min-Expires", str(4000 + i))]) for i in range(5)])
    assert res.rule == "G.13-registrar-refused" and res.status == 423 and len(got) == 3


def test_redirects_and_unavailability_say_where_and_when() -> None:
    res, _ = _run([_reply(503, "Service Unavailable", [("Retry-After", "30")])])
    assert (res.rule, res.reason) == ("G.13-registrar-refused", "503 Service Unavailable (Retry-After 30)")
    res, _ = _run([_reply(302, "Moved Temporarily", [("Contact", "<sip:10.0.0.2:5060>")])])
    assert res.rule == "G.13-registrar-refused" and "<sip:10.0.0.2:5060>" in res.reason


def test_a_200_granting_expires_0_is_no_registration() -> None:
    """The 200's Contact for the phone's binding with ``expires=0`` (or an Expires: 0 header): removed."""
    def ours(expires: str, header: str | None = None) -> Answer:
        def answer(msg: sip.SipMessage) -> bytes:
            contact = (msg.header("contact") or "").split(";+sip")[0]
            extra = [("Contact", f"<sip:other@10.0.0.1>;expires=60, {contact};expires={expires}")]
            return sip.response_to(msg, 200, "OK", extra + ([("Expires", header)] if header else []))
        return answer
    res, _ = _run([ours("0", "3600")])
    assert (res.registered, res.rule) == (False, "G.13-registrar-refused") and "expires 0" in res.reason
    res, _ = _run([_reply(200, "OK", [("Expires", "0")])])
    assert res.registered is False
    res, _ = _run([ours("120")])
    assert res.registered and res.reason == "200 OK (no challenge; 120 s granted)"


# -- framing ---------------------------------------------------------------------------------------------

def test_a_response_of_an_earlier_transaction_is_not_the_answer() -> None:
    """Two responses in one segment: the second (a retransmitted 401, or a 200 of the earlier CSeq) is
    not the answer to the next REGISTER; the phone waits for the one whose CSeq is its own."""
    def twice(msg: sip.SipMessage) -> bytes:
        return sip.response_to(msg, 401, "Unauthorized", [("WWW-Authenticate", MD5)]) * 2
    res, _ = _run([twice, _ok_if_right(MD5)])
    assert res.rule == "G.13-registered", res.reason
    def then_ok(msg: sip.SipMessage) -> bytes:
        return sip.response_to(msg, 401, "Unauthorized", [("WWW-Authenticate", MD5)]) + \
            sip.response_to(msg, 200, "OK")
    res, _ = _run([then_ok, _reply(403, "Forbidden")])
    assert (res.registered, res.reason) == (False, "403 Forbidden")


def test_compact_forms_any_case_folding_and_spacing() -> None:
    compact = ("SIP/2.0 200 OK\r\nv:  {via}\r\nf :{frm}\r\nt:{to};tag=1\r\ni: {cid}\r\ncseq: {cseq}\r\n"
               "m: <sip:a@b>\r\n ;expires=3600\r\nl: 0\r\n\r\n")
    challenge = ("sip/2.0 401 Unauthorized\r\nVIA: {via}\r\nFROM: {frm}\r\nTO: {to};tag=1\r\n"
                 "CALL-ID: {cid}\r\nCSEQ: {cseq}\r\n"
                 f'www-authenticate: Digest realm="{REALM}",\r\n nonce="n1",\r\n\tqop="auth"'
                 "\r\ncontent-length: 0\r\n\r\n")
    res, _ = _run([_templated(challenge), _ok_if_right(MD5)])
    assert res.rule == "G.13-registered", res.reason
    res, _ = _run([_templated(compact)])
    assert res.rule == "G.13-registered", res.reason


def test_provisional_responses_and_segments_split_anywhere() -> None:
    def split(msg: sip.SipMessage) -> list[bytes]:
        data = sip.response_to(msg, 100, "Trying") + sip.response_to(
            msg, 183, "Session Progress", [("Content-Type", "application/sdp")], body=b"v=0\r\n") + \
            sip.response_to(msg, 200, "OK")
        return [data[:7], data[7:40], data[40:-3], data[-3:]]
    res, _ = _run([split])
    assert res.rule == "G.13-registered", res.reason
    res, _ = _run([lambda m: sip.response_to(m, 100, "Trying") * 50], timeout=0.5)
    assert res.rule == "G.13-unreachable" and "only a provisional 100 Trying" in res.reason


def test_content_length_lies() -> None:
    """Missing (RFC 3261 §18.3) or conflicting: malformed; larger than the body: a timeout naming the
    incomplete message; smaller: the rest is the next message's."""
    res, _ = _run([lambda m: sip.response_to(m, 200, "OK").replace(b"Content-Length: 0\r\n", b"")])
    assert res.rule == "G.13-unreachable" and "no Content-Length" in res.reason
    res, _ = _run([lambda m: sip.response_to(m, 200, "OK").replace(b"Content-Length: 0",
                                                                  b"Content-Length: 0\r\nl: 5")])
    assert (res.registered, res.rule) == (False, "G.13-unreachable") and "conflicting" in res.reason
    res, _ = _run([lambda m: sip.response_to(m, 200, "OK").replace(b"Content-Length: 0",
                                                                  b"Content-Length: 9")], timeout=0.5)
    assert res.rule == "G.13-unreachable" and "incomplete message" in res.reason
    res, _ = _run([lambda m: sip.response_to(m, 200, "OK", body=b"abcdef").replace(b"Content-Length: 6",
                                                                                  b"Content-Length: 2")])
    assert res.rule == "G.13-registered"


@pytest.mark.parametrize(("script", "close", "words"), [
    ([_raw(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")], False, "neither a SIP/2.0 request"),
    ([_raw(b"SIP/2.0 200 OK\r\nX: " + b"a" * 100_000 + b"\r\n\r\n")], False, "no end of the message head"),
    ([_raw(b"\x00" * 200_000)], False, "no end of the message head"),
    ([lambda m: None], False, "no SIP response within 0.5s"),
    ([lambda m: sip.response_to(m, 200, "OK")[:30]], True, "without answering (in the middle of a message"),
    ([lambda m: None], True, "closed the connection without answering"),
], ids=["http", "enormous-line", "no-end", "silent", "closed-mid-response", "closed"])
def test_hostile_registrars_end_in_a_bounded_time_with_a_reason(script: list[Answer], close: bool,
                                                                words: str) -> None:
    res, _ = _run(script, timeout=0.5, close_after=close)
    assert (res.registered, res.rule) == (False, "G.13-unreachable") and words in res.reason, res.reason


def test_the_codec_reads_any_case_version_and_new_digest_helpers() -> None:
    from phoneemu.errors import DecodeError

    assert sip.parse_message(b"sip/2.0 200 OK\r\nl: 0\r\n\r\n").status == 200
    with pytest.raises(DecodeError, match="conflicting"):
        sip.parse_message(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\nContent-Length: 1\r\n\r\nx")
    msg = sip.parse_message(b"SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm=x\r\n"
                            b"WWW-Authenticate: Digest\tnonce=\"a\", algorithm=SHA-256\r\n"
                            b"www-authenticate: Digest nonce=\"b\", algorithm=md5-sess, qop=auth\r\n"
                            b"l: 0\r\n\r\n")
    offered = sip.digest_challenges(msg)
    assert [c["nonce"] for c in offered] == ["a", "b"] and sip.pick_challenge(offered) == offered[1]
    assert sip.pick_challenge([{"nonce": "x", "qop": "auth-conf"}]) is None
    # RFC 2617 §3.5's worked example (MD5, qop=auth) still holds with the new parameters' defaults
    assert sip.digest_response(username="Mufasa", realm="testrealm@host.com", password="Circle Of Life",
                               method="GET", uri="/dir/index.html",
                               nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", nc="00000001", cnonce="0a4f113b",
                               qop="auth", algorithm="MD5") == "6629fae49393a05397450978507c4ef1"
