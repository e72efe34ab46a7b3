"""The rule-id vocabulary is complete: every id written in the source is listed (phone.rule_ids)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from phoneemu.errors import ScenarioError
from phoneemu.phone.rule_ids import RULE_IDS, is_known
from phoneemu.scenario.loader import discover, load_file, load_text

ROOT = Path(__file__).resolve().parents[2]
_ID = re.compile(r"[A-H]\.\d+(?:\.\d+)*-[a-z0-9]+(?:-[a-z0-9]+)*")


def _literals() -> set[str]:
    """Rule-id string literals of the source, the vocabulary module left out."""
    found: set[str] = set()
    for path in (ROOT / "phoneemu").rglob("*.py"):
        if path.name == "rule_ids.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _ID.fullmatch(node.value):
                found.add(node.value)
    return found


def test_every_rule_id_in_the_source_is_known() -> None:
    literals = _literals()
    assert len(literals) > 50  # the scan does find them
    assert literals - RULE_IDS == set()
    assert {"F.6-fetched", "F.6-nothing-pending"} <= RULE_IDS  # written as f"F.6-{out}"


def test_every_listed_id_is_used() -> None:
    assert RULE_IDS - _literals() == {"F.6-fetched", "F.6-nothing-pending"}


def test_prefixes() -> None:
    assert is_known("G.3") and is_known("G.3.4") and is_known("G.3.4-vouched-by-tvs") and is_known("E.7.1")
    assert not is_known("G.99") and not is_known("G") and not is_known("G.3.") and not is_known("g.3.4")


def test_catalogue_rules_are_known() -> None:
    for f in discover([str(ROOT / "scenarios")]):
        load_file(f)  # raises on an unknown rule


@pytest.mark.parametrize(("value", "words"), [("G.99", "unknown rule 'G.99'"),
                                              ("G.3.4-vouched-by-tv", "did you mean G.3.4-vouched-by-tvs")])
def test_unknown_rule_refused_at_load_time(value: str, words: str) -> None:
    text = f"reproduces: x\nphones:\n  p: {{mac: 0A0000000001}}\nsteps:\n  - boot: p\n" \
           f"  - expect: {{phones: p, rule: {value}}}\n"
    with pytest.raises(ScenarioError) as info:
        load_text(text, "t.yaml")
    assert info.value.line == 6 and info.value.path == "steps[1].expect.rule" and words in str(info.value)

