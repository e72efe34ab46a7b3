"""User-named outputs reached through symbolic links (:func:`phoneemu.files.output_target`), found by review:

* ``--json /dev/stdout > out.json``: the report goes through the shell's own descriptor, at its offset
  (was: the file opened again through ``/proc``, with an offset of its own: what the command printed
  after the report was written over it, the JSON broken);
* a link into ``/proc`` reached by a relative path is one too (was: its target, the shell's file,
  replaced by a new one);
* a loop of links is refused as the kernel refuses it (was: the link replaced by a regular file, the
  check saying yes);
* another user's link in a folder writable by all (``/tmp``) is not followed, as the kernel's
  ``protected_symlinks`` does not (was: read with ``readlink``, its target replaced by the report);
* a descriptor of ours open for reading only (``--json /dev/stdin``) is refused before the work.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu import files
from phoneemu.errors import PhoneEmuError
from phoneemu.net.capture import PcapWriter

PACKET = b"\x00\x01x\x00octet\x00"


@pytest.fixture
def shell_stdout(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A file opened as the shell opens ``> out.json`` (no O_APPEND), its descriptor and the file."""
    out = tmp_path / "out.json"
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        yield fd, out
    finally:
        os.close(fd)


def _stdout_link(tmp_path: Path, fd: int) -> Path:
    link = tmp_path / "stdout"  # a stand-in for /dev/stdout
    link.symlink_to(f"/proc/self/fd/{fd}")
    return link


def test_a_report_to_dev_stdout_is_not_written_over_by_what_is_printed_after(
        tmp_path: Path, shell_stdout: tuple[int, Path]) -> None:
    fd, out = shell_stdout
    link = _stdout_link(tmp_path, fd)
    os.write(fd, b"summary\n")
    files.check_writable(link, "--json")
    files.write_output(link, b'{"a": 1}\n')
    os.write(fd, b"printed between\n")
    files.write_output_text(link, ['{"b": ', "2}\n"])
    os.write(fd, b"printed after\n")
    assert out.read_bytes() == b'summary\n{"a": 1}\nprinted between\n{"b": 2}\nprinted after\n'
    assert link.is_symlink()


def test_a_capture_to_dev_stdout_is_not_written_over_by_what_is_printed_after(
        tmp_path: Path, shell_stdout: tuple[int, Path]) -> None:
    fd, out = shell_stdout
    link = _stdout_link(tmp_path, fd)
    capture = PcapWriter(link)
    capture.udp(("127.0.0.1", 5000), ("127.0.0.1", 69), PACKET, ts=1.0)
    capture.close()
    os.write(fd, b"printed after")
    data = out.read_bytes()
    assert data.endswith(PACKET + b"printed after") and data[:4] == b"\xd4\xc3\xb2\xa1"


def test_a_relative_link_into_proc_is_written_in_place(tmp_path: Path,
                                                       shell_stdout: tuple[int, Path]) -> None:
    fd, out = shell_stdout
    os.write(fd, b"held\n")
    inode = out.stat().st_ino
    link = tmp_path / "rel"
    link.symlink_to(os.path.relpath(f"/proc/self/fd/{fd}", tmp_path))  # ../../../proc/self/fd/N
    files.write_output(link, b"report\n")
    assert out.read_bytes() == b"held\nreport\n" and out.stat().st_ino == inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json", "rel"]


def test_a_loop_of_links_is_refused_and_kept(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.symlink_to("b.json")
    b.symlink_to("a.json")
    with pytest.raises(PhoneEmuError, match=r"--json .*a\.json: not writable \(Too many levels"):
        files.check_writable(a, "--json")
    with pytest.raises(OSError) as caught:
        files.write_output(a, b"report")
    assert caught.value.errno == errno.ELOOP and caught.value.filename == str(a)
    assert a.is_symlink() and b.is_symlink() and os.readlink(a) == "b.json"


def _link_of_another_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: Path) -> Path:
    """A link to ``target`` in a sticky folder writable by all, owned by neither us nor the folder's owner:
    as root, a sticky folder of ours and the link given to nobody; else /tmp (root's) and our uid hidden."""
    if os.geteuid() == 0:
        folder = tmp_path / "shared"
        folder.mkdir()
        folder.chmod(0o1777)
        link = folder / "report.json"
        link.symlink_to(target)
        os.lchown(link, 65534, 65534)
        return link
    folder = Path("/tmp")
    mode = folder.stat()
    if not (mode.st_mode & stat.S_ISVTX and mode.st_mode & stat.S_IWOTH) or mode.st_uid == os.geteuid():
        pytest.skip("needs root, or /tmp sticky and someone else's")
    link = folder / f"phoneemu-test-{os.getpid()}-{tmp_path.name}.json"
    link.symlink_to(target)
    monkeypatch.setattr(os, "geteuid", lambda: os.lstat(link).st_uid + 1)
    return link


def test_another_users_link_in_tmp_is_not_followed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    victim = tmp_path / "bashrc"
    victim.write_bytes(b"mine")
    link = _link_of_another_user(tmp_path, monkeypatch, victim)
    try:
        with pytest.raises(PhoneEmuError, match=r"not writable .*symbolic link of another user's"):
            files.check_writable(link, "--json")
        with pytest.raises(PermissionError, match="not followed"):
            files.write_output(link, b"report")
        with pytest.raises(PermissionError):
            files.write_output_text(link, ["report"])
        assert victim.read_bytes() == b"mine" and link.is_symlink()
    finally:
        monkeypatch.undo()
        link.unlink()


def test_our_own_link_in_a_sticky_folder_is_followed(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    folder.chmod(0o1777)
    (tmp_path / "7.json").write_bytes(b"old")
    link = folder / "latest.json"
    link.symlink_to(tmp_path / "7.json")
    files.check_writable(link, "--json")
    files.write_output(link, b"new")
    assert (tmp_path / "7.json").read_bytes() == b"new" and link.is_symlink()


def test_a_descriptor_open_for_reading_only_is_refused_before_the_work(tmp_path: Path) -> None:
    models = tmp_path / "site.csv"
    models.write_bytes(b"mac,model\n")
    fd = os.open(models, os.O_RDONLY)  # as the shell's < site.csv: --json /dev/stdin
    try:
        link = _stdout_link(tmp_path, fd)
        with pytest.raises(PhoneEmuError, match=f"not writable \\(descriptor {fd} is not open for writing"):
            files.check_writable(link, "--json")
    finally:
        os.close(fd)
    assert models.read_bytes() == b"mac,model\n"
