"""Hostile captures: gzip streams, Decryption Secrets Blocks and TLS handshakes that lie.

Rule: only phoneemu errors escape, each naming the file and where (offset, field); memory stays bounded
whatever a length or a nesting claims; the command line answers one line, exit 2, never a traceback."""

from __future__ import annotations

import gzip
import itertools
import struct
import tracemalloc
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneemu.cli import main
from phoneemu.errors import DecodeError, PhoneEmuError
from phoneemu.net.capture import embedded_keylog, read_pcap
from phoneemu.net.tls_decrypt import KEYLOG_LIMIT, hkdf_expand_label, parse_keylog, presented_certificate
from phoneemu.scenario.replay_tvs import TvsCollector
from tests.unit.test_pcapng import _block, to_pcapng

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = (ROOT / "captures" / "callmanager-regenerated-via-tvs.pcap").read_bytes()
HEAD = CAPTURE[:4000]  # the header and a few whole records are enough to exercise every path
NG = to_pcapng(CAPTURE)
SHB_LEN = struct.unpack_from("<I", NG, 4)[0]
HOSTILE = settings(deadline=None, max_examples=60,
                   suppress_health_check=[HealthCheck.function_scoped_fixture])


def _only_named_errors(path: Path) -> None:
    """read_pcap (with and without cut_short) and embedded_keylog of ``path``: a result, or a
    DecodeError naming the file and an offset."""
    for read in (lambda: list(read_pcap(path)), lambda: list(read_pcap(path, cut_short=lambda _e: None)),
                 lambda: embedded_keylog(path)):
        try:
            read()
        except DecodeError as exc:
            assert str(path) in str(exc) and exc.offset is not None, str(exc)


# --- gzip -------------------------------------------------------------------------------------------
def test_a_gzip_inside_a_gzip_is_refused_not_a_recursion_error(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A gzip of a gzip of ... (1200 deep, 30 KB) is one DecodeError, not RecursionError; the command
    line says so in one line, exit 2. (Before: RecursionError, a traceback.)"""
    data = HEAD
    for _ in range(1200):
        data = gzip.compress(data, compresslevel=1)
    f = tmp_path / "nested.pcap.gz"
    f.write_bytes(data)
    with pytest.raises(DecodeError, match="gzip stream inside the gzip stream") as err:
        list(read_pcap(f))
    assert str(f) in str(err.value)
    f.write_bytes(gzip.compress(gzip.compress(HEAD)))  # twice is refused as well (tshark: bad magic)
    with pytest.raises(DecodeError, match="inside the gzip stream"):
        list(read_pcap(f))
    for argv in (["replay", str(f), "--list"], ["wireshark", str(f), "--print"]):
        assert main(argv) == 2
        err_lines = capsys.readouterr().err.strip().splitlines()
        assert len(err_lines) == 1 and "inside the gzip stream" in err_lines[0]


def test_embedded_keylog_names_the_file_of_a_damaged_gzip(tmp_path: Path) -> None:
    """A gzip stream that does not decompress at its very start: the error names the file, as
    read_pcap's does. (Before: ``pcap: gzip at offset 0: ...`` without it.)"""
    f = tmp_path / "damaged.pcapng.gz"
    f.write_bytes(b"\x1f\x8b" + bytes(range(256)))
    with pytest.raises(DecodeError) as err:
        embedded_keylog(f)
    assert str(f) in str(err.value) and err.value.offset == 0


def test_a_gzip_cut_inside_its_header_says_so(tmp_path: Path) -> None:
    """Cut before a whole capture header was decompressed: the gzip stream is named as cut short.
    (Before: "file header needs 24 bytes, got 0", as if the capture were empty.)"""
    f = tmp_path / "cut.pcap.gz"
    for data in (b"\x1f\x8b", gzip.compress(HEAD)[:12], b"\x1f\x8b\x08\x08" + bytes(6) + b"name"):
        f.write_bytes(data)
        with pytest.raises(DecodeError, match="gzip stream ends before its end marker") as err:
            list(read_pcap(f, cut_short=lambda _e: None))
        assert err.value.path == "gzip" and str(f) in str(err.value)


@HOSTILE
@given(cut=st.integers(0, 10_000), png=st.booleans())
def test_a_gzip_cut_at_any_offset(tmp_path: Path, cut: int, png: bool) -> None:
    data = gzip.compress(NG[:4000] if png else HEAD)
    f = tmp_path / "cut.gz"
    f.write_bytes(data[:cut % (len(data) + 1)])
    _only_named_errors(f)


@HOSTILE
@given(body=st.binary(max_size=600), wrapped=st.booleans())
def test_a_gzip_of_random_bytes_or_random_bytes_after_the_magic(tmp_path: Path, body: bytes,
                                                                 wrapped: bool) -> None:
    f = tmp_path / "random.gz"
    f.write_bytes(gzip.compress(body) if wrapped else b"\x1f\x8b" + body)
    _only_named_errors(f)


def test_concatenated_members_and_a_gzip_bomb(tmp_path: Path) -> None:
    """Members one after the other read as one stream; 256 MiB of zeros after a pcap header are read
    with memory bounded (a record header of zeros, then zero-length records)."""
    f = tmp_path / "members.pcap.gz"
    f.write_bytes(gzip.compress(CAPTURE[:3000]) + gzip.compress(CAPTURE[3000:]))
    assert len(list(read_pcap(f))) == len(list(read_pcap_bytes(tmp_path, CAPTURE)))
    member = gzip.compress(bytes(16 << 20), compresslevel=9)
    f.write_bytes(gzip.compress(CAPTURE[:24]) + member * 16)
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError, match="more than 1000 packets"):
            list(read_pcap(f, max_packets=1000))
        embedded_keylog(f)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 8 << 20


def read_pcap_bytes(tmp_path: Path, data: bytes) -> list[object]:
    f = tmp_path / "plain.pcap"
    f.write_bytes(data)
    return list(read_pcap(f))


# --- Decryption Secrets Blocks ----------------------------------------------------------------------
def test_secrets_blocks_keep_memory_bounded(tmp_path: Path) -> None:
    """Secrets blocks of 16 MiB each, one after another before the first packet (a few KB of gzip):
    at most the key-log limit is kept, whole lines, whatever their number. (Before: every block kept,
    then joined: ~290 MiB for eight.)"""
    line = b"CLIENT_RANDOM " + b"00" * 32 + b" " + b"11" * 48 + b"\n"
    keylog = line * ((16 << 20) // len(line))
    dsb = _block(10, struct.pack("<II", 0x544C534B, len(keylog)) + keylog)
    f = tmp_path / "secrets.pcapng.gz"
    f.write_bytes(gzip.compress(NG[:SHB_LEN]) + gzip.compress(dsb, compresslevel=1) * 8
                  + gzip.compress(NG[SHB_LEN:]))
    tracemalloc.start()
    try:
        text = embedded_keylog(f)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert text is not None and len(text) <= KEYLOG_LIMIT
    assert text.rstrip("\n").endswith(line.decode().strip())
    assert len(parse_keylog(text, source=str(f))) == 1  # whole lines only: every one parses
    assert peak < 80 << 20, peak >> 20


def _dsb(kind: int, blen: int, stype: int, slen: int, body: bytes, trailer: int | None) -> bytes:
    return struct.pack("<IIII", kind, blen, stype, slen) + body + struct.pack(
        "<I", blen if trailer is None else trailer)


@HOSTILE
@given(blen=st.one_of(st.integers(0, 200), st.integers(0, 0xFFFFFFFF)),
       stype=st.sampled_from([0x544C534B, 0x57474B4C, 0, 0xFFFFFFFF]),
       slen=st.one_of(st.integers(0, 200), st.integers(0, 0xFFFFFFFF)),
       body=st.binary(max_size=120), trailer=st.none() | st.integers(0, 0xFFFFFFFF),
       where=st.sampled_from(["after the section header", "among the packets", "at the end"]),
       zipped=st.booleans(), kind=st.sampled_from([10, 10, 0x0A000000]))
def test_a_secrets_block_that_lies(tmp_path: Path, blen: int, stype: int, slen: int, body: bytes,
                                   trailer: int | None, where: str, zipped: bool, kind: int) -> None:
    """Its length too small, huge, misaligned or not its trailer's; its secrets length past the block;
    an unknown secrets type; anywhere in the file: a result, or a DecodeError naming file and offset."""
    at = {"after the section header": SHB_LEN, "among the packets": NG.index(b"\x06\0\0\0", 300),
          "at the end": len(NG)}[where]
    data = NG[:at] + _dsb(kind, blen, stype, slen, body, trailer) + NG[at:]
    f = tmp_path / "dsb.pcapng"
    f.write_bytes(gzip.compress(data, compresslevel=1) if zipped else data)
    _only_named_errors(f)


# --- the certificate a TLS server presented ---------------------------------------------------------
_CR, _HS = bytes(range(32)), b"h" * 32
_LOG = parse_keylog(f"SERVER_HANDSHAKE_TRAFFIC_SECRET {_CR.hex()} {_HS.hex()}")


def _record(rtype: int, body: bytes) -> bytes:
    return struct.pack("!BHH", rtype, 0x0303, len(body)) + body


def _hello(kind: int, random: bytes, tail: bytes) -> bytes:
    body = b"\x03\x03" + random + tail
    return _record(22, bytes([kind]) + len(body).to_bytes(3, "big") + body)


def _protect(seq: int, content: bytes, secret: bytes = _HS) -> bytes:
    key = hkdf_expand_label(secret, "key", 16, "sha256")
    iv = int.from_bytes(hkdf_expand_label(secret, "iv", 12, "sha256"), "big")
    header = struct.pack("!BHH", 23, 0x0303, len(content) + 17)
    return header + AESGCM(key).encrypt((iv ^ seq).to_bytes(12, "big"), content + b"\x16", header)


def _certificate(der: bytes, *, size: int | None = None, msg: int | None = None) -> bytes:
    entry = (len(der) if size is None else size).to_bytes(3, "big") + der + b"\0\0"
    body = b"\x00" + len(entry).to_bytes(3, "big") + entry
    return b"\x0b" + (len(body) if msg is None else msg).to_bytes(3, "big") + body


_EXT13 = struct.pack("!HHH", 43, 2, 0x0304)
_SH13 = _hello(2, b"r" * 32, b"\x00" + struct.pack("!HBH", 0x1301, 0, len(_EXT13)) + _EXT13)
_SH12 = _hello(2, b"r" * 32, b"\x00" + struct.pack("!HB", 0x009D, 0))
_CH = _hello(1, _CR, b"\x00")


def _server13(message: bytes, cuts: list[int]) -> bytes:
    """The handshake message split into records at ``cuts``."""
    bounds = [0, *sorted({c % (len(message) + 1) for c in cuts}), len(message)]
    pieces = [message[a:b] for a, b in itertools.pairwise(bounds)]
    return _SH13 + _record(20, b"\x01") + b"".join(_protect(i, p) for i, p in enumerate(pieces))


def test_tls13_certificate_split_across_records_wrong_or_missing_secret() -> None:
    msg = b"\x08\x00\x00\x02\x00\x00" + _certificate(b"DER")
    for cuts in ([], [1], [3, 7], list(range(len(msg)))):
        assert presented_certificate(_CH, _server13(msg, cuts), _LOG) == (b"DER", "")
    wrong = parse_keylog(f"SERVER_HANDSHAKE_TRAFFIC_SECRET {_CR.hex()} {(b'w' * 32).hex()}")
    assert presented_certificate(_CH, _server13(msg, []), wrong)[0] is None
    cert, why = presented_certificate(_CH, _server13(msg, []), parse_keylog(""))
    assert cert is None and "SERVER_HANDSHAKE_TRAFFIC_SECRET" in why


@HOSTILE
@given(der=st.binary(max_size=300), size=st.none() | st.integers(0, 0xFFFFFF),
       msg=st.none() | st.integers(0, 0xFFFFFF), cuts=st.lists(st.integers(0, 400), max_size=4),
       tls13=st.booleans(), cut=st.none() | st.integers(0, 10_000),
       flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), max_size=3))
def test_presented_certificate_of_a_lying_handshake(der: bytes, size: int | None, msg: int | None,
                                                    cuts: list[int], tls13: bool,
                                                    flips: list[tuple[int, int]], cut: int | None) -> None:
    """Huge or zero certificate and message lengths, an entry that is not DER, records cut, bytes
    flipped: a certificate or a reason, never an exception."""
    message = _certificate(der, size=size, msg=msg)
    server = bytearray(_server13(message, cuts) if tls13 else _SH12 + _record(22, message))
    for at, xor in flips:
        server[at % len(server)] ^= xor
    if cut is not None:
        server = server[:cut % (len(server) + 1)]
    cert, why = presented_certificate(_CH, bytes(server), _LOG)
    assert (cert is None) == bool(why)
    if cert is not None:
        assert len(cert) <= 64 * 1024 + (1 << 14) + 2048


def test_collector_bounds_presented_certificates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Connections without a request: at most ``limit`` kept (``2 * limit`` with the phone's), distinct
    certificates at most MAX_CERTIFICATES, the others counted."""
    import phoneemu.scenario.replay_tvs as replay_tvs

    monkeypatch.setattr(replay_tvs, "MAX_CERTIFICATES", 5)
    collector = TvsCollector(_LOG, mac="0A0000000001", limit=4, addresses={"10.0.0.1"})
    for i in range(40):
        server = _server13(_certificate(b"DER%d" % (i % 8)), [])
        client = ("10.0.0.1" if i % 2 else "10.0.0.2", 5000 + i)
        collector._presented(client, ("10.9.9.9", 2445), start=float(i), order=i, client_stream=_CH,
                             server_stream=server)
    assert len(collector.presented) == 8 and len(collector._certificates) == 5
    assert collector.unlisted_presented == 32
    assert all(c.client[0] == "10.0.0.1" for c in collector.presented[4:])


@pytest.mark.parametrize("name,data", [pytest.param(name, data, id=name) for name, data in [
    ("random-after-magic.pcap.gz", b"\x1f\x8b" + bytes(range(256))),
    ("cut.pcapng.gz", gzip.compress(NG)[:3000]),
    ("lying-secrets.pcapng",
     NG[:SHB_LEN] + _dsb(10, 28, 0x544C534B, 0xFFFFFFFF, b"abcd", None) + NG[SHB_LEN:]),
    ("huge-secrets.pcapng.gz", gzip.compress(NG[:SHB_LEN] + struct.pack("<II", 10, 0xFFFFFFF0))),
]])
def test_command_line_on_hostile_captures(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str,
                                          data: bytes) -> None:
    """Exit 0 (a capture cut short: a warning) or 2 with one line naming the file; never a traceback."""
    f = tmp_path / name
    f.write_bytes(data)
    for argv in (["replay", str(f), "--list"], ["replay", str(f), "--mac", "0A0000000301"],
                 ["wireshark", str(f), "--print"], ["inspect", str(f)]):
        try:
            rc = main(argv)
        except PhoneEmuError as exc:  # pragma: no cover - the CLI prints it
            pytest.fail(f"{argv}: escaped {exc!r}")
        err = capsys.readouterr().err
        assert "Traceback" not in err
        if rc == 2:
            assert len(err.strip().splitlines()) == 1 and name in err, (argv, err)
        else:
            assert rc in (0, 1), (argv, rc, err)
