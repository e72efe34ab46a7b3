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
  suites of its ``a=crypto`` lines, or ``RTP/AVP``) and the suite of the ``200``'s answer are set
  against §G.14 (:func:`phoneemu.phone.media_rules.decide_media_offer` on the transport the phone used):
  the verdict *differs* when the phone sent SRTP keys over TCP or over TLS with NULL-SHA (in the clear:
  "securely get sent via encrypted signaling paths", seed), offered RTP where the rules give SRTP, or
  SRTP where they give RTP (non-secure or authenticated device, a model without SRTP). At most
  :data:`MAX_CALLS` a connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from phoneemu.errors import DecodeError
from phoneemu.net.tls_decrypt import KeyLog, decrypt_tls, read_in_clear
from phoneemu.net.tls_handshake import client_certificate, device_of_certificate, server_certificate
from phoneemu.protocols import sip
from phoneemu.scenario._capture_flows import Endpoint
from phoneemu.values import host_port

if TYPE_CHECKING:
    from phoneemu.formats.config import DeviceConfig
    from phoneemu.phone.profile import PhoneProfile
    from phoneemu.phone.store import TrustStore

__all__ = ["MAX_CALLS", "MAX_CERTIFICATES", "MAX_CONNECTIONS", "CapturedCall", "CapturedSip", "SipCheck",
           "SipCollector", "check_sip"]

MAX_CONNECTIONS = 10_000
MAX_CALLS = 16
MAX_CERTIFICATES = 1_000
_MAX_MESSAGES = 64  # of each direction of one connection


@dataclass(frozen=True, kw_only=True)
class CapturedCall:
    """One INVITE of a captured connection: what the phone offered, what the far end answered (§G.14)."""

    target: str  # the request URI
    offered: str  # "srtp" | "rtp" | "" (no SDP that parses)
    suites: tuple[str, ...] = ()  # of the offer's a=crypto lines
    status: int | None = None  # the final answer
    answered: str = ""  # "srtp SUITE" | "rtp" | "" (no answer SDP)
    problem: str = ""

    def describe(self) -> str:
        offer = f"srtp ({', '.join(self.suites)})" if self.offered == "srtp" else self.offered or "no SDP"
        answer = f", answered {self.status}" + (f" {self.answered}" if self.answered else "") \
            if self.status is not None else ", no final answer"
        return f"call {self.target}: offered {offer}{answer}" + (f" ({self.problem})" if self.problem else "")

    def as_dict(self) -> dict[str, object]:
        return {"target": self.target, "offered": self.offered, "suites": list(self.suites),
                "status": self.status, "answered": self.answered, "problem": self.problem}


def _sdp_media(body: bytes) -> tuple[str, tuple[str, ...], str]:
    """("srtp"|"rtp", its suites, problem) of an SDP body; ("", (), why) when it does not parse."""
    from phoneemu.protocols import sdp
    from phoneemu.protocols.media import SAVP

    try:
        media = sdp.parse_sdp(body)
    except DecodeError as exc:
        return "", (), f"SDP: {exc}"
    if media.profile == SAVP:
        return "srtp", tuple(c.suite for c in media.crypto), ""
    return "rtp", (), ""


def _calls(requests: list[sip.SipMessage], answers: list[sip.SipMessage]) -> tuple[CapturedCall, ...]:
    """The INVITEs of one connection with their final answers (matched by CSeq)."""
    finals = {(m.header("cseq") or "").strip(): m for m in answers
              if m.status is not None and m.status >= 200}
    out: list[CapturedCall] = []
    for m in [r for r in requests if r.method == "INVITE"][:MAX_CALLS]:
        offered, suites, problem = _sdp_media(m.body)
        answer = finals.get((m.header("cseq") or "").strip())
        answered = ""
        if answer is not None and answer.status == 200 and answer.body:
            kind, got, why = _sdp_media(answer.body)
            answered = f"{kind} {got[0]}" if kind == "srtp" and got else kind
            problem = problem or (f"answer {why}" if why else "")
        out.append(CapturedCall(target=(m.uri or "")[:80], offered=offered, suites=suites[:8],
                                problem=problem, answered=answered,
                                status=answer.status if answer is not None else None))
    return tuple(out)


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
            "calls": _calls(requests, answers)}


class SipCollector:
    """A :class:`~phoneemu.scenario._capture_flows.SipSink` keeping :class:`CapturedSip` (module rules);
    ``secrets``: the key log, to read SIP over TLS."""

    def __init__(self, secrets: KeyLog | None = None, *, limit: int = MAX_CONNECTIONS) -> None:
        self.secrets, self.limit = secrets, limit
        self.found: list[CapturedSip] = []
        self.unlisted = 0
        self._certificates: dict[bytes, bytes] = {}

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
    """The §G.14 offer rule on the transport the phone used, and where its calls' offers differ."""
    from phoneemu.phone import media_rules

    d = media_rules.decide_media_offer(cfg, transport=c.transport, profile=profile)
    differs: list[str] = []
    for call in c.calls:
        if call.offered == "srtp" and "NULL" in c.tls:
            differs.append(f"{call.target}: SRTP keys sent over {c.tls} (TLS that encrypts nothing: in the "
                           "clear)")
        elif call.offered == "srtp" and c.transport != "tls":
            differs.append(f"{call.target}: SRTP keys sent over {c.transport} (in the clear; the rules give "
                           f"RTP: {d.rule})")
        elif call.offered == "srtp" and not d.accepted:
            differs.append(f"{call.target}: offered SRTP, the rules give RTP ({d.rule})")
        elif call.offered == "rtp" and d.accepted:
            differs.append(f"{call.target}: offered RTP, the rules give SRTP ({d.rule})")
    return d.rule, differs
