"""CTL / ITL trust lists: signed header (spec §A) + a sequence of records (spec §B).

Rules implemented here:

* Every record is a flat TLV sequence whose first TLV is RECORD_LENGTH (tag 1, uint16) giving the
  size of the whole record **including** that TLV (spec §B.2). Record tags 1-12 are decoded; other
  tags are kept verbatim (:class:`RecordUnknown`) and their order is kept for round trips.
* Roles 0, 1, 2, 3, 4, 5, 7, 21 are named (:class:`Role`, spec §B.3); unknown codes are kept as ints.
* PUBLIC_KEY (tag 7) is PKCS#1 DER for RSA or an uncompressed point for EC (spec §B.2).
* A signature is verified with a record's certificate key when the record carries a certificate, with
  its tag 7 only when it has none (spec §G.3 step 2; :meth:`TrustRecord.signature_key`, the phone's rule
  too); a tag 7 that is not the certificate's key is told by :meth:`TrustRecord.key_disagreement`.
* The signer is the SAST record whose issuer and serial match the header's (spec §B.4); issuer text
  is compared by ``crypto.certs.same_issuer``, the phone's comparison (any RDN order, separator, case and
  spacing: §A.7); when no issuer matches, a SAST record with the same serial is accepted (spec §B.4
  recommendation). A serial found only in non-SAST records is
  VerificationError WRONG_ROLE; no serial at all is UNKNOWN_SIGNER. Issuer + serial is all that names
  the signer, so when several SAST records match (e.g. an old and a new certificate with the same
  serial and issuer but different keys) the signer is the one whose key verifies the signature, the
  first of them when none does (:meth:`TrustList.signer_index`). A phone takes no serial-only match
  for a record whose issuer is another's (``phone.rules``): :meth:`TrustList.names_signer` tells which
  records name the signer as a phone reads it.
* Inputs larger than ``limit`` (64 KiB by default, the phone limit of spec §B.5) are refused with
  SizeLimitError before any parsing.
* Performance only: a successful record decode is remembered by its exact bytes (``_tlv.Memo``;
  failures are decoded again, with their own offsets); :func:`build_record` keeps the bytes of
  an (immutable) :class:`TrustRecord` on the object after the first build, and
  :meth:`TrustRecord.sha1_fingerprint` its fingerprint.
* Records are decoded lazily: :func:`parse` checks the header and the RECORD_LENGTH chain; a
  record's TLVs are decoded (and checked) the first time it is needed, the certificate only on
  :meth:`TrustRecord.x509`. ``parse(..., lazy=False)`` decodes everything up front.

Our convention (spec §B.7 [UNK]): the rollback ("empty") ITL keeps the SAST and CAPF records and
reduces the TVS, TFTP, CCM and CCM+TFTP records to RECORD_LENGTH + DNS_NAME + ROLE + IP_ADDRESS,
signed as usual (:func:`rollback_records`). :attr:`TrustList.is_empty` recognises it: at least one
record of those four roles and every one of them blank (a list with no record at all is empty too).
A blank record of another role (SAST, CAPF, an unknown code) is not what a rollback blanks, and
does not make a list empty.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from cryptography import x509

from phoneemu.crypto import certs, keys
from phoneemu.crypto.keys import PublicKey
from phoneemu.errors import DecodeError, EncodeError, SizeLimitError, VerificationError, VerifyReason
from phoneemu.formats._tlv import Memo, check_cstring, decode_cstring, encode_cstring, unchecked
from phoneemu.formats.header import (
    FileSigner,
    ParsedHeader,
    SignedHeader,
    parse_header,
    sign_file,
    verify_signature,
)
from phoneemu.formats.header import build_header as _build_header
from phoneemu.wire import Reader, as_bytes

__all__ = [
    "DEFAULT_LIMIT",
    "RecordTag",
    "RecordUnknown",
    "Role",
    "TrustList",
    "TrustRecord",
    "build",
    "build_record",
    "empty_record",
    "parse",
    "parse_record",
    "role_text",
    "roles_text",
    "rollback_records",
    "serialise",
]

FMT = "trustlist"
DEFAULT_LIMIT = 65536


class Role(enum.IntEnum):
    """Record ROLE ("FUNCTION") codes (spec §B.3)."""

    SAST = 0
    CCM = 1
    CCM_TFTP = 2
    TFTP = 3
    CAPF = 4
    SRST = 5
    APP_SERVER = 7
    TVS = 21


_ROLE_TEXT = {Role.SAST: "System Administrator Security Token", Role.CCM: "CCM",
              Role.CCM_TFTP: "CCM+TFTP", Role.TFTP: "TFTP", Role.CAPF: "CAPF", Role.SRST: "SRST",
              Role.APP_SERVER: "APP-SERVER", Role.TVS: "TVS"}


def role_text(code: int) -> str:
    """``show ctl`` text of a role code (spec §B.3, §H.4); unknown codes print as ``Unknown (n)``."""
    try:
        return _ROLE_TEXT[Role(code)]
    except ValueError:
        return f"Unknown ({code})"


def roles_text(codes: Iterable[int]) -> str:
    """Role codes, ascending, as ``SAST (0), CCM+TFTP (2)`` (§B.3; ``none`` when empty), for reasons."""
    names = []
    for code in sorted(set(codes)):
        if code not in _ROLE_TEXT:
            names.append(role_text(code))  # "Unknown (n)"
        else:
            names.append(f"{'SAST' if code == Role.SAST else role_text(code)} ({int(code)})")
    return ", ".join(names) or "none"


class RecordTag(enum.IntEnum):
    """Record tags (spec §B.2)."""

    RECORD_LENGTH = 1
    DNS_NAME = 2
    SUBJECT_NAME = 3
    ROLE = 4
    ISSUER_NAME = 5
    SERIAL_NUMBER = 6
    PUBLIC_KEY = 7
    SIGNATURE = 8
    CERTIFICATE = 9
    IP_ADDRESS = 10
    CERTIFICATE_HASH = 11
    HASH_ALGORITHM = 12


R = RecordTag
_FIELD = {R.DNS_NAME: "dns_name", R.SUBJECT_NAME: "subject", R.ROLE: "role", R.ISSUER_NAME: "issuer",
          R.SERIAL_NUMBER: "serial", R.PUBLIC_KEY: "public_key", R.SIGNATURE: "signature",
          R.CERTIFICATE: "certificate", R.IP_ADDRESS: "ip_address", R.CERTIFICATE_HASH: "cert_hash",
          R.HASH_ALGORITHM: "hash_alg"}
_BY_NUM: dict[int, str] = {int(k): v for k, v in _FIELD.items()}
_STRINGS = frozenset({2, 3, 5})
_CUCM_ORDER = (2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)  # spec §B.2 order, then 11, 12
UNKNOWN_SLOT = -1


@dataclass(frozen=True, kw_only=True)
class RecordUnknown:
    """A record TLV with a tag we do not know (kept verbatim)."""

    tag: int
    value: bytes

    def __post_init__(self) -> None:
        if not 13 <= self.tag <= 255 and self.tag != 0:
            raise EncodeError(f"tag {self.tag} is a known record tag", fmt=FMT, path="record.unknown")
        if len(self.value) > 0xFFFF:
            raise EncodeError("value exceeds 65535 bytes", fmt=FMT, path="record.unknown", tag=self.tag)


@functools.lru_cache(maxsize=512)
def _load_cert(der: bytes) -> x509.Certificate:
    return certs.load_cert_der(der, path="record.certificate", tag=R.CERTIFICATE)


@functools.lru_cache(maxsize=512)
def _load_key(raw: bytes) -> PublicKey:
    try:
        return keys.decode_record_public_key(raw)
    except DecodeError as exc:
        raise DecodeError(exc.message, fmt=FMT, path="record.public_key", tag=R.PUBLIC_KEY) from None


@dataclass(frozen=True, kw_only=True)
class TrustRecord:
    """One CTL/ITL record (spec §B.2); fields are None when their tag is absent.

    ``order`` (tag numbers, ``-1`` for the next unknown TLV) records a parsed record's TLV order
    so that it rebuilds byte for byte; it takes no part in equality.
    """

    role: int
    dns_name: str | None = None
    subject: str | None = None
    issuer: str | None = None
    serial: bytes | None = None
    public_key: bytes | None = None
    signature: bytes | None = None
    certificate: bytes | None = None
    ip_address: bytes | None = None
    cert_hash: bytes | None = None
    hash_alg: int | None = None
    unknown: tuple[RecordUnknown, ...] = ()
    order: tuple[int, ...] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.role <= 0xFFFF:
            raise EncodeError(f"role {self.role} does not fit in 16 bits", fmt=FMT, path="record.role")
        if self.hash_alg is not None and not 0 <= self.hash_alg <= 255:
            raise EncodeError(f"hash_alg {self.hash_alg} does not fit in a byte", fmt=FMT,
                              path="record.hash_alg")
        for name in ("dns_name", "subject", "issuer"):
            v = getattr(self, name)
            if v is not None:
                check_cstring(v, fmt=FMT, path=f"record.{name}")
        for name in ("serial", "public_key", "signature", "certificate", "ip_address", "cert_hash"):
            b = getattr(self, name)
            if b is not None and len(b) > 0xFFFF:
                raise EncodeError("value exceeds 65535 bytes", fmt=FMT, path=f"record.{name}")

    @classmethod
    def from_certificate(cls, cert: x509.Certificate, role: int, *, dns_name: str | None = None,
                         ip: str | bytes | None = None) -> TrustRecord:
        """A full record for ``cert`` (CUCM field set, spec §B.2)."""
        return cls(role=int(role), dns_name=dns_name, subject=certs.dn_text(cert.subject),
                   issuer=certs.dn_text(cert.issuer), serial=certs.serial_bytes(cert.serial_number),
                   public_key=keys.encode_record_public_key(certs.cert_public_key(cert)),
                   signature=certs.cert_signature_bytes(cert), certificate=certs.cert_der(cert),
                   ip_address=_ip_bytes(ip))

    @property
    def role_name(self) -> str:
        return role_text(self.role)

    @property
    def is_empty(self) -> bool:
        """True for a CUCM "empty" record (spec §B.7): no subject, issuer, serial, key or certificate."""
        return (self.subject is None and self.issuer is None and self.serial is None
                and self.public_key is None and self.signature is None and self.certificate is None
                and self.cert_hash is None)

    def x509(self) -> x509.Certificate:
        """The certificate (tag 9), decoded on demand; DecodeError if absent or malformed."""
        if self.certificate is None:
            raise DecodeError("record has no certificate", fmt=FMT, path="record.certificate",
                              tag=R.CERTIFICATE)
        try:
            return _load_cert(self.certificate)
        except DecodeError as exc:
            raise DecodeError(exc.message, fmt=FMT, path="record.certificate", tag=R.CERTIFICATE) from None

    def public_key_obj(self) -> PublicKey:
        """The record's PUBLIC_KEY (tag 7) if present, else the certificate's key. What tag 7 says, e.g.
        to show it; a signature is verified with :meth:`signature_key`."""
        if self.public_key is not None:
            return _load_key(self.public_key)
        if self.certificate is not None:
            return certs.cert_public_key(self.x509())
        raise DecodeError("record has neither a public key nor a certificate", fmt=FMT,
                          path="record.public_key", tag=R.PUBLIC_KEY)

    def signature_key(self) -> PublicKey:
        """The key a signature by this record is verified with (spec §G.3 step 2: "verify signature with
        [the signer certificate]"): a record carrying a certificate gives the certificate's key, the one
        whose validity is checked, whatever its PUBLIC_KEY (tag 7) says; tag 7 is the key of a record
        without a certificate. DecodeError when that key does not decode (RSA and EC only). The one rule
        of the phone (``phone.rules``), ``inspect`` and :meth:`TrustList.verify_self`."""
        if self.certificate is None:
            return self.public_key_obj()
        try:
            return certs.cert_public_key(self.x509())
        except DecodeError as exc:
            raise DecodeError(exc.message, fmt=FMT, path="record.certificate", tag=R.CERTIFICATE) from None

    def key_disagreement(self) -> str | None:
        """Why the PUBLIC_KEY (tag 7) of a record that also carries a certificate is not that certificate's
        key (another key, or one that does not decode); None when they agree, when the record lacks one
        of the two, or when the certificate's key itself does not decode (:meth:`signature_key` says
        so). Only the certificate's key verifies a signature (:meth:`signature_key`)."""
        if self.public_key is None or self.certificate is None:
            return None
        try:
            cert_key = _key_identity(self.signature_key())
        except DecodeError:
            return None
        try:
            tag7 = _key_identity(_load_key(self.public_key))
        except DecodeError as exc:
            return f"its PUBLIC_KEY (tag 7) does not decode ({exc.message}); its certificate's key does"
        if tag7 == cert_key:
            return None
        return "its PUBLIC_KEY (tag 7) is another key than its certificate's"

    def sha1_fingerprint(self) -> str | None:
        """Lower-case hex SHA-1 of the certificate DER (what ``show ctl`` prints), None if absent."""
        if self.certificate is None:
            return None
        fp: str | None = self.__dict__.get("_sha1")
        if fp is None:  # immutable record: computed once, kept on the object
            fp = hashlib.sha1(self.certificate, usedforsecurity=False).hexdigest()
            object.__setattr__(self, "_sha1", fp)
        return fp


def _key_identity(key: PublicKey) -> tuple[bytes, str | None]:
    """What makes two keys the same: their tag 7 encoding (spec §B.2) and, for EC, the curve."""
    curve = getattr(key, "curve", None)
    return keys.encode_record_public_key(key), curve.name if curve is not None else None


def _ip_bytes(ip: str | bytes | None) -> bytes | None:
    if ip is None or isinstance(ip, bytes):
        return ip
    try:
        return ipaddress.ip_address(ip).packed
    except ValueError:
        raise EncodeError(f"not an IP address: {ip!r}", fmt=FMT, path="record.ip_address") from None


def empty_record(role: int, *, dns_name: str | None = None, ip: str | bytes | None = None) -> TrustRecord:
    """A CUCM "empty" record: RECORD_LENGTH + DNS_NAME + ROLE + IP_ADDRESS (spec §B.7)."""
    return TrustRecord(role=int(role), dns_name=dns_name, ip_address=_ip_bytes(ip))


_BLANKED_ROLES = frozenset({Role.CCM, Role.CCM_TFTP, Role.TFTP, Role.TVS})


def rollback_records(records: Iterable[TrustRecord]) -> tuple[TrustRecord, ...]:
    """Our rollback-ITL convention (spec §B.7 [UNK]): blank TVS/TFTP/CCM/CCM+TFTP, keep the rest."""
    return tuple(empty_record(r.role, dns_name=r.dns_name, ip=r.ip_address) if r.role in _BLANKED_ROLES
                 else r for r in records)


# --------------------------------------------------------------------------- records
#: Successful record decodes by exact record bytes (``_tlv.Memo``: failures are never remembered).
_RECORDS: Memo[TrustRecord] = Memo()


def parse_record(data: bytes, start: int, end: int, *, index: int = 0) -> TrustRecord:
    """Decode the record occupying ``data[start:end]`` (RECORD_LENGTH first, spec §B.2); a span
    outside ``data`` is a DecodeError (was: IndexError)."""
    data = as_bytes(data, fmt=FMT)
    if not 0 <= start <= end <= len(data):
        raise DecodeError(f"record span {start}..{end} outside the {len(data)} bytes given", fmt=FMT,
                          offset=start, path=f"record[{index}]")
    raw = data[start:end]
    rec = _RECORDS.get(raw)
    if rec is None:
        rec = _parse_record(data, start, end, index)
        _RECORDS.put(raw, rec)
    return rec


def _parse_records(data: bytes, spans: Sequence[tuple[int, int]]) -> tuple[TrustRecord, ...]:
    """:func:`parse_record` of every span, in order (its memo look-up inlined: perf only)."""
    remembered = _RECORDS.get
    recs: list[TrustRecord] = []
    for i, (start, end) in enumerate(spans):
        raw = data[start:end]
        rec = remembered(raw)
        if rec is None:
            rec = _parse_record(data, start, end, i)
            _RECORDS.put(raw, rec)
        recs.append(rec)
    return tuple(recs)


def _short(data: bytes, pos: int, end: int, *, path: str, read: str, n: int, field: str,
           tag: int) -> DecodeError:
    """The DecodeError a :class:`Reader` raises for this short read (same text, path and offset)."""
    r = Reader(data, fmt=FMT, start=pos, end=end, path=path)
    try:
        if read == "u16":
            r.u16(field, tag=tag)
        else:
            r.take(n, field, tag=tag)
    except DecodeError as exc:
        return exc
    raise AssertionError("short read did not fail")  # pragma: no cover


def _parse_record(data: bytes, start: int, end: int, index: int) -> TrustRecord:
    path = f"record[{index}]"
    r = Reader(data, fmt=FMT, start=start, end=end, path=path)
    if r.u8("tag") != R.RECORD_LENGTH or r.u16("record_length.length", tag=1) != 2:
        raise DecodeError("a record must start with RECORD_LENGTH (tag 1, length 2)", fmt=FMT,
                          offset=start, path=path, tag=1)
    length = r.u16("record_length", tag=1)
    if length != end - start:
        raise DecodeError(f"RECORD_LENGTH {length} != record span {end - start}", fmt=FMT,
                          offset=start + 3, path=f"{path}.record_length", tag=1)
    values: dict[str, object] = {}
    order: list[int] = []
    unknown: list[RecordUnknown] = []
    pos = r.offset
    while pos < end:  # Reader.u8 / u16 / take inlined (speed); a short read raises the Reader's error
        at = pos
        tag = data[pos]
        name = _BY_NUM.get(tag)
        if end - pos < 3:
            raise _short(data, pos + 1, end, path=path, read="u16", n=2, field="length", tag=tag)
        ln = (data[pos + 1] << 8) | data[pos + 2]
        pos += 3
        if ln > end - pos:
            raise _short(data, pos, end, path=path, read="take", n=ln, field=name or "value", tag=tag)
        value = data[pos:pos + ln]
        pos += ln
        if name is None:
            if tag == R.RECORD_LENGTH:
                raise DecodeError("duplicate RECORD_LENGTH", fmt=FMT, offset=at, path=path, tag=tag)
            unknown.append(RecordUnknown(tag=tag, value=value))
            order.append(UNKNOWN_SLOT)
            continue
        if name in values:
            raise DecodeError(f"duplicate tag {tag} ({name})", fmt=FMT, offset=at, path=f"{path}.{name}",
                              tag=tag)
        order.append(tag)
        if tag in _STRINGS:
            values[name] = decode_cstring(value, fmt=FMT, path=f"{path}.{name}", tag=tag, offset=at + 3)
        elif tag in (R.ROLE, R.HASH_ALGORITHM):
            want = 2 if tag == R.ROLE else 1
            if ln != want:
                raise DecodeError(f"length {ln}, expected {want}", fmt=FMT, offset=at,
                                  path=f"{path}.{name}", tag=tag)
            values[name] = int.from_bytes(value, "big")
        else:
            values[name] = value
    if "role" not in values:
        raise DecodeError("record has no ROLE (tag 4)", fmt=FMT, offset=start, path=path, tag=4)
    # Built ``unchecked`` (perf only): its __post_init__ checks hold by construction here. ROLE is
    # 2 bytes and HASH_ALGORITHM 1 (checked above), other values are TLV values (at most 65535
    # bytes), strings decode a NUL-terminated value with surrogateescape (so they encode back).
    return unchecked(TrustRecord, **values, unknown=tuple(unknown), order=tuple(order))


def build_record(rec: TrustRecord) -> bytes:
    """Serialise a record: its parsed TLV order if it still fits, else CUCM order (spec §B.2).

    ``rec`` is immutable, so its bytes are computed once and kept on the object.
    """
    built: bytes | None = rec.__dict__.get("_built")
    if built is None:
        built = _build_record(rec)
        object.__setattr__(rec, "_built", built)
    return built


_TLV_LIMIT = "value of {} bytes exceeds the 65535-byte TLV limit"  # Writer.tlv's message


def _build_record(rec: TrustRecord) -> bytes:
    present = [t for t in _CUCM_ORDER if getattr(rec, _BY_NUM[t]) is not None]
    order: Sequence[int] = present + [UNKNOWN_SLOT] * len(rec.unknown)
    if rec.order is not None and sorted(rec.order) == sorted(order):
        order = rec.order
    buf = bytearray(b"\x01\x00\x02\x00\x00")  # RECORD_LENGTH, patched below (Writer.tlv inlined)
    unknown = iter(rec.unknown)
    for slot in order:
        if slot == UNKNOWN_SLOT:
            u = next(unknown)
            tag, raw, field = u.tag, u.value, f"record.tag{u.tag}"
        else:
            tag = slot
            name = _BY_NUM[tag]
            v = getattr(rec, name)
            field = f"record.{name}"
            if tag in _STRINGS:
                raw = encode_cstring(v, fmt=FMT, path=field, tag=tag)
            elif tag == R.ROLE:
                raw = v.to_bytes(2, "big")
            elif tag == R.HASH_ALGORITHM:
                raw = bytes([v])
            else:
                raw = v
        n = len(raw)
        if n > 0xFFFF:
            raise EncodeError(_TLV_LIMIT.format(n), fmt=FMT, path=field, tag=tag)
        buf.append(tag)
        buf += n.to_bytes(2, "big")
        buf += raw
    if len(buf) > 0xFFFF:
        raise EncodeError(f"record of {len(buf)} bytes exceeds 65535", fmt=FMT, path="record")
    buf[3:5] = len(buf).to_bytes(2, "big")
    return bytes(buf)


# --------------------------------------------------------------------------- the file
@dataclass(frozen=True, kw_only=True, eq=False)
class TrustList:
    """A parsed CTL or ITL; ``raw`` and ``signed_message`` are the exact input bytes (spec §A.3)."""

    kind: Literal["CTL", "ITL"]
    header: SignedHeader
    raw: bytes
    signed_message: bytes
    body_offset: int
    signature_span: tuple[int, int]
    spans: tuple[tuple[int, int], ...]
    _cache: list[TrustRecord | None] = field(default_factory=list, repr=False)

    def record(self, i: int) -> TrustRecord:
        """Record ``i``, decoded on first use."""
        if not self._cache:
            self._cache.extend([None] * len(self.spans))
        rec = self._cache[i]
        if rec is None:
            start, end = self.spans[i]
            rec = self._cache[i] = parse_record(self.raw, start, end, index=i)
        return rec

    @functools.cached_property
    def records(self) -> tuple[TrustRecord, ...]:
        return tuple(self.record(i) for i in range(len(self.spans)))

    def __len__(self) -> int:
        return len(self.spans)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TrustList) and self.raw == other.raw

    def __hash__(self) -> int:
        return hash(self.raw)

    @property
    def parsed_header(self) -> ParsedHeader:
        return ParsedHeader(header=self.header, body_offset=self.body_offset,
                            signature_span=self.signature_span, signed_message=self.signed_message)

    def signer_index(self) -> int:
        """Index of the record that signed the file (spec §B.4); VerificationError if none.

        When several SAST records name the signer (same issuer and serial), the first whose key
        verifies the file's signature; the first of them when none does."""
        candidates = self._signer_candidates()
        if len(candidates) > 1:
            for i in candidates:
                if self._verifies_with(self.record(i)):
                    return i
        return candidates[0]

    def _signer_candidates(self) -> list[int]:
        """The SAST records naming the signer: issuer + serial, else serial only (spec §B.4)."""
        signer = self.header.signer
        by_issuer: list[int] = []
        by_serial: list[int] = []
        other_roles: list[str] = []
        for i in range(len(self.spans)):
            rec = self.record(i)
            if rec.serial != signer.serial:
                continue
            if rec.role != Role.SAST:
                other_roles.append(rec.role_name)
            elif rec.issuer is not None and certs.same_issuer(rec.issuer, signer.issuer):
                by_issuer.append(i)
            else:
                by_serial.append(i)
        if by_issuer or by_serial:
            return by_issuer or by_serial
        serial = signer.serial.hex(":").upper()
        if other_roles:
            raise VerificationError(
                f"signer serial {serial} is in {', '.join(other_roles)} record(s), not a SAST record",
                reason=VerifyReason.WRONG_ROLE, fmt=FMT, path="header.signer")
        raise VerificationError(f"no SAST record for signer {signer.issuer!r} serial {serial}",
                                reason=VerifyReason.UNKNOWN_SIGNER, fmt=FMT, path="header.signer")

    def names_signer(self, i: int, *, any_role: bool = False) -> bool:
        """Does record ``i`` name the header's signer as a phone reads spec §B.4 (§G.3 step 1): a SAST record
        with the signer's serial and issuer (compared as the phone does, ``certs.same_issuer``: in any RDN
        order; a record without ISSUER_NAME by its serial alone)? Unlike :meth:`signer_index` (its
        serial-only fallback is kept for the callers that show which record signed), a record whose issuer
        is another's does not: to a phone it is not the signer, and ``inspect`` says so. ``any_role``: a
        record of any role (one naming the signer only in another role is a phone's ``wrong-role``)."""
        rec = self.record(i)
        signer = self.header.signer
        if rec.serial != signer.serial or (rec.role != Role.SAST and not any_role):
            return False
        return certs.same_issuer(rec.issuer, signer.issuer)

    def verifies_with_record(self, i: int) -> bool:
        """Does the signature verify with record ``i``'s :meth:`~TrustRecord.signature_key` (an unusable
        key does not)?"""
        return self._verifies_with(self.record(i))

    def _verifies_with(self, rec: TrustRecord) -> bool:
        """Does the signature verify with ``rec``'s :meth:`~TrustRecord.signature_key` (an unusable key
        does not)?"""
        try:
            verify_signature(self.parsed_header, rec.signature_key(), fmt=FMT, what=self.kind)
        except (DecodeError, VerificationError):
            return False
        return True

    def signer_record(self) -> TrustRecord:
        return self.record(self.signer_index())

    def verify_self(self) -> TrustRecord:
        """Verify with the file's own signer record (spec §B.4, §A.3), by its
        :meth:`~TrustRecord.signature_key` as a phone does (§G.3 step 2); returns that record."""
        rec = self.signer_record()
        try:
            key = rec.signature_key()
        except DecodeError as exc:
            raise VerificationError(f"signer record key unusable: {exc.message}",
                                    reason=VerifyReason.UNSUPPORTED_KEY, fmt=FMT,
                                    path="header.signer") from None
        verify_signature(self.parsed_header, key, fmt=FMT, what=self.kind)
        return rec

    def verify_with(self, key_or_cert: PublicKey | x509.Certificate) -> None:
        """Verify with a key (or certificate) the caller trusts."""
        key = certs.cert_public_key(key_or_cert) if isinstance(key_or_cert, x509.Certificate) \
            else key_or_cert
        verify_signature(self.parsed_header, key, fmt=FMT, what=self.kind)

    @property
    def is_empty(self) -> bool:
        """Rollback ("empty") ITL, our convention (spec §B.7, module docstring): it has TVS, TFTP, CCM or
        CCM+TFTP records and every one is blank (or it has no record at all)."""
        recs = self.records
        blanked = [r for r in recs if r.role in _BLANKED_ROLES]
        return not recs or (bool(blanked) and all(r.is_empty for r in blanked))

    def md5(self) -> str:
        return hashlib.md5(self.raw, usedforsecurity=False).hexdigest()

    def sha1(self) -> str:
        return hashlib.sha1(self.raw, usedforsecurity=False).hexdigest()


def _kind_of(filename: str) -> Literal["CTL", "ITL"]:
    base = filename.rsplit("/", 1)[-1].upper()
    return "CTL" if base.startswith("CTL") else "ITL"


def parse(data: bytes, *, limit: int = DEFAULT_LIMIT, kind: Literal["CTL", "ITL"] | None = None,
          lazy: bool = True) -> TrustList:
    """Parse a CTL/ITL. SizeLimitError above ``limit`` before parsing; DecodeError on bad bytes.

    ``kind`` defaults from the header FILENAME (``CTL...`` → CTL, otherwise ITL). The limit counts
    bytes, a memoryview's too; non-bytes-like input is a DecodeError (:func:`phoneemu.wire.as_bytes`).
    """
    data = as_bytes(data, fmt=FMT, limit=limit, too_large=lambda size: SizeLimitError(
        f"{size} bytes exceeds the {limit}-byte trust-list limit", fmt=FMT, offset=limit))
    ph = parse_header(data, fmt=FMT)
    spans: list[tuple[int, int]] = []
    pos, end = ph.body_offset, len(data)
    while pos < end:  # the RECORD_LENGTH chain only (records are decoded lazily)
        if end - pos < 5 or data[pos] != 1 or data[pos + 1] != 0 or data[pos + 2] != 2:
            raise DecodeError("a record must start with RECORD_LENGTH (tag 1, length 2)", fmt=FMT,
                              offset=pos, path=f"record[{len(spans)}]", tag=1)
        length = (data[pos + 3] << 8) | data[pos + 4]
        if length < 5 or length > end - pos:
            raise DecodeError(f"RECORD_LENGTH {length} outside 5..{end - pos} (remaining)", fmt=FMT,
                              offset=pos + 3, path=f"record[{len(spans)}].record_length", tag=1)
        spans.append((pos, pos + length))
        pos += length
    tl = TrustList(kind=kind or _kind_of(ph.header.filename), header=ph.header, raw=data,
                   signed_message=ph.signed_message, body_offset=ph.body_offset,
                   signature_span=ph.signature_span, spans=tuple(spans))
    if not lazy:  # decode every record now: what ``tl.records`` does, without the per-record calls
        recs = _parse_records(data, spans)
        tl._cache.extend(recs)
        tl.__dict__["records"] = recs  # the functools.cached_property slot of ``records``
    return tl


def serialise(tl: TrustList) -> bytes:
    """Re-serialise a parsed trust list without re-signing (``serialise(parse(b)) == b``)."""
    return b"".join([_build_header(tl.header), *[build_record(r) for r in tl.records]])


def build(*, kind: Literal["CTL", "ITL"], records: Sequence[TrustRecord], signer: FileSigner,
          timestamp: int, hash_alg: int = 1, filename: str | None = None,
          signer_version: tuple[int, int] | None = None, version: tuple[int, int] = (1, 2)) -> bytes:
    """Build and sign a trust list: header 1.2 in Cisco order (spec §A.2, §A.6), records in CUCM order."""
    if kind not in ("CTL", "ITL"):
        raise EncodeError(f"kind must be CTL or ITL, not {kind!r}", fmt=FMT, path="kind")
    body = b"".join(build_record(r) for r in records)
    return sign_file(version=version, filename=filename or f"{kind}File.tlv", timestamp=timestamp,
                     body=body, signer=signer, hash_alg=hash_alg, signer_version=signer_version)
