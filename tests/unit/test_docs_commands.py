"""The commands the documentation shows stay valid: every ``phoneemu`` line of README.md's ``sh`` blocks and
every example of every ``--help`` parses with the real argument parser, each README command-table option
exists on its command, and each lab operation the README lists is a ``lab`` sub-command. The other way
round, every command and action is in the README's table. Every ``--option`` in an inline code span of
README.md or docs/*.md exists (on the command the span names, when it names one), and docs/scenarios.md's
step verbs, checks and admin operations are the loader's.

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


def _parses(command: str, parser: argparse.ArgumentParser | None = None) -> None:
    """``command`` parses with ``parser`` (a fresh ``build_parser()`` by default; argparse's standard
    actions, the only ones the CLI uses, leave a parser as it was, so one may serve a test's commands)."""
    try:
        args = (parser or build_parser()).parse_args(_argv(command))
    except SystemExit as exc:  # argparse has printed why on stderr
        pytest.fail(f"{command!r} does not parse (exit {exc.code})")
    assert getattr(args, "handler", None) is not None, command


def test_readme_commands_parse() -> None:
    commands = readme_commands()
    assert any(c.startswith("phoneemu lab serve") for c in commands) and len(commands) >= 12
    parser = build_parser()
    for command in commands:
        _parses(command, parser)


def test_help_examples_parse() -> None:
    examples = help_examples()
    assert len(examples) >= 90
    parser = build_parser()
    for _name, command in examples:
        _parses(command, parser)


def _options(p: argparse.ArgumentParser) -> set[str]:
    return {o for a in p._actions for o in a.option_strings}


def _sub(p: argparse.ArgumentParser, word: str) -> argparse.ArgumentParser | None:
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction) and word in action.choices:
            sub: argparse.ArgumentParser = action.choices[word]
            return sub
    return None


def _readme_synopses(text: str = README) -> list[str]:
    """The ``phoneemu ...`` synopses of the README's command table: each row's first cell, split at
    "` / `" (a row such as `phoneemu phone show ...` / `phoneemu phone set-key ...` holds two)."""
    out: list[str] = []
    for line in text.splitlines():
        if line.startswith("| `phoneemu "):
            cell = re.split(r"(?<!\\)\|", line)[1].strip()
            out += [s.strip("`") for s in cell.split("` / `")]
    return out


def test_readme_command_table_options_exist() -> None:
    """Each ``| `phoneemu CMD ...` |`` row: its options are options of CMD (of any sub-command of an
    ``a\\|b`` choice)."""
    synopses = _readme_synopses()
    assert len(synopses) >= 13
    parser = build_parser()  # only looked at, never parsed with
    for synopsis in synopses:
        words = synopsis.replace("\\|", "|").split()
        parsers = [parser]
        for word in words[1:]:
            subs = [s for p in parsers for w in word.split("|") if (s := _sub(p, w)) is not None]
            if not subs:
                break
            parsers = subs
        known = set().union(*(_options(p) for p in parsers))
        named = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", synopsis))
        assert named <= known, (synopsis, sorted(named - known))


def test_readme_command_table_lists_every_option() -> None:
    """The other way round: each option of a command the README's table shows (``lab serve --dir``,
    ``replay --tvs-cert``, ``fuzz --regenerate`` ...) is named by one of its rows (any spelling of it:
    ``-j`` for ``--jobs``), so a user reading the table sees what ``--help`` offers."""
    parser = build_parser()  # only looked at, never parsed with
    named_by: dict[int, tuple[argparse.ArgumentParser, set[str]]] = {}
    for synopsis in _readme_synopses():
        parsers = [parser]
        for word in synopsis.replace("\\|", "|").split()[1:]:
            subs = [s for p in parsers for w in word.split("|") if (s := _sub(p, w)) is not None]
            if not subs:
                break
            parsers = subs
        named = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", synopsis))
        for p in parsers:
            named_by.setdefault(id(p), (p, set()))[1].update(named)
    unlisted = [(p.prog, a.option_strings) for p, listed in named_by.values() for a in p._actions
                if a.option_strings and "--help" not in a.option_strings
                and not set(a.option_strings) & listed]
    assert len(named_by) >= 15 and not unlisted, unlisted


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
    assert scenario.timeout == 600  # timeout: 10m


def test_scenario_format_example_shows_every_top_level_key() -> None:
    """Each key the loader accepts at a file's top level (``timeout`` was added later) is in the full
    example of docs/scenarios.md."""
    import yaml

    from phoneemu.scenario.loader import TOP_KEYS

    example = re.search(r"```yaml\n(.*?)```", _scenario_doc(), re.DOTALL)
    assert example is not None
    assert set(yaml.safe_load(example.group(1))) == set(TOP_KEYS)


DOCS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))


def _code_spans() -> Iterator[tuple[str, str]]:
    """``(document, text)`` of every inline code span of README.md and docs/*.md."""
    for doc in DOCS:
        for span in re.findall(r"`([^`\n]+)`", doc.read_text(encoding="utf-8")):
            yield doc.name, span


def _commands() -> set[str]:
    return {w for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
            for w in a.choices}


def test_doc_code_spans_name_options_of_their_command() -> None:
    """An inline ``phoneemu CMD ... --opt`` (or ``lab init ... --opt``, the ``phoneemu`` left out) anywhere
    in README.md or docs/*.md: each option is one of CMD's (of any sub-command of an ``a|b`` choice)."""
    commands, checked = _commands(), 0
    parser = build_parser()  # only looked at, never parsed with
    for doc, span in _code_spans():
        words = span.replace("\\|", "|").split()
        words = words[1:] if words[:1] == ["phoneemu"] else words
        if not words or words[0] not in commands:
            continue
        parsers = [parser]
        for word in words:
            subs = [s for p in parsers for w in word.split("|") if (s := _sub(p, w)) is not None]
            if not subs:
                break
            parsers = subs
        known = set().union(*(_options(p) for p in parsers))
        named = set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", " ".join(words)))
        assert named <= known, (doc, span, sorted(named - known))
        checked += 1
    assert checked >= 40


def test_every_option_the_docs_name_exists() -> None:
    """Every ``--option`` in an inline code span of README.md or docs/*.md — prose such as "`--tvs-cert`
    needs `--installed-config`" included — is an option of some ``phoneemu`` command (or of a bench
    script the README runs; ``mypy --strict``)."""
    known = {o for _name, p in cli_parsers(build_parser()) for o in _options(p)} | {"--strict"}
    for script in (ROOT / "bench").glob("*.py"):
        known |= set(re.findall(r"add_argument\(\s*\"(--[\w-]+)\"", script.read_text(encoding="utf-8")))
    unknown = [(doc, flag, span) for doc, span in _code_spans()
               for flag in re.findall(r"(?<![\w-])(--[a-z][\w-]*)", span) if flag not in known]
    assert not unknown


def test_tftp_max_time_is_on_the_commands_the_readme_names() -> None:
    """README: the whole-transfer cap is set "for `phoneemu boot` and `phoneemu fleet boot` with
    `--tftp-max-time S`": exactly those (an offline replay or predict fetches no TFTP; the option
    there was accepted and ignored)."""
    having = {name for name, p in cli_parsers(build_parser()) if "--tftp-max-time" in _options(p)}
    assert having == {"phoneemu boot", "phoneemu fleet boot"}
    assert "for `phoneemu boot` and\n  `phoneemu fleet boot` with `--tftp-max-time S`" in README


def test_lab_operations_that_are_not_admin_steps_are_named() -> None:
    """The README says the lab operations are also scenario ``admin`` operations, naming the exceptions:
    every ``phoneemu lab`` operation that is not one is named in that paragraph."""
    from phoneemu.scenario.loader import ADMIN_OPERATIONS

    lab = _sub(build_parser(), "lab")
    assert lab is not None
    ops = {w for a in lab._actions if isinstance(a, argparse._SubParsersAction) for w in a.choices}
    intro = README.split("Lab operations (", 1)[1].split("\n\n", 1)[0]
    not_admin = sorted(ops - set(ADMIN_OPERATIONS) - {"init", "phone", "show", "serve"})
    assert not_admin and all(f"`{op}" in intro for op in not_admin), not_admin


def _scenario_doc() -> str:
    return (ROOT / "docs" / "scenarios.md").read_text(encoding="utf-8")


def _table(doc: str, header: str) -> list[list[str]]:
    """The rows (cells, stripped) of the markdown table whose header line starts with ``header``."""
    lines = doc.split(header, 1)[1].splitlines()[2:]
    rows = []
    for line in lines:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
    return rows


def test_scenario_doc_lists_every_step_verb() -> None:
    from phoneemu.scenario.loader import STEP_KINDS

    verbs = {v for row in _table(_scenario_doc(), "| Verb |") for v in re.findall(r"`([a-z-]+)`", row[0])}
    assert verbs == set(STEP_KINDS)


def test_scenario_doc_lists_every_check_and_its_values() -> None:
    """docs/scenarios.md's check table: the checks are the loader's, and a row of checks with a fixed
    set of values lists exactly their values; one that only some of the row's checks take says so,
    as "empty (`itl` only ...)" where one of the row's checks does not take a value."""
    from phoneemu.scenario.loader import CHECKS

    rows = _table(_scenario_doc(), "| Check |")
    assert {n for row in rows for n in re.findall(r"`([a-z_]+)`", row[0])} == set(CHECKS)
    seen = 0
    for row in rows:
        checks = re.findall(r"`([a-z_]+)`", row[0])
        fixed = {c: CHECKS[c] for c in checks}
        if any(v is None for v in fixed.values()):
            continue  # free text, a number, a boolean, or a mixed row such as `firmware`, `load`
        listed = {re.sub(r"\s*\(.*", "", v).strip() for v in re.split(r",| / ", row[1])}
        assert listed == {v for values in fixed.values() for v in values or ()}, (checks, row[1])
        for v in listed:
            takers = [c for c in checks if v in (fixed[c] or ())]
            if len(takers) < len(checks):
                assert re.search(rf"\b{re.escape(v)} \(`{takers[0]}` only", row[1]), (checks, v, row[1])
        seen += 1
    assert seen >= 7


def test_scenario_doc_lists_every_admin_operation_and_its_arguments() -> None:
    """The admin operations paragraph of docs/scenarios.md (``op {arg, arg}``) is the loader's table."""
    from phoneemu.scenario.loader import ADMIN_OPERATIONS

    doc = _scenario_doc()
    para = doc.split("Admin operations (", 1)[1].split("\n\n", 1)[0]
    listed: dict[str, set[str]] = {}
    for op, braces, args in re.findall(r"`([a-z-]+)( \{([^}]*)\})?`", para):
        assert op in ADMIN_OPERATIONS or not braces, f"docs/scenarios.md: {op} is no admin operation"
        if op in ADMIN_OPERATIONS:
            listed[op] = {a.split(":")[0].strip() for a in args.split(",") if a.strip()}
    assert set(listed) == set(ADMIN_OPERATIONS)
    for op, args in listed.items():
        assert args == set(ADMIN_OPERATIONS[op]), (op, sorted(args), sorted(ADMIN_OPERATIONS[op]))


def test_every_command_and_action_is_in_the_readme() -> None:
    """Each command of ``phoneemu --help``, and each action of a command that has actions (``phone show``,
    ``fleet boot`` ...), is in the README's command table (lab operations: see the lab table test)."""
    shown = {tuple(s.replace("\\|", "|").split()[1:3]) for s in _readme_synopses()}
    missing, parser = [], build_parser()
    for command in sorted(_commands()):
        sub = _sub(parser, command)
        assert sub is not None
        actions = {w for a in sub._actions if isinstance(a, argparse._SubParsersAction) for w in a.choices}
        if command == "lab":
            actions = {"init", "phone", "serve"}  # the other operations have their own table
        for action in sorted(actions) or [None]:
            if not any(s[0] == command and (action is None or action in s[1].split("|")) for s in shown
                       if len(s) == 2) and not (action is None and any(s[:1] == (command,) for s in shown)):
                missing.append(f"{command} {action or ''}".strip())
    assert not missing
