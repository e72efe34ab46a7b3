"""``phoneemu tvs`` against a real cluster's TVS that gives no answer: its one line says what happened and
what to try (:func:`phoneemu.commands.tvs._what_to_try`; was the failure alone — ``connection refused``, a
raw resolver errno, ``connect timeout after 0.5s``), naming the host:port and, for another port than
CUCM's 2445, that one. Over real loopback sockets: a port nobody listens on, one that accepts and never
answers, one whose SYNs are dropped (a firewall's silence), a name that does not resolve."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.cli import main
from tests.real_cluster_helpers import syn_dropping_port
from tests.signer_helpers import signer_pem

HOST = "127.0.0.1"
CUCM = "(CUCM's TVS is on 2445)"


@pytest.fixture
def cert_file(tmp_path: Path) -> Path:
    return signer_pem(tmp_path, "CN=ITLRECOVERY_real-cluster", seed="tvs-real-cluster", serial=7)


def _no_answer_line(server: str, cert_file: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["tvs", server, str(cert_file), "--timeout", "0.5"]) == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  no answer")]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def refused_port() -> Iterator[int]:
    with socket.socket() as sock:  # bound, not listening: refused
        sock.bind((HOST, 0))
        yield sock.getsockname()[1]


def test_nothing_listening_asks_whether_tvs_runs_there(refused_port: int, cert_file: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    line = _no_answer_line(f"{HOST}:{refused_port}", cert_file, capsys)
    assert line.endswith(f": nothing listens on {HOST}:{refused_port} {CUCM}: is the Cisco Trust "
                         "Verification Service running on that node (Cisco Unified Serviceability)?"), line


def test_a_port_that_connects_and_never_answers_asks_whether_it_is_tvs(
        cert_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as listener:  # the kernel completes the connection; nobody reads the ClientHello
        listener.bind((HOST, 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        line = _no_answer_line(f"{HOST}:{port}", cert_file, capsys)
    assert line.endswith(f": connected, but no TVS answer within 0.5 s: is {HOST}:{port} {CUCM} a TVS port? "
                         "(--timeout S for a slow node)"), line


def test_a_silent_port_says_firewall_or_node_down(cert_file: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with syn_dropping_port(HOST) as port:
        line = _no_answer_line(f"{HOST}:{port}", cert_file, capsys)
    assert line.endswith(f": no answer to the connection to {HOST}:{port} {CUCM} within 0.5 s: a firewall "
                         f"dropping TCP {port}, or the node down? (--timeout S waits longer)"), line


def test_a_name_that_does_not_resolve_says_give_an_address(cert_file: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    line = _no_answer_line("tvs.nosuch.invalid", cert_file, capsys)  # RFC 6761: .invalid never resolves
    assert line.endswith(": the name tvs.nosuch.invalid does not resolve here: give the TVS node's address, "
                         "or a name this machine resolves"), line


def test_the_json_carries_what_to_try(refused_port: int, cert_file: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tvs", f"{HOST}:{refused_port}", str(cert_file), "--timeout", "0.5", "--json"]) == 1
    error = json.loads(capsys.readouterr().out)["error"]
    assert error["kind"] == "unreachable"
    assert error["try"].startswith(f"nothing listens on {HOST}:{refused_port} {CUCM}"), error
