"""The lab's on-path attacker: what it does to TLS records it cannot read, and the phone's rule when a
record from the CallManager fails its check (phoneemu/lab/on_path.py; spec §G.14, seed "Authentication,
Integrity, and Authorization")."""

from __future__ import annotations

import ssl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from phoneemu.lab.on_path import OnPathSeen, SignallingAttacker, alter_tls_record
from phoneemu.phone.call import _exchange_failed
from phoneemu.phone.media_rules import NO_MEDIA


def _record(kind: int, payload: bytes) -> bytes:
    return bytes([kind, 3, 3]) + len(payload).to_bytes(2, "big") + payload


def test_a_readable_record_has_its_sdp_address_rewritten() -> None:
    handshake = _record(22, b"\x14" * 12)
    body = b"SIP/2.0 200 OK\r\n\r\nv=0\r\nc=IN IP4 127.0.0.1\r\n" + b"M" * 20  # NULL-SHA: MAC after it
    data = handshake + _record(23, body)
    out, how = alter_tls_record(data)
    assert "SDP address" in how and len(out) == len(data)
    assert b"c=IN IP4 927.0.0.1" in out
    assert sum(a != b for a, b in zip(out, data, strict=True)) == 1


def test_an_encrypted_record_has_one_byte_flipped_in_its_payload() -> None:
    data = _record(23, bytes(range(40)))
    out, how = alter_tls_record(data)
    diff = [i for i, (a, b) in enumerate(zip(out, data, strict=True)) if a != b]
    assert "flipped" in how and len(diff) == 1 and diff[0] >= 5  # never the record header


def test_records_without_application_data_are_left_alone() -> None:
    data = _record(22, b"hello") + _record(20, b"\x01") + _record(23, b"")
    assert alter_tls_record(data) == (data, "")


@given(st.binary(max_size=300))
def test_any_bytes_change_in_one_place_at_most(data: bytes) -> None:
    out, how = alter_tls_record(data)
    assert len(out) == len(data)
    changed = sum(a != b for a, b in zip(out, data, strict=True))
    assert changed == (1 if how else 0)


def test_a_record_that_fails_its_mac_is_the_tampering_rule() -> None:
    exc = ssl.SSLError(1, "[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] decryption failed or bad record mac")
    d = _exchange_failed(exc)
    assert d.rule == "G.14-signalling-tampered" and not d.accepted and "altered" in d.reason


def test_other_failures_refuse_the_call() -> None:
    assert _exchange_failed(ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version")).rule == \
        "G.14-call-refused"
    assert _exchange_failed(ConnectionResetError("reset")).rule == "G.14-call-refused"
    assert _exchange_failed(TimeoutError()).rule == "G.14-call-refused"


def test_an_attacker_switched_off_changes_nothing_and_records_nothing() -> None:
    attacker = SignallingAttacker()
    assert not attacker.active
    assert attacker.seen("SEP0A0000000001") == OnPathSeen()
    reply = b"SIP/2.0 200 OK\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n"
    from phoneemu.protocols import sip
    request = sip.parse_message(b"INVITE sip:moh@h SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n")
    assert attacker.answer_out(request, reply) == reply


@pytest.mark.parametrize("exc", [
    ssl.SSLError(1, "[SSL: DECRYPTION_FAILED_OR_BAD_RECORD_MAC] decryption failed or bad record mac"),
    ConnectionResetError("reset"),
])
def test_a_call_whose_exchange_failed_carried_no_media(exc: BaseException) -> None:
    """A fleet counts such a call as one without media (JUnit fails it, the summary's suite is none): the
    tampering rule was missing from NO_MEDIA and its calls were counted as RTP."""
    assert _exchange_failed(exc).rule in NO_MEDIA
