"""Hypothesis strategies over the fuzz mutators, for users' own property tests.

Usage::

    from hypothesis import given
    from phoneemu.fuzz.strategies import mutated_itl

    @given(mutated_itl())
    def test_my_parser_rejects_cleanly(data: bytes) -> None:
        ...

Rules: each strategy draws a 64-bit seed and makes the mutant :func:`phoneemu.fuzz.engine.input_for`
would make from it (the same mutators, corpus and re-signing as ``phoneemu fuzz``), so a failing
example is reproducible and hypothesis shrinks towards small seeds. Hypothesis is a test
dependency: it is imported when a strategy is built, never when ``phoneemu fuzz`` runs.
"""

from __future__ import annotations

import random
from functools import lru_cache
from typing import TYPE_CHECKING

from phoneemu.fuzz.corpus import build_corpus
from phoneemu.fuzz.mutators import Mutant, Mutator

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = ["mutants", "mutated", "mutated_ctl", "mutated_enc", "mutated_itl", "mutated_sgn", "seed_files"]


@lru_cache(maxsize=32)
def _mutator(fmt: str, resign_ratio: float) -> Mutator:
    return Mutator(build_corpus(fmt), resign_ratio=resign_ratio)


def mutants(fmt: str, *, resign_ratio: float = 0.25) -> SearchStrategy[Mutant]:
    """:class:`~phoneemu.fuzz.mutators.Mutant` objects (bytes plus the ops that made them)."""
    from hypothesis import strategies as st

    mutator = _mutator(fmt, resign_ratio)
    return st.integers(min_value=0, max_value=2**64 - 1).map(lambda s: mutator.mutate(random.Random(s)))


def mutated(fmt: str, *, resign_ratio: float = 0.25) -> SearchStrategy[bytes]:
    """Mutated files of ``fmt`` (``itl``, ``ctl``, ``sgn``, ``enc``) as bytes."""
    return mutants(fmt, resign_ratio=resign_ratio).map(lambda m: m.data)


def mutated_itl(*, resign_ratio: float = 0.25) -> SearchStrategy[bytes]:
    return mutated("itl", resign_ratio=resign_ratio)


def mutated_ctl(*, resign_ratio: float = 0.25) -> SearchStrategy[bytes]:
    return mutated("ctl", resign_ratio=resign_ratio)


def mutated_sgn(*, resign_ratio: float = 0.25) -> SearchStrategy[bytes]:
    return mutated("sgn", resign_ratio=resign_ratio)


def mutated_enc(*, resign_ratio: float = 0.25) -> SearchStrategy[bytes]:
    return mutated("enc", resign_ratio=resign_ratio)


def seed_files(fmt: str) -> SearchStrategy[bytes]:
    """The valid, correctly signed seed files of ``fmt``."""
    from hypothesis import strategies as st

    return st.sampled_from(build_corpus(fmt).seeds)
