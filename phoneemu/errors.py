"""One exception root for the whole project.

Every error says *where* (byte offset, field path, tag, or file:line), *what* went wrong,
and, where it applies, what was *got* and what was *expected*. The same facts are
available as attributes so that tests and reports never parse messages.

Rule of the house (design §3.7): bad input never escapes as IndexError, struct.error,
UnicodeDecodeError or ValueError — parsers raise :class:`DecodeError`, verifiers raise
:class:`VerificationError`, servers and fetchers raise :class:`TransportError`.
"""

from __future__ import annotations

import enum

__all__ = [
    "DecodeError",
    "DecryptionError",
    "EncodeError",
    "PhoneEmuError",
    "ProtocolError",
    "ScenarioError",
    "SizeLimitError",
    "TransportError",
    "VerificationError",
    "VerifyReason",
]


class PhoneEmuError(Exception):
    """Root of every error phoneemu raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        fmt: str | None = None,
        offset: int | None = None,
        path: str | None = None,
        tag: int | None = None,
        file: str | None = None,
        line: int | None = None,
    ) -> None:
        self.message = message
        self.fmt = fmt
        self.offset = offset
        self.path = path
        self.tag = tag
        self.file = file
        self.line = line
        super().__init__(self._render())

    def where(self) -> str:
        """The location part of the message, e.g. ``record[3].public_key (tag 7) at offset 1042``."""
        parts: list[str] = []
        if self.file is not None:
            parts.append(f"{self.file}:{self.line}" if self.line is not None else self.file)
        if self.path:
            parts.append(self.path)
        if self.tag is not None:
            parts.append(f"(tag {self.tag})")
        if self.offset is not None:
            parts.append(f"at offset {self.offset}")
        return " ".join(parts)

    def _render(self) -> str:
        head = f"{self.fmt}: " if self.fmt else ""
        where = self.where()
        return f"{head}{where}: {self.message}" if where else f"{head}{self.message}"


class DecodeError(PhoneEmuError):
    """Malformed, truncated or oversized input: the message names offset, field path and tag."""


class SizeLimitError(DecodeError):
    """Input refused before parsing because it exceeds a size limit (e.g. 64 KiB trust list)."""


class ProtocolError(DecodeError):
    """A TVS/CAPF/TFTP message that breaks the protocol's framing or sequence."""


class EncodeError(PhoneEmuError):
    """A value that cannot be encoded (too long for its length field, out of range code)."""


class VerifyReason(enum.Enum):
    """Why a verification failed; stable names for reports and scenario expectations."""

    UNKNOWN_SIGNER = "unknown-signer"
    BAD_SIGNATURE = "bad-signature"
    WRONG_ROLE = "wrong-role"
    UNSUPPORTED_HASH = "unsupported-hash"
    UNSUPPORTED_KEY = "unsupported-key"
    EXPIRED = "expired"
    HASH_MISMATCH = "hash-mismatch"
    DECRYPT_FAILED = "decrypt-failed"
    NOT_SIGNED = "not-signed"
    TOO_LARGE = "too-large"
    TVS_UNREACHABLE = "tvs-unreachable"
    TVS_UNKNOWN = "tvs-unknown-certificate"
    NO_CERTIFICATE = "no-certificate"
    NOT_FOUND = "not-found"
    OTHER = "other"


class VerificationError(PhoneEmuError):
    """A signature, hash, role or decryption check failed; ``reason`` says which."""

    def __init__(
        self,
        message: str,
        *,
        reason: VerifyReason = VerifyReason.OTHER,
        fmt: str | None = None,
        offset: int | None = None,
        path: str | None = None,
        tag: int | None = None,
    ) -> None:
        self.reason = reason
        super().__init__(message, fmt=fmt, offset=offset, path=path, tag=tag)


class DecryptionError(VerificationError):
    """An encrypted file could not be decrypted, or its plaintext hash did not match."""

    def __init__(self, message: str, *, reason: VerifyReason = VerifyReason.DECRYPT_FAILED,
                 fmt: str | None = None, path: str | None = None, tag: int | None = None) -> None:
        super().__init__(message, reason=reason, fmt=fmt, path=path, tag=tag)


class TransportError(PhoneEmuError):
    """A network fetch or exchange failed (timeout, refused, TFTP error packet, TLS failure)."""

    def __init__(self, message: str, *, kind: str = "error", code: int | None = None,
                 path: str | None = None) -> None:
        self.kind = kind
        self.code = code
        super().__init__(message, path=path)


class ScenarioError(PhoneEmuError):
    """A mistake in a scenario file, reported with file:line and the field before anything runs."""
