"""``fleet boot --tftp NAME`` says the name, as ``boot`` does (loopback only).

The name is looked up once before any phone boots (``_cluster_address.check_resolves``) and the phones
ask its address (``FleetSpec.address``, as DHCP option 150 gives real phones an address), but each
phone's report and ``last-boot.json`` and the engine's give-up line name the ``--tftp`` given: they
named the address the command never said.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import count_lookups, serve_in_thread

NOW = 1_780_000_000
FLEET = ["0A0000001A10", "0A0000001A11", "0A0000001A12"]
NAME = "localhost"
ADDRESS = "127.0.0.1"


def _name_is_loopback() -> None:
    """Skip where ``NAME`` does not resolve to ``ADDRESS`` first (what check_resolves hands the phones)."""
    if socket.getaddrinfo(NAME, 69, type=socket.SOCK_DGRAM)[0][4][0] != ADDRESS:
        pytest.skip(f"{NAME} does not resolve to {ADDRESS} first here")


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every ``socket.getaddrinfo`` of ``NAME`` in this process (tests.helpers.count_lookups)."""
    return count_lookups(monkeypatch, NAME)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[dict[str, int]]:
    """A lab of ``FLEET`` served on ``ADDRESS`` in a thread: its ports."""
    _name_is_loopback()
    lab = LabCluster.init(tmp_path / "lab", seed=27, key_spec="rsa1024", now=NOW, host=ADDRESS)
    lab.add_phones(FLEET, now=NOW)
    ports, stop = serve_in_thread(lab)
    try:
        yield ports
    finally:
        stop()


@pytest.mark.parametrize("extra", [[], ["--blksize", "1024"]], ids=["phone-fetchers", "blksize-fetchers"])
def test_fleet_boot_flash_last_boot_names_the_tftp_name(
        served: dict[str, int], lookups: list[Any], tmp_path: Path, extra: list[str],
        capsys: pytest.CaptureFixture[str]) -> None:
    """Each phone's ``last-boot.json`` and ``--json`` report name ``localhost``, not 127.0.0.1; the phones
    still ask the address (one lookup in all: check_resolves's), with the phone's fetchers or the fleet's
    ``--blksize`` ones."""
    flash = tmp_path / "flash"
    n = len(FLEET)
    assert main(["fleet", "boot", "--mac", FLEET[0], "--count", str(n), "--shards", "0", "--event-loop",
                 "asyncio", "--tftp", f"{NAME}:{served['tftp']}", "--http-port", str(served["http"]),
                 "--timeout", "2", "--flash", str(flash), "--json", str(tmp_path / "run.json"), "-q",
                 *extra]) == 0
    out = capsys.readouterr().out
    assert f"{n} phones: {n} booted, 0 failed" in out, out
    assert len(lookups) == 1, lookups  # the phones ask the address, as before
    said = f"{NAME} (tftp {served['tftp']})"
    targets = {mac: json.loads((flash / mac / "last-boot.json").read_text())["target"] for mac in FLEET}
    assert targets == dict.fromkeys(FLEET, said), targets  # was: 127.0.0.1 (tftp PORT)
    assert json.loads((tmp_path / "run.json").read_text())["target"].startswith(f"{NAME} (tftp ")


def test_fleet_boot_gives_up_naming_the_tftp_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing answers at ``localhost:PORT`` (a silent UDP socket on 127.0.0.1): the give-up line and the
    summary name ``localhost:PORT``, the address the command was given (was: 127.0.0.1:PORT)."""
    _name_is_loopback()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind((ADDRESS, 0))
        port = silent.getsockname()[1]
        rc = main(["fleet", "boot", "--count", "40", "--tftp", f"{NAME}:{port}", "--no-http", "--timeout",
                   "0.02", "--retries", "0", "--shards", "0", "--event-loop", "asyncio", "--concurrency", "8",
                   "-q"])
    out, err = capsys.readouterr()
    assert rc == 1, out + err
    said = f"the first 32 phones got no answer to any request from {NAME}:{port} (every one timed out"
    assert f"giving up: {said}" in out + err, out + err
    assert f"{ADDRESS}:{port}" not in out + err, out + err
