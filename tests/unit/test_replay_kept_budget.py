"""Kept downloads count against the overall budget of a replay's scan (``_capture_flows`` "Overall
budget", ``replay`` "Bounded"): their bytes once per copy; beyond, the least useful give up their bytes —
cluster-wide before the phone's own, the largest first — each with a warning naming the file, the capture
offset and the budget. A capture of many completed large downloads stays within the budget and the
phone's decisions are those of the clean capture."""

from __future__ import annotations

import asyncio
import io
import struct
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.net.capture import PcapWriter, TcpFlow
from phoneemu.scenario import replay
from phoneemu.scenario.replay import Download, Limits, index_capture, replay_phone
from phoneemu.scenario.replay_tvs import scan_capture
from tests.helpers import without_durations

CAPTURES = Path(__file__).resolve().parents[2] / "captures"
FIRST = CAPTURES / "first-boot-trusts-first-itl.pcap"
MAC, LAB = "0A0000000001", "127.0.0.11"
MIB = 1 << 20


def _dl(name: str, data: bytes | None, order: int, *,
        client: tuple[str, int] = ("127.0.0.1", 5000)) -> Download:
    return Download(name=name, protocol="http", client=client, server=(LAB, 6970), start=1.0, end=1.0,
                    outcome="ok", data=data, order=order, size=len(data) if data is not None else None)


# --------------------------------------------------------------------------- the accounting
def test_bytes_count_once_per_copy_and_leave_with_their_last_place() -> None:
    kept = replay._Kept()
    data = bytes(1000)
    a = [_dl("ITLFile.tlv", data, 1)]
    b = [None, _dl("ITLFile.tlv", data, 2)]
    kept.hold(a, 0)
    kept.hold(b, 1)
    kept.hold(b, 0)  # nothing there: nothing counted
    assert kept.held == 1000 + replay.PIECE_COST
    kept.release(a, 0)
    assert kept.held == 1000 + replay.PIECE_COST  # still kept in b
    kept.release(b, 1)
    assert kept.held == 0
    assert kept.drop("why") is None  # nothing kept: nothing to drop (the stale entry is skipped)


def test_the_least_useful_give_up_their_bytes_first() -> None:
    """Cluster-wide before the phone's own, the largest first, then the earliest request; each download
    holding the bytes is replaced, in every place, by one ``too-large`` download saying why."""
    kept = replay._Kept()
    own_big = _dl(f"SEP{MAC}.cnf.xml", bytes(5000), 1)
    small, big_late, big_early = (_dl("ITLFile.tlv", b"i" * 100, 2), _dl("load-b.bin", b"b" * 3000, 9),
                                  _dl("load-a.bin", b"a" * 3000, 3))
    own, slot = [own_big], [None, small, None, big_late]
    other = [big_early, big_late]
    for where, i in ((own, 0), (slot, 1), (slot, 3), (other, 0), (other, 1)):
        kept.hold(where, i)
    assert kept.held == 5000 + 100 + 3000 + 3000 + 4 * replay.PIECE_COST
    order = [kept.drop(f"why {n}") for n in range(5)]
    assert [d.name if d else None for d in order] == ["load-a.bin", "load-b.bin", "ITLFile.tlv",
                                                      f"SEP{MAC}.cnf.xml", None]
    assert kept.held == 0
    assert slot[3] is other[1]  # one replacement for a download kept in two places
    assert slot[3].outcome == "too-large" and slot[3].data is None and slot[3].size is None
    assert slot[3].detail == "3000 bytes received; why 1"
    assert own[0].outcome == "too-large" and own[0].detail == "5000 bytes received; why 3"


def _really_kept(sink: replay._PhoneSink) -> int:
    downloads = [*sink.own, *(d for slot in sink.shared.values() for d in (slot[1], slot[3]))]
    data = {id(d.data): d.data for d in downloads if d is not None and d.data is not None}
    return sum(len(b) + replay.PIECE_COST for b in data.values())


def test_a_phone_sink_counts_what_its_slots_hold() -> None:
    """Identical bytes of one name share one copy; a download no slot keeps any longer leaves the count."""
    sink = replay._PhoneSink(MAC)
    sink.request(f"SEP{MAC}.cnf.xml", ("127.0.0.1", 5000), (LAB, 6970), 1.0, 1)
    sink.add(_dl(f"SEP{MAC}.cnf.xml", bytes(700), 1))
    assert sink.held == _really_kept(sink) == 700 + replay.PIECE_COST
    for order, data in ((5, b"x" * 400), (6, b"x" * 400), (7, b"y" * 300), (4, b"z" * 200)):
        sink.add(_dl("ITLFile.tlv", data, order, client=("127.0.0.2", 6000)))  # another client
        assert sink.held == _really_kept(sink)
    # first ok: order 4 (arrived last, requested first); last: order 7; the x's are no longer kept
    assert sink.held == 700 + 300 + 200 + 3 * replay.PIECE_COST
    assert sink.drop("why").name == "ITLFile.tlv" and sink.held == _really_kept(sink)


# --------------------------------------------------------------------------- an adversarial capture
def _records(path: Path) -> tuple[bytes, list[bytes]]:
    data = path.read_bytes()
    out, pos = [], 24
    while pos < len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        out.append(data[pos:pos + 16 + incl])
        pos += 16 + incl
    return data[:24], out


def adversarial(dst: Path, *, files: int = 40, kib: int = 256) -> Path:
    """The committed capture, then ``files`` completed HTTP 6970 downloads of distinct cluster-wide
    names from the phone's server by another client: kept for the phone's last boot window."""
    header, records = _records(FIRST)
    ts = struct.unpack_from("<I", records[-1])[0] + 1.0
    buf = io.BytesIO()
    w = PcapWriter(buf, clock=lambda: ts)
    for i in range(files):
        f = TcpFlow(w, ("127.0.0.50", 30000 + i), (LAB, 6970))
        body = bytes([i]) * (kib * 1024)
        f.client_data(f"GET /load{i:03}.bin HTTP/1.1\r\n\r\n".encode())
        f.server_data(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        f.close()
    w.close()
    dst.write_bytes(header + b"".join(records) + buf.getvalue()[24:])
    return dst


def _decisions(index: replay.CaptureIndex) -> Any:
    return without_durations([r.as_dict() for r in asyncio.run(replay_phone(index, MAC))])


def test_many_completed_large_downloads_stay_within_the_budget(tmp_path: Path) -> None:
    """40 downloads of 128 KiB (5 MiB) with a budget of 512 KiB: the scan's memory stays near the budget
    (it was all the downloads and more before kept downloads counted), the oldest give up their bytes, each
    named in a warning with the capture offset and the budget, and the phone's decisions are unchanged (its
    files and the cluster-wide ones of its boots are small). Sizes half the CLI's 1 MiB step: the
    same proportions, half the time."""
    budget, kib = MIB // 2, 128
    capture = adversarial(tmp_path / "adversarial.pcap", kib=kib)
    tracemalloc.start()
    try:
        scan = scan_capture(capture, mac=MAC, limits=Limits(max_memory=budget))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * budget, peak
    dropped = [w for w in scan.warnings if "gives up its" in w]
    assert dropped[0].startswith(f"http {LAB}:6970 'load000.bin': ")
    assert f"more than {budget} (the overall budget), capture offset " in dropped[0]
    assert f"gives up its {kib * 1024} bytes (reported too-large)" in dropped[0]
    assert scan.warnings[-1].startswith(f"{len(dropped)} kept downloads in all gave up their bytes")
    loads = [d for d in scan.index.downloads if d.name.startswith("load")]
    assert len(loads) == 40 and sum(d.ok for d in loads) <= 4  # at most the budget of them kept
    assert all("bytes dropped at capture offset" in d.detail for d in loads if not d.ok)
    assert _decisions(scan.index) == _decisions(index_capture(FIRST))


def test_the_cli_names_the_dropped_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capture = adversarial(tmp_path / "adversarial.pcap", files=8)
    clean = main(["replay", str(FIRST), "--mac", MAC])
    capsys.readouterr()
    assert main(["replay", str(capture), "--mac", MAC, "--max-memory", "1"]) == clean
    err = capsys.readouterr().err
    assert f"replay: warning: http {LAB}:6970 'load000.bin': " in err
    assert "more than 1048576 (the overall budget)" in err and "capture offset" in err
    assert main(["replay", str(capture), "--mac", MAC]) == clean
    assert "overall budget" not in capsys.readouterr().err
