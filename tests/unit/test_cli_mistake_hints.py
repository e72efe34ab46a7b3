"""Natural command-line mistakes of a newcomer get a hint, not a puzzle (phoneemu.commands._mistakes): a word
where an option was expected is suggested as that option (``boot 127.0.0.1:6969`` -> ``--tftp
127.0.0.1:6969``), a port given as a word of its own is joined to its address, and a lab operation given its
lab folder after another operand says so with the command line to type. Exit status 2 and the ``phoneemu
CMD`` prefix as every other usage error."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from tests import parser_helpers
from tests.helpers import lab_template
from tests.parser_helpers import fake_lab_folder as _lab_folder
from tests.parser_helpers import usage_error_line as _usage_error

one_parser = parser_helpers.one_parser()
template = lab_template("mistakes", seed=47, phones={})



def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """The one line of the error ``argv``'s command says (exit 2)."""
    assert main(argv) == 2, argv
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.rstrip()



# ------------------------------------------------------------------ a word where an option was expected
@pytest.mark.parametrize(("argv", "said"), [
    (["boot", "127.0.0.1:6969", "--mac", "0A0000000001"],
     "phoneemu boot: error: unrecognized arguments: 127.0.0.1:6969 (did you mean --tftp 127.0.0.1:6969?)"),
    (["fleet", "boot", "127.0.0.1:6969", "--count", "3"],
     "phoneemu fleet boot: error: unrecognized arguments: 127.0.0.1:6969 (did you mean --tftp "
     "127.0.0.1:6969?)"),
    (["boot", "--tftp", "127.0.0.1", "6969", "--mac", "0A0000000001"],
     "phoneemu boot: error: unrecognized arguments: 6969 (did you mean --tftp 127.0.0.1:6969?)"),
    (["boot", "--tftp", "::1", "6969"],
     "phoneemu boot: error: unrecognized arguments: 6969 (did you mean --tftp '[::1]:6969'?)"),
    (["fleet", "boot", "--tftp", "cucm.example", "6969"],  # a port word: not --count 6969
     "phoneemu fleet boot: error: unrecognized arguments: 6969 (did you mean --tftp cucm.example:6969?)"),
    (["fleet", "boot", "50", "--tftp", "127.0.0.1:6969"],
     "phoneemu fleet boot: error: unrecognized arguments: 50 (did you mean --count 50?)"),
    (["boot", "--tftp", "127.0.0.1:6969", "SEP0A0000000001"],
     "phoneemu boot: error: unrecognized arguments: SEP0A0000000001 (did you mean --mac SEP0A0000000001?)"),
    (["replay", "x.pcap", "0a:00:00:00:00:01"],
     "phoneemu replay: error: unrecognized arguments: 0a:00:00:00:00:01 (did you mean --mac "
     "0a:00:00:00:00:01?)"),
])
def test_a_word_where_an_option_was_expected_is_suggested_as_that_option(
        argv: list[str], said: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _usage_error(capsys, argv) == said


def test_a_lab_folder_and_a_mac_are_suggested_together(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    lab = _lab_folder(tmp_path)
    assert _usage_error(capsys, ["boot", str(lab), "0A0000000001"]) == (
        f"phoneemu boot: error: unrecognized arguments: {lab} 0A0000000001 (did you mean --lab {lab} --mac "
        "0A0000000001?)")
    assert _usage_error(capsys, ["fleet", "boot", str(lab), "--count", "2"]).endswith(
        f"(did you mean --lab {lab}?)")


def test_a_required_option_given_as_a_word_is_suggested(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    lab = _lab_folder(tmp_path)
    assert _usage_error(capsys, ["lab", "phone", "add", str(lab), "0A0000000005"]) == (
        "phoneemu lab phone add: error: the following arguments are required: --mac (did you mean --mac "
        "0A0000000005?)")
    assert _usage_error(capsys, ["lab", "add-certs", str(lab), "40"]).endswith("(did you mean --count 40?)")
    assert _usage_error(capsys, ["lab", "encryption", str(lab), "0A0000000001", "on"]).endswith(
        "(choose from 'on', 'off') (did you mean --mac 0A0000000001?)")


def test_a_signer_certificate_and_a_key_given_as_words_are_suggested(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from phoneemu.crypto.certs import cert_pem
    from phoneemu.crypto.keys import private_key_pem
    from tests.signer_helpers import self_signed

    private, certificate = self_signed("CN=x", seed="mistake-hints", serial=5)  # made at run time
    cert, key = tmp_path / "tftp.pem", tmp_path / "phone.key"
    cert.write_bytes(cert_pem(certificate))
    key.write_bytes(private_key_pem(private))
    assert _usage_error(capsys, ["inspect", "SEP0A0000000001.cnf.xml.enc.sgn", str(cert), str(key)]).endswith(
        f"(did you mean --cert {cert} --key {key}?)")


@pytest.mark.parametrize("argv", [
    ["boot", "--tftp", "127.0.0.1:6969", "127.0.0.1:7000"],  # --tftp given already: not the mistake
    ["boot", "ITLFile.tlv"],  # no option takes that form
    ["boot", "cucm"],  # a bare name could be a file's
    ["fleet", "boot", "00112233445"],  # 11 digits: a mistyped MAC, not a count
    ["boot", "127.0.0.1:6969", "--timeout", "x"],  # an error about an option's value: about that value
    ["inspect", "a.tlv", "b.tlv"],
])
def test_nothing_is_suggested_where_nothing_fits(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert "did you mean" not in _usage_error(capsys, argv)


# ------------------------------------------------------------------ the lab folder comes first
@pytest.mark.parametrize(("words", "corrected"), [
    (["regenerate", "itlrecovery", "LAB"], ["regenerate", "LAB", "itlrecovery"]),
    (["service", "tvs", "LAB", "stop"], ["service", "LAB", "tvs", "stop"]),
    (["tamper", "ITLFile.tlv", "LAB", "--offset", "-1"], ["tamper", "LAB", "ITLFile.tlv", "--offset", "-1"]),
    (["load", "sip88xx.14-2-1", "--mac", "0A0000000001", "LAB"],
     ["load", "LAB", "sip88xx.14-2-1", "--mac", "0A0000000001"]),
])
def test_a_lab_folder_after_another_operand_is_said_to_come_first(
        words: list[str], corrected: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The operation runs (its operands parse), and its first operand is not a lab: the lab folder named later
    is said to come first, with the command line (was: ``itlrecovery: not a lab cluster (...; create one with
    'phoneemu lab init itlrecovery')``)."""
    lab = str(_lab_folder(tmp_path))
    argv = ["lab", *(lab if w == "LAB" else w for w in words)]
    first = words[1]
    fixed = " ".join(lab if w == "LAB" else w for w in corrected)
    assert _error(capsys, argv) == (
        f"phoneemu lab {words[0]}: {first}: not a lab cluster; {lab} is a lab cluster, and the lab folder "
        f"comes first: phoneemu lab {fixed}")
    assert not Path(first).exists()  # (no lock file or folder made where the lab was not)


@pytest.mark.parametrize(("words", "corrected"), [
    (["itl-reset", "localkey", "LAB"], "itl-reset LAB localkey"),
    (["mixed-mode", "on", "LAB"], "mixed-mode LAB on"),
    (["itlrecovery", "export", "LAB", "/tmp/x.pem"], "itlrecovery LAB export /tmp/x.pem"),
    (["tvs-ttl", "300", "LAB"], "tvs-ttl LAB 300"),
    (["phone", "add", "0A0000000005", "LAB"], None),  # the MAC is --mac's: then the lab is first
])
def test_a_lab_folder_after_another_operand_in_a_usage_error(
        words: list[str], corrected: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = str(_lab_folder(tmp_path))
    line = _usage_error(capsys, ["lab", *(lab if w == "LAB" else w for w in words)])
    if corrected is None:
        assert line.endswith("(did you mean --mac 0A0000000005?)"), line
    else:
        assert line.endswith(f"({lab} is a lab cluster, and the lab folder comes first: phoneemu lab "
                             f"{corrected.replace('LAB', lab)})"), line


def test_the_corrected_command_line_runs(template: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The command line the hint gives is the one that works (on a real lab: its generation moves on)."""
    import shlex
    import shutil

    from phoneemu.lab.cluster import LabCluster

    lab = tmp_path / "lab"
    shutil.copytree(template, lab)
    before = LabCluster.open(lab).state.generation
    err = _error(capsys, ["lab", "regenerate", "tvs", str(lab)])
    assert LabCluster.open(lab).state.generation == before  # refused: nothing done
    typed = shlex.split(err.split("comes first: ", 1)[1])
    assert typed == ["phoneemu", "lab", "regenerate", str(lab), "tvs"]
    assert main(typed[1:]) == 0
    assert capsys.readouterr().out.startswith(f"generation {before + 1}; ")
    assert LabCluster.open(lab).state.generation == before + 1


def test_no_lab_first_hint_where_it_would_not_help(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """``exchange``: its second operand is a lab folder too; ``init``: its folder must not be a lab; a first
    operand that is a lab; no operand a lab: as it was."""
    lab = str(_lab_folder(tmp_path))
    nolab = str(tmp_path / "nolab")
    assert _error(capsys, ["lab", "exchange", nolab, lab]) == (
        f"phoneemu lab exchange: {nolab}: not a lab cluster (no cluster.json; create one with 'phoneemu lab "
        f"init {nolab}')")
    assert "comes first" not in _usage_error(capsys, ["lab", "init", nolab, lab])
    assert _error(capsys, ["lab", "regenerate", nolab, "tvs"]).endswith(
        f"create one with 'phoneemu lab init {nolab}')")


def test_a_fifo_left_over_is_never_opened_for_a_hint(tmp_path: Path) -> None:
    """A leftover word naming a FIFO: the hint does not open it (it would wait for a writer for ever)."""
    import os
    import subprocess
    import sys

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    signed = tmp_path / "x.sgn"
    signed.write_bytes(b"\x01")
    done = subprocess.run([sys.executable, "-m", "phoneemu", "inspect", str(signed), str(fifo)],
                          check=False, capture_output=True, text=True, timeout=20)
    assert done.returncode == 2, done.stderr
    assert "unrecognized arguments" in done.stderr
