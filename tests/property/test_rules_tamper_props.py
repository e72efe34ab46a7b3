"""Properties of the phone's *decisions* on tampered files (spec §G.3, §G.4, §G.12, §D; design §3.11).

The format properties (``test_formats_props``, ``test_encrypted_props``) show that a tampered file
fails ``verify``; these show the same at the level that matters — the rules of
:mod:`phoneemu.phone.rules` on a phone that holds a trust list never *accept* it:

* any single-byte change, insertion, deletion or appended bytes anywhere in a CTL, ITL, ``.sgn``
  config, ``.enc.sgn`` config, signed static file or firmware image;
* any change of the header signer fields (name, serial, issuer: tags 4, 5, 6), the hash code (tag 8)
  or the timestamp (tag 15) without re-signing.

A decision that asks for TVS is asked again with the answer of an all-knowing TVS: it returns the
certificate the header names (the genuine signer's when it names none it knows) with every role —
even such a TVS must not make a tampered file acceptable.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from functools import cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phoneemu.crypto import certs
from phoneemu.errors import PhoneEmuError
from phoneemu.formats import header as hdr
from phoneemu.formats import signed
from phoneemu.formats.trustlist import Role
from phoneemu.phone import rules
from phoneemu.phone.events import Decision
from phoneemu.phone.store import TrustStore, TvsAnswer, TvsResult
from tests.unit.test_rules import (
    CFG,
    NOW,
    P8861,
    Ident,
    _enc_pki,
    _fw,
    ident,
    install,
    itl_a,
    new_store,
    sgn,
    tl,
    xml,
)

PROPS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ALL_ROLES = frozenset({Role.SAST, Role.CCM, Role.CCM_TFTP, Role.TFTP, Role.CAPF, Role.APP_SERVER, Role.TVS})
_KNOWN = ("recovery-a", "cm-a", "tvs-a", "recovery-b", "cm-b", "imagesigning", "mic-phone")
LOAD = "sip88xx.14-2-1"

Decide = Callable[[TrustStore, bytes, TvsResult | None], Decision]


@cache
def _store() -> TrustStore:
    """A booted phone: ITL of cluster A, its signed config (TVS servers listed), a MIC, running LOAD."""
    s = new_store(mic=ident("mic-phone"))
    install(s, "ITL", itl_a())
    d = rules.decide_config(s, CFG + ".sgn", sgn(ident("cm-a")), profile=P8861, now=NOW)
    assert d.accepted, d
    s.apply(d)
    s.firmware_load = LOAD  # an authenticated image of it is "already running"; a forgery is refused
    return s


@cache
def _artefacts() -> dict[str, tuple[bytes, Ident, Decide]]:
    rec, cm, img = ident("recovery-a"), ident("cm-a"), ident("imagesigning")

    def trust(kind: str) -> Decide:
        k: rules.TrustKind = "CTL" if kind == "CTL" else "ITL"
        return lambda s, data, ans: rules.decide_trust_list(s, data, kind=k, profile=P8861, now=NOW,
                                                            tvs_answer=ans)

    def config(name: str) -> Decide:
        return lambda s, data, ans: rules.decide_config(s, name, data, profile=P8861, now=NOW, tvs_answer=ans)

    def static(s: TrustStore, data: bytes, ans: TvsResult | None) -> Decision:
        return rules.decide_static_file(s, "g3-tones.xml.sgn", data, profile=P8861, now=NOW, tvs_answer=ans)

    def fw(s: TrustStore, data: bytes, ans: TvsResult | None) -> Decision:
        return rules.decide_firmware(s, data, profile=P8861, now=NOW, image_signers=[img.cert],
                                     file=LOAD + ".loads", requested_load=LOAD)

    tones = signed.build(body=b"<tones/>", filename="g3-tones.xml.sgn", signer=cm.signer, timestamp=NOW)
    enc = _enc_pki(ident("mic-phone"), cm, xml(load_information=LOAD))
    return {
        "ITL": (itl_a(ts=NOW + 5), rec, trust("ITL")),
        "CTL": (tl("CTL", rec, [rec.record(Role.SAST), cm.record(Role.CCM_TFTP)], ts=NOW + 5), rec,
                trust("CTL")),
        "sgn": (sgn(cm, xml(load_information=LOAD)), cm, config(CFG + ".sgn")),
        "enc": (enc, cm, config(CFG + ".enc.sgn")),
        "static": (tones, cm, static),
        "firmware": (_fw(img, LOAD), img, fw),
    }


def _all_knowing_tvs(data: bytes, genuine: Ident) -> TvsAnswer:
    """The certificate the header names (by serial) if the lab knows it, else the genuine signer's."""
    try:
        serial = hdr.parse_header(data, fmt="prop").header.signer.serial
    except PhoneEmuError:  # a header that does not parse names nobody
        serial = b""
    named = next((ident(n) for n in _KNOWN if certs.serial_bytes(ident(n).cert.serial_number) == serial),
                 genuine)
    return TvsAnswer(cert_der=certs.cert_der(named.cert), roles=ALL_ROLES)


def _never_accepted(which: str, data: bytes) -> None:
    original, genuine, decide = _artefacts()[which]
    assert data != original
    s = _store()
    d = decide(s, data, None)
    if d.pending:
        d = decide(s, data, _all_knowing_tvs(data, genuine))
    assert not d.accepted, (which, d)
    assert not d.pending, (which, d)


def test_the_untampered_artefacts_are_accepted() -> None:
    """The baseline of the properties below: each original file is accepted by its rule."""
    for which, (data, _signer, decide) in _artefacts().items():
        d = decide(_store(), data, None)
        assert d.accepted and not d.pending, (which, d)


_WHICH = st.sampled_from(["ITL", "CTL", "sgn", "enc", "static", "firmware"])


@PROPS
@given(which=_WHICH, data=st.data())
def test_any_byte_level_change_is_never_accepted(which: str, data: st.DataObject) -> None:
    raw = bytearray(_artefacts()[which][0])
    op = data.draw(st.sampled_from(["flip", "insert", "delete", "append"]))
    pos = data.draw(st.integers(0, len(raw) - 1))
    if op == "flip":
        raw[pos] ^= data.draw(st.integers(1, 255))
    elif op == "insert":
        raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    elif op == "delete":
        del raw[pos:pos + data.draw(st.integers(1, 8))]
    else:
        raw += data.draw(st.binary(min_size=1, max_size=16))
    _never_accepted(which, bytes(raw))


def _names() -> st.SearchStrategy[str]:
    return st.sampled_from([certs.dn_text(ident(n).cert.subject) for n in _KNOWN]) | st.text(max_size=30)


def _serials() -> st.SearchStrategy[bytes]:
    return st.sampled_from([certs.serial_bytes(ident(n).cert.serial_number) for n in _KNOWN]) | \
        st.binary(max_size=20)


@PROPS
@given(which=_WHICH, data=st.data())
def test_any_change_of_the_header_signer_hash_or_timestamp_is_never_accepted(which: str,
                                                                              data: st.DataObject) -> None:
    raw = _artefacts()[which][0]
    ph = hdr.parse_header(raw, fmt="prop")
    h = ph.header
    field = data.draw(st.sampled_from(["signer", "hash_alg", "timestamp"]))
    if field == "signer":
        new = hdr.SignerInfo(name=data.draw(_names()), serial=data.draw(_serials()),
                             issuer=data.draw(_names()))
        changed = replace(h, signer=new)
    elif field == "hash_alg":
        changed = replace(h, hash_alg=data.draw(st.integers(0, 255)))
    else:
        changed = replace(h, timestamp=data.draw(st.integers(0, 0xFFFFFFFF)))
    tampered = hdr.build_header(changed) + raw[ph.body_offset:]
    if tampered == raw:
        return  # the draw changed nothing
    _never_accepted(which, tampered)


def test_seeded_walk_over_every_signer_field_combination() -> None:
    """Deterministic complement: every known (name, serial, issuer) triple other than the genuine one."""
    rnd = random.Random(5)
    names = [certs.dn_text(ident(n).cert.subject) for n in _KNOWN]
    serials = [certs.serial_bytes(ident(n).cert.serial_number) for n in _KNOWN]
    for which in ("ITL", "sgn"):
        raw = _artefacts()[which][0]
        ph = hdr.parse_header(raw, fmt="prop")
        for _ in range(25):
            info = hdr.SignerInfo(name=rnd.choice(names), serial=rnd.choice(serials),
                                  issuer=rnd.choice(names))
            if info == ph.header.signer:
                continue
            _never_accepted(which, hdr.build_header(replace(ph.header, signer=info)) + raw[ph.body_offset:])
