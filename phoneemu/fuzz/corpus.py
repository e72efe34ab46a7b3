"""Seed corpus for fuzzing: valid ITL, CTL, ``.sgn`` and ``.enc.sgn`` files (spec §A, §B, §C.1, §C.3).

Rules implemented here:

* Seeds are built with the formats builders (``trustlist.build``, ``signed.build``,
  ``encrypted.build_pki``) from lab-like identities: ITLRecovery (SAST), CallManager
  (CCM+TFTP, the file signer of ``.sgn``/``.enc.sgn``), TVS, CAPF, an EC application server and a
  phone (the ``.enc.sgn`` recipient).
* Everything is deterministic: keys come from ``generate_key(..., unsafe_seed=...)`` with fixed
  labels, certificates carry fixed dates and serials, RSA PKCS#1 v1.5 signatures are
  deterministic, and the ``.enc.sgn`` IV, AES key and key-wrap padding come from a seeded
  ``random.Random`` (the wrap is redone with seeded padding, see ``_seeded_wrap``). The same
  corpus is therefore rebuilt by every run, which is what makes ``--seed`` reproduce inputs.
* Fuzzing keys are RSA-1024 by default (spec §A.5 code 1): re-signing a mutant costs ~0.1 ms
  instead of ~1 ms at 2048 bits. Key material stays in memory; nothing is written to disk.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal

from cryptography import x509

from phoneemu.crypto import certs
from phoneemu.crypto.keys import KeySpec, PrivateKey, generate_key, private_key_pem
from phoneemu.errors import EncodeError
from phoneemu.files import atomic_write, read_at_most
from phoneemu.formats import signed, trustlist
from phoneemu.formats.header import FileSigner
from phoneemu.formats.trustlist import Role, TrustRecord
from phoneemu.fuzz import FORMATS, MESSAGE_FORMATS
from phoneemu.fuzz.mediamsg import MEDIA_FORMATS, media_seeds
from phoneemu.fuzz.messages import message_seeds
from phoneemu.fuzz.sipmsg import SIP_FORMATS, sip_seeds

__all__ = ["FORMATS", "KEY_FILES", "NAMED_FORMATS", "Corpus", "Identity", "build_corpus", "export_corpus",
           "renamed", "with_seed_files"]

_TIMESTAMP = 1_767_225_600  # 2026-01-01 00:00:00 UTC
_NOT_BEFORE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
_NOT_AFTER = dt.datetime(2045, 1, 1, tzinfo=dt.UTC)
_CONFIG = (b'<?xml version="1.0" encoding="UTF-8"?>\n<device><fullConfig>true</fullConfig>'
           b"<deviceSecurityMode>2</deviceSecurityMode><loadInformation>sip88xx.14-2-1</loadInformation>"
           b"</device>\n")
#: a config as the lab writes one for a registering phone: its CallManager group (spec §H.5) and SIP
#: digest credentials (§G.13), what ``phone/sip.py`` reads from it
_CONFIG_SIP = (b'<?xml version="1.0" encoding="UTF-8"?>\n<device><fullConfig>true</fullConfig>'
               b"<deviceSecurityMode>3</deviceSecurityMode><devicePool><callManagerGroup><members>"
               b'<member priority="0"><callManager><ports><sipPort>5060</sipPort><securedSipPort>5061'
               b"</securedSipPort></ports><processNodeName>cucm-pub</processNodeName></callManager></member>"
               b'<member priority="1"><callManager><processNodeName>10.0.0.2</processNodeName></callManager>'
               b'</member></members></callManagerGroup></devicePool><sipLines><line button="1">'
               b"<authName>alice</authName><authPassword>s3cret</authPassword></line></sipLines></device>\n")

#: a config whose extra element carries carriage returns as ``&#13;`` in its text and an attribute:
#: found by the fuzzing campaign (a CR in an extra's text was read back as LF, so build/parse did not
#: round-trip; ``formats/config.py`` now writes ``&#13;``)
_CONFIG_EXTRA_CR = (b'<?xml version="1.0" encoding="UTF-8"?>\n<device><fullConfig>true</fullConfig>'
                    b'<vendorConfig>a&#13;b<x y="1&#13;2">&#13;&#10;</x>&#13;</vendorConfig></device>\n')


@dataclass(frozen=True, kw_only=True)
class Identity:
    """A private key and its self-signed certificate."""

    name: str
    key: PrivateKey
    cert: x509.Certificate

    @property
    def signer(self) -> FileSigner:
        return FileSigner(key=self.key, cert=self.cert)


@dataclass(frozen=True, kw_only=True)
class Corpus:
    """Valid seed files of one format and the key material a target needs to check them.

    ``signer`` re-signs mutants (the SAST identity for trust lists, whose record is in every seed;
    the TFTP identity for ``.sgn``/``.enc.sgn``, the image-signing one for firmware); ``verify_cert``
    verifies ``.sgn``/``.enc.sgn`` (firmware: the image-signing certificate);
    ``recipient`` decrypts ``.enc.sgn``. ``donor_certs`` / ``donor_signatures`` feed swap mutations.
    """

    fmt: str
    seeds: tuple[bytes, ...]
    names: tuple[str, ...]
    signer: Identity
    verify_cert: x509.Certificate
    recipient: Identity
    donor_certs: tuple[bytes, ...]
    donor_signatures: tuple[bytes, ...]


def _identity(name: str, subject: str, serial: int, *, bits: int, ec: bool = False) -> Identity:
    spec = KeySpec(kind="ec", curve="p256") if ec else KeySpec(kind="rsa", bits=bits)
    key = generate_key(spec, unsafe_seed=f"phoneemu-fuzz:{name}:{bits}")
    req = certs.CertRequest(subject=subject, public_key=key.public_key(), serial=serial,
                            not_before=_NOT_BEFORE, not_after=_NOT_AFTER)
    issuer_key = key if not ec else generate_key(KeySpec(kind="rsa", bits=bits),
                                                 unsafe_seed=f"phoneemu-fuzz:itlrecovery:{bits}")
    cert = certs.issue_certificate(req, issuer_key=issuer_key)
    return Identity(name=name, key=key, cert=cert)


@lru_cache(maxsize=4)
def _identities(bits: int) -> dict[str, Identity]:
    ids = [
        _identity("itlrecovery", "CN=ITLRECOVERY_fuzz-pub;OU=LAB;O=phoneemu;C=US", 0x6BA5DE3A0011, bits=bits),
        _identity("callmanager", "CN=fuzz-pub;OU=LAB;O=phoneemu;L=Lab;ST=Lab;C=US", 0x83E9080031, bits=bits),
        _identity("tvs", "CN=fuzz-pub-tvs;OU=LAB;O=phoneemu;C=US", 0x7001, bits=bits),
        _identity("capf", "CN=CAPF-fuzz;OU=LAB;O=phoneemu;C=US", 0x4001, bits=bits),
        _identity("appserver", "CN=apps.fuzz.lab;O=phoneemu;C=US", 0x5001, bits=bits, ec=True),
        _identity("phone", "CN=SEP001122334455;OU=LAB;O=phoneemu;C=US", 0x9001, bits=bits),
        _identity("imagesigning", "CN=ImageSigning-fuzz;OU=LAB;O=phoneemu;C=US", 0x1A6E, bits=bits),
    ]
    return {i.name: i for i in ids}


def _trust_seeds(kind: str, ids: dict[str, Identity]) -> list[tuple[str, bytes]]:
    sast, ccm, tvs, capf, app = (ids[n] for n in ("itlrecovery", "callmanager", "tvs", "capf", "appserver"))
    rec = TrustRecord.from_certificate
    full = [rec(sast.cert, Role.SAST), rec(ccm.cert, Role.CCM_TFTP, dns_name="fuzz-pub", ip="10.0.0.1"),
            rec(tvs.cert, Role.TVS, dns_name="fuzz-pub"), rec(capf.cert, Role.CAPF),
            rec(app.cert, Role.APP_SERVER)]
    build = trustlist.build
    signer = sast.signer
    k: Literal["CTL", "ITL"] = "ITL" if kind == "itl" else "CTL"
    out = [
        ("full", build(kind=k, records=full, signer=signer, timestamp=_TIMESTAMP,
                       signer_version=(1, 0) if k == "ITL" else None)),
        ("sast-only-sha512", build(kind=k, records=full[:1], signer=signer, timestamp=_TIMESTAMP,
                                   hash_alg=3)),
        ("rollback", build(kind=k, records=trustlist.rollback_records(full), signer=signer,
                           timestamp=_TIMESTAMP, hash_alg=2)),
    ]
    if k == "CTL":
        capf_nosig = TrustRecord(role=Role.CAPF, subject=full[3].subject, issuer=full[3].issuer,
                                 serial=full[3].serial, public_key=full[3].public_key,
                                 certificate=full[3].certificate, ip_address=b"\x0a\x00\x00\x02")
        blank = trustlist.empty_record(Role.CCM_TFTP, dns_name="10.48.47.153", ip="10.48.47.153")
        recs = [full[0], rec(ccm.cert, Role.SAST), blank, capf_nosig]
        out.append(("etoken-like", build(kind=k, records=recs, signer=signer, timestamp=_TIMESTAMP)))
    return out


def _enc_seeds(ids: dict[str, Identity], seed: int) -> list[tuple[str, bytes]]:
    try:
        from phoneemu.formats import encrypted
    except ModuleNotFoundError as exc:  # pragma: no cover - until formats.encrypted exists
        raise EncodeError("phoneemu.formats.encrypted is not available", path="fuzz.corpus") from exc
    rng = random.Random(seed)
    pad_rng = random.Random(seed + 1)
    ccm, phone = ids["callmanager"], ids["phone"]
    out = []
    plain = (("pki-sha1", _CONFIG, 1), ("pki-sha512", _CONFIG * 3, 3), ("pki-16", b"0123456789abcdef", 1))
    for name, pt, alg in plain:
        blob = encrypted.build_pki(plaintext=pt, filename="SEP001122334455.cnf.xml.enc.sgn",
                                   signer=ccm.signer, recipient_cert=phone.cert, timestamp=_TIMESTAMP,
                                   hash_alg=alg, rand=rng.randbytes)
        out.append((name, _seeded_wrap(blob, ids, pad_rng)))
    return out


def _seeded_wrap(blob: bytes, ids: dict[str, Identity], rng: random.Random) -> bytes:
    """``blob`` with its wrapped key (tag 25) re-wrapped with seeded PKCS#1 v1.5 padding, re-signed.

    The library's RSA encryption pads with fresh random bytes, so ``build_pki`` alone gives
    another file in every process; the fuzzer needs the same seeds everywhere (``--seed`` replays).
    The block ``00 02 PS 00 K`` (PS: non-zero bytes from ``rng``) is encrypted with the recipient's
    public key, which is exactly what a PKCS#1 v1.5 wrap is.
    """
    from dataclasses import replace

    from phoneemu.crypto import cipher
    from phoneemu.formats import encrypted
    from phoneemu.formats.header import sign_header

    ef = encrypted.parse(blob)
    enc = ef.encryption
    phone_key = ids["phone"].key
    key = cipher.rsa_unwrap(phone_key, enc.wrapped_key or b"")  # DecryptionError unless RSA
    numbers = phone_key.public_key().public_numbers()
    n: int = getattr(numbers, "n")  # noqa: B009 - RSA public numbers (modulus, exponent)
    e: int = getattr(numbers, "e")  # noqa: B009
    size = (n.bit_length() + 7) // 8
    block = b"\x00\x02" + bytes(rng.randrange(1, 256) for _ in range(size - 3 - len(key))) + b"\x00" + key
    wrapped = pow(int.from_bytes(block, "big"), e, n).to_bytes(size, "big")
    header = replace(ef.header, encryption=replace(enc, wrapped_key=wrapped))
    return sign_header(header, ef.ciphertext, ids["callmanager"].signer)


def _firmware_seeds(ids: dict[str, Identity]) -> list[tuple[str, bytes]]:
    """Signed loads (spec §D, our layout in :mod:`phoneemu.formats.firmware`) signed by the image-signing
    identity: a SHA-512 ``.loads``, a SHA-1 one, an empty image and a ``.cop.sgn``-named package."""
    from phoneemu.formats import firmware

    s = ids["imagesigning"].signer
    image = bytes(range(256)) * 2
    return [
        ("sip88xx-sha512", firmware.build(load_name="sip88xx.14-2-1", payload=image, signer=s,
                                          timestamp=_TIMESTAMP)),
        ("sip78xx-sha1", firmware.build(load_name="sip78xx.12-8-1", payload=image[:64], signer=s,
                                        timestamp=_TIMESTAMP, hash_alg=1)),
        ("empty-image", firmware.build(load_name="SCCP70.9-4-2", payload=b"", signer=s,
                                       timestamp=_TIMESTAMP)),
        ("cop-package.cop.sgn", firmware.build(load_name="cmterm-devicepack.14-2", payload=image[:100],
                                               signer=s, timestamp=_TIMESTAMP,
                                               filename="cmterm-devicepack.14-2.cop.sgn")),
    ]


@lru_cache(maxsize=16)
def build_corpus(fmt: str, *, bits: int = 1024) -> Corpus:
    """The seed corpus of ``fmt`` (``itl``, ``ctl``, ``sgn`` or ``enc``), built once per process."""
    if fmt not in FORMATS:
        raise EncodeError(f"unknown fuzz format {fmt!r} (one of {', '.join(FORMATS)})", path="format")
    ids = _identities(bits)
    if fmt in ("itl", "ctl"):
        named = _trust_seeds(fmt, ids)
        signer = ids["itlrecovery"]
    elif fmt == "sgn":
        s = ids["callmanager"].signer
        named = [
            ("config", signed.build(body=_CONFIG, filename="SEP001122334455.cnf.xml.sgn", signer=s,
                                    timestamp=_TIMESTAMP)),
            ("config-sip", signed.build(body=_CONFIG_SIP, filename="SEP001122334456.cnf.xml.sgn", signer=s,
                                        timestamp=_TIMESTAMP)),
            ("ringlist-sha512", signed.build(body=b"<CiscoIPPhoneRingList/>", filename="Ringlist.xml.sgn",
                                             signer=s, timestamp=_TIMESTAMP, hash_alg=3)),
            ("empty-body", signed.build(body=b"", filename="empty.sgn", signer=s, timestamp=_TIMESTAMP,
                                        hash_alg=2)),
            ("config-extra-cr", signed.build(body=_CONFIG_EXTRA_CR, filename="SEP001122334457.cnf.xml.sgn",
                                             signer=s, timestamp=_TIMESTAMP)),
        ]
        signer = ids["callmanager"]
    elif fmt in SIP_FORMATS:
        named = sip_seeds(fmt)
        signer = ids["callmanager"]  # messages are not signed: nothing is re-signed
    elif fmt in MEDIA_FORMATS:
        named = media_seeds(fmt)
        signer = ids["callmanager"]  # not signed (SRTP's keys are the module's fixed fuzzing keys)
    elif fmt in MESSAGE_FORMATS:
        named = message_seeds(fmt, certs.cert_der(ids["callmanager"].cert), certs.cert_der(ids["phone"].cert))
        signer = ids["callmanager"]  # messages are not signed: nothing is re-signed
    elif fmt == "firmware":
        named = _firmware_seeds(ids)
        signer = ids["imagesigning"]
    else:
        named = _enc_seeds(ids, 0x5EED)
        signer = ids["callmanager"]
    # the image-signing identity donates to firmware only: the other formats' mutants of a --seed stay
    donor_ids = [i for n, i in ids.items() if fmt == "firmware" or n != "imagesigning"]
    donors = tuple(certs.cert_der(i.cert) for i in donor_ids)
    donor_sigs = tuple(certs.cert_signature_bytes(i.cert) for i in donor_ids)
    return Corpus(fmt=fmt, seeds=tuple(b for _, b in named), names=tuple(n for n, _ in named),
                  signer=signer, recipient=ids["phone"],
                  verify_cert=ids["imagesigning" if fmt == "firmware" else "callmanager"].cert,
                  donor_certs=donors, donor_signatures=donor_sigs)


#: Largest seed file taken from ``--seed-dir`` (a trust list is at most 64 KiB, spec §B.5).
MAX_SEED_FILE = 1 << 20
#: At most this many ``--seed-dir`` files, holding at most this many bytes together (all kept in memory).
MAX_SEED_FILES = 1000
MAX_SEED_TOTAL = 64 << 20
_SUFFIX = {"itl": ".tlv", "ctl": ".tlv", "sgn": ".sgn", "enc": ".enc.sgn", "firmware": ".loads",
           "tvs-response": ".bin", "tvs-request": ".bin", "capf": ".bin",
           "sip-response": ".sip", "sip-request": ".sip", "srtp": ".srtp", "sdp": ".sdp"}


#: The key material :func:`export_corpus` writes beside the seeds: not seeds of a ``--seed-dir``.
KEY_FILES = ("signer.pem", "verify.pem", "recipient.pem", "recipient.key")


def with_seed_files(corpus: Corpus, folder: Path) -> Corpus:
    """``corpus`` plus every regular file of ``folder`` (sorted by name, so the same folder gives the
    same inputs for a ``--seed``), e.g. files fetched from a real cluster or exported and edited (the
    export's certificates and key, :data:`KEY_FILES`, are not seeds). Mutants of them that are
    re-signed are signed with the corpus key, as for the built-in seeds."""
    if not folder.is_dir():  # path "seed-dir": the message opens with the option, said once (errors._render)
        raise EncodeError(f"--seed-dir {folder}: {'not a folder' if folder.exists() else 'no such folder'}",
                          path="seed-dir")
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and not p.name.startswith(".") and p.name not in KEY_FILES)
    if not files:
        raise EncodeError(f"--seed-dir {folder}: holds no files", path="seed-dir")
    if len(files) > MAX_SEED_FILES:
        raise EncodeError(f"--seed-dir {folder}: {len(files)} files, more than {MAX_SEED_FILES}: choose the "
                          "seeds that matter", path="seed-dir")
    seeds, names = list(corpus.seeds), list(corpus.names)
    total = 0
    for p in files:
        try:
            data = read_at_most(p, MAX_SEED_FILE, what="seed file")
        except OSError as exc:  # named: a failed read() names no file (was: "Input/output error" alone)
            raise EncodeError(f"--seed-dir: {p}: cannot read it: {exc.strerror or exc}",
                              path="seed-dir") from None
        total += len(data)
        if total > MAX_SEED_TOTAL:  # every seed stays in memory for the whole run
            raise EncodeError(f"--seed-dir {folder}: the files hold more than {MAX_SEED_TOTAL} bytes "
                              f"(reached at {p.name})", path="seed-dir")
        if not data:
            raise EncodeError(f"--seed-dir: {p} is empty", path="seed-dir")
        if data not in seeds:
            seeds.append(data)
            names.append(p.name)
    return replace(corpus, seeds=tuple(seeds), names=tuple(names))


#: Formats whose header FILENAME a phone compares with the name it requested (spec §G.4, §D).
NAMED_FORMATS = ("sgn", "enc", "firmware")


def renamed(corpus: Corpus, name: str) -> Corpus:
    """``corpus`` with every seed's header FILENAME set to ``name`` (the name a phone requested, base
    name) and re-signed with the corpus key — for a firmware load also its manifest's load name when
    ``name`` is ``<load>.loads`` — so that ``--serve`` mutants pass the §G.4 name rule (and §D
    ``D-wrong-load``) and reach the parser. A seed that does not parse (a ``--seed-dir`` file) is kept."""
    from dataclasses import replace as dc_replace

    from phoneemu.errors import DecodeError
    from phoneemu.formats import firmware
    from phoneemu.formats.header import parse_envelope, sign_header

    if corpus.fmt not in NAMED_FORMATS:
        return corpus
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    load = base[: -len(".loads")] if base.lower().endswith(".loads") else None
    seeds = []
    for data in corpus.seeds:
        try:
            raw, ph = parse_envelope(data, fmt=corpus.fmt, limit=MAX_SEED_FILE)
            body = raw[ph.body_offset:]
            if corpus.fmt == "firmware" and load is not None:
                _, image = firmware.parse_payload(body)
                body = firmware.build_payload(load, image)
            header = dc_replace(ph.header, filename=base, layout=None, header_length=0)
            seeds.append(sign_header(header, body, corpus.signer.signer))
        except (DecodeError, EncodeError):
            seeds.append(data)
    return replace(corpus, seeds=tuple(seeds))


def export_corpus(corpus: Corpus, folder: Path) -> list[Path]:
    """Write the seeds (``NN-name.tlv`` / ``.sgn`` / ``.enc.sgn``) and the key material a harness needs
    to check them: the re-signing signer's certificate, the certificate ``.sgn``/``.enc.sgn`` verify
    with, and the ``.enc.sgn`` recipient's key and certificate. These are fixed fuzzing keys derived
    from public labels (``unsafe_seed``): they protect nothing."""
    if folder.exists() and not folder.is_dir():
        raise EncodeError(f"--export-corpus {folder}: exists and is not a folder", path="export-corpus")
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    # atomic_write: a file (or a planted link) already there is replaced, never written through, and
    # the key is 0600 from its first byte
    for i, (name, data) in enumerate(zip(corpus.names, corpus.seeds, strict=True)):
        suffix = "" if name.endswith((_SUFFIX[corpus.fmt], ".cop.sgn")) else _SUFFIX[corpus.fmt]
        p = folder / f"{i:02d}-{name}{suffix}"
        atomic_write(p, data)
        written.append(p)
    keys = dict(zip(KEY_FILES, (certs.cert_pem(corpus.signer.cert), certs.cert_pem(corpus.verify_cert),
                                certs.cert_pem(corpus.recipient.cert), private_key_pem(corpus.recipient.key)),
                    strict=True))
    for name, blob in keys.items():
        atomic_write(folder / name, blob, mode=0o600 if name.endswith(".key") else 0o644)
        written.append(folder / name)
    return written
