"""``phoneemu fuzz``: the options of one mode refused in another, qualified exception types, a command's
timeout a hang (minimised, as its runs are bounded)."""

from __future__ import annotations

import binascii
import contextlib
import json
import shlex
import struct
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.fuzz.corpus import build_corpus
from phoneemu.fuzz.engine import FuzzConfig, fuzz
from phoneemu.fuzz.mutators import Mutator
from phoneemu.fuzz.targets import CommandTarget, Outcome, PythonTarget, RoundTripError

ITL = ["fuzz", "--format", "itl"]
USER = ["--target", "tests.fuzz_helpers:clean"]
SERVE = ["--serve", "--port", "0", "--time", "0.3"]  # were it run after all: briefly, on a free port


# --------------------------------------------------------------------------- 6. another mode's options
@pytest.mark.parametrize(("argv", "option"), [
    (["--target-cmd", "true {}", "--hang-after", "0.1", "--runs", "1"], "--hang-after"),
    ([*SERVE, "--hang-after", "0.1", "--runs", "1"], "--hang-after"),
    ([*USER, "--timeout", "0.1", "--runs", "1"], "--timeout"),
    (["--target", "phoneemu", "--timeout", "0.1", "--runs", "1"], "--timeout"),
    ([*SERVE, "--timeout", "0.1", "--runs", "1"], "--timeout"),
    ([*USER, "--no-round-trip", "--runs", "1"], "--no-round-trip"),
    (["--target-cmd", "true {}", "--no-round-trip", "--runs", "1"], "--no-round-trip"),
    ([*SERVE, "--no-minimize", "--runs", "1"], "--no-minimize"),
], ids=lambda a: " ".join(a) if isinstance(a, list) else a)
def test_an_option_of_another_mode_is_refused(tmp_path: Path, argv: list[str], option: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Usage error (exit 2) naming the option and the mode it belongs to; nothing is run or written."""
    out = tmp_path / "fz"
    assert main([*ITL, *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{option} is for --" in err, err
    assert not out.exists()


@pytest.mark.parametrize("extra", [["--runs", "100"], ["--time", "1"], ["--out", "zz"], ["--no-minimize"],
                                   ["--export-corpus", "e"], ["--seed", "3"], ["--run-index", "7"]])
def test_replay_refuses_the_options_of_a_fuzz_run(tmp_path: Path, extra: list[str],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """``--replay M --runs 100 --out zz`` ran M once (exit 0/1) and never created zz."""
    (tmp_path / "m.bin").write_bytes(b"\x01\x02")
    argv = [*ITL, *USER, "--replay", str(tmp_path / "m.bin"),
            *[str(tmp_path / a) if a in ("zz", "e") else a for a in extra]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--replay" in err and extra[0] in err, err
    assert not (tmp_path / "zz").exists() and not (tmp_path / "e").exists()


def test_replay_refuses_serve(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--serve --replay M`` served mutants, the replay ignored."""
    (tmp_path / "m.bin").write_bytes(b"\x01")
    assert main([*ITL, *SERVE, "--replay", str(tmp_path / "m.bin"), "--runs", "1", "--out",
                 str(tmp_path / "fz")]) == 2
    assert "--replay" in capsys.readouterr().err


def test_the_documented_defaults_are_filled_per_mode(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """--timeout 5 for a command (in its reproduce command), --hang-after 1 in process (not written: the
    default); --no-round-trip with --target phoneemu, and a replay, still work."""
    script = tmp_path / "crash.sh"
    script.write_text("#!/bin/sh\nexit 134\n")
    script.chmod(0o755)
    assert main([*ITL, "--target-cmd", f"{script} {{}}", "--runs", "1", "--no-minimize", "--out",
                 str(tmp_path / "cmd"), "-q"]) == 1
    info = json.loads(next((tmp_path / "cmd" / "crashes").glob("*/info.json")).read_text())
    argv = shlex.split(info["reproduce"])
    assert argv[argv.index("--timeout") + 1] == "5"
    assert main(argv[1:]) == 1  # the reproduce command is accepted (and still crashes)
    assert main([*ITL, "--target", "phoneemu", "--no-round-trip", "--runs", "20", "--out",
                 str(tmp_path / "own"), "-q"]) == 0
    assert main([*ITL, "--target", "tests.fuzz_helpers:crashy", "--runs", "40", "--out",
                 str(tmp_path / "user"), "-q"]) == 1
    info = json.loads(next((tmp_path / "user" / "crashes").glob("*/info.json")).read_text())
    assert "--hang-after" not in info["reproduce"] and "--timeout" not in info["reproduce"]
    capsys.readouterr()


# --------------------------------------------------------------------------- 7. qualified exception types
class ParseFailureError(Exception):
    """A user's own exception type."""


def _raise(exc: BaseException) -> None:
    raise exc


@pytest.mark.parametrize(("make", "name"), [
    (lambda: struct.unpack(">I", b"\x00"), "struct.error"),
    (lambda: binascii.a2b_base64(b"a", strict_mode=True), "binascii.Error"),
    (lambda: _raise(ParseFailureError("bad")), f"{__name__}.ParseFailureError"),
    (lambda: _raise(IndexError("x")), "IndexError"),  # a built-in: unchanged
    (lambda: _raise(RoundTripError("x")), "RoundTripError"),  # phoneemu's own: unchanged
])
def test_a_crash_names_its_exception_type_with_its_module(make: object, name: str) -> None:
    """``error at myparser.py:14`` (a struct.error) and ``Error at ...`` (a binascii.Error) told nothing."""
    assert callable(make)
    outcome = PythonTarget(lambda _d: make()).run(b"x")
    assert outcome.status == "crash" and outcome.signature.startswith(f"{name} at "), outcome.signature


# --------------------------------------------------------------------------- 8. a command's timeout
class _BoundedHangs:
    """Hangs on every input longer than 4 bytes; its runs are bounded, as a command's are."""

    bounds_own_runs = True

    def run(self, data: bytes) -> Outcome:
        if len(data) > 4:
            return Outcome(status="hang", signature="timeout (> 1 s)")
        return Outcome(status="ok")

    def session(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def close(self) -> None:
        return None


class _InProcessHangs(_BoundedHangs):
    """The same hangs in process, with no hang rule (``is_hang``): not watched, no attempt of its stopped."""

    bounds_own_runs = False


def test_a_command_timeout_is_a_hang(tmp_path: Path) -> None:
    slow = CommandTarget(["sh", "-c", "sleep 5", "{}"], workdir=tmp_path, timeout=0.2).run(b"x")
    assert slow.status == "hang" and slow.is_finding and slow.signature == "timeout (> 0.2 s)"


def test_a_bounded_targets_hang_is_minimised_an_unwatched_in_process_one_is_saved_as_found(
        tmp_path: Path) -> None:
    """A target that bounds its own runs (a command, killed at its timeout) has its hang minimised; an
    in-process one without the hang rule cannot have an attempt stopped once it hangs (an attempt could
    hang the run): saved as found, info.json's minimize_note saying why."""
    mutator = Mutator(build_corpus("itl"))
    bounded = fuzz(FuzzConfig(fmt="itl", runs=3, out=tmp_path / "b"), _BoundedHangs(), mutator)
    [f] = bounded.findings.values()
    assert f.kind == "hang" and f.count == 3 and bounded.statuses == {"hang": 3}
    assert f.minimized is not None and len(f.minimized) == 5 < len(f.data)
    in_process = fuzz(FuzzConfig(fmt="itl", runs=1, out=tmp_path / "p"), _InProcessHangs(), mutator)
    [g] = in_process.findings.values()
    assert g.minimized is None
    assert g.minimize_note is not None and g.minimize_note.startswith(
        "not minimised: an in-process hang is minimised only where an attempt is stopped once it hangs")


def test_cli_command_timeouts_count_as_hangs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Progress and summary said ``0 hang(s)`` while the timeouts piled up under crashes; exit 1."""
    script = tmp_path / "hang.sh"
    script.write_text("#!/bin/sh\nexec sleep 5\n")
    script.chmod(0o755)
    out = tmp_path / "fz"
    assert main([*ITL, "--target-cmd", f"{script} {{}}", "--timeout", "0.2", "--runs", "2", "--no-minimize",
                 "--out", str(out), "-q"]) == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["statuses"] == {"hang": 2}
    [finding] = summary["findings"]
    assert finding["kind"] == "hang" and finding["signature"] == "timeout (> 0.2 s)" and finding["count"] == 2
    assert "hang 2" in capsys.readouterr().out
