"""``LabServers._stop_all``: every server is stopped whatever became of the others; a cancel that comes
while one closes is raised once all are closed (a close waits a few loop iterations: gh-109564)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from phoneemu.lab.servers import SERVICES, LabServers


def test_a_cancel_during_one_close_is_raised_after_every_other_server_is_stopped() -> None:
    servers: Any = LabServers.__new__(LabServers)
    servers.tvs_nodes = {"tvs-2": object()}
    servers.sip_nodes = {}
    stopped: list[str] = []

    async def stop(name: str) -> None:
        stopped.append(name)
        if name == "tvs-2":
            raise asyncio.CancelledError
        if name == SERVICES[-1]:
            raise RuntimeError("a server that fails to close")

    servers._stop = stop
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(servers._stop_all())
    assert stopped == ["tvs-2", *reversed(SERVICES)]
