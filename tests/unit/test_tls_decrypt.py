"""Decrypting captured TLS 1.0-1.2 with a key log: real OpenSSL sessions in memory, every suite kind."""

from __future__ import annotations

import contextlib
import datetime as dt
import ssl
import struct
from functools import cache
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.crypto.certs import CertRequest, issue_certificate
from phoneemu.crypto.keys import KeySpec, PrivateKey, generate_key
from phoneemu.errors import DecodeError
from phoneemu.net.tls import client_context_verify_after_handshake, server_context
from phoneemu.net.tls_decrypt import decrypt_tls, hkdf_expand_label, parse_keylog, read_keylog
from tests.helpers import MemoryTlsPair

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
NO_ENCRYPT_THEN_MAC = 0x00080000  # SSL_OP_NO_ENCRYPT_THEN_MAC: Python has no name for it


@cache
def identity(spec: str) -> tuple[PrivateKey, x509.Certificate]:
    key = generate_key(KeySpec.parse(spec))
    req = CertRequest(subject="CN=tvs;O=phoneemu", public_key=key.public_key(), serial=7,
                      not_before=NOW - dt.timedelta(days=1), not_after=NOW + dt.timedelta(days=30))
    return key, issue_certificate(req, issuer_key=key)


def session(tmp_path: Path, version: str, cipher: str, *, etm: bool = True, key: str = "rsa2048",
            messages: tuple[bytes, bytes] = (b"QUERY" * 7, b"ANSWER" * 300)) -> tuple[bytes, bytes, Path]:
    """A TLS session between OpenSSL client and server over memory BIOs: (client bytes, server
    bytes, key log). The client writes messages[0] twice (two records), the server messages[1]."""
    pkey, cert = identity(key)
    keylog = tmp_path / "keys.log"
    tls13 = version == "1.3"
    sctx = server_context(cert, pkey, min_version=version, max_version=version,
                          ciphers=None if tls13 else cipher)
    cctx = client_context_verify_after_handshake(min_version=version, max_version=version,
                                                 ciphers=None if tls13 else cipher, keylog_filename=keylog)
    if not etm:
        cctx.options |= NO_ENCRYPT_THEN_MAC
    pair = MemoryTlsPair(cctx, sctx)
    pair.handshake()
    pair.client.write(messages[0])
    pair.client.write(messages[0])
    pair.pump()
    assert pair.server.read(1 << 16) + pair.server.read(1 << 16) == messages[0] * 2
    pair.server.write(messages[1])
    pair.pump()
    assert pair.client.version() == {"1.0": "TLSv1", "1.2": "TLSv1.2", "1.3": "TLSv1.3"}[version]
    return bytes(pair.to_server), bytes(pair.to_client), keylog


@pytest.mark.parametrize(("version", "cipher", "etm"), [
    ("1.2", "AES256-GCM-SHA384", True),          # cp-8861 against the CUCM 14 list (spec §E.1)
    ("1.2", "ECDHE-RSA-AES128-GCM-SHA256", True),
    ("1.2", "AES256-SHA", True),                 # CBC, encrypt-then-MAC agreed (OpenSSL default)
    ("1.2", "AES256-SHA", False),                # CBC, MAC-then-encrypt
    ("1.2", "AES128-SHA256", False),
    ("1.2", "ECDHE-RSA-AES256-SHA384", True),
    ("1.0", "AES256-SHA", False),                # 7900 series: TLS 1.0, chained IVs
    ("1.0", "AES128-SHA", True),
])
def test_decrypts_both_directions(tmp_path: Path, version: str, cipher: str, etm: bool) -> None:
    client, server, keylog = session(tmp_path, version, cipher, etm=etm)
    out = decrypt_tls(client, server, read_keylog(keylog))
    assert out.client_data == b"QUERY" * 14 and out.server_data == b"ANSWER" * 300
    assert out.description.endswith(cipher)


def test_tls13(tmp_path: Path) -> None:
    """TLS 1.3 (a profile that allows it against the lab TVS): traffic secrets from the key log,
    handshake-protected records skipped, a NewSessionTicket after the handshake ignored."""
    client, server, keylog = session(tmp_path, "1.3", "")
    log = read_keylog(keylog)
    out = decrypt_tls(client, server, log)
    assert out.client_data == b"QUERY" * 14 and out.server_data == b"ANSWER" * 300
    assert out.description.startswith("TLSv1.3 TLS_")
    assert not log.masters and len(log.traffic) == 1
    with pytest.raises(DecodeError, match=r"no TLS 1\.3 traffic secrets"):
        decrypt_tls(client, server, {})
    wrong = parse_keylog("\n".join(f"{label} {random.hex()} {'00' * len(secret)}"
                                    for random, found in log.traffic.items()
                                    for label, secret in found.items()))
    out = decrypt_tls(client, server, wrong)  # no record opens with wrong keys: all look like handshake
    assert out.client_data == b"" and out.server_data == b""


def test_tls13_chacha20_poly1305_records() -> None:
    """Python cannot pick a TLS 1.3 suite, so this session is built by hand: hellos naming
    TLS_CHACHA20_POLY1305_SHA256, one record under handshake keys, then application data."""
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    client_random, traffic = bytes(range(32)), {"CLIENT_TRAFFIC_SECRET_0": b"c" * 32,
                                                "SERVER_TRAFFIC_SECRET_0": b"s" * 32}

    def record(rtype: int, body: bytes) -> bytes:
        return struct.pack("!BHH", rtype, 0x0303, len(body)) + body

    def hello(kind: int, random: bytes, tail: bytes) -> bytes:
        body = b"\x03\x03" + random + tail
        return record(22, bytes([kind]) + len(body).to_bytes(3, "big") + body)

    def protect(secret: bytes, seq: int, content: bytes, rtype: int) -> bytes:
        key = hkdf_expand_label(secret, "key", 32, "sha256")
        iv = int.from_bytes(hkdf_expand_label(secret, "iv", 12, "sha256"), "big")
        inner = content + bytes([rtype]) + bytes(3)  # with zero padding
        header = struct.pack("!BHH", 23, 0x0303, len(inner) + 16)
        return header + ChaCha20Poly1305(key).encrypt((iv ^ seq).to_bytes(12, "big"), inner, header)

    extensions = struct.pack("!HHH", 43, 2, 0x0304)
    server_hello = hello(2, b"r" * 32, b"\x00" + struct.pack("!HB", 0x1303, 0)
                         + struct.pack("!H", len(extensions)) + extensions)
    client = hello(1, client_random, b"\x00") + protect(b"h" * 32, 0, b"finished", 22) \
        + protect(traffic["CLIENT_TRAFFIC_SECRET_0"], 0, b"QUERY", 23) \
        + protect(traffic["CLIENT_TRAFFIC_SECRET_0"], 1, b"AGAIN", 23)
    server = server_hello + protect(traffic["SERVER_TRAFFIC_SECRET_0"], 0, b"ANSWER", 23)
    log = parse_keylog("\n".join(f"{k} {client_random.hex()} {v.hex()}" for k, v in traffic.items()))
    out = decrypt_tls(client, server, log)
    assert (out.client_data, out.server_data) == (b"QUERYAGAIN", b"ANSWER")
    assert out.description == "TLSv1.3 TLS_CHACHA20_POLY1305_SHA256"
    bad = bytearray(client)
    bad[-3] ^= 1  # the second application record: after the first opened, a failure is an error
    with pytest.raises(DecodeError, match=r"client.encrypted_record\[1\]"):
        decrypt_tls(bytes(bad), server, log)


def test_hkdf_expand_label_rfc8448_vector() -> None:
    """RFC 8448 §3 (simple 1-RTT handshake): server handshake key/iv from its traffic secret."""
    secret = bytes.fromhex("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
    assert hkdf_expand_label(secret, "key", 16, "sha256").hex() == "3fce516009c21727d0f2e4e86ee403bc"
    assert hkdf_expand_label(secret, "iv", 12, "sha256").hex() == "5d313eb2671276ee13000b30"


def test_ecdsa_suite(tmp_path: Path) -> None:
    client, server, keylog = session(tmp_path, "1.2", "ECDHE-ECDSA-AES256-GCM-SHA384", key="ec-p256")
    assert decrypt_tls(client, server, read_keylog(keylog)).server_data == b"ANSWER" * 300


def test_wrong_or_missing_key_is_a_clear_error(tmp_path: Path) -> None:
    client, server, keylog = session(tmp_path, "1.2", "AES256-GCM-SHA384")
    secrets = read_keylog(keylog)
    with pytest.raises(DecodeError, match="no key-log entry"):
        decrypt_tls(client, server, {})
    wrong = {r: bytes(48) for r in secrets.masters}
    with pytest.raises(DecodeError, match=r"client.encrypted_record\[0\].*GCM tag mismatch"):
        decrypt_tls(client, server, wrong)


def test_cbc_tamper_is_detected(tmp_path: Path) -> None:
    client, server, keylog = session(tmp_path, "1.2", "AES256-SHA", etm=False)
    bad = bytearray(server)
    bad[-5] ^= 1  # inside the last record's ciphertext
    with pytest.raises(DecodeError, match="does not decrypt"):
        decrypt_tls(client, bytes(bad), read_keylog(keylog))


def test_truncated_stream_ends_at_the_last_whole_record(tmp_path: Path) -> None:
    client, server, keylog = session(tmp_path, "1.2", "AES256-GCM-SHA384")
    out = decrypt_tls(client[:-3], server, read_keylog(keylog))
    assert out.client_data == b"QUERY" * 7  # the second record was cut by the capture


def test_tls13_unknown_suite_is_refused_by_name(tmp_path: Path) -> None:
    pkey, cert = identity("rsa2048")
    sctx = server_context(cert, pkey, min_version="1.3", max_version="1.3")
    cctx = client_context_verify_after_handshake(min_version="1.3", max_version="1.3")
    cin, cout, sin, sout = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c, s = cctx.wrap_bio(cin, cout, server_hostname="x"), sctx.wrap_bio(sin, sout, server_side=True)
    with pytest.raises(ssl.SSLWantReadError):
        c.do_handshake()
    hello = cout.read()
    sin.write(hello)
    with pytest.raises(ssl.SSLWantReadError):
        s.do_handshake()
    with pytest.raises(DecodeError, match=r"no TLS 1\.3 traffic secrets"):
        decrypt_tls(hello, sout.read(), {})


def test_keylog_lines() -> None:
    good = (f"# comment\n\nCLIENT_RANDOM {'ab' * 32} {'cd' * 48}\n"
            f"CLIENT_TRAFFIC_SECRET_0 {'ef' * 32} {'01' * 48}\n")
    log = parse_keylog(good)
    assert log.masters == {bytes.fromhex("ab" * 32): bytes.fromhex("cd" * 48)}
    assert log.traffic == {bytes.fromhex("ef" * 32): {"CLIENT_TRAFFIC_SECRET_0": bytes.fromhex("01" * 48)}}
    with pytest.raises(DecodeError) as info:
        parse_keylog(f"# x\nCLIENT_RANDOM {'ab' * 32} zz\n", source="k.log")
    assert info.value.file == "k.log" and info.value.line == 2


@settings(max_examples=200, deadline=None)
@given(client=st.binary(max_size=300), server=st.binary(max_size=300))
def test_random_bytes_raise_decode_error_only(client: bytes, server: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decrypt_tls(client, server, {})


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_tampered_capture_raises_decode_error_only(tmp_path_factory: pytest.TempPathFactory,
                                                  data: st.DataObject) -> None:
    client, server, keylog = _cbc_session(tmp_path_factory)
    secrets = read_keylog(keylog)
    which = data.draw(st.booleans())
    stream = bytearray(client if which else server)
    pos = data.draw(st.integers(0, len(stream) - 1))
    stream[pos] ^= data.draw(st.integers(1, 255))
    with contextlib.suppress(DecodeError):
        decrypt_tls(bytes(stream) if which else client, server if which else bytes(stream), secrets)


_CACHE: dict[str, tuple[bytes, bytes, Path]] = {}


def _cbc_session(factory: pytest.TempPathFactory) -> tuple[bytes, bytes, Path]:
    if "cbc" not in _CACHE:
        _CACHE["cbc"] = session(factory.mktemp("cbc"), "1.0", "AES256-SHA", etm=False)
    return _CACHE["cbc"]


@pytest.mark.parametrize("version", ["1.2", "1.0"])
def test_null_sha_is_read_in_clear_and_its_mac_checked_with_the_key_log(tmp_path: Path, version: str) -> None:
    """NULL-SHA (CUCM's "Authenticated" security mode, spec §G.14): the application data travels in the
    clear — read without the key log (``read_in_clear``, MAC unchecked) — and with the key log every
    record's MAC is checked (a changed byte is refused). Other suites are not readable in clear."""
    from phoneemu.net.tls_decrypt import read_in_clear

    client, server, keylog = session(tmp_path, version, "NULL-SHA:@SECLEVEL=0")
    assert b"QUERY" * 7 in client and b"ANSWER" * 300 in server  # on the wire as they are
    seen = read_in_clear(client, server)
    assert seen is not None and seen.client_data == b"QUERY" * 14 and seen.server_data == b"ANSWER" * 300
    assert seen.description.endswith("NULL-SHA (in the clear)")
    out = decrypt_tls(client, server, read_keylog(keylog))
    assert out.client_data == b"QUERY" * 14 and out.description.endswith("NULL-SHA")
    bad = bytearray(server)
    bad[-30] ^= 1  # inside the last record's data: the MAC no longer matches
    with pytest.raises(DecodeError, match="MAC mismatch"):
        decrypt_tls(client, bytes(bad), read_keylog(keylog))
    encrypted, encrypted_s, _ = session(tmp_path, "1.2", "AES256-SHA")
    assert read_in_clear(encrypted, encrypted_s) is None
