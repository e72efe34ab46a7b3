"""The lab registrar's nonces against a client flooding it with unauthenticated REGISTERs (spec §G.13).

Rules (:mod:`phoneemu.lab.sip_service`): a challenge keeps nothing (a nonce carries its issue time and
serial number under the registrar's HMAC), so a flood of challenges pushes out no phone's nonce — an
honest phone registers in as many round trips as without it; only answered nonces are kept, at most
``MAX_NONCES``, and a right answer to a nonce that may have been forgotten is ``stale``, never taken."""

from __future__ import annotations

import asyncio

import pytest

from phoneemu.lab import sip_nonces
from phoneemu.lab.sip_service import MAX_NONCES, NONCE_VALIDITY_S
from phoneemu.net.tls import TlsServer
from phoneemu.phone.events import EventLog
from phoneemu.phone.sip import DigestCache, SipResult, register
from phoneemu.protocols import sip
from tests.helpers import run, sip_line_store
from tests.sip_helpers import (
    LabClock,
    challenge_for,
    digest_answer,
    lab_registrar,
    logging_registrar,
    next_message,
    register_request,
    right_authorization,
)

HOST = "127.0.0.1"
MAC = "0011223344EE"
OTHER = "0011223344EF"
USERS = {MAC: ("alice", "s3cret"), OTHER: ("bob", "hunter22")}
#: more challenges than the registrar ever kept nonces for (it forgot the oldest past MAX_NONCES)
FLOOD = MAX_NONCES + 50


def _register(device: str, *, call_id: str = "c@x", cseq: int = 1, auth: str | None = None) -> bytes:
    """A REGISTER naming ``device`` as a phone writes it on its connection (its Call-ID and CSeq)."""
    headers = [("Via", f"SIP/2.0/TCP {HOST}:5;branch=z9hG4bK{cseq}"), ("From", f"<sip:{device}@lab>;tag=1"),
               ("To", f"<sip:{device}@lab>"), ("Call-ID", call_id), ("CSeq", f"{cseq} REGISTER")]
    if auth is not None:
        headers.append(("Authorization", auth))
    return sip.build_message("REGISTER sip:lab SIP/2.0", headers)


async def _answers(reader: asyncio.StreamReader, stream: sip.SipStream, count: int) -> list[sip.SipMessage]:
    """The next ``count`` responses of a connection (each read bounded by 5 s)."""
    got: list[sip.SipMessage] = []
    while len(got) < count:
        msg = await next_message(reader, stream)
        assert msg is not None, f"the registrar closed after {len(got)} of {count} answers"
        got.append(msg)
    return got


async def _flood(port: int, device: str, count: int) -> None:
    """``count`` unauthenticated REGISTERs naming ``device`` on one connection of their own, each answered
    (a 401 with a fresh nonce) before the flood ends."""
    reader, writer = await asyncio.open_connection(HOST, port)
    stream = sip.SipStream()
    try:
        batch = 500
        for first in range(0, count, batch):
            n = min(batch, count - first)
            writer.write(b"".join(_register(device, call_id="flood", cseq=first + i + 1) for i in range(n)))
            await writer.drain()
            assert {m.status for m in await _answers(reader, stream, n)} == {401}
    finally:
        writer.close()


def _phone_round(log: list[tuple[str, str]], since: int) -> list[str]:
    return [outcome for device, outcome in log[since:] if device == f"SEP{MAC}"]


@pytest.mark.parametrize("flooded", [False, True])
def test_a_flood_of_challenges_does_not_cost_a_phone_a_round_trip(flooded: bool) -> None:
    """The phone registers (challenged, then registered), then again on a new connection answering its
    cached challenge at once (RFC 2617 §3.2.2: the next nonce count): one REGISTER, no new challenge —
    whether or not another connection asked for MAX_NONCES + 50 challenges (naming the phone's own device)
    in between. Before: every challenge kept its nonce and the oldest went past MAX_NONCES, so the phone's
    was forgotten: "a nonce this registrar did not issue", a 401 and a second REGISTER."""
    log: list[tuple[str, str]] = []
    registrar = logging_registrar(USERS, log)
    store = sip_line_store(MAC, "alice", "s3cret")
    cache = DigestCache()

    async def main() -> tuple[SipResult, SipResult, list[str]]:
        async with TlsServer(registrar, None, HOST, 0) as srv:
            async def phone() -> SipResult:
                return await register(store, store.profile, MAC, HOST, sip_port=srv.port, sips_port=1,
                                      events=EventLog(50), clock=lambda: 0, timeout=5.0, cache=cache)
            first = await phone()
            if flooded:
                await _flood(srv.port, f"SEP{MAC}", FLOOD)
            since = len(log)
            again = await phone()
            return first, again, _phone_round(log, since)

    first, again, round_two = run(main(), limit=60)
    assert (first.rule, first.challenged) == ("G.13-registered", True)
    assert (again.rule, again.challenged, again.stale) == ("G.13-registered", False, False), again
    assert round_two == ["registered"]
    assert _phone_round(log, 0).count("challenged") == (FLOOD + 1 if flooded else 1)


def test_a_flood_between_a_challenge_and_its_answer_does_not_refuse_the_answer() -> None:
    """A phone challenged on its connection answers after another connection asked for MAX_NONCES + 50
    challenges: registered (two round trips, as without the flood). Before: its nonce was forgotten and
    the right answer got a fresh 401 without ``stale`` — which the phone takes for refused credentials
    (``G.13-digest-rejected``, :mod:`phoneemu.phone.sip`)."""
    log: list[tuple[str, str]] = []
    registrar = logging_registrar(USERS, log)

    async def main() -> list[int | None]:
        async with TlsServer(registrar, None, HOST, 0) as srv:
            reader, writer = await asyncio.open_connection(HOST, srv.port)
            stream = sip.SipStream()
            try:
                writer.write(_register(f"SEP{MAC}"))
                [challenge] = await _answers(reader, stream, 1)
                await _flood(srv.port, f"SEP{OTHER}", FLOOD)
                offered = sip.parse_digest(challenge.header("WWW-Authenticate") or "")
                answer = right_authorization(registrar, MAC, offered, 1)
                writer.write(_register(f"SEP{MAC}", cseq=2, auth=answer))
                [final] = await _answers(reader, stream, 1)
            finally:
                writer.close()
            return [challenge.status, final.status]

    assert run(main(), limit=60) == [401, 200]
    assert _phone_round(log, 0) == ["challenged", "registered"]


def test_answered_nonces_are_bounded_and_a_forgotten_one_is_stale_never_a_replay(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Only answered nonces are kept, at most MAX_NONCES (here 2), the least recently answered forgotten
    first. A right answer to a nonce that may have been forgotten — answered before, or issued before the
    last one forgotten — is ``401 stale=TRUE`` (the phone answers the new nonce at once), so a replay is
    never taken for a first answer; a nonce still on record goes on counting."""
    monkeypatch.setattr(sip_nonces, "MAX_NONCES", 2)
    log: list[tuple[str, str]] = []
    registrar = logging_registrar(USERS, log)
    challenges = [challenge_for(registrar, MAC) for _ in range(4)]
    for _ in range(1_000):  # challenges keep nothing
        registrar.answer(register_request(MAC))
    assert registrar._answered.total == 0
    for challenge in challenges[1:]:  # three answered: the first of them (challenges[1]) forgotten
        assert digest_answer(registrar, MAC, challenge, 1) == (200, "")
    assert registrar._answered.total == 2
    assert digest_answer(registrar, MAC, challenges[1], 1) == (401, "TRUE")  # a replay of a forgotten nonce
    assert digest_answer(registrar, MAC, challenges[0], 1) == (401, "TRUE")  # not answered, issued before it
    assert digest_answer(registrar, MAC, challenges[3], 2) == (200, "")  # on record: counting on
    assert digest_answer(registrar, MAC, challenges[3], 2)[0] == 401  # the same count again: a replay
    assert [o for _d, o in log if o != "challenged"] == ["registered"] * 3 + ["stale", "stale", "registered",
                                                                              "replayed"]


def test_a_nonce_is_checked_by_its_mac_and_expires_by_the_time_it_carries() -> None:
    """A nonce another registrar issued (another secret), or one whose issue time was changed to extend it,
    is one this registrar did not issue: refused, a fresh challenge without ``stale``. A nonce never
    answered is stale past the nonce validity by the time it carries (nothing was kept of it)."""
    clock = LabClock()
    log: list[tuple[str, str]] = []
    registrar, other = lab_registrar(USERS, log, clock=clock), lab_registrar(USERS, [], clock=clock)
    foreign = challenge_for(other, MAC)
    assert digest_answer(registrar, MAC, foreign, 1) == (401, "")
    challenge = challenge_for(registrar, MAC)
    nonce = challenge["nonce"]
    later = f"{int(nonce[:16], 16) + NONCE_VALIDITY_S:016x}{nonce[16:]}"  # issued "later": a longer life
    extended = {**challenge, "nonce": later}
    assert digest_answer(registrar, MAC, extended, 1) == (401, "")
    clock.now += NONCE_VALIDITY_S + 1
    assert digest_answer(registrar, MAC, challenge, 1) == (401, "TRUE")
    assert [o for _d, o in log if o != "challenged"] == ["refused", "refused", "stale"]
