"""Every ``--help`` reads as terminal text: no reStructuredText literals, no tracker references, and
examples where a command takes more than a directory."""

from __future__ import annotations

import argparse

import pytest

from phoneemu.cli import build_parser, main
from tests.helpers import cli_parsers


def test_no_rst_literals_or_issue_references_in_any_help() -> None:
    seen = 0
    for name, p in cli_parsers(build_parser()):
        text = p.format_help()
        assert "``" not in text, name
        assert "issue #" not in text, name
        seen += 1
    assert seen > 30


def test_commands_and_lab_operations_show_examples() -> None:
    quiet = {"phoneemu fleet", "phoneemu lab phone"}  # groups of one action, whose help has examples
    for name, p in cli_parsers(build_parser()):
        if name in quiet:
            continue
        assert "example" in p.format_help(), name


def _arguments(p: argparse.ArgumentParser) -> list[argparse.Action]:
    """The options and positional arguments of ``p`` (not -h, not its sub-command choice)."""
    return [a for a in p._actions
            if not isinstance(a, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction))]


def test_every_option_and_argument_says_what_it_does() -> None:
    """An option or positional argument listed with no text (``lab show --itl``, ``run --color``,
    ``lab tvs-ttl DIR seconds``, ``inspect FILE`` ...) leaves the user guessing."""
    bare = [f"{name} {'/'.join(a.option_strings) or a.metavar or a.dest}"
            for name, p in cli_parsers(build_parser()) for a in _arguments(p) if not a.help]
    assert not bare


def test_every_option_with_a_default_says_it() -> None:
    """An option whose value is not "absent" by default states that default in its help."""
    silent = [f"{name} {'/'.join(a.option_strings)}" for name, p in cli_parsers(build_parser())
              for a in _arguments(p) if a.option_strings and a.default not in (None, False, [])
              and "default" not in str(a.help)]
    assert not silent


def test_durations_say_their_unit() -> None:
    """A value shown as S or SECONDS is a number of seconds, and the help says so (``fleet boot
    --timeout S`` said "TFTP timeout per packet (default 2)"); S is not used for anything else
    (``fuzz --seed S`` was a seed)."""
    wrong = [f"{name} {'/'.join(a.option_strings) or a.dest}" for name, p in cli_parsers(build_parser())
             for a in _arguments(p) if a.metavar in ("S", "SECONDS") and "second" not in str(a.help)]
    assert not wrong


def test_an_unknown_option_is_reported_by_the_sub_command_given(capsys: pytest.CaptureFixture[str]) -> None:
    """With the sub-command's name and usage, not the top-level ``usage: phoneemu [-h] COMMAND ...``."""
    from phoneemu.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["lab", "init", "/nonexistent", "--phones", "200"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: phoneemu lab init" in err
    assert err.rstrip().endswith("phoneemu lab init: error: unrecognized arguments: --phones 200")
    with pytest.raises(SystemExit):
        main(["--bogus"])
    assert "phoneemu: error: unrecognized arguments: --bogus" in capsys.readouterr().err


def test_version_names_phoneemu_and_both_openssl_builds(capsys: pytest.CaptureFixture[str]) -> None:
    """A CI log or a bug report says what ran: TLS comes from Python's ssl, signatures from cryptography
    (two OpenSSL builds, often of different versions)."""
    import ssl

    import cryptography

    from phoneemu import __version__
    from phoneemu.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"phoneemu {__version__} (Python ")
    assert f"{ssl.OPENSSL_VERSION} for TLS" in out and f"cryptography {cryptography.__version__} with " in out


@pytest.mark.parametrize(("argv", "hint"), [
    (["boot", "--flsh", "/tmp/x"], "(did you mean --flash?)"),
    (["bot"], "(did you mean boot?)"),
    (["lab", "regnerate", "/tmp/x"], "(did you mean regenerate?)"),
    (["fleet", "boot", "--count", "3", "--tfpt", "x"], "(did you mean --tftp?)"),
    (["lab", "secure-urls", "/tmp/x", "htps"], "(did you mean https?)"),
])
def test_a_usage_error_suggests_the_nearest_option_or_choice(argv: list[str], hint: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert capsys.readouterr().err.rstrip().endswith(hint)


def test_nothing_near_suggests_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["boot", "--zzzzzz"])
    assert "did you mean" not in capsys.readouterr().err
