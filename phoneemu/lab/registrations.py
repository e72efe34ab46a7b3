"""What phones told the lab registrar of their ITL: CUCM's "ITL File Status" per phone (spec §G.1).

Spec §G.1: a phone reports its installed ITL's hash at registration and CUCM shows, per phone,
**Match**, **MisMatch**, **Not Installed** or **Unknown** against the ITL it serves now. The report's
form is [UNK]; ours: the REGISTER carries ``X-Phoneemu-ITL-Hash: <the checksum the phone shows>`` (MD5
or SHA-1 by model, §H.4) or ``none``. The lab registrar keeps the last report of each device;
``lab serve`` writes them to ``DIR/registrations.json`` (atomically, at most once per watch interval)
so that ``lab show`` — another process — shows the status. A phone that never registered is Unknown;
a file that cannot be read is no reports (``lab show`` says so), never an error of ``lab show``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from phoneemu import json_doc
from phoneemu.errors import PhoneEmuError
from phoneemu.files import read_at_most, write_output

__all__ = ["ITL_HASH_HEADER", "REGISTRATIONS_FILE", "itl_file_status", "read_registrations",
           "reported_itl", "write_registrations"]

ITL_HASH_HEADER = "X-Phoneemu-ITL-Hash"
REGISTRATIONS_FILE = "registrations.json"
_MAX_FILE = 64 << 20  # 100,000 phones' reports fit many times over


_REPORT_RE = re.compile(r"none|[0-9a-fA-F]{32}|[0-9a-fA-F]{40}")


def reported_itl(value: str | None) -> str | None:
    """The ITL report of a REGISTER's header (``none`` or an MD5 / SHA-1 hex checksum, lower-cased);
    None when absent or not one (a report the registrar cannot use is no report)."""
    if value is None or not _REPORT_RE.fullmatch(value.strip()):
        return None
    return value.strip().lower()


def itl_file_status(reported: str | None, current: Mapping[str, str] | None) -> str:
    """CUCM's words for a phone's report against the served ITL's checksums (``{"md5", "sha1"}``, None
    when the cluster serves none): ``Unknown`` (no report), ``Not Installed``, ``Match``, ``MisMatch``."""
    if reported is None:
        return "Unknown"
    if reported == "none":
        return "Not Installed"
    return "Match" if current is not None and reported.lower() in current.values() else "MisMatch"


def write_registrations(root: Path, reports: Mapping[str, tuple[str, int]]) -> None:
    """``DIR/registrations.json``: MAC -> {"itl": reported, "at": unix time}, written whole (by
    :func:`phoneemu.json_doc.dumps`: a strict JSON reader takes it)."""
    doc = {mac: {"itl": itl, "at": at} for mac, (itl, at) in sorted(reports.items())}
    write_output(root / REGISTRATIONS_FILE, (json_doc.dumps(doc, indent=0) + "\n").encode())


def read_registrations(root: Path) -> tuple[dict[str, tuple[str, int]], str | None]:
    """The reports ``lab serve`` last wrote (none when there is no file) and a problem reading it."""
    path = root / REGISTRATIONS_FILE
    try:
        doc: Any = json_doc.loads(read_at_most(path, _MAX_FILE, what=REGISTRATIONS_FILE).decode("utf-8"))
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError) as exc:  # not UTF-8, not JSON (deep nesting too: json_doc)
        return {}, f"{path}: unreadable ({exc}); ITL File Status shown as Unknown"
    except PhoneEmuError as exc:  # over the size limit
        return {}, f"{path}: {exc}; ITL File Status shown as Unknown"
    if not isinstance(doc, dict):
        return {}, f"{path}: not a JSON object"
    out = {}
    for mac, rep in doc.items():
        if isinstance(rep, dict) and isinstance(rep.get("itl"), str) and isinstance(rep.get("at"), int):
            out[str(mac).upper()] = (rep["itl"], rep["at"])
    return out, None
