"""``phoneemu lab`` through phoneemu.cli.main: init, phones, every admin operation, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phoneemu.cli import build_parser, main
from phoneemu.crypto import keys
from phoneemu.formats import trustlist
from phoneemu.lab.cluster import LabCluster
from tests import parser_helpers

MAC = "00:11:22:33:44:55"
BARE = "001122334455"
one_parser = parser_helpers.one_parser()  # main is called some 130 times by the module


@pytest.fixture
def lab_dir(tmp_path: Path) -> Path:
    d = tmp_path / "lab"
    assert main(["lab", "init", str(d), "--seed", "4", "--key", "rsa1024", "--now", "1780000000"]) == 0
    assert main(["lab", "phone", "add", str(d), "--mac", MAC]) == 0
    return d


def _signer_serial(d: Path, name: str = "ITLFile.tlv") -> bytes:
    return trustlist.parse((d / "tftp" / name).read_bytes()).header.signer.serial


def test_init_show_and_json(lab_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["lab", "show", str(lab_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["seed"] == 4 and BARE in summary["phones"]
    assert summary["itl_md5"] == trustlist.parse((lab_dir / "tftp/ITLFile.tlv").read_bytes()).md5()
    assert main(["lab", "show", str(lab_dir), "--itl", "--ctl", "--files", "--log"]) == 0
    out = capsys.readouterr().out
    assert "The checksum value of the ITL file:" in out and "CTL File not found" in out
    assert f"ITLSEP{BARE}.tlv" in out and "phone-add" in out
    assert (lab_dir / "phones" / BARE / "mic.key").exists()


def test_show_lists_each_certificate_with_its_validity(lab_dir: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Seed "View the Validity Period of ITLRecovery Certificate": Certificate Management shows it; so
    does lab show, for every identity of the cluster (text and --json)."""
    capsys.readouterr()
    assert main(["lab", "show", str(lab_dir)]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.lstrip().startswith("itlrecovery "))
    assert "ITLRECOVERY_lab-pub  valid 2026-01-01 .. 2046-01-01 (20 years)  sha1 " in line, line
    assert main(["lab", "show", str(lab_dir), "--json"]) == 0
    certs = json.loads(capsys.readouterr().out)["certificates"]
    assert set(certs) == {"itlrecovery", "capf", "mfgca", "imagesigning", "callmanager", "tvs"}
    assert certs["itlrecovery"]["not_after"].startswith("2046-") and len(certs["tvs"]["sha1"]) == 40


def test_show_json_is_one_document_whatever_else_is_asked(lab_dir: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """``--json`` with --log, --files, --itl, --ctl printed the JSON, then text after it (jq failed)."""
    assert main(["lab", "phone", "add", str(lab_dir), "--mac", "0A0000000100", "--count", "8"]) == 0
    capsys.readouterr()
    assert main(["lab", "show", str(lab_dir), "--json", "--log", "--files", "--itl", "--ctl"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["log"][-1]["op"] == "phone-add" and len(doc["log"][-1]["args"]["macs"]) == 8
    assert doc["served_files"][f"ITLSEP{BARE}.tlv"] > 0
    assert doc["itl_file"]["format"] == "itl" and doc["ctl_file"] is None  # not in mixed mode
    # the text log: people's time, and 8 consecutive MACs (more than twice the 3 shown) as a range
    assert main(["lab", "show", str(lab_dir), "--log"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("2026-05-28T") and '"0A0000000100..0A0000000107 (8)"' in last, last


def test_default_init_uses_rsa2048(tmp_path: Path) -> None:
    args = build_parser().parse_args(["lab", "init", str(tmp_path / "x")])
    assert args.key == "rsa2048"
    assert main(["lab", "init", str(tmp_path / "x")]) == 0
    cluster = LabCluster.open(tmp_path / "x")
    assert keys.key_size_bits(cluster.callmanager().key) == 2048
    assert cluster.state.seed is None


def test_every_admin_operation(lab_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(lab_dir)
    other = tmp_path / "other"
    key_file = tmp_path / "ITLRecovery.pem"
    assert main(["lab", "init", str(other), "--seed", "5", "--key", "rsa1024", "--name", "other"]) == 0
    recovery = LabCluster.open(lab_dir).identity("itlrecovery")
    callmanager_serial = LabCluster.open(lab_dir).callmanager().cert.serial_number
    steps = [
        ["regenerate", d, "callmanager"],
        ["mixed-mode", d, "on"],
        ["itl-reset", d, "localkey"],
        ["restart-tftp", d],
        ["ctl-reset", d, "localkey"],
        ["ctl-update", d],
        ["rollback", d, "on"],
        ["rollback", d, "off"],
        ["add-certs", d, "--count", "2"],
        ["encryption", d, "--mac", MAC, "on"],
        ["encryption", d, "--mac", MAC, "on", "--mode", "symmetric", "--symmetric-key", "11" * 16],
        ["encryption", d, "--mac", MAC, "off"],
        ["signature-algorithm", d, "sha512"],
        ["upgraded", d, "on"],
        ["exchange", d, str(other)],
        ["sbd", d, "off"],
        ["autoregistration", d, "off"],
        ["tvs-ttl", d, "300"],
        ["load", d, "sip88xx.14-1", "--mac", MAC],
        ["capf", d, "install", "--mac", MAC, "--auth-mode", "2"],
        ["itlrecovery", d, "export", str(key_file)],
        ["regenerate", d, "itlrecovery"],
        ["itl-reset", d, "remotekey", "--key-file", str(key_file)],
        ["restart-tftp", d],
        ["restart-tvs", d],
        ["clock", d, "--advance", "60"],
        ["mixed-mode", d, "off"],
        ["tamper", d, "ITLFile.tlv", "--offset", "7"],
    ]
    for argv in steps:
        assert main(["lab", *argv]) == 0, argv
    out = capsys.readouterr().out
    assert "flipped byte 7 of ITLFile.tlv" in out
    c = LabCluster.open(lab_dir)
    st = c.state
    assert st.ctl_exists and not st.mixed_mode and st.hash_alg == 3 and st.upgraded
    assert st.extra_certs == 2 and not st.sbd and not st.autoregistration and st.tvs_ttl == 300
    assert st.phones[BARE].capf_operation == "install" and st.phones[BARE].load == "sip88xx.14-1"
    assert c.identity("itlrecovery").der == recovery.der  # restored by remotekey
    assert c.callmanager().cert.serial_number != callmanager_serial
    assert st.tampered["ITLFile.tlv"] == 7
    ops = [e.op for e in st.log]
    assert ops.count("restart-tftp") == 2 and "exchange" in ops
    assert LabCluster.open(other).tvs_lookup(c.callmanager().der) is not None


def test_itl_signer_switches(lab_dir: Path) -> None:
    c = LabCluster.open(lab_dir)
    from phoneemu.crypto.certs import serial_bytes

    rec, cm = (serial_bytes(c.identity(n).cert.serial_number) for n in ("itlrecovery", "callmanager"))
    assert _signer_serial(lab_dir) == rec
    assert main(["lab", "itl-reset", str(lab_dir), "localkey"]) == 0
    assert _signer_serial(lab_dir) == cm
    assert main(["lab", "restart-tftp", str(lab_dir)]) == 0
    assert _signer_serial(lab_dir) == rec


def test_errors_are_one_line(tmp_path: Path, lab_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    cases = [
        ["lab", "show", str(tmp_path / "nothing")],
        ["lab", "serve", "--dir", str(tmp_path / "nothing"), "--tftp-port", "0"],
        ["lab", "rollback", str(tmp_path / "nothing"), "on"],
        ["lab", "init", str(lab_dir)],
        ["lab", "regenerate", str(lab_dir), "mfgca"],
        ["lab", "phone", "add", str(lab_dir), "--mac", "zz"],
        ["lab", "ctl-reset", str(lab_dir), "localkey"],
        ["lab", "tamper", str(lab_dir), "nope.xml"],
        ["lab", "itl-reset", str(lab_dir), "remotekey"],
        ["lab", "itl-reset", str(lab_dir), "remotekey", "--key-file", str(tmp_path / "missing.pem")],
        ["lab", "encryption", str(lab_dir), "--mac", "AABBCCDDEEFF", "on"],
        ["lab", "phone", "add", str(lab_dir), "--mac", MAC, "--capf", "install", "--auth-mode", "1"],
    ]
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"phoneemu lab {argv[1]}"), (argv, err)
        assert "Traceback" not in err
    main(["lab", "show", str(tmp_path / "nothing")])
    err = capsys.readouterr().err  # the folder is named once, with the command that makes a cluster there
    assert err == (f"phoneemu lab show: {tmp_path / 'nothing'}: not a lab cluster (no cluster.json; create "
                   f"one with 'phoneemu lab init {tmp_path / 'nothing'}')\n")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["lab", "init", str(blocker / "lab")]) == 2  # an OS error names the path, whole
    assert capsys.readouterr().err == f"phoneemu lab init: {blocker / 'lab'}: Not a directory\n"


def test_init_refuses_a_folder_that_holds_other_files(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Was: the lab moved in, overwrote certs/*.pem and deleted every other file of DIR/tftp."""
    site = tmp_path / "site"
    (site / "tftp").mkdir(parents=True)
    (site / "tftp" / "ITLFile-from-the-real-cluster.tlv").write_bytes(b"keep me")
    capsys.readouterr()
    assert main(["lab", "init", str(site), "--seed", "4", "--key", "rsa1024"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not empty and holds no lab cluster" in err, err
    assert [p.name for p in site.rglob("*")] == ["tftp", "ITLFile-from-the-real-cluster.tlv"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["lab", "init", str(empty), "--seed", "4", "--key", "rsa1024"]) == 0


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["lab", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "phoneemu lab init" in out and "mic.key" in out
    assert main(["lab"]) == 2


def test_digest_and_itl_capf_operations(lab_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = lab_dir / "tftp" / f"SEP{MAC.replace(':', '')}.cnf.xml"
    assert main(["lab", "digest", str(lab_dir), "--mac", MAC, "--user", "alice", "--password", "pw"]) == 0
    assert b"<authName>alice</authName>" in cfg.read_bytes()
    assert main(["lab", "digest", str(lab_dir), "--mac", MAC, "--user", "alice", "--password", "pw",
                 "--exclude"]) == 0
    assert b"authName" not in cfg.read_bytes()
    assert main(["lab", "digest", str(lab_dir), "--mac", MAC]) == 2
    assert "--user: needed" in capsys.readouterr().err

    def capf_records() -> int:
        itl = trustlist.parse((lab_dir / "tftp" / "ITLFile.tlv").read_bytes())
        return sum(1 for r in itl.records if r.role == trustlist.Role.CAPF)

    assert capf_records() == 1
    assert main(["lab", "itl-capf", str(lab_dir), "off"]) == 0
    assert capf_records() == 0
    assert main(["lab", "itl-capf", str(lab_dir), "on"]) == 0
    assert capf_records() == 1


def test_operations_say_who_signs_the_served_lists(lab_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each admin operation ends with the served lists' signers: after ``itl-reset`` the CallManager
    key signs the ITL until ``restart-tftp`` (spec §G.7) — visible without a ``show itl``."""
    capsys.readouterr()
    assert main(["lab", "itl-reset", str(lab_dir), "localkey"]) == 0
    assert "; ITL signed by lab-pub" in capsys.readouterr().out
    assert main(["lab", "restart-tftp", str(lab_dir)]) == 0
    assert "; ITL signed by ITLRECOVERY_lab-pub" in capsys.readouterr().out
    assert main(["lab", "mixed-mode", str(lab_dir), "on"]) == 0
    assert main(["lab", "rollback", str(lab_dir), "on"]) == 0
    out = capsys.readouterr().out.splitlines()[-1]
    assert "; CTL signed by" in out and out.endswith("; rollback: the empty ITL is served")


def test_phone_add_count_adds_consecutive_macs(lab_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--count N``: the N consecutive MACs ``fleet boot --mac-start --count`` boots, in one rebuild."""
    capsys.readouterr()
    assert main(["lab", "phone", "add", str(lab_dir), "--mac", "0A00000000FE", "--count", "3"]) == 0
    out, err = capsys.readouterr()
    assert "3 phones 0A00000000FE..0A0000000100" in out
    assert "3/3 MICs issued" in err and "building the served files" in err  # progress of a long add
    files = LabCluster.open(lab_dir).files()
    assert all(f"SEP{m}.cnf.xml.sgn" in files for m in ("0A00000000FE", "0A00000000FF", "0A0000000100"))
    assert main(["lab", "phone", "add", str(lab_dir), "--mac", "FFFFFFFFFFFF", "--count", "2"]) == 2
    assert "overflow 48 bits" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["lab", "phone", "add", str(lab_dir), "--mac", BARE, "--count", "0"])


def test_per_phone_operations_take_count_consecutive_macs(lab_dir: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """``lab capf|encryption|security-mode|digest|load --mac M --count N``: the N phones fleet boot
    --mac-start M --count N boots (a CAPF enrolment storm was 2,000 --mac options)."""
    assert main(["lab", "phone", "add", str(lab_dir), "--mac", "0A0000000000", "--count", "4"]) == 0
    first3 = ["0A0000000000", "0A0000000001", "0A0000000002"]
    base = ["--mac", "0A0000000000", "--count", "3"]
    assert main(["lab", "capf", str(lab_dir), "install", *base, "--auth-mode", "null-string"]) == 0
    assert main(["lab", "security-mode", str(lab_dir), *base, "authenticated"]) == 0
    assert main(["lab", "load", str(lab_dir), "sip88xx.14-2-1", *base]) == 0
    c = LabCluster.open(lab_dir)
    for mac, ph in c.state.phones.items():
        inside = mac in first3
        assert (ph.capf_operation == "install") is inside and (ph.security_mode == 2) is inside, mac
        assert (ph.load == "sip88xx.14-2-1") is inside, mac
    capsys.readouterr()
    assert main(["lab", "capf", str(lab_dir), "none", "--mac", "0A0000000000", "--mac", "0A0000000002",
                 "--count", "2"]) == 2
    err = capsys.readouterr().err
    assert "--count 2 takes exactly one --mac (the first of 2 consecutive MACs), got 2" in err
    assert main(["lab", "load", str(lab_dir), "x.1", "--count", "2"]) == 2  # --count without --mac
    assert main(["lab", "encryption", str(lab_dir), "on", "--mac", "0A0000000003", "--count", "2"]) == 2
    assert "0A0000000004" in capsys.readouterr().err  # not in the cluster: named, nothing changed
    assert not LabCluster.open(lab_dir).state.phones["0A0000000003"].encrypt


def test_show_counts_the_phones_of_a_large_lab(lab_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Up to 20 phones one line each; beyond, counts and the first 20 (a 40,000-phone lab printed 40,000
    lines); --phones lists every one. Labels stay aligned (itlrecovery_regenerate_years was not)."""
    assert main(["lab", "phone", "add", str(lab_dir), "--mac", "0A0000000000", "--count", "24"]) == 0
    assert main(["lab", "capf", str(lab_dir), "install", "--mac", "0A0000000000", "--count", "3",
                 "--auth-mode", "null-string"]) == 0
    capsys.readouterr()
    assert main(["lab", "show", str(lab_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    (summary,) = [ln for ln in out if ln.startswith("phones:")]
    assert summary.split(None, 1)[1] == ("25 (001122334455..0A0000000017); model 8861 25; encrypt off 25; "
                                         "capf pending none 22, install 3; LSC 0")
    assert sum(ln.startswith("phone ") for ln in out) == 20
    assert out[-1] == "... and 5 more phones (--phones lists every one; --json has them)"
    labels = [ln for ln in out if ln.startswith(("itlrecovery_regenerate_years:", "name:", "phones:"))]
    assert len({ln.index(ln.split(":", 1)[1].strip()) for ln in labels}) == 1
    assert main(["lab", "show", str(lab_dir), "--phones"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert sum(ln.startswith("phone ") for ln in out) == 25
    assert not any(ln.startswith("phones:") for ln in out)


def test_exchange_says_what_each_tvs_now_vouches_for(lab_dir: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other"
    assert main(["lab", "init", str(other), "--seed", "5", "--key", "rsa1024", "--name", "b",
                 "--now", "1780000000"]) == 0
    capsys.readouterr()
    assert main(["lab", "exchange", str(lab_dir), str(other)]) == 0
    out = capsys.readouterr().out
    assert "TVS of lab now vouches for b's ITLRECOVERY_b-pub, b-pub (roles SAST, TFTP); TVS of b for lab's " \
        "ITLRECOVERY_lab-pub, lab-pub (roles SAST, TFTP)" in out and "a snapshot" in out


def test_exchange_between_two_labs_of_one_name_names_their_folders(
        lab_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other"
    assert main(["lab", "init", str(other), "--seed", "5", "--key", "rsa1024", "--now", "1780000000"]) == 0
    capsys.readouterr()
    assert main(["lab", "exchange", str(lab_dir), str(other)]) == 0
    out = capsys.readouterr().out
    assert f"TVS of lab ({lab_dir}) now vouches for lab ({other})'s ITLRECOVERY_lab-pub, lab-pub " \
        f"(roles SAST, TFTP); TVS of lab ({other}) for lab ({lab_dir})'s" in out


def test_service_without_a_running_serve_does_not_claim_one(lab_dir: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """``lab service`` only records the wanted state: it cannot know whether a ``lab serve`` runs, so it
    says what one does instead of reporting the service stopped by it."""
    capsys.readouterr()
    assert main(["lab", "service", str(lab_dir), "tvs", "stop"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == ("tvs: marked stopped in the cluster; a running 'lab serve' follows within a second, "
                     "one started later too (stopped now: tvs)")
    assert main(["lab", "service", str(lab_dir), "tvs", "start"]) == 0
    assert capsys.readouterr().out.startswith("tvs: marked started in the cluster;")


@pytest.mark.parametrize(("host", "shown"), [("127.0.0.1", "127.0.0.1:6969"), ("::1", "[::1]:6969")])
def test_serve_prints_addresses_boot_takes_back(host: str, shown: str) -> None:
    """``lab serve`` prints each service's address as ``boot --tftp`` reads it: ``::1:6969`` would not be."""
    from phoneemu.commands.boot import parse_hostport
    from phoneemu.commands.lab_serve import hostport

    assert hostport(host, 6969) == shown
    assert parse_hostport(shown) == (host, 6969)


def test_an_operation_on_a_folder_that_is_no_lab_leaves_nothing_there(tmp_path: Path) -> None:
    """A lab operation given an empty folder by mistake says it is not a lab and leaves no lock file
    behind, so ``lab init`` on that folder still works (it wants a new or empty folder)."""
    empty = tmp_path / "lab"
    empty.mkdir()
    assert main(["lab", "tvs-ttl", str(empty), "60"]) != 0
    assert list(empty.iterdir()) == []


def test_log_text_shortens_long_lists_only() -> None:
    from phoneemu.commands.lab import _brief

    assert _brief({"macs": ["0A0000000001", "0A0000000002"], "n": 3}) == {"macs": ["0A0000000001",
                                                                                   "0A0000000002"], "n": 3}
    scattered = [f"0A00000000{i:02X}" for i in range(0, 40, 2)]
    assert _brief({"macs": scattered})["macs"] == [*scattered[:3], "... 17 more"]


def test_a_large_labs_rebuild_is_said_first(lab_dir: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """An operation that builds every served file again says so on stderr before (a 40,000-phone lab
    takes a minute: each config is signed again), from REBUILD_NOTICE_PHONES phones on."""
    from phoneemu.commands import lab as lab_cmd

    assert main(["lab", "phone", "add", str(lab_dir), "--mac", "0A0000000A00", "--count", "3"]) == 0
    capsys.readouterr()
    assert main(["lab", "regenerate", str(lab_dir), "tvs"]) == 0
    assert "building the served files" not in capsys.readouterr().err  # a small lab: nothing to wait for
    monkeypatch.setattr(lab_cmd, "REBUILD_NOTICE_PHONES", 3)
    assert main(["lab", "regenerate", str(lab_dir), "tvs"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("phoneemu lab regenerate: building the served files of ") and "phones again" in err


def test_regenerating_itlrecovery_warns_first_as_cucm_does(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Seed "Certificate Management Changes for ITLRecovery Certificate": a warning on the CLI before the
    ITLRecovery certificate is regenerated; what it says follows the cluster's mixed mode."""
    d = tmp_path / "lab"
    assert main(["lab", "init", str(d), "--seed", "4", "--key", "rsa1024", "--now", "1780000000"]) == 0
    capsys.readouterr()
    assert main(["lab", "regenerate", str(d), "itlrecovery"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("phoneemu lab regenerate: warning: regenerating the ITLRecovery certificate")
    assert "TVS" in err
    assert "this cluster is in mixed mode" not in err
    assert main(["lab", "mixed-mode", str(d), "on"]) == 0
    assert main(["lab", "regenerate", str(d), "itlrecovery"]) == 0
    assert "this cluster is in mixed mode with a tokenless CTL" in capsys.readouterr().err
    # the bulk ITL reset, closed by the TFTP restart: the phones took the new ITL (no lockout warning)
    assert main(["lab", "itl-reset", str(d), "localkey"]) == 0
    assert main(["lab", "restart-tftp", str(d)]) == 0
    capsys.readouterr()
    assert main(["lab", "regenerate", str(d), "tvs"]) == 0
    assert capsys.readouterr().err == ""


def test_show_phones_names_what_differs_from_a_new_phone(lab_dir: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """``lab show --phones``: a phone's security profile and dial plan when they are not a new phone's."""
    assert main(["lab", "security-mode", str(lab_dir), "--mac", MAC, "encrypted"]) == 0
    assert main(["lab", "calling-search-space", str(lab_dir), "--mac", MAC, "--partition", "Execs",
                 "--css", "Execs,Staff"]) == 0
    assert main(["lab", "phone", "add", str(lab_dir), "--mac", "0A0000000099"]) == 0
    capsys.readouterr()
    assert main(["lab", "show", str(lab_dir), "--phones"]) == 0
    out = capsys.readouterr().out
    assert (f"phone {BARE}: model 8861, security encrypted, encrypt off, capf -, LSC no, partition Execs, "
            "css Execs,Staff") in out
    assert "phone 0A0000000099: model 8861, encrypt off, capf -, LSC no\n" in out
    assert main(["lab", "show", str(lab_dir), "--json"]) == 0
    ph = json.loads(capsys.readouterr().out)["phones"][BARE]
    assert (ph["security"], ph["partition"], ph["css"]) == ("encrypted", "Execs", ["Execs", "Staff"])
