"""``predict --junit``: a locked-out phone's case says, under its ways out, what each placeholder their
commands leave stands for and why it is left, in the terminal's words
(:func:`phoneemu.phone.ways_out.legend_lines`), and fills what the terminal fills (``OLD``: the lab the
``--installed-*`` files are). Was: ``OLD`` and ``FLASH`` bare in the CI report, and ``OLD`` left there where
the terminal filled it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.commands.predict import _junit_case
from tests.helpers import legend_of, moved_labs

NOW = 1_780_000_000
MAC = "0A00000000D2"
RULE = "G.3.5-reject-unknown-signer"


@pytest.fixture(scope="module")
def moved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Labs ``a`` (the phone's ITL now) and ``b`` (where it moves, its ITL signed by a signer a's does not
    name: G.3.5-reject-unknown-signer); a copy of a's ITL outside any lab."""
    return moved_labs(tmp_path_factory.mktemp("moved"), mac=MAC, now=NOW, seeds=(31, 32))


def _failure(junit: Path) -> tuple[str, str]:
    (failure,) = ET.parse(junit).iter("failure")
    return str(failure.get("message")), failure.text or ""


def _predict(capsys: pytest.CaptureFixture[str], tmp_path: Path, installed: Path,
             new: Path) -> tuple[str, str]:
    """stdout of ``predict --junit``, and the failure text of its case."""
    junit = tmp_path / "predict.xml"
    assert main(["predict", "--installed-itl", str(installed), "--now", str(NOW), "--junit", str(junit),
                 str(new)]) == 1
    out = capsys.readouterr().out
    message, body = _failure(junit)
    assert message.startswith(f"locked out ({RULE})"), message
    return out, body


def test_the_junit_case_says_the_terminal_s_legend(moved: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out, body = _predict(capsys, tmp_path, moved / "a-ITLFile.tlv", moved / "b" / "tftp")
    assert legend_of(out) == [
        "OLD: the lab folder of the cluster the phones left (not known to predict: the --installed-* files "
        "are not in another lab's served folder)",
        "FLASH: the phone's flash folder, as boot --flash keeps it (not known to predict: no --flash names "
        "an emulated phone's; the phone is predicted from files)"], out
    assert legend_of(body) == legend_of(out), body
    lines = body.splitlines()
    assert lines[-2:] == legend_of(out), lines  # once, under the ways out, in the same words


def test_the_junit_case_fills_old_as_the_terminal_does(moved: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out, body = _predict(capsys, tmp_path, moved / "a" / "tftp" / "ITLFile.tlv", moved / "b" / "tftp")
    rollback = f"phoneemu lab rollback {moved / 'a'} on"
    assert rollback in out and rollback in body, body
    assert [line.split(":")[0] for line in legend_of(body)] == ["FLASH"], body


def test_a_fleet_case_says_its_own_flash_or_that_it_has_none() -> None:
    """A --fleet-flash phone's case fills FLASH (nothing to say); a --models phone has no emulated flash:
    its legend says so, as the fleet text says of FLEET."""
    deciding = {"rule": RULE, "kind": "ITL", "reason_code": None, "reason": "unknown signer",
                "file": "ITLFile.tlv"}
    flashed = _junit_case(MAC, "locked out", deciding, {"flash": "/srv/fleet/" + MAC})
    assert flashed.failure is not None
    assert [line.split(":")[0] for line in legend_of(flashed.failure[1])] == ["DIR", "OLD"], flashed.failure
    listed = _junit_case(MAC, "locked out", deciding, {"listed": MAC})
    assert listed.failure is not None
    assert legend_of(listed.failure[1])[-1] == (
        "FLASH: the phone's flash folder, as boot --flash keeps it (--models lists real phones, with no "
        "emulated flash: --fleet-flash predicts emulated ones)"), listed.failure
    accepted = _junit_case(MAC, "accepted", None, {"notes": []})
    assert accepted.failure is None
