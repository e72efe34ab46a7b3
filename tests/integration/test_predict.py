"""``phoneemu predict``: the offline pre-flight of a migration or regeneration (files in, decisions out)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from phoneemu.cli import main
from phoneemu.formats import signed, trustlist
from phoneemu.formats.trustlist import Role
from phoneemu.lab.cluster import LabCluster
from phoneemu.scenario.predict import TVS_KNOWS_NOTHING

NOW = 1_780_000_000
MAC = "0A00000000D1"


def _cluster(tmp: Path, name: str, seed: int) -> LabCluster:
    c = LabCluster.init(tmp / name, seed=seed, key_spec="rsa1024", now=NOW, name=name)
    c.add_phone(MAC, now=NOW)
    return c


def _save(c: LabCluster, folder: Path, *names: str) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    files = c.files()
    for n in names:
        (folder / n).write_bytes(files[n])
    return [str(folder / n) for n in names]


@pytest.fixture
def two(tmp_path: Path) -> tuple[Path, Path, Path]:
    """Cluster a's phone state (ITL, config) and cluster b's files, plus b's ITLRecovery certificate."""
    a, b = _cluster(tmp_path, "a", 21), _cluster(tmp_path, "b", 22)
    _save(a, tmp_path / "a-files", "ITLFile.tlv", f"SEP{MAC}.cnf.xml.sgn")
    _save(b, tmp_path / "b-files", "ITLFile.tlv", f"SEP{MAC}.cnf.xml.sgn")
    pem = tmp_path / "b-itlrecovery.pem"
    pem.write_bytes(b.identity("itlrecovery").cert.public_bytes(Encoding.PEM))
    return tmp_path / "a-files", tmp_path / "b-files", pem


def test_migration_without_preparation_locks_out(two: tuple[Path, Path, Path],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    a, b, _pem = two
    rc = main(["predict", "--installed-itl", str(a / "ITLFile.tlv"), "--now", str(NOW),
               str(b / "ITLFile.tlv"), str(b / f"SEP{MAC}.cnf.xml.sgn")])
    out = capsys.readouterr().out
    assert rc == 1
    assert f"fetch ITLSEP{MAC}.tlv: " in out and "(ITLFile.tlv)" in out  # ITLFile.tlv answers ITLSEP<MAC>
    assert "deciding: G.3.5-reject-unknown-signer (rejected)" in out and "locked out: yes" in out
    # and then? the documented ways out, each with its lab command and the scenario that rehearses it
    assert "  way out (moving away from a cluster that still serves them): Prepare Cluster" in out
    assert "rehearse: phoneemu run scenarios/migration-manual-itl-delete.yaml" in out


def test_tvs_vouching_lets_the_phone_migrate(two: tuple[Path, Path, Path],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    a, b, pem = two
    common = ["predict", "--installed-itl", str(a / "ITLFile.tlv"), "--installed-config",
              str(a / f"SEP{MAC}.cnf.xml.sgn"), "--now", str(NOW), "--json"]
    new = [str(b / "ITLFile.tlv"), str(b / f"SEP{MAC}.cnf.xml.sgn")]
    assert main([*common, "--tvs-cert", str(pem), *new]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["mac"] == MAC and doc["report"]["trust"]["ITL"] == "updated"
    assert any(d["rule"] == "G.3.4-vouched-by-tvs" and d["accepted"] for d in doc["report"]["decisions"])
    assert main([*common, *new]) == 1  # the same phone, its TVS unreachable
    doc = json.loads(capsys.readouterr().out)
    assert doc["report"]["deciding"]["rule"] == "G.3.4-tvs-unreachable"
    assert doc["report"]["ways_out"][0]["scenario"] == "tvs-outage"


def test_callmanager_regeneration_on_the_same_cluster(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    c = _cluster(tmp_path, "c", 23)
    (old,) = _save(c, tmp_path / "old", "ITLFile.tlv")
    c.regenerate("callmanager", now=NOW)
    new = _save(c, tmp_path / "new", "ITLFile.tlv", f"SEP{MAC}.cnf.xml.sgn")
    assert main(["predict", "--installed-itl", old, "--now", str(NOW), *new]) == 0
    out = capsys.readouterr().out
    assert "G.3.3-signed-by-itl-sast     accepted" in out and "ITL updated" in out


def test_bad_inputs_are_one_line_errors(two: tuple[Path, Path, Path], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    a, b, _pem = two
    bad = tmp_path / "broken.tlv"
    bad.write_bytes((a / "ITLFile.tlv").read_bytes()[:300])
    assert main(["predict", "--installed-itl", str(bad), str(b / "ITLFile.tlv")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(bad) in err and "installed ITL" in err
    assert main(["predict", str(tmp_path / "missing.tlv")]) == 2
    assert main(["predict", "--installed-itl", str(a / "ITLFile.tlv"), str(b / "ITLFile.tlv"),
                 str(tmp_path / "x" / "ITLFile.tlv")]) == 2  # two new files of one name
    assert main(["predict", "--tvs-roles", "x", str(b / "ITLFile.tlv")]) == 2
    assert main(["predict", "--installed-ctl", str(a / "ITLFile.tlv"), str(b / "ITLFile.tlv")]) == 2
    assert "given as the installed CTL, but its header FILENAME 'ITLFile.tlv' is not CTLFile.tlv" in \
        capsys.readouterr().err


def test_a_folder_is_a_tftp_root(two: tuple[Path, Path, Path], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """A folder of files (a copy of the cluster's TFTP root) is served file by file."""
    a, _b, _pem = two
    root = tmp_path / "b" / "tftp"  # the lab cluster's own served folder
    assert (root / "ITLFile.tlv").is_file()
    assert main(["predict", "--installed-itl", str(a / "ITLFile.tlv"), "--mac", MAC, "--now", str(NOW),
                 str(root)]) == 1
    out = capsys.readouterr().out
    assert f"fetch SEP{MAC}.cnf.xml.sgn: " in out and "G.3.5-reject-unknown-signer" in out
    # the whole TFTP root was given: what it lacks is not served, not a file to add
    assert "fetch CTLFile.tlv: not in the given folder → not found" in out and "not given" not in out
    # the same file twice (the folder and a file in it) is taken once: a second file of that name is what
    # is refused (tests/unit/test_predict_red_team_r18.py)
    assert main(["predict", "--installed-itl", str(a / "ITLFile.tlv"), "--mac", MAC, "--now", str(NOW),
                 str(root), str(root / "ITLFile.tlv")]) == 1


def test_a_folder_of_many_phones_files_without_mac_says_which_phone_it_predicted(
        two: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A TFTP root holds every phone's config: without --mac the prediction is for one of them, and
    says which and how to choose (it was silent: a user could read one phone's result as the site's)."""
    a, _b, _pem = two
    c = LabCluster.open(tmp_path / "b")
    c.add_phones(["0A00000000D0", "0A00000000D2"], now=NOW)
    root = tmp_path / "b" / "tftp"
    main(["predict", "--installed-itl", str(a / "ITLFile.tlv"), "--now", str(NOW), str(root)])
    out = capsys.readouterr().out
    assert out.startswith("phone 0A00000000D0,")
    assert "note: no --mac: predicted for 0A00000000D0, the first of the 3 phones whose SEP<MAC> files " \
        "are given" in out
    main(["predict", "--installed-itl", str(a / "ITLFile.tlv"), "--now", str(NOW), "--mac", MAC, str(root)])
    assert "no --mac" not in capsys.readouterr().out
    main(["predict", "--installed-itl", str(a / "ITLFile.tlv"), "--now", str(NOW),
          str(root / "ITLFile.tlv"), str(root / f"SEP{MAC}.cnf.xml.sgn")])  # one phone's files: no doubt
    assert "no --mac" not in capsys.readouterr().out


def test_new_itl_given_as_the_ctl_is_refused_like_the_boot(two: tuple[Path, Path, Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A CTL/ITL mix-up among the new files: the boot's header FILENAME check (one shared function)."""
    _a, b, _pem = two
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "CTLFile.tlv").write_bytes((b / "ITLFile.tlv").read_bytes())
    assert main(["predict", "--mac", MAC, "--now", str(NOW), str(mixed / "CTLFile.tlv")]) == 1
    out = capsys.readouterr().out
    assert "G.3.1-wrong-file-name" in out and "ITLFile.tlv" in out


def test_tvs_regenerated_too_locks_the_phone_out_as_the_boot_does(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """TVS and ITLRecovery regenerated while the phones were off: the TVS now presents a certificate the
    installed ITL does not hold, so the phone does not ask it (spec §E.1) — the prediction must say
    locked out, as a real boot against the cluster does (G.3.4-tvs-server-untrusted), even though
    that TVS would vouch for the new ITLRecovery."""
    c = _cluster(tmp_path, "c", 24)
    old = _save(c, tmp_path / "old", "ITLFile.tlv", f"SEP{MAC}.cnf.xml.sgn")
    c.regenerate("itlrecovery", now=NOW)
    only_itlrecovery = _save(c, tmp_path / "new1", "ITLFile.tlv", f"SEP{MAC}.cnf.xml.sgn")
    c.regenerate("tvs", now=NOW)
    both = _save(c, tmp_path / "new2", "ITLFile.tlv", f"SEP{MAC}.cnf.xml.sgn")
    pem = tmp_path / "itlrecovery.pem"
    pem.write_bytes(c.identity("itlrecovery").cert.public_bytes(Encoding.PEM))
    tvs_pem = tmp_path / "tvs.pem"
    tvs_pem.write_bytes(c.identity("tvs").cert.public_bytes(Encoding.PEM))
    common = ["predict", "--installed-itl", old[0], "--installed-config", old[1], "--now", str(NOW),
              "--tvs-cert", str(pem)]
    assert main([*common, *only_itlrecovery]) == 0  # the TVS the phone knows vouches for the new signer
    assert "G.3.4-vouched-by-tvs" in capsys.readouterr().out
    assert main([*common, "--json", *both]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["report"]["deciding"]["rule"] == "G.3.4-tvs-server-untrusted"
    assert any("presents CN=c-pub-TVS" in n and "not a TVS record of the installed ITL" in n
               for n in doc["notes"])
    # the certificate the TVS presents, given explicitly: the new TVS one is refused, the old one is not
    assert main([*common, "--tvs-server-cert", str(tvs_pem), *only_itlrecovery]) == 1
    assert "(--tvs-server-cert)" in capsys.readouterr().out
    old_tvs = tmp_path / "old-tvs.pem"
    itl = trustlist.parse(Path(old[0]).read_bytes(), kind="ITL")
    (rec,) = [itl.record(i) for i in range(len(itl)) if itl.record(i).role == Role.TVS]
    assert rec.certificate is not None
    old_tvs.write_bytes(x509.load_der_x509_certificate(rec.certificate).public_bytes(Encoding.PEM))
    assert main([*common, "--tvs-server-cert", str(old_tvs), *both]) == 0


def test_tvs_reachable_but_unaware_is_told_apart_from_unreachable(two: tuple[Path, Path, Path],
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """§G.6 problems 2 and 3: without --tvs-cert the old TVS is unreachable; with --tvs-reachable it
    answers but knows nothing — the deciding rule a real boot against a reachable old TVS gives."""
    a, b, _pem = two
    common = ["predict", "--installed-itl", str(a / "ITLFile.tlv"), "--installed-config",
              str(a / f"SEP{MAC}.cnf.xml.sgn"), "--now", str(NOW), "--json",
              str(b / "ITLFile.tlv"), str(b / f"SEP{MAC}.cnf.xml.sgn")]
    assert main([*common, "--tvs-reachable"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["report"]["deciding"]["rule"] == "G.3.4-tvs-unknown-signer"
    assert doc["tvs"] == "reachable, knows none of the new certificates"
    assert doc["notes"] == [TVS_KNOWS_NOTHING]  # the verdict rests on that TVS: said so
    assert doc["locked_out_tvs_knows_nothing"] is True and doc["locked_out_tvs_offline"] is False
    # --tvs-reachable with no installed config to name a TVS: a note says why it went unused
    assert main(["predict", "--installed-itl", str(a / "ITLFile.tlv"), "--now", str(NOW), "--tvs-reachable",
                 str(b / "ITLFile.tlv")]) == 1
    assert "note: --tvs-reachable not used: the phone learns its TVS servers" in capsys.readouterr().out


def test_an_emulated_phones_flash_is_the_installed_state(two: tuple[Path, Path, Path], tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """``--flash DIR``: the ITL, config (plain XML), MAC and profile an emulated phone keeps; explicit
    options win."""
    a, b, _pem = two
    flash = tmp_path / "ph1"
    flash.mkdir()
    (flash / "ITLFile.tlv").write_bytes((a / "ITLFile.tlv").read_bytes())
    xml = signed.parse((a / f"SEP{MAC}.cnf.xml.sgn").read_bytes()).body
    (flash / "config.xml").write_bytes(xml)  # as the phone accepted it: state.json names it (phone.flash)
    (flash / "state.json").write_text(json.dumps({"config_file": f"SEP{MAC}.cnf.xml.sgn",
                                                  "config_sha256": hashlib.sha256(xml).hexdigest()}))
    (flash / "phone.json").write_text(json.dumps({"mac": MAC, "profile": "cp-7962"}))
    new = [str(b / "ITLFile.tlv"), str(b / f"SEP{MAC}.cnf.xml.sgn")]
    assert main(["predict", "--flash", str(flash), "--now", str(NOW), "--tvs-reachable", "--json", *new]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["mac"] == MAC and doc["profile"] == "cp-7962" and doc["notes"] == [TVS_KNOWS_NOTHING]
    assert doc["installed"]["itl"] == str(flash / "ITLFile.tlv")
    assert doc["report"]["deciding"]["rule"] == "G.3.4-tvs-unknown-signer"  # the config named a's TVS
    assert main(["predict", "--flash", str(flash), "--profile", "cp-8861", "--now", str(NOW), "--json",
                 *new]) == 1
    assert json.loads(capsys.readouterr().out)["profile"] == "cp-8861"
    assert main(["predict", "--flash", str(tmp_path / "nope"), *new]) == 2
    assert "no such flash directory" in capsys.readouterr().err


def test_a_file_the_phone_never_asks_for_is_a_note(two: tuple[Path, Path, Path],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A NEW_FILE named one by one that the phone does not request (another phone's config: a --mac
    typo) is said, not silently left out of the prediction; files of a folder are not."""
    _a, b, _pem = two
    other = "0A00000000D2"
    rc = main(["predict", "--mac", other, "--now", str(NOW), "--json",
               str(b / "ITLFile.tlv"), str(b / f"SEP{MAC}.cnf.xml.sgn")])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 1  # no config for that phone
    notes = [n for n in doc["notes"] if "never asked for" in n]
    assert len(notes) == 1 and notes[0].startswith(f"SEP{MAC}.cnf.xml.sgn given but never asked for by "
                                                   f"phone {other}")
    assert main(["predict", "--mac", other, "--now", str(NOW), "--json", str(b)]) == 1
    assert not [n for n in json.loads(capsys.readouterr().out)["notes"] if "never asked for" in n]
