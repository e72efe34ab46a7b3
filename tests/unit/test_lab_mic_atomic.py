"""A phone's MIC goes whole with the lab's state, as the lab's own identities do: ``lab phone add`` killed
at any of its writes (a real SIGKILL in a forked child, :mod:`tests.killed_write_helpers`) leaves, when the
lab is next opened, the old state with the old MIC files (a new phone: no folder at all) or the new state
with the new MIC, its key the certificate's, the encrypted config wrapped to it; never a new key beside the
old certificate, nor a MIC the state does not record. A pair that does not match is refused by name; one
read between the key and its certificate is read whole."""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from phoneemu.crypto import certs, keys
from phoneemu.crypto.keys import PrivateKey
from phoneemu.errors import DecodeError, PhoneEmuError
from phoneemu.lab import cluster as cluster_module
from phoneemu.lab.cluster import LabCluster
from phoneemu.lab.pki import pending_identities
from tests.killed_write_helpers import killed_labs

NOW = 1_780_000_000
MAC = "001122334455"  # in the pristine lab
DONOR = "00AABBCCDD01"  # in the pristine lab: its MIC given to MAC
NEW = "00AABBCCDD99"  # not in the pristine lab


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small seeded lab (a MIC issued again is the same bytes) with two phones, MAC's config encrypted to
    its MIC."""
    lab = LabCluster.init(tmp_path_factory.mktemp("mics") / "pristine", seed=7, key_spec="rsa1024", now=NOW,
                          durable=False)
    lab.add_phone(MAC, encrypt="pki", now=NOW)
    lab.add_phone(DONOR, model="7962", now=NOW)
    return lab.root


def _mic_files(root: Path, mac: str) -> dict[str, bytes] | None:
    """The bytes of a phone's folder (None: no folder)."""
    folder = root / "phones" / mac
    if not folder.exists():
        return None
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _spki(key: PrivateKey) -> bytes:
    return keys.public_key_spki_der(key.public_key())


def _give_donor_mic(lab: LabCluster) -> None:
    lab.add_phone(MAC, mic=lab.phone_identity(DONOR), now=NOW + 60)


def _add_new_phone(lab: LabCluster) -> None:
    lab.add_phone(NEW, encrypt="pki", now=NOW + 60)


def _killed_at_every_write(pristine: Path, tmp_path: Path, operation: Callable[[LabCluster], None],
                           mac: str) -> None:
    """Kill ``operation`` at each of its writes on a copy of ``pristine``; each lab opened after is the old
    state with ``mac``'s old folder, or the new with the folder of the run to its end, whole on disk."""
    old_files = _mic_files(pristine, mac)
    done = tmp_path / "done"
    for killed in killed_labs(pristine, tmp_path, operation, done):
        new_files = _mic_files(done, mac)
        assert new_files is not None and new_files != old_files
        kill_at, work, opened = killed.kill_at, killed.work, killed.opened
        # the files themselves, as fleet boot --lab reads them (no reader's repair): old/old or new/new
        assert _mic_files(work, mac) == (new_files if killed.is_new else old_files), f"mixed: {kill_at}"
        if not killed.is_new and old_files is None:
            assert mac not in opened.state.phones, kill_at
            with pytest.raises(PhoneEmuError, match="no phone"):
                opened.phone_identity(mac)
            continue
        cert, key = opened.phone_identity(mac)
        assert keys.public_key_spki_der(certs.cert_public_key(cert)) == _spki(key), kill_at
        assert stat.S_IMODE((work / "phones" / mac / "mic.key").stat().st_mode) == 0o600, kill_at
        stub = (work / "tftp" / f"SEP{mac}.cnf.xml").read_bytes()  # encrypted to the MIC in force
        assert certs.fingerprint(cert, "md5").encode() in stub, kill_at


@pytest.mark.slow  # every write point of the operation: a few dozen forks
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_new_phone_killed_at_any_write_is_in_the_state_with_its_mic_or_nowhere(pristine: Path,
                                                                                tmp_path: Path) -> None:
    """Was: ``phones/<MAC>/mic.key`` and ``mic.pem`` written before the state's save: a kill after them left
    a phone folder with a MIC the state did not list (fleet boot --lab took it for a lab phone)."""
    _killed_at_every_write(pristine, tmp_path, _add_new_phone, NEW)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_phone_given_a_new_mic_killed_at_any_write_keeps_the_old_pair_or_the_new(pristine: Path,
                                                                                  tmp_path: Path) -> None:
    """Was: ``mic.key`` then ``mic.pem`` replaced in place before the save: a kill between them left the new
    key beside the old certificate (boot --lab booted a phone whose key its MIC does not certify), one after
    them the new MIC under the old state, its config still encrypted to the old one."""
    _killed_at_every_write(pristine, tmp_path, _give_donor_mic, MAC)


def test_a_save_that_fails_leaves_no_phone_folder(pristine: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A phone add whose save fails (a full disk) leaves no folder for the phone and nothing staged; the
    cluster that tried has no such phone."""
    root = tmp_path / "lab"
    shutil.copytree(pristine, root)
    lab = LabCluster.open(root, durable=False)

    def full(root: Path, state: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cluster_module, "save_state", full)
    with pytest.raises(OSError, match="No space"):
        _add_new_phone(lab)
    monkeypatch.undo()
    assert _mic_files(root, NEW) is None and not pending_identities(root).exists()
    with pytest.raises(PhoneEmuError, match="no phone"):
        lab.phone_identity(NEW)


def test_many_phones_are_put_in_place_with_their_keys_private(pristine: Path, tmp_path: Path) -> None:
    """phone add --count: every phone's MIC in its folder after the save (key 0600), read back as a pair."""
    root = tmp_path / "lab"
    shutil.copytree(pristine, root)
    macs = [f"0A00000000{i:02X}" for i in range(12)]
    LabCluster.open(root, durable=True).add_phones(macs, now=NOW + 60)
    opened = LabCluster.open(root, durable=False)
    assert not pending_identities(root).exists()
    for mac in macs:
        assert sorted(os.listdir(root / "phones" / mac)) == ["mic.key", "mic.pem"]
        assert stat.S_IMODE((root / "phones" / mac / "mic.key").stat().st_mode) == 0o600
        cert, key = opened.phone_identity(mac)
        assert keys.public_key_spki_der(certs.cert_public_key(cert)) == _spki(key)


def _new_key_beside_its_staged_cert(root: Path) -> tuple[Path, bytes]:
    """MAC's folder as a reader finds it between the key's rename and the certificate's: DONOR's key as
    ``mic.key``, its certificate staged as ``.mic.pem.staged``, the old ``mic.pem``; (folder, DONOR's
    certificate)."""
    folder, donor = root / "phones" / MAC, root / "phones" / DONOR
    shutil.copyfile(donor / "mic.key", folder / "mic.key")
    shutil.copyfile(donor / "mic.pem", folder / ".mic.pem.staged")
    return folder, (donor / "mic.pem").read_bytes()


def test_a_key_that_is_not_its_certificates_is_refused_by_name(pristine: Path, tmp_path: Path) -> None:
    """Was: the pair taken as found (a kill between the old code's two writes left one): boot --lab booted
    the phone ``OK`` with a key its MIC does not certify, to fail later at CAPF or an encrypted config."""
    root = tmp_path / "lab"
    shutil.copytree(pristine, root)
    shutil.copyfile(root / "phones" / DONOR / "mic.key", root / "phones" / MAC / "mic.key")
    with pytest.raises(DecodeError, match=r"not the private key of the MIC mic\.pem beside it") as raised:
        LabCluster.open(root, durable=False).phone_identity(MAC)
    assert raised.value.path == str(root / "phones" / MAC / "mic.key")


def test_a_pair_that_does_not_match_leaves_the_lab_operations_working(pristine: Path, tmp_path: Path) -> None:
    """The served files need the MIC's certificate alone: a lab whose phone holds another key still re-signs
    every file (a regeneration), the phone's encrypted config wrapped to its ``mic.pem``, and the key is
    refused afterwards all the same (no pair cached on the way)."""
    root = tmp_path / "lab"
    shutil.copytree(pristine, root)
    shutil.copyfile(root / "phones" / DONOR / "mic.key", root / "phones" / MAC / "mic.key")
    lab = LabCluster.open(root, durable=False)
    lab.regenerate("callmanager", now=NOW + 60)
    mic = certs.load_certs_pem((root / "phones" / MAC / "mic.pem").read_bytes(), source="mic.pem")[0]
    assert certs.fingerprint(mic, "md5").encode() in (root / "tftp" / f"SEP{MAC}.cnf.xml").read_bytes()
    with pytest.raises(DecodeError, match="not the private key"):
        lab.phone_identity(MAC)


@pytest.mark.parametrize("writable", [True, False])
def test_a_reader_between_the_key_and_its_certificate_reads_the_new_pair(pristine: Path, tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch,
                                                                         writable: bool) -> None:
    """The new key beside its staged certificate (boot --lab reading while an operation puts a MIC in place):
    the new pair, the certificate put in place; a lab that cannot be written (a read-only copy) is read all
    the same, the certificate left staged."""
    root = tmp_path / "lab"
    shutil.copytree(pristine, root)
    folder, donor_cert = _new_key_beside_its_staged_cert(root)
    if not writable:
        def read_only(src: object, dst: object) -> None:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))

        monkeypatch.setattr(os, "replace", read_only)
    cert, key = LabCluster.open(root, durable=False).phone_identity(MAC)
    monkeypatch.undo()
    assert keys.public_key_spki_der(certs.cert_public_key(cert)) == _spki(key)
    assert certs.cert_der(cert) == certs.cert_der(certs.load_certs_pem(donor_cert, source="donor")[0])
    assert (folder / ".mic.pem.staged").exists() is not writable
    assert ((folder / "mic.pem").read_bytes() == donor_cert) is writable
