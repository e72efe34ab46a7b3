"""AES-128-CBC and RSA PKCS#1 v1.5 key wrap for encrypted configs (spec §C.3); AES-CBC and AES-GCM
record decryption for captured TLS (``phoneemu.net.tls_decrypt``).

Padding is *not* PKCS#7: callers append 1..16 bytes of 0x0D and record the count (§C.3 step 3).

Performance only: CBC decryption is done as ``P_i = AES-ECB-decrypt(C_i) XOR C_(i-1)`` with
``C_0 = IV`` (the definition of CBC decryption), with one AES-ECB decryption context per key kept
per thread and reused (ECB holds no state between whole blocks), so a fuzzer or a fleet decrypting
many files with one key does not build a cipher object per file. Same bytes as a CBC context.
"""

from __future__ import annotations

import threading

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from phoneemu.crypto.keys import PrivateKey, PublicKey
from phoneemu.errors import DecryptionError, VerifyReason

__all__ = ["aead_decrypt", "aes_cbc_decrypt", "aes_cbc_encrypt", "aes_gcm_decrypt", "rsa_unwrap", "rsa_wrap"]


def aes_cbc_encrypt(key: bytes, iv: bytes, plaintext: bytes) -> bytes:
    if len(plaintext) % 16:
        raise ValueError("plaintext must already be padded to 16 bytes")
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(plaintext) + enc.finalize()


def aes_cbc_decrypt(key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    if len(key) not in (16, 24, 32) or len(iv) != 16:
        raise DecryptionError(f"bad AES key/IV size ({len(key)}/{len(iv)} bytes)")
    if len(ciphertext) % 16:
        raise DecryptionError(f"ciphertext of {len(ciphertext)} bytes is not a multiple of 16")
    if not ciphertext:
        return b""
    n = len(ciphertext)
    blocks = _ecb_decryptor(key).update(ciphertext)  # D(C_1) .. D(C_n), whole blocks only
    chain = iv + ciphertext[:-16]  # C_0 = IV, C_1 .. C_(n-1)
    return (int.from_bytes(blocks, "big") ^ int.from_bytes(chain, "big")).to_bytes(n, "big")


def aes_gcm_decrypt(key: bytes, nonce: bytes, ciphertext_and_tag: bytes, aad: bytes) -> bytes:
    """AES-GCM with a 16-byte tag; DecryptionError when the tag does not match."""
    if len(key) not in (16, 24, 32) or len(nonce) != 12 or len(ciphertext_and_tag) < 16:
        raise DecryptionError(f"bad AES-GCM sizes (key {len(key)}, nonce {len(nonce)}, "
                              f"data {len(ciphertext_and_tag)} bytes)")
    try:
        return AESGCM(key).decrypt(nonce, ciphertext_and_tag, aad)
    except InvalidTag:
        raise DecryptionError("AES-GCM tag mismatch") from None


def aead_decrypt(name: str, key: bytes, nonce: bytes, ciphertext_and_tag: bytes, aad: bytes) -> bytes:
    """``aes-gcm`` or ``chacha20-poly1305`` (16-byte tag); DecryptionError when the tag does not match."""
    if name == "aes-gcm":
        return aes_gcm_decrypt(key, nonce, ciphertext_and_tag, aad)
    if name != "chacha20-poly1305" or len(key) != 32 or len(nonce) != 12 or len(ciphertext_and_tag) < 16:
        raise DecryptionError(f"bad AEAD {name!r} or sizes (key {len(key)}, nonce {len(nonce)})")
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, ciphertext_and_tag, aad)
    except InvalidTag:
        raise DecryptionError("ChaCha20-Poly1305 tag mismatch") from None


class _EcbContexts(threading.local):
    """Per-thread AES-ECB decryption contexts by key (perf only; see module docstring)."""

    def __init__(self) -> None:
        self.by_key: dict[bytes, CipherContext] = {}


_ECB = _EcbContexts()
_ECB_MAX_KEYS = 64


def _ecb_decryptor(key: bytes) -> CipherContext:
    """A reusable AES-ECB decryptor for ``key``: fed whole blocks only, never finalized."""
    by_key = _ECB.by_key
    ctx = by_key.get(key)
    if ctx is None:
        if len(by_key) >= _ECB_MAX_KEYS:
            by_key.clear()
        # ECB here is the block primitive of CBC decryption (aes_cbc_decrypt), never used alone.
        ctx = by_key[key] = Cipher(algorithms.AES(key), modes.ECB()).decryptor()  # noqa: S305
    return ctx


def rsa_wrap(public_key: PublicKey, key: bytes) -> bytes:
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise DecryptionError("key wrap needs an RSA public key; EC wrap is unknown (spec §C.3)",
                              reason=VerifyReason.UNSUPPORTED_KEY)
    return public_key.encrypt(key, padding.PKCS1v15())


def rsa_unwrap(private_key: PrivateKey, wrapped: bytes) -> bytes:
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise DecryptionError("key unwrap needs an RSA private key",
                              reason=VerifyReason.UNSUPPORTED_KEY)
    try:
        return private_key.decrypt(wrapped, padding.PKCS1v15())
    except ValueError:
        raise DecryptionError("cannot unwrap the file key with this private key "
                              "(encrypted for another certificate?)") from None
