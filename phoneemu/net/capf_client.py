"""Phone side of CAPF over TLS: one session with one CAPF server (spec §F).

Rules:

* Connect and handshake (TLS 1.0 to 1.3 as the context allows, spec §F.1), then let the server speak
  first (AUTH_REQUEST); every received chunk goes to the sans-I/O
  :class:`phoneemu.protocols.capf.CapfClientSession` and each frame it returns is written with one
  write (header and body together, §F.2). The session runs until END_SESSION.
* The state machine runs in a worker thread: a KEY_GENERATE_REQUEST makes the phone generate a key,
  which may take long (§F.8) and must not stall other phones in the same event loop.
* **Slow key generation** (ours, §F.6, §F.8): a session with ``keygen_seconds`` > 0 (the phone profile's
  ``capf_keygen_seconds``) sends its KEY_GENERATE_RESPONSE that long after the request came (real time,
  an asyncio sleep), after a REQUEST_IN_PROGRESS at once and one every ``in_progress_every`` seconds
  (none when 0). Meanwhile it watches the server: an END_SESSION ends the session with the server's
  outcome, its detail saying how far the key generation was (``rejected``, ``failure during keygen: the
  CAPF server ended the session 0.3s into this phone's 1s key generation``); a closed connection is a
  ``"protocol"`` TransportError saying the same. The phone's own session bound counts only the
  server's time: ``keygen_seconds`` is added to it.
* The TLS layer does not judge the server: the phone checks the CAPF certificate against its CTL/ITL
  CAPF record (§F.1); the certificate seen is returned, and ``accept_server`` may refuse it before
  anything is sent (``kind="tls"``). ``tls=None`` uses the shared ``CERT_NONE`` context of
  :func:`phoneemu.net.tvs_client.default_tls_context` (TLS 1.2 to 1.3).
* Failures are ``TransportError``: ``"unreachable"``, ``"timeout"`` (each read bounded by
  ``timeout``, the whole session by ``session_timeout``, default ``4 * timeout``: a server trickling a
  byte at a time cannot keep the phone forever), ``"tls"``, or ``"protocol"`` (malformed frame,
  unexpected command, connection closed before END_SESSION — inside a frame, that frame named by its
  stream offset and the bytes of it received). Retrying (3 more times, 30 s apart, §F.1)
  is the caller's policy. Garbage or an out-of-place frame after the frames of a read: those frames are
  answered (the session's rule), then the session ends at once with the ``"protocol"`` error naming
  what followed them — it does not wait for the server's next bytes (was: a ``"timeout"`` in state
  ``'failed'`` that lost the reason). A session that ended (END_SESSION in the same read as a frame the
  phone answered) keeps its result when the server is gone before that answer went out.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from phoneemu.errors import DecodeError, TransportError
from phoneemu.net.tls import open_tls_connection, peer_certificate_der
from phoneemu.net.tvs_client import ServerAddress, default_tls_context
from phoneemu.protocols.capf import CapfClientSession, CapfCommand, CapfResult, encode, message
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
    where = host_port(host, port)
    ctx = tls or default_tls_context()
    total = (4 * timeout if session_timeout is None else session_timeout) + client_session.keygen_seconds
    loop = asyncio.get_running_loop()
    deadline = loop.time() + total
    reader, writer = await open_tls_connection(host, port, ctx, timeout=timeout)
    try:
        cert = peer_certificate_der(writer)
        obj = writer.get_extra_info("ssl_object")
        cipher = obj.cipher() if obj is not None else None
        tls_text = f"{obj.version() if obj is not None else '?'} {cipher[0] if cipher else '?'}"
        if accept_server is not None and not accept_server(cert):
            raise TransportError(f"{where}: CAPF certificate not accepted", kind="tls")
        keygen = _SlowKeygen(reader, writer, client_session, where=where, deadline=deadline, total=total)
        while not client_session.done:
            left = deadline - loop.time()
            if left <= 0:
                raise _too_long(where, total, client_session)
            try:
                data = await asyncio.wait_for(reader.read(_READ_SIZE), min(timeout, left))
            except TimeoutError:
                if left < timeout:
                    raise _too_long(where, total, client_session) from None
                raise TransportError(f"{where}: CAPF silent for {timeout}s in state "
                                     f"{client_session.state!r}", kind="timeout") from None
            if not data:
                raise TransportError(f"{where}: CAPF closed the connection in state "
                                     f"{client_session.state!r}{_cut(client_session)}", kind="protocol")
            received_at = loop.time()
            unsent = False  # frames written and not drained (after an END_SESSION the server may be gone)
            for frame in await _answer(client_session, data, where):
                if keygen.applies(frame):
                    unsent = False  # the wait drains what went before
                    if not await keygen.wait(received_at):
                        break  # the server ended the session meanwhile: the response is not sent
                writer.write(frame)
                unsent = True
            if unsent:
                await _drain(writer, client_session)
            _raise_if_failed(client_session, where)
        result = client_session.result
        assert result is not None
        if keygen.ended_after is not None:
            how = keygen.how_far("the CAPF server ended the session", keygen.ended_after)
            result = dataclasses.replace(result, detail=f"{result.detail}: {how}")
        return CapfOutcome(result=result, host=host, port=port, server_cert=cert, tls=tls_text)
    except ssl.SSLError as exc:
        raise TransportError(f"{where}: TLS error: {exc.reason or exc}", kind="tls") from exc
    except (ConnectionError, OSError) as exc:
        raise TransportError(f"{where}: connection lost: {exc}", kind="unreachable") from exc
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


async def _drain(writer: asyncio.StreamWriter, client_session: CapfClientSession) -> None:
    """Send what was written. Once the session has ended (END_SESSION came in the same read as the frame
    the phone answered, e.g. STORE_CERTIFICATE_REQUEST and END_SESSION {REASON=1} in one write) the server
    may be gone: the connection lost then keeps the session's result (was: a ``"unreachable"`` error, an
    LSC accepted and confirmed lost, or not, by the race of the server's close)."""
    if not client_session.done:
        await writer.drain()
        return
    with contextlib.suppress(ConnectionError, OSError, ssl.SSLError):
        await writer.drain()


def _raise_if_failed(client_session: CapfClientSession, where: str) -> None:
    """A session that answered the frames of a read and then failed on what followed them (garbage, an
    out-of-place frame) cannot go on: a ``"protocol"`` TransportError naming that error, at once — not a
    wait for the server's next bytes ending in a timeout that loses the reason. A session already ended
    (END_SESSION, then garbage) keeps its result."""
    if client_session.failed and not client_session.done:
        raise TransportError(f"{where}: CAPF protocol error: {client_session.error}", kind="protocol")


def _cut(client_session: CapfClientSession) -> str:
    """For a closed connection: ``, inside a frame: WHY`` naming the frame it cut (its stream offset and the
    bytes of it received), or "" between frames (was: only the state, a frame cut short unsaid)."""
    cut = client_session.cut_frame()
    return f", inside a frame: {cut}" if cut is not None else ""


def _too_long(where: str, total: float, client_session: CapfClientSession) -> TransportError:
    return TransportError(f"{where}: CAPF session longer than {total:g}s (state {client_session.state!r})",
                          kind="timeout")


async def _answer(client_session: CapfClientSession, data: bytes, where: str) -> list[bytes]:
    """The phone's answers to ``data`` (computed in a worker thread: a key may take long, §F.8); a
    malformed frame or an unexpected command is a ``"protocol"`` TransportError."""
    try:
        return await asyncio.to_thread(client_session.receive, data)
    except DecodeError as exc:
        raise TransportError(f"{where}: CAPF protocol error: {exc}", kind="protocol") from exc


class _SlowKeygen:
    """A slow phone's key generation (module docstring): the wait before its KEY_GENERATE_RESPONSE, with
    REQUEST_IN_PROGRESS at its cadence, watching the server meanwhile."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 client_session: CapfClientSession, *, where: str, deadline: float, total: float) -> None:
        self.reader = reader
        self.writer = writer
        self.session = client_session
        self.where = where
        self.deadline = deadline
        self.total = total
        #: seconds into the key generation when the server ended the session (None: it did not)
        self.ended_after: float | None = None

    def applies(self, frame: bytes) -> bool:
        """``frame`` is the KEY_GENERATE_RESPONSE of a key made by a slow phone (a refusal goes at once)."""
        return (self.session.keygen_seconds > 0 and self.session.key_generated
                and len(frame) > 1 and frame[1] == CapfCommand.KEY_GENERATE_RESPONSE)

    def how_far(self, what: str, elapsed: float) -> str:
        return f"{what} {elapsed:.1f}s into this phone's {self.session.keygen_seconds:g}s key generation"

    async def wait(self, since: float) -> bool:
        """Until ``keygen_seconds`` after ``since`` (the request came), REQUEST_IN_PROGRESS every
        ``in_progress_every`` seconds: True then (the key is ready); False when the server ended the session
        meanwhile (its END_SESSION taken by the session). A server that closes, or sends anything else
        than END_SESSION, is a ``"protocol"`` TransportError; the session bound still holds."""
        loop = asyncio.get_running_loop()
        await self.writer.drain()  # the REQUEST_IN_PROGRESS sent at once (the session's) goes out now
        every = self.session.in_progress_every
        ready = since + self.session.keygen_seconds
        next_ping = since + every if every > 0 else float("inf")
        while (now := loop.time()) < ready:
            if now >= self.deadline:
                raise _too_long(self.where, self.total, self.session)
            if now >= next_ping:
                await self._ping()
                while next_ping <= now:
                    next_ping += every
                continue
            try:
                wake = min(ready, next_ping, self.deadline)
                data = await asyncio.wait_for(self.reader.read(_READ_SIZE), wake - now)
            except TimeoutError:
                continue
            elapsed = loop.time() - since
            if not data:
                closed = self.how_far("CAPF closed the connection", elapsed)
                raise TransportError(f"{self.where}: {closed}{_cut(self.session)}", kind="protocol")
            if await self._server_ended(data):
                self.ended_after = elapsed
                return False
        return True

    async def _ping(self) -> None:
        assert self.session.session_id is not None
        self.writer.write(encode(message(CapfCommand.REQUEST_IN_PROGRESS, self.session.session_id)))
        await self.writer.drain()

    async def _server_ended(self, data: bytes) -> bool:
        """Take what the server sent during the key generation: True when it ended the session, False for
        part of a frame; any other frame is a ``"protocol"`` TransportError."""
        answers = await _answer(self.session, data, self.where)
        if self.session.done:
            return True
        _raise_if_failed(self.session, self.where)
        if answers:
            sent = self.session.last_received
            what = CapfCommand(sent).name if sent is not None else "a frame"
            raise TransportError(f"{self.where}: CAPF protocol error: the server spoke out of turn during "
                                 f"key generation: {what} before the phone's KEY_GENERATE_RESPONSE",
                                 kind="protocol")
        return False
