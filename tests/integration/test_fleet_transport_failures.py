"""Fleets over a lossy network (loopback, the lab's own loss injection): the summary says which downloads
failed in transport — by file kind and failure, how many phones booted anyway on what they had — and how
many TFTP requests were retransmitted; a clean run says no transport failure and 0 retransmissions, and
a CTL "file not found" (normal on a non-secure cluster, spec §C.6) is no transport failure.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from phoneemu.cli import main
from phoneemu.fleet.engine import FleetSpec, ShardResult, mac_text, run_shard
from phoneemu.fleet.metrics import FAILED_DOWNLOADS_KEPT, FleetMetrics
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.phone.boot import BootTarget
from tests.helpers import pristine_fleet_lab, run_within, serve_in_thread

NOW = 1_780_000_000
HOST = "127.0.0.1"
START = 0x0A0000000200
COUNT = 60

run = run_within(120)

_KIND = re.compile(r"(CTL|ITL|config|other) (timeout|unreachable|refused|error|protocol|too-large)")


#: the fleet's lab, made once per module (its keys are most of a test's time): non-secure, no CTL served;
#: ``lab``: a private copy per test, so that nothing a test's servers write is seen by another
base_lab, lab = pristine_fleet_lab("transport", seed=5, start=START, count=COUNT, now=NOW)


def _storm(c: LabCluster, *, loss: float = 0.0, fail: tuple[str, ...] = (), retries: int = 1,
           concurrency: int = 20, timeout: float = 0.3) -> ShardResult:
    """``COUNT`` phones booting over the lab: each TFTP wait of a phone ``timeout`` s, the server's a
    third."""
    async def body() -> ShardResult:
        async with LabServers(c, host=HOST, tftp_tid_mode="shared") as srv:
            # the server sends a lost DATA again after a third of the phones' wait (its own timer: a
            # duplicate ACK is ignored)
            srv.set_network(loss=loss, seed=11, fail=fail, tftp_timeout_s=timeout / 3)
            target = BootTarget(host=HOST, tftp_port=srv.ports["tftp"], use_http=False)
            spec = FleetSpec(target=target, count=COUNT, mac_start=START, concurrency=concurrency,
                             keep_records=True, fetch_timeout=timeout, fetch_retries=retries,
                             tvs_timeout=5.0)
            return await run_shard(spec, range(START, START + COUNT))
    return run(body())


def test_clean_run_no_transport_failures_no_retransmissions(lab: LabCluster) -> None:
    res = _storm(lab)
    s = res.metrics.summary()
    assert s["booted"] == COUNT
    assert s["transport_failures"] == {"phones": 0, "booted": 0, "by_kind": {}, "macs": []}
    tftp = s["tftp"]
    assert tftp["requests"] >= 3 * COUNT  # CTLSEP, CTLFile (not found), ITLSEP, the config ...
    assert tftp["retransmitted"] == 0 and tftp["retransmissions"] == 0 and tftp["retransmitted_pct"] == 0.0
    text = res.metrics.render()
    assert "transport failures" not in text
    assert f"TFTP: {tftp['requests']:,} requests, 0 retransmitted (0.0 %), 0 retransmissions" in text
    for rec in res.records:  # the CTL was "not found" (§C.6): no failed download, nothing retransmitted
        d = rec.as_dict()
        assert "failed_downloads" not in d and "retransmits" not in d and rec.ctl in (None, "absent"), d


def test_lossy_run_counts_transport_failures_and_retransmissions(lab: LabCluster) -> None:
    # every phone at once: a lossy boot is mostly waiting out timeouts, and 20 at a time queued three
    # rounds of those waits; a phone slowed by the load only times out once more, which the figures count
    # (so the waits are short too: 0.15 s, the storm's slowest phone waits out nine of them; 0.3 s took
    # twice as long, 4.5 s)
    res = _storm(lab, loss=0.25, retries=1, concurrency=COUNT, timeout=0.15)
    m = res.metrics
    s = m.summary()
    tf, tftp = s["transport_failures"], s["tftp"]
    failing = [r for r in res.records if r.failed_downloads]
    assert failing, "25 % loss with 1 retry: some download must fail"
    assert tf["phones"] == len(failing)
    assert tf["booted"] == sum(r.outcome == "ok" for r in failing)
    assert tf["macs"] == [r.mac for r in failing][:5]
    assert all(_KIND.fullmatch(k) for k in tf["by_kind"]), tf
    assert sum(tf["by_kind"].values()) >= len(failing)
    assert "timeout" in " ".join(tf["by_kind"])
    # every failure is a transport one, never "not found"; each record's list is bounded
    for r in failing:
        d = r.as_dict()["failed_downloads"]
        assert 1 <= len(d) <= FAILED_DOWNLOADS_KEPT
        assert all(x["failure"] != "not-found" and x["kind"] in ("CTL", "ITL", "config", "other") for x in d)
    # retransmissions: more packets than requests retransmitted, the share as a percentage
    assert 0 < tftp["retransmitted"] <= tftp["requests"] <= tftp["retransmitted"] * 100
    assert tftp["retransmissions"] >= tftp["retransmitted"]
    assert tftp["retransmitted_pct"] == round(100.0 * tftp["retransmitted"] / tftp["requests"], 2)
    assert sum(r.retransmits for r in res.records) == tftp["retransmissions"]
    text = m.render()
    line = next(x for x in text.splitlines() if x.startswith("transport failures: "))
    assert line.startswith(f"transport failures: {', '.join(f'{k} {v}' for k, v in tf['by_kind'].items())} "
                           f"({tf['phones']} phone"), line
    if tf["booted"]:
        assert f"{tf['booted']} booted on what they had" in line
    assert f"TFTP: {tftp['requests']:,} requests, {tftp['retransmitted']:,} retransmitted " \
           f"({tftp['retransmitted_pct']:.1f} %), {tftp['retransmissions']:,} retransmissions" in text
    # the figures cross a shard's pipe and add up over shards
    back = FleetMetrics.from_state(m.to_state())
    assert back.summary()["transport_failures"] == tf and back.summary()["tftp"] == tftp
    two = FleetMetrics.merged([m, back]).summary()
    assert two["tftp"]["requests"] == 2 * tftp["requests"]
    assert two["tftp"]["retransmissions"] == 2 * tftp["retransmissions"]
    assert two["transport_failures"]["phones"] == 2 * tf["phones"]
    assert two["transport_failures"]["by_kind"] == {k: 2 * v for k, v in tf["by_kind"].items()}


def test_itl_failing_phones_boot_on_what_they_had(lab: LabCluster) -> None:
    """Every ITL download fails (TFTP ERROR 0): the phones boot anyway (no ITL: the config is taken
    unsigned-trust) and the summary says "ITL error" for each of them, booted on what they had."""
    res = _storm(lab, fail=("ITL*",))
    s = res.metrics.summary()
    tf = s["transport_failures"]
    assert tf["phones"] == COUNT and tf["by_kind"] == {"ITL error": COUNT}
    assert tf["booted"] == s["booted"] == COUNT
    rec = res.records[0].as_dict()
    assert rec["failed_downloads"] == [{"file": f"ITLSEP{rec['mac']}.tlv", "kind": "ITL", "failure": "error"}]
    assert f"transport failures: ITL error {COUNT} ({COUNT} phones; {COUNT} booted on what they had" \
           in res.metrics.render()


def test_cli_summary_json_and_junit_over_shards(lab: LabCluster, tmp_path: Path, capsys: Any) -> None:
    out, junit = tmp_path / "fleet.json", tmp_path / "fleet.xml"
    ports, stop = serve_in_thread(lab, tftp_tid_mode="shared",
                                  prepare=lambda srv: srv.set_network(loss=0.2, seed=3, fail=["ITLSEP*9.tlv"],
                                                                      tftp_timeout_s=0.05))
    try:
        code = main(["fleet", "boot", "--count", str(COUNT), "--tftp", f"{HOST}:{ports['tftp']}", "--no-http",
                     "--mac-start", mac_text(START), "--shards", "2", "--timeout", "0.15", "--retries", "1",
                     "--concurrency", str(COUNT // 2),  # a shard's phones at once: waits, not work
                     "--tvs-timeout", "5", "--json", str(out), "--junit", str(junit), "-q"])
    finally:
        stop()
    assert code in (0, 1)
    text = capsys.readouterr().out
    doc = json.loads(out.read_text())
    s = doc["summary"]
    tf, tftp = s["transport_failures"], s["tftp"]
    failing = [p for p in doc["phones"] if p.get("failed_downloads")]
    assert tf["phones"] == len(failing) >= 4  # the 4 ITLSEP...9 phones at least
    assert tf["by_kind"].get("ITL error", 0) >= 1
    assert tftp["requests"] > 0 and tftp["retransmitted"] > 0 and tftp["retransmissions"] > 0
    assert "transport failures: " in text and f"TFTP: {tftp['requests']:,} requests" in text
    by_mac = {p["mac"]: p for p in doc["phones"]}
    for nine in (m for m in by_mac if m.endswith("9")):  # ERROR 0, or no answer before it
        got = by_mac[nine]["failed_downloads"]
        itl = [x["failure"] for x in got if x["file"] == f"ITLSEP{nine}.tlv"]
        assert itl and itl[0] in ("error", "timeout"), got
    cases = {tc.get("name"): tc for tc in ET.parse(junit).getroot().iter("testcase")}
    ok_failing = [p["mac"] for p in failing if p["outcome"] == "ok"]
    assert ok_failing
    for mac in ok_failing:
        out_el = cases[mac].find("system-out")
        assert out_el is not None and "downloads failed in transport" in (out_el.text or ""), mac
    clean = [p["mac"] for p in doc["phones"] if p["outcome"] == "ok" and not p.get("failed_downloads")]
    assert all(cases[mac].find("system-out") is None for mac in clean)
