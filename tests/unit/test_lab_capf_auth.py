"""``lab phone add --capf`` / ``lab capf``: the CAPF authentication is an explicit choice, never a
silent null string."""

from __future__ import annotations

from pathlib import Path

import pytest

from phoneemu.cli import main
from phoneemu.lab.cluster import LabCluster

MAC = "0011223344AA"


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    LabCluster.init(tmp_path / "lab", seed=5, key_spec="rsa1024")
    return tmp_path / "lab"


def test_capf_without_an_auth_choice_is_refused(lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "phone", "add", str(lab), "--mac", MAC, "--capf", "install"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--auth-string DIGITS" in err and "--auth-mode null-string" in err
    assert MAC not in LabCluster.open(lab).state.phones
    assert main(["lab", "phone", "add", str(lab), "--mac", MAC]) == 0
    assert main(["lab", "capf", str(lab), "install", "--mac", MAC]) == 2
    assert "--auth-mode null-string" in capsys.readouterr().err


@pytest.mark.parametrize(("extra", "mode", "string"), [
    (["--auth-string", "123456"], 1, "123456"),
    (["--auth-mode", "null-string"], 2, None),
    (["--auth-mode", "2"], 2, None),
    (["--auth-mode", "mic"], 4, None),
])
def test_explicit_choices_are_taken(lab: Path, extra: list[str], mode: int, string: str | None) -> None:
    assert main(["lab", "phone", "add", str(lab), "--mac", MAC, "--capf", "install", *extra]) == 0
    ph = LabCluster.open(lab).state.phones[MAC]
    assert (ph.capf_operation, ph.capf_auth_mode, ph.auth_string) == ("install", mode, string)


def test_a_bad_auth_mode_name_is_a_usage_error(lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["lab", "phone", "add", str(lab), "--mac", MAC, "--capf", "install", "--auth-mode", "nul"])
    assert "null-string" in capsys.readouterr().err


def test_an_auth_string_after_a_null_string_operation_is_mode_1(lab: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """``--auth-string`` implies ``--auth-mode string`` whatever the phone's last operation used: after a
    null-string enrolment the phone kept mode 2, and the next install by string enrolled without it."""
    assert main(["lab", "phone", "add", str(lab), "--mac", MAC, "--capf", "install",
                 "--auth-mode", "null-string"]) == 0
    assert main(["lab", "capf", str(lab), "install", "--mac", MAC, "--auth-string", "123456"]) == 0
    ph = LabCluster.open(lab).state.phones[MAC]
    assert (ph.capf_auth_mode, ph.auth_string) == (1, "123456")
    assert LabCluster.open(lab).state.log[-1].args["auth_mode"] == 1  # the change log says so
    # another explicit mode beside it contradicts the implication: refused (next test)
    assert main(["lab", "capf", str(lab), "install", "--mac", MAC, "--auth-string", "9999",
                 "--auth-mode", "null-string"]) == 2
    assert LabCluster.open(lab).state.phones[MAC].auth_string == "123456"


@pytest.mark.parametrize("mode", ["mic", "lsc", "null-string", "none", "4", "0"])
@pytest.mark.parametrize("command", ["phone add", "capf"])
def test_an_auth_string_with_another_auth_mode_is_refused(lab: Path, mode: str, command: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """``--auth-string`` implies ``--auth-mode string``: with ``--auth-mode mic`` both were stored (mode 4,
    a string no phone is asked for). Refused, naming both; nothing stored."""
    if command == "capf":
        assert main(["lab", "phone", "add", str(lab), "--mac", MAC]) == 0
        argv = ["lab", "capf", str(lab), "install", "--mac", MAC]
    else:
        argv = ["lab", "phone", "add", str(lab), "--mac", MAC, "--capf", "install"]
    capsys.readouterr()
    assert main([*argv, "--auth-string", "1234", "--auth-mode", mode]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--auth-string implies --auth-mode string" in err, err
    ph = LabCluster.open(lab).state.phones.get(MAC)
    assert ph is None or (ph.auth_string, ph.capf_operation) == (None, None)
    assert main([*argv, "--auth-string", "1234", "--auth-mode", "string"]) == 0  # the same choice twice


def test_pki_encryption_and_an_ec_lsc_are_refused_together(lab: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    """PKI config encryption wraps the file key with RSA for the phone's certificate (spec §C.3): an EC
    LSC for an encrypted phone, or encryption for a phone whose LSC is EC, is refused up front (before:
    every CAPF outcome of that phone failed to record, REASON 7 at each retry)."""
    assert main(["lab", "phone", "add", str(lab), "--mac", MAC, "--encrypt", "pki"]) == 0
    capsys.readouterr()
    assert main(["lab", "capf", str(lab), "install", "--mac", MAC, "--auth-mode", "null-string",
                 "--lsc-key", "ec-p256"]) == 2
    err = capsys.readouterr().err
    assert f"phone {MAC}: its config is encrypted for its certificate" in err and "--lsc-key rsa2048" in err
    assert LabCluster.open(lab).state.phones[MAC].capf_operation is None  # nothing half-done
    assert main(["lab", "capf", str(lab), "install", "--mac", MAC, "--auth-mode", "null-string",
                 "--lsc-key", "rsa1024"]) == 0
    # a phone whose LSC is EC: encryption for its certificate is refused
    c = LabCluster.open(lab)
    c.add_phone("0011223344BB")
    from phoneemu.crypto.keys import KeySpec, generate_key, public_key_spki_der
    ec = generate_key(KeySpec.parse("ec-p256"))
    c.record_lsc("0011223344BB", c.issue_lsc("SEP0011223344BB", public_key_spki_der(ec.public_key())))
    capsys.readouterr()
    assert main(["lab", "encryption", str(lab), "--mac", "0011223344BB", "on"]) == 2
    assert "its LSC has an EC secp256r1 key: --mode symmetric" in capsys.readouterr().err
    # --symmetric-key implies --mode symmetric, and is refused with --mode pki
    key = "00112233445566778899AABBCCDDEEFF"
    assert main(["lab", "encryption", str(lab), "--mac", "0011223344BB", "on", "--symmetric-key", key]) == 0
    assert LabCluster.open(lab).state.phones["0011223344BB"].encrypt == "symmetric"
    assert main(["lab", "encryption", str(lab), "--mac", "0011223344BB", "on", "--mode", "pki",
                 "--symmetric-key", key]) == 2
    assert "--symmetric-key goes with --mode symmetric" in capsys.readouterr().err
