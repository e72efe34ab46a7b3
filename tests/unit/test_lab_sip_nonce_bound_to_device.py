"""A registrar nonce is bound to the device it was issued to (:mod:`phoneemu.lab.sip_service` rules).

Devices may share a digest user (``lab digest --mac A --mac B --user u``), and the digest answer covers
no header naming the device: without the binding, a captured REGISTER answered by one device,
replayed with another device's name in From, was a nonce not on record *of that device* and so
registered — the same nonce and nonce count accepted twice (replay detection kept per device)."""

from __future__ import annotations

from phoneemu.lab.sip_service import MAX_NONCES_PER_DEVICE, SipRegistrar
from phoneemu.phone.sip import authorization
from phoneemu.protocols import sip

URI = "sip:lab"
A, B = "00112233CC01", "00112233CC02"
SHARED = ("shared-user", "shared-pw")  # one digest user for both phones
USERS = {A: SHARED, B: SHARED}


def _registrar(outcomes: list[tuple[str, str]]) -> SipRegistrar:
    return SipRegistrar(USERS.get, clock=lambda: 1_000,
                        on_log=lambda _peer, device, outcome, _why: outcomes.append((device, outcome)))


def _register(mac: str, auth: str | None = None) -> sip.SipMessage:
    aor = f"<sip:SEP{mac}@lab>"
    headers = [("Via", "SIP/2.0/TCP 127.0.0.1:5;branch=z9hG4bK1"), ("From", f"{aor};tag=1"), ("To", aor),
               ("Call-ID", "c@x"), ("CSeq", "1 REGISTER")]
    if auth is not None:
        headers.append(("Authorization", auth))
    return sip.parse_message(sip.build_message(f"REGISTER {URI} SIP/2.0", headers))


def _answered(registrar: SipRegistrar, mac: str) -> str:
    """The Authorization header of ``mac``'s right answer (nonce count 1) to a fresh challenge, which
    registered."""
    reply = sip.parse_message(registrar.answer(_register(mac)))
    challenge = sip.parse_digest(reply.header("WWW-Authenticate") or "")
    auth = authorization(challenge, *SHARED, 1, method="REGISTER", uri=URI)
    assert sip.parse_message(registrar.answer(_register(mac, auth))).status == 200
    return auth


def test_an_answer_replayed_under_another_devices_name_is_refused() -> None:
    outcomes: list[tuple[str, str]] = []
    registrar = _registrar(outcomes)
    captured = _answered(registrar, A)
    del outcomes[:]
    assert sip.parse_message(registrar.answer(_register(B, captured))).status == 401
    assert outcomes == [(f"SEP{B}", "refused")]  # a nonce not issued to B
    assert sip.parse_message(registrar.answer(_register(A, captured))).status == 401  # A's own replay


def test_an_answer_forgotten_by_its_device_is_not_accepted_as_another_devices() -> None:
    """A answers more nonces than it keeps, so its first is forgotten (A's own replay is stale); the
    first answer replayed as B is refused, never registered."""
    registrar = _registrar([])
    captured = _answered(registrar, A)
    for _ in range(MAX_NONCES_PER_DEVICE):
        _answered(registrar, A)
    assert sip.parse_message(registrar.answer(_register(A, captured))).status == 401
    assert sip.parse_message(registrar.answer(_register(B, captured))).status == 401


def test_each_device_sharing_the_digest_user_registers_with_its_own_nonces() -> None:
    registrar = _registrar([])
    _answered(registrar, A)
    _answered(registrar, B)
