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


README = ROOT / "README.md"
_README_ROW = re.compile(r"^\| `([\w.-]+)` \| (.+) \|$")


def _readme_catalogue() -> list[str]:
    """The scenario names of README's catalogue table (between its header and the first blank line)."""
    lines = README.read_text().splitlines()
    start = lines.index("| Scenario | Reproduces |")
    names = []
    for line in lines[start + 2:]:
        if not line.strip():
            break
        m = _README_ROW.match(line)
        assert m, f"README catalogue row not of the form | `name` | reproduces |: {line!r}"
        names.append(m.group(1))
    return names


def test_readme_catalogue_names_every_scenario_and_nothing_else() -> None:
    names = _readme_catalogue()
    assert len(names) == len(set(names)), "a scenario listed twice in README's catalogue table"
    for name in names:
        assert (CATALOGUE / f"{name}.yaml").is_file(), f"README catalogue: scenarios/{name}.yaml is no file"
    on_disk = {p.stem for p in discover([CATALOGUE])}
    missing = sorted(on_disk - set(names))
    assert not missing, f"scenarios not in README's catalogue table: {missing}"


def test_every_scenario_path_named_in_the_docs_exists() -> None:
    """Any `scenarios/NAME.yaml` the README or docs/ mention (not only the coverage tables) is a file."""
    for doc in (README, *sorted((ROOT / "docs").glob("*.md"))):
        for rel in re.findall(r"(?<![\w-])scenarios/[\w.-]+\.yaml", doc.read_text()):
            assert (ROOT / rel).is_file(), f"{doc.relative_to(ROOT)} names {rel}, which does not exist"


def test_row_cross_references_point_at_rows() -> None:
    """A "row N" / "rows N and M" in a row's text names an existing row other than itself."""
    rows = _rows()
    for num, *rest in rows:
        for text in rest:
            for ref in re.findall(r"\brows? (\d+)(?: and (\d+))?", text):
                for n in filter(None, ref):
                    assert 1 <= int(n) <= len(rows) and n != num, f"row {num}: reference to row {n}"


def _spec_sections(text: str) -> set[str]:
    """The spec sections after "spec " in a reproduces text: "spec G.6 (3), E.7.2" -> {G.6 (3), E.7.2}."""
    m = re.search(r"\bspec ((?:[A-H](?:\.\d+)*(?!\w)(?: \(\d\))?(?:, )?)+)", text)
    return {s.strip() for s in m.group(1).split(",") if s.strip()} if m else set()


def test_readme_catalogue_cites_each_files_spec_sections() -> None:
    """README's "Reproduces" column gives the spec sections of the file's own ``reproduces:`` (the prose
    around them may say more): a section added to a file shows in the table too."""
    lines = README.read_text().splitlines()
    rows = {m.group(1): m.group(2) for line in lines[lines.index("| Scenario | Reproduces |") + 2:]
            if (m := _README_ROW.match(line))}
    checked = 0
    for path in discover([CATALOGUE]):
        scenario = load_file(path)
        want = _spec_sections(scenario.reproduces)
        assert want, f"{path.name}: reproduces names no spec section"
        assert _spec_sections(rows[scenario.name]) == want, (scenario.name, rows[scenario.name], sorted(want))
        checked += 1
    assert checked >= 40
