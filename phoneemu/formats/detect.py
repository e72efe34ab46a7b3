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

Bytes that are one DER SEQUENCE (a certificate, CSR or key, 0x30 first: none of the above) are ``der``;
:func:`der_label` tells which (``CERTIFICATE``, ``PRIVATE KEY``...), :func:`what_it_is` says either in a
message's words (``a DER file (CERTIFICATE)``). Was: "not a signed header ... and not XML" of them, from
every caller but ``inspect`` (which sniffed them itself).

The name hint is text or a path (``os.PathLike``, its ``os.fspath``); any other name (bytes, a number, a
path of bytes) is a DecodeError naming the argument ``name`` (was: TypeError or AttributeError out).
"""

from __future__ import annotations

import os
from typing import Literal

from phoneemu.errors import DecodeError
from phoneemu.formats.header import parse_header
from phoneemu.wire import as_bytes

__all__ = ["KIND_TEXT", "Kind", "der_label", "detect", "what_it_is"]

Kind = Literal["itl", "ctl", "sgn", "enc", "firmware", "xml", "der"]

#: how a message names a file of each kind (a DER file also by its type: :func:`what_it_is`)
KIND_TEXT: dict[str, str] = {
    "itl": "an ITL", "ctl": "a CTL", "sgn": "a signed file (.sgn)", "enc": "an encrypted file (.enc.sgn)",
    "firmware": "a firmware image", "xml": "a config XML", "der": "a DER file"}

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
    """``itl`` / ``ctl`` / ``sgn`` / ``enc`` / ``firmware`` / ``xml`` / ``der``; DecodeError when none fits
    (a damaged DER: :func:`der_label`'s, naming the element and offset), for input that is not bytes-like
    (:func:`phoneemu.wire.as_bytes`) or a ``name`` that is neither text nor a path (module rules)."""
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
    if der_label(data, hint) is not None:
        return "der"
    suggests = f" (name suggests {_by_name(hint)})" if hint and _by_name(hint) else ""
    if not data:  # a download that got nothing, a file truncated to nothing: say so, not "not XML"
        raise DecodeError(f"empty (0 bytes): no signed header, no XML{suggests}", fmt="detect", offset=0)
    raise DecodeError(f"not a signed header (no VERSION TLV 01 00 02) and not XML{suggests}", fmt="detect",
                      offset=0)


def what_it_is(data: bytes, name: str | os.PathLike[str] | None = None) -> str:
    """The file in a message's words: :data:`KIND_TEXT` of its :func:`detect` kind, a DER file with its type
    (``a DER file (CERTIFICATE)``, :func:`der_label`); :func:`detect`'s DecodeError when none fits."""
    kind = detect(data, name)
    if kind == "der":
        return f"{KIND_TEXT[kind]} ({der_label(data, name)})"
    return KIND_TEXT[kind]


# --------------------------------------------------------------------------- DER (certificates, keys)
#: DER tags (X.690 §8.1.2) the shapes below are made of
_SEQUENCE, _INTEGER, _BIT_STRING, _OCTET_STRING, _OID, _CONTEXT_0, _CONTEXT_1 = (
    0x30, 0x02, 0x03, 0x04, 0x06, 0xA0, 0xA1)
#: a time: UTCTime, GeneralizedTime (a CRL's thisUpdate; a certificate's validity is a SEQUENCE of two)
_TIMES = (0x17, 0x18)
#: OIDs (content bytes) that name a PKCS #7 SignedData (RFC 2315 §14) and a PKCS #12 AuthenticatedSafe
_PKCS7_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")
_PKCS7_DATA = bytes.fromhex("2a864886f70d010701")
#: names a DER certificate or key is saved under: a damaged DER is said to be one even if short
_DER_SUFFIXES = (".der", ".cer", ".crt", ".key", ".csr", ".p8", ".pk8", ".p12", ".pfx", ".p7b", ".p7c")
#: elements of one SEQUENCE read to tell the shapes apart (an RSA PKCS #1 key has 9)
_DER_ITEMS_READ = 12

_Element = tuple[int, int, int]  # tag, start of its content, end of its content


def _der_element(data: bytes, pos: int, end: int, field: str, within: str) -> _Element:
    """The DER element at ``pos``, which must end by ``end`` (where ``within``, the file or the enclosing
    element, ends): DecodeError naming ``field`` and the offset where it goes wrong (X.690 §8.1: one tag
    byte, a definite length of at most 4 bytes)."""
    if end - pos < 2:
        raise DecodeError("truncated: no tag and length", fmt="der", path=field, offset=pos)
    tag, first = data[pos], data[pos + 1]
    if tag & 0x1F == 0x1F:
        raise DecodeError(f"multi-byte tag 0x{tag:02X}: not a certificate or key", fmt="der", path=field,
                          offset=pos)
    if first == 0x80 or first > 0x84:
        what = "indefinite length (BER, not DER)" if first == 0x80 else f"length byte 0x{first:02X}"
        raise DecodeError(f"{what}: not a DER length", fmt="der", path=field, offset=pos + 1)
    head, length = 2, first
    if first > 0x80:
        head += first & 0x7F
        if pos + head > end:
            raise DecodeError("truncated: its length is cut short", fmt="der", path=field, offset=end)
        length = int.from_bytes(data[pos + 2:pos + head], "big")
    if pos + head + length > end:
        raise DecodeError(f"truncated: it declares {head + length} bytes from offset {pos}, {within} ends "
                          f"after {end - pos}", fmt="der", path=field, offset=end)
    return tag, pos + head, pos + head + length


def _der_items(data: bytes, element: _Element, field: str) -> list[_Element]:
    """The first :data:`_DER_ITEMS_READ` elements inside the constructed ``element`` (its ``field``)."""
    _tag, pos, end = element
    items: list[_Element] = []
    while pos < end and len(items) < _DER_ITEMS_READ:
        items.append(_der_element(data, pos, end, f"{field}[{len(items)}]", field))
        pos = items[-1][2]
    return items


def _signed_shape(data: bytes, info: _Element) -> str | None:
    """``CERTIFICATE``, ``CERTIFICATE REQUEST`` or ``X509 CRL`` by the content of the signed part (RFC 5280
    §4.1: an optional [0] version, serial, algorithm, issuer, validity, subject, key — five SEQUENCEs after
    the serial; RFC 2986 §4: version, subject, key, [0] attributes; RFC 5280 §5.1: an optional version,
    algorithm, issuer, a time); None for another signed structure. Was: a CRL (version, then SEQUENCEs)
    taken for a certificate, and said as one that does not load."""
    tags = [t for t, _s, _e in _der_items(data, info, "SEQUENCE[0]")]
    fields = tags[1:] if tags[:1] == [_CONTEXT_0] else tags
    if fields[:6] == [_INTEGER] + [_SEQUENCE] * 5:
        return "CERTIFICATE"
    if tags == [_INTEGER, _SEQUENCE, _SEQUENCE, _CONTEXT_0]:
        return "CERTIFICATE REQUEST"
    listed = tags[1:] if tags[:1] == [_INTEGER] else tags
    if listed[:2] == [_SEQUENCE, _SEQUENCE] and listed[2:3] and listed[2] in _TIMES:
        return "X509 CRL"
    return None


def _der_shape(data: bytes, items: list[_Element]) -> str:
    """The PEM label (RFC 7468) of a DER SEQUENCE of ``items``; ``ASN.1`` when no shape fits."""
    tags = [t for t, _s, _e in items]
    content = [data[s:e] for _t, s, e in items]
    shape: str | None = None
    if tags == [_SEQUENCE, _SEQUENCE, _BIT_STRING]:
        shape = _signed_shape(data, items[0])
    elif tags == [_SEQUENCE, _BIT_STRING]:
        shape = "PUBLIC KEY"  # SubjectPublicKeyInfo, RFC 5280 §4.1.2.7
    elif tags == [_SEQUENCE, _OCTET_STRING]:
        shape = "ENCRYPTED PRIVATE KEY"  # RFC 5958 §3
    elif tags[:3] == [_INTEGER, _SEQUENCE, _OCTET_STRING]:
        shape = "PRIVATE KEY"  # PKCS #8 PrivateKeyInfo, RFC 5958 §2
    elif tags[:2] == [_INTEGER, _OCTET_STRING] and set(tags[2:]) <= {_CONTEXT_0, _CONTEXT_1}:
        shape = "EC PRIVATE KEY"  # SEC 1 ECPrivateKey, RFC 5915 §3
    elif len(tags) >= 9 and set(tags) == {_INTEGER}:
        shape = "RSA PRIVATE KEY"  # PKCS #1 RSAPrivateKey, RFC 8017 §A.1.2
    elif tags[:2] == [_OID, _CONTEXT_0] and content[0] == _PKCS7_SIGNED_DATA:
        shape = "PKCS7"
    elif (tags[:2] == [_INTEGER, _SEQUENCE] and content[0] == b"\x03"
          and data[items[1][1]:items[1][1] + 11] == bytes([_OID, 9]) + _PKCS7_DATA):
        shape = "PKCS12"  # PFX version 3, RFC 7292 §4
    return shape or "ASN.1"


def der_label(data: bytes, name: str | os.PathLike[str] | None = None) -> str | None:
    """The PEM label (RFC 7468: ``CERTIFICATE``, ``CERTIFICATE REQUEST``, ``X509 CRL``, ``PRIVATE KEY``,
    ``RSA PRIVATE KEY``, ``EC PRIVATE KEY``, ``ENCRYPTED PRIVATE KEY``, ``PUBLIC KEY``, ``PKCS7``, ``PKCS12``;
    ``ASN.1`` for another structure) of ``data`` when it is one DER SEQUENCE (X.690 §10) filling it exactly,
    by the shape of its outer elements only (nothing is decoded, a private key's values never read); None
    when it is not DER. None of our formats starts with 0x30 (a signed header starts 01 00 02, a config
    ``<``). A damaged DER — a SEQUENCE with a long-form length (30 81..84, what a certificate or RSA key
    starts with), or a name a certificate or key is saved under (``.der``, ``.cer``, ``.key``...) — is a
    DecodeError naming the element (``SEQUENCE[0][2]``) and the offset where it goes wrong (ours)."""
    hint = _name_text(name)
    data = as_bytes(data, fmt="der")
    if data[:1] != bytes([_SEQUENCE]):
        return None
    try:
        outer = _der_element(data, 0, len(data), "SEQUENCE", "the file")
        if outer[2] < len(data):
            raise DecodeError(f"{len(data) - outer[2]} bytes after the end of the SEQUENCE", fmt="der",
                              path="SEQUENCE", offset=outer[2])
        return _der_shape(data, _der_items(data, outer, "SEQUENCE"))
    except DecodeError:
        said_der = 0x81 <= data[1:2][0] <= 0x84 if len(data) > 1 else False
        if said_der or (hint is not None and hint.lower().endswith(_DER_SUFFIXES)):
            raise
        return None
