"""Admin operations made while ``lab serve`` serves a storm (another process changes the lab meanwhile).

Each interleaving is forced in-process: a second :class:`LabCluster` on the same folder stands for the
``phoneemu lab`` operation's process, and ``lab serve``'s own write (a CAPF outcome, its ports) is run
through :meth:`LabServers.update_cluster` at the chosen moment — no timing involved.
"""
from __future__ import annotations

from phoneemu.lab.cluster import LabCluster
from tests.helpers import lab_template

MAC = "00AA00000001"
template = lab_template("adminstorm", seed=23, phones={MAC: {}})


def test_a_change_lab_serve_takes_in_before_its_own_write_is_still_said_to_be_picked_up(
        cluster: LabCluster) -> None:
    """An operation saves a change (``itl-reset``: the ITL is signed by the CallManager now), then —
    before ``lab serve`` noticed it — serve records a write of its own (a CAPF outcome of a phone of the
    storm), which re-reads the saved state first. Serve serves the operation's files from then on and
    must say so (``picked up a change to the lab: ...``) as for any other change. Before, the re-read
    inside the write took the change in silently: the next poll found the state as it had just saved it
    and the operator never saw the operation picked up."""
    from phoneemu.lab.servers import LabServers
    from tests.helpers import run

    notices: list[str] = []

    async def main() -> tuple[int, bytes | None]:
        async with LabServers(cluster, host="127.0.0.1", on_notice=notices.append) as servers:
            notices.clear()  # the start's own notices (ports)
            operation = LabCluster.open(cluster.root)  # the phoneemu lab operation's process
            operation.itl_reset("localkey")
            generation = operation.generation
            # serve's own write, before any request or poll noticed the operation's save
            await servers.update_cluster(lambda: servers.cluster.set_tvs_ttl(4321))
            assert servers.cluster.get("ITLFile.tlv") == operation.get("ITLFile.tlv")  # served already
            servers._reload()  # the next request's (or poll's) check
            return generation, servers.cluster.get("ITLFile.tlv")

    generation, _itl = run(main(), limit=30.0)
    picked = [n for n in notices if n.startswith("picked up a change to the lab")]
    assert len(picked) == 1, notices
    assert "ITL signed by" in picked[0] and f"generation {generation + 1}" in picked[0]


def test_a_change_reported_once_is_not_reported_again(cluster: LabCluster) -> None:
    """The report of a change taken in by serve's own write is made once (not at every request)."""
    operation = LabCluster.open(cluster.root)
    operation.set_tvs_ttl(999)
    cluster.update_locked(lambda: cluster.set_service("tvs", False))
    assert cluster.state.tvs_ttl == 999
    assert cluster.reload_if_changed() is True
    assert cluster.reload_if_changed() is False
    cluster.update_locked(lambda: cluster.set_service("tvs", True))  # nothing saved by another process
    assert cluster.reload_if_changed() is False


def test_an_operation_waiting_for_lab_serve_s_write_says_so_and_then_runs(cluster: LabCluster) -> None:
    """While ``lab serve`` holds the lab lock to write (its ports at start: every served file rebuilt,
    about a minute for 40,000 phones; a CAPF outcome), an operation waits for it — it never fails because
    the server is busy — and says on stderr what it waits for (the lock, and the ``lab serve`` holding
    ``.serve.lock``: its pid and ports), then runs. Before, it waited without a word."""
    import fcntl
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.helpers import reap, still_running_after, waits_for_flock

    repo = Path(__file__).resolve().parents[2]
    root = cluster.root
    (root / ".serve.lock").write_text("pid 4242, tftp 127.0.0.1:16969")  # as a running lab serve notes
    fd = os.open(root / ".lab.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # lab serve writing the lab
    proc = subprocess.Popen([sys.executable, "-m", "phoneemu", "lab", "tvs-ttl", str(root), "777"],
                            env={**os.environ, "PYTHONPATH": str(repo)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        waits = still_running_after(proc, 5, lambda: waits_for_flock(proc.pid, root / ".lab.lock"))
        assert waits, "the operation did not wait for the lab lock"
        os.close(fd)
        fd = -1
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        if fd >= 0:
            os.close(fd)
        reap(proc)
    assert "waiting for the lab lock" in err and ".lab.lock" in err and "pid 4242" in err, err
    assert "generation" in out and LabCluster.open(root).state.tvs_ttl == 777


def _free_ports() -> tuple[int, int, int, int]:
    """A free UDP port (TFTP) and three free TCP ports (HTTP, TVS, CAPF) on loopback."""
    import socket

    found = []
    socks = []
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM, socket.SOCK_STREAM, socket.SOCK_STREAM):
        s = socket.socket(socket.AF_INET, kind)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        found.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return found[0], found[1], found[2], found[3]


def _http_itl(port: int) -> bytes | None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ITLFile.tlv", timeout=1) as resp:
            body: bytes = resp.read()
            return body
    except (urllib.error.URLError, OSError):
        return None


def test_lab_serve_started_during_an_operation_serves_nothing_of_the_half_written_lab(
        cluster: LabCluster) -> None:
    """``lab serve`` (re)started while an operation is writing the lab — its new ITL written, the state
    not saved yet — waits for the operation (saying so) and then serves the lab as saved: never the new
    files beside the old state. Before, it read the lab without the lock, listened, and served that mix
    while its port record waited for the lock."""
    import fcntl
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    from phoneemu.files import atomic_write
    from tests.helpers import LinePump, reap

    repo = Path(__file__).resolve().parents[2]
    root = cluster.root
    itl_before = (root / "tftp" / "ITLFile.tlv").read_bytes()
    state_before = (root / "cluster.json").read_bytes()
    fd = os.open(root / ".lab.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # the operation's process
    LabCluster.open(root).itl_reset("localkey")  # its files ...
    state_after = (root / "cluster.json").read_bytes()
    itl_after = (root / "tftp" / "ITLFile.tlv").read_bytes()
    assert itl_after != itl_before
    atomic_write(root / "cluster.json", state_before, mode=0o600)  # ... its state not saved yet
    tftp, http, tvs, capf = _free_ports()
    proc = subprocess.Popen([sys.executable, "-m", "phoneemu", "lab", "serve", str(root), "--tftp-port",
                             str(tftp), "--http-port", str(http), "--tvs-port", str(tvs), "--capf-port",
                             str(capf)], env={**os.environ, "PYTHONPATH": str(repo)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    err_lines = LinePump(proc.stderr)
    waiting = "waiting for it to record this server's change (the lab read whole first)"
    try:
        served_mid_operation = None
        end = time.monotonic() + 8
        while proc.poll() is None and time.monotonic() < end:  # waiting for the lock, or serving already
            if err_lines.wait_for(waiting, 0.05):  # logged after LOCK_WAIT_S
                break
            served_mid_operation = _http_itl(http)
            if served_mid_operation is not None:
                break
        assert proc.poll() is None, err_lines.text()
        assert served_mid_operation in (None, itl_before), "served the operation's half-written lab"
        atomic_write(root / "cluster.json", state_after, mode=0o600)  # the operation ends
        os.close(fd)
        fd = -1
        served = None
        end = time.monotonic() + 20
        while served is None and proc.poll() is None and time.monotonic() < end:
            served = _http_itl(http)
            time.sleep(0.05)
        assert served == (root / "tftp" / "ITLFile.tlv").read_bytes() == itl_after
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        err = err_lines.text()
    finally:
        if fd >= 0:
            os.close(fd)
        reap(proc)
    assert proc.returncode == 0, err
    assert waiting in err, err
