"""``phoneemu fuzz``: structure-aware fuzzing of CTL/ITL, ``.sgn`` and ``.enc.sgn`` parsers.

Exit status: 0 when no crash or hang was found, 1 when at least one was (or the replayed input
crashes), 2 for usage errors, 130 on Ctrl-C or SIGTERM (the findings so far saved, summary.json written).
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from phoneemu import json_doc
from phoneemu.commands._argtypes import mac_option, non_negative_int, port, positive_float, positive_int
from phoneemu.commands._said import command_of, say
from phoneemu.errors import EncodeError, PhoneEmuError
from phoneemu.files import read_at_most, write_output
from phoneemu.fuzz import FORMATS, MESSAGE_FORMATS
from phoneemu.interrupts import ctrl_c_deferred
from phoneemu.values import host_matcher, host_port, parse_ascii_int

if TYPE_CHECKING:
    from collections.abc import Callable

    from phoneemu.fuzz.corpus import Corpus
    from phoneemu.fuzz.engine import FuzzReport
    from phoneemu.fuzz.mutators import Mutator
    from phoneemu.fuzz.targets import ServeSession, Target

__all__ = ["register"]

_SERVE_DEFAULT_TIME = 3600.0
_DEFAULT_TIMEOUT = 5.0  # --target-cmd's --timeout
_DEFAULT_HANG_AFTER = 1.0  # an in-process target's --hang-after
_REPLAY_LIMIT = 16 << 20  # a saved finding is at most MAX_FILE (72 KiB); 16 MiB covers hand-made inputs

_DESCRIPTION = """\
Mutate valid CTL/ITL, .sgn, .enc.sgn or signed firmware files (.loads / .cop.sgn, built from
deterministic lab-like keys) with structure-aware mutators: lying length fields, truncation at TLV
boundaries, duplicated / missing / reordered / unknown tags, inconsistent containers, out-of-range
role / hash / modulus codes, very many records, strings without NUL, damaged certificate DER,
swapped signatures; for firmware also the load manifest (magic, lying load-name / image lengths,
bad load names, bytes after the image); for a signed config's XML body hostile XML (entities and
billion laughs, deep nesting, duplicated / unknown elements, bad typed values and server lists,
lying encodings, characters XML cannot carry, text past the size limit). Firmware mutants are
re-signed with the image-signing key.
TVS and CAPF messages (tvs-response: what the phone's TVS client parses, then decides an ITL on;
tvs-request: what the lab TVS server parses; capf: either direction) are mutated in their header
fields, body length, element lengths, element order and values (they are not signed: --resign-ratio
does not apply). SIP registration messages (sip-response: the registrar's answers a registering phone
reads, a 401 challenge then the 200; sip-request: the REGISTERs the lab registrar reads) are mutated
in their start line, header lines (removed, repeated, renamed, folded, hostile values), Content-Length,
digest parameters and message order; the oracles: the phone registers only on a final 200 and never
echoes a control character into its request, the registrar answers 200 only to a right digest.
A call's media (spec §G.14): srtp — SRTP packets a phone receives (ours: a suite byte, then each packet
with a 2-byte length), mutated in their header fields, tag, payload and order (replayed, reordered,
dropped); no forged, modified or replayed packet may authenticate. sdp — the SDP answer a calling phone
reads and the offer the lab's media resources read, mutated line by line (c=, m=, a=crypto tag, suite and
key lies, control characters, line ends); the phone takes SRTP only with one crypto line it offered.
A share of the mutants (--resign-ratio) is re-signed with the corpus key so it gets past the
signature check; the rest keep a stale signature and must be rejected.

Targets:
  --target phoneemu          our own parsers in process (parse, decode records, verify, decrypt,
                             and serialise(parse(b)) == b); DecodeError / VerificationError are
                             rejections, anything else (warnings included) a crash
  --target MODULE:FUNCTION   your Python callable taking the file bytes, imported with the current
                             directory on the path; the exception types of --reject-exc are its
                             rejections, anything else a crash
  --target-cmd "CMD {}"      an external program; {} is the input file path. A crash is death by
                             a signal or an exit status in --crash-exit (default: >= 128), a hang a
                             run killed at --timeout (default 5 s)
  --serve                    a device under test: the lab TFTP server (and HTTP server, --http-port)
                             answers the names a phone requests (ITLSEP<MAC>.tlv, CTLFile.tlv,
                             SEP<MAC>.cnf.xml.sgn ...) with the next mutant; requests are logged in
                             DIR/served/requests.jsonl. --silent-after S: a device that asks for
                             nothing within S s after a mutant (reset it with your harness so that
                             it boots again) is a finding, DIR/crashes/silent-<index>/. --device
                             ADDR: that host alone is answered and watched (others are refused)

Findings are deduplicated (exception type, struct.error named with its module, and innermost project
frame; signal, exit status, timeout), minimised (not an in-process hang: saved as found),
and saved in DIR/crashes/<id>/ with input.bin, minimized.bin and info.json (format, seed, run index,
traceback, a command that replays it, and one that rebuilds it from --seed and --run-index into
DIR/crashes/<id>/regenerated/ with --regenerate). A silence finding's info.json says how to serve
its mutant again, and how to rebuild it (or why not). The same --seed always makes the same inputs;
Ctrl-C (or SIGTERM, as in every phoneemu command) keeps the findings so far and writes the summary (exit 130),
also before the first input (summary.json's interrupted_while names the step): from --out made on,
summary.json is written whole before the summary is printed (--serve too). info.json's commands name
absolute paths and run as printed from any folder (a target found through this folder - a module of it,
a relative --target-cmd program - makes them begin "cd <this folder> && "); a crash is minimised with up
to 5,000 attempts within 20 s - within what is left of --time, so the run ends at --time (none left:
saved un-minimised, info.json's minimize_note says so) - an in-process attempt that hangs
(--hang-after) or outlives them stopped at once: not the same crash.
An in-process input still running at Ctrl-C, or past --time, that is a hang by then (an endless loop) is
saved as a hang finding (past --time it is stopped and the run ends, exit 1); --replay and --regenerate
stop an in-process input once it is a hang.
"""

_EPILOG = """\
examples:
  phoneemu fuzz --format itl --target phoneemu --runs 100000 --seed 1 --out /tmp/fz
  phoneemu fuzz --format sgn --target mypkg.parser:parse --time 60 --out /tmp/fz
  phoneemu fuzz --format itl --target myparser:parse --reject-exc ValueError,myparser.ParseError \\
      --runs 20000 --out /tmp/fz    (myparser.py in the current directory; other exceptions crash)
  phoneemu fuzz --format firmware --target phoneemu --runs 20000 --out /tmp/fzfw
  phoneemu fuzz --format tvs-response --target phoneemu --runs 20000 --out /tmp/fztvs
  phoneemu fuzz --format capf --target-cmd "./capfparse {}" --runs 5000 --out /tmp/fzcapf
  phoneemu fuzz --format sip-response --target phoneemu --time 60 --out /tmp/fzsip
  phoneemu fuzz --format srtp --target phoneemu --time 60 --out /tmp/fzsrtp
  phoneemu fuzz --format sdp --target phoneemu --runs 20000 --out /tmp/fzsdp
  phoneemu fuzz --format itl --export-corpus /tmp/seeds    (seed files, their certificates and key)
  phoneemu fuzz --format itl --seed-dir ./fetched --target phoneemu --runs 5000 --out /tmp/fz
  phoneemu fuzz --format ctl --target-cmd "./ctlparse {}" --crash-exit 1,134 --runs 500 --out /tmp/fz
  phoneemu fuzz --format itl --serve --port 6969 --mac 001122334455 --runs 50 --time 600 --out /tmp/fz
  phoneemu fuzz --format itl --serve --port 69 --silent-after 120 --runs 200 --out /tmp/fz   a hung phone
  phoneemu fuzz --format itl --serve --host 10.0.0.1 --port 69 --device 10.0.0.5 --silent-after 120 \\
      --runs 200 --out /tmp/fz    (a lab network: that phone alone is served and watched)
  phoneemu fuzz --format sgn --serve --port 69 --http-port 6970 --host 10.0.0.5 --runs 500 --out /tmp/fz
  phoneemu fuzz --format sip-response --serve --host 10.0.0.1 --port 5060 --device 10.0.0.5 \\
      --silent-after 120 --runs 200 --out /tmp/fzsip   (the phone's REGISTERs answered with mutants)
  phoneemu fuzz --format itl --target phoneemu --replay /tmp/fz/crashes/<id>/minimized.bin
  phoneemu fuzz --format itl --target phoneemu --seed 1 --run-index 4242 --runs 1 --out /tmp/one
  phoneemu fuzz --format itl --target phoneemu --seed 1 --run-index 4242 \\
      --regenerate /tmp/fz/crashes/<id>/regenerated    (what info.json's regenerate command does)
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("fuzz", help="fuzz signed-file parsers (in process, a command, or a device)",
                              description=_DESCRIPTION, epilog=_EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", required=True, choices=FORMATS, dest="fmt",
                   help="file format to mutate (firmware: signed loads, .loads/.cop.sgn, spec §D; "
                   "tvs-response, tvs-request, capf: TVS/CAPF messages, spec §E, §F; sip-response, "
                   "sip-request: SIP REGISTER and its answers, spec §G.13; srtp, sdp: a call's SRTP packets "
                   "and SDP offer/answer, spec §G.14)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--target", metavar="phoneemu|MODULE:FUNCTION", help="in-process target")
    g.add_argument("--target-cmd", metavar="CMD", help='external command, "{}" = input file path')
    g.add_argument("--serve", action="store_true",
                   help="serve mutants over TFTP (and HTTP with --http-port) to a device under test")
    p.add_argument("--runs", type=positive_int, metavar="N",
                   help="number of inputs (served files with --serve); --runs or --time is required")
    p.add_argument("--time", type=positive_float, metavar="S",
                   help="time limit in seconds, minimising included (--serve without --time stops after "
                   "an hour)")
    p.add_argument("--seed", type=non_negative_int, default=None, metavar="N",
                   help="run seed: the same seed makes the same inputs (default 0; not with --replay)")
    p.add_argument("--run-index", type=non_negative_int, default=None, metavar="I",
                   help="index of the first input (default 0; not with --replay)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="output directory (crashes/, served/, summary.json); required unless --replay or "
                   "--export-corpus")
    p.add_argument("--resign-ratio", type=float, default=0.25, metavar="R",
                   help="share of mutants re-signed with the corpus key, 0..1 (default 0.25)")
    p.add_argument("--key-bits", type=int, default=1024, choices=(1024, 2048),
                   help="RSA size of the corpus keys (default 1024: re-signing is 10x cheaper)")
    p.add_argument("--timeout", type=positive_float, metavar="S",
                   help="--target-cmd: per-input timeout in seconds; a command killed past it is a hang "
                   "(default 5)")
    p.add_argument("--crash-exit", metavar="LIST",
                   help="--target-cmd: exit statuses that count as crashes, e.g. 1,134 (default: 128 and "
                   "above; death by a signal always counts)")
    p.add_argument("--hang-after", type=positive_float, metavar="S",
                   help="--target phoneemu|MODULE:FUNCTION: an in-process run taking more than S seconds "
                   "of CPU (blocked: ten times that of wall time) is reported as a hang (default 1)")
    p.add_argument("--no-minimize", action="store_true", help="save crashing inputs without minimising")
    p.add_argument("--no-round-trip", action="store_true",
                   help="--target phoneemu: skip the serialise(parse(b)) == b check (faster)")
    p.add_argument("--replay", type=Path, metavar="FILE", help="run one input against the target and exit")
    p.add_argument("--regenerate", type=Path, metavar="DIR",
                   help="rebuild input --run-index of --seed into DIR/input.bin, run it once against the "
                   "target and exit (1 when it is a finding, then also saved in DIR itself: minimized.bin, "
                   "info.json); what info.json's regenerate command does, into crashes/<id>/regenerated/")
    p.add_argument("--host", default="127.0.0.1", help="--serve: address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=port, help="--serve: the TFTP server's UDP port (default 6969), for "
                   "sip-response the SIP registrar's TCP port (default 5060); 0 = any")
    p.add_argument("--http-port", type=port, metavar="PORT",
                   help="--serve: also serve mutants over HTTP on this TCP port (phones try HTTP 6970 "
                   "first, spec §H.1; 0 = any); default TFTP only")
    p.add_argument("--mac", type=mac_option,
                   help="--serve: only answer names carrying this MAC (12 hex digits, or CUCM's SEP<MAC>)")
    p.add_argument("--device", metavar="ADDR",
                   help="--serve: the device under test's IP address: only its requests are answered "
                   "(any other host is refused: TFTP access violation, HTTP 403, logged), and only they "
                   "count for --silent-after; a lab network's other phones neither get mutants nor hide "
                   "a hung device")
    p.add_argument("--silent-after", type=positive_float, metavar="S",
                   help="--serve: a device that asks for nothing within S seconds after it was served a "
                   "mutant is a finding (it hung, or crashed and did not come back; reset it with your "
                   "harness so that it boots again; any request counts, so let the device under test "
                   "alone ask this server, or name it with --device): the mutant is saved in "
                   "DIR/crashes/silent-<index>/, exit 1")
    p.add_argument("--serve-root", type=Path, metavar="DIR",
                   help="--serve: answer every other requested name from the files in this folder (a file "
                   "or a missing folder is refused)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.add_argument("--reject-exc", metavar="LIST",
                   help="--target MODULE:FUNCTION: exception types that mean the input was rejected, "
                        "e.g. ValueError,mypkg.errors.ParseError (a bare name is a built-in); any other "
                        "exception is a crash (default: only phoneemu's DecodeError and VerificationError)")
    p.add_argument("--seed-dir", type=Path, metavar="DIR",
                   help="also mutate the files in DIR (e.g. fetched from a cluster, or exported with "
                        "--export-corpus and edited)")
    p.add_argument("--export-corpus", type=Path, metavar="DIR",
                   help="write the seed files of --format (with --seed-dir's) and the certificates and "
                        "key that check them into DIR, then exit")
    p.set_defaults(handler=_handle)


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


def _handle(args: argparse.Namespace) -> int:
    from phoneemu.fuzz.corpus import export_corpus
    from phoneemu.fuzz.mutators import Mutator
    from phoneemu.fuzz.runwatch import run_once

    if not 0.0 <= args.resign_ratio <= 1.0:
        raise EncodeError("--resign-ratio must be within 0..1", path="resign-ratio")
    if args.regenerate is not None:
        _check_regenerate(args)
    if args.replay is not None:
        _check_replay(args)
    args.seed = 0 if args.seed is None else args.seed  # the defaults, once --replay has refused them
    args.run_index = 0 if args.run_index is None else args.run_index
    one_input = args.replay is not None or args.regenerate is not None
    if args.export_corpus is None and not one_input and args.runs is None and args.time is None:
        raise EncodeError("give --runs N or --time S (or both)", path="--runs")
    if args.export_corpus is None and not one_input and args.out is None:
        raise EncodeError("--out DIR is required", path="out")
    for option, folder in (("--out", args.out), ("--export-corpus", args.export_corpus),
                           ("--regenerate", args.regenerate)):
        if folder is not None and folder.exists() and not folder.is_dir():
            raise EncodeError(f"{folder} exists and is not a folder (give a new or existing folder: files "
                              "are written into it)", path=option)
    root = args.serve_root
    if args.serve and root is not None and not root.is_dir():  # without --serve: refused below as such
        raise EncodeError(f"{root}: {'is not a folder' if root.exists() else 'no such folder'} (--serve "
                          "answers every other name the device asks for from the files in this folder)",
                          path="--serve-root")
    if args.export_corpus is not None:
        corpus = _corpus(args)
        _make_folder(args.export_corpus, "--export-corpus")
        written = export_corpus(corpus, args.export_corpus)
        print(f"{args.fmt}: {len(corpus.seeds)} seed file(s) and their keys written to {args.export_corpus}:")
        for path in written:
            print(f"  {path.name}")
        return 0
    if args.target is None and args.target_cmd is None and not args.serve:
        raise EncodeError("give one of --target phoneemu|MODULE:FUNCTION, --target-cmd CMD or --serve "
                          "(or --export-corpus DIR)", path="--target")
    if args.reject_exc is not None and (args.target is None or args.target == "phoneemu"):
        raise EncodeError("--reject-exc is for --target MODULE:FUNCTION (phoneemu's own rejections are "
                          "DecodeError and VerificationError; a command's are its exit statuses)",
                          path="reject-exc")
    # an option of another mode is refused, not ignored: the run would not be the one asked for
    if args.crash_exit is not None and args.target_cmd is None:
        raise EncodeError("--crash-exit is for --target-cmd CMD (an in-process target's crashes are its "
                          "exceptions)", path="crash-exit")
    if args.timeout is not None and args.target_cmd is None:
        raise EncodeError("--timeout is for --target-cmd CMD (an in-process run cannot be interrupted: its "
                          "hangs are measured, --hang-after S)", path="timeout")
    if args.hang_after is not None and args.target is None:
        raise EncodeError("--hang-after is for --target phoneemu|MODULE:FUNCTION (an in-process run; a "
                          "command's hang is --timeout S, a device's --silent-after S)", path="hang-after")
    if args.no_round_trip and args.target != "phoneemu":
        raise EncodeError("--no-round-trip is for --target phoneemu (the serialise(parse(b)) == b check of "
                          "our own parsers)", path="no-round-trip")
    if args.no_minimize and args.serve:
        raise EncodeError("--no-minimize is for --target and --target-cmd (a served mutant is saved as "
                          "served, never minimised)", path="no-minimize")
    # the documented defaults, filled per mode (None above: given or not)
    if args.target_cmd is not None and args.timeout is None:
        args.timeout = _DEFAULT_TIMEOUT
    if args.target is not None and args.hang_after is None:
        args.hang_after = _DEFAULT_HANG_AFTER
    for option, value in (("--mac", args.mac), ("--serve-root", args.serve_root),
                          ("--silent-after", args.silent_after), ("--device", args.device),
                          ("--http-port", args.http_port), ("--port", args.port)):
        if value is not None and not args.serve:
            raise EncodeError(f"{option} is for --serve (mutants served to a device under test)",
                              path=option[2:])
    if args.serve and args.fmt in MESSAGE_FORMATS and args.fmt != "sip-response":
        raise EncodeError(f"only files (over TFTP/HTTP) and sip-response (answers to a phone's REGISTERs) "
                          f"are served; {args.fmt} messages: fuzz them with --target or --target-cmd",
                          path="--serve")
    if args.serve and args.fmt == "sip-response":
        for option, value in (("--http-port", args.http_port), ("--serve-root", args.serve_root)):
            if value is not None:
                raise EncodeError(f"{option} is for files served over TFTP/HTTP, not sip-response (answers "
                                  "to a device's REGISTERs over SIP/TCP on --port)", path=option[2:])
    if args.serve:
        return _serve(args, Mutator(_corpus(args), resign_ratio=args.resign_ratio))
    args.out_made = args.out is not None and not args.out.exists()  # removed again if the corpus fails
    if not one_input:  # --out made there, a Ctrl-C from then on reported in it
        return _fuzz_run(args)
    if args.regenerate is not None:
        _make_folder(args.regenerate, "--regenerate")
    corpus = _corpus(args)
    mutator = Mutator(corpus, resign_ratio=args.resign_ratio)
    target = _target(args, corpus)
    try:
        if args.replay is not None:
            outcome = run_once(target, read_at_most(args.replay, _REPLAY_LIMIT, what="replay input"))
            print(f"{args.replay}: {outcome.status}"
                  f"{' — ' + outcome.signature if outcome.signature else ''}"
                  f"{' (' + outcome.detail + ')' if outcome.detail and not outcome.is_finding else ''}")
            if outcome.is_finding and outcome.detail:
                say(args, f"{args.replay}: {outcome.status}:\n{outcome.detail.rstrip()}")
            return 1 if outcome.is_finding else 0
        return _regenerate(args, target, mutator)
    finally:
        target.close()


def _corpus(args: argparse.Namespace) -> Corpus:
    """The seed corpus of ``--format`` (``--key-bits``), with ``--seed-dir``'s files."""
    from phoneemu.fuzz.corpus import build_corpus, with_seed_files

    corpus = build_corpus(args.fmt, bits=args.key_bits)
    return with_seed_files(corpus, args.seed_dir) if args.seed_dir is not None else corpus


def _corpus_or_no_out(args: argparse.Namespace) -> Corpus:
    """:func:`_corpus`; when it is refused (a bad ``--seed-dir``), an ``--out`` this run made and left
    empty is removed again: a usage error leaves nothing behind."""
    try:
        return _corpus(args)
    except PhoneEmuError:
        if getattr(args, "out_made", False):
            with contextlib.suppress(OSError):
                args.out.rmdir()  # only if still empty
        raise


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


class _RunState:
    """Where a fuzz run is, for a Ctrl-C's summary (:func:`_fuzz_run`): the step under way, and the
    loop's report once it has ended."""

    def __init__(self) -> None:
        self.step = "making the output folder"
        self.report: FuzzReport | None = None


def _fuzz_run(args: argparse.Namespace) -> int:
    """The fuzz loop into ``--out``: the folder made, the summary and ``summary.json``. A Ctrl-C (or SIGTERM)
    from the moment ``--out`` exists to summary.json written ends the run with summary.json (ours): before the
    loop began — making the folder, building the corpus, loading the target — ``"interrupted": true``, 0
    execs, and ``interrupted_while`` naming the step under way (``null`` when not interrupted, ``"running
    inputs"`` in the loop); exit 130 (:func:`_fuzz_end`). Before ``--out`` exists there is nowhere to
    write it: the command's plain "interrupted", exit 130."""
    import time

    t0 = time.perf_counter()
    state = _RunState()
    try:
        _fuzz_loop(args, state)
    except KeyboardInterrupt:
        if state.report is None:  # before (or as) the loop began: nothing run, but said and written
            if not args.out.is_dir():
                raise
            return _fuzz_end(args, _nothing_run(args, elapsed=time.perf_counter() - t0),
                             interrupted_while=state.step)
        state.report.interrupted = True  # once the loop had ended (closing the target): its report stands
    report = state.report
    assert report is not None  # _fuzz_loop returned: it set it
    return _fuzz_end(args, report, interrupted_while="running inputs" if report.interrupted else None)


def _fuzz_loop(args: argparse.Namespace, state: _RunState) -> None:
    """``--out`` made, the corpus built, the target loaded, the loop run: its report in ``state``, the step
    under way named there as it goes (:func:`_fuzz_run`)."""
    _make_folder(args.out, "--out")
    state.step = "building the corpus"
    from phoneemu.fuzz.engine import FuzzConfig, fuzz
    from phoneemu.fuzz.mutators import Mutator

    corpus = _corpus_or_no_out(args)
    mutator = Mutator(corpus, resign_ratio=args.resign_ratio)
    state.step = "loading the target"
    target = _target(args, corpus)
    state.step = "starting the run"
    try:
        config = FuzzConfig(fmt=args.fmt, seed=args.seed, runs=args.runs, time_limit=args.time,
                            out=args.out, minimize=not args.no_minimize,
                            reproduce=_reproduce_prefix(args),
                            progress=None if args.quiet else sys.stderr, said_by=command_of(args))
        state.report = fuzz(config, target, mutator, start_index=args.run_index)
    finally:
        target.close()


def _nothing_run(args: argparse.Namespace, *, elapsed: float) -> FuzzReport:
    """The report of a run interrupted before its loop began: 0 execs, interrupted."""
    from phoneemu.fuzz.engine import FuzzReport

    return FuzzReport(fmt=args.fmt, seed=args.seed, elapsed=elapsed, interrupted=True)


def _fuzz_end(args: argparse.Namespace, report: FuzzReport, *, interrupted_while: str | None) -> int:
    """The end of a fuzz run, normal or by Ctrl-C: ``summary.json`` first — written whole (atomically), a
    Ctrl-C or SIGTERM held back while it is written (then exit 130 with it there) — then the lines; exit
    130 when interrupted, else 1 when something crashed or hung."""
    with ctrl_c_deferred() as interrupted_meanwhile:
        summary = {"format": args.fmt, "seed": args.seed, "interrupted": report.interrupted,
                   "interrupted_while": interrupted_while,
                   "execs": report.execs, "elapsed": report.elapsed,
                   "execs_per_s": report.execs_per_s, "statuses": dict(report.statuses),
                   "findings": [{"signature": f.signature, "kind": f.kind, "count": f.count,
                                 "first_run": f.first_run, "dir": str(f.directory)}
                                for f in report.findings.values()]}
        write_output(args.out / "summary.json", (json_doc.dumps(summary, indent=2) + "\n").encode("utf-8"))
    interrupted_meanwhile()  # a Ctrl-C held back: KeyboardInterrupt now, summary.json whole
    if interrupted_while == "running inputs":
        say(args, f"interrupted after {report.execs} execs; the findings so far are saved")
    elif interrupted_while is not None:
        say(args, f"interrupted while {interrupted_while}, before any input was run")
    print(report.summary())
    for f in report.findings.values():
        print(f"  {f.kind}: {f.signature} (x{f.count}, first at run {f.first_run}) -> {f.directory}")
    if report.interrupted:
        return 130
    return 1 if report.crashed else 0


def _check_regenerate(args: argparse.Namespace) -> None:
    """``--regenerate DIR`` rebuilds one input of a run into DIR: the options of a fuzz run, a replay, an
    export or a device served are refused, not ignored (the command would not be the one asked for)."""
    for option, value in (("--out", args.out), ("--runs", args.runs), ("--time", args.time),
                          ("--replay", args.replay), ("--export-corpus", args.export_corpus),
                          ("--serve", args.serve or None)):
        if value is not None:
            raise EncodeError(f"--regenerate DIR rebuilds one input (--seed, --run-index) into DIR: give "
                              f"it without {option}", path="regenerate")


def _check_replay(args: argparse.Namespace) -> None:
    """``--replay FILE`` runs one input once against the target: the options of a fuzz run, a regeneration,
    an export or a device served are refused, not ignored (the command would not be the one asked for)."""
    for option, value in (("--out", args.out), ("--runs", args.runs), ("--time", args.time),
                          ("--seed", args.seed), ("--run-index", args.run_index),
                          ("--no-minimize", args.no_minimize or None),
                          ("--export-corpus", args.export_corpus), ("--serve", args.serve or None)):
        if value is not None:
            raise EncodeError(f"--replay FILE runs one input once against the target: give it without "
                              f"{option}", path="replay")


def _regenerate(args: argparse.Namespace, target: Target, mutator: Mutator) -> int:
    """``--regenerate DIR``: input ``--run-index`` of ``--seed`` into DIR (:func:`phoneemu.fuzz.engine.
    regenerate`); exit 1 when it is a finding, as the run that found it did."""
    from phoneemu.fuzz.engine import FuzzConfig, regenerate

    config = FuzzConfig(fmt=args.fmt, seed=args.seed, runs=1, minimize=not args.no_minimize,
                        reproduce=_reproduce_prefix(args))
    outcome, finding = regenerate(config, target, mutator, index=args.run_index, into=args.regenerate)
    size = (args.regenerate / "input.bin").stat().st_size
    head = (f"{args.fmt}: input {args.run_index} of seed {args.seed} rebuilt into "
            f"{args.regenerate / 'input.bin'} ({size} bytes)")
    if finding is None:
        why = f" ({outcome.detail})" if outcome.detail else ""
        print(f"{head}: {outcome.status}, not a finding now{why}")
        return 0
    print(f"{head}: {finding.kind} — {finding.signature}; minimized.bin and info.json beside it")
    if finding.detail:
        say(args, f"{args.regenerate / 'input.bin'}: {finding.kind}:\n{finding.detail.rstrip()}")
    return 1


def _serve(args: argparse.Namespace, mutator: object) -> int:
    """``--serve``: mutants to a device under test (:func:`_serve_session`) into ``--out``. A Ctrl-C (or
    SIGTERM) from the moment ``--out`` exists to summary.json written ends it with summary.json (ours, as
    :func:`_fuzz_run`; was: one just after ``--out`` was made, or while the summary line was printed,
    left none); before ``--out`` exists, the command's plain "interrupted"; exit 130."""
    from phoneemu.fuzz.corpus import NAMED_FORMATS, renamed
    from phoneemu.fuzz.engine import input_for
    from phoneemu.fuzz.mutators import Mutator
    from phoneemu.fuzz.targets import ServeSession
    from phoneemu.net.tftp_server import provider_from

    assert isinstance(mutator, Mutator)
    hexdigits = "0123456789abcdefABCDEF"
    if args.mac is not None and (len(args.mac) != 12 or any(c not in hexdigits for c in args.mac)):
        raise EncodeError(f"{args.mac!r}: expected 12 hex digits", path="--mac")
    allow_peer = host_matcher(args.device) if args.device is not None else None

    # .sgn / .enc.sgn / firmware: the seeds carry the requested name in their header FILENAME (and a
    # load its load name), re-signed, so a mutant is not refused by the §G.4 name rule before the
    # parser sees it; one Mutator per requested name (a phone asks for a few), at most 64 kept.
    per_name: dict[str, Mutator] = {}

    def mutator_for(name: str) -> Mutator:
        if args.fmt not in NAMED_FORMATS:
            return mutator
        base = name.replace("\\", "/").rsplit("/", 1)[-1]
        m = per_name.get(base)
        if m is None:
            if len(per_name) >= 64:
                per_name.clear()
            m = per_name[base] = Mutator(renamed(mutator.corpus, base), resign_ratio=mutator.resign_ratio)
        return m

    def make(index: int, name: str) -> tuple[bytes, dict[str, object]]:
        m = input_for(mutator_for(name), args.seed, index)
        return m.data, {"ops": list(m.ops), "resigned": m.resigned}

    fallback = provider_from(args.serve_root, max_file_size=32 * 1024 * 1024) if args.serve_root else None
    session: ServeSession | None = None
    interrupted = False
    try:  # from --out made on, a Ctrl-C (asyncio.run cancels the servers first) ends it with summary.json
        _make_folder(args.out, "--out")
        session = ServeSession(fmt=args.fmt, make=make, seed=args.seed, out=args.out, runs=args.runs,
                               start_index=args.run_index, mac=args.mac, fallback=fallback,
                               silent_after=args.silent_after, commands=_silence_commands(args))
        _serve_session(args, session, allow_peer)
    except KeyboardInterrupt:
        if session is None and not args.out.is_dir():
            raise  # nowhere to write summary.json: the command's plain "interrupted"
        interrupted = True
    return _serve_end(args, session, interrupted=interrupted)


def _serve_session(args: argparse.Namespace, session: ServeSession,
                   allow_peer: Callable[[str], bool] | None) -> None:
    """Serve ``session``'s mutants (TFTP and HTTP, or SIP for ``sip-response``) until ``--runs`` are served
    and settled, or ``--time`` (default :data:`_SERVE_DEFAULT_TIME`) has passed; each server's address
    and a device's silence said as they come."""
    import asyncio

    from phoneemu.fuzz.targets import serve_session

    def on_silence(finding: dict[str, object]) -> None:
        index = int(str(finding["index"]))
        say(args, f"{args.fmt}: the device asked for nothing in {finding['silent_s']} s after mutant "
                  f"{index} ({finding['name']}): hung, or crashed and not back? saved in "
                  f"{args.out / 'crashes' / f'silent-{index:06d}'}")

    def ready(port: int) -> None:
        say(args, f"{args.fmt}: serving mutants over TFTP on {host_port(args.host, port)}; "
                  f"log {session.log_path}")

    def http_ready(port: int) -> None:
        say(args, f"{args.fmt}: serving mutants over HTTP on {host_port(args.host, port)}")

    # Bounded even when only --runs is given and the device stops asking.
    time_limit = args.time if args.time is not None else _SERVE_DEFAULT_TIME
    if args.fmt == "sip-response":  # answers to the device's REGISTERs (phoneemu.fuzz.sipserve)
        from phoneemu.fuzz.sipserve import serve_sip_session

        def sip_ready(port: int) -> None:
            say(args, f"{args.fmt}: answering REGISTERs with mutants over SIP/TCP on "
                      f"{host_port(args.host, port)}; log {session.log_path}")

        sip_port = args.port if args.port is not None else 5060
        asyncio.run(serve_sip_session(session, host=args.host, port=sip_port, time_limit=time_limit,
                                      ready=sip_ready, on_silence=on_silence, allow_peer=allow_peer))
    else:
        tftp_port = args.port if args.port is not None else 6969
        asyncio.run(serve_session(session, host=args.host, port=tftp_port, time_limit=time_limit,
                                  ready=ready, http_port=args.http_port, http_ready=http_ready,
                                  on_silence=on_silence, allow_peer=allow_peer))


def _serve_end(args: argparse.Namespace, session: ServeSession | None, *, interrupted: bool) -> int:
    """The end of ``--serve``, normal or by Ctrl-C: ``summary.json`` first — written whole (atomically), a
    Ctrl-C or SIGTERM held back while it is written (then exit 130 with it there) — then the lines, as
    :func:`_fuzz_end`; exit 130 when interrupted, else 1 when the device fell silent after a mutant.
    ``session`` None: interrupted with ``--out`` made, before the session began (nothing served)."""
    served, requests = (session.served, session.requests) if session is not None else (0, 0)
    counts = dict(session.outcomes) if session is not None else {}
    silences = session.silences if session is not None else []
    with ctrl_c_deferred() as interrupted_meanwhile:
        summary = {"format": args.fmt, "seed": args.seed, "interrupted": interrupted, "served": served,
                   "requests": requests, "outcomes": counts,
                   "silences": [{"run_index": f["index"], "name": f["name"],
                                 "dir": str(args.out / "crashes" / f"silent-{int(str(f['index'])):06d}")}
                                for f in silences]}
        write_output(args.out / "summary.json", (json_doc.dumps(summary, indent=2) + "\n").encode("utf-8"))
    interrupted_meanwhile()  # a Ctrl-C held back: KeyboardInterrupt now, summary.json whole
    if interrupted and session is None:
        say(args, "interrupted while making the output folder, before any mutant was served")
    elif interrupted:
        say(args, f"interrupted after serving {served} mutant(s); the findings so far are saved")
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
    silent = "" if args.silent_after is None else \
        f"; silent after {len(silences)} mutant(s)" + (
            f" ({', '.join(str(f['index']) for f in silences[:10])}: crashes/silent-*)" if silences else "")
    log = f"; log {session.log_path}" if session is not None else ""
    print(f"{args.fmt}: served {served} mutant(s) to {requests} request(s); "
          f"{'request' if args.fmt == 'sip-response' else 'transfer'} outcomes: {outcomes}{silent}{log}")
    if interrupted:
        return 130
    return 1 if silences else 0


def _silence_commands(args: argparse.Namespace) -> Callable[[int, str, Path], dict[str, str]]:
    """What a ``--silent-after`` finding's info.json says (:class:`~phoneemu.fuzz.targets.ServeSession`):
    ``reproduce`` serves that mutant again with the same options (``--runs 1`` from its index) and
    watches the device; ``regenerate`` rebuilds it with ``--regenerate`` — not for ``sgn``, ``enc`` and
    ``firmware``, whose served mutants are made from the seeds renamed to the requested name, which
    ``--regenerate`` does not do: a ``note`` says so, ``input.bin`` is the copy."""
    from phoneemu.fuzz.corpus import NAMED_FORMATS

    common = _corpus_options(args)
    serve = ["phoneemu", "fuzz", "--format", args.fmt, "--serve", "--host", args.host]
    for option, value in (("--port", args.port), ("--http-port", args.http_port), ("--device", args.device),
                          ("--mac", args.mac), ("--silent-after", args.silent_after),
                          ("--serve-root", args.serve_root.resolve() if args.serve_root else None)):
        if value is not None:
            serve += [option, f"{value:g}" if isinstance(value, float) else str(value)]

    def commands(index: int, name: str, folder: Path) -> dict[str, str]:
        again = ["--seed", str(args.seed), "--run-index", str(index)]
        out = {"reproduce": shlex.join([*serve, *common, *again, "--runs", "1",
                                        "--out", str((folder / "reproduced").resolve())])}
        if args.fmt in NAMED_FORMATS:
            out["regenerate"] = ""
            out["note"] = (f"a device's silence: reproduce serves mutant {index} again to the first request "
                           f"of a matching name (these bytes when it is {name!r} again: {args.fmt} mutants "
                           "are made from the seeds renamed to the requested name and re-signed); "
                           "--regenerate does not rename, so it cannot rebuild it: input.bin is its copy")
        else:
            out["regenerate"] = shlex.join(["phoneemu", "fuzz", "--format", args.fmt, "--target", "phoneemu",
                                            *common, *again, "--regenerate",
                                            str((folder / "regenerated").resolve())])
            out["note"] = (f"a device's silence: reproduce serves mutant {index} again and watches the "
                           "device; regenerate rebuilds these bytes into regenerated/input.bin and runs them "
                           "against phoneemu's own parser")
        return out

    return commands
