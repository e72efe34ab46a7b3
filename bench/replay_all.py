"""``phoneemu replay CAPTURE --all`` on a storm of N phones: seconds, phones/s and peak RSS.

The capture is the boot storm of ``bench/fleet.py`` as a SPAN port would hold it: the benchmark lab
for N phones (``bench/fleet.py``'s cache, built once: previous CTL/ITL kept, ITLRecovery regenerated)
serves each phone, over TFTP (512-byte blocks, one client socket per phone, phones interleaved by
``--concurrency``), ``CTLSEP<MAC>.tlv``, ``ITLSEP<MAC>.tlv``, ``SEP<MAC>.cnf.xml.sgn`` and the two
signed static files. The capture is synthesised once and cached beside the lab
(``storm-<concurrency>.pcap``).

The replay then runs in a child process as a user runs it, every phone holding the lab's previous
CTL and ITL (``--installed-ctl``/``--installed-itl``) and its config (``--installed-config-dir``: the
lab's TFTP folder, as the storm's phones hold it), the offline TVS vouching for the new
ITLRecovery certificate (``--tvs-cert``): each phone decides as the storm's phones do (CTL signer
vouched by TVS, ITL signed by the CTL's ITLRecovery, config signed by the CTL's CallManager). Reported:
wall seconds, phones/s, the child's peak RSS (``wait4``) and the outcomes (all ``ok`` when the
replay decided as the storm did).

    python bench/replay_all.py --phones 10000
    python bench/replay_all.py --phones 40000 --json
    python bench/replay_all.py --phones 10000 --code /tmp/old-clone
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from phoneemu.errors import PhoneEmuError
from phoneemu.fleet.engine import mac_text
from phoneemu.net.capture import PcapWriter
from phoneemu.net.tftp_codec import Data, ReadRequest, encode

if __package__ in (None, ""):  # run as a script: the repository root is where ``bench`` is
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fleet import MAC_START, build_lab  # the fleet benchmark's lab
from bench.replay import peak_rss_run

ROOT = Path(__file__).resolve().parents[1]
PHONE_NET = "10.20"  # phones at 10.20.x.y (a capture's addresses; nothing is sent)
SERVER = ("10.10.0.5", 69)
STATIC = ("g3-tones.xml.sgn", "AppDialRules.xml.sgn")


def _transfer(w: PcapWriter, client: tuple[str, int], tid: int, name: str, data: bytes, t: float) -> float:
    """One TFTP read of ``data`` as the wire holds it; the time after it."""
    w.udp(client, SERVER, encode(ReadRequest(filename=name, options={})), ts=t)
    server = (SERVER[0], tid)
    blocks = [data[i:i + 512] for i in range(0, len(data) + 1, 512)] if len(data) % 512 == 0 else \
        [data[i:i + 512] for i in range(0, len(data), 512)]
    for n, chunk in enumerate(blocks, 1):
        t += 0.0002
        w.udp(server, client, encode(Data(block=n & 0xFFFF, data=chunk)), ts=t)
        w.udp(client, server, (4).to_bytes(2, "big") + (n & 0xFFFF).to_bytes(2, "big"), ts=t + 0.0001)
    return t + 0.0002


def synthesise(lab: Path, phones: int, concurrency: int, out: Path) -> None:
    """The storm's TFTP packets (module docstring), ``concurrency`` phones' boots interleaved file by file."""
    tftp = lab / "tftp"
    static = {name: (tftp / name).read_bytes() for name in STATIC}
    t, tid = 1_800_000_000.0, 1024
    tmp = out.with_suffix(".partial")
    with PcapWriter(tmp) as w:
        for first in range(0, phones, concurrency):
            group = [mac_text(MAC_START + i) for i in range(first, min(phones, first + concurrency))]
            files = [[(f"CTLSEP{m}.tlv", (tftp / f"CTLSEP{m}.tlv").read_bytes()),
                      (f"ITLSEP{m}.tlv", (tftp / f"ITLSEP{m}.tlv").read_bytes()),
                      (f"SEP{m}.cnf.xml.sgn", (tftp / f"SEP{m}.cnf.xml.sgn").read_bytes()),
                      *static.items()] for m in group]
            for step in range(len(files[0])):
                for k, phone_files in enumerate(files):
                    i = first + k
                    client = (f"{PHONE_NET}.{i // 250 % 250}.{i % 250 + 1}", 40000 + i % 20000)
                    tid = tid + 1 if tid < 65000 else 1024
                    t = _transfer(w, client, tid, *phone_files[step], t)
    tmp.rename(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phones", type=int, default=10_000, help="phones in the storm (default 10000)")
    ap.add_argument("--concurrency", type=int, default=256, help="boots interleaved in the capture (256)")
    ap.add_argument("--lab-dir", type=Path, help="the benchmark lab (default: bench/fleet.py's cache)")
    ap.add_argument("--code", type=Path, default=ROOT, help="the phoneemu tree to run (default this one)")
    ap.add_argument("--json", action="store_true", help="one JSON line")
    args = ap.parse_args()
    lab = args.lab_dir or Path(tempfile.gettempdir()) / "phoneemu-bench-fleet" / f"{args.phones}-rsa2048"
    try:
        build_lab(lab, args.phones, "rsa2048")
    except PhoneEmuError as exc:
        print(f"replay_all: {exc}", file=sys.stderr)
        return 2
    pcap = lab / f"storm-{args.concurrency}.pcap"
    if not pcap.exists():
        t0 = time.perf_counter()
        print(f"synthesising the storm capture {pcap} (once; cached) ...", file=sys.stderr, flush=True)
        synthesise(lab, args.phones, args.concurrency, pcap)
        print(f"capture made in {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
    gen0 = lab / "bench-gen0"
    argv = ["replay", str(pcap), "--all", "--json", "--installed-itl", str(gen0 / "ITLFile.tlv"),
            "--installed-ctl", str(gen0 / "CTLFile.tlv"), "--installed-config-dir", str(lab / "tftp"),
            "--tvs-cert", str(lab / "certs" / "itlrecovery.pem")]
    got = peak_rss_run(args.code.resolve(), argv)
    if got["exit"] not in (0, 1):
        print(got["stderr"], file=sys.stderr)
        return 2
    doc = json.loads(got["stdout"])
    result = {"phones": args.phones, "capture_mib": round(pcap.stat().st_size / 2**20, 1),
              "packets": doc["packets"], "wall_s": round(got["seconds"], 2),
              "phones_per_s": round(doc["phones"] / got["seconds"], 1),
              "peak_rss_mib": round(got["rss_kib"] / 1024, 1),
              "by_outcome": doc["by_outcome"], "by_rule": doc["by_rule"], "warnings": len(doc["warnings"]),
              "code": str(args.code)}
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>14}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
