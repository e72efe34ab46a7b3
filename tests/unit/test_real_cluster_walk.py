"""A voice engineer's walk against a cluster that is not a lab: ``boot`` / ``fleet boot --tftp`` without
``--lab`` (the lab served as if it were a real cluster, loopback only).

* a ``--tftp`` name that does not resolve is one line naming it, exit 2, before any phone boots (was: each
  phone's every request failed on a lookup of its own — ``fleet boot --count 100`` took 2 minutes and wrote
  275 "Future exception was never retrieved" tracebacks; ``boot`` asked whether the TFTP server ran there);
* when nothing answers, the hint speaks CUCM's terms and names the ports asked that are not CUCM's (spec
  §H.1) — it offered only ``phoneemu lab serve DIR``;
* a lockout's ways out name no lab command (``phoneemu lab itl-reset DIR ...``, ``boot --lab DIR --flash
  <the user's flash>``): the procedure, the command on the emulated phones, the lab rehearsal.
"""

from __future__ import annotations

import asyncio
import re
import socket
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import boot_offline_into, serve_in_thread

NOW = 1_780_000_000
MAC = "0A0000000E01"
FLEET = ["0A0000000E10", "0A0000000E11"]
NAME = "cucm-pub.invalid"  # RFC 6761: never resolves; the lookup is made to fail here anyway, at once


@pytest.fixture
def unresolvable(monkeypatch: pytest.MonkeyPatch) -> None:
    """``NAME`` does not resolve (without asking a DNS server); other names as they do."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
        if host == NAME:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.usefixtures("unresolvable")
@pytest.mark.parametrize("command", [["boot", "--mac", MAC], ["fleet", "boot", "--count", "1", "-q"]])
def test_a_tftp_name_that_does_not_resolve_is_one_line_before_any_boot(
        command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--tftp", f"{NAME}:6969", "--timeout", "0.2", "--tftp-max-time", "1"]) == 2
    out, err = capsys.readouterr()
    said = " ".join(command[:2]) if command[0] == "fleet" else "boot"
    assert err.splitlines() == [f"phoneemu {said}: --tftp {NAME}: the name does not resolve (Name or service "
                                "not known): give the TFTP server's address (DHCP option 150 gives phones "
                                "addresses) or a name this machine resolves"], err
    assert out == ""  # no phone booted, no summary


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_nothing_answering_a_real_cluster_is_said_in_cucm_terms(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """``--tftp`` alone at a port nobody listens on: CUCM's TFTP service and its ports, the port asked that
    is not CUCM's named; the lab's command still follows. With ``--lab`` the hint is the lab's alone."""
    port = _free_udp_port()
    common = ["boot", "--tftp", f"127.0.0.1:{port}", "--no-http", "--mac", MAC, "--timeout", "0.2"]
    assert main(common) == 1
    err = capsys.readouterr().err
    assert ("is the cluster's TFTP server running there? On CUCM: is its TFTP service activated and started "
            "on that node (Cisco Unified Serviceability), UDP 69 and TCP 6970 open from here? CUCM serves "
            f"the files on those ports (spec §H.1); this boot asked TFTP port {port}. For a lab: phoneemu "
            f"lab serve DIR --tftp-port {port} (it prints") in err, err
    lab = LabCluster.init(tmp_path / "lab", seed=5, key_spec="rsa1024", now=NOW, host="127.0.0.1")
    lab.add_phone(MAC, now=NOW)
    assert main([*common, "--lab", str(lab.root)]) == 1
    err = capsys.readouterr().err
    assert "nothing answered at 127.0.0.1" in err and "On CUCM" not in err, err


def _locked_lab(tmp_path: Path) -> LabCluster:
    """A cluster whose phones hold its ITL, then its ITLRecovery regenerated during a TVS outage: every
    phone locks out at its next boot (spec §G.3.4, seed: Trust Verification Service)."""
    lab = LabCluster.init(tmp_path / "cucm", seed=7, key_spec="rsa1024", now=NOW, host="127.0.0.1")
    for mac in (MAC, *FLEET):
        lab.add_phone(mac, now=NOW)
    asyncio.run(boot_offline_into(tmp_path / "one", lab, [MAC], now=NOW))
    asyncio.run(boot_offline_into(tmp_path / "fleet", lab, FLEET, now=NOW))
    lab.regenerate("itlrecovery", now=NOW)
    lab.set_service("tvs", False, now=NOW)
    return lab


def _no_lab_command(text: str) -> None:
    """Ways out written for phones pointed at a cluster that is not a lab (``text`` from its first way out
    on: the lab's certificates name their organisation "phoneemu lab ...")."""
    assert "way out (" in text, text
    ways = text[text.index("way out ("):]
    assert "phoneemu lab " not in ways and "--lab" not in ways, ways
    assert not re.search(r"^\s*lab: ", ways, re.MULTILINE), ways  # the lab command's line
    assert "rehearse in a lab: phoneemu run scenarios/bulk-itl-reset-localkey.yaml" in ways, ways


def test_ways_out_against_a_real_cluster_name_no_lab_command(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """``boot`` and ``fleet boot`` (summary and JUnit) with ``--tftp`` and no ``--lab``: the CUCM procedure,
    the command that acts on the emulated phones (``phone erase`` of their flashes), the rehearsal; was
    ``lab: phoneemu lab itl-reset DIR localkey && phoneemu boot --lab DIR --flash <flash> && ...``, a lab
    the user does not have around the user's own flash."""
    lab = _locked_lab(tmp_path)
    ports, stop = serve_in_thread(lab)
    try:
        at = ["--tftp", f"127.0.0.1:{ports['tftp']}", "--http-port", str(ports["http"]), "--timeout", "1"]
        flash = tmp_path / "one" / MAC
        assert main(["boot", *at, "--now", str(NOW), "--flash", str(flash)]) == 1
        out = capsys.readouterr().out
        assert "locked out: yes" in out, out
        _no_lab_command(out)
        assert f"    on the emulated phone: phoneemu phone erase --flash {flash}   rehearse in " \
               "a lab: phoneemu run scenarios/migration-manual-itl-delete.yaml" in out, out
        junit = tmp_path / "fleet.xml"
        assert main(["fleet", "boot", *at, "--flash", str(tmp_path / "fleet"), "--junit", str(junit),
                     "-q"]) == 1
        out = capsys.readouterr().out
        assert "(ITL; 2 phones locked out)" in out, out
        _no_lab_command(out)
        assert f"on the emulated phones: phoneemu phone erase --fleet-flash {tmp_path / 'fleet'}   " in out
    finally:
        stop()
    failed = [case.find("failure") for case in ET.parse(junit).getroot().iter("testcase")]
    failures = [failure.text or "" for failure in failed if failure is not None]
    assert len(failures) == 2
    for body in failures:
        _no_lab_command(body)
        assert f"on the emulated phone: phoneemu phone erase --flash {tmp_path / 'fleet'}/" in body, body
