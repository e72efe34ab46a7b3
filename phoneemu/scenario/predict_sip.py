"""What a predicted phone's SIP registration over TLS would meet, before a reset and after the boot
(spec §G.9 transport, §G.5 the registrar's certificate; ``phoneemu predict``).

A regenerated CallManager certificate is served in the new CTL at once, but a phone that is not reset
keeps its installed CTL: its next registration over TLS refuses the new certificate until the phone
resets and fetches the new CTL (scenario ``sip-tls-callmanager-in-ctl``: "CallManager regenerated,
phone not reset"). Rules (*ours*: what predict adds to the §G rules it applies):

* The CallManager certificates are the non-empty CCM and CCM+TFTP records of the CTL the phone holds
  after the predicted boot (the cluster's new one, when the phone accepted it), or those given
  (``--callmanager-cert``).
* *Before a reset* the phone holds its installed CTL and config; *after the boot*, what the boot left.
  At each moment: the §G.9 transport (its config's device security mode and its CTL; no config: not
  known) and, over TLS, the §G.5 rule on each certificate; and what its calls would carry (§G.14:
  SRTP only in encrypted mode over TLS, :func:`phoneemu.phone.media_rules.decide_media_offer`).
* Nothing is forecast when neither moment is over TLS (over TCP no certificate is checked) or there
  is no certificate to check.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from phoneemu.errors import DecodeError
from phoneemu.words import counted

if TYPE_CHECKING:
    from phoneemu.phone.profile import PhoneProfile
    from phoneemu.phone.store import TrustStore

__all__ = ["SipForecast", "SipMoment", "forecast_sip"]


@dataclass(frozen=True, kw_only=True)
class SipMoment:
    """The transport the rules give at one moment and, over TLS, the §G.5 rule on each certificate."""

    transport: str  # "tls" | "tcp" | "" (no config: not known)
    transport_rule: str  # "" for a non-secure device or without a config
    certificates: tuple[tuple[str, str, bool], ...] = ()  # (whose, §G.5 rule, accepted)
    media_rule: str = ""  # the §G.14 offer rule of its calls ("" without a config)
    media: str = ""  # "srtp" | "rtp" | ""

    @property
    def refused(self) -> tuple[str, ...]:
        return tuple(who for who, _rule, ok in self.certificates if not ok)

    def lines(self, when: str) -> list[str]:
        if not self.transport:
            return [f"  sip {when}: no config: not known"]
        head = f"  sip {when}: over {self.transport} ({self.transport_rule or 'non-secure device'})" + (
            f"; calls {self.media.upper()} ({self.media_rule})" if self.media else "")
        return [head, *(f"    {who}: {rule} ({'accepted' if ok else 'refused'})"
                        for who, rule, ok in self.certificates)]

    def as_dict(self) -> dict[str, Any]:
        return {"transport": self.transport, "transport_rule": self.transport_rule, "media": self.media,
                "media_rule": self.media_rule,
                "certificates": [{"certificate": who, "rule": rule, "accepted": ok}
                                 for who, rule, ok in self.certificates]}


@dataclass(frozen=True, kw_only=True)
class SipForecast:
    """:class:`SipMoment` before a reset and after the boot (module rules)."""

    before: SipMoment
    after: SipMoment

    @property
    def refused_until_reset(self) -> bool:
        """Over TLS before a reset some CallManager certificate is refused, after the boot none is."""
        return self.before.transport == "tls" and bool(self.before.refused) and not self.after.refused

    def lines(self) -> list[str]:
        out = [*self.before.lines("before a reset"), *self.after.lines("after this boot")]
        if self.refused_until_reset:
            total = counted(len(self.before.certificates), "CallManager certificate")
            out.append(f"  sip: until it resets, the phone refuses {len(self.before.refused)} of the {total} "
                       "(G.5): reset it (a registered phone keeps its registration until it registers again)")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {"before_reset": self.before.as_dict(), "after_boot": self.after.as_dict(),
                "refused_until_reset": self.refused_until_reset}


@functools.lru_cache(maxsize=64)  # a fleet's phones check the same few certificates: one text each
def _whose(der: bytes) -> str:
    from phoneemu.crypto import certs

    try:
        cert = certs.load_cert_der(der)
    except DecodeError as exc:
        return f"an unreadable certificate ({exc})"
    return f"{certs.dn_text(cert.subject)} (serial {cert.serial_number:X})"


def _moment(store: TrustStore, profile: PhoneProfile, certificates: Sequence[bytes]) -> SipMoment:
    from phoneemu.phone import media_rules, rules

    if store.config is None:
        return SipMoment(transport="", transport_rule="")
    transport, secure = rules.sip_transport(store, store.config.config, profile=profile)
    checks: tuple[tuple[str, str, bool], ...] = ()
    if transport == "tls":
        decided = [(der, rules.decide_sip_server(store, der, server="")) for der in certificates]
        checks = tuple((_whose(der), d.rule, d.accepted) for der, d in decided)
    media = media_rules.decide_media_offer(store.config.config, transport=transport, profile=profile)
    return SipMoment(transport=transport, transport_rule=secure.rule if secure is not None else "",
                     certificates=checks, media_rule=media.rule, media="srtp" if media.accepted else "rtp")


def forecast_sip(before: TrustStore, after: TrustStore, profile: PhoneProfile,
                 given: Sequence[bytes] = ()) -> SipForecast | None:
    """The forecast (module rules) from the phone's state before the boot and after it; None when there
    is nothing to say."""
    from phoneemu.phone.rules import sip_server_certificates

    certificates = list(given) or sip_server_certificates(after)
    if not certificates:
        return None
    first, then = _moment(before, profile, certificates), _moment(after, profile, certificates)
    if "tls" not in (first.transport, then.transport):
        return None
    return SipForecast(before=first, after=then)
