"""What a scenario file's steps say reaches the run, or is refused naming file:line and field (found by
mutation testing of scenario/loader.py: a step's argument dropped, a step lost, or a message's hint
garbled went unnoticed by the loader's tests, and a CI run would have passed without doing what the
author wrote).

The rules: docs/scenarios.md's step table (``boot`` ``{phones, times}`` with ``times`` 1..100, ``set-key``
``{phones, key}``, ``capf`` ``{phones, auth_string}``, ``tamper`` ``{cluster, file, offset}``) and its
``holds_for`` forms; the loader's convention that every argument is typed when the file is loaded, and a
digit string that YAML would read as a number must be quoted."""

from __future__ import annotations

import pytest

from phoneemu.errors import ScenarioError
from phoneemu.scenario.loader import load_text
from phoneemu.scenario.model import Expectation, Step

HEAD = 'name: t\nphones:\n  p: {count: 20, mac_start: "0A0000001201"}\nsteps:\n'
#: the line of the first step of :data:`HEAD`
STEP_LINE = 5
EXPECT = "  - expect: {phones: p, config: accepted}\n"


def first_step(step: str) -> Step:
    """The first step of a scenario of ``step`` then an expectation."""
    loaded = load_text(HEAD + step + EXPECT, "t.yaml").steps[0]
    assert isinstance(loaded, Step)
    return loaded


def mistake(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_text(text, "t.yaml")
    return info.value


def test_boot_times_reaches_the_step_and_a_boot_without_times_loads() -> None:
    """``boot: {phones, times}``: the phones boot ``times`` times (a dropped ``times`` boots them once, and
    the scenario tests less than it says); ``times`` is optional."""
    assert first_step("  - boot: {phones: p, times: 3}\n").args == {"phones": ("p",), "times": 3}
    assert first_step("  - boot: {phones: p}\n").args == {"phones": ("p",)}
    assert first_step("  - reset: {phones: p, times: 100}\n").args["times"] == 100


def test_set_key_is_a_step_with_its_phones_and_key() -> None:
    """``set-key: {phones, key}`` types the key into the phones: the step is kept, with both."""
    key = "0123456789abcdef" * 2
    keyed = HEAD.replace('"0A0000001201"}', '"0A0000001201", profile: cp-7962}')  # takes 128-bit keys
    step = load_text(keyed + f'  - set-key: {{phones: p, key: "{key}"}}\n' + EXPECT, "t.yaml").steps[0]
    assert isinstance(step, Step) and (step.kind, step.args) == ("set-key", {"phones": ("p",), "key": key})


def test_a_capf_steps_auth_string_reaches_the_step_as_written() -> None:
    """``capf: {phones, auth_string}`` enters the authentication string: kept as the text written (a
    dropped one enrols with none, and a scenario about a wrong string would test the default)."""
    step = first_step('  - capf: {phones: p, auth_string: "0123"}\n')
    assert (step.kind, step.args) == ("capf", {"phones": ("p",), "auth_string": "0123"})
    assert first_step("  - capf: {phones: p}\n").args == {"phones": ("p",)}


def test_a_capf_steps_unquoted_auth_string_is_refused_naming_it() -> None:
    """An auth string of digits left unquoted is a number to YAML (0123 is 83): refused, not entered."""
    err = mistake(HEAD + "  - capf: {phones: p, auth_string: 0123}\n" + EXPECT)
    assert (err.file, err.line, err.path) == ("t.yaml", STEP_LINE, "steps[0].capf.auth_string")
    assert 'auth_string: "0123"' in err.message


@pytest.mark.parametrize("offset", [-(1 << 20), -1, 0, 1 << 20])
def test_a_tamper_offset_in_the_loaders_range_loads(offset: int) -> None:
    """``tamper``'s ``offset``: -1 MiB .. +1 MiB (negative counts from the end, as the lab reads it) loads
    as written; beyond it is refused below (the loader's range, docs/scenarios.md gives none)."""
    step = first_step(f"  - tamper: {{file: 'ITLSEP{{mac}}.tlv', offset: {offset}}}\n")
    assert step.args["offset"] == offset


@pytest.mark.parametrize("offset", [-(1 << 20) - 1, (1 << 20) + 1])
def test_a_tamper_offset_beyond_the_range_is_refused(offset: int) -> None:
    err = mistake(HEAD + f"  - tamper: {{file: 'ITLSEP{{mac}}.tlv', offset: {offset}}}\n" + EXPECT)
    assert (err.line, err.path) == (STEP_LINE, "steps[0].tamper.offset")
    assert "expected an integer in -1048576..1048576" in err.message


def test_holds_for_a_bare_count_is_refused_showing_the_mapping_to_write() -> None:
    """``holds_for: 18`` is none of the forms (all, none, a mapping): the mistake shows the count as the
    mapping the author meant, ``{at_least: 18}``."""
    for written in ("18", "1"):
        err = mistake(HEAD + f"  - expect: {{phones: p, config: accepted, holds_for: {written}}}\n")
        assert (err.line, err.path) == (STEP_LINE, "steps[0].expect.holds_for")
        assert f"(a count: write {{at_least: {written}}})" in err.message
    expectation = load_text(HEAD + "  - expect: {phones: p, config: accepted, holds_for: {at_least: 18}}\n",
                            "t.yaml").steps[0]
    assert isinstance(expectation, Expectation) and expectation.holds_for is not None
    assert expectation.holds_for.at_least == 18
