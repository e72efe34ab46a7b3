"""``phoneemu phone``: look at and change an emulated phone's flash (spec §G.1, §G.6, §C.5, §H.4).

* ``phone show --flash DIR [--json]`` — ``show itl`` / ``show ctl``-style view of the stored trust
  lists (checksums, every record), the accepted config, MIC/LSC, running load, TVS cache.
* ``phone erase --flash DIR`` — Settings → erase CTL and ITL ("Erasing CTL and ITL files").
* ``phone factory-reset --flash DIR`` — forget everything but the MIC.
* ``phone set-key --flash DIR HEX`` — "Set Cfg Encrypt Key" (32 zero digits clear it, spec §C.5) on a
  model with a manual key (cp-7962, cp-7942-symmetric).

The profile comes from ``--profile``, else the flash's ``phone.json``, else cp-8861. Exit 0 on
success, 2 when the directory or an argument is wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from phoneemu.phone.flash import Flash
from phoneemu.phone.phone import Phone, read_phone_file
from phoneemu.phone.profile import PROFILES, PhoneProfile, get_profile
from phoneemu.phone.show import render_show, show_state

__all__ = ["register"]


_EPILOG = """\
examples:
  phoneemu phone show --flash /tmp/ph1                 'show itl' view with MD5/SHA-1 checksums
  phoneemu phone show --flash /tmp/ph1 --json
  phoneemu phone erase --flash /tmp/ph1                the documented escape from an ITL lockout
  phoneemu phone factory-reset --flash /tmp/ph1
  phoneemu phone set-key --flash /tmp/ph2 00112233445566778899AABBCCDDEEFF
                     a manual-key model's flash (boot --profile cp-7942-symmetric --flash /tmp/ph2 first;
                     a cp-8861 has no manual key)
"""


def register(sub: Any) -> None:
    p = sub.add_parser("phone", help="show or change an emulated phone's flash (show, erase, "
                       "factory-reset, set-key)", description=__doc__.split("\n\n")[1] if __doc__ else None,
                       epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    psub = p.add_subparsers(dest="phone_command", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--flash", type=Path, required=True, metavar="DIR", help="phone flash directory")
        q.add_argument("--profile", metavar="NAME",
                       help=f"phone model profile ({', '.join(sorted(PROFILES))}); default: the one in the "
                       "flash's phone.json, else cp-8861")

    q = psub.add_parser("show", help="show the stored trust state (show itl / show ctl style)")
    common(q)
    q.add_argument("--json", action="store_true", help="print one JSON document")
    q.set_defaults(handler=_show)
    q = psub.add_parser("erase", help="erase CTL and ITL (Settings menu)")
    common(q)
    q.set_defaults(handler=_erase)
    q = psub.add_parser("factory-reset", help="forget everything but the MIC")
    common(q)
    q.set_defaults(handler=_reset)
    q = psub.add_parser("set-key", help="set (or with 32 zero digits clear) the manual config key")
    common(q)
    q.add_argument("key", metavar="HEX",
                   help="the key in hex, as long as the model's keys: 32 digits (AES-128; 64 where "
                   "symmetric_key_bits is 256); zeros clear it")
    q.set_defaults(handler=_set_key)


def _profile(args: argparse.Namespace) -> PhoneProfile:
    name = args.profile  # --profile "": refused by get_profile, not taken as "not given"
    if name is None:
        name = read_phone_file(args.flash).get("profile") or "cp-8861"
    return get_profile(str(name))


def _existing(args: argparse.Namespace) -> bool:
    """A missing flash folder is an error that says which command makes one (every action needs one)."""
    if not args.flash.is_dir():
        print(f"phoneemu phone: {args.flash}: no such flash directory (an emulated phone's flash is made "
              "by boot --flash DIR)", file=sys.stderr)
        return False
    return True


def _phone(args: argparse.Namespace) -> Phone:
    return Phone.from_flash(args.flash, profile=_profile(args), clock=lambda: 0)


def _show(args: argparse.Namespace) -> int:
    if not _existing(args):
        return 2
    profile = _profile(args)
    flash = Flash(args.flash, profile=profile)
    store = flash.load()
    info = show_state(store, mac=read_phone_file(args.flash).get("mac"), last_boot=flash.last_boot())
    info["flash_problems"] = list(flash.problems)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        sys.stdout.write(render_show(info, str(args.flash)))
        for problem in flash.problems:
            print(f"  flash problem: {problem}")
    return 0


def _erase(args: argparse.Namespace) -> int:
    if not _existing(args):
        return 2
    print(_phone(args).erase_trust())
    return 0


def _reset(args: argparse.Namespace) -> int:
    if not _existing(args):
        return 2
    _phone(args).factory_reset()
    print("Factory reset: everything but the MIC erased")
    return 0


def _set_key(args: argparse.Namespace) -> int:
    if not _existing(args):
        return 2
    phone = _phone(args)
    phone.set_symmetric_key(args.key)
    print("Manual config key " + ("set" if phone.store.symmetric_key is not None else "cleared"))
    return 0
