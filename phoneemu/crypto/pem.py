"""Why a PEM block does not load, in our words: the line where it goes wrong.

cryptography's messages for a damaged PEM ("Unable to load PEM file. See https://... MalformedFraming",
"ASN.1 parsing error: short data (needed at least 1025 additional bytes)") do not say where the file
is damaged. :func:`pem_problem` looks at the blocks whose BEGIN label holds ``label``
(``CERTIFICATE``, ``PRIVATE KEY``) and names the first thing wrong, with its 1-based line:

* a BEGIN line with no END line after it (a truncated file);
* an END line whose label is not the BEGIN's;
* a body line that is not base64, or base64 that does not decode (a line lost or edited);
* DER whose outer SEQUENCE declares more bytes than the block holds (lines missing), or is followed
  by bytes (lines added).

It returns None when it finds nothing: the caller then gives cryptography's own reason (a DER that is
well framed but not a certificate or a key, a key with a password, ...).
"""

from __future__ import annotations

import binascii
import re

__all__ = ["pem_problem"]

_BEGIN = re.compile(rb"^-----BEGIN ([A-Z0-9 ]+)-----\s*$")
_END = re.compile(rb"^-----END ([A-Z0-9 ]+)-----\s*$")
_B64_LINE = re.compile(rb"^[A-Za-z0-9+/=]*$")


def _der_problem(der: bytes) -> str | None:
    n = len(der)
    if n < 2 or der[0] != 0x30:
        return "the decoded body is not a DER SEQUENCE" if n else "the body is empty"
    first = der[1]
    if first < 0x80:
        header, length = 2, first
    else:
        size = first & 0x7F
        if size == 0 or size > 4 or n < 2 + size:
            return "the DER length is cut short or not a DER length"
        header, length = 2 + size, int.from_bytes(der[2:2 + size], "big")
    if header + length > n:
        return (f"truncated: the DER SEQUENCE declares {header + length} bytes, the body holds {n} "
                "(lines missing)")
    if header + length < n:
        return f"{n - header - length} bytes after the DER SEQUENCE (lines added)"
    return None


def pem_problem(data: bytes, label: str) -> str | None:
    """The first thing wrong with a PEM block labelled ``...label...`` in ``data``, naming its line;
    None when every such block is well framed (module rules)."""
    lines = data.splitlines()
    want = label.encode("ascii")
    i = 0
    while i < len(lines):
        begin = _BEGIN.match(lines[i].strip())
        if begin is None or want not in begin.group(1):
            i += 1
            continue
        start = i + 1  # 1-based line of the BEGIN
        body: list[bytes] = []
        i += 1
        while i < len(lines) and not lines[i].startswith(b"-----"):
            line = lines[i].strip()
            if b":" in line or not line:  # RFC 1421 headers (Proc-Type, DEK-Info) and blank lines
                i += 1
                continue
            if not _B64_LINE.match(line):
                return f"line {i + 1}: not base64 (in the {begin.group(1).decode()} block of line {start})"
            body.append(line)
            i += 1
        if i >= len(lines):
            return (f"truncated: the {begin.group(1).decode()} block of line {start} has no END line "
                    f"({len(lines)} lines in all)")
        end = _END.match(lines[i].strip())
        if end is None or end.group(1) != begin.group(1):
            return f"line {i + 1}: expected '-----END {begin.group(1).decode()}-----'"
        try:
            der = binascii.a2b_base64(b"".join(body), strict_mode=True)
        except binascii.Error as exc:
            return f"the {begin.group(1).decode()} block of line {start}: base64 does not decode ({exc})"
        problem = _der_problem(der)
        if problem is not None:
            return f"the {begin.group(1).decode()} block of line {start}: {problem}"
        i += 1
    return None
