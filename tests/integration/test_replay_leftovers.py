"""Capture replay leftovers: a capture taken with a short snaplen (``tcpdump -s 96``) replays the flows it
holds whole — a packet the snaplen cut is a warning, the flow that needed it is incomplete naming the packet
(index, capture offset, the snaplen, ``-s 0``) — and the reassembly of IP fragments counts in
``--max-memory`` (:mod:`phoneemu.scenario._capture_flows`, "snaplen" and "Overall budget")."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.errors import DecodeError
from phoneemu.net.capture import read_pcap
from phoneemu.scenario.replay import Limits
from phoneemu.scenario.replay_tvs import scan_capture
from tests.unit.test_capture_variants import ethernet, fragment_v4, pcap_of

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
CAPTURE = CAPTURES / "sha512-signing-sha1-phone.pcap"  # TFTP (cp-7962) and HTTP 6970 (cp-8861)


def _cut(src: Path, dst: Path, snaplen: int, only: set[int] | None = None) -> dict[int, int]:
    """``src`` (classic little-endian pcap) with its records (``only`` those indexes) cut to ``snaplen``
    bytes as tcpdump -s would (captured length < original length); the new offset of each record."""
    data = src.read_bytes()
    out = bytearray(data[:24])
    if only is None:
        struct.pack_into("<I", out, 16, snaplen)
    pos, index, offsets = 24, 0, {}
    while pos < len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, pos)
        body = data[pos + 16:pos + 16 + incl]
        keep = min(incl, snaplen) if only is None or index in only else incl
        offsets[index] = len(out)
        out += struct.pack("<IIII", sec, usec, keep, orig) + body[:keep]
        pos += 16 + incl
        index += 1
    dst.write_bytes(bytes(out))
    return offsets


def _listing(capsys: pytest.CaptureFixture[str], capture: Path) -> tuple[dict[str, object], str]:
    assert main(["replay", str(capture), "--list", "--json"]) == 0
    out = capsys.readouterr()
    return json.loads(out.out), out.err


def test_packets_cut_by_the_snaplen_leave_the_rest_to_replay(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Two packets cut to 96 bytes: a TFTP block (packet 10) and an HTTP response (packet 63). The old reader
    stopped the whole replay at the first ('packet[10].udp.length ... does not fit'); now the two downloads
    that needed them are incomplete, naming the packet, its offset, the snaplen and -s 0; every other
    download is as in the whole capture."""
    f = tmp_path / "s96.pcap"
    offsets = _cut(CAPTURE, f, 96, only={10, 63})
    whole, _err = _listing(capsys, CAPTURE)
    doc, err = _listing(capsys, f)
    assert f"packet[10] at capture offset {offsets[10]} was cut by the capture's snaplen" in err
    assert "2 packets in all were cut by the capture's snaplen" in err
    changed = []
    for mac, downloads in whole["phones"].items():  # type: ignore[attr-defined]
        for before, after in zip(downloads, doc["phones"][mac], strict=True):  # type: ignore[index]
            if before != after:
                changed.append(after)
    changed.sort(key=lambda d: d["protocol"], reverse=True)
    assert [(d["protocol"], d["outcome"]) for d in changed] == [("tftp", "incomplete"),
                                                                ("http", "incomplete")]
    tftp, http = changed
    assert tftp["detail"].startswith("1 block(s) received, then packet[10] at capture offset "
                                     f"{offsets[10]} was cut by the capture's snaplen (")
    assert f"packet[63] at capture offset {offsets[63]} was cut by the capture's snaplen" in http["detail"]
    assert all("tcpdump -s 0" in d["detail"] for d in changed)


def test_a_whole_capture_taken_with_a_short_snaplen_replays(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Every packet cut at 200 bytes: the small exchanges (requests, errors, short answers) are whole, the
    files are not; the replay runs (exit 1: no config), the boots held in part say so."""
    f = tmp_path / "s200.pcap"
    _cut(CAPTURE, f, 200)
    doc, err = _listing(capsys, f)
    assert "packets in all were cut by the capture's snaplen" in err
    outcomes = {d["outcome"] for ds in doc["phones"].values() for d in ds}  # type: ignore[attr-defined]
    assert "incomplete" in outcomes and "not-found" in outcomes
    mac = next(iter(doc["phones"]))  # type: ignore[call-overload]
    assert main(["replay", str(f), "--mac", mac]) == 1
    out = capsys.readouterr().out
    assert "the capture holds this boot in part" in out


def test_a_phone_whose_requests_the_snaplen_cut_is_named_with_the_snaplen(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every packet cut at 60 bytes (tcpdump -s 60): the phones' requests are cut, no download of the
    phone is read; the error says the snaplen cut packets and how to capture them whole."""
    doc, _err = _listing(capsys, CAPTURE)
    mac = next(iter(doc["phones"]))  # type: ignore[call-overload]
    f = tmp_path / "s60.pcap"
    _cut(CAPTURE, f, 60)
    assert main(["replay", str(f), "--mac", mac]) == 2
    err = capsys.readouterr().err
    assert f"no download of phone {mac} in the capture" in err
    assert "packets were cut by the capture's snaplen, and a request cut there is not read" in err
    assert "tcpdump -s 0" in err


def test_a_packet_cut_inside_its_headers_is_skipped_and_told(tmp_path: Path) -> None:
    """An Ethernet frame cut at 40 bytes (the UDP header not captured): skipped, told with its index and
    offset; a whole frame after it is read."""
    frame = ethernet(_udp(b"x" * 100))
    f = tmp_path / "h.pcap"
    data = bytearray(pcap_of(1, [(0, 0, frame), (1, 0, frame)]))
    struct.pack_into("<I", data, 24 + 8, 40)  # captured 40 of its bytes
    f.write_bytes(bytes(data[:24 + 16 + 40]) + bytes(data[24 + 16 + len(frame):]))
    notes: list[str] = []
    got = list(read_pcap(f, note=notes.append))
    assert len(got) == 1 and got[0].index == 1 and got[0].payload == b"x" * 100
    assert len(notes) == 1 and notes[0].startswith("capture offset 24 (packet[0]): UDP header truncated: the "
                                                   "packet was cut by the capture's snaplen")
    assert "tcpdump -s 0" in notes[0]


def test_packets_cut_inside_their_headers_are_told_once_and_counted(tmp_path: Path) -> None:
    """A capture taken with ``tcpdump -s 40``: every packet cut inside its UDP header. The first is told
    with its index and offset, the others counted in one closing note (was a warning each: millions of
    lines for a storm); the whole packet after them is read."""
    frame = ethernet(_udp(b"x" * 100))
    whole = pcap_of(1, [(0, 0, frame)])
    record = bytearray(whole[24:24 + 16])
    struct.pack_into("<I", record, 8, 40)  # captured 40 of its bytes
    cut = bytes(record) + frame[:40]
    f = tmp_path / "s40.pcap"
    f.write_bytes(whole[:24] + cut * 500 + whole[24:])
    notes: list[str] = []
    got = list(read_pcap(f, note=notes.append))
    assert len(got) == 1 and got[0].index == 500 and got[0].payload == b"x" * 100
    assert len(notes) == 2, notes
    assert notes[0].startswith("capture offset 24 (packet[0]): UDP header truncated"), notes[0]
    assert notes[0].endswith("(later such packets are counted)")
    assert notes[1].startswith("500 packets in all were cut inside their headers by the capture's snaplen")


@pytest.mark.parametrize(("at", "value", "field"), [
    (24 + 16 + 14 + 2, 60_000, "ipv4.total_length"),  # more than the record says was cut
    (24 + 16 + 14 + 20 + 4, 60_000, "udp.length"),
])
def test_a_length_beyond_what_the_snaplen_cut_is_still_an_error(tmp_path: Path, at: int, value: int,
                                                                 field: str) -> None:
    """A cut packet's lengths may claim what the record says was not captured, never more: beyond, it is
    malformed, an error naming the packet, the field and the offset (nothing allocated for the claim)."""
    frame = ethernet(_udp(b"x" * 1000))
    data = bytearray(pcap_of(1, [(0, 0, frame)]))
    struct.pack_into("<I", data, 24 + 8, 96)  # captured 96 of its 1042 bytes
    struct.pack_into("!H", data, at, value)
    f = tmp_path / "bad.pcap"
    f.write_bytes(bytes(data[:24 + 16 + 96]))
    with pytest.raises(DecodeError, match=f"packet\\[0\\].{field}"):
        list(read_pcap(f))


def _udp(payload: bytes, ident: int = 1) -> bytes:
    udp = struct.pack("!HHHH", 40000, 5004, 8 + len(payload), 0) + payload
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident, 0, 64, 17, 0, bytes([10, 0, 0, 1]),
                       bytes([10, 0, 0, 2])) + udp


def test_fragment_reassembly_counts_in_the_overall_budget(tmp_path: Path) -> None:
    """--max-memory 1 MiB: the reassembly of IP fragments may hold a quarter of it (it held up to 4 MiB
    whatever the budget, uncounted), and the scan counts it: 12 unfinished datagrams of 40 KB each are more
    than 256 KiB — the oldest are given up, with a warning naming the bound."""
    firsts = [fragment_v4(_udp(b"y" * 60_000, ident=i), 40_008)[0] for i in range(12)]
    f = tmp_path / "frags.pcap"
    f.write_bytes(pcap_of(1, [(i, 0, ethernet(ip)) for i, ip in enumerate(firsts)]))
    scan = scan_capture(f, mac="0A0000000001", limits=Limits(max_memory=1 << 20))
    assert any(f"the fragments held exceed {(1 << 20) // 4} bytes" in w for w in scan.warnings)
