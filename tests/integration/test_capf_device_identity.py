"""The lab CAPF server by existing certificate and its log, over loopback (spec §F.4, §F.7, §F.9)."""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from phoneemu.crypto import certs
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.net.capf_client import capf_session
from phoneemu.net.tls import client_context_verify_after_handshake, open_tls_connection
from phoneemu.protocols import capf
from tests.helpers import lab_template, run

T = TypeVar("T")
HOST = "127.0.0.1"
MAC = "0011223344C1"
MAC2 = "0011223344C2"

template = lab_template("capfwalk", seed=23,
                        phones={MAC: {"lsc_key": "rsa1024"}, MAC2: {"lsc_key": "rsa1024"}})


def with_servers(cluster: LabCluster, body: Callable[[LabServers], Awaitable[T]]) -> T:
    async def main() -> T:
        async with LabServers(cluster) as servers:
            return await body(servers)
    return run(main())


def _by_mic(cluster: LabCluster, device_mac: str, mic_of: str) -> capf.CapfClientSession:
    mic, key = cluster.phone_identity(mic_of)
    return capf.CapfClientSession(device_name=f"SEP{device_mac}", cert_der=certs.cert_der(mic), cert_key=key,
                                  auth_mode=capf.AuthType.MIC)


def test_another_phones_mic_does_not_authenticate(cluster: LabCluster) -> None:
    """By existing certificate (§F.7) the certificate authenticates the device it names (§F.9): a phone
    holding another phone's MIC (and its key) is refused, REASON 7, nothing recorded; its own MIC enrols.
    Before, any MIC of the lab's manufacturer CA enrolled any device."""
    cluster.set_capf([MAC2], "install", auth_mode=capf.AuthType.MIC)

    async def body(servers: LabServers) -> None:
        addr = (HOST, servers.ports["capf"])
        out = await capf_session(addr, _by_mic(cluster, MAC2, MAC), timeout=10)
        assert out.outcome == "rejected" and out.result.reason == capf.Reason.FAILURE
        assert cluster.phone_lsc(MAC2) is None and cluster.capf_pending(MAC2) is not None
        out = await capf_session(addr, _by_mic(cluster, MAC2, MAC2), timeout=10)
        assert out.outcome == "installed"
        assert cluster.phone_lsc(MAC2) is not None
        [refused, _] = [r for r in servers.requests if r.service == "capf"]
        assert refused.outcome == "bad-auth"

    with_servers(cluster, body)


def test_an_expired_lsc_does_not_authenticate(cluster: LabCluster, caplog: pytest.LogCaptureFixture) -> None:
    """An LSC past its validity at the lab clock does not authenticate (§F.7: the chain is validated;
    ``lab clock --advance``): REASON 7, the log says expired; the MIC still does (mode 4). Before, an LSC
    years out of date enrolled the phone again."""
    cluster.set_capf([MAC], "install", auth_mode=capf.AuthType.MIC)

    async def body(servers: LabServers) -> None:
        addr = (HOST, servers.ports["capf"])
        out = await capf_session(addr, _by_mic(cluster, MAC, MAC), timeout=10)
        assert out.outcome == "installed" and out.result.certificate is not None and out.result.key
        lsc_der, lsc_key = out.result.certificate, out.result.key
        cluster.advance_clock(400 * 86400)  # the LSC lasts 365 days (§F.9)
        cluster.set_capf([MAC], "install", auth_mode=capf.AuthType.LSC)
        by_lsc = capf.CapfClientSession(device_name=f"SEP{MAC}", cert_der=lsc_der, cert_key=lsc_key,
                                        current_lsc=lsc_der, auth_mode=capf.AuthType.LSC)
        with caplog.at_level(logging.INFO, logger="phoneemu.lab.capf"):
            out = await capf_session(addr, by_lsc, timeout=10)
        assert out.outcome == "rejected" and out.result.reason == capf.Reason.FAILURE
        kept = cluster.phone_lsc(MAC)
        assert kept is not None and certs.cert_der(kept) == lsc_der  # nothing recorded
        assert any("expired at the lab clock" in r.getMessage() for r in caplog.records)

    with_servers(cluster, body)


def test_a_hostile_device_name_is_logged_on_one_short_line(cluster: LabCluster,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """DEVICE_NAME is whatever bytes the client sent (§F.4): its log line escapes control characters (a
    newline forged a whole ``installed`` line, an ESC drove the terminal) and is cut short (a 60 KB name
    was logged whole, twice); the server answers REASON 9 and goes on serving."""
    name = "SEP\n07:00:00 capf: 10.0.0.1:1 SEPFORGED op=install: installed \x1b[31m" + "A" * 20000

    async def body(servers: LabServers) -> None:
        ctx = client_context_verify_after_handshake()
        reader, writer = await open_tls_connection(HOST, servers.ports["capf"], ctx, timeout=3)
        first = capf.decode(await asyncio.wait_for(reader.read(65536), 3))
        raw = name.encode() + b"\x00"
        elements = bytes([capf.CapfTag.DEVICE_NAME]) + struct.pack(">H", len(raw)) + raw
        writer.write(struct.pack(">BBIH", 0x55, capf.CapfCommand.AUTH_RESPONSE, first.session_id,
                                 len(elements)) + elements)
        await writer.drain()
        end = capf.decode(await asyncio.wait_for(reader.read(65536), 3))
        assert end.command == capf.CapfCommand.END_SESSION
        assert end.get(capf.CapfTag.REASON) == bytes([capf.Reason.UNKNOWN_DEVICE])
        writer.close()
        idle = capf.CapfClientSession(device_name=f"SEP{MAC}")
        out = await capf_session((HOST, servers.ports["capf"]), idle, timeout=10)
        assert out.outcome == "nothing-pending"

    with caplog.at_level(logging.INFO, logger="phoneemu.lab.capf"):
        with_servers(cluster, body)
    [line] = [r.getMessage() for r in caplog.records if "unknown-device" in r.getMessage()]
    assert "\n" not in line and "\x1b" not in line and len(line) < 1000
    assert "SEP\\n07:00:00" in line and f"{len(name)} characters" in line
