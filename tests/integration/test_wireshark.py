"""``phoneemu wireshark`` and the TVS/CAPF Lua dissector (tshark runs only where it is installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.commands.wireshark import dissector_path, tls_server_ports, tshark_args
from phoneemu.net.capture import PcapWriter, TcpFlow
from phoneemu.protocols import tvs

ROOT = Path(__file__).resolve().parents[2]
MIGRATION = ROOT / "captures" / "migration-itl-signer-unknown.pcap"
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def test_ports_and_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert dissector_path().is_file()
    (port,) = tls_server_ports(MIGRATION)  # the TVS of cluster "old": the only TLS server (ephemeral port)
    assert main(["wireshark", str(MIGRATION), "--print"]) == 0
    out = capsys.readouterr().out
    assert f"-d tcp.port=={port},tls" in out and f"tls.keylog_file:{MIGRATION.with_suffix('.keys')}" in out
    assert main(["wireshark", "--lua"]) == 0 and capsys.readouterr().out.strip() == str(dissector_path())
    assert main(["wireshark"]) == 2
    assert main(["wireshark", str(MIGRATION), "--keylog", "/nonexistent.keys", "--print"]) == 2


def test_a_gzipped_capture_takes_the_key_log_beside_it(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """``x.pcap.gz`` (a capture gzipped afterwards) takes ``x.keys`` as ``x.pcap`` does (it looked for
    ``x.pcap.keys``), and its TLS ports are found through the gzip."""
    import gzip

    gz = tmp_path / "migration.pcap.gz"
    gz.write_bytes(gzip.compress(MIGRATION.read_bytes()))
    keys = tmp_path / "migration.keys"
    keys.write_bytes(MIGRATION.with_suffix(".keys").read_bytes())
    assert main(["wireshark", str(gz), "--print"]) == 0
    out = capsys.readouterr().out
    assert f"tls.keylog_file:{keys}" in out and "-d tcp.port==" in out


def test_install_copies_into_the_personal_plugin_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["wireshark", "--install"]) == 0
    installed = tmp_path / ".local/lib/wireshark/plugins/phoneemu_tvs_capf.lua"
    assert installed.read_bytes() == dissector_path().read_bytes()
    assert str(installed) in capsys.readouterr().out


def _fields(pcap: Path, extra: list[str], *fields: str) -> list[list[str]]:
    args = ["tshark", *tshark_args(pcap, None, []), *extra, "-T", "fields"]
    for f in fields:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout
    return [line.split("\t") for line in out.splitlines()]


@needs_tshark
def test_committed_capture_decodes_tvs_in_tls() -> None:
    keys = MIGRATION.with_suffix(".keys")
    (port,) = tls_server_ports(MIGRATION)
    rows = _fields(MIGRATION, ["-o", f"tls.keylog_file:{keys}", "-d", f"tcp.port=={port},tls", "-Y", "tvs"],
                   "tvs.type", "tvs.session_id", "tvs.device_name", "tvs.status")
    assert sorted(rows) == [["3", "1", "SEP0A0000000501", ""], ["3", "2", "SEP0A0000000502", ""],
                    ["4", "1", "", "1"], ["4", "2", "", "1"]]


@needs_tshark
def test_reassembly_and_malformed_elements(tmp_path: Path) -> None:
    """A message split across segments is reassembled; malformed elements are expert errors, and
    the dissector goes on with the next message."""
    good = tvs.encode(tvs.query_request(7, "CP-8861-SEP001122334455", "CN=a", "CN=b", b"\x01\x02"))
    pcap = tmp_path / "plain.pcap"
    with PcapWriter(pcap) as w:
        flow = TcpFlow(w, ("127.0.0.1", 40000), ("127.0.0.2", 2445))
        flow.open()
        flow.client_data(good[:7])
        flow.client_data(good[7:])
        flow.server_data(b"\x57\x01\x04\x00\x00\x00\x00\x07\x00\x04\x07\x00\x05\x01")  # overruns its body
        flow.client_data(b"\x57\x01\x02\x00\x00\x00\x00\x08\x00\x02\x07\x00")  # element header cut
        flow.close()
        capf_flow = TcpFlow(w, ("127.0.0.1", 40001), ("127.0.0.2", 3804))
        capf_flow.open()
        capf_flow.server_data(b"\x55\x0f\x00\x00\x00\x09\x00\x04\x01\x00\x01\x01")  # END_SESSION
        capf_flow.close()
    rows = _fields(pcap, ["-d", "tcp.port==2445,tvs", "-Y", "tvs"], "tvs.type", "tvs.device_name",
                   "_ws.expert.message")
    assert rows[0] == ["3", "CP-8861-SEP001122334455", ""]
    assert rows[1][0] == "4" and "overruns the body" in rows[1][2]
    assert rows[2][0] == "2" and "truncated" in rows[2][2]
    capf = _fields(pcap, ["-d", "tcp.port==3804,capf", "-Y", "capf"], "capf.command", "capf.session_id",
                   "capf.reason")
    assert capf == [["15", "9", "1"]]


@needs_tshark
def test_committed_vouching_capture_shows_roles_and_ttl(capsys: pytest.CaptureFixture[str]) -> None:
    pcap = ROOT / "captures" / "callmanager-regenerated-via-tvs.pcap"
    (port,) = tls_server_ports(pcap)
    rows = _fields(pcap, ["-o", f"tls.keylog_file:{pcap.with_suffix('.keys')}", "-d", f"tcp.port=={port},tls",
                          "-Y", "tvs.type == 4"], "tvs.status", "tvs.role", "tvs.ttl")
    assert rows == [["0", "0,2", "86400"], ["0", "0,2", "86400"]]
    assert main(["wireshark", str(pcap)]) == 0  # tshark's own output goes straight to the terminal
