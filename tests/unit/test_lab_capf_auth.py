"""``lab phone add --capf`` / ``lab capf``: the CAPF authentication is an explicit choice, never a
silent null string."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster

MAC = "0011223344AA"


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    LabCluster.init(tmp_path / "lab", seed=5, key_spec="rsa1024")
    return tmp_path / "lab"


def test_capf_without_an_auth_choice_is_refused(lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "phone", "add", str(lab), "--mac", MAC, "--capf", "install"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--auth-string DIGITS" in err and "--auth-mode null-string" in err
    assert MAC not in LabCluster.open(lab).state.phones
    assert main(["lab", "phone", "add", str(lab), "--mac", MAC]) == 0
    assert main(["lab", "capf", str(lab), "install", "--mac", MAC]) == 2
    assert "--auth-mode null-string" in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "mode", "string"), [
    (["--auth-string", "123456"], 1, "123456"),
    (["--auth-mode", "null-string"], 2, None),
    (["--auth-mode", "2"], 2, None),
    (["--auth-mode", "mic"], 4, None),
])
def test_explicit_choices_are_taken(lab: Path, extra: list[str], mode: int, string: str | None) -> None:
    assert main(["lab", "phone", "add", str(lab), "--mac", MAC, "--capf", "install", *extra]) == 0
    ph = LabCluster.open(lab).state.phones[MAC]
    assert (ph.capf_operation, ph.capf_auth_mode, ph.auth_string) == ("install", mode, string)


def test_a_bad_auth_mode_name_is_a_usage_error(lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["lab", "phone", "add", str(lab), "--mac", MAC, "--capf", "install", "--auth-mode", "nul"])
    assert "null-string" in capsys.readouterr().err


def test_an_auth_string_after_a_null_string_operation_is_mode_1(lab: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """``--auth-string`` implies ``--auth-mode string`` whatever the phone's last operation used: after a
    null-string enrolment the phone kept mode 2, and the next install by string enrolled without it."""
    assert main(["lab", "phone", "add", str(lab), "--mac", MAC, "--capf", "install",
                 "--auth-mode", "null-string"]) == 0
    assert main(["lab", "capf", str(lab), "install", "--mac", MAC, "--auth-string", "123456"]) == 0
    ph = LabCluster.open(lab).state.phones[MAC]
    assert (ph.capf_auth_mode, ph.auth_string) == (1, "123456")
    assert LabCluster.open(lab).state.log[-1].args["auth_mode"] == 1  # the change log says so
    # an explicit mode still wins over the implication
    assert main(["lab", "capf", str(lab), "install", "--mac", MAC, "--auth-string", "9999",
                 "--auth-mode", "null-string"]) == 0
    assert LabCluster.open(lab).state.phones[MAC].capf_auth_mode == 2
