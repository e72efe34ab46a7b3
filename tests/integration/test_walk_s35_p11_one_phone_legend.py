"""One phone's ways out say once, under them, what each placeholder their commands leave stands for and why
it is left, as a fleet's text does (:func:`phoneemu.phone.ways_out.legend_lines`): ``boot`` and ``phone
show --flash``. Was (walk-through): ``OLD`` and ``DIR`` bare, with no legend; the fleet's had one.

The lockout: a phone holding its lab's ITL, then the TVS and ITLRecovery certificates regenerated with no
boot between (``G.3.4-tvs-server-untrusted``, scenario ``tvs-trusted-through-itl``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import boot_into_flash, legend_of, placeholders_left, serve_in_thread

NOW = 1_780_000_000
MAC = "0A000000B201"
RULE = "G.3.4-tvs-server-untrusted"


def _locked_boot(tmp_path: Path, argv: list[str]) -> tuple[LabCluster, Path, dict[str, int]]:
    """A lab whose phone (its flash returned) took the ITL while the lab was served, then the TVS and
    ITLRecovery certificates regenerated and the lab served again on the same ports, its config naming the
    TVS there: ``phoneemu ARGV`` (``--flash`` and the lab's address added) exits 1, locked out."""
    lab = LabCluster.init(tmp_path / "lab", seed=12, key_spec="rsa1024", now=NOW)
    lab.add_phone(MAC, now=NOW)
    flash = tmp_path / "ph1"
    ports, stop = serve_in_thread(lab)  # records its ports: the config the phone takes names its TVS
    try:
        assert boot_into_flash(lab, flash, MAC, now=NOW).ok
    finally:
        stop()
    lab.regenerate("tvs", now=NOW)
    lab.regenerate("itlrecovery", now=NOW)
    again, stop = serve_in_thread(lab, tftp_port=ports["tftp"], tvs_port=ports["tvs"])
    try:
        assert again["tvs"] == ports["tvs"]
        assert main([*argv, "--tftp", f"127.0.0.1:{ports['tftp']}", "--no-http", "--flash", str(flash),
                     "--now", str(NOW), "--timeout", "5"]) == 1
    finally:
        stop()
    return lab, flash, ports


def test_boot_says_what_old_stands_for(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = tmp_path / "lab"
    _locked_boot(tmp_path, ["boot", "--lab", str(lab)])
    out = capsys.readouterr().out
    assert f"deciding:  {RULE} (rejected)" in out, out
    assert placeholders_left(out) == {"OLD"}, out  # DIR, NEW, FLASH filled in
    assert legend_of(out) == ["OLD: the lab folder of the cluster the phones left (not known to boot: --lab "
                              "names the cluster it boots against, not the one it left)"], out
    lines = out.rstrip("\n").splitlines()
    assert lines[-1].strip().startswith("OLD: "), lines[-3:]  # once, under the ways


def test_phone_show_says_what_dir_and_old_stand_for(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    _lab, flash, ports = _locked_boot(tmp_path, ["boot"])
    capsys.readouterr()
    assert main(["phone", "show", "--flash", str(flash)]) == 0
    out = capsys.readouterr().out
    assert placeholders_left(out) == {"DIR", "OLD"}, out
    where = f"127.0.0.1 (tftp {ports['tftp']})"
    assert legend_of(out) == [
        f"DIR: the lab folder (not known to phone show: the lab serving {where}, where its last boot went)",
        "OLD: the lab folder of the cluster the phones left (not known to phone show: the cluster the phone "
        "came from)"], out
    legend_at = out.index("  DIR: the lab folder")
    assert out.rindex("  way out (") < legend_at < out.index("  MIC:")  # under the ways, before the MIC


def test_nothing_left_nothing_said() -> None:
    """A phone booted against a cluster that is not a lab is told no lab command: nothing left to explain
    (the flash kept: ``phone erase --flash`` filled in)."""
    from phoneemu.phone.ways_out import legend_lines, phone_placeholders_left

    fill = {"NOT-A-LAB": "10.0.0.5", "FLASH": "/tmp/ph1", "MAC": MAC}
    assert phone_placeholders_left(RULE, "ITL", fill) == []
    left = phone_placeholders_left(RULE, "ITL", {"FLASH": "/tmp/ph1"})
    assert left == ["DIR", "OLD"]
    assert legend_lines([*left, "DIR"], {"DIR": "why"}, "otherwise", indent="  ") == [
        "  DIR: the lab folder (why)", "  OLD: the lab folder of the cluster the phones left (otherwise)"]


def test_boot_fills_file_with_the_lab_s_served_copy(tmp_path: Path) -> None:
    """``inspect FILE`` (a QUERY too large to send): ``boot --lab DIR`` fills FILE with the lab's served
    copy of the refused file where it has one; else it is left (and said)."""
    from types import SimpleNamespace

    from phoneemu.commands.boot import _refused_file

    (tmp_path / "tftp").mkdir()
    (tmp_path / "tftp" / f"ITLSEP{MAC}.tlv").write_bytes(b"itl")

    def report(name: str) -> object:
        return SimpleNamespace(locked_out=True, deciding=SimpleNamespace(file=name))

    assert _refused_file(tmp_path, report(f"ITLSEP{MAC}.tlv")) == {  # type: ignore[arg-type]
        "FILE": str(tmp_path / "tftp" / f"ITLSEP{MAC}.tlv")}
    for name in ("CTLFile.tlv", "../x", ""):  # not served, outside the folder, no file
        assert _refused_file(tmp_path, report(name)) == {}  # type: ignore[arg-type]
    assert _refused_file(None, report(f"ITLSEP{MAC}.tlv")) == {}  # type: ignore[arg-type]
