"""``phoneemu boot`` of a lab phone whose config is encrypted for its certificate (PKI, spec §G.12.2),
without ``--lab`` or ``--mic/--mic-key``: the emulated phone holds no MIC, so no phone certificate; one
line on stderr says so and names the options that give it one (was: ``G.12.2-cert-hash-mismatch ... no
phone certificate: start a CAPF session`` and ``F.7-no-capf-operation``, nothing saying the phone had no
MIC). With ``--lab`` the same phone decrypts its config and nothing is said.

Loopback only."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from phoneemu.cli import main
from phoneemu.commands.boot import no_mic_hint
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone.boot import BootReport
from phoneemu.phone.events import Decision
from tests.helpers import serve_in_thread

NOW = 1_780_000_000
MAC = "0A0000000F61"
HINT = "the emulated phone holds no MIC"


def _encrypted_lab(tmp_path: Path) -> LabCluster:
    lab = LabCluster.init(tmp_path / "lab", seed=13, key_spec="rsa1024", now=NOW, host="127.0.0.1")
    lab.add_phone(MAC, encrypt="pki", now=NOW)
    return lab


def test_a_boot_without_a_mic_refused_for_want_of_a_certificate_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = _encrypted_lab(tmp_path)
    ports, stop = serve_in_thread(lab)
    tftp = ["--tftp", f"127.0.0.1:{ports['tftp']}", "--http-port", str(ports["http"])]
    common = ["boot", "--mac", MAC, "--now", str(NOW), "--no-https-config", *tftp]
    try:
        assert main(common) == 1
        out, err = capsys.readouterr()
        assert main([*common, "--json"]) == 1
        doc_err = capsys.readouterr().err
        assert main([*common, "--lab", str(lab.root)]) == 0
        lab_out, lab_err = capsys.readouterr()
    finally:
        stop()
    assert "G.12.2-cert-hash-mismatch" in out and "no phone certificate" in out, out
    hint = [line for line in err.splitlines() if HINT in line]
    assert hint == [
        "phoneemu boot: the emulated phone holds no MIC (no --lab, no --mic/--mic-key given), so no phone "
        "certificate (G.12.2-cert-hash-mismatch): --lab DIR gives it the MIC that lab issued for its MAC, "
        "--mic PEM --mic-key PEM the one its cluster knows"], err
    assert HINT in doc_err, doc_err  # said with --json too (stderr), as the unanswered hint is
    assert "G.12.3-decrypted" in lab_out and HINT not in lab_err, (lab_out, lab_err)


def _report(*decisions: Decision) -> BootReport:
    """A report holding ``decisions`` only: all :func:`no_mic_hint` reads."""
    return cast(BootReport, SimpleNamespace(decisions=decisions))


def test_the_hint_needs_both_no_mic_and_a_refusal_for_want_of_a_certificate() -> None:
    no_cert = Decision(rule="G.12.2-cert-hash-mismatch", accepted=False, file="SEP.cnf.xml.sgn",
                       kind="config", reason="no phone certificate: start a CAPF session")
    mismatch = Decision(rule="G.12.2-cert-hash-mismatch", accepted=False, file="SEP.cnf.xml.sgn",
                        kind="config", reason="certHash mismatch: start a CAPF session")
    capf = Decision(rule="F.6-capf-rejected", accepted=False, file="", kind="capf",
                    reason="CAPF ended the session: x (reason 1); the phone holds no certificate to "
                    "authenticate with (capfAuthMode 3 needs an LSC or a MIC, spec §F.7)")
    assert no_mic_hint(_report(no_cert), has_mic=False) is not None
    assert no_mic_hint(_report(no_cert), has_mic=True) is None
    assert no_mic_hint(_report(mismatch), has_mic=False) is None  # it holds a certificate: another one
    said = no_mic_hint(_report(capf), has_mic=False)
    assert said is not None and "(F.6-capf-rejected)" in said, said
