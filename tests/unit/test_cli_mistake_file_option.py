"""An option that takes a FILE, given as a flag (``--json`` takes a file for ``run`` and ``fleet boot``, but
is a flag for every other command), gets a hint naming the file it wants, not only argparse's "expected one
argument" (phoneemu.commands._mistakes)."""

from __future__ import annotations

import pytest

from tests import parser_helpers
from tests.parser_helpers import usage_error_line as _usage_error

one_parser = parser_helpers.one_parser()


@pytest.mark.parametrize(("argv", "said"), [
    (["run", "x.yaml", "--json"],
     "phoneemu run: error: argument --json: expected one argument (--json takes a FILE here: --json "
     "report.json)"),
    (["fleet", "boot", "--lab", "lab", "--count", "5", "--json"],
     "phoneemu fleet boot: error: argument --json: expected one argument (--json takes a FILE here: --json "
     "report.json)"),
    (["run", "--json", "-v", "x.yaml"],  # no report written: --junit given none
     "phoneemu run: error: argument --json: expected one argument (--json takes a FILE here: --json "
     "report.json)"),
    (["run", "x.yaml", "--junit"],
     "phoneemu run: error: argument --junit: expected one argument (--junit takes a FILE here: --junit "
     "report.xml)"),
    (["predict", "--flash", "ph1", "--json-file"],
     "phoneemu predict: error: argument --json-file: expected one argument (--json-file takes a FILE here: "
     "--json-file report.json)"),
    (["boot", "--keylog"],
     "phoneemu boot: error: argument --keylog: expected one argument (--keylog takes a FILE here: --keylog "
     "FILE)"),
])
def test_a_file_option_given_as_a_flag_says_it_takes_a_file(argv: list[str], said: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert _usage_error(capsys, argv) == said


@pytest.mark.parametrize(("argv", "said"), [
    (["boot", "--tftp"], "phoneemu boot: error: argument --tftp: expected one argument"),
    (["fleet", "boot", "--count"], "phoneemu fleet boot: error: argument --count: expected one argument"),
])
def test_an_option_taking_no_file_gets_no_file_hint(argv: list[str], said: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert _usage_error(capsys, argv) == said
