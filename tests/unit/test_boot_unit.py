"""The boot sequence without sockets: a lab cluster served through MemoryFetcher, TVS and CAPF faked
(spec §C.6 request order, §G rules as the boot applies them, §E.7, §F.1 retries, §G.9, §H.3 statuses).

Fast and deterministic: one seeded-free RSA-1024 lab per test, files served from memory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneemu import cli
from phoneemu.errors import DecodeError, EncodeError, TransportError
from phoneemu.formats import config, signed, trustlist
from phoneemu.formats.config import Server
from phoneemu.formats.trustlist import Role
from phoneemu.lab.cluster import LabCluster
from phoneemu.net.fetch import HttpThenTftpFetcher, MemoryFetcher, TftpFetcher
from phoneemu.phone import status
from phoneemu.phone.boot import BootReport, BootTarget, transport_status
from phoneemu.phone.events import QueryKey
from phoneemu.phone.flash import Flash
from phoneemu.phone.phone import PHONE_FILE, Phone, read_phone_file
from phoneemu.phone.profile import PhoneProfile, get_profile, profile_from_dict
from phoneemu.phone.show import render_show, show_state
from phoneemu.phone.store import TvsAnswer, TvsResult, TvsStatus
from phoneemu.protocols import tvs as tvs_proto
from phoneemu.protocols.capf import CapfClientSession, CapfResult
from tests.helpers import pristine_lab

T = TypeVar("T")
NOW = 1_780_000_000
MAC = "0A00000000B1"
TARGET = BootTarget(host="127.0.0.1", tftp_port=69)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


base_lab, lab = pristine_lab("boot-unit", now=NOW, phones={MAC: {"now": NOW, "lsc_key": "rsa1024"}})


class FakeTvs:
    """TVS from the lab's own lookup; records queries; optional fixed answer, outage, or an outage for
    the first ``outages`` queries only."""

    def __init__(self, lab: LabCluster, answer: TvsResult | None = None, down: bool = False,
                 outages: int = 0) -> None:
        self.lab = lab
        self.answer = answer
        self.down = down
        self.outages = outages
        self.queries: list[QueryKey] = []
        self.device_names: list[str] = []
        self.server_ok: list[bool] = []

    async def __call__(self, servers: Sequence[Server], key: QueryKey, *, device_name: str,
                       accept_server: Callable[[bytes | None], bool] | None) -> TvsResult:
        self.queries.append(key)
        self.device_names.append(device_name)
        if accept_server is not None:
            self.server_ok.append(accept_server(self.lab.tvs_identity().der))
            self.server_ok.append(accept_server(self.lab.identity("capf").der))
        if self.down or len(self.queries) <= self.outages:
            raise TransportError("connection refused", kind="unreachable")
        if self.answer is not None:
            return self.answer
        e = self.lab.tvs_lookup((key.issuer, key.serial, key.subject))
        if e is None:
            return TvsStatus.NOT_FOUND
        return TvsAnswer(cert_der=e.cert_der, roles=frozenset(e.roles), ttl=e.ttl)


class FakeCapf:
    """CAPF that fails ``failures`` times, then returns ``result`` (issued by the lab for installs)."""

    def __init__(self, lab: LabCluster, outcome: str = "installed", failures: int = 0) -> None:
        self.lab = lab
        self.outcome = outcome
        self.failures = failures
        self.sessions: list[CapfClientSession] = []
        self.server_ok: list[bool] = []

    async def __call__(self, server: Server, session: CapfClientSession, *,
                       accept_server: Callable[[bytes | None], bool] | None) -> CapfResult:
        self.sessions.append(session)
        if accept_server is not None:
            self.server_ok.append(accept_server(self.lab.identity("capf").der))
            self.server_ok.append(accept_server(self.lab.tvs_identity().der))
        if self.failures:
            self.failures -= 1
            raise TransportError("connection lost", kind="unreachable")
        if self.outcome != "installed":
            return CapfResult(outcome=self.outcome, reason=1)
        from phoneemu.crypto.keys import KeySpec, generate_key, public_key_spki_der
        key = generate_key(KeySpec.parse("rsa1024"))
        der = self.lab.issue_lsc(session.device_name, public_key_spki_der(key.public_key()), now=NOW)
        self.lab.record_lsc(MAC, der, now=NOW)
        return CapfResult(outcome="installed", reason=1, certificate=der, key=key)


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def phone(lab: LabCluster, tmp: Path | None = None, *, profile: PhoneProfile | str = "cp-8861",
          tvs: FakeTvs | None = None, capf: FakeCapf | None = None, mic: bool = True,
          **kw: Any) -> Phone:
    prof = get_profile(profile) if isinstance(profile, str) else profile
    flash = Flash(tmp / "flash", profile=prof) if tmp is not None else None
    return Phone(mac=MAC, profile=prof, flash=flash, clock=lambda: NOW,
                 mic=lab.phone_identity(MAC) if mic else None,
                 image_signers=[lab.identity("imagesigning").cert],
                 tvs=tvs or FakeTvs(lab), capf=capf or FakeCapf(lab), **kw)


def boot(p: Phone, files: Callable[[str], bytes | None]) -> tuple[BootReport, MemoryFetcher]:
    f = MemoryFetcher(files)
    return run(p.boot(TARGET, fetcher=f)), f


def rules(r: BootReport) -> list[str]:
    return [d.rule for d in r.decisions]


# --------------------------------------------------------------------------- request order (§C.6)
def test_request_order_per_device_name_first(lab: LabCluster) -> None:
    r, f = boot(phone(lab), lab.get)
    assert list(f.requests) == [f"CTLSEP{MAC}.tlv", "CTLFile.tlv", f"ITLSEP{MAC}.tlv",
                                f"SEP{MAC}.cnf.xml.sgn", "g3-tones.xml.sgn", "AppDialRules.xml.sgn"]
    assert r.ok and r.statuses[:2] == (f"File Not Found <CTLSEP{MAC}.tlv>", "File Not Found <CTLFile.tlv>")


def test_generic_name_only_when_per_device_missing(lab: LabCluster) -> None:
    r, f = boot(phone(lab), lambda n: None if n.startswith("ITLSEP") else lab.get(n))
    assert list(f.requests)[2:4] == [f"ITLSEP{MAC}.tlv", "ITLFile.tlv"]
    assert r.trust["ITL"] == "installed" and r.decisions[0].file == "ITLFile.tlv"


class FailsOn(MemoryFetcher):
    """Serves the lab's files; ``failing`` names fail with ``error`` (a time-out, an access error...)."""

    def __init__(self, lab: LabCluster, failing: set[str], error: TransportError) -> None:
        super().__init__(lab.get)
        self.failing = failing
        self.error = error

    async def fetch(self, name: str) -> bytes:
        if name in self.failing:
            self.requests.append(name)
            raise self.error
        return await super().fetch(name)


@pytest.mark.parametrize("error", [TransportError("no answer", kind="timeout"),
                                   TransportError("denied", kind="refused", code=2),
                                   TransportError("server gone", kind="unreachable")],
                         ids=lambda e: e.kind)
def test_generic_name_not_asked_after_a_transport_failure(lab: LabCluster, error: TransportError) -> None:
    """Spec §C.6 row 4: ``ITLFile.tlv`` "after ITLSEP is not found". A time-out (or an access error) on
    the per-device file is not "not there": the phone keeps what it holds and does not take the generic
    file in its place (it was asked before anyway, on every not-found; a per-device override, [UCM-ds],
    must not be replaced by the cluster's file because one transfer was lost). Same for the CTL."""
    p = phone(lab)
    assert boot(p, lab.get)[0].trust["ITL"] == "installed"
    lab.regenerate("itlrecovery", now=NOW)  # ITLFile.tlv is another file now: installing it would show
    f = FailsOn(lab, {f"CTLSEP{MAC}.tlv", f"ITLSEP{MAC}.tlv"}, error)
    r = run(p.boot(TARGET, fetcher=f))
    assert list(f.requests)[:2] == [f"CTLSEP{MAC}.tlv", f"ITLSEP{MAC}.tlv"], f.requests
    assert "CTLFile.tlv" not in f.requests and "ITLFile.tlv" not in f.requests, f.requests
    assert r.statuses[:2] == (transport_status(error), transport_status(error))
    assert r.trust.get("ITL") in (None, "unchanged") and p.store.itl is not None
    assert any(f"ITLFile.tlv: not asked: ITLSEP{MAC}.tlv failed ({error.kind}), not \"not found\"" in t
               for t in r.timeline), r.timeline


def test_model_order_without_ctlfile(lab: LabCluster) -> None:
    r, f = boot(phone(lab, profile="cp-7962"), lab.get)
    assert "CTLFile.tlv" not in f.requests and r.ok


def test_fetcher_choice_follows_profile_and_target(lab: LabCluster) -> None:
    assert isinstance(phone(lab).fetcher_for(TARGET), HttpThenTftpFetcher)
    assert isinstance(phone(lab, profile="cp-7962").fetcher_for(TARGET), TftpFetcher)
    no_http = dataclasses.replace(TARGET, use_http=False)
    assert isinstance(phone(lab).fetcher_for(no_http), TftpFetcher)
    with pytest.raises(EncodeError):
        BootTarget(host="h", tftp_port=0)
    with pytest.raises(EncodeError):
        BootTarget(host="")


def test_boot_refuses_mis_served_files(lab: LabCluster) -> None:
    """§A.2 tag 14: the ITL served as the CTL, and another phone's signed config, are refused."""
    other = "0A00000000B2"
    lab.add_phone(other, now=NOW)

    def serve(n: str) -> bytes | None:
        if n == f"CTLSEP{MAC}.tlv":
            return lab.get("ITLFile.tlv")
        if n == f"SEP{MAC}.cnf.xml.sgn":
            return lab.get(f"SEP{other}.cnf.xml.sgn")
        return lab.get(n)

    r, _ = boot(phone(lab), serve)
    assert rules(r)[0] == "G.3.1-wrong-file-name" and r.trust["CTL"] == "rejected"
    # the refused CTL keeps the phone locked after the ITL is installed (§G.3.5): the config is ignored
    assert rules(r) == ["G.3.1-wrong-file-name", "G.2-first-itl-tofu", "G.3.5-locked-ignores-config"]
    assert not r.ok and r.config == "rejected"
    p = phone(lab)
    assert boot(p, lab.get)[0].ok
    theirs = lab.get(f"SEP{other}.cnf.xml.sgn")
    r2, _ = boot(p, lambda n: theirs if n == f"SEP{MAC}.cnf.xml.sgn" else lab.get(n))
    assert r2.deciding is not None and r2.deciding.rule == "G.4-wrong-file-name" and not r2.ok


# --------------------------------------------------------------------------- transport → statuses (§H.3)
class Broken:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def fetch(self, name: str) -> bytes:
        raise self.exc


@pytest.mark.parametrize(("exc", "shown"), [
    (TransportError("no answer", kind="timeout"), status.TFTP_TIMEOUT),
    (TransportError("denied", kind="refused"), status.TFTP_ACCESS_ERROR),
    (DecodeError("bad packet"), status.TFTP_ERROR),
    (OSError("network down"), status.TFTP_ERROR),
])
def test_transport_failures_become_statuses(lab: LabCluster, exc: Exception, shown: str) -> None:
    r = run(phone(lab).boot(TARGET, fetcher=Broken(exc)))
    assert not r.ok and shown in r.statuses and r.config == "none"
    assert r.deciding is not None and r.deciding.rule == "H.3-config-transport-failed"
    assert transport_status(TransportError("x", kind="timeout")) == status.TFTP_TIMEOUT


@pytest.mark.parametrize(("exc", "answered"), [
    (TransportError("no answer", kind="timeout"), False),
    (TransportError("nothing listens", kind="unreachable"), False),
    (TransportError("File not found", kind="not-found", code=1), True),
    (TransportError("denied", kind="refused"), True),
    (DecodeError("bad packet"), True),
    (OSError("network down"), False),
])
def test_a_boot_says_whether_the_cluster_answered_at_all(lab: LabCluster, exc: Exception,
                                                          answered: bool) -> None:
    """BootReport.answered (fleet boot gives up on an address where nothing answers): an answer of any
    kind is one; timeouts and unreachable servers are none."""
    r = run(phone(lab).boot(TARGET, fetcher=Broken(exc)))
    assert r.answered is answered and r.as_dict()["answered"] is answered
    assert boot(phone(lab), lab.get)[0].answered


class HttpNotFoundTftpSilent(Broken):
    """HTTP 6970 answered "not found", the TFTP fallback timed out (as HttpThenTftpFetcher reports it)."""

    def __init__(self) -> None:
        super().__init__(TransportError("no answer", kind="timeout"))
        self.last_fallback = TransportError("HTTP 404", kind="not-found", code=1)


def test_an_http_answer_before_a_silent_tftp_fallback_is_an_answer(lab: LabCluster) -> None:
    r = run(phone(lab).boot(TARGET, fetcher=HttpNotFoundTftpSilent()))
    assert r.answered and not r.ok


class Lossy(MemoryFetcher):
    """Serves the lab's files, counting ``resends[name]`` TFTP retransmissions for each (a fake loss)."""

    def __init__(self, lab: LabCluster, resends: dict[str, int]) -> None:
        super().__init__(lab.get)
        self.resends = resends
        self.retransmits = 0

    async def fetch(self, name: str) -> bytes:
        self.retransmits += self.resends.get(name, 0)
        return await super().fetch(name)


def test_tftp_retransmissions_are_reported_per_boot_and_per_file(lab: LabCluster) -> None:
    """Spec §H.3 (TFTP timeouts): what the fetcher sent again shows in the timeline and the report."""
    f = Lossy(lab, {f"ITLSEP{MAC}.tlv": 2, "g3-tones.xml.sgn": 1})
    p = phone(lab)
    r = run(p.boot(TARGET, fetcher=f))
    assert r.ok and r.retransmits == 3 and r.as_dict()["retransmits"] == 3
    assert any(f"ITLSEP{MAC}.tlv: " in t and "bytes (2 TFTP retransmissions)" in t for t in r.timeline)
    assert any("g3-tones.xml.sgn: " in t and "(1 TFTP retransmission)" in t for t in r.timeline)
    again = run(p.boot(TARGET, fetcher=f))  # the fetcher's count runs on; each boot reports its own
    assert again.retransmits == 3
    assert boot(p, lab.get)[0].retransmits == 0  # a fetcher that keeps no count never retransmits


# --------------------------------------------------------------------------- TVS (§G.3.4, §E.1, §E.7)
def _installed_then_regenerated(lab: LabCluster, p: Phone) -> None:
    assert boot(p, lab.get)[0].ok
    lab.regenerate("itlrecovery", now=NOW)


def test_tvs_vouches_checks_server_cert_and_flushes(lab: LabCluster) -> None:
    tvs = FakeTvs(lab)
    p = phone(lab, tvs=tvs)
    _installed_then_regenerated(lab, p)
    r, _ = boot(p, lab.get)
    assert rules(r)[0] == "G.3.4-vouched-by-tvs" and r.tvs_used and r.ok
    assert tvs.server_ok == [True, False]  # only the ITL's TVS record is accepted (§E.1)
    assert tvs.queries[0].subject.startswith("CN=ITLRECOVERY")
    # DEVICE_NAME as phones send it, CP-<model>-SEP<MAC> (spec §E.4; it was SEP<MAC>, which tvsd refuses)
    assert tvs.device_names[0] == f"CP-8861-SEP{p.mac}"
    assert tvs_proto.is_valid_device_name(tvs.device_names[0])
    assert p.store.tvs_cache_size == 0
    assert any("cache flush" in line for line in r.timeline)


@pytest.mark.parametrize(("answer", "down", "rule"), [
    (TvsStatus.NOT_FOUND, False, "G.3.4-tvs-unknown-signer"),
    (None, True, "G.3.4-tvs-unreachable"),
])
def test_tvs_negative_answers(lab: LabCluster, answer: TvsResult | None, down: bool, rule: str) -> None:
    p = phone(lab, tvs=FakeTvs(lab, answer=answer, down=down))
    _installed_then_regenerated(lab, p)
    r, _ = boot(p, lab.get)
    assert r.deciding is not None and r.deciding.rule == rule and r.locked_out and not r.ok
    assert "G.3.5-locked-ignores-config" in rules(r)
    # no answer: the deciding reason names why (a fleet summary shows only that line)
    assert r.deciding.reason.endswith("(connection refused)") == down


def test_tvs_wrong_role(lab: LabCluster) -> None:
    tvs = FakeTvs(lab)
    p = phone(lab, tvs=tvs)
    _installed_then_regenerated(lab, p)
    # TVS knows the new ITLRecovery certificate, but only with the TVS role (21)
    tvs.answer = TvsAnswer(cert_der=lab.identity("itlrecovery").der, roles=frozenset({21}))
    r, _ = boot(p, lab.get)
    assert r.deciding is not None and r.deciding.rule == "G.3.4-tvs-wrong-role"


# --------------------------------------------------------------------------- CAPF (§F.1, §F.6, §G.12)
def test_capf_retries_three_more_times_then_gives_up(lab: LabCluster) -> None:
    lab.set_capf([MAC], "install", auth_mode="null-string", key="rsa1024", now=NOW)
    capf = FakeCapf(lab, failures=10)
    sleeps = Sleeps()
    p = phone(lab, capf=capf, capf_retry_delay=30.0, sleep=sleeps)
    r, _ = boot(p, lab.get)
    assert sleeps.calls == [30.0, 30.0, 30.0] and len(capf.sessions) == 4
    assert r.deciding is not None and r.deciding.rule == "F.1-capf-unreachable"
    assert r.ok and r.lsc == "absent"  # the (non-encrypted) config itself was accepted
    assert capf.server_ok[:2] == [True, False]  # CAPF cert must be the ITL CAPF record (§F.1)


def test_capf_install_after_one_failure_then_config_retrieved_again(lab: LabCluster) -> None:
    lab.set_encryption([MAC], True, now=NOW)
    lab.set_capf([MAC], "install", auth_mode="null-string", key="rsa1024", now=NOW)
    other = LabCluster.init(lab.root.parent / "other", key_spec="rsa1024", now=NOW)
    other.add_phone(MAC, now=NOW)
    capf = FakeCapf(lab, failures=1)
    p = Phone(mac=MAC, profile=get_profile("cp-8861"), flash=None, clock=lambda: NOW,
              mic=other.phone_identity(MAC), tvs=FakeTvs(lab), capf=capf, capf_retry_delay=0)
    r, _ = boot(p, lab.get)
    assert "G.12.2-cert-hash-mismatch" in rules(r) and "F.6-lsc-installed" in rules(r)
    assert r.ok and r.encrypted and r.lsc == "installed" and len(capf.sessions) == 2
    assert capf.sessions[0].auth_mode == 2
    info = show_state(p.store, mac=MAC)
    assert info["lsc"]["subject"] and info["config"]["encr_config"] is True
    assert "LSC:\n" in render_show(info) or "  LSC:" in render_show(info)


def test_capf_delete_and_nothing_pending(lab: LabCluster) -> None:
    lab.set_capf([MAC], "delete", auth_mode="null-string", now=NOW)
    r, _ = boot(phone(lab, capf=FakeCapf(lab, outcome="deleted")), lab.get)
    assert r.lsc == "deleted" and "F.6-lsc-deleted" in rules(r)
    r2, _ = boot(phone(lab, capf=FakeCapf(lab, outcome="nothing-pending")), lab.get)
    assert r2.lsc == "unchanged" and "F.6-nothing-pending" in rules(r2)
    r3, _ = boot(phone(lab, capf=FakeCapf(lab, outcome="rejected")), lab.get)
    assert "F.6-capf-rejected" in rules(r3)


def test_encrypted_first_decrypt_failure_reads_short_config(lab: LabCluster) -> None:
    """§G.12.3: the .enc.sgn no longer decrypts (new phone key) → short config → certHash mismatch."""
    lab.set_encryption([MAC], True, now=NOW)
    p = phone(lab)
    assert boot(p, lab.get)[0].encrypted
    other = LabCluster.init(lab.root.parent / "other", key_spec="rsa1024", now=NOW)
    other.add_phone(MAC, now=NOW)
    from phoneemu.phone.store import Credential
    p.store.mic = Credential.of(*other.phone_identity(MAC))
    r, f = boot(p, lab.get)
    assert list(f.requests)[-2:] == [f"SEP{MAC}.cnf.xml.enc.sgn", f"SEP{MAC}.cnf.xml.sgn"]
    assert "G.12.3-decrypt-failed" in rules(r) and "G.12.2-cert-hash-mismatch" in rules(r)
    assert "F.7-no-capf-operation" in rules(r) and not r.ok and r.config == "rejected"


def test_auth_string_validation_and_symmetric_key(lab: LabCluster, tmp_path: Path) -> None:
    p = phone(lab, tmp_path, profile="cp-7942-symmetric", mic=False)
    for bad in ("12", "12ab", "1" * 17):
        with pytest.raises(EncodeError):
            p.enter_auth_string(bad)
    p.enter_auth_string(1234)
    assert p.auth_string == "1234"
    with pytest.raises(EncodeError):
        p.set_symmetric_key("zz")
    with pytest.raises(EncodeError):
        p.set_symmetric_key("0011")  # 16 bits, the model takes 128
    p.set_symmetric_key("00112233445566778899AABBCCDDEEFF")
    assert p.store.symmetric_key is not None and (tmp_path / "flash" / "symmetric.key").exists()
    p.set_symmetric_key("0" * 32)
    assert p.store.symmetric_key is None


def test_symmetric_key_without_trust_list_signature_unchecked(lab: LabCluster) -> None:
    """§G.4 no trust anchor: an .enc.sgn's signature cannot be checked; the manual key decrypts it."""
    key = "00112233445566778899aabbccddeeff"
    lab.add_phone(MAC, encrypt="symmetric", symmetric_key=key, now=NOW)
    prof = profile_from_dict("cp-7942-symmetric", {"request_order": ["CTLSEP{mac}.tlv"]})
    p = phone(lab, profile=prof)
    p.set_symmetric_key(key)
    r, _ = boot(p, lab.get)
    assert r.ok and r.encrypted and r.deciding is not None and r.deciding.rule == "G.12.3-decrypted"
    assert "no trust anchor" in r.deciding.reason


def test_symmetric_without_key_has_no_device_config(lab: LabCluster) -> None:
    lab.add_phone(MAC, encrypt="symmetric", symmetric_key="00" * 15 + "01", now=NOW)
    r, f = boot(phone(lab, profile="cp-7942-symmetric"), lab.get)
    assert f"SEP{MAC}.cnf.xml.enc.sgn" not in f.requests
    assert "G.10-use-default-config" in rules(r)  # .sgn not served: auto-registration default


class StrictCapf(FakeCapf):
    """A CAPF server presenting ``present``; like the TLS client, a refused certificate ends the session."""

    def __init__(self, lab: LabCluster, present: bytes, **kw: Any) -> None:
        super().__init__(lab, **kw)
        self.present = present
        self.refused = 0

    async def __call__(self, server: Server, session: CapfClientSession, *,
                       accept_server: Callable[[bytes | None], bool] | None) -> CapfResult:
        if accept_server is not None and not accept_server(self.present):
            self.refused += 1
            raise TransportError(f"{server.host}:{server.port}: CAPF certificate not accepted", kind="tls")
        return await super().__call__(server, session, accept_server=None)


def _itl_without(lab: LabCluster, role: int, strip: bool = False) -> Callable[[str], bytes | None]:
    """The lab's files, its ITL rebuilt without ``role`` records (or with them reduced to
    subject/issuer/serial when ``strip``: no certificate, no key), signed by ITLRecovery."""
    recs = [r for r in lab.itl_records() if r.role != role or strip]
    if strip:
        recs = [dataclasses.replace(r, certificate=None, public_key=None, signature=None) if r.role == role
                else r for r in recs]
    itl = trustlist.build(kind="ITL", records=recs, signer=lab.identity("itlrecovery").signer, timestamp=NOW)
    return lambda n: itl if n in (f"ITLSEP{MAC}.tlv", "ITLFile.tlv") else lab.get(n)


def _attacker_cert() -> bytes:
    import datetime as dt

    from phoneemu.crypto import certs
    from phoneemu.crypto.keys import KeySpec, generate_key
    key = generate_key(KeySpec.parse("rsa1024"), unsafe_seed="boot-unit-attacker")
    t = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    req = certs.CertRequest(subject="CN=CAPF-evil;O=Attacker", public_key=key.public_key(), serial=666,
                            not_before=t - dt.timedelta(days=1), not_after=t + dt.timedelta(days=365))
    return certs.cert_der(certs.issue_certificate(req, issuer_key=key))


def test_capf_server_without_capf_record_needs_tvs(lab: LabCluster) -> None:
    """§F.1, §G.5: with no CAPF record in the CTL/ITL, the CAPF certificate must be vouched for by TVS
    (role CAPF); an unknown CAPF server is refused before anything is sent."""
    lab.set_capf([MAC], "install", auth_mode="null-string", key="rsa1024", now=NOW)
    files = _itl_without(lab, Role.CAPF)
    tvs = FakeTvs(lab)
    evil = StrictCapf(lab, _attacker_cert())
    r, _ = boot(phone(lab, tvs=tvs, capf=evil, capf_retry_delay=0), files)
    assert r.lsc == "absent" and not evil.sessions and evil.refused == 4  # 1 + 3 retries, TVS asked once
    assert r.deciding is not None and r.deciding.rule == "F.1-capf-server-untrusted"
    assert r.deciding.reason_code is not None and r.deciding.reason_code.value == "unknown-signer"
    assert len(tvs.queries) == 1 and tvs.queries[0].subject == "CN=CAPF-evil;O=Attacker"
    # the cluster's own CAPF: not in the ITL, but TVS vouches for it with the CAPF role
    tvs2 = FakeTvs(lab)
    good = StrictCapf(lab, lab.identity("capf").der)
    r2, _ = boot(phone(lab, tvs=tvs2, capf=good, capf_retry_delay=0), files)
    assert "F.1-capf-vouched-by-tvs" in rules(r2) and r2.lsc == "installed" and good.refused == 1
    assert len(good.sessions) == 1 and len(tvs2.queries) == 1
    # the CAPF record in the ITL: no TVS needed
    lab.set_capf([MAC], "install", auth_mode="null-string", key="rsa1024", now=NOW)
    tvs3 = FakeTvs(lab)
    r3, _ = boot(phone(lab, tvs=tvs3, capf=StrictCapf(lab, lab.identity("capf").der)), lab.get)
    assert r3.lsc == "installed" and not tvs3.queries


def test_capf_server_refused_with_no_trust_list(lab: LabCluster) -> None:
    """No CTL/ITL at all: nothing vouches for a CAPF server (the phone needs the ITL to talk to CAPF)."""
    lab.set_capf([MAC], "install", auth_mode="null-string", key="rsa1024", now=NOW)
    capf = StrictCapf(lab, lab.identity("capf").der)
    r, _ = boot(phone(lab, capf=capf, capf_retry_delay=0),
                lambda n: None if n.endswith(".tlv") else lab.get(n))
    assert r.trust == {"CTL": "absent", "ITL": "absent"} and r.lsc == "absent" and not capf.sessions
    assert r.deciding is not None and r.deciding.rule == "F.1-capf-server-untrusted"


def test_tvs_record_without_certificate_or_key_makes_tvs_unusable(lab: LabCluster) -> None:
    """§E.1, §E.7.5: a TVS record the TVS certificate cannot be checked against is no TVS record: the
    phone never talks to a TVS its ITL does not name."""
    tvs = FakeTvs(lab)
    p = phone(lab, tvs=tvs)
    assert boot(p, _itl_without(lab, Role.TVS, strip=True))[0].ok
    lab.regenerate("itlrecovery", now=NOW)
    r, _ = boot(p, lab.get)
    assert not tvs.queries and not tvs.server_ok and not r.tvs_used
    assert r.deciding is not None and r.deciding.rule == "G.3.5-reject-unknown-signer" and r.locked_out


def test_tvs_record_with_key_only_matches_by_key(lab: LabCluster) -> None:
    """A TVS record with a key but no certificate authenticates a TVS server holding that key."""
    recs = [dataclasses.replace(r, certificate=None, signature=None) if r.role == Role.TVS else r
            for r in lab.itl_records()]
    itl = trustlist.build(kind="ITL", records=recs, signer=lab.identity("itlrecovery").signer, timestamp=NOW)
    tvs = FakeTvs(lab)
    p = phone(lab, tvs=tvs)
    assert boot(p, lambda n: itl if n.startswith("ITL") else lab.get(n))[0].ok
    lab.regenerate("itlrecovery", now=NOW)
    r, _ = boot(p, lab.get)
    assert rules(r)[0] == "G.3.4-vouched-by-tvs" and tvs.server_ok == [True, False]


def test_tvs_server_refused_has_its_own_rule(lab: LabCluster) -> None:
    """Every TVS server reached presents a certificate that is not an ITL TVS record (§E.1)."""
    class Impostor(FakeTvs):
        async def __call__(self, servers: Sequence[Server], key: QueryKey, *, device_name: str,
                           accept_server: Callable[[bytes | None], bool] | None) -> TvsResult:
            self.queries.append(key)
            assert accept_server is not None and not accept_server(_attacker_cert())
            raise TransportError("127.0.0.1:2445: TVS certificate not accepted", kind="tls")

    p = phone(lab, tvs=Impostor(lab))
    _installed_then_regenerated(lab, p)
    r, _ = boot(p, lab.get)
    assert r.deciding is not None and r.deciding.rule == "G.3.4-tvs-server-untrusted" and r.locked_out


# --------------------------------------------------------------------------- firmware (§D)
def test_firmware_missing_keeps_running_load(lab: LabCluster) -> None:
    lab.set_load("sip88xx.1-0-0", now=NOW)
    r, _ = boot(phone(lab), lambda n: None if n.endswith(".loads") else lab.get(n))
    assert r.firmware == "rejected" and "D-fetch-failed" in rules(r) and r.load is None and r.ok


def test_firmware_other_signed_load_is_not_installed(lab: LabCluster) -> None:
    """§D: the config names load X; a genuinely signed load Y served as X.loads keeps the running load."""
    from phoneemu.formats import firmware
    lab.set_load("sip88xx.2-0-0", now=NOW)
    older = firmware.build(load_name="sip88xx.1-0-0", payload=bytes(64), timestamp=NOW, hash_alg=3,
                           signer=lab.identity("imagesigning").signer, filename="sip88xx.2-0-0.loads")
    r, _ = boot(phone(lab), lambda n: older if n.endswith(".loads") else lab.get(n))
    assert "D-wrong-load" in rules(r) and r.firmware == "rejected" and r.load is None and r.ok


# --------------------------------------------------------------------------- §G.9, §G.2 legacy
def _secure_config_files(lab: LabCluster) -> Callable[[str], bytes | None]:
    name = config.config_file_name(MAC, "sgn")
    sgn = lab.get(name)
    assert sgn is not None
    cfg = dataclasses.replace(config.parse(signed.parse(sgn).body), device_security_mode=3)
    data = signed.build(body=config.build(cfg), filename=name, signer=lab.callmanager().signer, timestamp=NOW)
    return lambda n: data if n == name else lab.get(n)


def test_secure_mode_without_ctl_retries_then_tcp(lab: LabCluster) -> None:
    r, f = boot(phone(lab), _secure_config_files(lab))
    g9 = [x for x in rules(r) if x.startswith("G.9")]
    assert g9 == ["G.9-retry-trust-file"] * 3 + ["G.9-fallback-tcp"]  # §G.9 "tries four times" in all
    assert list(f.requests).count(f"CTLSEP{MAC}.tlv") == 4 and r.ok


def test_secure_mode_with_ctl_uses_tls(lab: LabCluster) -> None:
    lab.set_mixed_mode(True, now=NOW)
    r, _ = boot(phone(lab), _secure_config_files(lab))
    assert [x for x in rules(r) if x.startswith("G.9")] == ["G.9-tls-with-ctl"]


def test_legacy_profile_ignores_requested_itl(lab: LabCluster) -> None:
    prof = profile_from_dict("cp-7940", {"request_order": ["CTLSEP{mac}.tlv", "ITLSEP{mac}.tlv"]})
    r, _ = boot(phone(lab, profile=prof), lab.get)
    assert rules(r)[0] == "G.2-legacy-ignores-itl" and r.trust["ITL"] == "absent" and r.ok
    assert r.statuses.count(status.NO_TRUST_LIST) == 1 and not r.locked_out


# --------------------------------------------------------------------------- flash, API, report, show
def test_flash_persists_and_reboot_continues(lab: LabCluster, tmp_path: Path) -> None:
    p = phone(lab, tmp_path)
    assert boot(p, lab.get)[0].ok
    assert read_phone_file(tmp_path / "flash") == {"mac": MAC, "profile": "cp-8861"}
    again = Phone.from_flash(tmp_path / "flash", profile=get_profile("cp-8861"), clock=lambda: NOW,
                             tvs=FakeTvs(lab), capf=FakeCapf(lab))
    assert again.store.itl is not None and again.store.mic is not None
    r, _ = boot(again, lab.get)
    assert r.trust["ITL"] == "unchanged" and r.ok
    assert again.erase_trust() == status.ERASING_CTL_ITL
    assert not (tmp_path / "flash" / "ITLFile.tlv").exists()
    again.factory_reset()
    files = Flash(tmp_path / "flash", profile=get_profile("cp-8861")).files()
    assert "mic.der" in files and "config.xml" not in files and PHONE_FILE in files
    with pytest.raises(DecodeError):
        Phone.from_flash(tmp_path / "nothing", profile=get_profile("cp-8861"), clock=lambda: NOW)


def test_report_is_json_ready_and_show_renders_state(lab: LabCluster, tmp_path: Path) -> None:
    lab.set_load("sip88xx.1-0-0", now=NOW)
    p = phone(lab, tmp_path)
    r, _ = boot(p, lab.get)
    doc = json.loads(json.dumps(r.as_dict()))
    assert doc["ok"] and doc["decisions"][0]["rule"] == "G.2-first-itl-tofu" and doc["firmware"] == "accepted"
    assert all(line[:2].isdigit() and line[2] == ":" for line in r.timeline)
    info = show_state(p.store, mac=MAC, now=NOW)
    assert p.store.itl is not None and info["itl"]["md5"] == p.store.itl.md5()
    assert info["running_load"] == "sip88xx.1-0-0" and info["mic"]["subject"].startswith("CN=CP-8861")
    text = render_show(info)
    assert "Length of CTL file: 0" in text and f"{p.store.itl.sha1()}(SHA1)" in text
    assert "Installed by rule: G.2-first-itl-tofu" in text
    assert "This etoken was used to sign the ITL file." in text
    assert "FUNCTION" in text and "SERIALNUMBER" in text


def test_phone_cli_show_erase_set_key_reset(lab: LabCluster, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert boot(phone(lab, tmp_path), lab.get)[0].ok
    d = str(tmp_path / "flash")
    assert cli.main(["phone", "show", "--flash", d]) == 0
    assert "The checksum value of the ITL file:" in capsys.readouterr().out
    assert cli.main(["phone", "show", "--flash", d, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mac"] == MAC
    assert cli.main(["phone", "set-key", "--flash", d, "11" * 16]) == 2  # cp-8861 has no manual key
    assert cli.main(["phone", "set-key", "--flash", d, "--profile", "cp-7942-symmetric", "11" * 16]) == 0
    assert "set" in capsys.readouterr().out
    assert cli.main(["phone", "erase", "--flash", d]) == 0
    assert status.ERASING_CTL_ITL in capsys.readouterr().out
    assert cli.main(["phone", "factory-reset", "--flash", d]) == 0
    assert cli.main(["phone", "show", "--flash", str(tmp_path / "missing")]) == 2
    missing = tmp_path / "missing"
    assert capsys.readouterr().err == (f"phoneemu phone show: {missing}: no such flash directory "
                                       "(an emulated phone's flash is made by boot --flash DIR)\n")


def test_parse_hostport() -> None:
    from phoneemu.commands.boot import parse_hostport
    from phoneemu.errors import PhoneEmuError
    assert parse_hostport("10.0.0.1") == ("10.0.0.1", 69)
    assert parse_hostport("10.0.0.1:6969") == ("10.0.0.1", 6969)
    assert parse_hostport("[::1]:70") == ("::1", 70)
    assert parse_hostport("::1") == ("::1", 69)
    assert parse_hostport("[::1]") == ("::1", 69)
    for bad in (":69", "h:0", "h:x"):
        with pytest.raises(PhoneEmuError):
            parse_hostport(bad)


@pytest.mark.parametrize("bad", ["10.0.0.1:", "[::1]:", "[::1]x", "[::1]6969", "[::1", "h:\uff16\uff19"])
def test_parse_hostport_refuses_a_missing_port_or_junk_after_the_bracket(bad: str) -> None:
    """Were port 69 (``HOST:``, ``[::1]x``) or the host ``::1`` of an unclosed ``[::1``: a typo sent
    a fleet to the wrong place; refused like any other bad --tftp."""
    from phoneemu.commands.boot import parse_hostport
    from phoneemu.errors import PhoneEmuError
    with pytest.raises(PhoneEmuError, match=r"--tftp '.*': (port must be 1\.\.65535|expected \[IPV6\])"):
        parse_hostport(bad)


@pytest.mark.parametrize("bad", ["-1", "999", "256", ",,", "", "0,x", "\u0663"])
def test_tvs_roles_are_one_byte_codes(bad: str) -> None:
    """Were accepted: an offline TVS vouching with roles no TVS answer can carry (one byte each), or none."""
    from phoneemu.commands.boot import tvs_roles
    from phoneemu.errors import PhoneEmuError
    assert tvs_roles("0,2") == frozenset({0, 2}) and tvs_roles(" 21 ,0,") == frozenset({0, 21})
    with pytest.raises(PhoneEmuError, match=r"role codes 0\.\.255"):
        tvs_roles(bad)


def test_mic_key_of_another_certificate_is_refused(tmp_path: Path, pki: Any,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Was taken: the boot ran with a MIC whose key is not its certificate's (CAPF and PKI-encrypted
    configs would then fail for a reason the output never named)."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from phoneemu.crypto.keys import private_key_pem
    lab = pki.lab()
    cert = tmp_path / "mic.pem"
    cert.write_bytes(lab["callmanager"].cert.public_bytes(Encoding.PEM))
    other = tmp_path / "other.key"
    other.write_bytes(private_key_pem(lab["tvs"].key))
    argv = ["boot", "--tftp", "127.0.0.1:9", "--mac", "001122334455", "--no-http", "--timeout", "0.05",
            "--mic", str(cert), "--mic-key", str(other)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--mic-key {other} is not the private key of the --mic {cert}" in err


# --------------------------------------------------------------------------- bad input never escapes
@pytest.fixture(scope="module")
def ro_lab(base_lab: Path) -> LabCluster:
    """The pristine lab, read only (hypothesis examples share it)."""
    return LabCluster.open(base_lab)


_NAMES = (f"CTLSEP{MAC}.tlv", f"ITLSEP{MAC}.tlv", f"SEP{MAC}.cnf.xml.sgn", "XmlDefault.cnf.xml")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(junk=st.binary(max_size=1500), which=st.sampled_from(_NAMES))
def test_garbage_served_never_escapes_boot(ro_lab: LabCluster, junk: bytes, which: str) -> None:
    """Any bytes for any file: boot returns a report; a trust list that does not parse is not stored."""
    p = phone(ro_lab)
    r, _ = boot(p, lambda n: junk if n == which else ro_lab.get(n))
    assert isinstance(r, BootReport)
    if which.startswith("ITLSEP"):
        assert p.store.itl is None or p.store.itl.raw == junk
        assert r.trust["ITL"] in ("rejected", "installed")
    if which.startswith("CTLSEP"):
        assert p.store.ctl is None or p.store.ctl.raw == junk


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(offset=st.integers(min_value=0, max_value=10_000), bit=st.integers(min_value=0, max_value=7))
def test_one_byte_tampered_itl_is_never_installed_over_a_trusted_one(ro_lab: LabCluster, offset: int,
                                                                      bit: int) -> None:
    real = ro_lab.get("ITLFile.tlv")
    assert real is not None
    p = phone(ro_lab)
    assert boot(p, ro_lab.get)[0].ok
    off = offset % len(real)
    tampered = real[:off] + bytes([real[off] ^ (1 << bit)]) + real[off + 1:]
    r, _ = boot(p, lambda n: tampered if n.startswith("ITL") else ro_lab.get(n))
    assert p.store.itl is not None and p.store.itl.raw == real
    assert r.trust["ITL"] == "rejected" and r.locked_out and not r.ok


def test_show_exposes_the_checksums_show_itl_and_show_ctl_print(lab: LabCluster) -> None:
    lab.set_mixed_mode(True, now=NOW)
    for profile, alg in (("cp-8861", "sha1"), ("cp-7962", "md5")):
        p = phone(lab, profile=profile)
        r, _ = boot(p, lab.get)
        assert r.ok
        info = show_state(p.store, mac=MAC)
        itl, ctl = lab.checksums("ITL"), lab.checksums("CTL")
        assert itl is not None and ctl is not None
        assert info["itl_checksum"] == itl[alg] and info["ctl_checksum"] == ctl[alg]
        text = render_show(info)
        assert f"ITL checksum shown/reported: {itl[alg]}" in text
        assert f"CTL checksum shown: {ctl[alg]}" in text


# --------------------------------------------------------------------------- §G.3.5 lock within one boot
def test_ctl_refused_lock_survives_an_itl_installed_later_in_the_boot(lab: LabCluster) -> None:
    """§G.3.5: a refused CTL locks the phone; the ITL accepted after it in the same boot (signed by
    ITLRecovery, which the phone trusts) does not unlock it, so the changed config is ignored."""
    lab.set_mixed_mode(True, now=NOW)
    tvs = FakeTvs(lab, down=True)
    p = phone(lab, tvs=tvs)
    assert boot(p, lab.get)[0].ok
    lab.ctl_reset("localkey", now=NOW)
    r, _ = boot(p, lab.get)
    assert r.trust["CTL"] == "updated" and r.ok
    lab.regenerate("callmanager", now=NOW)  # new CTL signer unknown to the CTL; TVS down
    r, _ = boot(p, lab.get)
    assert r.trust["CTL"] == "rejected" and r.trust["ITL"] == "updated"
    assert p.store.locked and p.store.locked_by == frozenset({"CTL"})
    assert "G.3.5-locked-ignores-config" in rules(r) and r.config == "rejected"
    assert not r.ok and r.locked_out
    assert status.TRUST_LIST_UPDATE_FAILED in r.statuses
    info = show_state(p.store, mac=MAC)
    assert info["locked"] and info["locked_by"] == ["CTL"]
    assert "Trust List update failed (CTL refused)" in render_show(info)


def test_phone_show_of_a_flash_says_the_last_boot_locked_the_phone(
        lab: LabCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The locked flag is RAM only, but a phone at rest is as its last boot left it: ``phone show
    --flash`` (a new process) says it is locked out, by which list and the deciding decision; an
    erase of the trust lists clears that."""
    p = phone(lab, tmp_path, tvs=FakeTvs(lab, down=True))
    assert boot(p, lab.get)[0].ok
    lab.regenerate("itlrecovery", now=NOW)  # new ITL signer; TVS down: the ITL is refused
    r, _ = boot(p, lab.get)
    assert r.locked_out and r.trust["ITL"] == "rejected"
    flash = tmp_path / "flash"
    assert cli.main(["phone", "show", "--flash", str(flash), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["locked"] is True and info["locked_by"] == ["ITL"]
    last = info["last_boot"]
    assert last["locked_out"] is True and last["trust"]["ITL"] == "rejected"
    assert last["deciding"].startswith("G.3.4-tvs-unreachable (rejected) ITLSEP")
    assert info["ways_out"][0]["scenario"] == "tvs-outage"  # and then? (phone.ways_out)
    assert cli.main(["phone", "show", "--flash", str(flash)]) == 0
    out = capsys.readouterr().out
    assert "Last boot: " in out and "FAILED, locked out; CTL absent, ITL rejected" in out
    assert "deciding: G.3.4-tvs-unreachable (rejected)" in out and "(ITL refused)" in out
    # and then? (phone.ways_out)
    assert "  way out (a TVS outage, or TVS moved): bring TVS back where the phones' config names it" in out
    assert f"lab: phoneemu phone erase --flash {flash}   rehearse: " in out
    assert cli.main(["phone", "erase", "--flash", str(flash)]) == 0
    capsys.readouterr()
    assert cli.main(["phone", "show", "--flash", str(flash), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["locked"] is False and info["last_boot"] is None and info["ways_out"] == []


def test_g9_retries_keep_the_boots_ctl_outcome(lab: LabCluster) -> None:
    """§G.9: the CTL installed by the boot's first request stays the boot's CTL outcome; the retries
    (which fetch the same CTL again) are their own decisions, marked as retries."""
    lab.set_mixed_mode(True, now=NOW)
    recs = [r for r in lab.ctl_records() if r.role not in (Role.CCM, Role.CCM_TFTP)]
    ctl = trustlist.build(kind="CTL", records=recs, signer=lab.identity("itlrecovery").signer, timestamp=NOW)
    files = _secure_config_files(lab)
    r, f = boot(phone(lab), lambda n: ctl if n == f"CTLSEP{MAC}.tlv" else files(n))
    assert [x for x in rules(r) if x.startswith("G.9")] == ["G.9-retry-trust-file"] * 3 + ["G.9-fallback-tcp"]
    assert list(f.requests).count(f"CTLSEP{MAC}.tlv") == 4
    assert r.trust["CTL"] == "installed"
    ctl_rules = [d for d in r.decisions if d.kind == "CTL"]
    assert [d.rule for d in ctl_rules] == ["G.2-first-ctl-tofu"] + ["G.3-unchanged"] * 3
    assert all(d.reason.startswith("§G.9 retry") for d in ctl_rules[1:])


# --------------------------------------------------------------------------- static files (§C.6 row 6, §G.4)
def test_static_files_named_by_the_config_are_fetched_and_verified(lab: LabCluster) -> None:
    """Seed "File Authentication": the phone verifies the signed ring list / locale / dial-rule files
    it downloads; the genuine ones pass the §G.4 signer rules (ITL TFTP record)."""
    r, _ = boot(phone(lab), lab.get)
    assert r.ok and r.static == {"g3-tones.xml": "accepted", "AppDialRules.xml": "accepted"}
    static = [d for d in r.decisions if d.kind == "static"]
    assert [(d.file, d.rule) for d in static] == [("g3-tones.xml.sgn", "G.4-signed-by-itl-tftp"),
                                                  ("AppDialRules.xml.sgn", "G.4-signed-by-itl-tftp")]
    assert r.as_dict()["static"] == r.static


@pytest.mark.parametrize("how", ["tamper", "unsigned", "other-signer", "other-name"])
def test_bad_static_file_is_refused_config_kept(lab: LabCluster, how: str) -> None:
    """A tampered, unsigned, unknown-signer or mis-named static file is refused (§G.4); the config stays."""
    name = "g3-tones.xml.sgn"
    good = lab.get(name)
    body = lab.get("g3-tones.xml")
    assert good is not None and body is not None
    if how == "tamper":
        bad = good[:-1] + bytes([good[-1] ^ 1])
        rule = "G.4-bad-signature"
    elif how == "unsigned":
        bad = body
        rule = "G.4-malformed"
    elif how == "other-signer":
        bad = signed.build(body=body, filename=name, signer=lab.identity("capf").signer, timestamp=NOW)
        rule = "G.4-tvs-wrong-role"  # TVS is asked, as for configs: it knows CAPF only as CAPF
    else:
        bad = lab.get("AppDialRules.xml.sgn") or b""
        rule = "G.4-wrong-file-name"
    p = phone(lab)
    r, _ = boot(p, lambda n: bad if n == name else lab.get(n))
    assert r.ok and r.config == "accepted"
    assert r.static == {"g3-tones.xml": "rejected", "AppDialRules.xml": "accepted"}
    assert r.deciding is not None and r.deciding.rule == rule and r.deciding.kind == "static"
    assert not p.store.locked


def test_static_files_plain_without_trust_list_and_missing_ones_are_normal(lab: LabCluster) -> None:
    def serve(n: str) -> bytes | None:
        if n.endswith(".tlv") or n == "AppDialRules.xml":
            return None
        return lab.get(n)
    r, f = boot(phone(lab), serve)
    assert r.ok and "g3-tones.xml" in f.requests and "g3-tones.xml.sgn" not in f.requests
    assert r.static == {"g3-tones.xml": "accepted", "AppDialRules.xml": "not-found"}
    assert [d.rule for d in r.decisions if d.kind == "static"] == ["G.4-unsigned-no-trust-list"]



# --------------------------------------------------------------------------- CAPF server trust across retries
class ScriptedCapf(FakeCapf):
    """A CAPF server whose TLS connections follow ``script``, one step each (the reconnect after a TVS
    vouch is a connection too): ``None`` = unreachable before any certificate; ``"capf"`` / ``"evil"`` =
    present the lab's CAPF / an attacker's certificate (refused → ``kind="tls"`` "not accepted", as the
    TLS client; accepted → the session runs); ``"capf-lost"`` = present the lab's and lose the line."""

    def __init__(self, lab: LabCluster, script: Sequence[str | None]) -> None:
        super().__init__(lab)
        self.script = list(script)

    async def __call__(self, server: Server, session: CapfClientSession, *,
                       accept_server: Callable[[bytes | None], bool] | None) -> CapfResult:
        step = self.script.pop(0)
        where = f"{server.host}:{server.port}"
        if step is None:
            raise TransportError(f"{where}: connection refused", kind="unreachable")
        assert accept_server is not None
        if not accept_server(_attacker_cert() if step == "evil" else self.lab.identity("capf").der):
            raise TransportError(f"{where}: CAPF certificate not accepted", kind="tls")
        if step == "capf-lost":
            raise TransportError(f"{where}: connection lost", kind="unreachable")
        return await super().__call__(server, session, accept_server=None)


_SESSION = "CAPF session with 127.0.0.1:3804 (auth mode 2)"
_REFUSED = "CAPF tls: 127.0.0.1:3804: CAPF certificate not accepted"
_LOST = "CAPF unreachable: 127.0.0.1:3804: connection refused"


def _retry(n: int) -> list[str]:
    return [f"CAPF retry {n} of 3 after 30s", _SESSION]


def _asked(who: str, answer: str) -> list[str]:
    return [f"127.0.0.1:3804: F.1-capf-needs-tvs pending (signer {who}): CAPF certificate not in CTL/ITL: "
            f"ask TVS", f"asking TVS about {who}: connecting to 127.0.0.1:2445",
            f"QUERY {who} to 127.0.0.1:2445", answer]


_FOUND = "TVS knows the certificate, roles CAPF (4), TTL 86400s"
_VOUCHED = ("127.0.0.1:3804: F.1-capf-vouched-by-tvs accepted (signer <capf>): TVS vouched for the CAPF "
            "certificate (roles CAPF (4))")
_INSTALLED = "capf: F.6-lsc-installed accepted: CAPF issued an LSC; stored with its private key"
_UNKNOWN = "CAPF certificate not in CTL/ITL and unknown to TVS"

_NO_TVS = "TVS unreachable (unreachable): connection refused"

# (script, TVS queries that find TVS down, CAPF timeline, CAPF decisions in the report, deciding rule
#  (None: the CAPF server was trusted), TVS queries, retries slept)
_CAPF_PATHS: dict[str, tuple[list[str | None], int, list[str], list[str], str | None, list[str], int]] = {
    "refused-then-retried": (
        ["evil"] * 4, 0,
        [_SESSION, *_asked("<evil>", "TVS answer: not-found"), _REFUSED,
         *_retry(1), _REFUSED, *_retry(2), _REFUSED, *_retry(3), _REFUSED,
         f"127.0.0.1:3804: F.1-capf-server-untrusted rejected (signer <evil>): after 4 attempts: {_UNKNOWN}"],
        ["F.1-capf-server-untrusted"], "F.1-capf-server-untrusted unknown-signer", ["<evil>"], 3),
    "tvs-unreachable-asked-at-every-attempt": (
        ["capf"] * 4, 4,
        [_SESSION, *_asked("<capf>", _NO_TVS), _REFUSED,
         *_retry(1), *_asked("<capf>", _NO_TVS), _REFUSED, *_retry(2), *_asked("<capf>", _NO_TVS), _REFUSED,
         *_retry(3), *_asked("<capf>", _NO_TVS), _REFUSED,
         "127.0.0.1:3804: F.1-capf-server-untrusted rejected (signer <capf>): after 4 attempts: CAPF "
         "certificate not in CTL/ITL and TVS could not vouch (unreachable)"],
        ["F.1-capf-server-untrusted"], "F.1-capf-server-untrusted tvs-unreachable", ["<capf>"] * 4, 3),
    "tvs-back-on-the-second-attempt": (
        ["capf", "capf", "capf"], 1,
        [_SESSION, *_asked("<capf>", _NO_TVS), _REFUSED, *_retry(1), *_asked("<capf>", _FOUND), _VOUCHED,
         _INSTALLED],
        ["F.1-capf-vouched-by-tvs", "F.6-lsc-installed"], None, ["<capf>", "<capf>"], 1),
    "another-certificate-on-the-reconnect-refused": (
        [None, None, None, "capf", "evil"], 0,
        [_SESSION, _LOST, *_retry(1), _LOST, *_retry(2), _LOST, *_retry(3), *_asked("<capf>", _FOUND),
         _VOUCHED, _REFUSED, "127.0.0.1:3804: F.1-capf-server-untrusted rejected (signer <evil>): after 4 "
         "attempts: on the reconnect after TVS vouched for <capf> the CAPF server presented another "
         "certificate, <evil>, not in CTL/ITL and not vouched for"],
        ["F.1-capf-vouched-by-tvs", "F.1-capf-server-untrusted"], "F.1-capf-server-untrusted unknown-signer",
        ["<capf>"], 3),
    "another-certificate-on-the-reconnect-asked-next-attempt": (
        ["capf", "evil", "evil", "capf"], 0,
        [_SESSION, *_asked("<capf>", _FOUND), _VOUCHED, _REFUSED, *_retry(1),
         *_asked("<evil>", "TVS answer: not-found"), _REFUSED, *_retry(2), _VOUCHED, _INSTALLED],
        ["F.1-capf-vouched-by-tvs", "F.1-capf-vouched-by-tvs", "F.6-lsc-installed"], None,
        ["<capf>", "<evil>"], 2),
    "vouched-on-the-second-attempt": (
        [None, "capf", "capf"], 0,
        [_SESSION, _LOST, *_retry(1), *_asked("<capf>", _FOUND), _VOUCHED, _INSTALLED],
        ["F.1-capf-vouched-by-tvs", "F.6-lsc-installed"], None, ["<capf>"], 1),
    "vouched-then-lost-retry-uses-the-answer": (
        ["capf", "capf-lost", "capf"], 0,
        [_SESSION, *_asked("<capf>", _FOUND), _VOUCHED, "CAPF unreachable: 127.0.0.1:3804: connection lost",
         *_retry(1), _VOUCHED, _INSTALLED],  # the retry trusts the server on the answer kept: said again
        ["F.1-capf-vouched-by-tvs", "F.1-capf-vouched-by-tvs", "F.6-lsc-installed"], None, ["<capf>"], 1),
    "different-certificate-on-retry": (
        ["evil", "capf", "capf"], 0,
        [_SESSION, *_asked("<evil>", "TVS answer: not-found"), _REFUSED, *_retry(1),
         *_asked("<capf>", _FOUND), _VOUCHED, _INSTALLED],
        ["F.1-capf-vouched-by-tvs", "F.6-lsc-installed"], None, ["<evil>", "<capf>"], 1),
    "last-attempt-decides": (
        ["evil", "evil", "evil", None], 0,
        [_SESSION, *_asked("<evil>", "TVS answer: not-found"), _REFUSED, *_retry(1), _REFUSED, *_retry(2),
         _REFUSED, *_retry(3), _LOST,
         "capf: F.1-capf-unreachable rejected: after 4 attempts: 127.0.0.1:3804: connection refused"],
        ["F.1-capf-unreachable"], "F.1-capf-unreachable other", ["<evil>"], 3),
    "reconnect-after-vouch-checked-again": (
        ["evil", "evil", "evil", "capf", "evil"], 0,
        [_SESSION, *_asked("<evil>", "TVS answer: not-found"), _REFUSED, *_retry(1), _REFUSED, *_retry(2),
         _REFUSED, *_retry(3), *_asked("<capf>", _FOUND), _VOUCHED, _REFUSED,
         f"127.0.0.1:3804: F.1-capf-server-untrusted rejected (signer <evil>): after 4 attempts: {_UNKNOWN}"],
        ["F.1-capf-vouched-by-tvs", "F.1-capf-server-untrusted"], "F.1-capf-server-untrusted unknown-signer",
        ["<evil>", "<capf>"], 3),
}


@pytest.mark.parametrize("path", sorted(_CAPF_PATHS))
def test_capf_server_trust_across_retries(lab: LabCluster, path: str) -> None:
    """§F.1 (3 more attempts, 30 s apart), §G.5 (CAPF role or TVS): what the phone records, asks TVS and
    decides when the CAPF server's certificate is not in the ITL, attempt by attempt. TVS's answer about a
    certificate holds for it for the rest of the CAPF operation; "TVS unreachable" only for its attempt
    (a retry asks again); a reconnect after a vouch presenting another certificate is refused for the
    attempt; only the last attempt's failure decides the outcome."""
    script, outages, timeline, decided, deciding, queries, slept = _CAPF_PATHS[path]
    lab.set_capf([MAC], "install", auth_mode="null-string", key="rsa1024", now=NOW)
    tvs, capf, sleeps = FakeTvs(lab, outages=outages), ScriptedCapf(lab, script), Sleeps()
    r, _ = boot(phone(lab, tvs=tvs, capf=capf, capf_retry_delay=30.0, sleep=sleeps),
                _itl_without(lab, Role.CAPF))
    names = {_who(_attacker_cert()): "<evil>", _who(lab.identity("capf").der): "<capf>"}
    lines = [t.split(" ", 1)[1] for t in r.timeline]
    lines = lines[lines.index(_SESSION):]
    end = next(i for i, t in enumerate(lines) if "F.6-" in t or "attempts:" in t)
    got = [t for t in lines[:end + 1] if not t.startswith("TVS server certificate")]  # FakeTvs probing
    for who, short in names.items():
        got = [t.replace(who, short) for t in got]
    assert got == timeline
    assert [d.rule for d in r.decisions if d.kind == "capf"] == decided
    assert [names[f"{q.subject} (serial {q.serial.hex().upper()})"] for q in tvs.queries] == queries
    assert sleeps.calls == [30.0] * slept and not capf.script and r.tvs_used and r.ok
    if deciding is None:
        assert r.lsc == "installed" and r.deciding is not None and r.deciding.kind != "capf"
    else:
        assert r.lsc == "absent" and r.deciding is not None and r.deciding.reason_code is not None
        assert f"{r.deciding.rule} {r.deciding.reason_code.value}" == deciding
        assert r.deciding.file == ("127.0.0.1:3804" if "untrusted" in deciding else "")


def _who(der: bytes) -> str:
    from phoneemu.crypto import certs
    from phoneemu.phone.rules import https_query_key
    key = https_query_key(certs.load_cert_der(der))
    return f"{key.subject} (serial {key.serial.hex().upper()})"


def test_a_decision_about_no_file_reads_without_an_empty_file_name() -> None:
    """``Decision.summary`` (boot's ``deciding:`` line, last-boot.json, scenario timelines): a CAPF
    decision names no file, so no lone ``: `` is left where the file would be."""
    from phoneemu.phone.events import Decision

    capf = Decision(rule="F.7-wait-auth-string", accepted=False, reason="no string entered", file="")
    assert capf.summary() == "F.7-wait-auth-string (rejected) no string entered"
    itl = Decision(rule="G.3.2-first-use", accepted=True, reason="trusted on first use", file="ITLFile.tlv")
    assert itl.summary() == "G.3.2-first-use (accepted) ITLFile.tlv: trusted on first use"


def test_an_offline_decision_without_a_file_reads_without_an_empty_name() -> None:
    """A decision on no file (``G.9-tls-with-ctl``: the transport the CTL allows) is printed as its rule,
    verdict and reason — it read ``accepted : CTL holds ...``, an empty file name before the colon."""
    from phoneemu.commands.boot import offline_boot_lines
    from phoneemu.phone.events import Decision

    on_file = Decision(rule="G.3.2-signed-by-ctl", accepted=True, reason="signed by a CTL record",
                       file="ITLFile.tlv")
    no_file = Decision(rule="G.9-tls-with-ctl", accepted=True, reason="CTL holds a CUCM certificate: TLS",
                       file="")
    report = BootReport(mac="0A0000000001", ok=True, trust={"ITL": "updated"}, config="accepted",
                        config_file=None, encrypted=False, decisions=(on_file, no_file), deciding=on_file,
                        statuses=(), firmware="", load=None, lsc="", locked_out=False, tvs_used=False,
                        timeline=(), duration_s=0.0)
    lines = offline_boot_lines([], report)
    assert any(line.endswith("accepted ITLFile.tlv: signed by a CTL record") for line in lines)
    (tls,) = [line for line in lines if "G.9-tls-with-ctl" in line]
    assert tls.endswith("accepted CTL holds a CUCM certificate: TLS") and " : " not in tls
