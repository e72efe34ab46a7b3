"""The ``run --junit``/``--json`` reports as a CI page reads them (phoneemu.scenario.reports, module rules):

* every testcase had ``time="0"``: now its expectation's seconds (the steps since the previous one), an
  ERROR's ``run`` case the scenario's rest, and each suite a ``timestamp``; the JSON has the same seconds;
* a failed expectation's testcase names the deciding ``rule`` and ``reason`` (properties), its message
  unchanged;
* an ERROR's ``<error>`` had no body and no line: now the ``line`` its message (or its step) names, and a
  body with the error, the step and an internal error's traceback;
* whatever a text holds, the file parses, and every suite and case has the schema's attributes.
"""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

from phoneemu.errors import ScenarioError
from phoneemu.scenario.reports import write_json, write_junit, write_junit_not_run
from phoneemu.scenario.results import CheckResult, ExpectationResult, RunSummary, ScenarioResult

PATH = "site/tvs.yaml"
STARTED = 1_780_272_000.0  # 2026-06-01T00:00:00Z


def _failed(label: str, line: int, seconds: float, deciding: dict[str, str]) -> ExpectationResult:
    return ExpectationResult(
        where=f"{PATH}:{line}", label=label, xfail=None, duration_s=seconds, deciding=deciding,
        checks=[CheckResult(phone=mac, check="itl", expected="updated", actual="installed", held=False)
                for mac in deciding])


def _passed(label: str, line: int, seconds: float) -> ExpectationResult:
    return ExpectationResult(where=f"{PATH}:{line}", label=label, xfail=None, duration_s=seconds,
                             checks=[CheckResult(phone="0A0000000001", check="itl", expected="installed",
                                                 actual="installed", held=True)])


def _junit(tmp_path: Path, *scenarios: ScenarioResult, not_run: list[str] | None = None) -> ET.Element:
    path = tmp_path / "r.xml"
    write_junit(RunSummary(scenarios=list(scenarios), duration_s=9.5, not_run=not_run or []), path)
    return ET.parse(path).getroot()


def _case(root: ET.Element, name: str) -> ET.Element:
    found = [c for c in root.iter("testcase") if c.get("name") == name]
    assert len(found) == 1, [c.get("name") for c in root.iter("testcase")]
    return found[0]


def _properties(case: ET.Element) -> list[tuple[str | None, str | None]]:
    return [(p.get("name"), p.get("value")) for p in case.findall("properties/property")]


def test_each_testcase_has_its_expectations_seconds_and_the_suite_its_start(tmp_path: Path) -> None:
    s = ScenarioResult(name="tvs", path=PATH, reproduces="", duration_s=4.0, started_at=STARTED,
                       expectations=[_passed("booted", 6, 1.25), _passed("again", 9, 2.5)])
    root = _junit(tmp_path, s)
    assert [c.get("time") for c in root.iter("testcase")] == ["1.250", "2.500"]
    suite = root.find("testsuite")
    assert suite is not None and suite.get("time") == "4.000" and root.get("time") == "9.500"
    assert suite.get("timestamp") == datetime.fromtimestamp(STARTED).isoformat(timespec="seconds")


def test_an_errors_run_case_has_the_scenarios_time_after_its_last_expectation(tmp_path: Path) -> None:
    s = ScenarioResult(name="tvs", path=PATH, reproduces="", duration_s=4.0, started_at=STARTED,
                       error=f"{PATH}:12: tamper failed: file: no served file 'X'",
                       last_step=f"in steps[5] (tamper, {PATH}:12)", expectations=[_passed("booted", 6, 1.5)])
    root = _junit(tmp_path, s)
    assert _case(root, "run").get("time") == "2.500" and _case(root, "booted").get("time") == "1.500"


def test_the_json_report_carries_the_same_seconds_and_start(tmp_path: Path) -> None:
    s = ScenarioResult(name="tvs", path=PATH, reproduces="", duration_s=4.0, started_at=STARTED,
                       error="internal error: KeyError: 'x'", last_step=f"in steps[2] (boot, {PATH}:8)",
                       error_trace=["  File \"w.py\", line 3, in boot", "KeyError: 'x'"],
                       expectations=[_passed("booted", 6, 1.25)])
    path = tmp_path / "r.json"
    write_json(RunSummary(scenarios=[s], duration_s=4.5), path)
    doc = json.loads(path.read_text())["scenarios"][0]
    assert doc["duration_s"] == 4.0 and doc["expectations"][0]["duration_s"] == 1.25
    assert doc["started"] == "2026-06-01T00:00:00Z"
    assert doc["error_step"] == f"in steps[2] (boot, {PATH}:8)" and doc["error_trace"][-1] == "KeyError: 'x'"


def test_a_failed_testcase_names_its_deciding_rule_and_reason(tmp_path: Path) -> None:
    locked = "G.3.4-tvs-unknown-signer (rejected) ITLSEP0A0000000001.tlv: TVS does not know the signer"
    unreachable = "G.3.4-tvs-unreachable (rejected) TVS unreachable: refused"
    e = _failed("migrated", 7, 0.5, {"0A0000000001": locked, "0A0000000002": locked.replace("01.", "02."),
                                     "0A0000000003": unreachable})
    case = _case(_junit(tmp_path, ScenarioResult(name="tvs", path=PATH, reproduces="", expectations=[e])),
                 "migrated")
    assert _properties(case) == [
        ("where", f"{PATH}:7"),
        ("rule", "G.3.4-tvs-unknown-signer"),
        ("reason", "ITLSEP0A0000000001.tlv: TVS does not know the signer"),
        ("rule #2", "G.3.4-tvs-unreachable"), ("reason #2", "TVS unreachable: refused")]
    failure = case.find("failure")
    assert failure is not None  # the message as before; the body says the decision too (GitLab, Jenkins)
    assert failure.get("message") == \
        "expectation failed: itl: expected 'updated', got 'installed' (3 of 3 phones, first 0A0000000001)"
    assert f"deciding: {locked}" in (failure.text or "")


def test_a_passed_testcase_has_no_rule(tmp_path: Path) -> None:
    root = _junit(tmp_path, ScenarioResult(name="tvs", path=PATH, reproduces="",
                                           expectations=[_passed("booted", 6, 0.1)]))
    assert _properties(_case(root, "booted")) == [("where", f"{PATH}:6")]


def test_a_step_error_names_its_line_and_says_its_step(tmp_path: Path) -> None:
    error = f"{PATH}:12: tamper failed: file: no served file 'X'"
    s = ScenarioResult(name="tvs", path=PATH, reproduces="", error=error,
                       last_step=f"in steps[5] (tamper, {PATH}:12)")
    case = _case(_junit(tmp_path, s), "run")
    assert (case.get("file"), case.get("line")) == (PATH, "12")
    node = case.find("error")
    assert node is not None and node.get("message") == error
    assert (node.text or "").splitlines() == [error, f"when: in steps[5] (tamper, {PATH}:12)"]


def test_a_time_limit_names_the_line_of_its_step(tmp_path: Path) -> None:
    """The ``-j`` parent's time limit message names the step; no step of its own was recorded."""
    s = ScenarioResult(name="tvs", path=PATH, reproduces="",
                       error=f"timed out after 60 s in steps[3] (boot, {PATH}:14); worker killed")
    assert _case(_junit(tmp_path, s), "run").get("line") == "14"


def test_an_internal_error_gets_its_steps_line_and_traceback(tmp_path: Path) -> None:
    trace = ['  File "phoneemu/lab/cluster.py", line 88, in tamper', "    data[offset] ^= 1",
             "IndexError: bytearray index out of range"]
    s = ScenarioResult(name="tvs", path=PATH, reproduces="", error="internal error: IndexError: out of range",
                       last_step=f"in steps[4] (tamper, {PATH}:11)", error_trace=trace)
    case = _case(_junit(tmp_path, s), "run")
    assert case.get("line") == "11"
    node = case.find("error")
    assert node is not None
    body = (node.text or "").splitlines()
    assert body[:2] == ["internal error: IndexError: out of range", f"when: in steps[4] (tamper, {PATH}:11)"]
    assert body[3:] == [f"  {t}" for t in trace]


def test_an_error_in_set_up_has_no_line(tmp_path: Path) -> None:
    """A line of another file (or one ending in the scenario's path) is not the scenario's."""
    s = ScenarioResult(name="tvs", path=PATH, reproduces="", error="lab: other/site/tvs.yaml:3 port taken",
                       last_step="in set-up (starting the labs, making the phones)")
    case = _case(_junit(tmp_path, s), "run")
    assert (case.get("file"), case.get("line")) == (PATH, None)


HOSTILE = "a\x00b\x1b[2J ]]> <![CDATA[ \ud800 \ufffe & \"q\" 'q' <x/>\r\n\t\x7f\x85 end"


def test_hostile_text_anywhere_keeps_the_file_well_formed(tmp_path: Path) -> None:
    e = _failed(HOSTILE, 7, 0.5, {"0A0000000001": f"{HOSTILE} (rejected) {HOSTILE}"})
    s = ScenarioResult(name=HOSTILE, path=HOSTILE, reproduces=HOSTILE, tags=[HOSTILE], error=HOSTILE,
                       last_step=HOSTILE, error_trace=[HOSTILE], started_at=STARTED, expectations=[e])
    suite = _junit(tmp_path, s, not_run=[HOSTILE]).find("testsuite")  # parses
    assert suite is not None
    error, failed = suite.findall("testcase")
    text = (error.findtext("error") or "").splitlines()
    assert "]]>" in text[0] and "<![CDATA[" in text[0] and "\ufffd" in text[0]  # not XML 1.0: U+FFFD
    assert text[-1].endswith(" end")
    assert [k for k, _ in _properties(failed)] == ["where", "rule", "reason"]


def test_every_suite_and_case_has_the_schema_attributes(tmp_path: Path) -> None:
    """name/classname/time on each testcase; name/tests/failures/errors/skipped/time/timestamp on each
    testsuite, and counts that add up — what Jenkins, GitLab and GitHub's reporters read."""
    locked = _failed("locked", 8, 0.5, {"0A0000000001": "R (rejected) x"})
    ran = ScenarioResult(name="tvs", path=PATH, reproduces="", started_at=STARTED, duration_s=2.0,
                         error="boom", expectations=[_passed("booted", 6, 1.0), locked])
    before = time.time()
    root = _junit(tmp_path, ran, not_run=["later"])
    for suite in root.iter("testsuite"):
        attrs = {k: suite.get(k)
                 for k in ("name", "tests", "failures", "errors", "skipped", "time", "timestamp")}
        assert None not in attrs.values(), attrs
        assert datetime.fromisoformat(attrs["timestamp"] or "").tzinfo is None  # the schema: no zone
        cases = suite.findall("testcase")
        assert int(attrs["tests"] or "") == len(cases)
        assert float(attrs["time"] or "") >= sum(float(c.get("time") or "nan") for c in cases) - 1e-6
        for c in cases:
            assert c.get("name") and c.get("classname") and float(c.get("time") or "nan") >= 0
    later = next(s for s in root.iter("testsuite") if s.get("name") == "later")
    assert datetime.fromisoformat(later.get("timestamp") or "").timestamp() >= int(before) - 1
    assert [root.get(k) for k in ("tests", "failures", "errors", "skipped")] == ["4", "1", "1", "1"]


def test_the_report_of_a_run_that_ran_nothing_has_a_timestamp_too(tmp_path: Path) -> None:
    path = tmp_path / "r.xml"
    mistake = ScenarioError("unknown phone group 'q'", file=PATH, line=6, path="steps[0].boot")
    write_junit_not_run((mistake,), path)
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None and suite.get("timestamp") is not None
    case = suite.find("testcase")
    assert case is not None and float(case.get("time") or "nan") == 0.0
