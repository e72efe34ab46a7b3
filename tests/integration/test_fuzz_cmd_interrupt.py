"""Ctrl-C of ``phoneemu fuzz --target-cmd``: the command under way is killed, the finding kept, exit 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
