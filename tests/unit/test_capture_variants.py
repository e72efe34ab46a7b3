"""Captures as real networks produce them read as the lab's own: a reference capture (LINKTYPE_RAW, the
project's PcapWriter) rewritten as a SPAN port or a trunk gives it — Ethernet with 802.1Q / QinQ tags,
padding and FCS, BSD loopback (NULL, LOOP), pcapng with interfaces of several link types and
resolutions, IPv4 and IPv6 fragments, IPv6 extension headers — and the packets read are the same."""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from phoneemu.errors import DecodeError
from phoneemu.net import capture as cap
from phoneemu.net.capture import PcapPacket, PcapWriter, inet_checksum, read_pcap

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = ROOT / "captures"
CAPTURE = CAPTURES / "sha512-signing-sha1-phone.pcap"  # TFTP (cp-7962) and HTTP 6970 (cp-8861)

Record = tuple[int, int, bytes]  # seconds, microseconds, the bare IP packet


def records(pcap: bytes) -> Iterator[Record]:
    """The records of a classic little-endian pcap."""
    pos = 24
    while pos < len(pcap):
        sec, usec, incl, _orig = struct.unpack_from("<IIII", pcap, pos)
        yield sec, usec, pcap[pos + 16:pos + 16 + incl]
        pos += 16 + incl


def pcap_of(linktype: int, frames: list[Record], *, big: bool = False) -> bytes:
    e = ">" if big else "<"
    out = bytearray(struct.pack(e + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
    for sec, usec, frame in frames:
        out += struct.pack(e + "IIII", sec, usec, len(frame), len(frame)) + frame
    return bytes(out)


def ethernet(ip: bytes, *, tags: tuple[tuple[int, int], ...] = (), fcs: bool = False) -> bytes:
    """``ip`` in an Ethernet frame with VLAN ``tags`` ((TPID, VLAN id), outermost first), padded to the
    60-byte minimum, with a 4-byte FCS when ``fcs``."""
    frame = b"\x00\x11\x22\x33\x44\x55" + b"\x00\x66\x77\x88\x99\xaa"
    for tpid, vid in tags:
        frame += struct.pack("!HH", tpid, (5 << 13) | vid)  # priority 5: voice
    frame += struct.pack("!H", 0x86DD if ip[0] >> 4 == 6 else 0x0800) + ip
    frame += b"\0" * max(0, 60 - len(frame))
    return frame + (b"\xde\xad\xbe\xef" if fcs else b"")


def lab(path: Path = CAPTURE) -> list[Record]:
    return list(records(path.read_bytes()))


def same(got: list[PcapPacket], want: list[PcapPacket]) -> None:
    """The same packets, whatever their index and offset (a fragmented capture has more records)."""
    def key(p: PcapPacket) -> tuple[object, ...]:
        return (p.ts, p.proto, p.src, p.dst, p.sport, p.dport, p.payload, p.seq, p.ack, p.flags)
    assert [key(p) for p in got] == [key(p) for p in want]


TAGS = {
    "802.1Q": ((0x8100, 100),),
    "QinQ 802.1ad": ((0x88A8, 10), (0x8100, 100)),
    "QinQ 0x9100": ((0x9100, 10), (0x8100, 100)),
    "three tags": ((0x88A8, 7), (0x9100, 10), (0x8100, 100)),
}


@pytest.mark.parametrize("tags", list(TAGS.values()), ids=list(TAGS))
@pytest.mark.parametrize("fcs", [False, True], ids=["", "fcs"])
def test_vlan_tagged_ethernet_reads_as_the_untagged_capture(tmp_path: Path, tags: tuple[tuple[int, int], ...],
                                                            fcs: bool) -> None:
    f = tmp_path / "trunk.pcap"
    f.write_bytes(pcap_of(1, [(s, u, ethernet(ip, tags=tags, fcs=fcs)) for s, u, ip in lab()]))
    assert list(read_pcap(f)) == list(read_pcap(CAPTURE))


def test_ethernet_padding_and_fcs_are_not_read(tmp_path: Path) -> None:
    """Small frames padded to 60 bytes, a 4-byte FCS kept (a capture with the FCS): the IP lengths bound
    each packet (a pure ACK's padding is no TCP payload)."""
    f = tmp_path / "eth.pcap"
    f.write_bytes(pcap_of(1, [(s, u, ethernet(ip, fcs=True)) for s, u, ip in lab()]))
    assert list(read_pcap(f)) == list(read_pcap(CAPTURE))


def test_vlan_tags_in_linux_cooked_captures(tmp_path: Path) -> None:
    """``tcpdump -i any`` of an interface whose tags the kernel did not strip: SLL protocol 0x8100."""
    frames = [(s, u, struct.pack("!HHH8sH", 0, 1, 6, b"", 0x8100) + struct.pack("!HH", 100, 0x0800) + ip)
              for s, u, ip in lab()]
    f = tmp_path / "any.pcap"
    f.write_bytes(pcap_of(113, frames))
    assert list(read_pcap(f)) == list(read_pcap(CAPTURE))


def test_a_truncated_vlan_tag_is_an_error_naming_its_offset(tmp_path: Path) -> None:
    frame = b"\0" * 12 + struct.pack("!HH", 0x8100, 100)  # the tag's EtherType missing
    f = tmp_path / "cut.pcap"
    f.write_bytes(pcap_of(1, [(0, 0, frame)]))
    with pytest.raises(DecodeError, match="VLAN tag 1 truncated") as err:
        list(read_pcap(f))
    assert err.value.offset == 24 + 16 + 14


@pytest.mark.parametrize(("linktype", "order", "family"), [
    (0, "<", 2), (0, ">", 2), (108, ">", 2),  # NULL in either host order; LOOP in network order
])
def test_bsd_loopback_captures(tmp_path: Path, linktype: int, order: str, family: int) -> None:
    frames = [(s, u, struct.pack(order + "I", family) + ip) for s, u, ip in lab()]
    f = tmp_path / "lo0.pcap"
    f.write_bytes(pcap_of(linktype, frames, big=order == ">"))
    assert list(read_pcap(f)) == list(read_pcap(CAPTURE))


@pytest.mark.parametrize("family", [24, 28, 30])
def test_bsd_loopback_ipv6(tmp_path: Path, family: int) -> None:
    v6 = _to_v6(tmp_path)
    f = tmp_path / "lo0-v6.pcap"
    frames = [(s, u, struct.pack("<I", family) + ip) for s, u, ip in records(v6.read_bytes())]
    f.write_bytes(pcap_of(0, frames))
    assert list(read_pcap(f)) == list(read_pcap(v6))


def test_bsd_loopback_other_families_are_not_ip(tmp_path: Path) -> None:
    f = tmp_path / "lo0.pcap"
    f.write_bytes(pcap_of(0, [(s, u, struct.pack("<I", 7) + ip) for s, u, ip in lab()]))
    assert list(read_pcap(f)) == []


# --- pcapng ----------------------------------------------------------------------------------
def _block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def pcapng_of(interfaces: list[tuple[int, int | None, int]], packets: list[tuple[int, int, int, bytes]],
              *, old_blocks: bool = False) -> bytes:
    """``interfaces``: (link type, if_tsresol or None, if_tsoffset); ``packets``: (interface, seconds,
    microseconds, frame)."""
    out = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    for link, resol, offset in interfaces:
        opts = (_option(9, bytes([resol])) if resol is not None else b"") + \
            (_option(14, struct.pack("<q", offset)) if offset else b"")
        out += _block(1, struct.pack("<HHI", link, 0, 0) + opts + (struct.pack("<HH", 0, 0) if opts else b""))
    for iface, sec, usec, frame in packets:
        link, resol, offset = interfaces[iface]
        units = 10 ** (6 if resol is None else resol)
        ticks = (sec - offset) * units + usec * units // 1_000_000
        if old_blocks:
            out += _block(2, struct.pack("<HHIIII", iface, 0, ticks >> 32, ticks & 0xFFFFFFFF, len(frame),
                                         len(frame)) + frame)
        else:
            out += _block(6, struct.pack("<IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(frame),
                                         len(frame)) + frame)
    return out


def test_pcapng_of_a_tagged_trunk(tmp_path: Path) -> None:
    f = tmp_path / "trunk.pcapng"
    f.write_bytes(pcapng_of([(1, 9, 0)], [(0, s, u, ethernet(ip, tags=TAGS["QinQ 802.1ad"], fcs=True))
                                          for s, u, ip in lab()]))
    assert list(read_pcap(f)) == list(read_pcap(CAPTURE))


def test_pcapng_interfaces_of_several_link_types_and_resolutions(tmp_path: Path) -> None:
    """Wireshark capturing on several interfaces at once: each packet decoded by its own interface's
    link type and timestamp resolution (nanoseconds, microseconds, 2^-20 s rounded to microseconds here
    by the writer's choice of 10^6 ticks, an if_tsoffset); an interface of a link type not read (802.11
    radiotap) is told to ``note`` and its packets skipped."""
    interfaces = [(1, 9, 0), (0, None, 0), (113, 3, 0), (127, None, 0), (108, 6, 1_700_000_000)]
    packets: list[tuple[int, int, int, bytes]] = []
    for i, (s, u, ip) in enumerate(lab()):
        kind = i % 4
        if kind == 0:
            packets.append((0, s, u, ethernet(ip, tags=((0x8100, 100),))))
        elif kind == 1:
            packets.append((1, s, u, struct.pack("<I", 2) + ip))
        elif kind == 2:
            packets.append((2, s, u - u % 1000, struct.pack("!HHH8sH", 0, 1, 6, b"", 0x0800) + ip))
            packets.append((3, s, u, b"\x00\x00\x08\x00\x00\x00\x00\x00" + ip))  # radiotap: never read
        else:
            packets.append((4, s, u, struct.pack(">I", 2) + ip))
    f = tmp_path / "many.pcapng"
    f.write_bytes(pcapng_of(interfaces, packets))
    notes: list[str] = []
    got, want = list(read_pcap(f, note=notes.append)), list(read_pcap(CAPTURE))
    assert [p.payload for p in got] == [p.payload for p in want]
    assert all(abs(g.ts - w.ts) < 1e-3 for g, w in zip(got, want, strict=True))  # the millisecond one
    assert len(notes) == 1 and "interface 3 has link type 127" in notes[0] and "skipped" in notes[0]


def test_pcapng_obsolete_packet_blocks(tmp_path: Path) -> None:
    f = tmp_path / "old.pcapng"
    f.write_bytes(pcapng_of([(101, None, 0)], [(0, s, u, ip) for s, u, ip in lab()], old_blocks=True))
    assert list(read_pcap(f)) == list(read_pcap(CAPTURE))


# --- IP fragments ------------------------------------------------------------------------------
def fragment_v4(ip: bytes, mtu: int) -> list[bytes]:
    """``ip`` (IPv4) as the fragments of a link of ``mtu`` bytes (RFC 791), in order."""
    ihl = (ip[0] & 0x0F) * 4
    total = struct.unpack_from("!H", ip, 2)[0]
    if total <= mtu:
        return [ip]
    data = ip[ihl:total]
    step = (mtu - ihl) // 8 * 8
    out = []
    for at in range(0, len(data), step):
        piece = data[at:at + step]
        more = at + step < len(data)
        hdr = bytearray(ip[:ihl])
        struct.pack_into("!HHH", hdr, 2, ihl + len(piece), struct.unpack_from("!H", ip, 4)[0],
                         (0x2000 if more else 0) | at // 8)
        struct.pack_into("!H", hdr, 10, 0)
        struct.pack_into("!H", hdr, 10, inet_checksum(bytes(hdr)))
        out.append(bytes(hdr) + piece)
    return out


def fragmented(frames: list[Record], mtu: int, *,
               shuffle: Callable[[list[bytes]], list[bytes]] = lambda f: f) -> list[Record]:
    return [(s, u, frag) for s, u, ip in frames for frag in shuffle(fragment_v4(ip, mtu))]


@pytest.mark.parametrize("mtu", [1500, 576, 68])
def test_ipv4_fragments_are_reassembled(tmp_path: Path, mtu: int) -> None:
    """TFTP blocks, HTTP and TLS segments over the path MTU arrive fragmented: reassembled (the
    reference capture's largest packets are 1500 bytes; MTU 68 is the IPv4 minimum)."""
    frames = fragmented(lab(), mtu)
    assert len(frames) > len(lab()) or mtu == 1500
    f = tmp_path / "frag.pcap"
    f.write_bytes(pcap_of(101, frames))
    notes: list[str] = []
    same(list(read_pcap(f, note=notes.append)), list(read_pcap(CAPTURE)))
    assert notes == []


def test_big_tftp_blocks_fragmented_over_a_1500_byte_mtu(tmp_path: Path) -> None:
    """A TFTP DATA of blksize 8192 (over the MTU): fragmented by the sender, one datagram read."""
    whole = tmp_path / "whole.pcap"
    with PcapWriter(whole) as w:
        for n in range(1, 4):
            w.udp(("10.1.1.1", 69), ("10.10.100.5", 50000), struct.pack("!HH", 3, n) + bytes([n]) * 8192,
                  ts=1000.0 + n)
    frames = fragmented(lab(whole), 1500, shuffle=lambda f: f[::-1])  # last first, as Linux sends them
    f = tmp_path / "frag.pcap"
    f.write_bytes(pcap_of(1, [(s, u, ethernet(ip, fcs=True)) for s, u, ip in frames]))
    same(list(read_pcap(f)), list(read_pcap(whole)))  # the old reader: "UDP length 8204 does not fit"


def _one_datagram(size: int = 4000, ident: int = 7) -> bytes:
    ip = bytearray(cap._ip_packet("10.1.1.1", "10.10.100.5", 17,
                                  bytearray(struct.pack("!HHHH", 69, 50000, 8 + size, 0) + b"x" * size),
                                  csum_at=6, ident=ident))
    return bytes(ip)


def _read_notes(tmp_path: Path, frames: list[bytes]) -> tuple[list[PcapPacket], list[str]]:
    f = tmp_path / "f.pcap"
    f.write_bytes(pcap_of(101, [(i, 0, fr) for i, fr in enumerate(frames)]))
    notes: list[str] = []
    return list(read_pcap(f, note=notes.append)), notes


def test_duplicate_fragments_of_a_span_port_are_ignored(tmp_path: Path) -> None:
    frags = fragment_v4(_one_datagram(), 1500)
    got, notes = _read_notes(tmp_path, [f for f in frags for _ in (0, 1)])
    assert len(got) == 1 and got[0].payload == b"x" * 4000 and notes == []


def test_overlapping_fragments_refuse_their_datagram(tmp_path: Path) -> None:
    frags = fragment_v4(_one_datagram(), 1500)
    evil = bytearray(frags[1])
    struct.pack_into("!H", evil, 6, 0x2000 | (struct.unpack_from("!H", evil, 6)[0] & 0x1FFF) - 1)
    got, notes = _read_notes(tmp_path, [frags[0], bytes(evil), *frags[1:]])
    assert got == []
    assert len(notes) == 1 and "overlapping fragments" in notes[0] and "capture offset" in notes[0]
    assert "10.1.1.1 → 10.10.100.5 id 0x7" in notes[0]


def test_unfinished_and_expired_datagrams_are_told(tmp_path: Path) -> None:
    a, b = fragment_v4(_one_datagram(ident=1), 1500), fragment_v4(_one_datagram(ident=2), 1500)
    f = tmp_path / "f.pcap"
    late = int(cap.FRAG_TIMEOUT) + 5
    c = fragment_v4(_one_datagram(ident=3), 1500)
    f.write_bytes(pcap_of(101, [(0, 0, a[0]), (0, 0, b[0]), (late, 0, a[1]), (late, 0, a[2]),
                                (late, 0, c[0])]))
    notes: list[str] = []
    assert list(read_pcap(f, note=notes.append)) == []  # a's late fragments: ignored, a was given up
    assert len(notes) == 3, notes
    assert ["incomplete after 30 s" in n for n in notes] == [True, True, False]  # a, b
    assert "id 0x3 incomplete at the end of the capture" in notes[2]


def test_fragments_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """More datagrams open than the bound: the oldest given up (told); more fragments than the bound:
    refused; what is held never exceeds the byte bound."""
    monkeypatch.setattr(cap, "FRAG_MAX_DATAGRAMS", 4)
    firsts = [fragment_v4(_one_datagram(ident=i), 1500)[0] for i in range(10)]
    got, notes = _read_notes(tmp_path, firsts)
    assert got == [] and sum("more than 4 datagrams" in n for n in notes) == 6 and len(notes) == 10
    monkeypatch.setattr(cap, "FRAG_MAX_PIECES", 8)
    got, notes = _read_notes(tmp_path, fragment_v4(_one_datagram(size=2000), 200))
    assert got == [] and any("more than 8 fragments" in n for n in notes)
    monkeypatch.setattr(cap, "FRAG_MAX_DATAGRAMS", 64)
    monkeypatch.setattr(cap, "FRAG_MAX_BYTES", 10_000)
    got, notes = _read_notes(tmp_path, [fragment_v4(_one_datagram(ident=i, size=8000), 1500)[0]
                                        for i in range(20)])
    assert got == [] and any("exceed 10000 bytes" in n for n in notes)


def test_without_reassembly_a_first_fragment_is_no_error(tmp_path: Path) -> None:
    """The old reader took a first fragment for a whole UDP datagram: "UDP length does not fit"."""
    frags = fragment_v4(_one_datagram(), 1500)
    got, notes = _read_notes(tmp_path, frags[:1])
    assert got == [] and len(notes) == 1


# --- IPv6 ------------------------------------------------------------------------------------
def _to_v6(tmp_path: Path, src: Path = CAPTURE) -> Path:
    """The reference capture with its IPv4 hosts as IPv6 ones (fd00::<last byte>), same ports,
    payloads, TCP numbers and times."""
    dst = tmp_path / "v6.pcap"
    with PcapWriter(dst) as w:
        for p in read_pcap(src):
            s = (f"fd00::{p.src.rsplit('.', 1)[1]}", p.sport)
            d = (f"fd00::{p.dst.rsplit('.', 1)[1]}", p.dport)
            if p.proto == "udp":
                w.udp(s, d, p.payload, ts=p.ts)
            else:
                w.tcp(s, d, seq=p.seq, ack=p.ack, flags=p.flags, payload=p.payload, ts=p.ts)
    return dst


def with_extensions(ip: bytes) -> bytes:
    """A hop-by-hop, a routing (type 0, no segment left) and a destination options header before the
    upper layer."""
    nxt = ip[6]
    pad = struct.pack("!BB4s", 1, 4, b"")  # PadN
    dest = struct.pack("!BB", nxt, 0) + pad
    routing = struct.pack("!BBBBI16s", 60, 2, 0, 0, 0, b"\x20\x01" + b"\0" * 14)
    hop = struct.pack("!BB", 43, 0) + pad
    ext = hop + routing + dest
    plen = struct.unpack_from("!H", ip, 4)[0] + len(ext)
    return ip[:4] + struct.pack("!HBB", plen, 0, ip[7]) + ip[8:40] + ext + ip[40:]


def fragment_v6(ip: bytes, mtu: int, ident: int) -> list[bytes]:
    """``ip`` (IPv6) as fragments of a link of ``mtu`` bytes (RFC 8200: a fragment header after the
    unfragmentable part, here the fixed header); an atomic fragment when it fits."""
    data = ip[40:]
    step = (mtu - 48) // 8 * 8
    out = []
    for at in range(0, len(data), step):
        piece = data[at:at + step]
        more = at + step < len(data)
        frag = struct.pack("!BBHI", ip[6], 0, at | more, ident)
        out.append(ip[:4] + struct.pack("!HBB", 8 + len(piece), 44, ip[7]) + ip[8:40] + frag + piece)
    return out


def test_ipv6_extension_headers_before_udp_and_tcp(tmp_path: Path) -> None:
    v6 = _to_v6(tmp_path)
    f = tmp_path / "ext.pcap"
    f.write_bytes(pcap_of(101, [(s, u, with_extensions(ip)) for s, u, ip in records(v6.read_bytes())]))
    assert list(read_pcap(f)) == list(read_pcap(v6))


@pytest.mark.parametrize("mtu", [1280, 600])
def test_ipv6_fragments_are_reassembled(tmp_path: Path, mtu: int) -> None:
    v6 = _to_v6(tmp_path)
    frames = [(s, u, fr) for i, (s, u, ip) in enumerate(records(v6.read_bytes()))
              for fr in fragment_v6(with_extensions(ip) if i % 2 else ip, mtu, ident=i)]
    f = tmp_path / "frag6.pcap"
    f.write_bytes(pcap_of(1, [(s, u, ethernet(ip, tags=((0x8100, 100),))) for s, u, ip in frames]))
    notes: list[str] = []
    same(list(read_pcap(f, note=notes.append)), list(read_pcap(v6)))
    assert notes == []


def test_truncated_ipv6_extension_is_an_error(tmp_path: Path) -> None:
    ip = with_extensions(next(records(_to_v6(tmp_path).read_bytes()))[2])
    cut = ip[:4] + struct.pack("!H", 4) + ip[6:44]
    f = tmp_path / "cut.pcap"
    f.write_bytes(pcap_of(101, [(0, 0, cut)]))
    with pytest.raises(DecodeError, match="hop-by-hop header truncated"):
        list(read_pcap(f))


def test_ipv4_total_length_zero_is_the_frames(tmp_path: Path) -> None:
    """Segmentation offload seen on the sending host: the IPv4 total length is left 0."""
    frames = []
    for s, u, ip in lab():
        frames.append((s, u, ip[:2] + b"\0\0" + ip[4:] if ip[9] == 6 else ip))
    f = tmp_path / "tso.pcap"
    f.write_bytes(pcap_of(101, frames))
    assert list(read_pcap(f)) == list(read_pcap(CAPTURE))


def test_pcapng_of_no_interface_read_is_still_an_error(tmp_path: Path) -> None:
    f = tmp_path / "wifi.pcapng"
    f.write_bytes(pcapng_of([(127, None, 0)], [(0, s, u, b"\0" * 8 + ip) for s, u, ip in lab()]))
    with pytest.raises(DecodeError, match="unsupported link type 127") as err:
        list(read_pcap(f))
    assert err.value.path == "interface[0].linktype"
