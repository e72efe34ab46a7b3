"""What a storm's phone side no longer pays per boot (issue #6), and that the cheaper paths send and decide
exactly as before:

* an RRQ is the codec's bytes without building the codec's request each time (and the same errors);
* a TFTP transfer arms one timer, its retransmission timeout or its ``max_time`` cap, not one of each; the
  final DATA costs the client no call of its own; a free socket slot of the pool is taken without
  ``asyncio.Semaphore``'s coroutines (the slots' order and cancellations: test_fifo_slots.py);
* a rule's remembered value is read without a call of the rules module;
* a decision with a status reads the clock once for its timeline lines (as a note does);
* a TVS question looks the phone's TLS context up once per asker, not per question;
* a TLS connection to an address spares Python's IDNA encoding: the ClientHello is the same (no SNI).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.errors import EncodeError
from phoneemu.formats.config import Server
from phoneemu.net import tftp_client
from phoneemu.net.fetch import MemoryFetcher
from phoneemu.net.tftp_client import TftpClientPool, _Transfer
from phoneemu.net.tftp_codec import ReadRequest, encode
from phoneemu.net.tftp_server import TftpServer
from phoneemu.net.tls import phone_client_context
from phoneemu.net.tls_client import TlsClientConnection
from phoneemu.phone import boot as boot_mod
from phoneemu.phone import rules
from phoneemu.phone.events import Decision, EventLog, QueryKey
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import TrustStore, TvsStatus
from tests.helpers import calls_of

HOST = "127.0.0.1"


# --------------------------------------------------------------------------- RRQ bytes
def _codec_rrq(name: str, blksize: int | None, tsize: bool) -> object:
    opts: dict[str, str] = {}
    if blksize is not None:
        opts["blksize"] = str(blksize)
    if tsize:
        opts["tsize"] = "0"
    try:
        return encode(ReadRequest(filename=name, mode="octet", options=opts))
    except EncodeError as exc:
        return ("error", str(exc), exc.path)


def _client_rrq(name: str, blksize: int | None, tsize: bool) -> object:
    try:
        return tftp_client._rrq(name, blksize, tsize)
    except EncodeError as exc:
        return ("error", str(exc), exc.path)


_names = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["SEP0A0000000001.cnf.xml.sgn", "CTLSEP0A0000000001.tlv", "", "a\x00b", "é.tlv"]),
    st.integers(250, 520).map(lambda n: "n" * n),
)


@settings(max_examples=300, deadline=None)
@given(_names, st.one_of(st.none(), st.integers(8, 65464)), st.booleans())
def test_an_rrq_is_the_codecs_bytes_or_its_error(name: str, blksize: int | None, tsize: bool) -> None:
    assert _client_rrq(name, blksize, tsize) == _codec_rrq(name, blksize, tsize)


# --------------------------------------------------------------------------- one timer a transfer
def _timer_callbacks(lp: asyncio.AbstractEventLoop) -> list[str]:
    """Names of the callbacks the TFTP client schedules on ``lp`` from now on (its transfers' timers)."""
    names: list[str] = []
    for method in ("call_at", "call_later"):
        real = getattr(lp, method)

        def counting(when: float, callback: Callable[..., Any], *args: Any, _real: Any = real,
                     **kwargs: Any) -> asyncio.TimerHandle:
            if getattr(callback, "__self__", None).__class__ is _Transfer:
                names.append(callback.__name__)
            return _real(when, callback, *args, **kwargs)  # type: ignore[no-any-return]

        setattr(lp, method, counting)
    return names


def test_a_capped_transfer_arms_one_timer_not_two(loop: asyncio.AbstractEventLoop) -> None:
    body = bytes(range(256)) * 9  # five 512-byte blocks and a short one

    async def main() -> bytes:
        async with TftpServer({"f.bin": body}, host=HOST, port=0) as srv:
            pool = TftpClientPool(timeout=2.0, retries=2, max_time=30.0, quarantine_s=0)
            try:
                return await pool.get(HOST, srv.port, "f.bin")
            finally:
                await pool.close()

    timers = _timer_callbacks(loop)
    assert loop.run_until_complete(asyncio.wait_for(main(), 20)) == body
    assert timers == ["_on_timer"]  # was: the retransmission timer and the max_time cap's


def test_the_final_data_costs_the_client_no_call_of_its_own(loop: asyncio.AbstractEventLoop) -> None:
    class Transport:
        closed = False  # (a UdpSocket's: the ACK goes out on the socket itself, ``sock``)

        def __init__(self) -> None:
            self.sent: list[bytes] = []
            self.sock = self

        def sendto(self, data: bytes, addr: tuple[Any, ...]) -> None:
            self.sent.append(data)

    transport = Transport()
    server = (HOST, 6969)
    t = _Transfer(loop, transport, server, "f", blksize=None, timeout=2.0,  # type: ignore[arg-type]
                  retries=3, tsize=False, max_size=1 << 20, on_retransmit=None)
    t.timer = loop.call_later(2.0, t._on_timer)
    calls = calls_of(t.on_datagram, b"\x00\x03\x00\x01" + b"z" * 7, server, module=tftp_client.__file__)
    assert calls == [] and transport.sent == [b"\x00\x04\x00\x01"]
    assert t.fut.result() == b"z" * 7 and t.timer is None and t.final_block == 1


# --------------------------------------------------------------------------- the pool's socket slots
def test_a_free_slot_is_taken_without_asyncio_locks(loop: asyncio.AbstractEventLoop) -> None:
    seen: list[str] = []

    def prof(frame: FrameType, event: str, _arg: object) -> None:
        if event == "call" and frame.f_code.co_filename == asyncio.locks.__file__:
            seen.append(frame.f_code.co_name)

    async def main() -> bytes:
        async with TftpServer({"f": b"x" * 700}, host=HOST, port=0) as srv:
            pool = TftpClientPool(timeout=2.0, retries=2, quarantine_s=0)
            try:
                sys.setprofile(prof)
                try:
                    return await pool.get(HOST, srv.port, "f")
                finally:
                    sys.setprofile(None)
            finally:
                await pool.close()

    assert loop.run_until_complete(asyncio.wait_for(main(), 20)) == b"x" * 700
    assert seen == []


# --------------------------------------------------------------------------- rules' memos
def test_a_remembered_rule_value_calls_nothing_of_the_rules_module() -> None:
    header = type("Header", (), {})()
    header.signer = type("Signer", (), {"name": "CN=x", "serial": b"\x01\x02"})()  # type: ignore[attr-defined]
    first = rules._signer_text(header)  # type: ignore[arg-type]
    assert first == "CN=x (serial 0102)"
    calls = calls_of(rules._signer_text, header, module=rules.__file__)
    assert calls == []  # was: _Memo.get
    assert rules._signer_text(header) == first  # type: ignore[arg-type]


# --------------------------------------------------------------------------- one clock read a decision
def _boot(clock: Callable[[], int], **kw: Any) -> Any:
    profile = get_profile("cp-8861")
    return boot_mod._Boot(mac="0A00000000F1", profile=profile, store=TrustStore(profile=profile),
                          fetcher=MemoryFetcher({}), clock=clock, events=EventLog(),
                          image_signers=(), tvs=kw.get("tvs", _no_tvs), capf=_no_capf, auth_string=None,
                          capf_retries=0, capf_retry_delay=0.0, save=None, sleep=asyncio.sleep)


async def _no_tvs(*_a: Any, **_k: Any) -> Any:
    raise AssertionError("not asked")


async def _no_capf(*_a: Any, **_k: Any) -> Any:
    raise AssertionError("not asked")


def test_a_decision_and_the_status_it_shows_carry_one_time() -> None:
    ticks = iter(range(1_780_000_000, 1_780_000_100))
    b = _boot(lambda: next(ticks))
    b.record(Decision(rule="G.3-unchanged", accepted=True, reason="CTL unchanged", file="CTLFile.tlv",
                      status="Trust List Updated"))
    line, shown = b.timeline
    assert shown.endswith("status: Trust List Updated")
    assert line.split()[0] == shown.split()[0]  # the same second: one clock read (was: two, a tick apart)
    assert b.statuses == ["Trust List Updated"]


# --------------------------------------------------------------------------- TVS asker
def test_the_tvs_asker_looks_its_tls_context_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from phoneemu.net import tls, tvs_client

    looked: list[object] = []
    contexts: list[object] = []

    def counting(versions: Any, keylog: Any = None, **kw: Any) -> ssl.SSLContext:
        looked.append(versions)
        return phone_client_context(versions, keylog, **kw)

    async def fake_query(*_a: Any, tls: ssl.SSLContext, **_k: Any) -> Any:
        contexts.append(tls)
        raise tftp_client.TransportError("refused", kind="unreachable")

    monkeypatch.setattr(tls, "phone_client_context", counting)
    monkeypatch.setattr(tvs_client, "tvs_query", fake_query)
    ask = boot_mod.net_tvs_asker(tls_versions=("1.2",))
    key = QueryKey(subject="CN=s", issuer="CN=i", serial=b"\x01")
    servers = [Server(host=HOST, port=1, priority=0)]

    async def twice() -> None:
        for _ in range(2):
            with pytest.raises(tftp_client.TransportError):
                await ask(servers, key, device_name="CP-8861-SEP0A00000000F1", accept_server=None)

    asyncio.run(twice())
    assert len(looked) == 1 and len(contexts) == 2 and contexts[0] is contexts[1]
    assert TvsStatus.UNREACHABLE  # (the boot turns the failure into this status)


# --------------------------------------------------------------------------- TLS to an address
def _client_hello_extensions(record: bytes) -> list[int]:
    """Extension types of the ClientHello at the start of ``record`` (TLS record + handshake headers)."""
    assert record[0] == 22 and record[5] == 1
    pos = 5 + 4 + 2 + 32  # record header, handshake header, version, random
    pos += 1 + record[pos]  # session id
    pos += 2 + int.from_bytes(record[pos:pos + 2], "big")  # cipher suites
    pos += 1 + record[pos]  # compression methods
    end = pos + 2 + int.from_bytes(record[pos:pos + 2], "big")
    pos += 2
    types: list[int] = []
    for _ in range(64):
        if pos >= end:
            break
        types.append(int.from_bytes(record[pos:pos + 2], "big"))
        pos += 4 + int.from_bytes(record[pos + 2:pos + 4], "big")
    return types


def test_tls_to_an_address_sends_the_same_client_hello_without_idna(loop: asyncio.AbstractEventLoop) -> None:
    ctx = phone_client_context(("1.2",))
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    seen: list[str] = []

    def prof(frame: FrameType, event: str, _arg: object) -> None:
        if event == "call" and "idna" in frame.f_code.co_filename:
            seen.append(frame.f_code.co_name)

    async def main() -> bytes:
        running = asyncio.get_running_loop()
        opening = asyncio.ensure_future(TlsClientConnection.open(HOST, port, ctx, timeout=2.0))
        conn, _ = await running.sock_accept(listener)
        with conn:
            hello = await asyncio.wait_for(running.sock_recv(conn, 4096), 5)
        with pytest.raises(tftp_client.TransportError):
            await opening  # the "server" closed: no handshake
        return hello

    sys.setprofile(prof)
    try:
        hello = loop.run_until_complete(asyncio.wait_for(main(), 10))
    finally:
        sys.setprofile(None)
        listener.close()
    assert seen == []  # the address is not IDNA-encoded (was: encodings.idna, once a connection)
    reference = ctx.wrap_bio(ssl.MemoryBIO(), out := ssl.MemoryBIO(), server_hostname=HOST)
    with pytest.raises(ssl.SSLWantReadError):
        reference.do_handshake()
    expected = out.read()
    assert _client_hello_extensions(hello) == _client_hello_extensions(expected)
    assert 0 not in _client_hello_extensions(hello)  # no server_name: an address is never sent as SNI
    assert len(hello) == len(expected)
