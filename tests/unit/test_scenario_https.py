"""The ``https`` step and check of the scenario format (spec §E.7.1): parsing, errors, evaluation."""

from __future__ import annotations

import pytest

from phoneemu.errors import ScenarioError
from phoneemu.phone.https import HttpsResult
from phoneemu.scenario import checks, loader
from phoneemu.scenario.model import Expectation, Step
from tests.helpers import FakePhoneView

HEAD = ("reproduces: test\nclusters:\n  lab: {tvs_ttl: 3600}\n  other: {}\n"
        "phones:\n  p: {count: 1, mac_start: 0A0000000001}\nsteps:\n")


def _load(steps: str) -> tuple[Step | Expectation, ...]:
    return loader.load_text(HEAD + steps, "x.yaml").steps


def test_https_step_forms() -> None:
    steps = _load("  - https: {phones: p, cluster: other}\n  - https: p\n  - expect: {https: trusted}\n")
    a, b, e = steps
    assert isinstance(a, Step) and a.kind == "https" and a.args == {"phones": ("p",), "cluster": "other"}
    assert isinstance(b, Step) and b.args == {"phones": ("p",), "cluster": None}
    assert isinstance(e, Expectation) and e.checks == {"https": "trusted"}
    assert "https" in loader.STEP_KINDS and loader.CHECKS["https"] == ("trusted", "untrusted", "plain")
    assert set(checks._CHECKS) == set(loader.CHECKS)


@pytest.mark.parametrize(("steps", "line", "text"), [
    ("  - https: {phones: p, cluster: nope}\n  - expect: {https: trusted}\n", 8, "unknown cluster 'nope'"),
    ("  - https: {phones: q}\n  - expect: {https: trusted}\n", 8, "unknown phone group 'q'"),
    ("  - https: {phones: p, port: 1}\n  - expect: {https: trusted}\n", 8, "unknown field"),
    ("  - https: {cluster: lab}\n  - expect: {https: trusted}\n", 8, "missing required field 'phones'"),
    ("  - https: p\n  - expect: {https: maybe}\n", 9, "unknown value 'maybe'"),
])
def test_https_errors_name_file_and_line(steps: str, line: int, text: str) -> None:
    with pytest.raises(ScenarioError) as err:
        _load(steps)
    assert f"x.yaml:{line}" in str(err.value) and text in str(err.value)


def _view(https: HttpsResult | None) -> FakePhoneView:
    return FakePhoneView(https=https)


def test_https_check_rule_and_status_read_the_last_result() -> None:
    ok = _view(HttpsResult(trusted=True, how="tvs", rule="E.7.1-https-vouched-by-tvs", reason="r"))
    bad = _view(HttpsResult(trusted=False, how="rejected", rule="E.7.1-https-tvs-unreachable", reason="r",
                            status="Host Not Found"))
    assert checks.evaluate("https", ok, "trusted") == ("trusted", True)
    assert checks.evaluate("https", bad, "trusted") == ("untrusted", False)
    assert checks.evaluate("https", _view(None), ["trusted", "untrusted"]) == ("none", False)
    assert checks.evaluate("rule", ok, "E.7.1-https-vouched-by-tvs")[1]
    assert not checks.evaluate("rule", ok, "E.7.1-https-cached")[1]
    assert checks.evaluate("rule", bad, "E.7.1")[1]
    assert checks.evaluate("status", bad, "Host Not Found")[1]
    assert not checks.evaluate("status", ok, "Host Not Found")[1]

