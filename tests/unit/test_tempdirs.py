"""phoneemu.tempdirs: folders that name their maker; the sweep removes only those whose maker is gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from phoneemu.tempdirs import OWNER_FILE, make_owned_tempdir, owned_tempdir, sweep_abandoned

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc (Linux)")


def _made_by_a_process_that_ended(parent: Path) -> Path:
    code = ("from phoneemu.tempdirs import make_owned_tempdir; "
            f"print(make_owned_tempdir(parent={str(parent)!r}))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    return Path(out.stdout.strip())


def test_a_folder_whose_maker_ended_is_removed_and_a_live_makers_is_kept(tmp_path: Path) -> None:
    gone = _made_by_a_process_that_ended(tmp_path)
    mine = Path(make_owned_tempdir(parent=tmp_path))
    (gone / "lab").mkdir()
    (gone / "lab" / "cluster.json").write_text("{}")
    assert sweep_abandoned(tmp_path) == [gone]
    assert not gone.exists()
    assert mine.is_dir()


def test_a_reused_pid_does_not_keep_the_folder(tmp_path: Path) -> None:
    """The owner file names our pid with another start time: another process had that pid."""
    d = Path(make_owned_tempdir(parent=tmp_path))
    pid, start, ns = (d / OWNER_FILE).read_text().split()
    (d / OWNER_FILE).write_text(f"{pid} {int(start) + 1} {ns}\n")
    assert sweep_abandoned(tmp_path) == [d]


@pytest.mark.parametrize("owner", ["", "garbage", "12x 1 ns", "1 2", "999999999 1 pid:[1]"])
def test_an_owner_file_it_cannot_judge_keeps_the_folder(tmp_path: Path, owner: str) -> None:
    """Unreadable, or another pid namespace (another container's pid means nothing here)."""
    d = tmp_path / "phoneemu-x"
    d.mkdir()
    (d / OWNER_FILE).write_text(owner)
    assert sweep_abandoned(tmp_path) == []
    assert d.is_dir()


def test_folders_not_made_here_are_never_touched(tmp_path: Path) -> None:
    gone = _made_by_a_process_that_ended(tmp_path)
    other = tmp_path / "phoneemu-no-owner-file"
    other.mkdir()
    renamed = tmp_path / "someone-else"
    dead_owner = (gone / OWNER_FILE).read_text()
    renamed.mkdir()
    (renamed / OWNER_FILE).write_text(dead_owner)  # not a phoneemu-* name
    plain = tmp_path / "phoneemu-file"
    plain.write_text(dead_owner)
    link = tmp_path / "phoneemu-link"
    link.symlink_to(gone, target_is_directory=True)
    assert sweep_abandoned(tmp_path) == [gone]
    assert other.is_dir() and renamed.is_dir() and plain.is_file()


def test_owned_tempdir_is_removed_on_exit_and_missing_root_sweeps_nothing(tmp_path: Path) -> None:
    with owned_tempdir() as d:
        assert (Path(d) / OWNER_FILE).is_file()
    assert not Path(d).exists()
    assert sweep_abandoned(tmp_path / "missing") == []


@pytest.mark.parametrize("argv", [["boot", "--tftp", "127.0.0.1:9", "--mac", "not-a-mac"],
                                  ["run", "no-such-folder/"]])
def test_boot_and_run_sweep_when_they_start(tmp_path: Path, argv: list[str]) -> None:
    """Even a command that then fails on its arguments has removed the folders of dead makers."""
    gone = _made_by_a_process_that_ended(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "phoneemu", *argv], env=env, capture_output=True, timeout=60,
                          check=False)
    assert done.returncode == 2, done.stderr
    assert not gone.exists()
