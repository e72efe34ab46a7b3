"""Every example command line of every ``--help`` parses with the real parser: an example naming an option
that does not exist (renamed, removed, mistyped), a choice that is not one, a positional too many or one
missing is a usage error here, not in the hands of a user who copied it. The lines are read as the help
shows them (the description and epilog, prose re-wrapped as :class:`~phoneemu.commands._help.ProseFormatter`
does: an indented line, a list item or a command line kept as written): each line starting ``phoneemu``
(an example; not a heading sentence such as ``phoneemu predict: would a phone ...``), with its ``\\``
continuations, up to its description (two spaces or more), split as a shell would. Placeholders (DIR,
/tmp/lab, ``<id>``, 10.0.0.5) are values: the parser checks names and shapes, not files or hosts."""

from __future__ import annotations

import argparse
import re
import shlex

import pytest

from phoneemu.cli import build_parser
from phoneemu.commands._help import PROSE_MAX, prose_lines
from tests.helpers import cli_parsers

#: a command line as the help shows it: "phoneemu ...", after the indent or a "$ " prompt; a heading
#: sentence ("phoneemu fleet boot: boot thousands ...") is not one
_COMMAND = re.compile(r"^\s*(?:\$ )?(phoneemu (?![a-z -]+: ).*)$")
#: between a command line and its description: two spaces or more (the words of a command, one)
_DESCRIPTION = re.compile(r"\s{2,}")


def example_lines(parser: argparse.ArgumentParser) -> list[str]:
    """The example command lines of ``parser``'s help (its description and epilog as shown), each whole:
    its ``\\`` continuations joined, its description dropped."""
    shown: list[str] = []
    for text in (parser.description, parser.epilog):
        if not text:
            continue
        lines = prose_lines(text, PROSE_MAX)
        i = 0
        while i < len(lines):
            match = _COMMAND.match(lines[i])
            if match is not None:
                command = match.group(1).rstrip()
                while command.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    command = command[:-1].rstrip() + " " + lines[i].strip()
                shown.append(_DESCRIPTION.split(command.strip(), maxsplit=1)[0])
            i += 1
    return shown


def _examples() -> dict[str, str]:
    """Every example line of every help, once: line -> the help it was first seen in."""
    found: dict[str, str] = {}
    for name, parser in cli_parsers(build_parser()):
        for line in example_lines(parser):
            found.setdefault(line, name)
    return found


EXAMPLES = _examples()


def test_examples_are_found() -> None:
    """The reader finds the examples (not a test that passes on nothing): every command that runs shows
    at least one, and the whole tree well over a hundred."""
    assert len(EXAMPLES) > 100, len(EXAMPLES)
    for name, parser in cli_parsers(build_parser()):
        if any(isinstance(a, argparse._SubParsersAction) for a in parser._actions):
            continue  # a group (phoneemu, fleet): its help lists its actions, theirs show examples
        assert example_lines(parser), f"{name} --help shows no example command line"


def test_reader_takes_continuations_and_drops_descriptions() -> None:
    parser = argparse.ArgumentParser(
        prog="phoneemu x",
        description="phoneemu x: a heading sentence, not a command.",
        epilog="examples:\n  phoneemu x --a 1 \\\n      --b 2    what it does\n"
               "  phoneemu x --c '<None>' --d ''   quoted\n")
    assert example_lines(parser) == ["phoneemu x --a 1 --b 2", "phoneemu x --c '<None>' --d ''"]


@pytest.mark.parametrize("line", sorted(EXAMPLES))
def test_example_parses(line: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                        tmp_path: object) -> None:
    monkeypatch.chdir(str(tmp_path))  # (run's usage-error hook writes the reports an example names)
    words = shlex.split(line)
    if words[-1] == "&":  # started in the background
        words.pop()
    assert words[0] == "phoneemu"
    try:
        args = build_parser().parse_args(words[1:])
    except SystemExit as exc:
        error = capsys.readouterr().err.strip().splitlines()
        pytest.fail(f"the example of `{EXAMPLES[line]} --help` does not parse (exit {exc.code}):\n"
                    f"  {line}\n  {error[-1] if error else ''}")
    # argparse takes an abbreviation (--installed-config-k): an option renamed to a longer name would
    # still parse. Each option is named whole, as the command's parser spells it.
    used: argparse.ArgumentParser = args.parser_used
    spelt = [w.split("=", 1)[0] for w in words if w.startswith("--")]
    assert [o for o in spelt if o not in used._option_string_actions] == [], (EXAMPLES[line], line)


def test_wireshark_examples_open_captures_run_makes() -> None:
    """``caps/NAME.pcap`` in wireshark's examples is what ``run --capture caps/`` writes for a scenario of
    the catalogue named NAME (was: caps/run.pcap, a file nothing makes: ``--print`` then exits 2)."""
    from pathlib import Path

    scenarios = Path(__file__).resolve().parents[2] / "scenarios"
    files = "\n".join(p.read_text() for p in scenarios.glob("*.yaml"))
    names = {re.sub(r"[^A-Za-z0-9._-]", "_", m.group(1)) for m in re.finditer(r"^name:\s*(\S+)", files, re.M)}
    parser = dict(cli_parsers(build_parser()))["phoneemu wireshark"]
    captures = [re.search(r"caps/(\S+)\.pcap", line) for line in example_lines(parser)]
    named = [c.group(1) for c in captures if c is not None]
    assert named and all(n in names for n in named), (named, sorted(names)[:5])


def test_lab_examples_count_phones_the_examples_add() -> None:
    """A lab operation's example over ``--count N`` phones needs N phones in the lab: N is at most the 50
    of ``lab phone add --count 50`` (its example), or the example says how its phones were added (was:
    ``lab security-mode ... --count 500``: 'no phone 0A0000000032 in this cluster', exit 2)."""
    for name, parser in cli_parsers(build_parser()):
        if not name.startswith("phoneemu lab ") or name.startswith("phoneemu lab phone"):
            continue
        for line in (parser.epilog or "").splitlines():
            count = re.search(r"--count (\d+)", line)
            if count is not None and int(count.group(1)) > 50:
                assert f"lab phone add --count {count.group(1)}" in line, (name, line)
