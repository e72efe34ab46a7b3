"""Boot-storm benchmark (issue #6): N real phones against the lab on loopback, and the tftpy baseline.

What one boot is here: the lab cluster (seeded, mixed mode, N phones) has just regenerated its
ITLRecovery certificate; every phone holds the cluster's previous CTL and ITL and its own previous
config (``Prestate``), so each boot is

    CTLSEP<MAC>.tlv  → signer (new ITLRecovery) unknown → TVS QUERY over TLS → G.3.4-vouched-by-tvs
    ITLSEP<MAC>.tlv  → G.3.2-signed-by-ctl
    SEP<MAC>.cnf.xml.sgn → G.4-signed-by-ctl-tftp (config accepted)
    g3-tones.xml.sgn, AppDialRules.xml.sgn → G.4 (the static files the config names, seed "File
                                             Authentication"; one download each, shared verification)

i.e. CTL + ITL + signed config + one TVS lookup (one full TLS handshake, no resumption) per phone,
plus the two signed static files a real phone then fetches (5 TFTP transfers in all), with the same
``Phone.boot`` code a single phone runs. A cp-8861 speaks TLS 1.2 and gets
AES256-GCM-SHA384 (RSA key transport) from the lab TVS's CUCM 14 cipher list (spec §E.1); TFTP
uses 512-byte blocks unless ``--blksize`` (phones seen on the wire ask for no option). Files come
over TFTP, like the baseline's; ``--http`` lets the storm's phones fetch over HTTP 6970 first, as a
cp-8861 does on its own (spec §H.1): one TCP connection per file instead of a 512-byte lock-step, the
baseline unchanged (tftpy). The output's ``transport`` says which.

Phone and lab processes run on uvloop when it is installed (``--event-loop``, default auto).
The output also gives the CPU one TLS handshake costs OpenSSL on each side
(``tls_handshake_cpu_ms``, measured in memory, no sockets) and the rate that alone would cap the
machine at (``tls_only_cap_boots_per_s``): a floor under ``cpu_ms_per_boot`` no Python change moves.

Storm: ``phoneemu.fleet.run_fleet`` (one asyncio process per core, shared TFTP client pool, shared
parsed/verified files), ``--concurrency`` boots under way per process (default 256: in a storm every
phone boots at once; more boots in flight let each event-loop wake-up serve more datagrams — CPU per
boot falls until about 192, and the latency percentiles then mostly measure the wait for a turn).
Baseline, **in the same run**: the same boots done the way a user would
today — a thread pool, one blocking ``tftpy.TftpClient`` download per file per phone (the phone's
decisions still made by ``Phone.boot``, TVS over TLS as usual). The baseline boots a sample
(``--baseline-phones``, default min(N, 1000)) bounded by ``--baseline-seconds``; its rate is
boots / wall time of that sample.

The lab runs in its own process (TFTP in ``tid_mode="shared"``: one socket, no per-transfer port; TVS
on the lab's event loop, ``LabServers``' default ``tvs_impl="loop"``), sharing the machine with the phones.
The lab for N phones is built once and cached (``--lab-dir``, default
``$TMPDIR/phoneemu-bench-fleet/<N>-<tvs-key>``; rebuilt when the sources of ``phoneemu/lab``,
``phoneemu/formats`` or ``phoneemu/crypto`` or this bench's storm set-up changed, ``lab_code`` in the
output; built beside it and moved into place whole, so an interrupted build leaves nothing behind):
building 40,000 phones takes minutes (MIC issue + one signed config per phone). ``--tvs-key ec-p256``
gives the TVS server an EC P-256 key (our benchmark option: the phones' handshake and the server's
signature get cheaper); the default is RSA-2048 like the rest of the cluster. Both are reported as
such in the output.

``--json``: the last line is one JSON object with ``boots_per_s``, ``baseline_boots_per_s``,
``ratio``, ``p50_ms``, ``p99_ms``, ``peak_rss_mib`` (phone side: sum of the shard processes' peaks).

    python bench/fleet.py --phones 5000
    python bench/fleet.py --phones 40000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import logging
import multiprocessing as mp
import os
import resource
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from phoneemu.crypto.keys import KeySpec
from phoneemu.errors import PhoneEmuError, TransportError
from phoneemu.fleet.engine import FleetSpec, Prestate, mac_text, make_phones
from phoneemu.fleet.loop import EVENT_LOOPS, resolve_event_loop, run_on
from phoneemu.fleet.metrics import BootRecord, FleetMetrics, peak_rss_mib
from phoneemu.fleet.shard import run_fleet
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone.boot import BootTarget

HOST = "127.0.0.1"
MAC_START = 0x0A0000000000
SEED = 6
MARKER = "bench-fleet.json"


def lab_code_fingerprint() -> str:
    """SHA-256 of the code that shapes the files the lab serves: ``phoneemu/lab``, ``phoneemu/formats``,
    ``phoneemu/crypto`` (the keys and certificates in every file) and this bench's own storm set-up.

    A cached lab built by other code serves other files (e.g. configs from before they named the signed
    locale and dial rules: two fewer downloads per boot), so its figures would not be today's.
    """
    import inspect

    import phoneemu

    base = Path(phoneemu.__file__).parent
    h = hashlib.sha256()
    folders = ("lab", "formats", "crypto")
    sources = sorted(path for folder in folders for path in base.joinpath(folder).rglob("*.py"))
    for path in sources:
        h.update(path.relative_to(base).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    h.update(f"{SEED}:{MAC_START:x}\0".encode() + inspect.getsource(storm_generations).encode())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- lab (built once, cached)
def _free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for kind in [socket.SOCK_DGRAM] + [socket.SOCK_STREAM] * (n - 1):
        s = socket.socket(socket.AF_INET, kind)
        s.bind((HOST, 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def storm_generations(c: LabCluster, root: Path, phones: int) -> None:
    """The storm's lab state: mixed mode, ``phones`` phones from ``MAC_START``, the CTL and ITL they hold
    kept in ``root/bench-gen0``, then ITLRecovery regenerated (each phone asks TVS about the new signer)."""
    c.set_mixed_mode(True)
    macs = [mac_text(MAC_START + i) for i in range(phones)]
    # LabCluster.add_phones rebuilds per phone, scanning every served file (O(phones x files));
    # without ITLFile.tlv it rebuilds everything once instead (linear). See the issue #6 report.
    c._files.pop("ITLFile.tlv", None)
    c.add_phones(macs)
    gen0 = root / "bench-gen0"
    gen0.mkdir(exist_ok=True)
    for name in ("CTLFile.tlv", "ITLFile.tlv"):
        data = c.get(name)
        assert data is not None
        (gen0 / name).write_bytes(data)
    c.regenerate("itlrecovery")


def build_lab(root: Path, phones: int, tvs_key: str) -> dict[str, Any]:
    """Build (or reuse) the benchmark lab: N phones, previous CTL/ITL kept, ITLRecovery regenerated.

    Built in a folder beside ``root`` and moved into place whole, its marker written last: a build
    interrupted (Ctrl-C during minutes of MIC issue) leaves neither a half lab nor a folder the next run
    refuses. A folder that is not empty and holds no marker is not ours: refused, never removed.
    """
    marker = root / MARKER
    code = lab_code_fingerprint()
    if marker.exists():
        info: dict[str, Any] = json.loads(marker.read_text())
        if info.get("phones") != phones or info.get("tvs_key") != tvs_key:
            raise PhoneEmuError(f"{root} holds a benchmark lab for {info.get('phones')} phones "
                                f"({info.get('tvs_key')}); use another --lab-dir")
        if info.get("lab_code") == code:
            return info
        print(f"{root}: built by other lab code ({info.get('lab_code')}, now {code}); rebuilding",
              file=sys.stderr, flush=True)
    elif root.is_dir() and any(root.iterdir()):
        raise PhoneEmuError(f"{root}: not empty and no benchmark lab ({MARKER} missing): "
                            "use another --lab-dir, or remove it")
    root.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}.building-"))
    print(f"building the lab for {phones} phones in {root} (once; cached) ...", file=sys.stderr, flush=True)
    try:
        info = _build_lab_in(building / "lab", phones, tvs_key, code)
        if marker.exists():
            shutil.rmtree(root)  # ours: it holds our marker
        (building / "lab").replace(root)  # an empty root is replaced too
    finally:
        shutil.rmtree(building, ignore_errors=True)
    print(f"lab built in {info['build_s']}s", file=sys.stderr, flush=True)
    return info


def _build_lab_in(root: Path, phones: int, tvs_key: str, code: str) -> dict[str, Any]:
    """The benchmark lab built in the new folder ``root``, its marker written last."""
    t0 = time.perf_counter()
    c = LabCluster.init(root, seed=SEED)
    if tvs_key != "rsa2048":  # our benchmark option: the TVS TLS identity with another key type
        c.pki.forget("tvs")
        c.pki.create("tvs", now=c.state.clock, generation=0, spec=KeySpec.parse(tvs_key))
    tftp, http, tvs, capf = _free_ports(4)
    c.set_ports(tftp=tftp, http=http, tvs=tvs, capf=capf)
    storm_generations(c, root, phones)
    info = {"phones": phones, "tvs_key": tvs_key, "seed": SEED, "lab_code": code,
            "ports": dict(c.state.ports), "build_s": round(time.perf_counter() - t0, 1)}
    (root / MARKER).write_text(json.dumps(info))
    return info


def bench_prestate(root: Path) -> Prestate:
    """What every phone holds before the storm: the lab's previous CTL/ITL and its own config."""
    return Prestate(ctl=(root / "bench-gen0" / "CTLFile.tlv").read_bytes(),
                    itl=(root / "bench-gen0" / "ITLFile.tlv").read_bytes(), config_dir=str(root / "tftp"))


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _lab_main(root: str, q: Any, stop: Any, cpu: Any, event_loop: str = "auto") -> None:
    """Lab process: serve the cluster until ``stop``; report ports, then CPU time and peak RSS.

    ``cpu`` (a shared double) holds the lab process's CPU seconds, refreshed every 0.1 s.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from phoneemu.lab.servers import LabServers

    async def main() -> None:
        cluster = LabCluster.open(root)
        ports = dict(cluster.state.ports)
        srv = LabServers(cluster, host=HOST, tftp_port=ports["tftp"], http_port=ports["http"],
                         tvs_port=ports["tvs"], capf_port=ports["capf"], tftp_tid_mode="shared", max_log=1000)
        async with srv:
            ru0 = resource.getrusage(resource.RUSAGE_SELF)
            q.put(("ports", srv.ports))
            while not stop.is_set():
                cpu.value = _cpu_s()
                await asyncio.sleep(0.1)
            ru1 = resource.getrusage(resource.RUSAGE_SELF)
            q.put(("stats", {"cpu_s": round(ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime, 2),
                             "peak_rss_mib": round(peak_rss_mib(), 1),
                             "tvs_answered": srv.tvs_handler.answered}))

    try:
        run_on(event_loop, main())
    except BaseException as exc:
        q.put(("error", f"{type(exc).__name__}: {exc}"))


# --------------------------------------------------------------------------- baseline: tftpy in threads
class _TftpyFetcher:
    """One blocking tftpy download per file (what a user scripting tftpy would do)."""

    def __init__(self, host: str, port: int, timeout: float, blksize: int | None) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.options = {"blksize": blksize} if blksize is not None else {}

    async def fetch(self, name: str) -> bytes:
        import tftpy

        out = io.BytesIO()
        try:
            tftpy.TftpClient(self.host, self.port, options=dict(self.options)).download(
                name, out, timeout=self.timeout)
        except tftpy.TftpException as exc:
            kind = "not-found" if "not found" in str(exc).lower() else "error"
            raise TransportError(f"tftpy: {exc}", kind=kind, path=name) from None
        except TimeoutError as exc:
            raise TransportError(f"tftpy: {exc}", kind="timeout", path=name) from None
        return out.getvalue()


def run_baseline(spec: FleetSpec, count: int, *, threads: int, max_s: float) -> tuple[FleetMetrics, float]:
    """Boot ``count`` phones of ``spec``, each in a pool thread with blocking tftpy downloads.

    Returns the metrics and this process's CPU seconds spent booting (phones built beforehand).
    """
    logging.getLogger("tftpy").setLevel(logging.CRITICAL)
    phones = make_phones(spec, range(spec.mac_start, spec.mac_start + count), pool=None)
    metrics = FleetMetrics()
    lock = threading.Lock()
    local = threading.local()
    cpu0 = _cpu_s()
    start = time.perf_counter()
    deadline = start + max_s

    def boot(i: int) -> None:
        if time.perf_counter() > deadline:
            return
        loop = getattr(local, "loop", None)
        if loop is None:
            loop = local.loop = asyncio.new_event_loop()
        phone = phones[i]
        fetcher = _TftpyFetcher(spec.target.host, spec.target.tftp_port, spec.fetch_timeout, spec.blksize)
        t0 = time.perf_counter()
        report = loop.run_until_complete(phone.boot(spec.target, fetcher=fetcher))
        t1 = time.perf_counter()
        with lock:
            metrics.add(BootRecord.of(report, latency_s=t1 - t0, end_s=t1 - start))

    with ThreadPoolExecutor(max_workers=threads) as ex:
        list(ex.map(boot, range(count)))
    metrics.wall_s = time.perf_counter() - start
    return metrics, _cpu_s() - cpu0


# --------------------------------------------------------------------------- the TLS floor
def _handshake_step(obj: Any) -> tuple[bool, float]:
    """One ``do_handshake`` call: (finished, CPU seconds it took)."""
    import ssl

    t = time.process_time()
    try:
        obj.do_handshake()
        done = True
    except ssl.SSLWantReadError:
        done = False
    return done, time.process_time() - t


def tls_handshake_cpu_ms(root: Path, profile: str, n: int = 300) -> dict[str, Any]:
    """CPU ms of one full TVS TLS handshake on each side, OpenSSL only (in-memory BIOs, no sockets).

    The phone's context (its profile's TLS versions and cipher list) against a server context built
    like the lab TVS's (its TVS identity, the CUCM 14 cipher list, no tickets): what every boot pays
    in C before any Python, TFTP or kernel work — a floor under ``cpu_ms_per_boot``.
    """
    import ssl

    from phoneemu.net.tls import CUCM_TVS_CIPHERS, phone_client_context
    from phoneemu.phone.profile import get_profile

    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(str(root / "certs" / "tvs.pem"), str(root / "private" / "tvs.key"))
    server.minimum_version = ssl.TLSVersion.TLSv1_2
    server.set_ciphers(CUCM_TVS_CIPHERS)
    server.num_tickets = 0
    server.options |= ssl.OP_NO_TICKET
    client = phone_client_context(get_profile(profile).tls_versions)
    c_s = s_s = 0.0
    version = ""
    for _ in range(n):
        ci, co, si, so = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
        t = time.process_time()
        a = client.wrap_bio(ci, co, server_hostname="127.0.0.1")  # an address, as phones ask: no SNI
        c_s += time.process_time() - t
        t = time.process_time()
        b = server.wrap_bio(si, so, server_side=True)
        s_s += time.process_time() - t
        for _round in range(8):
            a_done, spent = _handshake_step(a)
            c_s += spent
            si.write(co.read())
            b_done, spent = _handshake_step(b)
            s_s += spent
            ci.write(so.read())
            if a_done and b_done:
                break
        cipher = a.cipher()
        version = f"{a.version()} {cipher[0] if cipher else '?'}"
    return {"client_ms": round(1000 * c_s / n, 3), "server_ms": round(1000 * s_s / n, 3), "tls": version}


# --------------------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phones", type=int, default=5000)
    ap.add_argument("--shards", type=int, default=None, help="phone processes (default: cpu count)")
    ap.add_argument("--concurrency", type=int, default=256,
                    help="concurrent boots per shard (default 256: a storm, every phone at once; measured "
                    "on 2 cores at 4,000 phones: 32 → 666/s, 64 → 756/s, 128 → 857/s, 256 → 887/s, 384 → "
                    "881/s, the latency then mostly the queue; fleet boot's own default is 64)")
    ap.add_argument("--tvs-key", default="rsa2048", choices=("rsa2048", "ec-p256"))
    ap.add_argument("--lab-dir", type=Path, default=None)
    ap.add_argument("--baseline-phones", type=int, default=None)
    ap.add_argument("--baseline-threads", type=int, default=32,
                    help="baseline thread pool (default 32; measured at 1,000 phones: 16 → 136/s, "
                    "64 → 145/s, 128 → 147/s: the GIL, not the pool, bounds it)")
    ap.add_argument("--baseline-seconds", type=float, default=60.0)
    ap.add_argument("--max-seconds", type=float, default=240.0, help="bound on the storm")
    ap.add_argument("--blksize", type=int, default=None,
                    help="TFTP block size the phones (and the baseline) ask for (default: 512, no option)")
    ap.add_argument("--http", action="store_true",
                    help="the storm's phones fetch over HTTP 6970 first (a cp-8861's own order); "
                         "the baseline stays tftpy")
    ap.add_argument("--event-loop", default="auto", choices=EVENT_LOOPS,
                    help="event loop of the phone and lab processes (auto: uvloop when installed)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.phones < 1:
        ap.error("--phones must be at least 1")
    default_root = Path(tempfile.gettempdir()) / "phoneemu-bench-fleet" / f"{args.phones}-{args.tvs_key}"
    root = args.lab_dir or default_root
    try:
        build_lab(root, args.phones, args.tvs_key)
    except PhoneEmuError as exc:
        print(f"bench/fleet.py: {exc}", file=sys.stderr)
        return 2

    ctx = mp.get_context("spawn")
    q, stop, lab_cpu = ctx.Queue(), ctx.Event(), ctx.Value("d", 0.0)
    lab = ctx.Process(target=_lab_main, args=(str(root), q, stop, lab_cpu, args.event_loop),
                      name="phoneemu-bench-lab", daemon=True)
    lab.start()
    try:
        msg = q.get(timeout=300)
        if msg[0] != "ports":
            raise PhoneEmuError(f"lab failed: {msg[1]}")
        ports = msg[1]
        target = BootTarget(host=HOST, tftp_port=ports["tftp"], http_port=ports["http"], use_http=args.http)
        pre = bench_prestate(root)
        spec = FleetSpec(target=target, count=args.phones, mac_start=MAC_START, concurrency=args.concurrency,
                         prestate=pre, max_time_s=args.max_seconds, fetch_timeout=2.0, tvs_timeout=20.0,
                         blksize=args.blksize, event_loop=args.event_loop)

        def progress(done: int, ok: int, total: int, elapsed: float, *,
                     failing: Mapping[str, int] | None = None, pausing: int = 0,
                     capf_failed: int = 0) -> None:
            if not args.json and sys.stderr.isatty():
                rate = done / elapsed if elapsed > 0 else 0.0
                print(f"\r  booted {ok}/{total} failed {done - ok} {rate:,.0f}/s   ", end="", file=sys.stderr)

        t0 = time.perf_counter()
        lab0 = lab_cpu.value
        result = run_fleet(spec, shards=args.shards, progress=progress)
        if result.interrupted:  # Ctrl-C: a partial storm is no measurement; stop (the lab with it)
            raise KeyboardInterrupt
        time.sleep(0.3)
        storm_lab_cpu = lab_cpu.value - lab0
        storm_s = time.perf_counter() - t0
        if sys.stderr.isatty():
            print(file=sys.stderr)
        m = result.metrics
        base_n = args.baseline_phones if args.baseline_phones is not None else min(args.phones, 1000)
        lab0 = lab_cpu.value
        base, base_phone_cpu = run_baseline(spec, base_n, threads=args.baseline_threads,
                                            max_s=args.baseline_seconds)
        time.sleep(0.3)
        base_lab_cpu = lab_cpu.value - lab0
        stop.set()
        lab_stats: dict[str, Any] = {}
        with contextlib.suppress(Exception):
            got = q.get(timeout=30)
            if got[0] == "stats":
                lab_stats = got[1]
    finally:
        stop.set()
        lab.join(30)
        if lab.is_alive():
            lab.terminate()
            lab.join(5)

    s = result.summary()
    lat = s["latency_ms"]
    shard_rss = {k: v for k, v in m.peak_rss.items() if k.startswith("shard-")}
    phone_rss = sum(shard_rss.values())
    base_rate = base.rate()
    phone_ms = 1000.0 * sum(sh.cpu_s for sh in result.shards) / max(1, m.total)
    lab_ms = 1000.0 * storm_lab_cpu / max(1, m.total)
    base_phone_ms = 1000.0 * base_phone_cpu / max(1, base.total)
    base_lab_ms = 1000.0 * base_lab_cpu / max(1, base.total)
    cpus = os.cpu_count() or 1
    out = {
        "phones": args.phones,
        "shards": len(result.shards),
        "cpus": os.cpu_count(),
        "tvs_key": args.tvs_key,
        "tvs_tls_resumption": False,
        "lab_code": lab_code_fingerprint(),
        "event_loop": resolve_event_loop(args.event_loop),
        "transport": "http" if args.http else "tftp",
        "blksize": args.blksize or 512,
        "concurrency": args.concurrency,
        "baseline_threads": args.baseline_threads,
        "booted": m.booted,
        "failed": m.failed,
        "not_started": result.not_started,
        "wall_s": round(m.wall_s, 2),
        "boots_per_s": round(m.rate(), 1),
        "sustained_boots_per_s": round(m.sustained_rate(), 1),
        "baseline_phones": base.total,
        "baseline_booted": base.booted,
        "baseline_boots_per_s": round(base_rate, 1),
        "ratio": round(m.rate() / base_rate, 2) if base_rate > 0 else None,
        "p50_ms": lat["p50"],
        "p90_ms": lat["p90"],
        "p99_ms": lat["p99"],
        "max_ms": lat["max"],
        "baseline_p50_ms": base.latency_percentiles()["p50"],
        "peak_rss_mib": round(phone_rss, 1),
        "peak_rss_mib_by_shard": shard_rss,
        "by_outcome": s["by_outcome"],
        "by_rule": s["by_rule"],
        "tvs_used": s["tvs_used"],
        "failures": s["failures"][:5],
        "verify_cache": s["verify_cache"],
        "intern_cache": s["intern_cache"],
        "setup_s": s["setup_s"],
        "storm_total_s": round(storm_s, 2),
        "cpu_ms_per_boot": {"phone": round(phone_ms, 3), "lab": round(lab_ms, 3),
                            "baseline_phone": round(base_phone_ms, 3), "baseline_lab": round(base_lab_ms, 3)},
        # what the CPU cost allows when nothing else runs on the machine (our projection, not a measurement)
        "cpu_bound_boots_per_s": round(1000.0 * cpus / (phone_ms + lab_ms), 1) if phone_ms + lab_ms else None,
        "baseline_cpu_bound_boots_per_s": round(1000.0 * cpus / (base_phone_ms + base_lab_ms), 1)
        if base_phone_ms + base_lab_ms else None,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "lab": lab_stats,
    }
    floor = tls_handshake_cpu_ms(root, spec.profile)
    tls_ms = float(floor["client_ms"]) + float(floor["server_ms"])
    # the TLS handshakes alone (OpenSSL, both sides) cap a machine of this many cores at this rate
    out["tls_handshake_cpu_ms"] = floor
    out["tls_only_cap_boots_per_s"] = round(1000.0 * cpus / tls_ms, 1) if tls_ms else None
    if not args.json:
        print(m.render())
        print(f"baseline (tftpy, {args.baseline_threads} threads): {base.total} phones, "
              f"{base.booted} booted, {base_rate:.1f} boots/s; ratio {out['ratio']}")
        print(f"TVS key {args.tvs_key}, no TLS session resumption; lab process: {lab_stats}")
        print(f"CPU ms per boot: {out['cpu_ms_per_boot']}; load average {out['load_avg_1m']}")
        print(f"TLS handshake alone (OpenSSL, in memory): {floor}; caps {cpus} cores at "
              f"{out['tls_only_cap_boots_per_s']} boots/s")
    print(json.dumps(out))
    return 0 if m.failed == 0 and base.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
