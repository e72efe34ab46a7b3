"""User-named output files (``--json``, ``--json-file``, ``--plot``, fuzz ``summary.json``, reports) are
written with :func:`phoneemu.files.write_output`: whole or absent, never truncated by a write that dies
midway; a device is written in place."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from phoneemu import files
from phoneemu.cli import main


def _dies_midway(monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write

    def write(fd: int, data: bytes | memoryview) -> int:  # a kill (or a full disk) after part of the bytes
        real_write(fd, bytes(data[: max(1, len(data) // 2)]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "write", write)


def test_write_output_replaces_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "r.json"
    files.write_output(out, b'{"old": 1}\n')
    _dies_midway(monkeypatch)
    with pytest.raises(OSError, match="cannot write"):
        files.write_output(out, b'{"new": 2}\n' * 100)
    monkeypatch.undo()
    assert out.read_bytes() == b'{"old": 1}\n' and os.listdir(tmp_path) == ["r.json"]
    files.write_output(os.devnull, b"in place")  # a device: written, not replaced
    assert Path(os.devnull).exists() and not Path(os.devnull).is_file()


def test_fleet_json_is_never_left_truncated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    js = tmp_path / "fleet.json"
    js.write_text('{"previous": "run"}\n')
    _dies_midway(monkeypatch)
    code = main(["fleet", "boot", "--count", "1", "--tftp", "127.0.0.1:9", "--no-http", "--shards", "0",
                 "--timeout", "0.2", "--retries", "0", "--json", str(js)])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code != 0 and "cannot write: No space left on device" in err
    # never truncated; nor the earlier run's left for this one's (removed, said): absent
    assert os.listdir(tmp_path) == [] and f"--json {js}: the earlier file there removed" in err


def test_a_plot_is_written_whole_and_named_png_without_a_suffix(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    from phoneemu.fleet.metrics import FleetMetrics
    from phoneemu.fleet.plot import plot_metrics

    assert plot_metrics(FleetMetrics(), tmp_path / "p") == tmp_path / "p.png"  # as matplotlib names it
    before = (tmp_path / "p.png").read_bytes()
    _dies_midway(monkeypatch)
    with pytest.raises(OSError):
        plot_metrics(FleetMetrics(), tmp_path / "p.png")
    monkeypatch.undo()
    assert (tmp_path / "p.png").read_bytes() == before and sorted(os.listdir(tmp_path)) == ["p.png"]


def test_a_pcap_appears_whole_at_close_and_an_interrupted_one_keeps_the_previous(tmp_path: Path) -> None:
    from phoneemu.net.capture import PcapWriter, read_pcap

    out = tmp_path / "run.pcap"
    with PcapWriter(out) as w:
        w.udp(("127.0.0.1", 5000), ("127.0.0.1", 69), b"\x00\x01f\x00octet\x00")
    assert len(list(read_pcap(out))) == 1
    before = out.read_bytes()
    w = PcapWriter(out)  # a second run, killed before close(): the file named is never half-written
    w.udp(("127.0.0.1", 5000), ("127.0.0.1", 69), b"x" * 3000)
    assert out.read_bytes() == before
    w.close()
    assert len(list(read_pcap(out))) == 1 and out.read_bytes() != before
    assert sorted(os.listdir(tmp_path)) == ["run.pcap"]  # no temporary file left
    with PcapWriter(os.devnull) as dev:  # a device: written in place
        dev.udp(("127.0.0.1", 5000), ("127.0.0.1", 69), b"y")


def test_dev_stdout_redirected_to_a_file_is_written_in_place(tmp_path: Path) -> None:
    """``--json /dev/stdout > out.json``: /dev/stdout is a link to /proc/self/fd/1, which names the file
    the shell opened. Written in place (the shell's file gets the bytes, the link stays a link); was: a
    temporary file renamed over the link — /dev/stdout itself replaced by a regular file."""
    shell_file = tmp_path / "out.json"
    with shell_file.open("wb", buffering=0) as opened:  # the file the shell redirected stdout to
        opened.write(b"summary\n")  # what the command printed before: kept
        stdout_link = tmp_path / "stdout"  # a stand-in for /dev/stdout (not the machine's own)
        stdout_link.symlink_to(f"/proc/self/fd/{opened.fileno()}")
        files.check_writable(stdout_link, "--json")
        files.write_output(stdout_link, b'{"a": 1}\n')
        files.write_output_text(stdout_link, ['{"b": ', "2}\n"])
        assert stdout_link.is_symlink() and os.readlink(stdout_link).startswith("/proc/self/fd/")
    assert shell_file.read_bytes() == b'summary\n{"a": 1}\n{"b": 2}\n'
    assert sorted(os.listdir(tmp_path)) == ["out.json", "stdout"]


def test_a_symbolic_link_is_kept_and_its_file_replaced_whole(tmp_path: Path) -> None:
    """A report path that is a link (``latest.json -> runs/7.json``): the link stays, the file it names
    gets the report, through a temporary file beside that file (whole or absent)."""
    (tmp_path / "runs").mkdir()
    real = tmp_path / "runs" / "7.json"
    real.write_bytes(b"old")
    link = tmp_path / "latest.json"
    link.symlink_to(Path("runs") / "7.json")
    files.check_writable(link, "--json")
    files.write_output(link, b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["latest.json", "runs"]
    assert os.listdir(tmp_path / "runs") == ["7.json"]
