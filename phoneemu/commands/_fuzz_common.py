"""Helpers shared by ``phoneemu fuzz``'s modes (:mod:`phoneemu.commands.fuzz`): the output folder made
and checked, the corpus, the target the options name, and the ``phoneemu fuzz`` command lines info.json
repeats."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from phoneemu.errors import EncodeError
from phoneemu.values import parse_ascii_int

if TYPE_CHECKING:
    from phoneemu.fuzz.corpus import Corpus
    from phoneemu.fuzz.targets import Target

_DEFAULT_HANG_AFTER = 1.0  # an in-process target's --hang-after


def _make_folder(folder: Path, option: str) -> None:
    """Create the output folder ``option`` names (and its parents) before any input is run, and check that
    a file can be written in it: one that cannot (``--out /proc/x``, below a file, read-only) is a usage
    error naming the option and the folder, not an OSError naming a file inside it found mid-run."""
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise EncodeError(f"{folder}: cannot create the folder or write in it: {exc.strerror or exc}",
                          path=option) from None


class _FolderLock:
    """One fuzz run at a time into an output folder (ours): a second run into ``--out`` while one writes there
    is refused (exit 2), naming the option — was: both wrote the command target's input file, so each ran
    the other's inputs (findings that were none, or saved with the wrong input), the first to end removed it
    under the other (which stopped, "No such file or directory", with no summary.json), and summary.json
    was the last one's. An advisory lock (``flock``) on the folder itself: nothing left in it, and let go
    when the run ends, however it ends (the process with it). One run after another is fine (``--run-index``
    goes on where one ended)."""

    def __init__(self, folder: Path, option: str) -> None:
        import fcntl
        import os

        self.fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            raise EncodeError(f"{folder}: another phoneemu fuzz run is writing into this folder (its inputs, "
                              "findings and summary.json would be mixed with this one's): give each run an "
                              f"{option} of its own", path=option) from None

    def release(self) -> None:
        import os

        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _lock_if_free(folder: Path) -> _FolderLock | None:
    """The lock on ``folder`` (:class:`_FolderLock`) when it exists and no other run holds it, else None: a
    run interrupted before it took the lock writes its summary.json only into a folder of its own."""
    if not folder.is_dir():
        return None
    try:
        return _FolderLock(folder, "--out")
    except (EncodeError, OSError):
        return None


def _crash_exit(text: str | None) -> set[int] | None:
    """``--crash-exit 1,134``: exit statuses 0..255 in ASCII digits (a signal is a finding anyway;
    an empty list: no status is); ``999`` or ``-1`` could never match, and were taken."""
    if text is None:
        return None
    codes = [parse_ascii_int(x, max_digits=3) for x in text.replace(" ", "").split(",") if x]
    if any(c is None or c > 255 for c in codes):
        raise EncodeError(f"--crash-exit {text!r}: expected exit statuses 0..255 separated by commas",
                          path="crash-exit")
    return {c for c in codes if c is not None}


def _reproduce_prefix(args: argparse.Namespace) -> str:
    """The start of info.json's ``reproduce`` and ``regenerate`` commands: ``phoneemu fuzz`` with the
    target's options, after ``cd <this folder> && `` when the target is found through the working
    folder (:mod:`phoneemu.fuzz.reproduce`; was: a module of this folder, "No module named ..." from
    another); called once the target is loaded."""
    from phoneemu.fuzz.reproduce import command_in_folder, in_folder, modules_in_folder, target_modules

    here = Path.cwd()
    command = _target_command(args)
    if (command_in_folder(args.target_cmd, here) if args.target_cmd is not None
            else modules_in_folder(target_modules(args.target, args.reject_exc), here)):
        return in_folder(here, command)
    return command


def _target_command(args: argparse.Namespace) -> str:
    """``phoneemu fuzz`` with the options of the target and the corpus, as a command line."""
    parts = ["phoneemu", "fuzz", "--format", args.fmt]
    if args.target_cmd is not None:
        parts += ["--target-cmd", args.target_cmd, "--timeout", f"{args.timeout:g}"]
        if args.crash_exit:
            parts += ["--crash-exit", args.crash_exit]
    else:
        parts += ["--target", args.target]
        if args.reject_exc:
            parts += ["--reject-exc", args.reject_exc]
        if args.hang_after != _DEFAULT_HANG_AFTER:  # a hang of 0.5 s is no hang at the default 1 s
            parts += ["--hang-after", f"{args.hang_after:g}"]
        if args.no_round_trip and args.target == "phoneemu":  # else a round-trip error comes first
            parts.append("--no-round-trip")
    return shlex.join(parts + _corpus_options(args))


def _corpus_options(args: argparse.Namespace) -> list[str]:
    """The options that make the corpus and its mutants (seed folder, key size, re-sign ratio), as a
    command line that rebuilds an input must repeat them."""
    out: list[str] = []
    if args.seed_dir is not None:
        out += ["--seed-dir", str(args.seed_dir.resolve())]
    if args.key_bits != 1024:
        out += ["--key-bits", str(args.key_bits)]
    if args.resign_ratio != 0.25:
        out += ["--resign-ratio", f"{args.resign_ratio:g}"]
    return out


def _corpus(args: argparse.Namespace) -> Corpus:
    """The seed corpus of ``--format`` (``--key-bits``), with ``--seed-dir``'s files."""
    from phoneemu.fuzz.corpus import build_corpus, with_seed_files

    corpus = build_corpus(args.fmt, bits=args.key_bits)
    return with_seed_files(corpus, args.seed_dir) if args.seed_dir is not None else corpus


def _target(args: argparse.Namespace, corpus: Corpus) -> Target:
    """The target the options name: ``--target-cmd``, ``--target phoneemu`` or ``--target MODULE:FUNCTION``
    (imported: a user's module may take its time)."""
    from phoneemu.fuzz.targets import (
        HANDLED,
        CommandTarget,
        PythonTarget,
        load_callable,
        load_exception_types,
        phoneemu_callable,
    )

    if args.target_cmd is not None:
        workdir = (args.out or args.regenerate or Path(".")) / ".work"
        suffix = {"itl": ".tlv", "ctl": ".tlv", "sgn": ".sgn", "enc": ".enc.sgn",
                  "firmware": ".loads", "srtp": ".srtp", "sdp": ".sdp"}.get(args.fmt, ".bin")
        return CommandTarget(args.target_cmd, workdir=workdir, suffix=suffix, timeout=args.timeout,
                             crash_exit=_crash_exit(args.crash_exit))
    if args.target == "phoneemu":
        func = phoneemu_callable(args.fmt, corpus, round_trip=not args.no_round_trip)
        return PythonTarget(func, name=f"phoneemu {args.fmt}", hang_after=args.hang_after,
                            warnings_as_errors=True)
    handled = load_exception_types(args.reject_exc) if args.reject_exc is not None else HANDLED
    return PythonTarget(load_callable(args.target), name=args.target, hang_after=args.hang_after,
                        handled=handled)
