"""``replay --installed-* / --flash``: the phone replayed holds what it held before the capture.

A capture of phones that trusted a cluster long before it was taken (a site's SPAN port, a second
``fleet boot --capture``) replayed by a phone out of the box gives first-contact decisions (G.2 trust
on first use) the real phones never made. With the ITL and config they held, the replay starts where
they stood. The committed migration capture holds phone 0A0000000501's first boot (ITL installed)
and its boot after the migration (ITL rejected: TVS unreachable offline); given the files of the first
boot as installed, replaying it makes the first boot "unchanged" and the second the same rejection.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.formats import signed
from phoneemu.scenario.replay import boots_of, index_capture

ROOT = Path(__file__).resolve().parents[2]
PCAP = ROOT / "captures" / "migration-itl-signer-unknown.pcap"
MAC = "0A0000000501"


def _first_boot_files(tmp: Path) -> tuple[Path, Path]:
    first = boots_of(index_capture(PCAP), MAC)[0]
    got = {d.name: d.data for d in first.own if d.ok and d.data}
    itl, cfg = tmp / "old-ITLFile.tlv", tmp / f"SEP{MAC}.cnf.xml.sgn"
    itl.write_bytes(got[f"ITLSEP{MAC}.tlv"])
    cfg.write_bytes(got[cfg.name])
    return itl, cfg


def _trust(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[tuple[str, str | None]]:
    main(["replay", str(PCAP), *argv, "--json"])
    doc = json.loads(capsys.readouterr().out)
    return [(b["report"]["trust"]["ITL"], (b["report"].get("deciding") or {}).get("rule"))
            for b in doc["boots"]]


def test_installed_files_are_where_the_replay_starts(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    itl, cfg = _first_boot_files(tmp_path)
    fresh = _trust(["--mac", MAC], capsys)
    held = _trust(["--mac", MAC, "--installed-itl", str(itl), "--installed-config", str(cfg)], capsys)
    assert fresh[0][0] == "installed" and held[0][0] == "unchanged"
    assert held[1] == fresh[1] and held[1][0] == "rejected"
    assert main(["replay", str(PCAP), "--mac", MAC, "--installed-itl", str(itl)]) == 1
    assert f"holding ITL {itl}" in capsys.readouterr().out


def test_a_flash_gives_the_installed_files_and_the_mac(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    itl, cfg = _first_boot_files(tmp_path)
    flash = tmp_path / "flash"
    flash.mkdir()
    (flash / "phone.json").write_text(json.dumps({"mac": MAC, "profile": "cp-8861"}))
    (flash / "ITLFile.tlv").write_bytes(itl.read_bytes())
    xml = signed.parse(cfg.read_bytes()).body
    (flash / "config.xml").write_bytes(xml)  # as the phone accepted it: state.json names it (phone.flash)
    (flash / "state.json").write_text(json.dumps({"config_file": cfg.name,
                                                  "config_sha256": hashlib.sha256(xml).hexdigest()}))
    assert _trust(["--flash", str(flash)], capsys)[0][0] == "unchanged"


def test_a_flash_file_the_phone_would_not_load_is_left_out_and_named(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A flash whose ITL is damaged: the boot loads none (phone.flash), so the replay starts holding none
    — first contact again, as a fresh phone — and warns naming the file (it was an error, exit 2,
    though the phone itself boots)."""
    itl, _cfg = _first_boot_files(tmp_path)
    flash = tmp_path / "flash"
    flash.mkdir()
    (flash / "phone.json").write_text(json.dumps({"mac": MAC, "profile": "cp-8861"}))
    (flash / "ITLFile.tlv").write_bytes(itl.read_bytes()[:500])
    fresh = _trust(["--mac", MAC], capsys)
    main(["replay", str(PCAP), "--flash", str(flash), "--json"])
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    got = [(b["report"]["trust"]["ITL"], (b["report"].get("deciding") or {}).get("rule"))
           for b in doc["boots"]]
    assert got == fresh
    assert f"replay: warning: flash {flash}: ITLFile.tlv: " in captured.err
    assert "not loaded (the phone boots as if it were absent)" in captured.err


def test_a_wrong_installed_file_is_one_line_naming_it(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    itl, _ = _first_boot_files(tmp_path)
    assert main(["replay", str(PCAP), "--mac", MAC, "--installed-ctl", str(itl)]) == 2
    err = capsys.readouterr().err
    assert f"{itl}: given as the installed CTL" in err and "Traceback" not in err
    assert main(["replay", str(PCAP), "--flash", str(tmp_path / "none")]) == 2
    assert "no such flash directory" in capsys.readouterr().err


def test_the_boot_target_is_what_the_capture_shows(capsys: pytest.CaptureFixture[str]) -> None:
    """The committed capture's phone fetched over HTTP 6970 alone: its target names that port and no TFTP
    port (it said '(tftp 69)', a port the capture never shows)."""
    import re

    main(["replay", str(PCAP), "--mac", MAC, "--json"])
    targets = [b["report"]["target"] for b in json.loads(capsys.readouterr().out)["boots"]]
    assert targets and all(re.fullmatch(r"127\.0\.0\.1[12] \(http \d+\)", t) for t in targets), targets
