"""``holds_for`` on an expectation (docs/scenarios.md): what the loader makes of each form, and each
mistake reported as ``file:line steps[N].expect.holds_for...: problem`` before anything runs."""

from __future__ import annotations

import pytest

from phoneemu.errors import ScenarioError
from phoneemu.scenario.loader import load_text
from phoneemu.scenario.model import Expectation, HoldsFor

#: twenty phones in ``f``, one in ``one``; the expectation is line 7
_DOC = """\
name: t
phones:
  f: {{count: 20, mac_start: "0A0000004001"}}
  one: {{mac: "0A0000004101"}}
steps:
  - boot: all
  - expect: {{phones: {phones}, boot: ok, holds_for: {holds_for}}}
"""


def _loaded(holds_for: str, phones: str = "f") -> HoldsFor | None:
    steps = load_text(_DOC.format(holds_for=holds_for, phones=phones), "t.yaml").steps
    exp = steps[-1]
    assert isinstance(exp, Expectation)
    return exp.holds_for


def _refused(holds_for: str, phones: str = "f") -> str:
    with pytest.raises(ScenarioError) as info:
        load_text(_DOC.format(holds_for=holds_for, phones=phones), "t.yaml")
    return str(info.value)


@pytest.mark.parametrize(("written", "at_least", "at_most", "text"), [
    ("none", 0, 0, "none"),
    ("{at_least: 18}", 18, None, "at least 18"),
    ("{at_most: 2}", 0, 2, "at most 2"),
    ("{at_most: 0}", 0, 0, "at most 0"),
    ("{exactly: 3}", 3, 3, "exactly 3"),
    ("{exactly: 0}", 0, 0, "exactly 0"),
    ("{at_least: 15, at_most: 18}", 15, 18, "at least 15 and at most 18"),
    ('{at_least: "90%"}', 18, None, "at least 18 = 90%"),
    ('{at_least: "91%"}', 19, None, "at least 19 = 91%"),     # 18.2 phones: rounded up, the share is met
    ('{at_most: "12.5%"}', 0, 2, "at most 2 = 12.5%"),        # 2.5 phones: rounded down
    ('{exactly: "25%"}', 5, 5, "exactly 5 = 25%"),
    ('{at_least: "100%"}', 20, None, "at least 20 = 100%"),
    ("{at_least: 20}", 20, None, "at least 20"),
])
def test_forms_resolve_to_counts_of_the_phones_named(written: str, at_least: int, at_most: int | None,
                                                     text: str) -> None:
    assert _loaded(written) == HoldsFor(at_least=at_least, at_most=at_most, text=text)


def test_all_is_the_default() -> None:
    assert _loaded("all") is None
    steps = load_text(_DOC.replace(", holds_for: {holds_for}", "").format(phones="f"), "t.yaml").steps
    assert isinstance(steps[-1], Expectation) and steps[-1].holds_for is None


def test_counts_are_of_the_phones_the_expectation_names_each_once() -> None:
    """``all`` is 21 phones; a group and a MAC inside it name 20, not 21."""
    assert _loaded("{at_least: 21}", phones="all") == HoldsFor(at_least=21, text="at least 21")
    assert "21 is more than the 20 phones the expectation names" in \
        _refused("{at_least: 21}", phones='[f, "0A0000004001"]')
    assert _loaded("{at_least: 2}", phones="[f, one]") == HoldsFor(at_least=2, text="at least 2")


@pytest.mark.parametrize(("written", "where", "problem"), [
    ("{at_least: -1}", "holds_for.at_least", "a count of phones cannot be negative, got -1"),
    ("{at_most: -3}", "holds_for.at_most", "a count of phones cannot be negative, got -3"),
    ("{at_least: 21}", "holds_for.at_least", "21 is more than the 20 phones the expectation names"),
    ("{exactly: 25}", "holds_for.exactly", "25 is more than the 20 phones the expectation names"),
    ("{at_least: 10, at_most: 5}", "holds_for.at_least",
     "at least 10 is more than at most 5 (of the 20 phones the expectation names): no count of phones "
     "meets both"),
    ('{at_least: "55%", at_most: "52%"}', "holds_for.at_least",
     "at least 11 = 55% is more than at most 10 = 52%"),
    ('{at_least: "120%"}', "holds_for.at_least", "a percentage is 0% to 100%, got '120%'"),
    ('{at_least: "ninety%"}', "holds_for.at_least",
     "expected a count of phones (0..20) or a percentage such as \"90%\", got the text 'ninety%'"),
    ("{at_least: 0.9}", "holds_for.at_least",
     "expected a count of phones (0..20) or a percentage such as \"90%\", got the number 0.9"),
    ("{at_least: true}", "holds_for.at_least", "got the boolean true"),
    ('{at_least: "9.125%"}', "holds_for.at_least", "got the text '9.125%'"),
    ('{exactly: "33%"}', "holds_for.exactly",
     "33% of the 20 phones the expectation names is 6.6 phones, not a whole number: give a count"),
    ("{at_leest: 3}", "holds_for.at_leest", "unknown field — did you mean 'at_least'? (expected one of: "
     "at_least, at_most, exactly)"),
    ("{exactly: 3, at_most: 4}", "holds_for.at_most", "exactly is a bound of its own"),
    ("{}", "holds_for", "empty mapping: give at_least, at_most or exactly"),
    ("some", "holds_for", "expected all, none, or a mapping such as {at_least: 18}"),
    ("nnone", "holds_for", "got the text 'nnone' — did you mean 'none'?"),
    ("18", "holds_for", "got the number 18 (a count: write {at_least: 18})"),
    ("[1, 2]", "holds_for", "got a list of 2"),
    ("{at_least: 0}", "holds_for", "holds whatever the phones do (0 to 20 of the 20 phones the expectation "
     "names match): give a bound that can fail"),
    ("{at_most: 20}", "holds_for", "holds whatever the phones do"),
    ('{at_least: "0%", at_most: "100%"}', "holds_for", "holds whatever the phones do"),
])
def test_mistakes_name_the_line_and_field(written: str, where: str, problem: str) -> None:
    said = _refused(written)
    assert said.startswith(f"t.yaml:7 steps[1].expect.{where}: "), said
    assert problem in said, said


def test_one_phone_is_said_as_one() -> None:
    assert "2 is more than the 1 phone the expectation names" in _refused("{at_least: 2}", phones="one")
