"""``phoneemu run --capture DIR``: a pcap of the scenario's traffic and a TLS key log (issue #5).

Rules:

* :func:`open_capture` ``(dir, scenario_name)`` returns ``(sink, keylog_path)``. The pcap is
  ``DIR/<scenario>.pcap`` (classic libpcap, ``LINKTYPE_RAW``: bare IP packets); the key log is
  ``DIR/<scenario>.keys`` in NSS key-log format (SSLKEYLOGFILE). Both are truncated when opened, so
  one run gives one capture. Every TLS context of the run that is given the key-log path appends
  to it (the lab's TVS and CAPF servers; a server-side line names the same session secrets as the
  client's, so the servers' lines alone let Wireshark decrypt TVS and CAPF).
* **Live mode** (preferred): a background thread reads an ``AF_PACKET`` raw socket bound to the
  loopback interface ``lo`` and keeps only IPv4 packets to or from the lab addresses
  ``127.0.0.11`` to ``127.0.0.40`` (the scenario world puts cluster *n* on ``127.0.0.(11+n)``). Each
  loopback packet passes the tap twice (outgoing, then incoming); the outgoing copy
  (``PACKET_OUTGOING``) is dropped, as libpcap does on loopback, so every packet appears once. The
  14-byte (all-zero) Ethernet header of ``lo`` is stripped. A classic BPF filter does the selection in
  the kernel where it can be attached; the same test is repeated in Python. Packets stream to disk
  (bounded memory); past ``max_bytes`` (the size the pcap would reach: its header and each packet's
  record; the spool is smaller) the capture stops writing and says so in the note file, naming the
  bound as ``limit_name`` (``--capture-limit`` for ``fleet boot``). Packets of hosts not yet known to
  be ours (external mode, below) are spooled within a ``max_bytes`` of their own — other programs'
  connections cannot use up the phones' bound, and the spool stays within twice it —, and the pcap
  written at close stops at ``max_bytes`` too. Packets the kernel dropped because
  the thread could not keep up (``PACKET_STATISTICS``, read at close) are counted in ``kernel_drops``
  and the note file says so. Each packet's time is the kernel's, when it received the packet
  (``SO_TIMESTAMPNS``, read with the packet), not when the thread read it: deltas and jitter hold
  under load; where the kernel gives none, the reading time is used and the note file says so. The
  kernel turns its stamping on (for every socket at once) in a deferred work item when the first socket
  asks for it, and a packet that arrives before that runs is stamped when it is read: the capture reports
  itself started (its constructor returns) only once a probe datagram on ``_STAMP_PROBE_HOST`` (outside
  the lab range) comes back stamped before it was read — for at most ``_STAMP_WAIT_S`` seconds; past
  that it goes on and the note file says the first packets' times may be their reading's (our rule).
  ``close()`` drains what the kernel queued before the stop — ``_DRAIN_S`` seconds as usual, then
  without looks at ``/proc`` until each socket is empty or gives a packet the kernel stamped after the
  stop, for at most ``_HURRY_S`` seconds more (unread packets then are said in the note) —, stops the
  thread and flushes; a thread still busy after ``_STOP_TIMEOUT`` + ``_STOP_GRACE`` seconds (a loaded
  machine) is left, and the pcap is written from what it spooled, the note file saying the last packets
  may be missing — there is always a pcap.
* **Leave out other programs' traffic** (our rule): other programs on the same machine may use the
  same loopback addresses (e.g. a second ``phoneemu run`` at the same time). The thread spools
  candidate packets to ``<scenario>.pcap.spool`` and classifies the bound sockets in the lab range
  as *ours* or *foreign* — ``/proc/net/{tcp,udp}`` inodes (asked of NETLINK_SOCK_DIAG where the kernel
  offers it: the same sockets, without the TIME_WAIT ones) matched against ``/proc/self/fd``, listed
  before and again after the table is read (a socket of ours opened while a look reads the table, or
  closed then, is ours, never another program's), read every ``_SCAN_S`` seconds and whenever a packet
  arrives whose endpoints are not classified yet (at most every ``_RESCAN_S`` seconds); the datagrams
  servers report through :meth:`CaptureSink.udp` are ours too (the short-lived TFTP transfer sockets).
  The lab servers declare themselves (our rule): each service of :class:`phoneemu.lab.servers.LabServers`
  (TFTP, HTTP 6970, TVS and every node's, CAPF, both HTTPS, the directory, the SIP/SIPS registrars) tells
  :meth:`CaptureSink.listening` its protocol, address and port once it listens, and that endpoint is
  ours at once, with no look: a server no look saw is ours even where a look saw another program's
  socket with the same protocol and port on ``0.0.0.0`` at another moment of the run. A declared
  endpoint stays ours for the rest of the run, after its server closed too (the last packets of its
  connections come after the close: never lose our own traffic), so another program's socket that takes
  the same protocol, address and port later in the run has its packets kept — what a look that saw our
  server already did. The looks remain for what cannot declare itself: other programs' sockets (only a
  look finds them foreign) and our lab sockets no server declares (the media and on-path relay ports of
  a call). An endpoint is known by its protocol, address and port (another program's UDP socket on
  ``0.0.0.0:P`` says nothing of our TCP server on port P, nor of the TCP packets to it: different
  sockets). ``close()`` writes to the pcap every spooled packet except those whose lab endpoint is
  foreign and none ours, then removes the spool. A packet of a socket that lived too briefly to be seen
  by a scan (and declared by no server) is kept (never lose our own traffic), unless its other endpoint,
  outside the lab range (a client: 127.0.0.1:port), was seen only with foreign lab endpoints of its
  protocol (another run's TFTP transfer or TLS connection, whose server a scan saw).
  Where ``/proc`` is not readable, every packet in the lab range is kept (the note file says so).
  In live mode :meth:`CaptureSink.udp` and :meth:`CaptureSink.tcp_flow` record nothing (the real
  packets are already captured; ``udp`` only teaches the endpoints), so servers may feed the sink
  unconditionally; a synthetic capture takes :meth:`CaptureSink.listening` and does nothing with it.
* **External clusters** (a scenario's ``external`` cluster: a real cluster or a ``lab serve``
  elsewhere, IPv4 or IPv6): in live mode a second packet socket (``SOCK_DGRAM``: the IP packet
  without its link header, whatever the interface) reads *every* interface and keeps each IPv4 or
  IPv6 packet to or from an address of the external cluster's TFTP host (a DNS name is resolved
  when the capture opens); on ``lo`` the outgoing copy is dropped as above, on other interfaces
  both directions are kept once each. A kernel filter on that socket (our rule) passes only TCP
  packets (any host: a SYN is how the phones' peers are found, below) and packets to or from the
  external addresses and the peers learnt so far (re-attached as peers join), the outgoing copy on
  ``lo`` dropped: another program's UDP — a TFTP storm on another loopback address — never fills its
  buffer (before, the kernel dropped the phones' packets with it). Looks at ``/proc`` take at most a
  fifth of the thread (``_SCAN_SHARE``: a busy host's TCP table is long). IPv4 packets inside the
  lab range are left to the ``lo`` socket (never twice), unless they are an external cluster's (an
  external cluster given an address of the lab range is kept by the second socket only). A TVS, CAPF
  or HTTP server on another host is found the way the phone finds it: a TCP SYN (without ACK) to or
  from an address outside that set makes the capture look (at most every ``_PEER_SCAN_S`` seconds) at
  this process's TCP sockets — and those of the worker processes given to :meth:`LiveCapture.add_owners`
  (``fleet boot``'s shards, whose phones run there) — through NETLINK_SOCK_DIAG (else in
  ``/proc/self/net/tcp`` and ``tcp6``); the remote address of one of them joins the set for the rest of
  the run, SYN included (the connecting socket exists when it is sent). Only the connections they opened
  count (our rule): one a listener of theirs accepted (a lab served in this process) is known by its local
  address and port, a listener's, and left out — its remote is a client, ``127.0.0.1`` of every program on
  the machine (was: another boot's phone talking to its own cluster at the same time was kept, its SYN
  from ``127.0.0.1``). Only SYNs make it look: other
  programs' traffic on a busy host costs no scan per packet. These packets are not sorted
  into ours and foreign (our rule): another program talking to those hosts at the same time is in
  the pcap too (the note file says so). A connection too short for that look to find its socket (a
  fleet shard's loopback TVS exchange is over in a millisecond, while the look reads the shard's
  thousands of descriptors) is spooled *tentatively*, with every later packet to or from that host
  (at most ``_TENTATIVE_HOSTS`` hosts): ``close()`` keeps them when a later look learnt the host as
  ours (the next phone's connection), else drops them — the first phone's TVS exchange with another
  host is in the pcap, so ``replay`` of that phone does not find TVS unreachable. The phones' own
  connection points say where they connect (:func:`phoneemu.net.capture.note_connect`), so no look
  is needed for them: a SYN to an address and port a phone of this process — or of a process started
  after the capture opened, e.g. a ``fleet boot`` shard: the capture puts ``PHONEEMU_CAPTURE_PEERS``
  (``<pcap>.peers``, removed at close) in the environment for them — said it connects to makes the
  host join the set at once, however short the connection, and at close every host they named is
  learnt (the tentative packets of one whose SYN came first are kept). The tentative packets still
  dropped at close (no phone named the host, no look found it ours) are counted and their hosts named
  in the note file. A synthetic capture
  holds nothing of an external cluster (its servers are not ours to feed it): the note file says so.
* **Synthetic mode** (fallback when the raw socket cannot be opened — no root, no ``AF_PACKET`` —
  or forced with ``mode="synthetic"`` / ``PHONEEMU_CAPTURE=synthetic``): the pcap holds what the
  services feed the sink: :meth:`CaptureSink.udp` datagrams with faithful IP/UDP framing
  (:class:`phoneemu.net.capture.PcapWriter`) and :meth:`CaptureSink.tcp_flow` conversations
  (:class:`phoneemu.net.capture.TcpFlow`). Today the lab TFTP server feeds every datagram it receives
  and sends; HTTP 6970, TVS and CAPF do not feed ``tcp_flow``, so a synthetic capture holds TFTP only —
  the note file ``DIR/<scenario>.note.txt`` says so.
* **A capture stopped early** (its pcap writer's write failed — a FIFO whose reader went away, a full
  disk: :class:`phoneemu.net.capture.PcapWriter`, the run goes on) is kept as
  :attr:`CaptureSink.early_stop` (:class:`CaptureStop`: why, after how many bytes, the packets written
  and dropped), set by ``close()``; the note file says it first, the commands' summaries say it (ours).
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import os
import re
import select
import socket
import struct
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from phoneemu.errors import ScenarioError
from phoneemu.files import private_file, write_output
from phoneemu.net import capture as _connects
from phoneemu.net.capture import SNAPLEN, Endpoint, PcapWriter, TcpFlow
from phoneemu.scenario.model import capture_stem
from phoneemu.words import counted

__all__ = [
    "LAB_HOSTS", "CaptureSink", "CaptureStop", "ExternalHosts", "LiveCapture", "SyntheticCapture",
    "open_capture", "resolve_external",
]

#: The scenario world's lab addresses (first, last), inclusive.
LAB_HOSTS = ("127.0.0.11", "127.0.0.40")

_ETH_P_ALL = 0x0003
_ETH_P_IP = 0x0800
_ETH_P_IPV6 = 0x86DD
_ETH_HEADER = 14
_PACKET_OUTGOING = 4
_SO_ATTACH_FILTER = 26
_STOP_TIMEOUT = 2.0
#: what ``close()`` waits for a thread still busy after ``_STOP_TIMEOUT`` (a backlog sorted with /proc
#: scans on a loaded machine) before it leaves it and writes the pcap from what was spooled (our bound)
_STOP_GRACE = 30.0
_DRAIN_S = 0.5  # after the stop: how long the thread reads what the kernel had queued, still looking at /proc
#: then, without looks (close() sorts what it spools), until each socket is empty or gives a packet the
#: kernel stamped after the stop — at most this long (our bound; without kernel times: _DRAIN_S in all)
_HURRY_S = 5.0
_SCAN_SHARE = 4  # a look at /proc waits this many times its own duration before the next (a fifth at most)
_POLL_S = 0.05
_SCAN_S = 0.1
_RESCAN_S = 0.01
_PEER_SCAN_S = 0.001
_SPOOL = struct.Struct("<dIB")  # time, length, kind: one of the three below
_LO, _EXTERNAL, _TENTATIVE = 0, 1, 2  # lo (sorted at close); every-interface (kept); every-interface with
#: a host not yet known to be ours (kept at close if a later scan learned it, module rules)
_TENTATIVE_HOSTS = 256  # hosts tracked tentatively at once (our bound)
_PCAP_HEADER, _PCAP_RECORD = 24, 16  # classic pcap: file header, per-packet record header
_SOL_PACKET, _PACKET_STATISTICS = 263, 6
#: SO_TIMESTAMPNS (= its SCM_TIMESTAMPNS control message) of Linux's generic socket options (x86, arm,
#: and most others; checked with getsockopt once set): the packet's receive time, a struct timespec
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESPEC = struct.Struct("@ll")
_CMSG_SPACE = socket.CMSG_SPACE(_TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0
_PEER_FILE_MAX = 4 << 20  # bytes of <pcap>.peers read (the phones' connections in other processes)
_NAMED_HOSTS = 10  # hosts named in the note file's line of dropped tentative packets
#: how long the start waits for the kernel to stamp packets on arrival (our bound, module rules)
_STAMP_WAIT_S = 1.0
#: the probe datagrams' address: a loopback address outside the lab range, which no capture keeps
_STAMP_PROBE_HOST = "127.255.255.254"
#: between a probe's arrival and its reading: a stamp taken at the reading comes after it
_PROBE_GAP_S = 0.002
_DEFAULT_MAX_BYTES = 256 * 1024 * 1024


def _ip_int(text: str) -> int:
    try:
        return int(ipaddress.IPv4Address(text))
    except ValueError as exc:
        raise ScenarioError(f"capture: {text!r} is not an IPv4 address", path="hosts") from exc


@dataclass(frozen=True)
class ExternalHosts:
    """The external clusters' TFTP hosts a live capture keeps packets of (module rules)."""

    names: tuple[str, ...] = ()
    addresses: frozenset[bytes] = frozenset()  # packed IPv4 (4 bytes) / IPv6 (16 bytes)
    unresolved: tuple[str, ...] = ()  # "NAME (why)"

    def note_lines(self, mode: str) -> list[str]:
        """What the note file says of them in ``mode`` (``live`` / ``synthetic``)."""
        if not self.names:
            return []
        shown = ", ".join(sorted(socket.inet_ntop(socket.AF_INET if len(a) == 4 else socket.AF_INET6, a)
                                 for a in self.addresses)) or "none"
        at = ", ".join(self.names)
        if mode == "synthetic":
            lines = [f"Not held: the external cluster(s) at {at} (a synthetic capture holds only what "
                     "phoneemu's own lab servers feed it; live capture needs CAP_NET_RAW)."]
        else:
            lines = [f"External cluster(s) at {at}: every packet to or from {shown}, and from each host "
                     "the phones connected to over TCP (a TVS, CAPF or HTTP server elsewhere), on every "
                     "interface, is in the pcap (another program's packets with those hosts too)."]
        lines += [f"Not held: external cluster host {u}." for u in self.unresolved]
        return lines


def resolve_external(hosts: Sequence[str]) -> ExternalHosts:
    """Every address of each host (an IP literal, or a DNS name resolved now); hosts that do not
    resolve are named in ``unresolved``, never an error: the capture goes on without them."""
    names: list[str] = []
    found: set[bytes] = set()
    unresolved: list[str] = []
    for host in dict.fromkeys(hosts):
        names.append(host)
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_UDP)
        except (OSError, UnicodeError) as exc:
            unresolved.append(f"{host} (not resolved: {exc})")
            continue
        for family, _, _, _, sockaddr in infos:
            if family in (socket.AF_INET, socket.AF_INET6):
                found.add(socket.inet_pton(family, str(sockaddr[0]).split("%", 1)[0]))
    return ExternalHosts(names=tuple(names), addresses=frozenset(found), unresolved=tuple(unresolved))


#: what a capture's pcap writer says: a FIFO waited for, a capture stopped (:class:`PcapWriter`)
Tell = Callable[[str], None]


@dataclass(frozen=True)
class CaptureStop:
    """A capture stopped early (module rules): ``why`` in a few words, after ``after_bytes`` bytes written
    to it (its file header included), ``packets_written`` before the stop, ``packets_dropped`` from it on."""

    why: str
    after_bytes: int
    packets_written: int
    packets_dropped: int

    def text(self) -> str:
        """``stopped after 100 bytes (reader went away): 12 packets written, 48 dropped``."""
        return (f"stopped after {self.after_bytes:,} bytes ({self.why}): {self.packets_written} packets "
                f"written, {self.packets_dropped} dropped")

    def note_line(self) -> str:
        """What the note file says of it."""
        return f"The capture {self.text()}: the packets after the stop are not in the pcap"

    def as_dict(self) -> dict[str, str | int]:
        """Its fields, for a ``--json`` document."""
        return {"why": self.why, "after_bytes": self.after_bytes, "packets_written": self.packets_written,
                "packets_dropped": self.packets_dropped}


def _stop_of(writer: PcapWriter) -> CaptureStop | None:
    """How ``writer`` stopped early (module rules); None when it did not."""
    if writer.stopped is None:
        return None
    return CaptureStop(why=_why_stopped(writer), after_bytes=writer.written,
                       packets_written=writer.count, packets_dropped=writer.dropped)


def _why_stopped(writer: PcapWriter) -> str:
    """Why ``writer`` stopped, in a few words: its :attr:`~PcapWriter.stop_cause` (``reader went away``,
    ``write failed: No space left on device``); its whole message if it has none (a stopped writer sets
    both)."""
    if writer.stop_cause is not None:
        return writer.stop_cause
    return writer.stopped.message if writer.stopped is not None else ""


class CaptureSink:
    """What the runner and the lab servers see of a capture (both modes). ``on_wait`` / ``on_stop``:
    given to its :class:`PcapWriter` (a FIFO's reader waited for, the capture stopped early; None: the
    writer's default, said by ``phoneemu``): a command passes
    :func:`~phoneemu.net.capture.fifo_wait_teller` of itself as typed (:mod:`phoneemu.cli` rules).
    ``early_stop``: how it stopped early, None if it did not (module rules; set by ``close()``)."""

    mode = "none"

    def __init__(self, path: Path, keylog: Path, *, external: ExternalHosts | None = None,
                 on_wait: Tell | None = None, on_stop: Tell | None = None) -> None:
        self.path = path
        self.keylog = keylog
        self.external = external or ExternalHosts()
        self.closed = False
        self.on_wait = on_wait
        self.on_stop = on_stop
        self.early_stop: CaptureStop | None = None

    def _pcap_writer(self, path: str | Path) -> PcapWriter:
        """A :class:`PcapWriter` of ``path`` telling this capture's ``on_wait`` / ``on_stop``."""
        return PcapWriter(path, on_wait=self.on_wait, on_stop=self.on_stop)

    @property
    def note_path(self) -> Path:
        return self.path.with_suffix(".note.txt")

    @property
    def count(self) -> int:
        """Packets written so far."""
        return 0

    def udp(self, src: Endpoint, dst: Endpoint, payload: bytes, ts: float | None = None) -> None:
        """One UDP datagram ``src → dst`` as a service saw it (recorded in synthetic mode only)."""

    def listening(self, protocol: str, host: str, port: int) -> None:
        """A lab server of this process listens on ``host:port`` over ``protocol`` (``"tcp"`` / ``"udp"``):
        a live capture counts that endpoint as ours from now on (module rules); nothing else does."""

    def tcp_flow(self, client: Endpoint, server: Endpoint) -> TcpFlow:
        """A TCP conversation to feed (recorded in synthetic mode only)."""
        raise NotImplementedError

    def close(self) -> None:
        """Stop capturing and flush; idempotent."""
        self.closed = True


class SyntheticCapture(CaptureSink):
    """The pcap holds exactly what services feed through :meth:`udp` and :meth:`tcp_flow`."""

    mode = "synthetic"

    def __init__(self, path: Path, keylog: Path, *, reason: str = "",
                 external: ExternalHosts | None = None, on_wait: Tell | None = None,
                 on_stop: Tell | None = None) -> None:
        super().__init__(path, keylog, external=external, on_wait=on_wait, on_stop=on_stop)
        self.reason = reason
        self._writer = self._pcap_writer(path)
        self._flows = 0

    @property
    def count(self) -> int:
        return self._writer.count

    def udp(self, src: Endpoint, dst: Endpoint, payload: bytes, ts: float | None = None) -> None:
        if not self.closed:
            self._writer.udp(src, dst, payload, ts)

    def tcp_flow(self, client: Endpoint, server: Endpoint) -> TcpFlow:
        self._flows += 1
        isn = 0x10000 * self._flows
        return TcpFlow(self._writer, client, server, client_isn=isn, server_isn=isn + 0x8000)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._writer.close()
        self.early_stop = _stop_of(self._writer)
        lines = [self.early_stop.note_line()] if self.early_stop is not None else []
        lines += [
            "synthetic capture: the packets were rebuilt from what the lab services saw, not read from",
            "the network (reason: " + (self.reason or "synthetic mode requested") + ").",
            "Held: every TFTP datagram the lab TFTP server received and sent.",
        ]
        if self._flows:
            lines.append(f"Also {counted(self._flows, 'TCP conversation')} fed by services (synthesised "
                         "framing).")
        else:
            lines.append("Not held: HTTP 6970, TVS 2445 and CAPF 3804 (no service fed a TCP flow).")
        lines += self.external.note_lines(self.mode)
        write_output(self.note_path, ("\n".join(lines) + "\n").encode("utf-8"))


def _bpf_program(lo: int, hi: int) -> bytes:
    """Classic BPF: drop PACKET_OUTGOING; keep IPv4 with source or destination in [lo, hi]."""
    ld_w, ld_h, jeq, jgt, jge, ret = 0x20, 0x28, 0x15, 0x25, 0x35, 0x06
    pkttype = 0xFFFFF000 + 4  # SKF_AD_OFF + SKF_AD_PKTTYPE
    ins = [
        (ld_w, 0, 0, pkttype),  # 0
        (jeq, 9, 0, _PACKET_OUTGOING),  # 1 → drop
        (ld_h, 0, 0, 12),  # 2 ethertype
        (jeq, 0, 7, 0x0800),  # 3 else drop
        (ld_w, 0, 0, 26),  # 4 source address
        (jge, 0, 1, lo),  # 5 else → 7
        (jgt, 0, 3, hi),  # 6 in range → accept, else → 7
        (ld_w, 0, 0, 30),  # 7 destination address
        (jge, 0, 2, lo),  # 8 else drop
        (jgt, 1, 0, hi),  # 9 above → drop, else accept
        (ret, 0, 0, SNAPLEN),  # 10 accept
        (ret, 0, 0, 0),  # 11 drop
    ]
    return b"".join(struct.pack("HBBI", *i) for i in ins)


#: the most addresses of each family the every-interface filter names; past them it keeps all that
#: family's packets, as without a filter (BPF programs hold at most 4,096 instructions)
_FILTER_V4, _FILTER_V6 = 512, 96


def _external_bpf_program(addresses: Collection[bytes], lo_index: int) -> bytes:
    """Classic BPF for the every-interface socket (``SOCK_DGRAM``: the filter sees the IP header at 0):
    drop the outgoing copy on ``lo``; keep every TCP packet (a SYN to any host teaches the phones' peers,
    module rules) and any packet to or from one of ``addresses`` (packed IPv4/IPv6); drop the rest —
    other programs' UDP (a TFTP storm on another loopback address) never fills the socket's buffer."""
    ld_w, ld_b, alu_and, jeq, ja, ret = 0x20, 0x30, 0x54, 0x15, 0x05, 0x06
    v4 = sorted(a for a in addresses if len(a) == 4)
    v6 = sorted(a for a in addresses if len(a) == 16)
    accept, drop = (ret, 0, 0, SNAPLEN), (ret, 0, 0, 0)
    head = [
        (ld_w, 0, 0, 0xFFFFF000 + 4),  # SKF_AD_PKTTYPE
        (jeq, 0, 3, _PACKET_OUTGOING),
        (ld_w, 0, 0, 0xFFFFF000 + 8),  # SKF_AD_IFINDEX
        (jeq, 0, 1, lo_index),
        drop,
        (ld_b, 0, 0, 0),
        (alu_and, 0, 0, 0xF0),
        (jeq, 1, 0, 0x40),  # IPv4 → the v4 block, past the jump below
    ]
    block4: list[tuple[int, int, int, int]] = [(ld_b, 0, 0, 9), (jeq, 0, 1, 6), accept]  # TCP
    if len(v4) > _FILTER_V4:
        block4 = [accept]
    else:
        for offset in (12, 16):  # source, destination
            block4.append((ld_w, 0, 0, offset))
            for a in v4:
                block4 += [(jeq, 0, 1, int.from_bytes(a, "big")), accept]
        block4.append(drop)
    block6: list[tuple[int, int, int, int]] = [
        (jeq, 1, 0, 0x60), drop,  # neither IPv4 nor IPv6: drop
        (ld_b, 0, 0, 6), (jeq, 0, 1, 6), accept,  # next header TCP (extension headers: not followed)
    ]
    if len(v6) > _FILTER_V6:
        block6.append(accept)
    else:
        for offset in (8, 24):
            for a in v6:
                w = struct.unpack("!IIII", a)
                block6 += [(ld_w, 0, 0, offset), (jeq, 0, 7, w[0]), (ld_w, 0, 0, offset + 4),
                           (jeq, 0, 5, w[1]), (ld_w, 0, 0, offset + 8), (jeq, 0, 3, w[2]),
                           (ld_w, 0, 0, offset + 12), (jeq, 0, 1, w[3]), accept]
        block6.append(drop)
    ins = [*head, (ja, 0, 0, len(block4)), *block4, *block6]
    return b"".join(struct.pack("HBBI", *i) for i in ins)


def _attach_bpf(sock: socket.socket, prog: bytes) -> None:
    """Attach (or replace) the classic BPF program ``prog`` on ``sock``; OSError where it cannot."""
    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = struct.pack("HL", len(prog) // 8, ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)


def _own_socket_inodes(pids: Collection[int] = ()) -> set[int]:
    """Socket inodes of this process and of ``pids`` (its worker processes, e.g. fleet shards; one
    that is gone or not readable adds none)."""
    out: set[int] = set()
    for proc in ("self", *map(str, pids)):
        try:
            fds = os.listdir(f"/proc/{proc}/fd")
        except OSError:
            continue
        for fd in fds:
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{proc}/fd/{fd}")
                if target.startswith("socket:["):
                    out.add(int(target[8:-1]))
    return out


def _is_syn(pkt: bytes, address_size: int) -> bool:
    """A TCP SYN without ACK (a connection being opened) in IPv4 (``address_size`` 4) or IPv6 ``pkt``."""
    if address_size == 4:
        at = (pkt[0] & 0x0F) * 4
        is_tcp = pkt[9] == 6
    else:
        at, is_tcp = 40, pkt[6] == 6  # extension headers: not followed (the phones send none)
    return is_tcp and len(pkt) > at + 13 and pkt[at + 13] & 0x12 == 0x02


def _tcp_dport(pkt: bytes, address_size: int) -> int:
    """The TCP destination port of an IPv4 (``address_size`` 4) or IPv6 ``pkt`` (a SYN, checked)."""
    at = (pkt[0] & 0x0F) * 4 if address_size == 4 else 40
    return int.from_bytes(pkt[at + 2:at + 4], "big")


def _enable_kernel_timestamps(sock: socket.socket) -> bool:
    """Ask the kernel for each packet's receive time (``SO_TIMESTAMPNS``); False where it will not."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
        return bool(sock.getsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS)) and _CMSG_SPACE > 0
    except OSError:
        return False


def _kernel_time(ancdata: list[tuple[int, int, bytes]]) -> float | None:
    """The receive time of ``recvmsg``'s control messages (``SCM_TIMESTAMPNS``), None without it."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            sec, nsec = _TIMESPEC.unpack_from(data)
            return float(sec + nsec / 1e9)
    return None


def _stamps_on_arrival(receiver: socket.socket, sender: socket.socket, wait_s: float) -> bool:
    """One probe: a datagram from ``sender`` to ``receiver`` (``SO_TIMESTAMPNS`` on), read
    ``_PROBE_GAP_S`` after it is queued. True when its kernel time is before the reading began (stamped
    as it arrived); False when stamped as it was read, or it did not come within ``wait_s``."""
    probe = os.urandom(8)
    sender.sendto(probe, receiver.getsockname())
    poller = select.poll()
    poller.register(receiver, select.POLLIN)
    if not poller.poll(max(1, int(wait_s * 1000))):
        return False
    time.sleep(_PROBE_GAP_S)
    reading = time.time()
    data, ancdata, _flags, _addr = receiver.recvmsg(64, _CMSG_SPACE)
    stamp = _kernel_time(ancdata)
    return data == probe and stamp is not None and stamp < reading


def _wait_for_arrival_stamps() -> bool:
    """Return True once the kernel stamps a loopback datagram as it arrives (``_stamps_on_arrival``), False
    after ``_STAMP_WAIT_S`` (at most 100 probes) or where the probe cannot be made (module rules)."""
    deadline = time.monotonic() + _STAMP_WAIT_S
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            receiver.bind((_STAMP_PROBE_HOST, 0))
            sender.bind((_STAMP_PROBE_HOST, 0))
            if not _enable_kernel_timestamps(receiver):
                return False
            for _ in range(100):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if _stamps_on_arrival(receiver, sender, left):
                    return True
                time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
    except OSError:
        return False
    return False


def _proc_address(text: str) -> bytes:
    """A ``/proc/net`` hex address as packed bytes: 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(text)
    return b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))


def _own_tcp_peers(pids: Collection[int] = ()) -> set[bytes]:
    """Remote addresses (packed) of the TCP connections this process and ``pids`` (same network namespace)
    opened, IPv4 and IPv6; asked of :func:`_diag_sockets` first. Listeners are left out, and so are the
    connections they accepted (a lab server of this process: its remote is a client — ``127.0.0.1``, the
    loopback source of every program's connections —, never where a phone connects: module rules). An
    accepted connection is known by its local address and port, a listener's of ours (its address, or
    any)."""
    inodes = _own_socket_inodes(pids)
    known: set[tuple[bytes, int]] = set()
    try:
        conns = [(local, port, peer) for family in (socket.AF_INET, socket.AF_INET6)
                 for local, port, peer, inode in _diag_sockets(family, socket.IPPROTO_TCP, _DIAG_CONNECTED)
                 if inode in inodes]
        known = {_listen_key(local, port) for family in (socket.AF_INET, socket.AF_INET6)
                 for local, port, _peer, inode in _diag_sockets(family, socket.IPPROTO_TCP, _DIAG_LISTEN)
                 if inode in inodes}  # after the connections: a listener that accepted one is listed
    except _DIAG_FAILURES:
        conns = _proc_tcp_sockets(inodes, known)
    peers = {_unmapped(peer) for local, port, peer in conns
             if _listen_key(local, port) not in known and (b"", port) not in known}
    return {peer for peer in peers if any(peer)}


def _listen_key(local: bytes, port: int) -> tuple[bytes, int]:
    """A listener's (or an accepted connection's) local address and port as :func:`_own_tcp_peers` keeps
    them: IPv4-mapped as IPv4, any address (``0.0.0.0``, ``::``) as ``b""``."""
    return (_unmapped(local) if any(local) else b"", port)


def _proc_tcp_sockets(inodes: Collection[int],
                      listeners: set[tuple[bytes, int]]) -> list[tuple[bytes, int, bytes]]:
    """:func:`_own_tcp_peers`'s look read from ``/proc/self/net/tcp`` and ``tcp6`` (no sock_diag here): the
    ``(local address, local port, remote address)`` of the connections among ``inodes``; their listeners'
    keys (:func:`_listen_key`) added to ``listeners``."""
    out: list[tuple[bytes, int, bytes]] = []
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError), \
                open(f"/proc/self/net/{table}", encoding="ascii", errors="replace") as fh:
            next(fh, None)
            for line in fh:
                f = line.split()
                if len(f) < 10 or not f[9].isdigit() or int(f[9]) not in inodes:
                    continue  # not ours
                with contextlib.suppress(ValueError):
                    address, _, port = f[1].partition(":")
                    local = (_proc_address(address), int(port, 16))
                    if f[3] == "0A":  # LISTEN
                        listeners.add(_listen_key(*local))
                    else:
                        out.append((*local, _proc_address(f[2].partition(":")[0])))
    return out


def _unmapped(peer: bytes) -> bytes:
    """``::ffff:a.b.c.d`` (a dual-stack socket's IPv4 peer) as the IPv4 address its packets carry."""
    return peer[12:] if peer[:12] == b"\0" * 10 + b"\xff\xff" else peer


#: a /proc/net/{tcp,udp} line of a socket with an owner: local address, port, inode (not 0)
_PROC_SOCKET_LINE = re.compile(
    r"^ *\d+: ([0-9A-F]{8}):([0-9A-F]{4}) \S+ \S+ \S+ \S+ \S+ +\d+ +\d+ +([1-9]\d*)", re.MULTILINE)


_NETLINK_SOCK_DIAG, _SOCK_DIAG_BY_FAMILY = 4, 20
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_NL_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port id
_DIAG_STATES = {"tcp": 0xFFF & ~(1 << 6), "udp": 0xFFF}  # every state but TIME_WAIT (no owner)
_DIAG_CONNECTED = 0xFFF & ~(1 << 6) & ~(1 << 10)  # nor LISTEN
_DIAG_LISTEN = 1 << 10
_DIAG_MAX_MESSAGES = 1_000_000  # sockets a dump may list (our bound)
#: a look through sock_diag that fails in any of these ways reads /proc instead
_DIAG_FAILURES = (OSError, AttributeError, ValueError, struct.error)


def _diag_endpoints(table: str) -> list[tuple[int, int, int]]:
    """What :func:`_proc_endpoints` reads, asked of the kernel with NETLINK_SOCK_DIAG (what ``ss`` uses):
    the kernel leaves out the TIME_WAIT sockets a busy host has thousands of, and formats no text — a
    look costs ~2 ms where /proc/net/tcp took ~9 ms with 5,000 of them. OSError where it is not offered."""
    proto = socket.IPPROTO_TCP if table == "tcp" else socket.IPPROTO_UDP
    return [(int.from_bytes(local, "big"), port, inode)
            for local, port, _peer, inode in _diag_sockets(socket.AF_INET, proto, _DIAG_STATES[table])]


def _diag_sockets(family: int, proto: int, states: int) -> list[tuple[bytes, int, bytes, int]]:
    """``(local address, local port, remote address, inode)`` (addresses packed, 4 or 16 bytes) of the
    sockets of ``family``/``proto`` in the ``states`` (a bit per TCP state) that have an owner (inode not
    0), from a NETLINK_SOCK_DIAG dump; OSError where it is not offered or the dump is malformed."""
    size = 4 if family == socket.AF_INET else 16
    request = struct.pack("=BBBBI", family, proto, 0, 0, states) + bytes(48)
    out: list[tuple[bytes, int, bytes, int]] = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(1.0)
        nl.sendall(_NL_HEADER.pack(_NL_HEADER.size + len(request), _SOCK_DIAG_BY_FAMILY, 0x301, 1, 0)
                   + request)  # NLM_F_REQUEST | NLM_F_DUMP
        while len(out) < _DIAG_MAX_MESSAGES:
            data = nl.recv(1 << 16)
            if not data:
                raise OSError("sock_diag: the dump ended without NLMSG_DONE")
            at = 0
            while at + _NL_HEADER.size <= len(data):
                length, kind, _flags, _seq, _pid = _NL_HEADER.unpack_from(data, at)
                if kind == _NLMSG_DONE:
                    return out
                if kind == _NLMSG_ERROR or length < _NL_HEADER.size + 72 or at + length > len(data):
                    raise OSError("sock_diag: an error or a malformed message")
                body = at + _NL_HEADER.size  # inet_diag_msg: family, state, timer, retrans, sockid, ...
                (port,) = struct.unpack_from("!H", data, body + 4)  # sockid: sport, dport, src, dst, ...
                (inode,) = struct.unpack_from("=I", data, body + 68)
                if inode:
                    local, remote = data[body + 8:body + 8 + size], data[body + 24:body + 24 + size]
                    out.append((local, port, remote, inode))
                at += (length + 3) & ~3
    raise OSError("sock_diag: more sockets than the bound")


def _proc_endpoints(table: str) -> list[tuple[int, int, int]]:
    """``(IPv4 address as int, port, inode)`` of every socket in ``/proc/self/net/<table>`` (asked of
    :func:`_diag_endpoints` first: the same sockets, cheaper)."""
    with contextlib.suppress(*_DIAG_FAILURES):
        return _diag_endpoints(table)
    with open(f"/proc/self/net/{table}", encoding="ascii", errors="replace") as fh:
        text = fh.read()
    # one pass of the regex engine, not a split per line: a busy host's table holds thousands of
    # TIME_WAIT lines (inode 0: no owner), which the pattern skips
    return [(int.from_bytes(bytes.fromhex(addr), "little"), int(port, 16), int(inode))
            for addr, port, inode in _PROC_SOCKET_LINE.findall(text)]


def _overflow_line(packets: int, limit_name: str) -> str:
    """The note's line on the packets of tentative hosts not kept, counted in number."""
    if packets == 1:
        return (f"1 packet of a host not yet known to be the phones' peer was not kept ({limit_name} bounds "
                "such packets apart): it may have been theirs")
    return (f"{packets} packets of hosts not yet known to be the phones' peers were not kept ({limit_name} "
            "bounds them apart): some may have been theirs")


def _kernel_drops_line(packets: int) -> str:
    """The note's line on the packets the kernel dropped (PACKET_STATISTICS), counted in number."""
    they = "it is" if packets == 1 else "they are"
    return (f"the kernel dropped {counted(packets, 'packet')} the capture thread could not read in time: "
            f"{they} missing from the pcap")


#: a bound socket as the capture knows it: (IP protocol, IPv4 address as int, port); address 0 = any
_Bound = tuple[int, int, int]
_TCP, _UDP = socket.IPPROTO_TCP, socket.IPPROTO_UDP
_TABLES = ((_TCP, "tcp"), (_UDP, "udp"))  # each protocol's socket table (/proc/net, sock_diag)
_PROTOCOLS = {"tcp": _TCP, "udp": _UDP}  # a declared endpoint's protocol (CaptureSink.listening)


def _ends(pkt: bytes) -> list[_Bound]:
    """The two endpoints (source, destination) of IPv4 TCP/UDP ``pkt``, each with the packet's protocol;
    none for any other packet (IPv6, ICMP, cut short)."""
    if len(pkt) < 20 or pkt[0] >> 4 != 4 or pkt[9] not in (_TCP, _UDP):
        return []
    ihl = (pkt[0] & 0x0F) * 4
    if len(pkt) < ihl + 4:
        return []
    src, dst = struct.unpack_from("!II", pkt, 12)
    sport, dport = struct.unpack_from("!HH", pkt, ihl)
    return [(pkt[9], src, sport), (pkt[9], dst, dport)]


class LiveCapture(CaptureSink):
    """Real packets from ``lo`` (AF_PACKET) between ``hosts[0]`` and ``hosts[1]`` inclusive."""

    mode = "live"

    def __init__(self, path: Path, keylog: Path, *, hosts: tuple[str, str] = LAB_HOSTS,
                 max_bytes: int = _DEFAULT_MAX_BYTES, interface: str = "lo",
                 drop_foreign: bool = True, external: ExternalHosts | None = None,
                 limit_name: str = "max_bytes", on_wait: Tell | None = None,
                 on_stop: Tell | None = None) -> None:
        super().__init__(path, keylog, external=external, on_wait=on_wait, on_stop=on_stop)
        self._lo, self._hi = _ip_int(hosts[0]), _ip_int(hosts[1])
        self.max_bytes = max_bytes
        self.limit_name = limit_name  # how the note file names the bound (e.g. "--capture-limit")
        self.kernel_drops = 0  # packets the kernel dropped because the thread fell behind (read at close)
        self._owner_pids: tuple[int, ...] = ()  # worker processes whose TCP peers are ours too
        self.drop_foreign = drop_foreign
        self.truncated = False
        self.missing: tuple[str, ...] = ()  # what the pcap lacks, one line each (set by close)
        self.error: str | None = None
        self._abandoned = False  # close() stopped waiting for the thread: its sockets closed under it
        self._stop_wall: float | None = None  # wall time of the stop (kernel packet times are wall times)
        self._past_stop: set[socket.socket] = set()  # sockets that gave a packet stamped after the stop
        self._hurry = False  # the drain's second part: no looks at /proc
        self.unread_at_stop = False  # the drain ended (_HURRY_S) with packets of before the stop unread
        self._thread_done = False
        self._ending = threading.Lock()  # who closes the spool: close(), or an abandoned thread at its end
        self.filter_in_kernel = False
        self.proc_error: str | None = None
        self.kept = 0
        self.dropped_foreign = 0
        self._own: set[_Bound] = set()  # (protocol, address, port); address 0 = any
        self._foreign: set[_Bound] = set()  # bound by another process at some scan
        self._own_lock = threading.Lock()
        self._next_scan = 0.0  # no look at /proc (lo) before this monotonic time (see _SCAN_SHARE)
        self._spool_path = path.with_name(path.name + ".spool")
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
        self._any: socket.socket | None = None  # every interface, for external clusters (module rules)
        self._peers: set[bytes] = set()  # remote addresses of our TCP sockets seen so far (module rules)
        self._any_filtered: int | None = None  # peers the every-interface kernel filter names (None: none)
        self._external_v4 = frozenset(int.from_bytes(a, "big") for a in self.external.addresses
                                      if len(a) == 4)
        self._next_peer_scan = 0.0
        self._tentative: set[bytes] = set()  # hosts a SYN went to/came from, not (yet) known as ours
        self._connects: set[tuple[bytes, int]] | None = None  # where the phones said they connect
        self._peer_file: Path | None = None  # the same from processes started since (module rules)
        self._peer_fh: BinaryIO | None = None
        self._peer_rest = b""  # a line not yet whole
        self._peer_read = 0
        self._env_before: str | None = None
        self.dropped_hosts: set[bytes] = set()  # hosts of tentative packets dropped at close
        self.dropped_tentative = 0
        try:
            with contextlib.suppress(OSError):
                self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
            self._attach_filter()
            self._sock.bind((interface, 0))
            self._sock.setblocking(False)
            self._drain_stale(self._sock)
            stamped = _enable_kernel_timestamps(self._sock)
            if self.external.addresses:
                self._any = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(_ETH_P_ALL))
                with contextlib.suppress(OSError):
                    self._any.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024 * 1024)
                self._attach_external_filter()
                self._any.setblocking(False)
                self._drain_stale(self._any)
                stamped = _enable_kernel_timestamps(self._any) and stamped
            self.kernel_timestamps = stamped  # each packet's time is the kernel's (module rules)
            private_file(self._spool_path, empty=True)  # the packets of the pcap: 0600, as it is
            self._spool = open(self._spool_path, "wb")  # noqa: SIM115 - closed in close()
            if self._any is not None:
                self._watch_connects()
        except BaseException:
            self._sock.close()
            if self._any is not None:
                self._any.close()
            self._unwatch_connects()
            if hasattr(self, "_spool"):
                self._spool.close()
                with contextlib.suppress(OSError):
                    self._spool_path.unlink()
            raise
        self._null_writer: PcapWriter | None = None
        self._written = _PCAP_HEADER  # the pcap's size once written (what max_bytes bounds)
        self._tentative_spooled = 0  # bytes of _TENTATIVE packets spooled (their own max_bytes)
        self.tentative_overflow = 0  # such packets not spooled: that budget was spent
        self._stop = threading.Event()
        self._scan()
        #: the kernel was seen stamping packets on arrival before the start returned (module rules)
        self.arrival_stamps = self.kernel_timestamps and _wait_for_arrival_stamps()
        self._thread = threading.Thread(target=self._run, name=f"capture:{path.stem}", daemon=True)
        self._thread.start()

    def _watch_connects(self) -> None:
        """Learn where the phones connect: this process's at once, later processes' through
        ``<pcap>.peers`` named in their environment (module rules)."""
        self._connects = _connects.watch_connects()
        self._peer_file = self.path.absolute().with_name(self.path.name + ".peers")  # whatever their cwd
        self._peer_file.write_bytes(b"")
        self._peer_fh = open(self._peer_file, "rb")  # noqa: SIM115 - closed in close()
        self._env_before = os.environ.get(_connects.PEERS_ENV)
        os.environ[_connects.PEERS_ENV] = str(self._peer_file)

    def _unwatch_connects(self) -> None:
        """Stop learning where the phones connect; the environment as it was, ``<pcap>.peers`` removed."""
        if self._connects is not None:
            _connects.unwatch_connects(self._connects)
        if self._peer_file is None:
            return
        if os.environ.get(_connects.PEERS_ENV) == str(self._peer_file):
            if self._env_before is None:
                os.environ.pop(_connects.PEERS_ENV, None)
            else:
                os.environ[_connects.PEERS_ENV] = self._env_before
        if self._peer_fh is not None:
            self._peer_fh.close()
        with contextlib.suppress(OSError):
            self._peer_file.unlink()
        self._peer_file = self._peer_fh = None

    def _read_peer_file(self) -> None:
        """Learn the connections other processes appended to ``<pcap>.peers`` since the last read
        (at most ``_PEER_FILE_MAX`` bytes in all)."""
        if self._peer_fh is None or self._connects is None or self._peer_read >= _PEER_FILE_MAX:
            return
        with contextlib.suppress(OSError):
            data = self._peer_fh.read(_PEER_FILE_MAX - self._peer_read)
            self._peer_read += len(data or b"")
            *lines, self._peer_rest = (self._peer_rest + (data or b"")).split(b"\n")
            for line in lines:
                with contextlib.suppress(ValueError):
                    address, port = line.split()
                    self._connects.add((bytes.fromhex(address.decode("ascii")), int(port)))

    def _phones_connect_to(self, address: bytes, port: int) -> bool:
        """A phone said it connects to ``address:port`` (this process, else ``<pcap>.peers`` read now)."""
        if self._connects is None:
            return False
        if (address, port) not in self._connects:
            self._read_peer_file()
        return (address, port) in self._connects

    def _attach_filter(self) -> None:
        try:
            _attach_bpf(self._sock, _bpf_program(self._lo, self._hi))
            self.filter_in_kernel = True
        except OSError:
            self.filter_in_kernel = False

    def _attach_external_filter(self) -> None:
        """(Re)attach the every-interface socket's kernel filter for the external addresses and the peers
        learnt so far (:func:`_external_bpf_program`); where it cannot be attached, the socket reads
        everything as before and the thread sorts it."""
        if self._any is None:
            return
        try:
            lo_index = socket.if_nametoindex("lo")
        except OSError:
            lo_index = 0
        try:
            _attach_bpf(self._any, _external_bpf_program(self.external.addresses | self._peers, lo_index))
            self._any_filtered = len(self._peers)
        except OSError:
            self._any_filtered = None

    def _drain_stale(self, sock: socket.socket) -> None:
        """Packets queued before the filter was attached are discarded (bounded count)."""
        for _ in range(10_000):
            try:
                sock.recv(SNAPLEN)
            except (BlockingIOError, InterruptedError):
                return

    @property
    def count(self) -> int:
        return self.kept

    def add_owners(self, pids: Iterable[int]) -> None:
        """Worker processes (e.g. fleet shards) whose TCP connections are the phones' too: a host one of
        them connects to joins the set as this process's own would (module rules)."""
        self._owner_pids = (*self._owner_pids, *pids)

    def _in_range(self, addr: int) -> bool:
        return self._lo <= addr <= self._hi

    def keep_external(self, pkt: bytes, ifname: str, protocol: int, pkttype: int) -> tuple[bytes, int] | None:
        """``pkt`` (an IP packet read on any interface) and how to spool it (``_EXTERNAL``, or
        ``_TENTATIVE`` for a host not known to be ours yet) when it is to or from an external cluster's
        address or a peer of ours, once: the outgoing copy on ``lo`` and lab-range IPv4 (the ``lo``
        socket's) left out."""
        if pkttype == _PACKET_OUTGOING and ifname == "lo":
            return None
        if protocol == _ETH_P_IP and len(pkt) >= 20 and pkt[0] >> 4 == 4:
            src, dst = pkt[12:16], pkt[16:20]
            ends = (int.from_bytes(src, "big"), int.from_bytes(dst, "big"))
            if self._external_v4.isdisjoint(ends) and (self._in_range(ends[0]) or self._in_range(ends[1])):
                return None  # the built-in lab's: the lo socket keeps it
        elif protocol == _ETH_P_IPV6 and len(pkt) >= 40 and pkt[0] >> 4 == 6:
            src, dst = pkt[8:24], pkt[24:40]
        else:
            return None
        wanted = self.external.addresses
        if src in wanted or dst in wanted or src in self._peers or dst in self._peers:
            return pkt, _EXTERNAL
        syn = _is_syn(pkt, len(src))
        if syn and self._phones_connect_to(dst, _tcp_dport(pkt, len(src))):
            self._peers.add(dst)  # a phone connects there: the host is ours, however short the connection
            return pkt, _EXTERNAL
        now = time.monotonic()
        if syn and now >= self._next_peer_scan and not self._hurry:
            with contextlib.suppress(OSError):
                self._peers |= _own_tcp_peers(self._owner_pids)
            # a busy host's TCP table is long: the looks take at most a share of the thread
            self._next_peer_scan = now + max(_PEER_SCAN_S, _SCAN_SHARE * (time.monotonic() - now))
            if src in self._peers or dst in self._peers:
                return pkt, _EXTERNAL
        if syn and dst not in self._tentative and len(self._tentative) < _TENTATIVE_HOSTS:
            # the host connected to: what a scan learns of our client sockets (added even when the source
            # is tentative already — 127.0.0.1 of other connections —, so that the note can name it)
            self._tentative.add(dst)
        if src in self._tentative or dst in self._tentative:
            return pkt, _TENTATIVE
        return None

    def _learned(self, pkt: bytes) -> bool:
        """A tentatively spooled packet's host has been learned as a peer of ours since."""
        size = 4 if pkt[0] >> 4 == 4 else 16
        src, dst = (pkt[12:16], pkt[16:20]) if size == 4 else (pkt[8:24], pkt[24:40])
        return src in self._peers or dst in self._peers

    def keep(self, frame: bytes, pkttype: int) -> bytes | None:
        """The IP packet of ``frame`` when it is an incoming IPv4 packet touching the lab range."""
        if pkttype == _PACKET_OUTGOING or len(frame) < _ETH_HEADER + 20:
            return None
        if frame[12:14] != b"\x08\x00":
            return None
        src, dst = struct.unpack_from("!II", frame, _ETH_HEADER + 12)
        if not (self._in_range(src) or self._in_range(dst)):
            return None
        if self._any is not None and not self._external_v4.isdisjoint((src, dst)):
            return None  # an external cluster inside the lab range: the other socket keeps it, unsorted
        return frame[_ETH_HEADER:]

    # --- which endpoints are ours ----------------------------------------------------------
    def _learn(self, proto: int, addr: int, port: int, *, own: bool = True) -> None:
        if addr == 0 or self._in_range(addr):
            with self._own_lock:
                (self._own if own else self._foreign).add((proto, addr, port))

    def _scan(self) -> None:
        """Learn which lab-range endpoints are bound by this process and which by others (/proc)."""
        start = time.monotonic()
        self._next_scan = start + _RESCAN_S
        if self.proc_error is not None or self._hi == 0:
            return  # no lab range (boot and fleet --capture: hosts 0.0.0.0): nothing on lo to sort
        try:
            before = _own_socket_inodes()
            found = [(proto, *bound) for proto, table in _TABLES for bound in _proc_endpoints(table)]
            inodes = before | _own_socket_inodes()  # ours when listed before or after (module rules)
        except OSError as exc:
            self.proc_error = f"{type(exc).__name__}: {exc}"
            return
        for proto, addr, port, inode in found:
            self._learn(proto, addr, port, own=inode in inodes)
        self._next_scan = start + max(_RESCAN_S, _SCAN_SHARE * (time.monotonic() - start))

    def _learn_host(self, proto: int, host: str, port: int) -> None:
        """Learn ``host:port`` as ours when ``host`` is an IPv4 address (IPv6 is not sorted, module rules)."""
        with contextlib.suppress(ValueError):
            a = ipaddress.ip_address(host)
            if a.version == 4:
                self._learn(proto, int(a), port)

    def udp(self, src: Endpoint, dst: Endpoint, payload: bytes, ts: float | None = None) -> None:
        for host, port in (src, dst):
            self._learn_host(_UDP, host, port)

    def listening(self, protocol: str, host: str, port: int) -> None:
        """The lab server on ``host:port`` declared itself: ours at once, for the rest of the run, no look
        needed (module rules)."""
        self._learn_host(_PROTOCOLS[protocol], host, port)

    def _outside_ends(self, pkt: bytes) -> list[_Bound]:
        """The endpoints of IPv4 TCP/UDP ``pkt`` outside the lab range (a phone's, 127.0.0.1:port), with
        the packet's protocol."""
        return [e for e in _ends(pkt) if not self._in_range(e[1])]

    def _foreign_clients(self) -> set[_Bound]:
        """Endpoints outside the lab range seen with a foreign lab endpoint and never with one of ours:
        another program's clients. Its short-lived sockets (a TFTP transfer's, a TLS connection's) may
        close before any look, and the packets with such a client are theirs too (module rules)."""
        foreign: set[_Bound] = set()
        own: set[_Bound] = set()
        with open(self._spool_path, "rb") as spool:
            while len(head := spool.read(_SPOOL.size)) == _SPOOL.size:
                _ts, n, kind = _SPOOL.unpack(head)
                pkt = spool.read(n)
                if len(pkt) < n:
                    break
                if kind == _LO and (v := self.verdict(pkt)) != "unknown":
                    (foreign if v == "foreign" else own).update(self._outside_ends(pkt))
        return foreign - own

    def verdict(self, pkt: bytes) -> str:
        """``"ours"`` (an endpoint is one of our sockets), ``"foreign"`` (another process's), or
        ``"unknown"``; an endpoint is its protocol's (module rules); membership tests only, safe while the
        other thread adds."""
        ends = _ends(pkt)  # none: IPv6 (external clusters only) is not sorted (module rules)
        ends += [(proto, 0, port) for proto, addr, port in ends if self._in_range(addr)]
        if any(e in self._own for e in ends):
            return "ours"
        if any(e in self._foreign for e in ends):
            return "foreign"
        return "unknown"

    # --- the thread ---------------------------------------------------------------------------
    def _read_ready(self, sock: socket.socket | None = None, until: float | None = None) -> int:
        """Spool every frame queued on ``sock`` (default: the ``lo`` socket; bounded per call: at most
        4,096 frames, and none more once the stop is asked — past ``until``, a monotonic time, in the
        drain after it); returns how many were read."""
        external = sock is not None and sock is self._any
        sock = sock or self._sock
        n = 0
        space = _CMSG_SPACE if self.kernel_timestamps else 0
        while n < 4096:
            if n & 63 == 63 and (time.monotonic() > until if until is not None else self._stop.is_set()):
                break  # the stop: the drain (bounded in time) reads the rest
            try:
                frame, ancdata, _flags, addr = sock.recvmsg(SNAPLEN, space)
            except (BlockingIOError, InterruptedError):
                break
            n += 1
            ts = (_kernel_time(ancdata) if space else None) or time.time()  # the kernel's (module rules)
            if self._stop_wall is not None and space and ts > self._stop_wall:
                self._past_stop.add(sock)  # sent after the stop: the drain of this socket is over
                break
            pkttype = int(addr[2]) if len(addr) > 2 else 0
            if external:
                got = self.keep_external(frame, str(addr[0]), int(addr[1]), pkttype)
                pkt, kind = got or (None, _EXTERNAL)
            else:
                pkt, kind = self.keep(frame, pkttype), _LO
            if pkt is not None:
                self._spool_packet(pkt, kind, ts)
        return n

    def _spool_packet(self, pkt: bytes, kind: int, ts: float) -> None:
        """Spool ``pkt`` within the bounds (module rules): packets of hosts not known to be ours yet
        (``_TENTATIVE``) have a budget of their own, so other programs' traffic cannot use up ours."""
        size = len(pkt) + _PCAP_RECORD  # the spool's record (13 bytes) is smaller
        if kind == _TENTATIVE:
            if self._tentative_spooled + size > self.max_bytes:
                self.tentative_overflow += 1
                return
            self._tentative_spooled += size
        else:
            if self.truncated:
                return
            if self._written + size > self.max_bytes:
                self.truncated = True
                return
            self._written += size
            stale = not self._hurry and time.monotonic() >= self._next_scan
            if kind == _LO and self.drop_foreign and stale and self.verdict(pkt) == "unknown":
                self._scan()  # a socket we do not know yet: learn it while it still exists
        self._spool.write(_SPOOL.pack(ts, len(pkt), kind) + pkt)

    def _run(self) -> None:
        try:
            next_scan = time.monotonic() + _SCAN_S
            poller = select.poll()  # not select(): the fd may be above FD_SETSIZE in a large fleet
            socks = {s.fileno(): s for s in (self._sock, self._any) if s is not None}
            for fd in socks:
                poller.register(fd, select.POLLIN)
            while not self._stop.is_set():
                for fd, _ in poller.poll(_POLL_S * 1000):
                    self._read_ready(socks[fd])
                if self._any_filtered is not None and self._any_filtered != len(self._peers):
                    self._attach_external_filter()  # a new peer's UDP too (its TCP always passes)
                if time.monotonic() >= max(next_scan, self._next_scan):
                    self._scan()
                    next_scan = time.monotonic() + _SCAN_S
            self._drain(list(socks.values()))
        except (OSError, ValueError) as exc:  # disk full, interface gone: keep what was written, say why
            if not self._abandoned:  # (else: close() closed the sockets under it)
                self.error = f"{type(exc).__name__}: {exc}"
        finally:
            with self._ending:
                self._thread_done = True
                if self._abandoned:
                    self._spool.close()

    def _drain(self, socks: list[socket.socket]) -> None:
        """After the stop: read what the kernel queued before it (``_DRAIN_S`` with looks at /proc, then
        without, bounded by ``_HURRY_S``); what is still unread then is said in the note (module rules)."""
        start = time.monotonic()
        end = start + (_HURRY_S if self.kernel_timestamps else _DRAIN_S)
        pending = list(socks)
        while pending and time.monotonic() < end:
            self._hurry = time.monotonic() >= start + _DRAIN_S
            pending = [s for s in pending if self._read_ready(s, end) > 0 and s not in self._past_stop]
        self.unread_at_stop = bool(pending)

    def tcp_flow(self, client: Endpoint, server: Endpoint) -> TcpFlow:
        if self._null_writer is None:
            self._null_writer = PcapWriter(os.devnull)
        return TcpFlow(self._null_writer, client, server)

    def _write_pcap(self) -> None:
        """Copy the spooled packets that touch one of our endpoints into the pcap, within ``max_bytes``."""
        filter_own = self.drop_foreign and self.proc_error is None
        clients = self._foreign_clients() if filter_own else set()
        written = _PCAP_HEADER
        with open(self._spool_path, "rb") as spool, self._pcap_writer(self.path) as out:
            while True:
                head = spool.read(_SPOOL.size)
                if len(head) < _SPOOL.size:
                    break
                ts, n, kind = _SPOOL.unpack(head)
                pkt = spool.read(n)
                if len(pkt) < n:
                    break
                if filter_own and kind == _LO and (
                        (v := self.verdict(pkt)) == "foreign"
                        or (v == "unknown" and clients and not clients.isdisjoint(self._outside_ends(pkt)))):
                    self.dropped_foreign += 1
                    continue
                if kind == _TENTATIVE and not self._learned(pkt):
                    self.dropped_foreign += 1
                    self.dropped_tentative += 1
                    size = 4 if pkt[0] >> 4 == 4 else 16
                    ends = (pkt[12:16], pkt[16:20]) if size == 4 else (pkt[8:24], pkt[24:40])
                    self.dropped_hosts.update(e for e in ends if e in self._tentative)
                    continue
                written += len(pkt) + _PCAP_RECORD
                if written > self.max_bytes:  # learned hosts' packets on top of the others
                    self.truncated = True
                    break
                out.packet(pkt, ts)
        self.kept = out.count  # (the packets a stopped writer dropped are not in the pcap)
        self.early_stop = _stop_of(out)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        time.sleep(0.02)  # let loopback deliver what was just sent
        self._stop_wall = time.time()
        self._stop.set()
        self._thread.join(_STOP_TIMEOUT)
        if self._thread.is_alive():  # a loaded machine: the drain is bounded in time, a /proc scan is not
            self._thread.join(_STOP_GRACE)
        with self._ending:
            self._abandoned = not self._thread_done
        for sock in (self._sock, self._any):
            if sock is not None:
                with contextlib.suppress(OSError):  # since the socket opened (the one read resets it)
                    stats = sock.getsockopt(_SOL_PACKET, _PACKET_STATISTICS, 8)
                    self.kernel_drops += struct.unpack("II", stats)[1]
        self._sock.close()
        if self._any is not None:
            self._any.close()
        if self._null_writer is not None:
            self._null_writer.close()
        if self._connects is not None:  # every host a phone named is ours (module rules)
            _connects.unwatch_connects(self._connects)
            self._read_peer_file()
            self._peers |= {address for address, _port in self._connects}
        self._unwatch_connects()
        missing: list[str] = []
        if self._abandoned:  # the pcap from what it spooled so far (never no pcap at all)
            missing.append("capture thread did not stop in time; the pcap may miss the last packets")
            with contextlib.suppress(OSError, ValueError):
                self._spool.flush()  # (buffered files are thread-safe; a record cut short ends the copy)
        else:
            self._spool.close()
        try:
            self._write_pcap()
        finally:
            with contextlib.suppress(OSError):
                self._spool_path.unlink()
        if self.truncated:
            missing.append(f"stopped at {self.max_bytes:,} bytes ({self.limit_name}); later packets are "
                           "missing")
        if self.tentative_overflow:
            missing.append(_overflow_line(self.tentative_overflow, self.limit_name))
        if self.unread_at_stop:
            missing.append(f"the capture thread had not read every packet queued at the stop after "
                           f"{_DRAIN_S + _HURRY_S:g} s (a loaded machine): the last packets may be missing")
        if self.kernel_drops:
            missing.append(_kernel_drops_line(self.kernel_drops))
        if self.error:
            missing.append(f"capture thread stopped: {self.error}")
        self.missing = tuple(missing)
        problems = ([self.early_stop.note_line()] if self.early_stop is not None else []) + missing
        if self.dropped_tentative:
            named = sorted(socket.inet_ntop(socket.AF_INET if len(a) == 4 else socket.AF_INET6, a)
                           for a in self.dropped_hosts)
            more = f" and {len(named) - _NAMED_HOSTS} more" if len(named) > _NAMED_HOSTS else ""
            shown = ", ".join(named[:_NAMED_HOSTS])
            problems.append(f"Left out: {counted(self.dropped_tentative, 'packet')} with {shown}{more}: a "
                            "TCP connection was opened with them during the capture, but no phone said it"
                            " connects there and no look found it the phones' (another program's)")
        if self.kernel_timestamps and not self.arrival_stamps:
            problems.append(f"The kernel was not seen stamping packets as they arrive within "
                            f"{_STAMP_WAIT_S:g} s of the capture's start (a loaded machine): the first "
                            "packets' times may be when the capture thread read them")
        if not self.kernel_timestamps:
            problems.append("The packets' times are when the capture thread read them, not when the kernel "
                            "received them (no SO_TIMESTAMPNS here): deltas and jitter may be distorted")
        if self.proc_error:
            problems.append(f"/proc not readable ({self.proc_error}): packets of other programs on the lab "
                            "addresses may be included")
        problems += self.external.note_lines(self.mode)
        if problems:
            write_output(self.note_path, ("\n".join(problems) + "\n").encode("utf-8"))


def open_capture(capture_dir: str | Path, scenario_name: str, *, mode: str | None = None,
                 hosts: tuple[str, str] = LAB_HOSTS, external: Sequence[str] = (),
                 on_wait: Tell | None = None, on_stop: Tell | None = None) -> tuple[CaptureSink, Path]:
    """Open ``DIR/<scenario>.pcap`` and ``DIR/<scenario>.keys``; ``(sink, keylog_path)``.
    ``external``: the TFTP hosts of the scenario's external clusters (module rules); ``on_wait`` /
    ``on_stop``: what the pcap writer says (:class:`CaptureSink`).

    ``mode``: ``"live"`` (raise if the raw socket cannot be opened), ``"synthetic"``, or ``None`` /
    ``"auto"`` (live, else synthetic); the environment variable ``PHONEEMU_CAPTURE`` sets the default.
    """
    chosen = (mode or os.environ.get("PHONEEMU_CAPTURE") or "auto").lower()
    if chosen not in ("auto", "live", "synthetic"):
        raise ScenarioError(f"capture mode {chosen!r} is not auto, live or synthetic", path="capture")
    d = Path(capture_dir)
    d.mkdir(parents=True, exist_ok=True)
    stem = capture_stem(scenario_name)
    pcap, keylog = d / f"{stem}.pcap", d / f"{stem}.keys"
    private_file(keylog, empty=True)  # TLS secrets: 0600 whatever the umask
    with contextlib.suppress(FileNotFoundError):
        (d / f"{stem}.note.txt").unlink()
    reason = "synthetic mode requested"
    outside = resolve_external(external)
    if chosen != "synthetic":
        try:
            return LiveCapture(pcap, keylog, hosts=hosts, external=outside, on_wait=on_wait,
                               on_stop=on_stop), keylog
        except (PermissionError, AttributeError, OSError) as exc:
            if chosen == "live":
                raise ScenarioError(f"live capture on lo is not possible: {exc}", path="capture") from exc
            reason = f"live capture on lo not possible: {exc}"
    return SyntheticCapture(pcap, keylog, reason=reason, external=outside, on_wait=on_wait,
                            on_stop=on_stop), keylog
