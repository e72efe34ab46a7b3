"""A user's in-process target run in a child process: a native crash of it is a finding, not the fuzzer's end.

Rules implemented here (ours: the spec is silent on fuzzing):

* ``--target MODULE:FUNCTION`` is a user's callable; it may wrap a C extension or a ``ctypes`` parser that
  segfaults or aborts. Run in the fuzzer's own process, that killed the fuzzer: the input lost, no finding,
  no summary.json, exit 139. :class:`SupervisedTarget` runs it in a child process forked from the fuzzer
  (POSIX ``fork``; the module already imported, the corpus and mutator shared). The fuzz loop's inputs are
  made and run in the child in batches (:meth:`SupervisedTarget.run_batch`): the child writes the index of
  the input under way, and the counts so far, to memory shared with the fuzzer before each input — no
  message, no system call per input — and stops at ``--runs``, ``--time`` or the first finding, which it
  sends back (the fuzzer makes that input again from the seed and its index, saves and minimises it, and
  starts the next batch after it). Everything else runs one input at a time (:meth:`SupervisedTarget.run`:
  the bytes down a pipe, the outcome back): the minimiser's attempts, ``--regenerate``, ``--replay``. What
  an exception is (a rejection, a crash and its signature), and a hang that ends, are the child's own
  call's, as in process; ``--runs``, ``--time``, Ctrl-C, the counts and summary.json are as they were.
  ``--target phoneemu`` (our own parsers, pure Python over ``cryptography``) stays in process.
* A child that dies while it runs an input is that input's *crash*, as a ``--target-cmd`` crash: ``killed by
  SIGSEGV`` (the signal's name), or ``exit status N`` for one that exited (``os._exit``; ``sys.exit`` is a
  ``SystemExit`` crash, as in process); its detail is the Python traceback ``faulthandler`` wrote in the child
  as it died (the Python frames under way, innermost first), when there is one. Its signature names where too,
  as an in-process crash's (:func:`~phoneemu.fuzz.targets.crash_location`'s rule over those frames): ``killed
  by SIGSEGV at parser.py:123`` — two native bugs in two places are two findings (was: one ``killed by
  SIGSEGV`` for all, the rest counted as its duplicates); without such a frame (killed before faulthandler
  wrote, ``os._exit``, a C function called directly) the signature is how alone (:func:`_native_location`).
  The next input gets a new child. Within the fuzz loop and ``--regenerate``
  (:meth:`SupervisedTarget.session`) the children dump no core (soft ``RLIMIT_CORE`` 0, as a
  ``--target-cmd``'s); ``--replay`` runs with the limits it was given. The child's death is seen by its end (a
  ``pidfd`` on Linux, else ``waitpid`` every :data:`_LOOK_EVERY` s), not only by its pipe's: a process the
  target started (``fork``, a ``multiprocessing`` worker) holds the child's pipes open after it died (was: the
  fuzzer waited for ever, or past ``--time`` called the crash a hang). faulthandler writes without blocking
  and the current thread only: the crash's frames, never a dump of many threads filling the pipe (was: the
  child stuck in its signal handler, the fuzzer waiting for ever).
* Hangs keep the in-process rule (:meth:`~phoneemu.fuzz.targets.PythonTarget.is_hang`): the CPU time is the
  child's (its main thread's, read from ``/proc``; without ``/proc`` the wall-time rule alone). The watch
  (:mod:`phoneemu.fuzz.runwatch`) stops a call under way as before — Ctrl-C, past ``--time``, a minimiser's
  attempt; in a batch the fuzzer itself, from the shared memory — and the child, then left half-way, is
  killed (SIGKILL) and a new one started for the next input: a call stuck in C code for ever is ended too.
  In a batch an input is so stopped as soon as it is a hang, ``--time`` or not (ours; was: with ``--runs``
  alone an endless loop held the run for ever, its progress line falling towards 0 execs/s, the hang found
  only at Ctrl-C): before ``--time`` it is a hang finding like any other (deduplicated, minimised, saved)
  and the run goes on with a new child; past ``--time`` it ends the run, as in process.
* A target whose import started threads (a thread pool, a client library's worker) stays in the fuzzer's
  process, said (:func:`threads_started`, :func:`phoneemu.commands._fuzz_run._supervised`): a forked child has
  none of them, so its calls waiting on them never ended, or each one was a crash (was: every input a
  ``TimeoutError`` crash, or the run stuck).
* The child ignores SIGINT and SIGTERM: a Ctrl-C at the terminal reaches the whole process group, and a
  SIGTERM the fuzzer; the fuzzer decides, and kills the child — never a "crash" of the target. A child dies
  with its parent (Linux ``PR_SET_PDEATHSIG``; elsewhere at its next read of the closed pipe). The fuzzer
  kills its child when the session ends and at :meth:`SupervisedTarget.close`.
* Cost: none per input in a batch that finds nothing (the fuzzer looks at the shared memory every
  :data:`_LOOK_EVERY` s for its progress line); a round trip per finding, and a fork (a few ms) per child
  that died.
"""

from __future__ import annotations

import contextlib
import faulthandler
import math
import mmap
import os
import pickle
import re
import selectors
import signal
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar, cast

from phoneemu.fuzz.runwatch import RunOverrun
from phoneemu.fuzz.targets import (
    Outcome,
    PythonTarget,
    crash_location,
    exception_name,
    frames_location,
    no_core_dumps,
)

__all__ = ["BatchEnd", "SupervisedTarget", "can_supervise", "threads_started"]

_T = TypeVar("_T")
_LEN = struct.Struct("<I")
_READ = 1 << 16
#: the bytes of a dying child's faulthandler traceback a finding keeps (its first: innermost frames first)
_DUMP_LIMIT = 16 << 10
#: seconds a child whose pipe closed is given to be seen dead (waitpid) before it is killed
_REAP_WAIT = 2.0
_REAP_POLL = 0.0001  # the first pause, doubled each time
_PR_SET_PDEATHSIG = 1
#: the signals held back while a child is forked and noted (a stop then leaves no child unknown)
_HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)
#: requests: one input (its length, its bytes); a batch (first index, end or -1, deadline or NaN)
_ONE, _BATCH = b"R", b"B"
_BATCH_ARGS = struct.Struct("<qqd")
#: replies: an outcome; the target raised KeyboardInterrupt; a batch's end (done, a finding, a mutator bug)
_OUTCOME, _INTERRUPTED, _DONE, _FINDING, _MAKE_FAILED = range(5)
#: shared with the child (written before each input of a batch): the index under way, the batch's ok and
#: handled counts so far, its slowest run, and when the input under way began (perf_counter, thread_time)
_SHARED = struct.Struct("<qqqddd")
#: seconds between two looks of the fuzzer at a batch under way (progress, a hang past --time)
_LOOK_EVERY = 0.1
#: how a hang found in a batch before any limit ended (its finding's detail: ``took ... (<this>)``)
_KILLED_AS_HANG = "still running, its process killed once it was a hang"
#: a frame line of faulthandler's dump (``???``: no line number known)
_DUMP_FRAME = re.compile(r'  File "(?P<file>.*)", line (?P<line>\d+|\?\?\?) in (?P<name>.*)')


def can_supervise() -> bool:
    """Whether a target can be run in a child process here (POSIX ``fork``)."""
    return hasattr(os, "fork") and hasattr(signal, "pthread_sigmask")


def threads_started(load: Callable[[], _T]) -> tuple[_T, list[str]]:
    """``load()`` (a target's import) and the names of the threads it started that are still running: a
    child forked later would have none of them (module docstring)."""
    before = set(threading.enumerate())
    loaded = load()
    return loaded, [t.name for t in threading.enumerate() if t not in before and t.is_alive()]


class _ChildDiedError(Exception):
    """The child ended (its pipe closed, or its end seen: :meth:`SupervisedTarget._await_reply`) while it had
    an input."""


class _HungError(Exception):
    """In the fuzzer: the batch's input under way is a hang by the rule before any limit stopped the run."""


def _clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (ValueError, OSError):
        return 100


_TICKS = _clock_ticks()
_FUZZ_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep  # phoneemu/fuzz/: the fuzzer's frames


def _thread_cpu(pid: int) -> float | None:
    """CPU seconds of process ``pid``'s main thread (what ``time.thread_time()`` says in it): ``/proc``'s
    schedstat (nanoseconds), else its stat (clock ticks); None without ``/proc``."""
    try:
        with open(f"/proc/{pid}/task/{pid}/schedstat", "rb") as fh:
            return int(fh.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rpartition(b")")[2].split()
        return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14, 15)
    except (OSError, ValueError, IndexError):
        return None


def _die_with_parent(parent: int) -> None:
    """In the child: killed when the fuzzer ends, however it ends (Linux); already gone: exit now."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:
        os._exit(0)


def _child_ends_waitable() -> None:
    """SIGCHLD ignored (inherited, or set by the target's import) makes the kernel reap each child at once:
    ``waitpid`` then fails (ChildProcessError) and its death could not be told; the default action is put
    back before a child is forked (ours; only the main thread can: elsewhere it stays as it is)."""
    if signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN:
        with contextlib.suppress(ValueError):  # not the main thread
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def _pidfd(pid: int) -> int:
    """A file descriptor readable once process ``pid`` has ended (Linux ``pidfd_open``), else -1."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return -1
    try:
        return int(opener(pid))
    except OSError:  # a kernel before 5.3, or a sandbox refusing it: waitpid every look instead
        return -1


def _read_exactly(fd: int, n: int, head: bytes = b"") -> bytes:
    """``n`` bytes from ``fd`` (``head`` read already); :class:`_ChildDiedError` at end of file first.
    Bounded: each read returns at least one byte or ends it."""
    parts = [head]
    have = len(head)
    while have < n:
        chunk = os.read(fd, min(n - have, _READ))
        if not chunk:
            raise _ChildDiedError
        parts.append(chunk)
        have += len(chunk)
    return b"".join(parts)


def _write_all(fd: int, data: bytes) -> None:
    """All of ``data`` to ``fd`` (a pipe takes 64 KiB at a time); :class:`_ChildDiedError` when its reader has
    gone. Bounded: each write takes at least one byte or fails."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    except BrokenPipeError:
        raise _ChildDiedError from None


def _drain(fd: int, limit: int) -> bytes:
    """What is in the pipe ``fd`` now, at most ``limit`` bytes, without waiting (a process the child started
    may still hold it open)."""
    os.set_blocking(fd, False)
    parts: list[bytes] = []
    have = 0
    with contextlib.suppress(BlockingIOError, OSError):
        while have < limit:
            chunk = os.read(fd, limit - have)
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
    return b"".join(parts)


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"



def _escaped(exc: BaseException, elapsed: float) -> Outcome:
    """The crash of an exception that escaped :meth:`PythonTarget.run` (a ``BaseException`` of the target's
    own, not KeyboardInterrupt): a crash named as any other, not the child's end."""
    where = crash_location(exc.__traceback__)
    return Outcome(status="crash", signature=f"{exception_name(type(exc))} at {where}",
                   detail="".join(traceback.format_exception(exc)), elapsed=elapsed)


def _python_frames(dump: str) -> str:
    """faulthandler's traceback of the dying child, down to the target's call: the frames of the fuzzer
    below it (the loop, the command line) left out."""
    lines: list[str] = []
    for line in dump.splitlines():
        if line.startswith('  File "') and line[8:].startswith(_FUZZ_DIR):
            break
        lines.append(line)
    return "\n".join(lines).rstrip() + "\n"


def _dump_frames(dump: str) -> list[tuple[str, int | None]]:
    """The target's own frames in faulthandler's ``dump`` (file name, line; innermost first): those of the
    current thread (a fatal error's dump lists every thread, that one headed ``Current thread``; ours has
    one, ``Stack``), down to the fuzzer's first. Whole lines only: the dump may be cut mid-line
    (:data:`_DUMP_LIMIT`, or a full pipe), and its last line, unended, is left out."""
    blocks: list[list[tuple[str, int | None]]] = [[]]
    current: list[tuple[str, int | None]] | None = None
    in_target = True  # the block's frames so far are the target's (no fuzzer frame yet)
    for line in dump.split("\n")[:-1]:
        frame = _DUMP_FRAME.fullmatch(line)
        if frame is None:
            if not line.startswith(" ") and line.endswith(":"):  # a thread's header: a new block
                blocks.append([])
                in_target = True
                if line.startswith("Current thread") and current is None:
                    current = blocks[-1]
            continue
        if frame["file"].startswith(_FUZZ_DIR):
            in_target = False
        if in_target:
            lineno = frame["line"]
            blocks[-1].append((frame["file"], int(lineno) if lineno.isdigit() else None))
    if current is not None:
        return current
    return next((block for block in blocks if block), [])


def _native_location(dump: str) -> str | None:
    """Where the child died, in a native crash's signature (module docstring): the target's innermost own
    frame by :func:`~phoneemu.fuzz.targets.crash_location`'s rule (``parser.py:123``: no address, no pid —
    the same place, the same signature, run after run); None without a frame of the target's."""
    frames = _dump_frames(dump)
    return frames_location(frames[::-1]) if frames else None


@dataclass(kw_only=True)
class BatchEnd:
    """What a batch of inputs run in the child came to (:meth:`SupervisedTarget.run_batch`)."""

    #: the input that ended it (a finding's; the one under way when stopped), else the first not run
    index: int
    ok: int  #: inputs before ``index`` that were ok
    handled: int  #: and that were rejected
    slowest: float  #: the slowest of them, seconds
    finding: Outcome | None = None  #: input ``index``'s outcome, when it is a finding
    elapsed: float = 0.0  #: stopped (:attr:`SupervisedTarget.batch_cut`): input ``index``'s seconds so far
    cpu: float = 0.0  #: and its CPU seconds


class SupervisedTarget:
    """``inner`` run in a child process (module docstring); a :class:`~phoneemu.fuzz.targets.Target`, watched
    as an in-process one (:mod:`phoneemu.fuzz.runwatch`), and a batch of the fuzz loop's inputs made and run
    in the child (:meth:`run_batch`)."""

    #: its calls are stopped by the watch, as in process (the child killed then): module docstring
    bounds_own_runs = False

    def __init__(self, inner: PythonTarget) -> None:
        self.inner = inner
        self.name = inner.name
        self.hang_after = inner.hang_after
        self._pid: int | None = None
        self._to_child = -1  # requests (_ONE, _BATCH)
        self._from_child = -1  # replies: a pickle's length, then the pickle
        self._dumps = -1  # what faulthandler writes in the child as it dies
        self._ended = -1  # readable once the child has ended (a pidfd; -1: none, waitpid instead)
        self._status: int | None = None  # the child's wait status, when a look found it ended (reaped)
        self._shared = mmap.mmap(-1, _SHARED.size)  # MAP_SHARED: the children write it, we read it
        self._make: Callable[[int], bytes] | None = None  # run_batch's input maker (the child forked with it)
        self._child_make: Callable[[int], bytes] | None = None
        self._cpu_base = 0.0  # the child's CPU seconds when the call under way began (its last reply's)
        self._busy = False  # a call (run) under way in the child
        self._cut_cpu: float | None = None  # the child's CPU seconds of the last call cut short
        #: the batch stopped by the last KeyboardInterrupt or RunOverrun out of :meth:`run_batch` (else None)
        self.batch_cut: BatchEnd | None = None

    # ------------------------------------------------------------------ the parent's side
    def run(self, data: bytes) -> Outcome:
        """One input run in the child (a minimiser's attempt, ``--replay``, ``--regenerate``)."""
        if self._pid is None:
            self._start()
        self._cut_cpu = None
        t0 = time.perf_counter()
        try:
            self._busy = True
            _write_all(self._to_child, _ONE + _LEN.pack(len(data)) + data)
            reply = self._await_reply()
            self._busy = False
        except _ChildDiedError:
            self._busy = False
            return self._death(time.perf_counter() - t0)
        except BaseException:  # Ctrl-C, a stop of the watch: the child is left half-way, killed
            self._cut_cpu = self._call_cpu()
            self._busy = False
            self._stop()
            raise
        kind, payload, self._cpu_base = reply
        if kind == _INTERRUPTED:  # the target raised KeyboardInterrupt: as in process (the child goes on)
            self._cut_cpu = cast("tuple[float, float]", payload)[1]
            raise KeyboardInterrupt
        assert isinstance(payload, Outcome)
        return payload

    def run_batch(self, make: Callable[[int], bytes], *, first: int, end: int | None, deadline: float | None,
                  on_wait: Callable[[int], None] = lambda _index: None) -> BatchEnd:
        """Inputs ``first``, ``first + 1`` ... made by ``make(index)`` and run in the child, no message
        between two of them (module docstring), until ``end`` (None: no end), ``deadline`` (perf_counter)
        or a finding, which ends the batch (the child's death: a crash); ``on_wait(index under way)`` every
        :data:`_LOOK_EVERY` s meanwhile. An input still under way is stopped once it is a hang: before
        ``deadline`` it ends the batch as its hang finding (the child killed), past it by
        :class:`~phoneemu.fuzz.runwatch.RunOverrun`, as the watch's ``stop_at``. A KeyboardInterrupt
        or RunOverrun out of it leaves the batch so far in :attr:`batch_cut` (the input under way: its
        seconds so far, and the child's CPU seconds in it — :meth:`is_hang` of it), the child killed."""
        self.batch_cut = None
        self._cut_cpu = None
        if self._pid is not None and self._child_make is not make:
            self._stop()  # a child forked before ``make`` was: it has not got it
        self._make = make
        if self._pid is None:
            self._start()
        _SHARED.pack_into(self._shared, 0, first, 0, 0, 0.0, time.perf_counter(), self._cpu_base)
        try:
            _write_all(self._to_child, _BATCH + _BATCH_ARGS.pack(first, -1 if end is None else end,
                                                                 math.nan if deadline is None else deadline))
            kind, payload, self._cpu_base = self._await_reply(deadline, on_wait)
        except _ChildDiedError:
            index, ok, handled, slowest, began, _cpu0 = _SHARED.unpack_from(self._shared)
            return BatchEnd(index=index, ok=ok, handled=handled, slowest=slowest,
                            finding=self._death(time.perf_counter() - began))
        except _HungError:  # a hang before any limit: its finding, and the run goes on (module docstring)
            got = self._cut_short()
            got.finding = self.inner.hang_outcome(got.elapsed, got.cpu, _KILLED_AS_HANG)
            return got
        except BaseException:  # Ctrl-C, past --time: the input under way measured, the child killed
            self.batch_cut = self._cut_short()
            self._cut_cpu = self.batch_cut.cpu
            raise
        index, ok, handled, slowest, extra = cast("tuple[int, int, int, float, Any]", payload)
        got = BatchEnd(index=index, ok=ok, handled=handled, slowest=slowest)
        if kind == _FINDING:
            got.finding = extra
        elif kind == _INTERRUPTED:  # the target raised KeyboardInterrupt itself: as in process
            got.elapsed, got.cpu = extra
            self._cut_cpu = got.cpu
            self.batch_cut = got
            raise KeyboardInterrupt
        elif kind == _MAKE_FAILED:  # the mutator's own bug: raised here, as in process, with its traceback
            make(index)
        return got

    def _cut_short(self) -> BatchEnd:
        """The batch under way stopped: its input under way measured (seconds, the child's CPU seconds in
        it), the child killed (a new one for the next input)."""
        pid, now = self._pid, time.perf_counter()
        cpu_now = None if pid is None else _thread_cpu(pid)
        self._stop()
        index, ok, handled, slowest, began, cpu0 = _SHARED.unpack_from(self._shared)
        return BatchEnd(index=index, ok=ok, handled=handled, slowest=slowest, elapsed=max(0.0, now - began),
                        cpu=0.0 if cpu_now is None else max(0.0, cpu_now - cpu0))

    def _await_reply(self, deadline: float | None = None,
                     on_wait: Callable[[int], None] | None = None) -> tuple[int, object, float]:
        """The child's reply (to one input, or to a batch); meanwhile, in a batch, every
        :data:`_LOOK_EVERY` s, ``on_wait`` and the input under way stopped once it is a hang
        (:class:`_HungError`; past ``deadline``, RunOverrun). Each turn waits a bounded time; the turns end
        with the reply or the child's end (:class:`_ChildDiedError`): its reply pipe closed, or the child
        ended while a process it started holds that pipe (module docstring)."""
        with selectors.DefaultSelector() as sel:
            sel.register(self._from_child, selectors.EVENT_READ)
            if self._ended >= 0:
                sel.register(self._ended, selectors.EVENT_READ)
            while True:
                ready = {key.fd for key, _events in sel.select(_LOOK_EVERY)}
                if self._from_child in ready:  # a reply (written before any end), or the pipe's end
                    return self._reply()
                if ready or (self._ended < 0 and self._has_ended()):
                    raise _ChildDiedError
                if on_wait is None:
                    continue
                index, _ok, _handled, _slowest, began, cpu0 = _SHARED.unpack_from(self._shared)
                on_wait(index)
                now = time.perf_counter()
                if self._pid is None:
                    continue
                cpu = _thread_cpu(self._pid)  # None without /proc: the wall-time rule alone
                if _SHARED.unpack_from(self._shared)[0] != index:
                    continue  # on to the next input meanwhile: its CPU is not this one's, looked at next turn
                if self.inner.is_hang(now - began, 0.0 if cpu is None else cpu - cpu0):
                    raise RunOverrun if deadline is not None and now >= deadline else _HungError

    def _has_ended(self) -> bool:
        """Without a pidfd: whether the child has ended (reaped now, its status kept for :meth:`_death`)."""
        if self._pid is None or self._status is not None:
            return self._status is not None
        done, status = os.waitpid(self._pid, os.WNOHANG)
        if done:
            self._status = status
        return bool(done)

    def _reply(self) -> tuple[int, object, float]:
        """The child's next reply (kind, payload, its CPU seconds then); :class:`_ChildDiedError` at its
        end."""
        head = os.read(self._from_child, _READ)
        if len(head) < _LEN.size:
            head = _read_exactly(self._from_child, _LEN.size, head)
        size = _LEN.unpack_from(head)[0] + _LEN.size
        reply = head if len(head) == size else _read_exactly(self._from_child, size, head)
        kind, payload, cpu = pickle.loads(memoryview(reply)[_LEN.size:])  # noqa: S301  (our own child's)
        return int(kind), payload, float(cpu)

    def _call_cpu(self) -> float:
        """The child's CPU seconds in the call under way (0 when not known)."""
        if self._pid is None:
            return 0.0
        now = _thread_cpu(self._pid)
        return 0.0 if now is None else max(0.0, now - self._cpu_base)

    def is_hang(self, elapsed: float, cpu: float) -> bool:
        """The in-process rule (module docstring), with the child's CPU time: the call's under way, or the
        last one cut short's (``cpu``, the fuzzer's own, says nothing of it)."""
        return self.inner.is_hang(elapsed, self._child_cpu())

    def hang_outcome(self, elapsed: float, cpu: float, how: str) -> Outcome:
        return self.inner.hang_outcome(elapsed, self._child_cpu(), how)

    def _child_cpu(self) -> float:
        if self._busy:
            return self._call_cpu()
        return self._cut_cpu if self._cut_cpu is not None else 0.0

    def _death(self, elapsed: float) -> Outcome:
        """The crash of the input whose child died (module docstring); the child reaped, a new one next."""
        pid = self._pid
        assert pid is not None
        status = self._status if self._status is not None else self._reap(pid)
        self._status = None
        dump = _drain(self._dumps, _DUMP_LIMIT).decode("utf-8", errors="replace")
        self._close_pipes()
        self._pid = None
        if os.WIFSIGNALED(status):
            how = f"killed by {_signal_name(os.WTERMSIG(status))}"
        else:
            how = f"exit status {os.waitstatus_to_exitcode(status)}"
        detail = f"the target's process was {how}\n"
        if dump:
            detail += f"its Python frames then (faulthandler):\n{_python_frames(dump)}"
        where = _native_location(dump)
        signature = how if where is None else f"{how} at {where}"
        return Outcome(status="crash", signature=signature, detail=detail, elapsed=elapsed)

    @staticmethod
    def _reap(pid: int) -> int:
        """The wait status of the child ``pid``, whose pipe has closed: dead by now, or soon; one still alive
        after :data:`_REAP_WAIT` (it closed its pipe itself) is killed."""
        deadline, pause = time.monotonic() + _REAP_WAIT, _REAP_POLL
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            time.sleep(pause)  # its exit is under way: microseconds, as a rule
            pause = min(2 * pause, 0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return os.waitpid(pid, 0)[1]

    def _start(self) -> None:
        """Fork the child (module docstring); the signals that stop a run held back meanwhile, so that the
        child is known (and killed) whatever stops the run."""
        if sys.platform.startswith("linux"):
            import ctypes  # noqa: F401  (imported once here, not in each child: _die_with_parent)
        for stream in (sys.stdout, sys.stderr):  # not written twice, by the child too
            with contextlib.suppress(Exception):
                stream.flush()
        _child_ends_waitable()
        parent = os.getpid()
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
        try:
            req_r, self._to_child = os.pipe()  # not inherited by what the child runs (PEP 446)
            self._from_child, rep_w = os.pipe()
            self._dumps, dump_w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: never returns
                self._child(parent, old_mask, req_r, rep_w, dump_w)
            self._pid = pid
            self._status = None
            self._ended = _pidfd(pid)
            self._child_make = self._make
            self._cpu_base = 0.0
            for fd in (req_r, rep_w, dump_w):
                os.close(fd)
        except BaseException:
            self._close_pipes()
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    def _stop(self) -> None:
        """Kill the child and reap it (idle or half-way: SIGKILL either way, bounded); its pipes closed."""
        pid, self._pid = self._pid, None
        self._busy = False
        if pid is not None and self._status is None:  # (a status kept: reaped already, its pid maybe reused)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self._status = None
        self._close_pipes()

    def _close_pipes(self) -> None:
        for name in ("_to_child", "_from_child", "_dumps", "_ended"):
            fd = getattr(self, name)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, -1)

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """The inner target's session, its children forked inside it (and dumping no core: module
        docstring); the child killed at its end."""
        self._stop()
        try:
            with no_core_dumps(), self.inner.session():
                yield
        finally:
            self._stop()

    def close(self) -> None:
        self._stop()
        self._make = self._child_make = None
        self.inner.close()

    # ------------------------------------------------------------------ the child's side
    def _child(self, parent: int, mask: Iterable[int], req: int, rep: int, dump: int) -> NoReturn:
        """Run requests until the request pipe closes, then exit; never returns (``os._exit``: no atexit of
        the fuzzer's, no buffer of its written twice)."""
        code = 0
        try:
            for fd in (self._to_child, self._from_child, self._dumps):  # the fuzzer's ends: its exit, our EOF
                os.close(fd)
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            _die_with_parent(parent)
            os.set_blocking(dump, False)  # a full pipe loses the rest of the dump, never blocks the death
            faulthandler.enable(file=dump, all_threads=False)  # the crash's thread (module docstring)
            self._serve(req, rep)
        except BaseException:  # the fuzzer gone, or a pipe broken: nothing left to say
            code = 70
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(BaseException):
                    stream.flush()
            os._exit(code)

    def _serve(self, req: int, rep: int) -> None:
        def reply(kind: int, payload: object) -> None:
            for stream in (sys.stdout, sys.stderr):  # what the target printed, out before it is killed
                with contextlib.suppress(Exception):
                    stream.flush()
            body = pickle.dumps((kind, payload, time.thread_time()), protocol=pickle.HIGHEST_PROTOCOL)
            _write_all(rep, _LEN.pack(len(body)) + body)

        while True:
            what = os.read(req, 1)
            if not what:
                return
            if what == _BATCH:
                first, end, deadline = _BATCH_ARGS.unpack(_read_exactly(req, _BATCH_ARGS.size))
                reply(*self._batch(first, end, deadline))
                continue
            size = _LEN.unpack(_read_exactly(req, _LEN.size))[0]
            data = _read_exactly(req, size)
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                reply(_OUTCOME, self.inner.run(data))
            except KeyboardInterrupt:  # raised by the target itself (SIGINT is ignored here)
                reply(_INTERRUPTED, (time.perf_counter() - t0, time.thread_time() - c0))
            except BaseException as exc:  # any other escaping the call: a crash, not our end
                reply(_OUTCOME, _escaped(exc, time.perf_counter() - t0))

    def _batch(self, first: int, end: int, deadline: float) -> tuple[int, object]:
        """In the child: a batch (:meth:`run_batch`), the index under way and the counts so far in the shared
        memory before each input; the reply."""
        run, make, shared = self.inner.run, self._make, self._shared
        assert make is not None
        pack, perf, cpu = _SHARED.pack_into, time.perf_counter, time.thread_time
        timed = not math.isnan(deadline)
        ok = handled = 0
        slowest = 0.0
        index = first
        while (end < 0 or index < end) and (not timed or perf() < deadline):
            t0, c0 = perf(), cpu()
            pack(shared, 0, index, ok, handled, slowest, t0, c0)
            try:
                data = make(index)
            except BaseException:  # the mutator's bug, not the target's: the fuzzer raises it
                return _MAKE_FAILED, (index, ok, handled, slowest, None)
            try:
                outcome = run(data)
            except KeyboardInterrupt:  # raised by the target itself (SIGINT is ignored here)
                return _INTERRUPTED, (index, ok, handled, slowest, (perf() - t0, cpu() - c0))
            except BaseException as exc:
                outcome = _escaped(exc, perf() - t0)
            status = outcome.status
            if status == "ok":
                ok += 1
            elif status == "handled":
                handled += 1
            else:
                return _FINDING, (index, ok, handled, slowest, outcome)
            slowest = max(slowest, outcome.elapsed)
            index += 1
        pack(shared, 0, index, ok, handled, slowest, perf(), cpu())
        return _DONE, (index, ok, handled, slowest, None)
