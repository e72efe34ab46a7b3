"""A real cluster's HTTP 6970 as ``boot`` meets it (:mod:`phoneemu.net.http`, :mod:`phoneemu.net.fetch`,
:mod:`phoneemu.commands._watched_fetch`), over real loopback sockets:

* a file whose HTTP body is coming is said downloading after the watcher's mark, with its bytes so far over
  HTTP (was "still waiting for NAME ... a server that does not answer costs each file its tries of
  --timeout": only TFTP transfers were counted);
* an HTTP time-out says how far the exchange got and what to try — the body under way (its bytes so
  far), a connection with no response, no connection at all (a firewall's silence) — in its one line (was
  "timeout after 2.0s" whatever happened);
* HTTP answering none of the requests TFTP then answered is a ``note:`` under the summary saying what to
  try (a wrong ``--http-port``, a lab on another port);
* ``--capf-in-progress-seconds``' help says what ``lab serve``'s cap on REQUEST_IN_PROGRESS makes of a short
  cadence (a key generation longer than 256 x S is cut as a flood: 64 s at 0.25 s).

The servers hold the rest of a body until the test lets it go, so what is counted does not depend on how
fast the machine is; the watcher's mark is held until the client has counted the part sent.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from phoneemu.cli import main
from phoneemu.commands._watched_fetch import Ports, WatchedFetcher
from phoneemu.errors import TransportError
from phoneemu.net.fetch import HttpFetcher, HttpThenTftpFetcher, TftpFetcher
from phoneemu.net.http import http_get
from phoneemu.net.tftp_server import TftpServer
from phoneemu.protocols.defaults import MAX_IN_PROGRESS
from tests.real_cluster_helpers import HttpHandler, never_answering, serve_http, syn_dropping_port

HOST = "127.0.0.1"
NAME = "sip88xx.14-2-1-0001-14.loads"
SENT = 1000  # the body bytes the server sends before it holds the rest back
TOTAL = 3000
HELD_S = 5.0  # the longest a server holds the rest of the body (a test gone wrong ends)
POLLS = 1000  # the watcher's mark polls the client's count at most this many times, 5 ms apart




def _holding(release: asyncio.Event) -> HttpHandler:
    """A 200 with Content-Length :data:`TOTAL`: :data:`SENT` bytes at once, the rest once ``release`` is
    set."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {TOTAL}\r\nConnection: close\r\n\r\n".encode()
                     + b"a" * SENT)
        await writer.drain()
        try:
            await asyncio.wait_for(release.wait(), HELD_S)
            writer.write(b"b" * (TOTAL - SENT))
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
    return handle


def test_an_http_download_under_way_is_said_with_its_bytes_so_far(unasked_tftp_port: int,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    release = asyncio.Event()
    speak = WatchedFetcher._still_waiting

    def held_mark(watcher: WatchedFetcher, name: str) -> None:
        async def once_counted() -> None:
            for _ in range(POLLS):  # the client has counted the part sent (or the test fails below)
                if watcher.bytes_so_far() == SENT:
                    break
                await asyncio.sleep(0.005)
            speak(watcher, name)
        asyncio.get_running_loop().create_task(once_counted())

    monkeypatch.setattr(WatchedFetcher, "_still_waiting", held_mark)

    async def run(port: int) -> bytes:
        fetcher = HttpThenTftpFetcher(HttpFetcher(HOST, port, timeout=HELD_S * 2),
                                      TftpFetcher(HOST, unasked_tftp_port, timeout=HELD_S * 2, retries=0))

        def tell(text: str) -> None:
            said.append(text)
            release.set()

        watched = WatchedFetcher(fetcher, Ports(HOST, unasked_tftp_port, port), tell=tell, slow_s=0.01)
        data = await watched.fetch(NAME)
        assert fetcher.bytes_so_far() is None and fetcher.asking == ""  # nothing under way any more
        assert fetcher.transport == "http"
        return data

    ports: list[int] = []

    async def with_port(port: int) -> bytes:
        ports.append(port)
        return await run(port)

    assert asyncio.run(serve_http(_holding(release), with_port)) == b"a" * SENT + b"b" * (TOTAL - SENT)
    assert said == [f"still downloading {NAME} after 0.01 s: {SENT} bytes so far over HTTP "
                    f"{HOST}:{ports[0]} (Ctrl-C stops)"]


def test_http_get_hands_over_its_count_once() -> None:
    readers: list[Callable[[], int]] = []
    release = asyncio.Event()
    seen: list[int] = []

    async def run(port: int) -> bytes:
        async def watch() -> None:
            for _ in range(POLLS):
                if readers and readers[0]() == SENT:
                    break
                await asyncio.sleep(0.005)
            seen.append(readers[0]())
            release.set()

        watching = asyncio.get_running_loop().create_task(watch())
        data = await http_get(HOST, port, NAME, timeout=HELD_S * 2, on_start=readers.append)
        await watching
        return data

    data = asyncio.run(serve_http(_holding(release), run))
    assert len(data) == TOTAL and len(readers) == 1
    assert seen == [SENT]
    assert readers[0]() == TOTAL


def _timeout_of(handle: HttpHandler) -> str:
    """The message of an ``http_get`` of :data:`NAME` that times out (0.5 s) against ``handle``."""
    async def run(port: int) -> str:
        with pytest.raises(TransportError) as caught:
            await http_get(HOST, port, NAME, timeout=0.5)
        assert caught.value.kind == "timeout"
        return f"{caught.value.message} (port {port})"
    return str(asyncio.run(serve_http(handle, run)))


def test_a_timeout_with_the_body_under_way_says_its_bytes_and_what_to_try() -> None:
    """The server sends its part at once and never the rest (its event is never set): the 0.5 s bound is
    the wait for more of the body (was the whole exchange's: :mod:`tests.unit.test_http_wait_cap`)."""
    text = _timeout_of(_holding(asyncio.Event()))
    port = text.rsplit("(port ", 1)[1].rstrip(")")
    assert text.startswith(f"http://{HOST}:{port}/{NAME}: no data for 0.5 s with the {TOTAL}-byte body "
                           "under way (a stalled server or link: a longer timeout waits longer)"), text


def test_a_timeout_on_a_connection_that_never_answers_says_so() -> None:
    text = _timeout_of(never_answering)
    port = text.rsplit("(port ", 1)[1].rstrip(")")
    assert text.startswith(f"http://{HOST}:{port}/{NAME}: timeout after 0.5s, connected, but no response to "
                           f"the GET (is port {port} an HTTP file server?)"), text


def test_a_timeout_with_no_connection_says_firewall_or_host_down() -> None:
    with syn_dropping_port(HOST) as port, pytest.raises(TransportError) as caught:
        asyncio.run(http_get(HOST, port, NAME, timeout=0.5))
    assert caught.value.kind == "timeout"
    assert caught.value.message == (f"http://{HOST}:{port}/{NAME}: timeout after 0.5s, no connection (a "
                                    f"firewall dropping TCP {port}, or the host down: is the HTTP file "
                                    "service reachable from here?)")


def test_http_answering_none_behind_an_answering_tftp_is_a_note_with_what_to_try() -> None:
    files = {"SEP001122334455.cnf.xml": b"<device/>", "ITLFile.tlv": b"x" * 10}

    async def run() -> WatchedFetcher:
        with socket.socket() as dead:  # bound, not listening: a connection to it is refused
            dead.bind((HOST, 0))
            dead_port = dead.getsockname()[1]
            async with TftpServer(files, HOST, 0) as tftp:
                fetcher = HttpThenTftpFetcher(HttpFetcher(HOST, dead_port, timeout=HELD_S),
                                              TftpFetcher(HOST, tftp.port, timeout=HELD_S, retries=0))
                watched = WatchedFetcher(fetcher, Ports(HOST, tftp.port, dead_port), tell=lambda _: None)
                for name, data in files.items():
                    assert await watched.fetch(name) == data
                assert watched.http_unanswered_note() == (
                    f"HTTP {HOST}:{dead_port} answered none of 2 request(s), so each file was asked of TFTP "
                    "after it failed: CUCM serves files on TCP 6970 (spec §H.1); another port: --http-port "
                    "N; TFTP alone: --no-http")
                return watched

    asyncio.run(run())


def test_http_answering_is_no_note() -> None:
    watched = WatchedFetcher(object(), Ports(HOST, 69, 6970), tell=lambda _: None)
    watched.requests.update({"http": 3})
    watched.answers.update({"http": 3})
    assert watched.http_unanswered_note() is None


@pytest.mark.parametrize("command", [["boot"], ["fleet", "boot"]])
def test_capf_in_progress_help_says_what_the_cap_makes_of_a_short_cadence(
        command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert (f"lab serve takes at most {MAX_IN_PROGRESS} a session (--capf-max-in-progress): a key generation "
            f"longer than {MAX_IN_PROGRESS} x S (64 s at 0.25) is cut as a flood") in text, text
