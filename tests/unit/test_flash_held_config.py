""":meth:`Flash.held_config`: the one rule for which config a flash holds and under which name (module
rules of :mod:`phoneemu.phone.flash`): the config :meth:`Flash.load` restores, read without changing
anything; ``predict``'s installed config from a flash's ``config.xml`` is named by it."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.formats import config as config_fmt
from phoneemu.formats.config import DeviceConfig
from phoneemu.phone.flash import Flash
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import InternCache
from phoneemu.scenario.predict import installed_config

P = get_profile("cp-8861")
XML = config_fmt.build(DeviceConfig(device_name="SEP0A0000008502"))
NAME = "SEP0A0000008502.cnf.xml.sgn"
SHA = hashlib.sha256(XML).hexdigest()

#: config.xml: the one vouched for, another (a crash between the two writes), not XML, none
CONFIGS = st.sampled_from([XML, XML + b"\n", b"<not-a-config", None])
#: state.json: vouching for XML, a name or SHA-256 missing or wrong, damaged, not an object, none
STATES = st.one_of(
    st.fixed_dictionaries({"config_file": st.sampled_from([NAME, "", None, 7]),
                           "config_sha256": st.sampled_from([SHA, SHA.upper(), "00" * 32, None])})
    .map(json.dumps),
    st.sampled_from(["{", "[]", "null"]),
    st.none())


def _flash(d: Path, config: bytes | None, state: str | None) -> Path:
    if config is not None:
        (d / "config.xml").write_bytes(config)
    if state is not None:
        (d / "state.json").write_text(state, encoding="utf-8")
    (d / ".config.xml.tmp").write_bytes(b"stale")  # load() removes it; held_config() must not
    return d


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in d.iterdir()}


@settings(max_examples=60, deadline=None)
@given(config=CONFIGS, state=STATES)
def test_held_config_is_what_load_restores_and_changes_nothing(config: bytes | None,
                                                               state: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = _flash(Path(tmp), config, state)
        before = _snapshot(d)
        reader = Flash(d, profile=P)
        held = reader.held_config()
        assert _snapshot(d) == before
        problems = list(reader.problems)
        loaded = Flash(d, profile=P, intern=InternCache()).load().config
        got = None if held is None else (held.file, held.xml)
        assert got == (None if loaded is None else (loaded.file, loaded.xml)), (config, state)
        if config is not None and held is None:
            assert any(p.startswith("config.xml: ") for p in problems), problems


def test_held_config_of_a_vouched_flash_and_of_no_flash(tmp_path: Path) -> None:
    d = _flash(tmp_path, XML, json.dumps({"config_file": NAME, "config_sha256": SHA}))
    held = Flash(d, profile=P).held_config()
    assert held is not None and (held.file, held.xml) == (NAME, XML)
    assert installed_config(d / "config.xml").file == NAME  # predict names it by the same rule
    missing = Flash(tmp_path / "none", profile=P)
    assert missing.held_config() is None and missing.problems == []
