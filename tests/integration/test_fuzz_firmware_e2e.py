"""``fuzz --format firmware --serve`` end to end: mutated loads served to an emulated phone's boot (spec §D).

The real command serves mutants of the firmware corpus over TFTP on loopback, every other file from a
lab cluster's served folder (``--serve-root``); a phone that trusts the corpus's image-signing
certificate boots against it once per mutant (a fresh phone each time: a phone that installed a load
does not ask for it again). Every boot must end with a report — no exception escapes the boot — and a
§D decision on exactly the bytes served; a load is installed only when the same bytes, decided
offline, pass §D; a rejected load leaves the phone without one.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from phoneemu.formats import firmware as firmware_fmt
from phoneemu.fuzz.corpus import build_corpus
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone import rules
from phoneemu.phone.boot import BootReport, BootTarget
from phoneemu.phone.flash import Flash
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import InternCache, TrustStore

ROOT = Path(__file__).resolve().parents[2]
NOW = 1_780_000_000
MAC = "0A0000000001"
LOAD = "sip88xx.14-1-1"
RUNS = 24


def test_served_firmware_mutants_are_decided_by_the_phone_as_offline(tmp_path: Path) -> None:
    lab = LabCluster.init(tmp_path / "lab", name="lab", key_spec="rsa1024", now=NOW, seed=11)
    lab.add_phone(MAC, now=NOW, lsc_key="rsa1024")
    lab.set_load(LOAD, now=NOW)
    name = firmware_fmt.loads_file_name(LOAD)
    out = tmp_path / "fz"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "phoneemu", "fuzz", "--format", "firmware", "--serve", "--port", "0",
            "--serve-root", str(lab.root / "tftp"), "--runs", str(RUNS), "--time", "60", "--seed", "8",
            "--out", str(out)]
    pipe = subprocess.PIPE
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=pipe, stderr=pipe, text=True)
    image_signer = build_corpus("firmware").verify_cert
    profile = get_profile("cp-8861")
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "serving mutants over TFTP on 127.0.0.1:" in line, line
        port = int(line.split("127.0.0.1:")[1].split(";")[0])

        async def boots() -> list[BootReport]:
            reports = []
            for i in range(RUNS):
                phone = Phone(mac=MAC, profile=profile, flash=Flash(tmp_path / f"flash-{i}", profile=profile),
                              clock=lambda: NOW, mic=lab.phone_identity(MAC), image_signers=[image_signer],
                              fetch_timeout=1.0, fetch_retries=3)
                reports.append(await phone.boot(BootTarget(host="127.0.0.1", tftp_port=port, use_http=False)))
            return reports

        reports = asyncio.run(boots())
        stdout, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stdout
    served = sorted((out / "served").glob(f"0*-{name}"))
    assert len(served) == RUNS  # every boot fetched one mutant of the load the config names
    outcomes = []
    for report, path in zip(reports, served, strict=True):
        assert report.ok, report.deciding  # the trust lists and the config came from the lab
        d = next(d for d in report.decisions if d.kind == "firmware")
        assert d.rule.startswith("D-"), d
        offline = rules.decide_firmware(TrustStore(profile=profile, intern=InternCache()), path.read_bytes(),
                                        profile=profile, now=NOW, image_signers=[image_signer], file=name,
                                        requested_load=LOAD)
        assert (d.rule, d.accepted) == (offline.rule, offline.accepted), path.name
        if d.accepted:
            assert report.firmware == "accepted" and report.load == LOAD
        else:
            assert report.firmware == "rejected" and report.load is None
        outcomes.append(d.rule)
    assert len(set(outcomes)) >= 3, outcomes  # mutants reach several §D rules, not one early refusal
