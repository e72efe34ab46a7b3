"""Encrypted configuration files ``.enc.sgn``: PKI method (spec §C.3) and our symmetric method (§C.5).

Envelope (both methods): the shared signed header (spec §A, version 2.0 when we build) whose
encryption tags 16-27 describe the cipher, followed by the AES-CBC ciphertext as the body. The
signature covers the whole file minus the signature TLV (spec §A.3); :func:`verify` checks it
and is separate from decryption, as on the phones (spec §G.12 step 3).

PKI method (spec §C.3, certutils layout):

1. ``H = hash(plaintext)`` with the code in tag 26 (A.4: 1 SHA-1, 2 SHA-256, 3 SHA-512) → tag 27.
2. A random 16-byte AES key K and IV (tag 19), both from the caller's ``rand(n)``.
3. Padding: ``p = 16 - len % 16`` bytes (1..16, never 0) of 0x0D appended; ``p`` → tag 20.
   This is *not* PKCS#7.
4. ``AES-128-CBC(K, IV, padded)`` is the body.
5. K wrapped with the recipient certificate's RSA key, PKCS#1 v1.5 → tag 25; tag 23 = 8 x the
   wrapped key's length (the RSA modulus size, not the AES size); tag 24 = 1; tags 18 and 22 = 0.
   EC recipient keys: the wrap is [UNK] → DecryptionError(UNSUPPORTED_KEY).
6. Decryption unwraps K, decrypts, checks that the last ``p`` bytes are all 0x0D, drops them and
   compares the plaintext hash with tag 27; any failure is a DecryptionError saying which.

Symmetric ("manual key") method — OUR convention; the byte layout is [UNK] publicly (spec §C.5):

* Same signed envelope and header version 2.0, same 0x0D padding, same tags 19, 20, 26, 27.
* Tag 18 (mode) = 1 marks the manual key (the PKI method writes 0); tag 22 = 0.
* Tag 25 (wrapped key) is absent: the key is the one configured in the cluster and typed into
  the phone as hex, and it is used directly as the AES key.
* Tag 23 = the configured key's size in bits (128 or 256); tag 24 = 1 (AES):
  AES-128-CBC for a 128-bit key, AES-256-CBC for a 256-bit key. (The RC4 variant of older
  models is not modelled.)
* :func:`parse_hex_key` reads the key as typed: 32 or 64 hex digits; 32 zero digits clear the
  key (spec §C.5) and so, by our convention, do 64 zero digits. What is wrong with one mistyped is
  :func:`hex_key_problem`'s to say (a character that is not a hex digit and where, an odd number of
  digits, another count than the one taken).

Performance only: a successful RSA unwrap is remembered for the same private-key object and
wrapped bytes (``_tlv.Memo``, failures never), the rest of decryption runs every time.

Parsing (:func:`parse`) requires tags 18, 19, 20, 23, 24, 26, 27, plus tag 25 when tag 18 is 0
and no tag 25 when tag 18 is 1; the IV must be 16 bytes, the pad count 1..16 and the body a
non-empty multiple of 16 bytes. Anything else is a DecodeError naming the tag. Other tag-18
values parse but never decrypt. Decryption also refuses (DecryptionError) a tag 24 other than 1,
an unknown tag-26 hash code, a tag 23 that disagrees with the wrapped key (PKI) or with the
configured key (symmetric), and an unwrapped key that is not 16 bytes.

Every such error says where (design §3.7): a header value's fault names its tag at the offset of
that tag's TLV (an unwrap failure: tag 25, the wrapped key; a plaintext hash mismatch: tag 27), a
body's fault the body offset (bad pad bytes: where they start). A missing tag is named at the end
of the header, where it would have to be.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509

from phoneemu.crypto import certs, cipher
from phoneemu.crypto.hashes import HashAlg, digest, hash_alg
from phoneemu.crypto.keys import PrivateKey, PublicKey
from phoneemu.errors import (
    DecodeError,
    DecryptionError,
    EncodeError,
    VerificationError,
    VerifyReason,
)
from phoneemu.formats._tlv import Memo
from phoneemu.formats.header import (
    EncryptionInfo,
    FileSigner,
    HeaderTag,
    ParsedHeader,
    SignedHeader,
    parse_envelope,
    sign_file,
    verify_signature,
)

__all__ = [
    "AES_KEY_ALGORITHM",
    "DEFAULT_LIMIT",
    "ENC_VERSION",
    "FMT",
    "MODE_PKI",
    "MODE_SYMMETRIC",
    "PAD_BYTE",
    "EncryptedFile",
    "build_pki",
    "build_symmetric",
    "decrypt_pki",
    "decrypt_symmetric",
    "hex_key_problem",
    "pad",
    "parse",
    "parse_hex_key",
    "unpad",
    "verify",
]

FMT = "enc.sgn"
ENC_VERSION = (2, 0)
#: Our ceiling for an ``.enc.sgn`` held in memory (a device config plus header).
DEFAULT_LIMIT = 1 << 20
MODE_PKI = 0
MODE_SYMMETRIC = 1
AES_KEY_ALGORITHM = 1
PAD_BYTE = 0x0D
_BLOCK = 16
T = HeaderTag


@dataclass(frozen=True, kw_only=True)
class EncryptedFile:
    """A parsed ``.enc.sgn``: header (with ``encryption``), ciphertext body, exact input bytes.

    ``signed_message`` is the input minus the signature TLV (spec §A.3) and ``signature_span``
    (offset, length) is where that TLV was.
    """

    header: SignedHeader
    ciphertext: bytes
    raw: bytes
    signed_message: bytes
    signature_span: tuple[int, int] = (0, 0)

    @property
    def encryption(self) -> EncryptionInfo:
        enc = self.header.encryption
        assert enc is not None  # parse() guarantees it
        return enc

    @property
    def method(self) -> str:
        """``"pki"`` (tag 18 = 0) or ``"symmetric"`` (tag 18 = 1, our convention)."""
        return "symmetric" if self.encryption.mode == MODE_SYMMETRIC else "pki"

    @property
    def parsed_header(self) -> ParsedHeader:
        return ParsedHeader(header=self.header, body_offset=self.header.header_length,
                            signature_span=self.signature_span, signed_message=self.signed_message)


# --------------------------------------------------------------------------- padding (§C.3 step 3)
def pad(plaintext: bytes) -> tuple[bytes, int]:
    """Append ``p = 16 - len % 16`` bytes of 0x0D (1..16, never 0); return (padded, p)."""
    p = _BLOCK - len(plaintext) % _BLOCK
    return bytes(plaintext) + bytes([PAD_BYTE]) * p, p


def unpad(padded: bytes, p: int) -> bytes:
    """Drop the ``p`` pad bytes after checking that they are all 0x0D (DecryptionError otherwise)."""
    return _unpad(padded, p, count_at=None, body_at=None)


def _unpad(padded: bytes, p: int, *, count_at: int | None, body_at: int | None) -> bytes:
    """:func:`unpad` whose errors say where (design §3.7): a bad count at tag 20 (``count_at``), bad
    pad bytes where they start in the file (``body_at`` is the offset of the first body byte)."""
    if not 1 <= p <= _BLOCK or p > len(padded):
        raise DecryptionError(f"pad count {p} is outside 1..16 or longer than the data", fmt=FMT,
                              offset=count_at, path="header.encryption_padding", tag=T.ENCRYPTION_PADDING)
    if padded[-p:] != bytes([PAD_BYTE]) * p:
        raise DecryptionError(f"the last {p} byte(s) are not 0x0D padding (wrong key or corrupt file)",
                              fmt=FMT, offset=None if body_at is None else body_at + len(padded) - p,
                              path="body")
    return padded[:-p]


# --------------------------------------------------------------------------- parsing
_REQUIRED = (T.ENCRYPTION_MODE, T.ENCRYPTION_IV, T.ENCRYPTION_PADDING, T.ENCRYPTION_KEY_SIZE,
             T.ENCRYPTION_KEY_ALGORITHM, T.ENCRYPTION_HASH_ALGORITHM, T.ENCRYPTION_HASH)
_FIELD = {T.ENCRYPTION_MODE: "mode", T.ENCRYPTION_IV: "iv", T.ENCRYPTION_PADDING: "padding",
          T.ENCRYPTION_KEY_SIZE: "key_size", T.ENCRYPTION_KEY_ALGORITHM: "key_algorithm",
          T.ENCRYPTION_KEY: "wrapped_key", T.ENCRYPTION_HASH_ALGORITHM: "hash_alg",
          T.ENCRYPTION_HASH: "plaintext_hash"}


def _tag_at(h: SignedHeader, tag: HeaderTag, default: int) -> int:
    """Where ``tag`` sits in the parsed file (its tag byte), else ``default`` (design §3.7)."""
    at = h.offset_of(tag)
    return default if at is None else at


def _missing(tag: HeaderTag, offset: int) -> DecodeError:
    return DecodeError(f"required encryption tag {int(tag)} ({tag.name.lower()}) is missing", fmt=FMT,
                       offset=offset, path=f"header.{tag.name.lower()}", tag=tag)


def parse(data: bytes, *, limit: int = DEFAULT_LIMIT) -> EncryptedFile:
    """Parse an ``.enc.sgn`` (spec §C.3); SizeLimitError above ``limit``, DecodeError when malformed.

    An error about a header value names its tag and where that tag sits; a missing tag is named at
    the end of the header, a bad body at its first byte."""
    raw, ph = parse_envelope(data, fmt=FMT, limit=limit)
    h = ph.header
    end = ph.body_offset
    enc = h.encryption
    if enc is None:
        raise _missing(T.ENCRYPTION_INFO, end)
    for tag in _REQUIRED:
        if getattr(enc, _FIELD[tag]) is None:
            raise _missing(tag, end)
    if enc.mode == MODE_PKI and enc.wrapped_key is None:
        raise _missing(T.ENCRYPTION_KEY, end)
    if enc.mode == MODE_SYMMETRIC and enc.wrapped_key is not None:
        raise DecodeError("a manual-key file (tag 18 = 1) must not carry a wrapped key (tag 25)",
                          fmt=FMT, offset=_tag_at(h, T.ENCRYPTION_KEY, end), path="header.encryption_key",
                          tag=T.ENCRYPTION_KEY)
    assert enc.iv is not None and enc.padding is not None
    if len(enc.iv) != _BLOCK:
        raise DecodeError(f"IV is {len(enc.iv)} bytes, expected 16", fmt=FMT,
                          offset=_tag_at(h, T.ENCRYPTION_IV, end), path="header.encryption_iv",
                          tag=T.ENCRYPTION_IV)
    if not 1 <= enc.padding <= _BLOCK:
        raise DecodeError(f"pad count {enc.padding} is outside 1..16", fmt=FMT,
                          offset=_tag_at(h, T.ENCRYPTION_PADDING, end), path="header.encryption_padding",
                          tag=T.ENCRYPTION_PADDING)
    ciphertext = raw[end:]
    if not ciphertext or len(ciphertext) % _BLOCK:
        raise DecodeError(f"ciphertext of {len(ciphertext)} bytes is not a non-empty multiple of 16",
                          fmt=FMT, offset=end, path="body")
    return EncryptedFile(header=h, ciphertext=ciphertext, raw=raw, signed_message=ph.signed_message,
                         signature_span=ph.signature_span)


# --------------------------------------------------------------------------- building
def _hash_code(code: int) -> HashAlg:
    try:
        return hash_alg(code)
    except VerificationError as exc:
        raise EncodeError(exc.message, fmt=FMT, path="hash_alg") from None


def _random(rand: Callable[[int], bytes], n: int, what: str) -> bytes:
    out = rand(n)
    if not isinstance(out, bytes) or len(out) != n:
        raise EncodeError(f"rand({n}) must return {n} bytes for the {what}", fmt=FMT, path="rand")
    return out


def _encrypt(plaintext: bytes, key: bytes, iv: bytes) -> tuple[bytes, int]:
    padded, p = pad(plaintext)
    return cipher.aes_cbc_encrypt(key, iv, padded), p


def build_pki(
    *,
    plaintext: bytes,
    filename: str,
    signer: FileSigner,
    recipient_cert: x509.Certificate,
    timestamp: int,
    hash_alg: int = 1,
    rand: Callable[[int], bytes],
    version: tuple[int, int] = ENC_VERSION,
) -> bytes:
    """Encrypt ``plaintext`` for ``recipient_cert`` (its LSC or MIC) and sign (spec §C.3).

    An EC recipient certificate raises DecryptionError(UNSUPPORTED_KEY): the EC wrap is [UNK].
    """
    alg = _hash_code(hash_alg)
    try:
        recipient = certs.cert_public_key(recipient_cert)
    except DecodeError as exc:
        raise DecryptionError(exc.message, reason=VerifyReason.UNSUPPORTED_KEY, fmt=FMT,
                              path="recipient_cert") from None
    key = _random(rand, 16, "AES key")
    iv = _random(rand, _BLOCK, "IV")
    wrapped = cipher.rsa_wrap(recipient, key)
    ciphertext, p = _encrypt(bytes(plaintext), key, iv)
    info = EncryptionInfo(mode=MODE_PKI, iv=iv, padding=p, key_info_unknown=0, key_size=8 * len(wrapped),
                          key_algorithm=AES_KEY_ALGORITHM, wrapped_key=wrapped, hash_alg=int(alg),
                          plaintext_hash=digest(alg, bytes(plaintext)))
    return sign_file(version=version, filename=filename, timestamp=timestamp, body=ciphertext,
                     signer=signer, hash_alg=int(alg), encryption=info)


def _check_symmetric_key(key: bytes, *, error: type[EncodeError] | type[DecryptionError]) -> None:
    if not isinstance(key, bytes) or len(key) not in (16, 32):
        size = len(key) if isinstance(key, bytes) else type(key).__name__
        raise error(f"manual key must be 16 or 32 bytes (128/256 bits), got {size}", fmt=FMT, path="key")


def build_symmetric(
    *,
    plaintext: bytes,
    filename: str,
    signer: FileSigner,
    key: bytes,
    timestamp: int,
    hash_alg: int = 1,
    rand: Callable[[int], bytes],
    version: tuple[int, int] = ENC_VERSION,
) -> bytes:
    """Encrypt with the configured manual key (our convention, see module docstring) and sign."""
    _check_symmetric_key(key, error=EncodeError)
    alg = _hash_code(hash_alg)
    iv = _random(rand, _BLOCK, "IV")
    ciphertext, p = _encrypt(bytes(plaintext), key, iv)
    info = EncryptionInfo(mode=MODE_SYMMETRIC, iv=iv, padding=p, key_info_unknown=0, key_size=8 * len(key),
                          key_algorithm=AES_KEY_ALGORITHM, hash_alg=int(alg),
                          plaintext_hash=digest(alg, bytes(plaintext)))
    return sign_file(version=version, filename=filename, timestamp=timestamp, body=ciphertext,
                     signer=signer, hash_alg=int(alg), encryption=info)


# --------------------------------------------------------------------------- decryption
def _header_error(ef: EncryptedFile, tag: HeaderTag, message: str, *,
                  reason: VerifyReason = VerifyReason.DECRYPT_FAILED) -> DecryptionError:
    """A DecryptionError about the value of header ``tag``: names the tag and where it sits (§3.7)."""
    return DecryptionError(message, reason=reason, fmt=FMT, offset=ef.header.offset_of(tag),
                           path=f"header.{tag.name.lower()}", tag=tag)


def _common_checks(ef: EncryptedFile, mode: int) -> HashAlg:
    enc = ef.encryption
    if enc.mode != mode:
        want = "PKI (tag 18 = 0)" if mode == MODE_PKI else "manual-key (tag 18 = 1)"
        raise _header_error(ef, T.ENCRYPTION_MODE, f"file uses encryption mode {enc.mode}, not {want}")
    if enc.key_algorithm != AES_KEY_ALGORITHM:
        raise _header_error(ef, T.ENCRYPTION_KEY_ALGORITHM,
                            f"key algorithm code {enc.key_algorithm} is unknown (1 = AES)",
                            reason=VerifyReason.UNSUPPORTED_KEY)
    code = enc.hash_alg if enc.hash_alg is not None else -1
    try:
        return hash_alg(code)
    except VerificationError as exc:
        raise _header_error(ef, T.ENCRYPTION_HASH_ALGORITHM, exc.message,
                            reason=VerifyReason.UNSUPPORTED_HASH) from None


def _decrypt(ef: EncryptedFile, key: bytes, alg: HashAlg) -> bytes:
    enc = ef.encryption
    assert enc.iv is not None and enc.padding is not None
    body_at = ef.header.header_length
    try:
        padded = cipher.aes_cbc_decrypt(key, enc.iv, ef.ciphertext)
    except DecryptionError as exc:
        raise DecryptionError(exc.message, reason=exc.reason, fmt=FMT, offset=body_at, path="body") from None
    plaintext = _unpad(padded, enc.padding, count_at=ef.header.offset_of(T.ENCRYPTION_PADDING),
                       body_at=body_at)
    want = enc.plaintext_hash or b""
    if not hmac.compare_digest(digest(alg, plaintext), want):
        raise _header_error(ef, T.ENCRYPTION_HASH,
                            f"{alg.label} hash of the decrypted plaintext does not match tag 27",
                            reason=VerifyReason.HASH_MISMATCH)
    return plaintext


#: Successful RSA unwraps by wrapped key, with the private key object that unwrapped it (perf only).
_UNWRAPPED: Memo[tuple[PrivateKey, bytes]] = Memo(max_items=64, max_key=1024)


def _unwrap(private_key: PrivateKey, wrapped: bytes) -> bytes:
    """``cipher.rsa_unwrap``, remembered for the same key object and wrapped bytes.

    The private-key operation is deterministic, so a repeated unwrap (a fuzzer's mutants of one
    file, or a phone re-reading its config) returns the same bytes; failures are not remembered.
    The memo holds the key object itself, so a hit is always for that very key.
    """
    hit = _UNWRAPPED.get(wrapped)
    if hit is not None and hit[0] is private_key:
        return hit[1]
    key = cipher.rsa_unwrap(private_key, wrapped)
    _UNWRAPPED.put(wrapped, (private_key, key))
    return key


def decrypt_pki(ef: EncryptedFile, private_key: PrivateKey) -> bytes:
    """Unwrap the file key with the phone's private key, decrypt, unpad, check the plaintext hash."""
    alg = _common_checks(ef, MODE_PKI)
    enc = ef.encryption
    wrapped = enc.wrapped_key or b""
    if enc.key_size != 8 * len(wrapped):
        raise _header_error(ef, T.ENCRYPTION_KEY_SIZE, f"key size tag says {enc.key_size} bits but the "
                            f"wrapped key is {8 * len(wrapped)} bits")
    try:
        key = _unwrap(private_key, wrapped)
    except DecryptionError as exc:
        raise _header_error(ef, T.ENCRYPTION_KEY, exc.message, reason=exc.reason) from None
    if len(key) != 16:
        raise _header_error(ef, T.ENCRYPTION_KEY, f"unwrapped key is {len(key)} bytes, expected a 16-byte "
                            "AES-128 key (encrypted for another certificate?)")
    return _decrypt(ef, key, alg)


def decrypt_symmetric(ef: EncryptedFile, key: bytes) -> bytes:
    """Decrypt with the phone's configured manual key (our convention, see module docstring)."""
    _check_symmetric_key(key, error=DecryptionError)
    alg = _common_checks(ef, MODE_SYMMETRIC)
    if ef.encryption.key_size != 8 * len(key):
        raise _header_error(ef, T.ENCRYPTION_KEY_SIZE, f"file needs a {ef.encryption.key_size}-bit key, the "
                            f"configured key has {8 * len(key)} bits", reason=VerifyReason.UNSUPPORTED_KEY)
    return _decrypt(ef, key, alg)


_HEX_RE = re.compile(r"[0-9A-Fa-f]{32}|[0-9A-Fa-f]{64}")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def hex_key_problem(text: str, *, digits: tuple[int, ...] = (32, 64), wants: str = "a manual key has",
                    ignore: str = "") -> str | None:
    """What is wrong with a manual key ``text`` as typed (spec §C.5), None when nothing: the first character
    that is not a hex digit and where (from 1, in ``text``), else how many hex digits it has when that is
    odd (two make a byte) or not one of the counts ``digits`` (said after ``wants``: "cp-7942 takes").
    Leading and trailing white space is not the key's; ``ignore``: separators typed between digits (the
    phone's ``:`` and space). The wording of :func:`parse_hex_key` and of the phone's "Set Cfg Encrypt
    Key" (``boot --key``, ``phone set-key``, a scenario's ``set-key``; was: "is not hex" for 31 digits,
    "is not 32 or 64 hex digits" for a mistyped ``0x``)."""
    lead = len(text) - len(text.lstrip())
    count = 0
    for at, char in enumerate(text.strip(), start=lead + 1):
        if char in _HEX_DIGITS:
            count += 1
        elif char not in ignore:
            return f"character {char!r} at position {at} is not a hex digit (0-9, a-f)"
    sizes = " or ".join(f"{n} (a {4 * n}-bit key)" for n in digits)
    if count % 2:
        return f"{count} hex digits, an odd number (two make a byte): {wants} {sizes}"
    if count not in digits:
        return f"{count or 'no'} hex digits: {wants} {sizes}"
    return None


def parse_hex_key(text: str) -> bytes | None:
    """The manual key as typed (spec §C.5): 32 or 64 hex digits; all zero digits clear it (None).
    DecodeError saying what is wrong (:func:`hex_key_problem`)."""
    if not isinstance(text, str):
        raise DecodeError(f"{type(text).__name__} is not 32 or 64 hex digits", fmt=FMT, path="key")
    cleaned = text.strip()
    if not _HEX_RE.fullmatch(cleaned):
        raise DecodeError(f"{text[:80]!r}: {hex_key_problem(text) or 'not 32 or 64 hex digits'}", fmt=FMT,
                          path="key")
    key = bytes.fromhex(cleaned)
    return None if not any(key) else key


# --------------------------------------------------------------------------- verification
def verify(ef: EncryptedFile, cert_or_key: x509.Certificate | PublicKey) -> None:
    """Check the file signature (spec §A.3) with a trusted key; raises VerificationError."""
    if isinstance(cert_or_key, x509.Certificate):
        try:
            key = certs.cert_public_key(cert_or_key)
        except DecodeError as exc:
            raise VerificationError(exc.message, reason=VerifyReason.UNSUPPORTED_KEY, fmt=FMT,
                                    path="signer.key") from None
    else:
        key = cert_or_key
    verify_signature(ef.parsed_header, key, fmt=FMT, what="encrypted config")
