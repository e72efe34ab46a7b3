"""Call authorization by the lab's dial plan (seed "Authorization": "calling search spaces and partitions";
the dial plan is our convention, phoneemu/lab/dial_plan.py): the registrar's check on an authenticated
caller's INVITE to another phone, before and after authentication, over loopback with the relay, the
dial plan ``lab serve`` reloads, and a scenario end to end."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from phoneemu.lab.call_relay import CallRelay
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.dial_plan import DialPlan
from phoneemu.lab.servers import LabServers
from phoneemu.lab.sip_service import SipRegistrar
from phoneemu.net.tls import TlsServer
from phoneemu.protocols import sdp, sip
from tests.helpers import RawSipPhone, lab_template, run, run_passing_scenario

A = "0A00000C5501"  # the caller
B = "0A00000C5502"  # the called phone
DIGEST = "0A00000C5503"  # a caller with a digest user
UNKNOWN = "0A00000C55FF"  # a phone the cluster does not know

template = lab_template("callauth", seed=23, phones={A: {}, B: {}})


def _invite(caller: str, called: str, *, call_id: str = "c1@a") -> sip.SipMessage:
    uri = f"sip:SEP{called}@127.0.0.1"
    return sip.SipMessage(method="INVITE", uri=uri, headers=(
        ("Via", "SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKa"), ("From", f"<sip:SEP{caller}@127.0.0.1>;tag=a"),
        ("To", f"<{uri}>"), ("Call-ID", call_id), ("CSeq", "1 INVITE"), ("Max-Forwards", "70")))


class _Plans:
    """A cluster's dial plan as the registrar asks for it, changeable between calls."""

    def __init__(self, plans: dict[str, DialPlan]) -> None:
        self.plans = plans
        self.asked: list[str] = []

    def __call__(self, mac: str) -> DialPlan | None:
        self.asked.append(mac)
        return self.plans.get(mac)


def _registrar(plans: _Plans) -> tuple[SipRegistrar, list[tuple[str, str]]]:
    log: list[tuple[str, str]] = []
    known = {A: (None, None), B: (None, None), DIGEST: ("alice", "pw")}
    reg = SipRegistrar(known.get, relay=CallRelay(answer_timeout=0.2), dial_plan=plans,
                       on_log=lambda _peer, device, outcome, detail: log.append((outcome, detail)))
    return reg, log


def _status(reg: SipRegistrar, msg: sip.SipMessage, **kw: Any) -> int | None:
    return sip.parse_message(asyncio.run(reg.respond(msg, **kw))).status


EXEC = DialPlan(partition="Executives")


def test_a_call_the_callers_css_does_not_reach_is_404_and_logged_naming_partition_and_css() -> None:
    reg, log = _registrar(_Plans({A: DialPlan(css=("Staff", "Lobby")), B: EXEC}))
    reply = sip.parse_message(asyncio.run(reg.respond(_invite(A, B))))
    assert (reply.status, reply.reason) == (404, "Not Found")
    assert reply.header("call-id") == "c1@a" and reply.header("cseq") == "1 INVITE"
    assert reg.relay is not None and reg.relay._calls == {}  # never relayed
    outcome, detail = log[-1]
    assert outcome == "not-routable"
    assert f"SEP{B} is in partition Executives" in detail and "Staff, Lobby" in detail, detail


def test_an_empty_css_reaches_only_none() -> None:
    reg, log = _registrar(_Plans({B: EXEC}))  # A: no dial plan of its own, the defaults
    assert _status(reg, _invite(A, B)) == 404
    assert "(empty: <None> only)" in log[-1][1]


def test_a_css_listing_the_partition_routes_the_call_to_the_relay() -> None:
    """Routed: the relay takes it — B never registered here, so 480 Temporarily Unavailable, not 404."""
    reg, log = _registrar(_Plans({A: DialPlan(css=("Staff", "Executives")), B: EXEC}))
    assert _status(reg, _invite(A, B)) == 480
    assert "not-routable" not in [o for o, _ in log]


def test_the_none_partition_is_reached_by_every_css() -> None:
    plans = _Plans({A: DialPlan(partition="Lobby"), B: DialPlan()})
    reg, _log = _registrar(plans)
    assert _status(reg, _invite(A, B)) == 480
    plans.plans[B] = DialPlan(partition=None, css=("Executives",))  # its own CSS does not matter
    assert _status(reg, _invite(A, B, call_id="c2@a")) == 480


def test_a_called_phone_the_cluster_does_not_know_is_in_none() -> None:
    """Routed (its dial plan is None: the defaults), then 480 as before: no phone registered there."""
    reg, _log = _registrar(_Plans({A: DialPlan(partition="Lobby")}))
    assert _status(reg, _invite(A, UNKNOWN)) == 480


def test_the_dial_plan_is_asked_at_each_call_and_a_change_applies_to_the_next() -> None:
    plans = _Plans({B: EXEC})
    reg, _log = _registrar(plans)
    assert _status(reg, _invite(A, B)) == 404
    plans.plans[A] = DialPlan(css=("Executives",))
    assert _status(reg, _invite(A, B, call_id="c2@a")) == 480
    plans.plans[B] = DialPlan(partition="Board")
    assert _status(reg, _invite(A, B, call_id="c3@a")) == 404
    assert plans.asked == [A, B] * 3


def test_authentication_comes_first_digest_challenge_not_404() -> None:
    """A caller that has not authenticated gets the digest challenge, the routing is not looked at."""
    plans = _Plans({B: EXEC})
    reg, log = _registrar(plans)
    assert _status(reg, _invite(DIGEST, B)) == 401
    assert [o for o, _ in log] == ["challenged"] and plans.asked == []


def test_authentication_comes_first_no_device_certificate_over_tls_is_403() -> None:
    plans = _Plans({B: EXEC})
    reg, log = _registrar(plans)
    assert _status(reg, _invite(A, B), over_tls=True, device_cert=None) == 403
    assert [o for o, _ in log] == ["forbidden"] and plans.asked == []


def test_an_unknown_caller_is_404_unknown_device_before_any_routing() -> None:
    plans = _Plans({B: EXEC})
    reg, log = _registrar(plans)
    assert _status(reg, _invite(UNKNOWN, B)) == 404
    assert [o for o, _ in log] == ["unknown-device"] and plans.asked == []


def test_media_resources_are_not_routed_by_the_dial_plan() -> None:
    """``moh`` is in <None>: the dial plan is not asked (no media resources here: 404 from their absence
    would be the same status, so the log tells them apart)."""
    plans = _Plans({A: DialPlan(partition="Lobby")})
    reg, log = _registrar(plans)
    moh = sip.SipMessage(method="INVITE", uri="sip:moh@127.0.0.1", headers=_invite(A, B).headers)
    assert _status(reg, moh) == 404
    assert plans.asked == [] and "not-routable" not in [o for o, _ in log]


def test_without_a_dial_plan_every_call_is_routed() -> None:
    reg = SipRegistrar({A: (None, None)}.get, relay=CallRelay(answer_timeout=0.2))
    assert _status(reg, _invite(A, B)) == 480


# -- over loopback: the relay, a call in progress --------------------------------------------------------


@asynccontextmanager
async def _phone(port: int, mac: str) -> AsyncIterator[RawSipPhone]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client = RawSipPhone(reader, writer, mac)
    try:
        ok = await client.register()
        assert ok is not None and ok.status == 200, ok
        yield client
    finally:
        writer.close()


def _with_registrar(plans: _Plans, body: Callable[[int, CallRelay], Coroutine[Any, Any, None]]) -> None:
    relay = CallRelay(answer_timeout=1.0)
    reg = SipRegistrar({A: (None, None), B: (None, None)}.get, relay=relay, dial_plan=plans, read_timeout=5.0)

    async def main() -> None:
        async with TlsServer(reg, None, "127.0.0.1", 0, name="sip") as srv:
            await body(srv.port, relay)
            await asyncio.sleep(0.01)
        assert srv.errors == 0

    asyncio.run(main())


def test_a_refused_call_never_reaches_the_called_phone_and_an_authorized_one_keeps_its_dialog() -> None:
    """404 while not routable (the called phone gets nothing); once routed, the call's BYE (in-dialog) goes
    on although the dial plan changed meanwhile — a dialog authorized at its INVITE stays authorized —
    and the next INVITE is refused again."""
    plans = _Plans({B: EXEC})

    async def body(port: int, relay: CallRelay) -> None:
        async with _phone(port, B) as b, _phone(port, A) as a:
            for _ in range(50):
                if relay.reaches(f"SEP{B}"):
                    break
                await asyncio.sleep(0.01)
            a.request("INVITE", f"sip:SEP{B}@127.0.0.1", call_id="x1", cseq=1)
            refused = await a.read()
            assert refused is not None and refused.status == 404
            assert await b.read(0.2) is None
            plans.plans[A] = DialPlan(css=("Executives",))
            a.request("INVITE", f"sip:SEP{B}@127.0.0.1", call_id="x2", cseq=1)
            relayed = await b.read()
            assert relayed is not None and relayed.method == "INVITE" and relayed.header("call-id") == "x2"
            b.reply(relayed, 200, "OK")
            ok = await a.read()
            assert ok is not None and ok.status == 200
            plans.plans[A] = DialPlan()  # the administrator takes Executives away mid-call
            a.request("BYE", f"sip:SEP{B}@127.0.0.1", call_id="x2", cseq=2, to=ok.header("to"))
            bye = await b.read()
            assert bye is not None and bye.method == "BYE"
            b.reply(bye, 200, "OK")
            done = await a.read()
            assert done is not None and done.status == 200 and done.header("cseq") == "2 BYE"
            a.request("INVITE", f"sip:SEP{B}@127.0.0.1", call_id="x3", cseq=1)
            again = await a.read()
            assert again is not None and again.status == 404

    _with_registrar(plans, body)


# -- lab serve: a change another process saved is the next call's dial plan --------------------------------


def test_lab_serve_routes_by_the_dial_plan_another_process_saved(cluster: LabCluster) -> None:
    async def main() -> None:
        async with LabServers(cluster, watch=3600.0) as servers:  # only the per-request reload runs
            reg = servers.sip_handler
            other = LabCluster.open(cluster.root)  # stands for ``phoneemu lab calling-search-space``
            other.set_calling_search_space([B], partition="Executives")
            assert sip.parse_message(await reg.respond(_invite(A, B))).status == 404
            other.set_calling_search_space([A], css=["Executives"])
            assert sip.parse_message(await reg.respond(_invite(A, B, call_id="c2@a"))).status == 480
            other.set_calling_search_space([B], partition="<None>")
            other.set_calling_search_space([A], css=[])
            assert sip.parse_message(await reg.respond(_invite(A, B, call_id="c3@a"))).status == 480
            assert cluster.dial_plan(B) == DialPlan() and cluster.dial_plan(A) == DialPlan()
        outcomes = [r.outcome for r in servers.requests if r.service == "sip"]
        assert outcomes.count("not-routable") == 1, outcomes
    run(main())


# -- a scenario: SRTP phones, a digest caller, the partition set back to <None> ---------------------------


def test_encrypted_phones_the_partition_set_back_to_none(tmp_path: Path) -> None:
    result = run_passing_scenario(tmp_path / "css.yaml", """\
reproduces: seed Authorization; spec G.14
clusters:
  lab: {mixed_mode: true}
phones:
  boss: {mac: 0A00000C5510}
  caller: {mac: 0A00000C5511}
steps:
  - admin: {op: security-mode, phones: [boss, caller], mode: encrypted}
  - admin: {op: digest, phones: caller, user: carol, password: pw-carol}
  - admin: {op: calling-search-space, phones: boss, partition: Board, css: [Staff]}
  - boot: all
  - call: {phones: caller, to: boss, packets: 2}
  - expect: {phones: caller, label: refused, call_status: 404, rule: G.14-call-refused, media: none,
             sip: registered, sip_challenged: true}
  - admin: {op: calling-search-space, phones: boss, partition: "<None>"}
  - call: {phones: caller, to: boss, packets: 2}
  - expect: {phones: [caller, boss], label: routed, call_status: 200, media: srtp}
""")
    assert [e.label for e in result.expectations] == ["refused", "routed"]


def test_the_on_path_attacker_keeps_no_relay_of_a_refused_call_nor_past_the_lab(cluster: LabCluster) -> None:
    """With the attacker rewriting offers over TCP, a call refused (404: not routable) closes the relay its
    offer got at once — it stayed open 60 s, and any device could open them — and stopping the lab
    closes the relays still open."""
    offer = sdp.build_sdp(sdp.AudioOffer(address="127.0.0.1", port=40000, profile="RTP/AVP", formats=(0,)))

    async def main() -> None:
        async with LabServers(cluster, watch=3600.0) as servers:
            servers.set_network(tamper_signalling=True)
            await servers.start_service("sip")
            cluster.set_calling_search_space([B], partition="Executives")
            reader, writer = await asyncio.open_connection("127.0.0.1", servers.ports["sip"])
            phone = RawSipPhone(reader, writer, A)
            phone.invite(B, offer, call_id="refused@a")
            refused = await phone.read()
            assert refused is not None and refused.status == 404
            assert not servers.attacker._relays
            cluster.set_calling_search_space([B], partition="<None>")
            invite = dataclasses.replace(_invite(A, B, call_id="open@a"), body=offer)
            await servers.attacker.offer_in(invite, device=f"SEP{A}", lab_host="127.0.0.1")
            relays = list(servers.attacker._relays.values())
            assert len(relays) == 1
            writer.close()
        assert not servers.attacker._relays and relays[0].facing_far is not None
        assert relays[0].facing_far.is_closing()
    run(main())
