"""A capture whose FIFO reader goes away (:class:`phoneemu.net.capture.PcapWriter`, class docstring).

Rules: a write that fails once the capture is open (the reader of a FIFO closed Wireshark: EPIPE)
stops the capture; nothing is raised (the TFTP server, boot or fleet it watches goes on); ``stopped``
is an EncodeError naming the file ("reader of F went away after N bytes", N the bytes written to it),
told once (``on_stop``, else ``on_wait``, else stderr); later packets are dropped and counted. A FIFO
is written unbuffered: each record reaches its reader as it is written."""

from __future__ import annotations

import errno
import os
import select
from pathlib import Path

import pytest

from phoneemu.errors import EncodeError
from phoneemu.net.capture import PcapWriter
from phoneemu.net.tftp import TftpServer, tftp_get
from tests.helpers import run

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")

SRC, DST = ("127.0.0.1", 40000), ("127.0.0.1", 69)


def _fifo_with_reader(tmp_path: Path) -> tuple[Path, int]:
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    return fifo, os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # a reader first: the writer does not wait


def _read_ready(fd: int) -> bytes:
    """What the FIFO holds now (its writer is on this thread: nothing more is coming meanwhile)."""
    got = b""
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        got += chunk
    return got


def test_reader_gone_mid_capture_stops_it_naming_the_file_nothing_raised(tmp_path: Path) -> None:
    """Old code: BrokenPipeError out of ``udp()`` (into the server feeding it) and out of ``close()``."""
    fifo, reader = _fifo_with_reader(tmp_path)
    told: list[str] = []
    w = PcapWriter(fifo, on_stop=told.append)
    try:
        w.udp(SRC, DST, b"\x00\x01first\x00octet\x00")
        got = _read_ready(reader)
    finally:
        os.close(reader)  # Wireshark closed
    for i in range(50):  # more than a pipe buffer: every write after the reader left fails
        w.udp(SRC, DST, bytes([i]) * 1400)
    w.close()
    w.close()
    assert isinstance(w.stopped, EncodeError) and w.stopped.file == str(fifo)
    assert w.stopped.message == f"reader of {fifo} went away after {len(got)} bytes"
    assert w.count == 1 and w.dropped == 50 and w.written == len(got)
    assert told == [f"{fifo}: reader went away after {len(got)} bytes: capture stopped (the run goes on)"]


def test_reader_gone_is_said_on_stderr_by_default(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fifo, reader = _fifo_with_reader(tmp_path)
    w = PcapWriter(fifo)
    os.close(reader)
    w.udp(SRC, DST, b"x")
    w.udp(SRC, DST, b"y")
    w.close()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and f"{fifo}: reader went away after 24 bytes" in lines[0], lines


def test_a_fifo_gets_each_record_as_it_is_written(tmp_path: Path) -> None:
    """Old code: records waited in an 8 KiB buffer, so Wireshark on the FIFO saw nothing of a short run
    until the capture ended."""
    fifo, reader = _fifo_with_reader(tmp_path)
    try:
        with PcapWriter(fifo) as w:
            assert len(_read_ready(reader)) == 24  # the file header
            w.udp(SRC, DST, b"\x00\x01a\x00octet\x00")
            assert len(_read_ready(reader)) == 16 + 20 + 8 + 10  # record header, IPv4, UDP, payload
    finally:
        os.close(reader)


def test_a_failed_write_of_a_stream_given_stops_the_capture_too() -> None:
    """A sink given to the writer (not named by path) failing with another error (a full disk)."""
    class _Full:
        name = "capture.pcap"

        def __init__(self) -> None:
            self.calls = 0

        def write(self, data: bytes, /) -> int:
            self.calls += 1
            if self.calls > 1:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return len(data)

        def flush(self) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def close(self) -> None:
            pass

    w = PcapWriter(_Full(), on_stop=lambda _text: None)  # type: ignore[arg-type]
    w.udp(SRC, DST, b"x")
    w.close()
    assert w.stopped is not None and w.stopped.file == "capture.pcap"
    assert "cannot write the capture after 24 bytes: No space left on device" in str(w.stopped)


def test_a_tftp_transfer_goes_on_when_its_capture_reader_goes_away(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The server feeding the capture: the transfer completes, the capture stopped (old code: the
    BrokenPipeError escaped the server's datagram handling and the transfer never completed)."""
    fifo, reader = _fifo_with_reader(tmp_path)
    body = bytes(range(256)) * 40

    async def main() -> bytes:
        with PcapWriter(fifo) as w:
            os.close(reader)
            async with TftpServer({"ITLFile.tlv": body}, "127.0.0.1", 0, capture=w) as srv:
                return await tftp_get("127.0.0.1", srv.port, "ITLFile.tlv", blksize=512, timeout=2.0)

    assert run(main(), limit=20) == body
    told = capsys.readouterr().err.splitlines()
    assert len(told) == 1 and f"{fifo}: reader went away after 24 bytes" in told[0], told
