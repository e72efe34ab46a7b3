"""Every command and sub-command's ``--help`` says its exit statuses (a newcomer's walkthrough found none
under the 32 ``lab`` operations, the ``phone`` actions, ``lab serve`` — its 130 / 0 / 129 only in the
README — ``wireshark`` and ``inspect``). The parser tree is walked, so an operation added later without
them fails here. ``lab`` operations share one text (:data:`phoneemu.commands.lab.OP_EXIT_STATUS`), true
to what their handlers return; the others' statuses are checked against what a refusal returns."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from phoneemu.cli import build_parser, main
from tests.helpers import cli_parsers

#: the commands this walk covers (predict, edited elsewhere, is left out for now)
COMMANDS = ("run", "phone", "lab", "inspect", "tvs", "fuzz", "wireshark", "fleet")


def _parsers() -> dict[str, argparse.ArgumentParser]:
    parsers = dict(cli_parsers(build_parser()))
    return {name: p for name, p in parsers.items() if name != "phoneemu" and name.split()[1] in COMMANDS}


def _help(parser: argparse.ArgumentParser) -> str:
    return " ".join(parser.format_help().split())  # the words, whatever the wrapping


def test_every_command_and_sub_command_help_says_its_exit_status() -> None:
    parsers = _parsers()
    assert len([n for n in parsers if n.startswith("phoneemu lab ")]) >= 34  # 32 operations, phone, serve
    missing = [name for name, p in parsers.items() if "exit status" not in _help(p).lower()]
    assert not missing, missing


def test_each_lab_operation_shows_the_one_shared_text() -> None:
    from phoneemu.commands.lab import OP_EXIT_STATUS

    shared = " ".join(OP_EXIT_STATUS.split())
    parsers = _parsers()
    ops = {name: p for name, p in parsers.items()
           if name.count(" ") == 2 and name.startswith("phoneemu lab ")}
    ops.pop("phoneemu lab serve")  # its statuses are the signals'
    ops.pop("phoneemu lab phone")  # a group: lab phone add has the text
    ops["phoneemu lab phone add"] = parsers["phoneemu lab phone add"]
    assert len(ops) == 33
    assert [name for name, p in ops.items() if shared not in _help(p)] == []


def test_lab_serve_help_gives_its_signal_statuses() -> None:
    text = _help(_parsers()["phoneemu lab serve"])
    for said in ("130 after Ctrl-C", "0 after SIGTERM", "129 after SIGHUP", "2 refused"):
        assert said in text, said


@pytest.mark.parametrize(("argv", "status", "said"), [
    (["lab", "show", "{tmp}/nolab"], 2, "2 refused"),
    (["lab"], 2, "'lab' without an operation prints this help and exits 2"),
    (["lab", "phone"], 2, "'lab phone' alone prints this help and exits 2"),
    (["fleet"], 2, "'fleet' without an action prints this help and exits 2"),
    (["phone", "show", "--flash", "{tmp}/noflash"], 2, "2 the flash folder"),
    (["wireshark"], 2, "2 refused"),
    (["inspect", "{tmp}/nofile"], 2, "2 the file does not parse or cannot be read"),
])
def test_the_status_a_help_says_is_the_one_returned(argv: list[str], status: int, said: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(args) == status
    parsers = dict(cli_parsers(build_parser()))
    name = "phoneemu " + " ".join(a for a in argv if not a.startswith(("{", "-")))
    assert said in _help(parsers[name])
