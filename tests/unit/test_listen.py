"""net._listen.tcp_listener: the one TCP listener of the lab servers (HTTP, TLS, both TVS servers)."""

from __future__ import annotations

import socket

import pytest

from phoneemu.net._listen import tcp_listener


@pytest.mark.parametrize(("host", "family", "address"), [
    ("", socket.AF_INET, "0.0.0.0"),  # every IPv4 address, as bind(("", port)) (getaddrinfo refuses "")
    ("127.0.0.1", socket.AF_INET, "127.0.0.1"),
    ("localhost", socket.AF_INET, "127.0.0.1"),  # a name is resolved (the TVS servers took names)
    ("::1", socket.AF_INET6, "::1"),
])
def test_listener_addresses(host: str, family: int, address: str) -> None:
    with tcp_listener(host, 0, backlog=4) as sock:
        assert sock.family == family and sock.getsockname()[0] == address
        assert not sock.getblocking()


def test_dual_stack_and_blocking() -> None:
    with tcp_listener("::", 0, backlog=4, blocking=True) as sock:
        assert sock.getblocking()
        assert sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0  # IPv4 phones too
        with socket.create_connection(("127.0.0.1", sock.getsockname()[1]), timeout=5):
            conn, _ = sock.accept()
            conn.close()


def test_a_port_in_use_is_the_os_error() -> None:
    with tcp_listener("127.0.0.1", 0, backlog=4) as sock, pytest.raises(OSError):
        tcp_listener("127.0.0.1", sock.getsockname()[1], backlog=4)
