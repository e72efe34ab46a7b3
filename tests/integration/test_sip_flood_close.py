"""The lab registrar closes a connection whose requests it refuses too many times in a row
(:mod:`phoneemu.lab.sip_service` rules; ours: :data:`~phoneemu.lab.sip_service.MAX_REFUSED_IN_A_ROW`).

Was: a client sending requests the registrar answers 4xx (a request missing its dialog headers, one of an
unknown device...) on one connection kept it for ever: only its log was rate-limited. A phone re-registering
(challenged, then registered) or a client served between refusals never meets the rule; a message whose
framing is lost (no resync possible) closes its connection at once, as before.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from phoneemu.lab.sip_service import MAX_REFUSED_IN_A_ROW, SipRegistrar
from phoneemu.net.tls import TlsServer
from phoneemu.phone.sip import authorization
from phoneemu.protocols import sip
from tests.helpers import run
from tests.sip_helpers import REGISTRAR_URI, next_message

HOST = "127.0.0.1"
MAC = "0A0000F10D01"
USER, PASSWORD = "alice", "s3cret"
#: a request with none of Via, From, To, Call-ID, CSeq: 400 (module rules)
HEADERLESS = b"OPTIONS sip:lab SIP/2.0\r\nContent-Length: 0\r\n\r\n"
#: an ACK without them: no answer, logged malformed
HEADERLESS_ACK = b"ACK sip:lab SIP/2.0\r\nContent-Length: 0\r\n\r\n"


def _registrar(outcomes: list[str]) -> SipRegistrar:
    return SipRegistrar({MAC: (USER, PASSWORD)}.get, clock=lambda: 1_000, read_timeout=5.0,
                        on_log=lambda _peer, _device, outcome, _why: outcomes.append(outcome))


def _register(cseq: int, auth: str | None = None) -> bytes:
    aor = f"<sip:SEP{MAC}@lab>"
    headers = [("Via", f"SIP/2.0/TCP {HOST}:5;branch=z9hG4bK{cseq}"), ("From", f"{aor};tag=1"), ("To", aor),
               ("Call-ID", "flood@x"), ("CSeq", f"{cseq} REGISTER")]
    if auth is not None:
        headers.append(("Authorization", auth))
    return sip.build_message(f"REGISTER {REGISTRAR_URI} SIP/2.0", headers)


async def _until_closed(reader: asyncio.StreamReader) -> tuple[bytes, bool]:
    """What the server sends until it closes (True) or is silent 5 s (False)."""
    data = b""
    for _ in range(10_000):
        try:
            chunk = await asyncio.wait_for(reader.read(65536), 5.0)
        except TimeoutError:
            return data, False
        except ConnectionError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


@pytest.mark.parametrize(("request_bytes", "answers"),
                         [(HEADERLESS, MAX_REFUSED_IN_A_ROW), (HEADERLESS_ACK, 0)], ids=["options", "ack"])
def test_a_flood_of_refused_requests_on_one_connection_is_closed(
        request_bytes: bytes, answers: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="phoneemu.lab.sip")
    outcomes: list[str] = []

    async def main() -> tuple[bytes, bool]:
        async with TlsServer(_registrar(outcomes), None, HOST, 0, name="sip") as srv:
            reader, writer = await asyncio.open_connection(HOST, srv.port)
            try:
                writer.write(request_bytes * (MAX_REFUSED_IN_A_ROW + 20))
                await writer.drain()
                return await _until_closed(reader)
            finally:
                writer.close()

    data, closed = run(main())
    assert closed, f"not closed after {data.count(b'SIP/2.0 400 ')} answers"
    assert data.count(b"SIP/2.0 400 ") == answers  # each refused request up to the last one answered
    assert outcomes.count("malformed") == MAX_REFUSED_IN_A_ROW and outcomes[-1] == "flood", outcomes[-3:]
    assert f"{MAX_REFUSED_IN_A_ROW} requests in a row refused" in caplog.text


def test_wrong_digest_answers_in_a_row_are_refused_and_closed_challenges_are_not() -> None:
    """A wrong answer (a 401 to a request with credentials) counts; a challenge (a 401 to one without:
    every authentication's first step, costing no memory) does not."""
    outcomes: list[str] = []
    wrong = 'Digest username="alice", realm="ccmsipline", nonce="n", uri="sip:lab", response="00"'
    extra = 8

    async def main() -> tuple[bytes, bool, int]:
        async with TlsServer(_registrar(outcomes), None, HOST, 0, name="sip") as srv:
            reader, writer = await asyncio.open_connection(HOST, srv.port)
            stream = sip.SipStream()
            try:
                many = range(1, MAX_REFUSED_IN_A_ROW + extra + 1)
                writer.write(b"".join(_register(n) for n in many))
                challenged = 0
                for _ in range(MAX_REFUSED_IN_A_ROW + extra):
                    got = await next_message(reader, stream)
                    challenged += got is not None and got.status == 401
                writer.write(b"".join(_register(n, wrong) for n in many))
                await writer.drain()
                data, closed = await _until_closed(reader)
                return data, closed, challenged
            finally:
                writer.close()

    data, closed, challenged = run(main())
    assert challenged == MAX_REFUSED_IN_A_ROW + extra  # the connection kept through the challenges
    assert closed and data.count(b"SIP/2.0 401 ") == MAX_REFUSED_IN_A_ROW, data.count(b"SIP/2.0 401 ")
    assert outcomes.count("refused") == MAX_REFUSED_IN_A_ROW and outcomes[-1] == "flood", outcomes[-3:]


def test_a_phone_re_registering_and_a_client_served_between_refusals_keep_their_connection() -> None:
    """Each registration is challenged (a 401 to a REGISTER without credentials: no refusal) then
    registered; refusals one short of the rule, then a request served, then as many again: the count
    starts again."""
    outcomes: list[str] = []
    rounds = MAX_REFUSED_IN_A_ROW + 8

    async def main() -> None:
        async with TlsServer(_registrar(outcomes), None, HOST, 0, name="sip") as srv:
            reader, writer = await asyncio.open_connection(HOST, srv.port)
            stream = sip.SipStream()
            try:
                cseq = 0
                for n in range(rounds):
                    cseq += 1
                    if n % 8 == 0:  # refusals just short of the rule
                        writer.write(HEADERLESS * (MAX_REFUSED_IN_A_ROW - 1))
                        for _ in range(MAX_REFUSED_IN_A_ROW - 1):
                            got = await next_message(reader, stream)
                            assert got is not None and got.status == 400, (n, got)
                    writer.write(_register(cseq))
                    challenge = await next_message(reader, stream)
                    assert challenge is not None and challenge.status == 401, (n, challenge)
                    params = sip.parse_digest(challenge.header("WWW-Authenticate") or "")
                    cseq += 1
                    writer.write(_register(cseq, authorization(params, USER, PASSWORD, 1, method="REGISTER",
                                                               uri=REGISTRAR_URI)))
                    ok = await next_message(reader, stream)
                    assert ok is not None and ok.status == 200, (n, ok)
            finally:
                writer.close()

    run(main())
    assert outcomes.count("registered") == rounds and "flood" not in outcomes


def test_a_message_whose_framing_is_lost_closes_its_connection_at_once() -> None:
    """No resync is possible (where would the next message begin?): 400, then the connection is closed."""
    outcomes: list[str] = []

    async def main() -> tuple[bytes, bool]:
        async with TlsServer(_registrar(outcomes), None, HOST, 0, name="sip") as srv:
            reader, writer = await asyncio.open_connection(HOST, srv.port)
            try:
                writer.write(b"not sip at all\r\n\r\n" + HEADERLESS)
                await writer.drain()
                return await _until_closed(reader)
            finally:
                writer.close()

    data, closed = run(main())
    assert closed and data.count(b"SIP/2.0 400 ") == 1, data
    assert outcomes == ["malformed"]


def test_challenges_between_refusals_neither_count_nor_start_the_count_again() -> None:
    """A challenge (a 401 to a request without credentials) is not counted, and serves nothing either: the
    refusals on either side of it are counted together. Was: it started the count again (it was taken for
    a request served), so 31 refused requests and a credential-less REGISTER, over and over, kept the
    connection for ever (review: 992 x 400, 32 x 401, never closed)."""
    outcomes: list[str] = []
    short = MAX_REFUSED_IN_A_ROW - 1
    rounds = MAX_REFUSED_IN_A_ROW

    async def main() -> tuple[bytes, bool]:
        async with TlsServer(_registrar(outcomes), None, HOST, 0, name="sip") as srv:
            reader, writer = await asyncio.open_connection(HOST, srv.port)
            try:
                writer.write(b"".join(HEADERLESS * short + _register(n) for n in range(1, rounds + 1)))
                await writer.drain()
                return await _until_closed(reader)
            finally:
                writer.close()

    data, closed = run(main())
    refused, challenged = data.count(b"SIP/2.0 400 "), data.count(b"SIP/2.0 401 ")
    assert closed, f"not closed after {refused} x 400, {challenged} x 401"
    assert (refused, challenged) == (MAX_REFUSED_IN_A_ROW, 1)  # the first round, then one refusal more
    assert outcomes.count("malformed") == MAX_REFUSED_IN_A_ROW and outcomes[-1] == "flood", outcomes[-3:]
