"""What the lockout rehearsals' walk-through (s39b) found misleading, told in process.

* The boot's TVS step wrote ``QUERY ... to HOST:PORT`` before ``TVS server HOST:PORT certificate is not an
  ITL TVS record: not used``: it read as sent, it was not. Now: ``connecting to HOST:PORT``, then a refused
  server ``not used``, and ``QUERY ... to HOST:PORT`` only once a server's certificate is accepted.
* The ways out of a lockout on the phones' own cluster (``G.3.4-tvs-server-untrusted``,
  ``G.3.4-tvs-unreachable``) listed the rollback second, before the bulk ITL reset that works there (the
  rollback ITL has the signer they refuse); it comes after it now and says it is a migration's.
* ``predict``'s fleet result said plainly the lockouts that rest on its offline default (every TVS
  unreachable); phones locked out for another rule stay said plainly.
* ``fleet boot``'s failed line listed the first MACs to finish: now the lowest, the same in every run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from phoneemu.errors import TransportError
from phoneemu.fleet.alike import MACS_KEPT, Alike
from phoneemu.net.tvs_client import NO_TVS_ANSWER, SERVER_REFUSED, judge_server, server_order
from phoneemu.phone.boot import BootTarget
from phoneemu.phone.flash import Flash
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile
from phoneemu.phone.ways_out import ways_out
from phoneemu.scenario.replay import offline_tvs
from tests.helpers import LabFiles, boot_offline_into, capf_unreachable, fsyncs_skipped, pristine_lab, run

NOW = 1_780_000_000
MAC = "0A00000039B1"

no_fsync = fsyncs_skipped()
base_lab, lab = pristine_lab("walk-s39b-tvs", now=NOW, phones={MAC: {"now": NOW}})


def _asker(presented: bytes, vouched: Any) -> Any:
    """A TVS asker whose every server presents ``presented``: judged as the phone's TVS client judges it
    (:func:`judge_server`); accepted, answered as a TVS vouching for ``vouched`` would."""
    inner = offline_tvs([vouched], frozenset({0}))

    async def ask(servers: Any, key: Any, *, device_name: str, accept_server: Any) -> Any:
        failures = []
        for host, port in server_order(servers):
            if judge_server(accept_server, host, port, presented):
                return await inner(servers, key, device_name=device_name)
            failures.append(f"{host}:{port}: {SERVER_REFUSED}")
        raise TransportError(NO_TVS_ANSWER + "; ".join(failures), kind="tls")
    return ask


def _reboot_after_itlrecovery(lab: Any, tmp_path: Path, presented: str) -> Any:
    """The phone holding the lab's first ITL boots after ITLRecovery was regenerated, its TVS presenting
    the lab identity ``presented``'s certificate; the boot report."""
    run(boot_offline_into(tmp_path, lab, [MAC], now=NOW))
    lab.regenerate("itlrecovery", now=NOW)
    prof = get_profile("cp-8861")
    phone = Phone(mac=MAC, profile=prof, flash=Flash(tmp_path / MAC, profile=prof), clock=lambda: NOW,
                  tvs=_asker(lab.identity(presented).der, lab.identity("itlrecovery").cert),
                  capf=capf_unreachable, capf_retries=0)
    return run(phone.boot(BootTarget(host="lab", tftp_port=69, use_http=False), fetcher=LabFiles(lab)))


def _index(timeline: tuple[str, ...], text: str) -> int:
    return next(i for i, line in enumerate(timeline) if text in line)


def test_a_refused_tvs_server_is_not_said_to_have_been_sent_a_query(lab: Any, tmp_path: Path) -> None:
    report = _reboot_after_itlrecovery(lab, tmp_path, "capf")  # a certificate no ITL TVS record holds
    assert report.deciding.rule == "G.3.4-tvs-server-untrusted"
    timeline = report.timeline
    connecting = _index(timeline, "connecting to ")
    assert "asking TVS about " in timeline[connecting], timeline
    refused = _index(timeline, "certificate is not an ITL TVS record: not used")
    assert connecting < refused
    assert not any("QUERY " in line for line in timeline), timeline  # was: QUERY ... to HOST:PORT first


def test_the_query_is_said_when_it_goes_to_an_accepted_server(lab: Any, tmp_path: Path) -> None:
    report = _reboot_after_itlrecovery(lab, tmp_path, "tvs")
    assert report.deciding is None or report.deciding.accepted
    assert "G.3.4-vouched-by-tvs" in [d.rule for d in report.decisions]
    timeline = report.timeline
    connecting = _index(timeline, "connecting to ")
    query = _index(timeline, "QUERY ")
    server = timeline[connecting].rsplit("connecting to ", 1)[1]
    assert timeline[query].endswith(f" to {server}"), timeline
    assert connecting < query < _index(timeline, "TVS knows the certificate")


def test_the_own_cluster_ways_out_list_the_itl_reset_before_the_rollback() -> None:
    for rule in ("G.3.4-tvs-server-untrusted", "G.3.4-tvs-unreachable"):
        scenarios = [w.scenario for w in ways_out(rule, "ITL")]
        assert scenarios.index("bulk-itl-reset-localkey") < scenarios.index("rollback-empty-itl-escape"), rule
        rollback = next(w for w in ways_out(rule, "ITL") if "rollback OLD on" in w.lab)
        assert rollback.when.startswith("a migration")
        assert "not a lockout on their own cluster" in rollback.when


def test_the_rollback_is_not_said_useless_where_it_helps() -> None:
    """Review (s39): the own-cluster caveat was on every rule's rollback — under the config rules its empty
    ITL does let the phones take an unsigned config (G.4-empty-itl-accepts-unsigned), and under the
    migration rules it is the way."""
    for rule, kind in (("G.3.5-reject-unknown-signer", "ITL"), ("G.3.4-tvs-unknown-signer", "ITL"),
                       ("G.3.4-tvs-wrong-role", "ITL"), ("G.4-reject-unknown-signer", "config"),
                       ("G.4-tvs-server-untrusted", "config"), ("G.4-tvs-wrong-role", "config")):
        rollback = next(w for w in ways_out(rule, kind) if "rollback OLD on" in w.lab)
        assert rollback.when == "moving away from a cluster that still serves them", (rule, rollback.when)


def _fleet_doc(locked: int, offline: int) -> dict[str, Any]:
    return {"source": "fleet", "fleet_flash": None, "signed_by_lab": None, "new_files": [],
            "tvs": "unreachable", "predicted": 10, "skipped": 0, "skipped_entries": [], "by_model": {},
            "rules": [], "outcomes": {"locked out": locked, "failed": 0, "accepted": 10 - locked},
            "locked_out_tvs_offline": offline, "ways_out": [], "notes": [], "phone_notes": [],
            "sip_until_reset": {"count": 0, "first_macs": []}, "not_given": []}


def test_the_fleet_result_says_which_lockouts_rest_on_the_offline_tvs() -> None:
    from phoneemu.commands.predict import _fleet_text

    ask = "(offline: ask it with --tvs-live, or give --tvs-cert)"
    assert _fleet_text(_fleet_doc(4, 4)).splitlines()[-1] == \
        f"result: 4 of 10 phones would lock out if their TVS cannot be reached {ask}"
    assert _fleet_text(_fleet_doc(5, 3)).splitlines()[-1] == \
        f"result: 5 of 10 phones would lock out, 3 of them if their TVS cannot be reached {ask}"
    assert _fleet_text(_fleet_doc(5, 0)).splitlines()[-1] == "result: 5 of 10 phones would lock out"


def test_a_failure_kind_keeps_the_lowest_macs_whatever_order_the_phones_end_in() -> None:
    macs = [f"0A00000000{i:02X}" for i in range(12)]
    kept = []
    for order in (macs, macs[::-1], macs[5:] + macs[:5]):
        alike = Alike(["rule"])
        for mac in order:
            alike.add(mac, {"rule": "G.3.4-tvs-unreachable"})
        kept.append(alike.kinds()[0]["macs"])
    assert kept == [macs[:MACS_KEPT]] * 3  # was the first to end: macs[-3:] reversed, then macs[5:8]
    halves = [Alike(["rule"]), Alike(["rule"])]
    for i, mac in enumerate(macs[::-1]):  # two shards, merged
        halves[i % 2].add(mac, {"rule": "r"})
    assert halves[0].merge(halves[1]).kinds()[0]["macs"] == macs[:MACS_KEPT]
