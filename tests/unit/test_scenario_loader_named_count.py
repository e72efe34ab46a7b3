"""``holds_for`` counts the phones its expectation names without listing them (docs/scenarios.md:
``holds_for`` bounds are counts or percentages of the phones named).

The rule: the phones named are the MAC spans of the groups named (``all``: every group) and the MACs
named, each phone once; counted from the spans, so that a group of 100 000 phones named by hundreds of
expectations loads in a moment (each listed its 100 000 MACs: 300 such expectations took 40 s)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.scenario.loader import _named_count, load_text
from phoneemu.scenario.model import Expectation, PhoneGroup


def _group(name: str, start: int, count: int) -> PhoneGroup:
    return PhoneGroup(name=name, where="t.yaml:1", cluster="lab", count=count, mac_start=f"{start:012X}")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 6), min_size=1, max_size=4), st.data())
def test_the_count_is_that_of_the_phones_listed(counts: list[int], data: st.DataObject) -> None:
    groups, start = {}, 0x0A0000000001
    for i, count in enumerate(counts):
        start += data.draw(st.integers(0, 3))  # groups side by side or apart, never sharing a MAC
        groups[f"g{i}"] = _group(f"g{i}", start, count)
        start += count
    macs = [mac for g in groups.values() for mac in g.macs()]
    refs = tuple(data.draw(st.lists(st.sampled_from(["all", *groups, *macs, *(m.lower() for m in macs)]),
                                    min_size=1, max_size=6)))
    listed: set[str] = set()
    for ref in refs:
        listed.update(macs if ref == "all" else groups[ref].macs() if ref in groups else [ref.upper()])
    assert _named_count(refs, groups) == len(listed)


def test_a_large_group_is_not_listed_to_count_it(monkeypatch: pytest.MonkeyPatch) -> None:
    def listed(self: PhoneGroup) -> list[str]:
        raise AssertionError(f"the {self.count} MACs of {self.name} listed to count them")

    monkeypatch.setattr(PhoneGroup, "macs", listed)
    text = ("name: t\nphones:\n  big: {mac_start: '0A0000000001', count: 100000}\nsteps:\n  - boot: big\n"
            "  - expect: {phones: [big, '0A0000000005'], itl: installed, holds_for: {at_least: '90%'}}\n")
    expectation = load_text(text, "t.yaml").steps[1]
    assert isinstance(expectation, Expectation) and expectation.holds_for is not None
    assert expectation.holds_for.at_least == 90_000  # 90% of 100 000, the MAC named one of them
