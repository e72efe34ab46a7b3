"""replay red team on captures from the field: a pcapng cut inside its own section header is an error
(as a classic pcap cut inside its file header), never an empty capture read with exit 0; a TCP segment
the capture holds after both FINs (a retransmission of a segment lost before the capture point, a capture
whose queues reordered the directions) is still read, the connection ending once each direction is whole
up to its FIN; retransmitted, overlapping and reordered segments of a real capture replay as the capture
itself; a TFTP block the capture lacks while later ones came is named with the capture offset of the first
later one (not "last block missing")."""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.errors import DecodeError
from phoneemu.net.capture import ACK, FIN, PSH, SYN, PcapPacket, PcapWriter, read_pcap
from phoneemu.scenario._capture_flows import CAPTURE_END
from phoneemu.scenario.replay import index_capture

ROOT = Path(__file__).resolve().parents[2]
SIP_CAPTURE = ROOT / "captures" / "sip-tls-callmanager-in-ctl.pcap"
SIP_MAC = "0A0000004201"


def _block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


#: a pcapng of one section, one raw-IP interface and one UDP packet
_SHB = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
_UDP = bytes.fromhex("4500001c0001000040110000" "0a000001" "0a000002") + struct.pack("!HHHH", 1, 2, 8, 0)
NG = _SHB + _block(1, struct.pack("<HHI", 101, 0, 0)) + \
    _block(6, struct.pack("<IIIII", 0, 0, 0, 28, 28) + _UDP)


@pytest.mark.parametrize("cut", range(4, len(_SHB)))
def test_a_pcapng_cut_inside_its_section_header_is_an_error(tmp_path: Path, cut: int) -> None:
    f = tmp_path / "cut.pcapng"
    f.write_bytes(NG[:cut])
    told: list[DecodeError] = []
    with pytest.raises(DecodeError) as exc:
        list(read_pcap(f, cut_short=told.append))  # (was: told cut short, read as a capture of nothing)
    assert not told
    assert exc.value.offset == 0 and str(f) in str(exc.value)
    assert "byte-order" not in str(exc.value)  # (was, cut at 8..11: "bad pcapng byte-order magic 4d3c")


def test_a_pcapng_cut_after_its_section_header_is_read_to_the_cut(tmp_path: Path) -> None:
    f = tmp_path / "cut.pcapng"
    f.write_bytes(NG[:-3])
    told: list[DecodeError] = []
    assert list(read_pcap(f, cut_short=told.append)) == []
    assert len(told) == 1 and told[0].offset == len(_SHB) + 20


@pytest.mark.parametrize("command", [["replay", "--list"], ["wireshark", "--print"]])
def test_the_commands_say_a_pcapng_cut_inside_its_header_in_one_line(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str],
                                                                     command: list[str]) -> None:
    f = tmp_path / "cut.pcapng"
    f.write_bytes(NG[:10])
    assert main([command[0], str(f), *command[1:]]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(f) in err and "offset 0" in err, err


# --------------------------------------------------------------------------- TCP after both FINs
CLIENT, SERVER = ("10.0.0.9", 40001), ("10.0.0.1", 6970)
NAME = "SEP0A0000000001.cnf.xml"
BODY = bytes(range(256)) * 20


def _half_closed_exchange(path: Path, *, retransmitted: bool) -> None:
    """The phone sends its request and closes its side (FIN); the server's first segment is lost before the
    capture point, its second one and its FIN are captured, then (``retransmitted``) the first again."""
    request = f"GET /{NAME} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY
    cs, ss = 1000, 5000
    with PcapWriter(path) as w:
        w.tcp(CLIENT, SERVER, seq=cs, ack=0, flags=SYN, ts=1.0)
        w.tcp(SERVER, CLIENT, seq=ss, ack=cs + 1, flags=SYN | ACK, ts=1.0)
        cs, ss = cs + 1, ss + 1
        w.tcp(CLIENT, SERVER, seq=cs, ack=ss, flags=PSH | ACK, payload=request, ts=1.1)
        cs += len(request)
        w.tcp(CLIENT, SERVER, seq=cs, ack=ss, flags=FIN | ACK, ts=1.1)
        cs += 1
        w.tcp(SERVER, CLIENT, seq=ss + 1400, ack=cs, flags=PSH | ACK, payload=response[1400:], ts=1.2)
        w.tcp(SERVER, CLIENT, seq=ss + len(response), ack=cs, flags=FIN | ACK, ts=1.2)
        w.tcp(CLIENT, SERVER, seq=cs, ack=ss, flags=ACK, ts=1.2)  # its duplicate ACK asks for the gap
        if retransmitted:
            w.tcp(SERVER, CLIENT, seq=ss, ack=cs, flags=PSH | ACK, payload=response[:1400], ts=1.5)
            w.tcp(CLIENT, SERVER, seq=cs, ack=ss + len(response) + 1, flags=ACK, ts=1.5)


def test_a_segment_retransmitted_after_both_fins_is_read(tmp_path: Path) -> None:
    f = tmp_path / "half-closed.pcap"
    _half_closed_exchange(f, retransmitted=True)
    (d,) = index_capture(f).downloads
    # (was: incomplete, the connection ended at the FINs)
    assert (d.name, d.outcome, d.data) == (NAME, "ok", BODY)


def test_a_gap_never_filled_before_both_fins_is_incomplete_not_still_open(tmp_path: Path) -> None:
    f = tmp_path / "half-closed.pcap"
    _half_closed_exchange(f, retransmitted=False)
    (d,) = index_capture(f).downloads
    assert d.outcome == "incomplete" and CAPTURE_END not in d.detail  # both ends had closed it


# --------------------------------------------------------------------------- a real capture, perturbed
def _replayed(tmp_path: Path, capsys: pytest.CaptureFixture[str], packets: list[PcapPacket]) -> object:
    f = tmp_path / "perturbed.pcap"
    with PcapWriter(f) as w:
        for p in packets:
            if p.proto == "udp":
                w.udp((p.src, p.sport), (p.dst, p.dport), p.payload, ts=p.ts)
            else:
                w.tcp((p.src, p.sport), (p.dst, p.dport), seq=p.seq, ack=p.ack, flags=p.flags,
                      payload=p.payload, ts=p.ts)
    main(["replay", str(f), "--mac", SIP_MAC, "--json"])
    doc = json.loads(capsys.readouterr().out)

    def decisions(o: object) -> object:  # times and durations differ with the packets' times
        if isinstance(o, dict):
            return {k: decisions(v) for k, v in o.items()
                    if k not in ("time", "start", "end", "now", "capture", "duration_s")}
        return [decisions(v) for v in o] if isinstance(o, list) else o
    return decisions(doc)


def _duplicated(packets: list[PcapPacket]) -> list[PcapPacket]:
    return [q for p in packets for q in ([p, p] if p.proto == "tcp" and p.payload else [p])]


def _overlapping(packets: list[PcapPacket]) -> list[PcapPacket]:
    """Each data segment as three overlapping pieces, the last bytes first."""
    out = []
    for p in packets:
        n = len(p.payload)
        if p.proto != "tcp" or n < 4:
            out.append(p)
            continue
        for s, e in ((n // 3, n), (0, 2 * n // 3), (0, n // 3 + 1)):
            out.append(dataclasses.replace(p, seq=(p.seq + s) & 0xFFFFFFFF, payload=p.payload[s:e]))
    return out


def _delayed(packets: list[PcapPacket]) -> list[PcapPacket]:
    """Every fifth data segment held back three packets (past its FIN, for the last of an exchange)."""
    out: list[PcapPacket] = []
    later: dict[int, list[PcapPacket]] = {}
    for i, p in enumerate(packets):
        if p.proto == "tcp" and p.payload and i % 5 == 0:
            later.setdefault(i + 3, []).append(p)
        else:
            out.append(p)
        out += later.pop(i, [])
    return out + [p for k in sorted(later) for p in later[k]]


@pytest.mark.parametrize("perturb", [_duplicated, _overlapping, _delayed])
def test_tcp_retransmitted_overlapping_and_late_segments_replay_as_the_capture(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], perturb: object) -> None:
    """HTTP 6970, SIP over TCP and SIP over TLS of a catalogue capture (``_delayed``: was 'no-reply' for the
    404s whose one segment came after the FINs, and the phone's boots decided otherwise)."""
    assert callable(perturb)
    packets = list(read_pcap(SIP_CAPTURE))
    assert _replayed(tmp_path, capsys, perturb(packets)) == _replayed(tmp_path, capsys, packets)


# --------------------------------------------------------------------------- TFTP blocks not captured
def _tftp_read(path: Path, order: list[int], *, blocks: int = 11) -> None:
    """A phone's TFTP read of ``NAME`` in 512-byte blocks (the last short), sent in ``order`` (block numbers;
    one left out: the capture lacks it), each ACKed."""
    client, server = ("10.0.0.9", 40002), ("10.0.0.1", 50000)
    with PcapWriter(path) as w:
        w.udp(client, ("10.0.0.1", 69), b"\x00\x01" + NAME.encode() + b"\x00octet\x00", ts=1.0)
        for n in order:
            data = bytes(512) if n < blocks else b"end"
            w.udp(server, client, struct.pack("!HH", 3, n) + data, ts=1.0 + n / 100)
            w.udp(client, server, struct.pack("!HH", 4, n), ts=1.0 + n / 100)


@pytest.mark.parametrize(("order", "missing", "after"), [
    ([1, 2, 3, 4, 6, 7, 8, 9, 10, 11], 5, 6),  # a block lost before the capture point, never resent
    ([1, 3, 2, 4, 5, 6, 7, 8, 9, 10, 11], 3, 4),  # block 3 came early, never again in order
])
def test_a_tftp_block_not_captured_is_named(tmp_path: Path, order: list[int], missing: int,
                                            after: int) -> None:
    f = tmp_path / "tftp.pcap"
    _tftp_read(f, order)
    (d,) = index_capture(f).downloads
    assert d.outcome == "incomplete"
    # (was: "N block(s) received, last block missing", the later blocks captured unsaid)
    assert f"block {missing} not captured (block {after} at capture offset " in d.detail, d.detail


def test_a_tftp_read_cut_at_its_end_still_says_its_last_block_missing(tmp_path: Path) -> None:
    f = tmp_path / "tftp.pcap"
    _tftp_read(f, list(range(1, 11)))
    (d,) = index_capture(f).downloads
    assert d.outcome == "incomplete" and "10 block(s) received, last block missing" in d.detail


def test_a_connection_closed_with_a_gap_is_not_evicted_as_open(tmp_path: Path) -> None:
    """Review of 0934598: a connection closed by both ends with a gap left before a FIN stays until the gap
    fills; a new one past ``max_flows`` ends it as the capture's end does, unsaid (was: "more than 1 TCP
    connections open at once", counted as evicted, of a connection both ends had closed)."""
    from phoneemu.scenario._capture_flows import Limits
    from phoneemu.scenario.replay import _KeepAll, _scan

    f = tmp_path / "half-closed.pcap"
    _half_closed_exchange(f, retransmitted=False)
    other = ("10.0.0.9", 40003)
    later = [PcapPacket(ts=2.0, src=other[0], sport=other[1], dst=SERVER[0], dport=SERVER[1], proto="tcp",
                        seq=7000, ack=0, flags=SYN, payload=b"", index=99, offset=0)]
    sink = _KeepAll()
    scanner = _scan([*read_pcap(f), *later], sink, Limits(max_flows=1))
    index = sink.index(scanner)
    assert scanner.evicted == 0 and not any("open at once" in w for w in index.warnings), index.warnings
    (d,) = index.downloads
    assert d.outcome == "incomplete" and CAPTURE_END not in d.detail, d.detail
