"""``phoneemu predict --fleet-flash``: how many phones of a fleet lock out? (fully offline)

Five emulated phones boot (in memory, on the lab's files) into their own flash folders: three on the
cluster's first ITL, two after ITLRecovery was regenerated. Then CallManager is regenerated and the
TFTP root after the change is predicted for the whole fleet: the older phones lock out (their TVS is
unreachable; the new ITL's signer is unknown to them), the newer ones accept it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

import phoneemu.scenario.predict as predict_mod
from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import boot_offline_into, run

NOW = 1_780_000_000
OLD = [f"0A00000000E{i}" for i in range(1, 4)]  # booted on the first ITL
NEW = ["0A00000000F1", "0A00000000F2"]  # booted after ITLRecovery was regenerated


async def _boot_into(fleet: Path, c: LabCluster, macs: list[str]) -> None:
    for report in await boot_offline_into(fleet, c, macs, now=NOW):
        assert report.ok and report.trust["ITL"] == "installed"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The fleet's flash folder, the TFTP root after the change, the new ITLRecovery certificate."""
    tmp = tmp_path_factory.mktemp("fleet")
    c = LabCluster.init(tmp / "lab", seed=41, key_spec="rsa1024", now=NOW, name="c")
    c.add_phones([*OLD, *NEW], now=NOW)
    fleet = tmp / "fleet"
    run(_boot_into(fleet, c, OLD))
    c.regenerate("itlrecovery", now=NOW)
    run(_boot_into(fleet, c, NEW))
    c.regenerate("callmanager", now=NOW)
    pem = tmp / "itlrecovery.pem"
    pem.write_bytes(c.identity("itlrecovery").cert.public_bytes(Encoding.PEM))
    return fleet, tmp / "lab" / "tftp", pem


def _copy(fleet: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(fleet, dest)
    return dest


def test_fleet_counts_lockouts_by_rule(lab: tuple[Path, Path, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    fleet, root, _pem = lab
    fleet = _copy(fleet, tmp_path / "fleet")
    (fleet / "junk").mkdir()  # not a phone's flash
    (fleet / "README.txt").write_text("not a phone")
    broken = fleet / "0A00000000B1"  # a phone whose installed ITL is damaged: boots as if it held none
    broken.mkdir()
    (broken / "phone.json").write_text(json.dumps({"mac": "0A00000000B1", "profile": "cp-8861"}))
    (broken / "ITLFile.tlv").write_bytes((fleet / OLD[0] / "ITLFile.tlv").read_bytes()[:300])
    out_json = tmp_path / "out.json"
    rc = main(["predict", "--fleet-flash", str(fleet), "--now", str(NOW), "--json-file", str(out_json),
               str(root)])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "6 phones predicted, 2 entries skipped" in out
    assert "  accepted:   3" in out and "  locked out: 3" in out
    locked = next(line for line in out.splitlines() if line.startswith("  locked out  "))
    assert "G.3.4-tvs-unreachable" in locked and " ".join(OLD) in locked
    assert ("result: 3 of 6 phones would lock out if their TVS cannot be reached (offline: ask it with "
            "--tvs-live, or give --tvs-cert); 2 entries not predicted (skipped)") in out
    # the CallManager certificate regenerated since OLD took their ITL: the bulk ITL reset, signed by the new
    # one, is no way out for them (walk s41)
    head = "ways out of G.3.4-tvs-unreachable (ITL, holding no CTL, not the signer of the ITL reset; 3 phones"
    assert f"{head} locked out):" in out, out
    assert "itl-reset" not in out.split(head, 1)[1], out
    assert "junk: no phone.json naming the phone's MAC" in out
    assert "README.txt: not a folder" in out

    doc = json.loads(out_json.read_text())
    assert doc["entries"] == 8 and doc["predicted"] == 6 and doc["skipped"] == 2
    assert doc["outcomes"] == {"accepted": 3, "locked-out": 3, "failed": 0}  # fleet boot's names
    by_rule = {(r["outcome"], r["rule"]): r for r in doc["rules"]}
    assert by_rule[("locked-out", "G.3.4-tvs-unreachable")]["first_macs"] == OLD
    (accepted,) = [r for r in doc["rules"] if r["outcome"] == "accepted"]
    assert accepted["count"] == 3 and accepted["first_macs"] == ["0A00000000B1", *NEW]
    phones = {p["mac"]: p for p in doc["phones"]}
    assert sorted(phones) == sorted([*OLD, *NEW, "0A00000000B1"])
    assert any("ITLFile.tlv" in n and "not loaded (the phone boots as if it were absent)" in n
               for n in phones["0A00000000B1"]["notes"])
    for mac in OLD:
        assert phones[mac]["locked_out"] and phones[mac]["trust"]["ITL"] == "rejected"
    for mac in NEW:  # each phone's own config, picked by MAC from the TFTP root
        assert phones[mac]["outcome"] == "accepted" and phones[mac]["config_file"] == f"SEP{mac}.cnf.xml.sgn"
        assert phones[mac]["trust"]["ITL"] == "updated"
    assert {s["entry"] for s in doc["skipped_entries"]} == {"junk", "README.txt"}


def test_a_damaged_flash_file_is_predicted_as_the_boot_takes_it(lab: tuple[Path, Path, Path], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A flash whose ITL is damaged: its boot loads no ITL (module rules of phone.flash), so predict
    --flash and --fleet-flash predict it holding none and say why — the verdict the boot then gives (it
    was predicted holding the damaged file: 'installed ITL: truncated', or skipped and counted nowhere)."""
    from phoneemu.phone.flash import ITL_FILE

    fleet, root, _pem = lab
    copy = _copy(fleet, tmp_path / "fleet")
    for mac in OLD[1:] + NEW:
        import shutil

        shutil.rmtree(copy / mac)
    itl = copy / OLD[0] / ITL_FILE
    itl.write_bytes(itl.read_bytes()[:1000])
    assert main(["predict", "--flash", str(copy / OLD[0]), "--now", str(NOW), "--json", str(root)]) in (0, 1)
    one = json.loads(capsys.readouterr().out)
    assert any(f"{ITL_FILE}: " in n and "not loaded" in n for n in one["notes"]), one["notes"]
    main(["predict", "--fleet-flash", str(copy), "--now", str(NOW), "--json", str(root)])
    doc = json.loads(capsys.readouterr().out)
    assert doc["predicted"] == 1 and doc["skipped"] == 0
    (phone,) = doc["phones"]
    cluster = LabCluster.open(root.parent)
    (report,) = run(boot_offline_into(copy, cluster, [OLD[0]], now=NOW))
    assert report.deciding is not None
    assert one["report"]["deciding"]["rule"] == phone["deciding"]["rule"] == report.deciding.rule
    assert one["report"]["locked_out"] == phone["locked_out"] == report.locked_out


def test_fleet_with_tvs_vouching_locks_nobody_out(lab: tuple[Path, Path, Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The old phones' TVS knows the new ITLRecovery: every phone takes the change; exit 0."""
    fleet, root, pem = lab
    assert main(["predict", "--fleet-flash", str(fleet), "--now", str(NOW), "--tvs-cert", str(pem),
                 "--json", str(root)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["outcomes"] == {"accepted": 5, "locked-out": 0, "failed": 0} and doc["skipped"] == 0
    vouched = {p["mac"] for p in doc["phones"]
               if any(d["rule"] == "G.3.4-vouched-by-tvs" and d["accepted"] for d in p["decisions"])}
    assert vouched == set(OLD)  # each phone decided on its own installed ITL


def test_fleet_bad_input_and_the_cap(lab: tuple[Path, Path, Path], tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    fleet, root, _pem = lab
    common = ["predict", "--now", str(NOW)]
    monkeypatch.setattr(predict_mod, "MAX_FLEET", 4)
    assert main([*common, "--fleet-flash", str(fleet), str(root)]) == 2
    assert "more than 4 entries" in capsys.readouterr().err
    monkeypatch.setattr(predict_mod, "MAX_FLEET", 5)
    assert main([*common, "--fleet-flash", str(fleet), str(root)]) == 1  # exactly the cap
    capsys.readouterr()
    assert main([*common, "--fleet-flash", str(tmp_path / "nope"), str(root)]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main([*common, "--fleet-flash", str(fleet), "--flash", str(fleet / OLD[0]), str(root)]) == 2
    assert "--flash is one phone's: not with --fleet-flash" in capsys.readouterr().err
    assert main([*common, "--fleet-flash", str(fleet), str(tmp_path / "missing.tlv")]) == 2
    only_junk = tmp_path / "junk-only"
    (only_junk / "x").mkdir(parents=True)
    assert main([*common, "--fleet-flash", str(only_junk), str(root)]) == 2
    assert "no phone's flash in it" in capsys.readouterr().err
    # --json-file also serves the one-phone prediction
    one = tmp_path / "one.json"
    assert main([*common, "--flash", str(fleet / NEW[0]), "--json-file", str(one), str(root)]) == 0
    assert json.loads(one.read_text())["mac"] == NEW[0]


def test_fleet_counts_a_copied_phone_once_and_reports_progress(lab: tuple[Path, Path, Path],
                                                               tmp_path: Path) -> None:
    """A second folder naming a MAC already predicted (a copied flash) is skipped, so counts stay per
    phone; ``progress`` sees every entry and ends at the total."""
    fleet, root, _pem = lab
    fleet = _copy(fleet, tmp_path / "fleet")
    import shutil

    shutil.copytree(fleet / OLD[0], fleet / "zz-copy-of-first")
    seen: list[tuple[int, int]] = []
    phones = run(predict_mod.predict_fleet(fleet, [root], profile=None, now=NOW,
                                           progress=lambda done, total: seen.append((done, total))))
    skipped = [p for p in phones if p.skipped]
    assert [p.entry for p in skipped] == ["zz-copy-of-first"]
    assert f"MAC {OLD[0]} already counted from '{OLD[0]}'" in (skipped[0].skipped or "")
    assert len([p for p in phones if not p.skipped]) == 5
    assert seen[-1] == (6, 6) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_fleet_notes_said_once_for_the_run(lab: tuple[Path, Path, Path], tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A note every phone has (--tvs-cert unused: no flash holds a config naming the TVS) is said once,
    at the top of the JSON and once in the text, not in every phone's record; a note only some phones
    have stays in theirs and is counted in ``phone_notes``."""
    fleet, root, pem = lab
    none = _copy(fleet, tmp_path / "none")
    for mac in [*OLD, *NEW]:  # no config, and no state.json naming one (a flash problem, noted per phone)
        (none / mac / "config.xml").unlink()
        (none / mac / "state.json").unlink()
    out_json, report = tmp_path / "none.json", tmp_path / "none.xml"
    args = ["predict", "--now", str(NOW), "--tvs-cert", str(pem)]
    assert main([*args, "--fleet-flash", str(none), "--json-file", str(out_json), "--junit", str(report),
                 str(root)]) == 1
    out = capsys.readouterr().out
    doc = json.loads(out_json.read_text())
    (note,) = doc["notes"]
    assert note.startswith("--tvs-cert not used: the phone learns its TVS servers from its current config")
    assert doc["phone_notes"] == [] and all(p["notes"] == [] for p in doc["phones"])
    assert out.count("--tvs-cert not used") == 1 and f"note: {note}" in out
    # --junit: once, as the suite's system-out, not repeated in every phone's case
    xml = report.read_text()
    assert xml.count("--tvs-cert not used") == 1 and "<system-out>note: --tvs-cert not used" in xml

    one = _copy(fleet, tmp_path / "one")
    (one / OLD[0] / "config.xml").unlink()
    (one / OLD[0] / "state.json").unlink()
    assert main([*args, "--fleet-flash", str(one), "--json", str(root)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["notes"] == [] and doc["phone_notes"] == [{"note": note, "count": 1, "first_macs": [OLD[0]]}]
    assert {p["mac"]: p["notes"] for p in doc["phones"]} == {m: [note] if m == OLD[0] else []
                                                              for m in [*OLD, *NEW]}
    assert main([*args, "--fleet-flash", str(one), str(root)]) == 1
    assert f"note for 1 phone ({OLD[0]}): --tvs-cert not used" in capsys.readouterr().out


def test_fleet_given_every_served_file_by_name_notes_only_those_no_phone_asked_for(
        lab: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``predict --fleet-flash DIR tftp/*`` (the files named one by one): a file of another phone is no
    typo in a fleet. Before, every phone noted every file it did not ask for (1,000 phones against a
    2,000-phone TFTP folder: 6 million lines, and the notes held in memory); now one note names the
    files no phone asked for. The files a phone asked for and were not given are counted by name."""
    fleet, root, _pem = lab
    named = sorted(str(p) for p in root.iterdir())
    out_json = tmp_path / "named.json"
    assert main(["predict", "--now", str(NOW), "--fleet-flash", str(fleet), "--json-file", str(out_json),
                 *named]) == 1
    out = capsys.readouterr().out
    assert "given but never asked for" not in out
    doc = json.loads(out_json.read_text())
    (note,) = doc["notes"]
    assert note.startswith("files given but asked for by no phone of the fleet", note.index(" ") + 1)
    assert "ITLFile.tlv" in note and "SEP0A00000000E1.cnf.xml.sgn" not in note  # E1's own config was asked
    assert out.count("asked for by no phone") == 1 and all(p["notes"] == [] for p in doc["phones"])
    assert {g["name"]: g["phones"] for g in doc["not_given"]} == {"CTLSEP<MAC>.tlv": 5, "CTLFile.tlv": 5}
    assert all(p["not_given"] == ["CTLSEP<MAC>.tlv", "CTLFile.tlv"] for p in doc["phones"])
    assert "not given: CTLSEP<MAC>.tlv (5), CTLFile.tlv (5)" in out


def test_fleet_of_several_models_is_counted_by_model(lab: tuple[Path, Path, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    fleet, root, _pem = lab
    fleet = _copy(fleet, tmp_path / "fleet")
    ident = fleet / NEW[0] / "phone.json"
    ident.write_text(json.dumps({**json.loads(ident.read_text()), "profile": "cp-7962"}))
    out_json = tmp_path / "out.json"
    assert main(["predict", "--fleet-flash", str(fleet), "--now", str(NOW), "--json-file", str(out_json),
                 str(root)]) == 1
    out = capsys.readouterr().out
    assert "by model: cp-7962 accepted 1; cp-8861 locked out 3, accepted 1" in out
    assert json.loads(out_json.read_text())["by_model"] == {"cp-7962": {"accepted": 1},
                                                            "cp-8861": {"locked-out": 3, "accepted": 1}}


def test_junit_report_a_case_per_phone(lab: tuple[Path, Path, Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """``--junit``: for CI, a case per phone, failed with the outcome, rule and reason when it would
    lock out; an entry not predicted is skipped with why; one phone's prediction is one case too."""
    import xml.etree.ElementTree as ET  # our own report, not untrusted input

    fleet, root, _pem = lab
    fleet = _copy(fleet, tmp_path / "fleet")
    (fleet / "junk").mkdir()
    report = tmp_path / "predict.xml"
    assert main(["predict", "--fleet-flash", str(fleet), "--now", str(NOW), "--junit", str(report),
                 str(root)]) == 1
    capsys.readouterr()
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("6", "3", "1")
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == {*OLD, *NEW, "junk"}
    failure = cases[OLD[0]].find("failure")
    assert failure is not None and failure.text is not None
    assert failure.get("message", "").startswith("locked out (G.3.4-tvs-unreachable): ")
    assert "flash: " in failure.text
    assert "way out (" in failure.text and "rehearse: phoneemu run scenarios/" in failure.text  # and then?
    # the ways out name the phone's flash (they said --flash FLASH)
    assert f"--flash {fleet / OLD[0]}" in failure.text and "FLASH" not in failure.text
    assert all(len(cases[m]) == 0 for m in NEW)
    skipped = cases["junk"].find("skipped")
    assert skipped is not None and "not predicted: " in skipped.get("message", "")

    one = tmp_path / "one.xml"
    assert main(["predict", "--flash", str(fleet / OLD[0]), "--now", str(NOW), "--junit", str(one),
                 str(root)]) == 1
    capsys.readouterr()
    case = ET.parse(one).getroot().find("testsuite/testcase")
    assert case is not None and case.get("name") == OLD[0]
    failure = case.find("failure")
    assert failure is not None and "G.3.4-tvs-unreachable" in failure.get("message", "")
    assert failure.text is not None and f"--flash {fleet / OLD[0]}" in failure.text
    assert "FLASH" not in failure.text


def test_a_sites_listed_phones_predicted_from_files(lab: tuple[Path, Path, Path], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """``--models``: a real site's phones (a CUCM export) predicted from files alone — the old
    cluster's ITL and each phone's own config from a folder — as --fleet-flash predicts emulated
    ones: the same outcomes for the same phones; a phone without a config holds none (noted), a model
    without a profile is a cp-8861 (noted); bad input is one line, exit 2."""
    fleet, root, pem = lab
    configs = tmp_path / "old-tftp"
    configs.mkdir()
    for mac in OLD:
        (configs / f"SEP{mac}.cnf.xml").write_bytes((fleet / mac / "config.xml").read_bytes())
    export = tmp_path / "phones.csv"
    export.write_text("Device Name,Device Type,Description\n" + "".join(
        f"SEP{mac},Cisco {model},desk\n" for mac, model in zip([*OLD, "0A00000000A9"],
                                                                ["8861", "7962", "8861", "9971"],
                                                                strict=True)))
    common = ["predict", "--models", str(export), "--installed-itl", str(fleet / OLD[0] / "ITLFile.tlv"),
              "--installed-config-dir", str(configs), "--now", str(NOW)]
    json_file = tmp_path / "site.json"
    assert main([*common, "--json-file", str(json_file), str(root)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"fleet {export}: 4 phones predicted, 0 entries skipped")
    assert "by model: cp-7962 locked out 1; cp-8861 locked out 3" in out
    locked = next(line for line in out.splitlines() if "G.3.4-tvs-unreachable" in line)
    assert " ".join(OLD) in locked  # as --fleet-flash found for these phones
    assert "G.3.5-reject-unknown-signer" in out  # no config: no TVS to ask
    assert "(0A00000000A9): no SEP<MAC>.cnf.xml.sgn (nor .cnf.xml)" in out and "'Cisco 9971'" in out
    doc = json.loads(json_file.read_text())
    assert doc["models"] == str(export) and doc["fleet_flash"] is None
    assert {p["mac"]: p["profile"] for p in doc["phones"]}[OLD[1]] == "cp-7962"
    assert main([*common, "--tvs-cert", str(pem), str(root)]) == 1  # the listed phone without a config
    out = capsys.readouterr().out
    assert "  accepted:   3" in out and "  locked out: 1" in out
    # its note advises what --models takes (it said "give --installed-config", refused with --models)
    assert "holds none; put its SEP<MAC>.cnf.xml.sgn (or .cnf.xml) in --installed-config-dir" in out
    assert "give --installed-config" not in out
    for bad, says in ((["--fleet-flash", str(fleet)], "--fleet-flash: not with --models"),
                      (["--mac", OLD[0]], "--mac: not with --models"),
                      (["--installed-config-dir", str(tmp_path / "nope")], "no such folder")):
        assert main([*common, *bad, str(root)]) == 2
        assert says in capsys.readouterr().err
    assert main(["predict", "--installed-config-dir", str(configs), str(root)]) == 2
    assert "--installed-config-dir is for --models" in capsys.readouterr().err
    empty = tmp_path / "empty.csv"
    empty.write_text("Device Name,Device Type\n")
    assert main(["predict", "--models", str(empty), str(root)]) == 2
    assert "lists no phone" in capsys.readouterr().err


def test_notes_of_many_phones_are_grouped_and_bounded(lab: tuple[Path, Path, Path], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A note naming its phone's MAC groups alike phones (as ``<MAC>``); the text lists the ten
    commonest kinds of note and counts the rest (5,000 phones printed 5,000 note lines)."""
    fleet, root, _pem = lab
    export = tmp_path / "phones.csv"
    export.write_text("".join(f"SEP0A00000001{i:02X},Cisco 99{i:02d}\n" for i in range(12)))
    empty = tmp_path / "no-configs"
    empty.mkdir()
    assert main(["predict", "--models", str(export), "--installed-itl", str(fleet / OLD[0] / "ITLFile.tlv"),
                 "--installed-config-dir", str(empty), "--now", str(NOW), str(root)]) == 1
    out = capsys.readouterr().out
    assert "note for 12 phones (0A0000000100 " in out and ": no SEP<MAC>.cnf.xml.sgn (nor .cnf.xml)" in out
    assert sum(1 for line in out.splitlines() if line.startswith("note for 1 phone ")) == 9
    assert "... and 3 more notes, for fewer phones each (--json-file lists them all)" in out


def test_phones_that_refuse_the_regenerated_callmanager_until_they_reset(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Mixed mode, encrypted phones, the CallManager certificate regenerated: each phone's next
    registration over TLS before a reset refuses the new certificate (its installed CTL lacks it, §G.5),
    after the boot on the new CTL it accepts it; the fleet's summary counts those phones, a single
    phone's prediction says so and what to do, ``--callmanager-cert`` checks a given certificate, and a
    non-secure phone (over TCP: no certificate checked) gets no forecast."""
    c = LabCluster.init(tmp_path / "lab", seed=43, key_spec="rsa1024", now=NOW, name="m")
    enc, plain = ["0A00000000C1", "0A00000000C2"], "0A00000000C3"
    c.add_phones([*enc, plain], now=NOW)
    c.set_mixed_mode(True, now=NOW)
    c.set_security_mode(enc, "encrypted", now=NOW)
    fleet = tmp_path / "fleet"
    run(_boot_into(fleet, c, [*enc, plain]))
    old_cm = tmp_path / "old-callmanager.pem"
    old_cm.write_bytes(c.callmanager(1).cert.public_bytes(Encoding.PEM))
    c.regenerate("callmanager", now=NOW)
    root = tmp_path / "lab" / "tftp"
    assert main(["predict", "--fleet-flash", str(fleet), "--now", str(NOW), str(root)]) == 0
    out = capsys.readouterr().out
    assert f"sip: 2 phones ({enc[0]} {enc[1]}) refuse a CallManager certificate (G.5) until they reset: " \
        "their CTL lacks it" in out
    assert main(["predict", "--fleet-flash", str(fleet), "--now", str(NOW), "--callmanager-cert", str(old_cm),
                 str(root)]) == 0  # the certificate they hold: nobody refuses it before a reset
    assert "refuse a CallManager certificate" not in capsys.readouterr().out
    flash = fleet / enc[0]
    single = ["predict", "--flash", str(flash), "--now", str(NOW), str(root)]
    assert main([*single, "--json"]) == 0
    sip = json.loads(capsys.readouterr().out)["sip"]
    assert sip["refused_until_reset"] is True
    assert [x["rule"] for x in sip["before_reset"]["certificates"]] == ["G.5-sip-server-untrusted"]
    assert [x["rule"] for x in sip["after_boot"]["certificates"]] == ["G.5-sip-server-in-ctl"]
    assert sip["before_reset"]["transport_rule"] == "G.9-tls-with-ctl"
    assert (sip["after_boot"]["media"], sip["after_boot"]["media_rule"]) == ("srtp", "G.14-offer-srtp")
    assert main(single) == 0
    out = capsys.readouterr().out
    assert "  sip before a reset: over tls (G.9-tls-with-ctl); calls SRTP (G.14-offer-srtp)\n" \
        "    CN=m-pub" in out
    assert "  sip: until it resets, the phone refuses 1 of the 1 CallManager certificate (G.5)" in out
    assert main([*single, "--callmanager-cert", str(old_cm), "--json"]) == 0  # the old one: accepted before
    sip = json.loads(capsys.readouterr().out)["sip"]
    assert [x["rule"] for x in sip["before_reset"]["certificates"]] == ["G.5-sip-server-in-ctl"]
    assert sip["refused_until_reset"] is False
    assert main(["predict", "--flash", str(fleet / plain), "--now", str(NOW), "--json", str(root)]) == 0
    assert "sip" not in json.loads(capsys.readouterr().out)


def test_fleet_ways_out_name_the_fleet_flash(lab: tuple[Path, Path, Path],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The way out done phone by phone is written for the folder predicted (README "ways out": the
    phone flash filled in when known), not with the FLEET placeholder; the JSON keeps the placeholder,
    as every command's ``ways_out`` does."""
    fleet, root, _pem = lab
    assert main(["predict", "--fleet-flash", str(fleet), "--now", str(NOW), str(root)]) == 1
    out = capsys.readouterr().out
    assert f"lab: phoneemu phone erase --fleet-flash {fleet}   rehearse:" in out
    assert "FLEET" not in out
    assert main(["predict", "--fleet-flash", str(fleet), "--now", str(NOW), "--json", str(root)]) == 1
    ways = json.loads(capsys.readouterr().out)["ways_out"][0]["ways"]
    assert ways[-1]["lab"] == "phoneemu phone erase --fleet-flash FLEET"
