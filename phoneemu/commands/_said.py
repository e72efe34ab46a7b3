"""What a command says on stderr: each line starts with the command as typed (``phoneemu fleet boot:
...``, ``phoneemu replay: warning: ...``), as its errors do; a message of several lines has its further
lines indented (two spaces, unless already indented). The rule, and its exceptions, are in
:mod:`phoneemu.cli`'s docstring (ours: no spec section, a CLI convention for grepping CI logs)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from typing import Any

from phoneemu.formats._tlv import printable

__all__ = ["command_of", "lose_to_null", "say", "stderr_text", "teller"]

#: what a line is said by when the command as typed is not known (a Namespace built by hand)
UNKNOWN_COMMAND = "phoneemu"


def command_of(args: argparse.Namespace) -> str:
    """The command as typed (``phoneemu lab phone add``): the prog of the deepest parser chosen
    (``args.parser_used``, :func:`phoneemu.commands._help.tidy`), as :func:`phoneemu.cli.main` names
    it in errors; :data:`UNKNOWN_COMMAND` for arguments no parser made."""
    used = getattr(args, "parser_used", None)
    return used.prog if isinstance(used, argparse.ArgumentParser) else UNKNOWN_COMMAND


def stderr_text(command: str, text: str) -> str:
    """``command: text``, each line escaped (control characters and undecodable bytes as ``\\xHH``: a
    file name from a capture must not drive the terminal), further lines indented by two spaces."""
    first, *rest = text.split("\n")
    lines = [f"{command}: {printable(first)}"]
    lines += [printable(line if line.startswith("  ") else f"  {line}") for line in rest]
    return "\n".join(lines)


def say(args: argparse.Namespace, text: str) -> None:
    """``text`` on stderr, said by the command ``args`` were parsed for (:func:`stderr_text`)."""
    print(stderr_text(command_of(args), text), file=sys.stderr, flush=True)


def teller(command: str) -> Callable[[str], None]:
    """A callback (``on_wait``, ``on_lost`` ...) saying each text it is told on stderr as ``command``."""
    def tell(text: str) -> None:
        print(stderr_text(command, text), file=sys.stderr, flush=True)
    return tell


def lose_to_null(stream: Any) -> None:
    """A standard stream that could not be written (a full disk, the pipe's reader gone): its file
    descriptor pointed at the null device, so that nothing written to it later — Python's flush at exit
    included — fails again (an exit status 120, a traceback); a stream without a descriptor (in memory) is
    left as it is. Used for stderr by :mod:`phoneemu.cli` and for stdout by ``lab serve``."""
    with contextlib.suppress(OSError, ValueError, AttributeError):  # (no descriptor: an in-memory stream)
        fd = stream.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, fd)
        finally:
            os.close(null)
