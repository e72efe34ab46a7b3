"""The lab registrar on a request whose dialog headers are not whole (RFC 3261 §8.1.1, §8.1.1.5;
:mod:`phoneemu.lab.sip_service`).

Rule: a request missing Via, From, To, Call-ID or CSeq, or whose CSeq is not a number below 2**31 and its
method, gets ``400`` naming it (an ACK nothing), logged ``malformed``, before anything else is looked at:
it is neither challenged nor registered nor passed to a call. Was: challenged (401) and, with a right
digest answer, registered (200), the answers without the missing header."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from phoneemu.lab.sip_service import SipRegistrar
from phoneemu.protocols import sip
from tests.sip_helpers import REGISTRAR_URI, lab_registrar

MAC = "0011223344E1"
_HEADERS = (("Via", "SIP/2.0/TCP 127.0.0.1:5;branch=z9hG4bK1"), ("From", f"<sip:SEP{MAC}@lab>;tag=1"),
            ("To", f"<sip:SEP{MAC}@lab>"), ("Call-ID", "c@x"), ("CSeq", "1 {method}"))


def _request(method: str, *, drop: str = "", cseq: str | None = None,
             uri: str = REGISTRAR_URI) -> sip.SipMessage:
    headers = [(k, v.format(method=method)) for k, v in _HEADERS if k != drop]
    if cseq is not None:
        headers = [(k, cseq if k == "CSeq" else v) for k, v in headers]
    return sip.parse_message(sip.build_message(f"{method} {uri} SIP/2.0", headers))


def _registrar(outcomes: list[tuple[str, str]], users: dict[str, tuple[str | None, str | None]] | None = None
               ) -> SipRegistrar:
    return lab_registrar(users if users is not None else {MAC: ("alice", "s3cret")}, outcomes)


@pytest.mark.parametrize("drop", ["Via", "From", "To", "Call-ID", "CSeq"])
@pytest.mark.parametrize("users", [{MAC: ("alice", "s3cret")}, {MAC: (None, None)}])
def test_a_register_missing_a_dialog_header_gets_400_naming_it(
        drop: str, users: dict[str, tuple[str | None, str | None]]) -> None:
    """Neither challenged (a digest user) nor registered (none)."""
    outcomes: list[tuple[str, str]] = []
    reply = sip.parse_message(_registrar(outcomes, users).answer(_request("REGISTER", drop=drop)))
    assert (reply.status, reply.reason) == (400, f"Bad Request (no {drop})")
    assert [outcome for _device, outcome in outcomes] == ["malformed"]


def test_an_empty_dialog_header_is_none() -> None:
    outcomes: list[tuple[str, str]] = []
    msg = sip.parse_message(sip.build_message(f"REGISTER {REGISTRAR_URI} SIP/2.0", [
        ("Via", ""), *[(k, v.format(method="REGISTER")) for k, v in _HEADERS if k != "Via"]]))
    reply = sip.parse_message(_registrar(outcomes).answer(msg))
    assert (reply.status, reply.reason) == (400, "Bad Request (no Via)")


@pytest.mark.parametrize("cseq", ["-1 REGISTER", "abc REGISTER", "1", "2147483648 REGISTER",
                                  "99999999999999999999999 REGISTER", "1 INVITE"])
def test_a_register_whose_cseq_is_not_a_number_and_its_method_gets_400(cseq: str) -> None:
    outcomes: list[tuple[str, str]] = []
    reply = sip.parse_message(_registrar(outcomes).answer(_request("REGISTER", cseq=cseq)))
    assert reply.status == 400 and reply.reason.startswith("Bad Request (CSeq "), reply
    assert reply.header("CSeq") == cseq  # echoed as sent (RFC 3261 §8.2.6.2)
    assert outcomes == [(f"SEP{MAC}", "malformed")]


def test_a_whole_register_is_still_challenged() -> None:
    outcomes: list[tuple[str, str]] = []
    reply = sip.parse_message(_registrar(outcomes).answer(_request("REGISTER", cseq="2147483647 REGISTER")))
    assert reply.status == 401 and outcomes == [(f"SEP{MAC}", "challenged")]


def _unreachable(*_args: object, **_kwargs: object) -> object:
    raise AssertionError("a malformed request reached the media resources")


@pytest.mark.parametrize(("method", "answered"), [("INVITE", True), ("BYE", True), ("ACK", False)])
def test_a_call_request_missing_a_dialog_header_never_reaches_the_call(method: str, answered: bool) -> None:
    """INVITE and BYE get 400; an ACK (never answered) nothing; the media resources see none of them."""
    outcomes: list[tuple[str, str]] = []
    media = SimpleNamespace(invite=_unreachable, bye=_unreachable, ack=_unreachable)
    registrar = SipRegistrar({MAC: (None, None)}.get, media=media,  # type: ignore[arg-type]
                             on_log=lambda _peer, device, outcome, _why: outcomes.append((device, outcome)))
    raw = asyncio.run(registrar.respond(_request(method, drop="Call-ID", uri="sip:moh@lab")))
    if answered:
        assert sip.parse_message(raw).status == 400
    else:
        assert raw == b""
    assert outcomes == [(f"SEP{MAC}", "malformed")]
