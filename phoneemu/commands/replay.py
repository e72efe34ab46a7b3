"""``phoneemu replay``: rebuild the files a phone downloaded in a capture and re-run its decisions offline.

The capture may come from ``phoneemu run --capture`` or from any cluster (tcpdump/Wireshark pcap of
TFTP and HTTP 6970). See :mod:`phoneemu.scenario.replay` for how transfers are reassembled and how
files are attributed to a phone; ``--all`` replays every phone of the capture
(:mod:`phoneemu.scenario.replay_fleet`, :mod:`phoneemu.commands._replay_all`). Exit status: 0 when
every replayed boot ended with an accepted config and no captured registration differs from the rules,
1 otherwise, 2 on bad input.
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phoneemu import json_doc
from phoneemu.commands._argtypes import mac_option, positive_int
from phoneemu.commands._installed import add_installed_options, fill_from_flash, installed_config_key
from phoneemu.commands._replay_all import (
    ALL_MAX_MEMORY_MIB,
    add_all_options,
    check_all_options,
    check_reports,
    installed_files,
    locked_out_tvs_offline,
    offline_words,
    reports_of,
    run_all,
    tvs_offline_said,
    undecrypted_warning,
)
from phoneemu.commands._reports import never_stale
from phoneemu.commands._said import say
from phoneemu.commands.boot import add_offline_phone_options, offline_boot_lines, pem_certificates, tvs_roles
from phoneemu.errors import PhoneEmuError
from phoneemu.formats._tlv import printable
from phoneemu.values import host_port
from phoneemu.words import counted

if TYPE_CHECKING:  # the capture's replay is imported where it runs (start-up time)
    from phoneemu.net.tls_decrypt import KeyLog
    from phoneemu.scenario.replay import CaptureIndex, ReplayResult
    from phoneemu.scenario.replay_tvs import CapturedTvs, TvsCapture

__all__ = ["register"]

_EPILOG = """\
examples:
  phoneemu replay captures/first-boot-trusts-first-itl.pcap --list
  phoneemu replay captures/first-boot-trusts-first-itl.pcap --mac 0A0000000001
  phoneemu replay site.pcap --mac 00:11:22:33:44:55 --profile cp-7962 --json
  phoneemu replay captures/migration-itl-signer-unknown.pcap --mac 0A0000000501 \\
      --keylog captures/migration-itl-signer-unknown.keys     TVS answers as in the capture
  phoneemu replay site.pcap --mac 00:11:22:33:44:55 --installed-itl old/ITLFile.tlv \\
      --installed-config old/SEP001122334455.cnf.xml.sgn     the phone held these before the capture
  phoneemu replay storm.pcap --flash /tmp/fleet/0A0000000001 --keylog storm.keys   a fleet boot --flash phone
  phoneemu replay storm.pcap --all --keylog storm.keys      every phone of the capture, summarised
  phoneemu replay storm.pcap --all --fleet-flash fleet-before/ --json   each phone holding its own flash
  phoneemu replay site.pcap --all --installed-config-dir tftp-before/ --junit phones.xml   for CI
  phoneemu replay site.pcap --all --models phones.csv     each phone's model from a CUCM phone export
  phoneemu replay site.pcap --all --keylog site.keys --export-flash site-phones/   then:
  phoneemu predict --fleet-flash site-phones/ new-cluster/ITLFile.tlv     what the change would do to each

Offline, TVS and CAPF are unreachable: decisions that needed them are marked by the phone as a
TVS/CAPF failure. A CAPF session the capture holds (a TLS connection to the port of the config's CAPF
server) is said "CAPF session in the capture, not replayed" (F.1-capf-not-replayed), else "CAPF
unavailable offline"; neither decides a boot that accepted a configuration nor fails the replay.
--keylog FILE decrypts the captured TVS exchanges (TLS 1.0-1.3) and answers each query of the phone as
TVS answered it in the capture, from the connections made for that question (ours: between the download
it decides on and the phone's next request); a phone that failed over (its QUERY to one server cut, the
next server answering, spec §E.1) takes that answer, as it did live; a server it refused (its
certificate, no QUERY) is noted as the live boot notes it. A TVS that gave no answer is named with why,
as the boot names it: "(no TVS server answered: 10.0.0.5:2445: no such TVS query of this phone in the
capture)". --tvs-cert PEM makes an offline TVS
vouch for those certificates (with --keylog: for queries the capture does not hold).
Without --keylog the key log a pcapng embeds is used, else CAPTURE.keys beside the capture (the name
--capture writes; x.keys of x.pcap.gz too), said on stderr; one beside it that cannot be read or decoded is
said and not used (given to --keylog it is bad input), as is one that opens none of the capture's TLS
connections (another capture's: given to --keylog, said and used). --no-keylog uses none. Without any, the TLS
connections (TVS, CAPF) the capture holds are counted in a warning, and a lockout resting on the offline
TVS is said "locked out: yes, if its TVS cannot be reached" (JSON locked_out_tvs_offline; --all: a line
of the summary, its count, and a line in each such JUnit failure).
A config the phone took over HTTPS (TCP 6971, spec H.1; told by its GET /SEP<MAC>.cnf.xml.sgn, whatever
the port) is answered with --keylog from that phone's captured exchange in the boot, its certificate
judged by the replayed phone (a MITM's refused again); without the key log, as a port that did not answer.
Files without a MAC in their name (ITLFile.tlv, CTLFile.tlv, loads) are taken from the same
server during the phone's boot. Capture order is the order: a timestamp earlier than the packet
before it (a mergecap of several interfaces, a clock step) is taken as equal to it, with a warning.

Large captures (a SPAN port of a production cluster) are read once, packet by packet; memory stays
bounded whatever the file size: only the replayed phone's downloads and the cluster-wide ones its
boots can use are kept (--list keeps no file contents, lists at most 100,000 downloads). Caps per
flow: 32 MiB per downloaded file (else too-large), 8 MiB of out-of-order TCP data per direction
(else the stream ends there), 4 MiB per direction of a TLS connection (else not decrypted),
65,536 open TFTP transfers and as many open TCP connections (the least recently active ends
early). Overall, the open flows and the kept downloads hold at most --max-memory MiB (default 256):
beyond, when the kept downloads hold more than half of it, the least useful gives up its bytes
(reported too-large; cluster-wide names before the phone's own, the largest first), else the least
recently active flows holding any end early, as they stand. IP fragments being reassembled count
too (a quarter of --max-memory, 4 MiB at most, set aside once the capture has one). A cap that is
hit is a warning on stderr naming the flow or file and the capture offset.

A capture taken with a short snaplen (tcpdump -s 96) replays what it holds: a packet the snaplen cut
has its payload taken as missing (one warning, the others counted) and a download that needed it is
incomplete, --list naming the packet (capture with tcpdump -s 0); a packet cut inside its IP, UDP or
TCP header is skipped (the first told, the others counted).

--all replays every phone of the capture from one pass: each phone's downloads are spooled to an
unnamed temporary file (identical files once), memory holds their descriptions and the TVS exchanges
(half of --max-memory at most, whose default is 1024 MiB with --all: about 100,000 phones of 6
downloads and a TVS exchange each; beyond, a warning); each phone is served and decides as --mac
alone would. The text lists each phone (up to 50), then each phone's last boot by outcome and
deciding rule, what changed across boots, and the failures grouped by kind; --json every boot.
Every phone and download of the capture is counted: a phone beyond the first 100,000, or whose
downloads did not fit --max-memory, is listed as not replayed (exit status 1), and the downloads
line (JSON downloads, downloads_kept, downloads_not_kept) says how many were kept and why not. The
phones' records go to an unnamed temporary file as they are done; the summary, --json and --junit
are made from it a phone at a time. A file at the path of --junit or --json-file after a replay is its
report or none: one that wrote none there (bad input, an interrupt, a full disk) removes an earlier file
there, said on stderr; a report naming an input (the capture, --keylog, a file of --installed-config-dir or
--fleet-flash) is refused before any work.

Exit status: 0 when every replayed boot ended with a configuration it accepted and no captured SIP
registration differs from the rules (or --list), 1 otherwise, 2 on bad input.
"""


def register(sub: Any) -> None:
    from phoneemu.scenario.bounds import MAX_MEMORY  # --max-memory's default

    p = sub.add_parser("replay", help="rebuild a phone's downloads from a pcap and replay its decisions",
                       description="Rebuild the files a phone downloaded in a capture (TFTP and HTTP 6970) "
                       "and run the phone's decisions on them offline; with --mac also check each of its "
                       "SIP registrations against the rules (spec G.9 transport, G.5 the registrar's "
                       "certificate: 'DIFFERS' when the captured phone did otherwise).",
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("capture", type=Path, metavar="CAPTURE.pcap",
                   help="the capture: pcap or pcapng (as Wireshark and tcpdump save it), or either "
                   "gzip-compressed")
    p.add_argument("--mac", type=mac_option,
                   help="the phone to replay (MAC in any usual notation, or CUCM's SEP<MAC>); required "
                   "unless --list or --all")
    add_offline_phone_options(p, now_help="phone clock (default: each boot's capture time)",
                              profile_help="phone model profile (default: the --flash phone's, else cp-8861)")
    p.set_defaults(profile=None)  # cp-8861, or the --flash phone's
    add_installed_options(p, when="before the capture (default: nothing, a phone out of the box)")
    p.add_argument("--keylog", type=Path, metavar="FILE",
                   help="TLS key log of the capture (SSLKEYLOGFILE format, as --capture and lab serve "
                   "--keylog write it): decrypt the TVS exchanges and answer as TVS did in the capture "
                   "(default: the key log a pcapng embeds, editcap --inject-secrets, else CAPTURE.keys "
                   "beside the capture, as --capture names it, said on stderr)")
    p.add_argument("--no-keylog", action="store_true",
                   help="use no key log, neither the one beside the capture nor one a pcapng embeds: TVS is "
                   "unreachable offline, or answers for --tvs-cert (what if TVS were down, or vouched)")
    p.add_argument("--max-memory", type=positive_int, metavar="MiB",
                   help=f"bytes the open flows and the kept downloads may hold together, in MiB (default "
                   f"{MAX_MEMORY >> 20}; --all {ALL_MAX_MEMORY_MIB}; a capture with IP fragments sets a "
                   "quarter of it, 4 MiB at most, aside for their reassembly): beyond, kept downloads give "
                   "up their bytes or the least recently active flows end early, each with a warning")
    p.add_argument("--list", action="store_true", help="list the phones and files in the capture (with "
                   "--mac: that phone's files and TVS exchanges, and the cluster-wide names)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_all_options(p)
    p.set_defaults(handler=handler)


def _exchanges(tvs: TvsCapture, only: str | None) -> list[CapturedTvs]:
    """The TVS exchanges to list: every one, or ``only`` that phone's."""
    return list(tvs.exchanges) if only is None else [x for x in tvs.exchanges if x.mac == only]


def _tvs_lines(tvs: TvsCapture, keylog: Path | None, only: str | None) -> list[str]:
    if keylog is None:
        return [f"{counted(tvs.tls_connections, 'TLS connection')} (TVS, CAPF, HTTPS): give --keylog FILE to "
                "decrypt the TVS exchanges"] if tvs.tls_connections else []
    connections = counted(tvs.tls_connections, "TLS connection")
    exchanges = counted(tvs.decrypted, "TVS exchange")
    lines = [f"{connections}: {exchanges} decrypted, {tvs.not_tvs} other, "
             f"{len(tvs.problems) + tvs.unlisted_problems} not decrypted"]
    listed = _exchanges(tvs, only)
    if only is not None:
        lines.append(f"  {len(listed)} of them asked by phone {only}:")
    lines += [f"  {x.describe()}" for x in listed]
    if tvs.unlisted and only is None:
        lines.append(f"  ... {counted(tvs.unlisted, 'more exchange')} not listed")
    lines += [f"  not decrypted: {p}" for p in tvs.problems]
    if tvs.unlisted_problems:
        lines.append(f"  ... {counted(tvs.unlisted_problems, 'more connection')} not decrypted")
    return lines


def _listed_macs(index: CaptureIndex, only: str | None) -> list[str]:
    """The phones to list: every one, or ``only`` (a PhoneEmuError naming some of those there are when
    the capture has no download of it)."""
    macs = index.macs()
    if only is None or only in macs:
        return macs if only is None else [only]
    some = ", ".join(macs[:5]) + (f" ... ({len(macs)} phones)" if len(macs) > 5 else "")
    raise PhoneEmuError(f"phone {only} has no download in the capture (phones: {some or 'none'})",
                        path="mac")


def _list_text(index: CaptureIndex, tvs: TvsCapture, keylog: Path | None, only: str | None) -> str:
    from phoneemu.scenario.replay import boot_count

    macs = _listed_macs(index, only)
    downloads = counted(len(index.downloads) + index.unlisted, "download")
    lines = [f"{counted(index.packets, 'packet')}, {downloads}, "
             f"{counted(index.skipped, 'non-TFTP UDP datagram')} skipped"]
    lines += _tvs_lines(tvs, keylog, only)
    for mac in macs:
        lines.append(f"phone {mac}: {counted(boot_count(index, mac), 'boot')}")
        lines += [f"  {d.describe()}" for d in index.of_mac(mac)]
    shared = index.shared()
    if shared:
        lines.append("cluster-wide names:")
        alike = collections.Counter(d.describe() for d in shared)  # first seen first (dicts keep order)
        lines += [f"  {text}" + (f"  ({n} downloads)" if n > 1 else "") for text, n in alike.items()]
    if index.unlisted:
        lines.append(f"... {counted(index.unlisted, 'more download')} not listed (at most "
                     f"{len(index.downloads)} are)")
    phones = len(index.macs())
    if only is not None and phones > 1:
        lines.append(f"(phone {only} of the capture's {phones}: --list without --mac lists every one)")
    elif phones > 1:
        lines.append(f"{phones} phones: replay --mac MAC replays one, replay --all every one")
    return "\n".join(lines)


def _tvs_json(tvs: TvsCapture, only: str | None) -> dict[str, Any]:
    return {"tls_connections": tvs.tls_connections, "other_tls": tvs.not_tvs,
            "not_decrypted": list(tvs.problems),
            **({"unlisted_exchanges": tvs.unlisted} if tvs.unlisted else {}),
            **({"unlisted_not_decrypted": tvs.unlisted_problems} if tvs.unlisted_problems else {}),
            **({"exchanges_of": only} if only is not None else {}),
            "exchanges": [{"start": x.start, "server": host_port(x.server[0], x.server[1]), "tls": x.tls,
                           "device_name": x.request.device_name, "describe": x.describe()}
                          for x in _exchanges(tvs, only)]}


def _list_json(index: CaptureIndex, only: str | None) -> dict[str, Any]:
    def dl(d: Any) -> dict[str, Any]:
        return {"name": d.name, "protocol": d.protocol, "server": host_port(d.server[0], d.server[1]),
                "client": host_port(d.client[0], d.client[1]), "outcome": d.outcome,
                "size": d.nbytes, "detail": d.detail, "start": d.start}
    return {"packets": index.packets, "skipped": index.skipped,
            **({"unlisted": index.unlisted} if index.unlisted else {}),
            "phones": {m: [dl(d) for d in index.of_mac(m)] for m in _listed_macs(index, only)},
            "shared": [dl(d) for d in index.shared()]}


def _secrets(args: argparse.Namespace) -> KeyLog | None:
    """The ``--keylog`` secrets (one that cannot be read or decoded is bad input); without it, the key log
    a pcapng capture embeds (Decryption Secrets Block, ``editcap --inject-secrets``), else the one beside
    the capture (:func:`_secrets_beside`), each said on stderr, ``args.keylog`` then naming the file it is
    in; None without any, and with ``--no-keylog``. A ``--keylog`` without any secret is a warning."""
    from phoneemu.net.capture import embedded_keylog
    from phoneemu.net.tls_decrypt import parse_keylog, read_keylog

    if args.no_keylog:
        if args.keylog is not None:
            raise PhoneEmuError("--no-keylog uses no key log: not with --keylog", path="no-keylog")
        return None
    if args.keylog is None:
        text = embedded_keylog(args.capture)
        if text is None:
            return _secrets_beside(args)
        secrets = parse_keylog(text, source=f"{args.capture} (embedded key log)")
        if secrets:
            say(args, f"using the TLS key log embedded in {args.capture} ({counted(len(secrets), 'secret')})")
            args.keylog = args.capture
            return secrets
        return _secrets_beside(args)
    secrets = read_keylog(args.keylog)
    if secrets is not None and not secrets:
        say(args, f"warning: --keylog {args.keylog}: no secrets (no CLIENT_RANDOM or TLS 1.3 traffic "
                  "secret line): no TLS connection can be decrypted")
    return secrets


def _secrets_beside(args: argparse.Namespace) -> KeyLog | None:
    """The secrets of the key log beside the capture, ``CAPTURE.keys`` (:func:`~phoneemu.commands._capture.
    keys_beside`: the name ``boot``, ``fleet boot`` and ``run --capture`` write, the one ``wireshark``
    takes up), when no ``--keylog`` is given: used, said once on stderr, ``args.keylog`` then naming it
    (was: not used, the phones' TVS taken as unreachable where it had answered). Ours: one that cannot be
    read or decoded is said and not used, not bad input — it was not asked for (``--keylog`` names it to
    make it so); one without any secret is not used (the warning of TLS connections not decrypted names
    it). None when it is not used."""
    from phoneemu.commands._capture import keys_beside
    from phoneemu.net.tls_decrypt import read_keylog

    path = keys_beside(args.capture)
    if path == args.capture or not path.is_file():
        return None
    try:
        secrets = read_keylog(path)
    except (OSError, PhoneEmuError) as exc:
        say(args, f"warning: the TLS key log beside the capture, {path}, is not used: {exc}")
        return None
    if not secrets:
        return None
    say(args, f"using the TLS key log {path} beside the capture ({counted(len(secrets), 'secret')}; "
              "--keylog FILE names another)")
    args.keylog, args.keylog_beside = path, True  # (one opening none of the capture's: _unopened_keylog)
    return secrets


def _all(args: argparse.Namespace) -> int:
    """``--all``: every phone (:mod:`phoneemu.commands._replay_all`)."""
    from phoneemu.phone.profile import get_profile
    from phoneemu.scenario.predict import load_installed
    from phoneemu.scenario.replay import Limits

    secrets = _secrets(args)
    limits = Limits(max_memory=(args.max_memory if args.max_memory is not None else ALL_MAX_MEMORY_MIB) << 20)
    profile = args.profile or "cp-8861"
    held = load_installed(limit=get_profile(profile).trust_list_limit, itl=args.installed_itl,
                          ctl=args.installed_ctl, config=args.installed_config,
                          config_key=installed_config_key(args))
    return run_all(args, secrets=secrets, limits=limits, installed=held, now=args.now,
                   image_signers=pem_certificates(args.image_signer),
                   tvs_certs=pem_certificates(args.tvs_cert), tvs_roles=tvs_roles(args.tvs_roles))


def _boot_text(i: int, r: ReplayResult, fill: dict[str, str] | None = None) -> str:
    """A replayed boot; ``fill``: the ways out's (:func:`phoneemu.phone.lab_signers.not_a_lab_fill`)."""
    lines = [f"== boot {i} against {r.boot.server} ({counted(len(r.served), 'file request')})",
             *_tvs_offline_result(offline_boot_lines(r.served, r.report, fill), r)]
    if r.not_captured:
        lines.append(f"  note:     the capture holds this boot in part: {', '.join(r.not_captured)}: "
                     "asked for by the phone, its request or its whole answer is not in this boot of the "
                     "capture (the capture ends during the boot, or the captured phone acted otherwise: "
                     "another model, other files held)")
    lines += [f"  {c.describe()}" for c in r.sip]
    return "\n".join(lines)


def _tvs_offline_result(lines: list[str], r: ReplayResult) -> list[str]:
    """A boot's lines with its result line saying a lockout that rests on the offline TVS as such
    (:func:`~phoneemu.commands._replay_all.locked_out_tvs_offline`): ``locked out: yes, if its TVS cannot
    be reached (offline: give --keylog FILE, ...)``, as predict says its own (was ``locked out: yes``,
    where the captured TVS had answered)."""
    if not locked_out_tvs_offline(r.report):
        return lines
    said = f"locked out: yes, {tvs_offline_said()}"
    return [f"{line.removesuffix('locked out: yes')}{said}"
            if line.startswith("  result:") and line.endswith("locked out: yes") else line for line in lines]


def _tvs_fill(r: ReplayResult) -> dict[str, str]:
    """Bringing TVS back in a replayed boot's ways out: ``DIR`` (the lab serving the address the boot went
    against, said in the legend) only when the TVS the phone could not reach is at that address, else
    ``OLD`` (:func:`phoneemu.phone.ways_out.tvs_back_fill`; was ``lab service DIR tvs start`` for a
    migration's phone, whose config names the TVS of the cluster it left)."""
    from phoneemu.phone.ways_out import tvs_back_fill

    deciding = r.report.deciding
    if not r.report.locked_out or deciding is None:
        return {}
    return tvs_back_fill(None, [(deciding.rule, deciding.reason)], hosts=[r.boot.server])


def _boot_json(r: ReplayResult) -> dict[str, Any]:
    """A replayed boot as JSON, its ways out naming the cluster its text's do (bringing TVS back:
    :func:`_tvs_fill`, :func:`phoneemu.phone.ways_out.ways_json_said`; was DIR where the text said OLD)."""
    from phoneemu.phone.ways_out import ways_json_said

    said = r.as_dict()
    said["report"]["ways_out"] = ways_json_said(said["report"]["ways_out"], _tvs_fill(r))
    said["locked_out_tvs_offline"] = locked_out_tvs_offline(r.report)  # as predict's JSON says it
    return said


def handler(args: argparse.Namespace) -> int:
    """The command (:func:`_replayed`): whatever ends it, a file at the path of ``--junit`` or
    ``--json-file`` after it is this run's report, or there is none: one it did not write (bad input, a
    refused option, an interrupt, a full disk) leaves no earlier run's file there, said on stderr (was:
    yesterday's report left for a CI job to archive as today's). A report refused before any work (one
    naming an input: :func:`~phoneemu.commands._replay_all.check_reports`) removes nothing."""
    return never_stale(args, check_reports, _replayed, reports_of(args))


def _replayed(args: argparse.Namespace) -> int:
    """``--all``, ``--list`` or one phone (``--mac``); the exit status."""
    from phoneemu.formats.config import normalise_mac
    from phoneemu.interrupts import asyncio_run
    from phoneemu.net.tls_decrypt import KeyLog
    from phoneemu.phone.profile import get_profile
    from phoneemu.scenario.predict import load_installed
    from phoneemu.scenario.replay import Limits, replay_phone
    from phoneemu.scenario.replay_tvs import scan_capture

    check_all_options(args)
    if args.all:
        return _all(args)
    flash_notes = fill_from_flash(args) if args.flash is not None else []
    if args.profile is None:
        args.profile = "cp-8861"
    if args.mac is None and not args.list:
        raise PhoneEmuError("give --mac MAC (or --list to see the phones in the capture, --all to replay "
                            "every one)", path="mac")
    secrets = _secrets(args)
    mac = normalise_mac(args.mac) if args.mac is not None else None
    if args.list and secrets is None:
        secrets = KeyLog()  # --list --json names each TLS connection and why it is not decrypted
    limits = Limits(max_memory=args.max_memory << 20) if args.max_memory is not None else None
    scan = scan_capture(args.capture, mac=None if args.list else mac, secrets=secrets,
                        limits=limits)  # one pass, bounded memory; --list: no file contents
    for text in scan.warnings:
        say(args, f"warning: {text}")
    index, tvs_capture = scan.index, scan.tvs
    if not args.list:  # (--list says it in its listing)
        undecrypted_warning(args, tvs_capture)
    if args.list:
        if args.json:
            doc = _list_json(index, mac)
            doc["tls"] = _tvs_json(tvs_capture, mac)
            print(json_doc.dumps(doc, indent=2))
        else:
            print(_list_text(index, tvs_capture, args.keylog, mac))
        return 0
    assert mac is not None
    roles = tvs_roles(args.tvs_roles)
    held = load_installed(limit=get_profile(args.profile).trust_list_limit, itl=args.installed_itl,
                          ctl=args.installed_ctl, config=args.installed_config,
                          config_key=installed_config_key(args))
    notes: list[str] = list(flash_notes)
    files = installed_files(args)
    holding, tvs = offline_words(args, tvs_capture)
    with _BootPrinter(args, mac, files=files, holding=holding, tvs=tvs, tvs_capture=tvs_capture) as out:
        why = index.not_replayed(mac)
        if why is not None:  # beyond the budget (as replay --all says of such a phone): exit status 1
            out.skipped(why)
            return 1
        asyncio_run(replay_phone(index, mac, profile=args.profile, now=args.now,
                                 image_signers=pem_certificates(args.image_signer),
                                 tvs_certs=pem_certificates(args.tvs_cert), tvs_roles=roles,
                                 tvs_capture=tvs_capture if args.keylog is not None else None,
                                 installed=held, keys_from=args.flash, notes=notes,
                                 sip_capture=scan.sip, https_capture=tvs_capture.https, each=out.boot))
        out.finish()
    for text in notes:
        say(args, f"warning: {text}")
    return 0 if out.ok and not out.differs else 1


class _BootPrinter:
    """Prints each replayed boot's text as soon as it is done; with ``--json`` writes each boot's JSON
    text to an unnamed temporary file (closed on leaving ``with``) and prints the whole document at the
    end (never half a document: an interrupted replay prints none; memory stays flat — 20,000 boots are
    68 MB of JSON). The boots' reports are not kept (a capture may hold tens of thousands of boots of one
    phone); the output is the one the whole list would print. ``ok``: every boot accepted a
    configuration; ``differs``: a captured registration went otherwise than the rules."""

    def __init__(self, args: argparse.Namespace, mac: str, *, files: Any, holding: str, tvs: str,
                 tvs_capture: TvsCapture) -> None:
        self.json = bool(args.json)
        self.ok, self.differs, self.boots = True, False, 0
        self.capture = str(args.capture)
        #: whether the boots so far were served a lab's files (phone.lab_signers): not one, not one later
        self.signed_by_lab: bool | None = None
        #: what the ways out are filled with besides (the phone's MAC, its --flash)
        self.known = {"MAC": mac, **({"FLASH": str(args.flash)} if args.flash is not None else {})}
        #: the placeholders the locked boots' ways left, and the servers those boots went to (at most two
        #: kept: one names the lab's address in the legend, more do not), said once at the end
        self.left: set[str] = set()
        self.servers: list[str] = []
        # --json: each boot's item of the document's list, as printed, comma-separated
        spool = tempfile.TemporaryFile("w+", encoding="utf-8") if self.json else None  # noqa: SIM115 (__exit__)
        self.spool = spool
        if self.json:
            doc = {"mac": mac, "profile": args.profile, "capture": str(args.capture),
                   "installed": {k.lower(): str(p) if p is not None else None for k, p in files},
                   "offline": {"tvs": tvs, "capf": "unavailable"},
                   **({"tls": _tvs_json(tvs_capture, mac)} if args.keylog is not None else {}),
                   "boots": _BOOTS}
            self.doc = doc
            self.head, self.tail = json_doc.dumps(doc, indent=2).split(json.dumps(_BOOTS), 1)
        else:
            self.head = printable(f"replay of phone {mac} from {args.capture} (profile {args.profile}; "
                                  f"holding {holding}; offline TVS: {tvs}; CAPF unavailable)")
            self.tail = ""

    def boot(self, r: ReplayResult) -> None:
        self.boots += 1
        self.ok = self.ok and r.report.ok
        self.differs = self.differs or any(c.differs for c in r.sip)
        if not self.json:
            from phoneemu.phone.lab_signers import joined, not_a_lab_fill

            self.signed_by_lab = joined(self.signed_by_lab, r.signed_by_lab)
            if self.boots == 1:
                print(self.head)
            fill = {**self.known, **not_a_lab_fill(self.signed_by_lab, self.capture), **_tvs_fill(r)}
            print(_boot_text(self.boots, r, fill))
            self._left_by(r, fill)
            return
        # json.dumps(indent=2) of the whole document: each boot an item of a list two levels deep
        assert self.spool is not None
        self.spool.write(("" if self.boots == 1 else ",\n")
                         + "\n".join("    " + line
                                      for line in json_doc.dumps(_boot_json(r), indent=2).split("\n")))

    def skipped(self, why: str) -> None:
        """The phone is not replayed: why."""
        if self.json:
            print(json_doc.dumps({**{k: v for k, v in self.doc.items() if k != "boots"}, "skipped": why,
                                  "boots": []}, indent=2))
        else:
            print(self.head)
            print(f"  not replayed: {why}")

    def _left_by(self, r: ReplayResult, fill: dict[str, str]) -> None:
        """Keep the placeholders a locked boot's ways left (:func:`phoneemu.phone.ways_out.
        phone_placeholders_left`) and the server it went to, for :meth:`finish`'s legend."""
        from phoneemu.phone.ways_out import phone_placeholders_left

        deciding = r.report.deciding
        if not r.report.locked_out or deciding is None:
            return
        self.left.update(phone_placeholders_left(deciding.rule, deciding.kind, fill,
                                                 reason_code=deciding.reason_code, held=r.report.held))
        if r.boot.server not in self.servers and len(self.servers) < 2:
            self.servers.append(r.boot.server)

    def legend(self) -> list[str]:
        """Said once under the boots: each placeholder their ways out left, what it stands for and why it
        is left (``DIR: the lab folder (not known to replay: the lab serving 127.0.0.12 in the capture)``),
        as ``boot`` says them (:func:`phoneemu.phone.ways_out.legend_lines`; was ``DIR``,
        ``OLD`` and ``FLASH`` bare, with no legend)."""
        from phoneemu.phone.ways_out import legend_lines

        where = (f"the lab serving {self.servers[0]} in the capture" if len(self.servers) == 1
                 else "the lab serving the address each locked boot above went against")
        why = {"DIR": f"not known to replay: {where}", "NEW": f"not known to replay: {where}",
               "OLD": "not known to replay: the cluster the phone came from",
               "FLASH": "not known to replay: no --flash names the emulated phone's",
               "FILE": "not kept by replay: the file the capture holds under the name its deciding line "
                       "gives (Wireshark's Export Objects gives it)"}
        return legend_lines(self.left, why, "not known to replay", indent="  ")

    def finish(self) -> None:
        """Every boot replayed: the legend of the placeholders the ways out left (text), or with
        ``--json`` the document."""
        if self.spool is None:
            for line in self.legend():
                print(line)
            return
        if not self.boots:
            print(f"{self.head}[]{self.tail}")
            return
        print(f"{self.head}[", flush=True)
        self.spool.seek(0)
        shutil.copyfileobj(self.spool, sys.stdout)
        print(f"\n  ]{self.tail}")

    def __enter__(self) -> _BootPrinter:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.spool is not None:
            self.spool.close()


_BOOTS = "\x00boots\x00"  # where the boots go in the JSON document (no other value is this string)
