"""phoneemu.net — the only package with sockets: TFTP, HTTP 6970, fetchers, TLS, pcap capture.

See docs/internals.md "phoneemu.net". Submodules: :mod:`.tftp` (with :mod:`.tftp_codec`,
:mod:`.tftp_server`, :mod:`.tftp_client`), :mod:`.http`, :mod:`.fetch`, :mod:`.tls`, :mod:`.capture`.
"""

from __future__ import annotations

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
