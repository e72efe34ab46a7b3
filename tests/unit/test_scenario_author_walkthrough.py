"""A scenario author's walk-through (docs/scenarios.md alone): the usual mistakes each said as one
``file:line field:`` mistake a voice engineer can act on, before anything runs (exit 2) — not in
PyYAML's or Python's own words (``NoneType``, ``'\\t' that cannot start any token``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.errors import ScenarioError
from phoneemu.scenario.loader import load_text

_GOOD = """\
name: walk
phones:
  p: {mac: "0A0000006001"}
steps:
  - boot: p
  - expect: {phones: p, itl: installed}
"""


def _refused(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_text(text, "t.yaml")
    return info.value


def test_a_step_with_no_value_is_said_as_nothing_not_nonetype() -> None:
    """``- expect:`` with its checks forgotten was ``expected a mapping, got NoneType``."""
    err = _refused(_GOOD + "  - expect:\n")
    assert str(err) == "t.yaml:7 steps[2].expect: expected a mapping, got nothing (an empty value)"


@pytest.mark.parametrize(("step", "got"), [
    ("  - clock: 3d\n", "got the text '3d'"),
    ("  - expect: [p]\n", "got a list of 1"),
    ("  - network: 5\n", "got the number 5"),
])
def test_a_value_where_a_mapping_belongs_is_said_as_written(step: str, got: str) -> None:
    """Was ``got str`` / ``got list`` / ``got int``: Python's type names, not what the file holds."""
    err = _refused(_GOOD + step)
    assert err.line == 7 and f"expected a mapping, {got}" in str(err)
    assert "str" not in str(err).split("got", 1)[1].split("'")[0]


def test_a_tab_is_named_with_what_to_write_instead() -> None:
    err = _refused(_GOOD.replace("  p: {mac", "\tp: {mac"))
    assert err.line == 3 and "at column 1" in str(err)
    assert "a TAB: YAML indents" in str(err) and "with spaces, never TABs" in str(err)


def test_a_second_document_is_named_as_a_second_scenario() -> None:
    err = _refused(_GOOD + "---\n" + _GOOD.replace("walk", "walk-2"))
    assert err.line == 7
    assert "this '---' starts a second document: a scenario file holds one scenario" in str(err)


@pytest.mark.parametrize("name", ["0A0000006002", "0a:00:00:00:60:02"])
def test_a_group_named_like_a_mac_is_refused(name: str) -> None:
    """``phones: "0A0000006002"`` named the group of that name (phone 0A0000006001), never the phone
    0A0000006002 of group q: the expectation silently checked another phone."""
    text = _GOOD.replace('  p: {mac: "0A0000006001"}', f'  "{name}": {{mac: "0A0000006001"}}\n'
                         '  q: {mac: "0A0000006002"}').replace("phones: p", "phones: all")
    text = text.replace("- boot: p", "- boot: all")
    err = _refused(text)
    assert err.line == 3 and err.path == f"phones.{name}"
    assert "a group name that reads as a MAC" in str(err)


def test_group_names_that_are_not_macs_still_load() -> None:
    text = _GOOD.replace("  p: {mac", "  floor-0A: {mac").replace("phones: p", "phones: floor-0A")
    assert load_text(text.replace("- boot: p", "- boot: floor-0A"), "t.yaml").phones["floor-0A"].count == 1


def test_run_refuses_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Through ``phoneemu run``: one line naming file:line and the field, exit 2, nothing ran."""
    path = tmp_path / "a.yaml"
    path.write_text(_GOOD + "  - expect:\n", encoding="utf-8")
    assert main(["run", str(path)]) == 2
    out = capsys.readouterr()
    assert f"{path}:7 steps[2].expect: expected a mapping, got nothing" in out.err
    assert "PASS" not in out.out
