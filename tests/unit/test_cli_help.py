"""Every ``--help`` reads as terminal text: no reStructuredText literals, no tracker references, and
examples where a command takes more than a directory."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
from collections.abc import Iterator

from phoneemu.cli import build_parser

Named = tuple[str, argparse.ArgumentParser]


def _parsers(p: argparse.ArgumentParser, name: str = "phoneemu") -> Iterator[Named]:
    yield name, p
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {sub_name}")


def test_no_rst_literals_or_issue_references_in_any_help() -> None:
    seen = 0
    for name, p in _parsers(build_parser()):
        text = p.format_help()
        assert "``" not in text, name
        assert "issue #" not in text, name
        seen += 1
    assert seen > 30


def test_commands_and_lab_operations_show_examples() -> None:
    quiet = {"phoneemu fleet", "phoneemu phone show", "phoneemu phone erase", "phoneemu phone factory-reset",
             "phoneemu phone set-key", "phoneemu lab phone"}
    for name, p in _parsers(build_parser()):
        if name in quiet:
            continue
        assert "example" in p.format_help(), name


def _examples(text: str) -> Iterator[str]:
    """The ``phoneemu ...`` command lines of a help text, continuation lines joined, comments dropped."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"\s+(phoneemu \S.*)$", line)
        if m is None:
            continue
        cmd = m.group(1)
        j = i
        while cmd.endswith("\\") and j + 1 < len(lines):
            j += 1
            cmd = f"{cmd[:-1].rstrip()} {lines[j].strip()}"
        yield re.split(r"\s{2,}(?=[^-\s])", cmd)[0]  # "   what it does" after the command


def test_examples_are_whole_command_lines_that_parse() -> None:
    """An example is what a user pastes: its continuation lines must survive (a lone backslash in the
    epilog's Python string joined two lines into one with a run of spaces), and argparse takes it."""
    seen = 0
    for name, p in _parsers(build_parser()):
        for cmd in _examples(p.format_help()):
            assert not re.search(r"\S {3,}--", cmd), f"{name}: continuation lost in example: {cmd}"
            argv = [a for a in shlex.split(cmd)[1:] if a != "&"]
            with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
                try:
                    build_parser().parse_args(argv)
                except SystemExit:
                    raise AssertionError(f"{name}: example does not parse: {cmd}: {err.getvalue()}") from None
            seen += 1
    assert seen > 50


def test_every_option_says_what_it_does() -> None:
    """An option listed with no text (``lab show --itl``, ``run --color`` ...) leaves the user guessing."""
    bare = [f"{name} {'/'.join(a.option_strings)}" for name, p in _parsers(build_parser()) for a in p._actions
            if a.option_strings and not a.help]
    assert not bare
