"""A TFTP transfer cancelled as its event loop ends (``asyncio.run`` cancelling the tasks left) holds
nothing past the loop: the quarantine's keeper runs while a transfer is under way, so it is cancelled
with them and closes what they hold; no keeper task is left pending ("Task was destroyed but it is
pending!"), no socket left open (tftp_client module docstring, ``_Quarantine``).
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import socket
from collections.abc import Awaitable, Callable

import pytest

from phoneemu.net import tftp_client
from phoneemu.net.tftp import TftpClientPool
from tests.integration.test_tftp import HOST

Get = Callable[..., Awaitable[bytes]]


def _cancelled_at_loop_end(get: Get) -> asyncio.AbstractEventLoop:
    """Run a loop whose main returns while ``get`` waits for a server that never answers, so
    ``asyncio.run`` cancels it on its way out; the (closed) loop."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind((HOST, 0))
    silent.settimeout(5.0)
    loops: list[asyncio.AbstractEventLoop] = []
    left: list[asyncio.Task[bytes]] = []  # the transfer main leaves running

    async def main() -> None:
        loops.append(asyncio.get_running_loop())
        left.append(asyncio.create_task(get(HOST, silent.getsockname()[1], "SEP0A0000000001.cnf.xml",
                                            timeout=30.0, retries=0)))
        await asyncio.to_thread(silent.recv, 1024)  # its RRQ came: the transfer is under way

    try:
        asyncio.run(main())
    finally:
        silent.close()
    assert left and left[0].cancelled()
    gc.collect()  # a keeper task left pending is destroyed here, saying so
    return loops[0]


def _no_task_left_pending(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if "Task was destroyed" in r.getMessage()]


def test_a_one_off_download_cancelled_as_the_loop_ends_holds_nothing_after_it(
        caplog: pytest.LogCaptureFixture) -> None:
    """Old code: tftp_get's ``finally``, run by that cancellation, held its socket and started the keeper
    then; nothing cancelled that keeper: the loop ended with the socket held, the keeper pending."""
    caplog.set_level(logging.ERROR, logger="asyncio")
    loop = _cancelled_at_loop_end(tftp_client.tftp_get)
    quarantine = tftp_client._ONE_OFF[loop]
    assert not quarantine.held and not quarantine.keeping
    _no_task_left_pending(caplog)


def test_a_pool_download_cancelled_as_the_loop_ends_holds_nothing_after_it(
        caplog: pytest.LogCaptureFixture) -> None:
    """The same for a pool its owner did not close (old code: the socket held, the keeper pending)."""
    caplog.set_level(logging.ERROR, logger="asyncio")
    pool = TftpClientPool(max_sockets=1)
    _cancelled_at_loop_end(pool.get)
    assert pool.held == 0
    _no_task_left_pending(caplog)


def test_the_keeper_ends_when_no_transfer_is_under_way_and_nothing_is_held() -> None:
    """The keeper that now runs during a transfer does not outlive it: after a download whose socket is
    closed at once, or a pool closed, no task of the quarantine is left."""
    async def main() -> None:
        quarantine = tftp_client._Quarantine(6.0, 4)
        loop = asyncio.get_running_loop()
        quarantine.enter(loop)
        assert quarantine.keeping
        quarantine.leave()
        for _ in range(10):  # bounded: a few loop turns
            if not quarantine.keeping:
                break
            await asyncio.sleep(0)
        assert not quarantine.keeping and not quarantine.ended

    asyncio.run(asyncio.wait_for(main(), 10))


@pytest.mark.parametrize("use_pool", [False, True], ids=["tftp_get", "pool"])
def test_no_socket_to_be_had_is_a_transport_error_naming_the_file(monkeypatch: pytest.MonkeyPatch,
                                                                  use_pool: bool) -> None:
    """Old code: the open-file limit reached (EMFILE at ``socket()``), a bare OSError escaped tftp_get and
    the pool; now a TransportError naming the file, and the quarantine's keeper is not left running."""
    def no_socket(_family: int) -> socket.socket:
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(tftp_client, "client_udp_socket", no_socket)

    async def main() -> tftp_client.TransportError:
        pool = TftpClientPool(max_sockets=1)
        get = pool.get if use_pool else tftp_client.tftp_get
        with pytest.raises(tftp_client.TransportError) as err:
            await get(HOST, 69, "SEP0A0000000001.cnf.xml", timeout=1.0, retries=0)
        await pool.close()
        return err.value

    exc = asyncio.run(asyncio.wait_for(main(), 10))
    assert exc.kind == "error" and exc.path == "SEP0A0000000001.cnf.xml"
    assert "cannot open a UDP socket for SEP0A0000000001.cnf.xml" in str(exc)
    assert "Too many open files" in str(exc)
