"""A SIP message's Content-Length errors say what and where (RFC 3261 §20.14: ``1*DIGIT``;
:mod:`phoneemu.protocols.sip`).

Rule: a value that is not decimal digits "is not a number"; digits over :data:`sip.MAX_BODY` "exceed the
limit", however many (was: "is not a number" beyond six digits, so ``Content-Length: 1000000000000`` was
said not to be a number); leading zeros are digits like any others; every Content-Length error carries the
offset of its header line (was: none)."""

from __future__ import annotations

import pytest

from phoneemu.errors import DecodeError
from phoneemu.protocols import sip

_START = b"REGISTER sip:lab SIP/2.0\r\n"
_AT = len(_START) + len(b"Via: SIP/2.0/TCP h\r\n")  # the Content-Length line's offset


def _parse(value: bytes, body: bytes = b"") -> sip.SipMessage:
    return sip.parse_message(_START + b"Via: SIP/2.0/TCP h\r\nl: " + value + b"\r\n\r\n" + body)


@pytest.mark.parametrize(("value", "said"), [
    (b"1000000000000", "Content-Length 1000000000000 exceeds the 4096-byte limit"),
    (b"4097", "Content-Length 4097 exceeds the 4096-byte limit"),
    (b"9" * 5000, f"Content-Length {'9' * 20}... (5000 digits) exceeds the 4096-byte limit"),
    (b"-5", "Content-Length '-5' is not a number"),
    (b"0x10", "Content-Length '0x10' is not a number"),
])
def test_a_content_length_error_says_what_and_where(value: bytes, said: str) -> None:
    with pytest.raises(DecodeError) as caught:
        _parse(value)
    assert caught.value.path == "Content-Length" and caught.value.offset == _AT, caught.value
    assert str(caught.value).endswith(said), str(caught.value)


def test_leading_zeros_are_digits() -> None:
    assert _parse(b"0000000000003", b"abc").body == b"abc"


def test_a_missing_content_length_names_the_end_of_the_head() -> None:
    head = _START + b"Via: SIP/2.0/TCP h"
    with pytest.raises(DecodeError) as caught:
        sip.parse_message(head + b"\r\n\r\n")
    assert caught.value.offset == len(head) and "no Content-Length" in str(caught.value)
