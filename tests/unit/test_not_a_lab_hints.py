"""When nothing answers: ``fleet boot`` says why once, as ``boot`` does, and the host reads as an address.

* ``fleet boot`` whose every phone got no answer said only "giving up: ..." (after 32 phones of a shard;
  fewer phones: nothing at all); now the hint of ``boot`` (``commands.boot.nothing_answered_hint``:
  CUCM's terms without ``--lab``, the lab's ``lab serve`` command with it), on stderr, once;
* an IPv6 host was written bare before its ports (``nothing answered at ::1 (TFTP port 6969 ...``): now
  ``[::1]``, by ``phoneemu.values.host_port``'s rule.

Loopback only: a UDP port nobody listens on is refused at once ("port unreachable").
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import serve_in_thread

NOW = 1_780_000_000
MAC = "0A0000000E21"
FLEET = ["0A0000000E22", "0A0000000E23"]
QUICK = ["--no-http", "--timeout", "0.2"]  # a refused port ends each request at once; a lost one in 0.2 s


def _closed_udp_port(host: str) -> int:
    """A UDP port on ``host`` nothing listens on (bound, then released)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return socket.has_ipv6


def _fleet(*extra: str) -> list[str]:
    return ["fleet", "boot", "--count", "2", "--mac-start", FLEET[0], "--retries", "0", "--shards", "0", "-q",
            *QUICK, *extra]


@pytest.mark.parametrize("shards", ["0", "2"])  # 2: each shard's count sent to the parent and merged
def test_fleet_boot_that_nothing_answered_says_why_once_in_cucm_terms(
        shards: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Two phones, no ``--lab`` (a real cluster, most likely): the hint ``boot`` gives, once (was: none —
    the summary's "TFTP timeout"s, and "giving up" only from the 32nd phone on)."""
    port = _closed_udp_port("127.0.0.1")
    assert main(_fleet("--tftp", f"127.0.0.1:{port}", "--shards", shards)) == 1
    out, err = capsys.readouterr()
    assert "2 phones: 0 booted, 2 failed" in out, out
    said = [line for line in err.splitlines() if "nothing answered" in line]
    assert said == [
        f"phoneemu fleet boot: nothing answered at 127.0.0.1 (TFTP port {port}): is the cluster's TFTP "
        "server running there? On CUCM: is its TFTP service activated and started on that node (Cisco "
        "Unified Serviceability), UDP 69 and TCP 6970 open from here? CUCM serves the files on those ports "
        f"(spec §H.1); this boot asked TFTP port {port}. For a lab: phoneemu lab serve DIR --tftp-port "
        f"{port} (it prints the ports it listens on)"], err
    assert "giving up" not in err  # fewer phones than a shard gives up after


def test_fleet_boot_of_a_lab_that_nothing_answered_names_its_lab_serve(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--lab DIR`` at a port its lab serve does not listen on: the lab's command, its folder filled in,
    no CUCM terms — as ``boot --lab`` says it."""
    lab = LabCluster.init(tmp_path / "lab", seed=5, key_spec="rsa1024", now=NOW, host="127.0.0.1")
    lab.add_phones(FLEET, now=NOW)
    port = _closed_udp_port("127.0.0.1")
    assert main(_fleet("--tftp", f"127.0.0.1:{port}", "--lab", str(lab.root))) == 1
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if "nothing answered" in line]
    assert len(said) == 1, err
    assert said[0].startswith(f"phoneemu fleet boot: nothing answered at 127.0.0.1 (TFTP port {port}): is "
                              "the cluster's TFTP server running there? For a lab: phoneemu lab serve "
                              f"{lab.root} --tftp-port {port} (it prints"), err


def test_fleet_boot_answered_says_no_such_hint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A cluster that answers (a lab served, given as ``--tftp`` alone): no hint."""
    lab = LabCluster.init(tmp_path / "lab", seed=6, key_spec="rsa1024", now=NOW, host="127.0.0.1")
    ports, stop = serve_in_thread(lab)
    try:
        assert main(_fleet("--tftp", f"127.0.0.1:{ports['tftp']}")) == 0
    finally:
        stop()
    out, err = capsys.readouterr()
    assert "2 phones: 2 booted, 0 failed" in out, out
    assert "nothing answered" not in err, err


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback (::1) here")
@pytest.mark.parametrize("command", [["boot", "--mac", MAC], _fleet()])
def test_an_ipv6_host_that_nothing_answered_is_written_in_brackets(
        command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """``[::1]`` before its ports, as every address with a port is written (was ``at ::1 (TFTP port``)."""
    port = _closed_udp_port("::1")
    assert main([*command, *QUICK, "--tftp", f"[::1]:{port}"]) == 1
    err = capsys.readouterr().err
    assert f"nothing answered at [::1] (TFTP port {port}): is the cluster's TFTP server" in err, err
    assert "at ::1 " not in err, err
