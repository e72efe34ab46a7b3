"""Interoperability of the phone's TLS clients (phoneemu.net.tls_client, phoneemu.net.tls) with servers
unlike our lab's: chains, TLS 1.3 only, client certificates, early closes, expired or misnamed
certificates, SNI, renegotiation. Each ends in a session or a named TransportError in bounded time; the
certificate the phone compares with its trust list (spec §E.1, §G) is always the server's leaf."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import shutil
import socket
import ssl
from functools import cache
from pathlib import Path

import pytest
from cryptography import x509

from phoneemu.crypto.certs import CertRequest, cert_der, issue_certificate
from phoneemu.crypto.keys import KeySpec, PrivateKey, generate_key, private_key_pem
from phoneemu.errors import TransportError
from phoneemu.net.tls import (
    TlsServer,
    client_certificate_refused,
    open_tls_connection,
    peer_certificate_der,
    phone_client_context,
    server_context,
)
from phoneemu.net.tls_client import TlsClientConnection
from tests.helpers import run_within, scripted_tcp_server

HOST = "127.0.0.1"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
run = run_within(5)
PHONE = ("1.2", "1.3")


@cache
def _key(n: int) -> PrivateKey:
    return generate_key(KeySpec.parse("rsa2048"))


def _cert(cn: str, key: PrivateKey, *, issuer: tuple[PrivateKey, x509.Certificate] | None = None,
          ca: bool = False, days: tuple[int, int] = (-1, 30), dns: tuple[str, ...] = ()) -> x509.Certificate:
    req = CertRequest(subject=f"CN={cn};O=interop", public_key=key.public_key(),
                      serial=abs(hash(cn)) % 10**9 + 1, not_before=NOW + dt.timedelta(days=days[0]),
                      not_after=NOW + dt.timedelta(days=days[1]), ca=ca, san_dns=dns)
    if issuer is None:
        return issue_certificate(req, issuer_key=key)
    return issue_certificate(req, issuer_key=issuer[0], issuer=issuer[1])


@cache
def chain() -> tuple[PrivateKey, x509.Certificate, x509.Certificate]:
    """(leaf key, leaf, intermediate): a leaf issued by an intermediate CA, as a real cluster's CA-signed
    Tomcat or CallManager certificate."""
    ca_key, leaf_key = _key(1), _key(2)
    ca = _cert("Interop Issuing CA", ca_key, ca=True)
    return leaf_key, _cert("cucm-pub.example.net", leaf_key, issuer=(ca_key, ca)), ca


@cache
def plain(kind: str) -> tuple[PrivateKey, x509.Certificate]:
    key = _key(3)
    if kind == "expired":
        return key, _cert("expired.example.net", key, days=(-400, -30))
    return key, _cert("other-name.example.net", key, dns=("other-name.example.net",))


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.write(await asyncio.wait_for(reader.readexactly(5), 2) + b"!")
        await writer.drain()


async def lean_exchange(port: int, ctx: ssl.SSLContext, host: str = HOST) -> tuple[bytes, bytes | None, str]:
    conn = await TlsClientConnection.open(host, port, ctx, timeout=2)
    try:
        await conn.send(b"hello")
        async with asyncio.timeout_at(conn.deadline):
            return await conn.recv(), conn.peer_cert, conn.description
    finally:
        conn.close()


async def stream_exchange(port: int, ctx: ssl.SSLContext, host: str = HOST) -> tuple[bytes, bytes | None]:
    reader, writer = await open_tls_connection(host, port, ctx, timeout=2)
    try:
        writer.write(b"hello")
        await writer.drain()
        return await asyncio.wait_for(reader.read(100), 2), peer_certificate_der(writer)
    finally:
        writer.close()


def test_a_chain_of_leaf_and_intermediate_gives_the_leaf_for_the_trust_check() -> None:
    leaf_key, leaf, ca = chain()

    async def main() -> None:
        async with TlsServer(echo, server_context([leaf, ca], leaf_key), HOST, 0) as srv:
            got, der, _ = await lean_exchange(srv.port, phone_client_context(PHONE))
            assert (got, der) == (b"hello!", cert_der(leaf))
            assert await stream_exchange(srv.port, phone_client_context(PHONE)) == (b"hello!", cert_der(leaf))
    run(main())


@pytest.mark.parametrize("kind", ["expired", "misnamed"])
def test_an_expired_or_misnamed_certificate_is_left_to_the_identity_check(kind: str) -> None:
    """Phones compare the presented certificate with their trust list (§E.1, §G), not its dates or
    names: the handshake completes, host name "localhost" or not, and the caller gets the exact
    certificate to compare (and to refuse when it is not the listed one)."""
    key, cert = plain(kind)

    async def main() -> None:
        async with TlsServer(echo, server_context(cert, key), HOST, 0) as srv:
            for host in (HOST, "localhost"):
                got, der, _ = await lean_exchange(srv.port, phone_client_context(PHONE), host)
                assert (got, der) == (b"hello!", cert_der(cert))
    run(main())


def test_a_tls13_only_server() -> None:
    key, cert = plain("misnamed")

    async def main() -> None:
        async with TlsServer(echo, server_context(cert, key, min_version="1.3"), HOST, 0) as srv:
            got, _, description = await lean_exchange(srv.port, phone_client_context(PHONE))
            assert got == b"hello!" and description.startswith("TLSv1.3 ")
            with pytest.raises(TransportError) as ei:  # a phone of TLS 1.2 only: a named refusal
                await lean_exchange(srv.port, phone_client_context(("1.2",)))
            assert ei.value.kind == "tls" and "PROTOCOL_VERSION" in str(ei.value), ei.value
    run(main())


def test_a_server_requiring_a_certificate_the_phone_does_not_have() -> None:
    """TLS 1.2: the server's bare handshake_failure alert is explained by its CertificateRequest (old
    reason: "SSLV3_ALERT_HANDSHAKE_FAILURE" alone). TLS 1.3: the refusal comes after the client's
    Finished, on the first read, as a named TLS error."""
    key, cert = plain("misnamed")
    _, trusted, _ = chain()

    async def main() -> None:
        strict12 = server_context(cert, key, max_version="1.2", client_trust=[trusted],
                                  require_client_cert=True)
        async with TlsServer(echo, strict12, HOST, 0) as srv:
            with pytest.raises(TransportError) as ei:
                await lean_exchange(srv.port, phone_client_context(PHONE))
            text = str(ei.value)
            assert ei.value.kind == "tls" and "the server asked for a client certificate" in text, text
            assert client_certificate_refused(text, presented=False)
        strict13 = server_context(cert, key, min_version="1.3", client_trust=[trusted],
                                  require_client_cert=True)
        async with TlsServer(echo, strict13, HOST, 0) as srv:
            with pytest.raises(TransportError) as ei:
                await lean_exchange(srv.port, phone_client_context(PHONE))
            assert ei.value.kind == "tls" and "CERTIFICATE_REQUIRED" in str(ei.value), ei.value
    run(main())


async def _read_hello(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readexactly(5)
    return head + await reader.readexactly(int.from_bytes(head[3:5], "big"))


@pytest.mark.parametrize(("sent", "count"), [(b"", 0), (b"\x16\x03\x03\x00\x40\x02\x00\x00\x3c\x03\x03", 11)])
def test_a_server_that_closes_after_the_client_hello_is_named(sent: bytes, count: int) -> None:
    """Old reasons: "TLS handshake failed: UNEXPECTED_EOF_WHILE_READING" (kind "tls", though the lean
    client's rule says a peer that closes mid-way is "unreachable"), and "cannot connect: the connection
    closed (ConnectionResetError)" from the stream client, which had connected."""
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_hello(reader)
        writer.write(sent)
        await writer.drain()

    async def main() -> None:
        async with scripted_tcp_server(script) as port:
            with pytest.raises(TransportError) as ei:
                await lean_exchange(port, phone_client_context(PHONE))
            assert ei.value.kind == "unreachable", ei.value
            assert (f"{HOST}:{port}: the server closed the connection during the TLS handshake "
                    f"({count} bytes from it)") == str(ei.value)
            with pytest.raises(TransportError) as ei:
                await stream_exchange(port, phone_client_context(PHONE))
            assert ei.value.kind == "unreachable", ei.value
            assert "the server closed the connection during the TLS handshake" in str(ei.value), ei.value
    run(main())


def test_a_server_that_trickles_its_handshake_is_bounded_by_the_timeout() -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_hello(reader)
        for byte in b"\x16\x03\x03\x00\x40\x02\x00\x00\x3c\x03\x03" + bytes(40):
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.05)

    async def main() -> None:
        async with scripted_tcp_server(script) as port:
            loop = asyncio.get_running_loop()
            start = loop.time()
            with pytest.raises(TransportError) as ei:
                await TlsClientConnection.open(HOST, port, phone_client_context(PHONE), timeout=0.4)
            assert ei.value.kind == "timeout" and "TLS handshake timeout" in str(ei.value), ei.value
            assert loop.time() - start < 1.5
    run(main())


def test_sni_is_sent_for_a_host_name_and_not_for_an_address() -> None:
    key, cert = plain("misnamed")

    async def main() -> None:
        seen: list[str | None] = []
        ctx = server_context(cert, key)
        ctx.sni_callback = lambda _obj, name, _ctx: seen.append(name)
        async with TlsServer(echo, ctx, HOST, 0) as srv:
            await lean_exchange(srv.port, phone_client_context(PHONE), HOST)
            await lean_exchange(srv.port, phone_client_context(PHONE), "localhost")
            await stream_exchange(srv.port, phone_client_context(PHONE), "localhost")
        assert seen == [None, "localhost", "localhost"]
    run(main())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command (s_server)")
@pytest.mark.parametrize("command", [b"r", b"R"])  # renegotiate; renegotiate asking for a client certificate
def test_a_renegotiation_request_is_declined_and_the_checked_certificate_stays(command: bytes,
                                                                              tmp_path: Path) -> None:
    """``openssl s_server`` sends a HelloRequest mid-connection. Old behaviour: the phone began a second
    handshake, during which the certificate it had checked could not be read (``ValueError: handshake
    not done yet``) and the version was ``?``; a finished one may present another certificate than the
    one compared with the trust list. Now the phone declines (a no_renegotiation alert, as Go's TLS
    client does by default); OpenSSL's server then ends the connection with a handshake_failure alert,
    a named TLS error, and the checked certificate is still the connection's."""
    key, cert = plain("misnamed")
    (tmp_path / "key.pem").write_bytes(private_key_pem(key))
    (tmp_path / "cert.pem").write_text(ssl.DER_cert_to_PEM_cert(cert_der(cert)))

    async def main() -> None:
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            port = probe.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            "openssl", "s_server", "-accept", f"{HOST}:{port}", "-cert", str(tmp_path / "cert.pem"),
            "-key", str(tmp_path / "key.pem"), "-tls1_2", "-naccept", "1",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        try:
            async with asyncio.timeout(3):
                while b"ACCEPT" not in await proc.stdout.readline():
                    pass
                conn = await TlsClientConnection.open(HOST, port, phone_client_context(("1.2",)), timeout=2)
                try:
                    await conn.send(b"ping\n")
                    while b"ping" not in await proc.stdout.readline():  # the server has the session
                        pass
                    proc.stdin.write(command + b"\n")
                    with contextlib.suppress(TransportError):
                        async with asyncio.timeout(1):
                            for _ in range(20):
                                if not await conn.recv():
                                    break
                    assert conn.peer_cert == cert_der(cert)
                    assert conn.description.startswith("TLSv1.2 "), conn.description
                finally:
                    conn.close()
                proc.stdin.close()
                errors = await proc.stderr.read()
            assert b"no renegotiation" in errors, errors
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    run(main())


@pytest.mark.parametrize("name", ["a..b", "x" * 64 + ".example"])
def test_a_host_name_idna_cannot_encode_is_unreachable_not_an_exception(name: str) -> None:
    """A host name from a config that IDNA cannot encode (an empty label, one over 63 characters): HTTP
    and TLS connections fail as "unreachable" naming it, as a name that does not resolve; a UnicodeError
    escaped (SIP CallManagers, the CAPF server, HTTPS directory URLs and HTTP 6970 take names from it)."""
    from phoneemu.errors import TransportError
    from phoneemu.net.http import http_get
    from phoneemu.net.tls import open_tls_connection

    async def both() -> list[TransportError]:
        out = []
        for connect in (lambda: http_get(name, 80, "f", timeout=1.0),
                        lambda: open_tls_connection(name, 443, ssl.create_default_context(), timeout=1.0)):
            with pytest.raises(TransportError) as info:
                await connect()
            out.append(info.value)
        return out

    for exc in asyncio.run(both()):
        assert exc.kind == "unreachable" and "not a valid host name" in exc.message, exc
