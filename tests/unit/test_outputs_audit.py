"""Machine-readable outputs CI reads (``--junit``, ``--json``, ``--json-file``), as a demanding CI user
meets them: every JUnit file parses whatever text it carries (XML 1.0 cannot carry control characters,
lone surrogates or U+FFFE even escaped), its names are unique and its counts and times numbers; a report
that cannot be written is said naming its option and file, and the other report is still written."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
import xml.parsers.expat
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.fleet.junit import Case, write_cases
from phoneemu.lab.cluster import LabCluster
from phoneemu.scenario.reports import write_junit
from phoneemu.scenario.results import ExpectationResult, RunSummary, ScenarioResult

HOSTILE = "a\x00b\x08c\x0bd\x1b[2Je\udcfff\ufffeg\uffffh"
NOW = 1_780_000_000
MAC = "0A00000000B1"
SCENARIO = """\
name: outputs-audit
phones:
  p: {mac: 0A0000001001, registered: false}
steps:
  - boot: [p]
  - expect: {phones: p, label: takes the default config, config: accepted}
"""


def strictly_parsed(path: Path) -> ET.Element:
    """The file parsed by expat on its own (a strict XML 1.0 parser: any forbidden character is fatal)
    and by ElementTree."""
    data = path.read_bytes()
    data.decode("utf-8")  # strict UTF-8 too
    xml.parsers.expat.ParserCreate().Parse(data, True)
    return ET.fromstring(data)


def test_fleet_junit_replaces_what_xml_forbids(tmp_path: Path) -> None:
    """A phone's reason quoting bytes of a hostile file, a name of non-UTF-8 bytes: the file was not
    well-formed (``not well-formed (invalid token)``), or not written at all (UnicodeEncodeError)."""
    out = tmp_path / "r.xml"
    write_cases(out, suites="phoneemu fleet", suite=f"fleet {HOSTILE}", file=f"cap{HOSTILE}.pcap",
                cases=[Case(f"0A{HOSTILE}", failure=(HOSTILE, f"body {HOSTILE}")),
                       Case("s", skipped=HOSTILE), Case("e", error=HOSTILE)])
    root = strictly_parsed(out)
    suite = root.find("testsuite")
    seen = "a\ufffdb\ufffdc\ufffdd\ufffd[2Je\ufffdf\ufffdg\ufffdh"
    assert suite is not None and suite.get("name") == f"fleet {seen}"
    cases = suite.findall("testcase")
    failure = cases[0].find("failure")
    assert failure is not None and failure.get("message") == seen
    assert failure.text == f"body {seen}"


def test_predict_junit_of_a_file_named_with_odd_bytes(tmp_path: Path) -> None:
    """``predict --junit`` of a NEW_FILE named ``ITL<ESC>X<SOH>.tlv`` wrote an unparsable file; one named
    with a non-UTF-8 byte was a traceback (UnicodeEncodeError) and no file."""
    c = LabCluster.init(tmp_path / "lab", seed=47, key_spec="rsa1024", now=NOW, name="o")
    c.add_phones([MAC], now=NOW)
    itl = tmp_path / "lab" / "tftp" / "ITLFile.tlv"
    odd = [tmp_path / "ITL\x1bX\x01.tlv", tmp_path / "ITL\udcff.tlv"]  # \udcff: the byte 0xff of a name
    for path in odd:
        path.write_bytes(itl.read_bytes())
    junit = tmp_path / "p.xml"
    rc = main(["predict", "--installed-itl", str(itl), "--mac", MAC, "--now", str(NOW), "--junit", str(junit),
               *map(str, odd)])
    assert rc in (0, 1)
    suite = strictly_parsed(junit).find("testsuite")
    assert suite is not None and "ITL\ufffdX\ufffd.tlv" in (suite.get("name") or "")


def test_fleet_junit_names_are_unique_and_counts_and_times_numbers(tmp_path: Path) -> None:
    """A name given twice (two flash folders of one MAC) was two cases CI tools merge into one; a NaN time
    was ``time="nan"``; ``<testsuites>`` had no counts; the classname held the suite's target and count
    (a new history at each change, an address's dots split into Jenkins packages)."""
    out = tmp_path / "r.xml"
    write_cases(out, suites="phoneemu predict", suite="predict 10.0.0.5 ITLFile.tlv", time_s=float("inf"),
                cases=[Case("0A0000000001", time_s=float("nan")), Case("0A0000000001", failure=("m", "b")),
                       Case("x", time_s=-1.0, skipped="why")])
    root = strictly_parsed(out)
    cases = list(root.iter("testcase"))
    assert [c.get("name") for c in cases] == ["0A0000000001", "0A0000000001 #2", "x"]
    assert {c.get("classname") for c in cases} == {"phoneemu predict"}
    assert [c.get("time") for c in cases] == ["0.000", "0.000", "0.000"]
    for element in (root, root.find("testsuite")):
        assert element is not None
        assert [element.get(k) for k in ("tests", "failures", "errors", "skipped", "time")] == \
            ["3", "1", "0", "1", "0.000"]


def test_run_junit_error_case_and_not_run_suites(tmp_path: Path) -> None:
    """A scenario's ERROR case ``run`` and an expectation labelled ``run`` were two cases of one name; the
    suites of scenarios not run (interrupted) had no ``time``, which the JUnit schema requires."""
    s = ScenarioResult(name="sc", path="sc.yaml", reproduces="", phones=1, error="boom")
    s.expectations.append(ExpectationResult(where="sc.yaml:7", label="run", xfail=None))
    summary = RunSummary(scenarios=[s], interrupted=True, not_run=["later"])
    write_junit(summary, tmp_path / "r.xml")
    root = strictly_parsed(tmp_path / "r.xml")
    names = [(c.get("classname"), c.get("name")) for c in root.iter("testcase")]
    assert len(names) == len(set(names)), names
    assert all(float(suite.get("time") or "x") >= 0 for suite in root.iter("testsuite"))


def test_run_report_not_written_is_named_and_the_other_written(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """``run X --junit /dev/full --json r.json`` said only ``phoneemu run: No space left on device`` (no
    option, no file) and never wrote r.json."""
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    report = tmp_path / "r.json"
    rc = main(["run", str(scenario), "--junit", "/dev/full", "--json", str(report)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "--junit /dev/full: not written: No space left on device" in err
    assert json.loads(report.read_text())["ok"] is True


def test_predict_report_not_written_is_named_and_the_other_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``predict ... --junit /dev/full --json-file p.json``: said without the option or the file."""
    c = LabCluster.init(tmp_path / "lab", seed=48, key_spec="rsa1024", now=NOW, name="o")
    c.add_phones([MAC], now=NOW)
    root = tmp_path / "lab" / "tftp"
    doc = tmp_path / "p.json"
    rc = main(["predict", "--installed-itl", str(root / "ITLFile.tlv"), "--mac", MAC, "--now", str(NOW),
               "--json-file", str(doc), "--junit", "/dev/full", str(root)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "--junit /dev/full: not written: No space left on device" in err
    assert json.loads(doc.read_text())["mac"] == MAC
