"""An ambiguous option prefix gets no hint that picks one of its matches (phoneemu.commands._mistakes):
argparse's message already names every match, and the value after the prefix cannot tell which was meant
(``fleet boot --co 3`` said ``did you mean --count 3?`` though ``--concurrency 3`` fits as well)."""

from __future__ import annotations

import pytest

from tests import parser_helpers
from tests.parser_helpers import usage_error_line

one_parser = parser_helpers.one_parser()


@pytest.mark.parametrize("prefix", [["--co", "3"], ["--co=3"]])
def test_an_ambiguous_prefix_names_every_match_and_suggests_none(
        prefix: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    line = usage_error_line(capsys, ["fleet", "boot", *prefix, "--tftp", "127.0.0.1:6969"])
    assert line.startswith(f"phoneemu fleet boot: error: ambiguous option: {prefix[0]} could match "), line
    assert "--count" in line and "--concurrency" in line, line
    assert "did you mean" not in line, line


def test_a_count_alone_still_gets_its_hint(capsys: pytest.CaptureFixture[str]) -> None:
    """The hint this leaves alone: a count given without its option (``fleet boot 3``)."""
    line = usage_error_line(capsys, ["fleet", "boot", "--tftp", "127.0.0.1:6969", "3"])
    assert line.endswith("(did you mean --count 3?)"), line
