"""The phone's TVS client against scripted TVS servers over loopback TLS (spec §E.1, §E.2): failover in
priority order, hung and misbehaving nodes, a server whose certificate is not the ITL TVS record.

Each scripted server presents a fresh EC certificate; the phone's ``accept_server`` trusts only the
"ITL TVS record" one (:data:`TRUSTED`), as :class:`phoneemu.phone.rules.TvsServerCheck` does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from functools import cache
from typing import Any

import pytest

from phoneemu.crypto.certs import CertRequest, cert_der, issue_certificate
from phoneemu.crypto.keys import KeySpec, generate_key
from phoneemu.errors import TransportError
from phoneemu.formats.config import Server
from phoneemu.net.tls import server_context
from phoneemu.net.tvs_client import NO_TVS_ANSWER, SERVER_REFUSED, tvs_query
from phoneemu.protocols import tvs
from tests.helpers import run_within, v6_loopback_missing
from tests.integration.tvs_scripted import HOST, Script, TvsServers

run = run_within(10)
DEVICE = "CP-8861-SEP001122334455"
SUBJECT, ISSUER, SERIAL = "CN=signer", "CN=issuer", b"\x01\x02"
ANSWER_CERT = b"\x30\x03\x02\x01\x07"  # the certificate TVS returns (the rules judge it, not the client)

@cache
def _identity(name: str) -> tuple[ssl.SSLContext, bytes]:
    now = dt.datetime.now(dt.UTC)
    key = generate_key(KeySpec.parse("ec-p256"))
    req = CertRequest(subject=f"CN={name};O=phoneemu", public_key=key.public_key(), serial=21,
                      not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=30))
    cert = issue_certificate(req, issuer_key=key)
    return server_context(cert, key), cert_der(cert)


def trusted_der() -> bytes:
    return _identity("tvs-trusted")[1]


def accept(der: bytes | None) -> bool:
    return der == trusted_der()


def answer_of(req: tvs.TvsMessage, *, status: int = 0, certificate: bytes | None = ANSWER_CERT,
              **kw: Any) -> bytes:
    return tvs.encode(tvs.response(req, status=status, roles=(0,), ttl=600, certificate=certificate, **kw))


async def good(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: tvs.TvsMessage) -> None:
    writer.write(answer_of(req))


class Lab:
    """Scripted TVS servers on loopback (:class:`TvsServers`, connections held open until the test ends);
    ``hits[name]`` counts the requests each one read."""

    def __init__(self) -> None:
        self.servers = TvsServers(hold_open=True)
        self.hits: dict[str, int] = {}

    async def tls(self, name: str, script: Script, *, identity: str = "tvs-trusted",
                  host: str = HOST) -> int:
        self.hits[name] = 0

        def counted() -> None:
            self.hits[name] += 1

        return await self.servers.start(script, _identity(identity)[0], host=host, counted=counted)

    def hung(self) -> int:
        return self.servers.hung()

    def closed(self) -> int:
        return self.servers.closed()

    async def close(self) -> None:
        await self.servers.close()


def within(body: Callable[[Lab], Awaitable[None]]) -> None:
    async def main() -> None:
        lab = Lab()
        try:
            await body(lab)
        finally:
            await lab.close()
    run(main())


async def ask(servers: list[Any], *, timeout: float = 1.0) -> Any:
    return await tvs_query(servers, DEVICE, SUBJECT, ISSUER, SERIAL, timeout=timeout, accept_server=accept)


# --- failover in priority order ----------------------------------------------------------------

def test_refused_first_then_answer_in_priority_order() -> None:
    async def body(lab: Lab) -> None:
        dead = lab.closed()
        second = await lab.tls("second", good)
        third = await lab.tls("third", good)
        members = [Server(host=HOST, port=third, priority=2), Server(host=HOST, port=second, priority=1),
                   Server(host=HOST, port=dead, priority=0)]
        reply = await ask(members)
        assert reply.port == second and reply.valid and reply.certificate == ANSWER_CERT
        assert lab.hits == {"second": 1, "third": 0}
        assert len(reply.failures) == 1 and f"{HOST}:{dead}" in reply.failures[0]
        assert "cannot connect" in reply.failures[0]
    within(body)


def test_hung_node_is_bounded_by_the_timeout_then_the_next_is_tried() -> None:
    async def body(lab: Lab) -> None:
        hung = lab.hung()
        second = await lab.tls("second", good)
        t0 = time.monotonic()
        reply = await ask([(HOST, hung), (HOST, second)], timeout=0.4)
        took = time.monotonic() - t0
        assert reply.port == second and reply.valid
        # the timeout was waited out, and bounded the wait: the hung node never answers (a generous upper
        # bound: a loaded machine's event loop lags; only an unbounded wait fails it)
        assert 0.35 < took < 10.0, took
        assert f"{HOST}:{hung}" in reply.failures[0] and "timeout" in reply.failures[0]
    within(body)


def test_a_server_that_never_answers_after_tls_is_bounded() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: tvs.TvsMessage) -> None:
        return None

    async def body(lab: Lab) -> None:
        mute = await lab.tls("mute", silent)
        second = await lab.tls("second", good)
        reply = await ask([(HOST, mute), (HOST, second)], timeout=0.4)
        assert reply.port == second and "no TVS response within 0.4s" in reply.failures[0]
    within(body)


def test_all_hung_total_time_is_servers_times_timeout() -> None:
    async def body(lab: Lab) -> None:
        hung = [lab.hung() for _ in range(3)]
        t0 = time.monotonic()
        with pytest.raises(TransportError) as err:
            await ask([(HOST, p) for p in hung], timeout=0.3)
        took = time.monotonic() - t0
        assert err.value.kind == "timeout"
        assert 0.85 < took < 10.0, took  # each timeout waited out, none unbounded (a loaded machine lags)
        msg = err.value.message
        assert msg.startswith(NO_TVS_ANSWER) and all(f"{HOST}:{p}" in msg for p in hung)
    within(body)


# --- misbehaving answers: each one skipped, the next server answers ---------------------------------

async def _wrong_session(r: asyncio.StreamReader, w: asyncio.StreamWriter, req: tvs.TvsMessage) -> None:
    w.write(tvs.encode(tvs.TvsMessage(msg_type=4, session_id=req.session_id + 1,
                                      elements=tvs.response(req, status=0, roles=(0,)).elements)))


async def _other_type(r: asyncio.StreamReader, w: asyncio.StreamWriter, req: tvs.TvsMessage) -> None:
    w.write(tvs.encode(tvs.TvsMessage(msg_type=2, session_id=req.session_id,
                                      elements=tvs.response(req, status=0, roles=(0,)).elements)))


async def _garbage(r: asyncio.StreamReader, w: asyncio.StreamWriter, req: tvs.TvsMessage) -> None:
    w.write(b"HTTP/1.0 200 OK\r\n\r\n" + bytes(range(256)))


async def _mid_frame(r: asyncio.StreamReader, w: asyncio.StreamWriter, req: tvs.TvsMessage) -> None:
    w.write(answer_of(req)[:7])
    await w.drain()
    w.close()


async def _huge(r: asyncio.StreamReader, w: asyncio.StreamWriter, req: tvs.TvsMessage) -> None:
    frame = answer_of(req)
    w.write(frame[:8] + b"\xff\xff" + frame[10:])
    w.write(b"\x00" * 300_000)  # more than any frame, and more claimed than sent


async def _trickle(r: asyncio.StreamReader, w: asyncio.StreamWriter, req: tvs.TvsMessage) -> None:
    for b in answer_of(req)[:9]:
        w.write(bytes([b]))
        await w.drain()
        await asyncio.sleep(0.1)


async def _no_status(r: asyncio.StreamReader, w: asyncio.StreamWriter, req: tvs.TvsMessage) -> None:
    w.write(tvs.encode(tvs.TvsMessage(msg_type=4, session_id=req.session_id)))


@pytest.mark.parametrize(("script", "why"), [
    (_wrong_session, "session id"),
    (_other_type, "response type 2, expected 4"),
    (_garbage, "discriminator"),
    (_mid_frame, "bad TVS response"),
    (_huge, "bad TVS response"),
    (_trickle, "no TVS response within 0.4s"),
    (_no_status, "STATUS"),
], ids=lambda v: getattr(v, "__name__", "")[1:] if callable(v) else "")
def test_a_bad_answer_is_skipped_and_named(script: Script, why: str) -> None:
    async def body(lab: Lab) -> None:
        bad = await lab.tls("bad", script)
        second = await lab.tls("second", good)
        t0 = time.monotonic()
        reply = await ask([(HOST, bad), (HOST, second)], timeout=0.4)
        assert time.monotonic() - t0 < 1.5
        assert reply.port == second and reply.valid
        assert lab.hits == {"bad": 1, "second": 1}
        assert len(reply.failures) == 1 and reply.failures[0].startswith(f"{HOST}:{bad}: ")
        assert why in reply.failures[0], reply.failures[0]

        with pytest.raises(TransportError) as err:  # alone: no answer, and why
            await ask([(HOST, bad)], timeout=0.4)
        assert err.value.message.startswith(NO_TVS_ANSWER) and why in err.value.message
    within(body)


# --- §E.1: the server's certificate -----------------------------------------------------------------

def test_untrusted_first_server_is_not_used_and_the_second_answers() -> None:
    async def body(lab: Lab) -> None:
        rogue = await lab.tls("rogue", good, identity="tvs-rogue")
        second = await lab.tls("second", good)
        reply = await ask([(HOST, rogue), (HOST, second)])
        assert reply.port == second and reply.server_cert == trusted_der()
        assert lab.hits["rogue"] == 0  # no request sent to it
        assert reply.failures == (f"{HOST}:{rogue}: {SERVER_REFUSED}",)
        with pytest.raises(TransportError) as err:
            await ask([(HOST, rogue)])
        assert err.value.kind == "tls" and SERVER_REFUSED in err.value.message
    within(body)


def test_unknown_from_the_first_server_is_the_answer() -> None:
    """§E.1: the first server that completes the exchange answers; "unknown" (status 1) is an answer."""
    async def no(r: asyncio.StreamReader, w: asyncio.StreamWriter, req: tvs.TvsMessage) -> None:
        w.write(tvs.encode(tvs.response(req, status=1)))

    async def body(lab: Lab) -> None:
        first = await lab.tls("first", no)
        second = await lab.tls("second", good)
        reply = await ask([(HOST, first), (HOST, second)])
        assert reply.port == first and not reply.valid
        assert lab.hits == {"first": 1, "second": 0}
    within(body)


# --- addresses ----------------------------------------------------------------------------------------

def test_ipv6_servers_are_named_in_brackets() -> None:
    if (why := v6_loopback_missing()) is not None:
        pytest.skip(why)

    async def body(lab: Lab) -> None:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        dead = int(s.getsockname()[1])
        s.close()
        second = await lab.tls("second", good, host="::1")
        reply = await ask([("::1", dead), ("::1", second)])
        assert reply.port == second and reply.host == "::1"
        assert reply.failures[0].startswith(f"[::1]:{dead}: cannot connect")
    within(body)


def test_a_name_that_does_not_resolve_is_bounded_and_named() -> None:
    async def body(lab: Lab) -> None:
        second = await lab.tls("second", good)
        t0 = time.monotonic()
        reply = await ask([("tvs.invalid", 2445), (HOST, second)], timeout=1.0)
        assert time.monotonic() - t0 < 2.5
        assert reply.port == second
        assert reply.failures[0].startswith("tvs.invalid:2445: ")
    within(body)


@pytest.mark.parametrize("host", ["bad..name", "a" * 64 + ".example", "x" * 300])
def test_a_host_name_idna_cannot_encode_is_skipped_not_raised(host: str) -> None:
    """A config's ``<address>`` is any text without whitespace; Python's IDNA codec refuses an empty
    label or one over 63 characters with a UnicodeError, which escaped the failover (and the boot)."""
    async def body(lab: Lab) -> None:
        second = await lab.tls("second", good)
        reply = await ask([(host, 2445), (HOST, second)])
        assert reply.port == second
        assert reply.failures[0].startswith(f"{host}:2445: cannot resolve: not a valid host name")
        with pytest.raises(TransportError) as err:
            await ask([(host, 2445)])
        assert err.value.kind == "unreachable"
    within(body)
