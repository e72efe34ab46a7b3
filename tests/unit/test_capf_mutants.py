"""CAPF codec and the phone's CAPF client (spec §F): rules a mutation run of protocols/capf.py and
net/capf_client.py found untested.

Each test states the rule it checks. The phone: a STORE after a refused key request installs nothing; a
KEY_SIZE of the wrong length is malformed, not a size; the key generator is asked for the key the server
named and a key at the phone's limit is made; an LSC is valid on the first and last second of its validity;
an END_SESSION that installs nothing names its reason; the first error after answered frames is the one
reported; a CAPF server the phone does not accept is sent nothing (§F.1). Configuration, messages and element
values that cannot be encoded are refused when given, naming the field; the largest that can is accepted;
the command codes are those of §F.3; the server takes DELETE_CERTIFICATE_RESPONSE only after it asked.
"""

from __future__ import annotations

import asyncio

import pytest
from cryptography import x509

from phoneemu.crypto.keys import KeySpec, PrivateKey, generate_key, public_key_spki_der
from phoneemu.errors import DecodeError, EncodeError, ProtocolError, TransportError
from phoneemu.net.capf_client import capf_session
from phoneemu.protocols import capf
from phoneemu.protocols.capf import (
    CapfClientSession,
    CapfCommand,
    CapfServerSession,
    CapfTag,
    Element,
)
from tests import capf_hostile_helpers
from tests.helpers import run
from tests.signer_helpers import capf_ca
from tests.unit.test_capf_hostile import DEVICE, NOW, authenticated, feed, lsc_for, msg

MAX_BODY = capf.MAX_FRAME - capf.HEADER_SIZE  # 65535 (§F.2)

C = CapfCommand
T = CapfTag


@pytest.fixture(scope="module")
def ca() -> tuple[PrivateKey, x509.Certificate]:
    return capf_ca("CN=CAPF-mutants;O=Lab", NOW)


# --- the phone -------------------------------------------------------------------------------------

def test_a_store_after_a_refused_key_request_installs_nothing(
        ca: tuple[PrivateKey, x509.Certificate]) -> None:
    """Module docstring: an LSC is installed only for the key just generated; after a key request the phone
    refused (RSA above its limit) there is no such key, so even a well-formed LSC naming this device is
    refused (REASON 7) and the server's END_SESSION {REASON=1} installs nothing; the refusal says why."""
    phone = authenticated(max_rsa_bits=2048)
    (resp,) = feed(phone, msg(C.KEY_GENERATE_REQUEST, (T.KEY_TYPE, b"\x00"), (T.KEY_SIZE, b"\x10\x00")))
    assert resp.command == C.KEY_GENERATE_RESPONSE and not resp.has(T.PUBLIC_KEY)
    some_key = generate_key(KeySpec(kind="ec", curve="p256"))
    der = lsc_for(ca, public_key_spki_der(some_key.public_key()))
    (answer,) = feed(phone, msg(C.STORE_CERTIFICATE_REQUEST, (T.CERTIFICATE, capf.encode_certificate(der))))
    assert answer.command == C.STORE_CERTIFICATE_RESPONSE and answer.get(T.REASON) == b"\x07"
    assert feed(phone, msg(C.END_SESSION, (T.REASON, b"\x01"))) == []
    r = phone.result
    assert r is not None and r.outcome == "rejected" and r.certificate is None and r.key is None
    assert "refused the key request" in r.detail


def test_the_first_error_after_answered_frames_is_the_one_reported() -> None:
    """``receive``: frames before an error are answered, then the session fails with that error. An
    out-of-place STORE_CERTIFICATE_REQUEST followed by garbage in the same read fails the session naming the
    STORE — the first thing wrong — not the garbage after it."""
    phone = CapfClientSession(device_name=DEVICE)
    data = (msg(C.AUTH_REQUEST, (T.AUTH_TYPE, b"\x02"))
            + msg(C.STORE_CERTIFICATE_REQUEST, (T.CERTIFICATE, capf.encode_certificate(b"\x30")))
            + b"\x00\x00")
    (answer,) = [capf.decode(f) for f in phone.receive(data)]
    assert answer.command == C.AUTH_RESPONSE
    assert phone.failed and isinstance(phone.error, ProtocolError)
    assert "unexpected STORE_CERTIFICATE_REQUEST in state 'wait-command'" in str(phone.error)
    with pytest.raises(ProtocolError, match="unexpected STORE_CERTIFICATE_REQUEST"):
        phone.receive(b"")


def test_a_key_at_the_phones_limit_is_made() -> None:
    """The phone's ``max_rsa_bits`` (its profile) is the largest RSA key it makes: a request for exactly
    that size is answered with a PUBLIC_KEY; one size up (§F.8: 2048 over 1024) is refused, REASON 7."""
    phone = authenticated(max_rsa_bits=1024)
    (resp,) = feed(phone, msg(C.KEY_GENERATE_REQUEST, (T.KEY_TYPE, b"\x00"), (T.KEY_SIZE, b"\x04\x00")))
    assert resp.has(T.PUBLIC_KEY) and phone.key_generated
    phone = authenticated(max_rsa_bits=1024)
    (resp,) = feed(phone, msg(C.KEY_GENERATE_REQUEST, (T.KEY_TYPE, b"\x00"), (T.KEY_SIZE, b"\x08\x00")))
    assert resp.get(T.REASON) == b"\x07" and not resp.has(T.PUBLIC_KEY)


@pytest.mark.parametrize(("keygen", "every"), [(0.5, 0.5), (0.5, 10.0), (30.0, 0.25)])
def test_a_phone_slow_by_a_fraction_of_a_second_says_so_at_once(keygen: float, every: float) -> None:
    """Module docstring "Slow key generation": any ``keygen_seconds`` > 0 with a cadence > 0 (seconds, not
    whole seconds) sends REQUEST_IN_PROGRESS before its KEY_GENERATE_RESPONSE."""
    phone = authenticated(keygen_seconds=keygen, in_progress_every=every)
    got = feed(phone, msg(C.KEY_GENERATE_REQUEST, (T.KEY_TYPE, b"\x01"), (T.CURVE, b"\x00")))
    assert [m.command for m in got] == [C.REQUEST_IN_PROGRESS, C.KEY_GENERATE_RESPONSE]


@pytest.mark.parametrize(("reason", "detail"), [(b"\x07", "failure during keygen"),
                                               (b"\x00", "reason 0 during keygen"),
                                               (b"\xc8", "reason 200 during keygen")])
def test_an_end_that_installs_nothing_says_which_reason(reason: bytes, detail: str) -> None:
    """§F.5: REASON 7 is "failure"; any other value the phone does not act on is named by its number. The
    rejected result's detail says which, and during which operation."""
    phone = authenticated()
    feed(phone, msg(C.KEY_GENERATE_REQUEST, (T.KEY_TYPE, b"\x01"), (T.CURVE, b"\x00")))
    assert feed(phone, msg(C.END_SESSION, (T.REASON, reason))) == []
    assert phone.result is not None and phone.result.outcome == "rejected"
    assert phone.result.detail == detail


@pytest.mark.parametrize("days", [(0, 365), (-365, 0)], ids=["valid-from-now", "valid-until-now"])
def test_an_lsc_is_valid_on_the_first_and_last_second_of_its_validity(
        ca: tuple[PrivateKey, x509.Certificate], days: tuple[int, int]) -> None:
    """X.509 validity is inclusive (RFC 5280 §4.1.2.5): an LSC whose notBefore or notAfter is the phone's
    ``now`` is installed (module docstring: refused only outside its validity)."""
    phone = authenticated(now=NOW)
    (resp,) = feed(phone, msg(C.KEY_GENERATE_REQUEST, (T.KEY_TYPE, b"\x01"), (T.CURVE, b"\x00")))
    der = lsc_for(ca, resp.require(T.PUBLIC_KEY), days=days)
    (answer,) = feed(phone, msg(C.STORE_CERTIFICATE_REQUEST, (T.CERTIFICATE, capf.encode_certificate(der))))
    assert answer.get(T.REASON) == b"\x01"
    feed(phone, msg(C.END_SESSION, (T.REASON, b"\x01")))
    assert phone.result is not None and phone.result.outcome == "installed"


@pytest.mark.parametrize(("elements", "asked"), [
    (((T.KEY_TYPE, b"\x00"), (T.KEY_SIZE, b"\x08\x00")), ("rsa", 2048, None)),
    (((T.KEY_TYPE, b"\x01"), (T.CURVE, b"\x00")), ("ec", 256, "p256")),
    (((T.KEY_TYPE, b"\x01"), (T.CURVE, b"\x01")), ("ec", 384, "p384")),
    (((T.KEY_TYPE, b"\x01"), (T.CURVE, b"\x02")), ("ec", 521, "p521")),
])
def test_the_key_generator_is_asked_for_the_key_the_server_named(
        elements: tuple[tuple[int, bytes], ...], asked: tuple[str, int, str | None]) -> None:
    """§F.4/F.8: KEY_SIZE is the RSA size; CURVE 0, 1, 2 are P-256, P-384, P-521. The phone's key generator
    (``generate_key(kind, bits, curve)``) is asked for exactly that key, its size in bits for EC too."""
    calls: list[tuple[str, int, str | None]] = []

    def generate(kind: str, bits: int, curve: str | None) -> PrivateKey:
        calls.append((kind, bits, curve))
        return generate_key(KeySpec(kind="ec", curve="p256"))

    phone = authenticated(generate_key=generate)
    feed(phone, msg(C.KEY_GENERATE_REQUEST, *elements))
    assert calls == [asked]


@pytest.mark.parametrize("size", [b"\x00\x08\x00", b"\x08"])
def test_a_key_size_of_the_wrong_length_is_malformed_not_a_size(size: bytes) -> None:
    """§F.4: KEY_SIZE is a uint16. Three bytes (``00 08 00``, 2048 read as a number) or one are a malformed
    element — a DecodeError naming KEY_SIZE (module docstring "Errors") — and no key is made for them."""
    phone = authenticated()
    with pytest.raises(DecodeError, match="expected 2") as info:
        phone.receive(msg(C.KEY_GENERATE_REQUEST, (T.KEY_TYPE, b"\x00"), (T.KEY_SIZE, size)))
    assert info.value.path == "KEY_SIZE" and not phone.key_generated and phone.result is None


@pytest.mark.parametrize(("case", "path"), [("name with NUL", "device_name"),
                                           ("auth string with NUL", "auth_string"),
                                           ("certificate without key", "cert_key"),
                                           ("key without certificate", "cert_key")])
def test_the_phone_refuses_a_configuration_it_cannot_send(case: str, path: str) -> None:
    """DEVICE_NAME and PASSWORD are NUL-terminated (§F.4): a name or string with a NUL cannot be sent; a
    certificate without its key (or a key without its certificate) cannot sign the §F.7 auth data. Each is
    an EncodeError when the session is made, naming the field — not when the server asks."""
    key = generate_key(KeySpec(kind="ec", curve="p256"))
    cases: dict[str, dict[str, object]] = {"name with NUL": {"device_name": "SEP\0A"},
                                           "auth string with NUL": {"auth_string": "12\x0034"},
                                           "certificate without key": {"cert_der": b"\x30"},
                                           "key without certificate": {"cert_key": key}}
    options = cases[case]
    with pytest.raises(EncodeError) as info:
        CapfClientSession(**{"device_name": DEVICE, **options})  # type: ignore[arg-type]
    assert info.value.path == path


# --- messages and element values -----------------------------------------------------------------

@pytest.mark.parametrize(("command", "session_id", "elements", "path"), [
    (24, 1, (), "command"),
    (C.END_SESSION, -1, (), "session_id"),
    (C.END_SESSION, 0x1_0000_0000, (), "session_id"),
    (C.END_SESSION, 1, (Element(tag=T.REASON_INFO, value=bytes(MAX_BODY - 2)),), "elements"),
])
def test_a_message_that_cannot_be_encoded_is_refused_when_built(
        command: int, session_id: int, elements: tuple[Element, ...], path: str) -> None:
    """§F.2/F.3: a command outside 1..23, a session id outside uint32 or a body over 65535 bytes is an
    EncodeError naming the field when the message is made (house style: ``__post_init__`` rejects it)."""
    with pytest.raises(EncodeError) as info:
        capf.CapfMessage(command=command, session_id=session_id, elements=elements)
    assert info.value.path == path


def test_an_unknown_command_is_named_at_its_offset() -> None:
    """House style (errors say where): an unknown command byte (24, §F.3 ends at 23) is a ProtocolError at
    offset 1 of the frame, the command's byte, path ``header.command``."""
    data = bytes([0x55, 24]) + (1).to_bytes(4, "big") + b"\x00\x00"
    with pytest.raises(ProtocolError, match="unknown command 24") as info:
        capf.decode(data)
    assert info.value.offset == 1 and info.value.path == "header.command"


@pytest.mark.parametrize("session_id", [0, 0xFFFF_FFFF])
def test_the_largest_message_is_built_and_round_trips(session_id: int) -> None:
    """The bounds are inclusive: session ids 0 and 0xFFFFFFFF and a body of exactly 65535 bytes (§F.2)."""
    m = capf.CapfMessage(command=C.END_SESSION, session_id=session_id,
                         elements=(Element(tag=T.REASON_INFO, value=bytes(MAX_BODY - 3)),))
    data = capf.encode(m)
    assert len(data) == capf.MAX_FRAME and capf.decode(data) == m


def test_element_value_encoders_take_values_at_their_bounds() -> None:
    """§F.4: CERTIFICATE's inner length is a uint16 (DER + 2) and its cert-type one byte; SHA2_SIGNED_DATA's
    value (code, uint16 length, signature) fits an element's uint16 length. At each bound the value is
    encoded."""
    assert len(capf.encode_certificate(bytes(0xFFFF - 2))) == 0xFFFF - 2 + 5
    assert capf.encode_certificate(b"\x30", 0xFF)[4] == 0xFF
    assert capf.encode_certificate(b"\x30", 0)[4] == 0
    assert len(capf.encode_sha2_signed_data(bytes(0xFFFF - 3))) == 0xFFFF


@pytest.mark.parametrize(("case", "path"), [
    ("DER too long", "CERTIFICATE"), ("cert type 256", "CERTIFICATE"), ("cert type -1", "CERTIFICATE"),
    ("signature too long", "SHA2_SIGNED_DATA"), ("string with NUL", "device_name")])
def test_element_value_encoders_refuse_what_does_not_fit(case: str, path: str) -> None:
    """Past each bound above, and a NUL inside a NUL-terminated string (§F.4): an EncodeError naming the
    element (house style), not a ValueError or OverflowError."""
    with pytest.raises(EncodeError) as info:
        if case == "DER too long":
            capf.encode_certificate(bytes(0xFFFF - 1))
        elif case.startswith("cert type"):
            capf.encode_certificate(b"\x30", int(case.rsplit(" ", 1)[1]))
        elif case == "signature too long":
            capf.encode_sha2_signed_data(bytes(0xFFFF - 2))
        else:
            capf.encode_cstring("SEP\0", field="device_name")
    assert info.value.path == path


def test_the_command_codes_are_those_of_f3() -> None:
    """§F.3's table, one code per name (an alias would make two commands one)."""
    table = {1: "AUTH_REQUEST", 2: "AUTH_RESPONSE", 3: "KEY_GENERATE_REQUEST", 4: "KEY_GENERATE_RESPONSE",
             5: "ENCRYPT_RESPONSE", 6: "ENCRYPT_REQUEST", 7: "DECRYPT_REQUEST", 8: "DECRYPT_RESPONSE",
             9: "STORE_CERTIFICATE_REQUEST", 10: "STORE_CERTIFICATE_RESPONSE",
             11: "FETCH_CERTIFICATE_REQUEST", 12: "FETCH_CERTIFICATE_RESPONSE",
             13: "DELETE_CERTIFICATE_REQUEST", 14: "DELETE_CERTIFICATE_RESPONSE", 15: "END_SESSION",
             16: "RETRY_LATER", 17: "REQUEST_IN_PROGRESS", 18: "STATUS_REQUEST", 19: "STATUS_RESPONSE",
             20: "ABORT_REQUEST", 21: "ABORT_RESPONSE", 22: "SIGN_CERTIFICATE_REQUEST",
             23: "SIGN_CERTIFICATE_RESPONSE"}
    assert {c.value: c.name for c in CapfCommand} == table
    assert list(CapfCommand.__members__) == list(table.values())


# --- the server ----------------------------------------------------------------------------------

def _issue(_name: str, _spki: bytes) -> bytes:
    raise AssertionError("not called")


@pytest.mark.parametrize(("options", "path"), [
    ({"auth_mode": 5}, "auth_mode"),
    ({"operation": "install", "key_type": "dsa", "issue_lsc": _issue}, "key_type"),
    ({"operation": "install", "key_type": "ec", "curve": "p999", "issue_lsc": _issue}, "curve"),
    ({"operation": "install"}, "issue_lsc"),
])
def test_the_server_refuses_a_configuration_it_cannot_run(options: dict[str, object], path: str) -> None:
    """An auth mode outside §F.7's 0..4, a key type or curve outside §F.8, an install with no way to issue
    the LSC: an EncodeError naming the option when the server session is made, not a failure (or a
    ValueError) once a phone has connected."""
    with pytest.raises(EncodeError) as info:
        CapfServerSession(session_id=1, **options)  # type: ignore[arg-type]
    assert info.value.path == path


@pytest.mark.parametrize("operation", ["none", "fetch", "install"])
def test_a_delete_response_the_server_did_not_ask_for_is_a_protocol_error(operation: str) -> None:
    """§F.6: DELETE_CERTIFICATE_RESPONSE answers the server's DELETE_CERTIFICATE_REQUEST. Before
    authentication it is a ProtocolError whatever the operation, never a "deleted" outcome."""
    server = CapfServerSession(session_id=1, operation=operation,
                               issue_lsc=_issue if operation == "install" else None)
    server.start()
    with pytest.raises(ProtocolError, match="unexpected DELETE_CERTIFICATE_RESPONSE in state 'wait-auth'"):
        server.receive(capf.encode(capf.message(C.DELETE_CERTIFICATE_RESPONSE, 1, (T.REASON, b"\x01"))))
    assert server.result is None


def test_a_delete_response_in_a_fetch_is_a_protocol_error() -> None:
    """§F.6: after the server asked for the phone's certificate, a DELETE_CERTIFICATE_RESPONSE is out of
    place: a ProtocolError naming state ``wait-fetch``, no outcome."""
    server = CapfServerSession(session_id=1, operation="fetch")
    server.start()
    (ask,) = server.receive(capf.encode(capf.message(C.AUTH_RESPONSE, 1, (T.DEVICE_NAME,
                                                                          capf.encode_cstring(DEVICE)))))
    assert capf.decode(ask).command == C.FETCH_CERTIFICATE_REQUEST
    with pytest.raises(ProtocolError, match="unexpected DELETE_CERTIFICATE_RESPONSE in state 'wait-fetch'"):
        server.receive(capf.encode(capf.message(C.DELETE_CERTIFICATE_RESPONSE, 1, (T.REASON, b"\x01"))))
    assert server.result is None


# --- the phone's I/O shell (net/capf_client.py) ----------------------------------------------------

def _password_auth_request() -> bytes:
    return capf_hostile_helpers.frame(C.AUTH_REQUEST, (T.VERSION, b"\x03"), (T.AUTH_TYPE, b"\x01"))


def test_a_capf_server_the_phone_does_not_accept_is_sent_nothing() -> None:
    """§F.1: the phone judges the CAPF server's certificate (its CTL/ITL CAPF record) before it answers:
    ``accept_server`` refusing it is a ``"tls"`` TransportError, and the server — which asked for the
    authentication string — receives not a byte of it. ``accept_server`` is given the certificate seen."""
    seen: list[bytes | None] = []
    received: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_password_auth_request())
        await writer.drain()
        for _ in range(10):  # bounded: until the phone closes
            data = await asyncio.wait_for(reader.read(65536), 5)
            if not data:
                return
            received.append(data)

    def refuse(der: bytes | None) -> bool:
        seen.append(der)
        return False

    async def body(port: int) -> None:
        phone = CapfClientSession(device_name=capf_hostile_helpers.DEVICE, auth_string="123456")
        with pytest.raises(TransportError) as info:
            await capf_session((capf_hostile_helpers.HOST, port), phone, timeout=5, accept_server=refuse)
        assert info.value.kind == "tls" and "not accepted" in info.value.message
        assert phone.result is None and phone.state == "wait-auth-request"

    run(capf_hostile_helpers.serve(script, body), 30)
    assert len(seen) == 1 and seen[0] is not None and x509.load_der_x509_certificate(seen[0])
    assert received == []


def test_a_capf_server_the_phone_accepts_gets_its_answer_and_the_outcome_names_the_tls() -> None:
    """The same server accepted: the phone answers AUTH_REQUEST (PASSWORD = its authentication string,
    §F.7) and ends with the server's END_SESSION {REASON=0}; the outcome keeps the certificate it judged
    and the TLS version and cipher the connection used."""
    seen: list[bytes | None] = []
    answers: list[capf.CapfMessage] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(_password_auth_request())
        await writer.drain()
        answers.append(await capf_hostile_helpers.next_frame(reader, capf.FrameDecoder()))
        writer.write(capf_hostile_helpers.frame(C.END_SESSION, (T.REASON, b"\x00")))
        await writer.drain()

    def accept(der: bytes | None) -> bool:
        seen.append(der)
        return True

    async def body(port: int) -> None:
        phone = CapfClientSession(device_name=capf_hostile_helpers.DEVICE, auth_string="123456")
        out = await capf_session((capf_hostile_helpers.HOST, port), phone, timeout=5, accept_server=accept)
        assert out.outcome == "nothing-pending" and seen[0] is not None and out.server_cert == seen[0]
        version, cipher = out.tls.split(" ", 1)
        assert version.startswith("TLSv1") and cipher != "?"

    run(capf_hostile_helpers.serve(script, body), 30)
    assert [m.command for m in answers] == [C.AUTH_RESPONSE]
    assert answers[0].string(T.PASSWORD) == "123456"
