"""``phoneemu tvs --flash DIR`` on a flash holding no ITL: the phone talks to no TVS (spec §E.1, §E.7.5),
said with what it does instead (§G.2), exit 1 — not the TVS's answer alone, as if it would ask it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import boot_into_flash, copy_cluster, lab_template, serve_in_thread

MAC = "0A00000000F2"
template = lab_template("tvsnoitl", seed=43, phones={MAC: {}})


@pytest.fixture
def booted(template: Path, tmp_path: Path) -> Iterator[tuple[LabCluster, str, Path, Path]]:
    """The lab served; its TVS address; the flash of a phone booted on it; the lab's ITL as a file."""
    c = copy_cluster(template, tmp_path)
    ports, stop = serve_in_thread(c)  # first: the configs name the TVS port it records
    try:
        flash = tmp_path / "ph"
        assert boot_into_flash(c, flash, MAC).ok
        itl = tmp_path / "new-ITLFile.tlv"
        itl.write_bytes(c.files()["ITLFile.tlv"])
        yield c, f"127.0.0.1:{ports['tvs']}", flash, itl
    finally:
        stop()


def test_a_flash_holding_no_itl_talks_to_no_tvs(booted: tuple[LabCluster, str, Path, Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    _, tvs, flash, itl = booted
    assert main(["tvs", "--flash", str(flash), str(itl), "--json"]) == 0  # its ITL held: vouched
    capsys.readouterr()
    (flash / "ITLFile.tlv").unlink()
    assert main(["tvs", "--flash", str(flash), str(itl)]) == 1
    out = capsys.readouterr().out
    assert f"a phone holding no ITL (--flash {flash} holds none) does NOT talk to it" in out
    assert f"0 of 1 TVS servers vouch: {tvs} not talked to (a phone holding no ITL talks to no TVS)" in out
    assert "talks to none of them (spec §E.1)" in out
    assert f"--flash {flash} holds no ITL: the phone talks to no TVS" in out
    assert "with no CTL either, it takes the first ITL it downloads unchecked: G.2-first-itl-tofu" in out
    assert main(["tvs", "--flash", str(flash), str(itl), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert (doc["vouching"], doc["decides_now"]) == (0, None)
    assert doc["servers"][0]["phone_would_talk"] is False
    assert doc["servers"][0]["answer"]["valid"]  # the TVS vouches: the phone would not ask it
    assert "G.2-first-itl-tofu" in doc["note"]


def test_servers_none_of_which_the_itl_names_are_no_unreachable_tvs(
        booted: tuple[LabCluster, str, Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A flash holding another cluster's ITL: the server answered, the phone refuses it — not "no answer:
    unreachable" but the rule the phone reaches, G.3.4-tvs-server-untrusted (spec §E.1)."""
    _, tvs, flash, itl = booted
    other = LabCluster.init(tmp_path / "other", seed=44, key_spec="rsa1024", name="other")
    (flash / "ITLFile.tlv").write_bytes(other.files()["ITLFile.tlv"])
    assert main(["tvs", "--flash", str(flash), str(itl)]) == 1
    out = capsys.readouterr().out
    assert f"{tvs} not talked to (not a TVS record of the ITL of --flash {flash})" in out
    assert "talks to none of them (spec §E.1): a signer only TVS could vouch for is not vouched for " \
        "(G.3.4-tvs-server-untrusted)" in out
    assert "gets no answer" not in out and "holds no ITL" not in out
