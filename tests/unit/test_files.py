"""read_at_most: user-named files are refused above their limit before being read in full."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.errors import SizeLimitError
from phoneemu.files import read_at_most


def test_within_and_at_the_limit(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"x" * 10)
    assert read_at_most(p, 10) == b"x" * 10
    assert read_at_most(p, 11) == b"x" * 10


def test_over_the_limit_names_file_and_sizes(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"x" * 11)
    with pytest.raises(SizeLimitError) as info:
        read_at_most(p, 10, what="PEM file")
    assert str(p) in str(info.value) and "11 bytes" in str(info.value) and "10" in str(info.value)


def test_missing_file_is_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_at_most(tmp_path / "nope", 10)


def _sparse(path: Path, size: int) -> Path:
    with open(path, "wb") as f:  # a hole: no disk used, but read() would return `size` zero bytes
        f.truncate(size)
    return path


def test_inspect_refuses_a_huge_file_without_reading_it(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    big = _sparse(tmp_path / "big.tlv", 8 << 30)  # 8 GiB: reading it would exhaust memory
    assert main(["inspect", str(big)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(8 << 30) in err[0] and "limit" in err[0]


def test_boot_refuses_a_huge_pem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = _sparse(tmp_path / "signer.pem", 8 << 30)
    rc = main(["boot", "--tftp", "127.0.0.1:9", "--mac", "001122334455", "--image-signer", str(big)])
    err = capsys.readouterr().err
    assert rc == 2 and str(big) in err and "limit" in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["run", "scenarios/tvs-outage.yaml", "--junit", "{tmp}"],
    ["run", "scenarios/tvs-outage.yaml", "--json", "{tmp}/no/such/folder/r.json"],
    ["fleet", "boot", "--count", "2", "--tftp", "127.0.0.1:9", "--json", "{tmp}"],
    ["fleet", "boot", "--count", "2", "--tftp", "127.0.0.1:9", "--plot", "{tmp}/missing/p.png"],
])
def test_unwritable_report_is_refused_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      argv: list[str]) -> None:
    """A report path that cannot be written fails at once (exit 2), not after the run."""
    args = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and ("is a folder" in err or "does not exist" in err)


def test_check_writable_accepts_a_new_file_in_the_current_folder(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from phoneemu.files import check_writable

    monkeypatch.chdir(tmp_path)
    check_writable(Path("report.json"), "--json")  # no parent part: the current folder
    check_writable(None, "--json")


def test_a_device_without_size_is_refused_too() -> None:
    with pytest.raises(SizeLimitError, match="holds more than the limit of 10 bytes"):
        read_at_most("/dev/zero", 10)
