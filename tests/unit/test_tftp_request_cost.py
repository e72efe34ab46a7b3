"""What the lab TFTP server no longer pays per request (issue #6, lab CPU per boot), and that the cheaper
paths decide exactly as before: an RRQ's strings split at once, its fields not checked twice, no options
not validated, the common ACK handled before the hooks."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.errors import DecodeError, EncodeError
from phoneemu.net import tftp_codec
from phoneemu.net.tftp_codec import ReadRequest, WriteRequest, decode, negotiated, unsafe_name_reason
from phoneemu.net.tftp_server import TftpRequestEvent, TftpServer

_MAX = 512


def _reference_strings(buf: bytes, pos: int, first_field: str) -> list[tuple[int, str]]:
    """The one-string-at-a-time split the codec used before its fast path (the reference)."""
    out: list[tuple[int, str]] = []
    while pos < len(buf):
        end = buf.find(b"\0", pos)
        name = first_field if not out else f"string[{len(out)}]"
        if end < 0:
            raise DecodeError("string is not NUL-terminated", fmt="tftp", offset=pos, path=name)
        if end - pos > _MAX:
            raise DecodeError(f"string longer than {_MAX} bytes", fmt="tftp", offset=pos, path=name)
        try:
            text = buf[pos:end].decode("ascii")
        except UnicodeDecodeError:
            raise DecodeError("string is not ASCII", fmt="tftp", offset=pos, path=name) from None
        out.append((pos, text))
        pos = end + 1
    return out


def _outcome(fn: object, *args: object) -> object:
    try:
        return fn(*args)  # type: ignore[operator]
    except DecodeError as exc:
        return ("error", str(exc), exc.offset, exc.path)


_piece = st.one_of(st.binary(max_size=20),
                   st.sampled_from([b"\0", b"a" * 513, b"\xff", b"octet\0", b"b" * 512]))


@settings(max_examples=400, deadline=None)
@given(st.lists(_piece, max_size=6), st.integers(0, 3))
def test_strings_split_at_once_as_one_at_a_time(pieces: list[bytes], pos: int) -> None:
    buf = b"".join(pieces)
    assert _outcome(tftp_codec._strings, buf, pos, "filename") == _outcome(_reference_strings, buf, pos,
                                                                             "filename")


@pytest.mark.parametrize(("buf", "offset", "path", "words"), [
    (b"\x00\x01" + b"a" * 513 + b"\0octet\0", 2, "filename", "longer than 512"),
    (b"\x00\x01f\0" + b"m" * 513 + b"\0", 4, "string[1]", "longer than 512"),
    (b"\x00\x01f\xe9\0octet\0", 2, "filename", "not ASCII"),
    (b"\x00\x01f\0octet", 4, "string[1]", "NUL-terminated"),
])
def test_rrq_errors_name_the_string_as_before(buf: bytes, offset: int, path: str, words: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(buf)
    assert (info.value.offset, info.value.path) == (offset, path)
    assert words in str(info.value)


def test_decoded_request_is_not_checked_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """The decoder has checked every field; ``__post_init__`` (half an RRQ's decoding) is not run again."""
    def refuse(self: ReadRequest) -> None:
        raise AssertionError("__post_init__ ran again")

    monkeypatch.setattr(ReadRequest, "__post_init__", refuse)
    rrq = decode(b"\x00\x01SEP0A0000000001.cnf.xml.sgn\x00OCTET\x00BlkSize\x001024\x00")
    wrq = decode(b"\x00\x02up.bin\x00netascii\x00")
    monkeypatch.undo()
    assert rrq == ReadRequest(filename="SEP0A0000000001.cnf.xml.sgn", mode="octet",
                              options={"blksize": "1024"})
    assert type(wrq) is WriteRequest and wrq == WriteRequest(filename="up.bin", mode="netascii")


def test_built_requests_still_checked() -> None:
    for bad, words in [("é", "ASCII"), ("a\0b", "NUL"), ("a" * 513, "longer than 512")]:
        with pytest.raises(EncodeError, match=words):
            ReadRequest(filename=bad)
        with pytest.raises(EncodeError, match=words):
            ReadRequest(filename="f", options={"blksize": bad})


def test_no_options_nothing_validated() -> None:
    """No options (what phones send): one shared answer, nothing built per request."""
    assert negotiated({}) is negotiated({}, buf=b"\x00\x01f\x00octet\x00")
    assert (negotiated({}).blksize, negotiated({}).timeout, negotiated({}).tsize) == (None, None, None)
    with pytest.raises(DecodeError) as info:
        negotiated({"blksize": "7"}, buf=b"\x00\x01f\x00octet\x00blksize\x007\x00")
    assert (info.value.offset, info.value.path) == (18, "options.blksize")


@pytest.mark.parametrize(("name", "reason"), [
    ("SEP0A0000000001.cnf.xml.sgn", None), ("a..b", None), ("../x", "'..' in name"),
    ("a/../b", "'..' in name"), ("a/..", "'..' in name"), ("..", "'..' in name"), ("/etc", "absolute name"),
    ("a\\b", "backslash in name"),
    ("a\x01..", "NUL or control character in name"), ("c:x", "drive letter in name"), ("", "empty name"),
])
def test_unsafe_names_as_before(name: str, reason: str | None) -> None:
    assert unsafe_name_reason(name) == reason


def test_shared_ack_path_serves_and_hooks_still_see_every_datagram() -> None:
    """The ACK of a running transfer is handled before the hooks' checks only when there is no hook: with a
    capture, every datagram (ACKs included) still reaches it; the file arrives whole either way."""
    content = bytes(range(256)) * 9  # 2304 bytes: 5 blocks of 512

    class Sink:
        def __init__(self) -> None:
            self.seen: list[bytes] = []

        def udp(self, src: tuple[str, int], dst: tuple[str, int], data: bytes) -> None:
            self.seen.append(data)

    async def fetch(capture: Sink | None) -> tuple[bytes, list[TftpRequestEvent]]:
        events: list[TftpRequestEvent] = []
        loop = asyncio.get_running_loop()
        async with TftpServer({"f.bin": content}, tid_mode="shared", port=0, on_request=events.append,
                              capture=capture) as srv:
            got = bytearray()
            done = loop.create_future()

            class Client(asyncio.DatagramProtocol):
                def connection_made(self, transport: asyncio.BaseTransport) -> None:
                    self.t = transport
                    self.t.sendto(b"\x00\x01f.bin\x00octet\x00")  # type: ignore[attr-defined]

                def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                    got.extend(data[4:])
                    self.t.sendto(b"\x00\x04" + data[2:4])  # type: ignore[attr-defined]
                    if len(data) - 4 < 512 and not done.done():
                        done.set_result(None)

            transport, _ = await loop.create_datagram_endpoint(Client, remote_addr=("127.0.0.1", srv.port))
            try:
                await asyncio.wait_for(done, 5)
                for _ in range(100):  # bounded: the last ACK ends the transfer
                    if events:
                        break
                    await asyncio.sleep(0.01)
            finally:
                transport.close()
        return bytes(got), events

    plain, plain_events = asyncio.run(fetch(None))
    sink = Sink()
    captured, captured_events = asyncio.run(fetch(sink))
    assert plain == captured == content
    assert [e.outcome for e in plain_events] == [e.outcome for e in captured_events] == ["ok"]
    acks = [d for d in sink.seen if d[:2] == b"\x00\x04"]
    assert [int.from_bytes(d[2:4], "big") for d in acks] == [1, 2, 3, 4, 5]
