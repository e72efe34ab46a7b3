"""Seeded self-signed identities and the file signers made of them, for the tests that build signed and
encrypted files (``.sgn``, ``.enc.sgn``) without a lab (each module had a copy)."""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

from cryptography import x509

from phoneemu.crypto import certs
from phoneemu.crypto.keys import KeySpec, PrivateKey, generate_key
from phoneemu.formats.header import FileSigner


@cache
def self_signed(subject: str, *, seed: str, serial: int,
                spec: str = "rsa1024") -> tuple[PrivateKey, x509.Certificate]:
    """A ``spec`` key made from ``seed`` (the same key at every run) and a certificate for ``subject``
    issued by that key itself, valid 2024 to 2044; made once per process."""
    key = generate_key(KeySpec.parse(spec), unsafe_seed=seed)
    cert = certs.issue_certificate(
        certs.CertRequest(subject=subject, public_key=key.public_key(), serial=serial,
                          not_before=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
                          not_after=dt.datetime(2044, 1, 1, tzinfo=dt.UTC)),
        issuer_key=key)
    return key, cert


def file_signer(identity: tuple[PrivateKey, x509.Certificate]) -> FileSigner:
    """The signer of a file's header (spec §C.1) holding ``identity``'s key and certificate."""
    key, cert = identity
    return FileSigner(key=key, cert=cert)


def signer_pem(folder: Path, subject: str, *, seed: str, serial: int) -> Path:
    """``folder/signer.pem``: the certificate of :func:`self_signed` (a signer a file names, for commands
    that take ``--cert`` or a certificate file)."""
    _, cert = self_signed(subject, seed=seed, serial=serial)
    path = folder / "signer.pem"
    path.write_bytes(certs.cert_pem(cert))
    return path


def capf_ca(subject: str, now: dt.datetime) -> tuple[PrivateKey, x509.Certificate]:
    """A CAPF-like CA for the phone's CAPF client tests: a fresh EC P-256 key and its self-signed CA
    certificate, valid from a day before ``now`` for ten years."""
    key = generate_key(KeySpec(kind="ec", curve="p256"))
    req = certs.CertRequest(subject=subject, public_key=key.public_key(), serial=1,
                            not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=3650),
                            ca=True)
    return key, certs.issue_certificate(req, issuer_key=key)
