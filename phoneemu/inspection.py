"""Decode a downloaded file and describe it the way CUCM ``show ctl`` / ``show itl`` does (spec §H.4).

Shared by ``phoneemu inspect`` and ``phoneemu phone show``: checksums (MD5 and SHA-1, as phones
show them), length, the header rows (BYTEPOS TAG LENGTH VALUE), then each record with its role as
text, subject, issuer, serial (colon hex), key algorithm and size, certificate SHA-1 and the
"This etoken was (not) used to sign the ... file." annotation. Trust lists are verified with their
own SAST record (spec §B.4) as a phone verifies with a record: by its certificate's key when it carries a
certificate, its PUBLIC_KEY (tag 7) only when it has none (§G.3 step 2,
:meth:`~phoneemu.formats.trustlist.TrustRecord.signature_key`); a note names each record whose tag 7 is
not its certificate's key. The record must name the signer as a phone finds it, issuer and serial (§B.4,
§G.3 step 1): one found by serial only fails the check, saying what a phone does. Signer certificates and a
private key may be given for the others; a trust list's certificates are tried whatever their role (a
success says so: a phone's role rules are ``predict``'s). ``--key`` (:func:`load_key`) decrypts an
``.enc.sgn`` as the phone does (spec §G.12 step 3): a PKI one (§C.3) with the phone's private key, a
manual-key one (§C.5) with the manual key, given as hex (32 or 64 digits: on the command line, or a file
holding only them) or as a phone flash's ``symmetric.key``; a key of the other method says which one the
file needs.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import ipaddress
import re
from pathlib import Path
from types import ModuleType
from typing import Any

from cryptography import x509

from phoneemu.crypto import certs, keys
from phoneemu.errors import DecodeError, PhoneEmuError, VerificationError, VerifyReason
from phoneemu.files import PEM_LIMIT, read_at_most
from phoneemu.formats import detect, signed, trustlist
from phoneemu.formats._tlv import printable
from phoneemu.formats.header import CONTAINER_TAGS, HeaderTag, ParsedHeader, verify_signature
from phoneemu.formats.trustlist import RecordTag, TrustList
from phoneemu.values import host_port

__all__ = ["KeyGiven", "ManualKey", "inspect_bytes", "load_cert_files", "load_key", "load_private_key",
           "own_signature_check", "render_text"]

# `show ctl` tag names (spec §A.2, §B.2).
_HEADER_NAMES = {1: "VERSION", 2: "HEADERLENGTH", 3: "SIGNERID", 4: "SIGNERNAME", 5: "SERIALNUMBER",
                 6: "CANAME", 7: "SIGNATUREINFO", 8: "DIGESTALGORTITHM", 9: "SIGNATUREALGOINFO",
                 10: "SIGNATUREALGORTITHM", 11: "SIGNATUREMODULUS", 12: "SIGNATURE", 14: "FILENAME",
                 15: "TIMESTAMP", 28: "SIGNERVERSION"}
_RECORD_NAMES = {1: "RECORDLENGTH", 2: "DNSNAME", 3: "SUBJECTNAME", 4: "FUNCTION", 5: "ISSUERNAME",
                 6: "SERIALNUMBER", 7: "PUBLICKEY", 8: "SIGNATURE", 9: "CERTIFICATE", 10: "IPADDRESS",
                 11: "CERTHASH", 12: "HASHALGORITHM"}
_HASH_NAMES = {1: "SHA1", 2: "SHA256", 3: "SHA512"}


# --------------------------------------------------------------------------- helpers
def _colon(b: bytes) -> str:
    return b.hex(":").upper()


def _text(raw: bytes) -> str:
    return printable(raw.rstrip(b"\0").decode("utf-8", errors="surrogateescape"))


def _checksums(data: bytes) -> dict[str, Any]:
    return {"length": len(data), "md5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
            "sha1": hashlib.sha1(data, usedforsecurity=False).hexdigest()}


def _header_rows(data: bytes, start: int, end: int) -> list[dict[str, Any]]:
    """One row per header TLV (containers show their length as value), walking parsed bytes."""
    rows: list[dict[str, Any]] = []
    pos = start
    while pos < end:
        tag = data[pos]
        if tag == HeaderTag.PADDING:
            pos += 1
            continue
        ln = int.from_bytes(data[pos + 1:pos + 3], "big")
        value = data[pos + 3:pos + 3 + ln]
        name = _HEADER_NAMES.get(tag) or (HeaderTag(tag).name if tag in HeaderTag._value2member_map_
                                          else f"UNKNOWN({tag})")
        shown: Any
        if tag in CONTAINER_TAGS:
            shown = ln
        elif tag in (1, 28):
            shown = f"{value[0]}.{value[1]}"
        elif tag in (4, 6, 14):
            shown = _text(value)
        elif tag == 5:
            shown = _colon(value)
        elif tag in (2, 8, 10, 11, 15, 18, 20, 22, 23, 24, 26):
            shown = int.from_bytes(value, "big")
        else:
            shown = value.hex()
        rows.append({"bytepos": pos, "tag": tag, "name": name, "length": ln, "value": shown})
        pos += 3 if tag in CONTAINER_TAGS else 3 + ln
    return rows


def _header_info(ph: ParsedHeader, data: bytes) -> dict[str, Any]:
    h = ph.header
    info: dict[str, Any] = {
        "version": f"{h.version[0]}.{h.version[1]}", "header_length": ph.body_offset,
        "signer_version": f"{h.signer_version[0]}.{h.signer_version[1]}" if h.signer_version else None,
        "signer_name": printable(h.signer.name), "signer_serial": _colon(h.signer.serial),
        "signer_issuer": printable(h.signer.issuer), "hash_algorithm": h.hash_alg,
        "hash_name": _HASH_NAMES.get(h.hash_alg, f"unknown({h.hash_alg})"),
        "signature_algorithm": h.signature_algorithm, "modulus_code": h.modulus_code,
        "signature_length": len(h.signature), "filename": printable(h.filename), "timestamp": h.timestamp,
        "unknown_tags": [{"tag": u.tag, "container": u.container, "value": u.value.hex()} for u in h.unknown],
        "rows": _header_rows(data, 10, ph.body_offset),
    }
    return info


def _record_rows(tl: TrustList, i: int) -> list[dict[str, Any]]:
    rec = tl.record(i)
    start, end = tl.spans[i]
    rows: list[dict[str, Any]] = []
    pos = start
    data = tl.raw
    while pos < end:
        tag = data[pos]
        ln = int.from_bytes(data[pos + 1:pos + 3], "big")
        value = data[pos + 3:pos + 3 + ln]
        shown: Any
        if tag == RecordTag.RECORD_LENGTH:
            shown = int.from_bytes(value, "big")
        elif tag in (RecordTag.DNS_NAME, RecordTag.SUBJECT_NAME, RecordTag.ISSUER_NAME):
            shown = _text(value)
        elif tag == RecordTag.ROLE:
            shown = trustlist.role_text(rec.role)
        elif tag == RecordTag.SERIAL_NUMBER:
            shown = _colon(value)
        elif tag == RecordTag.PUBLIC_KEY:
            try:
                shown = keys.key_description(rec.public_key_obj())
            except PhoneEmuError:
                shown = f"undecodable ({ln} bytes)"
        elif tag == RecordTag.CERTIFICATE:
            shown = f"{rec.sha1_fingerprint()} (SHA1 Hash HEX)"
        elif tag == RecordTag.IP_ADDRESS:
            shown = str(ipaddress.ip_address(value)) if ln in (4, 16) else value.hex()
        elif tag == RecordTag.HASH_ALGORITHM:
            shown = int.from_bytes(value, "big")
        elif tag == RecordTag.SIGNATURE:
            shown = f"{ln} bytes"
        else:
            shown = value.hex()
        rows.append({"bytepos": pos, "tag": tag, "name": _RECORD_NAMES.get(tag, f"UNKNOWN({tag})"),
                     "length": ln, "value": shown})
        pos += 3 + ln
    return rows


def _record_info(tl: TrustList, i: int, signer_index: int | None) -> dict[str, Any]:
    rec = tl.record(i)
    key_alg: str | None = None
    key_bits: int | None = None
    try:
        k = rec.signature_key()
        key_alg, key_bits = keys.key_description(k).split(" ")[0], keys.key_size_bits(k)
    except PhoneEmuError:
        pass
    return {
        "index": i + 1, "role": rec.role, "role_text": rec.role_name, "empty": rec.is_empty,
        "dns_name": printable(rec.dns_name) if rec.dns_name is not None else None,
        "subject": printable(rec.subject) if rec.subject is not None else None,
        "issuer": printable(rec.issuer) if rec.issuer is not None else None,
        "serial": _colon(rec.serial) if rec.serial is not None else None,
        "key_algorithm": key_alg, "key_size": key_bits, "certificate_sha1": rec.sha1_fingerprint(),
        "used_to_sign": i == signer_index, "rows": _record_rows(tl, i),
    }


def _key_disagreements(tl: TrustList) -> list[str]:
    """A note per record whose PUBLIC_KEY (tag 7) is not its certificate's key, naming the record: a
    phone verifies with the certificate's key (spec §G.3 step 2), as the signature check here does."""
    notes = []
    for i, rec in enumerate(tl.records):
        if (why := rec.key_disagreement()) is not None:
            notes.append(f"{tl.kind} record #{i + 1} ({rec.role_name}): {why}; a phone verifies signatures "
                         "with the certificate's key, never this PUBLIC_KEY (spec §G.3 step 2)")
    return notes


def load_cert_files(paths: list[Path]) -> list[tuple[str, x509.Certificate]]:
    """The certificates of each ``--cert`` file: a PEM (each certificate in it), a DER certificate, or a
    CTL/ITL (the certificate of each of its records, named ``FILE #N ROLE``: what a phone holding it could
    check a signature with, whatever the role; §G's role rules are ``predict``'s). A file that gives none is
    a PhoneEmuError naming the option, ``--cert PATH: why`` (was ``FILE: PATH: no certificate in PEM``,
    the inspected FILE named first as if it were the one at fault)."""
    out: list[tuple[str, x509.Certificate]] = []
    for p in paths:
        try:
            out += _certs_of(p)
        except OSError as exc:
            raise PhoneEmuError(f"--cert {p}: {exc.strerror or exc}", path="cert") from None
        except PhoneEmuError as exc:
            raise PhoneEmuError(f"--cert {p}: {_unnamed(exc, str(p))}", path="cert") from None
    return out


def _unnamed(exc: PhoneEmuError, file: str) -> str:
    """``exc``'s text without ``file`` as its path or its file (``--cert FILE`` names it already: was
    ``--cert F: F: certificate file holds more than the limit ...``)."""
    if exc.path == file and exc.file is None:
        return exc.message
    only_file = exc.path is None and exc.line is None and exc.tag is None and exc.offset is None
    return exc.message if exc.file == file and only_file else str(exc)


def _certs_of(p: Path) -> list[tuple[str, x509.Certificate]]:
    """The certificates of the ``--cert`` file ``p`` (:func:`load_cert_files`)."""
    data = read_at_most(p, max(PEM_LIMIT, trustlist.DEFAULT_LIMIT), what="certificate file")
    if data[:3] == b"\x01\x00\x02":
        return _trust_list_certs(p, data)
    if b"-----BEGIN" not in data and (der := _der_certificate(p, data)) is not None:
        return [(str(p), der)]
    found = certs.load_certs_pem(data, source=str(p))
    if not found:
        key = _PEM_KEY_ADVICE if b"PRIVATE KEY-----" in data else ""
        raise VerificationError(f"no certificate in PEM (nor a CTL/ITL){key}", path=str(p))
    return [(str(p), c) for c in found]


def _der_certificate(path: Path, data: bytes) -> x509.Certificate | None:
    """The DER certificate ``data`` (as CUCM's "Download .DER" and browsers save one; a PEM or a trust
    list never starts with 0x30), None when it is not DER; a PhoneEmuError naming the element and offset
    of a damaged one (:func:`phoneemu.formats.detect.der_label`), or the DER type that is not a
    certificate."""
    label = detect.der_label(data, path.name)
    if label is None:
        return None
    if label != "CERTIFICATE":
        raise VerificationError(f"a DER file ({label}), not a certificate{_der_key_advice(label)}")
    return certs.load_cert_der(data)


def _der_key_advice(label: str) -> str:
    """Where a DER private key given as ``--cert`` goes instead (``PRIVATE KEY``, ``RSA PRIVATE KEY`` ...: PEM
    labels, RFC 7468): ``--key``, which takes it as it is, PEM or DER (was: converted to a PEM with openssl
    first); nothing for another DER type."""
    if not label.endswith("PRIVATE KEY"):
        return ""
    return ": --key takes a private key (PEM or DER) to decrypt an .enc.sgn"


#: the PEM labels (RFC 7468) of the DER private keys ``--key`` loads: PKCS #8, PKCS #1 RSA, SEC 1 EC
DER_KEY_LABELS = ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY")


def load_private_key(data: bytes, *, source: str) -> keys.PrivateKey:
    """The private key ``--key`` gives (``source``: its file): a PEM (which may also hold the certificate),
    else a DER one of :data:`DER_KEY_LABELS`. A DecodeError naming ``source`` for anything else: a PEM
    without a key, a DER file of another type (``a DER file (CERTIFICATE), not a private key``), a damaged
    DER (the element and offset), a file that is neither. A certificate (PEM or DER) says what it is and
    that it goes to ``--cert`` (was "no PEM private key found" of a PEM one)."""
    if b"-----BEGIN" in data:
        labels = list(dict.fromkeys(m.decode("ascii", "replace") for m in _PEM_LABEL.findall(data)))
        if labels and not any(label.endswith("PRIVATE KEY") for label in labels):
            raise DecodeError(f"a PEM file ({', '.join(labels[:4])}), not a private key"
                              f"{_not_key_advice(labels)}", path=source)
        return keys.load_private_key_pem(data, source=source)
    try:
        label = detect.der_label(data, source)
    except DecodeError as exc:  # "der: SEQUENCE[0] at offset 5: ...", said of source
        raise DecodeError(str(exc), path=source) from None
    if label in DER_KEY_LABELS:
        return keys.load_private_key_der(data, source=source)
    if label == "ENCRYPTED PRIVATE KEY":
        raise DecodeError("a DER file (ENCRYPTED PRIVATE KEY): a key with a password, which --key does not "
                          "ask for: openssl pkey -inform DER -in FILE -out key.pem writes it without one",
                          path=source)
    if label is not None:
        raise DecodeError(f"a DER file ({label}), not a private key{_not_key_advice([label])}", path=source)
    raise DecodeError("no private key found: neither a PEM private key (no BEGIN line) nor a DER one",
                      path=source)


#: the label of each PEM block (RFC 7468): ``CERTIFICATE``, ``PRIVATE KEY``...
_PEM_LABEL = re.compile(rb"-----BEGIN ([\x20-\x7e]{1,64}?)-----")
#: what ``--key`` takes, said of a file that is not one
_KEY_TAKES = ("--key takes the phone's private key (PEM or DER) for a PKI .enc.sgn, or the manual key (32 "
              "or 64 hex digits, or a file holding them) for a manual-key one")


def _not_key_advice(labels: list[str]) -> str:
    """What a certificate (or another non-key file of PEM ``labels``) given as ``--key`` is for, and what
    ``--key`` takes instead."""
    if any(label in ("CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE") for label in labels):
        return f": give a certificate as --cert to check a file's signature with it; {_KEY_TAKES}"
    return f": {_KEY_TAKES}"


#: a manual key as typed into the phone (spec §C.5) and as a file may hold it: 32 or 64 hex digits, blanks
#: (a line end) around them
_HEX_KEY = re.compile(rb"\s*(?:[0-9A-Fa-f]{32}|[0-9A-Fa-f]{64})\s*")
#: an argument that looks like a mistyped manual key rather than a file name (ours)
_HEX_LIKE = re.compile(r"[0-9A-Fa-f]{8,}")
#: a file's text (printable ASCII and blanks): never a flash's raw ``symmetric.key``, whose 16 or 32 random
#: bytes are that with a chance below 1e-6 (:func:`load_key`)
_TEXT = re.compile(rb"[\x20-\x7e\t\r\n]*")
#: a file holding hex digits alone, but not a manual key's number of them (a mistyped one)
_HEX_FILE = re.compile(rb"\s*([0-9A-Fa-f]{8,})\s*")
#: how notes name a manual key given on the command line (never the key itself)
MANUAL_KEY_NAME = "the manual key given"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ManualKey:
    """The manual key of a manual-key (symmetric) ``.enc.sgn`` (spec §C.5): 16 or 32 bytes, used as the AES
    key (:func:`phoneemu.formats.encrypted.decrypt_symmetric`). Its repr hides the bytes."""

    key: bytes = dataclasses.field(repr=False)
    #: the name of the file whose raw bytes it is (a flash's ``symmetric.key``, :func:`load_key`), else None
    raw_file: str | None = None


#: what ``--key`` gives: a private key (PKI method, §C.3) or a manual key (§C.5)
KeyGiven = keys.PrivateKey | ManualKey


def load_key(text: str) -> tuple[KeyGiven, str]:
    """What ``--key TEXT`` gives, and its name for notes. The file TEXT names, when there is one, holds a
    private key (:func:`load_private_key`) or a manual key: 32 or 64 hex digits alone (blanks around them
    allowed) or the 16 or 32 raw bytes of a phone flash's ``symmetric.key``. Else TEXT itself is the manual
    key as typed into the phone, 32 or 64 hex digits (spec §C.5; a file of that name comes first). An
    OSError for a missing file (a DecodeError saying so when TEXT looks like a mistyped manual key), a
    DecodeError for a file that is neither, or for an all-zero manual key (it clears a phone's key). A file
    of 16 or 32 bytes is raw bytes only when it is not text (:data:`_TEXT`): one holding hex digits of
    another count is a mistyped manual key, said as on the command line (was: 31 digits and a line end
    read as a 256-bit raw key, "file needs a 128-bit key, the configured key has 256 bits")."""
    path = Path(text)
    if _HEX_KEY.fullmatch(text.encode("utf-8", "surrogateescape")) and not path.exists():
        return _manual_key(text.strip(), source=text), MANUAL_KEY_NAME
    try:
        data = read_at_most(path, PEM_LIMIT, what="key file")
    except FileNotFoundError:
        if _HEX_LIKE.fullmatch(text.strip()):
            raise DecodeError(f"no such file, nor a manual key: {_hex_key_problem(text)} (spec §C.5)",
                              path=text) from None
        raise
    if _HEX_KEY.fullmatch(data):
        return _manual_key(data.decode("ascii").strip(), source=text), path.name
    if (digits := _HEX_FILE.fullmatch(data)) is not None:
        raise DecodeError(f"holds {_hex_key_problem(digits.group(1).decode('ascii'))} (spec §C.5)", path=text)
    if len(data) in (16, 32) and _TEXT.fullmatch(data) is None:  # no DER key nor certificate is this short
        return dataclasses.replace(_manual_key(data.hex(), source=text), raw_file=path.name), path.name
    return load_private_key(data, source=text), path.name


def _hex_key_problem(digits: str) -> str:
    """What is wrong with hex ``digits`` that are not a manual key, in the words of the phone's manual key
    entry (``encrypted.hex_key_problem``: an odd number of digits, the counts a key has; was "N hex digits,
    a manual key has 32 or 64")."""
    from phoneemu.formats.encrypted import hex_key_problem

    return hex_key_problem(digits) or "not 32 or 64 hex digits alone"


def _manual_key(digits: str, *, source: str) -> ManualKey:
    """The manual key of ``digits`` (32 or 64 hex digits); all zero digits are a DecodeError: they clear a
    phone's key (spec §C.5), there is nothing to decrypt with."""
    from phoneemu.formats.encrypted import parse_hex_key

    key = parse_hex_key(digits)
    if key is None:
        raise DecodeError("an all-zero manual key clears a phone's key (spec §C.5): no key to decrypt with",
                          path=source)
    return ManualKey(key=key)


#: said after "no certificate in PEM" of a PEM private key given as ``--cert``
_PEM_KEY_ADVICE = ": it holds a private key: give it as --key to decrypt an .enc.sgn"


def _trust_list_certs(path: Path, data: bytes) -> list[tuple[str, x509.Certificate]]:
    """Each record's certificate of the trust list ``data`` (read from ``path``); a PhoneEmuError when it
    is a signed file of another kind, holds no certificate or does not parse (the caller names the file)."""
    kind = detect.detect(data, path.name)
    if kind not in ("itl", "ctl"):
        raise VerificationError(f"{detect.KIND_TEXT[kind]}, not a certificate (PEM) nor a CTL/ITL")
    tl = trustlist.parse(data, kind="CTL" if kind == "ctl" else "ITL")
    out: list[tuple[str, x509.Certificate]] = [
        (_RecordLabel(f"{path} #{i + 1} {rec.role_name}"), rec.x509()) for i, rec in enumerate(tl.records)
        if rec.certificate is not None]
    if not out:
        raise VerificationError(f"{kind.upper()} without a certificate (an empty trust list)")
    return out


class _RecordLabel(str):
    """The label of a certificate a ``--cert`` trust list gives (``FILE #N ROLE``): a signature it verifies
    is said to be checked whatever that record's role (:data:`_ROLE_NOT_CHECKED`)."""


#: said after a signature verified by a trust-list record's certificate: inspect checks the signature, a
#: phone also the record's role for the file (spec §G.4, §G.5; ``predict`` applies them)
_ROLE_NOT_CHECKED = ("; the signature only, whatever that record's role: whether a phone accepts this signer "
                     "for this file is predict's question")


def _try_certs(cands: list[tuple[str, x509.Certificate]], check: Any, signer: Any = None) -> dict[str, Any]:
    """Run ``check(cert)`` with each certificate; the first success wins, else the first failure —
    reported as ``unknown-signer`` naming the file's signer when no given certificate is it (same
    serial number), rather than as a signature that does not verify."""
    first: VerificationError | None = None
    for src, cert in cands:
        try:
            check(cert)
        except VerificationError as exc:
            first = first or exc
            continue
        role = _ROLE_NOT_CHECKED if isinstance(src, _RecordLabel) else ""
        return {"check": "signature", "ok": True, "detail": f"verified with {certs.dn_text(cert.subject)}"
                f" ({src}){role}"}
    assert first is not None
    serials = {certs.serial_bytes(c.serial_number) for _src, c in cands}
    if signer is not None and signer.serial not in serials:
        given = "; ".join(f"{certs.dn_text(c.subject)} (serial {_colon(certs.serial_bytes(c.serial_number))},"
                          f" {src})" for src, c in cands)
        return {"check": "signature", "ok": False, "reason": "unknown-signer",
                "detail": f"signed by {printable(signer.name)} (serial {_colon(signer.serial)}), not by the "
                f"given certificate{'s' if len(cands) > 1 else ''}: {given}"}
    return {"check": "signature", "ok": False, "reason": first.reason.value, "detail": str(first)}


def own_signature_check(tl: TrustList) -> tuple[dict[str, Any], int | None]:
    """The ``signature`` check of a trust list, by its own SAST record (spec §B.4, §A.3), and the index of
    the record that signed it (None when none is found). Verified only when a record naming the signer as
    a phone does — issuer and serial, :meth:`~phoneemu.formats.trustlist.TrustList.names_signer` — verifies
    it; a signature verified only by a record found by serial, whose issuer is another's, is
    ``unknown-signer`` (``bad-signature`` when a record naming the signer has another key, ``wrong-role``
    when only a record of another role names it), naming what a phone does (was: "verified", while phones
    refuse the list). ``inspect`` and ``lab show --itl/--ctl`` both say this check."""
    signer_index: int | None = None
    try:
        signer_index = tl.signer_index()
        tl.verify_self()
    except VerificationError as exc:
        if exc.reason is VerifyReason.WRONG_ROLE and not any(tl.names_signer(i, any_role=True)
                                                             for i in range(len(tl))):
            return {"check": "signature", "ok": False, "reason": VerifyReason.UNKNOWN_SIGNER.value,
                    "detail": _other_issuer_detail(tl, exc)}, None
        failed = {"check": "signature", "ok": False, "reason": exc.reason.value, "detail": str(exc)}
        return failed, signer_index
    named = [i for i in range(len(tl)) if tl.names_signer(i)]
    verified = signer_index if signer_index in named else \
        next((i for i in named if tl.verifies_with_record(i)), None)  # a record without ISSUER_NAME
    if verified is None:
        others = [] if named else [i for i in range(len(tl)) if tl.names_signer(i, any_role=True)]
        reason = VerifyReason.BAD_SIGNATURE if named else \
            VerifyReason.WRONG_ROLE if others else VerifyReason.UNKNOWN_SIGNER  # (as phone.rules)
        return {"check": "signature", "ok": False, "reason": reason.value,
                "detail": _serial_only_detail(tl, signer_index, named, others)}, signer_index
    return {"check": "signature", "ok": True,
            "detail": f"verified with its own SAST record #{verified + 1}"}, verified


def _other_issuer_detail(tl: TrustList, exc: VerificationError) -> str:
    """Why a trust list whose signer's serial is only in records of another role, none of them with the
    signer's issuer (``exc``: :meth:`~phoneemu.formats.trustlist.TrustList.signer_index`'s wrong-role), is
    ``unknown-signer`` to a phone: no record names its signer, issuer and serial (spec §B.4; ``phone.rules``
    says wrong-role only for a record that names it)."""
    kind, issuer = tl.kind, printable(tl.header.signer.issuer)
    return (f"{exc}, with another issuer than the header's {issuer!r}: to a phone "
            f"no record names the signer (spec §B.4: issuer + serial): it refuses this {kind} as an update "
            "(G.3.1-no-signer-record) and, holding it, the next one this signer signs "
            "(G.3.5-reject-unknown-signer, unless TVS vouches for the signer, §G.3.4)")


def _serial_only_detail(tl: TrustList, i: int, named: list[int], others: list[int]) -> str:
    """Why a trust list verified by its SAST record #``i + 1``, found by serial only (another issuer), is
    not one a phone takes (spec §B.4, §G.3), with the rules a phone gives (``phone.rules``). ``named``: the
    records that name the signer as a phone reads it (none of them verifies the signature); ``others``:
    when none does, the records of another role naming it (a phone's reason is then ``wrong-role``)."""
    signer, rec, kind = tl.header.signer, tl.record(i), tl.kind
    found = (f"the signature verifies with SAST record #{i + 1}, found by its serial only: the header names "
             f"the signer by issuer {printable(signer.issuer)!r} and serial {_colon(signer.serial)}, record "
             f"#{i + 1} has issuer {printable(rec.issuer or '')!r} (spec §B.4: issuer + serial name the "
             "signer)")
    if named:
        which = ", ".join(f"#{n + 1}" for n in named)
        return (f"{found}; to a phone the signer is SAST record {which}, whose key does not verify it: "
                f"holding this {kind}, a phone refuses the next {kind} this signer signs (G.3-bad-signature)")
    where, why = "no SAST record names it", ""
    if others:
        roles = ", ".join(f"#{n + 1} {tl.record(n).role_name}" for n in others)
        where, why = f"{where}, only a record of another role ({roles})", ", wrong-role"
    return (f"{found}; to a phone {where}: it refuses this {kind} as an update, even signed by a key it "
            f"trusts (G.3.1-no-signer-record{why}), and, holding it (taken unchecked on first contact, "
            f"§G.2), refuses the next {kind} this signer signs (G.3.5-reject-unknown-signer{why}, unless TVS "
            "vouches for the signer, §G.3.4)")


def _optional(name: str) -> ModuleType | None:
    """The other formats modules, imported lazily so that inspect degrades if one is missing."""
    try:
        return importlib.import_module(f"phoneemu.formats.{name}")
    except ImportError:
        return None


# --------------------------------------------------------------------------- per format
def inspect_bytes(data: bytes, *, name: str | None = None, cert_paths: list[Path] | None = None,
                  key_path: Path | None = None, limit: int | None = None,
                  certificates: list[tuple[str, x509.Certificate]] | None = None,
                  key: tuple[KeyGiven, str] | None = None) -> dict[str, Any]:
    """Everything ``inspect`` prints, as a JSON-able dict; raises PhoneEmuError if parsing fails. The
    signer candidates are ``certificates`` (:func:`load_cert_files` of the ``--cert`` files, read once by
    a caller that said their problems first) and those of ``cert_paths``. The key to decrypt with is
    ``key`` (:func:`load_key`: the key and its name, loaded by a caller that said its problems first), else
    the one ``key_path`` names. A DER certificate, key or CSR is a DecodeError saying what it is (was: "not
    a signed header ... and not XML")."""
    kind = detect.detect(data, name)
    if kind == "der":  # a certificate, key or CSR: ``inspect`` says what to do with it before this
        raise DecodeError(f"{detect.what_it_is(data, name)}, not a file inspect decodes (CTL/ITL, .sgn, "
                          ".enc.sgn, firmware, config XML)")
    report: dict[str, Any] = {"file": name, "format": kind, **_checksums(data), "checks": [], "notes": []}
    cands = [*(certificates or []), *load_cert_files(cert_paths or [])]
    checks: list[dict[str, Any]] = report["checks"]
    if key is None and key_path is not None:
        key = load_key(str(key_path))
    if key is not None and kind != "enc":
        what = detect.KIND_TEXT[kind]
        said = key[1] if key[1] == MANUAL_KEY_NAME else f"key {key[1]}"  # was "key the manual key given"
        report["notes"].append(f"{said} not used: {what} is not encrypted")
    if kind in ("itl", "ctl"):
        tl = trustlist.parse(data, limit=limit if limit is not None else trustlist.DEFAULT_LIMIT,
                             kind="CTL" if kind == "ctl" else "ITL")
        report["header"] = _header_info(tl.parsed_header, data)
        own, signer_index = own_signature_check(tl)
        checks.append(own)
        if cands:  # also: is it signed by a key the caller trusts (as a phone with an ITL checks)?
            res = _try_certs(cands, tl.verify_with, tl.header.signer)
            res["check"] = "trusted-signer"
            checks.append(res)
        report["records"] = [_record_info(tl, i, signer_index) for i in range(len(tl))]
        report["notes"] += _key_disagreements(tl)
        report["empty_itl"] = tl.is_empty
        if len(data) > trustlist.DEFAULT_LIMIT:  # read only past a raised --limit: phones refuse it unread
            report["notes"].append(f"{len(data)} bytes: more than the {trustlist.DEFAULT_LIMIT}-byte limit "
                                   "of a phone's trust list (spec §B.5, §H.2): phones reject it "
                                   "(G.3.1-oversize)")
        return report
    if kind == "sgn":
        sf = signed.parse(data, **({"limit": limit} if limit is not None else {}))
        report["header"] = _header_info(sf.parsed_header, data)
        report["body"] = {"length": len(sf.body),
                          "sha1": hashlib.sha1(sf.body, usedforsecurity=False).hexdigest()}
        if cands:
            checks.append(_try_certs(cands, lambda c: signed.verify(sf, c), sf.header.signer))
        else:
            report["notes"].append(_TFTP_SIGNER_NOT_GIVEN)
        return report
    if kind == "enc":
        return _inspect_enc(data, report, cands, key[0] if key is not None else None, limit)
    if kind == "firmware":
        fw = _optional("firmware")
        if fw is None:
            report["notes"].append("firmware module not available: header only")
            ph = signed.parse(data)
            report["header"] = _header_info(ph.parsed_header, data)
            return report
        img = fw.parse(data, **({"limit": limit} if limit is not None else {}))
        ph2 = ParsedHeader(header=img.header, body_offset=img.header.header_length,
                           signature_span=img.signature_span, signed_message=img.signed_message)
        report["header"] = _header_info(ph2, data)
        report["firmware"] = {"load_name": img.load_name, "payload_length": len(img.payload),
                              "payload_sha1": hashlib.sha1(img.payload, usedforsecurity=False).hexdigest()}
        if cands:
            checks.append(_try_certs(cands, lambda c: fw.verify(img, c), img.header.signer))
        else:
            report["notes"].append("signature not checked (give the image-signing cert with --cert)")
        return report
    return _inspect_xml(data, report, limit)


_TFTP_SIGNER_NOT_GIVEN = ("signature not checked (give the TFTP signer with --cert: a lab's "
                          "DIR/certs/callmanager.pem, or an ITL holding it, e.g. "
                          "--cert DIR/tftp/ITLFile.tlv)")
"""The note of a signed or encrypted file (a config, ``.sgn``/``.enc.sgn``) inspected with no ``--cert``:
where a newcomer finds the TFTP signer (was "give the TFTP signer with --cert", the help's example
``tftp.pem``, a file no lab has)."""


def _inspect_enc(data: bytes, report: dict[str, Any], cands: list[tuple[str, x509.Certificate]],
                 key: KeyGiven | None, limit: int | None) -> dict[str, Any]:
    checks: list[dict[str, Any]] = report["checks"]
    enc_mod = _optional("encrypted")
    if enc_mod is None:
        sf = signed.parse(data)
        report["header"] = _header_info(sf.parsed_header, data)
        report["notes"].append("encrypted module not available: header only, no decryption")
        if cands:
            checks.append(_try_certs(cands, lambda c: verify_signature(
                sf.parsed_header, certs.cert_public_key(c), fmt="enc")))
        return report
    ef = enc_mod.parse(data, **({"limit": limit} if limit is not None else {}))
    report["header"] = _header_info(ef.parsed_header, data)
    e = ef.header.encryption
    report["encryption"] = {
        "method": ef.method, "mode": e.mode, "iv": e.iv.hex() if e.iv else None, "padding": e.padding,
        "key_size": e.key_size, "key_algorithm": e.key_algorithm,
        "wrapped_key_length": len(e.wrapped_key) if e.wrapped_key else 0, "hash_algorithm": e.hash_alg,
        "plaintext_hash": e.plaintext_hash.hex() if e.plaintext_hash else None,
        "ciphertext_length": len(ef.ciphertext)}
    if cands:
        checks.append(_try_certs(cands, lambda c: enc_mod.verify(ef, c), ef.header.signer))
    else:
        report["notes"].append(_TFTP_SIGNER_NOT_GIVEN)
    if key is not None:
        try:
            plain = enc_mod.decrypt_symmetric(ef, key.key) if isinstance(key, ManualKey) else \
                enc_mod.decrypt_pki(ef, key)
        except VerificationError as exc:
            checks.append({"check": "decrypt", "ok": False, "reason": exc.reason.value,
                           "detail": f"{exc}{_other_method_advice(ef.encryption.mode, key, exc)}"
                                     f"{_raw_key_said(key)}"})
        else:
            checks.append({"check": "decrypt", "ok": True, "detail": f"{len(plain)} bytes, hash matches"})
            report["plaintext"] = plain.decode("utf-8", errors="replace")
    return report


def _raw_key_said(key: KeyGiven) -> str:
    """How a manual key read from a file's raw bytes (:func:`load_key`) was taken, said when it does not
    decrypt: a DER key cut short is such a file too (was: only "give the private key as --key")."""
    if not isinstance(key, ManualKey) or key.raw_file is None:
        return ""
    return (f"; {key.raw_file} was read as a phone flash's symmetric.key (its {len(key.key)} raw bytes: "
            "neither a PEM, a whole DER key nor hex digits)")


def _other_method_advice(mode: int, key: KeyGiven, exc: VerificationError) -> str:
    """What key a file of encryption ``mode`` (tag 18) needs when ``key`` is of the other method (``exc``
    names tag 18): a manual-key file (mode 1, spec §C.5) the manual key, a PKI one (mode 0, §C.3) the
    phone's private key; nothing for another fault or another mode."""
    if exc.tag != HeaderTag.ENCRYPTION_MODE:
        return ""
    if mode == 1 and not isinstance(key, ManualKey):
        return ("; a manual-key .enc.sgn (spec §C.5) is decrypted with the manual key: give it as --key, 32 "
                "or 64 hex digits (as typed into the phone), a file holding only them, or a phone flash's "
                "symmetric.key")
    if mode == 0 and isinstance(key, ManualKey):
        return ("; a PKI .enc.sgn (spec §C.3) is decrypted with the private key of the phone's "
                "certificate it was encrypted for (its LSC or MIC key, PEM or DER, a flash's lsc.key or "
                "mic.key): give it as --key")
    return ""


def _inspect_xml(data: bytes, report: dict[str, Any], limit: int | None = None) -> dict[str, Any]:
    cfg_mod = _optional("config")
    if cfg_mod is None:
        report["notes"].append("config module not available: XML not decoded")
        return report
    cfg = cfg_mod.parse(data, **({"limit": limit} if limit is not None else {}))  # --limit, as for the others
    shown: dict[str, Any] = {}
    for field in ("device_name", "full_config", "encr_config", "cert_hash", "capf_auth_mode",
                  "device_security_mode", "load_information"):
        shown[field] = getattr(cfg, field, None)
    for field in ("capf_servers", "tvs_servers"):
        shown[field] = [f"{host_port(s.host, s.port)} (priority {s.priority})"
                        for s in getattr(cfg, field, ())]
    report["config"] = shown
    return report


# --------------------------------------------------------------------------- text
#: the width of the TAG column: ``show ctl``'s 22 characters, wider for a longer name (:func:`_tag_width`)
_TAG_WIDTH = 22


def _tag_width(r: dict[str, Any]) -> int:
    """The TAG column's width for every table of report ``r``: 22 characters, or the longest tag name and
    two blanks (was 22 always: ``ENCRYPTION_KEY_UNKNOWN1       0`` ran into the LENGTH column)."""
    names = [row["name"] for row in r.get("header", {}).get("rows", [])]
    names += [row["name"] for rec in r.get("records", []) for row in rec["rows"]]
    return max([_TAG_WIDTH, *(len(str(name)) + 2 for name in names)])


def _table_head(width: int) -> list[str]:
    return [f"{'BYTEPOS':<8}{'TAG':<{width}}{'LENGTH':<8}VALUE",
            f"{'-------':<8}{'---':<{width}}{'------':<8}-----"]


def _row(row: dict[str, Any], width: int) -> str:
    return f"{row['bytepos']:<8}{row['name']:<{width}}{row['length']:<8}{row['value']}"


def render_text(r: dict[str, Any]) -> str:
    kind = r["format"]
    label = {"itl": "ITL", "ctl": "CTL", "sgn": "signed", "enc": "encrypted", "firmware": "firmware",
             "xml": "config"}[kind]
    out = [f"The checksum value of the {label} file:", f"{r['md5']}(MD5)", f"{r['sha1']}(SHA1)",
           f"Length of {label} file: {r['length']}", f"Parse {label} File", "----------------"]
    h = r.get("header")
    width = _tag_width(r)
    if h:
        out += [f"Version:        {h['version']}", f"HeaderLength:   {h['header_length']} (BYTES)", "",
                *_table_head(width)]
        for row in h["rows"]:
            if row["tag"] in (1, 2):
                continue
            if row["tag"] == 12:
                sig = bytes.fromhex(row["value"])
                out.append(_row({**row, "value": ""}, width))
                out += [" " * (16 + width) + " ".join(f"{b:02x}" for b in sig[k:k + 8])
                        for k in range(0, len(sig), 8)]
            else:
                out.append(_row(row, width))
        out.append("")
    for rec in r.get("records", []):
        out += [f"{label} Record #:{rec['index']}", "----", *_table_head(width)]
        out += [_row(row, width) for row in rec["rows"]]
        if rec["role"] == trustlist.Role.SAST:
            used = "was" if rec["used_to_sign"] else "was not"
            out.append(f"This etoken {used} used to sign the {label} file.")
        out.append("")
    for section in ("body", "encryption", "firmware", "config"):
        if section in r:
            out.append(f"{section.capitalize()}:")
            out += [f"  {k}: {_shown(v)}" for k, v in r[section].items()]
    if "plaintext" in r:
        out += ["Plaintext:", *_plaintext_lines(r["plaintext"])]
    if r.get("empty_itl"):
        out.append(f"Note: this is an empty (rollback) {label}: no usable TVS/TFTP/CCM record.")
    out += [f"Note: {printable(n)}" for n in r["notes"]]
    for c in r["checks"]:
        detail = printable(c["detail"])
        if c["check"] == "signature" and c["ok"]:
            out.append(f"The {label} file was verified successfully ({detail}).")
        elif c["ok"]:
            out.append(f"{c['check']}: OK ({detail})")
        else:
            out.append(f"{c['check']}: FAILED ({c['reason']}): {detail}")
    return "\n".join(out)


def _shown(value: Any) -> str:
    """A value of a section (a config's device name, load, servers...) as one line of text: what the
    file holds escaped (:func:`~phoneemu.formats._tlv.printable`), a list as its items, comma-separated.
    Was the value as it was: a config's ``<deviceName>`` or ``<loadInformation>`` holding U+202E (which
    turns the rest of the line around) or the C1 control U+009B (CSI) went to the terminal as such."""
    if isinstance(value, list | tuple):
        return "[" + ", ".join(printable(str(v)) for v in value) + "]"
    return printable(value) if isinstance(value, str) else str(value)


#: where a plaintext's lines are cut for :func:`_plaintext_lines`: line ends and tabs are kept as they are
_LINE_PARTS = re.compile(r"(\r?\n|\t)")


def _plaintext_lines(text: str) -> list[str]:
    """A decrypted config as shown: its lines (and tabs) as they are, every other control character
    escaped (:func:`~phoneemu.formats._tlv.printable`). Was the plaintext as it was when it held a line
    break: anyone may encrypt a file to a phone's certificate (it is public), so the escape sequences of
    a crafted ``.enc.sgn`` (``ESC]0;...BEL`` retitles the terminal, ``ESC[2J`` clears it) reached the
    terminal of whoever inspected it with the phone's key."""
    parts = _LINE_PARTS.split(text)  # text at even places, a line end or a tab at odd ones
    shown = "".join(part if at % 2 else printable(part) for at, part in enumerate(parts))
    return shown.replace("\r\n", "\n").split("\n")


