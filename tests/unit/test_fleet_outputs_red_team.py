"""``fleet boot`` options found wrong by a red team of the command (W6): each refused before any boot,
one line naming the option, exit 2.

* ``--mac-start 00:11:zz`` said ``mac: '00:11:zz' is not a MAC address`` (the field, not the option).
* ``--plot r --json r.png``: the plot is written to ``r.png`` (no suffix: PNG) and replaced the JSON
  report after the storm, exit 0.
* ``--models site.csv --json site.csv`` (or ``--junit``/``--plot`` naming ``--installed-itl``,
  ``--installed-ctl`` or an ``--image-signer``): the report replaced the user's input file.
* ``--plot x.pgf`` without a TeX system: matplotlib's RuntimeError, a traceback after the storm.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import one_line_cli_error

FLEET = ["fleet", "boot", "--count", "1", "--tftp", "127.0.0.1:9", "--shards", "0", "--timeout", "0.2", "-q"]


def _no_boot(monkeypatch: pytest.MonkeyPatch) -> None:
    """A storm that started would be the bug: fail at once."""
    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("a storm started")
    monkeypatch.setattr("phoneemu.commands.fleet.run_fleet", refuse)


def test_a_malformed_mac_start_names_the_option(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _no_boot(monkeypatch)
    line = one_line_cli_error([*FLEET, "--mac-start", "00:11:zz"], capsys)
    assert line.startswith("phoneemu fleet boot: --mac-start MAC: '00:11:zz' is not a MAC address"), line


def test_a_plot_without_suffix_is_its_png_for_the_clash_check(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _no_boot(monkeypatch)
    line = one_line_cli_error([*FLEET, "--plot", str(tmp_path / "r"), "--json", str(tmp_path / "r.png")],
                              capsys)
    assert "--plot" in line and "the same file as --json" in line and "r.png" in line, line


VECTORS = Path(__file__).parents[1] / "vectors"


def _valid_input(option: str, path: Path) -> bytes:
    """What ``option`` takes whole, written to ``path`` (a file the old code read, then overwrote)."""
    if option == "--models":
        data = b"0A0000000000,Cisco 8861\n"
    elif option == "--installed-itl":
        data = (VECTORS / "itl_lab.tlv").read_bytes()
    elif option == "--installed-ctl":
        data = (VECTORS / "ctl_nonsecure_3746.tlv").read_bytes()
    else:  # --image-signer: a certificate in PEM, one the ITL vector holds
        import base64

        from phoneemu.formats import trustlist

        der = trustlist.parse((VECTORS / "itl_lab.tlv").read_bytes()).records[0].certificate
        data = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der) + b"-----END CERTIFICATE-----\n"
    path.write_bytes(data)
    return data


@pytest.mark.parametrize(("given", "output"), [
    ("--models", "--json"), ("--installed-itl", "--junit"), ("--installed-ctl", "--json"),
    ("--image-signer", "--plot"),
])
def test_a_report_naming_an_input_file_isone_line_cli_error(given: str, output: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _no_boot(monkeypatch)
    if output == "--plot":
        pytest.importorskip("matplotlib")
    site = tmp_path / "site.png"  # a suffix --plot can draw, so that only the clash refuses it
    data = _valid_input(given, site)
    argv = [a for a in FLEET if a not in ("--count", "1")] if given == "--models" else FLEET
    line = one_line_cli_error([*argv, given, str(site), output, str(site)], capsys)
    assert line == (f"phoneemu fleet boot: {output} {site}: is the input {given} {site}; "
                    "it would be overwritten")
    assert site.read_bytes() == data


def _savefig_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """matplotlib failing to draw, as ``.pgf`` does without a TeX system (RuntimeError: 'xelatex' not
    found)."""
    from matplotlib.figure import Figure

    def fail(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("'xelatex' not found")
    monkeypatch.setattr(Figure, "savefig", fail)


def test_a_plot_matplotlib_cannot_draw_is_refused_before_booting(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    _no_boot(monkeypatch)
    _savefig_fails(monkeypatch)
    plot = tmp_path / "storm.pgf"
    line = one_line_cli_error([*FLEET, "--plot", str(plot)], capsys)
    assert line == (f"phoneemu fleet boot: --plot {plot}: matplotlib cannot draw a .pgf file here: "
                    "RuntimeError: 'xelatex' not found"), line
    assert not plot.exists()


def test_a_plot_that_fails_after_the_storm_is_said_with_the_other_reports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plot's drawing failing after the storm (the check passed) is one of the unwritten reports'
    lines, not a traceback."""
    pytest.importorskip("matplotlib")
    from phoneemu.commands.fleet import _report
    from phoneemu.fleet.metrics import FleetMetrics
    from phoneemu.fleet.plot import plot_metrics

    _savefig_fails(monkeypatch)
    plot = tmp_path / "storm.png"
    unwritten: list[str] = []
    _report("--plot", plot, lambda: plot_metrics(FleetMetrics(), plot), unwritten)
    assert unwritten == [f"--plot {plot}: not written: matplotlib cannot draw a .png file here: "
                         "RuntimeError: 'xelatex' not found"]
    assert not plot.exists()


def test_a_plot_whose_png_is_a_folder_is_refused_before_booting(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """``--plot r`` writes ``r.png``: that file is checked writable, not ``r`` (found by review: ``r.png``
    a folder, the storm ran, then ``--plot r: not written: Is a directory``)."""
    pytest.importorskip("matplotlib")
    _no_boot(monkeypatch)
    (tmp_path / "r.png").mkdir()
    line = one_line_cli_error([*FLEET, "--plot", str(tmp_path / "r")], capsys)
    assert "--plot" in line and "r.png: is a folder" in line, line


def test_the_key_log_a_capture_names_is_in_the_clash_check(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``--capture s.pcap`` without ``--keylog`` writes its key log to ``s.keys``: ``--json s.keys`` would
    replace it (found by review: the key log emptied, then the JSON written over it)."""
    _no_boot(monkeypatch)
    keys = tmp_path / "s.keys"
    line = one_line_cli_error([*FLEET, "--capture", str(tmp_path / "s.pcap"), "--json", str(keys)], capsys)
    assert "--keylog" in line and "the same file as --json" in line and "s.keys" in line, line
    assert not keys.exists() and list(tmp_path.iterdir()) == []
