"""``boot``'s word on a request still under way after :data:`~phoneemu.commands._watched_fetch.SLOW_S`
(:mod:`phoneemu.commands._watched_fetch`): a transfer whose bytes are arriving is said downloading, with
its bytes so far (the fetcher's ``bytes_so_far()``, read once); one with none still waiting for an answer.
Was "still waiting for NAME ... a server that does not answer costs each file its tries of --timeout" for
a large firmware coming over TFTP too, as if its server were silent."""

from __future__ import annotations

import asyncio

from phoneemu.commands._watched_fetch import Ports, WatchedFetcher

FIRMWARE = "sip88xx.14-2-1-0001-14.loads"


class _UnderWay:
    """A fetcher whose transfer of a file has ``received`` bytes (None: it counts none) until the watcher
    has said its word (``told``); then the file comes."""

    transport = "tftp"

    def __init__(self, received: int | None) -> None:
        self.received = received
        self.under_way: int | None = None
        self.told = asyncio.Event()

    def bytes_so_far(self) -> int | None:
        return self.under_way

    async def fetch(self, name: str) -> bytes:
        self.under_way = self.received
        try:
            await asyncio.wait_for(self.told.wait(), 5)
        finally:
            self.under_way = None
        return b"\0" * 4096


def _said(received: int | None, ports: Ports) -> list[str]:
    """What the watcher says of one fetch of :data:`FIRMWARE` through :class:`_UnderWay`."""
    said: list[str] = []
    inner = _UnderWay(received)

    def tell(text: str) -> None:
        said.append(text)
        inner.told.set()

    watched = WatchedFetcher(inner, ports, tell=tell, slow_s=0.05)
    assert asyncio.run(watched.fetch(FIRMWARE)) == b"\0" * 4096
    return said


def test_a_transfer_whose_bytes_arrive_is_said_downloading() -> None:
    assert _said(1_048_576, Ports("127.0.0.1", 16969, 6970)) == [
        f"still downloading {FIRMWARE} after 0.05 s: 1048576 bytes so far over TFTP 127.0.0.1:16969 "
        "(Ctrl-C stops)"]
    assert _said(512, Ports("::1", 69, None)) == [
        f"still downloading {FIRMWARE} after 0.05 s: 512 bytes so far over TFTP [::1]:69 (Ctrl-C stops)"]


def test_no_bytes_yet_or_none_counted_is_still_waiting() -> None:
    waiting = (f"still waiting for {FIRMWARE} after 0.05 s, asked of HTTP 127.0.0.1:6970 or TFTP "
               "127.0.0.1:16969: a server that does not answer costs each file its tries of --timeout "
               "(Ctrl-C stops)")
    for received in (0, None):
        assert _said(received, Ports("127.0.0.1", 16969, 6970)) == [waiting]
