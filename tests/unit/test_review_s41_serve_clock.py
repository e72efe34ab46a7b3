"""``lab serve`` of an unseeded lab runs on the lab's "now" read when serving starts and after each reload of
the lab's state, advancing with the real time in between (:func:`phoneemu.commands.lab_serve.serve_clock`,
the rule of the lab's phones, :mod:`phoneemu.commands._lab_clock`).

Was ``state.now_at(time.time())`` at every reading: after ``lab clock --advance 86400`` the servers' clock
stood still at the lab's clock until the real time caught up, and the SIP registrar's digest nonces, dated
by it, never went stale. The real time is a fake here (no sleeping, no timing)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from phoneemu.commands.lab_serve import serve_clock
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.sip_service import SipRegistrar

DAY = 86400
START = 1_900_000_000.25  # the fake real time serving starts at (Unix seconds)


@pytest.fixture()
def real(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The fake real time: ``real[0]``, moved by the test."""
    now = [START]
    monkeypatch.setattr(time, "time", lambda: now[0])
    return now


def _clock(lab: LabCluster) -> Callable[[], int]:
    clock = serve_clock(lab)
    assert clock is not None
    return clock


def _advanced_lab(root: Path, real: list[float]) -> LabCluster:
    lab = LabCluster.init(root, key_spec="rsa1024", now=int(real[0]) - 10)
    lab.advance_clock(DAY)
    assert lab.state.clock == int(START) - 10 + DAY
    return lab


def test_a_clock_ahead_of_the_real_time_advances_with_it(tmp_path: Path, real: list[float]) -> None:
    lab = _advanced_lab(tmp_path / "lab", real)
    clock = _clock(lab)
    assert clock() == lab.state.clock  # the lab's "now" when serving starts
    real[0] += 2.2
    assert clock() == lab.state.clock + 2  # was: lab.state.clock (stood still)
    real[0] += 3600
    assert clock() == lab.state.clock + 3602


def test_the_registrars_nonces_go_stale_on_an_advanced_lab(tmp_path: Path, real: list[float]) -> None:
    """The reviewer's reproduction: a registrar on this clock, nonces valid 1 s."""
    lab = _advanced_lab(tmp_path / "lab", real)
    reg = SipRegistrar(lambda _user: None, clock=_clock(lab), nonce_validity=1)
    issued = reg.clock()
    real[0] += 2.2
    assert reg.clock() - issued > reg.nonce_validity  # was: 0, a nonce never stale


def test_a_clock_behind_the_real_time_is_the_real_time(tmp_path: Path, real: list[float]) -> None:
    lab = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=int(real[0]) - 366 * DAY)
    clock = _clock(lab)
    assert clock() == int(START)
    real[0] += 5
    assert clock() == int(START) + 5


def test_a_reload_takes_the_labs_clock_again(tmp_path: Path, real: list[float]) -> None:
    """Another process's ``lab clock --advance`` while served: picked up by the reload, then advancing."""
    lab = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=int(real[0]) - 10)
    clock = _clock(lab)
    assert clock() == int(START)
    real[0] += 100
    other = LabCluster.open(tmp_path / "lab")
    other.advance_clock(DAY)  # the lab's clock: START - 10 + DAY
    assert clock() == int(START) + 100  # not reloaded yet: as before
    assert lab.reload_if_changed()
    assert clock() == int(START) - 10 + DAY
    real[0] += 7
    assert clock() == int(START) - 10 + DAY + 7


def test_a_reload_never_moves_the_clock_back(tmp_path: Path, real: list[float]) -> None:
    """The lab's clock read again after the servers ran past it (their own operations date themselves by
    this clock; another process's operation by the lab's clock, which stands still for it): kept."""
    lab = _advanced_lab(tmp_path / "lab", real)
    clock = _clock(lab)
    real[0] += 600
    ahead = clock()
    assert ahead == lab.state.clock + 600
    other = LabCluster.open(tmp_path / "lab")
    other.advance_clock(60)  # less than the 600 s served since
    assert lab.reload_if_changed()
    assert clock() == ahead


def test_a_seeded_lab_keeps_its_own_clock(tmp_path: Path, real: list[float]) -> None:
    lab = LabCluster.init(tmp_path / "lab", seed=3, key_spec="rsa1024")
    assert serve_clock(lab) is None  # the servers' default: the lab's own clock, as documented
