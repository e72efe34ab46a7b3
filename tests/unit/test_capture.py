"""pcap writer/reader: faithful IPv4/IPv6 UDP/TCP packets; malformed files → DecodeError."""

from __future__ import annotations

import contextlib
import itertools
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.errors import DecodeError
from phoneemu.net.capture import ACK, FIN, PSH, SYN, PcapWriter, TcpFlow, read_pcap

C4, S4 = ("127.0.0.1", 40000), ("127.0.0.1", 69)
C6, S6 = ("::1", 40001), ("::1", 2445)


def ones_complement_ok(data: bytes) -> bool:
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def records(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out, pos = [], 24
    while pos < len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        out.append(data[pos + 16 : pos + 16 + incl])
        pos += 16 + incl
    return out


def write_sample(path: Path) -> None:
    with PcapWriter(path) as w:
        w.udp(C4, S4, b"\x00\x01ITLFile.tlv\x00octet\x00", ts=1000.5)
        w.udp(S6, C6, b"odd", ts=1001.25)
        flow = TcpFlow(w, ("127.0.0.1", 50000), ("127.0.0.1", 2445), mss=100)
        flow.open(ts=1002.0)
        flow.client_data(b"A" * 250, ts=1002.1)
        flow.server_data(b"reply", ts=1002.2)
        flow.close(ts=1002.3)
        flow6 = TcpFlow(w, ("::1", 50001), ("::1", 3804))
        flow6.server_data(b"capf hello")
        flow6.close(from_client=False)


def test_round_trip_and_fields(tmp_path: Path) -> None:
    p = tmp_path / "x.pcap"
    write_sample(p)
    pkts = list(read_pcap(p))
    assert pkts[0].proto == "udp" and (pkts[0].src, pkts[0].sport, pkts[0].dst, pkts[0].dport) == (
        "127.0.0.1", 40000, "127.0.0.1", 69)
    assert pkts[0].payload == b"\x00\x01ITLFile.tlv\x00octet\x00" and pkts[0].ts == 1000.5
    assert pkts[1].src == "::1" and pkts[1].payload == b"odd" and pkts[1].ts == 1001.25
    tcp = [p for p in pkts if p.proto == "tcp" and 2445 in (p.sport, p.dport)]
    assert [p.flags for p in tcp[:3]] == [SYN, SYN | ACK, ACK]
    client_data = b"".join(p.payload for p in tcp if p.sport == 50000)
    server_data = b"".join(p.payload for p in tcp if p.sport == 2445)
    assert client_data == b"A" * 250 and server_data == b"reply"
    assert max(len(p.payload) for p in tcp) == 100
    # sequence numbers are contiguous: each data segment starts where the previous ended
    segs = [p for p in tcp if p.sport == 50000 and p.payload]
    for a, b in itertools.pairwise(segs):
        assert b.seq == a.seq + len(a.payload)
    syn = tcp[0]
    assert segs[0].seq == syn.seq + 1
    assert tcp[-3].flags & FIN and tcp[-2].flags & FIN
    assert any(p.flags & PSH for p in tcp)
    six = [p for p in pkts if p.proto == "tcp" and 3804 in (p.sport, p.dport)]
    assert b"".join(p.payload for p in six) == b"capf hello"


def test_checksums_and_lengths(tmp_path: Path) -> None:
    p = tmp_path / "x.pcap"
    write_sample(p)
    for rec in records(p):
        if rec[0] >> 4 == 4:
            ihl = (rec[0] & 0xF) * 4
            assert struct.unpack_from("!H", rec, 2)[0] == len(rec)
            assert ones_complement_ok(rec[:ihl])
            src, dst, proto, l4 = rec[12:16], rec[16:20], rec[9], rec[ihl:]
            pseudo = src + dst + struct.pack("!BBH", 0, proto, len(l4))
        else:
            assert struct.unpack_from("!H", rec, 4)[0] == len(rec) - 40
            src, dst, proto, l4 = rec[8:24], rec[24:40], rec[6], rec[40:]
            pseudo = src + dst + struct.pack("!IxxxB", len(l4), proto)
        if proto == 17:
            assert struct.unpack_from("!H", l4, 4)[0] == len(l4)
        assert ones_complement_ok(pseudo + l4)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed (manual check only)")
def test_tshark_decodes(tmp_path: Path) -> None:
    p = tmp_path / "x.pcap"
    write_sample(p)
    opts = ["-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"]
    fields = ["frame.protocols", "ip.checksum.status", "udp.checksum.status", "tcp.checksum.status"]
    cmd = ["tshark", "-r", str(p), *opts, "-T", "fields", *(x for f in fields for x in ("-e", f))]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert len(rows) == 22
    assert "tftp" in rows[0][0]
    statuses = [v for row in rows for v in row[1:] if v]
    assert statuses and set(statuses) == {"1"}  # 1 = Good checksum


@pytest.mark.parametrize(("mutate", "path"), [
    (lambda d: d[:10], "header"),
    (lambda d: b"\x00\x00\x00\x00" + d[4:], "header.magic"),
    (lambda d: d[:20] + struct.pack("<I", 147) + d[24:], "header.linktype"),
    (lambda d: d[:30], "packet[0]"),
    (lambda d: d[:32] + struct.pack("<I", 10**6) + d[36:], "packet[0].incl_len"),
    (lambda d: d[:32] + struct.pack("<I", 9999) + d[36:], "packet[0].incl_len"),
    (lambda d: d[:40] + b"\x75" + d[41:], "packet[0].ip.version"),
])
def test_malformed_files(tmp_path: Path, mutate: object, path: str) -> None:
    p = tmp_path / "x.pcap"
    write_sample(p)
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(mutate(p.read_bytes()))  # type: ignore[operator]
    with pytest.raises(DecodeError) as ei:
        list(read_pcap(bad))
    assert ei.value.path == path and ei.value.fmt == "pcap"


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=2000), st.binary(min_size=1, max_size=4))
def test_tampered_only_decode_error(tmp_path_factory: pytest.TempPathFactory, at: int, junk: bytes) -> None:
    base = tmp_path_factory.mktemp("fz")
    p = base / "x.pcap"
    write_sample(p)
    data = p.read_bytes()
    at %= len(data)
    (base / "t.pcap").write_bytes(data[:at] + junk + data[at + len(junk):])
    (base / "cut.pcap").write_bytes(data[:at])
    for name in ("t.pcap", "cut.pcap"):
        with contextlib.suppress(DecodeError):
            list(read_pcap(base / name))
