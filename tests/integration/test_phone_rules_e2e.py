"""Every §G rule end to end: emulated phones against the lab cluster over loopback (spec §G, §C, §D, §E, §F).

Each test makes a small lab cluster (RSA-1024 keys where the key size does not matter), starts its
servers (TFTP, HTTP 6970, TVS, CAPF on ephemeral loopback ports), boots phones over real sockets and
checks the rule that decided, the trust outcome, statuses and what the phone stored. Admin operations
on the cluster (regenerate, rollback, itl reset, mixed mode, tamper, encryption, CAPF, loads) produce
the situations of spec §G.6/§G.7. Mixing files of two clusters (a proxy-TFTP-like situation, §G.4) uses
an in-memory fetcher for the files while TVS is still asked over TLS.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from phoneemu.crypto import certs
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.net.fetch import MemoryFetcher
from phoneemu.phone import status
from phoneemu.phone.boot import BootReport, BootTarget
from phoneemu.phone.flash import Flash
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import PhoneProfile, get_profile, profile_from_dict
from tests.helpers import run_within

T = TypeVar("T")
NOW = 1_780_000_000  # 2026-05-28, after the seeded lab epoch
MAC = "0A0000000001"
MAC2 = "0A0000000002"
HOST = "127.0.0.1"
YEAR = 366 * 86400


class Clock:
    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


run = run_within(60)


def cluster(tmp: Path, name: str = "lab", *, key: str = "rsa1024", phones: tuple[str, ...] = (MAC,),
            **kw: Any) -> LabCluster:
    c = LabCluster.init(tmp / name, name=name, key_spec=key, now=NOW, **kw)
    for mac in phones:
        c.add_phone(mac, now=NOW, lsc_key="rsa1024")
    return c


def make_phone(c: LabCluster, tmp: Path, clock: Clock, *, mac: str = MAC,
               profile: PhoneProfile | str = "cp-8861", signers: bool = True, **kw: Any) -> Phone:
    prof = get_profile(profile) if isinstance(profile, str) else profile
    opts: dict[str, Any] = {"capf_retry_delay": 0, "fetch_timeout": 0.3, "fetch_retries": 2,
                            "http_timeout": 2.0, "tvs_timeout": 3.0, "capf_timeout": 20.0}
    opts.update(kw)
    return Phone(mac=mac, profile=prof, flash=Flash(tmp / f"flash-{mac}", profile=prof), clock=clock,
                 mic=c.phone_identity(mac),
                 image_signers=[c.identity("imagesigning").cert] if signers else (), **opts)


def target(srv: LabServers) -> BootTarget:
    return BootTarget(host=HOST, tftp_port=srv.ports["tftp"], http_port=srv.ports["http"])


def rules(r: BootReport) -> list[str]:
    """The boot's decisions but those on the static files the config names (checked on their own)."""
    return [d.rule for d in r.decisions if d.kind != "static"]


def deciding(r: BootReport) -> str | None:
    return r.deciding.rule if r.deciding is not None else None


async def with_servers(c: LabCluster, clock: Clock, body: Callable[[LabServers], Awaitable[T]]) -> T:
    async with LabServers(c, host=HOST, clock=clock) as srv:
        return await body(srv)


# --------------------------------------------------------------------------- §G.2 first contact, §G.4
def test_first_boot_tofu_itl_signed_config_over_http(tmp_path: Path) -> None:
    c = cluster(tmp_path)
    clock = Clock()
    ph = make_phone(c, tmp_path, clock)

    async def body(srv: LabServers) -> tuple[BootReport, BootReport, list[str]]:
        r1 = await ph.boot(target(srv))
        r2 = await ph.boot(target(srv))
        return r1, r2, [f"{q.service}:{q.name}" for q in srv.requests]

    r1, r2, seen = run(with_servers(c, clock, body))
    assert r1.ok and r1.config == "accepted" and r1.config_file == f"SEP{MAC}.cnf.xml.sgn"
    assert r1.trust == {"CTL": "absent", "ITL": "installed"}
    assert rules(r1) == ["G.2-first-itl-tofu", "G.4-signed-by-itl-tftp"]
    # the static files the config names, fetched over the lab servers and verified (§C.6 row 6, §G.4)
    assert r1.static == {"g3-tones.xml": "accepted", "AppDialRules.xml": "accepted"}
    assert any(n.endswith("g3-tones.xml.sgn") for n in seen)
    assert f"File Not Found <CTLSEP{MAC}.tlv>" in r1.statuses
    assert "File Not Found <CTLFile.tlv>" in r1.statuses
    assert status.ITL_INSTALLED in r1.statuses
    assert not r1.locked_out and not r1.tvs_used and r1.lsc == "absent"
    # per-device names first; ITLFile.tlv not asked because ITLSEP was found; HTTP 6970 first (§H.1)
    assert seen[:4] == [f"http:CTLSEP{MAC}.tlv", "http:CTLFile.tlv", f"http:ITLSEP{MAC}.tlv",
                        f"http:SEP{MAC}.cnf.xml.sgn"]
    assert not any("ITLFile.tlv" in s for s in seen[:4])
    assert r2.ok and r2.trust["ITL"] == "unchanged" and rules(r2)[0] == "G.3-unchanged"
    assert any("G.2-first-itl-tofu accepted" in line for line in r1.timeline)
    assert ph.store.itl is not None and ph.store.config is not None
    assert ph.store.tvs_servers[0].port == c.state.ports["tvs"]  # ports from the XML


def test_first_ctl_tofu_then_ctl_signed_update(tmp_path: Path) -> None:
    """§G.2 first CTL on trust; §G.3.2 a CTL re-signed by the CallManager key (utils ctl reset localkey)."""
    c = cluster(tmp_path)
    c.set_mixed_mode(True, now=NOW)
    clock = Clock()
    ph = make_phone(c, tmp_path, clock)

    async def body(srv: LabServers) -> tuple[BootReport, BootReport, BootReport]:
        r1 = await ph.boot(target(srv))
        c.ctl_reset(now=NOW)
        r2 = await ph.boot(target(srv))
        c.ctl_update(now=NOW)
        r3 = await ph.boot(target(srv))
        return r1, r2, r3

    r1, r2, r3 = run(with_servers(c, clock, body))
    assert rules(r1)[:2] == ["G.2-first-ctl-tofu", "G.3.2-signed-by-ctl"]  # ITL authenticated by the CTL
    assert r1.trust == {"CTL": "installed", "ITL": "installed"} and r1.ok
    assert rules(r1)[2] == "G.4-signed-by-ctl-tftp"
    assert status.CTL_INSTALLED in r1.statuses and status.CTL_AND_ITL_INSTALLED in r1.statuses
    assert r2.trust["CTL"] == "updated" and rules(r2)[0] == "G.3.2-signed-by-ctl"
    assert status.TRUST_LIST_UPDATED in r2.statuses
    assert r3.trust["CTL"] == "updated" and r3.ok


def test_itl_reset_localkey_signed_by_itl_sast(tmp_path: Path) -> None:
    """§G.7: the reset ITL is signed by the CallManager key, a SAST record of the installed ITL (§G.3.3)."""
    c = cluster(tmp_path)
    clock = Clock()
    ph = make_phone(c, tmp_path, clock)

    async def body(srv: LabServers) -> tuple[BootReport, BootReport]:
        await ph.boot(target(srv))
        c.itl_reset(now=NOW)
        r2 = await ph.boot(target(srv))
        c.restart_tftp(now=NOW)
        return r2, await ph.boot(target(srv))

    r2, r3 = run(with_servers(c, clock, body))
    assert rules(r2)[0] == "G.3.3-signed-by-itl-sast" and r2.trust["ITL"] == "updated" and r2.ok
    assert "CN=lab-pub" in (r2.decisions[0].signer or "")
    assert rules(r3)[0] == "G.3.3-signed-by-itl-sast" and r3.ok


def test_regenerated_itlrecovery_vouched_by_tvs_and_cache_flushed(tmp_path: Path) -> None:
    """§G.3.4 TVS QUERY vouches for a new ITLRecovery (role SAST); §E.7.3 cache flushed after the update."""
    c = cluster(tmp_path)
    clock = Clock()
    ph = make_phone(c, tmp_path, clock)

    async def body(srv: LabServers) -> BootReport:
        await ph.boot(target(srv))
        c.regenerate("itlrecovery", now=NOW)
        return await ph.boot(target(srv))

    r = run(with_servers(c, clock, body))
    assert rules(r)[0] == "G.3.4-vouched-by-tvs"
    assert r.tvs_used and r.ok and r.trust["ITL"] == "updated"
    assert any("TVS Certificate cache flush request" in line for line in r.timeline)
    assert ph.store.tvs_cache_size == 0


def test_tvs_unreachable_locks_the_phone(tmp_path: Path) -> None:
    """§E.7.6 / §G.3.5: TVS down and an unknown ITL signer → Trust List update failed, config ignored."""
    c = cluster(tmp_path)
    clock = Clock()
    ph = make_phone(c, tmp_path, clock)

    async def body(srv: LabServers) -> tuple[BootReport, BootReport]:
        await ph.boot(target(srv))
        c.regenerate("itlrecovery", now=NOW)
        await srv.stop_service("tvs")
        r2 = await ph.boot(target(srv))
        await srv.start_service("tvs")
        return r2, await ph.boot(target(srv))

    r2, r3 = run(with_servers(c, clock, body))
    assert "G.3.4-tvs-unreachable" in rules(r2)
    assert deciding(r2) == "G.3.4-tvs-unreachable"
    assert "G.3.5-locked-ignores-config" in rules(r2)
    assert r2.locked_out and not r2.ok and r2.trust["ITL"] == "rejected" and r2.config == "rejected"
    assert status.TRUST_LIST_UPDATE_FAILED in r2.statuses
    assert r3.ok and "G.3.4-vouched-by-tvs" in rules(r3) and not r3.locked_out  # TVS back: recovered


def test_tvs_with_a_certificate_not_in_the_itl_is_not_trusted(tmp_path: Path) -> None:
    """§E.1: the phone compares the TVS server certificate with its ITL TVS record; regenerating TVS and
    ITLRecovery together leaves the phone unable to use TVS for the new signer."""
    c = cluster(tmp_path)
    clock = Clock()
    ph = make_phone(c, tmp_path, clock)

    async def body(srv: LabServers) -> BootReport:
        await ph.boot(target(srv))
        c.regenerate("tvs", now=NOW)
        c.regenerate("itlrecovery", now=NOW)
        return await ph.boot(target(srv))

    r = run(with_servers(c, clock, body))
    assert r.tvs_used and deciding(r) == "G.3.4-tvs-server-untrusted" and r.locked_out
    assert any("not the ITL TVS record" in line for line in r.timeline)


def _two_clusters(tmp: Path) -> tuple[LabCluster, LabCluster]:
    a = cluster(tmp, "a")
    b = cluster(tmp, "b", phones=())
    b.add_phone(MAC, now=NOW, mic=a.phone_identity(MAC))  # the same phone (same MIC) moves to b
    return a, b


def test_cluster_move_unknown_to_old_tvs_then_rollback_escape(tmp_path: Path) -> None:
    """§G.6: the old TVS does not know the new signer (§G.3.4 unknown); the rollback ITL escape (§G.3.6)."""
    a, b = _two_clusters(tmp_path)
    clock = Clock()
    ph = make_phone(a, tmp_path, clock)

    async def body() -> tuple[BootReport, BootReport, BootReport, BootReport]:
        async with LabServers(a, host=HOST, clock=clock) as sa, LabServers(b, host=HOST, clock=clock) as sb:
            await ph.boot(target(sa))
            moved = await ph.boot(target(sb))
            a.set_rollback(True, now=NOW)
            back = await ph.boot(target(sa))
            again = await ph.boot(target(sb))
            return moved, back, again, await ph.boot(target(sb))

    moved, back, again, last = run(body())
    assert rules(moved)[0] == "G.3.4-tvs-unknown-signer"
    assert moved.locked_out and not moved.ok and moved.trust["ITL"] == "rejected"
    # the rollback ITL is signed by a.ITLRecovery (known): installed; then unsigned configs are fine
    assert rules(back)[0] == "G.3.3-signed-by-itl-sast" and back.trust["ITL"] == "empty"
    assert "G.4-empty-itl-accepts-unsigned" in rules(back) and back.config_file == f"SEP{MAC}.cnf.xml"
    assert rules(again)[0] == "G.3.6-empty-itl-accepts-any" and again.ok
    assert again.trust["ITL"] == "updated" and "G.4-signed-by-itl-tftp" in rules(again)
    assert last.ok and rules(last)[0] == "G.3-unchanged"


def test_cluster_move_after_bulk_certificate_exchange(tmp_path: Path) -> None:
    """§G.6 bulk certificate exchange: the old TVS vouches for the new cluster's ITL signer."""
    a, b = _two_clusters(tmp_path)
    a.exchange_certificates(b, now=NOW)
    clock = Clock()
    ph = make_phone(a, tmp_path, clock)

    async def body() -> BootReport:
        async with LabServers(a, host=HOST, clock=clock) as sa, LabServers(b, host=HOST, clock=clock) as sb:
            await ph.boot(target(sa))
            return await ph.boot(target(sb))

    r = run(body())
    assert rules(r)[0] == "G.3.4-vouched-by-tvs" and r.ok and r.tvs_used
    assert r.trust["ITL"] == "updated"


def test_no_tvs_in_profile_rejects_unknown_signer(tmp_path: Path) -> None:
    """§G.3.5: signer unknown to the installed lists and TVS not usable → rejected, phone locked."""
    a, b = _two_clusters(tmp_path)
    clock = Clock()
    prof = profile_from_dict("cp-8861", {"name": "cp-8861-notvs", "tvs_enabled": False})
    ph = make_phone(a, tmp_path, clock, profile=prof)

    async def body() -> BootReport:
        async with LabServers(a, host=HOST, clock=clock) as sa, LabServers(b, host=HOST, clock=clock) as sb:
            await ph.boot(target(sa))
            return await ph.boot(target(sb))

    r = run(body())
    assert deciding(r) == "G.3.5-reject-unknown-signer" and r.locked_out and not r.tvs_used
    assert r.decisions[0].reason_code is not None and r.decisions[0].reason_code.value == "unknown-signer"


# --------------------------------------------------------------------------- §G.3 negatives
def test_tampered_itl_bad_signature(tmp_path: Path) -> None:
    c = cluster(tmp_path)
    clock = Clock()
    ph = make_phone(c, tmp_path, clock)

    async def body(srv: LabServers) -> BootReport:
        await ph.boot(target(srv))
        c.add_certs(1, now=NOW)  # a changed ITL, still signed by ITLRecovery ...
        c.tamper("ITLFile.tlv", now=NOW)  # ... with one byte flipped
        return await ph.boot(target(srv))

    r = run(with_servers(c, clock, body))
    assert deciding(r) == "G.3-bad-signature" and r.trust["ITL"] == "rejected" and r.locked_out
    assert r.deciding is not None and r.deciding.reason_code is not None
    assert r.deciding.reason_code.value == "bad-signature"


def test_oversize_itl_rejected(tmp_path: Path) -> None:
    """§B.5/§H.2: an ITL above 64 KiB fails to load (first contact and update alike)."""
    c = cluster(tmp_path)
    c.add_certs(55, now=NOW)
    data = c.get("ITLFile.tlv")
    assert data is not None and len(data) > 65536
    clock = Clock()
    ph = make_phone(c, tmp_path, clock)
    r = run(with_servers(c, clock, lambda srv: ph.boot(target(srv))))
    assert deciding(r) == "G.3.1-oversize" and r.trust["ITL"] == "rejected"
    # the store marks the failed update (spec §G.3.5): the config is ignored, though no list is held
    assert ph.store.itl is None and "G.3.5-locked-ignores-config" in rules(r)
    assert not r.ok and not r.locked_out
    refused = next(d for d in r.decisions if d.rule == "G.3.5-locked-ignores-config")
    assert "holds no config" in refused.reason and "our convention" in refused.reason


def test_expired_itl_signer(tmp_path: Path) -> None:
    """A signer certificate outside its validity at the phone's clock is refused (G.3-expired-signer)."""
    c = cluster(tmp_path, itlrecovery_years=1)
    clock = Clock()
    ph = make_phone(c, tmp_path, clock)

    async def body(srv: LabServers) -> BootReport:
        await ph.boot(target(srv))
        clock.now = NOW + 2 * YEAR
        c.add_certs(1, now=NOW)  # new ITL, signed by the now-expired ITLRecovery
        return await ph.boot(target(srv))

    r = run(with_servers(c, clock, body))
    assert deciding(r) == "G.3-expired-signer" and r.locked_out


def test_unsupported_hash_for_sha1_only_model(tmp_path: Path) -> None:
    """§A.4: a SHA-1-only model cannot take a SHA-512 signed ITL, even on first contact."""
    c = cluster(tmp_path)
    c.set_signature_algorithm("sha512", now=NOW)
    clock = Clock()
    ph = make_phone(c, tmp_path, clock, profile="cp-7962")
    r = run(with_servers(c, clock, lambda srv: ph.boot(target(srv))))
    assert deciding(r) == "G.3.1-unsupported-hash" and ph.store.itl is None


def test_unsupported_key_size_for_config_signer(tmp_path: Path) -> None:
    """A 2048-bit signer on a model limited to 1024-bit RSA: ITL on trust, signed config refused."""
    c = cluster(tmp_path, key="rsa2048")
    clock = Clock()
    prof = profile_from_dict("cp-8861", {"name": "rsa1024-only", "max_rsa_bits": 1024})
    ph = make_phone(c, tmp_path, clock, profile=prof)

    async def body(srv: LabServers) -> tuple[BootReport, BootReport]:
        r1 = await ph.boot(target(srv))
        c.itl_reset(now=NOW)  # the next ITL is signed by the (2048-bit) CallManager key
        return r1, await ph.boot(target(srv))

    r, r2 = run(with_servers(c, clock, body))
    assert rules(r)[0] == "G.2-first-itl-tofu"
    assert deciding(r) == "G.4-unsupported-key" and not r.ok and r.locked_out
    assert deciding(r2) == "G.3-unsupported-key" and r2.trust["ITL"] == "rejected"


def test_tampered_config_rejected(tmp_path: Path) -> None:
    c = cluster(tmp_path)
    clock = Clock()
    ph = make_phone(c, tmp_path, clock)

    async def body(srv: LabServers) -> BootReport:
        await ph.boot(target(srv))
        c.tamper(f"SEP{MAC}.cnf.xml.sgn", now=NOW)
        return await ph.boot(target(srv))

    r = run(with_servers(c, clock, body))
    assert deciding(r) == "G.4-bad-signature" and r.config == "rejected" and not r.ok


def test_legacy_phone_unsigned_config_and_no_trust_list(tmp_path: Path) -> None:
    """§G.2: a phone without Security By Default asks for the CTL only and takes the plain config."""
    c = cluster(tmp_path)
    clock = Clock()
    ph = make_phone(c, tmp_path, clock, profile="cp-7940")
    r = run(with_servers(c, clock, lambda srv: ph.boot(target(srv))))
    assert r.ok and rules(r) == ["G.4-unsigned-no-trust-list"] and r.config_file == f"SEP{MAC}.cnf.xml"
    assert status.NO_TRUST_LIST in r.statuses and r.trust == {"CTL": "absent", "ITL": "absent"}


# ----------------------------------------------------------------- §G.4 via TVS (two clusters' files)
def test_config_signed_by_foreign_cluster_tvs_and_cache_ttl(tmp_path: Path) -> None:
    """§G.4(c): a config signed by another cluster's CallManager is accepted only if TVS vouches (TFTP role);
    the answer is cached for its TTL (§H.2) and used without TVS until it expires."""
    a, b = _two_clusters(tmp_path)
    a.set_tvs_ttl(600, now=NOW)
    clock = Clock()
    ph = make_phone(a, tmp_path, clock)
    cfg_name = f"SEP{MAC}.cnf.xml.sgn"

    async def body() -> list[BootReport]:
        async with LabServers(a, host=HOST, clock=clock) as sa, LabServers(b, host=HOST, clock=clock):
            out = [await ph.boot(target(sa))]

            def mixed(name: str) -> bytes | None:
                return b.get(name) if name == cfg_name else a.get(name)

            fetch = MemoryFetcher(mixed)
            out.append(await ph.boot(target(sa), fetcher=fetch))  # a's TVS does not know b's CM
            a.exchange_certificates(b, now=NOW)
            out.append(await ph.boot(target(sa), fetcher=fetch))  # now it does: vouched
            await sa.stop_service("tvs")
            out.append(await ph.boot(target(sa), fetcher=fetch))  # cached answer, TVS down
            clock.now += 601
            out.append(await ph.boot(target(sa), fetcher=fetch))  # expired: TVS asked, b's TVS untrusted
            return out

    _, unknown, vouched, cached, expired = run(body())
    assert rules(unknown)[-1] == "G.4-tvs-unknown-signer" and not unknown.ok
    assert rules(vouched)[-1] == "G.4-vouched-by-tvs" and vouched.ok and vouched.tvs_used
    assert any("G.4-needs-tvs pending" in line for line in vouched.timeline)
    assert rules(cached)[-1] == "G.4-vouched-by-tvs" and cached.ok
    assert not any("needs-tvs" in line for line in cached.timeline)  # answered from the cache
    # the phone's current config is now b's: it lists b's TVS, whose certificate is not a TVS record of
    # the phone's ITL (a's): the phone refuses to talk to it (§E.1)
    assert rules(expired)[-1] == "G.4-tvs-server-untrusted" and not expired.ok


# --------------------------------------------------------------------------- §G.10 auto-registration
def test_autoregistration_default_config(tmp_path: Path) -> None:
    c = cluster(tmp_path)
    clock = Clock()
    ph = make_phone(c, tmp_path, clock)  # known MIC, then the device is deleted from the cluster
    stranger = Phone(mac=MAC2, profile=get_profile("cp-8861"), flash=None, clock=clock)

    async def body(srv: LabServers) -> tuple[BootReport, BootReport]:
        r1 = await stranger.boot(target(srv))
        c.set_autoregistration(False, now=NOW)
        return r1, await stranger.boot(target(srv))

    r1, r2 = run(with_servers(c, clock, body))
    assert "G.10-use-default-config" in rules(r1) and r1.ok
    assert r1.config_file == "XmlDefault.cnf.xml.sgn" and "G.4-signed-by-itl-tftp" in rules(r1)
    assert deciding(r2) == "G.10-no-config" and r2.config == "none" and not r2.ok
    assert status.cfg_file_not_found("Cfg File") in r2.statuses
    assert ph.store.itl is None  # the other phone never booted


# --------------------------------------------------------------------------- §G.12 / §C.3-C.5 / §F
def test_encrypted_pki_config_with_mic(tmp_path: Path) -> None:
    c = cluster(tmp_path)
    c.set_encryption([MAC], True, now=NOW)
    clock = Clock()
    ph = make_phone(c, tmp_path, clock)

    async def body(srv: LabServers) -> tuple[BootReport, BootReport]:
        return await ph.boot(target(srv)), await ph.boot(target(srv))

    r1, r2 = run(with_servers(c, clock, body))
    assert r1.ok and r1.encrypted and r1.config_file == f"SEP{MAC}.cnf.xml.enc.sgn"
    assert "G.12.2-cert-hash-match" in rules(r1) and deciding(r1) == "G.12.3-decrypted"
    # second boot: the phone knows encryption is on and asks for .enc.sgn first (§C.6)
    assert r2.ok and r2.encrypted and rules(r2)[1] == "G.12.3-decrypted"


def test_encrypted_config_cert_hash_mismatch_capf_enrolment(tmp_path: Path) -> None:
    """§G.12.2 mismatch → CAPF (null string) issues an LSC → config retrieved again (§G.12.4), decrypted."""
    c = cluster(tmp_path)
    c.set_encryption([MAC], True, now=NOW)
    c.set_capf([MAC], "install", auth_mode="null-string", key="rsa1024", now=NOW)
    other = cluster(tmp_path, "other", phones=(MAC,))  # a MIC this cluster has never seen
    clock = Clock()
    ph = make_phone(other, tmp_path, clock)

    async def body(srv: LabServers) -> BootReport:
        return await ph.boot(target(srv))

    r = run(with_servers(c, clock, body))
    assert "G.12.2-cert-hash-mismatch" in rules(r) and "F.6-lsc-installed" in rules(r)
    assert r.ok and r.encrypted and r.lsc == "installed" and deciding(r) == "G.12.3-decrypted"
    assert ph.store.lsc is not None and c.phone_lsc(MAC) is not None
    assert ph.store.lsc.cert_der == certs.cert_der(c.phone_cert(MAC))


def test_capf_by_auth_string_waits_then_enrols(tmp_path: Path) -> None:
    c = cluster(tmp_path)
    c.set_capf([MAC], "install", auth_mode="string", auth_string="123456", key="rsa1024", now=NOW)
    clock = Clock()
    ph = make_phone(c, tmp_path, clock)

    async def body(srv: LabServers) -> tuple[BootReport, BootReport, BootReport]:
        r1 = await ph.boot(target(srv))
        ph.enter_auth_string("999999")
        r2 = await ph.boot(target(srv))
        ph.enter_auth_string("123456")
        return r1, r2, await ph.boot(target(srv))

    r1, r2, r3 = run(with_servers(c, clock, body))
    assert r1.ok and "F.7-wait-auth-string" in rules(r1) and r1.lsc == "absent"
    assert "F.6-capf-rejected" in rules(r2) and r2.lsc == "absent"
    assert "F.6-lsc-installed" in rules(r3) and r3.lsc == "installed" and ph.auth_string is None
    assert r3.ok and r3.deciding is not None and r3.deciding.accepted


@pytest.mark.parametrize("mode", ["lsc", "mic"])
def test_capf_by_existing_certificate(tmp_path: Path, mode: str) -> None:
    """§F.7 modes 3/4: the phone authenticates with its MIC (no LSC yet) and receives an LSC."""
    c = cluster(tmp_path)
    c.set_capf([MAC], "install", auth_mode=mode, key="rsa1024", now=NOW)
    clock = Clock()
    ph = make_phone(c, tmp_path, clock)
    r = run(with_servers(c, clock, lambda srv: ph.boot(target(srv))))
    assert "F.6-lsc-installed" in rules(r) and r.lsc == "installed" and r.ok
    assert ph.store.lsc is not None
    # retrieval after the LSC: nothing pending any more
    assert rules(r).count("G.4-signed-by-itl-tftp") == 2


def test_symmetric_key_config(tmp_path: Path) -> None:
    """§C.5 manual key: 128-bit AES key on a 7942; a wrong key fails to decrypt (G.12.3)."""
    key = "00112233445566778899aabbccddeeff"
    c = cluster(tmp_path)
    c.add_phone(MAC, encrypt="symmetric", symmetric_key=key, now=NOW)
    clock = Clock()
    ph = make_phone(c, tmp_path, clock, profile="cp-7942-symmetric")
    ph.set_symmetric_key(key)

    async def body(srv: LabServers) -> tuple[BootReport, BootReport]:
        r1 = await ph.boot(target(srv))
        ph.set_symmetric_key("ffeeddccbbaa99887766554433221100")
        return r1, await ph.boot(target(srv))

    good, bad = run(with_servers(c, clock, body))
    assert good.ok and good.encrypted and good.config_file == f"SEP{MAC}.cnf.xml.enc.sgn"
    assert deciding(good) == "G.12.3-decrypted"
    assert deciding(bad) == "G.12.3-decrypt-failed" and not bad.ok


def test_rollback_itl_disables_signature_check_of_encrypted_config(tmp_path: Path) -> None:
    """§G.11: with the rollback ITL installed, the .enc.sgn signature is not checked; still decrypted."""
    c = cluster(tmp_path)
    c.set_encryption([MAC], True, now=NOW)
    clock = Clock()
    ph = make_phone(c, tmp_path, clock)

    async def body(srv: LabServers) -> BootReport:
        await ph.boot(target(srv))
        c.set_rollback(True, now=NOW)
        return await ph.boot(target(srv))

    r = run(with_servers(c, clock, body))
    assert r.trust["ITL"] == "empty" and r.ok and r.encrypted
    assert r.deciding is not None and r.deciding.rule == "G.12.3-decrypted"
    assert "signature checking disabled" in r.deciding.reason


def test_encryption_turned_off_falls_back_to_sgn(tmp_path: Path) -> None:
    """§G.12.5: with encryption disabled, ``.enc.sgn`` is not found and the phone takes ``.sgn``."""
    c = cluster(tmp_path)
    c.set_encryption([MAC], True, now=NOW)
    clock = Clock()
    ph = make_phone(c, tmp_path, clock)

    async def body(srv: LabServers) -> BootReport:
        await ph.boot(target(srv))
        c.set_encryption([MAC], False, now=NOW)
        return await ph.boot(target(srv))

    r = run(with_servers(c, clock, body))
    assert r.ok and not r.encrypted and r.config_file == f"SEP{MAC}.cnf.xml.sgn"


# --------------------------------------------------------------------------- §D firmware
def test_firmware_accepted_rejected_and_unknown_signer(tmp_path: Path) -> None:
    c = cluster(tmp_path, phones=(MAC, MAC2))
    c.set_load("sip88xx.14-1-1", now=NOW)
    clock = Clock()
    ph = make_phone(c, tmp_path, clock)
    stranger = make_phone(c, tmp_path, clock, mac=MAC2, signers=False)

    async def body(srv: LabServers) -> list[BootReport]:
        out = [await ph.boot(target(srv)), await ph.boot(target(srv))]
        c.set_load("sip88xx.14-2-1", tamper=True, now=NOW)
        out.append(await ph.boot(target(srv)))
        out.append(await stranger.boot(target(srv)))
        return out

    first, again, tampered, unknown = run(with_servers(c, clock, body))
    assert first.firmware == "accepted" and first.load == "sip88xx.14-1-1"
    assert "D-signed-by-image-key" in rules(first)
    assert again.firmware == "unchanged"
    assert tampered.firmware == "rejected" and "D-bad-signature" in rules(tampered)
    assert tampered.load == "sip88xx.14-1-1" and tampered.ok  # keeps the running load; config still fine
    assert deciding(tampered) == "D-bad-signature"
    assert unknown.firmware == "rejected" and "D-unknown-signer" in rules(unknown) and unknown.load is None


# --------------------------------------------------------------------------- transport
def test_http_down_falls_back_to_tftp_and_all_down_is_a_status(tmp_path: Path) -> None:
    c = cluster(tmp_path)
    clock = Clock()
    ph = make_phone(c, tmp_path, clock, fetch_timeout=0.05, fetch_retries=1)

    async def body(srv: LabServers) -> tuple[BootReport, list[str], BootReport]:
        await srv.stop_service("http")
        r1 = await ph.boot(target(srv))
        services = sorted({q.service for q in srv.requests})
        await srv.stop_service("tftp")
        return r1, services, await ph.boot(target(srv))

    r1, services, r2 = run(with_servers(c, clock, body))
    assert r1.ok and services == ["tftp"]
    assert not r2.ok and r2.trust["ITL"] == "unchanged" and r2.config == "none"
    assert any(s in (status.TFTP_TIMEOUT, status.TFTP_ERROR) for s in r2.statuses)
    assert deciding(r2) == "H.3-config-transport-failed"



# ----------------------------------------------------------------- §F.1 CAPF server trust over TLS
def _itl_without_capf(c: LabCluster) -> Callable[[str], bytes | None]:
    from phoneemu.formats import trustlist
    from phoneemu.formats.trustlist import Role
    recs = [r for r in c.itl_records() if r.role != Role.CAPF]
    itl = trustlist.build(kind="ITL", records=recs, signer=c.identity("itlrecovery").signer, timestamp=NOW)
    return lambda n: itl if n.startswith("ITL") else c.get(n)


@pytest.mark.parametrize("tvs", [True, False])
def test_capf_server_not_in_the_itl_needs_tvs(tmp_path: Path, tvs: bool) -> None:
    """§F.1, §G.5: an ITL without a CAPF record (the seed: "isn't required in the ITL, TVS can
    authenticate it"): the CAPF certificate is vouched for by TVS over TLS; without TVS the phone
    refuses the CAPF server before sending anything."""
    c = cluster(tmp_path)
    c.set_capf([MAC], "install", auth_mode="null-string", key="rsa1024", now=NOW)
    clock = Clock()
    prof = get_profile("cp-8861") if tvs else profile_from_dict("cp-8861", {"tvs_enabled": False})
    ph = make_phone(c, tmp_path, clock, profile=prof)

    async def body(srv: LabServers) -> BootReport:
        return await ph.boot(target(srv), fetcher=MemoryFetcher(_itl_without_capf(c)))

    r = run(with_servers(c, clock, body))
    if tvs:
        assert "F.1-capf-vouched-by-tvs" in rules(r) and r.lsc == "installed" and r.tvs_used
    else:
        assert deciding(r) == "F.1-capf-server-untrusted" and r.lsc == "absent" and ph.store.lsc is None


def test_capf_retry_asks_tvs_again_once_tvs_is_back(tmp_path: Path) -> None:
    """§F.1 retries, §G.5: TVS is down on the first CAPF attempt and back before the retry (30 s later);
    "TVS unreachable" held for that attempt only, so the retry asks again, TVS vouches, the LSC is
    installed."""
    c = cluster(tmp_path)
    c.set_capf([MAC], "install", auth_mode="null-string", key="rsa1024", now=NOW)
    clock = Clock()

    async def body(srv: LabServers) -> tuple[BootReport, list[float]]:
        slept: list[float] = []

        async def tvs_back(seconds: float) -> None:
            slept.append(seconds)
            await srv.start_service("tvs")

        ph = make_phone(c, tmp_path, clock, capf_retry_delay=30.0, sleep=tvs_back)
        await srv.stop_service("tvs")
        return await ph.boot(target(srv), fetcher=MemoryFetcher(_itl_without_capf(c))), slept

    r, slept = run(with_servers(c, clock, body))
    assert slept == [30.0] and r.lsc == "installed"
    capf = [x for x in rules(r) if x.startswith("F.")]
    assert capf == ["F.1-capf-vouched-by-tvs", "F.6-lsc-installed"] and r.ok
    assert sum("TVS unreachable" in line for line in r.timeline) == 1
