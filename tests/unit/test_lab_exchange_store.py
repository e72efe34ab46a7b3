"""``exchange`` ``store`` (``lab exchange --store``, a scenario's ``store:``): the trust stores a bulk
certificate exchange imports into, and the roles the lab's TVS then answers (``EXCHANGE_STORES``, our
convention: spec §G.6 names CallManager-trust and Phone-SAST-trust, §E.6 gives roles by store only by
example). Before, every exchange gave SAST + TFTP, so no lab TVS could know a trust list's signer without
SAST and ``G.3.4-tvs-wrong-role`` could not be rehearsed (``scenarios/migration-tvs-wrong-role.yaml``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.errors import EncodeError, ScenarioError
from phoneemu.formats.trustlist import Role
from phoneemu.lab.cluster import EXCHANGE_STORES, LabCluster
from phoneemu.scenario.loader import ADMIN_CHOICES, load_text

NOW = 1_780_000_000


def _labs(tmp_path: Path) -> tuple[LabCluster, LabCluster]:
    old = LabCluster.init(tmp_path / "old", seed=31, name="old", key_spec="rsa1024", now=NOW)
    new = LabCluster.init(tmp_path / "new", seed=32, name="new", key_spec="rsa1024", now=NOW)
    return old, new


def _roles(lab: LabCluster, der: bytes) -> set[int]:
    entry = lab.tvs_lookup(der)
    assert entry is not None
    return set(entry.roles)


def test_an_exchange_into_callmanager_trust_only_gives_tftp_without_sast(tmp_path: Path) -> None:
    old, new = _labs(tmp_path)
    old.exchange_certificates(new, store="callmanager-trust")
    for me, peer in ((old, new), (new, old)):
        for ident in (peer.identity("itlrecovery"), peer.callmanager()):
            assert _roles(me, ident.der) == {Role.TFTP}, (me.state.name, ident.name)
    assert old.state.log[-1].args["store"] == "callmanager-trust"
    reopened = LabCluster.open(old.root)  # persisted
    assert _roles(reopened, new.identity("itlrecovery").der) == {Role.TFTP}


def test_the_default_imports_into_both_stores_and_a_second_import_adds_the_missing_role(
        tmp_path: Path) -> None:
    old, new = _labs(tmp_path)
    old.exchange_certificates(new, store="callmanager-trust")
    old.exchange_certificates(new)  # into Phone-SAST-trust as well: SAST added, no second entry
    assert _roles(old, new.identity("itlrecovery").der) == {Role.SAST, Role.TFTP}
    assert len(old.state.tvs_trust) == 2 and old.state.log[-1].args["added"] == 0


def test_an_unknown_store_is_refused_naming_the_field_and_changes_nothing(tmp_path: Path) -> None:
    old, new = _labs(tmp_path)
    with pytest.raises(EncodeError, match=r"unknown store 'phone-trust'.*both, callmanager-trust") as exc:
        old.exchange_certificates(new, store="phone-trust")
    assert exc.value.path == "store"
    assert old.state.tvs_trust == [] and new.state.tvs_trust == []


def test_the_cli_takes_store_and_says_the_roles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = _labs(tmp_path)
    assert main(["lab", "exchange", str(old.root), str(new.root), "--store", "callmanager-trust"]) == 0
    out = capsys.readouterr().out
    assert "(roles TFTP)" in out, out
    assert _roles(LabCluster.open(old.root), new.identity("itlrecovery").der) == {Role.TFTP}


_SCENARIO = """\
name: s
clusters: {{old: {{}}, new: {{}}}}
phones: {{p: {{cluster: old}}}}
steps:
  - admin: {{cluster: old, op: exchange, with: new, store: {store}}}
  - expect: {{phones: p, locked_out: false}}
"""


def test_a_scenario_names_the_store_and_the_loader_refuses_another() -> None:
    assert ADMIN_CHOICES[("exchange", "store")] == tuple(EXCHANGE_STORES)  # the loader's copy of the lab's
    step = load_text(_SCENARIO.format(store="callmanager-trust")).steps[0]
    assert step.args["store"] == "callmanager-trust"
    with pytest.raises(ScenarioError, match=r"<string>:5.*unknown store 'sast'"):
        load_text(_SCENARIO.format(store="sast"))
