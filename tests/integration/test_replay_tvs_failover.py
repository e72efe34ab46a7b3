"""``replay --keylog`` of a boot whose phone failed over from one TVS server to the next (spec §E.1).

A phone tries its config's TVS servers in priority order and uses the first that answers. Before, the
replay answered a QUERY with the first captured exchange of that phone, issuer and serial: a boot whose
QUERY to server A was cut (A down) and whose QUERY to server B was answered replayed as "unreachable"
(``no TVS server answered: A: captured TVS query got no answer``) although the live phone took B's
answer; and a boot where every server failed named only the first one.
"""

from __future__ import annotations

import asyncio
import dataclasses
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from phoneemu.errors import TransportError
from phoneemu.formats.config import Server
from phoneemu.net.tls_decrypt import parse_keylog
from phoneemu.net.tvs_client import NO_TVS_ANSWER
from phoneemu.phone.events import QueryKey
from phoneemu.phone.store import TvsAnswer, TvsStatus
from phoneemu.protocols import tvs
from phoneemu.scenario.replay import replay_phone
from phoneemu.scenario.replay_tvs import CapturedTvs, CaptureScan, TvsCapture, scan_capture

ROOT = Path(__file__).resolve().parents[2]
MAC = "0A0000007401"
KEY = QueryKey(subject="CN=ITLRECOVERY", issuer="CN=ITLRECOVERY", serial=b"\x01")
A, B = ("10.0.0.5", 2445), ("10.0.0.6", 2445)
SERVERS = (Server(host=B[0], port=B[1], priority=1), Server(host=A[0], port=A[1], priority=0))  # A first
CUT = "captured TVS query got no answer"
NO_QUERY = "no such TVS query of this phone in the capture"
QUERY_RESPONSE = tvs.TvsMsgType.QUERY_RESPONSE
VALID = tvs.TvsResponse(session_id=1, msg_type=QUERY_RESPONSE, status=0, certificate=b"the signer",
                        roles=(0, 2), ttl=600)
UNKNOWN = tvs.TvsResponse(session_id=1, msg_type=QUERY_RESPONSE, status=1)


def _exchange(server: tuple[str, int], response: tvs.TvsResponse | None, order: int) -> CapturedTvs:
    request = tvs.QueryRequest(session_id=1, device_name=f"CP-8861-SEP{MAC}", subject=KEY.subject,
                               issuer=KEY.issuer, serial=KEY.serial)
    return CapturedTvs(start=float(order), client=("10.1.0.9", 40000 + order), server=server, tls="TLSv1.2",
                       request=request, response=response, order=order)


def _ask(*exchanges: CapturedTvs, questions: int = 1, servers: Any = SERVERS) -> list[Any]:
    """What the replayed phone gets for ``questions`` QUERYs of one boot (an answer or the TransportError)."""
    ask = TvsCapture(exchanges=exchanges, tls_connections=len(exchanges), not_tvs=0,
                     problems=()).asker(lambda: (0, 100))

    async def each() -> list[Any]:
        out: list[Any] = []
        for _ in range(questions):
            try:
                out.append(await ask(servers, KEY, device_name=f"CP-8861-SEP{MAC}", accept_server=None))
            except TransportError as exc:
                out.append(exc)
        return out
    return asyncio.run(each())


def test_a_cut_query_to_the_first_server_fails_over_to_the_next_ones_answer() -> None:
    """§E.1: A's exchange cut, B's answered → B's answer, as the live phone used it."""
    (got,) = _ask(_exchange(A, None, 3), _exchange(B, VALID, 4))
    assert isinstance(got, TvsAnswer) and got.cert_der == b"the signer"
    (unknown,) = _ask(_exchange(A, None, 3), _exchange(B, UNKNOWN, 4))
    assert unknown is TvsStatus.NOT_FOUND  # "unknown certificate" is an answer: no further server


def test_the_cut_connection_listed_after_the_answer_still_counts_first() -> None:
    """A cut connection is listed when it ends (after B's, maybe): the rank of its start orders it, so it
    is the first try of the question B answered, not a later question's."""
    answered, later = _ask(_exchange(B, VALID, 4), _exchange(A, None, 3), questions=2)
    assert isinstance(answered, TvsAnswer) and isinstance(later, TransportError)
    assert later.message == f"{NO_TVS_ANSWER}10.0.0.5:2445: {NO_QUERY}; 10.0.0.6:2445: {NO_QUERY}"


def test_the_first_server_answering_is_used_and_the_next_never_asked() -> None:
    (got,) = _ask(_exchange(A, VALID, 3))
    assert isinstance(got, TvsAnswer)
    first, second = _ask(_exchange(A, UNKNOWN, 3), _exchange(B, VALID, 4), questions=2)
    assert first is TvsStatus.NOT_FOUND  # B's exchange is another question's, not this one's
    assert isinstance(second, TvsAnswer)


def test_every_server_failing_names_each_in_the_order_tried() -> None:
    (both,) = _ask(_exchange(A, None, 3), _exchange(B, None, 4))
    assert isinstance(both, TransportError) and both.kind == "unreachable"
    assert both.message == f"{NO_TVS_ANSWER}10.0.0.5:2445: {CUT}; 10.0.0.6:2445: {CUT}"
    (one,) = _ask(_exchange(A, None, 3))  # B not in the capture: down before TLS
    assert isinstance(one, TransportError)
    assert one.message == f"{NO_TVS_ANSWER}10.0.0.5:2445: {CUT}; 10.0.0.6:2445: {NO_QUERY}"
    (none,) = _ask()
    assert isinstance(none, TransportError)
    assert none.message == f"{NO_TVS_ANSWER}10.0.0.5:2445: {NO_QUERY}; 10.0.0.6:2445: {NO_QUERY}"


def test_each_question_takes_its_own_tries() -> None:
    """A question's tries go forward in the phone's order: a server again starts the next question (a
    boot asking twice: both servers cut, then A cut and B answering)."""
    first, second = _ask(*(_exchange(s, r, n) for n, (s, r) in enumerate(
        [(A, None), (B, None), (A, None), (B, VALID)], start=3)), questions=2)
    assert isinstance(first, TransportError) and first.message.count(CUT) == 2
    assert isinstance(second, TvsAnswer)
    a_then_a = _ask(_exchange(A, None, 3), _exchange(A, VALID, 4), questions=2)
    assert isinstance(a_then_a[0], TransportError) and isinstance(a_then_a[1], TvsAnswer)


def test_an_address_the_config_does_not_name_is_a_try_of_its_own() -> None:
    """A config naming host names (the capture holds addresses): the tries in capture order, as many as
    the config's servers; the failure names the captured addresses."""
    named = (Server(host="tvs-a.lab", port=2445, priority=0), Server(host="tvs-b.lab", port=2445, priority=1))
    (got,) = _ask(_exchange(A, None, 3), _exchange(B, VALID, 4), servers=named)
    assert isinstance(got, TvsAnswer)
    (failed,) = _ask(_exchange(("10.0.0.7", 2445), None, 3), servers=[A])
    assert isinstance(failed, TransportError)
    assert failed.message == f"{NO_TVS_ANSWER}10.0.0.7:2445: {CUT}"


# --------------------------------------------------------------------------- a replayed boot
PCAP = ROOT / "captures" / "callmanager-regenerated-via-tvs.pcap"  # boot 2: TVS vouches, ITL updated
PHONE = "0A0000000301"
DOWN = ("127.0.0.99", 2445)  # the phone's first TVS server, down: its QUERY cut


@cache
def _scan() -> CaptureScan:
    return scan_capture(PCAP, mac=PHONE, secrets=parse_keylog(PCAP.with_suffix(".keys").read_text()))


class _DownFirst:
    """The capture's TVS with a cut QUERY to :data:`DOWN` before the phone's answered one, and a phone
    whose config names :data:`DOWN` before its own TVS server (the captured config names one)."""

    def __init__(self, capture: TvsCapture) -> None:
        (answered,) = [ex for ex in capture.exchanges if ex.mac == PHONE]
        cut = dataclasses.replace(answered, server=DOWN, response=None, order=answered.order - 1)
        self.capture = dataclasses.replace(capture, exchanges=(cut, *capture.exchanges))

    def asker(self, *args: Any, **kwargs: Any) -> Any:
        ask = self.capture.asker(*args, **kwargs)

        async def down_first(servers: Any, key: Any, **kw: Any) -> Any:
            return await ask((Server(host=DOWN[0], port=DOWN[1], priority=0), *servers), key, **kw)
        return down_first


def _decided(tvs_capture: Any) -> list[tuple[Any, ...]]:
    results = asyncio.run(replay_phone(_scan().index, PHONE, tvs_capture=tvs_capture))
    return [(r.report.trust, r.report.deciding.rule if r.report.deciding else None) for r in results]


def test_a_boot_that_failed_over_replays_as_the_live_phone_decided() -> None:
    """§E.1, §G.3.4: the live phone's QUERY to the first server was cut and the next one vouched for the
    new signer: ITL updated, as the replay of the capture without the cut QUERY decides."""
    live = _decided(_scan().tvs)
    assert live[-1][0]["ITL"] == "updated", live
    assert _decided(_DownFirst(_scan().tvs)) == live


@pytest.mark.parametrize("servers", [[A, B], [B, A]])
def test_tries_in_another_order_than_the_config_still_answer(servers: list[tuple[str, int]]) -> None:
    """A phone that tried B before A (another priority in the live config than in the replayed one): the
    question is B's cut try and A's answer whatever the order the replayed config gives."""
    (got,) = _ask(_exchange(B, None, 3), _exchange(A, VALID, 4), servers=servers)
    assert isinstance(got, TvsAnswer)
