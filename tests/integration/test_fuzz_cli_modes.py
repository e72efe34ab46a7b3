"""``phoneemu fuzz --serve`` over loopback: what a silence finding's info.json says, and Ctrl-C's summary."""

from __future__ import annotations

import asyncio
import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from phoneemu.cli import main
from tests.helpers import finish_process, start_fuzz_serve

ROOT = Path(__file__).resolve().parents[2]
# Ctrl-C as at a terminal, even when this test runs with SIGINT ignored (a background job)
_MAIN = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
         "from phoneemu.cli import main; sys.exit(main(sys.argv[1:]))")


def _serve(*options: str) -> tuple[subprocess.Popen[str], int]:
    """``phoneemu fuzz --serve --port 0 OPTIONS`` started, Ctrl-C as at a terminal."""
    return start_fuzz_serve(*options, python=("-c", _MAIN))


def _fetch(port: int, name: str) -> bytes:
    from phoneemu.net.tftp import tftp_get

    return asyncio.run(tftp_get("127.0.0.1", port, name, timeout=1.0, retries=3))


# --------------------------------------------------------------------------- 9. a silence finding's info.json
def test_a_silence_finding_says_its_format_and_how_to_serve_and_rebuild_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """info.json had kind, index, name, seed: no format, no reproduce, no regenerate; its regenerate
    command rebuilds the very bytes served."""
    out = tmp_path / "fz"
    proc, port = _serve("--format", "itl", "--seed", "3", "--run-index", "7", "--runs", "1", "--time", "30",
                        "--silent-after", "0.3", "--out", str(out))
    served = _fetch(port, "ITLFile.tlv")
    rc, stdout, err = finish_process(proc)
    assert rc == 1, (stdout, err)
    folder = out / "crashes" / "silent-000007"
    info = json.loads((folder / "info.json").read_text())
    assert info["format"] == "itl" and info["seed"] == 3 and info["run_index"] == 7 and info["note"]
    again = shlex.split(info["reproduce"])
    for option, value in (("--format", "itl"), ("--seed", "3"), ("--run-index", "7"), ("--runs", "1"),
                          ("--silent-after", "0.3"), ("--port", "0")):
        assert again[again.index(option) + 1] == value, again
    assert "--serve" in again
    regen = shlex.split(info["regenerate"])
    assert regen[:2] == ["phoneemu", "fuzz"] and regen[regen.index("--regenerate") + 1] == str(
        (folder / "regenerated").resolve())
    assert main(regen[1:]) in (0, 1)
    capsys.readouterr()
    rebuilt = (folder / "regenerated" / "input.bin").read_bytes()
    assert rebuilt == served == (folder / "input.bin").read_bytes()


def test_a_served_mutant_made_for_its_name_says_why_it_cannot_be_rebuilt(tmp_path: Path) -> None:
    out = tmp_path / "fz"
    proc, port = _serve("--format", "sgn", "--runs", "1", "--time", "30", "--silent-after", "0.3",
                        "--out", str(out))
    _fetch(port, "SEP001122334455.cnf.xml.sgn")
    rc, stdout, err = finish_process(proc)
    assert rc == 1, (stdout, err)
    info = json.loads((out / "crashes" / "silent-000000" / "info.json").read_text())
    assert info["format"] == "sgn" and info["regenerate"] == "" and "cannot rebuild" in info["note"]
    assert "--serve" in shlex.split(info["reproduce"])


# --------------------------------------------------------------------------- 10. Ctrl-C while serving
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_while_serving_prints_and_writes_the_summary(tmp_path: Path) -> None:
    """Only ``phoneemu fuzz: interrupted`` was printed; now the summary line, summary.json, exit 130."""
    out = tmp_path / "fz"
    proc, port = _serve("--format", "itl", "--runs", "5", "--time", "60", "--out", str(out))
    _fetch(port, "ITLFile.tlv")
    time.sleep(0.3)  # the server has seen the last ACK
    proc.send_signal(signal.SIGINT)
    rc, stdout, err = finish_process(proc)
    assert rc == 130, (stdout, err)
    assert "itl: served 1 mutant(s) to 1 request(s); transfer outcomes: " in stdout, stdout
    assert "interrupted after serving 1 mutant(s)" in err and "Traceback" not in err, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["served"] == 1 and summary["format"] == "itl"
