"""Hints for the natural command-line mistakes of a newcomer (our convention: argparse has none), each built
once here, for a usage error (:func:`usage_hint`, from ``phoneemu.cli``) and for a lab operation whose
folder is not a lab (:func:`misplaced_lab_folder`, from ``phoneemu.commands.lab``):

* a word where an option was expected, told by its form: an address for the option whose value is
  ``HOST[:PORT]``, a MAC for a MAC option (``--mac``, ``--mac-start``), a lab cluster folder for ``--lab``, a
  count for ``--count``, a PEM certificate file for a certificate option, a PEM private key file for a key
  option (``phoneemu boot 127.0.0.1:6969 --mac ...``: ``(did you mean --tftp 127.0.0.1:6969?)``; ``phoneemu
  inspect X.sgn tftp.pem``: ``(did you mean --cert tftp.pem?)``). Only an option not given yet, only when
  exactly one option takes that form, and only when the words left then fill the command's operands;
* a port as a word of its own after an address (``--tftp 127.0.0.1 6969``: ``--tftp 127.0.0.1:6969``);
* the lab folder after another operand of a lab operation (``phoneemu lab regenerate itlrecovery /tmp/lab``):
  when the first operand is not a lab cluster and a later one is, the command line with the lab folder first;
* an option taking one ``FILE`` (``FILE.png``) or ``DIR`` given as a flag (``phoneemu run x.yaml --json``:
  ``(--json takes a FILE here: --json report.json)``; ``--json`` is a flag for the other commands).

The words a parser was given are its ``arguments_given`` (``phoneemu.cli._Parser``). What a hint needs
beyond the standard library (the MAC notations, the lab's state file) is imported when a hint is looked for:
every command imports this module (start-up time: tests/unit/test_cli_startup.py).
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from phoneemu.commands._argtypes import MAX_FLEET_PHONES, mac_option

__all__ = ["misplaced_lab_folder", "takes_lab_folder_first", "usage_hint"]

_LAB_FIRST = "_lab_folder_first"
"""The parser default marking a lab operation whose first operand is the lab folder (a parser default, so
that any parser can carry it: :func:`takes_lab_folder_first`)."""

_UNBOUNDED = 1 << 30


def takes_lab_folder_first(parser: argparse.ArgumentParser) -> None:
    """Mark ``parser`` (a lab operation: ``DIR`` then other operands none of which is a lab folder) for the
    lab-folder-first hint."""
    parser.set_defaults(**{_LAB_FIRST: True})


def usage_hint(parser: argparse.ArgumentParser, message: str) -> str:
    """`` (did you mean --tftp 127.0.0.1:6969?)``, `` (/tmp/lab is a lab cluster, and the lab folder comes
    first: phoneemu lab itl-reset /tmp/lab localkey)``, or "" for a usage error ``message`` of ``parser``
    (module docstring); for an error about an option's value (``argument --timeout: ...``) only the hint
    of an option taking a FILE or DIR given none (:func:`_file_expected`): the words given are not what the
    others are about; "" too for an ambiguous option (``ambiguous option: --co could match --count,
    --concurrency``): argparse's message names every match, and a hint read from the value would pick one
    of them (was ``did you mean --count 3?`` for ``--co 3``, meant as ``--concurrency``)."""
    if message.startswith("argument -"):
        return _file_expected(parser, message)
    if message.startswith("ambiguous option:"):
        return ""
    fix = _corrected(parser)
    if fix is None:
        return ""
    if fix.lab is not None:
        return f" ({_lab_first_text(parser, fix)})"
    return f" (did you mean {' '.join(fix.options)}?)" if fix.options else ""


_EXPECTED_ONE = re.compile(r"argument (\S+): expected one argument")

_FILE_EXAMPLES = {"--json": "report.json", "--json-file": "report.json", "--junit": "report.xml"}
"""The file named in the hint for a report option given no file (:func:`_file_expected`)."""


_PATH_METAVAR = re.compile(r"(FILE)(?:\.[A-Za-z0-9]+)?|(DIR)")
"""The metavars of an option taking a file (``FILE``, ``FILE.png``) or a folder (``DIR``): those the hint of
:func:`_file_expected` is for (``HOST[:PORT]``, ``N``, ``S`` are not)."""


def _file_expected(parser: argparse.ArgumentParser, message: str) -> str:
    """`` (--json takes a FILE here: --json report.json)`` for ``argument --json: expected one argument``,
    when the option of ``message`` takes one value named ``FILE``, ``FILE.ext`` (`` (--plot takes a FILE
    here: --plot FILE.png)``) or ``DIR`` (`` (--capture takes a DIR here: --capture DIR)``): ``--json``
    takes a file for ``run`` and ``fleet boot`` but is a flag for every other command, ``--capture`` a
    folder for ``run`` but a file for ``boot``; given as a flag there, argparse said only that it expected
    an argument. Was ``FILE`` alone: ``fleet boot --plot`` got no hint. "" for any other error about an
    option."""
    said = _EXPECTED_ONE.fullmatch(message)
    if said is None:
        return ""
    action = next((a for a in parser._actions if a.option_strings
                   and "/".join(a.option_strings) == said.group(1)), None)
    if action is None or action.nargs is not None or not isinstance(action.metavar, str):
        return ""
    kind = _PATH_METAVAR.fullmatch(action.metavar)
    if kind is None:
        return ""
    option = _long_name(action)
    return (f" ({option} takes a {kind.group(1) or kind.group(2)} here: "
            f"{option} {_FILE_EXAMPLES.get(option, action.metavar)})")


def misplaced_lab_folder(parser: argparse.ArgumentParser | None, first: object) -> str:
    """``/tmp/lab is a lab cluster, and the lab folder comes first: phoneemu lab regenerate /tmp/lab
    itlrecovery`` when ``parser``, marked by :func:`takes_lab_folder_first`, was given a first operand that
    is not a lab cluster and a later one that is; "" otherwise (no parser: a handler called with arguments
    of its own), and "" whenever ``first``, the lab folder as argparse read it, is a lab cluster (the words'
    reading here is simpler than argparse's: it never refuses a command line that names a lab first)."""
    if parser is None or _is_lab(str(first)):
        return ""
    words = _words(parser)
    operands = _scan(parser, words)[0]
    lab_at = _misplaced_lab(parser, words, operands)
    if lab_at is None:
        return ""
    return _lab_first_text(parser, _Fix([], words[lab_at], _rewritten(words, {}, lab_at, operands[0])))


def _lab_first_text(parser: argparse.ArgumentParser, fix: _Fix) -> str:
    return (f"{fix.lab} is a lab cluster, and the lab folder comes first: "
            f"{parser.prog} {shlex.join(fix.words)}")


@dataclass(frozen=True)
class _Fix:
    """The words corrected: ``options``, the option fragments put in (``--tftp 127.0.0.1:6969``); ``lab``,
    the lab folder moved to the front of the operands (None: none moved); ``words``, the whole line."""

    options: list[str]
    lab: str | None
    words: list[str]


def _corrected(parser: argparse.ArgumentParser) -> _Fix | None:
    """The words ``parser`` was given, corrected by the rules of the module docstring; None when no rule
    applies (or the parser takes a sub-command, or operands argparse counts its own way)."""
    words = _words(parser)
    slots = _operand_slots(parser)
    if slots is None:
        return None
    operands, option_of = _scan(parser, words)
    given = {_option_read(parser, w)[0] for w in words if w.startswith("-")} - {None}
    replaced: dict[int, list[str]] = {}  # word index -> the words in its place
    options: list[str] = []
    for i in operands:
        fix = _as_option(parser, words, i, option_of, given)
        if fix is not None:
            replaced.update(fix[0])
            options.append(fix[1])
    left = [i for i in operands if i not in replaced]
    if options and not slots[0] <= len(left) <= slots[1]:
        replaced, options, left = {}, [], operands  # the words left would not fit: not the mistake made
    # a lab folder moved first only where the operands then fit: else the line said would fail again
    lab_at = _misplaced_lab(parser, words, left) if slots[0] <= len(left) <= slots[1] else None
    if not options and lab_at is None:
        return None
    return _Fix(options, None if lab_at is None else words[lab_at],
                _rewritten(words, replaced, lab_at, left[0] if left else 0))


def _words(parser: argparse.ArgumentParser) -> list[str]:
    """The words ``parser`` was last given (``phoneemu.cli._Parser.arguments_given``)."""
    return [str(w) for w in getattr(parser, "arguments_given", ())]


def _rewritten(words: list[str], replaced: dict[int, list[str]], lab_at: int | None, first: int) -> list[str]:
    """``words`` with the words ``replaced`` in place, and the word at ``lab_at`` moved to index ``first``."""
    out: list[str] = []
    for i, word in enumerate(words):
        if i == first and lab_at is not None:
            out.append(words[lab_at])
        if i != lab_at:
            out.extend(replaced.get(i, [word]))
    return out


def _misplaced_lab(parser: argparse.ArgumentParser, words: list[str], operands: list[int]) -> int | None:
    """The index of the first lab folder among ``operands`` after the first, when the first is none and
    ``parser`` is marked (:func:`takes_lab_folder_first`)."""
    if not parser.get_default(_LAB_FIRST) or len(operands) < 2 or _is_lab(words[operands[0]]):
        return None
    return next((i for i in operands[1:] if _is_lab(words[i])), None)


def _operand_slots(parser: argparse.ArgumentParser) -> tuple[int, int] | None:
    """The fewest and most operands ``parser`` takes; None for a parser of sub-commands."""
    low = high = 0
    for action in parser._actions:
        if action.option_strings:
            continue
        if isinstance(action, argparse._SubParsersAction) or action.nargs in (argparse.REMAINDER,
                                                                              argparse.PARSER):
            return None
        n = action.nargs
        lo, hi = ((1, 1) if n is None else (n, n) if isinstance(n, int) else
                  {"?": (0, 1), "*": (0, _UNBOUNDED), "+": (1, _UNBOUNDED)}.get(str(n), (0, _UNBOUNDED)))
        low, high = low + lo, high + hi
    return low, high


def _scan(parser: argparse.ArgumentParser, words: Sequence[str]) -> tuple[list[int], dict[int, str]]:
    """The indexes of the operands among ``words`` (argparse's reading, simplified: an option known to
    ``parser``, as :func:`_option_read` reads it, takes the values its ``nargs`` says, an unknown one none)
    and, for each option value, the option it is the value of (its long name; an ``OPTION=VALUE`` word is
    its own value)."""
    operands: list[int] = []
    option_of: dict[int, str] = {}
    i, only_operands = 0, False
    while i < len(words):
        word = words[i]
        action, carried = _option_read(parser, word) if not only_operands else (None, False)
        if only_operands or word == "-" or not word.startswith("-") or _read_as_operand(parser, word, action):
            operands.append(i)
        elif word == "--":
            only_operands = True
        elif carried:
            if action is not None and "=" in word:
                option_of[i] = _long_name(action)
        else:
            taken = _values_taken(action, words[i + 1:])
            for j in range(i + 1, i + 1 + taken):
                option_of[j] = _long_name(action) if action is not None else word
            i += taken
        i += 1
    return operands, option_of


def _option_read(parser: argparse.ArgumentParser, word: str) -> tuple[argparse.Action | None, bool]:
    """The option ``word`` is as argparse reads it — the option itself, ``OPTION=VALUE``, a prefix of one
    long option alone (``--no`` for ``--now`` when ``parser.allow_abbrev``: was read as an unknown option,
    its value then taken for an operand), a short option with its value attached (``-k3``) — and whether
    the word carries its value; (None, False) for a word argparse knows no option by."""
    actions = parser._option_string_actions
    if word in actions:
        return actions[word], False
    if word == "--":  # the end of the options: a prefix of every long one
        return None, False
    name, equals, _ = word.partition("=")
    if equals and name in actions:
        return actions[name], True
    if word.startswith("--") and parser.allow_abbrev:
        matches = [o for o in actions if o.startswith(name)]
        return (actions[matches[0]], bool(equals)) if len(matches) == 1 else (None, False)
    if not word.startswith("--") and len(word) > 2 and word[:2] in actions:
        return actions[word[:2]], True
    return None, False


def _read_as_operand(parser: argparse.ArgumentParser, word: str, action: argparse.Action | None) -> bool:
    """A word starting with ``-`` that argparse takes for an operand: a negative number where no option
    looks like one, or a word with a space (argparse's own rules)."""
    if action is not None:
        return False
    negative = parser._negative_number_matcher.match(word) and not parser._has_negative_number_optionals
    return bool(negative) or " " in word


def _long_name(action: argparse.Action) -> str:
    return next((o for o in action.option_strings if o.startswith("--")), action.option_strings[0])


def _values_taken(action: argparse.Action | None, after: Sequence[str]) -> int:
    if action is None:
        return 0
    nargs = action.nargs
    if nargs is None:
        return min(1, len(after))
    if isinstance(nargs, int):
        return min(nargs, len(after))
    values = 0
    while values < len(after) and not after[values].startswith("-"):
        values += 1
    return min(values, 1) if nargs == "?" else values


def _as_option(parser: argparse.ArgumentParser, words: list[str], i: int, option_of: dict[int, str],
               given: set[argparse.Action | None]) -> tuple[dict[int, list[str]], str] | None:
    """The words in place of operand ``words[i]`` (and of the address before it, for a port) when it is an
    option's value given without the option, and the option as it should have been given; None when it is
    none, or fits more than one option."""
    word = words[i]
    before = option_of.get(i - 1)
    if before is not None and _is_port(word):
        action = parser._option_string_actions.get(before)
        option_word, equals, host = words[i - 1].rpartition("=") if words[i - 1].startswith("-") else \
            ("", "", words[i - 1])  # --tftp=HOST PORT: the address is the option word's
        if action is not None and action.metavar == "HOST[:PORT]" and host and _without_port(host):
            joined = f"[{host}]:{word}" if ":" in host and not host.startswith("[") else f"{host}:{word}"
            return {i - 1: [option_word + equals + joined], i: []}, f"{before} {shlex.quote(joined)}"
    for looks_like, takes in _FORMS:
        if not looks_like(word):
            continue
        fitting = [a for a in parser._actions if a.option_strings and a.nargs is None and takes(a)
                   and a not in given]
        if len(fitting) != 1:
            return None
        option = _long_name(fitting[0])
        return {i: [option, word]}, f"{option} {shlex.quote(word)}"
    return None


def _is_port(word: str) -> bool:
    """1..65535 in ASCII digits (at most 5: a word of 4,301 digits made int() raise, a traceback)."""
    return word.isascii() and word.isdigit() and len(word) <= 5 and 0 < int(word) <= 65535


def _without_port(host: str) -> bool:
    """``host`` (the value of a ``HOST[:PORT]`` option) names no port: a name, an IPv4 address, a bare or
    bracketed IPv6 address."""
    return host.endswith("]") or ("]" not in host and host.count(":") != 1)


def _address_port(word: str) -> tuple[str, str | None] | None:
    """``word`` as an address and its port (None: none given), or None when it is no address: an IP
    address, ``[IPv6]:PORT`` or ``NAME:PORT`` (a bare name could as well be a file's)."""
    import ipaddress

    bracketed = re.fullmatch(r"\[([^\]]+)\](?::(\d{1,5}))?", word)
    if bracketed:
        host, port = bracketed.group(1), bracketed.group(2)
    elif word.count(":") == 1:
        host, port = word.split(":")
    else:
        host, port = word, None
    if port is not None and not _is_port(port):
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        named = port is not None and re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?", host)
        return (host, port) if named else None
    return host, port


def _is_address(word: str) -> bool:
    return _address_port(word) is not None


def _is_mac(word: str) -> bool:
    from phoneemu.errors import EncodeError
    from phoneemu.formats.config import normalise_mac

    try:
        normalise_mac(mac_option(word))
    except EncodeError:
        return False
    return True


def _is_lab(word: str) -> bool:
    """A folder holding a lab cluster's state file."""
    from phoneemu.lab.state import STATE_FILE

    try:
        return (Path(word) / STATE_FILE).is_file()
    except (OSError, ValueError):  # (ValueError: a NUL in the name)
        return False


def _pem_holds(word: str, label: bytes) -> bool:
    """``word`` names a regular file whose first 64 KiB hold a PEM block whose label ends with ``label`` (a
    FIFO is never waited on: opened without blocking, its type read from the open file, so one swapped in
    after a look at the name cannot make a hint wait for a writer)."""
    import os
    import stat

    try:
        fd = os.open(word, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (OSError, ValueError):  # (ValueError: a NUL in the name)
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        head = os.read(fd, 65536)
    except OSError:
        return False
    finally:
        os.close(fd)
    return re.search(rb"-----BEGIN [A-Z0-9 ]*" + label + rb"-----", head) is not None


def _is_cert(word: str) -> bool:
    return _pem_holds(word, b"CERTIFICATE")


def _is_key(word: str) -> bool:
    return _pem_holds(word, b"PRIVATE KEY")


def _is_count(word: str) -> bool:
    """A count any ``--count`` could take (a MAC mistyped as 11 digits is none; so is a word of thousands of
    digits, never given to int())."""
    return (word.isascii() and word.isdigit() and len(word) <= len(str(MAX_FLEET_PHONES))
            and 0 < int(word) <= MAX_FLEET_PHONES)


_FORMS: tuple[tuple[Callable[[str], bool], Callable[[argparse.Action], bool]], ...] = (
    (_is_mac, lambda a: a.type is mac_option),  # first: 001122334455 is a number too
    (_is_address, lambda a: a.metavar == "HOST[:PORT]"),
    (_is_lab, lambda a: "--lab" in a.option_strings),
    (_is_count, lambda a: "--count" in a.option_strings),
    (_is_cert, lambda a: a.metavar == "PEM" and "cert" in a.dest),
    (_is_key, lambda a: a.metavar in ("PEM", "KEY") and (a.dest == "key" or a.dest.endswith("_key"))),
)
"""The form of a word, and the options it is the value of (module docstring), in the order tried: the first
form a word has decides."""
