"""``phoneemu boot``: boot one emulated phone against any cluster and print every step and decision.

The phone asks TFTP ``--tftp HOST[:PORT]`` (HTTP 6970 first when its profile does, spec §H.1) for its
trust lists and config, asks TVS and CAPF where the accepted config says, and prints each step and
decision (rule, file, signer, reason) and the status messages (spec §H.3). Exit 0 only if the phone
ended the boot with a configuration it accepted and the CAPF operation it started, if any, completed (spec
§F; one that failed — rejected, unreachable after the retries — ends the text with ``exit status 1: CAPF
operation failed: RULE: REASON``, ``capf_failure`` in the JSON; none pending is no failure); 1 otherwise; 2
for bad arguments.

``--flash DIR`` keeps the phone's state between runs (a reboot continues from it); without it a
temporary directory is used. ``--lab DIR`` uses the MIC the built-in lab issued for the MAC and trusts
the lab's image-signing certificate; without ``--tftp`` the phone goes where that lab's ``lab serve``
listens (the address and ports it records when it starts); without ``--now`` the phone runs on the lab's
clock (:mod:`phoneemu.commands._lab_clock`). A boot refused for bad input (exit 2) writes nothing: a
``--flash`` folder it made is removed, an existing one is left as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import ipaddress
import os
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phoneemu import json_doc
from phoneemu.commands._argtypes import mac_option, non_negative_float, positive_float, unix_time
from phoneemu.commands._capture import capture_keylog, capture_summary, open_host_capture
from phoneemu.commands._cluster_address import (
    ClusterAddress,
    check_resolves,
    cluster_address,
    http_port,
    https_config_port,
    lab_read_lock,
    lab_recorded_elsewhere,
    lab_served_now,
)
from phoneemu.commands._register import (
    add_call_options,
    add_register_options,
    call_of,
    checked_packets,
    registrar,
)
from phoneemu.commands._said import command_of, say, teller
from phoneemu.commands._watched_fetch import Ports, WatchedFetcher
from phoneemu.errors import DecodeError, PhoneEmuError, ScenarioError
from phoneemu.files import PEM_LIMIT, read_at_most
from phoneemu.interrupts import asyncio_run, ctrl_c_deferred
from phoneemu.tempdirs import make_owned_tempdir, sweep_abandoned
from phoneemu.values import host_port, parse_ascii_int, parse_host_port

if TYPE_CHECKING:  # the phone, its crypto and its lab are imported where a boot runs (start-up time)
    from cryptography import x509

    from phoneemu.crypto.keys import PrivateKey
    from phoneemu.lab.state import PhoneState
    from phoneemu.phone.boot import BootReport, BootTarget, HttpsConfigGetter
    from phoneemu.phone.call import CallResult
    from phoneemu.phone.phone import Phone
    from phoneemu.phone.profile import PhoneProfile
    from phoneemu.phone.sip import SipResult

__all__ = ["add_capf_keygen_options", "capf_keygen_overrides", "capf_keygen_text", "ignored_heard",
           "no_mic_hint", "nothing_answered_hint",
           "parse_hostport", "register", "unanswered_hint"]

_EPILOG = """\
examples:
  phoneemu boot --tftp 127.0.0.1:6969 --mac 001122334455 --lab /tmp/lab --flash /tmp/ph1
  phoneemu boot --lab /tmp/lab --mac 001122334455        where that lab's lab serve listens
  phoneemu boot --tftp 10.0.0.5 --mac 00:11:22:33:44:55 --mic mic.pem --mic-key mic.key --json
  phoneemu boot --tftp 10.0.0.5 --flash /tmp/ph1          reboot the same phone (MAC from its flash)
  phoneemu boot --tftp 10.0.0.5 --flash /tmp/ph1 --keylog tls.keys   decrypt its TVS/CAPF in Wireshark
  phoneemu boot --tftp 10.0.0.5 --flash /tmp/ph1 --capture boot.pcap  its packets + boot.keys (root)
  phoneemu boot --tftp [::1]:6969 --mac 001122334455 --lab /tmp/lab   IPv6 (lab init/serve --host ::1)
  phoneemu boot --lab /tmp/lab --mac 001122334455 --capf-keygen-seconds 60 --capf-in-progress-seconds 10
                                     a slow CAPF key generation against the lab's CAPF bounds
"""


def register(sub: Any) -> None:
    from phoneemu.phone.profile_names import PROFILE_NAMES  # the names in --profile's help

    p = sub.add_parser("boot", help="boot one emulated phone against a cluster and show its decisions",
                       description=__doc__.split("\n\n")[1] if __doc__ else None, epilog=_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tftp", metavar="HOST[:PORT]",
                   help="TFTP server (DHCP option 150): HOST or HOST:PORT; IPv6 as [V6]:PORT (--tftp "
                        "[::1]:6969) or bare without a port (::1 is port 69); default port 69. A name is "
                        "looked up once, before any phone boots (one that does not resolve: exit 2). "
                        "Required unless --lab DIR: then the address and ports its lab serve listens on")
    p.add_argument("--mac", metavar="MAC", type=mac_option,
                   help="phone MAC, e.g. 001122334455, 00:11:22:33:44:55 or SEP001122334455 (default: the "
                   "one in --flash DIR)")
    p.add_argument("--flash", type=Path, metavar="DIR", help="phone flash directory (default: temporary)")
    p.add_argument("--profile", metavar="NAME",
                   help=f"phone model profile ({', '.join(sorted(PROFILE_NAMES))}); default: the one in "
                   "--flash DIR, else the model --lab DIR has for the phone, else cp-8861")
    p.add_argument("--http-port", type=http_port, default=None, metavar="N",
                   help="HTTP file port (default 6970, or that of the --lab DIR's lab serve: without "
                        "--tftp, or with --tftp at its TFTP address)")
    p.add_argument("--no-http", action="store_true", help="TFTP only")
    p.add_argument("--https-config-port", type=https_config_port, default=None, metavar="N",
                   help="HTTPS config download port (spec §H.1: a phone whose ITL has signer version 1.1 "
                   "and a TFTP record with an EC key asks it for its config first; default 6971, or that of "
                   "the --lab DIR's lab serve: without --tftp, or with --tftp at its TFTP address)")
    p.add_argument("--no-https-config", action="store_true",
                   help="never ask the HTTPS config download port: the config over HTTP/TFTP only")
    p.add_argument("--json", action="store_true", help="print events, decisions and statuses as JSON")
    p.add_argument("--timeout", type=positive_float, default=2.0, metavar="S",
                   help="timeout in seconds of one TFTP datagram, of each wait of an HTTP download (to "
                   "connect, for the response head, for more of the body: a body still coming is not cut; "
                   "--fetch-max-time caps the whole), of one TVS exchange; CAPF x6; default 2")
    p.add_argument("--fetch-max-time", "--tftp-max-time", dest="fetch_max_time", type=positive_float,
                   default=None, metavar="S",
                   help="give up one file's download, TFTP or HTTP, after S seconds in all (default: 60, or "
                   "twice one datagram's timeout x 4 tries when longer; our convention; --tftp-max-time: "
                   "its former name)")
    p.add_argument("--image-signer", type=Path, action="append", default=[], metavar="PEM",
                   help="firmware image-signing certificate the phone trusts (repeatable)")
    p.add_argument("--mic", type=Path, metavar="PEM", help="the phone's MIC certificate")
    p.add_argument("--mic-key", type=Path, metavar="PEM", help="the MIC's private key")
    p.add_argument("--lab", type=Path, metavar="DIR",
                   help="built-in lab cluster: use its MIC for this MAC and its image-signing certificate; "
                   "the phone also holds the lab's manual config key for it (when its flash holds none) "
                   "and has the CAPF authentication string of its pending operation typed in, as fleet "
                   "boot --lab. The lab is read under DIR/.lab.lock, shared: a lab operation under way is "
                   "waited for (said on stderr), the lock released before the phone boots")
    p.add_argument("--auth-string", metavar="DIGITS",
                   help="CAPF authentication string typed on the phone (4..16 digits, spec §F.7; with --lab "
                   "DIR, instead of the one the lab set)")
    p.add_argument("--key", metavar="HEX",
                   help="manual config encryption key (Set Cfg Encrypt Key; kept on the flash)")
    p.add_argument("--capf-retry-delay", type=non_negative_float, default=30.0, metavar="S",
                   help="pause between CAPF retries in seconds (default 30, as the spec gives)")
    add_capf_keygen_options(p, who="the phone")
    p.add_argument("--now", type=unix_time, metavar="UNIX",
                   help="the phone's clock, fixed (default: with --lab DIR the lab's — a --seed lab's own "
                   "clock, an unseeded lab's or the real time, whichever is later — read as the boot starts "
                   "and advancing with the real time, said on stderr when more than a minute off it; "
                   "without --lab the real time)")
    add_register_options(p, after="after the boot,")
    add_call_options(p, answer=True, what="A Call: line; exit status 1 when no media flowed or, over SRTP, "
                                          "none authenticated")
    p.add_argument("--keylog", type=Path, metavar="FILE",
                   help="append the TLS secrets of the phone's TVS, CAPF and HTTPS connections (key-log "
                   "format): capture with tcpdump, then phoneemu wireshark CAPTURE --keylog FILE")
    p.add_argument("--capture", type=Path, metavar="FILE.pcap",
                   help="write the boot's packets to FILE.pcap: a live capture (Linux, root or CAP_NET_RAW) "
                   "of every packet to or from the TFTP host and each host the phone connects to over TCP "
                   "(TVS, CAPF), on every interface; the TLS key log goes to --keylog, default FILE.keys "
                   "(default: no capture). Both are 0600 whatever the umask (the key log holds the "
                   "sessions' secrets, the pcap the configs); a FIFO waits for a reader, as tcpdump -w "
                   "does (wireshark -k -i FILE.pcap)")
    p.set_defaults(handler=handler)


#: the profile fields ``--capf-keygen-seconds`` and ``--capf-in-progress-seconds`` set (spec §F.6, §F.8)
_KEYGEN_OPTIONS = {"capf_keygen_seconds": "--capf-keygen-seconds",
                   "capf_in_progress_seconds": "--capf-in-progress-seconds"}


def _profile_seconds(field: str) -> Any:
    """An argparse ``type=`` for the profile field ``field``: a finite number of seconds, checked against
    the profile's own range (:class:`~phoneemu.phone.profile.PhoneProfile`; one rule, not a copy)."""
    def parse(text: str) -> float:
        from phoneemu.phone.profile import profile_from_dict

        value = non_negative_float(text)
        try:
            profile_from_dict("cp-8861", {field: value})
        except ScenarioError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: {exc.message} (the profile field it sets)") from None
        return value
    return parse


def add_capf_keygen_options(p: Any, *, who: str) -> None:
    """``--capf-keygen-seconds`` and ``--capf-in-progress-seconds`` (``boot``, ``fleet boot``): a slow
    CAPF key generation, overriding the profile's fields of the same names (spec §F.6, §F.8; ours). The
    help of the second names what a CAPF server's cap on REQUEST_IN_PROGRESS makes of a short S: ``lab
    serve``'s default (:data:`~phoneemu.protocols.defaults.MAX_IN_PROGRESS`) cuts a key generation longer
    than that many times S as a flood (was unsaid: 64 s at 0.25 s)."""
    from phoneemu.protocols.defaults import MAX_IN_PROGRESS  # light: imports nothing (startup)

    p.add_argument("--capf-keygen-seconds", type=_profile_seconds("capf_keygen_seconds"), default=None,
                   metavar="S", help=f"{who} takes S seconds, real time, to generate its CAPF key (spec "
                   "§F.8; ours: 0..7200; default its profile's, 0)")
    p.add_argument("--capf-in-progress-seconds", type=_profile_seconds("capf_in_progress_seconds"),
                   default=None, metavar="S", help="meanwhile REQUEST_IN_PROGRESS goes at once and every S "
                   "seconds (spec §F.6; ours: 0 = none, a silent phone, else 0.25..3600, fractions allowed; "
                   f"default its profile's, 10). lab serve takes at most {MAX_IN_PROGRESS} a session "
                   f"(--capf-max-in-progress): a key generation longer than {MAX_IN_PROGRESS} x S "
                   f"({MAX_IN_PROGRESS * 0.25:g} s at 0.25) is cut as a flood")


def capf_keygen_overrides(args: argparse.Namespace) -> dict[str, float]:
    """The profile fields ``--capf-keygen-seconds`` / ``--capf-in-progress-seconds`` give (those given)."""
    return {field: value for field in _KEYGEN_OPTIONS
            if (value := getattr(args, field, None)) is not None}


def capf_keygen_text(overrides: Mapping[str, float]) -> str:
    """What the overrides make of the phones' key generation, for a line on stderr ("" when none)."""
    parts = [f"{option} {overrides[field]:g}" for field, option in _KEYGEN_OPTIONS.items()
             if field in overrides]
    return ", ".join(parts)


def _with_capf_keygen(profile: PhoneProfile, args: argparse.Namespace) -> PhoneProfile:
    """``profile`` with ``--capf-keygen-seconds`` / ``--capf-in-progress-seconds`` applied, as a
    scenario's profile override is (:func:`~phoneemu.phone.profile.profile_from_dict`)."""
    from phoneemu.phone.profile import profile_from_dict

    overrides = capf_keygen_overrides(args)
    return profile_from_dict(profile, overrides) if overrides else profile


def parse_hostport(text: str, default_port: int = 69) -> tuple[str, int]:
    """``--tftp``: ``HOST``, ``HOST:PORT``, ``[V6]:PORT`` or a bare IPv6 address (:func:`parse_host_port`)."""
    return parse_host_port(text, what="--tftp", default_port=default_port)


def pem_certificates(paths: list[Path]) -> list[x509.Certificate]:
    """Every certificate of each PEM file (``--image-signer``, ``--tvs-cert``, ``--mic``); a file
    holding none is an error naming it."""
    from phoneemu.crypto import certs

    out: list[x509.Certificate] = []
    for p in paths:
        found = certs.load_certs_pem(read_at_most(p, PEM_LIMIT, what="PEM file"), source=str(p))
        if not found:
            raise PhoneEmuError("no certificate in PEM", path=str(p))
        out += found
    return out


def _lab_profile(args: argparse.Namespace, mac: str) -> str | None:
    """The profile of the model ``--lab DIR`` has for phone ``mac`` (None: no --lab, no such phone, or
    a model phoneemu has no profile for)."""
    if args.lab is None:
        return None
    from phoneemu.lab.state import load_state
    from phoneemu.scenario.phone_models import profile_for_model

    ph = load_state(args.lab).phones.get(mac)
    return profile_for_model(ph.model) if ph is not None else None


def _sip_line(res: SipResult | None) -> str:
    """The ``--register`` outcome under the boot's summary."""
    if res is None:
        return "  SIP:       not registered: no config accepted, so no line to register"
    verdict = f"registered over {res.transport}" if res.registered else "NOT registered" + (
        f" over {res.transport}" if res.transport else "")
    verdict += f" ({res.tls})" if res.tls else ""
    how = ", challenged" + (" (stale nonce)" if res.stale else "") if res.challenged else ""
    how += f", after {'; '.join(res.passed_over)}" if res.passed_over else ""
    return f"  SIP:       {verdict} at {res.server or '?'}{how}: {res.rule}: {res.reason}"


#: the start of the last line of a boot whose CAPF operation failed (:mod:`phoneemu.phone.capf_outcome`)
_CAPF_FAILED_LINE = "exit status 1: CAPF operation failed: "

#: ``--realtime``: one media packet every 20 ms (its ptime)
_PACE = 0.02


def _call_line(res: CallResult | None) -> str:
    """The ``--call`` outcome under the SIP line."""
    if res is None:
        return "  Call:      not placed"
    suite = f" {res.suite}" if res.suite else ""
    refused = f": {res.refusal}" if res.refusal else ""
    counts = (f"; sent {res.sent}, received {res.received} (authenticated {res.authenticated}, refused "
              f"{res.refused}{refused})" if res.sent else "")
    far = f"; far end: {res.far_end}" if res.far_end else ""
    return f"  Call:      {res.target}: media {res.media}{suite}: {res.rule}: {res.reason}{counts}{far}"


def _lab_phone(args: argparse.Namespace, mac: str) -> PhoneState | None:
    """The phone ``mac`` of the ``--lab DIR`` (None: no --lab, or no such phone), read under the lab lock
    before the phone is made: its manual config key and CAPF authentication string are checked
    (:func:`_check_typed`) before the flash is written, typed after (:func:`_type_lab_secrets`)."""
    if args.lab is None:
        return None
    from phoneemu.lab.state import load_state

    return load_state(args.lab).phones.get(mac)


def _type_lab_secrets(args: argparse.Namespace, ph: PhoneState | None, phone: Phone) -> None:
    """``--lab DIR``, as ``fleet boot --lab``: the phone holds the manual config key the lab encrypts
    its config with (spec §C.5) when its flash holds none and no --key was given, and has the CAPF
    authentication string of the lab's pending operation by string (spec §F.7) typed in unless
    --auth-string was given; each said on stderr. ``ph``: the lab's phone (:func:`_lab_phone`), its
    secrets checked already (:func:`_check_typed`)."""
    if ph is None:
        return
    key, typed = ph.manual_key(), ph.pending_auth_string()
    if args.key is None and key and phone.profile.symmetric_key_bits and phone.store.symmetric_key is None:
        phone.set_symmetric_key(key)
        say(args, f"the manual config key {args.lab} encrypts with is set on the phone (Set Cfg Encrypt "
                  "Key; phone set-key changes it)")
    if args.auth_string is None and typed:
        phone.enter_auth_string(typed)
        say(args, f"the CAPF authentication string {args.lab} set for the {ph.capf_operation} is typed in "
                  "(--auth-string types another)")


def _phone_clock(args: argparse.Namespace) -> tuple[Callable[[], int], dict[str, Any]]:
    """The phone's clock and its JSON: ``--now`` fixed; else with ``--lab DIR`` the lab's, read now and
    advancing with the real time (:mod:`phoneemu.commands._lab_clock`; said once on stderr when more than a
    minute off the real time); else the real time (``--tftp`` alone)."""
    from phoneemu.commands._lab_clock import clock_doc, clock_line, lab_clock_offset

    if args.now is not None:
        fixed: int = args.now
        return (lambda: fixed), clock_doc("--now", fixed)
    real = time.time()
    offset = lab_clock_offset(args.lab, real) if args.lab is not None else 0
    line = clock_line(offset, real) if args.lab is not None else None
    if line is not None:
        say(args, line)
    return (lambda: int(time.time()) + offset), clock_doc("lab" if args.lab is not None else "real",
                                                          int(real) + offset)


def _mic(args: argparse.Namespace, mac: str) -> tuple[tuple[x509.Certificate, PrivateKey] | None,
                                                       list[x509.Certificate]]:
    from phoneemu.crypto import certs, keys

    signers = pem_certificates(args.image_signer)
    if args.lab is not None:
        if args.mic or args.mic_key:
            raise PhoneEmuError("give --lab or --mic/--mic-key, not both", path="lab")
        from phoneemu.lab.cluster import LabCluster
        cluster = LabCluster.open(args.lab)
        return cluster.phone_identity(mac), [*signers, cluster.identity("imagesigning").cert]
    if (args.mic is None) != (args.mic_key is None):
        raise PhoneEmuError("--mic and --mic-key go together", path="mic")
    if args.mic is None:
        return None, signers
    mic = pem_certificates([args.mic])[0]
    key = keys.load_private_key_pem(read_at_most(args.mic_key, PEM_LIMIT, what="PEM file"),
                                   source=str(args.mic_key))
    # a key of another certificate would only show later, as a CAPF or decryption failure
    if keys.public_key_spki_der(key.public_key()) != keys.public_key_spki_der(certs.cert_public_key(mic)):
        raise PhoneEmuError(f"--mic-key {args.mic_key} is not the private key of the --mic {args.mic} "
                            "certificate", path="mic-key")
    return (mic, key), signers


def _watched(args: argparse.Namespace, phone: Phone, target: BootTarget, address: str) -> WatchedFetcher:
    """The fetcher the phone boots through, asking ``address`` (the --tftp name looked up once, not a
    lookup per request), counted and watched (:mod:`phoneemu.commands._watched_fetch`)."""
    http = target.http_port if target.use_http and phone.profile.uses_http_first else None
    inner = phone.fetcher_for(dataclasses.replace(target, host=address))
    return WatchedFetcher(inner, Ports(target.host, target.tftp_port, http), tell=teller(command_of(args)))


def _run_boot(args: argparse.Namespace, phone: Phone, target: BootTarget, asked: WatchedFetcher,
              https: HttpsConfigGetter | None = None) -> BootReport:
    """The boot through ``asked`` (the config over ``https`` first when the phone's rules say so, §H.1);
    interrupted (Ctrl-C), the request under way is said first (it said only "interrupted", after a wait that
    printed nothing). Through :func:`~phoneemu.interrupts.asyncio_run`: a Ctrl-C (a SIGTERM) as the run starts
    is a KeyboardInterrupt too (``asyncio.run`` let out a CancelledError, exit 1)."""
    try:
        return asyncio_run(phone.boot(target, fetcher=asked, https_config=https))
    except KeyboardInterrupt:
        text = asked.interrupted_text()
        if text is not None:
            say(args, text)
        raise


def _files_lines(args: argparse.Namespace, asked: WatchedFetcher, where: ClusterAddress) -> list[str]:
    """The summary's ``files:`` line (what each transport answered; a TFTP port never asked), a note when
    HTTP answered nothing behind an answering TFTP and, with ``--lab DIR``, a ``--tftp`` that is not where
    its lab serve last listened."""
    lines = [f"  files:     {text}"] if (text := asked.summary()) is not None else []
    if (http_note := asked.http_unanswered_note()) is not None:
        lines.append(f"  note:      {http_note}")
    elsewhere = None if where.from_lab else lab_recorded_elsewhere(args.lab, where.host, where.tftp_port,
                                                                   addresses=where.addresses)
    if elsewhere is not None:
        given = host_port(where.host, where.tftp_port)
        lines.append(f"  note:      --tftp {given} is not where lab serve of {args.lab} last listened, "
                     f"{elsewhere}: leave --tftp out to boot there")
    return lines


def _text(report: BootReport, fill: Mapping[str, str], files: Sequence[str] = ()) -> str:
    lines = list(report.timeline)
    trust = ", ".join(f"{k} {v}" for k, v in report.trust.items())
    cfg = f"{report.config}" + (f" ({report.config_file})" if report.config_file else "")
    if report.config_file and report.fetched_over.get(report.config_file) == "https":
        cfg += " over HTTPS"  # the config download of spec §H.1 (TCP 6971)
    lines += ["", f"Phone {report.mac}: {'OK' if report.ok else 'FAILED'}",
              f"  trust:     {trust}",
              f"  config:    {cfg}{' encrypted' if report.encrypted else ''}",
              f"  firmware:  {report.firmware} (running load {report.load or '(none)'})",
              f"  LSC:       {report.lsc}",
              f"  TVS used:  {_tvs_used(report)}   locked out: "
              f"{'yes' if report.locked_out else 'no'}", *files]
    lines += outcome_lines(report, label_width=11, fill=fill)
    return "\n".join(lines)


def _tvs_used(report: BootReport) -> str:
    """The summary's ``TVS used``: ``yes`` (a TVS answered), ``no``, or what happened when none answered —
    ``tried, server refused (no QUERY sent)``, ``tried, unreachable`` (was ``yes`` when no QUERY was sent:
    every TVS server refused, §G.3.4-tvs-server-untrusted). The JSON's ``tvs_used`` is as it was."""
    from phoneemu.fleet.metrics import tvs_unanswered

    if not report.tvs_used:
        return "no"
    why = tvs_unanswered(report.decisions)
    return {"server-untrusted": "tried, server refused (no QUERY sent)",
            "unreachable": "tried, unreachable"}.get(why or "", "yes")


def unanswered_hint(report: BootReport, target: BootTarget, *, lab: Path | None = None) -> str | None:
    """A hint when nothing answered the phone at all — no file, not even "file not found", and the boot
    failed for want of a config (timeouts or unreachable): the usual cause is a cluster that is not
    running or a wrong ``--tftp`` port, which the phone's own statuses ("TFTP timeout") do not say. Its
    text is :func:`nothing_answered_hint`'s."""
    d = report.deciding
    if d is None or d.rule != "H.3-config-transport-failed" or len(report.decisions) != 1:
        return None
    if report.answered or any("not found" in s.lower() for s in report.statuses):
        return None  # something answered (a malformed reply, an endless file): the decision says what
    return nothing_answered_hint(target, lab=lab, heard=ignored_heard(d.reason or ""))


def no_mic_hint(report: BootReport, *, has_mic: bool) -> str | None:
    """One line when the boot gave the phone no MIC (no ``--lab``, no ``--mic``/``--mic-key``) and a rule
    refused for want of a phone certificate (neither an LSC nor a MIC; told by the words of the rule's own
    reason, imported: a config encrypted to the phone's certificate, spec §G.12.2; a CAPF session needing
    one to authenticate, §F.7): the emulated phone holds none unless given one, where a real phone has its
    MIC from the factory — the options that give it one (was: the refusal and ``F.7-no-capf-operation``
    alone, nothing saying the phone had no MIC)."""
    if has_mic:
        return None
    from phoneemu.phone.boot import NO_CAPF_CERTIFICATE
    from phoneemu.phone.rules import NO_PHONE_CERTIFICATE

    words = {"G.12.2-cert-hash-mismatch": NO_PHONE_CERTIFICATE,
             "G.12.2-wait-auth-string": NO_PHONE_CERTIFICATE, "F.6-capf-rejected": NO_CAPF_CERTIFICATE}
    refused = next((d.rule for d in report.decisions if not d.accepted and d.rule in words
                    and words[d.rule] in (d.reason or "")), None)
    if refused is None:
        return None
    return (f"the emulated phone holds no MIC (no --lab, no --mic/--mic-key given), so no phone certificate "
            f"({refused}): --lab DIR gives it the MIC that lab issued for its MAC, --mic PEM --mic-key PEM "
            "the one its cluster knows")


def ignored_heard(reason: str) -> str | None:
    """What a TFTP timeout's ``reason`` says was heard and ignored, its first one (``a reply from
    127.0.0.2:4711: not 127.0.0.1:69, the address asked``: :mod:`phoneemu.net.tftp_client`), or None."""
    at = reason.find(_IGNORED)
    if at < 0:
        return None
    said = reason[at + len(_IGNORED):]
    return said[:-1] if said.endswith(")") else said


#: where a TFTP timeout's reason says what it heard and ignored (phoneemu.net.tftp_client)
_IGNORED = " ignored, the first "
#: how such a first one ends when it came from another address than the one asked (the others: DATA N before
#: DATA 1, another port of the transfer, ERROR 5 ... from the address asked)
_OTHER_ADDRESS = ", the address asked"


def nothing_answered_hint(target: BootTarget, *, lab: Path | None = None, heard: str | None = None) -> str:
    """What ``boot`` (:func:`unanswered_hint`) and ``fleet boot`` (every phone unanswered) say when
    nothing answered at ``target``: the host as an address is written (``[::1]``, :func:`_host_text`) and
    the ports asked; the ``lab serve`` command names the lab folder when one was given (``--lab DIR``;
    else ``DIR``) and the ports asked (HTTP's when the phones tried it on another than lab serve's
    default 6970). Without ``--lab`` (a real cluster, most likely) CUCM's terms come first
    (:func:`_cucm_hint`; it offered only the lab's command). ``heard``: replies came but were ignored
    (:func:`ignored_heard`, the first of them): said instead of asking whether a server runs (was: "is the
    cluster's TFTP server running there?" of a multi-homed server answering from another address).
    While a lab serve of ``--lab DIR`` runs (it holds ``DIR/.serve.lock``, :func:`lab_served_now`), where it
    listens is said instead of the ``lab serve`` command, which is refused then (one per lab; was offered)."""
    from phoneemu.lab.state import DEFAULT_PORTS

    tried_http = target.use_http and bool(target.http_port)
    http = f", HTTP port {target.http_port}" if tried_http else ""
    if heard is not None:  # the way out as the first one says: its address, else its order (was: the
        # address's alone, "ask that one (--tftp ADDRESS)" of a reply from the very address asked)
        what = ("a server with several addresses may answer from another: ask that one (--tftp ADDRESS), or "
                "have the server answer from the address asked" if heard.endswith(_OTHER_ADDRESS) else
                "this one came from the address asked, out of turn: check the server (or what stands between "
                "it and the phones: a NAT, a load balancer)")
        return (f"no reply at {_host_text(target.host)} (TFTP port {target.tftp_port}{http}) could be taken, "
                f"but replies came: the first, {heard}. A TFTP reply must come from the address asked and "
                f"begin with DATA 1 (RFC 1350); {what}")
    folder = shlex.quote(str(lab)) if lab is not None else "DIR"
    serve = f"phoneemu lab serve {folder} --tftp-port {target.tftp_port}"
    if tried_http and target.http_port != DEFAULT_PORTS["http"]:
        serve += f" --http-port {target.http_port}"
    cucm = "" if lab is not None else f" {_cucm_hint(target, tried_http)}"
    elsewhere = lab_recorded_elsewhere(lab, target.host, target.tftp_port)
    served = lab_served_now(lab)  # a lab serve of it runs: "lab serve DIR" is refused, not offered
    if elsewhere is not None:  # was only "lab serve DIR --tftp-port <the port asked>", beside the one running
        also = f"or: {serve}" if served is None else f"a lab serve of {folder} runs: {served}"
        return (f"nothing answered at {_host_text(target.host)} (TFTP port {target.tftp_port}{http}), and "
                f"lab serve of {folder} last listened at {elsewhere}: leave --tftp out to boot where it "
                f"listens ({also}){_bare_v6_note(target.host, target.tftp_port)}")
    for_lab = (f"{serve} (it prints the ports it listens on)" if served is None else
               f"a lab serve of {folder} runs ({served}; one lab serve per lab)")
    return (f"nothing answered at {_host_text(target.host)} (TFTP port {target.tftp_port}{http}): is the "
            f"cluster's TFTP server running there?{cucm} For a lab: {for_lab}"
            f"{_bare_v6_note(target.host, target.tftp_port)}")


def _host_text(host: str) -> str:
    """``host`` as an address is written beside a port: ``[::1]`` for an IPv6 address (it holds a colon),
    by :func:`phoneemu.values.host_port`'s rule; a bare ``::1`` before "(TFTP port 6969" read like a
    port of its own."""
    return host_port(host, 0).removesuffix(":0")


def _cucm_hint(target: BootTarget, tried_http: bool) -> str:
    """:func:`unanswered_hint` without a lab (``--tftp`` alone, a real cluster most likely), in CUCM's
    terms: its TFTP service, and the ports it serves files on (spec §H.1: UDP 69, TCP 6970) where this
    boot asked others — the likeliest mistake against CUCM, a lab's port copied from an example."""
    from phoneemu.lab.defaults import DEFAULT_PORTS
    from phoneemu.phone.ways_out import CUCM_SERVICEABILITY  # the ways out's words

    tftp, http = DEFAULT_PORTS["tftp"], DEFAULT_PORTS["http"]
    asked = [("TFTP", target.tftp_port, tftp), *([("HTTP", target.http_port, http)] if tried_http else [])]
    other = [f"{name} port {port}" for name, port, usual in asked if port != usual]
    said = f"; this boot asked {' and '.join(other)}" if other else ""
    return (f"On CUCM: is its TFTP service activated and started on that node ({CUCM_SERVICEABILITY}), "
            f"UDP {tftp} and TCP {http} open from here? CUCM serves the files on those ports (spec §H.1)"
            f"{said}.")


def _bare_v6_note(host: str, port: int) -> str:
    """For ``--tftp ::1:6969`` (a bare IPv6 address, so port 69, whose last group reads like a port):
    how to write the port that was probably meant."""
    head, _, last = host.rpartition(":")
    if port != 69 or not 1 <= len(last) <= 5 or not last.isascii() or not last.isdigit():
        return ""
    try:
        ipaddress.IPv6Address(head)
    except ValueError:
        return ""
    return (f"; note: {host} is one IPv6 address, so port 69 (a bare IPv6 address takes no port): "
            f"for port {last} write --tftp [{head}]:{last}")


def offline_boot_lines(served: Sequence[tuple[str, str]], report: BootReport,
                       fill: Mapping[str, str] | None = None) -> list[str]:
    """An offline boot (``replay``, ``predict``): what each request got, every decision, the result
    line, then :func:`outcome_lines`."""
    lines = [f"  fetch {name}: {answer}" for name, answer in served]
    for d in report.decisions:
        verdict = "accepted" if d.accepted else "rejected"
        lines.append(f"  {d.rule:<28} {verdict:<8} {d.file + ': ' if d.file else ''}{d.reason}")
    trust = ", ".join(f"{k} {v}" for k, v in report.trust.items())
    lines.append(f"  result:   {'OK' if report.ok else 'FAILED'}; trust {trust}; config {report.config}"
                 f"{' (' + report.config_file + ')' if report.config_file else ''}; locked out: "
                 f"{'yes' if report.locked_out else 'no'}")
    return lines + outcome_lines(report, label_width=10, fill=fill)


def add_offline_phone_options(p: Any, *, now_help: str,
                              profile_help: str = "phone model profile (default cp-8861)") -> None:
    """The options of an offline boot (``replay``, ``predict``): profile, clock, image signers and
    the offline TVS (``--tvs-cert``, ``--tvs-roles``)."""
    from phoneemu.phone.profile_names import PROFILE_NAMES

    p.add_argument("--profile", default="cp-8861", choices=sorted(PROFILE_NAMES), help=profile_help)
    p.add_argument("--now", type=unix_time, metavar="UNIX", help=now_help)
    # no --fetch-max-time here: an offline boot is served from memory, no download to cap
    p.add_argument("--image-signer", type=Path, action="append", default=[], metavar="PEM",
                   help="firmware image-signing certificate the phone trusts (repeatable)")
    p.add_argument("--tvs-cert", type=Path, action="append", default=[], metavar="PEM",
                   help="the offline TVS vouches for these certificates (repeatable; other queries get "
                   "'not found'); without it TVS is unreachable (predict: unless --tvs-reachable)")
    p.add_argument("--tvs-roles", default="0,2", metavar="CODES",
                   help="roles the offline TVS gives --tvs-cert certificates (default 0,2: SAST, CCM+TFTP)")


def tvs_roles(text: str) -> frozenset[int]:
    """``--tvs-roles 0,2`` → role codes (``replay``, ``predict``). A TVS answer carries each role in one
    byte (spec §E.4 ROLES): PhoneEmuError unless the list holds at least one code and every code is
    0..255 in ASCII digits (``-1``, ``999`` or ``,,`` made an offline TVS vouch with roles no answer
    can carry, or with none)."""
    codes = [parse_ascii_int(r.strip(), max_digits=3) for r in text.split(",") if r.strip()]
    if not codes or any(c is None or c > 255 for c in codes):
        raise PhoneEmuError(f"--tvs-roles {text!r}: comma-separated role codes 0..255 (spec §B.3), e.g. 0,2",
                            path="tvs-roles")
    return frozenset(c for c in codes if c is not None)


def outcome_lines(report: BootReport, *, label_width: int,
                  fill: Mapping[str, str] | None = None) -> list[str]:
    """The deciding decision (when there is one) and the statuses shown, labels padded to
    ``label_width`` (``boot`` and ``replay`` print them the same way); under a lockout its ways out,
    their lab commands filled in with ``fill`` (:func:`phoneemu.phone.ways_out.way_out_lines`), chosen by
    the lists the phone holds after this boot (``report.held``), as its JSON's ``ways_out`` (was: read from
    the flash as it was before a ``predict``, or the table's without one: ``boot`` without ``--flash``,
    ``replay``), or why it has none (:func:`phoneemu.phone.ways_out.no_way_out_lines`)."""
    from phoneemu.phone.ways_out import no_way_out_lines, way_out_lines

    lines: list[str] = []
    if report.deciding is not None:
        lines.append(f"  {'deciding:':<{label_width}}{report.deciding.summary()}")
    lines.append(f"  {'statuses:':<{label_width}}{' | '.join(report.statuses) or '-'}")
    if report.locked_out and report.deciding is not None:  # and then? (phoneemu.phone.ways_out)
        lines += way_out_lines(report.deciding.rule, report.deciding.kind, fill=fill,
                               reason_code=report.deciding.reason_code, held=report.held)
        lines += no_way_out_lines(report.deciding.rule, report.deciding.kind)
    return lines


#: why a placeholder is left in one phone's ways out (:func:`_placeholder_legend`), by name, else
#: :data:`_LEFT_BY_BOOT`
_BOOT_LEAVES = {"OLD": "not known to boot: --lab names the cluster it boots against, not the one it left",
                "FILE": "not kept by boot: the file served under the name its deciding line gives"}
_LEFT_BY_BOOT = "not known to boot"


def _placeholder_legend(report: BootReport, fill: Mapping[str, str], sip: SipResult | None,
                        call: CallResult | None, *, other_cluster: str | None = None) -> list[str]:
    """Said once under ``boot``'s ways out (the lockout's, a refused registration's, a call's without SRTP):
    each placeholder their commands leave, what it stands for and why it is left (``OLD: the lab folder of
    the cluster the phones left (not known to boot: ...)``), as a fleet's text says them
    (:func:`phoneemu.phone.ways_out.legend_lines`; was ``OLD`` bare, with no legend). ``other_cluster``:
    why the ``--lab`` folder's copy of the refused file is not ``FILE`` (:func:`_other_cluster`)."""
    from phoneemu.phone.ways_out import legend_lines, phone_placeholders_left

    left: list[str] = []
    if report.locked_out and report.deciding is not None:
        left += phone_placeholders_left(report.deciding.rule, report.deciding.kind, fill,
                                        reason_code=report.deciding.reason_code, held=report.held)
    if sip is not None and not sip.registered:
        left += phone_placeholders_left(sip.rule, "sip", fill)
    if call is not None:
        left += phone_placeholders_left(call.rule, "media", fill)
    why = dict(_BOOT_LEAVES)
    if other_cluster is not None:
        why["FILE"] = f"{why['FILE']}; not the --lab folder's copy: {other_cluster}"
    return legend_lines(left, why, _LEFT_BY_BOOT, indent="  ")


def _other_cluster(lab: Path | None, where: ClusterAddress) -> str | None:
    """Why the cluster the phone booted against is not known to be the ``--lab`` one (None: no ``--lab``, or
    it is: its address taken from the lab, or a ``--tftp`` at the very address and TFTP port where that
    lab's lab serve last listened, :func:`lab_recorded_elsewhere`). A ``--tftp`` elsewhere is another
    cluster, and so is one given for a lab no lab serve ever recorded (it records where it listens when it
    starts): the lab's copy of a file need not be the one the phone was served."""
    from phoneemu.commands._cluster_address import _recorded  # where the lab's lab serve last listened

    if lab is None or where.from_lab:
        return None
    given = host_port(where.host, where.tftp_port)
    if _recorded(lab) is None:
        return f"--tftp {given}, and no lab serve of {lab} has recorded listening there"
    elsewhere = lab_recorded_elsewhere(lab, where.host, where.tftp_port, addresses=where.addresses)
    if elsewhere is not None:
        return f"--tftp {given} is not where lab serve of {lab} last listened, {elsewhere}"
    return None


def _ways_fill(args: argparse.Namespace, where: ClusterAddress, report: BootReport, *, flash_dir: Path,
               mac: str) -> tuple[dict[str, str], str | None]:
    """The placeholders of the ways out this boot knows, and why the lab's copy of the refused file is not it
    (:func:`_refused_file_of`): the lab (``DIR``, and ``NEW``: a migration's phones moved to it), the flash
    kept, the MAC, no lab command without ``--lab``, the flash not kept without ``--flash``; bringing TVS back
    names the lab only when the TVS the phone could not reach is its own
    (:func:`phoneemu.phone.ways_out.tvs_back_fill`; was ``lab service DIR tvs start`` while the TVS of the
    cluster the phone left was down and DIR's ran)."""
    from phoneemu.phone.ways_out import FLASH_NOT_KEPT, NOT_A_LAB, tvs_back_fill

    lab = str(args.lab) if args.lab is not None else None
    known = {"DIR": lab, "NEW": lab,
             "FLASH": str(flash_dir) if args.flash is not None else None, "MAC": mac,
             NOT_A_LAB: str(where) if args.lab is None else None,  # no lab: no lab command
             FLASH_NOT_KEPT: "phoneemu boot" if args.flash is None else None}  # a temporary folder
    refused, other = _refused_file_of(args.lab, where, report)  # not another cluster's lab's copy
    fill = {k: v for k, v in known.items() if v is not None} | refused
    deciding = report.deciding
    fill |= tvs_back_fill(lab, [(deciding.rule, deciding.reason)] if deciding is not None else [])
    return fill, other


def _refused_file_of(lab: Path | None, where: ClusterAddress,
                     report: BootReport) -> tuple[dict[str, str], str | None]:
    """``FILE`` as :func:`_refused_file` fills it from the ``--lab`` folder, only when the phone booted
    against that lab (``where``); else nothing, and why the lab's copy is not the file the phone refused
    (:func:`_other_cluster`, said in the legend). Was: the ``--lab`` folder's copy with ``--tftp`` another
    cluster's address, where the phone was served another file under that name."""
    other = _other_cluster(lab, where)
    return _refused_file(lab if other is None else None, report), other


def _refused_file(lab: Path | None, report: BootReport) -> dict[str, str]:
    """The ways out's ``FILE`` (``inspect FILE``: a lockout whose QUERY was too large to send) where the lab
    booted against serves it (``DIR/tftp/<the refused file>``); nothing otherwise (boot keeps no copy).
    ``lab``: None when the phone booted against another cluster (:func:`_refused_file_of`)."""
    name = report.deciding.file if report.locked_out and report.deciding is not None else None
    if lab is None or not name or "/" in name or name in (".", ".."):
        return {}
    served = lab / "tftp" / name
    return {"FILE": str(served)} if served.is_file() else {}


def _check_flash_folder(path: Path | None) -> None:
    """``--flash DIR``: a folder the phone can read and keep its state in, or one it can make (the boot
    makes it), checked before anything is read or made; else one line naming the option, the folder and
    why, exit 2 (was the OSError of the first file the phone wrote, "/tmp/f: File exists", naming no
    option, once its MIC was checked)."""
    if path is None:
        return
    try:
        problem = _flash_folder_problem(path)
    except OSError as exc:  # a folder on the way that cannot be looked into
        problem = str(exc.strerror or exc)
    if problem is not None:
        raise PhoneEmuError(f"--flash {path}: {problem}", path="flash")


def _flash_folder_problem(path: Path) -> str | None:
    """Why ``path`` cannot be the phone's flash folder (None: it can)."""
    if path.is_dir():
        for mode, what in ((os.R_OK | os.X_OK, "readable"), (os.W_OK, "writable")):
            if not os.access(path, mode):
                return f"not {what} (the phone reads and keeps its state there)"
        return None
    if path.exists() or path.is_symlink():
        what = ("a file" if path.is_file() else "a link to nothing" if not path.exists()
                else "a device or pipe")
        return f"is {what}, not a folder (the phone keeps its state in a folder)"
    parent = next(p for p in path.absolute().parents if p.exists())  # "/" exists
    if not parent.is_dir():
        return f"cannot be made: {parent} is a file, not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot be made: folder {parent} is not writable"
    return None


def handler(args: argparse.Namespace) -> int:
    args.packets = checked_packets(args)
    _check_flash_folder(args.flash)
    args.flash_made = []  # the folders this process made for --flash (_make_flash), the flash's last
    args.boot_started = False
    reading = contextlib.ExitStack()  # the lab lock while the lab is read (lab_read_lock), not while booting
    try:
        reading.enter_context(lab_read_lock(args.lab, command_of(args)))
        return _boot(args, reading)
    except BaseException:
        if args.flash_made and not args.boot_started:  # refused (or interrupted) before the phone booted
            _unmake_flash(args.flash_made)
        raise
    finally:
        reading.close()


def _make_flash(path: Path) -> list[Path]:
    """Make the ``--flash`` folder (and the folders on the way to it) when it is not there, under the lab
    lock: the folders this process made, the flash's last, known as each is made (``os.mkdir``, no
    ``exist_ok``); [] when the flash folder was there, or another process made it meanwhile. Was: "made"
    decided before the boot waited for the lab lock, and a folder another process made in that wait (with
    another phone's ``phone.json``) removed when the boot was refused."""
    if path.exists() or path.is_symlink():
        return []
    flash = path.absolute()
    chain = [*reversed([p for p in flash.parents if not p.exists()]), flash]
    made: list[Path] = []
    for folder in chain:
        try:
            os.mkdir(folder, 0o700 if folder == flash else 0o777)  # 0700: as the phone keeps its flash
        except FileExistsError:  # another's: not ours to remove
            continue
        except OSError as exc:  # changed since _check_flash_folder
            if made:
                _unmake_flash(made)
            raise PhoneEmuError(f"--flash {path}: cannot be made: {exc.strerror or exc}",
                                path="flash") from None
        made.append(folder)
    return made if made and made[-1] == flash else []


def _unmake_flash(made: list[Path]) -> None:
    """Remove what :func:`_make_flash` made: the flash folder and what the phone wrote in it, then each
    folder on the way this process made, if still empty."""
    shutil.rmtree(made[-1], ignore_errors=True)
    for folder in reversed(made[:-1]):
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def _check_typed(args: argparse.Namespace, mac: str, profile: PhoneProfile, *, flash: Path,
                 lab_phone: PhoneState | None) -> None:
    """``--key`` and ``--auth-string`` checked by the phone's own rules (spec §C.5, §F.7) on a phone of
    ``profile`` without a flash, before the boot writes anything: a refusal is exit 2 naming the option
    (was: said after ``phone.json`` and ``state.json`` were written into the ``--flash`` folder, and the
    key's as ``symmetric_key: ...``, a field of the store). So are, in their stead, the manual key and the
    authentication string ``--lab DIR`` has for the phone when they are to be typed
    (:func:`_type_lab_secrets`; the key when the ``flash`` holds none): a refusal names what the lab set,
    and the way out (was: said after the flash was written, as ``symmetric_key: ...``; a lab may hold a
    key the profile does not take, ``lab phone add`` made before it checked)."""
    from phoneemu.errors import EncodeError
    from phoneemu.phone.flash import Flash
    from phoneemu.phone.phone import Phone

    scratch = Phone(mac=mac, profile=profile, flash=None, clock=lambda: 0)
    for value, typed, option in ((args.key, scratch.set_symmetric_key, "key"),
                                 (args.auth_string, scratch.enter_auth_string, "auth_string")):
        if value is None:
            continue
        try:
            typed(value)
        except EncodeError as exc:
            raise PhoneEmuError(exc.message, path=option) from None
    if lab_phone is None:
        return
    key, auth = lab_phone.manual_key(), lab_phone.pending_auth_string()
    if args.key is None and key and profile.symmetric_key_bits:
        with contextlib.suppress(EncodeError):  # a key the flash holds that the phone takes: the lab's unused
            scratch.set_symmetric_key(Flash(flash, profile=profile).held_keys()[2])
        try:
            if scratch.store.symmetric_key is None:
                scratch.set_symmetric_key(key)
        except EncodeError as exc:
            raise PhoneEmuError(f"the manual key {args.lab} set for {mac} (lab phone add --symmetric-key) is "
                                f"{_lab_key_problem(exc.message, profile)}: give --key HEX or another "
                                "--profile", path="lab") from None
    if args.auth_string is None and auth:
        try:
            scratch.enter_auth_string(auth)
        except EncodeError as exc:
            raise PhoneEmuError(f"the CAPF authentication string {args.lab} set for {mac} (lab phone add "
                                f"--auth-string) is refused by the phone: {exc.message}: give --auth-string "
                                "DIGITS", path="lab") from None


def _lab_key_problem(message: str, profile: PhoneProfile) -> str:
    """The store's refusal of a lab's manual key (``256-bit key; cp-7942-symmetric takes 128-bit keys``)
    said of the key (``256-bit; cp-7942-symmetric takes 128-bit keys``)."""
    return message.replace("-bit key; ", "-bit; ", 1) if profile.symmetric_key_bits else message


def _boot(args: argparse.Namespace, reading: contextlib.ExitStack) -> int:
    """:func:`handler`, ``reading`` holding the lab lock until the lab is read (closed here then)."""
    from phoneemu.formats import config as config_fmt
    from phoneemu.phone.boot import BootTarget, decision_dict
    from phoneemu.phone.capf_outcome import capf_failure
    from phoneemu.phone.flash import Flash
    from phoneemu.phone.phone import Phone, check_flash_owner, read_phone_file
    from phoneemu.phone.profile import get_profile
    from phoneemu.phone.ways_out import way_out_lines, ways_json_said, ways_out_json

    where = cluster_address(args)
    address = check_resolves(where, http=not args.no_http)  # looked up once (not resolving: exit 2)
    host, port = where.host, where.tftp_port
    if where.from_lab:
        print(where.lab_line(command_of(args), args.lab), file=sys.stderr)
    args.keylog = capture_keylog(args.capture, args.keylog)
    sweep_abandoned()  # phoneemu-* folders of processes killed before they could remove them
    tmp: str | None = None
    try:
        if args.flash is None:  # a Ctrl-C (a SIGTERM) as it is made waits until the finally below owns it
            with ctrl_c_deferred() as interrupted:
                tmp = make_owned_tempdir("phoneemu-flash-")
            interrupted()
        else:  # made under the lab lock, known as made (handler removes it if the boot is refused)
            with ctrl_c_deferred() as interrupted:
                args.flash_made = _make_flash(args.flash)
            interrupted()
        flash_dir: Path = Path(tmp) if tmp is not None else args.flash
        ident = read_phone_file(flash_dir)
        mac_text = args.mac if args.mac is not None else ident.get("mac")  # --mac "": refused, not skipped
        if not isinstance(mac_text, str):
            raise PhoneEmuError("--mac is required (no phone.json in the flash directory)", path="mac")
        mac = config_fmt.normalise_mac(mac_text)
        pname = args.profile if args.profile is not None else (ident.get("profile") or _lab_profile(args, mac)
                                                               or "cp-8861")
        profile = _with_capf_keygen(get_profile(str(pname)), args)
        try:
            check_flash_owner(flash_dir, mac=mac, profile=profile.name)
        except DecodeError as exc:
            raise PhoneEmuError(f"{flash_dir} {exc.message}", path="flash") from None
        mic, signers = _mic(args, mac)
        lab_phone = _lab_phone(args, mac)
        _check_typed(args, mac, profile, flash=flash_dir,  # before the phone writes its flash: a refused
                     lab_phone=lab_phone)                  # boot leaves it
        where_sip = registrar(args)
        call = call_of(args)
        clock, clock_said = _phone_clock(args)  # the lab's with --lab: read under its lock
        phone = Phone(mac=mac, profile=profile, flash=Flash(flash_dir, profile=profile), clock=clock, mic=mic,
                      image_signers=signers, capf_retry_delay=args.capf_retry_delay,
                      fetch_timeout=args.timeout, fetch_retries=3, fetch_max_time=args.fetch_max_time,
                      http_timeout=args.timeout,
                      tvs_timeout=args.timeout, capf_timeout=args.timeout * 6, keylog=args.keylog)
        if args.key is not None:
            phone.set_symmetric_key(args.key)
        if args.auth_string is not None:
            phone.enter_auth_string(args.auth_string)
        _type_lab_secrets(args, lab_phone, phone)
        reading.close()  # the lab is read: an operation may change it while the phone boots
        target = BootTarget(host=host, tftp_port=port, http_port=where.http_port, use_http=not args.no_http,
                            https_config_port=where.https_config_port,
                            use_https_config=not args.no_https_config)
        capture = open_host_capture(args.capture, args.keylog, host, said_by=command_of(args))
        args.boot_started = True  # from here a --flash folder made is the phone's (handler)
        sip_result: SipResult | None = None
        call_result: CallResult | None = None
        try:
            asked = _watched(args, phone, target, address)
            https = phone.https_config_for(dataclasses.replace(target, host=address))  # §H.1, 6971
            report = _run_boot(args, phone, target, asked, https)  # the report names the --tftp given
            if where_sip is not None and report.config == "accepted":
                if call is not None:
                    call_result = asyncio_run(phone.call(*where_sip, target=call[0], packets=call[1],
                                                         pace=_PACE if args.realtime else 0.0))
                    sip_result = call_result.registration
                elif args.answer is not None:
                    def waiting() -> None:
                        say(args, f"waiting up to {args.answer:g}s for a call to SEP{mac}")
                    call_result = asyncio_run(phone.answer(*where_sip, wait=args.answer, ready=waiting,
                                                           pace=_PACE if args.realtime else 0.0))
                    sip_result = call_result.registration
                else:
                    sip_result = asyncio_run(phone.register_sip(*where_sip))
        finally:
            if capture is not None:
                capture.close()
                for line in capture_summary(capture):
                    say(args, line)
        capf_failed = capf_failure(report.decisions)  # an operation started that did not complete: exit 1
        if args.json:
            fill = _ways_fill(args, where, report, flash_dir=flash_dir, mac=mac)[0]
            said = report.as_dict()  # its ways out name the cluster the text's do (bringing TVS back: OLD)
            said["ways_out"] = ways_json_said(said["ways_out"], fill)
            doc = {"report": said,
                   "events": [{k: v for k, v in dataclasses.asdict(e).items() if v is not None}
                              for e in phone.events],
                   "statuses": list(report.statuses),
                   "decisions": [decision_dict(d) for d in report.decisions],
                   "flash": str(flash_dir) if args.flash is not None else None,
                   "transports": asked.as_dict(), "clock": clock_said,
                   "capf_failure": None if capf_failed is None else {"rule": capf_failed.rule,
                                                                     "reason": capf_failed.reason}}
            if where_sip is not None:
                sip_doc = dataclasses.asdict(sip_result) if sip_result is not None else None
                if sip_doc is not None and sip_result is not None and not sip_result.registered:
                    sip_doc["ways_out"] = ways_out_json(sip_result.rule, "sip")
                doc["sip"] = sip_doc
            if args.call is not None or args.answer is not None:
                doc["call"] = None if call_result is None else {
                    **{k: v for k, v in dataclasses.asdict(call_result).items() if k != "registration"},
                    "ways_out": ways_out_json(call_result.rule, "media")}
            print(json_doc.dumps(doc, indent=2))  # lone surrogates as U+FFFD (json_doc rule)
        else:
            fill, other = _ways_fill(args, where, report, flash_dir=flash_dir, mac=mac)
            print(_text(report, fill, _files_lines(args, asked, where)))
            if where_sip is not None:
                print(_sip_line(sip_result))
                if sip_result is not None and not sip_result.registered:
                    for line in way_out_lines(sip_result.rule, "sip", fill=fill):
                        print(line)
            called = ((args.call or args.answer) is not None and sip_result is not None
                      and sip_result.registered)
            if called:
                print(_call_line(call_result))
                for line in way_out_lines(call_result.rule if call_result else "", "media", fill=fill):
                    print(line)
            for line in _placeholder_legend(report, fill, sip_result if where_sip is not None else None,
                                            call_result if called else None, other_cluster=other):
                print(line)
            if capf_failed is not None:  # the last line: why the exit status is 1
                print(f"{_CAPF_FAILED_LINE}{capf_failed.rule}: {capf_failed.reason}")
        for hint in (unanswered_hint(report, target, lab=args.lab),
                     no_mic_hint(report, has_mic=mic is not None)):
            if hint is not None:
                say(args, hint)
        registered = where_sip is None or (sip_result is not None and sip_result.registered)
        called = (args.call or args.answer) is None or (call_result is not None and call_result.media_flowed)
        return 0 if report.ok and registered and called and capf_failed is None else 1
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

