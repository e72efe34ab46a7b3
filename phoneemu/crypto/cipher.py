"""AES-128-CBC and RSA PKCS#1 v1.5 key wrap for encrypted configs (spec §C.3).

Padding is *not* PKCS#7: callers append 1..16 bytes of 0x0D and record the count (§C.3 step 3).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from phoneemu.crypto.keys import PrivateKey, PublicKey
from phoneemu.errors import DecryptionError, VerifyReason

__all__ = ["aes_cbc_decrypt", "aes_cbc_encrypt", "rsa_unwrap", "rsa_wrap"]


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
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return dec.update(ciphertext) + dec.finalize()


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
