"""Review fixes (lab):

* ``lab serve`` starting while ``boot``'s "a lab serve runs" hint holds ``DIR/.serve.lock`` shared for a
  moment (:func:`phoneemu.commands._cluster_address.lab_served_now`, done when a killed lab serve left its
  note) waits for it (:func:`phoneemu.lab.lock.serving`); was refused, naming the dead server's note. The
  hint's moment is made here by holding the lock shared, let go at the server's first wait (no timing).
* ``lab phone add --symmetric-key`` without ``--encrypt``: the key is checked as with ``--encrypt
  symmetric`` (spec §C.5); was stored unchecked, then ``lab encryption ... on --mode symmetric`` (the note's
  advice) refused it naming ``--symmetric-key HEX``, which that command had not been given.
* The "takes a FILE" usage hint of an option given no value covers ``FILE.png``, ``FILE.pcap`` and ``DIR``
  (was ``FILE`` alone: ``fleet boot --plot`` got only argparse's "expected one argument")."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from phoneemu.cli import main
from phoneemu.commands._cluster_address import lab_served_now
from phoneemu.lab import lock
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.lock import SERVE_LOCK_FILE, LabServedError, serving
from tests import parser_helpers
from tests.parser_helpers import usage_error_line as _usage_error
from tests.unit.test_lab_manual_key_checks import KEY, ZERO

one_parser = parser_helpers.one_parser()

STALE = "pid 999999, tftp 127.0.0.1:16969, http 127.0.0.1:16970"  # a lab serve killed -9 left it
MAC = "0011223344D1"


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    LabCluster.init(tmp_path / "lab", seed=6, key_spec="rsa1024")
    return tmp_path / "lab"


class _FakeTime:
    """``time`` as :mod:`phoneemu.lab.lock` sees it: a clock moved only by its sleeps, each one told to
    ``on_sleep`` (no real waiting)."""

    def __init__(self, on_sleep: object = None) -> None:
        self.now = 0.0
        self.sleeps = 0
        self.on_sleep = on_sleep

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds
        if callable(self.on_sleep):
            self.on_sleep()


def _hold_shared(root: Path) -> int:
    """The hint's hold: ``DIR/.serve.lock`` shared, on a description of its own (as another process's)."""
    fd = os.open(root / SERVE_LOCK_FILE, os.O_RDONLY | os.O_CLOEXEC)
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    return fd


def _stale_note(root: Path) -> None:
    (root / SERVE_LOCK_FILE).write_text(STALE)
    assert lab_served_now(root) is None  # the note of a lab serve gone: its lock is free


# ---------------------------------------------------------------- lab serve vs the hint's shared lock

def test_a_lab_serve_starting_while_the_hint_looks_waits_for_it(lab: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _stale_note(lab)
    reader = [_hold_shared(lab)]

    def hint_done() -> None:
        if reader:
            os.close(reader.pop())

    fake = _FakeTime(hint_done)
    monkeypatch.setattr(lock, "time", SimpleNamespace(monotonic=fake.monotonic, sleep=fake.sleep))
    with serving(lab) as note:  # was: LabServedError "already served by another ... (pid 999999, ...)"
        note("pid 1, tftp 127.0.0.1:6969")
        assert lab_served_now(lab) == "pid 1, tftp 127.0.0.1:6969"
    assert fake.sleeps == 1
    assert not reader


def test_a_reader_that_never_lets_go_is_waited_for_a_bounded_time(
        lab: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _stale_note(lab)
    fd = _hold_shared(lab)
    fake = _FakeTime()
    monkeypatch.setattr(lock, "time", SimpleNamespace(monotonic=fake.monotonic, sleep=fake.sleep))
    try:
        with pytest.raises(LabServedError), serving(lab):
            pass
    finally:
        os.close(fd)
    assert fake.now >= lock.SERVE_LOCK_WAIT_S
    assert fake.sleeps <= lock.SERVE_LOCK_WAIT_S / lock.SERVE_LOCK_POLL_S + 1


def test_a_lab_serve_running_is_still_refused_at_once(lab: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeTime()
    with serving(lab) as note:
        note("pid 4242, tftp 127.0.0.1:6969")
        monkeypatch.setattr(lock, "time", SimpleNamespace(monotonic=fake.monotonic, sleep=fake.sleep))
        with pytest.raises(LabServedError, match=r"already served by another .*pid 4242, tftp"), serving(lab):
            pass
    assert fake.sleeps == 0  # an exclusive holder: no waiting


# ---------------------------------------------------------------- --symmetric-key checked, used or not

def _add(lab: Path, *extra: str) -> int:
    return main(["lab", "phone", "add", str(lab), "--mac", MAC, *extra])


@pytest.mark.parametrize(("model", "key", "said"), [
    ("7942", ZERO, "an all-zero key clears a phone's manual config key (spec §C.5)"),
    ("8861", ZERO, "an all-zero key clears a phone's manual config key (spec §C.5)"),
    ("7942", "ab" * 32, "(model 7942): 256-bit key; cp-7942-symmetric takes 128-bit keys (spec §C.5)"),
])
def test_a_key_given_without_encrypt_is_checked_as_with_it(lab: Path, model: str, key: str, said: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert _add(lab, "--model", model, "--encrypt", "symmetric", "--symmetric-key", key) == 2
    with_encrypt = capsys.readouterr().err
    assert said in with_encrypt, with_encrypt
    assert _add(lab, "--model", model, "--symmetric-key", key) == 2  # was 0: stored, and a note
    assert capsys.readouterr().err == with_encrypt
    assert MAC not in LabCluster.open(lab).state.phones


def test_a_bad_key_for_a_phone_there_leaves_its_key(lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _add(lab, "--model", "7942", "--symmetric-key", KEY) == 0
    assert "stored, not used" in capsys.readouterr().err
    assert _add(lab, "--symmetric-key", ZERO) == 2
    assert "--symmetric-key HEX" in capsys.readouterr().err
    assert LabCluster.open(lab).state.phones[MAC].symmetric_key == KEY
    # the note's advice then works: the stored key is the one encrypted with
    assert main(["lab", "encryption", str(lab), "--mac", MAC, "on", "--mode", "symmetric"]) == 0
    assert LabCluster.open(lab).state.phones[MAC].manual_key() == KEY


def test_a_model_without_a_manual_key_stores_a_good_key_with_the_note(
        lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A 256-bit key for a model phoneemu knows no manual key size of (8861: PKI config encryption) is
    stored, as before (the model's own warning comes with --encrypt symmetric)."""
    assert _add(lab, "--model", "8861", "--symmetric-key", "ab" * 32) == 0
    assert "stored, not used" in capsys.readouterr().err


# ---------------------------------------------------------------- the "takes a FILE" hint

@pytest.mark.parametrize(("argv", "said"), [
    (["fleet", "boot", "--plot"],
     "phoneemu fleet boot: error: argument --plot: expected one argument (--plot takes a FILE here: --plot "
     "FILE.png)"),
    (["fleet", "boot", "--capture"],
     "phoneemu fleet boot: error: argument --capture: expected one argument (--capture takes a FILE here: "
     "--capture FILE.pcap)"),
    (["boot", "--capture"],
     "phoneemu boot: error: argument --capture: expected one argument (--capture takes a FILE here: "
     "--capture FILE.pcap)"),
    (["run", "x.yaml", "--capture"],  # a folder here, a file for boot
     "phoneemu run: error: argument --capture: expected one argument (--capture takes a DIR here: --capture "
     "DIR)"),
    (["boot", "--lab"],
     "phoneemu boot: error: argument --lab: expected one argument (--lab takes a DIR here: --lab DIR)"),
    (["boot", "--keylog"],  # as before
     "phoneemu boot: error: argument --keylog: expected one argument (--keylog takes a FILE here: --keylog "
     "FILE)"),
])
def test_a_file_or_folder_option_given_no_value_says_what_it_takes(
        argv: list[str], said: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _usage_error(capsys, argv) == said


@pytest.mark.parametrize(("argv", "said"), [
    (["boot", "--tftp"], "phoneemu boot: error: argument --tftp: expected one argument"),  # HOST[:PORT]
    (["boot", "--register", "--sips-port"],
     "phoneemu boot: error: argument --sips-port: expected one argument"),
    (["phone", "show", "--cluster"], "phoneemu phone show: error: argument --cluster: expected one argument"),
])
def test_an_option_taking_no_file_or_folder_gets_no_hint(argv: list[str], said: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert _usage_error(capsys, argv) == said
