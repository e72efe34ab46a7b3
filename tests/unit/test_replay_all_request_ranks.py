"""``replay --all``: the per-address ranks of the phones' requests for cluster-wide names (the TVS
questions' spans, :mod:`phoneemu.scenario.replay`, "TVS questions") count against ``--max-memory``.

Before, each cluster-wide download from a phone's address held a rank and an endpoint in
``FleetCapture._asked_from`` outside the budget (and sorting them held ~100 bytes more each for a moment):
a capture whose descriptions filled half the budget exactly was replayed beyond it. Now each
cluster-wide download counts :data:`~phoneemu.scenario.replay_fleet.REQUEST_RANK_COST` beside its
description; the lists are built in capture order (no sort).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneemu.scenario import replay_fleet
from phoneemu.scenario._capture_flows import Download, Limits
from phoneemu.scenario.replay import ReplayFetcher, boots_of
from phoneemu.scenario.replay_fleet import scan_fleet
from phoneemu.scenario.replay_tvs import scan_capture
from tests.unit.test_replay import MAC
from tests.unit.test_replay_all import _write, transfer

DESCRIPTION = 1 << 16  # a description's cost in these tests: the budget counts a few


def test_a_capture_over_the_budget_by_the_request_ranks_is_not_replayed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two cluster-wide downloads and the phone's two own ones: their descriptions fill half the budget
    exactly, the cluster-wide ones' ranks go beyond it: the last download is not kept and the phone is not
    replayed, said as for any description beyond the budget (was: all kept, no warning)."""
    pcap = tmp_path / "c.pcap"
    _write(pcap, [(None, 0, 0, 0, b"B" * 30), (MAC, 0, 0, 0, b"B" * 30), (None, 2, 0, 0, b"B" * 30),
                  (MAC, 2, 0, 0, b"B" * 30)])
    monkeypatch.setattr(replay_fleet, "DESCRIPTION_COST", DESCRIPTION)
    limits = Limits(max_memory=8 * DESCRIPTION)  # half: four descriptions, not one byte more
    fleet = scan_fleet(pcap, limits=limits)
    try:
        assert fleet.downloads == 3
        assert any("1 download not replayed" in w and "--max-memory" in w for w in fleet.warnings)
        assert fleet.not_kept == [MAC]
        (phone,) = asyncio.run(replay_fleet.replay_fleet(fleet, reduce=lambda ph: ph))
        assert phone.skipped == replay_fleet.NOT_KEPT and phone.results == ()
    finally:
        fleet.close()
    monkeypatch.setattr(replay_fleet, "REQUEST_RANK_COST", 0)  # the ranks alone made the difference
    fleet = scan_fleet(pcap, limits=limits)
    fleet.close()
    assert fleet.downloads == 4 and fleet.not_kept == [] and not fleet.warnings


def test_the_ranks_fit_in_their_cost(tmp_path: Path) -> None:
    """REQUEST_RANK_COST covers what the per-address lists of a capture hold for each cluster-wide download
    (a rank and an endpoint: references to what the descriptions hold; measured ~17 bytes)."""
    pcap = tmp_path / "c.pcap"
    _write(pcap, [(MAC, 0, 0, 0, b"B" * 30), *[(None, n % 3, n % 4, 0, b"B" * 30) for n in range(300)]])
    fleet = scan_fleet(pcap)
    fleet.close()
    held = sys.getsizeof(fleet._asked_from) + sum(
        sys.getsizeof(key) + sys.getsizeof(ranks) + sys.getsizeof(endpoints)
        for key, (ranks, endpoints) in fleet._asked_from.items())
    assert sum(len(ranks) for ranks, _ in fleet._asked_from.values()) == 300
    assert held <= 300 * replay_fleet.REQUEST_RANK_COST


def _reference(listing: list[Download], own: tuple[Download, ...], stop: float) -> list[int]:
    """The ranks of a boot's requests by the rule itself (:mod:`phoneemu.scenario.replay`, "TVS
    questions"), from every download of the capture: its own, and those of cluster-wide names to its
    server in its window from a client endpoint of its own requests or an address no other phone uses."""
    others = {d.client[0] for d in listing if d.mac is not None and d.mac != own[0].mac}
    endpoints = {d.client for d in own}
    addresses = {e[0] for e in endpoints} - others
    start, server = own[0].order, own[0].server[0]
    theirs = {d.order for d in listing if d.mac is None and d.server[0] == server and start <= d.order < stop
              and (d.client in endpoints or d.client[0] in addresses)}
    return sorted({*(d.order for d in own), *theirs})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(transfers=st.lists(transfer, min_size=1, max_size=24))
def test_each_boot_takes_the_ranks_of_its_requests(
        tmp_path: Path, transfers: list[tuple[str | None, int, int, int, bytes | None]]) -> None:
    """Property: the ranks that part a boot's TVS questions in ``replay --all`` (the lists built in one
    pass) are those of the phone's requests by the rule, from every download of the capture (was: also
    the cluster-wide requests to another server than the boot's, which ``replay --mac`` leaves out); those
    of ``replay --mac`` are among them (its index keeps, of a cluster-wide name requested again and again,
    the first complete download and the last one)."""
    pcap = tmp_path / "c.pcap"
    _write(pcap, transfers)
    listing = list(scan_capture(pcap).index.downloads)
    fleet = scan_fleet(pcap)
    try:
        for mac in fleet.macs():
            alone = scan_capture(pcap, mac=mac).index
            others = alone.other_addresses | {d.client[0] for d in alone.downloads
                                              if d.mac is not None and d.mac != mac}
            got_boots, ref_boots = fleet.boots(mac), boots_of(alone, mac)
            for n, (b_ref, b_got) in enumerate(zip(ref_boots, got_boots, strict=True)):
                own_ref = frozenset(d.client[0] for d in b_ref.own) - others
                own_got = frozenset(d.client[0] for d in b_got.own) - fleet.shared_addresses
                assert own_got == own_ref
                got = ReplayFetcher(b_got, addresses=own_got)._ranks
                stop = got_boots[n + 1].order if n + 1 < len(got_boots) else float("inf")
                assert got == _reference(listing, b_got.own, stop)
                assert set(ReplayFetcher(b_ref, addresses=own_ref)._ranks) <= set(got)
    finally:
        fleet.close()
