"""A ``--seed-dir`` file or a ``--replay`` input that cannot be read is a usage error naming it
(phoneemu.fuzz.corpus ``with_seed_files``, phoneemu.commands.fuzz); was: ``phoneemu fuzz: Input/output
error`` when the read itself failed (a read() error names no file). ``/proc/self/mem`` read at offset 0 is
such a file (EIO), for any user."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from phoneemu.cli import main

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/mem"), reason="needs /proc/self/mem (Linux)")


def test_a_seed_file_whose_read_fails_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "a.tlv").write_bytes(b"\x01\x02\x03")
    (seeds / "b.tlv").symlink_to("/proc/self/mem")
    out = tmp_path / "fz"
    assert main(["fuzz", "--format", "itl", "--target", "phoneemu", "--seed-dir", str(seeds), "--runs", "1",
                 "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{seeds / 'b.tlv'}: cannot read it: " in err, err
    assert not out.exists()


def test_a_replay_input_whose_read_fails_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    link = tmp_path / "minimized.bin"
    link.symlink_to("/proc/self/mem")
    assert main(["fuzz", "--format", "itl", "--target", "phoneemu", "--replay", str(link)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--replay {link}: cannot read it: " in err, err
