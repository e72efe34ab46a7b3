"""The text tables of ``inspect`` (BYTEPOS TAG LENGTH VALUE, spec §H.4) keep their columns whatever the
tag names: the TAG column is ``show ctl``'s 22 characters, wider for a longer name.

Was 22 always: an ``.enc.sgn``'s ``ENCRYPTION_KEY_UNKNOWN1       0`` (the name ran into the LENGTH column)
read like another tag, ``ENCRYPTION_HASH_ALGORITHM1`` alike.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from phoneemu.formats import encrypted
from phoneemu.inspection import inspect_bytes, render_text
from tests.signer_helpers import file_signer, self_signed

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
NOW = 1_780_000_000


def _enc_sgn() -> bytes:
    signer = self_signed("CN=columns-tftp;O=phoneemu", seed="inspect-columns-tftp", serial=0xC0)
    return encrypted.build_symmetric(plaintext=b"<device/>", filename="SEP0A00000000C0.cnf.xml.enc.sgn",
                                     signer=file_signer(signer), key=bytes(range(1, 17)), timestamp=NOW,
                                     rand=os.urandom)


def _rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [row for row in report["header"]["rows"] if row["tag"] not in (1, 2)]  # shown above the table
    return rows + [row for rec in report.get("records", []) for row in rec["rows"]]


def _check_columns(report: dict[str, Any]) -> int:
    """Every table row has its name in the TAG column, a blank after it, its length where LENGTH starts;
    the signature's bytes start where VALUE does. The LENGTH column returned."""
    lines = render_text(report).splitlines()
    heads = [line for line in lines if line.startswith("BYTEPOS")]
    col = heads[0].index("LENGTH")
    assert all(head.index("LENGTH") == col for head in heads), heads
    for row in _rows(report):
        line = next(line for line in lines if line.startswith(f"{row['bytepos']:<8}{row['name']} "))
        assert line[8:col].rstrip() == row["name"] and line[col - 1] == " ", (line, col)
        assert line[col:].split()[0] == str(row["length"]), (line, col)
        if row["tag"] != 12:
            assert line[col + 8:] == str(row["value"]), (line, col)
    value_at = heads[0].index("VALUE")
    hex_lines = [line for line in lines if line.startswith(" " * value_at) and line.strip()]
    assert hex_lines and all(line[value_at] != " " for line in hex_lines), hex_lines
    return col


def test_long_tag_names_keep_the_columns() -> None:
    report = inspect_bytes(_enc_sgn(), name="SEP0A00000000C0.cnf.xml.enc.sgn")
    names = [row["name"] for row in _rows(report)]
    assert max(map(len, names)) >= 22, names  # the case that misaligned
    col = _check_columns(report)
    assert col == 8 + max(map(len, names)) + 2


def test_a_trust_list_keeps_show_ctl_widths() -> None:
    """No name of a CTL/ITL is 21+ characters: its tables are as they were, ``show itl``'s."""
    report = inspect_bytes((VECTORS / "itl_lab.tlv").read_bytes(), name="ITLFile.tlv")
    assert _check_columns(report) == 8 + 22
