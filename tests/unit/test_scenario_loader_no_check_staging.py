"""An expectation that checks nothing is told so beside its other mistakes (docs/scenarios.md: every
independent mistake at once; a misspelt key is not also told missing).

The rule: an unknown key that may be a misspelt check (near a check, or near no key at all) is its own
mistake alone; one near ``phones``, ``xfail``, ``label`` or ``holds_for`` is no check, and an expectation
of such keys alone is also told that it checks nothing (was: only on the next run, since 17d5f8c)."""

from __future__ import annotations

import pytest

from phoneemu.errors import ScenarioError
from phoneemu.scenario.loader import load_text


def mistakes(text: str) -> list[str]:
    """Each mistake of ``text`` (as t.yaml), as printed."""
    with pytest.raises(ScenarioError) as info:
        load_text(text, "t.yaml")
    return [str(m) for m in info.value.mistakes]


def expectation(body: str) -> str:
    return f'name: t\nphones:\n  p: {{mac: "0A0000000001"}}\nsteps:\n  - boot: p\n  - expect: {{{body}}}\n'


def test_an_expectation_with_no_check_beside_a_misspelt_phones_is_told_both() -> None:
    """``expect: {phone: p}`` was told ``phone`` alone; after fixing it, on the next run, that it checks
    nothing: a key meant as ``phones`` (or xfail, label, holds_for) is no check."""
    found = mistakes(expectation("phone: p, lable: x"))
    assert [m.split(" ")[1].rstrip(":") for m in found] == [
        "steps[1].expect.phone", "steps[1].expect.lable", "steps[1].expect"], found
    assert found[2].startswith("t.yaml:6 steps[1].expect: an expectation needs at least one check"), found


@pytest.mark.parametrize("body", ["phones: p, lockd_out: true", "phones: p, zzzz: 1"])
def test_a_misspelt_check_is_not_also_told_as_no_check(body: str) -> None:
    """A key that may be a misspelt check (near one, or near nothing) is its own mistake alone."""
    found = mistakes(expectation(body))
    assert len(found) == 1 and "unknown field" in found[0], found
