"""``lab regenerate`` warns when it completes a lockout: the signer of the lists served and every TVS the
configs name regenerated with no ``lab itl-reset`` / ``restart-tftp`` between (ours: the lab records no
boot, :meth:`phoneemu.lab.cluster.LabCluster.untaken_regenerations`). A phone that took no ITL between holds
none with the new TVS certificate and trusts the new signer only through that TVS: locked out at its next
boot (``G.3.4-tvs-server-untrusted``; the scenario ``tvs-trusted-through-itl`` boots it). The warning names
the rule and the bulk ITL reset, the way out the ways out table gives for it; never a refusal.

Was (walk-through): ``lab regenerate DIR tvs`` then ``lab regenerate DIR itlrecovery`` said only CUCM's
ITLRecovery warning, which does not mention it. Also ``lab show``: ``... and 1 more phones``.

Review of d90bf09 (P16), each reproduced with real boots (a phone booted into its flash while the lab is
served, booted again on the same ports): a ``restart-tftp`` alone opened a new window (``regenerate tvs``,
``restart-tftp``, ``regenerate itlrecovery``: no warning, the phone locked out); an ITLRecovery key imported
back from an export made before counted as new (a warning, the phone booted); the bulk ITL reset was named
where the CallManager key is new too, which leaves the phone locked (now: ``restart-tftp`` where the
CallManager key signs the ITL and ITLRecovery's is not new, else the phone's lists erased), and regenerating
the CallManager certificate after the warning said nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests import parser_helpers
from tests.helpers import boot_into_flash, fsyncs_skipped, serve_in_thread

NOW = 1_780_000_000
MAC = "0A000000B101"
RULE = "G.3.4-tvs-server-untrusted"

one_parser = parser_helpers.one_parser()  # ~160 main() calls: the whole parser was most of their CPU
no_fsync = fsyncs_skipped()  # ~3,000 fsyncs (lab changes, flashes): a third of the module's wall time


def _lab(tmp_path: Path, *, nodes: int = 1) -> Path:
    lab = LabCluster.init(tmp_path / "lab", seed=11, key_spec="rsa1024", now=NOW, nodes=nodes)
    lab.add_phone(MAC, now=NOW)
    return lab.root


def _err(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The stderr of ``phoneemu lab ARGV`` (exit 0, its trust line on stdout)."""
    capsys.readouterr()
    assert main(["lab", *argv, "--now", str(NOW)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("generation "), captured.out
    return captured.err


def _lockout_warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if RULE in line]


def test_tvs_then_itlrecovery_warns_with_the_rule_and_the_way_out(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    root = _lab(tmp_path)
    assert _err(["regenerate", str(root), "tvs"], capsys) == ""  # one of the two: nothing to say
    generation = LabCluster.open(root).state.generation
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "itlrecovery"], capsys))
    assert warning.startswith(f"phoneemu lab regenerate: warning: regenerate tvs (generation {generation}), "
                              "and now itlrecovery, regenerated since the change log began"), warning
    assert "a phone that took no ITL between holds none with the new TVS certificate (tvs)" in warning
    assert "signed by a new itlrecovery key it does not hold" in warning
    assert "regenerate one certificate at a time and reset the phones between" in warning
    assert (f"phoneemu lab itl-reset {root} localkey && phoneemu boot --lab {root} --flash FLASH && "
            f"phoneemu lab restart-tftp {root} (FLASH: each phone's flash folder).") in warning
    assert "ctl-reset" not in warning  # no CTL served
    generations = LabCluster.open(root).state.identity_generations
    assert (generations["tvs"], generations["itlrecovery"]) == (1, 1)  # not refused


def test_itlrecovery_then_tvs_warns_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _lab(tmp_path)
    assert not _lockout_warnings(_err(["regenerate", str(root), "itlrecovery"], capsys))
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "tvs"], capsys))
    assert "regenerate itlrecovery (generation " in warning and "and now tvs," in warning


def test_an_itl_reset_closed_by_a_tftp_restart_opens_a_new_window(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _lab(tmp_path)
    _err(["regenerate", str(root), "tvs"], capsys)
    _err(["itl-reset", str(root), "localkey"], capsys)
    _err(["restart-tftp", str(root)], capsys)
    assert not _lockout_warnings(_err(["regenerate", str(root), "itlrecovery"], capsys))
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "tvs"], capsys))
    assert "since lab restart-tftp (generation " in warning, warning
    _err(["restart-tftp", str(root)], capsys)  # closes no itl-reset: the window stays
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "itlrecovery"], capsys))
    assert "since lab restart-tftp (generation " in warning, warning


def test_callmanager_warns_only_where_it_signs_the_itl(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Between ``itl-reset`` and ``restart-tftp`` the CallManager key signs the ITL: regenerated with TVS,
    the phones that did not boot meanwhile trust neither; otherwise a new CallManager certificate comes in
    an ITL signed by the ITLRecovery key they hold."""
    root = _lab(tmp_path)
    _err(["regenerate", str(root), "tvs"], capsys)
    assert not _lockout_warnings(_err(["regenerate", str(root), "callmanager"], capsys))
    _err(["itl-reset", str(root), "localkey"], capsys)  # leaves the phones locked (it warns): not counted
    _err(["regenerate", str(root), "tvs"], capsys)
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "callmanager"], capsys))
    assert "since the change log began" in warning and "a new callmanager key" in warning


def test_a_tvs_the_configs_name_not_regenerated_still_answers(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Two nodes, node 2's TVS port recorded (its configs name it): a phone asks it when node 1's presents a
    certificate its ITL lacks (spec §E.7), so both TVS certificates must be new for the lockout."""
    root = _lab(tmp_path, nodes=2)
    LabCluster.open(root).set_ports(now=NOW, **{"tvs-2": 2446})
    _err(["regenerate", str(root), "tvs"], capsys)
    assert not _lockout_warnings(_err(["regenerate", str(root), "itlrecovery"], capsys))
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "tvs-2"], capsys))
    assert "the new TVS certificate (tvs, tvs-2)" in warning


def test_mixed_mode_names_the_ctl_reset_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Serving a CTL, every phone checks it first: its way out is the CTL's (was: the bulk ITL reset, then
    'a phone holding the CTL' the CTL reset; real boots:
    test_ctl_lab_a_new_ctl_signer_locks_out_every_phone)."""
    root = _lab(tmp_path)
    _err(["mixed-mode", str(root), "on"], capsys)
    _err(["regenerate", str(root), "tvs"], capsys)
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "itlrecovery"], capsys))
    ctl_reset = (f"phoneemu lab ctl-reset {root} localkey && phoneemu boot --lab {root} --flash FLASH && "
                 f"phoneemu lab ctl-update {root}")
    assert "the CTL served, which every phone checks first (holding a CTL or not" in warning, warning
    assert "stays locked: the ITL is signed by a new itlrecovery key too" in warning, warning
    assert warning.endswith(f"Way out, the CTL reset (seed Reset CTL Localkey): {ctl_reset} (FLASH: each "
                            "phone's flash folder)."), warning
    assert "itl-reset" not in _ways(warning), warning


def test_lab_show_counts_one_more_phone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """21 phones: the first 20 one by one, then ``... and 1 more phone`` (was ``1 more phones``)."""
    root = _lab(tmp_path)
    assert main(["lab", "phone", "add", str(root), "--mac", "0A000000C000", "--count", "20",
                 "--now", str(NOW)]) == 0
    capsys.readouterr()
    assert main(["lab", "show", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "... and 1 more phone (--phones lists every one; --json has them)" in out, out[-3:]


# --- P16: each reproduced with real boots -------------------------------------------------------------------


def _booted_phone(tmp_path: Path, *, mixed_mode: bool = False) -> tuple[Path, Path, dict[str, int]]:
    """A lab (mixed mode: serving a CTL) whose phone took its lists while the lab was served (its config
    names the TVS there): (lab folder, the phone's flash, the ports)."""
    lab = LabCluster.init(tmp_path / "lab", seed=16, key_spec="rsa1024", now=NOW)
    lab.add_phone(MAC, now=NOW)
    if mixed_mode:
        lab.set_mixed_mode(True, now=NOW)
    flash = tmp_path / "flash"
    ports, stop = serve_in_thread(lab)
    try:
        assert boot_into_flash(lab, flash, MAC, now=NOW).ok
    finally:
        stop()
    return lab.root, flash, ports


def _ways(warning: str) -> str:
    """The part of a lockout warning after the rule: how to avoid it and the way out."""
    return warning.split(f"({RULE})", 1)[1]


def _boot_again(root: Path, flash: Path, ports: dict[str, int]) -> str:
    """The phone booted on the lab as it is now, served on the same ports: the rule that locked it out, or
    ``booted``."""
    return _boot_mac(root, flash, MAC, ports)


def test_a_tftp_restart_alone_resets_no_phone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``restart-tftp`` with no ``itl-reset`` open changes nothing the phones hold (was: a new window, no
    warning, the phone locked out)."""
    root, flash, ports = _booted_phone(tmp_path)
    _err(["regenerate", str(root), "tvs"], capsys)
    _err(["restart-tftp", str(root)], capsys)
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "itlrecovery"], capsys))
    assert "regenerate tvs (generation " in warning and "since the change log began" in warning, warning
    assert _boot_again(root, flash, ports) == RULE


def test_an_itlrecovery_key_imported_back_is_not_new(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The key exported before the regeneration, imported back: the phones hold it (was: ``regenerate tvs``
    warned, the phone booted, ``G.3.3``). Imported from a copy of the export, the same."""
    root, flash, ports = _booted_phone(tmp_path)
    export, copy = tmp_path / "itlrecovery.pem", tmp_path / "copy.pem"
    assert main(["lab", "itlrecovery", str(root), "export", str(export)]) == 0
    copy.write_bytes(export.read_bytes())
    _err(["regenerate", str(root), "itlrecovery"], capsys)
    assert main(["lab", "itlrecovery", str(root), "import", str(copy), "--now", str(NOW)]) == 0
    assert not _lockout_warnings(_err(["regenerate", str(root), "tvs"], capsys))
    assert _boot_again(root, flash, ports) == "booted"


def test_an_itlrecovery_key_not_held_then_is_new(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Imported from an export of the regenerated key, or from one whose file is gone (not known: counted as
    new), the warning stands."""
    root = _lab(tmp_path)
    before, after = tmp_path / "before.pem", tmp_path / "after.pem"
    assert main(["lab", "itlrecovery", str(root), "export", str(before)]) == 0
    _err(["regenerate", str(root), "itlrecovery"], capsys)
    assert main(["lab", "itlrecovery", str(root), "export", str(after)]) == 0
    assert main(["lab", "itlrecovery", str(root), "import", str(after), "--now", str(NOW)]) == 0
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "tvs"], capsys))
    assert "warning: itlrecovery import (generation " in warning, warning  # its last change
    assert main(["lab", "itlrecovery", str(root), "import", str(before), "--now", str(NOW)]) == 0
    assert not _lockout_warnings(_err(["regenerate", str(root), "tvs"], capsys))
    before.unlink()
    assert _lockout_warnings(_err(["regenerate", str(root), "tvs"], capsys))


def test_callmanager_new_too_the_itl_reset_is_not_offered(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """TVS, ITLRecovery and CallManager regenerated: the reset ITL is signed by the new CallManager key, the
    phone stays locked; regenerating CallManager says so (was: nothing), and the way that works, the phone's
    lists erased."""
    root, flash, ports = _booted_phone(tmp_path)
    _err(["regenerate", str(root), "tvs"], capsys)
    _err(["regenerate", str(root), "itlrecovery"], capsys)
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "callmanager"], capsys))
    assert "itl-reset" not in _ways(warning) and "restart-tftp" not in _ways(warning), warning
    assert ("The bulk ITL reset does not help (the reset list is signed by the CallManager key, new too). "
            "Way out, erase the CTL and ITL on each phone") in warning, warning
    assert warning.endswith(f": phoneemu phone erase --flash FLASH && phoneemu boot --lab {root} --flash "
                            "FLASH (FLASH: each phone's flash folder)."), warning
    assert _boot_again(root, flash, ports) == RULE
    _err(["itl-reset", str(root), "localkey"], capsys)
    assert _boot_again(root, flash, ports) == RULE  # the way out d90bf09 named
    _err(["restart-tftp", str(root)], capsys)
    assert main(["phone", "erase", "--flash", str(flash)]) == 0
    assert _boot_again(root, flash, ports) == "booted"


def test_callmanager_signing_the_itl_the_way_out_is_the_tftp_restart(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Between ``itl-reset`` and ``restart-tftp``, TVS and CallManager regenerated: the reset ITL (again) is
    signed by the new CallManager key; restarting TFTP signs it with the ITLRecovery key the phone holds."""
    root, flash, ports = _booted_phone(tmp_path)
    _err(["itl-reset", str(root), "localkey"], capsys)
    _err(["regenerate", str(root), "tvs"], capsys)
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "callmanager"], capsys))
    assert "itl-reset" not in _ways(warning), warning
    assert warning.endswith(f"(spec G.3.3, G.7): phoneemu lab restart-tftp {root} && phoneemu boot --lab "
                            f"{root} --flash FLASH (FLASH: each phone's flash folder)."), warning
    assert _boot_again(root, flash, ports) == RULE
    _err(["itl-reset", str(root), "localkey"], capsys)
    assert _boot_again(root, flash, ports) == RULE
    _err(["restart-tftp", str(root)], capsys)
    assert _boot_again(root, flash, ports) == "booted"
    # ITLRecovery regenerated now: the TFTP restart would not help either (the lockout's way changes)
    _err(["itl-reset", str(root), "localkey"], capsys)
    _err(["regenerate", str(root), "tvs"], capsys)
    _err(["regenerate", str(root), "callmanager"], capsys)
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "itlrecovery"], capsys))
    assert ("new too, and so is the ITLRecovery key a TFTP restart signs with). Way out, erase the CTL and "
            "ITL") in warning, warning


def test_mixed_mode_callmanager_new_too_the_ctl_reset_is_not_offered(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Serving a CTL: the CTL reset is signed by the CallManager key too; the phone's lists erased."""
    root, flash, ports = _booted_phone(tmp_path, mixed_mode=True)
    _err(["regenerate", str(root), "tvs"], capsys)
    _err(["regenerate", str(root), "itlrecovery"], capsys)
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "callmanager"], capsys))
    assert "ctl-reset" not in _ways(warning) and "itl-reset" not in _ways(warning), warning
    assert ("The CTL reset does not help (the reset list is signed by the CallManager key, new too). Way "
            "out, erase the CTL and ITL on each phone") in warning, warning
    assert warning.endswith(f": phoneemu phone erase --flash FLASH && phoneemu boot --lab {root} --flash "
                            "FLASH (FLASH: each phone's flash folder)."), warning
    _err(["ctl-reset", str(root), "localkey"], capsys)
    assert _boot_again(root, flash, ports) == RULE
    _err(["ctl-update", str(root)], capsys)
    assert main(["phone", "erase", "--flash", str(flash)]) == 0
    assert _boot_again(root, flash, ports) == "booted"


def test_mixed_mode_callmanager_signing_the_ctl_the_way_out_is_the_ctl_update(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Between ``ctl-reset`` and ``ctl-update``, TVS and CallManager regenerated: the CTL is signed by the new
    CallManager key (the ITL's signer, ITLRecovery, is not new); ``ctl-update`` signs it with the ITLRecovery
    key the phone holds."""
    root, flash, ports = _booted_phone(tmp_path, mixed_mode=True)
    _err(["ctl-reset", str(root), "localkey"], capsys)
    _err(["regenerate", str(root), "tvs"], capsys)
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "callmanager"], capsys))
    boot = f"phoneemu boot --lab {root} --flash FLASH"
    assert warning.endswith(
        "The CTL reset does not help (the reset list is signed by the CallManager key, new too). Way out, "
        "update the CTL: it is signed by the ITLRecovery key again, which such a phone holds (spec G.3.2, "
        f"G.3.3): phoneemu lab ctl-update {root} && {boot}; or reset the phones twice (the ITL, then the "
        f"CTL): {boot} && {boot} (FLASH: each phone's flash folder)."), warning
    assert "it takes the ITL then (its signer not new), which names the new callmanager key" in warning
    assert _boot_again(root, flash, ports) == RULE
    _err(["ctl-update", str(root)], capsys)
    assert _boot_again(root, flash, ports) == "booted"


# --- a lab serving a CTL: phones holding it and phones holding none (T1) ----------------------------------
# Real boots: every phone asks for the CTL first; one holding none checks it against its ITL (G.3.3), whose
# SAST keys are the CTL's (ITLRecovery, CallManager): both lock out alike, and only where the CTL's signer is
# new (the CTL taken names the ITL's signer, G.3.2). Was: a new ITL signer warned in a CTL lab too (gap 1).

NO_CTL = "0A000000B102"  # booted before mixed mode: it holds an ITL and no CTL


def _ctl_lab_phones(tmp_path: Path) -> tuple[Path, dict[str, Path], dict[str, int]]:
    """A lab serving a CTL with two phones that took their lists while it was served: ``MAC`` holding the
    CTL and the ITL, ``NO_CTL`` the ITL alone (booted before mixed mode went on); (folder, flash by MAC,
    ports)."""
    lab = LabCluster.init(tmp_path / "lab", seed=16, key_spec="rsa1024", now=NOW)
    for mac in (MAC, NO_CTL):
        lab.add_phone(mac, now=NOW)
    flashes = {MAC: tmp_path / "flash-ctl", NO_CTL: tmp_path / "flash-no-ctl"}
    ports, stop = serve_in_thread(lab)
    try:
        assert boot_into_flash(lab, flashes[NO_CTL], NO_CTL, now=NOW).ok
    finally:
        stop()
    lab.set_mixed_mode(True, now=NOW)
    lab = LabCluster.open(lab.root)
    _ports, stop = serve_in_thread(lab, tftp_port=ports["tftp"], tvs_port=ports["tvs"])
    try:
        assert boot_into_flash(lab, flashes[MAC], MAC, now=NOW).ok
    finally:
        stop()
    assert not (flashes[NO_CTL] / "CTLFile.tlv").exists() and (flashes[MAC] / "CTLFile.tlv").exists()
    return lab.root, flashes, ports


def _boot_each(root: Path, flashes: dict[str, Path], ports: dict[str, int]) -> set[str]:
    """Each phone booted once on the lab as it is now: the rules (or ``booted``) they got, both alike."""
    got = {mac: _boot_mac(root, flash, mac, ports) for mac, flash in flashes.items()}
    return set(got.values())


def _boot_mac(root: Path, flash: Path, mac: str, ports: dict[str, int]) -> str:
    """Phone ``mac`` booted from ``flash`` on the lab as it is now, served on the same ports: the rule that
    locked it out, or ``booted``."""
    lab = LabCluster.open(root)
    _ports, stop = serve_in_thread(lab, tftp_port=ports["tftp"], tvs_port=ports["tvs"])
    try:
        report = boot_into_flash(lab, flash, mac, now=NOW)
    finally:
        stop()
    if not report.locked_out:
        assert report.ok, report.deciding
        return "booted"
    assert report.deciding is not None
    rule: str = report.deciding.rule
    return rule


def test_ctl_lab_a_new_itl_signer_alone_locks_no_phone_out(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Gap 1: ``itl-reset``, ``regenerate tvs``, ``regenerate callmanager``: the ITL signed by the new
    CallManager key, the CTL by ITLRecovery's (not new): no warning (was: one), every phone boots."""
    root, flashes, ports = _ctl_lab_phones(tmp_path)
    for argv in (["itl-reset", str(root), "localkey"], ["regenerate", str(root), "tvs"],
                 ["regenerate", str(root), "callmanager"]):
        assert not _lockout_warnings(_err(argv, capsys)), argv
    assert _boot_each(root, flashes, ports) == {"booted"}


def test_ctl_lab_a_new_ctl_signer_locks_out_every_phone(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """TVS and ITLRecovery regenerated: both lists signed by the new key, the phones holding a CTL and those
    holding none lock out alike, and stay locked; the CTL reset the warning names brings both back (the bulk
    ITL reset it no longer names first)."""
    root, flashes, ports = _ctl_lab_phones(tmp_path)
    _err(["regenerate", str(root), "tvs"], capsys)
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "itlrecovery"], capsys))
    assert f"phoneemu lab ctl-reset {root} localkey" in _ways(warning), warning
    assert _boot_each(root, flashes, ports) == {RULE}
    assert _boot_each(root, flashes, ports) == {RULE}  # lasting
    _err(["ctl-reset", str(root), "localkey"], capsys)
    assert _boot_each(root, flashes, ports) == {"booted"}
    _err(["ctl-update", str(root)], capsys)
    assert _boot_each(root, flashes, ports) == {"booted"}


def test_ctl_lab_the_itl_signer_not_new_a_second_boot_takes_the_ctl(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``ctl-reset``, TVS and CallManager regenerated: every phone refuses the CTL at its next boot but takes
    the ITL (ITLRecovery's), which names the new CallManager key: the boot after takes the CTL, as the warning
    says (the ctl-update way: test_mixed_mode_callmanager_signing_the_ctl_the_way_out_is_the_ctl_update)."""
    root, flashes, ports = _ctl_lab_phones(tmp_path)
    _err(["ctl-reset", str(root), "localkey"], capsys)
    _err(["regenerate", str(root), "tvs"], capsys)
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "callmanager"], capsys))
    assert "or reset the phones twice (the ITL, then the CTL)" in warning, warning
    assert _boot_each(root, flashes, ports) == {RULE}
    assert _boot_each(root, flashes, ports) == {"booted"}


# --- lab itl-reset: the reset ITL signed by a CallManager key new since (gap 2) ---------------------------


def test_itl_reset_signed_by_a_new_callmanager_key_warns_with_the_tftp_restart(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """TVS and CallManager regenerated (no warning: the ITL served is signed by ITLRecovery's key, held),
    then ``itl-reset``: the reset ITL is signed by the new CallManager key, TVS new too: a phone that took
    no ITL since locks out (was: nothing said); restarting TFTP brings it back, and is the reset point: a
    later ``regenerate itlrecovery`` alone says nothing (the TVS the phone took vouches), TVS then warns."""
    root, flash, ports = _booted_phone(tmp_path)
    _err(["regenerate", str(root), "tvs"], capsys)
    assert not _lockout_warnings(_err(["regenerate", str(root), "callmanager"], capsys))
    (warning,) = _lockout_warnings(_err(["itl-reset", str(root), "localkey"], capsys))
    assert warning.startswith("phoneemu lab itl-reset: warning: the reset ITL is signed by the CallManager "
                              "key, new since the change log began with every TVS the configs name "
                              "(regenerate tvs (generation "), warning
    assert f"({RULE}). The bulk ITL reset does not help (the reset list is signed" in warning, warning
    assert warning.endswith(f"(spec G.3.3, G.7): phoneemu lab restart-tftp {root} && phoneemu boot --lab "
                            f"{root} --flash FLASH (FLASH: each phone's flash folder)."), warning
    assert _boot_again(root, flash, ports) == RULE
    assert not _lockout_warnings(_err(["restart-tftp", str(root)], capsys))
    assert _boot_again(root, flash, ports) == "booted"
    assert not _lockout_warnings(_err(["regenerate", str(root), "itlrecovery"], capsys))
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "tvs"], capsys))
    assert "since lab restart-tftp (generation " in warning, warning
    assert _boot_again(root, flash, ports) == RULE


def test_itl_reset_a_new_callmanager_key_vouched_by_a_tvs_not_new_no_warning(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """CallManager alone regenerated: the TVS the phone holds vouches for the new key (G.3.4): no warning."""
    root, flash, ports = _booted_phone(tmp_path)
    _err(["regenerate", str(root), "callmanager"], capsys)
    assert not _lockout_warnings(_err(["itl-reset", str(root), "localkey"], capsys))
    assert _boot_again(root, flash, ports) == "booted"


def test_itl_reset_itlrecovery_new_too_the_way_out_is_the_erase(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """TVS, CallManager and ITLRecovery regenerated, then ``itl-reset``: neither the reset nor the TFTP
    restart helps; the phone's lists erased do."""
    root, flash, ports = _booted_phone(tmp_path)
    for cert in ("tvs", "callmanager", "itlrecovery"):
        _err(["regenerate", str(root), cert], capsys)
    (warning,) = _lockout_warnings(_err(["itl-reset", str(root), "localkey"], capsys))
    assert "restart-tftp" not in _ways(warning).split("this reset does not help")[-1], warning
    assert warning.endswith(f": phoneemu phone erase --flash FLASH && phoneemu boot --lab {root} --flash "
                            "FLASH (FLASH: each phone's flash folder)."), warning
    assert _boot_again(root, flash, ports) == RULE
    _err(["restart-tftp", str(root)], capsys)
    assert _boot_again(root, flash, ports) == RULE
    assert main(["phone", "erase", "--flash", str(flash)]) == 0
    assert _boot_again(root, flash, ports) == "booted"


def test_ctl_lab_itl_reset_makes_the_lockout_last_the_way_out_is_the_ctl_update(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Serving a CTL reset to the CallManager key: TVS and CallManager regenerated (a second boot would take
    the CTL), then ``itl-reset``: the reset ITL is signed by the new key too, every phone stays locked (was:
    nothing said); ``ctl-update`` brings them back. Without the CTL reset (the CTL's signer not new) the same
    ``itl-reset`` says nothing: test_ctl_lab_itl_reset_of_a_ctl_not_new_says_nothing."""
    root, flashes, ports = _ctl_lab_phones(tmp_path)
    _err(["ctl-reset", str(root), "localkey"], capsys)
    _err(["regenerate", str(root), "tvs"], capsys)
    _err(["regenerate", str(root), "callmanager"], capsys)
    (warning,) = _lockout_warnings(_err(["itl-reset", str(root), "localkey"], capsys))
    assert ("stays locked: the ITL is signed by a new callmanager key too; this reset does not help it. The "
            "CTL reset does not help") in warning, warning
    assert "reset the phones twice" not in warning, warning
    assert "Way out, update the CTL: it is signed by the ITLRecovery key again" in warning, warning
    assert _boot_each(root, flashes, ports) == {RULE}
    assert _boot_each(root, flashes, ports) == {RULE}
    _err(["ctl-update", str(root)], capsys)
    assert _boot_each(root, flashes, ports) == {"booted"}


def test_ctl_lab_itl_reset_of_a_ctl_not_new_says_nothing(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """TVS and CallManager regenerated, then ``itl-reset``: the CTL (ITLRecovery's) names the new key, so
    every phone takes the reset ITL: no warning, all boot."""
    root, flashes, ports = _ctl_lab_phones(tmp_path)
    _err(["regenerate", str(root), "tvs"], capsys)
    _err(["regenerate", str(root), "callmanager"], capsys)
    assert not _lockout_warnings(_err(["itl-reset", str(root), "localkey"], capsys))
    assert _boot_each(root, flashes, ports) == {"booted"}


# --- TLOCK2: a reset that left the phones locked is no reset point; restart-tftp completing a lockout -------
# Review, each reproduced with real boots: an itl-reset that left the phones locked (its ITL signed by a new
# CallManager key, TVS new too), and the restart-tftp that closed it, were counted as the point the phones
# took the lists (regenerate itlrecovery then said nothing, and the restart-tftp the warning named locked the
# phone out unsaid); a restart-tftp that signs the ITL with a new ITLRecovery key said nothing either.


def test_an_itl_reset_that_left_the_phones_locked_is_no_reset_point(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """TVS and CallManager regenerated, ``itl-reset`` (warns: the phone stays locked, ``restart-tftp`` the way
    out), then ``regenerate itlrecovery``: the TFTP restart no longer helps, the phone's lists erased do
    (was: nothing said, counted from that itl-reset); ``restart-tftp`` says the phone stays locked (was:
    nothing)."""
    root, flash, ports = _booted_phone(tmp_path)
    assert not _lockout_warnings(_err(["regenerate", str(root), "tvs"], capsys))
    assert not _lockout_warnings(_err(["regenerate", str(root), "callmanager"], capsys))
    (warning,) = _lockout_warnings(_err(["itl-reset", str(root), "localkey"], capsys))
    assert f"phoneemu lab restart-tftp {root} && " in _ways(warning), warning
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "itlrecovery"], capsys))
    assert "since the change log began" in warning, warning
    assert ("new too, and so is the ITLRecovery key a TFTP restart signs with). Way out, erase the CTL and "
            "ITL") in warning, warning
    (warning,) = _lockout_warnings(_err(["restart-tftp", str(root)], capsys))
    assert warning.startswith("phoneemu lab restart-tftp: warning: the ITL is signed by the ITLRecovery key "
                              "again, new since the change log began with every TVS the configs name "
                              "(regenerate tvs (generation "), warning
    assert "restart-tftp" not in _ways(warning) and "itl-reset" not in _ways(warning), warning
    assert warning.endswith(f": phoneemu phone erase --flash FLASH && phoneemu boot --lab {root} --flash "
                            "FLASH (FLASH: each phone's flash folder)."), warning
    assert _boot_again(root, flash, ports) == RULE
    assert main(["phone", "erase", "--flash", str(flash)]) == 0
    assert _boot_again(root, flash, ports) == "booted"


def test_a_tftp_restart_signing_with_a_new_itlrecovery_key_warns(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``itl-reset``, TVS and ITLRecovery regenerated (nothing to say: the CallManager key the phone holds
    signs the ITL), then ``restart-tftp``: the ITL signed by the new ITLRecovery key, TVS new, the phone
    locks out (was: nothing said); the bulk ITL reset it names brings it back, and says nothing itself."""
    root, flash, ports = _booted_phone(tmp_path)
    _err(["itl-reset", str(root), "localkey"], capsys)
    assert not _lockout_warnings(_err(["regenerate", str(root), "tvs"], capsys))
    assert not _lockout_warnings(_err(["regenerate", str(root), "itlrecovery"], capsys))
    (warning,) = _lockout_warnings(_err(["restart-tftp", str(root)], capsys))
    assert "new since lab itl-reset (generation " in warning, warning
    assert "signed by a new itlrecovery key it does not hold" in warning, warning
    assert warning.endswith(f"phoneemu lab itl-reset {root} localkey && phoneemu boot --lab {root} --flash "
                            f"FLASH && phoneemu lab restart-tftp {root} (FLASH: each phone's flash "
                            "folder)."), warning
    assert _boot_again(root, flash, ports) == RULE
    assert not _lockout_warnings(_err(["itl-reset", str(root), "localkey"], capsys))
    assert _boot_again(root, flash, ports) == "booted"
    assert not _lockout_warnings(_err(["restart-tftp", str(root)], capsys))
    assert _boot_again(root, flash, ports) == "booted"


def test_ctl_lab_a_tftp_restart_making_the_lockout_last_warns_and_a_reset_after_the_ctl_way_does_not(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Serving a CTL: ``itl-reset``, TVS and ITLRecovery regenerated (the CTL's signer new: a lockout a second
    boot ends, the ITL's signer the CallManager key), then ``restart-tftp``: the ITL is signed by the new key
    too, every phone stays locked (was: nothing said); the CTL reset it names brings them back. Then a bulk
    ITL reset with the phones holding the lists: no warning (a reset point where the phones take the ITL, the
    CTL refused or not), every phone boots."""
    root, flashes, ports = _ctl_lab_phones(tmp_path)
    _err(["itl-reset", str(root), "localkey"], capsys)
    _err(["regenerate", str(root), "tvs"], capsys)
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "itlrecovery"], capsys))
    assert "or reset the phones twice" in warning, warning
    (warning,) = _lockout_warnings(_err(["restart-tftp", str(root)], capsys))
    assert "stays locked: the ITL is signed by a new itlrecovery key too" in warning, warning
    assert "reset the phones twice" not in warning, warning
    assert f"Way out, the CTL reset (seed Reset CTL Localkey): phoneemu lab ctl-reset {root} localkey" \
        in _ways(warning), warning
    assert _boot_each(root, flashes, ports) == {RULE}
    assert _boot_each(root, flashes, ports) == {RULE}
    for argv in (["ctl-reset", str(root), "localkey"], ["ctl-update", str(root)]):
        assert not _lockout_warnings(_err(argv, capsys)), argv
        assert _boot_each(root, flashes, ports) == {"booted"}
    for argv in (["itl-reset", str(root), "localkey"], ["restart-tftp", str(root)]):
        assert not _lockout_warnings(_err(argv, capsys)), argv
        assert _boot_each(root, flashes, ports) == {"booted"}


def test_ctl_lab_a_reset_where_the_phones_take_the_itl_but_not_the_ctl_counts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Serving a CTL, TVS and ITLRecovery regenerated (warns), then the bulk ITL reset instead of the CTL's:
    the phones refuse the CTL at the reset but take the reset ITL, which names the new ITLRecovery key; after
    the TFTP restart they take both: no warning at either (the reset counts), every phone boots."""
    root, flashes, ports = _ctl_lab_phones(tmp_path)
    _err(["regenerate", str(root), "tvs"], capsys)
    assert _lockout_warnings(_err(["regenerate", str(root), "itlrecovery"], capsys))
    assert not _lockout_warnings(_err(["itl-reset", str(root), "localkey"], capsys))
    assert _boot_each(root, flashes, ports) == {RULE}
    assert not _lockout_warnings(_err(["restart-tftp", str(root)], capsys))
    assert _boot_each(root, flashes, ports) == {"booted"}
    # counted from that restart: TVS and ITLRecovery regenerated again, the next restart locks them out
    for argv in (["itl-reset", str(root), "localkey"], ["regenerate", str(root), "tvs"]):
        assert not _lockout_warnings(_err(argv, capsys)), argv
    assert _lockout_warnings(_err(["regenerate", str(root), "itlrecovery"], capsys))
    (warning,) = _lockout_warnings(_err(["restart-tftp", str(root)], capsys))
    assert "new since lab itl-reset (generation " in warning, warning
    assert _boot_each(root, flashes, ports) == {RULE}
    assert _boot_each(root, flashes, ports) == {RULE}


# --- TCTL: the CTL reset, and the ctl-update closing it, are reset points too ------------------------------
# Reported (b6ecd46's author): mixed mode, TVS and ITLRecovery regenerated (warns: the CTL reset the way
# out), ctl-reset, ctl-update, then regenerate callmanager still warned, naming phone erase. Real boots: a
# phone reset between the CTL reset and the update, as the way out asks, takes the CTL (signed by the
# CallManager key it holds) and with it the ITL (the CTL names its new ITLRecovery signer): it boots after.


def test_ctl_lab_a_ctl_reset_the_phones_followed_is_a_reset_point(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The reported sequence, the phones reset between ``ctl-reset`` and ``ctl-update``: ``regenerate
    callmanager`` says nothing (was: a warning naming ``phone erase``), every phone boots; counted from the
    ``ctl-update``, TVS alone says nothing either (booted), and ITLRecovery then completes a lockout the
    warning names: counted from that update (generation said), every phone locks out."""
    root, flashes, ports = _ctl_lab_phones(tmp_path)
    _err(["regenerate", str(root), "tvs"], capsys)
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "itlrecovery"], capsys))
    assert f"phoneemu lab ctl-reset {root} localkey" in _ways(warning), warning
    assert not _lockout_warnings(_err(["ctl-reset", str(root), "localkey"], capsys))
    assert _boot_each(root, flashes, ports) == {"booted"}  # the reset the way out asks for
    assert not _lockout_warnings(_err(["ctl-update", str(root)], capsys))
    assert not _lockout_warnings(_err(["regenerate", str(root), "callmanager"], capsys))
    assert _boot_each(root, flashes, ports) == {"booted"}
    assert _boot_each(root, flashes, ports) == {"booted"}


def test_ctl_lab_counted_from_the_ctl_update_the_next_lockout_is_said(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """After the CTL reset the phones followed and its update, TVS and CallManager regenerated say nothing
    (the CTL and ITL signed by the ITLRecovery key the phones took there: booted); ITLRecovery regenerated
    then warns, counted from the update (was: from the change log's start, the TVS and ITLRecovery
    regenerations before the reset said too), and every phone locks out, as it says."""
    root, flashes, ports = _ctl_lab_phones(tmp_path)
    for argv in (["regenerate", str(root), "tvs"], ["regenerate", str(root), "itlrecovery"],
                 ["ctl-reset", str(root), "localkey"]):
        _err(argv, capsys)
    assert _boot_each(root, flashes, ports) == {"booted"}
    _err(["ctl-update", str(root)], capsys)
    update = LabCluster.open(root).state.generation
    for cert in ("tvs", "callmanager"):
        assert not _lockout_warnings(_err(["regenerate", str(root), cert], capsys)), cert
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "itlrecovery"], capsys))
    assert warning.startswith(f"phoneemu lab regenerate: warning: regenerate tvs (generation {update + 1}), "
                              f"regenerate callmanager (generation {update + 2}), and now itlrecovery, "
                              f"regenerated since lab ctl-update (generation {update})"), warning
    assert _boot_each(root, flashes, ports) == {RULE}


def test_ctl_lab_phones_that_skipped_the_ctl_reset_stay_locked_unsaid(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Ours, as for the bulk ITL reset: the lab records no boot and takes the phones reset where the seed's
    procedure resets them (its ctl-reset note says to). Phones booted only after ``ctl-update`` took no CTL
    signed by the CallManager key: the CTL is signed by the new ITLRecovery key again and they stay locked,
    ``regenerate callmanager`` saying nothing more of them (was: the warning, and phone erase, for every
    phone: the phones that followed the reset boot, test_ctl_lab_a_ctl_reset_the_phones_followed_is_a_reset_
    point)."""
    root, flashes, ports = _ctl_lab_phones(tmp_path)
    _err(["regenerate", str(root), "tvs"], capsys)
    _err(["regenerate", str(root), "itlrecovery"], capsys)
    err = _err(["ctl-reset", str(root), "localkey"], capsys)
    assert "reset the phones now" in err and not _lockout_warnings(err), err
    assert not _lockout_warnings(_err(["ctl-update", str(root)], capsys))
    assert _boot_each(root, flashes, ports) == {RULE}
    assert not _lockout_warnings(_err(["regenerate", str(root), "callmanager"], capsys))
    assert _boot_each(root, flashes, ports) == {RULE}


def test_ctl_lab_a_ctl_reset_that_left_the_phones_locked_is_no_reset_point(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """TVS, ITLRecovery and CallManager regenerated: the CTL reset is signed by the new CallManager key, the
    ITL by the new ITLRecovery key, every phone stays locked; the reset says so now, the update too (was:
    nothing), and neither is counted (``lists_taken: false``): ``regenerate tvs`` after them still warns,
    counted from the change log's start, naming phone erase, which brings them back."""
    root, flashes, ports = _ctl_lab_phones(tmp_path)
    for cert in ("tvs", "itlrecovery", "callmanager"):
        _err(["regenerate", str(root), cert], capsys)
    (warning,) = _lockout_warnings(_err(["ctl-reset", str(root), "localkey"], capsys))
    assert warning.startswith("phoneemu lab ctl-reset: warning: the reset CTL is signed by the CallManager "
                              "key, new since the change log began with every TVS"), warning
    assert "stays locked: the ITL is signed by a new itlrecovery key too" in warning, warning
    # a lab of two phones: the fleet's commands (walk s39b: was one phone's, --flash FLASH)
    assert "ctl-update" not in _ways(warning), warning
    assert "phoneemu phone erase --fleet-flash FLEET" in warning, warning
    assert _boot_each(root, flashes, ports) == {RULE}
    (warning,) = _lockout_warnings(_err(["ctl-update", str(root)], capsys))
    assert warning.startswith("phoneemu lab ctl-update: warning: the CTL is signed by the ITLRecovery key "
                              "again, new since the change log began"), warning
    assert _boot_each(root, flashes, ports) == {RULE}
    entries = [e for e in LabCluster.open(root).state.log if e.op in ("ctl-reset", "ctl-update")]
    assert [e.args.get("lists_taken") for e in entries] == [False, False]
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "tvs"], capsys))
    assert "since the change log began" in warning and "phoneemu phone erase --fleet-flash FLEET" in warning
    assert _boot_each(root, flashes, ports) == {RULE}
    for flash in flashes.values():
        assert main(["phone", "erase", "--flash", str(flash)]) == 0
    assert _boot_each(root, flashes, ports) == {"booted"}


def test_ctl_lab_a_ctl_reset_signed_by_a_new_callmanager_key_warns(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """TVS and CallManager regenerated (nothing to say: both lists signed by the ITLRecovery key the phones
    hold), then ``ctl-reset``: the reset CTL is signed by the new CallManager key, every phone locks out at
    its next boot (was: nothing said) and takes the CTL at the boot after, as the warning says; the update it
    names brings them back too."""
    root, flashes, ports = _ctl_lab_phones(tmp_path)
    for cert in ("tvs", "callmanager"):
        assert not _lockout_warnings(_err(["regenerate", str(root), cert], capsys)), cert
    (warning,) = _lockout_warnings(_err(["ctl-reset", str(root), "localkey"], capsys))
    assert "it takes the ITL then (its signer not new), which names the new callmanager key" in warning
    assert (f"Way out, update the CTL: it is signed by the ITLRecovery key again, which such a phone holds "
            f"(spec G.3.2, G.3.3): phoneemu lab ctl-update {root} && ") in warning, warning
    assert "or reset the phones twice (the ITL, then the CTL)" in warning, warning
    assert _boot_each(root, flashes, ports) == {RULE}
    assert _boot_each(root, flashes, ports) == {"booted"}
    assert not _lockout_warnings(_err(["ctl-update", str(root)], capsys))
    assert _boot_each(root, flashes, ports) == {"booted"}


def test_ctl_lab_a_ctl_update_signing_with_a_new_itlrecovery_key_warns(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``ctl-reset``, TVS and ITLRecovery regenerated (nothing to say: the CTL is signed by the CallManager
    key the phones hold, and names the new ITLRecovery key), then ``ctl-update``: the CTL is signed by the new
    ITLRecovery key, TVS new, every phone locks out and stays locked (was: nothing said); the CTL reset it
    names brings them back, saying nothing itself."""
    root, flashes, ports = _ctl_lab_phones(tmp_path)
    _err(["ctl-reset", str(root), "localkey"], capsys)
    for cert in ("tvs", "itlrecovery"):
        assert not _lockout_warnings(_err(["regenerate", str(root), cert], capsys)), cert
    (warning,) = _lockout_warnings(_err(["ctl-update", str(root)], capsys))
    assert "new since lab ctl-reset (generation " in warning, warning
    assert "stays locked: the ITL is signed by a new itlrecovery key too" in warning, warning
    assert warning.endswith(f"Way out, the CTL reset (seed Reset CTL Localkey): phoneemu lab ctl-reset "
                            f"{root} localkey && phoneemu fleet boot --lab {root} --flash FLEET && phoneemu "
                            f"lab ctl-update {root} (FLEET: the folder of the phones' flashes, as fleet boot "
                            "--flash keeps them)."), warning  # two phones: the fleet's (walk s39b)
    assert _boot_each(root, flashes, ports) == {RULE}
    assert _boot_each(root, flashes, ports) == {RULE}
    assert not _lockout_warnings(_err(["ctl-reset", str(root), "localkey"], capsys))
    assert _boot_each(root, flashes, ports) == {"booted"}
    assert not _lockout_warnings(_err(["ctl-update", str(root)], capsys))
    assert _boot_each(root, flashes, ports) == {"booted"}


def test_ctl_lab_a_ctl_update_completing_a_lockout_a_second_boot_ends_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The ITL reset open (its ITL signed by the CallManager key, not new), ``ctl-reset``, TVS and ITLRecovery
    regenerated, then ``ctl-update``: the CTL signed by the new ITLRecovery key, every phone locks out at its
    next boot, takes the ITL there and the CTL at the boot after, as the warning says (was: nothing said)."""
    root, flashes, ports = _ctl_lab_phones(tmp_path)
    for argv in (["itl-reset", str(root), "localkey"], ["ctl-reset", str(root), "localkey"],
                 ["regenerate", str(root), "tvs"], ["regenerate", str(root), "itlrecovery"]):
        assert not _lockout_warnings(_err(argv, capsys)), argv
    (warning,) = _lockout_warnings(_err(["ctl-update", str(root)], capsys))
    assert "it takes the ITL then (its signer not new), which names the new itlrecovery key" in warning
    assert "or reset the phones twice (the ITL, then the CTL)" in warning, warning
    assert _boot_each(root, flashes, ports) == {RULE}
    assert _boot_each(root, flashes, ports) == {"booted"}
