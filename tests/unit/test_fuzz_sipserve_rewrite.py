"""``fuzz --format sip-response --serve`` makes each mutant an answer to the REGISTER it is served for
(:mod:`phoneemu.fuzz.sipserve`): the seeds' Via, Call-ID, CSeq, From and To become the REGISTER's, so a
phone that takes only responses of its own transaction (RFC 3261 §17.1.3, :func:`phoneemu.phone.sip.exchange`)
reads them; a header the mutation changed stays the mutant's."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from phoneemu.errors import TransportError
from phoneemu.fuzz.sipmsg import _CALL_ID, sip_seeds
from phoneemu.fuzz.sipserve import answer_for, seed_values, serve_sip_session
from phoneemu.fuzz.targets import ServeSession
from phoneemu.phone.sip import DigestCache, SipResult, _converse, _Register
from phoneemu.protocols import sip

SEEDS = dict(sip_seeds("sip-response"))
MAC = "001122334455"


def _done(rule: str, ok: bool, reason: str, **_kw: object) -> SipResult:
    return SipResult(registered=ok, rule=rule, reason=reason)


def _campaign(tmp_path: Path, answers: list[bytes]) -> tuple[SipResult | TransportError, ServeSession]:
    """Serve ``answers`` (one per REGISTER, in order) and run the phone's registration conversation, over
    loopback TCP, against it; its result (or the TransportError its exchange raised) and the session."""

    def make(index: int, _name: str) -> tuple[bytes, dict[str, object]]:
        return answers[index], {"ops": []}

    session = ServeSession(fmt="sip-response", make=make, seed=1, out=tmp_path, runs=None, mac=MAC)

    async def phone(port: int) -> SipResult | TransportError:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        reg = _Register(MAC, "127.0.0.1", "tcp", "127.0.0.1:40000")
        try:
            return await _converse(reg, reader, writer, ("alice", "s3cret"), DigestCache(server="127.0.0.1"),
                                   timeout=1.0, done=_done)
        except TransportError as exc:
            return exc
        finally:
            writer.close()

    async def main() -> SipResult | TransportError:
        ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        serving = asyncio.create_task(serve_sip_session(session, port=0, time_limit=20,
                                                        ready=ready.set_result))
        try:
            return await phone(await ready)
        finally:
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)

    return asyncio.run(asyncio.wait_for(main(), 20)), session


def _served(session: ServeSession) -> list[dict[str, object]]:
    log = [json.loads(line) for line in session.log_path.read_text().splitlines()]
    return [e for e in log if e["event"] == "served"]


def test_an_unmutated_seed_200_registers_the_phone(tmp_path: Path) -> None:
    """Was: the seed's Call-ID and branch sent verbatim, the phone skipped the 200 as another
    transaction's and never registered — a served campaign tested nothing."""
    result, session = _campaign(tmp_path, [SEEDS["ok"]])
    assert isinstance(result, SipResult) and result.registered, result
    assert result.rule == "G.13-registered"
    served = _served(session)
    assert served[0]["rewritten"] == ["Via", "From", "To", "Call-ID", "CSeq"]
    sent = sip.parse_message((tmp_path / "served" / str(served[0]["file"])).read_bytes())  # saved as sent
    assert sent.status == 200 and sent.header("call-id") != _CALL_ID


def test_a_challenge_then_a_200_each_answer_their_register(tmp_path: Path) -> None:
    """A 401 and a 200 back to back both answer the first REGISTER (the phone takes the 401, skips the 200
    as that earlier transaction's); the second REGISTER, with the digest answer, gets the next mutant."""
    result, session = _campaign(tmp_path, [SEEDS["challenge-then-ok"], SEEDS["ok"]])
    assert isinstance(result, SipResult) and result.registered and "after a digest challenge" in result.reason
    assert [e["index"] for e in _served(session)] == [0, 1]


def test_a_mutant_with_a_forged_call_id_is_still_not_taken(tmp_path: Path) -> None:
    forged = SEEDS["ok"].replace(f"Call-ID: {_CALL_ID}".encode(), b"Call-ID: forged@elsewhere")
    assert forged != SEEDS["ok"]
    result, session = _campaign(tmp_path, [forged])
    assert isinstance(result, TransportError), result  # no answer of its transaction came
    assert "1 response(s) of another transaction skipped" in str(result)
    served = _served(session)
    assert "Call-ID" not in served[0]["rewritten"] and "Via" in served[0]["rewritten"]
    assert b"Call-ID: forged@elsewhere\r\n" in (tmp_path / "served" / str(served[0]["file"])).read_bytes()


def _register() -> sip.SipMessage:
    return sip.parse_message(_Register(MAC, "127.0.0.1", "tcp", "127.0.0.1:40000").request())


def _rewrite(mutant: bytes) -> tuple[bytes, list[str], sip.SipMessage]:
    reg = _register()
    data, rewritten = answer_for(mutant, reg, seed_values(SEEDS.values()))
    return data, rewritten, reg


def test_a_respelled_header_name_is_rewritten_a_changed_or_folded_value_is_not() -> None:
    via = SEEDS["ok"].split(b"\r\n")[1]
    assert via.startswith(b"Via: ")
    respelled = SEEDS["ok"].replace(via, b"v :  " + via[5:] + b" ")  # compact, space before the colon
    data, rewritten, reg = _rewrite(respelled)
    assert b"\r\nv :  " + str(reg.header("via")).encode() + b" \r\n" in data and "Via" in rewritten

    changed = SEEDS["ok"].replace(via, via + b"x")
    data, rewritten, _ = _rewrite(changed)
    assert via + b"x\r\n" in data and "Via" not in rewritten

    folded = SEEDS["ok"].replace(via, via + b"\r\n ;x=1")  # the value goes on: changed
    data, rewritten, _ = _rewrite(folded)
    assert via + b"\r\n ;x=1\r\n" in data and "Via" not in rewritten


def test_the_to_keeps_a_seeds_tag_and_a_line_with_another_header_stays() -> None:
    seed = SEEDS["ok"]
    to = next(line for line in seed.split(b"\r\n") if line.startswith(b"To: "))
    tagged = seed.replace(to, to + b";tag=5eed")  # seeds whose To carries the registrar's tag
    reg = _register()
    data, _ = answer_for(tagged, reg, seed_values([tagged]))
    assert f"To: {reg.header('to')};tag=5eed\r\n".encode() in data
    # a body line, or a header the rewrite does not cover, with a seed's text is left alone
    other = seed.replace(to, b"X-To: " + to[4:])
    assert answer_for(other, reg, seed_values([seed]))[0].count(b"X-To: " + to[4:]) == 1


def test_the_rewrite_is_bounded() -> None:
    from phoneemu.fuzz.sipserve import MAX_REWRITE_GROWTH

    seed = SEEDS["ok"]
    via = seed.split(b"\r\n")[1]
    head, _, rest = seed.partition(b"\r\n")
    many = head + b"\r\n" + (via + b"\r\n") * 20_000 + rest
    reg = sip.parse_message(_Register(MAC, "127.0.0.1", "tcp", "127.0.0.1:40000").request()
                            .replace(b"Via: ", b"Via: " + b"SIP/2.0/TCP h:1;branch=z9hG4bKx, " * 100, 1))
    data, _ = answer_for(many, reg, seed_values([seed]))
    assert len(data) <= len(many) + MAX_REWRITE_GROWTH

