"""Review of the lab state's checks and the PKI's staged certificate (3aab51c).

``lab init --host`` took any host before it took addresses and DNS names only (e7fed7c): ``0.0.0.0``,
``[::1]``, ``lab:6970`` made labs that served. The state's host check refused them at every command —
``lab show``, each operation, and ``lab serve --host ADDRESS``, the way to a good host. They open again;
what no phoneemu stored (empty, a space inside, surrounding whitespace) is still refused.

A certificate staged by a store that did not finish is read from a lab this process cannot write, and a
store whose staged certificate another process's read put in place succeeds.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from phoneemu.crypto import keys
from phoneemu.crypto.keys import KeySpec
from phoneemu.errors import DecodeError
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.pki import LabPki
from phoneemu.lab.state import ClusterState, PhoneState, load_state
from tests.helpers import capf_store_stopped_at_its_certificate

NOW = 1_780_000_000
MAC = "001122334455"


def _doc(host: str) -> str:
    doc = json.loads(ClusterState(phones={MAC: PhoneState(mac=MAC)}, clock=NOW).to_json())
    doc["host"] = host
    return json.dumps(doc)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "*", "[::]", "[::1]", "[::1]:2445", "lab:6970",
                                  "127.0.0.1:6970", "fe80::1%eth0", "cucm.example.com:69"])
def test_a_host_an_older_lab_init_took_still_loads(host: str) -> None:
    assert ClusterState.from_json(_doc(host)).host == host


@pytest.mark.parametrize("host", ["", " 10.0.0.1", "not a host", "[::1", "[::1]x", "lab:port", "lab:99999",
                                  ":6970", "a/b", "x" * 300])
def test_a_host_no_phoneemu_stored_is_still_refused(host: str) -> None:
    with pytest.raises(DecodeError) as info:
        ClusterState.from_json(_doc(host))
    assert info.value.path == "cluster.json:host"


def test_an_older_lab_with_a_wildcard_host_opens_and_takes_a_good_one(tmp_path: Path) -> None:
    """As ``lab serve --host 127.0.0.1`` does with it (was: "cluster.json:host: host '0.0.0.0' cannot be
    written into configs", the lab unusable)."""
    lab = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW, durable=False)
    path = lab.root / "cluster.json"
    path.write_text(path.read_text().replace('"host": "127.0.0.1"', '"host": "0.0.0.0"'))
    old = LabCluster.open(lab.root)
    assert old.state.host == "0.0.0.0"
    assert old.set_host("127.0.0.1", now=NOW + 1)
    assert LabCluster.open(lab.root).state.host == "127.0.0.1"


# --- the staged certificate (LabPki.store / get, 3aab51c) ---------------------------------------------------


def _pki(root: Path) -> LabPki:
    return LabPki(root, seed=None, key_spec=KeySpec.parse("rsa1024"), cluster_name="lab")


def _key_in_place_certificate_staged(root: Path, monkeypatch: pytest.MonkeyPatch) -> LabPki:
    """A store of ``capf`` stopped once its new key is written, its certificate still staged."""
    pki = _pki(root)
    capf_store_stopped_at_its_certificate(pki, monkeypatch, now=NOW)
    return pki


def test_a_lab_that_cannot_be_written_reads_a_staged_certificate(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only copy of a lab (or another user's) holding a new key beside its staged certificate: get
    returns the pair, the certificate left staged (was: ``PermissionError`` / ``EROFS`` out of get: the lab
    unreadable)."""
    lab = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW, durable=False)
    pki = _key_in_place_certificate_staged(lab.root, monkeypatch)
    staged = pki.staged_cert_path("capf")
    assert staged.exists()

    def read_only(src: object, dst: object) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))

    monkeypatch.setattr(os, "replace", read_only)
    ident = _pki(lab.root).get("capf")
    spki = keys.public_key_spki_der
    assert spki(ident.cert.public_key()) == spki(ident.key.public_key())
    assert staged.exists()


def test_a_store_whose_certificate_another_process_put_in_place_succeeds(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) \
        -> None:
    """Another process (``lab serve``'s first use of an identity) reads it between the store's key and its
    certificate: its get puts the staged certificate in place; the store then finds it there (was: "cannot
    write: No such file or directory", the operation failed with its new key written)."""
    lab = LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW, durable=False)
    pki = _pki(lab.root)
    real_write = keys.write_private_key
    read: list[object] = []

    def write_then_read(path: Path, key: object, **kw: object) -> None:
        real_write(path, key, **kw)  # type: ignore[arg-type]
        if path == pki.key_path("capf") and not read:
            read.append(_pki(lab.root).get("capf"))

    monkeypatch.setattr(keys, "write_private_key", write_then_read)
    made = pki.create("capf", now=NOW, generation=1)
    assert len(read) == 1
    assert not pki.staged_cert_path("capf").exists()
    assert _pki(lab.root).get("capf").cert == made.cert


# --- a folder without cluster.json (load_state, 3aab51c) ----------------------------------------------------


@pytest.mark.parametrize("mine", ["notes.txt", ".git", "Makefile"])
def test_a_users_folder_with_a_certs_folder_is_not_told_to_be_removed(tmp_path: Path, mine: str) -> None:
    """``lab show ~/project`` — a folder of the user's holding ``certs/`` (or ``private/``) beside its own
    files — is not a lab init that did not finish: the message is the plain one, no "Remove the folder"
    (was: "a lab init that did not finish ...? Remove the folder and run lab init again")."""
    root = tmp_path / "project"
    (root / "certs").mkdir(parents=True)
    (root / "private").mkdir()
    (root / mine).write_text("mine")
    with pytest.raises(DecodeError) as info:
        load_state(root)
    assert "Remove the folder" not in info.value.message and "not a lab cluster" in info.value.message


def test_what_a_killed_lab_init_leaves_is_still_said_as_one(tmp_path: Path) -> None:
    """The folders it makes, a served file's folder, its lock and a temporary state file: said as before."""
    root = tmp_path / "lab"
    for name in ("private", "certs", "tftp"):
        (root / name).mkdir(parents=True)
    (root / ".lab.lock").write_bytes(b"")
    (root / ".cluster.json.tmp123-456").write_bytes(b"{")
    with pytest.raises(DecodeError, match=r"a lab init that did not finish.*Remove the folder"):
        load_state(root)
