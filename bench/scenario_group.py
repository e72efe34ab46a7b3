"""Start-up and first boot of one scenario phone group of N phones against a built-in lab cluster.

Times the two phases of a scenario with ``phones: {group: {count: N}}``: set-up (lab cluster, device
entries, one MIC per phone with its own fresh RSA-2048 key, phone flash directories) and one boot
of every phone over loopback (ITL, CTL-less config, TVS as the rules need). Scenario groups of
hundreds of phones are how users reproduce a boot storm in ``scenarios/``.

Usage: ``python bench/scenario_group.py [--phones 200] [--seeded]`` (``--seeded`` makes the lab
seeded: MIC keys come from a 16-key seeded pool). Prints the figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import tempfile
import time
from pathlib import Path

from phoneemu.scenario.loader import load_text
from phoneemu.scenario.world import World

_SCENARIO = """\
name: bench-scenario-group
reproduces: bench (not a catalogue scenario)
clusters:
  lab: {{{seed}}}
phones:
  storm: {{count: {count}, mac_start: 0B0000000001, profile: cp-8861}}
steps:
  - boot: storm
  - expect: {{phones: storm, itl: installed, config: accepted}}
"""


async def _run(count: int, seeded: bool, workdir: Path) -> tuple[float, float]:
    scenario = load_text(_SCENARIO.format(count=count, seed="seed: 7" if seeded else ""))
    world = World(scenario, workdir, start_time=1_800_000_000)
    t0 = time.perf_counter()
    try:
        await world.start()
        t1 = time.perf_counter()
        await world.boot(list(world.phones.values()))
        t2 = time.perf_counter()
    finally:
        await world.close()
    return t1 - t0, t2 - t1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phones", type=int, default=200)
    ap.add_argument("--seeded", action="store_true")
    args = ap.parse_args()
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    with tempfile.TemporaryDirectory(prefix="phoneemu-bench-") as tmp:
        setup, boot = asyncio.run(_run(args.phones, args.seeded, Path(tmp)))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    n = args.phones
    print(f"{n} phones ({'seeded' if args.seeded else 'unseeded'} lab, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f})")
    print(f"  set-up: {setup:6.2f} s  ({1000 * setup / n:.1f} ms/phone)")
    print(f"  boot:   {boot:6.2f} s  ({n / boot:.0f} boots/s)")
    print(f"  CPU:    {cpu:6.2f} s  (this process, set-up + boot)")


if __name__ == "__main__":
    main()
