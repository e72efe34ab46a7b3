"""Tell the file formats apart from their bytes (and, as a hint, their name).

Rule (ours; the spec gives no magic numbers): every signed format starts with the VERSION TLV
``01 00 02`` of the common header (spec §A.1). Among those:

* encryption tags 16-27 present → ``enc`` (spec §C.3);
* FILENAME tag (or the given name) ending ``.tlv`` → ``ctl`` if the base name starts ``CTL``,
  else ``itl`` (spec §B.1);
* a body starting with our firmware manifest magic ``PHEMUFW1`` (``formats.firmware``), or a
  firmware/package name (``.loads``, ``.sbn``, ``.bin``, ``.zz``, ``.img``, ``.tar``, ``.tgz``,
  ``.tar.gz``, ``.cop.sgn``, ``.sha512``; spec §A.1, §D) → ``firmware``;
* anything else → ``sgn`` (spec §C.1).

Bytes that are not a signed header but start with ``<`` (after an optional BOM and white space)
are ``xml``. Anything else is a DecodeError.

The name hint is text or a path (``os.PathLike``, its ``os.fspath``); any other name (bytes, a number, a
path of bytes) is a DecodeError naming the argument ``name`` (was: TypeError or AttributeError out).
"""

from __future__ import annotations

import os
from typing import Literal

from phoneemu.errors import DecodeError
from phoneemu.formats.header import parse_header
from phoneemu.wire import as_bytes

__all__ = ["Kind", "detect"]

Kind = Literal["itl", "ctl", "sgn", "enc", "firmware", "xml"]

_FIRMWARE_MAGIC = b"PHEMUFW1"  # formats.firmware.MAGIC (kept here so detect does not import it)
_FIRMWARE_SUFFIXES = (".loads", ".sbn", ".bin", ".zz", ".img", ".tar", ".tgz", ".tar.gz", ".cop.sgn",
                      ".sha512")


def _by_name(name: str) -> Kind | None:
    low = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    if low.endswith(".enc.sgn"):
        return "enc"
    if low.endswith(".tlv"):
        return "ctl" if low.startswith("ctl") else "itl"
    if low.endswith(_FIRMWARE_SUFFIXES):
        return "firmware"
    if low.endswith(".sgn"):
        return "sgn"
    if low.endswith(".xml"):
        return "xml"
    return None


def _name_text(name: object) -> str | None:
    """The name hint as text: a str, or an ``os.PathLike``'s text; DecodeError naming ``name`` else."""
    if name is None or isinstance(name, str):
        return name
    if isinstance(name, os.PathLike):
        try:
            text = os.fspath(name)
        except TypeError:  # its __fspath__ gives neither str nor bytes
            text = None
        if isinstance(text, str):
            return text
    raise DecodeError(f"name must be text or a path, got {type(name).__name__}", fmt="detect", path="name")


def detect(data: bytes, name: str | os.PathLike[str] | None = None) -> Kind:
    """``itl`` / ``ctl`` / ``sgn`` / ``enc`` / ``firmware`` / ``xml``; DecodeError when none fits (and for
    input that is not bytes-like, :func:`phoneemu.wire.as_bytes`, or a ``name`` that is neither text nor a
    path: module rules)."""
    hint = _name_text(name)
    data = as_bytes(data, fmt="detect")
    if data[:3] == b"\x01\x00\x02":
        ph = parse_header(data, fmt="detect")
        if ph.header.encryption is not None:
            return "enc"
        if data[ph.body_offset:ph.body_offset + len(_FIRMWARE_MAGIC)] == _FIRMWARE_MAGIC:
            return "firmware"
        kind = _by_name(ph.header.filename)
        if kind in (None, "xml", "enc"):
            kind = _by_name(hint) if hint else None
        if kind in (None, "xml", "enc"):
            return "sgn"
        assert kind is not None
        return kind
    text = data[3:] if data[:3] == b"\xef\xbb\xbf" else data
    if text.lstrip(b" \t\r\n")[:1] == b"<":
        return "xml"
    suggests = f" (name suggests {_by_name(hint)})" if hint and _by_name(hint) else ""
    if not data:  # a download that got nothing, a file truncated to nothing: say so, not "not XML"
        raise DecodeError(f"empty (0 bytes): no signed header, no XML{suggests}", fmt="detect", offset=0)
    raise DecodeError(f"not a signed header (no VERSION TLV 01 00 02) and not XML{suggests}", fmt="detect",
                      offset=0)
