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


def test_lab_show_says_when_a_recorded_lsc_no_longer_authenticates(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``lab show`` printed ``LSC yes`` for an LSC that had expired at the lab clock, or that a
    regenerated CAPF no longer issued — both refused by CAPF (by existing certificate) and the registrar.
    It now says why, in the text and in ``--json`` (``lsc_problem``)."""
    import json

    from cryptography.hazmat.primitives.asymmetric import ec

    lab = LabCluster.init(tmp_path / "lab", seed=5, key_spec="rsa1024", now=1_780_000_000)
    lab.add_phones([MAC], now=1_780_000_000)
    key = ec.generate_private_key(ec.SECP256R1())
    lab.record_lsc(MAC, lab.issue_lsc(f"SEP{MAC}", key.public_key(), days=30), now=1_780_000_000)

    def line() -> str:
        assert main(["lab", "show", str(lab.root), "--phones"]) == 0
        return next(x for x in capsys.readouterr().out.splitlines() if x.startswith(f"phone {MAC}"))

    assert "LSC yes," in line() or line().endswith("LSC yes")
    assert main(["lab", "clock", str(lab.root), "--advance", str(40 * 86400)]) == 0
    capsys.readouterr()
    assert "LSC yes (expired 20" in line()
    assert main(["lab", "show", str(lab.root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["phones"][MAC]["lsc_problem"].startswith("expired ")
    assert main(["lab", "regenerate", str(lab.root), "capf"]) == 0
    capsys.readouterr()
    assert "LSC yes (not issued by the current CAPF (regenerated since))" in line()


def test_a_manual_key_for_a_model_without_one_is_warned(unseeded: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A manual config key given to a cp-8861 (no manual key: its configs are encrypted for its
    certificate) made the lab serve it a .enc.sgn it cannot read, without a word; now one warning. A
    model with a manual key (7942) gets none."""
    key = "00112233445566778899aabbccddeeff"
    assert main(["lab", "phone", "add", str(unseeded), "--mac", MAC, "--encrypt", "symmetric",
                 "--symmetric-key", key]) == 0
    assert f"warning: phone {MAC}: model 8861 (cp-8861) has no manual config key" in capsys.readouterr().err
    assert main(["lab", "phone", "add", str(unseeded), "--mac", "0011223344D2", "--model", "7942",
                 "--encrypt", "symmetric", "--symmetric-key", key]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(["lab", "encryption", str(unseeded), "--mac", MAC, "on", "--symmetric-key", key]) == 0
    assert "has no manual config key" in capsys.readouterr().err
