"""``phoneemu replay CAPTURE --all``: every phone of a capture replayed at once, as each alone would be.

The committed captures (``captures/``) hold 1 to 3 phones each, with their TLS key logs: every phone's
every boot decides the same replayed with the others as replayed alone (``--mac``), TVS answering from
the capture. ``--fleet-flash`` gives each phone its own flash (model, installed files, keys): the
SHA-512 capture's cp-7962 locks out there, as the scenario that made it says.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.net.tls_decrypt import read_keylog
from phoneemu.scenario.replay import replay_phone
from phoneemu.scenario.replay_fleet import replay_fleet, scan_fleet
from phoneemu.scenario.replay_tvs import scan_capture

ROOT = Path(__file__).resolve().parents[2]
CAPTURES = sorted((ROOT / "captures").glob("*.pcap"))
SHA512 = ROOT / "captures" / "sha512-signing-sha1-phone.pcap"
MIGRATION = ROOT / "captures" / "migration-itl-signer-unknown.pcap"


@pytest.fixture
def offline(tmp_path: Path) -> Path:
    """:data:`MIGRATION` without its key log beside it (replay would use it): its phones' TVS unreachable."""
    shutil.copyfile(MIGRATION, tmp_path / MIGRATION.name)
    return tmp_path / MIGRATION.name


def _decisions(report: Any) -> dict[str, Any]:
    return {k: v for k, v in report.as_dict().items() if k != "duration_s"}


@pytest.mark.parametrize("pcap", CAPTURES, ids=[p.stem for p in CAPTURES])
def test_every_phone_decides_as_when_replayed_alone(pcap: Path) -> None:
    keys = read_keylog(pcap.with_suffix(".keys"))
    fleet = scan_fleet(pcap, secrets=keys)
    try:
        phones = asyncio.run(replay_fleet(fleet, reduce=lambda ph: ph, use_keylog=True))
    finally:
        fleet.close()
    assert phones and all(ph.skipped is None for ph in phones)
    for ph in phones:
        alone = scan_capture(pcap, mac=ph.mac, secrets=keys)
        ref = asyncio.run(replay_phone(alone.index, ph.mac, tvs_capture=alone.tvs, sip_capture=alone.sip))
        assert [(r.served, _decisions(r.report), [c.as_dict() for c in r.sip]) for r in ph.results] == \
            [(r.served, _decisions(r.report), [c.as_dict() for c in r.sip]) for r in ref]


def test_cli_summary_groups_the_locked_out_phones(offline: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(offline), "--all"]) == 1
    out = capsys.readouterr().out
    assert "replay of 2 phones (4 boots)" in out
    assert "0A0000000501  2 boots  ok -> locked-out (G.3.4-tvs-unreachable)" in out
    assert "changed across the capture's boots: ok -> locked-out 2" in out
    assert "failed: 2 phones locked-out (G.3.4-tvs-unreachable)" in out
    # moved: the new cluster's bulk ITL reset, signed by a CallManager key not in their ITL, is not offered
    head = "ways out of G.3.4-tvs-unreachable (ITL, holding no CTL, not the signer of the ITL reset; 2 phones"
    assert f"{head} locked out):" in out, out
    assert "itl-reset" not in out.split(head, 1)[1], out
    assert "0A0000000501, 0A0000000502" in out
    assert "result: 0 of 2 phones ended with a configuration accepted" in out


def test_cli_json_with_the_key_log_and_a_fleet_flash(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    flash = tmp_path / "fleet" / "0A0000001602"
    flash.mkdir(parents=True)
    (flash / "phone.json").write_text(json.dumps({"mac": "0A0000001602", "profile": "cp-7962"}))
    assert main(["replay", str(SHA512), "--all", "--fleet-flash", str(tmp_path / "fleet"),
                 "--keylog", str(SHA512.with_suffix(".keys")), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["phones"] == 2 and doc["boots"] == 4
    assert doc["by_outcome"] == {"ok": 1, "locked-out": 1}
    one, two = doc["records"]
    assert (one["mac"], one["profile"], one["outcome"]) == ("0A0000001601", "cp-8861", "ok")
    assert one["notes"] == [f"no flash {tmp_path / 'fleet' / '0A0000001601'}: holds what the options say"]
    assert (two["profile"], two["rule"]) == ("cp-7962", "G.3.1-unsupported-hash")
    assert [b["outcome"] for b in two["boots"]] == ["ok", "locked-out"]
    assert doc["failure_kinds"][0]["macs"] == ["0A0000001602"]
    assert doc["offline"]["tvs"].startswith("answers from the capture")


def test_cli_all_checks_every_phones_registrations(capsys: pytest.CaptureFixture[str]) -> None:
    """``--all`` sets each phone's SIP registrations against the rules as ``--mac`` does, and counts them
    (the encrypted phone's five, the non-secure phone's two); none differs in this capture."""
    pcap = ROOT / "captures" / "sip-tls-callmanager-in-ctl.pcap"
    assert main(["replay", str(pcap), "--all"]) == 0
    assert "SIP: 7 registrations checked against the rules (G.9, G.5), 0 differ (as the rules say)" in \
        capsys.readouterr().out
    assert main(["replay", str(pcap), "--all", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["sip_checked"] == 7 and doc["sip_differ_kinds"] == []
    first = doc["records"][0]["boots"][0]["sip"][0]
    assert (first["transport"], first["expected"], first["transport_rule"]) == \
        ("tcp", "tcp", "G.9-fallback-tcp")


def test_cli_all_phones_ok_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    pcap = ROOT / "captures" / "first-boot-trusts-first-itl.pcap"
    assert main(["replay", str(pcap), "--all"]) == 0
    assert "result: 3 of 3 phones ended with a configuration accepted" in capsys.readouterr().out


@pytest.mark.parametrize(("argv", "words"), [
    (["--all", "--mac", "0A0000000501"], "--mac is for one phone: not with --all"),
    (["--all", "--list"], "--list is for one phone"),
    (["--all", "--flash", "x"], "--flash is for one phone"),
    (["--fleet-flash", "x", "--mac", "0A0000000501"], "--fleet-flash is for --all"),
    (["--all", "--fleet-flash", "no-such-folder"], "no-such-folder: no such folder"),
])
def test_cli_option_conflicts_are_one_line(argv: list[str], words: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(MIGRATION), *argv]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_cli_capture_without_phones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from phoneemu.net.capture import PcapWriter

    empty = tmp_path / "empty.pcap"
    with PcapWriter(empty):
        pass
    assert main(["replay", str(empty), "--all"]) == 2
    assert "no phone's download in the capture (0 packet(s)" in capsys.readouterr().err


@pytest.mark.parametrize("cut_at", ["first config request", "last answer"])
def test_a_capture_ending_during_boots_names_them_held_in_part(tmp_path: Path, cut_at: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """The capture ends before both phones' last config requests (not requested), or before the last
    answer of the capture (one phone's download still open at its end)."""
    from phoneemu.net.capture import read_pcap

    packets = list(read_pcap(MIGRATION))
    if cut_at == "last answer":
        end = max(p.offset for p in packets if p.payload.startswith(b"HTTP/1.1 200 OK"))
        held_in_part = 1
    else:
        end = min(p.offset for p in packets[len(packets) // 2:] if b".cnf.xml.sgn HTTP" in p.payload)
        held_in_part = 2
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(MIGRATION.read_bytes()[:end])
    assert main(["replay", str(cut), "--all", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    partial = [r["mac"] for r in doc["records"] if "not_captured" in r["boots"][-1]]
    assert len(partial) == held_in_part
    assert all("not_captured" not in r["boots"][0] for r in doc["records"])
    mac = partial[0]
    assert doc["partial_kinds"] == [{"count": held_in_part, "not_captured": "SEP{mac}.cnf.xml.sgn",
                                     "macs": partial}]
    assert all("the capture holds this boot in part" in k["partial"] for k in doc["failure_kinds"]
               if set(k["macs"]) <= set(partial))
    assert main(["replay", str(cut), "--all"]) == 1
    out = capsys.readouterr().out
    names = f"SEP{mac}.cnf.xml.sgn" if held_in_part == 1 else "SEP{mac}.cnf.xml.sgn"
    assert (f"held in part: the last boot of {held_in_part} phone{'s' if held_in_part > 1 else ''} asked for "
            f"{names}, whose request or whole answer is not in that boot of the capture") in out
    assert main(["replay", str(cut), "--mac", mac]) == 1
    assert f"the capture holds this boot in part: SEP{mac}.cnf.xml.sgn" in capsys.readouterr().out


def test_installed_config_dir_gives_each_phone_its_config(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from phoneemu.scenario.replay import boots_of, index_capture

    first = boots_of(index_capture(MIGRATION), "0A0000000501")[0]
    got = {d.name: d.data for d in first.own if d.ok and d.data}
    itl = tmp_path / "ITLFile.tlv"
    itl.write_bytes(got["ITLSEP0A0000000501.tlv"])
    configs = tmp_path / "tftp"
    configs.mkdir()
    (configs / "SEP0A0000000501.cnf.xml.sgn").write_bytes(got["SEP0A0000000501.cnf.xml.sgn"])
    assert main(["replay", str(MIGRATION), "--all", "--installed-itl", str(itl), "--installed-config-dir",
                 str(configs), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    one, two = doc["records"]
    assert one["notes"] == [] and one["boots"][0]["itl"] == "unchanged"
    assert two["notes"] == [f"no {configs / 'SEP0A0000000502.cnf.xml.sgn'} (nor .cnf.xml): holds no config"]
    assert main(["replay", str(MIGRATION), "--all", "--installed-config-dir", str(configs)]) == 1
    out = capsys.readouterr().out
    assert f"holding each its config from {configs}" in out
    assert "note for 1 phone (0A0000000502): no " in out
    assert main(["replay", str(MIGRATION), "--mac", "0A0000000501",
                 "--installed-config-dir", str(configs)]) == 2
    assert "--installed-config-dir is for --all" in capsys.readouterr().err


def test_a_flash_of_another_phone_is_not_replayed_and_says_why(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    wrong = tmp_path / "fleet" / "0A0000000501"
    wrong.mkdir(parents=True)
    (wrong / "phone.json").write_text(json.dumps({"mac": "0A0000000999", "profile": "cp-8861"}))
    assert main(["replay", str(MIGRATION), "--all", "--fleet-flash", str(tmp_path / "fleet")]) == 1
    out = capsys.readouterr().out
    assert "each phone's last boot: " in out and "locked-out 1" in out and "skipped 1" in out
    assert (f"not replayed: 1 phone (0A0000000501): {wrong}: the flash is phone 0A0000000999's, not "
            "0A0000000501's") in out


def test_junit_has_a_case_per_phone(offline: Path, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    import xml.etree.ElementTree as ET

    report = tmp_path / "phones.xml"
    assert main(["replay", str(offline), "--all", "--junit", str(report)]) == 1
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "2" and suite.get("failures") == "2"
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["0A0000000501", "0A0000000502"]
    failure = cases[0].find("failure")
    assert failure is not None
    assert (failure.get("message") or "").startswith("boot 2 of 2: locked-out (G.3.4-tvs-unreachable): ")
    assert "boot 1 against 127.0.0.11: ok (G.4-signed-by-itl-tftp)" in (failure.text or "")
    ok = ROOT / "captures" / "first-boot-trusts-first-itl.pcap"
    assert main(["replay", str(ok), "--all", "--junit", str(report)]) == 0
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and len(suite.findall("testcase")) == 3
    capsys.readouterr()
    assert main(["replay", str(ok), "--mac", "0A0000000001", "--junit", str(report)]) == 2
    assert "--junit is for --all" in capsys.readouterr().err
    assert main(["replay", str(ok), "--all", "--junit", str(tmp_path / "no" / "such" / "x.xml")]) == 2
    assert "--junit" in capsys.readouterr().err


def test_export_flash_then_predict_every_phone(offline: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """--export-flash writes what each phone holds after the capture; predict --fleet-flash then says
    what new files would do to every one of them. The migration capture's phones end locked out on the
    new cluster holding the old cluster's ITL: the new cluster's ITL still is refused (TVS unreachable
    offline), the old one is accepted again."""
    from phoneemu.scenario.replay import boots_of, index_capture

    site = tmp_path / "site"
    assert main(["replay", str(offline), "--all", "--export-flash", str(site)]) == 1
    assert f"flashes of 2 phones written to {site}/<MAC> (phoneemu predict --fleet-flash {site} NEW-FILES" \
        in capsys.readouterr().out
    idx = index_capture(MIGRATION)
    for mac in ("0A0000000501", "0A0000000502"):
        first, second = boots_of(idx, mac)
        held = {d.name: d.data for d in first.own if d.ok and d.data}
        assert (site / mac / "ITLFile.tlv").read_bytes() == held[f"ITLSEP{mac}.tlv"]  # the new one refused
        assert json.loads((site / mac / "phone.json").read_text()) == {"mac": mac, "profile": "cp-8861"}
        assert json.loads((site / mac / "last-boot.json").read_text())["locked_out"] is True
        new_itl = next(d.data for d in second.own if d.name == f"ITLSEP{mac}.tlv" and d.data)
    old = tmp_path / "old" / "ITLFile.tlv"
    old.parent.mkdir()
    old.write_bytes(held[f"ITLSEP{mac}.tlv"])
    new = tmp_path / "new" / "ITLFile.tlv"
    new.parent.mkdir()
    new.write_bytes(new_itl)
    assert main(["predict", "--fleet-flash", str(site), str(new), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["predicted"] == 2 and doc["outcomes"]["locked-out"] == 2  # fleet boot's name
    assert main(["predict", "--fleet-flash", str(site), str(old), "--json"]) in (0, 1)
    doc = json.loads(capsys.readouterr().out)
    assert doc["predicted"] == 2 and doc["outcomes"]["locked-out"] == 0
    # a folder that holds anything already is refused: flashes are never mixed or replaced
    assert main(["replay", str(MIGRATION), "--all", "--export-flash", str(site)]) == 2
    assert "not empty" in capsys.readouterr().err


def test_models_file_gives_each_phone_its_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CUCM phone export's Device Name and Device Type columns: the SHA-512 capture's cp-7962 locks
    out as it did live; a model without a profile keeps the default, noted."""
    models = tmp_path / "phones.csv"
    models.write_text("Device Name,Device Type,Description\n"
                      "SEP0A0000001602,Cisco 7962,lobby\n"
                      "0a:00:00:00:16:01;Cisco 7841\n")
    assert main(["replay", str(SHA512), "--all", "--models", str(models), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    one, two = doc["records"]
    assert (one["profile"], one["outcome"]) == ("cp-8861", "ok")
    assert one["notes"] == [f"model 'Cisco 7841' ({models}) has no profile here: replayed as cp-8861"]
    assert (two["profile"], two["rule"]) == ("cp-7962", "G.3.1-unsupported-hash")
    assert doc["by_model"] == {"cp-7962": {"locked-out": 1}, "cp-8861": {"ok": 1}}
    assert main(["replay", str(SHA512), "--all", "--models", str(models)]) == 1
    assert "by model (last boot): cp-7962 locked-out 1; cp-8861 ok 1" in capsys.readouterr().out


@pytest.mark.parametrize(("text", "words"), [
    ("SEP0A0000001602,Cisco 7962\nnot-a-mac,Cisco 7962\n", ":2: 'not-a-mac' is not a MAC address"),
    ("SEP0A0000001602\n", ":1: SEP0A0000001602: no model after the MAC"),
    ("0A0000001602 cp-7962\n0A:00:00:00:16:02 cp-7962\n", ":2: 0A0000001602 is given on line 1 too"),
])
def test_a_bad_models_file_names_its_line(tmp_path: Path, text: str, words: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    models = tmp_path / "m.txt"
    models.write_text(text)
    assert main(["replay", str(SHA512), "--all", "--models", str(models)]) == 2
    err = capsys.readouterr().err
    assert f"{models}{words}" in err and err.count("\n") == 1


def test_list_and_a_missing_mac_point_at_all(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(MIGRATION), "--list"]) == 0
    assert capsys.readouterr().out.rstrip().endswith(
        "2 phones: replay --mac MAC replays one, replay --all every one")
    assert main(["replay", str(MIGRATION)]) == 2
    assert "--all to replay every one" in capsys.readouterr().err


def test_a_key_log_without_secrets_is_said_with_all_too(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty.keys"
    empty.write_text("# SSL/TLS secrets log file, generated by phoneemu\n")
    assert main(["replay", str(MIGRATION), "--all", "--keylog", str(empty)]) == 1
    assert f"replay: warning: --keylog {empty}: no secrets" in capsys.readouterr().err


def test_json_file_keeps_the_document_and_prints_the_summary(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "phones.json"
    assert main(["replay", str(MIGRATION), "--all", "--json-file", str(out)]) == 1
    assert "each phone's last boot: locked-out 2" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert doc["phones"] == 2 and [r["mac"] for r in doc["records"]] == ["0A0000000501", "0A0000000502"]
    assert doc["fleet_flash"] is None and doc["installed"] == {"ctl": None, "itl": None, "config": None}
    assert main(["replay", str(MIGRATION), "--mac", "0A0000000501", "--json-file", str(out)]) == 2
    assert "--json-file is for --all" in capsys.readouterr().err


def test_ways_out_name_the_fleet_flash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The way out done phone by phone is written for the phones' flashes when known (README "ways out":
    the phone flash filled in), not FLEET: those the capture leaves (--export-flash), else those the
    phones held before it (--fleet-flash)."""
    before = tmp_path / "before"
    before.mkdir()
    assert main(["replay", str(MIGRATION), "--all", "--fleet-flash", str(before)]) == 1
    out = capsys.readouterr().out
    assert f"lab: phoneemu phone erase --fleet-flash {before}   rehearse:" in out and "FLEET" not in out
    after = tmp_path / "after"
    assert main(["replay", str(MIGRATION), "--all", "--fleet-flash", str(before),
                 "--export-flash", str(after)]) == 1
    assert f"lab: phoneemu phone erase --fleet-flash {after}   rehearse:" in capsys.readouterr().out
    assert main(["replay", str(MIGRATION), "--all"]) == 1
    assert "lab: phoneemu phone erase --fleet-flash FLEET   rehearse:" in capsys.readouterr().out


def test_tvs_outage_capture_ok_locked_out_ok(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalogue's tvs-outage, captured live and replayed with its key log: each phone's boots are
    ok, locked-out (TVS down), ok. The line per phone, the summary and the JSON say so, and the exit
    status 1 (a boot did not accept a configuration) names that boot."""
    monkeypatch.setenv("PHONEEMU_LAB_HOST_BASE", "29")  # no other test's clusters in the pcap
    assert main(["run", str(ROOT / "scenarios" / "tvs-outage.yaml"), "--capture", str(tmp_path)]) == 0
    capsys.readouterr()
    if (tmp_path / "tvs-outage.note.txt").exists():
        pytest.skip("synthetic capture (no raw socket): the phones' HTTP and TVS are not in the pcap")
    pcap, keys = tmp_path / "tvs-outage.pcap", tmp_path / "tvs-outage.keys"
    assert main(["replay", str(pcap), "--all", "--keylog", str(keys)]) == 1
    out = capsys.readouterr().out
    assert "  0A0000001201  3 boots  ok -> locked-out -> ok (" in out
    assert "changed across the capture's boots: ok -> locked-out -> ok 2" in out
    assert out.rstrip().splitlines()[-1] == (
        "exit status 1: not every replayed boot accepted a configuration: 2 phones, 2 of them ending ok "
        "(0A0000001201: boot 2 of 3 locked-out, G.3.4-tvs-unreachable)")
    assert main(["replay", str(pcap), "--all", "--keylog", str(keys), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["changed"] == {"ok -> locked-out -> ok": 2} and doc["by_outcome"] == {"ok": 2}
    assert doc["exit_status"] == 1 and doc["exit_why"].startswith("not every replayed boot accepted")
