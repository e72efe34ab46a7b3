"""Fuzz engine, targets, minimiser and strategies (phoneemu.fuzz; issue #7)."""

from __future__ import annotations

import importlib
import io
import json
import random
import sys
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from phoneemu.errors import DecodeError, EncodeError, VerificationError
from phoneemu.formats import trustlist
from phoneemu.fuzz import FILE_FORMATS as FORMATS
from phoneemu.fuzz.corpus import build_corpus
from phoneemu.fuzz.engine import FuzzConfig, Progress, fuzz, input_for
from phoneemu.fuzz.minimize import minimize
from phoneemu.fuzz.mutators import Mutator
from phoneemu.fuzz.strategies import mutants, mutated_itl, seed_files
from phoneemu.fuzz.targets import (
    CommandTarget,
    PythonTarget,
    load_callable,
    phoneemu_callable,
    served_name_matches,
)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
fuzz_helpers = importlib.import_module("fuzz_helpers")  # tests/fuzz_helpers.py


# --------------------------------------------------------------------------- targets
def test_python_target_classifies_outcomes() -> None:
    t = PythonTarget(fuzz_helpers.crashy)
    assert t.run(b"\x00\x00\x00\x00").status == "handled"
    o = t.run(b"\x00\x00\x00\x01")
    assert o.status == "crash"
    assert o.signature.startswith("IndexError at ")
    assert "fuzz_helpers.py:" in o.signature
    assert "deliberate crash" in o.detail
    assert PythonTarget(fuzz_helpers.clean).run(b"x").status == "ok"


def test_python_target_warnings_as_errors() -> None:
    def warns(data: bytes) -> None:
        warnings.warn("deprecated thing", DeprecationWarning, stacklevel=1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert PythonTarget(warns).run(b"x").status == "ok"
        flagged = PythonTarget(warns, warnings_as_errors=True).run(b"x")
    assert flagged.status == "crash" and flagged.signature.startswith("DeprecationWarning")


def test_python_target_session_keeps_warnings_errors_even_when_the_target_changes_filters() -> None:
    calls: list[int] = []

    def tampers(data: bytes) -> None:
        calls.append(1)
        if data == b"ignore":  # a target that switches warnings off for good, in place
            warnings.simplefilter("ignore")
            return
        warnings.warn("deprecated thing", DeprecationWarning, stacklevel=1)

    target = PythonTarget(tampers, warnings_as_errors=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outer = list(warnings.filters)
        with target.session():
            assert target.run(b"warn").status == "crash"
            assert target.run(b"ignore").status == "ok"
            after = target.run(b"warn")  # the next input still runs with warnings as errors
        assert warnings.filters == outer  # the loop's filter is gone afterwards
    assert after.status == "crash" and after.signature.startswith("DeprecationWarning")
    assert len(calls) == 3


def test_python_target_reports_hangs() -> None:
    o = PythonTarget(fuzz_helpers.clean, hang_after=0.0).run(b"x")
    assert o.status == "hang" and o.is_finding


def test_python_target_hang_is_cpu_or_a_long_block_not_a_preemption() -> None:
    import time as _time

    def spin(_data: bytes) -> None:
        end = _time.thread_time() + 0.1
        while _time.thread_time() < end:
            pass

    assert PythonTarget(spin, hang_after=0.05).run(b"x").status == "hang"  # computing: CPU time counts
    # blocked (or preempted) 2x the limit: not a hang; blocked past 10x: a hang
    assert PythonTarget(lambda _d: _time.sleep(0.1), hang_after=0.05).run(b"x").status == "ok"
    blocked = PythonTarget(lambda _d: _time.sleep(0.6), hang_after=0.05).run(b"x")
    assert blocked.status == "hang" and "of CPU" in blocked.detail


def test_phoneemu_target_accepts_seeds_and_rejects_garbage() -> None:
    for fmt in FORMATS:
        c = build_corpus(fmt)
        t = PythonTarget(phoneemu_callable(fmt, c))
        for seed in c.seeds:
            assert t.run(seed).status == "ok", fmt
        assert t.run(b"\x01\x00\x02\x01\x02garbage").status == "handled"
        assert t.run(b"").status == "handled"


def test_round_trip_oracle() -> None:
    from phoneemu.fuzz.targets import RoundTripError, _check_round_trip

    _check_round_trip("sgn", b"abc", b"abc")
    with pytest.raises(RoundTripError, match="offset 1"):
        _check_round_trip("sgn", b"abc", b"axc")
    with pytest.raises(RoundTripError, match="offset 3"):
        _check_round_trip("sgn", b"abc", b"abcd")


def test_load_callable() -> None:
    assert load_callable("fuzz_helpers:crashy") is fuzz_helpers.crashy
    with pytest.raises(EncodeError):
        load_callable("no_colon")
    with pytest.raises(EncodeError):
        load_callable("fuzz_helpers:missing")


def test_command_target_signal_exit_and_timeout(tmp_path: Path) -> None:
    sig = CommandTarget(["sh", "-c", "kill -SEGV $$", "{}"], workdir=tmp_path).run(b"x")
    assert sig.status == "crash" and sig.signature == "killed by SIGSEGV"
    ok = CommandTarget("sh -c 'test -s \"$0\"' {}", workdir=tmp_path).run(b"data")
    assert ok.status == "ok"
    rejected = CommandTarget(["sh", "-c", "exit 1"], workdir=tmp_path).run(b"x")
    assert rejected.status == "handled"
    listed = CommandTarget(["sh", "-c", "exit 1"], workdir=tmp_path, crash_exit={1, 134}).run(b"x")
    assert listed.status == "crash" and listed.signature == "exit status 1"
    high = CommandTarget(["sh", "-c", "exit 134"], workdir=tmp_path).run(b"x")
    assert high.status == "crash"
    slow = CommandTarget(["sh", "-c", "sleep 5; true", "{}"], workdir=tmp_path, timeout=0.2).run(b"x")
    assert slow.status == "hang" and slow.signature == "timeout (> 0.2 s)"  # a hang, not a crash


def test_command_target_keeps_only_the_tail_of_stderr_and_leaves_nothing_running(tmp_path: Path) -> None:
    """``communicate`` kept all a command wrote to stderr (a gigabyte: 2 GB of memory) for the 2,000
    bytes a finding keeps; what a command left running in the background stayed for ever (run after
    run), as its session was killed only on a time-out."""
    import resource
    import time

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    loud_cmd = "head -c 200000000 /dev/zero | tr '\\0' x >&2; echo END >&2; kill -SEGV $$"
    loud = CommandTarget(["sh", "-c", loud_cmd], workdir=tmp_path, timeout=60).run(b"x")
    assert loud.status == "crash" and loud.detail.endswith("xEND\n") and len(loud.detail) == 2000
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB: not 200 MB more
    marker, pid_file = tmp_path / "left", tmp_path / "pid"
    CommandTarget(["sh", "-c", f"(sleep 1; touch {marker}) >/dev/null 2>&1 & echo $! > {pid_file}; exit 0"],
                  workdir=tmp_path).run(b"x")
    job = int(pid_file.read_text())
    for _ in range(40):  # at most 2 s: a job left running ends after 1 s, when it has made the marker
        if _ended(job):
            break
        time.sleep(0.05)
    assert _ended(job) and not marker.exists()  # the background job went with the command's session


def _ended(pid: int) -> bool:
    """No process ``pid`` (Linux /proc), or only its exit status left (killed, not yet reaped by init)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone before, or while, its entry was read
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def test_command_target_gets_the_file(tmp_path: Path) -> None:
    copy = tmp_path / "copy.bin"
    t = CommandTarget(["cp", "{}", str(copy)], workdir=tmp_path / "w", suffix=".tlv")
    t.run(b"\x01\x02\x03")
    assert copy.read_bytes() == b"\x01\x02\x03"
    t.close()
    assert not t.path.exists()


def test_served_name_matches() -> None:
    assert served_name_matches("itl", "ITLSEP001122334455.tlv")
    assert served_name_matches("itl", "ITLFile.tlv")
    assert not served_name_matches("itl", "CTLFile.tlv")
    assert served_name_matches("ctl", "CTLSEP001122334455.tlv", "001122334455")
    assert not served_name_matches("ctl", "CTLSEPAABBCCDDEEFF.tlv", "001122334455")
    assert served_name_matches("sgn", "SEP001122334455.cnf.xml.sgn")
    assert not served_name_matches("sgn", "SEP001122334455.cnf.xml.enc.sgn")
    assert served_name_matches("enc", "SEP001122334455.cnf.xml.enc.sgn")
    assert not served_name_matches("enc", "SEP001122334455.cnf.xml")


# --------------------------------------------------------------------------- minimiser
def test_minimize_shrinks_while_predicate_holds() -> None:
    data = bytes(range(256)) * 4
    out = minimize(data, lambda b: b"\x42\x43" in b, max_attempts=2000)
    assert out == b"\x42\x43"


def test_minimize_is_bounded() -> None:
    calls = []

    def pred(b: bytes) -> bool:
        calls.append(1)
        return b"\x42" in b

    minimize(bytes(range(256)) * 40, pred, max_attempts=25)
    assert len(calls) <= 25


def test_minimize_drops_records() -> None:
    c = build_corpus("itl")

    def has_capf(b: bytes) -> bool:
        try:
            return any(r.role == 4 for r in trustlist.parse(b, lazy=False).records)
        except DecodeError:
            return False

    out = minimize(c.seeds[0], has_capf, records=True, max_attempts=200)
    tl = trustlist.parse(out, lazy=False)
    assert [r.role for r in tl.records] == [4]
    assert len(out) < len(c.seeds[0]) // 2


# --------------------------------------------------------------------------- engine
def test_inputs_are_reproducible_from_the_seed() -> None:
    mut = Mutator(build_corpus("ctl"))
    a = [input_for(mut, 7, i).data for i in range(20)]
    assert a == [input_for(Mutator(build_corpus("ctl")), 7, i).data for i in range(20)]
    assert a != [input_for(mut, 8, i).data for i in range(20)]


def test_config_needs_a_bound() -> None:
    with pytest.raises(EncodeError):
        FuzzConfig(fmt="itl")
    with pytest.raises(EncodeError):
        FuzzConfig(fmt="itl", runs=1, seed=-1)


def test_fuzz_dedups_minimizes_and_saves(tmp_path: Path) -> None:
    cfg = FuzzConfig(fmt="sgn", seed=3, runs=200, out=tmp_path, reproduce="phoneemu fuzz --format sgn "
                     "--target tests.fuzz_helpers:crashy", minimize_attempts=200)
    report = fuzz(cfg, PythonTarget(fuzz_helpers.crashy), Mutator(build_corpus("sgn")))
    assert report.execs == 200
    assert report.statuses["crash"] > 1
    assert len(report.findings) == 1
    (finding,) = report.findings.values()
    assert finding.count == report.statuses["crash"]
    d = finding.directory
    assert d is not None and d.parent == tmp_path / "crashes"
    info = json.loads((d / "info.json").read_text())
    assert info["seed"] == 3 and info["run_index"] == finding.first_run
    assert info["signature"].startswith("IndexError at ")
    assert info["reproduce"].endswith(f"--replay {d / 'minimized.bin'}")
    mini = (d / "minimized.bin").read_bytes()
    assert len(mini) == 4 and mini[3] & 1  # the smallest input that still crashes
    again = input_for(Mutator(build_corpus("sgn")), 3, finding.first_run).data
    assert (d / "input.bin").read_bytes() == again


def test_fuzz_time_bound_and_progress_lines() -> None:
    stream = io.StringIO()
    cfg = FuzzConfig(fmt="sgn", time_limit=0.3, progress=stream, progress_interval=0.05)
    report = fuzz(cfg, PythonTarget(fuzz_helpers.clean), Mutator(build_corpus("sgn")))
    assert report.execs > 0 and report.elapsed < 2
    lines = stream.getvalue().splitlines()
    assert lines and all("execs/s" in line for line in lines) and "\r" not in stream.getvalue()


def test_progress_rewrites_one_line_on_a_tty() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    s = Tty()
    p = Progress(s, interval=0.0)
    p.update("first long line")
    p.update("short")
    p.done("end")
    assert s.getvalue() == "\rfirst long line\rshort          \rend  \n"


def test_ci_sample_our_parsers_have_no_crashes() -> None:
    """Bounded sample of bench/fuzz.py: 3,000 mutants across the four formats, zero findings."""
    for fmt in FORMATS:
        c = build_corpus(fmt)
        cfg = FuzzConfig(fmt=fmt, seed=2026, runs=750, minimize=False)
        target = PythonTarget(phoneemu_callable(fmt, c), hang_after=5.0, warnings_as_errors=True)
        report = fuzz(cfg, target, Mutator(c))
        assert report.execs == 750
        assert not report.findings, {s: f.detail for s, f in report.findings.items()}
        assert report.statuses["handled"] > 500


# --------------------------------------------------------------------------- strategies
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_itl())
def test_strategy_mutated_itl_only_raises_project_errors(data: bytes) -> None:
    try:
        tl = trustlist.parse(data, lazy=False)
        tl.verify_self()
    except (DecodeError, VerificationError):
        pass


@settings(max_examples=20, deadline=None)
@given(mutants("enc", resign_ratio=1.0), seed_files("enc"))
def test_strategy_mutants_carry_their_story(mutant: object, seed: bytes) -> None:
    assert getattr(mutant, "resigned", None) is True
    assert seed in build_corpus("enc").seeds


def test_strategy_draws_match_engine_inputs() -> None:
    mut = Mutator(build_corpus("itl"))
    assert mut.mutate(random.Random(5)).data == input_for(mut, 0, 5).data


@pytest.mark.parametrize("fmt", ["itl", "enc"])
def test_input_for_with_a_reused_rng_is_the_same_input(fmt: str) -> None:
    mut = Mutator(build_corpus(fmt))
    rng = random.Random()
    rng.gauss(0.0, 1.0)  # leftover state of any kind is wiped by the re-seed
    for i in range(150):
        again = input_for(mut, 5, i, rng=rng)
        fresh = input_for(mut, 5, i)
        assert (again.data, again.ops, again.resigned) == (fresh.data, fresh.ops, fresh.resigned)


def test_regenerate_saves_the_finding_in_the_folder_it_is_given(tmp_path: Path) -> None:
    """``regenerate``: input.bin, minimized.bin and info.json in ``into`` itself, whose regenerate
    command names ``into`` again (was a whole run with ``--out into``: ``into/crashes/<id>/input.bin``)."""
    from phoneemu.fuzz.engine import regenerate

    cfg = FuzzConfig(fmt="sgn", seed=3, runs=60, out=tmp_path / "fz", reproduce="phoneemu fuzz --format sgn "
                     "--target tests.fuzz_helpers:crashy", minimize_attempts=200)
    (finding,) = fuzz(cfg, PythonTarget(fuzz_helpers.crashy), Mutator(build_corpus("sgn"))).findings.values()
    assert finding.directory is not None
    info = json.loads((finding.directory / "info.json").read_text())
    assert info["regenerate"].endswith(f"--run-index {finding.first_run} --regenerate "
                                       f"{finding.directory / 'regenerated'}")
    into = finding.directory / "regenerated"
    outcome, again = regenerate(cfg, PythonTarget(fuzz_helpers.crashy), Mutator(build_corpus("sgn")),
                                index=finding.first_run, into=into)
    assert outcome.status == "crash" and again is not None and again.directory == into
    assert sorted(p.name for p in into.iterdir()) == ["info.json", "input.bin", "minimized.bin"]
    assert (into / "input.bin").read_bytes() == finding.data
    assert (into / "minimized.bin").read_bytes() == (finding.directory / "minimized.bin").read_bytes()
    assert json.loads((into / "info.json").read_text())["regenerate"].endswith(f"--regenerate {into}")
    # an input that is not a finding now: rebuilt all the same, nothing else written
    datas = [input_for(Mutator(build_corpus("sgn")), 3, i).data for i in range(60)]
    handled = next(i for i, d in enumerate(datas) if not (len(d) > 3 and d[3] & 1))
    outcome, none = regenerate(cfg, PythonTarget(fuzz_helpers.crashy), Mutator(build_corpus("sgn")),
                               index=handled, into=tmp_path / "r2")
    assert outcome.status == "handled" and none is None
    assert [p.name for p in (tmp_path / "r2").iterdir()] == ["input.bin"]


def test_command_target_removes_the_work_folder_it_made(tmp_path: Path) -> None:
    made = CommandTarget(["sh", "-c", "exit 0"], workdir=tmp_path / "regen" / ".work")
    assert made.run(b"x").status == "ok"
    made.close()
    assert list((tmp_path / "regen").iterdir()) == []  # no empty .work left beside a regenerated input
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep").write_text("x")
    theirs = CommandTarget(["sh", "-c", "exit 0"], workdir=tmp_path / "mine")
    theirs.run(b"x")
    theirs.close()
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["keep"]  # a folder it found is kept
