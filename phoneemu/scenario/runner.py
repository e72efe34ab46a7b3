"""Run scenarios: set up the world, execute the steps in order, evaluate expectations.

Steps run strictly in file order. An ``expect`` step evaluates its checks against every
selected phone's *latest* boot report and stored state at that point. A step that cannot be
carried out (e.g. a lab whose port is taken; lab steps on an external cluster are refused earlier,
when the file is loaded) ends the scenario with ERROR and names the step's file:line; remaining
expectations are not evaluated.

Each scenario has a wall-clock limit (``run --timeout``, a file's ``timeout:``): past it the step under way
is cancelled and the scenario is an ERROR naming it, its lab servers closed, and the run goes on
(:mod:`phoneemu.scenario.deadline` states the rule, with what happens to code that cancellation cannot stop).

Closing a scenario (its world's lab servers, then its ``--capture``) cannot cost the run: a world whose
close raises still has its capture closed whole (every packet written, the pcap in place, its note and the
report's capture line said), and the scenario is an ERROR naming what the close raised, after the error it
had already (:func:`_close_failed`); the run goes on with the next scenario.

A Ctrl-C (or SIGTERM) between two scenarios, after the last or while the reports are written loses
nothing either: it is held back outside the scenarios (:func:`run_scenarios`).

What the reports say of a run's times and errors is recorded here: each expectation's seconds (the steps
since the previous one, set-up included for the first), when the scenario started, the step it was in
when its steps ended (an ERROR's report names it) and an internal error's traceback, its last frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from phoneemu.errors import PhoneEmuError, ScenarioError
from phoneemu.interrupts import asyncio_run, sigterm_noted
from phoneemu.scenario import checks
from phoneemu.scenario.deadline import (
    DEFAULT_TIMEOUT_S,
    GRACE_S,
    ScenarioOverrun,
    StepTracker,
    Watchdog,
    hard_stop,
    limit_for,
    seconds_text,
)
from phoneemu.scenario.model import Expectation, Scenario, Step
from phoneemu.scenario.results import CheckResult, ExpectationResult, RunSummary, ScenarioResult
from phoneemu.tempdirs import owned_tempdir
from phoneemu.values import is_ascii_digits, parse_host_port
from phoneemu.words import counted

__all__ = ["RunOptions", "interrupted_error", "new_result", "run_scenario", "run_scenarios", "scenario_start"]

#: Fixed start of the scenario clock for reproducible runs: 2026-06-01T00:00:00Z. A scenario with a real
#: (``external``) cluster starts at the real time instead: that cluster's certificates are dated by it.
DEFAULT_START = 1_780_272_000


def scenario_start(scenario: Scenario, start_time: int | None) -> int:
    """``start_time`` if given; else the real time when a cluster is external, else :data:`DEFAULT_START`."""
    if start_time is not None:
        return start_time
    if any(spec.external is not None for spec in scenario.clusters.values()):
        return int(time.time())
    return DEFAULT_START


LAB_HOST_BASES = range(11, 41)


def lab_host_base_from_env() -> int:
    """``PHONEEMU_LAB_HOST_BASE`` (11..40; unset or empty: 11); any other value is an error naming it."""
    raw = os.environ.get("PHONEEMU_LAB_HOST_BASE", "").strip()
    if not raw:
        return LAB_HOST_BASES.start
    if not is_ascii_digits(raw) or len(raw) > 3 or int(raw) not in LAB_HOST_BASES:
        raise PhoneEmuError(f"got {raw!r}, expected a whole number from {LAB_HOST_BASES.start} to "
                            f"{LAB_HOST_BASES.stop - 1} (lab clusters then listen on 127.0.0.<base>, "
                            "<base+1>, ...); unset it for the default 11",
                            path="PHONEEMU_LAB_HOST_BASE")
    return int(raw)


class RunOptions:
    """``lab_host_base``: lab clusters listen on 127.0.0.<base>, <base+1>, ...; the environment variable
    ``PHONEEMU_LAB_HOST_BASE`` sets it (11..40), so parallel runs on one machine can keep their captures
    apart. ``start_time``: the scenario clock's start (None: see :func:`scenario_start`). ``timeout``:
    each scenario's wall-clock limit in seconds unless its file sets one (0: none); ``grace``: seconds
    after it before blocking code is stopped harder (:mod:`phoneemu.scenario.deadline`).
    ``on_abandon``: called with the summary (the stuck scenario as ERROR, the rest not run) when a
    sequential run must end because a scenario cannot be stopped; the process then exits with status 1.
    None: no such watchdog (a caller of :func:`run_scenarios` keeps its process; a stuck scenario waits).
    ``on_done``: called with the summary when the run has ended, before :func:`run_scenarios` returns,
    a Ctrl-C or SIGTERM held back meanwhile (the command writes its reports there: none is lost to one).
    ``said_by``: what the run's lines on stderr start with (the command as typed, :mod:`phoneemu.cli`
    rules)."""

    def __init__(self, *, capture_dir: Path | None = None, workdir: Path | None = None,
                 start_time: int | None = None, progress: Callable[[str], None] | None = None,
                 lab_host_base: int | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                 grace: float = GRACE_S, on_abandon: Callable[[RunSummary], None] | None = None,
                 on_done: Callable[[RunSummary], None] | None = None, said_by: str = "phoneemu run") -> None:
        if lab_host_base is None:
            lab_host_base = lab_host_base_from_env()
        self.lab_host_base = lab_host_base
        self.timeout = timeout
        self.grace = grace
        self.on_abandon = on_abandon
        self.on_done = on_done
        self.said_by = said_by
        self.capture_dir = capture_dir
        self.workdir = workdir
        self.start_time = start_time
        self.progress = progress


def _label(exp: Expectation) -> str:
    """An expectation's name in the reports (the JUnit test name): its ``label``, else its phones and checks,
    each value as the scenario's YAML writes it (:func:`_as_yaml`: ``locked_out=false``, ``config=[none,
    rejected]``; was Python's ``False``, ``['none', 'rejected']``)."""
    if exp.label:
        return exp.label
    parts = ", ".join(f"{k}={_as_yaml(v)}" for k, v in exp.checks.items())
    return f"{'/'.join(exp.phones)}: {parts}"


def _as_yaml(value: Any) -> str:
    """A check's value as YAML writes it, in flow style: ``true``/``false``, ``null``, ``[a, b]``, ``{k: v}``;
    text and numbers as they are (names in reports: :func:`_label`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_as_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_as_yaml(v)}" for k, v in value.items()) + "}"
    return str(value)


def _evaluate(world: Any, exp: Expectation) -> ExpectationResult:
    """Each check on each selected phone; a phone that failed one: its timeline, its last boot's deciding
    decision and the decision about what each failed check reads (``checks.decision_about``). When more
    phones matched than ``holds_for`` allows (``none``, ``at_most``), the same of each phone that matched,
    about every check, instead: those are the phones its failure names. A bound met explains none (was:
    each phone that did not match, kept and written to the JSON: every phone of a passing ``none``)."""
    result = ExpectationResult(where=exp.where, label=_label(exp), xfail=exp.xfail, holds_for=exp.holds_for)
    handles = world.select(exp.phones)
    failed_by_phone: dict[str, list[str]] = {}
    for handle in handles:
        failed = failed_by_phone.setdefault(handle.mac, [])
        for name, raw_expected in exp.checks.items():
            expected = _with_mac(raw_expected, handle.mac)
            actual, held = checks.evaluate(name, handle, expected)
            result.checks.append(CheckResult(phone=handle.mac, check=name, expected=expected,
                                             actual=actual, held=held))
            if not held:
                failed.append(name)
    if result.bound_met():  # a phone the bound allows not to match is no failure: nothing to explain
        return result
    explain_matched = result.too_many_matched()
    for handle in handles:
        failed = failed_by_phone[handle.mac]
        if explain_matched:
            if not failed:
                _explain(result, handle, list(exp.checks))
        elif failed:
            _explain(result, handle, failed)
    return result


def _explain(result: ExpectationResult, handle: Any, names: list[str]) -> None:
    """Keep what explains ``handle``'s checks ``names``: its timeline, its last boot's deciding decision and
    the decision about what each of those checks reads."""
    result.timelines[handle.mac] = handle.timeline()
    r = handle.report
    if r is not None and r.deciding is not None:
        result.deciding[handle.mac] = r.deciding.summary()
    items = dict.fromkeys(item for check in names if (item := checks.SUBJECTS[check]) is not None)
    if items:
        result.decisions[handle.mac] = {item: checks.decision_about(item, handle) for item in items}


def _with_mac(value: Any, mac: str) -> Any:
    """``{mac}`` in an expected text stands for the phone's MAC (e.g. ``SEP{mac}.cnf.xml.sgn``)."""
    if isinstance(value, str):
        return value.replace("{mac}", mac)
    if isinstance(value, list):
        return [_with_mac(v, mac) for v in value]
    return value


async def _do_step(world: Any, step: Step) -> None:
    a = step.args
    try:
        if step.kind in ("boot", "reset"):
            for _ in range(int(a.get("times", 1))):
                await world.boot(world.select(a["phones"]))
        elif step.kind == "erase":
            for p in world.select(a["phones"]):
                p.phone.erase_trust()
        elif step.kind == "factory-reset":
            for p in world.select(a["phones"]):
                p.phone.factory_reset()
        elif step.kind == "set-key":
            for p in world.select(a["phones"]):
                p.phone.set_symmetric_key(a["key"])
        elif step.kind == "capf":
            for p in world.select(a["phones"]):
                if "auth_string" in a:
                    p.phone.enter_auth_string(a["auth_string"])
            await world.boot(world.select(a["phones"]))
        elif step.kind == "move":
            for p in world.select(a["phones"]):
                p.cluster = a["to"]
                if not a.get("keep_trust", True):
                    p.phone.erase_trust()
                world.register_on(p, a["to"])
        elif step.kind == "clock":
            world.clock.advance(int(a["advance"]))
        elif step.kind == "https":
            await world.https(world.select(a["phones"]), a.get("cluster"), step.where)
        elif step.kind == "sip":
            await world.sip(world.select(a["phones"]), a.get("cluster"), step.where)
        elif step.kind == "call":
            await world.call(world.select(a["phones"]), a.get("cluster"), step.where, to=a["to"],
                             packets=a["packets"])
        elif step.kind == "admin":
            await _admin(world, step)
        elif step.kind == "service":
            h = world.lab(a["cluster"], step.where)
            for svc in [k for k in a if k != "cluster"]:  # tvs, tftp, http, capf, sip, sips, tvs-2 ...
                if a[svc] == "stop":
                    await h.servers.stop_service(svc)
                else:
                    await h.servers.start_service(svc)
        elif step.kind == "network":
            h = world.lab(a["cluster"], step.where)
            fail = [n for pattern in a.get("fail", ()) for n in _expand_names(world, pattern)]
            tftp = a.get("tftp", {})  # the lab TFTP server's retransmission timing (None: its default)
            timeout_ms = tftp.get("timeout_ms")
            h.servers.set_network(loss=a.get("loss", 0.0), delay_s=a.get("delay_ms", 0) / 1000.0,
                                  seed=a.get("seed", 0), fail=fail, tftp_retries=tftp.get("retries"),
                                  tftp_timeout_s=timeout_ms / 1000.0 if timeout_ms is not None else None,
                                  tamper_media=a.get("tamper_media", False),
                                  tamper_signalling=a.get("tamper_signalling", False),
                                  replay_sip=a.get("replay_sip", False))
        elif step.kind == "tamper":
            h = world.lab(a["cluster"], step.where)
            names = _expand_names(world, a["file"])
            if "{mac}" in a["file"]:  # the phones whose file this cluster serves (its registered ones)
                names = [n for n in names if h.cluster.get(n) is not None] or names[:1]  # none: the lab says
            for name in names:
                h.cluster.tamper(name, offset=a.get("offset"))
        else:  # pragma: no cover - the loader only produces known kinds
            raise ScenarioError(f"unknown step {step.kind!r}")
    except ScenarioError as exc:
        if exc.file is None:
            raise ScenarioError(exc.message, file=step.where, path=step.kind) from None
        raise
    except PhoneEmuError as exc:
        raise ScenarioError(f"{step.kind} failed: {exc}", file=step.where) from None


def _expand_names(world: Any, pattern: str) -> list[str]:
    """``SEP{mac}.cnf.xml.sgn`` expands to every phone's MAC (a ``tamper`` step then keeps the files its
    cluster serves); a plain name stays itself."""
    if "{mac}" not in pattern:
        return [pattern]
    return [pattern.replace("{mac}", mac) for mac in world.phones]


async def _admin(world: Any, step: Step) -> None:
    a = dict(step.args)
    op = a.pop("op")
    h = world.lab(a.pop("cluster"), step.where)
    if "phones" in a:
        a["macs"] = [p.mac for p in world.select(a.pop("phones"))]
    reset_phones = bool(a.pop("reset_phones", False))
    if op == "exchange":
        other = world.lab(a.pop("with"), step.where)
        a["other"] = other.cluster
    h.cluster.apply(op, now=world.clock(), **a)
    if reset_phones:  # the cluster restarts the phones pointing at it (Unified CM 10.5 and later)
        await world.boot([p for p in world.phones.values() if p.cluster == step.args["cluster"]])
    if op in ("restart-tvs",):
        await h.servers.stop_service("tvs")
        await h.servers.start_service("tvs")
    if op in ("add-node", "remove-node"):
        await h.servers.sync_nodes()  # a TVS per node; configs list the running nodes' TVS servers


def new_result(scenario: Scenario) -> ScenarioResult:
    return ScenarioResult(name=scenario.name, path=scenario.path, reproduces=scenario.reproduces,
                          tags=list(scenario.tags),
                          phones=sum(g.count for g in scenario.phones.values()))


def _expect_lab_keys(scenario: Scenario) -> None:
    """Have :mod:`phoneemu.crypto.key_supply` start making the fresh keys of the scenario's unseeded
    built-in labs now, while the lab and phone modules load (the first scenario of a run)."""
    from phoneemu.crypto import key_supply
    from phoneemu.crypto.keys import KeySpec

    for spec in scenario.clusters.values():
        if spec.external is None and spec.seed is None:
            with contextlib.suppress(PhoneEmuError):  # a bad key spec is reported when the lab is made
                key_supply.expect(KeySpec.parse(str(spec.options.get("key", "rsa2048"))))


def _cancelled_is_no_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A loop exception handler: a cancelled task is no error to print. A lab server's connection
    handler cancelled at a time limit made Python 3.11's ``start_server`` callback print a
    CancelledError traceback (it asks a cancelled task for its exception; 3.12 does not)."""
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


async def run_scenario(scenario: Scenario, options: RunOptions, result: ScenarioResult | None = None,
                       tracker: StepTracker | None = None) -> ScenarioResult:
    """Run one scenario, filling ``result`` (a new one if None) as expectations are evaluated, so
    that what was evaluated before an interruption is still there for the report. ``tracker`` follows
    the step under way (the time limit's message names it)."""
    asyncio.get_running_loop().set_exception_handler(_cancelled_is_no_error)
    _expect_lab_keys(scenario)
    from phoneemu.scenario.world import World  # imported late: pulls in lab and phone

    if result is None:
        result = new_result(scenario)
    if tracker is None:
        tracker = StepTracker()
    limit = limit_for(scenario, options.timeout)
    started = time.perf_counter()
    result.started_at = time.time()
    with owned_tempdir() as tmp, _removed_if_abandoned(Path(tmp)):
        workdir = Path(tmp) if options.workdir is None else options.workdir / scenario.name
        capture = None
        keylog = None
        if options.capture_dir is not None:
            from phoneemu.net.capture import fifo_wait_teller
            from phoneemu.scenario.capturing import open_capture
            base = options.lab_host_base
            last = min(40, base + max(0, len(scenario.clusters) - 1))
            outside = [parse_host_port(str(spec.external["tftp"]), what="tftp")[0]
                       for spec in scenario.clusters.values() if spec.external is not None]
            capture, keylog = open_capture(options.capture_dir, scenario.name,
                                           hosts=(f"127.0.0.{base}", f"127.0.0.{last}"), external=outside,
                                           on_wait=fifo_wait_teller(options.said_by))
            result.capture = str(capture.path)
        start = scenario_start(scenario, options.start_time)
        world = World(scenario, workdir, start_time=start, keylog=keylog, capture=capture,
                      host_base=options.lab_host_base)
        try:
            async with asyncio.timeout(limit if limit > 0 else None):
                try:
                    await world.start()
                    mark = started  # an expectation's time: the steps since the previous one (set-up too)
                    for index, item in enumerate(scenario.steps):
                        tracker.at(index, item, result.expectations)
                        if isinstance(item, Expectation):
                            evaluated = _evaluate(world, item)
                            now = time.perf_counter()
                            evaluated.duration_s, mark = now - mark, now
                            result.expectations.append(evaluated)
                        else:
                            await _do_step(world, item)
                except PhoneEmuError as exc:
                    result.error = str(exc)
        except TimeoutError:
            result.error = f"timed out after {seconds_text(limit)} s {tracker.text}"
        except ScenarioOverrun:
            result.error = (f"timed out after {seconds_text(limit)} s {tracker.text}; the step did not stop "
                            f"when cancelled (blocking code), it was interrupted {options.grace:g} s later")
        except Exception as exc:  # an internal bug: report it as ERROR and go on with the next scenario
            result.error = f"internal error: {type(exc).__name__}: {exc}"
            result.error_trace = _trace_summary(exc)
            _say_traceback(options.said_by, scenario.name)
        finally:
            result.duration_s = time.perf_counter() - started
            result.last_step = tracker.text
            tracker.closing(result.expectations)
            try:
                await world.close()
            except Exception as exc:  # the capture is closed all the same, the scenario an ERROR saying it
                if result.error is None:
                    result.last_step = tracker.text
                _close_failed(result, exc, options.said_by)
            finally:
                if capture is not None:
                    capture.close()
                    result.capture_stopped = capture.early_stop
    return result


def _close_failed(result: ScenarioResult, exc: Exception, said_by: str) -> None:
    """A world whose close raised ``exc`` (module rules): the scenario's error says it, after the error it
    had already (that one first: what went wrong before); neither a PhoneEmuError nor an OSError (a bug),
    its traceback on stderr."""
    what = str(exc) if isinstance(exc, PhoneEmuError) else f"{type(exc).__name__}: {exc}"
    closing = f"closing its lab servers failed: {what}"
    result.error = closing if result.error is None else f"{result.error}; then {closing}"
    if not isinstance(exc, PhoneEmuError | OSError):
        result.error_trace = result.error_trace or _trace_summary(exc)
        _say_traceback(said_by, result.name)


def _trace_summary(exc: BaseException, *, frames: int = 6) -> list[str]:
    """The last ``frames`` frames of ``exc``'s traceback and its last line, as Python prints them (the
    whole traceback goes to stderr): what a CI page of the ERROR shows."""
    listed = traceback.format_list(traceback.extract_tb(exc.__traceback__)[-frames:])
    return "".join([*listed, *traceback.format_exception_only(exc)]).rstrip("\n").split("\n")


def run_scenarios(scenarios: list[Scenario], options: RunOptions, *, jobs: int = 1) -> RunSummary:
    """Run each scenario in turn (``jobs`` > 1: in worker processes, :mod:`phoneemu.scenario.parallel`).
    Ctrl-C (or SIGTERM, :mod:`phoneemu.interrupts`) stops the run but loses nothing: the scenario under
    way is reported as ERROR (:func:`interrupted_error`, the same words with and without ``jobs``) with
    the expectations it had evaluated and listed in ``summary.stopped`` (with ``jobs``: each worker's),
    the rest are listed as not run, and ``summary.interrupted`` is set (the command then writes its
    reports and exits 130). Outside the scenarios a Ctrl-C is held back (:class:`_HeldOutsideScenarios`):
    between two, the finished ones are kept and the next and the rest not run; after the last, every
    verdict is kept and the run marked interrupted; during ``options.on_done`` see :func:`_ended`. With
    ``jobs`` it stays held for the whole of ``run_parallel``, which takes it where it can stop (was: Python's
    handler given back around it, and a Ctrl-C as it began or returned escaped with every result)."""
    with sigterm_noted() as sigterm, _held_outside_scenarios() as held:
        if jobs > 1 and len(scenarios) > 1 and not held.came:
            from phoneemu.scenario.parallel import run_parallel
            summary = run_parallel(scenarios, options, jobs, sigterm=sigterm,
                                   take_ctrl_c=held.raise_held if held.holding else None)
        else:  # a Ctrl-C held already (before -j's workers started): _run_in_turn runs none
            summary = _run_in_turn(scenarios, options, sigterm, held)
        _ended(summary, options, held)
    if held.came:  # after _ended's last look, before Python's handler was back: not dropped (exit 130)
        summary.interrupted = True
    return summary


def _ended(summary: RunSummary, options: RunOptions, held: _HeldOutsideScenarios) -> None:
    """The run has ended: a Ctrl-C held back since its last scenario marks it interrupted (nothing stopped,
    nothing left: exit 130). Then ``options.on_done`` (the reports): the run's first Ctrl-C is held back
    until it returns, marking the run interrupted then; a second comes out as KeyboardInterrupt (a report
    written into a FIFO nobody reads can still be stopped)."""
    if held.take():
        summary.interrupted = True
    if options.on_done is not None:
        with held.second_raised(had_one=summary.interrupted):
            options.on_done(summary)
    if held.take():
        summary.interrupted = True


class _HeldOutsideScenarios:
    """The SIGINT handler of a run outside its scenarios: a Ctrl-C (or a SIGTERM, which
    :func:`phoneemu.interrupts.term_as_ctrl_c` passes on as one) is noted, where Python's handler would
    raise a KeyboardInterrupt in the run's bookkeeping (the progress line, a new result, the watchdog)
    that escaped :func:`run_scenarios` with every finished scenario's result. :meth:`released` gives a
    scenario Python's handler back. With ``python_handler`` None it holds nothing (``came`` stays False)."""

    def __init__(self, python_handler: Any) -> None:
        self._python_handler = python_handler
        self.came = False
        self._second_raised = False

    def __call__(self, _signum: int, _frame: Any) -> None:
        if self.came and self._second_raised:
            raise KeyboardInterrupt
        self.came = True

    @property
    def holding(self) -> bool:
        """Whether this one is the SIGINT handler of the run (else it holds nothing)."""
        return self._python_handler is not None

    def take(self) -> bool:
        """Whether a Ctrl-C was held back since the last call."""
        came, self.came = self.came, False
        return came

    def raise_held(self) -> None:
        """A Ctrl-C held back since the last look raised here as Python's handler raises it
        (KeyboardInterrupt), where the run can stop."""
        if self.take():
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def second_raised(self, *, had_one: bool) -> Iterator[None]:
        """For the block, a Ctrl-C after one held back (or after ``had_one``: one came, that stopped the
        run) is raised as Python's handler raises it."""
        self.came = self.came or had_one
        self._second_raised = True
        try:
            yield
        finally:
            self._second_raised = False

    @contextlib.contextmanager
    def released(self) -> Iterator[None]:
        """Python's handler for the block (inside a scenario asyncio's takes its place and cancels it); a
        Ctrl-C held back until then comes out at once, a KeyboardInterrupt from the ``with``."""
        if self._python_handler is None:
            yield
            return
        signal.signal(signal.SIGINT, self._python_handler)
        try:
            self.raise_held()
            yield
        finally:
            signal.signal(signal.SIGINT, self)


@contextlib.contextmanager
def _held_outside_scenarios() -> Iterator[_HeldOutsideScenarios]:
    """A :class:`_HeldOutsideScenarios` in force for the block when SIGINT has Python's handler in the main
    thread (as ``phoneemu run`` sets it); otherwise one that holds nothing: an ignored SIGINT stays
    ignored, a caller's own handler stays in force."""
    python_handler = signal.default_int_handler
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGINT) is not python_handler:
        yield _HeldOutsideScenarios(None)
        return
    held = _HeldOutsideScenarios(python_handler)
    signal.signal(signal.SIGINT, held)
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, python_handler)


def interrupted_error(by: str, last_step: str) -> str:
    """The error of a scenario stopped under way by ``by`` (``Ctrl-C``, ``SIGTERM``), naming the step it
    was in at its last report (``in steps[3] (boot, FILE:LINE)``): one wording for a sequential run and
    ``-j`` (whose parent knows a worker's step from its last report)."""
    return f"interrupted ({by}) before the scenario finished; its last report: {last_step}"


def _run_in_turn(scenarios: list[Scenario], options: RunOptions, sigterm: list[bool],
                 held: _HeldOutsideScenarios) -> RunSummary:
    """:func:`run_scenarios` without worker processes (``sigterm``:
    :func:`~phoneemu.interrupts.sigterm_noted`'s note; ``held``: the Ctrl-C held back outside the
    scenarios, each scenario run with it released)."""
    summary = RunSummary()
    started = time.perf_counter()
    for i, sc in enumerate(scenarios, 1):
        if options.progress is not None:
            options.progress(f"[{i}/{len(scenarios)}] {sc.name}")
        result = new_result(sc)
        tracker = StepTracker()
        limit = limit_for(sc, options.timeout)
        abandon = functools.partial(_abandon, summary, options, sc=sc, result=result, tracker=tracker,
                                    limit=limit, rest=scenarios[i:], at=time.perf_counter(), started=started)
        armed = limit > 0 and options.on_abandon is not None
        watchdog = Watchdog(limit + 2 * options.grace if armed else 0, abandon)
        if held.take():  # since the previous one ended: those finished kept, this one and the rest not run
            summary.interrupted = True
            summary.not_run = [s.name for s in scenarios[i - 1:]]
            break
        summary.scenarios.append(result)
        ended: list[bool] = []
        try:
            watchdog.start()
            with held.released(), hard_stop(limit + options.grace if limit > 0 else 0):
                asyncio_run(_to_its_end(run_scenario(sc, options, result, tracker), ended))
        except ScenarioOverrun:  # the signal came while the scenario was closing (or not in its steps)
            result.last_step = tracker.text
            result.error = (f"timed out after {seconds_text(limit)} s {tracker.text}; interrupted "
                            f"{options.grace:g} s later (the lab servers may not all be closed)")
        except KeyboardInterrupt:  # a SIGTERM is noted before it comes out as one
            summary.interrupted = True
            summary.not_run = [s.name for s in scenarios[i:]]
            if not ended:  # under way: stopped; after its end (the loop closing) its verdict is kept
                result.last_step = result.last_step or tracker.text
                result.error = interrupted_error("SIGTERM" if sigterm else "Ctrl-C", result.last_step)
                summary.stopped = [sc.name]
            break
        finally:
            watchdog.stop()
    summary.duration_s = time.perf_counter() - started
    return summary


async def _to_its_end(scenario: Awaitable[ScenarioResult], ended: list[bool]) -> None:
    """Await ``scenario`` (a :func:`run_scenario`); ``ended`` gets True once it has returned uncancelled: a
    Ctrl-C after that (asyncio closing its loop, the time limit's alarm put away) no longer stops it."""
    await scenario
    task = asyncio.current_task()
    if task is not None and not task.cancelling():  # one in its last moment cancelled it: under way
        ended.append(True)


#: The temporary folders of the scenarios under way: the watchdog's last resort ends the process with
#: ``os._exit`` (no ``finally`` runs), so it removes them itself (nothing of a run is left in the
#: system's temporary folder; a ``workdir`` the user asked for is kept).
_TEMPORARY: set[Path] = set()


@contextlib.contextmanager
def _removed_if_abandoned(folder: Path) -> Iterator[None]:
    _TEMPORARY.add(folder)
    try:
        yield
    finally:
        _TEMPORARY.discard(folder)


def _say_traceback(said_by: str, scenario: str) -> None:
    """An internal error's traceback on stderr: a line said by ``said_by`` naming the scenario, then the
    traceback's lines indented (:mod:`phoneemu.cli` rules: a message's further lines)."""
    lines = traceback.format_exc().rstrip("\n").split("\n")
    sys.stderr.write(f"{said_by}: scenario {scenario}: internal error:\n"
                     + "".join(f"  {line}\n" for line in lines))


def _abandon(summary: RunSummary, options: RunOptions, *, sc: Scenario, result: ScenarioResult,
             tracker: StepTracker, limit: float, rest: list[Scenario], at: float, started: float) -> None:
    """The watchdog's last resort (see :mod:`phoneemu.scenario.deadline`): report and end the process."""
    result.error = (f"timed out after {seconds_text(limit)} s {tracker.text}; it could not be stopped "
                    f"{2 * options.grace:g} s later either: the run was abandoned")
    result.last_step = tracker.text
    result.duration_s = time.perf_counter() - at
    summary.duration_s = time.perf_counter() - started
    summary.interrupted = True
    summary.not_run = [s.name for s in rest]
    if options.progress is not None:
        options.progress("")  # the progress line (a terminal's, redrawn) cleared: this line starts anew
    sys.stderr.write(f"{options.said_by}: scenario {sc.name} ({sc.path}) {result.error}; "
                     f"{counted(len(rest), 'scenario')} not run; exit status 1\n")
    try:
        if options.on_abandon is not None:
            options.on_abandon(summary)
    finally:  # the main thread is stuck: nothing else can end the process
        for folder in list(_TEMPORARY):
            shutil.rmtree(folder, ignore_errors=True)
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(1)
