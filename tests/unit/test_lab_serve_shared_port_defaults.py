"""``lab serve`` given a TCP port that another service has by default names that one as a default
(:func:`phoneemu.commands.lab_serve._refuse_shared_tcp_ports`): was "--tvs-port and --sip-port are both
2445" for ``--sip-port 2445`` alone, naming a --tvs-port nobody gave."""

from __future__ import annotations

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster

NOW = 1_780_000_000
OWN_PORT = ": each TCP service listens on a port of its own (0 = any free port)\n"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> LabCluster:
    return LabCluster.init(tmp_path_factory.mktemp("ports") / "lab", seed=14, key_spec="rsa1024", now=NOW,
                           host="127.0.0.1")


@pytest.mark.parametrize(("options", "said"), [
    (["--sip-port", "2445"], "--sip-port 2445 is the TVS port (--tvs-port's default; --tvs-port N moves it)"),
    (["--http-port", "3804"], "--http-port 3804 is the CAPF port (--capf-port's default; --capf-port N moves "
                              "it)"),
    (["--tvs-port", "6970"], "--tvs-port 6970 is the HTTP port (--http-port's default; --http-port N moves "
                             "it)"),
    (["--tvs-port", "2445", "--sip-port", "2445"], "--tvs-port and --sip-port are both 2445"),
])
def test_a_default_is_named_as_a_default(lab: LabCluster, options: list[str], said: str,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    before = (lab.root / "cluster.json").read_bytes()
    assert main(["lab", "serve", str(lab.root), "--tftp-port", "0", *options]) == 2
    err = capsys.readouterr().err
    assert err == f"phoneemu lab serve: {said}{OWN_PORT}", err
    assert (lab.root / "cluster.json").read_bytes() == before


def test_python_m_lab_serve_names_a_default_alike(lab: LabCluster,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m phoneemu.commands.lab_serve`` builds the same options (its own parser)."""
    from phoneemu.commands.lab_serve import main as serve_main

    assert serve_main(["--dir", str(lab.root), "--tftp-port", "0", "--sips-port", "3804"]) == 2
    err = capsys.readouterr().err
    assert err == ("phoneemu lab serve: --sips-port 3804 is the CAPF port (--capf-port's default; "
                   f"--capf-port N moves it){OWN_PORT}"), err


def test_a_namespace_without_the_given_ports_names_each_as_given() -> None:
    """Options not parsed by lab serve's parser (a caller's own namespace): each port is taken as given."""
    import argparse

    from phoneemu.commands.lab_serve import _refuse_shared_tcp_ports
    from phoneemu.errors import PhoneEmuError

    args = argparse.Namespace(http_port=6970, tvs_port=2445, capf_port=2445, sip_port=None, sips_port=None)
    with pytest.raises(PhoneEmuError, match=r"^--tvs-port and --capf-port are both 2445: "):
        _refuse_shared_tcp_ports(args)
