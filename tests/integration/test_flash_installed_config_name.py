"""``predict --flash`` / ``replay --flash``: the flash's config is installed under the name the phone
accepted it under (``state.json``'s ``SEP<MAC>.cnf.xml.sgn``), as the phone's own boot restores it.

A phone boots on a lab (its flash holds the cluster's ITL and config), then TVS stops and the
ITLRecovery is regenerated: the new ITL's signer is unknown and TVS cannot vouch for it, so the phone
locks (§G.3.5) and the served config — unchanged — is refused with "the served config is unchanged".
Predicted and replayed from the flash of before that boot, the same rule must come with the same
reason (it was "the phone ignores configuration changes": the config installed as ``config.xml``, a
name the phone never asked for, so the unchanged config counted as a change).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.errors import ScenarioError
from tests.helpers import phoneemu_cli, run_within

HOST = "127.0.0.84"  # this file's cluster: no other test uses it (its packets alone in the pcap)
MAC = "0A0000008401"
LOCKED = "G.3.5-locked-ignores-config"
UNCHANGED = "the served config is unchanged"

run_long = run_within(90)


@dataclass(frozen=True)
class LockedBoot:
    """The flash of before the locking boot, that boot's config decision, its capture (None: no live
    capture here) and the lab's TFTP folder (the files it served)."""

    before: Path
    live: dict[str, Any]
    pcap: Path | None
    tftp: Path


def _config_decision(report: dict[str, Any]) -> dict[str, Any]:
    (d,) = [d for d in report["decisions"] if d["file"] == f"SEP{MAC}.cnf.xml.sgn"]
    return d


def _live_capture_possible(tmp: Path) -> bool:
    from phoneemu.scenario.capturing import open_capture

    try:
        probe, _ = open_capture(tmp / "probe", "probe", mode="live")
    except ScenarioError:
        return False
    probe.close()
    return True


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> LockedBoot:
    from phoneemu.lab.cluster import LabCluster
    from phoneemu.lab.servers import LabServers

    tmp = tmp_path_factory.mktemp("flashname")
    lab = LabCluster.init(tmp / "lab", seed=84, key_spec="rsa1024", host=HOST)
    lab.add_phone(MAC)
    flash, before = tmp / "flash", tmp / "flash-before"
    pcap = tmp / "locked.pcap" if _live_capture_possible(tmp) else None

    async def body() -> tuple[int, str]:
        async with LabServers(lab, host=HOST) as srv:
            boot = ["boot", "--tftp", f"{HOST}:{srv.ports['tftp']}", "--http-port", str(srv.ports["http"]),
                    "--mac", MAC, "--lab", str(tmp / "lab"), "--flash", str(flash), "--timeout", "0.5"]
            rc, out = await phoneemu_cli(*boot)
            assert rc == 0, out  # ITL and config accepted: the flash holds them
            shutil.copytree(flash, before)
            await srv.stop_service("tvs")
            lab.regenerate("itlrecovery")
            return await phoneemu_cli(*boot, "--json", *(("--capture", str(pcap)) if pcap else ()))

    rc, out = run_long(body())
    assert rc == 1, out
    report = json.loads(out[out.index("{"):out.rindex("}") + 1])
    live = _config_decision(report)
    assert live["rule"] == LOCKED and UNCHANGED in live["reason"], live
    return LockedBoot(before=before, live=live, pcap=pcap, tftp=tmp / "lab" / "tftp")


def test_predict_flash_gives_the_live_boots_reason(locked: LockedBoot,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predict", "--flash", str(locked.before), str(locked.tftp), "--json"]) == 1
    predicted = _config_decision(json.loads(capsys.readouterr().out)["report"])
    assert (predicted["rule"], predicted["reason"]) == (locked.live["rule"], locked.live["reason"])


def test_replay_flash_gives_the_live_boots_reason(locked: LockedBoot,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    if locked.pcap is None:
        pytest.skip("live capture not possible here (not root, not Linux)")
    main(["replay", str(locked.pcap), "--flash", str(locked.before), "--json"])
    (boot,) = json.loads(capsys.readouterr().out)["boots"]
    replayed = _config_decision(boot["report"])
    assert (replayed["rule"], replayed["reason"]) == (locked.live["rule"], locked.live["reason"])

