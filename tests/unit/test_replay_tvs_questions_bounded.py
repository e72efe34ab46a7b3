"""``replay --keylog`` of a capture holding many boots of one phone, each asking TVS (hostile or long): each
question looks only at the phone's QUERYs inside its span (:mod:`phoneemu.scenario.replay_tvs`).

Before, every question read every QUERY of the phone in the capture (normalising each issuer DN) and kept
those in its span: n boots asking once each cost n² — 8,000 boots 3.5 s of TVS matching, 32,000 about a
minute, beyond the boots themselves. The phone's QUERYs are now kept by rank and a question bisects to its
span.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.crypto.certs import dn_key
from phoneemu.phone.events import QueryKey
from phoneemu.phone.store import TvsAnswer
from phoneemu.protocols import tvs
from phoneemu.scenario.replay_tvs import CapturedTvs, TvsCapture

MAC, OTHER = "0A0000007401", "0A0000007402"
TVS = ("10.0.0.5", 2445)
VALID = tvs.TvsResponse(session_id=1, msg_type=tvs.TvsMsgType.QUERY_RESPONSE, status=0, certificate=b"signer",
                        roles=(0,), ttl=600)
#: one DN in CUCM's and in certutils' order (one question, spec §A.7), and another
ISSUERS = ("CN=ITLRECOVERY;O=Lab", "O=Lab,CN=ITLRECOVERY", "CN=CallManager;O=Lab")


def _query(order: int, *, mac: str = MAC, issuer: str = ISSUERS[0], serial: bytes = b"\x01") -> CapturedTvs:
    request = tvs.QueryRequest(session_id=1, device_name=f"CP-8861-SEP{mac}", subject=issuer, issuer=issuer,
                               serial=serial)
    return CapturedTvs(start=float(order), client=("10.1.0.9", 40000), server=TVS, tls="TLSv1.2",
                       request=request, response=VALID, order=order)


class _CountedReads(tuple[CapturedTvs, ...]):
    """The capture's exchanges, counting how many times one is read."""

    reads = 0

    def __getitem__(self, i: Any) -> Any:
        type(self).reads += 1
        return super().__getitem__(i)


def test_each_question_reads_only_its_span() -> None:
    """n boots, one QUERY each: the n questions read O(n) exchanges in all (was: every QUERY of the phone
    at every question, n²; n = 300: 90,000 reads)."""
    n = 300
    exchanges = _CountedReads(_query(2 * i + 1) for i in range(n))
    capture = TvsCapture(exchanges=exchanges, tls_connections=n, not_tvs=0, problems=())
    boot = [0]
    ask = capture.asker(lambda: (2 * boot[0], 2 * boot[0] + 2))
    key = QueryKey(subject=ISSUERS[0], issuer=ISSUERS[0], serial=b"\x01")

    async def every_boot() -> list[Any]:
        out = []
        for boot[0] in range(n):
            out.append(await ask([TVS], key, device_name=f"CP-8861-SEP{MAC}", accept_server=None))
        return out
    _CountedReads.reads = 0
    answers = asyncio.run(every_boot())
    assert all(isinstance(a, TvsAnswer) for a in answers)
    assert _CountedReads.reads <= 8 * n  # the phone's QUERYs listed once (2n), then a few per question


_EXCHANGE = st.builds(lambda order, mac, issuer, serial: _query(order, mac=mac, issuer=issuer, serial=serial),
                      st.integers(0, 40), st.sampled_from([MAC, OTHER]), st.sampled_from(ISSUERS),
                      st.sampled_from([b"\x01", b"\x00\x01", b"\x02"]))


@settings(max_examples=80, deadline=None)
@given(st.lists(_EXCHANGE, max_size=12), st.integers(0, 41), st.integers(0, 42) | st.just(10 ** 9),
       st.sets(st.integers(0, 11), max_size=4), st.sampled_from(ISSUERS), st.sampled_from([1, 2]))
def test_the_questions_are_those_a_full_reading_finds(exchanges: list[CapturedTvs], start: int, stop: int,
                                                      used: set[int], issuer: str, serial: int) -> None:
    """Property: the QUERYs of a question are those of the phone about that issuer (any RDN order) and serial
    in ``[start, stop)`` not used yet, in capture order (rank, then as listed) — as reading all of them."""
    capture = TvsCapture(exchanges=tuple(exchanges), tls_connections=len(exchanges), not_tvs=0, problems=())
    want = sorted((i for i, ex in enumerate(exchanges)
                   if ex.mac == MAC and start <= ex.order < stop and i not in used
                   and dn_key(ex.request.issuer) == dn_key(issuer)
                   and isinstance(ex.request, tvs.QueryRequest)
                   and int.from_bytes(ex.request.serial, "big") == serial),
                  key=lambda i: exchanges[i].order)
    assert capture._questions(MAC, dn_key(issuer), serial, (start, stop), used) == want
