"""Streaming reassembly of a capture's TFTP transfers, HTTP 6970 exchanges and TLS connections.

One pass, packet by packet (:class:`FlowScanner`); what each flow may hold is capped (:class:`Limits`),
so memory stays bounded whatever the size of the capture or a length field's claim. The rules of the
reassembly itself are those of :mod:`phoneemu.scenario.replay` (its module docstring); this module
adds how they are kept bounded:

* **TFTP**: a transfer keeps its blocks only when the download is wanted (``want_data``: the replayed
  phone's names and cluster-wide names; none for ``--list``), at most ``max_file`` bytes, else it is
  ``too-large`` with a warning naming the transfer and the capture offset. At most ``max_flows``
  transfers are open at once: beyond, the least recently active one ends as it stands.
* **TCP**: each direction is delivered in order as segments arrive; out-of-order segments wait, at
  most ``max_stream`` bytes per direction — beyond, the stream ends there (a gap, with a warning).
  A connection is classified by its client's first bytes (``GET ``/``HEAD `` → HTTP,
  ``16 03`` → TLS, anything else → dropped at once); until then at most :data:`MAX_UNCLASSIFIED`
  bytes per direction are held. A connection ends at FIN from both sides (once each direction is whole
  up to its FIN: a segment the capture holds after the FINs, a retransmission, is still read; a gap
  never filled is one at the end of the capture, not "still open"), RST, eviction (at most
  ``max_flows`` open, least recently active evicted) or the end of the capture.
* **HTTP**: requests and responses are parsed as the bytes come (heads at most 16 KiB); a body is
  kept only when wanted and at most ``max_file`` bytes (else ``too-large`` with a warning; the body
  is skipped, and later responses on the connection still parsed).
* **TLS**: the two directions are kept, at most ``max_tls_stream`` bytes each, for decryption when
  the connection ends (only when a TLS sink asks for them: ``--keylog``); beyond the cap the
  connection is reported as not decrypted, naming the direction and the offsets. With a SIP sink and
  no TLS sink, the first :data:`MAX_TLS_START` bytes of each direction are kept (the hellos and the
  certificates of TLS 1.2 and below) and given to the SIP sink; so are they of a connection the key
  log cannot open.
* **SIP** (only with a SIP sink): a connection whose client's first bytes are ``REGISTER `` is kept,
  at most ``max_sip_stream`` bytes each way (beyond: the rest of that direction is not kept, with a
  warning), and given to the SIP sink at its end; so is every TLS connection (see TLS). A connection the
  key log cannot open (told by its two hellos: no secrets, unknown suite or version) keeps nothing
  past them and is reported as before.
* **snaplen** (*our convention*; a capture taken with ``tcpdump -s 96``): a packet the capture holds
  in part (:attr:`~phoneemu.net.capture.PcapPacket.missing`) has its payload taken as missing — none of
  its bytes is used, its TCP flags are: a TCP direction has a gap there (filled if the segment comes
  again whole), a TFTP answer is not read. A flow that needed it ends ``incomplete`` (a TFTP transfer
  or an HTTP exchange; an HTTP response that never came whole is not ``no-reply``), its detail naming
  the packet index, the capture offset and that the capture's snaplen cut it, with the hint to capture
  with ``-s 0``; a TCP connection whose first bytes are missing cannot be told HTTP, TLS or SIP: a
  warning names it. The first such packet is a warning, the others are counted (a closing warning),
  and the rest of the capture replays.
* **Capture order is the order** (*our convention*: captures merged from several interfaces, or
  taken across a clock step, have timestamps that go backwards): a packet's time is its timestamp,
  or the time of the packet before it when that is later (so times never go back; the first such
  packet is a warning naming its capture offset, the others are counted). Each request (a TFTP RRQ,
  an HTTP request head) and each TCP connection gets its *rank*: a number that grows in capture
  order, one per packet and one per request (``Download.order``; ``order`` given to the TLS sink),
  so that two requests at the same time are still ordered. Ordering, boot windows and matching
  use ranks; times are what is reported and the replayed phone's clock.
* **Overall budget** (``max_memory``, default :data:`MAX_MEMORY`): the per-flow caps bound one flow,
  this bounds everything the scan holds together. Every byte a flow holds is counted where it is
  buffered (TFTP blocks of a kept download, out-of-order TCP segments, bytes not yet classified, HTTP
  heads and kept bodies, TLS streams), each held piece also :data:`PIECE_COST` bytes for Python's
  bookkeeping (an out-of-order TCP segment waiting :data:`SEGMENT_COST`, its heap entry; so that
  one-byte segments cannot hide their cost), and each open flow its fixed state
  (:data:`TFTP_FLOW_COST`, :data:`TCP_FLOW_COST`: estimates, measured with tracemalloc). A finished
  download the sink keeps (``DownloadSink.held``) stays counted: its bytes once per copy, plus
  :data:`PIECE_COST`. After each packet, while the total exceeds the budget (*our convention*):

  - when the kept downloads hold more than half the budget, the sink drops the bytes of its least
    useful kept download (``DownloadSink.drop``; for a replay, :mod:`phoneemu.scenario.replay`
    "Bounded": cluster-wide before the phone's own, the largest first), which is then reported
    ``too-large``, with a warning naming the file, the capture offset and the budget;
  - else the least recently active open flow holding buffered bytes (when none does: the least
    recently active open flow) ends as it stands (as at the end of the capture: a TFTP transfer
    ``incomplete`` or ``no-reply``, an HTTP response ``incomplete``, a TLS connection decrypted as
    far as it goes), with a warning naming the flow, the capture offset and the budget; the late
    packets of an ended TCP connection are ignored.

  So each side may use what the other leaves, and neither a flood of completed downloads nor one of
  unfinished flows can take the other's half; a capture whose total stays within the budget loses
  nothing. The capture reader's reassembly of IP fragments (:class:`phoneemu.net.capture.Reassembly`)
  is counted too (:meth:`FlowScanner.outside`): once the capture has a fragment, at its bound, which
  :func:`reassembly_for` makes at most a quarter of the budget (``FRAG_MAX_BYTES``, 4 MiB, at most) —
  it may fill up to it between two packets, so it is set aside whole. What is held never exceeds the
  budget plus one packet. Not counted here: the port pair of an
  ended TCP connection (at most ``max_flows``), and the records of the downloads a sink keeps (one per
  request: their name, endpoints, times and outcome, bytes or none), which the sink bounds itself — a
  sink with a ``bind(budget, warn, offset)`` method is told the budget, the warnings' destination and
  where the packet being read is (``offset()``) when the scan starts (:mod:`phoneemu.scenario.replay`,
  "Bounded"; ``replay --all`` counts them in the budget, :mod:`phoneemu.scenario.replay_fleet`).
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import ipaddress
import re
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote

from phoneemu.errors import DecodeError, PhoneEmuError
from phoneemu.formats._tlv import printable, printable_latin1
from phoneemu.net.capture import FIN, RST, SYN, PcapPacket, Reassembly
from phoneemu.net.tftp_codec import DEFAULT_BLKSIZE, Data, Error, OptionAck, ReadRequest, WriteRequest, decode
from phoneemu.scenario.bounds import MAX_MEMORY
from phoneemu.values import host_port, parse_ascii_int

__all__ = [
    "CAPTURE_END", "MAX_FILE", "MAX_FLOWS", "MAX_MEMORY", "MAX_SIP_STREAM", "MAX_STREAM", "MAX_TLS_START",
    "MAX_TLS_STREAM", "MAX_UNCLASSIFIED", "PIECE_COST", "SEGMENT_COST", "SNAPLEN_CUT", "TCP_FLOW_COST",
    "TFTP_FLOW_COST",
    "Download", "Endpoint", "FlowScanner", "Limits", "MediaSink", "SipSink", "TlsSink", "first_request",
    "host_key", "mac_of", "reassembly_for", "requested_name", "snaplen_text",
]


def host_key(host: str) -> str:
    """An address as compared between a boot (or its config) and a capture: ``[::1]``, ``::0:1`` and ``::1``
    alike, a name in lower case (the TVS and the HTTPS config replays)."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare).compressed
    except ValueError:
        return bare.lower()


Endpoint = tuple[str, int]
CAPTURE_END = "still open when the capture ended"
"""Ends the detail of a download the capture ended during (our convention: the capture holds it in part)."""
SNAPLEN_CUT = "was cut by the capture's snaplen"
"""In the detail of a download a packet of which the capture holds in part (module rules, "snaplen")."""
MAX_FILE = 32 * 1024 * 1024
"""Bytes of one download (a TFTP transfer, an HTTP body)."""
MAX_STREAM = 8 * 1024 * 1024
"""Out-of-order bytes held per TCP direction, waiting for a missing segment."""
MAX_TLS_STREAM = 4 * 1024 * 1024
"""Bytes per direction of a TLS connection kept for decryption (TVS exchanges are a few KB)."""
MAX_FLOWS = 65_536
"""TFTP transfers open at once, and TCP connections open at once."""
MAX_UNCLASSIFIED = 64 * 1024
"""Bytes per direction held before a TCP connection is known to be HTTP, TLS or neither."""
MAX_TLS_START = 16 * 1024
"""Bytes of each direction of a TLS connection kept for the SIP sink alone (module rules, "TLS")."""
MAX_SIP_STREAM = 256 * 1024
"""Bytes of each direction of a SIP connection kept (module rules, "SIP")."""
PIECE_COST = 160
"""What one held piece counts against the overall budget besides its bytes: CPython's bookkeeping
of a piece's time (a tuple, an int, a float, a bytes header, a list slot)."""
SEGMENT_COST = 200
"""What one out-of-order TCP segment waiting counts besides its bytes: its heap entry (a 4-tuple 72
bytes, two ints 28 each, a float 24, a bytes header 33, a list slot 8: 193, ``sys.getsizeof``)."""
TFTP_FLOW_COST = 512
"""What an open TFTP transfer counts against the overall budget for its fixed state (measured: ~0.4 KiB)."""
TCP_FLOW_COST = 4096
"""What an open TCP connection counts for its fixed state (measured: ~1.6 KiB, ~3.5 KiB once HTTP)."""
_MAX_HEAD = 16 * 1024
_MAX_CHUNK_LINE = 1024
_MAX_REQUESTS = 10_000
_MAC_NAME = re.compile(r"^(?:CTL|ITL)?SEP([0-9A-Fa-f]{12})\.", re.ASCII)
_TFTP_ERRORS = {1: "not-found", 2: "refused"}
_HTTP_OUTCOMES = {200: "ok", 404: "not-found", 403: "refused"}


def mac_of(name: str) -> str | None:
    """The MAC (upper case) a per-device file name carries, else None."""
    m = _MAC_NAME.match(name)
    return m.group(1).upper() if m else None


@dataclass(frozen=True, kw_only=True)
class Limits:
    """The caps of a capture scan (module rules); every one is per flow except ``max_flows`` and
    ``max_memory`` (the overall budget)."""

    max_file: int = MAX_FILE
    max_stream: int = MAX_STREAM
    max_tls_stream: int = MAX_TLS_STREAM
    max_sip_stream: int = MAX_SIP_STREAM
    max_flows: int = MAX_FLOWS
    max_memory: int = MAX_MEMORY

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PhoneEmuError(f"Limits.{f.name}: expected a positive integer, got {value!r}",
                                    path=f"limits.{f.name}")


@dataclass(frozen=True, kw_only=True, slots=True)
class Download:
    """One file request seen in a capture and how it ended."""

    name: str
    protocol: str  # "tftp" | "http"
    client: Endpoint
    server: Endpoint
    start: float
    end: float
    outcome: str  # ok | not-found | refused | error | incomplete | no-reply | too-large
    data: bytes | None = field(default=None, repr=False)
    detail: str = ""
    order: int = 0  # rank of its request in capture order (module rules)
    size: int | None = None  # bytes received when ``ok`` (also when the data was not kept)

    @property
    def mac(self) -> str | None:
        return mac_of(self.name)

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @property
    def nbytes(self) -> int | None:
        """Size of the file when it was received (kept or not), else None."""
        return len(self.data) if self.data is not None else self.size

    def describe(self) -> str:
        n = self.nbytes
        size = f"{n} bytes" if n is not None else self.outcome
        # printed as it is: the capture's name and detail with their control characters escaped
        # (nothing of the input reaches the terminal raw)
        detail = f" ({printable(self.detail)})" if self.detail else ""
        server = host_port(self.server[0], self.server[1])
        return (f"{self.protocol:<4} {server} {printable(self.name)}: {size}"
                f"{'' if self.ok else detail}")


class DownloadSink(Protocol):
    """Where finished downloads go, and which downloads keep their bytes."""

    def request(self, name: str, client: Endpoint, server: Endpoint, start: float, order: int) -> None: ...

    def want_data(self, name: str) -> bool: ...

    def add(self, download: Download) -> None: ...

    @property
    def held(self) -> int:
        """What the kept downloads count against the overall budget (module rules)."""

    def drop(self, why: str) -> Download | None:
        """Drop the bytes of the least useful kept download, ``why`` appended to its detail; that download
        as it was (None: nothing kept)."""


class SipSink(Protocol):
    """Where ended SIP connections go (module rules, "SIP"): ``transport`` "tcp" (plain SIP) or "tls"
    (both directions as kept: the whole streams with a TLS sink, else their starts)."""

    def connection(self, *, client: Endpoint, server: Endpoint, start: float, order: int, transport: str,
                   client_stream: bytes | None, server_stream: bytes | None, problem: str) -> None: ...


class MediaSink(Protocol):
    """Where UDP datagrams that are not TFTP go (a call's RTP/SRTP, module rules "SIP"): the sink keeps
    what it needs, bounded."""

    def datagram(self, src: Endpoint, dst: Endpoint, payload: bytes) -> None: ...


class TlsSink(Protocol):
    """Where ended TLS connections go: both directions (None: not kept, ``problem`` says why).
    ``early_problem`` looks at the first bytes of both directions: why the connection cannot be
    decrypted whatever follows (then nothing more is kept), "" when it can, None: not known yet."""

    def early_problem(self, client_start: bytes, server_start: bytes) -> str | None: ...

    def connection(self, *, client: Endpoint, server: Endpoint, start: float, order: int,
                   client_stream: bytes | None, server_stream: bytes | None, problem: str) -> None: ...


def reassembly_for(limits: Limits, note: Callable[[str], None] | None) -> Reassembly:
    """The IP fragments' reassembly of a scan within ``limits`` (module rules, "Overall budget"): at most a
    quarter of the overall budget, telling ``note``."""
    return Reassembly(note, max_bytes=limits.max_memory // 4)


def _ep(e: Endpoint) -> str:
    return host_port(e[0], e[1])


def snaplen_text(pkt: PcapPacket) -> str:
    """What a packet the capture holds in part is (module rules, "snaplen")."""
    return (f"packet[{pkt.index}] at capture offset {pkt.offset} {SNAPLEN_CUT} ({len(pkt.payload)} "
            f"of its {len(pkt.payload) + pkt.missing} payload bytes captured; capture with tcpdump -s 0)")


# --------------------------------------------------------------------------- the overall budget
class _Flow:
    """A TFTP transfer or a TCP connection: its fixed state (``cost``) and what its buffers hold, counted
    against the budget."""

    __slots__ = ("budget", "cost", "held")

    def __init__(self, budget: _Budget | None, cost: int = 0) -> None:
        self.budget = budget
        self.held = 0
        self.cost = cost
        if budget is not None:
            budget.open(self)

    def charge(self, n: int) -> None:
        """The flow's buffers hold ``n`` bytes more (fewer when negative)."""
        if self.budget is not None and n:
            self.budget.charge(self, n)


class _Budget:
    """The open flows' side of the overall budget (module rules): what every open flow holds, its fixed
    state included; the open flows and those holding buffered bytes, least recently active first."""

    __slots__ = ("flows", "holders", "limit", "peak", "total")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self.peak = 0
        self.flows: OrderedDict[_Flow, None] = OrderedDict()
        self.holders: OrderedDict[_Flow, None] = OrderedDict()

    def open(self, flow: _Flow) -> None:
        """``flow`` starts (the most recently active): its fixed state is held until it ends."""
        self.flows[flow] = None
        self.charge(flow, flow.cost)

    def charge(self, flow: _Flow, n: int) -> None:
        flow.held += n
        self.total += n
        self.peak = max(self.peak, self.total)
        if flow.held > flow.cost:
            if flow not in self.holders:
                self.holders[flow] = None  # charged while its packet is fed: the most recently active
        else:
            self.holders.pop(flow, None)

    def touch(self, flow: _Flow) -> None:
        """A packet of ``flow`` was seen."""
        if flow.held:  # open (an ended flow holds nothing)
            self.flows.move_to_end(flow)
        if flow.held > flow.cost:
            self.holders.move_to_end(flow)

    def oldest(self) -> _Flow:
        """The flow to end first (module rules): the least recently active holding buffered bytes, else
        the least recently active."""
        return next(iter(self.holders or self.flows))

    def release(self, flow: _Flow) -> None:
        """``flow`` ended: its buffers and state are gone (what it downloaded went to the sink)."""
        self.total -= flow.held
        flow.held = 0
        self.holders.pop(flow, None)
        self.flows.pop(flow, None)


# --------------------------------------------------------------------------- TFTP
class _Tftp(_Flow):
    __slots__ = ("ahead", "blksize", "blocks", "client", "cut", "detail", "end", "keep", "name", "order",
                 "outcome", "parts", "server", "size", "start", "tid")

    def __init__(self, rrq: ReadRequest, pkt: PcapPacket, keep: bool, order: int,
                 budget: _Budget | None = None) -> None:
        super().__init__(budget, TFTP_FLOW_COST)
        self.name = rrq.filename
        self.client = (pkt.src, pkt.sport)
        self.server = (pkt.dst, pkt.dport)
        self.start = self.end = pkt.ts
        self.order = order
        self.tid: int | None = None
        self.blksize = DEFAULT_BLKSIZE
        self.blocks = 0
        self.parts: list[bytes] = []
        self.size = 0
        self.keep = keep
        self.outcome: str | None = None
        self.detail = ""
        self.cut: str | None = None  # an answer the capture holds in part (module rules, "snaplen")
        #: (block, capture offset) of a block past the next one, when one came: the next is not captured
        self.ahead: tuple[int, int] | None = None

    def flow(self) -> str:
        server = host_port(self.server[0], self.tid or self.server[1])
        return f"tftp {_ep(self.client)} -> {server} {self.name!r}"

    def answer(self, pkt: PcapPacket, msg: object, max_file: int, warn: Callable[[str], None]) -> None:
        if self.outcome is not None:
            return
        if self.tid is None:
            self.tid = pkt.sport
        elif pkt.sport != self.tid:
            return
        self.end = pkt.ts
        if isinstance(msg, OptionAck):
            text = msg.options.get("blksize")
            size = parse_ascii_int(text) if text is not None else None
            if size is not None and 8 <= size <= 65464:
                self.blksize = size
        elif isinstance(msg, Data):
            if msg.block != (self.blocks + 1) & 0xFFFF:
                if self._past_next(msg.block) and (self.ahead is None or not self._past_next(self.ahead[0])):
                    self.ahead = (msg.block, pkt.offset)
                return  # duplicate or out of window
            self.blocks += 1
            self.size += len(msg.data)
            if self.size > max_file:
                self.charge(-sum(len(p) + PIECE_COST for p in self.parts))
                self.outcome, self.parts = "too-large", []
                self.detail = f"more than {max_file} bytes"
                warn(f"{self.flow()}: more than {max_file} bytes (the per-file cap) at block {self.blocks}, "
                     f"capture offset {pkt.offset}: download reported too-large")
                return
            if self.keep:
                self.parts.append(msg.data)
                self.charge(len(msg.data) + PIECE_COST)
            if len(msg.data) < self.blksize:
                self.outcome = "ok"
        elif isinstance(msg, Error):
            self.outcome = _TFTP_ERRORS.get(msg.code, "error")
            self.detail = f"TFTP error {msg.code}: {printable(msg.message)}"

    def _past_next(self, block: int) -> bool:
        """``block`` comes after the next block in order (half the block numbers ahead, as they wrap)."""
        return 0 < (block - self.blocks - 1) & 0xFFFF < 0x8000

    def client_error(self, msg: Error) -> None:
        if self.outcome is None:
            self.outcome = "error"
            self.detail = f"client aborted: TFTP error {msg.code}: {printable(msg.message)}"

    def finish(self, early: str = "") -> Download:
        """The transfer as it ended; ``early``: why it was ended before its end (appended to the detail)."""
        outcome, detail = self.outcome, self.detail
        if outcome is None and self.cut is not None:  # an answer came, in part (module rules, "snaplen")
            outcome, detail = "incomplete", f"{self.blocks} block(s) received, then {self.cut}"
            if early:
                detail = f"{detail}; {early}"
        elif outcome is None:
            outcome = "incomplete" if self.tid is not None else "no-reply"
            ahead = self.ahead if self.ahead is not None and self._past_next(self.ahead[0]) else None
            detail = "no answer from the server" if self.tid is None else \
                f"{self.blocks} block(s) received, last block missing" if ahead is None else \
                f"{self.blocks} block(s) received, block {(self.blocks + 1) & 0xFFFF} not captured (block " \
                f"{ahead[0]} at capture offset {ahead[1]} came after it)"
            if early:
                detail = f"{detail}; {early}"
        data = b"".join(self.parts) if outcome == "ok" and self.keep else None
        self.parts = []
        if self.budget is not None:
            self.budget.release(self)
        return Download(name=self.name, protocol="tftp", client=self.client, server=self.server,
                        start=self.start, end=self.end, outcome=outcome, data=data, detail=detail,
                        order=self.order, size=self.size if outcome == "ok" else None)


# --------------------------------------------------------------------------- TCP
class _Stream:
    """One direction of a TCP connection, delivered in order to ``sink(offset, ts, data)``."""

    __slots__ = ("_held", "base", "charge", "cut", "fin", "fin_at", "isn", "next", "overflow", "pending",
                 "pending_bytes", "seen_payload", "sink")

    def __init__(self, charge: Callable[[int], None]) -> None:
        self.charge = charge  # the connection's share of the overall budget
        self.isn: int | None = None
        self.base: int | None = None  # sequence number of stream offset 0
        self.next = 0  # stream offset of the next byte in order
        self.pending: list[tuple[int, int, float, bytes]] = []  # heap: stream offset, arrival, time, bytes
        self._held = 0  # segments held so far (arrival order of the heap's ties)
        self.pending_bytes = 0
        self.fin = False
        self.fin_at: int | None = None  # stream offset of the FIN (the end of the direction), when known
        self.overflow = False
        self.seen_payload = False
        self.sink: Callable[[int, float, bytes], None] | None = None
        #: (stream offset, what) of the last segment the capture holds in part (module rules, "snaplen")
        self.cut: tuple[int, str] | None = None

    @property
    def hole(self) -> str | None:
        """What left a gap the stream stops at: a segment the snaplen cut, never delivered (else None)."""
        return self.cut[1] if self.cut is not None and self.next <= self.cut[0] else None

    def add(self, pkt: PcapPacket, cap: int, flow: Callable[[], str], warn: Callable[[str], None]) -> None:
        if pkt.flags & SYN:
            self.isn = pkt.seq
        if pkt.flags & FIN:
            self.fin = True
            base = self.base if self.base is not None else (self.isn + 1) & 0xFFFFFFFF \
                if self.isn is not None else pkt.seq if pkt.payload or pkt.missing else None
            if base is not None:  # (else nothing came: the direction ends where it starts)
                self.fin_at = self._rel(pkt.seq, base) + len(pkt.payload) + pkt.missing
        if not pkt.payload and not pkt.missing:
            return
        self.seen_payload = True
        if self.overflow:
            return
        if self.base is None:
            self.base = (self.isn + 1) & 0xFFFFFFFF if self.isn is not None else pkt.seq
        rel = self._rel(pkt.seq, self.base)
        if pkt.missing:  # its payload taken as missing (module rules, "snaplen"): a gap, unless delivered
            if rel + len(pkt.payload) + pkt.missing > self.next and self.hole is None:
                self.cut = (max(rel, self.next), snaplen_text(pkt))
            return
        if rel < 0 or rel + len(pkt.payload) <= self.next:
            return  # before the start, or bytes already delivered
        if rel > self.next:
            if self.pending_bytes + len(pkt.payload) > cap:
                self.overflow = True
                self.charge(-(self.pending_bytes + SEGMENT_COST * len(self.pending)))
                self.pending, self.pending_bytes = [], 0
                warn(f"{flow()}: more than {cap} out-of-order bytes waiting for stream offset {self.next} "
                     f"(the per-direction cap), capture offset {pkt.offset}: the stream ends there")
                return
            self._held += 1  # ties leave in arrival order
            heapq.heappush(self.pending, (rel, self._held, pkt.ts, pkt.payload))
            self.pending_bytes += len(pkt.payload)
            self.charge(len(pkt.payload) + SEGMENT_COST)
            return
        self._deliver(rel, pkt.ts, pkt.payload)
        # a heap (every loop bounded in time too): sorting the waiting segments at each in-order one was
        # quadratic, minutes for a capture of 10 MB of one-byte segments
        while self.pending and self.pending[0][0] <= self.next:
            prel, _n, pts, pdata = heapq.heappop(self.pending)
            self.pending_bytes -= len(pdata)
            self.charge(-(len(pdata) + SEGMENT_COST))
            if prel + len(pdata) > self.next:
                self._deliver(prel, pts, pdata)

    def _rel(self, seq: int, base: int) -> int:
        """The stream offset of sequence number ``seq`` (the one nearest the next byte in order)."""
        diff = (seq - base - self.next) & 0xFFFFFFFF
        return self.next + (diff - (1 << 32) if diff & 0x80000000 else diff)

    @property
    def ended(self) -> bool:
        """Its FIN came and every byte before it was delivered (or will never be: the stream overflowed):
        a segment the capture holds later, a retransmission, is still read until then (module rules)."""
        return self.fin and (self.fin_at is None or self.next >= self.fin_at or self.overflow)

    def _deliver(self, rel: int, ts: float, data: bytes) -> None:
        tail = data[self.next - rel:]
        at = self.next
        self.next += len(tail)
        if self.sink is not None:
            self.sink(at, ts, tail)

    @property
    def complete(self) -> bool:
        """No gap (a segment never seen) and no overflow."""
        return not self.pending and not self.overflow


class _Buffer:
    """Bytes of one direction not yet consumed, with the capture time of each delivered piece."""

    __slots__ = ("base", "charge", "data", "times")

    def __init__(self, charge: Callable[[int], None]) -> None:
        self.charge = charge  # the connection's share of the overall budget
        self.base = 0  # stream offset of data[0]
        self.data = bytearray()
        self.times: list[tuple[int, float]] = []

    def append(self, at: int, ts: float, piece: bytes) -> None:
        if not self.data:
            self.base = at
        self.times.append((at, ts))
        self.data += piece
        self.charge(len(piece) + PIECE_COST)

    def time_at(self, offset: int, default: float) -> float:
        i = bisect.bisect_right(self.times, (offset, float("inf"))) - 1
        return self.times[i][1] if i >= 0 else default

    def consume(self, n: int) -> bytes:
        out = bytes(self.data[:n])
        del self.data[:n]
        self.base += n
        # keep the last piece starting at or before the new base (it holds byte ``base``)
        i = bisect.bisect_right(self.times, (self.base, float("inf"))) - 1
        if i > 0:
            del self.times[:i]
        self.charge(-(len(out) + PIECE_COST * max(i, 0)))
        return out

    def clear(self) -> None:
        """Drop every byte held (the stream is not parsed further, or the connection ended)."""
        self.charge(-(len(self.data) + PIECE_COST * len(self.times)))
        self.base, self.data, self.times = 0, bytearray(), []


def _head(buf: bytearray) -> tuple[str, dict[str, str], int] | bool | None:
    """Start line, lower-cased headers and the body offset of the message at the start of ``buf``;
    False: not complete yet; None: malformed (no end within 16 KiB, or a header line without colon)."""
    end = buf.find(b"\r\n\r\n", 0, _MAX_HEAD)
    if end < 0:
        return None if len(buf) >= _MAX_HEAD else False
    lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        k, sep, v = line.partition(":")
        if not sep:
            return None
        headers[k.strip().lower()] = v.strip()
    return lines[0], headers, end + 4


def requested_name(line: str) -> tuple[str, str] | None:
    """The method and file name of an HTTP request line as a capture is read (:mod:`phoneemu.scenario.replay`,
    "HTTP 6970": ``GET`` or ``HEAD``, the path percent-decoded, the query dropped, one leading ``/``
    removed); None for any other line."""
    parts = line.split(" ")
    if len(parts) != 3 or parts[0] not in ("GET", "HEAD"):
        return None
    name = unquote(parts[1].split("?", 1)[0])
    return parts[0], name[1:] if name.startswith("/") else name


def first_request(data: bytes) -> tuple[str, str] | None:
    """The method and file name of the HTTP request ``data`` opens with (its head whole, at most 16 KiB:
    :func:`requested_name`), else None (the HTTPS config download decrypted from a capture's TLS)."""
    head = _head(bytearray(data[:_MAX_HEAD]))
    return requested_name(head[0]) if isinstance(head, tuple) else None


@dataclass
class _Request:
    method: str
    name: str
    start: float
    keep: bool
    order: int


class _Http:
    """HTTP/1.1 GET/HEAD exchanges of one connection, parsed as its bytes arrive (module rules)."""

    def __init__(self, conn: _Conn, client: Endpoint, sink: DownloadSink, limits: Limits,
                 warn: Callable[[str], None], *, rank: Callable[[], int]) -> None:
        self.conn, self.client, self.rank = conn, client, rank
        self.early = ""  # why the connection ended before its end (finish)
        self.server = conn.ends[1] if conn.ends[0] == client else conn.ends[0]
        self.sink, self.limits, self.warn = sink, limits, warn
        self.creq, self.sresp = _Buffer(conn.charge), _Buffer(conn.charge)
        self.cbroken = False
        self.nrequests = 0
        self.requests: deque[_Request] = deque()
        self.sbroken: str | None = None  # why the server stream is not parsed further
        self.leftover = False  # unparsed server bytes were dropped with it
        self.state = "head"  # head | length | chunk-line | chunk-data | trailer | eof
        self.cur: tuple[_Request, str, str, float] | None = None  # request, outcome, detail, t1
        self.body = bytearray()
        self.got = 0
        self.left = 0
        self.want = 0

    def flow(self) -> str:
        return f"http {_ep(self.client)} -> {_ep(self.server)}"

    # -- client side
    def client_data(self, at: int, ts: float, piece: bytes, offset: int) -> None:
        if self.cbroken:
            return
        self.creq.append(at, ts, piece)
        while self.creq.data and not self.cbroken:
            head = _head(self.creq.data)
            if head is False:
                break
            if head is None or self.nrequests >= _MAX_REQUESTS:
                self.cbroken = True
                break
            assert not isinstance(head, bool)
            line, _hdrs, body_at = head
            asked = requested_name(line)
            if asked is None:
                self.cbroken = True
                break
            method, name = asked
            t0 = self.creq.time_at(self.creq.base + body_at - 1, self.conn.start)
            self.creq.consume(body_at)
            self.nrequests += 1
            order = self.rank()
            self.sink.request(name, self.client, self.server, t0, order)
            self.requests.append(_Request(method, name, t0, self.sink.want_data(name), order))
        if self.cbroken:
            self.creq.clear()
        self._pump(offset)

    # -- server side
    def server_data(self, at: int, ts: float, piece: bytes, offset: int) -> None:
        if self.sbroken is not None or (self.cbroken and not self.requests and self.state == "head"):
            return  # nothing asked for them (the client stream stopped parsing)
        self.sresp.append(at, ts, piece)
        self._pump(offset)
        if self.sbroken is None and self.state == "head" and len(self.sresp.data) > self.limits.max_stream:
            # responses no request of the client stream asked for (yet): held up to the cap
            self.warn(f"{self.flow()}: more than {self.limits.max_stream} bytes of responses without "
                      f"requests (the per-direction cap) at stream offset {at}, capture offset {offset}: "
                      "the rest of the server stream is ignored")
            self._stop("overflow", leftover=True)

    def _stop(self, why: str, *, leftover: bool) -> None:
        """Parse no more of the server stream; ``leftover``: unparsed bytes stay (later requests
        are then incomplete rather than unanswered)."""
        self.sbroken = why
        self.leftover = leftover
        self.sresp.clear()

    def _emit(self, outcome: str, data: bytes | None, detail: str, req: _Request, *, t1: float,
              size: int | None = None) -> None:
        if outcome in ("incomplete", "no-reply"):  # a gap the snaplen left (module rules, "snaplen")
            hole = self.conn.dirs[self.server].hole or self.conn.dirs[self.client].hole \
                if self.conn.dirs else None
            if hole is not None:
                said = "response missing" if outcome == "no-reply" else detail
                outcome, detail = "incomplete", f"{said}; {hole}"
        if self.early and outcome in ("incomplete", "no-reply"):
            detail = f"{detail}; {self.early}"
        self.sink.add(Download(name=req.name, protocol="http", client=self.client, server=self.server,
                               start=req.start, end=t1, outcome=outcome,
                               data=data if outcome == "ok" and req.keep else None, detail=detail,
                               order=req.order, size=size if outcome == "ok" else None))

    def _body_done(self) -> None:
        assert self.cur is not None
        req, outcome, detail, t1 = self.cur
        self._emit(outcome, bytes(self.body), detail, req, t1=t1, size=self.got)
        self._drop_body()
        self.cur = None
        self.state = "head"

    def _take(self, n: int) -> None:
        """Move ``n`` body bytes from the server buffer into the body (when kept)."""
        assert self.cur is not None
        piece = self.sresp.consume(n)
        self.got += n
        if self.cur[0].keep and self.cur[1] == "ok":
            self.body += piece
            self.conn.charge(len(piece))

    def _drop_body(self) -> None:
        self.conn.charge(-len(self.body))
        self.body = bytearray()

    def _too_large(self, offset: int, why: str) -> None:
        assert self.cur is not None
        req, _outcome, _detail, t1 = self.cur
        self.warn(f"{self.flow()} {req.name!r}: {why} (the per-file cap is {self.limits.max_file} bytes), "
                  f"capture offset {offset}: download reported too-large")
        self._drop_body()
        self.cur = (req, "too-large", _detail, t1)

    def _pump(self, offset: int) -> None:
        buf = self.sresp
        max_file = self.limits.max_file
        while self.sbroken is None:
            if self.state == "head":
                if not self.requests or not buf.data:
                    return
                head = _head(buf.data)
                if head is False:
                    return
                if head is None:
                    self._stop("malformed", leftover=True)
                    return
                assert not isinstance(head, bool)
                sline, shdrs, body_at = head
                req = self.requests.popleft()
                t1 = buf.time_at(buf.base + body_at - 1, self.conn.end)
                buf.consume(body_at)
                sparts = sline.split(" ", 2)
                code = (parse_ascii_int(sparts[1], max_digits=3) if len(sparts) >= 2 else None) or -1
                outcome = _HTTP_OUTCOMES.get(code, "error")
                # the status line's control characters escaped: the detail is printed (replay's boot lines);
                # decoded as Latin-1, its characters are bytes (\x8e: byte 0x8e)
                status = sline[9:].strip() if sline.startswith("HTTP/") else sline[:40]
                detail = f"HTTP {printable_latin1(status)}"
                self._drop_body()
                self.cur, self.got = (req, outcome, detail, t1), 0
                if req.method == "HEAD" or code in (204, 304) or 100 <= code < 200:
                    self._body_done()
                elif "chunked" in shdrs.get("transfer-encoding", "").lower():
                    self.state = "chunk-line"
                elif parse_ascii_int(shdrs.get("content-length", "")) is not None:
                    n = int(shdrs["content-length"])
                    self.state, self.left, self.want = "length", n, n
                    if n > max_file:
                        self._too_large(offset, f"Content-Length {n}")
                        self.cur = (req, "too-large", f"Content-Length {n}", t1)
                else:
                    self.state = "eof"
            elif self.state == "length":
                n = min(self.left, len(buf.data))
                if n:
                    self._take(n)
                    self.left -= n
                if self.left:
                    return
                self._body_done()
            elif self.state == "chunk-line":
                eol = buf.data.find(b"\r\n", 0, _MAX_CHUNK_LINE)
                if eol < 0:
                    if len(buf.data) >= _MAX_CHUNK_LINE:
                        self._fail_body("chunk size line truncated")
                    return
                text = bytes(buf.data[:eol]).split(b";")[0].strip()
                try:
                    size = int(text, 16)
                except ValueError:
                    self._fail_body(f"bad chunk size {text[:20]!r}")
                    return
                if size == 0:
                    buf.consume(eol)  # keep the CRLF: the trailer search starts at it
                    self.state = "trailer"
                    continue
                buf.consume(eol + 2)
                if self.got + size > max_file:
                    assert self.cur is not None
                    self._too_large(offset, f"chunked body of more than {max_file} bytes")
                    self.cur = (self.cur[0], "too-large", f"more than {max_file} bytes", self.cur[3])
                    self._emit_cur()
                    self._stop("too-large", leftover=False)  # the rest of the stream taken as its body
                    return
                self.state, self.left = "chunk-data", size + 2
            elif self.state == "chunk-data":
                n = min(self.left, len(buf.data))
                data_left = max(self.left - 2, 0)  # the chunk's bytes, then its CRLF (not checked)
                if n:
                    take = min(n, data_left)
                    if take:
                        self._take(take)
                    if n > take:
                        buf.consume(n - take)
                    self.left -= n
                if self.left:
                    return
                self.state = "chunk-line"
            elif self.state == "trailer":
                end = buf.data.find(b"\r\n\r\n", 0, _MAX_HEAD + 2)
                if end < 0:
                    if len(buf.data) >= _MAX_HEAD + 2:
                        self._body_done()
                        self._stop("trailer", leftover=False)
                    return
                buf.consume(end + 4)
                self._body_done()
            else:  # eof: the body runs to the end of the stream
                n = len(buf.data)
                if n:
                    assert self.cur is not None
                    if self.cur[1] == "ok" and self.got + n > max_file:
                        self._too_large(offset, f"body to end of stream of more than {max_file} bytes")
                        self.cur = (self.cur[0], "too-large", f"more than {max_file} bytes", self.cur[3])
                    self._take(n)
                return

    def _emit_cur(self) -> None:
        assert self.cur is not None
        req, outcome, detail, t1 = self.cur
        self._emit(outcome, None, detail, req, t1=t1)
        self.cur = None
        self._drop_body()

    def _fail_body(self, why: str) -> None:
        assert self.cur is not None
        req, _outcome, _detail, t1 = self.cur
        self.cur = (req, "incomplete", why, t1)
        self._emit_cur()
        self._stop("chunk", leftover=True)

    def finish(self, early: str = "") -> None:
        """The connection ended: what is pending is incomplete or unanswered (module rules); ``early``:
        why it ended before its end (appended to their details)."""
        self.early = early
        server_dir = self.conn.dirs[self.server]
        complete = server_dir.complete
        if self.cur is not None:
            req, outcome, detail, t1 = self.cur
            if self.state == "length":
                self.cur = (req, "incomplete" if outcome == "ok" else outcome,
                            f"body {self.got} of {self.want} bytes" if outcome == "ok" else detail, t1)
                self._emit_cur()
            elif self.state == "eof":
                if outcome != "too-large" and not (server_dir.fin and complete):
                    self.cur = (req, "incomplete", "body to end of stream, stream not closed", t1)
                    self._emit_cur()
                else:
                    self._body_done()
            elif self.state == "trailer":
                self._body_done()
            else:
                why = "chunk size line truncated" if self.state == "chunk-line" else "chunk truncated"
                self.cur = (req, "incomplete", why, t1)
                self._emit_cur()
            self.sresp.clear()
        leftover = bool(self.sresp.data) or self.leftover
        while self.requests:
            req = self.requests.popleft()
            if leftover or not complete:
                self._emit("incomplete", None, "response truncated or malformed", req, t1=self.conn.end)
            else:
                self._emit("no-reply", None, "no response", req, t1=self.conn.end)


class _Tls:
    """Both directions of a TLS (or SIP) connection, kept (up to the cap) for decryption at its end."""

    def __init__(self, conn: _Conn, client: Endpoint, cap: int, warn: Callable[[str], None],
                 check: Callable[[bytes, bytes], str | None] | None, *, keep_start: bool = False,
                 keep_start_on_problem: bool = False, what: str = "TLS") -> None:
        self.conn, self.client = conn, client
        self.server = conn.ends[1] if conn.ends[0] == client else conn.ends[0]
        self.cap, self.warn, self.check = cap, warn, check
        self.keep_start = keep_start  # past the cap: keep the start (no warning), not drop everything
        self.what = what
        self.starts_only = False  # the key log cannot open it: its starts kept for the SIP sink only
        self.keep_start_on_problem = keep_start_on_problem  # then: keep the starts, not drop everything
        self.streams: dict[Endpoint, bytearray | None] = {client: bytearray(), self.server: bytearray()}
        self.problem = ""

    def data(self, end: Endpoint, at: int, piece: bytes, offset: int) -> None:
        buf = self.streams[end]
        if buf is None:
            return
        if self.check is not None:
            self._check(end, piece)
            if self.streams[end] is None:
                return
        if len(buf) + len(piece) > self.cap:
            if self.keep_start:
                piece = piece[:max(0, self.cap - len(buf))]
                buf += piece
                self.conn.charge(len(piece))
                return
            side = "client" if end == self.client else "server"
            self.problem = (f"{side} stream longer than {self.cap} bytes (the per-direction cap for "
                            f"{self.what}) at stream offset {at}, capture offset {offset}: not "
                            f"{'decrypted' if self.what == 'TLS' else 'read'}")
            self.warn(f"{self.what.lower()} {_ep(self.client)} -> {_ep(self.server)}: {self.problem}")
            self._drop()
            return
        buf += piece
        self.conn.charge(len(piece))

    def _drop(self) -> None:
        """Keep nothing more of either direction."""
        self.conn.charge(-sum(len(b) for b in self.streams.values() if b is not None))
        self.streams = {self.client: None, self.server: None}

    def _check(self, end: Endpoint, piece: bytes) -> None:
        """Until the hellos tell: can the key log open this connection? If not, keep nothing more."""
        assert self.check is not None
        c, sv = self.streams[self.client], self.streams[self.server]
        assert c is not None and sv is not None
        cb, sb = (bytes(c) + piece, bytes(sv)) if end == self.client else (bytes(c), bytes(sv) + piece)
        if len(cb) > MAX_UNCLASSIFIED or len(sb) > MAX_UNCLASSIFIED:
            self.check = None  # no verdict from the first 64 KiB: decrypt at the end
            return
        if not cb or not sb:
            return
        verdict = self.check(cb, sb)
        if verdict is None:
            return
        self.check = None
        if verdict and self.keep_start_on_problem:  # a SIP sink wants the certificate: keep the starts
            self.problem, self.starts_only, self.keep_start, self.cap = verdict, True, True, MAX_TLS_START
            for buf in self.streams.values():  # what is beyond the start is given back
                if buf is not None and len(buf) > MAX_TLS_START:
                    self.conn.charge(MAX_TLS_START - len(buf))
                    del buf[MAX_TLS_START:]
        elif verdict:
            self.problem = verdict
            self._drop()


class _Conn(_Flow):
    __slots__ = ("client", "dirs", "early", "end", "ends", "http", "kind", "order", "start", "tls")

    def __init__(self, a: Endpoint, b: Endpoint, ts: float, order: int,
                 budget: _Budget | None = None) -> None:
        super().__init__(budget, TCP_FLOW_COST)
        self.ends = (a, b)
        self.dirs = {a: _Stream(self.charge), b: _Stream(self.charge)}
        self.client: Endpoint | None = None
        self.start = ts
        self.end = ts
        self.order = order
        self.kind: str | None = None  # None: not classified yet | http | tls | tls-counted | other | closed
        self.early: dict[Endpoint, list[tuple[int, float, bytes]]] = {a: [], b: []}
        self.http: _Http | None = None
        self.tls: _Tls | None = None

    def drop_early(self) -> dict[Endpoint, list[tuple[int, float, bytes]]]:
        """Hand over (and stop holding) the bytes kept before the connection was classified."""
        early, self.early = self.early, {}
        self.charge(-sum(len(p) + PIECE_COST for pieces in early.values() for _, _, p in pieces))
        return early


_CLOSED = _Conn(("", 0), ("", 1), 0.0, -1)
_CLOSED.kind = "closed"  # what an ended connection's port pair maps to (its late packets are ignored)


_REGISTER = b"REGISTER "


def _prefix_of(data: bytes, *words: bytes) -> bool:
    return any(w.startswith(data[:len(w)]) for w in words)


class FlowScanner:
    """Feed packets in capture order (:meth:`feed`), then :meth:`close`: downloads go to ``downloads``,
    ended TLS connections to ``tls`` (None: TLS connections only counted), SIP connections (plain, and
    every TLS one) to ``sip``, UDP datagrams that are not TFTP to ``media``, warnings to ``warn``."""

    def __init__(self, downloads: DownloadSink | None, *, tls: TlsSink | None = None,
                 limits: Limits | None = None, warn: Callable[[str], None] | None = None,
                 sip: SipSink | None = None, media: MediaSink | None = None) -> None:
        self.downloads = downloads
        self.media = media
        self.tls = tls
        self.sip = sip
        self.limits = limits or Limits()
        self.warn = warn or (lambda _text: None)
        self.packets = 0
        self.skipped = 0  # UDP datagrams that are not TFTP
        self.tls_connections = 0
        #: TLS connections by their server's port (at most 65,536 entries): without a key log, those to TCP
        #: 6971 are the HTTPS config downloads a replay cannot read (replay_https_config)
        self.tls_ports: Counter[int] = Counter()
        self.evicted = 0
        self.over_budget = 0  # flows ended early by the overall budget
        self.dropped = 0  # kept downloads whose bytes the overall budget dropped
        self.backwards = 0  # packets whose timestamp is earlier than the packet before
        self.snaplen_cut = 0  # packets the capture holds in part (module rules, "snaplen")
        #: what the capture's reader holds for the scan, counted in the overall budget (module rules,
        #: "Overall budget": the IP fragments' reassembly, :attr:`phoneemu.net.capture.Reassembly.reserved`)
        self.outside: Callable[[], int] = lambda: 0
        self._time = float("-inf")  # the time of the packet before (module rules, "Capture order")
        self._rank = 0
        self.budget = _Budget(self.limits.max_memory)
        bind = getattr(downloads, "bind", None)  # a sink bounding its records by the budget (replay)
        if bind is not None:
            bind(self.limits.max_memory, self.warn, lambda: self._current_offset)
        self._tftp: OrderedDict[Endpoint, _Tftp] = OrderedDict()
        self._tcp: OrderedDict[frozenset[Endpoint], _Conn] = OrderedDict()

    # -- packets
    def next_rank(self) -> int:
        """The next rank in capture order (module rules, "Capture order is the order")."""
        self._rank += 1
        return self._rank

    def feed(self, pkt: PcapPacket) -> None:
        self.packets += 1
        self._current_offset = pkt.offset
        self.next_rank()
        if pkt.ts < self._time:
            self.backwards += 1
            if self.backwards == 1:
                self.warn(f"capture offset {pkt.offset} (packet {self.packets}): timestamp {pkt.ts:.6f} is "
                          f"{self._time - pkt.ts:.6f} s earlier than the packet before it: taken as "
                          f"{self._time:.6f} (capture order is the order; later ones are counted)")
            pkt = dataclasses.replace(pkt, ts=self._time)
        self._time = pkt.ts
        if pkt.missing:  # module rules, "snaplen"
            self.snaplen_cut += 1
            if self.snaplen_cut == 1:
                self.warn(f"{pkt.proto} {_ep((pkt.src, pkt.sport))} -> {_ep((pkt.dst, pkt.dport))}: "
                          f"{snaplen_text(pkt)}: its payload is taken as missing; a flow that needs it is "
                          "incomplete, the rest replays (later such packets are counted)")
        if pkt.proto == "udp":
            if self.downloads is not None:
                self._udp(pkt)
            elif self.media is not None and not pkt.missing:
                self.media.datagram((pkt.src, pkt.sport), (pkt.dst, pkt.dport), pkt.payload)
        elif pkt.proto == "tcp":
            self._tcp_packet(pkt)
        if self.held > self.budget.limit:
            self._over_budget(pkt)

    @property
    def held(self) -> int:
        """What the scan holds, as the overall budget counts it: open flows, kept downloads and what the
        capture's reader sets aside (:attr:`outside`)."""
        return self.budget.total + (self.downloads.held if self.downloads is not None else 0) + self.outside()

    def _over_budget(self, pkt: PcapPacket) -> None:
        """Drop kept downloads' bytes or end open flows until the total is within the budget (module
        rules, "Overall budget")."""
        budget, sink = self.budget, self.downloads
        why = f"more than {budget.limit} bytes held by open flows and kept downloads (the overall budget)"
        while (total := self.held) > budget.limit:
            kept = sink.held if sink is not None else 0
            if sink is not None and 2 * kept > budget.limit:
                dropped = sink.drop(f"bytes dropped at capture offset {pkt.offset}: {why}")
                assert dropped is not None  # it holds some
                self.dropped += 1
                self.warn(f"{dropped.protocol} {_ep(dropped.server)} {dropped.name!r}: {total} bytes held by "
                          f"open flows and kept downloads, more than {budget.limit} (the overall budget), "
                          f"capture offset {pkt.offset}: the kept downloads hold more than half of it; the "
                          f"least useful kept download gives up its {dropped.nbytes} bytes (reported "
                          "too-large)")
                continue
            if not budget.flows:  # nothing left to end (the reader's share is at most a quarter)
                break
            flow = budget.oldest()  # the open flows hold more than half: one at least
            held, what = flow.held, "holding buffered bytes " if budget.holders else ""
            if isinstance(flow, _Tftp):
                name = flow.flow()
                del self._tftp[flow.client]
                assert sink is not None
                sink.add(flow.finish(early=f"ended early: {why}"))
            else:
                assert isinstance(flow, _Conn)
                name = self._conn_name(flow)
                self._end(flow)
                self._tcp[frozenset(flow.ends)] = _CLOSED  # its late packets are ignored
            budget.release(flow)
            self.over_budget += 1
            self.warn(f"{name}: {total} bytes held by open flows and kept downloads, more than "
                      f"{budget.limit} (the overall budget), capture offset {pkt.offset}: the least recently "
                      f"active open flow {what}({held} bytes) ends as it stands")

    def _conn_name(self, conn: _Conn) -> str:
        if conn.http is not None:
            return conn.http.flow()
        if conn.tls is not None:
            return f"tls {_ep(conn.tls.client)} -> {_ep(conn.tls.server)}"
        a, b = (conn.client, *[e for e in conn.ends if e != conn.client]) if conn.client else conn.ends
        return f"tcp {_ep(a)} -> {_ep(b)}"

    def _udp(self, pkt: PcapPacket) -> None:
        assert self.downloads is not None
        if pkt.missing:  # not read (module rules, "snaplen"): the transfer it answers is told
            t = self._tftp.get((pkt.dst, pkt.dport))
            if t is not None and pkt.src == t.server[0] and t.tid in (None, pkt.sport) and t.cut is None:
                t.cut = snaplen_text(pkt)
            return
        try:
            msg = decode(pkt.payload)
        except DecodeError:
            self.skipped += 1
            if self.media is not None:
                self.media.datagram((pkt.src, pkt.sport), (pkt.dst, pkt.dport), pkt.payload)
            return
        src, dst = (pkt.src, pkt.sport), (pkt.dst, pkt.dport)
        live = self._tftp
        if isinstance(msg, WriteRequest):
            return
        if isinstance(msg, ReadRequest):
            cur = live.get(src)
            if cur is not None and cur.tid is None and cur.name == msg.filename and cur.server == dst:
                return  # RRQ retransmission
            if cur is not None:
                del live[src]
                self.downloads.add(cur.finish())
            order = self.next_rank()
            self.downloads.request(msg.filename, src, dst, pkt.ts, order)
            live[src] = _Tftp(msg, pkt, self.downloads.want_data(msg.filename), order, self.budget)
            if len(live) > self.limits.max_flows:
                _key, oldest = live.popitem(last=False)
                self._evicted(f"{oldest.flow()}: more than {self.limits.max_flows} TFTP transfers open at "
                              f"once (capture offset {pkt.offset}): the least recently active ends as it "
                              "stands")
                self.downloads.add(oldest.finish())
            return
        to_client = live.get(dst)
        if to_client is not None and pkt.src == to_client.server[0]:
            to_client.answer(pkt, msg, self.limits.max_file, self.warn)
            if to_client.outcome is not None:
                del live[dst]
                self.downloads.add(to_client.finish())
            else:
                live.move_to_end(dst)
                self.budget.touch(to_client)
            return
        from_client = live.get(src)
        if from_client is not None and pkt.dst == from_client.server[0] and isinstance(msg, Error):
            from_client.client_error(msg)
            if from_client.outcome is not None:
                del live[src]
                self.downloads.add(from_client.finish())

    def _evicted(self, text: str) -> None:
        if not self.evicted:
            self.warn(text)
        self.evicted += 1

    def _tcp_packet(self, pkt: PcapPacket) -> None:
        a, b = (pkt.src, pkt.sport), (pkt.dst, pkt.dport)
        key = frozenset((a, b))
        conn = self._tcp.get(key)
        opening = bool(pkt.flags & SYN) and not pkt.flags & 0x10
        if conn is not None and opening and (conn.kind == "closed" or conn.dirs[a].seen_payload):
            if conn.kind != "closed":
                self._end(conn)
            del self._tcp[key]  # a new connection reusing the port pair
            conn = None
        if conn is None:
            conn = _Conn(a, b, pkt.ts, self._rank, self.budget)
            self._tcp[key] = conn
            if len(self._tcp) > self.limits.max_flows:
                _k, oldest = self._tcp.popitem(last=False)
                # closed by both ends, a gap left before a FIN (module rules): not open, ended unwarned as at
                # the capture's end (was: "more than N TCP connections open at once", counted as evicted)
                if oldest.kind != "closed":
                    if not all(d.fin for d in oldest.dirs.values()):
                        self._evicted(f"tcp {_ep(oldest.ends[0])} -> {_ep(oldest.ends[1])}: more than "
                                      f"{self.limits.max_flows} TCP connections open at once (capture offset "
                                      f"{pkt.offset}): the least recently active ends as it stands")
                    self._end(oldest)
        else:
            self._tcp.move_to_end(key)
            self.budget.touch(conn)
        if conn.kind == "closed":
            return
        conn.end = pkt.ts
        if opening:
            conn.client = a
        d = conn.dirs[a]
        if d.sink is None:
            d.sink = self._sink(conn, a, pkt)
        self._current_offset = pkt.offset
        d.add(pkt, self.limits.max_stream, lambda: self._flow(conn, a), self.warn)
        if pkt.flags & RST or (conn.dirs[b].ended and d.ended):
            self._end(conn)
            self._tcp[key] = _CLOSED

    def _flow(self, conn: _Conn, a: Endpoint) -> str:
        other = conn.ends[1] if conn.ends[0] == a else conn.ends[0]
        return f"tcp {_ep(a)} -> {_ep(other)}"

    _current_offset = 0

    def _sink(self, conn: _Conn, end: Endpoint, _pkt: PcapPacket) -> Callable[[int, float, bytes], None]:
        def sink(at: int, ts: float, piece: bytes) -> None:
            self._data(conn, end, at, ts, piece)
        return sink

    def _data(self, conn: _Conn, end: Endpoint, at: int, ts: float, piece: bytes) -> None:
        offset = self._current_offset
        if conn.kind is None:
            early = conn.early[end]
            if sum(len(p) for _, _, p in early) + len(piece) > MAX_UNCLASSIFIED:
                self._classify(conn, final=True)
                self._route(conn, end, at, ts, piece, offset=offset)
            else:
                early.append((at, ts, piece))  # handed over by _classify once the kind is known
                conn.charge(len(piece) + PIECE_COST)
                self._classify(conn, final=False)
            return
        self._route(conn, end, at, ts, piece, offset=offset)

    def _route(self, conn: _Conn, end: Endpoint, at: int, ts: float, piece: bytes, *, offset: int) -> None:
        if conn.http is not None:
            if end == conn.http.client:
                conn.http.client_data(at, ts, piece, offset)
            else:
                conn.http.server_data(at, ts, piece, offset)
        elif conn.tls is not None:
            conn.tls.data(end, at, piece, offset)

    def _classify(self, conn: _Conn, *, final: bool) -> None:
        """Decide HTTP / TLS / other from the client's first bytes (module rules)."""
        ends = [conn.client] if conn.client is not None else list(conn.ends)
        undecided = False
        words = (b"GET ", b"HEAD ", b"\x16\x03", *((_REGISTER,) if self.sip is not None else ()))
        for e in ends:
            first = b"".join(p for _, _, p in conn.early[e])[:len(_REGISTER)]
            if first[:4] == b"GET " or first[:5] == b"HEAD ":
                self._start(conn, e, "http")
                return
            if first[:2] == b"\x16\x03":
                self._start(conn, e, "tls")
                return
            if self.sip is not None and first == _REGISTER:
                self._start(conn, e, "sip")
                return
            if any(len(first) < len(w) for w in words) and _prefix_of(first, *words):
                undecided = True
        if final or not undecided:
            conn.kind = "other"
            conn.drop_early()

    def _start(self, conn: _Conn, client: Endpoint, kind: str) -> None:
        offset = self._current_offset
        conn.client = client
        if kind == "http":
            if self.downloads is None:
                conn.kind = "other"
                conn.drop_early()
                return
            conn.http = _Http(conn, client, self.downloads, self.limits, self.warn, rank=self.next_rank)
            conn.kind = "http"
        elif kind == "sip":
            conn.tls = _Tls(conn, client, self.limits.max_sip_stream, self.warn, None, what="SIP")
            conn.kind = "sip"
        else:
            self.tls_connections += 1
            self.tls_ports[(conn.ends[1] if conn.ends[0] == client else conn.ends[0])[1]] += 1
            if self.tls is None and self.sip is None:
                conn.kind = "tls-counted"
                conn.drop_early()
                return
            if self.tls is None:  # SIP only: the hellos and the certificate (module rules, "TLS")
                conn.tls = _Tls(conn, client, MAX_TLS_START, self.warn, None, keep_start=True)
            else:
                conn.tls = _Tls(conn, client, self.limits.max_tls_stream, self.warn, self.tls.early_problem,
                                keep_start_on_problem=self.sip is not None)  # module rules, "TLS"
            conn.kind = "tls"
        early = conn.drop_early()
        for end in (client, *[e for e in conn.ends if e != client]):
            for at, ts, piece in early.get(end, []):
                self._route(conn, end, at, ts, piece, offset=offset)

    def _end(self, conn: _Conn, early: str = "") -> None:
        if conn.kind is None:
            hole = next((d.hole for d in conn.dirs.values() if d.hole is not None and d.next == 0), None)
            if hole is not None and not any(conn.early.values()):
                self.warn(f"tcp {_ep(conn.ends[0])} -> {_ep(conn.ends[1])}: its first bytes are missing "
                          f"({hole}): not known to be HTTP, TLS or SIP, the connection is not read")
            self._classify(conn, final=True)
        if conn.http is not None:
            conn.http.finish(early)
        elif conn.tls is not None:
            t = conn.tls
            cs, ss = t.streams[t.client], t.streams[t.server]
            streams = {"client_stream": bytes(cs) if cs is not None else None,
                       "server_stream": bytes(ss) if ss is not None else None}
            if self.tls is not None and conn.kind == "tls":
                self.tls.connection(client=t.client, server=t.server, start=conn.start, order=conn.order,
                                    problem=t.problem, **({"client_stream": None, "server_stream": None}
                                                          if t.starts_only else streams))
            if self.sip is not None:
                self.sip.connection(client=t.client, server=t.server, start=conn.start, order=conn.order,
                                    transport="tcp" if conn.kind == "sip" else "tls", problem=t.problem,
                                    **streams)
        conn.kind, conn.http, conn.tls, conn.early, conn.dirs = "closed", None, None, {}, {}
        self.budget.release(conn)

    def close(self) -> None:
        """End every open flow (the end of the capture)."""
        if self.downloads is not None:
            for t in self._tftp.values():
                self.downloads.add(t.finish(early=CAPTURE_END))
        self._tftp.clear()
        for conn in self._tcp.values():
            if conn.kind != "closed":  # closed by both ends, a gap left before a FIN: not still open
                self._end(conn, "" if all(d.fin for d in conn.dirs.values()) else CAPTURE_END)
        self._tcp.clear()
        if self.evicted > 1:
            self.warn(f"{self.evicted} flows in all ended early: more than {self.limits.max_flows} open at "
                      "once")
        if self.snaplen_cut > 1:
            self.warn(f"{self.snaplen_cut} packets in all were cut by the capture's snaplen: their payloads "
                      "are taken as missing (capture with tcpdump -s 0 to keep whole packets)")
        if self.backwards > 1:
            self.warn(f"{self.backwards} packets in all have a timestamp earlier than the packet before: "
                      "taken as equal to it (capture order is the order)")
        if self.over_budget > 1:
            self.warn(f"{self.over_budget} flows in all ended early: more than {self.limits.max_memory} "
                      "bytes held by open flows and kept downloads (the overall budget)")
        if self.dropped > 1:
            self.warn(f"{self.dropped} kept downloads in all gave up their bytes (reported too-large): "
                      f"more than {self.limits.max_memory} bytes held by open flows and kept downloads "
                      "(the overall budget)")
