"""``phoneemu fuzz --target`` / ``--target-cmd``: the fuzz loop into ``--out`` (:func:`_fuzz_run`), its
summary and ``summary.json`` (:func:`_fuzz_end`), a Ctrl-C before or in it; and ``--regenerate``, one input
of a run rebuilt (:func:`_regenerate`)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from phoneemu import json_doc
from phoneemu.commands._fuzz_common import (
    _corpus,
    _FolderLock,
    _lock_if_free,
    _make_folder,
    _reproduce_prefix,
    _target,
)
from phoneemu.commands._said import command_of, say
from phoneemu.errors import PhoneEmuError
from phoneemu.files import write_output
from phoneemu.interrupts import ctrl_c_deferred

if TYPE_CHECKING:
    from phoneemu.fuzz.engine import FuzzReport
    from phoneemu.fuzz.mutators import Mutator
    from phoneemu.fuzz.targets import Target


class _RunState:
    """Where a fuzz run is, for a Ctrl-C's summary (:func:`_fuzz_run`): the step under way, the loop's
    report once it has ended, and the lock on ``--out`` (:class:`_FolderLock`) once taken."""

    def __init__(self) -> None:
        self.step = "making the output folder"
        self.report: FuzzReport | None = None
        self.out_lock: _FolderLock | None = None


def _mutator_and_target(args: argparse.Namespace, state: _RunState) -> tuple[Mutator, Target]:
    """The mutator of :func:`_corpus` and :func:`_target`, the step under way named in ``state``; when either
    is refused (a bad ``--seed-dir``, a ``--target`` that does not load, a ``--target-cmd`` with shell
    syntax), an ``--out`` this run made and left empty is removed again: a usage error leaves nothing
    behind (was: the corpus's only; a refused target left an empty ``--out``)."""
    from phoneemu.fuzz.mutators import Mutator

    try:
        corpus = _corpus(args)
        mutator = Mutator(corpus, resign_ratio=args.resign_ratio)
        state.step = "loading the target"
        return mutator, _supervised(args, lambda: _target(args, corpus))
    except PhoneEmuError:
        if getattr(args, "out_made", False):
            with contextlib.suppress(OSError):
                args.out.rmdir()  # only if still empty
        raise


def _supervised(args: argparse.Namespace, load: Callable[[], Target]) -> Target:
    """The target ``load()`` makes (:func:`_target`); ``--target MODULE:FUNCTION`` run in a child process, so
    that its native crash (SIGSEGV, an abort) is a finding, not the fuzzer's end
    (:mod:`phoneemu.fuzz.supervise`) — unless its import started threads, which a child would not have: it
    stays in process, said (was: every input a crash or a hang); ``--target phoneemu`` and a command as
    they are."""
    from phoneemu.fuzz.supervise import SupervisedTarget, can_supervise, threads_started
    from phoneemu.fuzz.targets import PythonTarget

    target, threads = threads_started(load)
    if args.target in (None, "phoneemu") or not isinstance(target, PythonTarget) or not can_supervise():
        return target
    if threads:
        shown = ", ".join(threads[:3]) + (f" and {len(threads) - 3} more" if len(threads) > 3 else "")
        say(args, f"--target {args.target}: its import started {len(threads)} thread(s) ({shown}), which a "
                  "child process would not have: it runs in the fuzzer's own process (a native crash of it "
                  "ends the run)")
        return target
    return SupervisedTarget(target)


def _fuzz_run(args: argparse.Namespace) -> int:
    """The fuzz loop into ``--out``: the folder made, the summary and ``summary.json``. A Ctrl-C (or SIGTERM)
    from the moment ``--out`` exists to summary.json written ends the run with summary.json (ours): before the
    loop began — making the folder, building the corpus, loading the target — ``"interrupted": true``, 0
    execs, and ``interrupted_while`` naming the step under way (``null`` when not interrupted, ``"running
    inputs"`` in the loop); exit 130 (:func:`_fuzz_end`). Before ``--out`` exists there is nowhere to
    write it: the command's plain "interrupted", exit 130. One run at a time into ``--out``
    (:class:`_FolderLock`): another run's folder is refused, exit 2, and never written in."""
    import time

    t0 = time.perf_counter()
    state = _RunState()
    try:
        try:
            _fuzz_loop(args, state)
        except KeyboardInterrupt:
            if state.report is None:  # before (or as) the loop began: nothing run, but said and written
                if not _may_write_summary(args, state):
                    raise
                return _fuzz_end(args, _nothing_run(args, elapsed=time.perf_counter() - t0),
                                 interrupted_while=state.step)
            state.report.interrupted = True  # once the loop had ended (closing the target): its report stands
        report = state.report
        assert report is not None  # _fuzz_loop returned: it set it
        return _fuzz_end(args, report, interrupted_while="running inputs" if report.interrupted else None)
    finally:
        if state.out_lock is not None:
            state.out_lock.release()


def _may_write_summary(args: argparse.Namespace, state: _RunState) -> bool:
    """Whether a run interrupted before its loop writes summary.json into ``--out``: the folder exists and
    is this run's — its lock taken now when it was not yet; another run's folder is left alone."""
    if state.out_lock is None:
        state.out_lock = _lock_if_free(args.out)
    return state.out_lock is not None and args.out.is_dir()


def _fuzz_loop(args: argparse.Namespace, state: _RunState) -> None:
    """``--out`` made, the corpus built, the target loaded, the loop run: its report in ``state``, the step
    under way named there as it goes (:func:`_fuzz_run`)."""
    _make_folder(args.out, "--out")
    state.out_lock = _FolderLock(args.out, "--out")
    state.step = "building the corpus"
    from phoneemu.fuzz.engine import FuzzConfig, fuzz

    mutator, target = _mutator_and_target(args, state)
    state.step = "starting the run"
    try:
        config = FuzzConfig(fmt=args.fmt, seed=args.seed, runs=args.runs, time_limit=args.time,
                            out=args.out, minimize=not args.no_minimize,
                            reproduce=_reproduce_prefix(args),
                            progress=None if args.quiet else sys.stderr, said_by=command_of(args))
        state.report = fuzz(config, target, mutator, start_index=args.run_index)
    finally:
        target.close()


def _nothing_run(args: argparse.Namespace, *, elapsed: float) -> FuzzReport:
    """The report of a run interrupted before its loop began: 0 execs, interrupted."""
    from phoneemu.fuzz.engine import FuzzReport

    return FuzzReport(fmt=args.fmt, seed=args.seed, elapsed=elapsed, interrupted=True,
                      start_index=args.run_index)


def _stopped_line(args: argparse.Namespace, report: FuzzReport) -> str:
    """What a run stopped by a file it could not write says (:func:`_fuzz_end`): the file, and where to go on
    — a finding whose folder could not be written named, and run again from there
    (:attr:`FuzzReport.next_index`; was: "the findings so far are saved", going on past its input)."""
    go_on = f"--seed {args.seed} --run-index {report.next_index}"
    head = f"{report.error}: the run stopped after {report.execs} execs"
    lost = [report.findings[s] for s in report.unsaved]
    if not lost:
        return f"{head}; the findings so far are saved (to go on: {go_on})"
    named = " and ".join(f"the {f.kind} first found at run {f.first_run} ({f.signature})" for f in lost)
    kept = len(report.findings) - len(lost)
    others = f", the {kept} other finding(s) are" if kept else ""
    return (f"{head}; {named} {'was' if len(lost) == 1 else 'were'} not saved{others} (to go on, running "
            f"{'its input' if len(lost) == 1 else 'their inputs'} again: {go_on})")


def _fuzz_end(args: argparse.Namespace, report: FuzzReport, *, interrupted_while: str | None) -> int:
    """The end of a fuzz run, normal or by Ctrl-C: ``summary.json`` first — written whole (atomically), a
    Ctrl-C or SIGTERM held back while it is written (then exit 130 with it there) — then the lines; exit
    130 when interrupted, else 1 when something crashed or hung. A run stopped by a file it could not
    write (a full disk: :attr:`FuzzReport.error`) says so first, naming the file, and where to go on; its
    summary.json has ``error``; exit 2, as any other file not written (ours; was: no summary.json). A
    finding whose folder could not be written is said not saved — the line, its ``saved: false`` in
    summary.json, ``-> not saved`` for its folder (was: ``-> None``) — and ``next_run_index`` runs its
    input again (:func:`_stopped_line`)."""
    if report.error is not None:  # said before summary.json is written: that may fail too on a full disk
        say(args, _stopped_line(args, report))
    with ctrl_c_deferred() as interrupted_meanwhile:
        summary = {"format": args.fmt, "seed": args.seed, "interrupted": report.interrupted,
                   "interrupted_while": interrupted_while, "error": report.error,
                   "first_run_index": args.run_index, "next_run_index": report.next_index,
                   "execs": report.execs, "elapsed": report.elapsed,
                   "execs_per_s": report.execs_per_s, "statuses": dict(report.statuses),
                   "findings": [{"signature": f.signature, "kind": f.kind, "count": f.count,
                                 "first_run": f.first_run,
                                 "dir": None if f.directory is None else str(f.directory),
                                 "saved": f.directory is not None}
                                for f in report.findings.values()]}
        write_output(args.out / "summary.json", (json_doc.dumps(summary, indent=2) + "\n").encode("utf-8"))
    interrupted_meanwhile()  # a Ctrl-C held back: KeyboardInterrupt now, summary.json whole
    if interrupted_while == "running inputs":
        saved = "a finding was not saved (above)" if report.unsaved else "the findings so far are saved"
        say(args, f"interrupted after {report.execs} execs; {saved} (to go on: --seed {args.seed} "
                  f"--run-index {report.next_index})")
    elif interrupted_while is not None:
        say(args, f"interrupted while {interrupted_while}, before any input was run")
    print(report.summary())
    for f in report.findings.values():
        where = f.directory if f.directory is not None else "not saved (its folder could not be written)"
        print(f"  {f.kind}: {f.signature} (x{f.count}, first at run {f.first_run}) -> {where}")
    if report.interrupted:
        return 130
    if report.error is not None:
        return 2
    return 1 if report.crashed else 0


def _regenerate(args: argparse.Namespace, target: Target, mutator: Mutator) -> int:
    """``--regenerate DIR``: input ``--run-index`` of ``--seed`` into DIR (:func:`phoneemu.fuzz.engine.
    regenerate`); exit 1 when it is a finding, as the run that found it did."""
    from phoneemu.fuzz.engine import FuzzConfig, regenerate

    config = FuzzConfig(fmt=args.fmt, seed=args.seed, runs=1, minimize=not args.no_minimize,
                        reproduce=_reproduce_prefix(args))
    outcome, finding = regenerate(config, target, mutator, index=args.run_index, into=args.regenerate)
    size = (args.regenerate / "input.bin").stat().st_size
    head = (f"{args.fmt}: input {args.run_index} of seed {args.seed} rebuilt into "
            f"{args.regenerate / 'input.bin'} ({size} bytes)")
    if finding is None:
        why = f" ({outcome.detail})" if outcome.detail else ""
        print(f"{head}: {outcome.status}, not a finding now{why}")
        return 0
    print(f"{head}: {finding.kind} — {finding.signature}; minimized.bin and info.json beside it")
    if finding.detail:
        say(args, f"{args.regenerate / 'input.bin'}: {finding.kind}:\n{finding.detail.rstrip()}")
    return 1
