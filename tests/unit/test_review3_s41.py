"""Review of this session's later commits (r3): a limit asked for is never "no limit"; a tag with spaces
around it is a mistake (no ``--tag`` selects it); the fuzz progress line counts the acceptances §G forbids;
several ``--installed-*`` options are counted as options, not as text a path may hold."""

from __future__ import annotations

from collections import Counter

import pytest

from phoneemu.errors import ScenarioError
from phoneemu.fuzz.engine import _kinds
from phoneemu.phone import ways_out as wo
from phoneemu.scenario import loader
from tests.unit.test_walk_s41_scenario_polish import SCENARIO


@pytest.mark.parametrize("text", ["0.0000001", "0.0000004", ".0000004s"])
def test_a_positive_limit_below_a_microsecond_is_refused_not_no_limit(text: str) -> None:
    with pytest.raises(ValueError, match="below 1 µs"):
        loader.parse_time_limit(text)
    assert loader.parse_time_limit("0") == 0.0 and loader.parse_time_limit("0.000001") == 0.000001


def test_a_tag_with_spaces_around_it_is_a_file_line_mistake() -> None:
    with pytest.raises(ScenarioError) as err:
        loader.load_text(f"tags: [' ci ']\n{SCENARIO}", "t.yaml")
    assert "t.yaml:1 tags[0]: ' ci ' has spaces around it: --tag ci would not select it" in str(err.value)


def test_the_fuzz_progress_counts_acceptances_section_g_forbids() -> None:
    assert _kinds(Counter(crash=2)) == "2 crash(es), 0 hang(s)"
    assert _kinds(Counter({"crash": 0, "hang": 1, "accepted-unverified": 3})) == \
        "0 crash(es), 1 hang(s), 3 accepted unverified"


@pytest.mark.parametrize(("holding", "said"), [
    ("--installed-itl 'a --installed-ctl b/ITL.tlv'", "gives; a run without it"),
    ("--installed-itl a --installed-config-dir b", "give; a run without them"),
])
def test_installed_options_are_counted_as_options(holding: str, said: str) -> None:
    plain = {wo.FLASH_NOT_KEPT: "phoneemu fleet boot", wo.FLASH_STARTS_HOLDING: holding}
    lines = wo.way_out_lines("G.3.4-tvs-unreachable", "ITL", fill=plain, fleet=True)
    assert any(said in line for line in lines), lines
