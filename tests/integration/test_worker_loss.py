"""Fleet shards and ``run -j`` workers each report over a pipe of their own: a worker whose message is
garbled, or that dies in the middle of one, is reported (lost shard / ERROR naming it) and every
other worker's result is kept; a result of several MB arrives without a deadlock.

Real worker processes with the real protocol; only the work is faked, inside the worker process
(``run_shard`` / ``run_scenario`` replaced before the real ``_child`` / ``_worker`` runs), so these
take seconds and touch no network.
"""

from __future__ import annotations

import os
import signal
import struct
from pathlib import Path
from typing import Any

import pytest

from phoneemu.fleet import engine as engine_mod
from phoneemu.fleet import shard as shard_mod
from phoneemu.fleet.engine import FleetSpec, ShardResult, mac_text
from phoneemu.fleet.metrics import BootRecord, FleetMetrics
from phoneemu.phone.boot import BootTarget
from phoneemu.scenario import parallel
from phoneemu.scenario.loader import load_text
from phoneemu.scenario.model import Scenario
from phoneemu.scenario.runner import RunOptions

PAD = 2000  # characters of `reason` per record of the large results


class _PoisonError(Exception):
    pass


def _explode(what: str) -> None:
    raise _PoisonError(what)


class _Poison:
    """Pickles fine; unpickling it raises (a message the parent cannot decode)."""

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return _explode, ("poisoned message",)


def _cut_off_and_die(conn: Any) -> None:
    """Half a message on our own pipe, then SIGKILL: as if killed in the middle of a write."""
    os.write(conn.fileno(), struct.pack("!Q", 100_000) + b"\x80\x05 a partial message")
    os.kill(os.getpid(), signal.SIGKILL)


# --------------------------------------------------------------------------- fleet shards
#: the shard that sends a result the parent cannot unpickle, and the one killed halfway through a message
POISONED_SHARD, CUT_SHARD = 1, 2


def _quick_run_shard(mode: str, out: Any) -> Any:
    async def run_shard(spec: FleetSpec, macs: range, *, shard: int = 0, on_progress: Any = None,
                        ready: Any = None, should_stop: Any = None, on_give_up: Any = None) -> ShardResult:
        if ready is not None:
            await ready()
        if on_progress is not None:
            on_progress(len(macs), len(macs), {}, 0)
        if mode == "misbehaving" and shard == CUT_SHARD:
            _cut_off_and_die(out)
        reason = "r" * PAD if mode == "big" else None
        recs = [BootRecord(mac=mac_text(m), outcome="ok", rule=None, latency_s=0.001, end_s=0.001,
                           reason=reason) for m in macs]
        return ShardResult(shard=shard, metrics=FleetMetrics(), records=recs)
    return run_shard


def _shard_child(mode: str, spec: FleetSpec, macs: range, shard: int, channels: Any, timeout: float) -> None:
    """Runs in the shard process: the real ``_child`` with the boots faked (and shards 1 and 2 misbehaving
    in ``misbehaving`` mode)."""
    engine_mod.run_shard = _quick_run_shard(mode, channels[0])  # _child imports it from there
    if mode == "misbehaving" and shard == POISONED_SHARD:
        real = ShardResult.to_state
        ShardResult.to_state = lambda self: {**real(self), "poison": _Poison()}  # type: ignore[method-assign]
    shard_mod._child(spec, macs, shard, channels, timeout)


def _misbehaving_child(*args: Any) -> None:
    _shard_child("misbehaving", *args)


def _big_child(*args: Any) -> None:
    _shard_child("big", *args)


def _fleet(monkeypatch: pytest.MonkeyPatch, child: Any, count: int, shards: int = 2) -> Any:
    monkeypatch.setattr(shard_mod, "_child", child)
    spec = FleetSpec(target=BootTarget(host="127.0.0.1", tftp_port=9), count=count, keep_records=True)
    lost: list[str] = []
    res = shard_mod.run_fleet(spec, shards=shards, start_timeout=60, run_timeout=60, on_lost=lost.append)
    return spec, res, lost


def test_fleet_shards_garbled_or_killed_mid_message_are_lost_the_other_kept(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Shard 1 sends a result the parent cannot unpickle: it is lost (and killed). Shard 2 is SIGKILLed
    halfway through writing a message: lost as killed by SIGKILL (its cut-off message dropped). Shard 0's
    result is all there. Before (one queue): the unpickling error escaped run_fleet, every shard lost; a
    writer killed mid-put could hold the queue's lock, and every other writer, and the parent's read,
    waited forever. (One fleet of three shards for both: each fleet of two cost two processes.)"""
    spec, res, lost = _fleet(monkeypatch, _misbehaving_child, 12, shards=3)
    assert [s.shard for s in res.shards] == [0] and len(res.records) == 4
    assert [r.mac for r in res.records] == [mac_text(spec.mac_start + n) for n in range(4)]
    garbled, cut = sorted(res.lost, key=lambda gone: gone.shard)
    assert garbled.shard == POISONED_SHARD and garbled.phones == 4 and garbled.reported_done == 4
    assert garbled.why.startswith("sent a damaged message (_PoisonError: poisoned message)"), garbled.why
    assert cut.shard == CUT_SHARD and cut.why == "killed by SIGKILL", cut
    assert res.summary()["lost"] == 8 and len(lost) == 2
    assert any(f"shard {POISONED_SHARD} (phoneemu-fleet-{POISONED_SHARD}" in line for line in lost), lost


def test_fleet_results_of_several_mb_arrive(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each shard's result is ~4 MB (a pipe holds 64 kB): the parent reads while the shards write,
    nothing is lost and nothing waits for ever."""
    spec, res, _ = _fleet(monkeypatch, _big_child, 4000)
    assert not res.lost and [s.shard for s in res.shards] == [0, 1]
    assert len(res.records) == 4000 and all(r.reason == "r" * PAD for r in res.records)
    assert res.records[-1].mac == mac_text(spec.mac_start + 3999)


# --------------------------------------------------------------------------- run -j workers
SCENARIO = """\
reproduces: spec G.2
phones:
  p: {mac: 0B0000000001}
steps:
  - boot: p
  - expect: {phones: p, label: first, config: accepted}
"""


def _worker(mode: str, base: int, tasks: Any, results: Any, settings: Any, me: int = 0) -> None:
    """Runs in the worker process: the real ``_worker`` with each scenario's run faked."""
    from phoneemu.scenario import runner

    async def run_scenario(sc: Scenario, opts: RunOptions, result: Any = None, tracker: Any = None) -> Any:
        res = runner.new_result(sc)
        if sc.name == "poison":
            res.error = _Poison()  # type: ignore[assignment]
        elif sc.name == "cut":
            _cut_off_and_die(results)
        elif mode == "big":
            res.error = "e" * (4 << 20)
        return res

    runner.run_scenario = run_scenario  # type: ignore[assignment]
    parallel._worker(base, tasks, results, settings, me)


def _plain_worker(*args: Any) -> None:
    _worker("", *args)


def _big_worker(*args: Any) -> None:
    _worker("big", *args)


def _run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, worker: Any, names: list[str],
         jobs: int = 2) -> Any:
    monkeypatch.setattr(parallel, "_worker", worker)
    scenarios = [load_text(SCENARIO, str(tmp_path / f"{n}.yaml")) for n in names]
    assert [s.name for s in scenarios] == names
    lines: list[str] = []
    summary = parallel.run_parallel(scenarios, RunOptions(progress=lines.append, lab_host_base=11), jobs)
    return {s.name: s for s in summary.scenarios}, summary, lines


def test_run_worker_garbled_or_killed_mid_message_is_an_error_the_rest_kept(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A worker garbles its result, later one dies halfway through writing it: each of those scenarios is
    an ERROR naming the worker and its pid, every other scenario runs. Before (one queue): the garbled
    result's unpickling error escaped run_parallel and every verdict was lost. (Both in one run: a run
    each cost its three worker processes.)"""
    whys = {"poison": "sent a damaged message (_PoisonError: poisoned message) while running this scenario",
            "cut": "was killed by SIGKILL while running this scenario"}
    names = ["a", "b", "poison", "c", "cut", "d", "e"]
    got, summary, lines = _run(monkeypatch, tmp_path, _plain_worker, names)
    assert list(got) == names and not summary.not_run and not summary.interrupted
    assert {n: got[n].outcome.value for n in names if n not in whys} == dict.fromkeys("abcde", "PASS")
    for victim, why in whys.items():
        err = got[victim].error
        assert err is not None and err.startswith("worker process phoneemu-run-") and err.endswith(why), err
        assert any(f"{victim} ERROR (phoneemu-run-" in line for line in lines), lines


def test_run_worker_that_dies_is_replaced_for_the_scenarios_left(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``-j 1``: the only worker garbles its result in the second scenario, its replacement dies in the
    fourth; a fresh worker runs the rest each time. Before: they were ERRORs "not run: every worker process
    ended". (Both in one run: a run each cost two worker processes.)"""
    names = ["a", "poison", "b", "cut", "c"]
    got, summary, _ = _run(monkeypatch, tmp_path, _plain_worker, names, jobs=1)
    assert list(got) == names and not summary.not_run
    assert {n: got[n].outcome.value for n in "abc"} == dict.fromkeys("abc", "PASS"), \
        {n: got[n].error for n in "abc"}
    assert got["poison"].outcome.value == got["cut"].outcome.value == "ERROR"


def _dead_on_arrival(*args: Any) -> None:
    """A worker that cannot start (as with a broken install): it exits before saying ``ready``."""
    import os

    os._exit(3)


def test_run_workers_that_cannot_start_are_not_restarted_for_ever(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Workers that die before they come up are not replaced: every scenario is an ERROR saying why,
    at once (no restart loop)."""
    got, summary, _ = _run(monkeypatch, tmp_path, _dead_on_arrival, ["a", "b", "c"])
    assert list(got) == ["a", "b", "c"] and not summary.not_run
    for sc in got.values():
        assert sc.error is not None and sc.error.startswith("not run: every worker process ended"), sc.error
        assert "exited with status 3" in sc.error, sc.error


def test_run_results_of_several_mb_arrive(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    names = ["a", "b", "c", "d"]
    got, summary, _ = _run(monkeypatch, tmp_path, _big_worker, names)
    assert list(got) == names and not summary.not_run
    assert all(got[n].error == "e" * (4 << 20) for n in names)
