"""Key generation, serialisation and the public-key encodings of trust-list records.

* Record tag 7 (spec §B.2): RSA keys as DER ``RSAPublicKey`` (PKCS#1), EC keys as the X9.62
  uncompressed point ``04 || X || Y``.
* Private keys are written with mode 0600 and never committed.
* A *seeded* mode makes keys reproducible for tests and lab clusters created with ``--seed``:
  RSA primes are drawn from a seeded PRNG (our convention, not a standard); this is for
  labs and tests only and says so in its name.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from phoneemu.crypto._memo import IdentityMemo
from phoneemu.crypto.pem import pem_problem
from phoneemu.errors import DecodeError, EncodeError
from phoneemu.files import atomic_write
from phoneemu.values import is_ascii_digits

__all__ = [
    "SUPPORTED_CURVES",
    "KeySpec",
    "PrivateKey",
    "PublicKey",
    "decode_record_public_key",
    "encode_record_public_key",
    "generate_key",
    "key_description",
    "key_size_bits",
    "load_private_key_der",
    "load_private_key_pem",
    "load_public_key_spki_der",
    "private_key_from_pem",
    "private_key_pem",
    "private_key_pem_public_der",
    "public_key_spki_der",
    "remembered_private_key_pem",
    "write_private_key",
]

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "p256": ec.SECP256R1,
    "p384": ec.SECP384R1,
    "p521": ec.SECP521R1,
}
#: The curves phoneemu knows (``EC secp256r1`` ... as :func:`key_description` names them): the CAPF
#: curves of spec §F; a key on another curve is an unsupported key wherever a phone meets it.
SUPPORTED_CURVES = frozenset(str(c.name) for c in _CURVES.values())
_POINT_LEN_TO_CURVE: dict[int, type[ec.EllipticCurve]] = {
    65: ec.SECP256R1,
    97: ec.SECP384R1,
    133: ec.SECP521R1,
}


@dataclass(frozen=True, kw_only=True)
class KeySpec:
    """``rsa`` with ``bits`` in 512..4096, or ``ec`` with curve p256/p384/p521."""

    kind: str = "rsa"
    bits: int = 2048
    curve: str = "p256"

    def __post_init__(self) -> None:
        if self.kind == "rsa" and self.bits not in (512, 1024, 2048, 3072, 4096):
            raise EncodeError(f"unsupported RSA size {self.bits}", path="key.bits")
        if self.kind == "ec" and self.curve not in _CURVES:
            raise EncodeError(f"unsupported curve {self.curve!r}", path="key.curve")
        if self.kind not in ("rsa", "ec"):
            raise EncodeError(f"unknown key kind {self.kind!r} (rsa or ec)", path="key.kind")

    @classmethod
    def parse(cls, text: str) -> KeySpec:
        """``rsa2048``, ``rsa-1024``, ``ec-p256``, ``p384`` ... as used in CLI and scenarios."""
        t = text.lower().replace("-", "").replace("_", "")
        if t.startswith("rsa") and is_ascii_digits(t[3:]) and len(t) < 10:
            return cls(kind="rsa", bits=int(t[3:]))
        if t.startswith("ec"):
            t = t[2:]
        if t in _CURVES:
            return cls(kind="ec", curve=t)
        raise EncodeError(f"unknown key spec {text!r} (e.g. rsa2048, ec-p256)", path="key")

    def __str__(self) -> str:
        return f"rsa{self.bits}" if self.kind == "rsa" else f"ec-{self.curve}"


_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % d for d in range(2, int(p**0.5) + 1))]


#: Miller-Rabin rounds computed of the 24 whose bases are drawn, for candidates of
#: :data:`_FEW_ROUNDS_FROM_BITS` bits and more: 8 bound the error of a random candidate at 2**-107 for
#: 512 bits (the primes of RSA 1024; 2**-159 at 1024 bits), below FIPS 186-5's 2**-100 (the bound of its
#: appendix C.1, which gives its table B.1, 4 rounds for 1024-bit primes, and FIPS 186-4's 7 for 512-bit
#: ones). The other bases are still drawn, so a seed's stream — and every seeded key and test vector — is
#: what it was with 24 computed (a composite passing 8 rounds and failing a later one, the only case that
#: could differ, is far rarer than 2**-100). Each round is a pow of the candidate's size: the 16 skipped were
#: ~30 % of a seeded key's CPU.
_COMPUTED_ROUNDS = 8
#: smaller candidates (the 256-bit primes of a seeded RSA 512, as a test's LabPki may make) compute every
#: drawn round: 8 rounds bound a 256-bit candidate's error at only 2**-72 (16 are needed for 2**-100), and
#: a round of that size costs little
_FEW_ROUNDS_FROM_BITS = 512


def _probable_prime(n: int, rng: random.Random, rounds: int = 24) -> bool:
    for p in _SMALL_PRIMES:
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    computed = _COMPUTED_ROUNDS if n.bit_length() >= _FEW_ROUNDS_FROM_BITS else rounds
    for done in range(rounds):
        a = rng.randrange(2, n - 2)
        if done >= computed:  # drawn, not computed (see _COMPUTED_ROUNDS)
            continue
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _seeded_prime(rng: random.Random, bits: int, e: int) -> int:
    # Bounded: the prime density near 2**bits guarantees success long before this limit.
    for _ in range(200_000):
        cand = rng.getrandbits(bits) | (3 << (bits - 2)) | 1
        if math.gcd(e, cand - 1) == 1 and _probable_prime(cand, rng):
            return cand
    raise RuntimeError("prime search exhausted")  # pragma: no cover


@lru_cache(maxsize=256)
def _unsafe_seeded_rsa(seed: str, bits: int) -> rsa.RSAPrivateKey:
    rng = random.Random(seed)
    e = 65537
    while True:
        p = _seeded_prime(rng, bits // 2, e)
        q = _seeded_prime(rng, bits - bits // 2, e)
        if p != q and (p * q).bit_length() == bits:
            break
    if p < q:
        p, q = q, p
    phi = (p - 1) * (q - 1)
    d = pow(e, -1, phi)
    numbers = rsa.RSAPrivateNumbers(
        p=p, q=q, d=d,
        dmp1=rsa.rsa_crt_dmp1(d, p), dmq1=rsa.rsa_crt_dmq1(d, q), iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(e, p * q),
    )
    key = numbers.private_key(unsafe_skip_rsa_key_validation=True)  # checked below: ours, not OpenSSL's
    problem = _rsa_key_problem(key)
    if problem is not None:  # pragma: no cover - p and q passed Miller-Rabin; their parts are derived
        raise RuntimeError(f"seeded RSA key: {problem}")
    return key


def generate_key(spec: KeySpec, *, unsafe_seed: str | None = None) -> PrivateKey:
    """New private key; with ``unsafe_seed`` the key is reproducible (labs and tests only)."""
    if spec.kind == "rsa":
        if unsafe_seed is not None:
            return _unsafe_seeded_rsa(unsafe_seed, spec.bits)
        return rsa.generate_private_key(public_exponent=65537, key_size=spec.bits)
    curve = _CURVES[spec.curve]()
    if unsafe_seed is not None:
        order = {"p256": 2**256, "p384": 2**384, "p521": 2**521}[spec.curve]
        scalar = random.Random(unsafe_seed).randrange(1, order // 2)
        return ec.derive_private_key(scalar, curve)
    return ec.generate_private_key(curve)


def key_size_bits(key: PublicKey | PrivateKey) -> int:
    return key.key_size if isinstance(key, (rsa.RSAPublicKey, rsa.RSAPrivateKey)) else key.curve.key_size


def key_description(key: PublicKey | PrivateKey) -> str:
    """``RSA 2048`` or ``EC secp256r1``."""
    if isinstance(key, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        return f"RSA {key.key_size}"
    return f"EC {key.curve.name}"


def encode_record_public_key(key: PublicKey) -> bytes:
    """Record tag 7 value: PKCS#1 DER for RSA, uncompressed point for EC (spec §B.2)."""
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def decode_record_public_key(data: bytes) -> PublicKey:
    """Inverse of :func:`encode_record_public_key`; raises DecodeError on anything else."""
    try:
        if data[:1] == b"\x04" and len(data) in _POINT_LEN_TO_CURVE:
            return ec.EllipticCurvePublicKey.from_encoded_point(_POINT_LEN_TO_CURVE[len(data)](), data)
        if data[:1] == b"\x30":
            key = serialization.load_der_public_key(_pkcs1_to_spki(data))
            if isinstance(key, rsa.RSAPublicKey):
                return key
    except (ValueError, TypeError, IndexError):
        pass
    raise DecodeError(f"public key of {len(data)} bytes is neither PKCS#1 RSA nor an EC point",
                      path="public_key", tag=7)


def _pkcs1_to_spki(pkcs1: bytes) -> bytes:
    """Wrap a PKCS#1 RSAPublicKey in SubjectPublicKeyInfo so cryptography can load it."""
    alg = bytes.fromhex("300d06092a864886f70d0101010500")
    bitstring = b"\x00" + pkcs1
    bs = b"\x03" + _der_len(len(bitstring)) + bitstring
    body = alg + bs
    return b"\x30" + _der_len(len(body)) + body


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def public_key_spki_der(key: PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key_spki_der(data: bytes) -> PublicKey:
    try:
        key = serialization.load_der_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # UnsupportedAlgorithm: an unknown key OID
        raise DecodeError(f"not a DER SubjectPublicKeyInfo: {exc}", path="public_key") from None
    if not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        raise DecodeError("public key is neither RSA nor EC", path="public_key")
    return key


def private_key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _rsa_key_problem(key: rsa.RSAPrivateKey) -> str | None:
    """What is wrong with a loaded RSA private key, or None: our check in place of OpenSSL's
    ``RSA_check_key`` (its primality tests of p and q cost ~33 ms of CPU per 2048-bit key, too slow for a
    fleet whose phones each load their own key). The parts agree (``n = p·q``; ``d``, ``dmp1``,
    ``dmq1``, ``iqmp`` are the inverses they claim to be) and the key signs what its public half verifies
    (a pairwise consistency test, as FIPS 140-3 has a module run on a key it makes). A key that passes
    computes correctly; one whose p or q is not prime would only be weak, which a phone's own key in an
    emulator may be (our convention)."""
    size = key.key_size
    if size > _RSA_MAX_BITS:
        return f"an RSA-{size} key is larger than the {_RSA_MAX_BITS} bits OpenSSL computes with"
    numbers = key.private_numbers()
    p, q, d = numbers.p, numbers.q, numbers.d
    e, n = numbers.public_numbers.e, numbers.public_numbers.n
    if min(p, q) < 3 or p * q != n:
        return "its primes p and q do not multiply to the modulus n"
    if e < 3 or e % 2 == 0 or (e * d) % (p - 1) != 1 or (e * d) % (q - 1) != 1:
        return "its private exponent d is not the inverse of e modulo p-1 and q-1"
    if numbers.dmp1 != d % (p - 1) or numbers.dmq1 != d % (q - 1) or (numbers.iqmp * q) % p != 1:
        return "its CRT values (dmp1, dmq1, iqmp) do not match p, q and d"
    try:
        signature = key.sign(_PAIRWISE_PROBE, padding.PKCS1v15(), hashes.SHA256())
        key.public_key().verify(signature, _PAIRWISE_PROBE, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return "it signs what its own public key does not verify"
    except ValueError as exc:  # e.g. a modulus too small for a PKCS#1 SHA-256 signature
        return f"it cannot sign: {exc}"
    return None


_RSA_MAX_BITS = 16384  # OpenSSL's OPENSSL_RSA_MAX_MODULUS_BITS
_PAIRWISE_PROBE = b"phoneemu pairwise consistency test"


def _loaded_private_key(block: bytes) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None:
    """The private key in one PEM block (RSA checked by :func:`_rsa_key_problem`; cryptography checks
    that an EC point is on its curve); None if it is neither RSA nor EC. ValueError, TypeError or
    UnsupportedAlgorithm for a block that is not a usable key."""
    key = serialization.load_pem_private_key(block, password=None, unsafe_skip_rsa_key_validation=True)
    if isinstance(key, rsa.RSAPrivateKey):
        problem = _rsa_key_problem(key)
        if problem is not None:
            raise ValueError(f"invalid RSA private key: {problem}")
        return key
    return key if isinstance(key, ec.EllipticCurvePrivateKey) else None


def load_private_key_pem(data: bytes, *, source: str = "key") -> PrivateKey:
    """Load the first private key in a PEM blob (which may also hold certificates), checked
    (:func:`_rsa_key_problem`: well under a millisecond for RSA-2048)."""
    start = data.find(b"-----BEGIN ")
    while start != -1:
        end_marker = data.find(b"-----END ", start)
        stop = data.find(b"-----", end_marker + 9) if end_marker != -1 else -1
        if stop == -1:
            if b"PRIVATE KEY" in data[start:start + 40]:
                raise DecodeError(f"cannot load private key: {pem_problem(data, 'PRIVATE KEY')}", path=source)
            break
        block = data[start : stop + 5]
        if b"PRIVATE KEY" in block[:40]:
            try:
                key = _loaded_private_key(block)
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                why = pem_problem(block, "PRIVATE KEY") or str(exc)
                raise DecodeError(f"cannot load private key: {why}", path=source) from None
            if key is not None:
                return key
            raise DecodeError("private key is neither RSA nor EC", path=source)
        start = data.find(b"-----BEGIN ", stop + 5)
    raise DecodeError("no PEM private key found", path=source)


def load_private_key_der(data: bytes, *, source: str = "key") -> PrivateKey:
    """The private key of a DER file (PKCS #8, PKCS #1 RSA or SEC 1 EC, as ``openssl pkey -outform DER``
    and Windows exports save one), checked as :func:`load_private_key_pem` checks a PEM one; a DecodeError
    naming ``source`` for anything else (an encrypted key: its password is not asked for)."""
    try:
        key = serialization.load_der_private_key(data, password=None, unsafe_skip_rsa_key_validation=True)
        if isinstance(key, rsa.RSAPrivateKey) and (problem := _rsa_key_problem(key)) is not None:
            raise ValueError(f"invalid RSA private key: {problem}")
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise DecodeError(f"cannot load DER private key: {exc}", path=source) from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise DecodeError("private key is neither RSA nor EC", path=source)
    return key


def private_key_pem_public_der(data: bytes, *, source: str = "key") -> bytes:
    """The SubjectPublicKeyInfo DER of the first private key in a PEM blob: a quick structural check of
    a stored key (a phone's flash at load, once per phone of a fleet). The RSA check of
    :func:`load_private_key_pem` (a test signature, ~0.4 ms) is skipped — which is why only the public
    half comes out, never a key to use; the key is loaded, checked, when it is used. A DecodeError
    names ``source`` and, where it goes wrong, the offset: no PEM private key at all, a BEGIN line with
    no END line after it (a truncated file), a block that is not a key (damaged base64 or DER, a key
    that needs a password), a key neither RSA nor EC."""
    start = data.find(b"-----BEGIN ")
    while start != -1:
        line_end = data.find(b"-----", start + 11)
        label = data[start:line_end] if line_end != -1 else data[start:start + 40]
        if b"PRIVATE KEY" in label:
            end_marker = data.find(b"-----END ", start)
            stop = data.find(b"-----", end_marker + 9) if end_marker != -1 else -1
            if stop == -1:
                raise DecodeError(f"truncated: a PEM private key block with no END line ({len(data)} "
                                  "bytes in all)", path=source, offset=start)
            try:
                key = serialization.load_pem_private_key(data[start:stop + 5], password=None,
                                                         unsafe_skip_rsa_key_validation=True)
            except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                why = pem_problem(data[start:stop + 5], "PRIVATE KEY") or str(exc)
                raise DecodeError(f"the PEM block is not a private key: {why}", path=source,
                                  offset=start) from None
            if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
                raise DecodeError("the private key is neither RSA nor EC", path=source, offset=start)
            return public_key_spki_der(key.public_key())
        start = data.find(b"-----BEGIN ", start + 11)
    raise DecodeError(f"no PEM private key found (no BEGIN ... PRIVATE KEY line in "
                      f"{len(data)} bytes)", path=source)


def _load_pem(data: bytes) -> PrivateKey:
    return load_private_key_pem(data)


#: PEM bytes object -> its key (identity memo): loading an RSA PEM checks the key with a test signature.
_PEM_KEYS: IdentityMemo[bytes, PrivateKey] = IdentityMemo(_load_pem, max_items=256)


def remembered_private_key_pem(key: PrivateKey) -> bytes:
    """:func:`private_key_pem`, remembered: :func:`private_key_from_pem` of these very bytes is ``key``."""
    pem = private_key_pem(key)
    _PEM_KEYS.remember(pem, key)
    return pem


def private_key_from_pem(pem: bytes) -> PrivateKey:
    """:func:`load_private_key_pem`, once per bytes object (a phone's credential is used at every
    CAPF session and encrypted config): the key made by :func:`remembered_private_key_pem`, or the
    one loaded the first time (bounded memo, see ``crypto._memo``)."""
    return _PEM_KEYS(pem)


def write_private_key(path: Path, key: PrivateKey, *, durable: bool = True) -> None:
    """Write ``key`` as PKCS#8 PEM with mode 0600, atomically (temp file + rename; the temp file is
    0600 from its first byte and removed if anything fails). ``durable=False`` skips the fsyncs
    (throw-away folders only: still atomic, no longer crash-safe)."""
    atomic_write(path, private_key_pem(key), mode=0o600, durable=durable, make_parents=True)
