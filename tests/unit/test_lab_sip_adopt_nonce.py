"""``SipRegistrar.adopt_nonce``: a nonce fixed in advance taken as one the registrar issued (spec §G.13).

Rules (:mod:`phoneemu.lab.sip_service`): an adopted nonce's first right answer registers; it is then
counted (a nonce count not above the last is a replay) and expires by the time it was adopted with, as
the registrar's own nonces; a nonce not adopted and not issued is refused; text a Digest header cannot
carry is refused with EncodeError naming the nonce."""

from __future__ import annotations

import pytest

from phoneemu.errors import EncodeError
from phoneemu.lab.sip_service import NONCE_VALIDITY_S, SipRegistrar
from phoneemu.protocols import sip

MAC = "001122334455"
USER, PASSWORD = "alice", "s3cret"
URI = "sip:10.0.0.1"
FIXED = "5eed0000000000000000000000000001"


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        return self.now


def _register(nonce: str, nc: int) -> sip.SipMessage:
    """The phone's REGISTER answering ``nonce`` rightly with nonce count ``nc``."""
    ncs, cnonce = f"{nc:08x}", "0a0b0c0d"
    response = sip.digest_response(username=USER, realm=sip.REALM, password=PASSWORD, method="REGISTER",
                                   uri=URI, nonce=nonce, nc=ncs, cnonce=cnonce, qop="auth")
    auth = sip.format_digest([("username", USER), ("realm", sip.REALM), ("nonce", nonce), ("uri", URI),
                              ("response", response), ("algorithm", "MD5"), ("qop", "auth"), ("nc", ncs),
                              ("cnonce", cnonce)], unquoted=frozenset({"algorithm", "qop", "nc"}))
    aor = f"<sip:SEP{MAC}@10.0.0.1>"
    return sip.parse_message(sip.build_message(f"REGISTER {URI} SIP/2.0", [
        ("Via", "SIP/2.0/TCP 10.0.0.9:5060;branch=z9hG4bK1"), ("From", f"{aor};tag=1"), ("To", aor),
        ("Call-ID", "adopt@x"), ("CSeq", f"{nc} REGISTER"), ("Authorization", auth)]))


def _registrar(outcomes: list[str], clock: _Clock) -> SipRegistrar:
    return SipRegistrar(lambda mac: (USER, PASSWORD) if mac == MAC else None, clock=clock,
                        on_log=lambda _peer, _device, outcome, _detail: outcomes.append(outcome))


def _status(registrar: SipRegistrar, nonce: str, nc: int) -> int | None:
    return sip.parse_message(registrar.answer(_register(nonce, nc), "10.0.0.9:5060")).status


def test_an_adopted_nonce_registers_then_counts_as_an_issued_one() -> None:
    """Without adoption the fixed nonce is one the registrar did not issue (its MAC does not check);
    adopted, its right answer registers, the same count again is a replay and a higher one registers."""
    outcomes: list[str] = []
    registrar = _registrar(outcomes, _Clock())
    assert _status(registrar, FIXED, 1) == 401
    registrar.adopt_nonce(FIXED, issued=1_000)
    assert [_status(registrar, FIXED, nc) for nc in (1, 1, 2)] == [200, 401, 200]
    assert outcomes == ["refused", "registered", "replayed", "registered"]


def test_an_adopted_nonce_expires_by_the_time_it_was_adopted_with() -> None:
    """Issued at 1,000 by its adoption: stale past the nonce validity of that time (401 stale=TRUE)."""
    outcomes: list[str] = []
    clock = _Clock()
    registrar = _registrar(outcomes, clock)
    registrar.adopt_nonce(FIXED, issued=1_000)
    clock.now = 1_000 + NONCE_VALIDITY_S + 1
    answer = sip.parse_message(registrar.answer(_register(FIXED, 1), "10.0.0.9:5060"))
    offered = sip.parse_digest(answer.header("WWW-Authenticate") or "")
    assert (answer.status, offered.get("stale"), outcomes) == (401, "TRUE", ["stale"])


@pytest.mark.parametrize("nonce", ["", 'a"b', "a\\b", "a\r\nX-Injected: 1", "é", "n" * 257])
def test_a_nonce_a_digest_header_cannot_carry_is_refused(nonce: str) -> None:
    registrar = _registrar([], _Clock())
    with pytest.raises(EncodeError, match="nonce") as caught:
        registrar.adopt_nonce(nonce, issued=1_000)
    assert caught.value.path == "nonce"
