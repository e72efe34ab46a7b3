"""A phone's own state stays small before its boot (issue #6), its decisions unchanged.

Pinned here: an :class:`EventLog` makes its deques at the first entry; fleet phones built and not booted
share what is alike (the unlocked ``locked_by``, the CAPF runner, the parts of their previous configs
that are equal, one parse of equal config bytes); :func:`phoneemu.formats.config.parse` remembers only
successes and still applies its size limit to bytes it remembers.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.errors import DecodeError, SizeLimitError
from phoneemu.fleet.engine import FleetSpec, Prestate, mac_text, make_phones
from phoneemu.formats import config as config_fmt
from phoneemu.formats.config import DeviceConfig, Server
from phoneemu.phone.boot import BootTarget
from phoneemu.phone.events import Decision, EventLog
from phoneemu.phone.phone import Phone

START = 0x0A00000000A0


def _config(device_name: str | None) -> bytes:
    return config_fmt.build(DeviceConfig(
        device_name=device_name, network_locale="United_States", dial_template="AppDialRules.xml",
        tvs_servers=(Server(host="127.0.0.1", port=2445),),
        capf_servers=(Server(host="127.0.0.1", port=3804),),
        extra={"phoneModel": "CP-8861"}))


def _fleet(tmp_path: Path, configs: list[bytes]) -> list[Phone]:
    """Phones built with each its previous config (plain ``SEP<MAC>.cnf.xml``), not booted."""
    for i, xml in enumerate(configs):
        (tmp_path / config_fmt.config_file_name(mac_text(START + i))).write_bytes(xml)
    spec = FleetSpec(target=BootTarget(host="127.0.0.1", use_http=False), count=len(configs), mac_start=START,
                     prestate=Prestate(config_dir=str(tmp_path)))
    return make_phones(spec, range(START, START + len(configs)), pool=None)


def test_event_log_makes_its_deques_at_the_first_entry() -> None:
    log = EventLog(4, 2)
    assert (log._events, log._status) == (None, None)  # what a phone not booted holds: no deque
    assert (log.events, log.status_messages, len(log), list(log)) == ((), (), 0, [])
    log.status("one")
    assert log._events is None and log.status_messages == ("one",)
    for t in range(6):
        decision = Decision(rule="r", accepted=True, reason="ok", file=f"f{t}", status=f"s{t}")
        log.log(decision, time=t, phone="P")
    assert [e.file for e in log.events] == ["f2", "f3", "f4", "f5"]  # the bounds hold as before
    assert log.status_messages == ("s4", "s5") and len(log) == 4


def test_fleet_phones_not_booted_share_what_is_alike(tmp_path: Path) -> None:
    a, b = _fleet(tmp_path, [_config("SEP" + mac_text(START)), _config("SEP" + mac_text(START + 1))])
    assert a.events._events is None and a.events._status is None
    assert a.store.locked_by is b.store.locked_by and not a.store.locked_by
    assert a._capf is b._capf and a._tvs is b._tvs
    ca, cb = a.store.config, b.store.config
    assert ca is not None and cb is not None
    assert ca.config.device_name != cb.config.device_name  # each its own config, read as before
    assert ca.config.tvs_servers is cb.config.tvs_servers and ca.config.capf_servers is cb.config.capf_servers
    assert ca.config.extra is cb.config.extra
    assert ca.config.network_locale is cb.config.network_locale
    assert ca.config == config_fmt.parse(bytearray(ca.xml))  # the same values as a parse not shared


def test_phones_holding_equal_config_bytes_share_one_parse(tmp_path: Path) -> None:
    a, b, c = _fleet(tmp_path, [_config(None), _config(None), _config("SEP" + mac_text(START + 2))])
    assert a.store.config is not None and b.store.config is not None and c.store.config is not None
    assert a.store.config.file != b.store.config.file
    assert a.store.config.config is b.store.config.config
    assert c.store.config.config is not a.store.config.config


def test_config_parse_remembers_successes_only_and_keeps_its_limit() -> None:
    xml = _config("SEP" + mac_text(START + 7))
    assert config_fmt.parse(xml) is config_fmt.parse(bytes(bytearray(xml)))
    with pytest.raises(SizeLimitError):
        config_fmt.parse(xml, limit=len(xml) - 1)  # remembered, still over this limit
    bad = xml.replace(b"<fullConfig>true", b"<fullConfig>maybe")
    for _ in range(2):  # a failure is not remembered: the same error each time
        with pytest.raises(DecodeError, match="maybe"):
            config_fmt.parse(bad)


def test_only_small_extras_and_server_lists_are_shared() -> None:
    """What parses share stays small whatever configs come (a fuzzer's): an ``extra`` above 8 KiB is each
    config's own; small ones are shared across configs."""
    def doc(device: str, note: str, tvs: int) -> bytes:
        members = "".join(f"<member priority=\"{i}\"><port>2445</port><address>10.0.0.{i + 1}</address>"
                          "</member>" for i in range(tvs))
        return (f"<device><deviceName>{device}</deviceName><note>{note}</note>"
                f"<TVS><members>{members}</members></TVS></device>").encode()

    small = [config_fmt.parse(doc(f"SEP00000000000{i}", "x" * 100, 2)) for i in (1, 2)]
    assert small[0].extra is small[1].extra and small[0].tvs_servers is small[1].tvs_servers
    big = [config_fmt.parse(doc(f"SEP00000000000{i}", "x" * 9000, 2)) for i in (1, 2)]
    assert big[0].extra == big[1].extra and big[0].extra is not big[1].extra
