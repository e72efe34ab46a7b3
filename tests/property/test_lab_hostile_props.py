"""Hostile clients against the lab's network services over loopback: the fuzz campaign, kept bounded.

Rule: a mutated, truncated, oversized or random frame — the valid ones the clients send (TVS VERIFY and
QUERY, CAPF AUTH_RESPONSE and KEY_GENERATE_RESPONSE, an HTTP 6970 GET, the HTTPS directory GET, a SIP
REGISTER and INVITE), length fields claiming 64 KiB or 4 GiB, a mutated ClientHello before TLS —, sent
whole or in pieces and then left, closed or reset, ends that one connection: the server logs why, no
exception escapes a connection's handler (TlsServer's "connection from ... failed", asyncio's "Exception in
callback", a logged traceback), and a well-formed request right after it gets the right answer.

``PHONEEMU_PROP_EXAMPLES=N`` runs the property with N random (not derandomized) examples: the long hunt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneemu.crypto import keys
from phoneemu.lab.https_service import DIRECTORY_XML
from phoneemu.net.capf_client import capf_session
from phoneemu.net.http import http_get
from phoneemu.net.tls import client_context_verify_after_handshake
from phoneemu.net.tvs_client import tvs_verify
from phoneemu.protocols import capf, sip, tvs
from tests.helpers import copy_cluster, lab_template, run, serve_in_thread

_HUNT = int(os.environ.get("PHONEEMU_PROP_EXAMPLES", "0"))
HOST = "127.0.0.1"
MAC, MAC_INSTALL = "0011223344DD", "0011223344EE"
DEVICE = f"CP-8861-SEP{MAC}"
LINGER = 0.1  # seconds a hostile client waits for the server's answer before it leaves

template = lab_template("hostile", seed=17, phones={
    MAC: {}, MAC_INSTALL: {"capf_operation": "install", "capf_auth_mode": 2, "lsc_key": "rsa1024"}})


class _Escaped(logging.Handler):
    """Records that say an exception escaped where it should have been our logged error."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info is not None or "Exception in callback" in text or "never retrieved" in text or (
                "connection from" in text and " failed: " in text and "TLS" not in text):
            self.seen.append(f"{record.name}: {text}")


@pytest.fixture(scope="module")
def lab(template: Path,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, int], _Escaped]]:
    """The lab served on loopback in a thread (TVS, CAPF, HTTP, HTTPS, SIP over TCP), short timeouts."""
    cluster = copy_cluster(template, tmp_path_factory.mktemp("hostile-lab"))
    watch = _Escaped()
    logging.getLogger().addHandler(watch)
    ports, stop = serve_in_thread(cluster, io_timeout=1.0, capf_session_timeout=3.0, app_https=True,
                                  sip_ports={"sip": 0})
    try:
        yield cluster, ports, watch
    finally:
        stop()
        logging.getLogger().removeHandler(watch)
    assert watch.seen == [], watch.seen  # a late one (after the last example) too


# --- the frames mutated ---------------------------------------------------------------------------------

def _client_hello() -> bytes:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    out = ssl.MemoryBIO()
    obj = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname="tvs")
    with contextlib.suppress(ssl.SSLWantReadError):
        obj.do_handshake()
    return out.read()


_LSC_KEY = keys.generate_key(keys.KeySpec.parse("rsa1024"))


def _tvs_seeds(cluster: Any, _sid: int) -> list[bytes]:
    verify = tvs.encode(tvs.verify_request(7, DEVICE, cluster.callmanager().der))
    query = tvs.encode(tvs.query_request(8, DEVICE, "CN=x", "CN=y", b"\x01\x02"))
    return [verify, query, verify + query, verify[:8] + b"\xff\xff" + verify[10:]]  # 64 KiB claimed, not sent


def _capf_seeds(_cluster: Any, sid: int) -> list[bytes]:
    def auth(mac: str) -> bytes:
        return capf.encode(capf.message(capf.CapfCommand.AUTH_RESPONSE, sid,
                                        (capf.CapfTag.DEVICE_NAME, capf.encode_cstring(f"SEP{mac}"))))
    keygen = capf.encode(capf.message(capf.CapfCommand.KEY_GENERATE_RESPONSE, sid, (
        capf.CapfTag.PUBLIC_KEY, keys.public_key_spki_der(_LSC_KEY.public_key()))))
    return [auth(MAC), auth(MAC_INSTALL) + keygen, auth("001122334400"), auth(MAC)[:6] + b"\xff\xff"]


def _http_seeds(_cluster: Any, _sid: int) -> list[bytes]:
    return [b"GET /ITLFile.tlv HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            f"HEAD /SEP{MAC}.cnf.xml HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode()
            + b"GET /CTLFile.tlv HTTP/1.1\r\n\r\n",
            b"GET /ITLFile.tlv HTTP/1.1\r\nContent-Length: 4294967296\r\n\r\n",
            b"GET /ITLFile.tlv HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFF\r\n"]


def _https_seeds(_cluster: Any, _sid: int) -> list[bytes]:
    return [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"HEAD /?q HTTP/1.0\r\nContent-Length: 4294967296\r\n\r\n"]


def _sip(start: str, extra: list[tuple[str, str]], body: bytes = b"") -> bytes:
    return sip.build_message(start, [
        ("Via", "SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKh"), ("From", f"<sip:SEP{MAC}@127.0.0.1>;tag=t"),
        ("Call-ID", "hostile"), ("Contact", f"<sip:SEP{MAC}@127.0.0.1;transport=tcp>"), *extra], body)


def _register() -> bytes:
    return _sip("REGISTER sip:127.0.0.1 SIP/2.0",
                [("To", f"<sip:SEP{MAC}@127.0.0.1>"), ("CSeq", "1 REGISTER")])


def _sip_seeds(_cluster: Any, _sid: int) -> list[bytes]:
    sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"
    invite = _sip("INVITE sip:moh@127.0.0.1 SIP/2.0", [("To", "<sip:moh@127.0.0.1>"), ("CSeq", "1 INVITE"),
                                                        ("Content-Type", "application/sdp")], sdp)
    return [_register(), invite, b"\r\n\r\n" + _register(),
            b"REGISTER sip:x SIP/2.0\r\nContent-Length: 4294967296\r\n\r\n"]


_SEEDS: dict[str, Callable[[Any, int], list[bytes]]] = {
    "tvs": _tvs_seeds, "capf": _capf_seeds, "http": _http_seeds, "https": _https_seeds, "sip": _sip_seeds}
_TLS = frozenset({"tvs", "capf", "https"})
_HELLO = _client_hello()

_MUTATION = st.tuples(st.sampled_from(["flip", "set", "cut", "insert", "repeat", "max-length", "delete"]),
                      st.integers(0, 1 << 16), st.integers(0, 255))


def _mutate(data: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(data)
    for op, where, value in mutations:
        at = where % (len(out) + 1)
        if op == "flip" and at < len(out):
            out[at] ^= 1 << (value % 8)
        elif op == "set" and at < len(out):
            out[at] = value
        elif op == "cut":
            del out[at:]
        elif op == "insert":
            out[at:at] = bytes([value]) * (1 + value % 40)
        elif op == "repeat":
            out[at:] = out[at:] * (2 + value % 30)
        elif op == "max-length":
            out[at:at + 2] = b"\xff\xff"
        elif op == "delete":
            del out[at:at + 1 + value % 16]
    return bytes(out)


# --- one hostile connection, then a well-formed request -------------------------------------------------

def _tls_client() -> ssl.SSLContext:
    return client_context_verify_after_handshake(min_version="1.2")


async def _read_for(reader: asyncio.StreamReader, seconds: float) -> bytes:
    got = b""
    with contextlib.suppress(TimeoutError, OSError):  # ConnectionError and ssl.SSLError included
        async with asyncio.timeout(seconds):
            while chunk := await reader.read(65536):
                got += chunk
    return got


async def _close(writer: asyncio.StreamWriter) -> None:
    """Close, and abort what does not close within a second (a TLS peer that never answers close_notify)."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 1)
    except (TimeoutError, OSError):
        writer.transport.abort()


async def _hostile(port: int, *, tls: bool, first_frame: bool, payload: Callable[[int], bytes],
                   pieces: int, leave: str) -> None:
    """Connect (TLS or not), read CAPF's AUTH_REQUEST when ``first_frame``, send ``payload(its session
    id)`` in ``pieces``, then leave: ``wait`` for the answer, ``close``, or ``reset`` (an RST)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(
        HOST, port, ssl=_tls_client() if tls else None, server_hostname=HOST if tls else None), 5)
    try:
        sid = 0
        if first_frame:
            head = await asyncio.wait_for(reader.readexactly(8), 5)
            await asyncio.wait_for(reader.readexactly(int.from_bytes(head[6:8], "big")), 5)
            sid = int.from_bytes(head[2:6], "big")
        data = payload(sid)
        step = max(1, -(-len(data) // pieces))
        for at in range(0, len(data), step):
            writer.write(data[at:at + step])
            await writer.drain()
        if leave == "wait":
            await _read_for(reader, LINGER)
        elif leave == "reset" and not tls:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (OSError, asyncio.IncompleteReadError):  # the server closed first: its right
        pass
    finally:
        await _close(writer)


async def _well_formed(service: str, cluster: Any, ports: dict[str, int]) -> None:
    """The answer a well-formed request of ``service`` gets is the right one."""
    port = ports[service]
    if service == "tvs":
        assert (await tvs_verify([(HOST, port)], DEVICE, cluster.callmanager().der, timeout=5)).valid
    elif service == "capf":
        out = await capf_session((HOST, port), capf.CapfClientSession(device_name=f"SEP{MAC}"), timeout=5)
        assert out.result.outcome == "nothing-pending", out.result
    elif service == "http":
        assert await http_get(HOST, port, "ITLFile.tlv", timeout=5) == cluster.get("ITLFile.tlv")
    else:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            HOST, port, ssl=_tls_client() if service == "https" else None,
            server_hostname=HOST if service == "https" else None), 5)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" if service == "https" else _register())
        want = b"HTTP/1.1 200 OK" if service == "https" else b"SIP/2.0 200 OK"
        got = b""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                while not (got.startswith(want) and (service == "sip" or got.endswith(DIRECTORY_XML))):
                    if not (chunk := await reader.read(65536)):
                        break
                    got += chunk
        await _close(writer)
        assert got.startswith(want), got[:80]


@settings(max_examples=_HUNT or 60, deadline=None, derandomize=not _HUNT,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(service=st.sampled_from(sorted(_SEEDS)), pick=st.integers(0, 15), raw_hello=st.integers(0, 4),
       mutations=st.lists(_MUTATION, max_size=4), pieces=st.integers(1, 3),
       leave=st.sampled_from(["wait", "close", "reset"]))
def test_a_hostile_connection_ends_alone_and_the_next_request_is_answered(
        lab: tuple[Any, dict[str, int], _Escaped], service: str, pick: int, raw_hello: int,
        mutations: list[tuple[str, int, int]], pieces: int, leave: str) -> None:
    """Any mutation of a valid client frame (or, one time in five on a TLS port, of a ClientHello sent in
    the clear): that connection ends, nothing escapes, the next well-formed request is answered."""
    cluster, ports, watch = lab
    before = len(watch.seen)
    clear_hello = service in _TLS and raw_hello == 0

    def payload(sid: int) -> bytes:
        if clear_hello:
            return _mutate(_HELLO, mutations)
        seeds = _SEEDS[service](cluster, sid)
        return _mutate(seeds[pick % len(seeds)], mutations)

    async def main() -> None:
        await _hostile(ports[service], tls=service in _TLS and not clear_hello,
                       first_frame=service == "capf" and not clear_hello, payload=payload, pieces=pieces,
                       leave=leave)
        await _well_formed(service, cluster, ports)

    run(main(), limit=20)
    assert watch.seen[before:] == [], watch.seen[before:]
