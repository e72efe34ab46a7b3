"""The phone opening an HTTPS application server (directory, XML services, MIDlets; spec §E.7.1, §G.5).

Steps (spec §E.7.1, CSC-118699):

1. TLS connect with the phone's ``CERT_NONE`` client context (the profile's TLS versions) and take the
   server certificate (:func:`phoneemu.net.tls.peer_certificate_der`).
2. Decide with :func:`phoneemu.phone.rules.decide_https_server`: a CTL/ITL record with an HTTPS role →
   trusted; else, TVS usable → a cached valid answer within its TTL is used ("E.7.1-https-cached"),
   otherwise VERIFY with the full certificate is sent to the config's TVS servers
   (:func:`phoneemu.net.tvs_client.tvs_verify`, failover, TVS certificate checked against the ITL TVS
   records by :func:`phoneemu.phone.rules.tvs_server_trusted`; only refused servers →
   ``E.7.1-https-tvs-server-untrusted``); a valid answer is cached for its TTL. A certificate too large
   for a VERIFY request (16-bit body length, spec §E.2) is refused by the rule before anything is sent
   (``E.7.1-https-cert-too-large``), never reported as TVS unreachable.
3. The decision (and the pending "needs TVS" one) is recorded in the event log; a rejection adds the
   status message "Host Not Found" (spec §E.7.6).
4. Trusted: ``GET /`` is sent and the response read with the rules of the phone's file fetches
   (:func:`phoneemu.net.http.read_response`: interim 1xx skipped, Content-Length, chunked or read-to-EOF
   body, CRLF or bare-LF lines, a strict head), the whole exchange within ``timeout``; its status and
   body are kept in the result, whatever the status. A body above ``max_body`` is refused, never kept cut
   short; it, a malformed response, a time-out or a lost connection leave ``http_status`` None, the body
   empty and the problem in ``reason``. A body with neither Content-Length nor chunked framing, read to
   the connection's end, is kept only when TLS ended it with a close_notify (RFC 9112 §9.8, RFC 8446
   §6.1): a TCP close without one may be anyone on the path cutting the body short (a truncation
   attack), so it is refused like a malformed response, said so. Untrusted: the connection is closed
   without a request.

Plain HTTP (:func:`open_plain_http`): a config whose ``secureDirectoryURL`` is an ``http://`` URL (the
enterprise parameters' secure URLs set to plain HTTP, the workaround of seed "Update ITL File for Cisco
Unified IP Phones" step 4 and spec §G.11 while phones cannot verify the directory) makes the phone open
the directory over plain TCP: no TLS, no certificate, nothing to check — ``E.7.1-plain-http`` (ours), the
service works whatever the trust lists hold (:func:`directory_scheme` reads the config).

Our conventions: a server that cannot be reached (no TLS connection at all) gives
``HttpsResult(trusted=False, how="connect-failed", rule="")`` — no trust rule was applied — and the
status "Host Not Found". The HTTP exchange after a trusted handshake is best effort: a failure there
leaves ``trusted=True`` with the error in ``reason``. The TVS device name is ``SEP<MAC>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from phoneemu.errors import PhoneEmuError, TransportError
from phoneemu.formats import config as config_fmt
from phoneemu.net._oserror import os_error_text
from phoneemu.net.capture import note_connect, note_peer
from phoneemu.net.http import host_header, read_response
from phoneemu.net.tls import open_tls_connection, peer_certificate_der, phone_client_context
from phoneemu.phone import rules
from phoneemu.phone.events import Event, EventLog
from phoneemu.phone.profile import PhoneProfile
from phoneemu.phone.store import TrustStore, TvsAnswer, TvsResult, TvsStatus
from phoneemu.protocols import tvs as tvs_proto
from phoneemu.values import host_port

__all__ = ["HttpsResult", "directory_scheme", "ended_by_close_notify", "open_https", "open_plain_http",
           "read_to_close"]

_HOW = {
    "E.7.1-https-cert-in-trust-list": "trust-list",
    "E.7.1-https-vouched-by-tvs": "tvs",
    "E.7.1-https-cached": "tvs-cache",
}
_MAX_HEAD = 8192  # bytes of a response head (each interim one too), as phoneemu.net.http's default


@dataclass(frozen=True, kw_only=True, slots=True)
class HttpsResult:
    """How an HTTPS connection attempt ended: trusted or not, how, by which rule and why."""

    trusted: bool
    how: str  # "trust-list" | "tvs" | "tvs-cache" | "rejected" | "connect-failed" | "plain-http"
    rule: str
    reason: str
    server: str = ""
    status: str | None = None
    http_status: int | None = None
    body: bytes = b""


async def _verify(store: TrustStore, cert_der: bytes, *, device_name: str, versions: Sequence[str],
                  keylog: str | None, timeout: float, events: EventLog, now: int, mac: str) -> TvsResult:
    from phoneemu.net.tvs_client import tvs_verify

    servers = store.tvs_servers
    where = ", ".join(host_port(s.host, s.port) for s in servers)
    events.add(Event(time=now, phone=mac, kind="tvs", detail=f"VERIFY HTTPS server certificate to {where}"))
    check = rules.TvsServerCheck(store)
    try:
        reply = await tvs_verify(servers, device_name, cert_der, timeout=timeout,
                                 tls=phone_client_context(versions, keylog), accept_server=check)
    except TransportError as exc:
        if check.refused:
            events.add(Event(time=now, phone=mac, kind="tvs", detail=f"no trusted TVS server ({exc.kind}): "
                             f"{exc.message}"))
            return TvsStatus.SERVER_UNTRUSTED
        events.add(Event(time=now, phone=mac, kind="tvs",
                         detail=f"TVS unreachable ({exc.kind}): {exc.message}"))
        return TvsStatus.UNREACHABLE
    except (PhoneEmuError, OSError) as exc:
        events.add(Event(time=now, phone=mac, kind="tvs", detail=f"TVS exchange failed: {exc}"))
        return TvsStatus.UNREACHABLE
    if not reply.valid:
        return TvsStatus.NOT_FOUND
    return TvsAnswer.from_reply(cert_der, reply.roles, reply.ttl, cert_from_tvs=False)  # VERIFY: ours


def _ended_by_close_notify(writer: asyncio.StreamWriter) -> bool:
    """Whether the TLS connection behind ``writer``, read to its end, was ended by the peer's close_notify
    (its TLS object then reports a clean close: SSLZeroReturnError, or b"") rather than by a bare TCP
    close (the TLS object still waits for records: SSLWantReadError). True over plain TCP: nothing there
    can tell a cut from an end."""
    obj = writer.get_extra_info("ssl_object")
    return ended_by_close_notify(obj) if isinstance(obj, ssl.SSLObject) else True


def ended_by_close_notify(obj: ssl.SSLObject) -> bool:
    """Whether the TLS connection of ``obj``, read to its end, was ended by the peer's close_notify (a clean
    close: SSLZeroReturnError, or b"") rather than by a bare TCP close (SSLWantReadError / SSLEOFError:
    the object still waits for records). The HTTPS config download's client reads it too."""
    try:
        return obj.read(1) == b""
    except ssl.SSLZeroReturnError:
        return True
    except (ssl.SSLError, ValueError, OSError):  # SSLWantReadError: no close_notify came
        return False


def read_to_close(status: int, fields: dict[str, list[str]]) -> bool:
    """Whether the response's body was delimited by the connection's close (RFC 9112 §6.3 item 8: neither
    Transfer-Encoding nor Content-Length, and a status that has a body)."""
    framed = "transfer-encoding" in fields or "content-length" in fields
    return status not in (101, 204, 304) and not framed


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, *, timeout: float,
               max_body: int) -> tuple[int | None, bytes, str]:
    """``GET /`` with ``Host: host`` (:func:`phoneemu.net.http.host_header`: the port unless the scheme's
    default, RFC 9110 §7.2); (HTTP status, body, problem) — module docstring step 4. The response is read by
    :func:`phoneemu.net.http.read_response`, the rules of the phone's file fetches (one place for them):
    interim 1xx skipped, Content-Length / chunked / read-to-EOF bodies, CRLF or bare-LF lines, a strict
    head. The whole exchange is bounded by ``timeout`` (a server trickling bytes included). Any status
    is kept with its body (one other than 200 named in the problem). The status is None with an empty
    body when no complete response was read: a malformed one ("malformed HTTP response (why)"), a body
    above ``max_body`` (refused, never kept cut short), a body read to the connection's end that TLS did
    not end with a close_notify (maybe cut short: RFC 9112 §9.8), a time-out or a lost connection — the
    problem says which."""
    seen: list[int] = []

    async def exchange() -> tuple[int, dict[str, list[str]], bytes]:
        writer.write(f"GET / HTTP/1.1\r\nHost: {host}\r\nAccept-Encoding: identity\r\n"
                     f"Connection: close\r\n\r\n".encode())
        await writer.drain()
        return await read_response(reader, "/", max_size=max_body, max_header=_MAX_HEAD,
                                   check=lambda status, _fields: seen.append(status))

    try:
        status, fields, body = await asyncio.wait_for(exchange(), timeout)
    except TimeoutError:
        head = f" (HTTP {seen[-1]} head read)" if seen else ""
        return None, b"", f"no complete HTTP response within {timeout:g}s{head}"
    except TransportError as exc:
        if exc.kind == "too-large":
            return None, b"", f"HTTP {seen[-1]} body above {max_body} bytes, not kept ({exc.message})"
        head = f"HTTP {seen[-1]} head read, then " if seen else ""
        return None, b"", f"malformed HTTP response ({head}{exc.message})"
    except OSError as exc:
        return None, b"", f"HTTP exchange failed: {os_error_text(exc)}"
    if read_to_close(status, fields) and not _ended_by_close_notify(writer):
        return None, b"", (f"HTTP {status} body ({len(body)} bytes, no Content-Length, not chunked) ended by "
                           "a TCP close without the TLS close_notify: it may have been cut short on the way, "
                           "not kept (RFC 9112 §9.8; a server that sends Content-Length or a chunked "
                           "body, or ends its TLS with a close_notify — Python's ssl does on unwrap(), not "
                           "on close() — is read whole)")
    return status, body, "" if status == 200 else f"HTTP {status}, not 200"


async def open_https(host: str, port: int, *, store: TrustStore, profile: PhoneProfile, mac: str,
                     events: EventLog, clock: Callable[[], int], timeout: float = 5.0,
                     tvs_timeout: float = 5.0, keylog: str | Path | None = None,
                     max_body: int = 65536) -> HttpsResult:
    """Open ``https://host:port/`` as the phone would (see module docstring)."""
    server = host_port(host, port)
    log = str(keylog) if keylog is not None else None
    ctx = phone_client_context(profile.tls_versions, log)
    try:
        reader, writer = await open_tls_connection(host, port, ctx, timeout=timeout)
    except TransportError as exc:
        events.add(Event(time=clock(), phone=mac, kind="transport", file=server, reason=exc.message))
        events.status(rules.HTTPS_FAILED_STATUS)
        return HttpsResult(trusted=False, how="connect-failed", rule="", reason=exc.message, server=server,
                           status=rules.HTTPS_FAILED_STATUS)
    try:
        cert = peer_certificate_der(writer)
        d = rules.decide_https_server(store, cert, profile=profile, now=clock(), server=server)
        if d.pending and cert is not None and d.needs_tvs is not None:
            events.record(d, time=clock(), phone=mac)
            answer = await _verify(store, cert, device_name=tvs_proto.phone_device_name(
                                       profile.model, config_fmt.device_name_for(mac)),  # §E.4
                                   versions=profile.tls_versions, keylog=log, timeout=tvs_timeout,
                                   events=events, now=clock(), mac=mac)
            store.cache_tvs(d.needs_tvs, answer, clock())
            d = rules.decide_https_server(store, cert, profile=profile, now=clock(), tvs_answer=answer,
                                          server=server)
        events.record(d, time=clock(), phone=mac)
        if not d.accepted:
            return HttpsResult(trusted=False, how="rejected", rule=d.rule, reason=d.reason, server=server,
                               status=d.status)
        code, body, problem = await _get(reader, writer, host_header(host, port, 443), timeout=timeout,
                                        max_body=max_body)
        reason = d.reason if not problem else f"{d.reason}; {problem}"
        return HttpsResult(trusted=True, how=_HOW.get(d.rule, "trust-list"), rule=d.rule, reason=reason,
                           server=server, http_status=code, body=body)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


def directory_scheme(cfg: config_fmt.DeviceConfig | None) -> str:
    """``http`` when the config names an ``http://`` secure directory URL (module rules), else ``https``
    (also without one, or with one that is malformed: the phone keeps to HTTPS)."""
    if cfg is None:
        return "https"
    try:
        url = config_fmt.secure_directory_url(cfg)
    except PhoneEmuError:
        return "https"
    return "http" if url is not None and url.lower().startswith("http://") else "https"


async def open_plain_http(host: str, port: int, *, mac: str, events: EventLog, clock: Callable[[], int],
                          timeout: float = 5.0, max_body: int = 65536) -> HttpsResult:
    """Open ``http://host:port/`` (module rules: the config's secure URL is http://): no certificate is
    checked, ``E.7.1-plain-http``; unreachable: ``connect-failed`` and "Host Not Found"."""
    server = host_port(host, port)
    try:
        note_connect(host, port)  # a live capture's: the phones' host (phoneemu.net.capture rules)
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        note_peer(writer.get_extra_info("peername"))
    except (OSError, TimeoutError) as exc:
        reason = f"cannot connect to {server}: {exc or type(exc).__name__}"
        events.add(Event(time=clock(), phone=mac, kind="transport", file=server, reason=reason))
        events.status(rules.HTTPS_FAILED_STATUS)
        return HttpsResult(trusted=False, how="connect-failed", rule="", reason=reason, server=server,
                           status=rules.HTTPS_FAILED_STATUS)
    try:
        d = rules.plain_http_directory(server)
        events.record(d, time=clock(), phone=mac)
        code, body, problem = await _get(reader, writer, host_header(host, port, 80), timeout=timeout,
                                        max_body=max_body)
        return HttpsResult(trusted=False, how="plain-http", rule=d.rule,
                           reason=d.reason if not problem else f"{d.reason}; {problem}", server=server,
                           http_status=code, body=body)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(writer.wait_closed(), 1.0)
