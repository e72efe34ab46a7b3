"""The rule-id vocabulary is complete: every id written in the source is listed (phone.rule_ids)."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

from phoneemu.errors import ScenarioError, VerifyReason
from phoneemu.phone import rules
from phoneemu.phone.rule_ids import RULE_IDS, is_known
from phoneemu.scenario.loader import discover, load_file, load_text

ROOT = Path(__file__).resolve().parents[2]
# a section (``G.3.4``) or a bare letter (``D`` for firmware, spec §D) followed by the outcome
_ID = re.compile(r"[A-H](?:\.\d+)*-[a-z0-9]+(?:-[a-z0-9]+)*")
_FAIL_PREFIX = re.compile(r"_fail_rule\(\"([A-H](?:\.\d+)*)\"")


@functools.cache
def _sources() -> dict[Path, str]:
    """The text of every module of the source, read once for the module's tests (they only read it)."""
    return {path: path.read_text() for path in sorted((ROOT / "phoneemu").rglob("*.py"))}


@functools.cache
def _literals() -> frozenset[str]:
    """Rule-id string literals of the source, the vocabulary module left out (parsed once: two tests ask)."""
    found: set[str] = set()
    for path, text in _sources().items():
        if path.name == "rule_ids.py":
            continue
        for node in ast.walk(ast.parse(text, filename=str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and _ID.fullmatch(node.value):
                found.add(node.value)
    return frozenset(found)


def _composed() -> set[str]:
    """Ids composed at run time: ``f"F.6-{out}"`` and ``rules._fail_rule(prefix, reason)`` for every
    prefix the source passes it and every verification reason."""
    prefixes = {m.group(1) for text in _sources().values() for m in _FAIL_PREFIX.finditer(text)}
    assert {"D", "G.3", "G.4"} <= prefixes
    # decide_trust_list checks the header hash first (G.3.1-unsupported-hash): G.3-unsupported-hash
    # cannot be reached and is not in the vocabulary (rules module docstring)
    failures = {rules._fail_rule(p, r) for p in prefixes for r in VerifyReason} - {"G.3-unsupported-hash"}
    return {"F.6-fetched", "F.6-nothing-pending"} | failures


def test_every_rule_id_in_the_source_is_known() -> None:
    literals = _literals()
    assert len(literals) > 50  # the scan does find them
    assert {"D-wrong-load", "D-fetch-failed", "D-signed-by-image-key"} <= literals  # bare-letter ids too
    assert literals - RULE_IDS == set()
    assert _composed() - RULE_IDS == set()


def test_every_listed_id_is_used() -> None:
    assert RULE_IDS - _literals() - _composed() == set()


def test_prefixes() -> None:
    assert is_known("G.3") and is_known("G.3.4") and is_known("G.3.4-vouched-by-tvs") and is_known("E.7.1")
    assert not is_known("G.99") and not is_known("G") and not is_known("G.3.") and not is_known("g.3.4")
    assert is_known("D-wrong-load") and is_known("G.4-expired-signer") and not is_known("D-wrong")


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

