"""Fuzz our own parsers: ``python bench/fuzz.py [--runs N] [--workers W] [--seed S]`` (issue #7).

Runs N mutated inputs (default 1,000,000) split evenly across ITL, CTL, ``.sgn`` and ``.enc.sgn``
through ``phoneemu fuzz --target phoneemu``'s in-process target, on ``--workers`` processes
(default: all cores, at most 2). Prints execs/s per format (per core: over the wall time of each
worker's fuzz loop, and per CPU-second that worker got, which is higher on a loaded machine; and
overall), findings by signature (anything but DecodeError / VerificationError escaping —
warnings included —, a parsed file that does not serialise back to its bytes, or a run over 1 s), the
slowest input, and memory: the tracemalloc peak of a 200-input sample taken every 50,000 inputs
in each worker, and each worker's peak RSS; the load average at the start and the end (wall-clock
rates mean little on a busy machine; compare the per-CPU-second column). Exit status 1 when there
is any finding.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sys
import time
import tracemalloc
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phoneemu.fuzz.corpus import FORMATS, build_corpus
from phoneemu.fuzz.engine import FuzzConfig, fuzz
from phoneemu.fuzz.mutators import Mutator
from phoneemu.fuzz.targets import PythonTarget, phoneemu_callable

_DEFAULT_FORMATS = ("itl", "ctl", "sgn", "enc")  # firmware, tvs-*, capf: --formats (figures stay comparable)
SAMPLE_EVERY = 50_000
SAMPLE_SIZE = 200


@dataclass
class Chunk:
    fmt: str
    seed: int
    start: int
    count: int
    round_trip: bool = True


@dataclass
class ChunkResult:
    fmt: str
    execs: int = 0
    cpu_elapsed: float = 0.0  # wall-clock seconds spent in the fuzz loop (one worker = one core)
    cpu_time: float = 0.0  # CPU seconds of this process in the fuzz loop (what the core really gave)
    statuses: Counter[str] = field(default_factory=Counter)
    findings: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # sig -> (count, run, detail)
    slowest: float = 0.0
    traced_peak: int = 0
    rss_kib: int = 0


def _run_chunk(chunk: Chunk) -> ChunkResult:
    corpus = build_corpus(chunk.fmt)
    mutator = Mutator(corpus)
    func = phoneemu_callable(chunk.fmt, corpus, round_trip=chunk.round_trip)
    target = PythonTarget(func, hang_after=1.0, warnings_as_errors=True)
    res = ChunkResult(fmt=chunk.fmt)
    pos, end = chunk.start, chunk.start + chunk.count
    while pos < end:
        n = min(SAMPLE_EVERY, end - pos)
        c0 = time.process_time()
        rep = fuzz(FuzzConfig(fmt=chunk.fmt, seed=chunk.seed, runs=n, minimize=False), target, mutator,
                   start_index=pos)
        res.cpu_time += time.process_time() - c0
        res.execs += rep.execs
        res.cpu_elapsed += rep.elapsed
        res.statuses.update(rep.statuses)
        res.slowest = max(res.slowest, rep.slowest)
        for sig, f in rep.findings.items():
            old = res.findings.get(sig)
            res.findings[sig] = (f.count + (old[0] if old else 0), old[1] if old else f.first_run,
                                 old[2] if old else f.detail)
        pos += n
        # memory sample: peak traced allocation while running SAMPLE_SIZE more inputs
        tracemalloc.start()
        fuzz(FuzzConfig(fmt=chunk.fmt, seed=chunk.seed + 1_000_003, runs=SAMPLE_SIZE, minimize=False),
             target, mutator, start_index=pos)
        res.traced_peak = max(res.traced_peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    res.rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return res


def _load() -> str:
    """The 1/5/15-minute load average: wall-clock figures mean little on a busy machine."""
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not available on this platform
        return "?"


def _warm(fmt: str) -> None:
    build_corpus(fmt)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1_000_000, help="total inputs across the four formats")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--formats", default=",".join(_DEFAULT_FORMATS),
                    help=f"comma-separated, of {', '.join(FORMATS)} (default: the four the figures were "
                    "taken with)")
    ap.add_argument("--no-round-trip", action="store_true", help="skip the serialise(parse(b)) == b oracle")
    args = ap.parse_args(argv)
    fmts = [f for f in args.formats.split(",") if f]
    per_fmt = args.runs // len(fmts)
    parts = max(1, args.workers * 2)
    size = per_fmt // parts
    chunks = [Chunk(fmt, args.seed, i * size, size + (per_fmt % parts if i == parts - 1 else 0),
                    round_trip=not args.no_round_trip)
              for fmt in fmts for i in range(parts)]
    print(f"fuzzing {per_fmt * len(fmts):,} inputs ({per_fmt:,} per format: {', '.join(fmts)}) "
          f"on {args.workers} worker(s), seed {args.seed}; load average {_load()}", flush=True)
    t0 = time.perf_counter()
    results: dict[str, list[ChunkResult]] = defaultdict(list)
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(args.workers) as pool:
        for fmt in fmts:  # build the corpora once, before forking the work
            _warm(fmt)
        for r in pool.imap_unordered(_run_chunk, chunks):
            results[r.fmt].append(r)
            done = sum(x.execs for rs in results.values() for x in rs)
            print(f"  {r.fmt}: chunk of {r.execs:,} done ({r.execs / r.cpu_elapsed:,.0f} execs/s); "
                  f"total {done:,} in {time.perf_counter() - t0:.0f} s", flush=True)
    wall = time.perf_counter() - t0
    total_findings = 0
    width = max(6, *(len(f) for f in fmts))  # the format column fits the longest name (sip-response)
    print(f"\n{'format':{width}} {'execs':>10} {'execs/s/core':>13} {'per CPU-s':>10} {'handled':>9} "
          f"{'ok':>7} {'findings':>9} {'slowest':>9} {'traced peak':>12} {'max RSS':>9}")
    for fmt in fmts:
        rs = results[fmt]
        execs = sum(r.execs for r in rs)
        cpu = sum(r.cpu_elapsed for r in rs)
        cpu_s = sum(r.cpu_time for r in rs)
        st: Counter[str] = Counter()
        for r in rs:
            st.update(r.statuses)
        finds: dict[str, list[int]] = {}
        details: dict[str, str] = {}
        for r in rs:
            for sig, (count, run, detail) in r.findings.items():
                entry = finds.setdefault(sig, [0, run])
                entry[0] += count
                entry[1] = min(entry[1], run)
                details.setdefault(sig, detail)
        total_findings += sum(v[0] for v in finds.values())
        peak = max(r.traced_peak for r in rs) / 1024
        rss = max(r.rss_kib for r in rs) / 1024
        print(f"{fmt:{width}} {execs:>10,} {execs / cpu:>13,.0f} {execs / max(cpu_s, 1e-9):>10,.0f} "
              f"{st['handled']:>9,} {st['ok']:>7,} {sum(v[0] for v in finds.values()):>9,} "
              f"{max(r.slowest for r in rs) * 1000:>7.1f}ms "
              f"{peak:>9,.0f}KiB {rss:>6,.0f}MiB")
        for sig, (count, run) in sorted(finds.items(), key=lambda kv: -kv[1][0]):
            print(f"    {count:>7,} x {sig}   (first: seed {args.seed} run {run}; replay with "
                  f"phoneemu fuzz --format {fmt} --target phoneemu --seed {args.seed} --run-index {run} "
                  f"--runs 1 --out DIR)")
            last = details[sig].strip().splitlines()[-1:] or [""]
            print(f"            {last[0]}")
    total = sum(r.execs for rs in results.values() for r in rs)
    print(f"\n{total:,} inputs in {wall:.1f} s wall on {args.workers} worker(s): "
          f"{total / wall:,.0f} execs/s overall; {total_findings:,} finding(s) (crashes + hangs); "
          f"load average {_load()} on {os.cpu_count()} CPU(s)")
    return 1 if total_findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
