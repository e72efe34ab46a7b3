"""SRTP (RFC 3711) for the SDES suites AES_CM_128_HMAC_SHA1_80 and _32 (RFC 4568 §6.2), sans-I/O.

Rules:

* Keys (RFC 3711 §4.3.1, §4.3.3): master key 16 bytes, master salt 14 bytes; the session cipher key
  (label 0x00, 16 bytes), auth key (0x01, 20 bytes) and salt (0x02, 14 bytes) are the AES-CM PRF
  keystream under the master key with IV ``(master_salt XOR (label || r)) * 2^16``, ``label || r``
  being 7 bytes right-aligned, ``r = index DIV kdr``; the key derivation rate is 0 for both suites
  (``r = 0``: the session keys are derived once).
* Packet index (§3.3.1): ``i = 2^16 * ROC + SEQ``. The sender's ROC per SSRC is incremented when
  the sequence number wraps; the receiver estimates it from its highest index (Appendix A).
* Encryption (§4.1.1): AES-128 counter mode, ``IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16)``,
  over the payload only (everything after the header, CSRCs and extension; padding included).
* Authentication (§4.2, §4.2.1): HMAC-SHA1 over ``header || encrypted payload || ROC`` (ROC as 32
  bits big-endian), truncated to 10 (``_80``) or 4 (``_32``) bytes and appended. No MKI.
* Receiving (§3.3): estimate the index, verify the tag in constant time before anything else is
  done with the packet, then the replay check (§3.3.2: a sliding window of ``replay_window``
  indices below the highest; a packet already received or older than the window is refused), then
  decrypt, and only then update the ROC, highest index and window. A refused packet changes no state.
* Memory is bounded: at most ``max_ssrcs`` SSRCs are tracked per direction; a packet of a new SSRC
  beyond that is refused (path ``ssrc``).
* Every refusal of :meth:`SrtpContext.unprotect` is a DecodeError whose path is ``length``,
  ``header``, ``ssrc``, ``auth_tag`` or ``replay``.
* SDES key parameters (RFC 4568 §6.1): ``inline:`` + base64(key || salt), 40 characters for the
  30 bytes; an optional ``|lifetime`` is accepted and ignored, an MKI is refused (path ``inline``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from phoneemu.errors import DecodeError, EncodeError
from phoneemu.protocols import rtp

__all__ = [
    "FMT",
    "MASTER_KEY_LEN",
    "MASTER_SALT_LEN",
    "MAX_SRTP_PACKET",
    "SUITES",
    "SrtpContext",
    "aes_cm_keystream",
    "derive_session_keys",
    "inline_key",
    "make_master_key",
    "packet_iv",
    "parse_inline_key",
]

FMT = "srtp"
SUITES: dict[str, int] = {"AES_CM_128_HMAC_SHA1_80": 10, "AES_CM_128_HMAC_SHA1_32": 4}
MASTER_KEY_LEN = 16
MASTER_SALT_LEN = 14
SESSION_AUTH_KEY_LEN = 20
#: The longest SRTP packet accepted: the longest RTP packet and the longest tag.
MAX_SRTP_PACKET = rtp.MAX_PACKET + max(SUITES.values())

_LABEL_CIPHER, _LABEL_AUTH, _LABEL_SALT = 0x00, 0x01, 0x02
_INDEX_LIMIT = 1 << 48
_ROC_MOD = 1 << 32
_MAX_KDR_LOG2 = 24
_MAX_WINDOW = 1 << 15


def aes_cm_keystream(key: bytes, iv: bytes, length: int) -> bytes:
    """``length`` bytes of AES counter-mode keystream from the 16-byte counter block ``iv`` (§4.1.1)."""
    enc = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return enc.update(bytes(length)) + enc.finalize()


def packet_iv(session_salt: bytes, ssrc: int, index: int) -> bytes:
    """The AES-CM counter block of a packet: ``(k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16)``."""
    value = (int.from_bytes(session_salt, "big") << 16) ^ (ssrc << 64) ^ (index << 16)
    return value.to_bytes(16, "big")


def derive_session_keys(master_key: bytes, master_salt: bytes, *, index: int = 0,
                        kdr: int = 0) -> tuple[bytes, bytes, bytes]:
    """(session cipher key 16 bytes, session auth key 20 bytes, session salt 14 bytes), §4.3.

    With the key derivation rate ``kdr`` 0 (the SDES default and what the suites here use), ``r`` is 0
    whatever ``index``; otherwise ``r = index DIV kdr``."""
    _check_master(master_key, master_salt)
    if not 0 <= index < _INDEX_LIMIT:
        raise EncodeError(f"index {index} out of range 0..2^48-1", fmt=FMT, path="index")
    if kdr and (kdr & (kdr - 1) or kdr.bit_length() - 1 > _MAX_KDR_LOG2 or kdr < 0):
        raise EncodeError(f"key derivation rate {kdr} is not 0 or a power of 2 up to 2^24",
                          fmt=FMT, path="kdr")
    r = index // kdr if kdr else 0
    salt = int.from_bytes(master_salt, "big")

    def prf(label: int, length: int) -> bytes:
        key_id = (label << 48) | r
        return aes_cm_keystream(master_key, ((salt ^ key_id) << 16).to_bytes(16, "big"), length)

    return (prf(_LABEL_CIPHER, MASTER_KEY_LEN), prf(_LABEL_AUTH, SESSION_AUTH_KEY_LEN),
            prf(_LABEL_SALT, MASTER_SALT_LEN))


def _check_master(master_key: bytes, master_salt: bytes) -> None:
    if len(master_key) != MASTER_KEY_LEN:
        raise EncodeError(f"master key of {len(master_key)} bytes, expected {MASTER_KEY_LEN}",
                          fmt=FMT, path="master_key")
    if len(master_salt) != MASTER_SALT_LEN:
        raise EncodeError(f"master salt of {len(master_salt)} bytes, expected {MASTER_SALT_LEN}",
                          fmt=FMT, path="master_salt")


def _estimate_index(highest: int, seq: int) -> int:
    """RFC 3711 §3.3.1 / Appendix A: the index of ``seq`` given the highest index so far.

    May be negative (``v = ROC - 1`` while ROC is 0): a packet from before the first one seen."""
    roc, s_l = highest >> 16, highest & 0xFFFF
    if s_l < 0x8000:
        return (roc - 1 if seq - s_l > 0x8000 else roc) * 0x10000 + seq
    return (roc + 1 if s_l - 0x8000 > seq else roc) * 0x10000 + seq


@dataclass(kw_only=True, slots=True)
class _Received:
    highest: int
    window: int  # bit k set: index highest - k was received


class SrtpContext:
    """SRTP for one direction (one sender's master key and salt): :meth:`protect` on the sending side,
    :meth:`unprotect` on the receiving side. The two sides keep separate per-SSRC state."""

    __slots__ = ("_auth", "_cipher", "_max_ssrcs", "_received", "_salt", "_sent", "_window",
                 "suite", "tag_length")

    def __init__(self, suite: str, master_key: bytes, master_salt: bytes, *, replay_window: int = 64,
                 max_ssrcs: int = 16) -> None:
        if suite not in SUITES:
            raise EncodeError(f"unknown crypto suite {suite!r}, expected one of {', '.join(SUITES)}",
                              fmt=FMT, path="suite")
        if not 1 <= replay_window <= _MAX_WINDOW:
            raise EncodeError(f"replay window {replay_window} out of range 1..{_MAX_WINDOW}",
                              fmt=FMT, path="replay_window")
        if max_ssrcs < 1:
            raise EncodeError(f"max_ssrcs {max_ssrcs}, at least 1", fmt=FMT, path="max_ssrcs")
        cipher_key, auth_key, self._salt = derive_session_keys(master_key, master_salt)
        self.suite = suite
        self.tag_length = SUITES[suite]
        self._cipher = algorithms.AES(cipher_key)
        self._auth = hmac.new(auth_key, digestmod=hashlib.sha1)
        self._window = replay_window
        self._max_ssrcs = max_ssrcs
        self._sent: dict[int, int] = {}  # SSRC -> highest index protected
        self._received: dict[int, _Received] = {}

    def roc(self, ssrc: int, *, sending: bool = False) -> int | None:
        """The rollover counter of ``ssrc`` on the receiving (or sending) side; None if not tracked."""
        if sending:
            sent = self._sent.get(ssrc)
            return None if sent is None else sent >> 16
        got = self._received.get(ssrc)
        return None if got is None else got.highest >> 16

    def _crypt(self, ssrc: int, index: int, payload: bytes) -> bytes:
        if not payload:
            return b""
        enc = Cipher(self._cipher, modes.CTR(packet_iv(self._salt, ssrc, index))).encryptor()
        return enc.update(payload) + enc.finalize()

    def _tag(self, authenticated: bytes, roc: int) -> bytes:
        mac = self._auth.copy()
        mac.update(authenticated)
        mac.update(roc.to_bytes(4, "big"))
        return mac.digest()[:self.tag_length]

    def protect(self, rtp_packet: bytes) -> bytes:
        """The SRTP packet of the RTP packet ``rtp_packet``: encrypted payload, then the auth tag."""
        if len(rtp_packet) > rtp.MAX_PACKET:
            raise DecodeError(f"RTP packet of {len(rtp_packet)} bytes exceeds {rtp.MAX_PACKET}",
                              fmt=FMT, path="length", offset=rtp.MAX_PACKET)
        start = _header_length(rtp_packet)
        seq = int.from_bytes(rtp_packet[2:4], "big")
        ssrc = int.from_bytes(rtp_packet[8:12], "big")
        highest = self._sent.get(ssrc)
        if highest is None:
            if len(self._sent) >= self._max_ssrcs:
                raise EncodeError(f"already sending {len(self._sent)} SSRCs, at most {self._max_ssrcs}",
                                  fmt=FMT, path="ssrc")
            index = seq
        else:
            index = _estimate_index(highest, seq)
        if index >= _INDEX_LIMIT:
            raise EncodeError("the 48-bit packet index is exhausted: rekey", fmt=FMT, path="index")
        roc = (index >> 16) % _ROC_MOD
        wire_index = (roc << 16) | seq
        body = rtp_packet[:start] + self._crypt(ssrc, wire_index, rtp_packet[start:])
        if highest is None or index > highest:
            self._sent[ssrc] = index
        return body + self._tag(body, roc)

    def unprotect(self, srtp_packet: bytes) -> bytes:
        """The RTP packet of the SRTP packet ``srtp_packet``; DecodeError (path ``length``, ``header``,
        ``ssrc``, ``auth_tag`` or ``replay``) when refused, in which case no state changes."""
        size, tag_len = len(srtp_packet), self.tag_length
        if size > rtp.MAX_PACKET + tag_len:
            raise DecodeError(f"SRTP packet of {size} bytes exceeds {rtp.MAX_PACKET + tag_len}",
                              fmt=FMT, path="length", offset=rtp.MAX_PACKET + tag_len)
        if size < rtp.FIXED_HEADER + tag_len:
            raise DecodeError(f"{size} bytes, shorter than an RTP header and a {tag_len}-byte tag",
                              fmt=FMT, path="length", offset=size)
        body, tag = srtp_packet[:size - tag_len], srtp_packet[size - tag_len:]
        start = _header_length(body)
        seq = int.from_bytes(body[2:4], "big")
        ssrc = int.from_bytes(body[8:12], "big")
        state = self._received.get(ssrc)
        if state is None and len(self._received) >= self._max_ssrcs:
            raise DecodeError(f"new SSRC {ssrc:#010x}: already tracking {len(self._received)} SSRCs, "
                              f"at most {self._max_ssrcs}", fmt=FMT, path="ssrc", offset=8)
        index = seq if state is None else _estimate_index(state.highest, seq)
        roc = (index >> 16) % _ROC_MOD
        if not hmac.compare_digest(self._tag(body, roc), tag):
            raise DecodeError("authentication tag does not match", fmt=FMT, path="auth_tag",
                              offset=size - tag_len)
        if state is not None:
            delta = state.highest - index
            if delta >= self._window:
                raise DecodeError(f"packet index {index} older than the replay window "
                                  f"(highest {state.highest}, window {self._window})",
                                  fmt=FMT, path="replay", offset=2)
            if delta >= 0 and state.window >> delta & 1:
                raise DecodeError(f"packet index {index} already received", fmt=FMT, path="replay",
                                  offset=2)
        plain = body[:start] + self._crypt(ssrc, (roc << 16) | seq, body[start:])
        if state is None:
            self._received[ssrc] = _Received(highest=index, window=1)
        elif index > state.highest:
            shift = index - state.highest
            state.window = ((state.window << shift) | 1) & ((1 << self._window) - 1) \
                if shift < self._window else 1
            state.highest = index
        else:
            state.window |= 1 << (state.highest - index)
        return plain


def _header_length(packet: bytes) -> int:
    try:
        return rtp.header_length(packet)
    except DecodeError as exc:
        raise DecodeError(f"malformed RTP header: {exc.path}: {exc.message}", fmt=FMT, path="header",
                          offset=exc.offset) from exc


def make_master_key() -> tuple[bytes, bytes]:
    """A fresh random (master key, master salt) of 16 and 14 bytes."""
    return secrets.token_bytes(MASTER_KEY_LEN), secrets.token_bytes(MASTER_SALT_LEN)


_INLINE = "inline:"
_KEY_SALT_B64 = 40
_LIFETIME = re.compile(r"(?:2\^[0-9]{1,2}|[0-9]{1,20})")


def inline_key(master_key: bytes, master_salt: bytes) -> str:
    """The key info of SDES key-params ``inline:<key info>`` (RFC 4568 §6.1): base64 of key || salt,
    no lifetime, no MKI (what :class:`phoneemu.protocols.sdp.Crypto` keeps as ``key_params``)."""
    _check_master(master_key, master_salt)
    return base64.b64encode(master_key + master_salt).decode("ascii")


def parse_inline_key(text: str) -> tuple[bytes, bytes]:
    """(master key, master salt) of SDES key-params ``inline:<base64>[|lifetime]`` (the prefix may be
    left out); DecodeError (path ``inline``) on bad base64, a wrong length or an MKI."""
    def refuse(message: str) -> DecodeError:
        return DecodeError(message, fmt=FMT, path="inline")

    info = text[len(_INLINE):] if text.startswith(_INLINE) else text
    key_salt, *rest = info.split("|")
    if len(rest) > 1 or (rest and not _LIFETIME.fullmatch(rest[0])):
        raise refuse("an MKI or a malformed lifetime follows the key (MKI is not supported)")
    if len(key_salt) != _KEY_SALT_B64:
        raise refuse(f"key and salt of {len(key_salt)} base64 characters, expected {_KEY_SALT_B64}")
    try:
        raw = base64.b64decode(key_salt.encode("ascii"), validate=True)
    except (ValueError, binascii.Error) as exc:  # UnicodeEncodeError is a ValueError
        raise refuse(f"key and salt are not base64: {exc}") from exc
    if len(raw) != MASTER_KEY_LEN + MASTER_SALT_LEN:
        raise refuse(f"key and salt of {len(raw)} bytes, expected {MASTER_KEY_LEN + MASTER_SALT_LEN}")
    return raw[:MASTER_KEY_LEN], raw[MASTER_KEY_LEN:]
