"""The fuzz loop: seeded mutants → target → deduplicated, minimised findings under ``DIR/crashes/``.

Rules implemented here:

* Bounded: stop after ``runs`` inputs or ``time_limit`` seconds, whichever comes first (at least
  one of them is required).
* Reproducible: input ``i`` of seed ``S`` is made by ``random.Random(S * 2**32 + i)`` from the
  deterministic corpus (:mod:`phoneemu.fuzz.corpus`), so ``(S, i)`` always names the same bytes.
* Findings are deduplicated by signature (exception type + innermost project frame, exit status,
  signal, timeout, hang). The first input of each signature is saved, then minimised within its budget,
  capped at what is left of ``time_limit`` so that the loop ends at it (:mod:`phoneemu.fuzz.minimize_plan`),
  in ``DIR/crashes/<id>/`` (:mod:`phoneemu.fuzz.findings`: each file atomic, info.json last, its commands
  naming absolute paths).
* A finding's input is rebuilt from its seed and run index into a folder of its own (:func:`regenerate`,
  the ``regenerate`` command of info.json: ``crashes/<id>/regenerated/``): ``input.bin`` there whatever
  the target does with it now, and, when it is still a finding, ``minimized.bin`` and ``info.json``
  beside it as under ``crashes/<id>/`` — the folder itself, no ``crashes/<id>/`` inside it.
* Ctrl-C stops the loop as ``runs`` would (:attr:`FuzzReport.interrupted`): a finding is saved before
  it is minimised, so one interrupted while minimising is kept (with the smallest input found so far:
  :mod:`phoneemu.fuzz.minimize_plan`), and the final counts are written; the input under way is not
  counted — unless, in process, it is a hang by then (an endless loop): a hang finding
  (:mod:`phoneemu.fuzz.runwatch`), saved un-minimised. Past ``time_limit`` an in-process call still under
  way is stopped once it is a hang (SIGALRM), and the loop ends: the ``--time`` bound holds. A regenerated
  finding is saved before it is minimised too.
* A file the loop cannot write (ours: a full disk, the command's input file or a finding's) stops it as
  Ctrl-C does (:attr:`FuzzReport.error`, naming the file; the input under way not counted): the findings
  saved so far are kept and counted, and the caller writes the summary (was: the OSError left the loop, no
  summary.json, and its message named no file). A finding whose folder could not be written (in process,
  a full disk shows there first) is counted, not saved (:attr:`FuzzReport.unsaved`), and the way to go on
  runs its input again (:attr:`FuzzReport.next_index`, its first run; was: past it, the finding lost) —
  one found as Ctrl-C or ``time_limit`` stopped the run too (was: the OSError left the loop).
* A target that makes and runs the inputs itself (``run_batch``: a ``--target MODULE:FUNCTION`` in a child
  process of its own, :mod:`phoneemu.fuzz.supervise`) runs them in batches, each to ``runs``, ``time_limit``
  or its first finding; the loop counts, records, minimises and stops as one by one, the input under way at
  Ctrl-C or past ``time_limit`` (a hang by then) included.
* Progress goes to a stream at most every ``progress_interval`` seconds: one line rewritten with
  ``\\r`` on a terminal, plain lines otherwise, each said by ``said_by`` (the command as typed,
  ``phoneemu fuzz: itl: 64 execs, ...``: :mod:`phoneemu.cli` rules, ours; without it, and on a terminal,
  ``fuzz itl: ...``).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from phoneemu.errors import EncodeError
from phoneemu.files import atomic_write
from phoneemu.fuzz.findings import Finding, save_finding
from phoneemu.fuzz.minimize import HANG_MAX_ATTEMPTS, HANG_TIME_LIMIT, MAX_ATTEMPTS, TIME_LIMIT
from phoneemu.fuzz.minimize_plan import new_finding, same_finding
from phoneemu.fuzz.mutators import Mutant, Mutator
from phoneemu.fuzz.runwatch import RunOverrun, RunWatch, run_once
from phoneemu.fuzz.targets import Outcome, Target

__all__ = ["Finding", "FuzzConfig", "FuzzReport", "Progress", "fuzz", "input_for", "regenerate", "run_seed",
           "same_finding"]


def run_seed(seed: int, index: int) -> int:
    """The ``random.Random`` seed of input ``index`` of a run seeded with ``seed``."""
    return seed * 0x1_0000_0000 + index


def input_for(mutator: Mutator, seed: int, index: int, *, rng: random.Random | None = None) -> Mutant:
    """Input ``index`` of the run seeded with ``seed`` (the same bytes every time).

    ``rng``, when given, is re-seeded and used instead of a new ``random.Random`` (the same stream;
    perf only, for the fuzz loop)."""
    if rng is None:
        return mutator.mutate(random.Random(run_seed(seed, index)))
    rng.seed(run_seed(seed, index))
    return mutator.mutate(rng)


@dataclass(frozen=True, kw_only=True)
class FuzzConfig:
    """What to fuzz and for how long; ``reproduce`` is the command prefix written to info.json."""

    fmt: str
    seed: int = 0
    runs: int | None = None
    time_limit: float | None = None
    out: Path | None = None
    minimize: bool = True
    minimize_attempts: int = MAX_ATTEMPTS  #: at most, within minimize_time (phoneemu.fuzz.minimize)
    minimize_time: float = TIME_LIMIT
    #: a hang's (in process or a command's): at most, within hang_minimize_time (each counted attempt hangs)
    hang_minimize_attempts: int = HANG_MAX_ATTEMPTS
    hang_minimize_time: float = HANG_TIME_LIMIT
    reproduce: str = ""
    progress: TextIO | None = None
    progress_interval: float = 0.5
    said_by: str = ""  #: the command as typed, starting each plain progress line (module docstring)

    def __post_init__(self) -> None:
        if self.runs is None and self.time_limit is None:
            raise EncodeError("give --runs or --time (or both)", path="runs")
        if self.runs is not None and self.runs < 0:
            raise EncodeError("--runs must be >= 0", path="runs")
        if self.time_limit is not None and self.time_limit < 0:
            raise EncodeError("--time must be >= 0", path="time")
        if self.seed < 0:
            raise EncodeError("--seed must be >= 0", path="seed")


@dataclass(kw_only=True)
class FuzzReport:
    """Totals of a run."""

    fmt: str
    seed: int
    execs: int = 0
    elapsed: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    findings: dict[str, Finding] = field(default_factory=dict)
    slowest: float = 0.0
    interrupted: bool = False  #: stopped by Ctrl-C (the findings so far are saved all the same)
    error: str | None = None  #: the file the run could not write, and why, that stopped it (module docstring)
    start_index: int = 0  #: the run index of its first input (``--run-index``)
    #: the signatures of the findings whose folder could not be written (``error``): counted, not saved
    unsaved: list[str] = field(default_factory=list)

    @property
    def execs_per_s(self) -> float:
        return self.execs / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def next_index(self) -> int:
        """The run index that goes on where the run ended: past its last input, or the first run of a finding
        not saved (:attr:`unsaved`), so that going on runs that input again (module docstring)."""
        return min([self.start_index + self.execs, *(self.findings[s].first_run for s in self.unsaved)])

    @property
    def crashed(self) -> bool:
        return bool(self.findings)

    def summary(self) -> str:
        parts = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items()))
        return (f"{self.fmt}: {self.execs} execs in {self.elapsed:.1f} s ({self.execs_per_s:,.0f}/s); "
                f"{parts or 'nothing run'}; {len(self.findings)} unique finding(s)")


class Progress:
    """Rate-limited status line (see module docstring); a plain line starts with ``said_by: `` (none when
    ``said_by`` is empty; the line redrawn on a terminal is as told)."""

    def __init__(self, stream: TextIO | None, interval: float = 0.5, *, said_by: str = "") -> None:
        self.stream = stream
        self.prefix = f"{said_by}: " if said_by else ""
        self.interval = interval
        self.tty = bool(stream is not None and getattr(stream, "isatty", lambda: False)())
        self.last = time.monotonic()
        self.width = 0

    def update(self, line: str, *, force: bool = False) -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        if self.tty:
            pad = max(0, self.width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self.width = len(line)
        else:
            self.stream.write(self.prefix + line + "\n")
        self.stream.flush()

    def done(self, line: str) -> None:
        if self.stream is None:
            return
        self.update(line, force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


#: the findings writer under its former name (tests import it from here)
_save = save_finding


def _record(report: FuzzReport, config: FuzzConfig, target: Target, mutant: Mutant, *, index: int,
            outcome: Outcome, time_left: float | None, clock: Callable[[], float],
            stopped_by: str | None = None) -> None:
    """Count ``outcome`` for its finding, or save a new one, minimised within ``time_left`` unless
    ``stopped_by`` stopped the run (:func:`~phoneemu.fuzz.minimize_plan.new_finding`)."""
    f = report.findings.get(outcome.signature)
    if f is not None:
        f.count += 1
        return
    def keep(new: Finding) -> None:
        report.findings[new.signature] = new
        save_finding(new, config)

    save_finding(new_finding(config, target, mutant, index=index, outcome=outcome, save=keep,
                             time_left=time_left, clock=clock, stopped_by=stopped_by), config)


def _progress(progress: Progress, head: str, report: FuzzReport, execs: int, elapsed: float) -> None:
    """The progress line (rate-limited by ``progress``): ``execs`` run in ``elapsed`` seconds."""
    if progress.stream is None:
        return
    rate = execs / elapsed if elapsed > 0 else 0.0
    progress.update(f"{head}: {execs} execs, {rate:,.0f} execs/s, {len(report.findings)} unique finding(s), "
                    f"{_kinds(report.statuses)}")


def _kinds(statuses: Counter[str]) -> str:
    """``2 crash(es), 0 hang(s)``, and the acceptances §G forbids when there are any (their finding kind,
    :mod:`phoneemu.fuzz.acceptance`: was left out of the line)."""
    text = f"{statuses['crash']} crash(es), {statuses['hang']} hang(s)"
    wrong = statuses["accepted-unverified"]
    return f"{text}, {wrong} accepted unverified" if wrong else text


def _count_batch(report: FuzzReport, got: Any) -> None:
    """The inputs of a batch run by the target itself (:class:`phoneemu.fuzz.supervise.BatchEnd`) counted:
    those before the one that ended it, ok or rejected (a status only once it happened, as one by one)."""
    if got.ok:
        report.statuses["ok"] += got.ok
    if got.handled:
        report.statuses["handled"] += got.handled
    report.slowest = max(report.slowest, got.slowest)


def _os_error_text(exc: OSError) -> str:
    """``/fz/.work/input-x.tlv: No space left on device``: the file (when the error knows it) and why."""
    why = exc.strerror or str(exc)
    return f"{exc.filename}: {why}" if exc.filename else why


def regenerate(config: FuzzConfig, target: Target, mutator: Mutator, *, index: int,
               into: Path) -> tuple[Outcome, Finding | None]:
    """Rebuild input ``index`` of ``config.seed`` into ``into/input.bin`` and run it once against
    ``target`` (see module docstring): a finding is minimised and saved in ``into`` itself
    (minimized.bin, info.json), and returned with the outcome; an input that is no longer one is
    written all the same (None)."""
    mutant = input_for(mutator, config.seed, index)
    with target.session():
        outcome = run_once(target, mutant.data)  # an endless loop: stopped, a hang
        if not outcome.is_finding:
            into.mkdir(parents=True, exist_ok=True)
            atomic_write(into / "input.bin", mutant.data)
            return outcome, None
        f = new_finding(config, target, mutant, index=index, outcome=outcome,
                        save=lambda new: save_finding(new, config, into))  # kept at a Ctrl-C while minimising
    save_finding(f, config, into)
    return outcome, f


def fuzz(config: FuzzConfig, target: Target, mutator: Mutator, *, start_index: int = 0,
         clock: Callable[[], float] = time.perf_counter) -> FuzzReport:
    """Run the loop (see module docstring) and return the report; findings are saved as found."""
    report = FuzzReport(fmt=config.fmt, seed=config.seed, start_index=start_index)
    progress = Progress(config.progress, config.progress_interval, said_by=config.said_by)
    head = config.fmt if config.said_by and not progress.tty else f"fuzz {config.fmt}"  # (module docstring)
    t0 = clock()
    deadline = t0 + config.time_limit if config.time_limit is not None else None
    end = start_index + config.runs if config.runs is not None else None
    index = start_index
    minimize_time = 0.0
    statuses = report.statuses
    rng = random.Random()
    m0: float | None = None  # when the minimising under way began
    watch = RunWatch(target)
    under_way: Mutant | None = None  # the input being run (index ``index``)
    batches = getattr(target, "run_batch", None)  # a target that makes and runs inputs itself (docstring)

    def make(i: int) -> bytes:  # input ``i``, for such a target (made in its process)
        return input_for(mutator, config.seed, i, rng=rng).data

    def waiting(under_way_at: int) -> None:  # progress while a batch runs
        _progress(progress, head, report, under_way_at - start_index, clock() - t0 - minimize_time)

    try:
        with target.session(), watch.stop_at(config.time_limit):
            while (end is None or index < end) and (deadline is None or clock() < deadline):
                if batches is not None:
                    until = None if deadline is None else time.perf_counter() + deadline - clock()
                    got = batches(make, first=index, end=end, deadline=until, on_wait=waiting)
                    _count_batch(report, got)
                    ran, index = got.index > index, got.index
                    outcome = got.finding
                    if outcome is None:
                        if not ran:  # its clock past the deadline already: the loop's may lag (a test's)
                            break
                        continue
                    seen = report.findings.get(outcome.signature)
                    if seen is not None:  # counted (as _record does), its input not made again
                        statuses[outcome.status] += 1
                        report.slowest = max(report.slowest, outcome.elapsed)
                        seen.count += 1
                        index += 1
                        continue
                    mutant = input_for(mutator, config.seed, index)
                else:
                    mutant = input_for(mutator, config.seed, index, rng=rng)
                    under_way = mutant
                    outcome = watch.run(mutant.data)
                    under_way = None
                statuses[outcome.status] += 1
                report.slowest = max(report.slowest, outcome.elapsed)
                index += 1
                if outcome.is_finding:
                    m0 = clock()
                    _record(report, config, watch, mutant, index=index - 1, outcome=outcome,
                            time_left=None if deadline is None else deadline - m0, clock=clock)
                    minimize_time += clock() - m0
                    m0 = None
                if progress.stream is not None and (index % 64 == 0 or batches is not None):
                    _progress(progress, head, report, index - start_index, clock() - t0 - minimize_time)
    except (KeyboardInterrupt, RunOverrun) as exc:  # Ctrl-C, or a hang past --time: stop, and report and
        report.interrupted = isinstance(exc, KeyboardInterrupt)  # save what was found (a 2nd one aborts)
        if m0 is not None:
            minimize_time += clock() - m0
        cut = getattr(target, "batch_cut", None) if batches is not None else None
        if cut is not None:  # stopped in a batch: its inputs so far counted, the one under way as in process
            _count_batch(report, cut)
            index = cut.index
            watch.cut = (cut.elapsed, cut.cpu)
            under_way = input_for(mutator, config.seed, index)
        stopped_by = "Ctrl-C or SIGTERM" if report.interrupted else "the --time limit"
        hang = watch.cut_hang(stopped_by)
        if under_way is not None and hang is not None:  # an endless loop's input: not lost, not minimised
            statuses[hang.status] += 1
            index += 1
            try:
                _record(report, config, watch, under_way, index=index - 1, outcome=hang,
                        time_left=None if deadline is None else deadline - clock(), clock=clock,
                        stopped_by=stopped_by)
            except OSError as exc:  # its folder not written: said as below (was: the OSError left the loop)
                report.error = _os_error_text(exc)
    except OSError as exc:  # a file not written (a full disk): stop, the findings so far kept (docstring)
        report.error = _os_error_text(exc)
        if m0 is not None:
            minimize_time += clock() - m0
    report.execs = index - start_index
    report.elapsed = max(1e-9, clock() - t0 - minimize_time)
    for f in report.findings.values():  # final counts into info.json
        try:
            save_finding(f, config)
        except OSError as exc:  # its last complete version stays (each file atomic)
            report.error = report.error or _os_error_text(exc)
    if config.out is not None:  # none saved yet: not saved at all (a folder saved once keeps that version)
        report.unsaved = [f.signature for f in report.findings.values() if f.directory is None]
    progress.done(f"{head}: {report.execs} execs, {report.execs_per_s:,.0f} execs/s, "
                  f"{len(report.findings)} unique finding(s), {_kinds(statuses)}")
    return report
