"""``phoneemu replay`` and the TLS key log beside the capture (``--capture F.pcap`` writes ``F.keys``).

Before, ``replay capC.pcap --mac M`` (and ``--all``) of a capture whose phones TVS answered said
``locked-out (G.3.4-tvs-unreachable) ... TVS unavailable offline``, ``locked out: yes``, nothing on stderr,
and its first way out was to bring back a TVS that had answered: ``capC.keys`` beside it was not used
(``wireshark`` takes it up). Now the key log beside the capture is used unless ``--keylog`` names one,
said on stderr; without any key log the TLS connections it cannot read are said on stderr, and a lockout
resting on the offline TVS is qualified as ``predict`` qualifies it: *if its TVS cannot be reached*
(text, JSON ``locked_out_tvs_offline``, JUnit). The capture: the catalogue's migration, whose phones'
TVS answered that it does not know the new cluster's signer (``G.3.4-tvs-unknown-signer``).
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from phoneemu.cli import main

ROOT = Path(__file__).resolve().parents[2]
MIGRATION = ROOT / "captures" / "migration-itl-signer-unknown.pcap"
PHONE = "0A0000000501"
IF_UNREACHED = "if its TVS cannot be reached"
Capsys = pytest.CaptureFixture[str]


def _capture(tmp_path: Path, *, keys: str | None = "copy") -> Path:
    """The migration capture as ``tmp_path/capC.pcap``; beside it ``capC.keys``: its key log (``copy``),
    that text, or none (None)."""
    pcap = tmp_path / "capC.pcap"
    shutil.copyfile(MIGRATION, pcap)
    if keys == "copy":
        shutil.copyfile(MIGRATION.with_suffix(".keys"), tmp_path / "capC.keys")
    elif keys is not None:
        (tmp_path / "capC.keys").write_text(keys)
    return pcap


def test_one_phone_uses_the_key_log_beside_the_capture(tmp_path: Path,
                                                       capsys: Capsys) -> None:
    pcap = _capture(tmp_path)
    assert main(["replay", str(pcap), "--mac", PHONE, "--json"]) == 1
    said = capsys.readouterr()
    doc = json.loads(said.out)
    assert doc["boots"][-1]["report"]["deciding"]["rule"] == "G.3.4-tvs-unknown-signer"
    assert doc["offline"]["tvs"].startswith("answers from the capture (2 exchanges decrypted")
    assert said.err.count(f"using the TLS key log {tmp_path / 'capC.keys'} beside the capture") == 1
    assert doc["boots"][-1]["locked_out_tvs_offline"] is False


def test_every_phone_uses_the_key_log_beside_the_capture(tmp_path: Path,
                                                         capsys: Capsys) -> None:
    pcap = _capture(tmp_path)
    assert main(["replay", str(pcap), "--all"]) == 1
    said = capsys.readouterr()
    assert "failed: 2 phones locked-out (G.3.4-tvs-unknown-signer)" in said.out
    assert "tvs-unreachable" not in said.out and IF_UNREACHED not in said.out
    assert said.err.count(f"using the TLS key log {tmp_path / 'capC.keys'} beside the capture") == 1


def test_keylog_given_wins_over_the_one_beside(tmp_path: Path, capsys: Capsys) -> None:
    pcap = _capture(tmp_path)
    other = tmp_path / "other.keys"
    other.write_text("# SSL/TLS secrets log file\n")  # holds no secret: no exchange decrypted
    assert main(["replay", str(pcap), "--mac", PHONE, "--keylog", str(other), "--json"]) == 1
    said = capsys.readouterr()
    doc = json.loads(said.out)
    assert doc["boots"][-1]["report"]["deciding"]["rule"] == "G.3.4-tvs-unreachable"
    assert "beside the capture" not in said.err and f"--keylog {other}: no secrets" in said.err


def test_a_key_log_beside_that_does_not_decode_is_said_and_not_used(tmp_path: Path,
                                                                     capsys: Capsys) -> None:
    bad = "CLIENT_RANDOM 00 11\n"
    pcap = _capture(tmp_path, keys=bad)
    assert main(["replay", str(pcap), "--mac", PHONE, "--json"]) == 1  # not fatal: it was not asked for
    said = capsys.readouterr()
    assert json.loads(said.out)["boots"][-1]["report"]["deciding"]["rule"] == "G.3.4-tvs-unreachable"
    assert f"warning: the TLS key log beside the capture, {tmp_path / 'capC.keys'}, is not used: " in said.err
    assert "malformed CLIENT_RANDOM line" in said.err
    assert main(["replay", str(pcap), "--mac", PHONE, "--keylog", str(tmp_path / "capC.keys")]) == 2  # asked


def test_without_a_key_log_one_phone_says_so_and_qualifies_the_lockout(tmp_path: Path,
                                                                        capsys: Capsys) -> None:
    pcap = _capture(tmp_path, keys=None)
    assert main(["replay", str(pcap), "--mac", PHONE]) == 1
    said = capsys.readouterr()
    assert "warning: 2 TLS connections (TVS, CAPF) in the capture not decrypted" in said.err
    assert said.err.count("not decrypted") == 1
    (result,) = [line for line in said.out.splitlines() if "locked out: yes" in line]
    assert result.endswith(f"locked out: yes, {IF_UNREACHED} (offline: give --keylog FILE, the capture's TLS "
                           "key log, or --tvs-cert)")
    assert main(["replay", str(pcap), "--mac", PHONE, "--json"]) == 1
    boots = json.loads(capsys.readouterr().out)["boots"]
    assert [b["locked_out_tvs_offline"] for b in boots] == [False, True]


def test_without_a_key_log_every_phone_is_qualified(tmp_path: Path, capsys: Capsys) -> None:
    pcap = _capture(tmp_path, keys=None)
    junit = tmp_path / "phones.xml"
    assert main(["replay", str(pcap), "--all", "--junit", str(junit)]) == 1
    said = capsys.readouterr()
    assert "warning: 2 TLS connections (TVS, CAPF) in the capture not decrypted" in said.err
    assert (f"locked out {IF_UNREACHED.replace('its', 'their')}: 2 of the 2 phones locked out (offline: give "
            "--keylog FILE, the capture's TLS key log, or --tvs-cert)") in said.out
    cases = ET.parse(junit).getroot().findall("testsuite/testcase")
    bodies = [(c.find("failure").text or "") for c in cases]  # type: ignore[union-attr]
    assert all(f"locked out {IF_UNREACHED}" in body for body in bodies) and len(bodies) == 2
    assert main(["replay", str(pcap), "--all", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["locked_out_tvs_offline"] == 2
    assert [b["locked_out_tvs_offline"] for b in doc["records"][0]["boots"]] == [False, True]


def test_a_report_over_the_key_log_beside_is_refused(tmp_path: Path, capsys: Capsys) -> None:
    pcap = _capture(tmp_path)
    keys = tmp_path / "capC.keys"
    assert main(["replay", str(pcap), "--all", "--junit", str(keys)]) == 2
    assert "the report would overwrite it" in capsys.readouterr().err
    assert keys.read_bytes() == MIGRATION.with_suffix(".keys").read_bytes()


def test_no_keylog_replays_as_without_any(tmp_path: Path, capsys: Capsys) -> None:
    """``--no-keylog``: what if TVS were down (or vouched, ``--tvs-cert``), whatever lies beside the capture;
    asked for, so no warning of the connections not decrypted; the lockout qualified all the same."""
    pcap = _capture(tmp_path)
    keys = tmp_path / "capC.keys"
    for one, whose in ((["--mac", PHONE], "its"), (["--all"], "their")):
        assert main(["replay", str(pcap), *one, "--no-keylog"]) == 1
        said = capsys.readouterr()
        assert "G.3.4-tvs-unreachable" in said.out and f"if {whose} TVS cannot be reached" in said.out
        assert said.err == ""
    assert main(["replay", str(pcap), "--mac", PHONE, "--no-keylog", "--keylog", str(keys)]) == 2
    assert "--no-keylog uses no key log: not with --keylog" in capsys.readouterr().err
    assert main(["replay", str(pcap), "--all", "--no-keylog", "--junit", str(keys)]) == 1  # not an input
