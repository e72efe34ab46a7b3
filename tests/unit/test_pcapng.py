"""pcapng captures (Wireshark's default) read as classic pcap is: Enhanced and Simple Packet blocks,
bounded and checked block lengths, and a clear error for what is neither."""

from __future__ import annotations

import contextlib
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.errors import DecodeError
from phoneemu.net.capture import read_pcap

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "captures" / "callmanager-regenerated-via-tvs.pcap"


def _block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    return struct.pack("<II", kind, n) + body + struct.pack("<I", n)


def to_pcapng(pcap: bytes, *, simple: bool = False, tsresol: int | None = None) -> bytes:
    """A classic little-endian pcap rewritten as pcapng (one section, one interface)."""
    linktype = struct.unpack_from("<I", pcap, 20)[0]
    out = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    opts = b"" if tsresol is None else struct.pack("<HH", 9, 1) + bytes([tsresol]) + b"\0\0\0"
    end_of_opts = struct.pack("<HH", 0, 0) if opts else b""
    out += _block(1, struct.pack("<HHI", linktype, 0, 65535) + opts + end_of_opts)
    out += _block(0xDEAD, b"an unknown block is skipped")
    pos = 24
    units = 10 ** (tsresol or 6)
    while pos < len(pcap):
        sec, usec, incl, orig = struct.unpack_from("<IIII", pcap, pos)
        data = pcap[pos + 16:pos + 16 + incl]
        if simple:
            out += _block(3, struct.pack("<I", orig) + data)
        else:
            ticks = sec * units + usec * units // 1_000_000
            out += _block(6, struct.pack("<IIIII", 0, ticks >> 32, ticks & 0xFFFFFFFF, incl, orig) + data)
        pos += 16 + incl
    return out


@pytest.mark.parametrize("tsresol", [None, 9])
def test_enhanced_packet_blocks_read_like_the_pcap(tmp_path: Path, tsresol: int | None) -> None:
    ng = tmp_path / "c.pcapng"
    ng.write_bytes(to_pcapng(CAPTURE.read_bytes(), tsresol=tsresol))
    assert list(read_pcap(ng)) == list(read_pcap(CAPTURE))


def test_simple_packet_blocks_carry_no_timestamp(tmp_path: Path) -> None:
    ng = tmp_path / "c.pcapng"
    ng.write_bytes(to_pcapng(CAPTURE.read_bytes(), simple=True))
    got, want = list(read_pcap(ng)), list(read_pcap(CAPTURE))
    assert [p.payload for p in got] == [p.payload for p in want] and {p.ts for p in got} == {0}


@pytest.mark.skipif(shutil.which("editcap") is None, reason="needs Wireshark's editcap")
def test_what_editcap_writes(tmp_path: Path) -> None:
    ng = tmp_path / "c.pcapng"
    subprocess.run(["editcap", "-F", "pcapng", str(CAPTURE), str(ng)], check=True, capture_output=True)
    assert list(read_pcap(ng)) == list(read_pcap(CAPTURE))


def test_bad_block_lengths_and_unknown_magic_are_decode_errors(tmp_path: Path) -> None:
    ng = to_pcapng(CAPTURE.read_bytes())
    f = tmp_path / "bad.pcapng"
    for data, words in [
        (ng[:-3], "truncated"),
        (ng[:28] + struct.pack("<II", 6, 1 << 30), "block length"),
        (ng[:28] + struct.pack("<II", 6, 14), "block length"),
        (ng[:-4] + struct.pack("<I", 1), "trailing length"),
        (ng[:28] + _block(6, struct.pack("<IIIII", 0, 0, 0, 4, 4) + b"abcd"), "interface 0, 0 described"),
    ]:
        f.write_bytes(data)
        with pytest.raises(DecodeError, match=words):
            list(read_pcap(f))
    f.write_bytes(b"\x00" * 32)
    with pytest.raises(DecodeError, match="neither pcap nor pcapng"):
        list(read_pcap(f))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 400))
def test_damaged_pcapng_only_raises_decode_error(tmp_path_factory: pytest.TempPathFactory, junk: bytes,
                                                  cut: int) -> None:
    ng = to_pcapng(CAPTURE.read_bytes())[:2000]
    f = tmp_path_factory.mktemp("ng") / "x.pcapng"
    f.write_bytes(ng[:cut] + junk + ng[cut + len(junk):])
    with contextlib.suppress(DecodeError):
        list(read_pcap(f))


def _relink(pcap: bytes, linktype: int, header: bytes) -> bytes:
    """A LINKTYPE_RAW classic pcap rewritten with a link-layer header before each IP packet."""
    out = bytearray(pcap[:20] + struct.pack("<I", linktype))
    pos = 24
    while pos < len(pcap):
        sec, usec, incl, orig = struct.unpack_from("<IIII", pcap, pos)
        data = pcap[pos + 16:pos + 16 + incl]
        proto = b"\x08\x00" if data[0] >> 4 == 4 else b"\x86\xdd"
        frame = header.replace(b"PP", proto) + data
        out += struct.pack("<IIII", sec, usec, len(frame), orig + len(header)) + frame
        pos += 16 + incl
    return bytes(out)


@pytest.mark.parametrize(("linktype", "header"), [
    (113, b"\x00\x00\x03\x04\x00\x06" + b"\x00" * 8 + b"PP"),    # LINUX_SLL (tcpdump -i any)
    (276, b"PP\x00\x00" + b"\x00\x00\x00\x01\x03\x04\x00\x06" + b"\x00" * 8),  # LINUX_SLL2
])
def test_linux_cooked_captures(tmp_path: Path, linktype: int, header: bytes) -> None:
    f = tmp_path / "any.pcap"
    f.write_bytes(_relink(CAPTURE.read_bytes(), linktype, header))
    assert [p.payload for p in read_pcap(f)] == [p.payload for p in read_pcap(CAPTURE)]


def test_interface_option_overrunning_its_block_is_a_decode_error(tmp_path: Path) -> None:
    # if_tsresol declared with one byte of value, but the block ends right after the option header
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    f = tmp_path / "opt.pcapng"
    f.write_bytes(shb + _block(1, struct.pack("<HHI", 101, 0, 0) + struct.pack("<HH", 9, 1)))
    with pytest.raises(DecodeError, match=r"interface\[0\]\.option.*overruns"):
        list(read_pcap(f))


def test_a_fifo_without_writer_or_a_stalled_pipe_does_not_hang(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import threading

    from phoneemu.net import capture
    fifo = tmp_path / "cap.fifo"
    os.mkfifo(fifo)
    monkeypatch.setattr(capture, "STREAM_TIMEOUT", 0.2)
    with pytest.raises(DecodeError, match=r"no data for 0\.2 s \(no writer"):
        list(read_pcap(fifo))  # a writer never comes
    release = threading.Event()

    def writer() -> None:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # the reader below holds the other end
        try:
            os.write(fd, CAPTURE.read_bytes()[:30])  # a header and part of a record, then silence
            release.wait(5)
        finally:
            os.close(fd)
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so that the writer's open cannot block
    t = threading.Thread(target=writer)
    t.start()
    try:
        with pytest.raises(DecodeError, match=r"no data for 0\.2 s"):
            list(read_pcap(fifo))
    finally:
        release.set()
        t.join(5)
        os.close(rfd)


def test_a_capture_through_a_pipe_reads_like_the_file(tmp_path: Path) -> None:
    import os
    import threading
    fifo = tmp_path / "cap.fifo"
    os.mkfifo(fifo)
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so that the writer's open cannot block for ever
    t = threading.Thread(target=lambda: fifo.write_bytes(CAPTURE.read_bytes()), daemon=True)
    t.start()
    try:
        assert list(read_pcap(fifo)) == list(read_pcap(CAPTURE))
    finally:
        t.join(5)
        os.close(rfd)


def _any_block(draw: st.DrawFn, e: str) -> bytes:
    kind = draw(st.sampled_from([1, 3, 6, 0x0A0D0D0A, 5, 0xDEAD]))
    if kind == 1:
        opts = b"".join(struct.pack(e + "HH", draw(st.sampled_from([0, 9, 2])), draw(st.integers(0, 0xFFFF)))
                        + draw(st.binary(max_size=8)) for _ in range(draw(st.integers(0, 3))))
        body = struct.pack(e + "HHI", draw(st.sampled_from([1, 101, 113, 276, 228, 229, 0])), 0,
                           draw(st.integers(0, 2**32 - 1))) + opts
    elif kind == 6:
        data = draw(st.binary(max_size=60))
        body = struct.pack(e + "IIIII", draw(st.integers(0, 2)), draw(st.integers(0, 2**32 - 1)),
                           draw(st.integers(0, 2**32 - 1)),
                           draw(st.one_of(st.just(len(data)), st.integers(0, 2**32 - 1))), len(data)) + data
    elif kind == 3:
        body = struct.pack(e + "I", draw(st.integers(0, 2**32 - 1))) + draw(st.binary(max_size=60))
    elif kind == 0x0A0D0D0A:
        body = struct.pack(draw(st.sampled_from(["<", ">"])) + "I", 0x1A2B3C4D) + draw(st.binary(max_size=16))
    else:
        body = draw(st.binary(max_size=20))
    body += b"\0" * (-len(body) % 4)
    n = len(body) + 12
    length = draw(st.one_of(st.just(n), st.just(n), st.integers(0, 2**32 - 1), st.sampled_from([0, 8, 12])))
    trailer = draw(st.one_of(st.just(n), st.just(n), st.integers(0, 2**32 - 1)))
    return struct.pack(e + "II", kind, length) + body + struct.pack(e + "I", trailer)


@st.composite
def _pcapng_files(draw: st.DrawFn) -> bytes:
    e = draw(st.sampled_from(["<", ">"]))
    shb = struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1)
    out = struct.pack(e + "II", 0x0A0D0D0A, 28) + shb + struct.pack(e + "I", 28)
    out += b"".join(_any_block(draw, e) for _ in range(draw(st.integers(0, 6))))
    return out[:draw(st.integers(0, len(out)))] if draw(st.booleans()) else out


@settings(max_examples=300, deadline=None)
@given(_pcapng_files())
def test_random_pcapng_blocks_only_raise_decode_error(tmp_path_factory: pytest.TempPathFactory,
                                                      data: bytes) -> None:
    """Random block kinds, lengths (zero, huge, unaligned), trailers, options and truncation: a
    DecodeError or packets, never another exception, and every block consumes bytes (no loop)."""
    f = tmp_path_factory.mktemp("ng") / "x.pcapng"
    f.write_bytes(data)
    with contextlib.suppress(DecodeError):
        assert len(list(read_pcap(f))) <= len(data) // 12


def test_interface_descriptions_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from phoneemu.net import capture
    monkeypatch.setattr(capture, "_PCAPNG_MAX_INTERFACES", 3)
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    f = tmp_path / "many.pcapng"
    f.write_bytes(shb + _block(1, struct.pack("<HHI", 101, 0, 0)) * 4)
    with pytest.raises(DecodeError, match=r"interface\[3\].*more than 3 interfaces"):
        list(read_pcap(f))


def _cut_inside_last_packet(data: bytes, classic: bool) -> bytes:
    """``data`` ending 5 bytes into its last packet's bytes (a tcpdump killed while writing)."""
    return data[:-5] if classic else data[:-9]  # pcapng: also before the block's 4-byte trailer


@pytest.mark.parametrize("classic", [True, False])
def test_a_capture_cut_inside_its_last_packet(tmp_path: Path, classic: bool) -> None:
    """An error naming the file and where, or with ``cut_short`` every packet before it and the same
    error as a warning (as Wireshark opens such a capture)."""
    full = CAPTURE.read_bytes() if classic else to_pcapng(CAPTURE.read_bytes())
    f = tmp_path / "cut.cap"
    f.write_bytes(_cut_inside_last_packet(full, classic))
    with pytest.raises(DecodeError) as ei:
        list(read_pcap(f))
    assert ei.value.file == str(f) and str(f) in str(ei.value) and ei.value.offset is not None
    told: list[DecodeError] = []
    got = list(read_pcap(f, cut_short=told.append))
    assert got == list(read_pcap(CAPTURE))[:-1]
    assert [str(e) for e in told] == [str(ei.value)]
    f.write_bytes(full)
    assert list(read_pcap(f, cut_short=told.append)) == list(read_pcap(CAPTURE)) and len(told) == 1


def test_a_malformed_capture_names_its_file_even_with_cut_short(tmp_path: Path) -> None:
    """Only a file that ends inside a packet is tolerated: a bad length before the end still raises."""
    data = bytearray(CAPTURE.read_bytes())
    struct.pack_into("<I", data, 24 + 8, 1 << 20)  # the first packet's captured length: over snaplen
    f = tmp_path / "bad.pcap"
    f.write_bytes(bytes(data))
    with pytest.raises(DecodeError, match=r"bad\.pcap packet\[0\]\.incl_len at offset 32"):
        list(read_pcap(f, cut_short=lambda exc: None))
