"""``phone show|erase|factory-reset|set-key --help`` each show examples of that very action (the README:
every command's help has examples). The general help test only looks for the word "example", which the
``examples:`` heading alone satisfies: an action whose examples were all lost (a renamed action, an epilog
line reworded) would still pass it. Here each action's own command lines are required, and only its own."""

from __future__ import annotations

import re

import pytest

from phoneemu.cli import build_parser
from tests.helpers import cli_parsers

ACTIONS = ("show", "erase", "factory-reset", "set-key")


def _example_lines(help_text: str) -> list[str]:
    """The command lines under the help's ``examples:`` heading."""
    _, _, examples = help_text.partition("\nexamples:\n")
    return [m.group(1) for m in re.finditer(r"^  (phoneemu \S+ \S+)", examples, re.MULTILINE)]


@pytest.mark.parametrize("action", ACTIONS)
def test_each_phone_action_shows_its_own_examples(action: str) -> None:
    parsers = dict(cli_parsers(build_parser()))
    shown = _example_lines(parsers[f"phoneemu phone {action}"].format_help())
    assert shown, f"phone {action} --help has no example command line"
    assert set(shown) == {f"phoneemu phone {action}"}, shown  # its own, not the other actions'
