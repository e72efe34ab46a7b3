"""``replay --keylog``: a TVS server refused, then the next one's QUERY cut (spec §E.1;
:mod:`phoneemu.scenario.replay_tvs`, "Refused, then cut").

The phone's config names A then B; A presents a certificate the phone's ITL does not name (no QUERY), B's
QUERY connection is cut before an answer. Live, the boot notes A as refused (``TVS server A certificate is
not an ITL TVS record: not used (spec E.1)``) and says TVS unreachable. The replay said ``A: no such TVS
query of this phone in the capture`` and noted nothing: a QUERY connection's certificate was not kept, so
the phone's check could not be run on B (judging A alone would have made it "no trusted TVS server").
"""

from __future__ import annotations

import asyncio
import datetime as dt
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from phoneemu.crypto.certs import CertRequest, cert_der, issue_certificate
from phoneemu.crypto.keys import KeySpec, generate_key
from phoneemu.errors import TransportError
from phoneemu.formats.config import Server
from phoneemu.net.tls import client_context_verify_after_handshake, server_context
from phoneemu.net.tls_decrypt import parse_keylog
from phoneemu.net.tvs_client import NO_TVS_ANSWER, server_judged, tvs_query
from phoneemu.phone.events import QueryKey
from phoneemu.protocols import tvs
from phoneemu.scenario import replay_tvs
from phoneemu.scenario.replay import replay_phone
from phoneemu.scenario.replay_tvs import (
    REFUSED,
    CapturedCert,
    CapturedTvs,
    TvsCollector,
)
from tests.helpers import MemoryTlsPair, run_within
from tests.replay_helpers import (
    NOT_IN_ITL,
    REFUSAL_NOTE,
    VIA_TVS_PHONE,
    RefusedFirst,
    query_exchange,
    shown_certificate,
    tvs_capture,
    via_tvs_scan,
)

MAC = "0A0000007402"
DEVICE = f"CP-8861-SEP{MAC}"
KEY = QueryKey(subject="CN=ITLRECOVERY", issuer="CN=ITLRECOVERY", serial=b"\x01")
A, B = ("10.0.0.5", 2445), ("10.0.0.6", 2445)
GOOD, BAD = b"the ITL's TVS", NOT_IN_ITL
CUT = "captured TVS query got no answer"
NO_QUERY = "no such TVS query of this phone in the capture"

run = run_within(20)


def _exchange(server: tuple[str, int], order: int, cert: bytes | None, *, cut: bool = True) -> CapturedTvs:
    response = None if cut else tvs.TvsResponse(session_id=order, msg_type=tvs.TvsMsgType.QUERY_RESPONSE,
                                                status=0, certificate=b"the signer", roles=(0,), ttl=60)
    return query_exchange(server, order, device=DEVICE, key=KEY, response=response, certificate=cert)


def _ask(exchanges: tuple[CapturedTvs, ...], shown: tuple[CapturedCert, ...] = (), *, good: bytes = GOOD,
         servers: Any = (A, B)) -> tuple[Any, list[tuple[str | None, bytes | None]]]:
    """One question of a phone whose ITL names ``good`` only: (the answer or TransportError, each server
    judged as ``server_judged()`` names it and the certificate)."""
    judged: list[tuple[str | None, bytes | None]] = []

    def accept(der: bytes | None) -> bool:
        judged.append((server_judged(), der))
        return der == good

    ask = tvs_capture(exchanges, shown).asker(lambda: (0, 100))
    try:
        return asyncio.run(ask(servers, KEY, device_name=DEVICE, accept_server=accept)), judged
    except TransportError as exc:
        return exc, judged


# --------------------------------------------------------------------------- the asker
def test_refused_then_cut_judges_both_servers_and_names_the_refusal() -> None:
    """§E.1: A refused (its certificate, no QUERY), B accepted and its QUERY cut: both judged in the
    phone's order, the failure names A as refused (kind: B's, the last one's)."""
    exc, judged = _ask((_exchange(B, 4, GOOD),), (shown_certificate(A, BAD, 3),))
    assert isinstance(exc, TransportError) and exc.kind == "unreachable"
    assert exc.message == f"{NO_TVS_ANSWER}10.0.0.5:2445: {REFUSED}; 10.0.0.6:2445: {CUT}"
    assert judged == [("10.0.0.5:2445", BAD), ("10.0.0.6:2445", GOOD)]


def test_a_cut_server_the_replayed_phone_refuses_is_a_refusal() -> None:
    """The replayed phone's check decides (its ITL may not be the live phone's): every server refused."""
    exc, judged = _ask((_exchange(B, 4, BAD),), (shown_certificate(A, BAD, 3),))
    assert isinstance(exc, TransportError) and exc.kind == "tls"
    assert exc.message == f"{NO_TVS_ANSWER}10.0.0.5:2445: {REFUSED}; 10.0.0.6:2445: {REFUSED}"
    assert [der for _, der in judged] == [BAD, BAD]


@pytest.mark.parametrize(("exchanges", "shown", "message", "judged"), [
    # A's connection after B's try: another question's (A is ahead of B in the phone's order)
    ((_exchange(B, 4, GOOD),), (shown_certificate(A, BAD, 5),),
     f"10.0.0.5:2445: {NO_QUERY}; 10.0.0.6:2445: {CUT}", [GOOD]),
    # A cut, B refused after it (B after A in the phone's order: any connection in the span)
    ((_exchange(A, 3, GOOD),), (shown_certificate(B, BAD, 5),),
     f"10.0.0.5:2445: {CUT}; 10.0.0.6:2445: {REFUSED}", [GOOD, BAD]),
    # both cut, both accepted: as before
    ((_exchange(A, 3, GOOD), _exchange(B, 4, GOOD)), (), f"10.0.0.5:2445: {CUT}; 10.0.0.6:2445: {CUT}",
     [GOOD, GOOD]),
])
def test_which_connections_are_judged(exchanges: tuple[CapturedTvs, ...], shown: tuple[CapturedCert, ...],
                                      message: str, judged: list[bytes]) -> None:
    exc, seen = _ask(exchanges, shown)
    assert isinstance(exc, TransportError) and exc.message == NO_TVS_ANSWER + message
    assert [der for _, der in seen] == judged


def test_a_try_whose_certificate_is_not_known_judges_nothing() -> None:
    """Beyond the certificates' caps (or TLS 1.3 without its handshake secret) B's certificate is not
    known: nothing is judged (A's refusal alone would make it "no trusted TVS server"), as before."""
    exc, judged = _ask((_exchange(B, 4, None),), (shown_certificate(A, BAD, 3),))
    assert isinstance(exc, TransportError) and judged == []
    assert exc.message == f"{NO_TVS_ANSWER}10.0.0.5:2445: {NO_QUERY}; 10.0.0.6:2445: {CUT}"


# --------------------------------------------------------------------------- as the live client judges
@cache
def _identity(name: str) -> tuple[Any, Any]:
    now = dt.datetime.now(dt.UTC)
    key = generate_key(KeySpec.parse("ec-p256"))
    req = CertRequest(subject=f"CN={name};O=phoneemu", public_key=key.public_key(), serial=21,
                      not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=30))
    return key, issue_certificate(req, issuer_key=key)


async def _live() -> tuple[TransportError, list[tuple[str | None, bytes | None]], dict[str, bytes], Any]:
    """The live TVS client against A (presenting a certificate the ITL does not name) and B (the ITL's,
    closing the connection once the QUERY is in), on loopback: its failure, what it judged, the
    certificates, the servers."""
    ders: dict[str, bytes] = {}

    async def refused(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)  # the phone hangs up after the handshake
        writer.close()

    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)  # the QUERY; no answer
        writer.close()

    listening = []
    for name, handler in (("refused", refused), ("cut", cut)):
        key, cert = _identity(name)
        ders[name] = cert_der(cert)
        listening.append(await asyncio.start_server(handler, "127.0.0.1", 0, ssl=server_context(cert, key)))
    servers = [Server(host="127.0.0.1", port=s.sockets[0].getsockname()[1], priority=n)
               for n, s in enumerate(listening)]
    judged: list[tuple[str | None, bytes | None]] = []

    def accept(der: bytes | None) -> bool:
        judged.append((server_judged(), der))
        return der == ders["cut"]

    try:
        await tvs_query(servers, DEVICE, KEY.subject, KEY.issuer, KEY.serial, timeout=5,
                        tls=client_context_verify_after_handshake(), accept_server=accept)
    except TransportError as exc:
        return exc, judged, ders, servers
    finally:
        for s in listening:
            s.close()
            await s.wait_closed()
    raise AssertionError("the live client got an answer")


def test_the_replay_judges_as_the_live_client_judged() -> None:
    """The same servers, the same certificates: the replay judges each server the live client judged, in
    the same order and under the same name, and names A's refusal in the same words."""
    live, live_judged, ders, servers = run(_live())
    a, b = ((s.host, s.port) for s in servers)
    exc, judged = _ask((_exchange(b, 4, ders["cut"]),), (shown_certificate(a, ders["refused"], 3),),
                       good=ders["cut"], servers=servers)
    assert judged == live_judged
    assert live_judged == [(f"127.0.0.1:{a[1]}", ders["refused"]), (f"127.0.0.1:{b[1]}", ders["cut"])]
    assert isinstance(exc, TransportError)
    refused_a = f"{NO_TVS_ANSWER}127.0.0.1:{a[1]}: {REFUSED}; 127.0.0.1:{b[1]}: "
    assert live.message.startswith(refused_a) and exc.message.startswith(refused_a)


# --------------------------------------------------------------------------- a replayed boot
def test_a_replayed_boot_notes_the_refusal_and_says_tvs_unreachable() -> None:
    """The live boot notes the refused server by HOST:PORT and, its QUERY to the next server cut, says TVS
    unreachable (the next server was reached and accepted: not "no trusted TVS server")."""
    scan = via_tvs_scan()
    refused_then_cut = RefusedFirst(scan.tvs, cut=True)
    results = asyncio.run(replay_phone(scan.index, VIA_TVS_PHONE, tvs_capture=refused_then_cut))
    timeline = results[-1].report.timeline
    note = REFUSAL_NOTE.format("127.0.0.99:2445")
    assert sum(line.endswith(note) for line in timeline) == 1
    (failure,) = [line for line in timeline if "TVS unreachable (unreachable): " in line]
    assert failure.endswith(f"{NO_TVS_ANSWER}127.0.0.99:2445: {REFUSED}; 127.0.0.11:41191: {CUT}")
    assert not any("no trusted TVS server" in line for line in timeline)


# --------------------------------------------------------------------------- kept by the scan
def _query_connection(cert: Any, key: Any, keylog: Path, *, send: bool = True) -> tuple[bytes, bytes, str]:
    """A TLS 1.2 connection whose client sends a QUERY (or nothing), no answer: (client, server, key log)."""
    pair = MemoryTlsPair(client_context_verify_after_handshake(keylog_filename=keylog, max_version="1.2"),
                         server_context(cert, key, max_version="1.2"))
    pair.handshake()
    if send:
        pair.client.write(tvs.encode(tvs.query_request(1, DEVICE, KEY.subject, KEY.issuer, KEY.serial)))
        pair.pump()
    return bytes(pair.to_server), bytes(pair.to_client), keylog.read_text()


def test_a_query_connection_keeps_its_server_certificate_once(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The collector keeps the certificate of each QUERY connection, one copy with those of the
    connections without a request; beyond the distinct certificates' cap: None (the exchange kept)."""
    key, cert = _identity("cut")
    client, server, text = _query_connection(cert, key, tmp_path / "query.keys")
    silent_client, silent_server, silent_text = _query_connection(cert, key, tmp_path / "silent.keys",
                                                                  send=False)
    log = parse_keylog(text + silent_text)
    collector = TvsCollector(log)
    for n, (c, s) in enumerate([(client, server), (silent_client, silent_server), (client, server)]):
        collector.connection(client=("10.1.0.9", 40000 + n), server=B, start=float(n), order=n,
                             client_stream=c, server_stream=s, problem="")
    got = collector.result(3)
    assert [ex.certificate for ex in got.exchanges] == [cert_der(cert)] * 2
    assert [c.certificate for c in got.presented] == [cert_der(cert)]
    certificates = [*(ex.certificate for ex in got.exchanges), *(c.certificate for c in got.presented)]
    assert len({id(c) for c in certificates}) == 1
    monkeypatch.setattr(replay_tvs, "MAX_CERTIFICATES", 0)
    full = TvsCollector(log)
    full.connection(client=("10.1.0.9", 40000), server=B, start=0.0, order=0, client_stream=client,
                    server_stream=server, problem="")
    (kept,) = full.result(1).exchanges
    assert kept.certificate is None and kept.response is None
