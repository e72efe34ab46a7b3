"""A SIGTERM held back by ``ctrl_c_deferred`` is the Ctrl-C it stands for (phoneemu.interrupts): with SIGINT
ignored (a shell's background job) it was dropped after the block, as an ignored SIGINT is; now it raises
KeyboardInterrupt there, as it would have outside the block."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from phoneemu.interrupts import ctrl_c_deferred, term_as_ctrl_c


@pytest.fixture
def sigint_as(request: pytest.FixtureRequest) -> Iterator[None]:
    """SIGINT set to ``request.param`` and SIGTERM to the module's rule, both given back after."""
    old_int = signal.signal(signal.SIGINT, request.param)
    old_term = term_as_ctrl_c()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)


@pytest.mark.parametrize("sigint_as", [signal.SIG_IGN], indirect=True, ids=["sigint-ignored"])
def test_a_sigterm_held_back_is_a_ctrl_c_after_the_block(sigint_as: None) -> None:
    steps: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_deferred() as interrupted:
            signal.raise_signal(signal.SIGTERM)
            steps.append("block ended")  # held back: the block runs to its end
        steps.append("restored")
        interrupted()
    assert steps == ["block ended", "restored"]


@pytest.mark.parametrize("sigint_as", [signal.SIG_IGN], indirect=True, ids=["sigint-ignored"])
def test_a_sigterm_held_back_wins_over_the_blocks_error(sigint_as: None) -> None:
    with pytest.raises(KeyboardInterrupt), ctrl_c_deferred():
        signal.raise_signal(signal.SIGTERM)
        raise OSError("the block's own error")


@pytest.mark.parametrize("sigint_as", [signal.SIG_IGN], indirect=True, ids=["sigint-ignored"])
def test_a_sigterm_held_back_by_nested_blocks_stays_one(sigint_as: None) -> None:
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_deferred() as outer:
            with ctrl_c_deferred() as inner:
                signal.raise_signal(signal.SIGTERM)
            inner()  # passed on to the outer block, still a SIGTERM
        outer()


@pytest.mark.parametrize("sigint_as", [signal.SIG_IGN], indirect=True, ids=["sigint-ignored"])
def test_a_sigint_held_back_while_ignored_stays_ignored(sigint_as: None) -> None:
    with ctrl_c_deferred() as interrupted:
        signal.raise_signal(signal.SIGINT)
    interrupted()  # nothing: an ignored SIGINT outside the block would have done nothing either
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def _handler(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


@pytest.mark.parametrize("sigint_as", [_handler], indirect=True, ids=["sigint-handler"])
def test_a_sigterm_held_back_meets_the_sigint_handler_in_force(sigint_as: None) -> None:
    with pytest.raises(KeyboardInterrupt):
        with ctrl_c_deferred() as interrupted:
            signal.raise_signal(signal.SIGTERM)
        interrupted()


_SIGINT_LEFT_TO_THE_SYSTEM = """
import signal
from phoneemu.interrupts import ctrl_c_deferred, term_as_ctrl_c
signal.signal(signal.SIGINT, signal.SIG_DFL)
term_as_ctrl_c()
try:
    with ctrl_c_deferred() as interrupted:
        signal.raise_signal(signal.SIGTERM)
    interrupted()
except KeyboardInterrupt:
    print("KeyboardInterrupt")
"""


def test_a_sigterm_held_back_with_sigint_left_to_the_system_is_a_keyboard_interrupt() -> None:
    """Was: the process killed by a SIGINT raised after the block (no clean-up); a subprocess, so that the
    old code kills it, not the test run."""
    proc = subprocess.run([sys.executable, "-c", _SIGINT_LEFT_TO_THE_SYSTEM], capture_output=True, text=True,
                          timeout=60, check=False)
    assert (proc.returncode, proc.stdout.strip()) == (0, "KeyboardInterrupt"), proc.stderr
