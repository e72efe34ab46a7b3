"""H39: a response that does not begin ``HTTP/`` is refused at its first byte that cannot, in words that do
not depend on the pieces its bytes came in (:func:`phoneemu.net.http.read_response`, module docstring).

Found by ``test_a_response_fed_in_pieces_reads_as_fed_whole``: ``ITTP/...`` fed whole was refused as
"begins 49 54 54 50 2f ('ITTP/')", fed as ``I`` then the rest as "begins 49 ('I')" (the bytes the first
read held were quoted)."""

from __future__ import annotations

import asyncio

import pytest

from phoneemu.errors import TransportError
from phoneemu.net.http import read_response

NAME = "f.bin"
FOUND = b"ITTP/1.1 200 OK\r\ncontent-length:0\r\n\r\n"  # the property's example


async def _refusal(pieces: list[bytes], max_header: int, eof: bool) -> str:
    reader = asyncio.StreamReader(limit=4096)

    async def feeder() -> None:
        for piece in pieces:
            reader.feed_data(piece)
            await asyncio.sleep(0)
        if eof:
            reader.feed_eof()

    task = asyncio.create_task(feeder())
    try:
        with pytest.raises(TransportError) as caught:
            await asyncio.wait_for(read_response(reader, NAME, max_size=1024, max_header=max_header), 2.0)
    finally:
        await task
    assert (caught.value.kind, caught.value.path) == ("protocol", NAME), caught.value
    return str(caught.value)


def refusal(pieces: list[bytes], *, max_header: int = 4096, eof: bool = True) -> str:
    """The text of the reader's refusal of ``pieces``, fed one after another (then EOF when ``eof``)."""
    return asyncio.run(_refusal(pieces, max_header, eof))


def cuts(data: bytes) -> list[list[bytes]]:
    """``data`` whole, a byte at a time, and cut in two at each of its first 8 boundaries."""
    return [[data], [data[i:i + 1] for i in range(len(data))]] + [[data[:i], data[i:]] for i in range(1, 9)]


def test_the_found_example_reads_the_same_whole_and_with_its_first_byte_alone() -> None:
    whole, apart = refusal([FOUND]), refusal([FOUND[:1], FOUND[1:]])
    assert whole == apart
    assert "malformed status line: the response begins 49 ('I'), not 'HTTP/' (an HTTP/0.9 server" in whole


@pytest.mark.parametrize(("data", "words"), [
    (FOUND, "begins 49 ('I'), not 'HTTP/' (an HTTP/0.9 server sending the file with no status line, or not "
            "an HTTP server)"),
    (b"HTX/1.1 200 OK\r\n\r\n", "begins 48 54 58 ('HTX'), not 'HTTP/'"),
    (b"HTTPS/1.1 200 OK\r\n\r\n", "begins 48 54 54 50 53 ('HTTPS'), not 'HTTP/'"),
    (b"\r\n\r\nXTTP/1.1 200 OK\r\n\r\n", "begins 58 ('X') after 4 bytes of empty lines, not 'HTTP/'"),
    (b"\n\rXTTP/1.1 200 OK\r\n\r\n", "begins 0d 58 after 1 byte of empty lines, not 'HTTP/'"),
    (b"\x16\x03\x03\x00\x30" + b"\x00" * 48, "begins 16, not 'HTTP/' (an HTTP/0.9 server sending the file "
                                             "with no status line, or not an HTTP server: looks like TLS, "
                                             "an HTTPS server?)"),
    (b"\x15\x03\x01\x00\x02\x02\x46", "begins 15, not 'HTTP/' (an HTTP/0.9 server sending the file with no "
                                      "status line, or not an HTTP server: looks like a TLS alert, a TLS "
                                      "server?)"),
    (b"SIP/2.0 400 Bad Request\r\n\r\n", "begins 53 ('S'), not 'HTTP/' (an HTTP/0.9 server sending the "
                                         "file with no status line, or not an HTTP server: looks like SSH or "
                                         "SIP?)"),
    (b"SSH-2.0-OpenSSH_9.6\r\n", "begins 53 ('S'), not 'HTTP/'"),
], ids=["found", "htx", "https", "after-empty-lines", "cr-then-x", "tls-handshake", "tls-alert", "sip",
        "ssh"])
def test_a_refusal_reads_the_same_however_its_bytes_came(data: bytes, words: str) -> None:
    """Quoted up to the first byte that cannot begin ``HTTP/``, never further; what it may be is told by that
    byte (a TLS alert, a SIP answer: a phone whose HTTP port is a TLS or SIP server's)."""
    texts = {refusal(pieces) for pieces in cuts(data)}
    assert len(texts) == 1, texts
    assert f"{NAME}: malformed status line: the response {words}" in texts.pop()


def test_a_refusal_comes_before_the_head_bound_whatever_the_reads() -> None:
    """Each byte is counted as it is taken: ``ABCDE`` under a 2-byte bound is refused at ``A`` (was: whole,
    "response head above 2 bytes"; the ``A`` alone, refused as not HTTP)."""
    for pieces in cuts(b"ABCDE"):
        assert "the response begins 41 ('A'), not 'HTTP/'" in refusal(pieces, max_header=2), pieces
    for pieces in cuts(b"\r\n\r\nA"):  # empty lines over the bound: the bound's refusal, every way
        assert "response head above 3 bytes" in refusal(pieces, max_header=3), pieces


def test_a_first_byte_that_cannot_begin_http_is_refused_at_once() -> None:
    """No waiting for more: the server holds its connection open after its first byte (the wait_for in
    :func:`refusal` is 2 s)."""
    assert "the response begins 53 ('S'), not 'HTTP/'" in refusal([b"S"], eof=False)
    assert "the response begins 48 54 58 ('HTX'), not 'HTTP/'" in refusal([b"H", b"T", b"X"], eof=False)
