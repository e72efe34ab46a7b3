"""The lab's served files are one state's, old or new, never half (red team of the lab's state): an operation
killed at any point of its writes leaves, once the lab is next opened, the served files of the state saved
(every point tried with a real SIGKILL in a forked child); a save that fails leaves the old files; a served
file that is a FIFO is one line naming it, not a hang; of two ``lab init`` of one folder at once one makes
the lab, the other stops with one line and removes nothing of it."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from phoneemu.errors import PhoneEmuError
from phoneemu.lab import cluster as cluster_module
from phoneemu.lab import state as state_module
from phoneemu.lab.cluster import LabCluster
from tests.killed_write_helpers import count_writes, restore_copy, run_killed

NOW = 1_780_000_000
MACS = ("001122334455", "00112233445A")


def _served_on_disk(root: Path) -> dict[str, bytes]:
    """Every served file of ``DIR/tftp`` (not the hidden ones) by name."""
    return {p.name: p.read_bytes() for p in sorted((root / "tftp").iterdir())
            if p.is_file() and not p.name.startswith(".")}


def _change_left(root: Path) -> list[str]:
    """What a change of served files left in ``DIR/tftp``: nothing once the lab is opened."""
    return sorted(p.name for p in (root / "tftp").iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small seeded lab in mixed mode with two phones: ITL, CTL, their per-phone copies and configs (made
    once for the module: each test changes its own copy, :func:`pristine`)."""
    lab = LabCluster.init(tmp_path_factory.mktemp("served") / "pristine", seed=7, key_spec="rsa1024", now=NOW,
                          durable=False)
    lab.set_mixed_mode(True, now=NOW)
    lab.add_phones(MACS, now=NOW)
    return lab.root


@pytest.fixture
def pristine(template: Path, tmp_path: Path) -> Path:
    """A copy of the module's lab (:func:`template`) for the test to change."""
    return Path(shutil.copytree(template, tmp_path / "pristine"))


_OPERATIONS: dict[str, Callable[[LabCluster], object]] = {
    # every file re-signed (a full rebuild); no key made, so the new files are the same in every run
    "signature-algorithm": lambda c: c.set_signature_algorithm("sha512", now=NOW + 60),
    # two phones' configs rebuilt (LabCluster._rebuild_phones)
    "digest": lambda c: c.set_digest(list(MACS), "user", "secret", now=NOW + 60),
    # (a new key, then every file signed with it: regenerate callmanager, killed at every write on this lab
    # by tests/unit/test_lab_identities_atomic.py, which checks its served files as this test does)
    # the ITL and each phone's copy of it
    "tamper": lambda c: c.tamper("ITLFile.tlv", now=NOW + 60),
}


@pytest.mark.slow  # every write point of three operations: about 30 forks each
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("op", list(_OPERATIONS))
def test_an_operation_killed_at_any_write_leaves_the_old_files_or_the_new(pristine: Path, tmp_path: Path,
                                                                          op: str) -> None:
    """Was: each served file replaced one at a time and the state saved last, so a kill between two served
    a mix of both generations (the new ITL beside the old configs, or some per-phone ITL copies tampered)
    under the old state; ``lab show`` and ``lab serve`` read it as it was. Now every point of the write
    leaves, once the lab is opened (or ``lab serve`` reloads), the old files with the old state or the new
    files with the new state, and no leftover."""
    old = _served_on_disk(pristine)
    old_state = (pristine / "cluster.json").read_bytes()
    done = tmp_path / "done"
    shutil.copytree(pristine, done)
    counted = tmp_path / "counted"
    writes = count_writes(done, _OPERATIONS[op], counted)
    new = _served_on_disk(done)
    new_state = (done / "cluster.json").read_bytes()
    assert new != old and new_state != old_state and 5 < writes < 400
    work = tmp_path / "work"
    outcomes = set()
    for kill_at in range(1, writes + 1):
        restore_copy(pristine, work)
        server = LabCluster.open(work, durable=False)  # as lab serve: all read before the operation
        server.load_served()
        assert run_killed(work, _OPERATIONS[op], kill_at, counted) == -signal.SIGKILL, kill_at
        server.reload_if_changed()
        opened = LabCluster.open(work, durable=False)  # as lab show, lab serve's reload, an operation
        served = _served_on_disk(work)
        assert served in (old, new), f"killed before write {kill_at} of {writes}: a mix"
        assert _change_left(work) == [], kill_at
        outcome = "new" if served == new else "old"
        outcomes.add(outcome)
        assert (work / "cluster.json").read_bytes() == (new_state if outcome == "new" else old_state), kill_at
        assert opened.state.to_json().encode() == (work / "cluster.json").read_bytes()
        assert dict(opened.files()) == served and dict(server.files()) == served, kill_at
    assert outcomes == {"old", "new"}


def _paused_child(root: str, op: str, paused: Any, go: Any) -> None:
    """Run ``op`` on the lab in ``root``, waiting (at most 30 s) just before it saves the state."""
    real = state_module.save_state

    def waiting(*args: Any) -> None:
        paused.set()
        go.wait(30)
        real(*args)

    cluster_module.save_state = waiting  # type: ignore[attr-defined, assignment]  # where the cluster calls it
    _OPERATIONS[op](LabCluster.open(root, durable=False))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_reader_during_an_operation_reads_the_old_files_and_leaves_its_change_alone(pristine: Path,
                                                                                     tmp_path: Path) -> None:
    """A reader that does not hold the lab lock (``lab serve`` starting, ``phone``) opening the lab while an
    operation is about to save: the old files whole (was: the operation's new files beside the old state),
    and the operation's change untouched, put in place once it saves."""
    old = _served_on_disk(pristine)
    done = tmp_path / "done"
    shutil.copytree(pristine, done)
    _OPERATIONS["signature-algorithm"](LabCluster.open(done, durable=False))
    new = _served_on_disk(done)
    ctx = multiprocessing.get_context("fork")
    paused, go = ctx.Event(), ctx.Event()
    with warnings.catch_warnings():  # 3.12+: "multi-threaded process, fork() may deadlock" (not here)
        warnings.simplefilter("ignore", DeprecationWarning)
        proc = ctx.Process(target=_paused_child, args=(str(pristine), "signature-algorithm", paused, go))
        proc.start()
    try:
        assert paused.wait(60)
        reader = LabCluster.open(pristine, durable=False)
        assert dict(reader.files()) == _served_on_disk(pristine) == old
    finally:
        go.set()
        proc.join(60)
    assert proc.exitcode == 0
    assert _served_on_disk(pristine) == new and _change_left(pristine) == []
    assert dict(LabCluster.open(pristine).files()) == new


def test_a_save_that_fails_leaves_the_old_files(pristine: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Was: the new files in place, then the save failed (a full disk): new files under the old state."""
    old = _served_on_disk(pristine)
    lab = LabCluster.open(pristine, durable=False)

    def full(root: Path, state: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cluster_module, "save_state", full)
    with pytest.raises(OSError, match="No space"):
        lab.set_signature_algorithm("sha512", now=NOW + 60)
    assert _served_on_disk(pristine) == old and _change_left(pristine) == []
    monkeypatch.undo()
    lab.set_tvs_ttl(600, now=NOW + 120)  # the next change starts from the files as saved
    again = LabCluster.open(pristine)
    assert again.state.tvs_ttl == 600 and dict(again.files()) == _served_on_disk(pristine)


def test_a_group_commit_puts_its_files_in_place_after_its_one_save(pristine: Path) -> None:
    """:meth:`LabCluster.saved_once` (the CAPF server's group commit): nothing in place before the save,
    every change's files after it."""
    lab = LabCluster.open(pristine, durable=False)
    old = _served_on_disk(pristine)
    with lab.saved_once():
        lab.set_digest([MACS[0]], "a", "1", now=NOW + 60)
        lab.set_digest([MACS[1]], "b", "2", now=NOW + 61)
        lab.set_digest([MACS[0]], "c", "3", now=NOW + 62)
        assert _served_on_disk(pristine) == old
    served = _served_on_disk(pristine)
    assert served == dict(lab.files()) == dict(LabCluster.open(pristine).files())
    assert _change_left(pristine) == []
    assert b"<authName>c</authName>" in served[f"SEP{MACS[0]}.cnf.xml"]
    assert b"<authName>b</authName>" in served[f"SEP{MACS[1]}.cnf.xml"]


def test_tamper_of_a_name_given_with_a_slash_tampers_the_served_file(pristine: Path) -> None:
    """``get`` answers ``/ITLFile.tlv`` as ``ITLFile.tlv``; tamper wrote the flipped bytes to ``/ITLFile.tlv``
    (``tftp / "/ITLFile.tlv"``: the file system's root), leaving the served ITL and its copies as they were.
    (Not run on the old code: it writes outside the test's folder.)"""
    lab = LabCluster.open(pristine, durable=False)
    old = dict(lab.files())
    lab.tamper("/ITLFile.tlv", now=NOW + 60)
    served = _served_on_disk(pristine)
    changed = sorted(n for n in served if served[n] != old[n])
    assert changed == ["ITLFile.tlv", *sorted(f"ITLSEP{m}.tlv" for m in MACS)]
    assert served == dict(lab.files()) == dict(LabCluster.open(pristine).files())


def test_a_served_file_that_is_a_fifo_is_one_line_not_a_hang(pristine: Path) -> None:
    """``lab show`` opened ``tftp/ITLFile.tlv`` blocking: a FIFO there hung it for ever."""
    itl = pristine / "tftp" / "ITLFile.tlv"
    itl.unlink()
    os.mkfifo(itl)
    run = subprocess.run([sys.executable, "-m", "phoneemu", "lab", "show", str(pristine)], check=False,
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.count("\n") == 1 and f"{itl}: is a FIFO" in run.stderr


def test_a_served_config_that_is_a_fifo_is_named_when_the_files_are_read(pristine: Path) -> None:
    """Was left out in silence (``lab serve`` served no config to that phone)."""
    config = pristine / "tftp" / f"SEP{MACS[0]}.cnf.xml.sgn"
    config.unlink()
    os.mkfifo(config)
    lab = LabCluster.open(pristine)
    with pytest.raises(PhoneEmuError, match="is a FIFO") as info:
        lab.load_served()
    assert info.value.path == str(config)


def test_lab_init_of_a_folder_another_init_claimed_stops_and_removes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The other ``lab init`` made ``private/`` just after this one checked the folder was empty: this one
    stops with one line (was: went on, its keys written over the other's)."""
    root = tmp_path / "lab"
    real = LabCluster.check_new_root

    def checked_then_claimed(path: str | Path) -> None:
        real(path)
        (root / "private").mkdir(parents=True)
        (root / "private" / "itlrecovery.key").write_text("the other init's")

    monkeypatch.setattr(LabCluster, "check_new_root", staticmethod(checked_then_claimed))
    with pytest.raises(PhoneEmuError, match="another lab init") as info:
        LabCluster.init(root, key_spec="rsa1024", now=NOW, durable=False)
    assert info.value.path == str(root) and "\n" not in str(info.value)
    assert [p.name for p in root.iterdir()] == ["private"]
    assert (root / "private" / "itlrecovery.key").read_text() == "the other init's"


def test_two_lab_init_of_one_folder_at_once_make_one_lab(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Both pass the check of an empty folder, then go on at once: one makes the lab, the other stops
    (was: both went on, each writing keys over the other's: a lab whose keys and state were not one)."""
    root = tmp_path / "lab"
    root.mkdir()
    real = LabCluster.check_new_root
    both_checked = threading.Barrier(2, timeout=30)

    def checked(path: str | Path) -> None:
        real(path)
        both_checked.wait()

    monkeypatch.setattr(LabCluster, "check_new_root", staticmethod(checked))
    made: list[LabCluster] = []
    refused: list[BaseException] = []

    def init(seed: int) -> None:
        try:
            made.append(LabCluster.init(root, seed=seed, key_spec="rsa1024", now=NOW, durable=False))
        except BaseException as exc:  # what each thread met, asserted below
            refused.append(exc)

    threads = [threading.Thread(target=init, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert len(made) == 1 and len(refused) == 1, refused
    assert isinstance(refused[0], PhoneEmuError) and "another lab init" in str(refused[0])
    opened = LabCluster.open(root)
    assert opened.state.seed == made[0].state.seed
    for name in opened.identity_names():  # each key is its certificate's: one init's
        assert opened.identity(name).cert == made[0].identity(name).cert
