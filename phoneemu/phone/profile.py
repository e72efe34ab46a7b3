"""Phone model profiles: the limits and habits that differ per model (spec §B.5, §C.3, §C.5, §C.6, §G.2).

A :class:`PhoneProfile` is frozen, shared by every phone of that model. Facts used:

* Trust lists above 64 KiB fail to load (spec §B.5, §H.2) → ``trust_list_limit = 65536``.
* Older phones verify SHA-1 only; current ones also SHA-256/SHA-512 (spec §A.4 codes 1, 2, 3).
* Non-SBD legacy phones ignore the ITL ("No Trust List installed", spec §G.2) and have no TVS.
* Manual-key (symmetric) phones: 7942/7962 SIP use AES-128 (spec §C.5); the 7942/7962 ignore the
  signature of an ``.enc.sgn`` (spec §C.3) → ``enc_signer_checked = False``. Our reading: the
  7942/7962 SIP statement is about their manual-key method (the only encryption those models are
  documented with, §C.5), so the flag covers the **symmetric** ``.enc.sgn`` only; a PKI ``.enc.sgn``
  is wrapped to the phone's public key, anyone can build one, and its signature is always verified
  (spec §G.12 step 3).
* Request order differs per model (spec §C.6): the 7962 capture shows no ``CTLFile.tlv`` request.
* SRTP suites (spec §G.14): AES_CM_128_HMAC_SHA1_80 and _32, the 80-bit tag preferred; SCCP phones
  support only the 32-bit tag (a profile override ``srtp_suites: [AES_CM_128_HMAC_SHA1_32]``); the 7940
  has no media encryption (ours: a plausible value for the model, as below).
* CAPF key generation may take long (spec §F.6 REQUEST_IN_PROGRESS; §F.8: "half an hour or more on
  some models"); ours: ``capf_keygen_seconds`` (default 0, at most 7200) makes the phone answer
  KEY_GENERATE_REQUEST that long after it came, sending REQUEST_IN_PROGRESS at once and every
  ``capf_in_progress_seconds`` (default 10; 0: never, a silent slow phone; else 0.25..3600, fractions
  allowed), so a cluster's CAPF behaviour with a slow phone can be rehearsed
  (:mod:`phoneemu.net.capf_client`).

Our conventions (spec [UNK]): exact model limits (RSA size, EC support, TLS versions, status
checksum style) are plausible values for the model generation, not published figures.
``config_policy`` is ``"encrypted-first"`` (ask ``.enc.sgn`` then ``.sgn`` then plain, spec §C.6
row 5), ``"short-config-first"`` (CSF/PKI style: the short config decides, spec §G.12) or
``"plain"`` (legacy: no encrypted config — the plain config, or the signed one once it holds a CTL).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from phoneemu.crypto.hashes import HashAlg
from phoneemu.errors import EncodeError, ScenarioError
from phoneemu.protocols.media import SRTP_PREFERENCE

__all__ = [
    "CONFIG_POLICIES",
    "PROFILES",
    "TLS_VERSIONS",
    "PhoneProfile",
    "check_tls_versions",
    "get_profile",
    "profile_from_dict",
]

CONFIG_POLICIES = frozenset({"encrypted-first", "short-config-first", "plain"})
_HASH_NAMES = {"sha1": HashAlg.SHA1, "sha-1": HashAlg.SHA1, "sha256": HashAlg.SHA256,
               "sha-256": HashAlg.SHA256, "sha512": HashAlg.SHA512, "sha-512": HashAlg.SHA512}
_TEMPLATE_FIELDS = ("{mac}",)
#: Longest CAPF key generation a profile may ask for (ours: two hours, past §F.8's "half an hour or more")
_MAX_KEYGEN_S = 7200.0
#: REQUEST_IN_PROGRESS cadence bounds, seconds (ours: fractions down to a quarter second, so a rehearsal
#: against a short CAPF read timeout takes little time; never a flood of pings)
_MIN_IN_PROGRESS_S, _MAX_IN_PROGRESS_S = 0.25, 3600.0


@dataclass(frozen=True, kw_only=True, slots=True)
class PhoneProfile:
    """What a phone model supports and how it behaves at boot (see module docstring)."""

    name: str
    model: str
    trust_list_limit: int = 65536
    hash_algorithms: frozenset[int] = frozenset({HashAlg.SHA1})
    max_rsa_bits: int = 2048
    ec_support: bool = False
    sbd: bool = True
    pki_capable: bool = True
    symmetric_key_bits: int = 0
    tls_versions: tuple[str, ...] = ("1.2",)
    request_order: tuple[str, ...] = ("CTLSEP{mac}.tlv", "CTLFile.tlv", "ITLSEP{mac}.tlv", "ITLFile.tlv")
    uses_http_first: bool = True
    status_checksum: str = "sha1"
    tvs_enabled: bool = True
    capf: bool = True
    config_policy: str = "encrypted-first"
    enc_signer_checked: bool = True
    secure_mode_attempts: int = 4
    #: SRTP suites the model offers, its preference first (spec §G.14; none: RTP only)
    srtp_suites: tuple[str, ...] = SRTP_PREFERENCE  # the suites of Cisco phones, 80 first
    #: CAPF key generation's wall time and REQUEST_IN_PROGRESS cadence, seconds (module docstring; ours)
    capf_keygen_seconds: float = 0.0
    capf_in_progress_seconds: float = 10.0

    def __post_init__(self) -> None:
        if not self.name or not self.model:
            raise EncodeError("profile name and model must not be empty", path="name")
        if not 1024 <= self.trust_list_limit <= 16 * 1024 * 1024:
            raise EncodeError(f"trust_list_limit {self.trust_list_limit} outside 1024..16 MiB",
                              path="trust_list_limit")
        if not self.hash_algorithms or not all(h in set(HashAlg) for h in self.hash_algorithms):
            raise EncodeError(f"hash_algorithms {sorted(self.hash_algorithms)} must be a non-empty subset "
                              "of 1 (SHA-1), 2 (SHA-256), 3 (SHA-512)", path="hash_algorithms")
        if self.max_rsa_bits not in (1024, 2048, 4096):
            raise EncodeError(f"max_rsa_bits {self.max_rsa_bits} must be 1024, 2048 or 4096",
                              path="max_rsa_bits")
        if self.symmetric_key_bits not in (0, 128, 256):
            raise EncodeError(f"symmetric_key_bits {self.symmetric_key_bits} must be 0, 128 or 256",
                              path="symmetric_key_bits")
        if not self.pki_capable and not self.symmetric_key_bits:
            raise EncodeError("a phone that is not PKI-capable needs symmetric_key_bits",
                              path="symmetric_key_bits")
        if self.status_checksum not in ("md5", "sha1"):
            raise EncodeError(f"status_checksum {self.status_checksum!r} must be md5 or sha1",
                              path="status_checksum")
        if self.config_policy not in CONFIG_POLICIES:
            raise EncodeError(f"config_policy {self.config_policy!r} must be one of "
                              f"{sorted(CONFIG_POLICIES)}", path="config_policy")
        if not self.request_order:
            raise EncodeError("request_order must name at least one file", path="request_order")
        for i, tmpl in enumerate(self.request_order):
            rest = tmpl
            for f in _TEMPLATE_FIELDS:
                rest = rest.replace(f, "")
            if not tmpl.endswith(".tlv") or "{" in rest or "}" in rest:
                raise EncodeError(f"request_order[{i}] {tmpl!r}: a .tlv name with only {{mac}} as field",
                                  path=f"request_order[{i}]")
        bad = [s for s in self.srtp_suites if s not in SRTP_PREFERENCE]
        if bad or len(set(self.srtp_suites)) != len(self.srtp_suites):
            raise EncodeError(f"srtp_suites {list(self.srtp_suites)}: each at most once, among "
                              f"{', '.join(SRTP_PREFERENCE)} (phones do not implement the AEAD GCM suites, "
                              "spec §G.14)", path="srtp_suites")
        if not 1 <= self.secure_mode_attempts <= 100:
            raise EncodeError("secure_mode_attempts must be 1..100", path="secure_mode_attempts")
        if not 0 <= self.capf_keygen_seconds <= _MAX_KEYGEN_S:
            raise EncodeError(f"capf_keygen_seconds {self.capf_keygen_seconds} must be 0..{_MAX_KEYGEN_S:g}",
                              path="capf_keygen_seconds")
        every = self.capf_in_progress_seconds
        if every != 0 and not _MIN_IN_PROGRESS_S <= every <= _MAX_IN_PROGRESS_S:
            raise EncodeError(f"capf_in_progress_seconds {every} must be 0 (none) or {_MIN_IN_PROGRESS_S:g}.."
                              f"{_MAX_IN_PROGRESS_S:g}", path="capf_in_progress_seconds")

    def trust_file_names(self, mac: str) -> tuple[str, ...]:
        """The trust files this model asks for at boot, in order (spec §C.6 rows 1-4)."""
        return tuple(t.replace("{mac}", mac) for t in self.request_order)

    def supports_hash(self, code: int) -> bool:
        return code in self.hash_algorithms


_SHA_ALL = frozenset({HashAlg.SHA1, HashAlg.SHA256, HashAlg.SHA512})

PROFILES: dict[str, PhoneProfile] = {
    p.name: p
    for p in (
        PhoneProfile(name="cp-8861", model="CP-8861", hash_algorithms=_SHA_ALL, max_rsa_bits=4096,
                     ec_support=True, tls_versions=("1.2",), status_checksum="sha1",
                     config_policy="encrypted-first"),
        PhoneProfile(name="cp-7962", model="CP-7962", max_rsa_bits=2048, ec_support=False,
                     symmetric_key_bits=128, tls_versions=("1.0",), status_checksum="md5",
                     request_order=("CTLSEP{mac}.tlv", "ITLSEP{mac}.tlv", "ITLFile.tlv"),
                     uses_http_first=False, enc_signer_checked=False),
        PhoneProfile(name="cp-7940", model="CP-7940", max_rsa_bits=2048, sbd=False, tvs_enabled=False,
                     tls_versions=("1.0",), status_checksum="md5", request_order=("CTLSEP{mac}.tlv",),
                     uses_http_first=False, config_policy="plain", srtp_suites=()),
        PhoneProfile(name="cp-7942-symmetric", model="CP-7942", max_rsa_bits=2048, pki_capable=False,
                     symmetric_key_bits=128, capf=False, tls_versions=("1.0",), status_checksum="md5",
                     request_order=("CTLSEP{mac}.tlv", "ITLSEP{mac}.tlv", "ITLFile.tlv"),
                     uses_http_first=False, enc_signer_checked=False),
    )
}


def get_profile(name: str) -> PhoneProfile:
    """A named profile; ScenarioError naming the profile and the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ScenarioError(f"unknown phone profile {name!r}; known: {', '.join(sorted(PROFILES))}",
                            path="profile") from None


#: The TLS versions a phone profile may speak (spec §E.1: 7900-series phones TLS 1.0 only), oldest first.
TLS_VERSIONS = ("1.0", "1.1", "1.2", "1.3")


def check_tls_versions(versions: Any, *, what: str = "tls_versions") -> tuple[str, ...]:
    """``versions`` (strings among :data:`TLS_VERSIONS`, at least one) as a tuple; EncodeError naming
    ``what`` otherwise (a version that does not exist used to be dropped without a word)."""
    if isinstance(versions, str) or not isinstance(versions, list | tuple) or not versions:
        raise EncodeError(f"{what}: expected a list of TLS versions among {', '.join(TLS_VERSIONS)}",
                          path=what)
    bad = [v for v in versions if v not in TLS_VERSIONS]
    if bad:
        raise EncodeError(f"{what}: {', '.join(map(repr, bad))} is not a TLS version (expected some of "
                          f"{', '.join(TLS_VERSIONS)})", path=what)
    return tuple(versions)


def _coerce(name: str, value: Any) -> Any:
    if name == "hash_algorithms":
        if not isinstance(value, list | tuple | set | frozenset):
            raise ScenarioError(f"{name} must be a list, not {type(value).__name__}", path=name)
        out: set[int] = set()
        for v in value:
            if isinstance(v, str) and v.lower() in _HASH_NAMES:
                out.add(int(_HASH_NAMES[v.lower()]))
            elif isinstance(v, int) and not isinstance(v, bool):
                out.add(v)
            else:
                raise ScenarioError(f"{name}: unknown hash {v!r} (sha1, sha256, sha512)", path=name)
        return frozenset(out)
    if name == "tls_versions":
        try:
            return check_tls_versions(value, what=name)
        except EncodeError as exc:
            raise ScenarioError(exc.message, path=name) from None
    if name == "srtp_suites":
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ScenarioError(f"{name} must be a list of SRTP suite names ({', '.join(SRTP_PREFERENCE)})",
                                path=name)
        return tuple(value)
    if name == "request_order":
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ScenarioError(f"{name} must be a list of strings", path=name)
        return tuple(value)
    return value


def profile_from_dict(base: PhoneProfile | str, overrides: Mapping[str, Any]) -> PhoneProfile:
    """``base`` (a profile or its name) with ``overrides`` applied; ScenarioError naming a bad key."""
    prof = get_profile(base) if isinstance(base, str) else base
    types = {f.name: f.type for f in dataclasses.fields(PhoneProfile)}
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in types:
            near = difflib.get_close_matches(key, sorted(types), n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            raise ScenarioError(f"unknown profile key {key!r}; {hint}known: {', '.join(sorted(types))}",
                                path=key)
        v = _coerce(key, value)
        want = {"str": str, "int": int, "bool": bool, "float": float}.get(str(types[key]))
        if want is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)  # a number of seconds may be written 10
        if want is not None and (not isinstance(v, want) or (want is int and isinstance(v, bool))):
            raise ScenarioError(f"profile key {key!r} must be {want.__name__}, got {type(v).__name__}",
                                path=key)
        changes[key] = v
    try:
        return dataclasses.replace(prof, **changes)
    except EncodeError as exc:
        raise ScenarioError(exc.message, path=exc.path) from None
