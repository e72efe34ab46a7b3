"""``lab exchange`` says the roles TVS answers for each certificate after the import, not the store's.

An import of a certificate already there adds the store's roles to the ones it had (``_import_trust``):
after ``both`` then ``--store callmanager-trust`` TVS still answers SAST and TFTP. The line said "(roles
TFTP)", the store's roles, which is not what a phone will be told."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.formats.trustlist import Role
from phoneemu.lab.cluster import LabCluster

NOW = 1_780_000_000


def _labs(tmp_path: Path) -> tuple[LabCluster, LabCluster]:
    old = LabCluster.init(tmp_path / "old", seed=31, name="old", key_spec="rsa1024", now=NOW)
    new = LabCluster.init(tmp_path / "new", seed=32, name="new", key_spec="rsa1024", now=NOW)
    return old, new


def _exchange(old: LabCluster, new: LabCluster, capsys: pytest.CaptureFixture[str], *store: str) -> str:
    assert main(["lab", "exchange", str(old.root), str(new.root), *store]) == 0
    return capsys.readouterr().out


def test_an_import_after_one_into_both_stores_says_the_merged_roles(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = _labs(tmp_path)
    first = _exchange(old, new, capsys)
    assert first.count("(roles SAST, TFTP)") == 2, first
    out = _exchange(old, new, capsys, "--store", "callmanager-trust")
    assert "(roles TFTP)" not in out, out
    assert out.count("(roles SAST, TFTP: SAST from an earlier import)") == 2, out
    tvs_answers = LabCluster.open(old.root).tvs_lookup(new.identity("itlrecovery").der)
    assert tvs_answers is not None and set(tvs_answers.roles) == {Role.SAST, Role.TFTP}


def test_each_certificate_is_said_with_its_own_roles(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A CallManager certificate regenerated after an exchange into both stores is new to the other TVS:
    imported into CallManager-trust it gets TFTP only, while ITLRecovery keeps SAST."""
    old, new = _labs(tmp_path)
    _exchange(old, new, capsys)
    new.regenerate("callmanager", now=NOW + 60)
    out = _exchange(old, new, capsys, "--store", "callmanager-trust")
    cm = LabCluster.open(new.root).callmanager()
    assert "(roles SAST, TFTP: SAST from an earlier import), new-pub (roles TFTP);" in out, out
    tvs_answers = LabCluster.open(old.root).tvs_lookup(cm.der)
    assert tvs_answers is not None and set(tvs_answers.roles) == {Role.TFTP}


def test_a_first_import_says_the_stores_roles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = _labs(tmp_path)
    out = _exchange(old, new, capsys, "--store", "callmanager-trust")
    assert out.count("(roles TFTP)") == 2 and "earlier import" not in out, out
