"""Red team R9 of the phone's flash and ``phoneemu phone``: what a damaged flash, a folder that is not a
flash and two processes at once must not do (:mod:`phoneemu.phone.flash` rules).

* A damaged MIC certificate (or key) beside a good half: ``phone set-key``, ``phone erase``, ``phone
  factory-reset`` (and every boot) saved the flash and removed the pair — the phone's private key lost
  without a word. The files now stay, said at each load, until replaced.
* ``phone show --flash DIR`` (every load) removed any ``.*.tmp`` file of DIR: a user's, in a folder that
  is not a flash. Only the flash's own temporary names are removed now.
* A second process loading a flash while the first saved it undid the first's pair replacement (its save
  failed). Loads and saves now hold the folder's ``flock``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from functools import cache
from pathlib import Path

import pytest
from cryptography import x509

from phoneemu.cli import main
from phoneemu.crypto import certs
from phoneemu.crypto.keys import KeySpec, PrivateKey, generate_key
from phoneemu.phone import flash as flash_mod
from phoneemu.phone.flash import Flash
from phoneemu.phone.profile import get_profile
from phoneemu.phone.store import Credential, InternCache, TrustStore

NOW = 1_800_000_000
P = get_profile("cp-8861")
MAC = "001122334455"


@cache
def _ident(name: str) -> tuple[x509.Certificate, PrivateKey]:
    key = generate_key(KeySpec(kind="rsa", bits=1024), unsafe_seed=f"r9-{name}")
    t = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    req = certs.CertRequest(subject=f"CN={name}", public_key=key.public_key(), serial=len(name) + 7,
                            not_before=t - dt.timedelta(days=1), not_after=t + dt.timedelta(days=900))
    return certs.issue_certificate(req, issuer_key=key), key


def _flash(tmp_path: Path) -> Path:
    """A phone's flash (MIC and LSC, phone.json) as ``boot --flash`` leaves one."""
    d = tmp_path / "ph"
    store = TrustStore(profile=P, mic=Credential.of(*_ident("mic")), intern=InternCache())
    store.lsc = Credential.of(*_ident("lsc"))
    Flash(d, profile=P).save(store)
    (d / "phone.json").write_text(json.dumps({"mac": MAC, "profile": P.name}))
    return d


@pytest.mark.parametrize("command", [["set-key", "00" * 16], ["erase"], ["factory-reset"]])
@pytest.mark.parametrize(("damaged", "how"), [("mic.der", b"garbage"), ("mic.key", b""), ("mic.der", None)])
def test_a_damaged_mic_half_never_costs_the_other_half(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       command: list[str], damaged: str,
                                                       how: bytes | None) -> None:
    """(None: a folder where the file goes.) The command does what it says, and both MIC files are as they
    were: the good half byte for byte. Was: the good half removed (the folder: the certificate removed,
    then "mic.key: Is a directory", exit 2)."""
    d = _flash(tmp_path)
    before = {n: (d / n).read_bytes() for n in ("mic.der", "mic.key")}
    (d / damaged).unlink()
    if how is None:
        (d / damaged).mkdir()
    else:
        (d / damaged).write_bytes(how)
    assert main(["phone", command[0], "--flash", str(d), *command[1:]]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out, (out, err)
    good = "mic.key" if damaged == "mic.der" else "mic.der"
    assert (d / good).read_bytes() == before[good]
    assert (d / damaged).is_dir() if how is None else (d / damaged).read_bytes() == how
    again = Flash(d, profile=P)
    assert again.load().mic is None
    assert [p for p in again.problems if p.startswith("mic.")], again.problems  # said again, each load


def test_a_lone_lsc_key_is_still_removed_by_the_next_save(tmp_path: Path) -> None:
    """An LSC key without its certificate is an interrupted removal (the certificate goes first): the next
    save finishes it, as before."""
    d = _flash(tmp_path)
    (d / "lsc.der").unlink()
    fl = Flash(d, profile=P)
    store = fl.load()
    assert store.lsc is None and store.mic is not None
    fl.save(store)
    assert not (d / "lsc.key").exists()


def test_a_load_removes_its_own_temporary_files_only(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """``phone show --flash ~`` must not delete the user's ``~/.notes.tmp``; a crash's leftovers under the
    flash's own names go. Was: every ``.*.tmp`` of the folder removed."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".notes.tmp").write_text("mine")
    (home / ".bash_history.tmp").write_text("mine too")
    assert main(["phone", "show", "--flash", str(home)]) == 0
    capsys.readouterr()
    assert (home / ".notes.tmp").read_text() == "mine" and (home / ".bash_history.tmp").exists()
    d = _flash(tmp_path)
    for leftover in (".ITLFile.tlv.tmp", ".mic.key.tmp", "..lsc.key.new.tmp", ".phone.json.tmp"):
        (d / leftover).write_bytes(b"half")
    (d / ".notes.tmp").write_text("mine")
    Flash(d, profile=P).load()
    assert sorted(p.name for p in d.iterdir() if p.name.startswith(".")) == [".notes.tmp"]


def test_a_load_while_another_process_saves_waits_for_it(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A second ``boot --flash`` of the same folder loads it while the first is replacing the LSC (its
    pair staged, not yet renamed): the load must not settle the first's staged files under it. It waits
    for the save (here: at most 0.05 s, then says the flash is in use); the save completes with the new
    pair. Was: the load removed the staged pair as an interrupted one and the save failed
    (FileNotFoundError) — the new LSC lost."""
    monkeypatch.setattr(flash_mod, "LOCK_WAIT", 0.05, raising=False)
    d = _flash(tmp_path)
    fl = Flash(d, profile=P)
    store = fl.load()
    new = Credential.of(*_ident("lsc-new"))
    store.lsc = new
    real_replace = os.replace
    seen: list[str] = []

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        if Path(dst).name == "lsc.der" and not seen:  # the pair's commit point, both halves staged
            other = Flash(d, profile=P)
            try:
                other.load()
                seen.append("loaded")
            except OSError as exc:
                seen.append(str(exc))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    fl.save(store)
    monkeypatch.undo()
    assert len(seen) == 1 and "flash in use" in seen[0] and str(d) in seen[0], seen
    back = Flash(d, profile=P)
    assert back.load().lsc == new and back.problems == []


@pytest.mark.parametrize("command", [["erase"], ["factory-reset"], ["set-key", "00" * 16]])
def test_a_folder_that_is_not_a_flash_is_said_and_left_alone(tmp_path: Path, command: list[str],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """``phone erase --flash ~`` by mistake: a folder with no phone.json naming a MAC is not a phone's flash;
    one line says so, and its ``config.xml``, ``state.json``, ``.x.tmp`` stay. Was: "DIR: DIR: no phone.json
    naming the phone's MAC; give --mac" (the path twice, an option phone commands do not have)."""
    home = tmp_path / "home"
    home.mkdir()
    mine = {"config.xml": b"<mine/>", "state.json": b"{}", ".x.tmp": b"x", "ITLFile.tlv": b"mine"}
    for name, data in mine.items():
        (home / name).write_bytes(data)
    assert main(["phone", command[0], "--flash", str(home), *command[1:]]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (f"phoneemu phone {command[0]}: {home}: not a phone's flash (no phone.json "
                                 "naming its MAC; boot --flash DIR makes one); nothing changed\n"), err
    assert {p.name: p.read_bytes() for p in home.iterdir()} == mine
