"""An ``expect`` before the phone's first boot says the phone has not booted yet (was ``boot: expected 'ok',
got 'failed'``: a boot that never happened read as a failed one, and ``itl`` 'absent', ``locked_out``
False, ``fetched_over`` 'none' ... as if a boot had said so) — in the text, the JSON and the JUnit report."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.phone.https import HttpsResult
from phoneemu.scenario import checks
from tests.helpers import FakePhoneView

NOT_BOOTED = "not booted yet"


def _view(**fields: Any) -> Any:
    """A phone view with no boot report (what a check sees before the phone's first boot)."""
    return FakePhoneView(**fields)


@pytest.mark.parametrize(("check", "expected"), [
    ("boot", "ok"), ("itl", "installed"), ("ctl", "rejected"), ("config", "accepted"), ("config", "none"),
    ("config_file", "SEP0A0000000001.cnf.xml"), ("firmware", "none"), ("rule", "G.2"),
    ("deciding_rule", "G.2"), ("reason", "unknown"), ("status", "Trust List"), ("lsc", "unchanged"),
    ("locked_out", True), ("encrypted", True), ("tvs_used", True), ("signaling", "tls"),
    ("trust_file_retries", 1), ("retransmitted", True), ("fetched_over", "http"),
])
def test_a_check_of_the_boot_report_before_any_boot_says_so(check: str, expected: Any) -> None:
    assert checks.evaluate(check, _view(), expected) == (NOT_BOOTED, False)
    assert checks.evaluate(check, _view(), [expected]) == (NOT_BOOTED, False)


@pytest.mark.parametrize(("check", "expected"), [
    ("locked_out", False), ("encrypted", False), ("tvs_used", False), ("signaling", "none"),
    ("trust_file_retries", 0), ("retransmitted", False), ("fetched_over", "none"),
])
def test_what_is_true_of_a_phone_that_never_booted_holds_and_says_why(check: str, expected: Any) -> None:
    """Not locked out, no retry, no file received: true before any boot; the value shown says why."""
    assert checks.evaluate(check, _view(), expected) == (NOT_BOOTED, True)


def test_a_boot_that_never_happened_neither_failed_nor_succeeded() -> None:
    """Was ``got 'failed'``, and ``boot: failed`` held before any boot: a misplaced expect went green."""
    assert checks.evaluate("boot", _view(), "failed") == (NOT_BOOTED, False)
    assert checks.evaluate("boot", _view(), ["ok", "failed"]) == (NOT_BOOTED, False)


@pytest.mark.parametrize(("check", "expected", "trust", "held"), [
    ("itl", "absent", False, True), ("itl", "present", True, True),
    ("ctl", ["installed", "absent"], False, True),
    ("itl", "absent", True, False), ("lsc", "absent", False, True), ("lsc", "present", False, False),
])
def test_what_the_stored_state_answers_still_holds_before_any_boot(check: str, expected: Any, trust: bool,
                                                                   held: bool) -> None:
    assert checks.evaluate(check, _view(trust=trust), expected) == (NOT_BOOTED, held)


def test_a_step_result_still_answers_rule_and_status_before_any_boot() -> None:
    view = _view(https=HttpsResult(trusted=False, how="rejected", rule="E.7.1-https-not-trusted",
                                   reason="r", status="Host Not Found"))
    assert checks.evaluate("rule", view, "E.7.1") == (["E.7.1-https-not-trusted"], True)
    assert checks.evaluate("deciding_rule", view, "E.7.1") == ("E.7.1-https-not-trusted", True)
    assert checks.evaluate("status", view, "Host Not Found") == (["Host Not Found"], True)


SCENARIO = """\
name: nb
reproduces: test
phones:
  p: {mac: "0A0000000001"}
steps:
  - expect: {boot: ok, itl: installed, locked_out: false}
  - boot: p
  - expect: {boot: ok}
"""


def test_an_expect_before_the_first_boot_says_not_booted_yet_in_every_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "nb.yaml").write_text(SCENARIO)
    junit, report = tmp_path / "out.xml", tmp_path / "out.json"
    assert main(["run", str(tmp_path / "nb.yaml"), "--junit", str(junit), "--json", str(report)]) == 1
    out = capsys.readouterr().out
    assert "0A0000000001: boot: expected 'ok', got 'not booted yet'" in out
    assert "0A0000000001: itl: expected 'installed', got 'not booted yet'" in out
    assert "locked_out: expected" not in out  # held: true of a phone that never booted
    first, second = json.loads(report.read_text())["scenarios"][0]["expectations"]
    assert [(c["check"], c["actual"], c["held"]) for c in first["checks"]] == [
        ("boot", NOT_BOOTED, False), ("itl", NOT_BOOTED, False), ("locked_out", NOT_BOOTED, True)]
    assert [(c["actual"], c["held"]) for c in second["checks"]] == [("ok", True)]
    failures = [f.get("message", "") for f in ET.parse(junit).getroot().iter("failure")]
    assert any("boot: expected 'ok', got 'not booted yet'" in m for m in failures), failures
