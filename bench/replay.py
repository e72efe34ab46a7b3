"""Replay of one phone out of a large capture: peak RSS and seconds (streaming capture reader).

A voice engineer's capture is a SPAN port of a production cluster: gigabytes, thousands of phones,
one of which is replayed. This benchmark synthesises such a capture once (cached in
``$TMPDIR/phoneemu-bench-replay/``; made again when the phones' capture changes): the packets of
``captures/first-boot-trusts-first-itl.pcap`` (three phones, two boots each, HTTP 6970) in the middle
of N MB of traffic of other hosts —

* RTP-like UDP (10.1.0.0/16 → 10.2.0.0/16, 160-1200 byte payloads; not TFTP),
* TCP connections of other hosts (SYN, then 1460-byte segments both ways, FIN),
* HTTP 6970 downloads of other phones (``SEP<mac>.cnf.xml`` and a shared ``ITLFile.tlv`` from
  another server, 4-40 KB bodies),

then runs ``python -m phoneemu replay FILE --mac 0A0000000001 --json`` in a child process per size
and reports its wall time and peak RSS (``wait4`` of that child), and whether its decisions equal
those of the replay of the clean committed capture (``same_decisions``).

``--code DIR`` runs the phoneemu found in DIR (e.g. an untouched clone, for before/after figures).

``--adversarial CONNS`` instead builds a capture made to exceed the overall budget of buffered bytes:
the phones' packets, then CONNS HTTP 6970 connections of other clients open at once, each response
(``--adversarial-kib`` KiB, default 1024) missing its first segment, so that every byte waits out of
order (within the 8 MiB per-direction cap) and the connections never end; ``--max-memory`` is passed on.
With ``--adversarial-kind downloads`` the CONNS connections instead each complete one download, of a
distinct cluster-wide name from the phones' server, one after another: kept for the replayed phone's
last boot window, so their bytes are what the budget must bound (kept downloads). Both report whether
the decisions equal those of the clean capture (``same_decisions``).

    python bench/replay.py --sizes 50,500
    python bench/replay.py --sizes 50 --code /tmp/old-clone --json
    python bench/replay.py --adversarial 600 --code /tmp/old-clone
    python bench/replay.py --adversarial 600 --adversarial-kind downloads --code /tmp/old-clone
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from phoneemu.net.capture import inet_checksum

ROOT = Path(__file__).resolve().parents[1]
CAPTURE = ROOT / "captures" / "first-boot-trusts-first-itl.pcap"
MAC = "0A0000000001"
FORMAT = 3  # bump when the synthesised file changes


def _ipv4(src: bytes, dst: bytes, proto: int, l4: bytes) -> bytes:
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0, 0x4000, 64, proto, 0, src, dst))
    struct.pack_into("!H", hdr, 10, inet_checksum(bytes(hdr)))
    return bytes(hdr) + l4  # L4 checksums left 0: phoneemu does not check them (neither does a SPAN tap)


def _udp(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes) -> bytes:
    return _ipv4(src, dst, 17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)


def _tcp(src: bytes, dst: bytes, sport: int, dport: int, seq: int, ack: int, flags: int,
         payload: bytes = b"") -> bytes:
    return _ipv4(src, dst, 6, struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                                          5 << 4, flags, 65535, 0, 0) + payload)


def _addr(rng: random.Random, net: int) -> bytes:
    return bytes([10, net, rng.randrange(256), rng.randrange(1, 255)])


def _tcp_conversation(rng: random.Random, requests: list[tuple[bytes, bytes]], *, src: bytes, dst: bytes,
                      dport: int) -> list[bytes]:
    """SYN, SYN-ACK, ACK, then each (client bytes, server bytes) in 1460-byte segments, FIN both ways."""
    sport = rng.randrange(20000, 60000)
    cs, ss = rng.randrange(1 << 32), rng.randrange(1 << 32)
    out = [_tcp(src, dst, sport, dport, cs, 0, 0x02), _tcp(dst, src, dport, sport, ss, cs + 1, 0x12),
           _tcp(src, dst, sport, dport, cs + 1, ss + 1, 0x10)]
    cs, ss = cs + 1, ss + 1
    for cdata, sdata in requests:
        for i in range(0, len(cdata), 1460):
            out.append(_tcp(src, dst, sport, dport, cs, ss, 0x18, cdata[i:i + 1460]))
            cs += len(cdata[i:i + 1460])
        for i in range(0, len(sdata), 1460):
            out.append(_tcp(dst, src, dport, sport, ss, cs, 0x18, sdata[i:i + 1460]))
            ss += len(sdata[i:i + 1460])
    out += [_tcp(src, dst, sport, dport, cs, ss, 0x11), _tcp(dst, src, dport, sport, ss, cs + 1, 0x11),
            _tcp(src, dst, sport, dport, cs + 1, ss + 1, 0x10)]
    return out


def _noise_burst(rng: random.Random) -> list[bytes]:
    kind = rng.random()
    if kind < 0.6:  # a few RTP packets of one call
        a, b, port = _addr(rng, 1), _addr(rng, 2), rng.randrange(16384, 32768) & ~1
        return [_udp(a, b, port, port, b"\x80\x00" + os.urandom(rng.randrange(158, 1200)))
                for _ in range(rng.randrange(1, 20))]
    if kind < 0.85:  # another host's TCP conversation
        data = [(os.urandom(rng.randrange(100, 3000)), os.urandom(rng.randrange(100, 20000)))
                for _ in range(rng.randrange(1, 4))]
        return _tcp_conversation(rng, data, src=_addr(rng, 3), dst=_addr(rng, 4),
                                 dport=rng.choice([443, 5060, 8080]))
    mac = f"{rng.randrange(1 << 48):012X}"  # another phone fetching from another cluster over HTTP 6970
    server = bytes([10, 9, 0, 11])
    reqs = []
    for name, size in ((f"SEP{mac}.cnf.xml.sgn", rng.randrange(4000, 40000)), ("ITLFile.tlv", 6000)):
        body = os.urandom(size)
        reqs.append((f"GET /{name} HTTP/1.1\r\nHost: 10.9.0.11\r\n\r\n".encode(),
                     f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\n\r\n".encode() + body))
    return _tcp_conversation(rng, reqs, src=_addr(rng, 5), dst=server, dport=6970)


def _phone_records(path: Path) -> tuple[list[tuple[float, bytes]], int]:
    """``(time, record)`` of each packet, the record (header and data) as it is in the file."""
    data = path.read_bytes()
    magic, linktype = data[:4], struct.unpack_from("<I", data, 20)[0]
    if magic != b"\xd4\xc3\xb2\xa1" or linktype != 101:
        raise SystemExit(f"{path}: expected a little-endian microsecond LINKTYPE_RAW pcap")
    out = []
    pos = 24
    while pos < len(data):
        sec, usec, incl, _orig = struct.unpack_from("<IIII", data, pos)
        out.append((sec + usec / 1e6, data[pos:pos + 16 + incl]))
        pos += 16 + incl
    return out, linktype


def _capture_tag() -> str:
    """A digest of the phones' capture, in the cached files' names: a capture regenerated with the
    catalogue makes new files (those made from the old one held other phones' packets)."""
    return hashlib.sha256(CAPTURE.read_bytes()).hexdigest()[:12]


def synthesise(size_mb: int, folder: Path, seed: int = 1) -> Path:
    """The capture of ``size_mb`` MB (written once; reused when it exists for the same phones' capture)."""
    target = folder / f"noise-{size_mb}MB-v{FORMAT}-{_capture_tag()}.pcap"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    phone, linktype = _phone_records(CAPTURE)
    t0, t1 = phone[0][0], phone[-1][0]
    budget = size_mb * 1_000_000
    tmp = target.with_suffix(".part")
    written = 0
    with open(tmp, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))

        def put(ts: float, pkt: bytes) -> None:
            nonlocal written
            sec = int(ts)
            f.write(struct.pack("<IIII", sec, int((ts - sec) * 1e6), len(pkt), len(pkt)) + pkt)
            written += 16 + len(pkt)

        def noise_until(limit: int, start: float, step: float) -> None:
            ts = start
            while written < limit:
                for pkt in _noise_burst(rng):
                    put(ts, pkt)
                    ts += step
        noise_until(budget // 2, t0 - 600.0, 1e-5)  # the first half: before the phones boot
        for ts, record in phone:  # the phones' packets, as they are, with other hosts' traffic between them
            f.write(record)
            written += len(record)
            for extra in _noise_burst(rng)[:3]:
                put(ts, extra)
        noise_until(budget, t1 + 0.001, 1e-5)
    tmp.rename(target)
    return target


def synthesise_adversarial(conns: int, kib: int, folder: Path, kind: str = "out-of-order") -> Path:
    """The phones' capture, then ``conns`` connections each holding ``kib`` KiB out of order, or each
    completing a download of ``kib`` KiB (``kind`` "downloads"; module doc)."""
    prefix = "adversarial-" if kind == "out-of-order" else f"adversarial-{kind}-"
    target = folder / f"{prefix}{conns}x{kib}KiB-v{FORMAT}-{_capture_tag()}.pcap"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    phone, linktype = _phone_records(CAPTURE)
    t = phone[-1][0] + 1.0
    tmp = target.with_suffix(".part")
    body = bytes(kib * 1024)
    with open(tmp, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
        for _ts, record in phone:
            f.write(record)

        def put(pkt: bytes) -> None:
            f.write(struct.pack("<IIII", int(t), 0, len(pkt), len(pkt)) + pkt)
        if kind == "downloads":  # one after another, from the phones' server: kept for the last boot window
            rng = random.Random(1)
            for i in range(conns):
                data = bytes([i & 255]) * len(body)
                req = f"GET /load{i:05}.bin HTTP/1.1\r\nHost: 127.0.0.11\r\n\r\n".encode()
                resp = f"HTTP/1.1 200 OK\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data
                for pkt in _tcp_conversation(rng, [(req, resp)], src=bytes([10, 5, i >> 8 & 255, i & 255]),
                                             dst=bytes([127, 0, 0, 11]), dport=6970):
                    put(pkt)
            tmp.rename(target)
            return target
        server = bytes([10, 9, 0, 11])
        clients = [(bytes([10, 5, i >> 8 & 255, i & 255 or 1]), 20000 + i % 40000) for i in range(conns)]
        resp = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        for src, sport in clients:
            put(_tcp(src, server, sport, 6970, 1000, 0, 0x02))
            put(_tcp(server, src, 6970, sport, 5000, 1001, 0x12))
            put(_tcp(src, server, sport, 6970, 1001, 5001, 0x18, b"GET /ITLFile.tlv HTTP/1.1\r\n\r\n"))
        for at in range(1460, len(resp), 1460):  # round robin: every connection open at once
            for src, sport in clients:
                put(_tcp(server, src, 6970, sport, 5001 + at, 1030, 0x18, resp[at:at + 1460]))
    tmp.rename(target)
    return target


def _peak_rss_run(code: Path, capture: Path, mac: str, extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Run ``phoneemu replay`` of one phone in a child (:func:`peak_rss_run`)."""
    return peak_rss_run(code, ["replay", str(capture), "--mac", mac, "--json", *extra])


def peak_rss_run(code: Path, argv: list[str]) -> dict[str, Any]:
    """Run ``phoneemu ARGV`` of the tree ``code`` in a child; its own peak RSS comes from ``wait4`` on it."""
    env = dict(os.environ, PYTHONPATH=str(code))
    cmd = [sys.executable, "-m", "phoneemu", *argv]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, cwd=code)
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return {"seconds": seconds, "rss_kib": usage.ru_maxrss, "exit": proc.returncode,
                "stdout": out.read().decode(errors="replace"), "stderr": err.read().decode(errors="replace")}


def _without_durations(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_durations(v) for k, v in value.items() if k != "duration_s"}
    if isinstance(value, list):
        return [_without_durations(v) for v in value]
    return value


def _decisions(stdout: str) -> Any:
    """The replayed boots of the JSON output, wall-clock durations left out."""
    try:
        doc = json.loads(stdout)
    except ValueError:
        return None
    return _without_durations(doc.get("boots"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="50,500", help="capture sizes in MB, comma-separated (default 50,500)")
    ap.add_argument("--mac", default=MAC, help=f"the phone replayed (default {MAC})")
    ap.add_argument("--code", type=Path, default=ROOT,
                    help="directory of the phoneemu to run (default: this one)")
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "phoneemu-bench-replay",
                    help="where the synthesised captures are kept")
    ap.add_argument("--json", action="store_true", help="one JSON line")
    ap.add_argument("--adversarial", type=int, metavar="CONNS", help="the adversarial capture (module doc)")
    ap.add_argument("--adversarial-kib", type=int, default=1024, metavar="KIB",
                    help="KiB held out of order per connection (default 1024)")
    ap.add_argument("--adversarial-kind", choices=("out-of-order", "downloads"), default="out-of-order",
                    help="connections holding bytes out of order (default), or completed downloads")
    ap.add_argument("--max-memory", type=int, metavar="MIB", help="passed on to phoneemu replay")
    args = ap.parse_args(argv)
    if args.adversarial:
        return _adversarial(args)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    clean = _peak_rss_run(args.code, CAPTURE, args.mac)
    want = _decisions(clean["stdout"])
    runs = []
    for size in sizes:
        t = time.perf_counter()
        capture = synthesise(size, args.dir)
        made = time.perf_counter() - t
        r = _peak_rss_run(args.code, capture, args.mac)
        got = _decisions(r["stdout"])
        row = {"size_mb": size, "file_bytes": capture.stat().st_size, "seconds": round(r["seconds"], 2),
               "peak_rss_mib": round(r["rss_kib"] / 1024, 1), "exit": r["exit"],
               "same_decisions": got is not None and got == want,
               "mb_per_s": round(capture.stat().st_size / 1e6 / r["seconds"], 1)}
        if got is None:
            row["error"] = r["stderr"].strip().splitlines()[-1:] or ["no output"]
        runs.append(row)
        if not args.json:
            print(f"{size:>5} MB (capture made in {made:.0f} s, or cached): replay {r['seconds']:.1f} s, "
                  f"peak RSS {row['peak_rss_mib']} MiB, {row['mb_per_s']} MB/s, "
                  f"same decisions: {row['same_decisions']}", flush=True)
    doc = {"bench": "replay", "code": str(args.code), "mac": args.mac,
           "clean_capture": {"seconds": round(clean["seconds"], 2),
                             "peak_rss_mib": round(clean["rss_kib"] / 1024, 1)},
           "runs": runs}
    if args.json:
        print(json.dumps(doc))
    else:
        print(f"clean capture: {clean['seconds']:.2f} s, peak RSS {doc['clean_capture']['peak_rss_mib']} MiB")
    return 0


def _adversarial(args: argparse.Namespace) -> int:
    capture = synthesise_adversarial(args.adversarial, args.adversarial_kib, args.dir, args.adversarial_kind)
    extra = ("--max-memory", str(args.max_memory)) if args.max_memory else ()
    want = _decisions(_peak_rss_run(args.code, CAPTURE, args.mac)["stdout"])
    r = _peak_rss_run(args.code, capture, args.mac, extra)
    got = _decisions(r["stdout"])
    warnings = [line for line in r["stderr"].splitlines() if "overall budget" in line]
    doc = {"bench": "replay-adversarial", "kind": args.adversarial_kind, "code": str(args.code),
           "connections": args.adversarial, "kib_each": args.adversarial_kib,
           "file_bytes": capture.stat().st_size, "max_memory_mib": args.max_memory or 256,
           "seconds": round(r["seconds"], 2), "peak_rss_mib": round(r["rss_kib"] / 1024, 1),
           "exit": r["exit"], "same_decisions": got is not None and got == want,
           "budget_warnings": len(warnings), "last_warning": warnings[-1] if warnings else None}
    if args.json:
        print(json.dumps(doc))
    else:
        what = "out of order" if args.adversarial_kind == "out-of-order" else "completed downloads"
        print(f"{args.adversarial} connections x {args.adversarial_kib} KiB {what} "
              f"({doc['file_bytes'] / 1e6:.0f} MB, --max-memory {doc['max_memory_mib']}): replay "
              f"{doc['seconds']} s, peak RSS {doc['peak_rss_mib']} MiB, exit {r['exit']}, same decisions: "
              f"{doc['same_decisions']}, {len(warnings)} overall-budget warning(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
