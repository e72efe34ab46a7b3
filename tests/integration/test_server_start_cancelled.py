"""A server start cancelled on its way leaves no socket listening (phoneemu.net._listen.serving,
:meth:`LabServers.start`): before, a cancellation in the loop iteration asyncio's ``create_server`` skips
after ``listen`` lost the server with its socket open (the port taken while the loop ran, a
ResourceWarning after), and a lab start cancelled while it waited for the lab lock left every server up."""

from __future__ import annotations

import asyncio
import fcntl
import gc
import os
import socket
import warnings
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.net.http import HttpServer
from phoneemu.net.tls import TlsServer
from tests.helpers import copy_cluster, open_sockets, run

HOST = "127.0.0.1"
MAX_STEPS = 200  # loop iterations a lab start takes here: about 21 (every service, two nodes)

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd (Linux)")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lab of two nodes (node 2's TVS and registrars are started too)."""
    root = tmp_path_factory.mktemp("startcancel") / "lab"
    LabCluster.init(root, seed=5, key_spec="rsa1024", nodes=2).add_phone("0011223344DD")
    return root


@pytest.fixture
def cluster(template: Path, tmp_path: Path) -> Any:
    return copy_cluster(template, tmp_path)


def taken(ports: Mapping[str, int]) -> list[str]:
    """The services whose port cannot be bound again (TFTP is UDP, the others TCP)."""
    busy = []
    for name, port in ports.items():
        kind = socket.SOCK_DGRAM if name == "tftp" else socket.SOCK_STREAM
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                busy.append(f"{name} {port}")
    return busy


async def cancelled_after(start: Awaitable[object], steps: int) -> bool:
    """Run ``start`` for ``steps`` loop iterations, then cancel it; True when it was cancelled (False: it
    had returned)."""
    task = asyncio.ensure_future(start)
    for _ in range(steps):
        await asyncio.sleep(0)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        return True
    return False


async def steps_of(start: Awaitable[object]) -> int:
    """How many loop iterations ``start`` takes (at most :data:`MAX_STEPS`), run to its end."""
    task = asyncio.ensure_future(start)
    steps = 0
    while not task.done() and steps < MAX_STEPS:
        await asyncio.sleep(0)
        steps += 1
    await task
    return steps


def lab_servers(cluster: LabCluster) -> LabServers:
    """Every service of the lab, the on-demand ones included."""
    return LabServers(cluster, app_https=True, sip_ports={"sip": 0, "sips": 0})


def unclosed_socket_warnings(body: Callable[[], None], ports: Mapping[str, int]) -> list[str]:
    """The ResourceWarnings for a socket on one of ``ports`` that ``body`` and a garbage collection after it
    gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        body()
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)
            and any(f", {port})" in str(w.message) for port in ports.values())]


def test_a_lab_start_cancelled_at_any_step_leaves_no_port_taken(cluster: LabCluster) -> None:
    ports: dict[str, int] = {}

    async def main() -> None:
        before = open_sockets()
        whole = lab_servers(cluster)
        steps = await steps_of(whole.start())
        ports.update(whole.ports)  # recorded: every start below asks for them again
        await whole.stop()
        assert len(ports) == 10, ports  # tftp http tvs capf https sip sips, tvs-2 sip-2 sips-2
        cancelled = []
        for step in range(steps + 2):
            servers = lab_servers(cluster)
            if await cancelled_after(servers.start(), step):
                cancelled.append(step)
            else:
                await servers.stop()
            assert taken(ports) == [], f"cancelled after {step} loop iterations"
            assert open_sockets() == before, f"cancelled after {step} loop iterations"
        assert cancelled == list(range(steps))  # every step up to the last one was a cancelled start

    assert unclosed_socket_warnings(lambda: run(main()), ports) == []


def test_a_lab_start_cancelled_waiting_for_the_lab_lock_closes_its_servers(cluster: LabCluster) -> None:
    """Every server bound, the port record waiting for a lab operation's lock: a cancellation (``lab serve``
    stopped by a signal) closes them, ``async with`` calls no ``stop`` for a start that raised."""
    async def main() -> None:
        before = open_sockets()
        servers = LabServers(cluster, sip_ports={"sip": 0, "sips": 0})
        task = asyncio.ensure_future(servers.start())
        lock = -1
        try:
            for _ in range(MAX_STEPS):
                if lock < 0 and servers.ports:  # read and binding: the record waits for this holder
                    lock = os.open(cluster.root / ".lab.lock", os.O_RDWR | os.O_CREAT, 0o600)
                    fcntl.flock(lock, fcntl.LOCK_EX)
                if len(servers.ports) == 9 or task.done():  # tftp http tvs capf sip sips, node 2's three
                    break  # (the last one bound, the start went on to the record: it waits for the lock)
                await asyncio.sleep(0)
            assert not task.done() and len(servers.ports) == 9, servers.ports
            ports = dict(servers.ports)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        finally:
            if lock >= 0:
                os.close(lock)
        assert taken(ports) == []
        assert open_sockets() == before

    run(main())


@pytest.mark.parametrize("make", [
    lambda: HttpServer({}, HOST, 0),
    lambda: TlsServer(lambda r, w: asyncio.sleep(0), None, HOST, 0),
], ids=["http", "tcp"])
def test_a_server_start_cancelled_closes_its_socket(make: Callable[[], HttpServer | TlsServer]) -> None:
    async def main() -> None:
        before = open_sockets()
        whole = make()
        steps = await steps_of(whole.start())  # the name resolved (4 here), then one after listen
        await whole.close()
        for step in range(steps + 1):
            server = make()
            if not await cancelled_after(server.start(), step):
                assert step == steps
                await server.close()
            assert open_sockets() == before, f"cancelled after {step} loop iterations"

    run(main())


def test_a_dual_stack_http_listener_keeps_its_backlog(monkeypatch: pytest.MonkeyPatch) -> None:
    """On ``::`` the HTTP server hands asyncio a socket it made with the backlog (1024: a fleet's
    connection storm); asyncio calls ``listen`` on it again with the backlog it is given — 100 when none
    was (the storm's SYNs then dropped past 100). Checked as asyncio is called (no ``::`` bind here:
    tests stay on loopback), the IPv4 loopback standing in for the dual-stack socket."""
    from phoneemu.net import http

    seen: dict[str, object] = {}
    real = asyncio.start_server

    async def spy(*args: object, **kwargs: object) -> asyncio.Server:
        seen.update(kwargs)
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(http, "is_ipv6_any", lambda _host: True)
    monkeypatch.setattr(http.asyncio, "start_server", spy)

    async def main() -> None:
        server = await http.HttpServer({}, "127.0.0.1", 0).start()
        await server.close()

    asyncio.run(main())
    assert seen.get("sock") is not None and seen.get("backlog") == 1024
