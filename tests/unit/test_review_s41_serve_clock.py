"""``lab serve`` of an unseeded lab runs on the lab's "now" at each reading, the one rule of its operations
and of its phones (:func:`phoneemu.commands.lab_serve.serve_clock`, :meth:`~phoneemu.lab.state.ClusterState.
now_at`, :mod:`phoneemu.commands._lab_clock`); its SIP registrar ages its digest nonces by the real time
elapsed (:func:`~phoneemu.commands.lab_serve.sip_nonce_clock`).

Was, first, ``now_at(time.time())`` for the registrar too: after ``lab clock --advance 86400`` its digest
nonces, dated by the lab's clock held ahead, never went stale. Then (review of that fix) the servers ran on
the lab's now read at start plus the real time elapsed, while the phones (``boot --lab``) read the lab's
now, which holds: five minutes into serving, the LSCs issued (valid from the server's time less 5 minutes)
were not yet valid to the phones (``F.6-capf-rejected ... not valid before``, exit 1). The real time and
the monotonic clock are fakes here (no sleeping, no timing)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from phoneemu.commands import _lab_clock
from phoneemu.commands.lab_serve import CapfBounds, _servers, serve_clock
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.sip_nonces import NONCE_VALIDITY_S
from tests.sip_helpers import challenge_for, digest_answer

DAY = 86400
START = 1_900_000_000.25  # the fake real time serving starts at (Unix seconds)
MAC = "0A00000000D2"


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


def test_the_serve_clock_is_the_phones_clock_600_s_into_serving(tmp_path: Path, real: list[float]) -> None:
    """The reviewer's reproduction: what a ``boot --lab`` phone starting then reads (``_lab_clock.lab_now``)
    is what the servers date its LSC by."""
    lab = _advanced_lab(tmp_path / "lab", real)
    clock = _clock(lab)
    assert clock() == _lab_clock.lab_now(tmp_path / "lab", real[0])
    real[0] += 600
    assert clock() == _lab_clock.lab_now(tmp_path / "lab", real[0]) == lab.state.clock  # was: 600 s apart


def test_a_clock_ahead_of_the_real_time_holds_until_the_real_time_passes_it(tmp_path: Path,
                                                                             real: list[float]) -> None:
    lab = _advanced_lab(tmp_path / "lab", real)
    clock = _clock(lab)
    assert clock() == lab.state.clock
    real[0] += 3600
    assert clock() == lab.state.clock
    real[0] += DAY
    assert clock() == int(real[0])


def test_the_registrars_nonces_go_stale_on_an_advanced_lab(tmp_path: Path, real: list[float],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """lab serve's registrar, its lab clock held a day ahead: a nonce answered past the nonce validity of
    real time elapsed is stale (was: dated by the lab's clock, never stale while it held), within it
    registered."""
    lab = _advanced_lab(tmp_path / "lab", real)
    elapsed = [5_000.5]
    monkeypatch.setattr(time, "monotonic", lambda: elapsed[0])
    servers = _servers(lab, host="127.0.0.1", tftp_port=0, http_port=0, tvs_port=0, capf_port=0, keylog=None,
                       sip_ports={}, https_config_port=None, capf_bounds=CapfBounds())
    assert servers.clock is not None and servers.clock() == lab.state.clock  # the LSCs' clock: the lab's
    registrar = servers.sip_handler
    registrar.credentials = {MAC: ("alice", "s3cret")}.get
    fresh = challenge_for(registrar, MAC)
    real[0] += 30
    elapsed[0] += 30
    assert digest_answer(registrar, MAC, fresh, 1) == (200, "")
    old = challenge_for(registrar, MAC)
    real[0] += NONCE_VALIDITY_S + 1
    elapsed[0] += NONCE_VALIDITY_S + 1
    assert servers.clock() == lab.state.clock  # the lab's clock held all along
    assert digest_answer(registrar, MAC, old, 1) == (401, "TRUE")


def test_a_clock_behind_the_real_time_is_the_real_time(tmp_path: Path, real: list[float]) -> None:
    lab = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=int(real[0]) - 366 * DAY)
    clock = _clock(lab)
    assert clock() == int(START)
    real[0] += 5
    assert clock() == int(START) + 5


def test_a_reload_takes_the_labs_clock_at_once(tmp_path: Path, real: list[float]) -> None:
    """Another process's ``lab clock --advance`` while served: picked up by the reload, then held, as the
    phones booting then read it."""
    lab = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=int(real[0]) - 10)
    clock = _clock(lab)
    assert clock() == int(START)
    real[0] += 100
    other = LabCluster.open(tmp_path / "lab")
    other.advance_clock(DAY)  # the lab's clock: START - 10 + DAY
    assert clock() == int(START) + 100  # not reloaded yet: as before
    assert lab.reload_if_changed()
    assert clock() == int(START) - 10 + DAY == _lab_clock.lab_now(tmp_path / "lab", real[0])
    real[0] += 7
    assert clock() == int(START) - 10 + DAY == _lab_clock.lab_now(tmp_path / "lab", real[0])


def test_a_seeded_lab_keeps_its_own_clock(tmp_path: Path, real: list[float]) -> None:
    lab = LabCluster.init(tmp_path / "lab", seed=3, key_spec="rsa1024")
    assert serve_clock(lab) is None  # the servers' default: the lab's own clock, as documented
