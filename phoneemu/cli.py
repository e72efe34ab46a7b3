"""``phoneemu`` command line: a thin dispatcher over ``phoneemu.commands.*``.

Each command module exposes ``register(subparsers)``; it adds its parser and sets
``handler(args) -> int``. Errors of the project print as one line, never a traceback:
exit 2 for bad input/usage, 1 for a check that failed (the command decides), 130 on Ctrl-C.
An error's text, a usage error's included, reaches the terminal escaped (control characters and
undecodable bytes as ``\\xHH``): it may name a file whose name came from a capture, a folder of
captures or a hostile server, and such a name must not move the cursor, clear the screen or
forge a line of its own.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import re
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

from phoneemu import version_text
from phoneemu.commands._help import tidy
from phoneemu.errors import PhoneEmuError
from phoneemu.formats._tlv import printable
from phoneemu.interrupts import term_as_ctrl_c

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
        super().error(printable(message + did_you_mean(self, message)))


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
    old_term = term_as_ctrl_c()  # SIGTERM is a Ctrl-C in every command (phoneemu.interrupts)
    try:
        return int(handler(args))
    except PhoneEmuError as exc:
        print(f"phoneemu {args.command}: {printable(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"phoneemu {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 1
    except OSError as exc:
        where = f": {printable(str(exc.filename))}" if exc.filename else ""
        print(f"phoneemu {args.command}{where}: {printable(str(exc.strerror or exc))}", file=sys.stderr)
        return 2
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)

