"""Three findings of the s38 walkthrough.

1. Bringing TVS back (``lab service DIR tvs start``) is for the TVS the locked phones could not reach, the
   one their installed config names: ``DIR`` is filled with the lab booted against (or predicted on) only
   when that TVS is the lab's own; a migration's phones, naming the TVS of the cluster they left, are told
   ``OLD`` (filled where known, else said in the legend). ``boot --lab``, ``fleet boot --lab`` (summary,
   ``--json`` ``run``, ``--junit``) and ``predict`` decide it in one place
   (:func:`phoneemu.phone.ways_out.tvs_back_fill`). Was: ``lab service NEW tvs start`` while NEW's TVS ran
   and the old cluster's was the one down.
2. ``phoneemu run scenarios/<name>.yaml`` (as the ways out write the rehearsal) from another folder than the
   checkout says where the catalogue's copy is, or that an installed package has none. Was: "no such file
   or folder" alone.
3. ``fleet boot --junit`` failure bodies say values as a CI reader reads them (``files_over: http 2, tftp
   0``, ``held: ctl no, empty_itl no``, ``yes``/``no``), and an expectation's default name says its checks'
   values as the YAML writes them (``locked_out=false``). Was: Python's ``{'http': 2, 'tftp': 0}``,
   ``True``, ``locked_out=False``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

import phoneemu
from phoneemu.cli import main
from phoneemu.commands import fleet as fleet_cmd
from phoneemu.errors import ScenarioError
from phoneemu.fleet.metrics import BootRecord
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone.boot import BootTarget
from phoneemu.phone.ways_out import HeldLists, ways_out_doc, ways_out_doc_run, ways_out_text
from phoneemu.scenario.loader import discover
from tests.helpers import boot_offline_into, copy_cluster, legend_of, run, serve_in_thread

NOW = 1_780_000_000
MACS = ["0A0000003801", "0A0000003802"]
OLD_HOST, NEW_HOST = "127.0.0.38", "127.0.0.39"  # each lab's configs name its own TVS there (port 2445)
RULE = "G.3.4-tvs-unreachable"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def labs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``old`` and ``new`` labs on their own loopback addresses, both with the phones; ``moved``: their
    flashes booted on old (their config names old's TVS), predicted or booted on new they ask old's TVS;
    ``stayed``: booted on new, whose ITLRecovery is then regenerated (they ask new's own TVS)."""
    where = tmp_path_factory.mktemp("s38")
    old = LabCluster.init(where / "old", seed=38, key_spec="rsa1024", now=NOW, name="old", host=OLD_HOST)
    new = LabCluster.init(where / "new", seed=39, key_spec="rsa1024", now=NOW, name="new", host=NEW_HOST)
    for lab in (old, new):
        lab.add_phones(MACS, now=NOW)
    run(boot_offline_into(where / "moved", old, MACS, now=NOW))
    run(boot_offline_into(where / "stayed", new, MACS, now=NOW))
    new.regenerate("itlrecovery", now=NOW)
    return where


def _tvs_back(text: str) -> list[str]:
    """The lab commands of the TVS-back ways out in ``text`` (without the rehearsal after them)."""
    return [line.split("lab: ", 1)[1].split("   rehearse: ")[0].strip() for line in text.splitlines()
            if line.strip().startswith("lab: ") and " tvs start" in line]


def _reason(host: str = OLD_HOST, port: int = 2445) -> str:
    """A boot's deciding reason when the TVS its config names (old's by default) is down."""
    return (f"TVS unreachable: signer cannot be vouched for (no TVS server answered: {host}:{port}: cannot "
            f"connect: {host}: connection refused)")


# ---------------------------------------------------------------- 1. the TVS the phones could not reach


def test_predict_names_old_for_the_tvs_of_the_cluster_the_phones_left(
        labs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``predict --fleet-flash F new/tftp`` (and one phone's ``predict --flash``): the phones name old's TVS,
    not new's: ``lab service OLD tvs start``, OLD said in the legend (was ``lab service new tvs start``)."""
    new = labs / "new"
    assert main(["predict", "--fleet-flash", str(labs / "moved"), "--now", str(NOW), str(new / "tftp")]) == 1
    fleet_out = capsys.readouterr().out
    assert _tvs_back(fleet_out) == ["phoneemu lab service OLD tvs start"], fleet_out
    assert any(line.startswith("OLD: the lab folder of the cluster the phones left") for line in
               legend_of(fleet_out)), fleet_out
    flash = labs / "moved" / MACS[0]
    junit = labs / "moved-one.xml"
    assert main(["predict", "--flash", str(flash), "--now", str(NOW), "--junit", str(junit),
                 str(new / "tftp")]) == 1
    one_out = capsys.readouterr().out
    assert _tvs_back(one_out) == ["phoneemu lab service OLD tvs start"], one_out
    assert any(line.startswith("OLD: ") for line in legend_of(one_out)), one_out
    body = ET.parse(junit).getroot().find("./testsuite/testcase/failure")
    assert body is not None and body.text is not None
    assert _tvs_back(body.text.replace("\n  lab: ", "\nlab: ")) == ["phoneemu lab service OLD tvs start"]


def test_predict_fills_old_where_the_installed_files_are_its(labs: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """The installed files given from old's served folder: OLD is known, the command names it."""
    old, new = labs / "old", labs / "new"
    installed = ["--installed-itl", str(old / "tftp" / f"ITLSEP{MACS[0]}.tlv"),
                 "--installed-config", str(old / "tftp" / f"SEP{MACS[0]}.cnf.xml.sgn")]
    assert main(["predict", *installed, "--mac", MACS[0], "--now", str(NOW), str(new / "tftp")]) == 1
    out = capsys.readouterr().out
    assert _tvs_back(out) == [f"phoneemu lab service {shlex.quote(str(old))} tvs start"], out


def test_the_labs_own_tvs_down_still_names_the_lab(labs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Phones of new asking new's own TVS (its ITLRecovery regenerated): ``lab service new tvs start``."""
    new = labs / "new"
    assert main(["predict", "--fleet-flash", str(labs / "stayed"), "--now", str(NOW), str(new / "tftp")]) == 1
    out = capsys.readouterr().out
    assert _tvs_back(out) == [f"phoneemu lab service {shlex.quote(str(new))} tvs start"], out


def test_boot_lab_names_old_for_the_tvs_of_the_cluster_the_phone_left(
        labs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``boot --lab new`` of a phone whose config names old's TVS (nothing listens there): OLD, with its
    legend; ``fleet boot --lab new`` alike in its summary, its ``--json`` ``run`` and its ``--junit``."""
    import shutil

    new = copy_cluster(labs / "new", tmp_path)  # serving it records its ports: the module's lab stays as made
    fleet = tmp_path / "fleet"
    shutil.copytree(labs / "moved", fleet)
    ports, stop = serve_in_thread(new, host=NEW_HOST)
    try:
        # as lab serve does: boot --lab goes where it recorded
        LabCluster.open(new.root).set_ports(tftp=ports["tftp"], http=ports["http"], now=NOW)
        assert main(["boot", "--lab", str(new.root), "--flash", str(fleet / MACS[0]), "--now", str(NOW)]) == 1
        boot_out = capsys.readouterr().out
        report, junit = tmp_path / "fleet.json", tmp_path / "fleet.xml"
        assert main(["fleet", "boot", "--lab", str(new.root), "--flash", str(fleet), "--shards", "0",
                     "--json", str(report), "--junit", str(junit)]) == 1
        fleet_out = capsys.readouterr().out
    finally:
        stop()
    assert f"no TVS server answered: {OLD_HOST}:2445" in boot_out, boot_out
    assert _tvs_back(boot_out) == ["phoneemu lab service OLD tvs start"], boot_out
    assert any(line.startswith("OLD: ") for line in legend_of(boot_out)), boot_out
    assert _tvs_back(fleet_out) == ["phoneemu lab service OLD tvs start"], fleet_out
    runs = [w["run"] for entry in json.loads(report.read_text())["summary"]["ways_out"] for w in entry["ways"]
            if w["lab"].endswith(" tvs start")]
    assert runs == ["phoneemu lab service OLD tvs start"], runs
    bodies = [f.text or "" for f in ET.parse(junit).getroot().iter("failure")]
    assert len(bodies) == len(MACS)
    for body in bodies:
        assert _tvs_back(body.replace("\n  lab: ", "\nlab: ")) == ["phoneemu lab service OLD tvs start"], body


def test_a_fleet_summary_fills_dir_only_for_the_labs_own_tvs(labs: Path) -> None:
    """The fill of ``fleet boot --lab new``'s summary from its kinds of failure: a reason naming new's own
    TVS keeps ``DIR``; one naming old's (or both kinds in one run) gives ``OLD``; a reason naming no server
    (a QUERY too large, another rule) decides nothing."""
    new = labs / "new"
    args = argparse.Namespace(lab=new, flash=None)
    target = BootTarget(host=NEW_HOST, tftp_port=69)
    own = _reason(NEW_HOST, LabCluster.open(new).state.ports["tvs"])
    doc = ways_out_doc({(RULE, "ITL"): 2})

    def said(failures: list[dict[str, str]]) -> list[str]:
        fill = fleet_cmd._summary_fill(args, target, MACS, listed=False, failures=failures)
        runs = [w["run"] for e in ways_out_doc_run(doc, fill) for w in e["ways"] if " tvs start" in w["run"]]
        text = _tvs_back("\n".join(ways_out_text(doc, fill)))
        assert runs == text, (runs, text)
        return text

    labs_own = [f"phoneemu lab service {shlex.quote(str(new))} tvs start"]
    assert said([{"rule": RULE, "reason": own}]) == labs_own
    assert said([{"rule": RULE, "reason": "TVS QUERY too large"}]) == labs_own
    assert said([{"rule": "G.3.4-tvs-server-untrusted", "reason": _reason()}]) == labs_own
    assert said([{"rule": RULE, "reason": _reason()}]) == ["phoneemu lab service OLD tvs start"]
    assert said([{"rule": RULE, "reason": own}, {"rule": RULE, "reason": _reason()}]) == \
        ["phoneemu lab service OLD tvs start"]


# ---------------------------------------------------------------- 2. the catalogue from another folder


def test_a_catalogue_path_from_another_folder_names_the_checkouts_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ScenarioError) as info:
        discover(["scenarios/tvs-outage.yaml"])
    there = REPO / "scenarios" / "tvs-outage.yaml"
    assert there.is_file()
    assert f"no such file or folder; the catalogue's: phoneemu run {there}" in str(info.value), info.value
    with pytest.raises(ScenarioError) as info:
        discover(["scenarios/no-such-scenario.yaml"])
    assert f"the catalogue at {REPO / 'scenarios'} has no no-such-scenario.yaml either" in str(info.value)
    with pytest.raises(ScenarioError) as info:
        discover(["scenarios/"])
    assert f"the catalogue is at {REPO / 'scenarios'}" in str(info.value)
    with pytest.raises(ScenarioError) as info:  # not a catalogue path: the message as it was
        discover(["elsewhere/tvs-outage.yaml"])
    assert str(info.value).endswith("no such file or folder"), info.value


def test_an_installed_package_says_it_has_no_catalogue(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """phoneemu imported from site-packages (no checkout beside it): said, no path guessed."""
    site = tmp_path / "site-packages"
    (site / "scenarios").mkdir(parents=True)  # another project's folder of that name is not the catalogue
    monkeypatch.setattr(phoneemu, "__file__", str(site / "phoneemu" / "__init__.py"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ScenarioError) as info:
        discover(["scenarios/tvs-outage.yaml"])
    message = str(info.value)
    assert "the catalogue (scenarios/) is in the phoneemu source, not in an installed package" in message
    assert str(site) not in message


# ---------------------------------------------------------------- 3. values as a CI reader reads them


def test_fleet_junit_bodies_say_values_not_python_reprs(tmp_path: Path) -> None:
    rec = BootRecord(mac=MACS[0], outcome="locked-out", rule=RULE, latency_s=0.02, end_s=0.02, tvs_used=True,
                     reason=_reason(), reason_code="tvs-unreachable", itl="rejected", ctl="absent",
                     over_http=2, kind="ITL", held=HeldLists.of(False, False), answered=False)
    result = SimpleNamespace(records=[rec], not_started=0, lost=[], metrics=SimpleNamespace(wall_s=0.1))
    out = tmp_path / "junit.xml"
    fleet_cmd._write_junit(out, result, target=NEW_HOST, count=1)
    failure = ET.parse(out).getroot().find("./testsuite/testcase/failure")
    assert failure is not None and failure.text is not None
    lines = failure.text.splitlines()
    for line in ("files_over: http 2, tftp 0", "held: ctl no, empty_itl no", "tvs_used: yes", "answered: no"):
        assert line in lines, failure.text
    assert not any(word in failure.text for word in ("True", "False", "None", "{'")), failure.text


def test_an_expectations_name_says_its_values_as_the_yaml_writes_them() -> None:
    from phoneemu.scenario.loader import load_text
    from phoneemu.scenario.model import Expectation
    from phoneemu.scenario.runner import _label

    scenario = load_text("\n".join([
        "clusters: {lab: {}}",
        "phones: {p: {cluster: lab}}",
        "steps:",
        "  - boot: p",
        "  - expect: {phones: p, locked_out: false, tvs_used: true, config: [none, rejected]}",
        ""]))
    (exp,) = [s for s in scenario.steps if isinstance(s, Expectation)]
    assert _label(exp) == "p: locked_out=false, tvs_used=true, config=[none, rejected]"
