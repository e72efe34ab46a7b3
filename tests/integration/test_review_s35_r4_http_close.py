"""Review S35 R4 of 3e6aa7f (``HttpServer.close()`` aborts a connection with a response in its buffer).

After the abort the handler's drain ended quietly (the connection lost without an error wakes a drain
with a result) and :meth:`HttpServer._respond` wrote every piece left into the aborted transport: on
asyncio each past the fifth logged a WARNING "socket.send() raised exception." (27 lines for 8 MiB); on
uvloop the next write raised RuntimeError ("the handler is closed"), logged with its traceback as
"http: connection from ... failed". Now the response ends at the first piece after the close, quietly.

Over real loopback sockets: the client's receive buffer and the server's send buffer small, the client
reading steadily, the server closed mid-response.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Callable

import pytest

from tests.slow_reader_helpers import http_close_mid_response

BODY = 8 * 1024 * 1024  # 32 pieces of 256 KiB: most still to be written at the close


def _loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        if importlib.util.find_spec("uvloop") is None:
            pytest.skip("uvloop not installed")
        import uvloop
        return uvloop.new_event_loop
    return asyncio.new_event_loop


@pytest.mark.parametrize("loop_name", ["asyncio", "uvloop"])
def test_the_close_ends_a_response_quietly(loop_name: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with asyncio.Runner(loop_factory=_loop_factory(loop_name)) as runner:
        ended = runner.run(http_close_mid_response(BODY, end_within=6.0))
    # a reset or an end; a read timing out (5 s) would be a connection left open and silent, not cut
    assert ended.startswith(("cut", "end of stream")) and "TimeoutError" not in ended, ended
    loud = [f"{r.name} {r.levelname} {r.getMessage()}" for r in caplog.records
            if r.levelno >= logging.WARNING]
    assert not loud, loud[:3]
