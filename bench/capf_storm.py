"""CAPF enrolment storm: N phones with an LSC install pending enrol at once against ``phoneemu lab serve``.

What a user runs (README, *Fleets*), in subprocesses: ``lab init --seed`` (MIC keys from a seeded pool:
set-up in seconds), ``lab phone add --count N``, ``lab capf DIR install --count N --auth-mode
null-string --lsc-key K``, ``lab serve`` (its own process, ephemeral ports read from its first lines)
and ``fleet boot --count N`` (one shard per core). ``--auth-mode mic``: the phones authenticate by the
MIC the lab issued each (``fleet boot --lab``), signing with it twice, the lab checking both. Then the
lab's ``cluster.json`` is read back: every phone must hold its recorded LSC with nothing pending.

Prints one JSON line: ``phones``, ``lsc_key``, ``wall_s`` (the storm), ``enrolments_per_s``,
``lab_cpu_ms_per_enrolment`` (the ``lab serve`` process's user+system CPU over the storm), ``booted``,
``failed``, ``recorded`` (LSC in the state, nothing pending), ``by_capf`` (how the phones' CAPF sessions
ended), ``load_avg_1m``. The phones make their LSC
keys (``--lsc-key rsa2048``: ~35 ms each, the phones' CPU is then the limit; ``ec-p256``, the default
here: the lab's is). Asserts nothing.

    python bench/capf_storm.py --phones 2000
    python bench/capf_storm.py --phones 500 --lsc-key rsa2048
    python bench/capf_storm.py --phones 2000 --auth-mode mic
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START = "0A0000000000"


def _phoneemu(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "phoneemu", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=3600)


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ports(serve: subprocess.Popen[str]) -> dict[str, int]:
    """The ports ``lab serve`` prints (``listening tftp udp 127.0.0.1:PORT`` ...), read within 60 s."""
    ports: dict[str, int] = {}
    deadline = time.monotonic() + 60
    assert serve.stdout is not None
    while len(ports) < 3 and time.monotonic() < deadline:
        line = serve.stdout.readline()
        if not line:
            break
        m = re.match(r"listening (tftp|http|capf)\s+\w+ \S+:(\d+)", line)
        if m:
            ports[m.group(1)] = int(m.group(2))
    if len(ports) < 3:
        raise SystemExit(f"lab serve did not print its ports: {ports}")
    return ports


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phones", type=int, default=1000, help="phones enrolling at once (default 1000)")
    p.add_argument("--lsc-key", default="ec-p256", help="LSC key the phones make (default ec-p256)")
    p.add_argument("--auth-mode", default="null-string", choices=("null-string", "mic"),
                   help="how the phones prove themselves to CAPF (default null-string; mic: by the MIC the "
                   "lab issued each, given with fleet boot --lab, two signatures per phone checked by the "
                   "lab)")
    args = p.parse_args(argv)
    n = args.phones
    with tempfile.TemporaryDirectory(prefix="phoneemu-capf-storm-") as tmp:
        lab = Path(tmp) / "lab"
        _phoneemu("lab", "init", str(lab), "--seed", "1", "--key", "rsa2048")
        _phoneemu("lab", "phone", "add", str(lab), "--mac", START, "--count", str(n))
        _phoneemu("lab", "capf", str(lab), "install", "--mac", START, "--count", str(n), "--auth-mode",
                  args.auth_mode, "--lsc-key", args.lsc_key)
        serve = subprocess.Popen([sys.executable, "-m", "phoneemu", "lab", "serve", "--dir", str(lab),
                                  "--tftp-port", "0", "--http-port", "0", "--tvs-port", "0", "--capf-port",
                                  "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            ports = _ports(serve)
            report = Path(tmp) / "fleet.json"
            cpu0, t0 = _cpu_s(serve.pid), time.monotonic()
            subprocess.run([sys.executable, "-m", "phoneemu", "fleet", "boot", "--count", str(n),
                            "--mac-start", START, "--tftp", f"127.0.0.1:{ports['tftp']}", "--http-port",
                            str(ports["http"]), "--json", str(report), "-q",
                            *(["--lab", str(lab)] if args.auth_mode == "mic" else [])],
                           check=False,  # exit 1 when a phone failed: counted below
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=3600)
            wall, cpu = time.monotonic() - t0, _cpu_s(serve.pid) - cpu0
        finally:
            serve.terminate()
            serve.wait(30)
        summary = json.loads(report.read_text())["summary"]
        phones = json.loads((lab / "cluster.json").read_text())["phones"].values()
        recorded = sum(1 for ph in phones if ph["has_lsc"] and ph["capf_operation"] is None)
        by_capf = summary.get("by_capf", {})
    print(json.dumps({"phones": n, "lsc_key": args.lsc_key, "auth_mode": args.auth_mode,
                      "wall_s": round(wall, 2), "enrolments_per_s": round(n / wall, 1),
                      "lab_cpu_ms_per_enrolment": round(1e3 * cpu / n, 2), "booted": summary["booted"],
                      "failed": summary["failed"], "recorded": recorded, "by_capf": by_capf,
                      "load_avg_1m": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
