"""``phoneemu run -j 2`` stopped in the middle of scenarios: nothing the workers had found is lost.

Each scenario boots a lab phone, evaluates two expectations (one PASS, one FAIL), then boots a phone of
an ``external`` cluster whose TFTP server is a UDP socket of this test that never answers: the RRQ it
receives says, at a known point, that the worker is in that step (steps[3]) with both expectations
reported. Then the test sends SIGINT to the parent (Ctrl-C), or SIGKILL to that worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import finish_process, reap
from tests.run_helpers import one_boot_text

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# The lab has RSA-1024 keys: no test here is about the key size (RSA-2048: ~9 fresh keys of ~55 ms each
# per lab, in workers that are then stopped).
SCENARIO = """\
reproduces: spec G.2
clusters:
  lab: {{key: rsa1024}}
  real:
    external: {{tftp: "127.0.0.1:{port}", use_http: false}}
phones:
  p: {{mac: 0B00000000{n:02X}, cluster: lab}}
  q: {{mac: 0B00000001{n:02X}, cluster: real, tftp: {{timeout_ms: 10000, retries: 10}}}}
steps:
  - boot: p
  - expect: {{phones: p, label: kept pass, config: accepted}}
  - expect: {{phones: p, label: kept fail, itl: updated}}
  - boot: q
  - expect: {{phones: q, label: never evaluated, config: accepted}}
"""
BOOT_Q_LINE = 13  # "- boot: q": steps[3]
STOPPED = "interrupted (Ctrl-C) before the scenario finished"


@contextlib.contextmanager
def _silent_tftp(count: int) -> Iterator[list[socket.socket]]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        yield socks
    finally:
        for s in socks:
            s.close()


def _first_requests(socks: list[socket.socket], proc: subprocess.Popen[str], limit: float) -> dict[int, int]:
    """Wait (at most ``limit`` s) for one RRQ on each socket: socket index -> the sender's UDP port."""
    senders: dict[int, int] = {}
    end = time.monotonic() + limit
    while len(senders) < len(socks) and time.monotonic() < end and proc.poll() is None:
        ready, _, _ = select.select(socks, [], [], 0.2)
        for s in ready:
            data, (_, port) = s.recvfrom(2048)
            if data[:2] == b"\x00\x01":
                senders.setdefault(socks.index(s), port)
    assert len(senders) == len(socks), f"the phones never asked (exit {proc.poll()})"
    return senders


def _udp_owner(port: int, pids: list[int]) -> int:
    """The process among ``pids`` holding the IPv4 UDP socket bound to ``port`` (Linux /proc)."""
    inodes = {line.split()[9] for line in Path("/proc/net/udp").read_text().splitlines()[1:]
              if line.split()[1].endswith(f":{port:04X}")}
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") in {f"socket:[{i}]" for i in inodes}:
                    return pid
    raise AssertionError(f"no worker holds UDP port {port}")


def _workers(pid: int) -> list[int]:
    out = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid and \
                    b"spawn_main" in Path(f"/proc/{entry}/cmdline").read_bytes():
                out.append(int(entry))
    return out


def _start(files: list[Path], tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "phoneemu", "run", *map(str, files), "-j", "2", "--json",
         str(tmp_path / "r.json"), "--junit", str(tmp_path / "r.xml")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kept(scenario: dict[str, object]) -> list[tuple[object, object]]:
    return [(e["label"], e["outcome"]) for e in scenario["expectations"]]  # type: ignore[attr-defined, index]


@pytest.mark.slow
def test_ctrl_c_under_j_keeps_what_the_scenarios_under_way_found(tmp_path: Path) -> None:
    """SIGINT while both workers are in steps[3]: both scenarios keep their PASS and FAIL expectations and
    are ERROR "interrupted", naming the step (text, JSON, JUnit), the third is not run; exit 130.
    Before: the two scenarios under way were listed as not run, their expectations dropped."""
    with _silent_tftp(2) as socks:
        files = [tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "c.yaml"]
        for n, (f, s) in enumerate(zip(files[:2], socks, strict=True)):
            f.write_text(SCENARIO.format(port=s.getsockname()[1], n=n))
        files[2].write_text(one_boot_text("0B0000000202", "quick"))
        proc = _start(files, tmp_path)
        try:
            _first_requests(socks, proc, 60)
            proc.send_signal(signal.SIGINT)
            rc, out, err = finish_process(proc, 30)
        finally:
            reap(proc)
    assert rc == 130 and "Traceback" not in out + err, (out, err)
    assert "interrupted: 2 scenarios stopped under way (a, b); 1 scenario not run (c)" in out, out
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["interrupted"] is True and doc["stopped"] == ["a", "b"] and doc["not_run"] == ["c"]
    for name, sc in zip("ab", doc["scenarios"], strict=True):
        where = f"in steps[3] (boot, {tmp_path / (name + '.yaml')}:{BOOT_Q_LINE})"
        assert sc["name"] == name and sc["outcome"] == "ERROR", sc
        assert sc["error"] == f"{STOPPED}; its last report: {where}" and sc["error_step"] == where
        assert _kept(sc) == [("kept pass", "PASS"), ("kept fail", "FAIL")]
        assert f"ERROR {name}" in out and f"FAIL  kept fail ({tmp_path / (name + '.yaml')}:12)" in out
    suites = {s.get("name"): s for s in ET.parse(tmp_path / "r.xml").getroot().iter("testsuite")}
    for name in "ab":
        cases = {c.get("name"): c for c in suites[name].iter("testcase")}
        assert set(cases) == {"run", "kept pass", "kept fail"}, cases
        error = cases["run"].find("error")
        assert error is not None and error.get("message", "").startswith(STOPPED)
        assert cases["run"].get("line") == str(BOOT_Q_LINE)
        assert cases["kept fail"].find("failure") is not None and cases["kept pass"].find("failure") is None
        assert (suites[name].get("tests"), suites[name].get("failures"), suites[name].get("errors")) == \
            ("3", "1", "1")
    assert suites["c"].get("skipped") == "1"


@pytest.mark.slow
def test_worker_killed_mid_step_names_the_scenario_step_and_signal(tmp_path: Path) -> None:
    """SIGKILL to the worker in steps[3] of ``a``: ``a`` is an ERROR naming the worker, the signal and the
    step of its last report, with the expectations it had reported; ``c`` runs on the other worker; exit 1.
    Before: the error said "... was killed by SIGKILL while running this scenario", no step."""
    with _silent_tftp(1) as socks:
        files = [tmp_path / "a.yaml", tmp_path / "c.yaml"]
        files[0].write_text(SCENARIO.format(port=socks[0].getsockname()[1], n=0))
        files[1].write_text(one_boot_text("0B0000000201", "quick"))
        proc = _start(files, tmp_path)
        try:
            sender = _first_requests(socks, proc, 60)[0]
            victim = _udp_owner(sender, _workers(proc.pid))
            os.kill(victim, signal.SIGKILL)
            rc, out, err = finish_process(proc, 60)
        finally:
            reap(proc)
    assert rc == 1 and "Traceback" not in out + err, (out, err)
    doc = json.loads((tmp_path / "r.json").read_text())
    a, c = doc["scenarios"]
    where = f"in steps[3] (boot, {files[0]}:{BOOT_Q_LINE})"
    assert c["name"] == "c" and c["outcome"] == "PASS", c
    assert a["name"] == "a" and a["outcome"] == "ERROR" and a["error_step"] == where, a
    assert a["error"].startswith("worker process phoneemu-run-") and a["error"].endswith(
        f"(pid {victim}) was killed by SIGKILL while running this scenario; its last report: {where}"), a
    assert _kept(a) == [("kept pass", "PASS"), ("kept fail", "FAIL")]
    assert f"its last report: {where}" in out
    run_case = next(case for case in ET.parse(tmp_path / "r.xml").getroot().iter("testcase")
                    if case.get("classname") == "a" and case.get("name") == "run")
    assert run_case.get("line") == str(BOOT_Q_LINE)
