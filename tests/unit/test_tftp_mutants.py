"""Rules of the TFTP codec and the lab's TFTP server that the mutation run of ``tftp_codec`` and
``tftp_server`` found no test for (RFC 1350, RFC 2347/2348/2349; spec §C.6, §H.1; the module docstrings'
conventions): each test states the rule it checks."""

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path

import pytest

from phoneemu.errors import DecodeError, EncodeError, TransportError
from phoneemu.net.tftp_codec import (
    Error,
    ErrorCode,
    OptionAck,
    ReadRequest,
    decode,
    encode,
    unsafe_name_reason,
)
from phoneemu.net.tftp_server import TftpRequestEvent, TftpServer, provider_from
from tests.helpers import run_within

HOST = "127.0.0.1"
run = run_within(10)


def _client() -> socket.socket:
    """A non-blocking UDP socket on loopback (close it: ``with _client() as sock``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind((HOST, 0))
    return sock


async def _send(sock: socket.socket, port: int, datagram: bytes) -> None:
    await asyncio.get_running_loop().sock_sendto(sock, datagram, (HOST, port))


async def _recv(sock: socket.socket) -> bytes:
    answer, _addr = await asyncio.wait_for(asyncio.get_running_loop().sock_recvfrom(sock, 70000), 3.0)
    return answer


async def _ask(port: int, datagram: bytes) -> bytes:
    """Send ``datagram`` to the server on ``port`` from a fresh loopback socket; its first answer."""
    with _client() as sock:
        await _send(sock, port, datagram)
        return await _recv(sock)


# --- names (tftp_codec.unsafe_name_reason: the one traversal rule of TFTP, HTTP and the fetcher) ----------
@pytest.mark.parametrize("name", ["C:", "c:", "C:x", "C:/etc/passwd"])
def test_a_drive_letter_name_is_refused_bare_or_followed(name: str) -> None:
    # the rule refuses a drive letter; a bare drive ("C:", the current folder of drive C) is one too
    assert unsafe_name_reason(name) == "drive letter in name"


# --- string fields: 512 bytes at most, the same bound for encoding and decoding ----------------------
def test_a_512_byte_string_field_is_taken_by_encode_and_decode_alike_513_by_neither() -> None:
    longest = "f" * 512
    raw = encode(ReadRequest(filename=longest))
    assert decode(raw) == ReadRequest(filename=longest)
    assert encode(OptionAck(options={"x": longest})) == b"\x00\x06x\x00" + longest.encode() + b"\x00"
    with pytest.raises(EncodeError):
        ReadRequest(filename=longest + "f")
    with pytest.raises(DecodeError):
        decode(b"\x00\x01" + longest.encode() + b"f\x00octet\x00")


def test_a_data_packet_longer_than_the_largest_block_is_a_decode_error() -> None:
    # RFC 2348: no block is longer than 65464 bytes; a longer DATA is malformed input, so a DecodeError at
    # the data (bad input never escapes as another error, design §3.7), the largest block decodes
    assert decode(b"\x00\x03\x00\x01" + b"x" * 65464) is not None
    with pytest.raises(DecodeError) as ei:
        decode(b"\x00\x03\x00\x01" + b"x" * 65465)
    assert (ei.value.fmt, ei.value.offset, ei.value.path) == ("tftp", 4, "data")


# --- options (RFC 2347: name NUL value NUL pairs) ----------------------------------------------------
@pytest.mark.parametrize("raw, offset", [
    (b"\x00\x01f\x00octet\x00\x00512\x00", 10),  # RRQ: an option with an empty name
    (b"\x00\x06blksize\x00512\x00\x00x\x00", 14),  # OACK: the same after a good option
])
def test_an_empty_option_name_is_malformed(raw: bytes, offset: int) -> None:
    with pytest.raises(DecodeError) as ei:
        decode(raw)
    assert (ei.value.offset, ei.value.path) == (offset, "options")


def test_an_option_without_a_value_is_named_at_its_own_offset() -> None:
    # errors say where (design §3.7): the option left without a value, not the first option
    raw = b"\x00\x01f\x00octet\x00blksize\x00512\x00tsize\x00"
    with pytest.raises(DecodeError) as ei:
        decode(raw)
    assert (ei.value.offset, ei.value.path) == (raw.index(b"tsize"), "options.tsize")


# --- the lab's file lookup from a folder (tftp_server.provider_from) ---------------------------------
def test_a_file_above_max_file_size_is_refused_by_the_folder_lookup(tmp_path: Path) -> None:
    # memory stays bounded: the lookup refuses a file larger than the limit instead of handing it over
    (tmp_path / "big.bin").write_bytes(b"x" * 2000)
    (tmp_path / "ok.bin").write_bytes(b"x" * 1000)
    get = provider_from(tmp_path, max_file_size=1000)
    assert get("ok.bin") == b"x" * 1000
    with pytest.raises(TransportError) as ei:
        get("big.bin")
    assert ei.value.kind == "too-large"


def test_a_name_too_long_for_the_file_system_is_not_found_and_serving_goes_on(tmp_path: Path) -> None:
    # a name no file can have (a component longer than the file system's 255 bytes) names a missing
    # file: ERROR 1 "File not found" (spec §C.6), not ERROR 0 "server error" with a logged traceback
    (tmp_path / "ok.bin").write_bytes(b"hello")
    events: list[TftpRequestEvent] = []
    long_name = "a" * 300
    assert provider_from(tmp_path, max_file_size=1000)(long_name) is None

    async def main() -> None:
        async with TftpServer(tmp_path, HOST, 0, on_request=events.append) as srv:
            answer = decode(await _ask(srv.port, encode(ReadRequest(filename=long_name))))
            assert isinstance(answer, Error) and answer.code == ErrorCode.FILE_NOT_FOUND
            ok = await _ask(srv.port, encode(ReadRequest(filename="ok.bin")))
            assert ok == b"\x00\x03\x00\x01hello"
    run(main())
    assert [e.outcome for e in events][:1] == ["not-found"]


def test_a_file_above_max_file_size_is_refused_and_no_transfer_starts() -> None:
    # bounded (tftp_server rules, max_file_size): whatever the provider hands over, a file above the limit
    # is answered with ERROR 0 "file too large" and never served
    events: list[TftpRequestEvent] = []

    async def main() -> None:
        async with TftpServer({"big.bin": b"x" * 2000}, HOST, 0, max_file_size=1000,
                              on_request=events.append) as srv:
            answer = decode(await _ask(srv.port, encode(ReadRequest(filename="big.bin"))))
            assert answer == Error(code=ErrorCode.NOT_DEFINED, message="file too large")
            assert srv.active_transfers == 0
    run(main())
    assert [e.outcome for e in events] == ["too-large"]


def test_a_host_allow_peer_refuses_gets_error_2_and_its_file_is_not_asked_for() -> None:
    # allow_peer (fuzz --serve --device): a host it refuses is answered "access violation", nothing served
    asked: list[str] = []
    events: list[TftpRequestEvent] = []

    def provider(name: str) -> bytes | None:
        asked.append(name)
        return b"mutant"

    async def main() -> None:
        async with TftpServer(provider, HOST, 0, allow_peer=lambda host: host != HOST,
                              on_request=events.append) as srv:
            answer = decode(await _ask(srv.port, encode(ReadRequest(filename="ITLFile.tlv"))))
            assert answer == Error(code=ErrorCode.ACCESS_VIOLATION, message="access violation")
            assert srv.active_transfers == 0
    run(main())
    assert asked == []
    assert [(e.outcome, e.detail) for e in events] == [("refused", "host not served")]


@pytest.mark.parametrize("mode, stray", [
    ("shared", b"\x00\x04\x00\x03"),  # ACK: the shared port is every transfer's TID, a late copy
    ("shared", b"\x00\x03\x00\x01data"),  # DATA: the same
    ("ephemeral", b"\x00\x05\x00\x00oops\x00"),  # ERROR: never answered with an error
    ("ephemeral", b"\x00\x06blksize\x00512\x00"),  # OACK from a client: nothing to answer
])
def test_a_stray_packet_the_rules_leave_unanswered_gets_no_error(mode: str, stray: bytes) -> None:
    # tftp_server rules: a DATA/ACK on the shared main port from a peer without a transfer gets nothing,
    # nor does a stray ERROR or OACK in any mode; the peer's next request is answered with its DATA 1
    async def main() -> None:
        async with TftpServer({"f": b"hi"}, HOST, 0, tid_mode=mode) as srv:  # type: ignore[arg-type]
            with _client() as sock:
                await _send(sock, srv.port, stray)
                await _send(sock, srv.port, encode(ReadRequest(filename="f")))
                assert await _recv(sock) == b"\x00\x03\x00\x01hi"
    run(main())


def test_a_malformed_request_is_answered_error_4_and_nothing_fails_in_the_server(
        caplog: pytest.LogCaptureFixture) -> None:
    # malformed input is refused with a clear error (ERROR 4, outcome "malformed") and handled: no
    # exception escapes the server's datagram handler (design §3.7)
    events: list[TftpRequestEvent] = []
    caplog.set_level(logging.WARNING, logger="phoneemu")

    async def main() -> None:
        async with TftpServer({"f": b"hi"}, HOST, 0, on_request=events.append) as srv:
            answer = decode(await _ask(srv.port, b"\x00\x01no-terminator"))
            assert isinstance(answer, Error) and answer.code == ErrorCode.ILLEGAL_OPERATION
            assert await _ask(srv.port, encode(ReadRequest(filename="f"))) == b"\x00\x03\x00\x01hi"
    run(main())
    assert [e.outcome for e in events][:1] == ["malformed"]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_a_clients_error_ends_its_transfer_on_the_shared_port() -> None:
    # RFC 1350: an ERROR from the client ends the transfer; in shared mode the main port is the transfer's
    # TID, so the ERROR arrives there and must reach the transfer (tftp_server rules)
    events: list[TftpRequestEvent] = []

    async def main() -> None:
        async with TftpServer({"f": b"x" * 2000}, HOST, 0, tid_mode="shared",
                              on_request=events.append) as srv:
            with _client() as sock:
                await _send(sock, srv.port, encode(ReadRequest(filename="f")))
                assert (await _recv(sock))[:4] == b"\x00\x03\x00\x01"
                await _send(sock, srv.port, encode(Error(code=0, message="cancelled")))
                # one socket, datagrams handled in order: once another client's request is answered,
                # the ERROR before it has been handled
                assert (await _ask(srv.port, encode(ReadRequest(filename="f"))))[:4] == b"\x00\x03\x00\x01"
            assert srv.active_transfers == 1
    run(main())
    assert events[0].outcome == "aborted" and "client sent error" in events[0].detail
