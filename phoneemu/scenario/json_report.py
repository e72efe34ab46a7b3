"""The JSON report of a run (``run --json``): one document, every phone's checks, decisions and timeline.

A scenario's ``error_step`` is the step it was in when its steps ended (an ERROR's), ``started`` when it
started (UTC); ``stopped`` and ``not_run`` list the scenarios of an interrupted run stopped under way and
never started. The document is written a scenario at a time (:func:`write_json`), whole or absent. A run
that ran nothing still writes one saying so (:func:`write_json_not_run`: ``ran`` false, its
``mistakes``); a run that ran says ``ran`` true. The text and JUnit reports are
:mod:`phoneemu.scenario.reports`'.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from phoneemu import json_doc
from phoneemu.errors import ScenarioError
from phoneemu.files import write_output, write_output_text
from phoneemu.scenario.results import ExpectationResult, Outcome, RunSummary, ScenarioResult

__all__ = ["to_json", "write_json", "write_json_not_run"]


def _scenario_json(s: ScenarioResult) -> dict[str, Any]:
    return {
        "name": s.name, "path": s.path, "reproduces": s.reproduces, "tags": s.tags,
        "outcome": s.outcome.value,
        "error": s.error, "duration_s": round(s.duration_s, 4), "started": _utc_text(s.started_at),
        "error_step": s.last_step if s.error is not None else None, "error_trace": s.error_trace,
        "phones": s.phones, "capture": s.capture,
        "capture_stopped": s.capture_stopped.as_dict() if s.capture_stopped is not None else None,
        "expectations": [
            {"where": e.where, "label": e.label, "xfail": e.xfail, "outcome": e.outcome.value,
             "duration_s": round(e.duration_s, 4), **_counts(e),
             "checks": [{"phone": c.phone, "check": c.check, "expected": c.expected, "actual": c.actual,
                         "held": c.held} for c in e.checks],
             "timelines": _failed_timelines(e),
             "deciding": dict(e.deciding), "decisions": {p: dict(d) for p, d in e.decisions.items()}}
            for e in s.expectations
        ],
    }


def _counts(e: ExpectationResult) -> dict[str, Any]:
    """``holds_for`` (``all``, ``none``, ``at least 18 = 90%`` ...), how many phones it ``named`` and
    ``matched`` (every check held), and the bound as counts (``at_least``, ``at_most``: null for none)."""
    at_least, at_most = e.needed()
    return {"holds_for": e.holds_for.text if e.holds_for is not None else "all",
            "named": len(e.named_phones()), "matched": len(e.matched_phones()),
            "at_least": at_least, "at_most": at_most}


def _failed_timelines(e: ExpectationResult) -> dict[str, list[str]]:
    """The timeline of each phone a failure explains (each that failed a check; with ``holds_for`` and too
    many phones matched, each that matched), the phones gathered in one pass over the checks: 100,000
    phones are not 100,000 passes."""
    shown = {c.phone for c in e.shown_checks()}
    return {p: t for p, t in e.timelines.items() if p in shown}


def _utc_text(at: float | None) -> str | None:
    """``2026-06-01T09:30:00Z``: the JSON report's time of a start (None: it never started)."""
    if at is None or not math.isfinite(at):
        return None
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_json(summary: RunSummary) -> dict[str, Any]:
    """The JSON report as one document (:func:`write_json` writes it a scenario at a time)."""
    return _json_doc(summary, [_scenario_json(s) for s in summary.scenarios])


def _json_doc(summary: RunSummary, scenarios: list[dict[str, Any]]) -> dict[str, Any]:
    from phoneemu import version_text

    return {
        "ok": summary.ok,
        "ran": True,  # was absent (only write_json_not_run's false): d["ran"] raised KeyError on a run
        "interrupted": summary.interrupted,
        "stopped": summary.stopped,
        "not_run": summary.not_run,
        "duration_s": round(summary.duration_s, 3),
        "counts": _every_outcome(summary.counts()),
        "expectation_counts": _every_outcome(summary.expectation_counts()),
        "scenarios": scenarios,
        "phoneemu": version_text(),
    }


def _every_outcome(counts: Mapping[str, int]) -> dict[str, int]:
    """``counts`` by outcome with every outcome, 0 for those none had (was: left out, so that
    ``doc["counts"]["FAIL"]`` raised KeyError on a green run), in the order PASS, FAIL, XFAIL, XPASS,
    ERROR."""
    return {o.value: counts.get(o.value, 0) for o in Outcome}


def _as_json_default_str(value: Any) -> Any:
    """``value`` with what ``json.dumps(..., default=str)`` would pass to ``str`` already made a ``str``
    (a check's expected or actual value may be any object): :func:`json_doc.dumps_pieces` has no
    ``default``. Keys are left as they are (``default`` is never applied to them either)."""
    if value is None or isinstance(value, str | int | float):
        return value
    if isinstance(value, dict):
        return {k: _as_json_default_str(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_json_default_str(v) for v in value]
    return str(value)


def write_json(summary: RunSummary, path: Path) -> None:
    """The JSON report, written a scenario at a time (memory: one scenario's text, not the document's:
    every failed phone's timeline is in it), whole or absent (:func:`~phoneemu.files.write_output_text`);
    the same bytes as ``json_doc.dumps(to_json(summary), indent=2, default=str) + "\\n"``."""
    scenarios = (_as_json_default_str(_scenario_json(s)) for s in summary.scenarios)
    write_output_text(path, json_doc.dumps_pieces(_json_doc(summary, []), "scenarios", scenarios, indent=2))


def write_json_not_run(mistakes: tuple[ScenarioError, ...], path: Path, *, interrupted: bool = False) -> None:
    """The JSON report of a run that ran nothing (module rules): ``ok`` false, ``ran`` false, no scenario,
    ``mistakes`` (each: ``file``, ``line``, ``field``, ``problem`` and the ``text`` printed; none for a
    run ``interrupted`` before any scenario started: an interrupt is no mistake)."""
    from phoneemu import version_text

    doc = {"ok": False, "ran": False, "interrupted": interrupted, "stopped": [], "not_run": [],
           "duration_s": 0.0, "counts": _every_outcome({}), "expectation_counts": _every_outcome({}),
           "scenarios": [],
           "mistakes": [] if interrupted else [{"file": m.file, "line": m.line, "field": m.path,
                                                 "problem": m.message, "text": str(m)} for m in mistakes],
           "phoneemu": version_text()}
    write_output(path, (json_doc.dumps(doc, indent=2) + "\n").encode("utf-8"))
