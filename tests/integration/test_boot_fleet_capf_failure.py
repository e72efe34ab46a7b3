"""A CAPF operation the phone started that did not complete fails ``boot`` and ``fleet boot`` (spec §F; the
rule: :mod:`phoneemu.phone.capf_outcome`): exit 1, ``boot``'s last line and JSON say why, ``fleet boot``'s
first line counts it, its JUnit case fails naming the CAPF rule, ``--json`` says ``capf_failed``. Was: exit
0, the config being accepted, while no LSC was installed. An install that goes through, and a phone with
nothing pending, still exit 0.

Over loopback against a lab: a phone whose install is by authentication string 4242 (typed 9999: rejected,
END_SESSION REASON 7), one whose install asks no proof (null string), one with nothing pending."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import serve_in_thread

BY_STRING, NULL_STRING, NOTHING = "0A0000000001", "0A0000000002", "0A0000000003"


@pytest.fixture
def lab(tmp_path: Path) -> LabCluster:
    c = LabCluster.init(tmp_path / "lab", key_spec="rsa1024")
    c.add_phones([BY_STRING, NULL_STRING, NOTHING])
    c.set_capf([BY_STRING], "install", auth_string="4242", key="ec-p256")
    c.set_capf([NULL_STRING], "install", auth_mode="null-string", key="ec-p256")
    return c


def _boot(c: LabCluster, ports: dict[str, int], mac: str, *extra: str) -> list[str]:
    return ["boot", "--tftp", f"127.0.0.1:{ports['tftp']}", "--http-port", str(ports["http"]), "--mac", mac,
            "--lab", str(c.root), "--capf-retry-delay", "0", *extra]


def test_boot_exits_1_when_its_capf_operation_failed(lab: LabCluster,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    ports, stop = serve_in_thread(lab)
    try:
        capsys.readouterr()
        rejected = main(_boot(lab, ports, BY_STRING, "--auth-string", "9999"))
        out = capsys.readouterr().out
        as_json = main(_boot(lab, ports, BY_STRING, "--auth-string", "9999", "--json"))
        doc = json.loads(capsys.readouterr().out)
        nothing = main(_boot(lab, ports, NOTHING))
        capsys.readouterr()
        installed = main(_boot(lab, ports, BY_STRING, "--json"))  # the lab's string typed: installed
        done = json.loads(capsys.readouterr().out)
    finally:
        stop()
    assert rejected == 1, out
    last = out.rstrip("\n").splitlines()[-1]
    assert last.startswith("exit status 1: CAPF operation failed: F.6-capf-rejected: CAPF ended the "), out
    assert "Phone 0A0000000001: OK" in out  # its config accepted: the boot itself as before
    assert as_json == 1
    assert doc["report"]["ok"] is True
    assert doc["capf_failure"]["rule"] == "F.6-capf-rejected", doc["capf_failure"]
    assert doc["capf_failure"]["reason"] in last
    assert nothing == 0  # nothing pending: no CAPF operation, no failure
    assert installed == 0 and done["capf_failure"] is None and done["report"]["lsc"] == "installed"


def test_fleet_boot_fails_a_phone_whose_capf_operation_failed(lab: LabCluster, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    ports, stop = serve_in_thread(lab)
    junit, report = tmp_path / "f.xml", tmp_path / "f.json"
    try:
        capsys.readouterr()
        code = main(["fleet", "boot", "--tftp", f"127.0.0.1:{ports['tftp']}", "--http-port",
                     str(ports["http"]), "--mac-start", BY_STRING, "--count", "3", "--lab", str(lab.root),
                     "--shards", "0", "-q",
                     "--auth-string", "9999", "--capf-retry-delay", "0", "--json", str(report),
                     "--junit", str(junit)])
        out = capsys.readouterr().out
    finally:
        stop()
    assert code == 1, out
    assert out.splitlines()[0].startswith("3 phones: 3 booted (1 of them CAPF failed), 0 failed in "), out
    doc = json.loads(report.read_text())
    assert (doc["summary"]["capf_failed"], doc["summary"]["booted_capf_failed"]) == (1, 1)
    phones = {p["mac"]: p for p in doc["phones"]}
    assert phones[BY_STRING]["capf_failed"] is True and phones[BY_STRING]["outcome"] == "ok"
    assert phones[NULL_STRING]["capf"] == "F.6-lsc-installed" and "capf_failed" not in phones[NULL_STRING]
    assert "capf" not in phones[NOTHING] and "capf_failed" not in phones[NOTHING]
    cases = {c.get("name"): c.find("failure") for c in ET.parse(junit).getroot().iter("testcase")}
    failure = cases[BY_STRING]
    assert failure is not None
    assert str(failure.get("message")).startswith("CAPF operation failed (F.6-capf-rejected): "), \
        failure.get("message")
    assert cases[NULL_STRING] is None and cases[NOTHING] is None
