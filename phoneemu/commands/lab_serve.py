"""``phoneemu lab serve``: run every lab service of a cluster until SIGINT/SIGTERM (spec §H.1, §H.6).

The ``lab`` command group lives in :mod:`phoneemu.commands.lab`; it adds this sub-command with
:func:`register_serve`. ``python -m phoneemu.commands.lab_serve --dir DIR`` runs it on its own.

Defaults are the real CUCM ports (TFTP UDP 69, HTTP 6970, TVS 2445, CAPF 3804, and HTTPS 6971 for a lab
with the HTTPS identity, ``lab init --https-key``: the configuration download); port 0 picks a free
one — the port the lab recorded when it is free (our convention, ``LabServers._start``; so is each
node's TVS), so that a lab served again keeps its ports and its files. Prints one ``listening`` line
per service (with the real port), records the ports in the cluster so its configs name them, re-reads
the cluster when another ``phoneemu lab`` command changes it and says so (``12:04:31 picked up a
change to the lab: generation 3; ITL md5 ...  sha1 ...; ITL signed by ...``). A port that is taken or needs
privileges is one error line (exit 2), suggesting ``--tftp-port 6969`` for TFTP; a port taken names the
process holding it when Linux's ``/proc`` lets this user know (``held by pid 1234 (phoneemu lab serve
...)``, :func:`phoneemu.lab.servers.port_holder`).

Rules:

* Its own writes to the lab — the ports it listens on, the configs re-issued for ``--host``, a CAPF
  outcome (LSC recorded, pending operation cleared), the HTTPS identity made on first use — hold the
  lab lock exclusively on the state as saved (:meth:`phoneemu.lab.servers.LabServers.update_cluster`):
  a ``phoneemu lab`` operation running at the same time is waited for and its change kept, never
  overwritten (and never interleaved: the state is saved atomically). A CAPF outcome waits at most
  :data:`phoneemu.lab.capf_service.CAPF_LOCK_WAIT_S`; past it the phone is told the operation failed
  (END_SESSION REASON 7), nothing is written and the operation stays pending
  (:mod:`phoneemu.lab.capf_service`).
* The lab it serves is read whole before any service listens: the state and the served files of one
  save, under the lab lock (:meth:`phoneemu.lab.servers.LabServers.start`; an operation under way is
  waited for, logged after :data:`phoneemu.lab.lock.LOCK_WAIT_S`), never an operation's new files beside
  the state before it.
* SIGINT (Ctrl-C), SIGTERM and SIGHUP (its terminal closed; unless ignored, ``nohup``) stop it cleanly
  once the cluster is open — while the servers start, wait
  for the lab lock or serve — within the time it takes to close its sockets: every server is closed
  (its ports free), no traceback, and the lab directory is left as the last whole save made it (a
  signal while it waits for the lab lock gives up that write; nothing is half-written). A write under
  way when the signal comes (the port record or the ``--host`` re-issue rebuilds every served file,
  about 1 ms a phone) is finished first; none begins after it (the signal is noted at once,
  :func:`_note_signals`). Measured (2 cores, 2026): 40-100 ms idle, with idle clients on every TCP
  port or a phone booting.
* Exit status: **130 after SIGINT** (128 + 2, the shell's convention for Ctrl-C, as every phoneemu
  command interrupted by Ctrl-C, :mod:`phoneemu.cli`); **0 after SIGTERM** (the ordinary way a service
  manager or ``kill`` stops a server; as before); **129 after SIGHUP** (128 + 1, ours: was killed by it,
  nothing finished). The first signal decides; another one while it stops, or as the process ends, is
  dropped (a second ``kill`` then killed the process, exit 143). The last line printed is ``stopping
  (SIGINT)``, ``stopping (SIGTERM)`` or ``stopping (SIGHUP)``. A Ctrl-C while the cluster is still being
  read is the CLI's ``interrupted``, also 130; a SIGTERM or SIGHUP then is as at any other moment, from
  the moment ``lab serve``'s handler runs (was: 130 and ``interrupted`` for a SIGTERM in its first 0.35
  s). Before that, the CLI holds them back from its first line (:func:`phoneemu.interrupts.hold_from_start`;
  was: 130 and ``interrupted`` while it imported its commands, about 0.15 s; a SIGHUP killed it); only
  Python starting and importing :mod:`phoneemu.cli` (about 0.05 s) leave them the system's default.
* stdout that cannot be written (``lab serve | head -1`` once ``head`` has left, a full disk, a terminal
  hung up) loses its lines, never the serving nor the exit status (was: exit 1 or 2 at start, or at the
  stop); a failure other than a reader gone is said once on stderr (:func:`_out`). The ports are also in
  ``DIR/.serve.lock`` and the lab (``boot --lab DIR`` finds them).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import errno
import logging
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from phoneemu.commands._argtypes import non_negative_int, port, positive_float
from phoneemu.commands._said import lose_to_null, teller
from phoneemu.errors import PhoneEmuError, TransportError
from phoneemu.interrupts import asyncio_run, release_from_start, releases_from_start
from phoneemu.values import host_port

if TYPE_CHECKING:  # the servers and their event loop are imported where lab serve runs (start-up time)
    import asyncio

    from phoneemu.lab.cluster import LabCluster
    from phoneemu.lab.servers import LabServers

__all__ = ["EXIT_SIGHUP", "EXIT_SIGINT", "OPEN_FILES_WANTED", "CapfBounds", "StopSignals", "hostport", "main",
           "raise_open_file_limit", "register_serve", "serve"]

#: Exit status after SIGINT (Ctrl-C): 128 + 2, as the shell reports a command Ctrl-C ended
EXIT_SIGINT = 130
#: Exit status after SIGHUP (the terminal closed): 128 + 1, as the shell reports a command a hangup ended
EXIT_SIGHUP = 129
#: open files ``lab serve`` raises its soft RLIMIT_NOFILE to (at most the hard limit): the services' shares
#: of it (:mod:`phoneemu.lab.servers` "Descriptors") then reach their own bounds (1,024 per TLS/TCP service)
OPEN_FILES_WANTED = 65_536
#: below this many open files, ``lab serve`` warns that idle connections can use them all up
OPEN_FILES_LOW = 8_192
#: ``--capf-read-timeout`` / ``--capf-session-timeout`` defaults, seconds (:mod:`phoneemu.lab.capf_service`)
CAPF_READ_TIMEOUT_S = 30.0
CAPF_SESSION_TIMEOUT_S = 120.0
_T = TypeVar("_T")

_EPILOG = """\
examples:
  phoneemu lab serve /tmp/lab                             real ports (TFTP 69 needs privileges)
  phoneemu lab serve --dir /tmp/lab --tftp-port 6969      unprivileged TFTP
  phoneemu lab serve --dir /tmp/lab --host 192.0.2.10 --tftp-port 6969
                                                          listen on 192.0.2.10; configs and ITL records
                                                          re-issued to name it (TVS, CAPF)
  phoneemu lab serve --dir /tmp/lab --host 127.0.0.11 --keylog /tmp/tls.keys -v
  phoneemu lab serve /tmp/lab --tftp-port 6969 --capf-read-timeout 60 --capf-session-timeout 1800
                                                          a CAPF that waits out slow key generations
  phoneemu lab serve /tmp/lab --tftp-port 6969 --sip-port 5060 --sips-port 5061 --attack tamper-signalling
                                                          an attacker on the SIP line: phones in encrypted
                                                          mode must drop the tampered call

Slow clients are cut, logged 'timeout': a SIP message must be whole within 10 s of the previous one
(or of a CRLF keep-alive), a CAPF frame within --capf-read-timeout (30 s) of its first byte. The
registrar's nonces carry an HMAC of their issue time and of the device challenged (ours: an answer
replayed under another device's name gets 401), so a challenge keeps nothing: a flood of unanswered
REGISTERs pushes out no phone's nonce; an answer to a nonce it may have forgotten gets stale=TRUE.

exit status: 130 after Ctrl-C (SIGINT), as any interrupted command; 0 after SIGTERM (a service manager's
or kill's stop); 129 after SIGHUP (the terminal closed; unless ignored under nohup); the first signal
decides. 2 refused before serving, one line on stderr: DIR not a lab cluster, a port taken (naming its
holder) or needing privileges, another lab serve of DIR running, a mistake in the options.
"""


#: ``--attack`` kinds: the on-path attacker's two attacks (:mod:`phoneemu.lab.on_path`)
ATTACKS = ("tamper-signalling", "replay-sip")

_port = port  # ASCII digits, 0..65535 (int() would take '٦٩' as 69)


class _GivenPort(argparse.Action):
    """A port option's value, its option noted in ``args.ports_given`` (a default is not given: the
    refusal of one port for two services names a default as one, :func:`_refuse_shared_tcp_ports`)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        namespace.ports_given = frozenset(getattr(namespace, "ports_given", ())) | {self.dest}


def _add_arguments(p: argparse.ArgumentParser) -> None:
    from phoneemu.lab.defaults import DEFAULT_PORTS  # the defaults the options show
    from phoneemu.protocols.defaults import MAX_IN_PROGRESS

    p.add_argument("dir_arg", type=Path, nargs="?", metavar="DIR",
                   help="the lab cluster directory (as for every other lab operation; or --dir DIR)")
    p.add_argument("--dir", type=Path, metavar="DIR", help="the lab cluster directory")
    p.add_argument("--host", metavar="H",
                   help="address to listen on (default: the address given to lab init --host, 127.0.0.1 "
                        "unless changed). Configs and ITL records name this address, so a different one "
                        "re-issues them (same signers: phones follow). :: listens on every address, IPv4 "
                        "and IPv6 (dual-stack), 0.0.0.0 on every IPv4 address; both keep the address the "
                        "configs name. An IPv6 address is written bare: --host ::1")
    p.add_argument("--tftp-port", type=_port, action=_GivenPort, default=DEFAULT_PORTS["tftp"],
                   metavar="N",
                   help="TFTP UDP port (default 69; 0 = any free port, the lab's last one when free)")
    p.add_argument("--http-port", type=_port, action=_GivenPort, default=DEFAULT_PORTS["http"],
                   metavar="N",
                   help="HTTP port (default 6970; 0 = any free port, the lab's last one when free)")
    p.add_argument("--tvs-port", type=_port, action=_GivenPort, default=DEFAULT_PORTS["tvs"],
                   metavar="N",
                   help="TVS TLS port (default 2445; 0 = any free port, the lab's last one when free)")
    p.add_argument("--capf-port", type=_port, action=_GivenPort, default=DEFAULT_PORTS["capf"],
                   metavar="N",
                   help="CAPF TLS port (default 3804; 0 = any free port, the lab's last one when free)")
    p.add_argument("--capf-read-timeout", type=positive_float, default=CAPF_READ_TIMEOUT_S, metavar="S",
                   help="CAPF cuts a phone silent for S seconds, also one generating its key without "
                   "REQUEST_IN_PROGRESS (spec §F.6; ours: default 30)")
    p.add_argument("--capf-session-timeout", type=positive_float, default=CAPF_SESSION_TIMEOUT_S, metavar="S",
                   help="CAPF cuts a session after S seconds in all, keep-alives or not (spec §F.8: a key "
                   "generation may take half an hour; ours: default 120)")
    p.add_argument("--capf-max-in-progress", type=non_negative_int, default=MAX_IN_PROGRESS, metavar="N",
                   help="CAPF takes at most N REQUEST_IN_PROGRESS a session, one more is a flood: cut (spec "
                   f"§F.6; ours: default {MAX_IN_PROGRESS}); a phone sending one every S seconds (boot "
                   "--capf-in-progress-seconds S) may generate its key for about N x S seconds")
    p.add_argument("--https-config-port", type=_port, action=_GivenPort, default=None, metavar="N",
                   help="HTTPS configuration download port of a lab made with lab init --https-key (spec "
                   "H.1; default 6971; 0 = any free port, the lab's last one when free): its ITL's EC "
                   "TFTP record presented, GET /SEP<MAC>.cnf.xml.sgn answered with the unsigned config")
    p.add_argument("--sip-port", type=_port, action=_GivenPort, default=None, metavar="N",
                   help="also run the SIP registrar over TCP on N (5060 is CUCM's; 0 = any free port), "
                   "one per node: phones register with digest authentication (spec G.13; boot --register); "
                   "the ports are recorded and every config's devicePool names them (spec H.5)")
    p.add_argument("--sips-port", type=_port, action=_GivenPort, default=None, metavar="N",
                   help="also run the SIP registrar over TLS on N (5061 is CUCM's; 0 = any free port), "
                   "presenting each node's CallManager certificate the CTL lists and asking for the "
                   "phone's LSC or MIC (mutual authentication)")
    p.add_argument("--keylog", type=Path, metavar="FILE", help="append TLS key-log lines (Wireshark)")
    p.add_argument("--attack", action="append", choices=ATTACKS, default=[], metavar="KIND",
                   help="put an attacker on the path of the SIP line (repeatable; ours, to test how phones "
                        "react): tamper-signalling rewrites a call's SDP over TCP so its media goes through "
                        "the attacker, and alters the TLS record of a call's answer (a phone must drop the "
                        "call); replay-sip sends each REGISTER seen over TCP again (digest authentication "
                        "must refuse it). Needs --sip-port / --sips-port")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    p.set_defaults(handler=run_serve, ports_given=frozenset())  # _GivenPort adds each port option given


def hostport(host: str, port: int) -> str:
    """``HOST:PORT`` as ``boot --tftp`` takes it back: an IPv6 address in brackets (``[::1]:6969``)."""
    return host_port(host, port)


def register_serve(lab_sub: Any) -> argparse.ArgumentParser:
    """Add ``serve`` to the ``lab`` sub-parsers (``lab_sub`` is what ``add_subparsers()`` returned)."""
    p: argparse.ArgumentParser = lab_sub.add_parser(
        "serve", help="run TFTP, HTTP, TVS and CAPF (and the SIP registrar with --sip-port / --sips-port) "
                      "for a lab cluster until Ctrl-C",
        description="Serve a lab cluster: TFTP, HTTP 6970, TVS 2445, CAPF 3804, HTTPS 6971 (the "
                    "configuration download, for a lab made with lab init --https-key), and the SIP "
                    "registrar with --sip-port / --sips-port.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(p)
    return p


#: the options of lab serve's TCP listeners (TFTP is UDP: it may share a number with one of them)
_TCP_PORT_OPTIONS = ("http_port", "tvs_port", "capf_port", "https_config_port", "sip_port", "sips_port")


def _refuse_shared_tcp_ports(args: argparse.Namespace) -> None:
    """Two TCP services given one port (``--tvs-port 2445 --capf-port 2445``): refused before anything is
    read or written, naming both options (was "cannot listen for capf ...: Address already in use (port in
    use, e.g. by another 'phoneemu lab serve' ...)", the second listener failing on the first's port).
    0 (any free port) may be given to several. An option left at its default is named as the default
    (``--sip-port 2445 is the TVS port (--tvs-port's default)``; was "--tvs-port and --sip-port are both
    2445", as if --tvs-port had been given)."""
    given = getattr(args, "ports_given", None)
    if given is None:  # not parsed by _add_arguments' options: each port taken as given
        given = frozenset(_TCP_PORT_OPTIONS)
    first: dict[int, str] = {}
    for name in _TCP_PORT_OPTIONS:
        port = getattr(args, name, None)
        if not port:
            continue
        if port in first:
            raise PhoneEmuError(f"{_shared_port_text(first[port], name, port, given)}: each TCP service "
                                "listens on a port of its own (0 = any free port)")
        first[port] = name


def _shared_port_text(earlier: str, later: str, port: int, given: frozenset[str]) -> str:
    """``earlier`` and ``later`` (``args`` names) hold one ``port``: each named as given or as a default."""
    def option(name: str) -> str:
        return "--" + name.replace("_", "-")

    if earlier in given and later in given:
        return f"{option(earlier)} and {option(later)} are both {port}"
    if earlier not in given and later not in given:
        return f"the defaults of {option(earlier)} and {option(later)} are both {port}"
    taken_by = later if earlier in given else earlier
    named = earlier if earlier in given else later
    service = taken_by.removesuffix("_port").upper()
    return (f"{option(named)} {port} is the {service} port ({option(taken_by)}'s default; "
            f"{option(taken_by)} N moves it)")


@releases_from_start
def run_serve(args: argparse.Namespace) -> int:
    """Handler of ``lab serve``: errors of the project propagate (the CLI prints them as one line). Run by
    :func:`~phoneemu.interrupts.asyncio_run`: a Ctrl-C before the servers' own handlers are set is the
    CLI's ``interrupted`` at every moment (``asyncio.run`` let out a CancelledError as it set its handler,
    exit 1, and hung with SIGINT ignored, a shell's background job); a SIGTERM or SIGHUP then stops it
    with the status it has at any other moment (:func:`_noted_from_the_start`)."""
    signals = StopSignals()
    try:
        with _noted_from_the_start(signals):
            try:
                release_from_start()  # a SIGTERM or SIGHUP the CLI held since its start: ours now
                return _run_serve(args, signals)
            except KeyboardInterrupt:
                if not signals.got and signals.term_unnoted:
                    signals.got.append(signal.SIGTERM)  # SIGINT ignored: it was a SIGTERM
                if not signals.got or signals.got[0] == signal.SIGINT:
                    raise  # a Ctrl-C: the CLI's interrupted, 130
                signals.say_stopping()
                return signals.exit_status()
    finally:
        if signals.got or signals.said:  # stopped by a signal: another one as the process ends is dropped
            atexit.unregister(_drop_stopping_signals)
            atexit.register(_drop_stopping_signals)


def _run_serve(args: argparse.Namespace, signals: StopSignals) -> int:
    """:func:`run_serve` once its signals are noted."""
    from phoneemu.lab.log_lines import OneLineFormatter

    if args.dir is not None and args.dir_arg is not None and args.dir != args.dir_arg:
        raise PhoneEmuError(f"two lab directories given ({args.dir_arg} and --dir {args.dir}): give one",
                            path="dir")
    args.dir = args.dir if args.dir is not None else args.dir_arg
    if args.dir is None:
        raise PhoneEmuError("which lab cluster? give its folder: phoneemu lab serve DIR (or --dir DIR)")
    if args.attack and args.sip_port is None and args.sips_port is None:
        raise PhoneEmuError("--attack puts an attacker on the SIP line: give --sip-port and/or --sips-port",
                            path="attack")
    _refuse_shared_tcp_ports(args)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, handlers=[handler])
    # (one time format for the log and the lines lab serve prints; every message names its service, and
    # is one line whatever a client sent: phoneemu.lab.log_lines)
    main = serve(args.dir, host=args.host, tftp_port=args.tftp_port, http_port=args.http_port,
                 tvs_port=args.tvs_port, capf_port=args.capf_port, keylog=args.keylog,
                 sip_port=args.sip_port, sips_port=args.sips_port, attacks=tuple(args.attack),
                 https_config_port=args.https_config_port,
                 capf_bounds=CapfBounds(read_timeout=args.capf_read_timeout,
                                        session_timeout=args.capf_session_timeout,
                                        max_in_progress=args.capf_max_in_progress),
                 signals=signals)
    try:
        return asyncio_run(main)
    finally:  # (a Ctrl-C before asyncio_run took it: closed, not 'never awaited')
        main.close()


def _capf_max_in_progress() -> int:
    """:data:`phoneemu.protocols.defaults.MAX_IN_PROGRESS`, imported when a CapfBounds is made (importing
    this module stays light: tests/unit/test_cli_startup.py)."""
    from phoneemu.protocols.defaults import MAX_IN_PROGRESS

    return MAX_IN_PROGRESS


@dataclass(frozen=True, kw_only=True)
class CapfBounds:
    """How long the lab's CAPF waits for a phone, and how many REQUEST_IN_PROGRESS it takes a session
    (``--capf-read-timeout``, ``--capf-session-timeout``, ``--capf-max-in-progress``; ours, spec §F.6,
    §F.8: :mod:`phoneemu.lab.capf_service` rules)."""

    read_timeout: float = CAPF_READ_TIMEOUT_S
    session_timeout: float = CAPF_SESSION_TIMEOUT_S
    max_in_progress: int = field(default_factory=_capf_max_in_progress)

    def text(self) -> str:
        """``read timeout 30s, session timeout 120s, at most 256 REQUEST_IN_PROGRESS a session``."""
        return (f"read timeout {self.read_timeout:g}s, session timeout {self.session_timeout:g}s, at most "
                f"{self.max_in_progress} REQUEST_IN_PROGRESS a session")


async def serve(root: Path, *, host: str | None = None, tftp_port: int = 69, http_port: int = 6970,
                tvs_port: int = 2445, capf_port: int = 3804, keylog: Path | None = None,
                sip_port: int | None = None, sips_port: int | None = None,
                attacks: tuple[str, ...] = (), capf_bounds: CapfBounds | None = None,
                signals: StopSignals | None = None, https_config_port: int | None = None) -> int:
    """Open the cluster, serve until SIGINT/SIGTERM/SIGHUP, stop cleanly; return the exit status (130 after
    SIGINT, 0 after SIGTERM, 129 after SIGHUP: module rules).

    ``host`` None listens on the address the configs name (``lab init --host``); another address is
    written into the configs and ITL records first (a phone told to ask TVS at the old address would
    find no TVS there and stay locked), except a wildcard (0.0.0.0, ::), which keeps the named address.
    ``attacks``: :data:`ATTACKS` the SIP line's on-path attacker makes (:mod:`phoneemu.lab.on_path`).
    ``capf_bounds``: the CAPF server's (None: the defaults, :class:`CapfBounds`); others than the
    defaults are said under its ``listening capf`` line. ``signals``: where the signals that stop it are
    noted (:func:`run_serve`'s, which notes those that come before the servers' handlers are set).
    ``https_config_port``: the HTTPS configuration download's, run for a lab with the HTTPS identity
    (None: 6971; given for a lab without it: refused)."""
    from phoneemu.lab.cluster import LabCluster
    from phoneemu.lab.lock import serving

    cluster = LabCluster.open(root)
    if https_config_port is not None and cluster.state.https_key is None:
        raise PhoneEmuError(f"--https-config-port: the lab {root} has no HTTPS configuration server (made "
                            "without lab init --https-key)", path="https-config-port")
    raise_open_file_limit()
    with serving(root) as note:
        return await _serve(cluster, root, note, host=host, tftp_port=tftp_port, http_port=http_port,
                            tvs_port=tvs_port, capf_port=capf_port, keylog=keylog,
                            sip_ports={"sip": sip_port, "sips": sips_port}, attacks=attacks,
                            https_config_port=https_config_port, capf_bounds=capf_bounds or CapfBounds(),
                            signals=signals if signals is not None else StopSignals())


def serve_clock(cluster: LabCluster) -> Callable[[], int] | None:
    """The clock ``lab serve`` dates what its servers do by (an LSC issued, a CAPF certificate checked, the
    ports recorded): the lab's "now" at each reading, :meth:`~phoneemu.lab.state.ClusterState.now_at` of
    the real time — the one rule of the lab's operations and of its phones (:mod:`phoneemu.commands.
    _lab_clock`): a clock ahead of the real time (``lab clock --advance``) holds until the real time passes
    it, a reload of the lab's state (another process changed it) is the lab's clock at once. None for a
    seeded lab (its own clock, the servers' default). Was None for every lab: an unseeded lab served a
    year after its last operation issued LSCs from that operation's time, already expired to its phones;
    then the lab's now read at start advancing with the real time: after ``lab clock --advance`` the
    servers ran ahead of the phones, and LSCs issued more than 5 minutes into serving were not yet valid
    to them (``F.6-capf-rejected ... not valid before``). A SIP digest nonce's age is not dated by it:
    :func:`sip_nonce_clock`."""
    if cluster.state.seed is not None:
        return None
    return lambda: cluster.state.now_at(time.time())


def sip_nonce_clock() -> int:
    """The clock ``lab serve``'s SIP registrar ages its digest nonces by (:mod:`phoneemu.lab.sip_service`:
    valid 600 s): seconds of real time elapsed (``time.monotonic``), whatever the lab's date — a nonce
    issued on a lab clock held ahead of the real time (:func:`serve_clock`) goes stale all the same (was:
    dated by the lab's clock, its nonces never went stale while it held). The registrar dates nothing
    else: a SIPS phone's certificate is checked in the handshake, without its validity dates
    (:mod:`phoneemu.lab.servers`)."""
    return int(time.monotonic())


def _servers(cluster: LabCluster, *, host: str, tftp_port: int, http_port: int, tvs_port: int,
             capf_port: int, keylog: Path | None, sip_ports: dict[str, int | None],
             https_config_port: int | None, capf_bounds: CapfBounds) -> LabServers:
    """``lab serve``'s servers of ``cluster`` listening on ``host``, not started: dated by
    :func:`serve_clock`, the SIP registrar's nonces aged by :func:`sip_nonce_clock`."""
    from phoneemu.lab.servers import LabServers
    from phoneemu.lab.state import HTTPS_CONFIG_PORT

    servers = LabServers(cluster, host=host, tftp_port=tftp_port, http_port=http_port, tvs_port=tvs_port,
                         capf_port=capf_port, keylog=keylog, watch=1.0, on_notice=_say,
                         https_config_port=HTTPS_CONFIG_PORT if https_config_port is None
                         else https_config_port,
                         sip_ports=sip_ports, keep_requests=False,  # never read here: the log says it all
                         capf_read_timeout=capf_bounds.read_timeout,
                         capf_session_timeout=capf_bounds.session_timeout,
                         capf_max_in_progress=capf_bounds.max_in_progress, clock=serve_clock(cluster))
    servers.sip_handler.clock = sip_nonce_clock
    return servers


async def _serve(cluster: LabCluster, root: Path, note: Callable[[str], None], *, host: str | None,
                 tftp_port: int, http_port: int, tvs_port: int, capf_port: int, keylog: Path | None,
                 sip_ports: dict[str, int | None], attacks: tuple[str, ...] = (),
                 https_config_port: int | None = None, capf_bounds: CapfBounds,
                 signals: StopSignals) -> int:
    """:func:`serve` once the lab folder is this process's to serve (``note``: where it listens)."""
    import asyncio

    from phoneemu.lab.cluster import WILDCARD_HOSTS, check_host
    from phoneemu.lab.state import DEFAULT_PORTS

    named = cluster.state.host
    reissue = False
    if host is None:
        host = named
    elif host.strip() in WILDCARD_HOSTS:
        # '[::]' and '*' are '::' (a socket cannot bind either text): every address, both families
        host = "0.0.0.0" if host.strip() == "0.0.0.0" else "::"
        every = "every IPv4 address" if host == "0.0.0.0" else "every address, IPv4 and IPv6"
        _out(f"listening on {every}; configs and ITL records name {named} "
             f"(to change it: phoneemu lab serve --dir {root} --host ADDRESS)")
    else:
        # checked now, re-issued once the servers listen there: an address this machine lacks must
        # leave the configs naming the old one
        host = check_host(host)
        reissue = host != named
    servers = _servers(cluster, host=host, tftp_port=tftp_port, http_port=http_port, tvs_port=tvs_port,
                       capf_port=capf_port, keylog=keylog, sip_ports=sip_ports,
                       https_config_port=https_config_port, capf_bounds=capf_bounds)
    servers.attacker.tamper = "tamper-signalling" in attacks
    servers.attacker.replay = "replay-sip" in attacks
    if attacks:
        _out(f"on-path attacker on the SIP line: {', '.join(sorted(set(attacks)))} (phoneemu's test "
             "attacker; -v logs each change it makes as 'on-path attacker ...')")
    stop = asyncio.Event()
    got = signals.got
    replaced = _note_signals(servers, stop, got)
    try:
        try:
            started = await _unless_stopped(servers.start(), stop)
        except TransportError as exc:
            if exc.kind != "unreachable":
                raise
            raise TransportError(f"{exc.message} (is {host} an address of this machine? --host ADDRESS "
                                 "listens on one it has and re-issues the configs for it, --host :: on "
                                 "every address)", kind=exc.kind) from None
        new_host = host
        # ``got``, not ``stop``: a signal during the port record is noted at once, the event set later
        if started and reissue and not got and await _unless_stopped(
                servers.update_cluster(lambda: cluster.set_host(new_host)), stop):
            _out(f"configs and ITL records named {named}; re-issued for {host} "
                 f"(generation {cluster.generation}; same signers, phones accept the new ITL)")
        if started and not got:
            _print_listening(servers, root, host)
            order = [*DEFAULT_PORTS, *sorted(set(servers.ports) - set(DEFAULT_PORTS))]
            note(f"pid {os.getpid()}, " + ", ".join(f"{name} {hostport(host, servers.ports[name])}"
                                                    for name in order if name in servers.ports))
        await stop.wait()
        signals.say_stopping()
    finally:
        try:
            await servers.stop()
        finally:  # a stop cancelled or failed still gives the signals back
            _restore_signals(replaced)
    return signals.exit_status()


def _note_signals(servers: LabServers, stop: asyncio.Event,
                  got: list[signal.Signals]) -> dict[signal.Signals, Any]:
    """Handle SIGINT, SIGTERM and SIGHUP (unless ignored: ``nohup``) by noting them at once: ``got`` and
    :meth:`LabServers.request_stop`, then ``stop`` set on the loop; returns the handlers replaced (module
    rules: stop within the time it takes to close the sockets and to finish a write under way, never
    begin another).

    A Python signal handler runs between two bytecodes, also while the loop runs a lab write of its own
    (``--host`` re-issues and the port record rebuild every served file: about 1 ms a phone). asyncio's
    ``add_signal_handler`` ran it only once the loop had control again, and by then the next write had
    begun: SIGTERM during the port record of a 3,000-phone lab stopped after the re-issue too, 5 to 6 s
    instead of the 0 to 3 s of the write under way. (asyncio.run's own SIGINT handler calls
    ``call_soon_threadsafe`` from a signal handler in the same way.)"""
    import asyncio

    loop = asyncio.get_running_loop()

    def on_signal(signum: int, _frame: object) -> None:
        got.append(signal.Signals(signum))
        servers.request_stop()
        loop.call_soon_threadsafe(stop.set)

    return {sig: signal.signal(sig, on_signal) for sig in _stopping_signals()}


def _stopping_signals() -> tuple[signal.Signals, ...]:
    """The signals that stop ``lab serve``: SIGINT, SIGTERM, and SIGHUP unless it is ignored (``nohup``,
    which asks for the server to outlive its terminal)."""
    hup = () if signal.getsignal(signal.SIGHUP) == signal.SIG_IGN else (signal.SIGHUP,)
    return (signal.SIGINT, signal.SIGTERM, *hup)


@dataclass
class StopSignals:
    """The signals that stopped ``lab serve``, in order (the first decides its exit status: module rules),
    and whether ``stopping (SIG...)`` was said."""

    got: list[signal.Signals] = field(default_factory=list)
    said: bool = False
    #: SIGTERM not noted before the servers' handlers (SIGINT ignored: :func:`_noted_from_the_start`)
    term_unnoted: bool = False

    def exit_status(self) -> int:
        """130 after SIGINT, 129 after SIGHUP, 0 after SIGTERM (or none)."""
        first = self.got[0] if self.got else None
        if first is None:
            return 0
        return {signal.SIGINT: EXIT_SIGINT, signal.SIGHUP: EXIT_SIGHUP}.get(first, 0)

    def say_stopping(self) -> None:
        """``stopping (SIGTERM)`` (the first signal) on stdout, once."""
        if not self.said:
            self.said = True
            _out(f"stopping ({self.got[0].name})" if self.got else "stopping")


@contextlib.contextmanager
def _noted_from_the_start(signals: StopSignals) -> Iterator[None]:
    """Note a SIGTERM or SIGHUP in ``signals`` before the servers' own handlers are set (the cluster read,
    the modules imported: about 0.3 s), then pass it on as the CLI has it (a Ctrl-C:
    :func:`~phoneemu.interrupts.term_as_ctrl_c`, its KeyboardInterrupt or the main task cancelled), so
    :func:`run_serve` can stop with the status the signal has at any other moment (was: 130 and
    ``interrupted`` for a SIGTERM in the first 0.35 s, 0 after; a SIGHUP killed the process at any time).
    Main thread only; a SIGHUP ignored (``nohup``) stays ignored.

    With SIGINT ignored (a shell's background job) SIGTERM's handler is left as it is:
    :func:`~phoneemu.interrupts.asyncio_run` then stops its run on SIGTERM only when it finds the CLI's
    own handler there (a wrapper made it ``asyncio.run``, whose loop a SIGTERM left hanging); a
    KeyboardInterrupt can then only be a SIGTERM's (or a SIGHUP's, noted), and :func:`run_serve` takes it
    so."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def pass_on(frame: Any) -> None:
        """A SIGTERM's way, with the handler in force now (asyncio_run's during its run)."""
        handler = signal.getsignal(signal.SIGTERM)
        if not callable(handler):  # not the CLI's rule: as it would have it
            raise KeyboardInterrupt
        handler(signal.SIGTERM, frame)

    old_term = signal.getsignal(signal.SIGTERM)

    def on_term(signum: int, frame: Any) -> None:
        signals.got.append(signal.Signals(signum))
        if not callable(old_term):
            raise KeyboardInterrupt
        old_term(signum, frame)

    def on_hup(signum: int, frame: Any) -> None:
        signals.got.append(signal.Signals(signum))
        pass_on(frame)

    replaced: dict[signal.Signals, Any] = {}
    if callable(signal.getsignal(signal.SIGINT)):
        replaced[signal.SIGTERM] = signal.signal(signal.SIGTERM, on_term)
    else:
        signals.term_unnoted = True
    if signal.SIGHUP in _stopping_signals():
        replaced[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hup)
    try:
        yield
    finally:
        _restore_signals(replaced)


def _drop_stopping_signals() -> None:
    """At the process's end (``atexit``, after ``lab serve`` stopped on a signal): SIGINT, SIGTERM and SIGHUP
    ignored. Python gives them their system default as it finalises (about 0.1 s, after its last handler
    ran; the CLI gives SIGTERM back as it returns), and a second ``kill`` or Ctrl-C then killed the process
    (exit 143 for SIGTERM, not 0); ignored, they are dropped as it ends (Python leaves an ignored signal
    so). Ignored, not blocked: a mask is the main thread's own, and a thread still running then (a daemon
    thread) was given the signal, killed by it (was: exit -15)."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)


def _restore_signals(replaced: dict[signal.Signals, Any]) -> None:
    """Put back the handlers :func:`_note_signals` replaced (one not set from Python: the default)."""
    for sig, handler in replaced.items():
        signal.signal(sig, signal.SIG_DFL if handler is None else handler)


def raise_open_file_limit(wanted: int = OPEN_FILES_WANTED, *, said_by: str = "phoneemu lab serve") -> int:
    """Raise the soft RLIMIT_NOFILE to ``wanted`` (at most the hard limit); return the soft limit now.

    Each service holds a share of the soft limit (:mod:`phoneemu.lab.servers` "Descriptors": TFTP half,
    HTTP a quarter, TVS 1/16, the other TLS/TCP listeners a shared pool) so that one flood cannot take
    the descriptors the others need; at the usual soft limit of 1,024 those shares are small (TVS 64
    connections). Before the shares, the services' own bounds added up to more than the process may
    open: found by a long-run audit, 300 idle TCP connections to TVS under ``ulimit -n 256``
    left no descriptor for HTTP, whose accept then failed again and again (asyncio logs each failure
    with its traceback: 20 MB of log in seconds) and for TFTP's transfer sockets ("server busy"). The
    hard limit is the most a process may take without privileges; below :data:`OPEN_FILES_LOW` a
    warning says so (the services still work; a flood of idle connections can stall them until its
    connections time out), said by ``said_by`` (the command as typed: :mod:`phoneemu.cli` rules)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            logging.getLogger("phoneemu.lab.servers").warning(
                "lab: cannot raise the open-file limit %d to %d: %s", soft, target, exc)
    if soft != resource.RLIM_INFINITY and soft < OPEN_FILES_LOW:
        teller(said_by)(f"note: open-file limit {soft} (ulimit -n): a flood of idle connections can use "
                        f"every descriptor until its connections time out; {OPEN_FILES_WANTED} or more "
                        "avoids it (ulimit -Hn, LimitNOFILE=)")
    return int(soft)


def _say(text: str) -> None:
    """What the servers notice (a change another process saved, served now — as the operation's own
    last line; a node's TVS started or stopped; a service taken down or brought back): one line with
    the time, so a terminal watching ``lab serve`` sees each change land."""
    _out(f"{time.strftime('%H:%M:%S')} {text}")


def _out(text: str) -> None:
    """``text`` and a line end on stdout, flushed (module rules: a stdout that fails loses its lines, never
    the serving nor the exit status). A first failure points stdout at the null device, so the lines
    still buffered are not written again as the process ends (Python then said ``Exception ignored ...
    BrokenPipeError`` and exited 120); one that is not a pipe whose reader left (a full disk, a terminal
    hung up) is said once on stderr."""
    try:
        print(text, flush=True)
    except OSError as exc:
        _stdout_lost(exc)


def _stdout_lost(exc: OSError) -> None:
    """:func:`_out`'s failure: stdout's file descriptor pointed at the null device (when it has one), the
    reason said on stderr unless the pipe's reader left (``lab serve | head -1``: nothing to say)."""
    lose_to_null(sys.stdout)
    if exc.errno != errno.EPIPE:
        with contextlib.suppress(OSError):
            teller("phoneemu lab serve")(f"stdout: {os.strerror(exc.errno) if exc.errno else exc}: its lines "
                                         "are lost from now on (serving goes on)")


async def _unless_stopped(work: Awaitable[_T], stop: asyncio.Event) -> _T | None:
    """``work``'s result, or None (``work`` cancelled) when ``stop`` is set first: a signal while the
    servers start, or while they wait for the lab lock a ``phoneemu lab`` operation holds, stops them
    at once instead of after the operation. Cancelled itself (``serve`` run as a task and cancelled, or
    asyncio.run's Ctrl-C before the handlers are ours), it cancels ``work`` and waits for it too: a start
    left running bound every port and recorded them in the lab after ``serve`` had stopped.

    Cancelled (again) while it waits for the cancelled ``work`` to end, it goes on waiting — that
    cancellation not passed on to ``work``, whose cleanup (closing what it bound) it would cut — and
    raises CancelledError once ``work`` has ended, as a TaskGroup does: the caller's cancel is never
    lost. (Awaiting the task itself passed the cancel on, and the CancelledError that came back was
    taken for ``work``'s own: the caller's cancel was swallowed, or InvalidStateError raised.)"""
    import asyncio

    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not task.done():  # stopped first, or this wait cancelled: ``work`` ends before we go on
            task.cancel()
            cancelled = False
            while not task.done():
                try:
                    await asyncio.wait({task})  # (asyncio.wait never cancels what it waits for)
                except asyncio.CancelledError:
                    cancelled = True  # ours: raised once ``work`` has ended
            if cancelled:
                raise asyncio.CancelledError
    return None if task.cancelled() else task.result()


def _print_listening(servers: LabServers, root: Path, host: str) -> None:
    """The ``listening`` lines (real ports, the TVS and CAPF certificates) and how to stop."""
    from phoneemu.crypto.certs import dn_text, fingerprint

    cluster = servers.cluster
    p = servers.ports
    lines: list[str] = []
    line = lines.append  # written at once by _out (stdout may be gone)
    tvs_cert = cluster.tvs_identity().cert
    capf_cert = cluster.identity("capf").cert
    line(f"lab cluster {cluster.state.name!r} ({root}), generation {cluster.generation}")
    line(f"listening tftp udp {hostport(host, p['tftp'])}")
    line(f"listening http tcp {hostport(host, p['http'])}")
    line(f"listening tvs  tls {hostport(host, p['tvs'])}  cert {dn_text(tvs_cert.subject)} "
         f"sha1 {fingerprint(tvs_cert, 'sha1')}")
    for node in range(2, cluster.state.nodes + 1):  # each node's TVS (add-node), named in the configs
        name = f"tvs-{node}"
        if name in p:
            cert = cluster.tvs_identity(node).cert
            line(f"listening {name} tls {hostport(host, p[name])}  cert {dn_text(cert.subject)} "
                 f"sha1 {fingerprint(cert, 'sha1')}")
    line(f"listening capf tls {hostport(host, p['capf'])}  cert {dn_text(capf_cert.subject)} "
         f"sha1 {fingerprint(capf_cert, 'sha1')}")
    if "https-config" in p:  # the 6971 configuration download (lab init --https-key)
        cert = cluster.identity("tftp-https").cert
        line(f"listening https-config tls {hostport(host, p['https-config'])}  cert {dn_text(cert.subject)} "
             f"sha1 {fingerprint(cert, 'sha1')}")
    h = servers.capf_handler
    bounds = CapfBounds(read_timeout=h.read_timeout, session_timeout=h.session_timeout,
                        max_in_progress=h.max_in_progress)
    if bounds != CapfBounds():  # --capf-*: a CUCM with other bounds rehearsed
        d = CapfBounds()
        line(f"capf {bounds.text()} (--capf-*; defaults {d.read_timeout:g}s, {d.session_timeout:g}s, "
             f"{d.max_in_progress})")
    for node in range(1, cluster.state.nodes + 1):  # each node's registrar: the configs' CallManagers
        suffix = f"-{node}" if node > 1 else ""
        if f"sip{suffix}" in p:
            line(f"listening {'sip' + suffix:4} tcp {hostport(host, p['sip' + suffix])}  SIP registrar "
                 "(digest realm ccmsipline; calls to moh, annunciator, ivr)")
        if f"sips{suffix}" in p:
            cm = cluster.callmanager(node).cert
            line(f"listening {'sips' + suffix:4} tls {hostport(host, p['sips' + suffix])}  cert "
                 f"{dn_text(cm.subject)} sha1 {fingerprint(cm, 'sha1')}")
    for name in sorted(servers.stopped_by_cluster):
        line(f"{name} stopped (an outage: phoneemu lab service {root} {name} start brings it back)")
    line("Ctrl-C (SIGINT) or SIGTERM stops")
    _out("\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m phoneemu.commands.lab_serve``: the same options as ``phoneemu lab serve``."""
    parser = argparse.ArgumentParser(prog="phoneemu lab serve", epilog=_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run_serve(args)
    except PhoneEmuError as exc:
        teller(parser.prog)(str(exc))
        return 2


if __name__ == "__main__":
    sys.exit(main())
