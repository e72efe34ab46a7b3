"""An installed config read from a phone's flash (``predict --flash``, ``replay --flash``, ``predict
--fleet-flash``) has the name the phone's own boot restores it under (:meth:`Flash.load`): the name
``state.json`` records, when it vouches for ``config.xml``; the §G rules decide per name (G.3.5
"the served config is unchanged" needs the same name), so ``config.xml`` decided otherwise."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from phoneemu.formats import config as config_fmt
from phoneemu.formats.config import DeviceConfig, Server
from phoneemu.phone.flash import Flash
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import InternCache
from phoneemu.scenario.predict import installed_config

XML = config_fmt.build(DeviceConfig(device_name="SEP0A0000008402",
                                    tvs_servers=(Server(host="192.0.2.7", port=2445),)))
NAME = "SEP0A0000008402.cnf.xml.sgn"
GOOD_SHA = hashlib.sha256(XML).hexdigest()

#: what ``state.json`` may hold: as saved, a name or SHA-256 missing or wrong, damaged, not an object
STATES = st.one_of(
    st.fixed_dictionaries({"config_file": st.sampled_from([NAME, "XmlDefault.cnf.xml", "", None, 7]),
                           "config_sha256": st.sampled_from([GOOD_SHA, GOOD_SHA.upper(), "00" * 32, None])})
    .map(json.dumps),
    st.sampled_from(["{", "[]", "\u00ff", "null"]),
    st.none())


def _flash(d: Path, state: str | None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.xml").write_bytes(XML)
    if state is not None:
        (d / "state.json").write_text(state, encoding="utf-8", errors="surrogateescape")
    elif (d / "state.json").exists():
        (d / "state.json").unlink()
    return d


def test_a_flash_config_is_installed_under_the_name_the_phone_accepted_it_under(tmp_path: Path) -> None:
    d = _flash(tmp_path / "flash", json.dumps({"config_file": NAME, "config_sha256": GOOD_SHA}))
    assert installed_config(d / "config.xml").file == NAME  # was config.xml


def test_another_config_xml_keeps_its_own_name(tmp_path: Path) -> None:
    """Not a flash's (no ``state.json`` beside it), or not named ``config.xml``: its file name."""
    plain = tmp_path / "config.xml"
    plain.write_bytes(XML)
    assert installed_config(plain).file == "config.xml"
    d = _flash(tmp_path / "flash", json.dumps({"config_file": NAME, "config_sha256": GOOD_SHA}))
    other = d / "SEP0A0000008402.cnf.xml"
    other.write_bytes(XML)
    assert installed_config(other).file == other.name


@settings(max_examples=60, deadline=None)
@given(state=STATES)
def test_the_name_is_the_one_the_phones_boot_restores(state: str | None) -> None:
    """Whatever ``state.json`` holds: a config the flash loads has the name it loads it under; one it
    does not load (``state.json`` does not vouch for it) keeps the file's own name."""
    with tempfile.TemporaryDirectory() as tmp:
        d = _flash(Path(tmp), state)
        loaded = Flash(d, profile=get_profile("cp-8861"), intern=InternCache()).load().config
        got = installed_config(d / "config.xml").file
        assert got == (loaded.file if loaded is not None else "config.xml"), (state, got)
