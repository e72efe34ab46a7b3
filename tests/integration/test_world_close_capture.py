"""A scenario world whose close raises (its lab servers' stop fails) costs neither its ``run --capture``
nor the run (:mod:`phoneemu.scenario.runner` rules): the pcap ends whole — every packet the capture took
written, the file in place (no temporary file left), its note written —, the scenario is an ERROR naming
what the close raised (after the error it had already), the reports are written and the run exits 1.

Before: the close's exception left the runner before the capture was closed: no pcap (only its
temporary file), no note, no report, and ``phoneemu run: Input/output error ...`` with exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.errors import ScenarioError
from phoneemu.lab.servers import LabServers
from phoneemu.net.capture import read_pcap
from phoneemu.scenario import capturing

STEM = "world-close-raises"
SCENARIO = f"""name: {STEM}
description: One older phone boots over TFTP, from each of two clusters' phones.
clusters:
  one: {{}}
  two: {{}}
phones:
  a: {{mac: 0A00000D0001, profile: cp-7962, cluster: one}}
  b: {{mac: 0A00000D0002, profile: cp-7962, cluster: two}}
steps:
  - boot: [a, b]
  - expect: {{phones: [a, b], label: booted over TFTP, fetched_over: tftp, config: accepted}}
"""
BROKEN = "Input/output error (stopping the lab servers)"


@pytest.fixture(autouse=True)
def _synthetic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHONEEMU_CAPTURE", "synthetic")  # the lab TFTP servers feed the writer
    monkeypatch.setenv("PHONEEMU_LAB_HOST_BASE", "28")  # addresses no other test's scenario uses


@pytest.fixture
def stops(monkeypatch: pytest.MonkeyPatch) -> list[LabServers]:
    """Each lab servers' stop stops them, then the first one raises (a close failing part way)."""
    stopped: list[LabServers] = []
    real_stop = LabServers.stop

    async def failing_stop(self: LabServers, *args: Any, **kwargs: Any) -> None:
        await real_stop(self, *args, **kwargs)
        stopped.append(self)
        if len(stopped) == 1:
            raise OSError(5, BROKEN)

    monkeypatch.setattr(LabServers, "stop", failing_stop)
    return stopped


@pytest.fixture
def sinks(monkeypatch: pytest.MonkeyPatch) -> list[capturing.CaptureSink]:
    """The captures the run opens, kept to compare with their pcaps."""
    opened: list[capturing.CaptureSink] = []
    real_open = capturing.open_capture

    def keeping_open(*args: Any, **kwargs: Any) -> tuple[capturing.CaptureSink, Path]:
        sink, keylog = real_open(*args, **kwargs)
        opened.append(sink)
        return sink, keylog

    monkeypatch.setattr(capturing, "open_capture", keeping_open)
    return opened


def _run(tmp_path: Path) -> tuple[int, dict[str, Any], Path]:
    report, scenario_file, caps = tmp_path / "report.json", tmp_path / f"{STEM}.yaml", tmp_path / "caps"
    scenario_file.write_text(SCENARIO)
    code = main(["run", str(scenario_file), "--capture", str(caps), "--json", str(report)])
    return code, json.loads(report.read_text())["scenarios"][0], caps


def test_a_world_close_that_raises_leaves_a_whole_capture_and_an_error(
        tmp_path: Path, stops: list[LabServers], sinks: list[capturing.CaptureSink],
        capsys: pytest.CaptureFixture[str]) -> None:
    code, scenario, caps = _run(tmp_path)
    out, err = capsys.readouterr()
    assert code == 1, err
    assert len(stops) == 2  # the first cluster's stop raised: the second's servers were stopped too
    assert scenario["outcome"] == "ERROR"
    assert scenario["error"] == f"closing its lab servers failed: OSError: [Errno 5] {BROKEN}"
    assert [e["outcome"] for e in scenario["expectations"]] == ["PASS"]  # what ran is kept
    pcap = caps / f"{STEM}.pcap"
    assert scenario["capture"] == str(pcap) and scenario["capture_stopped"] is None
    assert sorted(p.name for p in caps.iterdir()) == [f"{STEM}.keys", f"{STEM}.note.txt", f"{STEM}.pcap"]
    [sink] = sinks
    assert sink.closed and sink.count > 0
    assert sum(1 for _ in read_pcap(pcap)) == sink.count  # every packet taken is in the pcap
    assert f"error: closing its lab servers failed: OSError: [Errno 5] {BROKEN}" in out
    assert f"capture: {pcap} (TLS key log beside it" in out
    assert "Traceback" not in err  # an OSError: the environment's, no internal error


def test_the_error_the_scenario_had_comes_first(tmp_path: Path, stops: list[LabServers],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A step's error, then the close's: both said, the step's first (what went wrong before)."""
    from phoneemu.scenario.world import World

    async def failing_boot(self: World, phones: Any) -> None:
        raise ScenarioError("the boot step broke")

    monkeypatch.setattr(World, "boot", failing_boot)
    code, scenario, caps = _run(tmp_path)
    assert code == 1
    assert scenario["error"] == (f"{tmp_path / STEM}.yaml:10 boot: the boot step broke; then closing its lab "
                                 f"servers failed: OSError: [Errno 5] {BROKEN}")
    assert (caps / f"{STEM}.pcap").is_file() and len(stops) == 2
