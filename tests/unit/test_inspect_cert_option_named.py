"""``inspect FILE --cert WRONG``: a ``--cert`` file that gives no certificate is said naming the option,
``--cert WRONG: why`` (:func:`phoneemu.inspection.load_cert_files`). Was ``FILE: WRONG: no certificate in
PEM (nor a CTL/ITL)``: the inspected FILE named first, as if it were the one at fault, and a missing
``--cert`` file was ``WRONG: No such file or directory`` with no option named."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.errors import PhoneEmuError
from phoneemu.inspection import inspect_bytes

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
SGN = VECTORS / "SEP001122334455.cnf.xml.sgn"


def _wrong_certs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Each kind of wrong --cert file and what is said of it."""
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("not a certificate\n")
    cut = tmp_path / "cut.tlv"
    cut.write_bytes((VECTORS / "itl_lab.tlv").read_bytes()[:1500])
    return {"not a PEM": (not_pem, "no certificate in PEM (nor a CTL/ITL)"),
            "missing": (tmp_path / "missing.pem", "No such file or directory"),
            "a folder": (tmp_path, "Is a directory"),
            "another signed file": (SGN, "a signed file (.sgn), not a certificate (PEM) nor a CTL/ITL"),
            "a cut trust list": (cut, "trustlist: record[0].record_length (tag 1) at offset ")}


@pytest.mark.parametrize("case", ["not a PEM", "missing", "a folder", "another signed file",
                                  "a cut trust list"])
def test_a_wrong_cert_is_said_naming_the_option(case: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    wrong, why = _wrong_certs(tmp_path)[case]
    assert main(["inspect", str(SGN), "--cert", str(wrong)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert captured.out == "" and len(lines) == 1, captured
    assert lines[0].startswith(f"phoneemu inspect: --cert {wrong}: {why}"), lines[0]
    assert str(SGN) not in lines[0] or wrong == SGN, lines[0]  # the inspected file is not the one at fault
    assert lines[0].count(str(wrong)) == 1, lines[0]


def test_the_second_cert_is_the_one_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--cert GOOD --cert WRONG``: the wrong one is named, nothing is inspected."""
    wrong, why = _wrong_certs(tmp_path)["not a PEM"]
    assert main(["inspect", str(SGN), "--cert", str(VECTORS / "itl_lab.tlv"), "--cert", str(wrong)]) == 2
    assert capsys.readouterr().err == f"phoneemu inspect: --cert {wrong}: {why}\n"


def test_inspect_bytes_names_the_option_too(tmp_path: Path) -> None:
    wrong, why = _wrong_certs(tmp_path)["not a PEM"]
    with pytest.raises(PhoneEmuError) as caught:
        inspect_bytes(SGN.read_bytes(), name=SGN.name, cert_paths=[wrong])
    assert str(caught.value) == f"--cert {wrong}: {why}"
