"""Every ``--help`` reads as terminal text: no reStructuredText literals, no tracker references, and
examples where a command takes more than a directory."""

from __future__ import annotations

from phoneemu.cli import build_parser
from tests.helpers import cli_parsers


def test_no_rst_literals_or_issue_references_in_any_help() -> None:
    seen = 0
    for name, p in cli_parsers(build_parser()):
        text = p.format_help()
        assert "``" not in text, name
        assert "issue #" not in text, name
        seen += 1
    assert seen > 30


def test_commands_and_lab_operations_show_examples() -> None:
    quiet = {"phoneemu fleet", "phoneemu phone show", "phoneemu phone erase", "phoneemu phone factory-reset",
             "phoneemu phone set-key", "phoneemu lab phone"}
    for name, p in cli_parsers(build_parser()):
        if name in quiet:
            continue
        assert "example" in p.format_help(), name


def test_every_option_says_what_it_does() -> None:
    """An option listed with no text (``lab show --itl``, ``run --color`` ...) leaves the user guessing."""
    bare = [f"{name} {'/'.join(a.option_strings)}" for name, p in cli_parsers(build_parser())
            for a in p._actions if a.option_strings and not a.help]
    assert not bare
