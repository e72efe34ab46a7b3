"""A scripted HTTP server on loopback for the tests of the phone's HTTP (6970) client: each connection's
request head is answered with a canned response, at once or a byte at a time, then closed or held."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

HOST = "127.0.0.1"


@contextlib.asynccontextmanager
async def scripted_http(*responses: bytes, hold: float = 0.0, drip: float = 0.0, drip_bytes: int = 2000,
                        requests: list[bytes] | None = None,
                        connections: list[int] | None = None) -> AsyncIterator[int]:
    """A server answering the n-th connection's request head with ``responses[n]`` (the last one again
    after), a byte every ``drip`` seconds when set (at most ``drip_bytes`` bytes), then closing — or, with
    ``hold``, keeping the connection open until the client goes (at most ``hold`` seconds); its port.
    ``requests`` gets each request head, ``connections`` the index of each connection made."""
    made: list[int] = connections if connections is not None else []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = len(made)
        made.append(index)
        response = responses[min(index, len(responses) - 1)]
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if requests is not None:
                requests.append(head)
            if drip:
                for at in range(min(len(response), drip_bytes)):
                    writer.write(response[at:at + 1])
                    await writer.drain()
                    await asyncio.sleep(drip)
            else:
                writer.write(response)
                await writer.drain()
            if hold:
                await asyncio.wait_for(reader.read(), hold)
        except Exception:  # the client went away: its right
            pass
        finally:  # (a cancelled handler too: no socket left for the garbage collector)
            writer.close()

    server = await asyncio.start_server(handler, HOST, 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()
