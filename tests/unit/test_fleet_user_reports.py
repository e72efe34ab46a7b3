"""Fleet boots as a lockout reproducer meets them: --installed-* beside --flash, the sustained rate of a storm
that ends in one burst, the JUnit ways out — each with the rule it pins."""

from __future__ import annotations

from pathlib import Path

from phoneemu.fleet.engine import PRESTATE_RULES, Prestate, _Prestater, mac_text
from phoneemu.fleet.metrics import BootRecord, FleetMetrics
from phoneemu.lab.cluster import LabCluster
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile

NOW = 1_780_000_000
MAC = mac_text(0x0A0000000100)


def test_installed_itl_keeps_a_flash_phones_own_config(tmp_path: Path) -> None:
    """--installed-itl alone replaces the ITL only: the config (and CTL) the phone's --flash holds stay,
    with their rules (they name its TVS servers; wiping them turned G.3.4-tvs-unknown-signer into
    G.3.5-reject-unknown-signer and erased the config from the flash)."""
    c = LabCluster.init(tmp_path / "lab", seed=3, key_spec="rsa1024", now=NOW)
    c.add_phones([MAC], now=NOW)
    before = tmp_path / "before"
    before.mkdir()
    config = c.get(f"SEP{MAC}.cnf.xml.sgn")
    itl = c.get("ITLFile.tlv")
    assert config is not None and itl is not None
    (before / f"SEP{MAC}.cnf.xml.sgn").write_bytes(config)
    profile = get_profile("cp-8861")
    phone = Phone(mac=MAC, profile=profile, flash=None, clock=lambda: NOW)
    _Prestater(Prestate(config_dir=str(before)), profile).apply(phone)  # as a flash would hold it
    phone.store.config_rule = "G.4-signed-by-itl-tftp"
    held = phone.store.config
    assert held is not None
    _Prestater(Prestate(itl=itl), profile).apply(phone)
    assert phone.store.itl is not None and phone.store.itl_rule == PRESTATE_RULES[1]
    assert phone.store.config is not None and phone.store.config.file == held.file
    assert phone.store.config_rule == "G.4-signed-by-itl-tftp"
    # --installed-config-dir given: a phone without a config there holds none (as documented)
    empty = tmp_path / "empty"
    empty.mkdir()
    _Prestater(Prestate(config_dir=str(empty)), profile).apply(phone)
    assert phone.store.config is None and phone.store.itl is not None


def _rec(end: float) -> BootRecord:
    return BootRecord(mac="0A0000000001", outcome="ok", rule="G.4-x", latency_s=end, end_s=end)


def test_sustained_rate_ignores_the_seconds_before_the_first_boot_ended() -> None:
    """Boots that all take 12 s (an HTTP port that never answers, a silent TVS) end in one burst: the
    seconds before the first boot ended are no part of the storm's sustained rate (was 0/s)."""
    m = FleetMetrics()
    for _ in range(128):
        m.add(_rec(12.1))
    m.wall_s = 12.2
    assert m.sustained_rate() == m.rate() > 10
    waves = FleetMetrics()  # three waves 12 s apart: between the first and last bucket that saw boots end
    for sec in (12, 24, 36):
        for _ in range(100):
            waves.add(_rec(sec + 0.5))
    assert waves.sustained_rate() == 100 / 23


def test_junit_ways_out_name_the_lab_and_the_phones_flash(tmp_path: Path) -> None:
    """A locked phone's JUnit failure names the --lab folder and its own flash in its ways out, as the
    summary does (was ``lab service DIR tvs start``, ``phone erase --flash FLASH``)."""
    from types import SimpleNamespace

    from phoneemu.commands.fleet import _write_junit

    rec = BootRecord(mac="0A0000000001", outcome="locked-out", rule="G.3.4-tvs-unreachable", latency_s=0.1,
                     end_s=0.1, reason="TVS unreachable", kind="ITL")
    result = SimpleNamespace(records=[rec], not_started=0, lost=[], metrics=SimpleNamespace(wall_s=0.2))
    out = tmp_path / "j.xml"
    _write_junit(out, result, target="127.0.0.1", count=1, lab=Path("/tmp/lab"), flash=Path("/tmp/fl"))
    text = out.read_text()
    assert "phoneemu lab service /tmp/lab tvs start" in text
    assert "phoneemu phone erase --flash /tmp/fl/0A0000000001" in text
    assert " DIR " not in text and "FLASH" not in text
