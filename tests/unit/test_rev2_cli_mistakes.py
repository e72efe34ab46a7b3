"""Review of the command-line mistake hints (phoneemu.commands._mistakes): the words are read as argparse
reads them (an abbreviated option, ``--option=VALUE``), so a correct command line is never refused and no
hint names an option already given; a hint's command line is one that parses; a word of thousands of digits
is no traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from phoneemu.cli import main
from tests.helpers import lab_template
from tests.parser_helpers import fake_lab_folder as _lab_folder
from tests.parser_helpers import usage_error_line as _usage_error

template = lab_template("rev2-mistakes", seed=53, phones={})




def test_an_abbreviated_option_before_the_lab_folder_runs(template: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """``lab regenerate --no UNIX LAB tvs`` is argparse's ``--now UNIX`` (an abbreviation): the operation runs
    (was: refused, 'LAB: not a lab cluster; LAB is a lab cluster, and the lab folder comes first: ... --no
    LAB UNIX tvs', the option's value read as the first operand)."""
    from phoneemu.lab.cluster import LabCluster

    lab = tmp_path / "lab"
    shutil.copytree(template, lab)
    before = LabCluster.open(lab).state.generation
    assert main(["lab", "regenerate", "--no", "1900000000", str(lab), "tvs"]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.startswith(f"generation {before + 1}; ")
    assert LabCluster.open(lab).state.clock == 1900000000


def test_an_option_given_abbreviated_is_not_suggested_again(capsys: pytest.CaptureFixture[str]) -> None:
    """``--cou 5`` is ``--count 5``: a stray word is not suggested as a second --count (was: '(did you mean
    --count 5 --count 7?)', the value of the option given taken for a word of its own)."""
    line = _usage_error(capsys, ["fleet", "boot", "--tftp", "127.0.0.1:6969", "--cou", "5", "7"])
    assert line == "phoneemu fleet boot: error: unrecognized arguments: 7"


@pytest.mark.parametrize(("argv", "said"), [
    (["fleet", "boot", "--tftp=cucm.example", "6969"],  # was: (did you mean --count 6969?)
     "phoneemu fleet boot: error: unrecognized arguments: 6969 (did you mean --tftp cucm.example:6969?)"),
    (["boot", "--tftp=::1", "6969"],
     "phoneemu boot: error: unrecognized arguments: 6969 (did you mean --tftp '[::1]:6969'?)"),
])
def test_a_port_after_an_address_given_with_equals(argv: list[str], said: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert _usage_error(capsys, argv) == said


def test_no_lab_first_line_that_would_fail_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A usage error whose operands do not fit however ordered: no 'comes first' command line (was: one with
    the extra word still in it, refused again; and, for ``lab digest``, the whole line with its
    ``--password`` said back though the error was the missing --mac)."""
    lab = str(_lab_folder(tmp_path))
    line = _usage_error(capsys, ["lab", "tamper", "ITLFile.tlv", lab, "--offset", "-1", "extra"])
    assert line == "phoneemu lab tamper: error: unrecognized arguments: extra"
    line = _usage_error(capsys, ["lab", "digest", "x", lab, "--user", "u", "--password", "hunter2"])
    assert line == "phoneemu lab digest: error: the following arguments are required: --mac"


@pytest.mark.parametrize("argv", [
    ["boot", "--tftp", "127.0.0.1", "9" * 5000],  # a port after an address
    ["fleet", "boot", "--tftp", "127.0.0.1:6969", "9" * 5000],  # a count
])
def test_a_word_of_thousands_of_digits_is_no_traceback(argv: list[str],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """int() refuses more than 4,300 digits (ValueError): was a traceback instead of the usage error."""
    assert "did you mean" not in _usage_error(capsys, argv)
