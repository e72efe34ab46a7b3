"""``predict --flash``: the legend under a locked-out phone's ways out says why OLD is left in the words of
the options given — its installed files are the flash's, no lab's served folder — in the terminal and in
the ``--junit`` case alike (was: "the --installed-* files are not in another lab's served folder", where
no --installed-* option was given); a ``--fleet-flash`` phone's case says the same of its flash."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.commands.predict import _junit_case
from phoneemu.lab.cluster import LabCluster
from tests.helpers import boot_offline_into, legend_of, moved_labs, run

NOW = 1_780_000_000
MAC = "0A00000000D7"
RULE = "G.3.5-reject-unknown-signer"


@pytest.fixture(scope="module")
def flashed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A phone's flash booted on lab ``a``; the served folder of lab ``b`` (an ITL a's does not know)."""
    where = moved_labs(tmp_path_factory.mktemp("moved"), mac=MAC, now=NOW, seeds=(33, 34))
    reports = run(boot_offline_into(where / "fleet", LabCluster.open(where / "a"), [MAC], now=NOW))
    assert all(r.ok for r in reports)
    return where / "fleet" / MAC, where / "b" / "tftp"


def _old_line(text: str) -> str:
    return next(line for line in legend_of(text) if line.startswith("OLD: "))


def test_a_flash_phone_s_legend_says_its_installed_files_are_the_flash_s(
        flashed: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flash, new = flashed
    junit = tmp_path / "predict.xml"
    assert main(["predict", "--flash", str(flash), "--now", str(NOW), "--junit", str(junit), str(new)]) == 1
    out = capsys.readouterr().out
    assert "locked out: yes" in out, out
    said = ("OLD: the lab folder of the cluster the phones left (not known to predict: the installed files "
            "are the phone's flash's (--flash), which is no lab's served folder)")
    assert _old_line(out) == said, out
    assert "--installed-*" not in out, out
    (failure,) = ET.parse(junit).iter("failure")
    assert _old_line(failure.text or "") == said, failure.text


def test_a_fleet_flash_phone_s_case_says_its_flash() -> None:
    deciding = {"rule": RULE, "kind": "ITL", "reason_code": None, "reason": "unknown signer",
                "file": "ITLFile.tlv"}
    case = _junit_case(MAC, "locked out", deciding, {"flash": "/srv/fleet/" + MAC},
                       flash_option="--fleet-flash")
    assert case.failure is not None
    assert "(--fleet-flash), which is no lab's served folder" in _old_line(case.failure[1]), case.failure
