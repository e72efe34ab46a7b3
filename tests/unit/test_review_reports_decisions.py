"""The decision a failed ``config`` check names (``checks.decision_about``) is the one the boot's config
outcome came from, in the order phone/boot.py records the decisions of a short config (§G.12)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from phoneemu.errors import VerifyReason
from phoneemu.phone.events import Decision
from phoneemu.scenario import checks

ENC = "SEP0A0000000D01.cnf.xml.enc.sgn"
SGN = "SEP0A0000000D01.cnf.xml.sgn"


def _config(rule: str, *, file: str = SGN, code: VerifyReason | None = None, installed: bool = False,
            action: str | None = None) -> Decision:
    return Decision(rule=rule, accepted=code is None, reason=f"{rule} reason", file=file, kind="config",
                    reason_code=code, action=action, artefact=object() if installed else None)


def _phone(outcome: str, *decisions: Decision) -> Any:
    return SimpleNamespace(report=SimpleNamespace(decisions=decisions, config=outcome), https=None, sip=None,
                           call=None)


def test_a_failed_decryption_stands_against_the_short_config_read_after_it() -> None:
    """boot.config_round: the encrypted config does not decrypt (start CAPF), the short config is read and
    says "fetch the encrypted config", and the boot rejects the config with the decryption failure (was:
    the short config's accepted §G.12 step, the last config decision, named for ``config: accepted``)."""
    failed = _config("G.12.3-decrypt-failed", file=ENC, code=VerifyReason.DECRYPT_FAILED, action="start-capf")
    phone = _phone("rejected", failed, _config("G.4-signed-by-itl-tftp"),
                   _config("G.12.2-cert-hash-match", action="fetch-encrypted"))
    assert checks.decision_about("config", phone) == failed.summary()


def test_an_accepted_config_names_the_decision_that_installed_it() -> None:
    """boot.short_config: the config accepted (it carries the config installed), then its §G.12.1 step
    recorded after it (was: the step named, not the signature decision that installed the config)."""
    installed = _config("G.4-signed-by-itl-tftp", installed=True)
    phone = _phone("accepted", installed, _config("G.12.1-plain-config"))
    assert checks.decision_about("config", phone) == installed.summary()


def test_other_config_outcomes_keep_the_last_config_decision() -> None:
    refused = _config("G.12.2-cert-hash-mismatch", code=VerifyReason.HASH_MISMATCH, action="start-capf")
    phone = _phone("rejected", _config("G.4-signed-by-itl-tftp"), refused)
    assert checks.decision_about("config", phone) == refused.summary()
    probe = _config("G.10-no-config", file="XmlDefault.cnf.xml")
    assert checks.decision_about("config", _phone("none", probe)) == probe.summary()
