"""A TVS port that answers the ClientHello, but not with TLS (red team of fleet boot): said so with the
server's first bytes (phoneemu.net.tls_client), told apart from a real handshake failure and from no
answer. Was "TLS handshake failed: WRONG_VERSION_NUMBER" (or "closed the connection during the TLS
handshake", a timeout), which the phone labelled "TVS unreachable". The phone's decision is unchanged: a
TVS that cannot be asked is unreachable (spec §G.3.4), its reason now says what the server said.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import pytest

from phoneemu.errors import TransportError
from phoneemu.formats.config import Server
from phoneemu.lab.cluster import LabCluster
from phoneemu.net.fetch import MemoryFetcher
from phoneemu.net.tls import phone_client_context
from phoneemu.net.tls_client import TlsClientConnection
from phoneemu.net.tvs_client import NO_TVS_ANSWER, tvs_query
from phoneemu.phone.boot import BootTarget, net_tvs_asker
from phoneemu.phone.events import QueryKey
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import TvsResult
from tests.helpers import pristine_lab, run_within

run = run_within(10)
HOST = "127.0.0.1"
TIMEOUT = 0.5
HTTP = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
NOT_TLS_HTTP = "the server answered, but not with TLS (it begins 48 ('H'): looks like HTTP?)"
ALERT = b"\x15\x03\x03\x00\x02\x02\x28"  # a TLS alert record: fatal handshake_failure (a real TLS refusal)
NOW = 1_780_000_000
MAC = "0A00000000D5"

base_lab, lab = pristine_lab("tvs-not-tls", now=NOW, phones={MAC: {"now": NOW, "lsc_key": "rsa1024"}})


@asynccontextmanager
async def answering(sent: bytes, *, then_close: bool = True) -> AsyncIterator[int]:
    """A TCP server on loopback that reads the ClientHello, writes ``sent`` and closes (or holds the
    connection until the test ends); its port."""
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(4096)
            writer.write(sent)
            await writer.drain()
            if not then_close:
                await done.wait()
        except ConnectionError:
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, HOST, 0)
    try:
        yield int(srv.sockets[0].getsockname()[1])
    finally:
        done.set()
        srv.close()
        await srv.wait_closed()


def _open_fails(sent: bytes, *, then_close: bool = True) -> tuple[int, TransportError]:
    async def main() -> tuple[int, TransportError]:
        async with answering(sent, then_close=then_close) as port:
            with pytest.raises(TransportError) as err:
                await TlsClientConnection.open(HOST, port, phone_client_context(("1.2",)), timeout=TIMEOUT)
            return port, err.value
    return run(main())  # type: ignore[no-any-return]


@pytest.mark.parametrize(("sent", "then_close", "said"), [
    # was "TLS handshake failed: WRONG_VERSION_NUMBER"
    (HTTP, True, NOT_TLS_HTTP),
    (b"SSH-2.0-OpenSSH_9.6\r\n", False,
     "the server answered, but not with TLS (it begins 53 ('S'): looks like SSH or SIP?)"),
    # fewer bytes than a record header: was "the server closed the connection during the TLS handshake (3
    # bytes from it)" (kind unreachable), and held open "TLS handshake timeout after 0.5s"; quoted up to the
    # first byte that cannot begin a TLS record (X39: the same text however the bytes came)
    (b"no\n", True, "the server answered, but not with TLS (it begins 6e ('n'))"),
    (b"no\n", False, "the server answered, but not with TLS (it begins 6e ('n'))"),
])
def test_an_answer_that_is_not_tls_is_said_with_its_first_bytes(sent: bytes, then_close: bool,
                                                                 said: str) -> None:
    port, err = _open_fails(sent, then_close=then_close)
    assert str(err) == f"{HOST}:{port}: {said}" and err.kind == "tls"


@pytest.mark.parametrize(("sent", "then_close", "kind", "said"), [
    (ALERT, True, "tls", "TLS handshake failed: SSLV3_ALERT_HANDSHAKE_FAILURE"),
    (b"", True, "unreachable", "the server closed the connection during the TLS handshake (0 bytes from it)"),
    (b"", False, "timeout", f"TLS handshake timeout after {TIMEOUT}s"),
])
def test_a_real_handshake_failure_and_no_answer_are_said_as_before(sent: bytes, then_close: bool, kind: str,
                                                                   said: str) -> None:
    port, err = _open_fails(sent, then_close=then_close)
    assert str(err) == f"{HOST}:{port}: {said}" and err.kind == kind


def test_the_tvs_client_names_it_among_the_servers_tried() -> None:
    async def main() -> None:
        async with answering(HTTP) as port:
            with pytest.raises(TransportError) as err:
                await tvs_query([(HOST, port)], "CP-8861-SEP0A00000000D5", "CN=signer", "CN=issuer", b"\x01",
                                timeout=TIMEOUT)
            assert err.value.message == f"{NO_TVS_ANSWER}{HOST}:{port}: {NOT_TLS_HTTP}"
            assert err.value.kind == "tls"
    run(main())


def test_the_phone_decides_tvs_unreachable_and_says_what_the_server_said(lab: LabCluster) -> None:
    """Spec §G.3.4: the decision stays the unreachable rule; the reason is the server's answer, not "TLS
    handshake failed"."""
    async def main() -> None:
        async with answering(HTTP) as port:
            asker = net_tvs_asker(timeout=TIMEOUT)

            async def ours(servers: Sequence[Server], key: QueryKey, *, device_name: str,
                           accept_server: Callable[[bytes | None], bool] | None) -> TvsResult:
                return await asker([Server(host=HOST, port=port, priority=0)], key, device_name=device_name,
                                   accept_server=accept_server)

            phone = Phone(mac=MAC, profile=get_profile("cp-8861"), clock=lambda: NOW, flash=None,
                          mic=lab.phone_identity(MAC), image_signers=[lab.identity("imagesigning").cert],
                          tvs=ours)
            target, fetcher = BootTarget(host=HOST, tftp_port=69), MemoryFetcher(lab.get)
            assert (await phone.boot(target, fetcher=fetcher)).ok  # installs the ITL (with its TVS record)
            lab.regenerate("itlrecovery", now=NOW)  # the next ITL's signer is unknown: TVS is asked
            report = await phone.boot(target, fetcher=fetcher)
            d = report.deciding
            assert d is not None and d.rule == "G.3.4-tvs-unreachable" and report.locked_out
            said = f"{HOST}:{port}: {NOT_TLS_HTTP}"
            assert said in d.reason and "handshake failed" not in d.reason, d.reason
            assert any(said in line for line in report.timeline), report.timeline
    run(main())
