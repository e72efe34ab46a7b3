"""``replay --keylog``: two gaps of TVS failover (spec §E.1; :mod:`phoneemu.scenario.replay_tvs`).

1. A server the phone refused (TLS done, no QUERY) before it failed over to the next one, which answered:
   the live boot notes the refusal (``TVS server HOST:PORT certificate is not an ITL TVS record: not used
   (spec E.1)``); the replay did not judge that connection, so its timeline lacked the note.
2. A server down without TLS for a first question that answers a second question of the same boot: the
   first question took the second one's answer (its tries were looked for in the whole boot window); each
   question now takes the connections between the boot's request before it and the next one
   (:mod:`phoneemu.scenario.replay`, "TVS questions").
"""

from __future__ import annotations

import asyncio
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.formats.config import Server
from phoneemu.phone.events import QueryKey
from phoneemu.phone.store import TvsAnswer
from phoneemu.protocols import tvs
from phoneemu.scenario._capture_flows import Download
from phoneemu.scenario.replay import ReplayBoot, ReplayFetcher, replay_boots, replay_phone
from phoneemu.scenario.replay_tvs import CapturedCert, CapturedTvs, TvsCapture
from tests.replay_helpers import (
    NOT_IN_ITL,
    PHONE_IP,
    REFUSAL_NOTE,
    VIA_TVS_PHONE,
    AskingPhone,
    RefusedFirst,
    query_exchange,
    shown_certificate,
    stand_in_phone,
    tvs_capture,
    via_tvs_scan,
)

MAC = "0A0000007401"
DEVICE = f"CP-8861-SEP{MAC}"
KEY = QueryKey(subject="CN=ITLRECOVERY", issuer="CN=ITLRECOVERY", serial=b"\x01")
A, B = ("10.0.0.5", 2445), ("10.0.0.6", 2445)
SERVERS = (Server(host=A[0], port=A[1], priority=0), Server(host=B[0], port=B[1], priority=1))
TFTP = ("10.0.0.1", 6970)
VALID = tvs.TvsResponse(session_id=1, msg_type=tvs.TvsMsgType.QUERY_RESPONSE, status=0,
                        certificate=b"the signer", roles=(0, 2), ttl=600)
GOOD, BAD = b"the ITL's TVS", NOT_IN_ITL


def _exchange(server: tuple[str, int], response: tvs.TvsResponse | None, order: int) -> CapturedTvs:
    return query_exchange(server, order, device=DEVICE, key=KEY, response=response)


# --------------------------------------------------------------------------- 1. refused, then failed over
def _ask_judging(capture: TvsCapture, servers: Any = SERVERS) -> tuple[Any, list[bytes | None]]:
    """One question of a phone whose ITL names ``GOOD`` only: (the answer, the certificates judged)."""
    judged: list[bytes | None] = []

    def accept(der: bytes | None) -> bool:
        judged.append(der)
        return der == GOOD

    ask = capture.asker(lambda: (0, 100))
    return asyncio.run(ask(servers, KEY, device_name=DEVICE, accept_server=accept)), judged


def test_a_server_refused_before_the_answering_one_is_judged() -> None:
    """§E.1: A presented a certificate the phone refused (no QUERY), B answered: A's certificate is
    judged by the phone's check (whose note names A), B's answer stands."""
    got, judged = _ask_judging(tvs_capture((_exchange(B, VALID, 4),), (shown_certificate(A, BAD, 3),)))
    assert isinstance(got, TvsAnswer) and got.cert_der == b"the signer"
    assert judged == [BAD]


@pytest.mark.parametrize(("shown", "exchanges"), [
    # after the answer: another question's
    ((shown_certificate(A, BAD, 5),), (_exchange(B, VALID, 4),)),
    # a server after the answering one: never tried
    ((shown_certificate(B, BAD, 3),), (_exchange(A, VALID, 4),)),
    # A was asked: its QUERY cut
    ((shown_certificate(A, BAD, 3),), (_exchange(A, None, 2), _exchange(B, VALID, 4))),
])
def test_no_other_connection_is_judged(shown: tuple[CapturedCert, ...], exchanges: tuple[CapturedTvs, ...]
                                       ) -> None:
    got, judged = _ask_judging(tvs_capture(exchanges, shown))
    assert isinstance(got, TvsAnswer) and judged == []


def test_an_accepted_server_before_the_answer_changes_nothing() -> None:
    """A connection the phone would accept (the server hung up before the QUERY): judged, no refusal."""
    got, judged = _ask_judging(tvs_capture((_exchange(B, VALID, 4),), (shown_certificate(A, GOOD, 3),)))
    assert isinstance(got, TvsAnswer) and judged == [GOOD]


def test_a_replayed_boot_notes_the_server_refused_before_the_failover() -> None:
    """The live boot notes each refused server by HOST:PORT (phone/boot.py ``ask_tvs``); replayed, the
    boot that failed over from :data:`~tests.replay_helpers.REFUSING` to its own TVS notes it too, and
    decides as before."""
    scan = via_tvs_scan()
    plain = asyncio.run(replay_phone(scan.index, VIA_TVS_PHONE, tvs_capture=scan.tvs))
    results = asyncio.run(replay_phone(scan.index, VIA_TVS_PHONE, tvs_capture=RefusedFirst(scan.tvs)))
    note = REFUSAL_NOTE.format("127.0.0.99:2445")
    assert [any(line.endswith(note) for line in r.report.timeline) for r in results] == [False, True]
    assert results[-1].report.trust == plain[-1].report.trust == {"CTL": "absent", "ITL": "updated"}
    assert [r.report.deciding for r in results] == [r.report.deciding for r in plain]


# --------------------------------------------------------------------------- 2. each question's own tries
def _download(name: str, order: int, *, port: int = 50000) -> Download:
    return Download(protocol="http", name=name, client=(PHONE_IP, port), server=TFTP, start=float(order),
                    end=float(order), outcome="ok", data=b"x", size=1, order=order)


OWN = (_download(f"CTLSEP{MAC}.tlv", 10), _download(f"ITLSEP{MAC}.tlv", 20),
       _download(f"SEP{MAC}.cnf.xml", 40))
SHARED = (_download("g3-tones.xml.sgn", 50),)  # a cluster-wide name, on the phone's HTTP connection


class _AskingPhone(AskingPhone):
    """The stand-in phone asking :data:`SERVERS` about :data:`KEY` as :data:`DEVICE`."""

    servers, key, device = SERVERS, KEY, DEVICE


@pytest.fixture
def asking_phone(monkeypatch: pytest.MonkeyPatch) -> type[_AskingPhone]:
    return stand_in_phone(monkeypatch, _AskingPhone)


def _replayed(plan: tuple[str, ...], exchanges: tuple[CapturedTvs, ...], boot: ReplayBoot | None = None
              ) -> list[Any]:
    _AskingPhone.plan = plan
    boot = boot or ReplayBoot(mac=MAC, server=TFTP[0], start=10.0, end=60.0, own=OWN, shared=SHARED, order=10)
    results = asyncio.run(replay_boots([boot], MAC, tvs_capture=tvs_capture(exchanges)))
    return list(results[0].report)


ITL_THEN_CONFIG = (f"CTLSEP{MAC}.tlv", f"ITLSEP{MAC}.tlv", "?", f"SEP{MAC}.cnf.xml", "?")


def test_a_server_down_for_the_first_question_answers_the_second(asking_phone: Any) -> None:
    """§E.1 in time order: A and B down without TLS when the ITL's question is asked (no connection),
    A up for the config's question (its QUERY after the config request): the ITL's question is
    unreachable, the config's answered (was: the ITL's took the config's answer, the config's none)."""
    first, second = _replayed(ITL_THEN_CONFIG, (_exchange(A, VALID, 45),))
    assert first == "unreachable" and isinstance(second, TvsAnswer)


def test_a_cut_try_then_the_down_server_answering_the_next_question(asking_phone: Any) -> None:
    """A down without TLS and B's QUERY cut for the ITL's question; A answering the config's: the ITL's
    tries are B's alone (was: B's cut and A's answer, taken from the config's question)."""
    first, second = _replayed(ITL_THEN_CONFIG, (_exchange(B, None, 25), _exchange(A, VALID, 45)))
    assert first == "unreachable" and isinstance(second, TvsAnswer)


def test_a_cluster_wide_request_between_two_questions_parts_them(asking_phone: Any) -> None:
    """The config's question, then a static file (cluster-wide name, fetched on the phone's connection),
    then its question: A's answer after the static file's request is the second question's."""
    plan = (f"CTLSEP{MAC}.tlv", f"ITLSEP{MAC}.tlv", f"SEP{MAC}.cnf.xml", "?", "g3-tones.xml.sgn", "?")
    first, second = _replayed(plan, (_exchange(A, VALID, 55),))
    assert first == "unreachable" and isinstance(second, TvsAnswer)
    # replay --all looks cluster-wide names up: the phone's requests for them come as ranks
    lookup = ReplayBoot(mac=MAC, server=TFTP[0], start=10.0, end=60.0, own=OWN, shared=(), order=10,
                        shared_lookup=lambda name, _clients: [d for d in SHARED if d.name == name],
                        requests=(50,))
    assert [type(a) for a in _replayed(plan, (_exchange(A, VALID, 55),), lookup)] == [str, TvsAnswer]


def test_answered_questions_in_turn_keep_their_answers(asking_phone: Any) -> None:
    """Each question answered where it was asked: ITL's by B after A's cut, config's by A."""
    got = _replayed(ITL_THEN_CONFIG,
                    (_exchange(A, None, 23), _exchange(B, VALID, 25), _exchange(A, VALID, 45)))
    assert [type(a) for a in got] == [TvsAnswer, TvsAnswer]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([A, B]), st.booleans(), st.integers(21, 59)), max_size=6,
                unique_by=lambda t: t[2]))
def test_a_question_never_takes_a_connection_made_after_the_next_request(
        tries: list[tuple[tuple[str, int], bool, int]]) -> None:
    """Property: the ITL's question (asked between the ITL request, rank 20, and the config request, 40)
    is answered only by a connection ranked in between; the config's only by one ranked after 40."""
    import phoneemu.phone.phone

    tries = [t for t in tries if t[2] != 40]  # 40: the config request's rank
    exchanges = tuple(_exchange(s, VALID if ok else None, n) for s, ok, n in tries)
    with mock.patch.object(phoneemu.phone.phone, "Phone", _AskingPhone):  # (hypothesis: no monkeypatch)
        first, second = _replayed(ITL_THEN_CONFIG, exchanges)
    answered = [n for _s, ok, n in tries if ok]
    assert isinstance(first, TvsAnswer) <= any(20 < n < 40 for n in answered)
    assert isinstance(second, TvsAnswer) <= any(n > 40 for n in answered)


def test_the_fetcher_span_follows_the_boot() -> None:
    """:meth:`ReplayFetcher.span`: from the latest request of the phone answered to its next one (or the
    window's end)."""
    boot = ReplayBoot(mac=MAC, server=TFTP[0], start=10.0, end=60.0, own=OWN, shared=SHARED, order=10)
    f = ReplayFetcher(boot)
    assert f.span(99) == (10, 20)

    async def fetch(name: str) -> None:
        await f.fetch(name)
    for name, span in [(f"ITLSEP{MAC}.tlv", (20, 40)), (f"SEP{MAC}.cnf.xml", (40, 50)),
                       ("g3-tones.xml.sgn", (50, 99))]:
        asyncio.run(fetch(name))
        assert f.span(99) == span
