"""Review s41, boot: a refused boot removes only a ``--flash`` folder it made itself (not one another
process made while it waited for the lab lock); the manual key (and CAPF authentication string) the lab has
for the phone is checked before the flash is written, and a refusal names what the lab set. Fleet boot: the
summary's ``CAPF failed`` list holds the failures of capf_outcome only; the progress line says the booted
whose CAPF operation failed as the summary does."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.commands import boot as boot_cmd
from phoneemu.fleet.metrics import BootRecord, FleetMetrics
from phoneemu.fleet.progress import Progress, progress_text
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.state import load_state, save_state
from phoneemu.phone.boot import BootReport
from phoneemu.phone.events import Decision

MAC = "001122334455"
OTHER = "0011223344BB"
KEY_256 = "00112233445566778899aabbccddeeff" * 2
NOWHERE = "127.0.0.1:9"  # never asked: the boot is refused before


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Path:
    c = LabCluster.init(tmp_path_factory.mktemp("s41") / "lab", key_spec="rsa1024")
    c.add_phones([MAC])
    return c.root


def test_a_flash_folder_made_by_another_while_the_boot_waits_is_not_removed(
        lab: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Another process makes the ``--flash`` folder (another phone's) while the boot waits for the lab lock:
    the boot is refused (another phone's flash) and the folder is left as it was. Was: removed, "made"
    having been decided before the wait."""
    flash = tmp_path / "ph"
    from phoneemu.commands._cluster_address import lab_read_lock as real_lock

    @contextlib.contextmanager
    def lock_after_another_made_it(lab_dir: Path | None, command: str) -> Iterator[None]:
        flash.mkdir(mode=0o700)  # in the wait for the lock, by another process
        (flash / "phone.json").write_text(json.dumps({"mac": OTHER, "profile": "cp-8861"}))
        with real_lock(lab_dir, command):
            yield

    monkeypatch.setattr(boot_cmd, "lab_read_lock", lock_after_another_made_it)
    assert main(["boot", "--lab", str(lab), "--mac", MAC, "--flash", str(flash), "--tftp", NOWHERE]) == 2
    assert f"holds the flash of phone {OTHER}" in capsys.readouterr().err
    assert json.loads((flash / "phone.json").read_text())["mac"] == OTHER
    assert [p.name for p in flash.iterdir()] == ["phone.json"]


def test_a_flash_folder_the_boot_made_is_removed_with_the_folders_it_made_on_the_way(
        lab: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The boot's own folder (and the folders it made on the way), refused: removed; the folder it found
    is kept."""
    flash = tmp_path / "new" / "deeper" / "ph"
    assert main(["boot", "--lab", str(lab), "--mac", MAC, "--flash", str(flash), "--tftp", NOWHERE,
                 "--auth-string", "12"]) == 2
    assert "--auth-string DIGITS" in capsys.readouterr().err
    assert not (tmp_path / "new").exists() and tmp_path.is_dir()


def _old_lab_key(lab: Path, tmp_path: Path, key: str) -> Path:
    """A copy of ``lab`` whose phone's config is encrypted with manual key ``key`` (as a lab made before
    ``lab phone add`` checked the key against the model could hold)."""
    import shutil

    copy = tmp_path / "lab"
    shutil.copytree(lab, copy)
    state = load_state(copy)
    ph = state.phones[MAC]
    ph.encrypt, ph.symmetric_key, ph.model = "symmetric", key, "7942"
    save_state(copy, state)
    return copy


def test_the_labs_key_the_profile_does_not_take_is_refused_before_the_flash_is_written(
        lab: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The lab's 256-bit key, a cp-7942-symmetric (128-bit keys): exit 2 naming the lab, the MAC and the way
    out, the ``--flash`` folder as it was (empty). Was: ``symmetric_key: 256-bit key; ...`` (a store's
    field) after mic.der, mic.key, phone.json and state.json were written."""
    old = _old_lab_key(lab, tmp_path, KEY_256)
    flash = tmp_path / "fl"
    flash.mkdir(mode=0o700)
    assert main(["boot", "--lab", str(old), "--mac", MAC, "--profile", "cp-7942-symmetric", "--flash",
                 str(flash), "--tftp", NOWHERE]) == 2
    err = capsys.readouterr().err
    assert (f"the manual key {old} set for {MAC} (lab phone add --symmetric-key) is 256-bit; "
            "cp-7942-symmetric takes 128-bit keys: give --key HEX or another --profile") in err, err
    assert "symmetric_key" not in err
    assert list(flash.iterdir()) == []


def test_the_labs_key_is_not_checked_when_it_is_not_typed(lab: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """With ``--key`` (or a flash holding a key the phone takes) the lab's key is not typed: no refusal."""
    old = _old_lab_key(lab, tmp_path, KEY_256)
    flash = tmp_path / "fl"
    base = ["boot", "--lab", str(old), "--mac", MAC, "--profile", "cp-7942-symmetric", "--flash", str(flash),
            "--tftp", "127.0.0.1:9", "--timeout", "0.2", "--no-http", "--fetch-max-time", "0.5"]
    assert main([*base, "--key", KEY_256[:32]]) == 1  # booted: nothing answers
    assert (flash / "symmetric.key").read_bytes() == bytes.fromhex(KEY_256[:32])
    capsys.readouterr()
    assert main(base) == 1  # the flash holds one
    assert "manual key" not in capsys.readouterr().err


# ------------------------------------------------------------------ fleet boot: CAPF failed / not started
def _capf_record(mac: str, rule: str, reason: str, accepted: bool = False) -> BootRecord:
    config = Decision(rule="G.4-signed-by-itl-tftp", accepted=True, reason="config", file="SEP.cnf.xml.sgn")
    capf = Decision(rule=rule, accepted=accepted, reason=reason, file="", kind="capf")
    report = BootReport(mac=mac, ok=True, trust={}, config="accepted", config_file=None, encrypted=False,
                        decisions=(capf, config), deciding=config, statuses=(), firmware="none", load=None,
                        lsc="absent", locked_out=False, tvs_used=False, timeline=(), duration_s=0.01)
    return BootRecord.of(report, latency_s=0.1, end_s=0.2)


def test_the_capf_failed_list_holds_only_failures() -> None:
    """A phone waiting for its authentication string (F.7-wait-auth-string: no operation started, no
    failure, capf_outcome) is listed as ``CAPF not started``, not ``CAPF failed`` (was both the run's
    failures and its list); over shards (to_state, merge) too."""
    a, b = FleetMetrics(), FleetMetrics()
    a.add(_capf_record("0A0000000001", "F.6-capf-rejected", "CAPF ended the session: bad string (reason 7)"))
    b.add(_capf_record("0A0000000002", "F.7-wait-auth-string", "CAPF by authentication string: none typed"))
    b.add(_capf_record("0A0000000003", "F.6-lsc-installed", "issued", accepted=True))
    m = FleetMetrics.from_state(a.to_state()).merge(FleetMetrics.from_state(b.to_state()))
    text = m.render()
    assert "  CAPF failed: 0A0000000001 (F.6-capf-rejected): CAPF ended the session" in text, text
    assert "  CAPF not started: 0A0000000002 (F.7-wait-auth-string): CAPF by authentication string" in text
    assert "CAPF failed: 0A0000000002" not in text
    s = m.summary()
    assert [k["macs"] for k in s["capf_failure_kinds"]] == [["0A0000000001"]]
    assert [f["mac"] for f in s["capf_failures"]] == ["0A0000000001"]
    assert [k["macs"] for k in s["capf_not_started_kinds"]] == [["0A0000000002"]]
    assert s["capf_failed"] == 1 and text.splitlines()[0].startswith("3 phones: 3 booted (1 of them CAPF ")


def test_the_progress_line_says_the_booted_whose_capf_failed_as_the_summary_does() -> None:
    """``booted 10/10 (2 of them CAPF failed) failed 0`` (was ``booted 10/10 failed 0``, the summary's
    first line then saying ``10 booted (2 of them CAPF failed)``)."""
    assert progress_text(10, 10, 10, 1.0, {}, capf_failed=2).startswith(
        "booted 10/10 (2 of them CAPF failed) failed 0 (100% done)")
    assert "CAPF" not in progress_text(10, 10, 10, 1.0, {})
    log = io.StringIO()
    Progress(log, log_interval=3600.0, said_by="phoneemu fleet boot")(5, 4, 5, 1.0, failing={}, pausing=0,
                                                                        capf_failed=1)
    assert log.getvalue().startswith("phoneemu fleet boot: booted 4/5 (1 of them CAPF failed) failed 1 ")


# ------------------------------------------------------------------ TVS tried, not asked
def _tvs_report(mac: str, rule: str | None) -> BootReport:
    """A boot that went to TVS about its ITL's signer and ended with ``rule`` (None: TVS not tried)."""
    decisions = () if rule is None else (
        Decision(rule="G.3.4-needs-tvs", accepted=False, reason="ask TVS", file="ITLSEP.tlv"),
        Decision(rule=rule, accepted=rule.endswith("vouched-by-tvs"), reason=rule, file="ITLSEP.tlv"))
    deciding = decisions[-1] if decisions else Decision(rule="G.4-signed-by-itl-tftp", accepted=True,
                                                        reason="config", file="SEP.cnf.xml.sgn")
    return BootReport(mac=mac, ok=deciding.accepted, trust={}, config="accepted", config_file=None,
                      encrypted=False, decisions=decisions, deciding=deciding, statuses=(), firmware="none",
                      load=None, lsc="absent", locked_out=not deciding.accepted, tvs_used=rule is not None,
                      timeline=(), duration_s=0.01)


def test_the_fleet_says_tvs_tried_when_no_query_was_answered() -> None:
    """Under G.3.4-tvs-server-untrusted the phone refused the TVS server before any QUERY, under
    -tvs-unreachable none answered: ``TVS tried by 4 phones: 1 answered, 2 refused the server (no QUERY
    sent), 1 unreachable`` (was ``TVS asked by 4 phones``); ``tvs_used`` counts them as before."""
    rules = ["G.3.4-vouched-by-tvs", "G.3.4-tvs-server-untrusted", "G.4-tvs-server-untrusted",
             "G.3.4-tvs-unreachable", None]
    recs = [BootRecord.of(_tvs_report(f"0A000000000{i}", r), latency_s=0.1, end_s=0.2)
            for i, r in enumerate(rules)]
    assert [r.tvs_unanswered for r in recs] == [None, "server-untrusted", "server-untrusted", "unreachable",
                                                None]
    assert [BootRecord.from_dict(r.as_dict()) for r in recs] == recs  # a shard's pipe
    a, b = FleetMetrics(), FleetMetrics()
    for i, rec in enumerate(recs):
        (a if i % 2 else b).add(rec)
    m = FleetMetrics.from_state(a.to_state()).merge(FleetMetrics.from_state(b.to_state()))
    s = m.summary()
    assert s["tvs_used"] == 4 and s["tvs_unanswered"] == {"server-untrusted": 2, "unreachable": 1}
    text = m.render()
    assert "TVS tried by 4 phones: 1 answered, 2 refused the server (no QUERY sent), 1 unreachable" in text
    assert "TVS asked" not in text
    answered = FleetMetrics()
    answered.add(recs[0])
    assert "TVS asked by 1 phone\n" in answered.render() + "\n"


def test_boot_says_tvs_tried_when_no_query_was_answered() -> None:
    """``TVS used:  tried, server refused (no QUERY sent)`` (was ``yes``), ``tried, unreachable``."""
    said = [boot_cmd._tvs_used(_tvs_report("0A0000000001", r)) for r in
            ("G.3.4-vouched-by-tvs", "G.3.4-tvs-server-untrusted", "G.3.4-tvs-unreachable", None)]
    assert said == ["yes", "tried, server refused (no QUERY sent)", "tried, unreachable", "no"]
