"""Reading the plaintext start of a TLS connection: handshake messages and certificates (RFC 5246 §7.4,
RFC 8446 §4.2.1) — what a capture (``replay``) or a failed handshake (the lab's log) shows in clear.

Rules: records before a side's ChangeCipherSpec are read as handshake records (another record type
there is a DecodeError naming the offset); at most :data:`HANDSHAKE_LIMIT` bytes of handshake are
read; a message cut short ends the reading (what came before is returned). TLS 1.3 sends its
certificates encrypted: :func:`server_certificate` says so; a client's certificate is read from TLS
1.0-1.2 handshakes only (:func:`client_certificate`). Nothing but DecodeError escapes, and only from
:func:`handshake_messages`.
"""

from __future__ import annotations

import re

from phoneemu.errors import DecodeError

__all__ = ["HANDSHAKE_LIMIT", "client_certificate", "device_of_certificate", "first_certificate",
           "handshake_messages", "server_certificate"]

HANDSHAKE_LIMIT = 64 * 1024
_HANDSHAKE, _CCS = 22, 20
_SERVER_HELLO, _CERTIFICATE = 2, 11
_SUPPORTED_VERSIONS, _TLS13 = 43, 0x0304
_SEP_MAC = re.compile(r"SEP([0-9A-Fa-f]{12})")


def handshake_messages(stream: bytes) -> list[tuple[int, bytes]]:
    """The plaintext handshake messages (type, body) of one TLS direction, before its ChangeCipherSpec;
    DecodeError for a record of another type there."""
    data = bytearray()
    pos = 0
    while pos + 5 <= len(stream) and len(data) < HANDSHAKE_LIMIT:
        kind, length = stream[pos], int.from_bytes(stream[pos + 3:pos + 5], "big")
        if kind == _CCS:
            break
        if kind != _HANDSHAKE:
            raise DecodeError(f"record type {kind} before the handshake ended", fmt="tls", offset=pos,
                              path="record")
        data += stream[pos + 5:pos + 5 + length]
        pos += 5 + length
    out: list[tuple[int, bytes]] = []
    at = 0
    while at + 4 <= len(data):
        n = int.from_bytes(data[at + 1:at + 4], "big")
        if at + 4 + n > len(data):
            break  # the rest of that message was not kept (or the capture ended)
        out.append((data[at], bytes(data[at + 4:at + 4 + n])))
        at += 4 + n
    return out


def _is_tls13(hello: bytes) -> bool:
    """A ServerHello choosing TLS 1.3 (its supported_versions extension, RFC 8446 §4.2.1)."""
    at = 2 + 32
    if at >= len(hello):
        return False
    at += 1 + hello[at] + 2 + 1  # session id, cipher suite, compression
    end = at + 2 + int.from_bytes(hello[at:at + 2], "big")
    at += 2
    while at + 4 <= min(end, len(hello)):
        ext, n = int.from_bytes(hello[at:at + 2], "big"), int.from_bytes(hello[at + 2:at + 4], "big")
        if ext == _SUPPORTED_VERSIONS and hello[at + 4:at + 6] == _TLS13.to_bytes(2, "big"):
            return True
        at += 4 + n
    return False


def first_certificate(messages: list[tuple[int, bytes]]) -> tuple[bytes | None, str]:
    """The first certificate (DER) of a Certificate handshake message (RFC 5246 §7.4.2), or why there is
    none."""
    cert = next((body for kind, body in messages if kind == _CERTIFICATE), None)
    if cert is None:
        return None, "no Certificate message in the handshake as captured"
    if len(cert) < 6:
        return None, "the Certificate message is empty"
    n = int.from_bytes(cert[3:6], "big")
    if n == 0 or 6 + n > len(cert):
        return None, "the Certificate message's first certificate does not frame"
    return cert[6:6 + n], ""


def server_certificate(server_stream: bytes) -> tuple[bytes | None, str, str]:
    """The server's certificate (DER) from its plaintext handshake, the version ("TLSv1.3" or ""), and
    why there is none."""
    try:
        messages = handshake_messages(server_stream)
    except DecodeError as exc:
        return None, "", f"the server's handshake does not frame: {exc}"
    hello = next((body for kind, body in messages if kind == _SERVER_HELLO), None)
    if hello is not None and _is_tls13(hello):
        return None, "TLSv1.3", "TLS 1.3 sends the certificate encrypted: not read"
    cert, why = first_certificate(messages)
    return cert, "", why


def client_certificate(client_stream: bytes) -> bytes | None:
    """The certificate (DER) a client presented in a TLS 1.0-1.2 handshake (mutual TLS), else None."""
    try:
        return first_certificate(handshake_messages(client_stream))[0]
    except DecodeError:
        return None


def device_of_certificate(der: bytes | None) -> str | None:
    """The MAC of the device a phone's certificate names (its LSC's common name ``SEP<MAC>``, its MIC's
    ``CP-<model>-SEP<MAC>``; spec §F.9), else None."""
    from cryptography.x509.oid import NameOID

    from phoneemu.crypto import certs

    if der is None:
        return None
    try:
        attrs = certs.load_cert_der(der).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except (DecodeError, ValueError):
        return None
    found = _SEP_MAC.search(str(attrs[0].value)) if attrs else None
    return found.group(1).upper() if found else None
