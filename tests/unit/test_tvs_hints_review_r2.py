"""``phoneemu tvs`` against a port that takes the connection and then closes or resets it: something listens
there, so its one line does not say "nothing listens" (was: every ``unreachable`` said so, a refused
connection's hint given to a server that answered the SYN). Over real loopback sockets."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.cli import main
from tests.signer_helpers import signer_pem

HOST = "127.0.0.1"
CUCM = "(CUCM's TVS is on 2445)"
ACCEPT_S = 5.0  # the longest the server waits for the client's connection (a test gone wrong ends)


@pytest.fixture
def cert_file(tmp_path: Path) -> Path:
    return signer_pem(tmp_path, "CN=ITLRECOVERY_review-r2", seed="tvs-review-r2", serial=9)


def _closing_server(how: str) -> Iterator[int]:
    """A loopback port whose server takes one connection and then ``reset``s it at once (SO_LINGER 0),
    reads the ClientHello and ``close``s it, or reads it and answers ``http`` (a 400) before closing."""
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(1)
    listener.settimeout(ACCEPT_S)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(ACCEPT_S)
            if how == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                conn.recv(4096)
                if how == "http":
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        thread.join(ACCEPT_S + 1)
        listener.close()


@pytest.fixture(params=["reset", "close"])
def closing_port(request: pytest.FixtureRequest) -> Iterator[int]:
    yield from _closing_server(request.param)


def test_a_port_that_takes_the_connection_and_closes_it_is_not_said_empty(
        closing_port: int, cert_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tvs", f"{HOST}:{closing_port}", str(cert_file), "--timeout", "3"]) == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  no answer")]
    assert len(lines) == 1, lines
    assert "nothing listens" not in lines[0], lines[0]
    assert lines[0].endswith(f": {HOST}:{closing_port} {CUCM} took the connection, then closed it: is "
                             "it a TVS port? A TVS refusing the phone's TLS versions may close so (--tls 1.0 "
                             "for a 7900 series)"), lines[0]


def test_tvs_against_a_server_not_speaking_tls_says_it_answered(
        cert_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A server that answered, but not with TLS, is said so (s39: was "the TLS handshake ... failed" and a
    TLS version to try, where no handshake took place)."""
    port_of = _closing_server("http")
    http_port = next(port_of)
    try:
        assert main(["tvs", f"{HOST}:{http_port}", str(cert_file), "--timeout", "3"]) == 1
    finally:
        port_of.close()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  no answer")]
    assert len(lines) == 1, lines
    line = lines[0]
    assert "the server answered, but not with TLS (it begins 48 ('H'): looks like HTTP?)" in line, line
    assert "handshake" not in line, line
    assert line.endswith(f": {HOST}:{http_port} (CUCM's TVS is on 2445) answered, but not with TLS: is it a "
                         "TVS port?"), line
