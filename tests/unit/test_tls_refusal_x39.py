"""X39: a server that answers the TLS client, but not with TLS, is refused at its first byte that cannot
begin a TLS record, in words that do not depend on the pieces its bytes came in (module docstring of
:mod:`phoneemu.net.tls_client`; the TLS side of H39, :mod:`tests.unit.test_http_refusal_h39`).

Was: the bytes the handshake's reads held when OpenSSL refused its 5-byte record header, up to 8 —
``HTTP/1.1 400 ...`` whole "first bytes: 48 54 54 50 2f 31 2e 31 ...", a byte at a time "first bytes: 48 54
54 50 2f", cut after 6 bytes "48 54 54 50 2f 31" — and a SIP answer (on a SIPS port) had no hint.

The server is one end of a socket pair (the client's connect is replaced): each piece is written once the
client has read the one before and its handshake has had a turn, so the pieces are the client's reads.
"""

from __future__ import annotations

import asyncio
import select
import socket
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.errors import TransportError
from phoneemu.net import tls_client
from phoneemu.net.tls import phone_client_context
from phoneemu.net.tls_client import TlsClientConnection

HOST, PORT = "127.0.0.1", 2445
WHERE = f"{HOST}:{PORT}: the server answered, but not with TLS"
HTTP = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"  # an HTTP server on the TVS port
CONTEXT = phone_client_context(("1.2",))
TURNS = 100  # loop turns a piece may take to be read (each one a poll of the socket pair)


async def _feed(theirs: socket.socket, ours: socket.socket, pieces: list[bytes], hold: bool) -> None:
    """Write ``pieces`` one after another, each once the client has read the one before and its handshake
    has had a turn; then close (or, ``hold``, keep the connection open)."""
    try:
        for piece in pieces:
            theirs.sendall(piece)
            for _ in range(TURNS):
                await asyncio.sleep(0)
                if not select.select([ours], [], [], 0)[0]:
                    break
            for _ in range(3):  # the handshake's turn with this piece alone
                await asyncio.sleep(0)
        if not hold:
            theirs.shutdown(socket.SHUT_WR)
    except OSError:  # the client refused and closed before the last piece
        pass


async def _refusal(pieces: list[bytes], hold: bool, timeout: float) -> TransportError:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)

    async def connected(_loop: asyncio.AbstractEventLoop, _host: str, _port: int) -> socket.socket:
        return ours

    feeder = asyncio.create_task(_feed(theirs, ours, pieces, hold))
    try:
        with mock.patch.object(tls_client, "_connect", connected), pytest.raises(TransportError) as caught:
            await asyncio.wait_for(TlsClientConnection.open(HOST, PORT, CONTEXT, timeout=timeout), 10.0)
    finally:
        await feeder
        theirs.close()
        ours.close()
    return caught.value


def refusal(pieces: list[bytes], *, hold: bool = False, timeout: float = 0.5) -> str:
    """The text of the client's refusal of a server that sends ``pieces`` (then closes, or ``hold``s the
    connection until the client gives up); its kind is ``"tls"``."""
    err = asyncio.run(_refusal(pieces, hold, timeout))
    assert err.kind == "tls", err
    return str(err)


def cuts(data: bytes) -> list[list[bytes]]:
    """``data`` whole, a byte at a time, and cut in two at each of its first 8 boundaries."""
    return [[data], [data[i:i + 1] for i in range(len(data))]] + [[data[:i], data[i:]] for i in range(1, 9)]


def test_the_found_example_reads_the_same_whole_and_a_byte_at_a_time() -> None:
    whole, apart = refusal([HTTP]), refusal([HTTP[i:i + 1] for i in range(len(HTTP))])
    assert whole == apart == f"{WHERE} (it begins 48 ('H'): looks like HTTP?)"


@pytest.mark.parametrize("hold", [False, True], ids=["closed", "held-open"])
@pytest.mark.parametrize(("data", "words"), [
    (HTTP, "it begins 48 ('H'): looks like HTTP?"),
    (b"SSH-2.0-OpenSSH_9.6\r\n", "it begins 53 ('S'): looks like SSH or SIP?"),
    (b"SIP/2.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "it begins 53 ('S'): looks like SSH or SIP?"),
    (bytes.fromhex("57 01 02 00 00 00 00 01 00 00"), "it begins 57 ('W'): looks like a TVS frame, a TVS "
                                                     "without TLS? (spec §E.2)"),
    (bytes.fromhex("55 01 00 00 00 07 00 00"), "it begins 55 ('U'): looks like a CAPF frame, a CAPF without "
                                               "TLS? (spec §F.2)"),
    (b"no\n", "it begins 6e ('n')"),  # fewer bytes than a record header
    (b"\x16\x01\x00\x00\x05hello", "it begins 16 01"),  # a handshake's content type, then no version 3.x
    (b"\x00\x03\x03\x00\x02\x02\x28", "it begins 00"),
], ids=["http", "ssh", "sip", "tvs-frame", "capf-frame", "short", "second-byte", "nul"])
def test_a_refusal_reads_the_same_however_its_bytes_came(data: bytes, words: str, hold: bool) -> None:
    """Quoted up to the first byte that cannot begin a TLS record, never further; what it may be is told by
    that byte when it is the first (the server a phone reached on its TVS, CAPF or SIPS port)."""
    texts = {refusal(pieces, hold=hold) for pieces in cuts(data)}
    assert texts == {f"{WHERE} ({words})"}


def test_a_first_byte_that_cannot_begin_a_record_is_refused_at_once() -> None:
    """No wait for OpenSSL's 5-byte record header: the server holds the connection after ``SIP`` and the
    client's deadline is 60 s (was: refused at the deadline; the wait_for in :func:`_refusal` is 10 s)."""
    said = refusal([b"SIP"], hold=True, timeout=60.0)
    assert said == f"{WHERE} (it begins 53 ('S'): looks like SSH or SIP?)"
    assert refusal([b"\x15", b"\x00"], hold=True, timeout=60.0) == f"{WHERE} (it begins 15 00)"


def test_bytes_that_may_be_tls_are_not_said_to_be_something_else() -> None:
    """A record header's start (a TLS alert's 15 03) that then closes: the server closed in the handshake."""
    for pieces in cuts(b"\x15\x03\x03"):
        err = asyncio.run(_refusal(pieces, False, 0.5))
        assert (err.kind, str(err)) == ("unreachable", f"{HOST}:{PORT}: the server closed the connection "
                                                       f"during the TLS handshake (3 bytes from it)"), pieces


not_tls_starts = st.one_of(
    st.integers(0, 255).filter(lambda b: b not in range(20, 25)).map(lambda b: bytes((b,))),
    st.tuples(st.integers(20, 24), st.integers(0, 255).filter(lambda b: b != 3)).map(bytes),
    st.sampled_from([b"HTTP/1.1 ", b"SSH-2.0-", b"SIP/2.0 ", b"\x57\x01", b"\x55\x01"]))


@st.composite
def split(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cut_at = sorted(set(draw(st.lists(st.integers(1, len(data) - 1), max_size=8)))) if len(data) > 1 else []
    return [data[a:b] for a, b in zip([0, *cut_at], [*cut_at, len(data)], strict=True)]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.tuples(not_tls_starts, st.binary(max_size=24)).map(b"".join), st.booleans(), st.data())
def test_an_answer_that_is_not_tls_fed_in_pieces_reads_as_fed_whole(data: bytes, hold: bool,
                                                                   draw: st.DataObject) -> None:
    pieces = draw.draw(split(data))
    assert refusal(pieces, hold=hold) == refusal([data], hold=hold)
