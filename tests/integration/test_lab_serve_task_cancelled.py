"""``lab serve`` run as a task and cancelled (lab_serve module rules; what asyncio.run does to it on a
Ctrl-C that comes before its own handlers are set): its start ends with it and its signal handlers are
given back. Before, the start went on in the background — every port bound, the ports recorded in the
lab after ``serve`` had stopped, a watch loop left running — and a cancellation during the stop left
``lab serve``'s handlers on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any

import pytest

from phoneemu.commands import lab_serve
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from tests.helpers import lab_template

HOST = "127.0.0.1"
template = lab_template("labservecancel", seed=23, phones={"0011223344E1": {}})


def _marker(_signum: int, _frame: object) -> None:
    """A SIGTERM handler of the test's own (never called): what ``serve`` must give back."""


def _serve(cluster: LabCluster) -> Any:
    return lab_serve.serve(cluster.root, host=HOST, tftp_port=0, http_port=0, tvs_port=0, capf_port=0)


def _others() -> list[str]:
    """The tasks of the loop other than the test's own."""
    return [t.get_coro().__qualname__ for t in asyncio.all_tasks() if t is not asyncio.current_task()]


@pytest.fixture
def own_sigterm(monkeypatch: pytest.MonkeyPatch) -> Any:
    """SIGTERM handled by :func:`_marker` during the test, the previous handler put back after it."""
    monkeypatch.setattr(lab_serve, "raise_open_file_limit", lambda: 0)  # not this test process's limit
    before = signal.signal(signal.SIGTERM, _marker)
    yield
    signal.signal(signal.SIGTERM, before)


def test_a_serve_cancelled_while_it_starts_leaves_no_start_running(cluster: LabCluster, own_sigterm: None,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve`` cancelled while its start reads the lab: once it has ended nothing of it runs, the lab
    holds no port record and SIGTERM is the test's handler again."""
    before = (cluster.root / "cluster.json").read_bytes()
    serving: list[asyncio.Task[int]] = []
    read_whole: Callable[..., Any] = LabCluster.read_whole

    def cancel_then_read(self: LabCluster, *args: Any, **kwargs: Any) -> Any:
        serving[0].cancel()  # the start is under way (its own task) when serve is cancelled
        return read_whole(self, *args, **kwargs)

    monkeypatch.setattr(LabCluster, "read_whole", cancel_then_read)

    async def main() -> list[str]:
        serving.append(asyncio.create_task(_serve(cluster)))
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(serving[0], 30)
        return _others()

    assert asyncio.run(main()) == []
    assert (cluster.root / "cluster.json").read_bytes() == before
    assert signal.getsignal(signal.SIGTERM) is _marker


def test_a_serve_cancelled_again_while_it_stops_gives_the_signals_back(
        cluster: LabCluster, own_sigterm: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve`` cancelled once it listens, then again while its servers stop: SIGTERM is the test's
    handler again (not ``lab serve``'s, left calling into a loop that is gone)."""
    listening = asyncio.Event()
    stopping = asyncio.Event()
    print_listening = lab_serve._print_listening
    stop = LabServers.stop

    def said_listening(*args: Any) -> None:
        print_listening(*args)
        listening.set()

    async def slow_stop(self: LabServers) -> None:
        await stop(self)
        stopping.set()
        await asyncio.sleep(30)  # cancelled by the test at once

    monkeypatch.setattr(lab_serve, "_print_listening", said_listening)
    monkeypatch.setattr(LabServers, "stop", slow_stop)

    async def main() -> None:
        task = asyncio.create_task(_serve(cluster))
        await asyncio.wait_for(listening.wait(), 30)
        task.cancel()
        await asyncio.wait_for(stopping.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)

    asyncio.run(main())
    assert signal.getsignal(signal.SIGTERM) is _marker
