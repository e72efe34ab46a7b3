"""A lab change that fails half-way leaves the cluster object that tried as saved (``phoneemu.lab.cluster``):

* inside :meth:`LabCluster.saved_once` (``lab serve``'s CAPF group commit), a failure that is no record's
  own (an OSError staging a served file: a full disk) in the group's FIRST record — no save due yet — puts the
  cluster back as saved too, and lets go of the change's lock: was: the phone's new files kept in memory
  (served by ``lab serve`` over a state that never recorded them) and the served files' change lock held,
  so that every ``phoneemu lab`` operation of another process failed "another process is changing the
  served files" until ``lab serve`` next changed the lab;
* an operation failing after it staged identities or MICs but before its commit (``add-node`` between its
  two identities, ``add-certs`` between two certificates, ``phone add`` between two phones) is undone:
  was: left staged in memory, written by the next operation of the same cluster object (the Python API, a
  scenario) as though it had succeeded — a phone the failed call added, a node's identities.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from phoneemu.errors import EncodeError, PhoneEmuError
from phoneemu.lab import cluster as cluster_module
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.pki import LabPki

NOW = 1_780_000_000
MAC = "001122334455"
NEW = "0011223344AA"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small seeded lab with a phone whose CAPF install is pending."""
    lab = LabCluster.init(tmp_path_factory.mktemp("rev3-failed") / "pristine", seed=13, key_spec="rsa1024",
                          now=NOW, durable=False)
    lab.add_phone(MAC, capf_operation="install", capf_auth_mode="null-string", now=NOW)
    return lab.root


@pytest.fixture
def root(pristine: Path, tmp_path: Path) -> Path:
    shutil.copytree(pristine, tmp_path / "lab")
    return tmp_path / "lab"


def _on_disk(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (root / "tftp").iterdir() if p.is_file()}


def _change_lock_free(root: Path) -> bool:
    """Whether another process could take the served files' change lock now (a second open file
    description stands for it: flock conflicts between them within one process too)."""
    fd = os.open(root / ".served.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_a_group_whose_first_record_fails_outside_its_own_errors_is_put_back(
        root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab = LabCluster.open(root, durable=False)
    before = lab.files()
    assert before == _on_disk(root)

    real = cluster_module._ServedChange.put

    def full(change: Any, name: str, data: bytes, **kw: Any) -> None:  # the config staged, not its .sgn
        if name.endswith(".sgn"):
            raise OSError(28, "No space left on device")
        real(change, name, data, **kw)

    monkeypatch.setattr(cluster_module._ServedChange, "put", full)

    def group() -> None:  # as the CAPF server's group commit (phoneemu.lab.capf_service)
        with lab.saved_once():
            try:
                lab.capf_done(MAC, now=NOW + 60, operation="install")
            except PhoneEmuError:  # a record's own error: not this one
                raise AssertionError("an OSError is no record's own error") from None

    with pytest.raises(OSError, match="No space"):
        lab.update_locked(group)
    monkeypatch.undo()

    assert lab.state.phones[MAC].capf_operation == "install"  # the record undone (it was already)
    assert lab.files() == before == _on_disk(root)  # was: the phone's new config served from memory
    assert _change_lock_free(root)  # was: held by this cluster, other processes' operations refused
    other = LabCluster.open(root, durable=False)
    other.set_sbd(True, now=NOW + 120)  # another process's operation runs
    lab.reload_if_changed()
    assert lab.files() == _on_disk(root)


def _fail_on_call(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str, call: int) -> None:
    """``owner.name`` raises an EncodeError at its ``call``-th call (1-based), else runs."""
    real = getattr(owner, name)
    calls = [0]

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == call:
            raise EncodeError(f"injected failure of {name}", path=name)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapped)


_FAILING: dict[str, tuple[str, Any]] = {
    "add-node": ("create", lambda lab: lab.add_node(now=NOW + 60)),
    "add-certs": ("create", lambda lab: lab.add_certs(3, now=NOW + 60)),
    "phone-add": ("issue_mic", lambda lab: lab.add_phones([NEW, "0011223344AB"], now=NOW + 60)),
}


@pytest.mark.parametrize("op", sorted(_FAILING))
def test_an_operation_failing_before_its_commit_leaves_nothing_for_a_later_save(
        root: Path, monkeypatch: pytest.MonkeyPatch, op: str) -> None:
    lab = LabCluster.open(root, durable=False)
    generations = dict(lab.state.identity_generations)
    method, run = _FAILING[op]
    _fail_on_call(monkeypatch, LabPki, method, 2)  # the second identity or MIC: the first one staged
    with pytest.raises(EncodeError, match="injected failure"):
        run(lab)
    monkeypatch.undo()

    lab.set_sbd(True, now=NOW + 120)  # a later operation of the same cluster object
    saved = LabCluster.open(root, durable=False)
    assert saved.state.identity_generations == generations  # was: callmanager-2 / extra-1 recorded
    assert saved.state.nodes == 1 and saved.state.extra_certs == 0
    assert NEW not in saved.state.phones and not (root / "phones" / NEW).exists()  # was: the phone added
    assert not (root / "private" / "callmanager-2.key").exists()
    assert not (root / "private" / "extra-1.key").exists()
