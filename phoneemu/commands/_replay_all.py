"""``phoneemu replay --all``: every phone of a capture replayed at once, summarised as a fleet
(:mod:`phoneemu.scenario.replay_fleet`; outcomes named as ``fleet boot`` names them)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phoneemu import json_doc
from phoneemu.commands._capture import keys_beside
from phoneemu.commands._progress import progress_line
from phoneemu.commands._said import say
from phoneemu.errors import PhoneEmuError
from phoneemu.files import write_output_text
from phoneemu.formats._tlv import printable
from phoneemu.interrupts import asyncio_run
from phoneemu.spool import JsonLines

if TYPE_CHECKING:  # the replay and its fleet summary are imported where one runs (start-up time)
    from phoneemu.net.tls_decrypt import KeyLog
    from phoneemu.phone.ways_out import WaysGroup
    from phoneemu.scenario.replay import Limits, ReplayResult
    from phoneemu.scenario.replay_fleet import PhoneReplay
    from phoneemu.scenario.replay_tvs import TvsCapture

__all__ = [
    "ALL_MAX_MEMORY_MIB",
    "PATH_SHOWN",
    "PHONES_LISTED",
    "add_all_options",
    "boots_path",
    "check_all_options",
    "check_reports",
    "fleet_doc",
    "fleet_text",
    "installed_files",
    "locked_out_tvs_offline",
    "offline_words",
    "phone_record",
    "reports_of",
    "run_all",
    "tvs_offline_said",
    "undecrypted_warning",
    "write_junit",
]

ALL_MAX_MEMORY_MIB = 1024
"""``--max-memory`` of ``--all`` unless given (our convention): every phone's downloads are described in
memory (half the budget at most), so a full cluster's storm (40,000 phones) fits."""
PHONES_LISTED = 50
"""Phones the text output lists one per line (more: the summary only; ``--json`` has every phone)."""
PATH_SHOWN = 4
"""Outcomes a phone's boots went through that its line (and ``changed``) names at most, a run of boots
with one outcome as one (our convention): beyond, the first two, ``...``, the last and the number of
changes."""
#: what a replayed lockout resting on the offline TVS waits on, said after "if its TVS cannot be reached"
#: (as predict's :data:`phoneemu.scenario.predict.TVS_OFFLINE_ASK`, with replay's own way to ask it)
TVS_OFFLINE_ASK = "offline: give --keylog FILE, the capture's TLS key log, or --tvs-cert"
_IF_UNREACHED = "if {whose} TVS cannot be reached"  # predict's words (commands/predict.py)


def locked_out_tvs_offline(report: Any) -> bool:
    """Whether a replayed boot's lockout rests on the offline TVS, no server answering for want of a key
    log (:func:`phoneemu.scenario.predict.rests_on_offline_tvs`, as predict tells its own: the offline
    TVS's words in the deciding reason). Such a lockout is said *if its TVS cannot be reached*
    (:func:`tvs_offline_said`; was: ``locked out: yes`` plainly, where the captured TVS had answered)."""
    from phoneemu.scenario.predict import rests_on_offline_tvs

    deciding = report.deciding
    return bool(report.locked_out) and deciding is not None and rests_on_offline_tvs(deciding.rule,
                                                                                      deciding.reason)


def tvs_offline_said(whose: str = "its") -> str:
    """The qualifier of a lockout resting on the offline TVS (:func:`locked_out_tvs_offline`), predict's
    words (``whose``: ``its`` or ``their``) with replay's way to ask TVS."""
    return f"{_IF_UNREACHED.format(whose=whose)} ({TVS_OFFLINE_ASK})"


def _unopened_keylog(args: argparse.Namespace, tvs: TvsCapture) -> None:
    """A key log that opens none of the capture's TLS connections (each not decrypted, none read: another
    capture's, or another run's of this one) is said on stderr, with the first connection's why. One taken
    up beside the capture (``args.keylog_beside``: not asked for) is then not used, ``args.keylog`` None:
    the replay goes on as without a key log, its lockouts resting on the offline TVS said so
    (:func:`undecrypted_warning`; was: ``using the TLS key log``, then each TVS question ``no such TVS
    query of this phone in the capture`` and ``locked out: yes``). One given (``--keylog``, embedded) is
    still used: asked for."""
    from phoneemu.words import counted

    unread = len(tvs.problems) + tvs.unlisted_problems
    if args.keylog is None or tvs.decrypted or tvs.not_tvs or not unread:
        return
    n = counted(unread, "TLS connection")
    first = f" (first: {tvs.problems[0]})" if tvs.problems else ""
    if getattr(args, "keylog_beside", False):
        say(args, f"warning: the TLS key log beside the capture, {args.keylog}, opens none of its {n} "
                  f"(another capture's key log?): not used{first}")
        args.keylog = None
        return
    say(args, f"warning: the TLS key log {args.keylog} opens none of the capture's {n} (another capture's "
              f"key log?): the phones' TVS questions are taken as not in the capture{first}")


def undecrypted_warning(args: argparse.Namespace, tvs: TvsCapture) -> None:
    """Said once on stderr without a key log (none given, embedded or beside the capture — or one beside it
    that opens none of its connections, :func:`_unopened_keylog`; not after ``--no-keylog``, which asked
    for none) when the capture holds TLS connections other than the HTTPS config download's (said apart):
    TVS or CAPF, not decrypted, so every TVS question is taken as unanswered (was: nothing said,
    ``locked out: yes``)."""
    _unopened_keylog(args, tvs)
    unread = tvs.tls_connections - tvs.https.unread
    if args.keylog is not None or getattr(args, "no_keylog", False) or unread <= 0:  # (asked for none)
        return
    from phoneemu.words import counted

    say(args, f"warning: {counted(unread, 'TLS connection')} (TVS, CAPF) in the capture not decrypted: no "
              f"key log (--keylog FILE; none usable beside the capture as {keys_beside(args.capture)}): the "
              "phones' TVS questions are taken as unanswered, a lockout so decided is said to happen "
              f"{tvs_offline_said()}")


#: the options of ``--all`` alone: (flag, metavar, help, what one phone takes instead)
_ALL_OPTIONS = (
    ("--installed-config-dir", "DIR", "each phone holds its config from DIR (SEP<MAC>.cnf.xml.sgn or "
     ".cnf.xml, e.g. a copy of the cluster's TFTP root from before the capture): it names the TVS servers "
     "the phone asks", "--installed-config FILE"),
    ("--fleet-flash", "DIR", "phones' flashes, one per DIR/<MAC> (fleet boot --flash DIR): each phone "
     "holds its own installed files, profile and keys (phones without one: the options')", "--flash DIR"),
    ("--models", "FILE", "each phone's model, a line per phone: MAC (or SEP<MAC>) and model (cp-7962, "
     "'Cisco 7962'), comma-separated as a CUCM phone export's Device Name and Device Type columns; a "
     "model without a profile here keeps --profile, noted", "--profile NAME"),
    ("--export-flash", "DIR", "write each replayed phone's flash as its last boot left it to DIR/<MAC> "
     "(trust lists, config, keys; a new or empty folder), for predict --fleet-flash DIR NEW-FILES: what "
     "a planned change would do to every phone of the site", "boot --flash keeps its flash"),
    ("--json-file", "FILE", "write the JSON document (every phone's every boot) to FILE and print the "
     "summary as text", "--json"),
    ("--junit", "FILE", "write a JUnit XML report, a test case per phone (failed when a boot of it did "
     "not accept a configuration: which one and why; skipped, saying why, when it was not replayed)",
     "the exit status, or --json"),
)


def add_all_options(p: Any) -> None:
    """``--all`` and the options only it takes, as one group of ``replay --help``."""
    g = p.add_argument_group("every phone of the capture")
    g.add_argument("--all", action="store_true",
                   help="replay every phone of the capture (one pass over it): a line per phone, what their "
                   "last boots decided and the failures grouped by kind; --installed-itl (-ctl, -config) "
                   "hold for every phone")
    for flag, metavar, text, _one in _ALL_OPTIONS:
        g.add_argument(flag, type=Path, metavar=metavar, help=f"with --all: {text}")


def check_all_options(args: argparse.Namespace) -> None:
    """``--all`` replays every phone: not with one phone's options; the options of ``--all`` only with it."""
    if not args.all:
        for flag, _metavar, _text, one in _ALL_OPTIONS:
            if getattr(args, flag[2:].replace("-", "_")) is not None:
                raise PhoneEmuError(f"{flag} is for --all (one phone: {one})", path=flag[2:])
    if not args.all:
        return
    if args.installed_config_dir is not None:
        if args.installed_config is not None:
            raise PhoneEmuError("--installed-config-dir gives each phone its own config: not with "
                                "--installed-config", path="installed-config-dir")
        if not args.installed_config_dir.is_dir():
            raise PhoneEmuError(f"{args.installed_config_dir}: no such folder (phones' configs, "
                                "SEP<MAC>.cnf.xml.sgn or .cnf.xml)", path="installed-config-dir")
    for option, value in (("--mac", args.mac), ("--flash", args.flash), ("--list", args.list or None)):
        if value is not None:
            raise PhoneEmuError(f"{option} is for one phone: not with --all (every phone of the capture)",
                                path="all")
    _check_export(args.export_flash)
    if args.fleet_flash is not None:
        from phoneemu.commands._installed import refuse_file_as_flash

        refuse_file_as_flash(args.fleet_flash, "--fleet-flash", fleet=True)  # a file: said what it is
    if args.fleet_flash is not None and not args.fleet_flash.is_dir():
        raise PhoneEmuError(f"{args.fleet_flash}: no such folder (phones' flashes, one per <MAC>, as fleet "
                            "boot --flash keeps them)", path="fleet-flash")


def reports_of(args: argparse.Namespace) -> tuple[tuple[str, Path | None], ...]:
    """The report files of ``replay`` (``--all``'s), in the order they are written."""
    return (("--junit", args.junit), ("--json-file", args.json_file))


def check_reports(args: argparse.Namespace) -> None:
    """Refuse, before any work, a report (``--junit``, ``--json-file``) that could not be written, the two
    naming one file (was: the JSON written over the JUnit report, exit 0), and a report that would
    overwrite an input: the capture, a file given to an option, a file of ``--installed-config-dir`` or
    ``--flash``, or of a phone's flash in ``--fleet-flash``, and the key log beside the capture without
    ``--keylog`` (:func:`~phoneemu.commands._capture.keys_beside`) (was: ``replay CAP.pcap --all --junit
    CAP.pcap`` replaced the capture by the report, ``--json-file`` the ``--keylog`` its secrets). A new
    file, a FIFO or a device replaces no input."""
    from phoneemu.files import check_apart, check_writable, overwritten_input

    reports = reports_of(args)
    for option, path in reports:
        check_writable(path, option)
    check_apart(reports)
    read_beside = args.keylog is None and not getattr(args, "no_keylog", False)  # read without --keylog
    beside = keys_beside(args.capture) if read_beside else None
    files: list[tuple[str, Path | None]] = [
        ("the capture", args.capture), ("--keylog", args.keylog), ("--installed-itl", args.installed_itl),
        ("--installed-ctl", args.installed_ctl), ("--installed-config", args.installed_config),
        ("--installed-config-key", args.installed_config_key), ("--models", args.models),
        *(("--tvs-cert", p) for p in args.tvs_cert), *(("--image-signer", p) for p in args.image_signer),
        ("the key log beside the capture", beside)]  # last: an option naming it names it first
    folders = (("--installed-config-dir", args.installed_config_dir, 1), ("--flash", args.flash, 1),
               ("a phone's flash in --fleet-flash", args.fleet_flash, 2))
    for option, out in reports:
        clash = overwritten_input(out, files, folders) if out is not None else None
        if clash is not None:
            raise PhoneEmuError(f"{option} {out}: is {clash}: the report would overwrite it (give another "
                                "file)", path=option.lstrip("-"))


def _check_export(folder: Path | None) -> None:
    """``--export-flash``: a new folder, or an empty one (phones' flashes are never mixed or replaced)."""
    if folder is None:
        return
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise PhoneEmuError(f"{folder}: {'not empty' if folder.is_dir() else 'not a folder'} (--export-flash "
                            "writes into a new or empty folder: give another one)", path="export-flash")
    if not folder.parent.is_dir():
        raise PhoneEmuError(f"{folder}: no folder {folder.parent} to make it in", path="export-flash")


def _boot_record(r: ReplayResult) -> dict[str, Any]:
    from phoneemu.fleet.metrics import outcome_of

    rep = r.report
    d = rep.deciding
    out: dict[str, Any] = {"start": r.boot.start, "server": r.boot.server, "outcome": outcome_of(rep),
                           "rule": d.rule if d is not None else None, "config": rep.config,
                           "itl": rep.trust.get("ITL"), "ctl": rep.trust.get("CTL"), "tvs_used": rep.tvs_used,
                           # whose files (phone.lab_signers); a stand-in result without it: unknown
                           "signed_by_lab": getattr(r, "signed_by_lab", None),
                           "locked_out_tvs_offline": locked_out_tvs_offline(rep)}
    if r.not_captured:
        out["not_captured"] = list(r.not_captured)
    if rep.fetched_over:  # the config over HTTPS (spec §H.1), as boot --json says it
        out["fetched_over"] = dict(rep.fetched_over)
    if r.sip:
        out["sip"] = [c.as_dict() for c in r.sip]
    if not rep.ok and d is not None:
        out["reason"] = d.reason
        if d.reason_code is not None:
            out["reason_code"] = d.reason_code.value
        out["kind"] = d.kind
        if rep.held is not None:  # the lists it holds: they choose the ways out of a lockout (ways_group)
            out["held"] = rep.held.as_json()
        if d.signer:
            out["signer"] = d.signer
    return out


def phone_record(ph: PhoneReplay) -> dict[str, Any]:
    """A phone's record; its ``results`` are its boots' records already (``run_all`` has
    ``replay_fleet`` reduce each boot by :func:`_boot_record` as it is done)."""
    if ph.skipped is not None:
        return {"mac": ph.mac, "profile": ph.profile, "skipped": ph.skipped}
    boots: list[dict[str, Any]] = list(ph.results)
    return {"mac": ph.mac, "profile": ph.profile, "outcome": boots[-1]["outcome"], "rule": boots[-1]["rule"],
            "boots": boots, "notes": list(ph.notes)}


def boots_path(boots: list[dict[str, Any]]) -> str:
    """The outcomes a phone's boots went through, in capture order, a run of one outcome as one step
    (``ok -> locked-out -> ok``; more than :data:`PATH_SHOWN` steps cut in the middle)."""
    steps = [b["outcome"] for i, b in enumerate(boots) if i == 0 or b["outcome"] != boots[i - 1]["outcome"]]
    if len(steps) > PATH_SHOWN:
        return " -> ".join([*steps[:2], "...", steps[-1]]) + f" ({len(steps) - 1} changes)"
    return " -> ".join(steps)


class _Tally:
    """The summary of every phone's last boot, one phone's record at a time (:meth:`add`): what
    :func:`fleet_doc` says of a list of records, without keeping them. It holds counts, the alike kinds
    (:class:`~phoneemu.fleet.alike.Alike`: at most 50 kinds of 3 MACs each), the first MACs the exit
    status names and the first :data:`PHONES_LISTED` records (the text lists them when there are no
    more): memory does not grow with the phones."""

    def __init__(self) -> None:
        from phoneemu.fleet.alike import Alike

        self.phones = self.replayed = self.boots = 0
        self.by_outcome: Counter[str] = Counter()
        self.by_rule: Counter[str] = Counter()
        self.by_trust: Counter[str] = Counter()
        self.changed: Counter[str] = Counter()
        self.by_model: dict[str, Counter[str]] = {}
        self.failed = Alike(_failed_by())
        self.noted = Alike(("note",))
        self.partial = Alike(("not_captured",))
        self.skipped = Alike(("skipped",))
        #: the last boots that locked out, by (rule, kind, reason code and lists held where they choose the
        #: ways: ways_group)
        self.locked: Counter[WaysGroup] = Counter()
        self.sip_checked = self.calls_checked = self.sip_differing = 0
        self.sip_differs = Alike(("differs",))  # phones whose registrations went otherwise, by why
        # what the exit status names (_exit_why): phones with a boot that did not accept a configuration
        # (those ending ok apart), the first of each; phones not replayed, the first 5; phones with a
        # registration that differs, the first
        self.bad = self.ending_ok = 0
        self.first_bad: str | None = None
        self.first_ending_ok: str | None = None
        self.skipped_macs: list[str] = []
        self.differ_phones = 0
        self.first_differ: str | None = None
        self.listed: list[dict[str, Any]] = []  # the first PHONES_LISTED records
        #: whether every boot's files were a lab's (phone.lab_signers): false, no lab command in the ways out
        self.signed_by_lab: bool | None = None
        #: the servers the locked-out last boots went to, at most two (one names the lab's address in the
        #: placeholder legend, more do not: :func:`_legend_why`)
        self.locked_servers: list[str] = []
        #: every server the failed last boots went to: where their TVS would be their cluster's own
        #: (:func:`phoneemu.phone.ways_out.tvs_back_fill`, the summary's bringing TVS back)
        self.failed_servers: set[str] = set()
        #: the phones whose last boot locked out resting on the offline TVS (locked_out_tvs_offline)
        self.tvs_offline = 0

    def add(self, rec: dict[str, Any]) -> None:
        from phoneemu.fleet.metrics import FAILED_BY
        from phoneemu.phone.ways_out import HeldLists, ways_group

        self.phones += 1
        if len(self.listed) < PHONES_LISTED:
            self.listed.append(rec)
        mac = rec["mac"]
        boots: list[dict[str, Any]] = rec.get("boots", [])
        self.boots += len(boots)
        self._signers(boots)
        differs: dict[str, None] = {}  # a phone counted once for each way its registrations differ
        differ_at: int | None = None
        for i, boot in enumerate(boots):
            for check in boot.get("sip", ()):
                self.sip_checked += 1
                self.calls_checked += len(check.get("calls", ()))
                if check["differs"]:
                    self.sip_differing += 1
                    differs["; ".join(check["differs"])] = None
                    differ_at = i if differ_at is None else differ_at
        for text in differs:
            self.sip_differs.add(mac, {"differs": text})
        if differ_at is not None:
            self.differ_phones += 1
            if self.first_differ is None:
                self.first_differ = f"{mac}: boot {differ_at + 1} of {len(boots)}"
        for note in rec.get("notes", ()):
            self.noted.add(mac, {"note": note})
        if "skipped" in rec:
            self.by_outcome["skipped"] += 1
            self.skipped.add(mac, {"skipped": rec["skipped"]})
            if len(self.skipped_macs) < 5:
                self.skipped_macs.append(mac)
            return
        self.replayed += 1
        bad = next((i for i, b in enumerate(boots) if b["outcome"] != "ok"), None)
        last = boots[-1]
        if bad is not None:
            named = f"{mac}: boot {bad + 1} of {len(boots)} {boots[bad]['outcome']}, {boots[bad]['rule']}"
            self.bad += 1
            self.first_bad = self.first_bad or named
            if last["outcome"] == "ok":
                self.ending_ok += 1
                self.first_ending_ok = self.first_ending_ok or named
        self.by_outcome[last["outcome"]] += 1
        self.by_model.setdefault(rec["profile"], Counter())[last["outcome"]] += 1
        self.by_rule[last["rule"] or "(none)"] += 1
        for kind in ("ITL", "CTL"):
            if last[kind.lower()] is not None:
                self.by_trust[f"{kind} {last[kind.lower()]}"] += 1
        path = boots_path(boots)
        if " -> " in path:
            self.changed[path] += 1
        if last.get("not_captured"):
            self.partial.add(mac, {"not_captured": ", ".join(last["not_captured"])})
        if last["outcome"] == "locked-out":
            self.tvs_offline += bool(last.get("locked_out_tvs_offline"))  # absent in an older record
            self.locked[ways_group(str(last["rule"]), str(last.get("kind", "")), last.get("reason_code"),
                                   held=HeldLists.from_json(last.get("held")))] += 1
            server = last.get("server")
            if isinstance(server, str) and server not in self.locked_servers and len(self.locked_servers) < 2:
                self.locked_servers.append(server)
        if last["outcome"] != "ok":
            self.failed.add(mac, {**{f: last.get(f) for f in FAILED_BY}, "partial": _partial(last)})
            if isinstance(last.get("server"), str):
                self.failed_servers.add(last["server"])

    def _signers(self, boots: list[dict[str, Any]]) -> None:
        """Whose files the boots were served, into :attr:`signed_by_lab` (a record of an older phoneemu
        has no ``signed_by_lab``: unknown)."""
        from phoneemu.phone.lab_signers import joined

        for boot in boots:
            said = boot.get("signed_by_lab")
            self.signed_by_lab = joined(self.signed_by_lab, said if isinstance(said, bool) else None)

    def exit_why(self, uncounted: int = 0) -> str | None:
        """Why ``replay --all`` exits 1, in one line (None: it exits 0): a boot of a phone that did not
        accept a configuration — the first phone (MAC order) whose last boot did, when some did (the
        summary's failures are the last boots': it does not show those) —, phones not replayed (and
        ``uncounted`` downloads of phones not even counted), registrations that differ from the rules."""
        why: list[str] = []
        if self.bad:
            which = (f", {self.ending_ok} of them ending ok ({self.first_ending_ok})" if self.ending_ok
                     else f" (first {self.first_bad})")
            why.append("not every replayed boot accepted a configuration: "
                       f"{_count(self.bad, 'phone')}{which}")
        skipped = self.by_outcome["skipped"]
        if skipped:
            more = f" and {skipped - 5} more" if skipped > 5 else ""
            why.append(f"{_count(skipped, 'phone')} not replayed ({', '.join(self.skipped_macs)}{more})")
        if uncounted:
            why.append(f"{_count(uncounted, 'download')} of phones not counted (raise --max-memory)")
        if self.differ_phones:
            why.append("a SIP registration that differs from the rules on "
                       f"{_count(self.differ_phones, 'phone')} (first {self.first_differ})")
        return "; ".join(why) or None

    def doc(self, uncounted: int = 0) -> dict[str, Any]:
        """The summary (:func:`fleet_doc`'s keys but ``records``); ``uncounted``: downloads of phones
        beyond MAX_MACS not counted (the capture's ``phones_uncounted_downloads``)."""
        from phoneemu.phone.ways_out import ways_out_doc

        why = self.exit_why(uncounted)
        return {"phones": self.phones, "phones_replayed": self.replayed,
                "phones_not_replayed": self.phones - self.replayed, "boots": self.boots,
                "by_outcome": dict(self.by_outcome.most_common()),
                "locked_out_tvs_offline": self.tvs_offline,
                "by_rule": dict(self.by_rule.most_common()),
                "by_model": {m: dict(c.most_common()) for m, c in sorted(self.by_model.items())},
                "by_trust": dict(sorted(self.by_trust.items())), "changed": dict(self.changed.most_common()),
                "failure_kinds": self.failed.kinds(), "failure_kinds_not_kept": self.failed.other,
                "note_kinds": self.noted.kinds(), "partial_kinds": self.partial.kinds(),
                "skipped_kinds": self.skipped.kinds(), "ways_out": ways_out_doc(self.locked),
                "signed_by_lab": self.signed_by_lab,
                "sip_checked": self.sip_checked, "calls_checked": self.calls_checked,
                "sip_differ_kinds": self.sip_differs.kinds(), "sip_differing": self.sip_differing,
                "exit_status": 0 if why is None else 1, "exit_why": why}


def fleet_doc(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary of every phone's last boot (:class:`_Tally`), and each phone's record
    (``phone_record``); what changed across each phone's boots (:func:`boots_path`); the exit status and
    why it is 1 (``exit_why``). ``phones`` counts every record, ``phones_replayed`` those replayed
    (``phones_not_replayed``: ``by_outcome``'s ``skipped``)."""
    tally = _Tally()
    for rec in records:
        tally.add(rec)
    return {**tally.doc(), "records": records}


def _failed_by() -> tuple[str, ...]:
    """Failed last boots are alike when these agree: fleet boot's fields, and whether the capture held the
    whole boot (a boot it holds in part fails for want of files, not by the cluster's doing)."""
    from phoneemu.fleet.metrics import FAILED_BY

    return (*FAILED_BY, "partial")


def _partial(boot: dict[str, Any]) -> str | None:
    return "the capture holds this boot in part" if boot.get("not_captured") else None


def _failure_text(kind: dict[str, Any]) -> str:
    from phoneemu.fleet.metrics import failure_text

    return failure_text(kind) + (f" [{kind['partial']}]" if kind.get("partial") else "")


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _phone_line(rec: dict[str, Any]) -> str:
    if "skipped" in rec:
        return f"  {rec['mac']}  skipped: {rec['skipped']}"
    boots = rec["boots"]
    path = boots_path(boots)
    trust = ", ".join(f"{k} {boots[-1][k.lower()]}" for k in ("ITL", "CTL") if boots[-1][k.lower()])
    return (f"  {rec['mac']}  {_count(len(boots), 'boot')}  {path} "
            f"({boots[-1]['rule']}){'; ' + trust if trust else ''}")


def _group(kind: dict[str, Any], field: str) -> tuple[str, str, str]:
    """A group of alike phones as the summary words it: ``N phones``, its first MACs (``and M more``),
    and its ``field`` (a single phone's own MAC in place of ``{mac}``)."""
    n, macs = kind["count"], kind["macs"]
    more = f" and {n - len(macs)} more" if n > len(macs) else ""
    value = kind[field].replace("{mac}", macs[0]) if n == 1 else kind[field]
    return _count(n, "phone"), f"{', '.join(macs)}{more}", value


#: why a placeholder is left in ``replay --all``'s ways out (:func:`_legend_why`), else this
_LEFT_BY_REPLAY = "not known to replay"


def _legend_why(servers: list[str]) -> dict[str, str]:
    """Why each placeholder of the summary's ways out is left, by name (else :data:`_LEFT_BY_REPLAY`), in
    ``replay --mac``'s words: ``servers``, those the locked-out last boots went to (the lab serving the one
    named, when there is one)."""
    where = (f"the lab serving {servers[0]} in the capture" if len(servers) == 1
             else "the lab serving the address each locked-out phone's last boot went against")
    return {"DIR": f"{_LEFT_BY_REPLAY}: {where}", "NEW": f"{_LEFT_BY_REPLAY}: {where}",
            "OLD": f"{_LEFT_BY_REPLAY}: the cluster the phones came from",
            "FLEET": f"{_LEFT_BY_REPLAY}: no --fleet-flash or --export-flash names the phones' flashes"}


def _tvs_fill(doc: dict[str, Any], servers: set[str]) -> dict[str, str]:
    """Bringing TVS back in the summary's ways out: ``DIR`` (the lab serving the address the boots went
    against, said in the legend) only when the TVS the phones could not reach (their kinds of failure's
    reasons name it) is at one of ``servers``, those their last boots went to; else ``OLD``
    (:func:`phoneemu.phone.ways_out.tvs_back_fill`, as ``replay --mac`` and ``fleet boot`` decide it; was
    ``lab service DIR tvs start`` for a migration's phones, whose config names the TVS of the cluster they
    left)."""
    from phoneemu.phone.ways_out import tvs_back_fill

    decided = [(kind.get("rule"), kind.get("reason")) for kind in doc["failure_kinds"]]
    return tvs_back_fill(None, decided, hosts=servers)


def fleet_text(doc: dict[str, Any], head: str, fill: dict[str, str] | None = None,
               listed: list[dict[str, Any]] | None = None, servers: list[str] | None = None) -> str:
    """The summary as text; ``fill``: the ways out's lab placeholders that are known (``FLEET``; the
    capture's files not a lab's, :func:`phoneemu.phone.lab_signers.not_a_lab_fill`, no lab command);
    ``listed``: the records listed a line each when there are at most :data:`PHONES_LISTED` phones
    (default the document's ``records``); ``servers``: those the locked-out last boots went to, for the
    legend of the placeholders the ways out leave (:func:`_legend_why`; was: ``DIR``, ``OLD``, ``FLEET``
    bare, with no legend, where ``replay --mac`` and the other fleet summaries have one)."""
    from phoneemu.fleet.metrics import kind_lines, tally_lines
    from phoneemu.phone.ways_out import placeholder_lines, ways_out_text

    lines = [head]
    if "downloads" in doc:
        lines.append(_downloads_line(doc))
    if doc["phones"] <= PHONES_LISTED:
        lines += [_phone_line(rec) for rec in (doc["records"] if listed is None else listed)]
    lines += tally_lines(doc, outcome_head="each phone's last boot", which=" (last boot)")
    if doc["changed"]:
        lines.append("changed across the capture's boots: "
                     + ", ".join(f"{k} {v}" for k, v in doc["changed"].items()))
    for lead, field in (("note for", "note"), ("not replayed:", "skipped")):
        for kind in doc[f"{field}_kinds"]:
            phones, macs, text = _group(kind, field)
            lines.append(f"{lead} {phones} ({macs}): {text}")
    for kind in doc["partial_kinds"]:
        phones, macs, names = _group(kind, "not_captured")
        lines.append(f"held in part: the last boot of {phones} asked for {names}, whose request or whole "
                     f"answer is not in that boot of the capture (it ends during the boot?) ({macs})")
    failed = sum(k["count"] for k in doc["failure_kinds"]) + doc["failure_kinds_not_kept"]
    lines += kind_lines(doc["failure_kinds"], "failed", _failure_text, failed, every_record="--json")
    lines += _tvs_offline_lines(doc)
    if doc["sip_checked"]:
        differ = doc.get("sip_differing", 0)  # registrations (the kinds count phones)
        calls = doc.get("calls_checked", 0)
        also = f", {_count(calls, 'call')} and their media (G.14)" if calls else ""
        lines.append(f"SIP: {_count(doc['sip_checked'], 'registration')} checked against the rules (G.9, "
                     f"G.5){also}, {differ} differ" + ("" if differ else " (as the rules say)"))
        for kind in doc["sip_differ_kinds"]:
            phones, macs, text = _group(kind, "differs")
            lines.append(f"  SIP differs for {phones} ({macs}): {text}")
    lines += ways_out_text(doc["ways_out"], fill)
    lines += placeholder_lines(doc["ways_out"], fill or {}, _legend_why(servers or []), _LEFT_BY_REPLAY)
    ok = doc["by_outcome"].get("ok", 0)
    lines.append(f"result: {ok} of {_count(doc['phones'], 'phone')} ended with a configuration accepted")
    if doc["exit_why"] is not None:
        lines.append(f"exit status 1: {doc['exit_why']}")
    return "\n".join(lines)


def _tvs_offline_lines(doc: dict[str, Any]) -> list[str]:
    """The summary's line of the phones whose last boot locked out resting on the offline TVS
    (``locked_out_tvs_offline``): they lock out *if their TVS cannot be reached* (:func:`tvs_offline_said`);
    none without such a phone (a document of an older phoneemu has no count)."""
    offline = doc.get("locked_out_tvs_offline", 0)
    if not offline:
        return []
    locked = doc["by_outcome"].get("locked-out", 0)
    return [f"locked out {_IF_UNREACHED.format(whose='their')}: {offline} of the {_count(locked, 'phone')} "
            f"locked out ({TVS_OFFLINE_ASK})"]


def _downloads_line(doc: dict[str, Any]) -> str:
    """The capture's downloads, every one counted: kept for the replay, or why not."""
    seen, kept = doc["downloads"], doc["downloads_kept"]
    line = f"downloads: {seen} in the capture, " + ("all kept" if kept == seen else f"{kept} kept")
    not_kept = doc["downloads_not_kept"]
    if not_kept["budget"]:
        line += f", {not_kept['budget']} not kept (half of --max-memory was full)"
    if not_kept["beyond_max_macs"]:
        line += f", {not_kept['beyond_max_macs']} of phones beyond the first {doc['max_macs']} (not replayed)"
    if doc.get("phones_uncounted_downloads"):
        line += (f" ({doc['phones_uncounted_downloads']} of them of phones not counted: half of --max-memory "
                 "was full; there are more phones than counted)")
    return line


def installed_files(args: argparse.Namespace) -> tuple[tuple[str, Path | None], ...]:
    """The ``--installed-*`` files, by kind."""
    return (("CTL", args.installed_ctl), ("ITL", args.installed_itl), ("config", args.installed_config))


def offline_words(args: argparse.Namespace, tvs_capture: TvsCapture) -> tuple[str, str]:
    """What the replayed phones hold before the capture, and what the offline TVS does."""
    held = [f"{k} {p}" for k, p in installed_files(args) if p is not None]
    if getattr(args, "installed_config_dir", None) is not None:
        held.append(f"each its config from {args.installed_config_dir}")
    holding = ", ".join(held) or "nothing (out of the box)"
    if getattr(args, "fleet_flash", None) is not None:
        holding = f"each its flash in {args.fleet_flash} (phones without one: {holding})"
    tvs = "answers for given certificates" if args.tvs_cert else "unavailable"
    if args.keylog is not None:
        tvs = (f"answers from the capture ({_count(tvs_capture.decrypted, 'exchange')} decrypted"
               f"{', else for given certificates' if args.tvs_cert else ''})")
    return holding, tvs


def _junit_failure(rec: dict[str, Any], fill: Mapping[str, str] | None = None,
                   flashes: Path | None = None) -> tuple[str, str] | None:
    """A phone's JUnit failure (message, body): its first boot that did not accept a configuration, else
    its first captured registration that differs from the rules; the body ends with the ways out of its
    last boot when it locked out (:func:`_junit_ways_out`; ``fill``, ``flashes``: the summary's)."""
    boots = rec["boots"]
    bad = next((i for i, b in enumerate(boots) if b["outcome"] != "ok"), None)
    if bad is None:
        differ = next(((i, c) for i, b in enumerate(boots) for c in b.get("sip", ()) if c["differs"]), None)
        if differ is None:
            return None
        i, check = differ
        return (f"boot {i + 1} of {len(boots)}: SIP to {check['server']} over {check['transport']} differs "
                f"from the rules: {'; '.join(check['differs'])}",
                "\n".join(_boot_line(j, x) for j, x in enumerate(boots)))
    b = boots[bad]
    message = f"boot {bad + 1} of {len(boots)}: {b['outcome']} ({b['rule']})"
    message += f": {b['reason']}" if b.get("reason") else ""
    message += f" [{_partial(b)}]" if _partial(b) else ""
    body = [_boot_line(i, x) for i, x in enumerate(boots)]
    if b.get("locked_out_tvs_offline"):  # as the text says it (tvs_offline_said)
        body.insert(0, f"locked out {tvs_offline_said()}")
    ways = _junit_ways_out(rec, fill or {}, flashes, said=bad)
    return message, "\n".join([*body, *rec.get("notes", ()), *ways])


#: why a phone's flash is left in its JUnit case's ways out (:func:`_junit_ways_out`)
_NO_FLASH = f"{_LEFT_BY_REPLAY}: no --fleet-flash or --export-flash folder holds the phone's flash"
#: why the refused file is left, as ``replay --mac`` says it
_FILE_NOT_KEPT = ("not kept by replay: the file the capture holds under the name its deciding line gives "
                  "(Wireshark's Export Objects gives it)")


def _junit_ways_out(rec: dict[str, Any], fill: Mapping[str, str], flashes: Path | None, *,
                    said: int) -> list[str]:
    """The ways out in a phone's JUnit failure body (README: every JUnit failure of a lockout; was none):
    those the summary gives its group — of its last boot, when that locked out (a phone whose boots
    ended ok needs none) —, in one phone's commands, as ``replay --mac`` says them: ``fill`` the
    summary's (no lab command for a real cluster's files), its MAC, its flash in ``flashes``
    (``--export-flash``, else ``--fleet-flash``), bringing TVS back for ``DIR`` only when its TVS is at
    the address it booted against (:func:`phoneemu.phone.ways_out.tvs_back_fill`); then the legend of
    the placeholders left. Headed with the boot when the message names another (``said``, its index)."""
    from phoneemu.fleet.junit import ways_out_lines
    from phoneemu.phone.ways_out import HeldLists, tvs_back_fill

    boots = rec["boots"]
    last = boots[-1]
    if last["outcome"] != "locked-out":
        return []
    mac, rule, server = rec["mac"], str(last["rule"]), last.get("server")
    flash = flashes / mac if flashes is not None else None
    hosts = [server] if isinstance(server, str) else []
    known = {**fill, "MAC": mac, **({"FLASH": str(flash)} if flash is not None and flash.is_dir() else {}),
             **tvs_back_fill(None, [(rule, last.get("reason"))], hosts=hosts)}
    why = {**_legend_why(hosts), "FLASH": _NO_FLASH, "FILE": _FILE_NOT_KEPT}
    head = [] if said == len(boots) - 1 else [f"ways out of boot {len(boots)} of {len(boots)}, its last "
                                               f"({last['outcome']}, {rule}):"]
    held = HeldLists.from_json(last.get("held"))
    return [*head, *ways_out_lines(rule, str(last.get("kind", "")), known, why=why, otherwise=_LEFT_BY_REPLAY,
                                   reason_code=last.get("reason_code"), held=held)]


def _boot_line(i: int, b: dict[str, Any]) -> str:
    missing = f"; not captured: {', '.join(b['not_captured'])}" if b.get("not_captured") else ""
    https = " over HTTPS" if "https" in b.get("fetched_over", {}).values() else ""  # spec §H.1, as boot says
    return (f"boot {i + 1} against {b['server']}: {b['outcome']} ({b['rule']}); ITL {b['itl']}, "
            f"CTL {b['ctl']}, config {b['config']}{https}{missing}")


def write_junit(records: Iterable[dict[str, Any]], capture: Path, path: Path,
                fill: Mapping[str, str] | None = None, flashes: Path | None = None) -> None:
    """JUnit XML through :func:`phoneemu.fleet.junit.write_cases`: a case per phone, failed when a boot
    of it did not accept a configuration (the exit status's rule) or a registration differs from the
    rules, a lockout's ways out at the end (:func:`_junit_failure`: ``fill`` and ``flashes`` the summary's),
    skipped with the reason when not replayed; written as ``records`` gives them, one at a time
    (100,000 phones' cases are not held)."""
    from phoneemu.fleet.junit import Case, write_cases

    def case(rec: dict[str, Any]) -> Case:
        if "skipped" in rec:
            return Case(rec["mac"], skipped=f"not replayed: {rec['skipped']}")
        return Case(rec["mac"], failure=_junit_failure(rec, fill, flashes))
    write_cases(path, suites="phoneemu replay", suite=f"replay {capture.name}", file=str(capture),
                cases=(case(rec) for rec in records))


class _RecordSpool:
    """Every phone's record as soon as it is done (``replay_fleet(each=...)``): tallied
    (:class:`_Tally`) and spooled, a JSON line each (:class:`~phoneemu.spool.JsonLines`: an unnamed 0600
    temporary file, made here, before the replay starts), read back a record at a time for the JSON
    document and the JUnit report. Memory holds the tally and one record."""

    def __init__(self) -> None:
        self._lines = JsonLines("phoneemu-replay-records-")
        self._lines.open()
        self.tally = _Tally()

    def add(self, rec: dict[str, Any]) -> None:
        self._lines.append([rec])
        self.tally.add(rec)

    def records(self) -> Iterator[dict[str, Any]]:
        """The records in the order they came (MAC order)."""
        return iter(self._lines)

    def close(self) -> None:
        self._lines.close()


def _size_mib(path: Path) -> int:
    """The capture's size in MiB (0: not a regular file, e.g. a pipe, or less than 1 MiB)."""
    try:
        return path.stat().st_size >> 20 if path.is_file() else 0
    except OSError:
        return 0


def run_all(args: argparse.Namespace, *, secrets: KeyLog | None, limits: Limits | None, installed: Any,
            **options: Any) -> int:
    """Scan once, replay every phone, print the summary (``--json``: the document); the exit status
    as for one phone: 0 when every replayed boot of every phone accepted a configuration and no captured
    registration differs from the rules. Every phone and download of the capture is counted, replayed
    or not (``phones``/``phones_replayed``, ``downloads``/``downloads_kept``/``downloads_not_kept``).
    Memory: the phones' records go to a :class:`_RecordSpool` as they are done (the tally and one
    record in memory); the JSON document and the JUnit report are written from it a record at a time."""
    from phoneemu.scenario.replay_fleet import replay_fleet, scan_fleet

    models = None
    if args.models is not None:
        from phoneemu.scenario.phone_models import read_phone_models

        models = read_phone_models(args.models, default=args.profile or "cp-8861")
    shown = progress_line("read MiB")
    size = _size_mib(args.capture)
    capture = scan_fleet(args.capture, secrets=secrets, limits=limits,
                         progress=(lambda at: shown(at >> 20, size)) if shown is not None and size else None)
    if shown is not None and size:
        shown(size, size)
    try:
        spool = _RecordSpool()
    except BaseException:  # (no temporary file: TMPDIR full or not writable) the capture's spool is closed
        capture.close()
        raise
    try:
        try:
            for text in capture.warnings:
                say(args, f"warning: {text}")
            undecrypted_warning(args, capture.tvs)
            if not capture.macs() and not capture.not_kept and not capture.beyond:
                raise PhoneEmuError(f"{args.capture}: no phone's download in the capture ({capture.packets} "
                                    "packet(s); a phone's own names carry its MAC: CTLSEP<MAC>.tlv, "
                                    "SEP<MAC>.cnf.xml...)", path="capture")
            asyncio_run(replay_fleet(capture, reduce=phone_record, profile=args.profile or "cp-8861",
                                     installed=installed, config_dir=args.installed_config_dir,
                                     fleet_flash=args.fleet_flash, export_flash=args.export_flash,
                                     models=models, use_keylog=args.keylog is not None, boot=_boot_record,
                                     progress=progress_line("replayed"), each=spool.add, **options))
        finally:
            capture.close()
        return _report(args, capture, spool, models is not None)
    finally:
        spool.close()


def _report(args: argparse.Namespace, capture: Any, spool: _RecordSpool, with_models: bool) -> int:
    """``run_all``'s outputs from the tallied and spooled records; the exit status."""
    from phoneemu.phone.lab_signers import not_a_lab_fill
    from phoneemu.phone.ways_out import ways_doc_said

    tally = spool.tally
    doc = tally.doc(capture.phones_uncounted_downloads)
    # its ways out name the cluster the text's do (bringing TVS back: OLD's where it is not DIR's)
    doc["ways_out"] = ways_doc_said(doc["ways_out"], _tvs_fill(doc, tally.failed_servers))
    downloads = {"downloads": capture.downloads_seen, "downloads_kept": capture.downloads,
                 "downloads_not_kept": capture.downloads_not_kept,
                 "phones_uncounted_downloads": capture.phones_uncounted_downloads,
                 "max_macs": capture.max_macs}
    written: set[str] = getattr(args, "reports_written", set())  # this run's: never removed (replay)
    # the phones' flashes a way out done phone by phone is for: as the capture leaves them, else
    # as they were before it; a real cluster's files: no lab command
    flashes = args.export_flash or args.fleet_flash
    not_a_lab = not_a_lab_fill(doc["signed_by_lab"], str(args.capture))
    if args.junit is not None:
        write_junit(spool.records(), args.capture, args.junit, not_a_lab, flashes)
        written.add("--junit")
    holding, tvs = offline_words(args, capture.tvs)
    profile = args.profile or "cp-8861"
    if args.json or args.json_file is not None:
        given = {name: str(getattr(args, name)) if getattr(args, name) is not None else None
                 for name in ("fleet_flash", "export_flash", "installed_config_dir", "models")}
        whole = {"capture": str(args.capture), "profile": profile, **given,
                 "installed": {k.lower(): None if p is None else str(p) for k, p in installed_files(args)},
                 "offline": {"tvs": tvs, "capf": "unavailable"}, "packets": capture.packets, **downloads,
                 "warnings": list(capture.warnings), **doc}
        if args.json_file is not None:
            write_output_text(args.json_file,
                              json_doc.dumps_pieces(whole, "records", spool.records(), indent=1))
            written.add("--json-file")
    if args.json:
        for piece in json_doc.dumps_pieces(whole, "records", spool.records(), indent=2):
            sys.stdout.write(piece)
    else:
        phones = _count(doc["phones"], "phone")
        if doc["phones_replayed"] < doc["phones"]:
            phones = f"{doc['phones_replayed']} of the capture's {phones}"
        counts = f"{phones} ({_count(doc['boots'], 'boot')})"
        if with_models:
            profile = f"{profile}, or each phone's model from {args.models}"
        fill = {**({"FLEET": str(flashes)} if flashes is not None else {}), **not_a_lab,
                **_tvs_fill(doc, tally.failed_servers)}
        print(fleet_text({**doc, **downloads},
                         printable(f"replay of {counts} from {args.capture} (profile {profile}; "
                                   f"holding {holding}; offline TVS: {tvs}; CAPF unavailable)"),
                         fill, listed=tally.listed, servers=tally.locked_servers))
        if args.export_flash is not None:
            print(f"flashes of {_count(tally.replayed, 'phone')} written to {args.export_flash}/<MAC> "
                  f"(phoneemu predict --fleet-flash {args.export_flash} NEW-FILES: what new files would do "
                  "to each)")
    status: int = doc["exit_status"]
    return status
