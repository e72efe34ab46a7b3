"""A lab cluster's ``capf: {read_timeout, session_timeout, max_in_progress}`` (ours, as ``lab serve
--capf-*``; spec §F.6, §F.8), checked when the file is loaded; the checks a slow phone's CAPF session is
judged by: ``reason`` text in a coded rejection, ``capf_pending``, ``capf_server``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.errors import ScenarioError, VerifyReason
from phoneemu.scenario import checks, loader
from phoneemu.scenario.loader import load_text

SCENARIO = """\
clusters:
  lab:
    capf: {CAPF}
phones:
  p: {mac: "0A0000006401"}
steps:
  - boot: p
  - expect: {phones: p, itl: installed}
"""


def _load(capf: str) -> Any:
    return load_text(SCENARIO.replace("{CAPF}", capf), "slow.yaml")


def test_a_clusters_capf_bounds_are_loaded_as_numbers() -> None:
    s = _load("{read_timeout: 1.5, session_timeout: 4, max_in_progress: 3}")
    assert s.clusters["lab"].options["capf"] == {"read_timeout": 1.5, "session_timeout": 4.0,
                                                 "max_in_progress": 3}
    assert isinstance(s.clusters["lab"].options["capf"]["session_timeout"], float)
    assert _load("{read_timeout: 2}").clusters["lab"].options["capf"] == {"read_timeout": 2.0}
    assert _load("{}").clusters["lab"].options["capf"] == {}  # every bound the server's default


@pytest.mark.parametrize(("capf", "field", "words"), [
    ("{read_timeout: 0}", "clusters.lab.capf.read_timeout", "expected seconds from 0.1 to 86400"),
    ('{read_timeout: "1.5"}', "clusters.lab.capf.read_timeout", "got '1.5'"),
    ("{read_timeout: true}", "clusters.lab.capf.read_timeout", "got True"),
    ("{read_timeout: .nan}", "clusters.lab.capf.read_timeout", "expected seconds"),
    ("{session_timeout: .inf}", "clusters.lab.capf.session_timeout", "expected seconds"),
    ("{session_timeout: 86401}", "clusters.lab.capf.session_timeout", "got 86401"),
    ("{max_in_progress: 1.5}", "clusters.lab.capf.max_in_progress", "expected an integer in 0..100000"),
    ("{max_in_progress: -1}", "clusters.lab.capf.max_in_progress", "expected an integer"),
    ("{read_timout: 1.5}", "clusters.lab.capf.read_timout", "did you mean 'read_timeout'"),
    ("30", "clusters.lab.capf", "expected a mapping"),
])
def test_a_bad_capf_bound_is_a_file_line_mistake(capf: str, field: str, words: str) -> None:
    with pytest.raises(ScenarioError) as err:
        _load(capf)
    assert err.value.file == "slow.yaml" and err.value.line == 3 and err.value.path == field, str(err.value)
    assert words in err.value.message, err.value.message


def test_an_external_cluster_takes_no_capf_bounds() -> None:
    text = SCENARIO.replace("    capf: {CAPF}",
                            '    external: {tftp: "10.0.0.1"}\n    capf: {read_timeout: 1}')
    with pytest.raises(ScenarioError, match="a built-in lab cluster's option") as err:
        load_text(text, "real.yaml")
    assert err.value.path == "clusters.lab.capf"


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10**6), st.booleans(),
                 st.text(max_size=5)))
def test_any_read_timeout_is_taken_in_range_or_refused_naming_it(value: object) -> None:
    """Whatever YAML reads, a bound is a float in 0.1..86400 or a ScenarioError naming the field."""
    import json

    written = json.dumps(value) if not (isinstance(value, float) and value != value) else ".nan"
    written = {"Infinity": ".inf", "-Infinity": "-.inf"}.get(written, written)
    try:
        got = _load(f"{{read_timeout: {written}}}").clusters["lab"].options["capf"]["read_timeout"]
    except ScenarioError as exc:
        assert exc.path is not None and exc.path.startswith("clusters.lab.capf"), str(exc)
        return
    assert isinstance(got, float) and 0.1 <= got <= 86_400


def _coded(reason: str) -> Any:
    d = SimpleNamespace(accepted=False, needs_tvs=None, reason_code=VerifyReason.OTHER, reason=reason,
                        rule="F.6-capf-rejected")
    return SimpleNamespace(report=SimpleNamespace(decisions=[d]))


def test_reason_text_matches_a_rejection_that_has_a_code() -> None:
    """docs/scenarios.md: text that is no code is matched in the decisions' reasons as written, also for a
    rejection coded ``other`` (a CAPF session ended by the server; was: only ``other`` was seen)."""
    v = _coded("CAPF ended the session: failure during keygen: the CAPF server ended the session 1.5s "
               "into this phone's 2.5s key generation (reason 7)")
    actual, held = checks.evaluate("reason", v, "failure during keygen")
    assert held and "failure during keygen" in actual[0]
    assert checks.evaluate("reason", v, "other") == (["other"], True)     # codes as before
    assert not checks.evaluate("reason", v, "unknown-signer")[1]
    assert not checks.evaluate("reason", v, "session 3.0s into")[1]
    assert not checks.evaluate("reason", _coded("the signer expired"), "expired")[1]  # a code: codes only


def test_capf_pending_and_capf_server_read_the_phones_lab() -> None:
    assert loader.CHECKS["capf_pending"] == ("install", "fetch", "delete", "none")
    assert loader.CHECKS["capf_server"] is None
    lab_side = SimpleNamespace(report=None, capf_pending=lambda: "install",
                               capf_server_log=lambda: "op=install timeout: nothing for 1.5s in state "
                                                       "wait-keygen (...); END_SESSION REASON 7 sent")
    assert checks.evaluate("capf_pending", lab_side, "install") == ("install", True)
    assert not checks.evaluate("capf_pending", lab_side, "none")[1]
    assert checks.evaluate("capf_server", lab_side, "END_SESSION reason 7")[1]  # any case
    assert not checks.evaluate("capf_server", lab_side, "installed")[1]
    nothing = SimpleNamespace(report=None, capf_server_log=lambda: None)  # no session, no lab method
    assert checks.evaluate("capf_pending", nothing, "none") == ("unknown", False)
    assert checks.evaluate("capf_server", nothing, "none") == ("none", True)
