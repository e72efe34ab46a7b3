"""Ctrl-C of ``phoneemu fuzz --target-cmd``: the command under way is killed, the finding kept, exit 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and sessions")
def test_ctrl_c_kills_the_command_and_keeps_the_timeout_being_minimised(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    script = tmp_path / "hang.sh"
    script.write_text(f"#!/bin/sh\necho $$ >> {pidfile}\nexec sleep 60\n")
    script.chmod(0o755)
    out = tmp_path / "fz"
    # Ctrl-C as at a terminal, even when this test runs with SIGINT ignored (a background job)
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from phoneemu.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", code, "fuzz", "--format", "itl", "--target-cmd",
                             f"{script} {{}}", "--timeout", "0.5", "--runs", "5", "--out", str(out), "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the first input timed out; now minimising it
        if pidfile.exists() and len(pidfile.read_text().split()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    pids = [int(p) for p in pidfile.read_text().split()]
    time.sleep(0.2)
    for pid in pids:  # none left running (a zombie of init's does not count)
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        if state != "Z":
            os.kill(pid, signal.SIGKILL)
            pytest.fail(f"the command {pid} was left running")
    [info] = (out / "crashes").glob("*/info.json")
    assert json.loads(info.read_text())["signature"] == "timeout (> 0.5 s)"
    assert json.loads((out / "summary.json").read_text())["interrupted"] is True


def test_ctrl_c_while_the_command_is_starting_still_kills_it(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C that lands while ``Popen`` waits for the command's exec (a loaded machine: the window is
    wide) interrupted ``Popen`` itself: no process object, nothing killed, the command left running
    (seen once in a suite run at -n 8 with CPU hogs). The interrupt now waits for ``Popen`` to return,
    then stops the run with the command killed."""
    from phoneemu.fuzz import targets

    pidfile = tmp_path / "pid"
    script = tmp_path / "hang.sh"
    script.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 60\n")
    script.chmod(0o755)
    real_popen = subprocess.Popen

    def popen_interrupted(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        proc = real_popen(*args, **kwargs)
        deadline = time.monotonic() + 10
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C before Popen has returned
        time.sleep(0.05)  # (the handler runs here, inside Popen)
        return proc

    old = signal.signal(signal.SIGINT, signal.default_int_handler)  # as at a terminal
    try:
        target = targets.CommandTarget(f"{script} {{}}", workdir=tmp_path / "work", timeout=30)
        monkeypatch.setattr(targets.subprocess, "Popen", popen_interrupted)
        with pytest.raises(KeyboardInterrupt):
            target.run(b"input")
    finally:
        signal.signal(signal.SIGINT, old)
    pid = int(pidfile.read_text())
    time.sleep(0.2)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        state = "gone"
    if state not in ("gone", "Z"):
        os.kill(pid, signal.SIGKILL)
        pytest.fail(f"the command {pid} was left running ({state})")
