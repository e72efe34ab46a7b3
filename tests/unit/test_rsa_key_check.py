"""Our check of a loaded RSA private key (``keys._rsa_key_problem``), in place of OpenSSL's slow one."""

from __future__ import annotations

import math

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from phoneemu.crypto import keys
from phoneemu.errors import DecodeError
from tests.helpers import pkcs1_private_key_pem


@pytest.fixture(scope="module")
def good() -> rsa.RSAPrivateNumbers:
    key = keys.generate_key(keys.KeySpec(kind="rsa", bits=1024), unsafe_seed="rsa-key-check")
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.private_numbers()


def _pem(numbers: rsa.RSAPrivateNumbers) -> bytes:
    """The PEM of ``numbers`` as they are (cryptography told not to check them)."""
    return keys.private_key_pem(numbers.private_key(unsafe_skip_rsa_key_validation=True))


def _with(numbers: rsa.RSAPrivateNumbers, **changes: int) -> rsa.RSAPrivateNumbers:
    fields = {"p": numbers.p, "q": numbers.q, "d": numbers.d, "dmp1": numbers.dmp1, "dmq1": numbers.dmq1,
              "iqmp": numbers.iqmp}
    fields.update(changes)
    return rsa.RSAPrivateNumbers(public_numbers=numbers.public_numbers, **fields)


def test_a_sound_key_loads_and_is_the_same_key(good: rsa.RSAPrivateNumbers) -> None:
    key = keys.load_private_key_pem(_pem(good))
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.private_numbers() == good


@pytest.mark.parametrize(("change", "why"), [
    (lambda n: {"d": n.d + 2}, "private exponent d is not the inverse of e"),
    (lambda n: {"dmp1": n.dmp1 ^ 2}, r"CRT values \(dmp1, dmq1, iqmp\) do not match"),
    (lambda n: {"dmq1": n.dmq1 ^ 2}, r"CRT values \(dmp1, dmq1, iqmp\) do not match"),
    (lambda n: {"iqmp": n.iqmp ^ 2}, r"CRT values \(dmp1, dmq1, iqmp\) do not match"),
])
def test_a_damaged_part_is_named(good: rsa.RSAPrivateNumbers, change: object, why: str) -> None:
    bad = _with(good, **change(good))  # type: ignore[operator]
    expected = rf"^k\.pem: cannot load private key: invalid RSA private key: .*{why}"
    with pytest.raises(DecodeError, match=expected):
        keys.load_private_key_pem(_pem(bad), source="k.pem")


def test_primes_that_do_not_make_the_modulus_are_refused(good: rsa.RSAPrivateNumbers) -> None:
    """p and q swapped for another pair: cryptography still builds the key; our check does not accept it."""
    other = keys.generate_key(keys.KeySpec(kind="rsa", bits=1024), unsafe_seed="rsa-key-check-2")
    assert isinstance(other, rsa.RSAPrivateKey)
    o = other.private_numbers()
    pub = good.public_numbers
    pem = pkcs1_private_key_pem(pub.n, pub.e, good.d, o.p, o.q, o.dmp1, o.dmq1, o.iqmp)
    with pytest.raises(DecodeError, match="do not multiply to the modulus n"):
        keys.load_private_key_pem(pem, source="k.pem")


def _prime(bits: int, seed: str) -> int:
    """A prime of ``bits`` bits (half of a seeded RSA key of twice the size)."""
    key = keys.generate_key(keys.KeySpec(kind="rsa", bits=2 * bits), unsafe_seed=seed)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key.private_numbers().p


def _numbers(p: int, q: int) -> rsa.RSAPrivateNumbers:
    """Numbers whose every part agrees with ``p`` and ``q``, prime or not."""
    e, n = 65537, p * q
    d = pow(e, -1, math.lcm(p - 1, q - 1))
    return rsa.RSAPrivateNumbers(p=p, q=q, d=d, dmp1=d % (p - 1), dmq1=d % (q - 1), iqmp=pow(q, -1, p),
                                 public_numbers=rsa.RSAPublicNumbers(e, n))


def test_a_composite_prime_whose_parts_agree_fails_the_test_signature() -> None:
    """Every part consistent with p and q, but p is not prime: only the test signature tells."""
    for i in range(20):  # bounded: e must be invertible modulo p-1 and q-1
        p = _prime(256, f"r{i}") * _prime(256, f"s{i}")  # composite, 512 bits
        q = _prime(512, f"q{i}")
        if math.gcd(65537, (p - 1) * (q - 1)) == 1:
            break
    with pytest.raises(DecodeError, match="signs what its own public key does not verify"):
        keys.load_private_key_pem(_pem(_numbers(p, q)), source="k.pem")


def test_a_modulus_too_small_to_sign_is_refused() -> None:
    """384 bits: too small for a PKCS#1 SHA-256 signature (the size is refused before any arithmetic, so
    p and q need not be prime here, only consistent)."""
    p, q = (next(c for c in range(base + 1, base + 10_000, 2) if math.gcd(65537, c - 1) == 1)
            for base in (1 << 191, 1 << 192))
    numbers = _numbers(p, q)
    with pytest.raises(DecodeError, match="it cannot sign"):
        keys.load_private_key_pem(_pem(numbers), source="k.pem")
