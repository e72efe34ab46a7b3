"""``replay --all``'s totals add up to what the capture holds, and its phones' records are not held in
memory (README "Replay of every phone"; :mod:`phoneemu.scenario.replay_fleet`, "One pass").

The capture is a small TFTP storm made here: each phone downloads ``CTLSEP<MAC>.tlv``, the cluster-wide
``ITLFile.tlv`` and ``SEP<MAC>.cnf.xml`` (bytes no phone accepts: the outcomes do not matter here, the
counts do). ``MAX_MACS`` is made small and a download's description large, so that a small
``--max-memory`` leaves downloads out and phones go beyond the maximum: every phone and download must
still be counted, in the JSON, the text and the JUnit report."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.commands import _replay_all
from phoneemu.net.capture import PcapWriter
from phoneemu.net.tftp_codec import Data, ReadRequest, encode
from phoneemu.scenario import replay_fleet

SERVER = ("127.0.0.10", 69)
PHONES = [f"0A00000077{i:02X}" for i in range(1, 7)]  # 6 phones
PER_PHONE = 3  # downloads of each phone: two of its own, one cluster-wide


def _storm(path: Path, macs: list[str] = PHONES) -> Path:
    """Each phone's three TFTP reads, one phone after the other (capture order: MAC order)."""
    t, tid = 1_800_000_000.0, 2000
    with PcapWriter(path) as w:
        for i, mac in enumerate(macs):
            client = ("127.0.0.2", 40000 + i)
            for name in (f"CTLSEP{mac}.tlv", "ITLFile.tlv", f"SEP{mac}.cnf.xml"):
                tid += 1
                w.udp(client, SERVER, encode(ReadRequest(filename=name, options={})), ts=t)
                w.udp((SERVER[0], tid), client, encode(Data(block=1, data=b"not a trust list")), ts=t + 0.001)
                w.udp(client, (SERVER[0], tid), b"\x00\x04\x00\x01", ts=t + 0.002)
                t += 0.01
    return path


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most 4 phones replayed; --max-memory 1 (half: 512 KiB) holds 5 descriptions."""
    monkeypatch.setattr(replay_fleet, "MAX_MACS", 4)
    monkeypatch.setattr(replay_fleet, "DESCRIPTION_COST", 100_000)


def test_every_phone_and_download_of_the_capture_is_counted(tmp_path: Path, small: None,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Before, ``downloads`` counted the 5 kept only and ``phones``/``by_outcome`` left out the phones
    beyond MAX_MACS (a warning named their downloads), exiting as if they had been checked."""
    pcap = _storm(tmp_path / "storm.pcap")
    report = tmp_path / "phones.xml"
    assert main(["replay", str(pcap), "--all", "--max-memory", "1", "--json", "--junit", str(report)]) == 1
    doc = json.loads(capsys.readouterr().out)
    # downloads: every one of the capture, kept or why not
    assert doc["downloads"] == len(PHONES) * PER_PHONE == 18
    assert doc["downloads_kept"] == 5  # phone 1's three, phone 2's first two
    assert doc["downloads_not_kept"] == {"budget": 9, "beyond_max_macs": 4}  # phones 5 and 6's own
    assert doc["downloads_kept"] + sum(doc["downloads_not_kept"].values()) == doc["downloads"]
    assert doc["phones_uncounted_downloads"] == 0 and doc["max_macs"] == 4
    # phones: every one, replayed or not, a record each in MAC order
    assert doc["phones"] == len(PHONES) == sum(doc["by_outcome"].values())
    assert (doc["phones_replayed"], doc["phones_not_replayed"], doc["by_outcome"]["skipped"]) == (1, 5, 5)
    assert [r["mac"] for r in doc["records"]] == PHONES
    assert [("skipped" in r) for r in doc["records"]] == [False, True, True, True, True, True]
    kinds = {k["skipped"]: (k["count"], k["macs"]) for k in doc["skipped_kinds"]}
    assert kinds[replay_fleet.NOT_KEPT] == (3, PHONES[1:4])
    assert kinds["beyond the first 4 phones of the capture (at most 4 are replayed): its downloads are "
                 "counted, not replayed"] == (2, PHONES[4:])
    assert doc["exit_status"] == 1 and "5 phones not replayed" in doc["exit_why"]
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("skipped")) == ("6", "5")
    assert [c.get("name") for c in suite.findall("testcase")] == PHONES
    # the text says the same
    assert main(["replay", str(pcap), "--all", "--max-memory", "1"]) == 1
    out = capsys.readouterr().out
    assert f"replay of 1 of the capture's 6 phones ({doc['boots']} boot" in out
    assert ("downloads: 18 in the capture, 5 kept, 9 not kept (half of --max-memory was full), 4 of phones "
            "beyond the first 4 (not replayed)") in out
    assert f"not replayed: 2 phones ({PHONES[4]}, {PHONES[5]}): beyond the first 4 phones" in out
    assert "result: " in out and " of 6 phones ended with a configuration accepted" in out


def test_phones_whose_mac_does_not_fit_are_said_not_counted(tmp_path: Path, small: None,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A phone beyond MAX_MACS is remembered at MAC_COST against the budget; when even that does not
    fit, its downloads are still counted and the totals say there are more phones than counted."""
    monkeypatch.setattr(replay_fleet, "MAC_COST", 1 << 30)
    pcap = _storm(tmp_path / "storm.pcap")
    assert main(["replay", str(pcap), "--all", "--max-memory", "1", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["downloads"] == 18 and doc["downloads_not_kept"]["beyond_max_macs"] == 4
    assert doc["phones_uncounted_downloads"] == 4 and doc["phones"] == 4
    assert "4 downloads of phones not counted (raise --max-memory)" in doc["exit_why"]
    assert main(["replay", str(pcap), "--all", "--max-memory", "1"]) == 1
    assert "(4 of them of phones not counted: half of --max-memory was full; there are more phones than " \
        "counted)" in capsys.readouterr().out


def test_every_phone_replayed_counts_as_before(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without limits hit: every download kept, every phone replayed, the JSON text as ``json.dumps``
    writes the whole document (it is written a record at a time)."""
    pcap = _storm(tmp_path / "storm.pcap")
    assert main(["replay", str(pcap), "--all", "--json"]) == 1
    text = capsys.readouterr().out
    assert text == json.dumps(json.loads(text), indent=2) + "\n"
    doc = json.loads(text)
    assert (doc["downloads"], doc["downloads_kept"], doc["phones"], doc["phones_replayed"]) == (18, 18, 6, 6)
    saved = tmp_path / "phones.json"
    assert main(["replay", str(pcap), "--all", "--json-file", str(saved)]) == 1
    assert "downloads: 18 in the capture, all kept" in capsys.readouterr().out
    assert saved.read_text() == json.dumps(doc, indent=1) + "\n"


def test_records_are_spooled_not_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """``replay_fleet(each=...)`` hands each phone over as it is done and keeps none; ``run_all`` puts
    them in an unnamed temporary file (mode 0600) that is closed at the end, on Ctrl-C too."""
    import os
    import stat
    import tempfile

    pcap = _storm(tmp_path / "storm.pcap")
    fleet = replay_fleet.scan_fleet(pcap)
    got: list[str] = []
    try:
        kept = asyncio.run(replay_fleet.replay_fleet(fleet, reduce=lambda ph: ph.mac, each=got.append))
    finally:
        fleet.close()
    assert kept == [] and got == PHONES

    files: list[Any] = []
    real = tempfile.TemporaryFile

    def spy(*a: Any, **kw: Any) -> Any:
        f = real(*a, **kw)
        if str(kw.get("prefix", "")).startswith("phoneemu-replay-records"):
            files.append(f)
        return f
    monkeypatch.setattr(tempfile, "TemporaryFile", spy)
    done = 0
    record = _replay_all.phone_record

    def interrupted(ph: Any) -> dict[str, Any]:
        nonlocal done
        done += 1
        if done == 3:
            assert stat.S_IMODE(os.fstat(files[0].fileno()).st_mode) == 0o600
            raise KeyboardInterrupt
        return record(ph)
    monkeypatch.setattr(_replay_all, "phone_record", interrupted)
    assert main(["replay", str(pcap), "--all", "--json"]) == 130  # Ctrl-C
    assert len(files) == 1 and files[0].closed
    assert capsys.readouterr().out == ""  # never half a document
