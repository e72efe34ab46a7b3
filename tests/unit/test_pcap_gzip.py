"""Gzip-compressed captures (``.pcap.gz``, as tshark reads them) and the TLS key log a pcapng embeds
(Decryption Secrets Block, ``editcap --inject-secrets tls,keys.txt``)."""

from __future__ import annotations

import gzip
import os
import struct
import threading
import tracemalloc
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.errors import DecodeError
from phoneemu.net.capture import embedded_keylog, read_pcap
from tests.unit.test_pcapng import _block, to_pcapng

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "captures" / "callmanager-regenerated-via-tvs.pcap"
MIGRATION = ROOT / "captures" / "migration-itl-signer-unknown.pcap"
MIGRATION_KEYS = ROOT / "captures" / "migration-itl-signer-unknown.keys"
MIGRATION_MAC = "0A0000000501"


def _with_secrets(pcapng: bytes, keylog: bytes) -> bytes:
    """``pcapng`` with a TLS Decryption Secrets Block right after its section header, as editcap puts it."""
    shb_len = struct.unpack_from("<I", pcapng, 4)[0]
    dsb = _block(10, struct.pack("<II", 0x544C534B, len(keylog)) + keylog + b"\0" * (-len(keylog) % 4))
    return pcapng[:shb_len] + dsb + pcapng[shb_len:]


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_a_gzipped_capture_reads_like_the_capture(tmp_path: Path, kind: str) -> None:
    """Recognised by its magic bytes, whatever its name; a file and a pipe alike. (Before: "bad magic
    1f8b0808".)"""
    data = CAPTURE.read_bytes() if kind == "pcap" else to_pcapng(CAPTURE.read_bytes())
    gz = tmp_path / "b4.cap"
    gz.write_bytes(gzip.compress(data))
    want = list(read_pcap(CAPTURE))
    assert list(read_pcap(gz)) == want
    fifo = tmp_path / "cap.fifo"
    os.mkfifo(fifo)
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so that the writer's open cannot block for ever
    stored = gzip.compress(data, compresslevel=0)  # above the pipe's buffer: the writer is still there
    t = threading.Thread(target=lambda: fifo.write_bytes(stored), daemon=True)  # when the reader opens
    t.start()
    try:
        assert list(read_pcap(fifo)) == want
    finally:
        t.join(5)
        os.close(rfd)


def test_a_gzip_stream_cut_short_is_a_capture_cut_short(tmp_path: Path) -> None:
    """Cut inside its compressed data: an error, or with ``cut_short`` the packets before and a warning
    — also when the cut falls on a record boundary (the gzip end marker is missing)."""
    data = gzip.compress(CAPTURE.read_bytes())
    f = tmp_path / "cut.pcap.gz"
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(DecodeError):
        list(read_pcap(f))
    told: list[DecodeError] = []
    got = list(read_pcap(f, cut_short=told.append))
    assert 0 < len(got) < len(list(read_pcap(CAPTURE))) and len(told) == 1
    f.write_bytes(gzip.compress(CAPTURE.read_bytes())[:-8])  # the whole deflate stream, no trailer
    told.clear()
    assert list(read_pcap(f, cut_short=told.append)) == list(read_pcap(CAPTURE))
    assert len(told) == 1 and "cut short" in str(told[0]) and "cut.pcap.gz" in str(told[0])


def test_damaged_or_foreign_gzip_is_a_decode_error(tmp_path: Path) -> None:
    f = tmp_path / "x.gz"
    f.write_bytes(gzip.compress(b"not a capture at all, just text" * 4))
    with pytest.raises(DecodeError, match="bad magic"):
        list(read_pcap(f))
    data = bytearray(gzip.compress(CAPTURE.read_bytes()))
    data[200:260] = b"\xff" * 60  # the deflate stream damaged
    f.write_bytes(bytes(data))
    with pytest.raises(DecodeError, match="gzip"):
        list(read_pcap(f))


def test_a_gzip_bomb_costs_no_memory(tmp_path: Path) -> None:
    """64 MiB of records decompressed from 64 KiB: the packet-count limit stops it on the decompressed
    stream, and memory stays that of one read (not the stream's). The limit is 10,000 packets (160 KB of
    the stream): each record read under tracemalloc costs ~30 us, and the 64 MiB a reader holding the
    stream would take are far above the bound whatever the limit."""
    header = CAPTURE.read_bytes()[:24]
    bomb = tmp_path / "bomb.pcap.gz"
    with gzip.open(bomb, "wb") as out:
        out.write(header)
        zeros = bytes(1 << 20)  # empty records: 16 bytes each
        for _ in range(64):
            out.write(zeros)
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        with pytest.raises(DecodeError, match="more than 10000 packets"):
            list(read_pcap(bomb, max_packets=10_000))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_the_key_log_a_pcapng_embeds(tmp_path: Path) -> None:
    """Its TLS secrets blocks before the first packet, gzipped or not; a secrets block larger than a
    packet block is read (and skipped by the packet reader); none in a classic pcap."""
    keys = MIGRATION_KEYS.read_bytes()
    ng = tmp_path / "m.pcapng"
    ng.write_bytes(_with_secrets(to_pcapng(MIGRATION.read_bytes()), keys))
    assert embedded_keylog(ng) == keys.decode()
    gz = tmp_path / "m.pcapng.gz"
    gz.write_bytes(gzip.compress(ng.read_bytes()))
    assert embedded_keylog(gz) == keys.decode()
    assert embedded_keylog(MIGRATION) is None and embedded_keylog(tmp_path / "absent") is None
    big = keys + b"# padding\n" * 40_000  # 400 KB: above a packet block's bound
    ng.write_bytes(_with_secrets(to_pcapng(MIGRATION.read_bytes()), big))
    assert embedded_keylog(ng) == big.decode()
    assert list(read_pcap(ng)) == list(read_pcap(MIGRATION))


def test_replay_uses_the_embedded_key_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without ``--keylog``, ``replay`` of a pcapng.gz carrying its key log decrypts the TVS exchanges
    and answers as TVS did in the capture, as with the key log given, and says where the secrets came
    from. (Before: "bad magic 1f8b0808", and without gzip no TVS answer.)"""
    capture = tmp_path / "b4.pcapng.gz"
    capture.write_bytes(gzip.compress(_with_secrets(to_pcapng(MIGRATION.read_bytes()),
                                                    MIGRATION_KEYS.read_bytes())))
    assert main(["replay", str(capture), "--list"]) == 0
    out, err = capsys.readouterr()
    assert "2 TVS exchanges decrypted" in out and "give --keylog" not in out
    assert f"using the TLS key log embedded in {capture} (2 secrets)" in err
    rc_given = main(["replay", str(MIGRATION), "--mac", MIGRATION_MAC, "--keylog", str(MIGRATION_KEYS)])
    given = capsys.readouterr().out
    rc = main(["replay", str(capture), "--mac", MIGRATION_MAC])
    embedded = capsys.readouterr().out
    assert "offline TVS: answers from the capture (2 exchanges decrypted)" in embedded
    assert (rc, embedded.replace(str(capture), "CAP")) == (rc_given, given.replace(str(MIGRATION), "CAP"))


def test_wireshark_reads_a_gzipped_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``phoneemu wireshark b4.pcap.gz`` finds the TLS ports in it as in the pcap (tshark reads gzip
    itself). (Before: refused, "bad magic 1f8b0808".)"""
    gz = tmp_path / "b4.pcap.gz"
    gz.write_bytes(gzip.compress(MIGRATION.read_bytes()))
    assert main(["wireshark", str(MIGRATION), "--print"]) == 0
    plain = capsys.readouterr().out
    assert main(["wireshark", str(gz), "--print"]) == 0
    out = capsys.readouterr().out
    ports = [w for w in plain.split() if w.startswith("tcp.port==")]
    assert ports and [w for w in out.split() if w.startswith("tcp.port==")] == ports
