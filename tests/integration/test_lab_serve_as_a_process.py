"""``phoneemu lab serve`` as a process (red team R17): a user's terminal, CI and a service manager.

* A second SIGTERM as the process ends (Python gives the signals their system default as it finalises,
  about 0.1 s after the stop): was killed by it, exit 143; now dropped, exit 0.
* SIGHUP (the terminal closed): was killed by it at any moment (nothing said, a write under way cut); now
  stopped cleanly, ``stopping (SIGHUP)``, exit 129 — also before the servers' handlers are set. Ignored
  (``nohup``) it stays ignored.
* stdout that cannot be written (a pipe whose reader left, ``/dev/full``): was exit 1 (nothing said) or
  exit 2 (``No space left on device``, naming nothing) as it started; now it serves, its lines lost, a
  full disk said once on stderr.
* A port another process holds: the error names that process (Linux ``/proc``), not "e.g. by another
  'phoneemu lab serve'"; a ``--host`` name that does not resolve says so (was ``Unknown error -2``).

The SIGTERM within lab serve's first 0.35 s: tests/integration/test_sigterm_windows_commands.py.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.lab.cluster import LabCluster
from tests.helpers import lab_template, port_free, reap, serve_ports

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
MAC = "0011223344E7"
#: a loaded CI machine must not fail these; far below a hang
WAIT_S = 30.0

template = lab_template("labprocess", seed=None, phones={MAC: {}})  # fresh keys: faster, none compared

#: ``python -c PROBE SETUP ARGV...``: ``phoneemu ARGV`` after running SETUP (Python code)
_PROBE = """\
import os, signal, sys
exec(sys.argv[1])
from phoneemu.cli import main
sys.exit(main(sys.argv[2:]))
"""
#: SIGHUP as a terminal's child has it (the test runner may run under nohup)
_HUP_DEFAULT = "signal.signal(signal.SIGHUP, signal.SIG_DFL)\n"


def _serve_argv(root: Path) -> list[str]:
    return ["lab", "serve", str(root), "--host", HOST, "--tftp-port", "0", "--http-port", "0", "--tvs-port",
            "0", "--capf-port", "0"]


def _start(root: Path, setup: str = _HUP_DEFAULT, *, stdout: int = subprocess.PIPE) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _PROBE, setup, *_serve_argv(root)], stdout=stdout,
                            stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def _ended(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Exit status, the rest of stdout and stderr of ``proc`` (the test fails if it does not end)."""
    try:
        out, err = proc.communicate(timeout=WAIT_S)
    except subprocess.TimeoutExpired:
        raise AssertionError("lab serve did not end") from None
    return proc.returncode, out or "", err


def _run_to_its_end(root: Path, setup: str) -> tuple[int, str, str]:
    """``lab serve`` of ``root`` with ``setup`` (which stops it), run to its end: :func:`_ended`'s."""
    proc = _start(root, setup)
    try:
        return _ended(proc)
    finally:
        reap(proc)


@contextlib.contextmanager
def _serving(root: Path, setup: str = _HUP_DEFAULT) -> Iterator[tuple[subprocess.Popen[str], dict[str, int]]]:
    proc = _start(root, setup)
    try:
        ports, lines = serve_ports(proc, timeout=WAIT_S)
        assert set(ports) == {"tftp", "http", "tvs", "capf"}, "".join(lines) + (
            proc.stderr.read() if proc.poll() is not None and proc.stderr is not None else "")
        yield proc, ports
    finally:
        reap(proc)


def _assert_ports_free(ports: dict[str, int]) -> None:
    for name, port in ports.items():
        assert port_free(HOST, port, socket.SOCK_DGRAM if name == "tftp" else socket.SOCK_STREAM), name


def test_a_second_sigterm_as_the_process_ends_is_dropped(cluster: LabCluster) -> None:
    """The first SIGTERM stops it; another one as the process ends (sent here from an exit hook that runs
    after lab serve's) is dropped: exit 0 (was: killed by it, -15)."""
    setup = ("import atexit\n"
             "from phoneemu.commands import lab_serve\n"
             "listening = lab_serve._print_listening\n"
             "def listening_then_sigterm(*a):\n"
             "    listening(*a)\n"
             "    os.kill(os.getpid(), signal.SIGTERM)\n"
             "lab_serve._print_listening = listening_then_sigterm\n"
             "atexit.register(lambda: os.kill(os.getpid(), signal.SIGTERM))\n")
    status, out, err = _run_to_its_end(cluster.root, setup)
    assert status == 0, (status, err)
    assert out.endswith("Ctrl-C (SIGINT) or SIGTERM stops\nstopping (SIGTERM)\n"), out
    assert err == ""


def test_sighup_stops_it_cleanly(cluster: LabCluster) -> None:
    with _serving(cluster.root) as (proc, ports):
        proc.send_signal(signal.SIGHUP)
        status, out, err = _ended(proc)
    assert status == 129, (status, err)
    assert out == "stopping (SIGHUP)\n" and err == ""
    _assert_ports_free(ports)
    assert (cluster.root / ".serve.lock").read_text() == ""  # its note cleared: it ended its own way


def test_sighup_ignored_by_nohup_stays_ignored(cluster: LabCluster) -> None:
    """Sent before the SIGTERM, a SIGHUP it took would be the first signal (129, ``stopping (SIGHUP)``)."""
    with _serving(cluster.root, "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n") as (proc, _ports):
        proc.send_signal(signal.SIGHUP)
        proc.send_signal(signal.SIGTERM)
        status, out, err = _ended(proc)
    assert (status, out, err) == (0, "stopping (SIGTERM)\n", "")


def test_a_sighup_while_the_lab_is_opened_stops_it_as_at_any_moment(cluster: LabCluster) -> None:
    """Before the servers' own handlers are set (the lab opened in the event loop): exit 129, nothing served,
    nothing recorded (was: killed by it)."""
    before = (cluster.root / "cluster.json").read_bytes()
    setup = (_HUP_DEFAULT + "from phoneemu.lab.cluster import LabCluster\n"
             "opened = LabCluster.open\n"
             "def hup_then_open(*a, **k):\n"
             "    os.kill(os.getpid(), signal.SIGHUP)\n"
             "    return opened(*a, **k)\n"
             "LabCluster.open = hup_then_open\n")
    status, out, err = _run_to_its_end(cluster.root, setup)
    assert (status, out, err) == (129, "stopping (SIGHUP)\n", "")
    assert (cluster.root / "cluster.json").read_bytes() == before


def _serving_note(root: Path, proc: subprocess.Popen[str]) -> str:
    """What ``lab serve`` noted in ``DIR/.serve.lock`` once it listens (its pid and ports)."""
    note = ""
    for _ in range(int(WAIT_S / 0.05)):
        note = (root / ".serve.lock").read_text() if (root / ".serve.lock").exists() else ""
        if "capf" in note or proc.poll() is not None:
            break
        time.sleep(0.05)
    return note


@pytest.mark.parametrize("where", ["pipe-reader-gone", "dev-full"])
def test_stdout_that_cannot_be_written_loses_its_lines_not_the_server(cluster: LabCluster,
                                                                      where: str) -> None:
    if where == "dev-full" and not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    if where == "pipe-reader-gone":
        reader, out_fd = os.pipe()
        os.close(reader)
    else:
        out_fd = os.open("/dev/full", os.O_WRONLY)
    try:
        proc = _start(cluster.root, stdout=out_fd)
    finally:
        os.close(out_fd)
    try:
        note = _serving_note(cluster.root, proc)
        assert proc.poll() is None, proc.communicate()  # was: exit 1 (a pipe) or 2 (a full disk) at start
        assert f"pid {proc.pid}, " in note, note
        port = int(note.split("http ")[1].split(",")[0].rsplit(":", 1)[1])
        with socket.create_connection((HOST, port), timeout=5):
            pass
        proc.send_signal(signal.SIGTERM)
        status, _out, err = _ended(proc)
    finally:
        reap(proc)
    assert status == 0, (status, err)
    said = ("phoneemu lab serve: stdout: No space left on device: its lines are lost from now on (serving "
            "goes on)\n")
    assert err == ("" if where == "pipe-reader-gone" else said)


@pytest.mark.parametrize("kind", [socket.SOCK_STREAM, socket.SOCK_DGRAM], ids=["http-tcp", "tftp-udp"])
def test_a_port_another_process_holds_names_it(cluster: LabCluster, kind: int) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import socket, sys\n"
         f"s = socket.socket(socket.AF_INET, {int(kind)}); s.bind(('{HOST}', 0))\n"
         f"{'s.listen()' if kind == socket.SOCK_STREAM else ''}\n"
         "print(s.getsockname()[1], flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        port = holder.stdout.readline().strip()
        option = "--http-port" if kind == socket.SOCK_STREAM else "--tftp-port"
        argv = [*_serve_argv(cluster.root), option, port]
        done = subprocess.run([sys.executable, "-m", "phoneemu", *argv], capture_output=True, text=True,
                              timeout=WAIT_S, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                              check=False)
    finally:
        assert holder.stdin is not None
        holder.stdin.close()  # its end
        reap(holder)
    assert done.returncode == 2 and done.stdout == "", (done.returncode, done.stderr)
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"on {HOST}:{port}: Address already in use (held by pid {holder.pid} (" in done.stderr, done.stderr
    assert f"): stop it, or pick another {option} (0 = any free port))" in done.stderr, done.stderr


def test_a_host_name_that_does_not_resolve_says_so() -> None:
    from phoneemu.lab.servers import _bind_error

    error = _bind_error("tftp", "no-such-host.invalid", 0,
                        socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    assert str(error) == "cannot listen for tftp on no-such-host.invalid:0: Name or service not known"
    assert error.kind == "unreachable"  # lab serve adds: is it an address of this machine?
    assert "Unknown error" not in str(_bind_error("http", HOST, 1, OSError(errno.EADDRNOTAVAIL, "x")))
