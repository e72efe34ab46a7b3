"""A CI user's scenario files and reports: expectations that cannot pass vacuously, unique scenario names,
JUnit counts a CI reads right, and a SIGTERM (a CI job cancelled) that cleans up as Ctrl-C does."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from phoneemu.commands import run as run_cmd
from phoneemu.errors import ScenarioError
from phoneemu.scenario.loader import discover, load_text
from phoneemu.scenario.model import Expectation
from phoneemu.scenario.reports import write_junit
from phoneemu.scenario.results import ExpectationResult, RunSummary, ScenarioResult
from phoneemu.scenario.runner import _cancelled_is_no_error
from tests.helpers import loader_error

_HEAD = """\
name: {name}
phones:
  a: {{mac: "0A00000F0001"}}
steps:
  - boot: all
"""


@pytest.mark.parametrize("check", ["config_contains: []", "config_lacks: []", "itl: []", "status: []"])
def test_an_empty_list_of_values_is_refused(check: str) -> None:
    """``config_contains: []`` held for every phone (all of nothing), ``itl: []`` for none (any of
    nothing): both are mistakes told at load time, not an expectation that passes or fails whatever
    the phone did."""
    err = loader_error(f"- expect: {{phones: a, {check}}}")
    assert "empty list" in str(err) and f".{check.partition(':')[0]}:" in str(err)


def test_an_empty_record_list_still_means_no_list_installed() -> None:
    s = load_text(_HEAD.format(name="t") + "  - expect: {phones: a, ctl_records: []}\n", "t.yaml")
    exp = s.steps[1]
    assert isinstance(exp, Expectation) and exp.checks["ctl_records"] == []


@pytest.mark.parametrize("step", ["- expect: {phones: [], boot: ok}", "- boot: []", "- reset: {phones: []}"])
def test_a_step_on_no_phone_is_refused(step: str) -> None:
    """``phones: []`` checked nobody and the expectation passed; a boot of nobody did nothing."""
    err = loader_error(step)
    assert "empty list" in str(err) and "defined: a" in str(err)


def test_an_empty_xfail_reason_is_refused() -> None:
    err = loader_error('- expect: {phones: a, boot: ok, xfail: ""}')
    assert "xfail: empty reason" in str(err)


def test_two_scenarios_of_one_name_are_refused(tmp_path: Path) -> None:
    """Reports, -k and --capture DIR/NAME.pcap tell scenarios apart by name: the second file's capture
    overwrote the first's and the JUnit report held two suites of one name."""
    body = "  - expect: {phones: a, boot: ok}\n"
    (tmp_path / "one.yaml").write_text(_HEAD.format(name="same") + body)
    (tmp_path / "two.yaml").write_text("# a comment\n" + _HEAD.format(name="same") + body)
    with pytest.raises(ScenarioError) as info:
        run_cmd._load_all([str(tmp_path)])
    assert f"{tmp_path / 'two.yaml'}:2 name: scenario name 'same' is also the name of " \
           f"{tmp_path / 'one.yaml'}" in str(info.value)


def test_a_file_named_twice_runs_once(tmp_path: Path) -> None:
    f = tmp_path / "one.yaml"
    f.write_text(_HEAD.format(name="one") + "  - expect: {phones: a, boot: ok}\n")
    assert discover([str(tmp_path), str(f), str(tmp_path / "." / "one.yaml")]) == [f]
    assert [s.name for s in run_cmd._load_all([str(tmp_path), str(f)])] == ["one"]


def test_junit_counts_match_the_testcases_written(tmp_path: Path) -> None:
    """A scenario that timed out after one expectation has two testcases (``run``, the error, and the
    expectation): its ``tests`` says 2, and ``<testsuites>`` carries the run's totals."""
    summary = RunSummary()
    errored = ScenarioResult(name="slow", path="slow.yaml", reproduces="", phones=1,
                             error="timed out after 2 s in steps[3]")
    errored.expectations.append(ExpectationResult(where="slow.yaml:7", label="before", xfail=None))
    passed = ScenarioResult(name="quick", path="quick.yaml", reproduces="", phones=1)
    passed.expectations.append(ExpectationResult(where="quick.yaml:7", label="ok", xfail=None))
    summary.scenarios += [errored, passed]
    out = tmp_path / "r.xml"
    write_junit(summary, out)
    root = ET.parse(out).getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert suites["slow"].get("tests") == "2" and len(suites["slow"].findall("testcase")) == 2
    assert suites["slow"].findall("testcase")[0].get("file") == "slow.yaml"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == \
        ("3", "0", "1", "0")


def test_a_cancelled_task_prints_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """Python 3.11's start_server callback asked a cancelled connection handler for its exception and
    printed a CancelledError traceback after every time limit; other errors are still logged."""
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            _cancelled_is_no_error(loop, {"message": "cb", "exception": asyncio.CancelledError()})
            assert not caplog.records
            _cancelled_is_no_error(loop, {"message": "cb", "exception": ValueError("real")})
            assert len(caplog.records) == 1
    finally:
        loop.close()


def test_sigterm_cancels_the_scenario_not_whatever_task_ran() -> None:
    """SIGTERM raised KeyboardInterrupt in the task that happened to run (a phone's, a lab server's):
    that task died with it and the scenario's folder was left behind, never swept. Now it is what Ctrl-C
    is: the scenario (asyncio's main task) is cancelled, closes what it opened, and the run stops."""
    seen: list[str] = []

    async def other_task() -> None:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(100):
                await asyncio.sleep(0.01)
        except KeyboardInterrupt:
            seen.append("other task interrupted")
            raise

    async def scenario() -> None:
        task = asyncio.create_task(other_task())
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            seen.append("scenario cancelled")
            task.cancel()
            raise

    old_term, old_int = run_cmd._term_as_interrupt()
    try:
        with pytest.raises(KeyboardInterrupt):
            asyncio.run(scenario())
    finally:
        signal.signal(signal.SIGTERM, old_term)
        if old_int is signal.SIG_IGN:
            signal.signal(signal.SIGINT, old_int)
    assert seen == ["scenario cancelled"]


def test_a_misspelt_reason_code_is_refused() -> None:
    """``reason: tvs-unreachble`` matched no rejection ever: under ``xfail`` the expectation stayed XFAIL
    for ever and the run green. A code (words joined by ``-``) must be part of a rejection code; other
    text is still matched in the decisions' reasons as written."""
    err = loader_error("- expect: {phones: a, reason: tvs-unreachble, xfail: waiting for a fix}")
    assert "unknown reason code 'tvs-unreachble'" in str(err) and "did you mean 'tvs-unreachable'" in str(err)
    for good in ("tvs-unreachable", "signer", "tvs", "unknown-signer", "no TVS server answered"):
        load_text(_HEAD.format(name="ok") + f"  - expect: {{phones: a, reason: {good}}}\n", "t.yaml")


def test_an_unquoted_yes_says_yaml_read_a_boolean() -> None:
    """``config: yes`` said only 'expected text, got True'."""
    err = loader_error("- expect: {phones: a, config: yes}")
    assert 'YAML reads an unquoted yes as a boolean: write "yes"' in str(err)


def test_flash_is_not_offered_as_a_phone_group_field() -> None:
    """An unknown field of a phone group lists the fields it may have; ``flash`` is always refused (with
    its own way out), so it is not one of them."""
    with pytest.raises(ScenarioError) as info:
        load_text('name: t\nphones:\n  a: {mac: "0A00000F0001", flsh: x}\nsteps:\n  - boot: all\n', "t.yaml")
    listed = str(info.value).split("expected one of: ", 1)[1]
    assert "flash" not in listed and "profile" in listed
    with pytest.raises(ScenarioError, match=r"phones\.a\.flash: not supported"):
        load_text('name: t\nphones:\n  a: {mac: "0A00000F0001", flash: x}\nsteps:\n  - boot: all\n', "t.yaml")
