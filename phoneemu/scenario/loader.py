"""Load and validate scenario files (YAML) before anything runs.

Every mistake is reported as a :class:`ScenarioError` carrying ``file:line`` and the field
path, e.g. ``scenarios/x.yaml:14 steps[2].admin.op: unknown operation 'regen' (expected one
of: ...)``. YAML is read with the safe loader only (no object construction).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import math
import os
import re
import shlex
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from phoneemu.errors import PhoneEmuError, ScenarioError, several
from phoneemu.files import read_at_most
from phoneemu.phone import rule_ids
from phoneemu.phone.profile import PROFILES, PhoneProfile, profile_from_dict
from phoneemu.scenario.model import ClusterSpec, Expectation, HoldsFor, PhoneGroup, Scenario, Step
from phoneemu.values import MAX_TIME, parse_host_port
from phoneemu.words import counted

__all__ = [
    "ADMIN_OPERATIONS",
    "CHECKS",
    "STEP_KINDS",
    "TOP_KEYS",
    "discover",
    "load_file",
    "load_text",
    "parse_duration",
]

MAX_FILE_BYTES = 1 << 20

#: admin operation -> allowed argument names (spec §G; lab CLI ``phoneemu lab <op>``).
ADMIN_OPERATIONS: dict[str, frozenset[str]] = {
    "regenerate": frozenset({"cert"}),
    "mixed-mode": frozenset({"on"}),
    "itl-reset": frozenset({"key"}),
    "itlrecovery-export": frozenset(),
    "restart-tftp": frozenset(),
    "restart-tvs": frozenset(),
    "ctl-reset": frozenset({"key"}),
    "ctl-update": frozenset(),
    "rollback": frozenset({"on", "reset_phones"}),
    "itl-capf": frozenset({"on"}),
    "secure-urls": frozenset({"scheme"}),
    "digest": frozenset({"phones", "user", "password", "exclude"}),
    "add-certs": frozenset({"count"}),
    "remove-certs": frozenset({"count"}),
    "encryption": frozenset({"phones", "on", "mode"}),
    "signature-algorithm": frozenset({"hash"}),
    "exchange": frozenset({"with", "store"}),
    "load": frozenset({"name", "phones", "tamper"}),
    "capf": frozenset({"phones", "operation", "auth_mode", "auth_string", "key"}),
    "autoregistration": frozenset({"on"}),
    "tvs-ttl": frozenset({"seconds"}),
    "security-mode": frozenset({"phones", "mode"}),
    "calling-search-space": frozenset({"phones", "partition", "css"}),
    "add-node": frozenset(),
    "remove-node": frozenset(),
}

#: admin operation -> arguments it cannot run without (checked at load time, before anything runs).
ADMIN_REQUIRED: dict[str, tuple[str, ...]] = {
    "regenerate": ("cert",), "add-certs": ("count",), "signature-algorithm": ("hash",),
    "exchange": ("with",), "load": ("name",), "tvs-ttl": ("seconds",), "security-mode": ("mode",),
    "secure-urls": ("scheme",),
}

#: (admin operation, argument) -> the values the lab accepts (``cert`` may carry a node suffix: tvs-2).
ADMIN_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("regenerate", "cert"): ("callmanager", "tvs", "itlrecovery", "capf"),
    ("itl-reset", "key"): ("localkey", "remotekey"),
    ("ctl-reset", "key"): ("localkey",),
    ("signature-algorithm", "hash"): ("sha1", "sha512"),
    ("encryption", "mode"): ("pki", "symmetric"),
    ("capf", "operation"): ("install", "fetch", "delete", "none"),
    ("security-mode", "mode"): ("non-secure", "authenticated", "encrypted"),
    ("secure-urls", "scheme"): ("https", "http"),
    # the lab's EXCHANGE_STORES (a test keeps them equal; the loader does not import the lab)
    ("exchange", "store"): ("both", "callmanager-trust"),
}

#: the ``regenerate`` certificates of which every node has its own (``tvs-2``, ``callmanager-2``)
_NODE_CERTS = ("callmanager", "tvs")

#: admin arguments by type, checked when the file is loaded: ``on: maybe``, ``count: "x"`` or
#: ``count: 2.5``, ``tamper: "no"`` (was bool("no")) or ``user: [1]`` are file:line errors, not a failed
#: (or silently misread) step at run time
_ADMIN_BOOLS = ("on", "exclude", "tamper", "reset_phones")
_ADMIN_INTS = {"count": (1, 200), "seconds": (1, 2_592_000)}
_ADMIN_TEXTS = ("cert", "key", "user", "password", "mode", "hash", "name", "operation", "with", "auth_mode",
                "scheme", "store")

#: expectation check -> allowed values (None = free text / int / bool as documented).
CHECKS: dict[str, tuple[str, ...] | None] = {
    "itl": ("installed", "updated", "unchanged", "rejected", "absent", "empty", "present"),
    "ctl": ("installed", "updated", "unchanged", "rejected", "absent", "empty", "present"),
    "config": ("accepted", "rejected", "none"),
    "config_file": None,
    "rule": None,
    "deciding_rule": None,
    "reason": None,
    "status": None,
    "lsc": ("present", "absent", "installed", "deleted", "unchanged"),
    "lsc_key": None,
    "config_contains": None,
    "config_lacks": None,
    "firmware": ("accepted", "rejected", "unchanged", "none"),
    "load": None,
    "locked_out": None,
    "encrypted": None,
    "tvs_used": None,
    "boot": ("ok", "failed"),
    "https": ("trusted", "untrusted", "plain"),
    "itl_file_status": ("match", "mismatch", "not-installed", "unknown"),
    "ctl_file_status": ("match", "mismatch", "not-installed", "unknown"),
    "itl_records": None,
    "ctl_records": None,
    "itl_signer": None,
    "ctl_signer": None,
    "signaling": ("tls", "tcp", "none"),
    "trust_file_retries": None,
    "retransmitted": None,
    "fetched_over": ("http", "tftp", "https", "mixed", "none"),
    "sip": ("registered", "rejected", "unreachable"),
    "sip_transport": ("tcp", "tls", "none"),
    "sip_challenged": None,
    "sip_stale": None,
    "sip_cipher": None,
    "sip_passed_over": None,
    "sip_client_cert": ("lsc", "mic", "none"),
    "media": ("srtp", "rtp", "none"),
    "media_suite": ("AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "none"),
    "media_refused": None,
    "media_intercepted": None,
    "sip_replay": ("refused", "accepted", "none"),
    "call_status": None,
    "capf_pending": ("install", "fetch", "delete", "none"),
    "capf_server": None,
}

_BOOL_CHECKS = frozenset({"locked_out", "encrypted", "tvs_used", "retransmitted", "sip_challenged",
                          "sip_stale"})
#: checks whose list is the whole set: ``[]`` means "no list installed", not "any of nothing"
_RECORD_CHECKS = frozenset({"itl_records", "ctl_records"})
_INT_CHECKS = {"trust_file_retries": (0, 100), "sip_passed_over": (0, 5), "media_refused": (0, 1000),
               "media_intercepted": (0, 2000)}

#: The keys of a scenario file's top level (docs/scenarios.md's full example shows each).
TOP_KEYS = ("name", "description", "reproduces", "tags", "timeout", "clusters", "phones", "steps")

STEP_KINDS = (
    "boot", "reset", "admin", "move", "service", "network", "tamper", "clock",
    "erase", "factory-reset", "set-key", "capf", "https", "sip", "call", "expect",
)

#: who a ``call`` step may call: the lab's media resources (music on hold, annunciator, IVR; ours)
CALL_TARGETS = ("moh", "annunciator", "ivr")

_MAC = re.compile(r"^[0-9A-Fa-f]{12}$")
#: a phone reference that is meant as a MAC but is not 12 hex digits: 8..16 of them, a decimal digit among
_MAC_LIKE = re.compile(r"(?=[A-Fa-f]*[0-9])[0-9A-Fa-f]{8,16}")
#: the first MAC of a phone group that gives neither ``mac`` nor ``mac_start``
DEFAULT_MAC = "001122330001"
_DURATION = re.compile(r"^\s*([0-9]{1,15})\s*([smhdy]?)\s*$", re.ASCII)
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "y": 365 * 86400}


def parse_duration(value: object) -> int:
    """``90``, ``90s``, ``10m``, ``2h``, ``3d``, ``25y`` -> seconds; ScenarioError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        seconds = value
    else:
        m = _DURATION.match(str(value)) if isinstance(value, (str, int)) and not isinstance(value, bool) \
            else None
        if not m:
            raise ScenarioError(f"expected a duration like 90s, 10m, 2d or 25y, got {value!r}")
        seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if seconds > MAX_TIME:  # the clock would leave the span dates can represent (phoneemu.values)
        raise ScenarioError(f"duration {value!r} is beyond the supported clock range (at most "
                            f"{MAX_TIME // _UNITS['y']}y; the clock ends at 9000-01-01 UTC)")
    return seconds



def _did_you_mean(word: str, options: Iterable[str]) -> str:
    """`` — did you mean 'locked_out'?`` for a near miss (a typo, a prefix), else nothing."""
    close = _near(word, options)
    return f" — did you mean {close!r}?" if close else ""


def _near(word: str, options: Iterable[str]) -> str | None:
    """The option ``word`` is a near miss of (the same but for case, a typo, a prefix), or None."""
    import difflib

    opts = sorted(options)
    close = [o for o in opts if o.casefold() == word.casefold()][:1]  # difflib compares case: 'OK', 'ok'
    close = close or difflib.get_close_matches(word, opts, n=1, cutoff=0.6)
    close = close or [o for o in opts if word and o.startswith(word)][:1]
    return close[0] if close else None


class _Node:
    """A YAML value with the line it started on (1-based) and, for a plain (unquoted) scalar, its
    source text (``raw``): YAML 1.1 reads ``001122334466`` as an octal number and ``10:11:22:33:44:55``
    as a base-60 one, so fields that are digit strings need the text to say what to write instead."""

    __slots__ = ("line", "raw", "value")

    def __init__(self, value: Any, line: int, raw: str | None = None) -> None:
        self.value = value
        self.line = line
        self.raw = raw


#: phones of a scenario, all groups together (ours: a full cluster's worth, as ``fleet boot --count``)
MAX_PHONES = 100_000
MAX_YAML_NODES = 100_000  # a scenario has hundreds; aliases ("billion laughs") cannot expand past this
#: values of a file YAML reads (each key, value and alias once), counted as it reads them: PyYAML's parser
#: is pure Python, about 0.1 ms a value, so a 1 MB file of 500 000 values took a minute and 360 MB before
#: it was refused (the catalogue's largest file has 250)
MAX_YAML_READ = 50_000
MAX_YAML_DEPTH = 64
MAX_NUMBER_CHARS = 100  # the longest int/float scalar read (a scenario's numbers are counts and seconds)
_NUMBER_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})
#: the only tags a mapping or list may carry: its own (``!!map``, ``!!seq`` or none)
_COLLECTION_TAGS = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


class _CountingLoader(yaml.SafeLoader):
    """The safe loader, refusing a file of more than :data:`MAX_YAML_READ` values as it reads them."""

    composed = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self.composed += 1
        if self.composed > MAX_YAML_READ:
            raise ScenarioError(f"more than {MAX_YAML_READ} values (a scenario file holds hundreds)",
                                line=self.get_mark().line + 1)
        return super().compose_node(parent, index)


def _convert(node: yaml.Node, loader: yaml.SafeLoader, budget: list[int] | None = None,
             depth: int = 0) -> _Node:
    """Our tree of the YAML nodes, with lines; at most MAX_YAML_NODES values (aliases counted each time
    they are used) and MAX_YAML_DEPTH levels, so an alias bomb is refused, not expanded."""
    budget = [MAX_YAML_NODES] if budget is None else budget
    budget[0] -= 1
    line = node.start_mark.line + 1
    if budget[0] < 0:
        raise ScenarioError(f"more than {MAX_YAML_NODES} values once aliases are expanded (alias bomb?)",
                            line=line)
    if depth > MAX_YAML_DEPTH:
        raise ScenarioError(f"nested more than {MAX_YAML_DEPTH} levels deep", line=line)
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _COLLECTION_TAGS:
        # PyYAML's safe constructor would refuse it, but the tree is built here: it would be dropped
        kind = "mapping" if isinstance(node, yaml.MappingNode) else "list"
        tag = str(node.tag).replace("tag:yaml.org,2002:", "!!", 1)
        raise ScenarioError(f"YAML tag {tag!r} on a {kind} is not allowed (a scenario holds plain mappings, "
                            "lists and values)", line=line)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, _Node] = {}
        for k, v in node.value:
            # Keys are names: take their source text, so YAML 1.1 booleans like `on` stay "on".
            if not isinstance(k, yaml.ScalarNode):
                raise ScenarioError("mapping keys must be plain names", line=k.start_mark.line + 1)
            skey = str(k.value)
            if k.tag == "tag:yaml.org,2002:merge":  # was "unknown field" with nothing said of it
                raise ScenarioError("a YAML merge key (<<) is not supported: write the keys out",
                                    line=k.start_mark.line + 1)
            if skey in out:
                raise ScenarioError(f"duplicate key {skey!r}", line=k.start_mark.line + 1)
            out[skey] = _convert(v, loader, budget, depth + 1)
        return _Node(out, line)
    if isinstance(node, yaml.SequenceNode):
        return _Node([_convert(v, loader, budget, depth + 1) for v in node.value], line)
    raw = str(node.value) if isinstance(node, yaml.ScalarNode) and node.style is None else None
    if node.tag in _NUMBER_TAGS and len(str(node.value)) > MAX_NUMBER_CHARS:
        # PyYAML reads a base-60 number (`1:0:0:...`, YAML 1.1) in time quadratic in its length:
        # a 900 KB one takes ~50 s. No scenario value is that long, so refuse it unread.
        raise ScenarioError(f"a number of {len(str(node.value))} characters (at most {MAX_NUMBER_CHARS}); "
                            "quote it to write text", line=line)
    try:
        value = loader.construct_object(node)
    except _CONSTRUCT_ERRORS as exc:  # e.g. `2024-13-45` (a date), `!!float x`, `!!bool maybe`
        kind = str(node.tag).rsplit(":", 1)[-1]
        why = f" ({exc})" if isinstance(exc, ValueError) else ""  # a KeyError or AttributeError says nothing
        raise ScenarioError(f"{str(node.value)[:60]!r} is not a valid YAML {kind}{why}; quote it to "
                            "write text", line=line) from None
    return _Node(value, line, raw)


#: What PyYAML's safe constructors raise, besides YAMLError, on a scalar that looks like a date, number
#: or boolean (by its form or an explicit ``!!tag``) but is not one.
_CONSTRUCT_ERRORS = (ValueError, TypeError, LookupError, AttributeError, OverflowError)


#: fields whose text may span lines (TAB and LF allowed): the description, an xfail reason, and the
#: configuration text an expectation looks for; every other text is one line of a report or a terminal
_MULTI_LINE = frozenset({"description", "xfail", "config_contains", "config_lacks"})
#: what no text of a scenario may hold once YAML has decoded its escapes (``"\e[2J"``, ``"\udc80"``):
#: control characters (they reach terminals and reports as they are), lone surrogates (not UTF-8: the
#: reports could not be written) and U+FFFE/U+FFFF (not XML 1.0)
_BAD_TEXT = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_BAD_MULTI_LINE_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _text_problem(text: str, multi_line: bool = False) -> str | None:
    """What makes ``text`` unusable in a scenario (:data:`_BAD_TEXT`; TAB and LF only where
    ``multi_line``), or None."""
    bad = (_BAD_MULTI_LINE_TEXT if multi_line else _BAD_TEXT).search(text)
    if bad is None:
        return None
    code = ord(bad.group())
    what = ("a lone surrogate" if 0xD800 <= code <= 0xDFFF else "a noncharacter" if code >= 0xFFFE
            else "a control character")
    allowed = "; TAB and line breaks only in " + ", ".join(sorted(_MULTI_LINE)) if code in (9, 10) else ""
    return f"{what} (U+{code:04X}) at character {bad.start()} is not allowed in a scenario's text{allowed}"


def _check_texts(ctx: _Ctx, node: _Node, field: str, multi_line: bool = False) -> None:
    """Every key and text of the file, as YAML decoded it, is free of :data:`_BAD_TEXT` (the raw text
    check of :func:`load_text` does not see escapes)."""
    if isinstance(node.value, dict):
        for key, child in node.value.items():
            problem = _text_problem(key)
            if problem is not None:
                raise ctx.fail(child, field or "scenario", f"key {key!r}: {problem}")
            _check_texts(ctx, child, f"{field}.{key}" if field else key, key in _MULTI_LINE)
    elif isinstance(node.value, list):
        for i, child in enumerate(node.value):
            _check_texts(ctx, child, f"{field}[{i}]", multi_line)
    elif isinstance(node.value, str):
        problem = _text_problem(node.value, multi_line)
        if problem is not None:
            raise ctx.fail(node, field, problem)


def _described(node: _Node) -> str:
    """``node``'s value as the scenario's author wrote it, for "expected ..., got ..." (``nothing`` for
    ``expect:`` with no value; never a Python type name such as ``NoneType``)."""
    v = node.value
    if v is None:
        return "nothing (an empty value)"
    if isinstance(v, list):
        return f"a list of {len(v)}"
    if isinstance(v, dict):
        return "a mapping"
    if isinstance(v, str):
        return f"the text {v[:60]!r}"
    if isinstance(v, bool):
        return f"the boolean {node.raw or str(v).lower()}"
    if isinstance(v, (int, float)):
        return f"the number {node.raw or v}"
    return f"the {type(v).__name__} {node.raw or v}"  # a date, a timestamp


def _got(node: _Node) -> str:
    """``node``'s value for "expected ..., got ...": as Python shows a text, number, list or mapping, and
    as :func:`_described` says nothing, a date or bytes (was ``None``, ``datetime.date(2024, 1, 1)``)."""
    v = node.value
    if v is None or not isinstance(v, (str, int, float, list, dict)):
        return _described(node)
    return repr(_plain(node))


#: a plain number written with a leading 0, which YAML 1.1 reads as octal (``010`` is 8)
_OCTAL = re.compile(r"[-+]?0[0-9_]+", re.ASCII)


def _misread(node: _Node) -> str | None:
    """How YAML 1.1 reads the unquoted number ``node`` other than its digits say, or None: ``010`` is the
    octal number 8 and ``1:30`` the base-60 number 90 (a password ``0123`` was taken as ``83``, ``count:
    010`` as 8 phones and ``timeout: 1:00`` as 60 s, silently)."""
    v, raw = node.value, node.raw
    if raw is None or isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    if ":" in raw:
        return f"YAML reads an unquoted {raw} as the base-60 number {v!r}"
    if isinstance(v, int) and _OCTAL.fullmatch(raw) and int(raw.replace("_", "")) != v:
        return f"YAML reads an unquoted {raw} as the octal number {v}"
    return None


def _as_written(ctx: _Ctx, node: _Node, field: str, expected: str) -> None:
    """Refuse a number YAML reads other than its digits say (:func:`_misread`), naming ``expected``."""
    misread = _misread(node)
    if misread is not None:
        raw = str(node.raw)
        fix = f"{raw.replace('_', '').lstrip('+-').lstrip('0') or '0'} without the leading 0, or " \
            if ":" not in raw else ""
        raise ctx.fail(node, field, f"expected {expected}, got {raw} ({misread}: write {fix}{node.value!r} "
                                    "if you meant that)")


#: the most names a "defined: ..." list shows (a file of 20 000 groups made a 300 KB line)
MAX_LISTED_NAMES = 20


def _listed(names: Iterable[str]) -> str:
    """``a, b, c``; past :data:`MAX_LISTED_NAMES`, the first ones and ``... (N in all)``."""
    every = list(names)
    if len(every) <= MAX_LISTED_NAMES:
        return ", ".join(every)
    return f"{', '.join(every[:MAX_LISTED_NAMES])}, ... ({len(every)} in all)"


def _plain(n: _Node) -> Any:
    if isinstance(n.value, dict):
        return {k: _plain(v) for k, v in n.value.items()}
    if isinstance(n.value, list):
        return [_plain(v) for v in n.value]
    return n.value


_T = TypeVar("_T")


class _Found:
    """The mistakes of one cluster, phone group, step or expectation: each independent check of it runs
    even after another failed, so that a user fixes them all after one run."""

    def __init__(self) -> None:
        self.mistakes: list[ScenarioError] = []

    def check(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T | None:
        """``fn(*args, **kwargs)``, or None after keeping its ScenarioError."""
        try:
            return fn(*args, **kwargs)
        except ScenarioError as exc:
            self.mistakes.extend(exc.mistakes)  # each on its own (its line), not several as one
            return None

    def raise_any(self) -> None:
        """Raise every mistake kept (one error, :func:`~phoneemu.errors.several`), if any."""
        err = several(self.mistakes)
        if err is not None:
            raise err


class _Ctx:
    def __init__(self, path: str) -> None:
        self.path = path

    def where(self, node: _Node) -> str:
        return f"{self.path}:{node.line}"

    def fail(self, node: _Node, field: str, message: str) -> ScenarioError:
        return ScenarioError(message, file=self.path, line=node.line, path=field)

    def mapping(self, node: _Node, field: str, allowed: Iterable[str] | None = None,
                required: Iterable[str] = (), refused: Iterable[str] = ()) -> dict[str, _Node]:
        """``node``'s mapping; a key not ``allowed`` is a mistake naming the allowed ones, every such key
        and every missing ``required`` one told at once. ``refused``: keys let through for the caller to
        refuse with a message of its own, never offered as allowed."""
        found = _Found()
        m = self.fields(node, field, found, allowed=allowed, required=required, refused=refused)
        found.raise_any()
        return m

    def fields(self, node: _Node, field: str, found: _Found, *, allowed: Iterable[str] | None = None,
               required: Iterable[str] = (), refused: Iterable[str] = ()) -> dict[str, _Node]:
        """As :meth:`mapping`, but the unknown and missing keys go to ``found`` and the known ones are
        returned, so that the caller checks them too (a mapping that is not one is raised: nothing in it
        can be checked)."""
        if not isinstance(node.value, dict):
            raise self.fail(node, field, f"expected a mapping, got {_described(node)}")
        m: dict[str, _Node] = dict(node.value)
        meant: set[str | None] = set()  # what the unknown keys are near misses of
        if allowed is not None:
            allowed_set = set(allowed)
            for key, val in node.value.items():
                if key not in allowed_set and key not in refused:
                    meant.add(_near(key, allowed_set))
                    found.mistakes.append(self.fail(
                        val, f"{field}.{key}", f"unknown field{_did_you_mean(key, allowed_set)} "
                        f"(expected one of: {', '.join(sorted(allowed_set))})"))
                    del m[key]
        for key in required:  # staged: a misspelt key said as such, not as missing too
            if key not in m and key not in meant:
                found.mistakes.append(self.fail(node, field, f"missing required field {key!r}"))
        return m

    def string(self, node: _Node, field: str) -> str:
        v = node.value
        misread = _misread(node)
        if misread is not None:  # was taken as its number's digits: a password 0123 became "83"
            raise self.fail(node, field, f'expected text, got {node.raw} ({misread}: write "{node.raw}" '
                                         "if you meant the text)")
        if isinstance(v, int) and not isinstance(v, bool) and node.raw is not None and node.raw != str(v):
            # its digits not as written: password 007 was "7", 0x1F "31", 1_000 "1000", +5 "5"
            raise self.fail(node, field, f'expected text, got {node.raw} (YAML reads an unquoted {node.raw} '
                                         f'as the number {v}: write "{node.raw}" if you meant the text)')
        if not isinstance(v, (str, int)) or isinstance(v, bool):
            what = "a boolean" if isinstance(v, bool) else "a number" if isinstance(v, float) else \
                "a timestamp" if isinstance(v, datetime.datetime) else \
                "a date" if isinstance(v, datetime.date) else None
            hint = (f' (YAML reads an unquoted {node.raw} as {what}: write "{node.raw}" if you meant the '
                    f"{'word' if isinstance(v, bool) else 'text'})" if what and node.raw else "")
            raise self.fail(node, field, f"expected text, got {_got(node)}{hint}")
        return str(v)

    def quoted(self, node: _Node, field: str, what: str) -> str:
        """A digit string (MAC, key, auth string) that YAML must not have read as a number."""
        if isinstance(node.value, str):
            return node.value
        if node.raw is not None and not isinstance(node.value, bool) and isinstance(node.value, (int, float)):
            key = re.sub(r"\[\d+\]$", "", field.rsplit(".", 1)[-1])
            raise self.fail(node, field, f'{what} must be a quoted string: write {key}: "{node.raw}" '
                                         f"(unquoted, YAML reads {node.raw} as the number {node.value!r})")
        return self.string(node, field)

    def integer(self, node: _Node, field: str, lo: int = 0, hi: int = 1 << 31) -> int:
        v = node.value
        _as_written(self, node, field, f"an integer in {lo}..{hi}")  # count: 010 was 8 phones
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self.fail(node, field, f"expected an integer in {lo}..{hi}, got {_got(node)}")
        return v

    def boolean(self, node: _Node, field: str) -> bool:
        v = node.value
        if isinstance(v, bool):
            return v
        if v in ("on", "off"):
            return bool(v == "on")
        raise self.fail(node, field, f"expected true/false (or on/off), got {_got(node)}")

    def names(self, node: _Node, field: str) -> tuple[str, ...]:
        if isinstance(node.value, list):
            return tuple(self.string(v, f"{field}[{i}]") for i, v in enumerate(node.value))
        return (self.string(node, field),)


def _cluster(ctx: _Ctx, name: str, node: _Node) -> ClusterSpec:
    field = f"clusters.{name}"
    if node.value is None:
        return ClusterSpec(name=name, where=ctx.where(node))
    m = ctx.mapping(node, field)
    if "external" in m:
        for key, val in m.items():  # were silently ignored
            if key != "external":
                what = "a built-in lab cluster's option" if key in _LAB_OPTIONS else \
                    f"unknown field{_did_you_mean(key, ('external', *_LAB_OPTIONS))}"
                raise ctx.fail(val, f"{field}.{key}", f"{what} (an external cluster takes external: only; a "
                                                      "real cluster's settings are made on the cluster)")
        return ClusterSpec(name=name, where=ctx.where(node), external=_external(ctx, m["external"],
                                                                                 f"{field}.external"))
    allowed = _LAB_OPTIONS
    if "host" in m:  # was accepted and ignored: say where lab clusters listen instead
        raise ctx.fail(m["host"], f"{field}.host", "a lab cluster's address is not chosen per scenario: "
                       "clusters listen on 127.0.0.<base>, <base+1>, ... (PHONEEMU_LAB_HOST_BASE, 11..40); "
                       "for a real cluster write external: {tftp: HOST[:PORT]}")
    opts = ctx.mapping(node, field, allowed=allowed)
    if "tftp_for" in opts and ctx.string(opts["tftp_for"], f"{field}.tftp_for") == name:
        raise ctx.fail(opts["tftp_for"], f"{field}.tftp_for", "a cluster cannot be its own centralized TFTP")
    seed = ctx.integer(opts["seed"], f"{field}.seed") if "seed" in opts else None
    options: dict[str, Any] = {}
    for key, val in opts.items():
        f = f"{field}.{key}"
        if key == "seed":
            continue
        if key in _CLUSTER_BOOLS:  # pre_8_0: "no" must not switch a cluster to pre-8.0
            options[key] = ctx.boolean(val, f)
        elif key == "capf":
            options[key] = _capf_bounds(ctx, val, f)
        elif key in _CLUSTER_INTS:
            options[key] = ctx.integer(val, f, *_CLUSTER_INTS[key])
        else:
            options[key] = ctx.string(val, f)
            problem = _lab_option_problem(key, options[key])
            if problem is not None:
                raise ctx.fail(val, f, problem)
    return ClusterSpec(name=name, where=ctx.where(node), seed=seed, options=options)


#: the options of a built-in lab cluster (``clusters: {NAME: {...}}``)
_LAB_OPTIONS = ("seed", "nodes", "key", "itlrecovery_years", "upgraded", "mixed_mode", "signature_algorithm",
                "rollback", "extra_certs", "load", "autoregistration", "tvs_ttl", "sbd", "itl_signer",
                "pre_8_0", "tftp_for", "capf", "https_key")
#: ``https_key``: the keys of the lab's HTTPS (6971) TFTP identity, as ``lab init --https-key`` makes them
#: (spec §H.1: phones ask 6971 only when that ITL record's key is EC; an RSA one shows they do not)
HTTPS_KEYS = ("ec-p256", "ec-p384", "ec-p521", "rsa1024", "rsa2048", "rsa4096")


def _lab_option_problem(key: str, value: str) -> str | None:
    """Why the lab would refuse a text option when it starts (by its own checks: the signers' key spec,
    the firmware load name, the ITL signer; ``signature_algorithm`` as its admin operation), or None."""
    from phoneemu.crypto.keys import KeySpec
    from phoneemu.formats import firmware
    from phoneemu.lab.cluster import CLUSTER_KEYS, cluster_key_problem

    hashes = ADMIN_CHOICES[("signature-algorithm", "hash")]
    if key == "key":  # as LabCluster.init takes it (lab init --key): rsa512 or ec-p256 failed at run time
        try:
            spec = KeySpec.parse(value)
        except PhoneEmuError:  # its "e.g. ec-p256" would offer a key the cluster refuses
            return (f"expected {', '.join(CLUSTER_KEYS[:-1])} or {CLUSTER_KEYS[-1]}, got {value!r}"
                    f"{_did_you_mean(value.lower(), CLUSTER_KEYS)}")
        return cluster_key_problem(spec)
    try:
        if key == "load":
            firmware.loads_file_name(value)
    except PhoneEmuError as exc:
        return exc.message
    if key == "signature_algorithm" and value.lower() not in hashes:
        return f"expected one of: {', '.join(hashes)}; got {value!r}{_did_you_mean(value.lower(), hashes)}"
    if key == "itl_signer" and value not in ("itlrecovery", "callmanager"):
        return f"expected itlrecovery or callmanager, got {value!r}"
    if key == "https_key":
        return _https_key_problem(value)
    return None


def _https_key_problem(value: str) -> str | None:
    """Why a lab's ``https_key`` is not one of :data:`HTTPS_KEYS` (as ``lab init --https-key`` spells them,
    ``ec-p256``; ``EC_P256``, ``p256`` as the lab reads them), or None. Ours: the lab would take other RSA
    sizes, and fail making the key or only at the phone's handshake."""
    from phoneemu.crypto.keys import KeySpec

    try:
        spec = str(KeySpec.parse(value))
    except PhoneEmuError:
        spec = ""
    if spec in HTTPS_KEYS:
        return None
    return (f"expected a key of the HTTPS (6971) TFTP identity, one of {', '.join(HTTPS_KEYS)} (phones ask "
            f"6971 only with an EC one, spec H.1), got {value!r}{_did_you_mean(value.lower(), HTTPS_KEYS)}")


def _external(ctx: _Ctx, node: _Node, field: str) -> dict[str, Any]:
    """``external: {tftp: HOST[:PORT], http_port: N, use_http: BOOL, sip: HOST[:PORT], sips_port: N}``
    (``sip``: the cluster's SIP registrar, for the ``sip`` step), checked here (the address as
    ``--tftp`` takes it, a port 1..65535, a boolean) so that a typo is a file:line error before
    anything runs, not a run-time error of the scenario."""
    ext = ctx.mapping(node, field, allowed=("tftp", "http_port", "use_http", "sip", "sips_port"),
                      required=("tftp",))
    out: dict[str, Any] = {}
    for key in ("tftp", "sip"):
        if key in ext:
            out[key] = ctx.string(ext[key], f"{field}.{key}")
            try:
                parse_host_port(out[key], what=key)
            except PhoneEmuError as exc:
                raise ctx.fail(ext[key], f"{field}.{key}", exc.message) from None
    if "sips_port" in ext:
        out["sips_port"] = ctx.integer(ext["sips_port"], f"{field}.sips_port", 1, 65535)
    if "http_port" in ext:
        out["http_port"] = ctx.integer(ext["http_port"], f"{field}.http_port", 1, 65535)
    if "use_http" in ext:
        out["use_http"] = ctx.boolean(ext["use_http"], f"{field}.use_http")
    return out


#: ``capf: {read_timeout, session_timeout}`` of a lab cluster: seconds, and their ranges (ours, as ``lab
#: serve --capf-read-timeout / --capf-session-timeout``; at most a day, as a scenario's ``timeout:``)
CAPF_BOUND_SECONDS = {"read_timeout": (0.1, 86_400.0), "session_timeout": (0.1, 86_400.0)}
#: ``capf: {max_in_progress}``: REQUEST_IN_PROGRESS a session (``lab serve --capf-max-in-progress``)
CAPF_MAX_IN_PROGRESS = (0, 100_000)


def _capf_bounds(ctx: _Ctx, node: _Node, field: str) -> dict[str, float | int]:
    """A lab cluster's ``capf: {read_timeout, session_timeout, max_in_progress}`` (ours; spec §F.6, §F.8):
    how long its CAPF server waits for a phone's next frame, how long a whole session may take, and how
    many REQUEST_IN_PROGRESS it takes a session, as ``lab serve --capf-*`` sets them; any may be left out
    (``lab serve``'s defaults: 30 s, 120 s, 256). Seconds are numbers (``1.5``), 0.1 .. 86400."""
    cm = ctx.mapping(node, field, allowed=(*CAPF_BOUND_SECONDS, "max_in_progress"))
    out: dict[str, float | int] = {}
    for key, val in cm.items():
        if key == "max_in_progress":
            out[key] = ctx.integer(val, f"{field}.{key}", *CAPF_MAX_IN_PROGRESS)
            continue
        lo, hi = CAPF_BOUND_SECONDS[key]
        v = val.value
        _as_written(ctx, val, f"{field}.{key}", f"seconds from {lo:g} to {hi:g}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise ctx.fail(val, f"{field}.{key}", f"expected seconds from {lo:g} to {hi:g} (a number, e.g. "
                                                  f"1.5), got {_got(val)}")
        out[key] = float(v)
    return out


_CLUSTER_BOOLS = ("upgraded", "mixed_mode", "rollback", "autoregistration", "sbd", "pre_8_0")
#: cluster options that are integers, and their ranges (as LabCluster.init / add_certs check them)
_CLUSTER_INTS = {"nodes": (1, 8), "itlrecovery_years": (1, 30), "extra_certs": (0, 200),
                 "tvs_ttl": (1, 2_592_000)}


def _capf_auth_explicit(ctx: _Ctx, node: _Node, field: str, m: dict[str, _Node], default: str) -> None:
    """A CAPF operation names how the phone authenticates: without auth_mode or auth_string the lab
    would enrol it with a null string (no proof at all), which a scenario should say on purpose."""
    op = str(m["operation"].value) if "operation" in m else default
    if op in ("install", "fetch", "delete") and "auth_mode" not in m and "auth_string" not in m:
        raise ctx.fail(node, field, f"CAPF {op}: say how the phone authenticates: auth_string: \"DIGITS\", "
                                    "or auth_mode: null-string (no proof), lsc or mic")


#: ``tftp`` retransmission timing (RFC 1350, spec §H.3) of a phone group or of a lab's TFTP server
#: (``network`` step), and the ranges accepted; 0 retries = one try only
_TFTP_TIMING = {"timeout_ms": (10, 60_000), "retries": (0, 100)}


#: ``tftp`` of a phone group: the retransmission timing plus ``max_time_ms``, the cap on one whole
#: transfer (our convention, :mod:`phoneemu.phone.phone`); 100 ms .. 1 h
_PHONE_TFTP_TIMING = {**_TFTP_TIMING, "max_time_ms": (100, 3_600_000)}


#: ``http`` / ``tvs`` timing of a phone group: how long a phone waits for an HTTP 6970 answer
#: (§H.1, then it falls back to TFTP) or for a TVS connection and answer (§E)
_WAIT_TIMING = {"timeout_ms": (10, 60_000)}


def _timing(ctx: _Ctx, node: _Node, field: str,
                 ranges: dict[str, tuple[int, int]] = _TFTP_TIMING) -> dict[str, int]:
    """``{timeout_ms, retries}`` (or the keys of ``ranges``): any may be left out (the default timing
    then applies)."""
    found = _Found()
    tm = ctx.fields(node, field, found, allowed=ranges)
    out = {key: found.check(ctx.integer, val, f"{field}.{key}", *ranges[key]) for key, val in tm.items()}
    found.raise_any()
    return {key: value for key, value in out.items() if value is not None}


#: the keys of a phone group
_GROUP_KEYS = ("cluster", "count", "mac_start", "mac", "profile", "encrypt", "symmetric_key", "capf",
               "registered", "tftp", "http", "tvs")


def _phones(ctx: _Ctx, name: str, node: _Node, clusters: dict[str, ClusterSpec]) -> PhoneGroup:
    """A phone group; every mistake of it told at once. Staged only where a check reads another value:
    the MAC range needs the count, whether the key fits needs the profile and the key, whether symmetric
    encryption can work needs the profile, ``encrypt`` and ``registered``."""
    field = f"phones.{name}"
    found = _Found()
    m = ctx.fields(node, field, found, allowed=_GROUP_KEYS, refused=("flash",))  # flash refused below
    cluster = found.check(_group_cluster, ctx, node, m, field, clusters)
    count = found.check(ctx.integer, m["count"], f"{field}.count", 1, MAX_PHONES) if "count" in m else 1
    mac = found.check(_group_mac, ctx, m, field, count or 1)  # a bad count: the range of one phone
    prof = found.check(_group_profile, ctx, m, field) if "profile" in m else \
        ("cp-8861", {}, PROFILES["cp-8861"])
    encrypt = found.check(_group_encrypt, ctx, m, field) if "encrypt" in m else "none"
    capf = found.check(_group_capf, ctx, m, field) if "capf" in m else None
    if "flash" in m:  # was accepted and silently ignored: say so instead
        found.mistakes.append(ctx.fail(
            m["flash"], f"{field}.flash", "not supported: phones start with an empty flash (a MIC only). To "
            "start them holding a cluster's trust lists, boot them there first, then move them: "
            "- boot: GROUP, - move: {phones: GROUP, to: CLUSTER}"))
    tftp, http, tvs = (found.check(_timing, ctx, m[key], f"{field}.{key}", ranges) if key in m else {}
                       for key, ranges in (("tftp", _PHONE_TFTP_TIMING), ("http", _WAIT_TIMING),
                                           ("tvs", _WAIT_TIMING)))
    symmetric_key = found.check(_group_key, ctx, m, field) if "symmetric_key" in m else None
    registered = found.check(ctx.boolean, m["registered"], f"{field}.registered") if "registered" in m \
        else True
    if prof is not None and symmetric_key is not None:  # staged: the key read and the profile known
        found.check(_key_fits, ctx, m["symmetric_key"], f"{field}.symmetric_key", prof[2], symmetric_key)
    if encrypt == "symmetric" and prof is not None and registered:  # staged: profile, encrypt, registered
        found.check(_symmetric_needs, ctx, m, field, prof[2])
        if symmetric_key is not None:
            found.check(_key_encrypts, ctx, m["symmetric_key"], f"{field}.symmetric_key", symmetric_key)
    found.raise_any()
    assert cluster is not None and count is not None and mac is not None and prof is not None
    assert tftp is not None and http is not None and tvs is not None and registered is not None
    return PhoneGroup(
        name=name, where=ctx.where(node), cluster=cluster, count=count, mac_start=mac, profile=prof[0],
        profile_overrides=prof[1], encrypt=None if encrypt == "none" else encrypt,
        tftp_timeout_ms=tftp.get("timeout_ms"), tftp_retries=tftp.get("retries"),
        tftp_max_time_ms=tftp.get("max_time_ms"),
        http_timeout_ms=http.get("timeout_ms"), tvs_timeout_ms=tvs.get("timeout_ms"),
        symmetric_key=symmetric_key, capf=capf, flash={}, registered=registered,
    )


def _group_cluster(ctx: _Ctx, node: _Node, m: dict[str, _Node], field: str,
                   clusters: dict[str, ClusterSpec]) -> str:
    """A group's ``cluster``: one of the file's (default its first)."""
    default_cluster = next(iter(clusters)) if clusters else ""
    cluster = ctx.string(m["cluster"], f"{field}.cluster") if "cluster" in m else default_cluster
    if cluster not in clusters:
        raise ctx.fail(m.get("cluster", node), f"{field}.cluster",
                       f"unknown cluster {cluster!r} (defined: {_listed(clusters) or 'none'})")
    return cluster


def _group_mac(ctx: _Ctx, m: dict[str, _Node], field: str, count: int) -> str:
    """A group's first MAC (``mac`` or ``mac_start``, not both): 12 hex digits, its ``count`` phones'
    MACs within 48 bits."""
    if "mac" in m and "mac_start" in m:  # mac was silently ignored
        raise ctx.fail(m["mac"], f"{field}.mac", "give mac or mac_start, not both (they mean the same: the "
                                                 "first MAC of the group's count phones)")
    mac_key = "mac_start" if "mac_start" in m else "mac" if "mac" in m else None
    if mac_key is None:
        return DEFAULT_MAC
    mac = ctx.quoted(m[mac_key], f"{field}.{mac_key}", "MAC").replace(":", "").replace("-", "").upper()
    if not _MAC.match(mac):
        raise ctx.fail(m[mac_key], f"{field}.{mac_key}", f"MAC must be 12 hex digits, got {mac!r}")
    if int(mac, 16) + count > 1 << 48:
        raise ctx.fail(m[mac_key], f"{field}.{mac_key}", "MAC range overflows 48 bits")
    return mac


def _group_profile(ctx: _Ctx, m: dict[str, _Node], field: str) -> tuple[str, dict[str, Any], PhoneProfile]:
    """A group's ``profile``: a name, or ``{base: NAME, KEY: VALUE ...}`` whose overrides are checked now
    (names, types, limits), not when the phone is made; its name, overrides and the profile they make."""
    pnode = m["profile"]
    profile = "cp-8861"
    overrides: dict[str, Any] = {}
    if isinstance(pnode.value, dict):
        pm = ctx.mapping(pnode, f"{field}.profile")
        if "base" in pm:
            profile = ctx.string(pm["base"], f"{field}.profile.base")
        for k, v in pm.items():  # trust_list_limit: 040000 was 16384
            for i, item in enumerate(v.value if isinstance(v.value, list) else [v]):
                misread = _misread(item)
                if misread is not None:
                    where = f"{field}.profile.{k}" + (f"[{i}]" if isinstance(v.value, list) else "")
                    raise ctx.fail(item, where, f'{misread}: write "{item.raw}" for the text, or the '
                                                "number in decimal without a leading 0 or ':'")
        overrides = {k: _plain(v) for k, v in pm.items() if k != "base"}
    else:
        profile = ctx.string(pnode, f"{field}.profile")
    if profile not in PROFILES:
        at = pnode.value["base"] if isinstance(pnode.value, dict) else pnode
        raise ctx.fail(at, f"{field}.profile", f"unknown phone profile {profile!r} "
                       f"(expected one of: {', '.join(PROFILES)})")
    try:
        made = profile_from_dict(profile, overrides)
    except ScenarioError as exc:
        key = exc.path if isinstance(pnode.value, dict) and exc.path in pnode.value else None
        at = pnode.value[key] if key is not None else pnode
        raise ctx.fail(at, f"{field}.profile{'.' + key if key else ''}", exc.message) from None
    return profile, overrides, made


def _group_encrypt(ctx: _Ctx, m: dict[str, _Node], field: str) -> str:
    """A group's ``encrypt``: pki, symmetric or none."""
    encrypt = ctx.string(m["encrypt"], f"{field}.encrypt")
    modes = ("pki", "symmetric", "none")
    if encrypt not in modes:
        raise ctx.fail(m["encrypt"], f"{field}.encrypt", f"expected pki, symmetric or none, got "
                                                         f"{encrypt!r}{_did_you_mean(encrypt, modes)}")
    return encrypt


def _group_capf(ctx: _Ctx, m: dict[str, _Node], field: str) -> dict[str, Any]:
    """A group's ``capf``: the CAPF operation its phones find in their config."""
    found = _Found()
    cm = ctx.fields(m["capf"], f"{field}.capf", found,
                    allowed=("operation", "auth_mode", "auth_string", "key"))
    capf = {k: _plain(v) for k, v in cm.items()}
    if "auth_string" in cm:
        capf["auth_string"] = found.check(ctx.quoted, cm["auth_string"], f"{field}.capf.auth_string",
                                          "auth_string")
    _capf_values(ctx, cm, f"{field}.capf", found)
    if len(cm) == len(m["capf"].value):  # staged: a misspelt auth_mode is not also a missing one
        found.check(_capf_auth_explicit, ctx, m["capf"], f"{field}.capf", cm, "none")
    found.raise_any()
    return capf


def _group_key(ctx: _Ctx, m: dict[str, _Node], field: str) -> str:
    """A group's ``symmetric_key``: 32 or 64 hex digits (its size against the profile: :func:`_key_fits`)."""
    key = ctx.quoted(m["symmetric_key"], f"{field}.symmetric_key", "symmetric_key")
    if not re.fullmatch(r"[0-9A-Fa-f]{32}|[0-9A-Fa-f]{64}", key):
        raise ctx.fail(m["symmetric_key"], f"{field}.symmetric_key", "expected 32 or 64 hex digits")
    return key


def _key_problem(profile: PhoneProfile, key: str) -> str | None:
    """Why a phone of ``profile`` refuses the manual config key ``key`` (hex), by the trust store's own
    rule (:meth:`~phoneemu.phone.store.TrustStore.set_symmetric_key`, spec §C.5: the profile's key size;
    all zeros clear the key), or None."""
    from phoneemu.errors import EncodeError
    from phoneemu.phone.store import TrustStore

    try:
        TrustStore(profile=profile).set_symmetric_key(bytes.fromhex(key))
    except EncodeError as exc:
        return exc.message
    return None


def _key_fits(ctx: _Ctx, node: _Node, field: str, profile: PhoneProfile, key: str) -> None:
    """A group's key is one its profile takes (was an ERROR naming no line when the phones were made). A
    profile with no manual key at all is left to :func:`_symmetric_needs` (only ``encrypt: symmetric``
    needs one: the world types the key into the phones that take one)."""
    if profile.symmetric_key_bits:
        problem = _key_problem(profile, key)
        if problem is not None:
            raise ctx.fail(node, field, problem)


def _symmetric_needs(ctx: _Ctx, m: dict[str, _Node], field: str, profile: PhoneProfile) -> None:
    """``encrypt: symmetric`` of a registered group (an unregistered one has no device entry: nothing is
    encrypted for it) needs phones that take a manual key — a phone with none asks only for the plain
    config, which an encrypting cluster does not serve, and ends on XmlDefault without a word — and then
    their key: one mistake, the first of the two (a profile with no key is not also told to add one)."""
    at = f"{field}.encrypt"
    if not profile.symmetric_key_bits:
        raise ctx.fail(m["encrypt"], at, f"symmetric encryption needs phones that take a manual config key "
                       f"(spec §C.5); {profile.name} has none (it decrypts configs with its certificate, "
                       f"encrypt: pki): give profile: one of {', '.join(_keyed_profiles())}")
    if "symmetric_key" not in m:
        raise ctx.fail(m["encrypt"], at, "symmetric encryption needs the phones' key: symmetric_key: 32 or "
                       "64 hex digits")


def _key_encrypts(ctx: _Ctx, node: _Node, field: str, key: str) -> None:
    """The key of ``encrypt: symmetric`` is one the cluster can encrypt with: not all zeros, which clear a
    phone's manual key (spec §C.5; the lab refuses it, ``lab phone add``'s rule — was an ERROR when the
    phones were added, naming no line)."""
    if not int(key, 16):
        raise ctx.fail(node, field, "an all-zero key clears a phone's manual config key (spec §C.5): the "
                       "cluster cannot encrypt with it; give another")


def _keyed_profiles() -> tuple[str, ...]:
    """The profiles whose phones take a manual config key (their ``symmetric_key_bits``)."""
    return tuple(name for name, p in PROFILES.items() if p.symmetric_key_bits)


def _phone_of(groups: dict[str, PhoneGroup], mac: int) -> PhoneGroup | None:
    """The group holding the phone of MAC ``mac`` (a 48-bit number), else None."""
    return next((g for g in groups.values() if int(g.mac_start, 16) <= mac < int(g.mac_start, 16) + g.count),
                None)


def _groups_named_as_phones(ctx: _Ctx, groups: dict[str, PhoneGroup],
                            nodes: dict[str, _Node]) -> list[ScenarioError]:
    """A mistake per group whose name reads as the MAC of a phone of the scenario (``phones:
    "0A0000006002"`` names the group, never that phone: steps and expectations meant for it went to the
    group). A name that is no phone's MAC (``cafe00000001`` with no such phone) shadows nothing and
    loads, and so does a one-phone group named by its own phone's MAC (either reading names that phone;
    was: every name of 12 hex digits refused)."""
    found: list[ScenarioError] = []
    for name, g in groups.items():
        if not _MAC.match(name.replace(":", "")):
            continue
        mac = int(name.replace(":", ""), 16)
        owner = _phone_of(groups, mac)
        if owner is None or (owner is g and g.count == 1):
            continue
        phone = f"phone {mac:012X} of group {owner.name!r}" if owner is not g else \
            f"phone {mac:012X} alone (one of this group's {g.count})"
        found.append(ctx.fail(nodes[name], f"phones.{name}", f"a group name that reads as a MAC: phones: "
                              f"{name!r} names this group, never {phone}; name the group otherwise"))
    return found


def _shared_macs(ctx: _Ctx, groups: dict[str, PhoneGroup], nodes: dict[str, _Node]) -> list[ScenarioError]:
    """A mistake per group whose MACs overlap an earlier group's (a phone is one group's; this failed when
    the scenario started, once its labs were made). The groups sorted by first MAC, each is compared with
    the one before it that reaches furthest."""
    def mac_key(g: PhoneGroup) -> str | None:
        return next((k for k in ("mac_start", "mac") if k in nodes[g.name].value), None)

    def span(g: PhoneGroup) -> str:
        return g.mac_start if g.count == 1 else f"{g.mac_start}..{int(g.mac_start, 16) + g.count - 1:012X}"

    order = {name: i for i, name in enumerate(groups)}
    reach: PhoneGroup | None = None  # of the groups before, the one whose MACs end last
    found: list[tuple[int, ScenarioError]] = []
    for g in sorted(groups.values(), key=lambda g: (int(g.mac_start, 16), order[g.name])):
        start = int(g.mac_start, 16)
        if reach is not None and start < int(reach.mac_start, 16) + reach.count:
            first, later = sorted((reach, g), key=lambda x: order[x.name])
            unset = [x.name for x in (first, later) if mac_key(x) is None]
            one = len(unset) == 1
            note = f" ({' and '.join(map(repr, unset))} {'gives' if one else 'give'} no mac or " \
                f"mac_start, so {'starts' if one else 'start'} at {DEFAULT_MAC})" if unset else ""
            key = mac_key(later)
            found.append((order[later.name], ctx.fail(
                nodes[later.name].value[key] if key else nodes[later.name],
                f"phones.{later.name}" + (f".{key}" if key else ""),
                f"MAC {start:012X} is a phone of groups {first.name!r} ({span(first)}) and {later.name!r} "
                f"({span(later)}){note}: give each group MACs of its own")))
        if reach is None or start + g.count > int(reach.mac_start, 16) + reach.count:
            reach = g
    return [err for _, err in sorted(found, key=lambda x: x[0])]


def _capf_values(ctx: _Ctx, m: dict[str, _Node], field: str, found: _Found | None = None) -> None:
    """A CAPF operation's ``operation``, ``auth_mode`` (0..4 or a name, spec §H.5) and LSC ``key``
    (a key spec), checked when the file is loaded (a phone group's ``capf``, an admin ``capf`` step),
    each whatever the others are: their mistakes go to ``found`` (raised here without one)."""
    own = _Found() if found is None else found
    for key, check in (("operation", _capf_operation), ("auth_mode", _capf_auth_mode), ("key", _capf_key)):
        if key in m:
            own.check(check, ctx, m[key], f"{field}.{key}")
    if found is None:
        own.raise_any()


def _capf_operation(ctx: _Ctx, node: _Node, field: str) -> None:
    op = ctx.string(node, field)
    if op not in ADMIN_CHOICES[("capf", "operation")]:
        raise ctx.fail(node, field, f"unknown CAPF operation {op!r} (expected one of: "
                                    f"{', '.join(ADMIN_CHOICES[('capf', 'operation')])})")


def _capf_auth_mode(ctx: _Ctx, node: _Node, field: str) -> None:
    from phoneemu.lab.cluster import CAPF_AUTH_MODES

    mode = node.value
    _as_written(ctx, node, field, "0..4 or a mode's name")
    if isinstance(mode, bool) or not ((isinstance(mode, int) and 0 <= mode <= 4)
                                      or (isinstance(mode, str) and mode.lower() in CAPF_AUTH_MODES)):
        raise ctx.fail(node, field, f"expected 0..4 or one of {', '.join(CAPF_AUTH_MODES)}, got {_got(node)}")


def _capf_key(ctx: _Ctx, node: _Node, field: str) -> None:
    from phoneemu.crypto.keys import KeySpec

    try:
        KeySpec.parse(ctx.string(node, field))
    except PhoneEmuError as exc:
        raise ctx.fail(node, field, exc.message) from None


def _dial_plan_values(ctx: _Ctx, node: _Node, m: dict[str, _Node], field: str) -> dict[str, Any]:
    """A ``calling-search-space`` step's ``partition`` (a name, or ``"<None>"``) and ``css`` (a list of
    names, ``[]`` for none): at least one, each name by the lab's rules (:mod:`phoneemu.lab.dial_plan`,
    ours), checked when the file is loaded."""
    from phoneemu.lab import dial_plan

    if "partition" not in m and "css" not in m:
        raise ctx.fail(node, field, "calling-search-space: give a partition, a css (calling search space) "
                                    "or both")
    out: dict[str, Any] = {}
    if "partition" in m:
        item = m["partition"]
        if item.value is None:
            raise ctx.fail(item, f"{field}.partition", "expected a partition name; for CUCM's <None> "
                                                       "partition write partition: '<None>'")
        out["partition"] = ctx.string(item, f"{field}.partition")
        problem = dial_plan.partition_problem(out["partition"])
        if problem is not None:
            raise ctx.fail(item, f"{field}.partition", problem)
    if "css" in m:
        items = m["css"].value if isinstance(m["css"].value, list) else [m["css"]]
        if m["css"].value is None:
            raise ctx.fail(m["css"], f"{field}.css", "expected a list of partition names ([] for a calling "
                                                     "search space that reaches <None> only)")
        at = [f"{field}.css[{i}]" if isinstance(m["css"].value, list) else f"{field}.css"
              for i in range(len(items))]
        out["css"] = [ctx.string(item, where) for item, where in zip(items, at, strict=True)]
        found = dial_plan.css_problem(out["css"])
        if found is not None:
            index, problem = found
            raise ctx.fail(m["css"] if index is None else items[index],
                           f"{field}.css" if index is None else at[index], problem)
    return out


def _mac_digits_problem(ref: str, digits: str, defined: str) -> str:
    return f"{ref!r} looks like a MAC with {len(digits)} hex digits, 12 expected; no phone group has that " \
        f"name {defined}"


def _phone_refs(ctx: _Ctx, node: _Node, field: str, groups: dict[str, PhoneGroup]) -> tuple[str, ...]:
    """The groups, MACs or ``all`` a step names; ``[]`` is refused (a step on no phone, an expectation
    that checks nothing, would pass)."""
    if node.value == []:
        raise ctx.fail(node, field, f"empty list: name a phone group, a list of them or all "
                       f"(defined: {_listed(groups)})")
    items = node.value if isinstance(node.value, list) else [node]
    defined = f"(defined: {_listed(groups)})"
    for i, item in enumerate(items):  # a MAC given unquoted that YAML read as a number
        if isinstance(item, _Node) and isinstance(item.value, int) and not isinstance(item.value, bool):
            at = f"{field}[{i}]" if isinstance(node.value, list) else field
            digits = re.sub("[:-]", "", item.raw or "")
            if _MAC.match(digits):
                ctx.quoted(item, at, "MAC")
            if _MAC_LIKE.fullmatch(digits):
                raise ctx.fail(item, at, _mac_digits_problem(str(item.raw), digits, defined))
            raise ctx.fail(item, at, f"expected a phone group name, a MAC or all, got "
                                     f"{item.raw or item.value} {defined}")
    refs = ctx.names(node, field)
    for ref in refs:
        if ref == "all" or ref in groups:
            continue
        if not _MAC.match(ref.replace(":", "")):
            digits = ref.replace(":", "")
            if _MAC_LIKE.fullmatch(digits):
                raise ctx.fail(node, field, _mac_digits_problem(ref, digits, defined))
            raise ctx.fail(node, field, f"unknown phone group {ref!r}{_did_you_mean(ref, groups)} {defined}")
        mac = int(ref.replace(":", ""), 16)  # one phone by MAC: it must be a phone of some group
        if not any(int(g.mac_start, 16) <= mac < int(g.mac_start, 16) + g.count for g in groups.values()):
            raise ctx.fail(node, field, f"no phone has MAC {ref.replace(':', '').upper()} (the groups' MACs: "
                           + ", ".join(f"{g.name} {g.mac_start}" + (f" +{g.count - 1}" if g.count > 1 else "")
                                       for g in groups.values()) + ")")
    return refs


#: the services a ``service`` step stops or starts on every lab (``https`` and ``directory``, which the
#: lab also knows, are started by the ``https`` step itself); nodes 2..'s come from :class:`_Labs`, and so
#: does :data:`HTTPS_CONFIG_SERVICE`
_SERVICES = ("tvs", "tftp", "http", "capf", "sip", "sips")
#: the HTTPS config download (TCP 6971, spec §H.1): a service of a lab with ``https_key`` only
HTTPS_CONFIG_SERVICE = "https-config"
#: (admin operation, argument) whose value the lab reads in any case (``SHA512``); the others as written
_ADMIN_ANY_CASE = frozenset({("signature-algorithm", "hash"), ("security-mode", "mode")})
#: the most nodes a lab cluster has (``nodes:``, ``add-node``)
_MAX_NODES = _CLUSTER_INTS["nodes"][1]


class _Labs:
    """What the loader knows of each cluster at a step, as the lab will be then: its node count
    (``nodes:``, then the ``add-node`` / ``remove-node`` steps before), whether the lab runs nodes
    2..'s registrars (``sip-N``, ``sips-N``: only in a scenario with a ``sip`` or ``call`` step) and
    its HTTPS config download (``https-config``: only with ``https_key``)."""

    def __init__(self, clusters: dict[str, ClusterSpec], registers: bool) -> None:
        self.nodes = {name: int(spec.options.get("nodes", 1)) for name, spec in clusters.items()}
        self.registers = registers
        self.https_config = {name for name, spec in clusters.items() if "https_key" in spec.options}

    def certs(self, cluster: str, nodes: int | None = None) -> tuple[str, ...]:
        """What ``regenerate`` takes (:meth:`LabCluster.regenerate`): every node's CallManager and TVS
        identity (``callmanager``, ``tvs`` for node 1, ``tvs-2`` ...), ITLRecovery and CAPF."""
        from phoneemu.lab.pki import node_identity

        count = self.nodes[cluster] if nodes is None else nodes
        shared = [c for c in ADMIN_CHOICES[("regenerate", "cert")] if c not in _NODE_CERTS]
        return (*(node_identity(c, n) for n in range(1, count + 1) for c in _NODE_CERTS), *shared)

    def services(self, cluster: str, nodes: int | None = None, registers: bool | None = None) \
            -> tuple[str, ...]:
        """What a ``service`` step names (:meth:`LabServers.stop_service`): :data:`_SERVICES`, nodes 2..'s
        TVS (``tvs-2`` ...), when the lab runs them, registrars (:func:`node_registrars`), and its HTTPS
        config download (:data:`HTTPS_CONFIG_SERVICE`) with ``https_key``."""
        from phoneemu.lab.pki import node_identity
        from phoneemu.lab.state import node_registrars

        count = self.nodes[cluster] if nodes is None else nodes
        sip = self.registers if registers is None else registers
        return (*_SERVICES, *(node_identity("tvs", n) for n in range(2, count + 1)),
                *(node_registrars(count) if sip else ()),
                *((HTTPS_CONFIG_SERVICE,) if cluster in self.https_config else ()))

    def at_step(self, cluster: str, name: str) -> str:
        """Why a certificate or service of nodes 2.. (or the HTTPS config download) is not there at this
        step, or nothing."""
        if name == HTTPS_CONFIG_SERVICE and cluster not in self.https_config:
            return (f"; {HTTPS_CONFIG_SERVICE} runs only on a lab with the HTTPS identity: clusters: "
                    f"{{{cluster}: {{https_key: ec-p256}}}}")
        if name in self.certs(cluster, _MAX_NODES) or name in self.services(cluster, _MAX_NODES):
            return (f"; cluster {cluster!r} has {counted(self.nodes[cluster], 'node')} at this step: nodes:, "
                    "add-node")
        if name in self.services(cluster, _MAX_NODES, registers=True):
            return "; nodes 2..'s registrars run only in a scenario with a sip or call step"
        return ""

    def change_nodes(self, cluster: str, by: int) -> str | None:
        """``add-node`` (``by`` 1) or ``remove-node`` (-1) as the lab does it, or why the lab refuses it."""
        count = self.nodes[cluster] + by
        if count > _MAX_NODES:
            return f"cluster {cluster!r} already has {_MAX_NODES} nodes, the most a lab cluster has"
        if count < 1:
            return f"cluster {cluster!r} has one node here: the publisher (node 1) cannot be removed"
        self.nodes[cluster] = count
        return None


def _step(ctx: _Ctx, i: int, node: _Node, clusters: dict[str, ClusterSpec],
          groups: dict[str, PhoneGroup], *, labs: _Labs) -> Step | Expectation:
    """A step; every mistake of it told at once (its verb's own rules say where a check reads another
    value: an admin step's arguments are known once its ``op`` is)."""
    field = f"steps[{i}]"
    m = ctx.mapping(node, field)
    if len(m) != 1:
        raise ctx.fail(node, field, f"a step has exactly one verb (one of: {', '.join(STEP_KINDS)}); "
                                    f"got {', '.join(m) or 'none'}")
    kind, arg = next(iter(m.items()))
    field = f"{field}.{kind}"
    if kind == "expect":
        return _expectation(ctx, arg, field, groups)
    make = _STEP_ARGS.get(kind)
    if make is None:
        hint = _admin_step_hint(str(kind), arg) or _did_you_mean(str(kind), STEP_KINDS)
        raise ctx.fail(node, field, f"unknown step {kind!r}{hint} (expected one of: {', '.join(STEP_KINDS)})")
    found = _Found()
    args = make(_StepCtx(ctx, kind=kind, arg=arg, field=field, clusters=clusters, groups=groups, labs=labs,
                         found=found))
    found.raise_any()
    return Step(kind=kind, where=ctx.where(arg if arg.value is not None else node), args=args)


def _admin_step_hint(kind: str, arg: _Node) -> str:
    """`` — a lab operation is an admin step: admin: {op: regenerate, cert: itlrecovery}`` for an unknown step
    whose verb is a lab operation (``- regenerate: itlrecovery``; ``_`` for ``-`` and any case too), the
    value given placed where it goes when that is plain (:func:`_admin_step_fields`); else nothing."""
    op = kind.casefold().replace("_", "-")
    if op not in ADMIN_OPERATIONS:
        return ""
    return f" — a lab operation is an admin step: admin: {{{', '.join(_admin_step_fields(op, arg))}}}"


def _admin_step_fields(op: str, arg: _Node) -> list[str]:
    """``op: OP`` and the value given to the verb ``OP`` as the admin step's arguments: a mapping's keys as
    they are; nothing for no value; another value under the one argument it can be — the argument whose
    values it is one of, else the one required argument, else the only argument, else ``on`` for a boolean,
    ``phones`` for a list — or ``...`` when that is not plain."""
    fields = [f"op: {op}"]
    value = arg.value
    if isinstance(value, dict):
        return fields + [f"{k}: {_flow(v)}" for k, v in value.items() if k != "op"]
    if value is None:
        return fields
    names = sorted(ADMIN_OPERATIONS[op])
    chosen = [n for n in names if str(value) in ADMIN_CHOICES.get((op, n), ())]
    required = list(ADMIN_REQUIRED.get(op, ()))
    fitting = next((c for c in (chosen, required, names) if len(c) == 1), [])
    if not fitting and isinstance(value, bool) and "on" in names:
        fitting = ["on"]
    if not fitting and isinstance(value, list) and "phones" in names:
        fitting = ["phones"]
    return fields + ([f"{fitting[0]}: {_flow(arg)}"] if fitting else ["..."])


_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/@+-]*")


def _flow(node: _Node) -> str:
    """``node`` written back as YAML in flow style, for a hint (each text at most 40 characters; quoted where
    YAML would read it as another thing: ``"on"``, ``"12"``)."""
    v = node.value
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, list):
        return f"[{', '.join(_flow(n) for n in v)}]"
    if isinstance(v, dict):
        return f"{{{', '.join(f'{k}: {_flow(n)}' for k, n in v.items())}}}"
    if isinstance(v, str):
        import json

        text = _shown(v)
        return text if _PLAIN.fullmatch(text) and yaml.safe_load(text) == text else json.dumps(text)
    return _shown(node.raw if node.raw is not None else str(v))


class _StepCtx:
    """What a step's arguments are read with: the file, the step's verb, argument node and field, the
    clusters and groups it may name, the labs as they are at this step, and its mistakes so far."""

    def __init__(self, ctx: _Ctx, *, kind: str, arg: _Node, field: str, clusters: dict[str, ClusterSpec],
                 groups: dict[str, PhoneGroup], labs: _Labs, found: _Found) -> None:
        self.ctx, self.kind, self.arg, self.field = ctx, kind, arg, field
        self.clusters, self.groups, self.labs, self.found = clusters, groups, labs, found

    def fields(self, allowed: Iterable[str] | None = None, required: Iterable[str] = ()) -> dict[str, _Node]:
        """The argument mapping's known keys (the unknown and missing ones are mistakes)."""
        return self.ctx.fields(self.arg, self.field, self.found, allowed=allowed, required=required)

    def check(self, fn: Callable[..., _T], *args: Any) -> _T | None:
        return self.found.check(fn, *args)

    def cluster_ref(self, n: _Node, f: str) -> str:
        """A cluster of the file, by name."""
        name = self.ctx.string(n, f)
        if name not in self.clusters:
            raise self.ctx.fail(n, f, f"unknown cluster {name!r} (defined: {_listed(self.clusters)})")
        return name

    def lab_ref(self, am: dict[str, _Node]) -> str:
        """The built-in lab a lab-side step acts on (its ``cluster``, default the first cluster)."""
        f = self.field
        name = self.cluster_ref(am["cluster"], f"{f}.cluster") if "cluster" in am else \
            next(iter(self.clusters))
        if self.clusters[name].external is not None:
            raise self.ctx.fail(am.get("cluster", self.arg), f"{f}.cluster" if "cluster" in am else f,
                                f"cluster {name!r} is external: {self.kind} steps need the built-in lab")
        return name

    def phones(self, n: _Node, f: str) -> tuple[str, ...] | None:
        return self.check(_phone_refs, self.ctx, n, f, self.groups)


def _boot_args(s: _StepCtx) -> dict[str, Any]:
    """``boot``, ``reset``, ``erase``, ``factory-reset``: ``GROUP``/``[...]``, or ``{phones, times}``."""
    if not isinstance(s.arg.value, dict):
        return {"phones": s.phones(s.arg, s.field) if s.arg.value is not None else ("all",)}
    am = s.fields(allowed=("phones", "times"), required=("phones",))
    args: dict[str, Any] = {"phones": s.phones(am["phones"], f"{s.field}.phones")
                            if "phones" in am else None}
    if "times" in am:
        args["times"] = s.check(s.ctx.integer, am["times"], f"{s.field}.times", 1, 100)
    return args


def _admin_args(s: _StepCtx) -> dict[str, Any]:
    """``admin``: ``op`` first (staged: it says which arguments the step takes), then each argument."""
    ctx, arg, field = s.ctx, s.arg, s.field
    am = ctx.mapping(arg, field)
    if "op" not in am:
        raise ctx.fail(arg, field, "missing required field 'op'")
    op = ctx.string(am["op"], f"{field}.op")
    if op not in ADMIN_OPERATIONS:
        raise ctx.fail(am["op"], f"{field}.op", f"unknown operation {op!r}"
                                                f"{_did_you_mean(op, ADMIN_OPERATIONS)} (expected one of: "
                                                f"{', '.join(ADMIN_OPERATIONS)})")
    am = s.fields(allowed=ADMIN_OPERATIONS[op] | {"op", "cluster"}, required=ADMIN_REQUIRED.get(op, ()))
    misspelt = len(am) < len(arg.value)  # staged: a misspelt argument may be the one that was missing
    lab = s.check(s.lab_ref, am)
    args: dict[str, Any] = {"op": op}
    bad: set[str] = set()  # arguments already found wrong: no second mistake of theirs
    for name, value in am.items():
        if name not in ("op", "cluster", "phones"):
            args[name] = s.check(_admin_arg, s, op, name, value, lab)
            if args[name] is None:
                bad.add(name)
    if op == "capf":
        _capf_values(ctx, {k: v for k, v in am.items() if k not in bad}, field, s.found)
        if not misspelt:
            s.check(_capf_auth_explicit, ctx, arg, field, am, "install")
    if op == "calling-search-space" and ("partition" in am or "css" in am or not misspelt):
        args.update(s.check(_dial_plan_values, ctx, arg, am, field) or {})
    args["cluster"] = lab
    if "phones" in am:
        args["phones"] = s.phones(am["phones"], f"{field}.phones")
    if op in ("add-node", "remove-node") and lab is not None:
        problem = s.labs.change_nodes(lab, 1 if op == "add-node" else -1)
        if problem is not None:
            s.found.mistakes.append(ctx.fail(am["op"], f"{field}.op", problem))
    if op == "exchange" and "with" in am and lab is not None:  # staged: the lab it exchanges with known
        s.check(_exchange_with, s, am["with"], lab)
    return args


def _admin_arg(s: _StepCtx, op: str, name: str, value: _Node, lab: str | None) -> Any:
    """One argument of an admin ``op``: one of its choices (a ``regenerate`` ``cert``: of the lab's nodes at
    this step), else typed as the lab reads it (here, not by the lab when the step runs)."""
    ctx, at = s.ctx, f"{s.field}.{name}"
    cert = (op, name) == ("regenerate", "cert")  # node 2..'s tvs-2: if the lab has a node 2 then
    choices = (s.labs.certs(lab) if lab is not None else None) if cert else ADMIN_CHOICES.get((op, name))
    if choices is not None:
        text = ctx.string(value, at)
        said = text.lower() if (op, name) in _ADMIN_ANY_CASE else text  # as the lab reads them
        if said not in choices:
            why = s.labs.at_step(lab, said) if cert and lab is not None else ""
            near = "" if why else _did_you_mean(said, choices)
            raise ctx.fail(value, at, f"{op}: unknown {name} {said!r}{near} (expected one of: "
                                      f"{', '.join(choices)}{why})")
        return text
    if name in _ADMIN_BOOLS:  # reset_phones: Unified CM 10.5+ resets the phones itself
        return ctx.boolean(value, at)
    if name in _ADMIN_INTS:
        return ctx.integer(value, at, *_ADMIN_INTS[name])
    if name == "auth_string":
        return ctx.quoted(value, at, "auth_string")
    if name not in _ADMIN_TEXTS:
        return _plain(value)
    text = ctx.string(value, at)  # as text: password: 1234 reached the lab as the number 1234
    if (op, name) == ("load", "name"):  # as a cluster's load: (was refused by the lab when it ran)
        problem = _lab_option_problem("load", text)
        if problem is not None:
            raise ctx.fail(value, at, problem)
    return text


def _exchange_with(s: _StepCtx, node: _Node, lab: str) -> None:
    """``exchange``'s ``with``: another built-in lab of the file (was refused by the lab when the step ran,
    an ERROR, exit 1)."""
    at = f"{s.field}.with"
    other = s.cluster_ref(node, at)
    if other == lab:
        raise s.ctx.fail(node, at, f"exchange with {other!r}, the cluster itself: name another cluster of "
                                   "the file")
    if s.clusters[other].external is not None:
        raise s.ctx.fail(node, at, f"cluster {other!r} is external: exchange needs two built-in labs")


def _move_args(s: _StepCtx) -> dict[str, Any]:
    """``move: {phones, to, keep_trust}``."""
    am = s.fields(allowed=("phones", "to", "keep_trust"), required=("phones", "to"))
    return {"phones": s.phones(am["phones"], f"{s.field}.phones") if "phones" in am else None,
            "to": s.check(s.cluster_ref, am["to"], f"{s.field}.to") if "to" in am else None,
            "keep_trust": s.check(s.ctx.boolean, am["keep_trust"], f"{s.field}.keep_trust")
            if "keep_trust" in am else True}


def _service_args(s: _StepCtx) -> dict[str, Any]:
    """``service: {cluster, SERVICE: start|stop ...}``: staged, the services are the lab's at this step."""
    ctx, field = s.ctx, s.field
    am = ctx.mapping(s.arg, field)
    lab = s.lab_ref(am)
    services = s.labs.services(lab)
    args: dict[str, Any] = {"cluster": lab}
    for key, val in am.items():
        if key == "cluster":
            continue
        if key not in services:
            why = s.labs.at_step(lab, key)
            near = "" if why else _did_you_mean(key, services)
            s.found.mistakes.append(ctx.fail(val, f"{field}.{key}", f"unknown field{near} (expected one of: "
                                                                    f"cluster, {', '.join(services)}{why})"))
            continue
        args[key] = s.check(_service_state, ctx, val, f"{field}.{key}")
    if len(am) == ("cluster" in am):
        raise ctx.fail(s.arg, field, "name at least one service: tvs, tftp, http or capf")
    return args


def _service_state(ctx: _Ctx, node: _Node, field: str) -> str:
    state = ctx.string(node, field)
    if state not in ("start", "stop"):
        raise ctx.fail(node, field, f"expected start or stop, got {state!r}"
                                    f"{_did_you_mean(state, ('start', 'stop'))}")
    return state


def _network_args(s: _StepCtx) -> dict[str, Any]:
    """``network``: ``loss``, ``delay_ms``, ``seed``, ``cluster``, ``fail``, ``tftp`` and the attacks."""
    ctx, field = s.ctx, s.field
    am = s.fields(allowed=("loss", "delay_ms", "seed", "cluster", "fail", "tftp", "tamper_media",
                           "tamper_signalling", "replay_sip"))
    args: dict[str, Any] = {}
    if "fail" in am:
        args["fail"] = s.check(_fail_names, ctx, am["fail"], f"{field}.fail")
    if "loss" in am:
        args["loss"] = s.check(_loss, ctx, am["loss"], f"{field}.loss")
    if "delay_ms" in am:
        args["delay_ms"] = s.check(ctx.integer, am["delay_ms"], f"{field}.delay_ms", 0, 10_000)
    if "seed" in am:
        args["seed"] = s.check(ctx.integer, am["seed"], f"{field}.seed")
    if "tftp" in am:
        args["tftp"] = s.check(_timing, ctx, am["tftp"], f"{field}.tftp")
    for attack in ("tamper_media", "tamper_signalling", "replay_sip"):
        if attack in am:
            args[attack] = s.check(ctx.boolean, am[attack], f"{field}.{attack}")
    args["cluster"] = s.check(s.lab_ref, am)
    return args


def _fail_names(ctx: _Ctx, node: _Node, field: str) -> list[str]:
    """A ``network`` step's ``fail``: served file names or ``*`` patterns."""
    items = node.value if isinstance(node.value, list) else [node]
    for n, item in enumerate(items):
        if not isinstance(item.value, str):  # fail: 3 is not "3 failures": it names no file
            raise ctx.fail(item, f"{field}[{n}]", f"expected a served file name or * pattern, got "
                                                  f"{_got(item)} (e.g. fail: ['ITLSEP{{mac}}.tlv', "
                                                  "'*.cnf.xml.sgn']; "
                                                  "quote a name YAML would read as a number)")
    names = list(ctx.names(node, field))
    for n, (name, item) in enumerate(zip(names, items, strict=True)):
        if _served_name_problem(name):
            raise ctx.fail(item, f"{field}[{n}]", f"expected a served file name or * pattern (1..255 "
                                                  f"characters, no path), got {_shown(name)!r}")
    return names


def _loss(ctx: _Ctx, node: _Node, field: str) -> float:
    loss = node.value
    _as_written(ctx, node, field, "a fraction in [0, 1)")
    if isinstance(loss, bool) or not isinstance(loss, (int, float)) or not 0 <= loss < 1:
        raise ctx.fail(node, field, f"expected a fraction in [0, 1), got {loss!r}")
    return float(loss)


def _tamper_args(s: _StepCtx) -> dict[str, Any]:
    """``tamper: {cluster, file, offset}``."""
    am = s.fields(allowed=("cluster", "file", "offset"), required=("file",))
    args: dict[str, Any] = {"file": s.check(_served_file, s.ctx, am["file"], f"{s.field}.file")
                            if "file" in am else None,
                            "cluster": s.check(s.lab_ref, am)}
    if "offset" in am:
        args["offset"] = s.check(s.ctx.integer, am["offset"], f"{s.field}.offset", -(1 << 20), 1 << 20)
    return args


def _served_file(ctx: _Ctx, node: _Node, field: str) -> str:
    name = ctx.string(node, field)
    if _served_name_problem(name):  # '' or a path: was a failed step (ERROR) when it ran
        raise ctx.fail(node, field, f"expected a served file name (1..255 characters, no path; {{mac}} for "
                                    f"each phone's), got {_shown(name)!r}")
    return name


def _clock_args(s: _StepCtx) -> dict[str, Any]:
    """``clock: {advance: DURATION}``."""
    am = s.ctx.mapping(s.arg, s.field, allowed=("advance",), required=("advance",))
    at = f"{s.field}.advance"
    _as_written(s.ctx, am["advance"], at, "a duration like 90s, 10m, 2d or 25y")
    try:
        return {"advance": parse_duration(am["advance"].value)}
    except ScenarioError as exc:
        raise s.ctx.fail(am["advance"], at, exc.message) from None


def _set_key_args(s: _StepCtx) -> dict[str, Any]:
    """``set-key: {phones, key}``: the key one every phone named takes (staged: the phones and the key
    read), by its group's profile."""
    am = s.fields(allowed=("phones", "key"), required=("phones", "key"))
    key = s.check(_hex_key, s.ctx, am["key"], f"{s.field}.key") if "key" in am else None
    phones = s.phones(am["phones"], f"{s.field}.phones") if "phones" in am else None
    if key is not None and phones is not None:
        s.check(_key_fits_phones, s, am["key"], key, phones)
    return {"phones": phones, "key": key}


def _hex_key(ctx: _Ctx, node: _Node, field: str) -> str:
    key = ctx.quoted(node, field, "key")
    if not re.fullmatch(r"[0-9A-Fa-f]{32}|[0-9A-Fa-f]{64}", key):
        raise ctx.fail(node, field, "expected 32 or 64 hex digits")
    return key


def _key_fits_phones(s: _StepCtx, node: _Node, key: str, refs: tuple[str, ...]) -> None:
    """A ``set-key`` key is one every named phone's profile takes (was an ERROR when the step ran, naming
    no line): the first group whose phones refuse it is named."""
    for group in _groups_of(refs, s.groups):
        problem = _key_problem(profile_from_dict(group.profile, group.profile_overrides), key)
        if problem is not None:
            raise s.ctx.fail(node, f"{s.field}.key", f"group {group.name!r}: {problem}")


def _groups_of(refs: tuple[str, ...], groups: dict[str, PhoneGroup]) -> list[PhoneGroup]:
    """The groups of the phones ``refs`` names (groups, MACs, ``all``), each once, in file order."""
    names: set[str] = set()
    for ref in refs:
        if ref == "all":
            names.update(groups)
        elif ref in groups:
            names.add(ref)
        else:
            owner = _phone_of(groups, int(ref.replace(":", ""), 16))
            names.update(() if owner is None else (owner.name,))
    return [g for name, g in groups.items() if name in names]


def _capf_args(s: _StepCtx) -> dict[str, Any]:
    """``capf: {phones, auth_string}``: the phones' CAPF session, the string typed in first."""
    am = s.fields(allowed=("phones", "auth_string"), required=("phones",))
    args: dict[str, Any] = {"phones": s.phones(am["phones"], f"{s.field}.phones") if "phones" in am else None}
    if "auth_string" in am:
        args["auth_string"] = s.check(s.ctx.quoted, am["auth_string"], f"{s.field}.auth_string",
                                      "auth_string")
    return args


def _call_args(s: _StepCtx) -> dict[str, Any]:
    """``call: {phones, to, packets, cluster}``: staged, the called group is checked against the callers."""
    ctx, field = s.ctx, s.field
    am = s.fields(allowed=("phones", "to", "packets", "cluster"), required=("phones", "to"))
    to = s.check(_call_target, s, am["to"]) if "to" in am else None
    callers = s.phones(am["phones"], f"{field}.phones") if "phones" in am else None
    if to is not None and callers is not None:
        s.check(_called_apart, s, am["to"], to, callers)
    return {"phones": callers, "to": to,
            "packets": s.check(ctx.integer, am["packets"], f"{field}.packets", 1, 1000)
            if "packets" in am else 10,
            "cluster": s.check(s.cluster_ref, am["cluster"], f"{field}.cluster") if "cluster" in am else None}


def _call_target(s: _StepCtx, node: _Node) -> str:
    to = s.ctx.string(node, f"{s.field}.to")
    if to not in CALL_TARGETS and to not in s.groups:
        raise s.ctx.fail(node, f"{s.field}.to", f"expected one of {', '.join(CALL_TARGETS)} (the lab's media "
                                                f"resources) or a phone group, got {to!r}"
                                                f"{_did_you_mean(to, [*CALL_TARGETS, *s.groups])}")
    return to


def _called_apart(s: _StepCtx, node: _Node, to: str, callers: tuple[str, ...]) -> None:
    """A called group is one phone, not among the callers (it answers while they call)."""
    by_mac = {int(ref.replace(":", ""), 16) for ref in callers if _MAC.match(ref.replace(":", ""))}
    group = s.groups.get(to)
    if group is not None and (group.count != 1 or to in callers or "all" in callers
                              or int(group.mac_start, 16) in by_mac):
        raise s.ctx.fail(node, f"{s.field}.to", f"the called group {to!r} must be one phone, not among the "
                                                "callers (it answers while they call)")


def _client_args(s: _StepCtx) -> dict[str, Any]:
    """``https`` / ``sip``: ``GROUP``/``[...]``, or ``{phones, cluster}``."""
    if not isinstance(s.arg.value, dict):
        return {"phones": s.phones(s.arg, s.field) if s.arg.value is not None else ("all",), "cluster": None}
    am = s.fields(allowed=("phones", "cluster"), required=("phones",))
    return {"phones": s.phones(am["phones"], f"{s.field}.phones") if "phones" in am else None,
            "cluster": s.check(s.cluster_ref, am["cluster"], f"{s.field}.cluster")
            if "cluster" in am else None}


#: a step's verb -> what reads its arguments (``expect``: :func:`_expectation`)
_STEP_ARGS: dict[str, Callable[[_StepCtx], dict[str, Any]]] = {
    "boot": _boot_args, "reset": _boot_args, "erase": _boot_args, "factory-reset": _boot_args,
    "admin": _admin_args, "move": _move_args, "service": _service_args, "network": _network_args,
    "tamper": _tamper_args, "clock": _clock_args, "set-key": _set_key_args, "capf": _capf_args,
    "call": _call_args, "https": _client_args, "sip": _client_args,
}


def _served_name_problem(name: str) -> bool:
    """Whether ``name`` can be no served file's name (nor a pattern of them): blank, over 255 characters,
    or a path (``/``, ``\\``, NUL)."""
    return not name.strip() or len(name) > 255 or any(c in name for c in "/\\\0")


def _shown(text: str, most: int = 40) -> str:
    return text if len(text) <= most else text[:most] + "..."


#: the JUnit testcase of a scenario that is an ERROR (and of one an interrupt left not run,
#: :mod:`phoneemu.scenario.reports`): no label's, or a test's name would depend on whether its scenario
#: errored (was: an expectation labelled ``run`` became ``run #2`` then)
_ERROR_CASE = "run"

#: an expectation's keys beside its checks
_EXPECT_KEYS = ("phones", "xfail", "label", "holds_for")


def _expectation(ctx: _Ctx, node: _Node, field: str, groups: dict[str, PhoneGroup]) -> Expectation:
    """An ``expect`` step; every mistake of it told at once. Staged only where one value reads another:
    ``holds_for`` counts the phones ``phones`` names."""
    found = _Found()
    m = ctx.fields(node, field, found, allowed=(*CHECKS, *_EXPECT_KEYS))
    phones = found.check(_phone_refs, ctx, m["phones"], f"{field}.phones", groups) if "phones" in m \
        else ("all",)
    holds_for = None
    if "holds_for" in m and phones is not None:  # staged: a count of the phones named
        holds_for = found.check(_holds_for, ctx, m["holds_for"], f"{field}.holds_for",
                                _named_count(phones, groups))
    checks = {key: found.check(_check_values, ctx, val, f"{field}.{key}", key)
              for key, val in m.items() if key not in _EXPECT_KEYS}
    if not checks and not _maybe_checks(node, m):  # a misspelt check is its own mistake, not "no check" too
        found.mistakes.append(ctx.fail(node, field, f"an expectation needs at least one check "
                                                    f"({', '.join(CHECKS)})"))
    xfail = found.check(_xfail_reason, ctx, m["xfail"], f"{field}.xfail") if "xfail" in m else None
    label = found.check(ctx.string, m["label"], f"{field}.label") if "label" in m else None
    if label is not None and not label.strip():  # was taken, and named the expectation '' or ' '
        found.mistakes.append(ctx.fail(m["label"], f"{field}.label", "empty label: leave label: out for a "
                                       "name made of the phones and checks"))
    if label == _ERROR_CASE:
        found.mistakes.append(ctx.fail(m["label"], f"{field}.label", f"{_ERROR_CASE!r} is the name of the "
                                       "JUnit testcase of a scenario that could not run (an ERROR): choose "
                                       "another label"))
    found.raise_any()
    assert phones is not None
    return Expectation(where=ctx.where(node), phones=phones, checks=checks, holds_for=holds_for,
                       xfail=xfail, label=label)


def _maybe_checks(node: _Node, known: dict[str, _Node]) -> bool:
    """Whether an unknown key of the expectation ``node`` may be a misspelt check: one near a check, or
    near no key at all (``phone``, near ``phones``, is no check: an expectation of it alone checks nothing,
    a mistake of its own)."""
    keys = (*CHECKS, *_EXPECT_KEYS)
    return any(_near(key, keys) not in _EXPECT_KEYS for key in node.value if key not in known)


def _check_values(ctx: _Ctx, val: _Node, field: str, key: str) -> Any:
    """One check of an expectation: its value, or list of values (any of them may hold), each typed as
    the check reads it and, for a check of :data:`CHECKS` with values, one of them (a near miss named)."""
    if val.value == [] and key not in _RECORD_CHECKS:  # any of nothing never holds, all of nothing always
        raise ctx.fail(val, field, "empty list (write at least one value)")
    many = isinstance(val.value, list)
    items = val.value if many else [val]
    found = _Found()
    typed = [found.check(_check_value, ctx, item, f"{field}[{n}]" if many else field, field, key)
             for n, item in enumerate(items)]
    found.raise_any()
    return typed if many else typed[0]


def _check_value(ctx: _Ctx, item: _Node, at: str, field: str, key: str) -> Any:
    """One value of the check ``key`` (``at`` its place, ``field`` the check's)."""
    allowed = CHECKS[key]
    # typed as the check reads them: "no" must not be truthy, {a: 1} must not become a pattern
    if key in _BOOL_CHECKS:
        typed: Any = ctx.boolean(item, at)
    elif key in _INT_CHECKS:
        typed = ctx.integer(item, at, *_INT_CHECKS[key])
    elif key == "call_status":
        typed = _call_status(ctx, item, at)
    else:
        typed = ctx.string(item, at)
        if not typed.strip():
            raise ctx.fail(item, at, "empty text (it would match anything)")
        if key == "reason":
            _reason_code(ctx, item, at, typed)
    if allowed is not None and item.value not in allowed:
        near = _did_you_mean(str(item.value), allowed) if isinstance(item.value, str) else ""
        raise ctx.fail(item, field, f"unknown value {item.value!r}{near} (expected one of: "
                                    f"{', '.join(allowed)})")
    if key in ("rule", "deciding_rule") and not rule_ids.is_known(str(item.value)):
        close = rule_ids.close_matches(str(item.value))
        near = f"; did you mean {' or '.join(close)}" if close else ""
        raise ctx.fail(item, field, f"unknown rule {item.value!r} (a rule id such as G.3.4-vouched-by-tvs, "
                                    f"or a section such as G.3.4{near})")
    return typed


def _named_count(refs: tuple[str, ...], groups: dict[str, PhoneGroup]) -> int:
    """How many phones ``refs`` (groups, MACs, ``all``) name, each once (as the run selects them): the MAC
    spans of the groups named and the MACs, merged and counted, never listed (a group of 100 000 phones
    was listed for each ``holds_for`` naming it: 300 of them took 40 s to load)."""
    spans: list[tuple[int, int]] = []
    for ref in refs:
        named = list(groups.values()) if ref == "all" else [groups[ref]] if ref in groups else []
        spans += [(int(g.mac_start, 16), int(g.mac_start, 16) + g.count) for g in named]
        if not named and ref != "all":
            mac = int(ref.replace(":", ""), 16)
            spans.append((mac, mac + 1))
    count, reach = 0, -1
    for first, end in sorted(spans):
        if end > reach:
            count += end - max(first, reach)
            reach = end
    return count


#: the keys of a ``holds_for`` mapping
_HOLDS_FOR_KEYS = ("at_least", "at_most", "exactly")
_PERCENT = re.compile(r"([0-9]{1,3}(?:\.[0-9]{1,2})?)%", re.ASCII)
_HOLDS_FOR_FORMS = 'all, none, or a mapping such as {at_least: 18}, {at_most: 2} or {at_least: "90%"}'


def _holds_for(ctx: _Ctx, node: _Node, field: str, named: int) -> HoldsFor | None:
    """An expectation's ``holds_for`` (docs/scenarios.md): ``all`` (None, the default), ``none``, or a mapping
    of ``at_least`` / ``at_most`` (or ``exactly``), each a count of the ``named`` phones or a percentage of
    them. A bound no count meets, or one every count meets (it could never fail), is a mistake."""
    if node.value in ("all", "none"):
        return None if node.value == "all" else HoldsFor(at_most=0, text="none")
    if not isinstance(node.value, dict):
        near = _did_you_mean(node.value, ("all", "none")) if isinstance(node.value, str) else ""
        hint = f" (a count: write {{at_least: {node.raw or node.value}}})" \
            if isinstance(node.value, int) and not isinstance(node.value, bool) else ""
        raise ctx.fail(node, field, f"expected {_HOLDS_FOR_FORMS}; got {_described(node)}{near}{hint}")
    m = ctx.mapping(node, field, allowed=_HOLDS_FOR_KEYS)
    if not m:
        raise ctx.fail(node, field, "empty mapping: give at_least, at_most or exactly")
    if "exactly" in m and len(m) > 1:
        other = next(k for k in m if k != "exactly")
        raise ctx.fail(m[other], f"{field}.{other}", "exactly is a bound of its own: give exactly, or "
                                                     "at_least and at_most, not both")
    bounds = {key: _bound_count(ctx, val, f"{field}.{key}", named, key) for key, val in m.items()}
    if "exactly" in bounds:
        count, text = bounds["exactly"]
        return HoldsFor(at_least=count, at_most=count, text=f"exactly {text}")
    at_least, least_text = bounds.get("at_least", (0, ""))
    at_most, most_text = bounds.get("at_most", (None, ""))
    if at_most is not None and at_least > at_most:
        raise ctx.fail(m["at_least"], f"{field}.at_least", f"at least {least_text} is more than at most "
                       f"{most_text} (of {_phones_named(named)}): no count of phones meets both")
    if at_least == 0 and (at_most is None or at_most >= named):
        raise ctx.fail(node, field, f"holds whatever the phones do (0 to {named} of {_phones_named(named)} "
                                    "match): give a bound that can fail")
    said = ([f"at least {least_text}"] if "at_least" in m else []) + \
        ([f"at most {most_text}"] if "at_most" in m else [])
    return HoldsFor(at_least=at_least, at_most=at_most, text=" and ".join(said))


def _phones_named(named: int) -> str:
    return f"the {named} phones the expectation names" if named != 1 else "the 1 phone the expectation names"


def _bound_count(ctx: _Ctx, node: _Node, field: str, named: int, key: str) -> tuple[int, str]:
    """A ``holds_for`` bound as a count of the ``named`` phones and as the reports say it: a count 0..named,
    or a percentage ``"90%"`` (0..100, two decimals at most) of them, rounded so that the share is met
    (``at_least`` up, ``at_most`` down; ``exactly`` must come to a whole number of phones)."""
    v = node.value
    _as_written(ctx, node, field, f"a count of phones (0..{named})")
    if isinstance(v, int) and not isinstance(v, bool):
        if v < 0:
            raise ctx.fail(node, field, f"a count of phones cannot be negative, got {v}")
        if v > named:
            raise ctx.fail(node, field, f"{v} is more than {_phones_named(named)}")
        return v, str(v)
    written = v.strip() if isinstance(v, str) else None
    share = _PERCENT.fullmatch(written) if written is not None else None
    if written is None or share is None:
        raise ctx.fail(node, field, f"expected a count of phones (0..{named}) or a percentage such as "
                                    f'"90%", got {_described(node)}')
    from fractions import Fraction

    percent = Fraction(share.group(1))
    if percent > 100:
        raise ctx.fail(node, field, f"a percentage is 0% to 100%, got {written!r}")
    exact = percent * named / 100
    if key == "exactly" and exact.denominator != 1:
        raise ctx.fail(node, field, f"{written} of {_phones_named(named)} is {float(exact):g} phones, not "
                                    "a whole number: give a count")
    count = math.ceil(exact) if key == "at_least" else math.floor(exact)
    return count, f"{count} = {written}"


_CODE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)+")


def _reason_code(ctx: _Ctx, node: _Node, field: str, value: str) -> None:
    """A ``reason`` written as a code (lower-case words joined by ``-``) must be part of a rejection code
    (:class:`~phoneemu.errors.VerifyReason`): a misspelt one would never match, and under ``xfail`` stay
    an expected failure for ever. Other text is matched against the decisions' reasons as written."""
    from phoneemu.errors import VerifyReason

    codes = [r.value for r in VerifyReason]
    if _CODE.fullmatch(value) and not any(value in code for code in codes):
        raise ctx.fail(node, field, f"unknown reason code {value!r}{_did_you_mean(value, codes)} (codes: "
                       f"{', '.join(codes)}; other text is matched in the decisions' reasons as written)")


def _xfail_reason(ctx: _Ctx, node: _Node, field: str) -> str:
    """An ``xfail`` mark's reason: text that says why, never empty (the report shows it)."""
    reason = ctx.string(node, field)
    if not reason.strip():
        raise ctx.fail(node, field, "empty reason: say why the expectation is expected to fail")
    return reason


def _call_status(ctx: _Ctx, node: _Node, field: str) -> int | str:
    """A ``call_status`` value: a SIP final status 200..699 (``404``), or ``none`` (no INVITE answered)."""
    if node.value == "none":
        return "none"
    v = node.value
    _as_written(ctx, node, field, "a SIP final status 200..699")
    if isinstance(v, bool) or not isinstance(v, int) or not 200 <= v <= 699:
        raise ctx.fail(node, field, f"expected a SIP final status 200..699 (e.g. 200, 404, 480) or none, "
                                    f"got {_got(node)}")
    return v


def _yaml_mistake(exc: yaml.YAMLError, path: str) -> ScenarioError:
    """A YAML syntax error as a ``file:line`` mistake naming its column too, and where the construct it
    broke began (``invalid YAML at column 9: expected ',' or ']', but got ':' (while parsing a flow
    sequence at line 21, column 12)``): an unclosed ``[`` is found lines after it was opened."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return ScenarioError(f"invalid YAML: {problem}", file=path)
    began = getattr(exc, "context_mark", None)
    context = getattr(exc, "context", None)
    opened = f" ({context} at line {began.line + 1}, column {began.column + 1})" if began and context else ""
    return ScenarioError(f"invalid YAML at column {mark.column + 1}: {problem}{opened}{_yaml_hint(problem)}",
                         file=path, line=mark.line + 1)


def _yaml_hint(problem: str) -> str:
    """What to do about the two syntax errors PyYAML words for its own use: a TAB where YAML wants
    spaces, and a second document (``---``) in a file that holds one scenario."""
    if "'\\t'" in problem:
        return " — a TAB: YAML indents (and separates a key from its value) with spaces, never TABs"
    if "another document" in problem:
        return (" — this '---' starts a second document: a scenario file holds one scenario, put the other "
                "in a file of its own")
    return ""


#: what YAML counts as a line break (its marks' lines: a lone CR, NEL, U+2028 and U+2029 too)
_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


def _line_at(text: str, index: int) -> int:
    """The line (1-based, as YAML counts them: :data:`_LINE_BREAK`) of ``text[index]``."""
    return len(_LINE_BREAK.findall(text, 0, index)) + 1


def load_text(text: str, path: str = "<string>") -> Scenario:
    """Parse and validate one scenario document; raises ScenarioError with file:line.

    The mistakes of every cluster, then of every phone group, then of every step are all told in one
    error (:func:`~phoneemu.errors.several`): the clusters' alone when they have some (groups name
    clusters), likewise the groups' before the steps'."""
    ctx = _Ctx(path)
    bad = next((i for i, ch in enumerate(text) if ch < " " and ch not in "\t\n\r"), None)
    if bad is not None:  # YAML refuses control characters; say where, as file:line
        nul = " (a NUL: UTF-16 or binary? a scenario file is UTF-8 text)" if text[bad] == "\0" else ""
        raise ScenarioError(f"control character 0x{ord(text[bad]):02x} is not allowed in YAML{nul}",
                            file=path, line=_line_at(text, bad))
    try:
        loader = _CountingLoader(text)
    except yaml.reader.ReaderError as exc:  # other characters the YAML reader refuses (DEL, C1, U+FFFE)
        code = exc.character if isinstance(exc.character, int) else 0
        what = "a lone surrogate" if 0xD800 <= code <= 0xDFFF else "a noncharacter" if code >= 0xFFFE \
            else "a control character"
        at = min(max(exc.position, 0), len(text))  # was: PyYAML's two-line message, no line
        column = at - max(text.rfind(c, 0, at) for c in "\n\r\x85\u2028\u2029")
        raise ScenarioError(f"{what} (U+{code:04X}) at column {column} is not allowed in YAML", file=path,
                            line=_line_at(text, at)) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"invalid YAML: {exc}", file=path) from None
    try:
        root_node = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _yaml_mistake(exc, path) from None
    except ScenarioError as exc:
        raise ScenarioError(exc.message, file=path, line=exc.line) from None
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise ScenarioError("nested too deeply for YAML to read", file=path) from None
    finally:
        loader.dispose()
    if root_node is None:
        raise ScenarioError("empty scenario file", file=path, line=1)
    try:
        root = _convert(root_node, loader)
    except ScenarioError as exc:
        raise ScenarioError(exc.message, file=path, line=exc.line) from None
    except yaml.YAMLError as exc:
        raise _yaml_mistake(exc, path) from None
    _check_texts(ctx, root, "")
    found = _Found()
    top = ctx.fields(root, "scenario", found, allowed=TOP_KEYS, required=("phones", "steps"))
    about = _about(ctx, root, top, path, found)
    # staged: phone groups name clusters, steps name groups: a group naming a broken cluster, or a step
    # naming a broken group, would be the same mistake told twice
    clusters = _clusters(ctx, root, top, found)
    groups = _groups(ctx, top, clusters, found) if clusters is not None and "phones" in top else None
    steps = _steps(ctx, top["steps"], clusters, groups, found) if "steps" in top else None
    found.mistakes.sort(key=lambda m: m.line or 0)  # as the file reads, top to bottom
    found.raise_any()
    assert clusters is not None and groups is not None and steps is not None
    return Scenario(path=path, clusters=clusters, phones=groups, steps=steps, **about)


def _about(ctx: _Ctx, root: _Node, top: dict[str, _Node], path: str, found: _Found) -> dict[str, Any]:
    """The scenario's ``name`` (default the file's), ``description``, ``reproduces``, ``tags`` and
    ``timeout``, each checked whatever the rest of the file holds."""
    stem = Path(path).name
    for suffix in _SCENARIO_SUFFIXES:  # in any case: a file given by name, B.YAML, is "B" (was "B.YAML")
        stem = stem[:-len(suffix)] if stem.lower().endswith(suffix) else stem
    if "name" not in top and _text_problem(stem) is not None:  # e.g. a byte that is not UTF-8 (surrogate)
        found.mistakes.append(ctx.fail(root, "name", f"the file name cannot be the scenario's name: "
                                                     f"{_text_problem(stem)}; write a name: key"))
    name = found.check(ctx.string, top["name"], "name") if "name" in top else stem
    if name is not None and not name.strip():  # name: '' ran, its verdict line and report suite nameless
        found.mistakes.append(ctx.fail(top.get("name", root), "name", "empty name: reports and -k tell "
                                       "scenarios apart by it (leave name: out for the file name)"))
    texts = {key: found.check(ctx.string, top[key], key) if key in top else ""
             for key in ("description", "reproduces")}
    return {"name": name, "description": texts["description"], "reproduces": texts["reproduces"],
            "tags": found.check(_tags, ctx, top["tags"]) if "tags" in top else (),
            "timeout": found.check(_timeout, ctx, top["timeout"]) if "timeout" in top else None,
            "name_line": top["name"].line if "name" in top else None}


def _tags(ctx: _Ctx, node: _Node) -> tuple[str, ...]:
    """``tags: [a, b]``; ``tags: ci`` is the one tag ``ci``, a number its text (``tags: [2024]``: ``--tag
    2024``). A tag that is empty, has spaces around it or holds a comma (``tags: ci, tvs`` is the one tag
    'ci, tvs') is a mistake: no ``--tag`` would select it (were taken silently)."""
    tags = ctx.names(node, "tags")
    items = node.value if isinstance(node.value, list) else [node]
    mistakes: list[ScenarioError] = []
    for i, (tag, n) in enumerate(zip(tags, items, strict=True)):
        field = f"tags[{i}]" if isinstance(node.value, list) else "tags"
        if not tag.strip():
            mistakes.append(ctx.fail(n, field, "empty tag: --tag selects by a word (leave it out)"))
        elif tag != tag.strip():
            mistakes.append(ctx.fail(n, field, f"{tag!r} has spaces around it: --tag {tag.strip()} would not "
                                               f"select it (write {tag.strip()!r})"))
        elif "," in tag:
            words = ", ".join(w.strip() for w in tag.split(",") if w.strip())
            mistakes.append(ctx.fail(n, field, f"{tag!r} is one tag with a comma in it: for several, write "
                                               f"tags: [{words}]"))
    err = several(mistakes)
    if err is not None:
        raise err
    return tags


def _clusters(ctx: _Ctx, root: _Node, top: dict[str, _Node], found: _Found) -> dict[str, ClusterSpec] | None:
    """The file's clusters (``lab`` when it names none), or None when they have mistakes (in ``found``:
    each cluster's, then the ``tftp_for`` that names no lab cluster of the file)."""
    clusters_node = top.get("clusters")
    if clusters_node is None:
        return {"lab": ClusterSpec(name="lab", where=ctx.where(root))}
    before = len(found.mistakes)
    nodes = found.check(ctx.mapping, clusters_node, "clusters")
    if nodes is None:
        return None
    clusters: dict[str, ClusterSpec] = {}
    for name, n in nodes.items():
        spec = found.check(_cluster, ctx, name, n)
        if spec is not None:
            clusters[name] = spec
    if len(found.mistakes) > before:
        return None
    if not clusters:
        found.mistakes.append(ctx.fail(clusters_node, "clusters", "define at least one cluster"))
        return None
    for name, spec in clusters.items():  # staged: names another cluster, all of them read
        home = spec.options.get("tftp_for")
        if home is not None and (home not in clusters or clusters[home].external is not None):
            found.mistakes.append(ctx.fail(nodes[name], f"clusters.{name}.tftp_for", f"tftp_for names "
                                           f"{home!r}, not a built-in lab cluster of this file"))
    return None if len(found.mistakes) > before else clusters


def _groups(ctx: _Ctx, top: dict[str, _Node], clusters: dict[str, ClusterSpec],
            found: _Found) -> dict[str, PhoneGroup] | None:
    """The file's phone groups, or None when they have mistakes (in ``found``: each group's, then the
    groups whose name reads as another's phone or whose MACs overlap, both read from every group). A group
    with no value (``p:``) is one with no field, ``p: {}``, as a cluster ``c:`` is (was: "expected a
    mapping, got nothing" for the one, a lab cluster for the other)."""
    before = len(found.mistakes)
    group_nodes = found.check(ctx.mapping, top["phones"], "phones")
    if group_nodes is None:
        return None
    group_nodes = {name: _Node({}, n.line) if n.value is None else n for name, n in group_nodes.items()}
    groups: dict[str, PhoneGroup] = {}
    for name, n in group_nodes.items():
        if name == "all":
            found.mistakes.append(ctx.fail(n, "phones.all", "'all' is reserved for every phone"))
            continue
        group = found.check(_phones, ctx, name, n, clusters)
        if group is not None:
            groups[name] = group
    found.mistakes.extend(_groups_named_as_phones(ctx, groups, group_nodes))
    found.mistakes.extend(_shared_macs(ctx, groups, group_nodes))
    if len(found.mistakes) > before:
        return None
    if not groups:
        found.mistakes.append(ctx.fail(top["phones"], "phones", "define at least one phone group"))
        return None
    total = sum(g.count for g in groups.values())
    if total > MAX_PHONES:
        found.mistakes.append(ctx.fail(top["phones"], "phones", f"{total:,} phones in all: at most "
                                       f"{MAX_PHONES:,} a scenario (a full cluster; each phone gets a key "
                                       "pair and a MIC of its own)"))
        return None
    return groups


def _steps(ctx: _Ctx, steps_node: _Node, clusters: dict[str, ClusterSpec] | None,
           groups: dict[str, PhoneGroup] | None, found: _Found) -> tuple[Step | Expectation, ...] | None:
    """The file's steps, or None when they have mistakes (in ``found``). That the list is one, not empty,
    and holds an ``expect`` step is checked whatever the groups are; each step once the groups and
    clusters it names are known without a mistake."""
    if not isinstance(steps_node.value, list) or not steps_node.value:
        found.mistakes.append(ctx.fail(steps_node, "steps", "expected a non-empty list of steps"))
        return None
    if not any(isinstance(n.value, dict) and "expect" in n.value for n in steps_node.value):
        found.mistakes.append(ctx.fail(steps_node, "steps", "a scenario needs at least one 'expect' step"))
    if clusters is None or groups is None:
        return None
    before = len(found.mistakes)
    registers = any(isinstance(n.value, dict) and ("sip" in n.value or "call" in n.value)
                    for n in steps_node.value)
    labs = _Labs(clusters, registers)
    step_list = [found.check(_step, ctx, i, n, clusters, groups, labs=labs)
                 for i, n in enumerate(steps_node.value)]
    if len(found.mistakes) > before:
        return None
    return tuple(s for s in step_list if s is not None)


#: The largest time limit of a scenario, its file's ``timeout:`` and ``run --timeout`` (a day); 0 = none.
MAX_TIMEOUT_S = 86_400
#: a time limit: seconds (``600``, ``2.5``, ``.5``), or a number and a unit (``90s``, ``10m``, ``1h``, ``1d``)
_TIME_LIMIT = re.compile(r"^\s*([0-9]{1,15}(?:\.[0-9]{0,15})?|\.[0-9]{1,15})\s*([smhd]?)\s*$", re.ASCII)


def parse_time_limit(text: str) -> float | None:
    """A scenario's time limit as written (``run --timeout`` and the file's ``timeout:`` alike: one
    reading, one range): seconds, ``600`` or ``2.5``, or a number and a unit, ``90s``, ``10m``, ``1h``,
    ``1d``; 0..:data:`MAX_TIMEOUT_S` (0 = no limit). None for text that is not one; ValueError, saying
    why, for one out of range (was: the command line took fractions up to ten years and no unit, the
    file units and whole seconds up to a day)."""
    m = _TIME_LIMIT.match(text)
    if m is None:
        return None
    asked = float(m.group(1)) * _UNITS[m.group(2)]
    seconds = round(asked, 6)  # 0.1m is 6 s, not 6.000000000000001
    if asked > 0 and seconds == 0:  # a limit asked for is never "no limit"
        raise ValueError(f"{m.group(1)}{m.group(2)} is below 1 µs (0 = no limit)")
    if seconds > MAX_TIMEOUT_S:
        raise ValueError(f"{seconds:g} s is more than {MAX_TIMEOUT_S} (1 day; 0 = no limit)")
    return seconds


def _timeout(ctx: _Ctx, node: _Node) -> int:
    """``timeout: 600`` / ``90s`` / ``10m`` / ``1h`` / ``1d``: the scenario's wall-clock limit in whole
    seconds, 0..1 day (0 = no limit), read as ``run --timeout`` is (:func:`parse_time_limit`); it overrides
    ``run --timeout``."""
    expected = f"expected seconds from 0 (no limit) to {MAX_TIMEOUT_S} (1 day): 600, 90s, 10m, 1h or 1d"
    _as_written(ctx, node, "timeout", expected.removeprefix("expected "))  # 1:00 was 60 s, 010 was 8 s
    v = node.value
    text = str(v) if isinstance(v, (int, str)) and not isinstance(v, bool) else None
    try:
        seconds = parse_time_limit(text) if text is not None else None
    except ValueError as exc:
        raise ctx.fail(node, "timeout", f"{expected}; got {_got(node)} ({exc})") from None
    if seconds is None:
        raise ctx.fail(node, "timeout", f"{expected}; got {_got(node)}")
    if seconds != int(seconds):  # Scenario.timeout is whole seconds; run --timeout takes fractions
        raise ctx.fail(node, "timeout", f"{expected}; got {_got(node)} ({seconds:g} s: a file's limit is "
                                        "whole seconds, run --timeout 2.5 takes fractions)")
    return int(seconds)


#: byte order marks of the encodings a scenario file is not in (UTF-32's first: it starts as UTF-16's)
_OTHER_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
               (b"\xfe\xff", "UTF-16"))


def load_file(path: Path) -> Scenario:
    try:
        data = read_at_most(path, MAX_FILE_BYTES, what="scenario file")
    except PhoneEmuError as exc:  # over the size limit, or a pipe or device that never ends
        raise ScenarioError(exc.message, file=str(path)) from None
    except OSError as exc:
        link = ""
        with contextlib.suppress(OSError):
            if path.is_symlink() and exc.errno == errno.ENOENT:  # was "no such file" of a name ls shows
                link = f" (a symbolic link to {os.readlink(path)!r}, which does not exist)"
        raise ScenarioError(f"cannot read: {exc.strerror}{link}", file=str(path)) from None
    return load_text(_decoded(data, str(path)), str(path))


def _decoded(data: bytes, path: str) -> str:
    """The UTF-8 text of a scenario file; ScenarioError naming the line and column of the first byte that
    is not UTF-8 (was the byte's offset alone), or the encoding a byte order mark says the file is in."""
    other = next((name for bom, name in _OTHER_BOMS if data.startswith(bom)), None)
    if other is not None:
        raise ScenarioError(f"{other} text (its byte order mark says so): save the file as UTF-8",
                            file=path, line=1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[:exc.start].decode("utf-8")  # the text up to the first bad byte is UTF-8
        column = len(before) - max(before.rfind(c) for c in "\n\r\x85\u2028\u2029")
        raise ScenarioError(f"not UTF-8 text: byte 0x{data[exc.start]:02X} at column {column} (save the file "
                            "as UTF-8)", file=path, line=_line_at(before, len(before))) from None


#: the catalogue's folder in the phoneemu source, as the ways out name it (``phoneemu run
#: scenarios/<name>.yaml``: :mod:`phoneemu.phone.ways_out`) and README runs it
_CATALOGUE = "scenarios"


def _catalogue() -> Path | None:
    """The catalogue of the source checkout this phoneemu runs from: the ``scenarios`` folder beside the
    package, in a folder whose ``pyproject.toml`` names the project phoneemu (``pip install -e .``, or run
    from the checkout); None for an installed package, which carries no catalogue (package data: the
    Wireshark dissector only) — no other place is guessed."""
    import phoneemu

    root = Path(phoneemu.__file__).resolve().parent.parent
    try:
        project = (root / "pyproject.toml").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    named = re.search(r'^name\s*=\s*"phoneemu"\s*$', project, re.MULTILINE) is not None
    return root / _CATALOGUE if named and (root / _CATALOGUE).is_dir() else None


def _catalogue_hint(missing: Path) -> str:
    """What follows "no such file or folder" for a catalogue path (``scenarios/<name>.yaml``, or the
    folder ``scenarios``) given relative to another folder than the checkout's, as the ways out write it
    (``rehearse: phoneemu run scenarios/tvs-outage.yaml``): the full path of the checkout's copy when it has
    one, that it has none, or that an installed package has no catalogue to offer (was the bare message,
    no hint, run from another folder)."""
    parts = missing.parts
    if missing.is_absolute() or not parts or parts[0] != _CATALOGUE or len(parts) > 2 or \
            (len(parts) == 2 and Path(parts[1]).suffix.lower() not in _SCENARIO_SUFFIXES):
        return ""
    catalogue = _catalogue()
    if catalogue is None:
        return ("; the catalogue (scenarios/) is in the phoneemu source, not in an installed package: run "
                "from a source checkout (git clone, pip install -e .), or give the path of a copy")
    if len(parts) == 1:
        return f"; the catalogue is at {catalogue}"
    there = catalogue / parts[1]
    try:
        found = there.is_file()
    except OSError:  # a name no file can have (ENAMETOOLONG): none there (was the hint's OSError, naming
        found = False  # the catalogue's path, in place of the "no such file" of the path given)
    if found:
        return f"; the catalogue's: phoneemu run {shlex.quote(str(there))}"
    return f"; the catalogue at {catalogue} has no {parts[1]} either"


#: a scenario file's suffixes, in any case (``A.YAML``, ``b.Yml``: was ``.yaml``/``.yml`` alone in a folder)
_SCENARIO_SUFFIXES = (".yaml", ".yml")


def _scenario_in_folder(q: Path, folder: Path) -> bool:
    """Whether ``q``, found below ``folder``, is one of its scenario files: a ``*.yaml``/``*.yml`` (any case)
    that is not a folder, nor a dot-file or in a dot-folder below ``folder`` (``.github/workflows/ci.yml``,
    ``.hidden/x.yaml``: was read, a CI file's keys the run's mistakes)."""
    if not q.name.lower().endswith(_SCENARIO_SUFFIXES) or \
            any(part.startswith(".") for part in q.relative_to(folder).parts):
        return False
    return not q.is_dir()


def discover(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders (``*.yaml``/``*.yml``, sorted) into scenario files, each once: a file
    named again (``scenarios/ scenarios/x.yaml``) is not run, nor reported, twice."""
    out: list[Path] = []
    for given in paths:
        if isinstance(given, str) and not given.strip():  # Path("") is ".": every scenario below the cwd
            raise ScenarioError("empty path: give a scenario file or folder (an unset variable?)",
                                file=repr(given))
        p = Path(given)
        if p.is_dir():  # every *.yaml but a folder: a broken link, a link loop or a FIFO is a mistake of
            # its own (load_file), never a scenario silently left out of the run (was: is_file() only)
            out.extend(sorted(q for q in p.rglob("*") if _scenario_in_folder(q, p)))
        elif p.exists() or p.is_symlink():  # a broken link or a loop: load_file says which
            out.append(p)
        else:
            raise ScenarioError(f"no such file or folder{_catalogue_hint(p)}", file=str(p))
    seen: set[object] = set()
    unique = []
    for f in out:
        try:
            key: object = f.resolve()
        except (OSError, RuntimeError):  # a link loop (RuntimeError before Python 3.13)
            key = f.absolute()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique
