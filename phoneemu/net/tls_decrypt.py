"""Decrypting a captured TLS 1.0-1.3 connection with an NSS key log (replay of TVS exchanges, spec §E.1).

Phones speak TLS 1.2 (cp-8861: AES256-GCM-SHA384 from the CUCM 14 TVS cipher list) or TLS 1.0
(older models: AES256-SHA), RSA key transport or ECDHE; the key log (``SSLKEYLOGFILE`` format, as
``phoneemu run --capture`` and ``lab serve --keylog`` write it, and as Wireshark reads it) gives the
master secret of each session by its client random, whatever the key exchange.

Rules (RFC 2246 TLS 1.0, RFC 5246 TLS 1.2, RFC 5288 GCM, RFC 7366 encrypt-then-MAC):

* Key log: ``CLIENT_RANDOM <64 hex> <96 hex>`` lines (TLS 1.0-1.2 master secrets) and
  ``CLIENT_TRAFFIC_SECRET_0`` / ``SERVER_TRAFFIC_SECRET_0`` lines (TLS 1.3); comments, blank lines
  and other labels are skipped; a malformed line of those labels is a DecodeError naming
  ``file:line``. At most :data:`KEYLOG_LIMIT` bytes are read.
* Records (type, version, length ≤ 2^14 + 2048) are read from each direction of a reassembled TCP
  stream. Until a side sends ChangeCipherSpec its handshake records are plaintext: the ClientHello
  gives the client random; the ServerHello the server random, the version (supported_versions
  0x0304: TLS 1.3), the cipher suite and whether encrypt-then-MAC was agreed (extension 22). A
  suite not in :data:`SUITES` / :data:`SUITES_13` is reported as not decryptable.
* Keys: ``PRF(master, "key expansion", server_random + client_random)``; TLS 1.2's PRF uses the
  suite's hash (SHA-384 for ``*_SHA384`` suites, else SHA-256), TLS 1.0/1.1's is P_MD5 ⊕ P_SHA1.
  Order: client MAC key, server MAC key, client key, server key, client IV, server IV.
* After ChangeCipherSpec each record is decrypted with its direction's sequence number (from 0):
  GCM (nonce = 4-byte salt + 8-byte explicit nonce; AAD = seq, type, version, plaintext length);
  CBC with HMAC (TLS 1.1+: explicit IV per record; TLS 1.0: the previous record's last block), the
  padding and the MAC checked — MAC-then-encrypt, or encrypt-then-MAC when agreed; NULL-SHA (no
  encryption, the MAC checked: CUCM's "Authenticated" security mode, spec §G.14). A record that
  does not decrypt is a DecodeError naming the direction, record index and stream offset.
* TLS 1.3 (RFC 8446): each direction's key and IV are ``HKDF-Expand-Label(traffic secret 0, "key" /
  "iv")``; the records protected with the handshake keys come first and are skipped (they do not
  open with the traffic keys); from the first record that opens, the sequence number counts from 0,
  the nonce is IV ⊕ sequence and the AAD the record header; the inner content type ends the
  plaintext (zero padding removed). A KeyUpdate is reported (its next keys are not in the log).
* Application data (type 23) of each direction is returned in order; the Finished message and
  alerts are not. A stream cut short (a gap in the capture) ends at its last whole record. Whether the
  server sent a close_notify alert (level 1, description 0) is said (``server_close_notify``: a body
  read to the connection's end is whole only then, RFC 9112 §9.8; the HTTPS config replay reads it).
* The certificate a server presented (:func:`presented_certificate`, what a client that refused it
  was shown, spec §E.1): TLS 1.0-1.2 send it in clear (:mod:`phoneemu.net.tls_handshake`); TLS 1.3
  encrypts it under the server's handshake traffic secret (``SERVER_HANDSHAKE_TRAFFIC_SECRET`` in the
  key log): its handshake records are opened with ``HKDF-Expand-Label(secret, "key" / "iv")``, the
  sequence number counting from 0, and the first certificate of its Certificate message (RFC 8446
  §4.4.2) is taken.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass, field
from pathlib import Path

from phoneemu.crypto.cipher import aead_decrypt, aes_cbc_decrypt, aes_gcm_decrypt
from phoneemu.errors import DecodeError, DecryptionError, SizeLimitError
from phoneemu.files import read_at_most
from phoneemu.net.tls_handshake import HANDSHAKE_LIMIT, server_certificate

__all__ = [
    "KEYLOG_LIMIT", "SUITES", "SUITES_13", "DecryptedTls", "KeyLog", "Suite", "decrypt_tls",
    "hkdf_expand_label", "key_problem", "parse_keylog", "presented_certificate", "read_in_clear",
    "read_keylog",
]

FMT = "tls"
KEYLOG_LIMIT = 16 << 20
_MAX_RECORD = (1 << 14) + 2048
_CCS, _ALERT, _HANDSHAKE, _APPDATA = 20, 21, 22, 23


@dataclass(frozen=True)
class Suite:
    """A cipher suite we decrypt: AES in GCM or CBC mode, or NULL (authenticated only: the records are
    plaintext and their MAC, what CUCM's "Authenticated" security mode uses, spec §G.14); ``mac`` is the
    HMAC hash of a CBC or NULL suite."""

    name: str
    mode: str  # "gcm" | "cbc" | "null"
    key_len: int
    mac: str | None
    prf: str  # TLS 1.2 PRF hash


def _suites() -> dict[int, Suite]:
    table = {
        # RSA key transport (the CUCM TVS list, spec §E.1); NULL-SHA: "Authenticated" signalling (§G.14)
        0x0002: ("NULL-SHA", "null", 0, "sha1"),
        0x002F: ("AES128-SHA", "cbc", 16, "sha1"), 0x0035: ("AES256-SHA", "cbc", 32, "sha1"),
        0x003C: ("AES128-SHA256", "cbc", 16, "sha256"), 0x003D: ("AES256-SHA256", "cbc", 32, "sha256"),
        0x009C: ("AES128-GCM-SHA256", "gcm", 16, None), 0x009D: ("AES256-GCM-SHA384", "gcm", 32, None),
        # ECDHE-RSA
        0xC013: ("ECDHE-RSA-AES128-SHA", "cbc", 16, "sha1"),
        0xC014: ("ECDHE-RSA-AES256-SHA", "cbc", 32, "sha1"),
        0xC027: ("ECDHE-RSA-AES128-SHA256", "cbc", 16, "sha256"),
        0xC028: ("ECDHE-RSA-AES256-SHA384", "cbc", 32, "sha384"),
        0xC02F: ("ECDHE-RSA-AES128-GCM-SHA256", "gcm", 16, None),
        0xC030: ("ECDHE-RSA-AES256-GCM-SHA384", "gcm", 32, None),
        # ECDHE-ECDSA
        0xC009: ("ECDHE-ECDSA-AES128-SHA", "cbc", 16, "sha1"),
        0xC00A: ("ECDHE-ECDSA-AES256-SHA", "cbc", 32, "sha1"),
        0xC023: ("ECDHE-ECDSA-AES128-SHA256", "cbc", 16, "sha256"),
        0xC024: ("ECDHE-ECDSA-AES256-SHA384", "cbc", 32, "sha384"),
        0xC02B: ("ECDHE-ECDSA-AES128-GCM-SHA256", "gcm", 16, None),
        0xC02C: ("ECDHE-ECDSA-AES256-GCM-SHA384", "gcm", 32, None),
    }
    return {code: Suite(name, mode, key_len, mac, "sha384" if name.endswith("SHA384") else "sha256")
            for code, (name, mode, key_len, mac) in table.items()}


SUITES: dict[int, Suite] = _suites()
_MAC_LEN = {"sha1": 20, "sha256": 32, "sha384": 48}


# --------------------------------------------------------------------------- key log
_TLS13_LABELS = ("CLIENT_TRAFFIC_SECRET_0", "SERVER_TRAFFIC_SECRET_0")
_SERVER_HANDSHAKE = "SERVER_HANDSHAKE_TRAFFIC_SECRET"  # opens the server's TLS 1.3 certificate


@dataclass(frozen=True)
class KeyLog:
    """Secrets by client random: TLS 1.0-1.2 master secrets, TLS 1.3 first traffic secrets (and the
    server's handshake traffic secret)."""

    masters: dict[bytes, bytes] = field(default_factory=dict)
    traffic: dict[bytes, dict[str, bytes]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.masters) + len(self.traffic)


def parse_keylog(text: str, *, source: str = "keylog") -> KeyLog:
    """The ``CLIENT_RANDOM``, TLS 1.3 ``*_TRAFFIC_SECRET_0`` and ``SERVER_HANDSHAKE_TRAFFIC_SECRET``
    lines (see module rules)."""
    log = KeyLog()
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or (parts[0] != "CLIENT_RANDOM" and parts[0] not in _TLS13_LABELS
                         and parts[0] != _SERVER_HANDSHAKE):
            continue
        sizes = (48,) if parts[0] == "CLIENT_RANDOM" else (32, 48)
        try:
            if len(parts) != 3:
                raise ValueError(f"{len(parts)} fields, expected 3")
            random, secret = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
            if len(random) != 32 or len(secret) not in sizes:
                raise ValueError(f"{len(random)}-byte random and {len(secret)}-byte secret, "
                                 f"expected 32 and {' or '.join(map(str, sizes))}")
        except ValueError as exc:
            raise DecodeError(f"malformed {parts[0]} line: {exc}", fmt="keylog", file=source,
                              line=number) from None
        if parts[0] == "CLIENT_RANDOM":
            log.masters[random] = secret
        else:
            log.traffic.setdefault(random, {})[parts[0]] = secret
    return log


def read_keylog(path: Path | str) -> KeyLog:
    """The secrets of a key-log file (at most :data:`KEYLOG_LIMIT` bytes)."""
    data = read_at_most(path, KEYLOG_LIMIT, what="key log")
    return parse_keylog(data.decode("utf-8", errors="replace"), source=str(path))


# --------------------------------------------------------------------------- PRF and keys
def _p_hash(name: str, secret: bytes, seed: bytes, size: int) -> bytes:
    out = bytearray()
    a = seed
    while len(out) < size:
        a = hmac.digest(secret, a, name)
        out += hmac.digest(secret, a + seed, name)
    return bytes(out[:size])


def prf(version: int, suite: Suite, secret: bytes, label: bytes, seed: bytes, *, size: int) -> bytes:
    """The TLS PRF: TLS 1.2 P_<suite hash>; TLS 1.0/1.1 P_MD5(S1) ⊕ P_SHA1(S2)."""
    if version >= 0x0303:
        return _p_hash(suite.prf, secret, label + seed, size)
    half = (len(secret) + 1) // 2
    md5 = _p_hash("md5", secret[:half], label + seed, size)
    sha = _p_hash("sha1", secret[len(secret) - half:], label + seed, size)
    return bytes(x ^ y for x, y in zip(md5, sha, strict=True))


@dataclass(frozen=True)
class _Keys:
    mac: bytes
    key: bytes
    iv: bytes


def _key_block(version: int, suite: Suite, master: bytes, client_random: bytes,
               server_random: bytes) -> tuple[_Keys, _Keys]:
    mac_len = _MAC_LEN[suite.mac] if suite.mac else 0
    iv_len = 4 if suite.mode == "gcm" else (16 if version < 0x0302 and suite.mode == "cbc" else 0)
    size = 2 * (mac_len + suite.key_len + iv_len)
    block = prf(version, suite, master, b"key expansion", server_random + client_random, size=size)
    parts = []
    pos = 0
    for n in (mac_len, mac_len, suite.key_len, suite.key_len, iv_len, iv_len):
        parts.append(block[pos:pos + n])
        pos += n
    return _Keys(parts[0], parts[2], parts[4]), _Keys(parts[1], parts[3], parts[5])


# --------------------------------------------------------------------------- records
@dataclass(frozen=True)
class _Record:
    type: int
    version: int
    body: bytes
    offset: int


def _records(stream: bytes, side: str) -> list[_Record]:
    """Whole records of one direction; a truncated last record is dropped (a gap in the capture)."""
    out: list[_Record] = []
    pos = 0
    while len(stream) - pos >= 5:
        rtype, version, length = struct.unpack_from("!BHH", stream, pos)
        if rtype not in (_CCS, _ALERT, _HANDSHAKE, _APPDATA) or version >> 8 != 3:
            raise DecodeError(f"not a TLS record (type {rtype}, version 0x{version:04x})", fmt=FMT,
                              path=f"{side}.record[{len(out)}]", offset=pos)
        if length > _MAX_RECORD:
            raise SizeLimitError(f"record length {length} above {_MAX_RECORD}", fmt=FMT,
                                 path=f"{side}.record[{len(out)}].length", offset=pos + 3)
        if len(stream) - pos - 5 < length:
            break
        out.append(_Record(rtype, version, stream[pos + 5:pos + 5 + length], pos))
        pos += 5 + length
    return out


@dataclass(frozen=True)
class _Hello:
    version: int
    random: bytes
    suite: int = 0
    etm: bool = False
    tls13: bool = False


def _hello(records: list[_Record], side: str, want: int) -> _Hello:
    """The ClientHello (``want`` 1) or ServerHello (2) at the start of a side's handshake."""
    data = b"".join(r.body for r in records if r.type == _HANDSHAKE)[:1 << 16]
    path = f"{side}.{'client' if want == 1 else 'server'}_hello"
    if len(data) < 38 or data[0] != want:
        raise DecodeError("no hello at the start of the handshake", fmt=FMT, path=path, offset=0)
    length = int.from_bytes(data[1:4], "big")
    body = data[4:4 + length]
    if len(body) < 35:
        raise DecodeError("hello truncated", fmt=FMT, path=path, offset=4)
    version, random = struct.unpack_from("!H", body)[0], body[2:34]
    if want == 1:
        return _Hello(version, random)
    pos = 35 + body[34]
    if len(body) < pos + 3:
        raise DecodeError("server hello truncated", fmt=FMT, path=path, offset=4 + pos)
    suite = struct.unpack_from("!H", body, pos)[0]
    pos += 3  # suite and compression method
    etm = tls13 = False
    if len(body) >= pos + 2:
        end = min(len(body), pos + 2 + struct.unpack_from("!H", body, pos)[0])
        pos += 2
        while pos + 4 <= end:
            ext, size = struct.unpack_from("!HH", body, pos)
            value = body[pos + 4:pos + 4 + size]
            if ext == 22:
                etm = True
            elif ext == 43 and value == b"\x03\x04":
                tls13 = True
            pos += 4 + size
    return _Hello(version, random, suite, etm, tls13)


class _Decryptor:
    """One direction's record protection after ChangeCipherSpec."""

    def __init__(self, version: int, suite: Suite, keys: _Keys, etm: bool, side: str) -> None:
        self.version = version
        self.suite = suite
        self.keys = keys
        self.etm = etm
        self.side = side
        self.seq = 0
        self.iv = keys.iv

    def _fail(self, record: _Record, text: str) -> DecodeError:
        return DecodeError(f"record does not decrypt: {text} (wrong key log entry?)", fmt=FMT,
                           path=f"{self.side}.encrypted_record[{self.seq}]", offset=record.offset)

    def open(self, record: _Record) -> bytes:
        try:
            if self.suite.mode == "null":
                return self._null(record)
            return self._gcm(record) if self.suite.mode == "gcm" else self._cbc(record)
        finally:
            self.seq += 1

    def _header(self, record: _Record, length: int) -> bytes:
        return struct.pack("!QBHH", self.seq, record.type, record.version, length)

    def _gcm(self, record: _Record) -> bytes:
        body = record.body
        if len(body) < 8 + 16:
            raise self._fail(record, f"{len(body)} bytes, shorter than nonce and tag")
        try:
            return aes_gcm_decrypt(self.keys.key, self.keys.iv + body[:8], body[8:],
                                   self._header(record, len(body) - 24))
        except DecryptionError:
            raise self._fail(record, "GCM tag mismatch") from None

    def _null(self, record: _Record) -> bytes:
        """NULL cipher: the fragment is the data and its MAC (RFC 5246 §6.2.3.1, no encryption)."""
        assert self.suite.mac is not None
        mac_len = _MAC_LEN[self.suite.mac]
        if len(record.body) < mac_len:
            raise self._fail(record, "shorter than its MAC")
        data, tag = record.body[:-mac_len], record.body[-mac_len:]
        want = hmac.digest(self.keys.mac, self._header(record, len(data)) + data, self.suite.mac)
        if not hmac.compare_digest(tag, want):
            raise self._fail(record, "MAC mismatch")
        return data

    def _cbc(self, record: _Record) -> bytes:
        assert self.suite.mac is not None
        mac_len = _MAC_LEN[self.suite.mac]
        body = record.body
        explicit = self.version >= 0x0302
        if self.etm:
            if len(body) < mac_len:
                raise self._fail(record, "shorter than its MAC")
            body, tag = body[:-mac_len], body[-mac_len:]
            want = hmac.digest(self.keys.mac, self._header(record, len(body)) + body, self.suite.mac)
            if not hmac.compare_digest(tag, want):
                raise self._fail(record, "MAC mismatch")
        if explicit:
            iv, body = body[:16], body[16:]
        else:
            iv = self.iv
        if not body or len(body) % 16:
            raise self._fail(record, f"{len(body)} bytes of ciphertext, not whole AES blocks")
        if not explicit:
            self.iv = body[-16:]
        plain = aes_cbc_decrypt(self.keys.key, iv, body)
        pad = plain[-1]
        if pad + 1 > len(plain) or plain[-pad - 1:] != bytes([pad]) * (pad + 1):
            raise self._fail(record, "bad padding")
        plain = plain[:-pad - 1]
        if self.etm:
            return plain
        if len(plain) < mac_len:
            raise self._fail(record, "shorter than its MAC")
        data, tag = plain[:-mac_len], plain[-mac_len:]
        want = hmac.digest(self.keys.mac, self._header(record, len(data)) + data, self.suite.mac)
        if not hmac.compare_digest(tag, want):
            raise self._fail(record, "MAC mismatch")
        return data


# --------------------------------------------------------------------------- a connection
@dataclass(frozen=True)
class DecryptedTls:
    """Application data of each direction, in order, and the session's description."""

    client_data: bytes
    server_data: bytes
    description: str  # e.g. "TLSv1.2 AES256-GCM-SHA384"
    #: the server sent a close_notify alert (module rules)
    server_close_notify: bool = False


_VERSIONS = {0x0301: "TLSv1", 0x0302: "TLSv1.1", 0x0303: "TLSv1.2"}
_CLOSE_NOTIFY = b"\x01\x00"  # an alert: level warning, description close_notify (RFC 5246 §7.2.1)


def _application_data(records: list[_Record], dec: _Decryptor, closed: list[bool] | None = None) -> bytes:
    """The application data of one direction; ``closed`` gets True appended when a close_notify came."""
    out = bytearray()
    protected = False
    for r in records:
        if not protected:
            protected = r.type == _CCS
            continue
        plain = dec.open(r)
        if r.type == _APPDATA:
            out += plain
        elif r.type == _ALERT and plain == _CLOSE_NOTIFY and closed is not None:
            closed.append(True)
    return bytes(out)


# --------------------------------------------------------------------------- TLS 1.3
#: TLS 1.3 suites: name, AEAD, key length, hash (RFC 8446 §B.4).
SUITES_13: dict[int, tuple[str, str, int, str]] = {
    0x1301: ("TLS_AES_128_GCM_SHA256", "aes-gcm", 16, "sha256"),
    0x1302: ("TLS_AES_256_GCM_SHA384", "aes-gcm", 32, "sha384"),
    0x1303: ("TLS_CHACHA20_POLY1305_SHA256", "chacha20-poly1305", 32, "sha256"),
}


def hkdf_expand_label(secret: bytes, label: str, size: int, hash_name: str) -> bytes:
    """RFC 8446 §7.1 HKDF-Expand-Label with an empty context."""
    full = b"tls13 " + label.encode("ascii")
    info = struct.pack("!HB", size, len(full)) + full + b"\x00"
    out, block, counter = bytearray(), b"", 1
    while len(out) < size:
        block = hmac.digest(secret, block + info + bytes([counter]), hash_name)
        out += block
        counter += 1
    return bytes(out[:size])


def _application_data_13(records: list[_Record], secret: bytes, suite: tuple[str, str, int, str],
                         side: str, closed: list[bool] | None = None) -> bytes:
    """Application data under the first traffic secret. Records protected with the handshake keys
    come first and do not open with these keys: they are skipped until one does (RFC 8446 §5.2)."""
    _name, aead, key_len, hash_name = suite
    key = hkdf_expand_label(secret, "key", key_len, hash_name)
    iv = int.from_bytes(hkdf_expand_label(secret, "iv", 12, hash_name), "big")
    out = bytearray()
    seq: int | None = None
    for r in records:
        if r.type != _APPDATA:
            continue
        nonce = (iv ^ (seq or 0)).to_bytes(12, "big")
        try:
            header = struct.pack("!BHH", r.type, r.version, len(r.body))
            inner = aead_decrypt(aead, key, nonce, r.body, header)
        except DecryptionError:
            if seq is None:
                continue  # still a handshake record
            raise DecodeError("record does not decrypt: tag mismatch (wrong key log entry?)", fmt=FMT,
                              path=f"{side}.encrypted_record[{seq}]", offset=r.offset) from None
        seq = (seq or 0) + 1
        inner = inner.rstrip(b"\x00")
        if not inner:
            raise DecodeError("record without a content type", fmt=FMT, path=f"{side}.record",
                              offset=r.offset)
        if inner[-1] == _APPDATA:
            out += inner[:-1]
        elif inner[-1] == _ALERT and inner[:-1] == _CLOSE_NOTIFY and closed is not None:
            closed.append(True)
        elif inner[-1] == _HANDSHAKE and inner[:1] == b"\x18":
            raise DecodeError("KeyUpdate: later records use keys not in the key log", fmt=FMT,
                              path=f"{side}.record", offset=r.offset)
    return bytes(out)


def _decrypt_13(client: list[_Record], server: list[_Record], ch: _Hello, sh: _Hello,
                keylog: KeyLog) -> DecryptedTls:
    """After :func:`_unopenable` found nothing wrong: the suite is known and the secrets are logged."""
    suite = SUITES_13[sh.suite]
    found = keylog.traffic[ch.random]
    closed: list[bool] = []
    return DecryptedTls(
        client_data=_application_data_13(client, found["CLIENT_TRAFFIC_SECRET_0"], suite, "client"),
        server_data=_application_data_13(server, found["SERVER_TRAFFIC_SECRET_0"], suite, "server", closed),
        description=f"TLSv1.3 {suite[0]}", server_close_notify=bool(closed))


def _unopenable(ch: _Hello, sh: _Hello, log: KeyLog) -> DecodeError | None:
    """Why the session of these hellos cannot be opened with ``log`` (suite, version, no secrets)."""
    if sh.tls13:
        if sh.suite not in SUITES_13:
            return DecodeError(f"TLS 1.3 cipher suite 0x{sh.suite:04x} not supported", fmt=FMT,
                               path="server_hello.suite")
        found = log.traffic.get(ch.random, {})
        if any(label not in found for label in _TLS13_LABELS):
            return DecodeError(f"no TLS 1.3 traffic secrets in the key log for client random "
                               f"{ch.random.hex()[:16]}...", fmt=FMT, path="client_hello.random")
        return None
    if sh.suite not in SUITES:
        return DecodeError(f"cipher suite 0x{sh.suite:04x} not supported", fmt=FMT, path="server_hello.suite")
    if sh.version not in _VERSIONS:
        return DecodeError(f"version 0x{sh.version:04x} not supported", fmt=FMT, path="server_hello.version")
    if ch.random not in log.masters:
        return DecodeError(f"no key-log entry for client random {ch.random.hex()[:16]}...", fmt=FMT,
                           path="client_hello.random")
    return None


def key_problem(client_start: bytes, server_start: bytes, keylog: KeyLog | dict[bytes, bytes]
                ) -> DecodeError | bool:
    """From the first bytes of a connection (its two hellos): the error :func:`decrypt_tls` will
    raise because the session cannot be opened (suite, version, no key-log secrets); True when it
    can be; False while the hellos are not complete (a stream kept for decryption can be dropped
    early)."""
    log = keylog if isinstance(keylog, KeyLog) else KeyLog(masters=dict(keylog))
    try:
        client, server = _records(client_start, "client"), _records(server_start, "server")
        ch, sh = _hello(client, "client", 1), _hello(server, "server", 2)
    except DecodeError:
        return False
    problem = _unopenable(ch, sh, log)
    return True if problem is None else problem


def read_in_clear(client_stream: bytes, server_stream: bytes) -> DecryptedTls | None:
    """A TLS 1.0-1.2 session whose suite encrypts nothing (NULL-SHA: CUCM's "Authenticated" security
    mode, spec §G.14): its application data as it travelled, each record's MAC cut off unchecked (no
    key log needed to read it, nor to forge it); None for any other suite. DecodeError for records or
    hellos that do not parse."""
    client, server = _records(client_stream, "client"), _records(server_stream, "server")
    _ch, sh = _hello(client, "client", 1), _hello(server, "server", 2)
    suite = SUITES.get(sh.suite)
    if sh.tls13 or suite is None or suite.mode != "null" or suite.mac is None:
        return None
    mac_len = _MAC_LEN[suite.mac]

    def data(records: list[_Record]) -> bytes:
        out, protected = bytearray(), False
        for r in records:
            if protected and r.type == _APPDATA and len(r.body) >= mac_len:
                out += r.body[:-mac_len]
            protected = protected or r.type == _CCS
        return bytes(out)

    version = _VERSIONS.get(sh.version, f"0x{sh.version:04x}")
    return DecryptedTls(client_data=data(client), server_data=data(server),
                        description=f"{version} {suite.name} (in the clear)")


def decrypt_tls(client_stream: bytes, server_stream: bytes,
                keylog: KeyLog | dict[bytes, bytes]) -> DecryptedTls:
    """Decrypt one captured connection (see module rules); DecodeError says why it cannot be.
    ``keylog`` may be a plain ``{client_random: master_secret}`` (TLS 1.0-1.2 only)."""
    log = keylog if isinstance(keylog, KeyLog) else KeyLog(masters=dict(keylog))
    client, server = _records(client_stream, "client"), _records(server_stream, "server")
    ch, sh = _hello(client, "client", 1), _hello(server, "server", 2)
    problem = _unopenable(ch, sh, log)
    if problem is not None:
        raise problem
    if sh.tls13:
        return _decrypt_13(client, server, ch, sh, log)
    suite, master = SUITES[sh.suite], log.masters[ch.random]  # known and logged: _unopenable said so
    ckeys, skeys = _key_block(sh.version, suite, master, ch.random, sh.random)
    etm = sh.etm and suite.mode == "cbc"
    closed: list[bool] = []
    return DecryptedTls(
        client_data=_application_data(client, _Decryptor(sh.version, suite, ckeys, etm, "client")),
        server_data=_application_data(server, _Decryptor(sh.version, suite, skeys, etm, "server"), closed),
        description=f"{_VERSIONS[sh.version]} {suite.name}", server_close_notify=bool(closed))


def _certificate_13(server: list[_Record], secret: bytes, suite: tuple[str, str, int, str]
                    ) -> tuple[bytes | None, str]:
    """The first certificate of the server's TLS 1.3 Certificate message, its handshake records opened
    with the server handshake traffic secret (module rules), or why there is none."""
    _name, aead, key_len, hash_name = suite
    key = hkdf_expand_label(secret, "key", key_len, hash_name)
    iv = int.from_bytes(hkdf_expand_label(secret, "iv", 12, hash_name), "big")
    data = bytearray()
    seq = 0
    for r in server:
        if len(data) >= HANDSHAKE_LIMIT:
            break
        if r.type != _APPDATA:
            continue  # the ServerHello, a compatibility ChangeCipherSpec
        nonce = (iv ^ seq).to_bytes(12, "big")
        header = struct.pack("!BHH", r.type, r.version, len(r.body))
        try:
            inner = aead_decrypt(aead, key, nonce, r.body, header)
        except DecryptionError:
            break  # past the handshake (traffic keys), or a wrong secret
        seq += 1
        inner = inner.rstrip(b"\x00")
        if inner[-1:] != bytes([_HANDSHAKE]):
            break
        data += inner[:-1]
    at = 0
    while at + 4 <= len(data):
        kind, n = data[at], int.from_bytes(data[at + 1:at + 4], "big")
        body = bytes(data[at + 4:at + 4 + n])
        at += 4 + n
        if kind != 11 or len(body) < n:
            continue
        start = 1 + (body[0] if body else 0) + 3  # certificate_request_context, certificate_list length
        size = int.from_bytes(body[start:start + 3], "big")
        if size == 0 or start + 3 + size > len(body):
            return None, "the Certificate message's first certificate does not frame"
        return body[start + 3:start + 3 + size], ""
    return None, "no Certificate message in the handshake records that open with the key log's secret"


def presented_certificate(client_stream: bytes, server_stream: bytes, keylog: KeyLog | dict[bytes, bytes]
                          ) -> tuple[bytes | None, str]:
    """The certificate (DER) the server of a captured connection presented (module rules), or None and
    why not: TLS 1.0-1.2 read in clear, TLS 1.3 opened with the key log's server handshake secret."""
    try:
        ch = _hello(_records(client_stream, "client"), "client", 1)
        server = _records(server_stream, "server")
        sh = _hello(server, "server", 2)
    except DecodeError as exc:
        return None, f"the handshake does not frame: {exc}"
    if not sh.tls13:
        cert, _version, why = server_certificate(server_stream)
        return cert, why
    log = keylog if isinstance(keylog, KeyLog) else KeyLog(masters=dict(keylog))
    secret = log.traffic.get(ch.random, {}).get(_SERVER_HANDSHAKE)
    if sh.suite not in SUITES_13:
        return None, f"TLS 1.3 cipher suite 0x{sh.suite:04x} not supported"
    if secret is None:
        return None, ("TLS 1.3 sends the certificate encrypted: no SERVER_HANDSHAKE_TRAFFIC_SECRET in the "
                      "key log")
    return _certificate_13(server, secret, SUITES_13[sh.suite])
