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

Each probe sends the SIGTERM itself at its moment, so the moment is met every time
(:func:`tests.signal_rules.sigterm_probe`).
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.signal_rules import assert_stopped_as_ctrl_c, sigterm_probe

HOST = "127.0.0.1"


@pytest.mark.parametrize("moment", ["owner-file", "flash-made", "loop-start", "first-step-sigint-ignored"])
def test_a_sigterm_at_a_boots_delicate_moments_exits_130_and_leaves_no_flash(tmp_path: Path,
                                                                              moment: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # a TFTP that never answers
        silent.bind((HOST, 0))
        argv = ["boot", "--tftp", f"{HOST}:{silent.getsockname()[1]}", "--mac", "001122334455", "--no-http",
                "--timeout", "0.2"]  # not stopped, the boot would end by itself within seconds (exit 1)
        done = sigterm_probe(moment, argv, tmp_path)
    assert_stopped_as_ctrl_c(done, "phoneemu boot")
    assert not list(tmp_path.glob("phoneemu-flash-*"))
