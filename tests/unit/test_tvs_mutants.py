"""Rules of the TVS codec (``protocols/tvs``) and the phone's TVS client (``net/tvs_client``) that the
mutation run of those two modules found no test for (spec §E.1-§E.4 and the modules' conventions): each
test states the rule it checks."""

from __future__ import annotations

import asyncio

import pytest

from phoneemu.errors import DecodeError, EncodeError, ProtocolError, TransportError
from phoneemu.formats.config import Server
from phoneemu.net import tvs_client
from phoneemu.net.tvs_client import judge_server, server_judged, server_order, tvs_query, tvs_verify
from phoneemu.protocols import tvs
from tests.helpers import run_within, self_signed_server_context
from tests.integration.tvs_scripted import HOST, TvsServers

run = run_within(10)
DEVICE = "CP-8861-SEP001122334455"
CERT = b"\x30\x03\x02\x01\x07"


# --- protocols/tvs -------------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["subject", "issuer"])
def test_a_query_name_with_a_nul_is_refused_not_sent(field: str) -> None:
    """Spec §E.4: SUBJECT and ISSUER are NUL-terminated strings; a name with a NUL inside cannot be one (TVS
    would read a shorter name, or refuse the request), so building the QUERY refuses it, naming the field."""
    names = {"subject": "CN=s", "issuer": "CN=i", field: "CN=a\0b"}
    with pytest.raises(EncodeError, match="contains NUL") as err:
        tvs.query_request(1, DEVICE, names["subject"], names["issuer"], b"\x01")
    assert err.value.path == field


@pytest.mark.parametrize("msg_type", [tvs.TvsMsgType.VERIFY_REQUEST, tvs.TvsMsgType.QUERY_REQUEST])
def test_a_request_is_never_read_as_a_response(msg_type: int) -> None:
    """Spec §E.3: only types 2 and 4 are responses. A request (type 1 or 3) carrying a STATUS 0 element is
    not an answer "valid" — ``TvsResponse.from_message``, which the replay of a capture calls on the frames
    of the server's side, refuses it as ``check_response`` does."""
    msg = tvs.TvsMessage(msg_type=msg_type, session_id=9, elements=(
        tvs.Element(tag=tvs.TvsTag.STATUS, value=b"\0"), tvs.Element(tag=tvs.TvsTag.ROLES, value=b"\0")))
    with pytest.raises(ProtocolError, match="not a response") as err:
        tvs.TvsResponse.from_message(msg)
    assert err.value.path == "msg_type"


@pytest.mark.parametrize(("option", "value"), [("status", 256), ("status", -1), ("roles", (0, 256)),
                                               ("roles", (-1,))])
def test_a_response_value_that_does_not_fit_its_byte_is_refused_naming_it(option: str, value: object) -> None:
    """Spec §E.4: STATUS is one byte, ROLES one byte per role. A value outside 0..255 cannot be written:
    the lab's answer refuses it with an EncodeError naming the field (design §3.6), never a bare
    IndexError/ValueError, nor a byte silently taken for another (-1 as 0xFF)."""
    req = tvs.verify_request(1, DEVICE, CERT)
    options: dict[str, object] = {"status": 0, option: value}
    with pytest.raises(EncodeError) as err:
        tvs.response(req, **options)  # type: ignore[arg-type]
    assert err.value.path == option


def test_only_a_request_can_be_answered_or_asked() -> None:
    """Spec §E.3: a response (type 2 or 4) is no question. The client refuses to send one
    (``TvsClientExchange``: EncodeError) and ``check_response`` refuses to match an answer to one
    (ProtocolError), each naming ``msg_type``."""
    answer = tvs.response(tvs.verify_request(3, DEVICE, CERT), status=0, roles=(0,))
    with pytest.raises(EncodeError, match="not a request") as err:
        tvs.TvsClientExchange(answer)
    assert err.value.path == "msg_type"
    with pytest.raises(ProtocolError, match="not a request") as perr:
        tvs.check_response(answer, answer)
    assert perr.value.path == "msg_type"


def test_the_exchange_is_done_once_its_response_is_in() -> None:
    """``TvsClientExchange.done``: False until the response frame is complete, True from then on."""
    req = tvs.verify_request(4, DEVICE, CERT)
    ex = tvs.TvsClientExchange(req)
    wire = tvs.encode(tvs.response(req, status=0, roles=(0,)))
    assert ex.receive(wire[:-1]) is None and ex.done is False
    assert ex.receive(wire[-1:]) is not None and ex.done is True


def test_a_stream_cut_inside_the_response_says_so() -> None:
    """A TVS that closes mid-frame: the exchange's DecodeError says the stream ended inside a frame and how
    much of it came (errors say what and where, design §3.7), not only that no response arrived."""
    req = tvs.verify_request(5, DEVICE, CERT)
    ex = tvs.TvsClientExchange(req)
    assert ex.receive(tvs.encode(tvs.response(req, status=0, roles=(0,)))[:7]) is None
    with pytest.raises(DecodeError, match=r"stream ended inside a frame \(7 byte\(s\)"):
        ex.eof()


def test_the_lab_writes_header_byte_3_as_0_unless_told() -> None:
    """Module convention (spec §E.2 byte 3 is [UNK]): we write 0x00 in responses; ``reserved`` (CUCM's
    0xF7) only when asked."""
    req = tvs.encode(tvs.verify_request(6, DEVICE, CERT))
    (plain,) = tvs.TvsServerConnection(lambda _k: None).receive(req)
    (cucm,) = tvs.TvsServerConnection(lambda _k: None, reserved=0xF7).receive(req)
    assert plain[3] == 0 and cucm[3] == 0xF7


# --- net/tvs_client -------------------------------------------------------------------------------

def test_the_judged_server_is_named_only_while_its_certificate_is_judged() -> None:
    """``server_judged()`` names the server whose certificate ``accept_server`` judges, from inside that
    call, and is None anywhere else — after a judgement too, or the next refusal note (of another phone's
    boot, or of a stand-in's later question) would name a server nobody was judging."""
    seen: list[str | None] = []

    def accept(der: bytes | None) -> bool:
        seen.append(server_judged())
        return der == CERT

    assert server_judged() is None
    assert judge_server(accept, "::1", 2445, CERT)
    assert server_judged() is None
    assert not judge_server(accept, "tvs.example", 2446, None)
    assert server_judged() is None
    assert seen == ["[::1]:2445", "tvs.example:2446"]


def test_a_plain_host_port_is_tried_as_a_priority_0_member() -> None:
    """Spec §E.1: members are tried by priority, lower first, then as listed. A plain ``(host, port)`` has
    no priority: it is a member of the default priority 0 (``config.Server``'s), first among higher
    priorities and in list order among other 0s."""
    assert server_order([Server(host="b", port=2, priority=1), ("a", 1)]) == [("a", 1), ("b", 2)]
    assert server_order([Server(host="b", port=2, priority=0), ("a", 1)]) == [("b", 2), ("a", 1)]
    assert server_order([("a", 1), Server(host="b", port=2)]) == [("a", 1), ("b", 2)]


@pytest.mark.parametrize("ask", ["query", "verify"])
def test_no_tvs_server_configured_is_said_so_not_as_no_answer(ask: str) -> None:
    """A config with no TVS member: the phone cannot ask TVS (spec §G.3.4, unreachable), and says there
    is none configured rather than "no TVS server answered" with nobody named."""
    async def main() -> None:
        if ask == "query":
            await tvs_query([], DEVICE, "CN=s", "CN=i", b"\x01", timeout=0.5)
        else:
            await tvs_verify([], DEVICE, CERT, timeout=0.5)

    with pytest.raises(TransportError) as err:
        run(main())
    assert err.value.kind == "unreachable"
    assert err.value.message == "no TVS server configured"


def test_a_response_never_completed_in_its_reads_is_a_protocol_failure_and_the_next_server_answers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The reads of one exchange are bounded (``_MAX_READS``, here 16): a server that sends a frame header
    and then one byte per TLS record, never the whole body, is a ``"protocol"`` failure of that server —
    skipped for the next one (spec §E.1 failover), never an exception out of the failover."""
    monkeypatch.setattr(tvs_client, "_MAX_READS", 16)

    async def trickle(_r: asyncio.StreamReader, w: asyncio.StreamWriter, req: tvs.TvsMessage) -> None:
        w.write(tvs.encode(tvs.response(req, status=0, roles=(0,)))[:8] + b"\xff\xff")
        await w.drain()
        for _ in range(64):  # one record each: more reads than the bound, far less than the body
            w.write(b"\x00")
            await w.drain()

    async def good(_r: asyncio.StreamReader, w: asyncio.StreamWriter, req: tvs.TvsMessage) -> None:
        w.write(tvs.encode(tvs.response(req, status=0, roles=(0,), ttl=60, certificate=CERT)))

    async def main() -> None:
        servers = TvsServers(hold_open=True)
        try:
            ctx = self_signed_server_context("tvs", 21)
            slow, second = await servers.start(trickle, ctx), await servers.start(good, ctx)
            reply = await tvs_query([(HOST, slow), (HOST, second)], DEVICE, "CN=s", "CN=i", b"\x01",
                                    timeout=5)
            assert reply.port == second and reply.valid and reply.certificate == CERT
            assert reply.failures == (f"{HOST}:{slow}: no complete TVS response in 16 reads",)
            with pytest.raises(TransportError) as err:
                await tvs_query([(HOST, slow)], DEVICE, "CN=s", "CN=i", b"\x01", timeout=5)
            assert err.value.kind == "protocol"
        finally:
            await servers.close()

    run(main())


def test_a_reply_says_what_its_checked_response_says() -> None:
    """``TvsReply`` (what ``phoneemu tvs`` prints and the boot judges) gives the status, validity, roles,
    TTL and certificate of the checked response it carries (spec §E.4), an "unknown" (status 1) as such."""
    req = tvs.query_request(7, DEVICE, "CN=s", "CN=i", b"\x01")
    for status, roles, ttl, cert in ((0, (0, 3), 86400, CERT), (1, (), None, None)):
        answer = tvs.response(req, status=status, roles=roles, ttl=ttl, certificate=cert)
        resp = tvs.check_response(req, answer)
        reply = tvs_client.TvsReply(response=resp, host=HOST, port=2445, server_cert=None, tls="TLSv1.3")
        assert (reply.status, reply.valid, reply.roles, reply.ttl, reply.certificate) == (
            status, status == 0, roles, ttl, cert)


def test_verify_asks_with_the_certificate_and_returns_the_roles_and_session_ids_count_up() -> None:
    """Spec §E.3/§E.4: ``tvs_verify`` sends a VERIFY_REQUEST with the phone's DEVICE_NAME and the whole
    certificate, and returns TVS's answer (status, roles, TTL). Session ids (module convention, like tvsc):
    a per-process counter, one more for each request, unless the caller gives one."""
    seen: list[tvs.VerifyRequest | tvs.QueryRequest] = []

    async def server(_r: asyncio.StreamReader, w: asyncio.StreamWriter, req: tvs.TvsMessage) -> None:
        seen.append(tvs.parse_request(req))
        w.write(tvs.encode(tvs.answer(req, lambda k: tvs.TvsEntry(cert_der=CERT, roles=(0, 3), ttl=60)
                                      if k == CERT else None)))

    async def main() -> None:
        servers = TvsServers()
        try:
            port = await servers.start(server, self_signed_server_context("tvs", 21))
            reply = await tvs_verify([(HOST, port)], DEVICE, CERT, timeout=5)
            assert (reply.valid, reply.roles, reply.ttl, reply.port) == (True, (0, 3), 60, port)
            unknown = await tvs_verify([(HOST, port)], DEVICE, CERT + b"x", timeout=5)
            assert not unknown.valid and unknown.status == tvs.TvsStatus.INVALID
            given = await tvs_verify([(HOST, port)], DEVICE, CERT, timeout=5, session_id=0xFFFFFFFF)
            assert given.valid
        finally:
            await servers.close()

    run(main())
    assert all(isinstance(r, tvs.VerifyRequest) and r.device_name == DEVICE for r in seen)
    assert [r.certificate for r in seen if isinstance(r, tvs.VerifyRequest)] == [CERT, CERT + b"x", CERT]
    first, second, third = (r.session_id for r in seen)
    assert second == first + 1 and third == 0xFFFFFFFF
