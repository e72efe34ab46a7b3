"""``phoneemu fuzz``: structure-aware fuzzing of CTL/ITL, ``.sgn`` and ``.enc.sgn`` parsers.

Exit status: 0 when no crash or hang (or accepted-unverified file) was found, 1 when at least one was
(or the replayed input crashes), 2 for usage errors (and a file the run could not write, a full disk:
summary.json's error), 130 on Ctrl-C or SIGTERM (the findings so far saved, summary.json written).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from phoneemu.commands._argtypes import mac_option, non_negative_int, port, positive_float, positive_int
from phoneemu.commands._fuzz_common import _DEFAULT_HANG_AFTER, _corpus, _make_folder, _target
from phoneemu.commands._fuzz_run import _fuzz_run, _regenerate, _supervised
from phoneemu.commands._fuzz_serve import _serve
from phoneemu.commands._said import say
from phoneemu.errors import EncodeError
from phoneemu.files import read_at_most
from phoneemu.fuzz import FORMATS, MESSAGE_FORMATS

__all__ = ["register"]

_DEFAULT_TIMEOUT = 5.0  # --target-cmd's --timeout
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
                             rejections, anything else (warnings included) a crash. itl, ctl, sgn,
                             enc: then the phone's §G decision, the phone holding the corpus's lists
                             (TVS offline): a file it accepts that no held key of the role that signs
                             it (SAST; CCM+TFTP/TFTP) signed, unless §G takes it unsigned, is an
                             "accepted-unverified" finding
  --target MODULE:FUNCTION   your Python callable taking the file bytes, imported with the current
                             directory on the path; the exception types of --reject-exc are its
                             rejections, anything else a crash. It runs in a child process of the
                             fuzzer: its death (a segfault or an abort in C code it calls, os._exit)
                             is a crash too ("killed by SIGSEGV at parser.py:123": where in your
                             code it died, so two native bugs are two findings; the Python frames
                             under way in info.json), and the run goes on with a new child (one
                             whose import starts threads runs in the fuzzer's process, said)
  --target-cmd "CMD {}"      an external program, run without a shell; {} is the input file path
                             ("CMD < {}": the input on its standard input; other shell syntax,
                             such as >, | or ;, is refused; quoted, '|' is an argument). A
                             crash is death by a signal or an exit status in --crash-exit
                             (default: >= 128), a hang a run killed at --timeout (default 5 s);
                             no core is dumped while fuzzing (--replay: your ulimit)
  --serve                    a device under test: the lab TFTP server (and HTTP server, --http-port)
                             answers the names a phone requests (ITLSEP<MAC>.tlv, CTLFile.tlv,
                             SEP<MAC>.cnf.xml.sgn ...) with the next mutant; requests are logged in
                             DIR/served/requests.jsonl. --silent-after S: a device that asks for
                             nothing within S s after a mutant (reset it with your harness so that
                             it boots again) is a finding, DIR/crashes/silent-<index>/. --device
                             ADDR: that host alone is answered and watched (others are refused)

Findings are deduplicated (exception type, struct.error named with its module, and innermost project
frame; signal, exit status, timeout), minimised (an in-process hang too, below),
and saved in DIR/crashes/<id>/ with input.bin, minimized.bin and info.json (format, seed, run index,
traceback, a command that replays it, and one that rebuilds it from --seed and --run-index into
DIR/crashes/<id>/regenerated/ with --regenerate). A silence finding's info.json says how to serve
its mutant again, and how to rebuild it (or why not). The same --seed always makes the same inputs
(summary.json's next_run_index: the --run-index that goes on where a run ended); one run at a time
into an --out (another run's is refused, exit 2: give parallel runs other --seed values and --out);
Ctrl-C (or SIGTERM, as in every phoneemu command) keeps the findings so far (one being minimised: with the
smallest input found so far, info.json's minimize_note says so) and writes the summary (exit 130),
also before the first input (summary.json's interrupted_while names the step): from --out made on,
summary.json is written whole before the summary is printed (--serve too). info.json's commands name
absolute paths and run as printed from any folder (a target found through this folder - a module of it,
a relative --target-cmd program - makes them begin "cd <this folder> && "); a crash is minimised with up
to 5,000 attempts within 20 s - within what is left of --time, so the run ends at --time (none left:
saved un-minimised, info.json's minimize_note says so) - an in-process attempt that hangs
(--hang-after) or outlives them stopped at once, a command's attempt that outlives them killed: not the
same crash. A hang is minimised with up to 500 attempts within 10 s, the same way (each attempt that hangs
costs --hang-after, or a command's --timeout; in process: main thread only).
An in-process input still running at Ctrl-C, or past --time, that is a hang by then (an endless loop) is
saved as a hang finding, un-minimised (past --time it is stopped and the run ends, exit 1); --replay and
--regenerate stop an in-process input once it is a hang. A --target MODULE:FUNCTION input (run in its child
process) is stopped as soon as it is a hang, --time or not: a hang finding, and the run goes on.
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
    g.add_argument("--target-cmd", metavar="CMD", help='external command, "{}" = input file path (none: the '
                   'path is its last argument; "< {}": on its standard input); no shell')
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
    target = _supervised(args, lambda: _target(args, corpus))
    try:
        if args.replay is not None:
            try:
                data = read_at_most(args.replay, _REPLAY_LIMIT, what="replay input")
            except OSError as exc:  # named: a failed read() names no file (was: "Input/output error" alone)
                raise EncodeError(f"--replay {args.replay}: cannot read it: {exc.strerror or exc}",
                                  path="replay") from None
            outcome = run_once(target, data)
            print(f"{args.replay}: {outcome.status}"
                  f"{' — ' + outcome.signature if outcome.signature else ''}"
                  f"{' (' + outcome.detail + ')' if outcome.detail and not outcome.is_finding else ''}")
            if outcome.is_finding and outcome.detail:
                say(args, f"{args.replay}: {outcome.status}:\n{outcome.detail.rstrip()}")
            return 1 if outcome.is_finding else 0
        return _regenerate(args, target, mutator)
    finally:
        target.close()


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
