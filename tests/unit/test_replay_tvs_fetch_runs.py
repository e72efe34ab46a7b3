"""``replay --keylog``: a TVS question after a fetch answered from a run of requests of one name
(:mod:`phoneemu.scenario.replay`, "TVS questions").

The live boot fetched its config, asked TVS about the config's signer (vouched: ``G.4-vouched-by-tvs``),
ran CAPF, which installed an LSC, and fetched the config again at once (spec §G.12.4): the capture holds
config, QUERY, config — the two requests of the config one run. The replayed fetch of the config was taken
to stand for the whole run, so the question's span began after the second request and missed the QUERY:
``G.4-tvs-unreachable ... no such TVS query of this phone in the capture`` (the phone locked out) where
the live phone accepted the config. A fetch ends at its first complete download: the span now begins
there.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.errors import TransportError
from phoneemu.formats.config import Server
from phoneemu.phone.events import QueryKey
from phoneemu.phone.store import TvsAnswer
from phoneemu.protocols import tvs
from phoneemu.scenario._capture_flows import Download
from phoneemu.scenario.replay import ReplayBoot, ReplayFetcher, replay_boots
from phoneemu.scenario.replay_tvs import CapturedTvs
from tests.replay_helpers import PHONE_IP, AskingPhone, query_exchange, stand_in_phone, tvs_capture

MAC = "0A0000007701"
DEVICE = f"CP-8861-SEP{MAC}"
KEY = QueryKey(subject="CN=lab-pub", issuer="CN=lab-pub", serial=b"\x07")
TVS = ("10.0.0.5", 2445)
SERVERS = (Server(host=TVS[0], port=TVS[1], priority=0),)
PHONE, TFTP = (PHONE_IP, 39151), ("10.0.0.1", 6970)
CONFIG = f"SEP{MAC}.cnf.xml.sgn"
VALID = tvs.TvsResponse(session_id=1, msg_type=tvs.TvsMsgType.QUERY_RESPONSE, status=0,
                        certificate=b"the new CallManager", roles=(0, 2), ttl=600)


def _download(name: str, order: int, outcome: str = "ok") -> Download:
    ok = outcome == "ok"
    return Download(protocol="http", name=name, client=PHONE, server=TFTP, start=float(order),
                    end=float(order), outcome=outcome, data=b"x" if ok else None, size=1 if ok else None,
                    order=order)


def _query(order: int) -> CapturedTvs:
    return query_exchange(TVS, order, device=DEVICE, key=KEY, response=VALID)


def _boot(own: tuple[Download, ...]) -> ReplayBoot:
    return ReplayBoot(mac=MAC, server=TFTP[0], start=10.0, end=90.0, own=own, shared=(), order=own[0].order)


# the live boot: CTL, ITL (its download failed: the old ITL kept), config, QUERY at 50, CAPF, config again
CAPF_BOOT = (_download(f"CTLSEP{MAC}.tlv", 10, "not-found"), _download(f"ITLSEP{MAC}.tlv", 20, "error"),
             _download(CONFIG, 40), _download(CONFIG, 60))


class _AskingPhone(AskingPhone):
    """The stand-in phone asking :data:`SERVERS` about :data:`KEY` as :data:`DEVICE`."""

    servers, key, device = SERVERS, KEY, DEVICE


@pytest.fixture
def asking_phone(monkeypatch: pytest.MonkeyPatch) -> type[_AskingPhone]:
    return stand_in_phone(monkeypatch, _AskingPhone)


def _replayed(plan: tuple[str, ...], own: tuple[Download, ...], queries: tuple[CapturedTvs, ...]
              ) -> list[Any]:
    _AskingPhone.plan = plan
    (result,) = asyncio.run(replay_boots([_boot(own)], MAC, tvs_capture=tvs_capture(queries)))
    return list(result.report)


def test_the_question_after_a_config_fetched_again_takes_its_query(asking_phone: Any) -> None:
    """Live: config, QUERY (vouched), CAPF, config again. Replayed (no CAPF offline): the config's question
    is answered by the QUERY between the two requests (was: 'unreachable', its span after the second)."""
    (answer,) = _replayed((f"CTLSEP{MAC}.tlv", f"ITLSEP{MAC}.tlv", CONFIG, "?"), CAPF_BOOT, (_query(50),))
    assert isinstance(answer, TvsAnswer) and answer.cert_der == b"the new CallManager"


def test_a_query_after_the_second_request_is_a_later_fetchs(asking_phone: Any) -> None:
    """The QUERY after the config's second request was asked for that fetch, not the first one's."""
    (answer,) = _replayed((f"CTLSEP{MAC}.tlv", f"ITLSEP{MAC}.tlv", CONFIG, "?"), CAPF_BOOT, (_query(70),))
    assert answer == "unreachable"


def _span_after(own: tuple[Download, ...], name: str) -> tuple[float, float]:
    f = ReplayFetcher(_boot(own))

    async def fetch() -> None:
        with contextlib.suppress(TransportError):
            await f.fetch(name)
    asyncio.run(fetch())
    return f.span(99)


def test_the_span_begins_at_the_download_answered_with() -> None:
    """Retries before the first complete download are the fetch's (HTTP error, then TFTP); a request after
    it a later fetch's; a run with no complete download is the fetch's whole (answered with its last)."""
    assert _span_after(CAPF_BOOT, CONFIG) == (40, 60)
    retried = (_download(CONFIG, 40, "error"), _download(CONFIG, 45), _download(CONFIG, 60))
    assert _span_after(retried, CONFIG) == (45, 60)
    failed = (_download(CONFIG, 40, "error"), _download(CONFIG, 45, "no-reply"), _download("other", 60))
    assert _span_after(failed, CONFIG) == (45, 60)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["ok", "error", "not-found"]), min_size=1, max_size=6))
def test_the_span_never_starts_after_the_download_answered_with(outcomes: list[str]) -> None:
    """Property: after one fetch of a run of requests of the config, the question's span starts at the
    first complete download (the one the phone is answered with), else at the run's last request; and it
    ends at the run's next request, else at the window's end."""
    own = tuple(_download(CONFIG, 40 + 5 * i, o) for i, o in enumerate(outcomes))
    start, stop = _span_after(own, CONFIG)
    first_ok = next((d.order for d in own if d.ok), None)
    assert start == (first_ok if first_ok is not None else own[-1].order)
    later = [d.order for d in own if d.order > start]
    assert stop == (later[0] if later else 99)
