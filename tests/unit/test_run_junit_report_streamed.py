"""``run --junit``'s report is written a testcase at a time (phoneemu.scenario.reports.write_junit): the same
bytes as the whole document the writer built in memory before, whatever the run held, and never the whole
text in memory."""

from __future__ import annotations

import io
import types
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest

from phoneemu.fleet.junit import xml_text
from phoneemu.scenario import reports
from phoneemu.scenario.results import CheckResult, ExpectationResult, RunSummary, ScenarioResult
from tests.helpers import assert_written_a_chunk_at_a_time

#: what the clock says while a test writes: the not-run suites' ``timestamp`` is "now"
_NOW = 1_780_000_123.0


def _whole(summary: RunSummary) -> bytes:
    """What write_junit wrote before it streamed (its code then, verbatim): the one document's text, from
    the module's own testcase writers."""
    out = io.StringIO()
    out.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    total = [sum(c) for c in zip(*(reports._junit_counts(s) for s in summary.scenarios), strict=True)] \
        or [0] * 4
    total[0] += len(summary.not_run)
    total[3] += len(summary.not_run)
    out.write(f'<testsuites name="phoneemu" tests="{total[0]}" failures="{total[1]}" errors="{total[2]}" '
              f'skipped="{total[3]}" time="{reports._seconds(summary.duration_s)}">\n')
    for s in summary.scenarios:
        tests, fails, errors, skips = reports._junit_counts(s)
        out.write(f"  <testsuite name={quoteattr(s.name)} tests=\"{tests}\" failures=\"{fails}\" "
                  f"errors=\"{errors}\" skipped=\"{skips}\" time=\"{reports._seconds(s.duration_s)}\" "
                  f"timestamp=\"{reports._timestamp(s.started_at)}\" file={quoteattr(s.path)}>\n")
        props = [("reproduces", s.reproduces)] * bool(s.reproduces) + [("tag", t) for t in s.tags]
        if props:
            out.write(f"    {reports._properties(props)}\n")
        if s.error:
            reports._junit_error_case(out, s, s.error)
        seen: dict[str, int] = {"run": 1} if s.error else {}
        for e in s.expectations:
            seen[e.label] = seen.get(e.label, 0) + 1
            reports._junit_case(out, s, e, e.label if seen[e.label] == 1 else f"{e.label} #{seen[e.label]}")
        out.write("  </testsuite>\n")
    for name in summary.not_run:
        out.write(f'  <testsuite name={quoteattr(name)} tests="1" failures="0" errors="0" skipped="1" '
                  f'time="0.000" timestamp="{reports._timestamp(None)}">\n'
                  f'    <testcase classname={quoteattr(name)} name="run" time="0.000">\n'
                  f'      <skipped message="not run: the run was interrupted"/>\n'
                  f'    </testcase>\n  </testsuite>\n')
    out.write("</testsuites>\n")
    return xml_text(out.getvalue()).encode("utf-8")


def _expectation(n: int, label: str, *, phones: int, lines: int, held: bool = False,
                 xfail: str | None = None, odd: str = " \x1b[31m <b>\"q\" \ufffe") -> ExpectationResult:
    """``phones`` phones, each failing (unless ``held``) with a value of its own (a group each), a deciding
    rule, a decision and a ``lines``-line timeline, its lines ending with ``odd``."""
    e = ExpectationResult(where=f"s{n}.yaml:{7 + n}", label=label, xfail=xfail, duration_s=0.25 * n)
    for i in range(phones):
        mac = f"0A{n:04X}{i:06X}"
        e.checks.append(CheckResult(phone=mac, check="itl", expected="updated", actual=f"got {i} \x01 ]]> &",
                                    held=held))
        if not held:
            e.timelines[mac] = [f"00:00:{k:02d} line {k} of {mac}{odd}" for k in range(lines)]
            e.deciding[mac] = f"G.3-unchanged (accepted) ITLSEP{mac}.tlv: unchanged{odd}"
            e.decisions[mac] = {"itl": None, "config": f"G.4-{i % 3} (accepted) x"}
    return e


def _scenario(n: int, *, phones: int = 3, lines: int = 4, error: str | None = None) -> ScenarioResult:
    exps = [_expectation(n, "fails", phones=phones, lines=lines),
            _expectation(n, "fails", phones=phones, lines=lines),  # a repeated label: " #2"
            _expectation(n, "run", phones=1, lines=1, held=True),  # beside an error's "run": " #2" too
            _expectation(n, "known bug", phones=2, lines=2, xfail="bug 12 \x02"),  # XFAIL: skipped
            _expectation(n, "stale mark", phones=1, lines=1, held=True, xfail="fixed?")]  # XPASS
    return ScenarioResult(name=f"s{n} <\"odd\"> \udcff", path=f"s{n}.yaml", reproduces="spec G.2" * (n % 2),
                          tags=["t", "u\x7f"][: n % 3], phones=phones, expectations=exps, error=error,
                          duration_s=[1.5, float("nan"), -1.0][n % 3],
                          started_at=[1_780_000_000.0, None, float("inf")][n % 3],
                          last_step=f"in steps[2] (boot, s{n}.yaml:9)" if error else None,
                          error_trace=["  File \"x.py\", line 1", "ValueError: \x00 ]]>"] if error else [])


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The report's "now" is :data:`_NOW`, for the streamed file and its reference alike."""
    monkeypatch.setattr(reports, "time", types.SimpleNamespace(time=lambda: _NOW))


@pytest.mark.usefixtures("fixed_clock")
def test_streamed_report_is_the_whole_documents_bytes(tmp_path: Path) -> None:
    """No scenario; failures, XFAIL (skipped), XPASS, repeated labels; ERRORs with a step and a traceback;
    an interrupted run with scenarios stopped and not run; control characters, ``]]>``, quotes, lone
    surrogates, U+FFFE; NaN, infinite and negative times: byte for byte the document built whole."""
    interrupted = RunSummary(
        scenarios=[_scenario(0), _scenario(1, error="interrupted (Ctrl-C) before the scenario finished; its "
                                                   "last report: in steps[2] (boot, s1.yaml:9) \x1b")],
        interrupted=True, stopped=["s1"], not_run=["later", "z\udcff <&>"], duration_s=float("nan"))
    summaries = [
        RunSummary(),
        RunSummary(not_run=["only"], interrupted=True),
        RunSummary(scenarios=[_scenario(n, error="boom \udc80" if n % 2 else None) for n in range(6)],
                   duration_s=3.25),
        interrupted,
    ]
    for n, summary in enumerate(summaries):
        path = tmp_path / f"r{n}.xml"
        reports.write_junit(summary, path)
        assert path.read_bytes() == _whole(summary), n


@pytest.mark.usefixtures("fixed_clock")
def test_report_of_many_failed_phones_is_never_one_text_in_memory(tmp_path: Path) -> None:
    """80 scenarios of 8 failed expectations, each of 12 phones failing otherwise (10 groups shown) with a
    40-line timeline (~16 MB of XML): writing it holds a fraction of that at a time (a testcase's text and
    a chunk of about ``files.TEXT_CHUNK`` characters, ~3.5 MB whatever the size). Before: the whole text
    twice over and more (the text, its XML-safe copy, its UTF-8 bytes: 33 MB)."""
    exps = [[_expectation(n, f"e{k}", phones=12, lines=40, odd=" <&>") for k in range(8)] for n in range(80)]
    summary = RunSummary(scenarios=[ScenarioResult(name=f"s{n}", path=f"s{n}.yaml", reproduces="", phones=12,
                                                   expectations=e) for n, e in enumerate(exps)])
    assert_written_a_chunk_at_a_time(lambda path: reports.write_junit(summary, path), tmp_path / "r.xml",
                                     _whole(summary))
