"""``run --json``'s report is written a scenario at a time (phoneemu.scenario.reports.write_json): the same
bytes as the whole document dumped at once, whatever its values hold, and never the whole text in memory."""

from __future__ import annotations

import enum
import math
from pathlib import Path

from phoneemu import json_doc
from phoneemu.scenario.reports import to_json, write_json
from phoneemu.scenario.results import CheckResult, ExpectationResult, RunSummary, ScenarioResult
from tests.helpers import assert_written_a_chunk_at_a_time


class _Colour(enum.Enum):
    RED = 1


class _Level(enum.IntEnum):
    HIGH = 3


def _whole(summary: RunSummary) -> bytes:
    """What write_json wrote before it streamed: the one document's text."""
    return (json_doc.dumps(to_json(summary), indent=2, default=str) + "\n").encode("utf-8")


def _scenario(n: int, *, phones: int = 2, lines: int = 3, pad: int = 0) -> ScenarioResult:
    """Scenario ``n``: one failed expectation of ``phones`` phones, each with a ``lines``-line timeline (each
    line ``pad`` dots longer)."""
    e = ExpectationResult(where=f"s{n}.yaml:7", label=f"odd values \ud800 {n}", xfail=None, duration_s=0.25)
    values: list[object] = [{1, 2}, b"\x00\xff", Path("/x"), _Colour.RED, _Level.HIGH, (1, "t"), math.nan,
                            {"k": [None, True, 1.5, "\udcff"]}, 10**30, -0.0]
    for i in range(phones):
        mac = f"0A{n:04X}{i:06X}"
        e.checks.append(CheckResult(phone=mac, check="itl", expected=values[i % len(values)],
                                    actual=values[(i + 3) % len(values)], held=False))
        e.timelines[mac] = [f"00:00:{k:02d} line {k} of {mac} \x1b[31m{'.' * pad}" for k in range(lines)]
        e.deciding[mac] = f"G.3-unchanged (accepted) ITLSEP{mac}.tlv: unchanged"
        e.decisions[mac] = {"itl": None, "config": "G.4 (accepted) x"}
    return ScenarioResult(name=f"s{n}", path=f"s{n}.yaml", reproduces="spec G.2", tags=["t"], phones=phones,
                          expectations=[e], error="boom \udc80" if n % 2 else None, duration_s=1.5,
                          started_at=1_780_000_000.0, last_step="in steps[2] (boot, s:9)", error_trace=["a"])


def test_streamed_report_is_the_whole_documents_bytes(tmp_path: Path) -> None:
    """Sets, bytes, paths, enums, NaN, big integers, lone surrogates, no scenario, an interrupted run:
    byte for byte what one ``json_doc.dumps(..., default=str)`` of the whole document writes."""
    summaries = [
        RunSummary(),
        RunSummary(scenarios=[_scenario(n, phones=12) for n in range(3)], duration_s=3.25),
        RunSummary(scenarios=[_scenario(1)], interrupted=True, stopped=["s1"], not_run=["later", "z\udcff"]),
    ]
    for n, summary in enumerate(summaries):
        path = tmp_path / f"r{n}.json"
        write_json(summary, path)
        assert path.read_bytes() == _whole(summary), n


def test_report_of_many_failed_phones_is_never_one_text_in_memory(tmp_path: Path) -> None:
    """100 scenarios of 40 failed phones, each with a 6-line timeline of 640-character lines (~17 MB of JSON):
    writing it holds a fraction of that at a time (a scenario's text and a chunk of about
    ``files.TEXT_CHUNK`` characters, whatever the document's size). Before: the whole text, then its UTF-8
    bytes (twice the document). Long lines, not many (was 60 of 40 characters): the same size in a tenth of
    the objects, whose every allocation the memory tracing slows (half the time, for the same check)."""
    summary = RunSummary(scenarios=[_scenario(n, phones=40, lines=6, pad=600) for n in range(100)])
    assert_written_a_chunk_at_a_time(lambda path: write_json(summary, path), tmp_path / "r.json",
                                     _whole(summary))
