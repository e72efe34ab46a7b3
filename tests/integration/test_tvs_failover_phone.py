"""A phone asking scripted TVS servers over loopback TLS (spec §E.1, §E.7.2, §G.3.4): which server it
uses, what the deciding reason says when none answers, what the TVS cache keeps.

The phone's TVS client is the real one (:func:`phoneemu.phone.boot.net_tvs_asker`); only the server list
is swapped for the scripted servers (the lab config names the lab's own TVS port).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest

from phoneemu.formats.config import Server
from phoneemu.lab.cluster import LabCluster
from phoneemu.net.fetch import MemoryFetcher
from phoneemu.net.tls import server_context
from phoneemu.phone.boot import BootReport, BootTarget, net_tvs_asker
from phoneemu.phone.events import QueryKey
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import TvsResult
from phoneemu.protocols import tvs
from tests.helpers import pristine_lab, self_signed_server_context
from tests.integration.tvs_scripted import HOST, TvsServers

NOW = 1_780_000_000
MAC = "0A00000000C7"
TARGET = BootTarget(host=HOST, tftp_port=69)
TIMEOUT = 0.3


base_lab, lab = pristine_lab("tvs-failover", now=NOW, phones={MAC: {"now": NOW, "lsc_key": "rsa1024"}})


Answer = Callable[[tvs.TvsMessage], bytes | None]


class Scripted:
    """TVS servers on loopback and the phone's asker sending its QUERY to them (in the order given)."""

    def __init__(self, lab: LabCluster) -> None:
        self.lab = lab
        self.targets: list[tuple[str, int]] = []
        self.hits: list[int] = []
        self._servers = TvsServers()  # each connection closed once answered
        self._asker = net_tvs_asker(timeout=TIMEOUT)
        self.asked = 0

    def lab_answer(self, req: tvs.TvsMessage) -> bytes:
        return tvs.encode(tvs.answer(req, self.lab.tvs_lookup))

    async def serve(self, answer: Answer, *, ctx: ssl.SSLContext | None = None) -> None:
        ident = self.lab.tvs_identity()
        ctx = ctx or server_context(ident.cert, ident.key, ciphers="DEFAULT:@SECLEVEL=0")  # rsa1024 lab
        index = len(self.targets)
        self.hits.append(0)

        async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         req: tvs.TvsMessage) -> None:
            out = answer(req)
            if out is not None:
                writer.write(out)

        def counted() -> None:
            self.hits[index] += 1

        self.targets.append((HOST, await self._servers.start(script, ctx, counted=counted)))

    def hung(self) -> None:
        self.targets.append((HOST, self._servers.hung()))
        self.hits.append(0)

    def refused(self) -> None:
        self.targets.append((HOST, self._servers.closed()))
        self.hits.append(0)

    def name(self, host: str) -> None:
        self.targets.append((host, 2445))
        self.hits.append(0)

    async def __call__(self, servers: Sequence[Server], key: QueryKey, *, device_name: str,
                       accept_server: Callable[[bytes | None], bool] | None) -> TvsResult:
        assert servers  # the lab config names a TVS server; the phone asks ours instead
        self.asked += 1
        ours = [Server(host=h, port=p, priority=i) for i, (h, p) in enumerate(self.targets)]
        return await self._asker(ours, key, device_name=device_name, accept_server=accept_server)

    async def close(self) -> None:
        await self._servers.close()


def _rogue_context() -> ssl.SSLContext:
    return self_signed_server_context("rogue-TVS", 21)


class Rig:
    def __init__(self, lab: LabCluster) -> None:
        self.lab = lab
        self.now = NOW
        self.tvs = Scripted(lab)
        self.phone = Phone(mac=MAC, profile=get_profile("cp-8861"), clock=lambda: self.now, flash=None,
                           mic=lab.phone_identity(MAC), image_signers=[lab.identity("imagesigning").cert],
                           tvs=self.tvs)

    async def boot(self) -> BootReport:
        return await self.phone.boot(TARGET, fetcher=MemoryFetcher(self.lab.get))


def scenario(lab: LabCluster, body: Callable[[Rig], Awaitable[None]], limit: float = 5.0) -> None:
    async def main() -> None:
        rig = Rig(lab)
        try:
            first = await rig.boot()  # installs the ITL (with the TVS record)
            assert first.ok
            lab.regenerate("itlrecovery", now=NOW)  # the next ITL's signer is unknown: ask TVS
            await asyncio.wait_for(body(rig), limit)
        finally:
            await rig.tvs.close()
    asyncio.run(main())


def deciding(r: BootReport) -> Any:
    assert r.deciding is not None
    return r.deciding


def test_untrusted_first_server_is_skipped_and_the_second_vouches(lab: LabCluster) -> None:
    async def body(rig: Rig) -> None:
        await rig.tvs.serve(rig.tvs.lab_answer, ctx=_rogue_context())
        await rig.tvs.serve(rig.tvs.lab_answer)
        r = await rig.boot()
        assert "G.3.4-vouched-by-tvs" in [d.rule for d in r.decisions] and r.ok, [d.rule for d in r.decisions]
        assert rig.tvs.hits == [0, 1]  # nothing asked of the server the phone does not trust
        assert any("not an ITL TVS record" in t for t in r.timeline)
    scenario(lab, body)


def test_an_answer_for_another_certificate_is_refused(lab: LabCluster) -> None:
    async def body(rig: Rig) -> None:
        cm = rig.lab.callmanager()

        def other(req: tvs.TvsMessage) -> bytes:  # "valid, SAST" with the CallManager certificate
            return tvs.encode(tvs.response(req, status=0, roles=(0, 2), ttl=600, certificate=cm.der))

        await rig.tvs.serve(other)
        r = await rig.boot()
        assert deciding(r).rule == "G.3.4-tvs-unknown-signer" and r.locked_out and not r.ok
        assert not any(d.accepted and "tvs" in d.rule for d in r.decisions)
        # not cached (it answers another question): a TVS fixed within its 600 s is asked again at once
        assert rig.phone.store.tvs_cache_size == 0 and rig.tvs.asked == 1
        assert any("TVS returned another certificate" in t and "not cached" in t for t in r.timeline)
        rig.tvs.targets.clear()
        rig.tvs.hits.clear()
        await rig.tvs.serve(rig.tvs.lab_answer)
        rig.now += 5
        r = await rig.boot()
        assert rig.tvs.asked == 2 and "G.3.4-vouched-by-tvs" in [d.rule for d in r.decisions] and r.ok
    scenario(lab, body)


def test_no_server_answers_the_reason_names_each_and_is_bounded(lab: LabCluster) -> None:
    async def body(rig: Rig) -> None:
        rig.tvs.refused()
        rig.tvs.hung()
        await rig.tvs.serve(lambda req: b"\x57\x01\x04\x00garbage!")
        rig.tvs.name("bad..name")  # the config parser lets it through; Python's IDNA codec does not
        t0 = time.monotonic()
        r = await rig.boot()
        assert time.monotonic() - t0 < 4 * TIMEOUT + 1.0  # one TIMEOUT per server at most
        d = deciding(r)
        assert d.rule == "G.3.4-tvs-unreachable" and r.locked_out
        for host, port in rig.tvs.targets:
            assert f"{host}:{port}: " in d.reason, d.reason
        assert "cannot connect" in d.reason and f"TLS handshake timeout after {TIMEOUT}s" in d.reason
        assert "bad TVS response" in d.reason and "not a valid host name" in d.reason
    scenario(lab, body)


def test_untrusted_and_unreachable_is_no_trusted_server(lab: LabCluster) -> None:
    async def body(rig: Rig) -> None:
        await rig.tvs.serve(rig.tvs.lab_answer, ctx=_rogue_context())
        rig.tvs.refused()
        r = await rig.boot()
        d = deciding(r)
        assert d.rule == "G.3.4-tvs-server-untrusted" and r.locked_out
        assert "TVS certificate not accepted" in d.reason and "cannot connect" in d.reason
    scenario(lab, body)


def test_an_answer_is_cached_for_its_ttl_and_an_outage_is_never_cached(lab: LabCluster) -> None:
    async def body(rig: Rig) -> None:
        itlr = rig.lab.identity("itlrecovery").der

        def tvs_role_only(req: tvs.TvsMessage) -> bytes:  # TVS knows it, without SAST: refused, cached
            return tvs.encode(tvs.response(req, status=0, roles=(21,), ttl=60, certificate=itlr))

        rig.tvs.refused()  # an outage first: not cached, so the next boot asks again
        r = await rig.boot()
        assert deciding(r).rule == "G.3.4-tvs-unreachable" and rig.tvs.asked == 1
        assert rig.phone.store.tvs_cache_size == 0
        rig.tvs.targets.clear()
        rig.tvs.hits.clear()
        await rig.tvs.serve(tvs_role_only)
        r = await rig.boot()
        assert deciding(r).rule == "G.3.4-tvs-wrong-role" and rig.tvs.asked == 2
        assert rig.phone.store.tvs_cache_size == 1
        rig.tvs.targets.clear()
        rig.tvs.hits.clear()
        rig.tvs.refused()  # TVS down from now on
        rig.now += 59  # within the TTL: the cached answer decides, TVS is not asked
        r = await rig.boot()
        assert deciding(r).rule == "G.3.4-tvs-wrong-role" and rig.tvs.asked == 2
        rig.now += 1  # the TTL is over: asked, and the outage decides
        r = await rig.boot()
        assert deciding(r).rule == "G.3.4-tvs-unreachable" and rig.tvs.asked == 3
    scenario(lab, body)


def test_the_timeline_names_the_servers_in_the_order_they_are_tried(lab: LabCluster,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """``<member priority>``: lower first (§E.1); the "connecting to" line (was "QUERY ... to", said before
    the QUERY was sent) listed them as the config did, the QUERY line after it."""
    from phoneemu.phone.store import TrustStore

    async def body(rig: Rig) -> None:
        await rig.tvs.serve(rig.tvs.lab_answer)
        listed = (Server(host="10.0.0.9", port=2445, priority=2),
                  Server(host="10.0.0.7", port=2445, priority=0),
                  Server(host="10.0.0.8", port=2445, priority=1))
        monkeypatch.setattr(TrustStore, "tvs_servers", property(lambda self: listed))
        r = await rig.boot()
        assert "G.3.4-vouched-by-tvs" in [d.rule for d in r.decisions]
        at = next(i for i, t in enumerate(r.timeline) if "connecting to " in t)
        tried = " connecting to 10.0.0.7:2445, 10.0.0.8:2445, 10.0.0.9:2445"
        assert r.timeline[at].endswith(tried), r.timeline
        assert at < next(i for i, t in enumerate(r.timeline) if "QUERY " in t)
    scenario(lab, body)
