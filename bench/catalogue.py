"""The README's main job: ``phoneemu run scenarios/`` (the whole catalogue on the built-in lab), timed.

Run: ``python bench/catalogue.py [--runs 3] [-j 1] [--against DIR]``

Each run is a fresh ``python -m phoneemu run scenarios/ -j N`` process (imports, lab key generation
and all), with ``PYTHONPATH`` set to this checkout. ``--against DIR`` names another checkout (e.g. a
clone at the commit before a change): its runs alternate with ours, so both see the same machine
load. Figures per run: wall time and CPU time (user + sys of the run and its children, e.g. ``-j``
workers); on this shared 2-core VM the wall time follows what else runs (the load average is
printed), the CPU time much less. The last line is one JSON object:
``{"jobs": N, "this": {"wall": [...], "cpu": [...], "wall_median": s, "cpu_median": s}, "against":
{...} | null, "load": [1-minute load average before each run]}``. A run that does not end with
``OK:`` is reported (``"failed"``) and stops the bench.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _child_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run_once(tree: Path, jobs: int) -> tuple[float, float, str]:
    """(wall s, CPU s, last line of output) of one catalogue run with ``tree`` first on the path."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    cpu0, t0 = _child_cpu(), time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "phoneemu", "run", "scenarios/", "-j", str(jobs)],
                          cwd=tree, env=env, capture_output=True, text=True, check=False)
    wall, cpu = time.perf_counter() - t0, _child_cpu() - cpu0
    lines = proc.stdout.strip().splitlines() or ["(no output)"]
    last = lines[-1] if proc.returncode == 0 else f"exit {proc.returncode}: {lines[-1]} {proc.stderr[-300:]}"
    return wall, cpu, last


def _summary(walls: list[float], cpus: list[float]) -> dict[str, Any]:
    return {"wall": [round(w, 2) for w in walls], "cpu": [round(c, 2) for c in cpus],
            "wall_median": round(statistics.median(walls), 2),
            "cpu_median": round(statistics.median(cpus), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("-j", "--jobs", type=int, default=1, help="phoneemu run -j (0: one per core)")
    ap.add_argument("--against", type=Path, metavar="DIR", help="another checkout, run alternately")
    args = ap.parse_args()
    trees = {"this": ROOT} | ({"against": args.against.resolve()} if args.against else {})
    walls: dict[str, list[float]] = {k: [] for k in trees}
    cpus: dict[str, list[float]] = {k: [] for k in trees}
    load: list[float] = []
    for i in range(args.runs):
        for name, tree in trees.items():
            load.append(round(os.getloadavg()[0], 2))
            wall, cpu, last = run_once(tree, args.jobs)
            print(f"run {i + 1} {name:7} wall {wall:6.2f} s  cpu {cpu:6.2f} s  load {load[-1]:.2f}  {last}",
                  file=sys.stderr)
            if not last.startswith("OK:"):
                print(json.dumps({"jobs": args.jobs, "failed": f"{name}: {last}"}))
                sys.exit(1)
            walls[name].append(wall)
            cpus[name].append(cpu)
    out = {"jobs": args.jobs, "this": _summary(walls["this"], cpus["this"]),
           "against": _summary(walls["against"], cpus["against"]) if args.against else None, "load": load}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
