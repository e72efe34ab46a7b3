"""TFTP for phoneemu (spec §C.6, §H.1 UDP 69): the one import point for server, client and codec.

The implementation is split: :mod:`phoneemu.net.tftp_codec` (sans-I/O packets and options),
:mod:`phoneemu.net.tftp_server` (read-only asyncio server) and :mod:`phoneemu.net.tftp_client`
(:func:`tftp_get` and the socket-reusing :class:`TftpClientPool`).
"""

from __future__ import annotations

from phoneemu.net.tftp_client import DEFAULT_MAX_SIZE, TftpClientPool, tftp_get
from phoneemu.net.tftp_codec import ErrorCode, decode, encode, negotiated, unsafe_name_reason
from phoneemu.net.tftp_server import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    Provider,
    TftpRequestEvent,
    TftpServer,
    provider_from,
)

__all__ = [
    "DEFAULT_MAX_SIZE",
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "ErrorCode",
    "Provider",
    "TftpClientPool",
    "TftpRequestEvent",
    "TftpServer",
    "decode",
    "encode",
    "negotiated",
    "provider_from",
    "tftp_get",
    "unsafe_name_reason",
]
