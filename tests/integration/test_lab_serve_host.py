"""``lab serve --host``: configs and ITL records name the address the lab really listens on.

A ``lab serve`` that serves runs as a process (stopped by its signal); one refused before it serves runs in
this process (``main([...])``: a child interpreter cost ~0.5 s of CPU, and nothing of the process is
checked but its exit status and stderr)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.errors import EncodeError
from phoneemu.lab.cluster import LabCluster
from tests.helpers import lab_template, reap

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
MAC = "0011223344CC"

template = lab_template("labhost", seed=None, phones={MAC: {}})  # fresh keys: faster, no test compares them


def _lines_until(proc: subprocess.Popen[str], prefix: str) -> str:
    """What ``lab serve`` printed up to its line starting with ``prefix`` (at most 20 s; less at EOF)."""
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 20
    while not any(line.startswith(prefix) for line in lines) and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
    return "".join(lines)


def _serve_args(root: Path, *extra: str) -> list[str]:
    """``phoneemu``'s arguments of a ``lab serve`` of ``root`` on any free ports."""
    return ["lab", "serve", "--dir", str(root), "--tftp-port", "0", "--http-port", "0", "--tvs-port", "0",
            "--capf-port", "0", *extra]


def _serve_cmd(root: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "phoneemu", *_serve_args(root, *extra)]


def test_lab_serve_on_another_host_reissues_configs_for_it(cluster: LabCluster) -> None:
    """``lab serve --host H`` with H other than the ``lab init --host`` address: the configs' TVS and
    CAPF servers and the ITL records name H (a phone told to ask TVS at the old address stays locked)."""
    assert cluster.state.host == HOST
    cluster.add_node()  # its TVS too listens there, and is said so
    proc = subprocess.Popen(_serve_cmd(cluster.root, "--host", "127.0.0.2"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
                            cwd=REPO)
    try:
        text = _lines_until(proc, "listening capf")
        err = proc.stderr.read() if proc.stderr is not None and proc.poll() is not None else ""
        assert f"named {HOST}; re-issued for 127.0.0.2" in text, text + err
        assert "listening tvs  tls 127.0.0.2:" in text and "listening tvs-2 tls 127.0.0.2:" in text
        reopened = LabCluster.open(cluster.root)
        assert reopened.state.host == "127.0.0.2"
        config = (cluster.root / "tftp" / f"SEP{MAC}.cnf.xml").read_text()
        assert "127.0.0.2" in config and HOST not in config
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        reap(proc)


def test_set_host_refuses_wildcards_and_is_idempotent(cluster: LabCluster) -> None:
    generation = cluster.generation
    assert not cluster.set_host(HOST) and cluster.generation == generation
    with pytest.raises(EncodeError, match="cannot be written into configs"):
        cluster.set_host("0.0.0.0")
    assert cluster.set_host("lab.example.net") and cluster.state.host == "lab.example.net"


@pytest.mark.parametrize("host", ["", "  ", "::", "0.0.0.0", "ünï.example", "a/b", "..", "127.0.0.1:80",
                                  "[::1]", "fe80::1%lo", "a" * 300, "-bad-.example", "a b"])
def test_set_host_refuses_what_no_config_can_name(cluster: LabCluster, host: str) -> None:
    generation = cluster.generation
    with pytest.raises(EncodeError, match="cannot be written into configs"):
        cluster.set_host(host)
    assert cluster.state.host == HOST and cluster.generation == generation


@pytest.mark.parametrize("host", ["::1", "2001:db8::10", "192.0.2.10", "cucm-1.lab.example.net."])
def test_set_host_takes_addresses_and_dns_names(cluster: LabCluster, host: str) -> None:
    assert cluster.set_host(host) and cluster.state.host == host


def test_lab_init_refuses_a_host_configs_cannot_name(tmp_path: Path) -> None:
    with pytest.raises(EncodeError, match="cannot be written into configs"):
        LabCluster.init(tmp_path / "lab", seed=1, key_spec="rsa1024", host="0.0.0.0")
    assert not (tmp_path / "lab").exists()


@pytest.mark.parametrize(("host", "words"), [
    ("192.0.2.10", "is 192.0.2.10 an address of this machine"),   # TEST-NET-1: not on this machine
    ("127.0.0.1:80", "cannot be written into configs"),
])
def test_lab_serve_that_cannot_listen_leaves_the_configs_alone(cluster: LabCluster, host: str, words: str,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """An address the servers cannot listen on (or no address at all) is refused before the configs
    and ITL records are re-issued for it: they keep naming the address phones can reach."""
    generation = cluster.generation
    assert main(_serve_args(cluster.root, "--host", host)) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err, err
    reopened = LabCluster.open(cluster.root)
    assert reopened.state.host == HOST and reopened.generation == generation
    assert host not in (cluster.root / "tftp" / f"SEP{MAC}.cnf.xml").read_text()


def test_a_second_lab_serve_of_one_lab_is_refused_before_it_changes_anything(
        cluster: LabCluster, capsys: pytest.CaptureFixture[str]) -> None:
    """One ``lab serve`` per lab folder (``DIR/.serve.lock``): a second one, on other ports, would have
    recorded them and the first — which follows every change — would have served configs naming a TVS
    nobody listens on. It is one line naming the first (pid, ports), exit 2, the lab unchanged; once the
    first stops, the folder can be served again."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen(_serve_cmd(cluster.root), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env, cwd=REPO)
    try:
        _lines_until(first, "listening capf")
        saved = (cluster.root / "cluster.json").read_bytes()
        capsys.readouterr()
        rc = main(_serve_args(cluster.root))  # the second, in this process: refused before it serves
        err = capsys.readouterr().err
        assert rc == 2, err
        assert f"already served by another 'phoneemu lab serve' (pid {first.pid}, tftp {HOST}:" in err
        assert "one lab serve per lab folder" in err and err.count("\n") == 1
        assert (cluster.root / "cluster.json").read_bytes() == saved  # nothing recorded, nothing rebuilt
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=10) == 0
    finally:
        reap(first)
    again = subprocess.Popen(_serve_cmd(cluster.root), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env, cwd=REPO)
    try:
        assert again.stdout is not None
        lines = [again.stdout.readline() for _ in range(3)]  # (a port taken meanwhile: a line before)
        assert any(line.startswith("lab cluster ") for line in lines), lines  # the lock went with the first
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=10) == 0
    finally:
        reap(again)


def test_lab_serve_runs_the_sip_registrar_when_asked(cluster: LabCluster) -> None:
    """``lab serve --sip-port N --sips-port N``: the registrar over TCP and TLS (the CallManager
    certificate), each with its ``listening`` line; without them, none (lab serve as before)."""
    proc = subprocess.Popen(_serve_cmd(cluster.root, "--sip-port", "0", "--sips-port", "0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO)
    try:
        text = _lines_until(proc, "listening sips")
        assert f"listening sip  tcp {HOST}:" in text
        assert "SIP registrar (digest realm ccmsipline; calls to moh, annunciator, ivr)" in text
        assert f"listening sips tls {HOST}:" in text and "cert CN=" in text
        port = int(text.split("listening sip  tcp ")[1].split()[0].rsplit(":", 1)[1])
        with socket.create_connection((HOST, port), timeout=5) as s:
            s.sendall(b"REGISTER sip:lab SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n"
                      b"From: <sip:SEP" + MAC.encode() + b"@lab>\r\n"
                      b"To: <sip:SEP" + MAC.encode() + b"@lab>\r\n"
                      b"Call-ID: c1\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n")
            assert s.recv(4096).startswith(b"SIP/2.0 200 OK\r\n")  # a lab phone without a digest user
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        reap(proc)
