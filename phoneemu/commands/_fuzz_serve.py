"""``phoneemu fuzz --serve``: mutants served to a device under test (TFTP and HTTP, or SIP for
``sip-response``) into ``--out`` (:func:`_serve`), the summary and ``summary.json`` at its end
(:func:`_serve_end`), and what a ``--silent-after`` finding's info.json says (:func:`_silence_commands`)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from phoneemu import json_doc
from phoneemu.commands._fuzz_common import _corpus_options, _FolderLock, _lock_if_free, _make_folder
from phoneemu.commands._said import say
from phoneemu.errors import EncodeError
from phoneemu.files import write_output
from phoneemu.interrupts import asyncio_run, ctrl_c_deferred
from phoneemu.values import host_matcher, host_port

if TYPE_CHECKING:
    from collections.abc import Callable

    from phoneemu.fuzz.targets import ServeSession

_SERVE_DEFAULT_TIME = 3600.0


def _serve(args: argparse.Namespace, mutator: object) -> int:
    """``--serve``: mutants to a device under test (:func:`_serve_session`) into ``--out``. A Ctrl-C (or
    SIGTERM) from the moment ``--out`` exists to summary.json written ends it with summary.json (ours, as
    :func:`_fuzz_run`; was: one just after ``--out`` was made, or while the summary line was printed,
    left none); before ``--out`` exists, the command's plain "interrupted"; exit 130. One run at a time into
    ``--out`` (:class:`_FolderLock`; was: two serving into one folder wrote each other's ``served/`` files
    and log): another run's folder is refused, exit 2, and never written in."""
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
    lock: _FolderLock | None = None
    try:
        try:  # from --out made on, a Ctrl-C (asyncio_run cancels the servers first) ends it with summary.json
            _make_folder(args.out, "--out")
            lock = _FolderLock(args.out, "--out")
            session = ServeSession(fmt=args.fmt, make=make, seed=args.seed, out=args.out, runs=args.runs,
                                   start_index=args.run_index, mac=args.mac, fallback=fallback,
                                   silent_after=args.silent_after, commands=_silence_commands(args))
            _serve_session(args, session, allow_peer)
        except KeyboardInterrupt:
            if lock is None:
                lock = _lock_if_free(args.out)
            if lock is None:
                raise  # nowhere to write summary.json (no folder, or another run's): plain "interrupted"
            interrupted = True
        return _serve_end(args, session, interrupted=interrupted)
    finally:
        if lock is not None:
            lock.release()


def _serve_session(args: argparse.Namespace, session: ServeSession,
                   allow_peer: Callable[[str], bool] | None) -> None:
    """Serve ``session``'s mutants (TFTP and HTTP, or SIP for ``sip-response``) until ``--runs`` are served
    and settled, or ``--time`` (default :data:`_SERVE_DEFAULT_TIME`) has passed; each server's address
    and a device's silence said as they come."""
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
        asyncio_run(serve_sip_session(session, host=args.host, port=sip_port, time_limit=time_limit,
                                      ready=sip_ready, on_silence=on_silence, allow_peer=allow_peer))
    else:
        tftp_port = args.port if args.port is not None else 6969
        asyncio_run(serve_session(session, host=args.host, port=tftp_port, time_limit=time_limit,
                                  ready=ready, http_port=args.http_port, http_ready=http_ready,
                                  on_silence=on_silence, allow_peer=allow_peer))


def _serve_end(args: argparse.Namespace, session: ServeSession | None, *, interrupted: bool) -> int:
    """The end of ``--serve``, normal or by Ctrl-C: ``summary.json`` first — written whole (atomically), a
    Ctrl-C or SIGTERM held back while it is written (then exit 130 with it there) — then the lines, as
    :func:`_fuzz_end`; exit 130 when interrupted, else 1 when the device fell silent after a mutant.
    ``session`` None: interrupted with ``--out`` made, before the session began (nothing served). A session
    ended by a file it could not write (a full disk: ``ServeSession.error``) says so first, naming the file;
    its summary.json has ``error``; exit 2 (ours; was: a traceback a request, the mutants not recorded
    counted as served, and the run went on serving nothing to the end of ``--time``). A silence whose folder
    could not be written is said not saved — the line, ``saved: false`` and ``dir: null`` in summary.json —
    and ``next_run_index`` (the ``--run-index`` to go on with, as a run's) serves its mutant again
    (:func:`_saved_text`; was: "the findings so far are saved", going on past it)."""
    served, requests = (session.served, session.requests) if session is not None else (0, 0)
    error = session.error if session is not None else None
    unsaved = session.unsaved if session is not None else []
    resume = session.resume_index if session is not None else args.run_index
    go_on = f"--seed {args.seed} --run-index {resume}"
    if error is not None:  # said before summary.json is written: that may fail too on a full disk
        say(args, f"{error}: serving stopped after {served} mutant(s); {_saved_text(unsaved, go_on)}")
    counts = dict(session.outcomes) if session is not None else {}
    silences = session.silences if session is not None else []
    with ctrl_c_deferred() as interrupted_meanwhile:
        summary = {"format": args.fmt, "seed": args.seed, "interrupted": interrupted, "error": error,
                   "served": served, "first_run_index": args.run_index, "next_run_index": resume,
                   "requests": requests, "outcomes": counts,
                   "silences": [{"run_index": f["index"], "name": f["name"],
                                 "dir": None if f["index"] in unsaved else
                                 str(args.out / "crashes" / f"silent-{int(str(f['index'])):06d}"),
                                 "saved": f["index"] not in unsaved}
                                for f in silences]}
        write_output(args.out / "summary.json", (json_doc.dumps(summary, indent=2) + "\n").encode("utf-8"))
    interrupted_meanwhile()  # a Ctrl-C held back: KeyboardInterrupt now, summary.json whole
    if interrupted and session is None:
        say(args, "interrupted while making the output folder, before any mutant was served")
    elif interrupted:
        saved = "a silence was not saved (above)" if unsaved else "the findings so far are saved"
        say(args, f"interrupted after serving {served} mutant(s); {saved} (to go on: {go_on})")
    outcomes = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
    silent = "" if args.silent_after is None else \
        f"; silent after {len(silences)} mutant(s)" + (
            f" ({', '.join(str(f['index']) for f in silences[:10])}: crashes/silent-*)" if silences else "")
    log = f"; log {session.log_path}" if session is not None else ""
    print(f"{args.fmt}: served {served} mutant(s) to {requests} request(s); "
          f"{'request' if args.fmt == 'sip-response' else 'transfer'} outcomes: {outcomes}{silent}{log}")
    if interrupted:
        return 130
    if error is not None:
        return 2
    return 1 if silences else 0


def _saved_text(unsaved: list[int], go_on: str) -> str:
    """What a session ended by a file it could not write says of its findings (:func:`_serve_end`): saved,
    or the silences whose folder could not be written named, and gone on from the first of them (was: "the
    findings so far are saved", going on past their mutants: the silences lost)."""
    if not unsaved:
        return f"the findings so far are saved (to go on: {go_on})"
    named = " and ".join(f"the silence after mutant {index}" for index in unsaved)
    which = "its mutant" if len(unsaved) == 1 else "their mutants"
    return (f"{named} {'was' if len(unsaved) == 1 else 'were'} not saved (to go on, serving {which} again: "
            f"{go_on})")


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
