"""``--capf-in-progress-seconds`` (``boot``, ``fleet boot``) and the profile field it sets take fractions of
a second, 0.25..3600 (ours, spec §F.6): a rehearsal against a short CAPF read timeout then takes a second,
not several. Before, only 1..3600 was taken (0.25 and 0.5 were usage errors)."""

from __future__ import annotations

import functools

import pytest

from phoneemu.cli import build_parser
from phoneemu.commands.boot import capf_keygen_overrides
from phoneemu.errors import ScenarioError
from phoneemu.phone.profile import profile_from_dict

COMMANDS = {"boot": ["boot", "--tftp", "127.0.0.1", "--mac", "0A00000000D9"],
            "fleet boot": ["fleet", "boot", "--count", "1", "--tftp", "127.0.0.1"]}

_parser = functools.cache(build_parser)


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("value", ["0.25", "0.5", "1.75"])
def test_a_fraction_of_a_second_is_taken(command: str, value: str) -> None:
    args = _parser().parse_args([*COMMANDS[command], "--capf-in-progress-seconds", value])
    assert capf_keygen_overrides(args) == {"capf_in_progress_seconds": float(value)}


@pytest.mark.parametrize("value", ["0.2", "0.01"])
def test_below_a_quarter_second_is_a_usage_error_naming_the_range(value: str,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        _parser().parse_args([*COMMANDS["boot"], "--capf-in-progress-seconds", value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"'{value}'" in err and "must be 0 (none) or 0.25..3600" in err, err


def test_the_profile_field_takes_the_same_range() -> None:
    assert profile_from_dict("cp-8861", {"capf_in_progress_seconds": 0.25}).capf_in_progress_seconds == 0.25
    with pytest.raises(ScenarioError, match=r"0 \(none\) or 0\.25\.\.3600") as info:
        profile_from_dict("cp-8861", {"capf_in_progress_seconds": 0.24})
    assert info.value.path == "capf_in_progress_seconds"


def test_the_help_says_fractions_are_allowed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["boot", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "else 0.25..3600, fractions allowed" in help_text, help_text
