"""LabServers end to end over loopback (spec §H.1, §H.6): TFTP, HTTP, lifecycle, network, ``lab serve``."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from phoneemu.commands.lab_serve import register_serve, run_serve
from phoneemu.errors import EncodeError, PhoneEmuError, TransportError
from phoneemu.formats import config, trustlist
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.net.http import http_get
from phoneemu.net.tftp import tftp_get
from phoneemu.net.tvs_client import tvs_verify
from tests.helpers import lab_template, reap, run

T = TypeVar("T")
HOST = "127.0.0.1"
MAC = "0011223344CC"
REPO = Path(__file__).resolve().parents[2]

template = lab_template("labsrv", seed=11, phones={MAC: {}})


def with_servers(cluster: LabCluster, body: Callable[[LabServers], Awaitable[T]]) -> T:
    async def main() -> T:
        async with LabServers(cluster, clock=lambda: cluster.clock + 60) as servers:
            return await body(servers)
    return run(main())


def test_itl_over_tftp_and_http_verifies(cluster: LabCluster) -> None:
    async def body(servers: LabServers) -> None:
        for name in ("ITLFile.tlv", f"ITLSEP{MAC}.tlv"):
            over_tftp = await tftp_get(HOST, servers.ports["tftp"], name, timeout=1.0)
            over_http = await http_get(HOST, servers.ports["http"], name)
            assert over_tftp == over_http == cluster.get("ITLFile.tlv")
            itl = trustlist.parse(over_tftp)
            itl.verify_self()
            assert itl.kind == "ITL"
            assert {r.role for r in itl.records} >= {trustlist.Role.SAST, trustlist.Role.TVS,
                                                     trustlist.Role.CAPF}
        assert [(r.service, r.name, r.outcome) for r in servers.requests] == [
            ("tftp", "ITLFile.tlv", "ok"), ("http", "ITLFile.tlv", "ok"),
            ("tftp", f"ITLSEP{MAC}.tlv", "ok"), ("http", f"ITLSEP{MAC}.tlv", "ok")]

    with_servers(cluster, body)


def test_ports_recorded_in_cluster_state_and_config(cluster: LabCluster) -> None:
    async def body(servers: LabServers) -> None:
        assert set(servers.ports) == {"tftp", "http", "tvs", "capf"}
        assert all(p > 0 for p in servers.ports.values())
        assert cluster.state.ports == servers.ports
        assert LabCluster.open(cluster.root).state.ports == servers.ports  # persisted
        cfg = config.parse(await tftp_get(HOST, servers.ports["tftp"], f"SEP{MAC}.cnf.xml"))
        assert cfg.tvs_servers[0].port == servers.ports["tvs"]
        assert cfg.capf_servers[0].port == servers.ports["capf"]
        assert cluster.state.log[-1].op == "ports"
        assert cluster.state.log[-1].time == cluster.clock  # dated by the scenario clock

    with_servers(cluster, body)


@pytest.mark.parametrize("name", ["../cluster.json", "/etc/passwd", "..\\cluster.json", "a/../../x",
                                  "private/../cluster.json"])
def test_traversal_refused_and_service_continues(cluster: LabCluster, name: str) -> None:
    async def body(servers: LabServers) -> None:
        with pytest.raises(TransportError) as err:
            await tftp_get(HOST, servers.ports["tftp"], name, timeout=1.0)
        assert err.value.kind in ("refused", "not-found")
        with pytest.raises(TransportError) as err:
            await http_get(HOST, servers.ports["http"], "/" + name.lstrip("/"))
        assert err.value.kind in ("refused", "not-found")
        assert {r.outcome for r in servers.requests} <= {"refused", "not-found"}
        assert trustlist.parse(await tftp_get(HOST, servers.ports["tftp"], "ITLFile.tlv")).kind == "ITL"
        assert await http_get(HOST, servers.ports["http"], "ITLFile.tlv") == cluster.get("ITLFile.tlv")

    with_servers(cluster, body)


def test_missing_file_is_not_found(cluster: LabCluster) -> None:
    async def body(servers: LabServers) -> None:
        with pytest.raises(TransportError) as err:
            await tftp_get(HOST, servers.ports["tftp"], "CTLFile.tlv", timeout=1.0)  # not in mixed mode
        assert err.value.kind == "not-found"
        with pytest.raises(TransportError) as err:
            await http_get(HOST, servers.ports["http"], "CTLFile.tlv")
        assert err.value.kind == "not-found"

    with_servers(cluster, body)


def test_stop_and_start_service_on_same_port(cluster: LabCluster) -> None:
    cm = cluster.callmanager().der

    async def body(servers: LabServers) -> None:
        ports = dict(servers.ports)
        await servers.stop_service("tvs")
        assert not servers.running("tvs")
        with pytest.raises(TransportError) as err:
            await tvs_verify([(HOST, ports["tvs"])], "CP-8861-SEP" + MAC, cm, timeout=1.0)
        assert err.value.kind == "unreachable"
        await servers.start_service("tvs")
        assert servers.ports == ports
        assert (await tvs_verify([(HOST, ports["tvs"])], "CP-8861-SEP" + MAC, cm, timeout=2.0)).valid

        await servers.stop_service("tftp")
        with pytest.raises(TransportError) as err:
            await tftp_get(HOST, ports["tftp"], "ITLFile.tlv", timeout=0.1, retries=1)
        assert err.value.kind in ("timeout", "unreachable")
        await servers.start_service("tftp")
        assert servers.ports["tftp"] == ports["tftp"]
        assert await tftp_get(HOST, ports["tftp"], "ITLFile.tlv") == cluster.get("ITLFile.tlv")

        await servers.stop_service("http")
        with pytest.raises(TransportError) as err:
            await http_get(HOST, ports["http"], "ITLFile.tlv", timeout=1.0)
        assert err.value.kind == "unreachable"
        await servers.start_service("http")
        assert await http_get(HOST, ports["http"], "ITLFile.tlv") == cluster.get("ITLFile.tlv")

        with pytest.raises(Exception, match="unknown service"):
            await servers.stop_service("ftp")

    with_servers(cluster, body)


def test_set_network_fail_makes_named_files_fail(cluster: LabCluster) -> None:
    async def body(servers: LabServers) -> None:
        servers.set_network(fail=[f"ITLSEP{MAC}.tlv", "ITL*.tlv"])
        for name in ("ITLFile.tlv", f"ITLSEP{MAC}.tlv"):
            with pytest.raises(TransportError) as err:
                await http_get(HOST, servers.ports["http"], name)
            assert err.value.kind == "error" and err.value.code == 500
            with pytest.raises(TransportError) as err:
                await tftp_get(HOST, servers.ports["tftp"], name, timeout=1.0)
            assert err.value.kind == "error"
        # other files are served as usual, and set_network() clears the failures
        tones = await http_get(HOST, servers.ports["http"], "g3-tones.xml.sgn")
        assert tones == cluster.get("g3-tones.xml.sgn")
        servers.set_network()
        assert await http_get(HOST, servers.ports["http"], "ITLFile.tlv") == cluster.get("ITLFile.tlv")

    with_servers(cluster, body)


def test_every_node_runs_tvs_and_sync_nodes(cluster: LabCluster) -> None:
    async def body(servers: LabServers) -> None:
        notices: list[str] = []
        servers.on_notice = notices.append
        cluster.add_node()
        await servers.sync_nodes()
        assert servers.running("tvs-2") and cluster.state.ports["tvs-2"] == servers.ports["tvs-2"]
        # lab serve prints what it starts (it had said nothing of node 2's TVS)
        assert notices == [f"tvs-2 listening on tls {HOST}:{servers.ports['tvs-2']} (a node was added)"]
        cfg = config.parse(cluster.get(f"SEP{MAC}.cnf.xml") or b"")
        assert [s.port for s in cfg.tvs_servers] == [servers.ports["tvs"], servers.ports["tvs-2"]]
        reply = await tvs_verify([(HOST, servers.ports["tvs-2"])], "SEPX", cluster.tvs_identity(2).der)
        assert reply.server_cert == cluster.tvs_identity(2).der  # node 2's TVS presents its own identity
        await servers.stop_service("tvs-2")
        assert not servers.running("tvs-2")
        await servers.start_service("tvs-2")
        assert servers.running("tvs-2")
        cluster.remove_node()
        await servers.sync_nodes()
        assert "tvs-2" not in servers.ports and "tvs-2" not in cluster.state.ports
        assert notices[-1] == "tvs-2 stopped (its node was removed)"
        with pytest.raises(Exception, match="unknown service"):
            servers.running("tvs-2")

    with_servers(cluster, body)


def test_set_network_loss_and_delay(cluster: LabCluster) -> None:
    async def body(servers: LabServers) -> None:
        itl = cluster.get("ITLFile.tlv")  # after start(): the port record re-signed the files
        # the server resends a lost DATA on its own timer (1 s unless the network sets it): the client's
        # 0.1 s here, or each of the transfer's losses costs a second
        servers.set_network(loss=0.2, seed=3, tftp_timeout_s=0.1)
        assert servers.tftp is not None and servers.tftp.loss == 0.2
        got = await tftp_get(HOST, servers.ports["tftp"], "ITLFile.tlv", timeout=0.1, retries=30)
        assert got == itl
        assert servers.tftp.retransmits > 0  # some datagrams were dropped and sent again

        servers.set_network(loss=0.999, seed=1)
        with pytest.raises(TransportError):
            await http_get(HOST, servers.ports["http"], "ITLFile.tlv", timeout=2.0)
        assert servers.requests[-1].outcome == "dropped"

        servers.set_network(delay_s=0.2)
        t0 = time.monotonic()
        assert await http_get(HOST, servers.ports["http"], "ITLFile.tlv") == itl
        assert time.monotonic() - t0 >= 0.2
        servers.set_network()
        assert servers.tftp.loss == 0.0 and servers.tftp.delay == 0.0

    with_servers(cluster, body)


def test_set_network_sets_the_tftp_servers_retransmission_timing(cluster: LabCluster) -> None:
    """The lab's TFTP server resends a lost DATA only when its own timer runs out (a duplicate ACK is
    ignored, RFC 1123 §4.2.3.1): a lossy scenario is as fast as that timer, so the network sets it."""
    async def body(servers: LabServers) -> None:
        assert servers.tftp is not None and (servers.tftp.timeout, servers.tftp.retries) == (1.0, 5)
        servers.set_network(loss=0.1, tftp_timeout_s=0.05, tftp_retries=9)
        assert (servers.tftp.timeout, servers.tftp.retries) == (0.05, 9)
        await servers.stop_service("tftp")
        await servers.start_service("tftp")  # a restarted server keeps the network's timing
        assert servers.tftp is not None and (servers.tftp.timeout, servers.tftp.retries) == (0.05, 9)
        servers.set_network()  # a clean network: the server's own timing again
        assert (servers.tftp.timeout, servers.tftp.retries) == (1.0, 5)
        with pytest.raises(PhoneEmuError, match=r"TFTP timeout 0\.0 s is not positive"):
            servers.set_network(tftp_timeout_s=0.0)
        with pytest.raises(PhoneEmuError, match="TFTP retries -1 is negative"):
            servers.set_network(tftp_retries=-1)

    with_servers(cluster, body)


def test_bind_conflict_is_one_clear_error(cluster: LabCluster) -> None:
    async def main() -> None:
        async with LabServers(cluster) as first:
            second = LabServers(cluster, tvs_port=first.ports["tvs"])
            with pytest.raises(TransportError, match=r"cannot listen for tvs .*in use") as err:
                await second.start()
            assert err.value.kind == "in-use"
            assert second.tftp is None and second.http is None  # what had started was stopped
            for name in ("tftp", "http"):  # asyncio's long bind text (HTTP) is reduced to the reason
                taken = (LabServers(cluster, tftp_port=first.ports["tftp"]) if name == "tftp"
                         else LabServers(cluster, http_port=first.ports["http"]))
                with pytest.raises(TransportError) as err:
                    await taken.start()
                assert str(err.value) == (
                    f"cannot listen for {name} on 127.0.0.1:{first.ports[name]}: Address already in use "
                    f"(port in use, e.g. by another 'phoneemu lab serve': stop it, or pick another "
                    f"--{name}-port (0 = any free port))")
    run(main())


def test_bind_error_never_suggests_the_port_that_failed() -> None:
    """The README's ``lab serve --tftp-port 6969`` run twice: the hint names the option, not 6969 again
    (it used to say "try --tftp-port 6969"); privileges still point unprivileged TFTP to 6969."""
    import errno

    from phoneemu.lab.servers import _bind_error

    in_use = _bind_error("tftp", "127.0.0.1", 6969, OSError(errno.EADDRINUSE, "Address already in use"))
    assert "6969)" not in str(in_use) and "pick another --tftp-port" in str(in_use)
    denied = _bind_error("tftp", "127.0.0.1", 69, OSError(errno.EACCES, "Permission denied"))
    assert str(denied).endswith("(ports below 1024 need privileges; try --tftp-port 6969)")
    denied = _bind_error("capf", "127.0.0.1", 80, OSError(errno.EACCES, "Permission denied"))
    assert str(denied).endswith("(ports below 1024 need privileges; pick --capf-port 1024 or above)")


def test_changes_by_another_process_are_picked_up(cluster: LabCluster) -> None:
    """``lab serve`` watches the state file: a CLI operation elsewhere changes what TVS answers."""
    async def main() -> None:
        async with LabServers(cluster, watch=0.05) as servers:
            addr = [(HOST, servers.ports["tvs"])]
            before = await tvs_verify(addr, "CP-8861-SEP" + MAC, cluster.callmanager().der, timeout=5)
            assert before.ttl == 86400
            other = LabCluster.open(cluster.root)  # stands for another process
            other.set_tvs_ttl(3600)
            for _ in range(100):
                await asyncio.sleep(0.05)
                if cluster.state.tvs_ttl == 3600:
                    break
            after = await tvs_verify(addr, "CP-8861-SEP" + MAC, cluster.callmanager().der, timeout=5)
            assert after.ttl == 3600
    run(main())


async def until(cond: Callable[[], bool]) -> None:
    """Wait (at most 5 s, polling every 50 ms) until a served lab has followed its cluster."""
    for _ in range(100):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the served lab did not follow the cluster")


def test_lab_service_stops_and_starts_tvs_of_a_served_lab(cluster: LabCluster) -> None:
    """``phoneemu lab service DIR tvs stop`` (another process) takes a served lab's TVS down — a TVS
    outage during a certificate change — and ``start`` brings it back on the same port; a lab served
    while the cluster lists TVS as stopped starts without it."""
    notices: list[str] = []

    async def main() -> None:
        async with LabServers(cluster, watch=0.05, on_notice=notices.append) as servers:
            addr = [(HOST, servers.ports["tvs"])]
            other = LabCluster.open(cluster.root)  # stands for another process
            other.set_service("tvs", False)
            await until(lambda: servers.stopped_by_cluster == {"tvs"} and not servers.running("tvs"))
            await asyncio.sleep(0.1)  # the listener's close completes
            with pytest.raises(TransportError):
                await tvs_verify(addr, "CP-8861-SEP" + MAC, cluster.callmanager().der, timeout=2)
            assert servers.running("tftp")
            other.set_service("tvs", True)
            await until(lambda: servers.running("tvs"))
            assert servers.ports["tvs"] == addr[0][1]
            assert (await tvs_verify(addr, "CP-8861-SEP" + MAC, cluster.callmanager().der, timeout=5)).valid
            other.set_service("tvs", False)
        # lab serve's lines: each change picked up, and the service taken down and brought back
        # the first: the lab's files name the default ports, the servers listen on others
        assert notices[0].startswith("ports other than the lab recorded (tftp 69 -> ") and \
            notices[0].endswith("its files name them; rebuilding every served file (1 phone) ...")
        assert [n for n in notices[1:] if not n.startswith("picked up")][:2] == [
            "tvs stopped (phoneemu lab service ... tvs start brings it back)", "tvs started again"]
        assert LabCluster.open(cluster.root).summary()["stopped"] == ["tvs"]  # lab show says so
        async with LabServers(LabCluster.open(cluster.root), watch=0.05) as servers:
            assert not servers.running("tvs") and servers.running("capf")
        with pytest.raises(EncodeError, match="not a service of this cluster"):
            other.set_service("tvs-2", False)  # one node: no tvs-2
    run(main())


def test_a_lab_served_with_sip_names_its_registrar_in_the_configs(cluster: LabCluster) -> None:
    """``lab serve --sip-port/--sips-port``: the registrar's ports are recorded and every config's
    ``devicePool`` names them (spec §H.5; the notice says they moved from CUCM's 5060/5061); ``lab
    service DIR sip stop`` takes it down (the CallManager the configs name, down) and ``start`` back."""
    notices: list[str] = []

    async def main() -> None:
        async with LabServers(cluster, watch=0.05, on_notice=notices.append,
                              sip_ports={"sip": 0, "sips": 0}) as servers:
            assert _registrar_named(cluster) == (HOST, servers.ports["sip"], servers.ports["sips"])
            other = LabCluster.open(cluster.root)  # stands for another process
            other.set_service("sip", False)
            await until(lambda: not servers.running("sip") and servers.running("sips"))
            other.set_service("sip", True)
            await until(lambda: servers.running("sip"))
        assert f"sip 5060 -> {servers.ports['sip']}" in notices[0]
        assert f"sips 5061 -> {servers.ports['sips']}" in notices[0]
    run(main())
    assert _registrar_named(LabCluster.open(cluster.root))[1] != 5060  # kept for the next lab serve


def test_each_node_of_a_lab_served_with_sip_is_a_callmanager_of_the_configs(cluster: LabCluster) -> None:
    """Spec §H.5: a lab of several nodes served with SIP runs a registrar per node (``sip-N`` /
    ``sips-N``, node N's CallManager certificate over TLS, §G.5), records its ports and lists the nodes in
    the configs' CallManager group in node order, at most three; a node added while serving joins, a node
    removed leaves (ports and config)."""
    from phoneemu.crypto import certs
    from phoneemu.formats import config as config_fmt
    from phoneemu.net.tls import open_tls_connection, peer_certificate_der, phone_client_context

    cluster.add_node(now=cluster.clock)

    def group() -> list[tuple[int | None, int | None]]:
        cfg = config_fmt.parse(cluster.get(f"SEP{MAC}.cnf.xml") or b"")
        return [(cm.sip_port, cm.secured_sip_port) for cm in config_fmt.call_managers(cfg)]

    async def main() -> None:
        async with LabServers(cluster, sip_ports={"sip": 0, "sips": 0}) as servers:
            p = servers.ports
            assert group() == [(p["sip"], p["sips"]), (p["sip-2"], p["sips-2"])]
            _r, w = await open_tls_connection(HOST, p["sips-2"], phone_client_context(("1.2",)))
            assert peer_certificate_der(w) == certs.cert_der(cluster.callmanager(2).cert)
            w.close()
            for _ in range(2):
                cluster.add_node(now=cluster.clock)
            await servers.sync_nodes()
            assert "sips-3" in servers.ports and "sips-4" not in servers.ports and len(group()) == 3
            cluster.remove_node(now=cluster.clock)
            cluster.remove_node(now=cluster.clock)
            await servers.sync_nodes()
            assert "sips-3" not in servers.ports and "sips-3" not in cluster.state.ports and len(group()) == 2
    run(main())


def _registrar_named(cluster: LabCluster) -> tuple[str, int | None, int | None]:
    """The one CallManager a lab phone's config names: host, sipPort, securedSipPort."""
    from phoneemu.formats import config as config_fmt

    (cm,) = config_fmt.call_managers(config_fmt.parse(cluster.get(f"SEP{MAC}.cnf.xml") or b""))
    return cm.host, cm.sip_port, cm.secured_sip_port


def test_a_service_that_cannot_start_again_is_retried_and_the_watch_goes_on(cluster: LabCluster) -> None:
    """``lab service DIR tvs start`` while another program holds the TVS port: the failed restart used
    to end the watch task (no later change was followed) and made ``stop()`` raise. Now it is logged
    and tried again at each watch interval until the port is free."""
    import socket

    async def main() -> None:
        async with LabServers(cluster, watch=0.05) as servers:
            port = servers.ports["tvs"]
            other = LabCluster.open(cluster.root)  # stands for another process
            other.set_service("tvs", False)
            await until(lambda: not servers.running("tvs"))
            await asyncio.sleep(0.1)  # the listener's close completes
            squatter = socket.socket()
            try:
                squatter.bind((HOST, port))
                squatter.listen()
                other.set_service("tvs", True)
                await asyncio.sleep(0.3)  # a few watch intervals: every restart fails
                assert not servers.running("tvs")
                assert servers._watch_task is not None and not servers._watch_task.done()
            finally:
                squatter.close()
            await until(lambda: servers.running("tvs"))
            assert servers.ports["tvs"] == port
            addr = [(HOST, port)]
            assert (await tvs_verify(addr, "CP-8861-SEP" + MAC, cluster.callmanager().der, timeout=5)).valid
    run(main())


def test_a_request_right_after_a_change_elsewhere_gets_the_new_files(cluster: LabCluster) -> None:
    """With ``watch`` (``lab serve``), each TFTP/HTTP request and TVS connection first picks up a change
    another process saved: a boot right after ``phoneemu lab regenerate`` gets the new ITL, and a TVS
    query right after ``exchange``/``tvs-ttl`` the new answer, not those of a second ago."""
    async def main() -> None:
        async with LabServers(cluster, watch=3600.0) as servers:  # the periodic check never runs here
            old = await tftp_get(HOST, servers.ports["tftp"], f"ITLSEP{MAC}.tlv")
            other = LabCluster.open(cluster.root)  # stands for another process
            other.regenerate("itlrecovery")
            new = await tftp_get(HOST, servers.ports["tftp"], f"ITLSEP{MAC}.tlv")
            assert new == other.get("ITLFile.tlv") != old
            other.set_tvs_ttl(3600)  # no file request in between: the TVS connection itself reloads
            addr = [(HOST, servers.ports["tvs"])]
            after = await tvs_verify(addr, "CP-8861-SEP" + MAC, cluster.callmanager().der, timeout=5)
            assert after.ttl == 3600
            other.regenerate("callmanager")
            assert await http_get(HOST, servers.ports["http"], "ITLFile.tlv") == other.get("ITLFile.tlv")
    run(main())


def test_register_serve_adds_the_subcommand() -> None:
    parser = argparse.ArgumentParser(prog="phoneemu lab")
    sub = parser.add_subparsers(dest="lab_command")
    register_serve(sub)
    args = parser.parse_args(["serve", "--dir", "/tmp/x", "--tftp-port", "6969"])
    assert (args.tftp_port, args.http_port, args.tvs_port, args.capf_port) == (6969, 6970, 2445, 3804)
    assert callable(args.handler)
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "--dir", "/tmp/x", "--tvs-port", "70000"])
    # DIR positional, as for every other lab operation (``lab serve /tmp/lab``), or --dir; not both, not none
    assert parser.parse_args(["serve", "/tmp/x"]).dir_arg == Path("/tmp/x")
    for argv, text in ((["serve", "/tmp/x", "--dir", "/tmp/y"], "two lab directories"),
                       (["serve"], "which lab cluster?")):
        with pytest.raises(PhoneEmuError, match=text):
            run_serve(parser.parse_args(argv))


def _serve_cmd(root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "phoneemu", "lab", "serve", "--dir", str(root), "--tftp-port", "0",
            "--http-port", "0", "--tvs-port", "0", "--capf-port", "0", *extra]


def test_lab_serve_subprocess_listens_and_stops_on_sigterm(cluster: LabCluster, tmp_path: Path) -> None:
    keylog = tmp_path / "keys.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(_serve_cmd(cluster.root, "--keylog", str(keylog)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    watchdog = threading.Timer(60, proc.kill)  # a line that never comes: readline sees EOF, the test fails
    watchdog.start()
    try:
        ports: dict[str, int] = {}
        deadline = time.monotonic() + 20
        assert proc.stdout is not None
        while len(ports) < 4 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            m = re.match(r"listening (\w+)\s+\w+ 127\.0\.0\.1:(\d+)", line)
            if m:
                ports[m.group(1)] = int(m.group(2))
        assert set(ports) == {"tftp", "http", "tvs", "capf"}, proc.stderr.read() if proc.stderr else ""

        async def probe() -> None:
            data = await tftp_get(HOST, ports["tftp"], "ITLFile.tlv")
            trustlist.parse(data).verify_self()
            reply = await tvs_verify([(HOST, ports["tvs"])], "CP-8861-SEP" + MAC,
                                     LabCluster.open(cluster.root).callmanager().der, timeout=5)
            assert reply.valid
        run(probe())
        assert LabCluster.open(cluster.root).state.ports == ports
        assert keylog.exists() and "CLIENT" in keylog.read_text()  # TLS key log for Wireshark
        # another process changes the lab: the next request picks it up, and lab serve says so
        op = subprocess.run([sys.executable, "-m", "phoneemu", "lab", "regenerate", str(cluster.root),
                             "callmanager"], check=False, capture_output=True, text=True, env=env, cwd=REPO,
                            timeout=60)
        assert op.returncode == 0, op.stderr
        said_by_operation = op.stdout.splitlines()[-1]
        assert said_by_operation.startswith("generation ")
        run(tftp_get(HOST, ports["tftp"], "ITLFile.tlv"))
        line = proc.stdout.readline()
        if line.startswith("Ctrl-C"):  # the last line of the start-up banner
            line = proc.stdout.readline()
        assert re.fullmatch(r"\d\d:\d\d:\d\d picked up a change to the lab: (.*)\n", line), line
        assert line.split(": ", 1)[1].rstrip("\n") == said_by_operation
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        watchdog.cancel()
        reap(proc)


def test_lab_serve_port_in_use_is_one_line_exit_2(cluster: LabCluster) -> None:
    async def main() -> subprocess.CompletedProcess[str]:
        blocker = await asyncio.start_server(lambda r, w: None, HOST, 0)
        port = int(blocker.sockets[0].getsockname()[1])
        try:
            cmd = [*_serve_cmd(cluster.root), "--http-port", str(port)]
            return await asyncio.to_thread(subprocess.run, cmd, capture_output=True, text=True, timeout=20,
                                           env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
        finally:
            blocker.close()
            await blocker.wait_closed()

    done = run(main())
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot listen for http" in lines[0] and "in use" in lines[0], done.stderr


def test_a_lab_served_again_keeps_its_ports_and_files(cluster: LabCluster) -> None:
    """Port 0 (and every node's TVS) takes the port the lab recorded when it is free: served again,
    a lab keeps its ports, so nothing is rebuilt and a phone's installed config still names its TVS
    servers (each restart of a two-node lab moved node 2's TVS and rebuilt every file); a recorded
    port in use gives way to any free port, as port 0 asks."""
    import socket

    cluster.add_node()
    first = with_servers(cluster, _ports)
    generation = cluster.generation
    assert with_servers(cluster, _ports) == first
    assert cluster.generation == generation  # nothing rebuilt
    with socket.socket() as taken:  # someone else now listens on node 2's TVS port
        taken.bind((HOST, first["tvs-2"]))
        taken.listen()
        moved = with_servers(cluster, _ports)
    assert moved["tvs-2"] != first["tvs-2"] and {k: moved[k] for k in ("tvs", "capf")} == \
        {k: first[k] for k in ("tvs", "capf")}
    assert cluster.state.ports["tvs-2"] == moved["tvs-2"]


async def _ports(servers: LabServers) -> dict[str, int]:
    return dict(servers.ports)
