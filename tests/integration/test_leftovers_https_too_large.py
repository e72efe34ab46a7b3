"""Over loopback: an HTTPS server presenting a certificate over 64 KiB is refused as too large for TVS.

A booted phone (config naming the lab's TVS, ITL with the TVS record: TVS usable) opens an HTTPS server
whose certificate (~70 KB) cannot fit a TVS VERIFY request (uint16 body length, spec §E.2). Before, the
phone reported ``E.7.1-https-tvs-unreachable`` ("TVS unreachable") though TVS was never asked; now it
is ``E.7.1-https-cert-too-large`` — still refused, "Host Not Found" — and the lab's TVS saw no VERIFY.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from pathlib import Path

from phoneemu.lab.servers import LabServers
from tests.integration.test_phone_rules_e2e import HOST, Clock, cluster, make_phone, run, target
from tests.unit.test_leftovers_tvs_too_large import big_cert


async def _serve_tls(cert_pem: Path, key_pem: Path) -> asyncio.Server:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert_pem, key_pem)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader.read(65536), 5)
        writer.close()

    return await asyncio.start_server(handle, HOST, 0, ssl=ctx)


def test_an_https_certificate_over_64k_is_refused_as_too_large_and_tvs_is_not_asked(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der, key_pem = big_cert(extension_bytes=70_000)
    assert len(der) > 65_535
    cert_pem = tmp_path / "big.pem"
    cert_pem.write_bytes(x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM))
    key_file = tmp_path / "big.key"
    key_file.write_bytes(key_pem)
    c = cluster(tmp_path, tvs_ttl=3600)
    clock = Clock()

    async def go() -> None:
        async with LabServers(c, host=HOST, clock=clock) as srv:
            phone = make_phone(c, tmp_path, clock)
            assert (await phone.boot(target(srv))).ok
            server = await _serve_tls(cert_pem, key_file)
            try:
                port = server.sockets[0].getsockname()[1]
                got = await phone.open_https(HOST, port)
            finally:
                server.close()
                await server.wait_closed()
            assert not got.trusted and got.how == "rejected"
            assert got.rule == "E.7.1-https-cert-too-large", (got.rule, got.reason)
            assert got.status == "Host Not Found" and "TVS not asked" in got.reason
            assert not [e for e in srv.requests if e.service == "tvs" and e.name.startswith("VERIFY")]
            assert not any("TVS unreachable" in (e.detail or "") for e in phone.events if e.kind == "tvs")

    run(go())
