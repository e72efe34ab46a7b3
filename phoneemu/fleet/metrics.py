"""Fleet metrics: counts by outcome and deciding rule, latency percentiles, rate over time, peak RSS.

Rules (issue #6):

* Every boot of a fleet ends as one :class:`BootRecord`: the phone's MAC, its **outcome** (see
  :func:`outcome_of`), the rule that decided it (``BootReport.deciding.rule``, spec §G) and its latency
  (seconds from the start of that phone's boot to its report) and end time (seconds since the fleet
  started). Records are small (``__slots__``) so 40,000 of them stay a few MiB.
* :class:`FleetMetrics` aggregates records of one shard; shards' metrics are merged with
  :meth:`FleetMetrics.merge` (counts add up, latencies and end times are concatenated).
* Percentiles use the nearest-rank method on the sorted latencies (p50, p90, p99, max); an empty
  fleet reports ``None``. A phone never booted (rule ``not-booted``: its lab MIC, flash or manual key
  unusable) has no latency or end time: it is counted, not timed (was 0 ms in the percentiles, a boot
  at 0 s in the rate and ``--plot``); its record's ``latency_ms`` and ``end_s`` are null (were 0); its
  JUnit case's ``time`` stays 0.000 (the attribute a JUnit schema requires).
* "Rate" is boots finished per second — booted or failed, each boot that ended: overall (``boots / wall
  time``), and per one-second bucket of end times
  (:meth:`FleetMetrics.rate_series`) for the plot; ``sustained`` is the mean rate over the full
  buckets between the first and last that saw boots end (our convention: the seconds before the first
  boot ended, the ramp-up and tail seconds are dropped; a mean,
  not a median, so a storm whose boots end in bursts — CAPF enrolments recorded in groups — is not
  reported as 0/s when most seconds see none end). Each rate is rounded once, to 0.1/s, in
  :meth:`FleetMetrics.summary`, and that value is what the JSON, the text and ``--plot`` show
  (:func:`rate_text`; the text rounded the rounded value again, 77.5 printed 78, the plot 77).
* The summary's first line counts the phones asked for (``render(asked=...)``): booted, failed, not started
  (and why: interrupted, ``--max-time`` ...) and lost, which add up to them; a run in which no phone started
  says so (``40 phones: none started (interrupted)``, was ``0 phones: 0 booted, 0 failed in 0.00s``). The
  phones not started are named as runs of consecutive MACs (:func:`mac_runs`, :func:`runs_text`).
* A failed boot's record keeps the lists the phone holds (``held``: a CTL, the rollback ITL; two bits,
  a shared value): a fleet's lockouts are grouped by them where they choose other ways out
  (:func:`phoneemu.phone.ways_out.ways_group`: phones holding a CTL are not told the rollback ITL).
* Each record also keeps the boot's trust-list outcomes (``itl``, ``ctl``: installed, updated,
  unchanged, empty, rejected, absent — ``BootReport.trust``), counted as ``by_trust`` ("ITL updated":
  50): after a certificate change, which phones took the new list and which kept the old one.
* And how its CAPF session ended (``capf``: the rule of its last CAPF decision, §F), counted as
  ``by_capf`` ("F.6-lsc-installed": 1998, "F.6-capf-rejected": 2), so an enrolment storm is read here; the
  first few failures keep their reason. A CAPF operation the phone started that did not complete
  (:func:`phoneemu.phone.capf_outcome.capf_failed`; a record's ``capf_failed``) fails the run as a failed
  boot does, also for a phone whose config was accepted: the summary counts them (``capf_failed``; of the
  phones booted, ``booted_capf_failed``, said on its first line: ``2000 booted (2 of them CAPF failed)``),
  its JUnit case fails and ``fleet boot`` exits 1. Nothing pending, or an operation the phone did not
  start (waiting for an authentication string, no CAPF server named), is no failure.
* Failed boots and failed CAPF sessions are also grouped by what they have in common
  (:class:`~phoneemu.fleet.alike.Alike`: outcome, rule, reason, signer): the summary shows the most
  common kinds, each with its count and first MACs — one TVS outage is one line, not five copies.
* Downloads that failed in transport (:func:`failed_downloads`: a timeout, unreachable, refused, a TFTP
  error, a malformed or too large answer — not "file not found", normal for CTL files on a non-secure
  cluster, spec §C.6): each record keeps the first ``boot.FAILED_DOWNLOADS_KEPT`` (file, failure) its
  boot report lists (``BootReport.failed_downloads``); the summary counts the phones by file kind (CTL,
  ITL, config, other) and failure ("ITL timeout": 12) and how many of them booted anyway, on what they
  had — a network problem, not a cluster behaviour.
* TFTP requests (transfers started), the ones that needed a retransmission and the retransmissions
  (packets sent again) of a shard come from its client pool (``fleet.engine``: counted per transfer,
  nothing per packet) and add up over shards; each record keeps its boot's ``retransmits``.
* A fleet's records cross to the parent and wait there for ``--json``/``--junit`` on disk, not in
  memory (:class:`RecordSpool`: a JSON line each in an unnamed temporary file, 8 bytes a record held):
  40,000 records held as objects, then as one JSON document, cost the parent tens of MiB.
* Peak RSS comes from ``resource.getrusage`` (``ru_maxrss`` is KiB on Linux, bytes on macOS):
  :func:`peak_rss_mib` for this process, ``children=True`` for the largest finished child.
"""

from __future__ import annotations

import math
import resource
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

from phoneemu.fleet.alike import Alike
from phoneemu.phone.boot import FAILED_DOWNLOADS_KEPT, BootReport
from phoneemu.phone.capf_outcome import CAPF_FAILED, capf_failed
from phoneemu.phone.ways_out import (
    HeldLists,
    WaysGroup,
    placeholder_lines,
    ways_group,
    ways_out_doc,
    ways_out_text,
)
from phoneemu.spool import JsonLines
from phoneemu.words import counted

if TYPE_CHECKING:
    from phoneemu.phone.events import Decision

__all__ = [
    "FAILED_BY",
    "FAILED_DOWNLOADS_KEPT",
    "NOT_BOOTED",
    "OUTCOMES",
    "BootRecord",
    "FleetMetrics",
    "RecordSpool",
    "failed_downloads",
    "failure_text",
    "file_kind",
    "kind_lines",
    "mac_runs",
    "model_lines",
    "outcome_of",
    "peak_rss_mib",
    "percentile",
    "rate_text",
    "runs_text",
    "tally_lines",
    "transport_lines",
    "tvs_line",
    "tvs_unanswered",
]

#: The deciding rule of a phone the fleet could not make (its lab MIC, flash or manual key unusable)
NOT_BOOTED = "not-booted"

#: Every outcome a fleet boot can end with (our names; ``error`` = the boot raised, a bug or a crash).
OUTCOMES = ("ok", "locked-out", "config-rejected", "no-config", "error")


def outcome_of(report: BootReport) -> str:
    """``ok`` (config accepted), ``locked-out`` (§G.3.5), ``config-rejected`` or ``no-config``."""
    if report.ok:
        return "ok"
    if report.locked_out:
        return "locked-out"
    if report.config == "rejected":
        return "config-rejected"
    return "no-config"


#: the phones with a failed download the summary names by MAC
_TRANSPORT_MACS_KEPT = 5


def file_kind(name: str) -> str:
    """``CTL``, ``ITL``, ``config`` (``SEP<MAC>.cnf.xml`` and its signed/encrypted forms) or ``other``."""
    upper = name.upper()
    if upper.startswith("CTL"):
        return "CTL"
    if upper.startswith("ITL"):
        return "ITL"
    return "config" if ".CNF.XML" in upper else "other"


def failed_downloads(report: BootReport) -> tuple[tuple[str, str], ...]:
    """The boot's downloads that failed in transport, as (file, failure kind), in order, each pair once,
    at most :data:`~phoneemu.phone.boot.FAILED_DOWNLOADS_KEPT` (``BootReport.failed_downloads``, kept by
    the boot as each failed: not read back from a timeline that may be cut)."""
    return report.failed_downloads


#: the fields of a record's JSON that are left out when they say nothing (None; no file received;
#: answered), in their order
_OPTIONAL_FIELDS = ("tvs_unanswered", "itl", "ctl", "reason", "reason_code", "signer", "files_over", "capf",
                    "capf_reason",
                    "capf_failed", "answered", "profile", "kind", "held", "sip", "sip_reason", "sip_server",
                    "sip_passed_over", "media", "media_suite", "media_reason", "retransmits",
                    "failed_downloads")


@dataclass(frozen=True, kw_only=True, slots=True)
class BootRecord:
    """One phone boot of a fleet, reduced to what the summary needs."""

    mac: str
    outcome: str
    rule: str | None
    latency_s: float
    end_s: float
    tvs_used: bool = False
    #: why no TVS answered a phone that tried it (:func:`tvs_unanswered`): ``server-untrusted`` (it refused
    #: every TVS server, no QUERY sent) or ``unreachable``; None: one answered, or TVS not tried
    tvs_unanswered: str | None = None
    reason: str | None = None  # the deciding rule's reason, kept for failed boots only
    #: the deciding decision's reason code (``too-large``, ``unknown-signer``...), failed boots only: it
    #: chooses the ways out of some lockouts (:func:`phoneemu.phone.ways_out.ways_key`)
    reason_code: str | None = None
    itl: str | None = None  # this boot's ITL outcome (BootReport.trust["ITL"])
    ctl: str | None = None
    signer: str | None = None  # the deciding decision's file signer, kept for failed boots only
    over_http: int = 0  # files this boot received over HTTP 6970 (spec §H.1)
    over_tftp: int = 0  # ... over TFTP (a cp-8861's fallback when HTTP fails; older models' only way)
    #: ... over the HTTPS config download, TCP 6971 (§H.1: its config, when the phone's rules ask it there)
    over_https: int = 0
    #: the rule of this boot's last CAPF decision (F.6-lsc-installed, F.6-capf-rejected, F.1-...,
    #: F.7-...): how its CAPF session ended; None when the config asked for none
    capf: str | None = None
    capf_reason: str | None = None  # that decision's reason, kept when it was not accepted
    answered: bool = True  # some request of this boot got an answer from the cluster (BootReport.answered)
    profile: str | None = None  # the phone's model profile (a fleet of several models: FleetSpec.profiles)
    kind: str | None = None  # the deciding decision's kind of file (ITL, CTL, config ...), failed boots only
    #: the trust lists the phone holds after the boot (a CTL; the rollback ITL: ``BootReport.held``), failed
    #: boots only: they choose the ways out of some lockouts (:func:`phoneemu.phone.ways_out.ways_group`).
    #: One of four shared values (:meth:`HeldLists.of`): a slot, no object per record; None: not known
    held: HeldLists | None = None
    #: the rule of the SIP registration after the boot (FleetSpec.register, spec §G.13): G.13-registered,
    #: G.13-digest-rejected, ...; None when the phone did not register
    sip: str | None = None
    sip_reason: str | None = None  # that registration's reason, kept when it failed
    #: the CallManager it registered with, or tried last: "HOST:PORT over tcp|tls" (spec §H.5)
    sip_server: str | None = None
    #: the config's CallManagers it passed over first, each "HOST:PORT rule" (SipResult.passed_over)
    sip_passed_over: tuple[str, ...] | None = None
    #: the rule its call ended with (FleetSpec.call, spec §G.14): G.14-srtp, G.14-rtp-fallback, ...; None
    #: when it placed none (not registered, or no --call)
    media: str | None = None
    media_suite: str | None = None  # the SRTP suite of that call ("RTP" over RTP)
    media_reason: str | None = None  # that call's reason, kept when no media flowed
    retransmits: int = 0  # TFTP packets this boot sent again after a timeout (BootReport.retransmits)
    #: its downloads that failed in transport, (file, failure kind), at most FAILED_DOWNLOADS_KEPT
    #: (:func:`failed_downloads`); "file not found" is not one
    failed_downloads: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, report: BootReport, *, latency_s: float, end_s: float,
           profile: str | None = None) -> BootRecord:
        d = report.deciding
        outcome = outcome_of(report)
        reason = d.reason[:300] if d is not None and outcome != "ok" else None
        code = d.reason_code if d is not None and outcome != "ok" else None
        signer = d.signer[:300] if d is not None and d.signer and outcome != "ok" else None
        over = list(report.fetched_over.values())
        http, https = over.count("http"), over.count("https")
        capf = next((c for c in reversed(report.decisions) if c.kind == "capf"), None)
        return cls(mac=report.mac, outcome=outcome, rule=d.rule if d is not None else None,
                   latency_s=latency_s, end_s=end_s, tvs_used=report.tvs_used,
                   tvs_unanswered=tvs_unanswered(report.decisions) if report.tvs_used else None,
                   reason=reason, reason_code=code.value if code is not None else None,
                   itl=report.trust.get("ITL"), ctl=report.trust.get("CTL"), signer=signer,
                   over_http=http, over_tftp=len(over) - http - https, over_https=https,
                   capf=capf.rule if capf is not None else None,
                   capf_reason=capf.reason[:300] if capf is not None and not capf.accepted else None,
                   answered=report.answered, profile=profile,
                   kind=(d.kind or None) if d is not None and outcome != "ok" else None,
                   held=HeldLists.shared(report.held) if outcome != "ok" else None,
                   retransmits=report.retransmits, failed_downloads=failed_downloads(report))

    @property
    def capf_failed(self) -> bool:
        """Whether the phone started a CAPF operation that did not complete (module rules)."""
        return capf_failed(self.capf)

    @property
    def timed(self) -> bool:
        """Whether the phone booted, so its latency and end time are times (module rules: one never booted,
        rule ``not-booted``, has neither)."""
        return self.rule != NOT_BOOTED

    def as_dict(self) -> dict[str, Any]:
        """The record's JSON (``fleet boot --json``'s ``phones``, a shard's pipe); ``latency_ms`` and
        ``end_s`` null for a phone never booted (was 0: a boot of 0 ms at 0 s)."""
        timed = self.timed
        out: dict[str, Any] = {"mac": self.mac, "outcome": self.outcome, "rule": self.rule,
                               "latency_ms": round(self.latency_s * 1000.0, 3) if timed else None,
                               "end_s": round(self.end_s, 4) if timed else None, "tvs_used": self.tvs_used}
        shown = {"files_over": self._files_over(), "answered": None if self.answered else False,
                 "capf_failed": True if self.capf_failed else None,  # only when true (module rules)
                 "sip_passed_over": list(self.sip_passed_over) if self.sip_passed_over else None,
                 "retransmits": self.retransmits or None,
                 "held": self.held.as_json() if self.held is not None else None,
                 "failed_downloads": [{"file": f, "kind": file_kind(f), "failure": k}
                                      for f, k in self.failed_downloads] or None}
        for name in _OPTIONAL_FIELDS:  # each only when it says something
            value = shown[name] if name in shown else getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    def _files_over(self) -> dict[str, int] | None:
        """``files_over`` of the JSON: ``http`` and ``tftp`` counts, ``https`` too when a file came that way
        (§H.1, 6971: records of boots that asked none are as before); None when no file came."""
        if not (self.over_http or self.over_tftp or self.over_https):
            return None
        over = {"http": self.over_http, "tftp": self.over_tftp}
        return over | {"https": self.over_https} if self.over_https else over

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BootRecord:
        """The record :meth:`as_dict` gave (a shard's records cross its pipe this way); every field
        comes back (a phone never booted: no latency or end time, 0 as its record was made)."""
        over = d.get("files_over") or {}
        latency_ms, end_s = d["latency_ms"], d["end_s"]
        return cls(mac=d["mac"], outcome=d["outcome"], rule=d["rule"],
                   latency_s=latency_ms / 1000.0 if latency_ms is not None else 0.0,
                   end_s=end_s if end_s is not None else 0.0, tvs_used=d["tvs_used"],
                   tvs_unanswered=d.get("tvs_unanswered"), reason=d.get("reason"),
                   reason_code=d.get("reason_code"), itl=d.get("itl"),
                   ctl=d.get("ctl"), signer=d.get("signer"), over_http=int(over.get("http", 0)),
                   over_tftp=int(over.get("tftp", 0)), over_https=int(over.get("https", 0)),
                   capf=d.get("capf"), capf_reason=d.get("capf_reason"),
                   answered=bool(d.get("answered", True)), profile=d.get("profile"), kind=d.get("kind"),
                   held=HeldLists.from_json(d.get("held")),
                   sip=d.get("sip"), sip_reason=d.get("sip_reason"), sip_server=d.get("sip_server"),
                   sip_passed_over=tuple(d["sip_passed_over"]) if d.get("sip_passed_over") else None,
                   media=d.get("media"), media_suite=d.get("media_suite"), media_reason=d.get("media_reason"),
                   retransmits=int(d.get("retransmits", 0)),
                   failed_downloads=tuple((str(x["file"]), str(x["failure"]))
                                          for x in d.get("failed_downloads") or ()))


class RecordSpool(Sequence[BootRecord]):
    """A fleet's records on disk (module rules): each record, as its shard sends it, one JSON line
    (:meth:`BootRecord.as_dict`) in a :class:`~phoneemu.spool.JsonLines` (an unnamed 0600 temporary
    file, made at the first record); memory holds where each line starts. :meth:`keep` then orders the
    records shard by shard as given (a shard left out, one that did not finish, is dropped: its records
    went with it) and the spool reads back as a sequence of :class:`BootRecord`, a record at a time. A
    spool that cannot be written (``TMPDIR`` full) keeps no record and says why in ``unkept``: the run
    goes on, its summary is whole."""

    def __init__(self) -> None:
        self._lines = JsonLines("phoneemu-fleet-records-")
        self._starts: dict[int, array[int]] = {}  # each shard's lines, where each starts, in its order
        self._order = array("q")  # the kept lines' starts, in the order read back (keep)
        self.unkept: str | None = None  # why no record is kept (the spool failed), else None

    @property
    def holds_file(self) -> bool:
        """True while the records' temporary file is open (from the first record until :meth:`close`)."""
        return self._lines.is_open

    def add(self, shard: int, records: Iterable[BootRecord]) -> None:
        """Append ``records`` of ``shard`` (after those it sent before)."""
        if self.unkept is not None:
            return
        try:
            starts = self._lines.append(r.as_dict() for r in records)
        except OSError as exc:
            self.close()
            self.unkept = f"the records' temporary file in {JsonLines.folder()}: {exc.strerror or exc}"
            return
        self._starts.setdefault(shard, array("q")).extend(starts)

    def keep(self, shards: Iterable[int]) -> None:
        """Read back the records of ``shards``, in that order; the others are dropped."""
        order = array("q")
        for shard in shards:
            order.extend(self._starts.get(shard, ()))
        self._starts.clear()
        self._order = order

    def __len__(self) -> int:
        return len(self._order)

    @overload
    def __getitem__(self, index: int) -> BootRecord: ...

    @overload
    def __getitem__(self, index: slice) -> list[BootRecord]: ...

    def __getitem__(self, index: int | slice) -> BootRecord | list[BootRecord]:
        if isinstance(index, slice):
            return [self._read(at) for at in self._order[index]]
        return self._read(self._order[index])

    def __iter__(self) -> Iterator[BootRecord]:
        for at in self._order:
            yield self._read(at)

    def _read(self, at: int) -> BootRecord:
        return BootRecord.from_dict(self._lines.read(at))

    def close(self) -> None:
        """Drop the file (and every record)."""
        self._lines.close()
        self._order = array("q")
        self._starts.clear()


#: how a TVS decision that got no answer ends its rule (spec §E.7.2, §G.3.4, §G.4, §E.7.1), and why
_TVS_UNANSWERED = (("-tvs-server-untrusted", "server-untrusted"), ("-tvs-unreachable", "unreachable"))


def tvs_unanswered(decisions: Iterable[Decision]) -> str | None:
    """Why no TVS answered a boot that tried TVS (``BootReport.tvs_used``), from its decisions:
    ``server-untrusted`` when it refused the TVS servers (no QUERY sent; ``...-tvs-server-untrusted``),
    ``unreachable`` when none answered (``...-tvs-unreachable``); None when one answered (a TVS decision
    of another rule: vouched, unknown, wrong role) or no decision says (``fleet boot``'s ``TVS tried``
    line, ``boot``'s ``TVS used``)."""
    why: str | None = None
    for d in decisions:
        if "tvs" not in d.rule or "needs-tvs" in d.rule:
            continue
        said = next((w for end, w in _TVS_UNANSWERED if d.rule.endswith(end)), None)
        if said is None:
            return None  # answered
        if why is None or said == "server-untrusted":  # refused wins: no QUERY went out to it
            why = said
    return why


def tvs_line(tried: int, unanswered: Mapping[str, int]) -> str:
    """``TVS asked by 200 phones`` when each got an answer; else ``TVS tried by 200 phones: 0 answered, 150
    refused the server (no QUERY sent), 50 unreachable`` (was ``TVS asked by 200 phones`` when none was
    asked: every server refused before any QUERY)."""
    refused, unreachable = unanswered.get("server-untrusted", 0), unanswered.get("unreachable", 0)
    if not refused and not unreachable:
        return f"TVS asked by {counted(tried, 'phone')}"
    parts = [f"{tried - refused - unreachable} answered"]
    parts += [f"{refused} refused the server (no QUERY sent)"] if refused else []
    parts += [f"{unreachable} unreachable"] if unreachable else []
    return f"TVS tried by {counted(tried, 'phone')}: {', '.join(parts)}"


def rate_text(per_s: float) -> str:
    """A rate as the summary rounded it (to 0.1/s: :meth:`FleetMetrics.rate_shown`), written as is, with
    thousands separators: ``77.5``, ``1,204.0`` (module rules: one rounding, the JSON's value)."""
    return f"{per_s:,.1f}"


def mac_runs(macs: Iterable[int]) -> list[tuple[int, int]]:
    """``macs`` (in the order given) as runs of consecutive MACs, each (first, last)."""
    runs: list[tuple[int, int]] = []
    for mac in macs:
        if runs and mac == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], mac)
        else:
            runs.append((mac, mac))
    return runs


def runs_text(runs: Iterable[tuple[int, int]]) -> list[str]:
    """Each run of MACs as ``FIRST..LAST``, a run of one MAC as that MAC (12 hex digits)."""
    return [f"{a:012X}" if a == b else f"{a:012X}..{b:012X}" for a, b in runs]


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile ``q`` (0..100) of already sorted values; None when empty."""
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} outside 0..100")
    n = len(sorted_values)
    if n == 0:
        return None
    rank = max(1, math.ceil(q / 100.0 * n))
    return float(sorted_values[min(rank, n) - 1])


def _vm_hwm_kib() -> int | None:
    """``VmHWM`` of ``/proc/self/status`` (Linux): the peak RSS of this process's own address space."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f.read(16384).splitlines():
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def peak_rss_mib(*, children: bool = False) -> float:
    """Peak resident set size of this process (or of its largest finished child) in MiB.

    On Linux a process's own peak is ``VmHWM``: ``getrusage`` ``ru_maxrss`` survives ``exec``, so a
    ``spawn`` child (fork + exec) would report its parent's peak at the fork whenever that is larger
    (a shard started by a parent holding a 40,000-phone lab read 378 MiB, the parent's size).
    """
    if not children:
        hwm = _vm_hwm_kib()
        if hwm is not None:
            return hwm / 1024.0
    usage = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    scale = 1.0 if sys.platform == "darwin" else 1024.0  # macOS reports bytes, Linux KiB
    return usage.ru_maxrss * scale / (1024.0 * 1024.0)


_FAILURES_SHOWN = 5
#: what failures of one kind share (fleet.alike): the summary's lines, one per kind
FAILED_BY = ("outcome", "rule", "reason", "signer")


def _counts(counter: Mapping[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counter.items())


def model_lines(by_model: Mapping[str, Mapping[str, int]], *, which: str = "") -> list[str]:
    """``by model: cp-7962 locked-out 300; cp-8861 ok 700`` (profile -> outcome -> phones) when the
    phones are of several models, else nothing."""
    if len(by_model) < 2:
        return []
    return [f"by model{which}: " + "; ".join(f"{m} {_counts(c)}" for m, c in by_model.items())]


def tally_lines(s: Mapping[str, Any], *, outcome_head: str, which: str = "") -> list[str]:
    """A summary's counts of ``by_outcome``, ``by_rule`` and ``by_trust`` (the trust lists' outcomes),
    a line each (the rules one per line); ``which``: the boots counted (`` (last boot)``)."""
    lines = [f"{outcome_head}: {_counts(s['by_outcome'])}"]
    lines += model_lines(s.get("by_model") or {}, which=which)
    lines.append(f"by deciding rule{which}:")
    lines += [f"  {v:>8}  {k}" for k, v in s["by_rule"].items()]
    if s["by_trust"]:
        lines.append(f"trust lists{which}: {_counts(s['by_trust'])}")
    return lines


def failure_text(kind: dict[str, Any]) -> str:
    """One kind of failed boot (:data:`FAILED_BY`) as the summary words it."""
    why = f": {kind['reason']}" if kind.get("reason") else ""
    why += f" (signer {kind['signer']})" if kind.get("signer") else ""
    return f"{kind['outcome']} ({kind['rule']}){why}"


def kind_lines(kinds: list[dict[str, Any]], head: str, text: Callable[[dict[str, Any]], str],
               total: int, *, every_record: str = "--json FILE") -> list[str]:
    """The :data:`_FAILURES_SHOWN` most common kinds of failure, one line each (a single phone by its
    MAC; more by their count, then their first MACs), then how many failed otherwise (each phone's
    record: the option ``every_record``)."""
    lines: list[str] = []
    shown = 0
    for kind in kinds[:_FAILURES_SHOWN]:
        n, macs = kind["count"], kind["macs"]
        if n == 1:
            lines.append(f"  {head}: {macs[0]} {text(kind).replace('{mac}', macs[0])}")
        else:
            more = f" and {n - len(macs)} more" if n > len(macs) else ""
            lines.append(f"  {head}: {n} phones {text(kind)}")
            lines.append(f"      {', '.join(macs)}{more}")
        shown += n
    if total > shown:
        lines.append(f"  ... and {total - shown} more {head} otherwise (every phone's record: "
                     f"{every_record})")
    return lines
"""Failed boots the console summary names one by one; the count of the rest follows them."""


def transport_lines(failures: Mapping[str, Any], tftp: Mapping[str, Any]) -> list[str]:
    """``transport failures: ITL timeout 12, config timeout 3 (13 phones, 12 booted on what they had)``
    and its first MACs, when a download failed in transport; ``TFTP: 52,311 requests, 1,204 retransmitted
    (2.3 %), 1,890 retransmissions`` when TFTP was used."""
    lines: list[str] = []
    n = failures["phones"]
    if n:
        booted = failures["booted"]
        what = "what it had" if booted == 1 else "what they had"
        had = f"; {booted} booted on {what}, not on the cluster's files" if booted else ""
        lines.append(f"transport failures: {_counts(failures['by_kind'])} ({counted(n, 'phone')}{had})")
        more = f" and {n - len(failures['macs'])} more" if n > len(failures["macs"]) else ""
        lines.append(f"      {', '.join(failures['macs'])}{more}")
    if tftp["requests"]:
        lines.append(f"TFTP: {counted(tftp['requests'], 'request', grouped=True)}, "
                     f"{tftp['retransmitted']:,} retransmitted ({tftp['retransmitted_pct']:.1f} %), "
                     f"{counted(tftp['retransmissions'], 'retransmission', grouped=True)}")
    return lines


class SessionTally:
    """How one kind of session after the boots ended — CAPF (``capf``, spec §F), the SIP registration
    (``sip``, §G.13) or the call after it (``media``, §G.14): the count of each session's rule, its
    failures by kind (fleet.alike) and the first few failures. Its summary keys are ``by_<key>``,
    ``<key>_failures`` and ``<key>_failure_kinds``; with ``servers`` also ``<key>_<servers_key>`` (SIP:
    ``sip_servers``, the CallManager each session ended with, spec §H.5; calls: ``media_suites``, the
    SRTP suite: count) and ``<key>_passed_over`` (each server passed over first, with its rule: count)."""

    def __init__(self, key: str, *, servers: bool = False, servers_head: str = "CallManager",
                 servers_key: str = "servers", failed_rules: frozenset[str] | None = None,
                 others_head: str = "not started") -> None:
        self.key = key
        #: the rules of the sessions that failed (CAPF: capf_outcome.CAPF_FAILED); None: every one that
        #: keeps a reason. The others that keep one (CAPF: F.7-wait-auth-string, not started) are listed
        #: apart, under ``HEAD <others_head>`` (``capf_not_started_kinds``), not as failures
        self.failed_rules = failed_rules
        self.others_head = others_head
        self.others = Alike((key, "reason"))
        self.servers_head = servers_head  # what the console calls them
        self.servers_key = servers_key  # the summary's ``<key>_<servers_key>``
        self.by_rule: Counter[str] = Counter()
        self.failures: list[dict[str, Any]] = []
        self.alike = Alike((key, "reason"))
        self.servers: Counter[str] | None = Counter() if servers else None
        self.passed_over: Counter[str] = Counter()

    def add(self, mac: str, rule: str | None, reason: str | None, *, server: str | None = None,
            passed_over: Iterable[str] | None = None) -> None:
        if rule is None:
            return
        self.by_rule[rule] += 1
        if self.servers is not None:
            if server:
                self.servers[server] += 1
            self.passed_over.update(passed_over or ())
        if reason is not None and self.failed_rules is not None and rule not in self.failed_rules:
            self.others.add(mac, {self.key: rule, "reason": reason})  # not a failure (CAPF: not started)
        elif reason is not None:
            self.alike.add(mac, {self.key: rule, "reason": reason})
            if len(self.failures) < _FAILURES_SHOWN:
                self.failures.append({"mac": mac, self.key: rule, "reason": reason})

    def merge(self, other: SessionTally) -> None:
        self.by_rule.update(other.by_rule)
        if self.servers is not None and other.servers is not None:
            self.servers.update(other.servers)
            self.passed_over.update(other.passed_over)
        self.failures.extend(other.failures[:_FAILURES_SHOWN - len(self.failures)])
        self.alike.merge(other.alike)
        self.others.merge(other.others)

    def summary(self) -> dict[str, Any]:
        k = self.key
        out = {f"by_{k}": dict(self.by_rule.most_common()), f"{k}_failures": list(self.failures),
               f"{k}_failure_kinds": self.alike.kinds()}
        if self.failed_rules is not None:
            out[f"{k}_{self.others_head.replace(' ', '_')}_kinds"] = self.others.kinds()
        if self.servers is not None:
            out[f"{k}_{self.servers_key}"] = dict(self.servers.most_common())
            if self.passed_over or self.servers_key == "servers":
                out[f"{k}_passed_over"] = dict(self.passed_over.most_common())
        return out

    def lines(self, head: str) -> list[str]:
        """``HEAD: rule n, ...`` then the kinds of failure (``HEAD failed``)."""
        if not self.by_rule:
            return []
        kinds = self.alike.kinds()
        failed = sum(kind["count"] for kind in kinds) + self.alike.other
        def text(kind: dict[str, Any]) -> str:
            return f"({kind[self.key]}): {kind['reason']}"
        lines = [f"{head}: {_counts(dict(self.by_rule.most_common()))}"]
        if self.servers:
            lines.append(f"{head} {self.servers_head}: {_counts(dict(self.servers.most_common()))}")
        if self.passed_over:
            lines.append(f"{head} passed over first: {_counts(dict(self.passed_over.most_common()))}")
        others = self.others.kinds()
        return [*lines, *kind_lines(kinds, f"{head} failed", text, failed),
                *kind_lines(others, f"{head} {self.others_head}", text,
                            sum(kind["count"] for kind in others) + self.others.other)]

    def to_state(self) -> dict[str, Any]:
        k = self.key
        out = {f"by_{k}": dict(self.by_rule), f"{k}_failures": list(self.failures),
               f"{k}_alike": self.alike.to_state(), f"{k}_others_alike": self.others.to_state()}
        if self.servers is not None:
            out[f"{k}_{self.servers_key}"] = dict(self.servers)
            out[f"{k}_passed_over"] = dict(self.passed_over)
        return out

    @classmethod
    def from_state(cls, key: str, state: Mapping[str, Any], *, servers: bool = False,
                   servers_head: str = "CallManager", servers_key: str = "servers",
                   failed_rules: frozenset[str] | None = None,
                   others_head: str = "not started") -> SessionTally:
        t = cls(key, servers=servers, servers_head=servers_head, servers_key=servers_key,
                failed_rules=failed_rules, others_head=others_head)
        t.by_rule.update(state.get(f"by_{key}", {}))
        if t.servers is not None:
            t.servers.update(state.get(f"{key}_{servers_key}", {}))
            t.passed_over.update(state.get(f"{key}_passed_over", {}))
        t.failures.extend(state.get(f"{key}_failures", []))
        t.alike = Alike.from_state((key, "reason"), state.get(f"{key}_alike"))
        t.others = Alike.from_state((key, "reason"), state.get(f"{key}_others_alike"))
        return t


class FleetMetrics:
    """Aggregated results of many boots (one shard, or several merged)."""

    def __init__(self) -> None:
        self.by_outcome: Counter[str] = Counter()
        self.by_rule: Counter[str] = Counter()
        self.by_trust: Counter[str] = Counter()  # "ITL updated", "CTL absent", ...
        #: "F.6-lsc-installed", "F.6-capf-rejected", ...; its failures those of capf_outcome (was every
        #: session with a reason: "CAPF failed: ... (F.7-wait-auth-string)", an operation never started)
        self.capf = SessionTally("capf", failed_rules=CAPF_FAILED)
        self.sip = SessionTally("sip", servers=True)  # "G.13-registered", "G.13-digest-rejected", ...
        #: "G.14-srtp", "G.14-rtp-not-encrypted-mode", ... (§G.14), and the SRTP suite of each call ("RTP")
        self.media = SessionTally("media", servers=True, servers_head="suite", servers_key="suites")
        self.failed_by_rule: Counter[str] = Counter()  # the deciding rules of the failed boots only
        self.by_model: Counter[tuple[str, str]] = Counter()  # (profile, outcome) of boots that name one
        #: locked-out boots by (deciding rule, kind, reason code and lists held where they choose the ways
        #: out: ways_group)
        self.locked_by: Counter[WaysGroup] = Counter()
        self.tvs_used = 0
        #: phones that tried TVS and got no answer, by why (BootRecord.tvs_unanswered)
        self.tvs_unanswered: Counter[str] = Counter()
        self.files_over: Counter[str] = Counter()  # "http"/"tftp"/"https" -> files received that way
        self.latencies = array("d")
        self.end_times = array("d")
        self.wall_s = 0.0
        self.peak_rss: dict[str, float] = {}  # "shard-0": MiB, ...
        self.failures: list[dict[str, Any]] = []  # the first few failed boots (mac, outcome, rule)
        self.max_failures_kept = 20
        self.failed_alike = Alike(FAILED_BY)  # failed boots by kind: counts and first MACs
        #: phones with a download failed in transport, by "<file kind> <failure>" ("ITL timeout")
        self.transport_by: Counter[str] = Counter()
        self.transport_phones = 0  # phones with any download failed in transport
        self.transport_booted = 0  # ... of them booted (outcome ok): on what they had
        self.transport_macs: list[str] = []  # the first few of them
        self.tftp_requests = 0  # TFTP transfers started (the shards' client pools)
        self.tftp_retransmitted = 0  # ... of them that sent a packet again after a timeout
        self.tftp_retransmits = 0  # packets (RRQ or ACK) sent again after a timeout
        #: boots that got no answer to any request (BootRecord.answered): all of them, fleet boot says
        #: why, as boot does (commands.boot.nothing_answered_hint)
        self.unanswered = 0
        #: phones booted (outcome ok) whose CAPF operation failed (BootRecord.capf_failed): failures too
        self.booted_capf_failed = 0

    # ------------------------------------------------------------------ input
    def add(self, rec: BootRecord) -> None:
        self.by_outcome[rec.outcome] += 1
        if rec.profile is not None:
            self.by_model[(rec.profile, rec.outcome)] += 1
        self.by_rule[rec.rule or "(none)"] += 1
        if rec.outcome != "ok":
            self.failed_by_rule[rec.rule or "(none)"] += 1
        if rec.outcome == "locked-out":
            self.locked_by[ways_group(rec.rule or "(none)", rec.kind or "", rec.reason_code,
                                      held=rec.held)] += 1
        for kind, outcome in (("ITL", rec.itl), ("CTL", rec.ctl)):
            if outcome is not None:
                self.by_trust[f"{kind} {outcome}"] += 1
        self.tvs_used += rec.tvs_used
        if rec.tvs_unanswered is not None:
            self.tvs_unanswered[rec.tvs_unanswered] += 1
        self.unanswered += not rec.answered
        self.booted_capf_failed += rec.outcome == "ok" and rec.capf_failed
        self.capf.add(rec.mac, rec.capf, rec.capf_reason)
        self.sip.add(rec.mac, rec.sip, rec.sip_reason, server=rec.sip_server, passed_over=rec.sip_passed_over)
        self.media.add(rec.mac, rec.media, rec.media_reason, server=rec.media_suite)
        if rec.over_http:
            self.files_over["http"] += rec.over_http
        if rec.over_tftp:
            self.files_over["tftp"] += rec.over_tftp
        if rec.over_https:
            self.files_over["https"] += rec.over_https
        if rec.failed_downloads:
            self._transport(rec)
        if rec.timed:  # a phone never booted has no boot time (was 0 ms in the percentiles)
            self.latencies.append(rec.latency_s)
            self.end_times.append(rec.end_s)
        if rec.outcome != "ok":
            self.failed_alike.add(rec.mac, {"outcome": rec.outcome, "rule": rec.rule, "reason": rec.reason,
                                            "signer": rec.signer})
            if len(self.failures) < self.max_failures_kept:
                self.failures.append(rec.as_dict())

    def _transport(self, rec: BootRecord) -> None:
        """Count a phone with downloads failed in transport, once per file kind and failure."""
        self.transport_phones += 1
        self.transport_booted += rec.outcome == "ok"
        self.transport_by.update({f"{file_kind(f)} {k}" for f, k in rec.failed_downloads})
        if len(self.transport_macs) < _TRANSPORT_MACS_KEPT:
            self.transport_macs.append(rec.mac)

    def add_tftp(self, *, requests: int, retransmitted: int, retransmits: int) -> None:
        """A shard's TFTP counts (its client pool's)."""
        self.tftp_requests += requests
        self.tftp_retransmitted += retransmitted
        self.tftp_retransmits += retransmits

    def add_error(self, mac: str, text: str, *, latency_s: float, end_s: float) -> BootRecord:
        """A boot that raised instead of reporting (a bug: the boot contract says it never raises): its
        record, counted (the caller keeps it with the others: ``--json`` and ``--junit`` list every
        phone)."""
        rec = BootRecord(mac=mac, outcome="error", rule="exception", latency_s=latency_s, end_s=end_s,
                         reason=text[:300])
        self.add(rec)
        return rec

    def merge(self, other: FleetMetrics) -> FleetMetrics:
        self.by_outcome.update(other.by_outcome)
        self.by_rule.update(other.by_rule)
        self.by_trust.update(other.by_trust)
        self.capf.merge(other.capf)
        self.sip.merge(other.sip)
        self.media.merge(other.media)
        self.failed_by_rule.update(other.failed_by_rule)
        self.by_model.update(other.by_model)
        self.locked_by.update(other.locked_by)
        self.tvs_used += other.tvs_used
        self.tvs_unanswered.update(other.tvs_unanswered)
        self.unanswered += other.unanswered
        self.booted_capf_failed += other.booted_capf_failed
        self.files_over.update(other.files_over)
        self.latencies.extend(other.latencies)
        self.end_times.extend(other.end_times)
        self.wall_s = max(self.wall_s, other.wall_s)
        self.peak_rss.update(other.peak_rss)
        room = self.max_failures_kept - len(self.failures)
        self.failures.extend(other.failures[:max(0, room)])
        self.failed_alike.merge(other.failed_alike)
        self.transport_by.update(other.transport_by)
        self.transport_phones += other.transport_phones
        self.transport_booted += other.transport_booted
        room = _TRANSPORT_MACS_KEPT - len(self.transport_macs)
        self.transport_macs.extend(other.transport_macs[:max(0, room)])
        self.add_tftp(requests=other.tftp_requests, retransmitted=other.tftp_retransmitted,
                      retransmits=other.tftp_retransmits)
        return self

    @classmethod
    def merged(cls, parts: Iterable[FleetMetrics]) -> FleetMetrics:
        out = cls()
        for p in parts:
            out.merge(p)
        return out

    # ------------------------------------------------------------------ views
    @property
    def total(self) -> int:
        """Phones with a record: the boots (a latency each) and the phones never booted."""
        return len(self.latencies) + self.by_rule.get(NOT_BOOTED, 0)

    @property
    def booted(self) -> int:
        return self.by_outcome.get("ok", 0)

    @property
    def failed(self) -> int:
        return self.total - self.booted

    @property
    def capf_failed(self) -> int:
        """Phones whose CAPF operation failed (module rules), booted or not."""
        return sum(n for rule, n in self.capf.by_rule.items() if rule in CAPF_FAILED)

    def rate(self) -> float:
        """Boots per second over the whole run (0 when nothing ran); phones never booted (rule
        ``not-booted``: their lab MIC or flash unusable) are no boots (5 of them printed 199,872/s)."""
        span = self.wall_s or (max(self.end_times) if self.end_times else 0.0)
        booted = self.total - self.by_rule.get(NOT_BOOTED, 0)
        return booted / span if span > 0 and booted else 0.0

    def rate_shown(self) -> float:
        """:meth:`rate` rounded once, to 0.1/s: the value the JSON, the text and ``--plot`` show."""
        return round(self.rate(), 1)

    def rate_series(self, bucket_s: float = 1.0) -> list[int]:
        """Boots finished in each ``bucket_s`` interval since the start."""
        if not self.end_times:
            return []
        n = int(max(self.end_times) // bucket_s) + 1
        out = [0] * n
        for t in self.end_times:
            out[int(t // bucket_s)] += 1
        return out

    def sustained_rate(self, bucket_s: float = 1.0) -> float:
        """Mean boots/s over the full buckets between ramp-up and tail (overall rate if too short); the
        seconds before the first boot ended are no bucket of the storm (boots that all take 12 s ended
        in one burst, reported as 0/s)."""
        series = self.rate_series(bucket_s)
        first = next((i for i, n in enumerate(series) if n), len(series))
        inner = series[first + 1:-1]
        if len(inner) < 3:
            return self.rate()
        return sum(inner) / (len(inner) * bucket_s)

    def latency_percentiles(self) -> dict[str, float | None]:
        """p50/p90/p99/max latency in milliseconds."""
        s = sorted(self.latencies)
        out: dict[str, float | None] = {}
        for name, q in (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("max", 100.0)):
            v = percentile(s, q)
            out[name] = None if v is None else round(v * 1000.0, 3)
        return out

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (counts, percentiles in ms, rates, peak RSS per process in MiB)."""
        return {
            "phones": self.total,
            "booted": self.booted,
            "failed": self.failed,
            "by_outcome": dict(self.by_outcome.most_common()),
            "by_rule": dict(self.by_rule.most_common()),
            "by_trust": dict(sorted(self.by_trust.items())),
            **self.capf.summary(),
            "capf_failed": self.capf_failed,
            "booted_capf_failed": self.booted_capf_failed,
            **self.sip.summary(),
            **self.media.summary(),
            "by_model": self.model_counts(),
            "tvs_used": self.tvs_used,
            "tvs_unanswered": dict(self.tvs_unanswered.most_common()),
            "files_over": dict(sorted(self.files_over.items())),
            "transport_failures": self.transport_summary(),
            "tftp": self.tftp_summary(),
            "latency_ms": self.latency_percentiles(),
            "wall_s": round(self.wall_s, 3),
            "boots_per_s": self.rate_shown(),
            "sustained_boots_per_s": round(self.sustained_rate(), 1),
            "peak_rss_mib": {k: round(v, 1) for k, v in sorted(self.peak_rss.items())},
            "failures": list(self.failures),
            "failure_kinds": self.failed_alike.kinds(),
            "failure_kinds_not_kept": self.failed_alike.other,
            # by group: its ways out, or why it has none documented (no_way_out, ways empty)
            "ways_out": ways_out_doc(self.locked_by),
            # registrations refused (kind "sip": not a lockout, the phone boots): e.g. a CallManager
            # certificate its CTL lacks until it resets
            "sip_ways_out": ways_out_doc({(rule, "sip"): n for rule, n in self.sip.by_rule.items()}),
            # calls without SRTP (kind "media"): a security profile not Encrypted, no mixed mode, media
            # changed on the path
            "media_ways_out": ways_out_doc({(rule, "media"): n for rule, n in self.media.by_rule.items()}),
        }

    def transport_summary(self) -> dict[str, Any]:
        """Phones with a download failed in transport: how many, how many booted anyway (on what they
        had), by "<file kind> <failure>" (most common first), and the first few MACs."""
        return {"phones": self.transport_phones, "booted": self.transport_booted,
                "by_kind": dict(self.transport_by.most_common()), "macs": list(self.transport_macs)}

    def tftp_summary(self) -> dict[str, Any]:
        """TFTP requests (transfers), those retransmitted (and their share, %), retransmissions (packets)."""
        n = self.tftp_requests
        return {"requests": n, "retransmitted": self.tftp_retransmitted,
                "retransmitted_pct": round(100.0 * self.tftp_retransmitted / n, 2) if n else 0.0,
                "retransmissions": self.tftp_retransmits}

    def model_counts(self) -> dict[str, dict[str, int]]:
        """profile -> outcome -> boots, the most common first (empty when no boot named its profile)."""
        out: dict[str, dict[str, int]] = {}
        for (profile, outcome), n in sorted(self.by_model.items(), key=lambda kv: (kv[0][0], -kv[1])):
            out.setdefault(profile, {})[outcome] = n
        return out

    def render(self, fill: Mapping[str, str] | None = None, *, why: Mapping[str, str] | None = None,
               otherwise: str = "not known to fleet boot", asked: int | None = None, not_started: int = 0,
               stopped: str = "not started", lost: int = 0) -> str:
        """The human summary printed at the end of ``phoneemu fleet boot`` (``fill``: the placeholders
        of the ways out's lab commands that are known, :func:`phoneemu.phone.ways_out.way_out_lines`), its
        ways out followed once by the legend of the placeholders they leave, as the other fleets' texts
        say it (:func:`phoneemu.phone.ways_out.placeholder_lines`: ``why`` by name, else ``otherwise``; was
        ``OLD`` bare, with no legend). Its first line counts the phones ``asked`` for (default: those with
        a record), the ``not_started`` among them (``stopped``: why) and the ``lost`` (module rules)."""
        s = self.summary()
        lat = s["latency_ms"]
        lines = [self._head(s, asked=asked, not_started=not_started, stopped=stopped, lost=lost)]
        if lat["p50"] is not None:
            lines.append(f"latency ms: p50 {lat['p50']:.1f}  p90 {lat['p90']:.1f}  p99 {lat['p99']:.1f}  "
                         f"max {lat['max']:.1f}")
        lines += tally_lines(s, outcome_head="by outcome") if s["by_outcome"] else []  # none: no heads
        lines += self.capf.lines("CAPF")
        lines += self.sip.lines("SIP")
        lines += ways_out_text(s["sip_ways_out"], fill)
        lines += self.media.lines("Media")
        lines += ways_out_text(s["media_ways_out"], fill)
        if s["files_over"]:
            lines.append("files received: "
                         + ", ".join(f"{v} over {k.upper()}" for k, v in s["files_over"].items()))
        if s["tvs_used"]:
            lines.append(tvs_line(s["tvs_used"], s["tvs_unanswered"]))
        lines += transport_lines(s["transport_failures"], s["tftp"])
        if s["peak_rss_mib"]:
            total = sum(s["peak_rss_mib"].values())
            parts = ", ".join(f"{k} {v:.0f}" for k, v in s["peak_rss_mib"].items())
            lines.append(f"peak RSS MiB: {parts} (sum {total:.0f})")
        lines += kind_lines(s["failure_kinds"], "failed", failure_text, s["failed"])
        lines += ways_out_text(s["ways_out"], fill)
        every_way = [*s["sip_ways_out"], *s["media_ways_out"], *s["ways_out"]]
        lines += placeholder_lines(every_way, fill or {}, why or {}, otherwise)
        return "\n".join(lines)

    @staticmethod
    def _head(s: Mapping[str, Any], *, asked: int | None, not_started: int, stopped: str, lost: int) -> str:
        """The summary's first line (module rules): ``3000 phones: 2982 booted, 0 failed, 18 not started
        (interrupted) in 14.03s (212.5 boots finished/s, sustained 230.1/s)``; no phone started: ``40
        phones: none started (interrupted)``. The rates are the summary's, as the JSON has them."""
        phones = counted(s["phones"] if asked is None else asked, "phone")
        if not s["phones"] and not lost and not_started:
            return f"{phones}: none started ({stopped})"
        capf = s["booted_capf_failed"]  # booted, but their CAPF operation failed: the run fails
        counts = f"{s['booted']} booted" + (f" ({capf} of them CAPF failed)" if capf else "")
        counts += f", {s['failed']} failed"
        counts += f", {not_started} not started ({stopped})" if not_started else ""
        counts += f", {lost} lost" if lost else ""
        return (f"{phones}: {counts} in {s['wall_s']:.2f}s ({rate_text(s['boots_per_s'])} boots finished/s, "
                f"sustained {rate_text(s['sustained_boots_per_s'])}/s)")

    # ------------------------------------------------------------------ transport between processes
    def to_state(self) -> dict[str, Any]:
        return {"by_outcome": dict(self.by_outcome), "by_rule": dict(self.by_rule),
                "by_trust": dict(self.by_trust), **self.capf.to_state(), **self.sip.to_state(),
                **self.media.to_state(),
                "failed_by_rule": dict(self.failed_by_rule),
                "by_model": [[p, o, n] for (p, o), n in self.by_model.items()],
                "locked_by": [[r, k, n, c, h.as_json() if h is not None else None]
                              for (r, k, c, h), n in self.locked_by.items()],
                "tvs_used": self.tvs_used, "tvs_unanswered": dict(self.tvs_unanswered),
                "unanswered": self.unanswered,
                "booted_capf_failed": self.booted_capf_failed, "files_over": dict(self.files_over),
                "latencies": self.latencies.tobytes(), "end_times": self.end_times.tobytes(),
                "wall_s": self.wall_s, "peak_rss": dict(self.peak_rss), "failures": list(self.failures),
                "failed_alike": self.failed_alike.to_state(),
                "transport_by": dict(self.transport_by), "transport_phones": self.transport_phones,
                "transport_booted": self.transport_booted, "transport_macs": list(self.transport_macs),
                "tftp": [self.tftp_requests, self.tftp_retransmitted, self.tftp_retransmits]}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FleetMetrics:
        m = cls()
        m.by_outcome.update(state["by_outcome"])
        m.by_rule.update(state["by_rule"])
        m.by_trust.update(state.get("by_trust", {}))
        m.capf = SessionTally.from_state("capf", state, failed_rules=CAPF_FAILED)
        m.sip = SessionTally.from_state("sip", state, servers=True)
        m.media = SessionTally.from_state("media", state, servers=True, servers_head="suite",
                                          servers_key="suites")
        m.failed_by_rule.update(state.get("failed_by_rule", {}))
        m.by_model.update({(str(p), str(o)): int(n) for p, o, n in state.get("by_model", [])})
        m.locked_by.update({(str(r), str(k), str(c[0]) if c and c[0] is not None else None,
                             HeldLists.from_json(c[1]) if len(c) > 1 else None): int(n)
                            for r, k, n, *c in state.get("locked_by", [])})
        m.tvs_used = int(state["tvs_used"])
        m.tvs_unanswered.update(state.get("tvs_unanswered", {}))
        m.unanswered = int(state.get("unanswered", 0))
        m.booted_capf_failed = int(state.get("booted_capf_failed", 0))
        m.files_over.update(state.get("files_over", {}))
        m.latencies.frombytes(state["latencies"])
        m.end_times.frombytes(state["end_times"])
        m.wall_s = float(state["wall_s"])
        m.peak_rss.update(state["peak_rss"])
        m.failures.extend(state["failures"])
        m.failed_alike = Alike.from_state(FAILED_BY, state.get("failed_alike"))
        m.transport_by.update(state.get("transport_by", {}))
        m.transport_phones = int(state.get("transport_phones", 0))
        m.transport_booted = int(state.get("transport_booted", 0))
        m.transport_macs.extend(state.get("transport_macs", []))
        requests, retransmitted, retransmits = state.get("tftp", (0, 0, 0))
        m.add_tftp(requests=int(requests), retransmitted=int(retransmitted), retransmits=int(retransmits))
        return m
