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
  ``incomplete`` (a block the capture lacks while later ones came: its detail names it and the capture
  offset of the first later one); no answer at all → ``no-reply``. A new RRQ from the same client
  endpoint closes the previous transfer (client sockets are reused).
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
  (a capture begun mid-boot) form a boot of their own — a run of that name the capture begins with is
  the first boot's start, not such a boot. Consecutive requests for that name are one
  boot's retries (a secure-mode phone without a CTL "tries four times", spec §G.9; an HTTP request and
  its TFTP fallback are one fetch): of such a run only the last fetch can start a boot, and only when
  a request for another name follows it (*ours*) — the run's earlier fetches are the previous boot's
  retries, and its window keeps the static files and load it asked for after them. A phone that asks
  for ``ITLSEP<MAC>.tlv`` in the capture asks for it right after the CTL at every boot's start, while
  the config it retrieves again once CAPF changed its LSC (spec §G.12.4) follows its §G.9 retries
  straight (they come before the config is acted on, :mod:`phoneemu.phone.boot`): for such a phone a
  request for ``CTLSEP<MAC>.tlv`` (or a run of them) starts a boot only when the next other name is
  that ITL, not the config (*ours*; a model asking for no ITL, such as the CP-7940, has no such mark:
  its CTL requests split as above).
* **Capture order is the order** (*our convention*, :mod:`phoneemu.scenario._capture_flows`): a
  timestamp earlier than the packet before it (captures merged from several interfaces, a clock
  step) is taken as equal to it, with a warning naming its capture offset. Downloads are ordered,
  split into boots and given to boot windows (from the boot's first request to the phone's next
  boot) by the rank of their request in capture order, not by time, and so are the TVS exchanges
  a boot may use; a boot's time (the phone clock without ``--now``) is the time of its first
  request, which thus never goes back from one boot to the next.
* **Offline decisions**: a fresh :class:`~phoneemu.phone.phone.Phone` (profile selectable, no
  flash; no MIC, LSC or manual key unless ``keys_from`` names a phone's flash) boots once per
  captured boot through :class:`ReplayFetcher`, which answers each name with the captured outcome
  (consecutive downloads of one name — HTTP then TFTP fallback — count as one fetch; the final
  outcome wins). CAPF is unavailable offline (TransportError
  ``unreachable``, :func:`offline_capf`): when the capture holds a TLS connection, decrypted or not, to the
  port of the config's CAPF server (*ours*: by port, the scan keeps no more of a TLS connection it does not
  read; :attr:`CaptureIndex.tls_ports`) the operation is ``F.1-capf-not-replayed``, "CAPF session in the
  capture, not replayed" (the LSC stays as it was; :mod:`phoneemu.phone.capf_outcome`: not started, no
  failure), else ``F.1-capf-unreachable``, "CAPF unavailable offline". Neither decides a boot that accepted
  a configuration (*ours*, :func:`capf_not_deciding`: its deciding rule is then the one the live boot's
  would be had its CAPF gone through). TVS is unavailable too, unless ``tvs_certs`` are given: then an
  offline TVS answers a QUERY whose issuer and serial match one of them with that certificate and
  ``tvs_roles`` (default SAST + CCM+TFTP) and any other QUERY with "not found" — a "what if the TVS
  had vouched for this signer" replay (our convention). With the capture's TLS key log, TVS answers
  as it did in the capture (:mod:`phoneemu.scenario.replay_tvs`). A TVS that gives no answer is said
  as the boot's TVS client says it (:mod:`phoneemu.net.tvs_client`, spec §E.1): each server of the
  phone's config (captured, or ``--installed-config``) named in the order it is tried, and why —
  ``no TVS server answered: 10.0.0.5:2445: TVS unavailable offline (...)``, as ``predict`` says it.
  A phone that asks for its config over HTTPS first (TCP 6971, spec §H.1) is answered from the capture's
  HTTPS config downloads (``https_capture``, :mod:`phoneemu.scenario.replay_https_config`: decrypted with
  the key log; without one, or none of the phone's in the boot, as a port that did not answer).
* **TVS questions** (*our convention*; a phone asks TVS while it decides on a file it downloaded, and
  requests its next file once the answer is in, spec §E.7): with a key log, a TVS question of a
  replayed boot is answered from the captured connections ranked from the latest of the phone's
  requests the boot has been answered with so far to its next request in the capture (the end of the
  boot's window after its last; :meth:`ReplayFetcher.span`) — the phone's requests: for its own names,
  and for cluster-wide names from a client endpoint of those or from an address no other phone uses
  (one several phones share names no phone). A fetch of its own name answered from a run of requests
  of that name took those up to the first complete one: a request of the name after it is a later
  fetch (the config again once CAPF changed the LSC, spec §G.12.4), whose TVS question came after
  this one's. Each question is thus matched to the
  connections made for it, in capture order: a TVS server down (no connection, or no TLS) for the ITL's
  question that answers the config's question is the config's answer, not the ITL's.
* **Held in part** (*our convention*): a boot asked for a name the capture holds in part when the name
  carries the phone's MAC and the boot did not request it in the capture, or when the download it is
  answered with was still open when the capture ended (its detail ends "still open when the capture
  ended"): the capture ends during the boot, or the captured phone acted otherwise (another model,
  other files held); so is a download a packet of which the snaplen cut (its detail says so,
  :mod:`phoneemu.scenario._capture_flows` "snaplen"). Each replayed boot lists those names
  (``not_captured``); its decisions stand as the phone made them on what the capture holds.
* Bad input: a malformed pcap raises DecodeError naming the offset; malformed TFTP/HTTP inside it is
  skipped and counted, never raised.
* **Bounded** (:mod:`phoneemu.scenario._capture_flows` has the per-flow caps and the overall
  budget of bytes the open flows and kept downloads hold, :data:`MAX_MEMORY`): the capture is read
  once, one record at a time, and every flow is reassembled as its packets come. ``replay --mac``
  keeps (:func:`phone_sink`) the phone's own downloads, and of the cluster-wide names only what a
  boot of the phone can be served from: downloads from a server the phone asked for its own names,
  requested after its first request, reduced per (segment between two of its requests, server, name) to
  the first complete one and the last one — of any client, and of each client endpoint on an address
  the phone used; one copy of identical bytes. Other phones' downloads are dropped as they end
  (their MACs remembered, at most :data:`MAX_MACS`). ``--list`` keeps no file bytes and lists at
  most :data:`MAX_LISTED` downloads (the rest counted). A download is attributed to a segment by
  rank: every request ranked before it has been seen when it ends. The kept downloads' bytes count
  against the overall budget (once per copy); when it is exceeded and they hold more than half of
  it, *our convention* drops the bytes of the least useful first: a cluster-wide download (kept only
  in case a boot asks for that name) before one of the phone's own (asked for by the boot that made
  it), and among those the largest first (it frees the most for the fewest files, and the files that
  decide trust are small: trust lists, configs; a large one is a load), then the earliest request.
  Such a download is reported ``too-large`` (its detail says why; the boot that fetches it is told
  so), with a warning naming the file, the capture offset and the budget. A capture that fits the
  budget loses nothing, so its decisions are the same whatever the budget. The records of the kept
  downloads (one per request, with or without bytes: a capture of 100,000 requests that never got an
  answer holds 100,000 of them) are counted apart, :data:`RECORD_COST` each (a cluster-wide slot
  :data:`SLOT_COST`), and may hold half the overall budget (:func:`record_allowance`; the flows' and
  bytes' accounting above is unchanged): beyond, *our convention* as ``replay --all``'s for a phone
  whose downloads were not all kept — the phone is not replayed (replayed on a part of its requests it
  would decide on files it never lacked), what was kept for it is let go, and a warning names the
  request, the capture offset and the budget (raise ``--max-memory``); ``--list`` lists no more
  downloads than the allowance holds (the rest counted, with a warning). The boots are replayed one
  at a time: ``replay_boots(each=...)`` hands each result on as it is done, keeping none.
  ``replay --all`` keeps every phone's downloads instead, their bytes on disk
  (:mod:`phoneemu.scenario.replay_fleet`).
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import heapq
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phoneemu.errors import PhoneEmuError, TransportError
from phoneemu.net.capture import PcapPacket, read_pcap
from phoneemu.phone.capf_outcome import (  # moved there (predict's offline CAPF too); still named here
    CAPF_NOT_REPLAYED,
    CAPF_NOT_REPLAYED_RULE,
    CAPF_UNAVAILABLE_OFFLINE,
    capf_not_deciding,
)
from phoneemu.phone.lab_signers import LabSigners, joined
from phoneemu.scenario._capture_flows import (
    CAPTURE_END,
    MAX_FILE,
    MAX_FLOWS,
    MAX_MEMORY,
    MAX_STREAM,
    MAX_TLS_STREAM,
    PIECE_COST,
    SNAPLEN_CUT,
    Download,
    Endpoint,
    FlowScanner,
    Limits,
    mac_of,
)
from phoneemu.values import host_port
from phoneemu.words import counted

if TYPE_CHECKING:
    from phoneemu.phone.boot import BootReport

__all__ = [
    "CAPF_NOT_REPLAYED",
    "CAPF_NOT_REPLAYED_RULE",
    "CAPF_UNAVAILABLE_OFFLINE",
    "MAX_CLIENT_SLOTS",
    "MAX_FILE",
    "MAX_FLOWS",
    "MAX_LISTED",
    "MAX_MACS",
    "MAX_MEMORY",
    "MAX_STREAM",
    "MAX_TLS_STREAM",
    "MIN_RECORD_ALLOWANCE",
    "NOT_IN_CAPTURE",
    "RECORD_COST",
    "SLOT_COST",
    "TVS_UNAVAILABLE_OFFLINE",
    "CaptureIndex",
    "Download",
    "Limits",
    "ReplayBoot",
    "ReplayFetcher",
    "ReplayResult",
    "SharedLookup",
    "boot_count",
    "boot_groups",
    "boots_of",
    "capf_not_deciding",
    "http_downloads",
    "index_capture",
    "index_packets",
    "mac_of",
    "no_tvs_answer",
    "offline_capf",
    "offline_tvs",
    "phone_sink",
    "record_allowance",
    "replay_boots",
    "replay_phone",
    "servers_named",
    "tftp_downloads",
]

MAX_LISTED = 100_000
"""Downloads listed by ``replay --list`` (beyond: counted, not listed)."""
RECORD_COST = 1024
"""What the record of one download a scan keeps counts against the records' allowance (module rules,
"Bounded"), its bytes apart: the :class:`Download` (name, endpoints, times, outcome, detail), the rank
and client address of the phone's request, and what a replay of one phone builds from it (the index,
the phone's boots). Measured with tracemalloc on 20,000 requests without answers (each from its own
client address, or from two; names in turn so that each boot has two or three): 710 to 745 bytes a
request for ``--mac`` with its boots, 630 for ``--list``; rounded up for the index's passing copies."""
SLOT_COST = 768
"""What one cluster-wide slot of a replayed phone counts (module rules, "Bounded"): its key, its four
places and the record it holds (measured with tracemalloc: 627 bytes a slot holding a record of its own,
410 for two slots sharing one)."""
MIN_RECORD_ALLOWANCE = 256 * 1024
"""The records' allowance whatever the budget (``--max-memory`` is 1 MiB at least: half of it is more;
a smaller budget is a test's of the flows, which keeps a few records)."""
MAX_MACS = 100_000
"""Phone MACs remembered (for ``--list`` and for the error naming the phones of the capture)."""
MAX_CLIENT_SLOTS = 100_000
"""``--mac``: cluster-wide downloads kept per client endpoint on the phone's addresses (phones behind
one address, e.g. a lab on 127.0.0.1); beyond, a download counts as from any client of the window."""
NOT_IN_CAPTURE = "not in capture → not found"
"""How :class:`ReplayFetcher` answers a name the boot did not request in the capture."""
_FAIL_KINDS = {"not-found": "not-found", "refused": "refused", "incomplete": "timeout",
               "no-reply": "timeout", "too-large": "too-large"}


# --------------------------------------------------------------------------- where downloads go
class _Kept:
    """The bytes of kept downloads as the overall budget counts them (module rules, "Bounded"): once
    per bytes object (identical bytes kept once are shared), plus ``PIECE_COST``; each kept where a sink
    put it (``where[i]``), so that :meth:`drop` can replace it there."""

    def __init__(self) -> None:
        self.held = 0
        self._live: dict[int, tuple[bytes, list[tuple[list[Any], int]], int]] = {}  # id: bytes, places, seq
        self._order: list[tuple[bool, int, int, int, int]] = []  # heap: own name, -size, order, seq, id
        self._seq = 0

    def hold(self, where: list[Any], i: int) -> None:
        """``where[i]`` (a Download or None) is kept."""
        d = where[i]
        if d is None or d.data is None:
            return
        entry = self._live.get(id(d.data))
        if entry is None:
            self._seq += 1
            entry = self._live[id(d.data)] = (d.data, [], self._seq)
            self.held += len(d.data) + PIECE_COST
            heapq.heappush(self._order, (d.mac is not None, -len(d.data), d.order, self._seq, id(d.data)))
        entry[1].append((where, i))

    def release(self, where: list[Any], i: int) -> None:
        """``where[i]`` is no longer kept (it is about to be replaced)."""
        d = where[i]
        if d is None or d.data is None:
            return
        data, places, _seq = self._live[id(d.data)]
        places[:] = [(w, j) for w, j in places if w is not where or j != i]
        if not places:
            del self._live[id(data)]
            self.held -= len(data) + PIECE_COST

    def drop(self, why: str) -> Download | None:
        """Drop the least useful bytes (module rules, "Bounded"); every download holding them is now
        ``too-large`` (``why`` in its detail). The first such download as it was; None: nothing kept."""
        while self._order:
            *_key, seq, ident = heapq.heappop(self._order)
            entry = self._live.get(ident)
            if entry is None or entry[2] != seq:
                continue  # released since, or another bytes object at the same address
            data, places, _seq = self._live.pop(ident)
            self.held -= len(data) + PIECE_COST
            first: Download = places[0][0][places[0][1]]
            now: dict[int, Download] = {}  # one replacement per download (it may be kept in two places)
            for where, i in places:
                d = where[i]
                if id(d) not in now:
                    now[id(d)] = dataclasses.replace(d, outcome="too-large", data=None, size=None,
                                                     detail=f"{len(data)} bytes received; {why}")
                where[i] = now[id(d)]
            return first
        return None


def record_allowance(budget: int) -> int:
    """What the records of the downloads a scan keeps may count (module rules, "Bounded"): half the
    overall budget ``budget``, at least :data:`MIN_RECORD_ALLOWANCE`."""
    return max(budget // 2, MIN_RECORD_ALLOWANCE)


class _KeptSink:
    """A download sink whose kept bytes are accounted in :class:`_Kept` (the overall budget), and whose
    records (module rules, "Bounded") count against :func:`record_allowance` once the scan has bound it
    (:meth:`bind`)."""

    def __init__(self) -> None:
        self.kept = _Kept()
        self.allowance = record_allowance(MAX_MEMORY)
        self.records = 0  # what the records kept count, RECORD_COST (or SLOT_COST) each
        self.warn: Callable[[str], None] = lambda _text: None
        self.offset: Callable[[], int] = lambda: 0

    def bind(self, budget: int, warn: Callable[[str], None], offset: Callable[[], int]) -> None:
        """The scan's overall budget, where its warnings go and where its packet is (the scanner calls it)."""
        self.allowance, self.warn, self.offset = record_allowance(budget), warn, offset

    @property
    def held(self) -> int:
        return self.kept.held

    def drop(self, why: str) -> Download | None:
        return self.kept.drop(why)


class _KeepAll(_KeptSink):
    """Every download with its bytes (the library functions below; small captures)."""

    def __init__(self) -> None:
        super().__init__()
        self.downloads: list[Download] = []

    def request(self, name: str, client: Endpoint, server: Endpoint, start: float, order: int) -> None:
        return None

    def want_data(self, name: str) -> bool:
        return True

    def add(self, download: Download) -> None:
        self.downloads.append(download)
        self.kept.hold(self.downloads, len(self.downloads) - 1)

    def index(self, scanner: FlowScanner, warnings: Sequence[str] = ()) -> CaptureIndex:
        ordered = sorted(self.downloads, key=lambda d: d.order)
        return CaptureIndex(downloads=tuple(ordered), packets=scanner.packets, skipped=scanner.skipped,
                            warnings=tuple(warnings), snaplen_cut=scanner.snaplen_cut,
                            tls_ports=frozenset(scanner.tls_ports))


class _ListSink(_KeepAll):
    """``--list``: what each phone downloaded, without the bytes; at most ``limit`` downloads listed."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.unlisted = 0
        self.macs: set[str] = set()

    def want_data(self, name: str) -> bool:
        return False

    def add(self, download: Download) -> None:
        mac = download.mac
        if mac is not None and len(self.macs) < MAX_MACS:
            self.macs.add(mac)
        if len(self.downloads) < self.limit and self.records + RECORD_COST <= self.allowance:
            self.downloads.append(download)
            self.records += RECORD_COST
            return
        if not self.unlisted and len(self.downloads) < self.limit:
            self.warn(f"{download.protocol} {host_port(*download.server)} {download.name!r}, capture "
                      f"offset {self.offset()}: the records of the {len(self.downloads)} downloads listed "
                      f"would hold more than {self.allowance} bytes (half the overall budget): this download "
                      "and the later ones are counted, not listed (raise --max-memory to list them)")
        self.unlisted += 1

    def index(self, scanner: FlowScanner, warnings: Sequence[str] = ()) -> CaptureIndex:
        base = super().index(scanner, warnings)
        return dataclasses.replace(base, unlisted=self.unlisted, seen_macs=tuple(sorted(self.macs)))


class _PhoneSink(_KeptSink):
    """One phone's replay: its own downloads with their bytes, and of the cluster-wide names only
    the downloads a boot of that phone can be served from (module rules, "Bounded")."""

    def __init__(self, mac: str) -> None:
        super().__init__()
        self.mac = mac
        self.own: list[Download] = []
        self.starts: list[int] = []  # the ranks of the phone's requests: the only places a boot can start
        self.addresses: set[str] = set()  # the phone's client addresses
        self.other_addresses: set[str] = set()  # other phones' (at most MAX_MACS)
        self.servers: set[str] = set()  # the addresses it asked for its own names
        self.macs: set[str] = set()
        # (segment start, server address, name, client or None for "any client") ->
        # [rank of the first ok, first ok, rank of the last, last] (ranks: (order, arrival))
        self.shared: dict[tuple[int, str, str, Endpoint | None], list[Any]] = {}
        self.client_slots = 0
        self.client_slots_full = False
        self.seq = 0
        self.not_kept = 0  # the phone's requests not kept: beyond the records' allowance (module rules)

    def request(self, name: str, client: Endpoint, server: Endpoint, start: float, order: int) -> None:
        if mac_of(name) == self.mac:
            if self.not_kept or not self._room(RECORD_COST, name, server):
                self.not_kept += 1
                return
            bisect.insort(self.starts, order)
            self.addresses.add(client[0])
            self.servers.add(server[0])

    def _room(self, cost: int, name: str, server: Endpoint) -> bool:
        """Whether a record of ``cost`` fits the allowance (module rules, "Bounded"); when it does not,
        nothing more is kept for the phone and what was is let go: it will not be replayed (on a part of
        its requests it would decide on files it never lacked), with a warning."""
        if self.records + cost <= self.allowance:
            self.records += cost
            return True
        requests = len(self.starts)
        self.warn(f"{name!r} from {host_port(*server)}, capture offset {self.offset()}: the records of "
                  f"phone {self.mac}'s {counted(requests, 'request')} and of the cluster-wide downloads of "
                  f"its boots would hold more than {self.allowance} bytes (half the overall budget): the "
                  "phone is not replayed (raise --max-memory)")
        for i in range(len(self.own)):
            self.kept.release(self.own, i)
        for slot in self.shared.values():
            self.kept.release(slot, 1)
            self.kept.release(slot, 3)
        self.own, self.shared, self.starts, self.records = [], {}, [], 0
        self.not_kept = requests  # those before, counted with this one and the later ones by request()
        return False

    def want_data(self, name: str) -> bool:
        mac = mac_of(name)
        return mac is None or mac == self.mac

    def add(self, d: Download) -> None:
        mac = d.mac
        if mac == self.mac:
            if self.not_kept:
                return  # the phone is not replayed (its request was counted)
            self.own.append(d)
            self.kept.hold(self.own, len(self.own) - 1)
            return
        if mac is not None:
            if len(self.macs) < MAX_MACS:
                self.macs.add(mac)
            if len(self.other_addresses) < MAX_MACS:
                self.other_addresses.add(d.client[0])
            return
        i = bisect.bisect_right(self.starts, d.order) - 1
        if i < 0 or d.server[0] not in self.servers:
            return  # before the phone's first request, or from a server it never asked: in no boot's window
        seg = self.starts[i]
        anyone = self.shared.get((seg, d.server[0], d.name, None))
        if d.data is not None and anyone is not None:  # the same cluster-wide file by many phones: one copy
            same = next((e.data for e in (anyone[1], anyone[3]) if e is not None and e.data == d.data), None)
            if same is not None:
                d = dataclasses.replace(d, data=same)
        self.seq += 1
        rank = (d.order, self.seq)
        keys: list[Endpoint | None] = [None]
        if d.client[0] in self.addresses:
            if self.client_slots < MAX_CLIENT_SLOTS:
                keys.append(d.client)
            elif not self.client_slots_full:
                self.client_slots_full = True  # beyond: served as from any client of the window
        for client in keys:
            key = (seg, d.server[0], d.name, client)
            if key not in self.shared:
                if not self._room(SLOT_COST, d.name, d.server):
                    return  # the phone is not replayed (not_kept counts its requests)
                if client is not None:
                    self.client_slots += 1
            slot = self.shared.setdefault(key, [None] * 4)
            if d.ok and d.data is not None and (slot[0] is None or rank < slot[0]):
                self._put(slot, 1, rank, d)
            if slot[2] is None or rank > slot[2]:
                self._put(slot, 3, rank, d)

    def _put(self, slot: list[Any], i: int, rank: tuple[int, int], d: Download) -> None:
        self.kept.release(slot, i)
        slot[i - 1], slot[i] = rank, d
        self.kept.hold(slot, i)

    def index(self, scanner: FlowScanner, warnings: Sequence[str] = ()) -> CaptureIndex:
        kept: dict[int, tuple[tuple[int, int], Download]] = {}
        for slot in self.shared.values():
            for rank, d in ((slot[0], slot[1]), (slot[2], slot[3])):
                if d is not None:
                    kept[id(d)] = (rank, d)
        shared = [d for _rank, d in sorted(kept.values(), key=lambda e: e[0])]
        ordered = sorted([*self.own, *shared], key=lambda d: d.order)
        macs = self.macs | ({self.mac} if self.own else set())
        notes = list(warnings)
        if self.client_slots_full:
            notes.append(f"more than {MAX_CLIENT_SLOTS} client endpoints on the phone's address(es) "
                         "downloaded cluster-wide names in its boot windows: the later ones count as "
                         "from any client (not as the phone's own connection)")
        if self.not_kept:
            macs.add(self.mac)
        return CaptureIndex(downloads=tuple(ordered), packets=scanner.packets, skipped=scanner.skipped,
                            seen_macs=tuple(sorted(macs)), warnings=tuple(notes),
                            snaplen_cut=scanner.snaplen_cut, other_addresses=frozenset(self.other_addresses),
                            not_kept={self.mac: self.not_kept} if self.not_kept else {},
                            tls_ports=frozenset(scanner.tls_ports))


def phone_sink(mac: str | None) -> _KeepAll | _ListSink | _PhoneSink:
    """Where a scan's downloads go: one phone's (``mac``) or, with None, the listing of every phone."""
    return _ListSink(MAX_LISTED) if mac is None else _PhoneSink(mac)


# --------------------------------------------------------------------------- library functions
def _scan(packets: Iterable[PcapPacket], sink: Any, limits: Limits) -> FlowScanner:
    scanner = FlowScanner(sink, limits=limits)
    for pkt in packets:
        scanner.feed(pkt)
    scanner.close()
    return scanner


def tftp_downloads(packets: Iterable[PcapPacket], *, max_file: int = MAX_FILE) -> tuple[list[Download], int]:
    """TFTP read transfers in ``packets`` (see module rules); ``(downloads, skipped datagrams)``."""
    sink = _KeepAll()
    scanner = _scan((p for p in packets if p.proto == "udp"), sink, Limits(max_file=max_file))
    return sorted(sink.downloads, key=lambda d: d.order), scanner.skipped


def http_downloads(packets: Iterable[PcapPacket], *, max_file: int = MAX_FILE,
                   max_stream: int = MAX_STREAM) -> list[Download]:
    """HTTP GET/HEAD exchanges in the TCP packets of ``packets`` (see module rules), in capture order of
    their requests."""
    sink = _KeepAll()
    _scan((p for p in packets if p.proto == "tcp"), sink, Limits(max_file=max_file, max_stream=max_stream))
    return sorted(sink.downloads, key=lambda d: d.order)


# --------------------------------------------------------------------------- index
@dataclass(frozen=True, kw_only=True)
class CaptureIndex:
    """The downloads of a capture kept by its scan, in capture order of their requests (module rules)."""

    downloads: tuple[Download, ...]
    packets: int
    skipped: int = 0
    unlisted: int = 0  # downloads beyond MAX_LISTED (``--list``): counted, not kept
    seen_macs: tuple[str, ...] = ()  # phones seen, also those whose downloads were not kept
    warnings: tuple[str, ...] = ()
    #: packets the capture holds in part (cut by its snaplen: their payloads taken as missing)
    snaplen_cut: int = 0
    #: client addresses of other phones than the replayed one (a replay of one phone only)
    other_addresses: frozenset[str] = frozenset()
    #: phone -> its requests not kept: beyond the records' allowance, it is not replayed (module rules)
    not_kept: dict[str, int] = dataclasses.field(default_factory=dict)
    #: the server ports of the capture's TLS connections, decrypted or not (module rules, "Offline
    #: decisions": a CAPF session the capture holds)
    tls_ports: frozenset[int] = frozenset()

    def not_replayed(self, mac: str) -> str | None:
        """Why the phone cannot be replayed from this index (None: it can)."""
        n = self.not_kept.get(mac)
        if not n:
            return None
        return (f"its downloads were not all kept: the records of its {counted(n, 'request')} would hold "
                "more than half of --max-memory, beside the cluster-wide downloads of its boots (raise "
                "--max-memory)")

    def macs(self) -> list[str]:
        return sorted(set(self._by_mac) | set(self.seen_macs))

    def of_mac(self, mac: str) -> list[Download]:
        return list(self._by_mac.get(mac, ()))

    def shared(self) -> list[Download]:
        """Downloads of cluster-wide names (no MAC in the name)."""
        return [d for d in self.downloads if d.mac is None]

    def shared_of(self, server: str) -> tuple[list[int], list[Download]]:
        """The cluster-wide downloads from ``server`` (address) and their ranks, in capture order."""
        return self._shared_by_server.get(server, ([], []))

    @functools.cached_property
    def _by_mac(self) -> dict[str, list[Download]]:
        out: dict[str, list[Download]] = {}
        for d in self.downloads:
            mac = d.mac
            if mac is not None:
                out.setdefault(mac, []).append(d)
        return out

    @functools.cached_property
    def _shared_by_server(self) -> dict[str, tuple[list[int], list[Download]]]:
        out: dict[str, tuple[list[int], list[Download]]] = {}
        for d in sorted(self.downloads, key=lambda d: d.order):  # the rank lists are sorted
            if d.mac is None:
                ranks, downloads = out.setdefault(d.server[0], ([], []))
                ranks.append(d.order)
                downloads.append(d)
        return out


def index_packets(packets: Iterable[PcapPacket], *, max_file: int = MAX_FILE) -> CaptureIndex:
    """Every download of ``packets``, with its bytes."""
    sink = _KeepAll()
    return sink.index(_scan(packets, sink, Limits(max_file=max_file)))


def index_capture(path: str | Path, *, max_file: int = MAX_FILE) -> CaptureIndex:
    """Read a pcap (DecodeError naming the offset when malformed) and index its downloads."""
    return index_packets(read_pcap(path), max_file=max_file)


# --------------------------------------------------------------------------- boots
#: ``(name, the boot's client endpoints) -> candidates``: the cluster-wide downloads of ``name`` in a
#: boot's window, in capture order, as many as :class:`ReplayFetcher` needs to answer as it would from
#: the whole window (``replay --all``: the same clients' first complete one and last one, any client's)
SharedLookup = Callable[[str, frozenset[Endpoint]], list[Download]]


@dataclass(frozen=True, kw_only=True)
class ReplayBoot:
    """One boot of a phone as seen in the capture: its own downloads and the cluster-wide ones offered."""

    mac: str
    server: str
    start: float
    end: float
    own: tuple[Download, ...]
    shared: tuple[Download, ...]
    order: int = 0  # rank of its first request in capture order: where its window starts
    #: where cluster-wide names are looked up instead of ``shared`` (``replay --all``)
    shared_lookup: SharedLookup | None = dataclasses.field(default=None, compare=False, repr=False)
    #: with ``shared_lookup``: the ranks of the phone's requests for cluster-wide names in the window
    #: (module rules, "TVS questions"; ``shared`` holds them otherwise)
    requests: tuple[int, ...] = dataclasses.field(default=(), compare=False, repr=False)


def boot_groups(own: list[Download], mac: str) -> list[list[Download]]:
    """A phone's own downloads (capture order) split into boots (module rules)."""
    if not own:
        return []
    names = {d.name for d in own}
    first = next((n for n in (f"CTLSEP{mac}.tlv", f"ITLSEP{mac}.tlv") if n in names), own[0].name)
    itl = f"ITLSEP{mac}.tlv"
    # a boot's start is followed by the ITL request when the phone asks for it (module rules)
    then = itl if first == f"CTLSEP{mac}.tlv" and itl in names else None
    groups: list[list[Download]] = []
    prev: str | None = None
    # the capture opens with a run of retries of ``first`` (a secure-mode phone without a CTL tries four
    # times, spec §G.9): one boot, not the run's earlier fetches as a boot of their own (module rules)
    opening_run = own[0].name == first
    for i, d in enumerate(own):
        opening_run = opening_run and d.name == first
        if not groups or (d.name == first and not opening_run and _starts_boot(own, i, first, prev, then)):
            groups.append([])
        groups[-1].append(d)
        prev = d.name
    return groups


def _starts_boot(own: list[Download], i: int, first: str, prev: str | None, then: str | None) -> bool:
    """Whether ``own[i]`` (a request for ``first``) starts a boot (module rules): no fetch of ``first``
    follows it, and if it ends a run of them (retries), a request for another name comes next; that name
    is ``then`` (the ITL a boot asks for next) when given: another one (the config retrieved again after
    CAPF, spec §G.12.4) follows the boot's §G.9 retries."""
    if i > 0 and _fallback(own[i - 1], own[i]):
        return False  # the TFTP half of a fetch that began over HTTP
    end = i + 1 if i + 1 < len(own) and _fallback(own[i], own[i + 1]) else i
    nxt = own[end + 1].name if end + 1 < len(own) else None
    if nxt is not None and then is not None and nxt not in (first, then):
        return False  # §G.9 retries, then the config again: the same boot
    return nxt != first and (prev != first or nxt is not None)


def _fallback(a: Download, b: Download) -> bool:
    """``b`` is ``a``'s TFTP fallback: the same name over TFTP right after HTTP (one fetch, §H.1)."""
    return a.name == b.name and a.protocol == "http" and b.protocol == "tftp"


def boot_count(index: CaptureIndex, mac: str) -> int:
    """How many boots of the phone the capture shows (:func:`boots_of` without building them)."""
    return len(boot_groups(index.of_mac(mac), mac))


def boots_of(index: CaptureIndex, mac: str) -> list[ReplayBoot]:
    """Split a phone's downloads into boots (see module rules)."""
    groups = boot_groups(index.of_mac(mac), mac)
    boots: list[ReplayBoot] = []
    for i, g in enumerate(groups):
        first = g[0].order
        stop = groups[i + 1][0].order if i + 1 < len(groups) else None
        server = g[0].server[0]
        ranks, downloads = index.shared_of(server)
        upto = bisect.bisect_left(ranks, stop) if stop is not None else len(ranks)
        shared = tuple(downloads[bisect.bisect_left(ranks, first):upto])
        end = max([d.end for d in g] + [d.end for d in shared])
        boots.append(ReplayBoot(mac=mac, server=server, start=g[0].start, end=end, own=tuple(g),
                                shared=shared, order=first))
    return boots


class ReplayFetcher:
    """A :class:`~phoneemu.net.fetch.Fetcher` answering with one captured boot's outcomes; ``addresses``:
    the boot's client addresses no other phone uses (its requests for cluster-wide names are those from
    them, or from a client endpoint of its own requests: module rules, "TVS questions")."""

    def __init__(self, boot: ReplayBoot, *, addresses: frozenset[str] = frozenset()) -> None:
        self._own: dict[str, list[list[Download]]] = {}
        prev: str | None = None
        for d in boot.own:
            groups = self._own.setdefault(d.name, [])
            if prev == d.name:
                groups[-1].append(d)
            else:
                groups.append([d])
            prev = d.name
        self._clients = frozenset(d.client for d in boot.own)
        self._lookup = boot.shared_lookup
        self._shared: dict[str, list[Download]] = {}
        for d in boot.shared:
            self._shared.setdefault(d.name, []).append(d)
        self.served: list[tuple[str, str]] = []  # (name, what was answered)
        self.mac = boot.mac
        #: what the boot asked for that the capture holds in part (module rules, "Held in part")
        self.not_captured: list[str] = []
        theirs = (d.order for d in boot.shared if d.client in self._clients or d.client[0] in addresses)
        self._ranks = sorted({*(d.order for d in boot.own), *theirs, *boot.requests})
        self._rank_set = frozenset(self._ranks)
        #: the rank of the latest of the phone's captured requests the boot has been answered with so far
        self.reached = float(boot.order)
        self.signers = LabSigners()  # whose files it served: a lab's or not (phone.lab_signers)

    def span(self, stop: float) -> tuple[float, float]:
        """The ranks between which the boot's TVS question of now was asked in the capture (module rules,
        "TVS questions"): from the latest of the phone's requests answered so far to its next request
        (``stop``, the window's end, when none follows)."""
        i = bisect.bisect_right(self._ranks, self.reached)
        return self.reached, float(self._ranks[i]) if i < len(self._ranks) else stop

    def _reach(self, served: Iterable[Download]) -> None:
        """The phone's requests among ``served`` (the downloads a fetch is answered from) are behind it."""
        self.reached = max([self.reached, *(d.order for d in served if d.order in self._rank_set)])

    def _pick(self, name: str) -> tuple[list[Download], str]:
        queue = self._own.get(name)
        if queue:
            group = queue.pop(0) if len(queue) > 1 else queue[0]
            return group, ""
        cands = self._shared.get(name, []) if self._lookup is None else self._lookup(name, self._clients)
        mine = [d for d in cands if d.client in self._clients]
        if mine:
            return mine, " (cluster-wide name, same client endpoint)"
        if cands:
            return cands, " (cluster-wide name, from this boot's window)"
        return [], ""

    async def fetch(self, name: str) -> bytes:
        group, note = self._pick(name)
        if not group:
            if mac_of(name) == self.mac:
                self.not_captured.append(name)
            self.served.append((name, NOT_IN_CAPTURE))
            raise TransportError("not requested in the capture", kind="not-found", code=1, path=name)
        at = next((i for i, d in enumerate(group) if d.ok and d.data is not None), None)
        ok = group[at] if at is not None else None
        # its own: the run of requests up to the one answered with (module rules, "TVS questions")
        self._reach((group if at is None else group[:at + 1]) if not note else [ok or group[-1]])
        if ok is not None and ok.data is not None:
            self.signers.saw(ok.data, name)
            self.served.append((name, f"{len(ok.data)} bytes via {ok.protocol}{note}"))
            return ok.data
        last = group[-1]
        if last.detail.endswith(CAPTURE_END) or SNAPLEN_CUT in last.detail:
            self.not_captured.append(name)
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

    #: names this boot asked for that the capture holds in part (:attr:`ReplayFetcher.not_captured`)
    not_captured: tuple[str, ...] = ()
    #: the phone's SIP registrations of the capture after this boot, checked against the rules
    #: (:class:`phoneemu.scenario.replay_sip.SipCheck`)
    sip: tuple[Any, ...] = ()
    #: whether the files the boot was served and the installed lists are a lab's (False: a cluster that is
    #: not one, the ways out name no lab command; None: no signed file to tell; phone.lab_signers)
    signed_by_lab: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"server": self.boot.server, "start": self.boot.start,
                "served": [{"name": n, "answer": a} for n, a in self.served],
                **({"not_captured": list(self.not_captured)} if self.not_captured else {}),
                "signed_by_lab": self.signed_by_lab,
                "report": self.report.as_dict(),
                **({"sip": [c.as_dict() for c in self.sip]} if self.sip else {})}


#: what the offline TVS says with no certificate to vouch for (:func:`offline_tvs`); ``predict`` tells a
#: lockout that rests on it by these words in the deciding reason
#: (:func:`phoneemu.scenario.predict.rests_on_offline_tvs`): one text, written here only
TVS_UNAVAILABLE_OFFLINE = "TVS unavailable offline"


def offline_capf(tls_ports: Collection[int]) -> Any:
    """The replayed phone's :class:`~phoneemu.phone.boot.CapfRunner` (module rules, "Offline decisions"): it
    never reaches a CAPF server, saying :data:`CAPF_NOT_REPLAYED` when ``tls_ports`` (the server ports of the
    capture's TLS connections) hold the server's port, else :data:`CAPF_UNAVAILABLE_OFFLINE`."""

    async def no_capf(server: Any, *_a: Any, **_k: Any) -> Any:
        port = getattr(server, "port", None)
        if port in tls_ports:
            where = host_port(server.host, port)
            raise TransportError(f"{CAPF_NOT_REPLAYED} (a TLS connection to port {port}, that of the "
                                 f"config's CAPF server {where}); the replayed phone's LSC stays as it was",
                                 kind="unreachable")
        raise TransportError(CAPF_UNAVAILABLE_OFFLINE, kind="unreachable")
    return no_capf


def offline_tvs(certificates: Sequence[Any], roles: frozenset[int]) -> Any:
    """A :class:`~phoneemu.phone.boot.TvsAsker` vouching for ``certificates`` (see module rules)."""
    from phoneemu.crypto.certs import cert_der, dn_key, dn_text
    from phoneemu.phone.store import TvsAnswer, TvsStatus

    # the issuer as the lab TVS compares it (dn_key: any RDN order, spec §A.7, §B.4)
    known = {(dn_key(dn_text(c.issuer)), c.serial_number): cert_der(c) for c in certificates}

    async def ask(_servers: Any, key: Any, **_kw: Any) -> Any:
        if not certificates:
            raise TransportError(f"{TVS_UNAVAILABLE_OFFLINE} (no --tvs-cert for it to vouch for)",
                                 kind="unreachable")
        der = known.get((dn_key(key.issuer), int.from_bytes(key.serial, "big")))
        return TvsAnswer(cert_der=der, roles=roles) if der is not None else TvsStatus.NOT_FOUND
    return ask


def no_tvs_answer(servers: Sequence[Any], why: str, *, kind: str) -> TransportError:
    """The phone's TVS client's failure when no server answered (spec §E.1,
    :data:`~phoneemu.net.tvs_client.NO_TVS_ANSWER`): ``why`` said of each of ``servers`` (the config's) in
    the order they are tried — ``no TVS server answered: 10.0.0.5:2445: why; ...``, as ``boot`` and
    ``predict`` say it; ``why`` alone when the config names none."""
    from phoneemu.net.tvs_client import NO_TVS_ANSWER, server_order

    order = server_order(servers)
    if not order:
        return TransportError(why, kind=kind)
    return TransportError(NO_TVS_ANSWER + "; ".join(f"{host_port(h, p)}: {why}" for h, p in order), kind=kind)


def servers_named(ask: Any) -> Any:
    """``ask`` (a :class:`~phoneemu.phone.boot.TvsAsker`) whose failure names the servers (module rules):
    one that names none (the offline TVS's) is said of each server, :func:`no_tvs_answer`."""
    from phoneemu.net.tvs_client import NO_TVS_ANSWER

    async def named(servers: Any, key: Any, **kw: Any) -> Any:
        try:
            return await ask(servers, key, **kw)
        except TransportError as exc:
            if exc.message.startswith(NO_TVS_ANSWER):
                raise
            raise no_tvs_answer(servers, exc.message, kind=exc.kind) from exc
    return named


async def replay_phone(index: CaptureIndex, mac: str, **options: Any) -> list[ReplayResult]:
    """Boot a fresh phone offline once per captured boot of ``mac`` (see module rules); ``options``
    as :func:`replay_boots`."""
    from phoneemu.formats.config import normalise_mac

    mac = normalise_mac(mac)
    why = index.not_replayed(mac)
    if why is not None:
        raise PhoneEmuError(f"phone {mac} is not replayed: {why}", path="max-memory")
    boots = boots_of(index, mac)
    if not boots:
        cut = "" if not index.snaplen_cut else (
            f"; {index.snaplen_cut} packets were cut by the capture's snaplen, and a request cut there is "
            "not read: capture with tcpdump -s 0")
        raise PhoneEmuError(f"no download of phone {mac} in the capture (macs: "
                            f"{', '.join(index.macs()) or 'none'}){cut}", path="mac")
    # other phones' addresses: the scan's of one phone, or those of their downloads in a whole index
    others = {d.client[0] for d in index.downloads if d.mac is not None and d.mac != mac}
    options.setdefault("shared_addresses", index.other_addresses | others)
    options.setdefault("tls_ports", index.tls_ports)
    return await replay_boots(boots, mac, **options)


async def replay_boots(boots: Sequence[ReplayBoot], mac: str, *, profile: str = "cp-8861",
                       now: int | None = None, image_signers: Sequence[Any] = (),
                       tvs_certs: Sequence[Any] = (),
                       tvs_roles: frozenset[int] = frozenset({0, 2}),
                       tvs_capture: Any = None, installed: Any = None, keys_from: Path | None = None,
                       notes: list[str] | None = None, export: Path | None = None,
                       sip_capture: Sequence[Any] = (), shared_addresses: frozenset[str] = frozenset(),
                       https_capture: Any = None, tls_ports: Collection[int] = frozenset(),
                       each: Callable[[ReplayResult], None] | None = None) -> list[ReplayResult]:
    """Boot a fresh phone ``mac`` offline once per boot of ``boots`` (one phone's, in order; module
    rules); with ``tvs_capture`` (:class:`phoneemu.scenario.replay_tvs.TvsCapture`) TVS answers as it
    did in the capture; ``installed`` (:class:`phoneemu.scenario.predict.Installed`) is what the phone
    holds before the first boot (else nothing: a phone out of the box); ``keys_from``: a phone's flash
    whose MIC, LSC and manual key it holds (read only: captured encrypted configs are decrypted as that
    phone would), what could not be used added to ``notes``; ``export``: a folder the phone's flash is
    written into after its last boot (what it holds then: trust lists, config, keys; ``predict
    --fleet-flash`` reads such folders); ``sip_capture``: the capture's SIP connections
    (:class:`phoneemu.scenario.replay_sip.CapturedSip`), each checked after the boot it follows
    (``shared_addresses``: client addresses other phones use too, which name no phone); ``https_capture``
    (:class:`phoneemu.scenario.replay_https_config.HttpsConfigCapture`): the config asked over HTTPS is
    answered from the capture (None: not asked, as an offline boot without a way to 6971); ``tls_ports``:
    the server ports of the capture's TLS connections (:attr:`CaptureIndex.tls_ports`: a CAPF session the
    capture holds is said not replayed, :func:`offline_capf`); ``each``: every
    result is handed to it as soon as its boot is done and none is kept (the list returned is empty: a
    capture of tens of thousands of boots of one phone does not hold their reports at once)."""
    from phoneemu.phone.phone import Phone
    from phoneemu.phone.profile import get_profile
    from phoneemu.scenario.replay_target import captured_target

    current = {"t": int(now if now is not None else boots[0].start)}

    async def no_sleep(_s: float) -> None:
        return None

    window = {"start": 0.0, "stop": 0.0}  # ranks in capture order (module rules)
    clients: dict[str, frozenset[str]] = {"own": frozenset()}  # the boot's addresses no other phone uses
    current_fetcher: list[ReplayFetcher] = []  # the boot's, while it runs
    tvs = servers_named(offline_tvs(tvs_certs, tvs_roles))
    if tvs_capture is not None:
        tvs = tvs_capture.asker(lambda: current_fetcher[0].span(window["stop"]),  # "TVS questions"
                                fallback=tvs if tvs_certs else None, clients=lambda: clients["own"])
    phone = Phone(mac=mac, profile=get_profile(profile), flash=None, clock=lambda: current["t"],
                  tvs=tvs, capf=offline_capf(tls_ports), sleep=no_sleep,
                  image_signers=tuple(image_signers), capf_retries=0)
    if installed is not None:
        installed.restore(phone)
    held_by_lab = installed.signed_by_lab() if installed is not None else None
    if keys_from is not None:
        from phoneemu.scenario.predict import hold_flash_keys

        held = hold_flash_keys(phone, keys_from, phone.profile)
        if notes is not None:
            notes += held
    results: list[ReplayResult] = []
    last: BootReport | None = None
    https = https_capture.replayer() if https_capture is not None else None  # each exchange used once
    for i, b in enumerate(boots):
        window["start"] = b.order
        window["stop"] = boots[i + 1].order if i + 1 < len(boots) else float("inf")
        clients["own"] = frozenset(d.client[0] for d in b.own) - shared_addresses
        if now is None:
            current["t"] = max(current["t"], int(b.start))  # never back (module rules)
        fetcher = ReplayFetcher(b, addresses=clients["own"])
        current_fetcher[:] = [fetcher]
        way: dict[str, Any] = {}  # the config over HTTPS (§H.1), answered from the capture
        if https is not None:
            way["https_config"] = https.getter(mac=mac, server=b.server,
                                               window=(window["start"], window["stop"]),
                                               span=lambda: current_fetcher[0].span(window["stop"]),
                                               clients=clients["own"], served=fetcher.served)
        report = capf_not_deciding(await phone.boot(captured_target(b), fetcher=fetcher, **way))
        sip: tuple[Any, ...] = ()
        if sip_capture:
            from phoneemu.scenario.replay_sip import check_sip

            after = [c for c in sip_capture if window["start"] <= c.order < window["stop"]]
            addresses = {d.client[0] for d in b.own} - shared_addresses
            sip = tuple(check_sip(phone.store, phone.profile, mac, addresses, after))
        result = ReplayResult(boot=b, served=tuple(fetcher.served), report=report,
                              not_captured=tuple(dict.fromkeys(fetcher.not_captured)), sip=sip,
                              signed_by_lab=joined(fetcher.signers.verdict, held_by_lab))
        last = report
        if each is not None:
            each(result)
        else:
            results.append(result)
    if export is not None:
        from phoneemu.phone.flash import Flash

        # atomic, not fsynced (our convention, as fleet boot --flash): a throw-away copy of a state
        phone.save_to(Flash(export, profile=phone.profile, durable=False), last)
    return results
