"""The phone's CAPF client over loopback TLS against a scripted hostile CAPF server (spec §F; red team R11).

Fixed here: a close inside a frame names the frame (its stream offset, the bytes of it received); STORE and
END_SESSION {REASON=1} in one write, the server gone at once, keeps the session's result (was: lost to the
race of the close, a ``"unreachable"`` error); a frame during a slow phone's key generation is named; an
RSA 512 key request (§F.8, a size cryptography cannot make) and an LSC for another device through a whole
boot against the lab: refused, nothing installed, no traceback. Then what held: each attack ends within the
phone's bounds with a TransportError naming the field or offset, or a result that installs nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from phoneemu.crypto.certs import CertRequest, cert_der, issue_certificate
from phoneemu.crypto.keys import KeySpec, PublicKey, generate_key, load_public_key_spki_der
from phoneemu.errors import TransportError
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.net.capf_client import CapfOutcome, capf_session
from phoneemu.phone.boot import BootReport, BootTarget
from phoneemu.phone.flash import Flash
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile
from phoneemu.protocols import capf
from phoneemu.protocols.capf import CapfClientSession, CapfCommand, CapfTag, FrameDecoder
from tests.capf_hostile_helpers import (
    AUTH_REQUEST,
    DEVICE,
    HOST,
    KEYGEN_P256,
    Script,
    frame,
    next_frame,
    serve,
)
from tests.helpers import run

C = CapfCommand
T = CapfTag
CA_KEY = generate_key(KeySpec(kind="ec", curve="p256"))


def lsc_for(spki: bytes, *, cn: str = DEVICE, days: tuple[int, int] = (-1, 365)) -> bytes:
    now = dt.datetime.now(dt.UTC)
    req = CertRequest(subject=f"CN={cn}", public_key=load_public_key_spki_der(spki), serial=12,
                      not_before=now + dt.timedelta(days=days[0]), not_after=now + dt.timedelta(days=days[1]))
    return cert_der(issue_certificate(req, issuer_key=CA_KEY))


def session(**kw: object) -> CapfClientSession:
    return CapfClientSession(device_name=DEVICE, auth_mode=2, now=dt.datetime.now(dt.UTC), **kw)  # type: ignore[arg-type]


def outcome_of(script: Script, *, timeout: float = 2.0, **kw: object) -> CapfOutcome | TransportError:
    """What ``capf_session`` ended with against ``script`` (bounded: the phone's own bounds, 10 s at most)."""
    got: list[CapfOutcome | TransportError] = []

    async def body(port: int) -> None:
        try:
            got.append(await asyncio.wait_for(capf_session((HOST, port), session(**kw), timeout=timeout), 10))
        except TransportError as exc:
            got.append(exc)

    run(serve(script, body), 30)
    return got[0]


def error_of(script: Script, **kw: object) -> TransportError:
    got = outcome_of(script, **kw)
    assert isinstance(got, TransportError), got
    return got


def frames_then(*frames: bytes | None, linger: float = 0.0) -> Script:
    """Write each frame (None: read the phone's next frame first), then stay ``linger`` seconds."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dec = FrameDecoder()
        for f in frames:
            if f is None:
                await next_frame(reader, dec)
            else:
                writer.write(f)
                await writer.drain()
        await asyncio.sleep(linger)
    return script


# --- fixed ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("cut", "state", "named"), [
    (AUTH_REQUEST[:5], "wait-auth-request", "frame[0] at offset 0: stream ended inside a frame (5 byte(s)"),
    (None, "wait-command", "frame[1] at offset 16: stream ended inside a frame (10 byte(s)"),
], ids=["in-the-header", "in-the-body"])
def test_a_close_inside_a_frame_names_the_frame_and_its_offset(cut: bytes | None, state: str,
                                                               named: str) -> None:
    frames = (cut,) if cut is not None else (AUTH_REQUEST, None, KEYGEN_P256[:10])
    exc = error_of(frames_then(*frames))
    assert exc.kind == "protocol"
    assert f"CAPF closed the connection in state '{state}', inside a frame: " in exc.message
    assert named in exc.message


def test_a_close_between_frames_says_no_frame_was_cut() -> None:
    exc = error_of(frames_then(AUTH_REQUEST, None))
    assert exc.kind == "protocol" and "closed the connection in state 'wait-command'" in exc.message
    assert "inside a frame" not in exc.message


def test_store_and_success_in_one_write_then_gone_keeps_the_installed_lsc() -> None:
    """The server writes STORE_CERTIFICATE_REQUEST and END_SESSION {REASON=1} together and aborts the
    connection: the session ended with the LSC the phone accepted, whatever the race of its answer's send
    (was: 'connection lost', the LSC lost, and the boot retrying a finished operation)."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dec = FrameDecoder()
        writer.write(AUTH_REQUEST)
        await next_frame(reader, dec)
        writer.write(KEYGEN_P256)
        spki = (await next_frame(reader, dec)).require(T.PUBLIC_KEY)
        store = frame(C.STORE_CERTIFICATE_REQUEST, (T.CERTIFICATE, capf.encode_certificate(lsc_for(spki))))
        writer.write(store + frame(C.END_SESSION, (T.REASON, b"\x01")))
        await writer.drain()
        writer.transport.abort()

    for _ in range(3):  # the race went against the phone every time before (5 of 5 runs)
        got = outcome_of(script)
        assert isinstance(got, CapfOutcome), got
        assert got.outcome == "installed"
        assert got.result.key is not None and got.result.certificate is not None


def test_a_frame_during_a_slow_key_generation_is_named() -> None:
    store = frame(C.STORE_CERTIFICATE_REQUEST, (T.CERTIFICATE, capf.encode_certificate(b"x")))
    exc = error_of(frames_then(AUTH_REQUEST, None, KEYGEN_P256, None, store, linger=2),
                   keygen_seconds=1.0, in_progress_every=0.25)
    assert exc.kind == "protocol"
    assert "during key generation: STORE_CERTIFICATE_REQUEST before the phone's KEY_GENERATE_RESPONSE" \
        in exc.message


# --- through a whole boot against the lab --------------------------------------------------------------

NOW = 1_780_000_000
MAC = "0A00000000F1"


def boot_against_lab(tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch | None = None
                     ) -> tuple[BootReport, Flash]:
    c = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW)
    c.add_phone(MAC, now=NOW)
    c.set_capf([MAC], "install", auth_mode="null-string", key=key, now=NOW)
    if monkeypatch is not None:  # a CAPF issuing the phone's key to another device
        issue = c.issue_lsc

        def for_another(device_name: str, public_key: bytes | PublicKey, **kw: object) -> bytes:
            return issue("SEP0A00000000FF", public_key, **kw)  # type: ignore[arg-type]
        monkeypatch.setattr(c, "issue_lsc", for_another)
    prof = get_profile("cp-8861")
    flash = Flash(tmp_path / "ph", profile=prof)

    async def body() -> BootReport:
        async with LabServers(c, host=HOST) as srv:
            phone = Phone(mac=MAC, profile=prof, flash=flash, clock=lambda: NOW, capf_retries=0)
            target = BootTarget(host=HOST, tftp_port=srv.ports["tftp"], http_port=srv.ports["http"])
            return await phone.boot(target)

    return run(body(), 60), flash


def _capf_rejected(report: BootReport) -> str:
    [d] = [d for d in report.decisions if d.kind == "capf" and not d.accepted]
    assert d.rule == "F.6-capf-rejected"
    return d.reason


def test_the_lab_asking_an_rsa_512_lsc_is_refused_by_the_phone_not_a_traceback(tmp_path: Path) -> None:
    report, flash = boot_against_lab(tmp_path, "rsa512")
    assert report.lsc != "installed" and flash.load().lsc is None
    assert "cannot make RSA 512" in _capf_rejected(report)


def test_an_lsc_for_another_device_is_not_installed_through_the_boot(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    report, flash = boot_against_lab(tmp_path, "ec-p256", monkeypatch)
    assert report.lsc != "installed" and flash.load().lsc is None
    assert "names another device" in _capf_rejected(report)


# --- what held -------------------------------------------------------------------------------------------



async def _drip_install(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An honest install with every frame split into 1-byte TLS records."""
    async def drip(data: bytes) -> None:
        for b in data:
            writer.write(bytes([b]))
            await writer.drain()

    dec = FrameDecoder()
    await drip(AUTH_REQUEST)
    await next_frame(reader, dec)
    await drip(KEYGEN_P256)
    spki = (await next_frame(reader, dec)).require(T.PUBLIC_KEY)
    await drip(frame(C.STORE_CERTIFICATE_REQUEST, (T.CERTIFICATE, capf.encode_certificate(lsc_for(spki)))))
    await next_frame(reader, dec)
    await drip(frame(C.END_SESSION, (T.REASON, b"\x01")))
    await asyncio.sleep(1)


def test_held_a_message_split_into_one_byte_records_installs() -> None:
    got = outcome_of(_drip_install)
    assert isinstance(got, CapfOutcome) and got.outcome == "installed"


def _store_then_success(**lsc_kw: object) -> Script:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        dec = FrameDecoder()
        writer.write(AUTH_REQUEST)
        await next_frame(reader, dec)
        writer.write(KEYGEN_P256)
        spki = (await next_frame(reader, dec)).require(T.PUBLIC_KEY)
        der = lsc_for(spki, **lsc_kw)  # type: ignore[arg-type]
        writer.write(frame(C.STORE_CERTIFICATE_REQUEST, (T.CERTIFICATE, capf.encode_certificate(der))))
        await next_frame(reader, dec)
        writer.write(frame(C.END_SESSION, (T.REASON, b"\x01")))
        await writer.drain()
        await asyncio.sleep(1)
    return script


@pytest.mark.parametrize(("lsc_kw", "why"), [
    ({"days": (-400, -1)}, "expired at"),
    ({"days": (3, 400)}, "not valid before"),
    ({"cn": "SEP0011223344FF"}, "names another device"),
])
def test_held_an_lsc_the_phone_refuses_is_not_installed_on_a_success_end(lsc_kw: dict[str, object],
                                                                          why: str) -> None:
    got = outcome_of(_store_then_success(**lsc_kw))
    assert isinstance(got, CapfOutcome), got
    assert got.outcome == "rejected" and got.result.certificate is None and got.result.key is None
    assert why in got.result.detail


GIB_CLAIM = bytes([0x55, C.KEY_GENERATE_REQUEST]) + (0x52).to_bytes(4, "big") + b"\xff\xff" + b"a" * 1000


@pytest.mark.parametrize(("frames", "kind", "named"), [
    ((b"HTTP/1.1 200 OK\r\n\r\n",), "protocol", "header.protocol_id at offset 0: protocol id 0x48"),
    ((bytes([0x55, 99]) + bytes(6),), "protocol", "header.command at offset 1: unknown command 99"),
    ((frame(C.END_SESSION, (T.REASON, b"\x01")),), "protocol",
     "unexpected END_SESSION in state 'wait-auth-request'"),
    ((AUTH_REQUEST, None, frame(C.STORE_CERTIFICATE_REQUEST, (T.CERTIFICATE, capf.encode_certificate(b"x")))),
     "protocol", "unexpected STORE_CERTIFICATE_REQUEST in state 'wait-command'"),
    ((AUTH_REQUEST, None, frame(C.RETRY_LATER)), "protocol", "unexpected RETRY_LATER"),
    ((AUTH_REQUEST, None, frame(C.END_SESSION, (T.REASON, b"\x01\x01"))), "protocol",
     "REASON (tag 1): value of 2 bytes, expected 1"),
    ((AUTH_REQUEST, None, frame(C.END_SESSION, (T.REASON, b"\x07"), (T.REASON, b"\x01"))), "protocol",
     "END_SESSION carries REASON twice"),
    ((AUTH_REQUEST, None, frame(C.KEY_GENERATE_REQUEST)), "protocol", "lacks element KEY_TYPE"),
    ((AUTH_REQUEST, None, GIB_CLAIM), "timeout", "silent for 0.5s in state 'wait-command'"),
], ids=["garbage", "unknown-command", "end-first", "store-before-keygen", "retry-later", "long-reason",
        "two-reasons", "keygen-without-key-type", "largest-length-then-silent"])
def test_held_a_hostile_server_ends_the_session_naming_why(frames: tuple[bytes | None, ...], kind: str,
                                                            named: str) -> None:
    exc = error_of(frames_then(*frames, linger=3), timeout=0.5)
    assert exc.kind == kind and named in exc.message, exc


@pytest.mark.parametrize(("end", "outcome", "detail"), [
    (frame(C.END_SESSION, (T.REASON, b"\xc8")), "rejected", "reason 200"),
    (frame(C.END_SESSION, (99, b"zz"), (T.REASON, b"\x00")), "nothing-pending", ""),
    (frame(C.END_SESSION, (T.REASON, b"\x09")), "rejected", "unknown-device"),
], ids=["reason-out-of-range", "unknown-element", "unknown-device"])
def test_held_end_session_reasons_and_unknown_elements(end: bytes, outcome: str, detail: str) -> None:
    got = outcome_of(frames_then(AUTH_REQUEST, None, end, linger=30))  # a server that never closes
    assert isinstance(got, CapfOutcome), got
    assert got.outcome == outcome and detail in got.result.detail and got.result.certificate is None
