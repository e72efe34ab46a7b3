"""``fleet boot`` interrupted before its storm began (Ctrl-C or SIGTERM as it prints its banner, while its
shard processes start and build their phones): the reports are still written — no phone booted, every
phone not started, ``interrupted`` — the exit status is 130, and the shard processes are killed and
reaped. It was a bare "interrupted" (or an AssertionError from joining a shard not yet started), no
--json, no --junit: the wait for the shards to be ready was outside the storm's interrupt handling.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from phoneemu.fleet.engine import FleetSpec
from phoneemu.fleet.shard import run_fleet
from phoneemu.phone.boot import BootTarget

COUNT = 40


def _ctrl_c_as_a_terminal() -> None:
    """SIGINT as a terminal's foreground job has it (a test run in the background has it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cli_fleet_interrupted_as_it_starts_writes_its_reports(tmp_path: Path, sig: signal.Signals) -> None:
    out, junit = tmp_path / "fleet.json", tmp_path / "fleet.xml"
    proc = subprocess.Popen(  # nothing listens on port 9: no phone could boot, whenever the signal lands
        [sys.executable, "-m", "phoneemu", "fleet", "boot", "--count", str(COUNT), "--tftp", "127.0.0.1:9",
         "--no-http", "--shards", "2", "--json", str(out), "--junit", str(junit), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_ctrl_c_as_a_terminal)  # noqa: PLW1509 - the child only sets a signal disposition
    try:
        assert proc.stderr is not None
        banner = proc.stderr.readline()  # printed as the storm is set up: the shards are starting
        assert banner.startswith(f"phoneemu fleet boot: {COUNT} phones "), banner
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, (stdout, stderr)
    assert "Traceback" not in stderr, stderr
    doc = json.loads(out.read_text())
    summary = doc["summary"]
    assert summary["interrupted"] is True and summary["lost"] == 0
    assert summary["booted"] == 0
    assert len(doc["phones"]) + summary["not_started"] == COUNT
    assert f"not started (interrupted): {summary['not_started']}" in stdout
    assert summary["phones_asked"] == COUNT
    if not doc["phones"]:  # the fleet asked for, none started (was "0 phones: 0 booted, 0 failed in 0.00s")
        assert stdout.startswith(f"{COUNT} phones: none started (interrupted"), stdout
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == str(COUNT)  # each phone a case, named by its MAC
    skipped = [case.get("name") for case in suite.iter("testcase") if case.find("skipped") is not None]
    assert len(skipped) == summary["not_started"] == int(suite.get("skipped") or -1)
    run = {f"{0x0A0000000000 + i:012X}" for i in range(COUNT)}
    assert set(skipped) <= run and len(set(skipped)) == len(skipped)


def test_run_fleet_interrupted_while_its_shards_start_returns_no_boot_and_reaps_them() -> None:
    """In process: the interrupt lands as the shard processes have just started (on_start)."""
    spec = FleetSpec(target=BootTarget(host="127.0.0.1", tftp_port=9, use_http=False), count=COUNT)
    pids: list[int] = []
    storm: list[bool] = []

    def on_start(started: list[int]) -> None:
        pids.extend(started)
        os.kill(os.getpid(), signal.SIGINT)  # KeyboardInterrupt here, before the storm

    result = run_fleet(spec, shards=2, on_start=on_start, on_storm=lambda: storm.append(True))
    assert result.interrupted and result.before_storm and not storm
    assert result.records == [] and result.metrics.total == 0 and not result.lost
    assert result.not_started == COUNT and len(result.shards) == 2
    assert result.summary()["not_started"] == COUNT
    assert len(pids) == 2
    for pid in pids:  # killed and reaped: no such process, not even a zombie
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_interrupted_before_any_shard_counts_every_phone_not_started() -> None:
    from phoneemu.fleet.shard import interrupted_before_storm

    spec = FleetSpec(target=BootTarget(host="127.0.0.1", tftp_port=9), count=COUNT)
    for shards, parts in ((None, min(COUNT, os.cpu_count() or 1)), (0, 1), (3, 3)):
        result = interrupted_before_storm(spec, shards)
        assert result.interrupted and result.before_storm and result.not_started == COUNT
        assert len(result.shards) == parts and result.records == []


_SIGNAL_IN_A_START = """
import os, signal, sys
import _posixsubprocess
from phoneemu.fleet.engine import FleetSpec
from phoneemu.fleet.shard import run_fleet
from phoneemu.phone.boot import BootTarget

real = _posixsubprocess.fork_exec
def fork_exec_then_signal(*args, **kwargs):  # as a signal landing while a shard's fork_exec runs
    if "multiprocessing-fork" not in repr(args[0]):  # not a shard (multiprocessing's resource tracker)
        return real(*args, **kwargs)
    pid = real(*args, **kwargs)
    _posixsubprocess.fork_exec = real
    os.kill(os.getpid(), signal.SIG{name})
    return pid

_posixsubprocess.fork_exec = fork_exec_then_signal
if __name__ == "__main__":
    spec = FleetSpec(target=BootTarget(host="127.0.0.1", tftp_port=9, use_http=False), count=8)
    result = run_fleet(spec, shards=2)
    print("interrupted", result.interrupted, result.before_storm, result.not_started)
"""


@pytest.mark.parametrize("name", ["INT", "TERM"])
def test_signal_while_a_shard_process_is_being_started_leaves_no_orphan(tmp_path: Path, name: str) -> None:
    """A signal between spawning a shard and writing it its process object: the starts finish first,
    then the interrupt; every shard is killed and reaped. It left that child reading a cut pipe — an
    EOFError traceback from multiprocessing.spawn on stderr — and never killed."""
    script = tmp_path / "start.py"
    script.write_text(_SIGNAL_IN_A_START.replace("{name}", name))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                          check=False, preexec_fn=_ctrl_c_as_a_terminal)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout.strip() == "interrupted True True 8", (proc.stdout, proc.stderr)
