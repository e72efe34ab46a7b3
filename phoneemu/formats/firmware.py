"""Signed firmware loads — OUR convention (spec §D: the real ``.loads``/``.sbn`` layout is [UNK]).

What is public (spec §D): signed packages carry the same TLV signed header as ``.sgn`` files and a
tampered image fails authentication; the load is named by ``<loadInformation>`` and fetched as
``<load>.loads``. Everything below the header is our own design:

* File = the shared signed header (spec §A; we build version 1.0, hash code 3 = SHA-512 by
  default, FILENAME = ``<load>.loads`` unless given) followed by the payload. No encryption tags.
* Payload = manifest + image::

      magic            8 bytes  b"PHEMUFW1"
      load_name_len    uint16   length of load_name including its NUL
      load_name        load_name_len bytes, NUL-terminated ASCII [A-Za-z0-9._-], 1..128 characters
      image_len        uint32   length of the image
      image            image_len bytes; nothing may follow

  parsed strictly with :class:`phoneemu.wire.Reader` (length-scoped, leftover bytes rejected).
* Signer: an *image-signing* key, a role distinct from TFTP. Phone profiles hold the image-signing
  certificate(s) they trust (lab: ``DIR/certs/imagesigning.pem``). :func:`verify` finds the
  trusted certificate whose serial (and, when it matches, issuer — in any RDN order, spec §A.7) equals
  the header's signer (spec §B.4 style) — none is VerificationError UNKNOWN_SIGNER — then checks the
  signature over the file minus the signature TLV (spec §A.3): BAD_SIGNATURE / UNSUPPORTED_HASH /
  UNSUPPORTED_KEY.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509

from phoneemu.crypto import certs
from phoneemu.errors import DecodeError, EncodeError, VerificationError, VerifyReason
from phoneemu.formats.header import (
    FileSigner,
    ParsedHeader,
    SignedHeader,
    SignerInfo,
    parse_envelope,
    sign_file,
    verify_signature,
)
from phoneemu.wire import Reader, Writer, as_bytes

__all__ = [
    "DEFAULT_LIMIT",
    "FIRMWARE_VERSION",
    "FMT",
    "MAGIC",
    "FirmwareImage",
    "build",
    "build_payload",
    "find_signer",
    "loads_file_name",
    "parse",
    "parse_payload",
    "verify",
]

FMT = "firmware"
MAGIC = b"PHEMUFW1"
FIRMWARE_VERSION = (1, 0)
#: Our ceiling for a firmware load held in memory (lab images are small).
DEFAULT_LIMIT = 16 << 20
_LOAD_RE = re.compile(r"[A-Za-z0-9._\-]{1,128}")


@dataclass(frozen=True, kw_only=True)
class FirmwareImage:
    """A parsed signed firmware load: header, load name and image bytes, plus the exact input."""

    header: SignedHeader
    load_name: str
    payload: bytes
    raw: bytes
    signed_message: bytes
    signature_span: tuple[int, int] = (0, 0)

    @property
    def parsed_header(self) -> ParsedHeader:
        return ParsedHeader(header=self.header, body_offset=self.header.header_length,
                            signature_span=self.signature_span, signed_message=self.signed_message)


def _check_load_name(name: object, error: type[DecodeError] | type[EncodeError], offset: int | None = None) \
        -> str:
    if not isinstance(name, str) or not _LOAD_RE.fullmatch(name) or name in (".", ".."):
        shown = repr(name[:60]) if isinstance(name, str) else type(name).__name__
        msg = f"load name {shown} is not 1..128 characters of [A-Za-z0-9._-]"
        if error is DecodeError:
            raise DecodeError(msg, fmt=FMT, path="payload.load_name", offset=offset)
        raise EncodeError(msg, fmt=FMT, path="load_name")
    return name


def loads_file_name(load_name: str) -> str:
    """``<load>.loads``, the file a phone requests for ``<loadInformation>`` (spec §D)."""
    return _check_load_name(load_name, EncodeError) + ".loads"


# --------------------------------------------------------------------------- payload
def build_payload(load_name: str, image: bytes) -> bytes:
    """Manifest + image (layout in the module docstring)."""
    name = _check_load_name(load_name, EncodeError).encode("ascii") + b"\0"
    w = Writer(fmt=FMT)
    w.raw(MAGIC)
    w.u16(len(name), "payload.load_name_len")
    w.raw(name)
    w.u32(len(image), "payload.image_len")
    w.raw(bytes(image))
    return w.getvalue()


def parse_payload(data: bytes, start: int = 0) -> tuple[str, bytes]:
    """(load name, image) from ``data[start:]``; strict: bad magic, lengths or leftovers are errors."""
    r = Reader(as_bytes(data, fmt=FMT), fmt=FMT, start=start, path="payload")
    at = r.offset
    if r.take(len(MAGIC), "magic") != MAGIC:
        raise r.error(f"magic is not {MAGIC!r} (not a phoneemu firmware payload)", field="magic", offset=at)
    n = r.u16("load_name_len")
    at = r.offset
    block = r.sub(n, "load_name")
    raw = block.take(n, "load_name")
    if not raw or raw[-1] != 0:
        raise r.error("load name is not NUL-terminated", field="load_name", offset=at)
    try:
        name = raw[:-1].decode("ascii")
    except UnicodeDecodeError:
        raise r.error("load name is not ASCII", field="load_name", offset=at) from None
    _check_load_name(name, DecodeError, offset=at)
    size = r.u32("image_len")
    image = r.take(size, "image")
    r.expect_end("image")
    return name, image


# --------------------------------------------------------------------------- file
def parse(data: bytes, *, limit: int = DEFAULT_LIMIT) -> FirmwareImage:
    """Parse a signed firmware load; SizeLimitError above ``limit``, DecodeError when malformed."""
    raw, ph = parse_envelope(data, fmt=FMT, limit=limit)
    if ph.header.encryption is not None:
        raise DecodeError("a firmware load must not carry encryption tags (16-27)", fmt=FMT,
                          offset=ph.body_offset, path="header.encryption_info", tag=16)
    name, image = parse_payload(raw, ph.body_offset)
    return FirmwareImage(header=ph.header, load_name=name, payload=image, raw=raw,
                         signed_message=ph.signed_message, signature_span=ph.signature_span)


def build(
    *,
    load_name: str,
    payload: bytes,
    signer: FileSigner,
    timestamp: int,
    hash_alg: int = 3,
    filename: str | None = None,
    version: tuple[int, int] = FIRMWARE_VERSION,
) -> bytes:
    """Sign ``payload`` (the image bytes) as load ``load_name`` with the image-signing key."""
    body = build_payload(load_name, payload)
    return sign_file(version=version, filename=filename or loads_file_name(load_name),
                     timestamp=timestamp, body=body, signer=signer, hash_alg=hash_alg)


# --------------------------------------------------------------------------- verification
def find_signer(info: SignerInfo, trusted: Iterable[x509.Certificate]) -> x509.Certificate:
    """The trusted certificate named by the header's signer: serial and issuer, else serial only. The
    issuer is compared as the phone compares it (``certs.dn_key``: in any RDN order, spec §A.7, §B.4), so a
    header written in certutils' order names the certificate the phone verifies with (was: in order only,
    so a same-serial certificate of another issuer listed first was taken, a bad signature)."""
    want_issuer = certs.dn_key(info.issuer)
    serial_only: x509.Certificate | None = None
    for cert in trusted:
        if certs.serial_bytes(cert.serial_number) != info.serial:
            continue
        if certs.dn_key(certs.dn_text(cert.issuer)) == want_issuer:
            return cert
        if serial_only is None:
            serial_only = cert
    if serial_only is not None:
        return serial_only
    raise VerificationError(
        f"signer {info.name!r} (issuer {info.issuer!r}, serial {info.serial.hex(':').upper()}) is not a "
        "trusted image-signing certificate", reason=VerifyReason.UNKNOWN_SIGNER, fmt=FMT,
        path="header.signer")


def verify(img: FirmwareImage, trusted_certs: x509.Certificate | Iterable[x509.Certificate]) \
        -> x509.Certificate:
    """Verify ``img`` against the image-signing certificates a phone trusts; returns the signer's cert.

    Raises VerificationError: UNKNOWN_SIGNER, BAD_SIGNATURE, UNSUPPORTED_HASH or UNSUPPORTED_KEY.
    """
    pool = [trusted_certs] if isinstance(trusted_certs, x509.Certificate) else list(trusted_certs)
    cert = find_signer(img.header.signer, pool)
    try:
        key = certs.cert_public_key(cert)
    except DecodeError as exc:
        raise VerificationError(exc.message, reason=VerifyReason.UNSUPPORTED_KEY, fmt=FMT,
                                path="signer.key") from None
    verify_signature(img.parsed_header, key, fmt=FMT, what=f"firmware load {img.load_name}")
    return cert
