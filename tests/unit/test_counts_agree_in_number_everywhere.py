"""Counts the user reads agree in number everywhere else (W26, after W20's ``phoneemu.words.counted``).

Each was said with ``(s)`` or a fixed plural, so a count of 1 read ``1 scenario(s)``, ``1 of 1 phones``:

* ``run``: the verdict line (``OK: 1 scenario(s) passed``, ``FAILED: 1 of 1 scenario(s) failed``,
  ``INTERRUPTED: 1 scenario(s) ran``), the interrupted line, ``--list``'s ``(1 expectation(s))`` and
  ``-k`` selecting nothing (``matches none of the 1 scenario(s)``);
* ``predict`` of a fleet: ``result: 1 of 1 phones would lock out``, ``sip: 1 phone(s) ... refuse ... until
  they reset``, ``... and 1 more notes``, ``1 TLS connection(s) tried, 1 server(s) unreachable``;
* ``fleet boot`` giving up: ``the first 1 phones got no answer``;
* ``replay``: ``--list``'s packets, downloads, datagrams, boots, TLS connections and TVS exchanges; the
  warnings of one phone's scan and of a fleet scan (``its 1 requests``, ``1 download(s) of 1 phone(s)``,
  ``1 SIP connection(s)``);
* a capture's note: ``1 TCP conversation(s)``, ``the kernel dropped 1 packet(s) ...: they are missing``.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.commands.predict import _fleet_text, _tvs_text
from phoneemu.commands.replay import _list_text, _tvs_lines
from phoneemu.errors import TransportError
from phoneemu.fleet.engine import FleetSpec, ShardResult, run_shard
from phoneemu.net.tls_decrypt import KeyLog
from phoneemu.phone.boot import BootTarget
from phoneemu.phone.events import QueryKey
from phoneemu.scenario._capture_flows import Download
from phoneemu.scenario.capturing import SyntheticCapture
from phoneemu.scenario.predict_live_tvs import LiveTvs
from phoneemu.scenario.replay import RECORD_COST, CaptureIndex, _PhoneSink
from phoneemu.scenario.replay_fleet import _Allowance, _FleetSink, _FleetTvs, _Spool
from phoneemu.scenario.replay_sip import SipCollector
from phoneemu.scenario.replay_tvs import TvsCapture
from phoneemu.scenario.reports import render_text
from phoneemu.scenario.results import RunSummary, ScenarioResult

HOST = "127.0.0.1"
MAC = "0A0000000001"


# --------------------------------------------------------------------------- run's verdict lines
def _passed(n: int, **summary: Any) -> str:
    """The text report of ``n`` scenarios that passed (no expectation: PASS)."""
    scenarios = [ScenarioResult(name=f"s{i}", path=f"s{i}.yaml", reproduces="", phones=1) for i in range(n)]
    return render_text(RunSummary(scenarios=scenarios, duration_s=1.0, **summary))


def _failed(n: int) -> str:
    """The text report of ``n`` scenarios, each an ERROR."""
    scenarios = [ScenarioResult(name=f"s{i}", path=f"s{i}.yaml", reproduces="", phones=1, error="broke")
                 for i in range(n)]
    return render_text(RunSummary(scenarios=scenarios, duration_s=1.0))


def test_the_verdict_line_counts_scenarios_in_number() -> None:
    assert _passed(1).splitlines()[-1] == "OK: 1 scenario passed (1 PASS) in 1.0s"
    assert _passed(2).splitlines()[-1] == "OK: 2 scenarios passed (2 PASS) in 1.0s"
    assert _failed(1).splitlines()[-1] == "FAILED: 1 of 1 scenario failed (1 ERROR) in 1.0s"
    assert _failed(2).splitlines()[-1] == "FAILED: 2 of 2 scenarios failed (2 ERROR) in 1.0s"
    assert _passed(1, interrupted=True).splitlines()[-1] == "INTERRUPTED: 1 scenario ran in 1.0s"
    assert _passed(2, interrupted=True).splitlines()[-1] == "INTERRUPTED: 2 scenarios ran in 1.0s"


def test_the_interrupted_line_counts_scenarios_in_number() -> None:
    one = _passed(0, interrupted=True, stopped=["a"], not_run=["c"])
    assert "interrupted: 1 scenario stopped under way (a); 1 scenario not run (c)" in one, one
    two = _passed(0, interrupted=True, stopped=["a", "b"], not_run=["c", "d"])
    assert "interrupted: 2 scenarios stopped under way (a, b); 2 scenarios not run (c, d)" in two, two


_SCENARIO = """\
phones:
  p: {mac: 0B0000000001}
steps:
  - boot: p
"""


def _scenario_file(tmp_path: Path, name: str, expectations: int) -> Path:
    f = tmp_path / f"{name}.yaml"
    f.write_text(_SCENARIO + "".join(f"  - expect: {{phones: p, label: e{i}, config: accepted}}\n"
                                     for i in range(expectations)))
    return f


def test_run_list_counts_expectations_in_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--list", str(_scenario_file(tmp_path, "one", 1))]) == 0
    assert capsys.readouterr().out.rstrip().endswith("(1 expectation)")
    assert main(["run", "--list", str(_scenario_file(tmp_path, "two", 2))]) == 0
    assert capsys.readouterr().out.rstrip().endswith("(2 expectations)")


def test_a_selection_matching_nothing_counts_scenarios_in_number(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    one = _scenario_file(tmp_path, "a", 1)
    assert main(["run", "--list", str(one), "-k", "zz"]) == 2
    assert "-k 'zz' does not match the 1 scenario (a)" in capsys.readouterr().err
    assert main(["run", "--list", str(one), str(_scenario_file(tmp_path, "b", 1)), "-k", "zz"]) == 2
    assert "-k 'zz' matches none of the 2 scenarios (a, b)" in capsys.readouterr().err


# --------------------------------------------------------------------------- predict of a fleet
def _fleet_doc(predicted: int, locked: int, *, refusing: int = 0, phone_notes: int = 0) -> dict[str, Any]:
    """A fleet prediction's document (as ``predict --fleet-flash`` makes it) of ``predicted`` phones."""
    macs = [f"0A{i:010X}" for i in range(predicted)]
    return {"source": "fleet", "fleet_flash": None, "signed_by_lab": None, "new_files": [],
            "tvs": "unreachable", "predicted": predicted, "skipped": 0, "skipped_entries": [], "by_model": {},
            "rules": [],
            "outcomes": {"locked out": locked, "failed": 0, "accepted": predicted - locked}, "ways_out": [],
            "sip_until_reset": {"count": refusing, "first_macs": macs[:refusing]}, "notes": [],
            "phone_notes": [{"note": f"n{i}", "count": 1, "first_macs": macs[:1]}
                            for i in range(phone_notes)],
            "not_given": []}


def test_the_fleet_forecast_counts_phones_in_number() -> None:
    assert _fleet_text(_fleet_doc(1, 1)).splitlines()[-1] == "result: 1 of 1 phone would lock out"
    assert _fleet_text(_fleet_doc(2, 1)).splitlines()[-1] == "result: 1 of 2 phones would lock out"


def test_the_phones_refusing_a_callmanager_agree_in_number() -> None:
    from phoneemu.commands.predict import _sip_refusing_lines  # was inline: "1 phone(s) ... refuse"

    one = {"count": 1, "first_macs": ["0A0000000000"]}
    assert _sip_refusing_lines(one) == ["sip: 1 phone (0A0000000000) refuses a CallManager certificate (G.5) "
                                        "until it resets: its CTL lacks it"]
    two = {"count": 2, "first_macs": ["0A0000000000", "0A0000000001"]}
    assert _sip_refusing_lines(two) == ["sip: 2 phones (0A0000000000 0A0000000001) refuse a CallManager "
                                        "certificate (G.5) until they reset: their CTL lacks it"]
    assert "sip: 1 phone (0A0000000000) refuses" in _fleet_text(_fleet_doc(1, 0, refusing=1))


def test_the_notes_not_shown_are_counted_in_number() -> None:
    one = _fleet_text(_fleet_doc(1, 0, phone_notes=11))
    assert "... and 1 more note, for fewer phones each (--json-file lists them all)" in one, one
    assert "note for 1 phone (0A0000000000): n0" in one, one
    two = _fleet_text(_fleet_doc(1, 0, phone_notes=12))
    assert "... and 2 more notes, for fewer phones each (--json-file lists them all)" in two, two


def test_the_live_tvs_counts_connections_and_servers_in_number() -> None:
    args = argparse.Namespace(tvs_cert=None, tvs_reachable=False)
    live = LiveTvs()
    live.connections = 1
    assert _tvs_text(args, live) == "asked over the network (1 TLS connection tried)"
    live.connections = 2
    assert _tvs_text(args, live) == "asked over the network (2 TLS connections tried)"
    assert "server unreachable" in _tvs_text(args, _unreachable(1))
    assert "2 servers unreachable" in _tvs_text(args, _unreachable(2))


def _unreachable(servers: int) -> LiveTvs:
    """A LiveTvs that asked ``servers`` loopback ports where nothing listens (each refused)."""
    ports = []
    for _ in range(servers):
        with socket.socket() as s:  # a free port, closed again: nothing listens there
            s.bind((HOST, 0))
            ports.append(s.getsockname()[1])
    live = LiveTvs(timeout=2.0)
    ask = live.asker(("1.2",))
    key = QueryKey(subject="CN=x", issuer="CN=y", serial=b"\x01")
    with pytest.raises(TransportError):
        asyncio.run(ask([(HOST, p) for p in ports], key, device_name=f"SEP{MAC}", accept_server=None))
    assert live.unreachable == servers == live.connections
    return live


# --------------------------------------------------------------------------- fleet boot giving up
def _give_up_after(unanswered: int) -> ShardResult:
    """A shard booting ``unanswered + 1`` phones one at a time against a silent UDP socket (nothing
    answers), giving up after ``unanswered`` boots got no answer."""
    async def body(port: int) -> ShardResult:
        target = BootTarget(host=HOST, tftp_port=port, use_http=False)
        spec = FleetSpec(target=target, count=unanswered + 1, concurrency=1, fetch_timeout=0.02,
                         fetch_retries=0, give_up_unanswered=unanswered)
        return await asyncio.wait_for(run_shard(spec, range(spec.mac_start, spec.mac_start + spec.count)), 60)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((HOST, 0))
        return asyncio.run(body(silent.getsockname()[1]))


@pytest.mark.parametrize(("unanswered", "first"), [(1, "the first phone"), (2, "the first 2 phones")])
def test_giving_up_counts_the_phones_in_number(unanswered: int, first: str) -> None:
    res = _give_up_after(unanswered)
    assert res.gave_up is not None and res.gave_up.startswith(f"{first} got no answer to any request from "
                                                              f"{HOST}:"), res.gave_up


# --------------------------------------------------------------------------- replay --list
def _download(name: str, order: int) -> Download:
    return Download(name=name, protocol="tftp", client=(HOST, 50000 + order), server=(HOST, 69), start=order,
                    end=order + 0.5, outcome="ok", data=b"x", order=order)


def _index(boots: int, *, packets: int, skipped: int, unlisted: int = 0) -> CaptureIndex:
    """A capture of one phone's ``boots`` boots, each an ITLSEP download then its config's, the first
    boot without its ITLSEP download (one download for one boot)."""
    names = [f"ITLSEP{MAC}.tlv", f"SEP{MAC}.cnf.xml.sgn"] * boots
    return CaptureIndex(downloads=tuple(_download(name, i) for i, name in enumerate(names[1:])),
                        packets=packets, skipped=skipped, unlisted=unlisted)


def test_replay_list_counts_in_number() -> None:
    none = TvsCapture(exchanges=(), tls_connections=0, not_tvs=0, problems=())
    one = _list_text(_index(1, packets=1, skipped=1), none, None, None).splitlines()
    assert one[0] == "1 packet, 1 download, 1 non-TFTP UDP datagram skipped", one
    assert f"phone {MAC}: 1 boot" in one, one
    more = _list_text(_index(1, packets=1, skipped=1, unlisted=1), none, None, None).splitlines()
    assert "... 1 more download not listed (at most 1 are)" in more, more
    two = _list_text(_index(2, packets=2, skipped=2, unlisted=2), none, None, None).splitlines()
    assert two[0] == "2 packets, 5 downloads, 2 non-TFTP UDP datagrams skipped", two
    assert f"phone {MAC}: 2 boots" in two, two
    assert "... 2 more downloads not listed (at most 3 are)" in two, two


@pytest.mark.parametrize(("n", "connections", "exchanges"), [
    (1, "1 TLS connection", "1 TVS exchange"), (2, "2 TLS connections", "2 TVS exchanges")])
def test_replay_list_counts_tls_connections_in_number(n: int, connections: str, exchanges: str) -> None:
    tvs = TvsCapture(exchanges=(), tls_connections=n, not_tvs=0, problems=(), unlisted=n, unlisted_problems=n)
    assert _tvs_lines(tvs, None, None) == [f"{connections} (TVS, CAPF, HTTPS): give --keylog FILE to decrypt "
                                           "the TVS exchanges"]
    more = "more exchange" if n == 1 else "more exchanges"
    assert _tvs_lines(tvs, Path("k.log"), None) == [
        f"{connections}: {exchanges} decrypted, 0 other, {n} not decrypted", f"  ... {n} {more} not listed",
        f"  ... {n} more connection{'s' if n > 1 else ''} not decrypted"]


# --------------------------------------------------------------------------- replay: scan warnings
@pytest.mark.parametrize(("kept", "said"), [(1, "1 request"), (2, "2 requests")])
def test_a_phone_not_kept_counts_its_requests_in_number(kept: int, said: str) -> None:
    sink = _PhoneSink(MAC)
    warned: list[str] = []
    sink.bind(0, warned.append, lambda: 0)
    sink.allowance = kept * RECORD_COST  # room for ``kept`` requests' records, not one more
    for i in range(kept + 1):
        sink.request(f"SEP{MAC}.cnf.xml", (HOST, 50000 + i), (HOST, 69), float(i), i)
    assert len(warned) == 1, warned
    assert f"the records of phone {MAC}'s {said} and of the cluster-wide " in warned[0], warned
    why = CaptureIndex(downloads=(), packets=0, not_kept={MAC: kept}).not_replayed(MAC)
    assert why is not None and f"the records of its {said} would hold more than half" in why, why


@pytest.fixture
def fleet_sink() -> Any:
    spool = _Spool(1024)
    try:
        yield _FleetSink(spool, _Allowance(1 << 20), lambda _text: None)
    finally:
        spool.close()


def test_a_fleet_scan_counts_downloads_in_number(fleet_sink: _FleetSink) -> None:
    from phoneemu.scenario.replay_fleet import _sink_notes  # was inline: "1 download(s) of 1 phone(s)"

    fleet_sink.not_kept = fleet_sink.spool_full = fleet_sink.too_many_macs = fleet_sink.uncounted = 1
    fleet_sink.beyond = {1}
    one = _sink_notes(fleet_sink)
    assert one[0].startswith("1 download not replayed: its description would not fit") and \
        one[0].endswith("(raise --max-memory to keep it)"), one
    assert one[1] == "1 download reported too-large: the spool's 1024 bytes were full", one
    assert one[2].startswith("1 download of 1 phone beyond the first "), one
    assert one[3].startswith("1 download of a phone beyond the first "), one
    assert " whose MAC did not fit " in one[3] and "that phone is not counted" in one[3], one
    fleet_sink.not_kept = fleet_sink.spool_full = fleet_sink.too_many_macs = fleet_sink.uncounted = 2
    fleet_sink.beyond = {1, 2}
    two = _sink_notes(fleet_sink)
    assert two[0].startswith("2 downloads not replayed: their descriptions would not fit") and \
        two[0].endswith("(raise --max-memory to keep them)"), two
    assert two[1] == "2 downloads reported too-large: the spool's 1024 bytes were full", two
    assert two[2].startswith("2 downloads of 2 phones beyond the first "), two
    assert two[3].startswith("2 downloads of phones beyond the first "), two
    assert " whose MACs did not fit " in two[3] and "those phones are not counted" in two[3], two


@pytest.mark.parametrize("n", [1, 2])
def test_a_fleet_scan_counts_connections_and_flows_in_number(n: int) -> None:
    from phoneemu.scenario.replay_fleet import _scan_notes  # was inline: "1 SIP connection(s)"

    collector = _FleetTvs(KeyLog(), _Allowance(1 << 20), lambda _text: None)
    collector.unlisted = collector.unlisted_presented = n
    sips = SipCollector()
    sips.unlisted = sips.flows_not_kept = n
    s = "" if n == 1 else "s"
    notes = _scan_notes(collector, sips)
    assert [note.split(" (")[0] for note in notes] == [
        f"{n} TVS exchange{s} not kept", f"{n} TLS connection{s} without a request not kept",
        f"{n} SIP connection{s} not checked", f"{n} UDP flow{s} not kept for the calls' media check"], notes
    those = "that phone's queries are" if n == 1 else "those phones' queries are"
    assert notes[0].endswith(f"{those} answered as not captured"), notes


# --------------------------------------------------------------------------- a capture's note
@pytest.mark.parametrize(("flows", "said"), [(1, "Also 1 TCP conversation fed by services"),
                                             (2, "Also 2 TCP conversations fed by services")])
def test_a_synthetic_capture_counts_its_tcp_conversations_in_number(flows: int, said: str,
                                                                    tmp_path: Path) -> None:
    sink = SyntheticCapture(tmp_path / "c.pcap", tmp_path / "c.keys")
    for i in range(flows):
        sink.tcp_flow((HOST, 40000 + i), (HOST, 2445))
    sink.close()
    assert said in sink.note_path.read_text()


def test_a_live_capture_counts_what_it_lost_in_number() -> None:
    from phoneemu.scenario.capturing import _kernel_drops_line, _overflow_line  # were inline: "packet(s)"

    assert _kernel_drops_line(1) == ("the kernel dropped 1 packet the capture thread could not read in "
                                     "time: it is missing from the pcap")
    assert _kernel_drops_line(2) == ("the kernel dropped 2 packets the capture thread could not read in "
                                     "time: they are missing from the pcap")
    one = _overflow_line(1, "--max-bytes")
    assert one.startswith("1 packet of a host not yet known to be the phones' peer was not kept"), one
    two = _overflow_line(2, "--max-bytes")
    assert two.startswith("2 packets of hosts not yet known to be the phones' peers were not kept"), two
