"""Tests that kill surviving mutants of the firmware image format and the phone's firmware phase (spec §D).

Each test states the rule it checks: ``firmware.verify`` refuses a trusted certificate whose key it cannot
use with VerificationError UNSUPPORTED_KEY (module docstring of :mod:`phoneemu.formats.firmware`), and a
phone fetches and decides firmware only when the config names a load (spec §D: "Firmware is selected by
``<loadInformation>``"; our emulator guidance: a load name differing from the running load is requested).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519

from phoneemu.errors import DecodeError, EncodeError, TransportError, VerificationError, VerifyReason
from phoneemu.formats import config, firmware, signed
from phoneemu.lab.cluster import LabCluster
from phoneemu.net.fetch import MemoryFetcher
from phoneemu.phone.boot import BootReport, BootTarget, transport_status
from phoneemu.phone.events import Decision
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile
from tests.helpers import pristine_lab

NOW = 1_780_000_000
MAC = "0A00000000C3"
TARGET = BootTarget(host="127.0.0.1", tftp_port=69)

base_lab, lab = pristine_lab("firmware-mutants", now=NOW, phones={MAC: {"now": NOW}})


def _phone(lab: LabCluster) -> Phone:
    return Phone(mac=MAC, profile=get_profile("cp-8861"), flash=None, clock=lambda: NOW,
                 mic=lab.phone_identity(MAC), image_signers=[lab.identity("imagesigning").cert])


def _boot(p: Phone, lab: LabCluster, load: tuple[str | None] | None = None,
          loads: Callable[[str], bytes | None] | None = None) -> tuple[BootReport, MemoryFetcher]:
    """Boot ``p`` from ``lab``; ``load`` = (X,) replaces the config's <loadInformation> by X (re-signed by the
    cluster), ``loads`` serves the ``.loads`` files."""
    name = config.config_file_name(MAC, "sgn")
    served = lab.get(name)
    assert served is not None
    if load is not None:
        cfg = dataclasses.replace(config.parse(signed.parse(served).body), load_information=load[0])
        served = signed.build(body=config.build(cfg), filename=name, signer=lab.callmanager().signer,
                              timestamp=NOW)

    def files(n: str) -> bytes | None:
        if n == name:
            return served
        return loads(n) if loads is not None and n.endswith(".loads") else lab.get(n)
    f = MemoryFetcher(files)
    return asyncio.run(p.boot(TARGET, fetcher=f)), f


def _firmware(r: BootReport) -> list[Decision]:
    return [d for d in r.decisions if d.kind == "firmware"]


def _ed25519_cert_like(cert: x509.Certificate) -> x509.Certificate:
    """A certificate with ``cert``'s subject, issuer and serial but an Ed25519 key (neither RSA nor EC)."""
    key = ed25519.Ed25519PrivateKey.generate()
    b = (x509.CertificateBuilder().subject_name(cert.subject).issuer_name(cert.issuer)
         .serial_number(cert.serial_number).public_key(key.public_key())
         .not_valid_before(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
         .not_valid_after(dt.datetime(2044, 1, 1, tzinfo=dt.UTC)))
    return b.sign(key, None)


def test_trusted_signer_with_an_unusable_key_is_unsupported_key(lab: LabCluster) -> None:
    """firmware.verify: the trusted certificate named by the header has a key that is neither RSA nor EC:
    VerificationError UNSUPPORTED_KEY (never another exception, never a pass)."""
    signer = lab.identity("imagesigning")
    img = firmware.parse(firmware.build(load_name="sip88xx.9-9-9", payload=b"image", timestamp=NOW,
                                        signer=signer.signer))
    assert firmware.verify(img, [signer.cert]) == signer.cert
    with pytest.raises(VerificationError) as info:
        firmware.verify(img, [_ed25519_cert_like(signer.cert)])
    assert info.value.reason is VerifyReason.UNSUPPORTED_KEY and info.value.fmt == "firmware"


def test_config_without_a_load_fetches_and_decides_no_firmware(lab: LabCluster) -> None:
    """§D: no <loadInformation>, nothing to select: no .loads request, no firmware decision, firmware
    "none" (not "unchanged": there is no load to compare with)."""
    r, f = _boot(_phone(lab), lab)
    assert r.ok and r.firmware == "none" and r.load is None
    assert not [n for n in f.requests if n.endswith(".loads")]
    assert not _firmware(r)


def test_config_dropping_its_load_keeps_the_running_load_without_a_rejection(lab: LabCluster) -> None:
    """§D: a phone running load X whose config no longer names a load keeps X, fetches nothing and
    records no firmware rejection (no "bad load name" for a load that was never named)."""
    lab.set_load("sip88xx.3-0-0", now=NOW)
    p = _phone(lab)
    r, _ = _boot(p, lab)
    assert r.firmware == "accepted" and r.load == "sip88xx.3-0-0"
    r, f = _boot(p, lab, load=(None,))
    assert r.ok and r.firmware == "none" and r.load == "sip88xx.3-0-0"
    assert not [n for n in f.requests if n.endswith(".loads")]
    assert not _firmware(r)


def test_missing_load_is_one_not_found_decision(lab: LabCluster) -> None:
    """§D "on failure keep the running load and log": a .loads file that is not there is one
    D-fetch-failed decision, reason code not-found — nothing is then parsed or decided from it."""
    lab.set_load("sip88xx.4-0-0", now=NOW)
    r, f = _boot(_phone(lab), lab, loads=lambda n: None)
    assert [(d.rule, d.accepted, d.reason_code) for d in _firmware(r)] == \
        [("D-fetch-failed", False, VerifyReason.NOT_FOUND)]
    assert r.firmware == "rejected" and r.load is None and r.ok
    assert list(f.requests).count("sip88xx.4-0-0.loads") == 1


def test_load_transport_failure_is_shown_and_listed(lab: LabCluster) -> None:
    """A .loads download failing in transport (not "not found") is one D-fetch-failed decision with
    reason code other, shown on the phone's status and listed in the report's failed downloads."""
    lab.set_load("sip88xx.5-0-0", now=NOW)

    def timeout(n: str) -> bytes | None:
        raise TransportError("no answer", kind="timeout", path=n)
    shown = transport_status(TransportError("no answer", kind="timeout", path="sip88xx.5-0-0.loads"))
    r, _ = _boot(_phone(lab), lab, loads=timeout)
    assert [(d.rule, d.reason_code) for d in _firmware(r)] == [("D-fetch-failed", VerifyReason.OTHER)]
    assert ("sip88xx.5-0-0.loads", "timeout") in r.failed_downloads and shown in r.statuses
    assert r.firmware == "rejected" and r.load is None


def test_config_naming_an_unsafe_load_fetches_nothing(lab: LabCluster) -> None:
    """§D: the load file is ``<loadInformation>.loads``; a load name that cannot be a file name (ours:
    1..128 of [A-Za-z0-9._-]) is refused as D-malformed without any request, and keeps the running load."""
    r, f = _boot(_phone(lab), lab, load=("../etc/passwd",))
    assert [(d.rule, d.accepted) for d in _firmware(r)] == [("D-malformed", False)]
    assert r.firmware == "rejected" and r.load is None
    assert not [n for n in f.requests if n.endswith(".loads")]


@pytest.mark.parametrize("body", [b"a.bc", b"a/b\0", b"a\xffb\0"])
def test_bad_load_name_error_points_at_the_name(body: bytes) -> None:
    """Our convention (house style): a DecodeError's offset is where the offending field starts — here the
    load name, right after the 8-byte magic and the uint16 length, not the magic."""
    payload = firmware.build_payload("a.b", b"xyz").replace(b"a.b\0", body)
    with pytest.raises(DecodeError) as info:
        firmware.parse_payload(payload)
    assert info.value.offset == len(firmware.MAGIC) + 2
    assert info.value.path is not None and "load_name" in info.value.path


@pytest.mark.parametrize("name", [None, 5, b"a"])
def test_a_load_name_that_is_not_text_is_an_encode_error(name: object) -> None:
    """loads_file_name / build_payload: any bad load name is EncodeError naming what was given (never a
    TypeError from building the message); a bad text name is shown quoted."""
    with pytest.raises(EncodeError, match=type(name).__name__):
        firmware.loads_file_name(name)  # type: ignore[arg-type]
    with pytest.raises(EncodeError, match=r"load name 'a b' is not"):
        firmware.build_payload("a b", b"")
