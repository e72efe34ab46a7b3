"""``phoneemu run`` interrupted mid-scenario says the same with and without ``-j``: the scenario under way is
an ERROR ``interrupted (Ctrl-C) before the scenario finished; its last report: in steps[3] (boot,
FILE:LINE)`` (JSON ``error`` and ``error_step``, JUnit ``message`` and ``when:``), and ``(SIGTERM)`` when
the run was stopped by a SIGTERM (``kill``, a CI job's time-out) rather than a Ctrl-C.

The scenarios and the silent TFTP server that holds a phone in steps[3] are those of
:mod:`tests.integration.test_run_parallel_stopped`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.helpers import finish_process
from tests.integration.test_run_parallel_stopped import (
    BOOT_Q_LINE,
    SCENARIO,
    _first_requests,
    _kept,
    _silent_tftp,
)
from tests.run_helpers import one_boot_text

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _run_stopped(tmp_path: Path, jobs: int, sig: signal.Signals) -> tuple[str, dict[str, object]]:
    """``run a b c`` (``-j jobs``) sent ``sig`` once ``jobs`` phones wait in steps[3]: its stdout and JSON
    report, after checking it exited 130 without a traceback."""
    with _silent_tftp(jobs) as socks:
        files = [tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "c.yaml"]
        ports = [s.getsockname()[1] for s in socks] * 2  # sequential: b never starts, its port unused
        for n, f in enumerate(files[:2]):
            f.write_text(SCENARIO.format(port=ports[n], n=n))
        files[2].write_text(one_boot_text("0B0000000202", "quick"))
        proc = subprocess.Popen(
            [sys.executable, "-m", "phoneemu", "run", *map(str, files), "-j", str(jobs), "--json",
             str(tmp_path / "r.json"), "--junit", str(tmp_path / "r.xml")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            _first_requests(socks, proc, 60)
            proc.send_signal(sig)
            rc, out, err = finish_process(proc, 30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert rc == 130 and "Traceback" not in out + err, (rc, out, err)
    return out, json.loads((tmp_path / "r.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize(("jobs", "sig", "by"), [(1, signal.SIGINT, "Ctrl-C"), (1, signal.SIGTERM, "SIGTERM"),
                                                  (2, signal.SIGTERM, "SIGTERM")])
def test_the_scenario_under_way_names_its_step_and_the_signal(
        tmp_path: Path, jobs: int, sig: signal.Signals, by: str) -> None:
    """Text, JSON and JUnit say ``interrupted (BY) before the scenario finished; its last report: in
    steps[3] (boot, a.yaml:13)``, the expectations evaluated before kept. Before: without ``-j`` the error
    was ``interrupted (Ctrl-C) before the scenario finished`` (no step), and a SIGTERM was a Ctrl-C in
    both (``-j``'s words never said SIGTERM)."""
    out, doc = _run_stopped(tmp_path, jobs, sig)
    stopped = "ab"[:jobs]
    assert doc["stopped"] == list(stopped) and doc["not_run"] == list("abc"[jobs:]), doc
    scenarios = doc["scenarios"]
    assert isinstance(scenarios, list)
    suites = {s.get("name"): s for s in ET.parse(tmp_path / "r.xml").getroot().iter("testsuite")}
    for name, sc in zip(stopped, scenarios, strict=True):
        where = f"in steps[3] (boot, {tmp_path / (name + '.yaml')}:{BOOT_Q_LINE})"
        error = f"interrupted ({by}) before the scenario finished; its last report: {where}"
        assert (sc["name"], sc["outcome"], sc["error"], sc["error_step"]) == (name, "ERROR", error, where), sc
        assert _kept(sc) == [("kept pass", "PASS"), ("kept fail", "FAIL")]
        assert f"      error: {error}\n" in out, out
        run_case = next(c for c in suites[name].iter("testcase") if c.get("name") == "run")
        junit_error = run_case.find("error")
        assert junit_error is not None and junit_error.get("message") == error
        assert (junit_error.text or "").split("\n")[1:] == [f"when: {where}"]
        assert run_case.get("line") == str(BOOT_Q_LINE)
