"""The server side of one TLS connection over a plain TCP transport: ``ssl.SSLObject`` driven by protocol
callbacks, the same on asyncio's loop and on uvloop (spec §E.1, §F.1, §F.9).

Why not asyncio's own TLS (``start_server(ssl=...)``, ``loop.start_tls``): when a handshake fails it
closes the connection without sending the alert OpenSSL wrote, so a client refused for its certificate
(a phone's LSC from a CAPF the cluster no longer trusts, §F.9) saw a reset where a real server sends
``unknown ca`` or ``bad certificate``. Rules:

* Handshake: every byte received goes to OpenSSL and whatever it writes is sent at once — on failure
  too (the alert) —, then the connection is closed once that is written (not aborted).
  :attr:`TlsAcceptProtocol.handshake` ends with None or the failure (an ``ssl.SSLError``, or the
  ``OSError`` of a connection lost or closed before the handshake ended). The client's first
  :data:`CLIENT_START` bytes are kept until then (``client_start``: what it presented, for the log of a
  refused handshake; dropped once the handshake succeeds).
* After it the connection reads nothing until :meth:`TlsAcceptProtocol.attach` gives it the stream
  protocol (bytes that came with the client's Finished wait in OpenSSL's buffer); then plaintext goes to
  that protocol, and its transport (``ssl_object``, ``peercert``, ``cipher``, ``sslcontext`` and the
  socket's extra info) encrypts what the handler writes. Closing sends close_notify without waiting
  for the peer's, then closes once written; the peer's close_notify or end of stream is the stream's
  end of file.
  What reading makes OpenSSL write is sent too: the ``no_renegotiation`` warning alert refusing a TLS 1.2
  client's renegotiation (OpenSSL 3 refuses a client's by default), a TLS 1.3 KeyUpdate, and the fatal
  alert of a corrupt record (``bad_record_mac``; was: dropped, the connection aborted) before the
  connection closes — aborted instead when the kernel has not taken all that was written (a peer that
  does not read holds nothing open).
* On the path (a lab attacker, :mod:`phoneemu.lab.on_path`): :attr:`TlsAcceptProtocol.alter_once`, when
  set after the handshake, is applied to the next records sent and cleared — what an attacker between
  the two ends does to ciphertext; the transport's extra info ``tls_accept`` is the connection.
* Flow control and bounds: pause/resume writing of the TCP transport reach the stream protocol
  (``drain`` works); pause/resume reading pass through (a stream reader past its limit stops the
  reads). OpenSSL's input buffer holds at most what one read of the TCP transport brings on top of
  one TLS record.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Iterable
from typing import Any, cast

__all__ = ["CLIENT_START", "TlsAcceptProtocol"]

_RECORD_SIZE = 16384  # SSLObject.read returns one record at most: 16 KiB of plaintext (RFC 5246 §6.2.1)
CLIENT_START = 16384
"""Bytes of the client's handshake kept until it ends (the certificate a refused client presented)."""


class TlsAcceptProtocol(asyncio.Protocol):
    """The TCP protocol of one accepted TLS connection (module rules); ``on_connection(self)`` is called
    from ``connection_made`` (the server starts the connection's task there)."""

    def __init__(self, ctx: ssl.SSLContext, on_connection: Callable[[TlsAcceptProtocol], None]) -> None:
        self._on_connection = on_connection
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self._in, self._out, server_side=True)
        self.raw: asyncio.Transport | None = None
        self.handshake: asyncio.Future[None] | None = None
        self._app: asyncio.Protocol | None = None
        self._eof_given = False
        self._lost: tuple[Exception | None] | None = None  # connection_lost before attach
        self._write_paused = False
        #: the client's first bytes, until the handshake ends (at most CLIENT_START: its certificate,
        #: for the log of a refused handshake)
        self.client_start = b""
        #: applied once to the next records sent after the handshake (module rules), then cleared
        self.alter_once: Callable[[bytes], bytes] | None = None

    # --- TCP side --------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.raw = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        self.handshake = asyncio.get_running_loop().create_future()
        self.handshake.add_done_callback(_retrieved)  # a connection refused before its task: no warning
        self._on_connection(self)

    def data_received(self, data: bytes) -> None:
        self._in.write(data)
        hs = self.handshake
        if hs is not None and not hs.done() and len(self.client_start) < CLIENT_START:
            self.client_start += data[:CLIENT_START - len(self.client_start)]
        self._drive()

    def eof_received(self) -> bool:
        self._in.write_eof()
        self._drive()
        return False  # TLS has no half-close: the transport closes (after what is still to be written)

    def connection_lost(self, exc: Exception | None) -> None:
        hs = self.handshake
        if hs is not None and not hs.done():
            hs.set_exception(exc if exc is not None else ConnectionResetError("connection closed"))
        if self._app is not None:
            self._app.connection_lost(exc)
        else:
            self._lost = (exc,)

    def pause_writing(self) -> None:
        self._write_paused = True
        if self._app is not None:
            self._app.pause_writing()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._app is not None:
            self._app.resume_writing()

    # --- TLS -------------------------------------------------------------------------------------
    def _drive(self) -> None:
        hs = self.handshake
        if hs is None or hs.done():
            if self._app is not None:
                self._read_plaintext()
            return
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            self.flush()
            return
        except (ssl.SSLError, ValueError) as exc:
            self.flush()  # the alert
            self._close_raw()
            hs.set_exception(exc)
            return
        self.flush()
        self.client_start = b""  # not needed past the handshake
        hs.set_result(None)
        if self.raw is not None and not self.raw.is_closing():
            self.raw.pause_reading()  # until attach(): the stream protocol is not there yet

    def flush(self) -> None:
        """Send what OpenSSL wrote (nothing once the TCP transport is closing)."""
        data = self._out.read()
        alter = self.alter_once
        if data and alter is not None and self.handshake is not None and self.handshake.done():
            self.alter_once = None
            data = alter(data)
        raw = self.raw
        if data and raw is not None and not raw.is_closing():
            raw.write(data)

    def _close_raw(self) -> None:
        if self.raw is not None:
            self.raw.close()

    def _end_raw(self) -> None:
        """Close once the kernel took what is written (the alert), else abort: a peer that does not read
        holds nothing open."""
        raw = self.raw
        if raw is None:
            return
        if raw.get_write_buffer_size():
            raw.abort()
        else:
            raw.close()

    def _read_plaintext(self) -> None:
        app = self._app
        assert app is not None
        data = b""
        while not self._eof_given:
            try:
                data = self.obj.read(_RECORD_SIZE)
            except ssl.SSLWantReadError:
                break
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                data = b""
            except ssl.SSLError:  # a corrupt record: its alert is sent, the connection ends (connection_lost)
                self._eof_given = True
                self.flush()
                self._end_raw()
                break
            if not data:
                self._eof_given = True
                self.flush()
                if not app.eof_received():
                    self._close_raw()
                break
            app.data_received(data)
        self.flush()  # what reading made OpenSSL write: a no_renegotiation alert, a TLS 1.3 KeyUpdate

    def attach(self, app: asyncio.Protocol) -> asyncio.Transport:
        """Hand the connection to ``app`` after the handshake: its ``connection_made`` is called with the
        TLS transport, then it receives what already came (and the end, if the peer has gone)."""
        transport = _TlsTransport(self, app)
        self._app = app
        app.connection_made(transport)
        if self._write_paused:
            app.pause_writing()
        self._read_plaintext()
        if self._lost is not None:
            app.connection_lost(self._lost[0])
        elif self.raw is not None and not self.raw.is_closing():
            self.raw.resume_reading()
        return transport


def _retrieved(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()


class _TlsTransport(asyncio.Transport):
    """What the stream protocol writes to and closes: TLS over :class:`TlsAcceptProtocol` (module rules)."""

    def __init__(self, conn: TlsAcceptProtocol, app: asyncio.Protocol) -> None:
        super().__init__()
        self._conn = conn
        self._app: asyncio.BaseProtocol = app
        self._closing = False

    def _raw(self) -> asyncio.Transport:
        raw = self._conn.raw
        assert raw is not None
        return raw

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        obj = self._conn.obj
        if name == "ssl_object":
            return obj
        if name == "peercert":
            return obj.getpeercert()
        if name == "cipher":
            return obj.cipher()
        if name == "compression":
            return obj.compression()
        if name == "sslcontext":
            return obj.context
        if name == "tls_accept":
            return self._conn
        return self._raw().get_extra_info(name, default)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or self._raw().is_closing():
            return
        if data:
            self._conn.obj.write(bytes(data))
            self._conn.flush()

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(list_of_data))

    def can_write_eof(self) -> bool:
        return False

    def is_closing(self) -> bool:
        return self._closing or self._raw().is_closing()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        with contextlib.suppress(ssl.SSLError, ValueError):
            self._conn.obj.unwrap()  # close_notify; the peer's is not awaited
        self._conn.flush()
        self._raw().close()

    def abort(self) -> None:
        self._closing = True
        self._raw().abort()

    def pause_reading(self) -> None:
        self._raw().pause_reading()

    def resume_reading(self) -> None:
        self._raw().resume_reading()

    def is_reading(self) -> bool:
        return self._raw().is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._raw().set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._raw().get_write_buffer_size()

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._app

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._app = protocol
