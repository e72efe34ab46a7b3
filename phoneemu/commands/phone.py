"""``phoneemu phone``: look at and change an emulated phone's flash (spec §G.1, §G.6, §C.5, §H.4).

* ``phone show --flash DIR [--json]`` — ``show itl`` / ``show ctl``-style view of the stored trust
  lists (checksums, every record), the accepted config, MIC/LSC, running load, TVS cache.
* ``phone erase --flash DIR`` — Settings → erase CTL and ITL ("Erasing CTL and ITL files").
* ``phone factory-reset --flash DIR`` — forget everything but the MIC.
* ``phone set-key --flash DIR HEX`` — "Set Cfg Encrypt Key" (32 zero digits clear it, spec §C.5) on a
  model with a manual key (cp-7962, cp-7942-symmetric).
* ``--fleet-flash DIR`` instead of ``--flash`` (show, erase, factory-reset): every phone's flash
  ``DIR/<MAC>`` as ``fleet boot --flash DIR`` keeps them. ``show`` groups the phones by the ITL and CTL
  each holds (``--cluster``: whether it is the cluster's current one, CUCM's ITL File Status), the
  config each accepted and how its last boot ended, with the ways out of the lockouts; ``erase`` is the
  last way out of a lockout done for the whole fleet.

The profile comes from ``--profile``, else the flash's ``phone.json``, else cp-8861. Exit 0 on
success, 1 when a phone of a fleet could not be changed, 2 when the directory or an argument is wrong.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phoneemu import json_doc
from phoneemu.commands._installed import file_not_flash, refuse_file_as_flash
from phoneemu.commands._said import say
from phoneemu.errors import PhoneEmuError
from phoneemu.files import read_at_most

if TYPE_CHECKING:  # the phone and its flash are imported where an action runs (start-up time)
    from phoneemu.phone.flashes import FlashEntry
    from phoneemu.phone.phone import Phone
    from phoneemu.phone.profile import PhoneProfile

__all__ = ["register"]

#: a trust list read for --cluster: at most this many bytes (far above any phone's limit)
MAX_TRUST_FILE = 4 << 20


_EPILOG = """\
examples:
  phoneemu phone show --flash /tmp/ph1                 'show itl' view with MD5/SHA-1 checksums
  phoneemu phone show --flash /tmp/ph1 --json
  phoneemu phone erase --flash /tmp/ph1                the documented escape from an ITL lockout
  phoneemu phone factory-reset --flash /tmp/ph1
  phoneemu phone set-key --flash /tmp/ph2 00112233445566778899AABBCCDDEEFF
                     a manual-key model's flash (boot --profile cp-7942-symmetric --flash /tmp/ph2 first;
                     a cp-8861 has no manual key)
  phoneemu phone show --fleet-flash /tmp/fleet --cluster /tmp/lab
                     the flashes fleet boot --flash /tmp/fleet kept: which phones hold the lab's current
                     ITL and CTL, which an older one, how their last boots ended
  phoneemu phone erase --fleet-flash /tmp/fleet      erase CTL and ITL on every phone of the fleet

exit status: 0 done; 1 a phone of a fleet (--fleet-flash) could not be changed; 2 the folder or an
argument is wrong; 130 interrupted. Each action's --help says its own.
"""


#: each action's exit statuses, under its --help (what its handler returns; an error of the project or a
#: file that cannot be read or written: 2, :func:`phoneemu.cli._handled`; Ctrl-C or SIGTERM: 130)
_EXIT_STATUS = {
    "show": "exit status: 0 shown; 2 the flash folder, --fleet-flash folder, --cluster or --profile is wrong "
            "(one line on stderr); 130 interrupted.",
    "erase": "exit status: 0 erased; 1 (--fleet-flash) a phone's flash could not be changed (listed under "
             "'failed:', the others erased); 2 the folder or --profile is wrong, or --fleet-flash holds no "
             "phone's flash (one line on stderr); 130 interrupted.",
    "factory-reset": "exit status: 0 reset; 1 (--fleet-flash) a phone's flash could not be changed (listed "
                     "under 'failed:', the others reset); 2 the folder or --profile is wrong, or "
                     "--fleet-flash holds no phone's flash (one line on stderr); 130 interrupted.",
    "set-key": "exit status: 0 key set or cleared; 2 the flash folder, --profile or the key is wrong (one "
               "line on stderr; a model without a manual key too); 130 interrupted.",
}


def _examples(action: str) -> str:
    """The examples of ``_EPILOG`` for one action, each with its continuation lines, then the action's exit
    statuses (:data:`_EXIT_STATUS`), as that action's ``--help`` epilog (was: ``phone show --help`` had no
    examples, no action's help an exit status)."""
    entries: list[list[str]] = []
    for line in _EPILOG.splitlines()[1:]:
        if not line:  # the examples end (the exit statuses follow)
            break
        if line.startswith("  phoneemu "):
            entries.append([line])
        elif entries:
            entries[-1].append(line)
    chosen = [e for e in entries if e[0].startswith(f"  phoneemu phone {action} ")]
    return "\n".join(["examples:", *(line for entry in chosen for line in entry), "",
                      _EXIT_STATUS[action]]) + "\n"


def register(sub: Any) -> None:
    from phoneemu.phone.profile_names import PROFILE_NAMES  # the names in --profile's help

    p = sub.add_parser("phone", help="show or change an emulated phone's flash (show, erase, "
                       "factory-reset, set-key)", description=__doc__.split("\n\n")[1] if __doc__ else None,
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    psub = p.add_subparsers(dest="phone_command", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser, *, fleet: bool = True) -> None:
        where = q.add_mutually_exclusive_group(required=True)
        where.add_argument("--flash", type=Path, metavar="DIR", help="phone flash directory")
        if fleet:
            where.add_argument("--fleet-flash", type=Path, metavar="DIR",
                               help="every phone's flash DIR/<MAC> (as fleet boot --flash DIR keeps them)")
        q.add_argument("--profile", metavar="NAME",
                       help=f"phone model profile ({', '.join(sorted(PROFILE_NAMES))}); default: the one in "
                       "the flash's phone.json, else cp-8861")

    q = psub.add_parser("show", help="show the stored trust state (show itl / show ctl style)",
                        epilog=_examples("show"), formatter_class=argparse.RawDescriptionHelpFormatter)
    common(q)
    q.add_argument("--json", action="store_true", help="print one JSON document")
    q.add_argument("--cluster", type=Path, metavar="PATH",
                   help="with --fleet-flash: compare each phone's ITL and CTL checksums with the cluster's "
                   "current lists (CUCM's ITL File Status, match / mismatch): a lab folder, or a folder "
                   "holding the ITLFile.tlv (and CTLFile.tlv) the cluster serves, as tftp get saves them")
    q.set_defaults(handler=_show)
    q = psub.add_parser("erase", help="erase CTL and ITL (Settings menu)",
                        epilog=_examples("erase"), formatter_class=argparse.RawDescriptionHelpFormatter)
    common(q)
    q.set_defaults(handler=_erase)
    q = psub.add_parser("factory-reset", help="forget everything but the MIC",
                        epilog=_examples("factory-reset"),
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    common(q)
    q.set_defaults(handler=_reset)
    q = psub.add_parser("set-key", help="set (or with 32 zero digits clear) the manual config key",
                        epilog=_examples("set-key"), formatter_class=argparse.RawDescriptionHelpFormatter)
    common(q, fleet=False)
    q.add_argument("key", metavar="HEX",
                   help="the key in hex, as long as the model's keys: 32 digits (AES-128; 64 where "
                   "symmetric_key_bits is 256); zeros clear it")
    q.set_defaults(handler=_set_key)


def _profile(args: argparse.Namespace) -> PhoneProfile:
    from phoneemu.phone.phone import read_phone_file
    from phoneemu.phone.profile import get_profile

    name = args.profile  # --profile "": refused by get_profile, not taken as "not given"
    if name is None:
        name = read_phone_file(args.flash).get("profile") or "cp-8861"
    return get_profile(str(name))


def _existing(args: argparse.Namespace) -> bool:
    """A missing flash folder is an error that says which command makes one (every action needs one);
    so is a fleet's folder given as one phone's, and a file, said as what it is (:func:`file_not_flash`)."""
    from phoneemu.phone.flashes import holds_flashes

    if (given := file_not_flash(args.flash)) is not None:
        say(args, given)
        return False
    if not args.flash.is_dir():
        say(args, f"{args.flash}: no such flash directory (an emulated phone's flash is made "
                  "by boot --flash DIR)")
        return False
    if holds_flashes(args.flash):
        say(args, f"{args.flash}: holds phones' flashes ({args.flash}/<MAC>, as fleet boot "
                  f"--flash keeps them), not one: give one of them as --flash, or all with --fleet-flash "
                  f"{args.flash}")
        return False
    return True


def _owned(args: argparse.Namespace) -> bool:
    """:func:`_existing`, and a ``phone.json`` naming the phone's MAC (a command that changes a flash needs
    whose it is): a folder without one is not a phone's flash — said as such, nothing in it touched (was
    "DIR: DIR: no phone.json ...; give --mac", an option these commands do not have)."""
    from phoneemu.phone.phone import PHONE_FILE, read_phone_file

    if not _existing(args):
        return False
    if not isinstance(read_phone_file(args.flash).get("mac"), str):
        say(args, f"{args.flash}: not a phone's flash (no {PHONE_FILE} naming its MAC; boot --flash DIR "
                  "makes one); nothing changed")
        return False
    return True


def _phone(args: argparse.Namespace) -> Phone:
    from phoneemu.phone.phone import Phone

    return Phone.from_flash(args.flash, profile=_profile(args), clock=lambda: 0)


def _fleet(args: argparse.Namespace) -> list[FlashEntry]:
    """The phones' flashes of ``--fleet-flash`` (PhoneEmuError: exit 2 when the folder is wrong)."""
    from phoneemu.phone.flashes import phone_flashes
    from phoneemu.phone.profile import get_profile

    if args.profile is not None:
        get_profile(args.profile)  # a wrong --profile: refused before any flash is touched
    refuse_file_as_flash(args.fleet_flash, "--fleet-flash", fleet=True)
    return phone_flashes(args.fleet_flash, profile=args.profile)


def _show(args: argparse.Namespace) -> int:
    from phoneemu.phone.flash import Flash
    from phoneemu.phone.phone import read_phone_file
    from phoneemu.phone.show import render_show, show_state

    if args.fleet_flash is not None:
        return _show_fleet(args)
    if args.cluster is not None:
        say(args, "--cluster goes with --fleet-flash (one phone's flash: compare the ITL "
                  "checksum phone show prints with the cluster's 'show itl')")
        return 2
    if not _existing(args):
        return 2
    profile = _profile(args)
    flash = Flash(args.flash, profile=profile)
    store = flash.load()
    info = show_state(store, mac=read_phone_file(args.flash).get("mac"), last_boot=flash.last_boot())
    info["flash_problems"] = list(flash.problems)
    if args.json:
        print(json_doc.dumps(info, indent=2, default=str))
    else:
        sys.stdout.write(render_show(info, str(args.flash)))
        for problem in flash.problems:
            print(f"  flash problem: {problem}")
    return 0


def _cluster_lists(path: Path) -> tuple[dict[str, dict[str, str] | None], str | None]:
    """``--cluster PATH``: the checksums of the cluster's current ITL and CTL (a lab's, or the files a
    folder holds) and the lab folder (None for a folder of files)."""
    from phoneemu.lab.state import STATE_FILE

    if (path / STATE_FILE).is_file():
        from phoneemu.lab.cluster import LabCluster

        lab = LabCluster.open(path)
        return {"ITL": lab.checksums("ITL"), "CTL": lab.checksums("CTL")}, str(path)
    if not path.is_dir():
        raise PhoneEmuError(f"{path}: not a folder (a lab folder, or one holding the cluster's ITLFile.tlv)",
                            path="cluster")
    out: dict[str, dict[str, str] | None] = {}
    for kind in ("ITL", "CTL"):
        try:
            data = read_at_most(path / f"{kind}File.tlv", MAX_TRUST_FILE, what=f"{kind}File.tlv")
        except FileNotFoundError:
            out[kind] = None
            continue
        except OSError as exc:
            raise PhoneEmuError(f"{path / f'{kind}File.tlv'}: cannot read: {exc.strerror or exc}",
                                path="cluster") from None
        out[kind] = {"md5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
                     "sha1": hashlib.sha1(data, usedforsecurity=False).hexdigest()}
    if out["ITL"] is None and out["CTL"] is None:
        raise PhoneEmuError(f"{path}: holds neither ITLFile.tlv nor CTLFile.tlv, nor is it a lab folder",
                            path="cluster")
    return out, None


def _show_fleet(args: argparse.Namespace) -> int:
    from phoneemu.phone.show_fleet import fleet_show, render_fleet_show

    entries = _fleet(args)  # the folder first: a wrong one is said before the cluster is read
    current, lab = _cluster_lists(args.cluster) if args.cluster is not None else (None, None)
    doc = fleet_show(entries, root=str(args.fleet_flash), cluster=current,
                     cluster_name=str(args.cluster) if args.cluster is not None else None, lab=lab)
    if args.json:
        print(json_doc.dumps(doc, indent=2))
    else:
        sys.stdout.write(render_fleet_show(doc))
    return 0


def _each_phone(args: argparse.Namespace, change: Callable[[Phone], str], done: str) -> int:
    """``change`` on every phone's flash of ``--fleet-flash``; a line per kind of outcome (``done``: what
    was done, for the phones it said nothing else of), the phones it failed on and the skipped entries."""
    from phoneemu.phone.phone import Phone
    from phoneemu.phone.profile import get_profile
    from phoneemu.phone.show_fleet import FIRST_LISTED

    said: Counter[str] = Counter()
    failed: list[str] = []
    entries = _fleet(args)
    for e in entries:
        if e.skipped is not None or e.mac is None or e.profile is None:
            continue
        try:
            said[change(Phone.from_flash(e.path, profile=get_profile(e.profile), clock=lambda: 0))] += 1
        except PhoneEmuError as exc:
            failed.append(f"{e.entry}: {exc}")
    for message, n in said.most_common():
        print(f"{message}: {n} phone{'s' if n != 1 else ''} ({done})")
    if not said and not failed:
        say(args, f"{args.fleet_flash}: no phone's flash in it ({len(entries)} entries, none "
                  "with a phone.json naming its MAC)")
        return 2
    for what, lines in (("failed", failed), ("skipped", [f"{e.entry}: {e.skipped}" for e in entries
                                                         if e.skipped is not None])):
        if lines:
            print(f"{what}: {len(lines)}")
            print("\n".join(f"  {line}" for line in lines[:FIRST_LISTED]))
            if len(lines) > FIRST_LISTED:
                print(f"  ... and {len(lines) - FIRST_LISTED} more")
    return 1 if failed else 0


def _erase(args: argparse.Namespace) -> int:
    from phoneemu.phone.phone import Phone

    if args.fleet_flash is not None:
        return _each_phone(args, Phone.erase_trust, f"{args.fleet_flash}/<MAC>")
    if not _owned(args):
        return 2
    print(_phone(args).erase_trust())
    return 0


def _reset(args: argparse.Namespace) -> int:
    if args.fleet_flash is not None:
        return _each_phone(args, _factory_reset, f"{args.fleet_flash}/<MAC>")
    if not _owned(args):
        return 2
    print(_factory_reset(_phone(args)))
    return 0


def _factory_reset(phone: Phone) -> str:
    phone.factory_reset()
    return "Factory reset: everything but the MIC erased"


def _set_key(args: argparse.Namespace) -> int:
    if not _owned(args):
        return 2
    phone = _phone(args)
    phone.set_symmetric_key(args.key)
    print("Manual config key " + ("set" if phone.store.symmetric_key is not None else "cleared"))
    return 0
