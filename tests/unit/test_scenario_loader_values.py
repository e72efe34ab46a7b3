"""Scenario values the loader used to let through and the run then choked on: text that breaks reports
and terminals, capture names that collide, lab options, services and certificates the lab refuses,
and YAML tags on lists and mappings."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from phoneemu import cli
from phoneemu.commands import run as run_cmd
from phoneemu.errors import ScenarioError
from phoneemu.scenario.loader import load_file, load_text
from phoneemu.scenario.model import Expectation, capture_stem
from phoneemu.scenario.reports import write_junit
from phoneemu.scenario.results import ExpectationResult, RunSummary, ScenarioResult
from tests.helpers import loader_error

_DOC = """\
name: {name}
phones:
  a: {{mac: "0A00000F0001"}}
steps:
  - boot: all
  - expect: {{phones: a, boot: ok, label: {label}}}
"""


def _refused(text: str) -> str:
    with pytest.raises(ScenarioError) as info:
        load_text(text, "t.yaml")
    return str(info.value)


# --------------------------------------------------------------------------- 1, 2: text after YAML decoding
@pytest.mark.parametrize(("name", "label", "where"), [
    (r'"x\udc80"', "ok", "t.yaml:1 name: a lone surrogate (U+DC80)"),
    ("ok", r'"x\udc80"', "t.yaml:6 steps[1].expect.label: a lone surrogate (U+DC80)"),
    (r'"bad\x01name\x0b"', "ok", "t.yaml:1 name: a control character (U+0001) at character 3"),
    ("ok", r'"lab\x02el"', "t.yaml:6 steps[1].expect.label: a control character (U+0002)"),
    (r'"a\uFFFE b"', "ok", "t.yaml:1 name: a noncharacter (U+FFFE)"),
    (r'"x\e[2J\e]0;pwn\a"', "ok", "t.yaml:1 name: a control character (U+001B)"),
    ("ok", r'"x\x9b2J"', "t.yaml:6 steps[1].expect.label: a control character (U+009B)"),  # C1 CSI
    (r'"one\nline"', "ok", "TAB and line breaks only in config_contains, config_lacks, description"),
])
def test_text_a_report_or_terminal_cannot_take_is_refused(name: str, label: str, where: str) -> None:
    """Escapes decoded by YAML passed the raw-text check: a surrogate crashed the JUnit/JSON writer and
    ``--list``, control characters made malformed XML and reached the terminal as escape sequences."""
    assert where in _refused(_DOC.format(name=name, label=label))


def test_a_key_holding_a_control_character_is_refused() -> None:
    err = _refused(_DOC.format(name="ok", label="ok").replace("  a: {", '  "a\\e[2J": {'))
    assert "t.yaml:3 phones: key 'a\\x1b[2J': a control character (U+001B)" in err


def test_tab_and_line_breaks_stay_allowed_in_multi_line_fields() -> None:
    doc = _DOC.format(name="ok", label="ok").replace(
        "label: ok", 'label: ok, xfail: "a\\nreason", config_contains: "<a>\\n<b>"')
    s = load_text('description: "two\\tcolumns\\nand lines"\n' + doc, "t.yaml")
    assert s.description == "two\tcolumns\nand lines"


def test_a_file_name_that_is_not_utf8_needs_a_name_key(tmp_path: Path) -> None:
    """The name defaults to the file name: a byte that is not UTF-8 became a lone surrogate in it."""
    f = tmp_path / "a\udc80.yaml"  # the file b"a\x80.yaml"
    f.write_text(_DOC.format(name="ok", label="ok").split("\n", 1)[1])
    with pytest.raises(ScenarioError, match=r"file name cannot be the scenario's name.*write a name: key"):
        load_file(f)
    f.write_text(_DOC.format(name="ok", label="ok"))
    assert load_file(f).name == "ok"


def test_list_refuses_the_file_instead_of_crashing(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "s.yaml").write_text(_DOC.format(name=r'"x\udc80"', label="ok"))
    assert cli.main(["run", str(tmp_path), "--list"]) == 2
    assert "s.yaml:1 name: a lone surrogate" in capsys.readouterr().err


def test_junit_never_writes_what_xml_forbids(tmp_path: Path) -> None:
    """Defence in depth: a scenario path (or run-time text) holding such characters still makes a report
    an XML parser reads (was UnicodeEncodeError, or an unparsable file)."""
    summary = RunSummary()
    s = ScenarioResult(name="n\x01ame", path="p\udc80.yaml", reproduces="", phones=1, error="e\x1b[2J")
    s.expectations.append(ExpectationResult(where="p.yaml:7", label="l\ufffeabel", xfail=None))
    summary.scenarios.append(s)
    write_junit(summary, tmp_path / "r.xml")
    suite = ET.parse(tmp_path / "r.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("name") == "n\ufffdame" and suite.get("file") == "p\ufffd.yaml"


# --------------------------------------------------------------------------- 3: capture file names
@pytest.mark.parametrize("names", [("a b", "a_b"), ("a_b", "a/b"), ("Tvs", "tvs"),
                                   ("x" * 120 + "1", "x" * 120 + "2")])
def test_names_sharing_a_capture_file_are_refused(tmp_path: Path, names: tuple[str, str]) -> None:
    """``run DIR --capture out/`` wrote both scenarios' captures to one ``out/STEM.pcap``."""
    for i, name in enumerate(names):
        (tmp_path / f"{i}.yaml").write_text(_DOC.format(name=f'"{name}"', label="ok"))
    with pytest.raises(ScenarioError) as info:
        run_cmd._load_all([str(tmp_path)])
    assert f"{tmp_path / '1.yaml'}:1 name: scenario name {names[1]!r} and the name {names[0]!r} of " \
           f"{tmp_path / '0.yaml'} are one capture file name, {capture_stem(names[1])}.pcap" \
           in str(info.value)


def test_capture_stems_of_distinct_names_stay_distinct(tmp_path: Path) -> None:
    for i, name in enumerate(("a-b", "a.b", "a_b")):
        (tmp_path / f"{i}.yaml").write_text(_DOC.format(name=name, label="ok"))
    assert [capture_stem(s.name) for s in run_cmd._load_all([str(tmp_path)])] == ["a-b", "a.b", "a_b"]


# --------------------------------------------------------------------------- 4, 5: cluster options
_CLUSTER = """\
clusters:
  c: {options}
phones:
  a: {{mac: "0A00000F0001"}}
steps:
  - boot: all
  - expect: {{phones: a, boot: ok}}
"""


@pytest.mark.parametrize(("options", "field", "words"), [
    ("{key: rsa9999}", "clusters.c.key", "expected rsa1024, rsa2048 or rsa4096, got 'rsa9999'"),
    ("{key: ec-p256}", "clusters.c.key", "must be RSA"),
    ("{key: rsa}", "clusters.c.key", "expected rsa1024, rsa2048 or rsa4096, got 'rsa'"),
    ("{signature_algorithm: md5}", "clusters.c.signature_algorithm", "expected one of: sha1, sha512"),
    ("{load: '../../../etc/passwd'}", "clusters.c.load", "is not 1..128 characters of [A-Za-z0-9._-]"),
    ('{external: {tftp: "127.0.0.99:69"}, mixed_mode: true}', "clusters.c.mixed_mode",
     "a built-in lab cluster's option (an external cluster takes external: only"),
    ('{external: {tftp: "127.0.0.99:69"}, mixed_mod: true}', "clusters.c.mixed_mod",
     "unknown field — did you mean 'mixed_mode'?"),
])
def test_lab_cluster_options_are_checked_at_load_time(options: str, field: str, words: str) -> None:
    """They passed ``--list`` and failed at run time without a file:line, or were silently ignored."""
    err = _refused(_CLUSTER.format(options=options))
    assert f"t.yaml:2 {field}: " in err and words in err


def test_good_lab_cluster_options_load() -> None:
    options = "{key: rsa1024, signature_algorithm: SHA512, load: sip88xx.14-2-1}"
    s = load_text(_CLUSTER.format(options=options), "t.yaml")
    assert s.clusters["c"].options["load"] == "sip88xx.14-2-1"


# --------------------------------------------------------------------------- 6: services and certificates
@pytest.mark.parametrize(("step", "words"), [
    ("- service: {sip-2: stop}", "registrars run only in a scenario with a sip or call step"),
    ("- service: {sips-3: stop}", "sips-3: unknown field"),
    ("- service: {tvs-2: stop}", "has 1 node at this step"),
    ("- admin: {op: regenerate, cert: tvs-9}", "unknown cert 'tvs-9'"),
    ("- admin: {op: regenerate, cert: callmanager-0}", "unknown cert 'callmanager-0'"),
    ("- admin: {op: regenerate, cert: callmanager-1}", "unknown cert 'callmanager-1'"),
    ("- admin: {op: regenerate, cert: tvs-2}", "has 1 node at this step"),
    ("- admin: {op: regenerate, cert: TVS}", "unknown cert 'TVS'"),  # the lab reads it as written
    ("- admin: {op: itl-reset, key: LOCALKEY}", "unknown key 'LOCALKEY'"),
    ("- admin: {op: remove-node}", "the publisher (node 1) cannot be removed"),
])
def test_services_and_certificates_the_lab_refuses_are_refused(step: str, words: str) -> None:
    assert words in str(loader_error(step))


def test_node_steps_change_what_a_step_may_name() -> None:
    """The loader follows ``nodes:``, ``add-node`` and ``remove-node`` as the lab will."""
    body = _CLUSTER.format(options="{nodes: 2}").replace("  - boot: all\n", """\
  - service: {tvs-2: stop, sip-2: stop, sips-2: start}
  - admin: {op: add-node}
  - admin: {op: regenerate, cert: callmanager-3}
  - service: {tvs-3: stop}
  - admin: {op: remove-node}
  - sip: a
""")
    load_text(body, "t.yaml")
    err = _refused(body.replace("  - sip: a\n", "  - service: {tvs-3: start}\n  - sip: a\n"))
    assert "t.yaml:11 steps[5].service.tvs-3: unknown field" in err and "has 2 nodes at this step" in err
    err = _refused(body.replace("{nodes: 2}", "{nodes: 8}"))
    assert "t.yaml:7 steps[1].admin.op: cluster 'c' already has 8 nodes" in err


# --------------------------------------------------------------------------- 7: tags on collections
@pytest.mark.parametrize(("value", "tag"), [
    ("!!python/object/apply:os.system [installed]", "!!python/object/apply:os.system"),
    ("!!set {installed}", "!!set"), ("!!omap [{a: 1}]", "!!omap"), ("!custom [installed]", "!custom"),
])
def test_a_tag_on_a_list_or_mapping_is_refused(value: str, tag: str) -> None:
    """It was dropped: ``itl: !!python/object/apply:os.system [installed]`` loaded as ``itl: installed``."""
    err = loader_error(f"- expect: {{phones: a, itl: {value}}}")
    assert f"YAML tag {tag!r} on a" in str(err)


def test_the_standard_collection_tags_stay_allowed() -> None:
    doc = _DOC.format(name="ok", label="ok").replace("boot: ok,", "itl: !!seq [installed],")
    s = load_text(doc, "t.yaml")
    exp = s.steps[1]
    assert isinstance(exp, Expectation) and exp.checks["itl"] == ["installed"]


def test_the_phones_of_all_groups_together_are_bounded() -> None:
    """Each group was bounded (100,000), not the scenario: 20 groups made 2,000,000 phones, each with a key
    pair of its own (hours of set-up)."""
    from phoneemu.scenario.loader import MAX_PHONES

    groups = "\n".join(f'  g{i}: {{count: 50000, mac_start: "0A{i:02X}00000000"}}' for i in range(3))
    text = f"reproduces: spec G.3\nphones:\n{groups}\nsteps:\n  - expect: {{phones: g0, itl: absent}}\n"
    with pytest.raises(ScenarioError, match=r"big\.yaml:3 phones: 150,000 phones in all: at most 100,000"):
        load_text(text, "big.yaml")
    assert load_text(text.replace("50000", str(MAX_PHONES // 3)), "big.yaml").phones["g2"].count == 33333


def test_reports_that_would_overwrite_a_scenario_or_each_other_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--junit`` naming the scenario file of the run overwrote it with the report."""
    scenario = tmp_path / "s.yaml"
    text = _DOC.format(name="s", label="ok")
    scenario.write_text(text)
    capture_file = tmp_path / "cap"
    capture_file.write_text("x")
    for argv, words in (
            (["--junit", str(scenario)], "is the scenario file"),
            (["--json", str(tmp_path / "." / "s.yaml")], "is the scenario file"),
            (["--junit", str(tmp_path / "r.xml"), "--json", str(tmp_path / "r.xml")],
             "the same file as --junit"),
            (["--capture", str(capture_file)], f"--capture {capture_file}: is a file, not a folder")):
        assert cli.main(["run", str(scenario), *argv]) == 2, argv
        assert words in capsys.readouterr().err, argv
    assert scenario.read_text() == text and capture_file.read_text() == "x"
