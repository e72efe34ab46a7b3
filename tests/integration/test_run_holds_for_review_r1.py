"""``holds_for`` explains a failure only: an expectation whose bound is met keeps, and writes to the JSON
report, no phone's timeline, deciding decision or decisions (docs/scenarios.md, "How many phones an
expectation holds for").

Was: every phone that did not match was explained even when the bound allowed it — each phone of a passing
``holds_for: none`` (for a 100,000-phone storm, 100,000 timelines kept in memory, sent back by each ``-j``
worker and written to the JSON of an expectation that passed). One lab run: three phones boot, one signed
config is tampered with, all three reset; two accept their config, one rejects it.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from phoneemu.scenario.json_report import to_json
from phoneemu.scenario.loader import load_text
from phoneemu.scenario.results import ExpectationResult, RunSummary, ScenarioResult
from phoneemu.scenario.runner import RunOptions, run_scenario

TAMPERED = "0A0000003201"

TEXT = """\
name: holds-for-explains-failures
phones:
  p: {count: 3, mac_start: "0A0000003201"}
steps:
  - boot: p
  - tamper: {file: SEP0A0000003201.cnf.xml.sgn, offset: -10}
  - reset: p
  - expect: {phones: p, label: none rejected by chance, holds_for: none, config: rejected, reason: nothing}
  - expect: {phones: p, label: at least two accept, holds_for: {at_least: 2}, config: accepted}
  - expect: {phones: p, label: at most one rejects, holds_for: {at_most: 1}, config: rejected}
  - expect: {phones: p, label: at least three accept, holds_for: {at_least: 3}, config: accepted}
  - expect: {phones: p, label: none rejects, holds_for: none, config: rejected}
"""

#: label -> (verdict, the phones its failure explains)
EXPLAINED = {
    "none rejected by chance": ("PASS", []),
    "at least two accept": ("PASS", []),
    "at most one rejects": ("PASS", []),
    "at least three accept": ("FAIL", [TAMPERED]),
    "none rejects": ("FAIL", [TAMPERED]),
}


@pytest.fixture(scope="module")
def ran() -> ScenarioResult:
    result = asyncio.run(run_scenario(load_text(TEXT, "explain.yaml"), RunOptions()))
    assert result.error is None, result.error
    return result


def _exp(result: ScenarioResult, label: str) -> ExpectationResult:
    return next(e for e in result.expectations if e.label == label)


@pytest.mark.parametrize("label", list(EXPLAINED))
def test_only_a_failure_keeps_what_explains_its_phones(ran: ScenarioResult, label: str) -> None:
    verdict, explained = EXPLAINED[label]
    e = _exp(ran, label)
    assert e.outcome.value == verdict
    assert (sorted(e.timelines), sorted(e.deciding), sorted(e.decisions)) == (explained, explained, explained)


def test_the_json_of_a_met_bound_names_no_phone_beside_its_checks(ran: ScenarioResult) -> None:
    doc = json.loads(json.dumps(to_json(RunSummary(scenarios=[ran])), default=str))
    by_label = {e["label"]: e for e in doc["scenarios"][0]["expectations"]}
    for label, (verdict, explained) in EXPLAINED.items():
        record = by_label[label]
        assert record["outcome"] == verdict
        assert (sorted(record["timelines"]), sorted(record["deciding"]), sorted(record["decisions"])) == \
            (explained, explained, explained), label
        assert len(record["checks"]) == 3 * (2 if label == "none rejected by chance" else 1)
