"""``--tftp NAME`` of several addresses (``localhost``: ``::1`` first, then ``127.0.0.1``): the phones ask the
first whose HTTP port takes a connection, as each HTTP request's own lookup did before the name was looked up
once (``_cluster_address.check_resolves``); a cluster on ``127.0.0.1`` only was every file unreachable."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from phoneemu.commands._cluster_address import ClusterAddress, check_resolves

_NAME = "dual-stack.invalid"


@pytest.fixture
def http_on_v4() -> Iterator[int]:
    """A TCP listener on 127.0.0.1 only (as lab serve's default): its port."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield int(server.getsockname()[1])


@pytest.fixture
def v6_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """``_NAME`` resolves to ``::1`` first, then ``127.0.0.1`` (RFC 6724's order for localhost)."""
    real = socket.getaddrinfo

    def fake(host: object, port: object, *args: object, **kwargs: object) -> object:
        if host != _NAME:
            return real(host, port, *args, **kwargs)  # type: ignore[arg-type]
        kind = socket.SOCK_DGRAM
        return [(socket.AF_INET6, kind, 17, "", ("::1", port, 0, 0)),
                (socket.AF_INET, kind, 17, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", fake)


@pytest.mark.usefixtures("v6_first")
def test_the_address_whose_http_port_answers(http_on_v4: int) -> None:
    where = ClusterAddress(_NAME, 69, http_on_v4, from_lab=False)
    assert check_resolves(where) == "127.0.0.1"  # was ::1, where nothing listens


@pytest.mark.usefixtures("v6_first")
def test_no_http_asks_the_first_address_as_tftp_did(http_on_v4: int) -> None:
    where = ClusterAddress(_NAME, 69, http_on_v4, from_lab=False)
    assert check_resolves(where, http=False) == "::1"  # TFTP took the first address: nothing probed


@pytest.mark.usefixtures("v6_first")
def test_nothing_answering_keeps_the_first_address() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        closed = int(server.getsockname()[1])  # closed below: nothing listens there
    assert check_resolves(ClusterAddress(_NAME, 69, closed, from_lab=False)) == "::1"
