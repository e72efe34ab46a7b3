"""A capture named as a FIFO with no reader says it waits for one, said by the command as typed
(``phoneemu boot: capture F: waiting for a reader on FIFO ...``; :mod:`phoneemu.cli` rules, ours). Before,
every capture's pcap writer was made without ``on_wait`` (:mod:`phoneemu.scenario.capturing`), so the line
said ``phoneemu: capture F: ...``, the one stderr line of ``boot --capture`` said by no command."""

from __future__ import annotations

import os
import select
import sys
import threading
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.scenario.capturing import open_capture
from tests.helpers import skip_unless_live

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs")

MAC = "0A00000000E7"
WAITING = "waiting for a reader on FIFO"


class _Stderr:
    """sys.stderr for the test: keeps what is written, ``said`` set once the FIFO wait is said."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.said = threading.Event()

    def write(self, text: str) -> int:
        self.lines.append(text)
        if WAITING in text:
            self.said.set()
        return len(text)

    def flush(self) -> None:
        pass


def _read_all(fd: int) -> bytes:
    """What the FIFO's writer sends until it closes it (each wait 5 s at most, 1,000 reads at most)."""
    got = b""
    for _ in range(1000):
        ready, _w, _x = select.select([fd], [], [], 5.0)
        if not ready:
            return got
        chunk = os.read(fd, 65536)
        if not chunk:
            return got
        got += chunk
    return got


def _reader(fifo: Path, said: threading.Event, got: list[bytes]) -> threading.Thread:
    """A reader of ``fifo`` started once the wait is said (30 s at most: then anyway, so the writer's
    blocking open returns whatever the code under test said)."""
    def read() -> None:
        said.wait(30)
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            got.append(_read_all(fd))
        finally:
            os.close(fd)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def test_boot_capture_to_a_fifo_says_its_wait_as_boot(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """``boot --capture FIFO`` (a live capture: root) against a port where nothing listens: its pcap is
    written to the FIFO at the end, the wait said ``phoneemu boot: capture FIFO: waiting ...``."""
    skip_unless_live(tmp_path)
    fifo = tmp_path / "boot.pcap"
    os.mkfifo(fifo)
    err = _Stderr()
    got: list[bytes] = []
    reader = _reader(fifo, err.said, got)
    monkeypatch.setattr(sys, "stderr", err)
    rc = main(["boot", "--tftp", "127.0.0.1:9", "--mac", MAC, "--no-http", "--timeout", "0.05",
               "--capture", str(fifo)])
    reader.join(10)
    monkeypatch.undo()
    text = "".join(err.lines)
    assert rc == 1, text
    waits = [line for line in text.splitlines() if WAITING in line]
    assert waits == [f"phoneemu boot: capture {fifo}: {WAITING} (as tcpdump -w: e.g. wireshark -k -i "
                     f"{fifo})"], text
    assert got and got[0][:4] == b"\xd4\xc3\xb2\xa1", got  # the pcap reached the reader


def test_open_capture_gives_its_writer_on_wait(tmp_path: Path) -> None:
    """``open_capture(..., on_wait=)`` (``run --capture DIR`` where ``DIR/NAME.pcap`` is a FIFO): the wait
    is told to ``on_wait``, not said on stderr by ``phoneemu``."""
    fifo = tmp_path / "caps" / "s.pcap"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    told: list[str] = []
    said = threading.Event()
    got: list[bytes] = []

    def tell(text: str) -> None:
        told.append(text)
        said.set()

    reader = _reader(fifo, said, got)
    sink, _keylog = open_capture(tmp_path / "caps", "s", mode="synthetic", on_wait=tell)
    sink.udp(("127.0.0.1", 5000), ("127.0.0.11", 69), b"\x00\x01SEP.cnf.xml\x00octet\x00")
    sink.close()
    reader.join(10)
    assert told == [f"{fifo}: {WAITING} (as tcpdump -w: e.g. wireshark -k -i {fifo})"]
    assert got and got[0][:4] == b"\xd4\xc3\xb2\xa1"
