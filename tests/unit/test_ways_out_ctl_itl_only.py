"""Ways out of a new CTL refused by phones holding an ITL and no CTL (task FIX-WAYS2, spec §G.2, §G.3, §G.6).

Was: ``_CTL_WAYS`` had no rollback and ``_for_held`` returned early for kind CTL, so phones holding only a
non-mixed cluster's ITL, refusing a mixed-mode cluster's CTL, were offered the bulk export, "utils ctl reset
localkey" labelled "mixed mode, their own cluster (the rollback ITL does not blank a CTL)" and an erase —
not the rollback ITL on the cluster they left, which lets them take the new CTL on first use (rehearsed
below). Bringing TVS back names CUCM's service (task item 2); ``phone show`` of a locked phone says what
clears the lock (item 3: not a reboot alone, spec §G.3 step 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phoneemu import cli
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone import ways_out as wo
from phoneemu.phone.ways_out import HeldLists, ways_out, ways_out_doc, ways_out_text
from tests.helpers import boot_offline_into, run

NOW = 1_780_000_000
MACS = ["0A0000004101", "0A0000004102"]
ITL_ONLY = HeldLists.of(ctl=False, empty_itl=False)
#: the CTL rules whose ways the lists held choose (a signer no list or TVS vouches for)
CTL_SIGNER_RULES = sorted(rule for rule in wo.WAYS_BY_KIND["CTL"] if rule in wo._SIGNER_RULES)
_CTL_BLANK = "the rollback ITL does not blank a CTL"


@pytest.mark.parametrize("rule", CTL_SIGNER_RULES)
def test_rollback_offered_to_phones_holding_no_ctl_only(rule: str) -> None:
    """Holding an ITL and no CTL: the rollback on the cluster they left, and the CTL reset for their own
    cluster, not labelled for a CTL they do not hold; holding a CTL, or not known: no rollback."""
    said = ways_out(rule, "CTL", held=ITL_ONLY)
    rollbacks = [w for w in said if w.lab == "phoneemu lab rollback OLD on"]
    assert len(rollbacks) == 1, said
    assert "first use" in rollbacks[0].action and "spec §G.2" in rollbacks[0].action
    resets = [w for w in said if w.scenario == "ctl-reset-locked-phones"]
    assert len(resets) == 1 and _CTL_BLANK not in resets[0].when and "ITL they hold" in resets[0].when
    assert said[-1].scenario == "migration-manual-itl-delete"
    for held in (None, HeldLists.of(ctl=True, empty_itl=False), HeldLists.of(ctl=True, empty_itl=True)):
        offered = ways_out(rule, "CTL", held=held)
        assert not any("rollback" in w.lab and w.lab.endswith(" on") for w in offered)


def test_rollback_before_or_after_the_reset_as_for_the_itl() -> None:
    """Where the rule locks phones out on their own cluster too, the migration-only rollback comes after
    the CTL reset (as the ITL's after the ITL reset); a QUERY too large keeps its own way first."""
    order = [w.when for w in ways_out("G.3.4-tvs-unknown-signer", "CTL", held=ITL_ONLY)]
    assert order.index(wo._ROLLBACK.when) < order.index(wo._CTL_RESET_ITL_HELD.when)
    order = [w.when for w in ways_out("G.3.4-tvs-unreachable", "CTL", held=ITL_ONLY)]
    for_ctl = wo._ROLLBACK_FOR_CTL[wo._ROLLBACK_MIGRATION_ONLY].when
    assert order.index(for_ctl) > order.index(wo._CTL_RESET_ITL_HELD.when)
    # the signer they refuse is the CTL's: not the ITL's words (its rollback ITL "has the signer they refuse")
    assert "signer they refuse" not in for_ctl and "while they still take its ITL" in for_ctl
    big = ways_out("G.3.4-tvs-unreachable", "CTL", "too-large", held=ITL_ONLY)
    assert big[0] == wo._QUERY_TOO_LARGE and wo._TVS_BACK not in big
    assert wo._ROLLBACK_FOR_CTL[wo._ROLLBACK_MIGRATION_ONLY] in big


def test_fleet_group_of_phones_holding_no_ctl() -> None:
    """A fleet's phones holding no CTL are their own group, said so, with the rollback in JSON and text."""
    doc = ways_out_doc({wo.ways_group("G.3.4-tvs-unknown-signer", "CTL", held=ITL_ONLY): 3})
    assert doc[0]["held"] == {"ctl": False, "empty_itl": False}
    assert any(w["lab"] == "phoneemu lab rollback OLD on" for w in doc[0]["ways"])
    text = "\n".join(ways_out_text(doc))
    assert "(CTL, holding no CTL; 3 phones locked out)" in text and "phoneemu lab rollback OLD on" in text
    assert _CTL_BLANK not in text


def test_tvs_back_names_the_cucm_service() -> None:
    """Bringing TVS back says what to start on CUCM, in the words of ``phoneemu tvs``' hint."""
    for kind in ("ITL", "CTL", "config"):
        back = ways_out(f"G.{'4' if kind == 'config' else '3.4'}-tvs-unreachable", kind)[0]
        assert back.when == "a TVS outage, or TVS moved"
        assert "Cisco Trust Verification Service" in back.action
        assert "Cisco Unified Serviceability" in back.action


def _lab(where: Path, name: str, seed: int) -> LabCluster:
    """A lab ``where/name`` of ``seed`` (its last address byte too)."""
    return LabCluster.init(where / name, seed=seed, key_spec="rsa1024", now=NOW, name=name,
                           host=f"127.0.0.{seed}")


def _locked_by_a_new_ctl(tmp_path: Path) -> tuple[LabCluster, LabCluster, Path]:
    """``old`` (not mixed mode) and ``new`` (mixed mode): the phones booted on old's files (an ITL, no CTL),
    then on new's, offline (TVS not reachable): new's CTL refused, locked."""
    old = _lab(tmp_path, "old", 81)
    new = _lab(tmp_path, "new", 82)
    new.set_mixed_mode(True, now=NOW)
    for lab in (old, new):
        lab.add_phones(MACS, now=NOW)
    fleet = tmp_path / "fleet"
    assert all(r.ok for r in run(boot_offline_into(fleet, old, MACS, now=NOW)))
    for report in run(boot_offline_into(fleet, new, MACS, now=NOW)):
        assert report.locked_out and report.deciding.kind == "CTL", report.deciding
        assert report.deciding.rule == "G.3.4-tvs-unreachable"
    return old, new, fleet


def test_real_lockout_offers_the_rollback_that_works(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The lockout as ``phone show`` says it (text and JSON, one phone and the fleet): the rollback offered,
    no CTL reset labelled for a CTL; then done — rollback on at old, the phones reset there, back on new —
    the phones take new's CTL on first use (was: not offered)."""
    old, new, fleet = _locked_by_a_new_ctl(tmp_path)
    flash = fleet / MACS[0]
    assert cli.main(["phone", "show", "--flash", str(flash)]) == 0
    text = capsys.readouterr().out
    assert "lab rollback OLD on" in text and "take the new cluster's CTL on first use" in text
    assert _CTL_BLANK not in text
    assert cli.main(["phone", "show", "--flash", str(flash), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert "phoneemu lab rollback OLD on" in [w["lab"] for w in info["ways_out"]]
    assert cli.main(["phone", "show", "--fleet-flash", str(fleet), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)["ways_out"]
    # new's CTL reset is signed by new's CallManager key, which old's ITL never held: not offered
    assert [e["held"] for e in doc] == [{"ctl": False, "empty_itl": False, "ctl_reset_signer_held": False}]
    assert "phoneemu lab rollback OLD on" in [w["lab"] for w in doc[0]["ways"]]
    assert not any("ctl-reset" in w["lab"] for w in [*doc[0]["ways"], *info["ways_out"]]), doc

    old.set_rollback(True, now=NOW)
    run(boot_offline_into(fleet, old, MACS, now=NOW))
    for report in run(boot_offline_into(fleet, new, MACS, now=NOW)):
        assert report.ok and not report.locked_out, report.deciding
        assert report.trust.get("CTL") == "installed", report.trust


def test_ctl_reset_fits_phones_holding_only_their_own_clusters_itl(tmp_path: Path) -> None:
    """The relabelled CTL reset: phones holding their own cluster's ITL, no CTL, refuse its first CTL
    (ITLRecovery regenerated as mixed mode came on, TVS not reachable); after ``ctl reset localkey`` they
    take it, signed by the CallManager key, a SAST record of their ITL (spec §G.3 step 3)."""
    lab = _lab(tmp_path, "own", 83)
    lab.add_phones(MACS[:1], now=NOW)
    fleet = tmp_path / "fleet"
    run(boot_offline_into(fleet, lab, MACS[:1], now=NOW))
    lab.regenerate("itlrecovery", now=NOW)
    lab.set_mixed_mode(True, now=NOW)
    (locked,) = run(boot_offline_into(fleet, lab, MACS[:1], now=NOW))
    assert locked.locked_out and locked.deciding.kind == "CTL"
    assert wo._CTL_RESET_ITL_HELD in ways_out(locked.deciding.rule, "CTL", held=locked.held)
    lab.ctl_reset("localkey", now=NOW)
    (after,) = run(boot_offline_into(fleet, lab, MACS[:1], now=NOW))
    assert not after.locked_out and after.trust.get("CTL") == "installed", after.trust


def test_phone_show_does_not_say_a_reboot_clears_the_lock(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A reboot with the cause still there refuses the same list again (spec §G.3 step 5): not a way out."""
    _old, _new, fleet = _locked_by_a_new_ctl(tmp_path)
    assert cli.main(["phone", "show", "--flash", str(fleet / MACS[0])]) == 0
    text = capsys.readouterr().out
    line = next(line for line in text.splitlines() if "Trust List update failed" in line)
    assert "reboot)" not in line and "an erase or a reboot" not in line
    assert "a reset while the cause remains refuses the same list again" in line
