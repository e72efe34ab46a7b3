"""Many phones' flashes in one folder, ``DIR/<MAC>`` as ``fleet boot --flash DIR`` keeps them.

``predict --fleet-flash`` and ``phone show|erase|factory-reset --fleet-flash`` walk them the same way:
every entry of the folder, in name order, is a phone's flash when it is a folder whose ``phone.json``
names a MAC (the model: ``profile`` given, else the one in ``phone.json``, else cp-8861); anything
else is skipped with why, and so is a second folder naming a MAC already seen (each phone counts
once). A folder holding more entries than the limit is refused before anything is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from phoneemu.errors import PhoneEmuError
from phoneemu.phone.phone import PHONE_FILE, read_phone_file

__all__ = ["MAX_FLASHES", "FlashEntry", "fleet_folders", "holds_flashes", "phone_flashes"]

#: most entries one ``--fleet-flash`` folder may hold (as fleet boot's largest run)
MAX_FLASHES = 100_000


@dataclass(frozen=True, slots=True)
class FlashEntry:
    """One entry of a fleet folder: a phone's flash (``mac``, ``profile``), or ``skipped`` with why."""

    entry: str
    path: Path
    mac: str | None = None
    profile: str | None = None
    skipped: str | None = None


def fleet_folders(root: Path, limit: int = MAX_FLASHES, *, what: str = "use",
                  option: str = "--fleet-flash") -> list[Path]:
    """The entries of ``root`` in name order; PhoneEmuError naming ``option`` and ``root`` (``--fleet-flash
    DIR: empty ...``, as other option errors) when it is not a folder, is empty, or holds more than
    ``limit`` entries (``what``: the verb of that message)."""
    if not root.is_dir():
        raise _refused(option, root, "no such folder (one flash folder per phone, as fleet boot --flash "
                       "keeps them)")
    entries: list[Path] = []
    try:
        with os.scandir(root) as it:
            for e in it:
                entries.append(root / e.name)
                if len(entries) > limit:
                    raise _refused(option, root, f"more than {limit} entries; {what} at most {limit} "
                                   "phones at once (split the folder)")
    except OSError as exc:
        raise _refused(option, root, f"cannot list: {exc.strerror or exc}") from None
    if not entries:
        raise _refused(option, root, "empty (no phone flash folder in it)")
    return sorted(entries)


def _refused(option: str, root: Path, why: str) -> PhoneEmuError:
    """``OPTION DIR: why``, its path the option's name (``fleet-flash``): said once, as the user typed it."""
    return PhoneEmuError(f"{option} {root}: {why}", path=option.lstrip("-"))


def phone_flashes(root: Path, *, profile: str | None = None, limit: int = MAX_FLASHES,
                  what: str = "use", option: str = "--fleet-flash") -> list[FlashEntry]:
    """Every entry of ``root`` (:func:`fleet_folders`, its errors naming ``option``), each a phone's flash
    or skipped (module rules)."""
    out: list[FlashEntry] = []
    seen: dict[str, str] = {}  # MAC -> the folder that named it first
    for d in fleet_folders(root, limit, what=what, option=option):
        if not d.is_dir():
            out.append(FlashEntry(d.name, d, skipped="not a folder (not a phone's flash)"))
            continue
        try:
            ident = read_phone_file(d)
        except PhoneEmuError as exc:
            out.append(FlashEntry(d.name, d, skipped=str(exc)))
            continue
        mac, prof = ident.get("mac"), profile or ident.get("profile") or "cp-8861"
        if not isinstance(mac, str):
            out.append(FlashEntry(d.name, d, skipped=f"no {PHONE_FILE} naming the phone's MAC (not a "
                                  "phone's flash: boot --flash / fleet boot --flash keep one)"))
            continue
        if not isinstance(prof, str):
            out.append(FlashEntry(d.name, d, mac=mac, skipped=f"{PHONE_FILE}: profile is not a name"))
            continue
        if mac.upper() in seen:
            out.append(FlashEntry(d.name, d, mac=mac, skipped=f"MAC {mac} already counted from "
                                  f"{seen[mac.upper()]!r} (each phone counts once)"))
            continue
        seen[mac.upper()] = d.name
        out.append(FlashEntry(d.name, d, mac=mac, profile=prof))
    return out


def holds_flashes(folder: Path, *, sample: int = 64) -> int:
    """How many of the first ``sample`` entries of ``folder`` are phones' flashes (a ``phone.json`` of
    their own) when ``folder`` itself has none: 0 for a phone's own flash or anything else. Tells a
    fleet folder given as one phone's ``--flash``."""
    if (folder / PHONE_FILE).exists():
        return 0
    n = 0
    try:
        with os.scandir(folder) as it:
            for i, e in enumerate(it):
                if i >= sample:
                    break
                n += (folder / e.name / PHONE_FILE).is_file()
    except OSError:
        return 0
    return n
