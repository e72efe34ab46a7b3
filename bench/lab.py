"""Lab server throughput: concurrent TFTP transfers/s of a ~10 KB ITL and TVS verifies/s over TLS.

Run: ``python -m bench.lab [--seconds 5] [--tftp-clients 256] [--tvs-clients 64] [--client-procs 1]
[--key rsa2048] [--tid-mode ephemeral|shared] [--tls 1.2|1.3] [--only tftp|tvs|tvs-resume|openssl]
[--tvs-impl loop|threads|asyncio|all] [--client-kind threads|asyncio|c ...] [--profile]``

One :class:`phoneemu.lab.servers.LabServers` (TFTP, HTTP, TVS, CAPF in one event loop, as ``phoneemu
lab serve`` runs them) lives in its own process; clients run in ``--client-procs`` other processes so
that the two cores are both used. Figures are for the whole machine (server and clients share it).

* TFTP: :class:`phoneemu.net.tftp.TftpClientPool` (the fastest client in phoneemu.net: reused UDP
  sockets) with ``--tftp-clients`` concurrent transfers of ``ITLFile.tlv`` (grown to ~10 KB with
  bulk "extra" certificates), blksize 1428 (an RFC 2348 option; the fleet's phones ask for none,
  as phones seen on the wire do: bench/fleet.py boots with 512-byte blocks unless ``--blksize``).
* TVS: ``--tvs-clients`` concurrent phones, each VERIFY on a fresh TCP + TLS connection (a full
  handshake per request, as tvsc does and as phones log "caching disabled, session not saved",
  spec §E.1); then the same with TLS session resumption (the client offers the last session; the
  threaded server sends no TLS 1.3 tickets, so nothing resumes there — phones never resume).
  ``--client-kind`` (repeatable; default ``threads`` and ``c``): ``threads`` = blocking SSLSocket
  clients in threads (~1.0-1.3 ms CPU per verify), ``asyncio`` = asyncio streams like the emulated
  phones (~1.5 ms), ``c`` = a libssl C client compiled on the fly with ``cc`` (~0.6-0.8 ms: leaves
  the most CPU to the server; skipped with a message when no compiler or headers). Every client
  checks the reply (type, session id, STATUS valid).
* CPU per verify (server and clients, from process CPU time) is printed with each rate: on this
  shared 2-core VM the wall-clock rate follows what else runs (printed load average) while the CPU
  cost per verify mostly does not.
* ``--tvs-impl``: the TVS server of :class:`LabServers` — ``loop`` (:mod:`phoneemu.lab.tvs_loop`, memory
  BIOs on the event loop, the lab's default), ``threads`` (:mod:`phoneemu.lab.tvs_threaded`, blocking TLS
  sockets in a worker pool), ``asyncio`` (:mod:`phoneemu.lab.tvs_service` over asyncio TLS streams) or
  ``all`` (default: one server process per implementation, same clients, same run; TFTP is measured
  once, with the first).
* ``--only openssl``: ``openssl s_time`` (a C client, one connection at a time per process) measures
  the handshakes/s the server sustains when the client side costs little. The C floor for comparison
  (2026-11-28, OpenSSL 3.0, RSA-2048, TLS 1.2 as the phones negotiate it): ``openssl s_server -tls1_2
  -no_ticket -no_cache`` spends 0.68 ms of CPU per ``s_time -new`` handshake; the threaded TVS server
  0.72 ms (``--only openssl --tls 1.2``). An RSA-2048 signature alone is 0.28 ms (``openssl speed``):
  the rest of a full handshake in OpenSSL 3.0 (key share, PRF, records, TCP) is most of the cost.
* ``--tls 1.2``: what the emulated phones negotiate with the lab (ECDHE-RSA-AES256-GCM-SHA384); the
  C clients at TLS 1.2 are the closest to a boot storm's TVS load.
* ``--profile`` runs the server under cProfile (CPU time) and prints where its time goes
  (``BENCH_SORT=cumtime|ncalls``, ``BENCH_TOP=40`` change the listing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import logging
import multiprocessing as mp
import os
import pstats
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.net import tftp_client
from phoneemu.net.tftp import TftpClientPool
from phoneemu.net.tls import client_context_verify_after_handshake
from phoneemu.protocols import tvs

HOST = "127.0.0.1"
ITL = "ITLFile.tlv"
DEVICE = "CP-8861-SEP001122334455"


def make_cluster(root: Path, key: str, size: int = 10_240) -> tuple[int, int]:
    """A seeded lab cluster whose ITL is at least ``size`` bytes; returns (ITL size, records)."""
    cluster = LabCluster.init(root, seed=1, key_spec=key)
    cluster.add_phone("001122334455")
    while len(cluster.get(ITL) or b"") < size:
        cluster.add_certs(cluster.state.extra_certs + 1)
    data = cluster.get(ITL) or b""
    return len(data), data.count(b"\x30\x82") // 2  # rough record count, for the label only


class _ResumingContext(ssl.SSLContext):
    """Client context that offers ``self.resume`` (a previous session) on every new connection."""

    resume: ssl.SSLSession | None = None

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, server_side: bool = False,
                 server_hostname: str | bytes | None = None, session: ssl.SSLSession | None = None
                 ) -> ssl.SSLObject:
        return super().wrap_bio(incoming, outgoing, server_side, server_hostname,
                                session=session or self.resume)


def _client_ctx(tls: str, resume: bool) -> ssl.SSLContext:
    if not resume:
        return client_context_verify_after_handshake(min_version=tls, max_version=tls)
    ctx = _ResumingContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    version = ssl.TLSVersion.TLSv1_3 if tls == "1.3" else ssl.TLSVersion.TLSv1_2
    ctx.minimum_version = ctx.maximum_version = version
    return ctx


# --- server process -------------------------------------------------------------------------------

def _serve(root: str, tid_mode: str, tvs_impl: str, port_q: Any, stop_ev: Any, profile: bool,
           result_q: Any, cpu: Any) -> None:
    logging.basicConfig(level=logging.ERROR)

    async def main() -> dict[str, Any]:
        cluster = LabCluster.open(root)
        async with LabServers(cluster, tftp_tid_mode=tid_mode, max_log=10_000, tvs_impl=tvs_impl) as servers:
            port_q.put(dict(servers.ports))
            while not stop_ev.is_set():
                cpu.value = time.process_time()  # CPU seconds used by the server so far
                await asyncio.sleep(0.05)
            assert servers.tftp is not None
            return {"tftp": dict(servers.tftp.stats), "tftp_retransmits": servers.tftp.retransmits,
                    "tvs_answered": servers.tvs_handler.answered, "tvs_refused": servers.tvs_handler.refused}

    prof = cProfile.Profile(time.process_time) if profile else None  # CPU time: the machine is shared
    if prof is not None:
        prof.enable()
    stats = asyncio.run(main())
    text = ""
    if prof is not None:
        prof.disable()
        buf = io.StringIO()
        sort, top = os.environ.get("BENCH_SORT", "tottime"), int(os.environ.get("BENCH_TOP", "22"))
        pstats.Stats(prof, stream=buf).sort_stats(sort).print_stats(top)
        text = buf.getvalue()
    result_q.put((stats, text))


# --- client processes -----------------------------------------------------------------------------

def _tftp_clients(port: int, clients: int, seconds: float, size: int, out_q: Any) -> None:
    async def main() -> tuple[int, int, float, int, float]:
        ok = fail = 0
        async with TftpClientPool(max_sockets=clients, blksize=1428, timeout=1.0, retries=5) as pool:
            deadline = time.perf_counter() + seconds

            async def worker() -> None:
                nonlocal ok, fail
                while time.perf_counter() < deadline:
                    try:
                        data = await pool.get(HOST, port, ITL)
                        ok += len(data) == size
                    except Exception:
                        fail += 1

            t0, c0 = time.perf_counter(), time.process_time()
            await asyncio.gather(*(worker() for _ in range(clients)))
            return (ok, fail, time.perf_counter() - t0, tftp_client.client_stats["retransmits"],
                    time.process_time() - c0)

    out_q.put(asyncio.run(main()))


def _tvs_clients(port: int, clients: int, seconds: float, tls: str, resume: bool, cert: bytes,
                 out_q: Any) -> None:
    async def main() -> tuple[int, int, float, int, float]:
        ok = fail = reused = 0
        ctx = _client_ctx(tls, resume)
        deadline = time.perf_counter() + seconds
        sid = 0

        async def one() -> bool:
            nonlocal sid, reused
            sid += 1
            request = tvs.verify_request(sid, DEVICE, cert)
            reader, writer = await asyncio.open_connection(HOST, port, ssl=ctx, server_hostname=None,
                                                           ssl_handshake_timeout=10)
            try:
                exchange = tvs.TvsClientExchange(request)
                writer.write(exchange.request_bytes)
                while True:
                    data = await asyncio.wait_for(reader.read(65536), 10)
                    if not data:
                        exchange.eof()
                    resp = exchange.receive(data)
                    if resp is not None:
                        break
                obj = writer.get_extra_info("ssl_object")
                if obj is not None:
                    reused += bool(obj.session_reused)
                    if isinstance(ctx, _ResumingContext) and obj.session is not None:
                        ctx.resume = obj.session
                return resp.valid
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

        async def worker() -> None:
            nonlocal ok, fail
            while time.perf_counter() < deadline:
                try:
                    if await one():
                        ok += 1
                    else:
                        fail += 1
                except Exception:
                    fail += 1

        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return ok, fail, time.perf_counter() - t0, reused, time.process_time() - c0

    out_q.put(asyncio.run(main()))


def _tvs_sync_clients(port: int, threads: int, seconds: float, tls: str, resume: bool, cert: bytes,
                     out_q: Any) -> None:
    """Blocking-socket clients in threads: the TLS handshake runs in C with the GIL released, so the
    load generator costs less Python per request than asyncio streams (measured: ~1.1 vs ~1.5 ms)."""
    ctx = _client_ctx(tls, False)
    deadline = time.perf_counter() + seconds
    lock = threading.Lock()
    totals = [0, 0, 0]  # ok, fail, reused

    def worker(index: int) -> None:
        ok = fail = reused = 0
        session: ssl.SSLSession | None = None
        sid = index << 20
        while time.perf_counter() < deadline:
            sid += 1
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as raw:  # no getaddrinfo per request
                    raw.settimeout(10)
                    raw.connect((HOST, port))
                    with ctx.wrap_socket(raw, server_hostname=None, session=session) as conn:
                        exchange = tvs.TvsClientExchange(tvs.verify_request(sid, DEVICE, cert))
                        conn.sendall(exchange.request_bytes)
                        resp = None
                        while resp is None:
                            data = conn.recv(65536)
                            if not data:
                                exchange.eof()
                            resp = exchange.receive(data)
                        reused += bool(conn.session_reused)
                        if resume:
                            session = conn.session
                        ok += resp.valid
                        fail += not resp.valid
            except Exception:
                fail += 1
        with lock:
            totals[0] += ok
            totals[1] += fail
            totals[2] += reused

    t0, c0 = time.perf_counter(), time.process_time()
    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    out_q.put((totals[0], totals[1], time.perf_counter() - t0, totals[2], time.process_time() - c0))


# A C load generator (libssl, pthreads): the same exchange as a phone, at a fraction of the Python client's
# CPU, so that more of the machine is left to the server. Built with the system C compiler on demand.
_C_CLIENT = r"""/* TVS VERIFY load: threads x (connect, full handshake, VERIFY, read reply, close) */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static SSL_CTX *ctx;
static struct sockaddr_in addr;
static unsigned char req[70000];
static size_t req_len;
static double deadline;
static long total_ok, total_fail;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 1 valid, 0 invalid/failed: header 0x57 1 type 2, same session id, element STATUS (7) == 0 */
static int one(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), valid = 0;
    if (fd < 0) return 0;
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) { close(fd); return 0; }
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) == 1 && SSL_write(ssl, req, (int)req_len) == (int)req_len) {
        unsigned char buf[70000];
        size_t got = 0, want = 10;
        while (got < want) {
            int n = SSL_read(ssl, buf + got, (int)(sizeof buf - got));
            if (n <= 0) break;
            got += (size_t)n;
            if (got >= 10) want = 10 + ((size_t)buf[8] << 8 | buf[9]);
        }
        if (got >= want && got >= 10 && buf[0] == 0x57 && buf[1] == 1 && buf[2] == 2 &&
            memcmp(buf + 4, req + 4, 4) == 0) {
            size_t i = 10;
            while (i + 3 <= want) {
                size_t len = (size_t)buf[i + 1] << 8 | buf[i + 2];
                if (i + 3 + len > want) break;
                if (buf[i] == 7 && len == 1) { valid = buf[i + 3] == 0; break; }
                i += 3 + len;
            }
        }
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    close(fd);
    return valid;
}

static void *worker(void *arg) {
    long ok = 0, fail = 0;
    (void)arg;
    while (now() < deadline) {
        if (one()) ok++; else fail++;
    }
    pthread_mutex_lock(&mu);
    total_ok += ok;
    total_fail += fail;
    pthread_mutex_unlock(&mu);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 6) { fprintf(stderr, "usage: port threads seconds tls(1.2|1.3) request.bin\n"); return 2; }
    int threads = atoi(argv[2]);
    FILE *f = fopen(argv[5], "rb");
    if (!f) return 2;
    req_len = fread(req, 1, sizeof req, f);
    fclose(f);
    ctx = SSL_CTX_new(TLS_client_method());
    int v = strcmp(argv[4], "1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
    SSL_CTX_set_min_proto_version(ctx, v);
    SSL_CTX_set_max_proto_version(ctx, v);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);  /* phones compare the cert with the ITL instead */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);  /* full handshake each time, like tvsc */
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)atoi(argv[1]));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    double t0 = now();
    deadline = t0 + atof(argv[3]);
    pthread_t *tid = calloc((size_t)threads, sizeof *tid);
    for (int i = 0; i < threads; i++) pthread_create(&tid[i], NULL, worker, NULL);
    for (int i = 0; i < threads; i++) pthread_join(tid[i], NULL);
    double el = now() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
    cpu += ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    printf("%ld %ld %.3f %.3f\n", total_ok, total_fail, el, cpu);
    return 0;
}
"""


def _c_client(workdir: Path) -> Path | None:
    """Compile :data:`_C_CLIENT` into ``workdir``; None (with the reason printed) when impossible."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        print("TVS   C client: no C compiler")
        return None
    src, exe = workdir / "tvsbench.c", workdir / "tvsbench"
    src.write_text(_C_CLIENT)
    done = subprocess.run([cc, "-O2", "-o", str(exe), str(src), "-lssl", "-lcrypto", "-lpthread"],
                          capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        print(f"TVS   C client: build failed: {done.stderr.strip()[:300]}")
        return None
    return exe


def _tvs_c_clients(exe: Path, request: Path, port: int, threads: int, procs: int, seconds: float,
                   tls: str) -> list[tuple[int, int, float, int, float]]:
    """``procs`` C client processes of ``threads`` threads; per process (ok, fail, s, 0, CPU s)."""
    runs = [subprocess.Popen([str(exe), str(port), str(threads), str(seconds), tls, str(request)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(procs)]
    out = []
    for p in runs:
        text, err = p.communicate(timeout=seconds + 60)
        fields = text.split()
        if p.returncode != 0 or len(fields) != 4:
            raise RuntimeError(f"C client failed ({p.returncode}): {err.strip()[:300]}")
        out.append((int(fields[0]), int(fields[1]), float(fields[2]), 0, float(fields[3])))
    return out


def _openssl_s_time(port: int, procs: int, seconds: float, tls: str, cpu: Any) -> None:
    """Full handshakes/s the TVS server sustains against ``procs`` sequential C clients."""
    if shutil.which("openssl") is None:
        print("TVS   openssl s_time: openssl not installed")
        return
    s0 = cpu.value
    cmd = ["openssl", "s_time", "-connect", f"{HOST}:{port}", "-new", "-time", str(max(1, int(seconds))),
           "-tls1_3" if tls == "1.3" else "-tls1_2"]
    runs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            for _ in range(procs)]
    total = 0.0
    count = 0
    client_cpu = 0.0
    for p in runs:
        out, _err = p.communicate(timeout=seconds + 60)
        m = re.search(r"(\d+) connections in (\d+) real seconds", out)
        if m:
            total += int(m.group(1)) / max(1, int(m.group(2)))
            count += int(m.group(1))
        u = re.search(r"(\d+) connections in ([\d.]+)s;", out)  # first (new-session) summary: user CPU
        if u:
            client_cpu += float(u.group(2))
    print(f"openssl s_time x{procs} (TLS {tls}, handshake + close only): {total:8.0f} handshakes/s")
    _cpu_line(count, cpu.value - s0, client_cpu, "handshake (client: user CPU of s_time)")


def _cpu_line(ok: int, server_cpu: float, client_cpu: float, what: str) -> None:
    """CPU per operation does not depend on what else runs on the machine; wall-clock rates do."""
    if ok:
        s_ms, c_ms = server_cpu / ok * 1000, client_cpu / ok * 1000
        print(f"      CPU per {what}: server {s_ms:.3f} ms (one core: {1000 / s_ms if s_ms else 0:.0f}/s), "
              f"clients {c_ms:.3f} ms; both sides on 2 cores: {2000 / (s_ms + c_ms):.0f}/s")


def _run_clients(ctx: Any, target: Any, args_list: list[tuple[Any, ...]], timeout: float) -> list[Any]:
    out_q = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*a, out_q)) for a in args_list]
    for p in procs:
        p.start()
    results = [out_q.get(timeout=timeout) for _ in procs]
    for p in procs:
        p.join()
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--tftp-clients", type=int, default=256)
    ap.add_argument("--tvs-clients", type=int, default=64)
    ap.add_argument("--client-procs", type=int, default=1)
    ap.add_argument("--client-kind", choices=["asyncio", "threads", "c"], action="append",
                    help="TVS load generator(s), repeatable (default: threads and c): asyncio streams "
                         "(like the emulated phones), blocking sockets in threads (cheaper per request) "
                         "or a C libssl client compiled on the fly (cheapest: leaves the CPU to the server)")
    ap.add_argument("--key", default="rsa2048", help="cluster key (the TVS TLS key): rsa1024, rsa2048...")
    ap.add_argument("--tid-mode", choices=["ephemeral", "shared"], default="ephemeral")
    ap.add_argument("--tls", choices=["1.2", "1.3"], default="1.3")
    ap.add_argument("--only", choices=["tftp", "tvs", "tvs-resume", "openssl"], action="append",
                    help="run only these parts (repeatable); openssl: server handshakes/s with "
                         "'openssl s_time' clients (C, no TVS request) to separate server from client cost")
    ap.add_argument("--tvs-impl", choices=["loop", "threads", "asyncio", "all"], default="all",
                    help="TVS server implementation(s) to measure, one server process each")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args(argv)
    only = set(args.only or ["tftp", "tvs", "tvs-resume"])
    args.client_kind = args.client_kind or ["threads", "c"]

    with tempfile.TemporaryDirectory(prefix="phoneemu-bench-lab-") as tmp:
        root = Path(tmp) / "lab"
        size, _records = make_cluster(root, args.key)
        cert = (LabCluster.open(root).callmanager().der)
        ctx = mp.get_context("spawn")
        impls = ["loop", "threads", "asyncio"] if args.tvs_impl == "all" else [args.tvs_impl]
        print(f"load average before: {os.getloadavg()[0]:.2f}")
        exe = _c_client(Path(tmp)) if "c" in args.client_kind and "tvs" in only else None
        request = Path(tmp) / "verify.bin"
        request.write_bytes(tvs.encode(tvs.verify_request(7, DEVICE, cert)))
        for n, impl in enumerate(impls):
            parts = only if n == 0 else only - {"tftp"}
            _bench_server(ctx, args, root, size, cert, impl, parts, (exe, request))
        print(f"load average after: {os.getloadavg()[0]:.2f} (2 cores; other work on the machine "
              "lowers every wall-clock figure, not the CPU per operation)")


def _bench_server(ctx: Any, args: argparse.Namespace, root: Path, size: int, cert: bytes, impl: str,
                  only: set[str], c_client: tuple[Path | None, Path]) -> None:
    """One server process with TVS implementation ``impl``; the selected client runs against it."""
    port_q, result_q = ctx.Queue(), ctx.Queue()
    stop_ev = ctx.Event()
    cpu = ctx.Value("d", 0.0)
    server = ctx.Process(target=_serve, args=(str(root), args.tid_mode, impl, port_q, stop_ev, args.profile,
                                              result_q, cpu))
    server.start()
    try:
        ports = port_q.get(timeout=60)
        print(f"lab servers: key={args.key} ITL={size} bytes tid_mode={args.tid_mode} tvs_impl={impl} "
              f"ports={ports} (load average {os.getloadavg()[0]:.2f})")
        wait = args.seconds + 60
        if "tftp" in only:
            job: tuple[Any, ...] = (ports["tftp"], args.tftp_clients, args.seconds, size)
            s0 = cpu.value
            res = _run_clients(ctx, _tftp_clients, [job] * args.client_procs, wait)
            server_cpu = cpu.value - s0
            ok, fail = sum(r[0] for r in res), sum(r[1] for r in res)
            el = max(r[2] for r in res)
            print(f"TFTP  {args.tftp_clients}x{args.client_procs} clients, {size} B ITL, blksize 1428: "
                  f"{ok / el:8.0f} transfers/s ({ok} ok, {fail} failed, {el:.1f}s, "
                  f"{sum(r[3] for r in res)} client retransmissions)")
            _cpu_line(ok, server_cpu, sum(r[4] for r in res), "transfer")
        for resume, kind in [(r, k) for r in (False, True) for k in args.client_kind]:
            if ("tvs-resume" if resume else "tvs") not in only or (resume and kind == "c"):
                continue
            job = (ports["tvs"], args.tvs_clients, args.seconds, args.tls, resume, cert)
            s0 = cpu.value
            if kind == "c":
                exe, request = c_client
                if exe is None:
                    continue
                res = _tvs_c_clients(exe, request, ports["tvs"], args.tvs_clients, args.client_procs,
                                     args.seconds, args.tls)
            else:
                target = _tvs_sync_clients if kind == "threads" else _tvs_clients
                res = _run_clients(ctx, target, [job] * args.client_procs, wait)
            time.sleep(0.1)  # the server publishes its CPU time every 50 ms
            server_cpu = cpu.value - s0
            ok, fail = sum(r[0] for r in res), sum(r[1] for r in res)
            el = max(r[2] for r in res)
            label = "resumed sessions" if resume else "full handshake each"
            who = f"{args.tvs_clients}x{args.client_procs} {kind}"
            print(f"TVS   [{impl}] {who} clients, TLS {args.tls}, {label}: "
                  f"{ok / el:8.0f} verifies/s ({ok} ok, {fail} failed, {el:.1f}s, "
                  f"{sum(r[3] for r in res)} resumed, load average {os.getloadavg()[0]:.2f})")
            _cpu_line(ok, server_cpu, sum(r[4] for r in res), "verify")
        if "openssl" in only:
            print(f"TVS   [{impl}]", end=" ")
            _openssl_s_time(ports["tvs"], args.client_procs, args.seconds, args.tls, cpu)
    finally:
        stop_ev.set()
        stats, text = result_q.get(timeout=60)
        server.join(timeout=10)
        print(f"      server: {stats}")
        if text:
            print(text)

if __name__ == "__main__":
    main()
