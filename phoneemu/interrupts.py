"""SIGTERM is a Ctrl-C: one rule for every phoneemu command (ours).

``kill`` and a CI job's time-out send SIGTERM; Python's default for it ends the process at once — no
summary, no report, temporary files (a flash holding a MIC's private key) and child processes left.
:func:`term_as_ctrl_c` makes SIGTERM call the SIGINT handler in force instead: Python's raises
KeyboardInterrupt, asyncio's cancels the main task (so a scenario closes its labs), a command's own
defers it (``fuzz --target-cmd`` while a command starts); with SIGINT ignored (a shell's background job)
or left to the system, KeyboardInterrupt is raised. ``phoneemu.cli.main`` sets it for every command;
``run`` and the fleet's parent set it again around their work (they are also called as functions).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["term_as_ctrl_c"]


def term_as_ctrl_c() -> Any:
    """Set the rule of this module; the old SIGTERM handler (None outside the main thread: signal
    handlers are set there only, and nothing is changed)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_term(_sig: int, frame: Any) -> None:
        handler = signal.getsignal(signal.SIGINT)
        if not callable(handler):
            raise KeyboardInterrupt
        handler(signal.SIGINT, frame)

    return signal.signal(signal.SIGTERM, on_term)
