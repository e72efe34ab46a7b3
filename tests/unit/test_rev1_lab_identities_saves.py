"""An operation's new identities go with the state that records them, whatever save writes that state
(:mod:`phoneemu.lab.pki`, ``cluster._ServedChange``):

* a save that changes the state only (``advance_clock``, ``export_itlrecovery``, ``lab serve``'s HTTPS
  ``tomcat`` identity made on first use) settles first the change a killed operation of another process
  left: the note names the state saved before it, which that save replaces — was: not settled, the next open
  found "another state saved" and rolled the killed operation's key pair and files FORWARD under a state
  that never recorded them (the bug staging was to fix);
* an operation that failed after staging (its files could not be staged, or its save failed) leaves the
  cluster that tried as saved — state, served files, identities — so that a later save of the same
  cluster (a scenario's, the Python API's) writes no part of it — was: a state-only save wrote the state
  recording the regeneration without its key, and after a failed save the key was dropped but the state
  recording it kept: the lab's change log named a regeneration whose key was lost.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from phoneemu.crypto import certs, keys
from phoneemu.errors import PhoneEmuError
from phoneemu.lab import cluster as cluster_module
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.pki import pending_identities
from tests.killed_write_helpers import regenerate_on_a_full_disk, run_killed

NOW = 1_780_000_000
MAC = "001122334455"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small seeded lab with a phone."""
    lab = LabCluster.init(tmp_path_factory.mktemp("rev1-identities") / "pristine", seed=11,
                          key_spec="rsa1024", now=NOW, durable=False)
    lab.add_phone(MAC, now=NOW)
    return lab.root


@pytest.fixture
def root(pristine: Path, tmp_path: Path) -> Path:
    shutil.copytree(pristine, tmp_path / "lab")
    return tmp_path / "lab"


def _killed_at_its_save(lab: LabCluster) -> None:
    """(in a forked child) regenerate callmanager, SIGKILLed as it saves its state: staged, sealed, not
    saved."""
    def killed(*_: object) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    setattr(cluster_module, "save_state", killed)  # noqa: B010 (mypy: an import of that module)
    lab.regenerate("callmanager", now=NOW + 60)


def _consistent(root: Path) -> tuple[int, bool]:
    """(the callmanager generation the saved state records, whether its log has a regeneration), checked
    against the lab as opened now: the key in force is its certificate's, the ITL served holds that
    certificate, nothing is left staged."""
    opened = LabCluster.open(root, durable=False)
    gen = opened.state.identity_generations["callmanager"]
    logged = any(e.op == "regenerate" for e in opened.state.log)
    assert logged == (gen == 1)
    ident = opened.identity("callmanager")
    spki = keys.public_key_spki_der
    assert spki(ident.key.public_key()) == spki(certs.cert_public_key(ident.cert))  # a pair
    assert ident.der in (root / "tftp" / "ITLFile.tlv").read_bytes()
    assert not pending_identities(root).exists()
    return gen, logged


_PLAIN_SAVES: dict[str, Callable[[LabCluster], object]] = {
    "advance-clock": lambda lab: lab.advance_clock(30),
    "app-server-identity": lambda lab: lab.app_server_identity(now=NOW + 90),
}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("save", sorted(_PLAIN_SAVES))
def test_a_plain_save_settles_a_killed_change_first_not_forward(root: Path, tmp_path: Path,
                                                                 save: str) -> None:
    """``lab serve`` (a cluster opened before) writes the state after an operation of another process was
    killed between its note and its save: the killed regeneration is rolled back, not forward."""
    serving = LabCluster.open(root, durable=False)  # lab serve's, read before the operation
    old = serving.identity("callmanager")
    assert run_killed(root, _killed_at_its_save, 0, tmp_path / "counted") == -signal.SIGKILL
    assert (root / "tftp" / ".pending.json").exists() and pending_identities(root).is_dir()  # sealed, unsaved
    _PLAIN_SAVES[save](serving)
    opened = LabCluster.open(root, durable=False)
    assert opened.state.identity_generations["callmanager"] == 0
    assert opened.identity("callmanager").cert == old.cert  # was: the killed operation's new key in force
    assert old.der in (root / "tftp" / "ITLFile.tlv").read_bytes()
    assert not pending_identities(root).exists() and not (root / "tftp" / ".pending.json").exists()


def _held_served_lock(root: Path) -> int:
    """The served files' change lock taken as another process's live change holds it."""
    fd = os.open(root / ".served.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


@pytest.mark.parametrize("save", sorted(_PLAIN_SAVES))
def test_an_operation_that_failed_leaves_nothing_for_a_later_save(root: Path, save: str) -> None:
    """The regeneration fails after staging its key and logging itself (its files cannot be staged:
    another change under way): the cluster that tried is as saved again, and a later save of it (a
    state-only one here) records no regeneration and keeps the old pair in force (was: that save wrote the
    state recording the regeneration, generation 1, without its key: the old one in force)."""
    lab = LabCluster.open(root, durable=False)
    old = lab.identity("callmanager")
    fd = _held_served_lock(root)
    try:
        with pytest.raises(PhoneEmuError, match="another process is changing the served files"):
            lab.regenerate("callmanager", now=NOW + 60)
    finally:
        os.close(fd)
    assert lab.state.identity_generations["callmanager"] == 0  # was: 1, the staged key in force
    assert lab.identity("callmanager").cert == old.cert
    _PLAIN_SAVES[save](lab)
    assert _consistent(root) == (0, False)
    assert LabCluster.open(root, durable=False).identity("callmanager").cert == old.cert


def test_a_failed_save_leaves_nothing_for_a_later_operation(root: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The regeneration's save fails (a full disk): the disk keeps the old pair under the old state, and so
    does the cluster that tried — its state, its served files, its identities — so a later operation of it
    saves no trace of the regeneration (was: its state kept in memory recording generation 1 while its key
    was dropped: the next operation saved a change log naming a regeneration whose key was gone, and the
    ITL it served in memory held a certificate whose key was not in force)."""
    lab = LabCluster.open(root, durable=False)
    old = lab.identity("callmanager")
    regenerate_on_a_full_disk(lab, monkeypatch, now=NOW + 60)
    assert _consistent(root) == (0, False)  # on disk: the old pair, the old state
    assert lab.state.identity_generations["callmanager"] == 0 and lab.identity("callmanager").cert == old.cert
    assert old.der in lab.get("ITLFile.tlv")  # type: ignore[operator]
    lab.add_phone("001122334466", now=NOW + 120)
    assert _consistent(root) == (0, False)
    opened = LabCluster.open(root, durable=False)
    assert opened.identity("callmanager").cert == old.cert and "001122334466" in opened.state.phones
