"""fleet.junit: a test case per phone, whatever the phone's reason holds (quotes, markup, newlines)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from phoneemu.fleet.junit import Case, write_cases


def test_cases_are_counted_and_their_text_survives(tmp_path: Path) -> None:
    hostile = 'config "SEP<x>" & \'y\' ]]> \n second line'
    out = tmp_path / "r.xml"
    write_cases(out, suites="phoneemu fleet", suite="fleet boot 4 phones -> 10.0.0.5:69", time_s=1.5,
                cases=[Case("0A0000000001", time_s=0.25), Case("0A0000000002", failure=(hostile, hostile)),
                       Case("not started", skipped="2 phones not started (--max-time)"),
                       Case("lost shard 1", error=hostile)])
    root = ET.parse(out).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert [suite.get(k) for k in ("tests", "failures", "skipped", "errors", "time")] == \
        ["4", "1", "1", "1", "1.500"]
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["0A0000000001", "0A0000000002", "not started", "lost shard 1"]
    assert cases[0].get("time") == "0.250" and len(cases[0]) == 0
    failure = cases[1].find("failure")
    assert failure is not None and failure.text == hostile
    assert (failure.get("message") or "").startswith('config "SEP<x>" & ')
    error = cases[3].find("error")
    assert error is not None and error.get("message", "").startswith('config "SEP<x>"')
