"""Interrupted runs: nothing is lost, every server keeps running, only our errors escape.

Subprocess probes: a fleet shard killed mid-storm, a phone's flash left damaged by a crash,
``lab serve`` stopped by a signal or started on a port in use, a scenario worker killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from phoneemu.fleet.engine import mac_text
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from tests.helpers import lab_served_in_thread, port_free, pristine_lab, reap, run_within

NOW = 1_780_000_000
HOST = "127.0.0.1"
START = 0x0A0000000300
FLASH_MAC = "0A00000000D1"
MIC_MAC = "0A00000000D2"  # its config encrypted with its MIC's key
SIGTERM_MAC = "001122334455"
run = run_within(90)

# One RSA-1024 lab for the tests of a single phone's boot and of lab serve, each test with a copy of its own
# (they built one each: 0.1 to 0.4 s of CPU apiece, the seeded ones the most; the seed was no part of them)
base_lab, lab = pristine_lab("interruptions", now=NOW, phones={
    FLASH_MAC: {"now": NOW}, MIC_MAC: {"encrypt": "pki", "now": NOW}, SIGTERM_MAC: {"now": NOW}})


def _children(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (Linux /proc)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2:].split()[0] != "Z"


def _shard_pids(pid: int) -> list[int]:
    return [c for c in _children(pid)
            if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


@pytest.mark.slow
def test_fleet_shard_killed_mid_storm_is_counted_lost_and_the_rest_finish(tmp_path: Path) -> None:
    """SIGKILL of one shard during the storm: the parent says so at once (shard, MACs, signal), the
    other shard finishes, the summary and --json count the dead shard's phones as lost, exit 1, no
    process left behind. Before, the parent noticed only when the other shards had finished (their
    progress kept the queue busy), then threw every result away (exit 2, no --json)."""
    c = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW)
    c.add_phones([mac_text(START + i) for i in range(16)], now=NOW)
    out = tmp_path / "fleet.json"

    async def body() -> tuple[int, str, str, list[int]]:
        async with LabServers(c, host=HOST, tftp_tid_mode="shared") as srv:
            srv.set_network(delay_s=0.01)  # ~0.2 s per boot, one at a time per shard: over a second
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "phoneemu", "fleet", "boot", "--count", "16", "--tftp",
                f"{HOST}:{srv.ports['tftp']}", "--mac-start", mac_text(START), "--shards", "2",
                "--concurrency", "1", "--no-http", "-q", "--json", str(out), stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
            for _ in range(600):  # until the storm has begun, 60 s at most
                if len(srv.requests) >= 2:
                    break
                await asyncio.sleep(0.1)
            shards = _shard_pids(proc.pid)
            assert len(shards) == 2, shards
            os.kill(min(shards), signal.SIGKILL)  # either shard (pids may wrap around)
            so, se = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode is not None
            return proc.returncode, so.decode(), se.decode(), shards

    rc, stdout, stderr, shards = run(body())
    assert rc == 1, (stdout, stderr)
    assert "Traceback" not in stderr
    doc = json.loads(out.read_text())
    summary = doc["summary"]
    assert summary["lost"] == 8 and summary["booted"] == 8 and len(doc["phones"]) == 8
    (lost,) = summary["lost_shards"]
    n, kept = lost["shard"], 1 - lost["shard"]
    assert lost["why"] == "killed by SIGKILL" and lost["first_mac"] == mac_text(START + 8 * n)
    assert lost["last_mac"] == mac_text(START + 8 * n + 7)
    assert f"phoneemu fleet boot: lost shard {n} (phoneemu-fleet-{n}, 8 phones" in stderr
    assert "killed by SIGKILL" in stderr
    assert "8 of 16 phones lost" in stderr and f"lost: shard {n}" in stdout
    assert "the other shard goes on" in stderr
    assert {p["mac"] for p in doc["phones"]} == {mac_text(START + 8 * kept + i) for i in range(8)}
    assert not any(_alive(p) for p in shards)


# --------------------------------------------------------------------------- a phone's flash after a crash
def _damage(flash: Path, name: str, how: str) -> None:
    p = flash / name
    if how == "truncated":
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    elif how == "empty":
        p.write_bytes(b"")
    elif how == "garbage":
        p.write_bytes(bytes(range(256)) * 3)
    elif how == "swapped":  # another whole config, state.json not updated: a crash between the two files
        from phoneemu.formats import config as config_fmt

        p.write_bytes(config_fmt.build(config_fmt.DeviceConfig(device_name=f"SEP{FLASH_MAC}",
                                                               capf_auth_mode=1)))
    elif how == "temp":  # killed in the middle of atomic_write: a half-written temp file beside the old one
        (flash / f".{name}.tmp").write_bytes(p.read_bytes()[:100])
    else:
        raise AssertionError(how)


def _boot_here(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``phoneemu boot ARGV`` in this process (the flash tests are about what a boot makes of the files it
    finds, not about the process: a crash is an exception here): exit status, stdout, stderr."""
    from phoneemu.cli import main

    capsys.readouterr()
    rc = main(["boot", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.slow
def test_boot_on_a_flash_left_damaged_by_a_crash(lab: LabCluster, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A flash file left truncated, empty or garbage (a crash, a bad disk), or a half-written temp file
    of an interrupted write: the next boot neither crashes nor hides it — a damaged trust list or
    config is not loaded (the phone boots as if it were absent, flash module rules) and the boot's
    first status names the file and why. Before, the problem was recorded before the boot began and
    so never shown: the phone silently took a new ITL on trust. (The boots run in this process, the
    lab served from a thread: eight ``python -m phoneemu boot`` were ~2.7 s of CPU, mostly start-up.)"""
    c = lab
    good = tmp_path / "good"
    cases = [("ITLFile.tlv", "truncated"), ("ITLFile.tlv", "empty"), ("ITLFile.tlv", "garbage"),
             ("config.xml", "garbage"), ("state.json", "truncated"), ("ITLFile.tlv", "temp"),
             ("config.xml", "swapped")]

    with lab_served_in_thread(c, host=HOST) as (srv, _on_loop):
        def boot(flash: Path) -> tuple[int, str, str]:
            return _boot_here(capsys, "--mac", FLASH_MAC, "--tftp", f"{HOST}:{srv.ports['tftp']}",
                              "--no-http", "--lab", str(c.root), "--flash", str(flash), "--now", str(NOW),
                              "--timeout", "1")

        first = boot(good)
        assert first[0] == 0, first
        flashes = []
        for i, (name, how) in enumerate(cases):
            flash = tmp_path / f"f{i}"
            shutil.copytree(good, flash)
            _damage(flash, name, how)
            flashes.append(flash)
        booted = [boot(f) for f in flashes]

    for (name, how), (rc, out, err) in zip(cases, booted, strict=True):
        assert rc == 0 and "Traceback" not in out + err, (name, how, out, err)
        if name == "ITLFile.tlv" and how != "temp":
            assert f"status: flash: {name}: " in out and "not loaded" in out, (how, out)
            assert "G.2-first-itl-tofu accepted" in out  # as if absent: the ITL is taken on trust again
        if name == "config.xml":
            assert f"status: flash: {name}: " in out, out
        if how == "swapped":  # not installed under the old name: named, and the config fetched afresh
            assert "status: flash: config.xml: SHA-256 " in out, out
            assert "(a crash between writing the two?); not loaded" in out
            assert f"SEP{FLASH_MAC}.cnf.xml" in out and "Phone" in out and ": OK" in out, out
    assert not any(p.name.endswith(".tmp") for p in tmp_path.glob("f*/.*"))  # the stale temp was removed


@pytest.mark.parametrize(("text", "why"), [('{"mac": 5}', "mac: MAC must be text"),
                                           ('{"mac": "zz"}', "'zz' is not a MAC"),
                                           ('{"mac": "0A00000000D1", "profile": 7}', "profile 7 is none of")])
def test_damaged_phone_json_is_one_line_naming_it(tmp_path: Path, text: str, why: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """phone.json with a field of the wrong type or value: one line naming the file (was e.g. "--mac is
    required (no phone.json in the flash directory)" although there is one)."""
    from phoneemu.cli import main

    flash = tmp_path / "ph"
    flash.mkdir()
    (flash / "phone.json").write_text(text)
    assert main(["boot", "--tftp", "127.0.0.1:9", "--flash", str(flash), "--timeout", "0.1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(flash / "phone.json") in err[0] and why in err[0], err


# --------------------------------------------------------------------------- phoneemu run -j 2
SCENARIO = """\
reproduces: spec G.2
clusters: {{lab: {{key: rsa1024}}}}
phones:
  p: {{mac: 0B00000000{n:02X}}}
steps:
  - network: {{delay_ms: {delay}}}
  - boot: p
  - expect: {{phones: p, label: first, config: accepted}}
"""


def _sockets(pid: int) -> int:
    n = 0
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    except OSError:
        return 0
    return n


@pytest.mark.slow
def test_run_worker_killed_mid_scenario_is_an_error_naming_it(tmp_path: Path) -> None:
    """``run -j 2``: a worker SIGKILLed while it runs a scenario makes that scenario an ERROR at once,
    naming the worker and the signal; the other worker runs the rest; the reports are written, exit 1.
    Before, the error said only "worker process died before reporting this scenario", and only once
    every worker had ended."""
    files = []
    for n, delay in enumerate((300, 300, 0)):  # two slow scenarios (about two seconds each), one quick
        f = tmp_path / f"s{n}.yaml"
        f.write_text(SCENARIO.format(n=n + 1, delay=delay))
        files.append(str(f))
    js = tmp_path / "r.json"

    async def body() -> tuple[int, str, str, int]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "phoneemu", "run", *files, "-j", "2", "--json", str(js),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        victim = 0
        for _ in range(300):  # until both workers run a scenario (their lab has sockets), 30 s at most
            workers = _shard_pids(proc.pid)
            if len(workers) == 2 and all(_sockets(w) for w in workers):
                victim = min(workers)
                break
            await asyncio.sleep(0.1)
        assert victim, "the workers never started a scenario"
        os.kill(victim, signal.SIGKILL)
        so, se = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return proc.returncode, so.decode(), se.decode(), victim

    rc, out, err, victim = run(body())
    assert rc == 1 and "Traceback" not in out + err, (out, err)
    doc = json.loads(js.read_text())
    outcomes = {s["name"]: s["outcome"] for s in doc["scenarios"]}
    assert sorted(outcomes.values()) == ["ERROR", "PASS", "PASS"] and outcomes["s2"] == "PASS", outcomes
    assert f"(pid {victim}) was killed by SIGKILL while running this scenario" in out, out


_PARENT_DIES = """\
import multiprocessing as mp, os, sys
from phoneemu.fleet.engine import FleetSpec
from phoneemu.fleet.shard import _child
from phoneemu.phone.boot import BootTarget
from phoneemu.worker_pipes import Inbox

if __name__ == "__main__":
    ctx = mp.get_context("spawn")
    (r, w), (orders, _keep) = ctx.Pipe(duplex=False), ctx.Pipe(duplex=False)
    spec = FleetSpec(target=BootTarget(host="127.0.0.1", tftp_port=9), count=1)
    macs = range(spec.mac_start, spec.mac_start + 1)
    p = ctx.Process(target=_child, args=(spec, macs, 0, (w, orders), 60.0))
    p.start()
    w.close()
    orders.close()
    assert Inbox({0: r}).wait(60) == [(0, ("ready",))]
    print(p.pid, flush=True)
    os._exit(0)  # as if SIGKILLed before the storm: `go` never comes
"""


def test_fleet_shard_waiting_for_the_storm_exits_when_its_parent_dies(tmp_path: Path) -> None:
    """A shard ready and waiting for the start signal whose parent is killed exits by itself within a
    second or two (was: it waited out the start timeout, 120 s by default, as an orphan)."""
    script = tmp_path / "parent.py"
    script.write_text(_PARENT_DIES)

    async def body() -> int:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(script), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 60)  # not communicate(): the shard
        assert await asyncio.wait_for(proc.wait(), 30) == 0       # holds the pipe while it lives
        shard = int(line.decode().split()[0])
        try:
            for _ in range(50):  # 5 s at most
                if not _alive(shard):
                    return shard
                await asyncio.sleep(0.1)
            os.kill(shard, signal.SIGKILL)
            raise AssertionError("the orphaned shard kept waiting")
        finally:  # the pipe ends with the shard: read to its end, so the transport closes here, not in
            # a later test's garbage collection (a ResourceWarning that test would be blamed for)
            await asyncio.wait_for(proc.stdout.read(), 30)

    run(body())


# --------------------------------------------------------------------------- lab serve and Ctrl-C
def _serve_cmd(root: Path) -> list[str]:
    return [sys.executable, "-m", "phoneemu", "lab", "serve", str(root), "--tftp-port", "0", "--http-port",
            "0", "--tvs-port", "0", "--capf-port", "0"]


def test_lab_serve_ctrl_c_stops_cleanly_with_130(lab: LabCluster) -> None:
    """SIGINT (Ctrl-C) to ``lab serve``: it stops within a bound, exit 130 (128 + SIGINT, as every
    phoneemu command Ctrl-C ends; was 0), says ``stopping (SIGINT)``, prints no traceback, frees its
    ports, and leaves the lab directory whole: it loads, its state names the ports and host it served,
    no temporary file is left, the served ITL verifies."""
    import socket
    import subprocess

    from phoneemu.formats import trustlist
    from phoneemu.lab.state import load_state
    from phoneemu.net.tftp import tftp_get
    from tests.helpers import reap, serve_ports

    c = lab
    proc = subprocess.Popen(_serve_cmd(c.root), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    try:
        assert proc.stdout is not None and proc.stderr is not None
        ports, lines = serve_ports(proc)
        assert set(ports) == {"tftp", "http", "tvs", "capf"}, "".join(lines)
        trustlist.parse(run(tftp_get(HOST, ports["tftp"], "ITLFile.tlv"))).verify_self()  # raises if not
        # the probe sees the sockets while it runs
        assert not port_free(HOST, ports["http"], socket.SOCK_STREAM)
        assert not port_free(HOST, ports["tftp"], socket.SOCK_DGRAM)
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            raise AssertionError("lab serve did not stop within 15 s of SIGINT") from None
        out, err = proc.stdout.read(), proc.stderr.read()
    finally:
        reap(proc)
    assert rc == 130, (rc, out, err)
    assert "Traceback" not in out + err and err.strip() == "", err
    assert out.strip().splitlines()[-1] == "stopping (SIGINT)", out
    for name, kind in (("tftp", socket.SOCK_DGRAM), ("http", socket.SOCK_STREAM), ("tvs", socket.SOCK_STREAM),
                       ("capf", socket.SOCK_STREAM)):
        assert port_free(HOST, ports[name], kind), f"{name} port {ports[name]} still held after SIGINT"
    state = load_state(c.root)  # cluster.json whole: parses and validates
    assert state.ports == ports and state.host == HOST
    assert not [p.name for p in c.root.rglob(".*") if ".tmp" in p.name]
    reopened = LabCluster.open(c.root)
    assert reopened.generation == state.generation
    trustlist.parse((c.root / "tftp" / "ITLFile.tlv").read_bytes()).verify_self()  # whole, still signed


def test_lab_serve_ctrl_c_while_waiting_for_the_lab_lock(lab: LabCluster) -> None:
    """Ctrl-C while ``lab serve`` waits for the lab lock an operation holds (to record its ports): it
    stops at once (not after the operation), exit 130, no traceback, the lab untouched."""
    import fcntl
    import subprocess

    from tests.helpers import LinePump, reap

    c = lab
    before = (c.root / "cluster.json").read_bytes()
    fd = os.open(c.root / ".lab.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        proc = subprocess.Popen(_serve_cmd(c.root), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
        try:
            assert proc.stdout is not None and proc.stderr is not None
            out, err = LinePump(proc.stdout), LinePump(proc.stderr)
            # started, bound its ports, and says it waits for the lock (logged after LOCK_WAIT_S)
            assert err.wait_for("waiting for it to record this server's change", 30), err.text(0)
            proc.send_signal(signal.SIGINT)
            try:
                rc = proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                raise AssertionError("lab serve waited for the lock after SIGINT") from None
        finally:
            reap(proc)
    finally:
        os.close(fd)
    stdout, stderr = out.text(), err.text()
    assert rc == 130 and "Traceback" not in stdout + stderr, (rc, stdout, stderr)
    assert "listening" not in stdout and stdout.strip().splitlines()[-1] == "stopping (SIGINT)", stdout
    assert (c.root / "cluster.json").read_bytes() == before


@pytest.mark.parametrize("name", ["mic.key", "mic.der"])
def test_boot_with_a_damaged_mic_on_flash_names_the_file(lab: LabCluster, tmp_path: Path, name: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A MIC file left truncated on flash: the next boot's first status names the file and what is
    wrong, and the phone boots as one without a MIC — its PKI-encrypted config cannot be unwrapped ("no
    LSC or MIC"), no attempt with a broken key. Before, the damage showed only when the key was used,
    as "decrypt file failed: key: ..." (naming no file), or not at all for a damaged certificate. (The
    boots run in this process, as in the test above.)"""
    mac, c = MIC_MAC, lab
    good, flash = tmp_path / "good", tmp_path / "damaged"

    with lab_served_in_thread(c, host=HOST) as (srv, _on_loop):
        def boot(where: Path, *given: str) -> tuple[int, str, str]:
            return _boot_here(capsys, "--mac", mac, "--tftp", f"{HOST}:{srv.ports['tftp']}", "--no-http",
                              *given, "--flash", str(where), "--now", str(NOW), "--timeout", "1")

        rc1, out1, err1 = boot(good, "--lab", str(c.root))  # the lab provisions the MIC onto flash
        for where in (flash, tmp_path / "given"):
            shutil.copytree(good, where)
            _damage(where, name, "truncated")
        # no --lab: the phone has only the MIC on its flash; with --lab the lab's MIC replaces it
        rc, out, err = boot(flash)
        rc3, out3, err3 = boot(tmp_path / "given", "--lab", str(c.root))

    assert rc1 == 0 and "G.12.3-decrypted accepted" in out1, out1 + err1
    assert rc == 1 and "Traceback" not in out + err, (rc, err)  # no config accepted: exit 1
    statuses = [line for line in out.splitlines() if "status: flash:" in line]
    assert len(statuses) == 1 and f"status: flash: {name} at offset " in statuses[0], out
    assert "truncated" in statuses[0] and "not loaded (the phone runs without its MIC)" in statuses[0]
    assert "G.12.3-no-key" in out and "no LSC or MIC to unwrap the config key" in out, out
    assert "decrypt file failed" not in out
    assert rc3 == 0 and "G.12.3-decrypted accepted" in out3, out3 + err3
    assert f"status: flash: {name} at offset " in out3 and "not loaded (the MIC given replaces it)" in out3


BIG_GROUP = """\
reproduces: spec G.3
clusters: {lab: {key: rsa1024}}
phones:
  many: {count: 3000, mac_start: "0A0000200000"}
steps:
  - expect: {phones: many, itl: absent}
"""


def test_a_scenario_cancelled_while_its_phones_get_their_keys_stops_at_once(tmp_path: Path) -> None:
    """The MIC keys of a large group were made on the event loop: a Ctrl-C, a SIGTERM or the time limit
    (all a cancellation) waited for every key — 2,000,000 phones ignored SIGTERM for 10 minutes. Now the
    set-up is cancelled within a few keys, and the key-making thread stops too."""
    import asyncio

    from phoneemu.scenario.loader import load_text
    from phoneemu.scenario.world import World

    async def main() -> tuple[float, int, int]:
        world = World(load_text(BIG_GROUP, "big.yaml"), tmp_path, start_time=1_780_272_000)
        start = asyncio.create_task(world.start())
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            spare: Sequence[object] = []
            while not spare and loop.time() < deadline:  # the keys are being made
                await asyncio.sleep(0.01)
                lab = next(iter(world.clusters.values())).cluster if world.clusters else None
                pools = lab.pki._spare_mic_keys if lab is not None else {}
                spare = next(iter(pools.values()), [])
            assert spare, "no key made within 60 s"
            cancelled_at = loop.time()
            start.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await start
            took = loop.time() - cancelled_at
            made = len(spare)
            await asyncio.sleep(0.5)
            return took, made, len(spare)
        finally:
            await world.close()

    took, made, later = asyncio.run(main())
    assert took < 10, took  # within a batch of keys (seconds at most on a loaded machine), not 3,000 keys
    assert made < 3000 and later == made  # and no key is made after it


def _phoneemu(*argv: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "phoneemu", *argv], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
                                 "TMPDIR": str(cwd)})


def test_sigterm_stops_boot_and_fuzz_as_ctrl_c_does(lab: LabCluster, tmp_path: Path) -> None:
    """A bare SIGTERM killed ``boot`` (its temporary flash, with the MIC's private key, was left in
    $TMPDIR) and ``fuzz`` (no summary.json: the findings went unreported); now it is a Ctrl-C in every
    command: exit 130, the summary written, the temporary flash removed. The boot's --timeout is long so
    it is still under way when signalled however long fuzz takes to start (with the default 2 s, a silent
    TFTP ended the boot by itself after 24 s: exit 1 when fuzz started that slowly). The moments a
    SIGTERM once slipped through are probed one by one in test_boot_sigterm_windows.py."""
    import socket as socket_mod

    with socket_mod.socket(socket_mod.AF_INET, socket_mod.SOCK_DGRAM) as silent:  # a TFTP that never answers
        silent.bind((HOST, 0))
        boot = _phoneemu("boot", "--tftp", f"{HOST}:{silent.getsockname()[1]}", "--mac", SIGTERM_MAC,
                         "--lab", str(lab.root), "--no-http", "--timeout", "120", cwd=tmp_path)
        fuzz = _phoneemu("fuzz", "--format", "itl", "--target", "phoneemu", "--time", "60", "--out",
                         str(tmp_path / "fz"), cwd=tmp_path)
        try:
            deadline = time.monotonic() + 30
            while not list(tmp_path.glob("phoneemu-flash-*")) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert list(tmp_path.glob("phoneemu-flash-*")), "boot made no temporary flash"
            # fuzz under way too: its --out folder is made once SIGTERM is a Ctrl-C, before the corpus
            # (a SIGTERM then, or in the loop, writes summary.json all the same)
            while not (tmp_path / "fz").is_dir() and fuzz.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
            assert (tmp_path / "fz").is_dir(), "fuzz did not start"
            assert boot.poll() is None, "boot ended before it was signalled"
            for proc in (boot, fuzz):
                proc.send_signal(signal.SIGTERM)
            for name, proc in (("boot", boot), ("fuzz", fuzz)):
                _, err = proc.communicate(timeout=30)
                assert proc.returncode == 130 and "Traceback" not in err, (name, proc.returncode, err)
        finally:
            reap(boot)
            reap(fuzz)
    assert not list(tmp_path.glob("phoneemu-flash-*"))
    assert json.loads((tmp_path / "fz" / "summary.json").read_text())["interrupted"] is True
