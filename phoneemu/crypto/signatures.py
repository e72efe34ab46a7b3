"""Signatures over exact bytes. Verification raises VerificationError; it never returns a bool.

* Signed files (spec §A.3): RSA PKCS#1 v1.5 with the digest named by header tag 8.
  EC signers for file headers are [UNK] in the spec; our convention: ECDSA with the same
  hash, DER-encoded signature (used only where a profile allows EC file signers).
* CAPF signed data (spec §F.7): the RSA "signature" is the raw private-key operation on
  ``00 01 FF..FF 00 || hash`` (PKCS#1 type-1 padding, no DigestInfo). That operation is Python's
  ``pow``, so an RSA key above 16384 bits or with a public exponent above 64 bits (OpenSSL's limits)
  is refused with reason UNSUPPORTED_KEY before any arithmetic.
* Optional process-wide memo of **successful** file-signature checks (:class:`VerifyCache`, off unless
  :func:`set_verify_cache` installs one; fleets do, issue #6): keyed by the SHA-256 of the signed
  bytes, the signature, the hash code and the SHA-256 of the signer's SubjectPublicKeyInfo, so
  thousands of phones verifying the same ITL with the same key pay for one check. Failures are never
  cached (they are recomputed and raise as usual).
* Whether a key is RSA is remembered per concrete key class (``isinstance`` on the ABCs is slow).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from phoneemu.crypto import keys
from phoneemu.crypto._memo import IdentityMemo
from phoneemu.crypto.hashes import HashAlg, digest
from phoneemu.crypto.keys import PrivateKey, PublicKey
from phoneemu.errors import VerificationError, VerifyReason

__all__ = ["VerifyCache", "raw_digest_signature_bound", "set_verify_cache", "sign", "sign_raw_digest",
           "verify", "verify_raw_digest"]


class VerifyCache:
    """Bounded LRU of signature checks that succeeded (see module docstring); ``hits``/``misses`` count."""

    __slots__ = ("_items", "hits", "max_items", "misses")

    def __init__(self, max_items: int = 4096) -> None:
        self._items: OrderedDict[bytes, None] = OrderedDict()
        self.max_items = max_items
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(key: PublicKey, signature: bytes, data: bytes, alg: HashAlg) -> bytes:
        """The hash code, then the SHA-256 of the signer's SubjectPublicKeyInfo, of the signed bytes and of
        the signature. A memo that knows the very object is read in place, not called (a fleet's phones
        check the same objects: one call a check, not six; issue #6)."""
        known = _spki_digest._items.get(id(key))
        spki = known[1] if known is not None and known[0] is key else _spki_digest(key)
        hit = _bytes_digest._items.get(id(data))
        signed = hit[1] if hit is not None and hit[0] is data else _digest(data)
        hit = _bytes_digest._items.get(id(signature))
        sig = hit[1] if hit is not None and hit[0] is signature else _digest(signature)
        return b"".join((bytes([int(alg)]), spki, signed, sig))

    def seen(self, k: bytes) -> bool:
        """Whether the check ``k`` succeeded before (a hit, now the most recent); counts ``hits``/``misses``.
        (:func:`verify` does this in place: a call less a check.)"""
        if k in self._items:
            self._items.move_to_end(k)
            self.hits += 1
            return True
        self.misses += 1
        return False

    def remember(self, k: bytes) -> None:
        self._items[k] = None
        if len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def _spki_sha256(key: PublicKey) -> bytes:
    return hashlib.sha256(keys.public_key_spki_der(key)).digest()


#: SHA-256 of a key's SubjectPublicKeyInfo, once per key object (trust-list records hand every phone
#: the same one).
_spki_digest: IdentityMemo[PublicKey, bytes] = IdentityMemo(_spki_sha256)

def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


#: SHA-256 of a signed message or signature, once per ``bytes`` object: a fleet's phones verify the very
#: same parsed trust lists and files (their signed bytes one object), so each is hashed once, not once a
#: phone. Only immutable ``bytes`` of at most :data:`_DIGEST_MEMO_MAX` bytes are remembered (a firmware
#: image is hashed each time: the memo holds what it remembers).
_bytes_digest: IdentityMemo[bytes, bytes] = IdentityMemo(_sha256, max_items=128)  # at most 8 MiB held
_DIGEST_MEMO_MAX = 64 * 1024


def _digest(data: bytes) -> bytes:
    if type(data) is bytes and len(data) <= _DIGEST_MEMO_MAX:
        return _bytes_digest(data)
    return hashlib.sha256(data).digest()


_verify_cache: VerifyCache | None = None


def set_verify_cache(cache: VerifyCache | None) -> VerifyCache | None:
    """Install (or with None remove) the process-wide cache used by :func:`verify`; returns the old one."""
    global _verify_cache
    old, _verify_cache = _verify_cache, cache
    return old


def sign(key: PrivateKey, data: bytes, alg: HashAlg) -> bytes:
    if _rsa_kind(key)[1]:
        return cast(rsa.RSAPrivateKey, key).sign(data, padding.PKCS1v15(), alg.hazmat())
    return cast(ec.EllipticCurvePrivateKey, key).sign(data, ec.ECDSA(alg.hazmat()))


def verify(key: PublicKey, signature: bytes, data: bytes, alg: HashAlg, *, what: str = "file") -> None:
    """Raise VerificationError(BAD_SIGNATURE) unless ``signature`` is valid over ``data``."""
    cache = _verify_cache
    if cache is None:
        _verify(key, signature, data, alg, what=what)
        return
    memo = cache.key(key, signature, data, alg)
    checked = cache._items  # VerifyCache.seen in place (a call less a check, issue #6)
    if memo in checked:
        checked.move_to_end(memo)
        cache.hits += 1
        return
    cache.misses += 1
    _verify(key, signature, data, alg, what=what)
    cache.remember(memo)


#: Concrete key class → (is an RSA public key, is an RSA private key): ``isinstance`` on the ABCs
#: is slow and a class never changes (perf only).
_RSA_KIND: dict[type, tuple[bool, bool]] = {}


def _rsa_kind(key: PublicKey | PrivateKey) -> tuple[bool, bool]:
    cls = type(key)
    known = _RSA_KIND.get(cls)
    if known is None:
        known = _RSA_KIND[cls] = (isinstance(key, rsa.RSAPublicKey), isinstance(key, rsa.RSAPrivateKey))
    return known


def _verify(key: PublicKey, signature: bytes, data: bytes, alg: HashAlg, *, what: str) -> None:
    try:
        if _rsa_kind(key)[0]:
            rsa_key = cast(rsa.RSAPublicKey, key)
            if len(signature) != (rsa_key.key_size + 7) // 8:
                raise VerificationError(
                    f"{what}: signature is {len(signature)} bytes, the signer's RSA-{rsa_key.key_size}"
                    f" key needs {(rsa_key.key_size + 7) // 8}", reason=VerifyReason.BAD_SIGNATURE)
            rsa_key.verify(signature, data, padding.PKCS1v15(), alg.hazmat())
        else:
            cast(ec.EllipticCurvePublicKey, key).verify(signature, data, ec.ECDSA(alg.hazmat()))
    except InvalidSignature:
        raise VerificationError(f"{what}: {alg.label} signature does not verify",
                                reason=VerifyReason.BAD_SIGNATURE) from None


RAW_RSA_MAX_EXPONENT_BITS = 64  # OpenSSL's RSA_MAX_PUBEXP_BITS; real keys use 65537 (17 bits)
RAW_RSA_MAX_MODULUS_BITS = 16384  # OpenSSL's OPENSSL_RSA_MAX_MODULUS_BITS


def _type1_pad(h: bytes, k: int) -> bytes:
    return b"\x00\x01" + b"\xff" * (k - 3 - len(h)) + b"\x00" + h


#: cryptography's PKCS#1 v1.5 signing without a DigestInfo (``utils.NoDigestInfo``, cryptography 47+)
_NO_DIGEST_INFO: Any = getattr(utils, "NoDigestInfo", None)


def sign_raw_digest(key: PrivateKey, data: bytes, alg: HashAlg) -> bytes:
    """CAPF signed data (spec §F.7): raw RSA on type-1-padded bare hash; ECDSA for EC keys.

    RSA is OpenSSL's PKCS#1 v1.5 signature with no DigestInfo (0.3 ms for RSA-2048); with a
    cryptography too old for that, Python's ``pow`` with the Chinese remainder theorem (6 ms; two per
    CAPF authentication), its result checked with the public exponent before it is sent, as OpenSSL
    checks its own CRT results."""
    h = digest(alg, data)
    if isinstance(key, rsa.RSAPrivateKey):
        if _NO_DIGEST_INFO is not None:
            return key.sign(h, padding.PKCS1v15(), _NO_DIGEST_INFO())
        k = (key.key_size + 7) // 8
        n = key.private_numbers()
        modulus = n.public_numbers.n
        m = int.from_bytes(_type1_pad(h, k), "big")
        s_p, s_q = pow(m, n.dmp1, n.p), pow(m, n.dmq1, n.q)
        s = s_q + n.q * ((n.iqmp * (s_p - s_q)) % n.p)
        if pow(s, n.public_numbers.e, modulus) != m:  # a key whose CRT parts disagree: never sent wrong
            s = pow(m, n.d, modulus)
        return s.to_bytes(k, "big")
    return key.sign(h, ec.ECDSA(utils.Prehashed(alg.hazmat())))


def raw_digest_signature_bound(key: PrivateKey | PublicKey) -> int:
    """The most bytes :func:`sign_raw_digest` returns for ``key``: the modulus for RSA; for EC a DER
    ECDSA signature of two full-size integers, each with a sign byte, under at most 9 bytes of headers."""
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return (key.key_size + 7) // 8
    return 2 * ((key.curve.key_size + 7) // 8) + 9


def verify_raw_digest(key: PublicKey, signature: bytes, data: bytes, alg: HashAlg) -> None:
    h = digest(alg, data)
    if isinstance(key, rsa.RSAPublicKey):
        k = (key.key_size + 7) // 8
        pn = key.public_numbers()
        if pn.e.bit_length() > RAW_RSA_MAX_EXPONENT_BITS or key.key_size > RAW_RSA_MAX_MODULUS_BITS:
            # pow() below is Python's: a 16384-bit key with a 16383-bit exponent costs ~9 s of CPU per
            # signature, and the key comes from a certificate the peer sent (CAPF authentication).
            # OpenSSL's own limits: RSA_MAX_PUBEXP_BITS and OPENSSL_RSA_MAX_MODULUS_BITS.
            raise VerificationError(
                f"CAPF {alg.label} signed data: RSA-{key.key_size} key with a {pn.e.bit_length()}-bit "
                f"public exponent refused (at most {RAW_RSA_MAX_MODULUS_BITS}-bit modulus and "
                f"{RAW_RSA_MAX_EXPONENT_BITS}-bit exponent)", reason=VerifyReason.UNSUPPORTED_KEY)
        s = int.from_bytes(signature, "big")
        ok = len(signature) == k and s < pn.n
        if not ok or pow(s, pn.e, pn.n).to_bytes(k, "big") != _type1_pad(h, k):
            raise VerificationError(f"CAPF {alg.label} signed data does not verify",
                                    reason=VerifyReason.BAD_SIGNATURE)
        return
    try:
        key.verify(signature, h, ec.ECDSA(utils.Prehashed(alg.hazmat())))
    except InvalidSignature:
        raise VerificationError(f"CAPF {alg.label} signed data does not verify",
                                reason=VerifyReason.BAD_SIGNATURE) from None
