"""fleet.junit.write_cases streams: the cases of a 40,000-phone fleet boot, a replay --all or a predict
--fleet-flash are taken one at a time and spooled, never held together; the report is whole or absent."""

from __future__ import annotations

import os
import threading
import tracemalloc
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.fleet.junit import Case, write_cases

CASES = 10_000
BODY = 4_000  # characters of each case's failure body: 40 MB of cases in all


def _cases(n: int = CASES) -> Iterator[Case]:
    for i in range(n):
        mac = f"0A{i:010X}"
        yield Case(mac, time_s=0.001 * (i % 7), failure=(f"locked-out ({i})", mac * (BODY // len(mac))))


def test_cases_are_not_held_together(tmp_path: Path) -> None:
    """Memory holds one case (and the names seen), not the 40 MB of all of them (was: every case's XML in
    a list, then the document joined in one string and encoded: more than twice that)."""
    out = tmp_path / "r.xml"
    tracemalloc.start()
    try:
        write_cases(out, suites="phoneemu fleet", suite="fleet boot", cases=_cases())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.stat().st_size > CASES * BODY
    assert peak < 12 * 1024 * 1024, f"peak {peak >> 20} MiB while writing {out.stat().st_size >> 20} MiB"
    suite = ET.parse(out).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == (str(CASES), str(CASES))


def test_the_report_is_whole_or_absent(tmp_path: Path) -> None:
    """Cases that fail to come (an error while they are made) leave the old report as it was and no
    temporary file beside it."""
    out = tmp_path / "r.xml"
    out.write_text("before")

    def failing() -> Iterator[Case]:
        yield from _cases(3)
        raise RuntimeError("a case could not be made")
    with pytest.raises(RuntimeError):
        write_cases(out, suites="s", suite="t", cases=failing())
    assert out.read_text() == "before"
    assert sorted(os.listdir(tmp_path)) == ["r.xml"]


def test_the_counts_come_before_the_cases_and_names_repeat_numbered(tmp_path: Path) -> None:
    out = tmp_path / "r.xml"
    write_cases(out, suites="s", suite="t", output="every phone: a note",
                cases=iter([Case("A"), Case("A", skipped="why"), Case("B", error="lost"), Case("A")]))
    text = out.read_text()
    head = text.splitlines()[1]
    assert head == '<testsuites name="s" tests="4" failures="0" errors="1" skipped="1" time="0.000">'
    root = ET.parse(out).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert [c.get("name") for c in suite.findall("testcase")] == ["A", "A #2", "B", "A #3"]
    assert suite.findtext("system-out") == "every phone: a note"
    assert sorted(os.listdir(tmp_path)) == ["r.xml"]


def test_a_fifo_gets_what_a_file_gets(tmp_path: Path) -> None:
    """A FIFO (or a device such as /dev/stdout) is written in place, with the same bytes."""
    regular, fifo = tmp_path / "r.xml", tmp_path / "fifo"
    write_cases(regular, suites="s", suite="t", cases=_cases(50), time_s=1.0)
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    write_cases(fifo, suites="s", suite="t", cases=_cases(50), time_s=1.0)
    reader.join(30)
    assert not reader.is_alive() and got == [regular.read_bytes()]
