"""``lab phone add`` / ``lab encryption``: the manual config key the lab encrypts with is one the phone can
hold (spec §C.5), and an encryption the phone's model cannot decrypt is said.

Rules: 32 zero digits CLEAR a phone's manual key (§C.5: the phone then never asks for its ``.enc.sgn``
and takes XmlDefault), so they are refused as the key to encrypt with, naming the option and §C.5; a key
of a size the phone's model does not take (64 digits, AES-256: every profile takes 128 bits) is refused by
the trust store's own rule (:meth:`phoneemu.phone.store.TrustStore.set_symmetric_key`); ``--encrypt pki``
on a model with no PKI config encryption is a one-line warning (the lab may rehearse the failure);
``--symmetric-key`` with ``--encrypt pki`` is refused (as ``lab encryption --mode pki`` refuses it), and
without ``--encrypt`` on a phone not encrypting with it, a one-line note: stored, not used."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster

MAC = "0011223344C5"
ZERO = "0" * 32
KEY = "00112233445566778899aabbccddeeff"


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    LabCluster.init(tmp_path / "lab", seed=6, key_spec="rsa1024")
    return tmp_path / "lab"


def _add(lab: Path, *extra: str) -> int:
    return main(["lab", "phone", "add", str(lab), "--mac", MAC, *extra])


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("model", ["7942", "7962", "8861"])
def test_an_all_zero_key_to_encrypt_with_is_refused(lab: Path, model: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Was accepted: the lab encrypted with a key that clears the phone's, the phone took XmlDefault."""
    assert _add(lab, "--model", model, "--encrypt", "symmetric", "--symmetric-key", ZERO) == 2
    err = _one_line(capsys)
    assert "--symmetric-key" in err and "§C.5" in err and "zero" in err, err
    assert MAC not in LabCluster.open(lab).state.phones


def test_an_all_zero_key_is_refused_by_lab_encryption_too(
        lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _add(lab, "--model", "7942") == 0
    capsys.readouterr()
    assert main(["lab", "encryption", str(lab), "--mac", MAC, "on", "--symmetric-key", ZERO]) == 2
    err = _one_line(capsys)
    assert "--symmetric-key" in err and "§C.5" in err, err
    assert LabCluster.open(lab).state.phones[MAC].encrypt is None


def test_an_all_zero_key_for_a_phone_already_encrypting_with_its_key_is_refused(
        lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _add(lab, "--model", "7942", "--encrypt", "symmetric", "--symmetric-key", KEY) == 0
    capsys.readouterr()
    assert _add(lab, "--symmetric-key", ZERO) == 2
    assert "§C.5" in _one_line(capsys)
    assert LabCluster.open(lab).state.phones[MAC].symmetric_key == KEY


@pytest.mark.parametrize("model", ["7942", "7962"])
def test_a_256_bit_key_for_a_model_taking_128_bit_keys_is_refused(lab: Path, model: str,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Was accepted: the phone cannot hold it (its profile takes 128-bit keys) and never reads its config."""
    assert _add(lab, "--model", model, "--encrypt", "symmetric", "--symmetric-key", "ab" * 32) == 2
    err = _one_line(capsys)
    assert "--symmetric-key" in err and "256-bit key" in err and "128-bit" in err, err
    assert MAC not in LabCluster.open(lab).state.phones


def test_a_model_change_that_cannot_take_the_key_is_refused(
        lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown model (no profile): the key is taken; a later --model that cannot hold it is refused."""
    assert _add(lab, "--model", "9999", "--encrypt", "symmetric", "--symmetric-key", "ab" * 32) == 0
    capsys.readouterr()
    assert _add(lab, "--model", "7942") == 2
    assert "256-bit key" in _one_line(capsys)
    assert LabCluster.open(lab).state.phones[MAC].model == "9999"


def test_a_128_bit_key_is_taken(
        lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _add(lab, "--model", "7942", "--encrypt", "symmetric", "--symmetric-key", KEY) == 0
    assert "warning" not in capsys.readouterr().err
    assert LabCluster.open(lab).state.phones[MAC].manual_key() == KEY


def test_pki_encryption_on_a_model_without_it_is_a_warning(
        lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A cp-7942-symmetric decrypts only with its manual key (spec §C.5): said in one line, not refused."""
    assert _add(lab, "--model", "7942", "--encrypt", "pki") == 0
    err = _one_line(capsys)
    assert "warning" in err and "7942" in err and "--encrypt symmetric" in err, err
    assert main(["lab", "encryption", str(lab), "--mac", MAC, "on", "--mode", "pki"]) == 0
    assert "warning" in _one_line(capsys)


def test_pki_encryption_on_a_model_with_it_says_nothing(
        lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _add(lab, "--model", "7962", "--encrypt", "pki") == 0
    assert capsys.readouterr().err == ""


def test_a_key_with_pki_encryption_is_refused(
        lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As ``lab encryption --mode pki --symmetric-key`` is: was stored and never used."""
    assert _add(lab, "--model", "7962", "--encrypt", "pki", "--symmetric-key", KEY) == 2
    assert "--symmetric-key goes with --encrypt symmetric" in _one_line(capsys)
    assert MAC not in LabCluster.open(lab).state.phones


def test_a_key_without_encryption_is_a_note(
        lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Stored for a later ``lab encryption ... on --mode symmetric``; said, not silent."""
    assert _add(lab, "--model", "7942", "--symmetric-key", KEY) == 0
    err = _one_line(capsys)
    assert "note" in err and "not encrypted" in err and "lab encryption" in err, err
    assert LabCluster.open(lab).state.phones[MAC].symmetric_key == KEY
