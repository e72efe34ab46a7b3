"""Signal dispositions as phoneemu's commands set them, for tests that send themselves a Ctrl-C or SIGTERM
(one context manager: the fixtures of those test modules were copies)."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
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
