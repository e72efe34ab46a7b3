"""X.509 certificates: issue, load, and extract the fields trust lists carry (spec §B.2).

* Serial numbers on the wire are big-endian, minimal length, with no DER sign byte
  (spec §A.2 tag 5, §B.2 tag 6).
* Distinguished names are written CUCM-style: RDNs most-specific first joined by ``;``
  (spec §A.7), e.g. ``CN=cucm-pub;OU=TAC;O=Cisco;C=PL``. Matching compares serial and an issuer
  compared by :func:`dn_key` (:func:`same_issuer`): separator, case, spacing and the RDN order aside, so
  certutils' RFC 4514 ``,`` text in stored order names the same issuer (spec §A.7, §B.4). The one issuer
  comparison of the phone (``phone.rules``), ``inspect`` (``formats.trustlist``) and the lab TVS.
* ``now`` is always passed in; this module never reads the clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from phoneemu.crypto._memo import IdentityMemo
from phoneemu.crypto.keys import PrivateKey, PublicKey
from phoneemu.crypto.pem import pem_problem
from phoneemu.errors import DecodeError

__all__ = [
    "CertRequest",
    "cert_der",
    "cert_pem",
    "cert_public_key",
    "cert_signature_bytes",
    "der_extent_problem",
    "dn_key",
    "dn_text",
    "fingerprint",
    "issue_certificate",
    "load_cert_der",
    "load_certs_pem",
    "name_from_text",
    "normalise_dn",
    "same_issuer",
    "serial_bytes",
    "serial_from_bytes",
    "subject_of_der",
]

Certificate = x509.Certificate

_ATTR_OIDS = {
    "CN": NameOID.COMMON_NAME, "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "O": NameOID.ORGANIZATION_NAME, "L": NameOID.LOCALITY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME, "C": NameOID.COUNTRY_NAME,
    "SERIALNUMBER": NameOID.SERIAL_NUMBER,
}


@dataclass(frozen=True, kw_only=True)
class CertRequest:
    """What to put in a certificate; ``issuer``/``issuer_key`` absent means self-signed."""

    subject: str
    public_key: PublicKey
    serial: int
    not_before: dt.datetime
    not_after: dt.datetime
    ca: bool = False
    key_usage: Sequence[str] = ("digital_signature", "key_encipherment")
    extended_key_usage: Sequence[str] = ("server_auth", "client_auth")
    san_dns: Sequence[str] = field(default_factory=tuple)
    san_uri: Sequence[str] = field(default_factory=tuple)
    hash_name: str = "sha256"


def name_from_text(text: str) -> x509.Name:
    """Parse ``CN=a;OU=b;O=c`` (or ``,``-separated) most-specific-first into an x509.Name. Split as
    :func:`dn_key` splits (:func:`_dn_rdns`): a value's RFC 4514-escaped ``,`` or ``;`` is the value's, its
    escapes decoded (``O=X\\, Inc.`` is ``X, Inc.``: was a literal backslash kept, the value cut at every
    separator), and ``CN=a+O=b`` is one multi-valued RDN."""
    rdns = []
    for rdn in _dn_rdns(text):
        attrs = []
        for raw in rdn:
            key, eq, value = raw.partition("=")
            oid = _ATTR_OIDS.get(key.strip().upper())
            if not eq or oid is None:
                raise DecodeError(f"bad DN component {raw.strip()!r} (use CN=..;OU=..;O=..)", path="subject")
            try:
                attrs.append(x509.NameAttribute(oid, _unescaped(value).strip()))
            except ValueError as exc:  # an empty value, a country that is not two letters
                raise DecodeError(f"bad DN component {raw.strip()!r}: {exc}", path="subject") from None
        try:
            rdns.append(x509.RelativeDistinguishedName(attrs))
        except ValueError as exc:  # the same attribute twice in one + RDN
            raise DecodeError(f"bad DN component {'+'.join(rdn).strip()!r}: {exc}", path="subject") from None
    if not rdns:
        raise DecodeError(f"empty DN {text!r}", path="subject")
    # Most-specific first in text; X.509 stores least-specific first.
    return x509.Name(list(reversed(rdns)))


def _dn_text(name: x509.Name) -> str:
    return ";".join(rdn.rfc4514_string() for rdn in reversed(name.rdns))


_DN_TEXTS: IdentityMemo[x509.Name, str] = IdentityMemo(_dn_text)


def dn_text(name: x509.Name) -> str:
    """CUCM-style DN text: most-specific RDN first, ``;``-separated (spec §A.7). Computed once per
    ``Name`` object (a parsed certificate returns the same one each time)."""
    return _DN_TEXTS(name)


def subject_of_der(der: bytes) -> str:
    """The subject (:func:`dn_text`) of a DER certificate, for messages: ``(unreadable certificate, N
    bytes)`` when it does not decode (a server may present anything)."""
    try:
        return dn_text(load_cert_der(der).subject)
    except DecodeError:
        return f"(unreadable certificate, {len(der)} bytes)"


def dn_common_name(text: str) -> str:
    """The CN value of a DN written with ``;`` or ``,`` separators (``CN=ITLRECOVERY_lab-pub;OU=...`` ->
    ``ITLRECOVERY_lab-pub``), split as :func:`dn_key` splits (:func:`_dn_rdns`: ``CN=a\\, b,O=X`` ->
    ``a, b``, was ``a\\``); the whole text when it has no CN."""
    for rdn in _dn_rdns(text):
        for raw in rdn:
            key, sep, value = raw.partition("=")
            if sep and key.strip().upper() == "CN":
                return _unescaped(value).strip()
    return text


@lru_cache(maxsize=4096)
def normalise_dn(text: str) -> str:
    """Comparable form of a DN written with ``;`` or ``,`` separators, any case/spacing: its
    :func:`_dn_parts` joined with ``;`` (a ``;``, ``+`` or ``\\`` inside a value is kept escaped)."""
    return ";".join(_dn_parts(text))


def _dn_parts(text: str) -> list[str]:
    """The RDNs of a DN text, each lower case without spaces, in the text's order. The separator is ``;``
    when the text has an unescaped one, else ``,``. A text with no ``\\`` and no ``+`` (the common case)
    is simply split; otherwise :func:`_escaped_dn_parts` reads RFC 4514 escapes (so certutils'
    ``O=Cisco Systems\\, Inc.`` is one RDN, the value CUCM's ``;`` text writes ``O=Cisco Systems, Inc.``)
    and multi-valued ``+`` RDNs (their attributes sorted: ``CN=a+O=b`` is ``O=b+CN=a``)."""
    if "\\" not in text and "+" not in text:
        sep = ";" if ";" in text else ","
        return [p.strip().lower().replace(" ", "") for p in text.split(sep) if p.strip()]
    return _escaped_dn_parts(text)


#: what follows an unescaped ``+`` that starts another attribute of the same RDN (``+O=``, ``+2.5.4.3=``);
#: any other ``+`` is part of the value (a text whose writer did not escape it)
_NEXT_ATTRIBUTE = re.compile(r"\s*[A-Za-z0-9.-]+\s*=")
_HEX = frozenset("0123456789abcdefABCDEF")


def _escaped_dn_parts(text: str) -> list[str]:
    """:func:`_dn_parts` of a text with escapes or ``+``: split on unescaped separators only
    (:func:`_dn_rdns`); each attribute's escapes decoded (``\\,`` and ``\\2C`` are ``,``), lower-cased, spaces
    removed, then ``\\``, ``+`` and ``;`` escaped again so that distinct DNs keep distinct parts (a text
    without them reads as the simple split does); the attributes of a ``+`` RDN sorted and joined with ``+``.
    Linear in the text's length."""
    return ["+".join(sorted(_attribute_key(raw) for raw in rdn)) for rdn in _dn_rdns(text)]


def _dn_rdns(text: str) -> list[list[str]]:
    """The RDNs of a DN text in the text's order, each the raw text (``type=value``, escapes kept) of its
    attributes: split on unescaped separators only, ``;`` when the text has an unescaped one, else ``,``; an
    unescaped ``+`` followed by ``type=`` starts another attribute of the same RDN; blank RDNs dropped."""
    plain: list[int] = []  # indexes of the characters neither a backslash nor escaped by one
    i, n = 0, len(text)
    while i < n:
        if text[i] == "\\" and i + 1 < n:
            i += 3 if (i + 2 < n and text[i + 1] in _HEX and text[i + 2] in _HEX) else 2
            continue
        plain.append(i)
        i += 1
    sep = ";" if any(text[j] == ";" for j in plain) else ","
    rdns: list[list[str]] = []
    attrs: list[str] = []
    start = a = 0
    for j in [*(j for j in plain if text[j] in (sep, "+")), n]:
        if j < n and text[j] == "+":
            if _NEXT_ATTRIBUTE.match(text, j + 1):
                attrs.append(text[a:j])
                a = j + 1
            continue
        if text[start:j].strip():
            attrs.append(text[a:j])
            rdns.append(attrs)
        attrs = []
        start = a = j + 1
    return rdns


def _attribute_key(raw: str) -> str:
    """One attribute (``type=value``) as :func:`_escaped_dn_parts` compares it."""
    value = _unescaped(raw).strip().lower().replace(" ", "")
    return value.replace("\\", "\\\\").replace("+", "\\+").replace(";", "\\;")


def _unescaped(raw: str) -> str:
    """``raw`` with its RFC 4514 escapes decoded (``\\,`` is ``,``; a run of ``\\hh`` is UTF-8 bytes)."""
    out: list[str] = []
    hexed = bytearray()  # a run of \\hh escapes: UTF-8 bytes
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c == "\\" and i + 1 < n:
            if i + 2 < n and raw[i + 1] in _HEX and raw[i + 2] in _HEX:
                hexed.append(int(raw[i + 1:i + 3], 16))
                i += 3
                continue
            c = raw[i + 1]
            i += 1
        if hexed:
            out.append(hexed.decode("utf-8", "surrogateescape"))
            hexed.clear()
        out.append(c)
        i += 1
    if hexed:
        out.append(hexed.decode("utf-8", "surrogateescape"))
    return "".join(out)


def same_issuer(a: str | None, b: str) -> bool:
    """Do the issuer texts ``a`` and ``b`` name the same DN (:func:`dn_key`: separator, case, spacing and
    the order of the RDNs aside)? ``a`` None (a record without ISSUER_NAME) matches any ``b``."""
    return a is None or a == b or dn_key(a) == dn_key(b)


#: DN texts longer than this are not remembered (a header's may be 64 KB; the memo stays small)
_DN_KEY_MEMO_MAX = 1024


def dn_key(text: str) -> tuple[str, ...]:
    """A DN text as compared (spec §A.7, §B.4): its :func:`normalise_dn` RDNs, sorted; a value's escaped
    ``,``/``;`` (RFC 4514, certutils' ``O=Cisco Systems\\, Inc.``; :func:`dn_text` writes them too) is the
    value's, and a ``+`` RDN's attributes count in any order (was: split on every separator, so such an
    issuer was not the one CUCM's ``;`` text names: unknown-signer). CUCM writes a DN
    most-specific RDN first with ``;`` (the form :func:`dn_text` gives a certificate), certutils in the
    certificate's stored order with ``,``; "phones evidently accept either" (§A.7), so a header written one
    way names the record, TVS answer or image signer written the other way. (Was: the RDN order counted,
    so a certutils-signed ITL that TVS vouched for was "unknown to TVS" and locked the phone, and a config
    whose header listed the issuer in stored order was not the ITL's TFTP record's; the lab TVS answered
    such a QUERY "not found", and ``inspect`` named another signer than the phone.) Only which records
    name a signer depends on it: the record's key must still verify the signature, or equal the TLS
    peer's. Remembered for texts up to :data:`_DN_KEY_MEMO_MAX` characters."""
    if len(text) <= _DN_KEY_MEMO_MAX:
        return _dn_key_memo(text)
    return _dn_key_of(text)  # not kept in normalise_dn's memo


def _dn_key_of(text: str) -> tuple[str, ...]:
    parts = _dn_parts(text)
    return tuple(sorted(parts)) if parts else ("",)  # no RDN (blanks, separators): ("",), as it always was


_dn_key_memo = lru_cache(maxsize=4096)(_dn_key_of)


def serial_bytes(serial: int) -> bytes:
    """Big-endian, minimal length, no DER sign byte (spec §A.2 tag 5)."""
    return serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big")


def serial_from_bytes(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


_KU_ARGS = ("digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
            "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only")
_EKU = {"server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
        "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
        "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
        "ipsec_end_system": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5")}


def issue_certificate(
    req: CertRequest,
    *,
    issuer_key: PrivateKey,
    issuer: x509.Certificate | None = None,
) -> x509.Certificate:
    """Sign ``req`` with ``issuer_key``; self-signed when ``issuer`` is None."""
    subject = name_from_text(req.subject)
    issuer_name = issuer.subject if issuer is not None else subject
    ku_flags = {k: (k in req.key_usage) for k in _KU_ARGS}
    if req.ca:
        ku_flags["key_cert_sign"] = True
        ku_flags["crl_sign"] = True
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(req.public_key)
        .serial_number(req.serial)
        .not_valid_before(req.not_before)
        .not_valid_after(req.not_after)
        .add_extension(x509.BasicConstraints(ca=req.ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**ku_flags), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(req.public_key), critical=False)
    )
    if req.extended_key_usage:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([_EKU[e] for e in req.extended_key_usage]), critical=False)
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in req.san_dns]
    sans += [x509.UniformResourceIdentifier(u) for u in req.san_uri]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    algo: hashes.SHA256 | hashes.SHA384 | hashes.SHA512
    if req.hash_name == "sha384":
        algo = hashes.SHA384()
    elif req.hash_name == "sha512":
        algo = hashes.SHA512()
    else:
        algo = hashes.SHA256()
    return builder.sign(issuer_key, algo)


def cert_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def load_cert_der(data: bytes, *, path: str = "certificate", tag: int | None = None,
                  offset: int | None = None) -> x509.Certificate:
    """Strict DER load: anything cryptography rejects *or warns about* is a DecodeError.

    cryptography only warns today about some RFC 5280 violations (e.g. a negative serial) and
    will refuse them in a future release; refusing them now keeps behaviour stable. It also parses
    names, validity and extensions lazily, on first access: they are read here, so that a damaged
    issuer (a ValueError, or a KeyError for an unknown string type) is this DecodeError, not an
    exception out of whatever later shows or checks the certificate.
    """
    key = data if isinstance(data, bytes) else None  # bytearray/memoryview: not hashable, not cached
    cached = _LOADED.get(key) if key is not None else None
    if cached is not None:
        return cached
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            cert = _parsed(x509.load_der_x509_certificate(data))
        except _LOAD_ERRORS as exc:
            raise DecodeError(f"not a DER X.509 certificate: {_why(exc)}", path=path, tag=tag,
                              offset=offset) from None
    if caught:
        raise DecodeError(f"certificate violates RFC 5280: {caught[0].message}", path=path, tag=tag,
                          offset=offset)
    if key is not None:
        if len(_LOADED) >= _LOADED_MAX:
            _LOADED.clear()
        _LOADED[key] = cert
    return cert


#: What cryptography raises on a certificate it cannot parse, at load or on first access to a field.
_LOAD_ERRORS = (ValueError, TypeError, KeyError, x509.InvalidVersion, x509.DuplicateExtension,
                x509.UnsupportedGeneralNameType)


def _parsed(cert: x509.Certificate) -> x509.Certificate:
    """``cert`` with its lazily parsed fields read once (see :func:`load_cert_der`)."""
    cert.serial_number  # noqa: B018 - parsed lazily; force the checks that warn
    cert.subject, cert.issuer, cert.not_valid_before_utc, cert.not_valid_after_utc  # noqa: B018
    cert.extensions  # noqa: B018
    return cert


def der_extent_problem(data: bytes) -> tuple[str, int] | None:
    """What is wrong with the outermost DER element of ``data`` (a stored certificate) and the offset
    where it goes wrong, or None when that element is one SEQUENCE filling ``data`` exactly (what is
    inside is for :func:`load_cert_der`). Says what cryptography's "ShortData" does not: that a file
    is truncated, and how long it should be."""
    n = len(data)
    if n == 0:
        return "empty (0 bytes)", 0
    if data[0] != 0x30:
        return f"tag 0x{data[0]:02X}, expected 0x30 (a DER SEQUENCE)", 0
    if n < 2:
        return "truncated: the SEQUENCE has no length", 1
    first = data[1]
    if first < 0x80:
        header, length = 2, first
    else:
        size = first & 0x7F
        if size == 0 or size > 4:
            return f"length byte 0x{first:02X} is not a DER length", 1
        if n < 2 + size:
            return "truncated: the SEQUENCE's length is cut short", n
        header, length = 2 + size, int.from_bytes(data[2:2 + size], "big")
    if header + length > n:
        return f"truncated: the certificate's SEQUENCE declares {header + length} bytes, the file has {n}", n
    if header + length < n:
        return f"{n - header - length} bytes after the end of the certificate", header + length
    return None


def _why(exc: Exception) -> str:
    """Why cryptography did not load a certificate, readable: an unknown string type in a name, a parse
    error of the ASN.1 (:func:`_asn1_why`), else cryptography's own text."""
    if isinstance(exc, KeyError):
        return f"unknown string type {exc} in a name"
    text = str(exc)
    return _asn1_why(text) if "ParseError" in text else text


#: what cryptography's ASN.1 parser says went wrong (its ``ParseError``'s kind), as we say it
_ASN1_KINDS = {"UnexpectedTag": "unexpected ASN.1 tag", "InvalidTag": "invalid ASN.1 tag",
               "InvalidLength": "invalid ASN.1 length",
               "ShortData": "truncated (the data ends inside an element)",
               "ExtraData": "extra bytes after an element", "InvalidValue": "invalid ASN.1 value",
               "EncodedDefault": "a DEFAULT value encoded (DER leaves it out)",
               "IntegerOverflow": "an integer too large", "InvalidSetOrdering": "a SET OF not in DER order"}
#: universal ASN.1 tags (X.680 §8.6) an unexpected one is named by
_UNIVERSAL_TAGS = {1: "BOOLEAN", 2: "INTEGER", 3: "BIT STRING", 4: "OCTET STRING", 5: "NULL",
                   6: "OBJECT IDENTIFIER", 12: "UTF8String", 16: "SEQUENCE", 17: "SET", 19: "PrintableString",
                   22: "IA5String", 23: "UTCTime", 24: "GeneralizedTime"}
#: cryptography's names of a certificate's fields (``Type::field``) as RFC 5280 §4.1 names them; another is
#: said in camel case (``not_before``: notBefore)
_RFC5280_FIELDS = {"Certificate::tbs_cert": "tbsCertificate",
                   "Certificate::signature_alg": "signatureAlgorithm",
                   "Certificate::signature": "signatureValue", "TbsCertificate::serial": "serialNumber",
                   "TbsCertificate::signature_alg": "signature",
                   "TbsCertificate::spki": "subjectPublicKeyInfo",
                   "TbsCertificate::raw_extensions": "extensions", "AlgorithmIdentifier::oid": "algorithm",
                   "AlgorithmIdentifier::params": "parameters", "AttributeTypeValue::type_id": "type"}
_PARSE_KIND = re.compile(r"ParseError \{ kind: (\w+)(?: \{ actual: Tag \{ value: (\d+), constructed: \w+, "
                         r"class: (\w+) \} \})?")
_PARSE_LOCATION = re.compile(r"location: \[([^\]]*)\]")


def _asn1_why(text: str) -> str:
    """cryptography's ``error parsing asn1 value: ParseError { kind: UnexpectedTag { actual: Tag { value: 2,
    ... } }, location: ["Certificate::tbs_cert"] }`` as ``unexpected ASN.1 tag (INTEGER) at tbsCertificate``
    (RFC 5280's field names); a text not of that form is ``ASN.1 parse error`` (was printed raw)."""
    kind = _PARSE_KIND.search(text)
    what = _ASN1_KINDS.get(kind.group(1)) if kind else None
    if kind is None or what is None:
        return "ASN.1 parse error"
    if kind.group(2) is not None and kind.group(3) == "Universal" and int(kind.group(2)) in _UNIVERSAL_TAGS:
        what += f" ({_UNIVERSAL_TAGS[int(kind.group(2))]})"
    where = _PARSE_LOCATION.search(text)
    path = _field_path(where.group(1)) if where else ""
    return f"{what} at {path}" if path else what


def _field_path(location: str) -> str:
    """``"Certificate::tbs_cert", "TbsCertificate::subject", 0, 0`` as ``tbsCertificate.subject[0][0]``."""
    path = ""
    for part in (p.strip().strip('"') for p in location.split(",") if p.strip()):
        if part.isdigit():
            path += f"[{part}]"
            continue
        name = _RFC5280_FIELDS.get(part) or _camel(part.rpartition("::")[2])
        path += f".{name}" if path else name
    return path


def _camel(name: str) -> str:
    """``not_before`` as ``notBefore``."""
    head, *rest = name.split("_")
    return head + "".join(w.capitalize() for w in rest)


#: Certificates that loaded cleanly, by DER bytes (immutable objects; a fleet of phones meets the
#: same few certificates thousands of times). Failures are never cached.
_LOADED: dict[bytes, x509.Certificate] = {}
_LOADED_MAX = 1024


def load_certs_pem(data: bytes, *, source: str = "pem") -> list[x509.Certificate]:
    """All certificates in a PEM blob (which may also hold a private key); as strict as
    :func:`load_cert_der`: what cryptography warns about is a DecodeError too."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            certs = [_parsed(c) for c in x509.load_pem_x509_certificates(data)]
        except _LOAD_ERRORS as exc:
            if b"CERTIFICATE" not in data:
                return []
            why = pem_problem(data, "CERTIFICATE") or _why(exc)
            raise DecodeError(f"cannot load PEM certificates: {why}", path=source) from None
    if caught:
        raise DecodeError(f"certificate violates RFC 5280: {caught[0].message}", path=source)
    return certs


#: DSA's public-key algorithm (RFC 3279): refused before its key is loaded — cryptography 51 warns on
#: loading one (a deprecation warning on stderr, an error under pytest), and no phone verifies with it
_DSA_OID = "1.2.840.10040.4.1"


def cert_public_key(cert: x509.Certificate) -> PublicKey:
    """The certificate's RSA or EC key; DecodeError for any other (a certificate from the network: a
    TLS peer's, one TVS returned, a trust-list record's)."""
    oid = getattr(cert, "public_key_algorithm_oid", None)  # not in every cryptography this project takes
    if oid is not None and oid.dotted_string == _DSA_OID:
        raise DecodeError("certificate key is neither RSA nor EC (DSA)", path="certificate")
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise DecodeError(f"certificate public key cannot be loaded: {exc}", path="certificate") from None
    if not isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey)):
        raise DecodeError("certificate key is neither RSA nor EC", path="certificate")
    return key


def cert_signature_bytes(cert: x509.Certificate) -> bytes:
    """The certificate's own signature value (record tag 8, spec §B.2)."""
    return cert.signature


def fingerprint(cert_or_der: x509.Certificate | bytes, alg: str = "sha1") -> str:
    """Lower-case hex digest of the DER certificate (``md5``, ``sha1`` or ``sha256``)."""
    der = cert_or_der if isinstance(cert_or_der, bytes) else cert_der(cert_or_der)
    return hashlib.new(alg, der, usedforsecurity=False).hexdigest()
