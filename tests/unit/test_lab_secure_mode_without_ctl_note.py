"""``lab security-mode ... authenticated|encrypted`` on a cluster not in mixed mode, and ``lab mixed-mode
off`` while phones are in a secure mode: the command says on stderr what those phones will do — no
CallManager certificate in a CTL, so four tries for it, then SIP over TCP, unprotected (spec G.9) — and
what changes it. Was: only the trust line; the boots showed the retries and the fall-back."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster

NOW = 1_780_000_000
MAC = "0A0000000E01"


def _lab(tmp_path: Path) -> Path:
    lab = LabCluster.init(tmp_path / "lab", seed=3, key_spec="rsa1024", now=NOW, host="127.0.0.1")
    lab.add_phone(MAC, now=NOW)
    return lab.root


def _err(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main([*argv, "--now", str(NOW)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("generation "), captured.out  # the trust line, as every operation
    return captured.err


def test_a_secure_mode_without_a_ctl_is_said(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _lab(tmp_path)
    err = _err(["lab", "security-mode", str(root), "--mac", MAC, "encrypted"], capsys)
    assert err == ("phoneemu lab security-mode: note: the cluster is not in mixed mode (no CTL): a phone "
                   "in encrypted mode finds no CallManager certificate to set up TLS with, asks for the CTL "
                   "four times, then registers over TCP, unprotected (spec G.9); phoneemu lab mixed-mode "
                   f"{root} on serves a CTL\n")
    assert _err(["lab", "mixed-mode", str(root), "on"], capsys) == ""
    assert _err(["lab", "security-mode", str(root), "--mac", MAC, "authenticated"], capsys) == ""  # a CTL


def test_mixed_mode_off_names_the_phones_left_in_a_secure_mode(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    root = _lab(tmp_path)
    _err(["lab", "mixed-mode", str(root), "on"], capsys)
    _err(["lab", "security-mode", str(root), "--mac", MAC, "encrypted"], capsys)
    err = _err(["lab", "mixed-mode", str(root), "off"], capsys)
    assert err == ("phoneemu lab mixed-mode: note: 1 phone in a secure mode (authenticated or "
                   f"encrypted: {MAC}): the CTL names no CallManager now, so it asks for it four times, "
                   "then registers over TCP, unprotected (spec G.9); phoneemu lab security-mode "
                   f"{root} --mac MAC non-secure says so in its config\n")
    _err(["lab", "security-mode", str(root), "--mac", MAC, "non-secure"], capsys)
    _err(["lab", "mixed-mode", str(root), "on"], capsys)
    assert _err(["lab", "mixed-mode", str(root), "off"], capsys) == ""  # no phone in a secure mode
