"""An HTTP 6970 download is bounded as a TFTP one is (:mod:`phoneemu.net.http`, our convention): ``timeout``
bounds each wait — the connection, the response head, each read of the body — and ``max_time`` (the
phone's ``fetch_max_time``, ``--fetch-max-time``) the whole download. Was: ``timeout`` (``--timeout``, 2 s)
bounded the whole download, so a file taking longer over a slow link was cut and asked of TFTP.

Over real loopback sockets: servers that send a body a piece at a time (each gap well inside the wait,
the pieces in all longer than it), or stop sending (held until the client leaves, at most
:data:`HELD_S`). No elapsed time is asserted: what a cut says is.
"""

from __future__ import annotations

import asyncio

import pytest

from phoneemu.cli import build_parser
from phoneemu.fleet.engine import FleetSpec, fetcher_for, make_phones
from phoneemu.net.fetch import HttpFetcher, HttpThenTftpFetcher, TftpFetcher
from phoneemu.net.http import HttpTimeoutError, http_get
from phoneemu.phone.boot import BootTarget
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile
from tests.real_cluster_helpers import HttpHandler, fetch_watched, never_answering, serve_http

HOST = "127.0.0.1"
NAME = "ITLSEP0A00000000E1.tlv"
PIECE = 100  # body bytes a trickling server sends at a time
GAP_S = 0.05  # between two pieces: far inside every wait below (a tenth of it)
WAIT_S = 0.5  # the client's wait (timeout): shorter than the trickles below in all
PIECES = 12  # PIECES x GAP_S = 0.6 s, longer than WAIT_S
CAP_S = 0.3  # a whole download's cap (max_time) shorter than WAIT_S: what cuts is the cap
HELD_S = 5.0  # the longest a server holds or trickles (a test gone wrong ends)
MAC = "0A00000000E1"



def _head(framing: str, total: int) -> bytes:
    """A 200 head announcing ``total`` bytes (Content-Length), a chunked body, or one read to the close."""
    field = {"length": f"Content-Length: {total}\r\n", "chunked": "Transfer-Encoding: chunked\r\n",
             "eof": ""}[framing]
    return f"HTTP/1.1 200 OK\r\n{field}Connection: close\r\n\r\n".encode()


def _piece(framing: str, data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if framing == "chunked" else data


def _trickling(pieces: int, *, framing: str = "length", total: int | None = None) -> HttpHandler:
    """A 200 whose body comes :data:`PIECE` bytes every :data:`GAP_S` s, ``pieces`` times; then, when
    ``total`` is more than those, nothing more until the client leaves (at most :data:`HELD_S`), else the
    end of the body."""
    sent = pieces * PIECE
    whole = sent if total is None else total

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(_head(framing, whole))
            for _ in range(pieces):
                writer.write(_piece(framing, b"p" * PIECE))
                await writer.drain()
                await asyncio.sleep(GAP_S)
            if whole > sent:
                await asyncio.wait_for(reader.read(), HELD_S)  # the client's cut closes it
            elif framing == "chunked":
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
    return handle


def _cut(handle: HttpHandler, *, timeout: float, max_time: float) -> tuple[HttpTimeoutError, int]:
    """The time-out of an ``http_get`` of :data:`NAME` against ``handle``, and the server's port."""
    async def run(port: int) -> tuple[HttpTimeoutError, int]:
        with pytest.raises(HttpTimeoutError) as caught:
            await http_get(HOST, port, NAME, timeout=timeout, max_time=max_time)
        return caught.value, port
    result: tuple[HttpTimeoutError, int] = asyncio.run(serve_http(handle, run))
    return result


@pytest.mark.parametrize("framing", ["length", "chunked", "eof"])
def test_http_wait_cap_a_body_coming_steadily_longer_than_the_timeout_completes(framing: str) -> None:
    async def run(port: int) -> bytes:
        return await http_get(HOST, port, NAME, timeout=WAIT_S)  # the default cap: 60 s

    assert asyncio.run(serve_http(_trickling(PIECES, framing=framing), run)) == b"p" * PIECE * PIECES


def test_http_wait_cap_a_phones_slow_file_comes_over_http_not_tftp(unasked_tftp_port: int) -> None:
    """The fetcher :meth:`Phone.fetcher_for` builds (HTTP 6970 then TFTP, spec §H.1), its ``http_timeout``
    shorter than the whole download."""
    phone = Phone(mac=MAC, profile=get_profile("cp-8861"), flash=None, clock=lambda: 1_780_000_000,
                  fetch_timeout=HELD_S, fetch_retries=0, http_timeout=WAIT_S)

    async def run(port: int) -> tuple[bytes, str, object]:
        fetcher = phone.fetcher_for(BootTarget(host=HOST, tftp_port=unasked_tftp_port, http_port=port))
        assert isinstance(fetcher, HttpThenTftpFetcher)
        data = await fetcher.fetch(NAME)
        return data, fetcher.transport, fetcher.last_fallback

    assert asyncio.run(serve_http(_trickling(PIECES), run)) == (b"p" * PIECE * PIECES, "http", None)


def test_http_wait_cap_a_body_that_stops_coming_is_cut_by_the_wait() -> None:
    """Pieces for longer than the wait, then none: cut one wait after the last, the body's size said (not
    the bytes come so far: phones of a fleet cut at different bytes of one file fail alike)."""
    error, port = _cut(_trickling(PIECES, total=3000), timeout=WAIT_S, max_time=HELD_S * 2)
    assert error.message == (f"http://{HOST}:{port}/{NAME}: no data for {WAIT_S:g} s with the 3000-byte body "
                             "under way (a stalled server or link: a longer timeout waits longer)")
    assert error.kind == "timeout" and error.responded and not error.capped


def test_http_wait_cap_a_body_trickling_past_the_cap_is_cut_by_the_cap() -> None:
    error, port = _cut(_trickling(int(HELD_S / GAP_S), total=100_000), timeout=WAIT_S, max_time=CAP_S)
    assert error.message == (f"http://{HOST}:{port}/{NAME}: took longer than {CAP_S:g} s in all (the "
                             "100000-byte body under way)")
    assert error.kind == "timeout" and error.responded and error.capped


def test_http_wait_cap_a_cap_before_any_response_says_so() -> None:
    error, port = _cut(never_answering, timeout=HELD_S, max_time=0.3)
    assert error.message == (f"http://{HOST}:{port}/{NAME}: took longer than 0.3 s in all (connected, no "
                             "response yet)")
    assert error.capped and not error.responded


def test_http_wait_cap_the_phones_cap_cuts_http_then_tftp_answers() -> None:
    """:meth:`Phone.fetcher_for` gives HTTP the phone's ``fetch_max_time``; the file cut there comes over
    TFTP, and ``boot``'s note says which option gives HTTP more time."""
    phone = Phone(mac=MAC, profile=get_profile("cp-8861"), flash=None, clock=lambda: 1_780_000_000,
                  fetch_timeout=HELD_S, fetch_retries=0, http_timeout=WAIT_S, fetch_max_time=CAP_S)
    files = {NAME: b"itl", "SEP0A00000000E1.cnf.xml": b"<device/>"}

    note, fell_back = asyncio.run(serve_http(_trickling(int(HELD_S / GAP_S), total=100_000),
                                               lambda port: fetch_watched(phone, files, port)))
    assert isinstance(fell_back, HttpTimeoutError) and fell_back.capped
    assert note is not None and note.endswith(
        " answered none of 2 request(s) in time: --fetch-max-time cut 2 response(s) with the body still "
        "coming, so each file was asked of TFTP after it: a slow link needs a longer --fetch-max-time S (it "
        "caps one download as a whole)"), note


def test_http_wait_cap_the_fleets_own_fetchers_take_the_phones_cap() -> None:
    """The fetchers the fleet builds itself (``blksize`` set) give HTTP the same cap and wait."""
    spec = FleetSpec(target=BootTarget(host=HOST, http_port=6970), count=1, fetch_timeout=0.5,
                     fetch_retries=1, fetch_max_time=0.8, blksize=1024)
    (phone,) = make_phones(spec, [0x0A00000000E2], pool=None)
    fetcher = fetcher_for(phone, spec, None)
    assert isinstance(fetcher, HttpThenTftpFetcher) and isinstance(fetcher.tftp, TftpFetcher)
    assert isinstance(fetcher.http, HttpFetcher)
    assert (fetcher.http.max_time, fetcher.http.timeout, fetcher.tftp.max_time) == (0.8, 0.5, 0.8)


@pytest.mark.parametrize("command", [["boot"], ["fleet", "boot"]])
@pytest.mark.parametrize("option", ["--fetch-max-time", "--tftp-max-time"])
def test_http_wait_cap_the_option_has_its_new_name_and_keeps_its_old_one(command: list[str],
                                                                         option: str) -> None:
    args = build_parser().parse_args([*command, "--tftp", HOST, option, "7.5"])
    assert args.fetch_max_time == 7.5


@pytest.mark.parametrize("command", [["boot"], ["fleet", "boot"]])
def test_http_wait_cap_timeout_help_says_each_wait(command: list[str],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "of each wait of an HTTP download (to connect, for the response head, for more of the body" in text
    assert "HTTP download as a whole" not in text
    assert "--fetch-max-time S, --tftp-max-time S give up one file's download, TFTP or HTTP" in text
