"""Robustness of the lab servers under hostile load, over loopback (audit findings)."""

from __future__ import annotations

import asyncio
import os
import resource
import socket
from collections.abc import Iterator

import pytest

from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.net import tftp_server
from phoneemu.net.http import http_get
from phoneemu.net.tftp_codec import ReadRequest, encode
from phoneemu.net.tftp_server import TftpServer, transfer_socket_budget
from tests.helpers import lab_template, run

HOST = "127.0.0.1"
MAC = "0011223344DD"


template = lab_template("harden", seed=12, phones={MAC: {}})


@pytest.fixture
def low_fd_limit() -> Iterator[int]:
    """A soft RLIMIT_NOFILE a few hundred above what is open now (restored afterwards)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    open_now = len(os.listdir("/proc/self/fd"))
    low = min(soft, open_now + 300)
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        yield low
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _rrq(name: str, **options: str) -> bytes:
    return encode(ReadRequest(filename=name, mode="octet", options=options))


def test_rrq_flood_leaves_descriptors_for_http(cluster: LabCluster, low_fd_limit: int,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """An RRQ flood from many (spoofable) source ports: excess RRQs get ERROR "server busy", the
    TFTP server never holds more transfer sockets than its budget, and HTTP still answers. The flood's
    sources send no ICMP port unreachable back (spoofed addresses do not: here the server is not told
    of it), so every transfer holds its socket until its retries run out."""
    monkeypatch.setattr(tftp_server, "report_icmp_errors", lambda _sock: False)
    flood = 2 * low_fd_limit

    async def main() -> None:
        async with LabServers(cluster) as servers:
            tftp = servers.tftp
            assert tftp is not None and tftp.max_transfers <= transfer_socket_budget() < low_fd_limit
            tftp.timeout = 60.0  # no flood transfer runs out of retries before the last request, however slow
            rrq = _rrq("ITLFile.tlv")
            loop = asyncio.get_running_loop()
            # the last request's port is taken first: no flood socket gets it (a same-port RRQ while its
            # transfer runs is a retransmission, ignored)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as last:
                last.bind((HOST, 0))
                last.setblocking(False)
                for _ in range(flood):  # each from a new port, closed at once: a new "peer" every time
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                        s.sendto(rrq, (HOST, servers.ports["tftp"]))
                    await asyncio.sleep(0)
                await _wait_until_full(tftp)
                await loop.sock_sendto(last, rrq, (HOST, servers.ports["tftp"]))
                answer = await asyncio.wait_for(loop.sock_recv(last, 1024), 5)
            assert answer[:4] == b"\x00\x05\x00\x00" and b"busy" in answer, answer
            assert tftp.stats.get("busy", 0) > 0 and tftp.active_transfers <= tftp.max_transfers
            body = await http_get(HOST, servers.ports["http"], "ITLFile.tlv", timeout=5)
            assert body == cluster.get("ITLFile.tlv")

    run(main(), limit=60)


async def _wait_until_full(tftp: TftpServer, *, rounds: int = 1500) -> None:
    """Wait (at most ``rounds`` x 20 ms) until ``tftp`` holds ``max_transfers`` transfers: the server may
    still be reading the flood off its socket."""
    for _ in range(rounds):
        if tftp.active_transfers >= tftp.max_transfers:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the flood left the server at {tftp.active_transfers} of {tftp.max_transfers} "
                         f"transfers after {rounds * 0.02:g} s (stats {tftp.stats})")


def test_client_timeout_option_is_capped() -> None:
    """A client asking for timeout=255 (a transfer kept alive for 25 minutes) is not acknowledged:
    the server's own timeout applies; a modest one is acknowledged as asked."""
    async def main() -> None:
        async with TftpServer({"f": b"x" * 600}, HOST, 0, timeout=0.05, retries=1) as srv:
            loop = asyncio.get_running_loop()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.setblocking(False)
                await loop.sock_sendto(s, _rrq("f", timeout="255", tsize="0"), (HOST, srv.port))
                oack = await asyncio.wait_for(loop.sock_recv(s, 1024), 5)
                assert oack[:2] == b"\x00\x06" and b"timeout" not in oack and b"tsize" in oack
                for _ in range(100):  # never ACKed: over after 0.05 s * 2 tries, not 255 s
                    if srv.active_transfers == 0:
                        break
                    await asyncio.sleep(0.05)
                assert srv.active_transfers == 0 and srv.stats.get("timeout") == 1
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.setblocking(False)
                await loop.sock_sendto(s, _rrq("f", timeout="2"), (HOST, srv.port))
                oack = await asyncio.wait_for(loop.sock_recv(s, 1024), 5)
                assert oack == b"\x00\x06timeout\x002\x00"

    run(main(), limit=30)


@pytest.mark.parametrize(("head", "words"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\nxx", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1\xb9\r\n\r\nabc", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: " + b"9" * 4400 + b"\r\n\r\n", "bad Content-Length"),
    (b"HTTP/1.1 2\xb200 OK\r\nContent-Length: 1\r\n\r\nx", "malformed status line"),
], ids=["superscript-two", "one-superscript-one", "4400-digits", "superscript-in-status"])
def test_http_client_wants_ascii_digits(head: bytes, words: str) -> None:
    """The head is read as latin-1: '²' (0xB2) passed isdigit() and made int() raise ValueError, as
    did a length of more than 4300 digits (int's limit)."""
    from phoneemu.errors import TransportError

    async def main() -> None:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(head)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, HOST, 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            with pytest.raises(TransportError) as info:
                await http_get(HOST, port, "f", timeout=5, max_header=8192)
            assert words in str(info.value) and info.value.kind == "protocol"

    run(main(), limit=20)


# --------------------------------------------------------------------------- 5. good frame + garbage
GARBAGE = b"GET / HTTP/1.0\r\n\r\n"


def test_frame_buffer_keeps_the_frames_before_garbage() -> None:
    from phoneemu.errors import DecodeError
    from phoneemu.protocols import tvs

    req = tvs.verify_request(7, "CP-8861-SEP" + MAC, b"cert")
    decoder = tvs.FrameDecoder()
    msgs = decoder.feed(tvs.encode(req) + GARBAGE)
    assert len(msgs) == 1
    assert isinstance(decoder.error, DecodeError) and "offset" in str(decoder.error)
    with pytest.raises(DecodeError):
        decoder.feed(b"")
    with pytest.raises(DecodeError):
        decoder.eof()
    fresh = tvs.FrameDecoder()
    with pytest.raises(DecodeError):  # garbage alone: raised at once, as before
        fresh.feed(GARBAGE)


@pytest.mark.parametrize("impl", ["loop", "threads", "asyncio"])
def test_tvs_answers_a_valid_frame_then_reports_the_garbage_after_it(cluster: LabCluster, impl: str) -> None:
    import contextlib
    import ssl

    from phoneemu.net.tls import client_context_verify_after_handshake, open_tls_connection
    from phoneemu.protocols import tvs

    req = tvs.verify_request(1001, f"CP-8861-SEP{MAC}", cluster.callmanager().der)

    async def main() -> None:
        async with LabServers(cluster, io_timeout=2, tvs_impl=impl) as servers:
            reader, writer = await open_tls_connection(HOST, servers.ports["tvs"],
                                                       client_context_verify_after_handshake(), timeout=3)
            got = b""
            try:
                writer.write(tvs.encode(req) + GARBAGE)  # one write: one TLS record, one server read
                await writer.drain()
                for _ in range(100):
                    chunk = await asyncio.wait_for(reader.read(65536), 5)
                    if not chunk:
                        break
                    got += chunk
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            msgs = tvs.FrameDecoder().feed(got)
            assert len(msgs) == 1 and tvs.check_response(req, msgs[0]).valid
            outcomes = [r.outcome for r in servers.requests if r.service == "tvs"]
            assert outcomes[0] == "valid" and outcomes[1].startswith("malformed"), outcomes

    run(main(), limit=30)


# --------------------------------------------------------------------------- 8. TFTP client
@pytest.mark.parametrize("reply", [b"\x00\x03", b"\x00", b"\x00\x09junk", b"\x00\x05\x00\x01no-nul"])
def test_tftp_client_reports_a_malformed_first_reply_not_a_timeout(reply: bytes) -> None:
    from phoneemu.errors import TransportError
    from phoneemu.net.tftp_client import tftp_get

    async def main() -> None:
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((HOST, 0))
            s.setblocking(False)

            async def answer() -> None:
                _rrq, addr = await loop.sock_recvfrom(s, 2048)
                await loop.sock_sendto(s, reply, addr)

            task = asyncio.create_task(answer())
            with pytest.raises(TransportError) as info:
                await tftp_get(HOST, s.getsockname()[1], "f", timeout=0.5, retries=2)
            await task
        assert info.value.kind == "protocol" and "malformed reply at offset" in str(info.value)

    run(main(), limit=20)


# --------------------------------------------------------------------------- 8. lab server logs
def test_capf_handshake_failure_is_logged_and_recorded(cluster: LabCluster,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """A client that is no TLS client at all (or refuses our certificate) used to vanish without a
    trace: now a warning and a 'tls-failed' entry in the request log."""

    async def main() -> None:
        async with LabServers(cluster, io_timeout=2) as servers:
            reader, writer = await asyncio.open_connection(HOST, servers.ports["capf"])
            writer.write(b"GET / HTTP/1.0\r\n\r\n")
            await writer.drain()
            assert await asyncio.wait_for(reader.read(100), 5) == b""
            writer.close()
            for _ in range(100):
                if any(r.service == "capf" for r in servers.requests):
                    break
                await asyncio.sleep(0.02)
            entries = [r for r in servers.requests if r.service == "capf"]
            assert [r.outcome for r in entries] == ["tls-failed"] and "handshake" in entries[0].detail
            assert servers.capf is not None and servers.capf.handshake_failures == 1

    with caplog.at_level("WARNING", logger="phoneemu.net.tls"):
        run(main(), limit=30)
    assert any("capf" in r.getMessage() and "handshake failed" in r.getMessage() for r in caplog.records)


def test_successful_tftp_and_http_requests_are_logged_at_info(cluster: LabCluster,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    """``lab serve -v`` sets INFO: every request shows, not only the failures."""
    from phoneemu.net.tftp import tftp_get

    async def main() -> None:
        async with LabServers(cluster) as servers:
            await tftp_get(HOST, servers.ports["tftp"], "ITLFile.tlv", timeout=2)
            await http_get(HOST, servers.ports["http"], "ITLFile.tlv", timeout=5)

    with caplog.at_level("INFO", logger="phoneemu.lab.servers"):
        run(main(), limit=30)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "RRQ ITLFile.tlv: ok" in text and "GET ITLFile.tlv: 200" in text, text


# --------------------------------------------------------------------------- 9. TVS request bounds
async def _tvs_connection(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    from phoneemu.net.tls import client_context_verify_after_handshake, open_tls_connection

    return await open_tls_connection(HOST, port, client_context_verify_after_handshake(), timeout=5)


async def _read_until_closed(reader: asyncio.StreamReader, limit: float) -> tuple[bytes, bool]:
    """What the server sends within ``limit`` seconds, and whether it closed the connection."""
    import ssl

    got = b""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    try:
        while (left := end - loop.time()) > 0:
            chunk = await asyncio.wait_for(reader.read(65536), left)
            if not chunk:
                return got, True
            got += chunk
    except TimeoutError:
        return got, False
    except (ConnectionError, ssl.SSLError):
        return got, True
    return got, False


@pytest.mark.parametrize("impl", ["loop", "threads", "asyncio"])
def test_tvs_request_dripped_one_byte_at_a_time_times_out(cluster: LabCluster, impl: str) -> None:
    """A client sending a request one byte every 0.2 s used to restart the idle timeout with every
    byte and hold the connection (a worker, for the threaded server) as long as it liked; now the
    request must be complete within ``read_timeout`` of the handshake."""
    from phoneemu.protocols import tvs

    frame = tvs.encode(tvs.verify_request(1002, f"CP-8861-SEP{MAC}", cluster.callmanager().der))

    async def main() -> None:
        async with LabServers(cluster, io_timeout=1.0, tvs_impl=impl) as servers:
            reader, writer = await _tvs_connection(servers.ports["tvs"])
            closed = False
            try:
                for i in range(40):  # 8 s of dripping, eight times the read timeout (a loaded CI machine)
                    writer.write(frame[i : i + 1])
                    await writer.drain()
                    if reader.at_eof():
                        break
                    _got, closed = await _read_until_closed(reader, 0.2)
                    if closed:
                        break
            except (ConnectionError, OSError):
                closed = True
            finally:
                writer.close()
            assert closed, "the server kept a dripping client beyond its read timeout"
            for _ in range(100):
                if any(r.service == "tvs" for r in servers.requests):
                    break
                await asyncio.sleep(0.02)
            outcomes = [r.outcome for r in servers.requests if r.service == "tvs"]
            assert outcomes and outcomes[0] == "timeout", outcomes

    run(main(), limit=30)


@pytest.mark.parametrize("impl", ["loop", "threads", "asyncio"])
def test_tvs_answers_at_most_max_requests_frames_of_one_read(cluster: LabCluster, impl: str) -> None:
    """Frames pipelined in one write used to be answered all, whatever ``max_requests`` said."""
    from phoneemu.protocols import tvs

    req = tvs.verify_request(1003, f"CP-8861-SEP{MAC}", cluster.callmanager().der)

    async def main() -> None:
        async with LabServers(cluster, io_timeout=2, tvs_impl=impl) as servers:
            servers.tvs_handler.max_requests = 3
            reader, writer = await _tvs_connection(servers.ports["tvs"])
            try:
                writer.write(tvs.encode(req) * 5)  # one write: one TLS record, one server read
                await writer.drain()
                got, closed = await _read_until_closed(reader, 5)
            finally:
                writer.close()
            assert closed and len(tvs.FrameDecoder().feed(got)) == 3

    run(main(), limit=30)


def test_tftp_option_refusal_names_the_offset_of_the_value() -> None:
    """ERROR 8 for a bad option value named the option but not where it was in the request."""
    async def main() -> None:
        async with TftpServer({"f": b"x"}, HOST, 0, timeout=0.2, retries=1) as srv:
            loop = asyncio.get_running_loop()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.setblocking(False)
                await loop.sock_sendto(s, _rrq("f", tsize="0", blksize="0"), (HOST, srv.port))
                answer = await asyncio.wait_for(loop.sock_recv(s, 1024), 5)
            assert answer[:4] == b"\x00\x05\x00\x08", answer
            assert b"options.blksize at offset 26: value 0 outside 8..65464" in answer, answer
            assert srv.stats == {"option-refused": 1}

    run(main(), limit=20)
