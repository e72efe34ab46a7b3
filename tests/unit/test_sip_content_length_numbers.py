"""Several Content-Length headers in one SIP message are compared as numbers (:mod:`phoneemu.protocols.sip`
rules; RFC 3261 §7.3.1: its value is a number).

Was: compared as text, so ``Content-Length: 5`` and ``Content-Length: 05`` (or ``l: 05``) in one message
were "conflicting" though they give the same length. Different numbers are still an error, naming the
line that differs.
"""

from __future__ import annotations

import pytest

from phoneemu.errors import DecodeError
from phoneemu.protocols import sip

START = b"SIP/2.0 200 OK\r\n"
BODY = b"hello"


def _message(*length_lines: bytes) -> bytes:
    return START + b"".join(line + b"\r\n" for line in length_lines) + b"\r\n" + BODY


@pytest.mark.parametrize("lines", [
    (b"Content-Length: 5", b"Content-Length: 05"),
    (b"Content-Length: 5", b"l: 05"),
    (b"l: 005", b"content-length: 5"),
    (b"Content-Length: 5", b"Content-Length:  5 "),
    (b"Content-Length: 5", b"Content-Length:\t5"),
    (b"Content-Length: 05", b"Content-Length: 5", b"L: 0005"),
], ids=["leading-zero", "compact-leading-zero", "compact-first", "spaces", "tab", "three"])
def test_the_same_number_written_differently_frames_the_body(lines: tuple[bytes, ...]) -> None:
    msg = sip.parse_message(_message(*lines))
    assert msg.status == 200 and msg.body == BODY
    stream = sip.SipStream()
    stream.feed(_message(*lines) * 2)
    assert [stream.next(), stream.next(), stream.next()] == [msg, msg, None]


def test_different_numbers_still_conflict_naming_the_line() -> None:
    data = _message(b"Content-Length: 5", b"X: y", b"l: 06")
    with pytest.raises(DecodeError, match="conflicting Content-Length") as caught:
        sip.parse_message(data + b"!")
    assert "5 and 6 bytes" in str(caught.value)
    assert caught.value.offset == data.index(b"l: 06")


def test_a_second_one_that_is_no_number_is_said_at_its_line() -> None:
    data = _message(b"Content-Length: 5", b"Content-Length: 5x")
    with pytest.raises(DecodeError, match="is not a number") as caught:
        sip.parse_message(data)
    assert caught.value.offset == data.index(b"Content-Length: 5x")
