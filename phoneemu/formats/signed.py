"""Signed files (``.sgn``, spec §C.1): signed header (spec §A) followed by the original bytes.

Rules implemented here:

* The body after HEADER_LENGTH is the original file, unchanged; removing the signature is
  dropping the first HEADER_LENGTH bytes (spec §C.1, stripsgn).
* Built with HEADER_VERSION 1.0 by default and no tag 28 (spec §A.6, certutils' current value;
  the real CUCM value is [UNK]). FILENAME is the base name plus ``.sgn`` or a relative path.
* Verification checks the exact signed bytes (file minus the signature TLV, spec §A.3) against a
  key or certificate the caller trusts (a TFTP / CCM+TFTP record, spec §C.1, §G.4).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from phoneemu.crypto import certs
from phoneemu.crypto.keys import PublicKey
from phoneemu.errors import EncodeError
from phoneemu.formats.header import (
    FileSigner,
    ParsedHeader,
    SignedHeader,
    build_header,
    parse_envelope,
    sign_file,
    verify_signature,
)

__all__ = ["DEFAULT_LIMIT", "FMT", "SignedFile", "build", "parse", "serialise", "strip", "verify"]

FMT = "sgn"
#: Our default ceiling for a signed file held in memory (configs, ring tones, backgrounds).
DEFAULT_LIMIT = 16 * 1024 * 1024


@dataclass(frozen=True, kw_only=True)
class SignedFile:
    """A parsed ``.sgn``; ``raw`` is the input and ``signed_message`` the bytes the signature covers."""

    header: SignedHeader
    body: bytes
    raw: bytes
    signed_message: bytes
    body_offset: int
    signature_span: tuple[int, int]

    @property
    def parsed_header(self) -> ParsedHeader:
        return ParsedHeader(header=self.header, body_offset=self.body_offset,
                            signature_span=self.signature_span, signed_message=self.signed_message)


def parse(data: bytes, *, limit: int = DEFAULT_LIMIT) -> SignedFile:
    """Parse a ``.sgn``; SizeLimitError above ``limit`` (before parsing), DecodeError on bad bytes."""
    data, ph = parse_envelope(data, fmt=FMT, limit=limit)
    return SignedFile(header=ph.header, body=data[ph.body_offset:], raw=data,
                      signed_message=ph.signed_message, body_offset=ph.body_offset,
                      signature_span=ph.signature_span)


def strip(data: bytes) -> bytes:
    """The original file inside a ``.sgn`` (drop HEADER_LENGTH bytes), without verifying."""
    return parse(data).body


def serialise(sf: SignedFile) -> bytes:
    """Re-serialise without re-signing (``serialise(parse(b)) == b``)."""
    return build_header(sf.header) + sf.body


def build(*, body: bytes, filename: str, signer: FileSigner, timestamp: int, hash_alg: int = 1,
          version: tuple[int, int] = (1, 0)) -> bytes:
    """Sign ``body`` as ``filename`` (spec §C.1, §A.3)."""
    if not filename:
        raise EncodeError("filename must not be empty", fmt=FMT, path="filename")
    return sign_file(version=version, filename=filename, timestamp=timestamp, body=bytes(body),
                     signer=signer, hash_alg=hash_alg)


def verify(sf: SignedFile, cert_or_key: x509.Certificate | PublicKey) -> None:
    """Raise VerificationError unless ``sf`` is signed by ``cert_or_key`` (never returns a bool)."""
    key = certs.cert_public_key(cert_or_key) if isinstance(cert_or_key, x509.Certificate) else cert_or_key
    verify_signature(sf.parsed_header, key, fmt=FMT, what="signed file")
