"""``run --capture DIR`` whose capture stops early (its pcap writer's write fails: a full disk, a FIFO whose
reader went away) says so in its reports, as ``boot --capture`` does (:mod:`phoneemu.scenario.capturing`
rules, "A capture stopped early"): the text report's capture line says the stop after the pcap's path —
whatever the outcome —, the JSON's ``capture_stopped`` has why, after how many bytes, the packets written
and dropped (null when the capture did not stop).

Before: only the note file said it; the text report named the pcap path (verbose or failed scenarios
only), the JSON's ``capture`` was the path alone."""

from __future__ import annotations

import errno
import json
import os
import pickle
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.net.capture import PcapWriter
from phoneemu.scenario.capturing import CaptureSink, CaptureStop
from phoneemu.scenario.results import ScenarioResult

STEM = "capture-stopped"
#: one older phone that asks TFTP only: the lab TFTP server feeds the synthetic capture every datagram
SCENARIO = f"""name: {STEM}
description: One older phone boots over TFTP.
phones:
  t: {{mac: 0A0000002401, profile: cp-7962}}
steps:
  - boot: t
  - expect: {{phones: t, label: booted over TFTP, fetched_over: tftp, config: accepted}}
"""
KEPT = 3  # records the full disk takes before it fails
FULL = f"write failed: {os.strerror(errno.ENOSPC)}"


class _DiskFullAfter:
    """A pcap sink that takes the file header and ``records`` writes, then fails (a full disk)."""

    name = "full.pcap"

    def __init__(self, records: int) -> None:
        self.left = records + 1  # the file header first
        self.taken = 0

    def write(self, data: bytes, /) -> int:
        if self.left <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.left -= 1
        self.taken += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def _run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, dict[str, object]]:
    """``run SCENARIO --capture DIR --json F`` (synthetic capture): its text report and the scenario's
    JSON."""
    report, scenario_file = tmp_path / "report.json", tmp_path / f"{STEM}.yaml"
    scenario_file.write_text(SCENARIO)
    main(["run", str(scenario_file), "--capture", str(tmp_path / "caps"), "--json", str(report)])
    scenario: dict[str, object] = json.loads(report.read_text())["scenarios"][0]
    return capsys.readouterr().out, scenario


@pytest.fixture(autouse=True)
def _synthetic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHONEEMU_CAPTURE", "synthetic")  # the lab TFTP server feeds the writer
    monkeypatch.setenv("PHONEEMU_LAB_HOST_BASE", "24")  # addresses no other test's scenario uses


def test_run_capture_stopped_by_a_full_disk_says_so_in_its_reports(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A PASS scenario (not verbose) whose capture's disk filled after 3 packets. Old code: no capture
    line in the text report, no ``capture_stopped`` in the JSON."""
    sinks: list[_DiskFullAfter] = []
    writers: list[PcapWriter] = []

    def full_disk_writer(self: CaptureSink, path: str | Path) -> PcapWriter:
        sinks.append(_DiskFullAfter(KEPT))
        writers.append(PcapWriter(sinks[-1], on_wait=self.on_wait,  # type: ignore[arg-type]
                                  on_stop=lambda _text: None))
        return writers[-1]

    monkeypatch.setattr(CaptureSink, "_pcap_writer", full_disk_writer)
    out, scenario = _run(tmp_path, capsys)
    assert len(writers) == 1 and writers[0].dropped > 0
    stop = CaptureStop(why=FULL, after_bytes=sinks[0].taken, packets_written=KEPT,
                       packets_dropped=writers[0].dropped)
    pcap = tmp_path / "caps" / f"{STEM}.pcap"
    assert scenario["outcome"] == "PASS" and scenario["capture"] == str(pcap)
    assert scenario["capture_stopped"] == stop.as_dict()
    assert f"      capture: {pcap} {stop.text()} (TLS key log beside it; phoneemu wireshark {pcap})" \
        in out.splitlines(), out
    assert (tmp_path / "caps" / f"{STEM}.note.txt").read_text().splitlines()[0] == stop.note_line()


def test_run_capture_not_stopped_has_a_null_capture_stopped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A capture that went on to the end: ``capture_stopped`` null, no capture line for a PASS (as
    before)."""
    out, scenario = _run(tmp_path, capsys)
    assert scenario["outcome"] == "PASS" and "capture_stopped" in scenario
    assert scenario["capture_stopped"] is None
    assert not any(line.lstrip().startswith("capture:") for line in out.splitlines()), out


def test_a_scenario_result_with_its_capture_stop_crosses_a_worker_pipe() -> None:
    """``run -j``'s workers send their results pickled (:mod:`phoneemu.worker_pipes`)."""
    stop = CaptureStop(why="reader went away", after_bytes=100, packets_written=12, packets_dropped=48)
    result = ScenarioResult(name="s", path="s.yaml", reproduces="", capture="s.pcap", capture_stopped=stop)
    assert pickle.loads(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)) == result
