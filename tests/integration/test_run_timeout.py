"""``phoneemu run``'s per-scenario time limit (``--timeout``, a file's ``timeout:``; rules in
:mod:`phoneemu.scenario.deadline`): a scenario that hangs is an ERROR naming its step, with what it had
evaluated kept, its lab servers closed, and the next scenario still runs — sequentially and with ``-j``.

The hang is real where the scenario language can express one: a phone group on an "external" cluster
whose TFTP address is a loopback UDP socket of the test that takes the request and never answers, with
the phones' TFTP timers set to their longest (60 s x 101 tries, one hour per transfer). Code that
cancellation cannot stop (blocking calls) has no scenario verb, so those tests block inside a step
through a test-only stand-in.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.scenario import parallel
from phoneemu.scenario.loader import load_text
from phoneemu.scenario.model import Scenario
from phoneemu.scenario.results import ExpectationResult
from phoneemu.scenario.runner import RunOptions

ROOT = Path(__file__).resolve().parents[2]

# The labs have RSA-1024 keys (``key: rsa1024``): no test here is about the key size, and the default
# RSA-2048 keys cost ~9 fresh keys of ~55 ms each per lab (as in test_runner.py). OK's phone group is in
# flow style so that its clusters line takes the group's second line: every step keeps its line.
HANG = """\
reproduces: test
{timeout}clusters:
  lab: {{key: rsa1024}}
  dead: {{external: {{tftp: "127.0.0.1:{port}", use_http: false}}}}
phones:
  p: {{mac: "0B0000000001"}}
  q: {{mac: "0B0000000002", cluster: dead, tftp: {{timeout_ms: 60000, retries: 100, max_time_ms: 3600000}}}}
steps:
  - boot: p
  - expect: {{phones: p, label: before the hang, config: accepted}}
  - boot: q
  - expect: {{phones: q, label: after the hang, boot: failed}}
"""

OK = """\
reproduces: test
phones: {p: {mac: "0B0000000003"}}
clusters: {lab: {key: rsa1024}}
steps:
  - boot: p
  - expect: {phones: p, label: next one, config: accepted}
"""
#: The scenarios that must not time out opt out of the limit (a file's timeout: 0 overrides the run's), so
#: that a loaded machine cannot make them slow enough to; the hanging ones keep a limit of a few seconds.
NO_LIMIT = "timeout: 0\n" + OK


@pytest.fixture
def black_hole() -> Iterator[socket.socket]:
    """A loopback UDP "TFTP server" that takes every request and never answers."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    try:
        yield s
    finally:
        s.close()


def _files(tmp_path: Path, port: int, timeout: str = "") -> list[str]:
    hang = tmp_path / "a-hang.yaml"
    hang.write_text(HANG.format(port=port, timeout=timeout))
    ok = tmp_path / "b-ok.yaml"
    ok.write_text(NO_LIMIT)
    return [str(hang), str(ok)]


def _asked(s: socket.socket) -> bytes:
    s.setblocking(False)
    return s.recv(512)


class _LabPorts:
    """Every lab server set started in this process, to check afterwards that none is still bound."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from phoneemu.lab.servers import LabServers

        self.started: list[Any] = []
        real = LabServers.start

        async def start(servers: Any) -> Any:
            self.started.append(servers)
            return await real(servers)

        monkeypatch.setattr(LabServers, "start", start)

    def assert_released(self) -> None:
        assert self.started
        for servers in self.started:
            for name, port in servers.ports.items():
                udp = name == "tftp"
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
                if not udp:  # a closed connection's TIME_WAIT may stay; a listener must not
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((servers.host, port))  # OSError (address in use) if the server were still there
                    if not udp:
                        s.listen(1)
                finally:
                    s.close()


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_hanging_scenario_is_an_error_naming_its_step_and_the_next_one_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        black_hole: socket.socket, jobs: str) -> None:
    """--timeout 3: the boot that waits on the silent server is cancelled; the scenario is an ERROR
    naming steps[2] (boot) and its line, the expectation evaluated before it is kept in every report,
    its lab servers are closed, and b-ok runs and passes; exit 1 as for any ERROR. Before: no --timeout
    option, and the run waited for the phone's hour-long TFTP timers."""
    ports = _LabPorts(monkeypatch)
    files = _files(tmp_path, black_hole.getsockname()[1])
    junit, js = tmp_path / "r.xml", tmp_path / "r.json"
    # 3 s: the lab and the boot before the hang take them under load (2 s: ERROR "in set-up" at -n 6)
    rc = main(["run", *files, "--timeout", "3", "-j", jobs, "--junit", str(junit), "--json", str(js)])
    out = capsys.readouterr().out
    assert rc == 1, out
    why = f"timed out after 3 s in steps[2] (boot, {files[0]}:11)"
    assert "ERROR a-hang" in out and f"error: {why}" in out and "PASS  b-ok" in out, out
    doc = json.loads(js.read_text())
    hang, ok = doc["scenarios"]
    assert (hang["outcome"], hang["error"], ok["outcome"]) == ("ERROR", why, "PASS")
    assert [(e["label"], e["outcome"]) for e in hang["expectations"]] == [("before the hang", "PASS")]
    assert not doc["interrupted"] and not doc["not_run"]
    suites = {s.get("name"): s for s in ET.parse(junit).getroot().iter("testsuite")}
    error = suites["a-hang"].find("testcase/error")
    assert error is not None and error.get("message") == why
    assert [c.get("name") for c in suites["a-hang"].iter("testcase")] == ["run", "before the hang"]
    assert b"CTLSEP0B0000000002.tlv" in _asked(black_hole)  # the phone did ask, and got no answer
    if jobs == "1":  # in this process: the scenario's lab servers are closed, their ports free
        ports.assert_released()


#: :data:`HANG` without its lab and the phone booting there first: the hang is its first step, so that a
#: limit of 1 s is all spent waiting on the silent server (nothing comes before it to take that second)
HANG_FIRST = """\
reproduces: test
timeout: 1
clusters:
  dead: {{external: {{tftp: "127.0.0.1:{port}", use_http: false}}}}
phones:
  q: {{mac: "0B0000000002", cluster: dead, tftp: {{timeout_ms: 60000, retries: 100, max_time_ms: 3600000}}}}
steps:
  - boot: q
  - expect: {{phones: q, label: after the hang, boot: failed}}
"""


def test_a_files_timeout_key_overrides_the_run_option(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      black_hole: socket.socket) -> None:
    """``timeout: 1`` in the file wins over the default --timeout (300 s)."""
    files = _files(tmp_path, black_hole.getsockname()[1])
    Path(files[0]).write_text(HANG_FIRST.format(port=black_hole.getsockname()[1]))
    assert main(["run", *files]) == 1
    out = capsys.readouterr().out
    assert f"error: timed out after 1 s in steps[0] (boot, {files[0]}:8)" in out and "PASS  b-ok" in out, out
    assert b"CTLSEP0B0000000002.tlv" in _asked(black_hole)  # the phone did ask, and got no answer


@pytest.mark.parametrize(("text", "expected"), [
    ("timeout: 600", 600), ("timeout: 10m", 600), ("timeout: 90s", 90), ("timeout: 0", 0),
    ("timeout: 1h", 3600), ("", None),
])
def test_the_timeout_key_is_read_as_seconds(text: str, expected: int | None) -> None:
    sc = load_text(f"{text}\n{OK}", "t.yaml")
    assert sc.timeout == expected


@pytest.mark.parametrize("value", ["-1", "soon", "1.5", "true", "86401", "2d", "[60]", "{s: 1}"])
def test_a_bad_timeout_is_a_file_line_error(value: str) -> None:
    from phoneemu.errors import ScenarioError

    with pytest.raises(ScenarioError) as err:
        load_text(f"{OK}timeout: {value}\n", "t.yaml")
    expected = "t.yaml:7 timeout: expected seconds from 0 (no limit) to 86400"
    assert str(err.value).startswith(expected), err.value
    assert "; got " in str(err.value)


def _scenarios(tmp_path: Path, names: list[str]) -> list[Scenario]:
    """``stuck*`` ones with the run's limit, the others without (:data:`NO_LIMIT`)."""
    return [load_text(OK if "stuck" in n else NO_LIMIT, str(tmp_path / f"{n}.yaml")) for n in names]


def test_a_step_blocked_in_code_that_cancellation_cannot_reach_is_interrupted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A blocking call in a step (the event loop itself is stuck, so cancelling does nothing): the
    signal ``grace`` seconds after the limit interrupts it; the scenario is an ERROR saying so and
    naming the step, its servers are closed, the next scenario runs."""
    from phoneemu.scenario import runner

    ports = _LabPorts(monkeypatch)
    evaluate = runner._evaluate

    def stuck(world: Any, exp: Any) -> Any:
        if "stuck" in world.scenario.name:
            time.sleep(600)  # blocks the event loop
        return evaluate(world, exp)

    monkeypatch.setattr(runner, "_evaluate", stuck)
    scenarios = _scenarios(tmp_path, ["a-stuck", "b-ok"])
    summary = runner.run_scenarios(scenarios, RunOptions(timeout=3, grace=0.25))  # 3 s: as above
    a, b = summary.scenarios
    assert a.error == (f"timed out after 3 s in steps[1] (expect, {tmp_path}/a-stuck.yaml:6); the step did "
                       "not stop when cancelled (blocking code), it was interrupted 0.25 s later")
    assert b.outcome.value == "PASS" and not summary.interrupted
    ports.assert_released()


_ABANDON = """\
import signal, sys, time
from phoneemu.scenario import runner

evaluate = runner._evaluate

def stuck(world, exp):
    if "stuck" in world.scenario.name:  # blocks, and the signal cannot reach it
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(600)
    return evaluate(world, exp)

runner._evaluate = stuck
runner.RunOptions.__init__.__kwdefaults__["grace"] = 0.25
from phoneemu.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_sequential_run_that_cannot_stop_its_scenario_reports_and_exits(tmp_path: Path) -> None:
    """Last resort: neither cancellation nor the signal stops the step; the watchdog writes the reports
    (the scenario as ERROR naming its step, the rest not run), says so on stderr and exits 1."""
    files = []
    for n in ("a-ok", "b-stuck", "c-never"):
        f = tmp_path / f"{n}.yaml"
        f.write_text(OK if "stuck" in n else NO_LIMIT)
        files.append(str(f))
    js = tmp_path / "r.json"
    script = tmp_path / "abandon.py"
    script.write_text(_ABANDON)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(scratch)}
    proc = subprocess.run([sys.executable, str(script), "run", *files, "--timeout", "2", "--json", str(js)],
                          capture_output=True, text=True, timeout=60, env=env, check=False)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert not list(scratch.iterdir())  # the stuck scenario's temporary lab removed before the exit
    why = (f"timed out after 2 s in steps[1] (expect, {files[1]}:6); it could not be stopped 0.5 s later "
           "either: the run was abandoned")
    assert f"phoneemu run: scenario b-stuck ({files[1]}) {why}; 1 scenario not run" in proc.stderr
    assert "ERROR b-stuck" in proc.stdout and "Traceback" not in proc.stderr
    doc = json.loads(js.read_text())
    assert [(s["name"], s["outcome"]) for s in doc["scenarios"]] == [("a-ok", "PASS"), ("b-stuck", "ERROR")]
    assert doc["scenarios"][1]["error"] == why and doc["not_run"] == ["c-never"]


def _stuck_worker(base: int, tasks: Any, results: Any, settings: Any, me: int = 0) -> None:
    """Runs in the worker process: the real ``_worker``; a "stuck" scenario evaluates one expectation,
    starts its second step and then blocks where neither cancellation nor the signal reaches it."""
    import signal

    from phoneemu.scenario import runner

    async def run_scenario(sc: Scenario, opts: RunOptions, result: Any = None, tracker: Any = None) -> Any:
        res = result if result is not None else runner.new_result(sc)
        if sc.name.startswith("stuck"):
            import tempfile

            (Path(tempfile.mkdtemp(prefix="phoneemu-")) / "flash.bin").write_bytes(b"x")  # a lab's files
            tracker.at(0, sc.steps[0], res.expectations)
            res.expectations.append(ExpectationResult(where=sc.steps[1].where, label="kept", xfail=None))
            tracker.at(1, sc.steps[1], res.expectations)
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            time.sleep(600)
        return res

    runner.run_scenario = run_scenario  # type: ignore[assignment]
    parallel._worker(base, tasks, results, settings, me)


def test_the_parent_kills_a_worker_past_the_limit_and_a_fresh_one_runs_the_rest(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """-j 2, both workers stuck past the limit and its grace: each is killed, its scenario is an ERROR
    naming the step, the worker and its pid, with the expectation it had reported; fresh workers run
    the other scenarios (before: never, the run hung). The killed workers' temporary files are gone."""
    import tempfile

    tmp_root = tmp_path / "tmp"
    tmp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_root))
    monkeypatch.setenv("TMPDIR", str(tmp_root))  # the workers' default too
    monkeypatch.setattr(parallel, "_worker", _stuck_worker)
    scenarios = _scenarios(tmp_path, ["stuck-1", "stuck-2", "a", "b", "c"])
    lines: list[str] = []
    options = RunOptions(progress=lines.append, lab_host_base=11, timeout=0.5, grace=0.25)
    summary = parallel.run_parallel(scenarios, options, 2)
    got = {s.name: s for s in summary.scenarios}
    assert list(got) == ["stuck-1", "stuck-2", "a", "b", "c"] and not summary.not_run
    assert [got[n].outcome.value for n in "abc"] == ["PASS"] * 3
    for n in ("stuck-1", "stuck-2"):
        err = got[n].error
        step = f"in steps[1] (expect, {tmp_path}/{n}.yaml:6)"
        assert err is not None, got[n]
        assert err.startswith(f"timed out after 0.5 s {step}; worker process phoneemu-run-"), err
        assert err.endswith("had not reported 1 s after it started the scenario and was killed"), err
        assert [e.label for e in got[n].expectations] == ["kept"]
    assert any("was killed: past the time limit" in line for line in lines), lines
    assert not list(tmp_root.iterdir()), list(tmp_root.rglob("*"))


def test_the_help_and_docs_say_the_unit_and_default() -> None:
    from phoneemu.cli import build_parser
    from tests.helpers import cli_parsers

    run = dict(cli_parsers(build_parser()))["phoneemu run"]
    text = " ".join(run.format_help().split())
    assert "--timeout S each scenario's wall-clock limit in seconds (default 300; 0 = no limit)" in text
    assert "timed out after 60 s in steps[3] (boot, FILE:LINE)" in text
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "[-j N] [--timeout S]" in readme and "`--timeout S`: each scenario's wall-clock limit" in readme
    doc = " ".join((ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8").split())
    assert "timeout:" in doc and "default 300 s" in doc
