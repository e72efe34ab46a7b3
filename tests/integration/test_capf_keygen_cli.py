"""A slow CAPF key generation rehearsed from the command line (spec §F.6, §F.8; ours): ``lab serve
--capf-read-timeout 0.75`` and ``boot --capf-keygen-seconds 1.25``. A phone sending REQUEST_IN_PROGRESS
every quarter second (``--capf-in-progress-seconds 0.25``: three pings a read timeout, margin for a loaded
machine) keeps its session past the lab's read timeout and installs its LSC; the same phone silent
(``--capf-in-progress-seconds 0``) is cut 0.75 s into its key generation, told END_SESSION REASON 7, and
installs none. Before, neither command had these options: the profile's fields
and the lab's bounds were reachable only from Python (a scenario's profile, ``LabServers``)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import reap, serve_ports

REPO = Path(__file__).resolve().parents[2]
SENDS, SILENT = "0A00000000C1", "0A00000000C2"
READ_TIMEOUT, KEYGEN_S = "0.75", "1.25"  # the lab cuts a phone silent that long; the phone's key takes longer


def _lab(tmp_path: Path) -> Path:
    """A lab of two phones, each with a CAPF install pending (no proof asked: null string)."""
    root = tmp_path / "lab"
    c = LabCluster.init(root, key_spec="rsa1024")
    for mac in (SENDS, SILENT):
        c.add_phone(mac)
    c.set_capf([SENDS, SILENT], "install", auth_mode="null-string", key="ec-p256")
    return root


def _boot(lab: Path, mac: str, every: str, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    """``boot --lab`` of ``mac`` with a ``KEYGEN_S`` key generation and REQUEST_IN_PROGRESS every
    ``every`` s: its JSON report."""
    capsys.readouterr()
    main(["boot", "--lab", str(lab), "--mac", mac, "--no-http", "--json", "--capf-retry-delay", "0",
          "--capf-keygen-seconds", KEYGEN_S, "--capf-in-progress-seconds", every])
    report = json.loads(capsys.readouterr().out)["report"]
    assert isinstance(report, dict)
    return report


def test_boot_keygen_options_against_lab_serve_read_timeout(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    lab = _lab(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "phoneemu", "lab", "serve", str(lab), "--tftp-port", "0", "--http-port", "0",
         "--tvs-port", "0", "--capf-port", "0", "--capf-read-timeout", READ_TIMEOUT],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        ports, lines = serve_ports(proc)
        assert "capf" in ports, "".join(lines)
        said = [line for line in lines if line.startswith("capf read timeout")]
        assert said and said[0].startswith(f"capf read timeout {READ_TIMEOUT}s, session timeout 120s, "
                                           "at most 256 "), lines
        sends = _boot(lab, SENDS, "0.25", capsys)
        silent = _boot(lab, SILENT, "0", capsys)
    finally:
        reap(proc)
    assert sends["lsc"] == "installed", sends
    assert silent["lsc"] != "installed", silent
    deciding = silent["deciding"]
    assert isinstance(deciding, dict) and deciding["rule"] == "F.6-capf-rejected", deciding
    cut = re.search(rf"the CAPF server ended the session ([0-9.]+)s into this phone's {KEYGEN_S}s key "
                    "generation", str(deciding["reason"]))
    assert cut is not None and float(cut.group(1)) < float(KEYGEN_S), deciding  # cut by the read timeout
