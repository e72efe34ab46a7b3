"""The phone's CAPF client over loopback TLS against hostile CAPF servers (spec §F).

A scripted TLS server on 127.0.0.1 plays a CAPF server the phone decided to trust (§F.1) but that
misbehaves: it returns a CA certificate as the LSC and claims success, or it trickles bytes so the session
never ends. The phone's :func:`phoneemu.net.capf_client.capf_session` must end with a clear outcome,
install nothing, and never hang (each read and the whole session are bounded).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from phoneemu.crypto.certs import CertRequest, cert_der, issue_certificate
from phoneemu.crypto.keys import KeySpec, generate_key, load_public_key_spki_der
from phoneemu.errors import TransportError
from phoneemu.net.capf_client import capf_session
from phoneemu.protocols import capf
from phoneemu.protocols.capf import CapfClientSession, CapfCommand, CapfTag, FrameDecoder
from tests.capf_hostile_helpers import next_frame, serve
from tests.helpers import run

HOST = "127.0.0.1"
SID = 0x51
DEVICE = "SEP001122334477"
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _serve(_tmp_path: Path, script: Script, body: Callable[[int], Awaitable[None]]) -> None:
    """Run ``body(port)`` while a TLS server plays ``script`` (:func:`tests.capf_hostile_helpers.serve`)."""
    await serve(script, body)


_next = next_frame  # the phone's next frame, bounded (tests.capf_hostile_helpers)


def _ca_as_lsc(spki: bytes) -> bytes:
    ca_key = generate_key(KeySpec(kind="ec", curve="p256"))
    now = dt.datetime.now(dt.UTC)
    req = CertRequest(subject=f"CN={DEVICE}", public_key=load_public_key_spki_der(spki), serial=8,
                      not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=365), ca=True,
                      key_usage=("digital_signature", "key_cert_sign"))
    return cert_der(issue_certificate(req, issuer_key=ca_key))


def test_a_ca_certificate_as_lsc_over_tls_is_refused_despite_a_success_end(tmp_path: Path) -> None:
    answers: list[capf.CapfMessage] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dec = FrameDecoder()
        writer.write(capf.encode(capf.message(CapfCommand.AUTH_REQUEST, SID, (CapfTag.VERSION, b"\x03"),
                                              (CapfTag.AUTH_TYPE, b"\x02"))))
        answers.append(await _next(reader, dec))
        writer.write(capf.encode(capf.message(CapfCommand.KEY_GENERATE_REQUEST, SID,
                                              (CapfTag.KEY_TYPE, b"\x01"), (CapfTag.CURVE, b"\x00"))))
        answers.append(await _next(reader, dec))
        lsc = _ca_as_lsc(answers[-1].require(CapfTag.PUBLIC_KEY))
        writer.write(capf.encode(capf.message(CapfCommand.STORE_CERTIFICATE_REQUEST, SID,
                                              (CapfTag.CERTIFICATE, capf.encode_certificate(lsc)))))
        answers.append(await _next(reader, dec))
        writer.write(capf.encode(capf.message(CapfCommand.END_SESSION, SID, (CapfTag.REASON, b"\x01"))))
        await writer.drain()
        await asyncio.sleep(0.2)

    async def body(port: int) -> None:
        phone = CapfClientSession(device_name=DEVICE, auth_mode=2)
        out = await capf_session((HOST, port), phone, timeout=5)
        assert out.outcome == "rejected" and out.result.certificate is None and out.result.key is None
        assert "CA certificate" in out.result.detail
        assert answers[-1].command == CapfCommand.STORE_CERTIFICATE_RESPONSE
        assert answers[-1].get(CapfTag.REASON) == b"\x07"

    run(_serve(tmp_path, script, body), 30)


@pytest.mark.parametrize("session_timeout", [None, 1.5])
def test_a_server_that_trickles_bytes_cannot_keep_the_phone(tmp_path: Path, session_timeout: float | None
                                                            ) -> None:
    """Each byte comes well within the read timeout, but the frame never completes: the whole session is
    bounded (default ``4 * timeout``), a ``timeout`` TransportError."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        frame = capf.encode(capf.message(CapfCommand.AUTH_REQUEST, SID, (CapfTag.VERSION, b"\x03"),
                                         (CapfTag.REASON_INFO, b"z" * 60000)))
        for b in frame[:400]:  # bounded: 400 * 0.05 s = 20 s, past every bound under test
            writer.write(bytes([b]))
            await writer.drain()
            await asyncio.sleep(0.05)

    async def body(port: int) -> None:
        phone = CapfClientSession(device_name=DEVICE, auth_mode=2)
        loop = asyncio.get_running_loop()
        start = loop.time()
        kw = {} if session_timeout is None else {"session_timeout": session_timeout}
        with pytest.raises(TransportError) as info:
            await asyncio.wait_for(capf_session((HOST, port), phone, timeout=0.5, **kw), 8)
        assert info.value.kind == "timeout" and "session longer than" in info.value.message
        assert loop.time() - start < 10

    run(_serve(tmp_path, script, body), 40)
