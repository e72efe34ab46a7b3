"""The lab's simulated loss is repeatable per phone, whatever the interleaving (our convention): each drop is
a pure function of the seed and what the datagram is (file name, RRQ copy, block, the k-th sending), never
of the order datagrams reach the server — phones booting together lose the same packets run after run.

These tests check that rule itself, and outcomes only where timing cannot change them:

* every TFTP loss draw is recorded as (what the datagram is, dropped or not) by a wrapper around the
  ``is_lost`` the server calls (its capture sees only what crossed, never which sending a drop was);
* in two runs (the clients started in one order, then in the other) a datagram drawn in both meets the
  same fate in both, and the datagrams no timer sent — each client's first RRQ copy (and a refusal of it),
  each transfer's first sending of a DATA and first receipt of an ACK — are drawn in both;
* which retransmissions happen is timing, not the rule: the server's timer is 20 ms and a loaded loop
  stalls longer (the client's ACK not read yet when it fires), so a k-th sending may exist in one run
  only. Outcomes are checked only as far as timing cannot change them: every download ends the same way,
  and a client resends at least once per copy of its RRQ dropped (a stall can add a resend, never take
  one away). Unloaded it resends exactly that often — a lost DATA or ACK is made good by the server's
  retransmission long before the client's 0.25 s timer runs out — but a loop stalled past 0.25 s (seen
  with 2 cores and 6 busy processes) makes a client resend early, so no test counts on equality. Each lost
  RRQ costs a client one timeout: the storms last about as long as the most such waits of one client.

Draws made in arrival order (one generator for all, the old behaviour) fail these checks
(test_the_checks_catch_draws_made_in_arrival_order).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable

import pytest

import phoneemu.net.tftp_server as tftp_server
from phoneemu.errors import TransportError
from phoneemu.fleet.engine import FleetSpec, mac_text, run_shard
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.net.http import http_get
from phoneemu.net.tftp_client import tftp_get
from phoneemu.net.tftp_server import TftpServer, is_lost, loss_key
from phoneemu.phone.boot import BootTarget
from tests.helpers import pristine_fleet_lab, run_within

HOST = "127.0.0.1"
NOW = 1_780_000_000
START = 0x0A0000003301
PHONES = 10
LOSS, CLIENT_TIMEOUT, SERVER_TIMEOUT = 0.2, 0.25, 0.02

run = run_within(120)

What = tuple[object, ...]  # a datagram's identity for the loss draw (tftp_server's module docstring)
Draws = list[tuple[What, bool]]  # one run's draws in the order made: (what, dropped)


# --- the draws, recorded ----------------------------------------------------------------------------------
class _Recorder:
    """Records every TFTP loss draw: wraps whatever ``tftp_server.is_lost`` is when made (the real one, or
    test_the_checks_catch_draws_made_in_arrival_order's); ``take(seed)``: the draws since the last take."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self._made: list[tuple[bytes, What, bool]] = []
        inner: Callable[[bytes, float, What], bool] = tftp_server.is_lost

        def recorded(key: bytes, loss: float, what: What) -> bool:
            dropped = inner(key, loss, what)
            self._made.append((key, what, dropped))
            return dropped

        monkeypatch.setattr(tftp_server, "is_lost", recorded)

    def take(self, seed: int) -> Draws:
        """The draws since the last take, each checked to come from ``seed`` (the server's seed)."""
        made, self._made = self._made, []
        assert {key for key, _w, _d in made} <= {loss_key(seed)}, f"a draw not from seed {seed}'s key"
        return [(what, dropped) for _k, what, dropped in made]


def _fates(draws: Draws) -> dict[What, set[bool]]:
    fates: dict[What, set[bool]] = {}
    for what, dropped in draws:
        fates.setdefault(what, set()).add(dropped)
    return fates


def _no_timer_sent(what: What) -> bool:
    """Whether the datagram ``what`` names is one no timer sent: a client's first RRQ copy and the refusal
    of it, or a transfer's first sending of a DATA/OACK or first receipt of an ACK (tftp_server's module
    docstring)."""
    match what:
        case ("tftp", _, "rrq" | "refused", 1) | ("tftp", _, _, "sent" | "heard", _, 1):
            return True
        case _:
            return False


def _assert_the_rule(first: Draws, again: Draws) -> None:
    """Repeatable loss: one fate per datagram in a run; a datagram drawn in both runs met the same fate;
    the datagrams no timer sent were drawn in both (which retransmissions happen is timing, docstring)."""
    fates, fates_again = _fates(first), _fates(again)
    torn = sorted(repr(w) for f in (fates, fates_again) for w, s in f.items() if len(s) > 1)
    assert not torn, f"{len(torn)} datagrams met two fates in one run: {torn[:4]}"
    both = fates.keys() & fates_again.keys()
    differ = sorted(repr(w) for w in both if fates[w] != fates_again[w])
    assert not differ, f"{len(differ)} of {len(both)} datagrams met another fate on the rerun: {differ[:4]}"
    firsts, firsts_again = ({w for w in f if _no_timer_sent(w)} for f in (fates, fates_again))
    one_only = sorted(repr(w) for w in firsts ^ firsts_again)
    assert not one_only, f"{len(one_only)} first sendings drawn in one run only: {one_only[:4]}"


def _assert_losses_happened(draws: Draws, seed: int) -> None:
    """Some RRQ, DATA and ACK of the storm were dropped; another seed would have dropped others."""
    dropped = [what for what, d in draws if d]
    assert {"rrq", "sent", "heard"} <= {w[2] if w[2] == "rrq" else w[3] for w in dropped}
    assert any(is_lost(loss_key(seed + 1), LOSS, what) != d for what, d in draws)


def _dropped_requests(draws: Draws, names: Iterable[str]) -> dict[str, int]:
    """Each of ``names`` → the RRQs dropped of files whose name holds it: each cost its client a resend."""
    dropped = [what[1] for what, d in draws if d and what[2] == "rrq"]
    return {name: sum(name.encode() in w for w in dropped if isinstance(w, bytes)) for name in names}


def _assert_resent_for_each_dropped_request(resent: dict[str, int], draws: Draws) -> None:
    """A client resends at least once per RRQ of its dropped (more when a stall fires its timer early)."""
    dropped = _dropped_requests(draws, resent)
    assert sum(dropped.values()) > 0
    assert not [n for n in resent if resent[n] < dropped[n]], f"resent {resent}, RRQs dropped {dropped}"


# --- one TFTP server, many clients -------------------------------------------------------------------------
NAMES = [f"SEP{mac_text(START + i)}.cnf.xml" for i in range(PHONES)]
FILES = {name: bytes([i]) * 3000 for i, name in enumerate(NAMES)}  # 6 blocks of 512 each


class _Crossed:
    """UdpSink: counts the datagrams that crossed the lab's network (the server's side of each drop)."""

    def __init__(self) -> None:
        self.count = 0

    def udp(self, src: tuple[str, int], dst: tuple[str, int], payload: bytes,
            ts: float | None = None) -> None:
        self.count += 1


async def _tftp_storm(order: list[str], *, seed: int, mode: str,
                      recorder: _Recorder) -> tuple[dict[str, int], Draws]:
    """Every file of ``order`` fetched at once (each client starting 3 ms after the one before): name →
    the client's retransmissions, and the storm's loss draws (those not dropped are what crossed)."""
    resent = dict.fromkeys(order, 0)
    crossed = _Crossed()
    async with TftpServer(FILES, HOST, 0, tid_mode=mode, loss=LOSS, seed=seed,  # type: ignore[arg-type]
                          timeout=SERVER_TIMEOUT, retries=20, capture=crossed) as srv:

        async def fetch(i: int, name: str) -> None:
            await asyncio.sleep(0.003 * i)

            def again() -> None:
                resent[name] += 1

            assert await tftp_get(HOST, srv.port, name, timeout=CLIENT_TIMEOUT, retries=10,
                                  on_retransmit=again) == FILES[name]

        await asyncio.gather(*(fetch(i, name) for i, name in enumerate(order)))
    draws = recorder.take(seed)
    assert crossed.count == sum(not d for _w, d in draws)  # each datagram drawn crossed unless dropped
    return resent, draws


@pytest.mark.parametrize("mode", ["ephemeral", "shared"])
def test_tftp_clients_lose_the_same_packets_whatever_order_they_come_in(
        mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ten clients at 20 % loss, started in one order then in the other: each datagram met the same fate
    in both, and each client resent its RRQ at least as often as its copies were dropped (was: one random
    generator drew in arrival order, so which client lost what followed the interleaving)."""
    recorder = _Recorder(monkeypatch)
    resent, first = run(_tftp_storm(NAMES, seed=7, mode=mode, recorder=recorder))
    _assert_losses_happened(first, 7)
    _assert_resent_for_each_dropped_request(resent, first)
    resent_again, again = run(_tftp_storm(NAMES[::-1], seed=7, mode=mode, recorder=recorder))
    _assert_the_rule(first, again)
    _assert_resent_for_each_dropped_request(resent_again, again)


def _draw_in_arrival_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The old draws: one generator per server, seeded by its seed, each datagram drawn as it comes."""
    generators: dict[bytes, random.Random] = {}
    real_key = tftp_server.loss_key

    def keyed(seed: int) -> bytes:
        key = real_key(seed)
        generators[key] = random.Random(seed)  # a server (re)seeded: a fresh generator, as it was
        return key

    def in_arrival_order(key: bytes, loss: float, what: What) -> bool:
        return generators[key].random() < loss

    monkeypatch.setattr(tftp_server, "loss_key", keyed)
    monkeypatch.setattr(tftp_server, "is_lost", in_arrival_order)


def test_the_checks_catch_draws_made_in_arrival_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The old behaviour, one generator drawing in the order datagrams come, fails the rule's checks: the
    same datagram meets another fate when the clients come in another order."""
    _draw_in_arrival_order(monkeypatch)
    recorder = _Recorder(monkeypatch)
    names = NAMES[:5]  # half the storm: as sure to fail, sooner done
    _resent, first = run(_tftp_storm(names, seed=7, mode="shared", recorder=recorder))
    _resent, again = run(_tftp_storm(names[::-1], seed=7, mode="shared", recorder=recorder))
    with pytest.raises(AssertionError, match="fate"):
        _assert_the_rule(first, again)


# --- the lab: a boot storm, HTTP ---------------------------------------------------------------------------
base_lab, lab = pristine_fleet_lab("repeatable_loss", seed=5, start=START, count=PHONES, now=NOW)


def _boot_storm(lab: LabCluster, *, seed: int,
                recorder: _Recorder) -> tuple[dict[str, tuple[str, int]], Draws]:
    """Ten TFTP-only phones booting at once over the lab at 20 % loss: MAC → (outcome, retransmissions),
    and the storm's loss draws."""
    async def body() -> dict[str, tuple[str, int]]:
        async with LabServers(lab, host=HOST, tftp_tid_mode="shared") as srv:
            srv.set_network(loss=LOSS, seed=seed, tftp_timeout_s=SERVER_TIMEOUT, tftp_retries=20)
            target = BootTarget(host=HOST, tftp_port=srv.ports["tftp"], use_http=False)
            spec = FleetSpec(target=target, count=PHONES, mac_start=START, concurrency=PHONES,
                             keep_records=True, fetch_timeout=CLIENT_TIMEOUT, fetch_retries=10,
                             tvs_timeout=5.0)
            res = await run_shard(spec, range(START, START + PHONES))
        return {r.mac: (r.outcome, r.retransmits) for r in res.records}
    return run(body()), recorder.take(seed)


def test_a_boot_storm_twice_gives_each_phone_the_same_losses(
        lab: LabCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same storm twice: each datagram met the same fate in both (conformance engineers can reproduce a
    failing storm), each phone ends the same way, resending at least once per RRQ of its dropped."""
    # seed 5: a storm where no phone loses more than two RRQs (seed 7: three; each costs a timeout)
    recorder = _Recorder(monkeypatch)
    first, draws = _boot_storm(lab, seed=5, recorder=recorder)
    assert len(first) == PHONES
    _assert_losses_happened(draws, 5)
    _assert_resent_for_each_dropped_request({mac: n for mac, (_o, n) in first.items()}, draws)
    again, draws_again = _boot_storm(lab, seed=5, recorder=recorder)
    _assert_the_rule(draws, draws_again)
    assert {mac: o for mac, (o, _n) in again.items()} == {mac: o for mac, (o, _n) in first.items()}
    _assert_resent_for_each_dropped_request({mac: n for mac, (_o, n) in again.items()}, draws_again)


def test_http_drops_follow_the_file_not_the_order(lab: LabCluster) -> None:
    """HTTP: the response to the n-th request for a file on its connection is dropped or not by the seed
    alone — asked in one order then the other, the same files' responses are dropped."""
    names = [f"ITLSEP{mac_text(START + i)}.tlv" for i in range(PHONES)] + NAMES

    async def dropped(order: list[str]) -> set[str]:
        async with LabServers(lab, host=HOST) as srv:
            srv.set_network(loss=0.3, seed=7)

            async def ask(name: str) -> str | None:
                try:
                    await http_get(HOST, srv.ports["http"], name, timeout=5.0)
                except TransportError:
                    return name
                return None

            got = await asyncio.gather(*(ask(n) for n in order))
            logged = {r.name for r in srv.requests if r.service == "http" and r.outcome == "dropped"}
        assert logged == {n for n in got if n is not None}
        return logged

    first = run(dropped(names))
    assert 0 < len(first) < len(names)
    assert run(dropped(names[::-1])) == first
