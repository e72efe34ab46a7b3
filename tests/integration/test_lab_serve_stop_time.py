"""How fast ``lab serve`` stops on SIGTERM / Ctrl-C, and what it may wait for (lab_serve module rules).

Measured (2 cores, 10 runs each): 40-100 ms idle, with three idle TCP connections on every TCP port
(plain or after the TLS handshake) and with a phone booting against it. What it waits for is a lab
write of its own under way when the signal comes (the port record or the ``--host`` re-issue rebuild
every served file, about 1 ms a phone): finished, never cut. A signal during one such write let the
next begin too (asyncio ran the signal's callback only once the loop had control): a 3,000-phone lab
with moved ports and another ``--host`` took 5-6 s to stop, now the 2-3 s of the write under way.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from phoneemu.commands import lab_serve
from phoneemu.lab.cluster import LabCluster
from tests.helpers import lab_template, port_free, reap, serve_ports

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
MAC = "0011223344D5"
#: far above the measured 40-100 ms (a loaded CI machine must not fail it), far below a hang
STOP_BOUND_S = 5.0

template = lab_template("labstop", seed=19, phones={MAC: {}})


def _serve_until_ready(root: Path) -> tuple[subprocess.Popen[str], dict[str, int]]:
    """``lab serve`` on free ports with both SIP registrars; its TCP ports once it says how to stop."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "phoneemu", "lab", "serve", str(root), "--tftp-port", "0", "--http-port", "0",
         "--tvs-port", "0", "--capf-port", "0", "--sip-port", "0", "--sips-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    ports, lines = serve_ports(proc, transports=("tcp", "tls"))
    assert set(ports) == {"http", "tvs", "capf", "sip", "sips"}, "".join(lines)
    return proc, ports


def test_sigterm_with_an_idle_client_on_every_tcp_port_stops_within_the_bound(cluster: LabCluster) -> None:
    """An idle client (connected, sending nothing) on HTTP, TVS, CAPF, SIP and SIPS: SIGTERM stops
    ``lab serve`` within :data:`STOP_BOUND_S` (measured 40-100 ms), exit 0, every port free. A guard
    against regressions: no wait this long was found (the servers cut open connections at close)."""
    proc, ports = _serve_until_ready(cluster.root)
    clients: list[socket.socket] = []
    try:
        clients = [socket.create_connection((HOST, port), timeout=5) for port in ports.values()]
        time.sleep(0.2)  # accepted: each handler waits for its first byte (or its handshake)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError("lab serve did not stop within 30 s of SIGTERM") from None
        took = time.monotonic() - sent
        out = proc.stdout.read() if proc.stdout is not None else ""
        err = proc.stderr.read() if proc.stderr is not None else ""
    finally:
        for client in clients:
            client.close()
        reap(proc)
    assert rc == 0 and "Traceback" not in out + err, (rc, out, err)
    assert out.strip().splitlines()[-1] == "stopping (SIGTERM)", out
    assert took < STOP_BOUND_S, f"lab serve took {took:.2f}s to stop with idle clients"
    assert all(port_free(HOST, port) for port in ports.values()), ports


def _signal_during(monkeypatch: pytest.MonkeyPatch, method: str) -> list[str]:
    """Make ``LabCluster.<method>`` a write (or read) during which SIGTERM comes, and spy on the lab
    writes ``lab serve`` begins; returns the list of those begun (by name)."""
    begun: list[str] = []

    def spied(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def run(self: LabCluster, *args: Any, **kwargs: Any) -> Any:
            begun.append(name)
            if name == method:
                os.kill(os.getpid(), signal.SIGTERM)  # its handler runs here, before the rest of the step
            return original(self, *args, **kwargs)
        return run

    for name in {"set_ports", "set_host", method}:
        monkeypatch.setattr(LabCluster, name, spied(name, getattr(LabCluster, name)))
    monkeypatch.setattr(lab_serve, "raise_open_file_limit", lambda: 0)  # not this test process's limit
    return begun


def _serve_in_process(root: Path, host: str) -> int:
    return asyncio.run(lab_serve.serve(root, host=host, tftp_port=0, http_port=0, tvs_port=0, capf_port=0))


def test_a_signal_during_the_port_record_begins_no_reissue(cluster: LabCluster,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """SIGTERM while ``lab serve --host`` records its ports (a write: every served file rebuilt when the
    ports moved): that write finishes, the ``--host`` re-issue (another rebuild of every file) does not
    begin, no ``listening`` banner, exit 0; the lab loads, naming the ports and the old host. Before,
    asyncio ran the signal's callback after the port record, the re-issue had begun by then and ran in
    full: a 3,000-phone lab took 5-6 s to stop instead of 2-3 s."""
    begun = _signal_during(monkeypatch, "set_ports")
    rc = _serve_in_process(cluster.root, "127.0.0.2")
    out = capsys.readouterr().out
    assert rc == 0 and begun == ["set_ports"], (rc, begun, out)
    assert "listening" not in out and out.strip().splitlines()[-1] == "stopping (SIGTERM)", out
    saved = LabCluster.open(cluster.root).state
    assert saved.host == HOST and set(saved.ports) >= {"tftp", "http", "tvs", "capf"}


def test_a_signal_while_the_lab_is_read_begins_no_write(cluster: LabCluster, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """SIGTERM while ``lab serve`` reads the lab whole before listening: it stops without recording its
    ports (no write begun for a server that is ending), exit 0, the lab as it was."""
    before = (cluster.root / "cluster.json").read_bytes()
    begun = _signal_during(monkeypatch, "read_whole")
    rc = _serve_in_process(cluster.root, HOST)
    out = capsys.readouterr().out
    assert rc == 0 and begun == ["read_whole"], (rc, begun, out)
    assert "listening" not in out and out.strip().splitlines()[-1] == "stopping (SIGTERM)", out
    assert (cluster.root / "cluster.json").read_bytes() == before
