"""Review of the seeded RSA prime test (:func:`phoneemu.crypto.keys._probable_prime`): it computes 8 of the
24 Miller-Rabin rounds whose bases it draws only for candidates of 512 bits and more (8 rounds bound a
random 512-bit candidate's error at 2**-107, FIPS 186-5 appendix C.1); a smaller one — the 256-bit primes of
a seeded RSA 512, which a test's LabPki may make — computes every drawn round (8 bound it at only 2**-72).
Either way the bases drawn, so a seed's stream and every seeded key, are those of 24 rounds computed.

The small composite below is ``2011 * 4021`` (no factor under 2,000, so past the trial division): 5, 9, 12,
14, 16, 17, 25 and 38 are strong liars for it, 2 is a witness. A scripted generator hands the test those
bases in the order each case needs.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

import pytest

from phoneemu.crypto import keys
from phoneemu.crypto.keys import KeySpec, generate_key

COMPOSITE = 2011 * 4021
LIARS = (5, 9, 12, 14, 16, 17, 25, 38)  # strong liars for COMPOSITE
WITNESS = 2


class Scripted(random.Random):
    """``randrange`` hands out ``bases`` in order (then a witness), counting the draws."""

    def __init__(self, bases: Sequence[int]) -> None:
        super().__init__(0)
        self.bases = list(bases)
        self.drawn = 0

    def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
        assert stop is not None and start <= WITNESS
        self.drawn += 1
        return self.bases.pop(0) if self.bases else WITNESS


def _strong_liar(a: int, n: int) -> bool:
    """``a`` does not show ``n`` composite (one Miller-Rabin round, for the test's own check)."""
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    x = pow(a, d, n)
    if x in (1, n - 1):
        return True
    for _ in range(s - 1):
        x = x * x % n
        if x == n - 1:
            return True
    return False


def test_the_scripted_bases_are_what_they_claim() -> None:
    assert all(COMPOSITE % p for p in range(2, 2000))
    assert all(_strong_liar(a, COMPOSITE) for a in LIARS) and not _strong_liar(WITNESS, COMPOSITE)


def test_a_small_composite_passing_eight_rounds_is_caught_by_a_later_one() -> None:
    """Was: 8 rounds computed whatever the size, so a candidate under 512 bits that is a strong pseudoprime
    to its first 8 bases passed as prime (error bound 2**-72 for a seeded RSA 512's 256-bit primes, not the
    2**-100 claimed); now every drawn round is computed below 512 bits and the 9th base shows it composite."""
    rng = Scripted(LIARS)
    assert keys._probable_prime(COMPOSITE, rng) is False
    assert rng.drawn == len(LIARS) + 1  # (it stops at the witness, as with 24 computed)


@pytest.mark.parametrize("liars", range(len(LIARS)))
def test_a_composite_failing_an_early_round_draws_as_with_every_round_computed(liars: int) -> None:
    """A composite shown at round k (k < 8) draws k + 1 bases and stops: the stream of 24 rounds computed."""
    rng = Scripted(LIARS[:liars])
    assert keys._probable_prime(COMPOSITE, rng) is False
    assert rng.drawn == liars + 1


@pytest.mark.parametrize("bits", [256, 512, 1024])
def test_a_prime_draws_every_base(bits: int) -> None:
    """A prime (of a size computing every round, or 8) draws all 24 bases, as with 24 computed."""
    p = keys._seeded_prime(random.Random(f"rev3-s38:{bits}"), bits, 65537)
    drawn: list[int] = []

    class Counting(random.Random):
        def randrange(self, start: int, stop: int | None = None, step: int = 1) -> int:
            drawn.append(0)
            return super().randrange(start, stop, step)

    assert keys._probable_prime(p, Counting(1)) is True and len(drawn) == 24


def test_a_number_with_a_small_factor_draws_nothing() -> None:
    rng = Scripted(())
    assert keys._probable_prime(1999 * COMPOSITE, rng) is False and rng.drawn == 0


@pytest.mark.parametrize(("bits", "digest"), [(512, "97e37a7993f058ebe0d11f2c11ff0543"),
                                              (1024, "8c38f801ae4c3037769815aed82a1f11")])
def test_seeded_keys_are_those_every_round_computed_made(bits: int, digest: str) -> None:
    """The moduli as the code before 9d876df (24 rounds computed at every size) made them for these seeds."""
    key = keys._unsafe_seeded_rsa.__wrapped__(f"rev3-s38:{bits}", bits)
    n = key.private_numbers().public_numbers.n
    assert hashlib.sha256(n.to_bytes(bits // 8, "big")).hexdigest()[:32] == digest
    assert generate_key(KeySpec(kind="rsa", bits=bits), unsafe_seed=f"rev3-s38:{bits}").key_size == bits
