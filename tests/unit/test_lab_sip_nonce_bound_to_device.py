"""A registrar nonce is bound to the device it was issued to (:mod:`phoneemu.lab.sip_service` rules).

Devices may share a digest user (``lab digest --mac A --mac B --user u``), and the digest answer covers
no header naming the device: without the binding, a captured REGISTER answered by one device,
replayed with another device's name in From, was a nonce not on record *of that device* and so
registered — the same nonce and nonce count accepted twice (replay detection kept per device)."""

from __future__ import annotations

from phoneemu.lab.sip_service import MAX_NONCES_PER_DEVICE, SipRegistrar
from tests.sip_helpers import challenge_for, logging_registrar, registrar_reply, right_authorization

A, B = "00112233CC01", "00112233CC02"
SHARED = ("shared-user", "shared-pw")  # one digest user for both phones
USERS = {A: SHARED, B: SHARED}


def _answered(registrar: SipRegistrar, mac: str) -> str:
    """The Authorization header of ``mac``'s right answer (nonce count 1) to a fresh challenge, which
    registered."""
    auth = right_authorization(registrar, mac, challenge_for(registrar, mac), 1)
    assert registrar_reply(registrar, mac, auth)[0] == 200
    return auth


def test_an_answer_replayed_under_another_devices_name_is_refused() -> None:
    outcomes: list[tuple[str, str]] = []
    registrar = logging_registrar(USERS, outcomes)
    captured = _answered(registrar, A)
    del outcomes[:]
    assert registrar_reply(registrar, B, captured)[0] == 401
    assert outcomes == [(f"SEP{B}", "refused")]  # a nonce not issued to B
    assert registrar_reply(registrar, A, captured)[0] == 401  # A's own replay


def test_an_answer_forgotten_by_its_device_is_not_accepted_as_another_devices() -> None:
    """A answers more nonces than it keeps, so its first is forgotten (A's own replay is stale); the
    first answer replayed as B is refused, never registered."""
    registrar = logging_registrar(USERS, [])
    captured = _answered(registrar, A)
    for _ in range(MAX_NONCES_PER_DEVICE):
        _answered(registrar, A)
    assert registrar_reply(registrar, A, captured)[0] == 401
    assert registrar_reply(registrar, B, captured)[0] == 401


def test_each_device_sharing_the_digest_user_registers_with_its_own_nonces() -> None:
    registrar = logging_registrar(USERS, [])
    _answered(registrar, A)
    _answered(registrar, B)
