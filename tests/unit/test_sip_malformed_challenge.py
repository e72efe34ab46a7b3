"""A registrar's 401 whose digest challenge does not parse (spec §G.13; :mod:`phoneemu.phone.sip`).

Rules: §G.13 says CUCM answers with a 401 carrying realm and nonce, and no more of a malformed one; ours:
it is the registrar answering, not an unreachable one, so the phone stops there —
``G.13-registrar-refused`` (status 401) naming the field and the offset of the parse error — and does not
go on to the config's next CallManager (it does that only when it has no usable connection)."""

from __future__ import annotations

import pytest

from phoneemu.formats import config as config_fmt
from phoneemu.phone.events import EventLog
from phoneemu.phone.profile import get_profile
from phoneemu.phone.sip import SipResult, register
from phoneemu.phone.store import AcceptedConfig, TrustStore
from phoneemu.protocols import sip
from tests.helpers import run, sip_line_store
from tests.sip_helpers import SipAnswer, sip_far_end

MAC = "0011223344AB"
REALM = "ccmsipline"


def _store(ports: list[int]) -> TrustStore:
    """A phone with a SIP line whose config names CallManagers on 127.0.0.1 at ``ports``, in that
    priority order."""
    line = sip_line_store(MAC, "alice", "s3cret").config.config
    pool = config_fmt.device_pool_xml([config_fmt.CallManager(host="127.0.0.1", priority=i, sip_port=port)
                                       for i, port in enumerate(ports)])
    cfg = config_fmt.DeviceConfig(device_name=f"SEP{MAC}", extra={**line.extra, "devicePool": pool})
    store = TrustStore(profile=get_profile("cp-8861"))
    store.config = AcceptedConfig(file="SEP.cnf.xml", xml=config_fmt.build(cfg), config=cfg)
    return store


def _answering_with(answer: bytes, seen: list[str]) -> SipAnswer:
    """A registrar answering each request with ``answer``'s status and headers (Via ... copied); the
    methods it saw go to ``seen``."""
    head = sip.parse_message(answer)

    def answering(msg: sip.SipMessage) -> bytes:
        seen.append(msg.method or "")
        return sip.response_to(msg, head.status or 500, head.reason, list(head.headers[:-1]))
    return answering


@pytest.mark.parametrize(("challenge", "words"), [
    (f'Digest realm="{REALM}", nonce="n1" qop="auth"', "does not parse"),  # no comma
    (f'Digest realm="{REALM}", nonce="n1", Nonce="n2"', "given twice"),
    (f'Digest realm="{REALM}", nonce="n1', "does not parse"),  # an unbalanced quote
], ids=["no-comma", "nonce-twice", "unbalanced-quote"])
def test_a_malformed_challenge_is_the_registrar_refusing_and_no_other_callmanager_is_tried(
        challenge: str, words: str) -> None:
    """CallManagers A then B in the config; A answers the REGISTER with a 401 whose challenge does not
    parse, B would register the phone. Was: ``G.13-unreachable`` at A, A passed over, registered at B.
    Now: ``G.13-registrar-refused`` at A (status 401, the reason naming WWW-Authenticate and the
    offset), nothing passed over, B never asked."""
    a_seen: list[str] = []
    b_seen: list[str] = []
    refusing = sip.build_message("SIP/2.0 401 Unauthorized", [("WWW-Authenticate", challenge)])
    accepting = sip.build_message("SIP/2.0 200 OK", [])

    async def main() -> SipResult:
        async with sip_far_end(_answering_with(refusing, a_seen)) as a, \
                sip_far_end(_answering_with(accepting, b_seen)) as b:
            store = _store([a, b])
            return await register(store, store.profile, MAC, None, sip_port=9, sips_port=9,
                                  events=EventLog(50), clock=lambda: 0, timeout=2.0)

    res = run(main(), limit=20)
    assert (res.rule, res.registered, res.status, res.challenged) == ("G.13-registrar-refused", False, 401,
                                                                      True), res.reason
    assert "WWW-Authenticate" in res.reason and "at offset" in res.reason and words in res.reason, res.reason
    assert (res.passed_over, a_seen, b_seen) == ((), ["REGISTER"], [])
