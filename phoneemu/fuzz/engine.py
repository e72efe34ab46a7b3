"""The fuzz loop: seeded mutants → target → deduplicated, minimised findings under ``DIR/crashes/``.

Rules implemented here:

* Bounded: stop after ``runs`` inputs or ``time_limit`` seconds, whichever comes first (at least
  one of them is required).
* Reproducible: input ``i`` of seed ``S`` is made by ``random.Random(S * 2**32 + i)`` from the
  deterministic corpus (:mod:`phoneemu.fuzz.corpus`), so ``(S, i)`` always names the same bytes.
* Findings are deduplicated by signature (exception type + innermost project frame, exit status,
  signal, timeout, hang). The first input of each signature is minimised (same status and signature
  must reproduce: :func:`same_finding`) — a crash, a hang of a target whose runs are bounded
  (``minimize_hangs``: a command, killed at its timeout), and an in-process hang with a budget of its own,
  each attempt that counts costing the hang time-out (ours: at most ``hang_minimize_attempts``, 500,
  within ``hang_minimize_time``, 10 s; only where its attempts are stopped, SIGALRM in the main thread,
  else saved as found, ``minimize_note`` saying why: :func:`_minimize_plan`) — within the minimiser's
  budget for real: an in-process attempt that hangs or outlives that time is stopped at
  once (SIGALRM, main thread: :meth:`~phoneemu.fuzz.runwatch.RunWatch.stopping_hangs`) and is not the
  same crash; that budget capped at what is left of ``time_limit``, so the loop ends at it (ours; none
  left: saved un-minimised, ``minimize_note`` in info.json says why, :func:`_minimize_budget`) — and
  saved as ``DIR/crashes/<sha1(signature)[:12]>/{input.bin, minimized.bin, info.json}``;
  ``info.json`` holds the seed, run index, signature, traceback or stderr, the
  mutation ops and a one-line command that replays the minimised input (its paths absolute, ours; the
  command's prefix, ``FuzzConfig.reproduce``, begins ``cd <folder> &&`` when the target is found
  through the fuzzer's working folder: :mod:`phoneemu.fuzz.reproduce` — so it works from any working
  directory; ``Finding.directory``, summary.json's ``dir``, are absolute too). Each file
  is written atomically (temporary file beside it, then renamed, :func:`phoneemu.files.atomic_write`),
  info.json last: a fuzzer killed mid-write never leaves a truncated finding.
* A finding's input is rebuilt from its seed and run index into a folder of its own (:func:`regenerate`,
  the ``regenerate`` command of info.json: ``crashes/<id>/regenerated/``): ``input.bin`` there whatever
  the target does with it now, and, when it is still a finding, ``minimized.bin`` and ``info.json``
  beside it as under ``crashes/<id>/`` — the folder itself, no ``crashes/<id>/`` inside it.
* Ctrl-C stops the loop as ``runs`` would (:attr:`FuzzReport.interrupted`): a finding is saved before
  it is minimised, so one interrupted while minimising is kept — with the smallest input found so far,
  ``minimize_note`` saying minimising was stopped after how many attempts (ours; was: ``null``, the whole
  input) — and the final counts are written; the input under way is not counted — unless, in process,
  it is a hang by then (an endless loop): a hang finding (:mod:`phoneemu.fuzz.runwatch`), saved
  un-minimised (no minimising begins after the request to stop; ``minimize_note`` says so). Past
  ``time_limit`` an in-process call still under way is stopped once it is a hang (SIGALRM), and the loop
  ends: the ``--time`` bound holds. A regenerated finding is saved before it is minimised too.
* Progress goes to a stream at most every ``progress_interval`` seconds: one line rewritten with
  ``\\r`` on a terminal, plain lines otherwise, each said by ``said_by`` (the command as typed,
  ``phoneemu fuzz: itl: 64 execs, ...``: :mod:`phoneemu.cli` rules, ours; without it, and on a terminal,
  ``fuzz itl: ...``).
"""

from __future__ import annotations

import hashlib
import random
import shlex
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from phoneemu import json_doc
from phoneemu.errors import EncodeError
from phoneemu.files import atomic_write
from phoneemu.fuzz.minimize import (
    HANG_MAX_ATTEMPTS,
    HANG_TIME_LIMIT,
    MAX_ATTEMPTS,
    TIME_LIMIT,
    MinimizeInterrupted,
    minimize,
)
from phoneemu.fuzz.mutators import Mutant, Mutator
from phoneemu.fuzz.runwatch import AttemptStopped, RunOverrun, RunWatch, run_once
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
    #: an in-process hang's: at most, within hang_minimize_time (each attempt that counts hangs)
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
class Finding:
    """One deduplicated crash or hang."""

    signature: str
    kind: str
    first_run: int
    count: int
    detail: str
    ops: tuple[str, ...]
    resigned: bool
    data: bytes
    minimized: bytes | None = None
    minimize_note: str | None = None  #: why it was not minimised, with less time, or cut short (info.json)
    directory: Path | None = None

    @property
    def key(self) -> str:
        return hashlib.sha1(self.signature.encode(), usedforsecurity=False).hexdigest()[:12]


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

    @property
    def execs_per_s(self) -> float:
        return self.execs / self.elapsed if self.elapsed > 0 else 0.0

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


def _save(finding: Finding, config: FuzzConfig, into: Path | None = None) -> None:
    """Write ``crashes/<key>/`` (or ``into``, a regenerated finding's folder; input.bin, minimized.bin,
    info.json last): each file atomically (:func:`phoneemu.files.atomic_write`), so a fuzzer killed
    mid-write leaves the previous version or none, never a truncated finding; an ``info.json`` means the
    inputs beside it are complete. Its ``regenerate`` command rebuilds the input into
    ``crashes/<key>/regenerated/`` (``into`` itself for a regenerated one). The folder is made absolute
    (as ``--serve``'s): its commands, and :attr:`Finding.directory`, work from any working directory."""
    if into is not None:
        d = into.resolve()
    elif config.out is not None:
        d = config.out.resolve() / "crashes" / finding.key
    else:
        return
    d.mkdir(parents=True, exist_ok=True)
    atomic_write(d / "input.bin", finding.data)
    mini = finding.minimized if finding.minimized is not None else finding.data
    atomic_write(d / "minimized.bin", mini)
    mini_path = shlex.quote(str(d / "minimized.bin"))
    replay = f"{config.reproduce} --replay {mini_path}" if config.reproduce else ""
    regen_dir = d if into is not None else d / "regenerated"
    regen = (f"{config.reproduce} --seed {config.seed} --run-index {finding.first_run} "
             f"--regenerate {shlex.quote(str(regen_dir))}" if config.reproduce else "")
    info = {
        "format": config.fmt,
        "seed": config.seed,
        "run_index": finding.first_run,
        "kind": finding.kind,
        "signature": finding.signature,
        "count": finding.count,
        "ops": list(finding.ops),
        "resigned": finding.resigned,
        "input_size": len(finding.data),
        "minimized_size": len(mini),
        "minimize_note": finding.minimize_note,
        "detail": finding.detail,
        "reproduce": replay,
        "regenerate": regen,
    }
    atomic_write(d / "info.json", (json_doc.dumps(info, indent=2) + "\n").encode("utf-8"))
    finding.directory = d


def _finding(config: FuzzConfig, target: Target, mutant: Mutant, *, index: int, outcome: Outcome,
             save: Callable[[Finding], None] | None = None, time_left: float | None = None,
             clock: Callable[[], float] = time.monotonic, stopped_by: str | None = None) -> Finding:
    """A new finding of ``mutant`` (input ``index``), minimised as :func:`_minimize_plan` has it (none when
    ``stopped_by`` stopped the run), within ``time_left`` of the run's ``--time``, timed by ``clock``;
    ``save(finding)`` first, before minimising (a Ctrl-C while minimising keeps the finding), and again when
    a Ctrl-C cuts the minimising short (:func:`_minimize_into`)."""
    f = Finding(signature=outcome.signature, kind=outcome.status, first_run=index, count=1,
                detail=outcome.detail, ops=mutant.ops, resigned=mutant.resigned, data=mutant.data)
    watch = target if isinstance(target, RunWatch) else RunWatch(target)
    attempts, seconds, f.minimize_note = _minimize_plan(config, watch, outcome, time_left, stopped_by)
    if save is not None:
        save(f)
    if seconds > 0:
        _minimize_into(f, config, watch, outcome, attempts=attempts, seconds=seconds, clock=clock, save=save)
    return f


def _minimize_plan(config: FuzzConfig, watch: RunWatch, outcome: Outcome, time_left: float | None,
                   stopped_by: str | None) -> tuple[int, float, str | None]:
    """How a new finding is minimised (ours): the attempts, the seconds (0: not at all) and info.json's
    ``minimize_note``. A crash, or a hang of a target whose runs are bounded (``minimize_hangs``: a
    command's ``--timeout``), with the minimiser's budget; an in-process hang with the hang budget
    (``hang_minimize_attempts`` within ``hang_minimize_time``: each attempt that counts costs the hang
    time-out), and only where an attempt is stopped once it hangs (:meth:`RunWatch.can_stop_attempts`);
    none found as ``stopped_by`` (Ctrl-C or SIGTERM, the ``--time`` limit) stopped the run — no minimising
    begins after the request to stop; each within what is left of ``--time`` (:func:`_minimize_budget`)."""
    if not config.minimize or not outcome.is_finding:
        return 0, 0.0, None
    if stopped_by is not None:
        return 0, 0.0, f"not minimised: found as {stopped_by} stopped the run"
    attempts, seconds = config.minimize_attempts, config.minimize_time
    if outcome.status == "hang" and not watch.minimize_hangs:
        if not watch.can_stop_attempts():
            return 0, 0.0, ("not minimised: an in-process hang is minimised only where an attempt is stopped "
                            "once it hangs (SIGALRM free, main thread)")
        attempts = min(attempts, config.hang_minimize_attempts)
        seconds = min(seconds, config.hang_minimize_time)
    seconds, note = _minimize_budget(config, seconds, time_left)
    return attempts, seconds, note


def _minimize_budget(config: FuzzConfig, seconds: float, time_left: float | None) -> tuple[float, str | None]:
    """The seconds a finding may be minimised, and info.json's ``minimize_note`` (ours): its own ``seconds``,
    capped at what is left of ``--time`` so that ``--time`` bounds the run (was: a crash found just before
    it was minimised for up to 20 s more); none left: not minimised."""
    if time_left is None or time_left >= seconds:
        return seconds, None
    limit = f"--time ({config.time_limit:g} s)"
    if time_left <= 0:
        return 0.0, f"not minimised: found with no time left of {limit}"
    return time_left, (f"minimised within the {time_left:.2f} s left of {limit}, not the {seconds:g} s of a "
                       "minimisation")


def _minimize_into(f: Finding, config: FuzzConfig, watch: RunWatch, outcome: Outcome, *, attempts: int,
                   seconds: float, clock: Callable[[], float],
                   save: Callable[[Finding], None] | None) -> None:
    """``f.minimized``, within ``attempts`` and ``seconds``, an attempt looping for ever stopped at once. A
    Ctrl-C (or SIGTERM) meanwhile is raised on (ours): the smallest input found so far kept in
    ``f.minimized``, ``minimize_note`` saying so (was: ``null``, the whole input), ``save(f)`` again."""
    try:
        with watch.stopping_hangs(seconds):
            f.minimized = minimize(f.data, same_finding(watch, outcome), records=config.fmt in ("itl", "ctl"),
                                   max_attempts=attempts, time_limit=seconds, clock=clock)
    except KeyboardInterrupt as exc:
        if f.minimized is None:  # cut short (not a Ctrl-C held back until SIGALRM was given back, once done)
            best, done = (exc.best, exc.attempts) if isinstance(exc, MinimizeInterrupted) else (f.data, 0)
            f.minimized = best
            f.minimize_note = (f"minimisation stopped by Ctrl-C or SIGTERM after {done} attempts: "
                               "minimized.bin is the smallest input found so far")
        if save is not None:
            save(f)
        raise


def same_finding(watch: RunWatch, outcome: Outcome) -> Callable[[bytes], bool]:
    """The minimiser's predicate for the finding ``outcome``: a candidate run by ``watch`` gives the same
    status and signature. A candidate stopped at once (:meth:`RunWatch.stopping_hangs`: a hang, or past
    the minimiser's time) is not the same crash; for a hang finding it is the same hang when it was one
    by the target's rule (its hang signature compared; ours, :mod:`phoneemu.fuzz.runwatch`)."""

    def same(candidate: bytes) -> bool:
        try:
            o: Outcome | None = watch.run(candidate)
        except AttemptStopped:
            o = watch.cut_hang("the minimiser once it was a hang")
        return o is not None and o.status == outcome.status and o.signature == outcome.signature

    return same


def _record(report: FuzzReport, config: FuzzConfig, target: Target, mutant: Mutant, *, index: int,
            outcome: Outcome, time_left: float | None, clock: Callable[[], float],
            stopped_by: str | None = None) -> None:
    """Count ``outcome`` for its finding, or save a new one, minimised within ``time_left`` unless
    ``stopped_by`` stopped the run (:func:`_finding`)."""
    f = report.findings.get(outcome.signature)
    if f is not None:
        f.count += 1
        return
    def keep(new: Finding) -> None:
        report.findings[new.signature] = new
        _save(new, config)

    _save(_finding(config, target, mutant, index=index, outcome=outcome, save=keep, time_left=time_left,
                   clock=clock, stopped_by=stopped_by), config)


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
        f = _finding(config, target, mutant, index=index, outcome=outcome,
                     save=lambda new: _save(new, config, into))  # kept at a Ctrl-C while minimising
    _save(f, config, into)
    return outcome, f


def fuzz(config: FuzzConfig, target: Target, mutator: Mutator, *, start_index: int = 0,
         clock: Callable[[], float] = time.perf_counter) -> FuzzReport:
    """Run the loop (see module docstring) and return the report; findings are saved as found."""
    report = FuzzReport(fmt=config.fmt, seed=config.seed)
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
    try:
        with target.session(), watch.stop_at(config.time_limit):
            while (end is None or index < end) and (deadline is None or clock() < deadline):
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
                if progress.stream is not None and index % 64 == 0:
                    el = clock() - t0 - minimize_time
                    rate = (index - start_index) / el if el > 0 else 0.0
                    progress.update(f"{head}: {index - start_index} execs, {rate:,.0f} execs/s, "
                                    f"{len(report.findings)} unique finding(s), "
                                    f"{statuses['crash']} crash(es), {statuses['hang']} hang(s)")
    except (KeyboardInterrupt, RunOverrun) as exc:  # Ctrl-C, or a hang past --time: stop, and report and
        report.interrupted = isinstance(exc, KeyboardInterrupt)  # save what was found (a 2nd one aborts)
        if m0 is not None:
            minimize_time += clock() - m0
        stopped_by = "Ctrl-C or SIGTERM" if report.interrupted else "the --time limit"
        hang = watch.cut_hang(stopped_by)
        if under_way is not None and hang is not None:  # an endless loop's input: not lost, not minimised
            statuses[hang.status] += 1
            index += 1
            _record(report, config, watch, under_way, index=index - 1, outcome=hang,
                    time_left=None if deadline is None else deadline - clock(), clock=clock,
                    stopped_by=stopped_by)
    report.execs = index - start_index
    report.elapsed = max(1e-9, clock() - t0 - minimize_time)
    for f in report.findings.values():  # final counts into info.json
        _save(f, config)
    progress.done(f"{head}: {report.execs} execs, {report.execs_per_s:,.0f} execs/s, "
                  f"{len(report.findings)} unique finding(s), {statuses['crash']} crash(es), "
                  f"{statuses['hang']} hang(s)")
    return report
