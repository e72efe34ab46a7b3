"""Phone side of CAPF over TLS: one session with one CAPF server (spec §F).

Rules:

* Connect and handshake (TLS 1.0 to 1.3 as the context allows, spec §F.1), then let the server speak
  first (AUTH_REQUEST); every received chunk goes to the sans-I/O
  :class:`phoneemu.protocols.capf.CapfClientSession` and each frame it returns is written with one
  write (header and body together, §F.2). The session runs until END_SESSION.
* The state machine runs in a worker thread: a KEY_GENERATE_REQUEST makes the phone generate a key,
  which may take long (§F.8) and must not stall other phones in the same event loop.
* The TLS layer does not judge the server: the phone checks the CAPF certificate against its CTL/ITL
  CAPF record (§F.1); the certificate seen is returned, and ``accept_server`` may refuse it before
  anything is sent (``kind="tls"``). ``tls=None`` uses the shared ``CERT_NONE`` context of
  :func:`phoneemu.net.tvs_client.default_tls_context` (TLS 1.2 to 1.3).
* Failures are ``TransportError``: ``"unreachable"``, ``"timeout"`` (each read bounded by
  ``timeout``, the whole session by ``session_timeout``, default ``4 * timeout``: a server trickling a
  byte at a time cannot keep the phone forever), ``"tls"``, or ``"protocol"`` (malformed frame,
  unexpected command, connection closed before END_SESSION). Retrying (3 more times, 30 s apart, §F.1)
  is the caller's policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from phoneemu.errors import DecodeError, TransportError
from phoneemu.net.tls import open_tls_connection, peer_certificate_der
from phoneemu.net.tvs_client import ServerAddress, default_tls_context
from phoneemu.protocols.capf import CapfClientSession, CapfResult
from phoneemu.values import host_port

__all__ = ["CapfOutcome", "capf_session"]

_READ_SIZE = 65536


@dataclass(frozen=True, kw_only=True)
class CapfOutcome:
    """How the session ended (``result``) and what the phone saw of the server."""

    result: CapfResult
    host: str
    port: int
    server_cert: bytes | None
    tls: str

    @property
    def outcome(self) -> str:
        return self.result.outcome


async def capf_session(server: ServerAddress, client_session: CapfClientSession, *, timeout: float = 30.0,
                       tls: ssl.SSLContext | None = None,
                       accept_server: Callable[[bytes | None], bool] | None = None,
                       session_timeout: float | None = None) -> CapfOutcome:
    """Run ``client_session`` against ``server`` until END_SESSION (see module docstring)."""
    host, port = (server[0], server[1]) if isinstance(server, tuple) else (server.host, server.port)
    ctx = tls or default_tls_context()
    total = 4 * timeout if session_timeout is None else session_timeout
    deadline = asyncio.get_running_loop().time() + total
    reader, writer = await open_tls_connection(host, port, ctx, timeout=timeout)
    try:
        cert = peer_certificate_der(writer)
        obj = writer.get_extra_info("ssl_object")
        cipher = obj.cipher() if obj is not None else None
        tls_text = f"{obj.version() if obj is not None else '?'} {cipher[0] if cipher else '?'}"
        if accept_server is not None and not accept_server(cert):
            raise TransportError(f"{host_port(host, port)}: CAPF certificate not accepted", kind="tls")
        while not client_session.done:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TransportError(f"{host_port(host, port)}: CAPF session longer than {total:g}s "
                                     f"(state {client_session.state!r})", kind="timeout")
            try:
                data = await asyncio.wait_for(reader.read(_READ_SIZE), min(timeout, left))
            except TimeoutError:
                if left < timeout:
                    raise TransportError(f"{host_port(host, port)}: CAPF session longer than {total:g}s "
                                         f"(state {client_session.state!r})", kind="timeout") from None
                raise TransportError(f"{host_port(host, port)}: CAPF silent for {timeout}s in state "
                                     f"{client_session.state!r}", kind="timeout") from None
            if not data:
                raise TransportError(f"{host_port(host, port)}: CAPF closed the connection in state "
                                     f"{client_session.state!r}", kind="protocol")
            try:
                frames = await asyncio.to_thread(client_session.receive, data)
            except DecodeError as exc:
                raise TransportError(f"{host_port(host, port)}: CAPF protocol error: {exc}",
                                     kind="protocol") from exc
            for frame in frames:
                writer.write(frame)
            if frames:
                await writer.drain()
        result = client_session.result
        assert result is not None
        return CapfOutcome(result=result, host=host, port=port, server_cert=cert, tls=tls_text)
    except ssl.SSLError as exc:
        raise TransportError(f"{host_port(host, port)}: TLS error: {exc.reason or exc}", kind="tls") from exc
    except (ConnectionError, OSError) as exc:
        raise TransportError(f"{host_port(host, port)}: connection lost: {exc}", kind="unreachable") from exc
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
