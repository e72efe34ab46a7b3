"""Red team of the phone's acceptance rules (spec §G.3 step 2, §G.4): a trust-list record whose PUBLIC_KEY
(tag 7) is not its certificate's key.

The hole: the phone verified a file signature with the record's tag 7 while it checked the validity of the
record's certificate (tag 9). A file signed by the tag-7 key — e.g. that of an expired certificate — was
accepted under the valid certificate's dates, and one signed by the certificate's own key was refused.
§G.3 step 2 verifies "with [the signer certificate]": the certificate's key now (phoneemu.phone.rules
``_record_key``; ``G.3-bad-signature`` / ``G.4-bad-signature`` for the tag-7 key), as TLS peers are already
matched (certificate first, ``record_matches_peer``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from phoneemu.crypto import keys
from phoneemu.errors import VerifyReason
from phoneemu.formats import trustlist
from phoneemu.formats.trustlist import Role, TrustRecord
from phoneemu.phone import rules
from phoneemu.phone.events import Decision
from tests.unit.test_acceptance_audit import _signed_naming
from tests.unit.test_rules import CFG, NOW, P8861, Ident, expect, ident, install, new_store, tl, xml


def _records(recs: Sequence[TrustRecord]) -> bytes:
    return b"".join(trustlist.build_record(r) for r in recs)


def _with_tag7_of(rec: TrustRecord, other: Ident) -> TrustRecord:
    """``rec`` (certificate, serial, issuer of its own) with the PUBLIC_KEY (tag 7) of ``other``."""
    return replace(rec, public_key=keys.encode_record_public_key(other.key.public_key()))


def _expired(name: str) -> Ident:
    """A certificate that expired ten days before NOW (same shape as :func:`tests.unit.test_rules.ident`)."""
    return ident(name, before=3650, after=-10)


# --------------------------------------------------------------------------- 1. tag 7 vs the certificate
def test_an_itl_signed_by_the_tag7_key_of_a_sast_record_is_refused_and_its_certificate_key_signs() -> None:
    """The installed SAST record carries a valid certificate but the tag 7 of an expired one. Before: the
    file signed by the expired key was taken (G.3.3), the one signed by the certificate's key refused."""
    sast, stale, cm = ident("rt-sast"), _expired("rt-sast-stale"), ident("cm-a")
    s = new_store()
    mixed = _with_tag7_of(sast.record(Role.SAST), stale)
    install(s, "ITL", tl("ITL", sast, [mixed, cm.record(Role.CCM_TFTP)]))
    body = [sast.record(Role.SAST), cm.record(Role.CCM_TFTP)]
    by_stale = _signed_naming(sast, stale, _records(body), filename="ITLFile.tlv")
    d = rules.decide_trust_list(s, by_stale, kind="ITL", profile=P8861, now=NOW)
    expect(d, "G.3-bad-signature", False, VerifyReason.BAD_SIGNATURE)
    by_cert = _signed_naming(sast, sast, _records(body), filename="ITLFile.tlv")
    expect(rules.decide_trust_list(s, by_cert, kind="ITL", profile=P8861, now=NOW),
           "G.3.3-signed-by-itl-sast", True)


@pytest.mark.parametrize("artefact", ["config", "static"])
def test_a_config_or_static_file_signed_by_the_tag7_key_of_the_tftp_record_is_refused(artefact: str) -> None:
    """§G.4 (b): the CCM+TFTP record's certificate is valid, its tag 7 is an expired key's. Before: a file
    signed by that expired key was taken (G.4-signed-by-itl-tftp)."""
    rec, cm, stale = ident("recovery-a"), ident("cm-a"), _expired("rt-cm-stale")
    s = new_store()
    install(s, "ITL", tl("ITL", rec, [rec.record(Role.SAST), _with_tag7_of(cm.record(Role.CCM_TFTP), stale)]))
    name = CFG + ".sgn" if artefact == "config" else "g3-tones.xml.sgn"

    def decide(by: Ident) -> Decision:
        data = _signed_naming(cm, by, xml(), filename=name)
        if artefact == "config":
            return rules.decide_config(s, name, data, profile=P8861, now=NOW)
        return rules.decide_static_file(s, name, data, profile=P8861, now=NOW)

    expect(decide(stale), "G.4-bad-signature", False, VerifyReason.BAD_SIGNATURE)
    expect(decide(cm), "G.4-signed-by-itl-tftp", True)
