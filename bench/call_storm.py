"""Call storm: N encrypted phones boot, register over TLS and call music on hold with SRTP at once.

What a user runs (README, *Fleets*), in subprocesses: ``lab init --seed``, ``lab phone add --count N``,
``lab mixed-mode on``, ``lab security-mode encrypted`` for every phone, ``lab serve --sip-port 0
--sips-port 0`` (its own process, ephemeral ports read from its first lines), then twice ``fleet boot
--lab DIR --count N --register`` (one shard per core; ``--lab``: each phone presents the MIC the lab
issued it, mutual TLS): once registering only, once with ``--call moh --packets P`` — the difference is
what the calls cost (SDP offer/answer with SDES keys, P SRTP packets each way, every tag verified).

Prints one JSON line: ``phones``, ``packets``, ``register_wall_s`` / ``call_wall_s`` (each storm),
``registered_per_s`` / ``called_per_s`` (phones through boot + registration [+ call] per second),
``call_ms_per_phone`` (the extra wall time a call adds, per phone, on all cores), ``srtp_packets_per_s``
(both directions, over the call storm), ``lab_cpu_ms_per_phone`` (the ``lab serve`` process's user+system
CPU per phone, register-only and with the call), ``by_media`` and ``media_suites`` (how the calls ended),
``load_avg_1m``. Asserts nothing.

    python bench/call_storm.py --phones 1000
    python bench/call_storm.py --phones 500 --packets 50
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

if __package__ in (None, ""):  # run as a script: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.capf_storm import START, _cpu_s, _phoneemu  # the CAPF storm's way of running phoneemu


def _wait_ports(serve: subprocess.Popen[str]) -> None:
    """Until ``lab serve`` prints its SIP over TLS port (the last it prints), within 60 s."""
    deadline = time.monotonic() + 60
    assert serve.stdout is not None
    while time.monotonic() < deadline:
        line = serve.stdout.readline()
        if not line:
            break
        if re.match(r"listening sips\s+tls \S+:\d+", line):
            return
    raise SystemExit("lab serve did not print its SIP over TLS port")


def _storm(lab: Path, n: int, report: Path, serve_pid: int,
           *call: str) -> tuple[float, float, dict[str, object]]:
    """One ``fleet boot --lab --register [--call ...]``: (wall s, lab CPU s, its summary)."""
    cpu0, t0 = _cpu_s(serve_pid), time.monotonic()
    subprocess.run([sys.executable, "-m", "phoneemu", "fleet", "boot", "--lab", str(lab), "--count", str(n),
                    "--mac-start", START, "--register", *call, "--json", str(report), "-q"],
                   check=False,  # exit 1 when a phone failed: counted in the summary
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=3600)
    wall, cpu = time.monotonic() - t0, _cpu_s(serve_pid) - cpu0
    return wall, cpu, json.loads(report.read_text())["summary"]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phones", type=int, default=1000, help="phones calling at once (default 1000)")
    p.add_argument("--packets", type=int, default=10, help="SRTP packets each way per call (default 10)")
    args = p.parse_args(argv)
    n = args.phones
    with tempfile.TemporaryDirectory(prefix="phoneemu-call-storm-") as tmp:
        lab = Path(tmp) / "lab"
        _phoneemu("lab", "init", str(lab), "--seed", "1", "--key", "rsa2048")
        _phoneemu("lab", "phone", "add", str(lab), "--mac", START, "--count", str(n))
        _phoneemu("lab", "mixed-mode", str(lab), "on")
        _phoneemu("lab", "security-mode", str(lab), "--mac", START, "--count", str(n), "encrypted")
        serve = subprocess.Popen([sys.executable, "-m", "phoneemu", "lab", "serve", "--dir", str(lab),
                                  "--tftp-port", "0", "--http-port", "0", "--tvs-port", "0", "--capf-port",
                                  "0", "--sip-port", "0", "--sips-port", "0"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            _wait_ports(serve)
            report = Path(tmp) / "fleet.json"
            reg_wall, reg_cpu, reg = _storm(lab, n, report, serve.pid)
            call_wall, call_cpu, called = _storm(lab, n, report, serve.pid, "--call", "moh", "--packets",
                                                 str(args.packets))
        finally:
            serve.terminate()
            serve.wait(30)
    print(json.dumps({
        "phones": n, "packets": args.packets,
        "register_wall_s": round(reg_wall, 2), "call_wall_s": round(call_wall, 2),
        "registered_per_s": round(n / reg_wall, 1), "called_per_s": round(n / call_wall, 1),
        "call_ms_per_phone": round(1e3 * (call_wall - reg_wall) / n, 3),
        "srtp_packets_per_s": round(2 * n * args.packets / call_wall, 1),
        "lab_cpu_ms_per_phone": {"register": round(1e3 * reg_cpu / n, 2),
                                 "call": round(1e3 * call_cpu / n, 2)},
        "by_sip": reg.get("by_sip", {}), "by_media": called.get("by_media", {}),
        "media_suites": called.get("media_suites", {}), "failed": called.get("failed"),
        "load_avg_1m": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
