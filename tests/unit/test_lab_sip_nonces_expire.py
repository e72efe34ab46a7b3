"""The lab registrar forgets expired answered nonces before live ones (spec §G.13 "Nonce Validity Time";
:mod:`phoneemu.lab.sip_nonces`, ``_AnsweredNonces``).

Rules (ours): a nonce issued more than the validity (600 s) before now is stale whatever its answer
says, so its record serves nothing; each answer first forgets those (in issue order, whatever the order
of the answers), then the bounds forget live ones. Forgotten the usual way (its serial noted, a device
left with none dropped): were the clock set back, the nonce's answer is ``stale``, never accepted."""

from __future__ import annotations

from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.lab import sip_nonces
from phoneemu.lab.sip_nonces import _AnsweredNonces
from phoneemu.lab.sip_service import NONCE_VALIDITY_S, SipRegistrar
from tests.sip_helpers import challenge_for, digest_answer

A, B, C = "00112233CC01", "00112233CC02", "00112233CC03"
DEVICES = [A, B, C]
USERS = {mac: (f"u{mac}", "pw") for mac in DEVICES}


class Clock:
    """An injected lab clock (seconds)."""

    def __init__(self, now: int = 0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def test_a_busy_registrar_forgets_an_expired_nonce_before_a_live_one() -> None:
    """MAX_NONCES 3, lab clock injected. At t=0 A answers a nonce; at t=700 (A's expired) B answers two
    and C one — four in all. Was: A's dead record kept, B's first (live) nonce forgotten (B held the
    most), so B's next nonce count got ``stale=TRUE``, a round trip more. Now: A's is forgotten first,
    B's next count registers; A's answer is stale (expired) either way."""
    clock = Clock(0)
    registrar = SipRegistrar(USERS.get, clock=clock)
    with mock.patch.object(sip_nonces, "MAX_NONCES", 3):
        a = challenge_for(registrar, A)
        assert digest_answer(registrar, A, a, 1) == (200, "")
        clock.now = NONCE_VALIDITY_S + 100
        b1, b2, c1 = challenge_for(registrar, B), challenge_for(registrar, B), challenge_for(registrar, C)
        for mac, challenge in ((B, b1), (B, b2), (C, c1)):
            assert digest_answer(registrar, mac, challenge, 1) == (200, "")
        assert registrar._answered.get(A, a["nonce"]) is None
        assert registrar._answered.total == 3
        assert digest_answer(registrar, B, b1, 2) == (200, "")
        assert digest_answer(registrar, A, a, 2) == (401, "TRUE")


def test_an_expired_nonce_forgotten_is_never_accepted_when_the_clock_goes_back() -> None:
    """A's nonce answered at t=0 is forgotten once expired (B answers at t=700); the lab clock then set
    back to t=10: A's replay of its answer, or its next count, is ``stale=TRUE`` (its serial noted as
    forgotten), never registered."""
    clock = Clock(0)
    registrar = SipRegistrar(USERS.get, clock=clock)
    a = challenge_for(registrar, A)
    assert digest_answer(registrar, A, a, 1) == (200, "")
    clock.now = NONCE_VALIDITY_S + 100
    assert digest_answer(registrar, B, challenge_for(registrar, B), 1) == (200, "")
    assert registrar._answered.get(A, a["nonce"]) is None
    clock.now = 10
    assert digest_answer(registrar, A, a, 1) == (401, "TRUE")
    assert digest_answer(registrar, A, a, 2) == (401, "TRUE")


def test_with_a_clock_expired_nonces_go_in_issue_order_not_answer_order() -> None:
    """``_AnsweredNonces`` with an injected clock: B's nonce issued at 0 but answered after A's issued at
    100. At 601 only B's is expired (601 - 0 > 600) and forgotten — though answered later — and B,
    left with none, is dropped (its serial raised for all); at 700 A's stays (700 - 100 is not above
    600, the registrar's rule); at 701 it goes too. Was: no clock taken (TypeError), nothing expired."""
    clock = Clock(100)
    kept = _AnsweredNonces(clock=clock)
    kept.remember(A, "na", issued=100, count=1, serial=2)
    kept.remember(B, "nb", issued=0, count=1, serial=1)
    clock.now = 601
    kept.remember(C, "nc", issued=601, count=1, serial=3)
    assert (kept.get(B, "nb"), kept.get(A, "na"), kept.total) == (None, [100, 1, 2], 2)
    assert kept.forgotten_up_to(B) == 1 and kept.floor == 1
    clock.now = 700
    kept.remember(C, "nc", issued=601, count=2, serial=3)
    assert kept.get(A, "na") == [100, 1, 2]
    clock.now = 701
    kept.remember(C, "nc", issued=601, count=3, serial=3)
    assert (kept.get(A, "na"), kept.total, kept.forgotten_up_to(A)) == (None, 1, 2)


def test_without_a_clock_now_is_the_answered_nonces_issue_time() -> None:
    """No clock (the registrar's as built): an answer to a nonce issued at 700 shows the one issued at 0
    expired, not the one issued at 150; one issued at 60 (the clock set back) forgets nothing."""
    kept = _AnsweredNonces()
    kept.remember(A, "na", issued=0, count=1, serial=1)
    kept.remember(B, "nb", issued=150, count=1, serial=2)
    kept.remember(C, "nc", issued=700, count=1, serial=3)
    assert (kept.get(A, "na"), kept.total) == (None, 2)
    kept.remember(A, "na2", issued=60, count=1, serial=4)
    assert kept.get(B, "nb") is not None and kept.total == 3


steps = st.lists(st.tuples(st.sampled_from(DEVICES), st.integers(0, 5), st.integers(-200, 400),
                           st.integers(1, 3)), max_size=80)


@settings(max_examples=80, deadline=None)
@given(steps=steps)
def test_nothing_expired_stays_bounds_hold_and_forgotten_is_noted(
        steps: list[tuple[str, int, int, int]]) -> None:
    """Any answers (a device, one of six nonces, the clock moved by -200..400 s, a nonce count) under
    bounds that bite (2 per device, 4 in all): after each, no kept nonce is expired, the bounds hold, the
    count of kept nonces is right, the issue-order entries stay bounded, and every nonce answered and no
    longer kept has its serial noted as forgotten for its device (so never taken as a first answer)."""
    clock = Clock(1_000)
    kept = _AnsweredNonces(clock=clock)
    issued_at: dict[str, tuple[int, int]] = {}  # nonce -> (issue time, serial): fixed when first issued
    answered: set[tuple[str, str]] = set()
    with mock.patch.object(sip_nonces, "MAX_NONCES", 4), \
            mock.patch.object(sip_nonces, "MAX_NONCES_PER_DEVICE", 2):
        for device, which, moved, count in steps:
            clock.now = max(0, clock.now + moved)
            nonce = f"n{which}"
            issued, serial = issued_at.setdefault(nonce, (clock.now, len(issued_at)))
            kept.remember(device, nonce, issued=issued, count=count, serial=serial)
            answered.add((device, nonce))
            records = [(d, n, r) for d, of in kept._kept.items() for n, r in of.items()]
            others = [r for d, n, r in records if (d, n) != (device, nonce)]  # the answered one may be
            assert all(clock.now - r[0] <= NONCE_VALIDITY_S for r in others), records
            assert kept.total == len(records) <= 4
            assert all(len(of) <= 2 for of in kept._kept.values())
            assert len(kept._by_issue) <= 2 * 4 + 64 + 1
            for d, n in answered:
                if kept.get(d, n) is None:
                    assert issued_at[n][1] <= kept.forgotten_up_to(d), (d, n)
