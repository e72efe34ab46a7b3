"""``phoneemu`` command line: a thin dispatcher over ``phoneemu.commands.*``.

Each command module exposes ``register(subparsers)``; it adds its parser and sets
``handler(args) -> int``. Errors of the project print as one line, never a traceback:
exit 2 for bad input/usage, 1 for a check that failed (the command decides), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
