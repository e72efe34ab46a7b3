"""Requests without data are bounded by ``--max-memory`` too: a capture of read requests that never got an
answer kept a record per request and a report per boot for ``--mac`` (100,000 of them: 366 MB), none counted.
Now the records count against half the budget (``RECORD_COST`` each: beyond, the phone is not replayed, with
a warning naming the capture offset and ``--max-memory``; ``--list`` lists no more than fit), and the boots
are replayed one at a time, no result kept (``--mac`` and ``--all`` print the same)."""

from __future__ import annotations

import asyncio
import gc
import json
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.net.capture import PcapWriter
from phoneemu.scenario import replay
from phoneemu.scenario.replay import Limits, ReplayResult, replay_phone
from phoneemu.scenario.replay_fleet import replay_fleet, scan_fleet
from phoneemu.scenario.replay_tvs import scan_capture
from tests.helpers import without_durations

MAC = "0A0000000001"
MIB = 1 << 20
NAMES = [f"CTLSEP{MAC}.tlv", f"ITLSEP{MAC}.tlv", f"SEP{MAC}.cnf.xml"]  # a boot each three requests


def _requests(path: Path, n: int) -> Path:
    """``n`` TFTP read requests of the phone's names that never get an answer, each from its own port."""
    with PcapWriter(path) as w:
        for i in range(n):
            name = NAMES[i % 3].encode()
            w.udp(("10.0.0.2", 1024 + i), ("10.0.0.1", 69), b"\x00\x01" + name + b"\0octet\0",
                  ts=1_780_000_000.0 + i / 1000)
    return path


def test_the_phones_records_stay_within_half_the_budget(tmp_path: Path) -> None:
    """1,500 requests, a budget of 1 MiB: at most 512 KiB of records kept (``RECORD_COST`` each), then the
    phone's records are let go (it is not replayed) and the later requests only counted."""
    allowance = replay.record_allowance(MIB)
    assert allowance == MIB // 2
    most = allowance // replay.RECORD_COST
    capture = _requests(tmp_path / "requests.pcap", 3 * most)
    scan = scan_capture(capture, mac=MAC, limits=Limits(max_memory=MIB))
    assert len(scan.index.downloads) == 0  # what was kept for it, let go
    assert scan.index.not_kept == {MAC: 3 * most}
    assert MAC in scan.index.macs()
    why = scan.index.not_replayed(MAC)
    assert why is not None and "raise --max-memory" in why
    warned = [w for w in scan.warnings if "is not replayed" in w]
    assert len(warned) == 1
    assert f"phone {MAC}'s {most} requests" in warned[0] and "capture offset " in warned[0]
    assert f"more than {allowance} bytes (half the overall budget)" in warned[0]
    with pytest.raises(replay.PhoneEmuError, match="raise --max-memory"):
        asyncio.run(replay_phone(scan.index, MAC))


def test_a_sink_keeps_no_more_records_than_its_allowance() -> None:
    """Counted objects: the phone sink's records (its downloads, their ranks) never exceed the allowance."""
    sink = replay._PhoneSink(MAC)
    warnings: list[str] = []
    sink.bind(MIB, warnings.append, lambda: 24)
    most = replay.record_allowance(MIB) // replay.RECORD_COST
    for i in range(2 * most):
        name, client, server = NAMES[i % 3], ("10.0.0.2", 1024 + i), ("10.0.0.1", 69)
        sink.request(name, client, server, float(i), i)
        sink.add(replay.Download(name=name, protocol="tftp", client=client, server=server, start=float(i),
                                 end=float(i), outcome="no-reply", detail="no answer", order=i))
        assert len(sink.own) <= most and len(sink.starts) <= most
        assert sink.records <= sink.allowance
    assert not sink.own and not sink.starts and sink.not_kept == 2 * most
    assert len(warnings) == 1 and "capture offset 24" in warnings[0]


def test_the_cli_says_the_phone_is_not_replayed_and_why(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    capture = _requests(tmp_path / "requests.pcap", 1600)
    assert main(["replay", str(capture), "--mac", MAC, "--max-memory", "1"]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "replay: warning: " in err and "the phone is not replayed (raise --max-memory)" in err
    assert out.startswith(f"replay of phone {MAC} from ")
    assert "  not replayed: its downloads were not all kept: the records of its 1600 requests" in out
    assert "== boot" not in out
    assert main(["replay", str(capture), "--mac", MAC, "--max-memory", "1", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["boots"] == [] and "raise --max-memory" in doc["skipped"]


def test_list_lists_what_the_allowance_holds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    most = replay.record_allowance(MIB) // replay.RECORD_COST
    capture = _requests(tmp_path / "requests.pcap", most + 100)
    assert main(["replay", str(capture), "--list", "--max-memory", "1"]) == 0
    out, err = capsys.readouterr()
    assert f"... 100 more downloads not listed (at most {most} are)" in out
    assert "counted, not listed (raise --max-memory to list them)" in err and "capture offset " in err
    assert main(["replay", str(capture), "--list"]) == 0  # the default budget lists every one
    out, err = capsys.readouterr()
    assert "not listed" not in out + err


def _alive(refs: list[weakref.ref[ReplayResult]]) -> int:
    gc.collect()
    return sum(r() is not None for r in refs)


@pytest.fixture
def young_heap() -> Iterator[None]:
    """What exists before the test is frozen (``gc.freeze``) while it runs: :func:`_alive`'s collections
    (one per boot) walk only what the test made — the results and what holds them — not the whole worker's
    heap (~0.1 s a collection deep into the suite). A frozen object can only keep more alive: no result
    is reported gone that a full collection would keep."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def test_boots_are_replayed_one_at_a_time(tmp_path: Path, young_heap: None) -> None:
    """``each``: every result handed on as its boot is done; none of the earlier ones is still held."""
    capture = _requests(tmp_path / "requests.pcap", 60)
    index = scan_capture(capture, mac=MAC).index
    refs: list[weakref.ref[ReplayResult]] = []

    def each(r: ReplayResult) -> None:
        assert _alive(refs) == 0
        refs.append(weakref.ref(r))
    assert asyncio.run(replay_phone(index, MAC, each=each)) == []
    assert len(refs) == 20 and _alive(refs) == 0


def test_all_reduces_each_boot_as_it_is_done(tmp_path: Path, young_heap: None) -> None:
    capture = _requests(tmp_path / "requests.pcap", 60)
    fleet = scan_fleet(capture)
    refs: list[weakref.ref[ReplayResult]] = []

    def boot(r: ReplayResult) -> str:
        assert _alive(refs) == 0
        refs.append(weakref.ref(r))
        return r.report.config

    try:
        phones: list[Any] = asyncio.run(replay_fleet(fleet, reduce=lambda ph: ph, boot=boot))
    finally:
        fleet.close()
    assert len(phones) == 1 and len(phones[0].results) == 20 and _alive(refs) == 0
    assert all(isinstance(r, str) for r in phones[0].results)


def test_within_the_budget_nothing_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """30 requests fit a 1 MiB budget: the phone is replayed as with the default one, boot after boot."""
    capture = _requests(tmp_path / "requests.pcap", 30)
    for extra in ([], ["--json"]):
        assert main(["replay", str(capture), "--mac", MAC, *extra]) == 1  # no config: each boot fails
        default = capsys.readouterr()
        assert main(["replay", str(capture), "--mac", MAC, "--max-memory", "1", *extra]) == 1
        small = capsys.readouterr()
        if extra:
            assert len(json.loads(small.out)["boots"]) == 10
            assert without_durations(json.loads(default.out)) == without_durations(json.loads(small.out))
        else:
            assert default.out == small.out and default.out.count("== boot ") == 10
        assert "not replayed" not in small.out + small.err


def test_an_interrupted_json_replay_prints_no_half_document(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """--mac --json streams each boot to a temporary file, not to stdout: Ctrl-C after the first boots
    leaves stdout empty (a CI tool reads no broken JSON), and a whole run prints one document."""
    from phoneemu.commands import replay as replay_cmd

    capture = _requests(tmp_path / "requests.pcap", 30)
    real = replay_cmd._BootPrinter.boot

    def interrupted_at_third(self: Any, r: ReplayResult) -> None:
        if self.boots == 2:
            raise KeyboardInterrupt
        real(self, r)
    monkeypatch.setattr(replay_cmd._BootPrinter, "boot", interrupted_at_third)
    assert main(["replay", str(capture), "--mac", MAC, "--json"]) == 130
    out, err = capsys.readouterr()
    assert out == "" and "interrupted" in err
    monkeypatch.setattr(replay_cmd._BootPrinter, "boot", real)
    main(["replay", str(capture), "--mac", MAC, "--json"])
    assert len(json.loads(capsys.readouterr().out)["boots"]) == 10
