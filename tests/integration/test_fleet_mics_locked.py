"""``fleet boot --lab DIR``: a shard reads each phone's ``mic.pem``/``mic.key`` under the lab lock, shared
(:func:`phoneemu.fleet.mics.lab_mic`), so a ``lab`` operation replacing a phone's MIC during the storm —
``mic.key`` then ``mic.pem``, under the lock held exclusively — is seen before or after, never torn.

The test is the operation: it holds the lock exclusively with the new key beside the old certificate (the
half-written state), lets the fleet's read start (:func:`phoneemu.fleet.engine.make_phones`, what each
shard runs), and writes the new certificate and releases only once that read has finished (read
unlocked: it saw the torn pair) or says it waits for the lock. No timing decides the outcome.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from phoneemu.files import atomic_write
from phoneemu.fleet import mics
from phoneemu.fleet.engine import FleetSpec, mac_text, make_phones
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.lock import hold_lab_lock
from phoneemu.phone.boot import BootTarget

NOW = 1_780_000_000
START = 0x0A0000000300
PHONE, DONOR = mac_text(START), mac_text(START + 1)


def _lab(tmp: Path) -> LabCluster:
    c = LabCluster.init(tmp / "lab", seed=9, key_spec="rsa1024", now=NOW)
    c.add_phones([PHONE, DONOR], now=NOW)
    return c


def _read_during_operation(c: LabCluster, capsys: pytest.CaptureFixture[str]) -> tuple[list[Any], list[Any]]:
    """PHONE's MIC replaced by DONOR's as an operation does it, the fleet reading PHONE meanwhile: the
    phones made and the unready ones."""
    phones_dir = c.root / "phones"
    new_key = (phones_dir / DONOR / "mic.key").read_bytes()
    new_cert = (phones_dir / DONOR / "mic.pem").read_bytes()
    spec = FleetSpec(target=BootTarget(host="127.0.0.1", tftp_port=69), count=1, mac_start=START,
                     mic_dir=str(phones_dir))
    made: list[Any] = []
    unready: list[Any] = []

    def fleet_reads() -> None:
        made.extend(make_phones(spec, [START], pool=None, unready=unready))

    reader = threading.Thread(target=fleet_reads, daemon=True)
    said = ""
    with hold_lab_lock(c.root):  # the operation, exclusive
        atomic_write(phones_dir / PHONE / "mic.key", new_key, mode=0o600)  # half-way: new key, old cert
        reader.start()
        for _ in range(3000):  # bounded: 30 s; ends as soon as the read finished or waits for the lock
            said += capsys.readouterr().err
            if not reader.is_alive() or "waiting for the lab lock" in said:
                break
            time.sleep(0.01)
        atomic_write(phones_dir / PHONE / "mic.pem", new_cert)  # the operation's last write
    reader.join(60)
    assert not reader.is_alive()
    return made, unready


def test_a_mic_replaced_during_the_read_is_read_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    c = _lab(tmp_path)
    monkeypatch.setattr(mics, "_waits_said", set(), raising=False)  # said once per lab and process
    donor = mics.lab_mic(c.root / "phones", DONOR)
    made, unready = _read_during_operation(c, capsys)
    assert unready == []  # was: [(PHONE, "lab MIC: ...mic.key: not the private key of the certificate ...")]
    (phone,) = made
    assert phone.store.mic is not None
    assert phone.store.mic.cert_der == donor.cert_der  # the MIC after the operation, whole
    assert phone.store.mic.key_pem == donor.key_pem


def test_a_read_waiting_for_an_operation_says_so_once(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    c = _lab(tmp_path)
    monkeypatch.setattr(mics, "_waits_said", set(), raising=False)
    told: list[str] = []
    reader = threading.Thread(target=lambda: told.append(mics.lab_mic(c.root / "phones", PHONE,
                                                                        on_wait=told.append).key_pem.decode()),
                              daemon=True)
    with hold_lab_lock(c.root):
        reader.start()
        for _ in range(3000):  # bounded: 30 s
            if told or not reader.is_alive():
                break
            time.sleep(0.01)
        assert told and told[0].startswith(f"waiting for the lab lock {c.root / '.lab.lock'}: held by ")
        assert told[0].endswith("the lab is read once it is released (never half-changed)")
    reader.join(60)
    assert not reader.is_alive() and len(told) == 2 and "PRIVATE KEY" in told[1]


def test_lab_mic_outside_a_lab_reads_unlocked(tmp_path: Path) -> None:
    """A phones folder whose parent is no lab (no cluster.json) gets no lock file; the MIC still loads."""
    c = _lab(tmp_path)
    copy = tmp_path / "copy"
    (copy / PHONE).mkdir(parents=True)
    for name in (mics.MIC_CERT, mics.MIC_KEY):
        (copy / PHONE / name).write_bytes((c.root / "phones" / PHONE / name).read_bytes())
    assert mics.lab_mic(copy, PHONE).cert_der == mics.lab_mic(c.root / "phones", PHONE).cert_der
    assert not (tmp_path / ".lab.lock").exists()
