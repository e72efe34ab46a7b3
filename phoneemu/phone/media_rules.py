"""The phone's media encryption rules (spec §G.14, seed "Media Encryption", "AES 80-Bit Authentication
Support"), sans-I/O: what a phone offers for a call's media, and what it makes of the answer.

Rules:

* **Offer** (:func:`decide_media_offer`). A SIP phone generates its own SRTP master keys and sends them in
  its SDP (SDES, RFC 4568) — only over encrypted signalling: "authentication and signaling encryption
  serve as the minimum requirements for media encryption" (seed). So it offers SRTP (``RTP/SAVP``, one
  ``a=crypto`` line per suite of its model, :attr:`PhoneProfile.srtp_suites`) only when its device
  security mode is **encrypted** (3) and it signals over **TLS** (§G.9); otherwise plain RTP:

  ``G.14-offer-srtp``              encrypted mode over TLS, the model has SRTP suites
  ``G.14-rtp-not-encrypted-mode``  non-secure (1) or authenticated (2: TLS with NULL-SHA, keys would
                                   travel in the clear) device security mode
  ``G.14-rtp-signalling-not-tls``  encrypted mode, but registered over TCP (no CUCM certificate in a
                                   CTL, §G.9 fall-back)
  ``G.14-rtp-phone-no-srtp``       the model has no SRTP suite (e.g. the 7940)

* **Negotiation** (:func:`phoneemu.protocols.media.negotiate_suite`; the line taken,
  :func:`~phoneemu.protocols.media.pick_offered`, used by whoever answers — the lab's media resources, a
  called phone): the §G.14 table — offered 32 and 80 → AES_CM_128_HMAC_SHA1_80; only 32 → 32;
  only 80 → 80; neither → RTP. AEAD_AES_*_GCM are preferred by CUCM when offered, but Cisco phones do
  not implement them.

* **Answer** (:func:`decide_media_answer`): an ``RTP/SAVP`` answer must carry one ``a=crypto`` whose tag
  and suite the phone offered and a key of the right length, no MKI (RFC 4568 §7.1.3) → ``G.14-srtp``; an
  ``RTP/AVP`` answer to an SRTP offer is the fall-back to RTP ("if at least one device does not support
  SRTP, the system uses an RTP connection") → ``G.14-rtp-fallback``; an RTP answer to an RTP offer keeps
  the offer's rule; anything else — keys the phone did not offer, SRTP it did not ask for, no key — is
  ``G.14-answer-refused`` (the phone ends the call); a stream answered with port 0 is
  ``G.14-media-refused``.

* **Called** (:func:`decide_incoming`: a phone answering another's call, the offer relayed by the
  CallManager): a stream refused (port 0) or without G.711 → ``G.14-media-refused``; when the phone's own
  offer rule allows SRTP and the offer carries a usable ``a=crypto`` line (no MKI, a key of the right
  length) of a suite both support (the §G.14 table) → ``G.14-srtp``, answered with the offered tag and a
  key of its own; when its rule allows SRTP but the offer has none it can use → ``G.14-rtp-fallback``
  ("if at least one device does not support SRTP, the system uses an RTP connection"); otherwise its
  own rule (RTP).

* **Media** (:func:`decide_media_received`): over SRTP a packet counts only when its authentication tag
  verifies (RFC 3711 §3.3); packets came but none verified → ``G.14-media-unauthenticated``; none came,
  or over RTP none was a readable RTP packet → ``G.14-no-media``. Otherwise the answer's rule stands
  (:data:`NO_MEDIA`: the rules after which no media flowed).
"""

from __future__ import annotations

from phoneemu.crypto import srtp
from phoneemu.errors import DecodeError
from phoneemu.formats.config import DeviceConfig
from phoneemu.phone.events import Decision
from phoneemu.phone.profile import PhoneProfile
from phoneemu.protocols.media import AVP, SAVP, pick_offered
from phoneemu.protocols.sdp import AudioOffer, Crypto

__all__ = ["NO_MEDIA", "decide_incoming", "decide_media_answer", "decide_media_offer",
           "decide_media_received"]

#: the rules a call ends with when no media flowed (the call refused, its answer refused, or nothing usable
#: came from the far end)
NO_MEDIA = frozenset({"G.14-call-refused", "G.14-answer-refused", "G.14-media-refused",
                      "G.14-media-unauthenticated", "G.14-no-media", "G.14-signalling-tampered"})

_MODES = {1: "non-secure", 2: "authenticated", 3: "encrypted"}


def _d(rule: str, accepted: bool, reason: str, file: str = "") -> Decision:
    return Decision(rule=rule, accepted=accepted, reason=reason, file=file, kind="media")


def decide_media_offer(cfg: DeviceConfig, *, transport: str, profile: PhoneProfile) -> Decision:
    """What the phone offers for a call's media (module rules, "Offer"); accepted = SRTP offered."""
    mode = cfg.device_security_mode
    if not profile.srtp_suites:
        return _d("G.14-rtp-phone-no-srtp", False, f"the {profile.model} supports no SRTP suite: RTP")
    if mode != 3:
        return _d("G.14-rtp-not-encrypted-mode", False,
                  f"device security mode {_MODES.get(mode, mode)}: media encryption needs encrypted "
                  "signalling: RTP")
    if transport != "tls":
        return _d("G.14-rtp-signalling-not-tls", False,
                  "encrypted mode but signalling over TCP (no CUCM certificate in a CTL): the keys would "
                  "travel in the clear: RTP")
    return _d("G.14-offer-srtp", True, f"encrypted signalling: offers {', '.join(profile.srtp_suites)}")


def decide_media_answer(offered: tuple[Crypto, ...], answer: AudioOffer, *,
                        offer_rule: Decision) -> tuple[Decision, Crypto | None]:
    """The phone's verdict on the SDP answer to its offer (module rules, "Answer"), with the crypto
    attribute it will use to decrypt the far end's media (None: RTP)."""
    if answer.port == 0:
        return _d("G.14-media-refused", False, "the far end refused the audio stream (port 0)"), None
    if answer.profile == AVP:
        if offered:
            return _d("G.14-rtp-fallback", False, "the far end answered RTP/AVP to the SRTP offer: the call "
                      "reverts to RTP (media in the clear)"), None
        return offer_rule, None
    if answer.profile != SAVP:
        return _d("G.14-answer-refused", False, f"answer profile {answer.profile!r} is neither "
                  f"{SAVP} nor {AVP}"), None
    if not offered:
        return _d("G.14-answer-refused", False, "SRTP answered to an RTP offer (the phone sent no keys)"), \
            None
    if len(answer.crypto) != 1:
        return _d("G.14-answer-refused", False, f"an SRTP answer must carry one a=crypto line, not "
                  f"{len(answer.crypto)} (RFC 4568 §7.1.2)"), None
    got = answer.crypto[0]
    mine = next((c for c in offered if c.tag == got.tag), None)
    if mine is None or mine.suite != got.suite:
        return _d("G.14-answer-refused", False, f"answer crypto {got.tag} {got.suite} is not one the phone "
                  "offered (RFC 4568 §7.1.3)"), None
    if got.mki:
        return _d("G.14-answer-refused", False, f"answer crypto {got.tag} carries an MKI ({got.mki[:20]}): "
                  "the phone offered none and reads no MKI in the packets (RFC 4568 §6.1)"), None
    try:
        srtp.parse_inline_key(got.key_params)
    except DecodeError as exc:
        return _d("G.14-answer-refused", False, f"answer key unusable: {exc.message}"), None
    return _d("G.14-srtp", True, f"SRTP {got.suite} (the far end's choice of the phone's offer)"), got


def decide_incoming(offer: AudioOffer, *, own: Decision,
                    suites: tuple[str, ...]) -> tuple[Decision, Crypto | None]:
    """The called phone's verdict on the offer it got (module rules, "Called"), with the crypto line it
    answers (None: RTP). ``own``: its :func:`decide_media_offer`; ``suites``: its model's."""
    if offer.port == 0 or 0 not in offer.formats:
        return _d("G.14-media-refused", False, "the offer's audio stream is refused or not G.711 µ-law"), None
    if not own.accepted:
        return own, None
    chosen = pick_offered(offer.crypto, suites) if offer.profile == SAVP else None
    if chosen is None:
        why = "offered RTP" if not offer.crypto else "offered no SRTP suite it can use"
        return _d("G.14-rtp-fallback", False, f"the calling side {why}: the call uses RTP"), None
    return _d("G.14-srtp", True, f"SRTP {chosen.suite} (the §G.14 choice among the caller's offer)"), chosen


def decide_media_received(answer_rule: Decision, *, srtp_used: bool, received: int, authenticated: int,
                          refused: int, refusal: str = "") -> Decision:
    """The call's media verdict once the packets are in (module rules, "Media")."""
    if received == 0:
        return _d("G.14-no-media", False, "no media packet came from the far end")
    if srtp_used and authenticated == 0:
        return _d("G.14-media-unauthenticated", False,
                  f"{refused} SRTP packet(s) came, none authenticated ({refusal or 'auth tag'}): dropped")
    if not srtp_used and refused >= received:
        return _d("G.14-no-media", False,
                  f"{received} packet(s) came, none a readable RTP packet ({refusal})")
    return answer_rule
