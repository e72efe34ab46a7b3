"""Hypothesis properties of the SDP offer/answer codec (spec §G.14; RFC 4566, RFC 3264, RFC 4568).

* ``parse(build(a)) == a`` and ``build(parse(build(a))) == build(a)`` for generated audio streams
  (multicast ones with their TTL and number of addresses); white space ending an attribute line is
  dropped, except on an ``a=crypto`` line (refused);
* build and parse agree on connection addresses: any address with any TTL and number of addresses (given
  or not) is refused as a value (EncodeError naming ``ttl`` or ``address_count``) or round trips;
* random bytes, and random line mutations of a valid description, only ever raise DecodeError, and
  every DecodeError names a line and a field;
* what parses builds, and builds back to what parses the same.
"""

from __future__ import annotations

import ipaddress
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneemu.errors import DecodeError, EncodeError
from phoneemu.protocols.media import SRTP_PREFERENCE
from phoneemu.protocols.sdp import DIRECTIONS, AudioOffer, Crypto, build_sdp, parse_sdp

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BASE64 = string.ascii_letters + string.digits + "+/="
VISIBLE = "".join(chr(c) for c in range(0x21, 0x7F))
TOKEN = "".join(c for c in VISIBLE if c not in '"(),/:;<=>?@[\\]{}')

cryptos = st.builds(
    Crypto,
    tag=st.integers(1, 999_999_999),
    suite=st.one_of(st.sampled_from([*"AEAD_AES_256_GCM", "AEAD_AES_128_GCM"]),
                    st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=30)),
    key_params=st.text(BASE64, min_size=1, max_size=60),
    lifetime=st.one_of(st.just(""), st.integers(0, 2**48).map(str),
                       st.integers(0, 48).map(lambda n: f"2^{n}")),
    mki=st.one_of(st.just(""),
                  st.builds(lambda v, n: f"{v}:{n}", st.integers(0, 2**32), st.integers(1, 128))),
    session_params=st.lists(st.text(VISIBLE, min_size=1, max_size=20), max_size=3).map(tuple),
)
@st.composite
def connections(draw: st.DrawFn) -> dict[str, object]:
    """An address with what RFC 4566 §5.7 gives it: a multicast IPv4 one its TTL, any multicast one a
    number of addresses (as long as they stay multicast), a unicast one neither."""
    ip = draw(st.one_of(st.ip_addresses(), st.ip_addresses(network="224.0.0.0/4"),
                        st.ip_addresses(network="ff00::/8")))
    out: dict[str, object] = {"address": str(ip)}
    if ip.is_multicast:
        if ip.version == 4:
            out["ttl"] = draw(st.integers(0, 255))
        room = int(ipaddress.ip_network("224.0.0.0/4" if ip.version == 4 else "ff00::/8").broadcast_address) \
            - int(ip) + 1
        out["address_count"] = draw(st.integers(1, min(room, 2**32)))
    return out


offers = st.builds(
    lambda where, **kw: AudioOffer(**where, **kw),
    where=connections(),
    port=st.integers(0, 65535),
    profile=st.one_of(st.sampled_from(["RTP/AVP", "RTP/SAVP", "UDP/TLS/RTP/SAVP"]),
                      st.lists(st.text(TOKEN, min_size=1, max_size=8), min_size=1, max_size=3).map("/".join)),
    formats=st.lists(st.integers(0, 127), min_size=1, max_size=8).map(tuple),
    crypto=st.lists(cryptos, max_size=4, unique_by=lambda c: c.tag).map(tuple),
    session_id=st.integers(0, 10**20 - 1),
    version=st.integers(0, 10**20 - 1),
    origin_user=st.one_of(st.just("-"), st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zs")),
                                                 min_size=1, max_size=16)),
    direction=st.sampled_from(DIRECTIONS),
)

ADDRESSES = st.one_of(st.ip_addresses(), st.ip_addresses(network="224.0.0.0/4"),
                      st.ip_addresses(network="ff00::/8"))


@SETTINGS
@given(ADDRESSES, st.one_of(st.none(), st.integers(-1, 256)), st.one_of(st.just(1), st.integers(0, 2**33)))
def test_what_builds_a_connection_address_parses_back(ip: object, ttl: int | None, count: int) -> None:
    """RFC 4566 §5.7, whatever the caller gives: an IPv4 multicast address without its TTL was built as
    ``c=IN IP4 224.x.y.z``, which parse_sdp refuses; now the value is refused, naming ``ttl``."""
    try:
        a = AudioOffer(address=str(ip), port=9, profile="RTP/AVP", formats=(0,), ttl=ttl, address_count=count)
    except EncodeError as exc:
        assert exc.path in ("ttl", "address_count"), exc
        return
    assert parse_sdp(build_sdp(a)) == a


VALID = build_sdp(AudioOffer(
    address="192.0.2.10", port=16384, profile="RTP/SAVP", formats=(0, 8, 101), session_id=99, version=3,
    crypto=(Crypto(tag=1, suite=SRTP_PREFERENCE[0], key_params="WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
                   lifetime="2^20", mki="1:4"),
            Crypto(tag=2, suite=SRTP_PREFERENCE[1], key_params="NgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                   session_params=("KDR=1",))))) + b"m=video 0 RTP/AVP 97\r\nc=IN IP4 192.0.2.10\r\n"


def _parses_or_decode_error(data: bytes) -> AudioOffer | None:
    """The parsed offer, or None after checking the DecodeError names its line and field."""
    try:
        got = parse_sdp(data)
    except DecodeError as exc:
        assert exc.fmt == "sdp"
        assert exc.path, exc
        assert exc.line is not None or exc.path == "sdp", exc
        return None
    try:  # whatever parses is a valid value that builds and parses back the same
        assert parse_sdp(build_sdp(got)) == got
    except EncodeError as exc:  # only o= can grow: the c= address replaces a shorter o= one
        assert exc.path in ("o=", "sdp"), exc
    return got


@SETTINGS
@given(offers)
def test_round_trip(a: AudioOffer) -> None:
    wire = build_sdp(a)
    assert parse_sdp(wire) == a
    assert build_sdp(parse_sdp(wire)) == wire
    assert parse_sdp(wire.replace(b"\r\n", b"\n")) == a
    lines = wire.split(b"\r\n")
    spaced = [line + b" \t" if line.startswith(b"a=") and not line.startswith(b"a=crypto:") else line
              for line in lines]
    assert parse_sdp(b"\r\n".join(spaced)) == a  # white space ending an attribute line: dropped
    if a.crypto:  # ... but not on a=crypto lines: read as written
        crypto_spaced = [line + b" " if line.startswith(b"a=crypto:") else line for line in lines]
        with pytest.raises(DecodeError):
            parse_sdp(b"\r\n".join(crypto_spaced))


@SETTINGS
@given(st.binary(max_size=600))
def test_random_bytes_only_raise_decode_error(data: bytes) -> None:
    _parses_or_decode_error(data)
    _parses_or_decode_error(b"v=0\r\n" + data)


_LINE_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:QUJD", "c=IN IP6 ::1", "c=IN IP4 x",
                     "c=IN IP4 224.2.1.1/127", "c=IN IP4 224.2.1.1/127/3", "c=IN IP4 224.2.1.1",
                     "c=IN IP6 ff15::1/2", "c=IN IP4 192.0.2.1/1", "a=sendrecv ", "a=recvonly\t",
                     "a=crypto:4 AES_CM_128_HMAC_SHA1_32 inline:QUJD ",
                     "m=audio 1 RTP/AVP 0", "a=sendonly", "a=inactive", "m=video 9 RTP/AVP 96",
                     "o=- 1 1 IN IP4 h",
                     "s=-", "t=0 0", "v=0", "a=crypto:1 X inline:QUJD", "", "a=", "b=AS:64", "z=0 0"]),
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    lines = VALID.decode().split("\r\n")[:-1]
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "duplicate", "insert", "replace", "swap", "char", "cut"]))
        i = draw(st.integers(0, len(lines) - 1)) if lines else 0
        if op == "delete" and lines:
            del lines[i]
        elif op == "duplicate" and lines:
            lines.insert(i, lines[i])
        elif op == "insert":
            lines.insert(i, draw(_LINE_TEXT))
        elif op == "replace" and lines:
            lines[i] = draw(_LINE_TEXT)
        elif op == "swap" and lines:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "char" and lines and lines[i]:
            k = draw(st.integers(0, len(lines[i]) - 1))
            lines[i] = lines[i][:k] + draw(st.characters()) + lines[i][k + 1:]
        elif op == "cut" and lines and lines[i]:
            lines[i] = lines[i][:draw(st.integers(0, len(lines[i]) - 1))]
    end = draw(st.sampled_from(["\r\n", "\n"]))
    return "".join(line + end for line in lines).encode("utf-8", "surrogatepass")


@SETTINGS
@given(mutated())
def test_mutated_sdp_only_raises_decode_error(data: bytes) -> None:
    _parses_or_decode_error(data)


@SETTINGS
@given(st.binary(min_size=1, max_size=8), st.integers(0, len(VALID)))
def test_spliced_bytes_only_raise_decode_error(junk: bytes, at: int) -> None:
    _parses_or_decode_error(VALID[:at] + junk + VALID[at:])
    _parses_or_decode_error(VALID[:at] + junk + VALID[at + len(junk):])
