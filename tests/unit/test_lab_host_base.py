"""``PHONEEMU_LAB_HOST_BASE``: 11..40 moves the lab clusters; anything else is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.errors import PhoneEmuError
from phoneemu.scenario.runner import RunOptions, lab_host_base_from_env


@pytest.mark.parametrize(("value", "base"), [(None, 11), ("", 11), ("11", 11), (" 23 ", 23), ("40", 40)])
def test_good_values(monkeypatch: pytest.MonkeyPatch, value: str | None, base: int) -> None:
    if value is None:
        monkeypatch.delenv("PHONEEMU_LAB_HOST_BASE", raising=False)
    else:
        monkeypatch.setenv("PHONEEMU_LAB_HOST_BASE", value)
    assert lab_host_base_from_env() == base == RunOptions().lab_host_base


@pytest.mark.parametrize("value", ["10", "41", "abc", "-12", "12.5", "0x11"])
def test_bad_values_are_errors_naming_the_variable(monkeypatch: pytest.MonkeyPatch, value: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PHONEEMU_LAB_HOST_BASE", value)
    with pytest.raises(PhoneEmuError, match="expected a whole number from 11 to 40"):
        RunOptions()
    assert main(["run", str(Path(__file__).resolve().parents[2] / "scenarios" / "tvs-outage.yaml")]) == 2
    err = capsys.readouterr().err
    assert "PHONEEMU_LAB_HOST_BASE" in err and repr(value) in err
