"""Regenerate every binary vector in tests/vectors/ deterministically (see README.md).

    python tests/vectors/make_vectors.py          # rewrite the vectors
    python tests/vectors/make_vectors.py --check  # exit 1 if a vector would change

Keys come from ``crypto.keys.generate_key(spec, unsafe_seed=...)`` and are never written to disk;
certificates are RSA-signed (PKCS#1 v1.5 is deterministic), timestamps are fixed. The module is
imported by tests/conftest.py so that tests get the very same keys and certificates.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from cryptography import x509

from phoneemu.crypto import certs, keys
from phoneemu.crypto.keys import PrivateKey
from phoneemu.formats import header as hdr
from phoneemu.formats import signed
from phoneemu.formats import trustlist as tlist
from phoneemu.formats.trustlist import Role, TrustRecord

HERE = Path(__file__).resolve().parent
NOT_BEFORE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
NOT_AFTER = dt.datetime(2045, 1, 1, tzinfo=dt.UTC)
LATE = dt.datetime(2055, 1, 1, tzinfo=dt.UTC)  # GeneralizedTime (used only to fit sizes)
TIMESTAMP = 1767115542  # 0x69540B16, 2025-12-30 17:25:42 UTC, the §A.3a worked example's value


@dataclass(frozen=True)
class Identity:
    """A seeded key and its certificate."""

    key: PrivateKey
    cert: x509.Certificate

    @property
    def signer(self) -> hdr.FileSigner:
        return hdr.FileSigner(key=self.key, cert=self.cert)


_KEYS: dict[tuple[str, str], PrivateKey] = {}
_IDS: dict[tuple[object, ...], Identity] = {}


def seeded_key(spec: str, seed: str) -> PrivateKey:
    """``generate_key(KeySpec.parse(spec), unsafe_seed=seed)``, memoised."""
    k = _KEYS.get((spec, seed))
    if k is None:
        k = _KEYS[(spec, seed)] = keys.generate_key(keys.KeySpec.parse(spec), unsafe_seed=seed)
    return k


def serial_for(name: str, nbytes: int = 16, top_bit: bool = False) -> int:
    """A fixed serial of exactly ``nbytes`` bytes derived from ``name``."""
    raw = bytearray(hashlib.sha256(name.encode()).digest()[:nbytes])
    raw[0] = (raw[0] | 0x80) if top_bit else ((raw[0] & 0x7F) | 0x10)
    return int.from_bytes(raw, "big")


def identity(subject: str, *, spec: str = "rsa2048", seed: str | None = None, serial: int | None = None,
             issuer: Identity | None = None, der_len: int | None = None, ca: bool = False) -> Identity:
    """Seeded key + certificate for ``subject`` (self-signed unless ``issuer``).

    ``der_len`` pads a SubjectAltName so the DER certificate has exactly that many bytes (used to
    reproduce record lengths of spec §B.6).
    """
    memo = (subject, spec, seed, serial, id(issuer), der_len, ca)
    got = _IDS.get(memo)
    if got is not None:
        return got
    key = seeded_key(spec, seed or subject)
    ikey = issuer.key if issuer is not None else key
    icert = issuer.cert if issuer is not None else None

    def make(pad: int, slim: bool = False, chunk: int = 60, late: dt.datetime | None = None
             ) -> x509.Certificate:
        names: tuple[str, ...] = ()
        if pad > 0:
            names = tuple(f"{'p' * min(chunk, pad - i)}.lab" for i in range(0, pad, chunk))
        req = certs.CertRequest(subject=subject, public_key=key.public_key(),
                                serial=serial if serial is not None else serial_for(subject),
                                not_before=NOT_BEFORE, not_after=late if late else NOT_AFTER, ca=ca,
                                extended_key_usage=() if slim else ("server_auth", "client_auth"),
                                san_dns=names)
        return certs.issue_certificate(req, issuer_key=ikey, issuer=icert)

    cert = make(0)
    if der_len is not None:
        # Pad a SAN until the size is exact; DER length bytes make some sizes unreachable, so also
        # try without the EKU extension, or with a GeneralizedTime expiry (2 more bytes outside the
        # extensions block, which shifts the unreachable sizes).
        tries = [(s, c, t) for t in (None, LATE) for s in (False, True) for c in (60, 40)]
        for slim, chunk, late in tries:
            pad, seen = 1, set()
            while pad >= 1 and pad not in seen:
                seen.add(pad)
                cert = make(pad, slim, chunk, late)
                size = len(certs.cert_der(cert))
                if size == der_len:
                    break
                pad += der_len - size
            if len(certs.cert_der(cert)) == der_len:
                break
        else:
            raise ValueError(f"cannot fit {subject!r} into {der_len} bytes")
    got = _IDS[memo] = Identity(key=key, cert=cert)
    return got


def _cert_room(rec: TrustRecord, target: int) -> int:
    """DER size the certificate must have for ``rec`` (without certificate) to be ``target`` bytes."""
    return target - len(tlist.build_record(rec)) - 3


def _sign(template: hdr.SignedHeader, body: bytes, who: Identity,
          info: hdr.SignerInfo | None = None) -> bytes:
    return hdr.sign_header(template, body, who.signer, signer_info=info)


def _template(*, version: tuple[int, int], filename: str, hash_alg: int = 1,
              signer_version: tuple[int, int] | None = None, layout: hdr.Layout | None = None,
              unknown: tuple[hdr.UnknownTag, ...] = ()) -> hdr.SignedHeader:
    return hdr.SignedHeader(version=version, signer=hdr.SignerInfo(name="", serial=b"", issuer=""),
                          hash_alg=hash_alg, modulus_code=0, signature=b"", filename=filename,
                          timestamp=TIMESTAMP, signer_version=signer_version, layout=layout,
                          unknown=unknown)


# --------------------------------------------------------------------------- lab PKI
def lab() -> dict[str, Identity]:
    """The identities of the builder vectors (also the conftest PKI).

    Only ITLRecovery is RSA-2048 (seeded 2048-bit keys take ~1 s each in pure Python); the others
    are RSA-1024, which CUCM 10.x also used (spec §B.6).
    """
    ca = identity("CN=Lab Root CA;O=phoneemu", spec="rsa1024", seed="lab-ca", ca=True)
    return {
        "ca": ca,
        "itlrecovery": identity("CN=ITLRECOVERY_lab-pub;OU=VTG;O=phoneemu;C=NZ", seed="itlrecovery"),
        "callmanager": identity("CN=lab-pub;OU=VTG;O=phoneemu;C=NZ", spec="rsa1024", seed="callmanager"),
        "tvs": identity("CN=lab-pub-tvs;OU=VTG;O=phoneemu;C=NZ", spec="rsa1024", seed="tvs"),
        "capf": identity("CN=CAPF-lab;OU=VTG;O=phoneemu;C=NZ", spec="rsa1024", seed="capf"),
        "tftp-ec": identity("CN=lab-pub-EC;OU=VTG;O=phoneemu;C=NZ", spec="ec-p256", seed="tftp-ec",
                            issuer=ca),
    }


def _lab_records() -> list[TrustRecord]:
    ids = lab()
    return [
        TrustRecord.from_certificate(ids["itlrecovery"].cert, Role.SAST),
        TrustRecord.from_certificate(ids["callmanager"].cert, Role.CCM_TFTP, dns_name="lab-pub",
                                     ip="127.0.0.1"),
        TrustRecord.from_certificate(ids["tvs"].cert, Role.TVS, dns_name="lab-pub", ip="127.0.0.1"),
        TrustRecord.from_certificate(ids["capf"].cert, Role.CAPF, dns_name="lab-pub"),
        TrustRecord.from_certificate(ids["tftp-ec"].cert, Role.TFTP, dns_name="lab-pub"),
    ]


def itl_lab() -> bytes:
    """Builder output: ITL 1.2, signer version 1.1, SHA-1, RSA-2048 ITLRecovery signer."""
    return tlist.build(kind="ITL", records=_lab_records(), signer=lab()["itlrecovery"].signer,
                    timestamp=TIMESTAMP, signer_version=(1, 1))


def ctl_sha512() -> bytes:
    """Builder output: CTL signed with SHA-512 (code 3) by the CallManager key, two SAST records."""
    ids = lab()
    recs = [TrustRecord.from_certificate(ids["itlrecovery"].cert, Role.SAST),
            TrustRecord.from_certificate(ids["callmanager"].cert, Role.SAST, dns_name="lab-pub"),
            *_lab_records()[1:4]]
    return tlist.build(kind="CTL", records=recs, signer=ids["callmanager"].signer, timestamp=TIMESTAMP,
                    hash_alg=3)


def itl_rollback() -> bytes:
    """Our rollback ("empty") ITL convention (spec §B.7)."""
    return tlist.build(kind="ITL", records=tlist.rollback_records(_lab_records()),
                    signer=lab()["itlrecovery"].signer, timestamp=TIMESTAMP)


def itl_unknown_tags() -> bytes:
    """Unknown header/record tags, padding in unusual places, unknown and rare roles."""
    ids = lab()
    layout: hdr.Layout = (
        28, 13, (3, (4, -1, 13, 5, 6)), 13, (7, (8, 13, (9, (11, 10)))), -1, 12, 15, 13, 14)
    unknown = (hdr.UnknownTag(tag=200, value=b"\x01\x02", container=3),
               hdr.UnknownTag(tag=99, value=b"future", container=0))
    tmpl = _template(version=(1, 3), filename="ITLFile.tlv", signer_version=(1, 0), layout=layout,
                     unknown=unknown)
    recs = _lab_records()
    recs[2] = replace(recs[2], unknown=(tlist.RecordUnknown(tag=42, value=b"x"),),
                      order=(-1, 3, 5, 6, 4, 7, 8, 9, 2, 10))
    recs.append(TrustRecord.from_certificate(ids["ca"].cert, 9, dns_name="role9"))
    recs.append(TrustRecord.from_certificate(ids["ca"].cert, Role.SRST))
    recs.append(TrustRecord.from_certificate(ids["ca"].cert, Role.APP_SERVER))
    recs.append(replace(tlist.empty_record(Role.TVS, dns_name="10.0.0.9", ip="10.0.0.9"),
                        cert_hash=b"\xaa" * 20, hash_alg=1))
    body = b"".join(tlist.build_record(r) for r in recs)
    return _sign(tmpl, body, ids["itlrecovery"])


def config_sgn() -> bytes:
    """A signed device config (spec §C.1), version 1.0, signed by the CallManager (TFTP) key."""
    body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<device><fullConfig>true</fullConfig>'
            b"<deviceSecurityMode>1</deviceSecurityMode></device>\n")
    return signed.build(body=body, filename="SEP001122334455.cnf.xml.sgn", signer=lab()["callmanager"].signer,
                        timestamp=TIMESTAMP)


def sgn_sha256_ec_record_free() -> bytes:
    """A ``.sgn`` with a sub-directory file name and SHA-256 (code 2)."""
    body = bytes(range(256)) * 4
    return signed.build(body=body, filename="Desktops/320x196x4/List.xml.sgn",
                        signer=lab()["callmanager"].signer, timestamp=TIMESTAMP, hash_alg=2)


# --------------------------------------------------------------------------- spec facts
def itl_worked_example() -> bytes:
    """Header byte-for-byte in the §A.3a layout (offsets 0..388); records in certutils order."""
    sast = identity("CN=SAST;OU=SAST;O=SAST", seed="a3a-sast",
                    serial=(0x6BA5DE3A << 96) | 0x0102030405060708090A0B0C)
    info = hdr.SignerInfo(name="CN=SAST,O=SAST,OU=SAST", serial=certs.serial_bytes(sast.cert.serial_number),
                        issuer="CN=SAST,O=SAST,OU=SAST")
    layout: hdr.Layout = (28, (3, (4, 6, 5)), (7, (8, (9, (10, 11)))), 12, 14, 15)
    tmpl = _template(version=(1, 2), filename="ITLFile.tlv", signer_version=(1, 0), layout=layout)
    certutils_order = (3, 5, 6, 4, 7, 8, 9)

    def rec(who: Identity, role: int, comma_dn: str | None = None) -> TrustRecord:
        r = TrustRecord.from_certificate(who.cert, role)
        r = replace(r, order=certutils_order)
        if comma_dn is not None:
            r = replace(r, subject=comma_dn, issuer=comma_dn)
        return r

    ccm1 = identity("CN=asterisk-ccm1;O=Example", spec="rsa1024", seed="a3a-ccm1")
    ccm2 = identity("CN=asterisk-ccm2;O=Example", spec="rsa1024", seed="a3a-ccm2")
    app1 = identity("CN=Example Root R1;O=Example Trust", spec="rsa1024", seed="a3a-app1", ca=True)
    app2 = identity("CN=Example Root R2;O=Example Trust", spec="rsa1024", seed="a3a-app2", ca=True)
    recs = [rec(sast, Role.SAST, "CN=SAST,O=SAST,OU=SAST"), rec(ccm1, Role.CCM), rec(ccm2, Role.CCM),
            rec(app1, Role.APP_SERVER), rec(app2, Role.APP_SERVER)]
    return _sign(tmpl, b"".join(tlist.build_record(r) for r in recs), sast, info)


_PUB = "CN=cucm-1051-a-pub;OU=TAC;O=Cisco;L=Krakow;ST=Malopolska;C=PL"
_SUB = "CN=cucm-1051-a-sub1;OU=TAC;O=Cisco;L=Krakow;ST=Malopolska;C=PL"
_CAPF = "CN=CAPF-e41e7d87;OU=TAC;O=Cisco;L=Krakow;ST=Malopolska;C=PL"


def _fitted(subject: str, role: int, target: int, *, dns: str, ip: str, seed: str,
            issuer: Identity | None = None, serial: int | None = None,
            subject_text: str | None = None, issuer_text: str | None = None,
            with_signature: bool = True) -> tuple[Identity, TrustRecord]:
    """An identity whose record (CUCM order) is exactly ``target`` bytes (spec §B.6)."""
    probe = identity(subject, spec="rsa1024", seed=seed, issuer=issuer, serial=serial)
    rec = TrustRecord.from_certificate(probe.cert, role, dns_name=dns, ip=ip)
    if subject_text is not None:
        rec = replace(rec, subject=subject_text)
    if issuer_text is not None:
        rec = replace(rec, issuer=issuer_text)
    if not with_signature:
        rec = replace(rec, signature=None)
    room = _cert_room(replace(rec, certificate=None), target)
    who = identity(subject, spec="rsa1024", seed=seed, issuer=issuer, serial=serial, der_len=room)
    rec = replace(rec, certificate=certs.cert_der(who.cert),
                  signature=certs.cert_signature_bytes(who.cert) if with_signature else None)
    assert len(tlist.build_record(rec)) == target, (subject, len(tlist.build_record(rec)), target)
    return who, rec


def ctl_tokenless_4947() -> bytes:
    """CUCM 10.5 tokenless CTL of spec §B.6 [CSC-118893]: 336 + 1156 + 1156 + 1138 + 1161 = 4947."""
    pub, r_sast = _fitted(_PUB, Role.SAST, 1156, dns="cucm-1051-a-pub", ip="10.48.47.153", seed="cucm-pub")
    r_pub = replace(r_sast, role=Role.CCM_TFTP)
    _, r_capf = _fitted("CN=CAPF-e41e7d87;O=Cisco", Role.CAPF, 1138, dns="cucm-1051-a-pub",
                        ip="10.48.47.153", seed="cucm-capf", subject_text=_CAPF, issuer_text=_CAPF)
    _, r_sub = _fitted(_SUB, Role.CCM_TFTP, 1161, dns="cucm-1051-a-sub1", ip="10.48.47.154",
                       seed="cucm-sub")
    tmpl = _template(version=(1, 2), filename="CTLFile.tlv")
    return _sign(tmpl, b"".join(tlist.build_record(r) for r in (r_sast, r_pub, r_capf, r_sub)), pub)


_ETOKEN1 = 'cn="SAST-ADN0054f509        ";ou=IPCBU;o="Cisco Systems'
_ETOKEN2 = 'cn="SAST-ADN008580ef        ";ou=IPCBU;o="Cisco Systems'
_MFG = "cn=Cisco Manufacturing CA;o=Cisco Systems"


def ctl_nonsecure_3746() -> bytes:
    """Non-secure eToken CTL of spec §B.6/§B.7 [CSC-118892]: 304 + 1186 + 1186 + 33 + 1004 + 33 = 3746."""
    mfg = identity("CN=Cisco Manufacturing CA;O=Cisco Systems", spec="rsa1024", seed="mfg-ca", ca=True)
    tok1, r1 = _fitted("CN=SAST-ADN0054f509;OU=IPCBU;O=Cisco Systems", Role.SAST, 1186, dns="",
                       ip="10.48.47.153", seed="etoken1", issuer=mfg,
                       serial=serial_for("etoken1", 10, top_bit=True), subject_text=_ETOKEN1,
                       issuer_text=_MFG, with_signature=False)
    _, r2 = _fitted("CN=SAST-ADN008580ef;OU=IPCBU;O=Cisco Systems", Role.SAST, 1186, dns="",
                    ip="10.48.47.153", seed="etoken2", issuer=mfg,
                    serial=serial_for("etoken2", 10, top_bit=True), subject_text=_ETOKEN2,
                    issuer_text=_MFG, with_signature=False)
    _, r_capf = _fitted("CN=CAPF-e41e7d87;O=Cisco", Role.CAPF, 1004, dns="10.48.47.153",
                        ip="10.48.47.153", seed="cucm-capf2", subject_text=_CAPF, issuer_text=_CAPF,
                        with_signature=False)
    empty_pub = tlist.empty_record(Role.CCM_TFTP, dns_name="10.48.47.153", ip="10.48.47.153")
    empty_sub = tlist.empty_record(Role.CCM_TFTP, dns_name="10.48.47.154", ip="10.48.47.154")
    info = hdr.SignerInfo(name=_ETOKEN1, serial=certs.serial_bytes(tok1.cert.serial_number), issuer=_MFG)
    tmpl = _template(version=(1, 2), filename="CTLFile.tlv")
    body = b"".join(tlist.build_record(r) for r in (r1, r2, empty_pub, r_capf, empty_sub))
    return _sign(tmpl, body, tok1, info)


VECTORS = {
    "itl_lab.tlv": itl_lab,
    "ctl_sha512.tlv": ctl_sha512,
    "itl_rollback.tlv": itl_rollback,
    "itl_unknown_tags.tlv": itl_unknown_tags,
    "itl_worked_example.tlv": itl_worked_example,
    "ctl_tokenless_4947.tlv": ctl_tokenless_4947,
    "ctl_nonsecure_3746.tlv": ctl_nonsecure_3746,
    "SEP001122334455.cnf.xml.sgn": config_sgn,
    "List.xml.sgn": sgn_sha256_ec_record_free,
}


def build_all() -> dict[str, bytes]:
    return {name: make() for name, make in VECTORS.items()}


def main(argv: list[str]) -> int:
    check = "--check" in argv
    changed = []
    for name, data in build_all().items():
        path = HERE / name
        if path.exists() and path.read_bytes() == data:
            continue
        changed.append(name)
        if not check:
            path.write_bytes(data)
    for name in changed:
        print(("would change " if check else "wrote ") + name)
    return 1 if check and changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
