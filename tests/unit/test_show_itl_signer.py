"""``lab show --itl`` / ``--ctl`` says "verified" only as a phone verifies (spec §B.4, §G.3 step 1: issuer +
serial), with ``inspect``'s own check (:func:`phoneemu.inspection.own_signature_check`).

Before: the served list was "verified successfully" when its signature verified with the SAST record
found by the signer's serial only (``TrustList.verify_self``), though that record names another issuer
than the header: a phone finds no record naming the signer and refuses the list as an update
(``G.3.1-no-signer-record``) and, holding it, the next one that signer signs
(``G.3.5-reject-unknown-signer``) — while ``inspect`` of the same file said so.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from phoneemu.cli import main
from phoneemu.formats import trustlist
from phoneemu.formats.trustlist import Role, TrustRecord
from phoneemu.inspection import inspect_bytes
from phoneemu.lab.cluster import LabCluster
from tests.helpers import pristine_lab
from tests.signer_helpers import file_signer, self_signed

NOW = 1_780_000_000
OTHER_ISSUER = "CN=Another CA;O=Elsewhere"

base_lab, lab = pristine_lab("show-itl-signer", now=NOW, phones={})


def _trust_list(kind: str, *, issuer: str | None) -> bytes:
    """A ``kind`` list signed by a SAST whose own record names it by ``issuer`` (None: no ISSUER_NAME)."""
    identity = self_signed("CN=show-itl-signer;O=phoneemu", seed="show-itl-signer", serial=0x5151)
    sast = replace(TrustRecord.from_certificate(identity[1], Role.SAST), issuer=issuer)
    other = self_signed("CN=show-itl-tftp;O=phoneemu", seed="show-itl-tftp", serial=0x5152)[1]
    return trustlist.build(kind=kind, records=[sast, TrustRecord.from_certificate(other, Role.CCM_TFTP)],
                           signer=file_signer(identity), timestamp=NOW)  # type: ignore[arg-type]


def _served(lab: Any, kind: str, data: bytes) -> LabCluster:
    """The lab serving ``data`` as its ``kind`` file, opened afresh (the served file is read from disk)."""
    (Path(lab.root) / "tftp" / f"{kind}File.tlv").write_bytes(data)
    return LabCluster.open(lab.root)


def _inspect_check(data: bytes, kind: str) -> dict[str, Any]:
    check = inspect_bytes(data, name=f"{kind}File.tlv")["checks"][0]
    assert check["check"] == "signature"
    return dict(check)


@pytest.mark.parametrize("kind", ["ITL", "CTL"])
def test_show_of_a_list_whose_signer_is_found_by_serial_only_says_what_inspect_says(
        lab: Any, kind: str) -> None:
    data = _trust_list(kind, issuer=OTHER_ISSUER)
    cluster = _served(lab, kind, data)
    text = cluster.show_itl() if kind == "ITL" else cluster.show_ctl()
    check = _inspect_check(data, kind)
    assert check["ok"] is False and check["reason"] == "unknown-signer", check
    assert "verified successfully" not in text, text
    last = text.splitlines()[-1]
    assert last == f"The {kind} file could not be verified (unknown-signer): {check['detail']}", last
    assert "G.3.1-no-signer-record" in last and "G.3.5-reject-unknown-signer" in last
    assert "This etoken was used to sign" in text  # its key did sign it, as inspect says too


@pytest.mark.parametrize("issuer", ["absent", "its own"])
def test_show_of_a_list_whose_record_names_its_signer_is_still_verified(lab: Any, issuer: str) -> None:
    """No ISSUER_NAME, or the signer's own issuer: a phone takes the record as the signer."""
    own = "CN=show-itl-signer;O=phoneemu" if issuer == "its own" else None
    data = _trust_list("ITL", issuer=own)
    assert _inspect_check(data, "ITL")["ok"] is True
    text = _served(lab, "ITL", data).show_itl()
    assert text.splitlines()[-1] == "The ITL file was verified successfully.", text


def test_lab_show_itl_cli_says_it(lab: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _served(lab, "ITL", _trust_list("ITL", issuer=OTHER_ISSUER))
    assert main(["lab", "show", str(lab.root), "--itl"]) == 0
    out = capsys.readouterr().out
    assert "verified successfully" not in out
    assert "The ITL file could not be verified (unknown-signer): the signature verifies with SAST record " \
           "#1, found by its serial only" in out, out
