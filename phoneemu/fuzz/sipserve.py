"""``fuzz --format sip-response --serve``: a registrar that answers a device under test with mutants
(spec §G.13; the SIP counterpart of serving mutated files over TFTP, :func:`~.targets.serve_session`).

Rules (ours):

* SIP over TCP on ``host:port`` (a phone's ``sipPort``: point its CallManager there, or its config's
  devicePool; TLS is not served — a phone in secure mode checks the registrar's certificate against
  its CTL, §G.5, before it reads a byte).
* Each REGISTER the device sends is answered with the next mutant (the bytes of a ``sip-response``
  input: one or more responses back to back) through the :class:`~.targets.ServeSession` — its name is
  ``REGISTER SEP<MAC>`` (the device the From or ``+sip.instance`` names), so ``--mac`` picks one device;
  the mutant is saved under ``DIR/served/`` and logged in ``requests.jsonl``, a silence after it is a
  finding (``--silent-after``). Past ``--runs`` a REGISTER is answered ``503 Service Unavailable``.
  Another request is answered ``405 Method Not Allowed``; a message that does not parse ends the
  connection (logged).
* Bounded: the messages' own limits (:mod:`phoneemu.protocols.sip`), at most :data:`MAX_CONNECTIONS`
  connections at once, each read for at most ``idle`` seconds between requests; ``allow_peer`` refuses
  other hosts before a byte is read (``--device``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from phoneemu.errors import DecodeError, TransportError
from phoneemu.fuzz.targets import ServeSession
from phoneemu.protocols import sip
from phoneemu.values import host_port

__all__ = ["MAX_CONNECTIONS", "serve_sip_session"]

MAX_CONNECTIONS = 64


async def serve_sip_session(session: ServeSession, *, host: str = "127.0.0.1", port: int = 5060,
                            time_limit: float | None = None, ready: Callable[[int], None] | None = None,
                            on_silence: Callable[[dict[str, object]], None] | None = None,
                            allow_peer: Callable[[str], bool] | None = None, idle: float = 30.0) -> None:
    """Answer the device's REGISTERs with mutants (module rules) until ``session`` is exhausted (and,
    with ``silent_after``, the last mutant watched) or time runs out."""
    open_connections: set[asyncio.Task[None]] = set()

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = host_port(peername[0], peername[1]) if peername else "?"
        task = asyncio.current_task()
        if (allow_peer is not None and peername and not allow_peer(str(peername[0]))) \
                or len(open_connections) >= MAX_CONNECTIONS:
            writer.close()
            return
        if task is not None:
            open_connections.add(task)
        stream = sip.SipStream()
        try:
            while True:
                msg = stream.next()
                if msg is None:
                    chunk = await asyncio.wait_for(reader.read(4096), idle)
                    if not chunk:
                        return
                    stream.feed(chunk)
                    continue
                if msg.method != "REGISTER":
                    writer.write(sip.response_to(msg, 405, "Method Not Allowed"))
                    await writer.drain()
                    continue
                mac = sip.device_mac(msg)
                name = f"REGISTER SEP{mac}" if mac else "REGISTER"
                session.on_sip(peer, name)
                data = session.get(name)
                writer.write(data if data is not None else sip.response_to(msg, 503, "Service Unavailable"))
                await writer.drain()
        except DecodeError as exc:
            session.on_sip(peer, "?", f"malformed: {exc}")
        except (TimeoutError, ConnectionError, OSError):
            return
        except asyncio.CancelledError:  # the session is over: this connection ends here, quietly
            return
        finally:
            if task is not None:
                open_connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    try:
        server = await asyncio.start_server(connection, host, port)
    except OSError as exc:
        raise TransportError(f"cannot listen for sip on {host_port(host, port)}: {exc.strerror or exc}",
                             kind="unreachable") from None
    async with server:
        if ready is not None:
            ready(int(server.sockets[0].getsockname()[1]))
        await session.watch(time_limit=time_limit, on_silence=on_silence)
        for task in list(open_connections):
            task.cancel()
