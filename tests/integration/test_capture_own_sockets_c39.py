"""``run --capture`` sorting the lab range's packets into ours and other programs': a server of ours that
no look at the socket tables classified right is still ours.

Found by a replay missing a migration's second boot (the RSA-1024 copy of the catalogue's migration, a
loaded machine with other programs' sockets): the new cluster's HTTP server was either opened while a
look read the socket table (listed before our descriptors were, it was taken for another program's), or
never seen by a look at all (a look over thousands of sockets took 0.2-0.5 s and waited four times that
before the next, longer than the cluster's servers lived) while another program's UDP socket on
``0.0.0.0`` had its TCP port number (the endpoint was known by address and port only): every packet of
the boot was left out as another program's.

The certain fix came after (c39b): the lab servers declare each service's protocol, address and port
to the capture as it listens, so a server no look saw at all is ours, and stays ours for the run.

Live capture needs root (CAP_NET_RAW) and Linux; elsewhere these tests are skipped. No look runs but the
one each test makes (the capture thread's own are switched off): the timing a loaded machine gives,
made certain.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from phoneemu.errors import ScenarioError
from phoneemu.lab.servers import LabServers
from phoneemu.net.capture import read_pcap
from phoneemu.net.http import http_get
from phoneemu.scenario import capturing
from phoneemu.scenario.capturing import LiveCapture, open_capture
from tests.helpers import pristine_lab, run

LAB = "127.0.0.87"  # the lab range of these tests' captures (no other test uses it)
NOW = 1_700_000_000
base_lab, lab = pristine_lab("capture-declared", now=NOW, phones={})

#: another program: a UDP socket bound to 0.0.0.0 on an ephemeral port, held until told
HOLDER = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 0))
print(s.getsockname()[1], flush=True)
sys.stdin.readline()
"""

#: another program: a TCP socket bound to 0.0.0.0 (listening) on an ephemeral port, held until told
TCP_HOLDER = HOLDER.replace("SOCK_DGRAM)", "SOCK_STREAM)").replace("0))", "0)); s.listen(1)")

#: another program's TCP server on the address and port of argv: one connection, a request and its answer
FOREIGN_SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # our server's connection may be in TIME_WAIT
s.bind((sys.argv[1], int(sys.argv[2])))
s.listen(1)
print("listening", flush=True)
s.settimeout(10)
conn, _ = s.accept()
conn.settimeout(10)
conn.recv(100)
conn.sendall(b"answer foreign")
conn.close()
s.close()
"""


@pytest.fixture
def one_look(monkeypatch: pytest.MonkeyPatch) -> Callable[[LiveCapture], None]:
    """Switch off the capture thread's looks at the socket tables; the look the test makes instead."""
    look = LiveCapture._scan
    monkeypatch.setattr(LiveCapture, "_scan", lambda _self: None)
    return look


def _capture(tmp_path: Path) -> LiveCapture:
    try:
        sink, _ = open_capture(tmp_path, "own", mode="live", hosts=(LAB, LAB))
    except ScenarioError as exc:  # no packet socket here
        pytest.skip(f"live capture not possible here: {exc}")
    assert isinstance(sink, LiveCapture)
    return sink


def _listener(port: int = 0) -> socket.socket:
    s = socket.socket()
    s.bind((LAB, port))
    s.listen(1)
    return s


def _exchange(listener: socket.socket) -> None:
    """One TCP connection to ``listener``: a request and its answer."""
    with socket.create_connection(listener.getsockname(), timeout=5) as client:
        conn, _ = listener.accept()
        with conn:
            client.sendall(b"GET ours")
            assert conn.recv(100) == b"GET ours"
            conn.sendall(b"answer ours")
            assert client.recv(100) == b"answer ours"


def _payloads(sink: LiveCapture) -> list[bytes]:
    return [p.payload for p in read_pcap(sink.path)]


@pytest.mark.parametrize("when", ["opened", "closed"])
def test_a_server_opened_or_closed_while_a_look_reads_the_table_is_ours(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, one_look: Callable[[LiveCapture], None],
        when: str) -> None:
    """Our server opened while the look reads the socket table (after our descriptors were listed) is
    ours: its packets are in the pcap (before: taken for another program's socket, left out). One closed
    then (the table lists it, the descriptors no longer) is ours too."""
    sink = _capture(tmp_path)
    servers: list[socket.socket] = [] if when == "opened" else [_listener()]
    read = capturing._proc_endpoints

    def reading(table: str) -> list[tuple[int, int, int]]:
        if when == "opened" and not servers:
            servers.append(_listener())
        found = read(table)
        if when == "closed":
            servers[0].close()
        return found

    try:
        if when == "closed":
            _exchange(servers[0])
        monkeypatch.setattr(capturing, "_proc_endpoints", reading)
        one_look(sink)
        if when == "opened":
            _exchange(servers[0])
    finally:
        servers[0].close()
        sink.close()
    payloads = _payloads(sink)
    assert b"GET ours" in payloads and b"answer ours" in payloads
    assert sink.dropped_foreign == 0


@contextlib.contextmanager
def _holding(script: str) -> Iterator[int]:
    """Another program holding the socket ``script`` binds (on 0.0.0.0) while the block runs; its port."""
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        yield int(proc.stdout.readline())
    finally:
        proc.stdin.close()
        proc.wait(10)
        proc.stdout.close()


@pytest.fixture
def udp_holder() -> Iterator[int]:
    """Another program holding a UDP socket on 0.0.0.0; its port."""
    with _holding(HOLDER) as port:
        yield port


def test_another_programs_udp_socket_on_our_tcp_servers_port_leaves_its_packets_ours(
        tmp_path: Path, one_look: Callable[[LiveCapture], None], udp_holder: int) -> None:
    """Our TCP server no look saw (opened after it, closed before the next) has the port number of another
    program's UDP socket on 0.0.0.0, which the look did see: a different socket, so the server's packets
    are kept (before: the endpoint known by address and port only, they were left out as that program's)."""
    sink = _capture(tmp_path)
    try:
        one_look(sink)
        seen = {(addr, port) for *_proto, addr, port in sink._foreign}  # (either shape of the endpoint)
        assert (0, udp_holder) in seen  # the other program's socket was looked at
        with _listener(udp_holder) as server:
            _exchange(server)
    finally:
        sink.close()
    payloads = _payloads(sink)
    assert b"GET ours" in payloads and b"answer ours" in payloads
    assert sink.dropped_foreign == 0


async def _serve_a_file(cluster: Any, sink: LiveCapture | None, http_port: int) -> bytes:
    """The lab's servers on ``LAB`` (HTTP on ``http_port``) with ``sink`` as their capture: one download of
    ``ITLFile.tlv`` over HTTP, then every server stopped."""
    async with LabServers(cluster, host=LAB, http_port=http_port, capture=sink) as servers:
        return await http_get(LAB, servers.ports["http"], "ITLFile.tlv")


def test_a_lab_server_no_look_saw_is_ours_though_another_program_had_its_port(
        tmp_path: Path, one_look: Callable[[LiveCapture], None], lab: Any) -> None:
    """The lab's HTTP server is started and used with no look at all, on the TCP port another program's
    socket on 0.0.0.0 had when the one look ran: the server declared itself to the capture as it listened,
    so its packets are kept (before: the look's endpoint made them that program's, all left out)."""
    sink = _capture(tmp_path)
    try:
        with _holding(TCP_HOLDER) as port:
            one_look(sink)
        assert (socket.IPPROTO_TCP, 0, port) in sink._foreign  # the other program's socket was looked at
        itl = run(_serve_a_file(lab, sink, port))
    finally:
        sink.close()
    assert itl == lab.get("ITLFile.tlv")
    payloads = b"".join(_payloads(sink))
    assert itl[:64] in payloads and b"GET /ITLFile.tlv" in payloads
    assert sink.dropped_foreign == 0


def test_a_declared_port_taken_by_another_program_after_its_server_closed_stays_ours(
        tmp_path: Path, one_look: Callable[[LiveCapture], None], lab: Any) -> None:
    """A declared endpoint is ours for the rest of the run (module rules): our HTTP server closes, another
    program listens on its address and port, a look sees that program's socket, and the exchange with it
    is kept all the same (the last packets of our own connections come after the close: never lost)."""
    sink = _capture(tmp_path)
    with socket.socket() as probe:  # a free port of LAB, for both servers in turn
        probe.bind((LAB, 0))
        port = probe.getsockname()[1]
    try:
        run(_serve_a_file(lab, sink, port))
        proc = subprocess.Popen([sys.executable, "-c", FOREIGN_SERVER, LAB, str(port)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        try:
            assert proc.stdout.readline().strip() == "listening"
            one_look(sink)
            assert (socket.IPPROTO_TCP, int(ipaddress.IPv4Address(LAB)), port) in sink._foreign
            with socket.create_connection((LAB, port), timeout=5) as client:
                client.sendall(b"GET foreign")
                assert client.recv(100) == b"answer foreign"
        finally:
            ended = proc.wait(10)
            proc.stdout.close()
        assert ended == 0
    finally:
        sink.close()
    payloads = _payloads(sink)
    assert b"GET foreign" in payloads and b"answer foreign" in payloads
    assert sink.dropped_foreign == 0


class _Declared:
    """A capture that only records what the lab servers declare."""

    def __init__(self) -> None:
        self.endpoints: list[tuple[str, str, int]] = []

    def udp(self, src: Any, dst: Any, payload: bytes, ts: float | None = None) -> None:
        """(The TFTP server's datagrams: not looked at.)"""

    def listening(self, protocol: str, host: str, port: int) -> None:
        self.endpoints.append((protocol, host, port))


def test_every_lab_service_declares_its_protocol_address_and_port(lab: Any) -> None:
    """Each service the lab servers start — with the others, on demand, or again after a stop — declares
    its endpoint as it listens: TFTP over UDP, the rest over TCP."""
    declared = _Declared()

    async def serve() -> tuple[dict[str, int], list[tuple[str, str, int]]]:
        async with LabServers(lab, host=LAB, capture=declared, app_https=True,
                              sip_ports={"sip": 0, "sips": 0}) as servers:
            await servers.start_service("directory")
            at_start = list(declared.endpoints)
            await servers.stop_service("tvs")
            await servers.start_service("tvs")
            return dict(servers.ports), at_start

    ports, at_start = run(serve())
    assert set(ports) >= {"tftp", "http", "tvs", "capf", "https", "directory", "sip", "sips"}
    assert sorted(at_start) == sorted(("udp" if name == "tftp" else "tcp", LAB, port)
                                      for name, port in ports.items())
    assert declared.endpoints[len(at_start):] == [("tcp", LAB, ports["tvs"])]
