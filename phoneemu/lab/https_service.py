"""The lab HTTPS application server ("directory service"): TLS with the ``tomcat`` identity (spec §E.7.1).

Rules:

* TLS presents the cluster's application-server identity (:meth:`LabCluster.app_server_identity`):
  self-signed RSA-2048 like CUCM's Tomcat certificate, NOT in the ITL, vouched for by the cluster's
  TVS with role APP-SERVER (7). Phones therefore authenticate it through TVS VERIFY (spec §E.7.1,
  §G.5 "HTTPS XML services: APP-SERVER role, or TVS").
* HTTP is minimal, **our convention**: one request per connection (``Connection: close``); ``GET /``
  (or ``HEAD /``) answers 200 with a tiny ``CiscoIPPhoneText`` XML object; another path 404; another
  method 405 with ``Allow: GET, HEAD`` (RFC 9110 §15.5.6); a request head that is malformed, over
  ``max_header`` bytes, or not complete within ``read_timeout`` gets 400 (nothing on timeout or when the
  client closes first, e.g. a phone that did not trust the certificate) and the connection is closed.
  The head is read as the HTTP port reads it (:mod:`phoneemu.net.http`): lines end with CRLF or a bare LF
  (RFC 9112 §2.2), empty lines before the request line are skipped; malformed is a request line that is
  not ASCII, a head that holds a control character other than HTAB (a request-target with a LF, an ESC or a
  NUL would otherwise reach the log and the request log as written: a forged log line, terminal escapes), a
  request line not ``METHOD SP /target SP HTTP/1.<digit>`` (§3), or a field line not ``name: value`` (§5);
  the 400 is logged with why. A field value may hold obs-text, bytes 0x80 to 0xFF (RFC 9110 §5.5; the value
  is neither used nor logged; unlike the HTTP port): served (was 400, "non-ASCII request head", where the
  server before that reading served it). No file is served: only ``/`` exists, so a path (``/../``,
  ``%2e%2e``, a backslash) reaches nothing. A client that leaves before taking the answer is logged (INFO)
  and not counted as answered. Memory per connection is bounded by ``max_header``.
* ``on_log(peer, path, status)`` sees every answered request.
* The same handler serves the lab's HTTPS configuration download (``https-config``, TCP 6971,
  :mod:`.https_config_service`) with another ``answer`` (what a well-formed GET/HEAD's request-target gets:
  a status and, for 200, the body) and its own ``service`` name in the log: one way of reading and checking
  a request head (:func:`read_request_head`, :func:`parse_request_head`) for both. An ``answer`` that fails
  gets 500, logged with its traceback.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable

from phoneemu.values import host_port

__all__ = ["DIRECTORY_XML", "PLAIN_DIRECTORY_XML", "Answer", "HttpsAppHandler", "parse_request_head",
           "read_request_head"]

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
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            500: "Internal Server Error"}
#: what a well-formed GET or HEAD gets for its request-target: the status and, with 200, the body
Answer = Callable[[str], tuple[int, bytes]]
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # in a head line: a control character but HTAB
_VERSION = re.compile(r"HTTP/1\.[0-9]")  # RFC 9112 §2.3
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2: a method, a field name


def _response(status: int, body: bytes, *, head_only: bool = False,
              content_type: str = "text/xml; charset=utf-8") -> bytes:
    ctype = content_type if status == 200 else "text/plain; charset=utf-8"
    allow = "Allow: GET, HEAD\r\n" if status == 405 else ""  # RFC 9110 §15.5.6
    head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: {ctype}\r\n{allow}"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    return head if head_only else head + body


def _head_end(buf: bytes | bytearray) -> int:
    """Where the head in ``buf`` ends (after its blank line; CRLF or bare LF line ends, empty lines before
    the request line skipped), -1 while it has not."""
    start = len(buf) - len(buf.lstrip(b"\r\n"))
    ends = [i for i in (buf.find(b"\n\r\n", start), buf.find(b"\n\n", start)) if i >= 0]
    if not ends:
        return -1
    end = min(ends)
    return end + (3 if buf[end + 1:end + 2] == b"\r" else 2)


def parse_request_head(head: bytes) -> tuple[int, str, str, str]:
    """(status, method, target, why) of a request head (module rules): 400 with why for a malformed head
    (target and method then empty), 405 for a method other than GET and HEAD (its first 16 characters, the
    target's first 200), else 200: a well-formed GET or HEAD of ``target`` (whole, starting with ``/``),
    for the handler's ``answer`` to say what it gets."""
    text = head.decode("latin-1")  # each byte one character: a field value's obs-text stays itself
    lines = [line.removesuffix("\r") for line in text.lstrip("\r\n").split("\n")]
    if not lines[0].isascii():  # a field value may hold obs-text (RFC 9110 §5.5), the request line not (§3)
        return 400, "", "", "non-ASCII request line"
    bad = next((line for line in lines if _CONTROL.search(line)), None)
    if bad is not None:
        return 400, "", "", f"control character in the request head: {bad[:80]!r}"
    parts = lines[0].split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not _VERSION.fullmatch(parts[2]):
        return 400, "", "", f"malformed request line {lines[0][:80]!r}"
    for line in lines[1:]:
        name, colon, _value = line.partition(":")
        if line and (not colon or not _TOKEN.fullmatch(name)):
            return 400, "", "", f"malformed header field {line[:80]!r}"
    method, target = parts[0], parts[1]
    if method not in ("GET", "HEAD"):
        return 405, method[:16], target[:200], ""
    if not target.startswith("/"):
        return 400, "", "", f"request-target {target[:80]!r} does not start with /"
    return 200, method, target, ""


def _directory(body: bytes) -> Answer:
    """The directory's answer: ``body`` for ``/`` (any query), 404 for another path (module rules)."""
    return lambda target: (200, body) if target.split("?", 1)[0] == "/" else (404, b"")


async def read_request_head(reader: asyncio.StreamReader, *, read_timeout: float,
                            max_header: int) -> bytes | None:
    """The request head up to its blank line (module rules); None when over ``max_header`` bytes or cut
    short; b"" when the client closed without sending anything. TimeoutError when not whole within
    ``read_timeout`` seconds; OSError as the connection raises it."""
    buf = bytearray()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + read_timeout
    while _head_end(buf) < 0:
        left = deadline - loop.time()
        if left <= 0:
            raise TimeoutError
        chunk = await asyncio.wait_for(reader.read(4096), left)
        if not chunk:
            return None if buf else b""
        buf += chunk
        if len(buf) > max_header:
            return None
    return bytes(buf)


def _peer(writer: asyncio.StreamWriter) -> str:
    peername = writer.get_extra_info("peername")
    return host_port(peername[0], peername[1]) if peername else "?"


class HttpsAppHandler:
    """Per-connection handler for :class:`phoneemu.net.tls.TlsServer` (see module docstring): the directory
    (``body`` at ``/``) unless ``answer`` is given; ``service`` names it in the log (logger
    ``phoneemu.lab.https`` unless ``logger`` is given); a 200's ``Content-Type`` is ``content_type``."""

    def __init__(self, *, read_timeout: float = 10.0, max_header: int = 8192,
                 on_log: Callable[[str, str, int], None] | None = None, body: bytes = DIRECTORY_XML,
                 answer: Answer | None = None, service: str = "https", logger: logging.Logger | None = None,
                 content_type: str = "text/xml; charset=utf-8") -> None:
        self.read_timeout = read_timeout
        self.body = body
        self.max_header = max_header
        self.on_log = on_log
        self.answer = answer if answer is not None else _directory(body)
        self.service = service
        self.content_type = content_type
        self._log = logger if logger is not None else _log
        self.answered = 0

    def _answer(self, target: str) -> tuple[int, bytes]:
        """``answer``'s (status, body) of a well-formed GET/HEAD; its failure is a 500, logged."""
        try:
            return self.answer(target)
        except Exception:
            self._log.exception("%s: answer to %s failed", self.service, target[:200])
            return 500, b""

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        service, log = self.service, self._log
        try:
            head = await read_request_head(reader, read_timeout=self.read_timeout, max_header=self.max_header)
        except TimeoutError:
            log.info("%s: %s sent no complete request within %ss", service, peer, self.read_timeout)
            return
        except OSError as exc:  # e.g. a phone that did not trust us closing after the handshake
            log.info("%s: %s closed before a request: %s", service, peer, exc or type(exc).__name__)
            return
        if head == b"":
            log.info("%s: %s closed without a request", service, peer)
            return
        body = b""
        if head is None:
            status, method, target = 400, "", ""
            why = f"request head above {self.max_header} bytes or cut short"
        else:
            status, method, target, why = parse_request_head(head[:_head_end(head)])
            if status == 200:
                status, body = self._answer(target)
        path = target[:200]
        head_only = method == "HEAD"
        asked = path or f"(malformed: {why})"
        if status != 200:
            body = f"{status} {_REASONS.get(status, 'Error')}\n".encode()
        try:
            writer.write(_response(status, body, head_only=head_only, content_type=self.content_type))
            await writer.drain()
        except OSError as exc:  # ConnectionResetError: the client left before taking the answer
            log.info("%s: %s closed before taking the %d answer to %s: %s", service, peer, status, asked,
                     exc or type(exc).__name__)
            return
        self.answered += 1
        log.info("%s: %s %s -> %d", service, peer, asked, status)
        if self.on_log is not None:
            self.on_log(peer, path, status)
