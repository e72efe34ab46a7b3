"""``predict``, ``replay`` (``--mac``, ``--all``) and ``phone show --flash`` tell a lab from a cluster that
is not one by the files' signers (:mod:`phoneemu.phone.lab_signers`; loopback, no socket even).

The same lockout each time: phones hold a cluster's first ITL and config, the cluster's ITLRecovery is
regenerated, and TVS cannot be reached (offline): ``G.3.4-tvs-unreachable``. Once from a lab (its
certificates say ``O=phoneemu lab c``): the ways out name lab commands, as before. Once from a cluster
built with the same PKI helpers whose certificates say ``O=Example Corp``: no lab command (was ``lab:
phoneemu lab service DIR tvs start`` for a lab the user does not have), the command on the emulated phone
and the rehearsal in a lab instead, as ``boot`` without ``--lab`` says them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.pki import LabPki
from phoneemu.net.capture import PcapWriter
from tests.helpers import boot_offline_into, run
from tests.replay_helpers import captured_tftp_read

NOW = 1_780_000_000
MAC = "0A0000000E01"
FLEET = ["0A0000000E01", "0A0000000E02"]
LAB_WAY = "lab: phoneemu lab service "  # the TVS outage's way out, in a lab


def _cluster(tmp: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> LabCluster:
    """A cluster of ``FLEET``: a lab, or (``real``) the same made with the lab's PKI whose identities'
    subjects name another organisation (a real cluster's files, as far as any file can tell)."""
    if kind == "real":
        lab_subject = LabPki.subject_for

        def elsewhere(self: LabPki, name: str, generation: int = 0) -> str:
            return lab_subject(self, name, generation).replace(f"O=phoneemu lab {self.cluster_name}",
                                                               "O=Example Corp")
        monkeypatch.setattr(LabPki, "subject_for", elsewhere)
    c = LabCluster.init(tmp / kind, seed=31, key_spec="rsa1024", now=NOW, name="c")
    c.add_phones(FLEET, now=NOW)
    assert ("O=phoneemu lab c" in c.certificates()["itlrecovery"]["subject"]) == (kind == "lab")
    return c


def _said_as(out: str, kind: str, erase: str) -> None:
    """The ways out of ``out`` name lab commands (a lab) or none (``real``: ``erase`` is said instead)."""
    ways = out[out.index("way out ("):]
    if kind == "lab":
        assert LAB_WAY in ways, ways
        return
    assert not re.search(r"^\s*lab: ", ways, re.MULTILINE), ways  # was: lab: phoneemu lab service DIR ...
    assert "phoneemu lab " not in ways and "--lab" not in ways, ways
    assert erase in ways and "rehearse in a lab: phoneemu run scenarios/" in ways, ways


def _save(c: LabCluster, folder: Path, *names: str) -> list[str]:
    folder.mkdir(parents=True)
    for name in names:
        data = c.get(name)
        assert data is not None, name
        (folder / name).write_bytes(data)
    return [str(folder / name) for name in names]


@pytest.mark.parametrize("kind", ["lab", "real"])
def test_predict_says_lab_commands_only_for_a_labs_files(
        kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    c = _cluster(tmp_path, monkeypatch, kind)
    old = _save(c, tmp_path / "old", "ITLFile.tlv", f"SEP{MAC}.cnf.xml.sgn")
    c.regenerate("itlrecovery", now=NOW)
    new = _save(c, tmp_path / "new", "ITLFile.tlv", f"SEP{MAC}.cnf.xml.sgn")
    common = ["predict", "--installed-itl", old[0], "--installed-config", old[1], "--now", str(NOW)]
    junit = tmp_path / "predict.xml"
    assert main([*common, "--junit", str(junit), *new]) == 1
    out = capsys.readouterr().out
    assert "deciding: G.3.4-tvs-unreachable" in out, out
    _said_as(out, kind, "on the emulated phone: phoneemu phone erase --flash FLASH")
    _said_as(junit.read_text(), kind, "on the emulated phone: phoneemu phone erase --flash FLASH")
    assert main([*common, "--json", *new]) == 1
    assert json.loads(capsys.readouterr().out)["signed_by_lab"] is (kind == "lab")


def _locked_fleet(tmp: Path, c: LabCluster) -> Path:
    """``FLEET`` booted on the cluster's first files into ``tmp/fleet``, then locked out by the new ITL."""
    fleet = tmp / "fleet"
    assert all(r.ok for r in run(boot_offline_into(fleet, c, FLEET, now=NOW)))
    c.regenerate("itlrecovery", now=NOW)
    assert all(r.locked_out for r in run(boot_offline_into(fleet, c, FLEET, now=NOW)))
    return fleet


@pytest.mark.parametrize("kind", ["lab", "real"])
def test_predict_fleet_and_phone_show_say_lab_commands_only_for_a_labs_files(
        kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    c = _cluster(tmp_path, monkeypatch, kind)
    fleet = _locked_fleet(tmp_path, c)
    junit = tmp_path / "fleet.xml"
    assert main(["predict", "--fleet-flash", str(fleet), "--now", str(NOW), "--junit", str(junit),
                 str(c.root / "tftp")]) == 1
    out = capsys.readouterr().out
    assert f"ways out of G.3.4-tvs-unreachable (ITL; {len(FLEET)} phones locked out):" in out, out
    _said_as(out, kind, f"on the emulated phones: phoneemu phone erase --fleet-flash {fleet}")
    _said_as(junit.read_text(), kind, f"on the emulated phone: phoneemu phone erase --flash {fleet / MAC}")

    assert main(["phone", "show", "--flash", str(fleet / MAC)]) == 0
    out = capsys.readouterr().out
    assert "Trust List update failed (ITL refused)" in out, out
    _said_as(out, kind, f"on the emulated phone: phoneemu phone erase --flash {fleet / MAC}")
    assert main(["phone", "show", "--flash", str(fleet / MAC), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["signed_by_lab"] is (kind == "lab")


def _capture(tmp: Path, c: LabCluster) -> Path:
    """Two boots of ``MAC`` over TFTP: the cluster's first files, then its ITL after ITLRecovery was
    regenerated (the same config)."""
    names = (f"CTLSEP{MAC}.tlv", f"ITLSEP{MAC}.tlv", f"SEP{MAC}.cnf.xml.sgn")
    first = {n: c.get(n) for n in names}
    c.regenerate("itlrecovery", now=NOW)
    second = {n: c.get(n) for n in names}
    clock = iter(range(NOW, NOW + 10_000))
    path = tmp / "site.pcap"
    with PcapWriter(path, clock=lambda: float(next(clock))) as w:
        for boot, files in enumerate((first, second)):
            for i, (name, data) in enumerate(files.items()):
                captured_tftp_read(w, name, data, 40000 + 10 * boot + i)
    return path


@pytest.mark.parametrize("kind", ["lab", "real"])
def test_replay_says_lab_commands_only_for_a_labs_capture(
        kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    c = _cluster(tmp_path, monkeypatch, kind)
    pcap = _capture(tmp_path, c)
    assert main(["replay", str(pcap), "--mac", MAC]) == 1
    out = capsys.readouterr().out
    assert "== boot 2" in out and "deciding: G.3.4-tvs-unreachable" in out, out
    _said_as(out, kind, "on the emulated phone: phoneemu phone erase --flash FLASH")

    assert main(["replay", str(pcap), "--all"]) == 1
    out = capsys.readouterr().out
    assert "ways out of G.3.4-tvs-unreachable (ITL; 1 phone locked out):" in out, out
    _said_as(out, kind, "on the emulated phones: phoneemu phone erase --fleet-flash FLEET")
    assert main(["replay", str(pcap), "--all", "--json"]) == 1
    doc: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert doc["signed_by_lab"] is (kind == "lab")
    assert [b["signed_by_lab"] for b in doc["records"][0]["boots"]] == [kind == "lab"] * 2
