"""Phone side of TVS over TLS: VERIFY and QUERY with failover across the config's servers (spec §E).

Rules:

* Servers are tried in priority order (``<TVS><members><member priority="0..4">``, lower first, up to
  5, spec §E.1); the first one that completes the exchange answers. A server that cannot be reached,
  times out, fails the TLS handshake, presents a certificate that ``accept_server`` refuses, or
  answers with a malformed/mismatched frame is skipped. When none answers:
  ``TransportError(kind=...)`` with the kind of the last failure — ``"unreachable"``, ``"timeout"``,
  ``"tls"`` (handshake failure or refused server certificate) or ``"protocol"`` — and every attempt in
  the message. A server that answers the ClientHello, but not with TLS (an HTTP server on the TVS port),
  is said so with its first bytes (``HOST:PORT: the server answered, but not with TLS (it begins 48 ('H'):
  looks like HTTP?)``, :mod:`phoneemu.net.tls_client`), not as a handshake failure nor as no
  answer; its kind stays ``"tls"``, and the phone's decision is the same: a TVS that cannot be asked is
  unreachable (spec §G.3.4).
* Time: ``timeout`` bounds each server's whole attempt — name lookup, connect, TLS handshake, request
  and response — with one deadline (a hung node that accepts TCP and never completes TLS, a trickle
  of bytes); a lookup is therefore bounded by ``timeout`` times the servers tried (at most 5 in a
  config: ``phoneemu boot --timeout`` 2 s → 10 s, ``fleet boot --tvs-timeout`` 10 s → 50 s). A
  host name Python cannot encode (an empty label, one over 63 characters) fails like one that does
  not resolve (``"unreachable"``), never with an exception out of the failover.
* The first server that completes the exchange answers, "unknown certificate" (STATUS 1) included:
  the next server is asked only when one gives no answer. The response is the first frame the server
  sends (§E.1, §E.2): one with another session id or message type than our request is a ``"protocol"``
  failure (never replaced by a later frame); whatever follows the response — a second response, a
  partial frame, garbage — is not part of the exchange and is ignored, in the same read or a later one
  (the connection is closed once the response is in; :class:`~phoneemu.protocols.tvs.TvsClientExchange`).
* One request and one response per TLS connection, like tvsc (spec §E.1).
* The TLS layer does not judge the server: phones compare the certificate TVS presents with the
  role-21 (TVS) record of their ITL (spec §E.1). The certificate seen is returned
  (:attr:`TvsReply.server_cert`) and may be checked during failover with ``accept_server``.
  ``tls=None`` uses a ``CERT_NONE`` context (TLS 1.2 to 1.3) built once per process. While
  ``accept_server`` runs, :func:`server_judged` names the server (``HOST:PORT``) whose certificate it
  judges, so that a caller's note of a refusal can say which server it was; a stand-in for this client
  (``predict``'s offline and remembered TVS) judges through :func:`judge_server` for the same notes.
* Session ids: our convention follows tvsc — a per-process counter starting at 1 (phones used
  1001, 1002 in CUCM logs; any value is echoed), unless ``session_id`` is given.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from phoneemu.errors import DecodeError, TransportError
from phoneemu.net.tls import client_context_verify_after_handshake
from phoneemu.net.tls_client import TlsClientConnection
from phoneemu.protocols import tvs
from phoneemu.values import host_port

__all__ = ["NO_TVS_ANSWER", "SERVER_REFUSED", "ServerAddress", "TvsReply", "default_tls_context",
           "judge_server", "server_judged", "server_order", "servers_to_try", "tvs_exchange", "tvs_query",
           "tvs_verify"]

#: How a TVS failure of every server begins; each server's own failure follows, ``; ``-separated.
NO_TVS_ANSWER = "no TVS server answered: "
#: A server's failure (after ``HOST:PORT: ``) when the phone refused its certificate (spec §E.1).
SERVER_REFUSED = "TVS certificate not accepted (not the ITL TVS record)"

_MAX_READS = 4096  # a response is at most a few hundred KiB: bounded all the same
_session_ids = itertools.count(1)
_default_ctx: ssl.SSLContext | None = None
_judged: contextvars.ContextVar[str | None] = contextvars.ContextVar("tvs_server_judged", default=None)


class _HasAddress(Protocol):
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def priority(self) -> int: ...


ServerAddress = _HasAddress | tuple[str, int]
"""A :class:`phoneemu.formats.config.Server` (host, port, priority) or a plain ``(host, port)``."""


@dataclass(frozen=True, kw_only=True)
class TvsReply:
    """The checked response plus what the phone saw of the server that gave it."""

    response: tvs.TvsResponse
    host: str
    port: int
    server_cert: bytes | None  # DER of the TLS server certificate (compare with the ITL TVS record)
    tls: str  # e.g. "TLSv1.3 TLS_AES_256_GCM_SHA384"
    failures: tuple[str, ...] = ()  # servers tried before this one, and why they failed

    @property
    def valid(self) -> bool:
        return self.response.valid

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def roles(self) -> tuple[int, ...]:
        return self.response.roles

    @property
    def ttl(self) -> int | None:
        return self.response.ttl

    @property
    def certificate(self) -> bytes | None:
        return self.response.certificate


def default_tls_context() -> ssl.SSLContext:
    """The ``CERT_NONE`` client context used when ``tls`` is None (TLS 1.2 to 1.3)."""
    global _default_ctx  # noqa: PLW0603 - one context per process: building one costs ~1 ms
    if _default_ctx is None:
        _default_ctx = client_context_verify_after_handshake()
    return _default_ctx


def server_judged() -> str | None:
    """``HOST:PORT`` of the TVS server whose certificate ``accept_server`` is judging, from inside that
    call (per task: phones booting side by side each see their own); None anywhere else."""
    return _judged.get()


def judge_server(accept_server: Callable[[bytes | None], bool], host: str, port: int,
                 cert: bytes | None) -> bool:
    """``accept_server(cert)`` about the server ``host``:``port``, which :func:`server_judged` names
    meanwhile (the refusal notes of the boot, spec §E.1)."""
    token = _judged.set(host_port(host, port))
    try:
        return accept_server(cert)
    finally:
        _judged.reset(token)


def server_order(servers: Sequence[ServerAddress]) -> list[tuple[str, int]]:
    """``(host, port)`` of ``servers`` in the order they are tried: priority, then as listed (§E.1)."""
    keyed: list[tuple[int, int, str, int]] = []
    for i, s in enumerate(servers):
        if isinstance(s, tuple):
            keyed.append((0, i, s[0], s[1]))
        else:
            keyed.append((s.priority, i, s.host, s.port))
    return [(host, port) for _p, _i, host, port in sorted(keyed)]


def servers_to_try(servers: Sequence[ServerAddress]) -> list[tuple[str, int]]:
    """:func:`server_order`, or TransportError ``unreachable`` "no TVS server configured" when there is
    none (the boot, ``predict`` offline and ``--tvs-live`` say it alike)."""
    order = server_order(servers)
    if not order:
        raise TransportError("no TVS server configured", kind="unreachable")
    return order


async def _one(host: str, port: int, request: tvs.TvsMessage, *, timeout: float, ctx: ssl.SSLContext,
               accept_server: Callable[[bytes | None], bool] | None
               ) -> tuple[tvs.TvsResponse, bytes | None, str]:
    try:
        conn = await TlsClientConnection.open(host, port, ctx, timeout=timeout)
    except ValueError as exc:  # a name IDNA cannot encode ("a..b", a label over 63 characters): no lookup
        raise TransportError(f"{host_port(host, port)}: cannot resolve: not a valid host name ({exc})",
                             kind="unreachable") from exc
    try:
        cert = conn.peer_cert
        if accept_server is not None and not judge_server(accept_server, host, port, cert):
            raise TransportError(f"{host_port(host, port)}: {SERVER_REFUSED}", kind="tls")
        exchange = tvs.TvsClientExchange(request)
        async with asyncio.timeout_at(conn.deadline):  # connect + handshake + exchange: one bound
            await conn.send(exchange.request_bytes)
            for _ in range(_MAX_READS):
                data = await conn.recv()
                if not data:
                    exchange.eof()  # raises: closed before a response
                resp = exchange.receive(data)
                if resp is not None:
                    return resp, cert, conn.description
        raise TransportError(f"{host_port(host, port)}: no complete TVS response in {_MAX_READS} reads",
                             kind="protocol")
    except TimeoutError:
        raise TransportError(f"{host_port(host, port)}: no TVS response within {timeout}s",
                             kind="timeout") from None
    except DecodeError as exc:
        raise TransportError(f"{host_port(host, port)}: bad TVS response: {exc}", kind="protocol") from exc
    finally:
        conn.close()


async def tvs_exchange(servers: Sequence[ServerAddress], request: tvs.TvsMessage, *, timeout: float = 5.0,
                       tls: ssl.SSLContext | None = None,
                       accept_server: Callable[[bytes | None], bool] | None = None) -> TvsReply:
    """Send ``request`` to the first server that answers (see module docstring)."""
    order = servers_to_try(servers)
    ctx = tls or default_tls_context()
    failures: list[str] = []
    last = "unreachable"
    for host, port in order:
        try:
            resp, cert, tls_text = await _one(host, port, request, timeout=timeout, ctx=ctx,
                                              accept_server=accept_server)
        except TransportError as exc:
            failures.append(str(exc))
            last = exc.kind
            continue
        return TvsReply(response=resp, host=host, port=port, server_cert=cert, tls=tls_text,
                        failures=tuple(failures))
    raise TransportError(NO_TVS_ANSWER + "; ".join(failures), kind=last)


def _sid(session_id: int | None) -> int:
    return session_id if session_id is not None else next(_session_ids) & 0xFFFFFFFF


async def tvs_verify(servers: Sequence[ServerAddress], device_name: str, cert_der: bytes, *,
                     timeout: float = 5.0, tls: ssl.SSLContext | None = None,
                     accept_server: Callable[[bytes | None], bool] | None = None,
                     session_id: int | None = None) -> TvsReply:
    """VERIFY (spec §E.3/§E.7.1): "is this certificate trusted, with which roles?"."""
    request = tvs.verify_request(_sid(session_id), device_name, cert_der)
    return await tvs_exchange(servers, request, timeout=timeout, tls=tls, accept_server=accept_server)


async def tvs_query(servers: Sequence[ServerAddress], device_name: str, subject: str, issuer: str,
                    serial: bytes, *, timeout: float = 5.0, tls: ssl.SSLContext | None = None,
                    accept_server: Callable[[bytes | None], bool] | None = None,
                    session_id: int | None = None) -> TvsReply:
    """QUERY (spec §E.3/§E.7.2): return the certificate with this issuer and serial (+ roles, TTL)."""
    request = tvs.query_request(_sid(session_id), device_name, subject, issuer, serial)
    return await tvs_exchange(servers, request, timeout=timeout, tls=tls, accept_server=accept_server)
