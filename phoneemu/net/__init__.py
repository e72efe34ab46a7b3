"""phoneemu.net — the only package with sockets: TFTP, HTTP 6970, fetchers, TLS, pcap capture.

See docs/internals.md "phoneemu.net". Submodules: :mod:`.tftp` (with :mod:`.tftp_codec`,
:mod:`.tftp_server`, :mod:`.tftp_client`), :mod:`.http`, :mod:`.fetch`, :mod:`.tls`, :mod:`.capture`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from phoneemu.lazy_exports import lazy_exports

if TYPE_CHECKING:  # imported when first used (phoneemu.lazy_exports: start-up time)
    from phoneemu.net.capture import PcapWriter, TcpFlow, read_pcap
    from phoneemu.net.fetch import Fetcher, HttpFetcher, HttpThenTftpFetcher, MemoryFetcher, TftpFetcher
    from phoneemu.net.http import HttpServer, http_get
    from phoneemu.net.tftp import TftpClientPool, TftpRequestEvent, TftpServer, tftp_get

__all__ = [
    "Fetcher",
    "HttpFetcher",
    "HttpServer",
    "HttpThenTftpFetcher",
    "MemoryFetcher",
    "PcapWriter",
    "TcpFlow",
    "TftpClientPool",
    "TftpFetcher",
    "TftpRequestEvent",
    "TftpServer",
    "http_get",
    "read_pcap",
    "tftp_get",
]

_HOME = {
    **dict.fromkeys(("PcapWriter", "TcpFlow", "read_pcap"), "capture"),
    **dict.fromkeys(("Fetcher", "HttpFetcher", "HttpThenTftpFetcher", "MemoryFetcher", "TftpFetcher"),
                    "fetch"),
    **dict.fromkeys(("HttpServer", "http_get"), "http"),
    **dict.fromkeys(("TftpClientPool", "TftpRequestEvent", "TftpServer", "tftp_get"), "tftp"),
}
if not TYPE_CHECKING:  # mypy sees the imports above, and no __getattr__ making every other name Any
    __getattr__, __dir__ = lazy_exports(__name__, _HOME)
