"""``replay`` of a TVS server the phones refused (spec §E.1, §G.3.4 ``G.3.4-tvs-server-untrusted``).

After ``lab regenerate tvs`` and ``lab regenerate itlrecovery`` the TVS presents a certificate that is
not a TVS record of the phones' installed ITL: each phone hangs up after the handshake, sends no QUERY
and locks out with ``G.3.4-tvs-server-untrusted``. Replayed from the capture (with its key log) the
phones must decide the same, for the same reason — not ``G.3.4-tvs-unreachable`` ("bring TVS back"):
the certificate each server presented is kept per connection and judged by the phone's own §E.1 check
(:mod:`phoneemu.scenario.replay_tvs`, "A TVS server the phone refused").
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.crypto.certs import CertRequest, cert_der, issue_certificate
from phoneemu.crypto.keys import KeySpec, generate_key
from phoneemu.errors import TransportError
from phoneemu.net.tls import client_context_verify_after_handshake, server_context
from phoneemu.net.tls_decrypt import parse_keylog, presented_certificate
from phoneemu.net.tvs_client import NO_TVS_ANSWER
from phoneemu.scenario.replay_tvs import REFUSED, CapturedCert, TvsCapture
from tests.helpers import MemoryTlsPair, fsyncs_skipped, phoneemu_cli, run_within, skip_unless_live

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.71"  # this file's fleet cluster: no other test uses it (its packets alone in the pcap)
START = 0x0A0000007100
MACS = [f"{START + i:012X}" for i in range(4)]
UNTRUSTED = "G.3.4-tvs-server-untrusted"

run_long = run_within(60)
no_fsync = fsyncs_skipped()  # the in-process labs' and flashes' (no test here is about a crash)


def _fleet(port: int, flash: Path, *extra: str) -> list[str]:
    return ["fleet", "boot", "--count", str(len(MACS)), "--tftp", f"{HOST}:{port}", "--mac-start", MACS[0],
            "--no-http", "--shards", "2", "--flash", str(flash), "-q", *extra]


def test_a_storm_refusing_a_regenerated_tvs_replays_as_the_live_fleet_decided(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """§E.1, §G.3.4: the live storm after ``regenerate tvs`` + ``regenerate itlrecovery`` (TVS up)
    locks every phone out with ``G.3.4-tvs-server-untrusted``; ``replay --all`` and ``replay --mac``
    of its capture, each phone holding its flash from before the storm, give every phone the same rule
    and the same reason (before: ``G.3.4-tvs-unreachable``, "no such TVS query of this phone in the
    capture", and the way out "bring TVS back")."""
    from phoneemu.lab.cluster import LabCluster
    from phoneemu.lab.servers import LabServers

    skip_unless_live(tmp_path)  # a synthetic capture holds no TLS
    lab = LabCluster.init(tmp_path / "lab", seed=71, key_spec="rsa1024", host=HOST)
    lab.add_phones(MACS)
    flash, before = tmp_path / "flash", tmp_path / "flash-before"
    pcap, keys = tmp_path / "storm.pcap", tmp_path / "storm.keys"

    async def body() -> tuple[int, str]:
        async with LabServers(lab, host=HOST) as srv:
            # first boot: ITL installed, not captured: in this process, one shard (a CLI process and its
            # two shards cost ~1.1 s of CPU)
            assert await asyncio.to_thread(main, _fleet(srv.ports["tftp"], flash, "--shards", "0")) == 0
            shutil.copytree(flash, before)
            lab.regenerate("tvs")
            lab.regenerate("itlrecovery")
            return await phoneemu_cli(*_fleet(srv.ports["tftp"], flash, "--capture", str(pcap)))

    rc, out = run_long(body())
    assert rc == 1, out
    capsys.readouterr()  # the first storm's summary
    live: dict[str, str] = {}
    for mac in MACS:
        last = json.loads((flash / mac / "last-boot.json").read_text())
        assert last["deciding_rule"] == UNTRUSTED, last
        assert f"{NO_TVS_ANSWER}{HOST}:" in last["deciding"] and REFUSED in last["deciding"]
        live[mac] = last["deciding"]

    assert main(["replay", str(pcap), "--all", "--keylog", str(keys), "--fleet-flash", str(before),
                 "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    records = {r["mac"]: r for r in doc["records"]}
    assert sorted(records) == MACS
    for mac, record in records.items():
        boot = record["boots"][-1]
        assert boot["rule"] == UNTRUSTED, boot
        assert live[mac] == f"{UNTRUSTED} (rejected) ITLSEP{mac}.tlv: {boot['reason']}"
    assert doc["by_rule"] == {UNTRUSTED: len(MACS)}
    assert "tvs start" not in json.dumps(doc["ways_out"])  # TVS was up: bringing it back is no way out

    mac = MACS[-1]
    assert main(["replay", str(pcap), "--mac", mac, "--keylog", str(keys), "--flash", str(before / mac),
                 "--json"]) == 1
    d = json.loads(capsys.readouterr().out)["boots"][-1]["report"]["deciding"]
    assert f"{d['rule']} (rejected) {d['file']}: {d['reason']}" == live[mac]


SCENARIO = """
name: tvs-refused-tls13
phones:
  p: {count: 2, mac_start: 0A0000007201, profile: {base: cp-8861, tls_versions: ["1.3"]}}
steps:
  - boot: p
  - admin: {op: regenerate, cert: tvs}
  - admin: {op: regenerate, cert: itlrecovery}
  - reset: p
  - expect: {phones: p, itl: rejected, deciding_rule: G.3.4-tvs-server-untrusted, locked_out: true}
  # fails on purpose: a failing expectation's report holds each phone's deciding decision
  - expect: {phones: p, deciding_rule: G.4-signed-by-itl-tftp, xfail: the deciding decisions recorded}
"""


def test_tls13_refused_tvs_certificate_is_read_from_the_decrypted_handshake(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """§E.1, §G.3.4 over TLS 1.3 (the certificate travels encrypted): a scenario's phones refuse the
    regenerated TVS; ``replay --mac`` of its capture reads the certificate with the key log's server
    handshake secret and decides as the live phone, rule and reason."""
    monkeypatch.setenv("PHONEEMU_LAB_HOST_BASE", "35")  # no other test's clusters in the pcap
    scenario = tmp_path / "tvs-refused-tls13.yaml"
    scenario.write_text(SCENARIO)
    assert main(["run", str(scenario), "--capture", str(tmp_path), "--json", str(tmp_path / "run.json")]) == 0
    capsys.readouterr()
    if (tmp_path / "tvs-refused-tls13.note.txt").exists():
        pytest.skip("synthetic capture (no raw socket): TLS not in the pcap")
    keys = tmp_path / "tvs-refused-tls13.keys"
    assert "SERVER_HANDSHAKE_TRAFFIC_SECRET" in keys.read_text()
    live = json.loads((tmp_path / "run.json").read_text())["scenarios"][0]["expectations"][1]["deciding"]
    assert sorted(live) == ["0A0000007201", "0A0000007202"]
    for mac, deciding in live.items():
        assert deciding.startswith(UNTRUSTED) and REFUSED in deciding
        assert main(["replay", str(tmp_path / "tvs-refused-tls13.pcap"), "--mac", mac, "--keylog", str(keys),
                     "--json"]) == 1
        d = json.loads(capsys.readouterr().out)["boots"][-1]["report"]["deciding"]
        assert f"{d['rule']} (rejected) {d['file']}: {d['reason']}" == deciding


# --------------------------------------------------------------------------- the certificate shown
@cache
def _identity() -> tuple[Any, Any]:
    now = dt.datetime.now(dt.UTC)
    key = generate_key(KeySpec.parse("ec-p256"))
    req = CertRequest(subject="CN=lab-pub-TVS;O=phoneemu", public_key=key.public_key(), serial=21,
                      not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=30))
    return key, issue_certificate(req, issuer_key=key)


def _refused_handshake(tmp_path: Path, version: str) -> tuple[bytes, bytes, str]:
    """A client that completes the handshake and sends nothing (as a phone refusing the server's
    certificate): (client bytes, server bytes, key log text)."""
    key, cert = _identity()
    keylog = tmp_path / f"keys-{version}.log"
    sctx = server_context(cert, key, min_version=version, max_version=version)
    cctx = client_context_verify_after_handshake(min_version=version, max_version=version,
                                                 keylog_filename=keylog)
    pair = MemoryTlsPair(cctx, sctx)
    pair.handshake()
    return bytes(pair.to_server), bytes(pair.to_client), keylog.read_text()


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_the_certificate_a_refusing_client_was_shown(tmp_path: Path, version: str) -> None:
    """§E.1: TLS 1.2 shows it in clear (no key log needed); TLS 1.3 from the handshake records opened
    with ``SERVER_HANDSHAKE_TRAFFIC_SECRET``; without that secret, None and why."""
    client, server, text = _refused_handshake(tmp_path, version)
    der = cert_der(_identity()[1])
    assert presented_certificate(client, server, parse_keylog(text)) == (der, "")
    without = parse_keylog("\n".join(line for line in text.splitlines()
                                     if not line.startswith("SERVER_HANDSHAKE_TRAFFIC_SECRET")))
    got, why = presented_certificate(client, server, without)
    if version == "1.2":
        assert got == der
    else:
        assert got is None and "SERVER_HANDSHAKE_TRAFFIC_SECRET" in why


# --------------------------------------------------------------------------- the asker's convention
TVS_A, TVS_B = ("10.0.0.5", 2445), ("10.0.0.6", 2445)
GOOD, BAD = b"the ITL's TVS", b"a regenerated TVS"


def _shown(server: tuple[str, int], cert: bytes, order: int, client: str = "10.1.0.9",
           mac: str | None = None) -> CapturedCert:
    return CapturedCert(start=float(order), client=(client, 40000 + order), server=server, certificate=cert,
                        order=order, mac=mac)


def _ask(capture: TvsCapture, servers: list[tuple[str, int]], *, window: tuple[float, float] = (0, 100),
         clients: frozenset[str] = frozenset()) -> tuple[Any, list[bytes | None]]:
    """Ask as a phone whose ITL names ``GOOD`` only: (the answer or TransportError, what it judged)."""
    judged: list[bytes | None] = []

    def accept(der: bytes | None) -> bool:
        judged.append(der)
        return der == GOOD

    class Key:
        issuer, serial, subject = "CN=ITLRECOVERY", b"\x01", "CN=ITLRECOVERY"

    ask = capture.asker(lambda: window, clients=lambda: clients)
    try:
        return asyncio.run(ask(servers, Key(), device_name="SEP0A0000007301", accept_server=accept)), judged
    except TransportError as exc:
        return exc, judged


def _capture(*shown: CapturedCert) -> TvsCapture:
    return TvsCapture(exchanges=(), tls_connections=len(shown), not_tvs=len(shown), problems=(),
                      presented=shown)


def test_every_server_refused_is_the_live_clients_failure() -> None:
    """§E.1 failover: each server in priority order, the first connection to it in the window judged;
    all refused → the live client's "no TVS server answered" naming each (kind tls)."""
    exc, judged = _ask(_capture(_shown(TVS_B, BAD, 5), _shown(TVS_A, BAD, 7)), [TVS_A, TVS_B])
    assert isinstance(exc, TransportError) and exc.kind == "tls"
    assert exc.message == f"{NO_TVS_ANSWER}10.0.0.5:2445: {REFUSED}; 10.0.0.6:2445: {REFUSED}"
    assert judged == [BAD, BAD]


@pytest.mark.parametrize(("shown", "window", "clients", "judged"), [
    ([_shown(TVS_A, BAD, 5)], (6, 100), frozenset(), []),  # before the boot's window
    ([_shown(TVS_A, BAD, 5)], (0, 5), frozenset(), []),  # at the next boot's start
    ([_shown(TVS_A, BAD, 5, client="10.1.0.8")], (0, 100), frozenset({"10.1.0.9"}), []),  # another phone
    ([_shown(TVS_A, BAD, 5, mac="0A0000007302")], (0, 100), frozenset(), []),  # its client cert: another
    ([_shown(("10.0.0.5", 3804), BAD, 5)], (0, 100), frozenset(), []),  # CAPF, not the TVS port
    ([_shown(TVS_A, GOOD, 5)], (0, 100), frozenset(), [GOOD]),  # accepted: it would have asked
    ([_shown(TVS_A, BAD, 5), _shown(TVS_B, GOOD, 6)], (0, 100), frozenset(), [BAD, GOOD]),
])
def test_no_refusal_of_this_phone_stays_unreachable(shown: list[CapturedCert], window: tuple[float, float],
                                                    clients: frozenset[str], judged: list[bytes]) -> None:
    """A connection outside the window, from another phone's address or certificate, to another port,
    or one the phone accepts (its QUERY is then what is missing): "unreachable", as before."""
    exc, seen = _ask(_capture(*shown), [TVS_A, TVS_B], window=window, clients=clients)
    assert isinstance(exc, TransportError) and exc.kind == "unreachable"
    why = "no such TVS query of this phone in the capture"  # of each server, as the live client says it
    assert exc.message == f"{NO_TVS_ANSWER}10.0.0.5:2445: {why}; 10.0.0.6:2445: {why}"
    assert seen == judged


def test_a_server_not_reached_is_named_and_each_connection_used_once() -> None:
    """The first server without a connection in the capture counts as not reached; the second ask of
    a boot takes the next connection, none left → unreachable."""
    capture = _capture(_shown(TVS_B, BAD, 5))
    exc, _ = _ask(capture, [TVS_A, TVS_B])
    assert isinstance(exc, TransportError) and exc.kind == "tls"
    assert exc.message == f"{NO_TVS_ANSWER}10.0.0.5:2445: no connection to it in the capture; " \
                          f"10.0.0.6:2445: {REFUSED}"
    judged: list[bytes | None] = []
    ask = capture.asker(lambda: (0, 100))

    class Key:
        issuer, serial, subject = "CN=X", b"\x01", "CN=X"

    def accept(der: bytes | None) -> bool:
        judged.append(der)
        return False

    async def twice() -> list[str]:
        out = []
        for _ in range(2):
            try:
                await ask([TVS_B], Key(), device_name="SEP0A0000007301", accept_server=accept)
            except TransportError as exc:
                out.append(exc.kind)
        return out
    assert asyncio.run(twice()) == ["tls", "unreachable"] and judged == [BAD]


# --------------------------------------------------------------------------- bounded
def test_connections_without_a_request_are_kept_within_their_caps(tmp_path: Path) -> None:
    """Module rules, "A TVS server the phone refused": ``limit`` connections of anyone, beyond that the
    replayed phone's (its client addresses) up to twice ``limit``; ``--all``: each counted at
    PRESENTED_COST against half the budget, beyond it not kept, with one warning."""
    from phoneemu.scenario.replay_fleet import PRESENTED_COST, _Allowance, _FleetTvs
    from phoneemu.scenario.replay_tvs import TvsCollector

    client, server, text = _refused_handshake(tmp_path, "1.2")
    log = parse_keylog(text)

    def feed(collector: TvsCollector, address: str, n: int) -> None:
        collector.connection(client=(address, 40000 + n), server=TVS_A, start=float(n), order=n,
                             client_stream=client, server_stream=server, problem="")

    mine = {"10.1.0.9"}
    one = TvsCollector(log, mac="0A0000007301", limit=2, addresses=mine)
    for n, address in enumerate(["10.1.0.8", "10.1.0.7", "10.1.0.6", "10.1.0.9", "10.1.0.9", "10.1.0.9"]):
        feed(one, address, n)
    kept = one.result(6)
    assert [c.client[0] for c in kept.presented] == ["10.1.0.8", "10.1.0.7", "10.1.0.9", "10.1.0.9"]
    assert kept.unlisted_presented == 2 and len({id(c.certificate) for c in kept.presented}) == 1

    # the distinct certificates' bytes are bounded too (~80 KiB each: 1,000 would be ~80 MiB)
    import phoneemu.scenario.replay_tvs as replay_tvs
    from phoneemu.net.tls_decrypt import presented_certificate

    small = TvsCollector(log, limit=10)
    cert_size = len(presented_certificate(client, server, log)[0] or b"")
    assert cert_size > 0
    old = replay_tvs.MAX_CERTIFICATE_BYTES
    replay_tvs.MAX_CERTIFICATE_BYTES = cert_size - 1
    try:
        feed(small, "10.1.0.8", 0)
    finally:
        replay_tvs.MAX_CERTIFICATE_BYTES = old
    assert small.result(1).presented == () and small.result(1).unlisted_presented == 1

    warnings: list[str] = []
    fleet = _FleetTvs(log, _Allowance(4 * PRESENTED_COST), warnings.append)  # half: 2 connections
    for n in range(4):
        feed(fleet, "127.0.0.1", n)
    assert len(fleet.presented) == 2 and fleet.unlisted_presented == 2
    assert len(warnings) == 1 and "--max-memory" in warnings[0]
