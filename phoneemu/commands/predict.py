"""``phoneemu predict``: would a phone holding these trust lists accept these new files? (spec §G)

A migration, certificate regeneration or rollback checked from files, before thousands of real
phones try it: a phone given the installed ITL (and CTL) boots once, offline, on the new files,
with the same boot code and §G rules as every emulated phone, and prints every decision and the
one that decided. Exit 0 when the phone ends with a configuration it accepted, 1 otherwise.
A phone that registers over TLS also gets a forecast of its next registration before a reset and
after the boot (spec G.9, G.5): a regenerated CallManager certificate it refuses until it resets.

With --fleet-flash DIR every emulated phone's flash DIR/<MAC> (as fleet boot --flash keeps them) is
predicted the same way, each on its own installed lists and config, and a summary counts the phones
accepted / locked out / failed (not locked out, e.g. no config for it) by deciding rule. A note every
phone has (e.g. --tvs-cert unused by all) is said once for the run (JSON "notes"); a note only some
have stays in their records ("notes" of each phone) and is counted by text ("phone_notes"). Exit 0
when no phone would lock out, 1 when some would, 2 on bad input.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phoneemu import json_doc
from phoneemu.commands._argtypes import mac_option, positive_float
from phoneemu.commands._installed import (
    add_installed_options,
    fill_from_flash,
    installed_config_key,
    refuse_file_as_flash,
)
from phoneemu.commands._progress import progress_line
from phoneemu.commands.boot import add_offline_phone_options, offline_boot_lines, pem_certificates, tvs_roles
from phoneemu.errors import PhoneEmuError
from phoneemu.files import write_output
from phoneemu.formats._tlv import printable
from phoneemu.words import counted

if TYPE_CHECKING:  # the prediction and what it reports with are imported where it runs (start-up time)
    from phoneemu.phone.boot import BootReport
    from phoneemu.phone.ways_out import HeldLists, WaysGroup
    from phoneemu.scenario.predict import FleetPhone, PredictResult
    from phoneemu.scenario.predict_live_tvs import LiveTvs

__all__ = ["register"]

_EPILOG = """\
examples:
  # phones of cluster A moved to cluster B: will they take B's ITL? (tftp get ITLFile.tlv from each)
  phoneemu predict --installed-itl a/ITLFile.tlv b/ITLFile.tlv b/SEP001122334455.cnf.xml.sgn
  # the same with a copy of B's whole TFTP root
  phoneemu predict --installed-itl a/ITLFile.tlv --mac 001122334455 b-tftp/
  # the same, if A's TVS knows B's ITLRecovery certificate (as after a bulk certificate export);
  # the phone's current config names the TVS it asks
  phoneemu predict --installed-itl a/ITLFile.tlv --installed-config a/SEP001122334455.cnf.xml.sgn \\
      --tvs-cert b/ITLRecovery.pem b/ITLFile.tlv b/SEP001122334455.cnf.xml.sgn
  # the phone's current config is encrypted: decrypt it with the phone's key
  phoneemu predict --installed-itl a/ITLFile.tlv --installed-config a/SEP001122334455.cnf.xml.enc.sgn \\
      --installed-config-key phone.key --tvs-cert b/ITLRecovery.pem \\
      b/ITLFile.tlv b/SEP001122334455.cnf.xml.sgn
  # an emulated phone (boot --flash ph1) against the TFTP root of the change, old TVS reachable
  phoneemu predict --flash ph1 --tvs-reachable new-tftp/
  # every emulated phone of a fleet (fleet boot --flash fleet/): how many lock out? exit 1 if any
  phoneemu predict --fleet-flash fleet --tvs-reachable --json-file fleet-predict.json new-tftp/
  # the same, asking the TVS servers the phones' configs name, over the network (does cluster A's TVS
  # know B's ITLRecovery after the bulk certificate export?)
  phoneemu predict --fleet-flash fleet --tvs-live b-tftp/
  # the same in CI: a JUnit test case per phone, failed when it would lock out
  phoneemu predict --fleet-flash fleet --tvs-live --junit predict.xml b-tftp/
  # a real site's phones (a CUCM phone export), from the old cluster's files alone
  phoneemu predict --models phones.csv --installed-itl old/ITLFile.tlv --installed-config-dir old/ \\
      --tvs-live new/
  # TVS and ITLRecovery regenerated while phones were off (new = the TFTP root after the change)
  phoneemu predict --installed-itl old/ITLFile.tlv --installed-config old/SEP001122334455.cnf.xml.sgn \\
      --tvs-cert new/ITLRecovery.pem --mac 001122334455 new/
  # a cp-7962 in mixed mode, a given date, JSON for CI
  phoneemu predict --installed-ctl CTLFile.tlv --installed-itl ITLFile.tlv --profile cp-7962 \\
      --now 1893456000 --json new/CTLFile.tlv new/ITLFile.tlv

Each new file is served under its own name; CTLFile.tlv/ITLFile.tlv also answer the phone's
CTLSEP<MAC>.tlv/ITLSEP<MAC>.tlv requests. The MAC is --mac, else the one in a SEP<MAC>... file
name. TVS needs the installed config (the phone asks the TVS servers it names; an encrypted
.cnf.xml.enc.sgn is read with --installed-config-key, the phone's LSC or MIC key); it then answers
offline: vouches for --tvs-cert certificates, "not found" for others, and is unreachable when no
--tvs-cert is given (--tvs-reachable: it answers "not found" to everything, as the old cluster's TVS
does before a bulk certificate export; --tvs-live: the servers are asked over the network, a QUERY
each, read only). The servers are tried in the config's priority order; when none answers, the
deciding reason names each (HOST:PORT) and why, in the boot's words: "(no TVS server answered:
10.0.0.5:2445: TVS unavailable offline ...)". A --tvs-cert the phone cannot use is reported as a "note:"
line. CAPF is unreachable. A --flash (--fleet-flash) phone also holds that flash's MIC, LSC and
manual key (read, never changed), so it decrypts a new encrypted config as that phone would
(spec §G.12); a damaged one is a "note:" line and not used.

Before it asks, the phone checks the TVS server's own certificate against its installed ITL's TVS
records (spec §E.1). When the new ITL names the TVS at the address the phone asks, with the same
subject and a new certificate (TVS regenerated), the phone refuses it (G.3.4-tvs-server-untrusted)
and a "note:" line says so; --tvs-server-cert PEM gives the certificate the TVS presents instead.
A --tvs-cert with the subject of the installed ITL's TVS record is taken as that TVS's certificate now
(a TVS behind a rollback ITL, whose TVS records are blanked). When the new ITL names no TVS certificate
at all and none of these tells, the TVS is assumed trusted and a "note:" line says so (also in --json
"notes" and the --junit case).
"""


def register(sub: Any) -> None:
    from phoneemu.scenario.bounds import MAX_FLEET  # the bound --fleet-flash's help gives

    p = sub.add_parser("predict", help="will a phone holding these trust lists accept these new files?",
                       description=__doc__, epilog=_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", type=Path, metavar="NEW_FILE",
                   help="the files the phone downloads (CTLFile.tlv, ITLFile.tlv, SEP<MAC>.cnf.xml.sgn ...), "
                   "or folders holding them (a copy of the cluster's TFTP root)")
    add_installed_options(p, when="now")
    p.add_argument("--fleet-flash", type=Path, metavar="DIR",
                   help="many emulated phones' flashes, one per DIR/<MAC> (fleet boot --flash DIR): predict "
                   f"each (at most {MAX_FLEET}) and print how many are accepted or lock out, by deciding "
                   "rule; per-phone files (SEP<MAC>.cnf.xml.sgn) are picked by MAC; --profile overrides each "
                   "phone's. Exit 0 when no phone "
                   "would lock out, 1 when some would, 2 on bad input")
    p.add_argument("--models", type=Path, metavar="FILE",
                   help="a site's real phones, predicted from files (no emulated flash needed): each phone a "
                   "CUCM phone export lists (Device Name, Device Type: as fleet boot --models reads it) as "
                   "its model, all holding --installed-itl/--installed-ctl (the old cluster's, as tftp get "
                   "gives them) and each its own config from --installed-config-dir; summarised as with "
                   "--fleet-flash (exit 0 when no phone would lock out, 1 when some would)")
    p.add_argument("--installed-config-dir", type=Path, metavar="DIR",
                   help="--models: each phone's config now, DIR/SEP<MAC>.cnf.xml.sgn (else .cnf.xml; the old "
                   "cluster's TFTP folder): it names the phone's TVS servers; a phone without one holds none")
    p.add_argument("--mac", type=mac_option,
                   help="the phone's MAC (default: from a SEP<MAC> file name, else 001122334455)")
    add_offline_phone_options(p, now_help="the phone's clock, Unix seconds (default: now)",
                              profile_help="phone model profile (default: the --flash phone's, else cp-8861)")
    p.set_defaults(profile=None)  # cp-8861, or the --flash phone's
    p.add_argument("--tvs-reachable", action="store_true",
                   help="the TVS servers answer even without --tvs-cert (then they know none of the new "
                   "certificates: the old cluster's TVS before a bulk certificate export, spec §G.6 problem "
                   "3); default without --tvs-cert: unreachable (problem 2)")
    p.add_argument("--callmanager-cert", type=Path, action="append", default=[], metavar="PEM",
                   help="a certificate the cluster's CallManagers present for SIP over TLS (repeatable; "
                   "default: the CCM records of the CTL the phone holds after the boot): the forecast "
                   "of its next registration before a reset and after the boot (spec G.9, G.5)")
    p.add_argument("--tvs-server-cert", type=Path, action="append", default=[], metavar="PEM",
                   help="the certificate the TVS servers of the installed config present (repeatable; e.g. "
                   "the old cluster's TVS certificate after it was regenerated): the phone talks to a TVS "
                   "only if it matches a TVS record of the installed ITL (spec §E.1). Default: for a TVS "
                   "at an address the new ITL names, that ITL's TVS record of the same subject; else a "
                   "--tvs-cert with the subject of the installed ITL's TVS record (behind a rollback ITL, "
                   "whose TVS records are blank); else one the phone trusts (when the new ITL has no TVS "
                   "certificate at all, a note says this was assumed)")
    p.add_argument("--tvs-live", action="store_true",
                   help="ask the TVS servers each installed config names, over the network, as the phone "
                   "would (a QUERY: read only; each server checked against the installed ITL; one connection "
                   "per server and question for a whole fleet): e.g. does cluster A's TVS know B's "
                   "ITLRecovery after the bulk certificate export? Not with --tvs-cert, --tvs-reachable or "
                   "--tvs-server-cert")
    p.add_argument("--tvs-timeout", type=positive_float, default=5.0, metavar="S",
                   help="--tvs-live: seconds for each TVS connection and exchange (default 5)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--json-file", type=Path, metavar="FILE",
                   help="write the JSON result to FILE (with --fleet-flash: the summary, the notes every "
                   "phone has once as \"notes\", and every phone's prediction with its own notes; a "
                   "locked-out phone's \"ways_out_ref\" is the index of its group in \"ways_out\")")
    p.add_argument("--junit", type=Path, metavar="FILE",
                   help="write a JUnit XML report for CI: a test case per phone (with --fleet-flash each "
                   "predicted phone, an entry not predicted skipped with why), failed when the phone would "
                   "not end with a configuration it accepted (locked out, or failed: the message says "
                   "which, its rule and reason); an accepted case carries its notes as its system-out, the "
                   "notes every --fleet-flash phone has are the suite's")
    p.set_defaults(handler=handler)


def _junit_case(mac: str, result: str, deciding: dict[str, Any] | None, body: dict[str, Any],
                files_fill: dict[str, str] | None = None, *, held: HeldLists | None = None,
                installed_fill: dict[str, str] | None = None, flash_option: str | None = None,
                knows_nothing: bool = False) -> Any:
    """A phone's JUnit case (:mod:`phoneemu.fleet.junit`): failed unless its outcome is accepted; an
    accepted one carries its notes (``body["notes"]``: e.g. a TVS assumed trusted) as its system-out.
    ``files_fill``: :func:`_files_fill` of the new files (no lab command, or the lab serving them);
    ``installed_fill``: :func:`_installed_fill` (``OLD``, one phone's). The failure text's fields read as
    ``fleet boot --junit``'s (:func:`phoneemu.fleet.junit.field_lines`: ``yes``/``no``, ``installed: ctl none,
    itl ...``; was ``True``, ``{"ctl": null, ...}``, ``["..."]``). A locked-out case's failure text
    ends with the legend of the placeholders its ways out leave, as the terminal says it
    (:func:`_placeholder_legend`; was: ``OLD``, ``FLASH`` ... bare in the CI report).
    ``held``: the lists the phone holds after the predicted boot, which choose its ways out (as its JSON
    and its group of the summary; was: read from its flash as it was before, or the table's).
    ``flash_option``: the option whose flash the installed files are (:func:`_leaves`). ``knows_nothing``: the
    verdict rests on ``--tvs-reachable``'s TVS that knows nothing (its note, said in the failure text too:
    :data:`~phoneemu.scenario.predict.TVS_KNOWS_NOTHING`)."""
    from phoneemu.fleet.junit import Case, field_lines
    from phoneemu.phone.ways_out import (
        legend_lines,
        no_way_out_lines,
        phone_placeholders_left,
        tvs_back_fill,
        way_out_lines,
    )
    from phoneemu.scenario.predict import (
        NO_CONFIG_GIVEN,
        TVS_KNOWS_NOTHING,
        TVS_OFFLINE_ASK,
        rests_on_no_config,
    )

    if result == "accepted":
        notes = body.get("notes") or []
        return Case(mac, output="\n".join(f"note: {n}" for n in notes) if notes else None)
    rule = deciding["rule"] if deciding else "(none)"
    reason = "" if not deciding or not deciding.get("reason") else \
        f": {deciding['file'] + ': ' if deciding.get('file') else ''}{deciding['reason']}"
    lines = field_lines(body)  # values as a CI reader reads them, as fleet boot's (was JSON and True)
    if result == "locked out" and _rests_on_offline_tvs({"deciding": deciding}):  # as the result line
        lines.append(f"locked out if its TVS cannot be reached ({TVS_OFFLINE_ASK})")
    if result == "locked out" and rests_on_no_config({**body, "deciding": deciding}):  # as the result line
        lines.append(f"locked out only because no config was given for it ({NO_CONFIG_GIVEN})")
    if knows_nothing:  # the note, in the failure text (an accepted case's notes are its system-out)
        lines.append(f"note: {TVS_KNOWS_NOTHING}")
    if result == "locked out" and deciding:  # the ways out name the phone's flash when it is known
        fill = {**({"FLASH": str(body["flash"])} if body.get("flash") else {}), "MAC": mac,
                **(files_fill or {}), **(installed_fill or {})}
        fill |= tvs_back_fill(fill.get("DIR"), [(rule, deciding.get("reason"))])  # TVS back: the lab's own?
        kind = str(deciding.get("kind", ""))
        code = deciding.get("reason_code")
        lines += way_out_lines(rule, kind, indent="", fill=fill, reason_code=code, held=held)
        lines += no_way_out_lines(rule, kind, indent="")  # or why there is none (ways_out.NO_WAY_OUT)
        # what each placeholder left stands for, as the terminal's legend (a --models phone: no flash)
        why = {**_leaves(flash_option), **({"FLASH": _NO_FLASHES} if "listed" in body else {})}
        left = phone_placeholders_left(rule, kind, fill, reason_code=code, held=held)
        lines += legend_lines(left, why, _LEFT_BY_PREDICT)
    return Case(mac, failure=(f"{result} ({rule}){reason}", "\n".join(lines)))


def _write_outputs(args: argparse.Namespace, doc: dict[str, Any], junit: Callable[[], None], *,
                   as_json: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> list[str]:
    """``--json-file`` and ``--junit``, each tried: one that cannot be written (a full disk) is said naming
    its option and file (what is returned), and the other is still written. ``as_json``: ``doc`` as its JSON
    writes it (:func:`_outcomes_named`), where that is another view."""
    def json_file() -> None:
        shown = as_json(doc) if as_json is not None else doc
        write_output(args.json_file, (json_doc.dumps(shown, indent=1) + "\n").encode("utf-8"))

    unwritten: list[str] = []
    writes: tuple[tuple[str, Path | None, Callable[[], None]], ...] = (
        ("--json-file", args.json_file, json_file), ("--junit", args.junit, junit))
    for option, path, write in writes:
        if path is not None:
            try:
                write()
            except OSError as exc:
                unwritten.append(f"{option} {path}: not written: {exc.strerror or exc}")
            else:  # this run's: never removed as an earlier one (handler)
                written: set[str] = getattr(args, "reports_written", set())
                written.add(option)
    return unwritten


def _said_unwritten(unwritten: list[str]) -> None:
    """After the result is printed: the reports not written are an error (exit 2)."""
    if unwritten:
        raise PhoneEmuError("; ".join(unwritten) + " (the result above is the prediction's)", path="output")


def _write_junit(path: Path, suite: str, cases: Iterable[Any], output: str | None = None) -> None:
    from phoneemu.fleet.junit import write_cases

    write_cases(path, suites="phoneemu predict", suite=suite, cases=cases, output=output)


def _fleet_junit(path: Path, doc: dict[str, Any], phones: list[FleetPhone]) -> None:
    """``--junit`` of ``--fleet-flash``: a case per predicted phone, a skipped one per entry that was not;
    the notes every phone has (JSON "notes") said once, as the suite's system-out, a case keeping its own.
    The cases are made one at a time as the file is written (:func:`phoneemu.fleet.junit.write_cases`)."""
    from phoneemu.fleet.junit import Case
    from phoneemu.phone.ways_out import HeldLists
    from phoneemu.scenario.predict import TVS_KNOWS_NOTHING

    shared = set(doc["notes"])
    files_fill = _files_fill(doc.get("signed_by_lab"), doc["new_files"])
    cases = (_junit_case(ph.mac or ph.entry, str(ph.outcome), (ph.detail or {}).get("deciding"),
                         {**(ph.detail or {}), "notes": [n for n in ph.notes if n not in shared]}, files_fill,
                         held=HeldLists.from_json((ph.detail or {}).get("held")),
                         flash_option="--fleet-flash" if "flash" in (ph.detail or {}) else None,
                         knows_nothing=TVS_KNOWS_NOTHING in ph.notes)
             if ph.outcome is not None else Case(ph.entry, skipped=f"not predicted: {ph.skipped}")
             for ph in phones)  # a skipped entry is named as its folder: a copy naming a MAC seen is no twin
    _write_junit(path, f"predict {doc['source']} on {', '.join(doc['new_files'])}", cases,
                 output="\n".join(f"note: {n}" for n in doc["notes"]) if doc["notes"] else None)


def _files_fill(signed_by_lab: bool | None, new_files: Iterable[Any]) -> dict[str, str]:
    """The ways out's fill saying the new files are not a lab's (:mod:`phoneemu.phone.lab_signers`: no lab
    command then, as ``boot`` without ``--lab``); for files a lab serves, that lab (:func:`_lab_fill`);
    else empty (DIR left, said under a fleet's ways: :data:`_LEFT_BY_PREDICT`)."""
    from phoneemu.phone.lab_signers import not_a_lab_fill

    files = [Path(f) for f in new_files]
    return not_a_lab_fill(signed_by_lab, ", ".join(str(f) for f in files)) or _lab_fill(files)


def _lab_fill(new_files: list[Path]) -> dict[str, str]:
    """``DIR`` and ``NEW`` (the cluster the phones move to, as ``fleet boot --lab`` fills them) when every
    NEW_FILE is the served folder of one lab or a file in it (``LAB/tftp``, ``LAB`` holding its
    ``cluster.json``: :meth:`phoneemu.lab.cluster.LabCluster.open`): the lab the user gave the files of;
    else empty — nothing else names the cluster to predict (no ``--lab``)."""
    lab = _one_lab(new_files)
    return {} if lab is None else {"DIR": str(lab), "NEW": str(lab)}


def _one_lab(paths: Iterable[Path]) -> Path | None:
    """The lab whose served folder (``LAB/tftp``, ``LAB`` holding its ``cluster.json``) every one of
    ``paths`` is, or is a file in; None when they are not all one lab's (or there are none)."""
    from phoneemu.lab.state import STATE_FILE

    labs: dict[Path, Path] = {}
    for path in paths:
        served = path if path.is_dir() else path.parent
        if served.name != "tftp" or not (served.parent / STATE_FILE).is_file():
            return None
        labs.setdefault(served.parent.resolve(), served.parent)
    if len(labs) != 1:
        return None
    (lab,) = labs.values()
    return lab


def _installed_fill(installed: Iterable[Path | None], files_fill: dict[str, str]) -> dict[str, str]:
    """``OLD`` (the cluster the phone left) when the ``--installed-*`` files are all in one lab's served
    folder (:func:`_one_lab`) and that lab is not the one the new files are (``NEW``); else empty."""
    lab = _one_lab([p for p in installed if p is not None])
    if lab is None or "NEW" not in files_fill or lab.resolve() == Path(files_fill["NEW"]).resolve():
        return {}
    return {"OLD": str(lab)}


#: why a placeholder is left in predict's ways (:func:`phoneemu.phone.ways_out.placeholder_lines`)
_LEFT_BY_PREDICT = "not known to predict"
#: why FLEET is left under ``--models``: the phones listed are real ones
_NO_FLASHES = "--models lists real phones, with no emulated flash: --fleet-flash predicts emulated ones"
#: why a placeholder is left in one phone's ways (:func:`_placeholder_legend`), by name, else
#: :data:`_LEFT_BY_PREDICT`
_ONE_PHONE_LEAVES = {
    "DIR": "not known to predict: the new files are not one lab's served folder (LAB/tftp) or files in it",
    "NEW": "not known to predict: the new files are not one lab's served folder (LAB/tftp) or files in it",
    "OLD": "not known to predict: the --installed-* files are not in another lab's served folder",
    "FLASH": "not known to predict: no --flash names an emulated phone's; the phone is predicted from files",
    "FILE": "the new file served under the name its deciding line gives (its fetch line says which)"}


def _leaves(flash_option: str | None) -> dict[str, str]:
    """:data:`_ONE_PHONE_LEAVES` as fits where the phone's installed files come from: from a flash
    (``flash_option``: ``--flash``, a ``--fleet-flash`` phone's), OLD is left because a flash is no lab's
    served folder (was: "the --installed-* files are not ..." where no --installed-* option was given)."""
    if flash_option is None:
        return _ONE_PHONE_LEAVES
    return {**_ONE_PHONE_LEAVES, "OLD": f"not known to predict: the installed files are the phone's flash's "
            f"({flash_option}), which is no lab's served folder"}


def _from_flash(flash: Path | None, installed_files: Iterable[Path | None]) -> str | None:
    """``--flash`` when some installed file of one phone is its flash's (:func:`_leaves`), else None."""
    if flash is None:
        return None
    return "--flash" if any(p is not None and flash in p.parents for p in installed_files) else None


def _placeholder_legend(r: PredictResult, fill: dict[str, str], flash_option: str | None = None) -> list[str]:
    """Said once under one phone's ways out: each placeholder their commands leave, what it stands for and
    why it is left (``OLD: the lab folder of the cluster the phones left (not known to predict: ...)``), as
    ``boot`` and a fleet's ``predict`` say them (:func:`phoneemu.phone.ways_out.legend_lines`; was ``DIR``,
    ``OLD`` and ``FLASH`` bare, with no legend); ``flash_option``: the installed files are a flash's
    (:func:`_leaves`)."""
    from phoneemu.phone.ways_out import legend_lines, phone_placeholders_left

    deciding = r.report.deciding
    if not r.report.locked_out or deciding is None:
        return []
    left = phone_placeholders_left(deciding.rule, deciding.kind, fill, reason_code=deciding.reason_code,
                                   held=r.report.held)
    return legend_lines(left, _leaves(flash_option), _LEFT_BY_PREDICT, indent="  ")


def _offline_lockout(report: BootReport) -> bool:
    """Whether one phone's predicted lockout rests on the offline TVS being unreachable
    (:func:`phoneemu.scenario.predict.rests_on_offline_tvs`)."""
    from phoneemu.scenario.predict import rests_on_offline_tvs

    deciding = report.deciding
    return report.locked_out and deciding is not None and rests_on_offline_tvs(deciding.rule, deciding.reason)


def _knows_nothing_lockout(r: PredictResult) -> bool:
    """Whether one phone's predicted lockout rests on ``--tvs-reachable``'s TVS that knows nothing (its note,
    :func:`phoneemu.scenario.predict.rests_on_tvs_knowing_nothing`)."""
    from phoneemu.scenario.predict import TVS_KNOWS_NOTHING

    return r.report.locked_out and TVS_KNOWS_NOTHING in r.notes


def _offline_tvs_said(lines: list[str], report: BootReport) -> list[str]:
    """One phone's boot lines with its result line saying a lockout that rests on the offline TVS being
    unreachable as such: ``locked out: yes, if its TVS cannot be reached (offline: ask it with --tvs-live,
    or give --tvs-cert)`` (was ``locked out: yes``, as a fleet's result line said it)."""
    from phoneemu.scenario.predict import TVS_OFFLINE_ASK

    if not _offline_lockout(report):
        return lines
    said = f"locked out: yes, if its TVS cannot be reached ({TVS_OFFLINE_ASK})"
    return [f"{line.removesuffix('locked out: yes')}{said}"
            if line.startswith("  result:") and line.endswith("locked out: yes") else line for line in lines]


def _one_phone_fill(r: PredictResult, flash: Path | None, new_files: list[Path],
                    installed_files: Iterable[Path | None]) -> dict[str, str]:
    """The placeholders of one phone's ways out predict knows, its text's and its JSON's alike: its flash, its
    MAC, the lab the new files are, the one the installed files are (:func:`_installed_fill`), and bringing
    TVS back for the new files' lab's own TVS or the one the phone names
    (:func:`phoneemu.phone.ways_out.tvs_back_fill`)."""
    from phoneemu.phone.ways_out import tvs_back_fill

    files_fill = _files_fill(r.signed_by_lab, new_files)
    fill = {**({"FLASH": str(flash)} if flash is not None else {}), "MAC": r.mac, **files_fill,
            **_installed_fill(installed_files, files_fill)}
    deciding = r.report.deciding
    return fill | tvs_back_fill(fill.get("DIR"), [(deciding.rule, deciding.reason)] if deciding is not None
                                else [])


def _report_json(r: PredictResult, flash: Path | None, new_files: list[Path],
                 installed_files: Iterable[Path | None]) -> dict[str, Any]:
    """One phone's boot report as JSON, its ways out naming the cluster its text's do
    (:func:`phoneemu.phone.ways_out.ways_json_said`: bringing TVS back for OLD; was DIR)."""
    from phoneemu.phone.ways_out import ways_json_said

    said = r.report.as_dict()
    said["ways_out"] = ways_json_said(said["ways_out"], _one_phone_fill(r, flash, new_files, installed_files))
    return said


def _text(r: PredictResult, installed: str, flash: Path | None, new_files: list[Path],
          installed_files: Iterable[Path | None] = ()) -> str:
    """One phone's prediction; its ways out filled with what predict knows (its flash, its MAC, the lab
    the new files are, and the one the installed files are: :func:`_installed_fill`), then the legend of
    the placeholders left (:func:`_placeholder_legend`)."""
    fill = _one_phone_fill(r, flash, new_files, installed_files)
    boot = offline_boot_lines(r.served, r.report, fill)
    lines = [f"phone {r.mac}, holding {installed}:", *_offline_tvs_said(boot, r.report)]
    lines += _placeholder_legend(r, fill, _from_flash(flash, installed_files))
    lines += [f"  note: {n}" for n in r.notes]
    if r.sip is not None:
        lines += r.sip.lines()
    missing = r.not_given
    if missing:
        lines.append(f"  not given: {', '.join(missing)} (asked for by the phone: add those the cluster "
                     "serves)")
    return "\n".join(lines)


_FIRST_MACS = 5  # MACs shown per deciding rule
_FIRST_SKIPPED = 10
_FIRST_NOTES = 10  # kinds of note the text lists (the most phones first)


def _tvs_text(args: argparse.Namespace, live: LiveTvs | None) -> str:
    if live is not None:
        down = f", {counted(live.unreachable, 'server')} unreachable" if live.unreachable else ""
        return f"asked over the network ({counted(live.connections, 'TLS connection')} tried{down})"
    return ("vouches for given certificates" if args.tvs_cert else
            "reachable, knows none of the new certificates" if args.tvs_reachable else "unreachable")


def _fleet_doc(args: argparse.Namespace, now: int, phones: list[FleetPhone],
               live: LiveTvs | None, *, source: str) -> dict[str, Any]:
    from phoneemu.phone.lab_signers import joined
    from phoneemu.phone.ways_out import ways_group_of, ways_out_doc
    from phoneemu.scenario.predict import OUTCOMES, TVS_KNOWS_NOTHING, rests_on_no_config, run_wide_notes

    done = [ph for ph in phones if ph.outcome is not None]
    counts = {o: sum(1 for ph in done if ph.outcome == o) for o in OUTCOMES}
    groups: dict[tuple[str, str], list[str]] = {}
    for ph in done:
        assert ph.outcome is not None and ph.rule is not None and ph.mac is not None
        groups.setdefault((ph.outcome, ph.rule), []).append(ph.mac)
    order = {o: i for i, o in enumerate(("locked out", "failed", "accepted"))}
    rules = [{"rule": rule, "outcome": out, "count": len(macs), "first_macs": macs[:_FIRST_MACS]}
             for (out, rule), macs in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], -len(kv[1]),
                                                                             kv[0][1]))]
    shared = run_wide_notes(phones)
    own: dict[str, list[str]] = {}  # a note naming its phone's MAC is counted as <MAC>: alike phones group
    for ph in done:
        for n in ph.notes:
            if n not in shared:
                own.setdefault(n.replace(ph.mac, "<MAC>") if ph.mac else n, []).append(ph.mac or "")
    asked: dict[str, int] = {}
    by_model: dict[str, dict[str, int]] = {}
    locked: Counter[WaysGroup] = Counter(key for ph in done if (key := _ways_group(ph)) is not None)
    offline = sum(1 for ph in done if ph.outcome == "locked out" and _rests_on_offline_tvs(ph.detail))
    knows_nothing = sum(1 for ph in done if ph.outcome == "locked out" and TVS_KNOWS_NOTHING in ph.notes)
    no_config = sum(1 for ph in done if ph.outcome == "locked out" and rests_on_no_config(ph.detail))
    ways = ways_out_doc(locked)
    refs = {ways_group_of(e): i for i, e in enumerate(ways)}
    for ph in done:
        for name in ph.not_given:
            asked[name] = asked.get(name, 0) + 1
        model = by_model.setdefault(ph.profile or "?", {})
        model[str(ph.outcome)] = model.get(str(ph.outcome), 0) + 1
    until_reset = [ph.mac or "" for ph in done
                   if ((ph.detail or {}).get("sip") or {}).get("refused_until_reset")]
    return {"source": source, "fleet_flash": str(args.fleet_flash) if args.fleet_flash else None,
            "models": str(args.models) if args.models else None,
            "new_files": [str(f) for f in args.files], "now": now,
            # the files a lab's (phone.lab_signers): false, the ways out's lab commands are left out
            "signed_by_lab": functools.reduce(joined, (ph.signed_by_lab for ph in done), None),
            "tvs": _tvs_text(args, live), "entries": len(phones), "predicted": len(done),
            "skipped": len(phones) - len(done), "outcomes": counts, "locked_out_tvs_offline": offline,
            "locked_out_no_config": no_config, "locked_out_tvs_knows_nothing": knows_nothing,
            "rules": rules, "notes": list(shared),
            "by_model": dict(sorted(by_model.items())), "ways_out": ways,
            "sip_until_reset": {"count": len(until_reset), "first_macs": until_reset[:_FIRST_MACS]},
            "not_given": [{"name": n, "phones": c} for n, c in sorted(asked.items(), key=lambda kv: -kv[1])],
            "phone_notes": [{"note": n, "count": len(macs), "first_macs": macs[:_FIRST_MACS]}
                            for n, macs in sorted(own.items(), key=lambda kv: -len(kv[1]))],
            "skipped_entries": [{"entry": ph.entry, "reason": ph.skipped} for ph in phones
                                if ph.skipped is not None],
            "phones": [{**(ph.detail or {}), **_phone_ways(ph, refs),
                        "notes": [n for n in ph.notes if n not in shared], "not_given": list(ph.not_given)}
                       for ph in done]}


def _outcomes_named(doc: dict[str, Any]) -> dict[str, Any]:
    """A fleet's document (:func:`_fleet_doc`) as its JSON writes it (``--json``, ``--json-file``): each
    outcome by fleet boot's name for it where it has one (:data:`phoneemu.fleet.metrics.OUTCOMES`:
    ``locked-out``) — in ``outcomes``, ``rules``, ``by_model`` and each phone's record —, as ``fleet boot``
    and ``replay --all`` write theirs (was ``"locked out"``, the text's words: a script reading both asked for
    two names). The text and JUnit say it in words (``locked out``)."""
    from phoneemu.fleet.metrics import OUTCOMES as FLEET_OUTCOMES
    from phoneemu.scenario.predict import OUTCOMES

    named = {o: token if (token := o.replace(" ", "-")) in FLEET_OUTCOMES else o for o in OUTCOMES}

    def name(outcome: Any) -> Any:
        return named.get(outcome, outcome) if isinstance(outcome, str) else outcome

    return {**doc, "outcomes": {name(o): n for o, n in doc["outcomes"].items()},
            "rules": [{**r, "outcome": name(r["outcome"])} for r in doc["rules"]],
            "by_model": {m: {name(o): n for o, n in c.items()} for m, c in doc["by_model"].items()},
            "phones": [{**ph, "outcome": name(ph["outcome"])} if "outcome" in ph else ph
                       for ph in doc["phones"]]}


def _rests_on_offline_tvs(detail: dict[str, Any] | None) -> bool:
    """Whether the lockout of a prediction (its JSON view) rests on the offline TVS being unreachable
    (:func:`phoneemu.scenario.predict.rests_on_offline_tvs`)."""
    from phoneemu.scenario.predict import rests_on_offline_tvs

    deciding = (detail or {}).get("deciding") or {}
    return rests_on_offline_tvs(deciding.get("rule"), deciding.get("reason"))


def _fleet_result(doc: dict[str, Any], phones: str, unknown: str) -> str:
    """The result line of a fleet's prediction. Lockouts that rest on the offline TVS being unreachable
    (``locked_out_tvs_offline``) are said to happen *if their TVS cannot be reached*, with how to ask it
    (was: ``200 of 200 phones would lock out`` where the real boot was 200 ok, TVS vouching); those of
    ``--models`` phones with no config given (``locked_out_no_config``), *only because no config was
    given* (:func:`phoneemu.scenario.predict.rests_on_no_config`; was: ``3 of 5`` where the real boot was
    5 ok); the others plainly."""
    from phoneemu.scenario.predict import NO_CONFIG_GIVEN, TVS_OFFLINE_ASK

    locked = doc["outcomes"]["locked out"]
    accepted = doc["outcomes"]["accepted"]
    if not locked:
        return (f"result: no predicted phone would lock out ({accepted} of {doc['predicted']} accepted"
                f"{unknown})" if unknown else
                f"result: no phone would lock out ({accepted} of {doc['predicted']} accepted)")
    # each count absent in a document of an older phoneemu
    kinds = [(n, why) for n, why in ((doc.get("locked_out_tvs_offline", 0),
                                      f"if their TVS cannot be reached ({TVS_OFFLINE_ASK})"),
                                     (doc.get("locked_out_no_config", 0),
                                      f"only because no config was given for them ({NO_CONFIG_GIVEN})"))
             if n]
    some = f" {kinds[0][1]}" if len(kinds) == 1 and kinds[0][0] == locked else \
        "".join(f", {n} of them {why}" for n, why in kinds)
    return f"result: {locked} of {phones} would lock out{some}{unknown}"


def _ways_group(ph: FleetPhone) -> WaysGroup | None:
    """The group of a locked-out phone in the summary's ``ways_out`` (:func:`ways_group`: its deciding rule,
    kind, and the reason code and the lists it holds where they choose the ways: phones holding a CTL and
    not, two groups); None for a phone not locked out."""
    from phoneemu.phone.ways_out import HeldLists, ways_group

    if ph.outcome != "locked out":
        return None
    detail = ph.detail or {}
    deciding = detail.get("deciding") or {}
    return ways_group(str(ph.rule), str(deciding.get("kind", "")), deciding.get("reason_code"),
                      held=HeldLists.from_json(detail.get("held")))


def _phone_ways(ph: FleetPhone, refs: dict[WaysGroup, int]) -> dict[str, Any]:
    """A phone's ways out in its record: ``ways_out_ref``, the index of its group in the summary's
    ``ways_out`` (the ways themselves, about 1.6 KB, are written once per group, not for each of up to
    100,000 phones), and ``no_way_out`` as its one-phone report gives it (BootReport.as_dict); both null
    for a phone not locked out (README "ways out")."""
    from phoneemu.phone.ways_out import no_way_out

    group = _ways_group(ph)
    if group is None:
        return {"ways_out_ref": None, "no_way_out": None}
    deciding = (ph.detail or {}).get("deciding") or {}
    return {"ways_out_ref": refs.get(group),
            "no_way_out": no_way_out(deciding.get("rule"), deciding.get("kind"))}


def _macs(group: dict[str, Any]) -> str:
    """A group's first MACs, and how many more it has."""
    from phoneemu.phone.show_fleet import macs_text

    return macs_text(group["count"], group["first_macs"])


def _sip_refusing_lines(refusing: dict[str, Any]) -> list[str]:
    """The phones that refuse a CallManager certificate until they reset (spec §G.5), counted in number:
    ``sip: 1 phone (MAC) refuses ... until it resets: its CTL lacks it``; none, no line."""
    n = refusing["count"]
    if not n:
        return []
    refuse, they, their = ("refuses", "it resets", "its") if n == 1 else ("refuse", "they reset", "their")
    return [f"sip: {counted(n, 'phone')} ({_macs(refusing)}) {refuse} a CallManager certificate (G.5) until "
            f"{they}: {their} CTL lacks it"]


#: after "TVS unreachable" in the fleet summary: an assumption, not what the servers did (walk s38: read as
#: a TVS outage, its lockouts sent a migration's user to "lab service NEW tvs start")
_OFFLINE_TVS = "note: TVS not asked (offline); --tvs-live asks the TVS servers the phones' configs name"


def _fleet_fill(doc: dict[str, Any]) -> dict[str, str]:
    """The placeholders of a fleet's ways out predict knows, its text's and its JSON's alike: the phones'
    flashes (``--fleet-flash``; not ``--models``), no lab command for files that are not a lab's
    (:mod:`phoneemu.phone.lab_signers`), the lab the new files are, and bringing TVS back for its own TVS
    or the one the phones name (:func:`phoneemu.phone.ways_out.tvs_back_fill`)."""
    from phoneemu.phone.ways_out import tvs_back_fill

    fill = {**({"FLEET": doc["fleet_flash"]} if doc["fleet_flash"] else {}),
            **_files_fill(doc.get("signed_by_lab"), doc.get("new_files", ()))}
    decided = [(d.get("rule"), d.get("reason")) for ph in doc.get("phones", ()) if (d := ph.get("deciding"))]
    return fill | tvs_back_fill(fill.get("DIR"), decided)


def _fleet_text(doc: dict[str, Any]) -> str:
    from phoneemu.fleet.metrics import model_lines
    from phoneemu.phone.ways_out import placeholder_lines, ways_out_text

    skipped = counted(doc["skipped"], "entry", "entries")
    phones = counted(doc["predicted"], "phone")
    lines = [f"fleet {doc['source']}: {phones} predicted, {skipped} skipped; TVS {doc['tvs']}"]
    lines += [_OFFLINE_TVS] if doc["tvs"] == "unreachable" else []
    lines += [f"  {o + ':':<12}{n}" for o, n in doc["outcomes"].items()]
    lines += model_lines(doc["by_model"])
    if doc["rules"]:
        lines.append("by deciding rule:")
        width = max(len(r["rule"]) for r in doc["rules"])
        for r in doc["rules"]:
            lines.append(f"  {r['outcome']:<11} {r['rule']:<{width}} {r['count']:>6}  {_macs(r)}")
    # a way out done phone by phone is written for the fleet predicted (--fleet-flash; not --models); no
    # lab command for files that are not a lab's (phone.lab_signers)
    fill = _fleet_fill(doc)
    lines += ways_out_text(doc["ways_out"], fill)
    # what a placeholder left stands for, once (was a bare DIR, FLEET under --models)
    lines += placeholder_lines(doc["ways_out"], fill, {"FLEET": _NO_FLASHES} if doc.get("models") else {},
                               _LEFT_BY_PREDICT)
    lines += _sip_refusing_lines(doc["sip_until_reset"])
    lines += [f"note: {n}" for n in doc["notes"]]
    lines += [f"note for {counted(g['count'], 'phone')} ({_macs(g)}): {g['note']}"
              for g in doc["phone_notes"][:_FIRST_NOTES]]
    if len(doc["phone_notes"]) > _FIRST_NOTES:
        more = counted(len(doc["phone_notes"]) - _FIRST_NOTES, "more note")
        lines.append(f"... and {more}, for fewer phones each (--json-file lists them all)")
    if doc["not_given"]:
        names = ", ".join(f"{g['name']} ({g['phones']})" for g in doc["not_given"])
        lines.append(f"not given: {names} (asked for by that many phones: add those the cluster serves, "
                     "e.g. give its TFTP folder)")
    if doc["skipped_entries"]:
        lines.append("skipped:")
        # an entry's folder name with its control characters escaped (nothing raw on the terminal)
        lines += [f"  {printable(s['entry'])}: {s['reason']}"
                  for s in doc["skipped_entries"][:_FIRST_SKIPPED]]
        if doc["skipped"] > _FIRST_SKIPPED:
            lines.append(f"  ... and {doc['skipped'] - _FIRST_SKIPPED} more (--json-file lists them all)")
    # a skipped entry is a phone not predicted, not one that would not lock out: the verdict says so
    unknown = f"; {skipped} not predicted (skipped)" if doc["skipped"] else ""
    lines.append(_fleet_result(doc, phones, unknown))
    return "\n".join(lines)


def _live_tvs(args: argparse.Namespace) -> LiveTvs | None:
    """``--tvs-live``'s asker (None without it); refused with the options that stand in for TVS."""
    if not args.tvs_live:
        return None
    for option, given in (("--tvs-cert", args.tvs_cert), ("--tvs-reachable", args.tvs_reachable),
                          ("--tvs-server-cert", args.tvs_server_cert)):
        if given:
            raise PhoneEmuError(f"{option} stands in for the TVS servers: not with --tvs-live, which asks "
                                "them", path="tvs-live")
    from phoneemu.scenario.predict_live_tvs import LiveTvs

    return LiveTvs(timeout=args.tvs_timeout)


def _fleet(args: argparse.Namespace, now: int, options: dict[str, Any]) -> int:
    from phoneemu.interrupts import asyncio_run
    from phoneemu.scenario.predict import predict_fleet

    for option, value in (("--flash", args.flash), ("--installed-itl", args.installed_itl),
                          ("--installed-ctl", args.installed_ctl),
                          ("--installed-config", args.installed_config),
                          ("--installed-config-key", args.installed_config_key), ("--mac", args.mac)):
        if value is not None:
            raise PhoneEmuError(f"{option} is one phone's: not with --fleet-flash (each phone's installed "
                                "lists, config, MAC and profile come from its flash)", path="fleet-flash")
    refuse_file_as_flash(args.fleet_flash, "--fleet-flash", fleet=True)  # a file: said what it is
    phones = asyncio_run(predict_fleet(args.fleet_flash, args.files, profile=args.profile, now=now,
                                       progress=progress_line("predicted"), **options))
    return _fleet_report(args, now, phones, options["tvs_live"], source=str(args.fleet_flash))


def _fleet_report(args: argparse.Namespace, now: int, phones: list[FleetPhone], live: LiveTvs | None, *,
                  source: str) -> int:
    """The summary of a fleet's predictions (``--fleet-flash`` or ``--models``), its JSON and JUnit
    files; the exit status (1 when a phone would lock out)."""
    from phoneemu.phone.ways_out import ways_out_doc_run

    doc = _fleet_doc(args, now, phones, live, source=source)
    # as its text's (TVS back: OLD), each way's command filled in as "run", as fleet boot --json's
    doc["ways_out"] = ways_out_doc_run(doc["ways_out"], _fleet_fill(doc))
    unwritten = _write_outputs(args, doc, lambda: _fleet_junit(args.junit, doc, phones),
                               as_json=_outcomes_named)
    print(json_doc.dumps(_outcomes_named(doc), indent=2) if args.json else _fleet_text(doc))
    _said_unwritten(unwritten)
    if doc["predicted"] == 0:
        what = "no listed phone predicted" if args.models is not None else "no phone's flash in it"
        raise PhoneEmuError(f"{source}: {what} (every entry was skipped)",
                            path="models" if args.models is not None else "fleet-flash")
    return 1 if doc["outcomes"]["locked out"] else 0


def _listed(args: argparse.Namespace, now: int, options: dict[str, Any]) -> int:
    """``--models FILE``: the site's listed phones predicted from files (:func:`predict_listed`)."""
    from phoneemu.interrupts import asyncio_run
    from phoneemu.scenario.phone_models import read_phone_models
    from phoneemu.scenario.predict import predict_listed

    for option, value in (("--fleet-flash", args.fleet_flash), ("--flash", args.flash),
                          ("--installed-config", args.installed_config),
                          ("--installed-config-key", args.installed_config_key), ("--mac", args.mac)):
        if value is not None:
            raise PhoneEmuError(f"{option}: not with --models (each listed phone holds the "
                                "--installed-itl/-ctl lists and its own config from --installed-config-dir)",
                                path="models")
    folder = args.installed_config_dir
    if folder is not None and not folder.is_dir():
        raise PhoneEmuError(f"--installed-config-dir {folder}: no such folder", path="installed-config-dir")
    models = read_phone_models(args.models, default=args.profile or "cp-8861", done="predicted")
    phones = list(models.profile_of.items())
    if not phones:
        raise PhoneEmuError(f"{args.models}: lists no phone", path="models")
    if args.profile is not None:  # --profile: every listed phone is that model
        phones = [(mac, args.profile) for mac, _prof in phones]
    predicted = asyncio_run(predict_listed(
        phones, args.files, now=now, installed_itl=args.installed_itl, installed_ctl=args.installed_ctl,
        config_dir=folder, progress=progress_line("predicted"), **options))
    predicted = [replace(ph, notes=(*ph.notes, models.notes_of[ph.mac]))
                 if ph.mac in models.notes_of and ph.outcome is not None else ph for ph in predicted]
    return _fleet_report(args, now, predicted, options["tvs_live"], source=str(args.models))


def _config_mac(path: Path) -> str | None:
    """The MAC of an installed config named ``SEP<MAC>...``: without ``--mac`` the phone predicted is the
    one whose config it holds, not the first phone of the new files (None for another name)."""
    from phoneemu.scenario.predict import _SEP_MAC

    m = _SEP_MAC.match(path.name)
    return m.group(1).upper() if m else None


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse, before any work, a report that could not be written, two reports naming one file, and a
    report that would overwrite an input (nothing lost to a typo): a file given to an option or as a
    NEW_FILE, a file of a NEW_FILE folder, of ``--flash``, of ``--installed-config-dir``, or of a phone's
    flash in ``--fleet-flash`` (was: ``--json-file a/ITLFile.tlv --installed-itl a/ITLFile.tlv`` replaced
    the only copy of the ITL the phones hold by the JSON; ``--json-file r --junit r`` kept the JUnit)."""
    from phoneemu.files import check_apart, check_writable, overwritten_input

    outputs = (("--json-file", args.json_file), ("--junit", args.junit))
    for option, out in outputs:
        check_writable(out, option)
    check_apart(outputs)
    files = [("NEW_FILE", f) for f in args.files if not f.is_dir()]
    given: tuple[tuple[str, list[Path | None]], ...] = (
        ("--installed-itl", [args.installed_itl]), ("--installed-ctl", [args.installed_ctl]),
        ("--installed-config", [args.installed_config]),
        ("--installed-config-key", [args.installed_config_key]), ("--models", [args.models]),
        ("--tvs-cert", args.tvs_cert), ("--tvs-server-cert", args.tvs_server_cert),
        ("--callmanager-cert", args.callmanager_cert), ("--image-signer", args.image_signer))
    files += [(option, path) for option, paths in given for path in paths if path is not None]
    folders: list[tuple[str, Path | None, int]] = [("NEW_FILE", f, 1) for f in args.files if f.is_dir()]
    folders += [("--flash", args.flash, 1), ("--installed-config-dir", args.installed_config_dir, 1),
                ("a phone's flash in --fleet-flash", args.fleet_flash, 2)]
    for option, out in outputs:  # a new file (or a FIFO, a device) replaces no input
        clash = overwritten_input(out, files, folders) if out is not None else None
        if clash is not None:
            raise PhoneEmuError(f"{option} {out}: is {clash}: the report would overwrite it (give another "
                                "file)", path=option.lstrip("-"))


def handler(args: argparse.Namespace) -> int:
    """The prediction, its reports this run's or none (:mod:`phoneemu.commands._reports`)."""
    from phoneemu.commands._reports import never_stale

    return never_stale(args, _check_outputs, _handler,
                       (("--json-file", args.json_file), ("--junit", args.junit)))


def _handler(args: argparse.Namespace) -> int:
    from phoneemu.crypto.certs import cert_der
    from phoneemu.interrupts import asyncio_run
    from phoneemu.scenario.predict import TVS_KNOWS_NOTHING, outcome, predict_boot

    roles = tvs_roles(args.tvs_roles)
    now = args.now if args.now is not None else int(time.time())
    live = _live_tvs(args)
    if args.installed_config_dir is not None and args.models is None:
        raise PhoneEmuError("--installed-config-dir is for --models (each listed phone's config)",
                            path="installed-config-dir")
    callmanager = [cert_der(c) for c in pem_certificates(args.callmanager_cert)]
    fleet = _listed if args.models is not None else _fleet if args.fleet_flash is not None else None
    if fleet is not None:
        return fleet(args, now, {"tvs_certs": pem_certificates(args.tvs_cert), "tvs_roles": roles,
                                 "image_signers": pem_certificates(args.image_signer),
                                 "tvs_server_certs": pem_certificates(args.tvs_server_cert),
                                 "tvs_reachable": args.tvs_reachable, "tvs_live": live,
                                 "callmanager_certs": callmanager})
    flash_notes = fill_from_flash(args) if args.flash is not None else []
    if args.mac is None and args.installed_config is not None:
        args.mac = _config_mac(args.installed_config)
    if args.profile is None:
        args.profile = "cp-8861"
    key = installed_config_key(args)
    result = asyncio_run(predict_boot(
        args.files, installed_itl=args.installed_itl, installed_ctl=args.installed_ctl,
        installed_config=args.installed_config, mac=args.mac,
        profile=args.profile, now=now, tvs_certs=pem_certificates(args.tvs_cert), tvs_roles=roles,
        image_signers=pem_certificates(args.image_signer), installed_config_key=key,
        tvs_server_certs=pem_certificates(args.tvs_server_cert), tvs_reachable=args.tvs_reachable,
        tvs_live=live, keys_from=args.flash,
        callmanager_certs=callmanager))
    if flash_notes:
        result = replace(result, notes=(*flash_notes, *result.notes))
    held = (("CTL", args.installed_ctl), ("ITL", args.installed_itl))
    installed = " and ".join(f"{k} {p.name}" for k, p in held if p is not None) or "no trust list"
    doc = {"mac": result.mac, "profile": args.profile, "now": now,
           "installed": {"ctl": str(args.installed_ctl) if args.installed_ctl else None,
                         "itl": str(args.installed_itl) if args.installed_itl else None},
           "tvs": _tvs_text(args, live), "notes": list(result.notes),
           "served": [{"name": n, "answer": a} for n, a in result.served],
           "signed_by_lab": result.signed_by_lab,  # false: a cluster that is not a lab (phone.lab_signers)
           "report": _report_json(result, args.flash, args.files,
                                  (args.installed_itl, args.installed_ctl, args.installed_config)),
           # the lockout rests on the offline TVS unreachable (no --tvs-cert, --tvs-reachable, --tvs-live)
           "locked_out_tvs_offline": _offline_lockout(result.report),
           # ... on --tvs-reachable's TVS that knows nothing (no --tvs-cert): see its note
           "locked_out_tvs_knows_nothing": _knows_nothing_lockout(result),
           **({"sip": result.sip.as_dict()} if result.sip is not None else {})}

    installed_files = (args.installed_itl, args.installed_ctl, args.installed_config)
    files_fill = _files_fill(result.signed_by_lab, args.files)

    def junit() -> None:
        rep = doc["report"]
        case = _junit_case(result.mac, outcome(result.report), rep.get("deciding"),
                           {**({"flash": str(args.flash)} if args.flash is not None else {}),
                            "installed": doc["installed"], "tvs": doc["tvs"], "notes": doc["notes"],
                            "decisions": [f"{d['rule']} {d['file']}" for d in rep.get("decisions", [])]},
                           files_fill, held=result.report.held,
                           installed_fill=_installed_fill(installed_files, files_fill),
                           flash_option=_from_flash(args.flash, installed_files),
                           knows_nothing=TVS_KNOWS_NOTHING in result.notes)
        _write_junit(args.junit, f"predict {', '.join(str(f) for f in args.files)}", [case])

    unwritten = _write_outputs(args, doc, junit)
    if args.json:
        print(json_doc.dumps(doc, indent=2))
    else:
        print(_text(result, installed, args.flash, args.files, installed_files))
    _said_unwritten(unwritten)
    return 0 if result.report.ok else 1
