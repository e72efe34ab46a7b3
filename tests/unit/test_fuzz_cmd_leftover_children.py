"""A ``--target-cmd`` that leaves a process running which holds its stderr open (phoneemu.fuzz.targets
``CommandTarget._stderr_tail``, ``_kill``): was, the fuzzer read stderr to its end, so a command that exited
at once while a background child of it (``helper &``) still held the pipe was a hang at ``--timeout``; and
a command killed at ``--timeout`` whose child had left its session (a daemon) held the fuzzer until that
child ended (``communicate`` after the kill), for ever for a daemon — no Ctrl-C-free way out."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from phoneemu.fuzz.targets import CommandTarget, Outcome

#: a child that leaves the command's session (as a daemon does), keeps the inherited stderr, and sleeps;
#: its pid written first to the file named by its argument
_DAEMON = ("import os, sys, time\nos.setsid()\nopen(sys.argv[1], 'w').write(str(os.getpid()))\n"
           "time.sleep(60)\n")


def _script(tmp_path: Path, body: str) -> str:
    script = tmp_path / "toy.sh"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    return f"{script} {{}}"


@contextlib.contextmanager
def _killed_after(*pid_files: Path) -> Iterator[None]:
    """Kill the processes whose pids the files hold once the block ends (their own session or not)."""
    try:
        yield
    finally:
        for f in pid_files:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(f.read_text()), signal.SIGKILL)


def test_a_command_that_exits_leaving_a_child_with_its_stderr_is_not_a_hang(tmp_path: Path) -> None:
    """Was: ``hang — timeout (> 3 s)`` for a command that wrote its message and exited 0 at once."""
    pid = tmp_path / "child.pid"
    command = _script(tmp_path, f'echo parsed >&2\nsleep 60 &\necho $! > {pid}\nexit 0')
    target = CommandTarget(command, workdir=tmp_path / "w", timeout=3.0)
    with _killed_after(pid):
        outcome = target.run(b"input")
    target.close()
    assert outcome.status == "ok", outcome
    assert outcome.detail == "exit status 0"


def test_a_command_that_crashes_leaving_a_child_with_its_stderr_is_a_crash_with_its_message(
        tmp_path: Path) -> None:
    pid = tmp_path / "child.pid"
    command = _script(tmp_path, f'sleep 60 &\necho $! > {pid}\necho "bad tag at 12" >&2\nkill -SEGV $$')
    target = CommandTarget(command, workdir=tmp_path / "w", timeout=3.0)
    with _killed_after(pid):
        outcome = target.run(b"input")
    target.close()
    assert (outcome.status, outcome.signature) == ("crash", "killed by SIGSEGV")
    assert "bad tag at 12" in outcome.detail


def test_a_command_killed_at_its_timeout_does_not_wait_for_its_daemon(tmp_path: Path) -> None:
    """The command hangs (a hang at ``--timeout``), its daemon holds its stderr: was, the run never
    returned while the daemon lived (here it is killed at the end of the test, so the old code's run ends)."""
    pid = tmp_path / "daemon.pid"
    (tmp_path / "daemon.py").write_text(_DAEMON)
    command = _script(tmp_path, f"{sys.executable} {tmp_path / 'daemon.py'} {pid} &\n"
                      f"i=0; while [ ! -s {pid} ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done\n"
                      "exec sleep 60")
    target = CommandTarget(command, workdir=tmp_path / "w", timeout=1.5)
    outcomes: list[Outcome] = []
    runner = threading.Thread(target=lambda: outcomes.append(target.run(b"input")), daemon=True)
    with _killed_after(pid):
        runner.start()
        runner.join(30)  # a bound for the test, not a time asserted: the run returns at its timeout
        returned = not runner.is_alive()
    runner.join(30)
    target.close()
    assert returned, "the run waited for the daemon the command left running"
    assert [(o.status, o.signature) for o in outcomes] == [("hang", "timeout (> 1.5 s)")]
