"""A slow phone's CAPF key generation against the lab CAPF server over loopback TLS (spec §F.6, §F.8).

Short times throughout (the lab's read timeout 0.3 s, the phone's cadence 0.1 s): a phone sending
REQUEST_IN_PROGRESS keeps its session past the read timeout and gets its LSC; a silent slow phone is cut
at the read timeout; a key generation longer than the session bound is cut then whatever the phone
sends — both logged ``timeout`` in state wait-keygen, the phone told END_SESSION REASON 7 and reporting
how far its key generation was; a flood of REQUEST_IN_PROGRESS is cut (ours, module docstrings of
:mod:`phoneemu.lab.capf_service` and :mod:`phoneemu.net.capf_client`)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from phoneemu.errors import TransportError
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.net.capf_client import capf_session
from phoneemu.net.tls import client_context_verify_after_handshake, open_tls_connection
from phoneemu.protocols import capf
from phoneemu.protocols.capf import AuthType, CapfClientSession, CapfCommand
from tests.helpers import lab_template, run, self_signed_server_context

HOST = "127.0.0.1"
MAC = "0011223344C1"
DEVICE = f"SEP{MAC}"
READ_TIMEOUT = 0.3
CADENCE = 0.1

template = lab_template("slowkeygen", seed=21, phones={MAC: {"lsc_key": "ec-p256"}})


def _with_lab(cluster: LabCluster, body: Callable[[LabServers, tuple[str, int]], Awaitable[None]], *,
              session_timeout: float) -> list[str]:
    """Run ``body`` against ``lab serve``'s services with a CAPF read timeout of READ_TIMEOUT; the CAPF
    log lines (outcome and detail) once its session ended."""
    cluster.set_capf([MAC], "install", auth_mode="null-string")

    async def main() -> list[str]:
        async with LabServers(cluster, capf_session_timeout=session_timeout) as servers:
            servers.capf_handler.read_timeout = READ_TIMEOUT
            await body(servers, (HOST, servers.ports["capf"]))
            for _ in range(100):  # the handler logs as it closes: bounded wait for that line
                lines = [r.detail for r in servers.requests if r.service == "capf"]
                if lines:
                    return lines
                await asyncio.sleep(0.02)
            return []

    return run(main(), 30)


def _phone(keygen: float, every: float) -> CapfClientSession:
    return CapfClientSession(device_name=DEVICE, auth_mode=AuthType.NULL_STRING, keygen_seconds=keygen,
                             in_progress_every=every)


def test_a_slow_phone_sending_in_progress_keeps_its_session_and_gets_its_lsc(cluster: LabCluster) -> None:
    """A 1 s key generation, over three times the lab's 0.3 s read timeout: REQUEST_IN_PROGRESS every
    0.1 s keeps the session, the LSC is installed and recorded. Before: the phone answered at once
    (no slow key generation to rehearse)."""
    took: list[float] = []

    async def body(_servers: LabServers, addr: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        out = await capf_session(addr, _phone(1.0, CADENCE), timeout=5)
        took.append(loop.time() - start)
        assert out.outcome == "installed", out.result

    lines = _with_lab(cluster, body, session_timeout=10.0)
    assert took[0] >= 1.0  # by construction (it waits until 1 s after the request): past the read timeout
    assert lines == ["op=install installed"], lines
    assert cluster.phone_lsc(MAC) is not None and cluster.capf_pending(MAC) is None


def test_a_silent_slow_phone_is_cut_at_the_read_timeout_and_told_why(cluster: LabCluster) -> None:
    """The same phone sending no REQUEST_IN_PROGRESS: cut 0.3 s into its key generation, logged
    ``timeout`` naming REQUEST_IN_PROGRESS; it gets END_SESSION REASON 7 and reports it with how far its
    key generation was; the install stays pending."""
    async def body(_servers: LabServers, addr: tuple[str, int]) -> None:
        out = await capf_session(addr, _phone(1.0, 0.0), timeout=5)
        assert out.outcome == "rejected" and out.result.reason == capf.Reason.FAILURE
        assert out.result.detail.startswith("failure during keygen: the CAPF server ended the session ")
        assert out.result.detail.endswith("s into this phone's 1s key generation"), out.result.detail

    [line] = _with_lab(cluster, body, session_timeout=10.0)
    assert line.startswith(f"op=install timeout: nothing for {READ_TIMEOUT}s in state wait-keygen (a phone "
                           "still generating its key keeps the session by sending REQUEST_IN_PROGRESS"), line
    assert line.endswith("; END_SESSION REASON 7 sent"), line
    assert cluster.phone_lsc(MAC) is None and cluster.capf_pending(MAC) is not None


def test_a_key_generation_longer_than_the_session_bound_is_cut_then(cluster: LabCluster) -> None:
    """A 3 s key generation with REQUEST_IN_PROGRESS every 0.1 s against a 1 s session bound: the
    keep-alives do not extend the bound; the lab logs ``timeout: key generation longer than ...`` with the
    bound and the REQUEST_IN_PROGRESS count, tells the phone END_SESSION REASON 7, and the phone reports it
    at once (its key generation not finished: it would have sent its response instead)."""
    async def body(_servers: LabServers, addr: tuple[str, int]) -> None:
        out = await capf_session(addr, _phone(3.0, CADENCE), timeout=5)
        assert out.outcome == "rejected" and out.result.reason == capf.Reason.FAILURE
        assert "the CAPF server ended the session" in out.result.detail
        assert out.result.detail.endswith("s into this phone's 3s key generation"), out.result.detail

    [line] = _with_lab(cluster, body, session_timeout=1.0)
    prefix = "op=install timeout: key generation longer than "
    assert line.startswith(prefix) and "(the session bound is 1s; " in line, line
    assert line.endswith(" REQUEST_IN_PROGRESS received); END_SESSION REASON 7 sent"), line
    count = int(line.split("(the session bound is 1s; ", 1)[1].split(" ", 1)[0])
    assert count >= 3, line  # the phone did keep the session alive past the read timeout
    assert cluster.phone_lsc(MAC) is None and cluster.capf_pending(MAC) is not None


def test_a_flood_of_in_progress_is_cut(cluster: LabCluster) -> None:
    """A client sending 300 REQUEST_IN_PROGRESS at once after KEY_GENERATE_REQUEST: the lab takes 256
    (ours), then closes the connection, logged ``malformed`` naming the flood, and serves on."""
    got: list[bytes] = []

    async def body(servers: LabServers, addr: tuple[str, int]) -> None:
        reader, writer = await open_tls_connection(*addr, client_context_verify_after_handshake(), timeout=5)
        try:
            phone = CapfClientSession(device_name=DEVICE, auth_mode=AuthType.NULL_STRING)
            decoder = capf.FrameDecoder()
            request = await _next_frame(reader, decoder)
            [auth] = phone.receive(capf.encode(request))
            writer.write(auth)
            keygen = await _next_frame(reader, decoder)
            assert keygen.command == CapfCommand.KEY_GENERATE_REQUEST
            writer.write(capf.encode(capf.message(CapfCommand.REQUEST_IN_PROGRESS, request.session_id)) * 300)
            got.append(await _until_closed(reader))
        finally:
            writer.close()

    [line] = _with_lab(cluster, body, session_timeout=10.0)
    assert got == [b""]  # nothing said to a flooder: closed
    assert line.startswith("op=install malformed: ") and "more than 256 REQUEST_IN_PROGRESS" in line, line


def test_a_server_that_closes_during_key_generation_is_a_clear_transport_error(tmp_path: Path) -> None:
    """A CAPF server (not the lab) that closes without END_SESSION 0.3 s after the phone's first
    REQUEST_IN_PROGRESS, while the phone generates its key: the phone, watching the connection meanwhile,
    fails at once with a ``protocol`` TransportError saying how far its key generation was (at least the
    0.3 s, by construction) — not after its 2 s with ``closed the connection in state 'wait-command'``."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(capf.encode(capf.message(CapfCommand.AUTH_REQUEST, 7, (capf.CapfTag.VERSION, b"\x03"),
                                              (capf.CapfTag.AUTH_TYPE, b"\x02"))))
        decoder = capf.FrameDecoder()
        assert (await _next_frame(reader, decoder)).command == CapfCommand.AUTH_RESPONSE
        ec_p256 = ((capf.CapfTag.KEY_TYPE, b"\x01"), (capf.CapfTag.CURVE, b"\x00"))
        writer.write(capf.encode(capf.message(CapfCommand.KEY_GENERATE_REQUEST, 7, *ec_p256)))
        assert (await _next_frame(reader, decoder)).command == CapfCommand.REQUEST_IN_PROGRESS
        await asyncio.sleep(0.3)  # less than the phone's cadence (0.5 s): it is waiting, not sending

    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await script(reader, writer)
            finally:
                writer.close()

        tls = self_signed_server_context("capf-closes", 5)
        srv = await asyncio.start_server(handle, HOST, 0, ssl=tls)
        try:
            with pytest.raises(TransportError) as info:
                await capf_session((HOST, srv.sockets[0].getsockname()[1]), _phone(2.0, 0.5), timeout=5)
            assert info.value.kind == "protocol"
            assert "CAPF closed the connection " in info.value.message
            message = info.value.message
            assert message.endswith("s into this phone's 2s key generation"), message
            elapsed = float(message.split("CAPF closed the connection ", 1)[1].split("s ", 1)[0])
            assert elapsed >= 0.3, message
        finally:
            srv.close()

    run(main(), 20)


async def _next_frame(reader: asyncio.StreamReader, decoder: capf.FrameDecoder) -> capf.CapfMessage:
    """The peer's next frame (each read bounded by 5 s)."""
    for _ in range(100):
        chunk = await asyncio.wait_for(reader.read(4096), 5)
        assert chunk, "closed before a frame"
        got = decoder.feed(chunk)
        if got:
            return got[0]
    raise AssertionError("no frame in 100 reads")


async def _until_closed(reader: asyncio.StreamReader) -> bytes:
    """What the server sends until it closes (each read bounded by 5 s; a reset ends it too)."""
    out = b""
    for _ in range(100):
        try:
            chunk = await asyncio.wait_for(reader.read(4096), 5)
        except (ConnectionError, ssl.SSLError):
            return out
        if not chunk:
            return out
        out += chunk
    raise AssertionError("the server did not close")
