"""The command-line options of a slow CAPF key generation (spec §F.6, §F.8; ours): ``boot`` and ``fleet
boot`` ``--capf-keygen-seconds`` / ``--capf-in-progress-seconds`` override the profile's fields of the same
names, refused at parse time outside the profile's ranges; ``lab serve`` ``--capf-read-timeout``,
``--capf-session-timeout`` and ``--capf-max-in-progress`` (defaults 30, 120, 256) reach its CAPF server.
Before, none of these options existed (argparse refused them: exit 2)."""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.cli import build_parser
from phoneemu.commands import lab_serve
from phoneemu.commands.boot import capf_keygen_overrides
from phoneemu.errors import PhoneEmuError
from phoneemu.fleet.engine import FleetSpec, make_phones
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.servers import LabServers
from phoneemu.phone.boot import BootTarget
from tests.helpers import lab_template

MAC = "0A00000000D1"
COMMANDS = {"boot": ["boot", "--tftp", "127.0.0.1", "--mac", MAC],
            "fleet boot": ["fleet", "boot", "--count", "1", "--tftp", "127.0.0.1"]}

template = lab_template("keygenopts", seed=23, phones={MAC: {}})


_parser = functools.cache(build_parser)  # one parser for the whole module (about 30 ms to build)


def _parse(argv: list[str]) -> argparse.Namespace:
    return _parser().parse_args(argv)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_keygen_options_override_the_profile_fields(command: str) -> None:
    args = _parse([*COMMANDS[command], "--capf-keygen-seconds", "2", "--capf-in-progress-seconds", "1"])
    assert capf_keygen_overrides(args) == {"capf_keygen_seconds": 2.0, "capf_in_progress_seconds": 1.0}
    assert capf_keygen_overrides(_parse(COMMANDS[command])) == {}  # not given: the profile's own


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize(("option", "value", "said"), [
    ("--capf-keygen-seconds", "7201", "capf_keygen_seconds 7201.0 must be 0..7200"),
    ("--capf-keygen-seconds", "-1", "expected at least 0"),
    ("--capf-keygen-seconds", "nan", "is not a non-negative number"),
    ("--capf-in-progress-seconds", "0.2", "capf_in_progress_seconds 0.2 must be 0 (none) or 0.25..3600"),
    ("--capf-in-progress-seconds", "3601", "must be 0 (none) or 0.25..3600"),
])
def test_a_value_outside_the_profiles_range_is_a_usage_error(command: str, option: str, value: str, said: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        _parse([*COMMANDS[command], option, value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}: '{value}'" in err and said in err, err


@settings(max_examples=60, deadline=None)
@given(st.floats(min_value=-5, max_value=8000, allow_nan=False))
def test_the_options_take_exactly_the_profiles_ranges(value: float) -> None:
    """Property: ``--capf-keygen-seconds`` takes 0..7200, ``--capf-in-progress-seconds`` 0 or 0.25..3600
    (:class:`phoneemu.phone.profile.PhoneProfile`), every other number a usage error."""
    text = repr(value)
    for option, ok in (("--capf-keygen-seconds", 0 <= value <= 7200),
                       ("--capf-in-progress-seconds", value == 0 or 0.25 <= value <= 3600)):
        try:
            got = _parse([*COMMANDS["boot"], option, text])
        except SystemExit:
            assert not ok, (option, text)
        else:
            assert ok and math.isclose(capf_keygen_overrides(got)[option[2:].replace("-", "_")], value)


def test_fleet_boot_gives_every_phone_the_overridden_profile() -> None:
    """``FleetSpec.profile_overrides`` (``fleet boot --capf-keygen-seconds``) is each phone's profile, its
    model's other fields kept; a bad override is refused when the spec is made."""
    spec = FleetSpec(target=BootTarget(host="127.0.0.1", tftp_port=9), count=2, mac_start=0x0A00000000D1,
                     profiles={"0A00000000D2": "cp-7962"},
                     profile_overrides={"capf_keygen_seconds": 2.0, "capf_in_progress_seconds": 1.0})
    phones = make_phones(spec, [0x0A00000000D1, 0x0A00000000D2], pool=None)
    assert [p.profile.name for p in phones] == ["cp-8861", "cp-7962"]
    slow = {(p.profile.capf_keygen_seconds, p.profile.capf_in_progress_seconds) for p in phones}
    assert slow == {(2.0, 1.0)}
    with pytest.raises(PhoneEmuError, match="capf_in_progress_seconds"):
        FleetSpec(target=spec.target, count=1, profile_overrides={"capf_in_progress_seconds": 0.2})


def _bounds(args: argparse.Namespace) -> tuple[float, float, int]:
    return args.capf_read_timeout, args.capf_session_timeout, args.capf_max_in_progress


def test_lab_serve_capf_bounds_parse_with_todays_defaults() -> None:
    base = ["lab", "serve", "/tmp/lab"]
    assert _bounds(_parse(base)) == (30.0, 120.0, 256)
    assert _bounds(_parse([*base, "--capf-read-timeout", "1.5", "--capf-session-timeout", "1800",
                           "--capf-max-in-progress", "0"])) == (1.5, 1800.0, 0)
    for option, value in (("--capf-read-timeout", "0"), ("--capf-session-timeout", "-1"),
                          ("--capf-max-in-progress", "-1"), ("--capf-max-in-progress", "1.5")):
        with pytest.raises(SystemExit):
            _parse([*base, option, value])


def test_lab_serve_passes_its_capf_bounds_to_the_server(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    got: dict[str, Any] = {}

    async def fake_serve(root: Path, **options: Any) -> int:
        got.update(options, root=root)
        return 0

    monkeypatch.setattr(lab_serve, "serve", fake_serve)
    monkeypatch.setattr(logging, "basicConfig", lambda **_kw: None)  # the test process's logging untouched
    args = _parse(["lab", "serve", str(tmp_path), "--capf-read-timeout", "1.5",
                   "--capf-max-in-progress", "9"])
    assert lab_serve.run_serve(args) == 0
    want = lab_serve.CapfBounds(read_timeout=1.5, session_timeout=120.0, max_in_progress=9)
    assert got["capf_bounds"] == want


def test_lab_servers_give_the_capf_handler_its_bounds(cluster: LabCluster) -> None:
    servers = LabServers(cluster, capf_read_timeout=1.5, capf_session_timeout=7.0, capf_max_in_progress=3)
    h = servers.capf_handler
    assert (h.read_timeout, h.session_timeout, h.max_in_progress) == (1.5, 7.0, 3)
    default = LabServers(cluster).capf_handler  # as before: 3 x the 10 s I/O timeout, 120 s, 256
    assert (default.read_timeout, default.session_timeout, default.max_in_progress) == (30.0, 120.0, 256)


def test_lab_servers_give_the_sip_registrar_their_problem_log_level(cluster: LabCluster) -> None:
    """A scenario's lab (``handshake_log_level=INFO``) logs a client's SIP mistakes at INFO, as its TVS's and
    CAPF's; ``lab serve`` (the default) warns (was: the registrar warned in a scenario's lab too)."""
    assert LabServers(cluster, handshake_log_level=logging.INFO).sip_handler.problem_log_level == logging.INFO
    assert LabServers(cluster).sip_handler.problem_log_level == logging.WARNING


def test_lab_servers_say_the_capf_failures_counted_when_they_stop(cluster: LabCluster) -> None:
    """The failed CAPF sessions of a flood's last interval are said when the servers stop (was: lost when
    they stopped within that second)."""
    servers = LabServers(cluster)
    flushed: list[bool] = []
    servers.capf_handler.flush = lambda: flushed.append(True)  # type: ignore[method-assign]
    asyncio.run(servers.stop())
    assert flushed == [True]
