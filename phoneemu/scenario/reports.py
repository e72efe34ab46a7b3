"""Reports of a run: terminal text, JUnit XML for CI (and, re-exported, the JSON document of
:mod:`phoneemu.scenario.json_report`).

JUnit mapping: one ``<testsuite>`` per scenario (its ``tags`` and ``reproduces`` as properties), one
``<testcase>`` per expectation: ``classname`` the scenario name, ``name`` the expectation's label
(" #2" when a label repeats) — names a CI keeps history by, which do not move when a line is added to
the file; ``file`` and ``line`` attributes and a ``where`` property say where it is. FAIL and XPASS are
``<failure>``, ERROR is ``<error>``, XFAIL is ``<skipped>`` with the reason (CI systems show it as an
expected failure), PASS has no child.

What a CI page shows (the JUnit schema's attributes: ``name``, ``classname``, ``tests``, ``failures``,
``errors``, ``skipped``, ``time``, ``timestamp``): a testcase's ``time`` is its expectation's seconds — from
the previous expectation (or the scenario's start, set-up included) to its own, the steps it checks — and
a suite's its scenario's, with ``timestamp`` when it started (local time, no zone, as the schema has it).
A failed expectation shows at most :data:`MAX_GROUPS_SHOWN` groups of phones that failed alike, in the
text and the ``<failure>`` body, and counts the others on one line: the CI log of a failure stays a few
kilobytes whatever the fleet; the JSON keeps every phone. A testcase whose phones failed carries a
``rule`` and a ``reason`` property per deciding rule (the decision that decided the failed phones' last
boots; `` #2`` for a second rule), and per item a failed check reads (``checks.SUBJECTS``: ``itl``,
``config``, ``sip`` ...) an ``ITEM rule`` and ``ITEM reason`` per rule of the decision about it
(``itl rule`` ``G.3-unchanged``, ``itl rule #2``); its ``<failure>`` body groups the phones, with those
decisions and a timeline. An ERROR's ``run`` testcase has the ``line`` of its file that
the error is at (the step's: the first ``FILE:LINE`` of the scenario's file in its message or step) and a
body: the error, the step it was in, and an internal error's traceback (its last frames). Whatever a text
holds (control characters, ``]]>``, a lone surrogate), the file is well-formed XML. It is written a
testcase at a time (memory: one testcase's text and a chunk, whatever the run), whole or absent.

A run that runs nothing (exit 2: a mistake in a scenario file, no scenario file found, ``-k`` or ``--tag``
selecting nothing) still writes its reports, saying so (:func:`write_junit_not_run`,
:func:`write_json_not_run`): a CI job never reads an earlier run's green report left in place.

The text report ends with one line per unit — scenarios, then expectations — and a verdict line
counting scenarios in number: ``OK: 27 scenarios passed (26 PASS, 1 XFAIL) in 25.0s``, ``OK: 1 scenario
passed ...`` or ``FAILED: 2 of 27 scenarios failed (1 FAIL, 1 ERROR) ...``.
"""

from __future__ import annotations

import io
import math
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from xml.sax.saxutils import escape, quoteattr

from phoneemu.errors import ScenarioError
from phoneemu.files import write_output, write_output_text
from phoneemu.fleet.junit import xml_text
from phoneemu.scenario.checks import STEP_ITEMS
from phoneemu.scenario.json_report import to_json, write_json, write_json_not_run
from phoneemu.scenario.results import ExpectationResult, Outcome, RunSummary, ScenarioResult
from phoneemu.words import counted

__all__ = ["render_text", "to_json", "write_json", "write_json_not_run", "write_junit", "write_junit_not_run"]

_COLOURS = {"PASS": "32", "XFAIL": "33", "FAIL": "31", "XPASS": "35", "ERROR": "31;1"}


def _paint(text: str, outcome: str, colour: bool) -> str:
    return f"\x1b[{_COLOURS[outcome]}m{text}\x1b[0m" if colour else text


def _macs(phones: list[str], *, limit: int = 6) -> str:
    """``0A..01, 0A..02, 0A..03`` — the first ``limit`` MACs and how many more."""
    shown = ", ".join(phones[:limit])
    return shown + (f" and {len(phones) - limit} more" if len(phones) > limit else "")


def _rule_of(summary: str | None) -> str | None:
    """The rule a one-line decision (``RULE (accepted) FILE: REASON``) starts with; None for none."""
    return summary.split(" ", 1)[0] if summary is not None else None


def _item_lines(exp: ExpectationResult, phone: str) -> list[str]:
    """``ITEM decision: ...`` per item the phone's failed checks read: the decision, ``the deciding one``
    when it is the line above, ``none`` when the last boot (or the steps so far) made none."""
    lines = []
    for item, summary in exp.decisions.get(phone, {}).items():
        none = "none in the steps so far" if item in STEP_ITEMS else "none in the last boot"
        said = none if summary is None else "the deciding one" if summary == exp.deciding.get(phone) \
            else summary
        lines.append(f"      {item} decision: {said}")
    return lines


#: The groups of failed phones a failed expectation shows at most (text and JUnit body); the others are
#: counted on one line (module rules)
MAX_GROUPS_SHOWN = 10


def _failure_lines(exp: ExpectationResult, timeline_lines: int) -> list[str]:
    """Phones that failed alike — the same checks with the same actual values, the same deciding rule and
    the same rules about what the checks read — are one group: its checks and decisions once, with the
    MACs, and the timeline of its first phone (fifty locked phones read as one finding, not fifty
    copies). The first :data:`MAX_GROUPS_SHOWN` groups are shown, the rest counted on one line (phones
    whose actual values all differ — a count, a log line — would make a CI log of megabytes). With
    ``holds_for`` a line first names whom the groups are of: the phones that did not match, or, when too
    many matched (``none``, ``at_most``), those that did, grouped by their checks' values."""
    by_phone: dict[str, list[str]] = {}
    for c in exp.shown_checks():
        by_phone.setdefault(c.phone, []).append(f"{c.check}: expected {c.expected!r}, got {c.actual!r}")
    groups: dict[tuple[tuple[str, ...], str, tuple[tuple[str, str | None], ...]], list[str]] = {}
    for phone, failed in by_phone.items():  # a phone's own MAC in a value reads as {mac} (as in the file)
        rule = exp.deciding.get(phone, "").split(" ", 1)[0]
        about = tuple((item, _rule_of(summary)) for item, summary in exp.decisions.get(phone, {}).items())
        groups.setdefault((tuple(f.replace(phone, "{mac}") for f in failed), rule, about), []).append(phone)
    matched = exp.too_many_matched()
    lines: list[str] = []
    if exp.holds_for is not None and by_phone:
        lines.append(f"      {_whom(len(by_phone), matched)}:")
    for (alike_checks, _rule, _about), phones in list(groups.items())[:MAX_GROUPS_SHOWN]:
        first = phones[0]
        if len(phones) == 1:
            lines.extend(f"      {first}: {f}" for f in by_phone[first])
        else:
            lines.extend(f"      {len(phones)} phones ({_macs(phones)}): {f}" for f in alike_checks)
        if exp.deciding.get(first):
            lines.append(f"      deciding: {exp.deciding[first]}")
        lines.extend(_item_lines(exp, first))
        if exp.timelines.get(first):
            alike = f" (the other {len(phones) - 1} alike)" if len(phones) > 1 else ""
            lines.append(f"      timeline of {first}{alike}:")
            shown = exp.timelines[first][-timeline_lines:]
            if len(shown) < len(exp.timelines[first]):  # the last lines only: say that there were more
                lines.append(f"        ... {len(exp.timelines[first]) - len(shown)} earlier lines")
            lines.extend(f"        {t}" for t in shown)
    if len(groups) > MAX_GROUPS_SHOWN:
        rest = list(groups.values())[MAX_GROUPS_SHOWN:]
        in_rest = counted(sum(map(len, rest)), "phone")
        lines.append(f"      ... and {counted(len(rest), 'more group')} of {in_rest} that "
                     f"{_rest_did(exp, matched)} otherwise "
                     "(the JSON report has each phone's checks, decisions and timeline)")
    return lines


def _rest_did(exp: ExpectationResult, matched: bool) -> str:
    """What the phones of the groups not shown did, as the line naming whom the groups are of says it
    (:func:`_whom`): under ``holds_for`` they ``matched`` or ``did not match`` (was "failed", for phones of a
    bound), else they ``failed`` the expectation."""
    if exp.holds_for is None:
        return "failed"
    return "matched" if matched else "did not match"


def _whom(phones: int, matched: bool) -> str:
    """``the 3 phones that did not match`` / ``the phone that matched``: whom a bound's failure groups."""
    who = f"the {phones} phones" if phones != 1 else "the phone"
    return f"{who} that {'matched' if matched else 'did not match'}"


def _capture_line(s: ScenarioResult) -> str:
    """``capture: PATH (TLS key log ...)``; a capture stopped early says so after its path
    (``capture: PATH stopped after 100 bytes (reader went away): 12 packets written, 48 dropped (...)``,
    as ``boot --capture``'s summary; our wording). Shown whatever the outcome when it stopped."""
    stopped = f" {s.capture_stopped.text()}" if s.capture_stopped is not None else ""
    return f"capture: {s.capture}{stopped} (TLS key log beside it; phoneemu wireshark {s.capture})"


def _one_line(text: str) -> str:
    """``text`` on one line, its line breaks spaces: a multi-line ``xfail:`` reason (``xfail: |``) on its
    verdict line, one line per verdict as CI logs read them (was: printed raw, a line of the log each; the
    JSON and JUnit reports keep it whole)."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def render_text(summary: RunSummary, *, colour: bool = False, verbose: bool = False,
                timeline_lines: int = 25) -> str:
    """Per scenario one verdict line; per bad expectation the checks and the phone's timeline."""
    out: list[str] = []
    for s in summary.scenarios:
        o = s.outcome.value
        out.append(f"{_paint(f'{o:<5}', o, colour)} {s.name}  ({s.path}, {counted(s.phones, 'phone')}, "
                   f"{s.duration_s:.2f}s)" + (f"  reproduces: {s.reproduces}" if s.reproduces else ""))
        if s.error:
            out.append(f"      error: {s.error}")
        if s.capture and (verbose or s.outcome.bad or s.capture_stopped is not None):
            out.append(f"      {_capture_line(s)}")
        for e in s.expectations:
            eo = e.outcome
            if verbose or eo is not Outcome.PASS:
                note = (f" — {said}" if (said := e.count_text()) is not None else "") + \
                    (f" [xfail: {_one_line(e.xfail)}]" if e.xfail else "")
                out.append(f"  {_paint(f'{eo.value:<5}', eo.value, colour)} {e.label} ({e.where}){note}")
                if eo in (Outcome.FAIL, Outcome.XFAIL) and (verbose or eo is Outcome.FAIL):
                    out.extend(_failure_lines(e, timeline_lines))
    sc, ec = summary.counts(), summary.expectation_counts()
    order = ("PASS", "XFAIL", "FAIL", "XPASS", "ERROR")
    out.append("")
    captured = [s.capture for s in summary.scenarios if s.capture]
    if captured:
        folder = str(Path(captured[0]).parent)
        logs = "its TLS key log" if len(captured) == 1 else "their TLS key logs"
        out.append(f"captures: {counted(len(captured), 'pcap')} with {logs} in {folder}/ (phoneemu "
                   f"wireshark {folder}/NAME.pcap; phoneemu replay {folder}/NAME.pcap --keylog ...)")
    if summary.interrupted:
        out.append(_interrupted_line(summary))
    out.append("scenarios: " + ", ".join(f"{ec_} {k}" for k in order if (ec_ := sc.get(k, 0))))
    out.append("expectations: " + (", ".join(f"{n} {k}" for k in order if (n := ec.get(k, 0)))
                                   or "none evaluated"))
    total = sum(sc.values())
    bad = [k for k in ("FAIL", "XPASS", "ERROR") if sc.get(k)]
    good = [k for k in ("PASS", "XFAIL") if sc.get(k)]
    took = f"in {summary.duration_s:.1f}s"
    if bad:
        failed = sum(sc[k] for k in bad)
        out.append(f"FAILED: {failed} of {counted(total, 'scenario')} failed "
                   f"({', '.join(f'{sc[k]} {k}' for k in bad)}) {took}")
    elif summary.interrupted:
        out.append(f"INTERRUPTED: {counted(total, 'scenario')} ran {took}")
    else:
        passed = ", ".join(f"{sc[k]} {k}" for k in good)
        out.append(f"OK: {counted(total, 'scenario')} passed ({passed}) {took}")
    return "\n".join(out)


def _interrupted_line(summary: RunSummary) -> str:
    """``interrupted: 2 scenarios stopped under way (a, b); 1 scenario not run (c)``: those stopped are
    ERRORs above, with the expectations they had evaluated; a part with no scenario is left out (was:
    ``interrupted: 1 scenario stopped under way (a); 0 scenarios not run``), and with neither the run was
    interrupted once its last scenario had ended."""
    parts = [f"{counted(len(names), 'scenario')} {what} ({', '.join(names)})"
             for names, what in ((summary.stopped, "stopped under way"), (summary.not_run, "not run"))
             if names]
    return "interrupted: " + ("; ".join(parts) if parts else "after the last scenario (every scenario ran)")


def _write_report(path: Path, text: str) -> None:
    """A report file is whole or absent: a regular file (or a new one) is replaced atomically, so an
    interrupt or a full disk mid-write never leaves a truncated JSON/XML; a FIFO or a device such as
    ``/dev/stdout`` is written in place."""
    write_output(path, text.encode("utf-8"))


def _failure_message(e: ExpectationResult) -> str:
    """A failed expectation's one-line message (what CI pages show first): its first failed check,
    and how many phones failed it (``expectation failed: itl: expected 'updated', got 'installed' (12 of
    50 phones)``). With ``holds_for`` it starts with the count (:func:`_bound_failure_message`)."""
    if e.holds_for is not None:
        return _bound_failure_message(e)
    failed = e.failures()
    if not failed:
        return "expectation failed"
    first = failed[0]
    what = f"{first.check}: expected {first.expected!r}, got {first.actual!r}"
    phones = {c.phone for c in e.checks}
    alike = {c.phone for c in failed if c.check == first.check}
    who = first.phone if len(phones) == 1 else f"{len(alike)} of {len(phones)} phones, first {first.phone}"
    return f"expectation failed: {what} ({who})"


def _bound_failure_message(e: ExpectationResult) -> str:
    """``expectation failed: 17 of 20 phones matched (needed at least 18); first not matched: 0A..05:
    itl: expected 'installed', got 'rejected'`` — or, too many matched, the first phone that matched."""
    shown = e.shown_checks()
    if not shown:
        return f"expectation failed: {e.count_text()}"
    first = shown[0]
    if e.too_many_matched():
        return f"expectation failed: {e.count_text()}; first matched: {first.phone}"
    return (f"expectation failed: {e.count_text()}; first not matched: {first.phone}: {first.check}: "
            f"expected {first.expected!r}, got {first.actual!r}")


def _seconds(time_s: float) -> str:
    """A ``time`` attribute: seconds, three decimals; ``0.000`` for one not a finite number >= 0."""
    return f"{time_s:.3f}" if math.isfinite(time_s) and time_s >= 0 else "0.000"


def _timestamp(at: float | None) -> str:
    """A ``timestamp`` attribute: ``at`` (None: now) as local time ``2026-06-01T09:30:00``, no zone (the
    JUnit schema's form, as Ant writes it)."""
    return datetime.fromtimestamp(time.time() if at is None or not math.isfinite(at) else at) \
        .isoformat(timespec="seconds")


def _rule_properties(summaries: list[str], prefix: str = "") -> list[tuple[str, str]]:
    """``PREFIXrule`` and ``PREFIXreason`` of each rule of ``summaries``, in their order, a rule once (its
    first reason), `` #2`` from the second. A decision reads ``RULE (accepted|rejected) [FILE: ]REASON``:
    ``reason`` is what follows the verdict (the file it is about, when it names one)."""
    reasons: dict[str, str] = {}
    for summary in summaries:
        rule, _, rest = summary.partition(" ")
        verdict_end = rest.find(") ") if rest.startswith("(") else -1
        reasons.setdefault(rule, rest[verdict_end + 2:] if verdict_end >= 0 else rest)
    pairs: list[tuple[str, str]] = []
    for n, (rule, reason) in enumerate(reasons.items(), 1):
        suffix = f" #{n}" if n > 1 else ""
        pairs += [(f"{prefix}rule{suffix}", rule), (f"{prefix}reason{suffix}", reason)]
    return pairs


def _deciding_properties(e: ExpectationResult) -> list[tuple[str, str]]:
    """``rule`` and ``reason`` of each rule that decided a failed phone's last boot, then ``ITEM rule`` and
    ``ITEM reason`` of each rule of the decisions about what the failed checks read (module rules), in
    the phones' order."""
    by_item: dict[str, list[str]] = {}
    for about in e.decisions.values():
        for item, summary in about.items():
            if summary is not None:
                by_item.setdefault(item, []).append(summary)
    return _rule_properties(list(e.deciding.values())) + [
        pair for item, summaries in by_item.items() for pair in _rule_properties(summaries, f"{item} ")]


def _properties(pairs: list[tuple[str, str]]) -> str:
    return "<properties>" + "".join(f"<property name={quoteattr(k)} value={quoteattr(v)}/>"
                                    for k, v in pairs) + "</properties>"


def _junit_case(out: IO[str], s: ScenarioResult, e: ExpectationResult, name: str) -> None:
    file, _, line = e.where.rpartition(":")
    where = f" file={quoteattr(file)} line={quoteattr(line)}" if file and line.isdigit() else ""
    out.write(f"    <testcase classname={quoteattr(s.name)} name={quoteattr(name)}{where} "
              f'time="{_seconds(e.duration_s)}">\n'
              f"      {_properties([('where', e.where), *_deciding_properties(e)])}\n")
    o = e.outcome
    body = "\n".join(_failure_lines(e, 40))
    if o is Outcome.FAIL:
        out.write(f'      <failure message={quoteattr(_failure_message(e))}>{escape(body)}</failure>\n')
    elif o is Outcome.XPASS:
        counted_as = f": {said}" if (said := e.count_text()) is not None else ""
        message = f"unexpected pass (xfail: {e.xfail}){counted_as}"
        out.write(f"      <failure message={quoteattr(message)}/>\n")
    elif o is Outcome.XFAIL:
        out.write(f'      <skipped message={quoteattr("expected failure: " + str(e.xfail))}/>\n')
    out.write("    </testcase>\n")


def _junit_counts(s: ScenarioResult) -> tuple[int, int, int, int]:
    """tests, failures, errors, skipped of a scenario's ``<testsuite>``: its testcases as written, an
    ERROR's ``run`` case counted beside the expectations evaluated before it."""
    errors = 1 if s.error else 0
    fails = sum(1 for e in s.expectations if e.outcome in (Outcome.FAIL, Outcome.XPASS))
    skips = sum(1 for e in s.expectations if e.outcome is Outcome.XFAIL)
    return len(s.expectations) + errors, fails, errors, skips


def write_junit(summary: RunSummary, path: Path) -> None:
    """The JUnit XML report; ``<testsuites>`` carries the run's totals (the sum of its suites'). Written a
    testcase at a time (memory: one testcase's text, not the document's), whole or absent as
    :func:`_write_report`; what XML 1.0 forbids is U+FFFD (module rules)."""
    write_output_text(path, map(xml_text, _junit_pieces(summary)))


def _junit_pieces(summary: RunSummary) -> Iterator[str]:
    """The JUnit document's text: its head with the run's totals, a suite's head and each of its testcases,
    the suites of the scenarios not run, its end."""
    total = [sum(c) for c in zip(*(_junit_counts(s) for s in summary.scenarios), strict=True)] or [0] * 4
    total[0] += len(summary.not_run)
    total[3] += len(summary.not_run)
    yield ('<?xml version="1.0" encoding="UTF-8"?>\n'
           f'<testsuites name="phoneemu" tests="{total[0]}" failures="{total[1]}" errors="{total[2]}" '
           f'skipped="{total[3]}" time="{_seconds(summary.duration_s)}">\n')
    for s in summary.scenarios:
        yield from _junit_suite(s)
    for name in summary.not_run:  # interrupted: what did not run is visible, not silently absent
        yield (f'  <testsuite name={quoteattr(name)} tests="1" failures="0" errors="0" skipped="1" '
               f'time="0.000" timestamp="{_timestamp(None)}">\n'
               f'    <testcase classname={quoteattr(name)} name="run" time="0.000">\n'
               f'      <skipped message="not run: the run was interrupted"/>\n'
               f'    </testcase>\n  </testsuite>\n')
    yield "</testsuites>\n"


def _junit_suite(s: ScenarioResult) -> Iterator[str]:
    """A scenario's ``<testsuite>``: its head and properties, then each testcase (an ERROR's ``run``
    first)."""
    tests, fails, errors, skips = _junit_counts(s)
    head = (f"  <testsuite name={quoteattr(s.name)} tests=\"{tests}\" failures=\"{fails}\" "
            f"errors=\"{errors}\" skipped=\"{skips}\" time=\"{_seconds(s.duration_s)}\" "
            f"timestamp=\"{_timestamp(s.started_at)}\" file={quoteattr(s.path)}>\n")
    props = [("reproduces", s.reproduces)] * bool(s.reproduces) + [("tag", t) for t in s.tags]
    if props:  # none: no empty <properties/> (a site's own scenario without reproduces or tags)
        head += f"    {_properties(props)}\n"
    yield head
    if s.error:
        yield _text_of(_junit_error_case, s, s.error)
    seen: dict[str, int] = {"run": 1} if s.error else {}  # the error's case: an expectation "run" is #2
    for e in s.expectations:
        seen[e.label] = seen.get(e.label, 0) + 1
        yield _text_of(_junit_case, s, e, e.label if seen[e.label] == 1 else f"{e.label} #{seen[e.label]}")
    yield "  </testsuite>\n"


def _text_of(write: Callable[..., None], *args: Any) -> str:
    """What ``write(out, *args)`` writes to ``out``."""
    out = io.StringIO()
    write(out, *args)
    return out.getvalue()


def _error_line(s: ScenarioResult) -> int | None:
    """The line of the scenario's file its error is at: the first ``PATH:LINE`` of its own file that its
    message names (a step's error starts with it; a time limit's names the step), else its last step
    (``in steps[3] (boot, PATH:14)``, an internal error's); None in set-up or closing."""
    own = re.compile(r"(?<![^\s(])" + re.escape(s.path) + r":(\d+)")
    for text in (s.error or "", s.last_step or ""):
        found = own.search(text)
        if found is not None:
            return int(found.group(1))
    return None


def _error_body(s: ScenarioResult, error: str) -> str:
    """An ERROR's ``<error>`` text (module rules): the error, the step it was in, and an internal error's
    traceback summary."""
    lines = [error]
    if s.last_step:
        lines.append(f"when: {s.last_step}")
    if s.error_trace:
        lines.append("traceback (its last frames; the whole traceback is on the run's stderr):")
        lines.extend(f"  {t}" for t in s.error_trace)
    return "\n".join(lines)


def _junit_error_case(out: IO[str], s: ScenarioResult, error: str) -> None:
    """The ``run`` testcase of an ERROR (module rules); its time: the scenario's after its last expectation
    evaluated (the expectations' cases hold the rest)."""
    line = _error_line(s)
    at = f' line="{line}"' if line is not None else ""
    took = s.duration_s - sum(e.duration_s for e in s.expectations)
    out.write(f'    <testcase classname={quoteattr(s.name)} name="run" file={quoteattr(s.path)}{at} '
              f'time="{_seconds(max(0.0, took))}">\n'
              f"      <error message={quoteattr(error)}>{escape(_error_body(s, error))}</error>\n"
              "    </testcase>\n")


#: The suite and class name of the testcases of a run that ran nothing (module rules).
NOT_RUN_SUITE = "phoneemu run"


def write_junit_not_run(mistakes: tuple[ScenarioError, ...], path: Path) -> None:
    """The JUnit report of a run that ran nothing (module rules): one suite ``phoneemu run``, one
    ``<error>`` testcase per mistake (``load FILE:LINE``; its message the mistake as printed, ``file`` and
    ``line`` attributes when it has them)."""
    out = io.StringIO()
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    n = len(mistakes)
    out.write(f'<testsuites name="phoneemu" tests="{n}" failures="0" errors="{n}" skipped="0" time="0.000">\n'
              f'  <testsuite name={quoteattr(NOT_RUN_SUITE)} tests="{n}" failures="0" errors="{n}" '
              f'skipped="0" time="0.000" timestamp="{_timestamp(None)}">\n')
    seen: dict[str, int] = {}
    for m in mistakes:
        where = f"{m.file}:{m.line}" if m.file and m.line is not None else m.file or "the run"
        seen[where] = seen.get(where, 0) + 1
        name = f"load {where}" + (f" #{seen[where]}" if seen[where] > 1 else "")
        attrs = (f" file={quoteattr(m.file)}" if m.file else "") + \
            (f' line="{m.line}"' if m.line is not None else "")
        out.write(f"    <testcase classname={quoteattr(NOT_RUN_SUITE)} name={quoteattr(name)}{attrs} "
                  f'time="0.000">\n      <error message={quoteattr(str(m))}/>\n    </testcase>\n')
    out.write("  </testsuite>\n</testsuites>\n")
    _write_report(path, xml_text(out.getvalue()))
