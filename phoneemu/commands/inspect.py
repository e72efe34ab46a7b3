"""``phoneemu inspect FILE``: decode and verify a trust list, signed/encrypted config or firmware.

Output follows CUCM ``show ctl`` / ``show itl`` (spec §H.4): checksums (MD5 and SHA-1, as phones
show them), length, the header rows (BYTEPOS TAG LENGTH VALUE), then each record with its role as
text, subject, issuer, serial (colon hex), key algorithm and size, certificate SHA-1 and the
"This etoken was (not) used to sign the ... file." annotation.

Checks: a trust list is verified with its own SAST record naming its signer by issuer and serial, as a
phone finds it (spec §B.4, §G.3: one found by serial only, another issuer, fails ``unknown-signer``, or
``wrong-role`` when a record of another role names the signer);
``--cert`` names the signer of a ``.sgn`` / ``.enc.sgn`` / firmware (each certificate of a PEM or of a
CTL/ITL, or a DER certificate, is tried; a trust-list record's whatever its role, which predict checks);
``--key`` decrypts an ``.enc.sgn``: a PKI one with the phone's private key (a PEM that may also hold the
certificate, or a DER key: PKCS #8, PKCS #1, SEC 1), a manual-key one (spec §C.5) with the manual key, 32 or
64 hex digits on the command line or in a file holding only them, or a phone flash's ``symmetric.key``
(:func:`phoneemu.inspection.load_key`).
Exit 0 only if the file parsed and every check asked for passed; otherwise one line on stderr: exit 1
for a failed check, 2 for a file that does not parse or cannot be read (a certificate, CSR or key, PEM
or DER, is named with what to do with it).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phoneemu import json_doc
from phoneemu.commands._argtypes import positive_int
from phoneemu.commands._said import command_of, stderr_text
from phoneemu.errors import PhoneEmuError, SizeLimitError
from phoneemu.files import read_at_most
from phoneemu.formats._tlv import printable

if TYPE_CHECKING:
    from phoneemu.inspection import KeyGiven

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
  phoneemu inspect SEP001122334455.cnf.xml.enc.sgn --key 00112233445566778899AABBCCDDEEFF   manual key
  phoneemu inspect CTLFile.tlv --json

exit status: 0 the file parsed and every check asked for passed; 1 a check failed (the first one said on
stderr); 2 the file does not parse or cannot be read, or a --cert or --key is wrong (one line on stderr);
3 an internal error (one line on stderr, never a traceback); 130 interrupted (Ctrl-C or SIGTERM).
""", formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path, metavar="FILE",
                   help="the file to decode; its format is detected from its bytes (and name)")
    p.add_argument("--cert", type=Path, action="append", default=[], metavar="PEM",
                   help="signer certificate(s) for .sgn/.enc.sgn/firmware (repeatable; each is tried): a "
                   "PEM, a DER certificate, or a CTL/ITL whose records' certificates are tried (whatever "
                   "their role: the phone's role rules are predict's)")
    p.add_argument("--key", metavar="KEY",
                   help="the key to decrypt an .enc.sgn: for a PKI one the phone's private key, a PEM (may "
                   "also hold the certificate) or a DER key (PKCS #8, PKCS #1 RSA, SEC 1 EC); for a "
                   "manual-key one the manual key, 32 or 64 hex digits (as typed into the phone) or a file "
                   "holding only them, or a phone flash's symmetric.key")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    p.add_argument("--limit", type=positive_int, metavar="BYTES",
                   help="refuse files larger than BYTES, before reading them (default: each format's "
                   "own limit: 64 KiB for a trust list, 256 KiB for a config XML, 1 MiB for an .enc.sgn, "
                   "16 MiB otherwise)")
    p.set_defaults(handler=handler)


def _load_key(text: str) -> tuple[KeyGiven | None, str]:
    """The key ``--key TEXT`` gives and its name (:func:`phoneemu.inspection.load_key`), or None and why it
    cannot be used (checked whatever the file is: a typo is not silently ignored): a private key, PEM or DER
    (was PEM only, a DER key told to be converted with openssl), or a manual key (hex or a flash's
    ``symmetric.key``; was "No such file or directory" of hex digits); another file is named by its type."""
    from phoneemu.inspection import load_key

    try:
        return load_key(text)
    except OSError as exc:
        return None, f"{exc.strerror or exc}{_key_not_stdin(text, exc)}"
    except PhoneEmuError as exc:  # it names the path itself: keep what follows it
        return None, str(exc).removeprefix(f"{text}: ")


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


#: bytes of FILE searched for a PEM block: ``openssl x509 -text`` writes its dump (4-8 KiB for an RSA
#: key) before the block, a pkcs12 export its "Bag Attributes" (ours)
PEM_SEARCHED = 16 << 10
#: PEM labels a refusal names at most (the rest counted; ours)
_PEM_LABELS_SHOWN = 4
_UTF8_BOM = b"\xef\xbb\xbf"
#: a PEM block's first line (RFC 7468 §2), at the start of a line (blanks before it allowed)
_PEM_BEGIN = re.compile(rb"^[ \t]*-----BEGIN ([\x20-\x7e]{0,64}?)-----[ \t]*\r?$", re.MULTILINE)
#: characters no text before a PEM block holds: the C0 controls but tab and line ends, and DEL
_NOT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _pem_labels(data: bytes) -> list[str]:
    """The labels of the PEM blocks in the first :data:`PEM_SEARCHED` bytes of ``data`` (``CERTIFICATE``,
    ``PRIVATE KEY``...; each once, in order) when ``data`` is a text file holding one — a UTF-8 BOM, text
    before the block allowed —, else none. Was a file that starts with the block only: inspect said of a
    certificate after ``openssl x509 -text``'s dump that it was "not a signed header ... and not XML"."""
    head = data[:PEM_SEARCHED].removeprefix(_UTF8_BOM)
    first = _PEM_BEGIN.search(head)
    if first is None or not _is_text_before_pem(head[:first.start()]):
        return []
    found = dict.fromkeys(m.group(1).decode("ascii") or "PEM" for m in _PEM_BEGIN.finditer(head))
    return list(found)


def _is_text_before_pem(prefix: bytes) -> bool:
    """``prefix`` is text a PEM tool writes before a block: UTF-8 without control characters (tab and line
    ends aside), not XML (a config may quote a certificate: it is decoded as one). A signed file's binary
    header is not: its certificate inside stays its own."""
    try:
        text = prefix.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if text.lstrip().startswith("<"):
        return False
    return _NOT_TEXT.search(text) is None


_KEY_ADVICE = "give a private key as --key to decrypt an .enc.sgn (boot takes a MIC's key as --mic-key)"
#: a DER key with a password: --key asks for none; openssl writes it without one (asking for the password)
_KEY_ADVICE_ENCRYPTED_DER = ("--key takes a key without a password: openssl pkey -inform DER -in FILE -out "
                             "key.pem writes one, to give as --key to decrypt an .enc.sgn")


def _pem_advice(labels: list[str], *, der: bool = False) -> str:
    """What to do with a PEM (or ``der``: DER) file of ``labels``, per type: a certificate is --cert, a
    private key --key (PEM or DER; a DER one with a password is converted first), a certificate request
    (CSR) neither (was --cert/--key for every PEM, a CSR too); bundles say how to take their certificates
    out."""
    inform = " -inform DER" if der else ""
    advice: dict[str, str] = {}
    for label in labels:
        if "CERTIFICATE REQUEST" in label:
            advice["csr"] = ("a certificate request (CSR) asks a CA for a certificate and is neither a "
                             "certificate nor a key: inspect reads the phone's files, not CSRs (openssl req"
                             f"{inform} -in FILE -noout -text shows one)")
        elif label.endswith("PRIVATE KEY"):  # PEM or DER: --key takes both
            advice["key"] = _KEY_ADVICE_ENCRYPTED_DER if der and "ENCRYPTED" in label else _KEY_ADVICE
        elif "CERTIFICATE" in label:
            advice["cert"] = "give a certificate as --cert to check a file's signature with it"
        else:
            advice.setdefault(label, _bundle_advice(label, inform))
    return "; ".join(advice.values())


def _bundle_advice(label: str, inform: str) -> str:
    """What to do with a PKCS #7 or PKCS #12 bundle (``openssl`` takes its certificates or key out), or
    another type (a public key...): neither --cert nor --key."""
    if label == "PKCS7":
        return (f"a PKCS #7 bundle holds certificates: openssl pkcs7{inform} -in FILE -print_certs -out "
                "certs.pem writes them, to give as --cert")
    if label == "PKCS12":
        return ("a PKCS #12 bundle holds a certificate and its key: openssl pkcs12 -in FILE -nodes -out "
                "both.pem writes them, to give as --cert and --key")
    if label == "X509 CRL":
        return ("a certificate revocation list (CRL) names revoked certificates and is neither a certificate "
                "(--cert) nor a private key (--key)")
    if label == "ASN.1":
        return ("its DER is not shaped as a certificate, CSR or key: it is neither a certificate (--cert) "
                "nor a private key (--key)")
    return f"a {label} is neither a certificate (--cert) nor a private key (--key)"


def _pem_text(labels: list[str], *, der: bool = False) -> str:
    """``a PEM file (CERTIFICATE, PRIVATE KEY)`` (``a DER file (...)``): the labels, at most
    :data:`_PEM_LABELS_SHOWN` of them."""
    shown = ", ".join(labels[:_PEM_LABELS_SHOWN])
    more = len(labels) - _PEM_LABELS_SHOWN
    return f"a {'DER' if der else 'PEM'} file ({shown}{f' and {more} more' if more > 0 else ''})"


def _der_label(data: bytes, path: Path) -> str | None:
    """The type (a PEM label: ``CERTIFICATE``, ``PRIVATE KEY``...) of a DER file, as CUCM's "Download
    .DER" and browsers save a certificate, None when ``data`` is not DER; a DecodeError naming the element
    and the offset of a damaged one (:func:`phoneemu.formats.detect.der_label`) or of a certificate that
    does not load. Nothing of a key is decoded, nor shown."""
    from phoneemu.crypto import certs
    from phoneemu.formats.detect import der_label

    label = der_label(data, path.name)
    if label == "CERTIFICATE":  # it is one --cert takes: said now if it is not
        certs.load_cert_der(data)
    return label


def _not_stdin(path: Path, exc: OSError) -> str:
    """What a missing FILE ``-`` is told: inspect reads a named file, never standard input (was only
    "-: No such file or directory", as if ``-`` were taken for stdin and then failed)."""
    if str(path) == "-" and isinstance(exc, FileNotFoundError):
        return " (inspect reads a file, not standard input: save it to a file and name that)"
    return ""


def _key_not_stdin(text: str, exc: OSError) -> str:
    """What a missing ``--key -`` is told, as a FILE ``-`` is (:func:`_not_stdin`): inspect reads a key from
    a file or the command line, never standard input (was only "No such file or directory")."""
    if text == "-" and isinstance(exc, FileNotFoundError):
        return (" (inspect reads a key from a file or the command line, not standard input: save it to a "
                "file only you can read and name that)")
    return ""


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
        if pem := _pem_labels(data):  # a signer's certificate, a key or a CSR, not a signed file
            _say(args, f"{args.file}: {_pem_text(pem)}, not a file phoneemu inspect decodes (CTL/ITL, .sgn, "
                       f".enc.sgn, firmware, config XML): {_pem_advice(pem)}")
            return 2
        if (der := _der_label(data, args.file)) is not None:  # the same, saved as DER
            _say(args, f"{args.file}: {_pem_text([der], der=True)}, not a file phoneemu inspect decodes (CTL/"
                       f"ITL, .sgn, .enc.sgn, firmware, config XML): {_pem_advice([der], der=True)}")
            return 2
        key: tuple[KeyGiven, str] | None = None
        if args.key is not None:
            given, name = _load_key(args.key)
            if given is None:
                _say(args, f"--key {args.key}: {name}")
                return 2
            key = (given, name)
        try:
            certificates = load_cert_files(args.cert)
        except PhoneEmuError as exc:  # names --cert and its file, not the FILE inspected
            _say(args, str(exc))
            return 2
        report = inspect_bytes(data, name=args.file.name, certificates=certificates, key=key,
                               limit=args.limit)
    except OSError as exc:
        _say(args, f"{exc.filename or args.file}: {exc.strerror or exc}{_not_stdin(args.file, exc)}")
        return 2
    except PhoneEmuError as exc:  # one naming its file already names it once (was "F: F: file: no end ...")
        _say(args, str(exc) if exc.file is not None else f"{args.file}: {exc}")
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
