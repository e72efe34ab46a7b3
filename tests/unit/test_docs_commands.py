"""The commands the documentation shows stay valid: every ``phoneemu`` line of README.md's ``sh`` blocks and
every example of every ``--help`` parses with the real argument parser, each README command-table option
exists on its command, and each lab operation the README lists is a ``lab`` sub-command.

Only the argument parser runs (no command is executed), so this stays fast; what the commands print is
checked by the tests of each command. A README command holding ``...`` (elided arguments) is skipped.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.cli import build_parser
from tests.helpers import cli_parsers

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _joined(lines: list[str]) -> Iterator[str]:
    """Lines with their backslash continuations joined, stripped."""
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1].rstrip() + " " + lines[i].strip()
        yield line
        i += 1


def readme_commands() -> list[str]:
    """The ``phoneemu`` command lines of the README's ``sh`` blocks (comments dropped by shlex later)."""
    out: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.DOTALL):
        for line in _joined(block.splitlines()):
            for piece in line.split("&&"):
                part = piece.strip()
                if part.startswith("phoneemu ") and not any("..." in w for w in _argv(part)):
                    out.append(part)
    return out


def help_examples() -> list[tuple[str, str]]:
    """``(parser name, command)`` for every example line of every ``--help``: a line starting with
    ``phoneemu``, continuations joined, the description after two or more spaces dropped."""
    out: list[tuple[str, str]] = []
    for name, p in cli_parsers(build_parser()):
        for line in _joined(p.format_help().splitlines()):
            if not line.startswith("phoneemu ") or re.match(r"phoneemu( [a-z-]+)+:", line):
                continue  # prose such as "phoneemu fleet boot: boot thousands of phones ..."
            # a lone backslash in an epilog's Python string joins two lines into one run of spaces
            assert not re.search(r"\S {3,}--", line), f"{name}: continuation lost in example: {line}"
            out.append((name, re.split(r"\s{2,}", line)[0]))
    return out


def _argv(command: str) -> list[str]:
    words = shlex.split(command, comments=True)
    assert words[0] == "phoneemu", command
    return [w for w in words[1:] if w != "&"]  # "lab serve ... &": a shell background job


def _parses(command: str) -> None:
    try:
        args = build_parser().parse_args(_argv(command))
    except SystemExit as exc:  # argparse has printed why on stderr
        pytest.fail(f"{command!r} does not parse (exit {exc.code})")
    assert getattr(args, "handler", None) is not None, command


def test_readme_commands_parse() -> None:
    commands = readme_commands()
    assert any(c.startswith("phoneemu lab serve") for c in commands) and len(commands) >= 12
    for command in commands:
        _parses(command)


def test_help_examples_parse() -> None:
    examples = help_examples()
    assert len(examples) >= 90
    for _name, command in examples:
        _parses(command)


def _options(p: argparse.ArgumentParser) -> set[str]:
    return {o for a in p._actions for o in a.option_strings}


def _sub(p: argparse.ArgumentParser, word: str) -> argparse.ArgumentParser | None:
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction) and word in action.choices:
            sub: argparse.ArgumentParser = action.choices[word]
            return sub
    return None


def test_readme_command_table_options_exist() -> None:
    """Each ``| `phoneemu CMD ...` |`` row: its options are options of CMD (of any sub-command of an
    ``a\\|b`` choice)."""
    rows = re.findall(r"^\| `(phoneemu [^|]*?(?:\\\|[^|]*?)*)`", README, re.MULTILINE)
    assert len(rows) >= 12
    for row in rows:
        for synopsis in row.split("` / `"):
            words = synopsis.replace("\\|", "|").split()
            parsers = [build_parser()]
            for word in words[1:]:
                subs = [s for p in parsers for w in word.split("|") if (s := _sub(p, w)) is not None]
                if not subs:
                    break
                parsers = subs
            known = set().union(*(_options(p) for p in parsers))
            named = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", synopsis))
            assert named <= known, (synopsis, sorted(named - known))


def test_readme_lab_operations_exist() -> None:
    """The operations of the README's lab table are ``phoneemu lab`` sub-commands."""
    table = README.split("Lab operations (", 1)[1].split("\n\n", 2)[1]
    lab = _sub(build_parser(), "lab")
    assert lab is not None
    ops = re.findall(r"^\| `([a-z-]+) DIR", table, re.MULTILINE)
    ops += re.findall(r"/ `([a-z-]+) DIR", table)
    assert len(ops) >= 25
    missing = [op for op in ops if _sub(lab, op) is None]
    assert not missing


def test_scenario_format_example_loads() -> None:
    """The full example of docs/scenarios.md is a valid scenario (every field it shows is accepted)."""
    from phoneemu.scenario.loader import load_text

    doc = (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(.*?)```", doc, re.DOTALL)
    assert example is not None
    scenario = load_text(example.group(1), "docs/scenarios.md")
    assert scenario.name == "migration-old-tvs-unaware" and len(scenario.clusters) == 3
