"""Fuzz targets: an in-process callable, an external command; each run yields an :class:`Outcome`.

Rules implemented here (design §3.7, docs/internals.md "Errors"):

* In process, ``DecodeError`` (and so ``SizeLimitError``), ``VerificationError`` (and so
  ``DecryptionError``) are *handled* rejections; any other exception is a *crash*, deduplicated by
  its type (named with its module, ``struct.error``, unless a built-in or phoneemu's: :func:`exception_name`)
  and the innermost frame of the project (``phoneemu/``, not ``phoneemu/fuzz/``) or, for a
  user's module, the innermost frame outside this package and the standard library (two call
  sites of ``base64.b64decode`` are two findings, each named by the user's line). A run that took more than
  ``hang_after`` seconds of CPU — or, blocked, more than ten times that of wall time — is a *hang*
  (an in-process call cannot be interrupted safely: it is measured and reported; one that never ends,
  at Ctrl-C or past ``--time``: :mod:`phoneemu.fuzz.runwatch`); a run merely preempted on a busy
  machine is not.
* A warning raised inside the target is an exception too when ``warnings_as_errors`` is set (the
  ``phoneemu`` target, like our test suite's ``-W error``): e.g. a deprecation that a future
  library release turns into an error. Inside :meth:`PythonTarget.session` (the fuzz loop) the
  "error" filter is installed once for all inputs and checked before each call; a target that
  changed the filters gets them reset for its next input (perf only: the same rule as per call).
* ``--target phoneemu`` runs what a phone does with the file: trust lists are parsed with every
  record decoded, each record's certificate and key decoded, and ``verify_self``; ``.sgn`` is
  parsed and verified with the corpus TFTP certificate and, when its header names a device config
  (``*.cnf.xml.sgn``) and the signature holds, its body parsed as the config a phone would take
  (and built back to the same config), its CallManagers and SIP digest credentials read (what a
  registering phone reads: spec §H.5, §G.13); ``.enc.sgn`` is parsed, verified and
  decrypted with the corpus phone key; a firmware load (``.loads``, ``.cop.sgn``) is parsed (header
  and manifest) and verified against the corpus image-signing certificate, as ``decide_firmware``
  does; a file that parses must serialise back to the same bytes
  (round-trip oracle, design §3.11). Each stage runs even when an earlier one rejected the
  file (after a successful parse), so one input exercises all of them. Then, whatever those stages
  raised, a trust list, ``.sgn`` or ``.enc.sgn`` is decided by the phone's §G rules, the phone holding the
  corpus's lists, and an acceptance is checked by the acceptance oracle (:mod:`phoneemu.fuzz.acceptance`):
  one that no held key of the role signing that kind of file signed, and that §G does not allow unsigned,
  is a finding of its own, ``accepted-unverified`` (:class:`AcceptedUnverifiedError`; its signature the
  rule id the phone gave and the format), reported before a crash of the earlier stages, which is
  reported as it was (its signature unchanged) before one of the rules. A trust-list record whose
  certificate/key checks passed is not checked again when the same (immutable, memoised) record
  object comes back; a record that failed is checked every time.
* A user's callable (``--target module:function``) is imported with the current directory on the
  import path (as ``python -m`` has it); the exception types of ``--reject-exc`` are its rejections
  (:func:`load_exception_types`), anything else a crash.
* An external command gets the input as a file (``{}`` in the command is replaced by its path,
  or the path is appended). A crash is death by a signal or an exit status in the user's list
  (default: any status >= 128); a run past ``timeout`` is a *hang* (``timeout (> N s)``), killed — a
  target that bounds its own runs (:attr:`CommandTarget.bounds_own_runs`; an in-process hang is stopped by
  the fuzz engine's watch instead: :mod:`phoneemu.fuzz.runwatch`). While a finding is minimised, a run
  still going at the minimiser's end (within what is left of ``--time``) is killed then, before its
  ``timeout``, and raises :class:`AttemptStopped`: not the same finding
  (:meth:`CommandTarget.runs_ending_within`; ours, was: let run up to ``timeout`` past ``--time``). Commands
  run from a list (``shlex.split``), never through a shell. A command timed out or under way at Ctrl-C
  is killed with all it started. ``< {}`` (or ``<{}``) gives it the input on its standard input instead
  (ours; was: ``<`` passed as an argument and the input never read); any other word a shell would take
  as an operator or redirection (``>``, ``2>&1``, ``|``, ``&&``, ``;``) is refused, not passed on, and so
  is a program that is not there or not executable (:func:`command_argv`); a quoted or escaped one
  (``grep '|' {}``, ``sh -c 'cat {}|head'``) is an argument, as in a shell. Each target has an input file
  of its own (``input-XXXX.<suffix>`` in its work folder; was: ``input.<suffix>``, which a second run into
  the same folder overwrote under the first).
  Inside :meth:`CommandTarget.session` (the fuzz loop, ``--regenerate``) the commands dump no core (soft
  ``RLIMIT_CORE`` 0; ours, was: a core file per crash in the working folder, without bound); ``--replay``
  runs with the limits it was given, for a core to debug.
* A device under test (``--serve``) fetches mutants from the lab TFTP server
  (:class:`phoneemu.net.tftp_server.TftpServer`) under the names a phone requests
  (:func:`served_name_matches`); each served input is saved with its seed and every request is
  logged (:class:`ServeSession`). What the device did is read from that log (and, for the emulated
  phone, from its own decisions).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol

from phoneemu import json_doc
from phoneemu.errors import DecodeError, EncodeError, PhoneEmuError, TransportError, VerificationError
from phoneemu.files import atomic_write
from phoneemu.formats import config as config_fmt
from phoneemu.formats.config import DeviceConfig
from phoneemu.fuzz.corpus import Corpus
from phoneemu.interrupts import ctrl_c_deferred
from phoneemu.values import host_port

__all__ = [
    "FINDING_STATUSES",
    "HANDLED",
    "AcceptedUnverifiedError",
    "AttemptStopped",
    "CommandTarget",
    "Outcome",
    "PythonTarget",
    "RoundTripError",
    "ServeSession",
    "Target",
    "command_argv",
    "crash_location",
    "exception_name",
    "frames_location",
    "load_callable",
    "load_exception_types",
    "no_core_dumps",
    "phoneemu_callable",
    "serve_session",
    "served_name_matches",
]

HANDLED: tuple[type[BaseException], ...] = (DecodeError, VerificationError)
Status = Literal["ok", "handled", "crash", "hang", "accepted-unverified"]
#: the outcomes that are findings (an ``accepted-unverified`` one: :mod:`phoneemu.fuzz.acceptance`)
FINDING_STATUSES: frozenset[str] = frozenset({"crash", "hang", "accepted-unverified"})
_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../phoneemu
_FUZZ = os.path.dirname(os.path.abspath(__file__))
#: the bytes of a --target-cmd's stderr a finding keeps (its last ones: where a crash says why)
_STDERR_TAIL = 2000
#: how often a command's stderr reader looks whether the command has exited, seconds (:meth:`CommandTarget.
#: _stderr_tail`: a process it left running may hold its stderr open)
_EXIT_POLL = 0.05
#: at most this many reads (64 KiB each) of what is in a command's stderr pipe once it has exited
_DRAIN_READS = 64


class AttemptStopped(BaseException):
    """Raised in a minimiser's attempt stopped at once: in process, a hang or past the minimiser's time
    (:meth:`phoneemu.fuzz.runwatch.RunWatch.stopping_hangs`); a command still running at the minimiser's
    end (:meth:`CommandTarget.runs_ending_within`). A BaseException: a target's own ``except Exception``
    must not swallow it."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Outcome:
    """Result of one run: ``signature`` is the dedup key of a crash or hang, ``detail`` its story."""

    status: Status
    signature: str = ""
    detail: str = ""
    elapsed: float = 0.0

    @property
    def is_finding(self) -> bool:
        return self.status in FINDING_STATUSES


class Target(Protocol):
    """Something that consumes one input and says what happened."""

    def run(self, data: bytes) -> Outcome: ...

    def session(self) -> contextlib.AbstractContextManager[None]:
        """Entered around a whole fuzz loop: per-loop set-up shared by every :meth:`run`."""
        ...

    def close(self) -> None: ...


_STDLIB = tuple({os.path.abspath(sysconfig.get_paths()[k]) + os.sep for k in ("stdlib", "platstdlib")})
_SITE = tuple({os.path.abspath(sysconfig.get_paths()[k]) + os.sep for k in ("purelib", "platlib")})


def _in_stdlib(path: str) -> bool:
    """A file of the standard library (installed packages, often under it, are not)."""
    return path.startswith(_STDLIB) and not path.startswith(_SITE)


def crash_location(tb: TracebackType | None) -> str:
    """``phoneemu/formats/header.py:123`` of the innermost project frame (see module docstring); for a
    user's module the innermost frame outside this package and the standard library."""
    return frames_location([(f.filename, f.lineno) for f in traceback.extract_tb(tb)])


def frames_location(frames: Sequence[tuple[str, int | None]]) -> str:
    """:func:`crash_location`'s rule over ``(file name, line)`` pairs, outermost first (a dying child's
    faulthandler frames too: :mod:`phoneemu.fuzz.supervise`)."""
    mine = [f for f in frames if os.path.abspath(f[0]).startswith(_PKG + os.sep)
            and not os.path.abspath(f[0]).startswith(_FUZZ + os.sep)]
    others = [f for f in frames if not os.path.abspath(f[0]).startswith(_FUZZ + os.sep)]
    # the user's line that called the standard library, not base64.py:88 for every call site
    users = [f for f in others if not _in_stdlib(os.path.abspath(f[0]))]
    chosen = mine or users or others or list(frames)
    if not chosen:
        return "?"
    filename, lineno = chosen[-1]
    path = os.path.abspath(filename)
    root = os.path.dirname(_PKG)
    shown = os.path.relpath(path, root) if path.startswith(root + os.sep) else os.path.basename(path)
    return f"{shown}:{lineno}"


def exception_name(t: type[BaseException]) -> str:
    """A crash signature's exception type: ``IndexError``, ``DecodeError`` (built-ins and phoneemu's own by
    their bare name), any other module's qualified — ``struct.error``, ``binascii.Error``,
    ``myparser.ParseError`` — so that two modules' ``error`` or ``Error`` are told apart."""
    module = t.__module__
    if module in ("builtins", "phoneemu") or module.startswith("phoneemu."):
        return t.__name__
    return f"{module}.{t.__qualname__}"


_ERROR_ALL = ("error", None, Warning, None, 0)  # what warnings.simplefilter("error") puts first
_WALL_FACTOR = 10  # a blocked (not computing) in-process call is a hang past this many times hang_after


class PythonTarget:
    """Calls ``func(data)``; exceptions in ``handled`` are rejections, anything else a crash."""

    #: its runs are not bounded by itself: an attempt that hangs is stopped by the watch (SIGALRM,
    #: :meth:`phoneemu.fuzz.runwatch.RunWatch.stopping_hangs`), so a hang is minimised only where that
    #: works, with the hang budget (:func:`phoneemu.fuzz.minimize_plan.minimize_plan`)
    bounds_own_runs = False

    def __init__(self, func: Callable[[bytes], object], *, name: str = "python",
                 handled: tuple[type[BaseException], ...] = HANDLED, hang_after: float = 1.0,
                 warnings_as_errors: bool = False) -> None:
        self.func = func
        self.name = name
        self.handled = handled
        self.hang_after = hang_after
        self.warnings_as_errors = warnings_as_errors
        self._session_filters: object = None  # warnings.filters of the open session (compared by identity)

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """The "error" warnings filter installed once for a whole loop (see module docstring)."""
        if not self.warnings_as_errors:
            yield
            return
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            self._session_filters = warnings.filters
            try:
                yield
            finally:
                self._session_filters = None

    def _call(self, data: bytes) -> None:
        if not self.warnings_as_errors:
            self.func(data)
            return
        filters = warnings.filters
        if filters is self._session_filters and filters and filters[0] == _ERROR_ALL:
            self.func(data)
            return
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            self.func(data)

    def run(self, data: bytes) -> Outcome:
        t0, c0 = time.perf_counter(), time.thread_time()
        status: Status = "ok"
        detail = ""
        try:
            self._call(data)
        except AcceptedUnverifiedError as exc:  # the acceptance oracle's finding (module docstring)
            return Outcome(status="accepted-unverified", signature=exc.signature, detail=exc.text,
                           elapsed=time.perf_counter() - t0)
        except self.handled as exc:
            status = "handled"
            detail = type(exc).__name__
        except KeyboardInterrupt:
            raise
        except (Exception, SystemExit) as exc:  # anything else escaping is the finding
            elapsed = time.perf_counter() - t0
            sig = f"{exception_name(type(exc))} at {crash_location(exc.__traceback__)}"
            return Outcome(status="crash", signature=sig, elapsed=elapsed,
                           detail="".join(traceback.format_exception(exc)))
        elapsed = time.perf_counter() - t0
        if elapsed > self.hang_after:
            cpu = time.thread_time() - c0
            if self.is_hang(elapsed, cpu):
                return self.hang_outcome(elapsed, cpu, f"{status}{': ' + detail if detail else ''}")
        return Outcome(status=status, detail=detail, elapsed=elapsed)

    def is_hang(self, elapsed: float, cpu: float) -> bool:
        """The hang rule (module docstring): past ``hang_after`` seconds of CPU, or blocked past
        :data:`_WALL_FACTOR` times it; ``elapsed``/``cpu``: the call's wall and thread CPU seconds."""
        limit = self.hang_after
        return elapsed > limit and (cpu > limit or elapsed > _WALL_FACTOR * limit)

    def hang_outcome(self, elapsed: float, cpu: float, how: str) -> Outcome:
        """The hang finding of a call that took ``elapsed`` seconds (``cpu`` of CPU); ``how`` it ended."""
        return Outcome(status="hang", signature=f"hang in {self.name} (> {self.hang_after:g} s)",
                       detail=f"took {elapsed:.3f} s, {cpu:.3f} s of CPU ({how})", elapsed=elapsed)

    def close(self) -> None:
        return None


_CONFIG_SUFFIX = ".cnf.xml.sgn"
"""A signed file named so (``SEP<MAC>.cnf.xml.sgn``, ``XmlDefault.cnf.xml.sgn``) is a device config."""


class RoundTripError(AssertionError):
    """A parsed file that does not serialise back to its exact bytes (design §3.11 property)."""


class AcceptedUnverifiedError(Exception):
    """The phone's rules accepted a mutant that is neither signed by a key §G lets sign it nor accepted in a
    way §G allows unsigned (:mod:`phoneemu.fuzz.acceptance`): the outcome ``accepted-unverified``, its
    signature naming the rule id the phone gave and the format."""

    def __init__(self, *, fmt: str, rule: str, text: str) -> None:
        super().__init__(f"{fmt}: {rule}: {text}")
        self.fmt = fmt
        self.rule = rule
        self.text = f"accepted-unverified: {fmt}: {text}"

    @property
    def signature(self) -> str:
        return f"accepted by {self.rule} ({self.fmt}), signed by no key allowed to sign it"


def _check_round_trip(fmt: str, data: bytes, again: bytes) -> None:
    if again != data:
        at = next((i for i, (a, b) in enumerate(zip(data, again, strict=False)) if a != b),
                  min(len(data), len(again)))
        raise RoundTripError(f"{fmt}: serialise(parse(b)) != b: first difference at offset {at} "
                             f"(input {len(data)} bytes, rebuilt {len(again)})")


def _check_config_round_trip(cfg: DeviceConfig) -> None:
    """``parse(build(cfg)) == cfg`` for a config the parser took; the rebuilt bytes are not held to the
    size limit (the canonical form can be a little longer than a body just under it). Any error on
    the way back is a finding too, not a rejection: the input was taken."""
    try:
        rebuilt = config_fmt.build(cfg)
        again = config_fmt.parse(rebuilt, limit=max(config_fmt.CONFIG_LIMIT, len(rebuilt)))
    except PhoneEmuError as exc:
        raise RoundTripError(f"sgn: the body's device config does not build and parse back: {exc}") from None
    if again != cfg:
        raise RoundTripError("sgn: the body's device config is not parse(build(config))")


def phoneemu_callable(fmt: str, corpus: Corpus, *, round_trip: bool = True,
                      acceptance: bool = True) -> Callable[[bytes], None]:
    """What a phone does with a file of ``fmt`` (see module docstring), as one callable.

    With ``round_trip`` a file that parses must also serialise back to its exact bytes
    (``serialise(parse(b)) == b``); a difference raises :class:`RoundTripError` (a finding). With
    ``acceptance`` (itl, ctl, sgn, enc) the file is then decided by the phone's §G rules and an acceptance
    checked by the oracle of :mod:`phoneemu.fuzz.acceptance`, whatever the stages before raised: its
    finding (:class:`AcceptedUnverifiedError`) comes first, then a crash of those stages, then one of the
    rules, then their rejection.
    """
    if not acceptance:
        return _stages_callable(fmt, corpus, round_trip=round_trip)
    from phoneemu.fuzz.acceptance import acceptance_stage

    oracle = acceptance_stage(fmt, corpus)
    if oracle is None:
        return _stages_callable(fmt, corpus, round_trip=round_trip)
    handled = HANDLED
    parsed: list[object] = []  # what the stages parsed from the input under way (a trust list, a .sgn)
    stages = _stages_callable(fmt, corpus, round_trip=round_trip, parsed=parsed.append)

    def run_and_decide(data: bytes) -> None:
        first: Exception | None = None
        parsed.clear()
        try:
            stages(data)
        except Exception as exc:  # (a BaseException, AttemptStopped or Ctrl-C, goes on up)
            first = exc
        try:
            oracle(data, parsed[0] if parsed else None)  # the rules take the stages' parse as theirs
        except AcceptedUnverifiedError:
            raise
        except Exception:
            if first is None or isinstance(first, handled):
                raise
        if first is not None:
            raise first

    return run_and_decide


def _stages_callable(fmt: str, corpus: Corpus, *, round_trip: bool,
                     parsed: Callable[[object], None] | None = None) -> Callable[[bytes], None]:
    """:func:`phoneemu_callable`'s stages before the acceptance oracle; ``parsed`` is told the trust list
    (every record decoded) or the ``.sgn`` parsed from the input."""
    from phoneemu.formats import detect as detect_mod
    from phoneemu.formats.header import build_header

    handled = HANDLED
    detect = detect_mod.detect  # .sgn / .enc.sgn only: for trust lists it re-parses the same header
    if fmt in ("itl", "ctl"):
        from phoneemu.formats import trustlist

        # Records whose checks passed, by identity (records are immutable and decoded once per
        # distinct bytes, so the same object would pass again); failures are checked every time.
        passed: dict[int, object] = {}

        def run_trustlist(data: bytes) -> None:
            rejected: BaseException | None = None
            tl = trustlist.parse(data, lazy=False)
            if parsed is not None:
                parsed(tl)
            for rec in tl.records:
                if passed.get(id(rec)) is rec:
                    continue
                try:
                    if rec.certificate is not None:
                        rec.x509()
                    if rec.public_key is not None or rec.certificate is not None:
                        rec.public_key_obj()
                    rec.sha1_fingerprint()
                except handled as exc:
                    rejected = exc
                    continue
                if len(passed) >= 512:  # as many as the record memo keeps
                    passed.clear()
                passed[id(rec)] = rec
            if round_trip:
                _check_round_trip(fmt, data, trustlist.serialise(tl))
            _ = tl.is_empty
            tl.verify_self()
            if rejected is not None:
                raise rejected

        return run_trustlist
    if fmt == "sgn":
        from phoneemu.formats import signed

        cert = corpus.verify_cert

        def run_sgn(data: bytes) -> None:
            detect(data)
            sf = signed.parse(data)
            if parsed is not None:
                parsed(sf)
            if round_trip:
                _check_round_trip(fmt, data, signed.serialise(sf))
            signed.verify(sf, cert)
            if sf.header.filename.endswith(_CONFIG_SUFFIX):  # a phone parses it next (spec §C.1, §C.2)
                cfg = config_fmt.parse(sf.body)
                if round_trip:
                    _check_config_round_trip(cfg)
                # and, registering, reads its CallManagers and digest credentials (spec §H.5, §G.13)
                config_fmt.call_managers(cfg)
                config_fmt.digest_credentials(cfg)

        return run_sgn
    if fmt == "enc":
        from phoneemu.formats import encrypted

        cert, key = corpus.verify_cert, corpus.recipient.key

        def run_enc(data: bytes) -> None:
            detect(data)
            ef = encrypted.parse(data)
            if round_trip:
                _check_round_trip(fmt, data, build_header(ef.header) + ef.ciphertext)
            rejected: BaseException | None = None
            try:
                encrypted.verify(ef, cert)
            except handled as exc:
                rejected = exc
            encrypted.decrypt_pki(ef, key)
            if rejected is not None:
                raise rejected

        return run_enc
    from phoneemu.fuzz import MESSAGE_FORMATS
    from phoneemu.fuzz.mediamsg import MEDIA_FORMATS, media_callable
    from phoneemu.fuzz.messages import message_callable
    from phoneemu.fuzz.sipmsg import SIP_FORMATS, sip_callable

    if fmt in SIP_FORMATS:
        return sip_callable(fmt)
    if fmt in MEDIA_FORMATS:
        return media_callable(fmt, round_trip=round_trip)
    if fmt in MESSAGE_FORMATS:
        from phoneemu.crypto import certs

        return message_callable(fmt, certs.cert_der(corpus.verify_cert), round_trip=round_trip)
    if fmt == "firmware":
        from phoneemu.formats import firmware

        image_signer = corpus.verify_cert

        def run_firmware(data: bytes) -> None:
            img = firmware.parse(data)
            if round_trip:
                _check_round_trip(fmt, data, build_header(img.header)
                                  + firmware.build_payload(img.load_name, img.payload))
            firmware.verify(img, [image_signer])

        return run_firmware
    raise EncodeError(f"no phoneemu target for format {fmt!r}", path="format")


def _cwd_importable() -> None:
    """Put the current directory first on the import path, as ``python -m`` does, so that a parser
    in the directory the fuzzer runs from is found without installing it."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def _exc_text(exc: BaseException) -> str:
    """``SyntaxError: expected ':' (mod.py, line 1)``: one line, at most 300 characters."""
    text = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def load_callable(spec: str) -> Callable[[bytes], object]:
    """``package.module:function`` → the function (it takes the input bytes); modules are found
    on the import path and in the current directory."""
    mod_name, sep, attr = spec.partition(":")
    if not sep or not mod_name or not attr:
        raise EncodeError(f"target {spec!r} must be 'phoneemu' or 'module:function'", path="--target")
    _cwd_importable()
    try:
        obj: object = importlib.import_module(mod_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise EncodeError(f"cannot load target {spec!r}: {exc}", path="--target") from None
    except (Exception, SystemExit) as exc:  # the module's own code failed while being imported
        raise EncodeError(f"cannot load target {spec!r}: importing {mod_name} raised {_exc_text(exc)}",
                          path="--target") from None
    if not callable(obj):
        raise EncodeError(f"target {spec!r} is not callable", path="--target")
    return obj


def split_type_name(name: str) -> tuple[str, str]:
    """``pkg.mod:Name`` or ``pkg.mod.Name`` → ``("pkg.mod", "Name")``; a bare name is a built-in's
    (``"builtins"``)."""
    mod_name, _, attr = name.rpartition(":") if ":" in name else name.rpartition(".")
    return mod_name or "builtins", attr


def load_exception_types(spec: str) -> tuple[type[BaseException], ...]:
    """``ValueError,mypkg.errors.ParseError`` (or ``mypkg.errors:ParseError``) → the exception classes
    that mean "the target rejected the input" (``--reject-exc``); a bare name is a built-in."""
    out: list[type[BaseException]] = []
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise EncodeError("name at least one exception type, e.g. ValueError,mypkg.ParseError",
                          path="--reject-exc")
    _cwd_importable()
    for name in names:
        mod_name, attr = split_type_name(name)
        try:
            obj: object = importlib.import_module(mod_name)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError, ValueError) as exc:
            raise EncodeError(f"cannot load {name!r}: {exc}", path="--reject-exc") from None
        except (Exception, SystemExit) as exc:  # a relative name, or the module failed while imported
            raise EncodeError(f"cannot load {name!r}: {_exc_text(exc)}", path="--reject-exc") from None
        if not isinstance(obj, type) or not issubclass(obj, BaseException):
            raise EncodeError(f"{name!r} is not an exception class", path="--reject-exc")
        if obj in (BaseException, Exception):
            raise EncodeError(f"{name} would count every crash as a rejection; name the "
                              "parser's own error types", path="--reject-exc")
        if not issubclass(obj, (Exception, SystemExit)):  # KeyboardInterrupt: Ctrl-C must stop the run
            raise EncodeError(f"{name} is not an error a parser raises (Ctrl-C must stop the fuzzer)",
                              path="--reject-exc")
        out.append(obj)
    return tuple(out)


def _signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"signal {num}"


#: a word a shell would take as (or end with) an operator or a redirection (``>``, ``2>&1``, ``&>x``, ``|``,
#: ``&&``, ``;``, ``<x``, ``{}>x``, ``{};``): without a shell it would reach the command as an argument
#: (:func:`command_argv`); ``--sep=|`` or ``a&b`` inside a word are arguments. Matched against the word's
#: shape (:func:`_shell_words`): a quoted or escaped character is never shell syntax
_SHELL_WORD = re.compile(r"^(?:[0-9]*[<>]|&>|[|&;])|;$|\{\}[<>|&;]")
#: the characters a shell's operators and redirections are made of (:data:`_SHELL_WORD`)
_OPERATOR_CHARS = frozenset("<>|&;")
_BLANKS = " \t\r\n"  # what shlex.split splits words at


def _shell_words(command: str) -> list[tuple[str, str]]:
    """Each word of ``command`` as :func:`shlex.split` gives it, with its *shape*: the word with every
    quoted or backslash-escaped ``< > | & ;`` made ``_`` — what a shell would still read as syntax
    (``grep '|' {}``, ``awk -F\\; ...``, ``sh -c 'cat {}|head'`` are arguments, as in a shell; was: the
    quotes dropped first, each refused as shell syntax, and ``cat '<' {}`` taken as ``cat < {}``). Same
    rules as shlex (POSIX mode): in double quotes a backslash escapes only ``"`` and ``\\``; ``''`` is a
    word. ``command`` has balanced quotes (``shlex.split`` took it)."""
    words: list[tuple[str, str]] = []
    word: list[str] = []
    shape: list[str] = []
    in_word = False
    quote = ""
    i = 0
    while i < len(command):
        c = command[i]
        i += 1
        if quote:
            if c == quote:
                quote = ""
                continue
            if c == "\\" and quote == '"' and i < len(command) and command[i] in '"\\':
                c = command[i]
                i += 1
            word.append(c)
            shape.append("_" if c in _OPERATOR_CHARS else c)
        elif c in _BLANKS:
            if in_word:
                words.append(("".join(word), "".join(shape)))
                word, shape, in_word = [], [], False
        else:
            in_word = True
            if c in "'\"":
                quote = c
            elif c == "\\" and i < len(command):
                word.append(command[i])
                shape.append("_" if command[i] in _OPERATOR_CHARS else command[i])
                i += 1
            else:
                word.append(c)
                shape.append(c)
    if in_word:
        words.append(("".join(word), "".join(shape)))
    return words


def _split_command(command: str | Sequence[str]) -> list[tuple[str, str]]:
    """The words of ``--target-cmd`` with their shapes (:func:`_shell_words`); a list's words are taken
    as written, unquoted. Unbalanced quotes or a trailing backslash are refused."""
    if not isinstance(command, str):
        return [(w, w) for w in command]
    try:
        shlex.split(command)
    except ValueError as exc:  # unbalanced quotes, a trailing backslash
        raise EncodeError(f"--target-cmd {command!r}: {exc}", path="target-cmd") from None
    return _shell_words(command)


def _stdin_at(words: list[tuple[str, str]]) -> int | None:
    """Where ``< {}`` (or ``<{}``) stands in ``words``, its ``<`` unquoted; None when it does not."""
    for i, (_, shape) in enumerate(words):
        if shape == "<{}" or (shape == "<" and [w for w, _ in words[i + 1:i + 2]] == ["{}"]):
            return i
    return None


def _program_problem(program: str) -> str | None:
    """Why ``program`` cannot be run (said before the run; was: an OSError at its first input), or None."""
    if shutil.which(program) is not None:
        return None
    if os.path.isdir(program) and os.sep in program:
        return "a folder, not a program"
    if os.path.isfile(program):
        return "not an executable file"
    return "no such file" if os.sep in program else "no such program on PATH"


def command_argv(command: str | Sequence[str]) -> tuple[list[str], bool]:
    """``--target-cmd``'s words, and whether it takes the input on its standard input (``< {}`` or
    ``<{}``, taken out of the words); any other shell operator or redirection is refused, naming it: the
    command runs without a shell (module docstring). A quoted or escaped character is an argument, as
    in a shell (:func:`_shell_words`)."""
    words = _split_command(command)
    at = _stdin_at(words)
    if at is not None:
        del words[at:at + (1 if words[at][1] == "<{}" else 2)]
    shell = next((w for w, shape in words if _SHELL_WORD.search(shape)), None)  # a second '< {}' too
    if shell is not None:
        raise EncodeError(f"--target-cmd {command!r}: {shell!r} is shell syntax, but the command runs "
                          "without a shell (each word reaches it as one argument; quote it to mean it as "
                          "one): give the input on its standard input with '< {}', or run a shell "
                          "yourself: sh -c 'CMD \"$0\" ...' {}", path="target-cmd")
    argv = [w for w, _ in words]
    if not argv:
        raise EncodeError("empty --target-cmd", path="--target-cmd")
    problem = _program_problem(argv[0])
    if problem is not None:
        raise EncodeError(f"--target-cmd {command!r}: {argv[0]}: {problem}", path="target-cmd")
    return argv, at is not None


@contextlib.contextmanager
def no_core_dumps() -> Iterator[None]:
    """Within the block, this process and the commands it starts dump no core (soft ``RLIMIT_CORE`` 0), the
    limit it had given back after, however the block ends — a Ctrl-C as the limit is set too (module
    docstring)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    if soft == 0:
        yield
        return
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, hard))
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))


class CommandTarget:
    """Runs an external command on each input file (see module docstring)."""

    #: a hang is a run killed at ``timeout``: its runs are bounded by itself, not watched
    #: (:mod:`phoneemu.fuzz.runwatch`), and a hang is minimised with the hang budget, each attempt that hangs
    #: costing ``timeout`` (:func:`phoneemu.fuzz.minimize_plan.minimize_plan`)
    bounds_own_runs = True

    def __init__(self, command: str | Sequence[str], *, workdir: Path, suffix: str = ".bin",
                 timeout: float = 5.0, crash_exit: Collection[int] | None = None) -> None:
        argv, self.input_on_stdin = command_argv(command)
        self.workdir = workdir
        self._made_workdir = not workdir.exists()  # removed by close() when it made it (and it is empty)
        workdir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="input-", suffix=suffix, dir=workdir)  # its own: module docstring
        os.fchmod(fd, 0o644)  # as a file written with the usual umask: a command run as another user reads it
        os.close(fd)
        self.path = Path(name)
        self.argv = [a.replace("{}", str(self.path)) for a in argv]
        if not self.input_on_stdin and not any("{}" in a for a in argv):
            self.argv.append(str(self.path))
        self.timeout = timeout
        self.crash_exit = frozenset(crash_exit) if crash_exit is not None else None
        self._runs_end: float | None = None  # perf_counter: the end of runs_ending_within's block

    @contextlib.contextmanager
    def runs_ending_within(self, seconds: float) -> Iterator[None]:
        """Within the block, a run still going ``seconds`` from now is killed then, before its ``timeout``,
        and raises :class:`AttemptStopped` (not a hang: module docstring); the minimiser's end."""
        try:
            self._runs_end = time.perf_counter() + seconds
            yield
        finally:
            self._runs_end = None

    def _is_crash_exit(self, rc: int) -> bool:
        if self.crash_exit is not None:
            return rc in self.crash_exit
        return rc >= 128

    def run(self, data: bytes) -> Outcome:
        try:
            self.path.write_bytes(data)
        except OSError as exc:  # a full disk: name the file (a failed write() alone does not)
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None
        t0 = time.perf_counter()
        timed_out = t0 + self.timeout
        stop = timed_out if self._runs_end is None else min(timed_out, self._runs_end)
        if stop <= t0:  # runs_ending_within's end has passed: not started only to be killed
            raise AttemptStopped
        # A new session so that a timeout kills the command and everything it started. A Ctrl-C while
        # Popen waits for the exec would leave the command running, unseen: it waits until Popen returns
        with ctrl_c_deferred() as interrupted, self._stdin() as stdin:
            proc = subprocess.Popen(self.argv, stdin=stdin, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, start_new_session=True)
        try:
            interrupted()  # raises the deferred Ctrl-C here, where the command is killed
            err = self._stderr_tail(proc, stop)
            proc.wait(timeout=max(0.0, stop - time.perf_counter()))
        except subprocess.TimeoutExpired:
            self._kill(proc)
            if stop < timed_out:  # killed at runs_ending_within's end, before its timeout: no hang
                raise AttemptStopped from None
            return Outcome(status="hang", signature=f"timeout (> {self.timeout:g} s)",
                           detail=f"killed after {self.timeout:g} s", elapsed=time.perf_counter() - t0)
        except BaseException:  # Ctrl-C: the command, in a session of its own, is not left running
            self._kill(proc)
            raise
        elapsed = time.perf_counter() - t0
        rc = proc.returncode
        if proc.stderr is not None:
            proc.stderr.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):  # what it left running in the
            os.killpg(proc.pid, signal.SIGKILL)  # background (its session): not left for ever, run after run
        tail = err.decode("utf-8", errors="replace")
        if rc < 0:
            return Outcome(status="crash", signature=f"killed by {_signal_name(-rc)}", detail=tail,
                           elapsed=elapsed)
        if self._is_crash_exit(rc):
            return Outcome(status="crash", signature=f"exit status {rc}", detail=tail, elapsed=elapsed)
        return Outcome(status="ok" if rc == 0 else "handled", detail=f"exit status {rc}", elapsed=elapsed)

    def _stderr_tail(self, proc: subprocess.Popen[bytes], stop: float) -> bytes:
        """The last :data:`_STDERR_TAIL` bytes the command writes to stderr, read until it closes it or
        exits (memory bounded whatever it writes: ``communicate`` kept a gigabyte); TimeoutExpired past
        ``stop`` (perf_counter: the command's time, or the end of :meth:`runs_ending_within`). Once the
        command has exited, what is already in the pipe is read and no more: a process it started and left
        running (``cmd &``, a daemon in a session of its own) holds the pipe open, and was waited for until
        ``stop`` — a command that exited at once was a hang (ours)."""
        assert proc.stderr is not None
        tail = bytearray()
        fd = proc.stderr.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            exited = False
            drained = 0
            while True:
                left = stop - time.perf_counter()
                if left <= 0:
                    raise subprocess.TimeoutExpired(self.argv, self.timeout)
                if not exited and proc.poll() is not None:
                    exited = True  # its own writes are all in the pipe now: read them, not its children's
                if exited:
                    drained += 1
                    if drained > _DRAIN_READS or not sel.select(0):
                        return bytes(tail)
                elif not sel.select(min(left, _EXIT_POLL)):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    return bytes(tail)
                tail += chunk
                del tail[:-_STDERR_TAIL]

    @staticmethod
    def _kill(proc: subprocess.Popen[bytes]) -> None:
        """Kill the command and everything it started (its session), and reap it; its stderr is closed, not
        read to its end (a process it started in a session of its own may hold it open for ever: was
        ``communicate``, which waited for it — the fuzzer stuck)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.stderr is not None:
            proc.stderr.close()
        proc.wait()

    @contextlib.contextmanager
    def _stdin(self) -> Iterator[int]:
        """The command's standard input: the input file with ``< {}``, else nothing (end of file)."""
        if not self.input_on_stdin:
            yield subprocess.DEVNULL
            return
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            yield fd
        finally:
            os.close(fd)

    def session(self) -> contextlib.AbstractContextManager[None]:
        """The fuzz loop's commands (and their minimising) dump no core: module docstring."""
        return no_core_dumps()

    def close(self) -> None:
        self.path.unlink(missing_ok=True)
        if self._made_workdir:  # no empty .work left in --out, --regenerate's folder or the current one
            with contextlib.suppress(OSError):
                self.workdir.rmdir()


# --------------------------------------------------------------------------- device under test
_NAME_RULES: dict[str, re.Pattern[str]] = {
    "itl": re.compile(r"^(ITLSEP[0-9A-F]{12}\.tlv|ITLFile\.tlv)$", re.IGNORECASE),
    "ctl": re.compile(r"^(CTLSEP[0-9A-F]{12}\.tlv|CTLFile\.tlv)$", re.IGNORECASE),
    "sgn": re.compile(r"^(?!.*\.enc\.sgn$).+\.sgn$", re.IGNORECASE),
    "enc": re.compile(r"^.+\.enc\.sgn$", re.IGNORECASE),
    "firmware": re.compile(r"^.+\.(loads|sbn|cop\.sgn|sha512)$", re.IGNORECASE),
    "sip-response": re.compile(r"^REGISTER( SEP[0-9A-F]{12})?$", re.IGNORECASE),  # fuzz.sipserve
}


def served_name_matches(fmt: str, name: str, mac: str | None = None) -> bool:
    """Whether a phone's request for ``name`` gets a mutant of ``fmt`` (spec §B.1, §C.2, §C.6).

    Trust lists: ``CTLSEP<MAC>.tlv`` / ``ITLSEP<MAC>.tlv`` and the generic ``CTLFile.tlv`` /
    ``ITLFile.tlv``; ``.sgn``: any ``*.sgn`` that is not ``*.enc.sgn``; ``.enc.sgn``: ``*.enc.sgn``;
    firmware: ``*.loads``, ``*.sbn``, ``*.cop.sgn``, ``*.sha512`` (spec §D).
    With ``mac`` only names carrying that MAC (or no MAC at all) match.
    """
    base = name.rsplit("/", 1)[-1]
    rule = _NAME_RULES.get(fmt)
    if rule is None or not rule.match(base):
        return False
    if mac is None:
        return True
    macs = re.findall(r"[0-9A-F]{12}", base.upper())
    return not macs or mac.upper() in macs


class ServeSession:
    """Hands out mutants to a device under test through the lab TFTP server.

    ``get(name)`` is the TFTP provider: a matching name gets the next input (index
    ``start_index``, ``start_index + 1`` ...; ``make(index, name)`` builds it for that name), saved
    under ``DIR/served/`` with its seed; other
    names come from ``fallback`` (e.g. a lab cluster's files) or are "not found". Every request
    and its outcome are appended to ``DIR/served/requests.jsonl`` — the observation of the device.
    A file that cannot be written (a full disk: a mutant's copy, the log, a silence's folder) ends the
    session (:attr:`error`, naming it; :meth:`watch` returns): nothing more is served, as a mutant served
    unrecorded could not be reproduced, and a mutant whose copy was not written is not served nor counted
    (ours; was: a traceback a request, each an index used up — "served" though never sent). A silence whose
    folder could not be written is counted, not saved (:attr:`unsaved`), and the way to go on serves its
    mutant again (:attr:`resume_index`).
    """

    def __init__(self, *, fmt: str, make: Callable[[int, str], tuple[bytes, dict[str, object]]], seed: int,
                 out: Path, runs: int | None, start_index: int = 0, mac: str | None = None,
                 fallback: Callable[[str], bytes | None] | None = None,
                 silent_after: float | None = None,
                 commands: Callable[[int, str, Path], dict[str, str]] | None = None) -> None:
        self.fmt = fmt
        self.make = make
        self.seed = seed
        self.dir = out / "served"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "requests.jsonl"
        self.runs = runs
        self.next_index = start_index
        self.start_index = start_index
        self.mac = mac
        self.fallback = fallback
        self.outcomes: Counter[str] = Counter()
        self.requests = 0
        #: a device that asks for nothing at all within this long after it was served a mutant is
        #: reported (it hung, or crashed and did not come back); any request ``get`` sees counts (the
        #: device under test is taken to be the server's only client, or the servers let no other host
        #: through: ``serve_session(allow_peer=...)``, ``--device``); None: not watched
        self.silent_after = silent_after
        self.silences: list[dict[str, object]] = []  # the mutants a silence followed (``check_silence``)
        #: the run indices of the silences whose folder could not be written (:attr:`error`): counted, not
        #: saved; going on serves them again (:attr:`resume_index`)
        self.unsaved: list[int] = []
        #: ``commands(index, name, folder)``: what a silence finding's info.json says to reproduce or
        #: rebuild it (``reproduce``, ``regenerate``, ``note``; the CLI's, which knows the options)
        self.commands = commands
        #: the mutant being watched: index, name, file, when served; None once the device asked again
        self._watched: tuple[int, str, str, float] | None = None
        #: the file not written, and why, that ended the session (class docstring); None while it goes on
        self.error: str | None = None

    def _failed(self, exc: OSError) -> None:
        """The session ends with ``exc``, a file not written (class docstring); the first one is kept."""
        if self.error is None:
            why = exc.strerror or str(exc)
            self.error = f"{exc.filename}: {why}" if exc.filename else why

    @property
    def served(self) -> int:
        return self.next_index - self.start_index

    @property
    def resume_index(self) -> int:
        """The ``--run-index`` that goes on where the session ended: past its last mutant served, or the
        first silence whose folder could not be written (:attr:`unsaved`), so that going on serves that mutant
        again (was: past it, the silence lost)."""
        return min([self.next_index, *self.unsaved])

    @property
    def exhausted(self) -> bool:
        return self.runs is not None and self.served >= self.runs

    def _log(self, entry: dict[str, object]) -> None:
        entry = {"time": round(time.time(), 3), **entry}
        try:
            with self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(json_doc.dumps(entry, sort_keys=True) + "\n")
        except OSError as exc:
            self._failed(OSError(exc.errno, exc.strerror, exc.filename or str(self.log_path)))

    def get(self, name: str) -> bytes | None:
        self.requests += 1
        self._watched = None  # it asked again: it survived the last mutant
        if self.error is not None:  # ending (class docstring): nothing more served
            return None
        if served_name_matches(self.fmt, name, self.mac) and not self.exhausted:
            index = self.next_index
            data, meta = self.make(index, name)
            safe = re.sub(r"[^A-Za-z0-9._-]", "_", name.rsplit("/", 1)[-1])
            path = self.dir / f"{index:06d}-{safe}"
            try:
                atomic_write(path, data)  # a record of what was served: never truncated by a kill
            except OSError as exc:  # not recorded: not served, its index not used up (class docstring)
                self._failed(exc)
                return None
            self.next_index += 1
            self._log({"event": "served", "name": name, "index": index, "seed": self.seed, "size": len(data),
                       "file": path.name, **meta})
            self._watched = (index, name, path.name, time.monotonic())
            return data
        other = self.fallback(name) if self.fallback is not None else None
        self._log({"event": "fallback" if other is not None else "not-served", "name": name})
        return other

    def silence_settled(self) -> bool:
        """The last mutant served has been watched out: the device asked again, or its silence is
        reported."""
        return self._watched is None

    def check_silence(self, now: float | None = None) -> dict[str, object] | None:
        """The finding when the device has asked for nothing in the ``silent_after`` seconds since it was
        served a mutant: that mutant is saved as ``crashes/silent-<index>/input.bin`` with ``info.json``
        (format, seed, run index, the name served, and what ``commands`` adds), and logged; None otherwise
        (not watching, or not yet)."""
        if self.silent_after is None or self._watched is None:
            return None
        index, name, file, served_at = self._watched
        quiet = (time.monotonic() if now is None else now) - served_at
        if quiet < self.silent_after:
            return None
        self._watched = None  # reported once
        folder = self.dir.parent / "crashes" / f"silent-{index:06d}"
        finding: dict[str, object] = {"kind": "silence", "format": self.fmt, "seed": self.seed,
                                      "run_index": index, "index": index, "name": name, "served_file": file,
                                      "silent_s": round(quiet, 1)}
        if self.commands is not None:
            finding.update(self.commands(index, name, folder))
        self.silences.append(finding)  # counted even when its folder cannot be written (an error, then)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(folder / "input.bin", (self.dir / file).read_bytes())
            info = json_doc.dumps(finding, indent=2, sort_keys=True) + "\n"
            atomic_write(folder / "info.json", info.encode())
        except OSError:  # not saved: said so, and going on serves it again (:attr:`resume_index`)
            self.unsaved.append(index)
            raise
        self._log({"event": "silent", "index": index, "name": name, "silent_s": finding["silent_s"]})
        return finding

    def on_http(self, peer: tuple[str, int], _method: str, name: str, status: int) -> None:
        """HTTP 6970 request outcome (the lab HTTP server's ``on_request``)."""
        outcome = {200: "ok", 404: "not-found", 403: "refused"}.get(status, f"http-{status}")
        self.outcomes[outcome] += 1
        self._log({"event": "request", "protocol": "http", "name": name, "outcome": outcome,
                   "peer": host_port(peer[0], peer[1]), "detail": f"HTTP {status}"})

    async def watch(self, *, time_limit: float | None,
                    on_silence: Callable[[dict[str, object]], None] | None = None,
                    busy: Callable[[], bool] = lambda: False) -> bool:
        """Watch the device until the session is over — every mutant served, nothing ``busy`` (a
        transfer under way), the last mutant watched out — or ``time_limit`` seconds passed (False);
        ``on_silence(finding)`` for each silence (:meth:`check_silence`)."""
        import asyncio

        loop = asyncio.get_running_loop()
        deadline = loop.time() + time_limit if time_limit is not None else None
        while deadline is None or loop.time() < deadline:
            try:
                finding = self.check_silence()
            except OSError as exc:  # its folder not written (class docstring)
                self._failed(exc)
            if self.error is not None:
                return False
            if finding is not None and on_silence is not None:
                on_silence(finding)
            if self.exhausted and not busy() and (self.silent_after is None or self.silence_settled()):
                return True
            await asyncio.sleep(0.02)
        return False

    def on_sip(self, peer: str, name: str, detail: str = "") -> None:
        """A SIP request of the device (:mod:`phoneemu.fuzz.sipserve`): ``name`` is ``REGISTER SEP<MAC>``;
        ``detail`` a message that did not parse."""
        outcome = "malformed" if detail else "register"
        self.outcomes[outcome] += 1
        self._log({"event": "request", "protocol": "sip", "name": name, "outcome": outcome, "peer": peer,
                   "detail": detail})

    def on_request(self, event: object) -> None:
        outcome = str(getattr(event, "outcome", "?"))
        self.outcomes[outcome] += 1
        peer = getattr(event, "peer", ("?", 0))
        self._log({"event": "request", "name": getattr(event, "filename", "?"), "outcome": outcome,
                   "peer": host_port(peer[0], peer[1]), "detail": getattr(event, "detail", "")})


async def serve_session(session: ServeSession, *, host: str = "127.0.0.1", port: int = 6969,
                        time_limit: float | None = None, ready: Callable[[int], None] | None = None,
                        timeout: float = 1.0, retries: int = 3, http_port: int | None = None,
                        http_ready: Callable[[int], None] | None = None,
                        on_silence: Callable[[dict[str, object]], None] | None = None,
                        allow_peer: Callable[[str], bool] | None = None) -> None:
    """Run the TFTP server (and with ``http_port`` the HTTP 6970 server, which phones try first,
    spec §H.1) until ``session`` is exhausted (and transfers finished; with ``silent_after``, the last
    mutant watched for a silence too) or time runs out; ``on_silence(finding)`` for each silence.
    ``allow_peer(host)`` False: that host is refused by both servers before ``session`` is asked, so
    it is served nothing and its requests do not count as the device's (``--device``)."""
    import asyncio
    import contextlib

    from phoneemu.net.http import HttpServer
    from phoneemu.net.tftp_server import TftpServer

    server = TftpServer(session.get, host, port, timeout=timeout, retries=retries,
                        on_request=session.on_request, allow_peer=allow_peer)
    async with contextlib.AsyncExitStack() as stack:
        try:  # a host that is not this machine's, a port in use: say which server and where
            await stack.enter_async_context(server)
        except OSError as exc:
            raise TransportError(f"cannot listen for tftp on {host_port(host, port)}: {exc.strerror or exc}",
                                 kind="unreachable") from None
        if http_port is not None:
            try:
                http = await stack.enter_async_context(
                    HttpServer(session.get, host, http_port, on_request=session.on_http,
                               allow_peer=allow_peer))
            except OSError as exc:
                raise TransportError(f"cannot listen for http on {host_port(host, http_port)}: "
                                     f"{exc.strerror or exc}",
                                     kind="unreachable") from None
            if http_ready is not None:
                http_ready(http.port)
        if ready is not None:
            ready(server.port)
        over = await session.watch(time_limit=time_limit, on_silence=on_silence,
                                   busy=lambda: server.active_transfers > 0)
        if over and http_port is not None:
            await asyncio.sleep(0.5)  # the last HTTP response is on its way: let it leave
