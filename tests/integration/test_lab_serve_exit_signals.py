"""``lab serve`` stopped by a signal drops another one as the process ends (lab_serve module rules), also with
a thread of the process still running then (a daemon thread: a library's worker, a TVS worker left past its
join). Blocking the signals held for the main thread only: the kernel gave the second SIGTERM to the other
thread, its system default by then (the CLI gives SIGTERM back as it returns): killed, exit -15. Ignored, it
is dropped whichever thread it reaches: exit 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from phoneemu.lab.cluster import LabCluster
from tests.helpers import lab_template, reap

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
WAIT_S = 30.0  # far above a hang; a loaded CI machine must not fail it

template = lab_template("labexitsignals", seed=29, phones={"0011223344E9": {}})

#: ``python -c PROBE ARGV...``: ``phoneemu ARGV`` with a daemon thread running, a SIGTERM sent once lab serve
#: listens, and another from an exit hook that runs after lab serve's
_PROBE = """\
import atexit, os, signal, sys, threading, time
signal.signal(signal.SIGHUP, signal.SIG_DFL)
threading.Thread(target=time.sleep, args=(3600,), name="a library's worker", daemon=True).start()
from phoneemu.commands import lab_serve
listening = lab_serve._print_listening
def listening_then_sigterm(*a):
    listening(*a)
    os.kill(os.getpid(), signal.SIGTERM)
lab_serve._print_listening = listening_then_sigterm
atexit.register(lambda: os.kill(os.getpid(), signal.SIGTERM))
from phoneemu.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_second_sigterm_as_the_process_ends_is_dropped_with_a_thread_running(cluster: LabCluster) -> None:
    argv = ["lab", "serve", str(cluster.root), "--host", HOST, "--tftp-port", "0", "--http-port", "0",
            "--tvs-port", "0", "--capf-port", "0"]
    proc = subprocess.Popen([sys.executable, "-c", _PROBE, *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        try:
            out, err = proc.communicate(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            raise AssertionError("lab serve did not end") from None
    finally:
        reap(proc)
    assert proc.returncode == 0, (proc.returncode, err)  # was: -15, killed by the second SIGTERM
    assert out.endswith("Ctrl-C (SIGINT) or SIGTERM stops\nstopping (SIGTERM)\n"), out
    assert err == ""
