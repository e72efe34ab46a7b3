"""phoneemu.tempdirs: a Ctrl-C (a SIGTERM: term_as_ctrl_c) while a temporary folder is made leaves no
folder. It left one when it came after ``mkdtemp`` and before the maker's clean-up held the path: while
the owner file was written (then never swept: no owner file), or as the folder was handed back."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu import tempdirs
from phoneemu.tempdirs import make_owned_tempdir, owned_tempdir
from tests.signal_rules import signals_as_commands_set_them


@pytest.fixture
def python_ctrl_c() -> Iterator[None]:
    """SIGINT as Python sets it (KeyboardInterrupt) and SIGTERM as every command has it; both given back."""
    with signals_as_commands_set_them():
        yield


@pytest.fixture
def tmpdir_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system's temporary folder for this test: ``tmp_path``."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # looked up again from TMPDIR
    return tmp_path


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_while_the_owner_file_is_written_no_folder_is_left(
        python_ctrl_c: None, tmpdir_in: Path, monkeypatch: pytest.MonkeyPatch, signum: int) -> None:
    identity = tempdirs._identity

    def signalled_then_identity(pid: int) -> str:
        signal.raise_signal(signum)
        return identity(pid)

    monkeypatch.setattr(tempdirs, "_identity", signalled_then_identity)
    with pytest.raises(KeyboardInterrupt):
        make_owned_tempdir(parent=tmpdir_in)
    assert list(tmpdir_in.iterdir()) == []


def test_an_owner_file_that_cannot_be_written_leaves_no_folder(tmpdir_in: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def no_identity(_pid: int) -> str:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempdirs, "_identity", no_identity)
    with pytest.raises(OSError, match="No space left"):
        make_owned_tempdir(parent=tmpdir_in)
    assert list(tmpdir_in.iterdir()) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_as_owned_tempdir_gets_its_folder_no_folder_is_left(
        python_ctrl_c: None, tmpdir_in: Path, monkeypatch: pytest.MonkeyPatch, signum: int) -> None:
    make = tempdirs.make_owned_tempdir
    made: list[str] = []

    def make_then_signal(prefix: str = tempdirs.PREFIX) -> str:
        made.append(make(prefix))
        signal.raise_signal(signum)  # the folder is whole, not yet the with block's
        return made[-1]

    monkeypatch.setattr(tempdirs, "make_owned_tempdir", make_then_signal)
    entered: list[str] = []
    with pytest.raises(KeyboardInterrupt), owned_tempdir() as path:
        entered.append(path)
    assert len(made) == 1 and entered == []  # stopped before the block, as a Ctrl-C there should
    assert list(tmpdir_in.iterdir()) == []


def test_a_folder_made_without_interruption_is_whole_and_kept(tmpdir_in: Path) -> None:
    path = Path(make_owned_tempdir(parent=tmpdir_in))
    assert path.parent == tmpdir_in and (path / tempdirs.OWNER_FILE).read_text().split()[0].isdigit()
    with owned_tempdir() as other:
        assert Path(other).parent == tmpdir_in and (Path(other) / tempdirs.OWNER_FILE).is_file()
    assert not Path(other).exists() and path.is_dir()
