"""``phoneemu replay``: rebuild from a capture the files each phone downloaded, and re-run its decisions.

Rules (issue #5 point 3; spec §C.6 request names, §H.1 TFTP/HTTP 6970):

* **TFTP** (RFC 1350/2347/2348): every UDP payload that decodes as TFTP is used, whatever the ports
  (lab servers listen on ephemeral ports). A transfer starts at an RRQ and is keyed by the client's
  ``(address, port)``; the server's transfer ID is the source of its first answer (OACK, DATA or
  ERROR) from the RRQ's server address, and packets from other ports are ignored. A repeated RRQ
  for the same name before any answer is a retransmission. ``blksize`` comes from the OACK (else
  512); DATA blocks are taken in order (``block == previous + 1`` mod 65536, so the rollover past
  65535 works); duplicates are dropped; a block shorter than ``blksize`` ends the transfer.
  ERROR 1 → ``not-found``, 2 → ``refused``, others → ``error``; data without its last block →
  ``incomplete``; no answer at all → ``no-reply``. A new RRQ from the same client endpoint closes
  the previous transfer (client sockets are reused).
* **HTTP 6970**: TCP segments are grouped per connection and each direction is reassembled by
  sequence number from the SYN (or the first segment seen); retransmitted/overlapping bytes are
  merged, and a gap ends the stream (what follows is reported ``incomplete``). The client stream is
  the one starting with ``GET`` or ``HEAD`` (TLS and other TCP is ignored); its requests are paired
  in order with the responses (``Content-Length``, ``chunked``, or to end of stream when the
  server closed). The path is percent-decoded and one leading ``/`` removed, as the lab server does.
  200 → ``ok``, 404 → ``not-found``, 403 → ``refused``, other → ``error``.
* **Which phone**: a name carrying a MAC (``CTLSEP<MAC>.tlv``, ``ITLSEP<MAC>.tlv``,
  ``SEP<MAC>.cnf.xml*``) belongs to that phone. Cluster-wide names (``ITLFile.tlv``, ``CTLFile.tlv``,
  ``XMLDefault.cnf.xml``, loads) are not attributed to a phone: *our convention* is that during a
  boot of a phone, a cluster-wide name is served from a download of that name from the same server
  address inside that boot's window (from the boot's first request to the phone's next boot),
  preferring downloads from a client endpoint (address and port) the phone itself used in that boot
  (a reused TFTP socket, an HTTP keep-alive connection) — then only those count. A
  boot starts with a request for ``CTLSEP<MAC>.tlv`` (else ``ITLSEP<MAC>.tlv``, else the phone's
  first name in the capture) after a request for another name; requests before the first such start
  (a capture begun mid-boot) form a boot of their own.
* **Offline decisions**: a fresh :class:`~phoneemu.phone.phone.Phone` (profile selectable, no
  flash, no MIC) boots once per captured boot through :class:`ReplayFetcher`, which answers each
  name with the captured outcome (consecutive downloads of one name — HTTP then TFTP fallback —
  count as one fetch; the final outcome wins). CAPF is unavailable offline (TransportError
  ``unreachable``). TVS is unavailable too, unless ``tvs_certs`` are given: then an offline TVS
  answers a QUERY whose issuer and serial match one of them with that certificate and
  ``tvs_roles`` (default SAST + CCM+TFTP) and any other QUERY with "not found" — a "what if the TVS
  had vouched for this signer" replay (our convention). With the capture's TLS key log, TVS answers
  as it did in the capture (:mod:`phoneemu.scenario.replay_tvs`).
* Bad input: a malformed pcap raises DecodeError naming the offset; malformed TFTP/HTTP inside it is
  skipped and counted, never raised. Memory is bounded: ``max_file`` bytes per download, ``max_stream``
  per TCP direction.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from phoneemu.errors import DecodeError, PhoneEmuError, TransportError
from phoneemu.net.capture import SYN, PcapPacket, read_pcap
from phoneemu.net.tftp_codec import DEFAULT_BLKSIZE, Data, Error, OptionAck, ReadRequest, WriteRequest, decode
from phoneemu.values import parse_ascii_int

if TYPE_CHECKING:
    from phoneemu.phone.boot import BootReport

__all__ = [
    "CaptureIndex",
    "Download",
    "ReplayBoot",
    "ReplayFetcher",
    "ReplayResult",
    "boots_of",
    "http_downloads",
    "index_capture",
    "index_packets",
    "mac_of",
    "offline_tvs",
    "replay_phone",
    "tcp_connections",
    "tftp_downloads",
]

Endpoint = tuple[str, int]
MAX_FILE = 32 * 1024 * 1024
MAX_STREAM = 64 * 1024 * 1024
_MAX_HEAD = 16 * 1024
_MAC_NAME = re.compile(r"^(?:CTL|ITL)?SEP([0-9A-Fa-f]{12})\.", re.ASCII)
_TFTP_ERRORS = {1: "not-found", 2: "refused"}
_HTTP_OUTCOMES = {200: "ok", 404: "not-found", 403: "refused"}
_FAIL_KINDS = {"not-found": "not-found", "refused": "refused", "incomplete": "timeout",
               "no-reply": "timeout", "too-large": "too-large"}


def mac_of(name: str) -> str | None:
    """The MAC (upper case) a per-device file name carries, else None."""
    m = _MAC_NAME.match(name)
    return m.group(1).upper() if m else None


@dataclass(frozen=True, kw_only=True)
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
    order: int = 0

    @property
    def mac(self) -> str | None:
        return mac_of(self.name)

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    def describe(self) -> str:
        size = f"{len(self.data)} bytes" if self.data is not None else self.outcome
        detail = f" ({self.detail})" if self.detail else ""
        return (f"{self.protocol:<4} {self.server[0]}:{self.server[1]} {self.name}: {size}"
                f"{'' if self.ok else detail}")


# --------------------------------------------------------------------------- TFTP
class _Tftp:
    def __init__(self, rrq: ReadRequest, pkt: PcapPacket, order: int, max_file: int) -> None:
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
        self.max_file = max_file
        self.outcome: str | None = None
        self.detail = ""

    def answer(self, pkt: PcapPacket, msg: object) -> None:
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
                return  # duplicate or out of window
            self.blocks += 1
            self.size += len(msg.data)
            if self.size > self.max_file:
                self.outcome, self.parts = "too-large", []
                self.detail = f"more than {self.max_file} bytes"
                return
            self.parts.append(msg.data)
            if len(msg.data) < self.blksize:
                self.outcome = "ok"
        elif isinstance(msg, Error):
            self.outcome = _TFTP_ERRORS.get(msg.code, "error")
            self.detail = f"TFTP error {msg.code}: {msg.message}"

    def client_error(self, msg: Error) -> None:
        if self.outcome is None:
            self.outcome = "error"
            self.detail = f"client aborted: TFTP error {msg.code}: {msg.message}"

    def finish(self) -> Download:
        outcome, detail = self.outcome, self.detail
        if outcome is None:
            outcome = "incomplete" if self.tid is not None else "no-reply"
            detail = f"{self.blocks} block(s) received, last block missing" if self.tid is not None \
                else "no answer from the server"
        data = b"".join(self.parts) if outcome == "ok" else None
        return Download(name=self.name, protocol="tftp", client=self.client, server=self.server,
                        start=self.start, end=self.end, outcome=outcome, data=data, detail=detail,
                        order=self.order)


def tftp_downloads(packets: Iterable[PcapPacket], *, max_file: int = MAX_FILE) -> tuple[list[Download], int]:
    """TFTP read transfers in ``packets`` (see module rules); ``(downloads, skipped datagrams)``."""
    live: dict[Endpoint, _Tftp] = {}
    done: list[Download] = []
    skipped = 0
    for pkt in packets:
        if pkt.proto != "udp":
            continue
        try:
            msg = decode(pkt.payload)
        except DecodeError:
            skipped += 1
            continue
        src, dst = (pkt.src, pkt.sport), (pkt.dst, pkt.dport)
        if isinstance(msg, WriteRequest):
            continue
        if isinstance(msg, ReadRequest):
            cur = live.get(src)
            if cur is not None and cur.tid is None and cur.name == msg.filename and cur.server == dst:
                continue  # RRQ retransmission
            if cur is not None:
                done.append(cur.finish())
            live[src] = _Tftp(msg, pkt, pkt.index, max_file)
            continue
        to_client = live.get(dst)
        if to_client is not None and pkt.src == to_client.server[0]:
            to_client.answer(pkt, msg)
            continue
        from_client = live.get(src)
        if from_client is not None and pkt.dst == from_client.server[0] and isinstance(msg, Error):
            from_client.client_error(msg)
    done.extend(t.finish() for t in live.values())
    return done, skipped


# --------------------------------------------------------------------------- TCP / HTTP
class _Direction:
    def __init__(self) -> None:
        self.isn: int | None = None
        self.first_seq: int | None = None
        self.segments: list[tuple[int, float, bytes]] = []
        self.stored = 0
        self.fin = False
        self.overflow = False

    def add(self, pkt: PcapPacket, max_stream: int) -> None:
        if pkt.flags & SYN:
            self.isn = pkt.seq
        if pkt.flags & 0x01:
            self.fin = True
        if not pkt.payload:
            return
        if self.first_seq is None:
            self.first_seq = pkt.seq
        if self.stored + len(pkt.payload) > max_stream:
            self.overflow = True
            return
        self.stored += len(pkt.payload)
        self.segments.append((pkt.seq, pkt.ts, pkt.payload))

    def assemble(self) -> tuple[bytes, list[int], list[float], bool]:
        """``(stream, offsets, times, complete)``: bytes in order up to the first gap."""
        base = (self.isn + 1) if self.isn is not None else self.first_seq
        if base is None:
            return b"", [], [], not self.overflow
        segs = sorted((((seq - base) & 0xFFFFFFFF), ts, data) for seq, ts, data in self.segments)
        out = bytearray()
        offsets: list[int] = []
        times: list[float] = []
        gap = False
        for rel, ts, data in segs:
            if rel > 0x7FFFFFFF:  # before the start (a segment older than the SYN): ignore
                continue
            if rel > len(out):
                gap = True
                break
            tail = data[len(out) - rel:]
            if tail:
                offsets.append(len(out))
                times.append(ts)
                out += tail
        return bytes(out), offsets, times, not gap and not self.overflow


class _Conn:
    def __init__(self, a: Endpoint, b: Endpoint) -> None:
        self.ends = (a, b)
        self.dirs = {a: _Direction(), b: _Direction()}
        self.client: Endpoint | None = None
        self.start: float | None = None
        self.end = 0.0
        self.order = 0


def _at(offsets: list[int], times: list[float], pos: int, default: float) -> float:
    i = bisect.bisect_right(offsets, pos) - 1
    return times[i] if 0 <= i < len(times) else default


def _head(buf: bytes, pos: int) -> tuple[str, dict[str, str], int] | None:
    """Start line, lower-cased headers and the body offset of the message at ``pos`` (None: malformed)."""
    end = buf.find(b"\r\n\r\n", pos, pos + _MAX_HEAD)
    if end < 0:
        return None
    try:
        lines = buf[pos:end].decode("latin-1").split("\r\n")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes everything
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        k, sep, v = line.partition(":")
        if not sep:
            return None
        headers[k.strip().lower()] = v.strip()
    return lines[0], headers, end + 4


def _chunked(buf: bytes, pos: int, limit: int) -> tuple[bytes | None, int, str]:
    out = bytearray()
    for _ in range(1_000_000):
        eol = buf.find(b"\r\n", pos, pos + 1024)
        if eol < 0:
            return None, pos, "chunk size line truncated"
        text = buf[pos:eol].split(b";")[0].strip()
        try:
            size = int(text, 16)
        except ValueError:
            return None, pos, f"bad chunk size {text[:20]!r}"
        pos = eol + 2
        if size == 0:
            end = buf.find(b"\r\n\r\n", pos - 2, pos + _MAX_HEAD)
            return bytes(out), (end + 4 if end >= 0 else len(buf)), ""
        if len(out) + size > limit:
            return None, len(buf), f"more than {limit} bytes"
        if pos + size > len(buf):
            return None, len(buf), "chunk truncated"
        out += buf[pos : pos + size]
        pos += size + 2
    return None, len(buf), "too many chunks"  # pragma: no cover


def _http_conn(conn: _Conn, max_file: int) -> list[Download]:
    assert conn.client is not None
    server = conn.ends[1] if conn.ends[0] == conn.client else conn.ends[0]
    creq, coffs, ctimes, _ = conn.dirs[conn.client].assemble()
    sresp, soffs, stimes, scomplete = conn.dirs[server].assemble()
    sfin = conn.dirs[server].fin
    start = conn.start if conn.start is not None else 0.0
    out: list[Download] = []
    qpos = rpos = 0
    for _ in range(10_000):
        if qpos >= len(creq):
            break
        head = _head(creq, qpos)
        if head is None:
            break
        line, _hdrs, qpos = head
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] not in ("GET", "HEAD"):
            break
        method, target = parts[0], parts[1]
        name = unquote(target.split("?", 1)[0])
        name = name[1:] if name.startswith("/") else name
        t0 = _at(coffs, ctimes, qpos - 1, start)
        outcome, data, detail, t1 = "no-reply", None, "no response", conn.end
        rhead = _head(sresp, rpos) if rpos < len(sresp) else None
        if rhead is not None:
            sline, shdrs, body_at = rhead
            t1 = _at(soffs, stimes, body_at - 1, conn.end)
            sparts = sline.split(" ", 2)
            code = (parse_ascii_int(sparts[1], max_digits=3) if len(sparts) >= 2 else None) or -1
            outcome = _HTTP_OUTCOMES.get(code, "error")
            detail = f"HTTP {sline[9:].strip() if sline.startswith('HTTP/') else sline[:40]}"
            body: bytes | None
            if method == "HEAD" or code in (204, 304) or 100 <= code < 200:
                body, rpos = b"", body_at
            elif "chunked" in shdrs.get("transfer-encoding", "").lower():
                body, rpos, why = _chunked(sresp, body_at, max_file)
                if body is None:
                    outcome, detail = ("too-large" if "more than" in why else "incomplete"), why
            elif parse_ascii_int(shdrs.get("content-length", "")) is not None:
                n = int(shdrs["content-length"])
                if n > max_file:
                    body, rpos, outcome, detail = None, len(sresp), "too-large", f"Content-Length {n}"
                elif body_at + n > len(sresp):
                    body, rpos, outcome = None, len(sresp), "incomplete"
                    detail = f"body {len(sresp) - body_at} of {n} bytes"
                else:
                    body, rpos = sresp[body_at : body_at + n], body_at + n
            else:
                body, rpos = sresp[body_at:], len(sresp)
                if not (sfin and scomplete):
                    body, outcome, detail = None, "incomplete", "body to end of stream, stream not closed"
            if outcome == "ok":
                data = body
        elif sresp[rpos:] or not scomplete:
            outcome, detail = "incomplete", "response truncated or malformed"
        out.append(Download(name=name, protocol="http", client=conn.client, server=server, start=t0, end=t1,
                            outcome=outcome, data=data, detail=detail, order=conn.order))
    return out


def _is_http_request(stream: bytes) -> bool:
    return stream[:4] == b"GET " or stream[:5] == b"HEAD "


def tcp_connections(packets: Iterable[PcapPacket], max_stream: int) -> list[_Conn]:
    """The TCP connections of ``packets`` in order of first packet, each direction's segments kept
    (at most ``max_stream`` bytes); ``client`` is the SYN's sender when the SYN was captured."""
    conns: dict[frozenset[Endpoint], _Conn] = {}
    earlier: list[_Conn] = []
    for pkt in packets:
        if pkt.proto != "tcp":
            continue
        a, b = (pkt.src, pkt.sport), (pkt.dst, pkt.dport)
        key = frozenset((a, b))
        conn = conns.get(key)
        if conn is None or (pkt.flags & SYN and not pkt.flags & 0x10 and conn.dirs[a].stored):
            if conn is not None:
                earlier.append(conn)  # a new connection reusing the port pair
            conn = conns[key] = _Conn(a, b)
            conn.order = pkt.index
        if conn.start is None:
            conn.start = pkt.ts
        conn.end = pkt.ts
        if pkt.flags & SYN and not pkt.flags & 0x10:
            conn.client = a
        conn.dirs[a].add(pkt, max_stream)
    return sorted([*earlier, *conns.values()], key=lambda c: c.order)


def http_downloads(packets: Iterable[PcapPacket], *, max_file: int = MAX_FILE,
                   max_stream: int = MAX_STREAM) -> list[Download]:
    """HTTP GET/HEAD exchanges in the TCP packets of ``packets`` (see module rules)."""
    out: list[Download] = []
    for conn in tcp_connections(packets, max_stream):
        ends = [conn.client] if conn.client is not None else list(conn.ends)
        conn.client = next((e for e in ends if _is_http_request(conn.dirs[e].assemble()[0])), None)
        if conn.client is not None:
            out.extend(_http_conn(conn, max_file))
    return out


# --------------------------------------------------------------------------- index
@dataclass(frozen=True, kw_only=True)
class CaptureIndex:
    """Every download of a capture, in order of request time."""

    downloads: tuple[Download, ...]
    packets: int
    skipped: int = 0

    def macs(self) -> list[str]:
        return sorted({d.mac for d in self.downloads if d.mac is not None})

    def of_mac(self, mac: str) -> list[Download]:
        return [d for d in self.downloads if d.mac == mac]

    def shared(self) -> list[Download]:
        """Downloads of cluster-wide names (no MAC in the name)."""
        return [d for d in self.downloads if d.mac is None]


def index_packets(packets: Iterable[PcapPacket], *, max_file: int = MAX_FILE) -> CaptureIndex:
    pkts = list(packets)
    tftp, skipped = tftp_downloads(pkts, max_file=max_file)
    http = http_downloads(pkts, max_file=max_file)
    ordered = sorted([*tftp, *http], key=lambda d: (d.start, d.order))
    return CaptureIndex(downloads=tuple(ordered), packets=len(pkts), skipped=skipped)


def index_capture(path: str | Path, *, max_file: int = MAX_FILE) -> CaptureIndex:
    """Read a pcap (DecodeError naming the offset when malformed) and index its downloads."""
    return index_packets(read_pcap(path), max_file=max_file)


# --------------------------------------------------------------------------- boots
@dataclass(frozen=True, kw_only=True)
class ReplayBoot:
    """One boot of a phone as seen in the capture: its own downloads and the cluster-wide ones offered."""

    mac: str
    server: str
    start: float
    end: float
    own: tuple[Download, ...]
    shared: tuple[Download, ...]


def boots_of(index: CaptureIndex, mac: str) -> list[ReplayBoot]:
    """Split a phone's downloads into boots (see module rules)."""
    own = index.of_mac(mac)
    if not own:
        return []
    names = {d.name for d in own}
    first = next((n for n in (f"CTLSEP{mac}.tlv", f"ITLSEP{mac}.tlv") if n in names), own[0].name)
    groups: list[list[Download]] = []
    prev: str | None = None
    for d in own:
        if not groups or (d.name == first and prev != first):
            groups.append([])
        groups[-1].append(d)
        prev = d.name
    boots: list[ReplayBoot] = []
    for i, g in enumerate(groups):
        start = g[0].start
        stop = groups[i + 1][0].start if i + 1 < len(groups) else float("inf")
        server = g[0].server[0]
        shared = tuple(d for d in index.shared() if d.server[0] == server and start <= d.start < stop)
        end = max([d.end for d in g] + [d.end for d in shared])
        boots.append(ReplayBoot(mac=mac, server=server, start=start, end=end, own=tuple(g), shared=shared))
    return boots


class ReplayFetcher:
    """A :class:`~phoneemu.net.fetch.Fetcher` answering with one captured boot's outcomes."""

    def __init__(self, boot: ReplayBoot) -> None:
        self._own: dict[str, list[list[Download]]] = {}
        prev: str | None = None
        for d in boot.own:
            groups = self._own.setdefault(d.name, [])
            if prev == d.name:
                groups[-1].append(d)
            else:
                groups.append([d])
            prev = d.name
        self._clients = {d.client for d in boot.own}
        self._shared: dict[str, list[Download]] = {}
        for d in boot.shared:
            self._shared.setdefault(d.name, []).append(d)
        self.served: list[tuple[str, str]] = []  # (name, what was answered)

    def _pick(self, name: str) -> tuple[list[Download], str]:
        queue = self._own.get(name)
        if queue:
            group = queue.pop(0) if len(queue) > 1 else queue[0]
            return group, ""
        cands = self._shared.get(name, [])
        mine = [d for d in cands if d.client in self._clients]
        if mine:
            return mine, " (cluster-wide name, same client endpoint)"
        if cands:
            return cands, " (cluster-wide name, from this boot's window)"
        return [], ""

    async def fetch(self, name: str) -> bytes:
        group, note = self._pick(name)
        if not group:
            self.served.append((name, "not in capture → not found"))
            raise TransportError("not requested in the capture", kind="not-found", code=1, path=name)
        ok = next((d for d in group if d.ok and d.data is not None), None)
        if ok is not None and ok.data is not None:
            self.served.append((name, f"{len(ok.data)} bytes via {ok.protocol}{note}"))
            return ok.data
        last = group[-1]
        self.served.append((name, f"{last.outcome} via {last.protocol}{note}"))
        raise TransportError(f"captured outcome: {last.outcome} {last.detail}".strip(),
                             kind=_FAIL_KINDS.get(last.outcome, "error"),
                             code=1 if last.outcome == "not-found" else None, path=name)


# --------------------------------------------------------------------------- offline boot
@dataclass(frozen=True, kw_only=True)
class ReplayResult:
    """One replayed boot: what the capture showed and what the phone decided offline."""

    boot: ReplayBoot
    served: tuple[tuple[str, str], ...]
    report: BootReport

    def as_dict(self) -> dict[str, Any]:
        return {"server": self.boot.server, "start": self.boot.start,
                "served": [{"name": n, "answer": a} for n, a in self.served],
                "report": self.report.as_dict()}


def offline_tvs(certificates: Sequence[Any], roles: frozenset[int]) -> Any:
    """A :class:`~phoneemu.phone.boot.TvsAsker` vouching for ``certificates`` (see module rules)."""
    from phoneemu.crypto.certs import cert_der, dn_text, normalise_dn
    from phoneemu.phone.store import TvsAnswer, TvsStatus

    known = {(normalise_dn(dn_text(c.issuer)), c.serial_number): cert_der(c) for c in certificates}

    async def ask(_servers: Any, key: Any, **_kw: Any) -> Any:
        if not certificates:
            raise TransportError("TVS unavailable offline (replay)", kind="unreachable")
        der = known.get((normalise_dn(key.issuer), int.from_bytes(key.serial, "big")))
        return TvsAnswer(cert_der=der, roles=roles) if der is not None else TvsStatus.NOT_FOUND
    return ask


async def replay_phone(index: CaptureIndex, mac: str, *, profile: str = "cp-8861",
                       now: int | None = None, image_signers: Sequence[Any] = (),
                       tvs_certs: Sequence[Any] = (),
                       tvs_roles: frozenset[int] = frozenset({0, 2}),
                       tvs_capture: Any = None) -> list[ReplayResult]:
    """Boot a fresh phone offline once per captured boot of ``mac`` (see module rules); with
    ``tvs_capture`` (:class:`phoneemu.scenario.replay_tvs.TvsCapture`) TVS answers as it did in the
    capture."""
    from phoneemu.formats.config import normalise_mac
    from phoneemu.phone.boot import BootTarget
    from phoneemu.phone.phone import Phone
    from phoneemu.phone.profile import get_profile

    mac = normalise_mac(mac)
    boots = boots_of(index, mac)
    if not boots:
        raise PhoneEmuError(f"no download of phone {mac} in the capture (macs: "
                            f"{', '.join(index.macs()) or 'none'})", path="mac")
    current = {"t": int(now if now is not None else boots[0].start)}

    async def no_capf(*_a: Any, **_k: Any) -> Any:
        raise TransportError("CAPF unavailable offline (replay)", kind="unreachable")

    async def no_sleep(_s: float) -> None:
        return None

    window = {"start": 0.0, "stop": 0.0}
    tvs = offline_tvs(tvs_certs, tvs_roles)
    if tvs_capture is not None:
        tvs = tvs_capture.asker(lambda: (window["start"], window["stop"]),
                                fallback=tvs if tvs_certs else None)
    phone = Phone(mac=mac, profile=get_profile(profile), flash=None, clock=lambda: current["t"],
                  tvs=tvs, capf=no_capf, sleep=no_sleep,
                  image_signers=tuple(image_signers), capf_retries=0)
    results: list[ReplayResult] = []
    for i, b in enumerate(boots):
        window["start"] = b.start
        window["stop"] = boots[i + 1].start if i + 1 < len(boots) else float("inf")
        if now is None:
            current["t"] = int(b.start)
        fetcher = ReplayFetcher(b)
        port = b.own[0].server[1] if b.own[0].protocol == "tftp" else 69
        report = await phone.boot(BootTarget(host=b.server, tftp_port=port, use_http=False), fetcher=fetcher)
        results.append(ReplayResult(boot=b, served=tuple(fetcher.served), report=report))
    return results
