"""The benchmarks in bench/ keep working as documented (README "Tests, benchmarks, layout").

Figures are never asserted (bench/ measures, tests do not): only that each script answers ``--help``,
that its caches are made again when the code or data they were made from changes, that an interrupted
build leaves nothing the next run refuses, and that temporary files go away. Loopback only, tiny sizes.
"""

from __future__ import annotations

import json
import re
import runpy
import shutil
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

import bench.fleet as fleet_bench
import bench.fuzz as fuzz_bench
import bench.phone_memory as memory_bench
import bench.replay as replay_bench
import phoneemu
from phoneemu.errors import PhoneEmuError
from phoneemu.lab.cluster import LabCluster

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.name for p in (ROOT / "bench").glob("*.py") if p.name != "__init__.py")


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_bench_script_answers_help(script: str, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """``python bench/X.py --help`` prints its usage and exits 0 (phone_memory.py took ``--help`` for
    its phone count: ValueError)."""
    monkeypatch.setattr(sys, "argv", [str(ROOT / "bench" / script), "--help"])
    monkeypatch.setattr(sys, "path", list(sys.path))  # a script puts the checkout first
    with pytest.raises(SystemExit) as ended:
        runpy.run_path(str(ROOT / "bench" / script), run_name="__main__")
    assert ended.value.code in (0, None)
    assert "usage:" in capsys.readouterr().out


def test_phone_memory_leaves_no_lab_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The booted-phone measure builds its lab in a temporary folder and removes it (it was left in
    $TMPDIR, one lab per run)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert memory_bench.measure_booted_phones(2) > 0
    assert list(tmp_path.iterdir()) == []


def _copy_fingerprinted_sources(to: Path) -> Path:
    """A copy of the phoneemu folders the lab fingerprint reads; its ``__init__.py`` path."""
    src = Path(phoneemu.__file__).parent
    for folder in ("lab", "formats", "crypto"):
        shutil.copytree(src / folder, to / "phoneemu" / folder, ignore=shutil.ignore_patterns("__pycache__"))
    init = to / "phoneemu" / "__init__.py"
    init.write_text("")
    return init


@pytest.mark.parametrize("changed", ["crypto/certs.py", "lab/cluster.py", "formats/trustlist.py"])
def test_fleet_lab_code_follows_every_source_the_lab_files_come_from(
        changed: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cached benchmark lab is rebuilt when its ``lab_code`` changes: the certificates and keys in
    every served file come from phoneemu/crypto too (a change there kept the stale lab)."""
    monkeypatch.setattr(phoneemu, "__file__", str(_copy_fingerprinted_sources(tmp_path)))
    before = fleet_bench.lab_code_fingerprint()
    source = tmp_path / "phoneemu" / changed
    source.write_text(source.read_text() + "\n# changed\n")
    assert fleet_bench.lab_code_fingerprint() != before


def test_fleet_lab_build_interrupted_leaves_nothing_the_next_run_refuses(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C during the build (minutes of MIC issue for 40,000 phones) left a lab cluster without the
    bench's marker: every later run failed "already holds a lab cluster". Now the half build goes."""
    def interrupted(*_args: object) -> None:
        raise KeyboardInterrupt

    class SmallKeyLabs:
        """``LabCluster`` as the bench calls it, with RSA-1024 keys: the key size does not matter here."""
        @staticmethod
        def init(lab_root: Path, **options: Any) -> LabCluster:
            return LabCluster.init(lab_root, **options, key_spec="rsa1024")

    root = tmp_path / "cache" / "1-rsa2048"
    monkeypatch.setattr(fleet_bench, "LabCluster", SmallKeyLabs)
    monkeypatch.setattr(fleet_bench, "storm_generations", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fleet_bench.build_lab(root, 1, "rsa2048")
    assert not root.exists() or not any(root.iterdir())
    assert list((tmp_path / "cache").iterdir()) in ([], [root])  # no half-built folder beside it


def test_fleet_lab_dir_not_ours_is_refused_untouched(tmp_path: Path) -> None:
    """A --lab-dir that holds other files and no marker is not a benchmark lab: refused, kept as it is."""
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(PhoneEmuError, match=r"bench-fleet\.json"):
        fleet_bench.build_lab(tmp_path, 1, "rsa2048")
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_fleet_lab_for_other_phones_is_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A cached lab of another phone count: exit 2 and why on stderr (was: a traceback)."""
    (tmp_path / fleet_bench.MARKER).write_text(json.dumps({"phones": 7, "tvs_key": "rsa2048"}))
    monkeypatch.setattr(sys, "argv", ["fleet.py", "--phones", "3", "--lab-dir", str(tmp_path), "--json"])
    assert fleet_bench.main() == 2
    err = capsys.readouterr().err
    assert "holds a benchmark lab for 7 phones" in err and "Traceback" not in err


def _without_last_packet(capture: Path, to: Path) -> None:
    records, _linktype = replay_bench._phone_records(capture)
    to.write_bytes(capture.read_bytes()[:24] + b"".join(record for _ts, record in records[:-1]))


def _packets(pcap: Path) -> int:
    data, pos, count = pcap.read_bytes(), 24, 0
    while pos < len(data):
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
        count += 1
    return count


@pytest.mark.parametrize("kind", ["noise", "out-of-order", "downloads"])
def test_replay_captures_are_made_again_when_the_phones_capture_changes(
        kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The synthesised captures embed the committed phones' capture: one made from an older capture
    (the catalogue regenerates it) held other packets, and the bench reported ``same_decisions: false``."""
    def make() -> Path:
        if kind == "noise":
            return replay_bench.synthesise(1, tmp_path / "cache")
        return replay_bench.synthesise_adversarial(2, 4, tmp_path / "cache", kind=kind)

    phones = tmp_path / "phones.pcap"
    shutil.copyfile(replay_bench.CAPTURE, phones)
    monkeypatch.setattr(replay_bench, "CAPTURE", phones)
    first = make()
    first_packets = _packets(first)
    _without_last_packet(replay_bench.CAPTURE, phones)
    second = make()
    assert second != first
    assert second.read_bytes() != first.read_bytes()
    if kind != "noise":  # the phones' packets, then the connections: one packet fewer
        assert _packets(second) == first_packets - 1
    assert make() == second  # and cached again


def test_fuzz_table_columns_line_up_with_long_format_names(capsys: pytest.CaptureFixture[str]) -> None:
    """The table's format column fits ``sip-response`` (the other columns were pushed right)."""
    assert fuzz_bench.main(["--runs", "4", "--workers", "1", "--formats", "itl,sip-response",
                            "--no-round-trip"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("format "))
    rows = lines[header:header + 3]
    second_column_ends = {re.match(r"\S+\s+\S+", line).end() for line in rows}  # type: ignore[union-attr]
    assert len(second_column_ends) == 1, rows
