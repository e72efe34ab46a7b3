"""The flash's lock (:mod:`phoneemu.phone.flash` rules) around ``phone.json``, and in a fleet's event loop.

* ``phone.json`` (the phone's MAC and model) was written after the flash's locked save, outside the lock:
  a second ``boot --flash`` of the same new folder loading meanwhile removed its temporary file as a
  crash's leftover, and the first boot failed (FileNotFoundError). It is now written by the locked save.
* A fleet's phones share one event loop, where a flash held by another process was waited for with
  ``time.sleep`` for up to ``LOCK_WAIT`` (10 s) — every phone of the shard stalled, then the shard failed.
  A fleet's flash is now never waited for: that phone fails at once, its reason naming the folder, and
  the others boot on.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from phoneemu.fleet.engine import FleetSpec, mac_text, run_shard
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.phone import flash as flash_mod
from phoneemu.phone.boot import BootTarget
from phoneemu.phone.flash import Flash, FlashInUseError
from phoneemu.phone.phone import Phone, read_phone_file
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import TrustStore

NOW = 1_780_000_000
P = get_profile("cp-8861")
MAC = "001122334455"
HOST = "127.0.0.1"
START = 0x0A0000000D00


@contextlib.contextmanager
def _held(folder: Path) -> Iterator[None]:
    """``folder``'s flock held as another process's load or save holds it (an open file of its own)."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _counted_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The flash module's waits for a lock, counted (still slept, briefly: ``LOCK_WAIT`` 0.05 s)."""
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(flash_mod, "LOCK_WAIT", 0.05)
    monkeypatch.setattr(flash_mod, "time", SimpleNamespace(sleep=sleep))
    return slept


def test_a_first_boots_phone_json_is_written_inside_the_lock(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A second ``boot --flash`` of the same new folder loads it just as the first puts ``phone.json`` in
    place: the load waits for the lock (here: 0.05 s, then "flash in use"), the first boot's file is
    written. Was: the load ran (phone.json was written after the lock's release), removed
    ``.phone.json.tmp`` as a crash's leftover, and the first boot failed (FileNotFoundError)."""
    monkeypatch.setattr(flash_mod, "LOCK_WAIT", 0.05)
    d = tmp_path / "new-flash"
    real_replace = os.replace
    seen: list[str] = []

    def replace(src: Any, dst: Any, **kw: Any) -> None:
        if Path(dst).name == "phone.json" and not seen:  # its temporary file written, about to be renamed
            try:
                Flash(d, profile=P).load()  # the other boot's load
                seen.append("loaded")
            except OSError as exc:
                seen.append(str(exc))
        real_replace(src, dst, **kw)

    monkeypatch.setattr(os, "replace", replace)
    Phone(mac=MAC, profile=P, flash=Flash(d, profile=P), clock=lambda: NOW)  # its first save
    monkeypatch.undo()
    assert len(seen) == 1 and seen[0].startswith(f"{d}: flash in use: "), seen
    assert read_phone_file(d) == {"mac": MAC, "profile": P.name}
    assert not [p.name for p in d.iterdir() if p.name.endswith(".tmp")]


def test_a_save_writes_the_identity_once_and_atomically(tmp_path: Path) -> None:
    """``Flash.save(store, identity=...)`` writes ``phone.json`` (0644) beside the store's files; an
    unchanged identity is not rewritten (the same file, not a new one renamed onto it)."""
    d = tmp_path / "f"
    fl = Flash(d, profile=P)
    ident = b'{"mac": "001122334455", "profile": "cp-8861"}'
    fl.save(TrustStore(profile=P), identity=ident)
    first = (d / "phone.json").stat()
    assert (d / "phone.json").read_bytes() == ident and stat.S_IMODE(first.st_mode) == 0o644
    fl.save(TrustStore(profile=P), identity=ident)
    assert (d / "phone.json").stat().st_ino == first.st_ino
    fl.save(TrustStore(profile=P))  # no identity given: phone.json left as it is
    assert (d / "phone.json").read_bytes() == ident


def test_a_flash_that_does_not_wait_fails_at_once_naming_its_folder(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``lock_wait=0`` (a fleet's flashes): one try, no sleep; a FlashInUseError (an OSError) naming the
    folder first. The default still waits (its sleeps counted) before saying the same."""
    slept = _counted_sleeps(monkeypatch)
    d = tmp_path / "f"
    with _held(d):
        with pytest.raises(FlashInUseError) as info:
            Flash(d, profile=P, lock_wait=0).load()
        assert slept == []
        assert str(info.value).startswith(f"{d}: flash in use: another process is loading or saving it")
        assert info.value.filename == str(d) and isinstance(info.value, OSError)
        with pytest.raises(FlashInUseError, match=r"for 0\.05 s"):
            Flash(d, profile=P).load()
        assert slept  # the default waited
    Flash(d, profile=P, lock_wait=0).load()  # released: taken at once


def test_a_fleet_does_not_wait_for_a_held_flash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fleet of three over one lab, each phone with its flash (``fleet boot --flash``): the first phone's
    flash is held by another process from the start, the second's from the storm's start (after the
    phones were made). The third boots; neither held one is waited for past ``FLEET_LOCK_WAIT``;
    the first is not booted and the second's boot fails, each reason naming its folder. Was: the shard
    slept ``LOCK_WAIT`` in its loop for the first phone, then failed whole (OSError)."""
    slept = _counted_sleeps(monkeypatch)
    macs = [mac_text(START + i) for i in range(3)]
    lab = LabCluster.init(tmp_path / "lab", seed=5, key_spec="rsa1024", now=NOW, host=HOST)
    for mac in macs:
        lab.add_phone(mac, now=NOW)
    fleet = tmp_path / "fleet"
    first, second = fleet / macs[0], fleet / macs[1]
    held = contextlib.ExitStack()

    def storm_starts() -> None:
        """(run_shard's ``ready``: the phones are made, none boots yet) the second's flash taken."""
        held.enter_context(_held(second))

    async def body() -> Any:
        async with LabServers(lab, host=HOST) as srv:
            target = BootTarget(host=HOST, tftp_port=srv.ports["tftp"], use_http=False)
            spec = FleetSpec(target=target, count=3, mac_start=START, flash_dir=str(fleet), keep_records=True,
                             fetch_timeout=1.0, clock_offset_s=NOW - int(time.time()))
            return await run_shard(spec, range(START, START + 3), ready=storm_starts)

    with held, _held(first):
        result = asyncio.run(asyncio.wait_for(body(), 60))
    records = {r.mac: r for r in result.records}
    assert sum(slept) < 1.0, slept  # FLEET_LOCK_WAIT a try (was LOCK_WAIT, 10 s, then the shard failed)
    assert records[macs[2]].outcome == "ok", records[macs[2]]
    assert records[macs[0]].outcome == "error" and records[macs[0]].rule == "not-booted"
    assert records[macs[0]].reason.startswith(f"flash: {first}: flash in use: "), records[macs[0]].reason
    assert records[macs[1]].outcome == "error"
    assert f"{second}: flash in use: " in records[macs[1]].reason, records[macs[1]].reason


def test_a_fleet_waits_out_a_readers_brief_hold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader (``phone show --fleet-flash`` during a storm) holds a fleet phone's flash for 10 ms: the phone
    waits it out (``FLEET_LOCK_WAIT``, 1 s here: the reader's timer thread may be late on a loaded machine)
    and boots. Was: a fleet flash waited not at all, and that boot failed with "flash in use" (review)."""
    from phoneemu.fleet import engine as engine_mod

    monkeypatch.setattr(engine_mod, "FLEET_LOCK_WAIT", 1.0)
    import threading

    mac = mac_text(START + 7)
    lab = LabCluster.init(tmp_path / "lab", seed=5, key_spec="rsa1024", now=NOW, host=HOST)
    lab.add_phone(mac, now=NOW)
    fleet = tmp_path / "fleet"
    folder = fleet / mac
    reader = contextlib.ExitStack()

    def storm_starts() -> None:
        """The reader takes the flash as the storm starts and lets go 10 ms later."""
        reader.enter_context(_held(folder))
        threading.Timer(0.01, reader.close).start()

    async def body() -> Any:
        async with LabServers(lab, host=HOST) as srv:
            target = BootTarget(host=HOST, tftp_port=srv.ports["tftp"], use_http=False)
            spec = FleetSpec(target=target, count=1, mac_start=START + 7, flash_dir=str(fleet),
                             keep_records=True, fetch_timeout=1.0, clock_offset_s=NOW - int(time.time()))
            return await run_shard(spec, range(START + 7, START + 8), ready=storm_starts)

    result = asyncio.run(asyncio.wait_for(body(), 60))
    reader.close()
    (record,) = result.records
    assert record.outcome == "ok", record
