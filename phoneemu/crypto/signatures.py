"""Signatures over exact bytes. Verification raises VerificationError; it never returns a bool.

* Signed files (spec §A.3): RSA PKCS#1 v1.5 with the digest named by header tag 8.
  EC signers for file headers are [UNK] in the spec; our convention: ECDSA with the same
  hash, DER-encoded signature (used only where a profile allows EC file signers).
* CAPF signed data (spec §F.7): the RSA "signature" is the raw private-key operation on
  ``00 01 FF..FF 00 || hash`` (PKCS#1 type-1 padding, no DigestInfo).
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from phoneemu.crypto.hashes import HashAlg, digest
from phoneemu.crypto.keys import PrivateKey, PublicKey
from phoneemu.errors import VerificationError, VerifyReason

__all__ = ["sign", "sign_raw_digest", "verify", "verify_raw_digest"]


def sign(key: PrivateKey, data: bytes, alg: HashAlg) -> bytes:
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), alg.hazmat())
    return key.sign(data, ec.ECDSA(alg.hazmat()))


def verify(key: PublicKey, signature: bytes, data: bytes, alg: HashAlg, *, what: str = "file") -> None:
    """Raise VerificationError(BAD_SIGNATURE) unless ``signature`` is valid over ``data``."""
    try:
        if isinstance(key, rsa.RSAPublicKey):
            if len(signature) != (key.key_size + 7) // 8:
                raise VerificationError(
                    f"{what}: signature is {len(signature)} bytes, the signer's RSA-{key.key_size}"
                    f" key needs {(key.key_size + 7) // 8}", reason=VerifyReason.BAD_SIGNATURE)
            key.verify(signature, data, padding.PKCS1v15(), alg.hazmat())
        else:
            key.verify(signature, data, ec.ECDSA(alg.hazmat()))
    except InvalidSignature:
        raise VerificationError(f"{what}: {alg.label} signature does not verify",
                                reason=VerifyReason.BAD_SIGNATURE) from None


def _type1_pad(h: bytes, k: int) -> bytes:
    return b"\x00\x01" + b"\xff" * (k - 3 - len(h)) + b"\x00" + h


def sign_raw_digest(key: PrivateKey, data: bytes, alg: HashAlg) -> bytes:
    """CAPF signed data (spec §F.7): raw RSA on type-1-padded bare hash; ECDSA for EC keys."""
    h = digest(alg, data)
    if isinstance(key, rsa.RSAPrivateKey):
        k = (key.key_size + 7) // 8
        n = key.private_numbers()
        m = int.from_bytes(_type1_pad(h, k), "big")
        return pow(m, n.d, n.public_numbers.n).to_bytes(k, "big")
    return key.sign(h, ec.ECDSA(utils.Prehashed(alg.hazmat())))


def verify_raw_digest(key: PublicKey, signature: bytes, data: bytes, alg: HashAlg) -> None:
    h = digest(alg, data)
    if isinstance(key, rsa.RSAPublicKey):
        k = (key.key_size + 7) // 8
        pn = key.public_numbers()
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
