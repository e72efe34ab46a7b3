"""The phone's limited-memory trust store (spec §G.1, §B.5, §E.7.3, §H.2).

State kept per phone (spec §G.1): installed CTL and ITL, the last accepted config (whose
``<TVS>`` members are the TVS server list), a TVS certificate cache with per-entry expiry,
MIC, optional LSC, optional symmetric config key, pending CAPF auth mode, running firmware load.

Rules enforced here:

* Nothing is installed except through :meth:`TrustStore.apply` with an **accepting**
  :class:`~phoneemu.phone.events.Decision` from :mod:`phoneemu.phone.rules`; the rule's name is
  kept beside the artefact (``ctl_rule``, ``itl_rule``, ``config_rule``) so every installed file
  traces to a named rule.
* A trust file larger than the profile's ``trust_list_limit`` (64 KiB, spec §B.5) is never stored
  (SizeLimitError).
* A trust-list update flushes the TVS certificate cache (spec §E.7.3). Cache entries expire after
  the TTL TVS returned (spec §H.2); ``now`` (Unix seconds) is always passed in. Only an answer about
  the certificate asked is cached (:meth:`TrustStore.cache_tvs`, spec §E.7.2): the store is the guard.
  A config naming other TVS servers does not flush it (ours; the spec names only the trust-list flush):
  a TVS server is trusted by its ITL TVS record (§E.1), and an answer never outlives the ITL that
  trusted its server — so a cached answer may come from a server the current config no longer names.
* A rejected CTL/ITL update (not a pending TVS question, not a legacy phone ignoring the ITL)
  leaves the old file and marks the phone **locked** by that kind (spec §G.3.5): it ignores config
  changes until *that* kind is installed, or the lists are erased (or the next boot re-evaluates).
  Installing the other kind does not unlock: a CTL refused and an ITL accepted in the same boot leaves
  the phone locked (the refused CTL's signer is still unknown; ``locked_by`` names the kinds).
  Our convention where §G.3 is silent ("when one is installed"): a first CTL or ITL refused on a phone
  holding none (malformed, oversize, wrong name) locks it too — it takes no config, unsigned or
  signed, until a trust list loads (the seed: an ITL over 64 KiB makes registration fail). The boot
  report's ``locked_out`` stays false there: no list is held, nothing needs erasing.
* Factory reset keeps the MIC only (spec §G.6 "reset security settings"); erase removes CTL and
  ITL ("Erasing CTL and ITL files").

Memory (issue #4 target ≤ 32 KiB per idle phone beyond shared data): the store uses ``__slots__``;
parsed trust lists and configs are interned in an :class:`InternCache` keyed by the SHA-256 of
their bytes, so a thousand phones holding the same ITL share one parsed object and one copy of its
bytes. Credentials are kept as DER/PEM bytes and loaded on demand. A store not locked holds the one
shared empty ``locked_by`` (issue #6).

Used by: the boot sequence and phone orchestrator (``phoneemu.phone.boot`` / ``phone``, built on
top of this API) and :mod:`phoneemu.phone.flash` (persistence).
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from cryptography import x509

from phoneemu.crypto import certs, keys
from phoneemu.crypto.keys import PrivateKey
from phoneemu.errors import DecodeError, EncodeError, SizeLimitError
from phoneemu.formats import config as config_fmt
from phoneemu.formats import trustlist
from phoneemu.formats.config import DeviceConfig, Server
from phoneemu.formats.trustlist import TrustList
from phoneemu.phone import status
from phoneemu.phone.events import Decision, QueryKey
from phoneemu.phone.profile import PhoneProfile

__all__ = [
    "SHARED_CACHE",
    "TVS_CACHE_MAX",
    "AcceptedConfig",
    "AcceptedFirmware",
    "Credential",
    "InternCache",
    "TrustStore",
    "TvsAnswer",
    "TvsResult",
    "TvsStatus",
    "query_answer",
]

#: At most this many TVS cache entries per phone (oldest dropped); bounded whatever TVS says.
TVS_CACHE_MAX = 32
TVS_TTL_MAX = 2_592_000  # 30 days (spec §H.2)
TVS_TTL_DEFAULT = 86_400  # a TVS answer without a TTL: 24 hours, as CUCM sends (spec §E.4)
_LOCKING_KINDS = frozenset({"CTL", "ITL"})
#: ``locked_by`` of a phone not locked: one object for every store (``frozenset()`` makes a new ~0.2 KiB
#: set at each call since Python 3.10; issue #6)
_UNLOCKED: frozenset[str] = frozenset()


@dataclass(frozen=True, kw_only=True, slots=True)
class TvsAnswer:
    """A TVS answer (spec §E.6, §E.7.2): the certificate DER, its roles and the cache TTL.

    ``cert_from_tvs``: True for a QUERY answer, whose certificate TVS returned (§E.3, §E.7.2); False for
    a VERIFY answer (§E.7.1), where TVS said only "valid, with these roles" about the certificate the
    *phone* sent (an HTTPS server's). Only a returned certificate can make a file signer (§G.3.4 "TVS
    returns the certificate", §G.4 (c)): the trust-list and file rules ask TVS (QUERY) instead of using
    a cached VERIFY answer (CUCM TVS matches a VERIFY by serial + issuer, §E.6, so a forged HTTPS
    certificate with a known serial and issuer would otherwise become a trust-list signer).
    """

    cert_der: bytes
    roles: frozenset[int]
    ttl: int = TVS_TTL_DEFAULT
    cert_from_tvs: bool = True
    #: the last :meth:`mismatch` verdict, ``(key, verdict)``: the boot notes it and the store refuses by
    #: it with one certificate check per answer (a fleet boot's hot path)
    _judged: tuple[QueryKey, str | None] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.ttl <= TVS_TTL_MAX:
            raise EncodeError(f"TVS TTL {self.ttl} outside 0..{TVS_TTL_MAX} s (spec §H.2)", path="ttl")

    @classmethod
    def from_reply(cls, cert_der: bytes, roles: Iterable[int], ttl: int | None, *,
                   cert_from_tvs: bool = True) -> TvsAnswer:
        """The answer a phone keeps from a TVS reply: a missing TTL is 86400 s, any TTL is clamped
        to 0..2592000 s (spec §H.2). ``cert_from_tvs=False`` for a VERIFY reply (see the class)."""
        return cls(cert_der=cert_der, roles=frozenset(roles),
                   ttl=min(max(ttl if ttl is not None else TVS_TTL_DEFAULT, 0), TVS_TTL_MAX),
                   cert_from_tvs=cert_from_tvs)

    def mismatch(self, key: QueryKey) -> str | None:
        """Why this answer is not about the certificate asked (``key``), or None when it is.

        A VERIFY answer (``cert_from_tvs`` False) holds the certificate the phone sent itself: always
        about it. A QUERY answer's returned certificate must be readable and carry the serial and issuer
        asked — the test by which :func:`phoneemu.phone.rules.tvs_cert_mismatch` refuses it (§E.7.2,
        §G.3.4: "TVS does not know the signer"). The verdict about the last ``key`` is kept: asked again
        (the boot's note, then :meth:`TrustStore.cache_tvs`), the certificate is not checked again."""
        if not self.cert_from_tvs:
            return None
        judged = self._judged
        if judged is not None and (judged[0] is key or judged[0] == key):
            return judged[1]
        verdict = self._judge(key)
        object.__setattr__(self, "_judged", (key, verdict))  # a memo: frozen for every field it compares
        return verdict

    def _judge(self, key: QueryKey) -> str | None:
        from phoneemu.phone.rules import tvs_cert_mismatch  # (rules import this module)

        try:
            cert = certs.load_cert_der(self.cert_der)
        except DecodeError as exc:
            return f"the certificate TVS returned is unreadable ({exc.message})"
        differs = tvs_cert_mismatch(cert, key)
        return f"TVS returned another certificate ({' and '.join(differs)} differ)" if differs else None



class TvsStatus(enum.Enum):
    """A TVS outcome without a certificate: server unreachable, certificate unknown to TVS, or every
    TVS server reached presented a certificate that is not an ITL TVS record (spec §E.1)."""

    UNREACHABLE = "unreachable"
    NOT_FOUND = "not-found"
    SERVER_UNTRUSTED = "server-untrusted"

    @property
    def unanswered(self) -> bool:
        """No TVS answered about the certificate (unreachable, or no trusted TVS server): a failure of
        the moment, not an answer; NOT_FOUND is TVS's answer "unknown certificate"."""
        return self is not TvsStatus.NOT_FOUND


TvsResult = TvsAnswer | TvsStatus


class _QueryResponse(Protocol):
    @property
    def valid(self) -> bool: ...
    @property
    def certificate(self) -> bytes | None: ...
    @property
    def roles(self) -> tuple[int, ...]: ...
    @property
    def ttl(self) -> int | None: ...


def query_answer(response: _QueryResponse) -> TvsResult:
    """What a phone keeps of a TVS QUERY response (spec §E.7.2): the returned certificate with its roles
    and TTL when TVS says valid and returns one, else "not found". The rules judge the certificate."""
    if response.valid and response.certificate:
        return TvsAnswer.from_reply(response.certificate, response.roles, response.ttl)
    return TvsStatus.NOT_FOUND


@dataclass(frozen=True, kw_only=True, slots=True)
class Credential:
    """A certificate and its private key kept as bytes (DER certificate, PEM key); loaded on demand."""

    cert_der: bytes
    key_pem: bytes

    @classmethod
    def of(cls, cert: x509.Certificate, key: PrivateKey) -> Credential:
        return cls.of_der(certs.cert_der(cert), key)

    @classmethod
    def of_der(cls, cert_der: bytes, key: PrivateKey) -> Credential:
        """A credential whose :meth:`key` is ``key`` itself (no PEM parse: ``keys.private_key_from_pem``)."""
        return cls(cert_der=cert_der, key_pem=keys.remembered_private_key_pem(key))

    @staticmethod
    def check_pair(cert: x509.Certificate, key_pem: bytes, *, cert_name: str, key_name: str) -> None:
        """A stored pair (a flash's, a lab's): DecodeError unless ``key_pem`` holds the private key of
        ``cert`` (the public halves compared; the key itself is loaded, checked, when it is used). The
        error names the file at fault: ``cert_name`` or ``key_name``."""
        key_spki = keys.private_key_pem_public_der(key_pem, source=key_name)
        try:
            cert_spki = keys.public_key_spki_der(certs.cert_public_key(cert))
        except DecodeError as exc:
            raise DecodeError(exc.message, path=cert_name) from None
        if cert_spki != key_spki:
            raise DecodeError(f"not the private key of the certificate in {cert_name}", path=key_name)

    def cert(self) -> x509.Certificate:
        return certs.load_cert_der(self.cert_der)

    def key(self) -> PrivateKey:
        return keys.private_key_from_pem(self.key_pem)

    def fingerprint(self, alg: str = "md5") -> str:
        """Lower-case hex hash of the certificate DER (``certHash`` is MD5, spec §C.4)."""
        return certs.fingerprint(self.cert_der, alg)


@dataclass(frozen=True, kw_only=True, slots=True)
class AcceptedConfig:
    """A config the rules accepted: the file it came in, its plaintext XML and the parse."""

    file: str
    xml: bytes
    config: DeviceConfig


@dataclass(frozen=True, kw_only=True, slots=True)
class AcceptedFirmware:
    """A firmware image the rules authenticated (spec §D); only its load name is kept."""

    load_name: str


class InternCache:
    """Parsed immutable trust lists and configs shared between phones, keyed by the bytes themselves.

    Bounded LRU (``max_items``); evicting an entry never affects phones already holding it. The key
    is the (immutable) file content: Python hashes a bytes object once and compares contents on a
    hit, cheaper than a SHA-256 per lookup, and the parsed object holds those bytes anyway.
    """

    __slots__ = ("_items", "_max", "hits", "misses")

    def __init__(self, max_items: int = 256) -> None:
        self._items: OrderedDict[tuple[str, bytes], object] = OrderedDict()
        self._max = max_items
        self.hits = 0
        self.misses = 0

    def _get(self, key: tuple[str, bytes]) -> object | None:
        obj = self._items.get(key)
        if obj is not None:
            self._items.move_to_end(key)
            self.hits += 1
        else:
            self.misses += 1
        return obj

    def _put(self, key: tuple[str, bytes], obj: object) -> None:
        self._items[key] = obj
        if len(self._items) > self._max:
            self._items.popitem(last=False)

    def trust_list(self, raw: bytes, *, kind: Literal["CTL", "ITL"], limit: int) -> TrustList:
        """The shared parse of ``raw`` (SizeLimitError above ``limit``, DecodeError when malformed)."""
        if len(raw) > limit:
            raise SizeLimitError(f"{len(raw)} bytes exceeds the {limit}-byte trust-list limit",
                                 fmt="trustlist", offset=limit)
        data = bytes(raw)
        key = (kind, data)
        got = self._get(key)
        if isinstance(got, TrustList):
            return got
        tl = trustlist.parse(data, limit=limit, kind=kind)
        self._put(key, tl)
        return tl

    def adopt_trust_list(self, tl: TrustList) -> TrustList:
        """The shared instance equal to ``tl`` (``tl`` itself becomes the shared one if new)."""
        key = (tl.kind, bytes(tl.raw))
        got = self._get(key)
        if isinstance(got, TrustList):
            return got
        self._put(key, tl)
        return tl

    def config(self, xml: bytes, *, file: str) -> AcceptedConfig:
        """The shared parse of a config's plaintext XML (DecodeError when malformed)."""
        data = bytes(xml)
        key = ("config:" + file, data)
        got = self._get(key)
        if isinstance(got, AcceptedConfig):
            return got
        acc = AcceptedConfig(file=file, xml=data, config=config_fmt.parse(data))
        self._put(key, acc)
        return acc

    def adopt_config(self, acc: AcceptedConfig) -> AcceptedConfig:
        key = ("config:" + acc.file, bytes(acc.xml))
        got = self._get(key)
        if isinstance(got, AcceptedConfig):
            return got
        self._put(key, acc)
        return acc

    def __len__(self) -> int:
        return len(self._items)


#: The process-wide intern cache used unless a store is given its own.
SHARED_CACHE = InternCache()


class TrustStore:
    """One phone's trust state (spec §G.1); see the module docstring for the rules it enforces."""

    __slots__ = (
        "_intern",
        "_tvs_cache",
        "capf_auth_mode",
        "config",
        "config_rule",
        "ctl",
        "ctl_rule",
        "firmware_load",
        "itl",
        "itl_rule",
        "locked_by",
        "lsc",
        "mic",
        "profile",
        "symmetric_key",
    )

    def __init__(self, *, profile: PhoneProfile, mic: Credential | None = None,
                 intern: InternCache | None = None) -> None:
        self.profile = profile
        self._intern = intern if intern is not None else SHARED_CACHE
        self.mic = mic
        self.lsc: Credential | None = None
        self.symmetric_key: bytes | None = None
        self.capf_auth_mode = 0
        self.firmware_load: str | None = None
        self.ctl: TrustList | None = None
        self.itl: TrustList | None = None
        self.config: AcceptedConfig | None = None
        self.ctl_rule: str | None = None
        self.itl_rule: str | None = None
        self.config_rule: str | None = None
        self.locked_by: frozenset[str] = _UNLOCKED
        self._tvs_cache: OrderedDict[QueryKey, tuple[TvsAnswer, int]] | None = None

    # ------------------------------------------------------------------ views
    @property
    def locked(self) -> bool:
        """Locked by a rejected trust-list update (spec §G.3.5): config changes are ignored."""
        return bool(self.locked_by)

    @locked.setter
    def locked(self, value: bool) -> None:
        """``False`` unlocks; ``True`` locks as if both CTL and ITL updates had been rejected."""
        self.locked_by = _LOCKING_KINDS if value else _UNLOCKED

    @property
    def intern(self) -> InternCache:
        return self._intern

    @property
    def tvs_servers(self) -> tuple[Server, ...]:
        """TVS servers from the last accepted config (spec §G.1)."""
        return self.config.config.tvs_servers if self.config is not None else ()

    @property
    def has_trust_list(self) -> bool:
        return self.ctl is not None or self.itl is not None

    @property
    def itl_is_empty(self) -> bool:
        """An installed rollback ("empty") ITL (spec §B.7, §G.3.6)."""
        return self.itl is not None and self.itl.is_empty

    @property
    def credential(self) -> Credential | None:
        """The phone's own certificate for config encryption: LSC if present, else MIC (spec §C.4)."""
        return self.lsc if self.lsc is not None else self.mic

    def trust_list(self, kind: str) -> TrustList | None:
        return self.ctl if kind == "CTL" else self.itl if kind == "ITL" else None

    def parse_config(self, xml: bytes, *, file: str) -> AcceptedConfig:
        """The parse of a config's plaintext XML (DecodeError when malformed): the installed
        :class:`AcceptedConfig` itself when ``file`` and the bytes are the same (a phone re-reading an
        unchanged config, as every phone of a boot storm does), else the shared intern parse.

        Only the parse is reused: the caller has already decided the file by the rules (§G.4)."""
        installed = self.config
        if installed is not None and installed.file == file and installed.xml == xml:
            return installed
        return self._intern.config(xml, file=file)

    def itl_checksum(self) -> str | None:
        """The installed ITL's checksum as the phone reports it (MD5 or SHA-1 per model, spec §G.1)."""
        if self.itl is None:
            return None
        return self.itl.md5() if self.profile.status_checksum == "md5" else self.itl.sha1()

    def ctl_checksum(self) -> str | None:
        """The installed CTL's checksum as the phone shows it (MD5 or SHA-1 per model, spec §G.1, §H.4)."""
        if self.ctl is None:
            return None
        return self.ctl.md5() if self.profile.status_checksum == "md5" else self.ctl.sha1()

    # ------------------------------------------------------------------ TVS cache
    def tvs_lookup(self, key: QueryKey, now: int) -> TvsAnswer | None:
        """A cached TVS answer still valid at ``now`` (expired entries are dropped)."""
        if self._tvs_cache is None:
            return None
        hit = self._tvs_cache.get(key)
        if hit is None:
            return None
        answer, expires = hit
        if now >= expires:
            del self._tvs_cache[key]
            return None
        return answer

    def cache_tvs(self, key: QueryKey, answer: TvsResult, now: int) -> bool:
        """Cache a TVS answer for its TTL (spec §E.7.2, §H.2); returns whether it was cached.

        Not cached: statuses (unreachable, no trusted server: failures of the moment; "not found"), a TTL
        of 0, and a QUERY answer about another certificate than ``key`` asks about, or an unreadable one
        (:meth:`TvsAnswer.mismatch` not None): the rules refuse it each time, and cached it would keep
        being refused until its TTL ran out although TVS was fixed meanwhile."""
        if not isinstance(answer, TvsAnswer) or answer.ttl <= 0 or answer.mismatch(key) is not None:
            return False
        if self._tvs_cache is None:
            self._tvs_cache = OrderedDict()
        self._tvs_cache[key] = (answer, now + answer.ttl)
        self._tvs_cache.move_to_end(key)
        while len(self._tvs_cache) > TVS_CACHE_MAX:
            self._tvs_cache.popitem(last=False)
        return True

    def expire_tvs(self, now: int) -> int:
        """Drop expired cache entries; returns how many remain."""
        if self._tvs_cache is None:
            return 0
        for k in [k for k, (_, exp) in self._tvs_cache.items() if now >= exp]:
            del self._tvs_cache[k]
        if not self._tvs_cache:
            self._tvs_cache = None
            return 0
        return len(self._tvs_cache)

    def flush_tvs_cache(self) -> None:
        """"TVS Certificate cache flush request" after a trust-list update (spec §E.7.3)."""
        self._tvs_cache = None

    @property
    def tvs_cache_size(self) -> int:
        return len(self._tvs_cache) if self._tvs_cache is not None else 0

    # ------------------------------------------------------------------ changes
    def apply(self, decision: Decision) -> str | None:
        """Install what an accepting decision carries; note a rejected trust-list update.

        Returns the status message to show (spec §H.3), or None. Raises EncodeError when an
        accepting decision carries an artefact of the wrong kind, SizeLimitError for a trust list
        above the profile limit (never stored, spec §B.5).
        """
        art = decision.artefact
        if not decision.accepted:
            if decision.kind in _LOCKING_KINDS and decision.needs_tvs is None and decision.reason_code:
                self.locked_by = self.locked_by | {decision.kind}
            return decision.status
        if art is None:
            return decision.status
        if isinstance(art, TrustList):
            if decision.kind != art.kind:
                raise EncodeError(f"decision kind {decision.kind!r} does not match a {art.kind}",
                                  path="decision.kind")
            self._install_trust_list(art, decision.rule)
            return decision.status
        if isinstance(art, AcceptedConfig):
            self.config = self._intern.adopt_config(art)
            self.config_rule = decision.rule
            self.capf_auth_mode = art.config.capf_auth_mode
            return decision.status
        if isinstance(art, AcceptedFirmware):
            self.firmware_load = art.load_name
            return decision.status
        raise EncodeError(f"cannot install a {type(art).__name__}", path="decision.artefact")

    def reinstate_config(self, config: AcceptedConfig | None, rule: str | None, *,
                         capf_auth_mode: int) -> None:
        """Put back the config held before a boot read another one: a boot that ends locked ignores the config
        it read (spec §G.3.5 "ignores configuration changes"; after a §G.9 retry, ours [INF])."""
        self.config = config
        self.config_rule = rule if config is not None else None
        self.capf_auth_mode = capf_auth_mode

    def _install_trust_list(self, tl: TrustList, rule: str) -> None:
        limit = self.profile.trust_list_limit
        if len(tl.raw) > limit:
            raise SizeLimitError(f"{tl.kind} of {len(tl.raw)} bytes exceeds the {limit}-byte limit",
                                 fmt="trustlist", offset=limit)
        shared = self._intern.adopt_trust_list(tl)
        if tl.kind == "CTL":
            self.ctl, self.ctl_rule = shared, rule
        else:
            self.itl, self.itl_rule = shared, rule
        if tl.kind in self.locked_by:  # only a fresh install of the refused kind unlocks
            self.locked_by = (self.locked_by - {tl.kind}) or _UNLOCKED
        self.flush_tvs_cache()

    def restore(self, *, ctl: TrustList | None, itl: TrustList | None, config: AcceptedConfig | None,
                ctl_rule: str | None, itl_rule: str | None, config_rule: str | None) -> None:
        """Reinstate state read back from flash (rules recorded when it was first accepted)."""
        limit = self.profile.trust_list_limit
        for tl in (ctl, itl):
            if tl is not None and len(tl.raw) > limit:
                raise SizeLimitError(f"{tl.kind} of {len(tl.raw)} bytes exceeds the {limit}-byte limit",
                                     fmt="trustlist", offset=limit)
        self.ctl = self._intern.adopt_trust_list(ctl) if ctl is not None else None
        self.itl = self._intern.adopt_trust_list(itl) if itl is not None else None
        self.config = self._intern.adopt_config(config) if config is not None else None
        self.ctl_rule = ctl_rule if ctl is not None else None
        self.itl_rule = itl_rule if itl is not None else None
        self.config_rule = config_rule if config is not None else None
        if config is not None:
            self.capf_auth_mode = config.config.capf_auth_mode

    def erase_trust_lists(self) -> str:
        """Delete CTL and ITL (Settings menu; spec §G.6); returns "Erasing CTL and ITL files"."""
        self.ctl = self.itl = None
        self.ctl_rule = self.itl_rule = None
        self.locked = False
        self.flush_tvs_cache()
        return status.ERASING_CTL_ITL

    def factory_reset(self) -> str:
        """Everything but the MIC is forgotten (spec §G.6 "reset security settings")."""
        msg = self.erase_trust_lists()
        self.config = None
        self.config_rule = None
        self.lsc = None
        self.symmetric_key = None
        self.capf_auth_mode = 0
        self.firmware_load = None
        return msg

    def set_symmetric_key(self, key: bytes | None) -> None:
        """Set (or with 16/32 zero bytes or None, clear) the manual config key (spec §C.5). An empty
        key is refused: ``set-key ""`` or ``--key "$UNSET"`` must not clear the key without a word."""
        if key is None or (not any(key) and len(key) in (16, 32)):
            self.symmetric_key = None
            return
        if not key:
            raise EncodeError("empty key: give 32 hex digits (64 where the model takes 256-bit keys); "
                              "32 zero digits clear it", path="symmetric_key")
        bits = len(key) * 8
        if not self.profile.symmetric_key_bits:
            raise EncodeError(f"{self.profile.name} has no manual config key (it decrypts configs with its "
                              f"certificate, spec §C.4); symmetric keys are for models such as "
                              f"cp-7942-symmetric", path="symmetric_key")
        if bits != self.profile.symmetric_key_bits:
            raise EncodeError(f"{bits}-bit key; {self.profile.name} takes "
                              f"{self.profile.symmetric_key_bits}-bit keys", path="symmetric_key")
        self.symmetric_key = bytes(key)
