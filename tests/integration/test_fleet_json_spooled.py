"""``fleet boot --json --junit`` with shard processes: each shard sends its records a few hundred a
message and the parent spools them on disk as they come (``fleet.metrics.RecordSpool``), then writes
both reports from the spool a record at a time; the JSON is the very text ``json_doc.dumps`` of the
whole document gives, the phones shard by shard. Was: every record held in the parent, then the whole
document built in memory (tens of MiB at 40,000 phones). Nothing answers at 127.0.0.1:9 (the discard
port: ICMP port unreachable at once), so each boot fails in milliseconds: no lab needed."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from phoneemu import json_doc
from phoneemu.cli import main
from phoneemu.fleet import metrics as metrics_mod
from phoneemu.fleet.engine import mac_text, parse_mac
from phoneemu.fleet.metrics import BootRecord, RecordSpool

COUNT = 1200  # two shards of 600: two messages of records each (shard._RECORDS_A_MESSAGE)
START = "0A0000000000"


class _WatchedSpool(RecordSpool):
    """A RecordSpool that remembers itself and each message of records it was given."""

    made: list[_WatchedSpool] = []

    def __init__(self) -> None:
        super().__init__()
        self.messages: Counter[int] = Counter()
        _WatchedSpool.made.append(self)

    def add(self, shard: int, records: object) -> None:
        self.messages[shard] += 1
        super().add(shard, records)  # type: ignore[arg-type]


def test_fleet_json_and_junit_come_from_records_spooled_as_they_arrive(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_mod, "RecordSpool", _WatchedSpool)  # run_fleet's (imported where used)
    _WatchedSpool.made.clear()
    out, junit = tmp_path / "fleet.json", tmp_path / "fleet.xml"
    rc = main(["fleet", "boot", "--count", str(COUNT), "--mac-start", START, "--shards", "2", "--tftp",
               "127.0.0.1:9", "--no-http", "--keep-going", "--timeout", "1", "--retries", "0",
               "--json", str(out), "--junit", str(junit), "-q"])
    assert rc == 1  # every phone failed: nothing answers
    (spool,) = _WatchedSpool.made
    assert spool.messages == {0: 2, 1: 2}  # a few hundred records a message, not a shard's all at once
    assert not spool.holds_file  # closed once the reports are written
    text = out.read_text(encoding="ascii")
    doc = json.loads(text)
    assert text == json_doc.dumps(doc, indent=1) + "\n"  # the whole document's own text
    assert list(doc) == ["target", "profile", "profiles", "summary", "phones", "phoneemu"]
    first = parse_mac(START)
    macs = [p["mac"] for p in doc["phones"]]
    half = COUNT // 2  # shard 0's phones, then shard 1's
    assert sorted(macs[:half]) == [mac_text(first + i) for i in range(half)]
    assert sorted(macs[half:]) == [mac_text(first + i) for i in range(half, COUNT)]
    assert doc["summary"]["phones"] == COUNT and doc["summary"]["failed"] == COUNT
    assert all(BootRecord.from_dict(p).as_dict() == p for p in doc["phones"][:50])
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == str(COUNT) and suite.get("failures") == str(COUNT)
