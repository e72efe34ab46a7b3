"""``fleet boot --lab DIR``: the phones' clock is the lab's (:mod:`phoneemu.commands._lab_clock`), read once
for every shard; and ``--auth-string`` wins over the strings the lab set, as ``boot --lab``'s does.

Over loopback against a seeded lab whose phones have a pending CAPF install."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import serve_in_thread

MAC = "0A0000000001"
EPOCH = 1767225600  # a seeded lab's epoch, 2026-01-01
ADVANCE = 34560000  # 400 days: the lab's LSCs are then valid from 2027-02-04


def _fleet(c: LabCluster, ports: dict[str, int], tmp: Path, *extra: str) -> list[str]:
    return ["fleet", "boot", "--tftp", f"127.0.0.1:{ports['tftp']}", "--http-port", str(ports["http"]),
            "--mac-start", MAC, "--count", "2", "--lab", str(c.root), "-q", "--json", str(tmp / "f.json"),
            *extra]


def _capf_rules(tmp: Path) -> list[str]:
    return [p.get("capf") for p in json.loads((tmp / "f.json").read_text())["phones"]]


def test_a_fleet_runs_on_the_labs_advanced_clock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """After ``lab clock --advance`` (400 days) the lab issues LSCs from 2027-02-04: the phones, in a shard
    process and in this one, take them on the lab's clock, said once on stderr and in the JSON (was: every
    install ``F.6-capf-rejected``, not valid before 2027-02-04 by the real time)."""
    c = LabCluster.init(tmp_path / "lab", seed=3, key_spec="rsa1024")
    c.add_phones([MAC, "0A0000000002"], capf_operation="install", capf_auth_mode="null-string",
                 lsc_key="ec-p256")
    assert main(["lab", "clock", str(c.root), "--advance", str(ADVANCE)]) == 0
    capsys.readouterr()
    ports, stop = serve_in_thread(c, watch=0.05)
    try:
        assert main(_fleet(c, ports, tmp_path, "--shards", "1")) == 0
        err = capsys.readouterr().err
        assert _capf_rules(tmp_path) == ["F.6-lsc-installed"] * 2, err
        assert err.count("phone clock: the lab's, 2027-02-0") == 1, err
        doc = json.loads((tmp_path / "f.json").read_text())
        assert doc["clock"]["source"] == "lab" and doc["clock"]["start"] >= EPOCH + ADVANCE
    finally:
        stop()


def test_fleet_auth_string_wins_over_the_labs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``fleet boot --lab DIR --auth-string 9999`` types 9999, not the lab's 4242 (was: the lab's, silently),
    and says so; without it, the lab's is typed."""
    c = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=EPOCH)
    c.add_phones([MAC, "0A0000000002"], now=EPOCH)
    c.set_capf([MAC, "0A0000000002"], "install", auth_string="4242", key="ec-p256", now=EPOCH)
    ports, stop = serve_in_thread(c, watch=0.05)
    try:
        main(_fleet(c, ports, tmp_path, "--shards", "0", "--auth-string", "9999"))
        err = capsys.readouterr().err
        assert _capf_rules(tmp_path) == ["F.6-capf-rejected"] * 2, err
        assert "--auth-string 9999 typed in on every phone, not the CAPF authentication string the lab set " \
            "for 2 of them" in err, err
        assert main(_fleet(c, ports, tmp_path, "--shards", "0")) == 0
        err = capsys.readouterr().err
        assert _capf_rules(tmp_path) == ["F.6-lsc-installed"] * 2, err
        assert "and the CAPF authentication string of 2 of them typed in" in err, err
    finally:
        stop()
