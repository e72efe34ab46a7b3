"""A refused ``boot`` (exit 2, bad input) writes nothing: a ``--flash`` folder it would make is not left
behind, an existing one is not changed; ``--key``'s refusal names the option, not the store's field."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone.flash import Flash
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile

MAC = "001122334455"
KEY_256 = "00112233445566778899aabbccddeeff" * 2
NOWHERE = "127.0.0.1:9"  # never asked: the boot is refused before


def _files(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize(("extra", "said"), [
    (["--auth-string", "12"], "--auth-string DIGITS: CAPF authentication string must be 4..16 digits"),
    (["--profile", "cp-7942-symmetric", "--key", KEY_256],
     "--key HEX: 256-bit key; cp-7942-symmetric takes 128-bit keys"),
])
def test_a_refused_boot_leaves_no_new_flash(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            extra: list[str], said: str) -> None:
    """Was: exit 2 with ``phone.json`` and ``state.json`` written into the new folder (and the key's
    refusal said as ``symmetric_key: ...``)."""
    flash = tmp_path / "new" / "ph1"
    assert main(["boot", "--tftp", NOWHERE, "--mac", MAC, "--flash", str(flash), *extra]) == 2
    err = capsys.readouterr().err
    assert said in err and "symmetric_key" not in err, err
    assert not flash.exists()


def test_a_refused_lab_boot_leaves_no_new_flash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With ``--lab`` (was: its MIC too, ``mic.der`` and ``mic.key``, written before the refusal)."""
    c = LabCluster.init(tmp_path / "lab", key_spec="rsa1024")
    c.add_phones([MAC])
    flash = tmp_path / "ph1"
    assert main(["boot", "--tftp", NOWHERE, "--mac", MAC, "--lab", str(c.root), "--flash", str(flash),
                 "--auth-string", "12"]) == 2
    assert "--auth-string DIGITS" in capsys.readouterr().err
    assert not flash.exists()


def test_a_refused_boot_does_not_change_an_existing_flash(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """An existing flash: every file as it was, and the folder kept."""
    profile = get_profile("cp-7942-symmetric")
    flash = tmp_path / "ph1"
    Phone(mac=MAC, profile=profile, flash=Flash(flash, profile=profile), clock=lambda: 0)
    before = _files(flash)
    assert before
    for extra in (["--key", KEY_256], ["--auth-string", "1x34"]):
        assert main(["boot", "--tftp", NOWHERE, "--flash", str(flash), *extra]) == 2
        assert _files(flash) == before
        assert f"{extra[0]} " in capsys.readouterr().err
