"""``boot --lab DIR`` without ``--now``: the phone's clock is the lab's (:mod:`phoneemu.commands._lab_clock`).

A seeded lab's clock stays at its epoch (2026-01-01) and issues its LSCs from it for 365 days; a phone on
the real time refused them once the real time passed 2027-01-01, and at once after a ``lab clock
--advance`` (``not valid before``). Over loopback, the real time patched in the boot module's view."""

from __future__ import annotations

import json
import time
import types
from pathlib import Path
from typing import Any

import pytest

import phoneemu.commands.boot as boot_module
from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import serve_in_thread

MAC = "0A0000000001"
#: the seeded lab's epoch (lab init --seed) and a real time past its first LSCs' end (2027-01-01)
EPOCH = 1767225600
FEB_2027 = 1801440000  # 2027-02-01


def _lab(tmp: Path) -> LabCluster:
    c = LabCluster.init(tmp / "lab", seed=7, key_spec="rsa1024")
    c.add_phones([MAC], capf_operation="install", capf_auth_mode="null-string", lsc_key="ec-p256")
    return c


def _real_time_at(monkeypatch: pytest.MonkeyPatch, when: int) -> None:
    """The real time as ``boot`` sees it: ``when`` now, advancing as the real time does."""
    start = time.time()
    monkeypatch.setattr(boot_module, "time", types.SimpleNamespace(time=lambda: when + time.time() - start))


def _boot(c: LabCluster, ports: dict[str, int], capsys: pytest.CaptureFixture[str],
          *extra: str) -> tuple[int, dict[str, Any], str]:
    code = main(["boot", "--tftp", f"127.0.0.1:{ports['tftp']}", "--http-port", str(ports["http"]),
                 "--mac", MAC, "--lab", str(c.root), "--json", *extra])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def test_a_seeded_labs_phone_installs_its_lsc_after_the_labs_first_year(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The real time 2027-02-01, the seeded lab's clock 2026-01-01: the phone runs on the lab's clock, so
    the LSC the lab issues it (2026-01-01 .. 2027-01-01) is taken; said once on stderr and in the JSON
    (was: ``F.6-capf-rejected``, the LSC expired at 2027-01-01 by the phone's real clock)."""
    c = _lab(tmp_path)
    ports, stop = serve_in_thread(c)
    try:
        _real_time_at(monkeypatch, FEB_2027)
        code, doc, err = _boot(c, ports, capsys)
    finally:
        stop()
    rules = [d["rule"] for d in doc["decisions"]]
    assert "F.6-lsc-installed" in rules, (rules, err)
    assert code == 0
    assert err.count("phone clock: the lab's, 2026-01-01 00:00:") == 1, err
    assert "(--now UNIX sets another)" in err
    assert doc["clock"]["source"] == "lab" and EPOCH <= doc["clock"]["start"] < EPOCH + 600


def test_a_phone_follows_lab_clock_advance(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``lab clock --advance 34560000`` (400 days): the lab issues LSCs from 2027-02-04, which the phone takes
    on the lab's clock (was: ``not valid before 2027-02-04`` by the real time); ``--now`` still sets another
    clock, fixed, and nothing is said of the lab's."""
    c = _lab(tmp_path)
    assert main(["lab", "clock", str(c.root), "--advance", "34560000"]) == 0
    capsys.readouterr()
    ports, stop = serve_in_thread(c, watch=0.05)
    try:
        code, doc, err = _boot(c, ports, capsys)
        rules = [d["rule"] for d in doc["decisions"]]
        assert "F.6-lsc-installed" in rules, (rules, err)
        assert code == 0 and "phone clock: the lab's, 2027-02-0" in err, err
        assert doc["clock"]["start"] >= EPOCH + 34560000
        _code, doc, err = _boot(c, ports, capsys, "--now", str(EPOCH + 3600))
        assert "phone clock" not in err
        assert doc["clock"] == {"source": "--now", "start": EPOCH + 3600, "start_utc": "2026-01-01 01:00:00Z"}
    finally:
        stop()


def test_an_unseeded_lab_on_the_real_time_says_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unseeded lab follows the real time (its clock behind it): the phone's clock is the real time,
    nothing said; the JSON names the lab as its source."""
    c = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=EPOCH)
    c.add_phones([MAC], capf_operation="install", capf_auth_mode="null-string", lsc_key="ec-p256", now=EPOCH)
    ports, stop = serve_in_thread(c)
    try:
        code, doc, err = _boot(c, ports, capsys)
    finally:
        stop()
    assert "phone clock" not in err
    assert doc["clock"]["source"] == "lab" and abs(doc["clock"]["start"] - time.time()) < 120
    assert code == 0
