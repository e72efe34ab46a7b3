"""``replay`` of a phone that took its config over HTTPS on TCP 6971 (spec §H.1;
:mod:`phoneemu.scenario.replay_https_config`).

The capture is made from a live loopback boot of the real phone: its TFTP reads written as the phone got them
(:func:`tests.replay_helpers.captured_tftp_read`), its HTTPS config connection through a recording TCP
proxy to a real TLS server (the lab's ``https-config`` service, or one presenting a stranger's certificate)
written as a TCP flow to ``TFTP_HOST:6971``, the TLS secrets in the phone's key log. Before: the replayed
boot had no way to 6971 and asked its config the normal way, which the capture does not hold (auto-
registration, not the live H.1 decision); a MITM certificate refused live was never judged; without
``--keylog`` nothing said that the 6971 connections were not read.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.crypto.certs import CertRequest, issue_certificate
from phoneemu.crypto.keys import KeySpec, generate_key
from phoneemu.errors import TransportError
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.net.capture import PcapWriter, TcpFlow
from phoneemu.net.tls import client_context_verify_after_handshake, server_context
from phoneemu.net.tls_decrypt import decrypt_tls, read_keylog
from phoneemu.phone.boot import BootReport, BootTarget
from phoneemu.phone.https_config import HttpsConfigClient
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile
from phoneemu.scenario.replay_https_config import (
    NO_ANSWER,
    CapturedHttpsConfig,
    HttpsConfigCapture,
)
from tests.helpers import MemoryTlsPair, capf_unreachable, pristine_lab, run_within, tvs_unreachable
from tests.replay_helpers import captured_tftp_read

NOW = 1_780_000_000
MAC = "0A00000000D1"
NAME = f"SEP{MAC}.cnf.xml.sgn"
PHONE = "10.1.0.21"
TFTP_HOST = "10.1.0.2"
UNTRUSTED = "H.1-https-config-server-untrusted"

run = run_within(30)


base_lab, lab = pristine_lab("replay-https-config", now=NOW, phones={MAC: {"now": NOW}}, https_key="ec-p256")


# --------------------------------------------------------------------------- a live boot, captured


class _CapturedFetcher:
    """The lab's files, each read written to the capture as a TFTP read by ``PHONE`` from ``TFTP_HOST``."""

    def __init__(self, lab: LabCluster, w: PcapWriter) -> None:
        self.lab, self.w, self.ports = lab, w, itertools.count(41000)

    async def fetch(self, name: str) -> bytes:
        data = self.lab.get(name)
        captured_tftp_read(self.w, name, data, next(self.ports), phone=PHONE, server=TFTP_HOST)
        if data is None:
            raise TransportError("File not found", kind="not-found", code=1, path=name)
        return data


class _CapturedHttps:
    """The phone's real HTTPS config client through a recording proxy to ``upstream``; each connection is
    written to the capture as a TCP flow from ``PHONE`` to ``TFTP_HOST:6971`` once it has ended."""

    def __init__(self, w: PcapWriter, proxy_port: int, ended: asyncio.Queue[list[tuple[bool, bytes]]],
                 keylog: Path) -> None:
        self.w, self.ended, self.ports = w, ended, itertools.count(52000)
        self.client = HttpsConfigClient("127.0.0.1", proxy_port, timeout=5.0, keylog=str(keylog))

    @property
    def where(self) -> str:
        return f"{TFTP_HOST}:6971"  # as the capture shows it (and the replay names it)

    async def __call__(self, name: str, *, accept_server: Callable[[bytes | None], bool]) -> bytes:
        try:
            return await self.client(name, accept_server=accept_server)
        finally:
            chunks = await asyncio.wait_for(self.ended.get(), 10)
            flow = TcpFlow(self.w, (PHONE, next(self.ports)), (TFTP_HOST, 6971))
            for from_client, data in chunks:
                flow.send(from_client, data)
            flow.close()


@contextlib.asynccontextmanager
async def _proxy(upstream: int) -> Any:
    """A recording TCP proxy on loopback to ``upstream``: (its port, a queue of each ended connection's
    chunks, in the order they came: (from the client, bytes))."""
    ended: asyncio.Queue[list[tuple[bool, bytes]]] = asyncio.Queue()

    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        sr, sw = await asyncio.open_connection("127.0.0.1", upstream)
        chunks: list[tuple[bool, bytes]] = []

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter, from_client: bool) -> None:
            with contextlib.suppress(OSError):
                while data := await r.read(65536):
                    chunks.append((from_client, data))
                    w.write(data)
                    await w.drain()
            with contextlib.suppress(OSError):
                w.write_eof()

        await asyncio.gather(pipe(cr, sw, True), pipe(sr, cw, False))
        cw.close()
        sw.close()
        ended.put_nowait(chunks)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1]), ended
    finally:
        server.close()
        await server.wait_closed()


def _stranger(name: str = "mitm") -> tuple[Any, Any]:
    """A self-signed EC identity no ITL holds (key, certificate)."""
    key = generate_key(KeySpec.parse("ec-p256"))
    t = dt.datetime.fromtimestamp(NOW, dt.UTC)
    cert = issue_certificate(CertRequest(subject=f"CN={name};O=elsewhere", public_key=key.public_key(),
                                         serial=9, not_before=t - dt.timedelta(days=1),
                                         not_after=t + dt.timedelta(days=30)), issuer_key=key)
    return key, cert


@contextlib.asynccontextmanager
async def _stranger_server() -> Any:
    """A loopback TLS server presenting a self-signed EC certificate no ITL holds (a MITM): its port."""
    key, cert = _stranger()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ssl.SSLError, asyncio.IncompleteReadError):
            await reader.read()  # the phone hangs up after the handshake
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_context(cert, key))
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


def _live_boot(lab: LabCluster, tmp: Path, *, mitm: bool = False) -> tuple[BootReport, Path, Path]:
    """A live boot of an out-of-the-box cp-8861 against ``lab`` (its config over 6971 from the lab's
    ``https-config``, or from a MITM), captured: (the report, the pcap, the key log)."""
    pcap, keys = tmp / "boot.pcap", tmp / "boot.keys"

    async def boot(upstream: int) -> BootReport:
        with PcapWriter(pcap, clock=lambda: float(NOW)) as w:
            async with _proxy(upstream) as (port, ended):
                phone = Phone(mac=MAC, profile=get_profile("cp-8861"), flash=None, clock=lambda: NOW,
                              tvs=tvs_unreachable, capf=capf_unreachable, capf_retries=0)
                return await phone.boot(BootTarget(host=TFTP_HOST), fetcher=_CapturedFetcher(lab, w),
                                        https_config=_CapturedHttps(w, port, ended, keys))

    async def go() -> BootReport:
        if mitm:
            async with _stranger_server() as port:
                return await boot(port)
        async with LabServers(lab, clock=lambda: lab.clock + 60) as servers:
            return await boot(servers.ports["https-config"])

    return run(go()), pcap, keys


def _replay(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    capsys.readouterr()
    rc = main(["replay", *args])
    out, err = capsys.readouterr()
    return rc, json.loads(out) if "--json" in args else out, err


def _rules(report: dict[str, Any]) -> list[str]:
    return [d["rule"] for d in report["decisions"]]


# --------------------------------------------------------------------------- the tests
def test_a_config_taken_over_https_replays_to_the_same_rule_and_outcome(
        lab: LabCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live, pcap, keys = _live_boot(lab, tmp_path)
    assert live.deciding is not None and live.deciding.rule == "H.1-https-config", live.timeline
    assert live.ok and live.fetched_over[NAME] == "https"

    rc, doc, _err = _replay(capsys, str(pcap), "--mac", MAC, "--keylog", str(keys), "--json")
    (boot,) = doc["boots"]
    report = boot["report"]
    assert rc == 0 and report["ok"] and report["config"] == live.config == "accepted"
    assert report["deciding"]["rule"] == "H.1-https-config" and report["deciding"]["accepted"]
    assert report["config_file"] == live.config_file and report["fetched_over"] == {NAME: "https"}
    assert _rules(report) == [d.rule for d in live.decisions]
    assert any(n == NAME and "via https 10.1.0.2:6971 (captured)" in a for n, a in
               ((s["name"], s["answer"]) for s in boot["served"]))

    rc, doc, _err = _replay(capsys, str(pcap), "--all", "--keylog", str(keys), "--json")
    (record,) = doc["records"]
    (boot,) = record["boots"]
    assert rc == 0 and boot["rule"] == "H.1-https-config" and boot["fetched_over"] == {NAME: "https"}


def test_a_mitm_certificate_refused_live_is_refused_on_replay_then_the_normal_way(
        lab: LabCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live, pcap, keys = _live_boot(lab, tmp_path, mitm=True)
    assert UNTRUSTED in [d.rule for d in live.decisions] and live.ok, live.timeline
    assert live.deciding is not None and live.deciding.rule.startswith("G.4-")

    rc, doc, _err = _replay(capsys, str(pcap), "--mac", MAC, "--keylog", str(keys), "--json")
    report = doc["boots"][0]["report"]
    assert rc == 0 and _rules(report) == [d.rule for d in live.decisions]
    refused = next(d for d in report["decisions"] if d["rule"] == UNTRUSTED)
    assert not refused["accepted"] and "CN=mitm" in refused["reason"]
    assert report["deciding"]["rule"] == live.deciding.rule and report["config_file"] == NAME
    assert report["fetched_over"] == {}  # the signed config, over (captured) TFTP


def test_without_the_key_log_a_warning_names_the_6971_connections(
        lab: LabCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _live, pcap, keys = _live_boot(lab, tmp_path)
    keys.unlink()  # none beside the capture either (replay would use it)
    for args in (("--mac", MAC), ("--all",)):
        _rc, _out, err = _replay(capsys, str(pcap), *args)
        warned = [line for line in err.splitlines() if "TCP port 6971" in line]
        assert len(warned) == 1 and "1 TLS connection to TCP port 6971" in warned[0], err
        assert "--keylog" in warned[0]


# --------------------------------------------------------------------------- the captured answer's kinds
@pytest.mark.parametrize(("response", "close_notify", "kind"), [
    (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", True, "not-found"),
    (b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n", True, "error"),
    (b"", False, "unreachable"),
    (b"SSH-2.0-nothing-like-http\r\n\r\n", True, "protocol"),
    (b"HTTP/1.1 200 OK\r\n\r\n<device/>", False, "protocol"),  # read to a bare TCP close: maybe cut
])
def test_a_captured_failure_is_raised_as_the_live_client_raises_it(response: bytes, close_notify: bool,
                                                                   kind: str) -> None:
    ex = CapturedHttpsConfig(start=1.0, client=(PHONE, 5), server=(TFTP_HOST, 6971), order=3, name=NAME,
                             mac=MAC, tls="TLSv1.3", certificate=b"cert", response=response,
                             close_notify=close_notify)
    getter = HttpsConfigCapture(exchanges=(ex,)).replayer().getter(
        mac=MAC, server=TFTP_HOST, window=(0, 10), span=lambda: (0, 10))
    judged: list[bytes | None] = []

    def accept(der: bytes | None) -> bool:
        judged.append(der)
        return True

    with pytest.raises(TransportError) as caught:
        run(getter(NAME, accept_server=accept))
    assert caught.value.kind == kind and judged == [b"cert"]
    assert caught.value.message.startswith(f"https://{TFTP_HOST}:6971/{NAME}: ")
    if not response:
        assert caught.value.message.endswith(NO_ANSWER)


def test_a_body_read_to_the_end_is_kept_after_a_close_notify() -> None:
    ex = CapturedHttpsConfig(start=1.0, client=(PHONE, 5), server=(TFTP_HOST, 6971), order=3, name=NAME,
                             mac=MAC, tls="TLSv1.3", certificate=b"cert", close_notify=True,
                             response=b"HTTP/1.1 200 OK\r\n\r\n<device/>")
    getter = HttpsConfigCapture(exchanges=(ex,)).replayer().getter(
        mac=MAC, server=TFTP_HOST, window=(0, 10), span=lambda: (0, 10))
    assert getter.where == f"{TFTP_HOST}:6971"
    assert run(getter(NAME, accept_server=lambda _der: True)) == b"<device/>"


def test_each_exchange_is_used_once_in_capture_order_within_the_boot_window() -> None:
    def ex(order: int, body: bytes) -> CapturedHttpsConfig:
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        return CapturedHttpsConfig(start=float(order), client=(PHONE, order), server=(TFTP_HOST, 7000),
                                   order=order, name=NAME, mac=MAC, tls="TLSv1.2", certificate=b"c",
                                   response=head + body, close_notify=True)

    replay = HttpsConfigCapture(exchanges=(ex(3, b"first"), ex(5, b"second"), ex(9, b"next boot")),
                                servers=frozenset({(TFTP_HOST, 7000)})).replayer()

    def ask(window: tuple[float, float]) -> Awaitable[bytes]:
        getter = replay.getter(mac=MAC, server=TFTP_HOST, window=window, span=lambda: window)
        return getter(NAME, accept_server=lambda _der: True)

    assert run(ask((0, 8))) == b"first" and run(ask((0, 8))) == b"second"
    with pytest.raises(TransportError) as caught:
        run(ask((0, 8)))
    assert caught.value.kind == "unreachable" and caught.value.message.startswith(f"{TFTP_HOST}:7000: no ")
    assert run(ask((8, 20))) == b"next boot"


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("notify", [True, False])
def test_decryption_says_whether_the_server_ended_with_a_close_notify(tmp_path: Path, version: str,
                                                                      notify: bool) -> None:
    """A body read to the connection's end is whole only after the server's close_notify (RFC 9112 §9.8):
    the decrypted capture says whether it came (the live client's rule, replayed)."""
    key, cert = _stranger("server")
    keys = tmp_path / "keys.log"
    pair = MemoryTlsPair(client_context_verify_after_handshake(min_version=version, max_version=version,
                                                               keylog_filename=keys),
                         server_context(cert, key, min_version=version, max_version=version))
    pair.handshake()
    pair.client.write(f"GET /{NAME} HTTP/1.1\r\n\r\n".encode())
    pair.pump()
    assert pair.server.read(1 << 16).startswith(b"GET /")
    pair.server.write(b"HTTP/1.1 200 OK\r\n\r\n<device/>")
    if notify:
        with contextlib.suppress(ssl.SSLWantReadError):
            pair.server.unwrap()
    pair.pump()
    out = decrypt_tls(bytes(pair.to_server), bytes(pair.to_client), read_keylog(keys))
    assert out.server_data.endswith(b"<device/>") and out.server_close_notify is notify
