"""The scenario catalogue runs green against the built-in lab (issue 5: the tests run it too).

Each file is its own test so that a failure names the scenario and pytest-xdist spreads them.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from phoneemu.scenario.loader import discover, load_file
from phoneemu.scenario.reports import render_text
from phoneemu.scenario.results import Outcome, RunSummary
from phoneemu.scenario.runner import RunOptions, run_scenario

CATALOGUE = Path(__file__).resolve().parents[2] / "scenarios"
FILES = discover([CATALOGUE])


def test_catalogue_is_not_empty() -> None:
    assert len(FILES) >= 20


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario_passes(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Green, and nothing logged at WARNING: ``phoneemu run scenarios/`` (the README's first command) says
    nothing on stderr — what a scenario rehearses on purpose (a refused handshake, a cut CAPF session) is
    in its lab's request log, not a warning."""
    caplog.set_level(logging.WARNING)
    scenario = load_file(path)
    head = path.read_text().splitlines()[0]
    assert head.startswith("# Reproduces:"), f"{path.name} must name the section it reproduces"
    assert scenario.reproduces, f"{path.name}: a catalogue file's reproduces: field names the section"
    result = asyncio.run(run_scenario(scenario, RunOptions()))
    report = render_text(RunSummary(scenarios=[result]), verbose=True)
    assert not result.outcome.bad, report
    assert result.outcome in (Outcome.PASS, Outcome.XFAIL)
    assert result.expectations, report
    warned = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]
    assert not warned, warned
