"""The lab's dial plan: partitions and calling search spaces (seed "Authorization": "For SIP INVITE
messages and in-dialog messages, and for phones that are running SIP, Unified Communications Manager
provides authorization through calling search spaces and partitions").

The spec (§G) says nothing of dial plans: these are **our conventions**, a CUCM dial plan cut down to what
decides whether one phone may call another:

* A phone's line is in one **partition** (None: CUCM's ``<None>`` partition, the default) and the phone
  has a **calling search space** (CSS): an ordered list of partition names (empty, the default: it
  reaches ``<None>`` only).
* A call is routed when the called phone's partition is ``<None>`` — every calling search space reaches
  it — or is listed in the caller's CSS; otherwise the CallManager answers the INVITE ``404 Not Found``
  (what CUCM gives a SIP phone for a number it cannot route; ours). The order of the CSS matters in CUCM
  only when several partitions hold the same number: the lab's phones are named by their device name,
  one each, so here it does not.
* The lab's media resources (``moh``, ``annunciator``, ``ivr``) are in ``<None>``: every phone reaches them.
* Names are 1..:data:`MAX_NAME` letters, digits, ``_``, ``-`` or ``.`` and compare exactly (case counts);
  a CSS lists at most :data:`MAX_CSS` partitions, none twice. ``<None>`` (or an empty name) given as a
  partition means "back to ``<None>``"; it is never a CSS entry (every CSS reaches it already).
* The checks (:func:`name_problem`, :func:`partition_problem`, :func:`css_problem`) take any object — what a
  scenario, a state file or a caller gives — and answer None or a message that quotes what they got cut
  short (:func:`_shown`: at most a few hundred characters, whatever its size or depth, even when its own
  ``repr`` fails); only text is compared with a name. Nothing but the ``*_arg`` forms' EncodeError escapes.

An in-dialog request (the ACK and BYE of a call) belongs to a call whose INVITE was authorized: it is not
checked again. SIP trunks (their ACL, ``403 Forbidden``) and presence (SUBSCRIBE, presence groups) are not
modelled.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from phoneemu.errors import EncodeError

__all__ = [
    "MAX_CSS",
    "MAX_NAME",
    "NONE_PARTITION",
    "DialPlan",
    "css_arg",
    "css_problem",
    "describe_css",
    "name_problem",
    "partition_arg",
    "partition_problem",
    "routing_refusal",
]

#: CUCM's name for the partition of a line that has none (reached by every calling search space)
NONE_PARTITION = "<None>"
#: the longest partition name (CUCM's partition names are at most 50 characters)
MAX_NAME = 50
#: the most partitions one calling search space lists (ours: bounds a state and a scenario)
MAX_CSS = 64
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 3, 60, 60, 40
_SHOWN.maxlist = _SHOWN.maxtuple = _SHOWN.maxdict = _SHOWN.maxset = _SHOWN.maxfrozenset = 6


def _shown(value: object) -> str:
    """``value`` as quoted in a message: its repr cut short, bounded in size and depth (a deep or huge list,
    a long text), never an exception (an object whose repr fails shows its type)."""
    try:
        text = _SHOWN.repr(value)
    except Exception:  # reprlib guards instances, not every container's own parts: say the type only
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 200 else text[:200] + "..."


@dataclass(frozen=True, slots=True)
class DialPlan:
    """A phone's place in the dial plan: its line's partition (None: ``<None>``), its calling search space."""

    partition: str | None = None
    css: tuple[str, ...] = ()

    def reaches(self, partition: str | None) -> bool:
        """Whether this phone's calling search space reaches ``partition`` (None: ``<None>``, always)."""
        return partition is None or partition in self.css


def describe_css(css: Iterable[str]) -> str:
    """A calling search space as text: ``Executives, Staff``; ``(empty: <None> only)``."""
    names = list(css)
    return ", ".join(names) if names else f"(empty: {NONE_PARTITION} only)"


def routing_refusal(caller: DialPlan, called: DialPlan, *, called_name: str) -> str | None:
    """Why a call from ``caller`` to ``called`` (``called_name``, e.g. ``SEP<MAC>``) is not routed (module
    rules); None when it is."""
    if caller.reaches(called.partition):
        return None
    return (f"{called_name} is in partition {called.partition}, which the caller's calling search space "
            f"{describe_css(caller.css)} does not reach: 404")


def name_problem(name: object) -> str | None:
    """What is wrong with a partition name (module rules); None when it is a good one."""
    if not isinstance(name, str):
        return f"expected a partition name (text), got {_shown(name)}"
    if not 1 <= len(name) <= MAX_NAME or not _NAME.fullmatch(name):
        shown = name if len(name) <= 60 else name[:60] + "..."
        return (f"partition name {shown!r}: 1..{MAX_NAME} letters, digits, '_', '-' or '.' (a dial plan "
                "name of the lab's convention)")
    return None


def partition_problem(value: object) -> str | None:
    """What is wrong with a phone's partition as given (a name, or ``<None>`` / "" for none)."""
    return None if isinstance(value, str) and value in (NONE_PARTITION, "") else name_problem(value)


def css_problem(values: object) -> tuple[int | None, str] | None:
    """What is wrong with a calling search space as given (a list of names): (the index of the entry at
    fault, None for the whole list; why), None when it is a good one."""
    if not isinstance(values, (list, tuple)):
        return None, f"expected a list of partition names, got {_shown(values)}"
    if len(values) > MAX_CSS:
        return None, f"{len(values)} partitions: a calling search space lists at most {MAX_CSS}"
    seen: set[str] = set()
    for i, name in enumerate(values):
        if isinstance(name, str) and name == NONE_PARTITION:
            return i, (f"{NONE_PARTITION} is reached by every calling search space: list only named "
                       "partitions")
        problem = name_problem(name)
        if problem is not None:
            return i, problem
        if name in seen:
            return i, f"partition {name!r} listed twice"
        seen.add(name)
    return None


def partition_arg(value: str) -> str | None:
    """A phone's partition as stored (None: ``<None>``); a bad one is an EncodeError naming ``partition``."""
    problem = partition_problem(value)
    if problem is not None:
        raise EncodeError(problem, path="partition")
    return None if value in (NONE_PARTITION, "") else value


def css_arg(values: Sequence[str]) -> list[str]:
    """A calling search space as stored; a bad one (a text rather than a list too) is an EncodeError
    naming ``css`` (``css[2]``)."""
    found = css_problem(values)
    if found is not None:
        index, problem = found
        raise EncodeError(problem, path="css" if index is None else f"css[{index}]")
    return list(values)
