"""``boot``/``fleet boot --tftp NAME:PORT --lab DIR``: the lab's HTTP port is taken when NAME is the address
its lab serve recorded, compared as addresses (``_cluster_address._same_host``), with the name looked up
once per command (``check_resolves`` reuses the lookup). Was: the text of the host compared, so
``--tftp localhost:PORT`` against a lab recorded at 127.0.0.1 or ::1 asked HTTP 6970 first."""

from __future__ import annotations

import argparse
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.commands._cluster_address import check_resolves, cluster_address, lab_recorded_elsewhere
from phoneemu.errors import PhoneEmuError
from phoneemu.lab.cluster import LabCluster
from tests.helpers import serve_in_thread

NOW = 1_780_000_000
MAC = "0A0000000D01"
NAME = "cluster.lab.test"  # answered by the fake resolver below only


def _args(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**{"tftp": None, "http_port": None, "lab": None, **kw})


def _lab(tmp_path: Path, host: str) -> LabCluster:
    """A lab whose lab serve recorded TFTP 16969 and HTTP 16970 at ``host``."""
    lab = LabCluster.init(tmp_path / "lab", seed=3, key_spec="rsa1024", now=NOW, host=host)
    lab.set_ports(tftp=16969, http=16970, now=NOW)
    return lab


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> tuple[list[str], list[str]]:
    """``NAME`` resolves to the addresses put in the first list (resolver's order); each lookup of it is
    appended to the second."""
    answer: list[str] = []
    asked: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kw: Any) -> Any:
        if host != NAME:
            return real(host, port, *args, **kw)
        asked.append(host)
        if not answer:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_DGRAM, 17, "", (a, port))
                for a in answer]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answer, asked


@pytest.mark.parametrize("recorded", ["127.0.0.1", "::1"])
def test_a_name_of_the_labs_address_takes_its_http_port(tmp_path: Path, recorded: str,
                                                        resolver: tuple[list[str], list[str]]) -> None:
    answer, asked = resolver
    answer += ["::1", "127.0.0.1"]
    lab = _lab(tmp_path, recorded)
    where = cluster_address(_args(tftp=f"{NAME}:16969", lab=lab.root))
    assert (where.host, where.tftp_port, where.http_port) == (NAME, 16969, 16970)  # was 6970
    assert where.addresses[0] == recorded  # the lab's address first: where its lab serve listened
    assert check_resolves(where, http=False) == recorded  # --no-http: was the resolver's first, ::1
    assert len(asked) == 1  # one lookup for the command: check_resolves took cluster_address's
    assert lab_recorded_elsewhere(lab.root, NAME, 16969, addresses=where.addresses) is None


def test_a_name_of_other_addresses_keeps_6970_and_is_said_elsewhere(
        tmp_path: Path, resolver: tuple[list[str], list[str]]) -> None:
    answer, _asked = resolver
    answer.append("127.0.0.9")
    lab = _lab(tmp_path, "127.0.0.1")
    where = cluster_address(_args(tftp=f"{NAME}:16969", lab=lab.root))
    assert where.http_port == 6970
    assert lab_recorded_elsewhere(lab.root, NAME, 16969, addresses=where.addresses) == (
        "127.0.0.1:16969 (HTTP 16970)")


def test_no_lookup_where_none_is_needed(tmp_path: Path, resolver: tuple[list[str], list[str]]) -> None:
    """Another TFTP port, an explicit --http-port, or no lab: nothing to compare, no lookup here (the one
    lookup is check_resolves')."""
    answer, asked = resolver
    answer.append("127.0.0.1")
    lab = _lab(tmp_path, "127.0.0.1")
    assert cluster_address(_args(tftp=f"{NAME}:6969", lab=lab.root)).http_port == 6970
    assert cluster_address(_args(tftp=f"{NAME}:16969", lab=lab.root, http_port=80)).http_port == 80
    assert cluster_address(_args(tftp=f"{NAME}:16969")).http_port == 6970
    assert asked == []
    assert check_resolves(cluster_address(_args(tftp=f"{NAME}:6969")), http=False) == "127.0.0.1"
    assert len(asked) == 1


def test_addresses_compare_as_addresses_and_names_without_case(tmp_path: Path) -> None:
    lab = _lab(tmp_path, "::1")
    assert cluster_address(_args(tftp="[0:0::0001]:16969", lab=lab.root)).http_port == 16970
    assert lab_recorded_elsewhere(lab.root, "0:0::0001", 16969) is None
    named = LabCluster.init(tmp_path / "named", seed=3, key_spec="rsa1024", now=NOW, host="pub.lab.test")
    named.set_ports(tftp=16969, http=16970, now=NOW)
    assert cluster_address(_args(tftp="PUB.lab.test.:16969", lab=named.root)).http_port == 16970


def test_a_name_that_does_not_resolve_is_said_as_check_resolves_says_it(
        tmp_path: Path, resolver: tuple[list[str], list[str]]) -> None:
    lab = _lab(tmp_path, "127.0.0.1")
    with pytest.raises(PhoneEmuError, match=rf"^--tftp {NAME}: the name does not resolve"):
        cluster_address(_args(tftp=f"{NAME}:16969", lab=lab.root))


def _boot_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str], answer: list[str],
                  *extra: str) -> tuple[int, str, dict[str, int]]:
    """lab serve on 127.0.0.1 (it records its ports), then ``boot --tftp NAME:PORT --lab DIR`` with NAME
    resolving to ::1 then 127.0.0.1: (exit status, stdout, the ports served)."""
    answer += ["::1", "127.0.0.1"]
    lab = LabCluster.init(tmp_path / "lab", seed=3, key_spec="rsa1024", now=NOW, host="127.0.0.1")
    lab.add_phone(MAC, now=NOW)
    ports, stop = serve_in_thread(lab, tftp_port=0, http_port=0, tvs_port=0, capf_port=0)
    try:
        rc = main(["boot", "--tftp", f"{NAME}:{ports['tftp']}", "--lab", str(lab.root), "--mac", MAC,
                   "--timeout", "2", *extra])
    finally:
        stop()
    return rc, capsys.readouterr().out, ports


def test_boot_tftp_localhost_asks_the_labs_http_port(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      resolver: tuple[list[str], list[str]]) -> None:
    """End to end: every file over HTTP at the lab's HTTP port (was: HTTP 6970, refused, then each file
    over TFTP)."""
    answer, asked = resolver
    rc, out, ports = _boot_by_name(tmp_path, capsys, answer, "--json")
    doc = json.loads(out)
    assert rc == 0, doc["report"]
    http = doc["transports"]["http"]
    assert http["address"].endswith(f":{ports['http']}"), http
    assert http["requests"] > 0 and http["answered"] == http["requests"], http
    assert doc["transports"]["tftp"]["requests"] == 0, doc["transports"]
    assert len(asked) == 1


def test_boot_tftp_name_of_the_labs_address_is_not_said_to_be_elsewhere(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], resolver: tuple[list[str], list[str]]) -> None:
    """The summary's note that ``--tftp`` is not where the lab's lab serve last listened compares the
    name's addresses too (was: the text, so ``--tftp NAME:PORT`` of the very lab serve got the note)."""
    answer, asked = resolver
    rc, out, _ports = _boot_by_name(tmp_path, capsys, answer)
    assert rc == 0, out
    assert "files:" in out and "is not where lab serve" not in out, out
    assert len(asked) == 1
