"""A lab's persisted state damaged or cut short (red team R10): ``cluster.json`` missing a key every saved
state holds, a phone filed under another key, a value ``lab init`` or an operation would refuse; a key and
certificate that are not one pair, or a pair whose write was interrupted; a folder a killed ``lab init``
left. Each is one error naming the file and field, never a traceback later, and nothing is lost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from phoneemu.crypto import keys
from phoneemu.crypto.keys import KeySpec
from phoneemu.errors import DecodeError, PhoneEmuError
from phoneemu.lab.cluster import CLUSTER_KEYS, LabCluster
from phoneemu.lab.pki import LabPki
from phoneemu.lab.state import ClusterState, PhoneState, load_state
from tests.helpers import capf_store_stopped_at_its_certificate

NOW = 1_780_000_000
MAC = "001122334455"


def _doc() -> dict[str, object]:
    doc: dict[str, object] = json.loads(ClusterState(phones={MAC: PhoneState(mac=MAC)}, clock=NOW).to_json())
    return doc


@pytest.mark.parametrize("key", ["clock", "seed", "key_spec", "phones", "identity_generations", "log",
                                 "mixed_mode"])
def test_a_state_missing_a_key_every_save_writes_is_refused_naming_it(key: str) -> None:
    """Was taken with the default: a seeded lab cut short became unseeded, its clock 1970, mixed mode off."""
    doc = _doc()
    del doc[key]
    with pytest.raises(DecodeError, match=rf"missing keys \['{key}'\]") as info:
        ClusterState.from_json(json.dumps(doc))
    assert info.value.path == "cluster.json"


def test_a_key_added_since_the_first_state_may_be_missing() -> None:
    """A state saved before a field existed still loads (the field's default)."""
    doc = _doc()
    del doc["stopped"], doc["itl_capf"]
    assert ClusterState.from_json(json.dumps(doc)).itl_capf is True


@pytest.mark.parametrize(("edit", "where", "words"), [
    # the key names the phone's files: another MAC, or a path (was: taken)
    ({"phones": {"AABBCCDDEEFF": {"mac": MAC}}}, "phones.AABBCCDDEEFF", "not under its mac"),
    ({"phones": {"../x": {"mac": MAC}}}, "phones.../x", "not under its mac"),
    ({"phones": []}, "phones", "is not an object"),
    # values lab init / the operations refuse (were taken; a long name or rsa512 a traceback at the next key)
    ({"name": "a" * 100}, "name", "not a cluster name"),
    ({"name": "../../etc"}, "name", "not a cluster name"),
    ({"key_spec": "rsa512"}, "key_spec", "rsa2048"),
    ({"key_spec": "ec-p256"}, "key_spec", "rsa2048"),
    ({"host": "not a host"}, "host", "cannot be written into configs"),
    ({"host": ""}, "host", "cannot be written into configs"),
    ({"phones": {MAC: {"mac": MAC, "model": "../../x"}}}, f"phones.{MAC}:model", "not a phone model"),
    ({"phones": {MAC: {"mac": MAC, "auth_string": "abc"}}}, f"phones.{MAC}:auth_string", "4..16 digits"),
])
def test_a_value_the_lab_would_refuse_is_refused_on_load(edit: dict[str, object], where: str,
                                                          words: str) -> None:
    doc = _doc()
    doc.update(edit)
    with pytest.raises(DecodeError, match=words) as info:
        ClusterState.from_json(json.dumps(doc))
    assert info.value.path == f"cluster.json:{where}", str(info.value)


def test_the_state_takes_the_cluster_keys_lab_init_takes() -> None:
    from phoneemu.lab import state

    assert state._CLUSTER_KEYS == CLUSTER_KEYS


@pytest.fixture
def lab(tmp_path: Path) -> LabCluster:
    return LabCluster.init(tmp_path / "lab", key_spec="rsa1024", now=NOW, durable=False)


def test_an_operation_on_a_lab_whose_name_was_edited_is_one_line(lab: LabCluster) -> None:
    """Was a ValueError traceback out of ``lab regenerate`` (the name in the new certificate's subject)."""
    path = lab.root / "cluster.json"
    path.write_text(path.read_text().replace('"name": "lab"', '"name": "' + "n" * 100 + '"'))
    run = subprocess.run([sys.executable, "-m", "phoneemu", "lab", "regenerate", str(lab.root), "tvs"],
                         check=False, capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert run.stderr.count("\n") == 1 and f"{path}:name:" in run.stderr


@pytest.mark.parametrize("name", ["capf", "mfgca", "callmanager"])
def test_a_key_that_is_not_its_certificates_is_refused_naming_both(lab: LabCluster, name: str) -> None:
    """Was taken: a CAPF or manufacturing CA key of another pair signed LSCs and MICs no phone could
    verify, in silence."""
    pki = lab.pki
    pki.key_path(name).write_bytes(pki.key_path("tvs").read_bytes())
    fresh = LabPki(lab.root, seed=None, key_spec=KeySpec.parse("rsa1024"), cluster_name="lab")
    with pytest.raises(DecodeError, match="does not belong to the certificate") as info:
        fresh.get(name)
    assert str(pki.key_path(name)) in str(info.value) and str(pki.cert_path(name)) in str(info.value)


def test_a_pair_written_up_to_its_key_is_whole_when_read(lab: LabCluster, monkeypatch: pytest.MonkeyPatch) \
        -> None:
    """A store killed once the new key is in place and before its certificate: the next read has the new
    pair (was: the new key beside the old certificate, an identity lost)."""
    spec = KeySpec.parse("rsa1024")
    pki = LabPki(lab.root, seed=None, key_spec=spec, cluster_name="lab")
    capf_store_stopped_at_its_certificate(pki, monkeypatch, now=NOW)
    new_key = keys.load_private_key_pem(pki.key_path("capf").read_bytes())
    ident = LabPki(lab.root, seed=None, key_spec=spec, cluster_name="lab").get("capf")
    spki = keys.public_key_spki_der
    assert spki(ident.key.public_key()) == spki(new_key.public_key()) == spki(ident.cert.public_key())
    assert LabCluster.open(lab.root).pki.get("capf").cert == ident.cert


def test_a_folder_a_killed_lab_init_left_says_so_both_ways(tmp_path: Path) -> None:
    """``lab init`` writes cluster.json last: killed before, ``lab show`` said "create one with lab init"
    and ``lab init`` "is not empty", each sending the user to the other."""
    root = tmp_path / "lab"
    (root / "private").mkdir(parents=True, mode=0o700)
    (root / "certs").mkdir()
    (root / "private" / "capf.key").write_text("x")
    with pytest.raises(DecodeError, match="a lab init that did not finish") as shown:
        load_state(root)
    with pytest.raises(PhoneEmuError, match="a lab init that did not finish"):
        LabCluster.check_new_root(root)
    assert "Remove the folder" in str(shown.value)
    assert (root / "private" / "capf.key").read_text() == "x"  # nothing removed
