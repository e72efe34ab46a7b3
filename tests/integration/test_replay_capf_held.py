"""``replay`` of a boot whose CAPF operation the capture holds (spec §F; :mod:`phoneemu.scenario.replay`,
"Offline decisions").

A phone installed an LSC live (CAPF by null string): its capture holds the TLS connection to the config's
CAPF server. Replayed, the operation is said ``F.1-capf-not-replayed``, "CAPF session in the capture, not
replayed" — no CAPF failure (:mod:`phoneemu.phone.capf_outcome`) — and the boot's deciding rule is the
live one, the config's (was: ``F.1-capf-unreachable ... CAPF unavailable offline (a capture or forecast
has no CAPF server)`` and ``deciding: F.1-capf-unreachable (rejected)`` on an OK boot; ``replay --all``
counted the phone under ``F.1-capf-unreachable``). A phone whose CAPF server was down live (its capture
holds no CAPF session) keeps "CAPF unavailable offline", which does not decide its accepted boot either.

Live captures over loopback (root, Linux; skipped elsewhere), each test's on an address of its own.
"""

from __future__ import annotations

import contextlib
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone.capf_outcome import capf_failed
from tests.helpers import lab_served_in_thread, skip_unless_live

#: each test's own lab address (no other test uses them): its packets alone in its capture, also when the
#: tests run in parallel
HELD_HOST, DOWN_HOST = "127.0.0.93", "127.0.0.95"
HELD, DOWN = "0A0000009301", "0A0000009302"  # CAPF served live / CAPF down live
NOT_REPLAYED = "CAPF session in the capture, not replayed"
OFFLINE = "CAPF unavailable offline (a capture or forecast has no CAPF server)"
Capsys = pytest.CaptureFixture[str]


def _captured(root: Path, host: str, mac: str, *, capf: bool) -> tuple[int, Path, dict[str, Any]]:
    """``mac``'s live boot (CAPF install by null string pending; ``capf``: its CAPF server up, else its port
    refusing) captured: the boot's exit status, the pcap and the boot's JSON."""
    skip_unless_live(root)
    lab = LabCluster.init(root / "lab", key_spec="rsa1024", host=host)
    lab.add_phones([mac])
    lab.set_capf([mac], "install", auth_mode="null-string", key="ec-p256")
    pcap, said = root / f"{mac}.pcap", io.StringIO()
    with lab_served_in_thread(lab, host=host) as (srv, on_loop):
        if not capf:
            on_loop(lambda: srv.stop_service("capf"))  # its port refuses: no TLS in the capture
        with contextlib.redirect_stdout(said):
            rc = main(["boot", "--tftp", f"{host}:{srv.ports['tftp']}", "--http-port", str(srv.ports["http"]),
                       "--mac", mac, "--lab", str(lab.root), "--capf-retry-delay", "0", "--json",
                       "--capture", str(pcap)])
    return rc, pcap, json.loads(said.getvalue())["report"]


def _capf_rules(report: dict[str, Any]) -> list[str]:
    return [d["rule"] for d in report["decisions"] if d["kind"] == "capf"]


def test_a_captured_capf_session_is_said_not_replayed_and_does_not_decide(tmp_path: Path,
                                                                           capsys: Capsys) -> None:
    rc, pcap, live = _captured(tmp_path, HELD_HOST, HELD, capf=True)
    assert rc == 0 and live["lsc"] == "installed" and "F.6-lsc-installed" in _capf_rules(live)
    assert live["deciding"]["rule"] == "G.4-signed-by-itl-tftp", live["deciding"]
    capsys.readouterr()

    assert main(["replay", str(pcap), "--mac", HELD]) == 0
    text = capsys.readouterr().out
    (line,) = [x for x in text.splitlines() if "F.1-capf-" in x and "deciding" not in x]
    assert "F.1-capf-not-replayed" in line and NOT_REPLAYED in line, line
    assert OFFLINE not in text and "after 1 attempts" not in text
    assert f"deciding: G.4-signed-by-itl-tftp (accepted) SEP{HELD}.cnf.xml.sgn" in text, text

    assert main(["replay", str(pcap), "--mac", HELD, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["boots"][-1]["report"]
    assert report["deciding"] == live["deciding"]
    (capf,) = _capf_rules(report)
    assert capf == "F.1-capf-not-replayed" and not capf_failed(capf)
    said = json.dumps(report)  # its timeline too: no unreachable server, no attempt made
    assert "F.1-capf-unreachable" not in said and "CAPF unreachable" not in said and "attempts" not in said

    # replay --all: the live deciding rule, no failure (exit status, JSON, JUnit)
    junit = tmp_path / "phones.xml"
    assert main(["replay", str(pcap), "--all", "--json", "--junit", str(junit)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["by_rule"] == {"G.4-signed-by-itl-tftp": 1} and doc["exit_status"] == 0, doc["by_rule"]
    (record,) = doc["records"]
    assert record["rule"] == "G.4-signed-by-itl-tftp" and record["outcome"] == "ok"
    cases = ET.parse(junit).getroot().iter("testcase")
    assert [c.find("failure") for c in cases] == [None]


def test_no_capf_session_in_the_capture_keeps_its_words_and_does_not_decide(tmp_path: Path,
                                                                            capsys: Capsys) -> None:
    rc, pcap, live = _captured(tmp_path, DOWN_HOST, DOWN, capf=False)
    assert rc == 1 and live["deciding"]["rule"] == "F.1-capf-unreachable"  # live: CAPF failed
    config = next(d for d in live["decisions"] if d["kind"] == "config" and d["accepted"])
    capsys.readouterr()

    assert main(["replay", str(pcap), "--mac", DOWN, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["boots"][-1]["report"]
    (capf,) = [d for d in report["decisions"] if d["kind"] == "capf"]
    assert capf["rule"] == "F.1-capf-unreachable" and OFFLINE in capf["reason"]
    assert report["ok"] and (report["deciding"]["rule"], report["deciding"]["file"]) == \
        (config["rule"], config["file"])

    assert main(["replay", str(pcap), "--all"]) == 0
    text = capsys.readouterr().out
    assert f"{DOWN}  1 boot  ok ({config['rule']})" in text and "F.1-capf-unreachable" not in text, text
