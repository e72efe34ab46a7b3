"""The lab registrar keeps answered nonces per device (spec §G.13; :mod:`phoneemu.lab.sip_service`).

Rules: at most ``MAX_NONCES_PER_DEVICE`` answered nonces of a device (its least recently answered
forgotten first) and at most ``MAX_NONCES`` in all (forgotten first from the device holding the most):
one device answering nonces without end forgets only its own — another phone's answered nonce stays on
record (its replay is a replay, its next nonce count registers, no ``stale=TRUE`` round trip) — and
however many devices answer, memory stays bounded. A nonce answered twice with the same count is
refused; a forgotten one is ``stale``, never accepted."""

from __future__ import annotations

from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.lab import sip_nonces
from phoneemu.lab.sip_service import MAX_NONCES, MAX_NONCES_PER_DEVICE, SipRegistrar
from tests.sip_helpers import challenge_for, digest_answer, logging_registrar

X, Y = "00112233AA01", "00112233AA02"
#: the devices of the property (a few, so that the bounds bite)
DEVICES = [f"00112233BB{i:02X}" for i in range(6)]
USERS = {X: ("xavier", "pw-x"), Y: ("yvonne", "pw-y"), **{mac: (f"u{mac}", "pw") for mac in DEVICES}}


def _flood(registrar: SipRegistrar, mac: str, count: int) -> None:
    """``mac`` answers ``count`` fresh nonces rightly, each registering."""
    for _ in range(count):
        assert digest_answer(registrar, mac, challenge_for(registrar, mac), 1) == (200, "")


def test_one_devices_flood_of_answers_does_not_make_anothers_nonces_stale() -> None:
    """Y answers a nonce (registered) and holds another challenge unanswered; X then answers more nonces
    than the registrar keeps in all (MAX_NONCES + 1, so more than MAX_NONCES_PER_DEVICE too). Y's replay
    of its answer is still detected as a replay (``401`` without ``stale``), its next nonce count
    registers, and its answer to the challenge it held registers. Before (one shared store of
    MAX_NONCES): X's answers pushed Y's out — the replay and the next count got ``stale=TRUE``, and so
    did the held challenge's answer (issued before one forgotten): a round trip more each."""
    outcomes: list[tuple[str, str]] = []
    registrar = logging_registrar(USERS, outcomes)
    answered = challenge_for(registrar, Y)
    assert digest_answer(registrar, Y, answered, 1) == (200, "")
    held = challenge_for(registrar, Y)
    _flood(registrar, X, MAX_NONCES + 1)
    del outcomes[:]
    assert digest_answer(registrar, Y, answered, 1) == (401, "")  # the same count again: a replay
    assert digest_answer(registrar, Y, answered, 2) == (200, "")
    assert digest_answer(registrar, Y, held, 1) == (200, "")
    assert [o for d, o in outcomes if o != "challenged"] == ["replayed", "registered", "registered"]


def test_a_flooding_device_forgets_its_own_oldest_nonces_as_stale_never_accepted() -> None:
    """X's answered nonces past MAX_NONCES_PER_DEVICE: its earliest answer replayed is ``stale=TRUE``
    (forgotten, so it may have been answered: never taken), its latest still counts on."""
    registrar = logging_registrar(USERS, [])
    first = challenge_for(registrar, X)
    assert digest_answer(registrar, X, first, 1) == (200, "")
    _flood(registrar, X, MAX_NONCES_PER_DEVICE)
    last = challenge_for(registrar, X)
    assert digest_answer(registrar, X, last, 1) == (200, "")
    assert digest_answer(registrar, X, first, 1) == (401, "TRUE")
    assert digest_answer(registrar, X, first, 2) == (401, "TRUE")
    assert digest_answer(registrar, X, last, 1) == (401, "")
    assert digest_answer(registrar, X, last, 2) == (200, "")


def test_in_all_the_device_holding_the_most_forgets_first() -> None:
    """MAX_NONCES 6, MAX_NONCES_PER_DEVICE 6: Y answers one nonce, X twenty. Never more than 6 kept; X's
    are forgotten, Y's one stays (its replay a replay). Before: the least recently answered in all
    (Y's) went first, and its replay was ``stale``."""
    registrar = logging_registrar(USERS, [])
    with mock.patch.object(sip_nonces, "MAX_NONCES", 6), \
            mock.patch.object(sip_nonces, "MAX_NONCES_PER_DEVICE", 6, create=True):
        answered = challenge_for(registrar, Y)
        assert digest_answer(registrar, Y, answered, 1) == (200, "")
        _flood(registrar, X, 20)
        assert digest_answer(registrar, Y, answered, 1) == (401, "")
        assert registrar._answered.total == 6


def test_a_device_forgotten_whole_still_never_has_its_answer_accepted_again() -> None:
    """MAX_NONCES 2: A, B and C answer one nonce each, so A (the first to hold one) is forgotten whole.
    A's answer replayed is ``stale=TRUE``, not a first answer (the serials forgotten with a device are
    noted for every device); B's and C's still count."""
    a, b, c = DEVICES[:3]
    registrar = logging_registrar(USERS, [])
    with mock.patch.object(sip_nonces, "MAX_NONCES", 2):
        answered = {mac: challenge_for(registrar, mac) for mac in (a, b, c)}
        for mac, challenge in answered.items():
            assert digest_answer(registrar, mac, challenge, 1) == (200, "")
        assert digest_answer(registrar, a, answered[a], 1) == (401, "TRUE")
        assert digest_answer(registrar, b, answered[b], 1) == (401, "")
        assert digest_answer(registrar, c, answered[c], 2) == (200, "")


ops = st.lists(st.tuples(st.sampled_from(DEVICES), st.sampled_from(["new", "again", "next"]),
                         st.integers(0, 7)), max_size=60)


@settings(max_examples=60, deadline=None)
@given(ops=ops)
def test_bounded_and_no_answer_accepted_twice(ops: list[tuple[str, str, int]]) -> None:
    """Any interleaving of devices answering fresh nonces, earlier ones again (the same count: a replay)
    or earlier ones with the next count, under bounds small enough to bite (3 per device, 4 in all, so
    that devices are dropped too):
    never more than the bounds kept, and no (device, nonce, nonce count) registered twice; a nonce
    count not above one registered for that device and nonce is never registered."""
    registrar = logging_registrar(USERS, [])
    challenges: list[dict[str, str]] = []
    best: dict[tuple[str, str], int] = {}  # (device, nonce) -> the highest count registered
    with mock.patch.object(sip_nonces, "MAX_NONCES", 4), \
            mock.patch.object(sip_nonces, "MAX_NONCES_PER_DEVICE", 3, create=True):
        for mac, kind, pick in ops:
            if kind == "new" or not challenges:
                challenges.append(challenge_for(registrar, mac))
                challenge = challenges[-1]
            else:
                challenge = challenges[pick % len(challenges)]
            key = (mac, challenge["nonce"])
            nc = best.get(key, 0) + (1 if kind != "again" else 0) or 1
            status, _stale = digest_answer(registrar, mac, challenge, nc)
            if status == 200:
                assert nc > best.get(key, 0), (key, nc)
                best[key] = nc
            assert registrar._answered.total <= 4
            assert all(len(kept) <= 3 for kept in registrar._answered._kept.values())
