"""Phone-side decision CPU per boot of a fleet storm, without sockets (issue #6).

What one boot is here: the same boot ``bench/fleet.py`` storms with — the lab cluster (seeded, mixed
mode, N phones) has just regenerated its ITLRecovery certificate; every phone holds the cluster's
previous CTL and ITL and its own previous config (``Prestate``), so each boot is

    CTLSEP<MAC>.tlv  → signer (new ITLRecovery) unknown → TVS QUERY → G.3.4-vouched-by-tvs
    ITLSEP<MAC>.tlv  → G.3.2-signed-by-ctl
    SEP<MAC>.cnf.xml.sgn → G.4-signed-by-ctl-tftp, then the two signed static files the config names

with the same ``Phone.boot`` code and the same per-process shared caches a fleet shard uses
(``SHARED_CACHE`` of parsed files, a :class:`~phoneemu.crypto.signatures.VerifyCache`), but every
file comes from memory (:class:`~phoneemu.net.fetch.MemoryFetcher`) and TVS answers in memory from
the lab's own table (the phone still judges the TVS server's certificate, as over TLS). So what is
measured is the phone's Python outside the network code: rules, events, timeline, store, boot report,
plus the fleet's per-boot record (``BootRecord.of`` and ``FleetMetrics.add``).

Each repeat makes N fresh phones (not timed: ``make_phones`` with the prestate) and boots them one
after another (timed: ``time.process_time``); the figure is CPU µs per boot, the median of the
repeats, with the min and max. The first repeat warms the caches as a storm's first boots do.

    python bench/phone_decisions.py                # 300 phones, 7 repeats
    python bench/phone_decisions.py --phones 500 --repeats 9 --json
    python bench/phone_decisions.py --profile      # cProfile of one repeat, by tottime
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fleet import MAC_START, SEED, storm_generations  # the storm's lab, as bench/fleet.py builds it
from phoneemu.crypto import certs, signatures
from phoneemu.fleet.engine import FleetSpec, Prestate, make_phones
from phoneemu.fleet.metrics import BootRecord, FleetMetrics
from phoneemu.formats.config import Server
from phoneemu.lab.cluster import LabCluster
from phoneemu.net.fetch import MemoryFetcher
from phoneemu.phone.boot import BootTarget, TvsAsker
from phoneemu.phone.events import QueryKey
from phoneemu.phone.phone import Phone
from phoneemu.phone.store import TvsAnswer, TvsResult, TvsStatus


def build_lab(root: Path, phones: int) -> LabCluster:
    """The benchmark lab of ``bench/fleet.py`` (N phones, previous CTL/ITL kept in ``bench-gen0``,
    ITLRecovery regenerated), built in ``root``."""
    c = LabCluster.init(root, seed=SEED)
    storm_generations(c, root, phones)
    return c


def memory_tvs(cluster: LabCluster) -> TvsAsker:
    """A TVS asker answering from the lab's table; the phone judges the lab TVS's certificate first, as
    the TLS client does (``accept_server``)."""
    tvs_der = certs.cert_der(cluster.tvs_identity().cert)

    async def ask(servers: Sequence[Server], key: QueryKey, *, device_name: str,
                  accept_server: Callable[[bytes | None], bool] | None) -> TvsResult:
        if accept_server is not None and not accept_server(tvs_der):
            return TvsStatus.SERVER_UNTRUSTED
        entry = cluster.tvs_lookup((key.issuer, key.serial, key.subject))
        if entry is None:
            return TvsStatus.NOT_FOUND
        return TvsAnswer.from_reply(entry.cert_der, entry.roles, entry.ttl)
    return ask


class _ServedOnce:
    """The lab's files by name, each looked up once (the lab's own work is not the phone's CPU)."""

    def __init__(self, cluster: LabCluster) -> None:
        self.cluster = cluster
        self.seen: dict[str, bytes | None] = {}

    def __call__(self, name: str) -> bytes | None:
        try:
            return self.seen[name]
        except KeyError:
            data = self.seen[name] = self.cluster.get(name)
            return data


def run_once(spec: FleetSpec, files: _ServedOnce, tvs: TvsAsker, *, profiler: cProfile.Profile | None = None,
             reports: list[dict[str, Any]] | None = None) -> tuple[float, list[BootRecord], FleetMetrics]:
    """Make the phones (not timed), boot each once (timed); CPU seconds of the boots, records, metrics."""
    phones = make_phones(spec, range(spec.mac_start, spec.mac_start + spec.count), pool=None, tvs=tvs)
    fetcher = MemoryFetcher(files)
    metrics = FleetMetrics()
    records: list[BootRecord] = []
    loop = asyncio.new_event_loop()

    async def boot_all() -> None:
        for phone in phones:
            report = await phone.boot(spec.target, fetcher=fetcher)
            rec = BootRecord.of(report, latency_s=0.001, end_s=0.0)
            metrics.add(rec)
            records.append(rec)
            if reports is not None:
                reports.append(_stable_report(report.as_dict(), phone))

    try:
        gc.collect()
        gc.freeze()  # as a shard does before its storm
        cpu0 = time.process_time()
        if profiler is not None:
            profiler.enable()
        loop.run_until_complete(boot_all())
        if profiler is not None:
            profiler.disable()
        cpu = time.process_time() - cpu0
    finally:
        gc.unfreeze()
        loop.close()
    return cpu, records, metrics


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phones", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--profile", action="store_true", help="cProfile one repeat (by tottime) instead")
    ap.add_argument("--top", type=int, default=35, help="rows of the profile")
    ap.add_argument("--sort", default="tottime", help="profile order (tottime, cumulative ...)")
    ap.add_argument("--json", action="store_true", help="last line: one JSON object")
    ap.add_argument("--dump", metavar="FILE", help="write every record (as_dict) and the summary to FILE")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="phoneemu-bench-decisions-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        cluster = build_lab(root, args.phones)
        print(f"lab of {args.phones} phones built in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        files = _ServedOnce(cluster)
        spec = FleetSpec(target=BootTarget(host="127.0.0.1", use_http=False), count=args.phones,
                         mac_start=MAC_START,
                         prestate=Prestate(ctl=(root / "bench-gen0" / "CTLFile.tlv").read_bytes(),
                                           itl=(root / "bench-gen0" / "ITLFile.tlv").read_bytes(),
                                           config_dir=str(root / "tftp")))
        tvs = memory_tvs(cluster)
        old = signatures.set_verify_cache(signatures.VerifyCache())
        try:
            run_once(spec, files, tvs)  # warm-up: caches filled, as by a storm's first boots
            if args.profile:
                prof = cProfile.Profile()
                run_once(spec, files, tvs, profiler=prof)
                pstats.Stats(prof).sort_stats(args.sort).print_stats(args.top)
                return 0
            per_boot: list[float] = []
            records: list[BootRecord] = []
            metrics = FleetMetrics()
            reports: list[dict[str, Any]] = []
            if args.dump:
                run_once(spec, files, tvs, reports=reports)
            for _ in range(args.repeats):
                cpu, records, metrics = run_once(spec, files, tvs)
                per_boot.append(cpu / args.phones * 1e6)
        finally:
            signatures.set_verify_cache(old)
    rules: dict[str, int] = {}
    for r in records:
        rules[r.rule or "(none)"] = rules.get(r.rule or "(none)", 0) + 1
    out: dict[str, Any] = {"phones": args.phones, "repeats": args.repeats,
                           "us_per_boot": round(statistics.median(per_boot), 1),
                           "us_min": round(min(per_boot), 1), "us_max": round(max(per_boot), 1),
                           "by_rule": rules}
    if args.dump:
        doc = {"records": [_stable(r.as_dict()) for r in records], "summary": metrics.summary(),
               "reports": reports}
        Path(args.dump).write_text(json.dumps(doc, indent=1, sort_keys=True, default=str))
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['us_per_boot']} µs CPU per boot (median of {args.repeats}; min {out['us_min']}, "
              f"max {out['us_max']}), {args.phones} phones; deciding rules {rules}")
    return 0


def _stable_report(d: dict[str, Any], phone: Phone) -> dict[str, Any]:
    """A boot report and the phone's event log and status messages without the wall-clock parts (the
    timeline's ``HH:MM:SS``, event times, the duration): the same boots compare equal across runs."""
    d = dict(d)
    d.pop("duration_s")
    d["timeline"] = [line[9:] for line in d["timeline"]]
    d["events"] = [{**{k: getattr(e, k) for k in e.__slots__}, "time": None} for e in phone.events.events]
    d["status_messages"] = list(phone.events.status_messages)
    return d


def _stable(d: dict[str, Any]) -> dict[str, Any]:
    """A record without its timings (the same boots compare equal across runs)."""
    return {k: v for k, v in d.items() if k not in ("latency_ms", "end_s")}


if __name__ == "__main__":
    sys.exit(main())
