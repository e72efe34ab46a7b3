"""A lab operation killed just before one of its disk writes, with a real SIGKILL (no cleanup of any kind) in
a forked child: the machinery of the "old or new, never half" tests of the lab (its served files, its
identities). Count an operation's writes with :func:`count_writes`, then kill a fresh copy of the lab at
each of them with :func:`run_killed` (or at a sample of them, :func:`kill_points`).

The seeded keys an operation makes (``phoneemu.crypto.keys``: the same key for the same seed, memoised per
process) are made again in every forked child, which inherits the memo but not what a child adds to it: the
run to its end (kill point 0) names the seeds it used, and the parent makes those keys once, so the children
forked after it find them made (a seeded RSA-2048 key is about half a second of CPU, an RSA-1024 one 40 ms;
an operation is killed at up to 40 points). What the children run, and write, is the same: the key a seed
gives is the same key."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import stat
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from phoneemu.crypto import keys
from phoneemu.lab.cluster import LabCluster

_WRITES = os.O_WRONLY | os.O_RDWR | os.O_CREAT
#: what a lab operation does to the disk, counted as a write (besides an ``os.open`` for writing)
_WRITING_CALLS = ("replace", "rename", "unlink", "rmdir")

Operation = Callable[[LabCluster], object]


def _written(call: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The path a writing call writes: a rename's target, else its first argument."""
    target = (args[1] if len(args) > 1 else kwargs.get("dst")) if call in ("replace", "rename") else (
        args[0] if args else kwargs.get("path"))
    return os.fsdecode(target) if isinstance(target, (str, bytes, os.PathLike)) else repr(target)


def _child(prepare: Callable[[], Callable[[], object]], kill_at: int, counted: str) -> None:
    """Run what ``prepare`` returns (``prepare``'s own writes not counted: the lab opened), SIGKILLed just
    before its ``kill_at``-th write to the disk (a file opened for writing, renamed or removed); not killed,
    its writes go to the file ``counted``, each as ``call path`` (:func:`write_log`)."""
    run = prepare()
    seen: list[str] = []
    seeded: list[tuple[str, int]] = []
    if kill_at == 0:  # the run to its end: the seeds of the keys it makes, for the parent to make once
        made = keys._unsafe_seeded_rsa

        def recorded(seed: str, bits: int) -> Any:
            seeded.append((seed, bits))
            return made(seed, bits)

        keys._unsafe_seeded_rsa = recorded  # type: ignore[assignment]

    def hooked(name: str, real: Callable[..., Any], writes: Callable[..., bool]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            if writes(*args, **kwargs):
                seen.append(f"{name} {_written(name, args, kwargs)}")
                if len(seen) == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        return call

    os.open = hooked("open", os.open, lambda path, flags, *a, **k: bool(flags & _WRITES))
    for name in _WRITING_CALLS:
        setattr(os, name, hooked(name, getattr(os, name), lambda *a, **k: True))
    run()
    Path(counted).write_text(json.dumps(seen))
    Path(f"{counted}.seeded").write_text(json.dumps(seeded))


def run_killed(root: Path, operation: Operation, kill_at: int, counted: Path) -> int | None:
    """Run ``operation`` on the lab in ``root`` in a forked child killed before its ``kill_at``-th write (0:
    never; its writes counted into ``counted``); the child's exit code (None: it did not end within a
    minute, and was killed)."""
    def prepare() -> Callable[[], object]:
        lab = LabCluster.open(root, durable=False)
        return lambda: operation(lab)

    return run_call_killed(prepare, kill_at, counted)


def run_call_killed(prepare: Callable[[], Callable[[], object]], kill_at: int, counted: Path) -> int | None:
    """:func:`run_killed` for any call (``lab init``: no lab to open first): what ``prepare`` returns, run in
    the forked child (``prepare`` runs there too, its writes not counted)."""
    with warnings.catch_warnings():  # 3.12+: "multi-threaded process, fork() may deadlock" (not here)
        warnings.simplefilter("ignore", DeprecationWarning)
        proc = multiprocessing.get_context("fork").Process(target=_child,
                                                           args=(prepare, kill_at, str(counted)))
        proc.start()
    proc.join(60)
    if proc.is_alive():
        proc.kill()
        proc.join(10)
        return None
    seeded = Path(f"{counted}.seeded")
    if kill_at == 0 and proc.exitcode == 0:
        for seed, bits in json.loads(seeded.read_text()):  # made once here: the children after inherit them
            keys._unsafe_seeded_rsa(seed, bits)
        seeded.unlink()
    return proc.exitcode


def count_writes(root: Path, operation: Operation, counted: Path) -> int:
    """The writes ``operation`` makes on the lab in ``root`` run to its end (the lab changed)."""
    assert run_killed(root, operation, 0, counted) == 0
    return len(write_log(counted))


def write_log(counted: Path) -> list[str]:
    """The writes of the run to its end :func:`count_writes` made, in order: ``call path`` each (``open``,
    ``replace``, ``rename``, ``unlink``, ``rmdir``; the path written)."""
    log = json.loads(counted.read_text())
    assert isinstance(log, list)
    return [str(w) for w in log]


def kill_points(log: Sequence[str], at_most: int, *,
                around: Callable[[str], bool] = lambda write: False) -> list[int]:
    """At most about ``at_most`` of the write points (1-based) of ``log`` (:func:`write_log`), spread over
    the operation: the first and the last, evenly between, and the points just before and just after a write
    ``around`` picks (the commit point: the state's save); all of them when there are few."""
    count = len(log)
    if count <= at_most:
        return list(range(1, count + 1))
    points = {1 + round(i * (count - 1) / (at_most - 1)) for i in range(at_most)}
    for i, write in enumerate(log, 1):
        if around(write):
            points |= {p for p in (i, i + 1) if 1 <= p <= count}  # just before it, just after it
    return sorted(points)


def _listing(root: Path) -> dict[str, os.stat_result]:
    """Every entry under ``root`` (``root`` itself as ``""``), by path relative to it, with its ``lstat``."""
    found = {"": os.lstat(root)}
    for folder, folders, files in os.walk(root):
        for name in (*folders, *files):
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root)] = os.lstat(path)
    return found


def _same_file(source: Path, source_stat: os.stat_result, copy: Path,
               copy_stat: os.stat_result | None) -> bool:
    """Whether ``copy`` is what ``shutil.copy2`` makes of the regular file ``source``: a regular file of its
    own (one link), with its mode, modification time and bytes."""
    return (copy_stat is not None and stat.S_ISREG(copy_stat.st_mode) and copy_stat.st_nlink == 1
            and (copy_stat.st_mode, copy_stat.st_mtime_ns, copy_stat.st_size)
            == (source_stat.st_mode, source_stat.st_mtime_ns, source_stat.st_size)
            and copy.read_bytes() == source.read_bytes())


def restore_copy(source: Path, copy: Path) -> None:
    """``copy`` made again what ``shutil.copytree(source, copy)`` makes (the names, kinds, modes, bytes and
    modification times; each file one of its own, one link): what is not ``source``'s removed, what differs
    copied again, the rest kept: a lab folder is ~50 files, of which a killed operation changes some, and
    removing and copying all of them again for each kill was most of the system CPU of the kill tests (~5 ms
    a kill now, was 15-30 ms, and no wait for the removals of a slow disk). ``source`` holds folders and
    regular files only (a lab)."""
    if not copy.exists():
        shutil.copytree(source, copy)
        return
    want, have = _listing(source), _listing(copy)
    assert all(stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode) for st in want.values()), source
    for name in sorted(have, reverse=True):  # a folder's entries before it ("a/b" sorts after "a")
        if name and (name not in want or stat.S_IFMT(want[name].st_mode) != stat.S_IFMT(have[name].st_mode)):
            if stat.S_ISDIR(have.pop(name).st_mode):
                shutil.rmtree(copy / name)
            else:
                (copy / name).unlink()
    for name in sorted(want):  # a folder before its entries
        if stat.S_ISDIR(want[name].st_mode):
            if name not in have:
                (copy / name).mkdir()
        elif not _same_file(source / name, want[name], copy / name, have.get(name)):
            (copy / name).unlink(missing_ok=True)
            shutil.copy2(source / name, copy / name)
    for name in sorted(want, reverse=True):  # folders last, as copytree: their modes and times
        if stat.S_ISDIR(want[name].st_mode):
            shutil.copystat(source / name, copy / name)


def killed_copy(pristine: Path, work: Path, operation: Operation, kill_at: int, counted: Path, *,
                also: Sequence[tuple[Path, Path]] = ()) -> None:
    """``work`` made a copy of the lab ``pristine`` again (:func:`restore_copy`; and each ``(pristine,
    work)`` of ``also``: another lab the operation writes, an exchange's), then ``operation`` run on it killed
    before its ``kill_at``-th write."""
    for source, copy in ((pristine, work), *also):
        restore_copy(source, copy)
    assert run_killed(work, operation, kill_at, counted) == -signal.SIGKILL, kill_at


def regenerate_on_a_full_disk(lab: Any, monkeypatch: pytest.MonkeyPatch, *, now: int) -> None:
    """``lab.regenerate("callmanager")`` whose state save fails as on a full disk (ENOSPC): the OSError
    checked, the save restored."""
    from phoneemu.lab import cluster as cluster_module

    def full(root: Path, state: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cluster_module, "save_state", full)
    with pytest.raises(OSError, match="No space"):
        lab.regenerate("callmanager", now=now)
    monkeypatch.undo()


@dataclass(frozen=True)
class KilledLab:
    """One lab after its operation was killed at write ``kill_at``, opened again (:func:`killed_labs`)."""

    kill_at: int
    work: Path
    opened: LabCluster
    is_new: bool  #: its state is the one the operation saves (else the one before it)
    #: with ``serving``: the lab opened on the copy before the kill, its served files read, as ``lab serve``
    #: holds it, then reloaded (``reload_if_changed``) after the kill
    server: LabCluster | None = None


def killed_labs(pristine: Path, tmp_path: Path, operation: Operation,
                done: Path | None = None, *, serving: bool = False) -> Iterator[KilledLab]:
    """``operation`` run to its end on a copy (``done``, default ``tmp_path/done``), then killed at each of
    its writes on another copy of ``pristine``, each opened again: every one whose state is the old or the
    new whole (asserted), with no key staged world-readable while killed and none left once opened; at
    least one of each (asserted at the end). The caller checks what its operation changes (``serving``: the
    served files a lab read before the kill serves after it, :attr:`KilledLab.server`)."""
    from phoneemu.lab.pki import pending_identities

    old_state = (pristine / "cluster.json").read_bytes()
    done = done if done is not None else tmp_path / "done"
    shutil.copytree(pristine, done)
    counted = tmp_path / "counted"
    writes = count_writes(done, operation, counted)
    new_state = (done / "cluster.json").read_bytes()
    assert new_state != old_state and 5 < writes < 400, writes
    work = tmp_path / "work"
    outcomes = set()
    for kill_at in range(1, writes + 1):
        server = None
        if serving:
            restore_copy(pristine, work)
            server = LabCluster.open(work, durable=False)  # as lab serve: all read before the operation
            server.load_served()
            assert run_killed(work, operation, kill_at, counted) == -signal.SIGKILL, kill_at
        else:
            killed_copy(pristine, work, operation, kill_at, counted)
        for staged in pending_identities(work).rglob("*.key"):  # key material is never world-readable
            assert os.stat(staged).st_mode & 0o777 == 0o600, kill_at
        if server is not None:
            server.reload_if_changed()  # lab serve's reload, before the lab is opened again
        opened = LabCluster.open(work, durable=False)
        state = (work / "cluster.json").read_bytes()
        assert state in (old_state, new_state), kill_at
        outcomes.add(state == new_state)
        yield KilledLab(kill_at, work, opened, state == new_state, server)
        assert not pending_identities(work).exists(), kill_at
    assert outcomes == {True, False}
