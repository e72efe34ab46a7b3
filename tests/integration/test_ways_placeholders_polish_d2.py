"""The placeholders of the ways out's lab commands (:mod:`phoneemu.phone.ways_out`): filled from what the
user gave, else said once under the ways, what each stands for and why it is left.

* ``predict --fleet-flash FLEET LAB/tftp``: the new files are the lab's served folder, so ``DIR`` (and
  ``NEW``, the cluster the phones move to) is that lab; new files elsewhere leave ``DIR``, said under the
  ways (``DIR: the lab folder (not known to predict)``; was a bare ``DIR``);
* ``predict --models``: real phones, no flash folder: ``FLEET`` said so (was a bare ``FLEET``);
* ``phone show --fleet-flash`` without ``--cluster``: ``DIR`` left on purpose, with the hint that
  ``--cluster DIR`` fills it;
* ``boot --lab B`` of a phone moved from lab A: the bulk export's ``lab exchange OLD NEW`` has ``NEW`` as B
  (was ``NEW``, as ``fleet boot`` filled it already).

The fleet is a lab's (offline boots, no socket): booted on its first ITL, then its ITLRecovery regenerated
with TVS unreachable, so every phone refuses the new ITL (``G.3.4-tvs-unreachable``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import boot_offline_into, run, serve_in_thread

NOW = 1_780_000_000
FLEET = ["0A0000000D21", "0A0000000D22"]


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The lab folder and the fleet's flashes, their last boots locked out."""
    tmp = tmp_path_factory.mktemp("d2")
    lab = LabCluster.init(tmp / "lab", seed=52, key_spec="rsa1024", now=NOW, name="d2")
    lab.add_phones(FLEET, now=NOW)
    fleet = tmp / "fleet"
    assert all(r.ok for r in run(boot_offline_into(fleet, lab, FLEET, now=NOW)))
    lab.regenerate("itlrecovery", now=NOW)
    assert all(r.locked_out for r in run(boot_offline_into(fleet, lab, FLEET, now=NOW)))
    return tmp / "lab", fleet


def _said(argv: list[str], capsys: pytest.CaptureFixture[str],
          rule: str = "G.3.4-tvs-unreachable") -> str:
    main(argv)
    out = capsys.readouterr().out
    assert f"ways out of {rule} (ITL; 2 phones locked out):" in out, out
    return out


def _placeholder_lines(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.split(":", 1)[0] in {"DIR", "OLD", "NEW", "FLEET"}]


def test_predict_fills_the_lab_its_new_files_are_served_by(locked: tuple[Path, Path],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    lab, fleet = locked
    out = _said(["predict", "--fleet-flash", str(fleet), "--now", str(NOW), str(lab / "tftp")], capsys)
    assert f"lab: phoneemu lab itl-reset {lab} localkey && phoneemu fleet boot --lab {lab} --flash {fleet}" \
        in out, out
    # OLD (the cluster the phones left: their flashes do not name it) is left, and said once
    assert _placeholder_lines(out) == ["OLD: the lab folder of the cluster the phones left (not known to "
                                       "predict)"], out
    files = [str(lab / "tftp" / "ITLFile.tlv"), str(lab / "tftp" / f"SEP{FLEET[0]}.cnf.xml.sgn")]
    out = _said(["predict", "--fleet-flash", str(fleet), "--now", str(NOW), *files], capsys)
    assert f"lab: phoneemu lab itl-reset {lab} localkey" in out, out


def test_predict_says_what_dir_is_when_the_new_files_name_no_lab(locked: tuple[Path, Path], tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    lab, fleet = locked
    copy = shutil.copytree(lab / "tftp", tmp_path / "tftp")  # the files alone: no cluster.json beside them
    out = _said(["predict", "--fleet-flash", str(fleet), "--now", str(NOW), str(copy)], capsys)
    assert "lab: phoneemu lab itl-reset DIR localkey" in out, out
    assert _placeholder_lines(out) == [
        "DIR: the lab folder (not known to predict)",
        "OLD: the lab folder of the cluster the phones left (not known to predict)"], out


def test_predict_of_listed_phones_says_they_have_no_flash_folder(locked: tuple[Path, Path], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    lab, fleet = locked
    export = tmp_path / "phones.csv"
    export.write_text("Device Name,Device Type\n" + "".join(f"SEP{mac},Cisco 8861\n" for mac in FLEET))
    out = _said(["predict", "--models", str(export), "--installed-itl", str(fleet / FLEET[0] / "ITLFile.tlv"),
                 "--now", str(NOW), str(lab / "tftp")], capsys, "G.3.5-reject-unknown-signer")  # no config
    assert "lab: phoneemu phone erase --fleet-flash FLEET" in out, out
    fleet_line = [line for line in _placeholder_lines(out) if line.startswith("FLEET:")]
    assert fleet_line == ["FLEET: the folder of the phones' flashes, as fleet boot --flash keeps them "
                          "(--models lists real phones, with no emulated flash: --fleet-flash predicts "
                          "emulated ones)"], out


def test_phone_show_of_a_fleet_says_that_cluster_fills_dir(locked: tuple[Path, Path],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    lab, fleet = locked
    out = _said(["phone", "show", "--fleet-flash", str(fleet)], capsys)
    assert "lab: phoneemu lab itl-reset DIR localkey" in out, out
    assert "DIR: the lab folder (--cluster DIR fills it)" in _placeholder_lines(out), out
    out = _said(["phone", "show", "--fleet-flash", str(fleet), "--cluster", str(lab)], capsys)
    assert f"lab: phoneemu lab itl-reset {lab} localkey" in out, out
    assert not [line for line in _placeholder_lines(out) if line.startswith("DIR:")], out


def test_boot_against_a_lab_fills_new_with_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A phone of lab A boots on lab B (loopback): B's ITL signer is unknown to A's TVS, which it asks
    (``G.3.4-tvs-unknown-signer``); the bulk export between them names B as NEW."""
    mac = FLEET[0]
    labs = {}
    for name, seed in (("a", 3), ("b", 4)):
        labs[name] = LabCluster.init(tmp_path / name, seed=seed, key_spec="rsa1024", now=NOW,
                                     host="127.0.0.1", name=name)
        labs[name].add_phone(mac, now=NOW)
    (ports_a, stop_a), (ports_b, stop_b) = serve_in_thread(labs["a"]), serve_in_thread(labs["b"])

    def boot(name: str, ports: dict[str, int]) -> int:
        return main(["boot", "--lab", str(tmp_path / name), "--flash", str(tmp_path / "phone"), "--mac", mac,
                     "--tftp", f"127.0.0.1:{ports['tftp']}", "--http-port", str(ports["http"]),
                     "--timeout", "2", "--now", str(NOW)])

    try:
        assert boot("a", ports_a) == 0
        capsys.readouterr()
        assert boot("b", ports_b) == 1
    finally:
        stop_a()
        stop_b()
    out = capsys.readouterr().out
    assert "deciding:  G.3.4-tvs-unknown-signer" in out, out
    assert f"lab: phoneemu lab exchange OLD {tmp_path / 'b'} && phoneemu lab restart-tvs OLD" in out, out
