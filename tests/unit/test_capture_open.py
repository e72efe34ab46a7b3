"""Opening a capture for writing (:class:`phoneemu.net.capture.PcapWriter`, module rules).

Rules: a capture file that cannot be opened or begun (a read-only folder, a folder that is a file, a full
disk) is an EncodeError naming it, no temporary file left; a FIFO with no reader is waited for, as
``tcpdump -w`` waits (a user starts Wireshark on it), said first on stderr (``on_wait``), then written."""

from __future__ import annotations

import errno
import os
import select
import sys
import threading
from pathlib import Path

import pytest

from phoneemu.errors import EncodeError
from phoneemu.net.capture import PcapWriter, read_pcap

SRC, DST = ("127.0.0.1", 40000), ("127.0.0.1", 69)


def test_a_capture_under_a_file_is_an_error_naming_it(tmp_path: Path) -> None:
    """Old code: a bare NotADirectoryError out of PcapWriter."""
    (tmp_path / "not-a-folder").write_bytes(b"")
    pcap = tmp_path / "not-a-folder" / "x.pcap"
    with pytest.raises(EncodeError, match="cannot write the capture: Not a directory") as caught:
        PcapWriter(pcap)
    assert caught.value.file == str(pcap) and str(pcap) in str(caught.value)


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root writes a read-only folder")
def test_a_capture_in_a_read_only_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(EncodeError, match="Permission denied") as caught:
            PcapWriter(folder / "x.pcap")
    finally:
        folder.chmod(0o700)
    assert caught.value.file == str(folder / "x.pcap")


def test_a_capture_whose_header_cannot_be_written_is_an_error_leaving_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk at the file header: old code, an OSError naming the file as ``cannot write: ...``, not
    one of ours."""
    def full(_fd: int, _data: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)  # (AtomicFile writes with os.write)
    with pytest.raises(EncodeError, match="No space left on device") as caught:
        PcapWriter(tmp_path / "x.pcap")
    assert caught.value.file == str(tmp_path / "x.pcap") and os.listdir(tmp_path) == []


def _read_all(fd: int) -> bytes:
    """What the FIFO's writer sends until it closes it (each wait 5 s at most, 100 reads at most)."""
    got = b""
    for _ in range(100):
        ready, _w, _x = select.select([fd], [], [], 5.0)
        assert ready, "the capture wrote nothing for 5 s"
        chunk = os.read(fd, 65536)
        if not chunk:
            return got
        got += chunk
    raise AssertionError("the capture did not end")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
def test_a_fifo_with_no_reader_is_waited_for_said_on_stderr(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Old code: open() blocked in silence. Now the wait is said on stderr before it, and once a reader
    comes (Wireshark) the capture goes to it."""
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    waiting = threading.Event()
    outcome: list[object] = []

    class _Stderr:  # the default on_wait prints to sys.stderr: see it happen from the writer's thread
        def write(self, text: str) -> int:
            outcome.append(text)
            if "waiting for a reader on FIFO" in text:
                waiting.set()
            return len(text)

        def flush(self) -> None:
            pass

    def capture() -> None:
        try:
            with PcapWriter(fifo) as w:
                w.udp(SRC, DST, b"\x00\x01file\x00octet\x00")
        except Exception as exc:  # reported to the test below
            outcome.append(exc)

    monkeypatch.setattr(sys, "stderr", _Stderr())
    writer = threading.Thread(target=capture, daemon=True)
    try:
        writer.start()
        said = waiting.wait(5.0)
    finally:  # a reader in every case: the writer's blocking open returns, the thread ends
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        data = _read_all(fd)
    finally:
        os.close(fd)
        writer.join(5.0)
    assert said, f"nothing said before waiting: {outcome}"
    assert not writer.is_alive() and not [o for o in outcome if isinstance(o, Exception)]
    assert any(str(fifo) in str(o) for o in outcome)
    (tmp_path / "copy.pcap").write_bytes(data)
    assert [p.payload for p in read_pcap(tmp_path / "copy.pcap")] == [b"\x00\x01file\x00octet\x00"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")
def test_a_fifo_with_a_reader_is_written_without_a_word(tmp_path: Path) -> None:
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    told: list[str] = []
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        with PcapWriter(fifo, on_wait=told.append) as w:
            w.udp(SRC, DST, b"x")
        data = _read_all(fd)
    finally:
        os.close(fd)
    assert told == [] and data[:4] == b"\xd4\xc3\xb2\xa1"
