"""Phone-side instructions per storm boot, counted by valgrind (issue #6): a repeatable A/B measure.

Why: on a shared 2-core VM, boots/s and CPU ms per boot move by ±20 % from one run to the next, so a
change worth a few percent cannot be seen in ``bench/fleet.py``. ``valgrind --tool=callgrind`` counts
the instructions one phone process executes in user space: the same figure for the same code and
inputs, whatever else the machine does (it does not count the kernel's work, nor the lab's).

What one run does: the lab of ``bench/fleet.py`` (same build, same cache) serves in its own process,
natively; one phone shard boots N phones under callgrind (the same boot as the storm: CTL, ITL,
signed config, one TVS lookup over TLS, 512-byte TFTP blocks), then the same shard again with no
boot at all (phones built and pre-stated, the storm bounded to 0 s). The difference divided by N is
the instruction count of one boot; start-up, imports and phone set-up cancel out.

* N above 256 (the default 400) so that per-phone files overflow the shared intern cache, as in a
  real storm; N must not exceed the phones of the cached lab (``--lab-dir``, default the bench's
  ``<N>-rsa2048`` folder, built when missing).
* Timeouts are long (30 s per TFTP packet, 60 s per TVS exchange): a phone under valgrind runs some
  50 times slower, and a retransmission would change what is measured. The run fails if a boot fails.
* valgrind must be installed (Debian's ``valgrind``); the script says so otherwise.

    python bench/fleet_instructions.py                 # 400 phones
    python bench/fleet_instructions.py --phones 600 --json

``--json``: the last line is one JSON object with ``instructions_per_boot``, ``phones``, ``booted``,
``boot_run_instructions``, ``setup_run_instructions``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: bench/ is importable from the checkout's root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fleet import HOST, MAC_START, MARKER, _lab_main, bench_prestate, build_lab
from phoneemu.errors import PhoneEmuError
from phoneemu.fleet.engine import FleetSpec, mac_range, run_shard
from phoneemu.fleet.loop import run_on
from phoneemu.phone.boot import BootTarget

_COLLECTED = re.compile(r"Collected\s*:\s*([\d,]+)")


def _child(root: Path, phones: int, boots: bool) -> dict[str, Any]:
    """The measured process: lab in a native child process, one phone shard here."""
    ctx = mp.get_context("spawn")
    q, stop, cpu = ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    lab = ctx.Process(target=_lab_main, args=(str(root), q, stop, cpu, "auto"), daemon=True)
    lab.start()
    try:
        msg = q.get(timeout=600)
        if msg[0] != "ports":
            raise PhoneEmuError(f"lab failed: {msg[1]}")
        target = BootTarget(host=HOST, tftp_port=msg[1]["tftp"], use_http=False)
        spec = FleetSpec(target=target, count=phones, mac_start=MAC_START, prestate=bench_prestate(root),
                         fetch_timeout=30.0, tvs_timeout=60.0, max_time_s=None if boots else 0.0)
        result = run_on("auto", run_shard(spec, mac_range(MAC_START, phones)))
        return {"booted": result.metrics.booted, "failed": result.metrics.failed,
                "not_started": result.not_started}
    finally:
        stop.set()
        lab.join(30)
        if lab.is_alive():
            lab.terminate()


def _measure(valgrind: str, root: Path, phones: int, boots: bool) -> tuple[int, dict[str, Any]]:
    """(instructions, child summary) of one child run under callgrind."""
    with tempfile.TemporaryDirectory(prefix="phoneemu-callgrind-") as tmp:
        cmd = [valgrind, "--tool=callgrind", f"--callgrind-out-file={Path(tmp) / 'out'}", sys.executable,
               "-m", "bench.fleet_instructions", "--child", "--phones", str(phones), "--lab-dir", str(root)]
        if not boots:
            cmd.append("--no-boot")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, check=False,
                              cwd=Path(__file__).resolve().parent.parent)
    found = _COLLECTED.search(proc.stderr)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or found is None or not lines:
        tail = "\n".join(proc.stderr.splitlines()[-15:])
        raise PhoneEmuError(f"callgrind run failed (exit {proc.returncode}):\n{tail}")
    return int(found.group(1).replace(",", "")), json.loads(lines[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phones", type=int, default=400)
    ap.add_argument("--lab-dir", type=Path, default=None)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--no-boot", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phones < 1:
        ap.error("--phones must be at least 1")
    root = args.lab_dir or Path(tempfile.gettempdir()) / "phoneemu-bench-fleet" / f"{args.phones}-rsa2048"
    if args.child:
        print(json.dumps(_child(root, args.phones, boots=not args.no_boot)))
        return 0
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    if args.lab_dir is None:
        try:
            info = build_lab(root, args.phones, "rsa2048")
        except PhoneEmuError as exc:
            print(f"fleet_instructions: {exc}", file=sys.stderr)
            return 2
    else:
        try:
            info = json.loads((root / MARKER).read_text())
        except (OSError, ValueError) as exc:
            ap.error(f"{root} is not a lab built by bench/fleet.py ({exc})")
    if int(info.get("phones", 0)) < args.phones:
        ap.error(f"{root} holds a lab for {info.get('phones')} phones, fewer than --phones {args.phones}")
    try:
        with_boots, summary = _measure(valgrind, root, args.phones, boots=True)
        setup_only, _ = _measure(valgrind, root, args.phones, boots=False)
    except (PhoneEmuError, subprocess.TimeoutExpired) as exc:
        print(f"fleet_instructions: {exc}", file=sys.stderr)
        return 1
    if summary["booted"] != args.phones:
        print(f"not every phone booted: {summary}", file=sys.stderr)
        return 1
    per_boot = (with_boots - setup_only) // args.phones
    out = {"phones": args.phones, "booted": summary["booted"], "instructions_per_boot": per_boot,
           "boot_run_instructions": with_boots, "setup_run_instructions": setup_only}
    if not args.json:
        print(f"{args.phones} phones booted under callgrind: {per_boot:,} phone-side instructions per boot "
              f"(user space; boot run {with_boots:,}, set-up-only run {setup_only:,})")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
