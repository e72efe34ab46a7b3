"""The CAPF server answers malformed authentication data as §F.6's "bad data": END_SESSION REASON 7,
outcome ``bad-auth``, the detail naming the element — it used to raise a DecodeError, so the lab closed
the connection without a word and the phone, seeing a lost connection, retried (§F.1)."""

from __future__ import annotations

import pytest

from phoneemu.errors import DecodeError
from phoneemu.protocols import capf
from phoneemu.protocols.capf import AuthType, CapfCommand, CapfTag, Element
from tests.unit import test_capf
from tests.unit.test_capf import DEVICE, Pki, server

SID = 0x01020304
_Elements = tuple[tuple[int, bytes], ...]
NAME = (CapfTag.DEVICE_NAME, DEVICE.encode() + b"\0")


@pytest.fixture(scope="module")
def pki() -> Pki:
    return test_capf.pki.__wrapped__()  # type: ignore[attr-defined]  # test_capf's fixture, as a function


def _auth_response(*elements: tuple[int, bytes]) -> bytes:
    return capf.encode(capf.message(CapfCommand.AUTH_RESPONSE, SID, (CapfTag.REASON, b"\x01"),
                                    (CapfTag.VERSION, b"\x03"), NAME, *elements))


@pytest.mark.parametrize(("mode", "elements", "named"), [
    (AuthType.PASSWORD, ((CapfTag.PASSWORD, b"1234"),), "PASSWORD (tag 11)"),
    (AuthType.MIC, ((CapfTag.CERTIFICATE, b"\x01\x00\x09\x00\x02abc"), (CapfTag.SIGNED_DATA, b"x")),
     "CERTIFICATE.length (tag 4) at offset 1"),
    (AuthType.LSC, ((CapfTag.CERTIFICATE, capf.encode_certificate(b"not DER")), (CapfTag.SIGNED_DATA, b"x")),
     "CERTIFICATE"),
])
def test_malformed_authentication_data_is_bad_auth(pki: Pki, mode: int, elements: _Elements,
                                                   named: str) -> None:
    s = server(pki, operation="install", auth_mode=mode, auth_string="1234")
    s.start()
    (end,) = [capf.decode(f) for f in s.receive(_auth_response(*elements))]
    assert end.command == CapfCommand.END_SESSION and end.get(CapfTag.REASON) == b"\x07"
    assert s.result is not None and s.result.outcome == "bad-auth" and not s.failed
    assert s.result.detail.startswith("malformed authentication data: ") and named in s.result.detail


def test_malformed_sha2_signed_data_of_a_good_certificate_is_bad_auth(pki: Pki) -> None:
    s = server(pki, operation="none", auth_mode=AuthType.MIC)
    s.start()
    cert = Element(tag=CapfTag.CERTIFICATE, value=capf.encode_certificate(pki.mic, capf.CertType.MIC))
    out = s.receive(_auth_response((cert.tag, cert.value), (CapfTag.SHA2_SIGNED_DATA, b"\x03\x00\x09ab")))
    assert capf.decode(out[0]).get(CapfTag.REASON) == b"\x07"
    assert s.result is not None and "SHA2_SIGNED_DATA" in s.result.detail


def test_a_malformed_device_name_is_still_a_decode_error(pki: Pki) -> None:
    """The device is not known: nothing to answer for it (the lab logs ``malformed``)."""
    s = server(pki, operation="none")
    s.start()
    bad = capf.encode(capf.message(CapfCommand.AUTH_RESPONSE, SID, (CapfTag.DEVICE_NAME, b"SEP1")))
    with pytest.raises(DecodeError, match="NUL-terminated"):
        s.receive(bad)
