"""A locked-out ``fleet boot --lab`` (ITLRecovery regenerated during a TVS outage: every phone refuses the
new ITL, spec §G.3.5) says its ways out in the summary, ``--json`` (each way's ``run``) and the JUnit body of
each phone with no placeholder the run knows left in a command — ``DIR``, ``NEW``, ``FLASH``, ``FLEET`` —,
its flashes kept (``--flash``) or not: was ``boot --lab DIR --flash FLASH`` in each JUnit body and ``fleet
boot --lab DIR --flash FLEET`` in the summary of phones whose flashes were not kept, commands no user could
run. ``OLD`` (the cluster they came from, which the run never saw) is left for the user."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import serve_in_thread

NOW = 1_780_000_000
FLEET = ["0A0000000F20", "0A0000000F21"]
KNOWN_BY_THE_RUN = re.compile(r"\b(?:DIR|NEW|FLASH|FLEET|MAC|FIRST|N)\b")


def _lab_commands(text: str) -> list[str]:
    """The lab commands of ways out said in ``text`` (``lab: ...``, the rehearsal after them cut off)."""
    return [line.split("lab: ", 1)[1].split("   rehearse: ")[0] for line in text.splitlines()
            if line.lstrip().startswith("lab: ")]


@pytest.mark.parametrize("kept", [False, True], ids=["flash-not-kept", "flash-kept"])
def test_a_locked_fleets_ways_out_leave_no_placeholder_it_knows(tmp_path: Path, kept: bool,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    lab = LabCluster.init(tmp_path / "cucm", seed=7, key_spec="rsa1024", now=NOW, host="127.0.0.1")
    for mac in FLEET:
        lab.add_phone(mac, now=NOW)
    held = tmp_path / "ITLFile.tlv"  # the ITL the phones hold before (--installed-itl)
    held.write_bytes(lab.get("ITLFile.tlv"))
    lab.regenerate("itlrecovery", now=NOW)
    lab.set_service("tvs", False, now=NOW)
    junit, report = tmp_path / "fleet.xml", tmp_path / "fleet.json"
    flash = ["--flash", str(tmp_path / "fleet")] if kept else []
    ports, stop = serve_in_thread(lab)
    try:
        rc = main(["fleet", "boot", "--lab", str(tmp_path / "cucm"), "--tftp", f"127.0.0.1:{ports['tftp']}",
                   "--http-port", str(ports["http"]), "--timeout", "1", "--count", str(len(FLEET)),
                   "--mac-start", FLEET[0], "--installed-itl", str(held), "--shards", "0", "-q",
                   "--junit", str(junit), "--json", str(report), *flash])
    finally:
        stop()
    out = capsys.readouterr().out
    assert rc == 1 and "2 phones locked out" in out, out
    summary = _lab_commands(out)
    doc = json.loads(report.read_text())["summary"]["ways_out"]
    runs = [w["run"] for entry in doc for w in entry["ways"]]
    bodies = [f.text or "" for f in (c.find("failure") for c in ET.parse(junit).getroot().iter("testcase"))
              if f is not None]
    assert len(bodies) == len(FLEET)
    per_phone = [c for body in bodies for c in _lab_commands(body)]
    assert len(summary) == len(runs) >= 3 and len(per_phone) == len(FLEET) * len(summary)
    for where, commands in (("summary", summary), ("--json", runs), ("--junit", per_phone)):
        assert any("lab itl-reset" in c for c in commands), (where, commands)  # the way the gap was in
        for command in commands:
            assert not KNOWN_BY_THE_RUN.findall(command), (where, command)
    assert runs == summary  # the JSON says what the summary says
    if not kept:  # the phones start each run holding the --installed-itl, not an empty flash (the JUnit too)
        starts = f"each run starts holding what --installed-itl {held} gives; a run without it starts"
        assert starts in out and all(starts in body for body in bodies), out
