"""``phoneemu replay --all``: every phone of a capture replayed from one pass over it, in bounded memory.

A boot storm captured at a site (a SPAN port, ``fleet boot --capture``) answers "which phones accepted,
which locked out, and why" for all of them at once, offline.

Rules (*our conventions*; the flows, caps and budget are :mod:`phoneemu.scenario._capture_flows`'s, the
boots, windows and answers :mod:`phoneemu.scenario.replay`'s):

* **One pass.** The capture is read once, packet by packet, as for one phone. Every download's bytes
  go to a spool: an unnamed temporary file (gone when the replay ends, even if the process is
  killed), identical bytes written once (SHA-256), at most :data:`MAX_SPOOL` bytes in all (beyond, a
  download's bytes are not kept: it is reported ``too-large``, with a warning). Memory holds each
  download's description (name, endpoints, times, outcome, where its bytes are): they count against
  the overall budget (``--max-memory``) at :data:`DESCRIPTION_COST` bytes each (a cluster-wide one
  :data:`REQUEST_RANK_COST` more: its place in the ranks of the phones' requests) and, with the TVS
  exchanges kept, may take half of it (the open flows have the other half); a download beyond that is
  not kept (counted, with a warning naming the budget), and a phone with a download of its own not
  kept is not replayed (it says why). At most :data:`~phoneemu.scenario.replay.MAX_MACS` phones are
  replayed; a phone beyond them is still counted and listed as not replayed (it says why), its MAC
  remembered at :data:`MAC_COST` bytes against the same half of the budget (its downloads are not
  kept); when even that does not fit, its downloads are counted (``phones_uncounted_downloads``: the
  phone total is then a lower bound). Every download is counted: kept, not kept for the budget, or of
  a phone beyond the maximum (``FleetCapture.downloads_seen`` is their sum).
* **Each phone as ``replay --mac`` would.** The same boots (split at its ``CTLSEP``/``ITLSEP``
  requests), the same windows, the same answer to a cluster-wide name: of that name's downloads from
  the boot's server inside the window, those of a client endpoint the boot itself used, else any
  client's; the first complete one, else the last one; the same span for each TVS question
  (:mod:`phoneemu.scenario.replay`, "TVS questions": the boot's requests for cluster-wide names to its
  server, from a client endpoint of its own requests or an address no other phone uses, part it too).
  A fresh phone per MAC, in MAC order, holding what ``installed`` says (the same for every phone) or its
  own flash (``fleet_flash/<MAC>``).
* **TVS** (``--keylog``): the exchanges of every phone are kept, each counted at
  :data:`EXCHANGE_COST` against the half of the budget above (an answer's certificate and a query's
  issuer held once for all exchanges that carry them), at most :data:`MAX_FLEET_EXCHANGES`; beyond,
  counted, with a warning; each phone's queries are answered from its own, as for one phone. So are
  the connections whose client sent nothing after the handshake (a TVS server the phone refused,
  :mod:`phoneemu.scenario.replay_tvs`), each counted at :data:`PRESENTED_COST` (the certificate held
  once for all of them) within the same half and the same maximum, beyond: counted, with a warning.
  So are the HTTPS config downloads (TCP 6971, :mod:`phoneemu.scenario.replay_https_config`), each at
  :data:`EXCHANGE_COST` and the bytes of its answer (identical answers once); each phone's config asked over
  HTTPS is answered from its own. Without a key log they cannot be read: one warning names how many.
* **SIP**: every phone's SIP connections are kept (:mod:`phoneemu.scenario.replay_sip`, at most
  :data:`~phoneemu.scenario.replay_sip.MAX_CONNECTIONS`) and each is checked as for one phone: by the
  device it names, else by its client address when only that phone fetched files from it.
* **The result** of a phone is its last boot's (the state the capture leaves it in); every boot is in
  its record.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import heapq
import os
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from phoneemu.errors import PhoneEmuError
from phoneemu.files import phone_config_in
from phoneemu.net.tls_decrypt import KeyLog
from phoneemu.protocols import tvs
from phoneemu.scenario._capture_flows import Download, Endpoint, FlowScanner, Limits
from phoneemu.scenario.replay import (
    MAX_MACS,
    ReplayBoot,
    ReplayResult,
    boot_groups,
    replay_boots,
)
from phoneemu.scenario.replay_https_config import CapturedHttpsConfig, unread_warning
from phoneemu.scenario.replay_sip import MAX_CONNECTIONS, MAX_MEDIA_FLOWS, CapturedSip, SipCollector
from phoneemu.scenario.replay_tvs import (
    MAX_CERTIFICATES,
    ScanWarnings,
    TvsCapture,
    TvsCollector,
    feed_capture,
    no_tvs,
)
from phoneemu.values import host_port
from phoneemu.words import counted

__all__ = ["DESCRIPTION_COST", "EXCHANGE_COST", "MAC_COST", "MAX_FLEET_EXCHANGES", "MAX_SPOOL",
           "PRESENTED_COST", "REQUEST_RANK_COST", "FleetCapture", "PhoneReplay", "beyond_max_macs",
           "replay_fleet", "scan_fleet"]

MAX_SPOOL = 4 << 30
"""Bytes of downloaded files the spool holds on disk (identical files once)."""
DESCRIPTION_COST = 640
"""What one kept download's description counts against the overall budget (a Download without its
bytes, its spool reference and its list slots, as CPython holds them: measured 600 bytes in a storm
capture, its addresses and endpoints held once)."""
REQUEST_RANK_COST = 32
"""What one cluster-wide download counts beside its description: its place in the lists of the phones'
requests per server and client address (a rank and a client endpoint, both references to what its
description holds, with the lists' spare room: measured ~17 bytes). Counted for every cluster-wide
download, from a phone's address or not (known only once the capture is read)."""
EXCHANGE_COST = 1536
"""What one kept TVS exchange counts against the overall budget (its request and answer as CPython
holds them, the answer's certificate shared with the exchanges that carry the same one)."""
PRESENTED_COST = 384
"""What one kept connection without a request counts against the overall budget (its record, client
endpoint, rank and time as CPython holds them: measured ~230 bytes; the server's endpoint and the
certificate shared)."""
MAC_COST = 128
"""What remembering one phone beyond :data:`~phoneemu.scenario.replay.MAX_MACS` counts against the
overall budget (its MAC as a 48-bit int in a set, and its slot of the sorted list at the end, as
CPython holds them: about 100 bytes)."""
MAX_FLEET_EXCHANGES = 1_000_000
"""TVS exchanges kept for ``--all`` at most, whatever the budget (each phone's queries are answered
from its own)."""
T = TypeVar("T")
NOT_KEPT = ("its downloads were not all kept: the downloads' descriptions filled half of --max-memory "
            "before them (raise --max-memory)")
"""Why a phone of the capture is not replayed when a download of its own came after the allowance was
full (replayed on what was kept, it would decide on files it never lacked)."""


def beyond_max_macs() -> str:
    """Why a phone of the capture beyond :data:`~phoneemu.scenario.replay.MAX_MACS` is not replayed."""
    return (f"beyond the first {MAX_MACS} phones of the capture (at most {MAX_MACS} are replayed): its "
            "downloads are counted, not replayed")


_PROGRESS_EVERY = 4096  # packets between two progress calls of scan_fleet
_READ_CACHE = 16 << 20  # bytes of spool reads remembered (a cluster-wide file served to every phone is
# read once); a file larger than a quarter of it is read each time
_SAME_KEPT = 65_536  # distinct values held once (endpoints, addresses, certificates) at most


class _Spool:
    """Downloaded bytes on disk, identical bytes once: ``put(data) -> (offset, size)``, ``get(ref)``."""

    def __init__(self, limit: int = MAX_SPOOL) -> None:
        self._file = tempfile.TemporaryFile(prefix="phoneemu-replay-")  # noqa: SIM115 (closed by close())
        self._fd = self._file.fileno()
        self._size = 0
        self.limit = limit
        self._refs: dict[bytes, tuple[int, int]] = {}
        self._cache: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._cached = 0  # bytes in _cache

    def put(self, data: bytes) -> tuple[int, int] | None:
        """Where ``data`` is; None when the spool is full."""
        digest = hashlib.sha256(data).digest()
        ref = self._refs.get(digest)
        if ref is not None:
            return ref
        if self._size + len(data) > self.limit:
            return None
        os.pwrite(self._fd, data, self._size)
        ref = self._refs[digest] = (self._size, len(data))
        self._size += len(data)
        return ref

    def get(self, ref: tuple[int, int]) -> bytes:
        data = self._cache.get(ref)
        if data is not None:
            self._cache.move_to_end(ref)
            return data
        offset, size = ref
        data = os.pread(self._fd, size, offset)
        if len(data) != size:
            raise PhoneEmuError(f"replay spool: {size} bytes at {offset} read back as {len(data)} "
                                "(the temporary file was changed)", path="spool")
        if size <= _READ_CACHE // 4:
            self._cache[ref] = data
            self._cached += size
            while self._cached > _READ_CACHE:
                _ref, old = self._cache.popitem(last=False)
                self._cached -= len(old)
        return data

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True, slots=True)
class _Kept:
    """A download without its bytes, and where they are in the spool (None: not kept)."""

    download: Download
    ref: tuple[int, int] | None
    seq: int  # arrival: orders downloads of one rank


class _Allowance:
    """Half the overall budget, drawn on by the downloads' descriptions and the TVS exchanges kept
    (module rules, "One pass"): the open flows have the other half."""

    def __init__(self, budget: int) -> None:
        self.limit = budget // 2
        self.used = 0

    def take(self, cost: int) -> bool:
        if self.used + cost > self.limit:
            return False
        self.used += cost
        return True


class _Once:
    """``once(value)``: ``value``, or an equal one kept before (addresses, endpoints, outcomes,
    certificates: one copy for all), at most :data:`_SAME_KEPT` distinct values."""

    def __init__(self) -> None:
        self._same: dict[Any, Any] = {}

    def __call__(self, value: T) -> T:
        if len(self._same) >= _SAME_KEPT:
            return value
        kept: T = self._same.setdefault(value, value)
        return kept


class _FleetTvs(TvsCollector):
    """Every phone's TVS exchanges, while the allowance lasts; the certificates of their answers and the
    issuers of their queries kept once each."""

    def __init__(self, secrets: KeyLog, allowance: _Allowance, warn: Callable[[str], None]) -> None:
        super().__init__(secrets, limit=MAX_FLEET_EXCHANGES)
        self.allowance, self.warn = allowance, warn
        self.not_kept = 0
        self.presented_not_kept = 0
        self._once = _Once()
        self.https.admit = self._admit_https
        self._https_answers: set[int] = set()  # the answers counted (identical ones are one object)

    def _admit_https(self, ex: CapturedHttpsConfig) -> bool:
        """An HTTPS config exchange is kept while the allowance lasts (module rules, "TVS"); an answer the
        collector already holds (the same object) is counted once."""
        new = ex.response is not None and id(ex.response) not in self._https_answers
        answer = ex.response if new and ex.response is not None else b""
        if not self.allowance.take(EXCHANGE_COST + len(answer)):
            if not self.https.unlisted:
                self.warn(f"HTTPS config {ex.name} from {host_port(*ex.server)}: the exchanges and downloads "
                          "kept would hold more than half the overall budget (--max-memory): this download "
                          "and the later ones are not kept (those phones' configs over HTTPS are answered as "
                          "not captured)")
            return False
        if answer:
            self._https_answers.add(id(ex.response))
        return True

    def connection(self, **kw: Any) -> None:
        before, shown = len(self.found), len(self.presented)
        super().connection(**kw)
        for i in range(len(self.presented) - 1, shown - 1, -1):
            c = self.presented[i]
            if not self.allowance.take(PRESENTED_COST):
                del self.presented[i]
                self.unlisted_presented += 1
                self.presented_not_kept += 1
                if self.presented_not_kept == 1:
                    self.warn(f"TLS {c.client[0]} -> {host_port(*c.server)}: the TVS exchanges and downloads "
                              "kept would hold more than half the overall budget (--max-memory): this "
                              "connection without a request and the later ones are not kept")
                continue
            self.presented[i] = dataclasses.replace(c, server=self._once(c.server))  # clients differ
        for i in range(len(self.found) - 1, before - 1, -1):
            ex = self.found[i]
            if not self.allowance.take(EXCHANGE_COST):
                del self.found[i]
                self.not_kept += 1
                self.unlisted += 1  # decrypted, not kept
                if self.not_kept == 1:
                    self.warn(f"TVS {ex.request.device_name}: the TVS exchanges and downloads kept would "
                              "hold more than half the overall budget (--max-memory): this exchange and the "
                              "later ones are not kept (those phones' queries are answered as not captured)")
                continue
            request, response = ex.request, ex.response
            if isinstance(request, tvs.QueryRequest):
                request = dataclasses.replace(request, issuer=self._once(request.issuer))
            if response is not None and response.certificate:
                response = dataclasses.replace(response, certificate=self._once(response.certificate))
            self.found[i] = dataclasses.replace(ex, request=request, response=response)


class _FleetSink:
    """Every download, its bytes spooled (module rules, "One pass"); a
    :class:`~phoneemu.scenario._capture_flows.DownloadSink`."""

    def __init__(self, spool: _Spool, allowance: _Allowance, warn: Callable[[str], None]) -> None:
        self.spool, self.warn, self.allowance = spool, warn, allowance
        self.kept: list[_Kept] = []
        self.not_kept = 0
        self.spool_full = 0
        self.macs: set[str] = set()
        self.dropped_macs: set[str] = set()  # phones with a download not kept (a subset of macs)
        self.too_many_macs = 0  # downloads of phones beyond MAX_MACS (counted, not kept)
        self.beyond: set[int] = set()  # those phones' MACs, each at MAC_COST against the allowance
        self.uncounted = 0  # downloads of such phones not remembered (the allowance was full)
        self.seen = 0  # every download
        self._once = _Once()

    @property
    def held(self) -> int:
        """The descriptions and TVS exchanges kept, as the budget counts them (the allowance used)."""
        return self.allowance.used

    def drop(self, why: str) -> Download | None:
        return None  # the allowance is half the budget: never more than half held, nothing to give up

    def request(self, name: str, client: Endpoint, server: Endpoint, start: float, order: int) -> None:
        return None

    def want_data(self, name: str) -> bool:
        return True

    def add(self, d: Download) -> None:
        self.seen += 1
        mac = d.mac
        if mac is not None and mac not in self.macs:
            if len(self.macs) >= MAX_MACS:
                self.too_many_macs += 1
                number = int(mac, 16)
                if number not in self.beyond:
                    if self.allowance.take(MAC_COST):
                        self.beyond.add(number)
                    else:
                        self.uncounted += 1
                return
            self.macs.add(mac)
        ranked = REQUEST_RANK_COST if mac is None else 0  # a cluster-wide one: its place in _asked_from
        if not self.allowance.take(DESCRIPTION_COST + ranked):
            if mac is not None:
                self.dropped_macs.add(mac)
            self.not_kept += 1
            if self.not_kept == 1:
                self.warn(f"{d.protocol} {d.name!r}: the downloads' descriptions and TVS exchanges kept "
                          "would hold more than half the overall budget (--max-memory); this download and "
                          "the later ones are not replayed (counted)")
            return
        ref = None
        if d.data is not None:
            ref = self.spool.put(d.data)
            if ref is None:
                self.spool_full += 1
                if self.spool_full == 1:
                    self.warn(f"{d.protocol} {d.name!r}: the files downloaded hold more than "
                              f"{self.spool.limit} distinct bytes (the spool's limit): this one and later "
                              "new files are reported too-large")
                d = dataclasses.replace(d, outcome="too-large",
                                        detail=f"{len(d.data)} bytes received; the replay spool is full")
        bare = dataclasses.replace(d, data=None, client=self._endpoint(d.client),
                                   server=self._endpoint(d.server), outcome=self._once(d.outcome))
        self.kept.append(_Kept(bare, ref, len(self.kept)))

    def _endpoint(self, e: Endpoint) -> Endpoint:
        return self._once((self._once(e[0]), e[1]))


class _Candidates:
    """The cluster-wide downloads of one (server, name) or (server, name, client), in capture order,
    with where the next complete one is: the window queries of :meth:`FleetCapture.shared_lookup`."""

    __slots__ = ("items", "next_ok", "ranks")

    def __init__(self, items: list[_Kept]) -> None:
        self.items = items
        self.ranks = [k.download.order for k in items]
        nxt = len(items)
        self.next_ok = [0] * len(items)
        for i in range(len(items) - 1, -1, -1):
            if items[i].ref is not None and items[i].download.ok:
                nxt = i
            self.next_ok[i] = nxt

    def window(self, start: float, stop: float) -> tuple[_Kept | None, _Kept | None]:
        """The first complete download and the last download ranked in ``[start, stop)``."""
        i, j = bisect.bisect_left(self.ranks, start), bisect.bisect_left(self.ranks, stop)
        if i >= j:
            return None, None
        ok = self.next_ok[i]
        return (self.items[ok] if ok < j else None), self.items[j - 1]


@dataclass(frozen=True, kw_only=True)
class PhoneReplay:
    """One phone of ``replay --all``: its boots' results, or why it was not replayed."""

    mac: str
    profile: str
    #: its boots' results, each reduced by ``replay_fleet(boot=...)`` when given
    results: tuple[Any, ...] = ()
    notes: tuple[str, ...] = ()
    skipped: str | None = None


class FleetCapture:
    """What one pass over a capture kept for replaying every phone (module rules); :meth:`close` removes
    the spool."""

    def __init__(self, sink: _FleetSink, scanner: FlowScanner, tvs: TvsCapture,
                 warnings: Sequence[str], sip: Sequence[CapturedSip] = ()) -> None:
        self._spool = sink.spool
        self.packets, self.skipped = scanner.packets, scanner.skipped
        self.tvs = tvs
        #: the server ports of the capture's TLS connections (a CAPF session it holds is said not replayed,
        #: :func:`phoneemu.scenario.replay.offline_capf`)
        self.tls_ports = frozenset(scanner.tls_ports)
        self.warnings = (*warnings, *_sink_notes(sink))
        #: downloads kept for the replay; every download of the capture is ``downloads_seen``, the
        #: others ``downloads_not_kept`` (for the budget, of phones beyond MAX_MACS)
        self.downloads = len(sink.kept)
        self.downloads_seen = sink.seen
        self.downloads_not_kept = {"budget": sink.not_kept, "beyond_max_macs": sink.too_many_macs}
        #: downloads of phones beyond MAX_MACS not remembered: more phones than counted (a lower bound)
        self.phones_uncounted_downloads = sink.uncounted
        #: phones beyond MAX_MACS, as 48-bit numbers in order (counted, not replayed)
        self.beyond = sorted(sink.beyond)
        sink.beyond.clear()
        self.max_macs = MAX_MACS  # phones replayed at most
        own: dict[str, list[_Kept]] = {}
        shared: dict[tuple[str, str], list[_Kept]] = {}
        by_client: dict[tuple[str, str, Endpoint], list[_Kept]] = {}
        ordered = sorted(sink.kept, key=lambda k: (k.download.order, k.seq))
        sink.kept.clear()
        # a boot's own clients are the endpoints of its own downloads: only those look up by client
        phones_clients = {k.download.client for k in ordered if k.download.mac is not None}
        for k in ordered:
            d = k.download
            mac = d.mac
            if mac is not None:
                own.setdefault(mac, []).append(k)
            else:
                shared.setdefault((d.server[0], d.name), []).append(k)
                if d.client in phones_clients:
                    by_client.setdefault((d.server[0], d.name, d.client), []).append(k)
        self._own = own
        #: phones seen in the capture with a download of their own not kept (beyond the allowance)
        self.not_kept = sorted(sink.dropped_macs | (sink.macs - own.keys()))
        self._shared = {key: _Candidates(v) for key, v in shared.items()}
        self._by_client = {key: _Candidates(v) for key, v in by_client.items()}
        macs_at: dict[str, set[str]] = {}  # client address -> the phones that fetched their files from it
        for mac, kept in own.items():
            for k in kept:
                macs_at.setdefault(k.download.client[0], set()).add(mac)
        #: addresses several phones fetched from: a connection from one names no phone (replay_sip)
        self.shared_addresses = frozenset(a for a, m in macs_at.items() if len(m) > 1)
        #: per server and phone address, the cluster-wide requests from it: ranks and client endpoints, in
        #: capture order (REQUEST_RANK_COST each; built in that order: no sort, nothing more held meanwhile)
        self._asked_from: dict[tuple[str, str], tuple[list[int], list[Endpoint]]] = {}
        for k in ordered:  # from a client endpoint of a phone's own requests, or an address one phone alone
            d = k.download
            if d.mac is None and (d.client in phones_clients or len(macs_at.get(d.client[0], ())) == 1):
                ranks, endpoints = self._asked_from.setdefault((d.server[0], d.client[0]), ([], []))
                ranks.append(d.order)
                endpoints.append(d.client)
        self._sip_of: dict[str | None, list[CapturedSip]] = {}
        for c in sip:  # capture order; one that names no device goes to the phone whose address it is
            owners = {c.mac} if c.mac is not None else macs_at.get(c.client[0], set())
            if len(owners) == 1:
                self._sip_of.setdefault(next(iter(owners)), []).append(c)

    def macs(self) -> list[str]:
        return sorted(self._own)

    def beyond_macs(self) -> Iterator[str]:
        """The phones beyond :data:`~phoneemu.scenario.replay.MAX_MACS`, in order (as the MACs of
        :meth:`macs` are written: 12 upper-case hex digits)."""
        return (f"{n:012X}" for n in self.beyond)

    def sip_of(self, mac: str) -> list[CapturedSip]:
        """The SIP connections that may be the phone's (:func:`~phoneemu.scenario.replay_sip.check_sip`
        decides), in capture order."""
        return self._sip_of.get(mac, [])

    def _download(self, k: _Kept) -> Download:
        if k.ref is None:
            return k.download
        return dataclasses.replace(k.download, data=self._spool.get(k.ref))

    def boots(self, mac: str) -> list[ReplayBoot]:
        """The phone's boots, as :func:`~phoneemu.scenario.replay.boots_of` splits them, each looking
        cluster-wide names up in its window."""
        groups = boot_groups([self._download(k) for k in self._own.get(mac, [])], mac)
        boots: list[ReplayBoot] = []
        for i, g in enumerate(groups):
            start, stop = g[0].order, groups[i + 1][0].order if i + 1 < len(groups) else float("inf")
            server = g[0].server[0]
            boots.append(ReplayBoot(mac=mac, server=server, start=g[0].start, end=max(d.end for d in g),
                                    own=tuple(g), shared=(), order=start,
                                    shared_lookup=self.shared_lookup(server, start, stop),
                                    requests=self._requests(g, server, start, stop)))
        return boots

    def _requests(self, own: list[Download], server: str, start: float, stop: float) -> tuple[int, ...]:
        """The ranks of a boot's requests for cluster-wide names to its ``server`` in ``[start, stop)`` (as
        :class:`~phoneemu.scenario.replay.ReplayFetcher` takes them from a boot's ``shared``): from a client
        endpoint of its own requests, or from an address of them no other phone uses."""
        endpoints = {d.client for d in own}
        out: list[int] = []
        for address in {e[0] for e in endpoints}:
            ranks, froms = self._asked_from.get((server, address), ([], []))
            for i in range(bisect.bisect_left(ranks, start), bisect.bisect_left(ranks, stop)):
                if froms[i] in endpoints or address not in self.shared_addresses:
                    out.append(ranks[i])
        return tuple(sorted(out))

    def shared_lookup(self, server: str, start: float, stop: float) -> Callable[[str, frozenset[Endpoint]],
                                                                                list[Download]]:
        """The window's candidates for a cluster-wide name (module rules, "Each phone")."""
        def lookup(name: str, clients: frozenset[Endpoint]) -> list[Download]:
            picked: dict[int, _Kept] = {}
            for client in clients:
                cands = self._by_client.get((server, name, client))
                if cands is not None:
                    for k in cands.window(start, stop):
                        if k is not None:
                            picked[k.seq] = k
            everyone = self._shared.get((server, name))
            if not picked and everyone is not None:
                for k in everyone.window(start, stop):
                    if k is not None:
                        picked[k.seq] = k
            if picked:  # the same clients' candidates alone, when any (as ReplayFetcher picks)
                mine = sorted(picked.values(), key=lambda k: (k.download.order, k.seq))
                ok = next((k for k in mine if k.ref is not None and k.download.ok), None)
                last = mine[-1]
                mine = [k for k in mine if k is ok or k is last]
                return [self._download(k) for k in mine]
            return []
        return lookup

    def close(self) -> None:
        self._spool.close()


def _sink_notes(sink: _FleetSink) -> list[str]:
    """What the scan says of the downloads it did not keep or count (module rules, "Bounded"), counted in
    number: ``1 download not replayed: its description ...``, ``2 downloads ... their descriptions``."""
    notes = []
    if n := sink.not_kept:
        its, it = ("its description", "it") if n == 1 else ("their descriptions", "them")
        notes.append(f"{counted(n, 'download')} not replayed: {its} would not fit half the overall budget "
                     f"beside the {len(sink.kept)} kept (raise --max-memory to keep {it})")
    if sink.spool_full:
        notes.append(f"{counted(sink.spool_full, 'download')} reported too-large: the spool's "
                     f"{sink.spool.limit} bytes were full")
    if sink.too_many_macs:
        notes.append(f"{counted(sink.too_many_macs, 'download')} of {counted(len(sink.beyond), 'phone')} "
                     f"beyond the first {MAX_MACS} not replayed (counted)")
    if n := sink.uncounted:
        of, whose, those = ("a phone", "MAC", "that phone is") if n == 1 else \
            ("phones", "MACs", "those phones are")
        notes.append(f"{counted(n, 'download')} of {of} beyond the first {MAX_MACS} whose {whose} did not "
                     f"fit half the overall budget: {those} not counted (raise --max-memory)")
    return notes


def _scan_notes(collector: _FleetTvs | None, sips: SipCollector) -> list[str]:
    """What the scan says of the TVS exchanges, TLS and SIP connections and media flows it did not keep
    (module rules, "Bounded"), counted in number (``1 SIP connection``, ``2 SIP connections``)."""
    notes = []
    if collector is not None and (n := collector.unlisted):
        those = "that phone's queries are" if n == 1 else "those phones' queries are"
        notes.append(f"{counted(n, 'TVS exchange')} not kept (beyond {MAX_FLEET_EXCHANGES}, or half the "
                     f"overall budget: raise --max-memory): {those} answered as not captured")
    if collector is not None and (n := collector.unlisted_presented):
        those = "that phone" if n == 1 else "those phones"
        notes.append(f"{counted(n, 'TLS connection')} without a request not kept (beyond "
                     f"{MAX_FLEET_EXCHANGES}, {MAX_CERTIFICATES} distinct server certificates, or half the "
                     f"overall budget): a TVS server {those} refused is not known")
    if sips.unlisted:
        notes.append(f"{counted(sips.unlisted, 'SIP connection')} not checked (beyond {MAX_CONNECTIONS})")
    if sips.flows_not_kept:
        notes.append(f"{counted(sips.flows_not_kept, 'UDP flow')} not kept for the calls' media check "
                     f"(beyond {MAX_MEDIA_FLOWS})")
    return notes


def scan_fleet(path: str | Path, *, secrets: KeyLog | None = None, limits: Limits | None = None,
               spool_limit: int = MAX_SPOOL, progress: Callable[[int], None] | None = None) -> FleetCapture:
    """Read a capture once keeping what replaying every phone needs (module rules); DecodeError naming
    the offset for a malformed capture (a capture cut inside a packet: a warning, the packets before it
    read). ``progress(offset)`` is told how far the reading is, every few thousand packets."""
    limits = limits or Limits()
    warnings = ScanWarnings()
    spool = _Spool(spool_limit)
    try:
        allowance = _Allowance(limits.max_memory)
        sink = _FleetSink(spool, allowance, warnings)
        collector = _FleetTvs(secrets, allowance, warnings) if secrets is not None else None
        sips = SipCollector(secrets)
        scanner = FlowScanner(sink, tls=collector, limits=limits, warn=warnings, sip=sips, media=sips)
        feed_capture(path, scanner, warnings, progress=progress, every=_PROGRESS_EVERY)
        sips.finish()
    except BaseException:
        spool.close()
        raise
    notes = [*warnings.lines(), *_scan_notes(collector, sips)]
    tvs = collector.result(scanner.tls_connections) if collector is not None else no_tvs(scanner)
    if tvs.https.unread:
        notes.append(unread_warning(tvs.https.unread))
    return FleetCapture(sink, scanner, tvs, notes, sip=sips.found)


async def replay_fleet(capture: FleetCapture, *, reduce: Callable[[PhoneReplay], T],
                       profile: str = "cp-8861", installed: Any = None, config_dir: Path | None = None,
                       fleet_flash: Path | None = None, export_flash: Path | None = None,
                       models: Any = None, use_keylog: bool = False,
                       progress: Callable[[int, int], None] | None = None,
                       boot: Callable[[ReplayResult], Any] | None = None,
                       each: Callable[[T], None] | None = None, **options: Any) -> list[T]:
    """Replay every phone of ``capture`` (module rules, "Each phone"), each reduced by ``reduce`` as soon
    as it is done (a phone's boot reports are not all kept: 40,000 of them would not fit); ``options``
    as :func:`~phoneemu.scenario.replay.replay_boots` (``tvs_certs``, ``tvs_roles``, ``now``,
    ``image_signers``); ``use_keylog``: TVS answers from the capture's exchanges; ``fleet_flash``: a
    folder of phones' flashes (``fleet boot --flash``), ``<MAC>`` holding a phone's installed files,
    profile and keys (phones without one hold ``installed``); ``config_dir``: each phone (without a
    flash) holds its config from there, as ``fleet boot --installed-config-dir`` takes it;
    ``export_flash``: each replayed phone's flash after its last boot is written to ``<MAC>`` there;
    ``models`` (:class:`~phoneemu.scenario.phone_models.PhoneModels`): each phone's model, where known
    (a phone's flash says it first); ``boot``: each boot's result is reduced by it as soon as the boot is
    done, and ``PhoneReplay.results`` holds what it returns (a phone of tens of thousands of boots does
    not hold their reports at once). Phones beyond :data:`~phoneemu.scenario.replay.MAX_MACS` are
    reduced too, not replayed (:func:`beyond_max_macs` says why), in MAC order with the others.
    ``each``: every reduced phone is given to it as soon as it is done and none is kept (the list
    returned is empty: 100,000 phones' records would not fit)."""
    from phoneemu.crypto import signatures

    unkept = set(capture.not_kept)
    replayed = sorted(unkept.union(capture.macs()))
    total = len(replayed) + len(capture.beyond)
    out: list[T] = []
    put: Callable[[T], None] = out.append if each is None else each
    why_beyond = beyond_max_macs()
    # identical signature checks (one captured ITL against one installed generation) are made once
    old_cache = signatures.set_verify_cache(signatures.VerifyCache())
    try:
        # (MAC, beyond MAX_MACS), in MAC order
        in_order = heapq.merge(((m, False) for m in replayed), ((m, True) for m in capture.beyond_macs()))
        for n, (mac, beyond) in enumerate(in_order):
            if progress is not None and n:
                progress(n, total)
            if mac in unkept:
                put(reduce(PhoneReplay(mac=mac, profile=profile, skipped=NOT_KEPT)))
                continue
            if beyond:
                put(reduce(PhoneReplay(mac=mac, profile=profile, skipped=why_beyond)))
                continue
            own = profile if models is None else models.profile_of.get(mac, profile)
            noted = () if models is None or mac not in models.notes_of else (models.notes_of[mac],)
            put(reduce(await _replay_one(capture, mac, profile=own, noted=noted, installed=installed,
                                         config_dir=config_dir, fleet_flash=fleet_flash,
                                         use_keylog=use_keylog, boot=boot,
                                         export=export_flash / mac if export_flash else None,
                                         **options)))
    finally:
        signatures.set_verify_cache(old_cache)
    if progress is not None and total:
        progress(total, total)
    return out


async def _replay_one(capture: FleetCapture, mac: str, *, profile: str, noted: tuple[str, ...],
                      installed: Any, config_dir: Path | None, fleet_flash: Path | None, use_keylog: bool,
                      boot: Callable[[ReplayResult], Any] | None = None, **options: Any) -> PhoneReplay:
    notes: list[str] = list(noted)
    keys_from = None
    if config_dir is not None:
        installed = _with_config(installed, config_dir, mac, profile, notes)
    if fleet_flash is not None:
        flash = fleet_flash / mac
        if flash.is_dir():
            try:
                profile, installed = _from_flash(flash, mac, profile, notes)
            except PhoneEmuError as exc:
                return PhoneReplay(mac=mac, profile=profile, skipped=f"{flash}: {exc.message}")
            except OSError as exc:  # unreadable (permissions, I/O): this phone skipped, the rest go on
                where = exc.filename or flash
                return PhoneReplay(mac=mac, profile=profile,
                                   skipped=f"{where}: cannot read the flash: {exc.strerror or exc}")
            keys_from = flash
        else:
            notes.append(f"no flash {flash}: holds what the options say")
    boots = capture.boots(mac)
    reduced: list[Any] = []
    results: list[Any] = await replay_boots(
        boots, mac, profile=profile, installed=installed, keys_from=keys_from, notes=notes,
        tvs_capture=capture.tvs if use_keylog else None, sip_capture=capture.sip_of(mac),
        shared_addresses=capture.shared_addresses, https_capture=capture.tvs.https,
        tls_ports=capture.tls_ports, each=None if boot is None else (lambda r: reduced.append(boot(r))),
        **options)
    return PhoneReplay(mac=mac, profile=profile, results=tuple(results if boot is None else reduced),
                       notes=tuple(notes))


def _with_config(installed: Any, config_dir: Path, mac: str, profile: str, notes: list[str]) -> Any:
    """``installed`` holding the phone's config from ``config_dir`` (``SEP<MAC>.cnf.xml.sgn``, else
    ``.cnf.xml``); none there, or one that cannot be used: as it was, with a note saying so."""
    from phoneemu.formats.config import config_file_name
    from phoneemu.phone.profile import get_profile
    from phoneemu.scenario.predict import Installed, load_installed

    found = phone_config_in(config_dir, mac)
    if found is None:
        notes.append(f"no {config_dir / config_file_name(mac, 'sgn')} (nor .cnf.xml): holds no config")
        return installed
    try:
        config = load_installed(limit=get_profile(profile).trust_list_limit, config=found,
                                config_option="installed-config-dir").config  # replay --all's folder
    except PhoneEmuError as exc:
        notes.append(f"{exc}: holds no config")
        return installed
    return dataclasses.replace(installed or Installed(), config=config)


def _from_flash(flash: Path, mac: str, profile: str, notes: list[str]) -> tuple[str, Any]:
    """The profile and installed files a phone's flash holds (PhoneEmuError when unusable): what its boot
    would load (:meth:`phoneemu.phone.flash.Flash.held_files`), as ``replay --flash`` and ``predict
    --fleet-flash`` take it — a file it would not load (above the limit, not parsing, a ``config.xml``
    its ``state.json`` does not vouch for) is left out, and named in ``notes``."""
    from phoneemu.phone.flash import Flash, not_loaded_notes
    from phoneemu.phone.phone import read_phone_file
    from phoneemu.phone.profile import get_profile
    from phoneemu.scenario.predict import load_installed

    ident = read_phone_file(flash)
    owner = ident.get("mac")
    if isinstance(owner, str) and owner.upper() != mac:
        raise PhoneEmuError(f"the flash is phone {owner}'s, not {mac}'s", path="fleet-flash")
    held_profile = ident.get("profile")
    if isinstance(held_profile, str):
        profile = held_profile
    prof = get_profile(profile)
    reader = Flash(flash, profile=prof)
    held = reader.held_files()
    notes += not_loaded_notes(flash, reader.problems)
    return profile, load_installed(limit=prof.trust_list_limit, itl=held["itl"], ctl=held["ctl"],
                                   config=held["config"])

