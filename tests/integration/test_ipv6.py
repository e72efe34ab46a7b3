"""IPv6 end to end, over real ``::1`` sockets: a lab cluster on ``::1`` (configs and ITL records name
it), ``boot --tftp [::1]:PORT`` over HTTP 6970 then TFTP, TVS and CAPF over TLS, ``fleet boot``, a
scenario whose cluster is ``external: {tftp: "[::1]:PORT"}``, ``lab serve --host ::`` on both
families, and ``replay``/``wireshark`` of a capture of IPv6 packets. Every address printed is in the
bracketed form ``[::1]:PORT`` that ``--tftp`` reads back.

The CLI runs in the test's thread (``main([...])``) while the lab servers run on their own loop in a
thread (:func:`tests.helpers.lab_served_in_thread`): none of these tests but ``lab serve``'s is about the
process (a child interpreter each cost ~0.5 s of CPU).

Skipped, with the reason, on a machine without an IPv6 loopback.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.net.capture import PcapWriter, read_pcap
from tests.helpers import lab_served_in_thread, run_within

REPO = Path(__file__).resolve().parents[2]
HOST = "::1"
MAC = "0A00000006C1"
FLEET_START = 0x0A0000000600
#: the fleet's phones, five per shard: each boots as the others do (was 50, a MIC key each in the lab made
#: by each test worker, and 50 boots, on the same path)
FLEET_COUNT = 10


def _ipv6_loopback() -> str | None:
    """None when ``::1`` can be bound here, else why not."""
    if not socket.has_ipv6:
        return "Python built without IPv6 (socket.has_ipv6 is False)"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
    except OSError as exc:
        return f"no IPv6 loopback: cannot bind ::1 ({exc})"
    return None


_NO_V6 = _ipv6_loopback()
pytestmark = pytest.mark.skipif(_NO_V6 is not None, reason=_NO_V6 or "")

run = run_within(120)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``phoneemu ARGS`` in this process: exit status, stdout, stderr."""
    capsys.readouterr()
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lab initialised with ``--host ::1`` (real clock: the scenario's external cluster is dated by
    it), one phone with a pending CAPF install, the CAPF record left out of the ITL (the phone asks
    TVS about the CAPF server), and the fleet phones."""
    root = tmp_path_factory.mktemp("labv6") / "lab"
    lab = LabCluster.init(root, key_spec="rsa1024", host=HOST)  # fresh keys: a seeded lab took 4x the CPU
    lab.add_phone(MAC)
    lab.set_itl_capf(False)
    lab.set_capf([MAC], "install", auth_mode="auth-string", auth_string="123456")
    lab.add_phones([f"{FLEET_START + i:012X}" for i in range(FLEET_COUNT)])
    return root


def _closed_port(kind: int) -> int:
    """A port on ::1 nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET6, kind) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def test_lab_init_host_v6_names_it_in_configs(cluster: LabCluster) -> None:
    """``lab init --host ::1``: the config's TVS and CAPF addresses are the bare address (a config
    field holds the address alone, the port is its own element)."""
    config = (cluster.root / "tftp" / f"SEP{MAC}.cnf.xml").read_text()
    assert "<address>::1</address>" in config and "<processNodeName>::1</processNodeName>" in config
    assert "[::1]" not in config


def test_boot_v6_http_tftp_tvs_capf(cluster: LabCluster, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """``boot --tftp [::1]:PORT``: files over HTTP 6970, then (``--no-http``) over TFTP; CAPF over TLS
    to ::1, its certificate vouched for by TVS over TLS to ::1; every address shown bracketed."""
    flash = tmp_path / "ph"

    with lab_served_in_thread(cluster, host=HOST) as (srv, on_loop):
        common = ["--tftp", f"[{HOST}]:{srv.ports['tftp']}", "--http-port", str(srv.ports["http"]),
                  "--flash", str(flash), "--timeout", "2"]
        rc1, out1, err1 = cli(capsys, "boot", "--mac", MAC, "--lab", str(cluster.root), "--auth-string",
                              "123456", "--json", *common)
        rc2, out2, err2 = cli(capsys, "boot", "--no-http", *common)
        log = on_loop(lambda: [f"{r.service} {r.peer}" for r in srv.requests])
    assert rc1 == 0, out1 + err1
    doc = json.loads(out1)
    assert doc["report"]["lsc"] == "installed" and doc["report"]["tvs_used"] is True
    notes = " | ".join(str(e.get("detail", "")) for e in doc["events"])
    assert "CAPF session with [::1]:" in notes, notes
    assert "::1:" not in notes.replace("[::1]:", "")
    assert rc2 == 0, out2 + err2
    assert f"Phone {MAC}: OK" in out2
    assert any(line.startswith("http [::1]:") for line in log), log
    assert any(line.startswith("tftp [::1]:") for line in log), log


def test_boot_v6_unreachable_names_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing listens on [::1]: the HTTP URL is ``http://[::1]:PORT`` (``http://::1:PORT`` is no URL),
    the TFTP address ``[::1]:PORT``; the one-line hint names the host and each port."""
    tftp, http = _closed_port(socket.SOCK_DGRAM), _closed_port(socket.SOCK_STREAM)
    rc = main(["boot", "--tftp", f"[{HOST}]:{tftp}", "--http-port", str(http), "--mac", MAC,
               "--timeout", "0.2"])
    out, err = capsys.readouterr()
    assert rc == 1
    assert f"http://[::1]:{http}" in out and f"[::1]:{tftp}" in out, out
    assert "http://::1:" not in out and f" ::1:{tftp}" not in out
    assert err.count("\n") == 1, err
    assert f"nothing answered at [::1] (TFTP port {tftp}, HTTP port {http})" in err, err
    assert "note:" not in err  # ::1 is no address with a port in it


def test_bare_v6_with_what_looks_like_a_port_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    """``--tftp ::1:PORT`` is the IPv6 address ``::1:PORT`` on port 69 (a bare address has no port):
    when nothing answers there, the hint says how to write a port."""
    rc = main(["boot", "--tftp", "::1:6969", "--no-http", "--mac", MAC, "--timeout", "0.05"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1
    assert "nothing answered at [::1:6969] (TFTP port 69)" in err and "write --tftp [::1]:6969" in err, err


def test_fleet_boot_v6(cluster: LabCluster, capsys: pytest.CaptureFixture[str]) -> None:
    """``fleet boot --count N --tftp [::1]:PORT`` on two shards: every phone boots, files over HTTP."""
    with lab_served_in_thread(cluster, host=HOST) as (srv, _on_loop):
        rc, out, err = cli(capsys, "fleet", "boot", "--count", str(FLEET_COUNT), "--mac-start",
                           f"{FLEET_START:012X}", "--tftp", f"[{HOST}]:{srv.ports['tftp']}", "--http-port",
                           str(srv.ports["http"]), "--shards", "2", "-q")
    assert rc == 0, out + err
    assert f"{FLEET_COUNT} phones: {FLEET_COUNT} booted, 0 failed" in out and "over HTTP" in out


def test_scenario_with_external_v6_cluster(cluster: LabCluster, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """``phoneemu run`` of a scenario whose cluster is ``external: {tftp: "[::1]:PORT", sip: "[::1]:PORT"}``:
    the phone boots, then registers with the registrar the scenario names (a real cluster's)."""
    scenario = tmp_path / "v6.yaml"

    with lab_served_in_thread(cluster, host=HOST, sip_ports={"sip": 0, "sips": 0}) as (srv, _on_loop):
        scenario.write_text(
            "name: external-v6\n"
            "description: a phone boots against a cluster on ::1 and registers with its registrar\n"
            "reproduces: IPv6 loopback cluster\n"
            "clusters:\n"
            f"  real: {{external: {{tftp: \"[::1]:{srv.ports['tftp']}\", http_port: {srv.ports['http']},"
            f" use_http: true, sip: \"[::1]:{srv.ports['sip']}\", sips_port: {srv.ports['sips']}}}}}\n"
            "phones:\n"
            f"  p: {{mac: \"{FLEET_START + 7:012X}\"}}\n"
            "steps:\n"
            "  - boot: p\n"
            "  - expect: {phones: p, itl: installed, config: accepted}\n"
            "  - sip: p\n"
            "  - expect: {phones: p, sip: registered, sip_transport: tcp}\n")
        rc, out, err = cli(capsys, "run", str(scenario))
    assert rc == 0, out + err
    assert "1 passed" in out or "PASS" in out, out


def test_lab_serve_wildcard_v6_listens_on_both_families(cluster: LabCluster, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """``--host ::`` is every address: each listener is dual-stack (IPV6_V6ONLY off, so IPv4 phones
    reach it too), TCP as well as UDP; a phone boots over ::1."""
    with lab_served_in_thread(cluster, host="::") as (srv, on_loop):
        v6only = on_loop(lambda: [(name, s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
                                  for name, s in _listeners(srv)])
        rc, out, err = cli(capsys, "boot", "--tftp", f"[{HOST}]:{srv.ports['tftp']}", "--http-port",
                           str(srv.ports["http"]), "--mac", MAC, "--lab", str(cluster.root),
                           "--flash", str(tmp_path / "ph"), "--auth-string", "123456")
    assert {name for name, _ in v6only} == {"tftp", "http", "tvs", "capf"}
    assert all(flag == 0 for _, flag in v6only), v6only
    assert rc == 0, out + err


def _listeners(srv: LabServers) -> list[tuple[str, socket.socket]]:
    """The listening sockets of the lab's four services (test-only peek at the servers)."""
    found: list[tuple[str, socket.socket]] = []
    for name in ("tftp", "http", "tvs", "capf"):
        server = getattr(srv, name)
        for attr in ("_server", "_listener", "_sock", "sock", "_transport"):
            inner = getattr(server, attr, None)
            if inner is None:
                continue
            if isinstance(inner, socket.socket):
                found.append((name, inner))
            elif isinstance(getattr(inner, "sock", None), socket.socket):  # the TFTP UdpSocket
                found.append((name, inner.sock))
            elif hasattr(inner, "sockets"):
                found.extend((name, s) for s in inner.sockets)
            break
    return found


def _to_v6(src: Path, dst: Path) -> None:
    """Rewrite a reference capture's IPv4 packets as IPv6 ones between ::1 endpoints (same ports,
    payloads, TCP sequence numbers and times)."""
    with PcapWriter(dst) as w:
        for p in read_pcap(src):
            s, d = (HOST, p.sport), (HOST, p.dport)
            if p.proto == "udp":
                w.udp(s, d, p.payload, ts=p.ts)
            else:
                w.tcp(s, d, seq=p.seq, ack=p.ack, flags=p.flags, payload=p.payload, ts=p.ts)


def test_replay_and_wireshark_of_v6_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A capture of IPv6 packets replays as its IPv4 original does (TVS answers decrypted from the key
    log); ``--list``, ``--json`` and ``wireshark --print`` show the servers bracketed."""
    name = "migration-itl-signer-unknown"
    v4 = REPO / "captures" / f"{name}.pcap"
    v6 = tmp_path / f"{name}.pcap"
    _to_v6(v4, v6)
    keys = tmp_path / f"{name}.keys"
    keys.write_bytes((REPO / "captures" / f"{name}.keys").read_bytes())
    assert any(":" in p.src for p in read_pcap(v6))

    def replay(capture: Path, *extra: str) -> tuple[int, str]:
        rc = main(["replay", str(capture), *extra])
        out, err = capsys.readouterr()
        return rc, out + err

    rc4, out4 = replay(v4, "--mac", "0A0000000501", "--keylog", str(keys))
    rc6, out6 = replay(v6, "--mac", "0A0000000501", "--keylog", str(keys))
    assert rc6 == rc4
    decisions = [line for line in out4.splitlines() if "G." in line]
    assert decisions and decisions == [line for line in out6.splitlines() if "G." in line]
    assert "2 exchanges decrypted" in out6
    rc, listing = replay(v6, "--list")
    assert rc == 0 and "http [::1]:" in listing and "http ::1:" not in listing, listing
    rc, doc = replay(v6, "--list", "--json")
    assert rc == 0 and '"[::1]:' in doc and '"::1:' not in doc
    assert main(["wireshark", str(v6), "--print"]) == 0
    printed = capsys.readouterr().out
    assert "-d tcp.port==" in printed and f"tls.keylog_file:{keys}" in printed, printed


@pytest.mark.parametrize("wildcard", ["::", "[::]", "*"])
def test_lab_serve_cli_v6_wildcards(cluster: LabCluster, wildcard: str) -> None:
    """``lab serve --host ::`` (or ``[::]``, ``*``: the same wildcard) listens on every address, says
    so, and keeps the address the configs name; ``[::]`` and ``*`` were accepted, then failed to bind."""
    async def body() -> tuple[str, int | None]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "phoneemu", "lab", "serve", str(cluster.root), "--host", wildcard,
            "--tftp-port", "0", "--http-port", "0", "--tvs-port", "0", "--capf-port", "0",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=REPO)
        assert proc.stdout is not None
        lines: list[str] = []
        try:
            for _ in range(20):  # bounded: the banner is a few lines
                line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
                lines.append(line)
                if not line or line.startswith("listening capf"):
                    break
        finally:
            if proc.returncode is None:
                proc.terminate()
            await asyncio.wait_for(proc.wait(), 30)
            # read the pipe to its end: its transport closes here, not in a later test's garbage
            # collection (a ResourceWarning that test would be blamed for)
            await asyncio.wait_for(proc.stdout.read(), 30)
        return "".join(lines), proc.returncode

    text, _ = run(body())
    assert "listening on every address, IPv4 and IPv6; configs and ITL records name ::1" in text, text
    assert "listening tftp udp [::]:" in text and "listening capf tls [::]:" in text, text


def test_replay_of_v6_tftp_downloads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """TFTP transfers over IPv6 (a cp-7962's, whose TID port differs from port 69's) reassemble and
    replay as their IPv4 original."""
    name = "sha512-signing-sha1-phone"
    v4 = REPO / "captures" / f"{name}.pcap"
    v6 = tmp_path / f"{name}.pcap"
    _to_v6(v4, v6)
    outs = []
    for capture in (v4, v6):
        rc = main(["replay", str(capture), "--mac", "0A0000001602"])
        outs.append((rc, [line for line in capsys.readouterr().out.splitlines() if "G." in line]))
    assert outs[0] == outs[1] and outs[0][1]
    assert main(["replay", str(v6), "--list"]) == 0
    assert "tftp [::1]:" in capsys.readouterr().out
