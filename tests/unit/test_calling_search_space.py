"""The lab's dial plan (seed "Authorization", our convention: phoneemu/lab/dial_plan.py): its rules, the
``calling-search-space`` operation — persisted state, a hand-edited state, scenario admin steps refused
with ``file:line field`` when the file is loaded, the CLI — and the ``call_status`` check."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from phoneemu.cli import main
from phoneemu.errors import DecodeError, EncodeError, ScenarioError
from phoneemu.lab import dial_plan
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.dial_plan import DialPlan
from phoneemu.lab.state import STATE_FILE, load_state
from phoneemu.scenario import checks
from phoneemu.scenario.loader import load_text
from phoneemu.scenario.model import Expectation, Step
from tests.helpers import copy_cluster, lab_template

A, B, C = "0A00000C6601", "0A00000C6602", "0A00000C6603"

template = lab_template("dialplan", seed=31, phones={A: {}, B: {}, C: {}})


# -- the rules ---------------------------------------------------------------------------------------------

def test_routing_none_partition_and_css() -> None:
    assert dial_plan.routing_refusal(DialPlan(), DialPlan(), called_name="SEPB") is None
    assert dial_plan.routing_refusal(DialPlan(css=("X",)), DialPlan(partition="X"),
                                     called_name="SEPB") is None
    why = dial_plan.routing_refusal(DialPlan(css=("Y",)), DialPlan(partition="X"), called_name="SEPB")
    assert why is not None and "SEPB is in partition X" in why and "space Y" in why
    assert dial_plan.routing_refusal(DialPlan(css=("x",)), DialPlan(partition="X"), called_name="B")  # exact


@pytest.mark.parametrize(("name", "words"), [
    ("", "1..50"), ("a" * 51, "1..50"), ("with space", "letters, digits"), ("<None>", "letters"),
    ("Exéc", "letters"), (5, "expected a partition name (text)"), (None, "(text)"),
])
def test_bad_names(name: object, words: str) -> None:
    problem = dial_plan.name_problem(name)
    assert problem is not None and words in problem


def test_good_names_and_the_none_partition() -> None:
    for name in ("Executives", "a", "a" * 50, "PT_Internal-2.b"):
        assert dial_plan.name_problem(name) is None
    assert dial_plan.partition_problem("<None>") is None and dial_plan.partition_problem("") is None
    assert dial_plan.partition_arg("<None>") is None and dial_plan.partition_arg("") is None
    assert dial_plan.partition_arg("X") == "X"


@pytest.mark.parametrize(("css", "index", "words"), [
    ("Executives", None, "expected a list"), (["A", "A"], 1, "listed twice"),
    (["A", "<None>"], 1, "every calling"), (["ok", "not ok"], 1, "letters"),
    ([f"P{i}" for i in range(65)], None, "at most 64"), (["A", 3], 1, "(text)"),
])
def test_bad_css(css: object, index: int | None, words: str) -> None:
    found = dial_plan.css_problem(css)
    assert found is not None and found[0] == index and words in found[1], found
    with pytest.raises(EncodeError) as info:
        dial_plan.css_arg(css)  # type: ignore[arg-type]
    assert info.value.path == ("css" if index is None else f"css[{index}]")


# -- the cluster operation and its state ------------------------------------------------------------------

def test_the_dial_plan_is_persisted_and_a_part_not_given_is_kept(template: Path, tmp_path: Path) -> None:
    lab = copy_cluster(template, tmp_path)
    served = lab.files()
    lab.set_calling_search_space([B], partition="Executives")
    lab.set_calling_search_space([A, C], css=["Executives", "Staff"])
    lab.set_calling_search_space([C], partition="Lobby")  # its CSS stays
    again = LabCluster.open(lab.root)
    assert again.dial_plan(A) == DialPlan(css=("Executives", "Staff"))
    assert again.dial_plan(B) == DialPlan(partition="Executives")
    assert again.dial_plan(C) == DialPlan(partition="Lobby", css=("Executives", "Staff"))
    assert again.dial_plan("0A00000C66FF") is None
    assert lab.files() == served  # no served file carries the dial plan
    entry = again.state.log[-1]
    assert entry.op == "calling-search-space" and entry.args == {"macs": [C], "partition": "Lobby"}
    lab.set_calling_search_space([B], partition="<None>", css=[])
    assert LabCluster.open(lab.root).dial_plan(B) == DialPlan()


def test_the_operation_by_name_as_a_scenario_runs_it(template: Path, tmp_path: Path) -> None:
    lab = copy_cluster(template, tmp_path)
    lab.apply("calling-search-space", macs=[A], partition="Board", css=["Board"])
    lab.apply("calling-search-space", css=["Staff"])  # no phones: every phone
    assert lab.dial_plan(A) == DialPlan(partition="Board", css=("Staff",))
    assert lab.dial_plan(C) == DialPlan(css=("Staff",))


@pytest.mark.parametrize(("kwargs", "path", "words"), [
    ({}, "partition", "give a partition, a calling search space, or both"),
    ({"partition": "a b"}, "partition", "letters"),
    ({"css": ["A", "A"]}, "css[1]", "listed twice"),
    ({"css": "Executives"}, "css", "expected a list"),
])
def test_bad_arguments_change_nothing(template: Path, tmp_path: Path, kwargs: dict[str, object], path: str,
                                      words: str) -> None:
    lab = copy_cluster(template, tmp_path)
    before = (lab.root / STATE_FILE).read_bytes()
    with pytest.raises(EncodeError) as info:
        lab.set_calling_search_space([A], **kwargs)  # type: ignore[arg-type]
    assert info.value.path == path and words in str(info.value)
    assert (lab.root / STATE_FILE).read_bytes() == before and lab.dial_plan(A) == DialPlan()
    with pytest.raises(EncodeError, match="no phone given"):
        lab.set_calling_search_space([], partition="X")


@pytest.mark.parametrize(("field", "value", "where", "words"), [
    ("partition", "two words", "partition", "letters"),
    ("partition", 7, "partition", "not of type"),
    ("calling_search_space", ["A", "A"], "calling_search_space[1]", "listed twice"),
    ("calling_search_space", "A", "calling_search_space", "not of type"),
])
def test_a_hand_edited_state_with_a_bad_dial_plan_is_refused_naming_the_key(
        template: Path, tmp_path: Path, field: str, value: object, where: str, words: str) -> None:
    lab = copy_cluster(template, tmp_path)
    path = lab.root / STATE_FILE
    raw = json.loads(path.read_text())
    raw["phones"][A][field] = value
    path.write_text(json.dumps(raw))
    with pytest.raises(DecodeError) as info:
        load_state(lab.root)
    assert str(info.value.path).endswith(f"phones.{A}:{where}") and words in str(info.value), str(info.value)


def test_a_state_saved_before_the_dial_plan_loads_with_the_defaults(template: Path, tmp_path: Path) -> None:
    lab = copy_cluster(template, tmp_path)
    path = lab.root / STATE_FILE
    raw = json.loads(path.read_text())
    for ph in raw["phones"].values():
        del ph["partition"], ph["calling_search_space"]
    path.write_text(json.dumps(raw))
    assert LabCluster.open(lab.root).dial_plan(A) == DialPlan()


# -- scenario files ---------------------------------------------------------------------------------------

HEAD = """\
reproduces: seed Authorization
phones:
  a: {mac: 0A00000C6601}
  b: {mac: 0A00000C6602}
steps:
"""


def _load(step: str) -> Step:
    s = load_text(HEAD + f"  - admin: {step}\n  - expect: {{phones: a, media: rtp}}\n", "css.yaml")
    first = s.steps[0]
    assert isinstance(first, Step)
    return first


def test_admin_step_loads_typed() -> None:
    step = _load("{op: calling-search-space, phones: a, partition: Executives, css: [Staff, Executives]}")
    assert step.args == {"op": "calling-search-space", "cluster": "lab", "phones": ("a",),
                         "partition": "Executives", "css": ["Staff", "Executives"]}
    assert _load('{op: calling-search-space, phones: b, partition: "<None>"}').args["partition"] == "<None>"
    assert _load("{op: calling-search-space, css: []}").args["css"] == []
    assert _load("{op: calling-search-space, css: Staff}").args["css"] == ["Staff"]
    assert _load("{op: calling-search-space, partition: 100}").args["partition"] == "100"


@pytest.mark.parametrize(("step", "line", "field", "words"), [
    ("{op: calling-search-space, phones: a}", 6, "steps[0].admin", "give a partition, a css"),
    ("{op: calling-search-space, partition: two words}", 6, "steps[0].admin.partition", "letters"),
    ("{op: calling-search-space, partition: ~}", 6, "steps[0].admin.partition", "write partition: '<None>'"),
    ("{op: calling-search-space, partition: [A]}", 6, "steps[0].admin.partition", "expected text"),
    ("{op: calling-search-space, partition: true}", 6, "steps[0].admin.partition", "expected text"),
    ("{op: calling-search-space, css: ~}", 6, "steps[0].admin.css", "expected a list"),
    ("{op: calling-search-space, css: [A, {b: 1}]}", 6, "steps[0].admin.css[1]", "expected text"),
    ("{op: calling-search-space, css: [A, A]}", 6, "steps[0].admin.css[1]", "listed twice"),
    ("{op: calling-search-space, css: [A, '<None>']}", 6, "steps[0].admin.css[1]", "every calling search"),
    ("{op: calling-search-space, calling_search_space: [A]}", 6, "steps[0].admin.calling_search_space",
     "unknown field"),
    ("{op: calling-search-space, phones: nobody, css: [A]}", 6, "steps[0].admin.phones",
     "unknown phone group"),
])
def test_admin_step_mistakes_name_file_line_and_field(step: str, line: int, field: str, words: str) -> None:
    with pytest.raises(ScenarioError) as info:
        _load(step)
    assert str(info.value).startswith(f"css.yaml:{line} {field}: "), str(info.value)
    assert words in str(info.value), str(info.value)


def test_a_css_entry_on_its_own_line_is_named_by_that_line() -> None:
    text = HEAD + ("  - admin:\n      op: calling-search-space\n      css:\n        - Staff\n"
                   "        - bad name\n  - expect: {phones: a, media: rtp}\n")
    with pytest.raises(ScenarioError, match=r"^css\.yaml:10 steps\[0\]\.admin\.css\[1\]: partition name"):
        load_text(text, "css.yaml")


@pytest.mark.parametrize(("value", "want"), [("404", 404), ("[200, 480]", [200, 480]), ("none", "none")])
def test_call_status_values_load(value: str, want: object) -> None:
    s = load_text(HEAD + f"  - expect: {{phones: a, call_status: {value}}}\n", "cs.yaml")
    exp = s.steps[0]
    assert isinstance(exp, Expectation) and exp.checks["call_status"] == want


@pytest.mark.parametrize("value", ["'404'", "99", "700", "true", "ok", "4.04"])
def test_call_status_bad_values(value: str) -> None:
    with pytest.raises(ScenarioError,
                       match=r"cs\.yaml:6 steps\[0\]\.expect\.call_status: expected a SIP final"):
        load_text(HEAD + f"  - expect: {{phones: a, call_status: {value}}}\n", "cs.yaml")


def test_call_status_check_reads_the_last_call() -> None:
    assert checks.evaluate("call_status", SimpleNamespace(call=None), "none") == ("none", True)
    refused = SimpleNamespace(call=SimpleNamespace(status=404))
    assert checks.evaluate("call_status", refused, 404) == (404, True)
    assert checks.evaluate("call_status", refused, [200, 480]) == (404, False)
    unanswered = SimpleNamespace(call=SimpleNamespace(status=None))
    assert checks.evaluate("call_status", unanswered, "none") == ("none", True)
    assert not checks.evaluate("call_status", unanswered, 200)[1]


# -- the CLI ----------------------------------------------------------------------------------------------

def test_cli_sets_the_dial_plan_and_says_it(template: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    d = str(copy_cluster(template, tmp_path).root)
    assert main(["lab", "calling-search-space", d, "--mac", B, "--partition", "Executives"]) == 0
    assert main(["lab", "calling-search-space", d, "--mac", A, "--count", "3",
                 "--css", "Executives, Staff"]) == 0
    out = capsys.readouterr().out
    assert f"phone {B}: partition Executives, calling search space (empty: <None> only)" in out
    assert "3 phones: partition <None>, calling search space Executives, Staff; partition Executives, " \
           "calling search space Executives, Staff" in out
    lab = LabCluster.open(Path(d))
    assert lab.dial_plan(B) == DialPlan(partition="Executives", css=("Executives", "Staff"))
    assert lab.dial_plan(C) == DialPlan(css=("Executives", "Staff"))
    assert main(["lab", "calling-search-space", d, "--mac", B, "--partition", "<None>", "--css", ""]) == 0
    assert LabCluster.open(Path(d)).dial_plan(B) == DialPlan()


@pytest.mark.parametrize(("args", "words"), [
    ([], "--partition: give --partition NAME, --css NAME,NAME or both"),
    (["--css", "A,,B"], "--css: partition name '': 1..50"),
    (["--css", "A,A"], "listed twice (name 2 of 'A,A')"),
    (["--partition", "x y"], "--partition: partition name 'x y'"),
])
def test_cli_errors_are_one_line_naming_the_option(template: Path, tmp_path: Path, args: list[str],
                                                   words: str, capsys: pytest.CaptureFixture[str]) -> None:
    lab = copy_cluster(template, tmp_path)
    before = (lab.root / STATE_FILE).read_bytes()
    assert main(["lab", "calling-search-space", str(lab.root), "--mac", A, *args]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1, err
    assert (lab.root / STATE_FILE).read_bytes() == before


def test_cli_help_shows_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["lab", "calling-search-space", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "--partition Executives" in out and "--css Executives,Staff" in out
    assert "404 Not Found" in out
