"""A call's INVITE or BYE answered with a 401 whose digest challenge does not parse (spec §G.13, §G.14;
:mod:`phoneemu.phone.call`).

Rules (ours, as the REGISTER's in :mod:`phoneemu.phone.sip`: §G.13 is silent on a malformed challenge):
the far end answered, so it is a refusal, not a failed exchange — to the INVITE ``G.14-call-refused``
with status 401, its reason naming the field and the offset of the parse error; to the BYE the call's
verdict stands (the call was made) and the refused BYE is noted in the event log."""

from __future__ import annotations

import pytest

from phoneemu.phone.call import CallResult
from phoneemu.phone.events import EventLog
from phoneemu.protocols import sdp, sip
from phoneemu.protocols.media import AVP
from tests.helpers import run
from tests.sip_helpers import SipAnswer, call_far_end

MAC = "0011223344CD"
REALM = "ccmsipline"

MALFORMED = [
    (f'Digest realm="{REALM}", nonce="n1" qop="auth"', "does not parse"),  # no comma
    (f'Digest realm="{REALM}", nonce="n1", Nonce="n2"', "given twice"),
    (f'Digest realm="{REALM}", nonce="n1', "does not parse"),  # an unbalanced quote
]
MALFORMED_IDS = ["no-comma", "nonce-twice", "unbalanced-quote"]


def _unauthorized(msg: sip.SipMessage, field: str, challenge: str, status: int = 401) -> bytes:
    reason = "Unauthorized" if status == 401 else "Proxy Authentication Required"
    return sip.response_to(msg, status, reason, [(field, challenge)], to_tag="far401")


async def _call(answer: SipAnswer, events: EventLog) -> tuple[CallResult, list[str]]:
    """A phone with digest credentials registers with, then calls, a far end on loopback answering as
    ``answer`` says (None: a 200 for REGISTER and BYE, nothing for ACK); (the call's result, the methods
    the far end saw)."""
    seen: list[str] = []

    def far_end(msg: sip.SipMessage) -> bytes | list[bytes] | None:
        seen.append(msg.method or "")
        out = answer(msg)
        if out is None and msg.method in ("REGISTER", "BYE"):
            out = sip.response_to(msg, 200, "OK", [("Expires", "3600")])
        return out

    res = await call_far_end(far_end, mac=MAC, events=events, timeout=2.0)
    return res, seen


@pytest.mark.parametrize(("challenge", "words"), MALFORMED, ids=MALFORMED_IDS)
def test_an_invite_challenged_with_a_malformed_challenge_is_call_refused_naming_where(
        challenge: str, words: str) -> None:
    """Was: DecodeError out of the challenge's parse, taken for a failed exchange — ``G.14-call-refused``
    "the call's SIP exchange failed: ...", no status. Now: the 401 is the INVITE's answer, refused
    (status 401), the reason naming WWW-Authenticate and the offset; the 401 ACKed, nothing answered."""
    def answer(msg: sip.SipMessage) -> bytes | None:
        return _unauthorized(msg, "WWW-Authenticate", challenge) if msg.method == "INVITE" else None

    res, seen = run(_call(answer, EventLog(100)), limit=20)
    assert (res.rule, res.accepted, res.status, res.media) == ("G.14-call-refused", False, 401, "none"), \
        res.reason
    assert res.reason.startswith("INVITE moh: 401 Unauthorized: its digest challenge does not parse ("), \
        res.reason
    assert "WWW-Authenticate at offset" in res.reason and words in res.reason, res.reason
    assert "SIP exchange failed" not in res.reason
    assert res.registration is not None and res.registration.registered
    assert seen == ["REGISTER", "INVITE", "ACK"]


def test_an_invite_challenged_by_a_proxy_with_a_malformed_challenge_is_refused_unread() -> None:
    """A 407's Proxy-Authenticate is not answered (the phone answers a registrar's 401 only), so it is
    not parsed either: the 407 is the refusal, malformed or not."""
    challenge, _words = MALFORMED[0]

    def answer(msg: sip.SipMessage) -> bytes | None:
        if msg.method == "INVITE":
            return _unauthorized(msg, "Proxy-Authenticate", challenge, status=407)
        return None

    res, seen = run(_call(answer, EventLog(100)), limit=20)
    assert (res.rule, res.status) == ("G.14-call-refused", 407), res.reason
    assert res.reason == "INVITE moh: 407 Proxy Authentication Required"
    assert seen == ["REGISTER", "INVITE", "ACK"]


@pytest.mark.parametrize(("challenge", "words"), MALFORMED, ids=MALFORMED_IDS)
def test_a_bye_challenged_with_a_malformed_challenge_leaves_the_calls_verdict_and_is_noted(
        challenge: str, words: str) -> None:
    """The far end answers the INVITE with audio refused (port 0): the phone ends the call at once with a
    BYE, which the far end challenges with a malformed 401. Was: DecodeError, the call's verdict
    (``G.14-media-refused``) replaced by ``G.14-call-refused`` "SIP exchange failed". Now: the verdict
    stands and the refused BYE is noted (a ``sip`` event naming the field and offset)."""
    refused_audio = sdp.build_sdp(sdp.AudioOffer(address="127.0.0.1", port=0, profile=AVP, formats=(0,)))

    def answer(msg: sip.SipMessage) -> bytes | None:
        if msg.method == "INVITE":
            return sip.response_to(msg, 200, "OK", [("Content-Type", "application/sdp")], to_tag="far",
                                   body=refused_audio)
        if msg.method == "BYE":
            return _unauthorized(msg, "WWW-Authenticate", challenge)
        return None

    events = EventLog(100)
    res, seen = run(_call(answer, events), limit=20)
    assert (res.rule, res.status, res.far_end) == ("G.14-media-refused", 200, ""), res.reason
    assert seen == ["REGISTER", "INVITE", "ACK", "BYE"]
    notes = [e.detail or "" for e in events if e.kind == "sip"]
    assert len(notes) == 1, notes
    assert notes[0].startswith("BYE moh: 401 Unauthorized: its digest challenge does not parse ("), notes
    assert "WWW-Authenticate at offset" in notes[0] and words in notes[0], notes
