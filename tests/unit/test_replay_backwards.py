"""Timestamps that go backwards (mergecap of several interfaces, a clock step): capture order is the
order — the same boots, windows, TVS answers and decisions as the clean capture, one warning."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneemu.net.tls_decrypt import read_keylog
from phoneemu.scenario.replay import ReplayResult, boots_of, index_capture, replay_phone
from phoneemu.scenario.replay_tvs import scan_capture
from tests.helpers import without_durations

CAPTURES = Path(__file__).resolve().parents[2] / "captures"


def restamp(src: Path, dst: Path, when: Callable[[int, float], float]) -> list[int]:
    """``src`` with record ``i``'s time ``when(i, ts)``, records in the same order; the file offsets
    of the records."""
    data = src.read_bytes()
    out, pos, i, offsets = bytearray(data[:24]), 24, 0, []
    while pos < len(data):
        sec, usec, incl, orig = struct.unpack_from("<IIII", data, pos)
        ts = when(i, sec + usec / 1e6)
        whole = int(ts)
        offsets.append(pos)
        usec = min(round((ts - whole) * 1e6), 999_999)
        out += struct.pack("<IIII", whole, usec, incl, orig) + data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        i += 1
    dst.write_bytes(bytes(out))
    return offsets


def decisions(results: list[ReplayResult]) -> Any:
    return without_durations([{k: v for k, v in r.as_dict().items() if k != "start"} for r in results])


def _count(path: Path) -> int:
    data, pos, n = path.read_bytes(), 24, 0
    while pos < len(data):
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
        n += 1
    return n


@pytest.mark.parametrize("capture", sorted(CAPTURES.glob("*.pcap")), ids=lambda p: p.stem)
@pytest.mark.parametrize("shape", ["step", "jitter"])
def test_timestamps_going_backwards_change_no_decision(tmp_path: Path, capture: Path, shape: str) -> None:
    """``step``: from the middle of the capture on, the clock is an hour behind (a clock step);
    ``jitter``: every other packet 50 ms behind (two interfaces merged)."""
    half = _count(capture) // 2
    stepped = tmp_path / "stepped.pcap"
    if shape == "step":
        offsets = restamp(capture, stepped, lambda i, ts: ts - 3600 if i >= half else ts)
        first_back = offsets[half]
    else:
        offsets = restamp(capture, stepped, lambda i, ts: ts - 0.05 if i % 2 else ts)
        first_back = offsets[1]
    keys = read_keylog(capture.with_suffix(".keys"))
    clean = index_capture(capture)
    for mac in [m for m in clean.macs() if m.startswith("0A")]:
        base = scan_capture(capture, mac=mac, secrets=keys)
        want = asyncio.run(replay_phone(base.index, mac, tvs_capture=base.tvs))
        scan = scan_capture(stepped, mac=mac, secrets=keys)
        got = asyncio.run(replay_phone(scan.index, mac, tvs_capture=scan.tvs))
        assert decisions(got) == decisions(want)
        assert [len(r.boot.own) for r in got] == [len(r.boot.own) for r in want]
        assert [[d.name for d in r.boot.shared] for r in got] == \
            [[d.name for d in r.boot.shared] for r in want]
        starts = [r.boot.start for r in got]
        assert starts == sorted(starts)  # each boot's capture time (the phone clock) never goes back
        first, *rest = [w for w in scan.warnings if "earlier than" in w or "capture order" in w]
        assert first.startswith(f"capture offset {first_back} (packet ")
        assert "earlier than the packet before it" in first and "capture order is the order" in first
        assert len(rest) <= 1 and all("taken as equal to it" in w for w in rest)


def test_a_phone_whose_second_boot_is_stamped_before_the_first(tmp_path: Path) -> None:
    """The second boot's packets an hour behind the first's: still the second boot (its requests come
    later in the capture), with the cluster-wide files of its own window, at the first boot's time."""
    capture = CAPTURES / "first-boot-trusts-first-itl.pcap"
    clean = boots_of(index_capture(capture), "0A0000000001")
    cut = clean[1].start
    stepped = tmp_path / "stepped.pcap"
    restamp(capture, stepped, lambda _i, ts: ts - 3600 if ts >= cut else ts)
    boots = boots_of(index_capture(stepped), "0A0000000001")
    assert [[d.name for d in b.own] for b in boots] == [[d.name for d in b.own] for b in clean]
    assert [len(b.shared) for b in boots] == [len(b.shared) for b in clean]
    assert [b.own[0].client for b in boots] == [b.own[0].client for b in clean]
    assert clean[0].start <= boots[1].start < clean[1].start


_FIRST = CAPTURES / "first-boot-trusts-first-itl.pcap"
_NOW = 1_796_370_504


def _boots_shape(path: Path, mac: str) -> Any:
    def shape(downloads: tuple[Any, ...]) -> list[Any]:
        return [(d.name, d.outcome, d.data, d.client) for d in downloads]
    return [(shape(b.own), shape(b.shared)) for b in boots_of(index_capture(path), mac)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stamps=st.lists(st.integers(min_value=0, max_value=2**31 - 1), min_size=_count(_FIRST),
                       max_size=_count(_FIRST)))
def test_any_timestamps_give_the_boots_of_capture_order(tmp_path: Path, stamps: list[int]) -> None:
    """Whatever the records' timestamps (in any order), the boots, their windows and the decisions
    (phone clock given) are those of the clean capture: only capture order counts."""
    shuffled = tmp_path / "shuffled.pcap"
    restamp(_FIRST, shuffled, lambda i, _ts: float(stamps[i]))
    for mac in ("0A0000000001", "0A0000000003"):
        assert _boots_shape(shuffled, mac) == _boots_shape(_FIRST, mac)
    want = asyncio.run(replay_phone(index_capture(_FIRST), "0A0000000002", now=_NOW))
    got = asyncio.run(replay_phone(index_capture(shuffled), "0A0000000002", now=_NOW))
    assert decisions(got) == decisions(want)
