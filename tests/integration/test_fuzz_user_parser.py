"""Fuzzing your own parser: the current directory is importable, --reject-exc names its rejections,
--export-corpus / --seed-dir, and the regenerate command of a finding is complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.errors import EncodeError
from phoneemu.fuzz.targets import load_callable, load_exception_types
from tests.fuzz_helpers import run_line, split_line

ROOT = Path(__file__).resolve().parents[2]

PARSER = '''\
class ParseError(Exception):
    pass


def parse(data: bytes) -> None:
    if len(data) > 3 and data[3] & 1:
        raise KeyError("the bug")
    if data[:1] == b"\\x01":
        raise ParseError("bad version")
    raise ValueError("rejected")
'''


@pytest.fixture
def parser_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``tmp_path`` holding ``myparser.py``, made the current folder, off the import path; no ``myparser``
    module imported before the test nor left after it (was left: a later test of this worker importing its
    own ``myparser``, test_fuzz_regenerate.py's, fuzzed this folder's)."""
    (tmp_path / "myparser.py").write_text(PARSER)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    sys.modules.pop("myparser", None)
    try:
        yield tmp_path
    finally:
        sys.modules.pop("myparser", None)


def test_a_module_in_the_current_directory_loads(parser_dir: Path) -> None:
    func = load_callable("myparser:parse")
    with pytest.raises(ValueError):
        func(b"\x00\x00\x00\x00")
    types = load_exception_types("ValueError, myparser.ParseError,myparser:ParseError")
    assert types[0] is ValueError and types[1].__name__ == "ParseError" and types[1] is types[2]


@pytest.mark.parametrize(("spec", "words"), [
    ("", "name at least one"),
    ("NoSuchError", "cannot load"),
    ("os.path", "not an exception class"),
    ("Exception", "every crash as a rejection"),
])
def test_bad_reject_exc_is_a_usage_error(spec: str, words: str) -> None:
    with pytest.raises(EncodeError, match=words):
        load_exception_types(spec)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "phoneemu", "fuzz", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_reject_exc_makes_only_other_exceptions_crashes(parser_dir: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The fuzz runs in this process, from the parser's folder (not on the import path: the run puts it
    there, as ``python -m`` would; a child interpreter each cost ~0.6 s of CPU); its printed regenerate
    command runs as printed, by a shell."""
    out = parser_dir / "fz"
    rc = main(["fuzz", "--format", "sgn", "--target", "myparser:parse", "--reject-exc",
               "ValueError,myparser.ParseError", "--runs", "80", "--seed", "3", "--no-minimize",
               "--out", str(out), "-q"])
    assert rc == 1, capsys.readouterr().err
    (crash,) = (out / "crashes").iterdir()  # KeyError only: ValueError and ParseError are rejections
    info = json.loads((crash / "info.json").read_text())
    assert info["signature"].startswith("KeyError at myparser.py:")
    folder, regen = split_line(info["regenerate"])
    assert folder == parser_dir.resolve()  # myparser is this folder's: the command goes there first
    assert regen[regen.index("--reject-exc") + 1] == "ValueError,myparser.ParseError"
    assert regen[regen.index("--regenerate") + 1] == str(crash / "regenerated")
    again = run_line(info["regenerate"], cwd=parser_dir)
    assert again.returncode == 1, again.stderr
    # into crashes/<id>/regenerated/ itself (was regenerated/crashes/<id>/input.bin)
    assert {p.name for p in (crash / "regenerated").iterdir()} == {"input.bin", "minimized.bin", "info.json"}
    assert (crash / "regenerated" / "input.bin").read_bytes() == (crash / "input.bin").read_bytes()
    # without --reject-exc every exception of a user's parser is a crash
    rc = main(["fuzz", "--format", "sgn", "--target", "myparser:parse", "--runs", "20", "--no-minimize",
               "--out", str(parser_dir / "all"), "-q"])
    assert rc == 1
    kinds = {json.loads((d / "info.json").read_text())["signature"].split()[0]
             for d in (parser_dir / "all" / "crashes").iterdir()}
    assert "ValueError" in kinds


def test_export_corpus_then_seed_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    exported = tmp_path / "seeds"
    assert main(["fuzz", "--format", "itl", "--export-corpus", str(exported)]) == 0
    names = sorted(p.name for p in exported.iterdir())
    assert "00-full.tlv" in names and "signer.pem" in names and "recipient.key" in names
    assert (exported / "recipient.key").stat().st_mode & 0o077 == 0
    capsys.readouterr()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "cluster-ITLFile.tlv").write_bytes((exported / "00-full.tlv").read_bytes()[:-7] + b"\x00" * 7)
    again = tmp_path / "b"
    assert main(["fuzz", "--format", "itl", "--seed-dir", str(mine), "--export-corpus", str(again)]) == 0
    assert "4 seed file(s)" in capsys.readouterr().out
    assert (tmp_path / "b" / "03-cluster-ITLFile.tlv").exists()
    assert main(["fuzz", "--format", "itl", "--target", "phoneemu", "--seed-dir", str(mine),
                 "--runs", "30", "--out", str(tmp_path / "fz"), "-q"]) == 0
    assert main(["fuzz", "--format", "itl", "--seed-dir", str(tmp_path / "none"), "--export-corpus",
                 str(tmp_path / "c")]) == 2


def test_reject_exc_with_the_phoneemu_target_is_refused(tmp_path: Path) -> None:
    assert main(["fuzz", "--format", "itl", "--target", "phoneemu", "--reject-exc", "ValueError",
                 "--runs", "1", "--out", str(tmp_path)]) == 2
    assert main(["fuzz", "--format", "itl", "--runs", "1", "--out", str(tmp_path)]) == 2


@pytest.mark.parametrize(("module", "words"), [
    ("def parse(b) pass\n", "SyntaxError"),
    ("raise RuntimeError('boom')\n", "RuntimeError: boom"),
    ("raise SystemExit(3)\n", "SystemExit: 3"),
])
def test_a_target_module_that_fails_to_import_is_a_usage_error(parser_dir: Path, module: str,
                                                                words: str) -> None:
    (parser_dir / "broken.py").write_text(module)
    sys.modules.pop("broken", None)
    with pytest.raises(EncodeError, match=words):
        load_callable("broken:parse")
    sys.modules.pop("broken", None)
    with pytest.raises(EncodeError, match=words):
        load_exception_types("broken.ParseError")
    sys.modules.pop("broken", None)


@pytest.mark.parametrize(("spec", "words"), [
    ("..x", "cannot load"),                      # a relative name: TypeError from importlib
    ("KeyboardInterrupt", "Ctrl-C must stop"),   # would swallow Ctrl-C as a rejection
    ("ValueError,GeneratorExit", "not an error a parser raises"),
])
def test_reject_exc_refuses_relative_names_and_non_errors(spec: str, words: str) -> None:
    with pytest.raises(EncodeError, match=words):
        load_exception_types(spec)
    with pytest.raises(EncodeError, match="cannot load target"):
        load_callable("..x:parse")


def test_fuzz_cli_import_failure_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def parse(b) pass\n")
    r = _cli("--format", "itl", "--target", "broken:parse", "--runs", "1", "--out", "o", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_export_corpus_refuses_a_file_and_replaces_links(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    assert main(["fuzz", "--format", "itl", "--export-corpus", str(tmp_path / "afile")]) == 2
    out = tmp_path / "exp"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (out / "recipient.key").symlink_to(victim)
    assert main(["fuzz", "--format", "itl", "--export-corpus", str(out)]) == 0
    assert victim.read_text() == "keep" and not (out / "recipient.key").is_symlink()
    assert (out / "recipient.key").stat().st_mode & 0o777 == 0o600


def test_seed_dir_skips_devices_fifos_and_folders_and_caps_its_size(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from phoneemu.fuzz import corpus as corpus_mod
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "zero").symlink_to("/dev/zero")
    os.mkfifo(seeds / "fifo")
    (seeds / "sub").mkdir()
    (seeds / "a.tlv").write_bytes(b"\x01" * 100)
    (seeds / "b.tlv").write_bytes(b"\x02" * 100)
    base = corpus_mod.build_corpus("itl")
    got = corpus_mod.with_seed_files(base, seeds)
    assert got.names[len(base.names):] == ("a.tlv", "b.tlv")
    monkeypatch.setattr(corpus_mod, "MAX_SEED_TOTAL", 150)
    with pytest.raises(EncodeError, match=r"more than 150 bytes \(reached at b\.tlv"):
        corpus_mod.with_seed_files(base, seeds)
    monkeypatch.setattr(corpus_mod, "MAX_SEED_FILES", 1)
    with pytest.raises(EncodeError, match="2 files, more than 1"):
        corpus_mod.with_seed_files(base, seeds)
