"""A phone group named like a MAC is refused only when it shadows a phone (docs/scenarios.md, "Phones are
named by ..."): ``phones: NAME`` names the group first, so a name that is the MAC of one of the scenario's
phones hides that phone; a hex-looking name that is no phone's MAC hides nothing and loads."""

from __future__ import annotations

import pytest

from phoneemu.errors import ScenarioError
from phoneemu.scenario.loader import load_text
from phoneemu.scenario.model import Expectation


def _scenario(groups: str, phones: str) -> str:
    return (f"name: names\nphones:\n{groups}steps:\n  - boot: all\n"
            f"  - expect: {{phones: {phones}, itl: installed}}\n")


@pytest.mark.parametrize("name", ["cafe00000001", "CAFE00000001", "ca:fe:00:00:00:01"])
def test_a_hex_name_that_is_no_phones_mac_loads(name: str) -> None:
    """Was refused ("a group name that reads as a MAC ... would name this group, not the phone of that
    MAC"): there is no such phone, nothing is shadowed, and a step naming it names the group."""
    text = _scenario(f'  "{name}": {{mac_start: "0A0000006001", count: 2}}\n', f'"{name}"')
    scenario = load_text(text, "t.yaml")
    assert scenario.phones[name].count == 2
    last = scenario.steps[-1]
    assert isinstance(last, Expectation) and last.phones == (name,)


def test_a_one_phone_group_named_by_its_own_mac_loads() -> None:
    """Either reading names the same phone: nothing is shadowed."""
    text = _scenario('  "0A0000006001": {mac: "0A0000006001"}\n', '"0A0000006001"')
    assert load_text(text, "t.yaml").phones["0A0000006001"].count == 1


def test_a_name_that_is_another_groups_phone_is_refused_naming_it() -> None:
    text = _scenario('  "0A0000006002": {mac: "0A0000006001"}\n  q: {mac: "0A0000006002"}\n', "all")
    with pytest.raises(ScenarioError) as info:
        load_text(text, "t.yaml")
    err = info.value
    assert err.line == 3 and err.path == "phones.0A0000006002"
    assert "names this group, never phone 0A0000006002 of group 'q'" in str(err)


def test_a_name_that_is_one_of_its_own_phones_is_refused() -> None:
    """``phones: "0A0000006001"`` would name both phones of the group, never that one alone."""
    text = _scenario('  "0A0000006001": {mac_start: "0A0000006001", count: 2}\n', "all")
    with pytest.raises(ScenarioError, match=r"never phone 0A0000006001 alone \(one of this group's 2\)"):
        load_text(text, "t.yaml")
