"""A call's BYE that fails leaves the call's verdict standing (spec §G.14; :mod:`phoneemu.phone.call`).

Rules (ours): the BYE comes after the call's media was judged; no answer in time, an answer that does
not parse, or the connection closed is noted in the event log (a ``sip`` event naming the BYE and what
failed) and the call's verdict is the one it had. Was: the failure raised out of the BYE and the whole
call became ``G.14-call-refused`` "the call's SIP exchange failed", its media verdict lost."""

from __future__ import annotations

import pytest

from phoneemu.phone.events import EventLog
from phoneemu.protocols import sdp, sip
from phoneemu.protocols.media import AVP
from tests.helpers import run
from tests.sip_helpers import HANG_UP, SipAnswer, call_far_end

MAC = "0011223344CE"
#: the far end refuses the audio (port 0): the phone judges the answer and ends the call with a BYE
REFUSED_AUDIO = sdp.build_sdp(sdp.AudioOffer(address="127.0.0.1", port=0, profile=AVP, formats=(0,)))


def _far_end(bye: str) -> SipAnswer:
    """A far end that answers the INVITE with its audio refused and the BYE as ``bye`` says: ``silent``
    (no answer), ``garbage`` (not SIP), ``close`` (it hangs up)."""
    def answer(msg: sip.SipMessage) -> bytes | list[bytes] | None:
        if msg.method == "BYE":
            if bye == "garbage":
                return b"HELLO THERE\r\n\r\n"
            return [HANG_UP] if bye == "close" else None  # silent: the phone's timeout passes
        if msg.method == "REGISTER":
            return sip.response_to(msg, 200, "OK", [("Expires", "3600")])
        if msg.method == "INVITE":
            return sip.response_to(msg, 200, "OK", [("Content-Type", "application/sdp")], to_tag="far",
                                   body=REFUSED_AUDIO)
        return None
    return answer


@pytest.mark.parametrize(("bye", "words"), [
    ("silent", "no SIP response within 0.5s"),
    ("garbage", "the call's SIP exchange failed"),
    ("close", "closed the connection"),
])
def test_a_failed_bye_is_noted_and_the_calls_verdict_stands(bye: str, words: str) -> None:
    events = EventLog(100)
    res = run(call_far_end(_far_end(bye), mac=MAC, events=events, timeout=0.5), limit=20)
    assert (res.rule, res.status, res.far_end) == ("G.14-media-refused", 200, ""), res.reason
    assert "SIP exchange failed" not in res.reason
    notes = [e.detail or "" for e in events if e.kind == "sip"]
    assert len(notes) == 1, notes
    assert notes[0].startswith("BYE moh: "), notes
    assert words in notes[0], notes
