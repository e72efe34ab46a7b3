"""``fleet boot`` without ``--flash`` keeps its phones' flashes in memory only: a way out that erases them
(``phone erase --fleet-flash FLEET``, ``--flash FLASH`` in the JUnit bodies) cannot be run, so the summary
and the JUnit say there is nothing to erase and how to keep the flashes (``ways_out.FLASH_NOT_KEPT``; was the
command with FLEET/FLASH left for the user to fill in with a folder that never held the phones)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import serve_in_thread

NOW = 1_780_000_000
FLEET = ["0A0000000F10", "0A0000000F11"]


def test_a_fleet_without_flash_is_told_there_is_nothing_to_erase(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    lab = LabCluster.init(tmp_path / "cucm", seed=7, key_spec="rsa1024", now=NOW, host="127.0.0.1")
    for mac in FLEET:
        lab.add_phone(mac, now=NOW)
    held = tmp_path / "ITLFile.tlv"  # the ITL the phones hold (--installed-itl: no flash needed)
    held.write_bytes(lab.get("ITLFile.tlv"))
    lab.regenerate("itlrecovery", now=NOW)  # during a TVS outage: every phone locks out (spec §G.3.4)
    lab.set_service("tvs", False, now=NOW)
    ports, stop = serve_in_thread(lab)
    junit = tmp_path / "fleet.xml"
    try:
        rc = main(["fleet", "boot", "--tftp", f"127.0.0.1:{ports['tftp']}", "--http-port", str(ports["http"]),
                   "--timeout", "1", "--count", str(len(FLEET)), "--mac-start", FLEET[0], "--installed-itl",
                   str(held), "--junit", str(junit), "-q"])
    finally:
        stop()
    out = capsys.readouterr().out
    assert rc == 1 and "2 phones locked out" in out, out
    assert "phone erase" not in out and "FLEET" not in out, out
    assert ("nothing to erase: their flashes were not kept (no --flash: each run starts holding what "
            f"--installed-itl {held} gives; a run without it starts them erased; phoneemu fleet boot --flash "
            "FOLDER keeps them)") in out, out
    bodies = [f.text or "" for f in (c.find("failure") for c in ET.parse(junit).getroot().iter("testcase"))
              if f is not None]
    assert len(bodies) == len(FLEET)
    for body in bodies:
        assert "phone erase" not in body and "FLASH" not in body, body
        assert "nothing to erase: its flash was not kept" in body, body
