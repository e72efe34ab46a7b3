"""SIP helpers shared by the test modules: the lab registrar driven in-process as phones would (its
digest challenges and answers, spec §G.13), a phone's end of a connection reading what it is answered,
and a scripted SIP far end on loopback (a registrar or a call's far end answering each request as the
test says)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

from phoneemu.lab.sip_service import SipRegistrar
from phoneemu.phone.call import CallResult, place_call
from phoneemu.phone.events import EventLog
from phoneemu.phone.profile import get_profile
from phoneemu.phone.sip import authorization
from phoneemu.protocols import sip
from tests.helpers import sip_line_store

# --------------------------------------------------------------------------- the lab registrar in-process
#: the Request-URI of the REGISTERs :func:`register_request` makes (the digest answers' ``uri``)
REGISTRAR_URI = "sip:lab"


class LabClock:
    """A lab clock a test moves: ``now`` seconds (1,000 at first, where :func:`logging_registrar` stops)."""

    def __init__(self, now: int = 1_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def lab_registrar(users: Mapping[str, tuple[str | None, str | None]], outcomes: list[tuple[str, str]], *,
                  clock: Callable[[], int] | None = None) -> SipRegistrar:
    """A lab registrar knowing ``users`` (MAC -> digest user, password; ``(None, None)`` a device without a
    digest user) on ``clock`` (stopped at 1,000 s when none), each outcome it logs appended to
    ``outcomes`` as (device, outcome)."""
    return SipRegistrar(users.get, clock=clock or LabClock(),
                        on_log=lambda _peer, device, outcome, _why: outcomes.append((device, outcome)))


def logging_registrar(users: Mapping[str, tuple[str, str]], outcomes: list[tuple[str, str]]) -> SipRegistrar:
    """A lab registrar knowing ``users`` (MAC -> digest user, password), its clock stopped at 1,000 s, each
    outcome it logs appended to ``outcomes`` as (device, outcome) (:func:`lab_registrar`)."""
    return lab_registrar(users, outcomes)


def register_request(mac: str, auth: str | None = None) -> sip.SipMessage:
    """A REGISTER of phone ``mac`` (as the registrar reads it), with ``auth`` as its Authorization."""
    aor = f"<sip:SEP{mac}@lab>"
    headers = [("Via", "SIP/2.0/TCP 127.0.0.1:5;branch=z9hG4bK1"), ("From", f"{aor};tag=1"), ("To", aor),
               ("Call-ID", "c@x"), ("CSeq", "1 REGISTER")]
    if auth is not None:
        headers.append(("Authorization", auth))
    return sip.parse_message(sip.build_message(f"REGISTER {REGISTRAR_URI} SIP/2.0", headers))


def registrar_reply(registrar: SipRegistrar, mac: str, auth: str | None = None) -> tuple[int, str]:
    """The registrar's reply to ``mac``'s REGISTER carrying ``auth``: its status, and the ``stale`` of
    its challenge (``""`` when not a 401, or none given)."""
    reply = sip.parse_message(registrar.answer(register_request(mac, auth)))
    if reply.status != 401:
        return reply.status or 0, ""
    return 401, sip.parse_digest(reply.header("WWW-Authenticate") or "").get("stale", "")


def challenge_for(registrar: SipRegistrar, mac: str) -> dict[str, str]:
    """A fresh challenge the registrar gives ``mac`` (its parameters)."""
    reply = sip.parse_message(registrar.answer(register_request(mac)))
    return sip.parse_digest(reply.header("WWW-Authenticate") or "")


def right_authorization(registrar: SipRegistrar, mac: str, challenge: dict[str, str], nc: int) -> str:
    """The Authorization of ``mac``'s right answer (the credentials the registrar knows it by) to
    ``challenge`` with nonce count ``nc``."""
    credentials = registrar.credentials(mac)
    assert credentials is not None, mac
    user, password = credentials
    assert user is not None and password is not None, mac
    return authorization(challenge, user, password, nc, method="REGISTER", uri=REGISTRAR_URI)


def digest_answer(registrar: SipRegistrar, mac: str, challenge: dict[str, str], nc: int) -> tuple[int, str]:
    """``mac``'s right answer to ``challenge`` with nonce count ``nc``: the status and ``stale``."""
    return registrar_reply(registrar, mac, right_authorization(registrar, mac, challenge, nc))


# --------------------------------------------------------------------------- a phone's end of a connection
async def next_message(reader: asyncio.StreamReader, stream: sip.SipStream, *,
                       timeout: float = 5.0) -> sip.SipMessage | None:
    """The next SIP message read on a connection, ``stream`` holding what was read before (each read
    bounded by ``timeout`` s); None where the peer closed first."""
    while (msg := stream.next()) is None:
        chunk = await asyncio.wait_for(reader.read(65536), timeout)
        if not chunk:
            return None
        stream.feed(chunk)
    return msg


# --------------------------------------------------------------------------- a scripted far end
class _HangUp(bytes):
    """The type of :data:`HANG_UP` (a bytes of its own, told apart by identity)."""


#: a piece of an answer that closes the connection instead of being written: the far end hangs up
HANG_UP = _HangUp()

#: what a far end answers one request with: bytes, pieces written apart (each its own TCP segment), or
#: None (nothing); a piece :data:`HANG_UP` closes the connection
SipAnswer = Callable[[sip.SipMessage], bytes | list[bytes] | None]


def as_pieces(out: bytes | list[bytes] | None) -> list[bytes]:
    """An answer as the pieces written apart."""
    return [out] if isinstance(out, bytes) else list(out or [])


async def answer_requests(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, answer: SipAnswer, *,
                          gap: float = 0.0) -> None:
    """Play a SIP far end on one connection: each request read is answered as ``answer`` says (``gap`` s
    after each piece written), until the phone closes, the far end hangs up or the connection fails;
    the connection is closed then."""
    stream = sip.SipStream()
    try:
        with contextlib.suppress(Exception):
            while chunk := await reader.read(4096):
                stream.feed(chunk)
                while (msg := stream.next()) is not None:
                    if not await _write_answer(writer, answer(msg), gap):
                        return
    finally:
        writer.close()


async def _write_answer(writer: asyncio.StreamWriter, out: bytes | list[bytes] | None, gap: float) -> bool:
    """Write the pieces of ``out``; False where it hangs up."""
    for piece in as_pieces(out):
        if piece is HANG_UP:
            return False
        writer.write(piece)
        await writer.drain()
        if gap:
            await asyncio.sleep(gap)
    return True


@contextlib.asynccontextmanager
async def sip_far_end(answer: SipAnswer) -> AsyncIterator[int]:
    """A SIP far end on 127.0.0.1 answering every connection's requests as ``answer`` says
    (:func:`answer_requests`); yields its port, and closes it after — once the connections it is answering
    ended (at most 2 s: a phone that sent its last request, an ACK, and closed has it read and recorded
    before the test looks; Python 3.11's ``wait_closed`` does not wait for them)."""
    handlers: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        await answer_requests(reader, writer, answer=answer)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]
        server.close()
        if handlers:
            await asyncio.wait(handlers, timeout=2.0)


async def call_far_end(answer: SipAnswer, *, mac: str, events: EventLog, timeout: float) -> CallResult:
    """Phone ``mac`` of a cp-8861 with digest credentials (alice, s3cret) registers with, then calls
    ``moh`` at, a far end on loopback answering as ``answer`` says (3 media packets, its clock at 0): the
    :class:`~phoneemu.phone.call.CallResult`, ``events`` its event log."""
    async with sip_far_end(answer) as port:
        return await place_call(sip_line_store(mac, "alice", "s3cret"), get_profile("cp-8861"), mac,
                                "127.0.0.1", target="moh", sip_port=port, sips_port=1, events=events,
                                clock=lambda: 0, timeout=timeout, packets=3)


#: the registrar and the never- or slowly-reading clients of the lab TCP tests (review RL, R5)
SLOW_HOST = "127.0.0.1"
SLOW_MAC = "0011223344AA"
#: the server's socket send buffer in these tests (the kernel doubles it), and the client's receive buffer
SMALL_BUFFER = 4096


def pipelined_register(n: int) -> bytes:
    """The ``n``-th REGISTER of :data:`SLOW_MAC` as bytes on the wire (CSeq ``n``), for pipelining."""
    aor = f"<sip:SEP{SLOW_MAC}@lab>"
    return (f"REGISTER sip:lab SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5;branch=z9hG4bK{n}\r\n"
            f"From: {aor};tag=1\r\nTo: {aor}\r\nCall-ID: c@x\r\nCSeq: {n} REGISTER\r\n"
            "Content-Length: 0\r\n\r\n").encode()


def small_send_buffer(writer: asyncio.StreamWriter) -> None:
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)


async def connect_not_reading(port: int) -> socket.socket:
    """A client socket that takes little before the kernel stops its peer (small receive buffer)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (SLOW_HOST, port))
    return sock


def small_buffer_registrar(read_timeout: float) -> tuple[
        Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]], list[tuple[str, str]]]:
    """A connection handler serving a lab registrar that knows :data:`SLOW_MAC` and waits
    ``read_timeout``, with the server's send buffer made small (:func:`small_send_buffer`); and the list
    of its registrations' outcomes."""
    outcomes: list[tuple[str, str]] = []
    registrar = lab_registrar({SLOW_MAC: (None, None)}, outcomes)
    registrar.read_timeout = read_timeout

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        small_send_buffer(writer)
        await registrar(reader, writer)

    return handler, outcomes
