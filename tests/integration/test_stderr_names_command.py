"""Every line a command writes on stderr starts with the command as typed (``phoneemu fleet boot: ...``),
a message's further lines indented (:mod:`phoneemu.cli` rules), so a CI log can be grepped by command.
Before, the commands' own lines said ``fleet:``, ``boot:``, ``replay: warning:``, or nothing
(``warning: regenerating the ITLRecovery certificate ...``)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.cli import main
from phoneemu.commands._said import stderr_text

MAC = "0A00000000F1"
KEY = "00112233445566778899aabbccddeeff"


def _said_by(err: str, command: str) -> None:
    """Each line of ``err`` is said by ``command`` or continues the line before it (indented)."""
    lines = err.splitlines()
    assert lines, f"{command}: nothing on stderr"
    for line in lines:
        assert line.startswith(f"{command}: ") or line.startswith("  "), (command, line)


def _empty_pcap(path: Path) -> Path:
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
    return path


def test_each_commands_stderr_lines_start_with_the_command_as_typed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = tmp_path / "lab"
    assert main(["lab", "init", str(lab), "--key", "rsa1024"]) == 0
    capsys.readouterr()
    keys = tmp_path / "empty.keys"
    keys.write_text("")
    capture = _empty_pcap(tmp_path / "empty.pcap")
    runs: list[tuple[list[str], str, int]] = [
        # a warning (a manual key for a model without one); CUCM's warning before ITLRecovery is regenerated
        (["lab", "phone", "add", str(lab), "--mac", MAC, "--encrypt", "symmetric", "--symmetric-key", KEY],
         "phoneemu lab phone add", 0),
        (["lab", "regenerate", str(lab), "itlrecovery"], "phoneemu lab regenerate", 0),
        # the address taken from the lab, then why nothing answered (the lab's own TFTP port, loopback)
        (["boot", "--lab", str(lab), "--mac", MAC, "--timeout", "0.05", "--no-http", "--json"],
         "phoneemu boot", 1),
        (["fleet", "boot", "--lab", str(lab), "--mac-start", MAC, "--count", "1", "--shards", "1", "-q",
          "--no-http", "--timeout", "0.05", "--retries", "0"], "phoneemu fleet boot", 1),
        (["replay", str(capture), "--list", "--keylog", str(keys)], "phoneemu replay", 0),
        (["inspect", str(capture)], "phoneemu inspect", 2),
        (["phone", "show", "--flash", str(tmp_path / "no-flash")], "phoneemu phone show", 2),
        (["fleet", "boot", "--count", "1", "--tftp", "127.0.0.1:9", "--installed-config-dir",
          str(tmp_path / "missing")], "phoneemu fleet boot", 2),
    ]
    for argv, command, rc in runs:
        assert main(argv) == rc, (argv, capsys.readouterr().err)
        _said_by(capsys.readouterr().err, command)


SCENARIO = """\
reproduces: spec G.2
phones:
  p: {mac: 0B00000000F1}
steps:
  - boot: p
  - expect: {phones: p, label: first, config: accepted}
"""


def test_runs_internal_error_is_said_by_run_with_its_traceback_indented(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug inside a scenario (an exception not ours) is an ERROR and the run goes on; its traceback on
    stderr was printed raw (``Traceback (most recent call last):`` at the start of a line)."""
    from phoneemu.scenario import runner

    def broken(world: object, exp: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(runner, "_evaluate", broken)
    f = tmp_path / "s.yaml"
    f.write_text(SCENARIO)
    assert main(["run", str(f)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("phoneemu run: scenario s: internal error:\n  Traceback (most recent call last):")
    assert "  RuntimeError: a bug" in err
    _said_by(err, "phoneemu run")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_a_message_of_several_lines_keeps_one_command_and_stays_on_its_lines(text: str) -> None:
    """Its first line said by the command, each further one indented; nothing raw (a control character
    from a file name is escaped, so a line break is the message's own)."""
    out = stderr_text("phoneemu run", text)
    lines = out.split("\n")
    assert lines[0].startswith("phoneemu run: ")
    assert all(line.startswith("  ") for line in lines[1:])
    assert len(lines) == text.count("\n") + 1
    assert all(c.isprintable() for line in lines for c in line)
