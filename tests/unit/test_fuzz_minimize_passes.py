"""The minimiser of ``phoneemu fuzz`` (phoneemu.fuzz.minimize): a time-driven budget (up to
MAX_ATTEMPTS within the time allowance) and passes that cut the front and remove chunks at
power-of-two sizes — a fast in-process target used up the old 300 attempts in a few milliseconds of
its 20 s and kept thousands of bytes where a few crash."""

from __future__ import annotations

import json
import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.errors import DecodeError
from phoneemu.fuzz.engine import FuzzConfig, fuzz
from phoneemu.fuzz.minimize import MAX_ATTEMPTS, TIME_LIMIT, minimize
from phoneemu.fuzz.mutators import Mutant, Mutator
from phoneemu.fuzz.targets import PythonTarget

DEAD = b"\xde\xad"
BLOCK = 16  # an AES block: an .enc.sgn body is whole blocks (spec §C.3)
MARKS = bytes(range(48))


def _noise(size: int, seed: int) -> bytes:
    """Random bytes without 0xDE, 0xAD or any byte below 64 (so no marker by chance)."""
    rng = random.Random(seed)
    return bytes(rng.randrange(64, 256) for _ in range(size)).replace(b"\xde", b"x").replace(b"\xad", b"y")


def dead_anywhere(data: bytes) -> None:
    """A toy parser crashing when the input contains 0xDEAD anywhere."""
    if DEAD in data:
        raise IndexError("dead")
    raise DecodeError("rejected", fmt="toy", offset=0)


def dead_in_whole_blocks(data: bytes) -> None:
    """A toy decryptor: whole AES blocks only (else rejected); crashes on 0xDEAD in the plaintext."""
    if len(data) % BLOCK:
        raise DecodeError("not whole blocks", fmt="toy", offset=len(data))
    dead_anywhere(data)


def marks_in_order(data: bytes) -> None:
    """A toy parser crashing when its bytes below 64 are exactly 0..47 in order (scattered in the input)."""
    if bytes(b for b in data if b < 64) == MARKS:
        raise IndexError("all marks")
    raise DecodeError("rejected", fmt="toy", offset=0)


class _OneInput(Mutator):
    """Every mutant is ``data`` (the fuzz loop run on one chosen input)."""

    def __init__(self, data: bytes) -> None:  # no corpus needed
        self.data = data

    def mutate(self, rng: random.Random) -> Mutant:
        return Mutant(data=self.data, seed_index=0, ops=("chosen",), resigned=False)


def _minimised_by_the_fuzz_loop(tmp_path: Path, func: object, data: bytes) -> bytes:
    """The minimized.bin of the one finding of a one-run fuzz loop with the default budget."""
    assert callable(func)
    report = fuzz(FuzzConfig(fmt="enc", runs=1, out=tmp_path), PythonTarget(func), _OneInput(data))
    (finding,) = report.findings.values()
    assert finding.directory is not None
    info = json.loads((finding.directory / "info.json").read_text())
    mini = (finding.directory / "minimized.bin").read_bytes()
    assert info["minimized_size"] == len(mini)
    return mini


def test_the_default_budget_is_thousands_of_attempts_within_the_time_allowance() -> None:
    assert MAX_ATTEMPTS >= 5000 and TIME_LIMIT == 20.0
    assert FuzzConfig(fmt="itl", runs=1).minimize_attempts == MAX_ATTEMPTS
    assert FuzzConfig(fmt="itl", runs=1).minimize_time == TIME_LIMIT


def test_a_crash_on_two_bytes_anywhere_is_minimised_to_them(tmp_path: Path) -> None:
    data = _noise(5183, 1)
    data = data[:3456] + DEAD + data[3458:]
    assert _minimised_by_the_fuzz_loop(tmp_path, dead_anywhere, data) == DEAD


def test_a_block_aligned_crash_is_minimised_to_one_block(tmp_path: Path) -> None:
    """Was 3,840 of 5,184 bytes (the 300 attempts gone on cuts that broke the block alignment)."""
    data = _noise(5184, 2)
    data = data[:3456] + DEAD + data[3458:]
    mini = _minimised_by_the_fuzz_loop(tmp_path, dead_in_whole_blocks, data)
    assert len(mini) == BLOCK and DEAD in mini


def test_scattered_bytes_are_all_that_is_left_with_the_default_budget(tmp_path: Path) -> None:
    """48 bytes needed, scattered over 5,000: some 800 attempts of a fast target (was 604 bytes left
    after 300 attempts)."""
    data = bytearray(_noise(5000, 3))
    for mark, pos in zip(MARKS, sorted(random.Random(3).sample(range(5000), len(MARKS))), strict=True):
        data[pos] = mark
    assert _minimised_by_the_fuzz_loop(tmp_path, marks_in_order, bytes(data)) == MARKS


def test_a_crash_of_the_empty_input_is_minimised_to_it() -> None:
    assert minimize(_noise(300, 4), lambda b: True) == b""


def test_an_input_that_cannot_shrink_is_kept_within_the_budget() -> None:
    data = _noise(700, 5)
    calls: list[bytes] = []

    def only_itself(candidate: bytes) -> bool:
        calls.append(candidate)
        return candidate == data

    assert minimize(data, only_itself, max_attempts=1000) == data
    assert len(calls) <= 1000


@settings(max_examples=60, deadline=None)
@given(size=st.integers(min_value=2, max_value=3000), where=st.floats(min_value=0.0, max_value=1.0),
       seed=st.integers(min_value=0, max_value=2**16), attempts=st.integers(min_value=1, max_value=400))
def test_minimising_keeps_the_crash_never_grows_and_stays_in_budget(size: int, where: float, seed: int,
                                                                    attempts: int) -> None:
    noise = _noise(size, seed)
    pos = int(where * (size - 2))
    data = noise[:pos] + DEAD + noise[pos + 2:]
    calls = 0

    def has_dead(candidate: bytes) -> bool:
        nonlocal calls
        calls += 1
        return DEAD in candidate

    out = minimize(data, has_dead, max_attempts=attempts)
    assert DEAD in out and len(out) <= len(data) and calls <= attempts
    assert minimize(data, has_dead) == DEAD  # the default budget: all the way
