"""A phone profile's ``capf_keygen_seconds`` reaches the boot's CAPF session (spec §F.8; ours: the
phone answers KEY_GENERATE_REQUEST that long after it came, REQUEST_IN_PROGRESS every
``capf_in_progress_seconds``): against the lab with a CAPF read timeout shorter than the key generation,
the phone sending REQUEST_IN_PROGRESS installs its LSC; the same phone silent is cut and installs none."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.phone.boot import BootTarget
from phoneemu.phone.flash import Flash
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import profile_from_dict
from tests.helpers import run_within

NOW = 1_780_000_000
MAC = "0A00000000E1"
HOST = "127.0.0.1"
READ_TIMEOUT = 0.75  # the lab's CAPF read timeout, shorter than the phone's key generation
KEYGEN_S = 1.25
EVERY = 0.25  # REQUEST_IN_PROGRESS three times a read timeout: margin for a loaded machine

run = run_within(60)


@pytest.mark.parametrize(("every", "installed"), [(EVERY, True), (0.0, False)])
def test_a_slow_profile_keeps_its_capf_session_only_by_sending_in_progress(tmp_path: Path, every: float,
                                                                           installed: bool) -> None:
    c = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW)
    c.add_phone(MAC, now=NOW)
    c.set_capf([MAC], "install", auth_mode="null-string", key="ec-p256", now=NOW)
    prof = profile_from_dict("cp-8861", {"capf_keygen_seconds": KEYGEN_S, "capf_in_progress_seconds": every})

    async def body() -> tuple[str | None, float, list[str]]:
        async with LabServers(c, host=HOST) as srv:
            srv.capf_handler.read_timeout = READ_TIMEOUT
            phone = Phone(mac=MAC, profile=prof, flash=Flash(tmp_path / "ph", profile=prof),
                          clock=lambda: NOW, capf_retries=0)
            target = BootTarget(host=HOST, tftp_port=srv.ports["tftp"], http_port=srv.ports["http"])
            t0 = time.monotonic()
            report = await phone.boot(target)
            took = time.monotonic() - t0
            return report.lsc, took, [r.detail for r in srv.requests if r.service == "capf"]

    lsc, took, capf_log = run(body())
    if installed:
        assert lsc == "installed", capf_log
        assert took >= KEYGEN_S  # the key generation really took its time
    else:
        assert lsc != "installed"
        assert any(f"nothing for {READ_TIMEOUT}s in state wait-keygen" in line for line in capf_log), capf_log
