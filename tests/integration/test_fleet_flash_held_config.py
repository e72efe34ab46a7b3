"""A phone's flash is read as its boot reads it (:meth:`phoneemu.phone.flash.Flash.held_files`) by every
offline tool: a ``config.xml`` its ``state.json`` does not vouch for (a crash between writing the two)
is not installed, and a note says so — ``replay --all --fleet-flash`` and ``tvs --flash`` as ``replay
--flash`` and ``predict --fleet-flash`` already did (they installed it whenever the file existed).

The migration capture's phones, exported after it (``--export-flash``), hold the old cluster's ITL and
config. Phone 0A0000000502 is given the *new* cluster's ITL: the capture's first boot serves the old
one, whose signer it does not know, so it asks the TVS servers of its installed config — none when
that config is not loaded (G.3.5, TVS not usable), the config's 127.0.0.11 otherwise (G.3.4, TVS
unavailable offline).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.scenario.replay import boots_of, index_capture

ROOT = Path(__file__).resolve().parents[2]
MIGRATION = ROOT / "captures" / "migration-itl-signer-unknown.pcap"
MAC, OTHER = "0A0000000502", "0A0000000501"
NOT_LOADED = "config.xml: SHA-256 "
NO_TVS, CONFIG_TVS = "G.3.5-reject-unknown-signer", "G.3.4-tvs-unreachable"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The capture's phones' flashes after it, phone ``MAC`` holding the new cluster's ITL."""
    site = tmp_path_factory.mktemp("held") / "site"
    assert main(["replay", str(MIGRATION), "--all", "--export-flash", str(site)]) == 1
    _, second = boots_of(index_capture(MIGRATION), MAC)
    new_itl = next(d.data for d in second.own if d.name == f"ITLSEP{MAC}.tlv" and d.data)
    (site / MAC / "ITLFile.tlv").write_bytes(new_itl)
    return site


def _fleet(exported: Path, tmp_path: Path, *, crashed: bool) -> Path:
    """A copy of the fleet; ``crashed``: phone ``MAC``'s ``config.xml`` rewritten, its ``state.json`` not
    (a crash between the two writes)."""
    fleet = tmp_path / "fleet"
    shutil.copytree(exported, fleet)
    if crashed:
        config = fleet / MAC / "config.xml"
        config.write_bytes(config.read_bytes() + b"\n")
    return fleet


def _first_boot_rule_alone(flash: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """The first boot's deciding rule of ``replay --mac MAC --flash`` (the reference: its flash read by
    :meth:`Flash.held_files` since it has one)."""
    main(["replay", str(MIGRATION), "--mac", MAC, "--flash", str(flash), "--json"])
    rule: str = json.loads(capsys.readouterr().out)["boots"][0]["report"]["deciding"]["rule"]
    return rule


@pytest.mark.parametrize(("crashed", "rule"), [(True, NO_TVS), (False, CONFIG_TVS)],
                         ids=["config-not-vouched-for", "config-vouched-for"])
def test_replay_all_fleet_flash_holds_what_the_boot_would(
        exported: Path, tmp_path: Path, crashed: bool, rule: str, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = _fleet(exported, tmp_path, crashed=crashed)
    main(["replay", str(MIGRATION), "--all", "--fleet-flash", str(fleet), "--json"])
    records = {r["mac"]: r for r in json.loads(capsys.readouterr().out)["records"]}
    phone = records[MAC]
    assert phone["boots"][0]["rule"] == rule  # was G.3.4: the config.xml installed, its TVS asked
    assert phone["boots"][0]["rule"] == _first_boot_rule_alone(fleet / MAC, capsys)
    notes = [n for n in phone["notes"] if NOT_LOADED in n]
    if crashed:
        assert len(notes) == 1, phone["notes"]
        assert notes[0].startswith(f"flash {fleet / MAC}: config.xml: ") and \
            notes[0].endswith("not loaded (the phone boots as if it were absent)")
    else:
        assert notes == []
    assert records[OTHER]["notes"] == []


def test_tvs_flash_asks_no_server_of_a_config_the_boot_would_not_load(
        exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The phone's boot loads no config: it knows no TVS server, so none is asked (was: the servers of
    the unvouched ``config.xml``, 127.0.0.11), and the flash's problem is said on stderr."""
    fleet = _fleet(exported, tmp_path, crashed=True)
    flash = fleet / MAC
    assert main(["tvs", "--flash", str(flash), str(flash / "ITLFile.tlv"), "--timeout", "1"]) == 2
    captured = capsys.readouterr()
    assert "holds no accepted config" in captured.err
    assert f"phoneemu tvs: flash {flash}: config.xml: SHA-256 " in captured.err
    assert "127.0.0.11" not in captured.out + captured.err


def test_a_flash_that_cannot_be_read_skips_its_phone_and_the_rest_go_on(
        exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An OSError reading one phone's flash (permissions, an I/O error; as root no mode refuses a read,
    so it is injected) skips that phone naming the file, as a damaged flash is; nothing escapes."""
    from phoneemu.scenario import replay_fleet

    real = replay_fleet._from_flash

    def failing(flash: Path, mac: str, *args: object) -> object:
        if mac == MAC:
            raise PermissionError(13, "Permission denied", str(flash / "state.json"))
        return real(flash, mac, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(replay_fleet, "_from_flash", failing)
    fleet = _fleet(exported, tmp_path, crashed=False)
    main(["replay", str(MIGRATION), "--all", "--fleet-flash", str(fleet), "--json"])
    doc = json.loads(capsys.readouterr().out)
    records = {r["mac"]: r for r in doc["records"]}
    skipped = json.dumps(doc)
    assert f"{fleet / MAC / 'state.json'}: cannot read the flash: Permission denied" in skipped
    assert records[OTHER]["boots"], records[OTHER]
