"""The two lockouts whose ways out no catalogue scenario rehearses, and why (``phoneemu.phone.ways_out``).

* ``G.3.4-tvs-wrong-role`` (TVS knows a trust list's signer, without SAST): its ways are those that need no
  TVS answer, not the bulk certificate export. Sources: spec §G.6 gives the export as the escape for an old
  TVS *without* the new certificates (problem 3; import into CallManager-trust and Phone-SAST-trust, restart
  TVS); §E.6 gives roles by trust store only by example (an eToken certificate uploaded as Phone-SAST-trust
  -> {0}); §E.7.4 ("a file signer must come back with a SAST role") is [INF]; the seed chapter has no bulk
  export. Neither says which store gives a signer a role without SAST, nor that importing it again changes
  the role TVS answers: the export is not a documented way out of this rule.
* A TVS QUERY too large to send (reason code ``too-large``): its own way (shorter names) names no scenario.

Neither can be rehearsed by a scenario against the built-in lab today, and the tests below pin what stops
it: the lab's TVS knows every trust-list signer as SAST (after a bulk exchange too), and the lab refuses a
model name long enough for a QUERY that does not fit (a signed header's names fit its uint16 length, spec
§A.2, so only a long device name, §E.4, overflows a QUERY, §E.2). When the lab changes, these fail: write
the scenario and name it in the way out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from phoneemu.errors import EncodeError
from phoneemu.formats import trustlist
from phoneemu.formats.trustlist import Role
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone import rules
from phoneemu.phone.events import QueryKey
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
        ["rollback-empty-itl-escape", "bulk-itl-reset-localkey", "migration-manual-itl-delete"]
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
def two_labs(tmp_path_factory: pytest.TempPathFactory) -> tuple[LabCluster, LabCluster]:
    root = tmp_path_factory.mktemp("unrehearsed")
    old = LabCluster.init(root / "old", name="old", key_spec="rsa1024")
    new = LabCluster.init(root / "new", name="new", key_spec="rsa1024")
    old.exchange_certificates(new)
    return old, new


def _signer_key(lab: LabCluster, name: Literal["ITLFile.tlv", "CTLFile.tlv"]) -> QueryKey:
    data = lab.get(name)
    assert data is not None, name
    return rules.query_key(trustlist.parse(data, kind="ITL" if name.startswith("ITL") else "CTL").header)


def test_the_labs_tvs_knows_every_trust_list_signer_as_sast(two_labs: tuple[LabCluster, LabCluster]) -> None:
    """No scenario can reach ``G.3.4-tvs-wrong-role``: what signs a lab ITL or CTL (ITLRecovery, the
    CallManager key after a reset) is known to TVS with SAST, its own cluster's and, after ``exchange``, the
    other's (roles SAST + TFTP, our reading of spec §G.6 / §E.6). A scenario needs a lab TVS knowing such a
    signer without SAST (e.g. an ``exchange`` into CallManager-trust only)."""
    old, new = two_labs
    for owner in (old, new):
        signers = [owner.identity("itlrecovery").cert, owner.callmanager().cert]
        for cert in signers:
            key = rules.https_query_key(cert)
            for tvs_of in (old, new):
                entry = tvs_of.tvs_lookup((key.issuer, key.serial, key.subject))
                assert entry is not None and Role.SAST in entry.roles, (owner.state.name, key.subject)
    itl_signer = rules.https_query_key(new.identity("itlrecovery").cert)
    assert _signer_key(new, "ITLFile.tlv").subject == itl_signer.subject  # the ITL's signer is one of them


def test_the_lab_refuses_a_model_long_enough_for_a_query_too_large(
        two_labs: tuple[LabCluster, LabCluster]) -> None:
    """No scenario can reach reason ``too-large`` under ``G.3.4-tvs-unreachable``: with the lab's signer
    names a QUERY fits for every model the lab takes (at most 16 characters), and a scenario's phones are
    entered in the lab under their profile's model, which refuses a longer one (the integration test of
    the rule uses a signer of 64,000 characters of names and a 1,600-character model)."""
    old, _new = two_labs
    key = _signer_key(old, "ITLFile.tlv")
    longest = "CP-" + "8" * 16
    assert tvs.query_request_fits(tvs.phone_device_name(longest, "SEP" + "0" * 12), key.subject, key.issuer,
                                  key.serial)
    with pytest.raises(EncodeError, match="model"):
        old.add_phone("0A0000009901", model="CP-" + "8" * 1_600)
    assert _QUERY_TOO_LARGE.scenario == ""


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


_UNREACHED = [("G.3.4-tvs-wrong-role", "wrong-role"), ("G.3.4-tvs-unreachable", "too-large")]


@pytest.mark.parametrize(("rule", "code"), _UNREACHED)
def test_no_catalogue_scenario_reaches_them_yet(rule: str, code: str) -> None:
    """When one does (after a lab change), name it in the way out and drop this pin."""
    found = [path.name for path in discover([SCENARIOS]) for step in load_file(path).steps
             if isinstance(step, Expectation) and _decides(step, rule, code)]
    assert found == [], found
