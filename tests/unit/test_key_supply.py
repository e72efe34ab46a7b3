"""The fresh-key supply: every key handed out once (threads, fork), bounded stock, inline fallback,
lazy and idle-stopping thread; the lab PKI takes unseeded keys from it and never seeded ones."""

from __future__ import annotations

import itertools
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from phoneemu.crypto import key_supply, keys
from phoneemu.crypto.key_supply import FreshKeySupply
from phoneemu.crypto.keys import KeySpec
from phoneemu.lab.pki import LabPki

RSA512 = KeySpec(kind="rsa", bits=512)  # seeded only: OpenSSL (cryptography >= 43) refuses < 1024
RSA1024 = KeySpec(kind="rsa", bits=1024)
NOW = 1_780_272_000


class Token:
    """Stands for a key: unique, numbered in the order made."""

    def __init__(self, n: int, spec: KeySpec, maker: str) -> None:
        self.n, self.spec, self.maker = n, spec, maker


class FakeOpenSsl:
    """Counts the keys it makes; ``hold`` (an Event) stops the supply thread before each key."""

    def __init__(self) -> None:
        self.made: list[Token] = []
        self.lock = threading.Lock()
        self.counter = itertools.count()
        self.hold: threading.Event | None = None

    def __call__(self, spec: KeySpec) -> Token:
        maker = threading.current_thread().name
        if self.hold is not None and maker == "phoneemu-key-supply":
            self.hold.wait(10)
        with self.lock:
            tok = Token(next(self.counter), spec, maker)
            self.made.append(tok)
        return tok


def _supply(fake: FakeOpenSsl, **kw: float) -> FreshKeySupply:
    return FreshKeySupply(generate=fake, **kw)  # type: ignore[arg-type]


def _wait_for(pred: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``pred()`` until true (the supply thread fills the stock in the background)."""
    pause = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if pred():
            return
        pause.wait(0.01)
    raise AssertionError("condition not reached")


@pytest.fixture
def fake() -> Iterator[FakeOpenSsl]:
    yield FakeOpenSsl()


def test_every_key_is_handed_out_once_under_threads(fake: FakeOpenSsl) -> None:
    sup = _supply(fake, stock=3)
    got: list[list[object]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def worker(i: int) -> None:
        start.wait()
        for _ in range(60):
            got[i].append(sup.take(RSA1024))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sup.close()
    handed = [id(k) for g in got for k in g]
    assert len(handed) == 480 and len(set(handed)) == 480  # nobody got a key twice
    made = {id(t) for t in fake.made}
    assert set(handed) <= made  # every key came from the generator, none invented or reused
    assert sup.taken + sup.inline == 480
    assert sup.taken == sum(1 for g in got for k in g if k.maker == "phoneemu-key-supply")  # type: ignore[attr-defined]


def test_stock_is_bounded_and_filled_ahead_of_need(fake: FakeOpenSsl) -> None:
    sup = _supply(fake, stock=4)
    try:
        assert sup.ready(RSA1024) == 0 and sup._thread is None  # lazy: nothing before the first ask
        sup.expect(RSA1024)
        _wait_for(lambda: sup.ready(RSA1024) == 4)
        threading.Event().wait(0.2)  # the thread now waits: no fifth key
        assert sup.ready(RSA1024) == 4 and len(fake.made) == 4
        key = sup.take(RSA1024)
        assert key in fake.made and sup.taken == 1 and sup.inline == 0
        _wait_for(lambda: sup.ready(RSA1024) == 4)  # refilled after a take
        assert len(fake.made) == 5
    finally:
        sup.close()


def test_keys_above_2048_bits_are_stocked_two_at_a_time(fake: FakeOpenSsl) -> None:
    big = KeySpec(kind="rsa", bits=4096)
    sup = _supply(fake, stock=8)
    try:
        sup.expect(big)
        sup.expect(RSA1024)
        _wait_for(lambda: sup.ready(big) == 2 and sup.ready(RSA1024) == 8)
        threading.Event().wait(0.1)
        assert sup.ready(big) == 2 and len(fake.made) == 10
    finally:
        sup.close()


def test_empty_stock_means_an_inline_key_not_a_wait(fake: FakeOpenSsl) -> None:
    fake.hold = threading.Event()  # the supply thread is stuck before its first key
    sup = _supply(fake, stock=4)
    try:
        keys_now = [sup.take(RSA1024) for _ in range(3)]
        assert [k.maker for k in keys_now] == [threading.current_thread().name] * 3  # type: ignore[attr-defined]
        assert sup.inline == 3 and sup.taken == 0
    finally:
        fake.hold.set()
        sup.close()


def test_thread_stops_when_idle_and_restarts_on_demand(fake: FakeOpenSsl) -> None:
    sup = _supply(fake, stock=2, idle_seconds=0.05)
    try:
        sup.take(RSA1024)
        _wait_for(lambda: sup._thread is None)  # full stock, no take for 50 ms: stopped
        assert sup.ready(RSA1024) == 2
        sup.take(RSA1024)
        _wait_for(lambda: sup.ready(RSA1024) == 2)
    finally:
        sup.close()


def test_close_stops_the_thread_drops_the_stock_and_still_serves(fake: FakeOpenSsl) -> None:
    sup = _supply(fake, stock=4)
    sup.expect(RSA1024)
    _wait_for(lambda: sup.ready(RSA1024) == 4)
    thread = sup._thread
    sup.close()
    assert thread is not None and not thread.is_alive()
    assert sup.ready(RSA1024) == 0
    before = len(fake.made)
    key = sup.take(RSA1024)  # inline
    assert key.maker == threading.current_thread().name  # type: ignore[attr-defined]
    threading.Event().wait(0.1)
    assert len(fake.made) == before + 1 and sup._thread is None


def test_ec_and_zero_stock_are_made_inline(fake: FakeOpenSsl) -> None:
    sup = _supply(fake, stock=4)
    ec_key = sup.take(KeySpec(kind="ec", curve="p256"))
    assert keys.key_description(ec_key) == "EC secp256r1" and sup._thread is None and not fake.made
    off = _supply(fake, stock=0)
    off.take(RSA1024)
    assert off._thread is None and len(fake.made) == 1


def test_real_openssl_keys_are_distinct_across_threads() -> None:
    sup = FreshKeySupply(stock=2)
    got: list[keys.PrivateKey] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            k = sup.take(RSA1024)
            with lock:
                got.append(k)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sup.close()
    moduli = {k.public_key().public_numbers().n for k in got}  # type: ignore[union-attr]
    assert len(got) == 20 and len(moduli) == 20


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_fork_child_does_not_hand_out_the_parents_stock(
        fake: FakeOpenSsl, monkeypatch: pytest.MonkeyPatch) -> None:
    sup = _supply(fake, stock=3)
    monkeypatch.setattr(key_supply, "supply", sup)
    sup.expect(RSA1024)
    _wait_for(lambda: sup.ready(RSA1024) == 3)
    parents = {t.n for t in fake.made}
    r, w = os.pipe()
    with warnings.catch_warnings():  # 3.12+: "multi-threaded process, fork() may deadlock" (not here)
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # child: report what the process-wide supply holds and hands out, then leave
        try:
            ready = key_supply.supply.ready(RSA1024)
            k = key_supply.take(RSA1024)
            os.write(w, f"{ready} {k.n}".encode())  # type: ignore[attr-defined]
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        ready, n = f.read().decode().split()
    os.waitpid(pid, 0)
    sup.close()
    assert ready == "0" and int(n) not in parents


def test_lab_pki_takes_unseeded_keys_from_the_supply(
        tmp_path: Path, fake: FakeOpenSsl, monkeypatch: pytest.MonkeyPatch) -> None:
    sup = FreshKeySupply(stock=2)  # real keys, counted
    monkeypatch.setattr(key_supply, "supply", sup)
    try:
        pki = LabPki(tmp_path, seed=None, key_spec=RSA1024, cluster_name="t")
        pki.create("mfgca", now=NOW)
        a = pki.create("callmanager", now=NOW)
        b = pki.create("tvs", now=NOW)
        pki.prepare_mic_keys(3)
        mics = [pki.issue_mic(f"00000000000{i}", now=NOW)[1] for i in range(4)]  # 3 prepared + 1
        assert sup.taken + sup.inline == 3 + 3 + 1
        moduli = {k.public_key().public_numbers().n  # type: ignore[union-attr]
                  for k in (a.key, b.key, *mics)}
        assert len(moduli) == 6
    finally:
        sup.close()


def test_seeded_lab_pki_never_touches_the_supply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(spec: KeySpec) -> keys.PrivateKey:
        raise AssertionError("seeded keys must not come from the supply")

    sup = FreshKeySupply(generate=refuse)
    monkeypatch.setattr(key_supply, "supply", sup)
    first = LabPki(tmp_path / "a", seed=7, key_spec=RSA512, cluster_name="t")
    second = LabPki(tmp_path / "b", seed=7, key_spec=RSA512, cluster_name="t")
    ka, kb = first.create("callmanager", now=NOW).key, second.create("callmanager", now=NOW).key
    first.create("mfgca", now=NOW)
    second.create("mfgca", now=NOW)
    first.prepare_mic_keys(2)
    ma, mb = first.issue_mic("000000000001", now=NOW)[1], second.issue_mic("000000000001", now=NOW)[1]
    assert keys.private_key_pem(ka) == keys.private_key_pem(kb)
    assert keys.private_key_pem(ma) == keys.private_key_pem(mb)
    assert sup.taken == sup.inline == 0 and sup._thread is None


def test_scenario_runner_asks_only_for_unseeded_built_in_labs(
        fake: FakeOpenSsl, monkeypatch: pytest.MonkeyPatch) -> None:
    from phoneemu.scenario.loader import load_text
    from phoneemu.scenario.runner import _expect_lab_keys

    sup = _supply(fake, stock=2)
    monkeypatch.setattr(key_supply, "supply", sup)
    text = ("name: t\nreproduces: test\nclusters:\n  lab: {%s}\nphones:\n  p: {count: 1}\n"
            "steps:\n  - boot: p\n  - expect: {phones: p, itl: installed}\n")
    try:
        _expect_lab_keys(load_text(text % "seed: 3"))
        assert sup._thread is None and not sup._stocks  # seeded: nothing to make ahead
        _expect_lab_keys(load_text(text % "key: rsa1024"))
        _wait_for(lambda: sup.ready(RSA1024) == 2)
        assert sup.taken == sup.inline == 0
    finally:
        sup.close()
