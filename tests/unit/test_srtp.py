"""SRTP (RFC 3711) with the SDES suites of RFC 4568 §6.2: RFC vectors, round trips, refusals."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from phoneemu.crypto import srtp
from phoneemu.crypto.srtp import SrtpContext, derive_session_keys
from phoneemu.errors import DecodeError, EncodeError
from phoneemu.protocols.rtp import RtpPacket, build_rtp, g711_tone

H = bytes.fromhex
KEY = H("E1F97A0D3E018BE0D64FA32C06DE4139")
SALT = H("0EC675AD498AFEEBB6960B3AABE6")
S80, S32 = "AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"
SSRC = 0xCAFEBABE


def _rtp(seq: int, *, ssrc: int = SSRC, payload: bytes | None = None, **kw: object) -> bytes:
    body = g711_tone(seq) if payload is None else payload
    return build_rtp(RtpPacket(payload_type=0, sequence=seq, timestamp=(160 * seq) % 2**32, ssrc=ssrc,
                               payload=body, **kw))  # type: ignore[arg-type]


def _pair(suite: str = S80, **kw: int) -> tuple[SrtpContext, SrtpContext]:
    return SrtpContext(suite, KEY, SALT, **kw), SrtpContext(suite, KEY, SALT, **kw)


def _refused(ctx: SrtpContext, packet: bytes) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        ctx.unprotect(packet)
    assert info.value.fmt == "srtp"
    return info.value


# -- RFC 3711 Appendix B ----------------------------------------------------------------------------------

def test_rfc3711_b2_aes_cm_keystream() -> None:
    """B.2: session key 2B7E..., salt F0F1...FD, SSRC 0, ROC 0, SEQ 0."""
    iv = srtp.packet_iv(H("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"), 0, 0)
    assert iv == H("F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000")
    stream = srtp.aes_cm_keystream(H("2B7E151628AED2A6ABF7158809CF4F3C"), iv, 48)
    assert stream == H("E03EAD0935C95E80E166B16DD92B4EB4"
                       "D23513162B02D0F72A43A2FE4A5F97AB"
                       "41E95B3BB0A2E8DD477901E4FCA894C0")


def test_rfc3711_b3_key_derivation() -> None:
    cipher_key, auth_key, cipher_salt = derive_session_keys(KEY, SALT)
    assert cipher_key == H("C61E7A93744F39EE10734AFE3FF7A087")
    assert cipher_salt == H("30CBBC08863D8C85D49DB34A9AE1")
    assert auth_key == H("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
    assert derive_session_keys(KEY, SALT, index=123456) == (cipher_key, auth_key, cipher_salt)  # kdr 0


def test_key_derivation_rate_and_arguments() -> None:
    assert derive_session_keys(KEY, SALT, index=2**16, kdr=2**16) != derive_session_keys(KEY, SALT)
    assert derive_session_keys(KEY, SALT, index=2**16 - 1, kdr=2**16) == derive_session_keys(KEY, SALT)
    for kw, path in (({"kdr": 3}, "kdr"), ({"kdr": 2**25}, "kdr"), ({"index": 2**48}, "index"),
                     ({"index": -1}, "index")):
        with pytest.raises(EncodeError) as info:
            derive_session_keys(KEY, SALT, **kw)
        assert info.value.path == path
    with pytest.raises(EncodeError, match="master key"):
        derive_session_keys(KEY[:15], SALT)
    with pytest.raises(EncodeError, match="master salt"):
        derive_session_keys(KEY, SALT + b"\x00")


def test_known_answer_packet() -> None:
    """Widely published AES_CM_128_HMAC_SHA1_80 interoperability vector with the B.3 master key
    (plain 800f1234 decafbad cafebabe + 16 x 0xab), cross-checked here with the RFC 3711 §4.1.1 and
    §4.2 formulas below."""
    plain = H("800f1234decafbadcafebabe") + b"\xab" * 16
    protected = SrtpContext(S80, KEY, SALT).protect(plain)
    assert protected == H("800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402b78d6acc99ea179b8dbb")
    # independent recomputation: IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16); tag over header||C||ROC
    k_e, k_a, k_s = derive_session_keys(KEY, SALT)
    iv = ((int.from_bytes(k_s, "big") << 16) ^ (0xCAFEBABE << 64) ^ (0x1234 << 16)).to_bytes(16, "big")
    stream = srtp.aes_cm_keystream(k_e, iv, 16)
    cipher = bytes(a ^ b for a, b in zip(plain[12:], stream, strict=True))
    tag = hmac.new(k_a, plain[:12] + cipher + bytes(4), hashlib.sha1).digest()[:10]
    assert protected == plain[:12] + cipher + tag
    assert SrtpContext(S80, KEY, SALT).unprotect(protected) == plain


# -- round trips and the wire ----------------------------------------------------------------------------

@pytest.mark.parametrize(("suite", "tag_len"), [(S80, 10), (S32, 4)])
def test_round_trip_and_tag_length(suite: str, tag_len: int) -> None:
    tx, rx = _pair(suite)
    assert tx.tag_length == tag_len == srtp.SUITES[suite]
    for seq in range(100, 110):
        plain = _rtp(seq, marker=seq == 100)
        wire = tx.protect(plain)
        assert len(wire) == len(plain) + tag_len
        assert wire[:12] == plain[:12]
        assert wire[12:-tag_len] != plain[12:]
        assert rx.unprotect(wire) == plain


def test_header_with_csrcs_extension_and_padding_is_not_encrypted() -> None:
    tx, rx = _pair()
    plain = _rtp(1, csrcs=(1, 2), extension=(0xBEDE, b"\x10\x55\x00\x00"), padding=4)
    wire = tx.protect(plain)
    header = 12 + 8 + 8
    assert wire[:header] == plain[:header]
    assert wire[header:-10] != plain[header:]
    assert rx.unprotect(wire) == plain


def test_empty_payload() -> None:
    tx, rx = _pair()
    plain = _rtp(5, payload=b"")
    wire = tx.protect(plain)
    assert len(wire) == 22
    assert rx.unprotect(wire) == plain


def test_suites_do_not_interoperate() -> None:
    wire = SrtpContext(S32, KEY, SALT).protect(_rtp(1))
    assert _refused(SrtpContext(S80, KEY, SALT), wire).path == "auth_tag"
    wire = SrtpContext(S80, KEY, SALT).protect(_rtp(1))
    assert _refused(SrtpContext(S32, KEY, SALT), wire).path == "auth_tag"


def test_wrong_key_or_salt() -> None:
    wire = SrtpContext(S80, KEY, SALT).protect(_rtp(1))
    other_key = bytes(16)
    assert _refused(SrtpContext(S80, other_key, SALT), wire).path == "auth_tag"
    assert _refused(SrtpContext(S80, KEY, bytes(14)), wire).path == "auth_tag"


# -- tampering ---------------------------------------------------------------------------------------------

def test_flipping_any_byte_is_refused_by_the_tag() -> None:
    tx, rx = _pair()
    rx.unprotect(tx.protect(_rtp(1)))
    wire = tx.protect(_rtp(2))
    for at in range(len(wire)):
        for mask in (0x01, 0x80) if at else (0x01, 0x0F):  # byte 0: keep version 2
            forged = bytearray(wire)
            forged[at] ^= mask
            err = _refused(rx, bytes(forged))
            assert (err.path, err.message) == ("auth_tag", "authentication tag does not match")
            assert err.offset == len(wire) - 10
    assert rx.unprotect(wire) == _rtp(2)  # the refusals changed nothing


def test_malformed_header_is_refused_before_anything() -> None:
    tx, rx = _pair()
    wire = bytearray(tx.protect(_rtp(1, payload=b"")))
    wire[0] ^= 0x80  # version 0
    err = _refused(rx, bytes(wire))
    assert err.path == "header"
    assert "version" in err.message


def test_extension_reaching_into_the_tag_is_a_header_error() -> None:
    tx, rx = _pair()
    wire = tx.protect(_rtp(1, payload=b"", extension=(0xBEDE, b"")))
    forged = wire[:14] + b"\x00\x01" + wire[16:]  # one word of extension: only the tag follows
    assert _refused(rx, forged).path == "header"


@pytest.mark.parametrize(("suite", "tag_len"), [(S80, 10), (S32, 4)])
def test_truncated(suite: str, tag_len: int) -> None:
    tx, rx = _pair(suite)
    wire = tx.protect(_rtp(1, payload=b""))
    for n in range(12 + tag_len):
        assert _refused(rx, wire[:n]).path == "length"
    wire = tx.protect(_rtp(2))
    for n in range(12 + tag_len, len(wire)):
        assert _refused(rx, wire[:n]).path == "auth_tag"
    assert rx.unprotect(wire) == _rtp(2)


def test_oversized() -> None:
    tx, rx = _pair()
    longest = _rtp(1, payload=bytes(2048 - 12))
    wire = tx.protect(longest)
    assert rx.unprotect(wire) == longest
    assert _refused(rx, wire + b"\x00").path == "length"
    with pytest.raises(DecodeError) as info:
        tx.protect(longest + b"\x00")
    assert info.value.path == "length"
    with pytest.raises(DecodeError) as info:
        tx.protect(b"\x40" + bytes(20))
    assert info.value.path == "header"


# -- replay ------------------------------------------------------------------------------------------------

def test_replay_is_refused() -> None:
    tx, rx = _pair()
    wires = [tx.protect(_rtp(seq)) for seq in range(10, 20)]
    for w in wires:
        rx.unprotect(w)
    err = _refused(rx, wires[4])
    assert err.path == "replay"
    assert err.message == "packet index 14 already received"
    assert _refused(rx, wires[-1]).path == "replay"


def test_out_of_order_within_the_window_then_too_old() -> None:
    tx, rx = _pair()
    wires = {seq: tx.protect(_rtp(seq)) for seq in range(0, 200)}
    rx.unprotect(wires[100])
    rx.unprotect(wires[99])  # late but new: accepted
    rx.unprotect(wires[37])  # 100 - 63: the oldest index inside a window of 64
    err = _refused(rx, wires[36])
    assert err.path == "replay"
    assert err.message.startswith("packet index 36 older than the replay window")
    assert _refused(rx, wires[99]).path == "replay"
    rx.unprotect(wires[199])  # a jump forward slides the window past everything
    assert _refused(rx, wires[100]).path == "replay"
    rx.unprotect(wires[150])
    assert _refused(rx, wires[135]).path == "replay"


def test_small_replay_window() -> None:
    tx, rx = _pair(replay_window=4)
    wires = [tx.protect(_rtp(seq)) for seq in range(10)]
    rx.unprotect(wires[9])
    rx.unprotect(wires[6])
    assert _refused(rx, wires[5]).path == "replay"
    with pytest.raises(EncodeError):
        SrtpContext(S80, KEY, SALT, replay_window=0)


# -- rollover counter --------------------------------------------------------------------------------------

def test_roc_across_sequence_wrap_both_sides() -> None:
    tx, rx = _pair()
    seqs = [65533, 65534, 65535, 0, 1, 2]
    wires = [tx.protect(_rtp(s)) for s in seqs]
    assert tx.roc(SSRC, sending=True) == 1
    for s, w in zip(seqs, wires, strict=True):
        assert rx.unprotect(w) == _rtp(s)
    assert rx.roc(SSRC) == 1
    # the tag after the wrap covers ROC 1 (RFC 3711 §4.2)
    _, k_a, _ = derive_session_keys(KEY, SALT)
    after = wires[3]
    assert after[-10:] == hmac.new(k_a, after[:-10] + (1).to_bytes(4, "big"), hashlib.sha1).digest()[:10]
    # a sender that missed the wrap (ROC 0) is refused, and a late packet from before the wrap still works
    stale = SrtpContext(S80, KEY, SALT).protect(_rtp(3))
    assert _refused(rx, stale).path == "auth_tag"
    late = tx.protect(_rtp(65532))
    assert tx.roc(SSRC, sending=True) == 1
    assert rx.unprotect(late) == _rtp(65532)
    assert rx.roc(SSRC) == 1


def test_receiver_joining_late() -> None:
    tx, rx = _pair()
    for seq in range(39990, 40000):
        tx.protect(_rtp(seq))  # never delivered
    assert rx.roc(SSRC) is None
    seqs = [*range(40000, 65536, 997), 65535, 0, 1, *range(2, 40000, 1999), 39999, 40001]
    for seq in seqs:
        assert rx.unprotect(tx.protect(_rtp(seq))) == _rtp(seq)
    assert tx.roc(SSRC, sending=True) == rx.roc(SSRC) == 1


# -- SSRCs -------------------------------------------------------------------------------------------------

def test_ssrc_bound() -> None:
    tx, rx = _pair(max_ssrcs=2)
    first, second = tx.protect(_rtp(1, ssrc=1)), tx.protect(_rtp(1, ssrc=2))
    with pytest.raises(EncodeError) as info:
        tx.protect(_rtp(1, ssrc=3))
    assert info.value.path == "ssrc"
    third = SrtpContext(S80, KEY, SALT).protect(_rtp(1, ssrc=3))
    rx.unprotect(first)
    rx.unprotect(second)
    err = _refused(rx, third)
    assert (err.path, err.offset) == ("ssrc", 8)
    assert rx.unprotect(tx.protect(_rtp(2, ssrc=1))) == _rtp(2, ssrc=1)
    assert rx.roc(3) is None


def test_ssrcs_have_separate_state() -> None:
    tx, rx = _pair()
    for ssrc in (10, 20):
        rx.unprotect(tx.protect(_rtp(7, ssrc=ssrc)))
    assert _refused(rx, tx.protect(_rtp(7, ssrc=10))).path == "replay"


def test_forgery_from_new_ssrc_creates_no_state() -> None:
    _, rx = _pair(max_ssrcs=1)
    forged = _rtp(1, ssrc=99) + bytes(10)
    assert _refused(rx, forged).path == "auth_tag"
    assert rx.roc(99) is None
    tx = SrtpContext(S80, KEY, SALT)
    rx.unprotect(tx.protect(_rtp(1, ssrc=5)))


# -- construction and SDES keys ----------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "path"), [
    (("AES_CM_128_HMAC_SHA1_81", KEY, SALT), "suite"),
    ((S80, KEY[:8], SALT), "master_key"),
    ((S32, KEY, SALT[:13]), "master_salt"),
])
def test_context_refuses_bad_parameters(args: tuple[str, bytes, bytes], path: str) -> None:
    with pytest.raises(EncodeError) as info:
        SrtpContext(*args)
    assert info.value.path == path


def test_make_master_key() -> None:
    key, salt = srtp.make_master_key()
    assert (len(key), len(salt)) == (srtp.MASTER_KEY_LEN, srtp.MASTER_SALT_LEN) == (16, 14)
    assert srtp.make_master_key() != (key, salt)


def test_inline_key_round_trip() -> None:
    text = srtp.inline_key(KEY, SALT)
    assert not text.startswith("inline:")  # the key info: what follows inline: (sdp.Crypto.key_params)
    assert len(text) == 40
    assert srtp.parse_inline_key(text) == (KEY, SALT)
    assert srtp.parse_inline_key("inline:" + text) == (KEY, SALT)
    assert srtp.parse_inline_key(text + "|2^31") == (KEY, SALT)
    with pytest.raises(EncodeError):
        srtp.inline_key(KEY, SALT[:10])


def test_rfc4568_example_key() -> None:
    key, salt = srtp.parse_inline_key("inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20")
    assert srtp.inline_key(key, salt) == "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR"


@pytest.mark.parametrize("text", [
    "inline:",
    "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVB",  # 39 characters
    "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBRAAAA",  # 44 characters
    "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVB!",
    "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaV==",  # 28 bytes
    "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBé",
    "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32",  # MKI
    "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|forever",
])
def test_parse_inline_key_refuses(text: str) -> None:
    with pytest.raises(DecodeError) as info:
        srtp.parse_inline_key(text)
    assert (info.value.fmt, info.value.path) == ("srtp", "inline")
