"""Lab state found by hand while enrolling LSCs and encrypting configs: the lab clock and ``cluster.json``."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster

MAC = "0011223344D1"
YEAR = 365 * 86400


@pytest.fixture
def unseeded(tmp_path: Path) -> Path:
    """A lab on the real time (no ``--seed``), as ``phoneemu lab init DIR`` makes one."""
    LabCluster.init(tmp_path / "lab", key_spec="rsa1024")
    return tmp_path / "lab"


def test_lab_clock_advance_holds_across_the_next_operation(unseeded: Path) -> None:
    """``lab clock --advance`` moves the lab clock forward for certificate expiry (README ``clock``); on a
    lab that follows the real time the next operation must not take it back (before: ``lab capf`` set it to
    the real time again, so CAPF issued and checked LSCs a year in the past of the advanced clock)."""
    assert main(["lab", "clock", str(unseeded), "--advance", str(2 * YEAR)]) == 0
    advanced = LabCluster.open(unseeded).clock
    assert advanced >= time.time() + 2 * YEAR - 60
    assert main(["lab", "phone", "add", str(unseeded), "--mac", MAC, "--capf", "install",
                 "--auth-mode", "null-string"]) == 0
    lab = LabCluster.open(unseeded)
    assert lab.clock >= advanced
    assert lab.state.log[-1].time >= advanced  # the change log is not dated before the advance either
    assert main(["lab", "capf", str(unseeded), "none", "--mac", MAC, "--now", "1000000000"]) == 0
    assert LabCluster.open(unseeded).clock == 1000000000  # an explicit --now is still taken as given


def test_cluster_json_holding_keys_and_strings_is_0600(unseeded: Path) -> None:
    """``cluster.json`` holds manual config keys (spec §C.5), CAPF authentication strings (§F.7) and SIP
    digest passwords: written 0600 like ``private/`` keys and ``mic.key`` (before: 0644, any local user
    read the keys typed into the phones)."""
    assert main(["lab", "phone", "add", str(unseeded), "--mac", MAC, "--model", "7942", "--encrypt",
                 "symmetric", "--symmetric-key", "00112233445566778899aabbccddeeff", "--capf", "install",
                 "--auth-string", "123456"]) == 0
    state = unseeded / "cluster.json"
    assert "00112233445566778899aabbccddeeff" in state.read_text()
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
