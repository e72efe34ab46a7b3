"""Findings of a `phoneemu fuzz --target phoneemu` campaign over every format, each fed again as found
(the saved minimised input) and held to the project's rule: a clear error of our own classes, or the
decision the trust rules give — never another exception out of a parser, a server or a rule."""

from __future__ import annotations

import base64

import pytest

from phoneemu.crypto import certs
from phoneemu.errors import DecodeError, VerifyReason
from phoneemu.formats import config as config_fmt
from phoneemu.formats import signed, trustlist
from phoneemu.fuzz.corpus import _TIMESTAMP, _identities
from phoneemu.fuzz.messages import TvsAcceptanceError, message_callable
from phoneemu.lab.sip_service import SipRegistrar
from phoneemu.phone import rules
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import InternCache, TrustStore, query_answer
from phoneemu.protocols import sip, tvs

# --------------------------------------------------------------------------- sip-request, seed 110
#: run 121909 (ops: digest-param), minimised: a REGISTER whose digest ``response`` is not ASCII
NON_ASCII_RESPONSE = (
    b"REGISTER sip:10.0.0.1 SIP/2.0\r\nV: SIP/2.0/TCP h\r\nFrom: <sip:SEP001122334455@10\r\n"
    b"To: <sip:SEP001122334455@10>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n"
    b'Authorization: Digest username="alice", realm="ccmsipline", '
    b'nonce="5eed0000000000000000000000000001", uri="sip:10.0.0.1",e="a",hm=M1, '
    b"response=>\xc3\xa9\xe4\xb8\xad<\r\nContent-Length: 0\r\n\r\n")


def test_registrar_challenges_a_digest_response_that_is_not_ascii() -> None:
    """Was ``TypeError: comparing strings with non-ASCII characters is not supported`` out of
    ``SipRegistrar._check`` (``secrets.compare_digest`` of two str): a wrong answer, challenged again."""
    outcomes: list[str] = []
    registrar = SipRegistrar(lambda mac: ("alice", "s3cret") if mac == "001122334455" else None,
                             clock=lambda: 1_000, on_log=lambda _p, _d, outcome, _t: outcomes.append(outcome))
    registrar.adopt_nonce("5eed0000000000000000000000000001", issued=1_000)
    msg = sip.parse_message(NON_ASCII_RESPONSE)
    answer = sip.parse_message(registrar.answer(msg, "10.0.0.9:5060"))
    assert answer.status == 401 and outcomes == ["refused"]


# --------------------------------------------------------------------------- tvs-response, seed 106
#: run 17191 (ops: duplicate, bit-flip): a valid QUERY answer, roles SAST and CCM+TFTP, returning the
#: signer's certificate (the corpus CallManager's serial and issuer) whose key algorithm OID a bit flip
#: turned into 1.2.840.113549.1.1.9 — a certificate that parses, with a key no phone can load.
#: (Found once the tvs-response oracle counted an error out of the §G.3.4 rule as a finding.)
UNKNOWN_KEY_ANSWER = base64.b64decode(
    "VwEEABI0q80CrgcAAQAHAAEAAgKXMIICkzCCAfygAwIBAgIGAIPpCAAxMA0GCSqGSIb3DQEBCwUAMF0xCzAJBgNVBAYTAlVTMQww"
    "CgYDVQQIDANMYWIxDDAKBgNVBAcMA0xhYjERMA8GA1UECgwIcGhvbmVlbXUxDDAKBgNVBAsMA0xBQjERMA8GA1UEAwwIZnV6ei1w"
    "dWIwHhcNMjUwMTAxMDAwMDAwWhcNNDUwMTAxMDAwMDAwWjBdMQswCQYDVQQGEwJVUzEMMAoGA1UECAwDTGFiMQwwCgYDVQQHDANM"
    "YWIxETAPBgNVBAoMCHBob25lZW11MQwwCgYDVQQLDANMQUIxETAPBgNVBAMMCGZ1enotcHViMIGfMA0GCSqGSIb3DQEBCQUAA4GN"
    "ADCBiQKBgQCuGfuIQyW9zBTmm9nSQnOQ46WrYgyIrYf42pOfEuaNr+caGXzpcvmWrotYbJ3OUf9xovG//ZVDc6XhqvKq1VKGUMrP"
    "sFcfooK0Y62+o2FnlyBfLR5YJrvqc6wWMfYhfyGjHzXKVvfBq4KMTv0HRMVa1TI96EC4SiDZ7M18Uc4WJwIDAQABo14wXDAMBgNV"
    "HRcBAf8EAjAAMA4GA1UdDwEB/wQEAwIFoDAdBgNVHQ4EFgQUoS2ouv0Z131qIBCa/nr3Qj0mlowwHQYDVR0lBBYwFAYIKwYBBQUH"
    "AwEGCCsGAQUFBwMCMA0GCSqGSIb3DQEBCwUAA4GBAHQzIxs1+ky6THdK23FG//qvkB5KYZ4T5dkeNbh4cw8ENpvkJhf+wXhWkTdn"
    "3BfrzhyX1glGlD/gqmwQSQqBTee/Y87mwx8+YOSTvMNRYg8iYmALnN4XFH9ml22I+MMzmLv7y+9Tp94w/VGXDVKJvAMCWrQSgq1M"
    "VwJjWe+BbFtrCAACAAIJAAQAAVGA")

_IDS = _identities(1024)  # the fuzzing corpus keys (--key-bits default): the answer names their signer
_CFG = "SEP001122334455.cnf.xml.sgn"
P8861 = get_profile("cp-8861")


def _answer() -> tvs.TvsResponse:
    request = tvs.query_request(0x1234ABCD, "CP-8861-SEP001122334455", "CN=x", "CN=y", b"\x01")
    exchange = tvs.TvsClientExchange(request)
    response = exchange.receive(UNKNOWN_KEY_ANSWER)
    exchange.eof()
    assert response is not None and response.valid and response.roles == (0, 2)
    return response


def _phone(itl_records: list[trustlist.TrustRecord], config_signer: str) -> TrustStore:
    """A cp-8861 that installed an ITL (leap of faith) and a signed config naming a TVS server."""
    store = TrustStore(profile=P8861, intern=InternCache())
    sast = _IDS["itlrecovery"]
    itl = trustlist.build(kind="ITL", signer=sast.signer, timestamp=_TIMESTAMP - 86400, records=itl_records)
    server = config_fmt.Server(host="10.0.0.1", port=2445, priority=0)
    body = config_fmt.build(config_fmt.DeviceConfig(device_name="SEP001122334455", tvs_servers=(server,)))
    cfg = signed.build(body=body, filename=_CFG, signer=_IDS[config_signer].signer, timestamp=_TIMESTAMP)
    for d in (rules.decide_trust_list(store, itl, kind="ITL", profile=P8861, now=_TIMESTAMP),
              rules.decide_config(store, _CFG, cfg, profile=P8861, now=_TIMESTAMP)):
        assert d.accepted, d
        store.apply(d)
    return store


def test_itl_signer_vouched_by_tvs_with_an_unloadable_key_is_refused() -> None:
    """Was a DecodeError out of ``rules.decide_trust_list`` (``certs.cert_public_key`` of the certificate
    TVS returned, §G.3.4): the rule must decide — the signer's key is unusable, the ITL refused."""
    rec, role = trustlist.TrustRecord.from_certificate, trustlist.Role
    sast, ccm, tvs_id = _IDS["itlrecovery"], _IDS["callmanager"], _IDS["tvs"]
    store = _phone([rec(sast.cert, role.SAST), rec(ccm.cert, role.CCM_TFTP), rec(tvs_id.cert, role.TVS)],
                   "callmanager")
    new_itl = trustlist.build(kind="ITL", signer=ccm.signer, timestamp=_TIMESTAMP,
                              records=[rec(ccm.cert, role.SAST), rec(tvs_id.cert, role.TVS)])
    d = rules.decide_trust_list(store, new_itl, kind="ITL", profile=P8861, now=_TIMESTAMP,
                                tvs_answer=query_answer(_answer()))
    assert (d.rule, d.accepted, d.reason_code) == ("G.3-unsupported-key", False, VerifyReason.UNSUPPORTED_KEY)
    assert "no usable key" in d.reason
    # and the fuzz target that found it passes the input (its oracle: the rule decided, nothing accepted)
    message_callable("tvs-response", certs.cert_der(ccm.cert))(UNKNOWN_KEY_ANSWER)


def test_config_signer_vouched_by_tvs_with_an_unloadable_key_is_refused() -> None:
    """The same certificate as a TVS answer about a config signer (§G.4 (c)): refused, not raised."""
    rec, role = trustlist.TrustRecord.from_certificate, trustlist.Role
    sast, tvs_id = _IDS["itlrecovery"], _IDS["tvs"]
    store = _phone([rec(sast.cert, role.SAST), rec(tvs_id.cert, role.TVS), rec(tvs_id.cert, role.TFTP)],
                   "tvs")
    body = config_fmt.build(config_fmt.DeviceConfig(device_name="SEP001122334455"))
    cfg = signed.build(body=body, filename=_CFG, signer=_IDS["callmanager"].signer, timestamp=_TIMESTAMP)
    assert rules.decide_config(store, _CFG, cfg, profile=P8861, now=_TIMESTAMP).rule == "G.4-needs-tvs"
    d = rules.decide_config(store, _CFG, cfg, profile=P8861, now=_TIMESTAMP,
                            tvs_answer=query_answer(_answer()))
    assert (d.rule, d.accepted, d.reason_code) == ("G.4-unsupported-key", False, VerifyReason.UNSUPPORTED_KEY)


def test_tvs_response_oracle_counts_an_error_out_of_the_rule_as_a_finding(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Oracle fix (phoneemu/fuzz/messages.py): the bug above was invisible to the fuzzer, which took the
    DecodeError out of the rule for the parser rejecting the input; an answer that decoded is the rule's
    to decide, so an error out of it is a finding."""
    target = message_callable("tvs-response", certs.cert_der(_IDS["callmanager"].cert))  # phone set up

    def raising(*_args: object, **_kwargs: object) -> None:
        raise DecodeError("certificate key cannot be loaded", path="certificate")

    monkeypatch.setattr(rules, "decide_trust_list", raising)
    with pytest.raises(TvsAcceptanceError, match="raised instead of deciding"):
        target(UNKNOWN_KEY_ANSWER)
