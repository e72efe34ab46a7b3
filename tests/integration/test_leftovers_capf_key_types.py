"""The lab CAPF server refuses, as an authentication failure, a phone certificate with a DSA or Ed25519 key.

Over loopback: a phone with a pending install by existing certificate (MIC, §F.7) authenticates with a
certificate whose key is DSA or Ed25519 (neither is a CAPF key, §F.8). Before, ``cert_public_key``'s
DecodeError escaped the server session: the connection was closed as "malformed" (a protocol error,
logged as a warning) and the phone saw "CAPF closed the connection". Now the server answers as a CAPF
server refusing the authentication — END_SESSION REASON 7 (§F.6 "bad password / bad data"), outcome
``bad-auth`` with the reason — logs one line and goes on serving: the same phone with its real (RSA) MIC
then gets its LSC. DSA keys are made with cryptography's DSA deprecation warning filtered (tests only;
the server never loads the DSA key: :func:`phoneemu.crypto.certs.cert_public_key` refuses it first).
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ed25519
from cryptography.x509.oid import NameOID

from phoneemu.crypto import certs
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.net.capf_client import CapfOutcome, capf_session
from phoneemu.protocols import capf
from tests.helpers import lab_template, run

HOST = "127.0.0.1"
MAC = "001122334466"
template = lab_template("leftovercapfkeys", seed=17, phones={MAC: {}})


def _odd_key_cert(kind: str, issuer: x509.Certificate, issuer_key: Any) -> bytes:
    """A MIC-like certificate for ``SEP<MAC>`` whose key is ``kind`` (dsa | ed25519), signed with the
    phone's real (RSA) MIC key: a certificate a phone could hold, only its key type is not CAPF's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cryptography >= 51 deprecates DSA
        public: Any = (dsa.generate_private_key(key_size=2048).public_key() if kind == "dsa"
                       else ed25519.Ed25519PrivateKey.generate().public_key())
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"SEP{MAC}")]))
                .issuer_name(issuer.subject).public_key(public).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
                .sign(issuer_key, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.DER)


def _phone(cert_der: bytes, key: Any) -> capf.CapfClientSession:
    return capf.CapfClientSession(device_name=f"SEP{MAC}", auth_mode=capf.AuthType.MIC, cert_der=cert_der,
                                  cert_key=key, cert_type=capf.CertType.MIC)


@pytest.mark.parametrize("kind", ["dsa", "ed25519"])
def test_a_phone_certificate_with_a_dsa_or_ed25519_key_is_refused_and_the_server_serves_on(
        cluster: LabCluster, kind: str, caplog: Any) -> None:
    caplog.set_level(logging.INFO, logger="phoneemu.lab.capf")
    cluster.set_capf([MAC], "install", auth_mode=capf.AuthType.MIC)
    mic, mic_key = cluster.phone_identity(MAC)
    odd = _odd_key_cert(kind, mic, mic_key)

    async def main() -> tuple[CapfOutcome, CapfOutcome, list[tuple[str, str]]]:
        async with LabServers(cluster, host=HOST) as servers:
            port = servers.ports["capf"]
            refused = await capf_session((HOST, port), _phone(odd, mic_key), timeout=20)
            again = await capf_session((HOST, port), _phone(certs.cert_der(mic), mic_key), timeout=20)
            log = [(r.outcome, r.detail) for r in servers.requests if r.service == "capf"]
            return refused, again, log

    refused, again, log = run(main())
    assert refused.outcome == "rejected" and refused.result.reason == capf.Reason.FAILURE
    assert refused.result.certificate is None and refused.result.key is None
    assert log[0][0] == "bad-auth", log
    assert "certificate authentication failed" in log[0][1] and "neither RSA nor EC" in log[0][1]
    lines = [r for r in caplog.records if r.name == "phoneemu.lab.capf" and "bad-auth" in r.getMessage()]
    assert len(lines) == 1 and "neither RSA nor EC" in lines[0].getMessage()
    assert not [r for r in caplog.records if "malformed" in r.getMessage()]
    # still serving, the operation still pending: the real MIC authenticates and the LSC is issued
    assert again.outcome == "installed" and log[1][0] == "installed"
    assert LabCluster.open(cluster.root).state.phones[MAC].has_lsc
