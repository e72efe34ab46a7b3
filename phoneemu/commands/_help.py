"""Help text as a terminal shows it: module docstrings double as ``--help`` descriptions, so their
reStructuredText literals (two backticks) become plain text and tracker references ("(issue #6)")
are dropped. :func:`tidy` walks a whole parser tree (``cli.build_parser`` calls it once)."""

from __future__ import annotations

import argparse
import re

__all__ = ["plain", "tidy"]

_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)
_ISSUE = re.compile(r"\s*\((?:see )?issue #\d+\)")


def plain(text: str | None) -> str | None:
    """``text`` without RST literal markup and issue references (None stays None)."""
    if text is None:
        return None
    return _ISSUE.sub("", _LITERAL.sub(r"\1", text))


def tidy(parser: argparse.ArgumentParser) -> None:
    """Clean the description, epilog and every option's help of ``parser`` and its sub-commands; each
    records itself as ``args.parser_used`` (the deepest one chosen wins), for :func:`phoneemu.cli.main`'s
    errors about arguments no parser took."""
    parser.set_defaults(parser_used=parser)
    parser.description = plain(parser.description)
    parser.epilog = plain(parser.epilog)
    for action in parser._actions:
        action.help = plain(action.help) if isinstance(action.help, str) else action.help
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                choice.help = plain(choice.help) if isinstance(choice.help, str) else choice.help
            for sub in set(action.choices.values()):
                tidy(sub)
