"""Counts the user reads agree in number (W20): ``1 phone``, ``2 phones``, never ``1 phones`` nor
``2 phone(s)``.

* ``fleet boot``'s summary said ``1 phones: 1 booted ...``, ``TVS asked by 1 phones``, ``TFTP: 1 requests,
  ..., 1 retransmissions`` and, for a phone booted on what it had, ``booted on what they had``.
* A lost shard of one phone said ``1 phones 0A0000000000..0A0000000000 ...: its 1 phones are lost (...;
  their records went with it)``, and ``the other 1 shard(s) go on``.
* ``fleet boot --lab`` for phones missing in three runs of MACs said ``1 more such commands``.
* ``run``'s verdict line of a scenario said ``(f.yaml, 1 phone(s), ...)``, the line counting the groups of
  failed phones not shown ``1 more group(s) of 1 phone(s)``, and ``captures: 1 pcap(s) with their TLS key
  logs``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.commands.fleet import _add_missing_text
from phoneemu.fleet.metrics import BootRecord, FleetMetrics
from phoneemu.fleet.shard import LostShard
from phoneemu.scenario.reports import MAX_GROUPS_SHOWN, render_text
from phoneemu.scenario.results import CheckResult, ExpectationResult, RunSummary, ScenarioResult
from phoneemu.words import counted


def test_counted_agrees_in_number() -> None:
    assert counted(0, "phone") == "0 phones"
    assert counted(1, "phone") == "1 phone"
    assert counted(2, "phone") == "2 phones"
    assert counted(1, "entry", "entries") == "1 entry"
    assert counted(3, "entry", "entries") == "3 entries"
    assert counted(1204, "request", grouped=True) == "1,204 requests"
    assert counted(1, "request", grouped=True) == "1 request"


# --------------------------------------------------------------------------- fleet boot's summary
def _fleet_summary(phones: int) -> str:
    """The summary of ``phones`` booted phones, each asking TVS, each with an ITL download timed out (then
    booted on what it had), and as many TFTP requests and retransmissions as phones."""
    m = FleetMetrics()
    for i in range(phones):
        m.add(BootRecord(mac=f"0A{i:010X}", outcome="ok", rule="G.4-signed-by-itl-tftp", latency_s=0.01,
                         end_s=0.5, tvs_used=True, failed_downloads=(("ITLFile.tlv", "timeout"),)))
    m.add_tftp(requests=phones, retransmitted=0, retransmits=phones)
    return m.render()


def test_the_fleet_summary_of_one_phone_says_phone() -> None:
    lines = _fleet_summary(1).splitlines()
    assert lines[0].startswith("1 phone: 1 booted, 0 failed in "), lines
    assert "TVS asked by 1 phone" in lines
    assert "transport failures: ITL timeout 1 (1 phone; 1 booted on what it had, not on the cluster's " \
           "files)" in lines
    assert "TFTP: 1 request, 0 retransmitted (0.0 %), 1 retransmission" in lines


def test_the_fleet_summary_of_two_phones_says_phones() -> None:
    lines = _fleet_summary(2).splitlines()
    assert lines[0].startswith("2 phones: 2 booted, 0 failed in "), lines
    assert "TVS asked by 2 phones" in lines
    assert "transport failures: ITL timeout 2 (2 phones; 2 booted on what they had, not on the cluster's " \
           "files)" in lines
    assert "TFTP: 2 requests, 0 retransmitted (0.0 %), 2 retransmissions" in lines


# --------------------------------------------------------------------------- a shard lost in the storm
def test_a_lost_shard_of_one_phone_names_its_mac_once_and_says_phone() -> None:
    one = LostShard(shard=1, first_mac=0x0A0000000008, phones=1, why="killed by SIGKILL")
    assert one.message() == ("shard 1 (phoneemu-fleet-1, 1 phone 0A0000000008) killed by SIGKILL: its phone "
                             "is lost (it had not finished booting)")
    done = LostShard(shard=1, first_mac=0x0A0000000008, phones=1, why="killed by SIGKILL", reported_done=1)
    assert done.message().endswith(": its phone is lost (it had finished booting; its record went with it)")


def test_a_lost_shard_of_two_phones_says_phones() -> None:
    two = LostShard(shard=0, first_mac=0x0A0000000000, phones=2, why="exited with status 1", reported_done=1)
    assert two.message() == ("shard 0 (phoneemu-fleet-0, 2 phones 0A0000000000..0A0000000001) exited with "
                             "status 1: its 2 phones are lost (1 had finished booting; their records went "
                             "with it)")


@pytest.mark.parametrize(("going", "said"), [(0, ""), (1, "; the other shard goes on"),
                                             (2, "; the other 2 shards go on")])
def test_the_shards_that_go_on_are_counted_in_number(going: int, said: str) -> None:
    from phoneemu.fleet.shard import _others_go_on  # was inline: "the other 1 shard(s) go on"

    assert _others_go_on(going) == said


# --------------------------------------------------------------------------- fleet boot --lab, phones missing
def _missing_in_runs(runs: int) -> list[str]:
    """One MAC in each of ``runs`` runs of consecutive MACs (every other MAC)."""
    return [f"0A{2 * i:010X}" for i in range(runs)]


def test_one_more_command_to_add_missing_phones_is_one_command() -> None:
    text = _add_missing_text(Path("/lab"), _missing_in_runs(3))
    assert " and 1 more such command (one per run of consecutive MACs)" in text, text
    text = _add_missing_text(Path("/lab"), _missing_in_runs(4))
    assert " and 2 more such commands (one per run of consecutive MACs)" in text, text


# --------------------------------------------------------------------------- run's text report
def _failed_apart(phones: int) -> ExpectationResult:
    """``retransmitted: false`` failed on ``phones`` phones, each with a count of its own (a group each)."""
    e = ExpectationResult(where="f.yaml:7", label="no retransmissions", xfail=None)
    for i in range(phones):
        e.checks.append(CheckResult(phone=f"0A{i:010X}", check="retransmitted", expected=False, actual=i + 1,
                                    held=False))
    return e


def _report(phones: int, *, captured: int = 0) -> str:
    """The text report of one scenario of ``phones`` phones failing each its own way, and of ``captured``
    more scenarios, each with a capture."""
    failed = ScenarioResult(name="fleet", path="f.yaml", reproduces="", expectations=[_failed_apart(phones)],
                            phones=phones)
    caps = [ScenarioResult(name=f"c{i}", path=f"c{i}.yaml", reproduces="", phones=1,
                           capture=f"caps/c{i}.pcap") for i in range(captured)]
    return render_text(RunSummary(scenarios=[failed, *caps]))


def test_the_verdict_line_of_a_scenario_counts_its_phones_in_number() -> None:
    assert "FAIL  fleet  (f.yaml, 1 phone, 0.00s)" in _report(1)
    assert "FAIL  fleet  (f.yaml, 2 phones, 0.00s)" in _report(2)


def test_the_groups_not_shown_are_counted_in_number() -> None:
    one_more = _report(MAX_GROUPS_SHOWN + 1)
    assert "... and 1 more group of 1 phone that failed otherwise (the JSON report" in one_more, one_more
    two_more = _report(MAX_GROUPS_SHOWN + 2)
    assert "... and 2 more groups of 2 phones that failed otherwise (the JSON report" in two_more, two_more


def test_the_captures_are_counted_in_number() -> None:
    assert "captures: 1 pcap with its TLS key log in caps/ (phoneemu wireshark caps/NAME.pcap;" in \
        _report(1, captured=1)
    assert "captures: 2 pcaps with their TLS key logs in caps/ (phoneemu wireshark caps/NAME.pcap;" in \
        _report(1, captured=2)
