"""The phone's CAPF client ends at once, naming why, when a hostile CAPF server follows good frames with
garbage or an out-of-place frame in the same write (spec §F.2, §F.6; ours: the session's rule answers the
good frames first). It used to wait for the server's next bytes and end in a ``timeout`` in state
``'failed'``, the reason lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from phoneemu.errors import TransportError
from phoneemu.net.capf_client import capf_session
from phoneemu.protocols import capf
from phoneemu.protocols.capf import CapfClientSession, CapfCommand, CapfTag, FrameDecoder
from tests.helpers import run
from tests.integration.test_capf_hostile import DEVICE, HOST, SID, _next, _serve

AUTH_REQUEST = capf.encode(capf.message(CapfCommand.AUTH_REQUEST, SID, (CapfTag.VERSION, b"\x03"),
                                        (CapfTag.AUTH_TYPE, b"\x02")))
FETCH = capf.encode(capf.message(CapfCommand.FETCH_CERTIFICATE_REQUEST, SID))


@pytest.mark.parametrize(("tail", "named"), [
    (b"\x99garbage", "protocol id 0x99"),
    (FETCH.replace(SID.to_bytes(4, "big"), (SID + 1).to_bytes(4, "big"), 1), "session id"),
], ids=["garbage", "another-session-id"])
def test_good_frame_then_garbage_ends_the_session_at_once_naming_it(tmp_path: Path, tail: bytes,
                                                                    named: str) -> None:
    answered: list[capf.CapfMessage] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(AUTH_REQUEST + tail)  # one write: the good frame and what follows it
        await writer.drain()
        answered.append(await _next(reader, FrameDecoder()))
        await asyncio.sleep(5)  # then silent, past the phone's read timeout

    async def body(port: int) -> None:
        phone = CapfClientSession(device_name=DEVICE, auth_mode=2)
        with pytest.raises(TransportError) as info:
            await asyncio.wait_for(capf_session((HOST, port), phone, timeout=2), 10)
        assert info.value.kind == "protocol", info.value
        assert named in info.value.message and "silent" not in info.value.message
        assert phone.result is None

    run(_serve(tmp_path, script, body), 30)
    assert [m.command for m in answered] == [CapfCommand.AUTH_RESPONSE]  # the good frame was answered


def test_garbage_after_end_session_keeps_the_result(tmp_path: Path) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(AUTH_REQUEST)
        await writer.drain()
        await _next(reader, FrameDecoder())
        writer.write(capf.encode(capf.message(CapfCommand.END_SESSION, SID, (CapfTag.REASON, b"\x00")))
                     + b"\x99garbage")
        await writer.drain()
        await asyncio.sleep(0.5)

    async def body(port: int) -> None:
        phone = CapfClientSession(device_name=DEVICE, auth_mode=2)
        out = await asyncio.wait_for(capf_session((HOST, port), phone, timeout=2), 10)
        assert out.outcome == "nothing-pending"

    run(_serve(tmp_path, script, body), 30)
