"""Persisted state of a lab cluster: ``DIR/cluster.json`` (written atomically).

The state is the single source of the served files: every admin operation edits it, bumps
``generation``, appends to ``log`` (with the lab-clock time) and the cluster rebuilds its files.
Keys and certificates live beside it (``DIR/private``, ``DIR/certs``, ``DIR/phones/<MAC>``);
the state only names them. Unknown JSON keys are refused so a typo does not go unnoticed, and so is
a value of another type than its field's (``"clock": null``, ``"ports": "x"``, a phone's
``"digest_user": 5``), a clock outside the supported range, ``ports`` without a port 0..65535
for each service (``https-config`` excepted: absent in a lab without the HTTPS identity and in labs
saved before it, :func:`https_config_port`), a phone's ``partition`` / ``calling_search_space``
naming a partition the dial plan's rules refuse (:mod:`.dial_plan`), or a value outside what the
admin operations set (``_ALLOWED``: a ``security_mode`` 1..3, a ``capf_auth_mode`` 0..4, a key spec,
``hash_alg`` 1 or 3 ...), and JSON nested too deeply (:mod:`phoneemu.json_doc`): a hand-edited or
damaged ``cluster.json`` is a DecodeError naming the key, never a TypeError or KeyError deep inside a
rebuild or ``lab show``.

Layout of ``cluster.json`` (ours): one key per line, sorted; a phone, a log entry or a TVS trust entry
on one line of its own (``grep MAC cluster.json`` shows a phone's whole state). Each line is made by the
C JSON encoder: a state of 2,000 phones and 4,300 log entries is made in ~35 ms (an indented dump took
~120 ms; the CAPF server saves the state after each group of enrolments).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

from phoneemu import json_doc
from phoneemu.crypto.keys import KeySpec
from phoneemu.errors import DecodeError, EncodeError
from phoneemu.files import atomic_write, read_at_most
from phoneemu.formats._tlv import printable
from phoneemu.lab import dial_plan
from phoneemu.lab.defaults import DEFAULT_PORTS, HTTPS_CONFIG_PORT
from phoneemu.values import MAX_TIME, MIN_TIME

__all__ = [
    "CALL_MANAGER_GROUP_SIZE",
    "DEFAULT_PORTS",
    "HTTPS_CONFIG_PORT",
    "MAX_LOG_ENTRIES",
    "STATE_FILE",
    "STATE_VERSION",
    "ClusterState",
    "LogEntry",
    "PhoneState",
    "TrustedCert",
    "https_config_port",
    "load_state",
    "node_registrars",
    "save_state",
]

STATE_FILE = "cluster.json"
STATE_VERSION = 1
#: ``cluster.json`` of a 40,000-phone lab is about 10 MB; anything past this is not a state file.
STATE_LIMIT = 256 << 20
#: the nodes a config's CallManager group (``devicePool``) lists at most: CUCM's group holds three (ours,
#: spec §H.5 gives no number); nodes 2.. are listed once ``lab serve`` recorded their registrar's ports
CALL_MANAGER_GROUP_SIZE = 3


def https_config_port(state: ClusterState) -> int | None:
    """The port of the lab's HTTPS configuration download (spec §H.1): the one ``lab serve`` recorded, else
    :data:`HTTPS_CONFIG_PORT` (never served, or saved before the port was recorded); None for a lab
    without the ``tftp-https`` identity (no such server)."""
    if state.https_key is None:
        return None
    return state.ports.get("https-config", HTTPS_CONFIG_PORT)


def node_registrars(nodes: int) -> list[str]:
    """``sip-N``, ``sips-N`` of nodes 2.. a config's CallManager group lists (``lab serve`` runs them)."""
    return [f"{base}-{n}" for n in range(2, min(nodes, CALL_MANAGER_GROUP_SIZE) + 1)
            for base in ("sip", "sips")]


@dataclass(kw_only=True)
class PhoneState:
    """One device the cluster knows (a "phone page" in CUCM)."""

    mac: str
    model: str = "8861"
    encrypt: str | None = None  # None | "pki" | "symmetric"
    symmetric_key: str | None = None  # hex
    capf_operation: str | None = None  # None | "install" | "fetch" | "delete"
    capf_auth_mode: int = 0  # §H.5 capfAuthMode 0..4
    auth_string: str | None = None
    lsc_key: str = "rsa2048"  # key the phone generates for an LSC (CAPF install)
    has_lsc: bool = False  # CAPF recorded an LSC: DIR/phones/<MAC>/lsc.pem (see lsc_sha256)
    #: SHA-256 (hex) of the recorded LSC's DER: the state is the commit point, ``lsc.pem`` (or the staged
    #: ``.lsc-staged.pem`` an interrupted record left) counts only when it holds this certificate.
    #: None with ``has_lsc``: a lab saved before this field, whatever ``lsc.pem`` holds.
    lsc_sha256: str | None = None
    load: str | None = None  # per-phone loadInformation override
    security_mode: int = 1  # device security profile: 1 non-secure, 2 authenticated, 3 encrypted (§H.5)
    #: SIP digest credentials of the phone's Digest User (seed "Digest Authentication": "the credentials
    #: exist in the phone configuration file"), left out with "Exclude Digest Credential in
    #: Configuration File" (``exclude_digest``)
    digest_user: str | None = None
    digest_password: str | None = None
    exclude_digest: bool = False
    #: the dial plan (seed "Authorization", our convention: :mod:`phoneemu.lab.dial_plan`): the partition of
    #: the phone's line (None: ``<None>``) and its calling search space, the partitions its calls reach
    partition: str | None = None
    calling_search_space: list[str] = field(default_factory=list)

    def manual_key(self) -> str | None:
        """The manual config key (hex) the lab encrypts this phone's config with, to be set on the phone
        (Set Cfg Encrypt Key, spec §C.5); None when its config is not encrypted with one."""
        return self.symmetric_key if self.encrypt == "symmetric" and self.symmetric_key else None

    def pending_auth_string(self) -> str | None:
        """The authentication string to type on the phone for its pending CAPF operation (capfAuthMode 1,
        spec §F.7); None when none is pending by string."""
        return self.auth_string if self.capf_operation and self.capf_auth_mode == 1 and self.auth_string \
            else None


@dataclass(kw_only=True)
class TrustedCert:
    """A certificate this cluster's TVS vouches for beyond its own (bulk certificate exchange)."""

    pem: str
    roles: list[int]
    source: str = ""


#: the change log keeps at most this many entries, the oldest dropped first (ours: every CAPF enrolment a
#: running ``lab serve`` records is an entry, and every save writes the log whole — unbounded, a lab served
#: for days grew by one entry per phone per enrolment storm and each save and reload with it)
MAX_LOG_ENTRIES = 10_000
#: entries dropped at once when the log is over :data:`MAX_LOG_ENTRIES` (not one per append: a list's
#: front is dropped by copying the rest)
_LOG_TRIM = 1_000


@dataclass(kw_only=True)
class LogEntry:
    time: int
    generation: int
    op: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(kw_only=True)
class ClusterState:
    """Everything that decides the served files (see ``cluster.py`` for the rules)."""

    version: int = STATE_VERSION
    name: str = "lab"
    host: str = "127.0.0.1"
    seed: int | None = None
    key_spec: str = "rsa2048"
    nodes: int = 1
    itlrecovery_years: int = 20  # validity of a regenerated ITLRecovery (the current one: its certificate)
    https_key: str | None = None  # key of the HTTPS (6971) TFTP identity "tftp-https", if any
    upgraded: bool = False
    clock: int = 0  # lab clock, Unix seconds
    generation: int = 0
    identity_generations: dict[str, int] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    ctl_exists: bool = False  # the cluster was put in mixed mode at least once
    mixed_mode: bool = False
    itl_signer: str = "itlrecovery"  # "callmanager" between ``itl reset`` and ``restart_tftp``
    #: "itlrecovery" (CUCM >= 10.0) or "callmanager" (8.x-9.x: the TFTP server's CallManager key
    #: signs the ITL as a "soft eToken", seed "Initial Trust List"); restart_tftp returns to it.
    base_itl_signer: str = "itlrecovery"
    ctl_signer: str = "itlrecovery"  # "callmanager" between ``ctl reset localkey`` and ``ctl update``
    rollback: bool = False
    #: the enterprise parameters' secure service URLs set to plain HTTP (seed "Update ITL File for Cisco
    #: Unified IP Phones" step 4, spec §G.11): configs name an http:// secureDirectoryURL
    secure_urls_http: bool = False
    #: the CAPF certificate has a record in the ITL (seed "Initial Trust List": it "isn't required in
    #: the ITL File (TVS can authenticate it), however, it simplifies the connection to CAPF")
    itl_capf: bool = True
    extra_certs: int = 0
    hash_alg: int = 1  # TFTP file signature algorithm: 1 SHA-1, 3 SHA-512 (spec §A.4)
    sbd: bool = True  # Security By Default features (signed default config)
    #: a release before 8.0 (no Security By Default): no ITL, no TVS in configs, unsigned files unless
    #: in mixed mode (seed "Migrate IP Phones Between Clusters": "migrations to Unified CM pre-8.x")
    pre_8_0: bool = False
    autoregistration: bool = True
    tvs_ttl: int = 86400
    load: str | None = None  # cluster-wide default loadInformation
    loads: dict[str, bool] = field(default_factory=dict)  # load name -> served tampered
    phones: dict[str, PhoneState] = field(default_factory=dict)
    tvs_trust: list[TrustedCert] = field(default_factory=list)
    tampered: dict[str, int] = field(default_factory=dict)  # served name -> flipped offset
    #: services a running ``lab serve`` keeps stopped (``phoneemu lab service DIR tvs stop``): an outage
    stopped: list[str] = field(default_factory=list)
    log: list[LogEntry] = field(default_factory=list)

    def now_at(self, real: float) -> int:
        """The lab's "now" at the real time ``real`` (Unix seconds; our rule): a seeded lab runs on its own
        clock; an unseeded one follows the real time, never behind its clock (a ``lab clock --advance``
        holds until the real time passes it). Its operations date themselves by it and ``boot --lab``
        phones run on it (:mod:`phoneemu.commands._lab_clock`)."""
        return self.clock if self.seed is not None else max(int(real), self.clock)

    def add_log(self, entry: LogEntry) -> None:
        """Append ``entry`` to the change log, bounded by :data:`MAX_LOG_ENTRIES`: over it, the oldest
        entries go (a thousand at a time) — except the last ``ports`` entry, kept first: that a ``lab
        serve`` recorded its ports is what ``boot --lab`` goes by
        (:mod:`phoneemu.commands._cluster_address`)."""
        log = self.log
        log.append(entry)
        if len(log) <= MAX_LOG_ENTRIES:
            return
        cut = len(log) - MAX_LOG_ENTRIES + _LOG_TRIM
        kept = log[cut:]
        if not any(e.op == "ports" for e in kept):
            ports = next((e for e in reversed(log[:cut]) if e.op == "ports"), None)
            if ports is not None:
                kept.insert(0, ports)
        log[:] = kept

    def to_json(self) -> str:
        """The state as JSON in the layout of the module docstring (``json.loads`` gives ``asdict``)."""
        lines = []
        for key, value in sorted(_plain(self).items()):
            if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
                inner = ",\n".join(f"    {_compact(k)}: {_compact(v)}" for k, v in sorted(value.items()))
                lines.append(f"  {_compact(key)}: {{\n{inner}\n  }}")
            elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                inner = ",\n".join(f"    {_compact(v)}" for v in value)
                lines.append(f"  {_compact(key)}: [\n{inner}\n  ]")
            else:
                lines.append(f"  {_compact(key)}: {_compact(value)}")
        return "{\n" + ",\n".join(lines) + "\n}\n"

    @classmethod
    def from_json(cls, text: str, *, source: str = STATE_FILE) -> ClusterState:
        try:
            raw = json_doc.loads(text)
        except json.JSONDecodeError as exc:
            raise DecodeError(f"not JSON: {exc}", path=source) from None
        if not isinstance(raw, dict):
            raise DecodeError("top level is not an object", path=source)
        if raw.get("version") != STATE_VERSION:
            raise DecodeError(f"state version {raw.get('version')!r}, expected {STATE_VERSION}", path=source)
        missing = sorted(_SAVED_SINCE_VERSION_1 - set(raw))
        if missing:  # every cluster.json phoneemu ever saved holds them: a damaged or hand-cut file
            raise DecodeError(f"missing keys {missing} (every saved state holds them: a damaged or cut "
                              "file?)", path=source)
        if not isinstance(raw["phones"], dict):
            raise DecodeError(f"{json.dumps(raw['phones'], default=str)[:60]} is not an object (MAC: phone)",
                              path=f"{source}:phones")
        try:
            raw["phones"] = {k: _phone(k, v, f"{source}:phones.{printable(k)}")
                             for k, v in raw["phones"].items()}
            raw["tvs_trust"] = [_make(TrustedCert, v, f"{source}:tvs_trust[{i}]")
                                for i, v in enumerate(raw.get("tvs_trust", []))]
            raw["log"] = [_make(LogEntry, v, f"{source}:log[{i}]") for i, v in enumerate(raw.get("log", []))]
        except (TypeError, ValueError, AttributeError) as exc:
            raise DecodeError(f"malformed state: {exc}", path=source) from None
        made: ClusterState = _make(cls, raw, source)
        return made


#: the keys of the first ``cluster.json`` (every field of :class:`ClusterState` then): each save writes every
#: field, so a state without one is damaged, not older; the fields added since default when absent
_SAVED_SINCE_VERSION_1 = frozenset({
    "version", "name", "host", "seed", "key_spec", "nodes", "itlrecovery_years", "https_key", "upgraded",
    "clock", "generation", "identity_generations", "ports", "ctl_exists", "mixed_mode", "itl_signer",
    "ctl_signer", "rollback", "extra_certs", "hash_alg", "sbd", "autoregistration", "tvs_ttl", "load",
    "loads", "phones", "tvs_trust", "tampered", "log"})


def _phone(key: str, raw: Any, where: str) -> PhoneState:
    """One phone of ``phones``, filed under its own MAC: the key names its files (``DIR/phones/<MAC>``,
    ``SEP<MAC>.cnf.xml``), so a key that is not the phone's ``mac`` — another MAC, ``../x`` — is refused
    (was: taken, a phone served under one MAC with another's config, or files written outside ``tftp/``)."""
    ph: PhoneState = _make(PhoneState, raw, where)
    if key != ph.mac:
        raise DecodeError(f"filed under {json.dumps(key)[:60]}, not under its mac {ph.mac}", path=where)
    return ph


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """``dataclasses.asdict`` without its deep copies (perf only): dataclasses, dicts and lists of the
    state as JSON-ready values."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    names = _FIELD_NAMES.get(type(value))
    if names is None and is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES[type(value)] = tuple(f.name for f in fields(value))
    if names is not None:
        return {n: _plain(getattr(value, n)) for n in names}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    raise TypeError(f"{type(value).__name__} is not part of a lab state")


_compact = json.JSONEncoder(sort_keys=True, separators=(", ", ": ")).encode  # one encoder for every line


#: Unix times (the lab clock, a log entry's time): dates are made of them.
_TIMES = frozenset({"clock", "time"})


def _conforms(value: Any, hint: Any) -> bool:
    """``value`` (from JSON) has the type ``hint`` names: int (not bool), str, bool, None, ``X | Y``,
    ``dict[str, X]``, ``list[X]``, ``Any``; an already made dataclass passes (module rules)."""
    return _checker(hint)(value)


@functools.cache
def _checker(hint: Any) -> Callable[[Any], bool]:
    """:func:`_conforms` for one ``hint``, made once (perf only: reading the hint anew for each value
    made a 40,000-phone state load in 0.89 s; 0.40 s with this)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return lambda _value: True
    if hint is None or hint is type(None):
        return lambda value: value is None
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        plain = tuple(type(None) if a is None else a for a in args)
        if all(isinstance(a, type) and not issubclass(a, int) and typing.get_origin(a) is None
               for a in plain):
            return lambda value: isinstance(value, plain)  # e.g. str | None: one isinstance
        parts = tuple(_checker(a) for a in args)
        return lambda value: any(check(value) for check in parts)
    if origin is dict:
        key_check, value_check = (_checker(a) for a in typing.get_args(hint))
        return lambda value: isinstance(value, dict) and all(key_check(k) and value_check(v)
                                                             for k, v in value.items())
    if origin is list:
        (item_check,) = (_checker(a) for a in typing.get_args(hint))
        return lambda value: isinstance(value, list) and all(item_check(v) for v in value)
    if hint is int:
        return lambda value: isinstance(value, int) and not isinstance(value, bool)
    return lambda value: isinstance(value, hint)


_SCHEMAS: dict[type[Any], tuple[frozenset[str], dict[str, Any]]] = {}


def _schema(cls: type[Any]) -> tuple[frozenset[str], dict[str, Any]]:
    """The field names and type hints of a state dataclass (perf only: ``typing.get_type_hints``
    evaluates the string annotations anew each call, ~0.3 ms; a 40,000-phone state made it 12 s)."""
    got = _SCHEMAS.get(cls)
    if got is None:
        got = _SCHEMAS[cls] = (frozenset(f.name for f in fields(cls)), typing.get_type_hints(cls))
    return got


def _make(cls: type[Any], raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise DecodeError("expected an object", path=where)
    names, hints = _schema(cls)
    unknown = sorted(set(raw) - names)
    if unknown:
        raise DecodeError(f"unknown keys {unknown}", path=where)
    for key, value in raw.items():
        if not _checker(hints[key])(value):
            want = hints[key].__name__ if isinstance(hints[key], type) else str(hints[key])
            raise DecodeError(f"{json.dumps(value, default=str)[:60]} is not of type {want}",
                              path=f"{where}:{key}")
        if key in _TIMES and not MIN_TIME <= value <= MAX_TIME:
            raise DecodeError(f"time {value} is outside the supported range {MIN_TIME}..{MAX_TIME}",
                              path=f"{where}:{key}")
        if cls is PhoneState and key in ("partition", "calling_search_space"):
            _check_dial_plan(key, value, f"{where}:{key}")
        if (cls, key) in _ALLOWED:
            _check_allowed(_ALLOWED[cls, key], value, f"{where}:{key}")
        if cls is ClusterState and key == "ports" and (set(DEFAULT_PORTS) - set(value) or not all(
                0 <= port <= 65535 for port in value.values())):
            raise DecodeError(f"expected a port 0..65535 for each of {', '.join(DEFAULT_PORTS)}, got "
                              f"{json.dumps(value)[:80]}", path=f"{where}:{key}")
        if cls is ClusterState and key == "host":
            _check_host(value, f"{where}:{key}")
    try:
        return cls(**raw)
    except TypeError as exc:
        raise DecodeError(f"malformed: {exc}", path=where) from None


_SIGNERS = ("itlrecovery", "callmanager")
#: the keys of a cluster's identities, :data:`phoneemu.lab.cluster.CLUSTER_KEYS` (a test checks they agree;
#: not imported: the cluster imports this module)
_CLUSTER_KEYS = ("rsa1024", "rsa2048", "rsa4096")
_HEX = re.compile(r"[0-9a-f]{32}|[0-9a-f]{64}")
_MAC = re.compile(r"[0-9A-F]{12}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}")  # lab init --name (LabCluster.init)
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]{0,15}")  # lab phone add --model (cluster._model)
_AUTH_STRING = re.compile(r"[0-9]{4,16}")  # lab capf --auth-string (spec §F.7)
_PATTERN_TEXT = {_HEX: "32 or 64 lower-case hex digits", _MAC: "12 upper-case hex digits (a MAC)",
                 _NAME: "a cluster name (letters, digits, . _ -; at most 32)",
                 _MODEL: "a phone model (letters, digits, -; at most 16)", _AUTH_STRING: "4..16 digits"}
#: the values a field may hold beyond its type, as the admin operations set them (module rules); a key
#: spec is text :meth:`KeySpec.parse` reads
_ALLOWED: dict[tuple[type[Any], str], tuple[Any, ...] | range | re.Pattern[str] | type[KeySpec]] = {
    (PhoneState, "security_mode"): range(1, 4),  # deviceSecurityMode (spec §H.5)
    (PhoneState, "capf_auth_mode"): range(0, 5),  # capfAuthMode (spec §H.5)
    (PhoneState, "mac"): _MAC,
    (PhoneState, "encrypt"): ("pki", "symmetric"),
    (PhoneState, "capf_operation"): ("install", "fetch", "delete"),
    (PhoneState, "symmetric_key"): _HEX,  # 128 or 256 bits, lower-case hex (spec §C.5)
    (PhoneState, "lsc_key"): KeySpec,
    (PhoneState, "model"): _MODEL,
    (PhoneState, "auth_string"): _AUTH_STRING,
    (ClusterState, "name"): _NAME,  # in every certificate's subject: 1000 characters was a traceback
    (ClusterState, "key_spec"): _CLUSTER_KEYS,  # rsa512 was a traceback out of the next key made
    (ClusterState, "https_key"): KeySpec,
    (ClusterState, "nodes"): range(1, 9),
    (ClusterState, "itlrecovery_years"): range(1, 31),
    (ClusterState, "hash_alg"): (1, 3),  # SHA-1, SHA-512 (spec §A.4)
    (ClusterState, "tvs_ttl"): range(1, 2_592_001),  # spec §H.2
    (ClusterState, "extra_certs"): range(0, 1 << 31),
    (ClusterState, "itl_signer"): _SIGNERS,
    (ClusterState, "base_itl_signer"): _SIGNERS,
    (ClusterState, "ctl_signer"): _SIGNERS,
}


def _check_allowed(allowed: tuple[Any, ...] | range | re.Pattern[str] | type[KeySpec], value: Any,
                   where: str) -> None:
    """``value`` (of the field's type, checked) is one ``allowed`` names: else a DecodeError at ``where``
    (a ``security_mode`` 7 was a KeyError out of ``lab show``)."""
    if value is None:
        return  # an optional field left empty (its type, checked, allows None)
    if allowed is KeySpec:
        try:
            KeySpec.parse(value)
        except EncodeError as exc:
            raise DecodeError(exc.message, path=where) from None
        return
    if isinstance(allowed, re.Pattern):
        if not allowed.fullmatch(value):
            raise DecodeError(f"{json.dumps(value)[:60]} is not {_PATTERN_TEXT[allowed]}", path=where)
        return
    assert isinstance(allowed, (tuple, range))
    if value not in allowed:
        want = f"outside {allowed.start}..{allowed.stop - 1}" if isinstance(allowed, range) else \
            "not " + " or ".join(json.dumps(v) for v in allowed)
        raise DecodeError(f"{json.dumps(value)[:60]} is {want}", path=where)


def _check_host(value: str, where: str) -> None:
    """The address configs name, as ``lab init --host`` takes it (:func:`phoneemu.lab.cluster.check_host`;
    was: taken, and each rebuild refused it naming no file, ``config: server.host: ...``), or as a
    phoneemu before that check stored it (:func:`_older_init_host`): a user's lab still opens, and
    ``lab serve --host ADDRESS`` re-issues its configs naming a good one."""
    from phoneemu.lab.cluster import check_host  # the cluster imports this module

    try:
        ok = check_host(value) == value
    except EncodeError as exc:
        if _older_init_host(value):
            return
        raise DecodeError(exc.message, path=where) from None
    if not ok:
        raise DecodeError(f"{json.dumps(value)[:60]} has surrounding whitespace", path=where)


def _older_init_host(value: str) -> bool:
    """Whether ``value`` is a host ``lab init --host`` took before it took addresses and DNS names only
    (e7fed7c, 2026-12-04), as a user typed it: a wildcard (``0.0.0.0``, ``::``), an IPv6 address in
    brackets (``[::1]``), an address or name with a port (``lab:6970``, ``[::1]:2445``), a scoped IPv6
    address. Such a lab opened and served until the state's values were checked (was: refused, every
    command — ``lab serve --host``, the way to a good host, too)."""
    from phoneemu.lab.cluster import WILDCARD_HOSTS, check_host

    if value in WILDCARD_HOSTS:
        return True
    host, port = value, ""
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return False
        port = rest[1:] if rest else ""
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    if port and not (port.isascii() and port.isdigit() and int(port) < 65536):
        return False
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    try:
        return bool(host) and check_host(host) == host
    except EncodeError:
        return False


def _check_dial_plan(key: str, value: Any, where: str) -> None:
    """A phone's partition or calling search space holds good names (:mod:`phoneemu.lab.dial_plan`)."""
    if key == "partition":
        problem = None if value is None else dial_plan.name_problem(value)
    else:
        found = dial_plan.css_problem(value)
        problem, where = (None, where) if found is None else \
            (found[1], where if found[0] is None else f"{where}[{found[0]}]")
    if problem is not None:
        raise DecodeError(problem, path=where)


#: the folders ``lab init`` makes before ``cluster.json`` (:meth:`phoneemu.lab.cluster.LabCluster.init`)
_INIT_MAKES = ("private/", "certs/")
#: every name a ``lab init`` killed before writing ``cluster.json`` can leave in its folder (and a temporary
#: ``.cluster.json.tmp...``; the lab lock, :data:`phoneemu.lab.lock.LOCK_FILE`; the lock of a change of
#: served files, ``cluster._PENDING_LOCK``: was not known, such a folder "not a lab: create one with init")
_INIT_LEAVES = frozenset({"private", "certs", "tftp", "phones", ".lab.lock", ".served.lock"})


def _left_by_init(root: Path) -> list[str]:
    """The folders of :data:`_INIT_MAKES` a folder without ``cluster.json`` holds, when it holds nothing a
    killed ``lab init`` could not have left; else none: a user's folder with a ``certs/`` or ``private/``
    of its own is not told to be removed (was: "a lab init that did not finish? Remove the folder")."""
    try:
        names = os.listdir(root)
    except OSError:
        return []
    if any(n not in _INIT_LEAVES and not n.startswith(f".{STATE_FILE}.tmp") for n in names):
        return []
    return [name for name in _INIT_MAKES if (root / name.rstrip("/")).is_dir()]


def load_state(root: Path) -> ClusterState:
    """The state of the lab cluster in ``root``. A folder without ``cluster.json`` is "not a lab cluster":
    the error's path is the folder (named once) and its message the ``lab init`` command that makes one."""
    path = Path(root) / STATE_FILE
    try:
        text = read_at_most(path, STATE_LIMIT, what=STATE_FILE).decode("utf-8")
    except FileNotFoundError:
        made = _left_by_init(Path(root))
        if made:  # lab init writes cluster.json last: killed before, it left these (no lab, no user file)
            raise DecodeError(f"not a lab cluster: no {STATE_FILE}, though it holds {', '.join(made)}: a lab "
                              "init that did not finish (it writes cluster.json last)? Remove the folder and "
                              f"run 'phoneemu lab init {root}' again", path=str(root)) from None
        raise DecodeError(f"not a lab cluster (no {STATE_FILE}; create one with "
                          f"'phoneemu lab init {root}')", path=str(root)) from None
    except NotADirectoryError:  # a file given as DIR: not "DIR/cluster.json: Not a directory"
        raise DecodeError("is a file, not a lab cluster folder", path=str(root)) from None
    except UnicodeDecodeError:
        raise DecodeError("not UTF-8", path=str(path)) from None
    return ClusterState.from_json(text, source=str(path))


def save_state(root: Path, state: ClusterState) -> None:
    """Write ``cluster.json`` atomically (temp file + rename), mode 0600: it holds secrets — manual config
    keys (spec §C.5), CAPF authentication strings (§F.7), SIP digest passwords (§G.13) — as ``private/``
    holds the keys."""
    path = Path(root) / STATE_FILE
    atomic_write(path, state.to_json().encode("utf-8"), mode=0o600)
