"""Properties of the TVS and CAPF codecs (spec §E.2, §F.2): round trips, random bytes only ever raise
DecodeError/ProtocolError, buffering stays bounded, chunking does not change the decoded stream."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.errors import DecodeError
from phoneemu.protocols import capf, tvs
from phoneemu.protocols._elements import Element

SETTINGS = settings(max_examples=150, deadline=None)

elements = st.lists(
    st.builds(lambda t, v: Element(tag=t, value=v), st.integers(0, 255), st.binary(max_size=300)),
    max_size=12,
)
tvs_msgs = st.builds(lambda t, s, e, r: tvs.TvsMessage(msg_type=t, session_id=s, elements=tuple(e),
                                                       reserved=r),
                     st.integers(1, 4), st.integers(0, 2**32 - 1), elements, st.integers(0, 255))
capf_msgs = st.builds(lambda c, s, e: capf.CapfMessage(command=c, session_id=s, elements=tuple(e)),
                      st.integers(1, 23), st.integers(0, 2**32 - 1), elements)


@SETTINGS
@given(tvs_msgs)
def test_tvs_round_trip(msg: tvs.TvsMessage) -> None:
    wire = tvs.encode(msg)
    assert tvs.decode(wire) == msg
    assert tvs.encode(tvs.decode(wire)) == wire


@SETTINGS
@given(capf_msgs)
def test_capf_round_trip(msg: capf.CapfMessage) -> None:
    wire = capf.encode(msg)
    assert capf.decode(wire) == msg
    assert capf.encode(capf.decode(wire)) == wire


@SETTINGS
@given(st.lists(tvs_msgs, min_size=1, max_size=4), st.lists(st.integers(1, 200), min_size=1, max_size=30))
def test_tvs_chunking_is_transparent(msgs: list[tvs.TvsMessage], cuts: list[int]) -> None:
    stream = b"".join(tvs.encode(m) for m in msgs)
    dec = tvs.FrameDecoder()
    got: list[tvs.TvsMessage] = []
    pos, i = 0, 0
    while pos < len(stream):
        n = cuts[i % len(cuts)]
        got += dec.feed(stream[pos : pos + n])
        assert dec.buffered <= tvs.MAX_FRAME
        pos += n
        i += 1
    assert got == msgs
    dec.eof()


@SETTINGS
@given(st.lists(capf_msgs, min_size=1, max_size=4), st.integers(1, 64))
def test_capf_chunking_is_transparent(msgs: list[capf.CapfMessage], n: int) -> None:
    stream = b"".join(capf.encode(m) for m in msgs)
    dec = capf.FrameDecoder()
    got: list[capf.CapfMessage] = []
    for pos in range(0, len(stream), n):
        got += dec.feed(stream[pos : pos + n])
    assert got == msgs


def _feed_random(decoder: tvs.FrameDecoder | capf.FrameDecoder, chunks: list[bytes], bound: int) -> None:
    try:
        for c in chunks:
            decoder.feed(c)
            assert decoder.buffered <= bound
        decoder.eof()
    except DecodeError:  # ProtocolError is a DecodeError
        pass


random_chunks = st.lists(st.binary(max_size=400), max_size=8)


@SETTINGS
@given(random_chunks)
def test_tvs_random_bytes_only_raise_decode_errors(chunks: list[bytes]) -> None:
    _feed_random(tvs.FrameDecoder(), chunks, tvs.MAX_FRAME)
    with contextlib.suppress(DecodeError):
        tvs.decode(b"".join(chunks))


@SETTINGS
@given(random_chunks)
def test_capf_random_bytes_only_raise_decode_errors(chunks: list[bytes]) -> None:
    _feed_random(capf.FrameDecoder(), chunks, capf.MAX_FRAME)
    with contextlib.suppress(DecodeError):
        capf.decode(b"".join(chunks))


header_like = st.builds(
    lambda t, s, n, rest: bytes([0x57, 1, t, 0]) + s.to_bytes(4, "big") + n.to_bytes(2, "big") + rest,
    st.integers(0, 6), st.integers(0, 2**32 - 1), st.integers(0, 0xFFFF), st.binary(max_size=600))


@SETTINGS
@given(header_like)
def test_tvs_plausible_frames_decode_or_raise_and_parse_views(data: bytes) -> None:
    """Frames with a valid-looking header: decode either fails with DecodeError or the typed views do."""
    try:
        msg = tvs.decode(data)
    except DecodeError:
        return
    try:
        if msg.msg_type in (1, 3):
            tvs.parse_request(msg)
        else:
            tvs.TvsResponse.from_message(msg)
    except DecodeError:
        pass


@SETTINGS
@given(st.binary(max_size=200))
def test_capf_element_codecs_only_raise_decode_errors(value: bytes) -> None:
    for fn in (capf.decode_certificate, capf.decode_sha2_signed_data, capf.decode_sudi_data,
               capf.decode_cstring):
        with contextlib.suppress(DecodeError):
            fn(value)


@SETTINGS
@given(st.lists(st.binary(max_size=120), max_size=6))
def test_capf_sessions_random_input_only_raise_decode_errors(chunks: list[bytes]) -> None:
    """Random bytes (prefixed by a plausible header) into both state machines."""
    server = capf.CapfServerSession(session_id=1, operation="fetch")
    server.start()
    client = capf.CapfClientSession(device_name="SEP001122334455")
    for machine in (server, client):
        try:
            for c in chunks:
                machine.receive(b"\x55" + c)
        except DecodeError:
            pass


session_elements = st.lists(
    st.builds(lambda t, v: Element(tag=t, value=v),
              st.sampled_from([1, 3, 4, 6, 7, 8, 9, 10, 11, 13, 16, 17, 18, 20]),
              st.one_of(st.binary(max_size=6), st.sampled_from([b"\0", b"\1", b"\3", b"SEP1\0", b"1234\0",
                                                                 b"\x01\x00\x03\x00\x01\x30"]))),
    max_size=6,
)
session_msgs = st.lists(st.builds(lambda c, e: capf.encode(capf.CapfMessage(command=c, session_id=1,
                                                                               elements=tuple(e))),
                                  st.integers(1, 23), session_elements), max_size=6)


@SETTINGS
@given(session_msgs, st.sampled_from(["install", "fetch", "delete", "none"]), st.integers(0, 4))
def test_capf_sessions_structured_input_only_raise_decode_errors(frames: list[bytes], op: str,
                                                                 mode: int) -> None:
    server = capf.CapfServerSession(session_id=1, operation=op, auth_mode=mode, auth_string="1234",
                                    key_type="ec", issue_lsc=lambda name, spki: b"\x30\x00")
    server.start()
    client = capf.CapfClientSession(device_name="SEP001122334455", current_lsc=b"\x30\x00",
                                    generate_key=lambda k, b, c: _EC_KEY)
    for machine in (server, client):
        try:
            for f in frames:
                machine.receive(f)
        except DecodeError:
            pass


_EC_KEY = capf.default_generate_key("ec", 256, "p256")


@SETTINGS
@given(st.lists(header_like, max_size=3))
def test_tvs_server_connection_only_raises_decode_errors(frames: list[bytes]) -> None:
    conn = tvs.TvsServerConnection(lambda key: tvs.TvsEntry(cert_der=b"\x30\x00", roles=(0,)))
    with contextlib.suppress(DecodeError):
        for f in frames:
            for reply in conn.receive(f):
                assert tvs.decode(reply).msg_type in (2, 4)
