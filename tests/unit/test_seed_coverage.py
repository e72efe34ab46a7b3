"""docs/seed-coverage.md cannot rot: every scenario and expectation label it cites exists, and every
scenario in scenarios/ is cited at least once."""

from __future__ import annotations

import re
from pathlib import Path

from phoneemu.scenario.loader import discover, load_file
from phoneemu.scenario.model import Expectation

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "seed-coverage.md"
CATALOGUE = ROOT / "scenarios"
STATUSES = ("reproduced", "xfail", "gap", "not reproducible")

_SCENARIO = re.compile(r"`(scenarios/[\w.-]+\.yaml)`")
_LABEL = re.compile(r'"([^"]+)"')


def _rows() -> list[list[str]]:
    rows = []
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 6 and cells[0].isdigit():
            rows.append(cells)
    return rows


def _labels(path: Path) -> set[str]:
    scenario = load_file(path)
    return {s.label for s in scenario.steps if isinstance(s, Expectation) and s.label}


def test_table_has_rows_with_known_statuses() -> None:
    rows = _rows()
    assert len(rows) >= 50
    assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1)), "rows are numbered 1..N"
    for num, _heading, _passage, scen, labels, status in rows:
        assert status.startswith(STATUSES), f"row {num}: unknown status {status!r}"
        if status.startswith(("reproduced", "xfail")):
            assert _SCENARIO.search(scen) and _LABEL.search(labels), f"row {num}: {status} cites nothing"


def test_cited_scenarios_and_labels_exist() -> None:
    for num, _heading, _passage, scen, labels, _status in _rows():
        files = [ROOT / f for f in _SCENARIO.findall(scen)]
        for f in files:
            assert f.is_file(), f"row {num}: {f.relative_to(ROOT)} does not exist"
        known = set().union(*(_labels(f) for f in files)) if files else set()
        for label in _LABEL.findall(labels):
            assert label in known, f"row {num}: no expectation labelled {label!r} in {scen}"


def test_every_scenario_is_cited() -> None:
    cited = {f for r in _rows() for f in _SCENARIO.findall(r[3])}
    missing = sorted(str(p.relative_to(ROOT)) for p in discover([CATALOGUE])
                     if str(p.relative_to(ROOT)) not in cited)
    assert not missing, f"scenarios not cited in docs/seed-coverage.md: {missing}"
