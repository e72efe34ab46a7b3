"""``lab add-certs`` / ``lab remove-certs`` say whether the served ITL is above the phones' 64 KiB limit
(spec §B.5, seed "Interactions and Restrictions": the ITL does not load, registration fails).

Was: ``remove-certs --count N`` that left the ITL above the limit said nothing - the phones stayed locked
out (``G.3.1-oversize``) while the engineer took the oversized-ITL rehearsal for undone; and
``add-certs`` said each phone "keeps its installed ITL", which reads as harmless: the phone takes no
config either, it is locked out.
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
