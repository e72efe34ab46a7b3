"""The JSON files of a phone's flash (``state.json``, ``last-boot.json``) and of a lab
(``registrations.json``) are written by :func:`phoneemu.json_doc.dumps` (its module rule: a lone surrogate
is U+FFFD), so a strict JSON reader takes them; without a surrogate they are byte for byte what
``json.dumps`` wrote before, so a flash or lab written earlier reads back, and is saved, unchanged.

Before: ``json.dumps`` wrote a surrogate as ``\\udcXX``, which RFC 7493 (I-JSON) parsers, Go's and serde
refuse. A surrogate reaches these files from bytes kept with ``surrogateescape`` (a signer name of a
hostile file's header in a boot's statuses).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from phoneemu.formats import config as config_fmt
from phoneemu.formats.config import DeviceConfig
from phoneemu.lab.registrations import REGISTRATIONS_FILE, read_registrations, write_registrations
from phoneemu.phone import rules
from phoneemu.phone.flash import LAST_BOOT_FILE, STATE_FILE, Flash
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import InternCache, TrustStore

NOW = 1_800_000_000
P = get_profile("cp-8861")
SIGNER = "CN=ITL signer \udcff\udcfe"  # a header's name that is not UTF-8, kept by surrogateescape
SHOWN = "CN=ITL signer \ufffd\ufffd"


def _strict(raw: bytes) -> Any:
    """What a strict JSON reader takes: UTF-8 text whose strings hold no surrogate (each encodes)."""
    doc = json.loads(raw.decode("utf-8", errors="strict"))
    _encode_all(doc)
    return doc


def _encode_all(value: Any) -> None:
    if isinstance(value, str):
        value.encode("utf-8", errors="strict")  # UnicodeEncodeError on a surrogate
    elif isinstance(value, dict):
        for k, v in value.items():
            _encode_all(k)
            _encode_all(v)
    elif isinstance(value, list):
        for v in value:
            _encode_all(v)


def _store(load: str = "sip88xx.14-2-1") -> TrustStore:
    """A phone that accepted an unsigned config (no trust list) and runs ``load``."""
    store = TrustStore(profile=P, intern=InternCache())
    xml = config_fmt.build(DeviceConfig(device_name="SEP001122334455", capf_auth_mode=2))
    store.apply(rules.decide_config(store, "SEP001122334455.cnf.xml", xml, profile=P, now=NOW))
    store.firmware_load = load
    return store


def _state_of(store: TrustStore) -> tuple[Any, ...]:
    return (store.capf_auth_mode, store.firmware_load, store.config_rule,
            None if store.config is None else (store.config.file, store.config.xml))


def test_last_boot_json_with_a_surrogate_is_strict_json(tmp_path: Path) -> None:
    fl = Flash(tmp_path / "phone", profile=P)
    fl.save_last_boot({"at": NOW, "ok": False, "statuses": [f"ITL signed by {SIGNER}: not trusted"],
                       "deciding": {"signer": SIGNER}})
    doc = _strict((fl.path / LAST_BOOT_FILE).read_bytes())
    assert doc["statuses"] == [f"ITL signed by {SHOWN}: not trusted"]
    assert fl.last_boot() == doc and fl.problems == []


def test_state_json_with_a_surrogate_is_strict_json(tmp_path: Path) -> None:
    fl = Flash(tmp_path / "phone", profile=P)
    fl.save(_store(load="load\udcff"))
    assert _strict((fl.path / STATE_FILE).read_bytes())["firmware_load"] == "load\ufffd"
    assert fl.load().firmware_load == "load\ufffd" and fl.problems == []


def test_flash_json_without_a_surrogate_reads_back_unchanged(tmp_path: Path) -> None:
    """A flash written then read gives the same state, and its files are what ``json.dumps`` wrote (a
    flash saved by an earlier phoneemu is not rewritten)."""
    fl = Flash(tmp_path / "phone", profile=P)
    store = _store()
    fl.save(store)
    summary = {"at": NOW, "ok": True, "statuses": ["Trust List Updated"], "trust": {"itl": "none"}}
    fl.save_last_boot(summary)
    state = json.loads((fl.path / STATE_FILE).read_bytes())
    assert (fl.path / STATE_FILE).read_bytes() == json.dumps(state, sort_keys=True, indent=1).encode()
    assert (fl.path / LAST_BOOT_FILE).read_bytes() == json.dumps(summary, sort_keys=True, indent=1).encode()
    back = fl.load()
    assert fl.problems == [] and _state_of(back) == _state_of(store)
    assert fl.last_boot() == summary


def test_registrations_json_is_strict_json_and_reads_back(tmp_path: Path) -> None:
    reports = {"0A0000000001": ("none", NOW), "0A0000000002": ("ab" * 20, NOW + 1)}
    write_registrations(tmp_path, reports)
    raw = (tmp_path / REGISTRATIONS_FILE).read_bytes()
    assert raw == (json.dumps({m: {"itl": i, "at": a} for m, (i, a) in reports.items()}, indent=0)
                   + "\n").encode()  # as before
    assert read_registrations(tmp_path) == (reports, None)
    write_registrations(tmp_path, {"0A000000\udcff": ("none", NOW)})
    assert _strict((tmp_path / REGISTRATIONS_FILE).read_bytes()) == {"0A000000\ufffd": {"itl": "none",
                                                                                        "at": NOW}}
