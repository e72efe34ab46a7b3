"""``replay --all`` (scenario.replay_fleet): one pass, bytes spooled to disk, and every phone served
exactly as ``replay --mac`` serves it.

The property: for random captures of several phones and cluster-wide downloads (shared or own client
endpoints, two servers, failures, reused sockets), each boot of each phone answers every name the same
way (bytes, or the failure and its words) whether it was replayed alone or with every phone.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneemu.errors import TransportError
from phoneemu.net.capture import PcapWriter
from phoneemu.scenario import replay_fleet
from phoneemu.scenario.replay import ReplayBoot, ReplayFetcher
from phoneemu.scenario.replay_fleet import scan_fleet
from phoneemu.scenario.replay_tvs import scan_capture
from tests.unit.test_replay import LAB, MAC, MAC2, Clock, tftp_transfer

MAC3 = "0A0000000003"
PHONES = (MAC, MAC2, MAC3)
SHARED = ("ITLFile.tlv", "CTLFile.tlv", "g3-tones.xml.sgn")
SERVERS = (LAB, "127.0.0.12")


def _own_names(mac: str) -> tuple[str, ...]:
    return (f"CTLSEP{mac}.tlv", f"ITLSEP{mac}.tlv", f"SEP{mac}.cnf.xml.sgn")


transfer = st.tuples(
    st.sampled_from([*PHONES, None]),  # whose name (None: a cluster-wide one)
    st.integers(0, 2),  # which of those names
    st.integers(0, 3),  # client port
    st.integers(0, 1),  # server
    st.sampled_from([None, b"A" * 700, b"B" * 30, b"A" * 700]),  # not found, or the file
)


def _write(path: Path, transfers: list[tuple[str | None, int, int, int, bytes | None]]) -> None:
    with PcapWriter(path, clock=Clock()) as w:
        for n, (mac, which, client, server, data) in enumerate(transfers):
            name = _own_names(mac)[which] if mac is not None else SHARED[which]
            tftp_transfer(w, name, data, client=40000 + client, tid=50000 + n, server=(SERVERS[server], 69))


async def _answers(boot: ReplayBoot, names: list[str]) -> list[object]:
    f = ReplayFetcher(boot)
    out: list[object] = []
    for name in names:
        try:
            out.append(await f.fetch(name))
        except TransportError as exc:
            out.append((exc.kind, str(exc)))
    return [*out, *f.served]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(transfers=st.lists(transfer, min_size=1, max_size=24))
def test_every_phone_is_served_as_when_replayed_alone(tmp_path: Path,
                                                      transfers: list[tuple[str | None, int, int, int,
                                                                            bytes | None]]) -> None:
    pcap = tmp_path / "c.pcap"
    _write(pcap, transfers)
    fleet = scan_fleet(pcap)
    try:
        assert fleet.macs() == sorted({t[0] for t in transfers if t[0] is not None})
        for mac in fleet.macs():
            alone = scan_capture(pcap, mac=mac).index
            from phoneemu.scenario.replay import boots_of

            ref, got = boots_of(alone, mac), fleet.boots(mac)
            assert [b.own for b in got] == [b.own for b in ref]
            names = [*_own_names(mac), *SHARED, *SHARED]  # each asked twice: the answer stays
            for b_ref, b_got in zip(ref, got, strict=True):
                assert asyncio.run(_answers(b_got, names)) == asyncio.run(_answers(b_ref, names))
    finally:
        fleet.close()


def test_identical_bytes_are_spooled_once_and_read_back(tmp_path: Path) -> None:
    spool = replay_fleet._Spool(limit=1000)
    try:
        a, b = spool.put(b"x" * 600), spool.put(b"x" * 600)
        assert a == b == (0, 600)
        assert spool.put(b"y" * 600) is None  # 1,200 distinct bytes: over the limit
        assert spool.put(b"z" * 400) == (600, 400)
        assert spool.get((0, 600)) == b"x" * 600 and spool.get((600, 400)) == b"z" * 400
    finally:
        spool.close()


def test_spool_reads_remembered_are_bounded_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replay_fleet, "_READ_CACHE", 4000)
    spool = replay_fleet._Spool()
    try:
        refs = [spool.put(bytes([i]) * 900) for i in range(6)]
        big = spool.put(b"B" * 1500)  # more than a quarter of the cache: read each time, not kept
        for ref in [*refs, big]:
            assert ref is not None
            spool.get(ref)
        assert spool._cached <= 4000 and len(spool._cache) == 4
        assert all(len(v) == 900 for v in spool._cache.values())
        assert spool.get(refs[0]) == bytes([0]) * 900  # evicted, read back from the file
    finally:
        spool.close()


def test_a_full_spool_reports_too_large_and_says_so(tmp_path: Path) -> None:
    pcap = tmp_path / "c.pcap"
    _write(pcap, [(MAC, 0, 0, 0, b"A" * 700), (MAC, 1, 0, 0, b"B" * 30)])
    fleet = scan_fleet(pcap, spool_limit=100)
    try:
        (boot,) = fleet.boots(MAC)
        assert [d.outcome for d in boot.own] == ["too-large", "ok"]
        assert any("spool" in w for w in fleet.warnings)
    finally:
        fleet.close()


def test_descriptions_beyond_half_the_budget_are_counted_not_kept(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from phoneemu.scenario._capture_flows import Limits

    pcap = tmp_path / "c.pcap"
    _write(pcap, [(MAC, i % 3, 0, 0, b"B" * 30) for i in range(10)])
    monkeypatch.setattr(replay_fleet, "DESCRIPTION_COST", 1 << 16)
    fleet = scan_fleet(pcap, limits=Limits(max_memory=4 << 16))  # room for two descriptions
    try:
        assert fleet.downloads == 2
        assert any("8 downloads not replayed" in w and "--max-memory" in w for w in fleet.warnings)
        assert fleet.not_kept == [MAC]  # not replayed on part of its files: said why
        (phone,) = asyncio.run(replay_fleet.replay_fleet(fleet, reduce=lambda ph: ph))
        assert phone.skipped == replay_fleet.NOT_KEPT and phone.results == ()
    finally:
        fleet.close()


def test_tvs_exchanges_beyond_the_allowance_are_counted_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from phoneemu.net.tls_decrypt import read_keylog

    pcap = Path(__file__).resolve().parents[2] / "captures" / "migration-itl-signer-unknown.pcap"
    keys = read_keylog(pcap.with_suffix(".keys"))
    kept = scan_fleet(pcap, secrets=keys)
    kept.close()
    assert kept.tvs.decrypted == 2 and not kept.warnings
    monkeypatch.setattr(replay_fleet, "EXCHANGE_COST", 1 << 40)  # none fits
    fleet = scan_fleet(pcap, secrets=keys)
    fleet.close()
    assert fleet.tvs.exchanges == () and fleet.tvs.decrypted == 2
    assert any("2 TVS exchanges not kept" in w and "--max-memory" in w for w in fleet.warnings)
    assert fleet.downloads == kept.downloads  # the downloads are all there


def test_scan_progress_is_told_the_offset_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pcap = tmp_path / "c.pcap"
    _write(pcap, [(MAC, i % 3, 0, 0, b"B" * 30) for i in range(10)])
    monkeypatch.setattr(replay_fleet, "_PROGRESS_EVERY", 7)
    seen: list[int] = []
    scan_fleet(pcap, progress=seen.append).close()
    assert len(seen) == 5 and seen == sorted(seen) and 0 < seen[-1] < pcap.stat().st_size  # 30 packets


MIGRATION = Path(__file__).resolve().parents[2] / "captures" / "migration-itl-signer-unknown.pcap"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 70_000), st.integers(0, 255)), max_size=6),
       cut=st.integers(24, 70_000))
def test_damaged_captures_replay_every_phone_or_say_where(tmp_path: Path, flips: list[tuple[int, int]],
                                                           cut: int) -> None:
    """A damaged capture (bytes changed, cut anywhere) replays every phone it still holds, with the key
    log, or fails with a DecodeError naming the offset: no other exception escapes."""
    from phoneemu.errors import DecodeError
    from phoneemu.net.tls_decrypt import read_keylog

    data = bytearray(MIGRATION.read_bytes())
    for at, value in flips:
        if at < len(data):
            data[at] = value
    damaged = tmp_path / "damaged.pcap"
    damaged.write_bytes(bytes(data[:cut]))
    try:
        fleet = scan_fleet(damaged, secrets=read_keylog(MIGRATION.with_suffix(".keys")))
    except DecodeError as exc:
        assert exc.offset is not None
        return
    try:
        phones = asyncio.run(replay_fleet.replay_fleet(fleet, reduce=lambda ph: ph, use_keylog=True))
    finally:
        fleet.close()
    assert [ph.mac for ph in phones] == fleet.macs()
    assert all(len(ph.results) >= 1 for ph in phones)


def test_registrations_that_differ_are_grouped_in_the_summary() -> None:
    """``--all``'s summary counts the SIP checks of every boot and groups the phones whose captured
    registration differs from the rules by why (a site where 300 phones register over TCP in secure
    mode reads as one line)."""
    from phoneemu.commands._replay_all import fleet_doc, fleet_text

    def rec(mac: str, *differs: str) -> dict[str, object]:
        checks = [{"differs": list(d), "server": "10.0.0.1:5061", "transport": "tls"}
                  for d in ([], *([x] for x in differs))]
        boot = {"outcome": "ok", "rule": "G.4-signed-by-ctl-tftp", "itl": "unchanged", "ctl": "installed",
                "config": "accepted", "server": "10.0.0.1", "sip": checks}
        return {"mac": mac, "profile": "cp-8861", "outcome": "ok", "rule": boot["rule"], "boots": [boot],
                "notes": []}

    tcp = "the phone used tcp, the rules give tls"
    doc = fleet_doc([rec("0A0000000001", tcp), rec("0A0000000002", tcp), rec("0A0000000003")])
    assert doc["sip_checked"] == 5
    assert doc["sip_differ_kinds"] == [{"count": 2, "differs": tcp, "macs": ["0A0000000001", "0A0000000002"]}]
    text = fleet_text(doc, "replay")
    assert "SIP: 5 registrations checked against the rules (G.9, G.5), 2 differ" in text
    calls = rec("0A0000000004")
    calls["boots"][0]["sip"][0]["calls"] = [{"target": "sip:moh@10.0.0.1"}, {"target": "sip:ivr@10.0.0.1"}]
    with_calls = fleet_doc([calls])
    assert with_calls["calls_checked"] == 2
    assert "SIP: 1 registration checked against the rules (G.9, G.5), 2 calls and their media (G.14), 0 " \
        "differ (as the rules say)" in fleet_text(with_calls, "replay")
    assert f"  SIP differs for 2 phones (0A0000000001, 0A0000000002): {tcp}" in text
    from phoneemu.commands._replay_all import _junit_failure

    failure = _junit_failure(doc["records"][0])  # every boot accepted its config, a registration differs
    assert failure is not None and failure[0] == ("boot 1 of 1: SIP to 10.0.0.1:5061 over tls differs from "
                                                  f"the rules: {tcp}")
    assert _junit_failure(doc["records"][2]) is None


def test_a_phone_whose_registrations_differ_alike_counts_once() -> None:
    """Two registrations of one phone that differ the same way: one phone in the group (it read '2
    phones'), two registrations in the count."""
    from phoneemu.commands._replay_all import fleet_doc, fleet_text

    tcp = "the phone used tcp, the rules give tls"
    check = {"differs": [tcp], "server": "10.0.0.1:5061", "transport": "tcp"}
    boot = {"outcome": "ok", "rule": "G.4-signed-by-ctl-tftp", "itl": "unchanged", "ctl": "installed",
            "config": "accepted", "server": "10.0.0.1", "sip": [check, dict(check)]}
    doc = fleet_doc([{"mac": "0A0000000001", "profile": "cp-8861", "outcome": "ok", "rule": boot["rule"],
                      "boots": [boot, dict(boot)], "notes": []}])
    assert doc["sip_differ_kinds"] == [{"count": 1, "differs": tcp, "macs": ["0A0000000001"]}]
    text = fleet_text(doc, "replay")
    assert "SIP: 4 registrations checked against the rules (G.9, G.5), 4 differ" in text
    assert f"  SIP differs for 1 phone (0A0000000001): {tcp}" in text
