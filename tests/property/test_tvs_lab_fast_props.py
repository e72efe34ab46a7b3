"""The TVS codec's quick paths (issue #6: the lab answers one QUERY per phone boot) give what the checked
paths give: the same message from the same frame, the same bytes from the same message, the same error
(message, offset, path, tag) for anything malformed or out of range, and the frame decoder's bounds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.errors import DecodeError, EncodeError, PhoneEmuError
from phoneemu.protocols import tvs
from phoneemu.protocols._elements import Element, FrameBuffer

SETTINGS = settings(max_examples=300, deadline=None)

_elements = st.lists(st.builds(lambda t, v: Element(tag=t, value=v), st.integers(0, 255),
                               st.binary(max_size=40)), max_size=6)
_messages = st.builds(lambda t, s, e, r: tvs.TvsMessage(msg_type=t, session_id=s, elements=tuple(e),
                                                        reserved=r),
                      st.integers(1, 4), st.integers(0, 2**32 - 1), _elements, st.integers(0, 255))


@st.composite
def _frames(draw: st.DrawFn) -> bytes:
    """Well-formed frames, and the same with one byte changed, bytes cut or added: every check is met."""
    wire = bytearray(tvs.encode(draw(_messages)))
    how = draw(st.sampled_from(["whole", "byte", "cut", "extend"]))
    if how == "byte":
        wire[draw(st.integers(0, len(wire) - 1))] = draw(st.integers(0, 255))
    elif how == "cut":
        del wire[draw(st.integers(0, len(wire) - 1)):]
    elif how == "extend":
        wire += draw(st.binary(min_size=1, max_size=5))
    return bytes(wire)


def _outcome(call: Any, *args: Any) -> object:
    """What ``call(*args)`` gives: its value's repr (an enum member and its int differ there), or its
    error's class, text and location."""
    try:
        return repr(call(*args))
    except PhoneEmuError as exc:
        return type(exc), str(exc), exc.offset, exc.path, exc.tag


@SETTINGS
@given(st.one_of(_frames(), st.binary(max_size=60)))
def test_quick_frame_decodes_what_the_checked_decoder_accepts_and_nothing_else(data: bytes) -> None:
    quick = tvs._quick_frame(data)
    try:
        checked = tvs._checked_frame(data, "")
    except DecodeError:
        assert quick is None
        return
    assert quick is not None and repr(quick) == repr(checked) and quick == checked


@SETTINGS
@given(st.one_of(_frames(), st.binary(max_size=60)))
def test_decode_gives_the_checked_decoders_message_or_error(data: bytes) -> None:
    assert _outcome(tvs.decode, data) == _outcome(tvs._checked_frame, data, "")


@SETTINGS
@given(st.lists(st.one_of(_frames(), st.binary(max_size=30)), min_size=1, max_size=4))
def test_frame_decoder_feeds_like_the_general_frame_buffer(reads: list[bytes]) -> None:
    """Read by read, the decoder with its whole-frame shortcut and the general :class:`FrameBuffer` give
    the same messages or errors and keep the same counts and bytes buffered."""
    quick, general = tvs.FrameDecoder(), tvs.FrameDecoder()
    for data in reads:
        assert _outcome(quick.feed, data) == _outcome(FrameBuffer.feed, general, data)
        assert (quick.buffered, quick.stream_offset, repr(quick.error)) == \
            (general.buffered, general.stream_offset, repr(general.error))
        assert quick.buffered <= tvs.MAX_FRAME
    assert _outcome(quick.eof) == _outcome(general.eof)


def _unchecked(msg_type: int, session_id: int, elements: tuple[Element, ...],
               reserved: int) -> tvs.TvsMessage:
    return tvs._message(msg_type, session_id, elements, reserved)


@SETTINGS
@given(_messages)
def test_quick_encode_writes_the_checked_encoders_bytes(msg: tvs.TvsMessage) -> None:
    assert tvs._quick_encode(msg) == tvs._checked_encode(msg) == tvs.encode(msg)


@pytest.mark.parametrize(("msg", "field"), [
    (_unchecked(256, 1, (), 0), "msg_type"),
    (_unchecked(1, 2**32, (), 0), "session_id"),
    (_unchecked(1, -1, (), 0), "session_id"),
    (_unchecked(1, 1, (), 256), "reserved"),
    (_unchecked(1, 1, (tvs._element(2, b"x" * 65536),), 0), "element (tag 2)"),
    (_unchecked(1, 1, (tvs._element(2, b"x" * 40000), tvs._element(2, b"y" * 30000)), 0), "body"),
    (_unchecked(1, 1, (tvs._element(300, b"x"),), 0), None),
])
def test_a_message_out_of_range_is_refused_by_the_checked_encoder(msg: tvs.TvsMessage,
                                                                  field: str | None) -> None:
    """Fields no ``TvsMessage``/``Element`` check let through are written by neither path: the quick one
    steps aside and the checked one names the field, as before (a tag of 300 has no field name there:
    ``bytearray.append`` refuses it, ValueError, as it always did)."""
    assert tvs._quick_encode(msg) is None
    with pytest.raises((EncodeError, ValueError)) as raised:
        tvs.encode(msg)
    if field is not None:
        assert isinstance(raised.value, EncodeError) and raised.value.path == field


def test_a_value_that_is_not_bytes_is_written_by_the_checked_encoder() -> None:
    msg = _unchecked(1, 1, (tvs._element(2, bytearray(b"abc")),), 0)  # type: ignore[arg-type]
    assert tvs._quick_encode(msg) is None
    want = bytes.fromhex("5701010000000001" "0006" "020003616263")
    assert tvs.encode(msg) == tvs._checked_encode(msg) == want


_entries = st.builds(lambda c, r, t: tvs.TvsEntry(cert_der=c, roles=tuple(r), ttl=t), st.binary(max_size=50),
                     st.lists(st.integers(0, 255), max_size=4), st.integers(0, 2**32 - 1))


def _slow_response(request: tvs.VerifyRequest | tvs.QueryRequest, *, status: int, entry: tvs.TvsEntry | None,
                   certificate: bool, reserved: int) -> tvs.TvsMessage:
    """The response as it was built before: every element and the message through their checks."""
    elements = [Element(tag=tvs.TvsTag.STATUS, value=bytes([status]))]
    if status == tvs.TvsStatus.VALID and entry is not None:
        if certificate:
            elements.append(Element(tag=tvs.TvsTag.CERTIFICATE, value=entry.cert_der))
        elements.append(Element(tag=tvs.TvsTag.ROLES, value=bytes(entry.roles)))
        elements.append(Element(tag=tvs.TvsTag.TTL, value=entry.ttl.to_bytes(4, "big")))
    msg_type = tvs.TvsMsgType.VERIFY_RESPONSE if isinstance(request, tvs.VerifyRequest) \
        else tvs.TvsMsgType.QUERY_RESPONSE
    return tvs.TvsMessage(msg_type=msg_type, session_id=request.session_id, elements=tuple(elements),
                          reserved=reserved)


@SETTINGS
@given(st.booleans(), st.integers(0, 2**32 - 1), st.one_of(st.none(), _entries), st.integers(0, 255))
def test_answer_builds_the_message_the_checked_constructors_build(
        query: bool, session_id: int, entry: tvs.TvsEntry | None, reserved: int) -> None:
    request: tvs.VerifyRequest | tvs.QueryRequest = (
        tvs.QueryRequest(session_id=session_id, device_name="CP-8861-SEP001122334455", subject="CN=s",
                         issuer="CN=i", serial=b"\x01")
        if query else tvs.VerifyRequest(session_id=session_id, device_name="CP-8861-SEP001122334455",
                                        certificate=b"\x30\x00"))
    got = tvs.answer(request, lambda _key: entry, reserved=reserved)
    want = _slow_response(request, status=0 if entry is not None else 1, entry=entry, certificate=query,
                          reserved=reserved)
    assert repr(got) == repr(want) and got == want
    assert tvs.encode(got) == tvs._checked_encode(want)


def _verify(session_id: int = 1) -> tvs.VerifyRequest:
    return tvs.VerifyRequest(session_id=session_id, device_name="CP-8861-SEP001122334455", certificate=b"")


@pytest.mark.parametrize(("request_", "options", "path"), [
    (_verify(2**32), {}, "session_id"),
    (_verify(-1), {"status": 1}, "session_id"),
    (_verify(), {"reserved": 256}, "reserved"),
    (_verify(), {"reserved": -1, "status": 1}, "reserved"),
    (_verify(), {"certificate": b"c" * 65536}, "element.value"),
    (_verify(), {"roles": [1] * 65536}, "element.value"),
    (_verify(), {"certificate": b"c" * 65000, "roles": [1] * 600}, "elements"),
])
def test_a_response_out_of_range_is_refused_as_before(request_: tvs.VerifyRequest, options: dict[str, Any],
                                                       path: str) -> None:
    """What the response's fields cannot carry is an EncodeError naming the field, as it was."""
    with pytest.raises(EncodeError) as raised:
        tvs.response(request_, status=options.pop("status", 0), **options)
    assert raised.value.path == path


def _slow_verify(session_id: int, device_name: str, cert_der: bytes) -> tvs.TvsMessage:
    """VERIFY_REQUEST as it was built before: every element and the message through their checks."""
    return tvs.TvsMessage(msg_type=tvs.TvsMsgType.VERIFY_REQUEST, session_id=session_id, elements=(
        Element(tag=tvs.TvsTag.DEVICE_NAME, value=tvs._device_name_value(device_name)),
        Element(tag=tvs.TvsTag.CERTIFICATE, value=bytes(cert_der))))


def _slow_query(session_id: int, device_name: str, subject: str, issuer: str,
                serial: bytes) -> tvs.TvsMessage:
    return tvs.TvsMessage(msg_type=tvs.TvsMsgType.QUERY_REQUEST, session_id=session_id, elements=(
        Element(tag=tvs.TvsTag.DEVICE_NAME, value=tvs._device_name_value(device_name)),
        Element(tag=tvs.TvsTag.SUBJECT, value=tvs._cstring_value(subject, "subject")),
        Element(tag=tvs.TvsTag.ISSUER, value=tvs._cstring_value(issuer, "issuer")),
        Element(tag=tvs.TvsTag.SERIAL, value=bytes(serial))))


_session_ids = st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([-1, 2**32]))
_names = st.one_of(st.just("CP-8861-SEP001122334455"), st.text(max_size=8), st.just("x" * 65534))
_texts = st.one_of(st.text(max_size=8), st.just("CN=\udcff"), st.just("s" * 65000))
_blobs = st.one_of(st.binary(max_size=8), st.just(b"c" * 65000))


@SETTINGS
@given(_session_ids, _names, _blobs)
def test_verify_request_is_built_as_the_checked_constructors_build_it(session_id: int, name: str,
                                                                     cert: bytes) -> None:
    """The same message, or the same error naming the same field (a name not ASCII or with NUL, a value or
    body too large, a session id out of range)."""
    assert _outcome(tvs.verify_request, session_id, name, cert) == \
        _outcome(_slow_verify, session_id, name, cert)


@SETTINGS
@given(_session_ids, _names, _texts, _texts, _blobs)
def test_query_request_is_built_as_the_checked_constructors_build_it(session_id: int, name: str, subject: str,
                                                                    issuer: str, serial: bytes) -> None:
    assert _outcome(tvs.query_request, session_id, name, subject, issuer, serial) == \
        _outcome(_slow_query, session_id, name, subject, issuer, serial)


def _slow_repeats(msg: tvs.TvsMessage) -> None:
    """The repeated-element check as it was: one pass per answer tag."""
    for tag in tvs._ANSWER_TAGS:
        values = {e.value for e in msg.elements if e.tag == tag}
        if len(values) > 1:
            raise tvs._value_error(msg, tag, f"{len(values)} different values (element repeated): the answer "
                                   "contradicts itself")


_answer_elements = st.lists(st.builds(lambda t, v: Element(tag=t, value=v), st.sampled_from([2, 7, 8, 9, 42]),
                                      st.sampled_from([b"", b"\x00", b"\x01", b"\x00\x00\x00\x05"])),
                            max_size=7)


@SETTINGS
@given(_answer_elements)
def test_a_repeated_answer_element_is_judged_as_before(elements: list[Element]) -> None:
    """Accepted or refused alike, and refused naming the same element and count (the first of STATUS,
    CERTIFICATE, ROLES, TTL given two values)."""
    msg = tvs.TvsMessage(msg_type=tvs.TvsMsgType.QUERY_RESPONSE, session_id=1, elements=tuple(elements))
    assert _outcome(tvs._no_conflicting_repeats, msg) == _outcome(_slow_repeats, msg)
