"""CTL/ITL edge cases (spec §B.4, §B.7): records sharing the signer's issuer + serial, what is "empty"."""

from __future__ import annotations

import datetime as dt
from functools import cache

import pytest

from phoneemu.crypto import certs
from phoneemu.crypto.keys import KeySpec, generate_key
from phoneemu.errors import VerificationError, VerifyReason
from phoneemu.formats import trustlist as tlist
from phoneemu.formats.header import FileSigner
from phoneemu.formats.trustlist import Role, TrustRecord

NOW = 1_800_000_000
SUBJECT = "CN=ITLRecovery_twin;OU=VTG;O=Lab"
SERIAL = 0x7E57


@cache
def twin(seed: str) -> FileSigner:
    """A self-signed certificate with the shared subject, issuer and serial, and its own key."""
    key = generate_key(KeySpec.parse("rsa1024"), unsafe_seed=f"trustlist-twin-{seed}")
    t = dt.datetime.fromtimestamp(NOW, tz=dt.UTC)
    req = certs.CertRequest(subject=SUBJECT, public_key=key.public_key(), serial=SERIAL,
                            not_before=t - dt.timedelta(days=1), not_after=t + dt.timedelta(days=365))
    return FileSigner(key=key, cert=certs.issue_certificate(req, issuer_key=key))


def test_the_signer_is_the_record_whose_key_verifies_among_same_issuer_and_serial() -> None:
    """§B.4: issuer + serial name the signer; an old and a new certificate sharing them are both
    candidates, and the one whose key verifies is the signer (verify_self succeeds, signer_index names
    it) — before, only the first was tried and a file signed by the second failed BAD_SIGNATURE."""
    old, new = twin("old"), twin("new")
    recs = [TrustRecord.from_certificate(signer.cert, Role.SAST) for signer in (old, new)]
    signed_by_new = tlist.parse(tlist.build(kind="ITL", records=recs, signer=new, timestamp=NOW))
    assert signed_by_new.signer_index() == 1
    assert signed_by_new.verify_self() == recs[1]
    signed_by_old = tlist.parse(tlist.build(kind="ITL", records=recs, signer=old, timestamp=NOW))
    assert signed_by_old.signer_index() == 0 and signed_by_old.verify_self() == recs[0]


def test_same_issuer_and_serial_with_no_verifying_key_is_still_a_bad_signature() -> None:
    """Neither twin's key verifies (the file is signed by a third key with the same names): the first
    candidate is named and the signature is refused."""
    recs = [TrustRecord.from_certificate(twin("old").cert, Role.SAST),
            TrustRecord.from_certificate(twin("new").cert, Role.SAST)]
    tl = tlist.parse(tlist.build(kind="ITL", records=recs, signer=twin("third"), timestamp=NOW))
    assert tl.signer_index() == 0
    with pytest.raises(VerificationError) as ei:
        tl.verify_self()
    assert ei.value.reason is VerifyReason.BAD_SIGNATURE


def _itl(records: list[TrustRecord]) -> tlist.TrustList:
    return tlist.parse(tlist.build(kind="ITL", records=records, signer=twin("old"), timestamp=NOW))


def test_a_blank_record_of_a_role_a_rollback_keeps_does_not_make_the_itl_empty() -> None:
    """§B.7 (our convention): a rollback blanks the TVS / TFTP / CCM / CCM+TFTP records. An ITL without
    such records is not a rollback ITL because some other record (SAST, CAPF, unknown role 9) is
    blank — before, any blank record made it "empty" (a phone then accepted any ITL, spec §G.3.6)."""
    sast = TrustRecord.from_certificate(twin("old").cert, Role.SAST)
    capf = TrustRecord.from_certificate(twin("new").cert, Role.CAPF)
    for blank_role in (Role.CAPF, Role.SAST, 9):
        tl = _itl([sast, capf, tlist.empty_record(blank_role, dns_name="10.0.0.9", ip="10.0.0.9")])
        assert not tl.is_empty, blank_role


def test_what_is_an_empty_itl() -> None:
    """Empty: TVS/TFTP/CCM/CCM+TFTP records present and all blank, or no record at all; one of them
    still carrying its certificate, or none of them present, is not empty."""
    sast = TrustRecord.from_certificate(twin("old").cert, Role.SAST)
    capf = TrustRecord.from_certificate(twin("new").cert, Role.CAPF)
    full_tvs = TrustRecord.from_certificate(twin("new").cert, Role.TVS)
    blank = [tlist.empty_record(role, dns_name="10.0.0.1", ip="10.0.0.1") for role in (Role.TVS, Role.TFTP)]
    assert _itl([sast, capf, *blank]).is_empty
    assert _itl([sast, *tlist.rollback_records([full_tvs, capf])]).is_empty
    assert _itl([]).is_empty
    assert not _itl([sast, capf, blank[1], full_tvs]).is_empty
    assert not _itl([sast, capf]).is_empty
