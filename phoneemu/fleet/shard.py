"""Fleets across all cores: one process per shard, each with its own event loop and client pool (issue #6).

Rules:

* ``shards`` defaults to ``os.cpu_count()`` (never more shards than phones). The MAC range of the
  fleet is cut into contiguous sub-ranges, one per shard; each shard runs
  :func:`phoneemu.fleet.engine.run_shard` in a fresh ``spawn`` process (no state inherited).
* Shards make what their phones share first, say ``ready``, and start the storm together when every
  shard is ready (the parent's ``go``), so the rate measured is the storm, not process start-up; each
  phone is made as its boot starts (:mod:`phoneemu.fleet.engine` rules), within the storm's time.
* Shards report progress (done, booted) a few times a second, then their records, if kept, a few
  hundred a message (``_RECORDS_A_MESSAGE``), then their result, each over a pipe
  of its own (:mod:`phoneemu.worker_pipes`: no lock or stream shared between shards, so a shard
  killed mid-message damages nothing but its own pipe); the parent reads them all without blocking on
  any one, merges the progress for the live progress line and the final :class:`ShardResult`\\ s into
  one :class:`FleetResult`, whose records wait on disk (:class:`~phoneemu.fleet.metrics.RecordSpool`,
  spooled as they come: the parent holds a message of records at a time, not 40,000 records). The
  parent's orders, ``go`` and ``stop``, go down a second pipe of each
  shard's own (not events shared by every shard: their lock, taken at each boot to check ``stop``,
  could be held for ever by a shard killed at that moment).
* Every wait is bounded: process start (``start_timeout``), the run (``spec.max_time_s`` plus a
  grace period, else ``run_timeout``). A shard that dies or fails before the storm, or a start that
  times out, makes the run fail with a :class:`~phoneemu.errors.PhoneEmuError` naming it; the other
  shards are stopped. A shard process starts on this module alone (the phones' modules are imported
  where they are used, the spec sent pickled): one whose phones' modules do not import says so, the
  exception in one line (``fleet shard 0 failed: could not start: ImportError: ...``), not a traceback.
  A run that outlasts its bound ends as an interrupted one does, so that what
  booted is kept (was: the PhoneEmuError, every shard killed, the summary and every record lost — a
  ``--max-time`` storm whose last boots took more than a minute, any storm of more than an hour):
  ``on_overrun(why)`` is told, the shards start no new boot, the boots under way finish within
  ``interrupt_grace`` seconds, and a shard still running then is killed and counted as lost (a Ctrl-C
  in that grace as well: it asks for what is under way, and no longer aborts the run); the result says
  why (``FleetResult.overran``), the phones not booted counted as not started.
* A shard that dies during the storm (killed by a signal, e.g. SIGKILL from the OOM killer, or any
  exit without its result), reports an error or sends bytes that do not decode is noticed at once
  (the end of its pipe or of its process; within ``_RESULT_GRACE_S`` when only one of the two ends),
  whatever the other shards send: its phones are counted as **lost** (:class:`LostShard`: the shard,
  its MACs, the signal or exit status, how many boots it had reported done — their records went with
  it) and ``on_lost(message)`` is called; the other shards run to their end, so nothing else is lost.
* Ctrl-C (or SIGTERM) during the storm stops it gracefully, so nothing booted is lost: shards
  start no new boot, the boots under way finish (within ``interrupt_grace`` seconds), and the
  result — marked ``interrupted``, the rest counted as not started — is returned as usual;
  ``on_interrupt()`` is called first (e.g. to tell the user). An interrupt before the storm starts
  (while the shards start and make what their phones share: no boot is under way) kills the shards, joins them
  and returns the result as usual, marked ``interrupted`` and ``before_storm``, every phone counted
  as not started (``fleet boot`` still writes its summary and reports: was a bare KeyboardInterrupt,
  no report). A second Ctrl-C, or a grace period that runs out, aborts: the parent kills the shards,
  joins them and re-raises ``KeyboardInterrupt`` — no orphan processes. Shard processes ignore SIGINT
  and SIGTERM (a signal to the whole process group, as from ``timeout`` or a service manager, is
  the parent's to handle); a shard whose parent vanished (e.g. SIGKILLed) exits by itself at once
  (the end of its pipe of orders; on Linux the kernel's parent-death signal; at the latest within about
  half a second, when its parent changes: :func:`phoneemu.worker_pipes.exit_with_parent`), whether it
  is booting, making what its phones share or waiting for the storm to start.
* ``shards=0`` runs the single shard in this process (tests, profiling).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing as mp
import os
import pickle
import signal
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from phoneemu import worker_pipes
from phoneemu.errors import PhoneEmuError
from phoneemu.fleet.loop import run_on
from phoneemu.interrupts import release_held_signals, start_processes, term_as_ctrl_c
from phoneemu.words import counted

if TYPE_CHECKING:  # the phones' modules are imported where they are used: a shard process starts on this
    # module alone, and says it if they cannot be imported (_child), no traceback
    from phoneemu.fleet.engine import FleetSpec, ShardResult
    from phoneemu.fleet.metrics import BootRecord, FleetMetrics

__all__ = ["FleetResult", "LostShard", "ProgressFn", "interrupted_before_storm", "run_fleet", "split_range"]


def __getattr__(name: str) -> Any:
    """``ShardResult``, imported from here as it was before the phones' modules were imported lazily."""
    if name == "ShardResult":
        from phoneemu.fleet.engine import ShardResult

        return ShardResult
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

class ProgressFn(Protocol):
    """``progress(done, booted, total, elapsed_s, failing=..., pausing=..., capf_failed=...)``; ``failing``:
    the deciding rules of the most common failures so far, with their counts; ``pausing``: the phones
    waiting before a CAPF retry now; ``capf_failed``: of the ``booted``, those whose CAPF operation failed
    (all shards together)."""

    def __call__(self, done: int, booted: int, total: int, elapsed_s: float, /, *,
                 failing: Mapping[str, int], pausing: int, capf_failed: int = 0) -> None: ...


@dataclass(frozen=True, kw_only=True)
class LostShard:
    """A shard that ended during the storm without its result: its phones are lost."""

    shard: int
    first_mac: int
    phones: int
    why: str  # "killed by SIGKILL", "exited with status 1", or the error it reported
    reported_done: int = 0  # boots it had reported finished before it ended (their records are lost)
    last_mac: int | None = None  # its last phone's MAC (None: first_mac + phones - 1, consecutive MACs)
    #: its phones' MACs (the parent's slice of the run, :func:`split_macs`); () when not given: consecutive
    #: from first_mac (:attr:`macs_lost`)
    macs: Sequence[int] = field(default=(), repr=False, compare=False)

    @property
    def last(self) -> int:
        return self.last_mac if self.last_mac is not None else self.first_mac + self.phones - 1

    @property
    def macs_lost(self) -> Sequence[int]:
        """The MACs of its phones, in the run's order (``fleet boot --junit``: a case each)."""
        return self.macs or range(self.first_mac, self.first_mac + self.phones)

    def message(self) -> str:
        """``shard 1 (phoneemu-fleet-1, 8 phones 0A0000000008..0A000000000F) killed by SIGKILL: its 8 phones
        are lost (3 had finished booting; ...)``; a shard of one phone names its MAC once: ``1 phone
        0A0000000008``, ``its phone is lost``."""
        macs = f"{self.first_mac:012X}" if self.phones == 1 else f"{self.first_mac:012X}..{self.last:012X}"
        return (f"shard {self.shard} (phoneemu-fleet-{self.shard}, {counted(self.phones, 'phone')} {macs}) "
                f"{self.why}: {self._lost_text()}")

    def _lost_text(self) -> str:
        """What went with the shard: its phones, and the records of those that had finished booting."""
        if self.phones != 1:
            return (f"its {self.phones} phones are lost ({self.reported_done} had finished booting; their "
                    "records went with it)")
        done = "it had finished booting; its record went with it" if self.reported_done else \
            "it had not finished booting"
        return f"its phone is lost ({done})"

    def as_dict(self) -> dict[str, Any]:
        return {"shard": self.shard, "first_mac": f"{self.first_mac:012X}", "last_mac": f"{self.last:012X}",
                "phones": self.phones,
                "why": self.why, "reported_done": self.reported_done}


@dataclass(kw_only=True)
class FleetResult:
    """Merged result of every shard."""

    metrics: FleetMetrics
    shards: list[ShardResult] = field(default_factory=list)
    #: every phone's record (FleetSpec.keep_records), shard by shard: a RecordSpool when shard processes
    #: sent them (read back a record at a time), else a list
    records: Sequence[BootRecord] = field(default_factory=list)
    interrupted: bool = False  # stopped early by Ctrl-C/SIGTERM: not-started phones were never booted
    lost: list[LostShard] = field(default_factory=list)  # shards that died during the storm
    before_storm: bool = False  # interrupted while the shards were starting: no phone booted
    #: why the run was stopped at its time bound (``run_fleet``'s ``run_timeout``, ``max_time_s`` plus its
    #: grace), else None: no new boot started from then on
    overran: str | None = None

    @property
    def not_started(self) -> int:
        return sum(s.not_started for s in self.shards)

    @property
    def not_started_runs(self) -> list[tuple[int, int]]:
        """The MACs of the phones not started, as runs of consecutive MACs (first, last), in the run's order
        (each shard's, :attr:`ShardResult.not_started_runs`, shard after shard: their MACs are slices of the
        run's); as many as :attr:`not_started` (a lost shard's phones are lost, not among them)."""
        runs: list[tuple[int, int]] = []
        for shard in self.shards:
            for first, last in shard.not_started_runs:
                if runs and first == runs[-1][1] + 1:  # a run across two shards
                    runs[-1] = (runs[-1][0], last)
                else:
                    runs.append((first, last))
        return runs

    @property
    def gave_up(self) -> str | None:
        """Why the shards started no new boot (``FleetSpec.give_up_unanswered``): the first shard's reason."""
        return next((s.gave_up for s in self.shards if s.gave_up), None)

    @property
    def lost_phones(self) -> int:
        return sum(x.phones for x in self.lost)

    @property
    def records_unkept(self) -> str | None:
        """Why the records were not kept (their spool could not be written), else None."""
        from phoneemu.fleet.metrics import RecordSpool

        return self.records.unkept if isinstance(self.records, RecordSpool) else None

    def close(self) -> None:
        """Drop the records' spool (its temporary file), if any."""
        from phoneemu.fleet.metrics import RecordSpool

        if isinstance(self.records, RecordSpool):
            self.records.close()

    def summary(self) -> dict[str, Any]:
        out = self.metrics.summary()
        out["shards"] = len(self.shards)
        out["not_started"] = self.not_started
        out["interrupted"] = self.interrupted
        out["overran"] = self.overran
        out["gave_up"] = self.gave_up
        out["lost"] = self.lost_phones
        out["lost_shards"] = [x.as_dict() for x in self.lost]
        out["setup_s"] = round(max((s.setup_s for s in self.shards), default=0.0), 3)
        out["verify_cache"] = {"hits": sum(s.verify_hits for s in self.shards),
                               "misses": sum(s.verify_misses for s in self.shards)}
        out["cpu_s"] = round(sum(s.cpu_s for s in self.shards), 3)
        out["intern_cache"] = {"hits": sum(s.intern_hits for s in self.shards),
                               "misses": sum(s.intern_misses for s in self.shards)}
        return out


def split_macs(spec: FleetSpec, parts: int) -> list[Sequence[int]]:
    """The fleet's MACs (:func:`~phoneemu.fleet.engine.fleet_macs`) cut into ``parts`` contiguous
    near-equal slices, one per shard."""
    if not spec.macs:
        return list(split_range(spec.mac_start, spec.count, parts))
    return [spec.macs[r.start:r.stop] for r in split_range(0, len(spec.macs), parts)]


def split_range(start: int, count: int, parts: int) -> list[range]:
    """``count`` consecutive values from ``start`` cut into ``parts`` contiguous near-equal ranges."""
    from phoneemu.fleet.engine import mac_range

    whole = mac_range(start, count)
    parts = max(1, min(parts, count)) if count else 1
    size, extra = divmod(count, parts)
    out: list[range] = []
    at = whole.start
    for i in range(parts):
        n = size + (1 if i < extra else 0)
        out.append(range(at, at + n))
        at += n
    return out


def _child(spec: FleetSpec | bytes, macs: Sequence[int], shard: int, channels: tuple[Any, Any],
           start_timeout: float) -> None:
    """Shard process body: build phones, wait for ``go``, boot until done or ``stop``, send the result.
    ``channels``: this shard's own pipes, the writing end of the one to the parent and the reading
    end of the one from it (``go``, then maybe ``stop``). ``spec``: pickled (:func:`run_fleet`), unpickled
    here with the phones' modules it imports: a failure there (an ImportError: a module being edited as
    the shard starts) is reported as the shard's error, one line (was a traceback on stderr from the
    process's start-up, the shard dead before this ran)."""
    out, control = channels
    for sig in (signal.SIGINT, signal.SIGTERM):  # a Ctrl-C or a `kill` of the process group reaches
        signal.signal(sig, signal.SIG_IGN)       # the shards too: the parent alone decides (via `stop`)
    release_held_signals()  # held while started (start_processes)
    parent = worker_pipes.exit_with_parent()  # Linux: killed with the parent, whatever the shard is doing
    go, stop = threading.Event(), threading.Event()

    def listen() -> None:
        """The parent's orders; the end of the pipe means the parent is gone: do not linger as an orphan."""
        try:
            while True:
                (go if worker_pipes.recv(control) == "go" else stop).set()
        except (EOFError, OSError):
            os._exit(1)

    threading.Thread(target=listen, name="phoneemu-fleet-orders", daemon=True).start()

    def tell(*msg: Any) -> None:
        try:
            worker_pipes.send(out, msg)
        except OSError:  # the parent's end is gone (it died): nobody to report to
            os._exit(1)

    def progress(done: int, ok: int, failing: dict[str, int], pausing: int, capf_failed: int = 0) -> None:
        if os.getppid() != parent:  # the parent died without stopping us: do not linger as an orphan
            os._exit(1)
        tell("progress", done, ok, failing, pausing, capf_failed)

    async def ready() -> None:
        tell("ready")
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + start_timeout
        # in slices: a parent killed before the storm (SIGKILL, OOM) must not leave us waiting as orphans
        while not await loop.run_in_executor(None, go.wait, max(0.0, min(0.5, deadline - time.monotonic()))):
            if os.getppid() != parent:
                os._exit(1)
            if time.monotonic() >= deadline:
                raise PhoneEmuError(f"shard {shard}: no start signal within {start_timeout}s")

    try:  # the start: the phones' modules, imported here (none of them with this module)
        from phoneemu.fleet.engine import run_shard

        fleet: FleetSpec = pickle.loads(spec) if isinstance(spec, bytes) else spec  # noqa: S301 - our parent
    except Exception as exc:  # an ImportError, a module's own error: said, the parent decides
        tell("error", f"could not start: {type(exc).__name__}: {exc}")
        return
    try:
        result = run_on(fleet.event_loop,
                        run_shard(fleet, macs, shard=shard, on_progress=progress, ready=ready,
                                  should_stop=stop.is_set, on_give_up=lambda why: tell("gave_up", why)))
        state = dataclasses.replace(result, records=[]).to_state()
    except (PhoneEmuError, OSError) as exc:  # bad input or a file that failed: its one line, no traceback
        tell("error", f"{type(exc).__name__}: {exc}")
    except BaseException as exc:  # report anything, the parent decides: in one line, where it was raised
        tell("error", _unexpected_text(exc))  # (was the traceback's lines: `fleet boot` printed them)
    else:
        for at in range(0, len(result.records), _RECORDS_A_MESSAGE):  # the parent spools them as they come
            tell("records", [r.as_dict() for r in result.records[at:at + _RECORDS_A_MESSAGE]])
        tell("done", state)


def _unexpected_text(exc: BaseException) -> str:
    """A shard's unexpected exception as one line: ``KeyError: 'x' (at phoneemu/fleet/engine.py:120 in
    run_shard)``, where it was raised: the innermost frame of phoneemu's own (else the innermost frame)."""
    frames = traceback.extract_tb(exc.__traceback__)
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../phoneemu
    mine = [f for f in frames if os.path.abspath(f.filename).startswith(package + os.sep)]
    text = " ".join(str(exc).split())  # one line, whatever the exception's text holds
    said = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if not (mine or frames):
        return said
    last = (mine or frames)[-1]
    path = os.path.abspath(last.filename)
    shown = os.path.relpath(path, os.path.dirname(package)) if mine else os.path.basename(path)
    return f"{said} (at {shown}:{last.lineno} in {last.name})"


#: Records a shard sends in one message (``_child``): the parent holds one message at a time.
_RECORDS_A_MESSAGE = 500


def _failing(value: Any) -> dict[str, int]:
    """A shard's ``failing`` report as rule -> count; anything else (a shard of another version) is {}."""
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and type(v) is int}


def _count(value: Any) -> int:
    """A shard's ``pausing`` report: a count, anything else (a shard of another version) 0."""
    return value if type(value) is int and value >= 0 else 0


def _merged(failing_by: Mapping[int, Mapping[str, int]]) -> dict[str, int]:
    """The shards' most common failures together (each shard sends its own few)."""
    from phoneemu.fleet.engine import FAILING_SHOWN

    total: Counter[str] = Counter()
    for failing in failing_by.values():
        total.update(failing)
    return dict(total.most_common(FAILING_SHOWN))


def _order(orders: list[tuple[Any, Any]], what: str) -> None:
    """Send ``go`` or ``stop`` down each shard's pipe of orders (a few bytes into an empty pipe: never
    blocks); a shard that is gone is noticed by its own end."""
    for _, w in orders:
        with contextlib.suppress(OSError):
            worker_pipes.send(w, what)


def _stop(procs: list[Any]) -> None:
    """Kill the shards still alive (they ignore SIGTERM; a shard that is still running here is
    being aborted, its result is not wanted) and reap them all (those never started — an interrupt
    while they were being started — have nothing to reap)."""
    for p in procs:
        if p.is_alive():
            p.kill()
    for p in procs:
        if p.pid is not None:
            p.join(5.0)


def run_fleet(spec: FleetSpec, *, shards: int | None = None, progress: ProgressFn | None = None,
              start_timeout: float = 120.0, run_timeout: float = 3600.0, interrupt_grace: float = 60.0,
              on_interrupt: Callable[[], None] | None = None,
              on_lost: Callable[[str], None] | None = None,
              on_start: Callable[[list[int]], None] | None = None,
              on_give_up: Callable[[str], None] | None = None,
              on_storm: Callable[[], None] | None = None,
              on_overrun: Callable[[str], None] | None = None) -> FleetResult:
    """Boot ``spec.count`` phones across ``shards`` processes (see module docstring). ``on_start(pids)``
    is told the shard processes' ids once they started, before the storm (``fleet boot --capture``
    follows their TCP connections); ``on_give_up(reason)`` once, when the first shard gives up
    (``FleetSpec.give_up_unanswered``); ``on_storm()`` once, as the storm starts: a KeyboardInterrupt
    out of this function before it is an interrupt before any shard started (the caller's
    :func:`interrupted_before_storm`), after it an abort (a second Ctrl-C); ``on_overrun(why)`` once, when
    the run outlasts its bound (module docstring)."""
    from phoneemu.fleet.engine import ShardResult
    from phoneemu.fleet.metrics import BootRecord, FleetMetrics, RecordSpool, peak_rss_mib

    n = (os.cpu_count() or 1) if shards is None else shards
    if n == 0:
        return _run_inline(spec, progress, on_interrupt, on_give_up, on_storm)
    ranges = split_macs(spec, n)
    # pickled here, unpickled by the shard where it can say a failure (_child): unpickling a FleetSpec
    # imports the phones' modules, and one that fails there was a traceback, the shard dead before its code
    spec_bytes = pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL)
    ctx = mp.get_context("spawn")
    pipes = [ctx.Pipe(duplex=False) for _ in ranges]  # (parent's reading end, shard's writing end)
    orders = [ctx.Pipe(duplex=False) for _ in ranges]  # (shard's reading end, parent's writing end)
    inbox = worker_pipes.Inbox({i: r for i, (r, _) in enumerate(pipes)})
    procs = [ctx.Process(target=_child, args=(spec_bytes, r, i, (pipes[i][1], orders[i][0]), start_timeout),
                         name=f"phoneemu-fleet-{i}", daemon=True) for i, r in enumerate(ranges)]
    old_term = term_as_ctrl_c()  # SIGTERM: KeyboardInterrupt here (phoneemu.interrupts)
    done_by: dict[int, tuple[int, int]] = {}
    failing_by: dict[int, dict[str, int]] = {}  # each shard's most common failures, as it last said
    pausing_by: dict[int, int] = {}  # each shard's phones pausing before a CAPF retry, as it last said
    capf_by: dict[int, int] = {}  # each shard's phones booted whose CAPF operation failed, as it last said
    results: dict[int, ShardResult] = {}
    lost: dict[int, LostShard] = {}
    ready: set[int] = set()
    interrupted = False
    spool = RecordSpool()  # the shards' records as they come; those of a shard not done are dropped

    def lose(i: int, why: str) -> None:
        if i in results or i in lost:
            return
        lost[i] = LostShard(shard=i, first_mac=ranges[i][0], last_mac=ranges[i][-1], phones=len(ranges[i]),
                            why=why, macs=ranges[i],
                            reported_done=done_by.get(i, (0, 0))[0])
        if procs[i].is_alive():
            procs[i].kill()  # a shard that reported an error or garbled its pipe: its result is not coming
        if on_lost is not None:
            going = len(procs) - len(results) - len(lost)
            on_lost(lost[i].message() + _others_go_on(going))

    try:
        try:  # the start: an interrupt here (no boot under way) ends the run before the storm
            try:
                start_processes(procs)  # an interrupt in a start: after every start
            finally:  # each shard holds the only copy of its writing end: its exit is the parent's EOF
                worker_pipes.close_after_start(w for _, w in pipes)
                worker_pipes.close_after_start(r for r, _ in orders)
            if on_start is not None:
                on_start([p.pid for p in procs if p.pid is not None])
            limit = time.monotonic() + start_timeout
            while len(ready) < len(procs):
                for i, msg in _get(inbox, limit, procs, "start"):
                    if isinstance(msg, worker_pipes.Closed):
                        if not msg.damaged:  # its pipe ended: so does the process, for its status
                            procs[i].join(_RESULT_GRACE_S)
                        raise PhoneEmuError(f"fleet: shard process {procs[i].name} "
                                            f"{_ended_text(procs[i], msg)} before the storm")
                    if msg[0] == "ready":
                        ready.add(i)
                    elif msg[0] == "error":
                        raise PhoneEmuError(f"fleet shard {i} failed: {msg[1]}")
        except KeyboardInterrupt:  # the shards are killed and reaped below (finally)
            interrupted = True
        if interrupted:
            spool.close()
            return _not_stormed(ranges)
        t0 = time.monotonic()
        budget = spec.max_time_s + 60.0 if spec.max_time_s is not None else run_timeout
        limit = t0 + budget
        ended_at: dict[int, float] = {}  # shards whose process or pipe ended, not yet accounted for
        gave_up_said = False  # on_give_up is told once, for the first shard that gives up
        overran: str | None = None  # the run outlasted its bound: stopped as an interrupt stops it
        if on_storm is not None:
            on_storm()
        _order(orders, "go")
        while len(results) + len(lost) < len(procs):
            try:  # an interrupt can land anywhere in here (a signal handler raises it)
                for i, msg in _get(inbox, limit, procs, "run"):
                    if isinstance(msg, worker_pipes.Closed):
                        if msg.damaged:
                            lose(i, f"sent a damaged message ({msg.why})")
                    elif msg[0] == "progress":
                        done_by[i] = (msg[1], msg[2])
                        failing_by[i] = _failing(msg[3] if len(msg) > 3 else None)
                        pausing_by[i] = _count(msg[4] if len(msg) > 4 else None)
                        capf_by[i] = _count(msg[5] if len(msg) > 5 else None)
                        if progress is not None:
                            progress(sum(d for d, _ in done_by.values()), sum(o for _, o in done_by.values()),
                                     spec.count, time.monotonic() - t0, failing=_merged(failing_by),
                                     pausing=sum(pausing_by.values()), capf_failed=sum(capf_by.values()))
                    elif msg[0] == "gave_up":
                        if on_give_up is not None and not gave_up_said:
                            gave_up_said = True
                            on_give_up(str(msg[1]) if len(msg) > 1 else "")
                    elif msg[0] == "records":
                        spool.add(i, map(BootRecord.from_dict, msg[1]))
                    elif msg[0] == "done":
                        lost.pop(i, None)  # its result made it after all
                        results[i] = ShardResult.from_state(msg[1])
                    elif msg[0] == "error":
                        lose(i, f"failed: {msg[1]}")
                now = time.monotonic()
                # each shard's own pipe: the others cannot hide its end
                for i in worker_pipes.ended_workers(procs, inbox, skip=results.keys() | lost.keys(),
                                                    ended_at=ended_at, now=now, grace=_RESULT_GRACE_S):
                    code = procs[i].exitcode
                    lose(i, _ended_text(procs[i], inbox.closed.get(i))
                         + ("" if code is not None and code < 0 else " without its result"))
            except KeyboardInterrupt:
                if interrupted:
                    raise  # the second one aborts
                interrupted = True
                _order(orders, "stop")
                limit = min(limit, time.monotonic() + interrupt_grace)
                if on_interrupt is not None:
                    on_interrupt()
            except PhoneEmuError:
                if time.monotonic() < limit:
                    raise  # not _get's limit
                if interrupted and overran is None:
                    raise KeyboardInterrupt from None  # the boots under way did not end in the grace period
                if overran is None:  # the run's bound: no new boot, the boots under way may finish
                    overran = f"the run took longer than {budget:g} s"
                    _order(orders, "stop")
                    limit = time.monotonic() + interrupt_grace
                    if on_overrun is not None:
                        on_overrun(overran)
                    continue
                # the boots under way did not end in their grace period either (a Ctrl-C during it too: it
                # asked for what the overrun was doing, and aborted the run, its summary lost)
                for i in range(len(procs)):
                    lose(i, f"did not finish its boots under way {interrupt_grace:g} s after {overran}")
        for p in procs:
            p.join(10.0)
    except BaseException:
        spool.close()
        raise
    finally:
        _stop(procs)
        inbox.close()
        for _, w in orders:
            w.close()
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    ordered = [results[i] for i in sorted(results)]
    merged = FleetMetrics.merged(r.metrics for r in ordered)
    merged.peak_rss["parent"] = peak_rss_mib()
    spool.keep(sorted(results))
    return FleetResult(metrics=merged, shards=ordered, records=spool,
                       interrupted=interrupted, lost=[lost[i] for i in sorted(lost)], overran=overran)


def interrupted_before_storm(spec: FleetSpec, shards: int | None = None) -> FleetResult:
    """The result of a run interrupted before :func:`run_fleet` started a shard (``fleet boot``: Ctrl-C
    as it prints its banner): as one interrupted while its shards were starting, no phone booted, each
    shard's phones not started."""
    n = (os.cpu_count() or 1) if shards is None else shards
    return _not_stormed(split_macs(spec, max(1, n)))


def _not_stormed(ranges: Sequence[Sequence[int]]) -> FleetResult:
    """The result of a run interrupted before the storm: no phone booted, each shard's phones not
    started."""
    from phoneemu.fleet.engine import ShardResult
    from phoneemu.fleet.metrics import FleetMetrics, mac_runs, peak_rss_mib

    shards = [ShardResult(shard=i, metrics=FleetMetrics(), not_started=len(r), not_started_runs=mac_runs(r))
              for i, r in enumerate(ranges)]
    merged = FleetMetrics.merged([])
    merged.peak_rss["parent"] = peak_rss_mib()
    return FleetResult(metrics=merged, shards=shards, interrupted=True, before_storm=True)


#: Seconds between the end of a shard's process and the end of its pipe (either order) before it
#: counts as lost all the same (e.g. a process of its own still holds the pipe).
_RESULT_GRACE_S = 5.0


def _others_go_on(going: int) -> str:
    """What the message of a lost shard adds while ``going`` other shards still run."""
    if not going:
        return ""
    return "; the other shard goes on" if going == 1 else f"; the other {going} shards go on"


def _exit_text(code: int | None) -> str:
    """``killed by SIGKILL`` / ``exited with status 1``."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def _ended_text(p: Any, closed: worker_pipes.Closed | None) -> str:
    """How shard process ``p`` ended: its exit status, else what became of its pipe."""
    if p.exitcode is not None:
        return _exit_text(p.exitcode)
    if closed is not None and closed.damaged:
        return f"sent a damaged message ({closed.why})"
    return "closed its pipe"


def _get(inbox: worker_pipes.Inbox, limit: float, procs: list[Any], phase: str) -> list[tuple[int, Any]]:
    """The messages that came within half a second (none: time to look at the shards; a shard's end
    wakes us at once), or PhoneEmuError when ``limit`` passed."""
    left = limit - time.monotonic()
    if left <= 0:
        running = [p.name for p in procs if p.exitcode is None]
        raise PhoneEmuError(f"fleet: shards did not finish the {phase} phase in time "
                            f"(still running: {', '.join(running) or 'none'})")
    return inbox.wait(min(0.5, left), [p.sentinel for p in procs if p.exitcode is None])


def _run_inline(spec: FleetSpec, progress: ProgressFn | None,
                on_interrupt: Callable[[], None] | None = None,
                on_give_up: Callable[[str], None] | None = None,
                on_storm: Callable[[], None] | None = None) -> FleetResult:
    """The single shard in this process; Ctrl-C/SIGTERM as in the module docstring (main thread only)."""
    from phoneemu.fleet.engine import fleet_macs, run_shard
    from phoneemu.fleet.metrics import FleetMetrics

    t0 = time.monotonic()
    stop = threading.Event()

    def on_progress(done: int, ok: int, failing: dict[str, int], pausing: int, capf_failed: int) -> None:
        if progress is not None:
            progress(done, ok, spec.count, time.monotonic() - t0, failing=failing, pausing=pausing,
                     capf_failed=capf_failed)

    def on_signal(_sig: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt  # the second one aborts
        stop.set()
        if on_interrupt is not None:
            on_interrupt()

    handlers: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            handlers[sig] = signal.signal(sig, on_signal)
    if on_storm is not None:  # from here a Ctrl-C stops the run gracefully (on_signal)
        on_storm()
    try:
        macs = fleet_macs(spec)
        res = run_on(spec.event_loop, run_shard(spec, macs, on_progress=on_progress, should_stop=stop.is_set,
                                                on_give_up=on_give_up))
    finally:
        for sig, old in handlers.items():
            signal.signal(sig, old)
    merged = FleetMetrics.merged([res.metrics])
    return FleetResult(metrics=merged, shards=[res], records=list(res.records), interrupted=stop.is_set())
