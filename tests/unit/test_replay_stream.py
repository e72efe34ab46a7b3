"""Streaming replay: bounded flows, caps named in warnings, noise that changes nothing, damaged input.

Captures are the committed ones with other hosts' and other phones' traffic mixed in (``noisy``)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import random
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneemu.cli import main
from phoneemu.errors import PhoneEmuError
from phoneemu.net.capture import PcapWriter, TcpFlow
from phoneemu.net.tftp_codec import Data, ReadRequest, encode
from phoneemu.net.tls_decrypt import read_keylog
from phoneemu.scenario import _capture_flows as flows
from phoneemu.scenario import replay
from phoneemu.scenario.replay import Limits, ReplayResult, index_capture, replay_phone
from phoneemu.scenario.replay_tvs import scan_capture
from tests.helpers import without_durations

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
FIRST = CAPTURES / "first-boot-trusts-first-itl.pcap"
MIGRATION = CAPTURES / "migration-itl-signer-unknown.pcap"
PHONE, LAB = "127.0.0.1", "127.0.0.11"


def _records(path: Path) -> tuple[bytes, list[tuple[float, bytes]]]:
    data = path.read_bytes()
    out, pos = [], 24
    while pos < len(data):
        sec, usec, incl, _ = struct.unpack_from("<IIII", data, pos)
        out.append((sec + usec / 1e6, data[pos:pos + 16 + incl]))
        pos += 16 + incl
    return data[:24], out


def _noise(rng: random.Random, ts: float, *, same_server: bool) -> bytes:
    """A few packets of other hosts (RTP, TCP, TLS-looking) and of another phone (TFTP, HTTP 6970)."""
    buf = io.BytesIO()
    w = PcapWriter(buf, clock=lambda: ts)
    a, b = f"10.1.{rng.randrange(256)}.{rng.randrange(1, 255)}", f"10.2.0.{rng.randrange(1, 255)}"
    kind = rng.randrange(5)
    if kind == 0:
        for _ in range(3):
            w.udp((a, 16400), (b, 16400), b"\x80\x00" + bytes(rng.randrange(256) for _ in range(160)))
    elif kind == 1:
        f = TcpFlow(w, (a, rng.randrange(20000, 60000)), (b, 5060))
        f.client_data(b"INVITE sip:x SIP/2.0\r\n\r\n" + bytes(300))
        f.server_data(bytes(rng.randrange(256) for _ in range(900)))
        f.close()
    elif kind == 2:
        f = TcpFlow(w, (a, rng.randrange(20000, 60000)), (b, 443))
        f.client_data(b"\x16\x03\x01\x00\x05hello")
        f.server_data(b"\x16\x03\x03\x00\x02hi")
        f.close()
    else:  # another phone: its own config and a cluster-wide name
        mac = f"0B{rng.randrange(1 << 40):010X}"
        server = LAB if same_server else "127.0.0.99"
        client = PHONE if same_server else "127.0.0.2"
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(10, 3000)))
        if kind == 3:
            f = TcpFlow(w, (client, rng.randrange(50000, 60000)), (server, 6970), mss=700)
            for name in (f"SEP{mac}.cnf.xml.sgn", "ITLFile.tlv"):
                f.client_data(f"GET /{name} HTTP/1.1\r\n\r\n".encode())
                f.server_data(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
            f.close()
        else:
            c, s = (client, rng.randrange(50000, 60000)), (server, 69)
            w.udp(c, s, encode(ReadRequest(filename="ITLFile.tlv")))
            w.udp((server, 40001), c, encode(Data(block=1, data=body[:100])))
    w.close()
    return buf.getvalue()[24:]


def noisy(src: Path, dst: Path, *, per_packet: int = 2, same_server: bool = False, seed: int = 7) -> Path:
    header, records = _records(src)
    rng = random.Random(seed)
    t0 = records[0][0]
    with open(dst, "wb") as f:
        f.write(header)
        for i in range(20):
            f.write(_noise(rng, t0 - 10 + i * 0.1, same_server=same_server))
        for ts, rec in records:
            f.write(rec)
            for _ in range(per_packet):
                f.write(_noise(rng, ts, same_server=same_server))
        for i in range(20):
            f.write(_noise(rng, records[-1][0] + 1 + i * 0.1, same_server=same_server))
    return dst


def decisions(results: list[ReplayResult]) -> Any:
    return without_durations([r.as_dict() for r in results])


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --------------------------------------------------------------------------- noise changes nothing
@pytest.mark.parametrize("mac", ["0A0000000001", "0A0000000003"])
def test_noise_of_other_hosts_replays_with_the_same_decisions(tmp_path: Path, mac: str) -> None:
    loud = noisy(FIRST, tmp_path / "loud.pcap")
    clean = decisions(run(replay_phone(index_capture(FIRST), mac)))
    scan = scan_capture(loud, mac=mac)
    assert decisions(run(replay_phone(scan.index, mac))) == clean
    assert not scan.warnings
    # only the phone's own downloads and the cluster-wide ones of its server are kept
    assert {d.mac for d in scan.index.downloads} <= {mac, None}
    assert {d.server[0] for d in scan.index.downloads} == {LAB}
    assert len(scan.index.macs()) > 10  # the other phones are named (no downloads kept)


@pytest.mark.parametrize("capture", sorted(CAPTURES.glob("*.pcap")), ids=lambda p: p.stem)
def test_one_phone_scan_decides_as_the_full_index(tmp_path: Path, capture: Path) -> None:
    """Other phones fetching cluster-wide names from the same server in the same boot windows:
    the one-phone scan keeps only the downloads that can serve the phone, and decides the same."""
    loud = noisy(capture, tmp_path / "loud.pcap", same_server=True, per_packet=1)
    full = index_capture(loud)
    keys = read_keylog(capture.with_suffix(".keys"))
    for mac in [m for m in full.macs() if m.startswith("0A")]:
        scan = scan_capture(loud, mac=mac, secrets=keys)
        assert decisions(run(replay_phone(scan.index, mac, tvs_capture=scan.tvs))) == \
            decisions(run(replay_phone(full, mac, tvs_capture=scan.tvs)))
        assert {d.mac for d in scan.index.downloads} <= {mac, None}
        assert len(scan.index.downloads) < len(full.downloads)


def test_list_keeps_no_file_bytes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scan = scan_capture(FIRST)
    assert all(d.data is None for d in scan.index.downloads)
    assert [d.nbytes for d in scan.index.downloads] == [
        len(d.data) if d.data is not None else None for d in index_capture(FIRST).downloads]
    assert main(["replay", str(FIRST), "--list"]) == 0
    assert "phone 0A0000000001: 2 boots" in capsys.readouterr().out


def test_list_beyond_its_cap_counts_what_it_does_not_list(monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(replay, "MAX_LISTED", 5)
    assert main(["replay", str(FIRST), "--list"]) == 0
    out = capsys.readouterr().out
    total = len(index_capture(FIRST).downloads)
    assert f"... {total - 5} more downloads not listed (at most 5 are)" in out


# --------------------------------------------------------------------------- caps
def _one_http_get(tmp: Path, body: bytes, *, out_of_order: bool = False) -> Path:
    p = tmp / "big.pcap"
    with PcapWriter(p, clock=lambda: 1_780_000_000.0) as w:
        f = TcpFlow(w, (PHONE, 41000), (LAB, 6970), mss=1000)
        f.client_data(b"GET /SEP0A0000000001.cnf.xml.sgn HTTP/1.1\r\n\r\n")
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        if out_of_order:  # the first segment of the response comes last
            seq = f._seq[False]
            data = head + body
            for i in range(1000, len(data), 1000):
                w.tcp(f.server, f.client, seq=seq + i, ack=f._seq[True], flags=0x18, payload=data[i:i + 1000])
            w.tcp(f.server, f.client, seq=seq, ack=f._seq[True], flags=0x18, payload=data[:1000])
            f._seq[False] += len(data)
        else:
            f.server_data(head + body)
        f.close()
    return p


def test_a_file_over_the_cap_is_too_large_with_a_warning_naming_flow_and_offset(tmp_path: Path) -> None:
    p = _one_http_get(tmp_path, bytes(5000))
    scan = scan_capture(p, mac="0A0000000001", limits=Limits(max_file=4000))
    (d,) = scan.index.downloads
    assert d.outcome == "too-large" and d.data is None
    (warning,) = scan.warnings
    assert "http 127.0.0.1:41000 -> 127.0.0.11:6970 'SEP0A0000000001.cnf.xml.sgn'" in warning
    assert "Content-Length 5000" in warning and "capture offset " in warning and "4000" in warning
    ok = scan_capture(p, mac="0A0000000001")  # the default cap (32 MiB) takes it
    assert ok.index.downloads[0].data == bytes(5000) and not ok.warnings


def test_the_cli_prints_the_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    p = _one_http_get(tmp_path, bytes(5000))
    monkeypatch.setattr(flows, "Limits", functools.partial(flows.Limits, max_file=4000))
    assert main(["replay", str(p), "--mac", "0A0000000001"]) == 1
    err = capsys.readouterr().err
    assert "replay: warning: http 127.0.0.1:41000 -> 127.0.0.11:6970" in err and "too-large" in err


def test_tftp_over_the_cap(tmp_path: Path) -> None:
    p = tmp_path / "t.pcap"
    with PcapWriter(p, clock=lambda: 1_780_000_000.0) as w:
        c, s = (PHONE, 40000), (LAB, 50000)
        w.udp(c, (LAB, 69), encode(ReadRequest(filename="ITLFile.tlv")))
        for n in range(1, 5):
            w.udp(s, c, encode(Data(block=n, data=bytes(512))))
        w.udp(s, c, encode(Data(block=5, data=b"end")))
    scan = scan_capture(p, mac="0A0000000001", limits=Limits(max_file=1500))
    (warning,) = scan.warnings
    assert warning.startswith("tftp 127.0.0.1:40000 -> 127.0.0.11:50000 'ITLFile.tlv': more than 1500 bytes")
    assert "block 3" in warning and "capture offset " in warning


def test_out_of_order_segments_reassemble_within_the_cap_and_end_the_stream_beyond(tmp_path: Path) -> None:
    body = bytes(range(256)) * 20
    p = _one_http_get(tmp_path, body, out_of_order=True)
    (d,) = scan_capture(p, mac="0A0000000001").index.downloads
    assert d.data == body
    scan = scan_capture(p, mac="0A0000000001", limits=Limits(max_stream=3000))
    (d,) = scan.index.downloads
    assert d.outcome == "incomplete"
    (warning,) = scan.warnings
    assert "tcp 127.0.0.11:6970 -> 127.0.0.1:41000: more than 3000 out-of-order bytes" in warning
    assert "stream offset 0" in warning and "capture offset " in warning


def test_a_tls_connection_over_its_cap_is_not_decrypted_and_says_where(tmp_path: Path) -> None:
    keys = read_keylog(MIGRATION.with_suffix(".keys"))
    scan = scan_capture(MIGRATION, mac="0A0000000501", secrets=keys, limits=Limits(max_tls_stream=200))
    assert scan.tvs.exchanges == () and len(scan.tvs.problems) == 2
    assert "stream longer than 200 bytes" in scan.tvs.problems[0]
    assert "capture offset " in scan.tvs.problems[0] and len(scan.warnings) == 2


def test_open_flows_beyond_the_cap_end_as_they_stand(tmp_path: Path) -> None:
    scan = scan_capture(FIRST, mac="0A0000000001", limits=Limits(max_flows=1))
    assert any("open at once" in w for w in scan.warnings)
    assert all(d.outcome in ("ok", "not-found", "incomplete", "no-reply") for d in scan.index.downloads)


# --------------------------------------------------------------------------- damaged input
_BASE = MIGRATION.read_bytes()
_KEYS = read_keylog(MIGRATION.with_suffix(".keys"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(min_value=0, max_value=len(_BASE)), flips=st.lists(
    st.tuples(st.integers(min_value=0, max_value=len(_BASE) - 1), st.integers(min_value=0, max_value=255)),
    max_size=4), mac=st.sampled_from(["0A0000000501", None]))
def test_damaged_captures_only_ever_raise_the_projects_errors(tmp_path: Path, cut: int,
                                                              flips: list[tuple[int, int]],
                                                              mac: str | None) -> None:
    data = bytearray(_BASE)
    for at, value in flips:
        data[at] = value
    p = tmp_path / "damaged.pcap"
    p.write_bytes(bytes(data[:cut]))
    try:
        scan = scan_capture(p, mac=mac, secrets=_KEYS)
        if mac is not None:
            run(replay_phone(scan.index, mac, tvs_capture=scan.tvs))
    except PhoneEmuError as exc:
        assert exc.offset is not None or exc.path is not None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=2000))
def test_random_bytes_only_ever_raise_the_projects_errors(tmp_path: Path, junk: bytes) -> None:
    p = tmp_path / "junk.pcap"
    p.write_bytes(_BASE[:24] + junk if junk[:1] != b"\x00" else junk)
    with contextlib.suppress(PhoneEmuError):
        scan_capture(p, mac="0A0000000501", secrets=_KEYS)


def test_many_clients_on_the_phones_address_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay, "MAX_CLIENT_SLOTS", 1)
    scan = scan_capture(FIRST, mac="0A0000000001")
    assert any("more than 1 client endpoints on the phone's address(es)" in w for w in scan.warnings)
    assert len(run(replay_phone(scan.index, "0A0000000001"))) == 2


def test_a_tls_connection_the_key_log_cannot_open_is_dropped_at_its_hellos() -> None:
    """Without its key-log entry a connection is reported as before, but nothing past the hellos is
    kept: a cap far below the connection's size is never hit."""
    from phoneemu.net.tls_decrypt import KeyLog
    scan = scan_capture(MIGRATION, mac="0A0000000501", secrets=KeyLog(), limits=Limits(max_tls_stream=300))
    assert len(scan.tvs.problems) == 2 and all("no key-log entry" in p for p in scan.tvs.problems)
    assert not scan.warnings


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mss=st.integers(min_value=1, max_value=1500), swaps=st.lists(st.integers(min_value=0, max_value=400),
                                                                    max_size=8))
def test_segmentation_and_reordering_change_no_download(tmp_path: Path, mss: int, swaps: list[int]) -> None:
    """Segments of any size, some pairs swapped (inside the out-of-order cap): the same downloads."""
    body = bytes(range(256)) * 9
    segments: list[tuple[tuple[str, int], tuple[str, int], int, int, bytes]] = []
    c, s = (PHONE, 41000), (LAB, 6970)
    cseq, sseq = 1000, 5000
    for name in ("SEP0A0000000001.cnf.xml.sgn", "ITLFile.tlv"):
        req = f"GET /{name} HTTP/1.1\r\n\r\n".encode()
        segments.append((c, s, cseq, sseq, req))
        cseq += len(req)
        resp = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        for i in range(0, len(resp), mss):
            segments.append((s, c, sseq, cseq, resp[i:i + mss]))
            sseq += len(resp[i:i + mss])
    for i in swaps:
        if i + 1 < len(segments):
            segments[i], segments[i + 1] = segments[i + 1], segments[i]
    p = tmp_path / "seg.pcap"
    with PcapWriter(p, clock=lambda: 1_780_000_000.0) as w:
        w.tcp(c, s, seq=999, ack=0, flags=0x02)
        w.tcp(s, c, seq=4999, ack=1000, flags=0x12)
        for src, dst, seq, ack, payload in segments:
            w.tcp(src, dst, seq=seq, ack=ack, flags=0x18, payload=payload)
        w.tcp(c, s, seq=cseq, ack=sseq, flags=0x11)
        w.tcp(s, c, seq=sseq, ack=cseq + 1, flags=0x11)
    got = [(d.name, d.outcome, d.data) for d in scan_capture(p, mac="0A0000000001").index.downloads]
    assert got == [("SEP0A0000000001.cnf.xml.sgn", "ok", body), ("ITLFile.tlv", "ok", body)]
