"""``phoneemu.cli.main``: SIGTERM is a Ctrl-C from its first moment, the parser's building included (its
command modules' imports take about 0.3 s), and the SIGTERM handler before the call is given back however
``main`` ends (tests call it many times in one process). Was: set once the parser was built, a SIGTERM
before met the handler in force (Python's default: the process killed, exit -15)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from phoneemu import cli

pytestmark = pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                                reason="signal handlers are the main thread's")


class _Marker:
    """The SIGTERM handler in force before ``main``: notes a SIGTERM that reaches it."""

    def __init__(self) -> None:
        self.got = 0

    def __call__(self, _signum: int, _frame: Any) -> None:
        self.got += 1


@pytest.fixture
def marker() -> Iterator[_Marker]:
    """SIGINT Python's handler, SIGTERM a :class:`_Marker`; both put back after the test."""
    mark = _Marker()
    old_term = signal.signal(signal.SIGTERM, mark)
    old_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield mark
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)


def test_a_sigterm_while_the_parser_is_built_is_a_ctrl_c(marker: _Marker, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    real = cli.build_parser

    def sigterm_then_build(only: str | None = None) -> Any:
        signal.raise_signal(signal.SIGTERM)  # its handler runs before this returns
        return real(only)

    monkeypatch.setattr(cli, "build_parser", sigterm_then_build)
    assert cli.main(["inspect", "--help"]) == 130
    assert capsys.readouterr().err == "phoneemu: interrupted\n"
    assert marker.got == 0  # it was the command's Ctrl-C, not the handler before
    assert signal.getsignal(signal.SIGTERM) is marker


@pytest.mark.parametrize("argv", [[], ["--version"], ["no-such-command"], ["inspect", "/nonexistent.tlv"]],
                         ids=["help", "version", "usage-error", "error"])
def test_the_sigterm_handler_is_given_back_however_main_ends(marker: _Marker, argv: list[str],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(2):  # called again in the same process: the same handler given back
        with contextlib.suppress(SystemExit):  # --version, a usage error
            cli.main(argv)
        assert signal.getsignal(signal.SIGTERM) is marker
    capsys.readouterr()
