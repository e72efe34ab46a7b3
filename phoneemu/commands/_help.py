"""Help text as a terminal shows it: module docstrings double as ``--help`` descriptions, so their
reStructuredText literals (two backticks) become plain text and tracker references ("(issue #6)")
are dropped; prose is re-wrapped to the terminal (:class:`ProseFormatter`). :func:`tidy` walks a whole
parser tree (``cli.build_parser`` calls it once)."""

from __future__ import annotations

import argparse
import re

__all__ = ["ProseFormatter", "plain", "prose_lines", "tidy"]

_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)
_ISSUE = re.compile(r"\s*\((?:see )?issue #\d+\)")
#: a line kept as written: an item of a list (``-``, ``*``, ``•``, ``1.``, ``1)``), a shell prompt, a command
#: line (``phoneemu ...``, but not a heading sentence ``phoneemu predict: would a phone ...``)
_KEPT = re.compile(r"(?:[-*\u2022]|\d+[.)])\s|\$ |phoneemu (?![a-z -]+: )")
_SENTENCE_END = re.compile(r"[.?!][)\"']?$")
#: a sentence ending a line shorter than this (the source is wrapped at ~100 columns) ends its paragraph
_SHORT = 90
#: the space before "phoneemu" in prose, glued to the word before it (:data:`_GLUE`) while wrapping: a
#: wrapped line starting "phoneemu boot) with ..." would read as a command line (it would be kept as one)
_COMMAND_WORD = re.compile(r" (?=phoneemu )")
_GLUE = "\x00"
#: the white space an option's help is wrapped at (argparse's: a no-break space stays one)
_ASCII_SPACES = re.compile(r"\s+", re.ASCII)
#: prose is wrapped to the terminal's width, but no wider than this (lines of 200 columns do not read)
PROSE_MAX = 100


def plain(text: str | None) -> str | None:
    """``text`` without RST literal markup and issue references (None stays None)."""
    if text is None:
        return None
    return _ISSUE.sub("", _LITERAL.sub(r"\1", text))


def _kept(line: str) -> bool:
    """A blank or indented line (an example, a command line, a table, a list item's continuation), a list
    item, a shell prompt or a command line is kept as written; any other line is prose."""
    return not line.strip() or line[0].isspace() or _KEPT.match(line) is not None


def _ends_paragraph(line: str, *, first: bool) -> bool:
    """A prose line the writer broke on purpose: a heading (a paragraph's first line ending in a colon,
    "examples:"), or a sentence ended well short of the width the prose was wrapped at (~100 columns), the
    next line starting another ("... exit status 1." / "Ctrl-C (or SIGTERM) stops ...")."""
    return (first and line.endswith(":")) or (len(line) < _SHORT and _SENTENCE_END.search(line) is not None)


def prose_lines(text: str, width: int, indent: str = "") -> list[str]:
    """``text`` with each paragraph of prose (consecutive prose lines, see :func:`_kept`, up to one that
    :func:`_ends_paragraph`) re-wrapped to ``width`` columns, ``indent`` included, long words
    (a URL, a path) and hyphenated options never broken, no line starting with "phoneemu " (a command
    line's start, :data:`_COMMAND_WORD`); every kept line as written, after ``indent``."""
    import textwrap  # (as argparse does: only when a help is shown)

    out: list[str] = []
    paragraph: list[str] = []

    def flush() -> None:
        if paragraph:
            glued = _COMMAND_WORD.sub(_GLUE, " ".join(paragraph))
            out.extend(line.replace(_GLUE, " ") for line in textwrap.wrap(
                glued, width, initial_indent=indent, subsequent_indent=indent, break_long_words=False,
                break_on_hyphens=False))
            paragraph.clear()

    for line in text.splitlines():
        if _kept(line):
            flush()
            out.append(indent + line if line.strip() else "")
            continue
        paragraph.append(line.strip())
        if _ends_paragraph(line.rstrip(), first=len(paragraph) == 1):
            flush()
    flush()
    return out


class ProseFormatter(argparse.RawDescriptionHelpFormatter):
    """Every ``phoneemu`` parser's: the description and epilog re-wrapped by :func:`prose_lines` to
    argparse's own width ($COLUMNS, else the terminal's, minus 2), at most :data:`PROSE_MAX` columns;
    an option's help as argparse wraps it, but never at a hyphen (argparse's broke ``--tftp-`` /
    ``max-time`` and ``factory-`` / ``reset`` over two lines); the usage as argparse wraps it."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines = prose_lines(text, min(width, PROSE_MAX), indent)
        return "\n".join(lines) + ("\n" if text.endswith("\n") else "")

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        return textwrap.wrap(_ASCII_SPACES.sub(" ", text).strip(), width, break_on_hyphens=False)


def tidy(parser: argparse.ArgumentParser) -> None:
    """Clean the description, epilog and every option's help of ``parser`` and its sub-commands; each
    records itself as ``args.parser_used`` (the deepest one chosen wins), for :func:`phoneemu.cli.main`'s
    errors about arguments no parser took; each shows its help with :class:`ProseFormatter`."""
    parser.set_defaults(parser_used=parser)
    parser.formatter_class = ProseFormatter
    parser.description = plain(parser.description)
    parser.epilog = plain(parser.epilog)
    for action in parser._actions:
        action.help = plain(action.help) if isinstance(action.help, str) else action.help
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                choice.help = plain(choice.help) if isinstance(choice.help, str) else choice.help
            for sub in set(action.choices.values()):
                tidy(sub)
