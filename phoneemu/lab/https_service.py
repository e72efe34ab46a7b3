"""The lab HTTPS application server ("directory service"): TLS with the ``tomcat`` identity (spec §E.7.1).

Rules:

* TLS presents the cluster's application-server identity (:meth:`LabCluster.app_server_identity`):
  self-signed RSA-2048 like CUCM's Tomcat certificate, NOT in the ITL, vouched for by the cluster's
  TVS with role APP-SERVER (7). Phones therefore authenticate it through TVS VERIFY (spec §E.7.1,
  §G.5 "HTTPS XML services: APP-SERVER role, or TVS").
* HTTP is minimal, **our convention**: one request per connection (``Connection: close``); ``GET /``
  (or ``HEAD /``) answers 200 with a tiny ``CiscoIPPhoneText`` XML object; another path 404; another
  method 405; a request head that is malformed, over ``max_header`` bytes, or not complete within
  ``read_timeout`` gets 400 (nothing on timeout or when the client closes first, e.g. a phone that
  did not trust the certificate) and the connection is closed. A client that leaves before taking the
  answer is logged (INFO) and not counted as answered. Memory per
  connection is bounded by ``max_header``.
* ``on_log(peer, path, status)`` sees every answered request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from phoneemu.values import host_port

__all__ = ["DIRECTORY_XML", "PLAIN_DIRECTORY_XML", "HttpsAppHandler"]

_log = logging.getLogger("phoneemu.lab.https")

#: The body of ``GET /``: a CiscoIPPhoneText object, as a directory/XML service would return.
DIRECTORY_XML = (b'<?xml version="1.0" encoding="UTF-8"?>\n<CiscoIPPhoneText><Title>phoneemu lab directory'
                 b'</Title><Prompt>HTTPS via TVS</Prompt><Text>Directory service reached over HTTPS.</Text>'
                 b'</CiscoIPPhoneText>\n')
#: the body over plain HTTP (the ``directory`` service: secure URLs set to http://, ``secure-urls``)
PLAIN_DIRECTORY_XML = (b'<?xml version="1.0" encoding="UTF-8"?>\n<CiscoIPPhoneText>'
                       b'<Title>phoneemu lab directory</Title><Prompt>plain HTTP</Prompt>'
                       b'<Text>Directory service reached over HTTP (no TLS, no certificate checked).</Text>'
                       b'</CiscoIPPhoneText>\n')
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


def _response(status: int, body: bytes, *, head_only: bool = False) -> bytes:
    ctype = "text/xml; charset=utf-8" if status == 200 else "text/plain; charset=utf-8"
    head = (f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    return head if head_only else head + body


def _peer(writer: asyncio.StreamWriter) -> str:
    peername = writer.get_extra_info("peername")
    return host_port(peername[0], peername[1]) if peername else "?"


class HttpsAppHandler:
    """Per-connection handler for :class:`phoneemu.net.tls.TlsServer` (see module docstring)."""

    def __init__(self, *, read_timeout: float = 10.0, max_header: int = 8192,
                 on_log: Callable[[str, str, int], None] | None = None, body: bytes = DIRECTORY_XML) -> None:
        self.read_timeout = read_timeout
        self.body = body
        self.max_header = max_header
        self.on_log = on_log
        self.answered = 0

    async def _read_head(self, reader: asyncio.StreamReader) -> bytes | None:
        """The request head up to the blank line; None when over the limit or cut short; b"" when the
        client closed without sending anything."""
        buf = bytearray()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.read_timeout
        while b"\r\n\r\n" not in buf:
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError
            chunk = await asyncio.wait_for(reader.read(4096), left)
            if not chunk:
                return None if buf else b""
            buf += chunk
            if len(buf) > self.max_header:
                return None
        return bytes(buf)

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        try:
            head = await self._read_head(reader)
        except TimeoutError:
            _log.info("https: %s sent no complete request within %ss", peer, self.read_timeout)
            return
        except OSError as exc:  # e.g. a phone that did not trust us closing after the handshake
            _log.info("https: %s closed before a request: %s", peer, exc or type(exc).__name__)
            return
        if head == b"":
            _log.info("https: %s closed without a request", peer)
            return
        status, path, head_only = 400, "", False
        if head is not None:
            line = head.split(b"\r\n", 1)[0]
            parts = line.split(b" ")
            if len(parts) == 3 and parts[2].startswith(b"HTTP/1.") and parts[1].startswith(b"/"):
                method = parts[0]
                path = parts[1].decode("ascii", "replace")[:200]
                head_only = method == b"HEAD"
                if method not in (b"GET", b"HEAD"):
                    status = 405
                else:
                    status = 200 if path.split("?", 1)[0] == "/" else 404
        body = self.body if status == 200 else f"{status} {_REASONS[status]}\n".encode()
        try:
            writer.write(_response(status, body, head_only=head_only))
            await writer.drain()
        except OSError as exc:  # ConnectionResetError: the client left before taking the answer
            _log.info("https: %s closed before taking the %d answer to %s: %s", peer, status,
                      path or "(malformed)", exc or type(exc).__name__)
            return
        self.answered += 1
        _log.info("https: %s %s -> %d", peer, path or "(malformed)", status)
        if self.on_log is not None:
            self.on_log(peer, path, status)
