"""``lab regenerate DIR itlrecovery`` says what its phones will meet (``itlrecovery_warning``).

Was: with ``lab service DIR tvs stop`` in effect the warning still said only that phones trust the new
signer "through TVS" - not that TVS is stopped, so every phone locks out as it takes the new list
(``G.3.4-tvs-unreachable``); and with the rollback ITL served, nothing of the phones holding a CTL, which
have no TVS to ask then (spec §G.3 note).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main


def _regenerate(d: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["lab", "regenerate", str(d), "itlrecovery"]) == 0
    return capsys.readouterr().err


def test_the_warning_says_tvs_is_stopped_and_how_to_start_it(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "lab"
    assert main(["lab", "init", str(d), "--seed", "4", "--key", "rsa1024", "--now", "1780000000"]) == 0
    assert "stopped" not in _regenerate(d, capsys)
    assert main(["lab", "service", str(d), "tvs", "stop"]) == 0
    err = _regenerate(d, capsys)
    assert err.startswith("phoneemu lab regenerate: warning: regenerating the ITLRecovery certificate")
    assert "TVS is stopped (tvs)" in err and "every phone locks out as it takes the new ITL" in err
    assert "G.3.4-tvs-unreachable" in err and f"phoneemu lab service {d} tvs start" in err
    # a second node's TVS still up: the phones ask it
    assert main(["lab", "add-node", str(d)]) == 0
    err = _regenerate(d, capsys)
    assert "every phone locks out" not in err
    assert "TVS tvs stopped: the phones ask the other TVS their config names (tvs-2)" in err
    assert main(["lab", "service", str(d), "tvs-2", "stop"]) == 0
    assert "TVS is stopped (tvs, tvs-2)" in _regenerate(d, capsys)
    assert main(["lab", "service", str(d), "tvs", "start"]) == 0
    assert main(["lab", "service", str(d), "tvs-2", "start"]) == 0
    assert "stopped" not in _regenerate(d, capsys)


def test_the_warning_says_what_the_rollback_itl_does(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "lab"
    assert main(["lab", "init", str(d), "--seed", "4", "--key", "rsa1024", "--now", "1780000000"]) == 0
    assert "rollback" not in _regenerate(d, capsys)
    assert main(["lab", "rollback", str(d), "on"]) == 0
    err = _regenerate(d, capsys)
    assert "phones holding it and no CTL take the new lists unchecked" in err
    assert "those holding a CTL have no TVS to ask and lock out (G.3.5-reject-unknown-signer)" in err
