"""The lab servers' log is one line per event whatever a client sends (phoneemu.lab.log_lines)."""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.log_lines import OneLineFormatter, loggable
from tests.helpers import lab_template, reap

HOST = "127.0.0.1"
MAC = "0011223344DD"
REPO = Path(__file__).resolve().parents[2]
FORGED = "11:30:00 tftp: 127.0.0.1:5555 RRQ SEP001122334455.cnf.xml.sgn: ok (1493 bytes)"

template = lab_template("loglines", seed=12, phones={MAC: {}})


def test_loggable_escapes_what_would_break_a_line_and_keeps_letters() -> None:
    assert loggable("ITLFile.tlv") == "ITLFile.tlv"
    assert loggable("Grüße 電話") == "Grüße 電話"
    assert loggable("x\n11:30:00 ok") == "x\\n11:30:00 ok"
    assert loggable("\x1b[2J\u2028\x00") == "\\x1b[2J\\u2028\\x00"
    assert loggable("a\nb" * 40, limit=10) == "a\\nba\\nba\\nba... (120 characters)"


def test_the_formatter_escapes_the_message_and_keeps_a_traceback() -> None:
    fmt = OneLineFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "tftp: RRQ %s: ok", (f"x\n{FORGED}",), None)
    assert fmt.format(record) == f"INFO tftp: RRQ x\\n{FORGED}: ok"
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    lines = fmt.format(record).splitlines()
    assert lines[0] == "ERROR failed" and lines[1].startswith("Traceback") and lines[-1] == "ValueError: boom"


def _rrq(name: bytes) -> bytes:
    return b"\x00\x01" + name + b"\x00octet\x00"


def test_lab_serve_log_has_no_line_a_client_wrote(cluster: LabCluster) -> None:
    """A TFTP file name and an HTTP path holding a newline and a forged log line: ``lab serve -v``
    writes each request on one line, the forged text escaped, and names the HTTP method."""
    cmd = [sys.executable, "-m", "phoneemu", "lab", "serve", str(cluster.root), "--tftp-port", "0",
           "--http-port", "0", "--tvs-port", "0", "--capf-port", "0", "-v"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        ports: dict[str, int] = {}
        assert proc.stdout is not None
        for _ in range(40):  # the banner: a few lines
            line = proc.stdout.readline()
            if not line or line.startswith("Ctrl-C"):
                break
            m = re.match(r"listening (\w+)\s+\w+ 127\.0\.0\.1:(\d+)", line)
            if m:
                ports[m.group(1)] = int(m.group(2))
        assert {"tftp", "http"} <= set(ports)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.settimeout(5)
            udp.sendto(_rrq(f"x\n{FORGED}".encode()), (HOST, ports["tftp"]))
            udp.recvfrom(65536)  # its answer (an error): the request was handled, so logged
        with socket.create_connection((HOST, ports["http"]), timeout=5) as tcp:
            tcp.sendall(b"GET /x%0a11:30:00%20http:%20forged HTTP/1.1\r\nConnection: close\r\n\r\n")
            tcp.recv(4096)
        with socket.create_connection((HOST, ports["http"]), timeout=5) as tcp:
            tcp.sendall(b"HEAD /ITLFile.tlv HTTP/1.1\r\nConnection: close\r\n\r\n")
            tcp.recv(4096)
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=20)
    finally:
        watchdog.cancel()
        reap(proc)
    lines = err.splitlines()
    assert not [line for line in lines if line.startswith(("11:30:00 tftp: 127.0.0.1:5555", "11:30:00 http"))]
    assert any(f"x\\n{FORGED}" in line for line in lines), err
    assert any("x\\n11:30:00 http: forged" in line for line in lines), err
    assert any(re.search(r"http: 127\.0\.0\.1:\d+ HEAD ITLFile\.tlv: 200", line) for line in lines), err
