"""``lab serve`` dates what its servers do by the lab's "now"
(:func:`phoneemu.commands.lab_serve.serve_clock`): a seeded lab its own clock (None: the servers'
default), an unseeded one the later of its clock and the real time at each reading. Was the lab's stored
clock for every lab: an unseeded lab served a year after its last operation issued LSCs from that
operation's time, already expired to its phones."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from phoneemu.commands.lab_serve import serve_clock
from phoneemu.lab.cluster import LabCluster

YEAR = 366 * 86400


def test_a_seeded_lab_is_served_on_its_own_clock(tmp_path: Path) -> None:
    lab = LabCluster.init(tmp_path / "lab", seed=3, key_spec="rsa1024")
    assert serve_clock(lab) is None


def test_an_unseeded_lab_idle_for_a_year_issues_lscs_valid_now(tmp_path: Path) -> None:
    lab = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=int(time.time()) - YEAR)
    clock = serve_clock(lab)
    assert clock is not None and abs(clock() - time.time()) < 5
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    lsc = x509.load_der_x509_certificate(lab.issue_lsc("SEP0A0000000001", key, now=clock()))
    assert lsc.not_valid_before_utc.timestamp() <= time.time() <= lsc.not_valid_after_utc.timestamp()
    stale = x509.load_der_x509_certificate(lab.issue_lsc("SEP0A0000000001", key))  # the stored clock's
    assert stale.not_valid_after_utc.timestamp() < time.time()  # what was issued before


def test_an_advanced_unseeded_clock_holds_until_the_real_time_passes_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As the lab's phones' (tests/unit/test_review_s41_serve_clock.py)."""
    lab = LabCluster.init(tmp_path / "lab", key_spec="rsa1024")
    lab.advance_clock(YEAR)
    real = [time.time()]
    monkeypatch.setattr(time, "time", lambda: real[0])  # a fake real time, moved below: no timing
    clock = serve_clock(lab)
    assert clock is not None and clock() == lab.state.clock
    real[0] += 600
    assert clock() == lab.state.clock  # held (was: the clock at start plus the 600 s)
    real[0] += YEAR
    assert clock() == int(real[0])  # the real time passed it
