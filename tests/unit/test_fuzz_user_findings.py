"""Fuzzing one's own parser: dedup by the user's line, replayable hangs, Ctrl-C keeps the
findings, an export's keys are not seeds (phoneemu.fuzz)."""

from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.fuzz.corpus import build_corpus, export_corpus, with_seed_files
from phoneemu.fuzz.engine import FuzzConfig, fuzz
from phoneemu.fuzz.mutators import Mutator
from phoneemu.fuzz.targets import Outcome, PythonTarget
from tests.fuzz_helpers import split_line


def _two_call_sites(data: bytes) -> None:
    if len(data) % 2:
        base64.b64decode(b"!" + data[:4], validate=True)
    else:
        base64.b64decode(b"!" + data[-4:], validate=True)


def test_two_call_sites_of_the_standard_library_are_two_findings_named_by_the_users_line() -> None:
    t = PythonTarget(_two_call_sites)
    odd, even = t.run(b"abc"), t.run(b"abcd")
    assert odd.status == even.status == "crash"
    assert f"{Path(__file__).name}:" in odd.signature and "base64.py" not in odd.signature
    assert odd.signature != even.signature


def test_the_reproduce_command_keeps_hang_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "slowparse.py").write_text(
        "import time\n"
        "def parse(data):\n"
        "    t = time.thread_time()\n"
        "    while time.thread_time() - t < 0.15:\n"
        "        pass\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["fuzz", "--format", "itl", "--target", "slowparse:parse", "--hang-after", "0.1",
                 "--runs", "1", "--out", "fz", "-q"]) == 1
    info = json.loads(next((tmp_path / "fz" / "crashes").glob("*/info.json")).read_text())
    assert info["kind"] == "hang"
    folder, argv = split_line(info["reproduce"])
    assert folder == tmp_path.resolve()  # slowparse is this folder's: run from it
    assert argv[argv.index("--hang-after") + 1] == "0.1"
    capsys.readouterr()
    assert main(argv[1:]) == 1  # still a hang when replayed
    assert "hang" in capsys.readouterr().out


def test_ctrl_c_while_minimising_keeps_the_finding_and_the_counts(tmp_path: Path) -> None:
    class Interrupted:
        """Crashes on the first input; its first minimisation attempt is a Ctrl-C."""

        calls = 0

        def run(self, data: bytes) -> Outcome:
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt
            return Outcome(status="crash", signature="ValueError at x.py:1")

        def session(self) -> contextlib.AbstractContextManager[None]:
            return contextlib.nullcontext()

        def close(self) -> None:
            return None

    mutator = Mutator(build_corpus("itl"))
    config = FuzzConfig(fmt="itl", runs=10, out=tmp_path)
    try:
        report = fuzz(config, Interrupted(), mutator)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped the fuzz loop: no summary, the counts not written")
    assert report.interrupted and report.execs == 1
    [found] = report.findings.values()
    info = json.loads((tmp_path / "crashes" / found.key / "info.json").read_text())
    assert info["count"] == 1 and info["run_index"] == 0
    assert (tmp_path / "crashes" / found.key / "minimized.bin").read_bytes() == found.data


def test_an_exports_keys_are_not_seeds(tmp_path: Path) -> None:
    corpus = build_corpus("itl")
    export_corpus(corpus, tmp_path / "seeds")
    (tmp_path / "seeds" / "mine.tlv").write_bytes(b"edited")
    again = with_seed_files(corpus, tmp_path / "seeds")
    assert again.names == (*corpus.names, "mine.tlv")
