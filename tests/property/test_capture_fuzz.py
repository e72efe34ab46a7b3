"""Fuzzed captures through the reader and the replay scan (captures are untrusted user files).

Rule: the committed captures, mutated (bytes flipped, cut at a record boundary or inside one, records
duplicated or moved, captured/original and pcapng block lengths that lie, interface ids out of range,
gzip-compressed and cut, key logs with junk lines), give ``read_pcap``, ``index_capture`` and
``phoneemu replay --list/--mac/--all --json`` a result or a phoneemu error: exit 0, 1 or 2, never
a traceback.

``PHONEEMU_PROP_EXAMPLES=N`` runs the property with N random (not derandomized) examples: the long hunt.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneemu.cli import main
from phoneemu.errors import DecodeError, PhoneEmuError
from phoneemu.net.capture import read_pcap
from phoneemu.scenario.replay import index_capture
from tests import parser_helpers
from tests.unit.test_pcapng import _block, to_pcapng

_HUNT = int(os.environ.get("PHONEEMU_PROP_EXAMPLES", "0"))
ROOT = Path(__file__).resolve().parents[2]
NAME = "tampered-config-rejected"
MAC = "0A0000000201"
PCAP = (ROOT / "captures" / f"{NAME}.pcap").read_bytes()
KEYS = (ROOT / "captures" / f"{NAME}.keys").read_bytes()

one_parser = parser_helpers.one_parser()  # main is called 150 times by the property


def _bounds(data: bytes, ng: bool) -> list[tuple[int, int]]:
    """(start, end) of each pcap record (after the file header) or pcapng block, as their lengths say."""
    out, pos = [], 0 if ng else 24
    while pos + (12 if ng else 16) <= len(data):
        n = struct.unpack_from("<I", data, pos + (4 if ng else 8))[0] + (0 if ng else 16)
        if n <= 0:
            break
        out.append((pos, pos + n))
        pos += n
    return out


_LIES = st.sampled_from([0, 1, 15, 16, 65535, 262144, 262145, 0x7FFFFFFF, 0xFFFFFFF0, 0xFFFFFFFF])
_MUTATION = st.tuples(st.sampled_from(["flip", "cut_at", "cut_in", "dup", "move", "drop", "lie", "iface"]),
                      st.integers(0, 1 << 20), st.integers(0, 255), _LIES)


def _mutate(data: bytes, ng: bool, what: str, at: int, byte: int, lie: int) -> bytes:
    bounds = _bounds(data, ng) or [(0, len(data))]
    start, end = bounds[at % len(bounds)]
    d = bytearray(data)
    if what == "flip" and d:
        d[(start + byte) % len(d)] ^= 1 << (at % 8)
    elif what == "cut_at":
        d = d[:start if at % 2 else end]
    elif what == "cut_in":
        d = d[:start + at % max(end - start, 1)]
    elif what == "dup":
        d = d[:end] + d[start:end] * (1 + byte % 3) + d[end:]
    elif what == "move":
        other = bounds[byte % len(bounds)]
        d = d[:start] + d[other[0]:other[1]] + d[start:]
    elif what == "drop":
        d = d[:start] + d[end:]
    elif what == "lie" and start + 28 <= len(d):
        struct.pack_into("<I", d, start + (((4, 20, 24)[byte % 3]) if ng else (8, 12)[byte % 2]), lie)
    elif what == "iface" and ng and start + 12 <= len(d):
        struct.pack_into("<I", d, start + 8, lie)
    return bytes(d)


def _replies(tmp: Path, capsys: pytest.CaptureFixture[str], capture: bytes, keys: bytes, gz: bool) -> None:
    f = tmp / ("c.pcap.gz" if gz else "c.pcap")
    f.write_bytes(capture)
    k = tmp / "c.keys"
    k.write_bytes(keys)
    for read in (lambda: list(read_pcap(f)), lambda: list(read_pcap(f, cut_short=lambda _e: None)),
                 lambda: index_capture(f)):
        try:
            read()
        except PhoneEmuError as exc:
            assert str(exc), exc
    for argv in (["replay", str(f), "--list", "--json"],
                 ["replay", str(f), "--mac", MAC, "--json", "--keylog", str(k)],
                 ["replay", str(f), "--all", "--json", "--keylog", str(k)]):
        assert main(argv) in (0, 1, 2), argv
        assert "Traceback" not in capsys.readouterr().err


_JUNK = st.sampled_from([b"CLIENT_RANDOM zz", b"RSA", b"\xff\xfe\x00", b"CLIENT_RANDOM " + b"a" * 64,
                         b"CLIENT_RANDOM " + b"a" * 64 + b" " + b"b" * 97, b" " * 5])


@settings(max_examples=_HUNT or 50, deadline=None, derandomize=not _HUNT,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ng=st.booleans(), tsresol=st.sampled_from([None, 9, 6]), said=st.sampled_from([None, 0, 0x80, 0xFF]),
       mutations=st.lists(_MUTATION, max_size=3), gz=st.sampled_from([None, 1.0, 0.5, 0.0]),
       junk=st.lists(_JUNK, max_size=3))
def test_mutated_captures_answer_with_phoneemu_errors_only(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           ng: bool, tsresol: int | None, said: int | None,
                                                           mutations: list[tuple[str, int, int, int]],
                                                           gz: float | None, junk: list[bytes]) -> None:
    """Any mutation of a committed capture (pcap or pcapng, its if_tsresol saying ``said`` for ticks
    written at ``tsresol``, gzip-compressed and cut or not, its key log with junk lines): only phoneemu
    errors, exit 0/1/2, no traceback."""
    data = PCAP
    if ng:
        data = to_pcapng(PCAP, tsresol=tsresol)
        if tsresol is not None and said is not None:  # the interface's if_tsresol value (after SHB, IDB head)
            data = data[:48] + bytes([said]) + data[49:]
    for mutation in mutations:
        data = _mutate(data, ng, *mutation)
    if gz is not None:
        data = gzip.compress(data, compresslevel=1)
        data = data[:int(len(data) * gz)] if gz < 1 else data
    _replies(tmp_path, capsys, data, b"\n".join([KEYS, *junk]), gz is not None)


def _ng_time(pcap: bytes, *, tsresol: int | None = None, tsoffset: int | None = None) -> bytes:
    """``pcap`` as pcapng whose interface says ``tsresol`` and ``tsoffset``, its packets' ticks kept
    as microseconds (the lie)."""
    ng = to_pcapng(pcap)
    shb_len = struct.unpack_from("<I", ng, 4)[0]
    idb_len = struct.unpack_from("<I", ng, shb_len + 4)[0]
    body = ng[shb_len + 8:shb_len + idb_len - 4]
    if tsresol is not None:
        body += struct.pack("<HHB3x", 9, 1, tsresol)
    if tsoffset is not None:
        body += struct.pack("<HHq", 14, 8, tsoffset)
    return ng[:shb_len] + _block(1, body + b"\0" * 4) + ng[shb_len + idb_len:]


@pytest.mark.parametrize(("tsresol", "tsoffset"), [(0, None), (0x80, None), (None, -(1 << 63)),
                                                   (None, (1 << 63) - 1), (None, -62135596801 - 2 * 10**9)])
def test_a_pcapng_time_no_clock_shows_is_a_decode_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        tsresol: int | None, tsoffset: int | None) -> None:
    """A pcapng whose if_tsresol says 1 tick/s for microsecond ticks (year 57 million) or whose
    if_tsoffset is far out: a DecodeError naming the file, the packet and its timestamp; replay says so
    in one line, exit 2. (Before: ``ValueError: year 56931552 is out of range``, a traceback, from the
    replayed phone's clock.)"""
    f = tmp_path / "c.pcapng"
    f.write_bytes(_ng_time(PCAP, tsresol=tsresol, tsoffset=tsoffset))
    with pytest.raises(DecodeError, match=r"packet\[0\]\.timestamp .*outside the years 1\.\.9999") as err:
        list(read_pcap(f))
    assert str(f) in str(err.value)
    for argv in (["replay", str(f), "--all", "--json"], ["replay", str(f), "--mac", MAC, "--json"]):
        assert main(argv) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "timestamp" in lines[0], lines


def test_a_pcapng_time_in_range_is_read(tmp_path: Path) -> None:
    """The same capture with a 1 tick/s resolution and its ticks in seconds, or an offset back to
    1970: read, the times as said."""
    f = tmp_path / "c.pcapng"
    f.write_bytes(_ng_time(PCAP, tsoffset=-1_000_000_000))
    got, want = list(read_pcap(f)), list(read_pcap(ROOT / "captures" / f"{NAME}.pcap"))
    assert [round(p.ts - q.ts) for p, q in zip(got, want, strict=True)] == [-1_000_000_000] * len(want)
