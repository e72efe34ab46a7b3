"""CAPF (Certificate Authority Proxy Function) codec and state machines — spec §F, sans-I/O.

Framing (spec §F.2): an 8-byte header ``0x55 | command | session id (uint32 BE) | body length
(uint16 BE)`` followed by element TLVs (1-byte tag, uint16 length). Commands §F.3, elements §F.4,
REASON values §F.5. Unknown element tags survive decode → encode.

Element value encodings (§F.4): CERTIFICATE is the wrapper ``0x01 | uint16 len(DER)+2 | 0x00 |
cert-type | DER``; SHA2_SIGNED_DATA is ``hash code | uint16 len | signature``; SUDI_DATA is a list
of ``code | uint16 len | value`` (0 SUDI cert, 1 SHA-1 signature, 3 SHA-512 signature); PASSWORD
and DEVICE_NAME are NUL-terminated.

State machines follow the message sequences of §F.6 (server = CAPF, client = phone). The server
speaks first with AUTH_REQUEST {VERSION=3, AUTH_TYPE}. Conventions that are **ours** where the
spec is silent or [UNK]:

* AUTH_TYPE in AUTH_REQUEST: we send the configured mode (capfd always sends 0 and what CUCM sends
  is [UNK]); the client uses its own configured mode when given, else the server's AUTH_TYPE.
* Authentication strings: Cisco allows 4..10 digits (§F.7); the daemons accept longer ones, so the
  server accepts a configured string of 4..16 digits.
* Auth mode 0 ("none") performs no authentication; the operation still runs.
* Failure END_SESSION reasons: a failed fetch/delete/store/keygen ends with REASON 7; success
  ends as §F.6 shows (install 1, fetch 0, delete 1).
* Certificate modes (3, 4): the server requires CERTIFICATE and at least one of SIGNED_DATA (SHA-1)
  / SHA2_SIGNED_DATA (SHA-512); every signature present must verify over
  ``DEVICE_NAME bytes || 0x00 || certificate DER`` (§F.7) and the certificate must pass the
  lab's ``verify_device_cert`` callable. SUDI_DATA, when present, is checked the same way over
  ``session id (uint32 LE) || SUDI cert DER`` and its certificate passed to the callable with type MIC.
  A certificate (or SUDI certificate) whose key is neither RSA nor EC (DSA, Ed25519, §F.8) is a failed
  authentication like a bad signature — END_SESSION REASON 7, outcome ``bad-auth`` (§F.6 "bad password /
  bad data") — not a DecodeError; its key is never loaded (:func:`cert_public_key` refuses DSA first).

The phone's checks (ours; §F does not say what a phone checks of the certificate it is given, F.9
describes what capfd and CUCM issue):

* KEY_GENERATE_REQUEST: a key the phone cannot make — RSA above ``max_rsa_bits`` or not one of §F.8's
  sizes, one its key generator refuses (cryptography makes no RSA 512, a §F.8 size; was: a ValueError
  out of the boot), EC when the phone has no ``ec_support``, an unknown key type or curve — is answered
  KEY_GENERATE_RESPONSE {REASON=7} without PUBLIC_KEY (§F.6 "failure"). Every key is generated fresh for
  the request (``generate_key``); the private key never goes on the wire.
* STORE_CERTIFICATE_REQUEST: the phone answers REASON 7 and keeps what it had unless the certificate is
  a DER X.509 certificate whose public key is the one just generated, that names this device (its CN
  the device name or ending in ``-<name>``, or a SAN URI the device name: :func:`names_device`, F.9 — was:
  a certificate for another device installed, one the lab's CAPF refuses to authenticate it), not a CA
  (basicConstraints CA:TRUE, or keyUsage keyCertSign/cRLSign: an LSC is an end entity, F.9), small enough
  to be presented in an AUTH_RESPONSE with its signed data (§F.2 one frame, §F.7; a STORE frame carries a
  few hundred bytes more of certificate) and, when ``now`` is given, within its validity. Its issuer is not
  checked: the phone trusted the CAPF server itself (§F.1) and an LSC may come from CAPF or from an online
  CA (F.9). An LSC is only installed on END_SESSION REASON 1 after a STORE the phone accepted; a refusal's
  reason is in the result's ``detail``.
* FETCH sends the current LSC (a certificate) only; there is no request for a private key.
* Duplicated elements: an element the phone acts on (REASON, AUTH_TYPE, KEY_TYPE, KEY_SIZE, CURVE,
  CERTIFICATE) given twice in one message is a DecodeError naming it and both offsets — which one the
  server meant is unknown (ours); any other element may repeat.

Slow key generation (§F.6 REQUEST_IN_PROGRESS "key generation may take a long time", §F.8 "half an hour
or more on some models"); conventions that are **ours**:

* A phone with ``keygen_seconds`` > 0 answers KEY_GENERATE_REQUEST that long after it came (the wait
  itself is the I/O shell's, :mod:`phoneemu.net.capf_client`): it sends REQUEST_IN_PROGRESS at once, then
  every ``in_progress_every`` seconds (default :data:`IN_PROGRESS_EVERY_S`, 10 s; 0: none, a silent slow
  phone), so a server with a per-read timeout keeps the session. A key request it refuses is answered at
  once (after that first REQUEST_IN_PROGRESS).
* The server accepts at most ``max_in_progress`` REQUEST_IN_PROGRESS in one session (default
  :data:`MAX_IN_PROGRESS`, 256: a phone at the 10 s cadence sends 13 in ``lab serve``'s 120 s session);
  one more is a ProtocolError (a flood), as a REQUEST_IN_PROGRESS outside ``wait-keygen`` always is.
* :meth:`CapfServerSession.end_on_timeout`: a server whose own bound ran out while the phone generates
  its key ends the session with END_SESSION {REASON=7} (outcome ``keygen-timeout``) before closing,
  so the phone learns why.

Errors: an unexpected command in a state (a request before authentication, a replay, a second
operation) → ProtocolError naming state and command; a session id other than the server's first →
ProtocolError; a malformed element value → DecodeError naming the element — except, on the server, the
authentication data of AUTH_RESPONSE (PASSWORD, CERTIFICATE, SHA2_SIGNED_DATA, SUDI_DATA): that is the
"bad data" of §F.6, answered END_SESSION REASON 7 (outcome ``bad-auth``, the detail naming the element).
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from phoneemu.crypto.certs import cert_public_key, dn_text, load_cert_der
from phoneemu.crypto.hashes import HashAlg
from phoneemu.crypto.keys import (
    KeySpec,
    PrivateKey,
    generate_key,
    key_description,
    load_public_key_spki_der,
    public_key_spki_der,
)
from phoneemu.crypto.signatures import raw_digest_signature_bound, sign_raw_digest, verify_raw_digest
from phoneemu.errors import DecodeError, EncodeError, ProtocolError, VerificationError
from phoneemu.protocols._elements import (
    MAX_BODY,
    Element,
    FrameBuffer,
    encode_elements,
    find,
    frame_body,
    one_frame,
    open_frame,
)
from phoneemu.protocols.defaults import MAX_IN_PROGRESS
from phoneemu.wire import Reader, Writer, as_bytes

__all__ = [
    "CAPF_VERSION",
    "HEADER_SIZE",
    "IN_PROGRESS_EVERY_S",
    "MAX_FRAME",
    "MAX_IN_PROGRESS",
    "PROTOCOL_ID",
    "AuthType",
    "CapfClientSession",
    "CapfCommand",
    "CapfMessage",
    "CapfResult",
    "CapfServerSession",
    "CapfTag",
    "CertType",
    "Curve",
    "Element",
    "FrameDecoder",
    "KeyType",
    "Reason",
    "SudiData",
    "auth_data",
    "decode",
    "decode_certificate",
    "decode_cstring",
    "decode_sha2_signed_data",
    "decode_sudi_data",
    "default_generate_key",
    "encode",
    "encode_certificate",
    "encode_cstring",
    "encode_sha2_signed_data",
    "encode_sudi_data",
    "message",
    "names_device",
    "sudi_auth_data",
]

FMT = "capf"
PROTOCOL_ID = 0x55
HEADER_SIZE = 8
MAX_FRAME = HEADER_SIZE + MAX_BODY
CAPF_VERSION = 3
#: Seconds between a slow phone's REQUEST_IN_PROGRESS frames while it generates its key (ours, §F.6)
IN_PROGRESS_EVERY_S = 10.0


class CapfCommand(enum.IntEnum):
    """Spec §F.3."""

    AUTH_REQUEST = 1
    AUTH_RESPONSE = 2
    KEY_GENERATE_REQUEST = 3
    KEY_GENERATE_RESPONSE = 4
    ENCRYPT_RESPONSE = 5
    ENCRYPT_REQUEST = 6
    DECRYPT_REQUEST = 7
    DECRYPT_RESPONSE = 8
    STORE_CERTIFICATE_REQUEST = 9
    STORE_CERTIFICATE_RESPONSE = 10
    FETCH_CERTIFICATE_REQUEST = 11
    FETCH_CERTIFICATE_RESPONSE = 12
    DELETE_CERTIFICATE_REQUEST = 13
    DELETE_CERTIFICATE_RESPONSE = 14
    END_SESSION = 15
    RETRY_LATER = 16
    REQUEST_IN_PROGRESS = 17
    STATUS_REQUEST = 18
    STATUS_RESPONSE = 19
    ABORT_REQUEST = 20
    ABORT_RESPONSE = 21
    SIGN_CERTIFICATE_REQUEST = 22
    SIGN_CERTIFICATE_RESPONSE = 23


class CapfTag(enum.IntEnum):
    """Spec §F.4."""

    REASON = 1
    REASON_INFO = 2
    CERTIFICATE_TYPE = 3
    CERTIFICATE = 4
    CERTIFICATE_ID = 5
    SIGNED_DATA = 6
    VERSION = 7
    AUTH_TYPE = 8
    PUBLIC_KEY = 9
    KEY_SIZE = 10
    PASSWORD = 11
    RETRY_DELAY = 12
    DEVICE_NAME = 13
    SUDI_DATA = 16
    KEY_TYPE = 17
    CURVE = 18
    DIGEST_TYPE = 19
    SHA2_SIGNED_DATA = 20


class Reason(enum.IntEnum):
    """Spec §F.5 (other values [UNK])."""

    NO_ACTION = 0
    SUCCESS = 1
    FAILURE = 7
    UNKNOWN_DEVICE = 9


class AuthType(enum.IntEnum):
    """Spec §F.4 tag 8 / §F.7 ``capfAuthMode``."""

    NONE = 0
    PASSWORD = 1
    NULL_STRING = 2
    LSC = 3
    MIC = 4


class CertType(enum.IntEnum):
    LSC = 1
    MIC = 2


class KeyType(enum.IntEnum):
    RSA = 0
    EC = 1


class Curve(enum.IntEnum):
    """Spec §F.4 tag 18; ``label`` is the KeySpec curve name."""

    P256 = 0
    P384 = 1
    P521 = 2

    @property
    def label(self) -> str:
        return {0: "p256", 1: "p384", 2: "p521"}[self.value]

    @classmethod
    def from_label(cls, label: str) -> Curve:
        for c in cls:
            if c.label == label:
                return c
        raise EncodeError(f"unknown curve {label!r} (p256, p384, p521)", fmt=FMT, path="curve")


_NAMES = {t.value: t.name for t in CapfTag}
_SUDI_CERT, _SUDI_SHA1, _SUDI_SHA512 = 0, 1, 3


def _cmd_name(command: int) -> str:
    try:
        return CapfCommand(command).name
    except ValueError:
        return f"command {command}"


@dataclass(frozen=True, kw_only=True)
class CapfMessage:
    """One CAPF frame; ``elements`` keeps order and unknown tags."""

    command: int
    session_id: int
    elements: tuple[Element, ...] = ()

    def __post_init__(self) -> None:
        if self.command not in CapfCommand._value2member_map_:
            raise EncodeError(f"unknown CAPF command {self.command} (1..23)", fmt=FMT, path="command")
        if not 0 <= self.session_id <= 0xFFFFFFFF:
            raise EncodeError(f"session id {self.session_id} does not fit in uint32", fmt=FMT,
                              path="session_id")
        body = sum(3 + len(e.value) for e in self.elements)
        if body > MAX_BODY:
            raise EncodeError(f"body of {body} bytes exceeds 65535", fmt=FMT, path="elements")

    def get(self, tag: int) -> bytes | None:
        return find(self.elements, tag)

    def has(self, tag: int) -> bool:
        return find(self.elements, tag) is not None

    def require(self, tag: CapfTag) -> bytes:
        """Value of ``tag``; a missing element is a DecodeError naming command and element."""
        v = self.get(tag)
        if v is None:
            raise DecodeError(f"{_cmd_name(self.command)} lacks element {tag.name}", fmt=FMT,
                              path=tag.name, tag=int(tag))
        return v

    def u8(self, tag: CapfTag) -> int:
        v = self.require(tag)
        if len(v) != 1:
            raise DecodeError(f"value of {len(v)} bytes, expected 1", fmt=FMT, path=tag.name,
                              tag=int(tag))
        return v[0]

    def u16(self, tag: CapfTag) -> int:
        v = self.require(tag)
        if len(v) != 2:
            raise DecodeError(f"value of {len(v)} bytes, expected 2", fmt=FMT, path=tag.name,
                              tag=int(tag))
        return int.from_bytes(v, "big")

    def string(self, tag: CapfTag) -> str:
        return decode_cstring(self.require(tag), field=tag.name, tag=int(tag))


def message(command: int, session_id: int, *elements: tuple[int, bytes] | Element) -> CapfMessage:
    """Shorthand: ``message(CapfCommand.END_SESSION, sid, (CapfTag.REASON, b"\\x01"))``."""
    els = tuple(e if isinstance(e, Element) else Element(tag=e[0], value=e[1]) for e in elements)
    return CapfMessage(command=command, session_id=session_id, elements=els)


# --- framing -------------------------------------------------------------------------------------

def encode(msg: CapfMessage) -> bytes:
    """Header (spec §F.2) + element TLVs, as one buffer (capfd: header and body in one send)."""
    w = Writer(fmt=FMT)
    w.u8(PROTOCOL_ID, "protocol_id")
    w.u8(msg.command, "command")
    w.u32(msg.session_id, "session_id")
    with w.block16(field="body"):
        encode_elements(w, msg.elements)
    return w.getvalue()


def _check_header(header: bytes, stream_offset: int, path: str = "header") -> None:
    if len(header) >= 1 and header[0] != PROTOCOL_ID:
        raise ProtocolError(f"protocol id 0x{header[0]:02x}, expected 0x55", fmt=FMT,
                            offset=stream_offset, path=f"{path}.protocol_id")
    if len(header) >= 2 and header[1] not in CapfCommand._value2member_map_:
        raise ProtocolError(f"unknown command {header[1]} (1..23)", fmt=FMT, offset=stream_offset + 1,
                            path=f"{path}.command")


def _decode_frame(data: bytes, path: str) -> CapfMessage:
    r = open_frame(data, path, fmt=FMT, header_size=HEADER_SIZE, check_header=_check_header)
    r.seek(1)
    command = r.u8("header.command")
    session_id = r.u32("header.session_id")
    elements = frame_body(r, names=_NAMES)
    return CapfMessage(command=command, session_id=session_id, elements=elements)


def decode(data: bytes) -> CapfMessage:
    """Exactly one message: a short frame or bytes after the body are DecodeErrors, more than
    ``MAX_FRAME`` bytes a SizeLimitError (before any copy; ``_elements.one_frame``)."""
    return _decode_frame(one_frame(data, fmt=FMT, header_size=HEADER_SIZE), "")


class FrameDecoder(FrameBuffer[CapfMessage]):
    """Incremental decoder: ``feed(bytes) -> list[CapfMessage]``; buffers at most one partial frame
    (``MAX_FRAME`` bytes). Malformed input raises ProtocolError/DecodeError and poisons the decoder;
    ``eof()`` raises DecodeError if the stream ended inside a frame."""

    def __init__(self) -> None:
        super().__init__(fmt=FMT, header_size=HEADER_SIZE, body_length_at=6,
                         check_header=_check_header, decode=_decode_frame)


# --- element value codecs ------------------------------------------------------------------------

def _verr(field: str, tag: int | None, text: str, offset: int | None = None) -> DecodeError:
    return DecodeError(text, fmt=FMT, path=field, tag=tag, offset=offset)


def _value_bytes(value: object, field: str, tag: int | None) -> bytes:
    """An element value as bytes, a view by its bytes (``wire.as_bytes``); anything else is a DecodeError
    naming the element and the type (was: TypeError, NotImplementedError, a ``'Q'`` view read by items)."""
    try:
        return as_bytes(value, fmt=FMT)
    except DecodeError as exc:
        raise _verr(field, tag, exc.message) from None


def encode_cstring(text: str, *, field: str = "string") -> bytes:
    raw = text.encode("utf-8")
    if b"\0" in raw:
        raise EncodeError(f"{field} contains NUL", fmt=FMT, path=field)
    return raw + b"\0"


def decode_cstring(value: bytes, *, field: str = "string", tag: int | None = None) -> str:
    """NUL-terminated UTF-8 (an empty string is a single NUL); bytes-like input only."""
    value = _value_bytes(value, field, tag)
    if not value or value[-1] != 0:
        raise _verr(field, tag, "string is not NUL-terminated")
    if b"\0" in value[:-1]:
        raise _verr(field, tag, "string has a NUL before its end", value.index(b"\0"))
    try:
        return value[:-1].decode("utf-8")
    except UnicodeDecodeError:
        raise _verr(field, tag, "string is not UTF-8") from None


def encode_certificate(der: bytes, cert_type: int = CertType.LSC) -> bytes:
    """CERTIFICATE wrapper (§F.4): ``0x01 | uint16 len(DER)+2 | 0x00 | cert-type | DER``."""
    if len(der) + 2 > 0xFFFF:
        raise EncodeError(f"certificate of {len(der)} bytes too long", fmt=FMT, path="CERTIFICATE")
    if not 0 <= cert_type <= 0xFF:
        raise EncodeError(f"certificate type {cert_type} out of range", fmt=FMT, path="CERTIFICATE")
    return b"\x01" + (len(der) + 2).to_bytes(2, "big") + bytes([0, cert_type]) + der


def decode_certificate(value: bytes) -> tuple[int, bytes]:
    """Inverse of :func:`encode_certificate` → (cert type, DER). Bytes 0 and 3 are not checked
    (readers skip 5 bytes, spec §F.4); the inner length must match. Bytes-like input only."""
    r = Reader(_value_bytes(value, "CERTIFICATE", CapfTag.CERTIFICATE), fmt=FMT, path="CERTIFICATE")
    r.u8("marker", tag=CapfTag.CERTIFICATE)
    at = r.offset
    inner = r.u16("length", tag=CapfTag.CERTIFICATE)
    if inner < 2 or inner != r.remaining:
        raise r.error(f"inner length {inner} but {r.remaining} byte(s) follow", field="length",
                      tag=CapfTag.CERTIFICATE, offset=at)
    r.u8("reserved", tag=CapfTag.CERTIFICATE)
    cert_type = r.u8("cert_type", tag=CapfTag.CERTIFICATE)
    return cert_type, r.rest()


def encode_sha2_signed_data(signature: bytes, alg: HashAlg = HashAlg.SHA512) -> bytes:
    """SHA2_SIGNED_DATA (§F.4): ``hash code | uint16 len | signature``."""
    if len(signature) > 0xFFFF - 3:
        raise EncodeError("signature too long", fmt=FMT, path="SHA2_SIGNED_DATA")
    return bytes([int(alg)]) + len(signature).to_bytes(2, "big") + signature


def decode_sha2_signed_data(value: bytes) -> tuple[int, bytes]:
    """→ (hash code, signature); the inner length must fill the value exactly. Bytes-like input only."""
    raw = _value_bytes(value, "SHA2_SIGNED_DATA", CapfTag.SHA2_SIGNED_DATA)
    r = Reader(raw, fmt=FMT, path="SHA2_SIGNED_DATA")
    code = r.u8("hash_code", tag=CapfTag.SHA2_SIGNED_DATA)
    n = r.u16("length", tag=CapfTag.SHA2_SIGNED_DATA)
    sig = r.take(n, "signature", tag=CapfTag.SHA2_SIGNED_DATA)
    r.expect_end("signature", tag=CapfTag.SHA2_SIGNED_DATA)
    return code, sig


@dataclass(frozen=True, kw_only=True)
class SudiData:
    """SUDI_DATA (§F.4): SUDI certificate and its SHA-1 / SHA-512 signed data; unknown parts kept."""

    certificate: bytes | None = None
    sha1_signature: bytes | None = None
    sha512_signature: bytes | None = None
    unknown: tuple[tuple[int, bytes], ...] = ()


def encode_sudi_data(sudi: SudiData) -> bytes:
    w = Writer(fmt=FMT)
    for code, v in ((_SUDI_CERT, sudi.certificate), (_SUDI_SHA1, sudi.sha1_signature),
                    (_SUDI_SHA512, sudi.sha512_signature), *sudi.unknown):
        if v is not None:
            w.tlv(code, v, field="SUDI_DATA")
    return w.getvalue()


def decode_sudi_data(value: bytes) -> SudiData:
    """→ the parts of SUDI_DATA (§F.4), each ``code | uint16 len | value``. Bytes-like input only."""
    r = Reader(_value_bytes(value, "SUDI_DATA", CapfTag.SUDI_DATA), fmt=FMT, path="SUDI_DATA")
    parts: dict[int, bytes] = {}
    unknown: list[tuple[int, bytes]] = []
    while not r.at_end:
        code = r.u8("code", tag=CapfTag.SUDI_DATA)
        n = r.u16("length", tag=CapfTag.SUDI_DATA)
        v = r.take(n, f"part[{code}]", tag=CapfTag.SUDI_DATA)
        if code in (_SUDI_CERT, _SUDI_SHA1, _SUDI_SHA512) and code not in parts:
            parts[code] = v
        else:
            unknown.append((code, v))
    return SudiData(certificate=parts.get(_SUDI_CERT), sha1_signature=parts.get(_SUDI_SHA1),
                    sha512_signature=parts.get(_SUDI_SHA512), unknown=tuple(unknown))


def auth_data(device_name: str, cert_der: bytes) -> bytes:
    """Signed auth data of §F.7: ``DEVICE_NAME bytes || 0x00 || certificate DER``."""
    return device_name.encode("utf-8") + b"\0" + cert_der


def sudi_auth_data(session_id: int, sudi_cert_der: bytes) -> bytes:
    """SUDI auth data of §F.7: session id as **little-endian** uint32 || SUDI cert DER."""
    return session_id.to_bytes(4, "little") + sudi_cert_der


def names_device(cert: x509.Certificate, device_name: str) -> bool:
    """Whether ``cert`` is a certificate of device ``device_name`` (spec §F.9): a CN equal to the name or
    ending in ``-<name>`` (a CUCM LSC's ``CP-8861-SEP…``), or a SAN URI equal to it (capfd's). The lab's CAPF
    server holds a certificate presented for authentication to this rule too
    (:meth:`phoneemu.lab.cluster.LabCluster`'s CAPF authentication by certificate)."""
    names = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if any(isinstance(n.value, str) and (n.value == device_name or n.value.endswith("-" + device_name))
           for n in names):
        return True
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    return device_name in san.get_values_for_type(x509.UniformResourceIdentifier)


def default_generate_key(key_type: str, bits: int, curve: str | None) -> PrivateKey:
    """Key generator for :class:`CapfClientSession` using crypto.keys (``rsa``/``ec``)."""
    return generate_key(KeySpec(kind=key_type, bits=bits, curve=curve or "p256"))


# --- results ---------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class CapfResult:
    """What a session ended with.

    ``outcome``: server side "installed", "fetched", "deleted", "nothing-pending", "bad-auth",
    "unknown-device", "keygen-failed", "keygen-timeout" (:meth:`CapfServerSession.end_on_timeout`),
    "store-failed", "fetch-failed", "delete-failed", "not-recorded" (``confirm_end``: the success could not
    be recorded, :meth:`CapfServerSession.refuse`); client side "installed", "fetched", "deleted",
    "nothing-pending", "rejected" (``reason`` is the END_SESSION REASON, ``detail`` says why).
    ``certificate`` is the LSC installed/fetched, ``key`` the client's new private key after an install.
    """

    outcome: str
    reason: int | None = None
    detail: str = ""
    device_name: str | None = None
    certificate: bytes | None = None
    key: PrivateKey | None = None


class _Session:
    """Common plumbing: frame reassembly, session-id check, sequencing errors."""

    role = "capf"

    def __init__(self) -> None:
        self._decoder = FrameDecoder()
        self.state = "init"
        self.session_id: int | None = None
        self._result: CapfResult | None = None
        self._error: DecodeError | None = None
        #: the command of the last frame received (None before the first)
        self.last_received: int | None = None

    @property
    def failed(self) -> bool:
        """True after a DecodeError/ProtocolError: the session cannot continue."""
        return self._error is not None

    @property
    def done(self) -> bool:
        return self._result is not None

    @property
    def result(self) -> CapfResult | None:
        return self._result

    def _unexpected(self, msg: CapfMessage) -> ProtocolError:
        return ProtocolError(f"{self.role}: unexpected {_cmd_name(msg.command)} in state {self.state!r}",
                             fmt=FMT, path=f"{self.role}.{self.state}", tag=msg.command)

    def receive(self, data: bytes) -> list[bytes]:
        """Feed bytes from the peer; return the frames to send (each one complete buffer).

        A DecodeError/ProtocolError fails the session for good: every later call raises it again
        (the I/O shell closes the connection). When frames before it in ``data`` were answered, those
        answers are returned first and the session is failed (:attr:`failed`, :attr:`error`) — garbage
        or an out-of-place message after a complete exchange does not swallow its answer.
        """
        if self._error is not None:
            raise self._error
        out: list[bytes] = []
        try:
            self._receive(data, out)
        except DecodeError as exc:
            self._error = exc
            self.state = "failed"
            if not out:
                raise
            return out
        if self._decoder.error is not None:  # garbage after complete frames: those are answered first
            self._error = self._decoder.error
            self.state = "failed"
        return out

    @property
    def error(self) -> DecodeError | None:
        """Why the session failed (see :attr:`failed`), else None."""
        return self._error

    def cut_frame(self) -> DecodeError | None:
        """The peer closed now: the DecodeError naming the frame it cut (its stream offset, the bytes of it
        received), else None (it closed between frames)."""
        try:
            self._decoder.eof()
        except DecodeError as exc:
            return exc
        return None

    def _receive(self, data: bytes, out: list[bytes]) -> None:
        """The answers to the frames of ``data``, into ``out`` as they are made (kept when a later frame
        raises)."""
        for msg in self._decoder.feed(data):
            self.last_received = msg.command
            if self.done:
                raise ProtocolError(f"{self.role}: {_cmd_name(msg.command)} after the session ended",
                                    fmt=FMT, path=f"{self.role}.{self.state}", tag=msg.command)
            if self.session_id is not None and msg.session_id != self.session_id:
                raise ProtocolError(f"{self.role}: session id {msg.session_id}, expected {self.session_id}",
                                    fmt=FMT, path=f"{self.role}.{self.state}.session_id")
            out.extend(encode(m) for m in self._handle(msg))

    def _handle(self, msg: CapfMessage) -> list[CapfMessage]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _msg(self, command: CapfCommand, *elements: tuple[int, bytes]) -> CapfMessage:
        assert self.session_id is not None
        return message(command, self.session_id, *elements)


def _key_refusal(exc: DecodeError) -> str:
    """Why a phone's certificate cannot authenticate: its key is not one CAPF takes (RSA or EC, §F.8)."""
    return f"the certificate's key cannot authenticate: {exc.message} (CAPF takes RSA or EC keys, spec §F.8)"


def _u8(v: int) -> bytes:
    return bytes([v])


# --- server ----------------------------------------------------------------------------------------

VerifyDeviceCert = Callable[[x509.Certificate, int], None]
"""Raise VerificationError unless the certificate (of CertType) chains to the LSC issuer / MIC CA."""
IssueLsc = Callable[[str, bytes], bytes]
"""(device name, SPKI DER) -> LSC DER."""


class CapfServerSession(_Session):
    """CAPF server (cluster side) for one TLS connection.

    ``start()`` returns AUTH_REQUEST; then feed every received chunk to ``receive()`` and send what it
    returns. ``done`` turns true when END_SESSION has been produced; ``result`` says what happened.

    ``confirm_end`` (our convention, for a server that must record the outcome before the phone is told):
    an operation that succeeded ("installed", "fetched", "deleted") does not end the session at once. It
    waits in state ``"wait-confirm"`` with :attr:`unconfirmed` set (what it would end with, the
    certificate included) and ``receive()`` returns no END_SESSION; then :meth:`confirm` returns the
    END_SESSION of that success, or :meth:`refuse` an END_SESSION REASON 7 (failure) — so a phone is never
    told "success" for an outcome the server could not record, and keeps what it had (the client only
    stores or deletes its LSC on the success END_SESSION).
    """

    role = "capf-server"
    OPERATIONS = ("install", "fetch", "delete", "none")

    def __init__(
        self,
        *,
        session_id: int,
        operation: str = "none",
        auth_mode: int = AuthType.NULL_STRING,
        auth_string: str = "",
        key_type: str = "rsa",
        key_size: int = 2048,
        curve: str = "p256",
        verify_device_cert: VerifyDeviceCert | None = None,
        issue_lsc: IssueLsc | None = None,
        known_device: Callable[[str], bool] | None = None,
        confirm_end: bool = False,
        max_in_progress: int = MAX_IN_PROGRESS,
    ) -> None:
        super().__init__()
        if max_in_progress < 0:
            raise EncodeError(f"max_in_progress {max_in_progress} is negative", fmt=FMT,
                              path="max_in_progress")
        if not 0 <= session_id <= 0xFFFFFFFF:
            raise EncodeError(f"session id {session_id} does not fit in uint32", fmt=FMT,
                              path="session_id")
        if operation not in self.OPERATIONS:
            raise EncodeError(f"operation {operation!r} not in {self.OPERATIONS}", fmt=FMT,
                              path="operation")
        if auth_mode not in AuthType._value2member_map_:
            raise EncodeError(f"auth mode {auth_mode} not in 0..4", fmt=FMT, path="auth_mode")
        if auth_mode == AuthType.PASSWORD and not (auth_string.isascii() and auth_string.isdigit()
                                                   and 4 <= len(auth_string) <= 16):
            raise EncodeError("authentication string must be 4..16 digits", fmt=FMT, path="auth_string")
        if operation == "install":
            if key_type == "rsa":
                KeySpec(kind="rsa", bits=key_size)
            elif key_type == "ec":
                Curve.from_label(curve)
            else:
                raise EncodeError(f"key type {key_type!r} (rsa or ec)", fmt=FMT, path="key_type")
            if issue_lsc is None:
                raise EncodeError("install needs issue_lsc", fmt=FMT, path="issue_lsc")
        self.session_id = session_id
        self.operation = operation
        self.auth_mode = AuthType(auth_mode)
        self.auth_string = auth_string
        self.key_type = key_type
        self.key_size = key_size
        self.curve = curve
        self._verify_cert = verify_device_cert
        self._issue_lsc = issue_lsc
        self._known = known_device
        self.device_name: str | None = None
        self._lsc: bytes | None = None
        self._confirm_end = confirm_end
        self._unconfirmed: tuple[Reason, CapfResult] | None = None
        self.max_in_progress = max_in_progress
        #: REQUEST_IN_PROGRESS frames received (module docstring: at most ``max_in_progress``)
        self.in_progress_received = 0

    @property
    def unconfirmed(self) -> CapfResult | None:
        """With ``confirm_end``: the successful outcome waiting for :meth:`confirm` / :meth:`refuse`."""
        return self._unconfirmed[1] if self._unconfirmed is not None else None

    def confirm(self) -> bytes:
        """With ``confirm_end``, in state ``"wait-confirm"``: the END_SESSION of the success (the outcome
        was recorded); :attr:`result` is that outcome."""
        reason, result = self._take_unconfirmed("confirm")
        self._result = result
        return encode(self._msg(CapfCommand.END_SESSION, (CapfTag.REASON, _u8(reason))))

    def refuse(self, detail: str) -> bytes:
        """With ``confirm_end``, in state ``"wait-confirm"``: END_SESSION REASON 7 (failure) instead of the
        success (the outcome could not be recorded, ``detail`` says why); :attr:`result` is outcome
        ``"not-recorded"`` with the certificate of the unrecorded outcome."""
        _reason, result = self._take_unconfirmed("refuse")
        self._result = CapfResult(outcome="not-recorded", reason=int(Reason.FAILURE),
                                  detail=f"{result.outcome} not recorded: {detail}",
                                  device_name=result.device_name, certificate=result.certificate)
        return encode(self._msg(CapfCommand.END_SESSION, (CapfTag.REASON, _u8(Reason.FAILURE))))

    def _take_unconfirmed(self, what: str) -> tuple[Reason, CapfResult]:
        if self.state != "wait-confirm" or self._unconfirmed is None:
            raise ProtocolError(f"{self.role}: {what}() in state {self.state!r}", fmt=FMT,
                                path=f"{self.role}.{self.state}")
        got, self._unconfirmed = self._unconfirmed, None
        self.state = "ended"
        return got

    def start(self) -> bytes:
        """AUTH_REQUEST {VERSION=3, AUTH_TYPE} — the server speaks first (§F.1)."""
        if self.state != "init":
            raise ProtocolError(f"{self.role}: start() in state {self.state!r}", fmt=FMT,
                                path=f"{self.role}.{self.state}")
        self.state = "wait-auth"
        return encode(self._msg(CapfCommand.AUTH_REQUEST, (CapfTag.VERSION, _u8(CAPF_VERSION)),
                                (CapfTag.AUTH_TYPE, _u8(self.auth_mode))))

    def _end(self, reason: Reason, outcome: str, detail: str = "", certificate: bytes | None = None
             ) -> list[CapfMessage]:
        result = CapfResult(outcome=outcome, reason=int(reason), detail=detail,
                            device_name=self.device_name, certificate=certificate)
        if self._confirm_end and outcome in ("installed", "fetched", "deleted"):
            self.state = "wait-confirm"  # the caller records it first: confirm() / refuse()
            self._unconfirmed = (reason, result)
            return []
        self.state = "ended"
        self._result = result
        return [self._msg(CapfCommand.END_SESSION, (CapfTag.REASON, _u8(reason)))]

    def _handle(self, msg: CapfMessage) -> list[CapfMessage]:
        cmd = msg.command
        if self.state == "wait-auth" and cmd == CapfCommand.AUTH_RESPONSE:
            return self._on_auth(msg)
        if self.state == "wait-keygen" and cmd == CapfCommand.REQUEST_IN_PROGRESS:
            return self._on_in_progress()
        if self.state == "wait-keygen" and cmd == CapfCommand.KEY_GENERATE_RESPONSE:
            return self._on_keygen(msg)
        if self.state == "wait-store" and cmd == CapfCommand.STORE_CERTIFICATE_RESPONSE:
            if msg.u8(CapfTag.REASON) != Reason.SUCCESS:
                return self._end(Reason.FAILURE, "store-failed", "phone refused the certificate")
            return self._end(Reason.SUCCESS, "installed", certificate=self._lsc)
        if self.state == "wait-fetch" and cmd == CapfCommand.FETCH_CERTIFICATE_RESPONSE:
            if msg.u8(CapfTag.REASON) != Reason.SUCCESS:
                return self._end(Reason.FAILURE, "fetch-failed", "phone has no certificate")
            _ctype, der = decode_certificate(msg.require(CapfTag.CERTIFICATE))
            return self._end(Reason.NO_ACTION, "fetched", certificate=der)
        if self.state == "wait-delete" and cmd == CapfCommand.DELETE_CERTIFICATE_RESPONSE:
            if msg.u8(CapfTag.REASON) != Reason.SUCCESS:
                return self._end(Reason.FAILURE, "delete-failed", "phone could not delete")
            return self._end(Reason.SUCCESS, "deleted")
        raise self._unexpected(msg)

    def _on_in_progress(self) -> list[CapfMessage]:
        """REQUEST_IN_PROGRESS while the phone generates its key (§F.6): nothing to answer; one more than
        ``max_in_progress`` in the session is a flood, a ProtocolError (ours, module docstring)."""
        self.in_progress_received += 1
        if self.in_progress_received > self.max_in_progress:
            raise ProtocolError(f"{self.role}: more than {self.max_in_progress} REQUEST_IN_PROGRESS in one "
                                "session (a flood; ours)", fmt=FMT, path=f"{self.role}.{self.state}",
                                tag=CapfCommand.REQUEST_IN_PROGRESS)
        return []

    def end_on_timeout(self, detail: str) -> bytes | None:
        """The server's own bound ran out (``detail`` says which) while the phone generates its key: in
        state ``wait-keygen``, END_SESSION {REASON=7} to send before closing, :attr:`result` outcome
        ``keygen-timeout`` (ours, module docstring); in any other state None (nothing to say)."""
        if self.state != "wait-keygen":
            return None
        msgs = self._end(Reason.FAILURE, "keygen-timeout", detail)
        return encode(msgs[0])

    def _on_auth(self, msg: CapfMessage) -> list[CapfMessage]:
        name = msg.string(CapfTag.DEVICE_NAME)
        self.device_name = name
        if self._known is not None and not self._known(name):
            return self._end(Reason.UNKNOWN_DEVICE, "unknown-device", f"device {name!r} not known")
        problem = self._authenticate(msg, name)
        if problem:
            return self._end(Reason.FAILURE, "bad-auth", problem)
        if self.operation == "install":
            self.state = "wait-keygen"
            if self.key_type == "rsa":
                return [self._msg(CapfCommand.KEY_GENERATE_REQUEST, (CapfTag.KEY_TYPE, _u8(KeyType.RSA)),
                                  (CapfTag.KEY_SIZE, self.key_size.to_bytes(2, "big")))]
            return [self._msg(CapfCommand.KEY_GENERATE_REQUEST, (CapfTag.KEY_TYPE, _u8(KeyType.EC)),
                              (CapfTag.CURVE, _u8(Curve.from_label(self.curve))))]
        if self.operation == "fetch":
            self.state = "wait-fetch"
            return [self._msg(CapfCommand.FETCH_CERTIFICATE_REQUEST)]
        if self.operation == "delete":
            self.state = "wait-delete"
            return [self._msg(CapfCommand.DELETE_CERTIFICATE_REQUEST)]
        return self._end(Reason.NO_ACTION, "nothing-pending")

    def _authenticate(self, msg: CapfMessage, name: str) -> str:
        """Return "" when authenticated, else why not (§F.7). Malformed authentication data (a PASSWORD
        without its NUL, a broken CERTIFICATE wrapper or DER, SHA2_SIGNED_DATA or SUDI_DATA) is "bad data",
        answered like a failed authentication (§F.6: END_SESSION REASON 7), the reason naming the element."""
        try:
            return self._check_auth_data(msg, name)
        except DecodeError as exc:
            return f"malformed authentication data: {exc}"

    def _check_auth_data(self, msg: CapfMessage, name: str) -> str:
        mode = self.auth_mode
        if mode in (AuthType.NONE, AuthType.NULL_STRING):
            return ""
        if mode == AuthType.PASSWORD:
            pw = msg.string(CapfTag.PASSWORD) if msg.has(CapfTag.PASSWORD) else ""
            if not hmac.compare_digest(pw.encode("utf-8"), self.auth_string.encode("utf-8")):
                return "authentication string does not match"
            return ""
        return self._authenticate_cert(msg, name)

    def _authenticate_cert(self, msg: CapfMessage, name: str) -> str:
        if not msg.has(CapfTag.CERTIFICATE):
            return "certificate authentication but no CERTIFICATE"
        if not (msg.has(CapfTag.SIGNED_DATA) or msg.has(CapfTag.SHA2_SIGNED_DATA)):
            return "certificate authentication but no signed data"
        cert_type, der = decode_certificate(msg.require(CapfTag.CERTIFICATE))
        cert = load_cert_der(der, path="CERTIFICATE", tag=CapfTag.CERTIFICATE)
        try:
            pub = cert_public_key(cert)
        except DecodeError as exc:  # DSA, Ed25519, ...: refused before any use (§F.7, F.8)
            return f"certificate authentication failed: {_key_refusal(exc)}"
        data = auth_data(name, der)
        try:
            sig1 = msg.get(CapfTag.SIGNED_DATA)
            if sig1 is not None:
                verify_raw_digest(pub, sig1, data, HashAlg.SHA1)
            sig2 = msg.get(CapfTag.SHA2_SIGNED_DATA)
            if sig2 is not None:
                code, sig = decode_sha2_signed_data(sig2)
                if code != HashAlg.SHA512:
                    return f"SHA2 signed data with hash code {code}, expected 3 (SHA-512)"
                verify_raw_digest(pub, sig, data, HashAlg.SHA512)
            if self._verify_cert is None:
                return "no device-certificate verifier configured"
            self._verify_cert(cert, cert_type)
            sudi_raw = msg.get(CapfTag.SUDI_DATA)
            if sudi_raw is not None:
                problem = self._check_sudi(decode_sudi_data(sudi_raw))
                if problem:
                    return problem
        except VerificationError as exc:
            return f"certificate authentication failed: {exc.message}"
        return ""

    def _check_sudi(self, sudi: SudiData) -> str:
        assert self.session_id is not None and self._verify_cert is not None
        if sudi.certificate is None or (sudi.sha1_signature is None and sudi.sha512_signature is None):
            return "SUDI data without certificate or signature"
        cert = load_cert_der(sudi.certificate, path="SUDI_DATA.certificate", tag=CapfTag.SUDI_DATA)
        try:
            pub = cert_public_key(cert)
        except DecodeError as exc:
            return f"SUDI certificate authentication failed: {_key_refusal(exc)}"
        data = sudi_auth_data(self.session_id, sudi.certificate)
        if sudi.sha1_signature is not None:
            verify_raw_digest(pub, sudi.sha1_signature, data, HashAlg.SHA1)
        if sudi.sha512_signature is not None:
            verify_raw_digest(pub, sudi.sha512_signature, data, HashAlg.SHA512)
        self._verify_cert(cert, CertType.MIC)
        return ""

    def _on_keygen(self, msg: CapfMessage) -> list[CapfMessage]:
        raw = msg.get(CapfTag.PUBLIC_KEY)
        if raw is None:
            reason = msg.get(CapfTag.REASON)
            return self._end(Reason.FAILURE, "keygen-failed",
                             f"phone sent no public key (reason {reason[0] if reason else 'none'})")
        key = load_public_key_spki_der(raw)
        wanted_ok = (key_description(key) == f"RSA {self.key_size}" if self.key_type == "rsa"
                     else key_description(key) == f"EC {_CURVE_NAMES[self.curve]}")
        if not wanted_ok:
            return self._end(Reason.FAILURE, "keygen-failed",
                             f"phone generated {key_description(key)}, asked for {self.key_type} "
                             f"{self.key_size if self.key_type == 'rsa' else self.curve}")
        assert self._issue_lsc is not None and self.device_name is not None
        self._lsc = self._issue_lsc(self.device_name, raw)
        self.state = "wait-store"
        return [self._msg(CapfCommand.STORE_CERTIFICATE_REQUEST,
                          (CapfTag.CERTIFICATE_TYPE, _u8(CertType.LSC)),
                          (CapfTag.CERTIFICATE, encode_certificate(self._lsc, CertType.LSC)))]


_CURVE_NAMES = {"p256": "secp256r1", "p384": "secp384r1", "p521": "secp521r1"}


# --- client ----------------------------------------------------------------------------------------

_Sign = Callable[[PrivateKey, bytes, HashAlg], bytes]
"""(key, data, hash) -> CAPF signed data (:func:`sign_raw_digest`, or :func:`_longest_signature`)."""


def _longest_signature(key: PrivateKey, _data: bytes, _alg: HashAlg) -> bytes:
    """Zero bytes as long as ``key``'s CAPF signed data can be (for sizes only)."""
    return bytes(raw_digest_signature_bound(key))


GenerateKey = Callable[[str, int, "str | None"], PrivateKey]
"""(key type "rsa"|"ec", bits, curve "p256"|"p384"|"p521"|None) -> new private key."""


#: The elements the phone acts on (module docstring "duplicated elements"): each at most once in a message.
_CLIENT_READS = frozenset({CapfTag.REASON, CapfTag.AUTH_TYPE, CapfTag.KEY_TYPE, CapfTag.KEY_SIZE,
                           CapfTag.CURVE, CapfTag.CERTIFICATE})


def _read_once(msg: CapfMessage) -> None:
    """An element the phone acts on given twice in one message is a DecodeError naming it and both offsets
    in the frame (ours): which one the server meant is unknown, and a server reading the last where the
    phone read the first (END_SESSION {REASON=7, REASON=1}) would disagree with it about the outcome (was:
    the first taken, silently). Other elements, unknown ones included, may repeat (they are kept)."""
    first: dict[int, int] = {}
    at = HEADER_SIZE
    for e in msg.elements:
        if e.tag in _CLIENT_READS:
            if e.tag in first:
                cmd, name = _cmd_name(msg.command), CapfTag(e.tag).name
                raise DecodeError(f"{cmd} carries {name} twice (at offsets {first[e.tag]} and {at} of the "
                                  "frame): which one the server meant is unknown", fmt=FMT,
                                  path=f"{cmd}.{name}", tag=e.tag, offset=at)
            first[e.tag] = at
        at += 3 + len(e.value)


class CapfClientSession(_Session):
    """CAPF client (phone side) for one TLS connection: feed received bytes to ``receive()`` and send
    what it returns; ``done``/``result`` after END_SESSION.

    ``cert_der``/``cert_key``: the certificate the phone authenticates with in certificate modes (the
    caller picks LSC or MIC per §F.7 precedence); ``cert_type`` defaults to LSC when it is
    ``current_lsc``, else MIC. ``auth_mode``: the phone's configured ``capfAuthMode``; None → use the
    server's AUTH_TYPE. ``send_in_progress``: send REQUEST_IN_PROGRESS before KEY_GENERATE_RESPONSE.
    ``now`` (timezone-aware): an LSC outside its validity then is refused; ``max_rsa_bits`` /
    ``ec_support``: the keys the phone model can make (its profile); see the module docstring.
    ``keygen_seconds`` / ``in_progress_every``: a slow phone's key generation and its REQUEST_IN_PROGRESS
    cadence (its profile; module docstring "Slow key generation"), honoured by the I/O shell.
    """

    role = "capf-client"

    def __init__(
        self,
        *,
        device_name: str,
        auth_string: str = "",
        cert_der: bytes | None = None,
        cert_key: PrivateKey | None = None,
        cert_type: int | None = None,
        generate_key: GenerateKey = default_generate_key,
        current_lsc: bytes | None = None,
        auth_mode: int | None = None,
        send_in_progress: bool = False,
        sudi: SudiData | None = None,
        sudi_key: PrivateKey | None = None,
        now: datetime | None = None,
        max_rsa_bits: int = 4096,
        ec_support: bool = True,
        keygen_seconds: float = 0.0,
        in_progress_every: float = IN_PROGRESS_EVERY_S,
    ) -> None:
        super().__init__()
        for name, value in (("keygen_seconds", keygen_seconds), ("in_progress_every", in_progress_every)):
            if not 0 <= value < float("inf"):
                raise EncodeError(f"{name} {value} must be a finite number of seconds >= 0", fmt=FMT,
                                  path=name)
        encode_cstring(device_name, field="device_name")
        encode_cstring(auth_string, field="auth_string")
        if (cert_der is None) != (cert_key is None):
            raise EncodeError("cert_der and cert_key go together", fmt=FMT, path="cert_key")
        if now is not None and now.utcoffset() is None:
            raise EncodeError("now must be timezone-aware", fmt=FMT, path="now")
        self.device_name = device_name
        self.auth_string = auth_string
        self.cert_der = cert_der
        self.cert_key = cert_key
        if cert_type is None:
            cert_type = CertType.LSC if cert_der is not None and cert_der == current_lsc else CertType.MIC
        self.cert_type = cert_type
        self._generate_key = generate_key
        self.current_lsc = current_lsc
        self.auth_mode = auth_mode
        self.send_in_progress = send_in_progress
        self._sudi = sudi
        self._sudi_key = sudi_key
        self.state = "wait-auth-request"
        self._new_key: PrivateKey | None = None
        self._stored: bytes | None = None
        self._action: str | None = None
        self._fetched: bytes | None = None
        self.now = now
        self.max_rsa_bits = max_rsa_bits
        self.ec_support = ec_support
        self.keygen_seconds = keygen_seconds
        self.in_progress_every = in_progress_every
        self._refused = ""  # why the phone refused the key request or the certificate (result detail)

    @property
    def key_generated(self) -> bool:
        """True once the phone made a key for KEY_GENERATE_REQUEST (not after a request it refused)."""
        return self._new_key is not None

    def _handle(self, msg: CapfMessage) -> list[CapfMessage]:
        _read_once(msg)
        cmd = msg.command
        if self.state == "wait-auth-request":
            if cmd != CapfCommand.AUTH_REQUEST:
                raise self._unexpected(msg)
            self.session_id = msg.session_id
            return [self._auth_response(msg)]
        if self.state != "wait-command":
            raise self._unexpected(msg)
        if cmd == CapfCommand.KEY_GENERATE_REQUEST and self._action is None:
            return self._on_keygen(msg)
        if cmd == CapfCommand.STORE_CERTIFICATE_REQUEST and self._action == "keygen":
            return [self._on_store(msg)]
        if cmd == CapfCommand.FETCH_CERTIFICATE_REQUEST and self._action is None:
            self._action = "fetch"
            if self.current_lsc is None:
                return [self._msg(CapfCommand.FETCH_CERTIFICATE_RESPONSE,
                                  (CapfTag.REASON, _u8(Reason.FAILURE)))]
            self._fetched = self.current_lsc
            return [self._msg(CapfCommand.FETCH_CERTIFICATE_RESPONSE,
                              (CapfTag.REASON, _u8(Reason.SUCCESS)),
                              (CapfTag.CERTIFICATE, encode_certificate(self.current_lsc, CertType.LSC)))]
        if cmd == CapfCommand.DELETE_CERTIFICATE_REQUEST and self._action is None:
            self._action = "delete"
            ok = self.current_lsc is not None
            return [self._msg(CapfCommand.DELETE_CERTIFICATE_RESPONSE,
                              (CapfTag.REASON, _u8(Reason.SUCCESS if ok else Reason.FAILURE)))]
        if cmd == CapfCommand.END_SESSION:
            self._on_end(msg)
            return []
        raise self._unexpected(msg)

    def _auth_response(self, req: CapfMessage) -> CapfMessage:
        mode = self.auth_mode
        if mode is None:
            mode = req.u8(CapfTag.AUTH_TYPE) if req.has(CapfTag.AUTH_TYPE) else AuthType.NONE
        password = self.auth_string if mode == AuthType.PASSWORD else ""
        by_cert = mode in (AuthType.LSC, AuthType.MIC) and self.cert_der is not None
        cert = (self.cert_der, self.cert_type, self.cert_key) if by_cert else None
        els = self._auth_elements(password, cert, sign_raw_digest)
        self.state = "wait-command"
        return self._msg(CapfCommand.AUTH_RESPONSE, *els)

    def _auth_elements(self, password: str, cert: tuple[bytes | None, int, PrivateKey | None] | None,
                       sign: _Sign) -> list[tuple[int, bytes]]:
        """AUTH_RESPONSE's elements (§F.6); with ``cert`` (DER, type, key) those of authentication by
        certificate (§F.7): CERTIFICATE, its SHA-1 and SHA-512 signed data, the SUDI data when the phone
        has a SUDI."""
        els: list[tuple[int, bytes]] = [
            (CapfTag.REASON, _u8(Reason.SUCCESS)),
            (CapfTag.VERSION, _u8(CAPF_VERSION)),
            (CapfTag.DEVICE_NAME, encode_cstring(self.device_name, field="device_name")),
            (CapfTag.PASSWORD, encode_cstring(password, field="password")),
        ]
        if cert is None:
            return els
        cert_der, cert_type, cert_key = cert
        assert cert_der is not None and cert_key is not None
        data = auth_data(self.device_name, cert_der)
        els.append((CapfTag.CERTIFICATE, encode_certificate(cert_der, cert_type)))
        els.append((CapfTag.SIGNED_DATA, sign(cert_key, data, HashAlg.SHA1)))
        els.append((CapfTag.SHA2_SIGNED_DATA, encode_sha2_signed_data(sign(cert_key, data, HashAlg.SHA512))))
        if self._sudi is not None and self._sudi.certificate is not None and self._sudi_key is not None:
            assert self.session_id is not None
            sdata = sudi_auth_data(self.session_id, self._sudi.certificate)
            sudi = SudiData(certificate=self._sudi.certificate,
                            sha1_signature=sign(self._sudi_key, sdata, HashAlg.SHA1),
                            sha512_signature=sign(self._sudi_key, sdata, HashAlg.SHA512))
            els.append((CapfTag.SUDI_DATA, encode_sudi_data(sudi)))
        return els

    def _too_large_to_present(self, der: bytes, key: PrivateKey) -> str:
        """Why LSC ``der`` (with ``key``) could never be presented for CAPF authentication by certificate,
        else "" (ours): the AUTH_RESPONSE carrying it and its signed data (at their longest) must fit one
        frame (§F.2: body at most 65535 bytes, §F.7). A STORE frame carries a few hundred bytes more of
        certificate, so a server could otherwise leave the phone an LSC with which every later session by
        certificate fails before a byte is sent."""
        els = self._auth_elements("", (der, CertType.LSC, key), _longest_signature)
        body = sum(3 + len(value) for _tag, value in els)
        if body <= MAX_BODY:
            return ""
        return (f"at {len(der)} bytes it is too large to present for CAPF authentication by certificate "
                f"(§F.7): an AUTH_RESPONSE carrying it would have a {body}-byte body, over {MAX_BODY} "
                "(§F.2)")

    def _on_keygen(self, msg: CapfMessage) -> list[CapfMessage]:
        self._action = "keygen"
        key_type = msg.u8(CapfTag.KEY_TYPE)
        out: list[CapfMessage] = []
        if self.send_in_progress or (self.keygen_seconds > 0 and self.in_progress_every > 0):
            out.append(self._msg(CapfCommand.REQUEST_IN_PROGRESS))  # a slow phone says so at once
        try:
            if key_type == KeyType.RSA:
                bits = msg.u16(CapfTag.KEY_SIZE)
                if bits > self.max_rsa_bits:
                    raise EncodeError(f"RSA {bits} exceeds this phone's limit of {self.max_rsa_bits} bits",
                                      fmt=FMT, path="KEY_SIZE")
                key = self._make_key("rsa", bits, None, what=f"RSA {bits}", path="KEY_SIZE")
            elif key_type == KeyType.EC:
                code = msg.u8(CapfTag.CURVE)
                if code not in Curve._value2member_map_:
                    raise EncodeError(f"unknown curve code {code}", fmt=FMT, path="CURVE")
                if not self.ec_support:
                    raise EncodeError("this phone has no EC keys (spec §F.8)", fmt=FMT, path="KEY_TYPE")
                curve = Curve(code)
                key = self._make_key("ec", {0: 256, 1: 384, 2: 521}[code], curve.label,
                                     what=f"EC {curve.label}", path="CURVE")
            else:
                raise EncodeError(f"unknown key type {key_type}", fmt=FMT, path="KEY_TYPE")
        except EncodeError as exc:
            self._refused = f"the phone refused the key request: {exc.message}"
            out.append(self._msg(CapfCommand.KEY_GENERATE_RESPONSE, (CapfTag.REASON, _u8(Reason.FAILURE))))
            return out
        self._new_key = key
        out.append(self._msg(CapfCommand.KEY_GENERATE_RESPONSE,
                             (CapfTag.PUBLIC_KEY, public_key_spki_der(key.public_key()))))
        return out

    def _make_key(self, kind: str, bits: int, curve: str | None, *, what: str, path: str) -> PrivateKey:
        """A new key from ``generate_key``; one it cannot make is a refusal (EncodeError, answered REASON 7):
        the key generator's ValueError too — cryptography makes no RSA key under 1024 bits, yet §F.8 lists
        512 among CUCM's sizes (was: the ValueError out of the session and the phone's boot, a traceback)."""
        try:
            return self._generate_key(kind, bits, curve)
        except ValueError as exc:
            raise EncodeError(f"this phone cannot make {what}: {exc}", fmt=FMT, path=path) from None

    def _on_store(self, msg: CapfMessage) -> CapfMessage:
        self._action = "store"
        _ctype, der = decode_certificate(msg.require(CapfTag.CERTIFICATE))
        problem = self._lsc_problem(der)
        if problem:  # after a refused key request, that refusal is the reason to report
            self._refused = self._refused or f"the phone refused the LSC: {problem}"
        else:
            self._stored = der
        return self._msg(CapfCommand.STORE_CERTIFICATE_RESPONSE,
                         (CapfTag.REASON, _u8(Reason.FAILURE if problem else Reason.SUCCESS)))

    def _lsc_problem(self, der: bytes) -> str:
        """Why the certificate of STORE_CERTIFICATE_REQUEST cannot be this phone's LSC, else "" (module
        docstring: the phone's checks of an LSC)."""
        if self._new_key is None:
            return "the phone generated no key for it"
        try:
            cert = load_cert_der(der, path="CERTIFICATE", tag=CapfTag.CERTIFICATE)
            pub = cert_public_key(cert)
        except DecodeError as exc:
            return exc.message
        if public_key_spki_der(pub) != public_key_spki_der(self._new_key.public_key()):
            return "its public key is not the key the phone generated"
        if not names_device(cert, self.device_name):
            return (f"it names another device: subject {dn_text(cert.subject)!r}, not {self.device_name!r} "
                    "(§F.9: a CN equal to the device name or ending in '-<name>', or a SAN URI equal to it)")
        too_large = self._too_large_to_present(der, self._new_key)
        if too_large:
            return too_large
        exts = cert.extensions
        try:
            bc = exts.get_extension_for_class(x509.BasicConstraints).value
            if bc.ca:
                return "it is a CA certificate (basicConstraints CA:TRUE); an LSC is an end entity (§F.9)"
        except x509.ExtensionNotFound:
            pass
        try:
            ku = exts.get_extension_for_class(x509.KeyUsage).value
            if ku.key_cert_sign or ku.crl_sign:
                return "its keyUsage allows signing certificates or CRLs; an LSC is an end entity (§F.9)"
        except x509.ExtensionNotFound:
            pass
        if self.now is not None:
            if self.now < cert.not_valid_before_utc:
                return f"it is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S}Z"
            if self.now > cert.not_valid_after_utc:
                return f"it expired at {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S}Z"
        return ""

    def _on_end(self, msg: CapfMessage) -> None:
        reason = msg.u8(CapfTag.REASON) if msg.has(CapfTag.REASON) else None
        self.state = "ended"
        action = self._action
        r: CapfResult
        if reason == Reason.UNKNOWN_DEVICE:
            r = CapfResult(outcome="rejected", reason=reason, detail="unknown-device")
        elif action == "store" and self._stored is not None and reason == Reason.SUCCESS:
            r = CapfResult(outcome="installed", reason=reason, certificate=self._stored, key=self._new_key)
        elif action == "fetch" and self._fetched is not None and reason == Reason.NO_ACTION:
            r = CapfResult(outcome="fetched", reason=reason, certificate=self._fetched)
        elif action == "delete" and self.current_lsc is not None and reason == Reason.SUCCESS:
            r = CapfResult(outcome="deleted", reason=reason, certificate=self.current_lsc)
        elif action is None and reason == Reason.NO_ACTION:
            r = CapfResult(outcome="nothing-pending", reason=reason)
        else:
            detail = "failure" if reason == Reason.FAILURE else f"reason {reason}"
            if action is not None:
                detail = f"{detail} during {action}"
            if self._refused:
                detail = f"{detail}: {self._refused}"
            r = CapfResult(outcome="rejected", reason=reason, detail=detail)
        self._result = r
