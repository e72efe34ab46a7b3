"""Properties of the scenario loader (design §3.10): whatever a scenario file holds, loading it either
succeeds or raises ScenarioError naming the file — never an exception of PyYAML's constructors."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.errors import ScenarioError
from phoneemu.scenario.loader import load_text

SETTINGS = settings(max_examples=150, deadline=None)

DOC = """\
name: prop
reproduces: spec G.2
phones: {p: {count: 1}}
steps:
  - boot: p
  - expect: {phones: p, boot: ok}
description: VALUE
"""

# scalars YAML resolves by their form (dates, numbers, booleans) or by an explicit tag
_scalars = (
    st.from_regex(r"\A[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ][0-9]{1,2}:[0-9]{2}:[0-9]{2}(\.[0-9]*)?"
                  r"( ?(Z|[-+][0-9]{1,2}(:[0-9]{2})?))?)?\Z")
    | st.tuples(st.sampled_from(["!!int", "!!float", "!!bool", "!!timestamp", "!!binary", "!!null", "!!str"]),
                st.from_regex(r"\A[-+0-9a-zA-Z.:_ ]{0,12}\Z")).map(" ".join)
    | st.text(st.characters(codec="utf-8"), max_size=30)
)


@SETTINGS
@given(_scalars)
def test_any_scalar_loads_or_is_a_scenario_error(value: str) -> None:
    with contextlib.suppress(ScenarioError):
        load_text(DOC.replace("VALUE", value), "prop.yaml")
