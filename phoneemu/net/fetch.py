"""The fetcher interface phones download files through (spec §C.6 boot files, §H.1 ports).

Rules:

* :class:`Fetcher`: ``async fetch(name) -> bytes`` where ``name`` is the TFTP file name; failures raise
  :class:`TransportError` with ``kind`` "not-found" (normal for trust files, §C.6), "timeout",
  "refused", "unreachable", "too-large", "protocol" or "error".
* :class:`HttpThenTftpFetcher` asks HTTP port 6970 first and falls back to TFTP when the HTTP
  connection fails (kinds "unreachable", "timeout", "protocol"; §H.1 "TFTP on failure"), and when the
  HTTP server answers with a server error (5xx: e.g. a 503 from a server at its connection cap) or a
  redirect (3xx: never followed, so a redirect to another host reaches nothing; the file is asked of
  the configured TFTP server instead). An answer that is no HTTP file server's (kind "protocol": not
  HTTP, malformed framing, an unrequested coding, a 101 Switching Protocols the GET never asked for) falls
  back as a failed connection does. Whether an HTTP 404 also falls back is configurable
  (``fallback_on_not_found``, default False: our choice); a 403 and other 4xx do not fall back.
  ``last_fallback`` keeps the HTTP failure behind the last fetch's fallback (None when HTTP answered or
  no fallback was tried), so a boot's timeline can say why a file came over TFTP.
* Each fetcher says which transport answered its last successful fetch in ``transport`` ("tftp",
  "http" or "memory"), so a boot can report what each file came over.
* Time bounds (our convention; spec §H.1 and §H.3 name no whole-download timer): a TFTP fetcher's
  ``timeout`` bounds each datagram's wait and an HTTP fetcher's each wait of its exchange (the connection,
  the response head, each read of the body: a body still coming is not cut); both take ``max_time``, the
  cap on one whole download (the phone's ``fetch_max_time``). :class:`HttpThenTftpFetcher` applies each
  transport's own: a file HTTP failed is then asked of TFTP with the whole TFTP cap.
* A fetcher that talks TFTP counts its retransmissions (RFC 1350 timeouts, spec §H.3) in
  ``retransmits``, over its whole life: the boot reads it before and after each fetch and reports the
  difference. Fetchers without one (HTTP only, in memory) never retransmit.
* A fetcher that talks TFTP without a pool says how much of the file under way it has received in
  ``bytes_so_far()`` (None between downloads, or with a pool: a fleet's phones pay nothing for it): the
  transfer's own count, read when asked — nothing per block (``boot``'s word on a slow file). So does one
  that talks HTTP: the body bytes of the response under way (:func:`~phoneemu.net.http.http_get`'s
  ``on_start``). ``asking`` names the transport of the file under way ("" between downloads): HTTP, then
  TFTP once it falls back, for :class:`HttpThenTftpFetcher` (was: its HTTP bytes were never counted, and
  a slow HTTP download was said as a server that does not answer).
* :class:`MemoryFetcher` serves a provider (callable or mapping) through the same interface, with the
  same name policy as the servers, so the lab can be used in memory (design habit 9).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol, runtime_checkable

from phoneemu.errors import TransportError
from phoneemu.net.http import DEFAULT_MAX_TIME as DEFAULT_HTTP_MAX_TIME
from phoneemu.net.http import http_get
from phoneemu.net.tftp_client import DEFAULT_MAX_SIZE, TftpClientPool, tftp_get
from phoneemu.net.tftp_codec import unsafe_name_reason

__all__ = ["Fetcher", "HttpFetcher", "HttpThenTftpFetcher", "MemoryFetcher", "TftpFetcher"]


@runtime_checkable
class Fetcher(Protocol):
    async def fetch(self, name: str) -> bytes: ...


class _CountsItsDownload:
    """What a fetcher says of the download under way (module docstring): ``asking`` and ``bytes_so_far``,
    read from the counter the transfer hands to :meth:`_started` as it starts (``on_start``), dropped when
    the download ends (``_under_way = None``)."""

    transport: str
    _under_way: Callable[[], int] | None  # the running download's count (None: between downloads)

    def _started(self, bytes_received: Callable[[], int]) -> None:
        self._under_way = bytes_received

    @property
    def asking(self) -> str:
        """This fetcher's ``transport`` while a download is under way, else "" (module docstring)."""
        return self.transport if self._under_way is not None else ""

    def bytes_so_far(self) -> int | None:
        """Bytes of the file under way received so far (over HTTP: of its body); None between downloads or
        with a TFTP pool (module docstring)."""
        under_way = self._under_way
        return None if under_way is None else under_way()


class TftpFetcher(_CountsItsDownload):
    """TFTP (UDP 69 by default); uses ``pool`` when given (thousands of phones in one loop)."""

    transport = "tftp"

    def __init__(self, host: str, port: int = 69, *, blksize: int | None = None, timeout: float = 1.0,
                 retries: int = 5, tsize: bool = False, max_size: int = DEFAULT_MAX_SIZE,
                 pool: TftpClientPool | None = None, max_time: float | None = None) -> None:
        self.host = host
        self.max_time = max_time  # whole-transfer cap (tftp_get ``max_time``), None: none
        self.port = port
        self.blksize = blksize
        self.timeout = timeout
        self.retries = retries
        self.tsize = tsize
        self.max_size = max_size
        self.pool = pool
        self.retransmits = 0  # timeouts after which a request or ACK was sent again (all fetches)
        self._under_way = None  # the running download's count (no pool)

    def _retransmitted(self) -> None:
        self.retransmits += 1

    def fetch(self, name: str) -> Coroutine[Any, Any, bytes]:
        """The download of ``name``, awaited as an ``async def fetch`` is. With a pool it is the pool's own
        coroutine, not one wrapped in another of ours: each wait of a transfer resumes one frame less (a
        fleet's phones fetch five files a boot, issue #6)."""
        pool = self.pool
        if pool is None:
            return self._fetch_alone(name)
        # Options left unset here fall back to the pool's own defaults.
        opts: dict[str, object] = {"timeout": self.timeout, "retries": self.retries, "tsize": self.tsize,
                                   "max_size": self.max_size, "on_retransmit": self._retransmitted,
                                   "max_time": self.max_time}
        if self.blksize is not None:
            opts["blksize"] = self.blksize
        return pool.get(self.host, self.port, name, **opts)

    async def _fetch_alone(self, name: str) -> bytes:
        """The download over a socket of its own (:func:`tftp_get`), counted while under way."""
        try:
            return await tftp_get(self.host, self.port, name, blksize=self.blksize, timeout=self.timeout,
                                  retries=self.retries, tsize=self.tsize, max_size=self.max_size,
                                  on_retransmit=self._retransmitted, max_time=self.max_time,
                                  on_start=self._started)
        finally:
            self._under_way = None


class HttpFetcher(_CountsItsDownload):
    """HTTP GET on port 6970 (spec §H.1); ``timeout`` bounds each wait, ``max_time`` the whole download
    (module docstring)."""

    transport = "http"

    def __init__(self, host: str, port: int = 6970, *, timeout: float = 5.0,
                 max_size: int = DEFAULT_MAX_SIZE, max_time: float | None = DEFAULT_HTTP_MAX_TIME) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.max_time = max_time  # whole-download cap (http_get ``max_time``), None: none
        self.max_size = max_size
        self._under_way = None  # the running request's body count

    async def fetch(self, name: str) -> bytes:
        try:
            return await http_get(self.host, self.port, name, timeout=self.timeout, max_time=self.max_time,
                                  max_size=self.max_size, on_start=self._started)
        finally:
            self._under_way = None


class HttpThenTftpFetcher:
    """HTTP 6970 first, TFTP when the HTTP connection fails (spec §H.1)."""

    FALLBACK_KINDS = frozenset({"unreachable", "timeout", "protocol"})

    def __init__(self, http: HttpFetcher, tftp: TftpFetcher, *, fallback_on_not_found: bool = False) -> None:
        self.http = http
        self.tftp = tftp
        self.fallback_on_not_found = fallback_on_not_found
        self.last_transport = ""  # "http" or "tftp": which one answered the last fetch
        self.last_fallback: TransportError | None = None  # the HTTP failure the last fetch fell back from

    @property
    def transport(self) -> str:
        """Which one answered the last fetch: "http" or "tftp" ("" before the first)."""
        return self.last_transport

    @property
    def retransmits(self) -> int:
        """The TFTP fallback's retransmissions (HTTP runs over TCP: none of its own)."""
        return self.tftp.retransmits

    @property
    def asking(self) -> str:
        """The transport of the file under way: "http", "tftp" once it fell back, "" between fetches."""
        return self.http.asking or self.tftp.asking

    def bytes_so_far(self) -> int | None:
        """Bytes of the file under way over the transport :attr:`asking` (None between fetches)."""
        return self.http.bytes_so_far() if self.http.asking else self.tftp.bytes_so_far()

    async def fetch(self, name: str) -> bytes:
        self.last_fallback = None
        try:
            data = await self.http.fetch(name)
        except TransportError as exc:
            if (exc.kind in self.FALLBACK_KINDS or (self.fallback_on_not_found and exc.kind == "not-found")
                    or (exc.kind == "error" and isinstance(exc.code, int) and (300 <= exc.code < 400
                                                                               or 500 <= exc.code < 600))):
                self.last_transport = "tftp"
                self.last_fallback = exc
                return await self.tftp.fetch(name)
            self.last_transport = "http"
            raise
        self.last_transport = "http"
        return data


class MemoryFetcher:
    """Serve ``provider(name) -> bytes | None`` (or a mapping) through the Fetcher interface."""

    transport = "memory"

    def __init__(self, provider: Callable[[str], bytes | None] | Mapping[str, bytes], *,
                 max_size: int = DEFAULT_MAX_SIZE) -> None:
        if isinstance(provider, Mapping):
            mapping = provider
            self._get: Callable[[str], bytes | None] = mapping.get
        else:
            self._get = provider
        self.max_size = max_size
        self.requests: collections.deque[str] = collections.deque(maxlen=10_000)  # recent names

    async def fetch(self, name: str) -> bytes:
        self.requests.append(name)
        reason = unsafe_name_reason(name)
        if reason is not None:
            raise TransportError(f"access violation: {reason}", kind="refused", code=2, path=name)
        data = self._get(name)
        if data is None:
            raise TransportError("File not found", kind="not-found", code=1, path=name)
        if len(data) > self.max_size:
            raise TransportError(f"larger than {self.max_size} bytes", kind="too-large", path=name)
        return data
