"""Lab operations whose next step is the phones' say so (seed "Perform Bulk Reset of ITL File" steps 4-5,
"Reset CTL Localkey" steps 4-5, "Interactions and Restrictions").

Was: ``lab itl-reset`` and ``lab ctl-reset`` printed only who signs the list now - not that the phones are
to be reset before ``restart-tftp`` / ``ctl-update`` (run first, it serves the list they refused again);
``lab add-certs`` taking the ITL above 64 KiB printed its md5 only, each phone then refusing it
(``G.3.1-oversize``) at its next reset; ``remove-certs --count N`` that left the ITL above the limit said
nothing (the phones stayed locked out while the engineer took the oversized-ITL rehearsal for undone), and
``add-certs`` said each phone "keeps its installed ITL", which reads as harmless: it takes no config
either, it is locked out (walkthrough s39).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main

_LIMIT = 65536


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


def _itl_size(lab: Path) -> int:
    return (lab / "tftp" / "ITLFile.tlv").stat().st_size


def test_add_certs_above_the_limit_says_the_phones_are_locked_out(lab: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    err = _err(capsys, "lab", "add-certs", str(lab), "--count", "60")
    assert _itl_size(lab) > _LIMIT
    assert f"the ITL is {_itl_size(lab)} bytes, above the phones' 64 KiB (65536-byte) limit (60 extra " in err
    assert "takes no config: locked out (G.3.1-oversize" in err


def test_remove_certs_leaving_it_above_the_limit_says_so(lab: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "add-certs", str(lab), "--count", "60"]) == 0
    err = _err(capsys, "lab", "remove-certs", str(lab), "--count", "1")
    assert _itl_size(lab) > _LIMIT
    assert err.startswith(f"phoneemu lab remove-certs: note: the ITL is still {_itl_size(lab)} bytes, above "
                          "the phones' 64 KiB (65536-byte) limit (59 extra certificates; ")
    assert "locked out (G.3.1-oversize" in err and f"phoneemu lab remove-certs {lab} removes the rest" in err


def test_remove_certs_back_under_the_limit_says_the_phones_take_it(
        lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "add-certs", str(lab), "--count", "60"]) == 0
    err = _err(capsys, "lab", "remove-certs", str(lab))
    assert _itl_size(lab) <= _LIMIT
    assert err == (f"phoneemu lab remove-certs: note: the ITL is {_itl_size(lab)} bytes, back under the "
                   "phones' 64 KiB (65536-byte) limit: each phone takes it at its next reset\n")


def test_remove_certs_under_the_limit_all_along_says_nothing(lab: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "add-certs", str(lab), "--count", "3"]) == 0
    assert _err(capsys, "lab", "remove-certs", str(lab), "--count", "1") == ""
