"""Red team of the phone's acceptance rules (spec §G.3, §G.5, §B.4): a trust list signed by a trusted key
that does not name that signer in a SAST record of its own.

The hole: a list signed by a key the phone trusts (§G.3 steps 2-4) but listing that signer (issuer +
serial) in no SAST record — absent, or only as TFTP — was installed (``G.3.3-signed-by-itl-sast``), though
§G.5 expects the ITL's signer to be a "SAST record inside the file" (§B.4); the phone then refused every
later list from the signer that had signed it (a lockout). Now ``G.3.1-no-signer-record`` (UNKNOWN_SIGNER,
or WRONG_ROLE when only another-role record names it) and the phone keeps its list. Trust on first use
(§G.2) and the rollback ITL (§G.3.6) still check nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

import pytest

from phoneemu.crypto import certs
from phoneemu.crypto.keys import KeySpec, generate_key
from phoneemu.errors import VerifyReason
from phoneemu.formats import trustlist
from phoneemu.formats.config import Server
from phoneemu.formats.trustlist import Role
from phoneemu.net.fetch import MemoryFetcher
from phoneemu.phone import rules
from phoneemu.phone.boot import BootReport, BootTarget
from phoneemu.phone.events import QueryKey
from phoneemu.phone.phone import Phone
from phoneemu.phone.store import TvsAnswer, TvsResult
from tests.unit.test_rules import (
    CFG,
    MAC,
    NOW,
    P8861,
    expect,
    ident,
    install,
    itl_a,
    new_store,
    sgn,
    tl,
    with_itl_and_config,
)


# --------------------------------------------------------------------------- 2. the signer inside the list
def _rogue_lists(kind: str) -> dict[str, tuple[bytes, VerifyReason]]:
    """Lists signed by the trusted ``recovery-a`` that do not name it as a SAST record of their own."""
    rec, cm, tvs, other = ident("recovery-a"), ident("cm-a"), ident("tvs-a"), ident("rt-sast-other")
    listed = {"only-as-tftp": [other.record(Role.SAST), rec.record(Role.CCM_TFTP), tvs.record(Role.TVS)],
              "absent": [other.record(Role.SAST), cm.record(Role.CCM_TFTP), tvs.record(Role.TVS)],
              "no-sast-at-all": [cm.record(Role.CCM_TFTP), tvs.record(Role.TVS)]}
    return {how: (tl(kind, rec, recs, ts=NOW + 5),
                  VerifyReason.WRONG_ROLE if how == "only-as-tftp" else VerifyReason.UNKNOWN_SIGNER)
            for how, recs in listed.items()}


@pytest.mark.parametrize("how", ["only-as-tftp", "absent", "no-sast-at-all"])
def test_an_itl_signed_by_the_installed_sast_but_not_listing_it_is_refused(how: str) -> None:
    """Before: installed by G.3.3, and the cluster's next ITL (signed by recovery-a) then refused."""
    data, code = _rogue_lists("ITL")[how]
    s = new_store()
    install(s, "ITL", itl_a())
    d = rules.decide_trust_list(s, data, kind="ITL", profile=P8861, now=NOW)
    expect(d, "G.3.1-no-signer-record", False, code)
    s.apply(d)
    assert s.itl is not None and s.itl.raw == itl_a() and s.locked
    expect(rules.decide_trust_list(s, itl_a(ts=NOW + 9), kind="ITL", profile=P8861, now=NOW),
           "G.3.3-signed-by-itl-sast", True)


@pytest.mark.parametrize("how", ["only-as-tftp", "absent"])
def test_a_ctl_signed_by_a_sast_of_the_installed_ctl_but_not_listing_it_is_refused(how: str) -> None:
    """§G.3.2, §G.5 (CTL: the SAST record that signed it, §B.4 "This etoken was used to sign the CTL")."""
    rec, cm = ident("recovery-a"), ident("cm-a")
    s = new_store()
    install(s, "CTL", tl("CTL", rec, [rec.record(Role.SAST), cm.record(Role.CCM_TFTP)]))
    data, code = _rogue_lists("CTL")[how]
    expect(rules.decide_trust_list(s, data, kind="CTL", profile=P8861, now=NOW), "G.3.1-no-signer-record",
           False, code)


def test_an_itl_vouched_for_by_tvs_but_not_listing_its_signer_is_refused() -> None:
    """§G.3.4: TVS returns the signer with SAST and the signature verifies; the list still must name it."""
    s = with_itl_and_config()
    new_sast, cm_b = ident("rt-new-cluster"), ident("cm-b")
    data = tl("ITL", new_sast, [cm_b.record(Role.SAST), cm_b.record(Role.CCM_TFTP)])
    answer = TvsAnswer(cert_der=certs.cert_der(new_sast.cert), roles=frozenset({Role.SAST}))
    d = rules.decide_trust_list(s, data, kind="ITL", profile=P8861, now=NOW, tvs_answer=answer)
    expect(d, "G.3.1-no-signer-record", False, VerifyReason.UNKNOWN_SIGNER)
    listed = tl("ITL", new_sast, [new_sast.record(Role.SAST), cm_b.record(Role.CCM_TFTP)])
    expect(rules.decide_trust_list(s, listed, kind="ITL", profile=P8861, now=NOW, tvs_answer=answer),
           "G.3.4-vouched-by-tvs", True)


def test_trust_on_first_use_and_the_rollback_itl_still_check_nothing() -> None:
    """§G.2 (first ITL taken without any check) and §G.3.6 (any new ITL after the rollback ITL): the new
    rule applies only to a list a trusted key verified."""
    data, _code = _rogue_lists("ITL")["absent"]
    expect(rules.decide_trust_list(new_store(), data, kind="ITL", profile=P8861, now=NOW),
           "G.2-first-itl-tofu", True)
    s = new_store()
    install(s, "ITL", itl_a())
    blanked = trustlist.rollback_records(trustlist.parse(itl_a()).records)
    install(s, "ITL", tl("ITL", ident("recovery-a"), list(blanked), ts=NOW + 1))
    assert s.itl_is_empty
    expect(rules.decide_trust_list(s, data, kind="ITL", profile=P8861, now=NOW),
           "G.3.6-empty-itl-accepts-any", True)


class _NoTvs:
    """The boot must not need TVS here (the signer is a SAST of the installed ITL): a question fails."""

    async def __call__(self, servers: Sequence[Server], key: QueryKey, *, device_name: str,
                       accept_server: object) -> TvsResult:
        raise AssertionError(f"TVS asked about {key}")


def test_a_boot_keeps_its_itl_and_says_the_rule_then_takes_the_clusters_next_itl() -> None:
    """The boot report over MemoryFetcher: the rogue ITL is refused (deciding rule, locked out, ITL kept,
    the config not taken); the cluster's correct ITL at the next boot is an ordinary update."""
    served: dict[str, bytes] = {"ITLFile.tlv": itl_a(), CFG + ".sgn": sgn(ident("cm-a"))}
    mic_key = generate_key(KeySpec.parse("rsa1024"), unsafe_seed="rt-mic")
    t = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    req = certs.CertRequest(subject=f"CN=SEP{MAC}", public_key=mic_key.public_key(), serial=0x5EED,
                            not_before=t - dt.timedelta(days=1), not_after=t + dt.timedelta(days=3650))
    mic = certs.issue_certificate(req, issuer_key=mic_key)
    p = Phone(mac=MAC, profile=P8861, flash=None, clock=lambda: NOW, mic=(mic, mic_key), tvs=_NoTvs())
    target = BootTarget(host="127.0.0.1")

    def boot() -> BootReport:
        return asyncio.run(asyncio.wait_for(p.boot(target, fetcher=MemoryFetcher(served)), 30))

    first = boot()
    assert first.ok and first.trust["ITL"] == "installed"
    served["ITLFile.tlv"] = _rogue_lists("ITL")["only-as-tftp"][0]
    refused = boot()
    assert refused.deciding is not None and refused.deciding.rule == "G.3.1-no-signer-record"
    assert refused.trust["ITL"] == "rejected" and refused.locked_out and not refused.ok
    assert p.store.itl is not None and p.store.itl.raw == itl_a()
    served["ITLFile.tlv"] = itl_a(ts=NOW + 9)
    again = boot()
    assert again.ok and again.trust["ITL"] == "updated" and not again.locked_out
