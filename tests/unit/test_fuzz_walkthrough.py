"""``phoneemu fuzz`` as a demanding user drives it: two runs into one ``--out``, a ``--target-cmd`` that reads
its standard input or is written with shell syntax, core dumps of a crashing command, a run resumed where
the last one ended, a refused target leaving no ``--out`` behind."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.errors import EncodeError
from phoneemu.fuzz.targets import CommandTarget

REPO = Path(__file__).resolve().parents[2]
ITL = ["fuzz", "--format", "itl", "-q"]


# --------------------------------------------------------------------------- one run per --out
def test_two_command_targets_in_one_folder_each_have_their_own_input(tmp_path: Path) -> None:
    """Two runs' command targets in one work folder wrote one ``input.tlv``: each ran the other's input,
    and the first closed removed it under the second."""
    first = CommandTarget("true {}", workdir=tmp_path / ".work", suffix=".tlv")
    second = CommandTarget("true {}", workdir=tmp_path / ".work", suffix=".tlv")
    assert first.path != second.path and first.path.suffix == second.path.suffix == ".tlv"
    first.close()
    assert second.path.exists() and second.run(b"x").status == "ok"
    second.close()
    assert list((tmp_path / ".work").iterdir()) == []


def _wait_for(path: Path, proc: subprocess.Popen[str], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert path.exists(), proc.communicate(timeout=30)


def test_a_second_run_into_an_out_folder_in_use_is_refused(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A run into the ``--out`` of a run under way is a usage error (exit 2) naming the folder; the first
    run goes on and ends with its own summary.json (was: the second ran, removed the first's input file as
    it ended, and the first stopped with "No such file or directory", exit 2, no summary.json)."""
    out, started, go_on = tmp_path / "fz", tmp_path / "started", tmp_path / "go-on"
    # waits (at most 30 s) for go-on at its first input, then goes through its inputs at once
    waiting = (f"touch {started}; i=0; while [ ! -e {go_on} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); "
               "done")
    first = subprocess.Popen(
        [sys.executable, "-m", "phoneemu", *ITL, "--target-cmd", f"sh -c '{waiting}' {{}}", "--runs", "3",
         "--seed", "1", "--no-minimize", "--out", str(out)],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(started, first)
        rc = main([*ITL, "--target-cmd", "true {}", "--runs", "2", "--seed", "2", "--out", str(out)])
        err = capsys.readouterr().err
        assert rc == 2 and "another phoneemu fuzz run is writing into this folder" in err, err
        assert "--out" in err and str(out) in err
        go_on.touch()
        _, first_err = first.communicate(timeout=60)
    finally:
        go_on.touch()
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 0, first_err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 1 and summary["execs"] == 3 and summary["statuses"] == {"ok": 3}
    assert not (out / ".work").exists()


@contextlib.contextmanager
def _held_by_another_run(folder: Path) -> Iterator[None]:
    """``folder`` locked as a fuzz run under way in another process holds it (an ``flock`` on the folder)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        code = ("import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); "
                "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()")
        holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout is not None and holder.stdout.readline() == "held\n"
            yield
        finally:
            holder.communicate(input="", timeout=30)
    finally:
        os.close(fd)


def test_serving_into_an_out_folder_in_use_is_refused(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """``--serve`` too: its ``served/`` files and log would be mixed with the other run's."""
    out = tmp_path / "fz"
    out.mkdir()
    with _held_by_another_run(out):
        rc = main([*ITL, "--serve", "--port", "0", "--time", "0.2", "--runs", "1", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "another phoneemu fuzz run is writing into this folder" in err, err
    assert list(out.iterdir()) == []  # neither served/ nor summary.json written into the other's folder


# --------------------------------------------------------------------------- --target-cmd without a shell
def test_a_command_reading_its_standard_input_gets_the_input_there(tmp_path: Path) -> None:
    """``CMD < {}``: the input on the command's standard input (was: ``<`` and the path passed as its
    arguments, stdin empty: every input looked alike to it)."""
    reads = CommandTarget("sh -c 'test \"$(cat)\" = data' < {}", workdir=tmp_path / "w")
    assert reads.run(b"data").status == "ok" and reads.run(b"other").status == "handled"
    assert reads.argv == ["sh", "-c", 'test "$(cat)" = data']  # the path is not appended: stdin is the input
    reads.close()
    glued = CommandTarget(["sh", "-c", 'test "$(cat)" = "$0"', "{}", "<{}"], workdir=tmp_path / "w")
    assert glued.run(str(glued.path).encode()).status == "ok"
    glued.close()


@pytest.mark.parametrize("command", ["./parse {} > /dev/null", "./parse {} 2>&1", "./parse {} | head",
                                     "./parse {} && echo ok", "./parse {}; true", "./parse < {} < {}",
                                     "./parse {} &", "./parse <in.tlv", "./parse {}>/dev/null",
                                     "./parse {}|head"])
def test_shell_syntax_in_a_target_command_is_refused(command: str) -> None:
    with pytest.raises(EncodeError, match="is shell syntax, but the command runs without a shell"):
        CommandTarget(command, workdir=Path("/nonexistent/never-made"))


@pytest.mark.parametrize("command", ["true --sep=| {}", "true --url=http://h/?a=1&b=2 {}",
                                     "sh -c 'cat \"$0\" > /dev/null' {}", "true {}.d"])
def test_words_that_only_hold_shell_characters_are_arguments(command: str, tmp_path: Path) -> None:
    CommandTarget(command, workdir=tmp_path / "w").close()


@pytest.mark.parametrize(("program", "said"), [("./no-such-parser", "no such file"),
                                               ("no-such-parser-anywhere", "no such program on PATH"),
                                               ("./not-executable", "not an executable file")])
def test_a_target_command_that_cannot_run_is_refused_before_the_run(
        program: str, said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Said naming ``--target-cmd`` and the program, exit 2, no ``--out`` left (was: ``./nope: No such file
    or directory`` at the first input, an empty ``--out`` left behind)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not-executable").write_text("#!/bin/sh\n")
    rc = main([*ITL, "--target-cmd", f"{program} {{}}", "--runs", "1", "--out", "fz"])
    err = capsys.readouterr().err
    assert rc == 2 and f"--target-cmd '{program} {{}}': {program}: {said}" in err, err
    assert not (tmp_path / "fz").exists()


def test_a_refused_target_command_says_so_once_and_leaves_no_out(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """One line naming ``--target-cmd`` once (was: ``--target-cmd: --target-cmd '...'``), exit 2, and the
    ``--out`` it made removed again (was: left empty, as for any refused target)."""
    out = tmp_path / "fz"
    rc = main([*ITL, "--target-cmd", "cat {} > /dev/null", "--runs", "1", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].count("--target-cmd") == 1 and "'>'" in err[0], err
    assert not out.exists()


def test_a_target_that_does_not_load_leaves_no_out(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fz"
    rc = main([*ITL, "--target", "no_such_parser_module:parse", "--runs", "1", "--out", str(out)])
    assert rc == 2 and "cannot load target" in capsys.readouterr().err
    assert not out.exists()


# --------------------------------------------------------------------------- core dumps
def test_commands_fuzzed_dump_no_core_but_a_replay_may(tmp_path: Path) -> None:
    """In the fuzz loop (and its minimising) a crashing command dumps no core: one per crash filled the
    working folder; the limit is given back after, so ``--replay`` leaves a core to debug when allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_CORE)
    if hard == 0:
        pytest.skip("core dumps are not allowed here at all")
    allowed = hard if hard != resource.RLIM_INFINITY else 1 << 30
    resource.setrlimit(resource.RLIMIT_CORE, (allowed, hard))
    try:
        says_limit = CommandTarget(["sh", "-c", "ulimit -c >&2; exit 200", "{}"], workdir=tmp_path / "w")
        with says_limit.session():
            fuzzed = says_limit.run(b"x")
        replayed = says_limit.run(b"x")
        says_limit.close()
        assert fuzzed.status == "crash" and fuzzed.detail.strip() == "0", fuzzed
        assert replayed.detail.strip() != "0" and resource.getrlimit(resource.RLIMIT_CORE) == (allowed, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_CORE, (soft, hard))


# --------------------------------------------------------------------------- going on where a run ended
def test_summary_json_says_where_to_go_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """summary.json has the run's first run index and the next one (``--run-index`` to go on with)."""
    out = tmp_path / "fz"
    rc = main([*ITL, "--target", "phoneemu", "--runs", "5", "--seed", "3", "--run-index", "7",
               "--out", str(out)])
    capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    assert rc == 0 and summary["first_run_index"] == 7 and summary["next_run_index"] == 12
