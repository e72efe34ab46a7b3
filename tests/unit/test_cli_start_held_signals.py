"""``phoneemu.cli.main`` in process: SIGTERM and SIGHUP held back from its first line until the command's
handling is in place (:func:`phoneemu.interrupts.hold_from_start`), the signal mask given back however it
ends, an ignored signal not held; and a stderr that cannot be written loses the error's line, not the exit
status. The same in real processes: tests/integration/test_cli_start_signals_stderr.py."""

from __future__ import annotations

import argparse
import contextlib
import errno
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from phoneemu import cli
from phoneemu.interrupts import hold_from_start, release_from_start, releases_from_start

pytestmark = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                reason="signal handlers and masks are the main thread's")

HELD = {signal.SIGTERM, signal.SIGHUP}


def _mask() -> set[int]:
    return set(signal.pthread_sigmask(signal.SIG_BLOCK, []))


@pytest.fixture
def handlers() -> Iterator[None]:
    """SIGINT Python's handler, SIGTERM and SIGHUP their defaults; handlers and mask put back after."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@pytest.mark.parametrize("argv", [[], ["--version"], ["no-such-command"], ["inspect", "/nonexistent.tlv"]],
                         ids=["help", "version", "usage-error", "error"])
def test_the_signal_mask_is_given_back_however_main_ends(handlers: None, argv: list[str],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    before = _mask()
    assert not before & HELD  # (the test would prove nothing)
    for _ in range(2):  # called again in the same process: nothing left held
        with contextlib.suppress(SystemExit):  # --version, a usage error
            cli.main(argv)
        assert _mask() == before
    capsys.readouterr()


def test_a_signal_blocked_before_main_stays_blocked(handlers: None,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    assert cli.main(["inspect", "/nonexistent.tlv"]) == 2
    assert signal.SIGTERM in _mask() and signal.SIGHUP not in _mask()
    capsys.readouterr()


def test_an_ignored_sighup_is_not_held(handlers: None) -> None:
    """``nohup``: SIGHUP ignored stays so, never blocked (a held one could meet a handler set meanwhile)."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        hold_from_start()
        assert signal.SIGTERM in _mask() and signal.SIGHUP not in _mask()
    finally:
        release_from_start()
    assert not _mask() & HELD


def _parser_whose_handler(handler: Any) -> Any:
    """``cli.build_parser``'s stand-in: a SIGTERM raised while it runs (held back), then a parser whose
    only command, ``serve``, runs ``handler``."""
    def build() -> argparse.ArgumentParser:
        signal.raise_signal(signal.SIGTERM)  # held: its handler does not run before this returns
        parser = argparse.ArgumentParser(prog="phoneemu")
        serve = parser.add_subparsers().add_parser("serve", prog="phoneemu serve")
        serve.set_defaults(handler=handler, parser_used=serve)
        return parser
    return build


def test_a_sigterm_while_parsing_reaches_a_command_that_lets_it_through_itself(
        handlers: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A handler marked :func:`releases_from_start` gets the SIGTERM once its own handler is set: its exit
    status (``lab serve``'s 0), not the CLI's ``interrupted``, 130."""
    got: list[int] = []

    @releases_from_start
    def serve(_args: argparse.Namespace) -> int:
        signal.signal(signal.SIGTERM, lambda signum, _frame: got.append(signum))
        assert got == []  # held until now
        release_from_start()
        return 0 if got == [signal.SIGTERM] else 3

    monkeypatch.setattr(cli, "build_parser", _parser_whose_handler(serve))
    assert cli.main(["serve"]) == 0
    assert capsys.readouterr().err == ""


def test_a_sigterm_while_parsing_is_the_ctrl_c_of_a_command_without_a_rule_of_its_own(
        handlers: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Said by the command as typed (was ``phoneemu: interrupted``); its handler never runs."""
    ran: list[bool] = []
    monkeypatch.setattr(cli, "build_parser", _parser_whose_handler(lambda _args: ran.append(True) or 0))
    assert cli.main(["serve"]) == 130
    assert capsys.readouterr().err == "phoneemu serve: interrupted\n"
    assert ran == []


class _Full:
    """A stderr on a full disk: every write fails (no file descriptor)."""

    def __init__(self) -> None:
        self.tried = 0

    def write(self, _text: str) -> int:
        self.tried += 1
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        pass


def test_an_error_line_that_cannot_be_written_is_lost_not_the_exit_status(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 2, as documented (was: the OSError of the error's print escaped main, exit 1)."""
    full = _Full()
    monkeypatch.setattr(sys, "stderr", full)
    assert cli.main(["inspect", "/nonexistent.tlv"]) == 2
    assert full.tried == 1  # tried once, then lost
    assert sys.stderr is full  # given back
    assert capsys.readouterr().out == ""


def test_without_a_stderr_an_error_line_is_lost_not_printed_on_stdout(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Python started with fd 2 closed has ``sys.stderr`` None, and ``print(file=None)`` writes on stdout:
    the error was mixed into a command's output (``inspect --json F > out.json 2>&-``)."""
    monkeypatch.setattr(sys, "stderr", None)
    assert cli.main(["inspect", "/nonexistent.tlv"]) == 2
    assert sys.stderr is None
    assert capsys.readouterr().out == ""
