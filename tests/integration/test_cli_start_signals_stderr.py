"""Two rules of ``phoneemu`` as a process, from its first moment and whatever its stderr is.

* A SIGTERM or SIGHUP while the CLI imports its commands and parses (about 0.05-0.15 s after start) has the
  status the command documents for it: ``lab serve`` stops, ``stopping (SIGTERM)`` exit 0, ``stopping
  (SIGHUP)`` exit 129 (was: ``phoneemu: interrupted``, 130; a SIGHUP killed it); ``run`` writes its reports
  saying SIGTERM, exit 130 (was: none written, an earlier run's left standing). A SIGHUP ignored (``nohup``)
  stays ignored; with SIGINT ignored (``&``) a SIGTERM is still ``lab serve``'s stop.
* An error exit keeps its documented status when its line cannot be written on stderr (``2>/dev/full``,
  ``2>&-``, a descriptor open for reading): was exit 1, the print raising; with fd 2 closed the line went to
  stdout.

The probe sends the signals itself as the command's module is imported (the parser being built), so
the moment is met every time; it notes ``sent`` in its folder (stderr may be unwritable).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import lab_template

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
template = lab_template("clistart", seed=37, phones={"0011223344F2": {}})

_PROBE = """\
import importlib, os, signal, sys
from pathlib import Path
from phoneemu.cli import main

sent = [getattr(signal, name) for name in sys.argv[1].split(",") if name]
if sys.argv[2] != "-":
    signal.signal(getattr(signal, sys.argv[2]), signal.SIG_IGN)  # SIGINT: a shell's '&'; SIGHUP: nohup
real_import = importlib.import_module

def import_then_signal(name, *args, **kwargs):
    if name.startswith("phoneemu.commands."):  # the command's own module, the parser importing it
        importlib.import_module = real_import
        Path("sent").write_text("sent")
        for sig in sent:
            os.kill(os.getpid(), sig)
    return real_import(name, *args, **kwargs)

importlib.import_module = import_then_signal
sys.exit(main(sys.argv[3:]))
"""

#: how stderr is made unwritable: a full device, fd 2 closed from the start, fd 2 open for reading only
STDERRS = {"full": "2>/dev/full", "closed": "2>&-", "read-only": "2</dev/null"}


def _phoneemu(cwd: Path, argv: list[str], *, signals: str = "", ignored: str = "-",
              stderr: str | None = None) -> subprocess.CompletedProcess[str]:
    """``phoneemu ARGV`` in ``cwd`` (also its TMPDIR) sending itself ``signals`` (``SIGTERM,SIGHUP``) while
    the CLI builds its parser, ``ignored`` (``SIGINT``, ``SIGHUP``) ignored from the start, stderr
    redirected by the shell as ``stderr`` says (:data:`STDERRS`; None: captured). Killed after 30 s: a
    ``lab serve`` the signal missed would serve for ever."""
    env = {**os.environ, "TMPDIR": str(cwd), "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", _PROBE, signals, ignored, *argv]
    if stderr is not None:
        command = ["/bin/sh", "-c", f'exec "$0" "$@" {stderr}', *command]
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=30, cwd=cwd, check=False,
                              env=env, stderr=subprocess.PIPE if stderr is None else None)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"phoneemu {argv[:2]} did not end: the signal was lost") from None
    assert not signals or (cwd / "sent").exists()  # the moment was met
    return done


def _serve_argv(lab: Path, *, tftp_port: int = 0) -> list[str]:
    """``lab serve`` on free ports (TFTP on ``tftp_port``): not stopped, it serves until a signal."""
    return ["lab", "serve", str(lab), "--host", HOST, "--tftp-port", str(tftp_port), "--http-port", "0",
            "--tvs-port", "0", "--capf-port", "0"]


@pytest.mark.parametrize(("signals", "ignored", "said", "status"), [
    ("SIGHUP", "-", "SIGHUP", 129),
    ("SIGTERM", "SIGINT", "SIGTERM", 0),
    ("SIGHUP,SIGTERM", "SIGHUP", "SIGTERM", 0),
], ids=["sighup", "sigterm-sigint-ignored", "sighup-ignored-then-sigterm"])
def test_a_signal_while_the_cli_starts_stops_lab_serve_as_at_any_moment(
        cluster: object, tmp_path: Path, signals: str, ignored: str, said: str, status: int) -> None:
    """Held back until ``lab serve``'s own handlers are set: its stop and status (a SIGHUP ignored under
    ``nohup`` stays ignored: the SIGTERM decides), nothing served, no port recorded."""
    lab = tmp_path / "lab"
    before = (lab / "cluster.json").read_bytes()
    done = _phoneemu(tmp_path, _serve_argv(lab), signals=signals, ignored=ignored)
    assert (done.returncode, done.stdout) == (status, f"stopping ({said})\n"), done.stderr
    assert "interrupted" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert (lab / "cluster.json").read_bytes() == before


def test_a_sigterm_while_the_cli_starts_is_in_runs_reports(tmp_path: Path) -> None:
    """``run``'s rule from the start: its reports say it was interrupted by SIGTERM before any scenario
    started (an earlier run's never left standing), exit 130."""
    junit, report = tmp_path / "r.xml", tmp_path / "r.json"
    junit.write_text("an earlier run's\n")
    report.write_text("an earlier run's\n")
    scenario = REPO / "scenarios" / "autoregistration-default-config.yaml"
    done = _phoneemu(tmp_path, ["run", str(scenario), "--junit", str(junit), "--json", str(report)],
                     signals="SIGTERM")
    assert done.returncode == 130 and "Traceback" not in done.stderr, (done.returncode, done.stderr)
    assert "phoneemu run: interrupted" in done.stderr, done.stderr
    assert "interrupted (SIGTERM) before any scenario started: nothing ran" in junit.read_text()
    assert json.loads(report.read_text())["interrupted"] is True


@pytest.fixture
def udp_port_taken() -> Iterator[int]:
    """A loopback UDP port held by this test: ``lab serve --tftp-port`` it finds in use."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize("stderr", sorted(STDERRS))
def test_an_error_exit_is_2_whatever_stderr_is(tmp_path: Path, stderr: str) -> None:
    """A missing lab folder: exit 2, nothing on stdout (was 1; with fd 2 closed, the line on stdout)."""
    done = _phoneemu(tmp_path, ["lab", "serve", str(tmp_path / "missing")], stderr=STDERRS[stderr])
    assert (done.returncode, done.stdout) == (2, "")


def test_a_port_in_use_is_exit_2_with_stderr_on_a_full_device(cluster: object, tmp_path: Path,
                                                            udp_port_taken: int) -> None:
    done = _phoneemu(tmp_path, _serve_argv(tmp_path / "lab", tftp_port=udp_port_taken),
                     stderr=STDERRS["full"])
    assert (done.returncode, done.stdout) == (2, "")


def test_a_note_that_cannot_be_written_leaves_a_success_a_success(cluster: Any, tmp_path: Path) -> None:
    """``lab mixed-mode off`` with a phone in a secure mode says a note on stderr, and succeeds (was: exit
    1, the note's OSError taken for the command's, whose line raised too)."""
    cluster.set_mixed_mode(True)
    cluster.set_security_mode(["0011223344F2"], "authenticated")
    done = _phoneemu(tmp_path, ["lab", "mixed-mode", str(tmp_path / "lab"), "off"], stderr=STDERRS["full"])
    assert done.returncode == 0 and "generation" in done.stdout, done.stdout


def test_a_sigterm_while_the_cli_starts_is_130_with_stderr_on_a_full_device(tmp_path: Path) -> None:
    """The Ctrl-C it stands for (``inspect`` has no rule of its own): 130 (was 1: ``interrupted`` raising)."""
    done = _phoneemu(tmp_path, ["inspect", str(tmp_path / "missing.tlv")], signals="SIGTERM",
                     stderr=STDERRS["full"])
    assert (done.returncode, done.stdout) == (130, "")
