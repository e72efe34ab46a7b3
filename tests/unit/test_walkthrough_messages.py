"""Messages a new user met walking through the README, each naming what went wrong and what to give
instead: ``inspect`` of a PEM file, ``tvs --config`` of an encrypted phone's short config, ``lab serve``
given one TCP port for two services. Each was refused before with a message that did not say why."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.formats import config
from phoneemu.lab.cluster import LabCluster
from tests.helpers import module_lab

NOW = 1_780_000_000
MAC = "0A0000000F61"


lab = module_lab("walk", seed=12, now=NOW, phones={MAC: {"now": NOW}})


@pytest.mark.parametrize(("name", "label", "advice"), [
    ("tvs.pem", "CERTIFICATE", "give a certificate as --cert to check a file's signature with it"),
    ("key", "PRIVATE KEY", "give a private key as --key to decrypt an .enc.sgn (boot takes a MIC's key as "
                           "--mic-key)")])
def test_inspect_of_a_pem_file_says_it_is_one(lab: LabCluster, tmp_path: Path, name: str, label: str,
                                              advice: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Was "detect: at offset 0: not a signed header (no VERSION TLV 01 00 02) and not XML"."""
    path = lab.root / "certs" / "tvs.pem" if name == "tvs.pem" else lab.root / "phones" / MAC / "mic.key"
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"phoneemu inspect: {path}: a PEM file ({label}), not a file phoneemu inspect decodes "
                   f"(CTL/ITL, .sgn, .enc.sgn, firmware, config XML): {advice}\n"), err


def test_tvs_config_of_an_encrypted_phones_short_config_says_where_its_servers_are(
        lab: LabCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An encrypted phone's ``.cnf.xml.sgn`` (encrConfig) names no TVS: they are in its ``.enc.sgn`` (was
    only "the config names no TVS server", as for a config without any)."""
    short = tmp_path / f"SEP{MAC}.cnf.xml"
    short.write_bytes(config.build(config.DeviceConfig(device_name=f"SEP{MAC}", encr_config=True)))
    plain = tmp_path / "plain.cnf.xml"
    plain.write_bytes(config.build(config.DeviceConfig(device_name=f"SEP{MAC}")))
    cert = lab.root / "certs" / "itlrecovery.pem"
    assert main(["tvs", str(cert), "--config", str(short)]) == 2
    err = capsys.readouterr().err
    assert (f"{short}: the config names no TVS server (<TVS><members>); it is an encrypted phone's short "
            "config (encrConfig, spec §G.12): the TVS servers are in its .cnf.xml.enc.sgn, which --config "
            "does not decrypt: give the servers as HOST[:PORT], or --flash DIR of an emulated phone that "
            "booted on it (its flash holds the decrypted config)\n") in err, err
    assert main(["tvs", str(cert), "--config", str(plain)]) == 2
    err = capsys.readouterr().err
    assert "names no TVS server (<TVS><members>)\n" in err and "encrypted" not in err, err


@pytest.mark.parametrize(("options", "said"), [
    (["--tvs-port", "17491", "--capf-port", "17491"], "--tvs-port and --capf-port are both 17491"),
    (["--http-port", "17493", "--sip-port", "17493"], "--http-port and --sip-port are both 17493"),
])
def test_lab_serve_refuses_one_tcp_port_for_two_services(lab: LabCluster, options: list[str], said: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Refused before the lab is read or a port bound (was the second listener's "Address already in use
    ... e.g. by another 'phoneemu lab serve'", naming neither option); 0 (any free port) may repeat."""
    before = (lab.root / "cluster.json").read_bytes()
    assert main(["lab", "serve", str(lab.root), "--tftp-port", "0", *options]) == 2
    err = capsys.readouterr().err
    assert err == (f"phoneemu lab serve: {said}: each TCP service listens on a port of its own (0 = any free "
                   "port)\n"), err
    assert (lab.root / "cluster.json").read_bytes() == before



def test_tvs_flash_of_an_encrypted_phone_is_not_told_of_its_short_config(
        lab: LabCluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A flash holds the config its phone decrypted from the .enc.sgn (encrConfig true as well): when it
    names no TVS server (a cluster without TVS), that is said alone (was: "it is an encrypted phone's short
    config ... give ... --flash DIR of an emulated phone that booted on it", to a --flash given)."""
    from phoneemu.phone.flash import Flash
    from phoneemu.phone.profile import get_profile
    from phoneemu.phone.store import AcceptedConfig, InternCache, TrustStore

    profile = get_profile("cp-8861")
    xml = config.build(config.DeviceConfig(device_name=f"SEP{MAC}", encr_config=True))
    store = TrustStore(profile=profile, intern=InternCache())
    store.config = AcceptedConfig(file=f"SEP{MAC}.cnf.xml.enc.sgn", xml=xml, config=config.parse(xml))
    flash = tmp_path / "flash"
    Flash(flash, profile=profile).save(store)
    assert main(["tvs", str(lab.root / "certs" / "itlrecovery.pem"), "--flash", str(flash)]) == 2
    err = capsys.readouterr().err
    assert err.endswith(f"{flash / 'config.xml'}: the config names no TVS server (<TVS><members>)\n"), err
