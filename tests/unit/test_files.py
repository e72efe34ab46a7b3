"""read_at_most: user-named files are refused above their limit before being read in full."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType

import pytest

from phoneemu.cli import main
from phoneemu.errors import PhoneEmuError, SizeLimitError
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


# --------------------------------------------------------------------------- devices and FIFOs
class _FifoRescue:
    """A FIFO with no writer; if the code under test blocks opening it (the bug), a thread opens
    the write end after a few seconds so the test ends, and records that it had to."""

    def __init__(self, path: Path) -> None:
        import threading

        os.mkfifo(path)
        self.path = path
        self.rescued = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._rescue, daemon=True)

    def _rescue(self) -> None:
        if self._done.wait(5.0):
            return
        try:  # succeeds only while a reader is blocked in open()
            fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return
        self.rescued = True
        os.close(fd)

    def __enter__(self) -> _FifoRescue:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(10)


def _enc_sgn(tmp_path: Path, pki: ModuleType) -> Path:
    from phoneemu.formats import encrypted

    lab = pki.lab()
    phone = pki.identity("CN=SEP001122334455;O=phone", spec="rsa1024", seed="files-phone")
    f = tmp_path / "SEP001122334455.cnf.xml.enc.sgn"
    f.write_bytes(encrypted.build_pki(plaintext=b"<device/>", filename=f.name,
                                      signer=lab["callmanager"].signer, recipient_cert=phone.cert,
                                      timestamp=1, rand=os.urandom))
    return f


def _argv(kind: str, tmp_path: Path, pki: ModuleType, name: str) -> list[str]:
    if kind == "run":
        return ["run", "--list", name]
    enc = str(_enc_sgn(tmp_path, pki))
    return ["inspect", enc, "--cert", name] if kind == "cert" else ["inspect", enc, "--key", name]


@pytest.mark.parametrize("kind", ["run", "cert", "key"])
def test_dev_zero_is_refused_with_the_limit(tmp_path: Path, pki: ModuleType, kind: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """``run --list /dev/zero``, ``inspect --cert /dev/zero``, ``--key /dev/zero``: capped reads."""
    assert main(_argv(kind, tmp_path, pki, "/dev/zero")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/dev/zero" in err[0] and "limit" in err[0], err


@pytest.mark.parametrize("kind", ["run", "cert", "key"])
def test_a_fifo_without_writer_does_not_hang(tmp_path: Path, pki: ModuleType, kind: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    argv = _argv(kind, tmp_path, pki, str(tmp_path / "fifo"))
    with _FifoRescue(tmp_path / "fifo") as fifo:
        rc = main(argv)
    assert not fifo.rescued, "blocked opening the FIFO"
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "fifo" in err, err


def test_a_pipe_that_never_ends_times_out() -> None:
    r, w = os.pipe()
    try:
        with pytest.raises(PhoneEmuError, match=r"no end of file after 0\.2 s"):
            read_at_most(f"/dev/fd/{r}", 10, timeout=0.2)
        os.write(w, b"abc")
        os.close(w)
        w = -1
        assert read_at_most(f"/dev/fd/{r}", 10, timeout=5) == b"abc"
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)


def test_a_directory_is_still_oserror(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        read_at_most(tmp_path, 10)


# --------------------------------------------------------------------------- atomic writes
def test_atomic_write_onto_a_folder_leaves_no_temp_file(tmp_path: Path) -> None:
    from phoneemu.files import atomic_write

    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(IsADirectoryError) as info:
        atomic_write(target, b"secret key bytes", mode=0o600)
    assert info.value.filename == str(target) and "cannot write" in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and not any(target.iterdir())


def test_atomic_write_key_mode_ignores_the_umask(tmp_path: Path) -> None:
    from phoneemu.files import atomic_write

    old = os.umask(0)
    try:
        atomic_write(tmp_path / "k.pem", b"secret", mode=0o600, durable=True)
        atomic_write(tmp_path / "c.pem", b"public")
    finally:
        os.umask(old)
    assert (tmp_path / "k.pem").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "c.pem").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pem", "k.pem"]


def test_itlrecovery_export_onto_a_folder_is_a_clear_error(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """The exported file holds the ITLRecovery private key: a failed rename must not leave it behind."""
    lab = tmp_path / "lab"
    assert main(["lab", "init", str(lab), "--seed", "5", "--key", "rsa1024"]) == 0
    out = tmp_path / "export"
    out.mkdir()
    capsys.readouterr()
    assert main(["lab", "itlrecovery", str(lab), "export", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0] and "cannot write" in err[0] and ".tmp" not in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "lab"] and not any(out.iterdir())


def test_a_streamed_output_is_whole_or_absent(tmp_path: Path) -> None:
    """``streamed_output``: the pieces land whole when the block ends; a failure half-way leaves the old
    file as it was and no temporary file beside it."""
    from phoneemu.files import streamed_output, write_output_pieces

    out = tmp_path / "report.xml"
    write_output_pieces(out, [b"old ", b"report"])
    assert out.read_bytes() == b"old report"
    with pytest.raises(RuntimeError), streamed_output(out) as write:
        write(b"new ")
        raise RuntimeError("a case could not be made")
    assert out.read_bytes() == b"old report" and sorted(p.name for p in tmp_path.iterdir()) == ["report.xml"]
    with streamed_output(out) as write:
        for piece in (b"new ", b"report"):
            write(piece)
    assert out.read_bytes() == b"new report"


def test_a_private_file_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    """``private_file`` (TLS key logs): created 0600 under umask 022, emptied on request, an existing
    0644 one narrowed with its lines kept; a FIFO is left alone (never opened: it would wait)."""
    import stat

    from phoneemu.files import private_file

    old = os.umask(0o022)
    try:
        new = tmp_path / "new.keys"
        private_file(new, empty=True)
        assert stat.S_IMODE(new.stat().st_mode) == 0o600 and new.read_bytes() == b""
        given = tmp_path / "given.keys"
        given.write_text("CLIENT_RANDOM x y\n")
        given.chmod(0o644)
        private_file(given)
        assert stat.S_IMODE(given.stat().st_mode) == 0o600 and given.read_text() == "CLIENT_RANDOM x y\n"
        private_file(given, empty=True)
        assert given.read_bytes() == b""
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo, 0o644)
        private_file(fifo)  # returns at once
        assert stat.S_IMODE(fifo.stat().st_mode) == 0o644
    finally:
        os.umask(old)
