"""``fleet boot``'s counts agree after Ctrl-C and ``--max-time``, and its rate is said once (a user's
walkthrough of 3,000 phones):

* the summary's first line counts the phones asked for, the not started among them and why (was ``2982
  phones: 2982 booted ...``, the 18 not started on the last line only); a run in which none started says so
  (was ``0 phones: 0 booted, 0 failed in 0.00s``);
* ``--json`` names the phones not started as runs of MACs and counts the phones asked for; ``--junit`` has a
  case per phone not started, named by its MAC (was one made-up case ``not started``: tests 2983 in a suite of
  3000 phones) — skipped when interrupted, an error when ``--max-time`` stopped them (was skipped: a run that
  exits 1 read green in CI); the plot's title says how many were not started and why;
* the rate is rounded once, the JSON's value shown by the text and the plot (was 78, 77 and 77.5), and says
  it counts boots finished;
* ``--json``'s ``profile`` of a fleet of several models is null beside ``profiles`` (was the default's name).
"""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.commands import fleet as fleet_cmd
from phoneemu.fleet.engine import ShardResult
from phoneemu.fleet.metrics import BootRecord, FleetMetrics
from phoneemu.fleet.shard import FleetResult, LostShard
from phoneemu.phone.boot import BootTarget

START = 0x0A0000000000


def _booted(i: int, end: float = 1.0) -> BootRecord:
    return BootRecord(mac=f"{START + i:012X}", outcome="ok", rule="G.4-signed-by-itl-tftp", latency_s=0.05,
                      end_s=end)


def _result(booted: int, not_started: int, **flags: Any) -> FleetResult:
    """A run of ``booted + not_started`` phones from START whose first ``booted`` booted."""
    records = [_booted(i) for i in range(booted)]
    m = FleetMetrics()
    for rec in records:
        m.add(rec)
    m.wall_s = 2.0
    runs = [(START + booted, START + booted + not_started - 1)] if not_started else []
    return FleetResult(metrics=m, shards=[ShardResult(shard=0, metrics=m, not_started=not_started,
                                                      not_started_runs=runs)],
                       records=records, **flags)


def _run_macs(n: int) -> list[int]:
    return list(range(START, START + n))


def test_the_first_line_counts_the_phones_asked_for() -> None:
    result = _result(6, 4, interrupted=True)
    head = result.metrics.render(asked=10, not_started=4, stopped=fleet_cmd._stopped(result)).splitlines()[0]
    assert head.startswith("10 phones: 6 booted, 0 failed, 4 not started (interrupted) in 2.00s"), head
    lost = result.metrics.render(asked=12, not_started=4, stopped="interrupted", lost=2).splitlines()[0]
    assert lost.startswith("12 phones: 6 booted, 0 failed, 4 not started (interrupted), 2 lost in "), lost


def test_a_run_in_which_none_started_says_the_fleet_asked_for() -> None:
    result = _result(0, 40, interrupted=True, before_storm=True)
    head = result.metrics.render(asked=40, not_started=40, stopped=fleet_cmd._stopped(result))
    assert head.splitlines()[0] == "40 phones: none started (interrupted as the shards started)", head


def test_the_not_started_macs_are_those_the_shards_did_not_start() -> None:
    """The shards' queues when they stopped (a lost shard's phones are lost, not among them); not the
    count: not known."""
    import dataclasses

    from phoneemu.fleet.metrics import mac_runs, runs_text

    result = _result(3, 4, lost=[LostShard(shard=1, first_mac=START + 7, phones=2, why="killed by SIGKILL")])
    assert fleet_cmd._not_started_macs(result) == _run_macs(7)[3:]
    shard = dataclasses.replace(result.shards[0], not_started=5)
    assert fleet_cmd._not_started_macs(dataclasses.replace(result, shards=[shard])) is None
    assert runs_text(mac_runs([*_run_macs(3), START + 5, START + 9])) == [
        "0A0000000000..0A0000000002", "0A0000000005", "0A0000000009"]
    line = fleet_cmd._not_started_line(result, _run_macs(7)[3:])
    assert line == "not started (--max-time): 4: 0A0000000003..0A0000000006", line


def _junit(tmp_path: Path, result: FleetResult, **options: Any) -> tuple[ET.Element, list[ET.Element]]:
    path = tmp_path / "f.xml"
    fleet_cmd._write_junit(path, result, target="127.0.0.67", count=10, **options)
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    return suite, suite.findall("testcase")


def test_junit_has_a_skipped_case_per_phone_not_started_when_interrupted(tmp_path: Path) -> None:
    result = _result(6, 4, interrupted=True)
    suite, cases = _junit(tmp_path, result, not_started=fleet_cmd._not_started_macs(result))
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "10", "failures": "0", "errors": "0", "skipped": "4"}
    assert [c.get("name") for c in cases] == [f"{m:012X}" for m in _run_macs(10)]  # each phone's history
    skipped = cases[-1].find("skipped")
    assert skipped is not None and "interrupted" in (skipped.get("message") or "")


def test_junit_is_not_green_when_max_time_stopped_phones(tmp_path: Path) -> None:
    result = _result(6, 4)
    suite, cases = _junit(tmp_path, result, not_started=fleet_cmd._not_started_macs(result),
                          max_time=3.0)
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "10", "failures": "0", "errors": "4", "skipped": "0"}
    error = cases[6].find("error")
    assert cases[6].get("name") == "0A0000000006" and error is not None
    assert error.get("message") == "not started: --max-time 3 s stopped 4 phones before they started"


def test_json_names_the_phones_not_started_and_the_fleets_models(tmp_path: Path) -> None:
    result = _result(6, 4, interrupted=True)
    out = tmp_path / "f.json"
    fleet_cmd._write_json(out, result, BootTarget(host="127.0.0.67"), None, profile="cp-8861",
                          models={"cp-8861": 7, "cp-7962": 3}, asked=10,
                          not_started=fleet_cmd._not_started_macs(result))
    doc = json.loads(out.read_text())
    assert doc["profile"] is None and doc["profiles"] == {"cp-8861": 7, "cp-7962": 3}
    s = doc["summary"]
    assert (s["phones"], s["not_started"], s["phones_asked"]) == (6, 4, 10)
    assert s["not_started_macs"] == ["0A0000000006..0A0000000009"] and s["not_started_macs_not_listed"] == 0
    one = tmp_path / "one.json"
    fleet_cmd._write_json(one, result, BootTarget(host="127.0.0.67"), None, profile="cp-8861",
                          models={"cp-7962": 10}, asked=10)
    assert json.loads(one.read_text())["profile"] == "cp-7962"  # every phone that model: the fleet's


def _storm_of_77_46_per_s() -> FleetMetrics:
    m = FleetMetrics()
    for i in range(155):
        m.add(_booted(i, end=1.0 + i / 100.0))
    m.wall_s = 2.001  # 77.46 boots/s: the JSON's 77.5
    return m


def test_the_rate_is_rounded_once_and_says_boots_finished() -> None:
    m = _storm_of_77_46_per_s()
    assert m.summary()["boots_per_s"] == 77.5
    assert "(77.5 boots finished/s, sustained " in m.render().splitlines()[0]  # was 78 boots/s


def test_the_plot_shows_the_rate_as_the_json_has_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import matplotlib.axes

    m = _storm_of_77_46_per_s()
    titles: list[str] = []
    real = matplotlib.axes.Axes.set_title

    def seen(self: Any, label: str, *args: Any, **kwargs: Any) -> Any:
        titles.append(label)
        return real(self, label, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", seen)
    from phoneemu.fleet.plot import plot_metrics

    plot_metrics(m, tmp_path / "p.png")
    assert "155 booted, 0 failed, 77.5 boots finished/s" in titles, titles  # was 77 boots/s


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback UDP port that takes every request and answers none."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def test_max_time_from_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str], silent_port: int) -> None:
    """End to end, in this process: nothing answers, one phone at a time, --max-time 0.05 s: the first boot
    runs, the others are not started — exit 1, the JUnit not green, the plot's title says so."""
    titles: list[str] = []
    monkeypatch.setattr("phoneemu.fleet.plot.plot_metrics",
                        lambda metrics, path, *, title: titles.append(title))
    out, junit = tmp_path / "f.json", tmp_path / "f.xml"
    code = main(["fleet", "boot", "--count", "5", "--tftp", f"127.0.0.1:{silent_port}", "--no-http",
                 "--shards", "0", "--concurrency", "1", "--timeout", "0.2", "--retries", "0",
                 "--max-time", "0.05", "-q", "--json", str(out), "--junit", str(junit),
                 "--plot", str(tmp_path / "f.png")])
    std = capsys.readouterr()
    assert code == 1, std
    s = json.loads(out.read_text())["summary"]
    n = s["not_started"]
    assert n >= 1 and s["phones"] + n == 5
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("errors")) == ("5", str(n)), ET.tostring(suite)  # was 0: green
    assert std.out.startswith(f"5 phones: 0 booted, {s['failed']} failed, {n} not started (--max-time) in ")
    assert s["phones_asked"] == 5
    assert titles == [f"phoneemu fleet: 5 phones -> 127.0.0.1 (tftp {silent_port}), {n} not started "
                      "(--max-time)"]


def test_the_help_says_what_sustained_is(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["fleet", "boot", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert '"sustained" is the mean of the boots finished in each full second' in text, text
    assert "boots finished (booted or failed) per second" in text


def test_a_result_without_the_run_flags_still_writes(tmp_path: Path) -> None:
    """The callers' results without flags (a SimpleNamespace of records) write as before: no phone left."""
    result = SimpleNamespace(records=[_booted(0)], not_started=0, lost=[],
                             metrics=SimpleNamespace(wall_s=0.1))
    suite, cases = _junit(tmp_path, result)  # type: ignore[arg-type]
    assert suite.get("tests") == "1" and len(cases) == 1
