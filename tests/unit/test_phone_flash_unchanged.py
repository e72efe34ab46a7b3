"""A phone made from a flash writes it back only when that changes something (:mod:`phoneemu.phone.phone`
rules, :meth:`phoneemu.phone.flash.Flash.unchanged`).

Was: ``Phone.__init__`` saved every flash it loaded, each file read again to find it unchanged, the folder
locked, ``chmod``-ed — a third of the time a ``fleet boot --flash`` of 3,000 phones spent making its phones
before the first boot. The saves that do change something are kept: a new folder's ``phone.json``, a MIC
given that is not the one on flash, a flash whose load noted a problem, an older ``state.json``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from phoneemu.crypto import certs
from phoneemu.formats import config as config_fmt
from phoneemu.formats.config import DeviceConfig, Server
from phoneemu.phone import rules
from phoneemu.phone.flash import Flash
from phoneemu.phone.phone import Phone
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import Credential, TrustStore
from tests.unit.test_flash_redteam_r9 import _ident  # a self-signed test identity by name

NOW = 1_800_000_000
P = get_profile("cp-8861")
MAC = "001122334455"


def _phone(folder: Path, mic: Credential | None = None) -> Phone:
    flash = Flash(folder, profile=P, durable=False)
    return Phone(mac=MAC, profile=P, flash=flash, clock=lambda: NOW, mic=mic)


def _flash(tmp_path: Path) -> Path:
    """A phone's flash as a boot leaves one: MIC, config, state.json, phone.json."""
    folder = tmp_path / "ph"
    phone = _phone(folder, Credential.of(*_ident("mic")))
    tvs = (Server(host="127.0.0.1", port=2445),)
    xml = config_fmt.build(DeviceConfig(device_name=f"SEP{MAC}", tvs_servers=tvs))
    store: TrustStore = phone.store
    store.apply(rules.decide_config(store, f"SEP{MAC}.cnf.xml", xml, profile=P, now=NOW))
    phone.save_to(Flash(folder, profile=P, durable=False))
    return folder


def _snapshot(folder: Path) -> dict[str, tuple[int, int, int, int]]:
    """Every entry of the folder (and the folder itself) by name: inode, mtime, ctime (a chmod too), mode."""
    entries = {p.name: p.stat() for p in folder.iterdir()}
    entries["."] = folder.stat()
    return {name: (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_mode) for name, st in entries.items()}


def _saves_recorded(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The flash folders :meth:`Flash.save` is called for from now on (each save still made)."""
    saves: list[Path] = []
    real_save = Flash.save

    def save(self: Flash, store: TrustStore, *, identity: bytes | None = None) -> None:
        saves.append(self.path)
        real_save(self, store, identity=identity)

    monkeypatch.setattr(Flash, "save", save)
    return saves


def test_a_phone_made_from_an_unchanged_flash_writes_nothing(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _flash(tmp_path)
    assert {"phone.json", "state.json", "config.xml", "mic.der", "mic.key"} <= set(os.listdir(folder))
    os.utime(folder, ns=(1, 1))  # a write in the folder (a temporary file renamed) would change its mtime
    for path in folder.iterdir():
        os.utime(path, ns=(1, 1))
    saves = _saves_recorded(monkeypatch)
    before = _snapshot(folder)
    time.sleep(0.01)  # a chmod now would show in the folder's ctime
    phone = _phone(folder)
    assert phone.store.config is not None and phone.store.mic is not None
    phone = _phone(folder, Credential.of(*_ident("mic")))  # the MIC it holds, given again (fleet boot --lab)
    assert (_snapshot(folder), saves) == (before, [])


def test_a_new_folder_is_written_with_its_phone_json(tmp_path: Path) -> None:
    folder = tmp_path / "new"
    _phone(folder)
    assert json.loads((folder / "phone.json").read_text()) == {"mac": MAC, "profile": P.name}
    assert (folder / "state.json").is_file() and (folder.stat().st_mode & 0o777) == 0o700


def test_a_mic_given_other_than_the_flashs_is_written(tmp_path: Path) -> None:
    folder = _flash(tmp_path)
    _phone(folder, Credential.of(*_ident("other")))
    assert (folder / "mic.der").read_bytes() == certs.cert_der(_ident("other")[0])


def test_an_older_state_json_is_completed(tmp_path: Path) -> None:
    """A ``state.json`` recording no rule (an older phoneemu's) is written as a save writes it."""
    folder = _flash(tmp_path)
    state = json.loads((folder / "state.json").read_text())
    del state["config_rule"]
    (folder / "state.json").write_text(json.dumps(state))
    _phone(folder)
    assert json.loads((folder / "state.json").read_text())["config_rule"] == "flash-restore"


def test_a_flash_with_a_problem_is_settled_as_before(tmp_path: Path) -> None:
    """A damaged ``symmetric.key`` is noted and not loaded; the save at construction removes it, as before."""
    folder = _flash(tmp_path)
    (folder / "symmetric.key").write_bytes(b"\x01\x02\x03")  # no key size a phone takes
    phone = _phone(folder)
    assert not (folder / "symmetric.key").exists()
    assert phone.store.symmetric_key is None


def test_a_phone_json_of_another_form_and_a_folder_not_private_are_rewritten(tmp_path: Path) -> None:
    folder = _flash(tmp_path)
    (folder / "phone.json").write_text(json.dumps({"mac": MAC.lower(), "profile": P.name}, indent=2))
    folder.chmod(0o755)
    _phone(folder)
    assert json.loads((folder / "phone.json").read_text()) == {"mac": MAC, "profile": P.name}
    assert (folder.stat().st_mode & 0o777) == 0o700


def test_the_manual_key_it_holds_typed_again_writes_nothing(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``fleet boot --lab`` types each symmetric phone's key at every run: the key the flash holds already is
    not saved again (was: a whole save a phone); another key is."""
    sym = get_profile("cp-7962")
    folder = tmp_path / "sym"
    first = Phone(mac=MAC, profile=sym, flash=Flash(folder, profile=sym, durable=False), clock=lambda: NOW)
    first.set_symmetric_key("00112233445566778899aabbccddeeff")
    saves = _saves_recorded(monkeypatch)
    phone = Phone(mac=MAC, profile=sym, flash=Flash(folder, profile=sym, durable=False), clock=lambda: NOW)
    phone.set_symmetric_key("00112233445566778899AABBCCDDEEFF")
    assert saves == []
    phone.set_symmetric_key("ffeeddccbbaa99887766554433221100")
    assert saves == [folder]
    assert (folder / "symmetric.key").read_bytes() == bytes.fromhex("ffeeddccbbaa99887766554433221100")
