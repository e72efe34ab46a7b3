"""A capture file is 0600 whatever the umask (:mod:`phoneemu.net.capture` rules): it holds the configs,
which may carry SIP digest passwords, as a TLS key log holds every session's secrets. Before: created
0644 under a umask of 022 (the key log beside it was 0600 already).

Each test sets the umask to 022 (the usual one) and puts the old one back.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.net.capture import PcapWriter, read_pcap

C4, S4 = ("127.0.0.1", 40000), ("127.0.0.1", 69)


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_capture_is_0600_under_umask_022(tmp_path: Path) -> None:
    pcap = tmp_path / "boot.pcap"
    with _umask(0o022), PcapWriter(pcap) as w:
        w.udp(C4, S4, b"\x00\x01SEP001122334455.cnf.xml\x00octet\x00")
    assert _mode(pcap) == 0o600
    assert [p.payload for p in read_pcap(pcap)] == [b"\x00\x01SEP001122334455.cnf.xml\x00octet\x00"]


def test_an_existing_capture_given_again_is_made_0600(tmp_path: Path) -> None:
    """A regular file named again (``boot --capture old.pcap``) is replaced, 0600, as a key log given
    again is narrowed to 0600 (:func:`phoneemu.files.private_file`)."""
    pcap = tmp_path / "old.pcap"
    pcap.write_bytes(b"old")
    pcap.chmod(0o644)
    with _umask(0o022), PcapWriter(pcap) as w:
        w.udp(C4, S4, b"new")
    assert _mode(pcap) == 0o600
    assert [p.payload for p in read_pcap(pcap)] == [b"new"]


def test_run_capture_synthetic_pcap_and_key_log_are_both_0600(tmp_path: Path) -> None:
    """``run --capture DIR`` where no raw socket can be opened: the rebuilt pcap (and its key log)."""
    from phoneemu.scenario.capturing import open_capture

    with _umask(0o022):
        sink, keylog = open_capture(tmp_path, "synth", mode="synthetic")
        sink.udp(C4, S4, b"\x00\x01SEP001122334455.cnf.xml\x00octet\x00")
        sink.close()
    assert _mode(sink.path) == 0o600
    assert _mode(keylog) == 0o600


def test_boot_capture_live_pcap_is_0600(tmp_path: Path) -> None:
    """``boot --capture F.pcap`` and ``fleet boot --capture`` (Linux, root or CAP_NET_RAW: else skipped)."""
    from phoneemu.commands._capture import capture_keylog, open_host_capture
    from phoneemu.errors import PhoneEmuError

    pcap = tmp_path / "boot.pcap"
    with _umask(0o022):
        keylog = capture_keylog(pcap, None)
        assert keylog is not None
        try:
            capture = open_host_capture(pcap, keylog, "127.0.0.1")
        except PhoneEmuError as exc:
            pytest.skip(str(exc))
        assert capture is not None
        try:  # the spool the live capture writes its packets to before the pcap: as private
            spool = pcap.with_name(pcap.name + ".spool")
            assert spool.is_file() and _mode(spool) == 0o600
        finally:
            capture.close()
    assert pcap.is_file() and _mode(pcap) == 0o600
    assert _mode(keylog) == 0o600


def test_a_keylog_given_is_made_at_once_0600_and_appended_to(tmp_path: Path) -> None:
    """``boot --capture F --keylog K`` names K in its summary: K exists even when no TLS session wrote to
    it (was: named, never made); one already there keeps its lines, narrowed to 0600."""
    from phoneemu.commands._capture import capture_keylog

    new = tmp_path / "new.keys"
    with _umask(0o022):
        assert capture_keylog(tmp_path / "boot.pcap", new) == new
    assert new.is_file() and new.read_bytes() == b"" and _mode(new) == 0o600
    old = tmp_path / "old.keys"
    old.write_bytes(b"CLIENT_RANDOM aa bb\n")
    old.chmod(0o644)
    with _umask(0o022):
        capture_keylog(None, old)
    assert old.read_bytes() == b"CLIENT_RANDOM aa bb\n" and _mode(old) == 0o600


def test_a_capture_to_a_fifo_tells_no_byte_count(tmp_path: Path) -> None:
    """A FIFO has no size: the summary said "0 bytes" for a capture that wrote packets to it."""
    from types import SimpleNamespace

    from phoneemu.commands._capture import capture_summary

    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    cap = SimpleNamespace(path=fifo, count=60, keylog=tmp_path / "k", note_path=tmp_path / "n", missing=[],
                          early_stop=None)
    line = capture_summary(cap)[0]  # type: ignore[arg-type]
    assert "60 packets" in line and "0 bytes" not in line and "written as they came" in line
    whole = tmp_path / "whole.pcap"
    whole.write_bytes(b"x" * 1234)
    assert "1,234 bytes" in capture_summary(SimpleNamespace(  # type: ignore[arg-type]
        path=whole, count=3, keylog=tmp_path / "k", note_path=tmp_path / "n", missing=[], early_stop=None))[0]
