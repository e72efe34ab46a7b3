"""TVS codec and decision helper (spec §E): framing, Cisco §E.5 vectors, typed helpers, answer()."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from phoneemu.errors import DecodeError, EncodeError, ProtocolError
from phoneemu.protocols import tvs
from phoneemu.protocols.tvs import Element, TvsEntry, TvsMessage, TvsMsgType, TvsTag

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "tvs"
CISCO_REQ_PREFIX = bytes.fromhex("57010300000003e9008f01001801") + b"CP-8861-SEPB000B4BA0AEE" + \
    bytes.fromhex("030042") + b"CN=ucm11pu"
CISCO_RESP_PREFIX = bytes.fromhex(
    "570104f7000003e905be070001000205ab308205a73082048fa0030201020213 24".replace(" ", ""))


# --- Cisco vectors ------------------------------------------------------------------------------

def test_query_request_vector_decodes() -> None:
    data = (VECTORS / "query_request.bin").read_bytes()
    assert data[:50] == CISCO_REQ_PREFIX and len(data) == 153
    msg = tvs.decode(data)
    assert msg.msg_type == TvsMsgType.QUERY_REQUEST and msg.session_id == 1001 and msg.reserved == 0
    assert [e.tag for e in msg.elements] == [1, 3, 4, 5]
    req = tvs.parse_request(msg)
    assert isinstance(req, tvs.QueryRequest)
    assert req.device_name == "CP-8861-SEPB000B4BA0AEE"
    assert req.subject.startswith("CN=ucm11pu") and len(req.subject) == 65
    assert len(req.issuer) == 21 and len(req.serial) == 19 and req.serial[0] == 0x24
    assert tvs.encode(msg) == data
    # rebuilding from the typed view with our helper gives the same bytes
    assert tvs.encode(tvs.query_request(1001, req.device_name, req.subject, req.issuer, req.serial)) == data


def test_query_response_vector_decodes_and_matches_request() -> None:
    data = (VECTORS / "query_response.bin").read_bytes()
    assert data[:33] == CISCO_RESP_PREFIX and len(data) == 1480
    msg = tvs.decode(data)
    assert msg.reserved == 0xF7  # CUCM's header byte 3 is accepted
    assert [e.tag for e in msg.elements] == [7, 2, 8, 9]
    req = tvs.decode((VECTORS / "query_request.bin").read_bytes())
    resp = tvs.check_response(req, msg)
    assert resp.valid and resp.roles == (0, 3) and resp.ttl == 86400
    assert resp.certificate is not None and len(resp.certificate) == 1451
    cert = x509.load_der_x509_certificate(resp.certificate)
    q = tvs.parse_request(req)
    assert isinstance(q, tvs.QueryRequest)
    assert cert.serial_number == int.from_bytes(q.serial, "big")
    assert tvs.encode(msg) == data


def test_answer_reproduces_cucm_response_body() -> None:
    """Our server helper, given the vector's certificate, yields the CUCM element order and bytes."""
    req = tvs.decode((VECTORS / "query_request.bin").read_bytes())
    cucm = tvs.decode((VECTORS / "query_response.bin").read_bytes())
    cert = cucm.get(TvsTag.CERTIFICATE)
    assert cert is not None
    seen: list[object] = []

    def lookup(key: bytes | tvs.QueryKey) -> TvsEntry | None:
        seen.append(key)
        return TvsEntry(cert_der=cert, roles=(0, 3), ttl=86400)

    ours = tvs.answer(req, lookup, reserved=0xF7)
    assert tvs.encode(ours) == tvs.encode(cucm)
    q = tvs.parse_request(req)
    assert isinstance(q, tvs.QueryRequest)
    assert seen == [(q.issuer, q.serial, q.subject)]
    # default reserved byte is ours: 0x00
    assert tvs.encode(tvs.answer(req, lookup))[3] == 0


# --- round trips and helpers ---------------------------------------------------------------------

def test_verify_round_trip_found_and_not_found() -> None:
    der = b"\x30\x03\x02\x01\x05"
    req = tvs.verify_request(7, "CP-8861-SEPB000B4BA0AEE", der)
    wire = tvs.encode(req)
    assert wire[:10] == bytes.fromhex("5701010000000007") + len(wire[10:]).to_bytes(2, "big")
    back = tvs.decode(wire)
    assert back == req
    view = tvs.parse_request(back)
    assert view == tvs.VerifyRequest(session_id=7, device_name="CP-8861-SEPB000B4BA0AEE", certificate=der)

    found = tvs.answer(back, lambda k: TvsEntry(cert_der=der, roles=(7,), ttl=60) if k == der else None)
    assert found.msg_type == TvsMsgType.VERIFY_RESPONSE and found.session_id == 7
    assert [e.tag for e in found.elements] == [TvsTag.STATUS, TvsTag.ROLES, TvsTag.TTL]
    r = tvs.check_response(req, tvs.decode(tvs.encode(found)))
    assert r.valid and r.roles == (7,) and r.ttl == 60 and r.certificate is None

    missing = tvs.answer(back, lambda k: None)
    assert missing.elements == (Element(tag=TvsTag.STATUS, value=b"\x01"),)
    r2 = tvs.check_response(req, missing)
    assert not r2.valid and r2.roles == () and r2.ttl is None


def test_query_not_found_is_status_only() -> None:
    req = tvs.query_request(3, "CP-7841-SEP001122334455", "CN=a", "CN=b", b"\x01")
    out = tvs.answer(req, lambda k: None)
    assert out.msg_type == TvsMsgType.QUERY_RESPONSE
    assert tvs.encode(out) == bytes.fromhex("5701040000000003000407000101")


def test_check_response_rejects_wrong_session_or_type() -> None:
    req = tvs.verify_request(5, "CP-8861-SEPB000B4BA0AEE", b"x")
    good = tvs.response(req, status=0, roles=(0,), ttl=1)
    tvs.check_response(req, good)
    wrong_sid = TvsMessage(msg_type=2, session_id=6, elements=good.elements)
    with pytest.raises(ProtocolError, match="session id 6, expected 5"):
        tvs.check_response(req, wrong_sid)
    wrong_type = TvsMessage(msg_type=4, session_id=5, elements=good.elements)
    with pytest.raises(ProtocolError, match="response type 4, expected 2"):
        tvs.check_response(req, wrong_type)
    with pytest.raises(ProtocolError, match="lacks element STATUS"):
        tvs.check_response(req, TvsMessage(msg_type=2, session_id=5))


def test_unknown_elements_survive() -> None:
    msg = TvsMessage(msg_type=2, session_id=1, elements=(
        Element(tag=7, value=b"\0"), Element(tag=0xEE, value=b"hello"), Element(tag=8, value=b"\0\3")))
    assert tvs.decode(tvs.encode(msg)) == msg


def test_device_name_validation_is_lenient_by_default() -> None:
    assert tvs.validate_device_name("CP-8861-SEPB000B4BA0AEE")
    assert tvs.validate_device_name("CP-7841-SEP001122aabbcc", strict=True)
    assert not tvs.validate_device_name("SEP001122334455")
    with pytest.raises(ProtocolError, match="not CP-<model>-SEP"):
        tvs.validate_device_name("CP-8861-SEP0011", strict=True)


def test_bad_element_values() -> None:
    with pytest.raises(DecodeError, match="NUL-terminated") as ei:
        tvs.parse_request(TvsMessage(msg_type=3, session_id=1, elements=(
            Element(tag=1, value=b"\x01CP-1-SEP001122334455"), Element(tag=3, value=b"CN=x"),
            Element(tag=4, value=b"CN=y\0"), Element(tag=5, value=b"\1"))))
    assert ei.value.tag == TvsTag.SUBJECT
    with pytest.raises(DecodeError, match="not ASCII"):
        tvs.parse_request(tvs.TvsMessage(msg_type=1, session_id=1, elements=(
            Element(tag=1, value=b"\x01\xff"), Element(tag=2, value=b"x"))))
    with pytest.raises(DecodeError, match="expected 4"):
        tvs.TvsResponse.from_message(TvsMessage(msg_type=2, session_id=1, elements=(
            Element(tag=7, value=b"\0"), Element(tag=9, value=b"\0\0"))))
    with pytest.raises(ProtocolError, match="not a request"):
        tvs.parse_request(TvsMessage(msg_type=2, session_id=1))


def test_encode_rejects_unencodable() -> None:
    with pytest.raises(EncodeError, match="message type"):
        TvsMessage(msg_type=9, session_id=1)
    with pytest.raises(EncodeError, match="uint32"):
        TvsMessage(msg_type=1, session_id=1 << 32)
    with pytest.raises(EncodeError, match="65535"):
        TvsMessage(msg_type=1, session_id=1, elements=(Element(tag=2, value=b"x" * 40000),) * 2)
    with pytest.raises(EncodeError, match="not ASCII"):
        tvs.verify_request(1, "CP-é", b"")


# --- framing edge cases --------------------------------------------------------------------------

def _frame() -> bytes:
    return tvs.encode(tvs.verify_request(9, "CP-8861-SEPB000B4BA0AEE", b"\x30\x00" * 10))


def test_truncated_header() -> None:
    with pytest.raises(DecodeError, match="truncated header") as ei:
        tvs.decode(_frame()[:7])
    assert ei.value.fmt == "tvs"


@pytest.mark.parametrize("delta", [-1, 1, 100])
def test_body_length_lying(delta: int) -> None:
    f = bytearray(_frame())
    n = int.from_bytes(f[8:10], "big") + delta
    f[8:10] = n.to_bytes(2, "big")
    with pytest.raises(DecodeError, match="body length") as ei:
        tvs.decode(bytes(f))
    assert ei.value.offset == 8


def test_element_overruns_body() -> None:
    body = bytes([2]) + (10).to_bytes(2, "big") + b"abc"
    data = bytes.fromhex("5701010000000001") + len(body).to_bytes(2, "big") + body
    with pytest.raises(DecodeError, match="exceeds remaining") as ei:
        tvs.decode(data)
    assert ei.value.tag == 2 and ei.value.offset == 10


@pytest.mark.parametrize(("pos", "val", "field"), [(0, 0x58, "discriminator"), (1, 2, "version"),
                                                    (2, 5, "msg_type"), (2, 0, "msg_type")])
def test_bad_header_bytes(pos: int, val: int, field: str) -> None:
    f = bytearray(_frame())
    f[pos] = val
    with pytest.raises(ProtocolError) as ei:
        tvs.decode(bytes(f))
    assert ei.value.path is not None and field in ei.value.path and ei.value.offset == pos
    # the frame decoder refuses as soon as the bad byte arrives
    dec = tvs.FrameDecoder()
    with pytest.raises(ProtocolError):
        dec.feed(bytes(f[: pos + 1]))
    with pytest.raises(ProtocolError):  # poisoned
        dec.feed(b"")


def test_frame_decoder_byte_by_byte_and_batches() -> None:
    a, b = _frame(), tvs.encode(tvs.query_request(10, "CP-1-SEP001122334455", "CN=s", "CN=i", b"\7"))
    dec = tvs.FrameDecoder()
    got: list[TvsMessage] = []
    for i in range(len(a + b)):
        got += dec.feed((a + b)[i : i + 1])
        assert dec.buffered <= dec.max_buffered
    assert [m.session_id for m in got] == [9, 10] and dec.buffered == 0
    dec.eof()
    assert [m.session_id for m in tvs.FrameDecoder().feed(a + b + a)] == [9, 10, 9]
    partial = tvs.FrameDecoder()
    assert partial.feed(a[:-1]) == []
    with pytest.raises(DecodeError, match="stream ended inside a frame"):
        partial.eof()


def test_frame_decoder_maximum_frame_and_bound() -> None:
    big = TvsMessage(msg_type=1, session_id=1, elements=(Element(tag=2, value=b"z" * (65535 - 3)),))
    wire = tvs.encode(big)
    assert len(wire) == tvs.MAX_FRAME
    dec = tvs.FrameDecoder()
    assert dec.feed(wire[:-1]) == [] and dec.buffered == tvs.MAX_FRAME - 1
    assert dec.feed(wire[-1:]) == [big]
    # a header claiming 65535 bytes never makes the decoder hold more than one frame
    dec2 = tvs.FrameDecoder()
    assert dec2.feed(bytes.fromhex("5701010000000001ffff") + b"\x02\xff\xfc" + b"y" * 60000) == []
    assert dec2.buffered == 10 + 3 + 60000
    # the frame completes (and is returned), then the next bytes are checked as a new header and
    # refused: the error is held in .error and raised by the next call
    assert len(dec2.feed(b"y" * 10000)) == 1
    assert isinstance(dec2.error, ProtocolError) and "discriminator" in str(dec2.error)
    assert dec2.error.offset == tvs.MAX_FRAME
    assert dec2.buffered == 0
    with pytest.raises(ProtocolError, match="discriminator"):
        dec2.feed(b"")


def test_client_exchange_and_server_connection() -> None:
    der = b"\x30\x03\x02\x01\x07"
    srv = tvs.TvsServerConnection(lambda k: TvsEntry(cert_der=der, roles=(0, 2)) if k == der else None)
    ex = tvs.TvsClientExchange(tvs.verify_request(42, "CP-8861-SEPB000B4BA0AEE", der))
    replies: list[bytes] = []
    for b in ex.request_bytes:
        replies += srv.receive(bytes([b]))
    assert len(replies) == 1 and len(srv.requests) == 1
    assert ex.receive(replies[0][:5]) is None and not ex.done
    r = ex.receive(replies[0][5:])
    assert r is not None and r.valid and r.roles == (0, 2) and r.ttl == tvs.DEFAULT_TTL
    ex.eof()
    with pytest.raises(ProtocolError, match="more than one"):
        ex.receive(replies[0])
    # closed early
    ex2 = tvs.TvsClientExchange(tvs.verify_request(1, "CP-8861-SEPB000B4BA0AEE", der))
    with pytest.raises(DecodeError, match="before a response"):
        ex2.eof()
    # a response sent to the server is refused; strict device names refused when asked
    with pytest.raises(ProtocolError, match="not a request"):
        srv.receive(tvs.encode(tvs.response(tvs.verify_request(1, "x", der), status=1)))
    strict = tvs.TvsServerConnection(lambda k: None, strict_device_name=True)
    with pytest.raises(ProtocolError, match="CP-<model>"):
        strict.receive(tvs.encode(tvs.verify_request(1, "SEP001122334455", der)))


def test_a_response_element_repeated_with_another_value_is_malformed() -> None:
    """Two STATUS elements, valid and invalid: the first one was taken (a "valid" answer). Spec §E.4 says
    nothing of repeats; our convention: the same value repeated is one answer, another value is refused,
    by the phone's client (TvsClientExchange) and ``phoneemu tvs`` alike."""
    der = b"\x30\x03\x02\x01\x07"
    for tag, a, b in ((TvsTag.STATUS, b"\0", b"\1"), (TvsTag.TTL, b"\0\0\0\1", b"\0\0\0\2"),
                      (TvsTag.ROLES, b"\0", b"\3"), (TvsTag.CERTIFICATE, der, der + b"x")):
        msg = TvsMessage(msg_type=4, session_id=5, elements=(
            Element(tag=TvsTag.STATUS, value=b"\0"), Element(tag=tag, value=a), Element(tag=tag, value=b)))
        with pytest.raises(DecodeError, match="different values") as info:
            tvs.TvsResponse.from_message(msg)
        assert info.value.path.endswith(tag.name), info.value
        ex = tvs.TvsClientExchange(tvs.query_request(5, "CP-8861-SEPB000B4BA0AEE", "CN=a", "CN=b", b"\1"))
        with pytest.raises(DecodeError, match="different values"):
            ex.receive(tvs.encode(msg))
    same = TvsMessage(msg_type=2, session_id=1, elements=(
        Element(tag=TvsTag.STATUS, value=b"\0"), Element(tag=TvsTag.STATUS, value=b"\0")))
    assert tvs.TvsResponse.from_message(same).valid
