"""``phoneemu boot`` stopped by a SIGTERM at the moments that let one through: exit 130, no traceback, no
temporary flash left (it holds the MIC's private key). The flaky
test_interruptions.py::test_sigterm_stops_boot_and_fuzz_as_ctrl_c_does met them by chance under load:

* while the temporary flash's owner file was written, or as the folder was handed to ``boot``, before
  its ``try`` owned the path: exit 130, the folder left (without its owner file, never swept);
* as ``asyncio.run`` set its SIGINT handler, before it zeroed its count of Ctrl-Cs: the main task was
  cancelled uncounted, a CancelledError traceback and exit 1;
* with SIGINT ignored (a shell's background job), anywhere in asyncio's own code — here as it runs a
  callback: the KeyboardInterrupt raised there left the main task never to be stepped again, and closing
  the loop waited for it for good (``boot`` hung).

Each probe sends the SIGTERM itself at its moment, so the moment is met every time.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

HOST = "127.0.0.1"

_PROBE = """\
import os, signal, sys
from phoneemu import interrupts, tempdirs
from phoneemu.cli import main
from phoneemu.commands import boot

def sigterm():
    sys.stderr.write("SIGTERM sent\\n")
    os.kill(os.getpid(), signal.SIGTERM)

moment = sys.argv[1]
if moment == "owner-file":  # the folder is made, its owner file not yet written
    identity = tempdirs._identity
    def signalled_identity(pid):
        sigterm()
        return identity(pid)
    tempdirs._identity = signalled_identity
elif moment == "flash-made":  # the folder whole, handed back to boot
    make = boot.make_owned_tempdir
    def make_then_sigterm(*args, **kwargs):
        path = make(*args, **kwargs)
        sigterm()
        return path
    boot.make_owned_tempdir = make_then_sigterm
elif moment == "loop-start":  # the event loop's SIGINT handler just set (asyncio's, or ours)
    real = signal.signal
    def set_then_sigterm(sig, handler):
        old = real(sig, handler)
        if (sig == signal.SIGINT and callable(handler) and handler is not signal.default_int_handler
                and not isinstance(handler, interrupts._Held)):
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


@pytest.mark.parametrize("moment", ["owner-file", "flash-made", "loop-start", "first-step-sigint-ignored"])
def test_a_sigterm_at_a_boots_delicate_moments_exits_130_and_leaves_no_flash(tmp_path: Path,
                                                                              moment: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # a TFTP that never answers
        silent.bind((HOST, 0))
        argv = ["boot", "--tftp", f"{HOST}:{silent.getsockname()[1]}", "--mac", "001122334455", "--no-http",
                "--timeout", "0.2"]  # not stopped, the boot would end by itself within seconds (exit 1)
        env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        try:
            done = subprocess.run([sys.executable, "-c", _PROBE, moment, *argv], capture_output=True,
                                  text=True, timeout=30, cwd=tmp_path, check=False, env=env)
        except subprocess.TimeoutExpired as exc:  # killed by subprocess.run
            raise AssertionError(f"boot hung after the SIGTERM: {exc.stderr!r}") from None
    assert "SIGTERM sent" in done.stderr, done.stderr  # the moment was met
    assert done.returncode == 130 and "Traceback" not in done.stderr, (done.returncode, done.stderr)
    assert "interrupted" in done.stderr
    assert not list(tmp_path.glob("phoneemu-flash-*"))
