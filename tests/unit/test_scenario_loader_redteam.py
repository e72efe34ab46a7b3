"""Red team of the scenario loader and ``phoneemu run``'s input handling (task RD): what a demanding
author writes — numbers YAML 1.1 reads otherwise (octal ``0123``, base-60 ``1:00``), steps the lab
refused only when they ran, files that are not UTF-8 or hold characters YAML refuses, links that lead
nowhere, a blank name — is one ``file:line field:`` mistake before anything runs (exit 2, the reports
saying so), never a silently misread value, a failed step, or a message without its line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from phoneemu import cli
from phoneemu.errors import ScenarioError
from phoneemu.scenario.loader import discover, load_file, load_text
from phoneemu.scenario.model import Step

HEAD = ('name: t\nclusters: {lab: {}, other: {}}\nphones:\n  p: {count: 20, mac_start: "0A0000001201"}\n'
        "steps:\n")
#: the line of the first step of :data:`HEAD`
STEP_LINE = 6
EXPECT = "  - expect: {phones: p, config: accepted}\n"


def mistake(text: str) -> ScenarioError:
    with pytest.raises(ScenarioError) as info:
        load_text(text, "t.yaml")
    return info.value


# --------------------------------------------------------------------------- numbers YAML 1.1 misreads
@pytest.mark.parametrize(("old", "new", "line", "field", "words"), [
    # a password (text) of digits with a leading 0 reached the lab as "83"
    ("", "  - admin: {op: digest, phones: p, user: u, password: 0123}\n", STEP_LINE,
     "steps[0].admin.password", 'octal number 83: write "0123"'),
    ("name: t", "name: 0123", 1, "name", "octal number 83"),
    # 8 phones, not 10; 60 phones, not "1:0"
    ("count: 20", "count: 010", 4, "phones.p.count", "octal number 8: write 10 without the leading 0, or 8"),
    ("count: 20", "count: 1:0", 4, "phones.p.count", "base-60 number 60"),
    # a minute or an hour? 60 s, silently
    ("name: t", "name: t\ntimeout: 1:00", 2, "timeout", "base-60 number 60"),
    ("", "  - clock: {advance: 2:30}\n", STEP_LINE, "steps[0].clock.advance", "base-60 number 150"),
    ("", "  - boot: {phones: p, times: 03}\n", STEP_LINE, "steps[0].boot.times", None),  # 03 is 3: fine
    ("count: 20,", 'count: 20, profile: {base: cp-8861, trust_list_limit: 0100000},', 4,
     "phones.p.profile.trust_list_limit", "octal number 32768: write \"0100000\" for the text"),
])
def test_numbers_yaml_reads_otherwise_are_refused(old: str, new: str, line: int, field: str,
                                                  words: str | None) -> None:
    text = (HEAD.replace(old, new) if old else HEAD + new) + EXPECT
    if words is None:
        load_text(text, "t.yaml")
        return
    err = mistake(text)
    assert (err.file, err.line, err.path) == ("t.yaml", line, field), str(err)
    assert words in str(err) and "\n" not in str(err), str(err)


@pytest.mark.parametrize(("written", "read"), [("007", "7"), ("00", "0"), ("0x1F", "31"), ("1_000", "1000"),
                                               ("+5", "5"), ("0b101", "5")])
def test_a_text_yaml_reads_as_other_digits_is_refused(written: str, read: str) -> None:
    """A text field given a number YAML reads as other digits than written, its value equal in octal or not
    (review of 7ef4d9b: password 007 reached the lab as "7", 0x1F as "31", silently)."""
    err = mistake(HEAD + f"  - admin: {{op: digest, phones: p, user: u, password: {written}}}\n" + EXPECT)
    assert (err.line, err.path) == (STEP_LINE, "steps[0].admin.password"), str(err)
    assert f'as the number {read}: write "{written}" if you meant the text' in str(err), str(err)
    quoted = load_text(HEAD + f"  - admin: {{op: digest, phones: p, user: u, password: '{written}'}}\n"
                       + EXPECT, "t.yaml")
    assert isinstance(quoted.steps[0], Step) and quoted.steps[0].args["password"] == written
    plain = load_text(HEAD + "  - admin: {op: digest, phones: p, user: u, password: 1234}\n" + EXPECT,
                      "t.yaml")
    assert isinstance(plain.steps[0], Step) and plain.steps[0].args["password"] == "1234"  # as written: kept


def test_holds_for_count_with_a_leading_zero_is_refused() -> None:
    err = mistake(HEAD + "  - boot: p\n"
                  "  - expect: {phones: p, config: accepted, holds_for: {at_least: 010}}\n")
    assert err.path == "steps[1].expect.holds_for.at_least" and "octal number 8" in str(err), str(err)


def test_a_text_admin_argument_of_digits_reaches_the_lab_as_text() -> None:
    """``password: 1234`` reached the lab as the number 1234; ``name: 12`` still names the scenario."""
    s = load_text(HEAD.replace("name: t", "name: 12")
                  + "  - admin: {op: digest, phones: p, user: u, password: 1234}\n" + EXPECT, "t.yaml")
    step = s.steps[0]
    assert isinstance(step, Step) and step.args["password"] == "1234" and s.name == "12"


# --------------------------------------------------------------------------- refused when they ran
@pytest.mark.parametrize(("step", "field", "words"), [
    ("admin: {op: exchange, with: lab}", "steps[0].admin.with", "the cluster itself"),
    ("admin: {op: load, name: '../x'}", "steps[0].admin.name", "load name '../x'"),
    ("tamper: {file: ''}", "steps[0].tamper.file", "expected a served file name"),
    ("tamper: {file: ../../etc/passwd}", "steps[0].tamper.file", "no path"),
])
def test_steps_the_lab_refuses_are_load_mistakes(step: str, field: str, words: str) -> None:
    """Each loaded, then failed when it ran: an ERROR (exit 1) after the steps before had run."""
    err = mistake(HEAD + f"  - {step}\n" + EXPECT)
    assert (err.line, err.path) == (STEP_LINE, field) and words in str(err), str(err)


@pytest.mark.parametrize("name", ["''", "'   '"])
def test_a_blank_name_is_refused(name: str) -> None:
    err = mistake(HEAD.replace("name: t", f"name: {name}") + EXPECT)
    assert (err.line, err.path) == (1, "name") and "empty name" in str(err), str(err)


def test_a_file_named_dot_yaml_without_a_name_key_is_a_mistake(tmp_path: Path) -> None:
    """``.yaml`` has no name to give the scenario (was a KeyError once blank names were refused)."""
    f = tmp_path / ".yaml"
    f.write_text(HEAD.replace("name: t\n", "") + EXPECT)
    with pytest.raises(ScenarioError) as info:
        load_file(f)
    assert (info.value.line, info.value.path) == (1, "name") and "empty name" in str(info.value)


def test_a_merge_key_is_said_as_such() -> None:
    err = mistake(HEAD.replace('  p: {count: 20, mac_start: "0A0000001201"}',
                               '  p: {<<: {count: 2}, mac_start: "0A0000001201"}') + EXPECT)
    assert err.line == 4 and "merge key (<<) is not supported" in str(err), str(err)


def test_a_date_is_said_as_the_author_wrote_it() -> None:
    err = mistake(HEAD.replace("name: t", "name: 2024-01-01") + EXPECT)
    assert "got the date 2024-01-01" in str(err) and 'write "2024-01-01"' in str(err), str(err)
    assert "datetime" not in str(err)


def test_a_long_list_of_defined_groups_is_cut() -> None:
    groups = "".join(f'  g{i}: {{mac: "0A00000020{i:02X}"}}\n' for i in range(30))
    err = mistake(f"name: t\nphones:\n{groups}steps:\n  - boot: nobody\n" + EXPECT.replace("p,", "g0,"))
    assert "g19, ... (30 in all)" in str(err) and "g29" not in str(err), str(err)


# --------------------------------------------------------------------------- characters and encodings
def test_bytes_that_are_not_utf8_are_told_by_line_and_column(tmp_path: Path) -> None:
    f = tmp_path / "latin1.yaml"
    f.write_bytes((HEAD + EXPECT).replace("name: t", "name: t\ndescription: caf\xe9").encode("latin-1"))
    with pytest.raises(ScenarioError) as info:
        load_file(f)
    assert (info.value.line, info.value.file) == (2, str(f)) and "byte 0xE9 at column 17" in str(info.value)


@pytest.mark.parametrize(("codec", "words"), [("utf-16", "UTF-16 text"), ("utf-32", "UTF-32 text")])
def test_utf16_and_utf32_files_are_named(tmp_path: Path, codec: str, words: str) -> None:
    f = tmp_path / "wide.yaml"
    f.write_bytes((HEAD + EXPECT).encode(codec))
    with pytest.raises(ScenarioError) as info:
        load_file(f)
    assert info.value.line == 1 and words in str(info.value) and "save the file as UTF-8" in str(info.value)


@pytest.mark.parametrize("char", ["\x9b", "\x7f", "\ufffe"])
def test_characters_yaml_refuses_are_told_by_line_on_one_line(char: str) -> None:
    """Was PyYAML's two-line ``unacceptable character ... position 7``, no line."""
    err = mistake(HEAD.replace("name: t", f"name: t\ndescription: a{char}") + EXPECT)
    assert err.line == 2 and f"(U+{ord(char):04X}) at column 15" in str(err), str(err)
    assert "\n" not in str(err)


def test_a_control_character_of_a_file_of_lone_cr_line_ends_is_told_by_its_line() -> None:
    err = mistake((HEAD + EXPECT).replace("\n", "\r").replace("steps:", "steps:\x01"))
    assert err.line == 5, str(err)


# --------------------------------------------------------------------------- links and special files
def test_a_broken_link_in_a_folder_is_a_mistake_not_left_out(tmp_path: Path) -> None:
    """A dangling ``x.yaml`` link (a scenario moved away) was silently not run: the run went green."""
    (tmp_path / "good.yaml").write_text(HEAD + EXPECT)
    os.symlink(tmp_path / "moved-away.yaml", tmp_path / "x.yaml")
    os.symlink("loop2.yaml", tmp_path / "loop1.yaml")
    os.symlink("loop1.yaml", tmp_path / "loop2.yaml")
    found = discover([tmp_path])
    assert [f.name for f in found] == ["good.yaml", "loop1.yaml", "loop2.yaml", "x.yaml"]
    with pytest.raises(ScenarioError) as info:
        load_file(tmp_path / "x.yaml")
    assert "a symbolic link to" in str(info.value) and "which does not exist" in str(info.value)
    with pytest.raises(ScenarioError) as info:  # given by name: was "no such file or folder"
        load_file(discover([tmp_path / "loop1.yaml"])[0])
    assert "symbolic links" in str(info.value)


def test_run_of_bad_inputs_exits_2_with_one_line_and_reports(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """``phoneemu run`` of a folder holding a misread count and a broken link: exit 2, one line a mistake
    (none a traceback), the JUnit and JSON reports saying nothing ran, each mistake with its file."""
    (tmp_path / "a.yaml").write_text(HEAD.replace("count: 20", "count: 010") + EXPECT)
    os.symlink(tmp_path / "gone.yaml", tmp_path / "b.yaml")
    junit, report = tmp_path / "out.xml", tmp_path / "out.json"
    assert cli.main(["run", str(tmp_path), "--junit", str(junit), "--json", str(report)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "2 mistakes in 2 scenario files (nothing ran)" in err, err
    doc = json.loads(report.read_text())
    assert doc["ran"] is False and [(m["file"], m["line"], m["field"]) for m in doc["mistakes"]] == [
        (str(tmp_path / "a.yaml"), 4, "phones.p.count"), (str(tmp_path / "b.yaml"), None, None)]
    assert junit.read_text().count("<error") == 2


def test_a_file_of_too_many_values_is_refused_as_it_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1 MB file of 500 000 values was read whole (a minute, 360 MB) before the count refused it."""
    from phoneemu.scenario import loader

    monkeypatch.setattr(loader, "MAX_YAML_READ", 1000, raising=False)
    tags = "".join(f"  - t{i}\n" for i in range(3000))
    err = mistake(HEAD + EXPECT + "tags:\n" + tags + "  - [unclosed\n")  # a syntax error past the bound
    assert "more than 1000 values" in str(err) and err.line is not None and 900 < err.line < 1100, str(err)
