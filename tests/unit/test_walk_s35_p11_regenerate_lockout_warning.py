"""``lab regenerate`` warns when it completes a lockout: the signer of the lists served and every TVS the
configs name regenerated with no ``lab itl-reset`` / ``restart-tftp`` between (ours: the lab records no
boot, :meth:`phoneemu.lab.cluster.LabCluster.untaken_regenerations`). A phone that took no ITL between holds
none with the new TVS certificate and trusts the new signer only through that TVS: locked out at its next
boot (``G.3.4-tvs-server-untrusted``; the scenario ``tvs-trusted-through-itl`` boots it). The warning names
the rule and the bulk ITL reset, the way out the ways out table gives for it; never a refusal.

Was (walk-through): ``lab regenerate DIR tvs`` then ``lab regenerate DIR itlrecovery`` said only CUCM's
ITLRecovery warning, which does not mention it. Also ``lab show``: ``... and 1 more phones``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster

NOW = 1_780_000_000
MAC = "0A000000B101"
RULE = "G.3.4-tvs-server-untrusted"


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


@pytest.mark.parametrize("between", [["restart-tftp"], ["itl-reset", "localkey"]])
def test_an_itl_reset_or_tftp_restart_between_opens_a_new_window(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], between: list[str]) -> None:
    root = _lab(tmp_path)
    _err(["regenerate", str(root), "tvs"], capsys)
    _err([between[0], str(root), *between[1:]], capsys)
    if between[0] == "itl-reset":
        _err(["restart-tftp", str(root)], capsys)
    assert not _lockout_warnings(_err(["regenerate", str(root), "itlrecovery"], capsys))
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "tvs"], capsys))
    assert "since lab restart-tftp (generation " in warning, warning


def test_callmanager_warns_only_where_it_signs_the_itl(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Between ``itl-reset`` and ``restart-tftp`` the CallManager key signs the ITL: regenerated with TVS,
    the phones that did not boot meanwhile trust neither; otherwise a new CallManager certificate comes in
    an ITL signed by the ITLRecovery key they hold."""
    root = _lab(tmp_path)
    _err(["regenerate", str(root), "tvs"], capsys)
    assert not _lockout_warnings(_err(["regenerate", str(root), "callmanager"], capsys))
    _err(["itl-reset", str(root), "localkey"], capsys)
    _err(["regenerate", str(root), "tvs"], capsys)
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "callmanager"], capsys))
    assert "since lab itl-reset (generation " in warning and "a new callmanager key" in warning


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


def test_mixed_mode_names_the_ctl_reset_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _lab(tmp_path)
    _err(["mixed-mode", str(root), "on"], capsys)
    _err(["regenerate", str(root), "tvs"], capsys)
    (warning,) = _lockout_warnings(_err(["regenerate", str(root), "itlrecovery"], capsys))
    ctl_reset = (f"phoneemu lab ctl-reset {root} localkey && phoneemu boot --lab {root} --flash FLASH && "
                 f"phoneemu lab ctl-update {root}")
    assert warning.endswith("; a phone holding the CTL refuses the new CTL first, for the same reason: its "
                            f"way out is the CTL reset (seed Reset CTL Localkey): {ctl_reset}."), warning


def test_lab_show_counts_one_more_phone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """21 phones: the first 20 one by one, then ``... and 1 more phone`` (was ``1 more phones``)."""
    root = _lab(tmp_path)
    assert main(["lab", "phone", "add", str(root), "--mac", "0A000000C000", "--count", "20",
                 "--now", str(NOW)]) == 0
    capsys.readouterr()
    assert main(["lab", "show", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "... and 1 more phone (--phones lists every one; --json has them)" in out, out[-3:]
