"""The common signed-file header of CTL/ITL, ``.sgn``, ``.enc.sgn`` and firmware (spec §A).

Rules implemented here:

* Every TLV is tag (1 byte), length (uint16 BE), value; PADDING (13) is tag-only (spec §0, §A.2).
* VERSION (1) must be the first TLV and HEADER_LENGTH (2) the second (spec §A.1/§A.2).
  HEADER_LENGTH counts every byte from offset 0 to the first body byte, signature TLV and
  padding included; the tags must fill that region exactly.
* Containers 3, 7, 9, 16, 17, 21 hold nested tags and their length covers them; a nested length
  overrunning its container, or leftover bytes, is a DecodeError (spec §A.2, design §3.3).
* Parsing is order-independent: a known leaf tag is accepted wherever a tag may stand (any
  container), 0x0D padding is accepted anywhere, a known tag seen twice is a DecodeError.
  Unknown tags are kept (:class:`UnknownTag`) with their position so ``build(parse(b)) == b``.
* Building follows the Cisco order (spec §A.2): 1, 2, [28], 3(4, 5, 6), 7(8, 9(10, 11)), 12, 14,
  15, [16(17(18, 19, 20), 21(22, 23, 24, 25)), 26, 27] (spec §C.3), then 0x0D padding to a
  multiple of 4. Tag 28 right after tag 2 follows certutils (spec §A.2, §A.3a).
* The signature (tag 12) covers the whole file minus the 3 + len bytes of the signature TLV
  (spec §A.3). :class:`ParsedHeader` keeps those exact bytes; we never verify a re-serialisation.
* A parsed header keeps where each known tag sits (``SignedHeader.tag_offsets``): an error about
  a header value names that tag and offset (design §3.7), e.g. a signature that does not verify.
* Performance only: a successful decode is remembered by its exact header bytes (``_tlv.Memo``;
  failures are decoded again every time), and :func:`build_header` keeps the bytes of an
  (immutable) :class:`SignedHeader` on the object after the first build. A successful decode is
  also remembered by its bytes *without the signature value* (offset of tag 12 + the rest): a
  header that differs from a remembered one only inside that value (a re-signed file) gets the
  remembered header with its own signature, and its built bytes with the signature spliced in —
  exactly what a fresh decode and build give, since neither looks into the value. The verifying
  key's modulus code is remembered per key object.
  A parsed header is marked as having a layout that names exactly its fields (so building skips
  ``_layout_matches``, which would find the same); a header made by ``replace`` has no mark.
* Hash codes 1/2/3 (spec §A.4) and modulus codes 0-3 (spec §A.5) are checked at verification time
  (VerificationError UNSUPPORTED_HASH / UNSUPPORTED_KEY); parsing keeps any code. A known modulus
  code that does not match the verifying key's size means "not this signer": BAD_SIGNATURE.

Our conventions (spec [UNK]):

* EC header signers are [UNK]; we sign with ECDSA/DER (see ``crypto.signatures``) and use modulus
  codes 0x80 (P-256), 0x81 (P-384), 0x82 (P-521). A 3072-bit RSA key has no code and is refused.
* SIGNATURE_ALGORITHM (10) is optional when parsing (absent means 0); every other signer and
  signature tag (4, 5, 6, 8, 11, 12) and FILENAME/TIMESTAMP (14, 15) are required.
* The layout of a parsed header (order, nesting, padding positions) is kept in
  ``SignedHeader.layout`` and reused when building, as long as it still names exactly the
  fields present; otherwise the Cisco order is used. HEADER_LENGTH is always recomputed.
* A HEADER_LENGTH that is not a multiple of 4 is accepted when parsing (and kept by a round
  trip); builders in Cisco order always pad to a multiple of 4.
"""

from __future__ import annotations

import enum
import operator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

from cryptography import x509

from phoneemu.crypto import certs, signatures
from phoneemu.crypto.hashes import hash_alg
from phoneemu.crypto.keys import PrivateKey, PublicKey, key_size_bits, public_key_spki_der
from phoneemu.errors import DecodeError, EncodeError, VerificationError, VerifyReason
from phoneemu.formats._tlv import Memo, check_cstring, decode_cstring, encode_cstring, unchecked
from phoneemu.wire import Reader, as_bytes

__all__ = [
    "CONTAINER_TAGS",
    "EncryptionInfo",
    "FileSigner",
    "HeaderTag",
    "Layout",
    "LayoutItem",
    "ParsedHeader",
    "SignedHeader",
    "SignerInfo",
    "UnknownTag",
    "build_header",
    "modulus_code_for_key",
    "parse_envelope",
    "parse_header",
    "sign_file",
    "sign_header",
    "verify_signature",
]


class HeaderTag(enum.IntEnum):
    """Header tag numbers (spec §A.2, §C.3)."""

    VERSION = 1
    HEADER_LENGTH = 2
    SIGNER_INFO = 3
    SIGNER_NAME = 4
    SERIAL_NUMBER = 5
    ISSUER_NAME = 6
    SIGNATURE_INFO = 7
    HASH_ALGORITHM = 8
    SIGNATURE_ALGORITHM_INFO = 9
    SIGNATURE_ALGORITHM = 10
    SIGNATURE_MODULUS = 11
    SIGNATURE = 12
    PADDING = 13
    FILENAME = 14
    TIMESTAMP = 15
    ENCRYPTION_INFO = 16
    ENCRYPTION_IV_INFO = 17
    ENCRYPTION_MODE = 18
    ENCRYPTION_IV = 19
    ENCRYPTION_PADDING = 20
    ENCRYPTION_KEY_INFO = 21
    ENCRYPTION_KEY_UNKNOWN = 22
    ENCRYPTION_KEY_SIZE = 23
    ENCRYPTION_KEY_ALGORITHM = 24
    ENCRYPTION_KEY = 25
    ENCRYPTION_HASH_ALGORITHM = 26
    ENCRYPTION_HASH = 27
    SIGNER_VERSION = 28


T = HeaderTag
CONTAINER_TAGS: frozenset[int] = frozenset({T.SIGNER_INFO, T.SIGNATURE_INFO, T.SIGNATURE_ALGORITHM_INFO,
                            T.ENCRYPTION_INFO, T.ENCRYPTION_IV_INFO, T.ENCRYPTION_KEY_INFO})
_LEAF_TAGS: frozenset[int] = frozenset(int(t) for t in HeaderTag) - CONTAINER_TAGS - {13}
_FIXED_LEN: dict[int, int] = {int(k): v for k, v in {
    T.VERSION: 2, T.HEADER_LENGTH: 2, T.HASH_ALGORITHM: 1, T.SIGNATURE_ALGORITHM: 1,
    T.SIGNATURE_MODULUS: 1, T.TIMESTAMP: 4, T.SIGNER_VERSION: 2, T.ENCRYPTION_MODE: 1,
    T.ENCRYPTION_PADDING: 2, T.ENCRYPTION_KEY_UNKNOWN: 1, T.ENCRYPTION_KEY_SIZE: 2,
    T.ENCRYPTION_KEY_ALGORITHM: 1, T.ENCRYPTION_HASH_ALGORITHM: 1}.items()}

#: One position in a header layout: a known tag number, 13 for one padding byte, ``-1`` for the
#: next :class:`UnknownTag` (in order), or ``(container_tag, children)``.
LayoutItem: TypeAlias = "int | tuple[int, tuple[LayoutItem, ...]]"
Layout: TypeAlias = "tuple[LayoutItem, ...]"
UNKNOWN_SLOT = -1


_NAMES: dict[int, str] = {int(t): t.name.lower() for t in HeaderTag}


def _name(tag: int) -> str:
    return _NAMES.get(tag) or f"tag{tag}"


@dataclass(frozen=True, kw_only=True)
class UnknownTag:
    """A TLV whose tag we do not know, kept verbatim; ``container`` is its parent tag (0 = top)."""

    tag: int
    value: bytes
    container: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.tag <= 255 or self.tag in _LEAF_TAGS or self.tag in CONTAINER_TAGS \
                or self.tag == T.PADDING:
            raise EncodeError(f"tag {self.tag} is not an unknown header tag", fmt="header",
                              path="unknown.tag")
        if len(self.value) > 0xFFFF:
            raise EncodeError("value exceeds 65535 bytes", fmt="header", path="unknown.value",
                              tag=self.tag)
        if self.container != 0 and self.container not in CONTAINER_TAGS:
            raise EncodeError(f"container {self.container} is not a container tag", fmt="header",
                              path="unknown.container", tag=self.tag)


@dataclass(frozen=True, kw_only=True)
class SignerInfo:
    """Tags 4, 5, 6: signer subject DN text, serial bytes (no DER sign byte), issuer DN text."""

    name: str
    serial: bytes
    issuer: str

    def __post_init__(self) -> None:
        check_cstring(self.name, fmt="header", path="signer.name", tag=T.SIGNER_NAME)
        check_cstring(self.issuer, fmt="header", path="signer.issuer", tag=T.ISSUER_NAME)
        if len(self.serial) > 0xFFFF:
            raise EncodeError("serial too long", fmt="header", path="signer.serial", tag=T.SERIAL_NUMBER)


@dataclass(frozen=True, kw_only=True)
class EncryptionInfo:
    """Encryption tags 16-27 of an ``.enc.sgn`` (spec §C.3); each field None when absent.

    ``mode`` (18), ``key_info_unknown`` (22) and ``key_algorithm`` (24) are [UNK] bytes that
    certutils writes as 0, 0 and 1.
    """

    mode: int | None = None
    iv: bytes | None = None
    padding: int | None = None
    key_info_unknown: int | None = None
    key_size: int | None = None
    key_algorithm: int | None = None
    wrapped_key: bytes | None = None
    hash_alg: int | None = None
    plaintext_hash: bytes | None = None

    def __post_init__(self) -> None:
        for name, bits in (("mode", 8), ("padding", 16), ("key_info_unknown", 8), ("key_size", 16),
                           ("key_algorithm", 8), ("hash_alg", 8)):
            v = getattr(self, name)
            if v is not None and not 0 <= v < (1 << bits):
                raise EncodeError(f"{v} does not fit in {bits} bits", fmt="header",
                                  path=f"encryption.{name}")
        for name in ("iv", "wrapped_key", "plaintext_hash"):
            b = getattr(self, name)
            if b is not None and len(b) > 0xFFFF:
                raise EncodeError("value exceeds 65535 bytes", fmt="header", path=f"encryption.{name}")

    def present_tags(self) -> frozenset[int]:
        return frozenset(tag for tag, name in _ENC_FIELDS.items() if getattr(self, name) is not None)


_ENC_FIELDS: dict[int, str] = {
               T.ENCRYPTION_MODE: "mode", T.ENCRYPTION_IV: "iv", T.ENCRYPTION_PADDING: "padding",
               T.ENCRYPTION_KEY_UNKNOWN: "key_info_unknown", T.ENCRYPTION_KEY_SIZE: "key_size",
               T.ENCRYPTION_KEY_ALGORITHM: "key_algorithm", T.ENCRYPTION_KEY: "wrapped_key",
               T.ENCRYPTION_HASH_ALGORITHM: "hash_alg", T.ENCRYPTION_HASH: "plaintext_hash"}
_ENC_U8 = frozenset({T.ENCRYPTION_MODE, T.ENCRYPTION_KEY_UNKNOWN, T.ENCRYPTION_KEY_ALGORITHM,
                     T.ENCRYPTION_HASH_ALGORITHM})
_ENC_U16 = frozenset({T.ENCRYPTION_PADDING, T.ENCRYPTION_KEY_SIZE})
_ENC_INT = _ENC_U8 | _ENC_U16
#: Header tags as plain ints for the parser's look-ups (perf only: ``T.X`` on the IntEnum costs ~60 ns).
(_SIGNER_NAME, _SERIAL_NUMBER, _ISSUER_NAME, _HASH_ALGORITHM, _SIGNATURE_ALGORITHM, _SIGNATURE_MODULUS,
 _SIGNATURE, _FILENAME, _TIMESTAMP, _SIGNER_VERSION, _ENCRYPTION_INFO) = (
    int(t) for t in (T.SIGNER_NAME, T.SERIAL_NUMBER, T.ISSUER_NAME, T.HASH_ALGORITHM, T.SIGNATURE_ALGORITHM,
                     T.SIGNATURE_MODULUS, T.SIGNATURE, T.FILENAME, T.TIMESTAMP, T.SIGNER_VERSION,
                     T.ENCRYPTION_INFO))
#: Encryption tag → (EncryptionInfo field, is an integer): one look-up per tag when parsing (perf only).
_ENC_DECODE: dict[int, tuple[str, bool]] = {int(t): (n, t in _ENC_INT) for t, n in _ENC_FIELDS.items()}


def _version_ok(v: tuple[int, int], path: str) -> None:
    if len(v) != 2 or not all(0 <= x <= 255 for x in v):
        raise EncodeError(f"version {v!r} must be two bytes (major, minor)", fmt="header", path=path)


#: Document order of each container's trailing unknown tags in the Cisco layout (0 = top level).
_CANON = {3: 0, 9: 1, 7: 2, 17: 3, 21: 4, 16: 5, 0: 6}


@dataclass(frozen=True, kw_only=True)
class SignedHeader:
    """A parsed or to-be-built signed-file header (spec §A).

    ``layout``, ``header_length`` and ``tag_offsets`` describe the byte layout of a parsed header;
    they take no part in equality (a header built in Cisco order equals its parse).
    ``tag_offsets``: (tag, offset of its tag byte) for every known tag parsed, leaves and
    containers, in file order; empty for a header not parsed (see :meth:`offset_of`).
    """

    version: tuple[int, int]
    signer: SignerInfo
    hash_alg: int
    signature_algorithm: int = 0
    modulus_code: int
    signature: bytes
    filename: str
    timestamp: int
    signer_version: tuple[int, int] | None = None
    encryption: EncryptionInfo | None = None
    unknown: tuple[UnknownTag, ...] = ()
    header_length: int = field(default=0, compare=False)
    layout: Layout | None = field(default=None, compare=False, repr=False)
    tag_offsets: tuple[tuple[int, int], ...] = field(default=(), compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.layout is None and self.unknown:
            # Without a layout, unknown tags go to the end of their container in Cisco order;
            # keep the tuple in that document order so that parse(build(h)) == h.
            ordered = tuple(sorted(self.unknown, key=lambda u: _CANON[u.container]))
            object.__setattr__(self, "unknown", ordered)
        _version_ok(self.version, "version")
        if self.signer_version is not None:
            _version_ok(self.signer_version, "signer_version")
        for name in ("hash_alg", "signature_algorithm", "modulus_code"):
            v = getattr(self, name)
            if not 0 <= v <= 255:
                raise EncodeError(f"{name} {v} does not fit in one byte", fmt="header", path=name)
        if not 0 <= self.timestamp <= 0xFFFFFFFF:
            raise EncodeError(f"timestamp {self.timestamp} does not fit in 32 bits", fmt="header",
                              path="timestamp", tag=T.TIMESTAMP)
        if len(self.signature) > 0xFFFF:
            raise EncodeError("signature exceeds 65535 bytes", fmt="header", path="signature")
        check_cstring(self.filename, fmt="header", path="filename", tag=T.FILENAME)

    def offset_of(self, tag: int) -> int | None:
        """Where ``tag``'s TLV starts in the parsed input (its tag byte); None when not parsed there.

        Errors about a header value name this offset (design §3.7). A header made with ``replace``
        keeps the offsets of the header it came from: they describe the parsed bytes only."""
        for t, at in self.tag_offsets:
            if t == tag:
                return at
        return None


@dataclass(frozen=True, kw_only=True)
class ParsedHeader:
    """Result of :func:`parse_header`: the header plus where things are in the input.

    ``signature_span`` is (offset, length) of the whole tag-12 TLV; ``signed_message`` is the
    input minus that span (spec §A.3), the exact bytes a verifier must check.
    """

    header: SignedHeader
    body_offset: int
    signature_span: tuple[int, int]
    signed_message: bytes


# --------------------------------------------------------------------------- parsing
class _Walk:
    __slots__ = ("containers", "fmt", "seen", "sig_span", "unknown", "values")

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.seen: set[int] = {T.VERSION, T.HEADER_LENGTH}
        #: Leaf tag → (value, offset of the value); container tag → offset of its tag byte.
        self.values: dict[int, tuple[bytes, int]] = {}
        self.containers: dict[int, int] = {}
        self.unknown: list[UnknownTag] = []
        self.sig_span = (0, 0)


def _fail(data: bytes, st: _Walk, pos: int, end: int, *, path: str, read: str, n: int, field: str,
          tag: int) -> DecodeError:
    """The DecodeError the :class:`Reader` raises for a short read at ``pos`` (same text and place)."""
    r = Reader(data, fmt=st.fmt, start=pos, end=end, path=path)
    try:
        if read == "u16":
            r.u16(field, tag=tag)
        elif read == "sub":
            r.sub(n, field, tag=tag)
        else:
            r.take(n, field, tag=tag)
    except DecodeError as exc:
        return exc
    raise AssertionError("short read did not fail")  # pragma: no cover


_UNKNOWN, _CONTAINER, _VARIABLE = -2, -1, 0
#: Per tag byte (perf only: one tuple index instead of set and dict look-ups): ``_UNKNOWN``,
#: ``_CONTAINER``, ``_VARIABLE`` (a leaf of any length) or the fixed length of a leaf.
_KIND: tuple[int, ...] = tuple(
    _CONTAINER if t in CONTAINER_TAGS else _FIXED_LEN.get(t, _VARIABLE) if t in _LEAF_TAGS else _UNKNOWN
    for t in range(256))


def _walk(data: bytes, pos: int, end: int, *, path: str, st: _Walk, container: int) -> Layout:
    """TLVs of ``data[pos:end]`` (a container or the header); reads inlined for speed."""
    items: list[LayoutItem] = []
    append = items.append
    seen = st.seen
    values = st.values
    kinds = _KIND
    while pos < end:
        start = pos
        tag = data[pos]
        if tag == 13:
            append(13)
            pos += 1
            continue
        if end - pos < 3:
            raise _fail(data, st, pos + 1, end, path=path, read="u16", n=2, field="length", tag=tag)
        length = (data[pos + 1] << 8) | data[pos + 2]
        pos += 3
        kind = kinds[tag]
        if kind == _UNKNOWN:
            if length > end - pos:
                raise _fail(data, st, pos, end, path=path, read="take", n=length, field="value", tag=tag)
            st.unknown.append(UnknownTag(tag=tag, value=data[pos:pos + length], container=container))
            append(UNKNOWN_SLOT)
            pos += length
            continue
        if tag in seen:
            raise DecodeError(f"duplicate tag {tag} ({_name(tag)})", fmt=st.fmt, offset=start,
                              path=f"{path}.{_name(tag)}", tag=tag)
        seen.add(tag)
        if length > end - pos:
            raise _fail(data, st, pos, end, path=path, read="sub" if kind == _CONTAINER else "take",
                        n=length, field=_NAMES[tag], tag=tag)
        if kind == _CONTAINER:
            st.containers[tag] = start
            append((tag, _walk(data, pos, pos + length, path=f"{path}.{_NAMES[tag]}", st=st,
                               container=tag)))
            pos += length
            continue
        if kind and length != kind:
            raise DecodeError(f"length {length}, expected {kind}", fmt=st.fmt, offset=start,
                              path=f"{path}.{_name(tag)}", tag=tag)
        values[tag] = (data[pos:pos + length], start + 3)
        if tag == 12:
            st.sig_span = (start, 3 + length)
        append(tag)
        pos += length
    return tuple(items)


#: Successful header decodes by exact header bytes (``_tlv.Memo``: failures are never remembered).
_PARSED: Memo[tuple[SignedHeader, tuple[int, int]]] = Memo()


#: Successful header decodes by header bytes *without the signature value* (perf only): key
#: ``offset of the tag-12 TLV (2 bytes) + header minus that TLV's value``, so two headers with one
#: key are byte-identical except inside the signature value, which parsing never looks into.
_UNSIGNED: Memo[tuple[SignedHeader, tuple[int, int]]] = Memo()
#: HEADER_LENGTH → tag-12 offsets of recent successful decodes (where to look for the signature).
_SIG_AT: dict[int, list[int]] = {}


def _unsigned_key(head: bytes, s_off: int) -> bytes | None:
    """The :data:`_UNSIGNED` key of ``head`` if a signature TLV fits at ``s_off``, else None."""
    if s_off + 3 > len(head) or head[s_off] != T.SIGNATURE:
        return None
    end = s_off + 3 + ((head[s_off + 1] << 8) | head[s_off + 2])
    if end > len(head):
        return None
    return s_off.to_bytes(2, "big") + head[:s_off + 3] + head[end:]


def _remember_unsigned(head: bytes, hit: tuple[SignedHeader, tuple[int, int]]) -> None:
    s_off = hit[1][0]
    key = _unsigned_key(head, s_off)
    if key is None:  # pragma: no cover - a successful decode has its signature TLV there
        return
    _UNSIGNED.put(key, hit)
    offs = _SIG_AT.get(len(head))
    if offs is None:
        if len(_SIG_AT) >= 256:
            _SIG_AT.clear()
        offs = _SIG_AT[len(head)] = []
    if s_off not in offs:
        offs.insert(0, s_off)
        del offs[4:]


def _resigned(head: bytes) -> tuple[SignedHeader, tuple[int, int]] | None:
    """The decode of ``head`` from a remembered header that differs only in the signature value.

    Exact: outside the signature value the bytes are the same, and decoding takes the value as is,
    so a fresh decode would give the remembered header with this signature (same span). The
    remembered header's built bytes, when known, carry over with the signature spliced in
    (building writes the signature value verbatim at one place).
    """
    for s_off in _SIG_AT.get(len(head), ()):
        key = _unsigned_key(head, s_off)
        hit = _UNSIGNED.get(key) if key is not None else None
        if hit is None:
            continue
        old, span = hit
        sig = head[s_off + 3:s_off + span[1]]
        new = object.__new__(SignedHeader)  # = replace(old, signature=sig): same length, still valid
        state = new.__dict__
        state.update(old.__dict__)
        state["signature"] = sig
        state.pop("_built", None)
        built, at = old.__dict__.get("_built"), old.__dict__.get("_built_sig_at")
        if built is not None and at is not None:
            at += 3
            state["_built"] = built[:at] + sig + built[at + len(sig):]
            state["_built_sig_at"] = at - 3
        return new, span
    return None


def _preamble(data: bytes, fmt: str) -> tuple[tuple[int, int], int]:
    """VERSION and HEADER_LENGTH, read through a :class:`Reader` (names every short read)."""
    r = Reader(data, fmt=fmt, path="header")
    if r.u8("version.tag") != T.VERSION:
        raise DecodeError("the first TLV must be VERSION (tag 1)", fmt=fmt, offset=0, path="header",
                          tag=data[0])
    if r.u16("version.length", tag=T.VERSION) != 2:
        raise DecodeError("VERSION length must be 2", fmt=fmt, offset=1, path="header.version", tag=1)
    version = r.take(2, "version", tag=T.VERSION)
    if r.u8("header_length.tag") != T.HEADER_LENGTH:
        raise DecodeError("the second TLV must be HEADER_LENGTH (tag 2)", fmt=fmt, offset=5,
                          path="header", tag=data[5])
    if r.u16("header_length.length", tag=T.HEADER_LENGTH) != 2:
        raise DecodeError("HEADER_LENGTH length must be 2", fmt=fmt, offset=6,
                          path="header.header_length", tag=2)
    return (version[0], version[1]), r.u16("header_length", tag=T.HEADER_LENGTH)


def parse_header(data: bytes, *, fmt: str) -> ParsedHeader:
    """Parse the signed header at the start of ``data`` (spec §A); errors carry ``fmt``; bytes-like
    input only (:func:`phoneemu.wire.as_bytes`)."""
    data = as_bytes(data, fmt=fmt)
    if len(data) >= 10:  # :func:`_preamble` inlined: no read can be short, same checks and errors
        if data[0] != T.VERSION:
            raise DecodeError("the first TLV must be VERSION (tag 1)", fmt=fmt, offset=0, path="header",
                              tag=data[0])
        if data[1] != 0 or data[2] != 2:
            raise DecodeError("VERSION length must be 2", fmt=fmt, offset=1, path="header.version", tag=1)
        if data[5] != T.HEADER_LENGTH:
            raise DecodeError("the second TLV must be HEADER_LENGTH (tag 2)", fmt=fmt, offset=5,
                              path="header", tag=data[5])
        if data[6] != 0 or data[7] != 2:
            raise DecodeError("HEADER_LENGTH length must be 2", fmt=fmt, offset=6,
                              path="header.header_length", tag=2)
        version = (data[3], data[4])
        header_length = (data[8] << 8) | data[9]
    else:
        version, header_length = _preamble(data, fmt)
    if not 10 <= header_length <= len(data):
        raise DecodeError(f"HEADER_LENGTH {header_length} outside 10..{len(data)} (file size)",
                          fmt=fmt, offset=8, path="header.header_length", tag=2)
    head = data[:header_length]
    hit = _PARSED.get(head)
    if hit is None:
        hit = _resigned(head)
        if hit is None:
            hit = _parse_fields(data, header_length, version, fmt)
            _remember_unsigned(head, hit)
        _PARSED.put(head, hit)
    header, sig_span = hit
    s_off, s_len = sig_span
    return ParsedHeader(header=header, body_offset=header_length, signature_span=sig_span,
                        signed_message=data[:s_off] + data[s_off + s_len:])


def _parse_fields(data: bytes, header_length: int, version: tuple[int, int],
                  fmt: str) -> tuple[SignedHeader, tuple[int, int]]:
    """Everything after the first two TLVs (offsets 10 to ``header_length``, which the caller checked
    is within ``data``): a pure function of ``data[:header_length]``."""
    st = _Walk(fmt)
    layout = _walk(data, 10, header_length, path="header", st=st, container=0)
    values = st.values

    def need(tag: int) -> tuple[bytes, int]:
        got = values.get(tag)
        if got is None:
            tag = HeaderTag(tag)  # the error names the tag as before (the look-ups use plain ints)
            raise DecodeError(f"required tag {tag} ({_name(tag)}) is missing", fmt=fmt,
                              offset=header_length, path="header", tag=tag)
        return got

    def text(tag: int) -> str:
        raw, at = need(tag)
        if raw[-1:] == b"\0":  # perf only: decode_cstring's success path, without its error path text
            return raw[:-1].decode("utf-8", errors="surrogateescape")
        return decode_cstring(raw, fmt=fmt, path=f"header.{_name(tag)}", tag=HeaderTag(tag), offset=at)

    # The dataclasses below are built ``unchecked`` (perf only): their __post_init__ checks hold by
    # construction here. Integers come from fixed-length values (_FIXED_LEN: 1, 2 or 4 bytes),
    # bytes from TLV values (at most 65535), strings from decoding a NUL-terminated value with
    # surrogateescape (so they encode back to that value), and the header has a layout (unknown
    # tags keep their parsed order).
    signer = unchecked(SignerInfo, name=text(_SIGNER_NAME), serial=need(_SERIAL_NUMBER)[0],
                       issuer=text(_ISSUER_NAME))
    enc: EncryptionInfo | None = None
    enc_tags = values.keys() & _ENC_FIELDS.keys()
    if enc_tags or _ENCRYPTION_INFO in st.seen:
        kwargs: dict[str, int | bytes] = {}
        for tag in enc_tags:
            raw = values[tag][0]
            name, is_int = _ENC_DECODE[tag]
            kwargs[name] = int.from_bytes(raw, "big") if is_int else raw
        enc = unchecked(EncryptionInfo, **kwargs)
    sv = values.get(_SIGNER_VERSION)
    sigalg = values.get(_SIGNATURE_ALGORITHM)
    header = unchecked(
        SignedHeader,
        version=version,
        signer=signer,
        hash_alg=need(_HASH_ALGORITHM)[0][0],
        signature_algorithm=sigalg[0][0] if sigalg else 0,
        modulus_code=need(_SIGNATURE_MODULUS)[0][0],
        signature=need(_SIGNATURE)[0],
        filename=text(_FILENAME),
        timestamp=int.from_bytes(need(_TIMESTAMP)[0], "big"),
        signer_version=(sv[0][0], sv[0][1]) if sv else None,
        encryption=enc,
        unknown=tuple(st.unknown),
        header_length=header_length,
        layout=layout,
        tag_offsets=_tag_offsets(st),
    )
    # Perf only: a parsed layout names exactly the fields parsed (every kept tag is in it once, in
    # the order of ``unknown``), which is what _layout_matches would find when building.
    object.__setattr__(header, "_layout_ok", True)
    return header, st.sig_span


#: VERSION at 0 and HEADER_LENGTH at 5, the tags every header starts with (the walk does not see them)
_FIRST_TAG_OFFSETS = ((int(T.VERSION), 0), (int(T.HEADER_LENGTH), 5))
_BY_OFFSET = operator.itemgetter(1)


def _tag_offsets(st: _Walk) -> tuple[tuple[int, int], ...]:
    """(tag, offset of its tag byte) of every known tag walked, in file order (with VERSION at 0 and
    HEADER_LENGTH at 5, which the walk does not see). The walk's tags are plain ints (bytes of the file);
    one comprehension and a C sort key, no generator or lambda resumed per tag (issue #6: a parse of every
    header, ~35 calls less)."""
    leaves = [(tag, at - 3) for tag, (_, at) in st.values.items()]
    found = [*_FIRST_TAG_OFFSETS, *st.containers.items(), *leaves]
    found.sort(key=_BY_OFFSET)
    return tuple(found)


# --------------------------------------------------------------------------- building
def _present(h: SignedHeader) -> set[int]:
    tags: set[int] = {T.SIGNER_NAME, T.SERIAL_NUMBER, T.ISSUER_NAME, T.HASH_ALGORITHM, T.SIGNATURE_ALGORITHM,
            T.SIGNATURE_MODULUS, T.SIGNATURE, T.FILENAME, T.TIMESTAMP}
    if h.signer_version is not None:
        tags.add(T.SIGNER_VERSION)
    if h.encryption is not None:
        tags |= h.encryption.present_tags()
    return {int(t) for t in tags}


def _default_layout(h: SignedHeader) -> Layout:
    """Cisco order (spec §A.2) with encryption tags as certutils places them (spec §C.3)."""
    unk: dict[int, list[LayoutItem]] = {}
    for u in h.unknown:
        unk.setdefault(u.container, []).append(UNKNOWN_SLOT)

    def box(tag: int, children: Sequence[LayoutItem]) -> tuple[int, tuple[LayoutItem, ...]]:
        return (tag, (*children, *unk.get(tag, ())))

    items: list[LayoutItem] = []
    if h.signer_version is not None:
        items.append(T.SIGNER_VERSION)
    items.append(box(T.SIGNER_INFO, (T.SIGNER_NAME, T.SERIAL_NUMBER, T.ISSUER_NAME)))
    items.append(box(T.SIGNATURE_INFO, (T.HASH_ALGORITHM, box(
        T.SIGNATURE_ALGORITHM_INFO, (T.SIGNATURE_ALGORITHM, T.SIGNATURE_MODULUS)))))
    items += [T.SIGNATURE, T.FILENAME, T.TIMESTAMP]
    if h.encryption is not None:
        present = h.encryption.present_tags()
        iv = [t for t in (T.ENCRYPTION_MODE, T.ENCRYPTION_IV, T.ENCRYPTION_PADDING) if t in present]
        key = [t for t in (T.ENCRYPTION_KEY_UNKNOWN, T.ENCRYPTION_KEY_SIZE, T.ENCRYPTION_KEY_ALGORITHM,
                           T.ENCRYPTION_KEY) if t in present]
        inner: list[LayoutItem] = []
        if iv or T.ENCRYPTION_IV_INFO in unk:
            inner.append(box(T.ENCRYPTION_IV_INFO, iv))
        if key or T.ENCRYPTION_KEY_INFO in unk:
            inner.append(box(T.ENCRYPTION_KEY_INFO, key))
        if inner or T.ENCRYPTION_INFO in unk:
            items.append(box(T.ENCRYPTION_INFO, inner))
        items += [t for t in (T.ENCRYPTION_HASH_ALGORITHM, T.ENCRYPTION_HASH) if t in present]
    items += unk.get(0, [])
    return tuple(items)


def _layout_matches(h: SignedHeader, layout: Layout) -> bool:
    leaves: list[int] = []
    unknown_in: list[int] = []

    def scan(items: Layout, container: int) -> None:
        for it in items:
            if isinstance(it, tuple):
                scan(it[1], it[0])
            elif it == UNKNOWN_SLOT:
                unknown_in.append(container)
            elif it != T.PADDING:
                leaves.append(it)

    scan(layout, 0)
    present = _present(h)
    if len(leaves) != len(set(leaves)):
        return False
    # SIGNATURE_ALGORITHM may be absent from a parsed layout when its value is the default 0.
    extra = present - set(leaves)
    if extra - ({T.SIGNATURE_ALGORITHM} if h.signature_algorithm == 0 else set()):
        return False
    return set(leaves) <= present and unknown_in == [u.container for u in h.unknown]


def _leaf_values(h: SignedHeader) -> dict[int, bytes]:
    """The value bytes of every leaf tag ``h`` has, by tag number (one pass, for :func:`_emit`)."""
    signer = h.signer
    vals = {
        4: encode_cstring(signer.name, fmt="header", path="signer.name", tag=T.SIGNER_NAME),
        5: signer.serial,
        6: encode_cstring(signer.issuer, fmt="header", path="signer.issuer", tag=T.ISSUER_NAME),
        8: bytes((h.hash_alg,)),
        10: bytes((h.signature_algorithm,)),
        11: bytes((h.modulus_code,)),
        12: h.signature,
        14: encode_cstring(h.filename, fmt="header", path="filename", tag=T.FILENAME),
        15: h.timestamp.to_bytes(4, "big"),
    }
    if h.signer_version is not None:
        vals[28] = bytes(h.signer_version)
    enc = h.encryption
    if enc is not None:
        for tag, name in _ENC_FIELDS.items():
            v = getattr(enc, name)
            if v is None:
                continue
            if tag in _ENC_U8:
                vals[tag] = bytes((v,))
            elif tag in _ENC_U16:
                vals[tag] = int(v).to_bytes(2, "big")
            else:
                vals[tag] = bytes(v)
    return vals


_FIELDS: tuple[str, ...] = tuple(f"header.{_name(t)}" for t in range(256))


_TLV_LIMIT = "value of {} bytes exceeds the 65535-byte TLV limit"  # Writer.tlv's message


def _emit(buf: bytearray, vals: dict[int, bytes], items: Layout, unknown: Iterator[UnknownTag],
          sig_at: list[int]) -> None:
    """Append ``items`` to ``buf``: Writer.tlv / Writer.block16 inlined, same errors (speed)."""
    for it in items:
        if it.__class__ is tuple:
            tag, children = it
            if not 0 <= tag <= 255:
                raise EncodeError(f"value {tag} does not fit in 8 bits", fmt="header", path="u8")
            buf.append(tag)
            at = len(buf)
            buf += b"\0\0"
            _emit(buf, vals, children, unknown, sig_at)
            size = len(buf) - at - 2
            if size > 0xFFFF:
                raise EncodeError(f"block of {size} bytes exceeds 65535", fmt="header", path=_FIELDS[tag],
                                  tag=tag)
            buf[at:at + 2] = size.to_bytes(2, "big")
            continue
        if it == 13:  # PADDING
            buf.append(13)
            continue
        if it == -1:  # UNKNOWN_SLOT
            u = next(unknown)
            tag, value = u.tag, u.value
        else:
            tag = it  # type: ignore[assignment]
            if tag == 12:  # SIGNATURE
                sig_at.append(len(buf))
            value = vals[tag]
        n = len(value)
        if n > 0xFFFF:
            raise EncodeError(_TLV_LIMIT.format(n), fmt="header", path=_FIELDS[tag], tag=tag)
        buf.append(tag)
        buf += n.to_bytes(2, "big")
        buf += value


def _build(h: SignedHeader) -> tuple[bytes, tuple[int, int]]:
    layout = h.layout
    if layout is not None and not h.__dict__.get("_layout_ok") and not _layout_matches(h, layout):
        layout = None
    items = layout if layout is not None else _default_layout(h)
    # VERSION (two bytes, checked by SignedHeader) and HEADER_LENGTH, patched below.
    buf = bytearray(b"\x01\x00\x02" + bytes(h.version) + b"\x02\x00\x02\x00\x00")
    sig_at: list[int] = []
    _emit(buf, _leaf_values(h), items, iter(h.unknown), sig_at)
    if layout is None:
        buf += bytes([T.PADDING]) * (-len(buf) % 4)
    if len(buf) > 0xFFFF:
        raise EncodeError(f"header of {len(buf)} bytes exceeds 65535", fmt="header", path="header")
    buf[8:10] = len(buf).to_bytes(2, "big")
    return bytes(buf), (sig_at[0], 3 + len(h.signature))


def build_header(h: SignedHeader) -> bytes:
    """Serialise ``h`` (its own layout if it still fits, else Cisco order); HEADER_LENGTH recomputed.

    ``h`` is immutable, so its bytes are computed once and kept on the object.
    """
    built: bytes | None = h.__dict__.get("_built")
    if built is None:
        built, (sig_at, _) = _build(h)
        object.__setattr__(h, "_built_sig_at", sig_at)
        object.__setattr__(h, "_built", built)
    return built


# --------------------------------------------------------------------------- signing
_RSA_CODES = {512: 0, 1024: 1, 2048: 2, 4096: 3}
_EC_CODES = {256: 0x80, 384: 0x81, 521: 0x82}
_KNOWN_CODES = frozenset(_RSA_CODES.values()) | frozenset(_EC_CODES.values())
#: Verifying keys already seen → their modulus code (perf only: keys are immutable; the entry holds
#: the key object itself, so an id() reused by another key never matches).
_KEY_CODES: dict[int, tuple[PublicKey, int]] = {}


def modulus_code_for_key(key: PublicKey | PrivateKey) -> int:
    """Tag 11 code for a key (spec §A.5; EC codes are our convention, see module docstring)."""
    bits = key_size_bits(key)
    table = _EC_CODES if hasattr(key, "curve") else _RSA_CODES
    code = table.get(bits)
    if code is None:
        raise EncodeError(f"no signature-modulus code for a {bits}-bit key (spec §A.5)", fmt="header",
                          path="signer.key", tag=T.SIGNATURE_MODULUS)
    return code


@dataclass(frozen=True, kw_only=True)
class FileSigner:
    """A signing key and its certificate; ``info`` is what goes into tags 4, 5, 6."""

    key: PrivateKey
    cert: x509.Certificate

    def __post_init__(self) -> None:
        modulus_code_for_key(self.key)
        mine = public_key_spki_der(self.key.public_key())
        if mine != public_key_spki_der(certs.cert_public_key(self.cert)):
            raise EncodeError("the signing key does not belong to the certificate", fmt="header",
                              path="signer")

    @property
    def info(self) -> SignerInfo:
        return SignerInfo(name=certs.dn_text(self.cert.subject),
                          serial=certs.serial_bytes(self.cert.serial_number),
                          issuer=certs.dn_text(self.cert.issuer))

    @property
    def modulus_code(self) -> int:
        return modulus_code_for_key(self.key)


def parse_envelope(data: bytes, *, fmt: str, limit: int) -> tuple[bytes, ParsedHeader]:
    """The common first step of every signed-file parser (spec §A): refuse non-bytes and inputs over
    ``limit`` *before* parsing (SizeLimitError), then parse the header; a decoded value the header
    model refuses is malformed input (DecodeError), never an EncodeError. The limit counts bytes, a
    memoryview's too (:func:`phoneemu.wire.as_bytes`; was its items: a 2-D view passed as one)."""
    raw = as_bytes(data, fmt=fmt, limit=limit)
    try:
        return raw, parse_header(raw, fmt=fmt)
    except EncodeError as exc:
        raise DecodeError(exc.message, fmt=fmt, offset=exc.offset, path=exc.path, tag=exc.tag) from None


def sign_header(template: SignedHeader, body: bytes, signer: FileSigner, *,
                signer_info: SignerInfo | None = None) -> bytes:
    """Sign ``template`` + ``body`` with ``signer`` (spec §A.3) and return the whole file.

    Signer fields, modulus code and signature of the template are replaced; everything else,
    including a parsed layout, is kept (the fuzzer re-signs mutated files with this).
    ``signer_info`` overrides the tag 4/5/6 text (hand-assembled vectors with Cisco-style names).
    """
    from dataclasses import replace

    sig_len = (key_size_bits(signer.key) + 7) // 8
    h = replace(template, signer=signer_info or signer.info, modulus_code=signer.modulus_code)
    alg = hash_alg(h.hash_alg)
    # The header length depends on the signature length. RSA signatures have the modulus length; a
    # DER ECDSA signature varies by a byte or two. Build for a length, re-sign (ECDSA is randomised)
    # until a signature has it; after 8 misses switch to the last length seen. The common lengths
    # come up with probability >= 1/4 each, so 16 rounds of 8 cannot realistically all miss.
    want = len(signatures.sign(signer.key, b"", alg)) if hasattr(signer.key, "curve") else sig_len
    for _ in range(16):
        h = replace(h, signature=bytes(want))
        head, (s_off, s_len) = _build(h)
        msg = head[:s_off] + head[s_off + s_len:] + body
        for _ in range(8):
            sig = signatures.sign(signer.key, msg, alg)
            if len(sig) == want:
                return head[:s_off] + head[s_off:s_off + 3] + sig + head[s_off + s_len:] + body
        want = len(sig)
    raise EncodeError("no ECDSA signature of a stable length", fmt="header", path="signature")


def sign_file(
    *,
    version: tuple[int, int],
    filename: str,
    timestamp: int,
    body: bytes,
    signer: FileSigner,
    hash_alg: int = 1,
    signer_version: tuple[int, int] | None = None,
    encryption: EncryptionInfo | None = None,
    extra: Sequence[UnknownTag] = (),
) -> bytes:
    """Build header + body in Cisco order (spec §A.2), pad to a multiple of 4, sign (spec §A.3)."""
    template = SignedHeader(version=version, signer=signer.info, hash_alg=hash_alg,
                            modulus_code=signer.modulus_code, signature=b"", filename=filename,
                            timestamp=timestamp, signer_version=signer_version, encryption=encryption,
                            unknown=tuple(extra))
    return sign_header(template, bytes(body), signer)


def verify_signature(parsed: ParsedHeader, key: PublicKey, *, fmt: str, what: str | None = None) -> None:
    """Check hash code, modulus code and signature over ``parsed.signed_message``; raises, never a bool.

    A failure names the header tag at fault and, for a parsed header, its offset (design §3.7)."""
    h = parsed.header
    what = what or "signature"
    try:
        alg = hash_alg(h.hash_alg)
    except VerificationError as exc:
        raise VerificationError(f"{what}: {exc.message}", reason=VerifyReason.UNSUPPORTED_HASH,
                                fmt=fmt, offset=h.offset_of(T.HASH_ALGORITHM), path="header.hash_algorithm",
                                tag=T.HASH_ALGORITHM) from None
    seen = _KEY_CODES.get(id(key))
    if seen is not None and seen[0] is key:
        expected = seen[1]
    else:
        try:
            expected = modulus_code_for_key(key)
        except EncodeError:
            raise VerificationError(f"{what}: unsupported {key_size_bits(key)}-bit signer key",
                                    reason=VerifyReason.UNSUPPORTED_KEY, fmt=fmt, path="signer.key") from None
        if len(_KEY_CODES) >= 256:
            _KEY_CODES.clear()
        _KEY_CODES[id(key)] = (key, expected)
    if h.modulus_code not in _KNOWN_CODES:
        raise VerificationError(f"{what}: unknown signature-modulus code {h.modulus_code}",
                                reason=VerifyReason.UNSUPPORTED_KEY, fmt=fmt,
                                offset=h.offset_of(T.SIGNATURE_MODULUS), path="header.signature_modulus",
                                tag=T.SIGNATURE_MODULUS)
    if h.modulus_code != expected:
        raise VerificationError(
            f"{what}: modulus code {h.modulus_code} does not match the signer's "
            f"{key_size_bits(key)}-bit key (code {expected})",
            reason=VerifyReason.BAD_SIGNATURE, fmt=fmt, offset=h.offset_of(T.SIGNATURE_MODULUS),
            path="header.signature_modulus", tag=T.SIGNATURE_MODULUS)
    try:
        signatures.verify(key, h.signature, parsed.signed_message, alg, what=what)
    except VerificationError as exc:
        raise VerificationError(exc.message, reason=exc.reason, fmt=fmt, offset=h.offset_of(T.SIGNATURE),
                                path="header.signature", tag=T.SIGNATURE) from None

