"""A SIGTERM at the moments that let one through, in the commands other than ``boot``
(test_boot_sigterm_windows.py): each exits 130 saying ``interrupted``, no traceback, no hang — but
``lab serve`` once its own handler runs (``loop-start``, ``first-step-sigint-ignored``): a SIGTERM is then
its ordinary stop, ``stopping (SIGTERM)``, exit 0, as at any other moment.

* ``cli-start``: while ``phoneemu`` imports its command modules to build its parser (about 0.3 s), before
  ``main`` had made SIGTERM a Ctrl-C: the process was killed by it (exit -15, nothing said); then it was
  ``phoneemu: interrupted``, exit 130, whatever the command: now held back until the command can take it,
  so it has the command's status (``fleet boot``: its Ctrl-C; ``lab serve``: its stop, exit 0).
* ``loop-start``: as the event loop's SIGINT handler is set (asyncio's, or ``asyncio_run``'s), before
  ``asyncio.run`` zeroed its count of Ctrl-Cs: the main task was cancelled uncounted, a CancelledError
  traceback and exit 1 (``lab serve``, ``run``).
* ``first-step-sigint-ignored``: with SIGINT ignored (a shell's background job: ``lab serve ... &``), as
  the loop runs its first callback: the KeyboardInterrupt raised there left the main task never to be
  stepped again, and closing the loop waited for it for good (``lab serve`` hung).

Each probe sends the SIGTERM itself at its moment, so the moment is met every time
(:func:`tests.signal_rules.sigterm_probe`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import lab_template
from tests.signal_rules import assert_sigterm_exited_130, assert_stopped_as_ctrl_c, sigterm_probe

HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
template = lab_template("sigtermwindows", seed=31, phones={"0011223344F1": {}})


def _serve_argv(lab: Path) -> list[str]:
    """``lab serve`` on free ports: not stopped, it serves until a signal."""
    return ["lab", "serve", str(lab), "--host", HOST, "--tftp-port", "0", "--http-port", "0",
            "--tvs-port", "0", "--capf-port", "0"]


def test_a_sigterm_while_the_cli_builds_its_parser_is_the_commands_ctrl_c(tmp_path: Path) -> None:
    """Not stopped, ``fleet boot`` would boot (nothing answers on port 9: exit 1). Held back until its
    handler runs, the SIGTERM is its Ctrl-C, said by it (was ``phoneemu: interrupted``)."""
    argv = ["fleet", "boot", "--count", "2", "--tftp", f"{HOST}:9", "--no-http", "--timeout", "0.2",
            "--shards", "1", "-q"]
    done = sigterm_probe("cli-start", argv, tmp_path)
    assert_stopped_as_ctrl_c(done, "phoneemu fleet boot")
    assert "phones" not in done.stderr


def test_a_sigterm_while_the_cli_builds_its_parser_stops_lab_serve_as_at_any_moment(cluster: object,
                                                                                   tmp_path: Path) -> None:
    """Held back until ``lab serve``'s own handler runs, the SIGTERM is its ordinary stop, exit 0 (was the
    CLI's ``phoneemu: interrupted``, 130): nothing served, no port recorded."""
    lab = tmp_path / "lab"
    before = (lab / "cluster.json").read_bytes()
    done = sigterm_probe("cli-start", _serve_argv(lab), tmp_path)
    assert "SIGTERM sent" in done.stderr, done.stderr  # the moment was met
    assert done.returncode == 0 and "Traceback" not in done.stderr, (done.returncode, done.stderr)
    assert done.stdout == "stopping (SIGTERM)\n" and "interrupted" not in done.stderr
    assert (lab / "cluster.json").read_bytes() == before


@pytest.mark.parametrize("moment", ["loop-start", "first-step-sigint-ignored"])
def test_a_sigterm_as_lab_serve_starts_its_loop_stops_it_as_at_any_moment(cluster: object, tmp_path: Path,
                                                                          moment: str) -> None:
    """``lab serve``'s own rule once its handler runs: a SIGTERM is its ordinary stop, exit 0 (was the
    CLI's Ctrl-C, 130, for its first 0.35 s: test_lab_serve_as_a_process.py)."""
    lab = tmp_path / "lab"
    before = (lab / "cluster.json").read_bytes()
    done = sigterm_probe(moment, _serve_argv(lab), tmp_path)
    assert "SIGTERM sent" in done.stderr, done.stderr  # the moment was met
    assert done.returncode == 0 and "Traceback" not in done.stderr, (done.returncode, done.stderr)
    assert done.stdout == "stopping (SIGTERM)\n" and "interrupted" not in done.stderr
    assert (lab / "cluster.json").read_bytes() == before  # nothing served, no port recorded


def test_a_sigterm_as_run_starts_a_scenarios_loop_stops_the_run(tmp_path: Path) -> None:
    """``run``: the scenario under way stopped as by a Ctrl-C (an ERROR saying SIGTERM), the run's
    summary said, exit 130 (was a CancelledError traceback, exit 1, no summary)."""
    scenario = REPO / "scenarios" / "autoregistration-default-config.yaml"
    done = sigterm_probe("loop-start", ["run", str(scenario)], tmp_path)
    assert_sigterm_exited_130(done)
    assert "interrupted (SIGTERM) before the scenario finished" in done.stdout + done.stderr, done.stdout
