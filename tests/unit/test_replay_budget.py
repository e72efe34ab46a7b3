"""The overall budget of a capture scan: every buffered byte, open flow and kept download is accounted, the
total stays within the budget after every packet, the least recently active flows end early or the least
useful kept downloads give up their bytes, each with a warning, nothing is lost."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from phoneemu.cli import main
from phoneemu.errors import PhoneEmuError
from phoneemu.net.capture import ACK, PSH, SYN, PcapPacket, PcapWriter
from phoneemu.net.tftp_codec import Data, ReadRequest, encode
from phoneemu.scenario import _capture_flows as flows
from phoneemu.scenario import replay
from phoneemu.scenario._capture_flows import (
    PIECE_COST,
    SEGMENT_COST,
    TCP_FLOW_COST,
    TFTP_FLOW_COST,
    FlowScanner,
    Limits,
)

PHONE, LAB = "10.0.0.1", "10.0.0.11"
MAC = "0A0000000001"
Packet = tuple[str, int, str, int, str, int, int, bytes]  # proto, src, sport, dst, dport, seq, flags, payload


def held(scanner: FlowScanner) -> int:
    """What the scanner's open flows really hold, counted as the module rules say."""
    total = 0
    for t in scanner._tftp.values():
        total += TFTP_FLOW_COST + sum(len(p) + PIECE_COST for p in t.parts)
    for conn in {id(c): c for c in scanner._tcp.values()}.values():
        total += TCP_FLOW_COST if conn.kind != "closed" else 0
        for d in conn.dirs.values():
            total += sum(len(p) + SEGMENT_COST for *_, p in d.pending)  # (offset, arrival, time, bytes)
        total += sum(len(p) + PIECE_COST for pieces in conn.early.values() for _, _, p in pieces)
        if conn.http is not None:
            for buf in (conn.http.creq, conn.http.sresp):
                total += len(buf.data) + PIECE_COST * len(buf.times)
            total += len(conn.http.body)
        if conn.tls is not None:
            total += sum(len(b) for b in conn.tls.streams.values() if b is not None)
    return total


def kept(sink: object) -> int:
    """What the sink's kept downloads really hold: each bytes object once, plus PIECE_COST."""
    if isinstance(sink, replay._PhoneSink):
        downloads = [*sink.own, *(d for slot in sink.shared.values() for d in (slot[1], slot[3]))]
    else:
        assert isinstance(sink, replay._KeepAll)
        downloads = list(sink.downloads)
    data = {id(d.data): d.data for d in downloads if d is not None and d.data is not None}
    return sum(len(b) + PIECE_COST for b in data.values())


class _Tls:
    """A TLS sink that never decrypts (keeps both directions to the end)."""

    def __init__(self) -> None:
        self.ended: list[tuple[int, int]] = []

    def early_problem(self, client_start: bytes, server_start: bytes) -> str | None:
        return None

    def connection(self, *, client: tuple[str, int], server: tuple[str, int], start: float, order: int,
                   client_stream: bytes | None, server_stream: bytes | None, problem: str) -> None:
        self.ended.append((len(client_stream or b""), len(server_stream or b"")))


def _http_flow(i: int, body: int, *, hole: bool, name: str = "") -> list[Packet]:
    """A GET of a cluster-wide name (or ``name``); with ``hole`` the response's first segment never comes."""
    c, s = 20000 + i, 6970
    req = f"GET /{name or f'ITLFile{i}.tlv'} HTTP/1.1\r\n\r\n".encode()
    resp = f"HTTP/1.1 200 OK\r\nContent-Length: {body}\r\n\r\n".encode() + bytes(body)
    out: list[Packet] = [("tcp", PHONE, c, LAB, s, 1000, SYN, b""),
                         ("tcp", LAB, s, PHONE, c, 5000, SYN | ACK, b""),
                         ("tcp", PHONE, c, LAB, s, 1001, PSH | ACK, req)]
    for at in range(1000 if hole else 0, len(resp), 1000):
        out.append(("tcp", LAB, s, PHONE, c, 5001 + at, PSH | ACK, resp[at:at + 1000]))
    return out


def _tftp_flow(i: int, blocks: int) -> list[Packet]:
    """A TFTP read of a cluster-wide name (kept), its last block never sent."""
    c = 30000 + i
    out: list[Packet] = [("udp", PHONE, c, LAB, 69, 0, 0, encode(ReadRequest(filename="ITLFile.tlv")))]
    out += [("udp", LAB, 40000 + i, PHONE, c, 0, 0, encode(Data(block=n, data=bytes(512))))
            for n in range(1, blocks + 1)]
    return out


def _tls_flow(i: int, size: int) -> list[Packet]:
    c, s = 50000 + i, 2445
    hello = b"\x16\x03\x01" + bytes(size)
    return [("tcp", PHONE, c, LAB, s, 1000, SYN, b""), ("tcp", LAB, s, PHONE, c, 7000, SYN | ACK, b""),
            ("tcp", PHONE, c, LAB, s, 1001, PSH | ACK, hello),
            ("tcp", LAB, s, PHONE, c, 7001, PSH | ACK, b"\x16\x03\x03" + bytes(size))]


def _packets(spec: list[Packet]) -> list[PcapPacket]:
    return [PcapPacket(ts=1_780_000_000.0 + n, proto=proto, src=src, sport=sport, dst=dst, dport=dport,
                       seq=seq, flags=flags, payload=payload, index=n, offset=24 + 100 * n)
            for n, (proto, src, sport, dst, dport, seq, flags, payload) in enumerate(spec)]


def _scan(packets: list[PcapPacket], limit: int) -> tuple[FlowScanner, replay._KeepAll, _Tls, list[str]]:
    sink, tls, warnings = replay._KeepAll(), _Tls(), []
    scanner = FlowScanner(sink, tls=tls, limits=Limits(max_memory=limit), warn=warnings.append)
    for pkt in packets:
        scanner.feed(pkt)
        assert scanner.budget.total == held(scanner)  # accounted where buffered, exactly
        assert scanner.held == held(scanner) + kept(sink) <= limit  # kept too; within the budget after each
    scanner.close()
    assert scanner.budget.total == 0 and not scanner.budget.holders
    assert scanner.held == kept(sink)
    return scanner, sink, tls, warnings


def _interleave(flows_: list[list[Packet]], rng: random.Random) -> list[Packet]:
    """Round robin in random order; sometimes a flow's next two packets swap (TCP reordering)."""
    queues = [list(f) for f in flows_]
    out: list[Packet] = []
    while any(queues):
        q = rng.choice([q for q in queues if q])
        k = 1 if len(q) > 1 and rng.random() < 0.2 else 0
        out.append(q.pop(k))
    return out


def test_many_connections_with_out_of_order_data_end_early_oldest_first() -> None:
    """40 connections, each 20 KiB waiting for a segment that never comes: 800 KiB in all, a budget
    of 100 KiB. The oldest end as they stand, each named in a warning with the offset and budget."""
    spec = [p for i in range(40) for p in _http_flow(i, 20_000, hole=True)]
    scanner, sink, _tls, warnings = _scan(_packets(spec), 100_000)
    assert scanner.over_budget >= 30
    first = warnings[0]
    assert first.startswith("http 10.0.0.1:20000 -> 10.0.0.11:6970: ")
    assert "more than 100000 (the overall budget), capture offset " in first and "ends as it stands" in first
    assert warnings[-1] == (f"{scanner.over_budget} flows in all ended early: more than 100000 bytes held by "
                            "open flows and kept downloads (the overall budget)")
    # nothing lost: every request is a download, incomplete
    assert sorted(d.name for d in sink.downloads) == sorted(f"ITLFile{i}.tlv" for i in range(40))
    assert {d.outcome for d in sink.downloads} == {"incomplete"}


def test_a_budget_above_what_is_held_changes_nothing() -> None:
    spec = [p for i in range(5) for p in _http_flow(i, 3000, hole=False)]
    _scanner, sink, _tls, warnings = _scan(_packets(spec), 1 << 20)
    assert not warnings and {d.outcome for d in sink.downloads} == {"ok"}


def test_tftp_transfers_mid_way_end_early_as_incomplete() -> None:
    spec = _interleave([_tftp_flow(i, 20) for i in range(30)], random.Random(1))
    scanner, sink, _tls, warnings = _scan(_packets(spec), 50_000)
    assert scanner.over_budget > 0 and any(w.startswith("tftp 10.0.0.1:") for w in warnings)
    assert len(sink.downloads) == 30 and {d.outcome for d in sink.downloads} == {"incomplete"}
    early = [d for d in sink.downloads if "ended early" in d.detail]
    assert len(early) == scanner.over_budget
    assert "more than 50000 bytes held by open flows and kept downloads (the overall budget)" in \
        early[0].detail


def test_tls_connections_buffering_end_early_and_are_reported() -> None:
    spec = [p for i in range(10) for p in _tls_flow(i, 30_000)]
    scanner, _sink, tls, warnings = _scan(_packets(spec), 100_000)
    assert scanner.over_budget > 0 and warnings[0].startswith("tls 10.0.0.1:50000 -> 10.0.0.11:2445: ")
    assert len(tls.ended) == 10  # each one reported, the early ones with what they held


class _Counting(replay._KeepAll):
    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    def request(self, name: str, client: tuple[str, int], server: tuple[str, int], start: float,
                order: int) -> None:
        self.requests += 1


def _downloads(sink: replay._KeepAll | replay._PhoneSink, scanner: FlowScanner) -> list[tuple[object, ...]]:
    return [(d.name, d.client, d.outcome, d.data, d.order) for d in sink.index(scanner).downloads]


@settings(max_examples=100, deadline=None)
@given(kinds=st.lists(st.sampled_from(["http", "hole", "tftp", "tls", "own", "big", "big", "own"]),
                      min_size=1, max_size=12),
       share=st.floats(min_value=0, max_value=1.5), seed=st.integers(0, 1000), phone=st.booleans(),
       together=st.booleans())
def test_random_interleavings_stay_within_the_budget(kinds: list[str], share: float, seed: int,
                                                     phone: bool, together: bool) -> None:
    """Whatever the flows and their interleaving (or none), and whichever sink keeps the downloads (every
    one, or one phone's): the accounted total is what the open flows and the kept downloads hold, within the
    budget after every packet; each flow ended early and each kept download dropped is one warning;
    every request seen is a download and every TLS connection seen is reported (a flow ended before
    its request or hello is seen is only the warning); and when nothing had to give way, the downloads
    are those of a scan without a budget to speak of."""
    rng = random.Random(seed)

    def flow(i: int, k: str) -> list[Packet]:
        if k in ("http", "hole", "big"):
            return _http_flow(i, rng.randrange(1, 100_000 if k == "big" else 9000), hole=k == "hole")
        if k == "own":
            return _http_flow(i, rng.randrange(1, 9000), hole=False, name=f"SEP{MAC}.cnf.xml")
        return _tftp_flow(i, rng.randrange(1, 30)) if k == "tftp" else _tls_flow(i, rng.randrange(1, 9000))
    made = [flow(i, k) for i, k in enumerate(kinds)]
    packets = _packets(_interleave(made, rng) if together else [p for f in made for p in f])  # else: in turn
    limit = max(1, int(share * sum(len(p.payload) + PIECE_COST for p in packets)))  # a share of the capture

    def scan(limit: int) -> tuple[FlowScanner, replay._KeepAll | replay._PhoneSink, _Tls, list[str]]:
        sink = replay._PhoneSink(MAC) if phone else _Counting()
        tls, warnings = _Tls(), []
        scanner = FlowScanner(sink, tls=tls, limits=Limits(max_memory=limit), warn=warnings.append)
        for pkt in packets:
            scanner.feed(pkt)
            assert scanner.budget.total == held(scanner)
            assert scanner.held == held(scanner) + kept(sink) <= limit
        scanner.close()
        assert scanner.budget.total == 0 and not scanner.budget.holders and not scanner.budget.flows
        assert scanner.held == kept(sink) <= limit
        return scanner, sink, tls, warnings
    scanner, sink, tls, warnings = scan(limit)
    event(f"flows ended early: {bool(scanner.over_budget)}, kept downloads dropped: {bool(scanner.dropped)}")
    assert len([w for w in warnings if "capture offset" in w and "(the overall budget)" in w]) == \
        scanner.over_budget + scanner.dropped
    assert len(tls.ended) == scanner.tls_connections
    if isinstance(sink, _Counting):
        assert len(sink.downloads) == sink.requests
        if not scanner.over_budget:
            assert sink.requests == sum(k != "tls" for k in kinds)
    if not scanner.over_budget:
        assert len(tls.ended) == kinds.count("tls")
    if not scanner.over_budget and not scanner.dropped:  # it fits: the budget changes nothing
        unbounded, sink2, _tls, _warnings = scan(1 << 30)
        assert _downloads(sink, scanner) == _downloads(sink2, unbounded)


def test_limits_must_be_positive() -> None:
    with pytest.raises(PhoneEmuError, match=r"Limits.max_memory: expected a positive integer, got 0"):
        Limits(max_memory=0)


def test_the_cli_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--max-memory 1``: three connections each holding 600 KB out of order, 1 MiB in all."""
    p = tmp_path / "ooo.pcap"
    with PcapWriter(p, clock=lambda: 1_780_000_000.0) as w:
        for i in range(3):
            for proto, src, sport, dst, dport, seq, flags, payload in _http_flow(i, 600_000, hole=True):
                assert proto == "tcp"
                for at in range(0, max(len(payload), 1), 1400):  # within one snaplen record
                    w.tcp((src, sport), (dst, dport), seq=seq + at, ack=0, flags=flags,
                          payload=payload[at:at + 1400])
    assert main(["replay", str(p), "--list", "--max-memory", "1"]) == 0
    err = capsys.readouterr().err
    assert "replay: warning: http 10.0.0.1:20000 -> 10.0.0.11:6970: " in err
    assert f"more than {1 << 20} (the overall budget)" in err
    assert main(["replay", str(p), "--list"]) == 0
    assert "overall budget" not in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["replay", str(p), "--list", "--max-memory", "0"])
    assert flows.MAX_MEMORY == 256 << 20
