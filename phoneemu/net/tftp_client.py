"""asyncio TFTP client: :func:`tftp_get` and the multiplexing :class:`TftpClientPool` (RFC 1350/2347-2349).

Rules:

* RRQ in octet mode with the requested options (``blksize``, ``tsize=0``); an OACK is checked
  (only options we asked for, ``blksize`` not above ours, valid values) and acknowledged with ACK 0.
  A server that ignores options answers DATA 1 directly and 512-byte blocks apply.
* The server's transfer ID is the address of its first valid answer (OACK, DATA 1 or ERROR); a
  packet from another port of the server gets ERROR 5 and is otherwise ignored (RFC 1350).
* Duplicate DATA (our ACK was lost) is re-acknowledged; out-of-window DATA is ignored. On timeout
  the last packet (RRQ or ACK) is resent, at most ``retries`` times, then ``kind="timeout"`` with the
  message ``no answer after N retries`` (or ``stalled at block B after N retries``). A timeout says what
  was heard and ignored, if anything (ours): ``no answer after 5 retries (3 datagram(s) ignored, the first
  a reply from 127.0.0.2:4711: not 127.0.0.1:69, the address asked)``, ``(... the first a reply from
  127.0.0.1:4711: DATA 3 before DATA 1)`` — a multi-homed server answering from another address, or a
  first answer out of order, is rightly ignored (RFC 1350 transfer IDs), but is not "nothing answered".
  Memory stays bounded: a count and the first one's text; nothing on the in-order DATA path. Each
  resend calls ``on_retransmit`` when given (a phone counts its own; ``client_stats`` counts all).
  The per-packet timeout alone does not bound a transfer: a server that drips one block just inside
  it holds the client for ``max_size / blksize`` timeouts (hours at 16 MiB). ``max_time`` (seconds,
  None = no cap) bounds the whole transfer: past it ERROR 0 goes to the server and
  ``kind="timeout"`` ("TFTP transfer of NAME took longer than X s") — every wait bounded in time
  (spec §H.3 TFTP timeout). A phone always sets one (:data:`phoneemu.phone.phone.DEFAULT_TFTP_MAX_TIME`).
* Errors: ERROR 1 → ``TransportError(kind="not-found", code=1)``, ERROR 2 → ``"refused"``, other
  codes → ``"error"``; a file bigger than ``max_size`` (by tsize or while receiving) is abandoned
  with ERROR 3 and ``kind="too-large"`` — memory stays bounded; a malformed answer from the server's
  host, the first one included, → ``"protocol"`` ("malformed reply at offset N"), not a timeout;
  what the server wrote is quoted short (ours): an ERROR's message at most :data:`MAX_QUOTED` characters
  (escaped; the rest counted), an OACK's unasked options at most :data:`MAX_NAMED_OPTIONS` names — one
  datagram may carry 65,507 bytes, four characters each once escaped, and every failure's reason goes to
  the phone's event log and reports (a fleet's thousands of them);
  an ICMP "port unreachable" for the request, before the server answered (nothing listens where the
  request went; Linux reports it with ``IP_RECVERR``) → ``"unreachable"`` at once, not a timeout after
  every retry. An ICMP error about another address (the transfer ID of a finished transfer of a reused
  socket) is ignored. No socket to be had (the open-file limit reached) → ``"error"`` naming the file.
* :class:`TftpClientPool` keeps a bounded set of UDP sockets and reuses them (FIFO) across
  successful transfers, so thousands of emulated phones in one event loop pay no socket setup per
  file; a socket whose transfer failed is never reused (held back, then closed: below). A socket
  waiting in the pool re-ACKs a late duplicate of its previous transfer's final DATA (the RFC 1350
  dally); during a transfer, packets from another transfer ID (the server's per-transfer port) get ERROR 5. A
  socket whose server answered from its listening address (a single-socket server such as the
  lab's ``tid_mode="shared"``) is reused only when the file's
  final DATA had a block number of 2 or more on the wire (our convention; RFC 1350 asks for fresh
  TIDs). Why that is safe: such a server keeps one transfer per client address, so once our next
  request reaches it, it sends nothing more of the previous file but, the lab's ``shared`` mode, its
  final DATA once more if the request is the same; what it sent before comes first (one socket pair, in
  order), and that can only be copies of the final DATA (lock-step: every earlier block was acknowledged
  before the next was sent) — or an ERROR if it gave up on our final ACK, which fails the next transfer
  and never gives it wrong bytes. The next transfer takes only DATA 1 (or an OACK/ERROR) as its first
  answer, so a late final DATA 2+ is not taken: it is re-ACKed (the dally; the server's old transfer
  ends ``ok``) and our RRQ goes again at its timeout; a late final DATA 1 (a one-block file, common
  with ``blksize``) would be taken for the next file — a stale config, seen about once in 10,000 fleet
  boots when such sockets were reused —, so that socket is closed.
* Imperfect networks (reordering, duplicates: ``tests/integration/test_tftp_loss.py``). A server runs a
  second transfer when a copy of our RRQ reaches it after the first transfer ended: our own resent RRQ
  (an answer slower than the timeout) or one the network duplicated. Its DATA 1 comes from a new port
  and would pass as the answer to the socket's next request — a wrong file. So: a socket whose RRQ went
  out twice is not reused; a socket is reused only once it has been idle for one timeout (while at most
  :data:`MAX_RESTING` sockets rest; beyond that the one that rested longest is taken: each socket in
  rotation costs cache and CPU — 2,048 resting sockets a process made a 4,000-phone storm 8 % slower,
  256 cost nothing measurable), and while idle it answers DATA/OACK from another port of its last server
  with ERROR 5 (RFC 1350) and is then not reused either; a late copy of the previous transfer's final
  DATA 1 from its TID, arriving during the next transfer (ephemeral-TID server, final ACK lost twice),
  is ACKed and ignored, as is a final DATA 2+ (above). Remembering such ports instead does not work:
  a server's ephemeral ports come round again within seconds at thousands of transfers a second. What
  remains: a network-duplicated RRQ delayed by more than one timeout past the end of its transfer (in a
  storm, where MAX_RESTING sockets rest, more than the rest the rotation gives: ~0.1 s at 2,250
  transfers/s) can still fool a reused socket (nothing in a DATA names its request). ERROR 5 before the
  server's TID is known is ignored: it answers an earlier packet of the socket, never a request.
* A socket the pool does not reuse (its transfer failed, timed out, was cancelled or abandoned, or may
  still draw late packets as above) is not closed at once: closing frees its UDP port, the kernel can
  give that port to the pool's next socket, and a server still retransmitting the abandoned transfer's
  DATA 1 there would answer the new request with the wrong file (seen with hundreds of phones through a
  lossy proxy). It is held, muted (:meth:`~phoneemu.net._udp.UdpSocket.mute`: not read, its datagrams
  left in the kernel buffer and dropped with it), for ``quarantine_s`` — default :data:`QUARANTINE_S`
  = 6 s, the lab server's retry budget ``DEFAULT_TIMEOUT * (DEFAULT_RETRIES + 1)``: no server
  transfer goes on longer without an ACK; the spec gives no TFTP timer (§H.2), so this is our
  convention — and then closed. At most ``max_quarantine`` (:data:`MAX_QUARANTINE`, 1,024: as many
  descriptors again as the default active sockets) are held; past that, in a storm of failures, the
  socket held longest is closed early (``quarantine_evicted`` counts them: their risk is the smallest,
  the server's budget nearest its end). ``max_quarantine=0`` (or ``quarantine_s=0``) closes at once.
  Reused sockets and the success path are unchanged. A task of the loop closes held sockets when due,
  and all of them when the loop ends (``asyncio.run`` cancels it): none outlives its loop. That task runs
  while a transfer is under way too, so a transfer cancelled as the loop ends is not held past it.
* :func:`tftp_get`'s one-off socket runs the same risk (a phone without a pool downloads its files one
  after another, a scenario's phones many at once in one process), so it is held as well, in one
  quarantine per event loop (:data:`QUARANTINE_S`; at most :data:`MAX_ONE_OFF_QUARANTINE`): after a
  failure, and after a success whose late packets could still pass as the next download's answer — its
  RRQ went out twice, or its final DATA was block 1 (a fresh socket on that port knows nothing of the
  previous transfer, unlike a pooled one). Otherwise it is closed at once: a late copy of a final DATA
  2+ cannot be a first answer. :func:`held_one_off` tells how many the running loop holds.
* Counters of the pool (``requests``, ``retransmitted``, ``retransmits``: plain integers, for the fleet
  summary): a request per :meth:`TftpClientPool.get`, and per timeout that sends a packet again —
  counted in the retransmission path only, nothing per datagram.
* Block numbers wrap from 65535 to 0, as the lab server's do (RFC 1350 leaves it open).
* Progress (ours): ``on_start``, when given to :func:`tftp_get`, is called once as the transfer starts with
  a reader of the bytes received so far (:meth:`_Transfer.bytes_received`: the file's DATA taken in order,
  a duplicate not counted); whoever wants progress reads it when it wants — nothing is added per block
  (a boot says how far a slow file has come, :mod:`phoneemu.commands._watched_fetch`).
"""

from __future__ import annotations

import asyncio
import collections
import errno
import functools
import ipaddress
import math
import socket
import weakref
from collections.abc import Callable
from typing import Any

from phoneemu.errors import DecodeError, TransportError
from phoneemu.fifo_slots import FifoSlots
from phoneemu.formats._tlv import printable
from phoneemu.net._udp import PeerError, UdpSocket, client_udp_socket, report_icmp_errors
from phoneemu.net.tftp_codec import (
    DEFAULT_BLKSIZE,
    Error,
    ErrorCode,
    OptionAck,
    ReadRequest,
    ack_packet,
    decode,
    encode,
    error_packet,
    negotiated,
)
from phoneemu.net.tftp_defaults import MAX_QUARANTINE, QUARANTINE_S
from phoneemu.values import host_port

__all__ = ["DEFAULT_MAX_SIZE", "MAX_NAMED_OPTIONS", "MAX_QUARANTINE", "MAX_QUOTED", "QUARANTINE_S",
           "TftpClientPool", "client_stats", "held_one_off", "tftp_get"]

DEFAULT_MAX_SIZE = 16 * 1024 * 1024
client_stats = {"retransmits": 0}  # process-wide counters (for benchmarks and tests)
Addr = tuple[Any, ...]

_KINDS = {ErrorCode.FILE_NOT_FOUND: "not-found", ErrorCode.ACCESS_VIOLATION: "refused"}
#: packets a client does not expect, by opcode, as an ignored one is named (:meth:`_Transfer._ignore`)
_OPCODE_NAMES = {1: "RRQ", 2: "WRQ", 4: "ACK"}

#: characters of a server's ERROR message a failure quotes (ours, module docstring; the rest is counted)
MAX_QUOTED = 200
#: options an OACK acknowledged unasked that a refusal names (ours, module docstring; the rest counted)
MAX_NAMED_OPTIONS = 8
_OPTION_NAME_SHOWN = 40  # characters of each option name named (the codec lets one have 512)


def _quoted(text: str) -> str:
    """The server's ``text`` escaped (:func:`printable`), at most :data:`MAX_QUOTED` of its characters:
    a failure's reason stays short whatever the datagram held (module docstring)."""
    if len(text) <= MAX_QUOTED:
        return printable(text)
    return f"{printable(text[:MAX_QUOTED])}... ({len(text)} characters)"


def _named_options(names: set[str]) -> str:
    """``['a', 'b']`` of the first :data:`MAX_NAMED_OPTIONS` ``names`` in order, each cut at 40 characters,
    then how many more (module docstring)."""
    ordered = sorted(names)
    shown = [n if len(n) <= _OPTION_NAME_SHOWN else f"{n[:_OPTION_NAME_SHOWN]}..."
             for n in ordered[:MAX_NAMED_OPTIONS]]
    more = len(ordered) - len(shown)
    return f"{shown}" + (f" and {more} more" if more else "")


class _Transfer:
    __slots__ = (
        "blksize",
        "cap_at",
        "deadline",
        "expected",
        "final_block",
        "final_pkt",
        "fut",
        "got_oack",
        "ignored",
        "ignored_first",
        "last_pkt",
        "late",
        "loop",
        "max_retries",
        "max_size",
        "max_time",
        "name",
        "on_retransmit",
        "parts",
        "pool",
        "received",
        "requested",
        "resends",
        "resent_rrq",
        "retries",
        "server",
        "tid",
        "timeout",
        "timer",
        "transport",
        "want_tsize",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, transport: UdpSocket, server: Addr,
                 name: str, *, blksize: int | None, timeout: float, retries: int, tsize: bool,
                 max_size: int, on_retransmit: Callable[[], None] | None,
                 pool: TftpClientPool | None = None, max_time: float | None = None) -> None:
        self.loop = loop
        self.pool = pool  # counts this transfer's retransmissions (TftpClientPool counters)
        self.transport = transport
        self.server = server
        self.name = name
        self.requested = blksize
        self.blksize = DEFAULT_BLKSIZE
        self.timeout = timeout
        self.max_retries = retries
        self.want_tsize = tsize
        self.max_size = max_size
        self.on_retransmit = on_retransmit
        self.max_time = max_time  # whole-transfer cap (s), None: none (module docstring)
        self.cap_at = math.inf  # loop time past which the transfer fails as too slow (set by start)
        self.tid: Addr | None = None
        self.expected = 1
        self.got_oack = False
        self.parts: list[bytes] = []
        self.final_pkt = b""
        self.final_block = 0  # the final DATA's block number as sent (16 bits); 0 before it came
        self.received = 0
        self.retries = 0
        self.resends = 0  # packets sent again after a timeout (RRQ or ACK)
        self.resent_rrq = False  # the RRQ went out more than once: the server may run two transfers
        # (TID, final DATA) of this socket's previous transfer: a late copy of it is re-ACKed, not our answer
        self.late: tuple[Addr, bytes] | None = None
        self.last_pkt = b""
        self.ignored = 0  # datagrams heard and ignored (module docstring: what a timeout says was heard)
        self.ignored_first = ""  # the first of them: where it came from and why it was ignored
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.fut: asyncio.Future[bytes] = loop.create_future()

    def bytes_received(self) -> int:
        """Bytes of the file received so far (DATA taken in order; module docstring, progress)."""
        return self.received

    def start(self) -> None:
        """Send the RRQ and arm the one timer of the transfer: the retransmission timeout, or the
        ``max_time`` cap when that comes first (one timer, not two, per transfer: issue #6). Both count
        from one clock read, the RRQ's: a cap no later than a retransmission deadline fails the transfer
        then, never after one more packet sent (was: the cap read after the RRQ went out, so a slow send
        put it behind a deadline equal to it and a retransmission went first)."""
        pkt = self.last_pkt = _rrq(self.name, self.requested, self.want_tsize)
        now = self.loop.time()
        self.deadline = now + self.timeout
        if self.max_time is not None:
            self.cap_at = now + self.max_time
        self.transport.sendto(pkt, self.server)
        self._arm()

    def _arm(self) -> None:
        """The timer at the next retransmission deadline, or at the cap when that is sooner."""
        self.timer = self.loop.call_at(min(self.deadline, self.cap_at), self._on_timer)

    def _send(self, pkt: bytes, addr: Addr) -> None:
        self.last_pkt = pkt
        self.deadline = self.loop.time() + self.timeout
        self.transport.sendto(pkt, addr)

    def _ignore(self, addr: Addr, why: str) -> None:
        """A datagram from ``addr`` heard and ignored for ``why``: counted, the first one said (a timeout's
        text, :meth:`_heard`); bounded memory whatever the server sends."""
        self.ignored += 1
        if self.ignored == 1:
            self.ignored_first = f"a reply from {host_port(addr[0], addr[1])}: {why}"

    def _heard(self) -> str:
        """`` (N datagram(s) ignored, the first ...)`` for a timeout's text, or "" when nothing was."""
        if not self.ignored:
            return ""
        return f" ({self.ignored} datagram(s) ignored, the first {self.ignored_first})"

    def _fail(self, exc: TransportError, notify: bytes | None = None) -> None:
        if notify is not None and self.tid is not None:
            self.transport.sendto(notify, self.tid)
        self._finish()
        if not self.fut.done():
            self.fut.set_exception(exc)

    def _finish(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def on_error(self, exc: Exception) -> None:
        if isinstance(exc, PeerError):
            if self.tid is None and exc.errno == errno.ECONNREFUSED and exc.peer[:2] == self.server[:2]:
                host, port = self.server[:2]
                where = host_port(host, port)
                self._fail(TransportError(f"nothing listens on {where} (ICMP port unreachable)",
                                          kind="unreachable", path=self.name))
        elif isinstance(exc, ConnectionRefusedError):
            self._fail(TransportError(f"port unreachable ({exc})", kind="unreachable",
                                      path=self.name))

    def on_datagram(self, buf: bytes, addr: Addr) -> None:
        if self.fut.done():
            return
        if addr[0] != self.server[0]:  # (a multi-homed server answering from another of its addresses)
            self._ignore(addr, f"not {host_port(self.server[0], self.server[1])}, the address asked")
            return
        tid = self.tid
        if tid is not None and addr != tid and addr[:2] != tid[:2]:  # (IPv6 addresses carry 4 fields)
            self.transport.sendto(error_packet(ErrorCode.UNKNOWN_TID, "unknown transfer ID"), addr)
            self._ignore(addr, "another port than the transfer's (ERROR 5 sent)")
            return
        n = len(buf) - 4  # DATA: its payload's length
        if n >= 0 and buf[0] == 0 and buf[1] == 3:  # DATA fast path (one call a datagram: the send)
            block = (buf[2] << 8) | buf[3]
            if tid is None:
                late = self.late
                if late is not None and buf == late[1] and addr[:2] == late[0][:2]:
                    # the previous transfer's final DATA again, from its TID (our final ACK was late
                    # or lost): ACK it as a dallying client would; it is not the answer to our RRQ
                    self.transport.sendto(ack_packet(block), addr)
                    self._ignore(addr, f"the previous download's final DATA {block} again (ACKed)")
                    return
                if block != 1:  # stale packet, or out of order: not an answer to our RRQ
                    self._ignore(addr, f"DATA {block} before DATA 1")
                    return
                self.tid = addr
            if block == self.expected & 0xFFFF:
                if n > self.blksize:
                    self._fail(TransportError(f"DATA {block} has {n} bytes > blksize {self.blksize}",
                                              kind="protocol", path=self.name),
                               error_packet(ErrorCode.ILLEGAL_OPERATION, "block too large"))
                    return
                self.received += n
                if self.received > self.max_size:
                    self._fail(TransportError(f"larger than {self.max_size} bytes",
                                              kind="too-large", path=self.name),
                               error_packet(ErrorCode.DISK_FULL, "file too large"))
                    return
                self.parts.append(buf[4:])
                self.retries = 0
                # ACK of this block, its number as received: _send inlined (per datagram, issue #6), and
                # UdpSocket.sendto too: the socket's own send, a failure handed to send_failed (the same
                # drops, ICMP errors and second try: UdpSocket.send_failed's docstring)
                self.last_pkt = ack = b"\x00\x04" + buf[2:4]
                self.deadline = self.loop.time() + self.timeout
                transport = self.transport
                if not transport.closed:
                    try:
                        transport.sock.sendto(ack, addr)
                    except OSError as exc:
                        transport.send_failed(exc, ack, addr)
                        if self.fut.done():  # the failure ended the transfer (on_error): its outcome stands
                            return
                if n < self.blksize:
                    self.final_pkt, self.final_block = buf, block
                    timer = self.timer  # (_finish inlined: once a transfer, issue #6)
                    if timer is not None:
                        timer.cancel()
                        self.timer = None
                    self.fut.set_result(b"".join(self.parts))
                else:
                    self.expected += 1
            elif block == (self.expected - 1) & 0xFFFF and self.expected > 1:
                self.transport.sendto(ack_packet(block), addr)  # our ACK was lost
            else:
                self._ignore(addr, f"DATA {block} out of order (block {self.expected & 0xFFFF} awaited)")
            return
        try:
            pkt = decode(buf)
        except DecodeError as exc:
            # the first answer from the server's host may be garbage too: say so now, not after every
            # retry has timed out (a stray packet from another port of that host is as telling)
            where = f" at offset {exc.offset}" if exc.offset is not None else ""
            self._fail(TransportError(f"malformed reply{where} from {host_port(addr[0], addr[1])}: "
                                      f"{exc.message}",
                                      kind="protocol", path=self.name),
                       error_packet(ErrorCode.ILLEGAL_OPERATION, "malformed packet"))
            return
        if isinstance(pkt, Error):
            if self.tid is None:
                if pkt.code == ErrorCode.UNKNOWN_TID:
                    # never an answer to a request: a late reply to a packet of an earlier transfer
                    # of this socket (e.g. a duplicated final ACK reaching a single-socket server)
                    self._ignore(addr, "ERROR 5 (unknown transfer ID), not an answer to a request")
                    return
                self.tid = addr
            kind = _KINDS.get(pkt.code, "error")  # type: ignore[call-overload]
            self._fail(TransportError(f"TFTP error {pkt.code}: {_quoted(pkt.message)}", kind=kind,
                                      code=pkt.code, path=self.name))
            return
        if isinstance(pkt, OptionAck):
            if self.expected != 1:
                self._ignore(addr, f"OACK at block {self.expected}")
                return
            if self.got_oack:
                if self.tid is not None and addr[:2] == self.tid[:2]:
                    self.transport.sendto(ack_packet(0), addr)  # our ACK 0 was lost
                return
            self.tid = addr
            self._on_oack(pkt.options)
            return
        # ACK/RRQ/WRQ to a client: ignore.
        name = _OPCODE_NAMES.get(buf[1], f"opcode {buf[1]}")
        self._ignore(addr, f"{name}, not an answer to a read request")

    def _on_oack(self, options: dict[str, str]) -> None:
        asked = {"blksize"} if self.requested is not None else set()
        if self.want_tsize:
            asked.add("tsize")
        extra = set(options) - asked
        try:
            if extra:
                raise DecodeError(f"server acknowledged options we did not ask for: {_named_options(extra)}",
                                  fmt="tftp", path="oack")
            opts = negotiated(options)
            if opts.blksize is not None and self.requested is not None and opts.blksize > self.requested:
                raise DecodeError(f"blksize {opts.blksize} above requested {self.requested}", fmt="tftp",
                                  path="oack.blksize")
        except DecodeError as exc:
            self._fail(TransportError(f"bad OACK: {exc}", kind="protocol", path=self.name),
                       error_packet(ErrorCode.OPTION_REFUSED, "option negotiation failed"))
            return
        if opts.tsize is not None and opts.tsize > self.max_size:
            self._fail(TransportError(f"tsize {opts.tsize} larger than {self.max_size}",
                                      kind="too-large", path=self.name),
                       error_packet(ErrorCode.OPTION_REFUSED, "file too large"))
            return
        if opts.blksize is not None:
            self.blksize = opts.blksize
        self.got_oack = True
        self.retries = 0
        assert self.tid is not None
        self._send(ack_packet(0), self.tid)

    def fail_slow(self) -> None:
        """The whole transfer took longer than ``max_time``: ERROR 0 to the server, ``kind="timeout"``."""
        if not self.fut.done():
            self._fail(TransportError(f"TFTP transfer of {self.name} took longer than {self.max_time:g} s "
                                      f"(at block {self.expected}){self._heard()}", kind="timeout",
                                      path=self.name),
                       error_packet(ErrorCode.NOT_DEFINED, "transfer too slow"))

    def _on_timer(self) -> None:
        self.timer = None
        if self.fut.done():
            return
        now = self.loop.time()
        if now >= self.cap_at:
            self.fail_slow()
            return
        if now < self.deadline:
            self._arm()
            return
        self.retries += 1
        if self.retries > self.max_retries:
            what = "no answer" if self.tid is None else f"stalled at block {self.expected}"
            self._fail(TransportError(f"{what} after {self.max_retries} retries{self._heard()}",
                                      kind="timeout", path=self.name))
            return
        client_stats["retransmits"] += 1
        self.resends += 1
        pool = self.pool
        if pool is not None:  # the pool's counters (fleet summary): only on this timeout path
            pool.retransmits += 1
            if self.resends == 1:
                pool.retransmitted += 1
        if self.on_retransmit is not None:
            self.on_retransmit()
        if self.tid is None:
            self.resent_rrq = True
        self._send(self.last_pkt, self.tid if self.tid is not None else self.server)
        self._arm()


class _Endpoint:
    """One client UDP socket; dispatches to the transfer currently using it."""

    __slots__ = ("loop", "prev_block", "prev_final", "prev_tid", "quiet_at", "reusable", "transfer",
                 "transport")

    def __init__(self, family: int, loop: asyncio.AbstractEventLoop | None = None) -> None:
        # the pool gives its loop: asyncio.get_running_loop() costs a getpid() syscall a call
        self.loop = loop if loop is not None else asyncio.get_running_loop()
        self.transfer: _Transfer | None = None
        self.prev_tid: Addr | None = None  # TID and final DATA of the previous transfer (dally)
        self.prev_final = b""
        self.prev_block = 0  # its block number (16 bits, as sent)
        self.reusable = False  # the last transfer succeeded and a stale packet of it cannot pass
        self.quiet_at = 0.0  # loop time from which the pool prefers to reuse it (TftpClientPool.get)
        sock = client_udp_socket(family)  # bound by the kernel at the RRQ's sendto
        try:
            self.transport = UdpSocket(self.loop, sock, self._on_datagram, self._on_error,
                                       max_batch=1)
        except BaseException:  # (add_reader on a closed loop: RuntimeError) the socket is not left open
            sock.close()
            raise
        self.transport.icmp_errors = report_icmp_errors(sock)

    def _on_datagram(self, data: bytes, addr: Addr) -> None:
        prev = self.prev_tid
        if prev is not None and data == self.prev_final and addr[:2] == prev[:2]:
            # the previous transfer's final DATA again (our last ACK was lost): re-ACK it, as a
            # dallying RFC 1350 client would, while the socket waits in the pool.
            self.transport.sendto(ack_packet((data[2] << 8) | data[3]), addr)
            return
        t = self.transfer
        if t is not None:
            t.on_datagram(data, addr)
        elif (prev is not None and addr[0] == prev[0] and addr[:2] != prev[:2] and len(data) >= 4
              and data[0] == 0 and data[1] in (3, 6)):
            # waiting in the pool: DATA/OACK from another port of the last server is a transfer we did
            # not ask for (the server saw a duplicated RRQ): ERROR 5 ends it (RFC 1350), and the socket
            # is not reused — a retransmission of it could pass as the answer to our next request.
            # (Ports are not remembered instead: servers' ephemeral ports come round again quickly.)
            self.reusable = False
            self.transport.sendto(error_packet(ErrorCode.UNKNOWN_TID, "unknown transfer ID"), addr)
        elif (prev is not None and addr[:2] == prev[:2] and len(data) >= 4 and data[0] == 0
              and data[1] in (3, 6)):
            # a single-socket server's transfer we did not ask for (it answers from the TID we keep):
            # its packets could reach our next request, so this socket is not reused
            self.reusable = False

    def _on_error(self, exc: OSError) -> None:
        t = self.transfer
        if t is not None:
            t.on_error(exc)


def _open_endpoint(family: int, loop: asyncio.AbstractEventLoop, name: str) -> _Endpoint:
    """A new client socket; TransportError (``kind="error"``) naming the file when the system gives
    none (EMFILE: the open-file limit reached), not a bare OSError."""
    try:
        return _Endpoint(family, loop)
    except OSError as exc:
        raise TransportError(f"cannot open a UDP socket for {name}: {exc}", kind="error", path=name) from exc


#: file names up to this long, ASCII and without NUL, take :func:`_rrq`'s short path (the codec allows 512)
_RRQ_NAME_FAST = 255


def _rrq(name: str, blksize: int | None, tsize: bool) -> bytes:
    """The RRQ for ``name`` (octet, the options asked), the codec's bytes: a name the codec takes for certain
    is joined to the rest of the request built once (:func:`_rrq_tail`); any other goes through the codec,
    which builds it or says why not (EncodeError). Issue #6: a fleet sends five RRQs a boot."""
    if len(name) <= _RRQ_NAME_FAST and name.isascii() and "\0" not in name:
        return b"\x00\x01" + name.encode("ascii") + _rrq_tail(blksize, tsize)
    return encode(ReadRequest(filename=name, mode="octet", options=_rrq_options(blksize, tsize)))


def _rrq_options(blksize: int | None, tsize: bool) -> dict[str, str]:
    """The RRQ options asked: ``blksize`` (RFC 2348), ``tsize=0`` (RFC 2349)."""
    opts: dict[str, str] = {}
    if blksize is not None:
        opts["blksize"] = str(blksize)
    if tsize:
        opts["tsize"] = "0"
    return opts


@functools.lru_cache(maxsize=64)
def _rrq_tail(blksize: int | None, tsize: bool) -> bytes:
    """What follows the file name in an RRQ (its NUL, ``octet``, the options), as the codec encodes it."""
    return encode(ReadRequest(filename="", mode="octet", options=_rrq_options(blksize, tsize)))[2:]


@functools.lru_cache(maxsize=256)
def _literal(host: str, port: int) -> Addr | None:
    """``(ip, port)`` when ``host`` is an IP address literal (no lookup needed), else None."""
    try:
        return (str(ipaddress.ip_address(host)), port)
    except ValueError:
        return None


async def _resolve(host: str, port: int) -> Addr:
    addr = _literal(host, port)
    if addr is not None:
        return addr
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise TransportError(f"cannot resolve {host}: {exc}", kind="unreachable") from exc
    if not infos:
        raise TransportError(f"cannot resolve {host}", kind="unreachable")
    return tuple(infos[0][4][:2])


async def _run(ep: _Endpoint, server: Addr, name: str, *, blksize: int | None, timeout: float, retries: int,
               tsize: bool, max_size: int, on_retransmit: Callable[[], None] | None = None,
               max_time: float | None = None, pool: TftpClientPool | None = None,
               on_start: Callable[[Callable[[], int]], None] | None = None) -> bytes:
    loop = ep.loop
    t = _Transfer(loop, ep.transport, server, name, blksize=blksize, timeout=timeout,
                  retries=retries, tsize=tsize, max_size=max_size, on_retransmit=on_retransmit, pool=pool,
                  max_time=max_time)
    if on_start is not None:  # once per transfer: its reader, read when wanted (nothing per block)
        on_start(t.bytes_received)
    if ep.prev_tid is not None:  # its final DATA, late, is re-ACKed (module docstring)
        t.late = (ep.prev_tid, ep.prev_final)
    ep.transfer = t
    ep.prev_tid = None
    ep.reusable = False
    # no dally during a transfer (prev_tid is cleared): datagrams go straight to it, one call less each
    ep.transport.on_datagram = t.on_datagram
    try:
        t.start()
        data = await t.fut
        if t.tid is not None:
            ep.prev_tid, ep.prev_final, ep.prev_block = t.tid, t.final_pkt, t.final_block
            # see the module docstring: a single-socket server's final DATA 1 could pass as the next
            # file's first block; a final DATA 2+ cannot (the next transfer wants DATA 1 first)
            # the RRQ went out twice: the server may run a second transfer of it, whose DATA 1 would
            # pass as the answer to this socket's next request (module docstring): not reused
            ep.reusable = (t.tid[:2] != server[:2] or t.final_block >= 2) and not t.resent_rrq
        return data
    finally:
        if t.timer is not None:  # (a transfer that succeeded has none left)
            t._finish()
        ep.transfer = None
        ep.transport.on_datagram = ep._on_datagram


@functools.lru_cache(maxsize=256)
def _family(addr: Addr) -> int:
    return socket.AF_INET6 if ":" in str(addr[0]) else socket.AF_INET


#: sockets at most resting (idle for less than one timeout) before the pool reuses the one that rested
#: longest (module docstring: a storm's rate and memory against how long a late packet is waited out)
MAX_RESTING = 256

#: sockets at most held by :func:`tftp_get`'s quarantine of one event loop: one-off downloads come one at a
#: time per phone, and a process without a pool keeps the default open-file limit (often 1,024) for the rest
MAX_ONE_OFF_QUARANTINE = 64


class _Quarantine:
    """Sockets not reused, held open and unread for ``seconds``, then closed; at most ``limit`` (past it
    the one held longest closes early). A task of the loop, the keeper, closes them when due, and all of
    them when it is cancelled (the loop ends). The keeper runs while a transfer that may end in
    :meth:`hold` is under way (:meth:`enter` .. :meth:`leave`), not only while sockets are held: so
    ``asyncio.run``, cancelling the loop's tasks at its end, cancels it too, and a transfer cancelled then
    holds nothing past the loop (a keeper started at that point would be left pending: "Task was
    destroyed but it is pending!", its sockets open until collected). Once the keeper is cancelled, a
    socket is closed at once. It keeps the plain sockets, neither the loop nor that task: the one-off
    quarantines are kept per loop, weakly (module docstring)."""

    __slots__ = ("active", "ended", "evicted", "held", "keeping", "limit", "quarantined", "seconds", "wake")

    def __init__(self, seconds: float, limit: int) -> None:
        self.seconds = seconds
        self.limit = limit
        # (loop time to close at, socket), oldest first (one duration for all: also in closing order)
        self.held: collections.deque[tuple[float, socket.socket]] = collections.deque()
        self.active = 0  # transfers under way that may end in hold()
        self.keeping = False  # the keeper task runs
        self.ended = False  # the keeper was cancelled (the loop ends): hold() closes at once
        self.wake: asyncio.Future[None] | None = None  # the keeper waits on it for a change
        self.quarantined = 0  # sockets held, all told
        self.evicted = 0  # of those, closed early past ``limit``

    def enter(self, loop: asyncio.AbstractEventLoop) -> None:
        """A transfer begins whose socket may be held at its end: the keeper runs until it leaves."""
        self.active += 1
        if not self.keeping:
            self.keep_running(loop)

    def leave(self) -> None:
        """That transfer ended (its socket closed or held)."""
        self.active -= 1
        if not self.active and not self.held:
            self._wake_keeper()

    def hold(self, loop: asyncio.AbstractEventLoop, transport: UdpSocket) -> None:
        """Mute ``transport`` and keep its socket, so its port, for ``seconds`` (0, or the loop ending:
        close it now)."""
        sock = transport.mute()
        if self.seconds <= 0 or self.limit <= 0 or self.ended:
            sock.close()
            return
        held = self.held
        if len(held) >= self.limit:  # a storm of failures: the one held longest goes early
            held.popleft()[1].close()
            self.evicted += 1
        held.append((loop.time() + self.seconds, sock))
        self.quarantined += 1
        if len(held) == 1:  # the keeper may be waiting with nothing due
            self._wake_keeper()
        self.keep_running(loop)

    def keep_running(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the keeper task unless it runs (or the loop ends)."""
        if not self.keeping and not self.ended:
            self.keeping = True
            loop.create_task(self._keep(loop))

    def _wake_keeper(self) -> None:
        if self.wake is not None and not self.wake.done():
            self.wake.set_result(None)

    async def _keep(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close each held socket when its time is up, while sockets are held or transfers under way;
        every one if the loop ends first."""
        held = self.held
        try:
            while held or self.active:
                self.wake = wake = loop.create_future()
                timer = loop.call_at(held[0][0], _set_done, wake) if held else None
                try:
                    await wake
                finally:
                    if timer is not None:
                        timer.cancel()
                now = loop.time()
                while held and held[0][0] <= now:
                    held.popleft()[1].close()
        except BaseException:  # cancelled as asyncio.run ends (or dropped with a closed loop)
            self.ended = True
            self.close()
            raise
        finally:
            self.keeping = False
            self.wake = None

    def close(self) -> None:
        """Close every held socket now (the keeper, woken, ends once no transfer is under way)."""
        while self.held:
            self.held.popleft()[1].close()
        self._wake_keeper()


def _set_done(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


#: the quarantine of :func:`tftp_get`'s sockets, per event loop (weak keys: it goes with its loop)
_ONE_OFF: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Quarantine] = weakref.WeakKeyDictionary()


def _one_off_quarantine(loop: asyncio.AbstractEventLoop) -> _Quarantine:
    quarantine = _ONE_OFF.get(loop)
    if quarantine is None:
        quarantine = _ONE_OFF[loop] = _Quarantine(QUARANTINE_S, MAX_ONE_OFF_QUARANTINE)
    return quarantine


def held_one_off() -> int:
    """Sockets of :func:`tftp_get` the running loop holds in quarantine now (module docstring)."""
    quarantine = _ONE_OFF.get(asyncio.get_running_loop())
    return len(quarantine.held) if quarantine is not None else 0


async def tftp_get(host: str, port: int, filename: str, *, blksize: int | None = None, timeout: float = 1.0,
                   retries: int = 5, tsize: bool = False, max_size: int = DEFAULT_MAX_SIZE,
                   on_retransmit: Callable[[], None] | None = None, max_time: float | None = None,
                   on_start: Callable[[Callable[[], int]], None] | None = None) -> bytes:
    """Download ``filename`` with one fresh UDP socket; TransportError on failure (see module doc). The
    socket is closed at once only when no late packet of its transfer can pass as the answer to a next
    download given its port; otherwise the loop's quarantine holds it (module docstring). ``on_start``:
    called once, as the transfer starts, with the reader of its bytes so far (module docstring, progress)."""
    server = await _resolve(host, port)
    loop = asyncio.get_running_loop()
    ep = _open_endpoint(_family(server), loop, filename)
    quarantine = _one_off_quarantine(loop)
    quarantine.enter(loop)
    try:
        return await _run(ep, server, filename, blksize=blksize, timeout=timeout, retries=retries,
                          tsize=tsize, max_size=max_size, on_retransmit=on_retransmit, max_time=max_time,
                          on_start=on_start)
    finally:
        # reusable: it succeeded and its RRQ went out once; a late final DATA 2+ is never a first answer
        if ep.reusable and ep.prev_block != 1:
            ep.transport.close()
        else:
            quarantine.hold(loop, ep.transport)
        quarantine.leave()


class TftpClientPool:
    """Many concurrent TFTP downloads over a bounded, reused set of UDP sockets.

    Counters (plain integers, for the fleet summary's ``tftp`` figures): ``requests`` (calls of
    :meth:`get`, one refused because the pool is closed included), ``retransmitted`` (transfers that
    sent a packet again after a timeout), ``retransmits`` (those packets); ``quarantined`` (sockets held
    back after a transfer, module docstring) and ``quarantine_evicted`` (of those, closed early past
    ``max_quarantine``).
    """

    def __init__(self, *, max_sockets: int = 1024, blksize: int | None = None, timeout: float = 1.0,
                 retries: int = 5, tsize: bool = False, max_size: int = DEFAULT_MAX_SIZE,
                 max_time: float | None = None, quarantine_s: float = QUARANTINE_S,
                 max_quarantine: int = MAX_QUARANTINE) -> None:
        self.max_sockets = max_sockets
        self.defaults: dict[str, Any] = {"blksize": blksize, "timeout": timeout, "retries": retries,
                                         "tsize": tsize, "max_size": max_size, "max_time": max_time}
        self.requests = 0
        self.retransmitted = 0
        self.retransmits = 0
        self._quarantine_of = _Quarantine(quarantine_s, max_quarantine)  # sockets not reused (module doc)
        self._slots = FifoSlots(max_sockets)  # transfers under way at most, one per transfer (issue #6)
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop of the first get (the pool's)
        self._idle: dict[int, collections.deque[_Endpoint]] = {}
        self._all: set[_Endpoint] = set()
        self._closed = False

    @property
    def quarantine_s(self) -> float:
        """Seconds a socket not reused is held before it is closed (module docstring)."""
        return self._quarantine_of.seconds

    @property
    def max_quarantine(self) -> int:
        """Sockets held at most; past it the one held longest is closed early."""
        return self._quarantine_of.limit

    @property
    def quarantined(self) -> int:
        """Sockets held back after a transfer, all told."""
        return self._quarantine_of.quarantined

    @property
    def quarantine_evicted(self) -> int:
        """Of the sockets held, those closed early past ``max_quarantine``."""
        return self._quarantine_of.evicted

    @property
    def held(self) -> int:
        """Sockets in quarantine now (muted, their ports still taken)."""
        return len(self._quarantine_of.held)

    async def get(self, host: str, port: int, filename: str, **options: Any) -> bytes:
        """Like :func:`tftp_get`; keyword options override the pool defaults. One download on a reused or
        new socket (:meth:`_endpoint`), which goes back to the pool or to quarantine after it. One coroutine
        of ours around the transfer's (:func:`_run`): each of its waits resumes one frame less (issue #6,
        five downloads a phone boot; was a second coroutine, ``_get``)."""
        self.requests += 1
        if self._closed:
            raise TransportError("client pool closed", kind="error")
        opts = {**self.defaults, **options}
        server = _literal(host, port) or await _resolve(host, port)  # an address: no coroutine
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        quarantine = self._quarantine_of
        # its keeper runs while a transfer may end held (_Quarantine.enter, inlined: per transfer)
        quarantine.active += 1
        if not quarantine.keeping:
            quarantine.keep_running(loop)
        try:
            slots = self._slots
            if slots.free and not slots.waiting:  # a slot free, nobody before us (FifoSlots.take, inlined)
                slots.free -= 1
            else:
                await slots.take(loop)
            try:
                if self._closed:  # closed while we waited for a slot or a name: no new download (close)
                    raise TransportError("client pool closed", kind="error")
                ep, idle = self._endpoint(server, filename)
                reuse = False
                try:
                    data = await _run(ep, server, filename, pool=self, **opts)
                    # a single-socket server's late duplicate of a final DATA 1 could pass as the next
                    # transfer's first block: that socket is not reused (module docstring)
                    reuse = ep.reusable
                    return data
                finally:
                    if reuse and not self._closed:
                        ep.quiet_at = loop.time() + opts["timeout"]
                        idle.append(ep)  # FIFO reuse
                    elif self._closed:
                        ep.transport.close()
                        self._all.discard(ep)
                    else:  # after a failure, or with a single-socket server, late packets may follow
                        self._quarantine(ep)
            finally:
                slots.give()
        finally:
            quarantine.leave()

    def _endpoint(self, server: Addr, filename: str) -> tuple[_Endpoint, collections.deque[_Endpoint]]:
        """A socket for a download from ``server``: the idle one that waited longest, or a new one; and the
        idle sockets of its family, where it goes back when reused."""
        assert self._loop is not None
        fam = _family(server)
        idle = self._idle.get(fam)
        if idle is None:
            idle = self._idle[fam] = collections.deque()
        while idle:
            # FIFO: the head has waited longest. A socket idle for less than one retransmission
            # timeout is passed over while fewer than MAX_RESTING rest: a server's second transfer
            # for a duplicated RRQ then meets it idle (ERROR 5) rather than as the answer to its
            # next request (module docstring)
            head = idle[0]
            if not head.reusable:  # it met a transfer it did not ask for while idle
                idle.popleft()
                self._quarantine(head)
                continue
            if head.quiet_at <= self._loop.time() or len(idle) >= MAX_RESTING:
                return idle.popleft(), idle
            break
        ep = _open_endpoint(fam, self._loop, filename)
        self._all.add(ep)
        return ep, idle

    def _quarantine(self, ep: _Endpoint) -> None:
        """Hold ``ep``'s socket open but muted for ``quarantine_s``, then close it (module docstring):
        its port is not handed to a new socket while a server may still send to it."""
        self._all.discard(ep)
        if self._loop is None:
            ep.transport.close()
        else:
            self._quarantine_of.hold(self._loop, ep.transport)

    async def close(self) -> None:
        """Close the pool's sockets, idle and held; a :meth:`get` still waiting for a slot ends now with the
        error of a closed pool, opening no socket (each waiter is handed a slot, which :meth:`get` gives
        back: the count no longer matters, a closed pool takes no download)."""
        self._closed = True
        slots = self._slots
        while slots.waiting:  # (each give() takes at least one waiter off)
            slots.give()
        for ep in self._all:
            ep.transport.close()
        self._all.clear()
        self._idle.clear()
        self._quarantine_of.close()
        await asyncio.sleep(0)

    async def __aenter__(self) -> TftpClientPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
