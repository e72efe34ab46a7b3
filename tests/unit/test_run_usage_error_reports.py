"""A usage error of ``phoneemu run`` never leaves an earlier run's report at ``--junit F`` / ``--json F``
(README: "``--junit``/``--json`` then say so ... never an earlier run's report left").

Before: argparse's errors (``--tiemout 5``, ``--timeout abc``, ``-j x``, no PATH) exited 2 before ``run``
ran at all, and yesterday's passing out.xml stayed in place: a CI job publishing it showed green. Now the
reports the arguments name (``--junit F``, ``--junit=F``, an unambiguous prefix ``--ju F``) say nothing ran,
naming the usage error, exit 2 and argparse's message as they were; nothing else is written.

Also: ``run missing.yaml a.yaml --junit a.yaml`` wrote its not-run report over the scenario file a.yaml
(the missing path hid the other paths' files from the check).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu import cli
from phoneemu.commands import run as run_command
from phoneemu.scenario import reports
from tests.run_helpers import earlier_reports, exit_code, junit_errors, written_scenarios

EARLIER = "an earlier run's report (PASS)\n"


def _setup(tmp_path: Path) -> tuple[str, Path, Path]:
    """A scenario a.yaml and an earlier run's out.xml and out.json."""
    (scenario,) = written_scenarios(tmp_path, "a", mac_prefix="0F000007A0")
    junit, json_report = earlier_reports(tmp_path, EARLIER)
    return scenario, junit, json_report


def _run_parser() -> cli._Parser:
    """The parser of ``run``, as ``phoneemu`` builds it."""
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, cli.argparse._SubParsersAction))
    parser = sub.choices["run"]
    assert isinstance(parser, cli._Parser)
    return parser


@pytest.mark.parametrize(("extra", "error"), [
    (["--tiemout", "5"], "unrecognized arguments: --tiemout 5 (did you mean --timeout?)"),
    (["--timeout", "abc"], "argument --timeout: 'abc' is not a non-negative number"),
    (["-j", "x"], "argument -j/--jobs: 'x' is not a non-negative integer (ASCII digits 0-9)"),
    (["--color", "blue"], "argument --color: invalid choice: 'blue' (choose from 'auto', 'always', 'never')"),
])
def test_a_usage_error_replaces_both_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             extra: list[str], error: str) -> None:
    """Exit 2, argparse's message on stderr as before; each report says nothing ran, naming the error."""
    scenario, junit, json_report = _setup(tmp_path)
    code = exit_code(["run", scenario, "--junit", str(junit), "--json", str(json_report), *extra])
    out, err = capsys.readouterr()
    assert code == 2 and out == "", (out, err)
    assert err.endswith(f"phoneemu run: error: {error}\n"), err
    assert junit_errors(junit) == [f"usage error: {error}"]
    doc = json.loads(json_report.read_text())
    assert (doc["ok"], doc["ran"], doc["interrupted"], doc["scenarios"]) == (False, False, False, [])
    assert [m["text"] for m in doc["mistakes"]] == [f"usage error: {error}"]


@pytest.mark.parametrize("forms", [
    ["--junit=out.xml", "--json=out.json"],
    ["--ju", "out.xml", "--js", "out.json"],
    ["--ju=out.xml", "--jso=out.json"],
])
def test_each_form_of_the_options_argparse_takes_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          forms: list[str]) -> None:
    """``--junit=F`` and the prefixes argparse takes (``allow_abbrev``: ``--ju``, not ``--j``)."""
    scenario, junit, json_report = _setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert exit_code(["run", scenario, *forms, "-j", "x"]) == 2
    assert junit.read_text() != EARLIER and json_report.read_text() != EARLIER
    assert json.loads(json_report.read_text())["ran"] is False


def test_missing_paths_and_an_error_of_the_top_parser_too(tmp_path: Path) -> None:
    """No PATH (argparse: required) and an option ``phoneemu`` itself does not know (said as ``run``'s)."""
    _, junit, json_report = _setup(tmp_path)
    assert exit_code(["run", "--junit", str(junit)]) == 2
    assert junit_errors(junit) == ["usage error: the following arguments are required: PATH"]
    assert exit_code(["--bogus", "run", "a.yaml", "--json", str(json_report)]) == 2
    assert json.loads(json_report.read_text())["mistakes"][0]["problem"] == \
        "usage error: unrecognized arguments: --bogus"


def test_nothing_but_the_reports_named_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ambiguous prefix (``--j``: --junit, --json, --jobs), a value starting with ``-`` and words after
    ``--`` name no report, nor one given before a last one that names none (argparse keeps the last); a
    report naming a scenario file is not written over it."""
    scenario, _, _ = _setup(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for argv in (["run", "x.yaml", "--j", "out.xml"],
                 ["run", "x.yaml", "--junit", "-out.xml", "--json", "--bogus"],
                 ["run", "x.yaml", "--bogus", "--", "--junit", "out.xml"],
                 ["run", "x.yaml", "--junit", "out.xml", "--junit", "-5", "--bogus"],
                 ["run", scenario, "--junit", scenario, "--bogus"],
                 ["run", str(tmp_path), "--json", scenario, "--bogus"]):
        assert exit_code(argv) == 2
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_report_whose_write_fails_is_said_and_the_earlier_one_removed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """As ``run`` does for its own refusals: the JSON's write fails (a full disk), out.json removed and said,
    out.xml this run's; argparse's message last, exit 2."""
    scenario, junit, json_report = _setup(tmp_path)

    def full_disk(*_a: Any, **_k: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(reports, "write_json_not_run", full_disk)
    assert exit_code(["run", scenario, "--junit", str(junit), "--json", str(json_report), "-j", "x"]) == 2
    err = capsys.readouterr().err
    assert (f"phoneemu run: --json {json_report}: not written: No space left on device; the earlier file "
            "there removed\n") in err
    assert err.endswith("phoneemu run: error: argument -j/--jobs: 'x' is not a non-negative integer "
                        "(ASCII digits 0-9)\n"), err
    assert not json_report.exists()
    assert junit_errors(junit)[0].startswith("usage error: argument -j/--jobs")


def test_a_refused_report_path_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A report ``check_writable`` refuses (a folder) is said, the usage error as before."""
    (tmp_path / "reports").mkdir()
    assert exit_code(["run", "a.yaml", "--junit", str(tmp_path / "reports"), "-j", "x"]) == 2
    err = capsys.readouterr().err
    assert f"phoneemu run: --junit {tmp_path / 'reports'}: is a folder, not a file\n" in err


def test_a_missing_path_does_not_hide_a_scenario_file_named_as_a_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``run missing.yaml a.yaml --junit a.yaml``: nothing ran (exit 2) and a.yaml is left as it was."""
    scenario, _, json_report = _setup(tmp_path)
    text = Path(scenario).read_text()
    code = exit_code(["run", str(tmp_path / "missing.yaml"), scenario, "--junit", scenario,
                       "--json", str(json_report)])
    assert code == 2, capsys.readouterr().err
    assert Path(scenario).read_text() == text
    assert json.loads(json_report.read_text())["ran"] is False


# ------------------------------------------------------------------------------------- the scan, fuzzed
_WORDS = st.sampled_from([
    "--junit", "--json", "--ju", "--js", "--jso", "--j", "--jo", "--jobs", "-j", "--junit=", "--json=r.json",
    "--ju=r.xml", "--junit=-x", "--", "-", "-k", "--select", "--tag", "--timeout", "1", "-5", "-v", "--list",
    "--color", "auto", "--capture", "a.yaml", "r.xml", "", " ", "--junit x", "a\x00b", "\udc80.xml",
    "--junitx", "--=x", "-junit",
])


@functools.cache
def _fuzzed_parser() -> cli._Parser:
    """One ``run`` parser for every example (a parse leaves nothing in it but the arguments it was given),
    its hook off: argparse's refusals of random words must write no report (in the cwd: the checkout)."""
    parser = _run_parser()
    parser.on_usage_error = None
    return parser


@settings(max_examples=400, deadline=None)
@given(st.lists(_WORDS | st.text(max_size=12), max_size=10))
def test_the_scan_never_fails_and_finds_what_argparse_takes(words: list[str]) -> None:
    """Whatever the words, the scan returns; each path it finds is a word, or a word's part after ``=``,
    and starts with no ``-``. When argparse parses the words, the scan finds the reports argparse took
    (but a value it refuses: empty, ``-5``, a NUL). Words as a command line gives them (``\udc80``: an
    undecodable byte; a lone ``\ud800`` never comes from argv, and ``printable`` does not take it)."""
    parser = _fuzzed_parser()
    found, others = run_command.reports_given(parser, words)
    parts = set(words) | {w.partition("=")[2] for w in words}
    for path in found.values():
        assert str(path) in {str(Path(p)) for p in parts if p and not p.startswith("-")}
    assert len(others) <= len(words)
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            args = parser.parse_args(words)  # its hook off (_fuzzed_parser)
        except SystemExit:
            return
    for dest, option in (("junit", "--junit"), ("json", "--json")):
        taken = getattr(args, dest)
        if option in found:
            assert found[option] == taken
        elif taken is not None:  # a value the scan refuses to take as a path: "" (Path: "."), "-5", a NUL
            assert str(taken) == "." or str(taken).startswith("-") or "\x00" in str(taken), (words, taken)


def test_the_hook_is_set_on_run_alone() -> None:
    """``run``'s parser has the hook; the top parser and the others have none (no promise to keep)."""
    top = cli.build_parser()
    assert top.on_usage_error is None  # type: ignore[attr-defined]
    assert _run_parser().on_usage_error is run_command._usage_error_reports
