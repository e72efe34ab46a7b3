"""argparse ``type=`` functions shared by every command: numbers are refused at parse time.

A negative, NaN, infinite or non-ASCII-digit count, timeout or port is a usage error (argparse's
one-line message, exit 2) before any work starts — never a ValueError deep inside an event loop,
a timeout that never fires or a loop that runs no times.
"""

from __future__ import annotations

import argparse
import math

from phoneemu.values import MAX_TIME, MIN_TIME, parse_ascii_int

__all__ = [
    "MAX_FLEET_PHONES", "fleet_size", "integer", "mac_option", "non_negative_float", "non_negative_int",
    "port", "positive_float", "positive_int", "unix_time",
]

_MAX_SECONDS = 10.0 * 365 * 86400
"""No timeout or duration option needs more than ten years (and ``asyncio`` timers overflow near 1e18)."""


_UNBOUNDED = 1 << 62


def _int(text: str, *, lo: int, hi: int, what: str) -> int:
    t = text.strip()
    value = parse_ascii_int(t)
    if value is None and t.startswith("-") and parse_ascii_int(t[1:]) is not None:
        value = -1  # a negative number: refused below as out of range, not as "not a number"
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what} (ASCII digits 0-9)")
    if hi >= _UNBOUNDED and value < lo:
        raise argparse.ArgumentTypeError(f"must be at least {lo} (got {t})")
    if not lo <= value <= hi:
        raise argparse.ArgumentTypeError(f"{t} is outside {lo}..{hi}")
    return value


def _float(text: str, *, lo: float, strict: bool, what: str) -> float:
    try:
        value = float(text) if text.strip().isascii() else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    if value < lo or (strict and value == lo):
        raise argparse.ArgumentTypeError(f"{text!r}: expected {'more than' if strict else 'at least'} {lo:g}")
    if value > _MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r}: expected at most {_MAX_SECONDS:.0f} (ten years)")
    return value


def positive_int(text: str) -> int:
    """1, 2, ...: counts, concurrency, sizes."""
    return _int(text, lo=1, hi=_UNBOUNDED, what="a positive integer")


MAX_FLEET_PHONES = 100_000
"""``fleet boot --count``: as a scenario's ``count``, ``lab phone add --count`` and ``predict
--fleet-flash``. Every phone is set up before the first boot (about 2.8 KB each: 1,000,000 phones
took 2.8 GB before one booted); a typo'd ``10**12`` is refused, not a MemoryError after the banner."""


def fleet_size(text: str) -> int:
    """1..:data:`MAX_FLEET_PHONES` phones."""
    return _int(text, lo=1, hi=MAX_FLEET_PHONES, what="a number of phones")


def non_negative_int(text: str) -> int:
    """0, 1, ...: retries, shards (0 = in process), run indexes."""
    return _int(text, lo=0, hi=_UNBOUNDED, what="a non-negative integer")


def integer(text: str) -> int:
    """..., -1, 0, 1, ...: values where a sign means something (a seed; an offset from the end)."""
    t = text.strip()
    value = parse_ascii_int(t.removeprefix("-"))
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer (ASCII digits 0-9, optionally after -)")
    return -value if t.startswith("-") else value


def call_packets(text: str) -> int:
    """1..1000 media packets of a call (``boot --packets``; as a scenario's ``call`` step)."""
    return _int(text, lo=1, hi=1000, what="a number of packets")


def sip_user(text: str) -> str:
    """The user part of a SIP URI to call (``boot --call``): 1..64 of letters, digits and ``._+-``."""
    t = text.strip()
    if not 1 <= len(t) <= 64 or not all(c.isascii() and (c.isalnum() or c in "._+-") for c in t):
        raise argparse.ArgumentTypeError(f"{text[:70]!r} is not a SIP user to call (1..64 letters, digits, "
                                         "'.', '_', '+', '-'; on a lab: moh, annunciator or ivr)")
    return t


def mac_option(text: str) -> str:
    """A MAC option (``--mac``, ``--mac-start``) as typed, but CUCM's device name ``SEP<MAC>`` (as
    Device > Phone lists it, as a ``--models`` file may) gives its MAC: ``SEP001122334455`` is
    ``001122334455``. Anything else is left for the command to check (its error names what was typed)."""
    from phoneemu.errors import EncodeError
    from phoneemu.formats.config import normalise_mac

    t = text.strip()
    if t[:3].upper() != "SEP":
        return text
    try:
        normalise_mac(t[3:])
    except EncodeError:
        return text
    return t[3:]


def port(text: str) -> int:
    """A TCP/UDP port, 0..65535 (0 = any free port where the option allows it)."""
    return _int(text, lo=0, hi=65535, what="a port number")


def positive_float(text: str) -> float:
    """A finite number of seconds above 0: timeouts."""
    return _float(text, lo=0.0, strict=True, what="a positive number")


def non_negative_float(text: str) -> float:
    """A finite number of seconds, 0 or more: delays."""
    return _float(text, lo=0.0, strict=False, what="a non-negative number")


def unix_time(text: str) -> int:
    """Unix seconds from 1970-01-01 to 9000-01-01 UTC (``--now``; see :mod:`phoneemu.values`)."""
    try:
        return _int(text, lo=MIN_TIME, hi=MAX_TIME, what="a Unix time in seconds")
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (supported: 1970-01-01 to 9000-01-01 UTC)") from None
