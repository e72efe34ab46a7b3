"""pcap capture of what the emulator sends and receives (classic libpcap format).

Rules:

* Files are classic libpcap (magic ``a1b2c3d4`` written little-endian, version 2.4, microsecond
  timestamps), ``LINKTYPE_RAW`` (101): each record is a bare IPv4 or IPv6 packet. A capture file is
  0600 whatever the umask (ours: it holds the configs, which may carry SIP digest passwords; a FIFO or
  device named is left as it is, as a key log's). A FIFO with no reader yet is waited for, as
  ``tcpdump -w`` waits (a user starts Wireshark on it), said first on stderr (``on_wait``); a capture
  file that cannot be opened or begun (a read-only folder, a full disk) is an EncodeError naming it.
* Packets are faithful: IPv4 header checksum, UDP/TCP checksums over the pseudo-header, correct
  total/payload lengths, TTL/hop limit 64. A UDP checksum that computes to 0 is sent as 0xFFFF.
* TCP conversations (TLS on TVS 2445 / CAPF 3804, HTTP 6970) are synthesised by :class:`TcpFlow`:
  SYN (MSS option), SYN-ACK, ACK; data segments of at most ``mss`` bytes with correct seq/ack, each
  acknowledged by a pure ACK; FIN/ACK from the closer, FIN/ACK back, final ACK. These are our
  reconstruction of the stream, not a kernel trace (the TLS key log lets Wireshark decrypt it).
* :func:`read_pcap` reads what we write (and little/big-endian, micro/nanosecond classic pcap with
  LINKTYPE_RAW, ETHERNET, IPV4, IPV6 or LINUX_SLL/SLL2 — ``tcpdump -i any``), and pcapng as
  Wireshark saves it (Section Header, Interface Description, Enhanced and Simple Packet blocks of
  those link types; other blocks skipped; every block length checked and bounded); anything
  malformed raises DecodeError(fmt="pcap"). Also read: BSD loopback (LINKTYPE_NULL, LOOP: a 4-byte
  address family, AF_INET 2, AF_INET6 24/28/30 or Linux's 10); 802.1Q VLAN tags and stacked QinQ tags
  (TPID 0x8100, 0x88A8, 0x9100, 0x9200) after an Ethernet or Linux cooked header; IPv6 extension
  headers (hop-by-hop, routing, destination options, authentication, fragment) before UDP/TCP; a pcapng
  whose interfaces differ in link type, ``if_tsresol`` and ``if_tsoffset`` (an interface of a link type
  not read has its packets skipped, told to ``note``), the obsolete Packet Block. The IP lengths bound a
  packet, not the frame (Ethernet padding and FCS are not read); an IPv4 total length of 0 (segmentation
  offload seen on the sending host) is the frame's. **IP fragments** (IPv4, and IPv6's fragment header)
  are reassembled, as the receiving host did — a TFTP block over the MTU arrives fragmented: bounded
  (``FRAG_MAX_DATAGRAMS`` being reassembled at once, the oldest given up beyond; ``FRAG_MAX_PIECES``
  fragments each; ``FRAG_MAX_BYTES`` held in all; ``FRAG_TIMEOUT`` s of capture time each); a datagram
  whose fragments overlap or disagree on its length is refused (RFC 5722; an exact duplicate, a SPAN
  port's second copy, is ignored); each datagram refused, given up or unfinished at the end is told to
  ``note`` naming its capture offset. The reassembled packet has the time, index and offset of the
  fragment that completed it. A capture that ends inside its last packet (tcpdump
  killed, a full disk) is an error too, unless the caller passes ``cut_short``: then, as Wireshark
  does, the packets before that point are read and ``cut_short`` receives the error as a warning; a
  pcapng cut inside its first Section Header Block is an error whatever ``cut_short`` (as a classic
  pcap cut inside its file header: no capture to read).
  A pcapng packet time (its ticks at ``if_tsresol``, plus ``if_tsoffset``: 64-bit each) outside the
  years 1..9999 is malformed (ours: no clock shows it, and it becomes a replayed phone's clock).
  Packets that are not UDP/TCP over IP are skipped. **snaplen** (``tcpdump -s 96``): a record whose
  captured length is less than its original length holds the start of its packet; the IP, UDP and TCP
  lengths of such a packet may claim up to that many bytes more than it holds (never more: a length
  beyond them is malformed, as in a whole packet): the packet is read, its ``payload`` the bytes held
  and ``missing`` the bytes not (nothing is allocated for them); one cut inside its IP, UDP or TCP
  header (or a fragment of a datagram being reassembled) is skipped and told to ``note``, naming its
  capture offset and packet index. A gzip-compressed capture (``.pcap.gz``, as tshark
  reads it) is recognised by its magic bytes and decompressed as it is read, a bounded amount at a
  time: the record, block and packet-count limits apply to the decompressed stream (a gzip bomb costs
  time, never memory); a gzip stream cut short is a capture ending inside its last packet (cut inside
  the capture's header: an error); a gzip stream inside the decompressed one is refused (as tshark).
* :func:`embedded_keylog` returns the TLS key log a pcapng carries in its Decryption Secrets Blocks
  (``editcap --inject-secrets tls,keys.txt``): the ``TLSK`` secrets of the blocks before its first
  packet (where editcap puts them), at most 16 MiB in all, whatever the number of blocks (whole lines,
  as a key-log file; the blocks past it are skipped as when reading packets); a secrets block
  may be larger than a packet block (the reader skips it in pieces).
* **The phones' connections** (for a live capture, :mod:`phoneemu.scenario.capturing`): each phone
  connection point calls :func:`note_connect` with the address it connects to (before connecting, an
  IP literal) and :func:`note_peer` with the connected socket's peer (a DNS name resolved). Every live
  capture of this process watching (:func:`watch_connects`) learns it at once; a process started
  with ``PHONEEMU_CAPTURE_PEERS=FILE`` in its environment (a ``fleet boot`` shard: the capture of
  the process that started it set it) appends ``<packed address hex> <port>`` to FILE once per
  address and port (at most ``_PEERS_MAX`` of them), FILE not created when missing. Without either,
  nothing is recorded (a storm without a capture pays one test per connection).
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import ipaddress
import os
import select
import stat
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from phoneemu.errors import DecodeError, EncodeError, naming_file
from phoneemu.files import AtomicFile, dup_own_descriptor, output_target

__all__ = [
    "CAPTURE_MODE",
    "LINKTYPE_ETHERNET",
    "LINKTYPE_RAW",
    "PcapPacket",
    "PcapWriter",
    "Reassembly",
    "TcpFlow",
    "UdpSink",
    "capture_kind",
    "embedded_keylog",
    "inet_checksum",
    "note_connect",
    "note_peer",
    "read_pcap",
    "unwatch_connects",
    "watch_connects",
]

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
_LINKTYPE_IPV4 = 228
_LINKTYPE_IPV6 = 229
_LINKTYPE_LINUX_SLL = 113  # tcpdump -i any: 16-byte "cooked" header, protocol at offset 14
_LINKTYPE_LINUX_SLL2 = 276  # newer tcpdump -i any: 20-byte header, protocol at offset 0
_LINKTYPE_NULL = 0  # BSD/macOS loopback (lo0): 4-byte address family in the host's byte order
_LINKTYPE_LOOP = 108  # OpenBSD loopback: the same in network byte order
#: link type -> (link-layer header length, offset of its EtherType); None: the frame is the IP packet
_LINK_HEADERS: dict[int, tuple[int, int] | None] = {
    LINKTYPE_RAW: None, _LINKTYPE_IPV4: None, _LINKTYPE_IPV6: None, LINKTYPE_ETHERNET: (14, 12),
    _LINKTYPE_LINUX_SLL: (16, 14), _LINKTYPE_LINUX_SLL2: (20, 0),
    _LINKTYPE_NULL: None, _LINKTYPE_LOOP: None,
}
#: BSD loopback link types -> the byte orders their 4-byte address family may be in (NULL: the writing
#: host's, unknown to us, so either)
_LINK_AF: dict[int, tuple[str, ...]] = {_LINKTYPE_NULL: ("<I", ">I"), _LINKTYPE_LOOP: (">I",)}
_AF_INET = frozenset({2})
_AF_INET6 = frozenset({24, 28, 30, 10})  # NetBSD/OpenBSD, FreeBSD, macOS; Linux
_VLAN_TPIDS = frozenset({0x8100, 0x88A8, 0x9100, 0x9200})  # 802.1Q, 802.1ad, the older QinQ ones
_MAX_VLAN_TAGS = 8  # ours: more stacked tags than any network uses: the frame is not read
SNAPLEN = 262144
_PROTO_TCP = 6
_PROTO_UDP = 17

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

Endpoint = tuple[str, int]


# --- the phones' connections, for a live capture (module rules) ------------------------------
PEERS_ENV = "PHONEEMU_CAPTURE_PEERS"
_PEERS_MAX = 4096  # (address, port) pairs a process records or a capture learns (our bound)
_peer_lock = threading.Lock()
_peer_watchers: list[set[tuple[bytes, int]]] = []
_peers_written: set[tuple[str, bytes, int]] = set()


def packed_address(host: str) -> bytes | None:
    """``host`` as packed bytes when it is an IP literal (an IPv4-mapped IPv6 address as the IPv4 one
    its packets carry, a scope dropped), else None."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.packed
    return ip.packed


def watch_connects() -> set[tuple[bytes, int]]:
    """A set that every later :func:`note_connect` of this process adds ``(packed address, port)`` to,
    until :func:`unwatch_connects`."""
    seen: set[tuple[bytes, int]] = set()
    with _peer_lock:
        _peer_watchers.append(seen)
    return seen


def unwatch_connects(seen: set[tuple[bytes, int]]) -> None:
    with _peer_lock:
        _peer_watchers[:] = [w for w in _peer_watchers if w is not seen]


def note_connect(host: str, port: int) -> None:
    """A phone's connection point connects to ``host:port`` (module rules: an IP literal is recorded,
    a name is not: :func:`note_peer` records the address it resolved to)."""
    if not _peer_watchers and PEERS_ENV not in os.environ:
        return
    packed = packed_address(str(host))
    if packed is None:
        return
    key = (packed, int(port))
    path = os.environ.get(PEERS_ENV)
    with _peer_lock:
        for seen in _peer_watchers:
            if len(seen) < _PEERS_MAX:
                seen.add(key)
        if not path or (path, *key) in _peers_written or len(_peers_written) >= _PEERS_MAX:
            return
        _peers_written.add((path, *key))
    try:  # the capture made it; a stale variable (its capture gone) creates nothing
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.write(fd, f"{packed.hex()} {int(port)}\n".encode("ascii"))  # one write: whole lines appended
    except OSError:
        pass
    finally:
        os.close(fd)


def note_peer(peer: object) -> None:
    """The peer of a connected socket (``getpeername()``, ``get_extra_info("peername")``), recorded as
    :func:`note_connect` records an address."""
    if isinstance(peer, (tuple, list)) and len(peer) >= 2 and isinstance(peer[1], int):
        note_connect(str(peer[0]), peer[1])


class UdpSink(Protocol):
    """What a server needs from a capture: record one UDP datagram ``src → dst``."""

    def udp(self, src: Endpoint, dst: Endpoint, payload: bytes, ts: float | None = None) -> None: ...


def inet_checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``: IPv4 header, UDP/TCP with pseudo-header."""
    if len(data) % 2:
        data += b"\0"
    s: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return int(~s & 0xFFFF)


def _ip_packet(src: str, dst: str, proto: int, l4: bytearray, *, csum_at: int, ident: int) -> bytes:
    """Wrap an L4 segment (checksum field zero at ``csum_at``) into an IPv4/IPv6 packet."""
    try:
        s = ipaddress.ip_address(src)
        d = ipaddress.ip_address(dst)
    except ValueError as exc:
        raise EncodeError(f"not an IP address: {exc}", path="address") from exc
    if s.version != d.version:
        raise EncodeError(f"address families differ: {src} → {dst}", path="dst")
    if s.version == 4:
        pseudo = s.packed + d.packed + struct.pack("!BBH", 0, proto, len(l4))
    else:
        pseudo = s.packed + d.packed + struct.pack("!IxxxB", len(l4), proto)
    c = inet_checksum(pseudo + bytes(l4))
    if proto == _PROTO_UDP and c == 0:
        c = 0xFFFF
    struct.pack_into("!H", l4, csum_at, c)
    if s.version == 4:
        hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ident & 0xFFFF, 0x4000, 64,
                                    proto, 0, s.packed, d.packed))
        struct.pack_into("!H", hdr, 10, inet_checksum(bytes(hdr)))
        return bytes(hdr) + bytes(l4)
    return struct.pack("!IHBB16s16s", 0x60000000, len(l4), proto, 64, s.packed, d.packed) + bytes(l4)


class _Sink(Protocol):
    def write(self, data: bytes, /) -> int: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


#: A capture's mode whatever the umask: it holds the configs, which may carry SIP digest passwords
#: (ours: as a TLS key log, :func:`phoneemu.files.private_file`).
CAPTURE_MODE = 0o600


_PCAP_FILE_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_RAW)


def _begin_capture_file(path: str | Path, on_wait: Callable[[str], None]) -> _Sink:
    """The capture ``path`` opened (:func:`_open_capture_file`) and its file header written; an OSError
    of either is an EncodeError naming ``path`` (:func:`_cannot_write`)."""
    try:
        sink = _open_capture_file(path, on_wait)
    except OSError as exc:
        raise _cannot_write(path, exc) from None
    try:
        sink.write(_PCAP_FILE_HEADER)
    except OSError as exc:
        with contextlib.suppress(OSError):
            sink.close()  # (an AtomicFile whose write failed has removed its temporary file already)
        raise _cannot_write(path, exc) from None
    return sink


def _open_capture_file(path: str | Path, on_wait: Callable[[str], None]) -> _Sink:
    """The sink of a capture named by path (:class:`PcapWriter`): a FIFO, a device or ``/dev/stdout``
    (:func:`~phoneemu.files.output_target`) written in place (a
    FIFO with no reader yet waited for, as ``tcpdump -w`` waits, ``on_wait`` told first), else an
    :class:`~phoneemu.files.AtomicFile` put in place at ``close()`` (an interrupted run keeps the
    previous file), private from its first byte."""
    target, in_place = output_target(path)  # /dev/stdout sent to a file: that file, in place
    if in_place:
        return _open_in_place(target, on_wait)
    return AtomicFile(target, mode=CAPTURE_MODE)


def _open_in_place(path: str | Path, on_wait: Callable[[str], None]) -> BinaryIO:
    """A FIFO or device opened for writing, blocking. Opened without blocking first: a FIFO with no
    reader fails that with ENXIO; ``on_wait`` is told, then its open waits for one (a user starting
    Wireshark on it). A descriptor of ours (``/dev/stdout``) is duplicated: the file the shell opened is
    written at its offset, after what the command wrote there (:func:`~phoneemu.files.dup_own_descriptor`)."""
    own = dup_own_descriptor(path)
    if own is not None:
        return os.fdopen(own, "wb", buffering=0)
    flags = os.O_WRONLY | os.O_CLOEXEC | os.O_APPEND  # a device or FIFO: nothing truncated
    try:
        fd = os.open(path, flags | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno != errno.ENXIO or not stat.S_ISFIFO(os.stat(path).st_mode):
            raise
        on_wait(f"{path}: waiting for a reader on FIFO (as tcpdump -w: e.g. wireshark -k -i {path})")
        fd = os.open(path, flags)
    else:
        os.set_blocking(fd, True)
    return os.fdopen(fd, "wb", buffering=0)  # each record reaches the reader as it is written


def fifo_wait_teller(said_by: str = "phoneemu") -> Callable[[str], None]:
    """What a capture says when it waits for a FIFO's reader (the user must start one): a line on stderr,
    ``SAID_BY: capture F: waiting for a reader ...``, ``said_by`` the command as typed (:mod:`phoneemu.cli`
    rules; given to :class:`PcapWriter` as ``on_wait``). The default, ``phoneemu``, is for a writer made
    where the command is not known."""
    def say(text: str) -> None:
        print(f"{said_by}: capture {text}", file=sys.stderr, flush=True)
    return say


_say_waiting = fifo_wait_teller()


def _cannot_write(path: str | Path, exc: OSError) -> EncodeError:
    """The capture ``path`` could not be opened or begun (a read-only folder, a full disk, a device
    refusing writes): an EncodeError naming the file, saying why (the system's words for its errno)."""
    why = os.strerror(exc.errno) if exc.errno else str(exc)
    return EncodeError(f"cannot write the capture: {why}", fmt="pcap", file=str(path))


class PcapWriter:
    """Append packets to a classic pcap file (LINKTYPE_RAW); thread-safe; ``with PcapWriter(p) as w``.
    A file named by path is written atomically (:class:`phoneemu.files.AtomicFile`): it appears, whole,
    at ``close()``, mode :data:`CAPTURE_MODE` whatever the umask (an existing file is replaced by it); a
    FIFO or device is written as packets come (unbuffered: each record reaches its reader at once), its
    mode left as it is (as a key log's). A FIFO with no reader is waited for, as ``tcpdump -w`` waits,
    ``on_wait`` told first (default: said on stderr). A file that cannot be opened or begun (a read-only
    folder) is an EncodeError naming it.

    A write that fails later — the FIFO's reader went away (Wireshark closed: EPIPE), a full disk —
    **stops the capture** and nothing is raised (ours: a capture watches a boot or a fleet, it must not
    end it): :attr:`stopped` is an EncodeError naming the file ("reader of F went away after N bytes",
    N the bytes written to it), told once to ``on_stop`` (default: ``on_wait``, else said on stderr), and
    :attr:`stop_cause` says why in a few words (``reader went away``, or ``write failed: `` and the
    system's words, e.g. ``write failed: No space left on device``; our wording);
    the packets after it are dropped (:attr:`dropped`), ``close()`` still closes the file. A file named by
    path whose temporary file could not be written is not put in place."""

    def __init__(self, path: str | Path | BinaryIO, *, clock: Callable[[], float] = time.time,
                 on_wait: Callable[[str], None] | None = None,
                 on_stop: Callable[[str], None] | None = None) -> None:
        self._fh: _Sink
        self.name = str(path) if isinstance(path, (str, Path)) else str(getattr(path, "name", "<stream>"))
        if isinstance(path, (str, Path)):
            self._fh = _begin_capture_file(path, on_wait or _say_waiting)
            self._owned = True
        else:
            self._fh = path
            self._owned = False
            try:
                self._fh.write(_PCAP_FILE_HEADER)
            except OSError as exc:
                raise _cannot_write(self.name, exc) from None
        self._on_stop = on_stop or on_wait
        self._clock = clock
        self._lock = threading.Lock()
        self._ident = 0
        self.count = 0
        #: bytes written to the capture so far, its file header included
        self.written = len(_PCAP_FILE_HEADER)
        #: why the capture stopped early (class docstring), None while it goes on
        self.stopped: EncodeError | None = None
        #: the same in a few words (class docstring), None while it goes on
        self.stop_cause: str | None = None
        #: packets not written because the capture had stopped
        self.dropped = 0

    def packet(self, ip_packet: bytes, ts: float | None = None) -> None:
        """Write one raw IP packet record (dropped once the capture has stopped: class docstring)."""
        t = self._clock() if ts is None else ts
        sec = int(t)
        usec = min(round((t - sec) * 1_000_000), 999_999)
        data = ip_packet[:SNAPLEN]
        record = struct.pack("<IIII", sec, usec, len(data), len(ip_packet)) + data
        with self._lock:
            if self.stopped is not None:
                self.dropped += 1
                return
            try:
                self._write_all(record)
            except OSError as exc:
                self.dropped += 1
                told = self._stop(exc)
            else:
                self.count += 1
                return
        self._tell(told)

    def _write_all(self, data: bytes) -> None:
        """All of ``data`` into the sink (an unbuffered FIFO may take part of it), counted in
        :attr:`written` as it goes. Called with the lock held."""
        while data:
            n = self._fh.write(data)
            if not n:  # (a blocking sink never takes nothing; a non-blocking one given to us might)
                raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))
            self.written += n
            data = data[n:]

    def _stop(self, exc: OSError) -> str:
        """The capture stops on a failed write (class docstring): :attr:`stopped` and :attr:`stop_cause`
        set; returns what to tell. Called with the lock held."""
        if isinstance(exc, BrokenPipeError) or exc.errno == errno.EPIPE:
            what = f"went away after {self.written} bytes"
            self.stopped = EncodeError(f"reader of {self.name} {what}", fmt="pcap", file=self.name)
            self.stop_cause = "reader went away"
            told = f"{self.name}: reader {what}: capture stopped (the run goes on)"
        else:
            why = os.strerror(exc.errno) if exc.errno else str(exc)
            self.stop_cause = f"write failed: {why}"
            self.stopped = EncodeError(f"cannot write the capture after {self.written} bytes: {why}",
                                       fmt="pcap", file=self.name)
            told = f"{self.name}: cannot write after {self.written} bytes: {why}: capture stopped " \
                   "(the run goes on)"
        return told

    def _tell(self, text: str) -> None:
        (self._on_stop or _say_waiting)(text)

    def _next_ident(self) -> int:
        with self._lock:
            self._ident = (self._ident + 1) & 0xFFFF
            return self._ident

    def udp(self, src: Endpoint, dst: Endpoint, payload: bytes, ts: float | None = None) -> None:
        """One UDP datagram ``src → dst`` (IPv4 or IPv6 from the address text)."""
        l4 = bytearray(struct.pack("!HHHH", src[1], dst[1], 8 + len(payload), 0) + payload)
        self.packet(_ip_packet(src[0], dst[0], _PROTO_UDP, l4, csum_at=6, ident=self._next_ident()), ts)

    def tcp(self, src: Endpoint, dst: Endpoint, *, seq: int, ack: int, flags: int, payload: bytes = b"",
            window: int = 65535, options: bytes = b"", ts: float | None = None) -> None:
        """One TCP segment; ``options`` must be a multiple of 4 bytes."""
        if len(options) % 4:
            raise EncodeError("TCP options must be padded to 4 bytes", path="options")
        off = (20 + len(options)) // 4
        l4 = bytearray(struct.pack("!HHIIBBHHH", src[1], dst[1], seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                                   off << 4, flags, window, 0, 0) + options + payload)
        self.packet(_ip_packet(src[0], dst[0], _PROTO_TCP, l4, csum_at=16, ident=self._next_ident()), ts)

    def flush(self) -> None:
        """Flush the sink; a failure stops the capture (class docstring)."""
        with self._lock:
            if self.stopped is not None:
                return
            try:
                self._fh.flush()
            except OSError as exc:
                told = self._stop(exc)
            else:
                return
        self._tell(told)

    def close(self) -> None:
        """Close a sink named by path (a file put in place), flush one given; a failure stops the
        capture (class docstring) and is not raised. A second call does nothing more."""
        told = None
        with self._lock:
            try:
                if self._owned:
                    self._fh.close()  # (a buffered sink closes its file even when the flush fails)
                elif self.stopped is None:
                    self._fh.flush()
            except OSError as exc:
                if self.stopped is None:
                    told = self._stop(exc)
        if told is not None:
            self._tell(told)

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TcpFlow:
    """A synthesised TCP conversation between ``client`` and ``server`` written to a PcapWriter."""

    def __init__(self, writer: PcapWriter, client: Endpoint, server: Endpoint, *, mss: int = 1460,
                 client_isn: int = 0x1000, server_isn: int = 0x2000) -> None:
        self.w = writer
        self.client = client
        self.server = server
        self.mss = mss
        self._seq = {True: client_isn, False: server_isn}  # key: from_client
        self.opened = False
        self.closed = False

    def _ends(self, from_client: bool) -> tuple[Endpoint, Endpoint]:
        return (self.client, self.server) if from_client else (self.server, self.client)

    def open(self, ts: float | None = None) -> None:
        """Three-way handshake."""
        mss_opt = struct.pack("!BBH", 2, 4, self.mss)
        c, s = self.client, self.server
        self.w.tcp(c, s, seq=self._seq[True], ack=0, flags=SYN, options=mss_opt, ts=ts)
        self._seq[True] += 1
        self.w.tcp(s, c, seq=self._seq[False], ack=self._seq[True], flags=SYN | ACK, options=mss_opt, ts=ts)
        self._seq[False] += 1
        self.w.tcp(c, s, seq=self._seq[True], ack=self._seq[False], flags=ACK, ts=ts)
        self.opened = True

    def send(self, from_client: bool, data: bytes, ts: float | None = None) -> None:
        """Data in segments of at most ``mss`` bytes, then a pure ACK from the receiver."""
        if not self.opened:
            self.open(ts)
        if not data:
            return
        src, dst = self._ends(from_client)
        for i in range(0, len(data), self.mss):
            seg = data[i : i + self.mss]
            self.w.tcp(src, dst, seq=self._seq[from_client], ack=self._seq[not from_client],
                       flags=PSH | ACK, payload=seg, ts=ts)
            self._seq[from_client] += len(seg)
        self.w.tcp(dst, src, seq=self._seq[not from_client], ack=self._seq[from_client], flags=ACK, ts=ts)

    def client_data(self, data: bytes, ts: float | None = None) -> None:
        self.send(True, data, ts)

    def server_data(self, data: bytes, ts: float | None = None) -> None:
        self.send(False, data, ts)

    def close(self, from_client: bool = True, ts: float | None = None) -> None:
        """FIN/ACK from the closer, FIN/ACK back, last ACK."""
        if self.closed:
            return
        if not self.opened:
            self.open(ts)
        a, b = self._ends(from_client)
        fa, fb = from_client, not from_client
        self.w.tcp(a, b, seq=self._seq[fa], ack=self._seq[fb], flags=FIN | ACK, ts=ts)
        self._seq[fa] += 1
        self.w.tcp(b, a, seq=self._seq[fb], ack=self._seq[fa], flags=FIN | ACK, ts=ts)
        self._seq[fb] += 1
        self.w.tcp(a, b, seq=self._seq[fa], ack=self._seq[fb], flags=ACK, ts=ts)
        self.closed = True


# --- reader ---------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class PcapPacket:
    """One decoded UDP or TCP packet; TCP fields are 0 for UDP."""

    ts: float
    proto: str  # "udp" | "tcp"
    src: str
    dst: str
    sport: int
    dport: int
    payload: bytes
    seq: int = 0
    ack: int = 0
    flags: int = 0
    index: int = 0
    offset: int = field(default=0, compare=False)  # file offset of its record (pcap) or block (pcapng)
    #: bytes of its UDP/TCP payload the capture does not hold (module rules, "snaplen"): ``payload`` is
    #: what it holds, their start
    missing: int = field(default=0, compare=False)


def _perr(msg: str, offset: int, path: str) -> DecodeError:
    return DecodeError(msg, fmt="pcap", offset=offset, path=path)


Note = Callable[[str], None]
"""Told what a capture holds that the reading skips (a refused or unfinished fragmented datagram, an
interface of a link type not read), one line each, naming the capture offset."""

# IP fragments (module rules): what the reassembly holds at once, and for how long
FRAG_MAX_DATAGRAMS = 64  # datagrams being reassembled at once (the oldest given up beyond)
FRAG_MAX_PIECES = 256  # fragments of one datagram (a 64 KiB datagram over a 296-byte MTU)
FRAG_MAX_BYTES = 4 << 20  # bytes held by all the datagrams being reassembled
FRAG_TIMEOUT = 30.0  # seconds of capture time a datagram may take (Linux's ipfrag_time)
_IPV6_EXTENSIONS = {0: "hop-by-hop", 43: "routing", 60: "destination options", 51: "authentication"}
_IPV6_FRAGMENT = 44
_IPV6_MAX_EXTENSIONS = 16  # extension headers before the upper layer (ours: a chain of them is bounded)


@dataclass
class _Datagram:
    first_ts: float
    first_offset: int
    proto: int | None = None  # IPv6: the next header of the fragment at offset 0
    pieces: dict[int, bytes] = field(default_factory=dict)  # start -> data
    size: int | None = None  # known from the last fragment
    held: int = 0


class Reassembly:
    """IPv4 / IPv6 fragments put back together (module rules): bounded in datagrams, fragments, bytes and
    capture time; overlapping fragments refuse their datagram (an exact duplicate, a SPAN port's copy,
    is ignored); a refused or unfinished datagram is told to ``note``. ``max_bytes``: the bytes held at
    most, when less than ``FRAG_MAX_BYTES`` (a reader's share of a smaller memory budget)."""

    def __init__(self, note: Note | None, *, max_bytes: int | None = None) -> None:
        self._note = note
        self._max_bytes = max_bytes
        self.seen = False  # a fragment was given
        self._open: dict[tuple[object, ...], _Datagram] = {}  # insertion order: the oldest first
        # datagrams refused or just reassembled -> when: their later fragments (a SPAN port's second copy)
        # are ignored for FRAG_TIMEOUT s
        self._closed: dict[tuple[object, ...], float] = {}
        self._held = 0
        self.given_up = 0

    @property
    def limit(self) -> int:
        """The bytes held at most: ``FRAG_MAX_BYTES``, or ``max_bytes`` when less."""
        return FRAG_MAX_BYTES if self._max_bytes is None else max(0, min(self._max_bytes, FRAG_MAX_BYTES))

    @property
    def held(self) -> int:
        """The bytes of the fragments held now."""
        return self._held

    @property
    def reserved(self) -> int:
        """What a memory budget sets aside for the reassembly: its :attr:`limit` once a fragment was seen
        (it may fill up to that between two packets read), else 0."""
        return self.limit if self.seen else 0

    def _tell(self, text: str) -> None:
        self.given_up += 1
        if self._note is not None:
            self._note(text)

    def _drop(self, key: tuple[object, ...], why: str, offset: int, ts: float) -> None:
        dg = self._open.pop(key)
        self._held -= dg.held
        self._close(key, ts)
        self._tell(f"capture offset {offset}: {_frag_name(key)} {why}: the datagram is skipped "
                   f"(its first fragment at capture offset {dg.first_offset})")

    def _close(self, key: tuple[object, ...], ts: float) -> None:
        self._closed.pop(key, None)
        self._closed[key] = ts
        while len(self._closed) > FRAG_MAX_DATAGRAMS:
            del self._closed[next(iter(self._closed))]

    def _expire(self, ts: float, offset: int) -> None:
        for key in [k for k, dg in self._open.items() if ts - dg.first_ts > FRAG_TIMEOUT]:
            self._drop(key, f"incomplete after {FRAG_TIMEOUT:g} s", offset, ts)
        for key in [k for k, t in self._closed.items() if ts - t > FRAG_TIMEOUT]:
            del self._closed[key]

    def add(self, key: tuple[object, ...], start: int, data: bytes, *, more: bool, proto: int | None,
            ts: float, offset: int) -> tuple[int | None, bytes] | None:
        """One fragment (its data at byte ``start`` of the datagram); the whole datagram's payload (and
        the IPv6 next header of its first fragment) when this one completes it, else None."""
        self.seen = True
        self._expire(ts, offset)
        if key in self._closed:
            return None
        dg = self._open.get(key)
        if dg is None:
            while len(self._open) >= FRAG_MAX_DATAGRAMS:
                self._drop(next(iter(self._open)), f"given up: more than {FRAG_MAX_DATAGRAMS} datagrams "
                           "being reassembled at once", offset, ts)
            dg = self._open[key] = _Datagram(first_ts=ts, first_offset=offset)
        end = start + len(data)
        if (more and len(data) % 8) or end > 65535 or (not more and dg.size not in (None, end)):
            self._drop(key, "has fragments of inconsistent lengths", offset, ts)
            return None
        same = dg.pieces.get(start)
        if same is not None and same == data and (more or dg.size == end):
            return None  # a duplicate (a SPAN port copies a frame twice): already held
        for s, piece in dg.pieces.items():
            if s < end and start < s + len(piece):
                self._drop(key, "has overlapping fragments", offset, ts)
                return None
        if dg.size is not None and end > dg.size:
            self._drop(key, "has a fragment past its last one", offset, ts)
            return None
        if len(dg.pieces) >= FRAG_MAX_PIECES:
            self._drop(key, f"has more than {FRAG_MAX_PIECES} fragments", offset, ts)
            return None
        dg.pieces[start] = data
        dg.held += len(data)
        self._held += len(data)
        if not more:
            dg.size = end
            if any(s >= end for s in dg.pieces):
                self._drop(key, "has a fragment past its last one", offset, ts)
                return None
        if start == 0:
            dg.proto = proto
        limit = self.limit
        while self._held > limit:
            self._drop(next(iter(self._open)), f"given up: the fragments held exceed {limit} "
                       "bytes", offset, ts)
        if key not in self._open or dg.size is None or dg.held != dg.size:
            return None
        del self._open[key]
        self._held -= dg.held
        self._close(key, ts)
        return dg.proto, b"".join(dg.pieces[s] for s in sorted(dg.pieces))

    def finish(self) -> None:
        """The end of the capture: the datagrams still missing fragments are told."""
        for key, dg in list(self._open.items()):
            self._tell(f"capture offset {dg.first_offset}: {_frag_name(key)} incomplete at the end of the "
                       "capture: the datagram is skipped")
        self._open.clear()
        self._held = 0


_Reassembly = Reassembly


class _HeaderCut(str):
    """A note that a packet the snaplen cut inside its headers is skipped (:func:`_decode_ip`)."""

    __slots__ = ()


class _HeaderCutNotes:
    """``note`` as :func:`read_pcap` tells it: the first packet cut inside its headers is told whole,
    later ones only counted and said once at the end (a storm taken with ``tcpdump -s 40``: millions of
    packets, one line); every other note passes as it is."""

    __slots__ = ("count", "note")

    def __init__(self, note: Note) -> None:
        self.note = note
        self.count = 0

    def __call__(self, text: str) -> None:
        if isinstance(text, _HeaderCut):
            self.count += 1
            if self.count > 1:
                return
            text = f"{text} (later such packets are counted)"
        self.note(text)

    def finish(self) -> None:
        if self.count > 1:
            self.note(f"{self.count} packets in all were cut inside their headers by the capture's snaplen: "
                      "skipped (capture with tcpdump -s 0 to keep whole packets)")


def _frag_name(key: tuple[object, ...]) -> str:
    version, src, dst, ident = key[0], key[1], key[2], key[-1]
    return f"IPv{version} fragmented datagram {src} → {dst} id {ident:#x}"


def _decode_ip(pkt: bytes, base: int, ts: float, index: int, *, record: int = 0,
               frags: _Reassembly | None = None, cut: int = 0, note: Note | None = None) -> PcapPacket | None:
    """The UDP/TCP packet of one IP packet (bounded by its own lengths: an Ethernet frame's padding or
    FCS after it is not read); fragments are given to ``frags`` (None: skipped). ``cut``: bytes of the
    frame the record says the snaplen left out (module rules, "snaplen"): the packet's lengths may then
    claim at most that many bytes more than it holds; a packet cut inside its headers is told to ``note``
    and skipped."""
    path = f"packet[{index}]"
    short = 0  # bytes of the IP packet its lengths claim that the capture does not hold

    def skip(what: str) -> None:
        if note is not None:
            note(_HeaderCut(f"capture offset {record} (packet[{index}]): {what}: the packet was cut by the "
                            f"capture's snaplen ({cut} bytes not captured): it is skipped (capture with "
                            "tcpdump -s 0 to keep whole packets)"))
    if len(pkt) < 1:
        if cut:
            skip("no IP header")
            return None
        raise _perr("empty IP packet", base, path)
    version = pkt[0] >> 4
    if version == 4:
        if len(pkt) < 20:
            if cut:
                skip("IPv4 header truncated")
                return None
            raise _perr(f"IPv4 header needs 20 bytes, got {len(pkt)}", base, f"{path}.ipv4")
        ihl = (pkt[0] & 0x0F) * 4
        total = struct.unpack_from("!H", pkt, 2)[0]
        if total == 0 and len(pkt) > 20:  # segmentation offload seen on the sending host: length unset
            total = len(pkt)
        if cut and 20 <= ihl <= total and len(pkt) < total <= len(pkt) + cut:  # cut by the snaplen
            if len(pkt) < ihl:
                skip("IPv4 options truncated")
                return None
            short, total = total - len(pkt), len(pkt)
        if ihl < 20 or total < ihl or total > len(pkt):
            raise _perr(f"IPv4 lengths ihl={ihl} total={total} do not fit {len(pkt)}", base + 2,
                        f"{path}.ipv4.total_length")
        proto = pkt[9]
        src = str(ipaddress.IPv4Address(pkt[12:16]))
        dst = str(ipaddress.IPv4Address(pkt[16:20]))
        l4 = pkt[ihl:total]
        l4_off = base + ihl
        frag = struct.unpack_from("!H", pkt, 6)[0]
        if frag & 0x3FFF:  # more fragments, or an offset: a fragment
            if frags is None:
                return None
            if short:
                skip(f"a fragment of IPv4 datagram id {struct.unpack_from('!H', pkt, 4)[0]:#x}, its datagram "
                     "cannot be reassembled")
                return None
            whole = frags.add((4, src, dst, proto, struct.unpack_from("!H", pkt, 4)[0]), (frag & 0x1FFF) * 8,
                              bytes(l4), more=bool(frag & 0x2000), proto=None, ts=ts, offset=record)
            if whole is None:
                return None
            l4 = whole[1]
    elif version == 6:
        if len(pkt) < 40:
            if cut:
                skip("IPv6 header truncated")
                return None
            raise _perr(f"IPv6 header needs 40 bytes, got {len(pkt)}", base, f"{path}.ipv6")
        plen = struct.unpack_from("!H", pkt, 4)[0]
        if cut and len(pkt) < 40 + plen <= len(pkt) + cut:  # cut by the snaplen
            short, plen = 40 + plen - len(pkt), len(pkt) - 40
        if 40 + plen > len(pkt):
            raise _perr(f"IPv6 payload length {plen} exceeds {len(pkt) - 40}", base + 4,
                        f"{path}.ipv6.payload_length")
        proto = pkt[6]
        src = str(ipaddress.IPv6Address(pkt[8:24]))
        dst = str(ipaddress.IPv6Address(pkt[24:40]))
        l4 = pkt[40 : 40 + plen]
        l4_off = base + 40
        fragmented = False
        for _ in range(_IPV6_MAX_EXTENSIONS):
            if proto in _IPV6_EXTENSIONS or (proto == _IPV6_FRAGMENT and not fragmented):
                need = 8 if proto == _IPV6_FRAGMENT or len(l4) < 2 else \
                    (l4[1] + 2) * 4 if proto == 51 else (l4[1] + 1) * 8
                if short and len(l4) < need:
                    skip("IPv6 extension header truncated")
                    return None
                if short and proto == _IPV6_FRAGMENT and struct.unpack_from("!H", l4, 2)[0] & 0xFFF9:
                    skip(f"a fragment of IPv6 datagram id {struct.unpack_from('!I', l4, 4)[0]:#x}, its "
                         "datagram cannot be reassembled")
                    return None
            if proto in _IPV6_EXTENSIONS:
                if len(l4) < 8:
                    raise _perr(f"IPv6 {_IPV6_EXTENSIONS[proto]} header truncated", l4_off,
                                f"{path}.ipv6.extension")
                size = (l4[1] + 2) * 4 if proto == 51 else (l4[1] + 1) * 8
                if size > len(l4):
                    raise _perr(f"IPv6 {_IPV6_EXTENSIONS[proto]} header of {size} bytes exceeds the "
                                f"{len(l4)} remaining", l4_off + 1, f"{path}.ipv6.extension")
                proto, l4, l4_off = l4[0], l4[size:], l4_off + size
            elif proto == _IPV6_FRAGMENT and not fragmented:
                if len(l4) < 8:
                    raise _perr("IPv6 fragment header truncated", l4_off, f"{path}.ipv6.fragment")
                nxt, _res, frag, ident = struct.unpack_from("!BBHI", l4, 0)
                fragmented = True
                if not frag & 0xFFF9:  # offset 0, no more fragments: an atomic fragment (RFC 6946)
                    proto, l4, l4_off = nxt, l4[8:], l4_off + 8
                    continue
                if frags is None:
                    return None
                whole = frags.add((6, src, dst, ident), frag & 0xFFF8, bytes(l4[8:]), more=bool(frag & 1),
                                  proto=nxt, ts=ts, offset=record)
                if whole is None or whole[0] is None:
                    return None
                proto, l4 = whole[0], whole[1]
            else:
                break
    else:
        raise _perr(f"unknown IP version {version}", base, f"{path}.ip.version")
    if proto == _PROTO_UDP:
        if len(l4) < 8:
            if short:
                skip("UDP header truncated")
                return None
            raise _perr("UDP header truncated", l4_off, f"{path}.udp")
        sport, dport, ulen = struct.unpack_from("!HHH", l4, 0)
        missing = ulen - len(l4) if short and ulen >= 8 and len(l4) < ulen <= len(l4) + short else 0
        if ulen < 8 or ulen > len(l4) + missing:
            raise _perr(f"UDP length {ulen} does not fit {len(l4)}", l4_off + 4, f"{path}.udp.length")
        return PcapPacket(ts=ts, proto="udp", src=src, dst=dst, sport=sport, dport=dport,
                          payload=bytes(l4[8:ulen]), index=index, offset=record, missing=missing)
    if proto == _PROTO_TCP:
        if len(l4) < 20:
            if short:
                skip("TCP header truncated")
                return None
            raise _perr("TCP header truncated", l4_off, f"{path}.tcp")
        sport, dport, seq, ack, off, flags = struct.unpack_from("!HHIIBB", l4, 0)
        hl = (off >> 4) * 4
        if short and hl >= 20 and len(l4) < hl <= len(l4) + short:  # its options cut: no payload held
            short, l4 = len(l4) + short - hl, l4 + bytes(hl - len(l4))  # (at most 40 bytes: bounded)
        if hl < 20 or hl > len(l4):
            raise _perr(f"TCP data offset {hl} does not fit {len(l4)}", l4_off + 12,
                        f"{path}.tcp.data_offset")
        return PcapPacket(ts=ts, proto="tcp", src=src, dst=dst, sport=sport, dport=dport,
                          payload=bytes(l4[hl:]), seq=seq, ack=ack, flags=flags, index=index,
                          offset=record, missing=short)
    return None


CutShort = Callable[[DecodeError], None]
"""Told that the capture ends inside a packet (the error, naming file and offset); reading stops there."""


def read_pcap(path: str | Path, *, max_packets: int = 10_000_000,
              cut_short: CutShort | None = None, note: Note | None = None,
              reassembly: Reassembly | None = None) -> Iterator[PcapPacket]:
    """Yield the UDP/TCP packets of a classic pcap or pcapng file; malformed input raises DecodeError.

    The file is read one record at a time: memory stays bounded by the snaplen (at most
    ``SNAPLEN``) whatever the size of the capture, gzip-compressed or not. A file that ends inside a
    packet raises too, or with ``cut_short`` ends the packets there and tells it (named with the file).
    IP fragments are reassembled (bounded: ``FRAG_*``); ``note`` is told what is skipped (a refused or
    unfinished fragmented datagram, a pcapng interface of a link type not read). ``reassembly``: the
    fragments' reassembly to use (its bounds and its ``note``; a caller counting what it holds in a
    memory budget), else a new one telling ``note``."""
    named: CutShort | None = None
    frags = reassembly if reassembly is not None else Reassembly(note)
    cuts = _HeaderCutNotes(note) if note is not None else None
    note = cuts
    if cut_short is not None:
        def named(exc: DecodeError) -> None:
            cut_short(naming_file(exc, str(path)))
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO with no writer must not hang
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        if stat.S_ISREG(mode):
            os.set_blocking(fd, True)
            with os.fdopen(fd, "rb", closefd=False) as f:
                yield from _read_records(f.read, max_packets, named, frags=frags, note=note)
        else:  # a pipe (tcpdump -w - |, <(zcat ...)) or device: each read waits at most STREAM_TIMEOUT s
            yield from _read_records(_StreamRead(fd, str(path)), max_packets, named, frags=frags, note=note)
        frags.finish()
        if cuts is not None:
            cuts.finish()
    except DecodeError as exc:
        raise naming_file(exc, str(path)) from None
    finally:
        os.close(fd)


STREAM_TIMEOUT = 10.0
"""Seconds a pipe or device named as the capture may go without sending a byte."""


class _StreamRead:
    """``read(n)`` of a non-blocking pipe or device: up to ``n`` bytes (fewer only at end of file),
    a DecodeError after ``STREAM_TIMEOUT`` seconds without data."""

    def __init__(self, fd: int, name: str) -> None:
        self._fd, self._name, self._pos = fd, name, 0
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)

    def __call__(self, n: int) -> bytes:
        chunks: list[bytes] = []
        got = 0
        deadline = time.monotonic() + STREAM_TIMEOUT
        while got < n:
            # poll first: a FIFO whose writer has not come yet reads as end of file, but never polls ready
            left = deadline - time.monotonic()
            if left <= 0 or not self._poll.poll(max(1, int(left * 1000))):
                raise _perr(f"{self._name}: no data for {STREAM_TIMEOUT:g} s (no writer, or a pipe or "
                            "device that never closes?)", self._pos + got, "stream")
            try:
                chunk = os.read(self._fd, min(n - got, 1 << 20))
            except BlockingIOError:
                continue
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
            deadline = time.monotonic() + STREAM_TIMEOUT
        self._pos += got
        return b"".join(chunks)


def _frame_packet(link: int, frame: bytes, body_at: int, ts: float, index: int, *,
                  record: int = 0, frags: _Reassembly | None = None, cut: int = 0,
                  note: Note | None = None) -> PcapPacket | None:
    """The UDP/TCP packet of one captured frame of link type ``link`` (None: not UDP/TCP over IP);
    ``cut``: bytes of the frame its record says were not captured (module rules, "snaplen")."""
    ip_at = body_at
    if link in _LINK_AF:  # BSD loopback: a 4-byte address family, host (NULL) or network (LOOP) order
        if len(frame) < 4:
            if cut:
                return _decode_ip(b"", body_at, ts, index, record=record, cut=cut, note=note)  # skipped
            raise _perr(f"link-layer header (type {link}) truncated", body_at, f"packet[{index}].link")
        family = {struct.unpack_from(order, frame, 0)[0] for order in _LINK_AF[link]}
        frame = frame[4:] if family & (_AF_INET | _AF_INET6) else b""
        ip_at += 4
        return _decode_ip(frame, ip_at, ts, index, record=record, frags=frags, cut=cut,
                          note=note) if frame else None
    header = _LINK_HEADERS[link]
    if header is not None:
        size, at = header
        if len(frame) < size:
            if cut:
                return _decode_ip(b"", body_at, ts, index, record=record, cut=cut, note=note)  # skipped
            raise _perr(f"link-layer header (type {link}) truncated", body_at, f"packet[{index}].link")
        ethertype = struct.unpack_from("!H", frame, at)[0]
        tags = 0
        while ethertype in _VLAN_TPIDS:  # 802.1Q / 802.1ad tags (stacked: QinQ): TCI, then the EtherType
            if tags >= _MAX_VLAN_TAGS:
                return None
            if len(frame) < size + 4:
                if cut:
                    return _decode_ip(b"", body_at, ts, index, record=record, cut=cut, note=note)
                raise _perr(f"VLAN tag {tags + 1} truncated", body_at + size, f"packet[{index}].vlan")
            ethertype = struct.unpack_from("!H", frame, size + 2)[0]
            size += 4
            tags += 1
        frame = frame[size:] if ethertype in (0x0800, 0x86DD) else b""
        ip_at += size
    return _decode_ip(frame, ip_at, ts, index, record=record, frags=frags, cut=cut,
                      note=note) if frame else None


_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d")


def capture_kind(head: bytes) -> str | None:
    """``"pcap"`` or ``"pcapng"`` when ``head`` (a file's first 4 bytes or more) starts a capture, else
    None."""
    if head[:4] == _PCAPNG_SHB:
        return "pcapng"
    return "pcap" if head[:4] in _PCAP_MAGICS else None
_PCAPNG_MAX_INTERFACES = 65536
_PCAPNG_TS_MIN, _PCAPNG_TS_MAX = -62135596800, 253402300799  # ours: the years 1..9999 (a clock's, UTC)
_PCAPNG_MAX_BLOCK = SNAPLEN + 4096  # a packet block holds at most one snaplen of data and its options
_PCAPNG_DSB = 10  # Decryption Secrets Block
_DSB_TLS = 0x544C534B  # its secrets type "TLSK": an NSS key log
_KEYLOG_LIMIT = 16 << 20  # as phoneemu.net.tls_decrypt.KEYLOG_LIMIT (bytes of key log kept)
_PCAPNG_MAX_SECRETS = _KEYLOG_LIMIT + 4096  # a secrets block: the key log, padded, and its options


def _read_pcapng(read: Callable[[int], bytes], max_packets: int, cut_short: CutShort | None, *,
                 secrets: list[bytes] | None = None, frags: _Reassembly | None = None,
                 note: Note | None = None) -> Iterator[PcapPacket]:
    """pcapng (the Wireshark default): Section Header, Interface Description, Enhanced and Simple
    Packet blocks; other blocks are skipped. Every block length is checked against its trailer and
    bounded by ``_PCAPNG_MAX_BLOCK`` (a Decryption Secrets Block by ``_PCAPNG_MAX_SECRETS``, skipped in
    pieces), so memory stays bounded as for classic pcap. With ``secrets``: the TLS key logs of the
    secrets blocks before the first packet are appended to it, and the reading stops at that packet."""
    end = "<"
    links: list[tuple[int, int, int, int]] = []  # per interface: link type, snaplen, ticks/s, offset s
    pos, index = 0, 0
    kept = 0  # bytes of secrets appended, each block counted with its separator
    unread: tuple[int, int, int] | None = None  # first packet of a link type not read: link, offset, iface
    readable = False  # a packet of a link type read was seen
    while True:
        head = read(8)
        if not head:
            if unread is not None and not readable:  # nothing read at all: say why, as for classic pcap
                raise _perr(f"unsupported link type {unread[0]} (expected one of {sorted(_LINK_HEADERS)})",
                            unread[1], f"interface[{unread[2]}].linktype")
            return
        # the capture's own header (its first section header block) cut short is an error, as a classic
        # pcap's file header is (a later block cut short: the capture ends inside its last packet)
        ends_inside: CutShort | None = None if pos == 0 else cut_short
        if len(head) < 8:
            _end_inside(_perr(f"block header needs 8 bytes, {len(head)} remain", pos, "block"), ends_inside)
            return
        if head[:4] == _PCAPNG_SHB:
            bom = read(4)
            if len(bom) < 4:
                _end_inside(_perr(f"section header block needs 28 bytes, {8 + len(bom)} remain", pos,
                                  "section"), ends_inside)
                return
            if bom == b"\x4d\x3c\x2b\x1a":
                end = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                end = ">"
            else:
                raise _perr(f"bad pcapng byte-order magic {bom.hex()}", pos + 8, "section.byte_order")
            links = []
            btype, blen = _PCAPNG_SHB, struct.unpack_from(end + "I", head, 4)[0]
            body_prefix = bom
        else:
            btype, blen = head[:4], struct.unpack_from(end + "I", head, 4)[0]
            body_prefix = b""
        kind = struct.unpack(end + "I", btype)[0]
        bound = _PCAPNG_MAX_SECRETS if kind == _PCAPNG_DSB and btype != _PCAPNG_SHB else _PCAPNG_MAX_BLOCK
        if blen < (28 if btype == _PCAPNG_SHB else 12) or blen % 4 or blen > bound:
            raise _perr(f"pcapng block length {blen} (expected a multiple of 4 in 12..{bound})",
                        pos + 4, "block.length")
        if secrets is not None and kind in (2, 3, 6):
            return  # the first packet: the secrets before it are all read
        collect = kind == _PCAPNG_DSB and secrets is not None and kept <= _KEYLOG_LIMIT
        if kind == _PCAPNG_DSB and not collect:  # skipped in pieces: only its length is kept
            left = blen - 12
            while left > 0 and (piece := read(min(left, _PCAPNG_MAX_BLOCK))):
                left -= len(piece)
            body = b""
            short = left > 0
        else:
            body = body_prefix + read(blen - 12 - len(body_prefix))
            short = len(body) < blen - 12
        trailer = read(4)
        if short or len(trailer) < 4:
            _end_inside(_perr(f"pcapng block of {blen} bytes truncated", pos, "block"), ends_inside)
            return
        if struct.unpack(end + "I", trailer)[0] != blen:
            raise _perr("pcapng block length and trailing length differ", pos + blen - 4, "block.length")
        at = pos + 8
        if collect and secrets is not None and len(body) >= 8:
            stype, slen = struct.unpack_from(end + "II", body, 0)
            if stype == _DSB_TLS:
                if slen > len(body) - 8:
                    raise _perr(f"secrets length {slen} exceeds the block", at + 4, "secrets.length")
                # at most one byte past the limit is kept in all: the caller cuts the key log there
                secrets.append(body[8:8 + min(slen, _KEYLOG_LIMIT + 1 - kept)])
                kept += len(secrets[-1]) + 1
        if kind == 1:  # Interface Description Block
            if len(body) < 8:
                raise _perr("interface description truncated", at, "interface")
            link, _reserved, snaplen = struct.unpack_from(end + "HHI", body, 0)
            units = 1_000_000
            offset_s = 0
            opt = 8
            while opt + 4 <= len(body):
                code, olen = struct.unpack_from(end + "HH", body, opt)
                if code == 0:
                    break
                if opt + 4 + olen > len(body):
                    raise _perr(f"option {code} of {olen} bytes overruns the block "
                                f"({len(body) - opt - 4} remain)", at + opt + 2,
                                f"interface[{len(links)}].option")
                if code == 9 and olen >= 1:  # if_tsresol
                    r = body[opt + 4]
                    units = 2 ** min(r & 0x7F, 64) if r & 0x80 else 10 ** min(r, 19)
                elif code == 14 and olen >= 8:  # if_tsoffset: seconds added to every timestamp
                    offset_s = struct.unpack_from(end + "q", body, opt + 4)[0]
                opt += 4 + olen + (-olen % 4)
            if link not in _LINK_HEADERS and note is not None:  # another interface may hold the phones
                note(f"capture offset {pos}: interface {len(links)} has link type {link}, not read (only "
                     f"{sorted(_LINK_HEADERS)}): its packets are skipped")
            if len(links) >= _PCAPNG_MAX_INTERFACES:  # each is kept for the section: memory stays bounded
                raise _perr(f"more than {_PCAPNG_MAX_INTERFACES} interfaces in one section", pos,
                            f"interface[{len(links)}]")
            links.append((link, snaplen or SNAPLEN, units, offset_s))
        elif kind in (2, 3, 6):  # (obsolete) Packet / Simple / Enhanced Packet Block
            if index >= max_packets:
                raise _perr(f"more than {max_packets} packets", pos, f"packet[{index}]")
            if kind == 6:
                if len(body) < 20:
                    raise _perr("enhanced packet block truncated", at, f"packet[{index}]")
                iface, hi, lo, incl, orig = struct.unpack_from(end + "IIIII", body, 0)
                data_at = 20
            elif kind == 2:  # the Packet Block of old writers: a 16-bit interface and a drops count
                if len(body) < 20:
                    raise _perr("packet block truncated", at, f"packet[{index}]")
                iface, _drops, hi, lo, incl, orig = struct.unpack_from(end + "HHIIII", body, 0)
                data_at = 20
            else:
                if len(body) < 4:
                    raise _perr("simple packet block truncated", at, f"packet[{index}]")
                iface, hi, lo = 0, 0, 0
                orig = struct.unpack_from(end + "I", body, 0)[0]
                incl = min(orig, len(body) - 4)
                data_at = 4
            if iface >= len(links):
                raise _perr(f"packet of interface {iface}, {len(links)} described", at, f"packet[{index}]")
            link, _snaplen, units, offset_s = links[iface]
            if incl > len(body) - data_at:
                raise _perr(f"captured length {incl} exceeds the block", at + 12, f"packet[{index}].incl_len")
            frame = body[data_at:data_at + incl]
            ticks = (hi << 32) | lo
            ts = offset_s + ticks // units + (ticks % units) / units
            if not _PCAPNG_TS_MIN <= ts <= _PCAPNG_TS_MAX:  # no clock shows it: the phone's would be it
                raise _perr(f"timestamp {ticks} at {units} ticks/s, offset {offset_s} s, is {ts:.0f} s: "
                            f"outside the years 1..9999", at + 4, f"packet[{index}].timestamp")
            pkt = None
            if link in _LINK_HEADERS:
                readable = True
                pkt = _frame_packet(link, frame, at + data_at, ts, index, record=pos, frags=frags,
                                    cut=max(orig - incl, 0), note=note)
            elif unread is None:
                unread = (link, pos, iface)
            if pkt is not None:
                yield pkt
            index += 1
        pos += blen


def embedded_keylog(path: str | Path) -> str | None:
    """The TLS key log embedded in the pcapng (or gzip-compressed pcapng) at ``path`` (module rules);
    None when it has none, or is not a regular file (a pipe is read once, by :func:`read_pcap`).
    Malformed input raises DecodeError naming the file."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
    except OSError:
        return None
    found: list[bytes] = []
    with open(path, "rb") as f:
        try:  # a damaged gzip stream is an error naming the file, as when read_pcap reads it
            head = f.read(24)
            read: Callable[[int], bytes] = f.read
            if head[:2] == _GZIP_MAGIC:
                read = _Gunzip(head, f.read)
                head = read(24)
            if head[:4] != _PCAPNG_SHB:
                return None
            buffered = [head]

            def from_head(n: int) -> bytes:
                out = buffered[0][:n]
                buffered[0] = buffered[0][n:]
                return out + read(n - len(out)) if len(out) < n else out
            for _ in _read_pcapng(from_head, 0, lambda _exc: None, secrets=found):
                pass
        except DecodeError as exc:
            raise naming_file(exc, str(path)) from None
    if not found:
        return None
    data = b"\n".join(found)
    if len(data) > _KEYLOG_LIMIT:  # whole lines only
        data = data[:_KEYLOG_LIMIT].rpartition(b"\n")[0]
    return data.decode("utf-8", errors="replace")


def _end_inside(exc: DecodeError, cut_short: CutShort | None) -> None:
    """The file ended inside a packet: raise ``exc``, or tell ``cut_short`` (the reading stops)."""
    if cut_short is None:
        raise exc
    cut_short(exc)


_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_CHUNK = 1 << 16  # compressed bytes read at a time


class _Prepended:
    """``read(n)`` of ``head`` then of ``fread``: a stream whose first bytes were already read."""

    def __init__(self, head: bytes, fread: Callable[[int], bytes]) -> None:
        self._head, self._fread = head, fread

    def read(self, n: int = -1, /) -> bytes:
        n = _GZIP_CHUNK if n < 0 else n
        out, self._head = self._head[:n], self._head[n:]
        return out + self._fread(n - len(out)) if len(out) < n else out

    def seek(self, n: int, /) -> object:
        raise OSError("a capture is read once, from its start")


class _Gunzip:
    """``read(n)`` of the decompressed stream: at most ``n`` bytes decompressed per call (bounded
    memory); a stream cut short ends (``cut`` says so), a damaged one raises DecodeError."""

    def __init__(self, head: bytes, fread: Callable[[int], bytes]) -> None:
        self._gz = gzip.GzipFile(fileobj=_Prepended(head, fread), mode="rb")
        self._pos = 0
        self.cut: DecodeError | None = None

    def __call__(self, n: int) -> bytes:
        chunks: list[bytes] = []
        got = 0
        while got < n and self.cut is None:
            try:
                chunk = self._gz.read(n - got)
            except EOFError:
                self.cut = _perr("the gzip stream ends before its end marker (the file is cut short)",
                                 self._pos + got, "gzip")
                break
            except (OSError, zlib.error) as exc:  # BadGzipFile, a damaged deflate stream, bad CRC
                raise _perr(f"gzip: {exc}", self._pos + got, "gzip") from None
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        self._pos += got
        return b"".join(chunks)


def _read_records(fread: Callable[[int], bytes], max_packets: int, cut_short: CutShort | None, *,
                  gzipped: bool = False, frags: _Reassembly | None = None,
                  note: Note | None = None) -> Iterator[PcapPacket]:
    """The packets of a capture; a gzip stream is decompressed once (one inside it is refused: as
    tshark, and a gzip of a gzip of ... can no longer exhaust the stack)."""
    head = fread(24)
    if head[:2] == _GZIP_MAGIC and gzipped:
        raise _perr("a gzip stream inside the gzip stream (decompress the capture: zcat FILE > out.pcap)", 0,
                    "gzip")
    if head[:2] == _GZIP_MAGIC:
        gunzip = _Gunzip(head, fread)
        told: list[DecodeError] = []
        inner: CutShort | None = None
        if cut_short is not None:
            def inner(exc: DecodeError) -> None:
                told.append(exc)
                cut_short(exc)
        first = gunzip(24)
        if len(first) < 24 and gunzip.cut is not None:  # cut inside its own header: say so, not "24 bytes"
            raise gunzip.cut
        yield from _read_records(_Prepended(first, gunzip).read, max_packets, inner, gzipped=True,
                                 frags=frags, note=note)
        if gunzip.cut is not None and not told:  # the records ended whole where the stream did: cut short
            _end_inside(gunzip.cut, cut_short)
        return
    if head[:4] == _PCAPNG_SHB:
        buffered = [head]

        def read(n: int) -> bytes:
            out = buffered[0][:n]
            buffered[0] = buffered[0][n:]
            return out + fread(n - len(out)) if len(out) < n else out
        yield from _read_pcapng(read, max_packets, cut_short, frags=frags, note=note)
        return
    if len(head) < 24:
        raise _perr(f"file header needs 24 bytes, got {len(head)}", 0, "header")
    magic = head[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise _perr(f"bad magic {magic.hex()}: neither pcap nor pcapng, nor either gzip-compressed (save "
                    "the capture as pcap or pcapng, or convert it: editcap -F pcap in.cap out.pcap)", 0,
                    "header.magic")
    nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    major, _minor, _tz, _sig, snaplen, linktype = struct.unpack_from(end + "HHiIII", head, 4)
    if major != 2:
        raise _perr(f"unsupported version {major}", 4, "header.version_major")
    link = linktype & 0x0FFFFFFF
    if link not in _LINK_HEADERS:
        raise _perr(f"unsupported link type {link} (expected one of {sorted(_LINK_HEADERS)})", 20,
                    "header.linktype")
    limit = max(snaplen, 65535) if snaplen else SNAPLEN
    limit = min(limit, SNAPLEN)
    record = struct.Struct(end + "IIII")
    pos = 24
    index = 0
    while rec := fread(16):
        if index >= max_packets:
            raise _perr(f"more than {max_packets} packets", pos, f"packet[{index}]")
        if len(rec) < 16:
            _end_inside(_perr(f"record header needs 16 bytes, {len(rec)} remain", pos, f"packet[{index}]"),
                        cut_short)
            return
        sec, frac, incl, orig = record.unpack(rec)
        if incl > limit:
            raise _perr(f"captured length {incl} exceeds snaplen {limit}", pos + 8,
                        f"packet[{index}].incl_len")
        body_at = pos + 16
        frame = fread(incl)
        if len(frame) < incl:
            _end_inside(_perr(f"captured length {incl} exceeds remaining {len(frame)}", pos + 8,
                              f"packet[{index}].incl_len"), cut_short)
            return
        ts = sec + frac / (1e9 if nano else 1e6)
        pkt = _frame_packet(link, frame, body_at, ts, index, record=pos, frags=frags, cut=max(orig - incl, 0),
                            note=note)
        if pkt is not None:
            yield pkt
        pos = body_at + incl
        index += 1
