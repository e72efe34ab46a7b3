"""A lab operation that makes a new key pair goes whole with its state: killed at any of its writes, the lab
next opened holds the old pair under the old state with the old certificate in its ITL, or the new pair
under the new state with the new certificate, never the new key under the old state (every point tried with
a real SIGKILL in a forked child, :mod:`tests.killed_write_helpers`); a failed save leaves the old pair. The
CallManager regeneration killed so is also the one of tests/unit/test_lab_served_atomic.py (its served files
old or new whole, as a reader and ``lab serve`` see them): one run of its kill points checks both."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from phoneemu.crypto import certs, keys
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.pki import Identity, pending_identities
from tests.killed_write_helpers import KilledLab, killed_labs, regenerate_on_a_full_disk

NOW = 1_780_000_000
MAC = "001122334455"
MAC2 = "00112233445A"  # the second phone of tests/unit/test_lab_served_atomic.py's lab


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small seeded lab (a regeneration makes the same new pair in every run) in mixed mode with two
    phones: ITL, CTL, their per-phone copies and configs signed by its identities (the served files'
    lab of tests/unit/test_lab_served_atomic.py)."""
    lab = LabCluster.init(tmp_path_factory.mktemp("identities") / "pristine", seed=7, key_spec="rsa1024",
                          now=NOW, durable=False)
    lab.set_mixed_mode(True, now=NOW)
    lab.add_phones((MAC, MAC2), now=NOW)
    return lab.root


def _served_on_disk(root: Path) -> dict[str, bytes]:
    """Every served file of ``DIR/tftp`` (not the hidden ones) by name."""
    return {p.name: p.read_bytes() for p in sorted((root / "tftp").iterdir())
            if p.is_file() and not p.name.startswith(".")}


def _spki(ident: Identity) -> bytes:
    return keys.public_key_spki_der(ident.key.public_key())


def _pair_in_force(root: Path, name: str) -> Identity:
    """Identity ``name`` as the lab opened now reads it, its key checked to be its certificate's."""
    ident = LabCluster.open(root, durable=False).identity(name)
    assert _spki(ident) == keys.public_key_spki_der(certs.cert_public_key(ident.cert))
    return ident


@pytest.mark.slow  # every write point of three regenerations: about 40 forks each
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("name", ["callmanager", "itlrecovery", "tvs"])
def test_a_regeneration_killed_at_any_write_leaves_the_old_pair_or_the_new(pristine: Path, tmp_path: Path,
                                                                           name: str) -> None:
    """Was: the new key pair written in place before the state's save, so a kill between left it under the
    old state (old generation, no change-log entry): the next operation signed with it, and the lockout
    warnings, which read the change log, missed the regeneration. Now the lab opened after a kill at any
    write is (old state, old certificate in the ITL, old key) or (new, new, new), with nothing staged left.

    CallManager's also (tests/unit/test_lab_served_atomic.py, was its ``regenerate`` case, the same
    operation killed at the same writes): each served file replaced one at a time and the state saved last,
    so a kill between served a mix of both generations under the old state. Now every point leaves, once
    the lab is opened or ``lab serve`` reloads, the old files with the old state or the new with the new,
    and no leftover."""
    def operation(lab: LabCluster) -> None:
        lab.regenerate(name, now=NOW + 60)

    old = _pair_in_force(pristine, name)
    old_served, serving = _served_on_disk(pristine), name == "callmanager"
    done = tmp_path / "done"
    run_to_its_end: tuple[Identity, dict[str, bytes]] | None = None
    for killed in killed_labs(pristine, tmp_path, operation, done, serving=serving):
        if run_to_its_end is None:  # read once: ``done`` is made before the first kill, and not changed after
            run_to_its_end = _pair_in_force(done, name), _served_on_disk(done)
        new, new_served = run_to_its_end
        assert _spki(new) != _spki(old)
        if serving:
            _served_old_or_new(killed, old_served, new_served)
        kill_at, opened = killed.kill_at, killed.opened
        outcome, other = (new, old) if killed.is_new else (old, new)
        assert opened.state.identity_generations[name] == (1 if killed.is_new else 0), kill_at
        in_force = opened.identity(name)  # the key the next operation or lab serve signs with
        assert (in_force.cert, _spki(in_force)) == (outcome.cert, _spki(outcome)), f"mixed: {kill_at}"
        itl = (killed.work / "tftp" / "ITLFile.tlv").read_bytes()
        assert outcome.der in itl and other.der not in itl, kill_at
        assert stat.S_IMODE(opened.pki.key_path(name).stat().st_mode) == 0o600


def _served_old_or_new(killed: KilledLab, old: dict[str, bytes], new: dict[str, bytes]) -> None:
    """The served files of the lab ``killed`` are the old ones with the old state or the new with the new,
    whole, nothing of the change left; what the lab opened after and the one read before it serve them."""
    kill_at, work, opened = killed.kill_at, killed.work, killed.opened
    assert new != old
    served = _served_on_disk(work)
    assert served == (new if killed.is_new else old), f"killed before write {kill_at}: a mix"
    assert sorted(p.name for p in (work / "tftp").iterdir() if p.name.startswith(".")) == [], kill_at
    assert opened.state.to_json().encode() == (work / "cluster.json").read_bytes(), kill_at
    assert killed.server is not None
    assert dict(opened.files()) == served and dict(killed.server.files()) == served, kill_at


def test_a_save_that_fails_leaves_the_old_pair_in_force(pristine: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Was: the new key and certificate in place, then the save failed (a full disk): the new pair under the
    old state. Now the old pair stays, on disk and in the cluster that tried, and nothing is left staged."""
    root = tmp_path / "lab"
    shutil.copytree(pristine, root)
    lab = LabCluster.open(root, durable=False)
    old = lab.identity("callmanager")
    regenerate_on_a_full_disk(lab, monkeypatch, now=NOW + 60)
    assert lab.identity("callmanager").cert == old.cert
    assert _pair_in_force(root, "callmanager").cert == old.cert
    assert not pending_identities(root).exists()


def test_a_node_added_goes_with_its_save_and_its_identities_are_read_back(pristine: Path,
                                                                          tmp_path: Path) -> None:
    """add-node stages two identities (its CallManager and TVS) and puts both in place with its save; a lab
    opened again reads them, each key its certificate's."""
    root = tmp_path / "lab"
    shutil.copytree(pristine, root)
    lab = LabCluster.open(root, durable=False)
    lab.add_node(now=NOW + 60)
    assert not pending_identities(root).exists()
    for name in ("callmanager-2", "tvs-2"):
        assert _pair_in_force(root, name).cert == lab.identity(name).cert
        assert stat.S_IMODE(lab.pki.key_path(name).stat().st_mode) == 0o600
