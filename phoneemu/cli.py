"""``phoneemu`` command line: a thin dispatcher over ``phoneemu.commands.*``.

Each command module exposes ``register(subparsers)``; it adds its parser and sets
``handler(args) -> int``. Errors of the project print as one line (a list of mistakes: one each),
never a traceback, prefixed with the command as typed (``phoneemu lab phone add:``):
exit 2 for bad input/usage, 1 for a check that failed (the command decides), 130 on Ctrl-C — whatever
stderr is: a line that cannot be written there is lost, not the status (:class:`_LosableStderr`).
An error's text, a usage error's included, reaches the terminal escaped (control characters and
undecodable bytes as ``\\xHH``, but the line breaks of a message of several lines, such as the
scenario mistakes of ``run``): it may name a file whose name came from a capture, a folder of
captures or a hostile server, and such a name must not move the cursor or clear the screen.

Every line a command writes on stderr starts with the command as typed, as its errors do (``phoneemu fleet
boot: 3 phones boot as the model ...``, ``phoneemu replay: warning: ...``, ``phoneemu lab show: waiting for
the lab lock ...``), so a CI log can be grepped by command (our convention; the prog of the parser chosen,
``args.parser_used``, is threaded to where a line is printed: :mod:`phoneemu.commands._said`). Exceptions: (a)
a live progress line is as it was (``run``'s, ``predict --fleet-flash``'s and ``replay --all``'s, redrawn on a
terminal, absent elsewhere; ``fleet boot``'s, redrawn on a terminal; its plain line every 5 s in a log is said
by it too, ``phoneemu fleet boot: booted ...``); (b) the further lines of a message of several lines are
indented (two spaces); (c) argparse's usage error keeps its form, a usage line then ``PROG: error: ...``; (d)
``lab serve``'s log is timestamped lines, as its stdout's.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import re
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn, TextIO, cast

from phoneemu import version_text
from phoneemu.commands._help import tidy
from phoneemu.commands._mistakes import usage_hint
from phoneemu.commands._said import lose_to_null, stderr_text
from phoneemu.errors import PhoneEmuError
from phoneemu.formats._tlv import printable
from phoneemu.interrupts import hold_from_start, release_from_start, releases_itself, term_as_ctrl_c

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
    """A hint for a usage error of ``parser``: the nearest options to an unrecognised one, the nearest
    choices to an invalid one (`` (did you mean --flash?)``, every one at the best distance: `` (did you
    mean serve or service?)``); "" when nothing is near."""
    choice = _CHOICE_RE.search(message)
    if choice is not None:
        given, options = choice.group(1), re.findall(r"'([^']*)'", choice.group(2))
    elif message.startswith("unrecognized arguments: "):
        words = message.removeprefix("unrecognized arguments: ").split()
        given = next((w.split("=", 1)[0] for w in words if w.startswith("--")), "")
        options = [o for o in parser._option_string_actions if o.startswith("--")]
    else:
        return ""
    near = difflib.get_close_matches(given, options, n=len(options), cutoff=0.75) if given else []
    if not near:
        return ""
    best = min(_edits(given, n) for n in near)
    nearest = sorted({n for n in near if _edits(given, n) == best})
    shown = nearest[0] if len(nearest) == 1 else f"{', '.join(nearest[:-1])} or {nearest[-1]}"
    return f" (did you mean {shown}?)"


def _edits(a: str, b: str) -> int:
    """Levenshtein distance: the letters inserted, deleted or replaced to make ``a`` into ``b``."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


_USAGE_LINES = 3
"""A usage longer than this is not printed before a usage error (the error would scroll past 15 lines of
options): a one-line usage pointing at ``--help`` is."""


class _VersionAction(argparse._VersionAction):
    """``--version``: its text (:func:`phoneemu.version_text`, which imports ssl and cryptography to name
    their versions) made when the option is given, not whenever the parser is built (start-up time)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        self.version = version_text()
        super().__call__(parser, namespace, values, option_string)


UsageErrorHook = Callable[[argparse.ArgumentParser, Sequence[str], str], None]
"""What a command does about a usage error of its own before it exits 2 (``run``: its reports say so):
called with its parser, the arguments that parser was given and the error's text as printed."""


class _Parser(argparse.ArgumentParser):
    """argparse, whose usage errors suggest the nearest option or choice (every sub-command's too: their
    parsers are made of this class), or the command line meant for a natural mistake (a word where an option
    was expected, the lab folder not first: :mod:`phoneemu.commands._mistakes`, which reads
    ``arguments_given``), and show a usage of many lines as one line pointing at ``--help``.
    A command may set ``on_usage_error`` (:data:`UsageErrorHook`) on its parser: argparse exits 2 before
    the command runs, and ``run`` promises that ``--junit``/``--json`` then say so (README)."""

    on_usage_error: UsageErrorHook | None = None
    arguments_given: tuple[str, ...] = ()

    def parse_known_args(self, args: Iterable[str] | None = None,
                         namespace: Any = None) -> tuple[Any, list[str]]:
        """argparse's, the arguments noted first (a sub-command's parser is given those after its name)."""
        given = list(sys.argv[1:] if args is None else args)
        self.arguments_given = tuple(given)
        return super().parse_known_args(given, namespace)

    def error(self, message: str) -> NoReturn:
        message = printable(message + (usage_hint(self, message) or did_you_mean(self, message)))
        if self.on_usage_error is not None:
            self.on_usage_error(self, self.arguments_given, message)
        if self.format_usage().count("\n") > _USAGE_LINES:  # argparse's form, its usage in one line
            self.exit(2, f"usage: {self.prog} [options] (see {self.prog} --help)\n"
                         f"{self.prog}: error: {message}\n")
        super().error(message)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``phoneemu`` parser with every command, or with only the command ``only`` (what :func:`main`
    builds when the first argument names a command: the other commands' modules are then neither
    imported nor registered, ~50-80 ms of a start; ``--help`` and a mistyped command get every one)."""
    parser = _Parser(
        prog="phoneemu",
        description="Emulated IP-phone trust clients (CTL/ITL, signed and encrypted configs, "
        "TVS, CAPF, SIP registration and calls) and a lab cluster to test them against.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction,
                        help="the version of phoneemu and of what it runs on (Python, cryptography, "
                        "OpenSSL), for a CI log or a bug report")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        if only is not None and name != only:
            continue
        try:
            module = importlib.import_module(f"phoneemu.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"phoneemu.commands.{name}":
                raise
            continue
        module.register(sub)
    tidy(parser)
    return parser


def _as_typed(parser: argparse.ArgumentParser, exc: PhoneEmuError) -> str:
    """The text of ``exc``, an error about one argument of ``parser`` named as the user typed it: its
    field path (an option's ``dest``, e.g. ``symmetric_key``) becomes the option and its metavar
    (``--symmetric-key HEX: ...``), a positional's metavar (``NEW_FILE: ...``). An error located in a
    file, a format, a tag or an offset, or whose message names the option already, is as it was."""
    text = str(exc)
    path = exc.path
    if (not path or exc.file is not None or exc.fmt or exc.tag is not None or exc.offset is not None
            or text != f"{path}: {exc.message}"):
        return text
    for action in parser._actions:
        if action.dest != path or isinstance(action, (argparse._HelpAction, argparse._VersionAction,
                                                      argparse._SubParsersAction)):
            continue
        metavar = action.metavar
        shown = " ".join(metavar) if isinstance(metavar, tuple) else metavar
        if not action.option_strings:  # a positional: its metavar (none: its name, as it was)
            return f"{shown or path}: {exc.message}"
        option = next((o for o in action.option_strings if o.startswith("--")), action.option_strings[0])
        if action.nargs == 0:  # a flag: no value to name
            shown = None
        elif shown is None and not action.choices:
            shown = path.upper()  # argparse's own metavar for an option that names none
        return f"{option} {shown}: {exc.message}" if shown else f"{option}: {exc.message}"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command's handler; its exit status (module docstring).

    SIGTERM is a Ctrl-C (:func:`~phoneemu.interrupts.term_as_ctrl_c`, given back on return) unless the
    command gives it a status of its own (``lab serve``: 0; ``run``: 130 with its reports written). From
    the first line, SIGTERM and SIGHUP are held back (:func:`~phoneemu.interrupts.hold_from_start`) while
    the command modules are imported and the arguments parsed, and let through once the command's handling
    is in place: right before its handler, or by a handler marked
    :func:`~phoneemu.interrupts.releases_from_start` itself. So a SIGTERM at any moment has the command's
    documented status (was: in the first 0.05-0.15 s, ``phoneemu: interrupted``, exit 130, whatever the
    command; a SIGHUP killed ``lab serve``). One held while parsing ended in ``--help``, ``--version`` or a
    usage error is the Ctrl-C it stands for, as before.

    stderr is :class:`_LosableStderr` meanwhile: a line that cannot be written there (``2>/dev/full``,
    ``2>&-``, its reader gone) is lost, never the exit status (was: exit 1, the error's line raising as it
    was printed; with fd 2 closed from the start the error was printed on stdout)."""
    hold_from_start()  # first: a SIGTERM or SIGHUP now is the command's, once it can take it
    old_term = term_as_ctrl_c()  # SIGTERM is a Ctrl-C in every command (phoneemu.interrupts)
    stderr = sys.stderr
    losable = _LosableStderr(stderr)
    sys.stderr = cast(TextIO, losable)
    said_by = "phoneemu"  # the command as typed, once parsed
    try:
        try:
            given = list(sys.argv[1:] if argv is None else argv)
            parser = build_parser(given[0]) if given and given[0] in _COMMAND_MODULES else build_parser()
            args, extra = parser.parse_known_args(given)
            used: argparse.ArgumentParser = getattr(args, "parser_used", parser)
            said_by = used.prog  # what was typed: "phoneemu lab phone add", not "phoneemu lab"
            if extra:  # said by the sub-command that was given them, with its usage (argparse: the top one's)
                used.error(f"unrecognized arguments: {' '.join(extra)}")
            handler = getattr(args, "handler", None)
            if handler is None:
                parser.print_help()
                return 2
            if not releases_itself(handler):
                release_from_start()  # the CLI's rule is the command's: a SIGTERM held is its Ctrl-C now
            return _handled(handler, args, used)
        finally:  # --help, --version, a usage error, a handler that ended before it let them through
            release_from_start()
    except KeyboardInterrupt:
        print(stderr_text(said_by, "interrupted"), file=sys.stderr)
        return 130
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
        if cast(object, sys.stderr) is losable:  # (not replaced meanwhile)
            sys.stderr = stderr


class _LosableStderr:
    """``sys.stderr`` while :func:`main` runs: writes and flushes passed on to the stream it stands for; the
    first that fails (a full disk, a closed or read-only descriptor, a pipe whose reader left) points that
    stream's descriptor at the null device (so that neither its buffered bytes nor Python's flush at exit
    fail again: exit 120) and loses every line from then on. None (Python started with fd 2 closed): every
    line lost (``print(file=None)`` wrote it on stdout). Anything else is the stream's."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.lost = stream is None

    def write(self, text: str) -> int:
        if not self.lost:
            try:
                return self.stream.write(text) if self.stream is not None else len(text)
            except (OSError, ValueError):  # (ValueError: the stream was closed)
                self._lose()
        return len(text)

    def flush(self) -> None:
        if not self.lost and self.stream is not None:
            try:
                self.stream.flush()
            except (OSError, ValueError):
                self._lose()

    def isatty(self) -> bool:
        return not self.lost and self.stream is not None and self.stream.isatty()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)

    def _lose(self) -> None:
        """Lines lost from now on; the stream's descriptor, when it has one, the null device."""
        self.lost = True
        if self.stream is None:
            return
        lose_to_null(self.stream)
        with contextlib.suppress(OSError, ValueError, AttributeError):
            self.stream.flush()  # what it still buffers: to the null device


def _handled(handler: Any, args: argparse.Namespace, used: argparse.ArgumentParser) -> int:
    """``handler(args)``'s exit status; an error of the project, a closed pipe or a failed system call
    said as one line (module docstring); a Ctrl-C left to :func:`main`."""
    command = used.prog
    try:
        return int(handler(args))
    except PhoneEmuError as exc:
        print(stderr_text(command, _as_typed(used, exc)), file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 1
    except OSError as exc:
        where = f"{printable(str(exc.filename))}: " if exc.filename else ""  # one line, whatever its name
        print(stderr_text(command, f"{where}{printable(str(exc.strerror or exc))}"), file=sys.stderr)
        return 2
