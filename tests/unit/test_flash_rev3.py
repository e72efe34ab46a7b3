"""Review of the flash's lock and temporary-file cleaning (eb2c3a0, :mod:`phoneemu.phone.flash` rules).

* A load tried to unlink each of the flash's 15 own temporary names, there or not: every boot of a fleet
  loads its flash, and a load's time doubled (about 80 -> 160 us of CPU). It removes those the folder's
  listing holds now.
* A folder whose filesystem takes no ``flock`` (a Lustre mount without ``-o flock``: ENOSYS) could not be
  loaded, saved, erased or shown any more: the OSError left the load. It is used unlocked, as before.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

import pytest

from phoneemu.phone.flash import Flash
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import TrustStore

P = get_profile("cp-7942-symmetric")


def _saved(tmp_path: Path) -> Path:
    d = tmp_path / "ph"
    store = TrustStore(profile=P)
    store.set_symmetric_key(bytes(range(1, 17)))
    Flash(d, profile=P, durable=False).save(store)
    return d


def test_a_load_of_a_clean_flash_unlinks_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No leftover: no unlink at all (was 15, one a name the flash could have left); a leftover: that one."""
    d = _saved(tmp_path)
    unlinked: list[str] = []
    real_unlink = os.unlink

    def unlink(path: str | os.PathLike[str], *args: object, **kwargs: object) -> None:
        unlinked.append(os.fspath(path))
        real_unlink(path)

    monkeypatch.setattr(os, "unlink", unlink)
    assert Flash(d, profile=P, durable=False).load().symmetric_key == bytes(range(1, 17))
    assert unlinked == []
    (d / ".ITLFile.tlv.tmp").write_bytes(b"half")
    Flash(d, profile=P, durable=False).load()
    assert [Path(p).name for p in unlinked] == [".ITLFile.tlv.tmp"]
    assert not (d / ".ITLFile.tlv.tmp").exists()


@pytest.mark.parametrize("code", [errno.ENOSYS, errno.ENOLCK, errno.EOPNOTSUPP])
def test_a_folder_whose_filesystem_takes_no_flock_is_used_unlocked(tmp_path: Path, code: int,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Load, save, the read-only views, erase: as before the lock (was: ``OSError: [Errno 38] Function not
    implemented`` out of each)."""
    d = _saved(tmp_path)

    def no_flock(fd: int, operation: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(fcntl, "flock", no_flock)
    fl = Flash(d, profile=P, durable=False)
    store = fl.load()
    assert store.symmetric_key == bytes(range(1, 17)) and fl.problems == []
    store.set_symmetric_key(bytes(range(2, 18)))
    fl.save(store)
    assert fl.held_keys()[2] == bytes(range(2, 18))
    assert fl.held_files() == {"itl": None, "ctl": None, "config": None}
    assert fl.last_boot() is None
    fl.erase_trust_lists()
    assert Flash(d, profile=P, durable=False).load().symmetric_key == bytes(range(2, 18))
