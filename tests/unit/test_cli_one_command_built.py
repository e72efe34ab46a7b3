"""``phoneemu CMD ...`` builds only CMD's parser (start-up time); ``--help``, no command or a mistyped one
get every command, as before."""

from __future__ import annotations

import subprocess
import sys

import pytest

from phoneemu import cli

_IMPORTED = """
import sys
from phoneemu.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(' '.join(sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('phoneemu.commands.')
                      and m.rsplit('.', 1)[1] in {names!r})), file=sys.stderr)
"""


def _commands_imported(argv: list[str]) -> set[str]:
    """The command modules a fresh interpreter imported to run ``phoneemu ARGV``."""
    code = _IMPORTED.format(names=set(cli._COMMAND_MODULES))
    done = subprocess.run([sys.executable, "-c", code, *argv], check=True, capture_output=True,
                          text=True, timeout=60)
    return set(done.stderr.strip().splitlines()[-1].split())


def test_a_command_named_first_imports_only_its_own_module() -> None:
    assert _commands_imported(["inspect", "--help"]) == {"inspect"}


@pytest.mark.parametrize("argv", [["--help"], ["ispect"]])
def test_help_and_a_mistyped_command_build_every_command(argv: list[str]) -> None:
    assert _commands_imported(argv) == set(cli._COMMAND_MODULES)


def test_the_one_command_parser_parses_as_the_whole_one() -> None:
    argv = ["boot", "--tftp", "127.0.0.1:9", "--mac", "SEP001122334455"]
    alone, whole = cli.build_parser("boot").parse_args(argv), cli.build_parser().parse_args(argv)
    assert {k: v for k, v in vars(alone).items() if k not in {"handler", "parser_used"}} == \
        {k: v for k, v in vars(whole).items() if k not in {"handler", "parser_used"}}
    assert alone.parser_used.prog == whole.parser_used.prog == "phoneemu boot"


def test_a_mistyped_command_is_still_told_the_nearest_one(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["ispect", "x"])
    assert exited.value.code == 2
    assert "did you mean inspect?" in capsys.readouterr().err
