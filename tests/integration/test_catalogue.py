"""The scenario catalogue runs green against the built-in lab (issue 5: the tests run it too).

Each file is its own test so that a failure names the scenario and pytest-xdist spreads them.

Fresh RSA keys were two thirds of the module's CPU (729 RSA-2048 keys, ~48 ms each, for 67 scenarios):
each scenario's labs and MICs take theirs from :class:`_KeysAgain` instead of
:mod:`phoneemu.crypto.key_supply` — fresh OpenSSL keys of the spec asked for, made once per test worker and
handed out again to the next scenario, never twice within one (no scenario can tell: nothing outlives its
labs; every key it is given is still its own). The supply itself is tested in tests/unit/test_key_supply.py.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phoneemu.crypto import key_supply
from phoneemu.crypto.keys import KeySpec, generate_key
from phoneemu.scenario.loader import discover, load_file
from phoneemu.scenario.reports import render_text
from phoneemu.scenario.results import Outcome, RunSummary
from phoneemu.scenario.runner import RunOptions, run_scenario

CATALOGUE = Path(__file__).resolve().parents[2] / "scenarios"
FILES = discover([CATALOGUE])


class _KeysAgain:
    """Fresh keys per spec, each made once per process and handed out again from the start after
    :meth:`new_scenario`: within one scenario every key is given once (threads too: the lab makes MIC keys
    on all cores)."""

    def __init__(self) -> None:
        self._made: dict[tuple[KeySpec, int], Any] = {}
        self._given: dict[KeySpec, int] = {}
        self._lock = threading.Lock()

    def new_scenario(self) -> None:
        with self._lock:
            self._given.clear()

    def __call__(self, spec: KeySpec) -> Any:
        with self._lock:
            n = self._given.get(spec, 0)
            self._given[spec] = n + 1  # the n-th key of this spec is the caller's alone
            key = self._made.get((spec, n))
        if key is None:
            key = generate_key(spec)  # outside the lock: OpenSSL releases the GIL meanwhile
            with self._lock:
                self._made[(spec, n)] = key
        return key


@pytest.fixture(scope="module")
def keys_again() -> _KeysAgain:
    return _KeysAgain()


@pytest.fixture
def scenario_keys(keys_again: _KeysAgain, monkeypatch: pytest.MonkeyPatch) -> Iterator[_KeysAgain]:
    """The lab's fresh keys for one scenario from ``keys_again`` (no stock, no thread)."""
    keys_again.new_scenario()
    monkeypatch.setattr(key_supply, "supply", key_supply.FreshKeySupply(stock=0, generate=keys_again))
    yield keys_again


def test_catalogue_is_not_empty() -> None:
    assert len(FILES) >= 20


def test_keys_again_gives_a_key_once_per_scenario() -> None:
    keys = _KeysAgain()
    rsa, ec = KeySpec.parse("rsa1024"), KeySpec.parse("ec-p256")
    first = [keys(rsa), keys(rsa), keys(ec)]
    assert len({id(k) for k in first}) == 3
    keys.new_scenario()
    assert [keys(rsa), keys(rsa), keys(ec)] == first  # the same keys again, each once
    assert keys(rsa) not in first


@pytest.mark.usefixtures("scenario_keys")
@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario_passes(path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Green, and nothing logged at WARNING: ``phoneemu run scenarios/`` (the README's first command) says
    nothing on stderr — what a scenario rehearses on purpose (a refused handshake, a cut CAPF session) is
    in its lab's request log, not a warning."""
    caplog.set_level(logging.WARNING)
    scenario = load_file(path)
    head = path.read_text().splitlines()[0]
    assert head.startswith("# Reproduces:"), f"{path.name} must name the section it reproduces"
    assert scenario.reproduces, f"{path.name}: a catalogue file's reproduces: field names the section"
    result = asyncio.run(run_scenario(scenario, RunOptions()))
    report = render_text(RunSummary(scenarios=[result]), verbose=True)
    assert not result.outcome.bad, report
    assert result.outcome in (Outcome.PASS, Outcome.XFAIL)
    assert result.expectations, report
    warned = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]
    assert not warned, warned
