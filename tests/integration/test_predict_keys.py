"""``predict --flash`` / ``--fleet-flash`` (and ``replay --flash``) on a cluster with encrypted configs
(spec §G.12): the predicted phone holds its flash's MIC, LSC and manual key, so it decrypts a new
``.enc.sgn`` as the phone would.

Before, the predicted phone held no key at all and every phone of an encrypted-config cluster was
predicted to fail (G.12.3-no-key). The flash is read, never changed: an interrupted pair replacement
stays as it was for the phone to settle at its next boot.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster
from tests.helpers import boot_offline_into, run

NOW = 1_780_000_000
MACS = ["0A00000003A1", "0A00000003A2", "0A00000003A3"]
DAMAGED = MACS[2]


async def _boot_into(fleet: Path, c: LabCluster) -> None:
    for report in await boot_offline_into(fleet, c, MACS, now=NOW, with_mics=True):
        assert report.ok and report.deciding is not None and report.deciding.rule == "G.12.3-decrypted"


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_encrypted_configs_are_predicted_with_each_phones_own_key(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    c = LabCluster.init(tmp_path / "lab", seed=43, key_spec="rsa1024", now=NOW, name="enc")
    c.add_phones(MACS, encrypt="pki", now=NOW)  # configs encrypted to each phone's MIC (no LSC yet)
    fleet = tmp_path / "fleet"
    run(_boot_into(fleet, c))
    key = fleet / DAMAGED / "mic.key"
    key.write_bytes(key.read_bytes()[:100])  # cut: this phone cannot decrypt
    staged = fleet / MACS[0] / ".lsc.der.new"  # an interrupted LSC replacement: left for the phone
    staged.write_bytes(b"staged")
    before = _snapshot(fleet)

    out = tmp_path / "p.json"
    rc = main(["predict", "--fleet-flash", str(fleet), "--now", str(NOW), "--json-file", str(out),
               str(tmp_path / "lab" / "tftp")])
    assert rc == 0  # exit 1 is for a lockout; the damaged phone fails without locking out
    doc = json.loads(out.read_text())
    by_mac = {p["mac"]: p for p in doc["phones"]}
    for mac in MACS[:2]:
        assert (by_mac[mac]["outcome"], by_mac[mac]["deciding"]["rule"]) == ("accepted", "G.12.3-decrypted")
    assert (by_mac[DAMAGED]["outcome"], by_mac[DAMAGED]["deciding"]["rule"]) == ("failed", "G.12.3-no-key")
    text = capsys.readouterr().out
    # why it holds no key (the note names the phone as <MAC>, so that alike phones count as one note)
    assert f"note for 1 phone ({DAMAGED}): {fleet / '<MAC>'}: {key.name} at offset 0: truncated" in text
    assert _snapshot(fleet) == before  # read, never changed

    # one phone, --flash: the same key
    rc = main(["predict", "--flash", str(fleet / MACS[1]), "--now", str(NOW), str(tmp_path / "lab" / "tftp")])
    assert rc == 0
    assert "deciding: G.12.3-decrypted (accepted)" in capsys.readouterr().out
    assert os.path.exists(staged)


def test_replay_with_a_flash_decrypts_the_captured_encrypted_config(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.test_replay import http_get, write

    c = LabCluster.init(tmp_path / "lab", seed=44, key_spec="rsa1024", now=NOW, name="enc")
    c.add_phones(MACS, encrypt="pki", now=NOW)
    fleet = tmp_path / "fleet"
    run(_boot_into(fleet, c))
    mac = MACS[0]
    files = dict(c.files())
    names = [f"CTLSEP{mac}.tlv", "CTLFile.tlv", f"ITLSEP{mac}.tlv", "ITLFile.tlv", f"SEP{mac}.cnf.xml.sgn",
             f"SEP{mac}.cnf.xml.enc.sgn", "g3-tones.xml.sgn", "AppDialRules.xml.sgn"]
    pcap = write(tmp_path, lambda w: http_get(w, [(n, files.get(n)) for n in names]))

    def deciding(argv: list[str]) -> str:
        main(["replay", str(pcap), *argv, "--json"])
        doc = json.loads(capsys.readouterr().out)
        rule: str = doc["boots"][0]["report"]["deciding"]["rule"]
        return rule

    assert deciding(["--mac", mac]) == "G.12.2-cert-hash-mismatch"  # out of the box: no certificate
    assert deciding(["--flash", str(fleet / mac)]) == "G.12.3-decrypted"
