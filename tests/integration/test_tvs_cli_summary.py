"""``phoneemu tvs HOST FILE``, one server named, prints the summary ``tvs --flash`` prints (how many vouch,
which one a phone asking them decides with): was none, the answer alone. Its ``--json`` stays the answer
alone, as it always was. Over loopback (spec §E)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import boot_into_flash, copy_cluster, lab_template, serve_in_thread

MAC = "0A00000000F7"
template = lab_template("tvssummary", seed=43, phones={MAC: {}})


@pytest.fixture
def served(template: Path, tmp_path: Path) -> Iterator[tuple[LabCluster, str, Path]]:
    """The lab served; its TVS address; its ITL as a phone holds it."""
    c = copy_cluster(template, tmp_path)
    ports, stop = serve_in_thread(c)
    itl = tmp_path / "held-ITLFile.tlv"
    itl.write_bytes(c.files()["ITLFile.tlv"])
    try:
        yield c, f"127.0.0.1:{ports['tvs']}", itl
    finally:
        stop()


def _summary(out: str) -> list[str]:
    """The lines after the last server's answer (the blank line under it)."""
    return out.rstrip("\n").split("\n\n")[-1].splitlines()


def test_one_server_named_gets_the_summary_a_flash_gets(served: tuple[LabCluster, str, Path], tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    c, tvs, itl = served
    flash = tmp_path / "ph"
    assert boot_into_flash(c, flash, MAC).ok
    assert main(["tvs", "--flash", str(flash), str(itl)]) == 0
    from_flash = capsys.readouterr().out
    assert main(["tvs", tvs, str(itl), "--itl", str(itl)]) == 0
    named = capsys.readouterr().out
    expected = [f"1 of 1 TVS servers vouch: {tvs} vouches",
                f"a phone asking them in this order: {tvs} decides now (vouches)"]
    assert _summary(from_flash) == expected, from_flash
    assert _summary(named) == expected, named
    assert named.startswith(f"QUERY {tvs} about the signer of {itl.name} (itl):"), named
    assert main(["tvs", tvs, str(itl), "--json"]) == 0  # one server's JSON: its answer, as it was
    doc = json.loads(capsys.readouterr().out)
    assert doc["server"] == tvs and "decides_now" not in doc, doc


def test_one_server_not_answering_says_so_in_the_summary(tmp_path: Path, template: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    c = copy_cluster(template, tmp_path)
    itl = tmp_path / "ITLFile.tlv"
    itl.write_bytes(c.files()["ITLFile.tlv"])
    with socket.socket() as s:  # a loopback TCP port nothing listens on (bound, then released)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["tvs", f"127.0.0.1:{port}", str(itl), "--timeout", "1"]) == 1
    out = capsys.readouterr().out
    assert _summary(out) == [
        f"0 of 1 TVS servers vouch: 127.0.0.1:{port} no answer (unreachable)",
        "a phone asking them in this order gets no answer: unreachable (spec §G.3.4)"], out
