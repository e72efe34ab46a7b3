"""Ctrl-C (or SIGTERM) and minimising (phoneemu.fuzz.minimize_plan ``minimize_into``, ``minimize_plan``): a
minimisation cut short keeps the smallest input found so far and info.json's ``minimize_note`` says so
(was: ``null`` and the whole input); a hang found as Ctrl-C stopped the run is saved un-minimised, no
minimising begun after the request to stop, and its note says so. Ctrl-C is simulated as in
test_fuzz_stuck_runs: the KeyboardInterrupt a SIGINT raises where it lands, here in the target."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.errors import DecodeError
from phoneemu.fuzz import runwatch
from phoneemu.fuzz.engine import Finding, FuzzConfig, FuzzReport, fuzz, regenerate
from phoneemu.fuzz.mutators import Mutator
from phoneemu.fuzz.targets import PythonTarget
from tests.minimise_helpers import QuickHangs, always, assert_alarm_given_back

#: the crashing input: the toy parser crashes on every input that starts with BOOM
CRASHING = b"BOOM" + bytes(range(256)) * 4
#: the minimiser's attempt that a Ctrl-C cuts short (1-based)
CUT_AT = 6
NOTE = (f"minimisation stopped by Ctrl-C or SIGTERM after {CUT_AT - 1} attempts: minimized.bin is the "
        "smallest input found so far")


def _mutator(data: bytes = CRASHING) -> Mutator:
    return always(data)


class CtrlCAt:
    """A toy parser (crashes on ``BOOM...``, rejects the rest) whose call number ``at`` is a Ctrl-C (0:
    none); each call is counted."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.calls = 0

    def __call__(self, data: bytes) -> None:
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        if data.startswith(b"BOOM"):
            raise IndexError("toy crash")
        raise DecodeError("rejected", fmt="toy", offset=0)


@pytest.fixture(autouse=True)
def _alarm_given_back() -> Iterator[None]:
    yield
    assert_alarm_given_back()


def _saved(folder: Path | None) -> tuple[dict[str, object], bytes]:
    assert folder is not None
    info: dict[str, object] = json.loads((folder / "info.json").read_text())
    return info, (folder / "minimized.bin").read_bytes()


def _check_cut_short(finding: Finding, folder: Path | None, *, data: bytes, signature: str) -> None:
    """Saved with the smallest input found so far (smaller, the same finding) and the note."""
    info, minimized = _saved(folder)
    assert info["minimize_note"] == NOTE
    assert minimized == finding.minimized and len(minimized) < len(data)
    assert info["minimized_size"] == len(minimized) and info["input_size"] == len(data)
    assert finding.kind == info["kind"] and info["signature"] == signature


def test_ctrl_c_mid_minimise_keeps_the_smallest_input_so_far_and_says_so(tmp_path: Path) -> None:
    """Was: ``"minimize_note": null`` and minimized.bin the whole input, the attempts' work lost."""
    parser = CtrlCAt(1 + CUT_AT)  # the fuzz loop's input, then the minimiser's attempts
    report = fuzz(FuzzConfig(fmt="sgn", runs=10, out=tmp_path), PythonTarget(parser, name="toy"), _mutator())
    assert report.interrupted and report.execs == 1 and parser.calls == 1 + CUT_AT
    (finding,) = report.findings.values()
    _check_cut_short(finding, finding.directory, data=CRASHING, signature=finding.signature)
    assert finding.minimized is not None and finding.minimized.startswith(b"BOOM")
    again = PythonTarget(CtrlCAt(0), name="toy").run(finding.minimized)
    assert (again.status, again.signature) == ("crash", finding.signature)  # still the same crash


def test_regenerate_cut_short_by_ctrl_c_keeps_the_finding(tmp_path: Path) -> None:
    """Was: the Ctrl-C left nothing in the folder (the finding was written after minimising only)."""
    into = tmp_path / "regen"
    config = FuzzConfig(fmt="sgn", runs=1)
    with pytest.raises(KeyboardInterrupt):
        regenerate(config, PythonTarget(CtrlCAt(1 + CUT_AT), name="toy"), _mutator(), index=0, into=into)
    info, minimized = _saved(into)
    assert info["minimize_note"] == NOTE and (into / "input.bin").read_bytes() == CRASHING
    assert minimized.startswith(b"BOOM") and len(minimized) < len(CRASHING)


class _HangsThenCtrlC(QuickHangs):
    """A watched in-process target: an input holding ``LOOP`` is a hang, returned at once; its call number
    ``at`` is a Ctrl-C."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.calls = 0

    def before_run(self) -> None:
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt


def test_ctrl_c_mid_minimise_of_a_hang_keeps_the_smallest_input_so_far(tmp_path: Path) -> None:
    data = bytes(range(256)) * 2 + b"LOOP" + bytes(range(256)) * 2
    target = _HangsThenCtrlC(1 + CUT_AT)
    report = fuzz(FuzzConfig(fmt="sgn", runs=10, out=tmp_path), target, _mutator(data))
    assert report.interrupted and report.execs == 1 and target.calls == 1 + CUT_AT
    (finding,) = report.findings.values()
    _check_cut_short(finding, finding.directory, data=data, signature="hang in quick (> 0.5 s)")
    assert finding.minimized is not None and b"LOOP" in finding.minimized


def _spin(seconds: float) -> None:
    c0 = time.thread_time()
    while time.thread_time() - c0 < seconds:
        pass


def test_a_hang_found_at_ctrl_c_is_not_minimised_and_says_so(tmp_path: Path) -> None:
    """The input under way at Ctrl-C that is a hang by then is saved (phoneemu.fuzz.runwatch): now that hangs
    are minimised, no minimising may begin after the request to stop — it is saved as found."""
    calls = 0

    def hung_then_ctrl_c(_data: bytes) -> None:
        nonlocal calls
        calls += 1
        _spin(0.2)  # past hang_after: a hang by then
        raise KeyboardInterrupt

    report = fuzz(FuzzConfig(fmt="sgn", runs=10, out=tmp_path),
                  PythonTarget(hung_then_ctrl_c, name="p", hang_after=0.05), _mutator())
    assert report.interrupted and report.statuses == {"hang": 1} and calls == 1  # no minimising attempt
    (finding,) = report.findings.values()
    info, minimized = _saved(finding.directory)
    assert info["minimize_note"] == "not minimised: found as Ctrl-C or SIGTERM stopped the run"
    assert minimized == CRASHING and finding.minimized is None


def test_a_ctrl_c_held_back_until_minimising_ended_keeps_its_result(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C that lands as SIGALRM is given back, minimising done: not "stopped after N attempts"."""
    give_back = runwatch.RunWatch._give_back_alarm

    def then_ctrl_c() -> None:
        give_back()
        raise KeyboardInterrupt

    monkeypatch.setattr(runwatch.RunWatch, "_give_back_alarm", staticmethod(then_ctrl_c))
    report: FuzzReport = fuzz(FuzzConfig(fmt="sgn", runs=10, out=tmp_path), PythonTarget(CtrlCAt(0)),
                              _mutator())
    assert report.interrupted and report.execs == 1
    (finding,) = report.findings.values()
    info, minimized = _saved(finding.directory)
    assert info["minimize_note"] is None and minimized == finding.minimized == b"BOOM"
