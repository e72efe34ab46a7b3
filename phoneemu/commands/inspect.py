"""``phoneemu inspect FILE``: decode and verify a trust list, signed/encrypted config or firmware.

Output follows CUCM ``show ctl`` / ``show itl`` (spec §H.4): checksums (MD5 and SHA-1, as phones
show them), length, the header rows (BYTEPOS TAG LENGTH VALUE), then each record with its role as
text, subject, issuer, serial (colon hex), key algorithm and size, certificate SHA-1 and the
"This etoken was (not) used to sign the ... file." annotation.

Checks: a trust list is verified with its own SAST record (spec §B.4); ``--cert`` names the
signer of a ``.sgn`` / ``.enc.sgn`` / firmware (each certificate of a PEM or of a CTL/ITL is
tried); ``--key`` (a PEM that may also hold the certificate) decrypts an ``.enc.sgn``. Exit 0
only if the file parsed and every check asked for passed; otherwise one line on stderr: exit 1 for
a failed check, 2 for a file that does not parse or cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from phoneemu import json_doc
from phoneemu.commands._argtypes import positive_int
from phoneemu.commands._said import command_of, stderr_text
from phoneemu.errors import PhoneEmuError, SizeLimitError
from phoneemu.files import PEM_LIMIT, read_at_most
from phoneemu.formats._tlv import printable

__all__ = ["LARGEST_FILE", "handler", "register"]

LARGEST_FILE = 16 << 20
"""Without ``--limit``, no file larger than this is read: no format's default limit is larger
(signed files and firmware 16 MiB, encrypted configs 1 MiB, trust lists 64 KiB)."""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "inspect", help="decode and verify a CTL/ITL, .sgn, .enc.sgn, firmware or config XML",
        description="Detect the format of FILE, print every field in a 'show ctl' / 'show itl' style "
        "and run the checks asked for. Exit 0 only if the file parsed and every check passed; 1 for a failed "
        "check; 2 for a file that does not parse or cannot be read.",
        epilog="""\
examples:
  phoneemu inspect ITLFile.tlv                          records, signer, signature checked
  phoneemu inspect SEP001122334455.cnf.xml.sgn --cert tftp.pem
  phoneemu inspect SEP001122334455.cnf.xml.sgn --cert ITLFile.tlv   signed by a certificate of this ITL?
  phoneemu inspect SEP001122334455.cnf.xml.enc.sgn --cert tftp.pem --key phone.key
  phoneemu inspect CTLFile.tlv --json
""", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path, metavar="FILE",
                   help="the file to decode; its format is detected from its bytes (and name)")
    p.add_argument("--cert", type=Path, action="append", default=[], metavar="PEM",
                   help="signer certificate(s) for .sgn/.enc.sgn/firmware (repeatable; each is tried): a "
                   "PEM, or a CTL/ITL whose records' certificates are tried (whatever their role: the "
                   "phone's role rules are predict's)")
    p.add_argument("--key", type=Path, metavar="PEM",
                   help="private key (PEM, may also hold the certificate) to decrypt an .enc.sgn")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.add_argument("--limit", type=positive_int, metavar="BYTES",
                   help="refuse files larger than BYTES, before reading them (default: each format's "
                   "own limit: 64 KiB for a trust list, 256 KiB for a config XML, 1 MiB for an .enc.sgn, "
                   "16 MiB otherwise)")
    p.set_defaults(handler=handler)


def _key_problem(path: Path) -> str | None:
    """Why ``--key`` cannot be used (checked whatever the file is: a typo is not silently ignored)."""
    from phoneemu.crypto import keys

    try:
        keys.load_private_key_pem(read_at_most(path, PEM_LIMIT, what="key file"), source=str(path))
    except OSError as exc:
        return str(exc.strerror or exc)
    except PhoneEmuError as exc:  # it names the path itself: keep what follows it
        return str(exc).removeprefix(f"{path}: ")
    return None


def _capture_kind(path: Path) -> str | None:
    """``pcap``/``pcapng`` (``gzipped pcap``...) when the file starts as a capture (its first 4 bytes, of
    the decompressed stream when gzipped, as ``replay`` reads it; a FIFO is not read)."""
    import gzip
    import zlib

    from phoneemu.net.capture import capture_kind

    try:
        if not path.is_file():
            return None
        with path.open("rb") as fh:
            head = fh.read(4)
            if head[:2] != b"\x1f\x8b":
                return capture_kind(head)
            fh.seek(0)
            with gzip.GzipFile(fileobj=fh) as unzipped:
                kind = capture_kind(unzipped.read(4))
            return f"gzipped {kind}" if kind is not None else None
    except (OSError, EOFError, zlib.error):
        return None  # the read that follows says why


def _pem_label(data: bytes) -> str | None:
    """The label of the first PEM block when ``data`` starts as a PEM file (``CERTIFICATE``, ``PRIVATE
    KEY``...; leading blank space allowed), else None: inspect said of a certificate only that it was
    "not a signed header ... and not XML"."""
    head = data.lstrip()[:80]
    if not head.startswith(b"-----BEGIN "):
        return None
    label = head[len(b"-----BEGIN "):].split(b"-----", 1)[0]
    return label.decode("ascii", "replace") if label else "PEM"


def _say(args: argparse.Namespace, text: str) -> None:
    """One line on stderr, escaped (a line break too: it names the file, whose name may carry control
    characters), said by the command as typed (:mod:`phoneemu.cli` rules)."""
    print(stderr_text(command_of(args), printable(text)), file=sys.stderr)


def handler(args: argparse.Namespace) -> int:
    from phoneemu.inspection import (  # the formats and their crypto: when it runs
        inspect_bytes,
        load_cert_files,
        render_text,
    )

    try:
        limit = args.limit if args.limit is not None else LARGEST_FILE
        kind = _capture_kind(args.file)
        if kind is not None:  # a capture holds files; inspect decodes one
            _say(args, f"{args.file}: a packet capture ({kind}), not a file phoneemu inspect "
                       f"decodes: phoneemu replay {args.file} --list lists its phones and the files they "
                       "downloaded, --mac MAC or --all replays them")
            return 2
        try:
            data = read_at_most(args.file, limit, what="file")
        except SizeLimitError as exc:  # refused before reading it all: memory stays bounded
            _say(args, f"{args.file}: {exc.message}"
                       f"{' (--limit)' if args.limit is not None else ''}")
            return 2
        if (pem := _pem_label(data)) is not None:  # a signer's certificate or a key, not a signed file
            _say(args, f"{args.file}: a PEM file ({pem}), not a file phoneemu inspect decodes (CTL/ITL, "
                       ".sgn, .enc.sgn, firmware, config XML): give a certificate as --cert to check a "
                       "file's signature with it, a key as --key to decrypt an .enc.sgn")
            return 2
        if args.key is not None and (problem := _key_problem(args.key)) is not None:
            _say(args, f"--key {args.key}: {problem}")
            return 2
        try:
            certificates = load_cert_files(args.cert)
        except PhoneEmuError as exc:  # names --cert and its file, not the FILE inspected
            _say(args, str(exc))
            return 2
        report = inspect_bytes(data, name=args.file.name, certificates=certificates, key_path=args.key,
                               limit=args.limit)
    except OSError as exc:
        _say(args, f"{exc.filename or args.file}: {exc.strerror or exc}")
        return 2
    except PhoneEmuError as exc:
        _say(args, f"{args.file}: {exc}")
        return 2
    except Exception as exc:  # last resort: one line, never a traceback
        _say(args, f"{args.file}: internal error: {type(exc).__name__}: {exc}")
        return 3
    if args.json:
        print(json_doc.dumps(report, indent=2, sort_keys=False))
    else:
        print(render_text(report))
    failed = [c for c in report["checks"] if not c["ok"]]
    if failed:
        c = failed[0]
        _say(args, f"{args.file}: {c['check']} check failed ({c['reason']}): {c['detail']}")
        return 1
    return 0
