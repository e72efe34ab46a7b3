"""``SipStream.feed`` bounds the stream's memory whatever the caller (phoneemu.protocols.sip module rules):
it refuses bytes (SizeLimitError, a DecodeError naming the limit) while the stream holds the largest
message's worth (``MAX_HEAD + 4 + MAX_BODY``) that ``next`` has not taken. Before: a caller feeding without
calling ``next`` grew the buffer without end (2 MB in a probe). Callers that take messages with ``next``
until None between feeds, or feed a whole capture at once, are never refused."""

from __future__ import annotations

import pytest

from phoneemu.errors import DecodeError, SizeLimitError
from phoneemu.protocols import sip

LIMIT = sip.MAX_HEAD + 4 + sip.MAX_BODY
SMALL = sip.build_message("SIP/2.0 200 OK", [("Call-ID", "c1"), ("CSeq", "1 REGISTER")], b"")
#: close to the largest message: a head of some 8 KB and a body of MAX_BODY bytes
LARGE = sip.build_message("SIP/2.0 200 OK", [("X-Pad", "a" * 8000)], b"b" * sip.MAX_BODY)
PROBE = 2 * 1024 * 1024  # what the probe fed


def _feed_until_refused(stream: sip.SipStream, message: bytes,
                        piece: int | None = None) -> tuple[int, int, DecodeError | None]:
    """Feed ``message`` again and again (in pieces of ``piece`` bytes: every piece) without ``next``, at
    most PROBE bytes: the bytes taken, the size of the last piece tried, the refusal (None: none)."""
    piece = piece or len(message)
    data = message * (2 * piece // len(message) + 2)  # every piece of the repeated message is in here
    fed = at = 0
    while fed < PROBE:
        chunk = data[at:at + piece]
        try:
            stream.feed(chunk)
        except DecodeError as exc:
            return fed, len(chunk), exc
        fed += len(chunk)
        at = (at + piece) % len(message)
    return fed, piece, None


@pytest.mark.parametrize(("message", "piece"), [(SMALL, None), (LARGE, None), (b"\r\n\r\n" * 64, None),
                                                (SMALL, 7), (LARGE, 4096)],
                         ids=["small", "large", "keep-alives", "small-pieces", "large-pieces"])
def test_feeding_without_next_is_refused_at_the_limit(message: bytes, piece: int | None) -> None:
    stream = sip.SipStream()
    fed, last, refused = _feed_until_refused(stream, message, piece)
    assert refused is not None, f"{fed} bytes taken without one next()"
    assert isinstance(refused, SizeLimitError) and f"{LIMIT}-byte limit" in str(refused)
    assert fed == stream.pending() < LIMIT + last  # nothing of the refused piece was added


def test_a_refused_stream_still_gives_what_it_holds_and_then_takes_more() -> None:
    stream = sip.SipStream()
    fed, _, refused = _feed_until_refused(stream, SMALL)
    assert refused is not None
    whole = fed // len(SMALL)
    got = 0
    while stream.next() is not None:
        got += 1
    assert got == whole and stream.pending() == fed - whole * len(SMALL)
    stream.feed(SMALL)
    assert stream.next() is not None


@pytest.mark.parametrize("read_size", [1, 1000, 4096, 65536])
def test_a_caller_taking_messages_between_feeds_is_never_refused(read_size: int) -> None:
    """Largest-size messages back to back, read in chunks: what ``next`` leaves is under the limit, so a
    chunk that completes one message and begins the next is taken."""
    data = (LARGE + b"\r\n\r\n" + SMALL) * 6
    stream = sip.SipStream()
    got = 0
    for at in range(0, len(data), read_size):
        stream.feed(data[at:at + read_size])
        while stream.next() is not None:
            got += 1
    assert got == 12 and stream.pending() == 0


def test_a_whole_capture_fed_at_once_is_taken() -> None:
    """One feed of many whole messages (a connection's bytes read from a capture) is no refusal."""
    stream = sip.SipStream()
    stream.feed((SMALL + LARGE) * 20)
    got = 0
    while stream.next() is not None:
        got += 1
    assert got == 40 and stream.pending() == 0


def test_feeding_nothing_is_never_refused() -> None:
    stream = sip.SipStream()
    _feed_until_refused(stream, SMALL)
    stream.feed(b"")
