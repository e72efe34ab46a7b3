"""SDP offer/answer with SDES keys (spec §G.14; RFC 4566, RFC 3264, RFC 4568): build/parse, limits,
malformed lines named by line number and field, the answerer's choice of crypto suite."""

from __future__ import annotations

from dataclasses import replace

import pytest

from phoneemu.errors import DecodeError, EncodeError, SizeLimitError
from phoneemu.protocols import sdp
from phoneemu.protocols.sdp import AudioOffer, Crypto, build_sdp, parse_sdp

KEY80 = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"
KEY32 = "NgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
C80 = Crypto(tag=1, suite="AES_CM_128_HMAC_SHA1_80", key_params=KEY80, lifetime="2^20", mki="1:4")
C32 = Crypto(tag=2, suite="AES_CM_128_HMAC_SHA1_32", key_params=KEY32, session_params=("KDR=1",))
OFFER = AudioOffer(address="192.0.2.10", port=16384, profile="RTP/SAVP", formats=(0, 101), crypto=(C80, C32),
                   session_id=1234, version=1, origin_user="SEP001122334455")
OFFER_WIRE = (
    b"v=0\r\n"
    b"o=SEP001122334455 1234 1 IN IP4 192.0.2.10\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.10\r\n"
    b"t=0 0\r\n"
    b"m=audio 16384 RTP/SAVP 0 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=ptime:20\r\n"
    b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + KEY80.encode() + b"|2^20|1:4\r\n"
    b"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:" + KEY32.encode() + b" KDR=1\r\n"
    b"a=sendrecv\r\n"
)


def test_offer_with_two_crypto_lines_round_trips() -> None:
    assert build_sdp(OFFER) == OFFER_WIRE
    assert parse_sdp(OFFER_WIRE) == OFFER
    assert build_sdp(parse_sdp(OFFER_WIRE)) == OFFER_WIRE


def test_rtp_avp_answer_round_trips() -> None:
    answer = AudioOffer(address="198.51.100.7", port=20000, profile="RTP/AVP", formats=(8,),
                        direction="recvonly")
    wire = build_sdp(answer)
    assert b"a=rtpmap" not in wire and b"a=crypto" not in wire
    assert wire.endswith(b"m=audio 20000 RTP/AVP 8\r\na=ptime:20\r\na=recvonly\r\n")
    assert parse_sdp(wire) == answer


def test_ipv6_round_trips() -> None:
    a = replace(OFFER, address="2001:db8::10")
    wire = build_sdp(a)
    assert b"o=SEP001122334455 1234 1 IN IP6 2001:db8::10\r\n" in wire
    assert b"c=IN IP6 2001:db8::10\r\n" in wire
    assert parse_sdp(wire) == a


def test_lf_only_and_no_final_line_end_are_accepted() -> None:
    lf = OFFER_WIRE.replace(b"\r\n", b"\n")
    assert parse_sdp(lf) == OFFER
    assert parse_sdp(lf.rstrip(b"\n")) == OFFER


def test_rejected_stream_port_zero() -> None:
    a = replace(OFFER, port=0, crypto=())
    assert parse_sdp(build_sdp(a)).port == 0


def test_media_level_wins_and_other_media_are_skipped() -> None:
    wire = (b"v=0\r\no=- 7 7 IN IP4 host.example.org\r\ns=call\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
            b"a=sendonly\r\n"
            b"m=video 5000 RTP/AVP webrtc\r\nc=IN IP4 mcast.example\r\na=crypto:bad\r\nx=ignored?\r\n"
            b"m=audio 6000 UDP/TLS/RTP/SAVP 0 18\r\nc=IN IP4 192.0.2.99\r\ni=line\r\n"
            b"a=crypto:7 AEAD_AES_256_GCM inline:QUJD;inline:REVG|2^31"
            b" UNENCRYPTED_SRTP  FEC_ORDER=FEC_SRTP\r\n"
            b"a=fmtp:18 annexb=no\r\n"
            b"m=audio 7000 RTP/AVP 0\r\nc=IN IP4 192.0.2.100\r\n")
    # the x= line lies in the skipped video section, yet RFC 4566 §5 refuses unknown letters anywhere
    with pytest.raises(DecodeError) as err:
        parse_sdp(wire)
    assert (err.value.line, err.value.path) == (10, "x=")
    got = parse_sdp(wire.replace(b"x=ignored?\r\n", b""))
    assert got == AudioOffer(address="192.0.2.99", port=6000, profile="UDP/TLS/RTP/SAVP", formats=(0, 18),
                             crypto=(Crypto(tag=7, suite="AEAD_AES_256_GCM", key_params="QUJD",
                                            session_params=("UNENCRYPTED_SRTP", "FEC_ORDER=FEC_SRTP")),),
                             session_id=7, version=7, direction="sendonly")


def test_session_level_connection_and_default_direction() -> None:
    wire = b"v=0\no=- 1 2 IN IP6 ::1\ns= \nc=IN IP6 ::1\nt=0 0\nm=audio 4000 RTP/AVP 0\n"
    assert parse_sdp(wire) == AudioOffer(address="::1", port=4000, profile="RTP/AVP", formats=(0,),
                                         session_id=1, version=2)


def test_trailing_white_space_on_attribute_lines_is_dropped() -> None:
    """RFC 4566 §9 allows none, but ``a=sendrecv `` is common: spaces and tabs ending an attribute line are
    dropped (a direction, a value attribute, an attribute left empty after them still refused); not on an
    ``a=crypto`` line (MALFORMED: its keys are read exactly as written)."""
    spaced = OFFER_WIRE.replace(b"a=sendrecv", b"a=sendrecv ").replace(b"a=ptime:20", b"a=ptime:20 \t ")
    assert parse_sdp(spaced) == OFFER
    assert parse_sdp(spaced.replace(b"\r\n", b"\n")) == OFFER
    recv = OFFER_WIRE.replace(b"a=sendrecv\r\n", b"a=recvonly  \r\n")
    assert parse_sdp(recv).direction == "recvonly"
    session = OFFER_WIRE.replace(b"a=sendrecv\r\n", b"").replace(b"t=0 0\r\n", b"t=0 0\r\na=inactive\t\r\n")
    assert parse_sdp(session).direction == "inactive"


@pytest.mark.parametrize(("c_line", "address", "ttl", "count"), [
    (b"c=IN IP4 224.2.1.1/127", "224.2.1.1", 127, 1),
    (b"c=IN IP4 224.2.1.1/127/3", "224.2.1.1", 127, 3),
    (b"c=IN IP4 239.255.255.254/0/2", "239.255.255.254", 0, 2),
    (b"c=IN IP4 232.1.1.1/255/1", "232.1.1.1", 255, 1),
    (b"c=IN IP6 ff15::101", "ff15::101", None, 1),
    (b"c=IN IP6 ff15::101/3", "ff15::101", None, 3),
])
def test_multicast_connection_address_with_ttl_and_count(c_line: bytes, address: str, ttl: int | None,
                                                         count: int) -> None:
    """RFC 4566 §5.7 (RFC 8866 §5.7): a multicast address carries ``/ttl`` (IPv4, 0..255, required) and an
    optional ``/number of addresses`` (at least 1); IPv6 the number only. Session or media level."""
    wire = OFFER_WIRE.replace(b"c=IN IP4 192.0.2.10", c_line)
    got = parse_sdp(wire)
    assert (got.address, got.ttl, got.address_count) == (address, ttl, count)
    assert replace(got, address=OFFER.address, ttl=None, address_count=1) == OFFER
    assert parse_sdp(build_sdp(got)) == got
    media = OFFER_WIRE.replace(b"a=ptime:20\r\n", b"a=ptime:20\r\n" + c_line + b"\r\n")
    got = parse_sdp(media)  # the media level's over the session's unicast one
    assert (got.address, got.ttl, got.address_count) == (address, ttl, count)
    written = c_line.removesuffix(b"/1") if c_line.count(b"/") == 2 else c_line
    assert written + b"\r\n" in build_sdp(got)


def test_an_ipv4_multicast_offer_without_a_ttl_is_refused_when_built_as_when_read() -> None:
    """RFC 4566 §5.7: an IPv4 multicast c= carries its TTL. The value without one is an EncodeError naming
    ``ttl`` (it was built as ``c=IN IP4 224.2.1.1``, which parse_sdp refuses); the wire a DecodeError."""
    with pytest.raises(EncodeError, match=r"ttl missing for the IPv4 multicast address 224\.2") as built:
        build_sdp(replace(OFFER, address="224.2.1.1"))
    assert built.value.path == "ttl"
    with pytest.raises(DecodeError, match="without its /TTL") as read:
        parse_sdp(OFFER_WIRE.replace(b"c=IN IP4 192.0.2.10", b"c=IN IP4 224.2.1.1"))
    assert (read.value.line, read.value.path) == (4, "c=")
    with_ttl = replace(OFFER, address="224.2.1.1", ttl=1)
    assert parse_sdp(build_sdp(with_ttl)) == with_ttl


@pytest.mark.parametrize(("change", "path"), [
    ({"address": "224.2.1.1"}, "ttl"),  # IPv4 multicast: the TTL is required
    ({"address": "239.255.255.255", "address_count": 1}, "ttl"),
    ({"address": "224.2.1.1", "ttl": 256}, "ttl"),
    ({"address": "224.2.1.1", "ttl": True}, "ttl"),
    ({"address": "224.2.1.1", "ttl": 1, "address_count": 0}, "address_count"),
    ({"address": "239.255.255.255", "ttl": 1, "address_count": 2}, "address_count"),
    ({"address": "ff15::1", "ttl": 1}, "ttl"),
    ({"address": "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "address_count": 2}, "address_count"),
    ({"ttl": 1}, "ttl"),  # unicast
    ({"address_count": 2}, "address_count"),
])
def test_bad_multicast_values_are_encode_errors(change: dict[str, object], path: str) -> None:
    with pytest.raises(EncodeError) as err:
        replace(OFFER, **change)  # type: ignore[arg-type]
    assert err.value.path == path, err.value


def test_lifetime_or_mki_alone() -> None:
    base = OFFER_WIRE.replace(b"|2^20|1:4", b"|7:32")
    assert parse_sdp(base).crypto[0] == replace(C80, lifetime="", mki="7:32")
    base = OFFER_WIRE.replace(b"|2^20|1:4", b"|1048576")
    assert parse_sdp(base).crypto[0] == replace(C80, lifetime="1048576", mki="")


def _swap(old: bytes, new: bytes) -> bytes:
    assert old in OFFER_WIRE
    return OFFER_WIRE.replace(old, new, 1)


MALFORMED = [
    (b"", 1, "v="),
    (_swap(b"v=0", b"v=1"), 1, "v="),
    (b"o=- 1 1 IN IP4 192.0.2.1\r\n" + OFFER_WIRE, 1, "v="),
    (_swap(b"s=-\r\n", b"s=-\r\nv=0\r\n"), 4, "v="),
    (_swap(b"s=-\r\n", b"s=-\r\n\r\n"), 4, "sdp"),
    (_swap(b"s=-\r\n", b"s=-\r\nS=x\r\n"), 4, "sdp"),
    (_swap(b"s=-\r\n", b"s=-\r\nsdp\r\n"), 4, "sdp"),
    (_swap(b"s=-\r\n", b"s=-\r\nx=y\r\n"), 4, "x="),
    (_swap(b"s=-", b"s=a\tb"), 3, "s="),
    (_swap(b"s=-", b"s=a\rb"), 3, "s="),
    (_swap(b"s=-", b"s=a\x00b"), 3, "s="),
    (_swap(b"s=-", "s=a\u0085b".encode()), 3, "s="),
    (_swap(b"s=-", b"s=\xff"), 3, "sdp"),
    (_swap(b"s=-", b"s=" + b"x" * 511), 3, "s="),
    (_swap(b"o=SEP001122334455 1234 1 IN IP4 192.0.2.10\r\n", b""), 10, "o="),
    (_swap(b"s=-\r\n", b""), 10, "s="),
    (_swap(b"t=0 0\r\n", b""), 10, "t="),
    (_swap(b"s=-\r\n", b"s=-\r\ns=+\r\n"), 4, "s="),
    (_swap(b"o=SEP001122334455 1234 1", b"o=SEP001122334455 12x4 1"), 2, "o="),
    (_swap(b"o=SEP001122334455 1234 1", b"o=SEP001122334455  1234 1"), 2, "o="),
    (_swap(b"o=SEP001122334455 1234 1 IN IP4", b"o=SEP001122334455 1234 1 ATM IP4"), 2, "o="),
    (_swap(b"1234 1 IN IP4 192.0.2.10", b"1234 1 IN IP4"), 2, "o="),
    (_swap(b"c=IN IP4 192.0.2.10", b"c=IN IP4 pbx.example.com"), 4, "c="),
    (_swap(b"c=IN IP4 192.0.2.10", b"c=IN IP4 224.2.1.1"), 4, "c="),  # IPv4 multicast: TTL required
    (_swap(b"c=IN IP4 192.0.2.10", b"c=IN IP4 224.2.1.1/256"), 4, "c="),
    (_swap(b"c=IN IP4 192.0.2.10", b"c=IN IP4 224.2.1.1/0127"), 4, "c="),
    (_swap(b"c=IN IP4 192.0.2.10", b"c=IN IP4 224.2.1.1/-1"), 4, "c="),
    (_swap(b"c=IN IP4 192.0.2.10", b"c=IN IP4 224.2.1.1//3"), 4, "c="),
    (_swap(b"c=IN IP4 192.0.2.10", b"c=IN IP4 224.2.1.1/127/0"), 4, "c="),
    (_swap(b"c=IN IP4 192.0.2.10", b"c=IN IP4 224.2.1.1/127/"), 4, "c="),
    (_swap(b"c=IN IP4 192.0.2.10", b"c=IN IP4 224.2.1.1/127/3/4"), 4, "c="),
    (_swap(b"c=IN IP4 192.0.2.10", b"c=IN IP4 239.255.255.255/1/2"), 4, "c="),
    (_swap(b"c=IN IP4 192.0.2.10", b"c=IN IP4 192.0.2.10/127"), 4, "c="),  # unicast: no TTL
    (_swap(b"c=IN IP4 192.0.2.10", b"c=IN IP6 ff15::101/127/3"), 4, "c="),  # IPv6: no TTL
    (_swap(b"c=IN IP4 192.0.2.10", b"c=IN IP6 ::1/2"), 4, "c="),
    (_swap(b"c=IN IP4 192.0.2.10", b"c=IN IP4 224.2.1.1 /127"), 4, "c="),
    (_swap(b"c=IN IP4 192.0.2.10", b"c=IN IP4 192.0.2.10 "), 4, "c="),  # trailing space: a= lines only
    (_swap(b"a=sendrecv", b"a=sendrecv \t x"), 11, "a="),  # a tab inside the line: refused as before
    (_swap(b"a=sendrecv", b"a=sendrecv x "), 11, "a="),
    (_swap(b"a=sendrecv", b"a=\t"), 11, "a="),
    (_swap(b"|2^20|1:4", b"|2^20|1:4 "), 9, "a=crypto"),  # a=crypto read as written: no space dropped
    (_swap(b" KDR=1", b" KDR=1\t"), 10, "a="),  # a tab ending a=crypto: a control character, as before
    (_swap(b"inline:WVNf", b"inline: WVNf"), 9, "a=crypto"),
    (_swap(b"c=IN IP4 192.0.2.10", b"c=IN IP6 192.0.2.10"), 4, "c="),
    (_swap(b"c=IN IP4 192.0.2.10", b"c=IN IP6 fe80::1%eth0"), 4, "c="),
    (_swap(b"c=IN IP4 192.0.2.10", b"c=IN IP4 192.0.2.010"), 4, "c="),
    (_swap(b"c=IN IP4 192.0.2.10", b"c=IN IP4"), 4, "c="),
    (_swap(b"c=IN IP4 192.0.2.10\r\n", b""), 5, "c="),
    (_swap(b"t=0 0\r\n", b"t=0 0\r\nc=IN IP4 192.0.2.1\r\n"), 6, "c="),
    (_swap(b"a=ptime:20\r\n", b"a=ptime:20\r\nc=IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.2\r\n"), 10, "c="),
    (_swap(b"m=audio 16384", b"m=audio 65536"), 6, "m="),
    (_swap(b"m=audio 16384", b"m=audio 16384/2"), 6, "m="),
    (_swap(b"m=audio 16384", b"m=audio -1"), 6, "m="),
    (_swap(b"m=audio 16384", b"m=audio \xd9\xa1"), 6, "m="),
    (_swap(b"RTP/SAVP 0 101", b"RTP/SAVP"), 6, "m="),
    (_swap(b"RTP/SAVP 0 101", b"RTP/SAVP 0 128"), 6, "m="),
    (_swap(b"RTP/SAVP 0 101", b"RTP/SAVP 0 PCMU"), 6, "m="),
    (_swap(b"RTP/SAVP 0 101", b"RTP//SAVP 0 101"), 6, "m="),
    (_swap(b"m=audio", b"m=video"), 11, "m="),
    (_swap(b"a=ptime:20\r\n", b"a=ptime:20\r\nt=0 0\r\n"), 9, "t="),
    (_swap(b"a=ptime:20\r\n", b"a=ptime:20\r\no=- 1 1 IN IP4 192.0.2.1\r\n"), 9, "o="),
    (_swap(b"a=ptime:20", b"a=pt ime:20"), 8, "a="),
    (_swap(b"a=sendrecv", b"a=sendrecv:x"), 11, "a=sendrecv"),
    (_swap(b"a=sendrecv", b"a=sendrecv\r\na=inactive"), 12, "a=inactive"),
    (_swap(b"t=0 0\r\n", b"t=0 0\r\na=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:QUJD\r\n"), 6, "a=crypto"),
    (_swap(b"a=crypto:2", b"a=crypto:1"), 10, "a=crypto"),
    (_swap(b"a=crypto:1", b"a=crypto:0"), 9, "a=crypto"),
    (_swap(b"a=crypto:1", b"a=crypto:1234567890"), 9, "a=crypto"),
    (_swap(b"a=crypto:1", b"a=crypto:x"), 9, "a=crypto"),
    (_swap(b"a=crypto:1 AES_CM_128_HMAC_SHA1_80", b"a=crypto:1 AES-CM"), 9, "a=crypto"),
    (_swap(b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:", b"a=crypto:1 AES_CM_128_HMAC_SHA1_80"), 9,
     "a=crypto"),
    (_swap(b"inline:WVNf", b"inline:WV*f"), 9, "a=crypto"),
    (_swap(b"inline:WVNf", b"uri:WVNf"), 9, "a=crypto"),
    (_swap(b"inline:" + KEY80.encode() + b"|", b"inline:|"), 9, "a=crypto"),
    (_swap(b"|2^20|1:4", b"|2^20|1:4;foo:bar"), 9, "a=crypto"),
    (_swap(b"|2^20|1:4", b"|2^20|1:129"), 9, "a=crypto"),
    (_swap(b"|2^20|1:4", b"|2^20|1:0"), 9, "a=crypto"),
    (_swap(b"|2^20|1:4", b"|1:4|2^20"), 9, "a=crypto"),
    (_swap(b"|2^20|1:4", b"|2^x"), 9, "a=crypto"),
    (_swap(b" KDR=1", " KDR=\u00e9".encode()), 10, "a=crypto"),
]


@pytest.mark.parametrize(("wire", "line", "path"), MALFORMED,
                         ids=[f"{i}-line{line}-{path}" for i, (_, line, path) in enumerate(MALFORMED)])
def test_malformed_names_line_and_field(wire: bytes, line: int, path: str) -> None:
    with pytest.raises(DecodeError) as err:
        parse_sdp(wire)
    assert (err.value.line, err.value.path, err.value.fmt) == (line, path, "sdp"), str(err.value)
    assert f"(line {line})" in str(err.value)


def test_over_limits() -> None:
    room = sdp.MAX_SDP - len(OFFER_WIRE)
    full = OFFER_WIRE + b"".join(b"a=x:" + b"y" * 400 + b"\r\n" for _ in range(room // 406))
    full += b"a=" + b"z" * (sdp.MAX_SDP - len(full) - 4) + b"\r\n"
    assert len(full) == sdp.MAX_SDP
    assert parse_sdp(full) == OFFER  # exactly the limit
    with pytest.raises(SizeLimitError) as err:
        parse_sdp(full + b"\n")
    assert err.value.path == "sdp"
    filler = b"a=x\r\n" * (sdp.MAX_LINES - OFFER_WIRE.count(b"\n"))
    assert parse_sdp(OFFER_WIRE + filler) == OFFER  # exactly MAX_LINES lines
    with pytest.raises(SizeLimitError) as err:
        parse_sdp(OFFER_WIRE + filler + b"a=x\r\n")
    assert (err.value.line, err.value.path) == (sdp.MAX_LINES + 1, "sdp")
    long_ok = OFFER_WIRE.replace(b"s=-", b"s=" + b"x" * (sdp.MAX_LINE - 2))
    assert parse_sdp(long_ok) == OFFER
    crypto = b"".join(b"a=crypto:%d AES_CM_128_HMAC_SHA1_32 inline:QUJD\r\n" % t for t in range(3, 10))
    with pytest.raises(DecodeError) as too_many:
        parse_sdp(OFFER_WIRE + crypto)  # the 9th crypto attribute is on line 11 + 7
    assert (too_many.value.line, too_many.value.path) == (18, "a=crypto")
    assert len(parse_sdp(OFFER_WIRE + crypto[: crypto.rindex(b"a=")]).crypto) == sdp.MAX_CRYPTO


BAD_VALUES: list[tuple[dict[str, object], str]] = [
    ({"address": "pbx.example.com"}, "address"),
    ({"address": "fe80::1%eth0"}, "address"),
    ({"address": "192.0.2.1 "}, "address"),
    ({"port": 65536}, "port"),
    ({"port": -1}, "port"),
    ({"port": True}, "port"),
    ({"profile": "RTP/AVP "}, "profile"),
    ({"profile": "RTP\r\nAVP"}, "profile"),
    ({"profile": ""}, "profile"),
    ({"formats": ()}, "formats"),
    ({"formats": (0, 128)}, "formats"),
    ({"crypto": (C80, C80)}, "crypto"),
    ({"crypto": tuple(replace(C32, tag=t) for t in range(1, 10))}, "crypto"),
    ({"session_id": -1}, "session_id"),
    ({"version": 10**20}, "version"),
    ({"origin_user": "a b"}, "origin_user"),
    ({"origin_user": ""}, "origin_user"),
    ({"origin_user": "a\nb"}, "origin_user"),
    ({"direction": "both"}, "direction"),
]


@pytest.mark.parametrize(("change", "path"), BAD_VALUES)
def test_bad_offer_values_are_encode_errors(change: dict[str, object], path: str) -> None:
    with pytest.raises(EncodeError) as err:
        build_sdp(replace(OFFER, **change))  # type: ignore[arg-type]
    assert err.value.path == path


@pytest.mark.parametrize(("change", "path"), [
    ({"tag": 0}, "crypto.tag"),
    ({"tag": 1_000_000_000}, "crypto.tag"),
    ({"suite": "AES CM"}, "crypto.suite"),
    ({"suite": ""}, "crypto.suite"),
    ({"key_params": "QUJD|2^20"}, "crypto.key_params"),
    ({"key_params": "QU JD"}, "crypto.key_params"),
    ({"lifetime": "forever"}, "crypto.lifetime"),
    ({"mki": "1"}, "crypto.mki"),
    ({"mki": "1:200"}, "crypto.mki"),
    ({"session_params": ("KDR=1 x",)}, "crypto.session_params"),
    ({"session_params": ("",)}, "crypto.session_params"),
])
def test_bad_crypto_values_are_encode_errors(change: dict[str, object], path: str) -> None:
    with pytest.raises(EncodeError) as err:
        replace(C80, **change)  # type: ignore[arg-type]
    assert err.value.path == path


def test_build_refuses_what_parse_would_refuse() -> None:
    long_key = Crypto(tag=1, suite="AES_CM_128_HMAC_SHA1_80", key_params="A" * 500)
    with pytest.raises(EncodeError):
        build_sdp(replace(OFFER, crypto=(long_key,)))
    wide = tuple(Crypto(tag=t, suite="S" * 40, key_params="A" * 450) for t in range(1, 9))
    with pytest.raises(EncodeError) as err:
        build_sdp(replace(OFFER, crypto=wide))
    assert err.value.path == "sdp"

