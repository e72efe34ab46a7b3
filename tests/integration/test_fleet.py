"""Fleets over loopback against a seeded lab (issue #6): every phone's outcome, shared verification.

One lab (50 phones, mixed mode) regenerates its ITLRecovery certificate; the fleet's phones hold the
previous CTL/ITL and their previous config (``Prestate``), so each boot asks TVS about the new CTL
signer, then installs the ITL through the CTL and accepts its signed config — the same rules a
single phone runs. One phone's config is tampered and must be the one failure. Identical files
(the CTL, the ITL) are verified once per process (VerifyCache) and parsed once (InternCache).
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from phoneemu.errors import EncodeError, PhoneEmuError
from phoneemu.fleet.engine import FleetSpec, Prestate, boot_many, mac_text, make_phones, run_shard
from phoneemu.fleet.loop import resolve_event_loop
from phoneemu.fleet.shard import run_fleet
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.phone.boot import BootTarget
from tests.helpers import (
    finish_process,
    fsyncs_skipped,
    held_then_itlrecovery_regenerated,
    lab_served_in_thread,
    pristine_fleet_lab,
    reap,
    run_within,
    serve_in_thread,
)

NOW = 1_780_000_000
HOST = "127.0.0.1"
START = 0x0A0000000100
COUNT = 50
BAD = mac_text(START + 7)


#: every lab's seed: a seeded key is made once per process (in Python, ~20 ms of CPU for RSA-1024) and then
#: reused, so the tests' labs share their keys with the storm's (no test here compares keys across labs)
SEED = 3

run = run_within(120)
no_fsync = fsyncs_skipped()  # the labs' and the in-process flashes' (no test here is about a crash)


#: the storm's lab (50 phones, mixed mode), made once per module; ``lab``: each test regenerates and tampers
#: its own copy
base_lab, lab = pristine_fleet_lab("fleet", seed=SEED, start=START, count=COUNT, now=NOW, mixed_mode=True)


def _regenerate(c: LabCluster, tmp: Path) -> Prestate:
    """Keep what phones got from the running lab (configs name its TVS port), then change the lab."""
    pre: Prestate = held_then_itlrecovery_regenerated(c, tmp, now=NOW, tamper=f"SEP{BAD}.cnf.xml.sgn")
    return pre


def test_fleet_storm_outcomes_tvs_and_verified_once(lab: LabCluster, tmp_path: Path) -> None:
    c = lab

    async def body() -> Any:
        async with LabServers(c, host=HOST, tftp_tid_mode="shared") as srv:
            pre = _regenerate(c, tmp_path)
            target = BootTarget(host=HOST, tftp_port=srv.ports["tftp"], use_http=False)
            spec = FleetSpec(target=target, count=COUNT, mac_start=START, concurrency=16, prestate=pre,
                             keep_records=True, fetch_timeout=1.0, tvs_timeout=10.0)
            seen: list[tuple[int, int, dict[str, int]]] = []
            res = await run_shard(spec, range(START, START + COUNT),
                                  on_progress=lambda d, o, f, _p, _c: seen.append((d, o, f)),
                                  progress_interval=0.05)
            return res, seen, srv.tvs_handler.answered

    gc_before = gc.get_threshold()
    res, seen, tvs_answered = run(body())
    assert gc.get_threshold() == gc_before  # the storm's GC thresholds are restored
    by_mac = {r.mac: r for r in res.records}
    assert len(by_mac) == COUNT and res.not_started == 0
    for mac, rec in by_mac.items():
        assert rec.tvs_used, mac
        if mac == BAD:
            assert rec.outcome != "ok" and rec.rule == "G.4-bad-signature"
        else:
            assert (rec.outcome, rec.rule) == ("ok", "G.4-signed-by-ctl-tftp"), mac
    assert tvs_answered == COUNT
    m = res.metrics
    assert m.booted == COUNT - 1 and m.failed == 1 and m.by_rule["G.4-bad-signature"] == 1
    # who took the new lists: every phone updated its CTL (vouched for by TVS) and its ITL
    assert all((r.ctl, r.itl) == ("updated", "updated") for r in res.records)
    assert by_mac[BAD].as_dict()["itl"] == "updated"
    assert "CN=" in by_mac[BAD].as_dict()["signer"]  # the failed config's signer: which certificate
    assert "signer" not in by_mac[mac_text(START)].as_dict()  # kept for failed boots only
    assert m.by_trust == {"CTL updated": COUNT, "ITL updated": COUNT}
    assert f"trust lists: CTL updated {COUNT}, ITL updated {COUNT}" in m.render()
    # TFTP only here: CTL, ITL and config for every phone, the two static files for the COUNT - 1 others
    assert m.files_over == {"tftp": 3 * COUNT + 2 * (COUNT - 1)}
    assert by_mac[BAD].as_dict()["files_over"] == {"http": 0, "tftp": 3}
    assert seen[-1] == (COUNT, COUNT - 1, {"G.4-bad-signature": 1})  # the one failure, and why
    # the CTL (checked with the TVS-vouched key) and the ITL (with the CTL's SAST record) are the same
    # bytes for every phone: verified once each; every config is its own file (COUNT - 1 good ones;
    # the tampered one fails and failures are never cached). The two static files the config names
    # (g3-tones.xml.sgn, AppDialRules.xml.sgn, spec §C.6 row 6) are fetched by the COUNT - 1 phones
    # whose config was accepted: verified once each too.
    assert res.verify_misses == 2 + COUNT + 2
    assert res.verify_hits == 2 * (COUNT - 1) + 2 * (COUNT - 2)
    assert res.intern_hits >= 2 * (COUNT - 1)  # the new CTL and ITL were parsed once, then shared


def test_boot_many_first_contact_in_order(tmp_path: Path) -> None:
    c = LabCluster.init(tmp_path / "lab", seed=SEED, key_spec="rsa1024", now=NOW)
    macs = [mac_text(START + i) for i in range(12)]
    c.add_phones(macs, now=NOW)

    async def body() -> Any:
        async with LabServers(c, host=HOST) as srv:
            target = BootTarget(host=HOST, tftp_port=srv.ports["tftp"], http_port=srv.ports["http"])
            spec = FleetSpec(target=target, count=12, mac_start=START)
            phones = make_phones(spec, range(START, START + 12), pool=None)
            first = await boot_many(phones, target, concurrency=5)
            again = await boot_many(phones, target, concurrency=5)  # a reboot: state persisted
            return first, again

    first, again = run(body())
    assert [r.mac for r in first] == macs
    for r in first:
        assert r.ok and r.trust["ITL"] == "installed" and r.decisions[0].rule == "G.2-first-itl-tofu"
    for r in again:
        assert r.ok and r.trust["ITL"] == "unchanged"


def test_a_phone_pausing_before_a_capf_retry_gives_its_turn_to_the_next(tmp_path: Path) -> None:
    """Spec §F.1: a phone retries CAPF 3 times, ``capf_retry_delay`` apart. With one turn
    (concurrency 1) and CAPF down, the phones after the pausing one boot during its pauses, and the
    progress reports count it pausing; it ends with its CAPF outcome recorded."""
    c = LabCluster.init(tmp_path / "lab", seed=SEED, key_spec="rsa1024", now=NOW)
    macs = [mac_text(START + i) for i in range(6)]
    c.add_phones(macs, now=NOW)
    c.set_capf([macs[0]], "install", auth_mode="null-string", key="rsa1024", now=NOW)

    async def body() -> Any:
        async with LabServers(c, host=HOST) as srv:
            await srv.stop_service("capf")
            target = BootTarget(host=HOST, tftp_port=srv.ports["tftp"], http_port=srv.ports["http"])
            # 0.2 s pauses: the five other boots take ~60 ms in all (0.4 s pauses only made it longer)
            spec = FleetSpec(target=target, count=6, mac_start=START, concurrency=1, keep_records=True,
                             capf_retry_delay=0.2)
            pausing: list[int] = []
            res = await run_shard(spec, range(START, START + 6), progress_interval=0.05,
                                  on_progress=lambda _d, _o, _f, p, _c: pausing.append(p))
            return res, pausing

    res, pausing = run(body())
    ends = {r.mac: r.end_s for r in res.records}
    assert len(ends) == 6 and res.not_started == 0
    assert all(ends[m] < ends[macs[0]] for m in macs[1:])  # booted while the first one paused
    assert max(pausing) == 1 and pausing[-1] == 0
    first = next(r for r in res.records if r.mac == macs[0])
    assert first.outcome == "ok" and first.capf == "F.1-capf-unreachable"  # its config was accepted
    assert first.latency_s >= 3 * 0.2


def test_a_stopping_run_ends_the_capf_pauses(tmp_path: Path) -> None:
    """Ctrl-C (or --max-time) lets the boots under way finish: a phone pausing 30 s before each CAPF
    retry goes on at once instead of holding the run for its remaining pauses (up to 90 s)."""
    import time

    c = LabCluster.init(tmp_path / "lab", seed=SEED, key_spec="rsa1024", now=NOW)
    mac = mac_text(START)
    c.add_phones([mac], now=NOW)
    c.set_capf([mac], "install", auth_mode="null-string", key="rsa1024", now=NOW)

    async def body() -> Any:
        async with LabServers(c, host=HOST) as srv:
            await srv.stop_service("capf")
            target = BootTarget(host=HOST, tftp_port=srv.ports["tftp"], http_port=srv.ports["http"])
            spec = FleetSpec(target=target, count=1, mac_start=START, keep_records=True,
                             capf_retry_delay=30.0)
            paused: list[int] = []  # the stop comes once the phone pauses (not at a time: a loaded
            t0 = time.monotonic()  # machine may not have started the boot by then)
            res = await run_shard(spec, range(START, START + 1), progress_interval=0.05,
                                  on_progress=lambda _d, _o, _f, pausing, _c: paused.append(pausing),
                                  should_stop=lambda: any(paused))
            return res, time.monotonic() - t0, paused

    res, took, paused = run(body())
    assert took < 20, took  # not 90 s
    assert any(paused)
    assert [(r.outcome, r.capf) for r in res.records] == [("ok", "F.1-capf-unreachable")]


def test_fleet_spec_refuses_a_negative_capf_retry_delay() -> None:
    target = BootTarget(host=HOST, tftp_port=69)
    for bad in (-1.0, float("nan")):
        with pytest.raises(EncodeError, match="capf_retry_delay"):
            FleetSpec(target=target, count=1, capf_retry_delay=bad)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``phoneemu ARGS`` in this process (the fleet's shards, when it has any, are still processes of their
    own; a CLI process each cost ~0.5 s of CPU): exit status, stdout, stderr."""
    from phoneemu.cli import main

    capsys.readouterr()
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_fleet_boot_two_shards_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = LabCluster.init(tmp_path / "lab", seed=SEED, key_spec="rsa1024", now=NOW)
    c.add_phones([mac_text(START + i) for i in range(20)], now=NOW)
    out = tmp_path / "fleet.json"

    with lab_served_in_thread(c, host=HOST, tftp_tid_mode="shared") as (srv, on_loop):
        rc, stdout, stderr = _cli(capsys, "fleet", "boot", "--count", "20", "--tftp",
                                  f"{HOST}:{srv.ports['tftp']}", "--http-port", str(srv.ports["http"]),
                                  "--mac-start", mac_text(START), "--shards", "2", "--json", str(out), "-q")
        over_http = on_loop(lambda: sum(1 for r in srv.requests if r.service == "http"))
    assert over_http >= 20 * 3, f"only {over_http} files came over HTTP"  # a cp-8861 tries it first
    assert rc == 0, stderr
    assert f"http {srv.ports['http']})" in stderr  # the target line names the HTTP port
    assert "20 phones: 20 booted, 0 failed" in stdout and "G.4-signed-by-itl-tftp" in stdout
    doc = json.loads(out.read_text())
    assert doc["summary"]["files_over"].get("http", 0) >= 60 and "files received: " in stdout
    assert doc["summary"]["shards"] == 2 and doc["summary"]["booted"] == 20
    assert sorted(p["mac"] for p in doc["phones"]) == [mac_text(START + i) for i in range(20)]
    assert all(p["outcome"] == "ok" for p in doc["phones"])
    # files_over crossed the shards' pipes with the records (it was dropped on the way), and the
    # document says what ran
    assert all(p["files_over"]["http"] >= 3 for p in doc["phones"])
    assert doc["phoneemu"].startswith("phoneemu ")


def test_cli_fleet_boot_junit_has_a_case_per_phone(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import xml.etree.ElementTree as ET

    c = LabCluster.init(tmp_path / "lab", seed=SEED, key_spec="rsa1024", now=NOW)
    c.add_phones([mac_text(START + i) for i in range(4)], now=NOW)
    report = tmp_path / "phones.xml"

    with lab_served_in_thread(c, host=HOST, tftp_tid_mode="shared") as (srv, on_loop):
        # the fourth phone's config fails
        on_loop(lambda: c.tamper(f"SEP{mac_text(START + 3)}.cnf.xml.sgn", now=NOW))
        rc, so, se = _cli(capsys, "fleet", "boot", "--count", "4", "--tftp", f"{HOST}:{srv.ports['tftp']}",
                          "--no-http", "--mac-start", mac_text(START), "--shards", "0", "--junit",
                          str(report), "-q")
    output = so + se
    assert rc == 1, output
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "4" and suite.get("failures") == "1", output
    cases = {c.get("name") or "": c for c in suite.findall("testcase")}
    assert sorted(cases) == [mac_text(START + i) for i in range(4)]
    failure = cases[mac_text(START + 3)].find("failure")
    assert failure is not None and (failure.get("message") or "").startswith("locked-out (G.4-bad-signature")
    assert f"mac: {mac_text(START + 3)}" in (failure.text or "")
    assert "way out (a file changed on its way" in (failure.text or "")  # and then? (phone.ways_out)
    assert all(cases[mac_text(START + i)].find("failure") is None for i in range(3))


def test_cli_fleet_boot_gives_up_when_nothing_answers(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A wrong address (nothing answers on it: a silent UDP socket here) stops the storm after the first
    32 phones of a shard got no answer at all, instead of every phone waiting out the same timeouts;
    --keep-going boots them all."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind((HOST, 0))
    port = silent.getsockname()[1]
    # nothing ever answers
    argv = ["fleet", "boot", "--count", "120", "--tftp", f"{HOST}:{port}", "--no-http", "--timeout", "0.02",
            "--retries", "0", "--shards", "0", "--concurrency", "8", "-q"]

    def in_process(*extra: str) -> tuple[int, str]:
        rc, out, err = _cli(capsys, *argv, *extra)
        return rc, out + err
    try:
        # the sharded run in a process of its own (its shards' messages reach the CLI's stderr), side by
        # side with the two single-shard runs in this process (a CLI process each cost ~0.45 s of CPU):
        # each run mostly waits out timeouts on the silent socket
        sharded = subprocess.Popen([sys.executable, "-m", "phoneemu", *argv, "--shards", "2"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            (rc, out), (rc3, out3) = in_process(), in_process("--keep-going")
            rc2, so2, se2 = finish_process(sharded, timeout=120)
            out2 = so2 + se2
        finally:
            reap(sharded)
        assert rc == 1, out
        assert (f"the first 32 phones got no answer to any request from {HOST}:{port} (every one timed "
                "out or was unreachable); --keep-going boots every phone anyway") in out
        assert (f"phoneemu fleet boot: giving up: the first 32 phones got no answer to any request from "
                f"{HOST}:{port}") in out
        booted = int(out.split(" phones: ")[1].split(" booted")[0])  # "120 phones: 0 booted, 39 failed"
        failed = int(out.split(" booted, ")[1].split(" failed")[0])
        assert booted == 0 and 32 <= failed < 120, out
        # with --shards 2 each shard gives up; the message comes once, from the first
        assert rc2 == 1 and out2.count("phoneemu fleet boot: giving up: ") == 1, out2
        assert rc3 == 1 and "120 phones: 0 booted, 120 failed" in out3 and "not started" not in out3, out3
        assert "giving up" not in out3
    finally:
        silent.close()


def _ctrl_c_as_a_terminal() -> None:
    """In the child before it runs: SIGINT as a terminal's foreground job has it. A test run started in
    the background of a non-interactive shell (``pytest ... &``) has SIGINT ignored, and an ignored
    signal is inherited: the CLI would never see the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(("presses", "shards", "group"), [(1, "2", False), (2, "2", False), (1, "0", False),
                                                     (1, "2", True)])
def test_cli_fleet_ctrl_c_keeps_what_booted(tmp_path: Path, presses: int, shards: str, group: bool) -> None:
    """Ctrl-C during a storm: no new boots, the boots under way finish, the summary and the JSON of
    what did boot are written, the rest count as not started, exit status 130. A second Ctrl-C
    aborts at once (exit status 130, no summary). The same with the single shard in the CLI process,
    and with SIGTERM sent to the whole process group (as ``timeout`` does): shards survive it."""
    c = LabCluster.init(tmp_path / "lab", seed=SEED, key_spec="rsa1024", now=NOW)
    c.add_phones([mac_text(START + i) for i in range(20)], now=NOW)
    out = tmp_path / "fleet.json"

    async def body() -> tuple[int, str, str]:
        async with LabServers(c, host=HOST, tftp_tid_mode="shared") as srv:
            srv.set_network(delay_s=0.02)  # ~0.4 s per boot: the storm lasts a few seconds
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "phoneemu", "fleet", "boot", "--count", "20", "--tftp",
                f"{HOST}:{srv.ports['tftp']}", "--mac-start", mac_text(START), "--shards", shards,
                "--concurrency", "1", "--no-http", "--json", str(out), stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, start_new_session=group, preexec_fn=_ctrl_c_as_a_terminal)
            for _ in range(600):  # until the storm has begun (the lab saw requests), 60 s at most
                if len(srv.requests) >= 2:
                    break
                await asyncio.sleep(0.1)
            assert srv.requests, "the storm never started"
            if group:
                os.killpg(proc.pid, signal.SIGTERM)
            else:
                proc.send_signal(signal.SIGINT)
            if presses == 2:
                await asyncio.sleep(0.1)
                proc.send_signal(signal.SIGINT)
            so, se = await asyncio.wait_for(proc.communicate(), 90)
            assert proc.returncode is not None
            return proc.returncode, so.decode(), se.decode()

    rc, stdout, stderr = run(body())
    assert rc == 130, (stdout, stderr)
    assert "interrupted: no new boots; finishing the boots under way" in stderr
    if presses == 2:
        assert "phoneemu fleet boot: interrupted" in stderr and not out.exists() and "booted" not in stdout
        return
    doc = json.loads(out.read_text())
    summary = doc["summary"]
    assert summary["interrupted"] is True
    assert summary["booted"] >= 1 and summary["failed"] == 0  # boots under way were finished, not cut
    assert summary["booted"] + summary["not_started"] == 20 and summary["not_started"] >= 1
    assert len(doc["phones"]) == summary["booted"] and all(p["outcome"] == "ok" for p in doc["phones"])
    assert f"not started (interrupted): {summary['not_started']}" in stdout


def test_cli_fleet_bad_input_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from phoneemu.cli import main

    with pytest.raises(SystemExit) as info:  # what ``python -m phoneemu`` exits with
        main(["fleet", "boot", "--count", "0", "--tftp", "127.0.0.1:1"])
    assert info.value.code == 2 and "argument --count: 0 is outside 1..100000" in capsys.readouterr().err


def test_cli_fleet_flash_folder_that_cannot_exist_is_one_line(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """--flash under a file: refused before any shard starts (was each shard's traceback)."""
    from phoneemu.cli import main

    (tmp_path / "file").write_bytes(b"x")
    flash = tmp_path / "file" / "flash"
    assert main(["fleet", "boot", "--count", "1", "--tftp", "127.0.0.1:9", "--flash", str(flash), "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(flash) in err[0] and "Traceback" not in err[0], err


def test_fleet_shard_os_error_is_reported_without_a_traceback(tmp_path: Path) -> None:
    """An OSError in a shard (its phones' flash) is the parent's one-line PhoneEmuError."""
    from phoneemu.errors import PhoneEmuError

    (tmp_path / "file").write_bytes(b"x")
    spec = FleetSpec(target=BootTarget(host=HOST, tftp_port=9), count=1,
                     flash_dir=str(tmp_path / "file" / "flash"))
    with pytest.raises(PhoneEmuError, match="fleet shard 0 failed: NotADirectoryError") as info:
        run_fleet(spec, shards=1)
    assert "\n" not in str(info.value) and "Traceback" not in str(info.value)


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
def test_fleet_same_outcomes_on_each_event_loop(lab: LabCluster, tmp_path: Path, event_loop: str) -> None:
    if event_loop == "uvloop":
        pytest.importorskip("uvloop")
    c = lab
    ports, stop = serve_in_thread(c, tftp_tid_mode="shared")
    try:
        pre = _regenerate(c, tmp_path)
        target = BootTarget(host=HOST, tftp_port=ports["tftp"], use_http=False)
        spec = FleetSpec(target=target, count=COUNT, mac_start=START, concurrency=16, prestate=pre,
                         keep_records=True, fetch_timeout=1.0, tvs_timeout=10.0, event_loop=event_loop)
        res = run_fleet(spec, shards=0)
    finally:
        stop()
    rules = {r.mac: r.rule for r in res.records}
    assert rules.pop(BAD) == "G.4-bad-signature"
    assert set(rules.values()) == {"G.4-signed-by-ctl-tftp"} and len(rules) == COUNT - 1
    assert all(r.tvs_used for r in res.records)


def test_fleet_event_loop_names() -> None:
    target = BootTarget(host=HOST, tftp_port=69, use_http=False)
    with pytest.raises(EncodeError, match="event loop 'tokio'"):
        FleetSpec(target=target, count=1, event_loop="tokio")
    assert resolve_event_loop("asyncio") == "asyncio"
    expected = "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"
    assert resolve_event_loop("auto") == expected


def test_fleet_flashes_are_atomic_but_not_fsynced(tmp_path: Path) -> None:
    """Our convention for fleet boot --flash: each file replaced atomically (a killed fleet leaves every
    file whole) without the fsyncs of a single phone's flash, which cost ~4 ms a phone on a VM disk
    (a 2,000-phone storm: 193 -> 351 boots/s)."""
    spec = FleetSpec(target=BootTarget(host=HOST, tftp_port=9), count=2, mac_start=START,
                     flash_dir=str(tmp_path / "fleet"))
    flashes = [p.flash for p in make_phones(spec, range(START, START + 2), pool=None)]
    assert [f.path.name for f in flashes if f is not None and not f.durable] == [mac_text(START),
                                                                                 mac_text(START + 1)]


def test_a_fleet_phone_whose_flash_is_another_models_is_not_booted(tmp_path: Path) -> None:
    """fleet boot --profile cp-7940 --flash DIR over cp-8861 flashes relabelled them and kept their ITL
    (a model that never installs one); now each such phone is not booted, its reason naming the folder."""
    other = tmp_path / "fleet" / mac_text(START + 1)
    other.mkdir(parents=True)
    (other / "phone.json").write_text(json.dumps({"mac": mac_text(START + 1), "profile": "cp-8861"}))
    spec = FleetSpec(target=BootTarget(host=HOST, tftp_port=9), count=2, mac_start=START,
                     flash_dir=str(tmp_path / "fleet"), profile="cp-7940")
    unready: list[tuple[str, str]] = []
    phones = make_phones(spec, range(START, START + 2), pool=None, unready=unready)
    assert [p.mac for p in phones] == [mac_text(START)]
    assert unready == [(mac_text(START + 1), f"flash: {other}: holds the flash of a cp-8861, not a "
                        "cp-7940: a flash belongs to one model (--profile cp-8861, or another flash folder)")]
    with pytest.raises(PhoneEmuError, match="holds the flash of a cp-8861"):
        make_phones(spec, range(START, START + 2), pool=None)


def test_cli_fleet_keylog_holds_each_phones_tvs_session(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """--keylog across shard processes: one line per TVS session, every line whole."""
    from phoneemu.net.tls_decrypt import read_keylog

    c = LabCluster.init(tmp_path / "lab", seed=SEED, key_spec="rsa1024", now=NOW)
    c.add_phones([mac_text(START + i) for i in range(6)], now=NOW)
    flash, keys = tmp_path / "flash", tmp_path / "tls.keys"

    runs = []
    with lab_served_in_thread(c, host=HOST, tftp_tid_mode="shared") as (srv, on_loop):
        # the first storm installs the ITL (no TLS: in this process, a shard process each cost ~0.35 s of
        # CPU); the second, in two shard processes, asks TVS about the new ITL signer
        for shards in ("0", "2"):
            rc, so, se = _cli(capsys, "fleet", "boot", "--count", "6", "--tftp",
                              f"{HOST}:{srv.ports['tftp']}", "--mac-start", mac_text(START), "--shards",
                              shards, "--flash", str(flash), "--keylog", str(keys), "--no-http", "-q")
            runs.append((rc, so + se))
            if shards == "0":
                on_loop(lambda: c.regenerate("itlrecovery"))
    (rc1, out1), (rc2, out2) = runs
    assert rc1 == 0 and rc2 == 0, (out1, out2)
    assert "6 phones: 6 booted, 0 failed" in out2
    assert len(read_keylog(keys)) == 6  # one TLS session per phone of the second storm


def test_fleet_http_that_never_answers_falls_back_to_tftp_within_the_request_timeout(tmp_path: Path) -> None:
    """HTTP 6970 accepts connections and never answers (a stuck proxy): each phone gives up on HTTP
    after ``fetch_timeout``, as ``boot --timeout`` does, and takes the file over TFTP. Before, fleet
    phones waited the phone's 5 s HTTP default per file whatever ``--timeout`` said."""
    c = LabCluster.init(tmp_path / "lab", seed=SEED, key_spec="rsa1024", now=NOW)
    c.add_phones([mac_text(START + i) for i in range(3)], now=NOW)
    held: list[asyncio.StreamWriter] = []

    async def mute(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        held.append(w)  # keep the connection open, say nothing

    async def body() -> Any:
        stuck = await asyncio.start_server(mute, HOST, 0)
        try:
            async with LabServers(c, host=HOST, tftp_tid_mode="shared") as srv:
                target = BootTarget(host=HOST, tftp_port=srv.ports["tftp"],
                                    http_port=stuck.sockets[0].getsockname()[1], use_http=True)
                spec = FleetSpec(target=target, count=3, mac_start=START, concurrency=3, fetch_timeout=0.15,
                                 keep_records=True)
                return await run_shard(spec, range(START, START + 3))
        finally:
            for w in held:
                w.close()
            stuck.close()
            await stuck.wait_closed()

    res = run(body())
    assert res.metrics.booted == 3, res.metrics.render()
    assert res.metrics.files_over == {"tftp": 12} and len(held) >= 12  # 4 files each, HTTP tried first
    assert max(res.metrics.latencies) < 5.0, res.metrics.render()  # 6 requests x 0.15 s, not x 5 s


def test_cli_fleet_installed_files_make_a_migration_wave(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """``--installed-itl/-ctl/-config-dir``: every phone starts holding the old cluster's lists and its
    own old config (as ``predict`` takes them), so after an ITLRecovery regeneration each phone asks
    TVS (the config names it) and is vouched for — without an earlier fleet boot. A list given as
    the wrong kind is one line, exit 2, before any boot."""
    c = LabCluster.init(tmp_path / "lab", seed=SEED, key_spec="rsa1024", now=NOW)
    c.set_mixed_mode(True, now=NOW)
    c.add_phones([mac_text(START + i) for i in range(6)], now=NOW)
    out = tmp_path / "fleet.json"

    old = tmp_path / "old"

    def keep_then_regenerate() -> None:
        shutil.copytree(c.root / "tftp", old)  # the configs name this running lab's TVS port
        c.regenerate("itlrecovery", now=NOW)

    with lab_served_in_thread(c, host=HOST) as (srv, on_loop):
        on_loop(keep_then_regenerate)
        rc, stdout, stderr = _cli(capsys, "fleet", "boot", "--count", "6", "--tftp",
                                  f"{HOST}:{srv.ports['tftp']}", "--no-http", "--mac-start", mac_text(START),
                                  "--shards", "0",
                                  "--installed-itl", str(old / "ITLFile.tlv"), "--installed-ctl",
                                  str(old / "CTLFile.tlv"), "--installed-config-dir", str(old), "--json",
                                  str(out), "-q")
        tvs_answered = on_loop(lambda: srv.tvs_handler.answered)
    assert rc == 0, stderr
    assert "every phone starts holding ITL" in stderr
    doc = json.loads(out.read_text())
    assert [p["itl"] for p in doc["phones"]] == ["updated"] * 6, doc["phones"]
    assert tvs_answered >= 6 and "TVS asked by 6 phones" in stdout
    from phoneemu.cli import main

    assert main(["fleet", "boot", "--count", "1", "--tftp", f"{HOST}:9", "--installed-itl",
                 str(tmp_path / "old" / "CTLFile.tlv")]) == 2
    assert main(["fleet", "boot", "--count", "1", "--tftp", f"{HOST}:9", "--installed-config-dir",
                 str(tmp_path / "missing")]) == 2


def test_fleet_reports_are_never_lost_to_each_other_or_to_a_failed_write(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--json r --junit r`` ran the storm and kept the JUnit alone (the JSON overwritten, exit 0); a
    report that failed to write (``--json /dev/full``) said "No space left on device" naming neither
    option nor file, and the reports after it were not written."""
    from phoneemu.cli import main

    same = tmp_path / "r.out"
    assert main(["fleet", "boot", "--count", "2", "--tftp", "127.0.0.1:9", "--json", str(same),
                 "--junit", str(same)]) == 2
    assert "--junit " + str(same) + ": the same file as --json" in capsys.readouterr().err
    assert not same.exists()  # refused before any boot
    if not os.path.exists("/dev/full"):
        return
    junit = tmp_path / "j.xml"
    rc = main(["fleet", "boot", "--count", "2", "--shards", "1", "--tftp", "127.0.0.1:9", "--no-http",
               "--json", "/dev/full", "--junit", str(junit)])
    err = capsys.readouterr().err
    assert rc == 2 and "--json /dev/full: not written:" in err, err
    assert junit.read_text().startswith("<?xml")  # the report after the failed one is still written


def test_fleet_flash_without_count_names_the_phone_folders_it_does_not_boot(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A phone's folder whose phone.json was damaged was counted with stray files ("1 entry ... not a
    phone's flash"), the phone not named."""
    from phoneemu.cli import main

    flash = tmp_path / "fl"
    main(["fleet", "boot", "--count", "3", "--shards", "1", "--tftp", "127.0.0.1:9", "--no-http",
          "--flash", str(flash), "-q"])
    (flash / "0A0000000002" / "phone.json").write_text("{bad")
    capsys.readouterr()
    main(["fleet", "boot", "--shards", "1", "--tftp", "127.0.0.1:9", "--no-http", "--flash", str(flash),
          "-q"])
    err = capsys.readouterr().err
    assert f"{flash / '0A0000000002'}: not booted:" in err and "phone.json" in err, err
