"""What a phone holds before the files it is given: ``--installed-itl/-ctl/-config[-key]`` and
``--flash DIR``, shared by ``predict`` (before the new files) and ``replay`` (before the capture).

Rules: an option given wins over the ``--flash`` phone's file; the flash also gives the MAC and the
profile when ``--mac`` / ``--profile`` are not given (its ``phone.json``). The lists and config are
read and checked by :func:`phoneemu.scenario.predict.load_installed` (module rules there). A file given
as a flash (``--flash FILE``, ``--fleet-flash FILE``: a downloaded ITL, a config, a DER certificate; a
named pipe, a socket, a device, a link to nothing) is said as what it is, in every command's words alike
(:func:`file_not_flash`).
"""

from __future__ import annotations

import argparse
import stat
from pathlib import Path
from typing import Any

from phoneemu.errors import PhoneEmuError

__all__ = ["add_installed_options", "file_not_flash", "fill_from_flash", "installed_config_key",
           "refuse_file_as_flash"]

#: a file given as a flash is read to say what it is: at most this many bytes (far above any trust list's
#: limit; a larger one is "a file")
MAX_SNIFFED = 4 << 20


def add_installed_options(p: Any, *, when: str) -> None:
    """``--installed-*`` and ``--flash``; ``when`` says before what (``"now"``, ``"before the capture"``)."""
    p.add_argument("--installed-itl", type=Path, metavar="FILE", help=f"the ITL the phone holds {when}")
    p.add_argument("--installed-ctl", type=Path, metavar="FILE", help=f"the CTL the phone holds {when}")
    p.add_argument("--installed-config", type=Path, metavar="FILE",
                   help=f"the phone's config {when} (.cnf.xml.sgn or .cnf.xml): names its TVS servers; "
                   "without it TVS is not usable")
    p.add_argument("--installed-config-key", type=Path, metavar="PEM",
                   help="the phone's private key (its LSC key, else its MIC key) when --installed-config "
                   "is an encrypted .enc.sgn")
    p.add_argument("--flash", type=Path, metavar="DIR",
                   help="an emulated phone's flash (boot/fleet boot --flash): its ITL, CTL and config are "
                   "the installed ones, its MAC and profile the defaults (--installed-*, --mac, --profile "
                   "win); the phone holds its MIC, LSC and manual key, to decrypt encrypted configs "
                   "(the flash is read, never changed)")


def fill_from_flash(args: argparse.Namespace) -> list[str]:
    """Fill the installed lists, config, MAC and profile the user did not give from ``--flash DIR``;
    returns the flash's problems. A flash file the phone would not load (above its profile's limit, not
    parsing, a config its ``state.json`` does not vouch for) is left out, as its boot leaves it out
    (:meth:`phoneemu.phone.flash.Flash.held_files`): the phone is predicted or replayed holding what it
    would hold, and each such file is named in a note. The flash's ``config.xml`` is then installed under
    the name its ``state.json`` records (:func:`phoneemu.scenario.predict.installed_config`), as the
    boot restores it: a locked phone served its unchanged config decides as it does live (§G.3.5)."""
    from phoneemu.phone.flash import Flash, not_loaded_notes
    from phoneemu.phone.phone import read_phone_file
    from phoneemu.phone.profile import get_profile

    d: Path = args.flash
    refuse_file_as_flash(d, "--flash")
    if not d.is_dir():
        raise PhoneEmuError(f"{d}: no such flash directory (an emulated phone's, from boot --flash)",
                            path="flash")
    ident = read_phone_file(d)
    if args.mac is None and isinstance(ident.get("mac"), str):
        args.mac = ident["mac"]
    if args.profile is None and isinstance(ident.get("profile"), str):
        args.profile = ident["profile"]
    flash = Flash(d, profile=get_profile(args.profile or "cp-8861"))
    held = flash.held_files()
    for attr, key in (("installed_itl", "itl"), ("installed_ctl", "ctl"), ("installed_config", "config")):
        if getattr(args, attr) is None:
            setattr(args, attr, held[key])
    return not_loaded_notes(d, flash.problems)


def file_not_flash(path: Path, *, fleet: bool = False) -> str | None:
    """What a file given as a phone's flash is (``--flash FILE``; ``fleet``: as a folder of phones' flashes,
    ``--fleet-flash FILE``), in a downloaded ITL's, config's, DER certificate's or key's words
    (:func:`phoneemu.formats.detect.what_it_is`), and that ``phoneemu inspect FILE`` reads it (was "no such
    flash directory" / "no such folder", as if nothing were there); a named pipe, socket, device or link to
    nothing as that (:func:`_special_kind`: never opened; was "no such flash directory" too). None for a
    folder or a missing path (which keeps its "no such ..." of each command)."""
    import shlex

    from phoneemu.files import read_at_most
    from phoneemu.formats.detect import what_it_is

    instead = ("a folder of phone flashes (fleet boot --flash DIR makes one)" if fleet else
               "a phone's flash directory (boot --flash DIR makes one)")
    special = _special_kind(path)
    if special is not None:
        return f"{path}: {special}, not {instead}"
    if not path.is_file():
        return None
    try:
        what = what_it_is(read_at_most(path, MAX_SNIFFED, what="file"), path.name)
    except (OSError, PhoneEmuError):  # unreadable, too large or of no format known: still not a flash
        what = "a file"
    reads = "names it and what to do with it" if what.startswith("a DER file") else \
        "decodes the files a phone downloads" if what == "a file" else "decodes it"
    return f"{path}: {what}, not {instead}: phoneemu inspect {shlex.quote(str(path))} {reads}"


#: what a path that is neither a folder nor a regular file is, by its ``st_mode`` test
_SPECIAL_KINDS = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                  (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _special_kind(path: Path) -> str | None:
    """What ``path`` is when it is there but is neither a folder nor a regular file (a named pipe, a socket,
    a device, a symbolic link to nothing), from its status alone (a FIFO is never opened: that waits for a
    writer); None otherwise, or when its status cannot be read (a missing path, one under a file)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "a link to nothing" if path.is_symlink() else None
    except OSError:
        return None
    return next((what for test, what in _SPECIAL_KINDS if test(mode)), None)


def refuse_file_as_flash(path: Path, option: str, *, fleet: bool = False) -> None:
    """A regular file given as ``option`` (``--flash``; ``fleet``: a folder of phones' flashes, as
    ``--fleet-flash`` or ``fleet boot --flash`` take): PhoneEmuError ``OPTION FILE: what it is, not ...``
    (:func:`file_not_flash`), its path the option's name; nothing for anything else (a folder, a missing
    path: each command says its own)."""
    given = file_not_flash(path, fleet=fleet)
    if given is not None:
        raise PhoneEmuError(f"{option} {given}", path=option.lstrip("-"))


def installed_config_key(args: argparse.Namespace) -> Any:
    """The ``--installed-config-key`` private key, or None."""
    if args.installed_config_key is None:
        return None
    from phoneemu.crypto.keys import load_private_key_pem
    from phoneemu.files import read_at_most

    return load_private_key_pem(read_at_most(args.installed_config_key, 1 << 20, what="key"),
                                source=str(args.installed_config_key))
