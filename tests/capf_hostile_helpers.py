"""A scripted hostile CAPF server on loopback TLS for the phone's CAPF client tests (spec §F): the script
gets the connection's reader and writer; frames are read back with :func:`next_frame` (bounded)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from phoneemu.protocols import capf
from phoneemu.protocols.capf import CapfCommand, CapfTag, FrameDecoder
from tests.helpers import self_signed_server_context

HOST = "127.0.0.1"
SID = 0x52
DEVICE = "SEP0011223344A1"
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def frame(command: int, *elements: tuple[int, bytes], sid: int = SID) -> bytes:
    return capf.encode(capf.message(command, sid, *elements))


AUTH_REQUEST = frame(CapfCommand.AUTH_REQUEST, (CapfTag.VERSION, b"\x03"), (CapfTag.AUTH_TYPE, b"\x02"))
KEYGEN_P256 = frame(CapfCommand.KEY_GENERATE_REQUEST, (CapfTag.KEY_TYPE, b"\x01"), (CapfTag.CURVE, b"\x00"))


async def serve(script: Script, body: Callable[[int], Awaitable[None]]) -> None:
    """Run ``body(port)`` while a TLS server on ``HOST`` plays ``script`` for each connection."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await script(reader, writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, HOST, 0, ssl=self_signed_server_context("capf-red-team", 11))
    try:
        await body(srv.sockets[0].getsockname()[1])
    finally:
        srv.close()


async def next_frame(reader: asyncio.StreamReader, decoder: FrameDecoder) -> capf.CapfMessage:
    """The phone's next frame (each read bounded by 5 s, at most 100 reads: a frame is at most 64 KiB)."""
    for _ in range(100):
        data = await asyncio.wait_for(reader.read(65536), 5)
        if not data:
            raise ConnectionError("the phone closed")
        got = decoder.feed(data)
        if got:
            return got[0]
    raise AssertionError("no frame from the phone")
