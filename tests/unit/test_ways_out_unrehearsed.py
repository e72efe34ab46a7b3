"""The lockout whose way out no catalogue scenario rehearses, and why; and the one that is now rehearsed
(``phoneemu.phone.ways_out``).

* ``G.3.4-tvs-wrong-role`` (TVS knows a trust list's signer, without SAST): its ways are those that need no
  TVS answer, not the bulk certificate export. Sources: spec §G.6 gives the export as the escape for an old
  TVS *without* the new certificates (problem 3; import into CallManager-trust and Phone-SAST-trust, restart
  TVS); §E.6 gives roles by trust store only by example (an eToken certificate uploaded as Phone-SAST-trust
  -> {0}); §E.7.4 ("a file signer must come back with a SAST role") is [INF]; the seed chapter has no bulk
  export. Neither says which store gives a signer a role without SAST, nor that importing it again changes
  the role TVS answers: the export is not a documented way out of this rule. Rehearsed since the lab's
  ``exchange`` takes ``store: callmanager-trust`` (TFTP, no SAST — our convention):
  ``scenarios/migration-tvs-wrong-role.yaml``, named in its way out by deleting the ITL.
* A TVS QUERY too large to send (reason code ``too-large``): its own way (shorter names) names no scenario,
  and none can be written against the lab without bending the rules: a signed header that fits its uint16
  HEADER_LENGTH (spec §A.2) leaves a QUERY (§E.2) room for a device name of up to 184 characters with a
  1024-bit signer (the smallest the lab signs with), and a lab phone's device name ``CP-<model>-SEP<MAC>``
  is at most 35 (a model of 16 characters; a MIC's CN, which names it, is at most 64, RFC 5280). Long
  signer names do not get there either: the signer's own record in the ITL (RECORD_LENGTH, uint16, §B.2)
  holds its names twice and its certificate, about 16,000 characters a name at most, and such an ITL is
  above the 64 KiB limit (``G.3.1-oversize``) before TVS is asked. The tests below pin both bounds; when
  they fail, write the scenario and name it in the way out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from phoneemu.crypto import certs
from phoneemu.errors import EncodeError
from phoneemu.formats import trustlist
from phoneemu.formats.header import FileSigner, SignedHeader, SignerInfo, build_header
from phoneemu.formats.trustlist import Role, TrustRecord
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone import rules
from phoneemu.phone.events import QueryKey
from phoneemu.phone.profile import PROFILES
from phoneemu.phone.ways_out import _EXPORT, _QUERY_TOO_LARGE, WAYS_BY_KIND, ways_out
from phoneemu.protocols import tvs
from phoneemu.scenario.loader import discover, load_file
from phoneemu.scenario.model import Expectation

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def _scenarios(rule: str, kind: str) -> list[str]:
    return [w.scenario for w in ways_out(rule, kind)]


def test_a_signer_tvs_knows_in_another_role_is_not_told_the_bulk_export() -> None:
    """The table as the sources support it (module doc): rollback, the bulk ITL reset and deleting the ITL
    (a CTL: the CTL reset and deleting it); the bulk export only where TVS does not know the signer."""
    assert _scenarios("G.3.4-tvs-wrong-role", "ITL") == \
        ["rollback-empty-itl-escape", "bulk-itl-reset-localkey", "migration-tvs-wrong-role"]
    assert _scenarios("G.3.4-tvs-wrong-role", "CTL") == \
        ["ctl-reset-locked-phones", "migration-manual-itl-delete"]
    with_export = sorted((kind, rule) for kind, table in WAYS_BY_KIND.items()
                         for rule, ways in table.items() if _EXPORT in ways)
    assert with_export == [("CTL", "G.3.4-tvs-unknown-signer"), ("ITL", "G.3.4-tvs-unknown-signer"),
                           ("config", "G.4-tvs-unknown-signer")]


def test_the_bulk_export_names_the_spec_section_that_documents_it() -> None:
    """Before: ``(seed: Migrate IP Phones Between Clusters)`` — that seed section names the problem (an old
    TVS without the new certificates) and offers rollback or deleting the ITL, never the export; the
    procedure is spec §G.6's (export, import into CallManager-trust and Phone-SAST-trust, restart TVS)."""
    assert "spec §G.6" in _EXPORT.action and "Phone-SAST-trust" in _EXPORT.action
    assert "not this procedure" in _EXPORT.action  # the seed is cited for the problem only


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> LabCluster:
    return LabCluster.init(tmp_path_factory.mktemp("unrehearsed") / "lab", name="lab", key_spec="rsa1024")


def _signer_key(lab: LabCluster, name: Literal["ITLFile.tlv", "CTLFile.tlv"]) -> QueryKey:
    data = lab.get(name)
    assert data is not None, name
    return rules.query_key(trustlist.parse(data, kind="ITL" if name.startswith("ITL") else "CTL").header)


def _header(name_chars: int) -> SignedHeader:
    """A lab-signed ITL's header (1024-bit signature, the smallest of ``CLUSTER_KEYS``) whose self-signed
    signer has names of ``name_chars`` characters."""
    name = "CN=a;OU=" + "x" * (name_chars - 8)
    return SignedHeader(version=(1, 2), signer=SignerInfo(name=name, serial=b"\x40" * 16, issuer=name),
                        hash_alg=1, modulus_code=1, signature=bytes(128), filename="ITLFile.tlv", timestamp=1)


def _longest_header() -> SignedHeader:
    """The header with the longest names that still fits HEADER_LENGTH (uint16, spec §A.2)."""
    low, high = 9, 40_000
    while low < high:
        mid = (low + high + 1) // 2
        try:
            build_header(_header(mid))
            low = mid
        except EncodeError:
            high = mid - 1
    return _header(low)


def test_a_header_that_fits_leaves_a_query_room_for_any_device_name_a_lab_phone_has() -> None:
    """A QUERY carries the header's names with less around them (spec §E.2, §E.4: device name, subject,
    issuer, serial) than the header does (§A.2: version, length, signature info, a 128-byte signature at
    the least, file name, timestamp): it overflows only with a device name of 185 characters or more. A lab
    phone's is at most 35 (``CP-`` + a 16-character model + ``-SEP`` + 12), a MIC's CN at most 64."""
    h = _longest_header()
    assert len(build_header(h)) > 0xFFFF - 4  # as long as it gets (a multiple of 4)
    s = h.signer
    shortest_too_long = next(n for n in range(1, 1_000)
                             if not tvs.query_request_fits("D" * n, s.name, s.issuer, s.serial))
    assert shortest_too_long == 185
    longest_lab = tvs.phone_device_name("CP-" + "8" * 16, "SEP" + "0" * 12)
    assert len(longest_lab) == 35 and tvs.query_request_fits(longest_lab, s.name, s.issuer, s.serial)


def test_the_lab_refuses_a_model_long_enough_for_a_query_too_large(lab: LabCluster) -> None:
    """A scenario's phones are entered in the lab under their profile's model, which refuses one longer
    than 16 characters (the integration test of the rule uses a signer of 64,000 characters of names and a
    1,600-character model, outside the lab); with the lab's signer names a QUERY fits for every model the
    lab takes, and the way out names no scenario."""
    key = _signer_key(lab, "ITLFile.tlv")
    longest = "CP-" + "8" * 16
    assert tvs.query_request_fits(tvs.phone_device_name(longest, "SEP" + "0" * 12), key.subject, key.issuer,
                                  key.serial)
    with pytest.raises(EncodeError, match="model"):
        lab.add_phone("0A0000009901", model="CP-" + "8" * 1_600)
    assert _QUERY_TOO_LARGE.scenario == ""


def test_long_signer_names_make_the_itl_too_large_before_tvs_is_asked(lab: LabCluster) -> None:
    """The signer's own ITL record (RECORD_LENGTH uint16, spec §B.2) holds its subject and issuer and its
    certificate (both again): names of 20,000 characters do not fit it, and an ITL of 16,000 signed by it
    (its header holds them once more) is above the 64 KiB limit of every profile (``G.3.1-oversize``,
    spec §B.5) — while a QUERY of those 32,000 characters of names would still fit (the test above)."""
    with pytest.raises(EncodeError, match="record"):
        _itl_signed_by_long_names(lab, 20_000)
    itl = _itl_signed_by_long_names(lab, 16_000)
    assert len(itl) > max(p.trust_list_limit for p in PROFILES.values()) == 65_536


def _itl_signed_by_long_names(lab: LabCluster, name_chars: int) -> bytes:
    """An ITL holding and signed by an ITLRecovery certificate whose subject (and issuer: self-signed) is
    that long."""
    itlr = lab.identity("itlrecovery")
    valid = itlr.cert.not_valid_before_utc, itlr.cert.not_valid_after_utc
    req = certs.CertRequest(subject=f"CN=ITLRECOVERY_lab-pub;OU={'x' * name_chars}",
                            public_key=itlr.key.public_key(), serial=1 << 120, not_before=valid[0],
                            not_after=valid[1])
    cert = certs.issue_certificate(req, issuer_key=itlr.key)
    record = TrustRecord.from_certificate(cert, Role.SAST, dns_name="lab-pub")
    return trustlist.build(kind="ITL", records=[record], signer=FileSigner(key=itlr.key, cert=cert),
                           timestamp=1)


def _named(expect: Expectation, *checks: str) -> set[str]:
    """The values an expectation gives these checks (a list: any of them)."""
    out: set[str] = set()
    for check in checks:
        value = expect.checks.get(check)
        out |= {str(v) for v in value} if isinstance(value, list | tuple) else {str(value)}
    return out


def _decides(expect: Expectation, rule: str, code: str) -> bool:
    """The expectation names ``rule`` as deciding, or the reason ``code`` with ``rule`` or a prefix of it
    (``rule: G.3.4``): a scenario that checks a boot decided by it (``reason: too-large`` alone is also an
    ITL over the limit, ``itl-over-64k-fails``)."""
    if rule in _named(expect, "deciding_rule"):
        return True
    named = _named(expect, "deciding_rule", "rule") - {"None"}
    return code in _named(expect, "reason") and any(rule.startswith(n) for n in named)


def _reaching(rule: str, code: str) -> list[str]:
    return [path.name for path in discover([SCENARIOS]) for step in load_file(path).steps
            if isinstance(step, Expectation) and _decides(step, rule, code)]


def test_no_catalogue_scenario_reaches_a_query_too_large_yet() -> None:
    """When one does (after a lab change), name it in the way out and drop this pin."""
    assert _reaching("G.3.4-tvs-unreachable", "too-large") == []


def test_the_wrong_role_is_rehearsed_by_the_scenario_its_itl_deletion_names() -> None:
    """``lab exchange --store callmanager-trust`` (ours): the old TVS knows the new ITL's signer with TFTP,
    without SAST; the phones moved are locked out until their trust lists are erased (the CTL has its own
    ways, which this scenario does not rehearse: still the other scenarios')."""
    assert _reaching("G.3.4-tvs-wrong-role", "wrong-role") == ["migration-tvs-wrong-role.yaml"]
    delete = ways_out("G.3.4-tvs-wrong-role", "ITL")[-1]
    assert delete.scenario == "migration-tvs-wrong-role"
    assert delete.lab == "phoneemu phone erase --flash FLASH"
    assert ways_out("G.3.4-tvs-wrong-role", "CTL")[-1].scenario == "migration-manual-itl-delete"
