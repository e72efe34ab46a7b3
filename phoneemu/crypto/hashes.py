"""Hash-algorithm codes of spec §A.4: 1 = SHA-1, 2 = SHA-256, 3 = SHA-512.

The 2020 certutils mapping (3 = SHA-384, 4 = SHA-512) is not used (spec §A.4, §I).
"""

from __future__ import annotations

import enum
import hashlib

from cryptography.hazmat.primitives import hashes

from phoneemu.errors import VerificationError, VerifyReason

__all__ = ["HashAlg", "digest", "hash_alg"]


class HashAlg(enum.IntEnum):
    """Header tag 8 / encryption tag 26 / CAPF SHA2 signed-data hash codes."""

    SHA1 = 1
    SHA256 = 2
    SHA512 = 3

    @property
    def label(self) -> str:
        return {1: "SHA-1", 2: "SHA-256", 3: "SHA-512"}[self.value]

    @property
    def digest_size(self) -> int:
        return {1: 20, 2: 32, 3: 64}[self.value]

    def hazmat(self) -> hashes.HashAlgorithm:
        if self is HashAlg.SHA1:
            return hashes.SHA1()  # noqa: S303 - SHA-1 is what the phones use (spec §A.4)
        if self is HashAlg.SHA256:
            return hashes.SHA256()
        return hashes.SHA512()


_HASHLIB = {HashAlg.SHA1: "sha1", HashAlg.SHA256: "sha256", HashAlg.SHA512: "sha512"}


#: wire code → HashAlg, as ``HashAlg(code)`` finds it (by value) without building an enum call: a signed
#: file's header is read for its code each boot (issue #6)
_BY_CODE: dict[object, HashAlg] = {alg.value: alg for alg in HashAlg}


def hash_alg(code: int) -> HashAlg:
    """Map a wire code to HashAlg; an unknown code is a VerificationError (unsupported hash)."""
    try:
        alg = _BY_CODE.get(code)
    except TypeError:  # unhashable: by equality, as the enum looks it up then (never a wire code)
        alg = next((member for member in HashAlg if member.value == code), None)
    if alg is None:
        raise VerificationError(
            f"unsupported hash algorithm code {code} (known: 1 SHA-1, 2 SHA-256, 3 SHA-512)",
            reason=VerifyReason.UNSUPPORTED_HASH,
        )
    return alg


def digest(alg: HashAlg, data: bytes) -> bytes:
    return hashlib.new(_HASHLIB[alg], data).digest()
