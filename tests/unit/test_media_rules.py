"""The phone's §G.14 media rules, sans-I/O: what it offers (mode, transport, model), the negotiation table
the lab answers by, its verdict on the SDP answer and on the media that came."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest

from phoneemu.crypto import srtp
from phoneemu.errors import DecodeError
from phoneemu.formats.config import DeviceConfig
from phoneemu.phone.events import Decision
from phoneemu.phone.media_rules import decide_media_answer, decide_media_offer, decide_media_received
from phoneemu.phone.profile import PhoneProfile, get_profile
from phoneemu.protocols.media import AVP, SAVP, negotiate_suite
from phoneemu.protocols.sdp import AudioOffer, Crypto

S80 = "AES_CM_128_HMAC_SHA1_80"
S32 = "AES_CM_128_HMAC_SHA1_32"
GCM128 = "AEAD_AES_128_GCM"
GCM256 = "AEAD_AES_256_GCM"


def _cfg(mode: int) -> DeviceConfig:
    return DeviceConfig(device_name="SEP0011223344AA", device_security_mode=mode)


def _profile(suites: tuple[str, ...] | None = None) -> PhoneProfile:
    base = get_profile("cp-8861")
    return base if suites is None else dataclasses.replace(base, srtp_suites=suites)


def _key() -> str:
    return srtp.inline_key(*srtp.make_master_key())


def _crypto(tag: int, suite: str, key: str | None = None) -> Crypto:
    return Crypto(tag=tag, suite=suite, key_params=key if key is not None else _key())


def _answer(profile: str = SAVP, crypto: tuple[Crypto, ...] = (), port: int = 40000) -> AudioOffer:
    return AudioOffer(address="127.0.0.1", port=port, profile=profile, formats=(0,), crypto=crypto)


# -- offer -------------------------------------------------------------------------------------------------

def test_a_model_without_srtp_suites_offers_rtp_whatever_its_mode_and_transport() -> None:
    for mode in (1, 2, 3):
        for transport in ("tcp", "tls"):
            d = decide_media_offer(_cfg(mode), transport=transport, profile=_profile(()))
            assert (d.rule, d.accepted, d.kind) == ("G.14-rtp-phone-no-srtp", False, "media")
    seven_forty = get_profile("cp-7940")
    assert seven_forty.srtp_suites == ()
    d = decide_media_offer(_cfg(3), transport="tls", profile=seven_forty)
    assert d.rule == "G.14-rtp-phone-no-srtp" and "CP-7940" in d.reason


@pytest.mark.parametrize("mode", [1, 2])
@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_non_secure_and_authenticated_modes_offer_rtp(mode: int, transport: str) -> None:
    d = decide_media_offer(_cfg(mode), transport=transport, profile=_profile())
    assert (d.rule, d.accepted) == ("G.14-rtp-not-encrypted-mode", False)
    assert ("non-secure" if mode == 1 else "authenticated") in d.reason


def test_encrypted_mode_over_tcp_offers_rtp() -> None:
    d = decide_media_offer(_cfg(3), transport="tcp", profile=_profile())
    assert (d.rule, d.accepted) == ("G.14-rtp-signalling-not-tls", False)


@pytest.mark.parametrize("suites", [(S80, S32), (S32,), (S80,)])
def test_encrypted_mode_over_tls_offers_srtp_with_the_models_suites(suites: tuple[str, ...]) -> None:
    d = decide_media_offer(_cfg(3), transport="tls", profile=_profile(suites))
    assert (d.rule, d.accepted, d.kind) == ("G.14-offer-srtp", True, "media")
    assert all(s in d.reason for s in suites)


# -- the §G.14 table ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("offered", "negotiated"), [
    ((S32, S80), S80),  # both: the 80-bit tag
    ((S80, S32), S80),  # whatever the offer's order
    ((S32,), S32),
    ((S80,), S80),
    ((), None),  # neither: RTP
])
def test_negotiation_table(offered: tuple[str, ...], negotiated: str | None) -> None:
    assert negotiate_suite(offered, (S80, S32)) == negotiated


def test_gcm_is_never_chosen() -> None:
    """AEAD GCM is preferred by CUCM when offered, but Cisco phones do not implement it (§G.14)."""
    assert negotiate_suite((GCM256, GCM128), (S80, S32)) is None
    assert negotiate_suite((GCM256, GCM128, S32), (S80, S32)) == S32
    assert negotiate_suite((GCM128, S80, S32), (GCM128, S80, S32)) == S80
    assert negotiate_suite((GCM128,), (GCM128, GCM256, S80)) is None


def test_negotiation_needs_the_answerer_to_support_the_suite() -> None:
    assert negotiate_suite((S80, S32), (S32,)) == S32
    assert negotiate_suite((S80,), (S32,)) is None
    assert negotiate_suite((S80, S32), ()) is None


# -- answer ------------------------------------------------------------------------------------------------

SRTP_OFFER_RULE = Decision(rule="G.14-offer-srtp", accepted=True, reason="offered", file="", kind="media")
RTP_OFFER_RULE = Decision(rule="G.14-rtp-not-encrypted-mode", accepted=False, reason="rtp", file="",
                          kind="media")


def _offered() -> tuple[Crypto, ...]:
    return _crypto(1, S80), _crypto(2, S32)


@pytest.mark.parametrize("profile", [SAVP, AVP])
def test_port_zero_is_media_refused(profile: str) -> None:
    crypto = (_crypto(1, S80),) if profile == SAVP else ()
    for offered, rule in ((_offered(), SRTP_OFFER_RULE), ((), RTP_OFFER_RULE)):
        d, chosen = decide_media_answer(offered, _answer(profile, crypto, port=0), offer_rule=rule)
        assert (d.rule, d.accepted, chosen) == ("G.14-media-refused", False, None)


def test_an_rtp_answer_to_an_srtp_offer_is_the_fallback_to_rtp() -> None:
    d, chosen = decide_media_answer(_offered(), _answer(AVP), offer_rule=SRTP_OFFER_RULE)
    assert (d.rule, d.accepted, chosen) == ("G.14-rtp-fallback", False, None)


def test_an_rtp_answer_to_an_rtp_offer_keeps_the_offers_rule() -> None:
    for rule in ("G.14-rtp-not-encrypted-mode", "G.14-rtp-signalling-not-tls", "G.14-rtp-phone-no-srtp"):
        offer_rule = dataclasses.replace(RTP_OFFER_RULE, rule=rule)
        d, chosen = decide_media_answer((), _answer(AVP), offer_rule=offer_rule)
        assert d is offer_rule and chosen is None


@pytest.mark.parametrize(("why", "answer"), [
    ("no crypto line", lambda offered: _answer(SAVP, ())),
    ("two crypto lines", lambda offered: _answer(SAVP, offered)),
    ("a tag the phone did not offer", lambda offered: _answer(SAVP, (_crypto(7, S80),))),
    ("the tag of another suite", lambda offered: _answer(SAVP, (_crypto(1, S32),))),
    ("a key of the wrong length", lambda offered: _answer(SAVP, (_crypto(1, S80, "QUFBQQ=="),))),
    ("a key that is not one (base64 with padding inside)",
     lambda offered: _answer(SAVP, (_crypto(1, S80, "A" * 20 + "==" + "A" * 18),))),
    ("a GCM suite the phone never offers", lambda offered: _answer(SAVP, (_crypto(1, GCM128),))),
    ("another profile", lambda offered: _answer("UDP/TLS/RTP/SAVP", (offered[0],))),
])
def test_srtp_answers_the_phone_cannot_use_are_refused(
        why: str, answer: Callable[[tuple[Crypto, ...]], AudioOffer]) -> None:
    offered = _offered()
    d, chosen = decide_media_answer(offered, answer(offered), offer_rule=SRTP_OFFER_RULE)
    assert (d.rule, d.accepted, chosen) == ("G.14-answer-refused", False, None), why


def test_an_srtp_answer_to_an_rtp_offer_is_refused() -> None:
    d, chosen = decide_media_answer((), _answer(SAVP, (_crypto(1, S80),)), offer_rule=RTP_OFFER_RULE)
    assert (d.rule, d.accepted, chosen) == ("G.14-answer-refused", False, None)
    assert "RTP offer" in d.reason


@pytest.mark.parametrize(("tag", "suite"), [(1, S80), (2, S32)])
def test_a_good_srtp_answer_is_srtp_with_the_far_ends_crypto(tag: int, suite: str) -> None:
    theirs = Crypto(tag=tag, suite=suite, key_params=_key(), lifetime="2^31")
    d, chosen = decide_media_answer(_offered(), _answer(SAVP, (theirs,)), offer_rule=SRTP_OFFER_RULE)
    assert (d.rule, d.accepted, d.kind) == ("G.14-srtp", True, "media")
    assert chosen is theirs and suite in d.reason
    key, salt = srtp.parse_inline_key(chosen.key_params)
    assert (len(key), len(salt)) == (srtp.MASTER_KEY_LEN, srtp.MASTER_SALT_LEN)


def test_an_srtp_answer_with_an_mki_is_refused() -> None:
    theirs = Crypto(tag=1, suite=S80, key_params=_key(), mki="1:4")
    with pytest.raises(DecodeError, match="MKI"):
        srtp.parse_inline_key(f"{theirs.key_params}|2^31|{theirs.mki}")  # what srtp says of an MKI
    d, chosen = decide_media_answer(_offered(), _answer(SAVP, (theirs,)), offer_rule=SRTP_OFFER_RULE)
    assert (d.rule, chosen) == ("G.14-answer-refused", None)


# -- media -------------------------------------------------------------------------------------------------

SRTP_RULE = Decision(rule="G.14-srtp", accepted=True, reason="srtp", file="", kind="media")


@pytest.mark.parametrize("srtp_used", [True, False])
def test_no_packet_is_no_media(srtp_used: bool) -> None:
    d = decide_media_received(SRTP_RULE, srtp_used=srtp_used, received=0, authenticated=0, refused=0)
    assert (d.rule, d.accepted) == ("G.14-no-media", False)


def test_srtp_packets_none_authenticated_are_unauthenticated_media() -> None:
    d = decide_media_received(SRTP_RULE, srtp_used=True, received=10, authenticated=0, refused=10,
                              refusal="authentication tag mismatch")
    assert (d.rule, d.accepted) == ("G.14-media-unauthenticated", False)
    assert "10 SRTP packet(s)" in d.reason and "authentication tag mismatch" in d.reason
    plain = decide_media_received(SRTP_RULE, srtp_used=True, received=3, authenticated=0, refused=3)
    assert plain.rule == "G.14-media-unauthenticated" and "auth tag" in plain.reason


def test_otherwise_the_answers_rule_stands() -> None:
    assert decide_media_received(SRTP_RULE, srtp_used=True, received=10, authenticated=10,
                                 refused=0) is SRTP_RULE
    assert decide_media_received(SRTP_RULE, srtp_used=True, received=10, authenticated=1,
                                 refused=9) is SRTP_RULE  # one verified packet: SRTP works
    assert decide_media_received(RTP_OFFER_RULE, srtp_used=False, received=10, authenticated=0,
                                 refused=0) is RTP_OFFER_RULE
    # over RTP nothing authenticates: tampered packets are played, the answer's rule stands
    assert decide_media_received(RTP_OFFER_RULE, srtp_used=False, received=5, authenticated=0,
                                 refused=2) is RTP_OFFER_RULE


def test_rtp_of_which_nothing_was_readable_is_no_media() -> None:
    """Over RTP every packet malformed: nothing to play, ``G.14-no-media`` (the call carried no media)."""
    d = decide_media_received(RTP_OFFER_RULE, srtp_used=False, received=4, authenticated=0, refused=4,
                              refusal="version 3, not 2")
    assert (d.rule, d.accepted) == ("G.14-no-media", False)
    assert "4 packet(s) came, none a readable RTP packet (version 3, not 2)" in d.reason


def test_pick_offered_takes_the_tables_suite_its_first_usable_line() -> None:
    """The answerer's line (RFC 4568 §7.1.2 by the §G.14 table): offered 32 first, 80 still wins; of two
    lines of a suite the first usable one; a line with an MKI or a key that is not 16 + 14 bytes is
    skipped; GCM is never taken; nothing usable: None (RTP)."""
    from phoneemu.protocols.media import pick_offered

    c32, c80 = _crypto(1, S32), _crypto(2, S80)
    assert pick_offered((c32, c80), (S80, S32)) == c80
    assert pick_offered((c32, c80), (S32,)) == c32
    assert pick_offered((c80,), (S32,)) is None
    twice = (_crypto(3, GCM256), _crypto(4, S80), _crypto(5, S80))
    assert pick_offered(twice, (GCM256, S80, S32)) == twice[1]
    with_mki = dataclasses.replace(c80, mki="1:4")
    short = _crypto(6, S80, key="QUJD")
    assert pick_offered((with_mki, short, c32), (S80, S32)) == c32
    assert pick_offered((with_mki, short), (S80, S32)) is None
    assert pick_offered((_crypto(7, GCM128),), (GCM128, S80)) is None
    assert pick_offered((), (S80, S32)) is None
