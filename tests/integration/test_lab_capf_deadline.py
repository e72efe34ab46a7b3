"""The lab CAPF server's frame deadline (spec §F.2, §F.6; :mod:`phoneemu.lab.capf_service`).

Rules: a client's frame must be complete within ``read_timeout`` of its first byte, so a client dripping
one byte at a time is cut then (logged ``timeout`` naming the bytes it had), not held to
``session_timeout``; a phone's own pause before a frame (computing its key) is not charged to the frame,
so a slow phone that sends its frames whole is served as before."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from phoneemu.lab.capf_service import CapfHandler, CapfSessionLog
from phoneemu.net.tls import TlsServer
from phoneemu.protocols import capf
from tests.helpers import run

HOST = "127.0.0.1"
MAC = "0011223344DE"
DRIP_INTERVAL = 0.05
#: bytes a dripper sends at most: fewer than its frame, so the frame never completes
DRIP_MOST = 40


def _lab(operation: str | None) -> SimpleNamespace:
    """Just what :class:`CapfHandler` reads of a cluster that knows ``MAC``, with ``operation`` pending
    (None: nothing) by null string (no authentication data, §F.7)."""
    pending = None if operation is None else SimpleNamespace(
        operation=operation, auth_mode=capf.AuthType.NULL_STRING, auth_string="", key_type="rsa",
        key_size=2048, curve="p256")
    return SimpleNamespace(state=SimpleNamespace(phones={MAC: None}), capf_pending=lambda _mac: pending)


def _auth_response(session_id: int) -> bytes:
    """A phone's AUTH_RESPONSE (§F.6), padded with a long PASSWORD: longer than DRIP_MOST bytes."""
    frame = capf.encode(capf.message(
        capf.CapfCommand.AUTH_RESPONSE, session_id, (capf.CapfTag.REASON, b"\x01"),
        (capf.CapfTag.VERSION, bytes([capf.CAPF_VERSION])),
        (capf.CapfTag.DEVICE_NAME, capf.encode_cstring(f"SEP{MAC}")),
        (capf.CapfTag.PASSWORD, capf.encode_cstring("0" * 32))))
    assert len(frame) > DRIP_MOST
    return frame


def _delete_failed(session_id: int) -> bytes:
    """DELETE_CERTIFICATE_RESPONSE {REASON=7}: the phone could not delete (§F.6), padded past DRIP_MOST."""
    return capf.encode(capf.message(capf.CapfCommand.DELETE_CERTIFICATE_RESPONSE, session_id,
                                    (capf.CapfTag.REASON, b"\x07"),
                                    (capf.CapfTag.REASON_INFO, capf.encode_cstring("x" * 40))))


async def _next_frame(reader: asyncio.StreamReader, decoder: capf.FrameDecoder) -> capf.CapfMessage:
    """The server's next frame (each read bounded by 5 s)."""
    while True:
        chunk = await asyncio.wait_for(reader.read(4096), 5)
        assert chunk, "the server closed before its frame"
        got = decoder.feed(chunk)
        if got:
            assert len(got) == 1
            return got[0]


async def _drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> int:
    """Send ``data`` one byte per DRIP_INTERVAL, at most DRIP_MOST bytes; the bytes sent when the server
    closed (DRIP_MOST when it did not)."""
    for sent in range(1, DRIP_MOST + 1):
        try:
            writer.write(data[sent - 1:sent])
            await writer.drain()
        except ConnectionError:
            return sent - 1
        try:
            got = await asyncio.wait_for(reader.read(4096), DRIP_INTERVAL)
        except TimeoutError:
            continue
        except ConnectionError:  # closed with a byte of ours unread: a reset
            return sent
        assert got == b"", got  # the server says nothing to a frame not complete: it closes
        return sent
    return DRIP_MOST


def _serve(handler: CapfHandler, client: object) -> None:
    async def main() -> None:
        async with TlsServer(handler, None, HOST, 0) as srv:
            reader, writer = await asyncio.open_connection(HOST, srv.port)
            try:
                await client(reader, writer)  # type: ignore[operator]
            finally:
                writer.close()
            for _ in range(100):  # the handler logs its session's end as it closes: bounded wait for it
                if handler.results:
                    return
                await asyncio.sleep(0.02)

    run(main(), limit=30)


def _dripped(state: str, entry: CapfSessionLog, sent: int) -> None:
    prefix = "timeout: frame not complete within 0.5s of its first byte ("
    assert entry.outcome.startswith(prefix) and entry.outcome.endswith(f" received) in state {state}"), entry
    had = int(entry.outcome.removeprefix(prefix).split(" ", 1)[0])
    assert 1 <= had <= sent, (had, sent)


def test_a_client_dripping_its_auth_response_is_cut_at_the_frame_deadline() -> None:
    """AUTH_RESPONSE one byte per 50 ms: each read comes well within read_timeout (0.5 s), but the frame is
    not complete 0.5 s after its first byte: the connection is closed, logged ``timeout`` with the bytes
    it had, long before session_timeout (20 s). Before: each byte renewed the read timeout and the
    dripper held the connection to session_timeout (120 s in ``lab serve``)."""
    seen: list[CapfSessionLog] = []
    handler = CapfHandler(_lab(None), read_timeout=0.5, session_timeout=20.0,  # type: ignore[arg-type]
                          on_log=seen.append)
    sent: list[int] = []

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await _next_frame(reader, capf.FrameDecoder())
        assert request.command == capf.CapfCommand.AUTH_REQUEST
        sent.append(await _drip(reader, writer, _auth_response(request.session_id)))

    _serve(handler, client)
    assert sent[0] < DRIP_MOST, "the dripper was not cut"
    assert len(seen) == 1
    _dripped("wait-auth", seen[0], sent[0])


def test_a_client_dripping_a_later_frame_is_cut_in_its_state() -> None:
    """The deadline holds for every frame, not only AUTH_RESPONSE: a phone with a delete pending answers
    AUTH_REQUEST whole, then drips DELETE_CERTIFICATE_RESPONSE: cut in state wait-delete."""
    seen: list[CapfSessionLog] = []
    handler = CapfHandler(_lab("delete"), read_timeout=0.5, session_timeout=20.0,  # type: ignore[arg-type]
                          on_log=seen.append)
    sent: list[int] = []

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = capf.FrameDecoder()
        request = await _next_frame(reader, decoder)
        writer.write(_auth_response(request.session_id))
        assert (await _next_frame(reader, decoder)).command == capf.CapfCommand.DELETE_CERTIFICATE_REQUEST
        sent.append(await _drip(reader, writer, _delete_failed(request.session_id)))

    _serve(handler, client)
    assert sent[0] < DRIP_MOST, "the dripper was not cut"
    assert [(e.device_name, e.operation) for e in seen] == [(f"SEP{MAC}", "delete")]
    _dripped("wait-delete", seen[0], sent[0])


def test_a_slow_phone_sending_whole_frames_is_not_cut() -> None:
    """A phone that waits on its own side before each frame (0.7 s of a 1.2 s read_timeout) and whose
    AUTH_RESPONSE arrives in two pieces 0.6 s apart: 1.3 s from the server's frame to the end of its
    own — over read_timeout counted from the previous frame, within it counted from its first byte (the
    deadline's choice) — is served to its END_SESSION."""
    seen: list[CapfSessionLog] = []
    handler = CapfHandler(_lab("delete"), read_timeout=1.2, session_timeout=20.0,  # type: ignore[arg-type]
                          on_log=seen.append)
    ended: list[capf.CapfMessage] = []

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = capf.FrameDecoder()
        request = await _next_frame(reader, decoder)
        auth = _auth_response(request.session_id)
        await asyncio.sleep(0.7)
        writer.write(auth[:10])
        await asyncio.sleep(0.6)
        writer.write(auth[10:])
        assert (await _next_frame(reader, decoder)).command == capf.CapfCommand.DELETE_CERTIFICATE_REQUEST
        await asyncio.sleep(0.7)  # as if the phone were busy
        writer.write(_delete_failed(request.session_id))
        ended.append(await _next_frame(reader, decoder))

    _serve(handler, client)
    assert ended[0].command == capf.CapfCommand.END_SESSION and ended[0].u8(capf.CapfTag.REASON) == 7
    assert [e.outcome for e in seen] == ["delete-failed"], seen
