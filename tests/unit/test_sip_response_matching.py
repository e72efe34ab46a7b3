"""The phone takes a SIP response for its request's answer only when it is of the request's transaction
(RFC 3261 §17.1.3, §8.1.3.3; :func:`phoneemu.phone.sip.exchange`): one Via whose branch is the request's,
the request's Call-ID and CSeq (number and method). A 200 of another Call-ID or branch, or without CSeq
or Via, was taken for the REGISTER's answer (CSeq alone was compared, a response without it "lenient"):
the phone registered on a 200 that was not its REGISTER's (a fuzz campaign's finding)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from phoneemu.errors import DecodeError, TransportError
from phoneemu.fuzz.sipmsg import _Connection as _Sink  # a writer keeping what the phone writes
from phoneemu.phone.sip import SipResult, _Register, _transaction_of_response, exchange
from phoneemu.protocols import sip
from tests.helpers import register_with, sip_line_store
from tests.sip_helpers import answer_requests

MAC = "0011223344AB"

#: a response to the phone's REGISTER made not its own: each changes what RFC 3261 matches by
Forge = Callable[[sip.SipMessage], bytes]


def _ok(msg: sip.SipMessage, *, drop: str = "", change: tuple[str, str] | None = None,
        extra: list[tuple[str, str]] | None = None) -> bytes:
    """A 200 echoing ``msg`` (RFC 3261 §8.2.6.2), but header ``drop`` left out, ``change`` (name, value)
    said otherwise, ``extra`` headers added after."""
    out = [(k, v) for k in ("Via", "From", "To", "Call-ID", "CSeq") if (v := msg.header(k)) is not None]
    out = [(k, change[1] if change is not None and k == change[0] else v) for k, v in out if k != drop]
    return sip.build_message("SIP/2.0 200 OK", [*out, *(extra or [])])


def _other_branch(msg: sip.SipMessage) -> str:
    via = msg.header("via") or ""
    assert ";branch=z9hG4bK" in via, via  # the phone's REGISTER carries an RFC 3261 branch (magic cookie)
    return via.replace(";branch=z9hG4bK", ";branch=z9hG4bKforged")


FORGED: dict[str, Forge] = {
    "other-call-id": lambda m: _ok(m, change=("Call-ID", "forged@elsewhere")),
    "other-branch": lambda m: _ok(m, change=("Via", _other_branch(m))),
    "no-cseq": lambda m: _ok(m, drop="CSeq"),
    "no-via": lambda m: _ok(m, drop="Via"),
    "no-call-id": lambda m: _ok(m, drop="Call-ID"),
    "other-cseq-method": lambda m: _ok(m, change=("CSeq", "1 INVITE")),
    "two-vias": lambda m: _ok(m, extra=[("Via", "SIP/2.0/TCP 10.9.9.9:5060;branch=z9hG4bKproxy")]),
    "two-vias-in-one": lambda m: _ok(m, change=("Via", f"{m.header('via')}, SIP/2.0/TCP 10.9.9.9;branch=z9")),
    "via-without-branch": lambda m: _ok(m, change=("Via", (m.header("via") or "").partition(";")[0])),
    "via-then-an-empty-one": lambda m: _ok(m, change=("Via", f"{m.header('via')} ,")),
    "other-sent-by": lambda m: _ok(m, change=("Via", "SIP/2.0/TCP 10.9.9.9:5060;" + (
        m.header("via") or "").partition(";")[2])),
    "no-sent-by": lambda m: _ok(m, change=("Via", ";" + (m.header("via") or "").partition(";")[2])),
}


def _register(answer: Callable[[sip.SipMessage], bytes], *, timeout: float) -> SipResult:
    """Register phone MAC (digest user alice) with a registrar on loopback answering each REGISTER with
    ``answer``."""
    store = sip_line_store(MAC, "alice", "s3cret")

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await answer_requests(r, w, answer)

    async def body() -> SipResult:
        result, _tasks = await register_with(serve, store, MAC, timeout=timeout, wait=2)
        res: SipResult = result
        return res

    return asyncio.run(body())


@pytest.mark.parametrize("forge", FORGED.values(), ids=list(FORGED))
def test_a_200_of_another_transaction_alone_is_no_registration(forge: Forge) -> None:
    """The forged 200 alone: skipped, counted as such; the phone waits on and times out (unreachable)."""
    res = _register(forge, timeout=0.5)
    assert (res.registered, res.rule) == (False, "G.13-unreachable"), res.reason
    assert "1 response(s) of another transaction skipped" in res.reason, res.reason


@pytest.mark.parametrize("forge", FORGED.values(), ids=list(FORGED))
def test_a_refusal_of_another_transaction_before_the_real_200_is_skipped(forge: Forge) -> None:
    """A forged 403 in front of the REGISTER's own 200 (same segment) is not the answer: the real one is."""
    def answer(msg: sip.SipMessage) -> bytes:
        forged = forge(msg).replace(b"SIP/2.0 200 OK", b"SIP/2.0 403 Forbidden", 1)
        return forged + sip.response_to(msg, 200, "OK")

    res = _register(answer, timeout=2.0)
    assert (res.registered, res.rule) == (True, "G.13-registered"), res.reason


def _exchange(request: bytes, answers: bytes, *, timeout: float = 0.3) -> sip.SipMessage:
    """``exchange`` of ``request`` over an in-memory connection that says ``answers`` (then nothing)."""
    async def body() -> sip.SipMessage:
        reader = asyncio.StreamReader()
        reader.feed_data(answers)
        return await exchange(reader, _Sink(), request, timeout=timeout,  # type: ignore[arg-type]
                              stream=sip.SipStream())
    return asyncio.run(body())


def test_exchange_returns_the_response_of_its_own_transaction_only() -> None:
    """Sans connection: the forged ones of every kind in front, the request's own 200 is returned (its
    Via with what a server may add: ``received``, ``rport``, another spelling of the same sent-by)."""
    reg = _Register("0011223344AB", "127.0.0.1", "tcp", "127.0.0.1:40000")
    request = reg.request()
    msg = sip.parse_message(request)
    forged = b"".join(forge(msg) for forge in FORGED.values())
    via = (msg.header("via") or "").replace(
        "SIP/2.0/TCP 127.0.0.1:40000;", "sip / 2.0 / tcp  127.0.0.1:40000 ;received=127.0.0.1;rport=40000;")
    assert via != msg.header("via")
    own = _ok(msg, change=("Via", via)).replace(b"200 OK", b"200 Own", 1)
    got = _exchange(request, forged + own)
    assert (got.status, got.reason) == (200, "Own")
    with pytest.raises(TransportError, match=f"{len(FORGED)} response\\(s\\) of another transaction skipped"):
        _exchange(request, forged)


def test_transaction_keys_compare_branch_call_id_and_cseq() -> None:
    """The key of a response: its one Via's branch and sent-by, its Call-ID, its CSeq number (a number:
    01 is 1) and method; None for one missing any, a CSeq that is not a number and a method, several
    Vias or an empty one."""
    def key(*headers: tuple[str, str]) -> tuple[str, str, str, int, str] | None:
        return _transaction_of_response(sip.parse_message(
            sip.build_message("SIP/2.0 200 OK", list(headers))))

    via, cid = ("Via", "SIP/2.0/TCP 127.0.0.1:5;rport;BRANCH=z9hG4bKa1"), ("Call-ID", "c@x")
    assert key(via, cid, ("CSeq", "01\tREGISTER")) == ("z9hG4bKa1", "sip/2.0/tcp127.0.0.1:5", "c@x", 1,
                                                       "REGISTER")
    assert key(("v", 'SIP/2.0/TCP h;branch=z9hG4bKa1;x="a,b"'), ("i", "c@x"), ("CSeq", "2 BYE")) == \
        ("z9hG4bKa1", "sip/2.0/tcph", "c@x", 2, "BYE")  # compact forms; a comma quoted is no second Via
    for bad in [(via, cid), (via, ("CSeq", "1 REGISTER")), (cid, ("CSeq", "1 REGISTER")),
                (via, cid, ("CSeq", "REGISTER")), (via, cid, ("CSeq", "x REGISTER")),
                (via, cid, ("CSeq", "1 REGISTER extra")), (via, via, cid, ("CSeq", "1 REGISTER")),
                (("Via", "SIP/2.0/TCP h;branch="), cid, ("CSeq", "1 REGISTER")),
                (("Via", "SIP/2.0/TCP h;branch=z9hG4bKa1,"), cid, ("CSeq", "1 REGISTER"))]:
        assert key(*bad) is None, bad


def test_the_registers_branches_carry_the_magic_cookie_and_differ() -> None:
    """Each REGISTER is a transaction of its own (RFC 3261 §8.1.1.7): a branch starting z9hG4bK, not the
    previous one's; the Call-ID stays (one registration, §10.2)."""
    reg = _Register("0011223344AB", "127.0.0.1", "tcp", "127.0.0.1:40000")
    first, second = (_transaction_of_response(sip.parse_message(reg.request())) for _ in range(2))
    assert first is not None and second is not None
    assert first[0].startswith("z9hG4bK") and second[0].startswith("z9hG4bK") and first[0] != second[0]
    assert first[1:3] == second[1:3] and (first[3], second[3]) == (1, 2) and first[4] == "REGISTER"


def test_the_fuzz_oracle_finds_a_phone_registering_on_a_200_of_another_transaction(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The sip-response fuzz target's REGISTERs are the seeds' (Call-ID, branches), so every seed still
    registers; its oracle now wants the 200 of one of the phone's REGISTERs: the lenient phone planted
    back (any response taken as the request's) registering on a 200 of another Call-ID is a finding."""
    from phoneemu.fuzz.corpus import build_corpus
    from phoneemu.fuzz.sipmsg import SipAcceptanceError, sip_callable
    from phoneemu.phone import sip as phone_sip

    c = build_corpus("sip-response")
    ok = c.seeds[c.names.index("ok")]
    target = sip_callable("sip-response")
    for seed in c.seeds:
        target(seed)  # registers (or is refused: "forbidden") without a finding
    forged = ok.replace(b"Call-ID: fuzz0001@", b"Call-ID: forged@")
    assert forged != ok
    with pytest.raises(DecodeError, match="no registration"):
        target(forged)  # the phone: skipped, the registrar closed without its answer
    monkeypatch.setattr(phone_sip, "_transaction_of_response", lambda _msg: ("any", "any", "any", 0, "any"))
    monkeypatch.setattr(phone_sip, "_transaction_of", lambda _request: ("any", "any", "any", 0, "any"))
    with pytest.raises(SipAcceptanceError, match="answering one of its REGISTERs"):
        sip_callable("sip-response")(forged)
