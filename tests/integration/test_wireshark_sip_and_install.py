"""``phoneemu wireshark`` as a Wireshark user meets it: SIP over TLS, an installed copy of the dissector."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.commands.wireshark import tls_server_ports, tshark_args

ROOT = Path(__file__).resolve().parents[2]
SIPS = ROOT / "captures" / "sip-tls-callmanager-in-ctl.pcap"
MIGRATION = ROOT / "captures" / "migration-itl-signer-unknown.pcap"
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def _tshark(pcap: Path, home: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    keys = pcap.with_suffix(".keys")
    args = ["tshark", *tshark_args(pcap, keys, tls_server_ports(pcap)), *extra]
    env = {**os.environ, "HOME": str(home)}  # personal plugins from there only
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False, env=env)


@needs_tshark
def test_sip_over_tls_on_an_ephemeral_port_is_decoded(tmp_path: Path) -> None:
    """SIP over TLS on a port other than 5061 (a lab registrar) reaches Wireshark's SIP dissector
    (spec §G.9, §G.13: the registrations a phone in secure mode makes), not 'Application Data'."""
    done = _tshark(SIPS, tmp_path, "-Y", "sip && tls", "-T", "fields", "-e", "sip.CSeq.method",
                   "-e", "sip.Status-Code")
    assert done.returncode == 0, done.stderr
    rows = {tuple(line.split("\t")) for line in done.stdout.splitlines()}
    assert ("REGISTER", "") in rows and ("REGISTER", "200") in rows


@needs_tshark
def test_installed_copy_and_lua_script_load_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After --install, the -X lua_script: copy that phoneemu wireshark passes does nothing (no Lua
    error for two protocols of one name) and TVS still decodes (spec §E)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["wireshark", "--install"]) == 0
    done = _tshark(MIGRATION, tmp_path, "-Y", "tvs", "-T", "fields", "-e", "tvs.type")
    assert "Lua: Error" not in done.stderr and done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == ["3", "3", "4", "4"]


def test_stale_installed_copy_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """An installed dissector that is not this phoneemu's is the one Wireshark decodes with: named on
    stderr with the way to replace it; an up-to-date one is not mentioned."""
    monkeypatch.setenv("HOME", str(tmp_path))
    plugin = tmp_path / ".local/lib/wireshark/plugins/phoneemu_tvs_capf.lua"
    plugin.parent.mkdir(parents=True)
    plugin.write_text("-- an older phoneemu's dissector\n")
    assert main(["wireshark", str(MIGRATION), "--print"]) == 0
    err = capsys.readouterr().err
    assert str(plugin) in err and "phoneemu wireshark --install" in err
    assert main(["wireshark", "--install"]) == 0
    capsys.readouterr()
    assert main(["wireshark", str(MIGRATION), "--print"]) == 0
    assert capsys.readouterr().err == ""
