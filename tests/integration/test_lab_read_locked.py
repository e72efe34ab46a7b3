"""``lab show``, ``boot --lab`` and ``fleet boot --lab`` read the lab under the lab lock, shared
(:mod:`phoneemu.lab.lock`): a lab operation under way is waited for — said on stderr as the lab commands
say it — so the lab is never read half-changed (an operation's new certificates beside the old ITL), and
the lock is released before any phone boots.

Each test holds the lock as an operation would (exclusive ``flock`` on ``DIR/.lab.lock``), waits (bounded)
until the reader says it waits, changes the lab under that lock, releases it, and checks the reader read
the lab as the operation left it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.lock import LOCK_FILE, hold_lab_lock, try_lab_lock
from tests.helpers import LinePump, lab_template, reap, wait_reading_stdout

REPO = Path(__file__).resolve().parents[2]
MAC = "0A00000000D1"
NOW = 1_780_000_000
template = lab_template("labreadlock", seed=17, phones={MAC: {}})


def _hold(root: Path) -> int:
    """Hold the lab lock as a ``phoneemu lab`` operation writing the lab does (exclusive)."""
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _start(*args: str) -> tuple[subprocess.Popen[str], LinePump]:
    proc = subprocess.Popen([sys.executable, "-m", "phoneemu", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stderr is not None
    return proc, LinePump(proc.stderr)


def test_lab_show_waits_for_an_operation_and_shows_the_lab_it_left(cluster: LabCluster) -> None:
    """An operation regenerating the CallManager certificate holds the lock: ``lab show`` says it waits,
    and then shows the new certificate with the ITL that lists it (before: it read at once, whatever the
    operation had written so far)."""
    root = cluster.root
    before = cluster.summary()
    fd = _hold(root)
    proc, err = _start("lab", "show", str(root), "--json")
    try:
        try:
            assert err.wait_for("waiting for the lab lock", 60), err.text(0)
            operation = LabCluster.open(root)  # the operation, writing under "its" lock
            operation.regenerate("callmanager", now=NOW)
            operation.set_tvs_ttl(4321, now=NOW)
        finally:
            os.close(fd)
        out = wait_reading_stdout(proc, 60)
        assert proc.returncode == 0, err.text()
    finally:
        reap(proc)
    after = LabCluster.open(root).summary()
    assert after["itl_sha1"] != before["itl_sha1"]
    doc = json.loads(out)
    assert doc["tvs_ttl"] == 4321
    assert doc["certificates"]["callmanager"]["sha1"] == after["certificates"]["callmanager"]["sha1"]
    assert doc["itl_sha1"] == after["itl_sha1"]  # the ITL of that certificate, not the old one
    said = err.text()
    assert f"waiting for the lab lock {root / LOCK_FILE}: held by another phoneemu lab command" in said, said
    assert "the lab is read once it is released" in said


def test_readers_do_not_wait_for_each_other(cluster: LabCluster) -> None:
    """Another reader holding the lock shared (a ``lab show`` or a boot reading the lab) is not waited for."""
    with hold_lab_lock(cluster.root, shared=True):
        proc, err = _start("lab", "show", str(cluster.root))
        try:
            out = wait_reading_stdout(proc, 60)
        finally:
            reap(proc)
    assert proc.returncode == 0 and "ITL:" in out, err.text()
    assert "waiting" not in err.text()


def _fake_tftp() -> socket.socket:
    """A UDP socket where the phones send their first TFTP request (never answered)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(60)
    return sock


def _lock_is_free(root: Path) -> bool:
    from phoneemu.lab.lock import LabBusyError

    try:
        with try_lab_lock(root, exclusive=True):
            return True
    except LabBusyError:
        return False


def _reads_after_the_operation(cluster: LabCluster, command: list[str], prefix: str, typed: str) -> None:
    """``command`` (``boot --lab`` or ``fleet boot --lab``) waits for the lock, then types the CAPF
    authentication string the operation set meanwhile (it read the lab as the operation left it), and
    has released the lock when its phone sends its first TFTP request."""
    root = cluster.root
    tftp = _fake_tftp()
    fd = _hold(root)
    proc, err = _start(*command, "--lab", str(root), "--tftp", f"127.0.0.1:{tftp.getsockname()[1]}",
                       "--no-http", "--timeout", "0.3")
    try:
        try:
            assert err.wait_for(f"{prefix}: waiting for the lab lock", 60), err.text(0)
            LabCluster.open(root).set_capf([MAC], "install", auth_mode="string", auth_string="424242",
                                           now=NOW)
        finally:
            os.close(fd)
        data, _ = tftp.recvfrom(2048)  # the phone's first request: the boot has begun
        assert data[:2] == b"\x00\x01", data  # a read request
        assert _lock_is_free(root), "the lab lock is still held while the phone boots"
        tftp.close()  # nothing answers: the boot ends
        wait_reading_stdout(proc, 120)
    finally:
        tftp.close()
        reap(proc)
    said = err.text()
    assert typed in said, said
    assert f"{prefix}: waiting for the lab lock {root / LOCK_FILE}" in said


def test_boot_lab_waits_for_an_operation_and_releases_the_lock_before_booting(cluster: LabCluster) -> None:
    _reads_after_the_operation(cluster, ["boot", "--mac", MAC, "--now", str(NOW)], "phoneemu boot",
                               f"phoneemu boot: the CAPF authentication string {cluster.root} set for the "
                               "install is typed in")


def test_fleet_boot_lab_waits_for_an_operation_and_releases_the_lock_before_booting(
        cluster: LabCluster) -> None:
    _reads_after_the_operation(cluster, ["fleet", "boot", "--count", "1", "--mac-start", MAC, "--retries",
                                         "0", "--shards", "1", "-q"], "phoneemu fleet boot",
                               "and the CAPF authentication string of 1 of them typed in")
