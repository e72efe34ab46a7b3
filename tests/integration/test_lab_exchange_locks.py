"""``lab exchange DIR OTHER_DIR`` holds both labs' locks (``phoneemu.lab.lock.hold_lab_locks``).

Was: only DIR's lock, so OTHER_DIR was written while another process held its lock — an operation on it,
or its ``lab serve`` recording ports or a CAPF outcome — and one of the two writes was lost (each saves
the whole state it loaded). Both locks are taken in the order of the folders (device and inode, whatever
paths name them), so two opposite exchanges at once wait for the same first lock and both finish, a bind
mount naming one of the labs included. Every wait is bounded.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.lock import _lock_order, try_lab_lock
from tests.helpers import LinePump, reap, still_running_after, waits_for_flock

REPO = Path(__file__).resolve().parents[2]
NOW = 1_780_000_000


def _labs(tmp_path: Path) -> tuple[Path, Path]:
    """Two small labs (each named as its folder), in the order their locks are taken in."""
    roots = tmp_path / "a", tmp_path / "b"
    for seed, root in enumerate(roots, start=41):
        LabCluster.init(root, seed=seed, name=root.name, key_spec="rsa1024", now=NOW)
    first, second = _lock_order(roots)
    return first, second


def _hold(root: Path) -> int:
    """Hold ``root``'s lab lock as another process's operation (or ``lab serve``'s write) would."""
    fd = os.open(root / ".lab.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _exchange(here: Path, there: Path) -> tuple[subprocess.Popen[str], LinePump]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "phoneemu", "lab", "exchange", str(here), str(there)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    return proc, LinePump(proc.stderr)


def _trusts(root: Path, peer: Path) -> bool:
    """Whether ``root``'s TVS vouches for certificates imported from the lab ``peer`` (named as its
    folder)."""
    return any(t.source == peer.name for t in LabCluster.open(root).state.tvs_trust)


def test_an_exchange_waits_for_the_other_labs_lock_and_keeps_both_writes(tmp_path: Path) -> None:
    """OTHER_DIR's lock held by an operation writing it: the exchange waits for it (said on stderr, naming
    that lock file), then imports into the state that operation saved — both changes kept. Before, it
    wrote OTHER_DIR at once and the operation's save, of the state it loaded first, undid the import."""
    a, b = _labs(tmp_path)
    operation = LabCluster.open(b)  # loaded under b's lock, as a lab operation does
    fd = _hold(b)
    proc, err = _exchange(a, b)
    try:
        waits = still_running_after(proc, 5, lambda: waits_for_flock(proc.pid, b / ".lab.lock"))
        assert waits, f"the exchange did not wait for {b}/.lab.lock: {err.text()}"
        assert err.wait_for(f"waiting for the lab lock {b / '.lab.lock'}", 30), err.text()
        operation.set_ports(tftp=6969)  # the holder's write, then its lock released
        os.close(fd)
        fd = -1
        assert proc.wait(timeout=60) == 0, err.text()
    finally:
        if fd >= 0:
            os.close(fd)
        reap(proc)
    assert LabCluster.open(b).state.ports.get("tftp") == 6969
    assert _trusts(b, a) and _trusts(a, b)


def test_two_opposite_exchanges_at_once_both_finish(tmp_path: Path) -> None:
    """``exchange b a`` and ``exchange a b`` while ``a``'s lock is held: both wait for ``a``'s lock first
    (lock order), ``exchange b a`` holding none meanwhile — taken in the order typed, it would hold ``b``'s
    while waiting for ``a``'s, the lock ``exchange a b`` holds while waiting for ``b``'s. Released, both
    finish and each lab vouches for the other. Before, ``exchange b a`` did not wait for ``a``'s lock."""
    a, b = _labs(tmp_path)
    fd = _hold(a)
    procs: list[subprocess.Popen[str]] = []
    try:
        back, back_err = _exchange(b, a)
        procs.append(back)
        assert still_running_after(back, 5, lambda: waits_for_flock(back.pid, a / ".lab.lock")), \
            f"exchange b a did not wait for a's lock: {back_err.text()}"
        with try_lab_lock(b, exclusive=True):  # b's lock is free while it waits for a's
            pass
        forth, forth_err = _exchange(a, b)
        procs.append(forth)
        assert still_running_after(forth, 5, lambda: waits_for_flock(forth.pid, a / ".lab.lock"))
        os.close(fd)
        fd = -1
        assert back.wait(timeout=60) == 0, back_err.text()
        assert forth.wait(timeout=60) == 0, forth_err.text()
    finally:
        if fd >= 0:
            os.close(fd)
        for proc in procs:
            reap(proc)
    assert _trusts(a, b) and _trusts(b, a)


def test_a_lab_named_twice_is_locked_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``exchange a a/../a``: one folder, its lock taken once (a second ``flock`` of the same file would
    wait for the first for ever): refused at once, as before."""
    from phoneemu.cli import main

    a, _b = _labs(tmp_path)
    assert main(["lab", "exchange", str(a), str(a / ".." / a.name)]) != 0
    assert "cannot exchange certificates with the same cluster" in capsys.readouterr().err


def test_a_lab_named_by_a_bind_mount_too_is_locked_once_and_refused(tmp_path: Path) -> None:
    """``exchange a ALIAS``, ALIAS a bind mount of ``a`` (resolved paths differ, the folder is one): its lock
    taken once and the exchange refused as with itself. Was: the second ``flock`` of ``a``'s lock file
    waited for the first for ever (and, locked once, the lab exchanged with itself). Bounded: a child with
    a time limit."""
    a, _b = _labs(tmp_path)
    alias = tmp_path / "alias"
    with _bind_mount(a, alias):
        assert alias.resolve() != a.resolve() and os.path.samefile(alias, a)
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        done = subprocess.run([sys.executable, "-m", "phoneemu", "lab", "exchange", str(a), str(alias)],
                              env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "cannot exchange certificates with the same cluster" in done.stderr, done.stderr
    assert not _trusts(a, a)


def test_a_bind_mount_does_not_change_the_order_the_locks_are_taken_in(tmp_path: Path) -> None:
    """``exchange ALIAS a`` (ALIAS a bind mount of ``b``, its path sorting before ``a``'s) while ``a``'s lock
    is held: it waits for ``a``'s lock first, holding ``b``'s lock not, as ``exchange b a`` does. Was: the
    locks taken by resolved path, ALIAS's (``b``'s) first, so it held ``b``'s while waiting for ``a``'s —
    against ``exchange a b``, holding ``a``'s and waiting for ``b``'s, a wait for ever."""
    a, b = _labs(tmp_path)
    alias = tmp_path / "0-alias"  # sorts before both folders' paths
    with _bind_mount(b, alias):
        assert [os.stat(p).st_ino for p in _lock_order([alias, a])] == [os.stat(p).st_ino for p in (a, b)]
        fd = _hold(a)
        try:
            proc, err = _exchange(alias, a)
        except BaseException:
            os.close(fd)
            raise
        try:
            try:
                assert still_running_after(proc, 5, lambda: waits_for_flock(proc.pid, a / ".lab.lock")), \
                    f"exchange ALIAS a did not wait for a's lock: {err.text()}"
                with try_lab_lock(b, exclusive=True):  # b's lock is free while it waits for a's
                    pass
            finally:
                os.close(fd)  # a's lock released: the exchange goes on
            assert proc.wait(timeout=60) == 0, err.text()
        finally:
            reap(proc)
    assert _trusts(a, b) and _trusts(b, a)


@contextlib.contextmanager
def _bind_mount(folder: Path, alias: Path) -> Iterator[None]:
    """``folder`` also seen at ``alias`` (made here) for the block; the test skipped where no bind mount can
    be made (it needs root in a mount namespace)."""
    alias.mkdir()
    if subprocess.run(["mount", "--bind", str(folder), str(alias)], capture_output=True,
                      check=False).returncode:
        pytest.skip("no bind mount here (needs root in a mount namespace)")
    try:
        yield
    finally:
        subprocess.run(["umount", str(alias)], capture_output=True, check=False)
