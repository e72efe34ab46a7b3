"""Review s41, fleet boot: the phones not started are named under the summary without --json or --junit
(each shard's queue when it stopped); --junit has a case per phone of a lost shard."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.commands import fleet as fleet_cmd
from phoneemu.fleet.engine import ShardResult
from phoneemu.fleet.metrics import BootRecord, FleetMetrics
from phoneemu.fleet.shard import FleetResult, LostShard

HOST = "127.0.0.1"
START = 0x0A0000000000


def _runs_said(line: str) -> list[tuple[int, int]]:
    """``not started (--max-time): 44: A..B, C..D`` -> [(A, B), (C, D)]."""
    head, _, runs = line.partition("): ")[2].partition(": ")
    assert runs, line
    out = []
    for run in runs.split(", "):
        first, _, last = run.partition("..")
        out.append((int(first, 16), int(last or first, 16)))
    assert sum(b - a + 1 for a, b in out) == int(head), line
    return out


def test_the_phones_not_started_are_named_without_json_or_junit(capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing answers (a silent UDP socket), --max-time stops the storm: the line under the summary names
    the MACs not started, across the two shards (was the count alone, ``not started (--max-time): 46``,
    the MACs only with --json or --junit)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((HOST, 0))
        port = silent.getsockname()[1]
        rc = main(["fleet", "boot", "--tftp", f"{HOST}:{port}", "--no-http", "--count", "50", "--shards", "2",
                   "--concurrency", "2", "--timeout", "1", "--retries", "0", "--max-time", "0.2",
                   "--keep-going", "-q"])
    out = capsys.readouterr().out
    assert rc == 1, out
    line = next(x for x in out.splitlines() if x.startswith("not started (--max-time): "))
    runs = _runs_said(line)
    said = {m for a, b in runs for m in range(a, b + 1)}
    assert said <= set(range(START, START + 50)) and START + 49 in said and START + 24 in said, line
    assert START not in said and START + 25 not in said, line  # each shard's first phone started


def _booted(i: int) -> BootRecord:
    return BootRecord(mac=f"{START + i:012X}", outcome="ok", rule="G.4-signed-by-itl-tftp", latency_s=0.05,
                      end_s=1.0)


def test_the_not_started_runs_join_across_shards() -> None:
    m = FleetMetrics()
    shards = [ShardResult(shard=0, metrics=m, not_started=3, not_started_runs=[(START + 2, START + 4)]),
              ShardResult(shard=1, metrics=m, not_started=4, not_started_runs=[(START + 5, START + 6),
                                                                                 (START + 8, START + 9)])]
    result = FleetResult(metrics=m, shards=shards)
    assert result.not_started_runs == [(START + 2, START + 6), (START + 8, START + 9)]
    assert fleet_cmd._not_started_macs(result) == [START + i for i in (2, 3, 4, 5, 6, 8, 9)]
    back = ShardResult.from_state(shards[1].to_state())  # as a shard process sends it
    assert back.not_started_runs == [(START + 5, START + 6), (START + 8, START + 9)]


def test_junit_has_an_error_case_per_phone_of_a_lost_shard(tmp_path: Path) -> None:
    """Two phones booted, a shard of 3 lost (consecutive MACs), one of 2 given its MACs (a listed fleet):
    7 cases, the phones asked for, each lost one an error named by its MAC and naming its shard (was one
    case ``lost shard N`` each shard)."""
    records = [_booted(0), _booted(1)]
    m = FleetMetrics()
    for rec in records:
        m.add(rec)
    lost = [LostShard(shard=1, first_mac=START + 2, phones=3, why="killed by SIGKILL", reported_done=1),
            LostShard(shard=2, first_mac=START + 10, last_mac=START + 20, phones=2,
                      why="exited with status 1", macs=(START + 10, START + 20))]
    result = FleetResult(metrics=m, shards=[ShardResult(shard=0, metrics=m)], records=records, lost=lost)
    path = tmp_path / "f.xml"
    fleet_cmd._write_junit(path, result, target=HOST, count=7)
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("errors")) == ("7", "5")
    cases = {c.get("name") or "": c for c in suite.findall("testcase")}
    assert sorted(cases) == [f"{START + i:012X}" for i in (0, 1, 2, 3, 4, 10, 20)]
    error = cases[f"{START + 3:012X}"].find("error")
    assert error is not None
    message = error.get("message") or ""
    assert message.startswith("lost with its shard: shard 1 (phoneemu-fleet-1, 3 phones "
                              "0A0000000002..0A0000000004) killed by SIGKILL"), message
    error = cases[f"{START + 20:012X}"].find("error")
    assert error is not None and "shard 2 (phoneemu-fleet-2, 2 phones" in (error.get("message") or "")


def test_the_progress_line_of_a_shard_process_says_the_booted_whose_capf_failed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A phone whose install by string is refused (``--auth-string 9999``, the lab's 4242), one whose
    install asks no proof: the last progress line, from a shard process, says ``booted 2/2 (1 of them CAPF
    failed)`` as the summary's first line (was ``booted 2/2 failed 0``)."""
    from phoneemu.lab.cluster import LabCluster
    from tests.helpers import serve_in_thread

    by_string, null_string = "0A0000000001", "0A0000000002"
    c = LabCluster.init(tmp_path / "lab", key_spec="rsa1024")
    c.add_phones([by_string, null_string])
    c.set_capf([by_string], "install", auth_string="4242", key="ec-p256")
    c.set_capf([null_string], "install", auth_mode="null-string", key="ec-p256")
    ports, stop = serve_in_thread(c)
    try:
        capsys.readouterr()
        code = main(["fleet", "boot", "--tftp", f"{HOST}:{ports['tftp']}", "--http-port", str(ports["http"]),
                     "--mac-start", by_string, "--count", "2", "--lab", str(c.root), "--shards", "1",
                     "--auth-string", "9999", "--capf-retry-delay", "0"])
        out, err = capsys.readouterr()
    finally:
        stop()
    assert code == 1, out + err
    assert out.splitlines()[0].startswith("2 phones: 2 booted (1 of them CAPF failed), 0 failed in "), out
    last = [x for x in err.splitlines() if x.startswith("phoneemu fleet boot: booted ")][-1]
    assert last.startswith("phoneemu fleet boot: booted 2/2 (1 of them CAPF failed) failed 0 (100% done)"), \
        err


def test_a_shard_that_cannot_import_the_phones_modules_says_so_without_a_traceback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    """A shard process whose phones' modules do not import (here a ``cryptography`` that raises
    ImportError first on the path the spawned shard is given: a module being edited as it starts) ends the
    run with one line naming the exception, exit 2 (was: the shard's start-up traceback on stderr, then
    ``shard process ... exited with status 1 before the storm``)."""
    import phoneemu.fleet.engine  # noqa: F401 - this process's cryptography is the real one, imported

    fake = tmp_path / "path" / "cryptography"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "raise ImportError(\"cannot import name 'x509' (a test's stand-in)\")\n")
    monkeypatch.syspath_prepend(str(fake.parent))  # a spawned process is given this process's sys.path
    capfd.readouterr()
    rc = main(["fleet", "boot", "--tftp", f"{HOST}:9", "--no-http", "--count", "2", "--shards", "1", "-q"])
    out, err = capfd.readouterr()
    assert rc == 2, out + err
    assert "Traceback" not in out + err, err
    assert ("phoneemu fleet boot: fleet shard 0 failed: could not start: ImportError: cannot import name "
            "'x509' (a test's stand-in)") in err, err
