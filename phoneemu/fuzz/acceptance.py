"""The acceptance oracle of ``fuzz --target phoneemu`` for the signed formats: a mutant reaches the phone's
trust decisions (spec §G, :mod:`phoneemu.phone.rules`), and an acceptance must be one §G allows.

Rules implemented here (spec §G.2-§G.5, §B.3, §B.7; the phone and its state are ours):

* The phone: a CP-8861 (Security By Default, TVS, PKI, SHA-1/256/512, EC) at the corpus's clock
  (2026-01-01, inside every corpus certificate's validity), holding the corpus's original lists — the ITL
  (the ``full`` seed of ``--format itl``) for ``itl``; that ITL and the CTL (``full`` of ``--format ctl``)
  for ``ctl``, ``sgn`` and ``enc`` — the corpus phone key as its MIC (``enc``), and a config signed by the
  corpus TFTP key naming one TVS server, so that a signer neither list knows reaches §G.3.4 / §G.4 (c).
  TVS is offline: a pending decision (``needs_tvs``) is decided again with ``TvsStatus.UNREACHABLE``.
  The store is built once per callable (per campaign) and never changed: a decision is not applied, so
  nothing is reset between runs (the rules' intern cache is the store's own, bounded).
* Decided as: ``itl``/``ctl`` an update of ``ITLFile.tlv``/``CTLFile.tlv`` (``decide_trust_list``);
  ``sgn`` under its header FILENAME (what the phone requested), a device config (``*.cnf.xml.sgn``,
  ``decide_config``) or a file a config names (``decide_static_file``), ``SEP001122334455.cnf.xml.sgn``
  when the header does not parse; ``enc`` as ``SEP001122334455.cnf.xml.enc.sgn`` (``decide_config``).
* The oracle, which shares no code with the rules: an accepted mutant's signed bytes (the input without
  its tag-12 TLV, spec §A.3) verify, with :func:`phoneemu.crypto.signatures.verify` and the hash its tag 8
  names, against the key of a record of the held lists whose role signs that kind of file (§G.5, §B.3:
  SAST for a CTL/ITL; CCM+TFTP or TFTP for a ``.sgn``/``.enc.sgn``); or the acceptance is one §G allows
  without a signature: the bytes of the held list itself (§G.3, nothing changes), no list held (§G.2 trust
  on first use; §G.4 first row), the held ITL the rollback one and no CTL (§G.3 step 6, §B.7: any new ITL,
  and a CTL as on first contact; §G.4 third row, §G.11: any config), a manual-key ``.enc.sgn`` on a model
  that does not check its signer (§C.3, §C.5). Any other acceptance is a finding,
  :class:`~phoneemu.fuzz.targets.AcceptedUnverifiedError` (outcome ``accepted-unverified``, deduplicated by
  format and the rule id the phone gave). Verifying costs only on acceptance: a rejection is not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from phoneemu.crypto import certs, signatures
from phoneemu.crypto.hashes import hash_alg
from phoneemu.crypto.keys import PublicKey
from phoneemu.errors import DecodeError, PhoneEmuError, VerificationError
from phoneemu.formats import config as config_fmt
from phoneemu.formats import encrypted, signed
from phoneemu.formats.config import DeviceConfig, Server
from phoneemu.formats.header import ParsedHeader, parse_header
from phoneemu.formats.trustlist import Role, TrustList
from phoneemu.fuzz.corpus import Corpus, build_corpus
from phoneemu.fuzz.targets import AcceptedUnverifiedError
from phoneemu.phone import rules
from phoneemu.phone.events import Decision
from phoneemu.phone.profile import PhoneProfile, get_profile
from phoneemu.phone.store import Credential, InternCache, TrustStore, TvsStatus

__all__ = ["ACCEPTANCE_FORMATS", "CONFIG_NAME", "NOW", "DecisionRaisedError", "HeldPhone", "acceptance_stage",
           "check_acceptance", "held_phone"]

#: the formats whose mutants reach the phone's trust decisions
ACCEPTANCE_FORMATS = ("itl", "ctl", "sgn", "enc")
#: the corpus's clock (its files' timestamp, 2026-01-01 00:00 UTC)
NOW = 1_767_225_600
PROFILE = "cp-8861"
#: the device config the phone requests (the corpus phone's MAC)
CONFIG_NAME = "SEP001122334455.cnf.xml"
#: which roles sign which kind of file (spec §G.5, §B.3)
_SIGNING_ROLES = {"trust list": frozenset({Role.SAST}), "config": frozenset({Role.CCM_TFTP, Role.TFTP})}
_ROLES_TEXT = {"trust list": "SAST", "config": "CCM+TFTP/TFTP"}
_HEADER_FMT = {"itl": "trustlist", "ctl": "trustlist", "sgn": "sgn", "enc": "enc"}


@dataclass(frozen=True, kw_only=True)
class HeldPhone:
    """The phone a mutant is decided by, and what the oracle knows of it (module docstring)."""

    store: TrustStore
    profile: PhoneProfile
    #: the held lists' raw bytes, by kind
    held: dict[str, bytes]
    #: the keys of the held records whose role signs a trust list / a config (``_SIGNING_ROLES``)
    keys: dict[str, tuple[PublicKey, ...]]


class DecisionRaisedError(AssertionError):
    """A rule of :mod:`phoneemu.phone.rules` raised one of phoneemu's errors (a rejection elsewhere) instead
    of returning a decision: a crash, located where it raised (the traceback is the rule's)."""


def _record_keys(lists: list[TrustList], roles: frozenset[int]) -> tuple[PublicKey, ...]:
    """The key of every record of ``lists`` with one of ``roles``: its certificate's, else its tag 7."""
    out: list[PublicKey] = []
    for tl in lists:
        for rec in tl.records:
            if rec.role not in roles:
                continue
            try:
                key = certs.cert_public_key(rec.x509()) if rec.certificate is not None else \
                    rec.public_key_obj()
            except DecodeError:  # a blanked (rollback) record: it vouches for nothing
                continue
            out.append(key)
    return tuple(out)


def _seed(fmt: str, bits: int, name: str) -> bytes:
    c = build_corpus(fmt, bits=bits)
    return c.seeds[c.names.index(name)]


def held_phone(fmt: str, corpus: Corpus, *, itl: bytes | None = None, ctl: bytes | None = None,
               tvs: bool = True) -> HeldPhone:
    """The phone of ``fmt`` (module docstring), its lists ``itl``/``ctl`` unless given (``b""``: none
    held); ``tvs`` False: its config names no TVS server. Lists are installed as the phone does
    (decided, then applied); raises EncodeError if the rules refuse one (a corpus that does not fit)."""
    from phoneemu.crypto.keys import key_size_bits
    from phoneemu.errors import EncodeError

    bits = key_size_bits(corpus.signer.key)
    profile = get_profile(PROFILE)
    if itl is None:
        itl = _seed("itl", bits, "full")
    if ctl is None:
        ctl = _seed("ctl", bits, "full") if fmt != "itl" else b""
    mic = Credential.of(corpus.recipient.cert, corpus.recipient.key)
    store = TrustStore(profile=profile, mic=mic, intern=InternCache(max_items=64))
    held: dict[str, bytes] = {}
    for kind, raw in (("ITL", itl), ("CTL", ctl)):
        if not raw:
            continue
        d = rules.decide_trust_list(store, raw, kind=kind, profile=profile, now=NOW)  # type: ignore[arg-type]
        if not d.accepted:
            raise EncodeError(f"the held {kind} is refused: {d.summary()}", path="fuzz.acceptance")
        store.apply(d)
        if store.trust_list(kind) is None:
            raise EncodeError(f"the held {kind} was not installed: {d.summary()}", path="fuzz.acceptance")
        held[kind] = raw
    if tvs:
        tftp = build_corpus("sgn", bits=bits).signer
        xml = config_fmt.build(DeviceConfig(device_name=CONFIG_NAME.split(".", 1)[0],
                                            tvs_servers=(Server(host="127.0.0.1", port=2445, priority=0),)))
        cfg = signed.build(body=xml, filename=CONFIG_NAME + ".sgn", signer=tftp.signer, timestamp=NOW)
        d = rules.decide_config(store, CONFIG_NAME + ".sgn", cfg, profile=profile, now=NOW)
        if not d.accepted:
            raise EncodeError(f"the held config is refused: {d.summary()}", path="fuzz.acceptance")
        store.apply(d)
    lists = [tl for tl in (store.ctl, store.itl if profile.sbd else None) if tl is not None]
    keys = {what: _record_keys(lists, roles) for what, roles in _SIGNING_ROLES.items()}
    return HeldPhone(store=store, profile=profile, held=held, keys=keys)


def _header(data: bytes, fmt: str) -> ParsedHeader | None:
    try:
        return parse_header(data, fmt=_HEADER_FMT[fmt])
    except PhoneEmuError:
        return None


def _decide(fmt: str, phone: HeldPhone, data: bytes, parsed: object) -> Decision:
    """The phone's decision on ``data`` (TVS offline: a pending decision decided again, unreachable);
    ``parsed``: what the stages before parsed from ``data`` (None when they did not): a trust list, every
    record decoded (the rules take one of their kind as their own parse of those bytes), or a ``.sgn``
    (its header FILENAME is the name requested)."""
    store, profile = phone.store, phone.profile
    kind = fmt.upper()
    new: TrustList | bytes = parsed if isinstance(parsed, TrustList) and parsed.kind == kind else data

    def once(tvs: TvsStatus | None) -> Decision:
        if fmt in ("itl", "ctl"):
            return rules.decide_trust_list(store, new, kind=kind, profile=profile,  # type: ignore[arg-type]
                                           now=NOW, tvs_answer=tvs)
        if fmt == "enc":
            return rules.decide_config(store, CONFIG_NAME + ".enc.sgn", data, profile=profile, now=NOW,
                                       tvs_answer=tvs)
        name = parsed.header.filename if isinstance(parsed, signed.SignedFile) else ""
        if not name.endswith(".sgn") or name.endswith(".enc.sgn"):
            name = CONFIG_NAME + ".sgn"
        if name.endswith(".cnf.xml.sgn"):
            return rules.decide_config(store, name, data, profile=profile, now=NOW, tvs_answer=tvs)
        return rules.decide_static_file(store, name, data, profile=profile, now=NOW, tvs_answer=tvs)

    d = once(None)
    if d.needs_tvs is not None:
        d = once(TvsStatus.UNREACHABLE)
    return d


def _allowed_unsigned(fmt: str, phone: HeldPhone, data: bytes) -> str | None:
    """The §G acceptance of ``data`` that needs no signature (module docstring), named; None if none."""
    held, profile = phone.held, phone.profile
    itl = held.get("ITL") if profile.sbd else None
    ctl = held.get("CTL")
    empty_itl = phone.store.itl_is_empty and profile.sbd
    if fmt in ("itl", "ctl"):
        kind = fmt.upper()
        if held.get(kind) == data:
            return "§G.3: the held list's own bytes (nothing changes)"
        if ctl is None and itl is None:
            return "§G.2: no list held (trust on first use)"
        if ctl is None and empty_itl:
            return "§G.3 step 6, §B.7: the held ITL is the rollback one (any new list)"
        return None
    if ctl is None and itl is None:
        return "§G.4: no list held (unsigned files accepted)"
    if ctl is None and empty_itl:
        return "§G.4, §G.11, §B.7: the held ITL is the rollback one (signatures not checked)"
    if fmt == "enc" and not profile.enc_signer_checked:
        try:
            if encrypted.parse(data).method == "symmetric":
                return "§C.3, §C.5: a manual-key .enc.sgn on a model that does not check its signer"
        except DecodeError:
            return None
    return None


def _signed_by(ph: ParsedHeader, data: bytes, keys: tuple[PublicKey, ...]) -> bool:
    """Whether ``data``'s signed bytes (without its tag-12 TLV, spec §A.3) verify with one of ``keys``."""
    try:
        alg = hash_alg(ph.header.hash_alg)
    except VerificationError:
        return False
    start, length = ph.signature_span
    message = data[:start] + data[start + length:]
    for key in keys:
        try:
            signatures.verify(key, ph.header.signature, message, alg, what="acceptance oracle")
        except VerificationError:
            continue
        return True
    return False


def check_acceptance(fmt: str, phone: HeldPhone, data: bytes, parsed: object = None) -> Decision:
    """Decide ``data`` as ``phone`` (module docstring; ``parsed``: :func:`_decide`'s) and raise
    :class:`AcceptedUnverifiedError` when it is accepted unsigned by a key §G allows and in none of the
    ways §G allows without one; the decision."""
    try:
        d = _decide(fmt, phone, data, parsed)
    except PhoneEmuError as exc:  # a rule must decide, not raise: a crash where it raised
        raise DecisionRaisedError(f"{fmt}: the rules raised {type(exc).__name__} instead of deciding: "
                                  f"{exc}").with_traceback(exc.__traceback__) from None
    if not d.accepted or _allowed_unsigned(fmt, phone, data) is not None:
        return d
    what = "trust list" if fmt in ("itl", "ctl") else "config"
    ph = _header(data, fmt)  # the signed bytes, read for the oracle (on acceptance only)
    if ph is not None and _signed_by(ph, data, phone.keys[what]):
        return d
    why = "its header does not parse" if ph is None else \
        f"its signature verifies with no {_ROLES_TEXT[what]} record's key of the held lists"
    raise AcceptedUnverifiedError(fmt=fmt, rule=d.rule,
                                  text=f"the phone accepted it ({d.summary()}) but {why}, and §G allows "
                                  "no such acceptance without one (held: "
                                  f"{', '.join(sorted(phone.held)) or 'no list'})")


def acceptance_stage(fmt: str, corpus: Corpus) -> Callable[[bytes, object], object] | None:
    """The stage for ``fmt`` (None for a format that is not decided by §G here), its phone built once:
    ``stage(data, parsed)`` (``parsed``: :func:`check_acceptance`'s)."""
    if fmt not in ACCEPTANCE_FORMATS:
        return None
    phone = held_phone(fmt, corpus)

    def stage(data: bytes, parsed: object) -> Decision:
        return check_acceptance(fmt, phone, data, parsed)

    return stage
