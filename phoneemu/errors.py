"""One exception root for the whole project.

Every error says *where* (byte offset, field path, tag, or file:line), *what* went wrong,
and, where it applies, what was *got* and what was *expected*. The same facts are
available as attributes so that tests and reports never parse messages.

Rule of the house (design §3.7): bad input never escapes as IndexError, struct.error,
UnicodeDecodeError or ValueError — parsers raise :class:`DecodeError`, verifiers raise
:class:`VerificationError`, servers and fetchers raise :class:`TransportError`.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Iterable
from typing import TypeVar

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
    "naming_file",
    "several",
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
        # perf only: rendered from the arguments (the same values as the attributes just set)
        Exception.__init__(self, _render(message, fmt, _where(file, line, path, tag, offset)))

    def where(self) -> str:
        """The location part of the message, e.g. ``record[3].public_key (tag 7) at offset 1042``."""
        return _where(self.file, self.line, self.path, self.tag, self.offset)

    def _render(self) -> str:
        return _render(self.message, self.fmt, self.where())


def _where(file: str | None, line: int | None, path: str | None, tag: int | None,
           offset: int | None) -> str:
    """``file:line``, path, ``(tag N)``, ``at offset N``: those present, in this order, space-separated."""
    where = path or ""  # perf only: one string grown in place of a list joined
    if tag is not None:
        where = f"{where} (tag {tag})" if where else f"(tag {tag})"
    if offset is not None:
        where = f"{where} at offset {offset}" if where else f"at offset {offset}"
    if file is not None:
        loc = f"{file}:{line}" if line is not None else file
        where = f"{loc} {where}" if where else loc
    return where


def _render(message: str, fmt: str | None, where: str) -> str:
    """The exception text: ``fmt: where: message``, each part only when present. A message that opens
    with the command-line option its path names (path ``lab``, ``--lab DIR: not a lab ...``) says where
    already: the path is not repeated before it (``lab: --lab DIR: ...``)."""
    head = f"{fmt}: " if fmt else ""
    if where and message.startswith(f"--{where}") and message[len(where) + 2:][:1] in (" ", ":", "="):
        where = ""
    return f"{head}{where}: {message}" if where else f"{head}{message}"


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
    """An encrypted file could not be decrypted, or its plaintext hash did not match.

    ``offset``: where the field at fault sits in the file (a header tag, the body), when known."""

    def __init__(self, message: str, *, reason: VerifyReason = VerifyReason.DECRYPT_FAILED,
                 fmt: str | None = None, offset: int | None = None, path: str | None = None,
                 tag: int | None = None) -> None:
        super().__init__(message, reason=reason, fmt=fmt, offset=offset, path=path, tag=tag)


class TransportError(PhoneEmuError):
    """A network fetch or exchange failed (timeout, refused, TFTP error packet, TLS failure)."""

    def __init__(self, message: str, *, kind: str = "error", code: int | None = None,
                 path: str | None = None) -> None:
        self.kind = kind
        self.code = code
        super().__init__(message, path=path)


class ScenarioError(PhoneEmuError):
    """A mistake in a scenario file, reported with file:line and the field before anything runs.

    ``mistakes``: every mistake it stands for (itself alone, or those :func:`several` gathered)."""

    @property
    def mistakes(self) -> tuple[ScenarioError, ...]:
        return (self,)


#: At most this many mistakes are listed one per line by :func:`several` (the rest are counted).
MAX_LISTED_MISTAKES = 20


class _ScenarioMistakesError(ScenarioError):
    """Several scenario mistakes as one error: a count, then one line each (at most 20 listed)."""

    def __init__(self, mistakes: tuple[ScenarioError, ...]) -> None:
        self._mistakes = mistakes
        files = {m.file for m in mistakes}
        head = f"{len(mistakes)} mistakes in {len(files)} scenario files" if len(files) > 1 else \
            f"{len(mistakes)} mistakes in {next(iter(files)) or 'the scenario'}"
        lines = [str(m) for m in mistakes[:MAX_LISTED_MISTAKES]]
        if len(mistakes) > MAX_LISTED_MISTAKES:
            lines.append(f"... and {len(mistakes) - MAX_LISTED_MISTAKES} more")
        super().__init__(head + " (nothing ran):\n  " + "\n  ".join(lines))

    @property
    def mistakes(self) -> tuple[ScenarioError, ...]:
        return self._mistakes


def several(errors: Iterable[ScenarioError]) -> ScenarioError | None:
    """One error for every mistake of ``errors`` (each one's own mistakes flattened); None when there
    are none, the mistake itself when there is one: a user fixes them all after one run."""
    flat = tuple(m for e in errors for m in e.mistakes)
    if not flat:
        return None
    return flat[0] if len(flat) == 1 else _ScenarioMistakesError(flat)


_E = TypeVar("_E", bound=PhoneEmuError)


def naming_file(exc: _E, file: str) -> _E:
    """``exc`` saying it happened in ``file`` (same class and fields); ``exc`` itself if it names a file.

    For readers that only see bytes: the caller that opened the file adds its name, so that
    ``bad magic`` becomes ``in.cap header.magic at offset 0: bad magic``."""
    if exc.file is not None:
        return exc
    named = copy.copy(exc)
    named.file = file
    named.args = (named._render(),)
    return named

