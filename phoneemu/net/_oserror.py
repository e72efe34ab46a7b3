"""An OSError of a connection in words, for the errors the clients raise (HTTP, TLS: TVS, CAPF, HTTPS).

Rule: Python's ``[Errno 111] Connect call failed ('127.0.0.1', 6970)`` becomes ``connection refused by
127.0.0.1:6970`` (each address tried, when several were); another error its ``strerror`` in lower case;
an error with no text at all (a peer that closed during the TLS handshake: ``ConnectionResetError()``)
says so with its type, never an empty reason after ``cannot connect:``.
"""

from __future__ import annotations

import os
import re

from phoneemu.values import host_port

__all__ = ["os_error_text"]

_CONNECT_FAILED_RE = re.compile(r"\[Errno (\d+)\] Connect call failed \('([^']*)', (\d+)[^)]*\)")


def os_error_text(exc: OSError) -> str:
    """``exc`` in words (module rules)."""
    text = str(exc)
    if _CONNECT_FAILED_RE.search(text):
        return _CONNECT_FAILED_RE.sub(lambda m: f"{_lower(os.strerror(int(m.group(1))))} by "
                                      f"{host_port(m.group(2), int(m.group(3)))}", text)
    if exc.strerror:
        return _lower(exc.strerror)
    return text or f"the connection closed ({type(exc).__name__})"


def _lower(text: str) -> str:
    """``Connection refused`` as part of a sentence: ``connection refused``."""
    return text[:1].lower() + text[1:]
