"""CAPF codec and state machines (spec §F): framing, element codecs, in-memory client↔server sessions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from phoneemu.crypto.certs import CertRequest, cert_der, issue_certificate, load_cert_der
from phoneemu.crypto.hashes import HashAlg
from phoneemu.crypto.keys import (
    KeySpec,
    PrivateKey,
    generate_key,
    key_description,
    load_public_key_spki_der,
    public_key_spki_der,
)
from phoneemu.crypto.signatures import sign_raw_digest, verify_raw_digest
from phoneemu.errors import DecodeError, EncodeError, ProtocolError, VerificationError, VerifyReason
from phoneemu.protocols import capf
from phoneemu.protocols.capf import (
    AuthType,
    CapfClientSession,
    CapfCommand,
    CapfServerSession,
    CapfTag,
    CertType,
    Element,
)

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DEVICE = "SEP001122334455"


@dataclass(frozen=True)
class Pki:
    ca_key: PrivateKey
    ca: x509.Certificate
    mic_key: PrivateKey
    mic: bytes
    rogue_key: PrivateKey
    rogue_mic: bytes

    def issue_lsc(self, device_name: str, spki: bytes) -> bytes:
        req = CertRequest(subject=f"CN={device_name};O=Lab", public_key=load_public_key_spki_der(spki),
                          serial=1234, not_before=NOW, not_after=NOW + dt.timedelta(days=365))
        return cert_der(issue_certificate(req, issuer_key=self.ca_key, issuer=self.ca))

    def verify(self, cert: x509.Certificate, cert_type: int) -> None:
        try:
            cert.verify_directly_issued_by(self.ca)
        except (ValueError, TypeError, InvalidSignature):
            raise VerificationError("not issued by the lab CA", reason=VerifyReason.UNKNOWN_SIGNER) from None


def _cert(subject: str, key: PrivateKey, ca_key: PrivateKey, ca: x509.Certificate | None) -> x509.Certificate:
    req = CertRequest(subject=subject, public_key=key.public_key(), serial=77, not_before=NOW,
                      not_after=NOW + dt.timedelta(days=3650), ca=ca is None)
    return issue_certificate(req, issuer_key=ca_key, issuer=ca)


@pytest.fixture(scope="module")
def pki() -> Pki:
    ca_key = generate_key(KeySpec(kind="ec", curve="p256"))
    ca = _cert("CN=Lab CA;O=Lab", ca_key, ca_key, None)
    mic_key = generate_key(KeySpec(kind="rsa", bits=2048))
    mic = _cert(f"CN={DEVICE};O=Mfg", mic_key, ca_key, ca)
    rogue_ca_key = generate_key(KeySpec(kind="ec", curve="p256"))
    rogue_ca = _cert("CN=Rogue;O=Rogue", rogue_ca_key, rogue_ca_key, None)
    rogue_key = generate_key(KeySpec(kind="ec", curve="p256"))
    rogue = _cert(f"CN={DEVICE};O=Rogue", rogue_key, rogue_ca_key, rogue_ca)
    return Pki(ca_key=ca_key, ca=ca, mic_key=mic_key, mic=cert_der(mic), rogue_key=rogue_key,
               rogue_mic=cert_der(rogue))


def fast_keys(kind: str, bits: int, curve: str | None) -> PrivateKey:
    return generate_key(KeySpec(kind=kind, bits=bits, curve=curve or "p256"))


def run(server: CapfServerSession, client: CapfClientSession, *, chunk: int = 0) -> list[int]:
    """Pump bytes both ways; return the sequence of commands seen on the wire. Bounded loop."""
    seen: list[int] = []
    to_client = [server.start()]
    for _ in range(50):
        to_server: list[bytes] = []
        for frame in to_client:
            seen.append(frame[1])
            if chunk:
                for i in range(0, len(frame), chunk):
                    to_server += client.receive(frame[i : i + chunk])
            else:
                to_server += client.receive(frame)
        to_client = []
        for frame in to_server:
            seen.append(frame[1])
            to_client += server.receive(frame)
        if not to_client and not to_server:
            break
    assert server.done and client.done
    return seen


def server(pki: Pki, **kw: object) -> CapfServerSession:
    args: dict[str, object] = {"session_id": 0x01020304, "issue_lsc": pki.issue_lsc,
                               "verify_device_cert": pki.verify}
    args.update(kw)
    return CapfServerSession(**args)  # type: ignore[arg-type]


C = CapfCommand


# --- sessions ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("key_type", "extra", "expect"), [
    ("rsa", {"key_size": 2048}, "RSA 2048"),
    ("ec", {"curve": "p256"}, "EC secp256r1"),
])
def test_install(pki: Pki, key_type: str, extra: dict[str, object], expect: str) -> None:
    s = server(pki, operation="install", auth_mode=AuthType.NULL_STRING, key_type=key_type, **extra)
    c = CapfClientSession(device_name=DEVICE, generate_key=fast_keys, send_in_progress=True)
    seq = run(s, c)
    assert seq == [C.AUTH_REQUEST, C.AUTH_RESPONSE, C.KEY_GENERATE_REQUEST, C.REQUEST_IN_PROGRESS,
                   C.KEY_GENERATE_RESPONSE, C.STORE_CERTIFICATE_REQUEST, C.STORE_CERTIFICATE_RESPONSE,
                   C.END_SESSION]
    assert s.result is not None and c.result is not None
    assert s.result.outcome == "installed" and s.result.device_name == DEVICE
    assert c.result.outcome == "installed" and c.result.certificate == s.result.certificate
    assert c.result.key is not None
    assert key_description(c.result.key) == expect
    lsc = load_cert_der(c.result.certificate or b"")
    pki.verify(lsc, CertType.LSC)


def test_install_ec_p384_byte_by_byte(pki: Pki) -> None:
    s = server(pki, operation="install", auth_mode=AuthType.NONE, key_type="ec", curve="p384")
    c = CapfClientSession(device_name=DEVICE)
    run(s, c, chunk=1)
    assert c.result is not None and c.result.outcome == "installed"


def test_auth_request_bytes(pki: Pki) -> None:
    s = server(pki, operation="none", auth_mode=AuthType.PASSWORD, auth_string="1234")
    assert s.start() == bytes.fromhex("55 01 01020304 0008 070001 03 080001 01".replace(" ", ""))
    with pytest.raises(ProtocolError, match="start"):
        s.start()


def test_fetch_and_delete(pki: Pki) -> None:
    lsc = pki.issue_lsc(DEVICE, public_key_spki_der(pki.mic_key.public_key()))
    s = server(pki, operation="fetch")
    c = CapfClientSession(device_name=DEVICE, current_lsc=lsc)
    assert run(s, c) == [C.AUTH_REQUEST, C.AUTH_RESPONSE, C.FETCH_CERTIFICATE_REQUEST,
                         C.FETCH_CERTIFICATE_RESPONSE, C.END_SESSION]
    assert s.result is not None and s.result.outcome == "fetched" and s.result.certificate == lsc
    assert c.result is not None and c.result.outcome == "fetched" and c.result.reason == 0

    s = server(pki, operation="fetch")
    c = CapfClientSession(device_name=DEVICE, current_lsc=None)
    run(s, c)
    assert s.result is not None and s.result.outcome == "fetch-failed"
    assert c.result is not None and c.result.outcome == "rejected" and c.result.reason == 7

    s = server(pki, operation="delete")
    c = CapfClientSession(device_name=DEVICE, current_lsc=lsc)
    assert run(s, c)[-3:] == [C.DELETE_CERTIFICATE_REQUEST, C.DELETE_CERTIFICATE_RESPONSE, C.END_SESSION]
    assert s.result is not None and s.result.outcome == "deleted" and s.result.reason == 1
    assert c.result is not None and c.result.outcome == "deleted"

    s = server(pki, operation="delete")
    c = CapfClientSession(device_name=DEVICE)
    run(s, c)
    assert s.result is not None and s.result.outcome == "delete-failed"


def test_nothing_pending_and_unknown_device(pki: Pki) -> None:
    s = server(pki, operation="none")
    c = CapfClientSession(device_name=DEVICE)
    assert run(s, c) == [C.AUTH_REQUEST, C.AUTH_RESPONSE, C.END_SESSION]
    assert s.result is not None and s.result.outcome == "nothing-pending"
    assert c.result is not None and c.result.outcome == "nothing-pending"

    s = server(pki, operation="install", known_device=lambda name: name == "SEPAAAAAAAAAAAA")
    c = CapfClientSession(device_name=DEVICE)
    run(s, c)
    assert s.result is not None and s.result.outcome == "unknown-device" and s.result.reason == 9
    assert c.result is not None and c.result.outcome == "rejected" and c.result.detail == "unknown-device"


@pytest.mark.parametrize(("typed", "outcome"), [("123456", "installed"), ("654321", "bad-auth"),
                                                ("", "bad-auth")])
def test_password_mode(pki: Pki, typed: str, outcome: str) -> None:
    s = server(pki, operation="install", auth_mode=AuthType.PASSWORD, auth_string="123456", key_type="ec")
    c = CapfClientSession(device_name=DEVICE, auth_string=typed)
    run(s, c)
    assert s.result is not None and s.result.outcome == outcome
    assert c.result is not None
    assert c.result.outcome == ("installed" if outcome == "installed" else "rejected")
    if outcome == "bad-auth":
        assert c.result.reason == 7 and "does not match" in s.result.detail


@pytest.mark.parametrize("bad", ["123", "12345678901234567", "12ab", "\uff11\uff12\uff13\uff14"])
def test_password_config_checked(pki: Pki, bad: str) -> None:
    with pytest.raises(EncodeError, match=r"4\.\.16 digits"):
        server(pki, auth_mode=AuthType.PASSWORD, auth_string=bad)
    server(pki, auth_mode=AuthType.PASSWORD, auth_string="1234567890123456")


@pytest.mark.parametrize("mode", [AuthType.LSC, AuthType.MIC])
def test_certificate_modes(pki: Pki, mode: int) -> None:
    s = server(pki, operation="install", auth_mode=mode, key_type="ec")
    c = CapfClientSession(device_name=DEVICE, cert_der=pki.mic, cert_key=pki.mic_key)
    run(s, c)
    assert s.result is not None and s.result.outcome == "installed", s.result
    # the AUTH_RESPONSE carried certificate and both signatures
    c2 = CapfClientSession(device_name=DEVICE, cert_der=pki.mic, cert_key=pki.mic_key)
    out = c2.receive(server(pki, auth_mode=mode).start())
    msg = capf.decode(out[0])
    assert [e.tag for e in msg.elements] == [CapfTag.REASON, CapfTag.VERSION, CapfTag.DEVICE_NAME,
                                             CapfTag.PASSWORD, CapfTag.CERTIFICATE, CapfTag.SIGNED_DATA,
                                             CapfTag.SHA2_SIGNED_DATA]
    assert capf.decode_certificate(msg.require(CapfTag.CERTIFICATE)) == (CertType.MIC, pki.mic)
    data = capf.auth_data(DEVICE, pki.mic)
    pub = pki.mic_key.public_key()
    verify_raw_digest(pub, msg.require(CapfTag.SIGNED_DATA), data, HashAlg.SHA1)
    code, sig = capf.decode_sha2_signed_data(msg.require(CapfTag.SHA2_SIGNED_DATA))
    assert code == 3
    verify_raw_digest(pub, sig, data, HashAlg.SHA512)


def test_certificate_mode_with_sudi(pki: Pki) -> None:
    s = server(pki, operation="none", auth_mode=AuthType.MIC)
    c = CapfClientSession(device_name=DEVICE, cert_der=pki.mic, cert_key=pki.mic_key,
                          sudi=capf.SudiData(certificate=pki.mic), sudi_key=pki.mic_key)
    run(s, c)
    assert s.result is not None and s.result.outcome == "nothing-pending", s.result
    s = server(pki, operation="none", auth_mode=AuthType.MIC)
    c = CapfClientSession(device_name=DEVICE, cert_der=pki.mic, cert_key=pki.mic_key,
                          sudi=capf.SudiData(certificate=pki.mic), sudi_key=pki.rogue_key)
    run(s, c)
    assert s.result is not None and s.result.outcome == "bad-auth"


def test_certificate_mode_failures(pki: Pki) -> None:
    # certificate from another CA, correctly signed: the chain check refuses it
    s = server(pki, operation="install", auth_mode=AuthType.MIC)
    run(s, CapfClientSession(device_name=DEVICE, cert_der=pki.rogue_mic, cert_key=pki.rogue_key))
    assert s.result is not None and s.result.outcome == "bad-auth" and "lab CA" in s.result.detail
    # right certificate, signature made with the wrong key
    s = server(pki, operation="install", auth_mode=AuthType.LSC)
    run(s, CapfClientSession(device_name=DEVICE, cert_der=pki.mic, cert_key=pki.rogue_key))
    assert s.result is not None and s.result.outcome == "bad-auth" and "does not verify" in s.result.detail
    # no certificate at all
    s = server(pki, operation="install", auth_mode=AuthType.LSC)
    run(s, CapfClientSession(device_name=DEVICE))
    assert s.result is not None and s.result.outcome == "bad-auth" and "no CERTIFICATE" in s.result.detail
    # no verifier configured: refused
    s = server(pki, operation="none", auth_mode=AuthType.MIC, verify_device_cert=None)
    run(s, CapfClientSession(device_name=DEVICE, cert_der=pki.mic, cert_key=pki.mic_key))
    assert s.result is not None and s.result.outcome == "bad-auth"


def test_tampered_signed_data(pki: Pki) -> None:
    s = server(pki, operation="none", auth_mode=AuthType.MIC)
    c = CapfClientSession(device_name=DEVICE, cert_der=pki.mic, cert_key=pki.mic_key)
    msg = capf.decode(c.receive(s.start())[0])
    els = list(msg.elements)
    i = next(k for k, e in enumerate(els) if e.tag == CapfTag.SIGNED_DATA)
    sig = bytearray(els[i].value)
    sig[-1] ^= 1
    els[i] = Element(tag=CapfTag.SIGNED_DATA, value=bytes(sig))
    out = s.receive(capf.encode(capf.CapfMessage(command=2, session_id=msg.session_id, elements=tuple(els))))
    assert capf.decode(out[0]).get(CapfTag.REASON) == b"\x07"
    assert s.result is not None and s.result.outcome == "bad-auth"


def test_keygen_failure_and_wrong_key(pki: Pki) -> None:
    s = server(pki, operation="install", key_type="rsa", key_size=1024)

    def broken(kind: str, bits: int, curve: str | None) -> PrivateKey:
        raise EncodeError("no")

    c = CapfClientSession(device_name=DEVICE, generate_key=broken)
    run(s, c)
    assert s.result is not None and s.result.outcome == "keygen-failed"
    assert c.result is not None and c.result.outcome == "rejected" and "keygen" in c.result.detail

    s = server(pki, operation="install", key_type="rsa", key_size=2048)
    c = CapfClientSession(device_name=DEVICE, generate_key=lambda k, b, cv: fast_keys("ec", 256, "p256"))
    run(s, c)
    assert s.result is not None and s.result.outcome == "keygen-failed" and "asked for" in s.result.detail


def test_store_of_foreign_certificate_refused(pki: Pki) -> None:
    s = server(pki, operation="install", key_type="ec", issue_lsc=lambda name, spki: pki.mic)
    c = CapfClientSession(device_name=DEVICE)
    run(s, c)
    assert s.result is not None and s.result.outcome == "store-failed"
    assert c.result is not None and c.result.outcome == "rejected"


# --- sequencing errors -------------------------------------------------------------------------

def test_unexpected_commands(pki: Pki) -> None:
    s = server(pki, operation="install")
    s.start()
    with pytest.raises(ProtocolError, match=r"unexpected KEY_GENERATE_RESPONSE in state 'wait-auth'"):
        s.receive(capf.encode(capf.message(C.KEY_GENERATE_RESPONSE, 0x01020304)))
    c = CapfClientSession(device_name=DEVICE)
    with pytest.raises(ProtocolError, match=r"unexpected END_SESSION in state 'wait-auth-request'"):
        c.receive(capf.encode(capf.message(C.END_SESSION, 1, (CapfTag.REASON, b"\0"))))
    s = server(pki, operation="install")
    s.start()
    with pytest.raises(ProtocolError, match="session id 9"):
        s.receive(capf.encode(capf.message(C.AUTH_RESPONSE, 9)))
    s = server(pki, operation="none")
    c = CapfClientSession(device_name=DEVICE)
    run(s, c)
    with pytest.raises(ProtocolError, match="after the session ended"):
        s.receive(capf.encode(capf.message(C.AUTH_RESPONSE, 0x01020304)))


def test_in_progress_only_while_waiting_for_key(pki: Pki) -> None:
    s = server(pki, operation="fetch")
    c = CapfClientSession(device_name=DEVICE)
    s.receive(c.receive(s.start())[0])
    with pytest.raises(ProtocolError, match="REQUEST_IN_PROGRESS in state 'wait-fetch'"):
        s.receive(capf.encode(capf.message(C.REQUEST_IN_PROGRESS, 0x01020304)))


def test_missing_device_name_is_decode_error(pki: Pki) -> None:
    s = server(pki)
    s.start()
    with pytest.raises(DecodeError, match="lacks element DEVICE_NAME") as ei:
        s.receive(capf.encode(capf.message(C.AUTH_RESPONSE, 0x01020304, (CapfTag.REASON, b"\1"))))
    assert ei.value.tag == CapfTag.DEVICE_NAME


# --- element codecs and framing ---------------------------------------------------------------

def test_certificate_wrapper() -> None:
    v = capf.encode_certificate(b"\x30\x01\x00", CertType.LSC)
    assert v == bytes.fromhex("010005 00 01 300100".replace(" ", ""))
    assert capf.decode_certificate(v) == (1, b"\x30\x01\x00")
    with pytest.raises(DecodeError, match="inner length"):
        capf.decode_certificate(v[:-1])
    with pytest.raises(DecodeError):
        capf.decode_certificate(b"\x01\x00")


def test_sha2_and_sudi_and_strings() -> None:
    v = capf.encode_sha2_signed_data(b"sig")
    assert v == b"\x03\x00\x03sig" and capf.decode_sha2_signed_data(v) == (3, b"sig")
    with pytest.raises(DecodeError):
        capf.decode_sha2_signed_data(v + b"x")
    sudi = capf.SudiData(certificate=b"c", sha1_signature=b"s1", sha512_signature=b"s5", unknown=((9, b"u"),))
    raw = capf.encode_sudi_data(sudi)
    assert raw == b"\x00\x00\x01c\x01\x00\x02s1\x03\x00\x02s5\x09\x00\x01u"
    assert capf.decode_sudi_data(raw) == sudi
    with pytest.raises(DecodeError):
        capf.decode_sudi_data(raw[:-1])
    assert capf.encode_cstring("") == b"\0" and capf.decode_cstring(b"SEP1\0") == "SEP1"
    for bad in (b"", b"abc", b"a\0b\0", b"\xff\0"):
        with pytest.raises(DecodeError):
            capf.decode_cstring(bad)
    assert capf.sudi_auth_data(0x01020304, b"D") == b"\x04\x03\x02\x01D"


def test_framing_edge_cases() -> None:
    m = capf.message(C.END_SESSION, 5, (CapfTag.REASON, b"\x01"), (0xEE, b"unknown"))
    wire = capf.encode(m)
    assert wire[:8] == bytes.fromhex("550f00000005000e")
    assert capf.decode(wire) == m
    with pytest.raises(DecodeError, match="truncated header"):
        capf.decode(wire[:5])
    for delta in (-1, 1):
        f = bytearray(wire)
        f[7] += delta
        with pytest.raises(DecodeError, match="body length") as ei:
            capf.decode(bytes(f))
        assert ei.value.offset == 6 and ei.value.fmt == "capf"
    with pytest.raises(ProtocolError, match="protocol id"):
        capf.decode(b"\x57" + wire[1:])
    with pytest.raises(ProtocolError, match="unknown command 0"):
        capf.FrameDecoder().feed(b"\x55\x00")
    dec = capf.FrameDecoder()
    got = []
    for b in wire * 2:
        got += dec.feed(bytes([b]))
    assert got == [m, m]


def test_sign_raw_digest_helper_used_consistently(pki: Pki) -> None:
    data = capf.auth_data(DEVICE, pki.mic)
    sig = sign_raw_digest(pki.mic_key, data, HashAlg.SHA1)
    assert len(sig) == 256
    verify_raw_digest(pki.mic_key.public_key(), sig, data, HashAlg.SHA1)




def _auth_response_without(pki: Pki, drop: set[int]) -> tuple[CapfServerSession, bytes]:
    s = server(pki, operation="none", auth_mode=AuthType.LSC)
    c = CapfClientSession(device_name=DEVICE, cert_der=pki.mic, cert_key=pki.mic_key)
    msg = capf.decode(c.receive(s.start())[0])
    kept = tuple(e for e in msg.elements if e.tag not in drop)
    return s, capf.encode(capf.CapfMessage(command=msg.command, session_id=msg.session_id, elements=kept))


@pytest.mark.parametrize(("drop", "outcome"), [
    ({CapfTag.SIGNED_DATA}, "nothing-pending"),
    ({CapfTag.SHA2_SIGNED_DATA}, "nothing-pending"),
    ({CapfTag.SIGNED_DATA, CapfTag.SHA2_SIGNED_DATA}, "bad-auth"),
])
def test_either_signature_suffices(pki: Pki, drop: set[int], outcome: str) -> None:
    s, frame = _auth_response_without(pki, drop)
    s.receive(frame)
    assert s.result is not None and s.result.outcome == outcome


def test_session_fails_for_good_after_error(pki: Pki) -> None:
    c = CapfClientSession(device_name=DEVICE)
    with pytest.raises(ProtocolError):
        c.receive(b"\x56")
    assert c.failed and c.state == "failed"
    with pytest.raises(ProtocolError):
        c.receive(server(pki).start())


def test_a_frame_followed_by_garbage_is_answered_then_the_session_fails(pki: Pki) -> None:
    """One read holding AUTH_RESPONSE and garbage: the reply to AUTH_RESPONSE is still produced,
    then the session is failed with the garbage's error (the server logs it and closes)."""
    s = server(pki, operation="install", auth_mode=AuthType.NULL_STRING, key_type="ec", curve="p256")
    c = CapfClientSession(device_name=DEVICE, generate_key=fast_keys)
    (auth_response,) = c.receive(s.start())
    frames = s.receive(auth_response + b"GET / HTTP/1.0\r\n\r\n")
    assert [f[1] for f in frames] == [C.KEY_GENERATE_REQUEST]
    assert s.failed and s.error is not None and "offset" in str(s.error)
    with pytest.raises(DecodeError):
        s.receive(b"")


def test_a_frame_followed_by_an_out_of_place_frame_is_answered_then_the_session_fails(pki: Pki) -> None:
    """One read holding AUTH_RESPONSE twice: the reply to the first was lost with the error of the second
    (the phone got nothing, not even the KEY_GENERATE_REQUEST its AUTH_RESPONSE earned)."""
    s = server(pki, operation="install", auth_mode=AuthType.NULL_STRING, key_type="ec", curve="p256")
    c = CapfClientSession(device_name=DEVICE, generate_key=fast_keys)
    (auth_response,) = c.receive(s.start())
    frames = s.receive(auth_response + auth_response)
    assert [f[1] for f in frames] == [C.KEY_GENERATE_REQUEST]
    assert s.failed and s.error is not None and "unexpected" in str(s.error)
    with pytest.raises(DecodeError):
        s.receive(b"")


# --- confirm_end: the server records a success before the phone is told ----------------------------

def _until_unconfirmed(s: CapfServerSession, c: CapfClientSession) -> list[int]:
    """Pump until the server holds its END_SESSION back (``confirm_end``). Bounded loop."""
    seen: list[int] = []
    to_client = [s.start()]
    for _ in range(50):
        to_server = [out for frame in to_client for out in c.receive(frame)]
        seen += [f[1] for f in to_client] + [f[1] for f in to_server]
        to_client = [out for frame in to_server for out in s.receive(frame)]
        if not to_client:
            break
    return seen


@pytest.mark.parametrize("operation", ["install", "fetch", "delete"])
def test_confirm_end_holds_the_success_until_confirmed(pki: Pki, operation: str) -> None:
    lsc = pki.issue_lsc(DEVICE, public_key_spki_der(pki.mic_key.public_key()))
    s = server(pki, operation=operation, key_type="ec", curve="p256", confirm_end=True)
    c = CapfClientSession(device_name=DEVICE, current_lsc=None if operation == "install" else lsc,
                          generate_key=fast_keys)
    seen = _until_unconfirmed(s, c)
    assert C.END_SESSION not in seen and not s.done and not c.done and s.state == "wait-confirm"
    pending = s.unconfirmed
    assert pending is not None and pending.outcome == {"install": "installed", "fetch": "fetched",
                                                       "delete": "deleted"}[operation]
    assert c.receive(s.confirm()) == []
    assert s.done and s.result == pending and s.unconfirmed is None
    assert c.result is not None and c.result.outcome == {"install": "installed", "fetch": "fetched",
                                                         "delete": "deleted"}[operation]
    with pytest.raises(ProtocolError, match=r"confirm\(\) in state 'ended'"):
        s.confirm()


@pytest.mark.parametrize("operation", ["install", "delete"])
def test_confirm_end_refused_tells_the_phone_it_failed(pki: Pki, operation: str) -> None:
    """An outcome the server could not record: END_SESSION REASON 7, and the phone keeps what it had
    (an install is not stored, a delete not done: the client's result is "rejected")."""
    lsc = pki.issue_lsc(DEVICE, public_key_spki_der(pki.mic_key.public_key()))
    s = server(pki, operation=operation, key_type="ec", curve="p256", confirm_end=True)
    c = CapfClientSession(device_name=DEVICE, current_lsc=None if operation == "install" else lsc,
                          generate_key=fast_keys)
    _until_unconfirmed(s, c)
    end = s.refuse("lab busy")
    assert capf.decode(end).command == C.END_SESSION and capf.decode(end).u8(capf.CapfTag.REASON) == 7
    c.receive(end)
    assert s.result is not None and s.result.outcome == "not-recorded" and s.result.reason == 7
    assert "not recorded: lab busy" in s.result.detail
    assert c.result is not None and c.result.outcome == "rejected" and c.result.reason == 7
    assert c.result.certificate is None and c.result.key is None
    with pytest.raises(ProtocolError, match="refuse"):
        s.refuse("again")


def test_confirm_end_leaves_failures_and_nothing_pending_as_they_were(pki: Pki) -> None:
    s = server(pki, operation="none", confirm_end=True)
    c = CapfClientSession(device_name=DEVICE)
    run(s, c)
    assert s.result is not None and s.result.outcome == "nothing-pending" and s.unconfirmed is None
    s = server(pki, operation="fetch", confirm_end=True)
    c = CapfClientSession(device_name=DEVICE, current_lsc=None)
    run(s, c)
    assert s.result is not None and s.result.outcome == "fetch-failed"
    with pytest.raises(ProtocolError, match=r"confirm\(\) in state 'ended'"):
        s.confirm()


def test_a_frame_while_waiting_for_confirmation_fails_the_session(pki: Pki) -> None:
    s = server(pki, operation="install", key_type="ec", curve="p256", confirm_end=True)
    _until_unconfirmed(s, CapfClientSession(device_name=DEVICE, generate_key=fast_keys))
    with pytest.raises(ProtocolError, match="unexpected REQUEST_IN_PROGRESS in state 'wait-confirm'"):
        s.receive(capf.encode(capf.message(C.REQUEST_IN_PROGRESS, 0x01020304)))
    with pytest.raises(ProtocolError, match=r"confirm\(\) in state 'failed'"):
        s.confirm()
