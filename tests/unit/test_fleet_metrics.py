"""Fleet metrics (issue #6): outcomes, rule counts, percentiles, rates, merging, process transport."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.errors import EncodeError, PhoneEmuError
from phoneemu.fleet.engine import FleetSpec, mac_range, mac_text, parse_mac
from phoneemu.fleet.metrics import BootRecord, FleetMetrics, outcome_of, peak_rss_mib, percentile
from phoneemu.fleet.progress import Progress, progress_text
from phoneemu.fleet.shard import split_range
from phoneemu.phone.boot import BootReport, BootTarget
from phoneemu.phone.events import Decision


def _report(*, ok: bool, locked: bool = False, config: str = "accepted",
            rule: str | None = "G.4-x") -> BootReport:
    d = Decision(rule=rule, accepted=ok, reason="r", file="f") if rule else None
    return BootReport(mac="0A0000000001", ok=ok, trust={"CTL": "absent", "ITL": "installed"}, config=config,
                      config_file=None, encrypted=False, decisions=(d,) if d else (), deciding=d, statuses=(),
                      firmware="none", load=None, lsc="absent", locked_out=locked, tvs_used=True, timeline=(),
                      duration_s=0.01)


def _rec(outcome: str = "ok", rule: str | None = "G.4-signed-by-ctl-tftp", lat: float = 0.01,
         end: float = 0.5) -> BootRecord:
    return BootRecord(mac="0A0000000001", outcome=outcome, rule=rule, latency_s=lat, end_s=end)


def test_outcome_of_each_case() -> None:
    assert outcome_of(_report(ok=True)) == "ok"
    assert outcome_of(_report(ok=False, locked=True, config="rejected")) == "locked-out"
    assert outcome_of(_report(ok=False, config="rejected")) == "config-rejected"
    assert outcome_of(_report(ok=False, config="none", rule=None)) == "no-config"
    rec = BootRecord.of(_report(ok=False, locked=True, config="rejected", rule="G.3.4-tvs-unknown-signer"),
                        latency_s=0.2, end_s=1.0)
    assert rec.outcome == "locked-out" and rec.rule == "G.3.4-tvs-unknown-signer" and rec.tvs_used
    assert rec.as_dict()["latency_ms"] == 200.0


def test_percentile_nearest_rank() -> None:
    vals = [float(v) for v in range(1, 101)]
    assert percentile(vals, 50) == 50.0
    assert percentile(vals, 99) == 99.0
    assert percentile(vals, 100) == 100.0
    assert percentile(vals, 0) == 1.0
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError, match="outside"):
        percentile(vals, 101)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=200),
       st.floats(min_value=0, max_value=100), st.floats(min_value=0, max_value=100))
def test_percentile_is_a_member_and_monotone(values: list[float], q1: float, q2: float) -> None:
    s = sorted(values)
    lo, hi = sorted((q1, q2))
    a, b = percentile(s, lo), percentile(s, hi)
    assert a is not None and b is not None
    assert a in s and b in s and a <= b
    # at least q% of the values are <= the q-th percentile
    assert sum(v <= b for v in s) >= math.ceil(hi / 100 * len(s)) - 1e-9


def test_metrics_counts_rates_and_summary() -> None:
    m = FleetMetrics()
    for i in range(10):
        m.add(_rec(lat=0.001 * (i + 1), end=0.1 * i))
    m.add(_rec("locked-out", "G.3.4-tvs-unknown-signer", lat=0.5, end=1.2))
    m.add_error("0A0000000009", "RuntimeError: boom", latency_s=0.1, end_s=1.3)
    m.wall_s = 2.0
    s = m.summary()
    assert s["phones"] == 12 and s["booted"] == 10 and s["failed"] == 2
    assert s["by_outcome"] == {"ok": 10, "locked-out": 1, "error": 1}
    assert s["by_rule"]["G.4-signed-by-ctl-tftp"] == 10 and s["by_rule"]["G.3.4-tvs-unknown-signer"] == 1
    assert s["latency_ms"]["p50"] == 6.0 and s["latency_ms"]["max"] == 500.0
    assert s["boots_per_s"] == 6.0
    assert m.rate_series(1.0) == [10, 2]
    assert [f["outcome"] for f in s["failures"]] == ["locked-out", "error"]
    text = m.render()
    assert "12 phones: 10 booted, 2 failed" in text and "G.3.4-tvs-unknown-signer" in text


def test_summary_groups_alike_failures_and_counts_the_rest() -> None:
    """40,000 phones locked out by one TVS outage read as one line with a count and the first MACs; the
    five most common kinds are shown, then how many failed otherwise — not a silent cut."""
    m = FleetMetrics()
    for i in range(30):
        mac = f"0A00000000{i:02X}"
        m.add(BootRecord(mac=mac, outcome="no-config", rule="H.3-config-transport-failed", latency_s=0.01,
                         end_s=0.1 * i, reason=f"TFTP timeout for SEP{mac}.cnf.xml.sgn"))
    lines = m.render().splitlines()
    assert lines[-2:] == [
        "  failed: 30 phones no-config (H.3-config-transport-failed): TFTP timeout for SEP{mac}.cnf.xml.sgn",
        "      0A0000000000, 0A0000000001, 0A0000000002 and 27 more"]
    for k in range(7):  # seven more kinds, one phone each: five kinds shown in all, then the rest counted
        m.add(BootRecord(mac=f"0B00000000{k:02X}", outcome="config-rejected", rule=f"G.4-rule-{k}",
                         latency_s=0.01, end_s=1.0, reason=f"SEP0B00000000{k:02X} why"))
    lines = m.render().splitlines()
    assert sum(line.startswith("  failed: ") for line in lines) == 5
    assert "  failed: 0B0000000000 config-rejected (G.4-rule-0): SEP0B0000000000 why" in lines
    assert lines[-1] == "  ... and 3 more failed otherwise (every phone's record: --json FILE)"
    kinds = m.summary()["failure_kinds"]
    assert kinds[0]["count"] == 30 and kinds[0]["macs"] == ["0A0000000000", "0A0000000001", "0A0000000002"]
    few = FleetMetrics()
    few.add(_rec("no-config", "H.3-config-transport-failed"))
    assert "more failed" not in few.render() and "  failed: 0A0000000001 no-config" in few.render()


def test_alike_kinds_are_bounded_and_merge_across_shards() -> None:
    from phoneemu.fleet.alike import KINDS_KEPT, MACS_KEPT, Alike

    a, b = Alike(("rule", "reason")), Alike(("rule", "reason"))
    for i in range(KINDS_KEPT + 10):  # more kinds than kept: the rest are counted, memory stays bounded
        a.add(f"M{i}", {"rule": f"R{i}", "reason": None})
    assert len(a.kinds()) == KINDS_KEPT and a.other == 10
    for i in range(5):
        b.add(f"N{i}", {"rule": "R0", "reason": f"file SEPN{i}.cnf.xml"})  # alike: own MAC as {mac}
    got = Alike.from_state(("rule", "reason"), a.to_state()).merge(Alike.from_state(("rule", "reason"),
                                                                                     b.to_state()))
    assert got.other == 10 + 5  # R0 with that reason is a new kind past the bound
    c = Alike(("rule", "reason"))
    c.merge(b)
    assert c.kinds() == [{"count": 5, "rule": "R0", "reason": "file SEP{mac}.cnf.xml",
                          "macs": ["N0", "N1", "N2"][:MACS_KEPT]}]
    assert Alike.from_state(("rule",), None).kinds() == []


def test_sustained_rate_drops_ramp_and_tail() -> None:
    m = FleetMetrics()
    for sec, n in enumerate([5, 100, 100, 100, 100, 7]):
        for _ in range(n):
            m.add(_rec(end=sec + 0.5))
    assert m.sustained_rate() == 100.0
    bursts = FleetMetrics()  # boots that end in bursts (CAPF groups): most seconds see none end
    for sec, n in enumerate([5, 0, 90, 0, 0, 60, 0, 7]):
        for _ in range(n):
            bursts.add(_rec(end=sec + 0.5))
    assert bursts.sustained_rate() == 25.0
    empty = FleetMetrics()
    assert empty.rate() == 0.0 and empty.rate_series() == [] and empty.latency_percentiles()["p50"] is None


def test_merge_and_state_round_trip() -> None:
    a, b = FleetMetrics(), FleetMetrics()
    a.add(_rec(lat=0.002))
    b.add(_rec("config-rejected", "G.4-bad-signature", lat=0.004))
    a.wall_s, b.wall_s = 1.0, 3.0
    a.peak_rss["shard-0"], b.peak_rss["shard-1"] = 50.0, 60.0
    b.add(BootRecord(mac="0A0000000002", outcome="locked-out", rule="G.3.4-tvs-unknown-signer",
                     latency_s=0.1, end_s=0.2, itl="rejected", ctl="absent", over_http=1, over_tftp=1,
                     kind="ITL"))
    a.add(BootRecord(mac="0A0000000003", outcome="ok", rule="G.4", latency_s=0.1, end_s=0.2, over_http=5))
    b2 = FleetMetrics.from_state(b.to_state())
    assert b2.summary() == b.summary() and b2.by_trust == {"ITL rejected": 1, "CTL absent": 1}
    m = FleetMetrics.merged([a, b2])
    assert m.summary()["files_over"] == {"http": 6, "tftp": 1}
    assert "files received: 6 over HTTP, 1 over TFTP" in m.render()
    # a lockout's ways out cross the shard's pipe with their rule and kind, and are said
    assert [(w["rule"], w["kind"], w["phones"]) for w in m.summary()["ways_out"]] == \
        [("G.3.4-tvs-unknown-signer", "ITL", 1)]
    text = m.render({"DIR": "/tmp/my lab"})
    assert "ways out of G.3.4-tvs-unknown-signer (ITL; 1 phone locked out):" in text
    assert "phoneemu lab itl-reset '/tmp/my lab' localkey" in text
    assert m.total == 4 and m.by_rule["G.4-bad-signature"] == 1 and m.wall_s == 3.0
    assert m.peak_rss == {"shard-0": 50.0, "shard-1": 60.0}
    assert peak_rss_mib() > 1.0


def test_split_range_and_macs() -> None:
    parts = split_range(0x0A0000000000, 10, 3)
    assert [len(p) for p in parts] == [4, 3, 3]
    assert parts[0].start == 0x0A0000000000 and parts[-1].stop == 0x0A0000000000 + 10
    assert split_range(5, 2, 8) == [range(5, 6), range(6, 7)]
    assert mac_text(parse_mac("0a:00:00:00:00:ff")) == "0A00000000FF"
    with pytest.raises(EncodeError):
        mac_range(0xFFFFFFFFFFFF, 2)
    with pytest.raises(EncodeError):
        FleetSpec(target=BootTarget(host="h"), count=1, concurrency=0)
    with pytest.raises(PhoneEmuError):
        FleetSpec(target=BootTarget(host="h"), count=1, profile="no-such-model")


def test_progress_line_is_bounded_off_a_terminal() -> None:
    import io

    buf = io.StringIO()
    p = Progress(buf, log_interval=3600.0)
    for i in range(1000):
        p(i, i, 1000, 1.0)
    p(1000, 998, 1000, 2.0)  # the final call always prints
    p(1000, 998, 1000, 2.1)  # once: another shard reporting the same last count (it printed twice)
    p.close()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2 and lines[-1].startswith("booted 998/1000 failed 2")
    assert progress_text(10, 9, 10, 0.0).startswith("booted 9/10 failed 1")


def test_progress_names_the_most_common_failure() -> None:
    failing = {"H.3-config-transport-failed": 120, "G.3.4-tvs-unreachable": 8}
    assert progress_text(200, 72, 40000, 4.0, failing).endswith(
        "; most failed: H.3-config-transport-failed 120")
    assert "most failed" not in progress_text(200, 200, 40000, 4.0, {})  # nothing failed
    assert "most failed" not in progress_text(200, 199, 40000, 4.0)  # a shard that did not say


def test_progress_counts_the_phones_pausing_before_a_capf_retry() -> None:
    """A CAPF outage shows as phones pausing (3 x 30 s, spec §F.1), not as a run that hangs."""
    assert progress_text(0, 0, 2000, 35.0, {}, pausing=128).endswith("; 128 pausing before a CAPF retry")
    assert "pausing" not in progress_text(10, 10, 2000, 1.0, {}, pausing=0)


def test_plot_without_matplotlib_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from phoneemu.fleet import plot

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(PhoneEmuError, match=r"pip install 'phoneemu\[plot\]'"):
        plot.require_matplotlib()


def test_plot_writes_a_png(tmp_path: object) -> None:
    from pathlib import Path

    pytest.importorskip("matplotlib")
    from phoneemu.fleet.plot import plot_metrics

    m = FleetMetrics()
    for i in range(200):
        m.add(_rec(lat=0.001 * (i % 17 + 1), end=i / 50))
    out = plot_metrics(m, Path(str(tmp_path)) / "p.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = plot_metrics(FleetMetrics(), Path(str(tmp_path)) / "empty.png")  # a run that booted nothing
    assert empty.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    short = FleetMetrics()
    for i in range(5001):  # a sub-second storm with more boots than the cumulative curve keeps points
        short.add(_rec(end=0.08 + i / 250_000))
    assert plot_metrics(short, Path(str(tmp_path)) / "short.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_buckets_fit_the_storm() -> None:
    """A storm shorter than 50 s gets sub-second bars (a 0.16 s storm drew one bar and a straight
    line); a longer one one bar per second; about 50 bars at most below that."""
    from phoneemu.fleet.plot import bucket_for

    assert bucket_for(0.16) == 0.01 and bucket_for(0.0) == 0.01
    assert bucket_for(4.5) == 0.1 and bucket_for(24.0) == 0.5 and bucket_for(55.8) == 1.0
    assert all(span / bucket_for(span) <= 50 for span in (0.3, 1.0, 2.6, 9.9, 25.0))


def test_verify_cache_remembers_successes_only() -> None:
    from phoneemu.crypto import keys, signatures
    from phoneemu.crypto.hashes import HashAlg
    from phoneemu.errors import VerificationError

    key = keys.generate_key(keys.KeySpec.parse("ec-p256"))
    sig = signatures.sign(key, b"same file", HashAlg.SHA256)
    cache = signatures.VerifyCache(max_items=4)
    old = signatures.set_verify_cache(cache)
    try:
        for _ in range(3):
            signatures.verify(key.public_key(), sig, b"same file", HashAlg.SHA256)
        assert (cache.misses, cache.hits, len(cache)) == (1, 2, 1)
        for _ in range(2):  # a tampered file fails every time: failures are never remembered
            with pytest.raises(VerificationError):
                signatures.verify(key.public_key(), sig, b"same fil3", HashAlg.SHA256)
        other = keys.generate_key(keys.KeySpec.parse("ec-p256")).public_key()
        with pytest.raises(VerificationError):  # same bytes and signature, another key: not a hit
            signatures.verify(other, sig, b"same file", HashAlg.SHA256)
        assert (cache.misses, cache.hits, len(cache)) == (4, 2, 1)
    finally:
        assert signatures.set_verify_cache(old) is cache


def test_peak_rss_of_a_spawned_child_is_its_own() -> None:
    """A ``spawn`` child's peak is its own, not its parent's at the fork (``ru_maxrss`` survives exec)."""
    import multiprocessing as mp
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("VmHWM is Linux's")
    ballast = bytearray(200 * 1024 * 1024)  # the parent holds 200 MiB when it starts the child
    ballast[::4096] = b"x" * len(ballast[::4096])
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        child = pool.apply(peak_rss_mib)
    assert peak_rss_mib() > 200.0
    assert child < 150.0, child
    del ballast


def test_capf_outcomes_are_counted_and_survive_merge_and_transport() -> None:
    """A CAPF failure leaves a boot whose config is accepted ``ok`` (its outcome): the storm is read in
    ``by_capf`` (the run it fails: test_fleet_capf_failure.py)."""
    ok = Decision(rule="G.4-signed-by-itl-tftp", accepted=True, reason="config", file="SEP.cnf.xml.sgn")
    server = Decision(rule="F.1-capf-server-in-itl", accepted=True, reason="server ok", file="h", kind="capf")
    refused = Decision(rule="F.6-capf-rejected", accepted=False, reason="CAPF ended the session: bad data",
                       file="", kind="capf")
    installed = Decision(rule="F.6-lsc-installed", accepted=True, reason="issued", file="", kind="capf")

    def rec(mac: str, *decisions: Decision) -> BootRecord:
        report = BootReport(mac=mac, ok=True, trust={}, config="accepted", config_file=None, encrypted=False,
                            decisions=(*decisions, ok), deciding=ok, statuses=(), firmware="none", load=None,
                            lsc="absent", locked_out=False, tvs_used=False, timeline=(), duration_s=0.01)
        return BootRecord.of(report, latency_s=0.1, end_s=0.2)

    a, b = FleetMetrics(), FleetMetrics()
    a.add(rec("0A0000000001", server, installed))
    a.add(rec("0A0000000002", server, refused))
    b.add(rec("0A0000000003"))  # no CAPF session asked for
    b.add(rec("0A0000000004", installed))
    assert a.capf.by_rule == {"F.6-lsc-installed": 1, "F.6-capf-rejected": 1}
    m = FleetMetrics.from_state(a.to_state()).merge(FleetMetrics.from_state(b.to_state()))
    assert m.by_outcome == {"ok": 4} and m.failed == 0
    assert m.capf.by_rule == {"F.6-lsc-installed": 2, "F.6-capf-rejected": 1}
    text = m.render()
    assert "CAPF: F.6-lsc-installed 2, F.6-capf-rejected 1" in text
    assert "  CAPF failed: 0A0000000002 (F.6-capf-rejected): CAPF ended the session: bad data" in text
    assert m.summary()["capf_failure_kinds"] == [{"count": 1, "capf": "F.6-capf-rejected",
                                                  "reason": "CAPF ended the session: bad data",
                                                  "macs": ["0A0000000002"]}]
    assert m.summary()["capf_failures"] == [{"mac": "0A0000000002", "capf": "F.6-capf-rejected",
                                             "reason": "CAPF ended the session: bad data"}]
    record = rec("0A0000000002", server, refused).as_dict()
    assert record["capf"] == "F.6-capf-rejected"
    assert record["capf_reason"] == "CAPF ended the session: bad data"
    assert "capf" not in rec("0A0000000003").as_dict()
    assert "CAPF" not in FleetMetrics().render()


def test_sip_callmanagers_and_failovers_are_counted_and_survive_merge_and_transport() -> None:
    """``fleet boot --register``: which CallManager each registration ended with and those passed over
    first (spec §H.5 failover) are counted — a storm where node 1 refused every phone says so in one
    line — across shards, in the summary, the console and each record."""
    def rec(mac: str, rule: str, server: str, *passed: str) -> BootRecord:
        return dataclasses.replace(_rec(), mac=mac, sip=rule, sip_server=server,
                                   sip_reason=None if rule == "G.13-registered" else "why",
                                   sip_passed_over=passed or None)

    a, b = FleetMetrics(), FleetMetrics()
    a.add(rec("0A0000000001", "G.13-registered", "10.0.0.2:5061 over tls", "10.0.0.1:5061 G.13-unreachable"))
    a.add(rec("0A0000000002", "G.13-registered", "10.0.0.1:5061 over tls"))
    b.add(rec("0A0000000003", "G.13-registered", "10.0.0.2:5061 over tls", "10.0.0.1:5061 G.13-unreachable"))
    b.add(rec("0A0000000004", "G.13-unreachable", "10.0.0.2:5061 over tls", "10.0.0.1:5061 G.13-unreachable"))
    b.add(_rec())  # not registered at all (no --register, or its config refused): counted nowhere
    m = FleetMetrics.from_state(a.to_state()).merge(FleetMetrics.from_state(b.to_state()))
    s = m.summary()
    assert s["sip_servers"] == {"10.0.0.2:5061 over tls": 3, "10.0.0.1:5061 over tls": 1}
    assert s["sip_passed_over"] == {"10.0.0.1:5061 G.13-unreachable": 3}
    text = m.render()
    assert "SIP CallManager: 10.0.0.2:5061 over tls 3, 10.0.0.1:5061 over tls 1" in text
    assert "SIP passed over first: 10.0.0.1:5061 G.13-unreachable 3" in text
    record = rec("0A0000000001", "G.13-registered", "10.0.0.2:5061 over tls", "x G.13-unreachable").as_dict()
    assert record["sip_server"] == "10.0.0.2:5061 over tls"
    assert record["sip_passed_over"] == ["x G.13-unreachable"]
    assert "sip_passed_over" not in rec("0A0000000002", "G.13-registered", "s").as_dict()
    assert "passed over" not in FleetMetrics().render() and "capf_servers" not in s
    refused = FleetMetrics()  # a registration refused by rule: its ways out, worded for phones not registered
    for mac in ("0A0000000001", "0A0000000002"):
        refused.add(rec(mac, "G.13-device-cert-refused", "10.0.0.1:5061 over tls"))
    assert refused.summary()["sip_ways_out"][0]["rule"] == "G.13-device-cert-refused"
    assert "ways out of G.13-device-cert-refused (sip; 2 phones not registered):" in refused.render()
    assert "sip_ways_out" in m.summary() and m.summary()["sip_ways_out"] == []  # unreachable: none


def test_shards_failing_reports_are_checked_and_merged() -> None:
    from phoneemu.fleet.shard import _count, _failing, _merged

    assert [_count(v) for v in (3, 0, -1, True, "2", None, 1.5)] == [3, 0, 0, 0, 0, 0, 0]

    assert _failing({"G.4-bad-signature": 2, 3: 1, "x": "1", "y": True}) == {"G.4-bad-signature": 2}
    assert _failing(None) == {} and _failing(["G.4"]) == {}
    merged = _merged({0: {"A": 5, "B": 1}, 1: {"B": 7, "C": 2}, 2: {"D": 1}})
    assert merged == {"B": 8, "A": 5, "C": 2}  # the three most common, all shards together


_text = st.none() | st.text(max_size=20)


@settings(max_examples=60, deadline=None)
@given(st.builds(BootRecord, mac=st.text(min_size=1, max_size=12), outcome=st.text(min_size=1, max_size=12),
                 rule=_text, latency_s=st.floats(0, 1e4), end_s=st.floats(0, 1e4), tvs_used=st.booleans(),
                 reason=_text, itl=_text, ctl=_text, signer=_text, over_http=st.integers(0, 50),
                 over_tftp=st.integers(0, 50), capf=_text, capf_reason=_text, answered=st.booleans(),
                 kind=_text))
def test_a_shards_records_cross_its_pipe_whole(rec: BootRecord) -> None:
    """Every field of a record sent by a shard comes back in the parent (files_over and the CAPF
    outcome were lost on the way: a 2-shard --json had none)."""
    from phoneemu.fleet.engine import ShardResult

    sent = ShardResult(shard=1, metrics=FleetMetrics(), records=[rec])
    got = ShardResult.from_state(sent.to_state()).records[0]
    assert got.as_dict() == rec.as_dict()
    assert (got.over_http, got.over_tftp, got.capf, got.capf_reason, got.answered) == \
        (rec.over_http, rec.over_tftp, rec.capf, rec.capf_reason, rec.answered)


def test_phones_never_booted_are_no_boots_in_the_rate() -> None:
    """Five phones whose flash was another model's, a run of 5 µs: 0 boots/s, not 199,872/s."""
    from phoneemu.fleet.metrics import NOT_BOOTED

    m = FleetMetrics()
    for i in range(5):
        m.add(BootRecord(mac=f"0A000000000{i}", outcome="error", rule=NOT_BOOTED, latency_s=0.0, end_s=0.0))
    m.wall_s = 0.000025
    assert m.rate() == 0.0 and "(0.0 boots finished/s" in m.render()
    m.add(_rec(end=1.0))
    m.wall_s = 2.0
    assert m.rate() == 0.5  # the one boot, over the run


def test_a_storm_where_no_file_came_over_http_says_why() -> None:
    """Phones that fetch over HTTP first and got every file over TFTP: a note naming the HTTP port (a wrong
    --http-port cost each phone a failed connection per file); none otherwise."""
    from phoneemu.commands.fleet import http_fallback_hint
    from phoneemu.phone.boot import BootTarget

    http = BootTarget(host="127.0.0.1", tftp_port=6969, http_port=6971, use_http=True)
    hint = http_fallback_hint({"tftp": 200}, http, {"cp-8861", "cp-7962"})
    assert hint is not None and "no file came over HTTP (port 6971)" in hint and "--no-http" in hint
    assert "HTTP first (cp-8861) tried it" in hint
    assert http_fallback_hint({"tftp": 150, "http": 50}, http, {"cp-8861"}) is None
    assert http_fallback_hint({}, http, {"cp-8861"}) is None  # nothing received at all: other lines say why
    assert http_fallback_hint({"tftp": 200}, http, {"cp-7962"}) is None  # fetches over TFTP (spec §H.1)
    no_http = BootTarget(host="127.0.0.1", tftp_port=6969, http_port=6971, use_http=False)
    assert http_fallback_hint({"tftp": 200}, no_http, {"cp-8861"}) is None


_TEXT = st.none() | st.text(max_size=20)
_PASSED = st.none() | st.lists(st.text(max_size=20), min_size=1, max_size=3).map(tuple)


@given(st.builds(BootRecord, mac=st.text(min_size=1, max_size=12),
                 outcome=st.sampled_from(["ok", "locked-out"]), rule=_TEXT,
                 latency_s=st.integers(0, 10**7).map(lambda us: us / 1e6),
                 end_s=st.integers(0, 10**7).map(lambda us: us / 1e4), tvs_used=st.booleans(), reason=_TEXT,
                 itl=_TEXT, ctl=_TEXT, signer=_TEXT, over_http=st.integers(0, 9), over_tftp=st.integers(0, 9),
                 capf=_TEXT, capf_reason=_TEXT, answered=st.booleans(), profile=_TEXT, kind=_TEXT,
                 sip=_TEXT, sip_reason=_TEXT, sip_server=_TEXT, sip_passed_over=_PASSED))
def test_a_record_crosses_a_shards_pipe_whole(rec: BootRecord) -> None:
    """``BootRecord.from_dict(as_dict())`` gives every field back (a field left out of either is lost
    for every record of a multi-process fleet: its --json and --junit)."""
    back = BootRecord.from_dict(rec.as_dict())
    assert back.latency_s == pytest.approx(rec.latency_s, abs=1e-9)
    assert back.end_s == pytest.approx(rec.end_s, abs=1e-9)
    assert dataclasses.replace(back, latency_s=rec.latency_s, end_s=rec.end_s) == rec


def test_a_fleet_of_listed_macs_is_split_in_order_and_checked() -> None:
    """``FleetSpec.macs`` (a site's phones): shards take contiguous slices in the given order; a MAC
    twice, a count that is not theirs, or one outside 48 bits is refused."""
    from phoneemu.fleet.engine import fleet_macs
    from phoneemu.fleet.shard import split_macs

    target = BootTarget(host="127.0.0.1", tftp_port=69)
    macs = (0x0A0000000300, 0x0A0000000005, 0x0A00000001F0)
    spec = FleetSpec(target=target, count=3, macs=macs)
    assert list(fleet_macs(spec)) == list(macs)
    assert split_macs(spec, 2) == [macs[:2], macs[2:]]
    assert split_macs(FleetSpec(target=target, count=3, mac_start=5), 2) == [range(5, 7), range(7, 8)]
    for bad, words in (({"count": 2, "macs": macs}, "not the 3 MACs"),
                       ({"count": 2, "macs": (1, 1)}, "given twice"),
                       ({"count": 1, "macs": (1 << 48,)}, "outside 48 bits")):
        with pytest.raises(EncodeError, match=words):
            FleetSpec(target=target, **bad)  # type: ignore[arg-type]
