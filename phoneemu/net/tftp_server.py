"""Read-only asyncio TFTP server (RFC 1350 + RFC 2347/2348/2349; spec §C.6, §H.1 UDP 69).

Rules:

* Files come from a provider ``get(name) -> bytes | None`` (the lab serves in-memory rebuilt files) or
  from a root directory. A missing file is answered with ERROR 1 "File not found" — normal for
  trust files (spec §C.6).
* Read-only: a WRQ is refused with ERROR 2 (access violation). A name with ``..``, a leading ``/``,
  a backslash or a NUL/control character is refused with ERROR 2 and logged
  (:func:`~phoneemu.net.tftp_codec.unsafe_name_reason`).
* Modes: ``octet`` and ``netascii`` are both served byte for byte (phones ask for octet; no
  netascii translation — our choice); ``mail`` is refused with ERROR 4.
* Options (RFC 2347): ``blksize`` (capped at ``max_blksize``), ``timeout`` and ``tsize`` (the real
  size is returned whatever the RRQ carried) are acknowledged in an OACK; an invalid value is
  answered with ERROR 8 (our choice; the RFC lets a server ignore it). Unknown options are ignored.
* Lock-step, windowless: one DATA outstanding; on timeout the last packet is retransmitted, at most
  ``retries`` times. A duplicate ACK is ignored — never answered with a DATA (no Sorcerer's
  Apprentice, RFC 1123 §4.2.3.1). Block numbers wrap from 65535 to 0 (RFC 1350 leaves it open; the
  client wraps too), so a file of 65535 blocks or more is served whole.
* Transfer IDs: ``tid_mode="ephemeral"`` (default, RFC 1350: every transfer answers from a new
  port) or ``"shared"`` (one socket, transfers keyed by the peer address; fewer syscalls and no
  socket per transfer). ``bench/tftp.py`` measures both.
* A new RRQ from a peer whose transfer has sent its last block completes that transfer (the
  final ACK may still be queued on the transfer socket); a byte-identical RRQ is a retransmission or
  a network duplicate and is ignored — before any ACK, and later too while the transfer progresses
  (its current packet not yet resent): a duplicated, reordered RRQ must not restart a running
  transfer; any other new RRQ from the same peer (or the same one to a stalled transfer)
  supersedes the old transfer (in ``ephemeral`` mode the same RRQ, or one to a transfer not at its
  last block, displaces it instead; in ``shared`` mode the same RRQ is answered first: both below). A
  DATA or ACK on the main port from a peer without a transfer gets ERROR 5 in ``ephemeral`` mode and
  nothing in ``shared`` mode, where that port is every transfer's TID: it is a late copy from a finished
  transfer, and an ERROR would end the peer's next one.
* Which transfer a client wants, only the client knows (``ephemeral`` mode, RFC 1350: each request gets
  its own TID, the client refuses the other with ERROR 5). The same RRQ reaching a transfer at its last
  block, or a stalled one, is either a new request (the client has the file; its final ACK was lost) or
  a copy the network delayed past the ACKs that followed it (the last DATA was lost: the client waits
  for it from the first TID). So the old transfer is not ended by the new request but *displaced*: it
  runs on, on its own port, and ends once the client takes the new one (its first ACK there: outcome
  ``ok`` "final ACK implied by a new request" at the last block, else ``aborted`` "superseded by a new
  request from the same peer"), or by itself (its ACK, an ERROR, its retries). Was: ended at once, so a
  client whose resent RRQ arrived late (a lossy WAN, a lagging loop) lost its last block for good and
  stalled. At most one displaced transfer per peer (a newer one ends the older); each counts towards
  ``max_transfers``, and at that bound a new request of its peer ends it at once (as above) rather than
  being refused "server busy" for it. ``shared`` mode: below.
* ``shared`` mode keeps one transfer per peer (one socket: the client's packets cannot tell two transfers
  apart). There the same RRQ reaching a transfer past its first ACK that no longer ignores it (at its last
  block, or stalled) is answered with the transfer's current packet, each copy while ``retries`` last (a
  retransmission: counted against them, its own loss draw; the copy itself counts for nothing in the RRQ
  draws, below), and the client's next packet tells which it wants: an ACK of it (the RRQ was a late copy;
  the client still waits for that block) carries the transfer on; the same RRQ once the retries are spent
  ends the old transfer as above and starts the new one. A client that resent its RRQ twice or more (RFC
  1350: at each timeout) may have as many late copies: a second one answered like the first, not taken for
  a new request (was: once a block, the second copy started the new transfer). A client asking anew from a
  reused socket (its final ACK lost) ignores the answers and gets the new transfer once the retries are
  spent — the pool's socket re-ACKs the final DATA instead (:mod:`phoneemu.net.tftp_client`): that ends the
  old transfer ``ok`` at once. Was: ended at once, so
  a client whose resent RRQ arrived late took the new transfer's DATA 1 for a stale block while it waited
  for the last one from the same port, and stalled ("stalled at block 5 after N retries").
* ICMP "port unreachable" from the client (Linux ``IP_RECVERR`` on each ``ephemeral`` transfer socket,
  one ``setsockopt`` a transfer; in ``shared`` mode on the one socket, once: each error names the
  address its datagram went to, the transfer of that peer is looked up; nothing per datagram): the
  client's socket is gone, so the transfer ends at once with outcome ``aborted`` ("client port
  unreachable (ICMP)", logged and counted as other abandoned transfers) instead of resending to a closed
  port until its retries run out. An error about a peer without a transfer (e.g. one refused with an
  ERROR) is only logged; a send to another peer that meets the pending error is sent again
  (:meth:`~phoneemu.net._udp.UdpSocket.sendto`), so one peer's closed port costs the others nothing.
* Bounded: ``max_transfers`` concurrent transfers (ERROR 0 "server busy" beyond), ``max_file_size``.
  In ``ephemeral`` mode every transfer holds a socket, so ``max_transfers`` is further capped by
  :func:`transfer_socket_budget` (half the process's open-file limit): a flood of RRQs — spoofable
  UDP — gets "server busy" instead of using up the descriptors the HTTP, TVS and CAPF servers of the
  same process need. A client's ``timeout`` option above ``max_option_timeout`` (default 5 s) is not
  acknowledged (RFC 2349 lets a server ignore it; the OACK may not change the value) and the server's
  own timeout applies: no request can keep a transfer alive longer than
  ``max(timeout, max_option_timeout) * (retries + 1)`` without ACKing.
* DATA packets are built once per (file content, block size) and shared by every transfer of that
  content (:class:`PacketCache`: keyed by the bytes themselves, so a file the lab changes is a new key
  and never served stale; filled as blocks are first sent; bounded by ``cache_bytes``; large files
  are sliced per block as before). The lab serves the same CTL/ITL to every phone: one packet list
  for all of them instead of a slice and a header per block per phone.
* Hooks: ``loss``/``delay`` injection (each datagram sent or received is dropped with probability
  ``loss``; each sent datagram is delayed by ``delay`` seconds),
  ``on_request`` callback receiving a :class:`TftpRequestEvent` once per request with its final
  outcome, and a ``capture`` sink (:class:`phoneemu.net.capture.UdpSink`) that sees every datagram.
* Repeatable loss (**our convention**): whether a datagram is dropped is a pure function of the
  ``seed`` and what the datagram is (:func:`is_lost`), never of the order datagrams reach the server,
  so phones booting together lose the same packets run after run. What a datagram is: the file name
  (a per-phone file's holds its MAC; never the client's port, an ephemeral one), the RRQ's copy (the
  i-th identical RRQ from one client socket since that socket last acknowledged an answer, below: a
  resent RRQ has its own draw), and for a transfer's datagrams their direction, opcode and block and the
  k-th sending (DATA, OACK: a retransmission has its own draw) or m-th receipt (ACK, since the transfer
  last moved on). A shared file asked by many phones meets the same drops for each; the same request
  made again from scratch (a new boot, a new socket, a pooled socket reused) meets the same drops as
  before. ``loss=0`` costs nothing per datagram.
* RRQ copies end at the first ACK of their transfer (ACK 0 of an OACK, ACK 1 of DATA 1; **ours**): a
  client resends its RRQ only until it takes a first answer (RFC 1350: then its last packet is an ACK),
  and that ACK is the server's only sign it did. So the socket's next RRQ is copy 1 of a new request,
  drawn as a fresh socket's — a pooled socket asking for the same file again while the server still
  re-sends the previous transfer's last block (its final ACK lost) or after it gave up there — and a copy
  the running transfer ignores after that ACK (the network's duplicate) counts for nothing. Before it,
  the same RRQ again is a resend (its first answer lost), copy 2, 3, ... — also when it ends a lingering
  one-block transfer that was never acknowledged (without options its only ACK is the final one: the
  server cannot tell a resend from a new request there). A transfer started by copy k has its datagrams
  drawn with k, however the one before it ended.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import resource
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from phoneemu.errors import DecodeError, EncodeError, TransportError
from phoneemu.net._udp import PeerError, UdpSocket, bound_udp_socket, report_icmp_errors
from phoneemu.net.capture import UdpSink
from phoneemu.net.tftp_codec import (
    BLKSIZE_MAX,
    DEFAULT_BLKSIZE,
    Ack,
    Data,
    Error,
    ErrorCode,
    ReadRequest,
    WriteRequest,
    data_packet,
    decode,
    encode,
    error_packet,
    negotiated,
    unsafe_name_reason,
)
from phoneemu.net.tftp_codec import OptionAck as _OptionAck
from phoneemu.net.tftp_defaults import DEFAULT_RETRIES, DEFAULT_TIMEOUT
from phoneemu.values import host_port

__all__ = [
    "DEFAULT_RETRIES", "DEFAULT_TIMEOUT", "PacketCache", "Provider", "TftpRequestEvent", "TftpServer",
    "is_lost", "loss_key", "provider_from", "transfer_socket_budget",
]

_log = logging.getLogger("phoneemu.net.tftp")

Provider = Callable[[str], "bytes | None"]
Addr = tuple[Any, ...]
Outcome = Literal[
    "ok", "not-found", "refused", "malformed", "busy", "option-refused", "too-large", "timeout",
    "aborted", "error",
]


@dataclass(frozen=True, kw_only=True)
class TftpRequestEvent:
    """One request and its final outcome, given to the ``on_request`` callback."""

    peer: tuple[str, int]
    filename: str
    outcome: Outcome
    size: int | None = None
    blksize: int = DEFAULT_BLKSIZE
    detail: str = ""


def provider_from(source: Provider | Mapping[str, bytes] | str | Path, *, max_file_size: int) -> Provider:
    """A provider from a callable, a mapping of name → bytes, or a root directory."""
    if isinstance(source, (str, Path)):
        root = Path(source).resolve()

        def from_dir(name: str) -> bytes | None:
            p = (root / name).resolve()
            try:
                if not p.is_relative_to(root) or not p.is_file():
                    return None
            except OSError as exc:  # a name no file can have is a missing file (was: ERROR 0 "server error")
                if exc.errno == errno.ENAMETOOLONG:
                    return None
                raise
            if p.stat().st_size > max_file_size:
                raise TransportError(f"{name}: larger than {max_file_size}", kind="too-large", path=name)
            return p.read_bytes()

        return from_dir
    if isinstance(source, Mapping):
        mapping = source
        return mapping.get
    return source


_BUCKET_MAX = 4  # files kept per fingerprint (see PacketCache)
_PACKET_OVERHEAD = 48  # bytes per cached packet besides its data: header, bytes object, list slot
_Packets = list["bytes | None"]  # DATA packet of block n at [n - 1], None until first sent
_Entry = tuple[bytes, _Packets]  # (file content, its DATA packets)


class PacketCache:
    """DATA packets of whole files, shared per (content, blksize); LRU-bounded by ``max_bytes``.

    * Content-addressed: an entry is found by a cheap fingerprint (length, blksize, last 32 bytes —
      no hash of the whole file) and used only if its bytes equal the file served (one memcmp). A
      changed file never matches, so no invalidation is needed and nothing stale is ever served.
    * Filled lazily: a packet is built the first time any transfer sends that block, so an RRQ costs
      no more than before (no amplification by asking for a large file with a small blksize).
    * Bounded: files above ``max_bytes // 8`` or with more than ``max_blocks`` blocks are not cached
      (the transfer slices per block); at most 4 files per fingerprint; the least recently used
      entries go when the accounted size (data plus 48 bytes per block) exceeds ``max_bytes``.
    """

    __slots__ = ("_entries", "hits", "max_blocks", "max_bytes", "max_file", "misses", "size")

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, *, max_blocks: int = 8192) -> None:
        self.max_bytes = max_bytes
        self.max_file = max_bytes // 8
        self.max_blocks = max_blocks
        # fingerprint -> [(content, packets), ...] (more than one only when fingerprints collide)
        self._entries: OrderedDict[tuple[int, int, bytes], list[_Entry]] = OrderedDict()
        self.size = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    @staticmethod
    def _cost(content: bytes, pkts: _Packets) -> int:
        return len(content) + _PACKET_OVERHEAD * len(pkts)

    def packets(self, content: bytes, blksize: int) -> _Packets | None:
        """The shared packet list of ``content`` at ``blksize`` (see class docstring); None: not cached."""
        nblocks = len(content) // blksize + 1  # the last block is short, possibly empty
        if len(content) > self.max_file or nblocks > self.max_blocks:
            return None
        key = (len(content), blksize, content[-32:])
        entries = self._entries
        bucket = entries.get(key)
        if bucket is not None:
            for old, shared in bucket:
                if old is content or old == content:
                    self.hits += 1
                    entries.move_to_end(key)
                    return shared
        self.misses += 1
        pkts: _Packets = [None] * nblocks
        if bucket is None:
            entries[key] = [(content, pkts)]
        else:
            if len(bucket) >= _BUCKET_MAX:  # e.g. fuzzed files that keep length and tail: oldest goes
                self.size -= self._cost(*bucket.pop(0))
            bucket.append((content, pkts))
            entries.move_to_end(key)
        self.size += self._cost(content, pkts)
        while self.size > self.max_bytes and len(entries) > 1:
            _key, dropped = entries.popitem(last=False)
            self.size -= sum(self._cost(c, p) for c, p in dropped)
        return pkts


def transfer_socket_budget(share: float = 0.5) -> int:
    """Sockets an ephemeral-TID TFTP server may hold at once: ``share`` of the soft RLIMIT_NOFILE
    (at least 8). The rest is left to listening sockets, HTTP/TVS/CAPF connections and files."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft > 1 << 20:
        soft = 1 << 20
    return max(8, int(soft * share))


def loop_clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """The clock of ``loop`` (its ``time``, what its timers run by), read once per DATA sent: asyncio's own
    ``BaseEventLoop.time`` is ``time.monotonic()`` and nothing else, so that is called straight (one
    Python call less per block, issue #6); any other loop's ``time`` (uvloop's, a patched one) as it is."""
    if _asyncios_own_time(getattr(loop.time, "__func__", None)):
        return time.monotonic
    return loop.time


def _asyncios_own_time(fn: object) -> bool:
    """Whether ``fn`` is ``BaseEventLoop.time`` as asyncio defines it, told by where its code was compiled
    (the code's qualified name and file), not by identity: a fake clock patched on the class is not,
    whether patched before this module was imported or after (was: the class's ``time`` taken at import,
    so a clock patched before it was read as ``time.monotonic``), nor one that wears asyncio's names
    (``functools.wraps(BaseEventLoop.time)``: a spy, a fake clock; was: its ``__qualname__`` and
    ``__module__`` taken for asyncio's, the server's deadlines on another clock than its timers)."""
    code = getattr(fn, "__code__", None)
    return (getattr(code, "co_qualname", None) == "BaseEventLoop.time"
            and getattr(code, "co_filename", None) == _BASE_EVENTS_FILE)


#: where asyncio's event loop is defined (a sourceless install names its ``.pyc``: then no function's code
#: is taken for asyncio's own ``time`` and each loop's ``time`` is read as it is, correct if slower)
_BASE_EVENTS_FILE = asyncio.base_events.__file__


def loss_key(seed: int) -> bytes:
    """The hash key of a loss ``seed`` (any integer; :func:`is_lost`)."""
    return hashlib.blake2b(f"phoneemu loss seed {seed}".encode(), digest_size=32).digest()


def is_lost(key: bytes, loss: float, what: tuple[object, ...]) -> bool:
    """Whether the simulated network drops the datagram ``what`` names (str, bytes and int fields):
    a keyed hash of it below ``loss`` — the same answer for the same seed and datagram, whatever the
    order datagrams come in (module docstring, our convention); over many datagrams a share ``loss``."""
    digest = hashlib.blake2b(repr(what).encode(), key=key, digest_size=8).digest()
    return int.from_bytes(digest, "big") < loss * 18446744073709551616.0  # 2**64


_ASKED_MAX = 4096  # client sockets whose RRQ copies are counted (TftpServer._asked): the oldest go first
_HEARD_MAX = 64  # distinct datagrams a transfer counts between two blocks (a peer sending junk): then anew


def _request_name(data: bytes) -> bytes:
    """The file name field of an RRQ/WRQ datagram, as sent (the loss draws' identity)."""
    end = data.find(b"\0", 2)
    return data[2:] if end < 0 else data[2:end]


def _not_started() -> float:
    raise TransportError("tftp: server not started", kind="error")


def _peer(addr: Addr) -> tuple[str, int]:
    return (str(addr[0]), int(addr[1]))


class _Transfer:
    """Server side of one RRQ: sends DATA, waits for its ACK, retransmits on timeout."""

    __slots__ = (
        "acked", "asked", "blksize", "block", "data", "deadline", "done", "filename", "heard", "heard_at",
        "last", "last_pkt", "nblocks", "packets", "peer", "request", "retries", "server", "timeout", "timer",
        "transport",
    )

    def __init__(self, server: TftpServer, transport: UdpSocket, peer: Addr, *,
                 request: bytes, filename: str, data: bytes, blksize: int, timeout: float,
                 asked: int = 1) -> None:
        self.server = server
        self.asked = asked  # the copy of the RRQ that started it (loss draws, module docstring)
        self.heard: dict[bytes, int] | None = None  # datagram head → receipts at block ``heard_at``
        self.heard_at = 0
        self.transport = transport
        self.peer = peer
        self.request = request
        self.filename = filename
        self.data = data
        self.blksize = blksize
        self.timeout = timeout
        self.nblocks = len(data) // blksize + 1  # a final short (possibly empty) block always ends it
        self.packets = server.packet_cache.packets(data, blksize)
        self.block = 0
        self.acked = False
        self.last = False
        self.last_pkt = b""
        self.retries = 0
        self.done = False
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None

    def start(self, oack: bytes | None) -> None:
        if oack is not None:
            self._send(oack)  # waits for ACK 0
        else:
            self._send_block(1)
        self.timer = self.server.loop.call_at(self.deadline, self._on_timer)

    def _send(self, pkt: bytes) -> None:
        self.last_pkt = pkt
        server = self.server
        self.deadline = server.now() + self.timeout
        if server.loss == 0.0 and server.delay == 0.0 and server.capture is None:
            self.transport.sendto(pkt, self.peer)  # no hook in the way: straight to the socket
        else:
            server.send(self.transport, pkt, self.peer, self.sending(pkt))

    def sending(self, pkt: bytes) -> tuple[object, ...]:
        """What ``pkt`` sent now is for the loss draw: its head and which sending of it (module docstring)."""
        return (self.filename, self.asked, "sent", pkt[:4], self.retries + 1)

    def lost_on_arrival(self, buf: bytes) -> bool:
        """The loss draw of a datagram received for this transfer: the m-th receipt of its head since
        the block last moved on has its own (module docstring)."""
        heard = self.heard
        if heard is None or self.heard_at != self.block or len(heard) >= _HEARD_MAX:
            heard = self.heard = {}
            self.heard_at = self.block
        head = buf[:4]
        m = heard.get(head, 0) + 1
        heard[head] = m
        return self.server.lost((self.filename, self.asked, "heard", head, m))

    def _send_block(self, n: int) -> None:
        """Send DATA ``n`` (the per-ACK path: :meth:`_send` is inlined, one call less per block)."""
        self.block = n
        self.last = n >= self.nblocks
        pkts = self.packets
        pkt = pkts[n - 1] if pkts is not None else None
        if pkt is None:
            off = (n - 1) * self.blksize
            pkt = data_packet(n, self.data[off : off + self.blksize])
            if pkts is not None:
                pkts[n - 1] = pkt  # built once, sent by every transfer of these bytes
        self.last_pkt = pkt
        server = self.server
        self.deadline = server.now() + self.timeout
        if server.loss == 0.0 and server.delay == 0.0 and server.capture is None:
            self.transport.sendto(pkt, self.peer)
        else:
            server.send(self.transport, pkt, self.peer, self.sending(pkt))

    def ignores(self, request: bytes) -> bool:
        """Whether ``request`` is the same RRQ again while this transfer runs — the client's retransmission,
        or a copy the network duplicated or delayed (even past our first ACKs) — and so ignored. Only a
        stalled transfer (its current packet already resent) gives way to it: a client that gave up and
        asks again from the same port; a transfer at its last block too (the client has it, module
        docstring)."""
        return (request == self.request and not self.last
                and (self.retries == 0 or (self.block <= 1 and not self.acked)))

    def answers_copy(self, request: bytes) -> bool:
        """``shared`` mode: whether ``request``, the same RRQ again reaching this transfer past its first ACK
        where :meth:`ignores` no longer holds (its last block sent, or its current packet resent), is answered
        with the current packet (module docstring): each copy, while retries are left."""
        return request == self.request and self.acked and self.retries < self.server.retries

    def answer_copy(self) -> None:
        """Send the current packet again for a copy of the request: a retransmission (counted against
        ``retries``, its own loss draw); the client's next packet tells whether it wanted it."""
        self.retries += 1
        self.server.retransmits += 1
        self._send(self.last_pkt)

    def on_ack(self, ack: int) -> None:
        if ack != self.block & 0xFFFF:
            return  # duplicate or stale ACK: ignored, never answered (no Sorcerer's Apprentice)
        if not self.acked:  # the first answer taken: the request is no longer resent (module docstring)
            self.acked = True
            self.server.answered(self)
        if self.last:
            self.finish("ok")
            return
        self.retries = 0
        self._send_block(self.block + 1)

    def on_datagram(self, buf: bytes) -> None:
        if len(buf) == 4 and buf[0] == 0 and buf[1] == 4:
            self.on_ack((buf[2] << 8) | buf[3])
            return
        try:
            pkt = decode(buf)
        except DecodeError as exc:
            err = error_packet(ErrorCode.ILLEGAL_OPERATION, str(exc))
            self.server.send(self.transport, err, self.peer, self.sending(err))
            self.finish("aborted", f"malformed packet from client: {exc}")
            return
        if isinstance(pkt, ReadRequest) and buf == self.request:
            return  # duplicate RRQ while the transfer runs: our retransmission timer covers it
        if isinstance(pkt, Error):
            self.finish("aborted", f"client sent error: {pkt}")
            return
        err = error_packet(ErrorCode.ILLEGAL_OPERATION, "unexpected packet")
        self.server.send(self.transport, err, self.peer, self.sending(err))
        self.finish("aborted", f"unexpected {type(pkt).__name__} during transfer")

    def _on_timer(self) -> None:
        if self.done:
            return
        now = self.server.loop.time()
        if now < self.deadline:
            self.timer = self.server.loop.call_at(self.deadline, self._on_timer)
            return
        self.retries += 1
        if self.retries > self.server.retries:
            self.finish("timeout", f"no ACK for block {self.block} after {self.server.retries} retries")
            return
        self.server.retransmits += 1
        self._send(self.last_pkt)
        self.timer = self.server.loop.call_at(self.deadline, self._on_timer)

    def finish(self, outcome: Outcome, detail: str = "") -> None:
        if self.done:
            return
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
        self.server.transfer_done(self, outcome, detail)


class TftpServer:
    """Read-only TFTP server; ``async with TftpServer(files) as srv: srv.port``."""

    def __init__(
        self,
        source: Provider | Mapping[str, bytes] | str | Path,
        host: str = "127.0.0.1",
        port: int = 69,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        max_transfers: int = 4096,
        max_option_timeout: float = 5.0,
        max_file_size: int = 32 * 1024 * 1024,
        max_blksize: int = BLKSIZE_MAX,
        tid_mode: Literal["ephemeral", "shared"] = "ephemeral",
        loss: float = 0.0,
        delay: float = 0.0,
        seed: int = 0,
        on_request: Callable[[TftpRequestEvent], None] | None = None,
        capture: UdpSink | None = None,
        rcvbuf: int = 4 * 1024 * 1024,
        cache_bytes: int = 64 * 1024 * 1024,
        allow_peer: Callable[[str], bool] | None = None,
    ) -> None:
        if not 0.0 <= loss < 1.0:
            raise EncodeError(f"loss {loss} outside [0, 1)", path="loss")
        if delay < 0.0:
            raise EncodeError(f"delay {delay} is negative", path="delay")
        if tid_mode not in ("ephemeral", "shared"):
            raise EncodeError(f"tid_mode {tid_mode!r} is not 'ephemeral' or 'shared'", path="tid_mode")
        self.provider = provider_from(source, max_file_size=max_file_size)
        self.host = host
        self.requested_port = port
        self.timeout = timeout
        self.retries = retries
        # ephemeral TIDs hold one socket per transfer: never more than the descriptor budget
        self.max_transfers = (max_transfers if tid_mode == "shared"
                              else max(1, min(max_transfers, transfer_socket_budget())))
        self.max_option_timeout = max_option_timeout
        self.max_file_size = max_file_size
        self.max_blksize = max(8, min(max_blksize, BLKSIZE_MAX))
        self.tid_mode = tid_mode
        self.loss = loss
        self.delay = delay
        self.seed = seed
        #: client socket → (hash of its last RRQ, copies) until it acknowledges an answer (loss draws)
        self._asked: OrderedDict[Addr, tuple[int, int]] = OrderedDict()
        self.on_request = on_request
        self.capture = capture
        self.rcvbuf = rcvbuf
        self.packet_cache = PacketCache(cache_bytes)
        #: ``allow_peer(host)`` False: that host's requests are refused (ERROR 2, outcome "refused"),
        #: the provider not asked (``fuzz --serve --device``: mutants for the device under test only)
        self.allow_peer = allow_peer
        self._transport: UdpSocket | None = None
        self._by_peer: dict[Addr, _Transfer] = {}
        #: ephemeral mode: a peer's transfer a newer request of that peer displaced (module docstring)
        self._displaced: dict[Addr, _Transfer] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.now: Callable[[], float] = _not_started  # the loop's clock once started
        self.stats: dict[str, int] = {}  # outcome → count
        self.retransmits = 0

    # --- lifecycle ------------------------------------------------------------------
    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "server not started"
        return self._loop

    async def start(self) -> TftpServer:
        self._loop = asyncio.get_running_loop()
        self.now = loop_clock(self._loop)
        sock = bound_udp_socket(self.host, self.requested_port, rcvbuf=self.rcvbuf)
        shared = self.tid_mode == "shared"
        self._transport = UdpSocket(self._loop, sock, self.on_main_datagram,
                                    self._on_shared_error if shared else self._on_socket_error)
        if shared:  # the client's port closed: end its transfer (module docstring)
            self._transport.icmp_errors = report_icmp_errors(sock)
        _log.info("tftp: serving on %s (tid_mode=%s, at most %d transfers)", host_port(self.host, self.port),
                  self.tid_mode, self.max_transfers)
        return self

    @property
    def port(self) -> int:
        assert self._transport is not None, "server not started"
        return int(self._transport.sockname[1])

    @property
    def active_transfers(self) -> int:
        return len(self._by_peer) + len(self._displaced)

    async def close(self) -> None:
        for t in [*self._by_peer.values(), *self._displaced.values()]:
            t.finish("aborted", "server shutting down")
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        await asyncio.sleep(0)  # let transports finish closing

    async def __aenter__(self) -> TftpServer:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- I/O hooks ------------------------------------------------------------------
    @property
    def seed(self) -> int:
        """The loss draws' seed (:func:`is_lost`): same seed, same datagrams dropped."""
        return self._seed

    @seed.setter
    def seed(self, value: int) -> None:
        self._seed = value
        self._loss_key = loss_key(value)

    def lost(self, what: tuple[object, ...]) -> bool:
        """Whether the datagram ``what`` names is dropped (module docstring: repeatable loss)."""
        return self.loss > 0.0 and is_lost(self._loss_key, self.loss, ("tftp", *what))

    def answered(self, t: _Transfer) -> None:
        """``t``'s client acknowledged its first answer: its RRQ copies are no longer counted, the socket's
        next request is copy 1 (module docstring, RRQ copies). Once a transfer; nothing is counted without
        loss."""
        entry = self._asked.get(t.peer) if self._asked else None
        if entry is not None and entry[0] == hash(t.request):
            del self._asked[t.peer]
        if self._displaced and self._by_peer.get(t.peer) is t:
            self._end_displaced(t.peer)

    def _end_displaced(self, peer: Addr) -> None:
        """The client ``peer`` took its newest transfer (module docstring, displaced transfers): the one
        displaced ends, ``ok`` at its last block (the client had it), else ``aborted``."""
        old = self._displaced.pop(peer, None)
        if old is None:
            return
        if old.last:
            old.finish("ok", "final ACK implied by a new request")
        else:
            old.finish("aborted", "superseded by a new request from the same peer")

    def _displace(self, t: _Transfer) -> None:
        """A new request of ``t``'s peer takes its place in the table; ``t`` runs on, on its own port, until
        it ends or the client takes the new one (module docstring). An older displaced one of that peer
        is ended: a client wants one transfer at a time."""
        older = self._displaced.pop(t.peer, None)
        if older is not None:
            older.finish("aborted", "superseded by a new request from the same peer")
        del self._by_peer[t.peer]
        self._displaced[t.peer] = t

    def _made_room_for(self, peer: Addr) -> bool:
        """At ``max_transfers``, a request of ``peer`` ends the transfer it displaced, as a new request did
        before transfers were displaced (module docstring): the client's own old transfer never has it
        refused "server busy" (was: refused, the bound counting a transfer the client had left)."""
        if peer not in self._displaced:
            return False
        self._end_displaced(peer)
        return True

    def _answer_copy(self, t: _Transfer, data: bytes, addr: Addr) -> None:
        """``shared`` mode: ``t`` answers the copy ``data`` of its request with its current packet (module
        docstring); the copy counts for nothing in the loss draws, as one a transfer ignores (a client asking
        anew then draws as a fresh socket would: its next RRQ is the copy this one was)."""
        t.answer_copy()
        entry = self._asked.get(addr) if self._asked else None
        if entry is not None and entry[0] == hash(data):
            if entry[1] > 1:
                self._asked[addr] = (entry[0], entry[1] - 1)
            else:
                del self._asked[addr]

    def _lost_request(self, data: bytes, addr: Addr) -> bool:
        """The loss draw of an RRQ/WRQ: the i-th identical copy from one client socket since it last
        acknowledged an answer has its own; a copy a transfer so acknowledged ignores is not counted."""
        t = self._by_peer.get(addr)
        if t is not None and t.acked and t.ignores(data):
            return self.lost((_request_name(data), "rrq", 1))
        asked = self._asked
        digest = hash(data)
        prev = asked.pop(addr, None)
        copies = prev[1] + 1 if prev is not None and prev[0] == digest else 1
        asked[addr] = (digest, copies)
        if len(asked) > _ASKED_MAX:
            asked.popitem(last=False)
        return self.lost((_request_name(data), "rrq", copies))

    def _copies(self, addr: Addr) -> int:
        """Which copy of its RRQ ``addr`` sent last (1 when not counted: a network without loss)."""
        entry = self._asked.get(addr)
        return 1 if entry is None else entry[1]

    def _lost_on_arrival(self, data: bytes, addr: Addr) -> bool:
        """The loss draw of a datagram on the main port: a request, one of a transfer, or a stray."""
        if len(data) >= 2 and data[0] == 0 and data[1] in (1, 2):
            return self._lost_request(data, addr)
        t = self._by_peer.get(addr)
        if t is not None:
            return t.lost_on_arrival(data)
        return self.lost(("stray", data[:4]))

    def captured(self, src: Addr, transport: UdpSocket, data: bytes) -> None:
        if self.capture is not None:
            self.capture.udp(_peer(src), _peer(transport.sockname), data)

    @staticmethod
    def _on_socket_error(exc: OSError) -> None:
        _log.debug("tftp: socket error %s", exc)

    def _on_shared_error(self, exc: OSError) -> None:
        """An ICMP error on the ``shared`` socket: "port unreachable" from a peer with a transfer ends that
        transfer at once (outcome ``aborted``); any other error is only logged (module docstring)."""
        if isinstance(exc, PeerError) and exc.errno == errno.ECONNREFUSED:
            t = self._by_peer.get(exc.peer)
            if t is not None:
                t.finish("aborted", "client port unreachable (ICMP)")
                return
        self._on_socket_error(exc)

    def send(self, transport: UdpSocket, pkt: bytes, peer: Addr, what: tuple[object, ...]) -> None:
        """Send ``pkt`` through the hooks; ``what`` names it for the loss draw (:meth:`lost`)."""
        if self.loss > 0.0 and self.lost(what):
            return
        if self.capture is not None:
            self.capture.udp(_peer(transport.sockname), _peer(peer), pkt)
        if self.delay > 0.0:
            self.loop.call_later(self.delay, self._send_later, transport, pkt, peer)
        else:
            transport.sendto(pkt, peer)

    @staticmethod
    def _send_later(transport: UdpSocket, pkt: bytes, peer: Addr) -> None:
        if not transport.is_closing():
            transport.sendto(pkt, peer)

    def _observe(self, peer: Addr, filename: str, outcome: Outcome, *, size: int | None = None,
                 blksize: int = DEFAULT_BLKSIZE, detail: str = "") -> None:
        self.stats[outcome] = self.stats.get(outcome, 0) + 1
        if self.on_request is None:
            return
        try:
            self.on_request(TftpRequestEvent(peer=_peer(peer), filename=filename, outcome=outcome,
                                             size=size, blksize=blksize, detail=detail))
        except Exception:
            _log.exception("tftp: on_request callback failed")

    def _refuse(self, transport: UdpSocket, peer: Addr, code: int, message: str, *,
                filename: str, outcome: Outcome, detail: str = "") -> None:
        self.send(transport, error_packet(code, message), peer, (filename, "refused", self._copies(peer)))
        self._observe(peer, filename, outcome, detail=detail or message)

    # --- requests -------------------------------------------------------------------
    def on_main_datagram(self, data: bytes, addr: Addr) -> None:
        t = self._by_peer.get(addr)
        if (t is not None and len(data) == 4 and data[1] == 4 and data[0] == 0 and self.tid_mode == "shared"
                and self.loss == 0.0 and self.capture is None):
            t.on_ack((data[2] << 8) | data[3])  # the common case (no hook to run first): an ACK, at once
            return
        transport = self._transport
        if transport is None or (self.loss > 0.0 and self._lost_on_arrival(data, addr)):
            return
        if self.capture is not None:
            self.captured(addr, transport, data)
        t = self._by_peer.get(addr)
        if t is not None:
            if len(data) == 4 and data[1] == 4 and data[0] == 0 and self.tid_mode == "shared":
                t.on_ack((data[2] << 8) | data[3])  # an ACK after the hooks, without the checks below
                return
            if not (len(data) >= 2 and data[0] == 0 and data[1] in (1, 2)):
                if self.tid_mode == "shared":
                    t.on_datagram(data)
                    return
                # ephemeral mode: a stray packet to the main port gets ERROR 5 below
            elif t.ignores(data):
                return
            elif self.tid_mode == "ephemeral" and (data == t.request or not t.last):
                self._displace(t)  # which of the two transfers the client wants, it tells (docstring)
            elif self.tid_mode == "shared" and t.answers_copy(data):
                self._answer_copy(t, data, addr)  # the client's next packet tells which it wants (docstring)
                return
            elif t.last:
                # the client has the last block and asks again (its final ACK may still sit in the
                # transfer socket's queue): the old transfer is complete
                t.finish("ok", "final ACK implied by a new request")
            else:
                t.finish("aborted", "superseded by a new request from the same peer")
        self._new_request(transport, data, addr)

    def _new_request(self, transport: UdpSocket, data: bytes, addr: Addr) -> None:
        try:
            pkt = decode(data)
        except DecodeError as exc:
            _log.info("tftp: malformed packet from %s: %s", _peer(addr), exc)
            self._refuse(transport, addr, ErrorCode.ILLEGAL_OPERATION, f"malformed: {exc}", filename="",
                         outcome="malformed")
            return
        if isinstance(pkt, WriteRequest):
            self._refuse(transport, addr, ErrorCode.ACCESS_VIOLATION, "read-only server",
                         filename=pkt.filename, outcome="refused", detail="write request")
            return
        if not isinstance(pkt, ReadRequest):
            if isinstance(pkt, (Data, Ack)) and self.tid_mode != "shared":
                # shared mode: this port is every transfer's TID, so a stray ACK here is a late copy
                # from a finished transfer; an ERROR 5 would end the peer's next transfer instead
                self.send(transport, error_packet(ErrorCode.UNKNOWN_TID, "unknown transfer ID"), addr,
                          ("unknown-tid", data[:4]))
            return  # stray ERROR/OACK: never answer an error with an error
        name = pkt.filename
        reason = unsafe_name_reason(name)
        if reason is not None:
            _log.warning("tftp: refused %r from %s: %s", name, _peer(addr), reason)
            self._refuse(transport, addr, ErrorCode.ACCESS_VIOLATION, "access violation", filename=name,
                         outcome="refused", detail=reason)
            return
        if pkt.mode == "mail":
            self._refuse(transport, addr, ErrorCode.ILLEGAL_OPERATION, "mail mode not supported",
                         filename=name, outcome="refused")
            return
        if self.allow_peer is not None and not self.allow_peer(_peer(addr)[0]):
            self._refuse(transport, addr, ErrorCode.ACCESS_VIOLATION, "access violation", filename=name,
                         outcome="refused", detail="host not served")
            return
        if self.active_transfers >= self.max_transfers and not self._made_room_for(addr):
            self._refuse(transport, addr, ErrorCode.NOT_DEFINED, "server busy", filename=name,
                         outcome="busy")
            return
        try:
            opts = negotiated(pkt.options, buf=data)  # an error names the value's offset
        except DecodeError as exc:
            self._refuse(transport, addr, ErrorCode.OPTION_REFUSED, str(exc), filename=name,
                         outcome="option-refused")
            return
        try:
            content = self.provider(name)
        except TransportError as exc:
            self._refuse(transport, addr, ErrorCode.NOT_DEFINED, "file too large", filename=name,
                         outcome="too-large", detail=str(exc))
            return
        except Exception as exc:
            _log.exception("tftp: provider failed for %r", name)
            self._refuse(transport, addr, ErrorCode.NOT_DEFINED, "server error", filename=name,
                         outcome="error", detail=repr(exc))
            return
        if content is None:
            self._refuse(transport, addr, ErrorCode.FILE_NOT_FOUND, "File not found", filename=name,
                         outcome="not-found")
            return
        if len(content) > self.max_file_size:
            self._refuse(transport, addr, ErrorCode.NOT_DEFINED, "file too large", filename=name,
                         outcome="too-large")
            return
        ack: dict[str, str] = {}
        blksize = DEFAULT_BLKSIZE
        timeout = self.timeout
        if opts.blksize is not None:
            blksize = min(opts.blksize, self.max_blksize)
            ack["blksize"] = str(blksize)
        if opts.timeout is not None and opts.timeout <= max(self.timeout, self.max_option_timeout):
            timeout = float(opts.timeout)
            ack["timeout"] = str(opts.timeout)
        elif opts.timeout is not None:  # not acknowledged: our own timeout applies (RFC 2349)
            _log.info("tftp: timeout option %d s from %s above %g s: ignored", opts.timeout, _peer(addr),
                      self.max_option_timeout)
        if opts.tsize is not None:
            ack["tsize"] = str(len(content))
        oack = encode(_OptionAck(options=ack)) if ack else None
        if self.tid_mode == "shared":
            t = _Transfer(self, transport, addr, request=data, filename=name, data=content, blksize=blksize,
                          timeout=timeout, asked=self._copies(addr))
            self._by_peer[addr] = t
            t.start(oack)
        else:
            try:
                sock = bound_udp_socket(self.host, 0)
            except OSError as exc:
                _log.warning("tftp: no socket for transfer to %s: %s", _peer(addr), exc)
                self._refuse(transport, addr, ErrorCode.NOT_DEFINED, "server busy", filename=name,
                             outcome="busy", detail=str(exc))
                return
            holder: list[_Transfer] = []
            tid = UdpSocket(self.loop, sock, lambda d, a: self._on_tid_datagram(holder[0], d, a),
                            lambda exc: self._on_tid_error(holder[0], exc), max_batch=1)
            tid.icmp_errors = report_icmp_errors(sock)  # the client's port closed: end it (docstring)
            t = _Transfer(self, tid, addr, request=data, filename=name, data=content, blksize=blksize,
                          timeout=timeout, asked=self._copies(addr))
            holder.append(t)
            self._by_peer[addr] = t
            t.start(oack)

    def _on_tid_datagram(self, t: _Transfer, data: bytes, addr: Addr) -> None:
        """A datagram on a transfer's own socket (RFC 1350 TID); other peers get ERROR 5."""
        if t.done or (self.loss > 0.0 and t.lost_on_arrival(data)):
            return
        self.captured(addr, t.transport, data)
        if addr[:2] != t.peer[:2]:
            self.send(t.transport, error_packet(ErrorCode.UNKNOWN_TID, "unknown transfer ID"), addr,
                      ("unknown-tid", data[:4]))
            return
        t.on_datagram(data)

    @staticmethod
    def _on_tid_error(t: _Transfer, exc: OSError) -> None:
        """An ICMP error on a transfer's own socket: "port unreachable" from its peer ends the transfer
        at once (outcome ``aborted``), an error about another address is only logged."""
        if ((isinstance(exc, PeerError) and exc.errno == errno.ECONNREFUSED and exc.peer[:2] == t.peer[:2])
                or type(exc) is ConnectionRefusedError):
            t.finish("aborted", "client port unreachable (ICMP)")
        else:
            _log.debug("tftp: socket error %s", exc)

    def transfer_done(self, t: _Transfer, outcome: Outcome, detail: str) -> None:
        if self._by_peer.get(t.peer) is t:
            del self._by_peer[t.peer]
        elif self._displaced.get(t.peer) is t:
            del self._displaced[t.peer]
        if t.transport is not self._transport:
            t.transport.close()
        if outcome != "ok":
            _log.info("tftp: %s to %s: %s %s", t.filename, _peer(t.peer), outcome, detail)
        self._observe(t.peer, t.filename, outcome, size=len(t.data), blksize=t.blksize, detail=detail)
