"""Which model each phone of a site is (``replay --all --models FILE``: a capture does not say it;
``fleet boot --models FILE``: a site's mix of models).

Rules (our convention):

* One phone per line: its MAC (any usual notation, or its device name ``SEP<MAC>``) and its model,
  separated by a comma, semicolon or tab (further columns are ignored) or else by spaces — the
  Device Name and Device Type columns of a CUCM phone export (``SEP001122334455,Cisco 7962``) work
  as they are. Empty lines and ``#`` comments are skipped; a first line whose first field is not a
  MAC is a header and skipped too.
* The model is a profile name (``cp-7962``) or text holding a model number (``Cisco 7962``,
  ``CP-8861``, ``7942``): the profile whose model is ``CP-<number>``. A model phoneemu has no profile
  for keeps the default profile, with a note for that phone (a site has models we do not emulate).
* A MAC given twice, a line without a model, or more than :data:`MAX_LINES` lines is an error naming
  the file and line; the file is read up to :data:`MAX_BYTES`. Text of the file quoted in a message or a
  note has its undecodable bytes and control characters escaped (``\\xff``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from phoneemu.errors import EncodeError, PhoneEmuError
from phoneemu.files import read_at_most
from phoneemu.formats._tlv import printable
from phoneemu.formats.config import normalise_mac
from phoneemu.phone.profile import PROFILES

__all__ = ["MAX_BYTES", "MAX_LINES", "PhoneModels", "profile_for_model", "read_phone_models"]

MAX_BYTES = 16 << 20
MAX_LINES = 200_000
_COLUMNS = re.compile(r"\s*[,;\t]\s*")
_NUMBER = re.compile(r"(\d{4})")
_BY_MODEL = {p.model.upper(): name for name, p in PROFILES.items()}


@dataclass(frozen=True)
class PhoneModels:
    """MAC -> profile name, and MAC -> a note (a model without a profile here)."""

    profile_of: dict[str, str] = field(default_factory=dict)
    notes_of: dict[str, str] = field(default_factory=dict)


def profile_for_model(model: str) -> str | None:
    """The profile of a model (``cp-7962``, ``Cisco 7962``, ``CP-8861``, ``7942``: module rules); None
    when phoneemu has none for it."""
    if model.lower() in PROFILES:
        return model.lower()
    m = _NUMBER.search(model)
    return _BY_MODEL.get(f"CP-{m.group(1)}") if m else None


def read_phone_models(path: Path, *, default: str, done: str = "replayed") -> PhoneModels:
    """The models of ``path`` (module rules); PhoneEmuError naming ``path:line`` when malformed."""
    text = read_at_most(path, MAX_BYTES, what="models file").decode("utf-8", errors="surrogateescape")
    out = PhoneModels()
    seen: dict[str, int] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        if n > MAX_LINES:
            raise PhoneEmuError(f"{path}:{n}: more than {MAX_LINES} lines", path="models")
        line = raw.split("#", 1)[0].strip().strip("\ufeff")
        if not line:
            continue
        first, rest = _fields(line)
        name = first[3:] if first.upper().startswith("SEP") else first
        try:
            mac = normalise_mac(name)
        except EncodeError:
            if not seen and n == _first_line(text):
                continue  # a header ("Device Name,Device Type")
            raise PhoneEmuError(f"{path}:{n}: {_shown(name)} is not a MAC address: 12 hex digits, e.g. "
                                "001122334455, 00:11:22:33:44:55 or 0011.2233.4455", path="models") from None
        if not rest:
            raise PhoneEmuError(f"{path}:{n}: {printable(first)}: no model after the MAC (e.g. "
                                f"'{printable(first)},Cisco 7962')", path="models")
        if mac in seen:
            raise PhoneEmuError(f"{path}:{n}: {mac} is given on line {seen[mac]} too", path="models")
        seen[mac] = n
        profile = profile_for_model(rest)
        if profile is None:
            out.profile_of[mac] = default
            out.notes_of[mac] = f"model {_shown(rest)} ({path}) has no profile here: {done} as {default}"
        else:
            out.profile_of[mac] = profile
    return out


def _shown(text: str, limit: int = 40) -> str:
    """``text`` of the file quoted for a message: undecodable bytes and control characters escaped
    (``\\xff``, ``\\x1b``: a binary file given as --models echoes nothing raw to the terminal), at most
    ``limit`` characters."""
    shown = printable(text[:limit])
    return f"'{shown}'" + ("..." if len(text) > limit else "")


def _fields(line: str) -> tuple[str, str]:
    """The MAC field and the model field: split at commas, semicolons or tabs when the line has any
    (a CSV export's further columns are ignored), else at the first spaces (``SEP... Cisco 7962``)."""
    if _COLUMNS.search(line):
        parts = _COLUMNS.split(line)
        return parts[0].strip(), (parts[1].strip() if len(parts) > 1 else "")
    first, _, rest = line.partition(" ")
    return first.strip(), rest.strip()


def _first_line(text: str) -> int:
    """The number of the first line that is not empty or a comment."""
    for n, raw in enumerate(text.splitlines(), 1):
        if raw.split("#", 1)[0].strip().strip("\ufeff"):
            return n
    return 0
