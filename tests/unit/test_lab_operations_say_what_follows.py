"""Lab operations whose next step is the phones' say so (seed "Perform Bulk Reset of ITL File" steps 4-5,
"Reset CTL Localkey" steps 4-5, "Interactions and Restrictions").

Was: ``lab itl-reset`` and ``lab ctl-reset`` printed only who signs the list now - not that the phones are
to be reset before ``restart-tftp`` / ``ctl-update`` (run first, it serves the list they refused again);
``lab add-certs`` taking the ITL above 64 KiB printed its md5 only, each phone then refusing it
(``G.3.1-oversize``) at its next reset.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    d = tmp_path / "lab"
    assert main(["lab", "init", str(d), "--seed", "5", "--key", "rsa1024", "--now", "1780000000"]) == 0
    return d


def _err(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return capsys.readouterr().err


def test_itl_reset_says_reset_the_phones_then_restart_tftp(lab: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    err = _err(capsys, "lab", "itl-reset", str(lab), "localkey")
    assert err.startswith("phoneemu lab itl-reset: note: the ITL is signed by the CallManager key")
    assert err.index("reset the phones now") < err.index(f"then phoneemu lab restart-tftp {lab}")
    assert _err(capsys, "lab", "restart-tftp", str(lab)) == ""


def test_ctl_reset_says_reset_the_phones_then_ctl_update(lab: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "mixed-mode", str(lab), "on"]) == 0
    err = _err(capsys, "lab", "ctl-reset", str(lab), "localkey")
    assert err.startswith("phoneemu lab ctl-reset: note: the CTL is signed by the CallManager key")
    assert err.index("reset the phones now") < err.index(f"then phoneemu lab ctl-update {lab}")


def test_add_certs_says_when_the_itl_crosses_64_kib(lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _err(capsys, "lab", "add-certs", str(lab), "--count", "2") == ""
    err = _err(capsys, "lab", "add-certs", str(lab), "--count", "60")
    size = (lab / "tftp" / "ITLFile.tlv").stat().st_size
    assert size > 65536
    assert f"note: the ITL is {size} bytes, above the phones' 64 KiB" in err
    assert "G.3.1-oversize" in err and f"phoneemu lab remove-certs {lab}" in err
