"""Signal dispositions as phoneemu's commands set them, for tests that send themselves a Ctrl-C or SIGTERM
(one context manager: the fixtures of those test modules were copies), and the probe that runs a command
sending itself a SIGTERM at a chosen moment (the boot and other commands' tests had a copy each)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from phoneemu.interrupts import term_as_ctrl_c


@contextlib.contextmanager
def signals_as_commands_set_them(sigint: Any = signal.default_int_handler) -> Iterator[None]:
    """SIGINT ``sigint`` (Python's handler: KeyboardInterrupt) and SIGTERM a Ctrl-C (:func:`term_as_ctrl_c`),
    as ``phoneemu.cli.main`` has them; both put back after the block."""
    old_term, old_int = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, sigint)
    term_as_ctrl_c()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)


#: ``python -c SIGTERM_PROBE MOMENT ARGV...``: ``phoneemu ARGV`` that sends itself a SIGTERM at ``MOMENT``
#: (one of :data:`SIGTERM_MOMENTS`), saying ``SIGTERM sent`` on stderr when it does.
SIGTERM_PROBE = """\
import functools, importlib, os, signal, sys
from phoneemu import interrupts
from phoneemu.cli import main

def sigterm():
    sys.stderr.write("SIGTERM sent\\n")
    os.kill(os.getpid(), signal.SIGTERM)

def loops_own(handler):  # asyncio.run's SIGINT handler, or asyncio_run's
    return isinstance(handler, getattr(interrupts, "_MainTaskStop", ())) or (
        isinstance(handler, functools.partial) and getattr(handler.func, "__name__", "") == "_on_sigint")

moment = sys.argv[1]
if moment == "cli-start":  # the parser imports the command modules
    real_import = importlib.import_module
    def import_then_sigterm(name, *args, **kwargs):
        if name.startswith("phoneemu.commands."):  # the command's own module, the parser importing it
            importlib.import_module = real_import
            sigterm()
        return real_import(name, *args, **kwargs)
    importlib.import_module = import_then_sigterm
elif moment == "owner-file":  # boot's temporary flash made, its owner file not yet written
    from phoneemu import tempdirs
    identity = tempdirs._identity
    def signalled_identity(pid):
        sigterm()
        return identity(pid)
    tempdirs._identity = signalled_identity
elif moment == "flash-made":  # boot's temporary flash whole, handed back to boot
    from phoneemu.commands import boot
    make = boot.make_owned_tempdir
    def make_then_sigterm(*args, **kwargs):
        path = make(*args, **kwargs)
        sigterm()
        return path
    boot.make_owned_tempdir = make_then_sigterm
elif moment == "loop-start":  # the event loop's SIGINT handler just set
    real = signal.signal
    def set_then_sigterm(sig, handler):
        old = real(sig, handler)
        if sig == signal.SIGINT and loops_own(handler):
            signal.signal = real
            sigterm()
        return old
    signal.signal = set_then_sigterm
elif moment == "first-step-sigint-ignored":  # a shell's background job; the loop runs its first callback
    import asyncio.events
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    run = asyncio.events.Handle._run
    def sigterm_then_run(handle):
        asyncio.events.Handle._run = run
        sigterm()
        return run(handle)
    asyncio.events.Handle._run = sigterm_then_run
else:
    raise SystemExit("unknown moment " + moment)
sys.exit(main(sys.argv[2:]))
"""
SIGTERM_MOMENTS = ("cli-start", "owner-file", "flash-made", "loop-start", "first-step-sigint-ignored")
_REPO = Path(__file__).resolve().parents[1]


def sigterm_probe(moment: str, argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``phoneemu ARGV`` run in ``cwd`` (also its TMPDIR), sending itself a SIGTERM at ``moment``
    (:data:`SIGTERM_PROBE`); the test fails if it hangs (killed after 30 s)."""
    assert moment in SIGTERM_MOMENTS, moment
    env = {**os.environ, "TMPDIR": str(cwd), "PYTHONPATH": str(_REPO)}
    try:
        return subprocess.run([sys.executable, "-c", SIGTERM_PROBE, moment, *argv], capture_output=True,
                              text=True, timeout=30, cwd=cwd, check=False, env=env)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{argv[:2]} hung after the SIGTERM: {exc.stderr!r}") from None


def assert_sigterm_exited_130(done: subprocess.CompletedProcess[str]) -> None:
    """The probe's moment was met (``SIGTERM sent``), and the command exited 130 with no traceback."""
    assert "SIGTERM sent" in done.stderr, done.stderr  # the moment was met
    assert done.returncode == 130 and "Traceback" not in done.stderr, (done.returncode, done.stderr)


def assert_stopped_as_ctrl_c(done: subprocess.CompletedProcess[str], said_by: str) -> None:
    """Exit 130, ``SAID_BY: interrupted``, no traceback: as a Ctrl-C at any other moment."""
    assert_sigterm_exited_130(done)
    assert f"{said_by}: interrupted" in done.stderr, done.stderr
