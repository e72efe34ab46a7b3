"""The last in-order DN comparisons (spec §A.7, §B.4): ``certs.dn_key`` everywhere a DN is matched. CUCM
writes a DN most-specific first with ``;``, certutils in the certificate's stored order with ``,``;
"phones evidently accept either" (§A.7), and the phone, ``inspect`` and the lab TVS compare in any order.

Was (in order, ``normalise_dn``):

* ``firmware.verify`` (``find_signer``): a header naming the image signer's issuer in certutils' order
  matched no certificate by issuer, so the first of the same serial was taken — another issuer's, a bad
  signature — while the phone installed the load;
* the offline TVS of ``replay``/``predict`` (``--tvs-cert``) answered such a QUERY "not found", so a
  ``predict`` said locked out where the lab TVS vouches;
* ``replay --keylog`` did not match the phone's question to the capture's QUERY naming the issuer in the
  other order ("no QUERY in the capture");
* ``predict`` did not take a ``--tvs-cert`` (or a new ITL's TVS record) for the TVS of an installed ITL
  record whose subject is written in the other order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from phoneemu.cli import main
from phoneemu.crypto import certs
from phoneemu.errors import TransportError
from phoneemu.formats import firmware as fw
from phoneemu.formats import header
from phoneemu.formats import trustlist as tlist
from phoneemu.formats.header import FileSigner, SignerInfo
from phoneemu.formats.trustlist import Role, TrustRecord
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone import rules
from phoneemu.phone.events import QueryKey
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import TrustStore, TvsAnswer, TvsStatus
from phoneemu.protocols import tvs
from phoneemu.scenario import predict
from phoneemu.scenario.replay import offline_tvs
from phoneemu.scenario.replay_tvs import CapturedTvs, TvsCapture
from tests.helpers import pristine_lab
from tests.unit.test_firmware import identity, image, image_signer

NOW = 1_780_000_000
MAC = "0A00000000D7"
TVS_AT = ("10.0.0.5", 2445)

base_lab, lab = pristine_lab("dn-leftovers", now=NOW, phones={MAC: {"now": NOW}}, seed=27)


def _stored_order(name: x509.Name) -> str:
    """``name`` as certutils writes it (§A.7): RFC 4514 attributes in stored order, joined with ``,``."""
    return ",".join(a.rfc4514_string() for a in name)


def _certutils_header(data: bytes, signer: FileSigner) -> bytes:
    """``data`` (a signed file) re-signed by ``signer`` with its header's tags 4/5/6 written as certutils
    writes them (stored order, ``,``)."""
    h = header.parse_header(data, fmt="test").header
    cert = signer.cert
    info = SignerInfo(name=_stored_order(cert.subject), serial=certs.serial_bytes(cert.serial_number),
                      issuer=_stored_order(cert.issuer))
    assert certs.normalise_dn(info.issuer) != certs.normalise_dn(certs.dn_text(cert.issuer))  # order differs
    return header.sign_header(h, data[h.header_length:], signer, signer_info=info)


# --------------------------------------------------------------------------- firmware (§D)
def test_a_firmware_image_whose_header_names_the_issuer_in_certutils_order_verifies_as_the_phone_takes_it(
        ) -> None:
    """Two trusted certificates of the signer's serial, another issuer's first: the one whose issuer the
    header names (in stored order) verifies the image, as the phone installs it (was: the first by serial,
    BAD_SIGNATURE)."""
    signer = image_signer("dn-order-signer", serial=9, issuer="dn-order-image-ca")
    decoy = identity("dn-order-decoy", serial=9)[1]  # the same serial, another issuer and key
    data = _certutils_header(image(signer=signer), signer)
    img = fw.parse(data)
    assert img.header.signer.issuer == _stored_order(signer.cert.issuer)
    assert fw.find_signer(img.header.signer, [decoy, signer.cert]) == signer.cert
    assert fw.verify(img, [decoy, signer.cert]) == signer.cert
    profile = get_profile("cp-8861")
    d = rules.decide_firmware(TrustStore(profile=profile), data, profile=profile, now=1_800_000_000,
                              image_signers=[decoy, signer.cert])
    assert d.accepted and d.rule == "D-signed-by-image-key", d
    # still told apart: a header naming another issuer falls back to the serial alone, as before
    other = dataclasses.replace(img.header.signer, issuer="O=phoneemu,CN=someone-else")
    assert fw.find_signer(other, [decoy, signer.cert]) == decoy


# --------------------------------------------------------------------------- offline TVS (replay, predict)
def test_the_offline_tvs_answers_a_query_naming_the_issuer_in_certutils_order(lab: LabCluster) -> None:
    """``replay``/``predict --tvs-cert``: the offline TVS vouches for a certificate whatever the order the
    QUERY writes its issuer in, as the lab TVS does (was: "not found")."""
    cert = lab.identity("itlrecovery").cert
    serial = certs.serial_bytes(cert.serial_number)
    ask = offline_tvs([cert], frozenset({0}))

    def asked(issuer: str, serial: bytes = serial) -> Any:
        key = QueryKey(subject=_stored_order(cert.subject), issuer=issuer, serial=serial)
        return asyncio.run(ask([], key, device_name=f"SEP{MAC}"))

    stored = _stored_order(cert.issuer)
    assert certs.normalise_dn(stored) != certs.normalise_dn(certs.dn_text(cert.issuer))
    for issuer in (certs.dn_text(cert.issuer), stored, stored.upper().replace(",", ", ")):
        answer = asked(issuer)
        assert isinstance(answer, TvsAnswer) and answer.cert_der == certs.cert_der(cert), issuer
    assert asked(stored + ",OU=extra") is TvsStatus.NOT_FOUND
    assert asked(stored, serial + b"\x01") is TvsStatus.NOT_FOUND


def test_predict_takes_a_new_itl_signed_with_a_certutils_order_header_that_tvs_vouches_for(
        lab: LabCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """ITLRecovery regenerated, the new ITL's header written by certutils: ``predict --tvs-cert`` with the
    new ITLRecovery certificate says the phone takes it (G.3.4-vouched-by-tvs, exit 0), as a boot against
    the lab does (was: the offline TVS answered "not found": locked out, exit 1)."""
    old = tmp_path / "old"
    old.mkdir()
    files = lab.files()
    for name in ("ITLFile.tlv", f"SEP{MAC}.cnf.xml.sgn"):
        (old / name).write_bytes(files[name])
    lab.regenerate("itlrecovery", now=NOW)
    recovery = lab.identity("itlrecovery")
    new = tmp_path / "new"
    new.mkdir()
    (new / "ITLFile.tlv").write_bytes(_certutils_header(lab.files()["ITLFile.tlv"], recovery.signer))
    (new / f"SEP{MAC}.cnf.xml.sgn").write_bytes(lab.files()[f"SEP{MAC}.cnf.xml.sgn"])
    pem = tmp_path / "itlrecovery.pem"
    pem.write_bytes(recovery.cert.public_bytes(Encoding.PEM))
    rc = main(["predict", "--installed-itl", str(old / "ITLFile.tlv"), "--installed-config",
               str(old / f"SEP{MAC}.cnf.xml.sgn"), "--now", str(NOW), "--json", "--tvs-cert", str(pem),
               str(new / "ITLFile.tlv"), str(new / f"SEP{MAC}.cnf.xml.sgn")])
    doc = json.loads(capsys.readouterr().out)
    rules_said = [d["rule"] for d in doc["report"]["decisions"]]
    assert rc == 0 and "G.3.4-vouched-by-tvs" in rules_said, (rc, rules_said)


def test_predict_matches_tvs_certificates_to_itl_tvs_records_by_subject_in_any_order(
        lab: LabCluster) -> None:
    """The installed ITL's TVS record names its subject in certutils' order: a ``--tvs-cert`` of that
    subject, and a new ITL's TVS record naming it CUCM's way, are still that TVS's certificate now (was:
    none, so the TVS was judged by nothing the user gave)."""
    ident = lab.tvs_identity()
    rec = TrustRecord.from_certificate(ident.cert, Role.TVS, dns_name="tvs.lab", ip="10.0.0.5")
    certutils_rec = dataclasses.replace(rec, subject=_stored_order(ident.cert.subject))
    assert certs.normalise_dn(certutils_rec.subject or "") != certs.normalise_dn(rec.subject or "")
    signer = lab.identity("itlrecovery")
    sast = TrustRecord.from_certificate(signer.cert, Role.SAST)
    installed = tlist.parse(tlist.build(kind="ITL", records=[sast, certutils_rec], signer=signer.signer,
                                        timestamp=NOW))
    new = tlist.parse(tlist.build(kind="ITL", records=[sast, rec], signer=signer.signer, timestamp=NOW))
    want = {"tvs.lab": [ident.der], "10.0.0.5": [ident.der]}
    assert predict._vouched_tvs_certs([ident.der], installed) == want
    assert predict._inferred_tvs_certs(new, installed) == want
    assert predict._vouched_tvs_certs([signer.der], installed) == {}  # another subject: none


# --------------------------------------------------------------------------- replay --keylog
def _captured(issuer: str, serial: bytes, certificate: bytes) -> CapturedTvs:
    request = tvs.QueryRequest(session_id=1, device_name=f"CP-8861-SEP{MAC}", subject=issuer, issuer=issuer,
                               serial=serial)
    response = tvs.TvsResponse(session_id=1, msg_type=tvs.TvsMsgType.QUERY_RESPONSE, status=0,
                               certificate=certificate, roles=(0,), ttl=600)
    return CapturedTvs(start=1.0, client=("10.1.0.9", 40000), server=TVS_AT, tls="TLSv1.2", request=request,
                       response=response, order=1)


def test_replay_matches_a_captured_query_naming_the_issuer_in_the_other_order(lab: LabCluster) -> None:
    """The capture's QUERY names the issuer in certutils' order, the replayed phone asks in CUCM's: the
    captured answer is the answer (was: no QUERY matched, "no TVS server answered")."""
    cert = lab.identity("itlrecovery").cert
    serial = certs.serial_bytes(cert.serial_number)
    der = certs.cert_der(cert)
    capture = TvsCapture(exchanges=(_captured(_stored_order(cert.issuer), serial, der),), tls_connections=1,
                         not_tvs=0, problems=())
    key = QueryKey(subject=certs.dn_text(cert.subject), issuer=certs.dn_text(cert.issuer), serial=serial)
    answer = asyncio.run(capture.asker(lambda: (0.0, 2.0))([TVS_AT], key, device_name=f"SEP{MAC}"))
    assert isinstance(answer, TvsAnswer) and answer.cert_der == der
    # another issuer is another question: unanswered, as before
    other = dataclasses.replace(key, issuer=key.issuer + ";OU=extra")
    with pytest.raises(TransportError):
        asyncio.run(capture.asker(lambda: (0.0, 2.0))([TVS_AT], other, device_name=f"SEP{MAC}"))
