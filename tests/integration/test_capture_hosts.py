"""``boot``/``fleet boot --capture``: the hosts a phone connects to are in the pcap however short the
connection, unrelated hosts' are not (and the note says so); packet times are the kernel's.

Live capture needs root (CAP_NET_RAW) and Linux; elsewhere these tests are skipped. The capture thread
is held back (its reading gated) so that it reads a connection's SYN only once the connection is over:
the race a short TVS exchange loses in a real boot, made certain.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.errors import PhoneEmuError, ScenarioError
from phoneemu.net import capture as capture_module
from phoneemu.net.capture import read_pcap
from phoneemu.scenario.capturing import LiveCapture
from tests.helpers import tftp_exchange_with_a_transfer_port, v6_loopback_missing

# addresses no other test uses (xdist workers capture side by side)
TFTP_HOST = "127.0.0.74"  # the capture's --tftp host (SINK_HOSTS: a test's own)
PHONE_PEER = "127.0.0.75"  # a server a phone connects to (IPv4 case)
OTHER_PEER = "127.0.0.76"  # a server another program connects to
SHARD_PEER = "127.0.0.77"  # a server a phone of another process (a fleet shard) connects to
#: the --tftp host of the tests that send datagrams with it, one each: a capture keeps every packet with
#: its host, and this file's tests run side by side on xdist workers (test_packet_times_are_the_kernels
#: read the "first" datagram of test_a_capture_thread_slow_to_stop_still_leaves_the_pcap as its own)
SINK_HOSTS = {
    "test_packet_times_are_the_kernels": "127.0.0.80",
    "test_a_capture_thread_slow_to_stop_still_leaves_the_pcap": "127.0.0.81",
    "test_packets_still_unread_when_the_drain_ends_are_said": "127.0.0.82",
}


class Gate:
    """Hold the capture thread before it reads anything, until :meth:`release`."""

    def __init__(self, sink: LiveCapture, host: str = TFTP_HOST) -> None:
        self.entered, self.released = threading.Event(), threading.Event()
        read = sink._read_ready

        def gated(sock: socket.socket | None = None, until: float | None = None) -> int:
            self.entered.set()
            self.released.wait(10)
            return read(sock, until)

        sink._read_ready = gated  # type: ignore[method-assign]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:  # a packet with the TFTP host
            udp.bind((host, 0))
            udp.sendto(b"arm", udp.getsockname())
            assert self.entered.wait(5), "the capture thread read nothing"

    def release(self) -> None:
        self.released.set()


@pytest.fixture
def sink_host(request: pytest.FixtureRequest) -> str:
    """The test's --tftp host (``SINK_HOSTS``)."""
    return SINK_HOSTS.get(request.function.__name__, TFTP_HOST)


@pytest.fixture
def sink(tmp_path: Path, sink_host: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveCapture]:
    """The test's live capture, started once the kernel stamps packets on arrival (the capture waits for
    it, module rules; here for up to 10 s, a loaded machine: its deferred switch-on gave read-time stamps,
    a datagram of test_packet_times_are_the_kernels read 0.1 s before the one sent 0.2 s after it)."""
    from phoneemu.commands._capture import open_host_capture
    from phoneemu.scenario import capturing

    monkeypatch.setattr(capturing, "_STAMP_WAIT_S", 10.0)
    try:
        cap = open_host_capture(tmp_path / "boot.pcap", tmp_path / "boot.keys", sink_host)
    except PhoneEmuError as exc:
        pytest.skip(f"live capture not possible here: {exc}")
    assert cap is not None
    try:
        yield cap
    finally:
        cap.close()


OTHER_PROGRAM = """
import socket, sys
listener = socket.socket()
listener.bind((sys.argv[1], 0))
listener.listen(1)
with socket.create_connection(listener.getsockname(), timeout=5) as c:
    conn, _ = listener.accept()
    c.sendall(b"not the phones'" + sys.argv[2].encode() if len(sys.argv) > 2 else b"not the phones'")
    conn.recv(100)
    conn.close()
"""


@pytest.mark.parametrize("peer", [PHONE_PEER, "::1"])
def test_a_phones_short_connection_to_another_host_is_kept(sink: LiveCapture, peer: str) -> None:
    """A phone's connection to another host than ``--tftp`` (TVS, SIP: here HTTP, the same hook), over
    before the capture thread reads its SYN, is in the pcap, SYN to FIN; another program's connection
    with another host in the same moment is not, and the note file names it. (Before: the phone's was
    dropped at close, silently.)"""
    from phoneemu.net.http import HttpServer, http_get

    if peer == "::1" and (why := v6_loopback_missing()):
        pytest.skip(why)

    async def fetch() -> bytes:
        async with HttpServer({"SEP0A0000000F01.cnf.xml": b"<device/>"}, peer, 0) as srv:
            return await http_get(peer, srv.port, "SEP0A0000000F01.cnf.xml", timeout=5)

    gate = Gate(sink)
    try:
        assert asyncio.run(fetch()) == b"<device/>"
        subprocess.run([sys.executable, "-c", OTHER_PROGRAM, OTHER_PEER], check=True, timeout=10)
    finally:
        gate.release()
    sink.close()
    packets = list(read_pcap(sink.path))
    ours = [p for p in packets if peer in (p.src, p.dst)]
    assert any(p.flags & 0x12 == 0x02 for p in ours)  # the SYN
    assert any(b"GET /SEP0A0000000F01.cnf.xml" in p.payload for p in ours)
    assert any(b"<device/>" in p.payload for p in ours)
    assert not [p for p in packets if OTHER_PEER in (p.src, p.dst)]  # unrelated: left out
    note = sink.note_path.read_text()
    assert "Left out:" in note and OTHER_PEER in note and peer not in note.split("Left out:")[1]


SHARD = """
import asyncio, sys
from phoneemu.net.http import HttpServer, http_get

async def main():
    async with HttpServer({"f": b"shard"}, sys.argv[1], 0) as srv:
        assert await http_get(sys.argv[1], srv.port, "f", timeout=5) == b"shard"

asyncio.run(main())
"""


def test_a_shard_processs_short_connection_is_kept(sink: LiveCapture) -> None:
    """A process started after the capture opened (a ``fleet boot`` shard) tells it where its phones
    connect through the file its environment names: that process's connection, over and the process gone
    before the capture thread reads its SYN, is in the pcap. At close the variable and the file go."""
    peers = os.environ.get(capture_module.PEERS_ENV)
    assert peers is not None and Path(peers).is_file()
    gate = Gate(sink)
    try:
        subprocess.run([sys.executable, "-c", SHARD, SHARD_PEER], check=True, timeout=20)
    finally:
        gate.release()
    sink.close()
    assert capture_module.PEERS_ENV not in os.environ and not Path(peers).exists()
    shard = [p for p in read_pcap(sink.path) if SHARD_PEER in (p.src, p.dst)]
    assert any(p.flags & 0x12 == 0x02 for p in shard) and any(b"shard" in p.payload for p in shard)
    note = sink.note_path.read_text()  # (other tests' connections may be left out: not this one)
    assert "Left out:" not in note or SHARD_PEER not in note.split("Left out:")[1]


def test_packet_times_are_the_kernels(sink: LiveCapture, sink_host: str) -> None:
    """Two datagrams 0.2 s apart, read together by a thread that fell behind, keep their 0.2 s in the
    pcap (the kernel's receive times, SO_TIMESTAMPNS). (Before: the thread's reading time: ~0 s apart.)"""
    assert sink.kernel_timestamps
    gate = Gate(sink, sink_host)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((sink_host, 0))
            udp.sendto(b"first", udp.getsockname())
            time.sleep(0.2)
            udp.sendto(b"second", udp.getsockname())
            time.sleep(0.1)
    finally:
        gate.release()
    sink.close()
    times = {p.payload: p.ts for p in read_pcap(sink.path) if p.payload in (b"first", b"second")}
    assert 0.18 <= times[b"second"] - times[b"first"] <= 0.28
    assert abs(times[b"first"] - time.time()) < 5



@pytest.mark.parametrize("stuck", [False, True])
def test_a_capture_thread_slow_to_stop_still_leaves_the_pcap(
        sink: LiveCapture, sink_host: str, monkeypatch: pytest.MonkeyPatch, stuck: bool) -> None:
    """A busy machine: the capture thread is still in a /proc scan when ``close()`` has waited
    ``_STOP_TIMEOUT`` for it. ``close()`` waits longer (``_STOP_GRACE``); a thread stuck past that too is
    left, and the pcap is written all the same from what it spooled, the note saying the last packets may
    be missing. (Before: no pcap at all, and "capture thread stopped: OSError: Bad file descriptor" — its
    socket closed under it —, which a 3x-overloaded test run saw.)"""
    from phoneemu.scenario import capturing

    monkeypatch.setattr(capturing, "_STOP_TIMEOUT", 0.1)
    monkeypatch.setattr(capturing, "_STOP_GRACE", 0.3 if stuck else 10.0)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:  # spooled before the slow part
        udp.bind((sink_host, 0))
        udp.sendto(b"first", udp.getsockname())
        deadline = time.monotonic() + 5
        while sink._written == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert sink._written > 0
    scan, slow = sink._scan, threading.Event()

    def slow_scan() -> None:  # a scan of thousands of descriptors on an overloaded machine
        slow.set()
        time.sleep(1.0)
        scan()

    sink._scan = slow_scan  # type: ignore[method-assign]
    assert slow.wait(5)  # the thread's periodic scan (every _SCAN_S) is under way
    sink.close()
    packets = list(read_pcap(sink.path))
    assert any(p.payload == b"first" for p in packets)
    note = sink.note_path.read_text() if sink.note_path.exists() else ""
    assert ("did not stop in time" in note) == stuck
    assert "Bad file descriptor" not in note


FILTER_WANTED, FILTER_OTHER = "127.0.0.78", "127.0.0.79"  # (no other test uses them)


@pytest.mark.parametrize("v6", [False, True])
def test_the_every_interface_filter_drops_other_hosts_udp_in_the_kernel(v6: bool) -> None:
    """The every-interface socket's kernel filter (``_external_bpf_program``): the external host's UDP
    and any host's TCP pass, once (the outgoing copy on ``lo`` dropped); another host's UDP — a TFTP
    storm of another program, which filled the socket's buffer until the kernel dropped the phones'
    packets — never reaches it."""
    from phoneemu.scenario import capturing

    if v6 and (why := v6_loopback_missing()):
        pytest.skip(why)
    wanted = "::1" if v6 else FILTER_WANTED
    family = socket.AF_INET6 if v6 else socket.AF_INET
    try:
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(capturing._ETH_P_ALL))
    except (PermissionError, AttributeError, OSError) as exc:
        pytest.skip(f"no packet socket here: {exc}")
    with raw:
        wanted_packed, lo = {socket.inet_pton(family, wanted)}, socket.if_nametoindex("lo")
        capturing._attach_bpf(raw, capturing._external_bpf_program(wanted_packed, lo))
        raw.setblocking(False)
        with contextlib.suppress(BlockingIOError):  # what was queued before the filter
            for _ in range(100_000):
                raw.recv(65536)
        # this run's own payloads: both cases, and the other tests' programs, may run at once (xdist)
        tag = f" {os.getpid()} {v6}"
        marks = {b"udp-other-" + bytes([i]) for i in range(20)}
        for mark in marks:  # another host's UDP: dropped
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind((FILTER_OTHER, 0))
                udp.sendto(mark, udp.getsockname())
        udp_wanted, tcp_other = b"udp-wanted" + tag.encode(), b"not the phones'" + tag.encode()
        with socket.socket(family, socket.SOCK_DGRAM) as udp:  # the wanted host's: kept
            udp.bind((wanted, 0))
            udp.sendto(udp_wanted, udp.getsockname())
        # another host's TCP: kept (a SYN teaches the peers)
        subprocess.run([sys.executable, "-c", OTHER_PROGRAM, FILTER_OTHER, tag], check=True, timeout=10)
        got = _read_until_delivered(raw, family, wanted, [udp_wanted, tcp_other])
    assert sum(p.endswith(udp_wanted) for p in got) == 1  # once: not the outgoing copy too
    assert sum(p.endswith(tcp_other) for p in got) == 1
    assert not [p for p in got if p.endswith(tuple(marks))]


def _read_until_delivered(raw: socket.socket, family: int, host: str, payloads: list[bytes]) -> list[bytes]:
    """What ``raw`` receives until each of ``payloads`` is in and an end datagram from ``host``, sent
    after them, is too (at most 10 s): the reading ends on what it waits for, not after a set time (was:
    what was queued 50 ms after the sends; a count of 0 where 1 was expected came under load). Loopback
    hands a packet to the taps in a softirq, which a loaded machine may run late."""
    end_mark = b"filter-test-end " + os.urandom(8).hex().encode()
    got: list[bytes] = []
    sent_end = False
    deadline = time.monotonic() + 10
    poller = select.poll()
    poller.register(raw, select.POLLIN)
    while time.monotonic() < deadline and not (got and got[-1].endswith(end_mark)):
        if not sent_end and all(any(p.endswith(want) for p in got) for want in payloads):
            with socket.socket(family, socket.SOCK_DGRAM) as udp:
                udp.bind((host, 0))
                udp.sendto(end_mark, udp.getsockname())
            sent_end = True
        poller.poll(100)
        with contextlib.suppress(BlockingIOError):
            for _ in range(10_000):
                got.append(raw.recv(65536))
                if got[-1].endswith(end_mark):
                    break
    return got


def test_the_every_interface_filter_stays_within_the_kernels_bound() -> None:
    """At most ``_FILTER_V4`` IPv4 and ``_FILTER_V6`` IPv6 addresses are named: the program then holds
    at most 4,096 instructions (the kernel's BPF_MAXINSNS); past them it keeps that family whole."""
    from phoneemu.scenario import capturing

    def addresses(n4: int, n6: int) -> set[bytes]:
        return {(10 << 24 | i).to_bytes(4, "big") for i in range(n4)} | \
            {(1 << 120 | i).to_bytes(16, "big") for i in range(n6)}

    full = capturing._external_bpf_program(addresses(capturing._FILTER_V4, capturing._FILTER_V6), 1)
    assert len(full) // 8 <= 4096
    over = capturing._external_bpf_program(addresses(capturing._FILTER_V4 + 1, capturing._FILTER_V6 + 1), 1)
    assert len(over) < len(full) // 10  # both families kept whole: no address named


OTHER_TFTP = """
import socket, sys
from tests.helpers import tftp_exchange_with_a_transfer_port
lab = sys.argv[1]
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind((lab, 0))
client.bind(("127.0.0.1", 0))
print("ready", flush=True)
sys.stdin.readline()
tftp_exchange_with_a_transfer_port(server, client, lab, b"foreign.tlv", b"foreign-data")
print("done", flush=True)
sys.stdin.readline()
"""
SORTED_LAB = "127.0.0.36"  # the lab range of this test's capture (no other test uses it)
LOOKED_AT = "127.0.0.37"  # (nor this one)


def test_another_programs_short_lived_transfer_socket_is_left_out_with_its_client(tmp_path: Path) -> None:
    """Two ``phoneemu run --capture`` at once on the lab addresses: the other run's TFTP transfer socket
    closes before any look at /proc sees it, so its DATA and ACKs had only unknown endpoints and were
    kept (the pcaps of two concurrent catalogue runs held each other's transfers). Its client
    (127.0.0.1:port) was seen only with the other run's server, a socket a look did see: packets with
    that client are the other run's too. Ours — our client with our server, then our own unseen
    transfer socket — are all kept."""
    from phoneemu.scenario.capturing import open_capture

    proc = subprocess.Popen([sys.executable, "-c", OTHER_TFTP, SORTED_LAB], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None
    ours = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ours.bind((SORTED_LAB, 0))  # our server: seen by the capture's first look, as the other's is
    try:
        assert proc.stdout.readline().strip() == "ready"
        try:
            sink, _ = open_capture(tmp_path, "sorted", mode="live", hosts=(SORTED_LAB, SORTED_LAB))
        except ScenarioError as exc:  # no packet socket here
            pytest.skip(f"live capture not possible here: {exc}")
        assert isinstance(sink, LiveCapture)
        sink._scan = lambda: None  # type: ignore[method-assign]  # no later look: every transfer too short
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "done"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.bind(("127.0.0.1", 0))
            tftp_exchange_with_a_transfer_port(ours, client, SORTED_LAB, b"ours.tlv", b"our-data")
        sink.close()
    finally:
        ours.close()
        proc.stdin.close()
        proc.wait(10)
        proc.stdout.close()
    payloads = [p.payload for p in read_pcap(sink.path)]
    assert any(b"ours.tlv" in p for p in payloads) and b"\x00\x03\x00\x01our-data" in payloads
    assert payloads.count(b"\x00\x04\x00\x01") == 1  # our ACK, not theirs
    assert not [p for p in payloads if b"foreign" in p]
    assert sink.dropped_foreign == 3  # their RRQ (their server seen), DATA and ACK (their client)


def test_the_sockets_a_look_finds_are_those_of_proc_net(monkeypatch: pytest.MonkeyPatch) -> None:
    """A look at the sockets (``_proc_endpoints``) asks NETLINK_SOCK_DIAG first — the kernel leaves out
    the TIME_WAIT sockets and formats no text — and finds what ``/proc/self/net/{tcp,udp}`` lists with an
    owner; where sock_diag fails it reads /proc. The closed server end (no owner) is in neither."""
    from phoneemu.scenario import capturing

    with socket.socket() as listener, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        listener.bind((LOOKED_AT, 0))
        listener.listen(1)
        udp.bind((LOOKED_AT, 0))
        with socket.create_connection(listener.getsockname(), timeout=5) as c:
            conn, _ = listener.accept()
            conn.close()  # the server side closes first: its end goes to TIME_WAIT
            c.recv(1)
        try:
            found = {t: sorted(capturing._diag_endpoints(t)) for t in ("tcp", "udp")}
        except OSError as exc:
            pytest.skip(f"no sock_diag here: {exc}")
        monkeypatch.setattr(capturing, "_diag_endpoints", lambda _t: (_ for _ in ()).throw(OSError("no")))
        from_proc = {t: sorted(capturing._proc_endpoints(t)) for t in ("tcp", "udp")}
        lab = int.from_bytes(socket.inet_aton(LOOKED_AT), "big")
        assert (lab, listener.getsockname()[1], _inode(listener)) in found["tcp"]
        assert (lab, udp.getsockname()[1], _inode(udp)) in found["udp"]
    mine = {t: [e for e in found[t] if e[0] == lab] for t in found}  # (other tests' sockets come and go)
    assert mine == {t: [e for e in from_proc[t] if e[0] == lab] for t in from_proc}
    assert len(mine["tcp"]) == 1 and len(mine["udp"]) == 1  # the listener; not the closed end (no owner)


def _inode(sock: socket.socket) -> int:
    """The socket's inode, as /proc and sock_diag name it."""
    return int(os.readlink(f"/proc/self/fd/{sock.fileno()}")[8:-1])


def test_packets_still_unread_when_the_drain_ends_are_said(sink: LiveCapture, sink_host: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The drain after the stop is bounded (``_DRAIN_S`` + ``_HURRY_S``): a backlog the thread cannot
    read in that time (each packet slow to spool, as on a loaded machine) is said in the note and the
    summary's missing lines, and what was read is in the pcap."""
    from phoneemu.scenario import capturing

    monkeypatch.setattr(capturing, "_DRAIN_S", 0.05)
    monkeypatch.setattr(capturing, "_HURRY_S", 0.2)
    gate = Gate(sink, sink_host)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:  # a backlog with the --tftp host
        udp.bind((sink_host, 0))
        for i in range(300):
            udp.sendto(b"backlog %d" % i, udp.getsockname())
    spool = sink._spool_packet

    def slow(pkt: bytes, kind: int, ts: float) -> None:
        time.sleep(0.005)
        spool(pkt, kind, ts)

    sink._spool_packet = slow  # type: ignore[method-assign]
    gate.release()
    sink.close()
    assert sink.unread_at_stop
    assert any("had not read every packet queued at the stop" in line for line in sink.missing)
    assert "had not read every packet queued at the stop" in sink.note_path.read_text()
    assert 0 < sum(p.payload.startswith(b"backlog") for p in read_pcap(sink.path)) < 300


def test_the_phones_tcp_peers_from_sock_diag_are_those_of_proc_net(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_own_tcp_peers`` (the hosts this process's TCP sockets talk to: a capture's look for the phones'
    TVS or CAPF elsewhere) finds the same peers through sock_diag as through /proc/net/tcp{,6}: IPv4 and
    IPv6, listeners left out."""
    from phoneemu.scenario import capturing

    with contextlib.ExitStack() as stack:
        hosts = [(socket.AF_INET, LOOKED_AT)] + ([] if v6_loopback_missing() else [(socket.AF_INET6, "::1")])
        for family, host in hosts:
            listener = stack.enter_context(socket.socket(family))
            listener.bind((host, 0))
            listener.listen(1)
            stack.enter_context(socket.create_connection(listener.getsockname()[:2], timeout=5))
            stack.enter_context(listener.accept()[0])
        try:
            capturing._diag_sockets(socket.AF_INET, socket.IPPROTO_TCP, capturing._DIAG_CONNECTED)
        except OSError as exc:
            pytest.skip(f"no sock_diag here: {exc}")
        found = capturing._own_tcp_peers()
        monkeypatch.setattr(capturing, "_diag_sockets", lambda *_a: (_ for _ in ()).throw(OSError("no")))
        assert capturing._own_tcp_peers() == found
    assert {socket.inet_pton(family, host) for family, host in hosts} <= found
