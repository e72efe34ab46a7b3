"""``boot --capture FIFO`` (a live capture: Linux, root or CAP_NET_RAW; else skipped) whose reader goes
away: the summary line and the note file say the capture stopped, why, after how many bytes, the packets
written and dropped (:mod:`phoneemu.commands._capture` rules). Before: ``capture: F (60 packets, written
as they came)`` after "reader of F went away after 100 bytes: capture stopped", the note silent."""

from __future__ import annotations

import errno
import os
import socket
import threading
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.commands._capture import capture_keylog, capture_summary, open_host_capture
from phoneemu.net.capture import PcapWriter
from phoneemu.scenario.capturing import CaptureSink
from tests.helpers import skip_unless_live

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")

HOST = "127.0.0.91"  # the capture's --tftp host (no other test uses it: xdist workers capture side by side)
PACKETS, SIZE = 600, 300  # ~200 KB of pcap: more than a pipe's 64 KiB and what the reader reads
MAC = "0A00000000E8"


def _reader_that_goes_away(fifo: Path, after: int) -> threading.Thread:
    """A reader of ``fifo`` that reads ``after`` bytes, then closes it (Wireshark closed). Its open waits
    for the writer (the capture's, at its close)."""
    def read() -> None:
        fd = os.open(fifo, os.O_RDONLY)
        try:
            got = 0
            for _ in range(after):  # (bounded: a read gives a byte at least, or b"" at the end)
                chunk = os.read(fd, after - got)
                got += len(chunk)
                if not chunk or got >= after:
                    break
        finally:
            os.close(fd)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def _release(fifo: Path, reader: threading.Thread) -> None:
    """A reader still waiting for a writer (the code under test never opened the FIFO) is let go."""
    reader.join(10)
    if reader.is_alive():
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        reader.join(5)


def test_a_live_capture_whose_fifo_reader_went_away_says_so_in_its_summary_and_note(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real FIFO and a real reader (reads 100 bytes, closes): the capture, written at close, stops."""
    skip_unless_live(tmp_path)
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    keylog = capture_keylog(fifo, None)
    assert keylog is not None
    capture = open_host_capture(fifo, keylog, HOST, said_by="phoneemu boot")
    assert capture is not None
    reader = _reader_that_goes_away(fifo, 100)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((HOST, 0))
            for i in range(PACKETS):
                udp.sendto(bytes([i & 0xFF]) * SIZE, udp.getsockname())
    finally:
        capture.close()
        _release(fifo, reader)
    stop = capture.early_stop
    assert stop is not None and stop.why == "reader went away", stop
    assert stop.after_bytes >= 100 and stop.packets_dropped > 0 and capture.count == stop.packets_written
    lines = capture_summary(capture)
    assert lines[0] == (f"capture: {fifo} stopped after {stop.after_bytes:,} bytes (reader went away): "
                        f"{stop.packets_written} packets written, {stop.packets_dropped} dropped, "
                        f"TLS key log {keylog}, what it holds: {capture.note_path}")
    assert capture.note_path.read_text().splitlines()[0] == stop.note_line()
    said = [line for line in capsys.readouterr().err.splitlines() if "went away" in line]
    assert said == [f"phoneemu boot: capture {fifo}: reader went away after {stop.after_bytes} bytes: "
                    "capture stopped (the run goes on)"]


class _GoneAfter:
    """A capture sink whose reader goes away after ``after`` bytes: it takes them, then EPIPE."""

    def __init__(self, name: str, after: int) -> None:
        self.name, self.left = name, after

    def write(self, data: bytes, /) -> int:
        if not self.left:
            raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))
        n = min(len(data), self.left)
        self.left -= n
        return n

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def test_boot_capture_says_the_stop_in_its_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``boot --capture F`` end to end, F's writer given a sink whose reader goes away after 30 bytes (the
    file header and a piece of the first record). Old code: ``capture: F (N packets, ...)``."""
    skip_unless_live(tmp_path)
    pcap = tmp_path / "boot.pcap"

    def gone_after_30(_sink: CaptureSink, path: str | Path) -> PcapWriter:
        return PcapWriter(_GoneAfter(str(path), 30), on_stop=lambda _text: None)  # type: ignore[arg-type]

    monkeypatch.setattr(CaptureSink, "_pcap_writer", gone_after_30)
    rc = main(["boot", "--tftp", "127.0.0.1:9", "--mac", MAC, "--no-http", "--timeout", "0.05",
               "--capture", str(pcap)])
    err = capsys.readouterr().err
    assert rc == 1, err
    summary = [line for line in err.splitlines() if line.startswith(f"phoneemu boot: capture: {pcap}")]
    assert len(summary) == 1, err
    assert summary[0].startswith(f"phoneemu boot: capture: {pcap} stopped after 30 bytes (reader went away): "
                                 "0 packets written, "), summary
    note = pcap.with_suffix(".note.txt").read_text().splitlines()[0]
    assert note.startswith("The capture stopped after 30 bytes (reader went away): 0 packets written, "), note


def test_a_capture_to_dev_stdout_sent_to_a_file_is_written_there(tmp_path: Path) -> None:
    """``--capture /dev/stdout > boot.pcap``: /dev/stdout links to /proc/self/fd/1, the file the shell
    opened; the pcap goes there, after what it holds, and the link stays a link (was: a temporary file
    renamed over the link itself — as root, the machine's /dev/stdout replaced by a regular file)."""
    shell_file = tmp_path / "boot.pcap"
    with shell_file.open("wb", buffering=0) as opened:
        stdout_link = tmp_path / "stdout"  # a stand-in for /dev/stdout
        stdout_link.symlink_to(f"/proc/self/fd/{opened.fileno()}")
        capture = PcapWriter(stdout_link)
        capture.udp(("127.0.0.1", 5000), ("127.0.0.1", 69), b"\x00\x01x\x00octet\x00", ts=1.0)
        capture.close()
        assert stdout_link.is_symlink()
    data = shell_file.read_bytes()
    assert data[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    assert data.endswith(b"\x00\x01x\x00octet\x00") and sorted(p.name for p in tmp_path.iterdir()) == [
        "boot.pcap", "stdout"]
