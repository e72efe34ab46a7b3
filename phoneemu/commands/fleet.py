"""``phoneemu fleet boot``: boot thousands of phones at once against a lab or a real cluster.

Each phone is a real emulated phone (same boot sequence and rules as ``phoneemu boot``) with an
in-memory trust store (``--flash DIR`` keeps one flash folder per MAC under DIR). Phones are
sharded across processes (``--shards``, default: one per core) by MAC range: --count phones with
consecutive MACs from --mac-start, or the phones a --models FILE lists (a site's CUCM export: each
its own MAC and model; the summary then counts outcomes by model), or, with neither, the phones whose
flashes --flash DIR holds (a fleet booted again, each as the model its flash holds). Live progress goes
to stderr (booted, failed, rate and the most common failure so far: "most failed:
H.3-config-transport-failed 120" says at once that the TFTP address is wrong); the summary (counts
by outcome, by deciding rule and by trust-list outcome — "ITL updated 4990, ITL rejected 10" after
a certificate change —, how CAPF sessions ended ("CAPF: F.6-lsc-installed 1998, F.6-capf-rejected
2", its failures by kind), failed boots by kind (alike failures one line, with their count and
first MACs), files received over HTTP and over TFTP — a fallback from HTTP
shows here —, latency percentiles, rate, peak RSS, then the ways out of each lockout, grouped by
deciding rule, file kind and, where it changes them, reason code: a TVS QUERY too large, "reason
too-large") to stdout; --json adds each phone's record
(outcome, deciding rule, reason, itl/ctl outcome, files_over, capf and capf_reason; sip, sip_reason,
sip_server and sip_passed_over with --register: its summary counts the CallManager each registration
ended with and those passed over first, "SIP passed over first: 10.0.0.1:5061 G.13-unreachable 4000"
when node 1 is down); media, media_suite and media_reason with --call: every registered phone calls USER
over that connection (spec G.14) and the summary counts how the calls ended and the SRTP suite each
used ("Media: G.14-srtp 1998, G.14-rtp-not-encrypted-mode 2", "Media suite: AES_CM_128_HMAC_SHA1_80
1998, RTP 2"). Exit status 0 when every phone booted (and, with --register, registered; with --call,
its call carried media; and the CAPF operation it started, if any, completed: one rejected or unreachable
after the retries fails the phone, spec §F: a JUnit failure naming the CAPF rule and reason, counted on the
summary's first line, "2000 booted (2 of them CAPF failed)", and in --json as capf_failed; nothing
pending is no failure), 1 when any failed, 2 on bad input. A file at the path of --json, --junit or --plot
after a run is this run's report or none: a run that wrote none there (bad input, a second Ctrl-C, a full
disk) removes an earlier file there, said on stderr; a report naming an input (--models, a file of the
phones' --flash, of --installed-config-dir or of the --lab folder) is refused before any boot.
--capture F.pcap records the whole storm as ``boot --capture`` records one boot: a live capture in
this process (Linux, root or CAP_NET_RAW; otherwise exit 2 before any boot) of every IPv4/IPv6 packet
to or from the --tftp host and each host the phones connect to over TCP (TVS, CAPF, HTTP elsewhere),
on every interface; every shard writes its TLS secrets to one key log, F.keys (or --keylog). The
pcap stops growing at --capture-limit MiB (default 256; the summary and F.note.txt say so).
Files come as ``phoneemu boot`` fetches them: over HTTP (--http-port, default 6970) first when the
profile does (a cp-8861; spec §H.1), TFTP otherwise or when HTTP fails; --no-http for TFTP only. The
config comes over the HTTPS config download first (--https-config-port, default 6971, or the --lab's
recorded one) when a phone's rules say so, as ``boot``'s (spec §H.1: a cp-8861 whose ITL has signer
version 1.1 and a TFTP record with an EC key, a lab made with ``lab init --https-key``): "files
received: N over HTTP, N over HTTPS" and each --json record's files_over count it; --no-https-config
never asks it.
The summary's first line counts the phones asked for: "3000 phones: 2900 booted, 82 failed, 18 not
started (interrupted) in 14.03s (212.5 boots finished/s, sustained 230.1/s)": the rate is boots finished
(booted or failed) per second of the run; "sustained" is the mean of the boots finished in each full
second between the first and the last second in which boots ended (the ramp-up before the first boot
ended and the last, partial second left out; the overall rate when that leaves fewer than 3 seconds). Both
are rounded once, to 0.1/s, as --json has them (boots_per_s, sustained_boots_per_s) and --plot shows them.
Ctrl-C (or SIGTERM) starts no new boot, lets the boots under way finish and still writes the
summary, --json, --junit and --plot of what ran (the rest count as not started; interrupted as the
shards start, no phone booted: "40 phones: none started (interrupted)"), then exits 130; a second Ctrl-C
aborts at once. The phones not started are named by MAC: runs of consecutive MACs in the summary and in
--json (not_started_macs, at most 1,000 runs), a --junit case each, named by its MAC (as many cases as a
whole run has): skipped when interrupted, an error when --max-time (or giving up, or the run's time bound)
stopped them, as the exit status 1 says.
When nothing answers at the target (a mistyped address, a cluster down), a shard starts no new boot
once its first 32 phones got no answer to any request (every one timed out or was unreachable): the
summary says so and counts the rest as not started (--keep-going boots every phone anyway); one
answer of any kind, a file or "not found", and the storm goes on. When no phone got any answer, stderr
then says once where nothing answered and what to check, as phoneemu boot does.
A shard process that dies during the storm (e.g. killed by the OOM killer) is reported at once on
stderr, naming the shard, its MACs and the signal; the other shards finish, and the summary and
--json count its phones as lost ("lost" and "lost_shards"); exit status 1 (130 if interrupted too).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phoneemu import json_doc
from phoneemu.commands._argtypes import (
    MAX_FLEET_PHONES,
    fleet_size,
    mac_option,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from phoneemu.commands._capture import (
    DEFAULT_LIMIT_MIB,
    capture_json,
    capture_keylog,
    capture_summary,
    open_host_capture,
)
from phoneemu.commands._cluster_address import (
    check_resolves,
    cluster_address,
    http_port,
    https_config_port,
    lab_read_lock,
)
from phoneemu.commands._register import (
    add_call_options,
    add_register_options,
    call_of,
    checked_packets,
    registrar,
)
from phoneemu.commands._reports import never_stale
from phoneemu.commands._said import command_of, say, teller
from phoneemu.commands.boot import (
    add_capf_keygen_options,
    capf_keygen_overrides,
    capf_keygen_text,
    ignored_heard,
    nothing_answered_hint,
)
from phoneemu.errors import EncodeError, PhoneEmuError
from phoneemu.files import check_apart, check_writable, write_output_text
from phoneemu.words import counted

if TYPE_CHECKING:  # the fleet and its phones are imported where a storm runs (start-up time)
    from phoneemu.fleet.engine import FleetSpec, Prestate
    from phoneemu.fleet.shard import FleetResult
    from phoneemu.phone.boot import BootTarget
    from phoneemu.scenario.phone_models import PhoneModels

__all__ = ["register"]


def _macs_text(macs: Sequence[str], *, between: str = "..") -> str:
    """The run's MACs, first and last (``0A0000000000..0A0000000009``); one MAC, once."""
    return macs[0] if len(macs) == 1 else f"{macs[0]}{between}{macs[-1]}"


def _report_file(text: str) -> Path:
    """A report's FILE (``--json``, ``--junit``): ``-`` is refused, stdout carries the summary (``./-``
    names a file ``-``)."""
    if text == "-":
        raise argparse.ArgumentTypeError("'-' is not stdout here: stdout carries the summary; name a file "
                                         "(./- for a file named '-')")
    return Path(text)


_EPILOG = """\
examples:
  phoneemu lab serve --dir /tmp/lab --tftp-port 6969 &
  phoneemu fleet boot --count 5000 --tftp 127.0.0.1:6969 --mac-start 0A0000000000
  phoneemu fleet boot --count 40000 --tftp 10.0.0.5 --json out.json --plot storm.png
  phoneemu fleet boot --count 500 --tftp 10.0.0.5 --junit phones.xml        a test case per phone, for CI
  phoneemu fleet boot --count 2000 --lab /tmp/lab      where that lab's lab serve listens, with its MICs
  phoneemu fleet boot --count 2000 --lab /tmp/lab --flash fleet/   keep each phone's flash in fleet/<MAC>
  phoneemu fleet boot --lab /tmp/lab --flash fleet/     those phones again, holding what they kept
  phoneemu fleet boot --models site-phones.csv --tftp 10.0.0.5   a site's own phones (MACs, models)
  phoneemu fleet boot --count 500 --tftp 10.0.0.5 --capture storm.pcap   the storm's packets + storm.keys
  phoneemu wireshark storm.pcap --keylog storm.keys                        its TVS/CAPF decoded
  phoneemu fleet boot --count 5000 --tftp 10.0.0.6 --installed-itl old/ITLFile.tlv --installed-config-dir old/
                                     a migration wave: phones holding the old cluster's ITL and configs
  phoneemu fleet boot --count 5000 --tftp 10.0.0.5 --tftp-quarantine 30
                                     a TFTP server that retries for up to 30 s: a failed transfer's port
                                     stays taken that long, so its late DATA 1 reaches no new request
"""


#: ``fleet`` without an action prints its help: exit 2 (``fleet boot``'s own statuses: its --help)
_GROUP_EXIT_STATUS = """\
exit status: 'fleet' without an action prints this help and exits 2; 'fleet boot --help' gives boot's: 0
every phone booted (with --register registered, with --call its call carried media) and every CAPF
operation a phone started completed; 1 otherwise (a phone not started or lost too); 2 bad input; 130
interrupted.
"""


def register(sub: Any) -> None:
    from phoneemu.fleet.loop_names import EVENT_LOOPS  # the defaults and choices the options show
    from phoneemu.net.tftp_defaults import MAX_QUARANTINE, QUARANTINE_S
    from phoneemu.phone.profile_names import PROFILE_NAMES

    p = sub.add_parser("fleet", help="many phones at once (boot storms, conformance at scale)",
                       description="Boot many emulated phones at once against a cluster.",
                       epilog=_GROUP_EXIT_STATUS, formatter_class=argparse.RawDescriptionHelpFormatter)
    fsub = p.add_subparsers(dest="fleet_command", metavar="ACTION")
    b = fsub.add_parser("boot", help="boot N phones concurrently and summarise the outcomes",
                        description=__doc__, epilog=_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    b.add_argument("--count", type=fleet_size, default=None, metavar="N",
                   help=f"number of phones (1..{MAX_FLEET_PHONES:,}), consecutive MACs from --mac-start; "
                   "without it, --models FILE's phones, as listed (a site's own MACs), or else the phones "
                   "whose flashes --flash DIR holds (a fleet booted again)")
    b.add_argument("--tftp", metavar="HOST[:PORT]",
                   help="TFTP server (DHCP option 150): HOST or HOST:PORT; IPv6 as [V6]:PORT (--tftp "
                        "[::1]:6969) or bare without a port (::1 is port 69); default port 69. A name is "
                        "looked up once, before any phone boots (one that does not resolve: exit 2). "
                        "Required unless --lab DIR: then the address and ports its lab serve listens on")
    b.add_argument("--mac-start", default="0A0000000000", metavar="MAC", type=mac_option,
                   help="first MAC; phones get consecutive MACs (default 0A0000000000)")
    b.add_argument("--profile", default=None, choices=sorted(PROFILE_NAMES),
                   help="phone model profile of every phone (default: the model each phone's --flash "
                   "folder holds, else its --lab model, else cp-8861)")
    b.add_argument("--models", type=Path, metavar="FILE",
                   help="each phone's model, a line per phone: MAC (or SEP<MAC>) and model (cp-7962, "
                   "Cisco 7962: a CUCM phone export's Device Name and Device Type columns as they are); "
                   "phones not in it, and models without a profile here, are --profile's. Without --count "
                   "the fleet is the phones it lists")
    b.add_argument("--http-port", type=http_port, default=None, metavar="N",
                   help="HTTP file port, tried first when the profile fetches over HTTP, as `boot` "
                        "does (spec §H.1; default 6970, or that of the --lab DIR's lab serve: without "
                        "--tftp, or with --tftp at its TFTP address)")
    b.add_argument("--no-http", action="store_true", help="TFTP only")
    b.add_argument("--https-config-port", type=https_config_port, default=None, metavar="N",
                   help="HTTPS config download port, as `boot` asks it (spec §H.1: a phone whose ITL has "
                   "signer version 1.1 and a TFTP record with an EC key asks it for its config first; "
                   "default 6971, or that of the --lab DIR's lab serve: without --tftp, or with --tftp at "
                   "its TFTP address); the summary counts the files received over HTTPS")
    b.add_argument("--no-https-config", action="store_true",
                   help="never ask the HTTPS config download port: the config over HTTP/TFTP only")
    b.add_argument("--shards", type=non_negative_int, default=None, metavar="N",
                   help="processes (default: one per core; 0 = in this process)")
    b.add_argument("--concurrency", type=positive_int, default=64, metavar="N",
                   help="concurrent boots per process (default 64); more in flight give more boots/s "
                   "when the phones' CPU is the limit (bench/fleet.py, 2 cores: 64 → 756/s, 256 → 887/s) "
                   "and longer latencies (the wait for a turn)")
    b.add_argument("--timeout", type=positive_float, default=2.0, metavar="S",
                   help="timeout in seconds of one TFTP datagram, of each wait of an HTTP download (to "
                        "connect, for the response head, for more of the body; then TFTP is tried: a body "
                        "still coming is not cut, --fetch-max-time caps the whole), as boot --timeout; "
                        "default 2")
    b.add_argument("--retries", type=non_negative_int, default=5, metavar="N",
                   help="TFTP retransmissions per packet (default 5)")
    b.add_argument("--fetch-max-time", "--tftp-max-time", dest="fetch_max_time", type=positive_float,
                   default=None, metavar="S",
                   help="give up one file's download, TFTP or HTTP, after S seconds in all (default: 60, or "
                   "twice one packet's timeout x (retries+1) when longer; our convention; --tftp-max-time: "
                   "its former name)")
    b.add_argument("--tftp-quarantine", type=non_negative_float, default=QUARANTINE_S, metavar="S",
                   help="keep a TFTP socket that is not reused (its transfer failed or was abandoned) open, "
                   "unread, S seconds before closing it, so the OS cannot give its port to the next request "
                   "while the server still sends the old file there (default "
                   f"{QUARANTINE_S:g}: the lab server's retry budget; raise it for a cluster whose TFTP "
                   f"server retries longer; 0 = close at once). At most {MAX_QUARANTINE:,} are held a shard; "
                   "past that the one held longest closes early")
    b.add_argument("--blksize", type=positive_int, default=None, metavar="N",
                   help="ask for this TFTP block size in bytes (RFC 2348: 8..65464); default: the "
                   "phone's own (512)")
    add_register_options(b, after="after its boot each phone whose config was accepted (the summary's SIP "
                         "line; JUnit fails a phone not registered, exit 1):")
    add_call_options(b, what="Every registered phone calls: the summary's Media lines count how the calls "
                     "ended and the SRTP suite each used; JUnit fails a phone whose call carried no media, "
                     "exit 1")
    b.add_argument("--tvs-timeout", type=positive_float, default=10.0, metavar="S",
                   help="TVS exchange timeout in seconds: connect, handshake, answer (default 10)")
    b.add_argument("--auth-string", metavar="DIGITS", default=None,
                   help="the CAPF authentication string every phone has typed in (4..16 digits, spec "
                   "§F.7), for a pending operation by string (default: none; with --lab, each phone "
                   "types the string the lab set for it; given, it wins, as boot --lab's)")
    b.add_argument("--capf-retry-delay", type=non_negative_float, default=30.0, metavar="S",
                   help="pause before each CAPF retry in seconds (default 30, as the spec gives; a "
                   "phone retries 3 times); a pausing phone gives its turn (--concurrency) to the next "
                   "phone, and the progress line counts the phones pausing")
    add_capf_keygen_options(b, who="every phone")
    b.add_argument("--event-loop", default="auto", choices=EVENT_LOOPS,
                   help="event loop of the phone processes: auto (the default) = uvloop when "
                   "installed, else asyncio")
    b.add_argument("--max-time", type=positive_float, default=None, metavar="S",
                   help="start no new boot after S seconds (the rest count as not started: exit 1, and "
                   "in --junit an error case each, named by its MAC)")
    b.add_argument("--keep-going", action="store_true",
                   help=f"boot every phone even when nothing answers: by default a shard starts no new boot "
                   f"once its first {GIVE_UP_UNANSWERED} phones got no answer to any request (a wrong "
                   "address, a cluster down: each later phone would wait out the same timeouts)")
    b.add_argument("--flash", type=Path, default=None, metavar="DIR",
                   help="keep each phone's flash in DIR/<MAC> (default: in memory); each file is "
                   "replaced atomically, without the fsyncs of boot --flash (our convention: a killed "
                   "fleet leaves every file whole, an OS crash may lose the last writes)")
    b.add_argument("--json", type=_report_file, default=None, metavar="FILE",
                   help="write the summary and every phone's record as JSON, a record at a time from a "
                   "spool (an unnamed 0600 temporary file): the parent never holds them all. A spool "
                   "that cannot be written leaves --json and --junit unwritten, saying why; the "
                   "summary is still printed. '-' is refused: stdout carries the summary")
    b.add_argument("--junit", type=_report_file, default=None, metavar="FILE",
                   help="write a JUnit XML report for CI: a test case per phone, failed with its outcome, "
                   "deciding rule and reason when it did not accept a configuration (with the CAPF rule and "
                   "reason when its CAPF operation failed; with --register, --call: not registered, no "
                   "media) ('-' refused, as --json's)")
    b.add_argument("--plot", type=Path, default=None, metavar="FILE.png",
                   help="draw boots over time and the latency distribution (needs phoneemu[plot]); no "
                   "suffix: FILE.png; a format matplotlib cannot draw here (.pgf without TeX) is refused "
                   "before any boot, as is a report naming an input file (--models, --installed-itl ...)")
    b.add_argument("--keylog", type=Path, default=None, metavar="FILE",
                   help="append the phones' TLS secrets (TVS, CAPF) in key-log format, for Wireshark "
                   "and replay --keylog (with --capture: default FILE.keys beside the pcap)")
    b.add_argument("--capture", type=Path, default=None, metavar="FILE.pcap",
                   help="write the storm's packets to FILE.pcap: a live capture (Linux, root or CAP_NET_RAW) "
                   "of every packet to or from the TFTP host and each host the phones connect to over TCP "
                   "(TVS, CAPF), on every interface; the TLS key log goes to --keylog, default FILE.keys "
                   "(default: no capture). Both are 0600 whatever the umask (the key log holds the "
                   "sessions' secrets, the pcap the configs); a FIFO waits for a reader, as tcpdump -w "
                   "does (wireshark -k -i FILE.pcap)")
    b.add_argument("--capture-limit", type=positive_float, default=None, metavar="MiB",
                   help=f"stop recording once the pcap would exceed MiB mebibytes (default "
                   f"{DEFAULT_LIMIT_MIB:g}; the summary and FILE.note.txt say so); fractions allowed")
    b.add_argument("--installed-itl", type=Path, metavar="FILE",
                   help="every phone starts holding this ITL (e.g. the old cluster's, from tftp get "
                   "ITLFile.tlv: a migration wave), as if accepted earlier (default: nothing; a --flash "
                   "phone's own)")
    b.add_argument("--installed-ctl", type=Path, metavar="FILE", help="every phone starts holding this CTL")
    b.add_argument("--installed-config-dir", type=Path, metavar="DIR",
                   help="each phone starts holding its config from DIR (SEP<MAC>.cnf.xml.sgn or .cnf.xml, "
                   "e.g. a copy of the old cluster's TFTP root): it names the TVS servers the phone asks; "
                   "a phone without one there holds none")
    b.add_argument("--lab", type=Path, default=None, metavar="DIR",
                   help="the lab cluster folder the phones were added to (lab phone add): each phone "
                   "holds the MIC the lab issued it (DIR/phones/<MAC>/mic.pem, mic.key), as a scenario's "
                   "phones do, so it can enrol with CAPF by its MIC (lab capf ... --auth-mode mic), and a "
                   "phone the lab encrypts for with a manual key has it typed in (--profile "
                   "cp-7942-symmetric, lab phone add --encrypt symmetric); every "
                   "MAC of the run must be in the lab (checked before any boot). The lab is read under "
                   "DIR/.lab.lock, shared (a lab operation under way is waited for, said on stderr; each "
                   "phone's MIC read under it too). Default: no MIC")
    b.add_argument("--image-signer", type=Path, action="append", default=[], metavar="PEM",
                   help="firmware image-signing certificate every phone trusts (repeatable; with --lab the "
                   "lab's is trusted too, as boot --lab has it)")
    b.add_argument("-q", "--quiet", action="store_true", help="no live progress")
    b.set_defaults(handler=_boot)
    p.set_defaults(handler=lambda _args: (p.print_help(), 2)[1])


def _installed(args: argparse.Namespace) -> Prestate | None:
    """``--installed-itl/-ctl/-config-dir``: what every phone holds before its boot, checked here (one
    line, exit 2, before any boot) as ``predict`` checks it (``scenario.predict.load_installed``)."""
    if args.installed_itl is None and args.installed_ctl is None and args.installed_config_dir is None:
        return None
    from phoneemu.fleet.engine import Prestate
    from phoneemu.phone.profile import get_profile
    from phoneemu.scenario.predict import load_installed

    load_installed(limit=get_profile(args.profile or "cp-8861").trust_list_limit, itl=args.installed_itl,
                   ctl=args.installed_ctl)
    folder = args.installed_config_dir
    if folder is not None and not folder.is_dir():
        raise PhoneEmuError(f"--installed-config-dir {folder}: no such folder", path="installed-config-dir")
    held = [f"{k} {p}" for k, p in (("ITL", args.installed_itl), ("CTL", args.installed_ctl),
                                     ("configs from", folder)) if p is not None]
    say(args, f"every phone starts holding {', '.join(held)}")
    return Prestate(itl=args.installed_itl.read_bytes() if args.installed_itl is not None else None,
                    ctl=args.installed_ctl.read_bytes() if args.installed_ctl is not None else None,
                    config_dir=str(folder) if folder is not None else None)


def _add_missing_text(lab: Path, missing: list[str]) -> str:
    """How to add the ``missing`` MACs: one ``lab phone add --mac FIRST --count N`` per run of consecutive
    MACs (the first two runs written out, the others counted)."""
    runs: list[tuple[str, int]] = []  # (first MAC, phones) of each run of consecutive MACs
    for mac in missing:
        if runs and int(mac, 16) == int(runs[-1][0], 16) + runs[-1][1]:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((mac, 1))
    shown = " and ".join(f"'phoneemu lab phone add {lab} --mac {first}"
                         + (f" --count {count}'" if count > 1 else "'") for first, count in runs[:2])
    more = f" and {counted(len(runs) - 2, 'more such command')} (one per run of consecutive MACs)" \
        if len(runs) > 2 else ""
    return f"add {'it' if len(missing) == 1 else 'them'} with {shown}{more}"


def _lab_phones(args: argparse.Namespace, macs: list[str]
                ) -> tuple[str | None, dict[str, str], dict[str, str], dict[str, str]]:
    """``--lab DIR``: its phones folder, once every MAC of the run is in it, the manual config keys of
    the run's phones the lab encrypts with a symmetric key, the CAPF authentication strings of those
    whose pending operation is by string (one line, exit 2, before any boot) — none when ``--auth-string``
    is given: it wins, as ``boot --lab``'s does (said; was: the lab's typed, silently) — and each phone's
    model (its profile, when phoneemu has one); None and nothing without --lab."""
    if args.lab is None:
        return None, {}, {}, {}
    from phoneemu.fleet.mics import missing_macs, phones_folder
    from phoneemu.lab.state import load_state
    from phoneemu.scenario.phone_models import profile_for_model

    folder = phones_folder(args.lab)
    missing = missing_macs(folder, macs)
    if missing:
        first = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        are = "is" if len(missing) == 1 else "are"
        raise PhoneEmuError(f"--lab {args.lab}: {len(missing)} of the {counted(len(macs), 'phone')} {are} "
                            f"not in the lab ({first}); {_add_missing_text(args.lab, missing)}", path="lab")
    known = load_state(args.lab).phones
    keys = {mac: key for mac in macs if (ph := known.get(mac)) is not None and (key := ph.manual_key())}
    strings = {mac: typed for mac in macs
               if (ph := known.get(mac)) is not None and (typed := ph.pending_auth_string())}
    given_string = getattr(args, "auth_string", None)  # (a Namespace made by hand may have none)
    given = given_string is not None and bool(strings)  # --auth-string wins, as boot --lab's
    typed = "".join(f", and the {what} of {len(found)} of them typed in"
                    for what, found in (("manual config key", keys),
                                        ("CAPF authentication string", {} if given else strings))
                    if found)
    if given:
        typed += (f"; --auth-string {given_string} typed in on every phone, not the CAPF authentication "
                  f"string the lab set for {len(strings)} of them")
        strings = {}
    say(args, f"every phone holds the MIC {args.lab} issued it{typed}")
    profiles = {mac: name for mac in macs
                if (ph := known.get(mac)) is not None and (name := profile_for_model(ph.model)) is not None}
    return str(folder), keys, strings, profiles


def _phones_clock(args: argparse.Namespace) -> int:
    """Seconds the phones' clock is ahead of the real time: with ``--lab DIR`` the lab's clock, read once
    here for every shard and advancing with the real time (:mod:`phoneemu.commands._lab_clock`; said once
    on stderr when more than a minute off the real time, kept for the JSON in ``args.phone_clock``); 0
    without (``--tftp`` alone: the real time, the JSON as before)."""
    from phoneemu.commands._lab_clock import clock_doc, clock_line, lab_clock_offset

    if args.lab is None:
        return 0
    real = time.time()
    offset = lab_clock_offset(args.lab, real)
    line = clock_line(offset, real)
    if line is not None:
        say(args, line)
    args.phone_clock = clock_doc("lab", int(real) + offset)
    return offset


def _image_signers(args: argparse.Namespace) -> tuple[bytes, ...]:
    """DER of ``--image-signer`` certificates and, with ``--lab DIR``, of the lab's image-signing one: the
    firmware signers every phone trusts (spec §D), as ``boot`` has them."""
    from phoneemu.commands.boot import pem_certificates
    from phoneemu.crypto.certs import cert_der

    found = pem_certificates(args.image_signer)
    if args.lab is not None:
        from phoneemu.lab.cluster import LabCluster

        found.append(LabCluster.open(args.lab).identity("imagesigning").cert)
    return tuple(dict.fromkeys(cert_der(c) for c in found))


def _flash_profiles(args: argparse.Namespace, macs: list[str]) -> dict[str, str]:
    """Without --profile, the model each phone's ``--flash DIR/<MAC>`` holds (as ``boot`` takes it from
    its --flash): a fleet booted again on the flashes it kept keeps its models. A flash that cannot be
    read is left to the boot, which names it."""
    if args.flash is None or args.profile is not None:
        return {}
    from phoneemu.phone.phone import read_phone_file

    try:
        kept = set(os.listdir(args.flash)) & set(macs)
    except OSError:
        return {}
    out = {}
    for mac in sorted(kept):
        with contextlib.suppress(PhoneEmuError):
            name = read_phone_file(args.flash / mac).get("profile")
            if isinstance(name, str):
                out[mac] = name
    return out


def _profiles(args: argparse.Namespace, macs: list[str], models: PhoneModels | None,
              lab_profiles: dict[str, str]) -> dict[str, str]:
    """Each phone's model profile that is not ``args.profile`` (which this resolves: --profile, else
    cp-8861): ``--models FILE`` first, then, without --profile, the model its --flash holds, then the
    --lab phone's model. What the models file and the flashes gave is said on stderr."""
    flashed = _flash_profiles(args, macs)
    given = args.profile
    args.profile = given or "cp-8861"
    out = {} if given is not None else {m: p for m, p in lab_profiles.items() if p != args.profile}
    moved = sum(1 for m, p in flashed.items() if out.get(m, args.profile) != p)
    out.update(flashed)
    if moved:
        boot = "boots as the model its" if moved == 1 else "boot as the model their"
        say(args, f"{counted(moved, 'phone')} {boot} flash in {args.flash} holds")
    if models is not None:
        run = set(macs)
        listed = {m: p for m, p in models.profile_of.items() if m in run}
        out.update(listed)
        notes = [n for m, n in models.notes_of.items() if m in run]
        if notes:
            models_have = "phone's model has" if len(notes) == 1 else "phones' models have"
            say(args, f"{len(notes)} {models_have} no profile here, e.g. {notes[0]}")
        have = "has" if len(listed) == 1 else "have"
        say(args, f"{len(listed)} of the {counted(len(macs), 'phone')} {have} a model in {args.models}")
    return {m: p for m, p in out.items() if p != args.profile}


_MAC_FOLDER = re.compile(r"[0-9A-Fa-f]{12}")
_NAMED_DAMAGED = 10  # phone folders of --flash DIR that do not load, named one by one on stderr


def _empty_folder(root: Path) -> bool:
    """``root`` lists no entry (False when it cannot be listed: :func:`phone_flashes` says why)."""
    try:
        with os.scandir(root) as it:
            return next(it, None) is None
    except OSError:
        return False


def _flash_macs(root: Path, tell: Callable[[str], None]) -> list[int]:
    """The phones whose flashes ``root`` holds as ``fleet boot --flash`` keeps them (``root/<MAC>`` with a
    ``phone.json`` naming that MAC; :mod:`phoneemu.phone.flashes`), in MAC order: ``fleet boot --flash
    DIR`` without ``--count``/``--models`` boots that fleet again (ours). Other entries are not booted,
    counted on stderr; none: one line, exit 2."""
    from phoneemu.phone.flashes import phone_flashes

    if _empty_folder(root):  # said as the no-phone case is, with what to give (walk s38)
        raise PhoneEmuError(f"--flash {root}: empty (no phone's flash in it yet); a first boot of a fleet: "
                            "give --count N (with --mac-start MAC) or --models FILE", path="flash")
    entries = phone_flashes(root, limit=MAX_FLEET_PHONES, what="boot", option="--flash")
    macs = sorted({int(e.mac, 16) for e in entries if e.skipped is None and e.mac is not None
                   and len(e.entry) == 12 and e.entry.upper() == e.mac.upper()})
    others = len(entries) - len(macs)
    if not macs:
        raise PhoneEmuError(f"--flash {root}: no phone's flash in it (folders <MAC> holding a phone.json, as "
                            "fleet boot --flash keeps them); give --count N or --models FILE", path="flash")
    if others:
        tell(f"{counted(others, 'entry', 'entries')} of {root} not a phone's flash <MAC>: not booted")
    # a phone's folder (<MAC>) that does not load is a phone of the fleet not booted: each is named, with
    # why (a damaged phone.json was counted with the stray files, unnamed)
    booted = set(macs)
    damaged = [e for e in entries if _MAC_FOLDER.fullmatch(e.entry) and int(e.entry, 16) not in booted]
    for e in damaged[:_NAMED_DAMAGED]:
        why = e.skipped or (f"its phone.json names {e.mac}" if e.mac else "no phone.json")
        tell(f"{root / e.entry}: not booted: {why}")
    if len(damaged) > _NAMED_DAMAGED:
        tell(f"... and {counted(len(damaged) - _NAMED_DAMAGED, 'more phone folder')} not booted")
    return macs


def _run_macs(args: argparse.Namespace) -> tuple[list[int], PhoneModels | None]:
    """The run's MACs (``--count`` from ``--mac-start``, else the phones ``--models`` lists) and the
    models file read (None without --models); one line, exit 2, when there are none. ``--models`` or
    ``--flash`` that cannot be read is one line naming the option, the path and why (was the OSError's
    "/tmp: Is a directory", naming no option)."""
    from phoneemu.fleet.engine import mac_range, parse_mac
    from phoneemu.scenario.phone_models import read_phone_models

    if args.flash is not None and args.flash.exists() and not args.flash.is_dir():
        what = "a file" if args.flash.is_file() else "a device or pipe"
        raise PhoneEmuError(f"--flash {args.flash}: is {what}, not a folder (one folder per phone is kept "
                            "in it)", path="flash")
    models = None
    if args.models is not None:
        try:
            models = read_phone_models(args.models, default=args.profile or "cp-8861", done="booted")
        except IsADirectoryError:
            raise PhoneEmuError(f"--models {args.models}: is a folder, not a file", path="models") from None
        except OSError as exc:
            raise PhoneEmuError(f"--models {args.models}: {exc.strerror or exc}", path="models") from None
    if args.count is not None:
        if args.count < 1:
            raise PhoneEmuError("--count must be at least 1", path="count")
        try:  # normalise_mac's error names the field "mac", not the option typed
            start = parse_mac(args.mac_start)
        except EncodeError as exc:
            raise PhoneEmuError(exc.message, path="mac_start") from None
        return list(mac_range(start, args.count)), models
    if models is None:
        if args.flash is not None and args.flash.is_dir():
            return _flash_macs(args.flash, teller(command_of(args))), None
        raise PhoneEmuError("--count N is required (or --models FILE: the fleet is the phones it lists; or "
                            "--flash DIR of an earlier fleet boot: its phones again)", path="count")
    if not models.profile_of:
        raise PhoneEmuError(f"--models {args.models}: no phone in it", path="models")
    if len(models.profile_of) > MAX_FLEET_PHONES:
        raise PhoneEmuError(f"--models {args.models}: {len(models.profile_of):,} phones, at most "
                            f"{MAX_FLEET_PHONES:,} in one run", path="models")
    return [int(m, 16) for m in models.profile_of], models


def _models_of_run(args: argparse.Namespace, count: int,
                   profiles: Mapping[str, str]) -> collections.Counter[str]:
    """The phones of the run by model: those ``profiles`` names (from ``--models`` or ``--lab``), the rest
    ``--profile``'s."""
    counts = collections.Counter(profiles.values())
    if count > len(profiles):
        counts[args.profile] += count - len(profiles)
    return counts


def _model_mix(counts: collections.Counter[str], *, by_phone: bool) -> str:
    """``cp-8861`` or, when the phones have their own models (``by_phone``), ``cp-8861 700, cp-7962 300``."""
    if not by_phone:
        return ", ".join(counts)
    return ", ".join(f"{p} {n}" for p, n in counts.most_common())


#: fleet boot's FleetSpec.give_up_unanswered unless --keep-going (our convention)
GIVE_UP_UNANSWERED = 32


def http_fallback_hint(files_over: Mapping[str, int], target: BootTarget,
                       profiles: Iterable[str]) -> str | None:
    """A note when phones fetch over HTTP first (spec §H.1; ``profiles``: the models of the run) and
    not one file came that way: each tried HTTP for each file and fell back to TFTP (a wrong
    ``--http-port``, or a cluster without HTTP), which "files received: N over TFTP" alone does not tell."""
    from phoneemu.phone.profile import get_profile

    first = sorted(p for p in set(profiles) if get_profile(p).uses_http_first)
    if not target.use_http or not first:
        return None
    if files_over.get("http", 0) or not files_over.get("tftp", 0):
        return None
    return (f"note: no file came over HTTP (port {target.http_port}): the phones that fetch over HTTP first "
            f"({', '.join(first)}) tried it for every file, then TFTP; --http-port N where the cluster "
            "serves HTTP, or --no-http")


def _why(result: Any) -> str:
    """Why some phones were not started."""
    if result.interrupted:
        return "interrupted"
    if result.overran:
        return str(result.overran)
    if result.gave_up:
        return f"{result.gave_up}; --keep-going boots every phone anyway"
    return "--max-time"


def _stopped(result: Any) -> str:
    """Why some phones were not started, in a few words (the summary's first line, the plot's title):
    ``interrupted``, ``interrupted as the shards started``, ``--max-time``, ``giving up: no answer``, or
    the run's time bound (:func:`_why` says it whole)."""
    if result.interrupted:
        early = getattr(result, "before_storm", False)
        return "interrupted as the shards started" if early else "interrupted"
    if result.overran:
        return str(result.overran)
    return "giving up: no answer" if result.gave_up else "--max-time"


#: the runs of not-started MACs ``--json`` lists (``not_started_macs``), and the summary line
_RUNS_LISTED, _RUNS_SAID = 1000, 5


def _not_started_macs(result: Any) -> list[int] | None:
    """The MACs of the phones not started, in the run's order: each shard's queue when it stopped
    (``result.not_started_runs``), with or without --json and --junit (was: the run's phones with no
    record, so unknown, and the summary's line named no MAC, when no record was kept); None when they do
    not come to ``result.not_started``."""
    if not result.not_started:
        return []
    macs = [mac for first, last in result.not_started_runs for mac in range(first, last + 1)]
    return macs if len(macs) == result.not_started else None


def _not_started_line(result: Any, macs: Sequence[int] | None) -> str:
    """``not started (interrupted): 18: 0A0000000BB6..0A0000000BC7``: the first few runs of MACs, when
    known."""
    from phoneemu.fleet.metrics import mac_runs, runs_text

    line = f"not started ({_why(result)}): {result.not_started}"
    if not macs:
        return line
    runs = runs_text(mac_runs(macs))
    more = f" and {counted(len(runs) - _RUNS_SAID, 'other run')}" if len(runs) > _RUNS_SAID else ""
    return f"{line}: {', '.join(runs[:_RUNS_SAID])}{more}"


def _not_started_case(result: Any, max_time: float | None) -> tuple[str, bool]:
    """The message of a not-started phone's JUnit case and whether it is an error (a run stopped by
    --max-time, by giving up or by its time bound: exit 1, not green) rather than skipped (interrupted:
    the user stopped it, exit 130)."""
    n = counted(result.not_started, "phone")
    if result.interrupted:
        return f"not started: interrupted before it booted ({n} not started)", False
    if result.overran or result.gave_up:
        return f"not started: {_why(result)} ({n} not started)", True
    limit = f"--max-time {max_time:g} s" if max_time is not None else "--max-time"
    return f"not started: {limit} stopped {n} before they started", True


def _write_junit(path: Path, result: Any, *, target: str, count: int, lab: Path | None = None,
                 flash: Path | None = None, not_started: Sequence[int] | None = None,
                 max_time: float | None = None, installed: str = "") -> None:
    """``--junit``: a case per phone booted (:mod:`phoneemu.fleet.junit`), a case per phone not started
    named by its MAC (``not_started``; when not known, one case counting them) — skipped when interrupted,
    an error when --max-time, giving up or the time bound stopped them (:func:`_not_started_case`: exit 1,
    so not green; was one skipped case ``not started``, no MAC, a --max-time run green) —, an error case
    per phone of a shard process that died, named by its MAC, its message naming the shard (was one case
    ``lost shard N`` for all its phones): the cases add up to the phones asked for. Its ways out name the
    lab folder (``lab``) and the phone's own flash (``flash``/MAC) where known, as the summary does, and
    are those of the lists the phone holds (its record's ``held``, as the summary's group: was the table's
    when the flash was not kept, ``lab rollback OLD on`` to a phone holding a CTL), followed by the legend
    of the placeholders they leave, as the summary's (:func:`phoneemu.fleet.junit.ways_out_lines`; was
    ``OLD`` bare). ``installed``: the ``--installed-*`` options given (:func:`_installed_options`), what
    phones whose flash is not kept start holding."""
    from phoneemu.fleet.junit import Case, field_lines, ways_out_lines, write_cases
    from phoneemu.fleet.metrics import BootRecord
    from phoneemu.phone.ways_out import FLASH_STARTS_HOLDING

    def fill(rec: BootRecord) -> dict[str, str]:
        decided = (rec.rule, rec.reason)  # whether the TVS it could not reach is the lab's
        known = _phone_fill(rec.mac, target=target, lab=lab, flash=flash, decided=decided)
        return known | {FLASH_STARTS_HOLDING: installed} if installed and flash is None else known

    def case(rec: BootRecord) -> Case:
        if rec.outcome == "ok" and rec.capf_failed:  # its CAPF operation started and did not complete
            ways = ways_out_lines(rec.sip or "", "sip", fill(rec), why=_FLEET_LEAVES,
                                  otherwise=_LEFT_BY_FLEET) if rec.sip_reason is not None else []
            return Case(rec.mac, time_s=rec.latency_s, failure=(
                f"CAPF operation failed ({rec.capf}): {rec.capf_reason}",
                "\n".join([*field_lines(rec.as_dict()), *ways])))
        if rec.outcome == "ok" and rec.sip_reason is not None:  # --register: a phone up but not registered
            ways = ways_out_lines(rec.sip or "", "sip", fill(rec), why=_FLEET_LEAVES,
                                  otherwise=_LEFT_BY_FLEET)
            return Case(rec.mac, time_s=rec.latency_s, failure=(
                f"not registered ({rec.sip}): {rec.sip_reason}",
                "\n".join([*field_lines(rec.as_dict()), *ways])))
        if rec.outcome == "ok" and rec.media_reason is not None:  # --call: registered, no media flowed
            return Case(rec.mac, time_s=rec.latency_s, failure=(
                f"no media ({rec.media}): {rec.media_reason}",
                "\n".join(field_lines(rec.as_dict()))))
        if rec.outcome == "ok":
            return Case(rec.mac, time_s=rec.latency_s, output=_failed_downloads_text(rec))
        message = f"{rec.outcome} ({rec.rule})" + (f": {rec.reason}" if rec.reason else "")
        locked = rec.outcome == "locked-out"
        ways = ways_out_lines(rec.rule or "", rec.kind or "", fill(rec), why=_FLEET_LEAVES,
                              otherwise=_LEFT_BY_FLEET, reason_code=rec.reason_code,
                              held=rec.held) if locked else []
        body = "\n".join([*field_lines(rec.as_dict()), *ways])  # values as a CI reader reads them
        return Case(rec.mac, time_s=rec.latency_s, failure=(message, body))

    def cases() -> Iterator[Case]:  # one at a time: write_cases streams them
        yield from map(case, result.records)
        if result.not_started:
            message, error = _not_started_case(result, max_time)
            names = [f"{m:012X}" for m in not_started] if not_started else ["not started"]
            for name in names:  # a generator: 40,000 cases written one at a time
                yield Case(name, error=message) if error else Case(name, skipped=message)
        for lost in result.lost:  # a case each of its phones, an error naming the shard (was one case)
            message = f"lost with its shard: {lost.message()}"
            yield from (Case(f"{mac:012X}", error=message) for mac in lost.macs_lost)
    write_cases(path, suites="phoneemu fleet", suite=f"fleet boot {counted(count, 'phone')} -> {target}",
                cases=cases(), time_s=result.metrics.wall_s)


def _failed_downloads_text(rec: Any) -> str | None:
    """``--junit``: a phone that booted although downloads failed in transport says which (None: none)."""
    if not rec.failed_downloads:
        return None
    failed = ", ".join(f"{name} {kind}" for name, kind in rec.failed_downloads)
    return f"downloads failed in transport: {failed} (booted on what it had)"


#: why the phones' MACs are left (``--mac FIRST --count N``)
_NOT_CONSECUTIVE = ("not known to fleet boot: the phones it booted (--models, --flash) need not have "
                    "consecutive MACs")
#: why a placeholder is left in ``fleet boot``'s ways out (the legend of
#: :meth:`~phoneemu.fleet.metrics.FleetMetrics.render`), by name, else :data:`_LEFT_BY_FLEET`; as ``boot``'s
_FLEET_LEAVES = {
    "OLD": "not known to fleet boot: --lab names the cluster it boots against, not the one they left",
    "FIRST": _NOT_CONSECUTIVE, "N": _NOT_CONSECUTIVE,
    "FILE": "not kept by fleet boot: the file served under the name the deciding line gives"}
_LEFT_BY_FLEET = "not known to fleet boot"


def _run_fill(target: BootTarget | str, lab: Path | None, flash: Path | None) -> dict[str, Any]:
    """The placeholders of the ways out every phone of the run shares: the lab (``DIR``; ``NEW`` too, the
    cluster a migration's phones moved to: the one they refused, booted against), or the cluster that is
    not a lab (no lab command), and that the flashes were not kept (no ``--flash``)."""
    from phoneemu.phone.ways_out import FLASH_NOT_KEPT, NOT_A_LAB

    return {"DIR": lab, "NEW": lab, NOT_A_LAB: target if lab is None else None,
            FLASH_NOT_KEPT: "phoneemu fleet boot" if flash is None else None}


def _phone_fill(mac: str, *, target: BootTarget | str, lab: Path | None, flash: Path | None,
                decided: tuple[str | None, str | None] = (None, None)) -> dict[str, str]:
    """The ways out's placeholders known for one phone of the run (its JUnit body): :func:`_run_fill`, its
    flash (``FLASH``: ``--flash``/MAC) and its MAC; whether the TVS it could not reach is the lab's
    (:func:`~phoneemu.phone.ways_out.tvs_back_fill` of its deciding rule and reason, ``decided``)."""
    from phoneemu.phone.ways_out import tvs_back_fill

    known = {**_run_fill(target, lab, flash), "FLASH": flash / mac if flash is not None else None, "MAC": mac}
    return {k: str(v) for k, v in known.items() if v is not None} | tvs_back_fill(lab, [decided])


def _summary_fill(args: argparse.Namespace, target: BootTarget, macs: Sequence[str], *,
                  listed: bool, failures: Iterable[Mapping[str, Any]] = ()) -> dict[str, str]:
    """The ways out's placeholders known for the whole run (:func:`~phoneemu.phone.ways_out.way_out_lines`),
    for the summary and ``--json``'s ``run`` alike: :func:`_run_fill`, the flashes' folder (``FLEET``);
    consecutive MACs name the run (``--mac FIRST --count N``); whether the TVS the phones could not reach is
    the lab's (:func:`~phoneemu.phone.ways_out.tvs_back_fill` of the kinds of failure, ``failures``: the
    metrics' ``failure_kinds``, each with its rule and reason)."""
    from phoneemu.phone.ways_out import FLASH_STARTS_HOLDING, tvs_back_fill

    known = {**_run_fill(target, args.lab, args.flash), "FLEET": args.flash}
    if args.flash is None:  # what each run's phones start holding instead of an empty flash (--installed-*)
        known[FLASH_STARTS_HOLDING] = _installed_options(args) or None
    if not listed:
        known |= {"FIRST": macs[0], "N": len(macs)}
    decided = [(kind.get("rule"), kind.get("reason")) for kind in failures]
    return {k: str(v) for k, v in known.items() if v is not None} | tvs_back_fill(args.lab, decided)


def _installed_options(args: argparse.Namespace) -> str:
    """The ``--installed-itl/-ctl/-config-dir`` options given, as typed (``""``: none; a namespace without
    them, as a caller's own, gives none)."""
    options = ("--installed-itl", "--installed-ctl", "--installed-config-dir")
    given = [(o, getattr(args, o[2:].replace("-", "_"), None)) for o in options]
    from shlex import quote  # a path with spaces, as a shell takes it back
    return " ".join(f"{o} {quote(str(v))}" for o, v in given if v is not None)


def _write_reports(args: argparse.Namespace, result: Any, target: BootTarget, capture: Any,
                   fill: Mapping[str, str], *, not_started: Sequence[int] | None = None) -> list[str]:
    """``--json``, ``--junit`` and ``--plot`` of the run, each tried; what could not be written, a line each.
    The records come from ``result.records`` a record at a time (a spool on disk): neither report holds
    them all; --plot draws from the metrics' compact arrays (latencies, end times). ``not_started``: the
    MACs of the phones not started (:func:`_not_started_macs`), named by --json and --junit; the plot's
    title counts them and says why."""
    unwritten: list[str] = []
    written: set[str] = getattr(args, "reports_written", set())  # this run's: never removed (_boot)
    unkept = result.records_unkept
    if args.json is not None:
        if unkept is not None:
            unwritten.append(f"--json {args.json}: not written: {unkept}")
        elif _report("--json", args.json, lambda: _write_json(args.json, result, target, capture,
                                                                 profile=args.profile, fill=fill,
                                                                 clock=getattr(args, "phone_clock", None),
                                                                 models=getattr(args, "run_models", None),
                                                                 asked=args.count, not_started=not_started),
                     unwritten):
            written.add("--json")
    if args.junit is not None:
        if unkept is not None:
            unwritten.append(f"--junit {args.junit}: not written: {unkept}")
        elif _report("--junit", args.junit, lambda: _write_junit(args.junit, result, target=str(target),
                                                                 count=args.count, lab=args.lab,
                                                                 flash=args.flash, not_started=not_started,
                                                                 max_time=args.max_time,
                                                                 installed=_installed_options(args)),
                   unwritten):
            written.add("--junit")
    if args.plot is not None:
        from phoneemu.fleet.plot import plot_metrics

        title = f"phoneemu fleet: {counted(args.count, 'phone')} -> {target}"
        if result.not_started:  # was the phones asked for alone: an interrupted storm read as whole
            title += f", {result.not_started} not started ({_stopped(result)})"
        if _report("--plot", args.plot, lambda: plot_metrics(result.metrics, args.plot, title=title),
                   unwritten):
            written.add("--plot")
    return unwritten


def _write_json(path: Path, result: Any, target: BootTarget, capture: Any, *, profile: str,
                fill: Mapping[str, str] | None = None, clock: Mapping[str, Any] | None = None,
                models: Mapping[str, int] | None = None, asked: int | None = None,
                not_started: Sequence[int] | None = None) -> None:
    """``--json``: the summary and every phone's record (``phones``), written a record at a time; each way
    out with its ``run``, as the summary says it (``fill``: :func:`_summary_fill`; None: no ``run``);
    ``clock``: the phones' clock (:func:`_phones_clock`), as ``clock``. Given the run's phones by model
    (``models``), ``profile`` is the fleet's model when every phone is that one, else null, and ``profiles``
    counts the phones by model (was ``profile`` alone, the default's name in a mixed fleet); without,
    ``profile`` as given. The summary's ``phones_asked`` (``asked``) is ``phones`` (those with a record)
    + ``not_started`` + ``lost``; ``not_started_macs`` names the phones not
    started as runs of consecutive MACs (``FIRST..LAST``), at most :data:`_RUNS_LISTED` runs, the MACs of
    the others counted in ``not_started_macs_not_listed``."""
    from phoneemu import version_text
    from phoneemu.fleet.metrics import mac_runs, runs_text
    from phoneemu.phone.ways_out import ways_out_doc_run

    summary = result.summary()
    if asked is not None:
        summary["phones_asked"] = asked
    if not_started is not None:
        runs = mac_runs(not_started)
        summary["not_started_macs"] = runs_text(runs[:_RUNS_LISTED])
        summary["not_started_macs_not_listed"] = sum(b - a + 1 for a, b in runs[_RUNS_LISTED:])
    if fill is not None:
        for key in ("ways_out", "sip_ways_out", "media_ways_out"):
            summary[key] = ways_out_doc_run(summary[key], fill)
    if capture is not None:
        summary["capture"] = capture_json(capture)
    doc: dict[str, Any] = {"target": str(target), "profile": profile}
    if models:  # the run's mix known: the one model, or null beside the counts
        mix = dict(collections.Counter(models).most_common())
        doc |= {"profile": next(iter(mix)) if len(mix) == 1 else None, "profiles": mix}
    doc |= {"summary": summary, "phones": None, "phoneemu": version_text()}
    if clock is not None:
        doc["clock"] = dict(clock)
    write_output_text(path, json_doc.dumps_pieces(doc, "phones", (r.as_dict() for r in result.records),
                                                  indent=1))


def _report(option: str, path: Path, write: Callable[[], object], unwritten: list[str]) -> bool:
    """Write one report; a failure (a full disk, /dev/full) is said naming the option and the file, and
    the other reports are still written; so is a plot matplotlib cannot draw. True when it was written
    (one that was not leaves no earlier file at its path: :func:`_boot`)."""
    try:
        write()
    except OSError as exc:
        unwritten.append(f"{option} {path}: not written: {exc.strerror or exc}")
    except PhoneEmuError as exc:  # --plot: matplotlib could not draw it
        unwritten.append(f"{option} {path}: not written: {exc.message}")
    else:
        return True
    return False


def run_fleet(spec: FleetSpec, **options: Any) -> FleetResult:
    """The storm: :func:`phoneemu.fleet.shard.run_fleet`, imported once one runs (start-up time)."""
    from phoneemu.fleet.shard import run_fleet as storm

    return storm(spec, **options)


def _reports(args: argparse.Namespace) -> list[tuple[str, Path | None]]:
    """The reports of the run, each as the option and the file it writes (``--plot r``: ``r.png``)."""
    from phoneemu.fleet.plot import plot_path

    return [("--json", args.json), ("--junit", args.junit),
            ("--plot", plot_path(args.plot) if args.plot is not None else None)]


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before any work, a report that could not be written (:func:`check_writable`; ``--plot r``:
    the ``r.png`` it writes, a folder refused now) and outputs that would overwrite an input or each
    other (:func:`_outputs_apart`)."""
    for option, path in _reports(args):
        check_writable(path, option)
    _outputs_apart(args)


def _outputs_apart(args: argparse.Namespace) -> None:
    """Refuse, before any boot, outputs that would overwrite an input (``--models site.csv --json
    site.csv`` replaced the user's export with the report), a file of ``--installed-config-dir``, of a
    phone's flash in ``--flash`` or of the ``--lab`` folder (was: ``--json fleet/0A0000000000/phone.json``
    replaced that phone's flash file by the report, ``--keylog lab/cluster.json`` appended TLS secrets to
    the lab's state), or each other, ``--plot FILE`` taken as the ``FILE.png`` it writes (``--plot r
    --json r.png``: the plot replaced the JSON, exit 0), the key log of a ``--capture F`` without
    ``--keylog`` taken as the ``F.keys`` it is (``--capture s.pcap --json s.keys``: the JSON replaced the
    key log). A new file, a FIFO or a device replaces no input."""
    from phoneemu.files import overwritten_input

    keylog = args.keylog
    if keylog is None and args.capture is not None:  # as capture_keylog names it
        from phoneemu.commands._capture import keys_beside
        keylog = keys_beside(args.capture)
    outputs = [*_reports(args), ("--keylog", keylog), ("--capture", args.capture)]
    inputs = [("the input --models", args.models), ("the input --installed-itl", args.installed_itl),
              ("the input --installed-ctl", args.installed_ctl),
              *(("the input --image-signer", p) for p in args.image_signer)]
    folders = [("--installed-config-dir", args.installed_config_dir, 1),
               ("a phone's flash in --flash", args.flash, 2), ("the lab --lab", args.lab, 0)]
    for option, path in outputs:
        read = overwritten_input(path, inputs, folders) if path is not None else None
        if read is not None:
            raise PhoneEmuError(f"{option} {path}: is {read}; it would be overwritten",
                                path=option.lstrip("-"))
    check_apart(outputs)


def _boot(args: argparse.Namespace) -> int:
    """The command (:func:`_storm_reported`): whatever ends it, a file at the path of --json, --junit or
    --plot after it is this run's report, or there is none: one it did not write (bad input, a refused
    option, a second Ctrl-C, a full disk, the records' spool unwritable) leaves no earlier run's file
    there, said on stderr (was: yesterday's report left for a CI job to archive as today's). A report
    refused before any work (one naming an input) removes nothing."""
    return never_stale(args, _check_outputs, _storm_reported, _reports(args))


def _storm_reported(args: argparse.Namespace) -> int:
    """The storm and its summary and reports (outputs checked: :func:`_boot`); the exit status."""
    from phoneemu.fleet.engine import FleetSpec, mac_text
    from phoneemu.fleet.progress import Progress
    from phoneemu.fleet.shard import interrupted_before_storm
    from phoneemu.phone.boot import BootTarget
    from phoneemu.phone.media_rules import NO_MEDIA

    run_macs, models = _run_macs(args)
    listed = args.count is None  # the phones of the models file (or of --flash), not consecutive MACs
    args.count = len(run_macs)
    if args.capture_limit is not None and args.capture is None:
        raise PhoneEmuError("--capture-limit goes with --capture", path="capture-limit")
    args.packets = checked_packets(args, each="each phone's")
    args.keylog = capture_keylog(args.capture, args.keylog)  # checks --capture and --keylog
    if args.flash is not None:  # made here, not in each shard: a bad folder is one line, exit 2
        try:  # a file, as --flash itself, is refused earlier (_run_macs)
            args.flash.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # under a file, in a read-only folder: was the OSError, no option named
            raise PhoneEmuError(f"--flash {args.flash}: cannot make the folder: {exc.strerror or exc}",
                                path="flash") from None
        if not os.access(args.flash, os.W_OK | os.X_OK):
            raise PhoneEmuError(f"--flash {args.flash}: not writable", path="flash")
    if args.plot is not None:
        from phoneemu.fleet.plot import check_plot_path, require_matplotlib

        require_matplotlib()  # fail before booting anything
        check_plot_path(args.plot)
    prestate = _installed(args)
    with lab_read_lock(args.lab, command_of(args)):  # read whole, released: the storm may see operations
        where = cluster_address(args)
        address = check_resolves(where, http=not args.no_http)  # before any shard: looked up once
        if where.from_lab:
            print(where.lab_line(command_of(args), args.lab), file=sys.stderr)
        host = where.host
        target = BootTarget(host=host, tftp_port=where.tftp_port, http_port=where.http_port,
                            use_http=not args.no_http,  # as said: the name given, the phones' reports too
                            https_config_port=where.https_config_port,  # §H.1, 6971: as boot's
                            use_https_config=not args.no_https_config)
        macs = [mac_text(m) for m in run_macs]
        mic_dir, symmetric_keys, auth_strings, lab_profiles = _lab_phones(args, macs)
        clock_offset = _phones_clock(args)  # the lab's, read under its lock
        profiles = _profiles(args, macs, models, lab_profiles)
        spec = FleetSpec(target=target, address=address,  # the phones ask the address, DHCP option 150's
                         count=args.count, mac_start=run_macs[0], profile=args.profile,
                         macs=tuple(run_macs) if listed else (),
                         profiles=profiles, concurrency=args.concurrency, fetch_timeout=args.timeout,
                         fetch_retries=args.retries,
                         fetch_max_time=args.fetch_max_time, tftp_quarantine_s=args.tftp_quarantine,
                         tvs_timeout=args.tvs_timeout, max_time_s=args.max_time,
                         give_up_unanswered=None if args.keep_going else GIVE_UP_UNANSWERED,
                         flash_dir=str(args.flash) if args.flash is not None else None,
                         keep_records=args.json is not None or args.junit is not None, blksize=args.blksize,
                         register=registrar(args), call=call_of(args),
                         event_loop=args.event_loop,
                         keylog=str(args.keylog) if args.keylog is not None else None,
                         prestate=prestate, mic_dir=mic_dir, symmetric_keys=symmetric_keys,
                         capf_retry_delay=args.capf_retry_delay, auth_string=args.auth_string,
                         auth_strings=auth_strings, image_signers=_image_signers(args),
                         profile_overrides=capf_keygen_overrides(args), clock_offset_s=clock_offset)
    limit_mib = args.capture_limit if args.capture_limit is not None else DEFAULT_LIMIT_MIB
    capture = open_host_capture(args.capture, args.keylog, host, max_bytes=int(limit_mib * 1024 * 1024),
                                limit_name=f"--capture-limit {limit_mib:g} MiB",  # before any boot: exit 2
                                said_by=command_of(args))
    which = (f"of {args.models or args.flash}, {_macs_text(macs, between=' ... ')}" if listed else
             _macs_text(macs))
    run_models = _models_of_run(args, args.count, profiles)
    args.run_models = run_models  # --json's profile and profiles
    mix = _model_mix(run_models, by_phone=bool(profiles))
    slow = capf_keygen_text(spec.profile_overrides)  # the models' CAPF key generation overridden
    mix += f"; {slow}" if slow else ""
    progress = Progress(enabled=not args.quiet, said_by=command_of(args))
    stormed = False  # run_fleet said the storm starts: a KeyboardInterrupt from it then aborts

    def on_interrupt() -> None:
        progress.close()
        say(args, "interrupted: no new boots; finishing the boots under way (Ctrl-C again to abort)")

    def on_lost(message: str) -> None:
        progress.close()
        say(args, f"lost {message}")

    def on_give_up(reason: str) -> None:
        progress.close()
        say(args, f"giving up: {reason}; no new boot starts, the boots under way finish "
                  "(--keep-going boots every phone anyway)")

    def on_storm() -> None:
        nonlocal stormed
        stormed = True

    def on_overrun(why: str) -> None:
        progress.close()
        say(args, f"stopping: {why}; no new boot starts, the boots under way finish")

    try:
        try:  # interrupted from the banner on, before the storm: the summary and reports, no phone booted
            say(args, f"{counted(args.count, 'phone')} {which} ({mix}) -> {target}")
            result = run_fleet(spec, shards=args.shards, progress=progress, on_interrupt=on_interrupt,
                               on_lost=on_lost, on_start=capture.add_owners if capture is not None else None,
                               on_give_up=on_give_up, on_storm=on_storm, on_overrun=on_overrun)
        except KeyboardInterrupt:
            if stormed:
                raise  # a second Ctrl-C, or boots that did not end in the grace period: abort
            result = interrupted_before_storm(spec, args.shards)  # before any shard started
    except BaseException:
        if capture is not None:  # aborted: what was captured is still written; say where
            progress.close()
            capture.close()
            for line in capture_summary(capture):
                say(args, line)
        raise
    finally:
        progress.close()
    if result.before_storm:
        say(args, "interrupted while the shards were starting: no phone booted")
    if capture is not None:
        capture.close()
    fill = _summary_fill(args, target, macs, listed=listed, failures=result.metrics.failed_alike.kinds())
    not_started = _not_started_macs(result)
    print(result.metrics.render(fill or None, why=_FLEET_LEAVES, otherwise=_LEFT_BY_FLEET, asked=args.count,
                                not_started=result.not_started, stopped=_stopped(result),
                                lost=result.lost_phones))
    if result.metrics.total and result.metrics.unanswered == result.metrics.total and not result.lost:
        heard = next((h for kind in result.metrics.failed_alike.kinds()
                      if (h := ignored_heard(str(kind.get("reason") or ""))) is not None), None)
        say(args, nothing_answered_hint(target, lab=args.lab, heard=heard))  # once, as boot says it
    hint = http_fallback_hint(result.metrics.files_over, target, run_models)
    if hint:
        print(hint)
    if capture is not None:
        for line in capture_summary(capture):
            print(line)
    if result.not_started:
        print(_not_started_line(result, not_started))
    for lost in result.lost:
        print(f"lost: {lost.message()}")
    try:
        unwritten = _write_reports(args, result, target, capture, fill, not_started=not_started)
    finally:
        result.close()  # the records' spool
    if unwritten:  # each report tried; the summary above is the storm's
        raise PhoneEmuError("; ".join(unwritten) + " (the summary above is the run's)", path="output")
    m = result.metrics
    if result.interrupted:
        return 130  # like any interrupted command, after the summary of what did run
    if result.lost:
        say(args, f"{result.lost_phones} of {counted(args.count, 'phone')} lost with "
                  f"{counted(len(result.lost), 'shard process', 'shard processes')} that died")
        return 1
    unregistered = sum(n for rule, n in m.sip.by_rule.items() if rule != "G.13-registered")
    silent = sum(n for rule, n in m.media.by_rule.items() if rule in NO_MEDIA)  # --call: no media flowed
    return 0 if (m.failed == 0 and not result.not_started and not unregistered and not silent
                 and not m.capf_failed) else 1
