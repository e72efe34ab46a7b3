"""The lab locks' order (``phoneemu.lab.lock.hold_lab_locks``) with a folder named by a symlink loop: a
folder that cannot be read, no lock taken there, and the operation says why as one line (exit 2). Was:
``Path.resolve``'s RuntimeError ("Symlink loop") from the lock order, a traceback and exit 1 from every
``lab`` operation naming such a path, ``exchange``'s OTHER_DIR included. And ``lab --help`` says the order
the locks are taken in as it is (the folders', whatever paths name them; was "the order of their paths")."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu import cli
from phoneemu.lab.lock import LOCK_FILE, hold_lab_locks


@pytest.fixture
def loop(tmp_path: Path) -> Path:
    """A symlink that points to itself."""
    link = tmp_path / "loop"
    link.symlink_to(link)
    return link


@pytest.mark.parametrize("argv", [["lab", "regenerate", "{loop}", "tvs"],
                                  ["lab", "exchange", "{other}", "{loop}"],
                                  ["lab", "exchange", "{loop}", "{other}"]],
                         ids=["operation", "exchange-other", "exchange-dir"])
def test_an_operation_on_a_symlink_loop_says_why(loop: Path, tmp_path: Path, argv: list[str],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other"
    other.mkdir()
    typed = [a.format(loop=loop, other=other) for a in argv]
    assert cli.main(typed) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"phoneemu lab {argv[1]}: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "RuntimeError" not in err
    assert not (other / LOCK_FILE).exists()  # not a lab: no lock file left there


def test_hold_lab_locks_takes_none_on_a_loop(loop: Path, tmp_path: Path) -> None:
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "cluster.json").write_text("{}")
    with hold_lab_locks([loop, lab, tmp_path / "lab" / ".." / "lab"]):
        assert (lab / LOCK_FILE).is_file()  # the lab's own lock, taken once


def test_lab_help_names_the_order_of_the_folders(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["lab", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "holds both locks, taken in the order of the folders, whatever paths name them" in out
