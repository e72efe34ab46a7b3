"""``show itl`` / ``show ctl``-style views of a phone's stored trust state (spec §H.4, §G.1).

Per installed trust list: the checksums the phone shows (MD5 and SHA-1, spec §H.4 — which one a
model shows is ``profile.status_checksum``), the length, the header rows and every record (role as
text, subject, issuer, serial in colon hex, key algorithm and size, certificate SHA-1, "This etoken
was (not) used to sign" for SAST records) — the same rendering as ``phoneemu inspect``
(:mod:`phoneemu.inspection`). Then the rest of §G.1: the accepted config (file, rule, TVS and
CAPF servers with ports, capfAuthMode), MIC and LSC (subject, issuer, serial, validity, MD5/SHA-1),
whether a manual config key is set (never the key), the running load and the TVS cache size
(RAM only: a flash directory shows 0). A missing list reads like CUCM: "Length of ITL file: 0".

A phone at rest is as its last boot left it: given that boot's report (``last-boot.json`` of the flash),
``locked``/``locked_by`` also say what that boot locked (the flag itself is RAM only), and a
``Last boot`` line says when, against what, how it ended and the deciding decision.

Whose lists the phone holds (``signed_by_lab``, :mod:`phoneemu.phone.lab_signers`): a lab's, or a
cluster's that is not one — then a locked phone's ways out name no lab command, as ``boot`` without
``--lab`` says them (the flash keeps the cluster's address only); unknown (null) without a list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from phoneemu.crypto import certs, keys
from phoneemu.errors import PhoneEmuError
from phoneemu.inspection import inspect_bytes, render_text
from phoneemu.phone.lab_signers import LabSigners, not_a_lab_fill
from phoneemu.phone.store import Credential, TrustStore
from phoneemu.phone.ways_out import (
    HeldLists,
    legend_lines,
    no_way_out,
    no_way_out_lines,
    phone_placeholders_left,
    tvs_back_fill,
    way_out_lines,
    ways_json_said,
    ways_out_json,
)
from phoneemu.values import host_port

__all__ = ["last_boot_tvs_fill", "render_show", "show_state"]


def _credential(cred: Credential | None) -> dict[str, Any] | None:
    if cred is None:
        return None
    try:
        cert = cred.cert()
        key = certs.cert_public_key(cert)
    except PhoneEmuError as exc:
        return {"error": str(exc)}
    return {
        "subject": certs.dn_text(cert.subject), "issuer": certs.dn_text(cert.issuer),
        "serial": certs.serial_bytes(cert.serial_number).hex(":").upper(),
        "key": keys.key_description(key),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "md5": cred.fingerprint("md5"), "sha1": cred.fingerprint("sha1"),
    }


def show_state(store: TrustStore, *, mac: str | None = None, now: int | None = None,
               last_boot: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything ``phoneemu phone show`` prints, as a JSON-able dict (``last_boot``: module rules)."""
    lists: dict[str, Any] = {}
    for kind in ("CTL", "ITL"):
        tl = store.trust_list(kind)
        if tl is None:
            lists[kind.lower()] = None
            continue
        try:
            rep = inspect_bytes(tl.raw, name=f"{kind}File.tlv", limit=store.profile.trust_list_limit)
        except PhoneEmuError as exc:  # pragma: no cover - installed lists always parsed
            rep = {"error": str(exc)}
        rep["installed_by"] = store.ctl_rule if kind == "CTL" else store.itl_rule
        lists[kind.lower()] = rep
    cfg = store.config
    config_info: dict[str, Any] | None = None
    if cfg is not None:
        c = cfg.config
        config_info = {
            "file": cfg.file, "accepted_by": store.config_rule, "device_name": c.device_name,
            "tvs_servers": [f"{host_port(s.host, s.port)} (priority {s.priority})" for s in c.tvs_servers],
            "capf_servers": [f"{host_port(s.host, s.port)} (priority {s.priority})" for s in c.capf_servers],
            "capf_auth_mode": c.capf_auth_mode, "encr_config": c.encr_config,
            "load_information": c.load_information, "device_security_mode": c.device_security_mode,
        }
    signers = LabSigners()
    for kind in ("CTL", "ITL"):
        held = store.trust_list(kind)
        if held is not None:
            signers.saw(held.raw, f"{kind}File.tlv")
    tvs_entries = store.expire_tvs(now) if now is not None else store.tvs_cache_size
    locked_by = set(store.locked_by)
    if last_boot is not None and last_boot.get("locked_out") is True:
        by = last_boot.get("locked_by")
        locked_by |= {k for k in by if isinstance(k, str)} if isinstance(by, list) else set()
    locked = store.locked or bool(last_boot is not None and last_boot.get("locked_out") is True)
    last = last_boot or {}
    ways = ways_out_json(last.get("deciding_rule"), last.get("deciding_kind"), reason_code=_reason_code(last),
                         held=_held(lists, last)) if locked else []
    if ways:  # bringing TVS back: OLD's TVS where the text says it (render_show)
        ways = ways_json_said(ways, last_boot_tvs_fill([last]))
    why_none = no_way_out(last.get("deciding_rule"), last.get("deciding_kind")) if locked else None
    return {
        "mac": mac, "profile": store.profile.name, "ctl": lists["ctl"], "itl": lists["itl"],
        "itl_checksum": store.itl_checksum(), "ctl_checksum": store.ctl_checksum(),
        "checksum_style": store.profile.status_checksum,
        "config": config_info, "mic": _credential(store.mic), "lsc": _credential(store.lsc),
        "symmetric_key_set": store.symmetric_key is not None, "capf_auth_mode": store.capf_auth_mode,
        "running_load": store.firmware_load, "tvs_cache_entries": tvs_entries, "locked": locked,
        "locked_by": sorted(locked_by),  # the refused kinds (CTL, ITL) that keep the phone locked
        "last_boot": last_boot, "ways_out": ways,
        "no_way_out": why_none,  # why a lockout has no documented way out (phone.ways_out.NO_WAY_OUT)
        "signed_by_lab": signers.verdict,  # false: no lab command in the ways out (module doc)
    }


def _held(lists: dict[str, Any], last_boot: Mapping[str, Any] | None) -> HeldLists:
    """What the phone holds (a CTL; the rollback ITL), as its JSON says it (``ctl``, ``itl.empty_itl``):
    its ways out, text and JSON alike (:func:`phoneemu.phone.ways_out.ways_out`; was: the JSON the table's,
    the rollback ways too, for a phone holding a CTL, while the text read the lists from the flash); and
    whether they lack the signer of the bulk ITL reset, as its last boot found (``last-boot.json``'s
    ``reset_signer_held``: false; was not kept, the reset offered again — one without it: not known), and
    the CTL reset's (``ctl_reset_signer_held``: false; was not kept, ``lab ctl-reset`` offered again)."""
    itl = lists.get("itl")
    untrusted = last_boot is not None and last_boot.get("reset_signer_held") is False
    ctl_untrusted = last_boot is not None and last_boot.get("ctl_reset_signer_held") is False
    return HeldLists.of(lists.get("ctl") is not None, isinstance(itl, dict) and itl.get("empty_itl") is True,
                        untrusted, ctl_untrusted)


def _reason_code(last_boot: dict[str, Any]) -> str | None:
    """The deciding reason code ``last-boot.json`` keeps (none in a flash of an older phoneemu)."""
    code = last_boot.get("deciding_reason_code")
    return code if isinstance(code, str) else None


def _cred_lines(label: str, info: dict[str, Any] | None) -> list[str]:
    if info is None:
        return [f"{label}: none"]
    if "error" in info:
        return [f"{label}: unreadable ({info['error']})"]
    return [f"{label}:", f"  Subject:   {info['subject']}", f"  Issuer:    {info['issuer']}",
            f"  Serial:    {info['serial']}", f"  Key:       {info['key']}",
            f"  Validity:  {info['not_before']} .. {info['not_after']}",
            f"  Checksum:  {info['md5']}(MD5)  {info['sha1']}(SHA1)"]


def _last_boot_text(last: dict[str, Any]) -> str:
    import datetime as dt

    at = last.get("at")
    when = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") \
        if isinstance(at, int) and 0 <= at < 253402300800 else "?"
    raw = last.get("trust")
    trust: dict[str, Any] = raw if isinstance(raw, dict) else {}
    lists = ", ".join(f"{k} {v}" for k, v in sorted(trust.items()))
    verdict = "OK" if last.get("ok") else "FAILED" + (", locked out" if last.get("locked_out") else "")
    return (f"{when} against {last.get('target') or '?'}: {verdict}; {lists}; config "
            f"{last.get('config') or '?'}" + (f" ({last['config_file']})" if last.get("config_file") else ""))


def _locked_line(locked_by: list[str], last: dict[str, Any]) -> str:
    """What locked the phone, as refused: a trust list (spec §G.3.5: "Trust List update failed", the phone
    ignores configuration changes), or its config, whose signer its lists and TVS do not vouch for (§G.4:
    the config it held is kept). Was "Trust List update failed (a trust list refused)" also for a refused
    config, ``locked_by`` empty. Locked until it accepts a trust list at a reset, or its lists are erased: a
    reset (a reboot) while the cause remains fetches the same list and refuses it again (§G.3 step 5; was
    "until that list installs, an erase or a reboot")."""
    kind = last.get("deciding_kind")
    kinds = locked_by or ([kind] if kind in ("CTL", "ITL") else [])
    if kinds:
        return (f"  Trust List update failed ({' and '.join(kinds)} refused): the phone ignores "
                "configuration changes (locked until it accepts a trust list at a reset, or its CTL and ITL "
                "are erased; a reset while the cause remains refuses the same list again)")
    rule = last.get("deciding_rule")
    if kind == "config":
        what = ", ".join(str(x) for x in (last.get("config_file"), rule) if x) or "its config file"
        return (f"  Config refused ({what}): the phone keeps the config it held before, and takes none whose "
                "signer its CTL/ITL or TVS does not vouch for")
    return f"  Locked out ({rule or 'the refused file is not known: a flash of an older phoneemu'})"


def _placeholder_legend(last: dict[str, Any], fill: dict[str, str], where: str, *,
                        held: HeldLists) -> list[str]:
    """Said once under a locked phone's ways out: each placeholder their commands leave, what it stands for
    and why it is left (:func:`phoneemu.phone.ways_out.legend_lines`, as a fleet's ``phone show
    --fleet-flash`` says them; was ``DIR`` and ``OLD`` bare): the flash keeps its last boot's address, not
    the lab folder."""
    lab = f"not known to phone show: the lab serving {where}, where its last boot went"
    why = {"DIR": lab, "NEW": lab, "OLD": "not known to phone show: the cluster the phone came from"}
    left = phone_placeholders_left(last["deciding_rule"], last["deciding_kind"], fill,
                                   reason_code=_reason_code(last), held=held)
    return legend_lines(left, why, "not known to phone show", indent="  ")


def last_boot_tvs_fill(last_boots: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Bringing TVS back for phones at rest, from their last boots as the flash keeps them
    (``last-boot.json``: the deciding rule and line, the address booted against): ``DIR`` (the lab serving
    that address, no lab folder known) only when the TVS they could not reach is at that address, else ``OLD``
    (:func:`phoneemu.phone.ways_out.tvs_back_fill`: ``phone show --flash`` and ``--fleet-flash``; was ``lab
    service DIR tvs start`` with the TVS of the cluster the phones left down, DIR said to be the lab they
    moved to)."""
    decided: list[tuple[object, object]] = []
    hosts: set[str] = set()
    for last in last_boots:
        target = last.get("target")
        if isinstance(target, str) and target:
            decided.append((last.get("deciding_rule"), last.get("deciding")))
            hosts.add(target)
    return tvs_back_fill(None, decided, hosts=hosts)


def render_show(info: dict[str, Any], flash: str | None = None) -> str:
    """The text form of :func:`show_state`; ``flash``: the folder shown, filled into the lab commands
    of a locked phone's ways out (:mod:`phoneemu.phone.ways_out`)."""
    out: list[str] = []
    for kind in ("CTL", "ITL"):
        rep = info[kind.lower()]
        if rep is None:
            out += [f"Length of {kind} file: 0", f"{kind} File not found on the phone.", ""]
            continue
        if "error" in rep:
            out += [f"{kind} file unreadable: {rep['error']}", ""]
            continue
        out += [render_text(rep), f"Installed by rule: {rep.get('installed_by') or '-'}", ""]
    out.append(f"Phone {info['mac'] or '?'} (profile {info['profile']})")
    if info["itl_checksum"]:
        style = info["checksum_style"].upper()
        out.append(f"  ITL checksum shown/reported: {info['itl_checksum']} ({style}); compare with the "
                   "cluster's 'show itl'")
    if info["ctl_checksum"]:
        style = info["checksum_style"].upper()
        out.append(f"  CTL checksum shown: {info['ctl_checksum']} ({style}); compare with the cluster's "
                   "'show ctl'")
    cfg = info["config"]
    if cfg is None:
        out.append("  Config: none accepted")
    else:
        out += [f"  Config: {cfg['file']} (accepted by {cfg['accepted_by']})",
                f"    TVS servers:  {', '.join(cfg['tvs_servers']) or 'none'}",
                f"    CAPF servers: {', '.join(cfg['capf_servers']) or 'none'}",
                f"    capfAuthMode: {cfg['capf_auth_mode']}  encrConfig: {cfg['encr_config']}  "
                f"deviceSecurityMode: {cfg['device_security_mode']}"]
    out.append(f"  Running load: {info['running_load'] or '(none)'}")
    out.append(f"  Manual config key: {'set' if info['symmetric_key_set'] else 'not set'}")
    n = info["tvs_cache_entries"]
    out.append(f"  TVS cache: {n} entr{'y' if n == 1 else 'ies'} (RAM only)")
    last = info.get("last_boot")
    if last is not None:
        out.append(f"  Last boot: {_last_boot_text(last)}")
        if last.get("deciding"):
            out.append(f"    deciding: {last['deciding']}")
    if info["locked"]:
        out.append(_locked_line(info["locked_by"], last or {}))
        if info.get("ways_out") and last is not None:  # absent in an older flash: none said
            where = str(last.get("target") or "the cluster of its lists")
            fill = {**({"FLASH": flash} if flash is not None else {}),
                    **({"MAC": info["mac"]} if info["mac"] else {}),  # (no MAC in a lockout's ways yet)
                    **not_a_lab_fill(info.get("signed_by_lab"), where),  # not a lab's lists: no lab command
                    **last_boot_tvs_fill([last])}  # bringing TVS back: DIR's own TVS, or OLD's
            out += way_out_lines(last["deciding_rule"], last["deciding_kind"], indent="  ", fill=fill,
                                 reason_code=_reason_code(last), held=_held(info, last))
            out += _placeholder_legend(last, fill, where, held=_held(info, last))
        if info.get("no_way_out") and last is not None:
            out += no_way_out_lines(last["deciding_rule"], last["deciding_kind"], indent="  ")
    out += ["  " + line for line in _cred_lines("MIC", info["mic"])]
    out += ["  " + line for line in _cred_lines("LSC", info["lsc"])]
    return "\n".join(out) + "\n"

