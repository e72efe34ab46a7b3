"""``predict`` and ``replay`` given odd inputs (red team; files and a synthetic capture, no socket):

* a capture that opens with a phone's retries of ``CTLSEP<MAC>.tlv`` (a secure-mode phone without a CTL
  tries four times, spec §G.9) is one boot: the run's earlier fetches were a phantom boot of their own,
  failed ``G.10-no-config`` (exit status 1 for a capture whose only boot accepted its config);
* a trust list given where a config is expected (``--installed-config ITLFile.tlv``) is said as such
  (was "not well-formed XML at line 1 column 0").
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from phoneemu.net.capture import PcapWriter
from tests.replay_helpers import captured_tftp_read

NOW = 1_780_000_000
MAC = "0A0000000E11"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> LabCluster:
    root = tmp_path_factory.mktemp("odd") / "lab"
    c = LabCluster.init(root, seed=41, key_spec="rsa1024", now=NOW, name="c")
    c.add_phone(MAC, now=NOW)
    return c


def test_a_capture_opening_with_ctl_retries_is_one_boot(lab: LabCluster, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    reads = [(f"CTLSEP{MAC}.tlv", None)] * 4 + [(n, lab.get(n)) for n in (f"ITLSEP{MAC}.tlv",
                                                                          f"SEP{MAC}.cnf.xml.sgn")]
    clock = iter(range(NOW, NOW + 10_000))
    pcap = tmp_path / "retries.pcap"
    with PcapWriter(pcap, clock=lambda: float(next(clock))) as w:
        for i, (name, data) in enumerate(reads):
            captured_tftp_read(w, name, data, 40000 + i)
    assert main(["replay", str(pcap), "--list"]) == 0
    assert f"phone {MAC}: 1 boot" in capsys.readouterr().out  # was 2
    assert main(["replay", str(pcap), "--all"]) == 0  # was 1: boot 1 of 2 no-config, G.10-no-config
    out = capsys.readouterr().out
    assert f"{MAC}  1 boot  ok (G.4-signed-by-itl-tftp)" in out, out
    assert main(["replay", str(pcap), "--mac", MAC]) == 0
    out = capsys.readouterr().out
    assert "== boot 2" not in out and "locked out: no" in out, out


def test_a_trust_list_given_as_the_installed_config_is_named(lab: LabCluster, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    itl = tmp_path / "ITLFile.tlv"
    itl.write_bytes(lab.get("ITLFile.tlv") or b"")
    assert main(["predict", "--installed-config", str(itl), "--now", str(NOW), str(itl)]) == 2
    err = capsys.readouterr().err
    assert f"{itl}: installed config: is a trust list (ITL), not a config (give it as --installed-itl)" in err


def test_a_trust_list_given_to_tvs_as_its_config_names_tvs_option(
        lab: LabCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``tvs --config ITLFile.tlv`` names tvs's own option, ``--itl`` (was "give it as --installed-itl",
    predict's, which tvs refuses as unrecognised); nothing is asked of any server."""
    itl = tmp_path / "ITLFile.tlv"
    itl.write_bytes(lab.get("ITLFile.tlv") or b"")
    assert main(["tvs", str(lab.root / "certs" / "tvs.pem"), "--config", str(itl)]) == 2
    err = capsys.readouterr().err
    said = f"{itl}: installed config: is a trust list (ITL), not a config (give it as --itl)\n"
    assert err.endswith(said), err
