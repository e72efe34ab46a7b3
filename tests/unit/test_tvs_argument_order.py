"""``phoneemu tvs FILE HOST``, the two in the wrong order: said as such, with the order to write (was:
``127.0.0.1: No such file or directory``, the server read as the file). Nothing is asked: no socket."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from tests.signer_helpers import signer_pem


def test_file_before_the_server_is_said_with_the_order_to_write(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    cert = signer_pem(tmp_path, "CN=ITLRECOVERY_order", seed="tvs-argument-order", serial=3)

    assert main(["tvs", str(cert), "127.0.0.1:2445"]) == 2

    err = capsys.readouterr().err
    assert "No such file" not in err
    assert "the servers come first, the certificate or signed file last" in err
    assert f"(phoneemu tvs 127.0.0.1:2445 {cert})" in err
    assert len(err.strip().splitlines()) == 1


def test_a_missing_file_after_the_server_is_still_no_such_file(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tvs", "127.0.0.1", str(tmp_path / "nofile.tlv")]) == 2

    err = capsys.readouterr().err
    assert "nofile.tlv" in err and "No such file" in err
    assert "come first" not in err


def test_a_server_argument_too_long_for_a_file_name_is_no_order_mistake(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing file and a server argument longer than a file name may be (ENAMETOOLONG): not taken for a
    file; the missing file is what is said."""
    missing = tmp_path / "nothing.tlv"
    status = main(["tvs", "h" * 300 + ":2445", str(missing)])
    assert status == 2
    err = capsys.readouterr().err
    assert "nothing.tlv" in err and "come first" not in err, err


def test_the_command_line_said_is_quoted_to_run_as_shown(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A file whose path holds a space: the line said quotes it, so it runs as shown (review)."""
    folder = tmp_path / "my lists"
    folder.mkdir()
    itl = folder / "ITLFile.tlv"
    itl.write_bytes(b"\x01")
    assert main(["tvs", str(itl), "127.0.0.1"]) == 2
    err = capsys.readouterr().err
    assert f"(phoneemu tvs 127.0.0.1 '{itl}')" in err, err
