"""Every ``--help`` reads as terminal text: no reStructuredText literals, no tracker references, and
examples where a command takes more than a directory."""

from __future__ import annotations

import argparse
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
