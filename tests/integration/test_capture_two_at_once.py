"""Two ``boot --capture`` at once on one machine (two engineers, two CI jobs): each pcap holds its own phone
only (:mod:`phoneemu.scenario.capturing`, "External clusters").

Each boot serves its lab in its own process (as ``tests/integration/test_replay_capf_held.py`` does) and
its phone connects from ``127.0.0.1``, the loopback source of every program's connections. The other
process's SYN made the capture look at this process's TCP sockets; the look took the remote address of
every connected socket, those the lab's listeners had accepted too — ``127.0.0.1``, the phone's end —, so
every packet with ``127.0.0.1`` was kept: the other boot's phone with its own cluster on another address
(``replay --all`` of the one-phone capture saw 2 phones, ~1 run in 5). Now the connections a listener of
this process accepted are left out of the look: their remote is a client, not where a phone connects.

Live captures over loopback (root, Linux; skipped elsewhere), on addresses no other test uses.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from phoneemu.net.capture import read_pcap
from tests.helpers import skip_unless_live

ROOT = Path(__file__).resolve().parents[2]
FIRST, SECOND = "127.0.0.96", "127.0.0.97"  # each capture's cluster address (no other test uses them)
SERVER, CLIENT = "127.0.0.98", "127.0.0.102"  # the look's own test: a listener and its client's source

#: one boot with its lab in the same process: ``boot --capture``'s capture (``open_host_capture``) of its
#: cluster's host; each line on stdin is a step, answered on stdout once done
BOOT = r"""
import socket, sys, json
from pathlib import Path
from phoneemu.commands._capture import open_host_capture
from phoneemu.net.capture import note_connect

host, pcap, marker = sys.argv[1], Path(sys.argv[2]), sys.argv[3].encode()
capture = open_host_capture(pcap, pcap.with_suffix(".keys"), host)
listener = socket.create_server((host, 0))  # the lab's server, in this process
held = [listener]
print("ready", flush=True)
n = 0
for step in sys.stdin:
    if step.strip() == "close":
        break
    n += 1
    port = listener.getsockname()[1]
    note_connect(host, port)  # as a phone's connection point does
    phone = socket.create_connection((host, port), timeout=5)  # from 127.0.0.1
    served, _ = listener.accept()
    phone.sendall(marker + b"-%d" % n)
    assert served.recv(64) == marker + b"-%d" % n
    held += [phone, served]  # open until the capture is closed: every look sees them
    print("connected", flush=True)
capture.close()
for s in held:
    s.close()
print(json.dumps({"packets": capture.count}), flush=True)
"""


class Boot:
    """A child process running :data:`BOOT` on ``host``."""

    def __init__(self, host: str, pcap: Path, marker: str) -> None:
        self.host, self.pcap, self.marker = host, pcap, marker
        self.proc = subprocess.Popen([sys.executable, "-c", BOOT, host, str(pcap), marker], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def step(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def said(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def test_two_captures_at_once_each_hold_their_own_phone_only(tmp_path: Path) -> None:
    skip_unless_live(tmp_path)
    boots = [Boot(FIRST, tmp_path / "first.pcap", "FIRST"), Boot(SECOND, tmp_path / "second.pcap", "SECOND")]
    try:
        assert [b.said() for b in boots] == ["ready", "ready"]
        # in turn: each one's SYN while the other holds a connection its listener accepted
        for boot in (*boots, *boots):
            assert boot.step("connect") == "connected"
        counts = [json.loads(b.step("close"))["packets"] for b in boots]
        assert [b.proc.wait(30) for b in boots] == [0, 0]
    finally:
        for boot in boots:
            boot.stop()
    for boot, other, count in zip(boots, reversed(boots), counts, strict=True):
        packets = list(read_pcap(boot.pcap))
        assert count == len(packets) > 0
        foreign = [p for p in packets if boot.host not in (p.src, p.dst)]
        assert not foreign, f"{boot.pcap.name} holds {len(foreign)} packets of another boot: " + \
            ", ".join(sorted({f"{p.src}->{p.dst}" for p in foreign}))
        payload = b"".join(p.payload for p in packets)
        assert f"{boot.marker}-1".encode() in payload and f"{boot.marker}-2".encode() in payload
        assert other.marker.encode() not in payload


def test_the_look_leaves_out_the_connections_our_listeners_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_own_tcp_peers`` (the capture's look at this process's TCP sockets) learns where a connection of
    ours goes, not the client of one our listener accepted — through sock_diag and through /proc/net/tcp."""
    from phoneemu.scenario import capturing

    server, client = socket.inet_aton(SERVER), socket.inet_aton(CLIENT)
    with socket.create_server((SERVER, 0)) as listener, socket.socket() as phone:
        phone.bind((CLIENT, 0))
        phone.connect(listener.getsockname())
        with listener.accept()[0]:
            found = capturing._own_tcp_peers()
            assert server in found and client not in found, found
            monkeypatch.setattr(capturing, "_diag_sockets", lambda *_a: (_ for _ in ()).throw(OSError("no")))
            found = capturing._own_tcp_peers()  # /proc/net/tcp
            assert server in found and client not in found, found
