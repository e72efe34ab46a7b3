"""Audit findings: out-of-range times, non-ASCII digits, bad numeric options — each a clear,
one-line error naming where, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.errors import PhoneEmuError, ScenarioError
from phoneemu.lab.cluster import LabCluster
from phoneemu.scenario.clock import ScenarioClock
from phoneemu.scenario.loader import load_text, parse_duration
from phoneemu.values import MAX_TIME, is_ascii_digits, parse_ascii_int

SCENARIO = """\
name: far-future
reproduces: audit
phones:
  p: {count: 1}
steps:
  - boot: p
  - clock: {advance: ADVANCE}
  - expect: {phones: p, locked_out: false}
"""


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err, err
    return err.strip().splitlines()[-1]


# --------------------------------------------------------------------------- 3. times out of range
@pytest.mark.parametrize("argv", [
    ["boot", "--tftp", "127.0.0.1:9", "--mac", "001122334455", "--now", "99999999999999"],
    ["boot", "--tftp", "127.0.0.1:9", "--mac", "001122334455", "--now", "-99999999999"],
    ["predict", "x.tlv", "--now", "99999999999999999999999"],
    ["lab", "init", "/nonexistent/lab", "--now", "99999999999999"],
])
def test_now_out_of_range_is_a_usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    line = _usage_error(argv, capsys)
    assert "--now" in line and "9000-01-01" in line


def test_scenario_advance_beyond_the_clock_range_names_file_and_line() -> None:
    with pytest.raises(ScenarioError) as info:
        load_text(SCENARIO.replace("ADVANCE", "9000y"), "far.yaml")
    text = str(info.value)
    assert text.startswith("far.yaml:7 steps[1].clock.advance:") and "9000-01-01" in text
    with pytest.raises(ScenarioError):
        parse_duration(10**30)
    assert parse_duration("7000y") == 7000 * 365 * 86400


def test_scenario_advances_that_add_up_past_the_range_fail_at_their_step(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "far.yaml"
    f.write_text(SCENARIO.replace("  - clock: {advance: ADVANCE}\n",
                                  "  - clock: {advance: 5000y}\n  - clock: {advance: 5000y}\n"))
    assert main(["run", str(f)]) == 1
    out = capsys.readouterr().out
    assert f"{f}:8: clock failed" in out and "outside the supported range" in out and "internal" not in out


def test_clocks_refuse_to_leave_the_range(tmp_path: Path) -> None:
    clock = ScenarioClock(MAX_TIME - 10)
    clock.advance(10)
    with pytest.raises(PhoneEmuError, match="outside the supported range"):
        clock.advance(1)
    assert clock() == MAX_TIME
    lab = LabCluster.init(tmp_path / "lab", seed=3, key_spec="rsa1024")
    with pytest.raises(PhoneEmuError, match="lab clock"):
        lab.advance_clock(MAX_TIME)


# --------------------------------------------------------------------------- 4. ASCII digits only
@pytest.mark.parametrize("text", ["²", "٣", "12³", "\uff11\uff12", "", "-1", "+1", " 1", "1_0"])
def test_non_ascii_or_signed_digits_are_not_digits(text: str) -> None:
    assert not is_ascii_digits(text) and parse_ascii_int(text) is None


def test_ascii_digits() -> None:
    assert is_ascii_digits("0123456789") and parse_ascii_int("0069") == 69
    assert parse_ascii_int("1" * 21) is None


@pytest.mark.parametrize("port", ["²", "٦٩", "\uff16\uff19"])
@pytest.mark.parametrize("command", [["boot", "--mac", "001122334455"], ["fleet", "boot", "--count", "1"]])
def test_tftp_port_with_non_ascii_digits_is_refused(command: list[str], port: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--tftp", f"127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "port must be 1..65535" in err[0], err


def test_duration_with_non_ascii_digits_is_refused() -> None:
    for text in ("٣d", "²y", "\uff11\uff10m"):
        with pytest.raises(ScenarioError, match="expected a duration"):
            parse_duration(text)
