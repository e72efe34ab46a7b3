"""A capture that stopped early says so (:mod:`phoneemu.scenario.capturing` rules, "A capture stopped
early"; :mod:`phoneemu.commands._capture` rules): its note file, the summary line of ``boot`` / ``fleet
boot --capture`` and ``fleet boot --json`` say why, after how many bytes, the packets written and dropped.

Before: after "reader of F went away after 100 bytes: capture stopped", the summary still said ``capture:
F (60 packets, written as they came)``, the note file and the JSON said nothing of the stop."""

from __future__ import annotations

import errno
import json
import os
import select
from pathlib import Path
from types import SimpleNamespace

import pytest

from phoneemu.commands import fleet as fleet_cmd
from phoneemu.commands._capture import capture_summary
from phoneemu.fleet.metrics import FleetMetrics, RecordSpool
from phoneemu.fleet.shard import FleetResult
from phoneemu.net.capture import PcapWriter
from phoneemu.phone.boot import BootTarget
from phoneemu.scenario.capturing import CaptureStop, _why_stopped, open_capture

SRC, DST = ("127.0.0.1", 40000), ("127.0.0.11", 69)
RRQ = b"\x00\x01SEP0A00000000E7.cnf.xml\x00octet\x00"
STOP = CaptureStop(why="reader went away", after_bytes=100, packets_written=12, packets_dropped=48)


def _read_ready(fd: int) -> bytes:
    """What the FIFO holds now (its writer is this thread: nothing more is coming meanwhile)."""
    got = b""
    for _ in range(100):
        if not select.select([fd], [], [], 0)[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        got += chunk
    return got


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
def test_a_synthetic_capture_whose_reader_went_away_keeps_the_stop_its_note_says_it(tmp_path: Path) -> None:
    """``run --capture DIR`` with ``DIR/NAME.pcap`` a FIFO (synthetic mode): 5 packets read, the reader
    gone, 10 more dropped. Old code: no ``early_stop``; the note began with "synthetic capture"."""
    fifo = tmp_path / "s.pcap"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader first: the writer does not wait
    told: list[str] = []
    try:
        sink, _keylog = open_capture(tmp_path, "s", mode="synthetic", on_stop=told.append)
        for _ in range(5):
            sink.udp(SRC, DST, RRQ)
        got = _read_ready(reader)
    finally:
        os.close(reader)  # Wireshark closed
    for _ in range(10):
        sink.udp(SRC, DST, RRQ)
    sink.close()
    assert len(told) == 1
    assert sink.early_stop == CaptureStop(why="reader went away", after_bytes=len(got), packets_written=5,
                                          packets_dropped=10)
    first = sink.note_path.read_text().splitlines()[0]
    assert first == (f"The capture stopped after {len(got)} bytes (reader went away): 5 packets written, "
                     "10 dropped: the packets after the stop are not in the pcap")


def test_the_summary_line_says_the_stop_in_place_of_the_size(tmp_path: Path) -> None:
    """Old code: ``capture: F (60 packets, written as they came), ...`` whatever the stop."""
    fifo = tmp_path / "live.pcap"
    cap = SimpleNamespace(path=fifo, count=12, keylog=tmp_path / "live.keys",
                          note_path=tmp_path / "live.note.txt", early_stop=STOP,
                          missing=["the kernel dropped 2 packet(s) ..."])
    assert capture_summary(cap) == [  # type: ignore[arg-type]
        f"capture: {fifo} stopped after 100 bytes (reader went away): 12 packets written, 48 dropped, "
        f"TLS key log {tmp_path / 'live.keys'}, what it holds: {tmp_path / 'live.note.txt'}",
        "capture: the kernel dropped 2 packet(s) ...",
    ]


def test_fleet_json_says_the_stop(tmp_path: Path) -> None:
    """``fleet boot --json``'s ``summary.capture.stopped`` (null when the capture did not stop). Old code:
    no ``stopped`` key."""
    out = tmp_path / "fleet.json"
    target = BootTarget(host="127.0.0.1", tftp_port=69)
    for stop, expected in ((STOP, {"why": "reader went away", "after_bytes": 100, "packets_written": 12,
                                   "packets_dropped": 48}), (None, None)):
        capture = SimpleNamespace(path=tmp_path / "f.pcap", keylog=tmp_path / "f.keys",
                                  note_path=tmp_path / "f.note.txt", count=12, max_bytes=1 << 20,
                                  truncated=False, kernel_drops=0, early_stop=stop)
        result = FleetResult(metrics=FleetMetrics(), records=RecordSpool())
        try:
            fleet_cmd._write_json(out, result, target, capture, profile="cp-8861")
        finally:
            result.close()
        cap = json.loads(out.read_text())["summary"]["capture"]
        assert cap["stopped"] == expected and cap["packets"] == 12


class _FailingSink:
    """A pcap sink that takes the file header, then fails every write with ``errno``."""

    name = "/tmp/F"

    def __init__(self, error: int) -> None:
        self.error = error
        self.calls = 0

    def write(self, data: bytes, /) -> int:
        self.calls += 1
        if self.calls > 1:
            raise OSError(self.error, os.strerror(self.error))
        return len(data)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize(("error", "why"), [
    (errno.EPIPE, "reader went away"),
    (errno.ENOSPC, f"write failed: {os.strerror(errno.ENOSPC)}"),
    (errno.EIO, f"write failed: {os.strerror(errno.EIO)}"),
])
def test_why_a_writer_stopped_in_a_few_words(error: int, why: str) -> None:
    """The writer keeps its own reason (``stop_cause``), the capture's stop says it. Old code: no
    ``stop_cause``; the reason was parsed back out of the writer's message."""
    writer = PcapWriter(_FailingSink(error), on_stop=lambda _text: None)  # type: ignore[arg-type]
    assert writer.stop_cause is None and _why_stopped(writer) == ""
    writer.udp(SRC, DST, RRQ)
    assert writer.stop_cause == why and _why_stopped(writer) == why
