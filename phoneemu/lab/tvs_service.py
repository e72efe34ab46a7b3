"""The lab TVS server: TLS on TCP 2445 answering VERIFY and QUERY from the cluster (spec §E, §H.6).

Rules:

* TLS with the cluster's TVS identity (the certificate with role TVS (21) in the ITL, spec §E.1).
  TLS 1.0 to 1.3 are accepted (7900-series phones speak only TLS 1.0, §E.1); below TLS 1.2 the
  cipher string drops to ``@SECLEVEL=0`` (see :mod:`phoneemu.net.tls`).
* No client certificate is requested. Real phones present their LSC/MIC (§E.1) but tvsd runs with
  ``CERT_NONE`` and the answer does not depend on who asks, so neither do we.
* The decision is :func:`phoneemu.protocols.tvs.answer` with the cluster's lookup (spec §E.6), the
  same steps as :class:`phoneemu.protocols.tvs.TvsServerConnection` (we drive its
  :class:`~phoneemu.protocols.tvs.FrameDecoder` directly to log each request's result and to tell a
  frame cut by EOF from a clean close):
  found → STATUS 0 [+ CERTIFICATE for QUERY] + ROLES + TTL; unknown → STATUS 1.
* tvsd/tvsc exchange one request and one response per connection (§E.1); whether CUCM keeps the
  connection is [UNK]. Our convention: we answer every complete request on the connection and keep
  reading until the client closes, bounded by ``max_requests`` per connection (frames beyond it in
  the same read are not answered) and by ``read_timeout`` for each request: from the connection's
  start or the previous answer to the end of the next complete frame. Bytes that do not complete a
  frame do not extend it, so a client sending one byte at a time cannot hold the connection.
* Each connection is logged like CUCM's "TLS HS Done" line (§H.6): peer, TLS version, cipher, then
  one line per request with type, device name and result. A malformed, truncated or unexpected
  frame closes that one connection with the reason logged (it never stops the server), and so does a
  client that leaves before taking its answer (no exception escapes the handler); memory per
  connection stays bounded by one frame (:class:`phoneemu.protocols.tvs.FrameDecoder`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from phoneemu.errors import PhoneEmuError
from phoneemu.protocols import tvs
from phoneemu.values import host_port

__all__ = ["TvsConnectionLog", "TvsHandler", "address_text", "answer_frames", "tls_summary"]

_log = logging.getLogger("phoneemu.lab.tvs")

_READ_SIZE = 65536


@dataclass(frozen=True, kw_only=True)
class TvsConnectionLog:
    """One request answered (or one connection refused) by the TVS server."""

    peer: str
    tls: str
    request: str  # "VERIFY" | "QUERY" | "" (no request: malformed or idle)
    device_name: str
    outcome: str  # "valid" | "invalid" | "malformed: ..." | "timeout" | ...


_Pair = tuple[tvs.VerifyRequest | tvs.QueryRequest, tvs.TvsMessage]


def answer_frames(decoder: tvs.FrameDecoder, data: bytes, answer: Callable[[tvs.TvsMessage], _Pair],
                  *, limit: int) -> tuple[list[_Pair], PhoneEmuError | None]:
    """Feed ``data``; the (request, reply) of every complete frame up to the first bad one, at most
    ``limit`` of them (the connection's ``max_requests`` left: the frames beyond are not answered),
    and the error that stopped it (None: all good). A valid frame followed by garbage in the same read
    is still answered; the caller sends the replies, then reports the error and closes."""
    replies: list[_Pair] = []
    try:
        for msg in decoder.feed(data)[:max(0, limit)]:
            replies.append(answer(msg))
    except PhoneEmuError as exc:
        return replies, exc
    return replies, decoder.error


def tls_summary(writer: asyncio.StreamWriter) -> str:
    """``TLSv1.2 ECDHE-RSA-AES256-GCM-SHA384`` for a TLS stream (``plain`` when not TLS)."""
    obj = writer.get_extra_info("ssl_object")
    if not isinstance(obj, ssl.SSLObject):
        return "plain"
    cipher = obj.cipher()
    return f"{obj.version()} {cipher[0] if cipher else '?'}"


def address_text(addr: object) -> str:
    """``host:port`` of a socket address, ``[host]:port`` for IPv6, ``?`` when there is none."""
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = str(addr[0])
        return host_port(host, addr[1])
    return "?"


def peer_text(writer: asyncio.StreamWriter) -> str:
    return address_text(writer.get_extra_info("peername"))


class TvsHandler:
    """Per-connection handler for :class:`phoneemu.net.tls.TlsServer` (one instance per server).

    ``lookup`` is the cluster's :data:`phoneemu.protocols.tvs.TvsLookup`; ``on_log`` receives a
    :class:`TvsConnectionLog` per request and per refused connection.
    """

    def __init__(self, lookup: tvs.TvsLookup, *, read_timeout: float = 10.0, max_requests: int = 16,
                 on_log: Callable[[TvsConnectionLog], None] | None = None) -> None:
        self.lookup = lookup
        self.read_timeout = read_timeout
        self.max_requests = max_requests
        self.on_log = on_log
        self.answered = 0
        self.refused = 0

    def _emit(self, entry: TvsConnectionLog) -> None:
        if self.on_log is not None:
            try:
                self.on_log(entry)
            except Exception:
                _log.exception("tvs: log callback failed")

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = peer_text(writer)
        tls = tls_summary(writer)
        _log.info("tvs: %s TLS HS Done (%s)", peer, tls)
        decoder = tvs.FrameDecoder()
        seen = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.read_timeout  # for the next complete request (module docstring)
        while True:
            try:
                data = await asyncio.wait_for(reader.read(_READ_SIZE), max(0.0, deadline - loop.time()))
            except TimeoutError:
                if seen == 0 or decoder.buffered:
                    self._refuse(peer, tls, f"timeout: no complete request within {self.read_timeout}s "
                                            f"({decoder.buffered} byte(s) buffered)")
                else:
                    _log.debug("tvs: %s idle for %ss after %d request(s): closing", peer,
                               self.read_timeout, seen)
                return
            except OSError as exc:  # ConnectionError and ssl.SSLError included
                self._refuse(peer, tls, f"connection lost: {exc}")
                return
            if not data:
                if decoder.buffered:
                    self._refuse(peer, tls, f"truncated: connection closed inside a frame "
                                            f"({decoder.buffered} byte(s) buffered)")
                return
            replies, bad = answer_frames(decoder, data, self._answer, limit=self.max_requests - seen)
            if bad is not None and not replies:
                self._refuse(peer, tls, f"malformed: {bad}")
                return
            for req, reply in replies:
                seen += 1
                kind = "VERIFY" if isinstance(req, tvs.VerifyRequest) else "QUERY"
                outcome = "valid" if reply.get(tvs.TvsTag.STATUS) == bytes([tvs.TvsStatus.VALID]) \
                    else "invalid"
                self.answered += 1
                _log.info("tvs: %s %s %s from %s: %s", peer, tls, kind, req.device_name, outcome)
                self._emit(TvsConnectionLog(peer=peer, tls=tls, request=kind, device_name=req.device_name,
                                            outcome=outcome))
                writer.write(tvs.encode(reply))
            if replies:
                deadline = loop.time() + self.read_timeout
                try:
                    await writer.drain()
                except OSError as exc:  # the client left before taking the answers (ConnectionResetError)
                    self._refuse(peer, tls, f"connection lost before the answer was taken: {exc}")
                    return
            if bad is not None:  # garbage after good frames in the same read: answered them first
                self._refuse(peer, tls, f"malformed: {bad}")
                return
            if seen >= self.max_requests:
                _log.info("tvs: %s reached %d requests: closing", peer, self.max_requests)
                return

    def _answer(self, msg: tvs.TvsMessage) -> tuple[tvs.VerifyRequest | tvs.QueryRequest, tvs.TvsMessage]:
        """Same steps as :class:`phoneemu.protocols.tvs.TvsServerConnection`, keeping the typed pair."""
        req = tvs.parse_request(msg)
        tvs.validate_device_name(req.device_name)  # lenient: tvsd's strict check is optional (§E.6)
        return req, tvs.answer(req, self.lookup)

    def _refuse(self, peer: str, tls: str, reason: str) -> None:
        self.refused += 1
        _log.warning("tvs: %s (%s) closed: %s", peer, tls, reason)
        self._emit(TvsConnectionLog(peer=peer, tls=tls, request="", device_name="", outcome=reason))
