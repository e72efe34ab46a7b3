"""A fleet's flashes at a glance: which trust lists the phones hold and how their last boots ended.

``phone show --fleet-flash DIR`` over ``DIR/<MAC>`` (:mod:`phoneemu.phone.flashes`): the phones are
grouped by the ITL and the CTL checksum each shows (MD5 or SHA-1 by model, spec §G.1, §H.4) — given
the cluster's current lists, each group is said to match it or not, as CUCM's "ITL File Status"
(Match / MisMatch) does phone by phone —, by the config each accepted, and by how its last boot ended
(the deciding rule of a lockout, with the ways out or why it has none, :mod:`phoneemu.phone.ways_out`:
grouped by the lists the phones hold too where they choose other ways, ``held`` of each record — phones
holding a CTL are not told the rollback ITL, those of the same rule without one are).
After a certificate change, "ITL md5 ... mismatch 1,200 phones" is the count of phones still on the old
list.

Whose lists the phones hold (``signed_by_lab`` of each record, :mod:`phoneemu.phone.lab_signers`): a lab's,
or a cluster's that is not one. Without ``--cluster``, the fleet's verdict is that of the lists the locked
phones hold (the phones the ways out are for; ``signed_by_lab`` of the document, null when no locked phone
holds a list): not a lab's, the ways out name no lab command, as ``phone show --flash`` and ``boot``
without ``--lab`` say them. ``--cluster`` decides it instead: a lab folder (its commands, ``DIR`` filled
in), a folder of the cluster's files (no lab command). Bringing TVS back (``lab service DIR tvs start``) is
for the TVS the locked phones could not reach: ``DIR`` only when it is the ``--cluster`` lab's own, or
without ``--cluster`` at the address their last boots went to (the lab serving it is DIR), else ``OLD``
(``tvs_elsewhere`` of the document: the servers named, null when none; each record's ``last_boot`` keeps
its ``deciding`` line, which names them).
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from typing import Any

from phoneemu.errors import PhoneEmuError
from phoneemu.phone.flash import Flash
from phoneemu.phone.flashes import FlashEntry
from phoneemu.phone.lab_signers import LabSigners, joined, not_a_lab_fill
from phoneemu.phone.profile import get_profile
from phoneemu.phone.show import last_boot_tvs_fill
from phoneemu.phone.ways_out import (
    NOT_A_LAB,
    TVS_ELSEWHERE,
    HeldLists,
    placeholder_lines,
    tvs_back_fill,
    ways_doc_said,
    ways_group,
    ways_out_doc,
    ways_out_text,
)

__all__ = ["FIRST_LISTED", "FIRST_MACS", "fleet_show", "macs_text", "render_fleet_show"]

#: MACs named per group (the JSON ``first_macs``; the count says how many more)
FIRST_MACS = 5
#: why DIR is left without ``--cluster`` (on purpose: the flashes do not name their lab), said under the ways
_CLUSTER_FILLS = "--cluster DIR fills it"
#: skipped entries, flash problems (and a fleet action's failures) the text lists one by one
FIRST_LISTED = 10


def macs_text(count: int, first: Sequence[str]) -> str:
    """A group's first MACs, and how many more it has: ``A B ... (15 more)``."""
    rest = count - len(first)
    return " ".join(first) + (f" ... ({rest} more)" if rest else "")


def _status(shown: str | None, style: str, current: Mapping[str, str] | None, known: bool) -> str:
    """``match``/``mismatch`` against the cluster's list, ``not-installed``, or ``unknown`` (no cluster
    given) — the values of a scenario's ``itl_file_status``."""
    if shown is None:
        return "not-installed"
    if not known:
        return "unknown"
    return "match" if current is not None and current.get(style) == shown else "mismatch"


def _phone_record(e: FlashEntry, cluster: Mapping[str, Mapping[str, str] | None] | None) -> dict[str, Any]:
    """One phone's flash, read as ``phone show`` reads it (problems noted, never raised)."""
    assert e.mac is not None and e.profile is not None
    flash = Flash(e.path, profile=get_profile(e.profile))
    store = flash.load()
    last = flash.last_boot()
    style = store.profile.status_checksum
    itl, ctl = store.itl_checksum(), store.ctl_checksum()
    known = cluster is not None
    signers = LabSigners()
    for kind in ("CTL", "ITL"):
        held = store.trust_list(kind)
        if held is not None:
            signers.saw(held.raw, f"{kind}File.tlv")
    return {
        "entry": e.entry, "mac": e.mac, "profile": e.profile, "checksum_style": style,
        "itl_checksum": itl, "ctl_checksum": ctl,
        "itl_status": _status(itl, style, (cluster or {}).get("ITL"), known),
        "ctl_status": _status(ctl, style, (cluster or {}).get("CTL"), known),
        "config_file": store.config.file if store.config is not None else None,
        "last_boot": None if last is None else {
            k: last.get(k) for k in ("at", "target", "ok", "locked_out", "deciding", "deciding_rule",
                                     "deciding_kind", "deciding_reason_code")},
        "problems": list(flash.problems),
        "signed_by_lab": signers.verdict,  # whose lists it holds (module docstring)
        # the lists it holds, which choose the ways out of a lockout (ways_out.ways_group; as phone show),
        # and whether they lack the bulk ITL reset's signer, or the CTL reset's, as its last boot found
        # (last-boot.json)
        "held": HeldLists.of(store.ctl is not None, store.itl_is_empty,
                             last is not None and last.get("reset_signer_held") is False,
                             last is not None and last.get("ctl_reset_signer_held") is False).as_json(),
    }


def _last_outcome(rec: dict[str, Any]) -> tuple[str, str, str]:
    """(outcome, deciding rule, kind of file) of a phone's last boot as the flash keeps it."""
    last = rec["last_boot"]
    if last is None:
        return "no boot kept", "", ""  # never booted, or erased since (an erase forgets the last boot)
    rule, kind = str(last.get("deciding_rule") or "(none)"), str(last.get("deciding_kind") or "")
    if last.get("locked_out") is True:
        return "locked out", rule, kind
    return ("ok" if last.get("ok") is True else "failed"), rule, kind


def _groups(records: list[dict[str, Any]], key: Any) -> list[dict[str, Any]]:
    """Records grouped by ``key(record)`` (a tuple of named parts), most phones first."""
    members: dict[tuple[tuple[str, Any], ...], list[str]] = collections.defaultdict(list)
    for rec in records:
        members[tuple(key(rec).items())].append(rec["mac"])
    return [{**dict(k), "count": len(macs), "first_macs": macs[:FIRST_MACS]}
            for k, macs in sorted(members.items(), key=lambda kv: (-len(kv[1]), str(kv[0])))]


def fleet_show(entries: Sequence[FlashEntry], *, root: str,
               cluster: Mapping[str, Mapping[str, str] | None] | None = None,
               cluster_name: str | None = None, lab: str | None = None) -> dict[str, Any]:
    """The JSON view of a fleet's flashes (module docstring). ``cluster``: the current lists' checksums
    by kind (``{"ITL": {"md5": ..., "sha1": ...}, "CTL": None}``), ``cluster_name`` where they came from,
    ``lab`` the lab folder when they came from a lab (filled into the ways out's commands)."""
    records: list[dict[str, Any]] = []
    skipped = [{"entry": e.entry, "reason": e.skipped} for e in entries if e.skipped is not None]
    for e in entries:
        if e.skipped is None:
            try:
                records.append(_phone_record(e, cluster))
            except PhoneEmuError as exc:
                skipped.append({"entry": e.entry, "reason": str(exc)})
    locked_records = [rec for rec in records if _last_outcome(rec)[0] == "locked out"]
    locked = collections.Counter(ways_group(rule, kind, rec["last_boot"].get("deciding_reason_code"),
                                            held=HeldLists.from_json(rec["held"]))
                                 for rec in locked_records for _outcome, rule, kind in [_last_outcome(rec)])
    by_lab: bool | None = None  # the lists the locked phones hold: a lab's or not (module docstring)
    for rec in locked_records:
        by_lab = joined(by_lab, rec["signed_by_lab"])

    def checksum(kind: str) -> Any:
        low = kind.lower()
        return lambda r: {"checksum": f"{r['checksum_style']} {r[low + '_checksum']}" if r[low + "_checksum"]
                          else "none", "status": r[low + "_status"]}

    def boot(rec: dict[str, Any]) -> dict[str, str]:
        outcome, rule, kind = _last_outcome(rec)
        return {"outcome": outcome, "rule": rule, "kind": kind}

    doc: dict[str, Any] = {
        "fleet_flash": root, "phones": len(records), "skipped": len(skipped), "cluster": cluster_name,
        "lab": lab,
        "current": {k: dict(v) if v else None for k, v in (cluster or {}).items()},
        "models": dict(collections.Counter(r["profile"] for r in records).most_common()),
        "itl": _groups(records, checksum("ITL")), "ctl": _groups(records, checksum("CTL")),
        "configs": _groups(records, lambda r: {
            "file": (r["config_file"] or "none").replace(r["mac"], "<MAC>")}),
        "last_boots": _groups(records, boot), "ways_out": ways_out_doc(locked), "signed_by_lab": by_lab,
        "tvs_elsewhere": _tvs_elsewhere(locked_records, lab),
        "problems": [{"mac": r["mac"], "problem": p} for r in records for p in r["problems"]],
        "skipped_entries": skipped, "records": records,
    }
    doc["ways_out"] = ways_doc_said(doc["ways_out"], _cluster_fill(doc))  # as the text's (TVS back: OLD)
    return doc


def _tvs_elsewhere(locked_records: list[dict[str, Any]], lab: str | None) -> str | None:
    """The TVS servers the locked phones could not reach that are not those of the cluster ``DIR`` stands
    for — the ``--cluster`` lab's, else the lab serving where their last boots went —, as named in their
    reasons (None: none, or it cannot be told): bringing TVS back then names ``OLD``
    (:func:`phoneemu.phone.ways_out.tvs_back_fill`; was ``lab service DIR tvs start``, DIR the lab the
    phones moved to, whose TVS ran)."""
    lasts = [rec["last_boot"] for rec in locked_records]
    if lab is not None:
        fill = tvs_back_fill(lab, [(last.get("deciding_rule"), last.get("deciding")) for last in lasts])
    else:
        fill = last_boot_tvs_fill(lasts)
    return fill.get(TVS_ELSEWHERE)


def _status_text(status: str, name: str | None) -> str:
    return {"match": f"matches {name}", "mismatch": f"does not match {name}",
            "not-installed": "", "unknown": ""}[status]


def _cluster_fill(doc: dict[str, Any]) -> dict[str, str]:
    """The ways out's ``fill`` for ``--cluster``: a lab's folder (``DIR``), or, for a folder of the
    cluster's files, :data:`~phoneemu.phone.ways_out.NOT_A_LAB` (no lab command: the procedure, the command
    on the emulated phones, the rehearsal; was the ``lab:`` lines of a lab the user does not have).
    Without ``--cluster``, by the lists the locked phones hold (module docstring): not a lab's,
    :data:`~phoneemu.phone.ways_out.NOT_A_LAB` too (was the lab commands); else the lab commands, DIR left
    to fill in. Bringing TVS back names ``OLD`` where the TVS the locked phones could not reach is not
    DIR's (the document's ``tvs_elsewhere``: :func:`_tvs_elsewhere`)."""
    elsewhere = {TVS_ELSEWHERE: doc["tvs_elsewhere"]} if doc.get("tvs_elsewhere") else {}
    if doc.get("lab"):
        return {"DIR": doc["lab"], **elsewhere}
    if doc.get("cluster"):
        return {NOT_A_LAB: doc["cluster"]}
    return not_a_lab_fill(doc.get("signed_by_lab"), "the cluster of their lists") or elsewhere


def render_fleet_show(doc: dict[str, Any]) -> str:
    """The text form of :func:`fleet_show`."""
    phones = f"{doc['phones']} phone{'' if doc['phones'] == 1 else 's'}'"
    skipped = f"{doc['skipped']} {'entry' if doc['skipped'] == 1 else 'entries'} skipped"
    lines = [f"fleet {doc['fleet_flash']}: {phones} flashes, {skipped}"]
    if len(doc["models"]) > 1:  # a site's mix: each model shows its own checksum (MD5 or SHA-1)
        lines.append("models: " + ", ".join(f"{m} {n}" for m, n in doc["models"].items()))
    name = doc["cluster"]
    for kind in ("ITL", "CTL"):
        groups = doc[kind.lower()]
        if not groups:
            continue
        cur = doc["current"].get(kind) if name else None
        styles = sorted({g["checksum"].split()[0] for g in groups if g["checksum"] != "none"}) or ["md5"]
        said = f"; {name} serves " + ", ".join(f"{st} {cur[st]}" for st in styles) if cur else \
            f"; {name} serves none" if name else ""
        lines.append(f"{kind} (the checksum each phone shows{said}):")
        width = max(len(g["checksum"]) for g in groups)
        for g in groups:
            status = _status_text(g["status"], name)
            lines.append(f"  {g['checksum']:<{width}} {g['count']:>6}  {status + '  ' if status else ''}"
                         f"{macs_text(g['count'], g['first_macs'])}")
    if doc["configs"]:
        lines.append("config accepted:")
        width = max(len(g["file"]) for g in doc["configs"])
        lines += [f"  {g['file']:<{width}} {g['count']:>6}  {macs_text(g['count'], g['first_macs'])}"
                  for g in doc["configs"]]
    if doc["last_boots"]:
        lines.append("last boot:")
        labels = [f"{g['outcome']} {g['rule']}" + (f" ({g['kind']})" if g["kind"] else "") if g["rule"]
                  else g["outcome"] for g in doc["last_boots"]]
        width = max(map(len, labels))
        lines += [f"  {label:<{width}} {g['count']:>6}  {macs_text(g['count'], g['first_macs'])}"
                  for label, g in zip(labels, doc["last_boots"], strict=True)]
    fill = {"FLEET": doc["fleet_flash"], **_cluster_fill(doc)}
    lines += ways_out_text(doc["ways_out"], fill)
    lines += placeholder_lines(doc["ways_out"], fill, {} if doc.get("cluster") else {"DIR": _CLUSTER_FILLS},
                               "not known to phone show")
    for what, items, fmt in (("flash problems", doc["problems"], "{mac}: {problem}"),
                             ("skipped", doc["skipped_entries"], "{entry}: {reason}")):
        if items:
            lines.append(f"{what}:")
            lines += ["  " + fmt.format(**item) for item in items[:FIRST_LISTED]]
            if len(items) > FIRST_LISTED:
                lines.append(f"  ... and {len(items) - FIRST_LISTED} more (--json lists them all)")
    return "\n".join(lines) + "\n"
