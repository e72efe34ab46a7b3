"""``phoneemu`` command line: a thin dispatcher over ``phoneemu.commands.*``.

Each command module exposes ``register(subparsers)``; it adds its parser and sets
``handler(args) -> int``. Errors of the project print as one line, never a traceback:
exit 2 for bad input/usage, 1 for a check that failed (the command decides), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import re
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

from phoneemu import version_text
from phoneemu.commands._help import tidy
from phoneemu.errors import PhoneEmuError

__all__ = ["build_parser", "main"]

# Order is the order shown in --help.
_COMMAND_MODULES = (
    "run", "boot", "phone", "lab", "inspect", "replay", "predict", "tvs", "fleet", "fuzz", "wireshark",
)

_EPILOG = """\
quick start:
  phoneemu run scenarios/                       the catalogue against the built-in lab cluster
  phoneemu lab init /tmp/lab                    a lab cluster (add --seed N for reproducible keys)
  phoneemu lab phone add /tmp/lab --mac 001122334455
  phoneemu lab serve --dir /tmp/lab --tftp-port 6969 &
  phoneemu boot --tftp 127.0.0.1:6969 --mac 001122334455 --flash /tmp/ph1 --lab /tmp/lab
  phoneemu inspect ITLFile.tlv                  decode and verify a trust list

Each command has its own --help with examples.
"""


_CHOICE_RE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)")


def did_you_mean(parser: argparse.ArgumentParser, message: str) -> str:
    """A hint for a usage error of ``parser``: the nearest option to an unrecognised one, the nearest
    choice to an invalid one (`` (did you mean --flash?)``); "" when nothing is near."""
    choice = _CHOICE_RE.search(message)
    if choice is not None:
        given, options = choice.group(1), re.findall(r"'([^']*)'", choice.group(2))
    elif message.startswith("unrecognized arguments: "):
        words = message.removeprefix("unrecognized arguments: ").split()
        given = next((w.split("=", 1)[0] for w in words if w.startswith("--")), "")
        options = [o for o in parser._option_string_actions if o.startswith("--")]
    else:
        return ""
    near = difflib.get_close_matches(given, options, n=1, cutoff=0.75) if given else []
    return f" (did you mean {near[0]}?)" if near else ""


class _Parser(argparse.ArgumentParser):
    """argparse, whose usage errors suggest the nearest option or choice (every sub-command's too: their
    parsers are made of this class)."""

    def error(self, message: str) -> NoReturn:
        super().error(message + did_you_mean(self, message))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="phoneemu",
        description="Emulated IP-phone trust clients (CTL/ITL, signed and encrypted configs, "
        "TVS, CAPF) and a lab cluster to test them against.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version_text(),
                        help="the version of phoneemu and of what it runs on (Python, cryptography, "
                        "OpenSSL), for a CI log or a bug report")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"phoneemu.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"phoneemu.commands.{name}":
                raise
            continue
        module.register(sub)
    tidy(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # said by the sub-command that was given them, with its usage (argparse: the top one's)
        used: argparse.ArgumentParser = getattr(args, "parser_used", parser)
        used.error(f"unrecognized arguments: {' '.join(extra)}")
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    old_term = _term_as_ctrl_c()
    try:
        return int(handler(args))
    except PhoneEmuError as exc:
        print(f"phoneemu {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"phoneemu {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        print(f"phoneemu {args.command}{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)


def _term_as_ctrl_c() -> Any:
    """SIGTERM (``kill``, a CI time-out) does what Ctrl-C does in every command: it calls the SIGINT
    handler in force (Python's raises KeyboardInterrupt; asyncio's cancels; a command's own defers it), so
    a command keeps what it found, kills what it started and removes its temporary files (``boot``'s
    flash with the MIC key, ``fuzz``'s summary and target processes were lost to a bare SIGTERM). A
    command with a SIGTERM rule of its own (``run``, ``fleet``, ``lab serve``) sets it while it runs.
    The old handler (None outside the main thread: signals are set there only)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_term(_sig: int, frame: Any) -> None:
        handler = signal.getsignal(signal.SIGINT)
        if not callable(handler):  # ignored (a background job) or the default: still stop as Ctrl-C
            raise KeyboardInterrupt
        handler(signal.SIGINT, frame)

    return signal.signal(signal.SIGTERM, on_term)
