"""``phoneemu run -j``: the run's ``phoneemu-run-*`` folder is made inside the ``try`` that removes it
(:func:`phoneemu.scenario.parallel.run_parallel`), a Ctrl-C or SIGTERM held back while it is made, as
``boot`` makes its temporary flash. Was: made before the ``try``; with nothing held (SIGINT left to the
system, where a SIGTERM is a KeyboardInterrupt: :func:`phoneemu.interrupts.term_as_ctrl_c`) a SIGTERM as
it was handed back escaped with the folder left until the next sweep.

Deterministic: the signal is sent by the replaced ``make_owned_tempdir`` once it has made the folder."""

from __future__ import annotations

import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.scenario import parallel
from phoneemu.scenario.runner import RunOptions
from tests.run_helpers import loaded_scenarios
from tests.signal_rules import signals_as_commands_set_them

pytestmark = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                reason="signal handlers are the main thread's")

NAMES = ["a", "b"]


@pytest.fixture
def ctrl_c_left_to_the_system() -> Iterator[None]:
    """SIGINT the system's (SIG_DFL: nothing is held) and SIGTERM a Ctrl-C; both put back after the test."""
    with signals_as_commands_set_them(sigint=signal.SIG_DFL):
        yield


def test_a_sigterm_as_the_run_folder_is_handed_back_leaves_no_folder(
        ctrl_c_left_to_the_system: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    made: list[str] = []
    real = parallel.make_owned_tempdir

    def make_then_sigterm(prefix: str) -> str:
        path = real(prefix)
        made.append(path)
        signal.raise_signal(signal.SIGTERM)  # its handler runs before this returns
        return path

    monkeypatch.setattr(parallel, "make_owned_tempdir", make_then_sigterm)
    scenarios = loaded_scenarios(tmp_path, NAMES, mac_prefix="0C00000001")
    try:
        summary = parallel.run_parallel(scenarios, RunOptions(lab_host_base=11), 2, sigterm=[True])
    except KeyboardInterrupt:  # (pytest would take it for the user's own and stop the session)
        pytest.fail(f"the SIGTERM escaped run_parallel, leaving {list(tmp_path.glob('phoneemu-run-*'))}")
    assert len(made) == 1 and list(tmp_path.glob("phoneemu-run-*")) == []
    assert (summary.interrupted, summary.scenarios, summary.stopped, summary.not_run) == (True, [], [], NAMES)
