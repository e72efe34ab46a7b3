"""``phoneemu run a b c`` (no ``-j``) in its own process, a SIGTERM between a and b: a real lab scenario
kept in the text, JSON and JUnit reports, b and c not run, exit 130.

The signal is sent by the process itself at a known point (``new_result`` of b, replaced by one that calls
:func:`signal.raise_signal` first): the window between two scenarios, hit every time. Before: the
KeyboardInterrupt escaped the run there; the command said ``interrupted`` and wrote no report.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.helpers import finish_process
from tests.run_helpers import written_scenarios

#: The command, with b's ``new_result`` sending this process a SIGTERM first.
DRIVER = """\
import signal, sys
from phoneemu import cli
from phoneemu.scenario import runner

real = runner.new_result

def new_result(sc):
    if sc.name == "b":
        signal.raise_signal(signal.SIGTERM)
    return real(sc)

runner.new_result = new_result
sys.exit(cli.main(sys.argv[1:]))
"""


def test_a_sigterm_between_two_scenarios_keeps_the_first(tmp_path: Path) -> None:
    files = written_scenarios(tmp_path, "abc", mac_prefix="0D00000000", label="booted")
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, "run", *files, "--json", str(tmp_path / "r.json"),
                             "--junit", str(tmp_path / "r.xml")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rc, out, err = finish_process(proc, 120)
    assert rc == 130 and "Traceback" not in out + err, (rc, out, err)
    assert "PASS  a" in out and "interrupted: 2 scenarios not run (b, c)" in out, out
    assert (tmp_path / "r.json").exists() and (tmp_path / "r.xml").exists(), (out, err)
    doc = json.loads((tmp_path / "r.json").read_text())
    assert (doc["interrupted"], doc["stopped"], doc["not_run"]) == (True, [], ["b", "c"]), doc
    assert [(s["name"], s["outcome"]) for s in doc["scenarios"]] == [("a", "PASS")], doc
    suites = {s.get("name"): s for s in ET.parse(tmp_path / "r.xml").getroot().iter("testsuite")}
    assert set(suites) == {"a", "b", "c"}, suites
    assert [c.get("name") for c in suites["a"].iter("testcase")] == ["booted"]
    assert all(c.find("skipped") is not None for name in "bc" for c in suites[name].iter("testcase"))
