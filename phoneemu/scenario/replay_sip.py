"""The SIP registrations of a capture, checked offline against the rules, for ``phoneemu replay --mac``.

Rules (spec §G.9 transport, §G.5 the registrar's certificate, §G.13 registration; *ours* marked):

* **Collected** (:class:`SipCollector`, a :class:`~phoneemu.scenario._capture_flows.SipSink`): every
  plain TCP connection whose client starts with ``REGISTER`` and every TLS connection. Plain SIP is
  parsed as it came (:class:`phoneemu.protocols.sip.SipStream`, the same limits; a malformed message
  ends what is read of that direction, named in ``problem``). Of a TLS connection the registrar's
  certificate is read from the server's plaintext handshake (TLS 1.0-1.2: the first certificate of
  the Certificate message; TLS 1.3 sends it encrypted: not read), its SIP read as it travelled when the
  suite encrypts nothing (NULL-SHA: a phone in "Authenticated" mode, spec §G.14), else with the key log
  decrypted (:func:`phoneemu.net.tls_decrypt.decrypt_tls`) and parsed as above. At most
  :data:`MAX_CONNECTIONS` are kept (the rest counted), holding one copy of each distinct certificate,
  at most :data:`MAX_CERTIFICATES` of them (each within the scan's 16 KiB of a TLS start).
* **Whose** (*ours*): a connection whose REGISTER names a device (``SEP<MAC>`` in From, else the
  Contact's ``+sip.instance``) is that phone's, and so is a TLS 1.0-1.2 connection in which the phone
  presented its certificate (mutual TLS, §F.9: the LSC's or MIC's common name carries ``SEP<MAC>``,
  sent in clear); another one whose content is not readable (TLS without the key log) is the replayed
  phone's when its client address is one the phone fetched files from and no
  other phone of the capture did (emulated phones share an address: give the key log), and it
  is SIP when its server is a CallManager of the phone's config (``devicePool``, its
  ``securedSipPort``; port 5061 when the config names none) — other TLS (TVS, CAPF, HTTPS) is not.
* **Checked** after the replayed boot it follows (by capture order: the phone's state then, its CTL
  and config): the transport the rules give (§G.9: TLS when the device security mode asks for it and
  the CTL holds a CUCM certificate, else TCP) against the one the captured phone used; over TLS the
  §G.5 rule on the certificate the registrar presented. The verdict *differs* when the phone used
  another transport than the rules give, or registered (a ``200`` seen) over TLS with a registrar
  whose certificate §G.5 refuses; otherwise it agrees, saying what is not known (an encrypted
  outcome without the key log, a TLS 1.3 certificate).
* **Calls** over a connection read (plain, or decrypted): each INVITE's SDP offer (``RTP/SAVP`` with the
  suites of its ``a=crypto`` lines, or ``RTP/AVP``) and the suite of the ``200``'s answer — the calls the
  phone placed, and those the CallManager brought it (its answer set against
  :func:`phoneemu.phone.media_rules.decide_incoming`: SRTP keys answered over TCP or NULL-SHA, SRTP where
  the rules give RTP, RTP to an SRTP offer it could take differ) — are set
  against §G.14, and the call's media in the capture — the first :data:`MAX_MEDIA_PACKETS` datagrams
  each way between the two SDP addresses, of at most :data:`MAX_MEDIA_FLOWS` UDP flows — is checked
  with the SDES keys of the SDP (:func:`_check_media`; the keys stay in memory, never printed). The
  offer is set against :func:`phoneemu.phone.media_rules.decide_media_offer` on the transport the phone
  used: the verdict *differs* when the phone sent SRTP keys over TCP or over TLS with NULL-SHA (in the
  clear: "securely get sent via encrypted signaling paths", seed), offered RTP where the rules give
  SRTP, or SRTP where they give RTP (non-secure or authenticated device, a model without SRTP), or when
  its own SRTP packets do not authenticate with the key it offered. At most :data:`MAX_CALLS` a
  connection.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from phoneemu.errors import DecodeError, EncodeError
from phoneemu.formats._tlv import printable
from phoneemu.net.tls_decrypt import KeyLog, decrypt_tls, read_in_clear
from phoneemu.net.tls_handshake import client_certificate, device_of_certificate, server_certificate
from phoneemu.protocols import sip
from phoneemu.scenario._capture_flows import Endpoint
from phoneemu.values import host_port

if TYPE_CHECKING:
    from phoneemu.formats.config import DeviceConfig
    from phoneemu.phone.events import Decision
    from phoneemu.phone.profile import PhoneProfile
    from phoneemu.phone.store import TrustStore

__all__ = ["MAX_CALLS", "MAX_CERTIFICATES", "MAX_CONNECTIONS", "MAX_MEDIA_FLOWS", "MAX_MEDIA_PACKETS",
           "CapturedCall", "CapturedSip", "SipCheck", "SipCollector", "check_sip"]

MAX_CONNECTIONS = 10_000
MAX_CALLS = 16
#: UDP flows (source, destination) whose first packets are kept for the calls' media check, and how many
MAX_MEDIA_FLOWS = 2_000
MAX_MEDIA_PACKETS = 16
_MAX_MEDIA_DATAGRAM = 2_058  # an SRTP packet of the largest RTP packet (MAX_PACKET + 10-byte tag)
MAX_CERTIFICATES = 1_000
_MAX_MESSAGES = 64  # of each direction of one connection


@dataclass(frozen=True, kw_only=True)
class CapturedCall:
    """One INVITE of a captured connection: what the phone offered, what the far end answered (§G.14),
    and what its media showed (:func:`_check_media`)."""

    target: str  # the request URI (a call the phone received: "from <its caller>")
    offered: str  # "srtp" | "rtp" | "" (no SDP that parses)
    suites: tuple[str, ...] = ()  # of the offer's a=crypto lines
    status: int | None = None  # the final answer
    answered: str = ""  # "srtp SUITE" | "rtp" | "" (no answer SDP)
    problem: str = ""
    media: str = ""  # what the captured media showed ("" : not looked at)
    media_differs: str = ""  # why the captured media is not what was negotiated ("": it is, or not known)
    #: "out": the phone called (it offered, the far end answered); "in": it was called (the far end
    #: offered, the phone answered)
    direction: str = "out"
    #: the SDP of the offer and the answer (their media addresses and SDES keys), kept for the media check
    offer_sdp: object = field(default=None, repr=False, compare=False)
    answer_sdp: object = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        offer = f"srtp ({', '.join(self.suites)})" if self.offered == "srtp" else self.offered or "no SDP"
        answer = f", answered {self.status}" + (f" {self.answered}" if self.answered else "") \
            if self.status is not None else ", no final answer"
        extra = f" ({self.problem})" if self.problem else ""
        extra += f"; media {self.media}" if self.media else ""
        if self.direction == "in":
            return f"call {self.target} (received): offered {offer}, the phone answered" + (
                f" {self.status}" + (f" {self.answered}" if self.answered else "")
                if self.status is not None else " nothing final") + extra
        return f"call {self.target}: offered {offer}{answer}{extra}"

    def as_dict(self) -> dict[str, object]:
        return {"target": self.target, "direction": self.direction, "offered": self.offered,
                "suites": list(self.suites),
                "status": self.status, "answered": self.answered, "problem": self.problem,
                "media": self.media, "media_differs": self.media_differs}


def _sdp_media(body: bytes) -> tuple[str, tuple[str, ...], str, object]:
    """("srtp"|"rtp", its suites, problem, the parsed SDP) of a body; ("", (), why, None) when it does not
    parse."""
    from phoneemu.protocols import sdp
    from phoneemu.protocols.media import SAVP

    try:
        media = sdp.parse_sdp(body)
    except DecodeError as exc:
        return "", (), f"SDP: {exc}", None
    if media.profile == SAVP:
        return "srtp", tuple(c.suite for c in media.crypto), "", media
    return "rtp", (), "", media


def _calls(requests: list[sip.SipMessage], answers: list[sip.SipMessage], *,
           direction: str = "out") -> tuple[CapturedCall, ...]:
    """The INVITEs among ``requests`` with their final answers among ``answers`` (matched by CSeq):
    ``direction`` "out", the phone's INVITEs and the far end's answers; "in", the INVITEs the phone got
    and its answers."""
    finals = {(m.header("cseq") or "").strip(): m for m in answers
              if m.status is not None and m.status >= 200}
    out: list[CapturedCall] = []
    for m in [r for r in requests if r.method == "INVITE"][:MAX_CALLS]:
        offered, suites, problem, offer_sdp = _sdp_media(m.body)
        answer = finals.get((m.header("cseq") or "").strip())
        answered, answer_sdp = "", None
        if answer is not None and answer.status == 200 and answer.body:
            kind, got, why, answer_sdp = _sdp_media(answer.body)
            answered = f"{kind} {got[0]}" if kind == "srtp" and got else kind
            problem = problem or (f"answer {why}" if why else "")
        # the captured URI with its control characters escaped: the target is printed (and in DIFFERS lines)
        target = printable((m.uri or "")[:80] if direction == "out" else f"from {_caller(m)}")
        out.append(CapturedCall(target=target, offered=offered, suites=suites[:8], direction=direction,
                                problem=problem, answered=answered, offer_sdp=offer_sdp,
                                answer_sdp=answer_sdp, status=answer.status if answer is not None else None))
    return tuple(out)


def _caller(invite: sip.SipMessage) -> str:
    """The URI of an INVITE's From (its display part and tag left out), at most 80 characters."""
    named = invite.header("from") or "?"
    start, end = named.find("<"), named.find(">")
    return (named[start + 1:end] if 0 <= start < end else named.split(";", 1)[0])[:80]


def _check_media(call: CapturedCall, flows: Mapping[tuple[Endpoint, Endpoint], list[bytes]]) -> CapturedCall:
    """``call`` with what its captured media shows: the packets each way between the two SDP addresses,
    over SRTP each unprotected with the key of its sender (the phone's offered line of the chosen tag,
    the far end's answer line; a fresh receiver each way), over RTP each parsed. It differs when SRTP was
    negotiated and the phone's own packets do not authenticate (the far end's are reported, not held
    against the phone: it drops them, as the rules say)."""
    from phoneemu.crypto import srtp
    from phoneemu.protocols import rtp, sdp

    offer, answer = call.offer_sdp, call.answer_sdp
    if call.status != 200 or not isinstance(offer, sdp.AudioOffer) or not isinstance(answer, sdp.AudioOffer):
        return call
    offerer, answerer = (offer.address, offer.port), (answer.address, answer.port)
    key_of: dict[str, tuple[str, str] | None] = {"offerer": None, "answerer": None}
    if answer.crypto and call.answered.startswith("srtp"):
        chosen = answer.crypto[0]
        offered = next((c for c in offer.crypto if c.tag == chosen.tag), None)
        key_of = {"offerer": (chosen.suite, offered.key_params) if offered else None,
                  "answerer": (chosen.suite, chosen.key_params)}
    mine, theirs = ("offerer", "answerer") if call.direction == "out" else ("answerer", "offerer")
    addr = {"offerer": offerer, "answerer": answerer}
    phone, far = addr[mine], addr[theirs]
    keys = {"phone": key_of[mine], "far end": key_of[theirs]}
    parts: list[str] = []
    differs: list[str] = []
    for side, src, dst in (("phone", phone, far), ("far end", far, phone)):
        packets = flows.get((src, dst), [])
        if not packets:
            parts.append(f"{side} sent none captured")
            continue
        key = keys[side]
        if not call.answered.startswith("srtp"):
            readable = sum(1 for p in packets if _parses(rtp.parse_rtp, p))
            parts.append(f"{side} {len(packets)} RTP ({readable} readable)")
            continue
        if key is None:
            parts.append(f"{side} {len(packets)} (no key for the chosen tag)")
            continue
        try:
            ctx = srtp.SrtpContext(key[0], *srtp.parse_inline_key(key[1]))
        except (DecodeError, EncodeError) as exc:
            parts.append(f"{side} {len(packets)} (key unusable: {exc.message})")
            continue
        ok = sum(1 for p in packets if _parses(ctx.unprotect, p))
        parts.append(f"{side} {ok} of {len(packets)} authenticated" + (
            " (the phone drops the others: changed on the way, or the far end's fault)"
            if side == "far end" and ok < len(packets) else ""))
        if side == "phone" and ok < len(packets):  # the phone's own media: its conformance
            differs.append(f"{call.target}: SRTP {key[0]} negotiated, {len(packets) - ok} of the phone's "
                           f"{len(packets)} packets do not authenticate with the key it sent (in the clear, "
                           "with another key, or changed on the way)")
    return dataclasses.replace(call, media="; ".join(parts), media_differs="; ".join(differs))


def _parses(fn: Callable[[bytes], object], data: bytes) -> bool:
    try:
        fn(data)
    except DecodeError:
        return False
    return True


@dataclass(frozen=True, kw_only=True)
class CapturedSip:
    """One SIP connection of the capture: who, over what, what the registrar answered."""

    client: Endpoint
    server: Endpoint
    start: float
    order: int
    transport: str  # "tcp" | "tls"
    mac: str | None = None  # the device its REGISTER names (None: none read)
    registers: int = 0
    statuses: tuple[int, ...] = ()  # the final answers to its REGISTERs, in order
    readable: bool = True  # its SIP was read (plain, or decrypted with the key log)
    certificate: bytes | None = None  # over TLS: the registrar's, when the handshake shows it
    tls: str = ""  # "TLSv1.2" / "TLSv1.3", when known
    problem: str = ""  # what could not be read, and why
    calls: tuple[CapturedCall, ...] = ()  # its INVITEs (§G.14), when read

    @property
    def outcome(self) -> str:
        if not self.readable:
            return "not known (encrypted: give the key log)" if self.transport == "tls" and not self.problem \
                else f"not known ({self.problem or 'encrypted: give the key log'})"
        if 200 in self.statuses:
            return "registered (200 OK)"
        if self.statuses:
            return f"not registered (last answer {self.statuses[-1]})"
        return "no final answer" if self.registers else "no REGISTER"


def _messages(data: bytes) -> tuple[list[sip.SipMessage], str]:
    stream = sip.SipStream()
    out: list[sip.SipMessage] = []
    try:
        stream.feed(data)
        while len(out) < _MAX_MESSAGES and (msg := stream.next()) is not None:
            out.append(msg)
    except DecodeError as exc:
        return out, f"SIP does not parse after {len(out)} message(s): {exc}"
    return out, ""


def _read(client_data: bytes, server_data: bytes) -> dict[str, object]:
    """The REGISTERs of a connection's plaintext and the final answers to them (by CSeq)."""
    requests, p1 = _messages(client_data)
    answers, p2 = _messages(server_data)
    registers = [m for m in requests if m.method == "REGISTER"]
    mac = next((found for m in registers if (found := sip.device_mac(m)) is not None), None)
    cseqs = {(m.header("cseq") or "").strip() for m in registers}
    statuses = tuple(m.status for m in answers if m.status is not None and m.status >= 200
                     and (m.header("cseq") or "").strip() in cseqs)
    return {"mac": mac, "registers": len(registers), "statuses": statuses, "problem": p1 or p2,
            "calls": _calls(requests, answers) + _calls(answers, requests, direction="in")}


class SipCollector:
    """A :class:`~phoneemu.scenario._capture_flows.SipSink` keeping :class:`CapturedSip` (module rules),
    and a ``MediaSink`` keeping the first :data:`MAX_MEDIA_PACKETS` RTP-looking datagrams of each of
    at most :data:`MAX_MEDIA_FLOWS` UDP flows for :meth:`finish`; ``secrets``: the key log, to read SIP
    over TLS."""

    def __init__(self, secrets: KeyLog | None = None, *, limit: int = MAX_CONNECTIONS) -> None:
        self.secrets, self.limit = secrets, limit
        self.found: list[CapturedSip] = []
        self.unlisted = 0
        self._certificates: dict[bytes, bytes] = {}
        self.flows: dict[tuple[Endpoint, Endpoint], list[bytes]] = {}
        self.flows_not_kept = 0

    def datagram(self, src: Endpoint, dst: Endpoint, payload: bytes) -> None:
        if len(payload) < 12 or payload[0] >> 6 != 2 or len(payload) > _MAX_MEDIA_DATAGRAM:
            return  # not RTP version 2 (RFC 3550 §5.1)
        kept = self.flows.get((src, dst))
        if kept is None:
            if len(self.flows) >= MAX_MEDIA_FLOWS:
                self.flows_not_kept += 1
                return
            kept = self.flows[(src, dst)] = []
        if len(kept) < MAX_MEDIA_PACKETS:
            kept.append(payload)

    def finish(self) -> None:
        """After the scan: each call's captured media set against what its SDP negotiated
        (:func:`_check_media`)."""
        if not self.flows:
            return
        self.found = [dataclasses.replace(c, calls=tuple(_check_media(call, self.flows) for call in c.calls))
                      if c.calls else c for c in self.found]

    def connection(self, *, client: Endpoint, server: Endpoint, start: float, order: int, transport: str,
                   client_stream: bytes | None, server_stream: bytes | None, problem: str) -> None:
        if len(self.found) >= self.limit:
            self.unlisted += 1
            return
        base = {"client": client, "server": server, "start": start, "order": order, "transport": transport}
        if client_stream is None or server_stream is None:
            self.found.append(CapturedSip(**base, readable=False, problem=problem))  # type: ignore[arg-type]
            return
        if transport == "tcp":
            self.found.append(CapturedSip(**base, **_read(client_stream, server_stream)))  # type: ignore[arg-type]
            return
        cert, version, why = server_certificate(server_stream)
        if cert is not None:  # connections to one server share its certificate: one copy of each
            known = self._certificates.get(cert)
            if known is None and len(self._certificates) >= MAX_CERTIFICATES:
                cert, why = None, f"not kept: more than {MAX_CERTIFICATES} distinct server certificates"
            elif known is None:
                self._certificates[cert] = cert
            else:
                cert = known
        device = device_of_certificate(client_certificate(client_stream))  # mutual TLS names the phone
        extra: dict[str, object] = {"certificate": cert, "tls": version, "readable": False,
                                    "problem": why or problem, "mac": device}
        if not problem:
            try:  # NULL-SHA ("Authenticated" mode) is read without the key log: it travels in the clear
                plain = read_in_clear(client_stream, server_stream)
                if plain is None and self.secrets is not None:
                    plain = decrypt_tls(client_stream, server_stream, self.secrets)
            except DecodeError as exc:
                extra["problem"] = "; ".join(p for p in (why, f"not decrypted: {exc}") if p)
                plain = None
            if plain is not None:
                if plain.client_data and not plain.client_data.startswith(b"REGISTER "):
                    return  # TVS, CAPF, HTTPS: not SIP (one the phone sent nothing on, refusing it, stays)
                read = _read(plain.client_data, plain.server_data)
                read["mac"] = read["mac"] or extra["mac"]
                extra.update(read, readable=True, tls=plain.description,
                             problem="; ".join(p for p in (why, str(read["problem"])) if p))
        self.found.append(CapturedSip(**base, **extra))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- offline check
@dataclass(frozen=True, kw_only=True)
class SipCheck:
    """One captured registration set against the rules, in the phone's state after a replayed boot."""

    captured: CapturedSip
    expected: str  # "tls" | "tcp" | "" (no accepted config: not known)
    transport_rule: str  # the §G.9 rule, "" for a non-secure device or without a config
    certificate_rule: str = ""  # over TLS: the §G.5 rule on the registrar's certificate ("": not read)
    certificate_accepted: bool | None = None
    certificate_reason: str = ""
    media_rule: str = ""  # the §G.14 offer rule for its calls ("": no call, or no config)
    differs: tuple[str, ...] = ()  # why the captured phone did otherwise than the rules (empty: agrees)

    def describe(self) -> str:
        c = self.captured
        where = f"{host_port(*c.server)} over {c.transport}" + (f" ({c.tls})" if c.tls else "")
        parts = [f"sip {where}: {c.outcome}"]
        if self.certificate_rule:
            ok = "accepted" if self.certificate_accepted else "refused"
            parts.append(f"certificate {self.certificate_rule} ({ok})")
        elif c.transport == "tls":
            parts.append(f"certificate not checked ({c.problem or 'not read'})")
        if self.expected:
            why = f"({self.transport_rule})" if self.transport_rule else "(non-secure device)"
            parts.append(f"the rules give {self.expected} {why}")
        parts += [call.describe() for call in c.calls]
        if self.media_rule:
            parts.append(f"its calls' media: {self.media_rule}")
        verdict = "DIFFERS: " + "; ".join(self.differs) if self.differs else "as the rules say"
        return f"{'; '.join(parts)}; {verdict}"

    def as_dict(self) -> dict[str, object]:
        c = self.captured
        return {"server": host_port(*c.server), "client": host_port(*c.client), "transport": c.transport,
                "tls": c.tls, "outcome": c.outcome, "statuses": list(c.statuses), "expected": self.expected,
                "transport_rule": self.transport_rule, "certificate_rule": self.certificate_rule,
                "certificate_accepted": self.certificate_accepted,
                "certificate_reason": self.certificate_reason, "problem": c.problem,
                "calls": [call.as_dict() for call in c.calls], "media_rule": self.media_rule,
                "differs": list(self.differs)}


def _call_manager_ports(config: DeviceConfig) -> set[int]:
    from phoneemu.formats import config as config_fmt

    try:
        managers = config_fmt.call_managers(config)
    except DecodeError:
        return {sip.SIPS_PORT}
    return {cm.secured_sip_port or sip.SIPS_PORT for cm in managers} or {sip.SIPS_PORT}


def check_sip(store: TrustStore, profile: PhoneProfile, mac: str, addresses: set[str],
              connections: Sequence[CapturedSip]) -> list[SipCheck]:
    """The captured connections of phone ``mac`` (module rules, "Whose") checked in the state ``store``
    (after a replayed boot)."""
    from phoneemu.phone import rules

    cfg = store.config.config if store.config is not None else None
    ports = _call_manager_ports(cfg) if cfg is not None else {sip.SIPS_PORT}
    out: list[SipCheck] = []
    for c in connections:
        if c.mac is not None and c.mac != mac:
            continue
        if c.mac is None and (c.client[0] not in addresses
                              or (c.transport == "tls" and c.server[1] not in ports)):
            continue
        expected, rule = "", ""
        if cfg is not None:
            expected, secure = rules.sip_transport(store, cfg, profile=profile)
            rule = secure.rule if secure is not None else ""
        differs: list[str] = []
        if expected and c.transport != expected:
            differs.append(f"the phone used {c.transport}, the rules give {expected}")
        cert_rule, cert_ok, cert_reason = "", None, ""
        if c.transport == "tls" and c.certificate is not None:
            d = rules.decide_sip_server(store, c.certificate, server=host_port(*c.server))
            cert_rule, cert_ok, cert_reason = d.rule, d.accepted, d.reason
            if not d.accepted and c.readable and 200 in c.statuses:
                differs.append("registered with a registrar whose certificate its CTL does not list (§G.5)")
        media_rule = ""
        if c.calls and cfg is not None:
            media_rule, why = _check_calls(cfg, profile, c)
            differs += why
        out.append(SipCheck(captured=c, expected=expected, transport_rule=rule, certificate_rule=cert_rule,
                            certificate_accepted=cert_ok, certificate_reason=cert_reason,
                            media_rule=media_rule, differs=tuple(differs)))
    return out


def _check_calls(cfg: DeviceConfig, profile: PhoneProfile, c: CapturedSip) -> tuple[str, list[str]]:
    """The §G.14 offer rule on the transport the phone used, and where its calls differ: the offers of
    the calls it placed, the answers of those it received (:func:`_check_received`), their media."""
    from phoneemu.phone import media_rules

    d = media_rules.decide_media_offer(cfg, transport=c.transport, profile=profile)
    differs: list[str] = []
    for call in c.calls:
        if call.direction == "in":
            differs += _check_received(call, d, profile, c)
        elif call.offered == "srtp" and "NULL" in c.tls:
            differs.append(f"{call.target}: SRTP keys sent over {c.tls} (TLS that encrypts nothing: in the "
                           "clear)")
        elif call.offered == "srtp" and c.transport != "tls":
            differs.append(f"{call.target}: SRTP keys sent over {c.transport} (in the clear; the rules give "
                           f"RTP: {d.rule})")
        elif call.offered == "srtp" and not d.accepted:
            differs.append(f"{call.target}: offered SRTP, the rules give RTP ({d.rule})")
        elif call.offered == "rtp" and d.accepted:
            differs.append(f"{call.target}: offered RTP, the rules give SRTP ({d.rule})")
        if call.media_differs:
            differs.append(call.media_differs)
    return d.rule, differs


def _check_received(call: CapturedCall, own: Decision, profile: PhoneProfile, c: CapturedSip) -> list[str]:
    """A call the phone received: its answer set against :func:`phoneemu.phone.media_rules.decide_incoming`
    (its own offer rule ``own`` and the far end's offer) — SRTP keys answered over TCP or NULL-SHA, SRTP
    where the rules give RTP, RTP where they give SRTP differ."""
    from phoneemu.phone import media_rules
    from phoneemu.protocols import sdp

    if call.status != 200 or not call.answered or not isinstance(call.offer_sdp, sdp.AudioOffer):
        return []
    answered_srtp = call.answered.startswith("srtp")
    if answered_srtp and (c.transport != "tls" or "NULL" in c.tls):
        return [f"{call.target}: SRTP keys answered over {c.tls or c.transport} (in the clear)"]
    expected, _chosen = media_rules.decide_incoming(call.offer_sdp, own=own, suites=profile.srtp_suites)
    if answered_srtp and expected.rule != "G.14-srtp":
        return [f"{call.target}: answered SRTP, the rules give RTP ({expected.rule})"]
    if not answered_srtp and expected.rule == "G.14-srtp":
        return [f"{call.target}: answered RTP to an SRTP offer it could take, the rules give SRTP"]
    return []
