"""``predict --tvs-live``: a TVS server that cannot be reached is counted once as a server, however many
TLS versions the fleet's models try it with (phoneemu.scenario.predict_live_tvs; was ``2 servers
unreachable`` for one TVS down under a fleet of two models)."""

from __future__ import annotations

import socket

import pytest

from phoneemu.errors import TransportError
from phoneemu.formats.config import Server
from phoneemu.phone.events import QueryKey
from phoneemu.scenario.predict_live_tvs import LiveTvs
from tests.helpers import run


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_one_server_down_is_one_server_for_two_tls_versions() -> None:
    live = LiveTvs(timeout=2)
    servers = [Server(host="127.0.0.1", port=_closed_port())]
    key = QueryKey(subject="CN=x", issuer="CN=x", serial=b"\x01")

    async def ask_both() -> None:
        for versions in (("1.2",), ("1.0",)):  # two models, two TLS versions: a connection each
            with pytest.raises(TransportError):
                await live.asker(versions)(servers, key, device_name="SEP0A0000000001", accept_server=None)

    run(ask_both())
    assert live.connections == 2
    assert live.unreachable == 1
