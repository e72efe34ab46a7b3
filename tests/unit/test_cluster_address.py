"""``boot`` / ``fleet boot`` without --tftp: the address and ports the --lab DIR's lab serve listens on."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.commands._cluster_address import ClusterAddress, cluster_address
from phoneemu.errors import PhoneEmuError
from phoneemu.lab.cluster import LabCluster

NOW = 1_780_000_000


def _args(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**{"tftp": None, "http_port": None, "lab": None, **kw})


def test_given_tftp_wins_and_http_defaults_to_6970(tmp_path: Path) -> None:
    assert cluster_address(_args(tftp="[::1]:6969")) == ClusterAddress("::1", 6969, 6970, from_lab=False)
    got = cluster_address(_args(tftp="10.0.0.5", http_port=8080, lab=tmp_path / "not-read"))
    assert got == ClusterAddress("10.0.0.5", 69, 8080, from_lab=False)
    with pytest.raises(PhoneEmuError, match=r"--tftp HOST\[:PORT\] is required \(or --lab DIR"):
        cluster_address(_args())


def test_without_tftp_the_labs_recorded_address_and_ports(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    lab = LabCluster.init(tmp_path / "lab", seed=3, key_spec="rsa1024", now=NOW, host="127.0.0.7")
    never = cluster_address(_args(lab=lab.root))
    assert never == ClusterAddress("127.0.0.7", 69, 6970, from_lab=True, served=False)
    assert never.lab_line("boot", lab.root) == (
        f"boot: cluster at 127.0.0.7:69 (HTTP 6970), the real CUCM ports: no lab serve of {lab.root} has "
        "recorded its own (it does when it starts; started just now? give it a second)")
    lab.set_ports(tftp=16969, http=16970, now=NOW)  # as lab serve records them when it starts
    got = cluster_address(_args(lab=lab.root))
    assert got == ClusterAddress("127.0.0.7", 16969, 16970, from_lab=True, served=True)
    assert str(got) == "127.0.0.7:16969 (HTTP 16970)"
    assert cluster_address(_args(lab=lab.root, http_port=1)).http_port == 1  # an explicit port wins
    # the CLI says where it went (stderr: --json output stays one document); nothing listens there
    lab.add_phone("0A0000000001", now=NOW)
    main(["boot", "--lab", str(lab.root), "--mac", "0A0000000001", "--timeout", "0.05", "--no-http",
          "--json"])
    err = capsys.readouterr().err
    assert err.startswith(f"phoneemu boot: cluster at 127.0.0.7:16969 (HTTP 16970), where lab serve of "
                          f"{lab.root} last listened (the ports it recorded)\n")
    assert main(["boot", "--lab", str(tmp_path / "nolab"), "--mac", "0A0000000001"]) == 2
    assert "not a lab cluster" in capsys.readouterr().err


def test_tftp_where_the_labs_serve_listens_takes_its_http_port(tmp_path: Path) -> None:
    """``--tftp`` naming the lab serve's own TFTP address: its HTTP port too (was 6970: every file of
    every phone tried HTTP on a port nobody listened on, then TFTP); any other --tftp keeps 6970."""
    lab = LabCluster.init(tmp_path / "lab", seed=3, key_spec="rsa1024", now=NOW, host="127.0.0.7")
    assert cluster_address(_args(tftp="127.0.0.7:16969", lab=lab.root)).http_port == 6970  # never served
    lab.set_ports(tftp=16969, http=16970, now=NOW)
    got = cluster_address(_args(tftp="127.0.0.7:16969", lab=lab.root))
    assert got == ClusterAddress("127.0.0.7", 16969, 16970, from_lab=False)
    assert cluster_address(_args(tftp="127.0.0.7:16969", lab=lab.root, http_port=8080)).http_port == 8080
    assert cluster_address(_args(tftp="127.0.0.7:6969", lab=lab.root)).http_port == 6970
    assert cluster_address(_args(tftp="127.0.0.8:16969", lab=lab.root)).http_port == 6970
    assert cluster_address(_args(tftp="127.0.0.7:16969", lab=tmp_path / "no-lab")).http_port == 6970


def _free_port(kind: int) -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_lab_whose_serve_stopped_is_not_said_to_listen(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """``boot --lab DIR`` after its lab serve stopped: the recorded ports are where lab serve last
    listened (was "where lab serve of DIR listens", although nothing did), and the hint names the lab
    folder and the ports this boot asked (was ``phoneemu lab serve DIR --tftp-port N``, the folder the
    user had given left a placeholder)."""
    import socket

    lab = LabCluster.init(tmp_path / "new lab", seed=3, key_spec="rsa1024", now=NOW, host="127.0.0.1")
    lab.add_phone("0A0000000001", now=NOW)
    tftp, http = _free_port(socket.SOCK_DGRAM), _free_port(socket.SOCK_STREAM)
    lab.set_ports(tftp=tftp, http=http, now=NOW)  # recorded by a lab serve that has stopped since
    assert main(["boot", "--lab", str(lab.root), "--mac", "0A0000000001", "--timeout", "0.2",
                 "--now", str(NOW)]) == 1  # (the lab's clock, not said)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"phoneemu boot: cluster at 127.0.0.1:{tftp} (HTTP {http}), where lab serve of "
                      f"{lab.root} last listened (the ports it recorded)"), err
    assert "listens" not in err[0]
    assert err[1].startswith(f"phoneemu boot: nothing answered at 127.0.0.1 (TFTP port {tftp}, HTTP port "
                             f"{http}): "), err
    serve = f"phoneemu lab serve '{lab.root}' --tftp-port {tftp} --http-port {http} ("
    assert f"For a lab: {serve}" in err[1], err
    assert " DIR " not in err[1]


def test_the_hint_without_a_lab_keeps_the_placeholder(capsys: pytest.CaptureFixture[str]) -> None:
    """``--tftp`` alone: no lab folder known, so ``DIR``; HTTP's port only when it is not lab serve's
    default (6970)."""
    import socket

    tftp, http = _free_port(socket.SOCK_DGRAM), _free_port(socket.SOCK_STREAM)
    assert main(["boot", "--tftp", f"127.0.0.1:{tftp}", "--http-port", str(http), "--mac", "0A0000000001",
                 "--timeout", "0.2"]) == 1
    err = capsys.readouterr().err
    assert f"For a lab: phoneemu lab serve DIR --tftp-port {tftp} --http-port {http} (" in err, err
    assert main(["boot", "--tftp", f"127.0.0.1:{tftp}", "--no-http", "--mac", "0A0000000001",
                 "--timeout", "0.05"]) == 1
    err = capsys.readouterr().err
    assert f"For a lab: phoneemu lab serve DIR --tftp-port {tftp} (it prints" in err, err
