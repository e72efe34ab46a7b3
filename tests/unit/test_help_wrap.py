"""Every ``--help`` reads in the terminal it is shown in: the prose of descriptions and epilogs (written
wrapped at ~100 columns, or on one line) is re-wrapped to argparse's width ($COLUMNS minus 2, at most
100 columns); examples, command lines, tables and lists are kept as written, and no word changes."""

from __future__ import annotations

import argparse
import re

import pytest

from phoneemu.cli import build_parser
from phoneemu.commands._help import PROSE_MAX, prose_lines
from tests.helpers import cli_parsers

#: the lines a help keeps as written (the test's own statement of the rule): blank or indented lines, list
#: items, shell prompts and ``phoneemu`` command lines (not a heading sentence "phoneemu tvs: ask ...")
_AS_WRITTEN = re.compile(r"\s|$|(?:[-*\u2022]|\d+[.)])\s|\$ |phoneemu (?![a-z -]+: )")


def _as_written(parser: argparse.ArgumentParser) -> set[str]:
    """The lines of ``parser``'s description and epilog kept as written, stripped."""
    return {line.strip() for text in (parser.description, parser.epilog) for line in (text or "").splitlines()
            if _AS_WRITTEN.match(line)}


def _too_wide(parser: argparse.ArgumentParser, columns: int) -> list[str]:
    """The lines of ``parser``'s help wider than ``columns`` that are neither kept as written nor argparse's
    own unbreakable usage group or option with its choices (``--format {itl,ctl,...}``)."""
    usage = set(parser.format_usage().splitlines())
    kept = _as_written(parser)
    return [line for line in parser.format_help().splitlines()
            if len(line) > columns and line.strip() not in kept and line not in usage
            and not re.fullmatch(r"  -\S*( \{\S+\})?", line)]


def test_every_help_fits_80_columns_but_its_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    """At COLUMNS=80 a line of prose wider than the terminal wrapped mid-word (fuzz had 89 such lines,
    replay 61, fleet boot 59; lab calling-search-space's description was one line of 318 characters)."""
    monkeypatch.setenv("COLUMNS", "80")
    seen = 0
    for name, parser in cli_parsers(build_parser()):
        assert _too_wide(parser, 80) == [], name
        seen += 1
    assert seen > 30


@pytest.mark.parametrize("columns", [60, 120])
def test_prose_follows_the_terminal_width(monkeypatch: pytest.MonkeyPatch, columns: int) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    for name, parser in cli_parsers(build_parser()):
        assert _too_wide(parser, columns) == [], name


def _description_lines(command: list[str], columns: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The description of ``phoneemu COMMAND --help`` as shown at ``columns``: after the usage, up to
    the first section ("positional arguments:" or "options:")."""
    monkeypatch.setenv("COLUMNS", str(columns))
    parser = dict(cli_parsers(build_parser()))[" ".join(["phoneemu", *command])]
    text = parser.format_help()[len(parser.format_usage()):]
    return re.split(r"\n(?:positional arguments|options):", text)[0].strip("\n").splitlines()


def test_wide_terminals_get_longer_lines_up_to_100_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """At COLUMNS=200 the prose is not kept at the width it was written at (~100, or one long line):
    its lines reach PROSE_MAX and the same words take fewer lines than at 80."""
    for command in (["fleet", "boot"], ["lab", "calling-search-space"], ["lab", "show"], ["predict"]):
        narrow = _description_lines(command, 80, monkeypatch)
        wide = _description_lines(command, 200, monkeypatch)
        assert " ".join(narrow).split() == " ".join(wide).split(), command
        assert len(wide) < len(narrow), command
        assert max(map(len, narrow)) <= 78 < max(map(len, wide)) <= PROSE_MAX, command


def test_no_word_changes_and_kept_lines_stay_as_written() -> None:
    for name, parser in cli_parsers(build_parser()):
        for text in (parser.description, parser.epilog):
            if not text:
                continue
            shown = prose_lines(text, 78)
            assert " ".join(shown).split() == text.split(), name
            kept = [line for line in text.splitlines() if line.strip() and _AS_WRITTEN.match(line)]
            assert [line for line in shown if line in kept] == kept, name


def test_the_rules_of_a_paragraph() -> None:
    text = ("phoneemu tvs: ask a TVS server about one certificate, as a phone would.\n"
            "A phone that meets a signer asks\nthe TVS servers its config names.\n"
            "Next paragraph, written on a line that the writer wrapped at the usual width of this\n"
            "project's help, continues here.\n"
            "examples:\n"
            "  phoneemu tvs 10.0.0.5 new/ITLFile.tlv     does the TVS know the signer of the new ITL?\n"
            "phoneemu tvs [::1]:2445 SEP001122334455.cnf.xml.sgn --tls 1.0\n"
            "$ tshark -r x.pcap -o tls.keylog_file:x.keys -Y tvs\n"
            "* a list item, long enough to go past the width of the terminal it is shown in\n"
            "1. another\n"
            "\n"
            "see https://example.com/a/very/long/address/that/cannot/be/broken/anywhere/at/all and\n"
            "--installed-config-dir options.\n")
    assert prose_lines(text, 40, "  ") == [
        "  phoneemu tvs: ask a TVS server about",
        "  one certificate, as a phone would.",
        "  A phone that meets a signer asks the",
        "  TVS servers its config names.",
        "  Next paragraph, written on a line that",
        "  the writer wrapped at the usual width",
        "  of this project's help, continues",
        "  here.",
        "  examples:",
        "    phoneemu tvs 10.0.0.5 new/ITLFile.tlv     does the TVS know the signer of the new ITL?",
        "  phoneemu tvs [::1]:2445 SEP001122334455.cnf.xml.sgn --tls 1.0",
        "  $ tshark -r x.pcap -o tls.keylog_file:x.keys -Y tvs",
        "  * a list item, long enough to go past the width of the terminal it is shown in",
        "  1. another",
        "",
        "  see",
        "  https://example.com/a/very/long/address/that/cannot/be/broken/anywhere/at/all",
        "  and --installed-config-dir options.",
    ]


@pytest.mark.parametrize("columns", [60, 80, 120, 200])
def test_no_wrapped_prose_line_starts_like_a_command(monkeypatch: pytest.MonkeyPatch, columns: int) -> None:
    """A line starting "phoneemu " is a command line (an example, as tests/unit/test_docs_commands.py
    parses them): prose "... as phoneemu boot does." wrapped before "phoneemu" read as one."""
    monkeypatch.setenv("COLUMNS", str(columns))
    for name, parser in cli_parsers(build_parser()):
        kept = _as_written(parser)
        wrapped = [line for line in parser.format_help().splitlines()
                   if line.startswith("phoneemu ") and line not in kept and not line.startswith("phoneemu:")]
        assert [line for line in wrapped if not re.match(r"phoneemu( [a-z-]+)+: ", line)] == [], name
    assert prose_lines("a line ending as phoneemu boot does it", 20) == ["a line ending", "as phoneemu boot",
                                                                        "does it"]


@pytest.mark.parametrize("columns", [80, 100, 120])
def test_no_option_is_broken_at_a_hyphen(monkeypatch: pytest.MonkeyPatch, columns: int) -> None:
    """argparse wraps an option's help at hyphens too: "(... --tftp-" / "max-time: its former name)" read
    as two options, "factory-" / "reset" as two words (at COLUMNS=80: boot, replay, predict, lab serve)."""
    monkeypatch.setenv("COLUMNS", str(columns))
    for name, parser in cli_parsers(build_parser()):
        kept = _as_written(parser)
        assert [line for line in parser.format_help().splitlines()
                if re.search(r"\w-$", line) and line.strip() not in kept] == [], name
