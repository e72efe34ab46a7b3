"""A parent killed from outside (SIGKILL: the OOM killer, ``kill -9``) leaves no worker behind.

``phoneemu run -j N`` workers and ``phoneemu fleet boot`` shards exit within a few seconds of their
parent's death, whatever they are doing (a scenario step that waits for an hour, a storm of boots),
not at their own time limit. The real commands run in a subprocess; their children are found through
``/proc`` (Linux), the parent is SIGKILLed, and every child must be gone within ``_GONE_S`` seconds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.fleet.engine import mac_text

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")

ROOT = Path(__file__).resolve().parents[2]
_GONE_S = 5.0
_HANG = """\
reproduces: test
timeout: 600
clusters:
  dead: {{external: {{tftp: "127.0.0.1:{port}", use_http: false}}}}
phones:
  q{i}:
    mac: "0B00000000{i:02d}"
    cluster: dead
    tftp: {{timeout_ms: 60000, retries: 100, max_time_ms: 3600000}}
steps:
  - boot: q{i}
  - expect: {{phones: q{i}, label: never reached, boot: failed}}
"""


def _children(pid: int) -> set[int]:
    """Live processes whose parent is ``pid`` (zombies left out: they have ended)."""
    out: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(entry.name))
    return out


def _alive(pids: set[int]) -> set[int]:
    left = set()
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2:].split()[0] != "Z":
            left.add(pid)
    return left


def _kill_parent_and_wait(proc: subprocess.Popen[bytes], want: int) -> tuple[set[int], set[int]]:
    """Wait (bounded) for ``want`` children of ``proc``, SIGKILL it; (children, those still alive
    ``_GONE_S`` later). Whatever is left is killed here so that no test leaves orphans behind."""
    kids: set[int] = set()
    for _ in range(600):  # 60 s at most for the workers to start
        kids = _children(proc.pid)
        if len(kids) >= want:
            break
        time.sleep(0.1)
    time.sleep(1.0)  # the workers are at work (a step under way), not starting
    kids = _children(proc.pid)
    proc.kill()
    proc.wait(10)
    left = kids
    for _ in range(round(_GONE_S / 0.1)):
        left = _alive(kids)
        if not left:
            break
        time.sleep(0.1)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return kids, left


def _assert_children_exit_with_parent(argv: list[str], tmp: Path) -> None:
    """``phoneemu ARGV`` started, its two worker processes seen, the parent SIGKILLed: every child
    gone within ``_GONE_S`` seconds. Its temporary folders go under ``tmp`` (a parent killed by
    SIGKILL cannot remove them; the next ``run`` or ``boot`` does)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp)}
    proc = subprocess.Popen([sys.executable, "-m", "phoneemu", *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        kids, left = _kill_parent_and_wait(proc, 2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert len(kids) >= 2
    assert not left, f"still running {_GONE_S} s after their parent was killed: {sorted(left)}"


@pytest.fixture
def black_hole() -> Iterator[socket.socket]:
    """A loopback UDP "TFTP server" that takes every request and never answers."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    try:
        yield s
    finally:
        s.close()


def test_run_j_workers_exit_when_their_parent_is_killed(tmp_path: Path, black_hole: socket.socket) -> None:
    """Two workers each in a step that waits an hour; the parent is SIGKILLed: both exit at once.
    Before, they ran on until the scenario's time limit (here 600 s)."""
    files = []
    for i in (1, 2):
        f = tmp_path / f"hang{i}.yaml"
        f.write_text(_HANG.format(port=black_hole.getsockname()[1], i=i))
        files.append(str(f))
    _assert_children_exit_with_parent(["run", *files, "-j", "2"], tmp_path)
    left = sorted(p.name for p in tmp_path.glob("phoneemu-run-*"))
    assert len(left) == 1  # nobody was left to remove it; the next run does (its maker is gone)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    subprocess.run([sys.executable, "-m", "phoneemu", "run", files[0], "--list"], env=env, check=True,
                   stdout=subprocess.DEVNULL, timeout=60)
    assert not list(tmp_path.glob("phoneemu-run-*"))


def test_fleet_shards_exit_when_their_parent_is_killed(tmp_path: Path, black_hole: socket.socket) -> None:
    """Two shards booting phones against a TFTP server that never answers (each boot waits for its
    timers); the parent is SIGKILLed: both shards exit at once."""
    _assert_children_exit_with_parent(["fleet", "boot", "--count", "4", "--tftp",
                                       f"127.0.0.1:{black_hole.getsockname()[1]}", "--mac-start",
                                       mac_text(0x0B0000000100), "--shards", "2", "--no-http", "-q"],
                                      tmp_path)
