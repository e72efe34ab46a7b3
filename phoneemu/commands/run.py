"""``phoneemu run``: run scenario files against the built-in lab cluster (or real clusters)."""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phoneemu.commands._argtypes import non_negative_int
from phoneemu.commands._said import command_of, say
from phoneemu.errors import PhoneEmuError, ScenarioError, several
from phoneemu.files import check_apart, check_writable, output_target, remove_earlier, same_file_key
from phoneemu.interrupts import release_from_start, releases_from_start, sigterm_noted, term_as_ctrl_c
from phoneemu.tempdirs import sweep_abandoned
from phoneemu.words import counted

if TYPE_CHECKING:  # the loader, the runner and its reports are imported where a run runs (start-up time)
    from phoneemu.scenario.model import Scenario
    from phoneemu.scenario.results import RunSummary

__all__ = ["register"]

_EPILOG = """\
examples:
  phoneemu run scenarios/                            the whole catalogue
  phoneemu run scenarios/migration-*.yaml -v         some files, every expectation shown
  phoneemu run scenarios/ --junit out.xml --json out.json
  phoneemu run scenarios/tvs-outage.yaml --capture caps/   pcap + TLS key log for Wireshark
  phoneemu run scenarios/ --list                     validate and list, run nothing
  phoneemu run scenarios/ -k migration               scenarios whose name contains "migration"
  phoneemu run scenarios/ -k migration -k rollback   names containing either (-k is repeatable: any of them)
  phoneemu run scenarios/ --tag tvs                  scenarios with "tvs" in their tags: list
  phoneemu run scenarios/ -j 0 --junit out.xml       one worker process per core
  phoneemu run scenarios/ --timeout 60               no scenario may take more than a minute

verdicts: PASS, XFAIL (expected failure), FAIL, XPASS (an xfail mark that no longer fails),
ERROR (the scenario could not run).
exit status: 0 every scenario PASS or XFAIL; 1 a FAIL, XPASS or ERROR; 2 nothing ran — a mistake in a
scenario file (reported as file:line field: problem before anything runs; --junit/--json then say so,
one error per mistake: never an earlier run's report left in place), no scenario file found, a -k or
--tag selecting nothing, a bad option (--list with --junit or --json: --list runs nothing; a --junit or
--json path named *.yaml or *.yml, a scenario file's name) — or a report could
not be written; 130 interrupted (below). A file at the path of --junit or --json after a run is this
run's report or none: a report that could not be written (a full disk), or whose writing a second Ctrl-C
stopped, leaves no earlier file there (said on stderr).
A scenario that runs past its time limit (--timeout, or its file's timeout: key) is an ERROR
naming the step it was in ("timed out after 60 s in steps[3] (boot, FILE:LINE)"); its lab servers are
closed and the run goes on with the next scenario. With -j a worker that has not reported %(late)g s
after the limit is killed (the scenario is an ERROR naming it) and a fresh one runs the rest. A
sequential run whose scenario cannot be stopped at all (blocking code that neither cancellation nor a
signal interrupts) is abandoned %(late)g s after the limit: the reports are written with it as
ERROR and the rest not run; exit status 1.
Ctrl-C (or SIGTERM) stops the run and keeps what it found: the report (and --junit/--json) is written
with the scenario under way as ERROR (interrupted, naming its step) with the expectations it had evaluated
as they were (PASS, FAIL ...) — with -j, each worker's, the workers stopped at once — and the rest listed
as not run ("interrupted: 2 scenarios stopped under way (a, b); 3 scenarios not run (c, d, e)"; the
JSON's "stopped" and "not_run"); exit status 130. One between two scenarios stops the run before the
next; one while the reports are written waits for them (a second one does not). One before any scenario
started (the files still loading) exits 130 with --junit/--json saying so: the JUnit report an error
"interrupted (Ctrl-C) before any scenario started: nothing ran", the JSON "ran" false, "interrupted" true.
An internal error before any scenario started is said in them too. With -j a worker process
killed mid-scenario (the OOM killer) makes that scenario an ERROR naming the worker, the signal and the
step of its last report
("...was killed by SIGKILL while running this scenario; its last report: in steps[3] (boot, FILE:LINE)").
"""


def register(sub: Any) -> None:
    from phoneemu.scenario.bounds import DEFAULT_TIMEOUT_S, GRACE_S  # what --timeout and the epilog show

    p = sub.add_parser("run", help="run scenario files (the catalogue: phoneemu run scenarios/)",
                       description="Run scenario files: clusters, phones, steps and expectations.\n"
                       "The file format (every key, step and check): docs/scenarios.md in the phoneemu "
                       "source;\nexamples: the catalogue's files in scenarios/.",
                       epilog=_EPILOG.replace("%(late)g", f"{2 * GRACE_S:g}"),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders (*.yaml, *.yml)")
    p.add_argument("--junit", type=Path, metavar="FILE", help="write a JUnit XML report")
    p.add_argument("--json", type=Path, metavar="FILE", help="write a JSON report")
    p.add_argument("--capture", type=Path, metavar="DIR",
                   help="write a pcap and a TLS key log per scenario into DIR (DIR/NAME.pcap, "
                   "DIR/NAME.keys, both 0600 whatever the umask; NAME: the scenario's name, characters "
                   "other than A-Za-z0-9._- as _, at most 120, unique in a run ignoring case): a live "
                   "capture of loopback where raw sockets are allowed (root), else a TFTP-only synthetic one "
                   "that DIR/NAME.note.txt explains; PHONEEMU_CAPTURE=live or synthetic forces one")
    p.add_argument("-k", "--select", action="append", default=[], metavar="TEXT",
                   help="only scenarios whose name contains TEXT, or matches it as a glob when it holds "
                   "* ? or [ (e.g. -k migration, -k 'migration-*-tvs-*'; repeatable: any of them)")
    p.add_argument("--tag", action="append", default=[], metavar="TAG",
                   help="only scenarios carrying TAG in their tags: list (repeatable: any of them)")
    p.add_argument("-v", "--verbose", action="store_true", help="show every expectation")
    p.add_argument("--list", action="store_true", help="validate and list the scenarios, run nothing")
    p.add_argument("-j", "--jobs", type=non_negative_int, default=1, metavar="N",
                   help="run scenarios in N worker processes (0 = one per core; default 1); reports keep "
                   "the scenario order")
    p.add_argument("--timeout", type=_time_limit, default=DEFAULT_TIMEOUT_S, metavar="S",
                   help=f"each scenario's wall-clock limit in seconds (default {DEFAULT_TIMEOUT_S:g}; 0 = no "
                   "limit): 2.5, or 90s, 10m, 1h, 1d as a scenario file's timeout: key is written, at most "
                   "86400 (1 day); a scenario file's timeout: key (whole seconds) overrides it. Past it the "
                   "scenario is an ERROR naming its step, and the run goes on")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                   help="color the verdicts: auto (default) = when stdout is a terminal")
    p.set_defaults(handler=_run)
    p.on_usage_error = _usage_error_reports  # cli._Parser: argparse's errors exit 2 before _run runs


def _time_limit(text: str) -> float:
    """``--timeout``: read as a scenario file's ``timeout:`` is, one range for both
    (:func:`~phoneemu.scenario.loader.parse_time_limit`: ``2.5``, ``90s``, ``10m``, ``1h``, ``1d``; 0..86400
    s). Was: a number alone (``90s`` refused) up to ten years, while the file took units up to a day."""
    from phoneemu.scenario.loader import parse_time_limit  # here: start-up time (as TYPE_CHECKING's)

    try:
        seconds = parse_time_limit(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    if seconds is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative number")
    return seconds


def _usage_error_reports(parser: argparse.ArgumentParser, arguments: Sequence[str], message: str) -> None:
    """A usage error of ``run`` (argparse's, before the command runs: an unknown option, a bad value, no
    PATH; ``arguments``: those the ``run`` parser was given): the --junit and --json reports they name say
    nothing ran, naming it, as for the command's own refusals (:func:`_write_not_run`: a report that cannot
    be written is said, the earlier file there removed). README: never an earlier run's report left (was:
    ``--tiemout 5`` exited 2 with yesterday's passing out.xml in place, read by CI as green). Only the
    paths :func:`reports_given` finds are written, nothing else, and never over a YAML file
    (:func:`_yaml_file_kept`)."""
    said_by = argparse.Namespace(parser_used=parser)
    found, others = reports_given(parser, arguments)
    reports = {option: path for option, path in found.items() if not _yaml_file_kept(said_by, option, path)}
    if not reports:
        return
    _write_not_run(said_by, [(option, reports.get(option)) for option in _REPORT_OPTIONS.values()],
                   _scenario_inputs(others), ScenarioError(f"usage error: {message}"), say_refused=True)


def _yaml_file_kept(said_by: argparse.Namespace, option: str, path: Path) -> bool:
    """Whether the report ``path`` of a usage error has a scenario file's name (:func:`_names_yaml`): not
    written, and said. A command line argparse refused may give a scenario as a report's value
    (``run --junit $OUT a.yaml`` with ``OUT`` empty: PATH missing) — it was written over."""
    if not _names_yaml(path):
        return False
    say(said_by, f"{option} {path}: not written: {_YAML_NAME}")
    return True


def _names_yaml(path: Path) -> bool:
    """Whether the report ``path`` has a scenario file's name, ``*.yaml``/``*.yml`` (any case: a scenario
    given by name may be ``A.YAML``), or is a link to such a file — whether it exists or not (ours: a
    report written there was refused by the next run as a scenario's file, and ``run`` of its folder reads
    it as a scenario; was: only an existing one, so ``run --junit out.yaml`` passed once, then was refused).
    A FIFO or a device, or a path that cannot be looked at, is not: its write refuses it, saying why."""
    try:
        target, in_place = output_target(path)
        return not in_place and not target.is_dir() and any(
            p.suffix.lower() in _SCENARIO_SUFFIXES for p in (path, target))
    except OSError:
        return False


_YAML_NAME = "a *.yaml/*.yml name is a scenario file's, never a report's"


_SCENARIO_SUFFIXES = (".yaml", ".yml")
"""A scenario file's suffixes (:func:`~phoneemu.scenario.loader.discover`, in a folder; any case here)."""


_REPORT_OPTIONS = {"junit": "--junit", "json": "--json"}
"""The report options of ``run`` by ``dest``, in the order they are written (the JUnit report first)."""

_REPORT_SUFFIXES = {"--junit": ".xml", "--json": ".json"}
"""The name a refused report is told to take instead (:func:`_outputs_apart`)."""


def reports_given(parser: argparse.ArgumentParser,
                  arguments: Sequence[str]) -> tuple[dict[str, Path], list[str]]:
    """The report paths ``arguments`` (of ``run``'s parser, which failed to parse them) name, by option —
    ``--junit F``, ``--junit=F`` or an unambiguous prefix (``--ju F``, ``--ju=F``) when ``parser`` allows
    abbreviations; the last one given counts, as argparse keeps it — and the other words (each may name a
    scenario file: no report overwrites one). A value that is missing, empty, starts with ``-`` (an option,
    not a path) or cannot be a file name (a NUL, not encodable) names none; words after ``--`` are no
    options."""
    reports: dict[str, Path] = {}
    others: list[str] = []
    at = 0
    while at < len(arguments):
        word = arguments[at]
        at += 1
        if word == "--":
            others += arguments[at:]
            break
        option, value = _report_option(parser, word)
        if option is None:
            others.append(word)
            continue
        if value is None and at < len(arguments) and _may_name_a_file(arguments[at]):
            value, at = arguments[at], at + 1
        if value is not None and _may_name_a_file(value):
            reports[option] = Path(value)
        else:  # the last one given counts, as in argparse: an earlier path is not where it would write
            reports.pop(option, None)
    return reports, others


def _report_option(parser: argparse.ArgumentParser, word: str) -> tuple[str | None, str | None]:
    """The report option ``word`` is as argparse reads it (the option itself, ``OPTION=VALUE``, or a prefix
    of one option string alone when ``parser.allow_abbrev``), and the value it carries after ``=``;
    (None, None) for any other word."""
    if not word.startswith("--"):
        return None, None
    actions = parser._option_string_actions
    name, equals, value = word.partition("=")
    if word in actions:
        name, equals = word, ""
    elif name not in actions:
        matches = [o for o in actions if o.startswith(name)] if parser.allow_abbrev else []
        if len(matches) != 1:  # none, or ambiguous (argparse refuses it)
            return None, None
        name = matches[0]
    option = _REPORT_OPTIONS.get(actions[name].dest)
    return (option, value if equals else None) if option is not None else (None, None)


def _may_name_a_file(value: str) -> bool:
    """Whether a report option's value is taken as its path: not empty, not an option (``-``...), a name
    the system takes (no NUL, encodable: argv from a shell always is; ``main([...])`` may not be)."""
    if not value or value.startswith("-") or "\0" in value:
        return False
    try:
        os.fsencode(value)
    except UnicodeError:
        return False
    return True


def _term_as_interrupt() -> tuple[Any, Any]:
    """Make SIGTERM do what Ctrl-C does (the interrupted run's reports, exit 130); the old SIGTERM and
    SIGINT handlers.

    It calls Python's SIGINT handler, which inside a scenario is asyncio's: it cancels the scenario so
    that it closes its labs and removes its folder (a KeyboardInterrupt raised in whatever task ran left
    the folder behind, and a traceback). A SIGINT ignored (a shell's background job) gets that handler
    for the run too, or asyncio would install none."""
    old_int = signal.getsignal(signal.SIGINT)
    if old_int is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return term_as_ctrl_c(), old_int


def _load_all(paths: list[str]) -> list[Scenario]:
    from phoneemu.scenario.loader import discover, load_file

    files = discover(paths)
    if not files:
        raise ScenarioError("no scenario files (*.yaml, *.yml) found", file=" ".join(paths))
    scenarios: list[Scenario] = []
    mistakes: list[ScenarioError] = []
    for f in files:  # every file's mistakes, all in one error: nothing runs until all are fixed
        try:
            scenarios.append(load_file(f))
        except ScenarioError as exc:
            mistakes.append(exc)
    mistakes += _name_clashes(scenarios)
    err = several(mistakes)
    if err is not None:
        raise err
    return scenarios


def _name_clashes(scenarios: list[Scenario]) -> list[ScenarioError]:
    """Names are unique in a run (reports, -k), and so are their capture file stems, ignoring case as
    macOS and Windows do: ``a b``, ``a_b`` and ``a/b`` would all write ``--capture DIR/a_b.pcap``."""
    from phoneemu.scenario.model import capture_stem

    mistakes: list[ScenarioError] = []
    by_name: dict[str, Scenario] = {}
    by_stem: dict[str, Scenario] = {}
    for s in scenarios:
        other = by_name.setdefault(s.name, s)
        if other is not s:
            mistakes.append(ScenarioError(
                f"scenario name {s.name!r} is also the name of {other.path}: names must be unique (reports, "
                f"-k and --capture DIR/NAME.pcap use them)", file=s.path, line=_name_line(s), path="name"))
            continue
        stem = capture_stem(s.name)
        other = by_stem.setdefault(stem.lower(), s)
        if other is not s:
            mistakes.append(ScenarioError(
                f"scenario name {s.name!r} and the name {other.name!r} of {other.path} are one capture file "
                f"name, {stem}.pcap (--capture writes DIR/NAME.pcap with NAME's characters other than "
                "A-Za-z0-9._- as _, at most 120 of them, case ignored): rename one",
                file=s.path, line=_name_line(s), path="name"))
    return mistakes


def _name_line(s: Scenario) -> int:
    """The line a name clash of ``s`` is told at: its ``name:`` key's, else 1 (the name is the file's: was
    none, a ``file name:`` mistake with no line, and a JUnit error case without one)."""
    return s.name_line if s.name_line is not None else 1


class _Progress:
    """One self-overwriting line on a terminal; nothing when stderr is not a terminal."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.tty = sys.stderr.isatty()

    def __call__(self, text: str) -> None:
        if self.tty:
            sys.stderr.write(f"\r\x1b[K{text}")
            sys.stderr.flush()

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def _outputs_apart(args: argparse.Namespace, scenarios: list[Scenario]) -> None:
    """Refuse outputs that would overwrite an input or each other (nothing lost to a typo): --junit or
    --json naming a scenario file of the run or the same file as the other, --capture an existing file."""
    if args.capture is not None and args.capture.exists() and not args.capture.is_dir():
        raise PhoneEmuError(f"--capture {args.capture}: is a file, not a folder", path="capture")
    inputs = {same_file_key(Path(s.path)): s.path for s in scenarios}
    for option, path in (("--junit", args.junit), ("--json", args.json)):
        scenario_file = inputs.get(same_file_key(path)) if path is not None else None
        if scenario_file is not None:
            raise PhoneEmuError(f"{option} {path}: is the scenario file {scenario_file}; the report would "
                                "overwrite it", path=option.lstrip("-"))
        if path is not None and _names_yaml(path):  # one the run does not read: a scenario's all the same
            raise PhoneEmuError(f"{option} {path}: {_YAML_NAME} (it would overwrite one, or be read as one "
                                f"by a later run of its folder): name it *{_REPORT_SUFFIXES[option]}",
                                path=option.lstrip("-"))
    check_apart([("--junit", args.junit), ("--json", args.json)])


def _name_matches(name: str, pattern: str) -> bool:
    """A glob when ``pattern`` holds glob characters, else a substring of ``name``."""
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


def _reports_not_run(args: argparse.Namespace, err: ScenarioError, *, interrupted: bool = False) -> None:
    """Nothing ran (``err``: the files' mistakes, no scenario file, -k/--tag selecting nothing, a refused
    option, an internal error; ``interrupted``: a Ctrl-C or SIGTERM before any scenario started): --junit
    and --json say so (:func:`_write_not_run`), so that a CI job never reads an earlier run's report left
    in place."""
    _write_not_run(args, [("--junit", args.junit), ("--json", args.json)], _scenario_inputs(args.paths), err,
                   interrupted=interrupted)


def _write_not_run(args: argparse.Namespace, reports: list[tuple[str, Path | None]], inputs: set[object],
                   err: ScenarioError, *, interrupted: bool = False, say_refused: bool = False) -> None:
    """Each report of ``reports`` (option, path) says nothing ran (``err``;
    :func:`~phoneemu.scenario.reports.write_junit_not_run`, ``write_json_not_run``; an interrupted run's
    JSON says ``interrupted``). A report naming a scenario file (``inputs``: :func:`same_file_key`) is not
    written (it would overwrite it), nor one that cannot be (:func:`~phoneemu.files.check_writable`: its
    own error says so; ``say_refused``: said here); one whose write fails is said, the earlier file there
    removed (:func:`_unwritten`)."""
    from phoneemu.scenario.reports import write_json_not_run, write_junit_not_run

    def write_json(mistakes: tuple[ScenarioError, ...], path: Path) -> None:
        write_json_not_run(mistakes, path, interrupted=interrupted)

    writers = {"--junit": write_junit_not_run, "--json": write_json}
    for option, path in reports:
        if path is None or not _can_write(path, option, args if say_refused else None):
            continue  # checked first: a link loop is refused there (same_file_key would raise on it)
        if same_file_key(path) in inputs or _names_yaml(path):  # (a YAML name: a scenario's all the same)
            continue
        inputs.add(same_file_key(path))  # --junit and --json one file: the JUnit report alone
        try:
            writers[option](err.mistakes, path)
        except OSError as exc:
            say(args, _unwritten(option, path, exc))


def _scenario_inputs(paths: Sequence[str]) -> set[object]:
    """The :func:`same_file_key` of each scenario file ``paths`` name, each path found on its own (was: all
    at once, so one missing path hid the others' files and ``run missing.yaml a.yaml --junit a.yaml`` wrote
    its report over a.yaml); a path that names none (missing, unreadable, not a path) adds nothing."""
    from phoneemu.scenario.loader import discover

    inputs: set[object] = set()
    for given in paths:  # RuntimeError: Path.resolve on a link loop; ValueError: a NUL in a name
        with contextlib.suppress(ScenarioError, OSError, RuntimeError, ValueError):
            inputs |= {same_file_key(f) for f in discover([given])}
    return inputs


def _can_write(path: Path, option: str, said_by: argparse.Namespace | None = None) -> bool:
    """Whether ``path`` passes :func:`~phoneemu.files.check_writable`; a refused one is said by its error,
    or here as ``said_by``'s command when given."""
    try:
        check_writable(path, option)
    except PhoneEmuError as exc:
        if said_by is not None:
            say(said_by, str(exc))
        return False
    except OSError as exc:  # a name too long for the system (ENAMETOOLONG), a folder we may not search
        if said_by is not None:
            say(said_by, f"{option} {path}: not writable ({exc.strerror or exc})")
        return False
    return True


def _unwritten(option: str, path: Path, exc: OSError) -> str:
    """``--json PATH: not written: REASON``, an earlier report there removed first (module rule:
    :func:`phoneemu.files.remove_earlier`) and said."""
    removed = "; the earlier file there removed" if remove_earlier(path) else ""
    return f"{option} {path}: not written: {exc.strerror or exc}{removed}"


def _removed_unwritten(args: argparse.Namespace, written: set[str]) -> None:
    """The run stopped after its scenarios began, before writing some report (a second Ctrl-C while the
    reports were written, an internal error): an earlier file at that path is removed, and said."""
    for option, path in (("--junit", args.junit), ("--json", args.json)):
        if path is not None and option not in written and remove_earlier(path):
            say(args, f"{option} {path}: not written (the run stopped first); the earlier file there removed")


def _why_nothing_ran(exc: BaseException, by: str) -> ScenarioError | None:
    """What the reports of a run that ended with ``exc`` before any scenario started say (``by``: Ctrl-C
    or SIGTERM): the mistakes, a refused option, the interrupt, an internal error; None for an exit."""
    if isinstance(exc, ScenarioError):
        return exc
    if isinstance(exc, PhoneEmuError):
        return ScenarioError(exc.message, fmt=exc.fmt, offset=exc.offset, path=exc.path, tag=exc.tag,
                             file=exc.file, line=exc.line)
    if isinstance(exc, KeyboardInterrupt):
        return ScenarioError(f"interrupted ({by}) before any scenario started: nothing ran")
    if isinstance(exc, OSError):  # said by the command as one line (exit 2)
        return ScenarioError(str(exc.strerror or exc), file=str(exc.filename) if exc.filename else None)
    if isinstance(exc, Exception):
        return ScenarioError(f"internal error before any scenario started: {type(exc).__name__}: {exc} "
                             "(its traceback on stderr)")
    return None


def _matches_none(scenarios: int) -> str:
    """What a ``-k`` selecting nothing says of the ``scenarios`` it was matched against: ``does not match
    the 1 scenario``, ``matches none of the 2 scenarios``."""
    if scenarios == 1:
        return "does not match the 1 scenario"
    return f"matches none of the {counted(scenarios, 'scenario')}"


def _k_given(patterns: Sequence[str]) -> str:
    """The -k options as a selecting-nothing error names them, each one: ``-k 'a'``, ``-k 'a' or 'b'``
    (-k is repeatable and selects the scenarios any of them matches; was: the last one alone, silently)."""
    return "-k " + " or ".join(repr(k) for k in patterns)


def _selected(args: argparse.Namespace) -> list[Scenario]:
    """The scenarios of ``args.paths`` that -k and --tag select; ScenarioError (exit 2) when a file has
    a mistake, there is no file, or a -k or --tag selects nothing (a mistyped -k must not turn a CI job
    green): each -k must match, and each --tag be carried by, one of the scenarios loaded (was: all of them
    together, so ``-k migration -k rollbak`` ran migration alone, exit 0), and the two together must
    select one."""
    scenarios = _load_all(args.paths)
    _outputs_apart(args, scenarios)
    where = " ".join(args.paths)
    unmatched = [k for k in args.select if not any(_name_matches(s.name, k) for s in scenarios)]
    uncarried = [t for t in args.tag if not any(t in s.tags for s in scenarios)]
    mistakes: list[ScenarioError] = []
    if unmatched:  # a mistyped -k must not turn a CI job green by running nothing of its own
        names = ", ".join(s.name for s in scenarios[:8]) + (", ..." if len(scenarios) > 8 else "")
        mistakes.append(ScenarioError(f"{_k_given(unmatched)} {_matches_none(len(scenarios))} ({names})",
                                      file=where))
    if uncarried:  # the same rule as -k
        mistakes.append(ScenarioError(_tags_none(scenarios, uncarried, None), file=where))
    err = several(mistakes)
    if err is not None:
        raise err
    if args.select:
        scenarios = [s for s in scenarios if any(_name_matches(s.name, k) for k in args.select)]
    if args.tag:
        tagged = [s for s in scenarios if set(args.tag) & set(s.tags)]
        if not tagged:  # each is carried by a scenario, none of those -k selected: nothing selected
            raise ScenarioError(_tags_none(scenarios, args.tag, args.select), file=where)
        scenarios = tagged
    return scenarios


def _tags_none(scenarios: Sequence[Scenario], tags: Sequence[str], selected_by: Sequence[str] | None) -> str:
    """What the ``--tag`` options ``tags``, carried by none of ``scenarios``, say: ``--tag t: no scenario
    carries it (tags in use: a, b)`` (``any of them`` for several), or, those scenarios being what -k
    ``selected_by`` selected, ``--tag t: no scenario selected by -k 'x' carries it (their tags: a)`` (was
    "no scenario carries it" of a tag another scenario carries)."""
    known = ", ".join(sorted({t for s in scenarios for t in s.tags})) or "none"
    given, them = f"--tag {', '.join(tags)}", "it" if len(tags) == 1 else "any of them"
    if selected_by:
        return f"{given}: no scenario selected by {_k_given(selected_by)} carries {them} (their tags: " \
            f"{known})"
    return f"{given}: no scenario carries {them} (tags in use: {known})"


class _RunReports:
    """What :func:`_no_earlier_report` needs to know of a run's reports: whether its scenarios began (were
    handed to the runner), and the options (``--junit``, ``--json``) whose report it wrote."""

    def __init__(self) -> None:
        self.began = False
        self.written: set[str] = set()


@releases_from_start
def _run(args: argparse.Namespace) -> int:
    """The command (:func:`_run_reported`); whatever ends it, a file at the path of --junit or --json
    after it is this run's report, or there is none (:func:`_no_earlier_report`). A SIGTERM the CLI held
    since its start is let through once it is noted (its reports then say SIGTERM: was ``phoneemu:
    interrupted`` and no report, an earlier run's left standing)."""
    reports = _RunReports()
    sigterm: list[bool] = []
    try:
        with sigterm_noted() as sigterm:
            release_from_start()
            return _run_reported(args, reports)
    except BaseException as exc:
        _no_earlier_report(args, reports, exc, by="SIGTERM" if sigterm else "Ctrl-C")
        raise


def _no_earlier_report(args: argparse.Namespace, reports: _RunReports, exc: BaseException, *,
                       by: str) -> None:
    """The run ended with ``exc`` (``by``: the signal of an interrupt) before writing its reports: an
    earlier run's report must not stand for this one's (ours). Before any scenario began (an interrupt,
    a mistake, a refused option, an internal error) each report says why nothing ran
    (:func:`_reports_not_run`); after, an earlier file where a report was not written is removed."""
    reason = None if reports.began else _why_nothing_ran(exc, by)
    if reason is None:
        _removed_unwritten(args, reports.written)
    else:
        _reports_not_run(args, reason, interrupted=isinstance(exc, KeyboardInterrupt))


def _list_alone(args: argparse.Namespace) -> None:
    """``--list`` runs nothing: --junit or --json with it is refused (an option of another mode is refused,
    not ignored; ours), as it would leave an earlier run's report standing for this one. The refusal says
    what is at their paths after it: a report that nothing ran (:func:`_reports_not_run`), where one can be
    written (was: "--list runs nothing and writes no report", and one was written)."""
    given = [(option, path) for option, path in (("--junit", args.junit), ("--json", args.json))
             if path is not None]
    if not args.list or not given:
        return
    option, path = given[0]
    inputs = _scenario_inputs(args.paths)
    written = list(dict.fromkeys(str(p) for o, p in given if _gets_not_run_report(o, p, inputs)))
    said = f" ({' and '.join(written)} now {'says' if len(written) == 1 else 'say'} that nothing ran: this " \
        "refusal, never an earlier run's report)" if written else ""
    raise PhoneEmuError(f"{option} {path}: --list runs nothing, so there is no run to report: give --list "
                        f"or {option}, not both{said}", path=option.lstrip("-"))


def _gets_not_run_report(option: str, path: Path, inputs: set[object]) -> bool:
    """Whether :func:`_write_not_run` writes its report at ``path`` (writable, no scenario file: ``inputs``,
    no ``*.yaml`` name); its own write may still fail, and is said then."""
    return _can_write(path, option) and same_file_key(path) not in inputs and not _names_yaml(path)


def _prepared(args: argparse.Namespace) -> list[Scenario]:
    """The options checked and the scenarios selected (:func:`_selected`), before anything runs."""
    sweep_abandoned()  # phoneemu-* folders of runs killed before they could remove them (SIGKILL)
    _list_alone(args)
    check_writable(args.junit, "--junit")
    check_writable(args.json, "--json")
    return _selected(args)


def _print_list(scenarios: list[Scenario]) -> None:
    """``--list``: a line per scenario, its file, its expectations, what it reproduces and its tags."""
    from phoneemu.scenario.model import Expectation

    for s in scenarios:
        n_exp = sum(isinstance(x, Expectation) for x in s.steps)
        extra = (f"; reproduces: {s.reproduces}" if s.reproduces else "") + \
            (f"; tags: {', '.join(s.tags)}" if s.tags else "")
        print(f"{s.name:<40} {s.path}  ({counted(n_exp, 'expectation')}{extra})")


def _run_reported(args: argparse.Namespace, reports: _RunReports) -> int:
    """The scenarios selected, then listed (``--list``) or run; the exit status."""
    scenarios = _prepared(args)
    if args.list:
        _print_list(scenarios)
        return 0
    return _run_selected(args, scenarios, reports)


def _run_selected(args: argparse.Namespace, scenarios: list[Scenario], reports: _RunReports) -> int:
    """Run ``scenarios`` and write their reports (noted in ``reports``); the exit status."""
    from phoneemu.scenario.reports import render_text, write_json, write_junit
    from phoneemu.scenario.runner import RunOptions, run_scenarios

    if args.capture is not None:
        args.capture.mkdir(parents=True, exist_ok=True)
    progress = _Progress(len(scenarios))
    if args.jobs < 0:
        raise ScenarioError(f"-j {args.jobs}: expected 0 (one per core) or more", file=" ".join(args.paths))
    jobs = args.jobs or (os.cpu_count() or 1)
    colour = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())

    unwritten: list[str] = []

    def report(summary: RunSummary) -> None:
        """The text, then each report file: one that cannot be written (a full disk, /dev/full) is said
        naming its option and file, and the other is still written. Called by the run once it has ended
        (``on_done``), the run's first Ctrl-C or SIGTERM held back meanwhile (was: one coming after the run,
        before its reports, lost them all)."""
        progress.done()
        print(render_text(summary, colour=colour, verbose=args.verbose))
        for option, path, write in (("--junit", args.junit, write_junit), ("--json", args.json, write_json)):
            if path is not None:
                try:
                    write(summary, path)
                except OSError as exc:
                    unwritten.append(_unwritten(option, path, exc))
                else:
                    reports.written.add(option)

    def report_abandoned(summary: RunSummary) -> None:  # the process ends right after: say it here
        report(summary)
        for line in unwritten:
            say(args, line)

    options = RunOptions(capture_dir=args.capture, progress=progress, timeout=args.timeout,
                         on_abandon=report_abandoned, on_done=report, said_by=command_of(args))
    # set last, right before the try that puts them back (was: a bad PHONEEMU_LAB_HOST_BASE left an ignored
    # SIGINT Python's handler in a process calling main() again)
    old_term, old_int = _term_as_interrupt()  # SIGTERM (kill, CI timeout) is a Ctrl-C: reports
    try:
        reports.began = True
        summary = run_scenarios(scenarios, options, jobs=jobs)  # its reports written (on_done)
    finally:
        signal.signal(signal.SIGTERM, old_term)
        if old_int is signal.SIG_IGN:
            signal.signal(signal.SIGINT, old_int)
    if unwritten:  # each report tried; the text above is the run's
        raise PhoneEmuError("; ".join(unwritten) + " (the report above is the run's)", path="output")
    if summary.interrupted:
        return 130
    return 0 if summary.ok else 1
