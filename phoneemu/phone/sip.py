"""The phone registering with the CallManager: SIP REGISTER, digest authentication (spec §G.13, §G.9, §G.5).

Steps:

1. The phone needs an accepted config (``G.13-no-config`` otherwise); its credentials are the config's
   first line's digest user and password (:func:`phoneemu.formats.config.digest_credentials`), its
   REGISTER's user that line's directory number (``line/name``), else the device name ``SEP<MAC>``.
2. Transport (§G.9): a device in authenticated or encrypted mode whose CTL holds a CUCM certificate
   registers over TLS (the registrar's ``securedSipPort``), any other over TCP (``sipPort``). Over TLS
   the registrar's certificate must be a CCM / CCM+TFTP record of the CTL (§G.5:
   :func:`phoneemu.phone.rules.decide_sip_server`), else nothing is sent (``G.5-sip-server-untrusted``);
   the phone presents its own certificate when asked, its LSC, else its MIC (§F.9, mutual
   authentication; ``client_cert``): a TLS alert refusing it is ``G.13-device-cert-refused``.
3. REGISTER (:mod:`phoneemu.protocols.sip`). A ``401`` challenge is answered with the RFC 2617 MD5
   response, ``qop=auth``, a fresh cnonce and the nonce count; a second ``401`` with ``stale=TRUE`` is
   answered once more with its new nonce (no one is asked, RFC 2617 §3.2.1); any other ``401`` after an
   answer to a fresh challenge means the credentials were refused (``G.13-digest-rejected``). The phone
   keeps the last challenge (RAM, :class:`DigestCache`) and answers it at once when it registers again
   (the next nonce count, RFC 2617 §3.2.2): within the registrar's nonce validity (600 s) it is
   registered without a new challenge; past it the registrar says ``stale=TRUE``. A challenge the config
   carries no credentials for: ``G.13-no-credentials``. ``200``: ``G.13-registered``; another final status:
   ``G.13-registrar-refused``; no connection, or no answer within the timeout: ``G.13-unreachable``
   (the next CallManager of the config, if any, is tried; see "Where" below).
   Interoperability (RFC 3261, RFC 2617, RFC 7616; ours where they leave a choice): of several
   WWW-Authenticate challenges the first the phone can answer is taken (MD5 — CUCM's —, or MD5-sess
   with a qop; qop ``auth``, else ``auth-int``; ``opaque`` returned unchanged); a 401 offering none
   (SHA-256 only, Basic, no challenge, no nonce) is ``G.13-registrar-refused`` naming what it offered,
   and so is a 407 (a proxy's challenge: not answered) and a 401 whose Digest challenge does not parse
   (:func:`phoneemu.protocols.sip.parse_digest`; the reason names the field and offset). Ours: §G.13
   says only that CUCM answers with a 401 carrying realm and nonce; a malformed one is still the
   registrar answering, so the phone stops there as for any refusal (it does not try the next
   CallManager: it does so only without a usable connection). A ``423`` is asked again with its Min-Expires
   (at most a day); a ``200`` granting the phone's binding ``expires=0`` is no registration; a refusal's
   Retry-After and a redirect's Contact are named in the reason. A response is the answer to a
   request when it is of the request's transaction (RFC 3261 §17.1.3, §8.1.3.3, §18.1.2): one Via, with
   the request's branch and sent-by, the request's Call-ID and CSeq (number and method); any other — of
   an earlier request (a retransmission, a second response in the same segment), another branch, sent-by
   or Call-ID, no CSeq or no Via, several Vias — is skipped (counted in the timeout's reason), never
   taken for the answer (ours: the Call-ID too, and no response without them taken as the request's). A
   request the server sends meanwhile on the connection (an OPTIONS keep-alive between the 401 and the 200, a
   NOTIFY) is not an answer either: the phone answers it (RFC 3261 §11.2: OPTIONS ``200`` with Allow,
   Accept, Supported; §8.2.1: another method ``405``, an unknown one ``501``;
   :func:`phoneemu.protocols.sip.answer_request`) and waits on;
   bounded (ours): at most :data:`MAX_SERVER_REQUESTS` answered per request of its own, and its timeout
   runs from its request whatever the server sends.
4. Every decision goes to the event log (the ``sip`` check of a scenario reads the result).

Each REGISTER reports the checksum of the installed ITL (spec §G.1, "reports the installed ITL's hash
at registration"; the form is ours: ``X-Phoneemu-ITL-Hash``, :mod:`phoneemu.lab.registrations`).

Where: the registrar given (the ``sip`` step, ``boot --register HOST``), or else the CallManagers of the
config's ``devicePool/callManagerGroup`` (spec §H.5) in priority order, each on its ``sipPort`` /
``securedSipPort`` (5060 / 5061 when absent): one unreachable, or over TLS presenting a certificate
the CTL does not list (§G.5), the next is tried (its rules stay in ``rules``, it is named in
``passed_over``); a config naming none: ``G.13-no-callmanager``. Ours: what makes the phone try the
next one, the order and its bound (five, as for TVS), one request per message exchange, at most three
REGISTERs.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from phoneemu.errors import DecodeError, TransportError
from phoneemu.formats import config as config_fmt
from phoneemu.net.capture import note_connect, note_peer
from phoneemu.net.tls import (
    client_certificate_refused,
    open_tls_connection,
    peer_certificate_der,
    phone_client_context,
)
from phoneemu.phone import rules
from phoneemu.phone.events import Decision, EventLog
from phoneemu.phone.profile import PhoneProfile
from phoneemu.phone.store import TrustStore
from phoneemu.protocols import sip
from phoneemu.protocols.sip import SIP_PORT, SIPS_PORT
from phoneemu.values import host_port

__all__ = ["MAX_SERVER_REQUESTS", "DigestCache", "SipResult", "SipSession", "answer_challenge",
           "authorization", "exchange", "register"]

_MAX_REQUESTS = 3
#: requests of the server's the phone answers while it waits for one response of its own (ours: a flood
#: of them is left unanswered, and never holds the phone past its timeout)
MAX_SERVER_REQUESTS = 16
#: the registration interval asked (ours), and the most a 423's Min-Expires may raise it to (ours: a day)
_EXPIRES = 3600
_MAX_EXPIRES = 86400
#: CallManagers of the config's group tried in turn, at most (ours: as many as TVS servers, spec §E.7.5)
_MAX_CALL_MANAGERS = config_fmt.MAX_SERVERS
#: how a registration with one CallManager ends when the phone tries the next (no connection it can use)
_NEXT_CALL_MANAGER = frozenset({"G.13-unreachable", "G.5-sip-server-untrusted", "G.13-device-cert-refused"})


@dataclass(frozen=True, kw_only=True, slots=True)
class SipResult:
    """How a registration ended: the deciding rule and why, over which transport, what was asked."""

    registered: bool
    rule: str
    reason: str
    transport: str = ""  # "tcp" | "tls" | "" (not tried)
    server: str = ""
    challenged: bool = False
    stale: bool = False
    status: int | None = None
    #: every rule applied, in order: the registrar's certificate (§G.5, over TLS), then ``rule``
    rules: tuple[str, ...] = ()
    tls: str = ""  # over TLS: the version and cipher negotiated ("TLSv1.2 AES128-SHA")
    #: over TLS, the phone's own certificate it presented: "LSC", "MIC" or "" (none; TCP)
    client_cert: str = ""
    #: the config's CallManagers tried first and passed over, each "HOST:PORT rule" (unreachable, or over
    #: TLS a certificate the CTL does not list), in the order tried
    passed_over: tuple[str, ...] = ()


@dataclass(kw_only=True, slots=True)
class SipSession:
    """The connection of a registration that succeeded, kept open for what the phone does next over it
    (a call, :mod:`phoneemu.phone.call`): its streams, who the phone is there, its credentials."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    stream: sip.SipStream
    host: str
    server: str
    transport: str
    local: str
    user: str
    device: str
    mac: str
    creds: tuple[str, str] | None
    cache: DigestCache
    timeout: float


@dataclass(kw_only=True, slots=True)
class DigestCache:
    """The last digest challenge of a registrar (``server``) and the nonce count used with it (RAM)."""

    server: str = ""
    challenge: dict[str, str] | None = None
    nc: int = 0


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes, *,
                    timeout: float, stream: sip.SipStream) -> sip.SipMessage:
    """Send ``request``; the first final response to it (1xx skipped; so is a response of another
    transaction, :func:`_transaction_of_response`: a top Via branch or sent-by, Call-ID or CSeq that is
    not the request's, none of them, or several Vias, e.g. a retransmitted earlier response, RFC 3261 §17.1.3,
    §8.1.3.3) framed out of the connection's ``stream`` (bytes after it stay there for the next exchange).
    A request of the server's meanwhile (an OPTIONS keep-alive, a NOTIFY) is never taken for the answer:
    it is answered (:func:`phoneemu.protocols.sip.answer_request`: OPTIONS 200, others 405 / 501 ...),
    at most :data:`MAX_SERVER_REQUESTS` of them per exchange, those after left unanswered; none of them
    moves the deadline (``timeout`` from the send). TransportError / DecodeError."""
    mine = _transaction_of(request)
    writer.write(request)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    await asyncio.wait_for(writer.drain(), timeout)
    provisional = ""
    skipped = answered = unanswered = 0
    while True:
        msg = stream.next()
        if msg is not None:
            if msg.status is None:  # the server's request: answered (bounded), never the answer
                if answered >= MAX_SERVER_REQUESTS:
                    unanswered += 1
                    continue
                _, reply = sip.answer_request(msg, to_tag=secrets.token_hex(4))
                if reply is not None:
                    writer.write(reply)  # at most MAX_SERVER_REQUESTS replies, each under a head's size
                    answered += 1
                continue
            if _transaction_of_response(msg) != mine or mine is None:
                skipped += 1
                continue
            if msg.status >= 200:
                return msg
            provisional = f"{msg.status} {msg.reason}"
            continue
        left = deadline - loop.time()
        try:
            if left <= 0:
                raise TimeoutError
            chunk = await asyncio.wait_for(reader.read(4096), left)
        except TimeoutError:
            why = [f"only a provisional {provisional}"] if provisional else []
            why += [f"{skipped} response(s) of another transaction skipped"] if skipped else []
            why += [f"{answered} request(s) of the server answered"] if answered else []
            why += [f"{unanswered} more left unanswered (at most {MAX_SERVER_REQUESTS})"] if unanswered \
                else []
            why += [f"{stream.pending()} bytes of an incomplete message"] if stream.pending() else []
            more = f" ({'; '.join(why)})" if why else ""
            raise TransportError(f"no SIP response within {timeout}s{more}", kind="timeout") from None
        if not chunk:
            cut = f" (in the middle of a message: {stream.pending()} bytes)" if stream.pending() else ""
            raise TransportError(f"the registrar closed the connection without answering{cut}", kind="closed")
        stream.feed(chunk)


#: a transaction's key (RFC 3261 §17.1.3, §18.1.2; ours: the Call-ID too): the top Via's branch, its
#: sent-protocol and sent-by (white space taken out, lower case), the Call-ID, the CSeq number and method
_Transaction = tuple[str, str, str, int, str]


def _transaction_of(request: bytes) -> _Transaction | None:
    """The transaction of a request of ours (:data:`_Transaction`), None when it does not say one (then
    no response is its answer)."""
    try:
        return _transaction_of_response(sip.parse_message(request))
    except DecodeError:
        return None


def _transaction_of_response(msg: sip.SipMessage) -> _Transaction | None:
    """The transaction ``msg`` belongs to (:data:`_Transaction`); None when it lacks Via, Call-ID or
    CSeq, its CSeq is not a number and a method, its Via has no branch, or it carries more than one Via
    value, or an empty one (RFC 3261 §8.1.3.3: a response with several is discarded): then it is no
    request's answer. The Via's sent-by is the request's too (§18.1.2: else the response is discarded),
    its other parameters (``received``, ``rport``: what a server adds) are not compared."""
    vias = [v for k, v in msg.headers if k.lower() in ("via", "v") for v in _split_commas(v)]
    call_id, cseq = msg.header("call-id"), msg.header("cseq")
    if len(vias) != 1 or call_id is None or cseq is None:
        return None
    parts = cseq.split()  # 1*DIGIT LWS Method (RFC 3261 §20.16)
    if len(parts) != 2 or not (parts[0].isascii() and parts[0].isdigit() and len(parts[0]) <= 10):
        return None
    number, method = parts
    sent_by, *params = vias[0].split(";")
    branch = next((value.strip() for name, _, value in (p.partition("=") for p in params)
                   if name.strip().lower() == "branch"), "")
    if not branch:
        return None
    return branch, "".join(sent_by.split()).lower(), call_id.strip(), int(number), method


def _split_commas(value: str) -> list[str]:
    """A header's comma-separated values (RFC 3261 §7.3.1; a comma inside a quoted string is not one)."""
    out, quoted, escaped, start = [], False, False, 0
    for i, c in enumerate(value):
        if escaped:
            escaped = False
        elif quoted and c == "\\":
            escaped = True
        elif c == '"':
            quoted = not quoted
        elif c == "," and not quoted:
            out.append(value[start:i])
            start = i + 1
    out.append(value[start:])
    return [v.strip() for v in out]  # an empty one too: "a ," is two values, one malformed


class _Register:
    """The REGISTER requests of one registration (same Call-ID, rising CSeq)."""

    def __init__(self, mac: str, host: str, transport: str, local: str, *, itl: str | None = None,
                 number: str | None = None) -> None:
        self.device = config_fmt.device_name_for(mac)
        self.user = number or self.device  # the line's directory number, else the device name (ours)
        self.mac = mac
        self.uri = f"sip:[{host}]" if ":" in host else f"sip:{host}"
        self.transport = transport
        self.local = local
        self.call_id = f"{secrets.token_hex(8)}@{self.device}"
        self.tag = secrets.token_hex(4)
        self.cseq = 0
        self.itl = itl or "none"  # the checksum of the installed ITL, reported (spec §G.1)
        self.expires = _EXPIRES
        self.contact_uri = f"sip:{self.device}@{local};transport={transport}"

    def branch(self) -> str:
        """The Via branch of a new REGISTER (each its own transaction): the magic cookie, then random
        (RFC 3261 §8.1.1.7)."""
        return f"z9hG4bK{secrets.token_hex(8)}"

    def request(self, authorization: str | None = None) -> bytes:
        self.cseq += 1
        aor = f"<{self.uri.replace('sip:', f'sip:{self.user}@', 1)}>"
        headers = [
            ("Via", f"SIP/2.0/{self.transport.upper()} {self.local};branch={self.branch()}"),
            ("Max-Forwards", "70"), ("From", f"{aor};tag={self.tag}"), ("To", aor), ("Call-ID", self.call_id),
            ("CSeq", f"{self.cseq} REGISTER"),
            ("Contact", f"<{self.contact_uri}>;"
                        f'+sip.instance="<urn:uuid:00000000-0000-0000-0000-{self.mac}>"'),
            ("Expires", str(self.expires)), ("User-Agent", "phoneemu"),
            ("X-Phoneemu-ITL-Hash", self.itl),  # §G.1 "reports the installed ITL's hash" (the form: ours)
        ]
        if authorization is not None:
            headers.append(("Authorization", authorization))
        return sip.build_message(f"REGISTER {self.uri} SIP/2.0", headers)


def authorization(challenge: dict[str, str], user: str, password: str, count: int, *, method: str,
                  uri: str, body: bytes = b"") -> str:
    """The Authorization header answering ``challenge`` for a ``method`` request to ``uri`` with ``body``
    (RFC 2617 §3.2.2: qop=auth when offered, else auth-int when offered; the challenge's algorithm, MD5
    or MD5-sess; its ``opaque`` returned unchanged; ``count`` its nonce count)."""
    nonce, realm = challenge.get("nonce", ""), challenge.get("realm", "")
    offered = [q.strip() for q in challenge.get("qop", "").split(",")]
    qop = "auth" if "auth" in offered else "auth-int" if "auth-int" in offered else ""
    algorithm = "MD5-sess" if sip.ascii_upper(challenge.get("algorithm", "")) == "MD5-SESS" else "MD5"
    cnonce = secrets.token_hex(8) if qop else ""
    nc = f"{count:08x}" if qop else ""
    response = sip.digest_response(username=user, realm=realm, password=password, method=method,
                                   uri=uri, nonce=nonce, nc=nc, cnonce=cnonce, qop=qop, algorithm=algorithm,
                                   body=body)
    params = [("username", user), ("realm", realm), ("nonce", nonce), ("uri", uri),
              ("response", response), ("algorithm", algorithm)]
    if qop:
        params += [("qop", qop), ("nc", nc), ("cnonce", cnonce)]
    if "opaque" in challenge:  # RFC 2617 §3.2.2: returned unchanged
        params.append(("opaque", challenge["opaque"]))
    return sip.format_digest(params)


async def register(store: TrustStore, profile: PhoneProfile, mac: str, host: str | None, *, sip_port: int,
                   sips_port: int, events: EventLog, clock: Callable[[], int], timeout: float = 5.0,
                   keylog: str | Path | None = None, cache: DigestCache | None = None,
                   then: Callable[[SipSession], Awaitable[None]] | None = None) -> SipResult:
    """Register with the registrar at ``host``, or (``host`` None) with the CallManagers the config's
    ``devicePool`` names, in priority order, the next one tried while one gives no usable connection
    (module docstring, "Where"); every decision is logged. ``then``: run over the connection of a
    registration that succeeded, before it is closed (it must not raise)."""
    if host is not None or store.config is None:  # (no config: G.13-no-config before any address is used)
        return await _register_at(store, profile, mac, host or "", sip_port=sip_port, sips_port=sips_port,
                                  events=events, clock=clock, timeout=timeout, keylog=keylog, cache=cache,
                                  then=then)
    try:
        managers = sorted(config_fmt.call_managers(store.config.config), key=lambda cm: cm.priority)
    except DecodeError as exc:
        return _decided(events, clock, mac, "G.13-no-config",
                        f"the config's devicePool does not parse: {exc}")
    if not managers:
        return _decided(events, clock, mac, "G.13-no-callmanager",
                        "the config names no CallManager (devicePool/callManagerGroup) and no registrar was "
                        "given")
    earlier: list[str] = []
    passed: list[str] = []
    for cm in managers[:_MAX_CALL_MANAGERS]:
        result = await _register_at(store, profile, mac, cm.host, sip_port=cm.sip_port or SIP_PORT,
                                    sips_port=cm.secured_sip_port or SIPS_PORT, events=events, clock=clock,
                                    timeout=timeout, keylog=keylog, cache=cache, then=then)
        result = dataclasses.replace(result, rules=(*earlier, *result.rules), passed_over=tuple(passed))
        if result.rule not in _NEXT_CALL_MANAGER:
            return result
        earlier.extend(result.rules[len(earlier):])
        passed.append(f"{result.server} {result.rule}")
    return result


def _decided(events: EventLog, clock: Callable[[], int], mac: str, rule: str, reason: str) -> SipResult:
    """A registration that ended before any registrar was tried (logged)."""
    events.record(Decision(rule=rule, accepted=False, reason=reason, file="", kind="sip"), time=clock(),
                  phone=mac)
    return SipResult(registered=False, rule=rule, reason=reason, rules=(rule,))


async def _register_at(store: TrustStore, profile: PhoneProfile, mac: str, host: str, *, sip_port: int,
                       sips_port: int, events: EventLog, clock: Callable[[], int], timeout: float,
                       keylog: str | Path | None, cache: DigestCache | None,
                       then: Callable[[SipSession], Awaitable[None]] | None = None) -> SipResult:
    """Register with the registrar at ``host`` (module docstring, steps 1-4), then ``then``."""
    applied: list[str] = []  # the §G.5 rule over TLS, before the registration's own
    applied_tls: list[str] = []  # the TLS version and cipher, over TLS

    def done(rule: str, ok: bool, reason: str, *, transport: str = "", server: str = "",
             challenged: bool = False, stale: bool = False, status: int | None = None,
             client_cert: str = "") -> SipResult:
        events.record(Decision(rule=rule, accepted=ok, reason=reason, file=server, kind="sip"), time=clock(),
                      phone=mac)
        return SipResult(registered=ok, rule=rule, reason=reason, transport=transport, server=server,
                         challenged=challenged, stale=stale, status=status, rules=(*applied, rule),
                         tls="".join(applied_tls), client_cert=client_cert)

    if store.config is None:
        return done("G.13-no-config", False, "no accepted config: no line to register")
    cfg = store.config.config
    try:
        creds = config_fmt.digest_credentials(cfg)
        number = config_fmt.line_number(cfg)
    except DecodeError as exc:
        return done("G.13-no-config", False, f"the config's lines do not parse: {exc}")
    transport, _secure = rules.sip_transport(store, cfg, profile=profile)
    port = sips_port if transport == "tls" else sip_port
    server = host_port(host, port)
    own = store.credential if transport == "tls" else None  # LSC, else MIC (§F.9): mutual TLS
    presented = "" if own is None else "LSC" if own is store.lsc else "MIC"
    try:
        if transport == "tls":
            ctx = phone_client_context(profile.tls_versions, str(keylog) if keylog is not None else None,
                                       identity=None if own is None else (own.cert(), own.key()),
                                       authenticated_only=cfg.device_security_mode == 2)
            reader, writer = await open_tls_connection(host, port, ctx, timeout=timeout)
        else:
            note_connect(host, port)  # a live capture's: the phones' host (phoneemu.net.capture rules)
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            note_peer(writer.get_extra_info("peername"))
    except (TransportError, OSError, TimeoutError) as exc:
        why = exc.message if isinstance(exc, TransportError) else \
            f"{server}: cannot connect: {exc or 'timeout'}"
        if isinstance(exc, TransportError) and client_certificate_refused(why, presented=own is not None):
            mine = f"its {presented}" if presented else "none: the phone holds no LSC or MIC"
            return done("G.13-device-cert-refused", False, f"the registrar refused the phone's certificate "
                        f"({mine}): {why}", transport=transport, server=server, client_cert=presented)
        return done("G.13-unreachable", False, why, transport=transport, server=server)
    try:
        if transport == "tls":
            sslobj = writer.get_extra_info("ssl_object")
            if sslobj is not None and sslobj.cipher() is not None:
                applied_tls.append(f"{sslobj.version()} {sslobj.cipher()[0]}")
            d = rules.decide_sip_server(store, peer_certificate_der(writer), server=server)
            events.record(d, time=clock(), phone=mac)
            if not d.accepted:
                return SipResult(registered=False, rule=d.rule, reason=d.reason, transport=transport,
                                 server=server, rules=(d.rule,), tls="".join(applied_tls),
                                 client_cert=presented)
            applied.append(d.rule)
        sockname = writer.get_extra_info("sockname")
        local = host_port(sockname[0], sockname[1]) if sockname else "0.0.0.0:0"
        reg = _Register(mac, host, transport, local, itl=store.itl_checksum(), number=number)
        if cache is None:
            cache = DigestCache(server=server)
        elif cache.server != server:  # another registrar: its challenge is not this one's
            cache.server, cache.challenge, cache.nc = server, None, 0
        stream = sip.SipStream()  # one per connection: what came after a response waits for the next exchange
        result = await _converse(reg, reader, writer, creds, cache, timeout=timeout, stream=stream,
                                 done=functools.partial(done, transport=transport, server=server,
                                                        client_cert=presented))
        if then is not None and result.registered:
            await then(SipSession(reader=reader, writer=writer, stream=stream, host=host, server=server,
                                  transport=transport, local=local, user=reg.user, device=reg.device, mac=mac,
                                  creds=creds, cache=cache, timeout=timeout))
        return result
    except (TransportError, DecodeError, OSError, TimeoutError) as exc:
        return done("G.13-unreachable", False, f"SIP exchange failed: {exc or type(exc).__name__}",
                    transport=transport, server=server)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def answer_challenge(cache: DigestCache, challenge: dict[str, str], creds: tuple[str, str], *, method: str,
                     uri: str, body: bytes = b"") -> str:
    """Answer ``challenge`` for a ``method`` request to ``uri`` (kept in ``cache`` with its next nonce
    count: every request answering the same nonce counts up, RFC 2617 §3.2.2)."""
    if cache.challenge is None or cache.challenge.get("nonce") != challenge.get("nonce"):
        cache.challenge, cache.nc = challenge, 0
    cache.nc += 1
    return authorization(challenge, *creds, cache.nc, method=method, uri=uri, body=body)


async def _converse(reg: _Register, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    creds: tuple[str, str] | None, cache: DigestCache, *, timeout: float,
                    done: Callable[..., SipResult], stream: sip.SipStream | None = None) -> SipResult:
    """REGISTER, and answer the challenges (module docstring, step 3); ``stream`` frames the
    connection's responses (one per connection: what comes after a response waits for the next)."""
    stream = stream if stream is not None else sip.SipStream()
    challenged = stale = False
    authorization: str | None = None
    from_cache = False
    if creds is not None and cache.challenge is not None:  # the last challenge, answered at once
        authorization = answer_challenge(cache, cache.challenge, creds, method="REGISTER", uri=reg.uri)
        from_cache = True
    for _ in range(_MAX_REQUESTS):
        resp = await exchange(reader, writer, reg.request(authorization), timeout=timeout, stream=stream)
        if resp.status == 200:
            granted = _granted(resp, reg)
            if granted == 0:  # the binding removed, not made (RFC 3261 §10.2.4)
                return done("G.13-registrar-refused", False, "200 OK but with expires 0: the registrar "
                            "keeps no binding for the phone", challenged=challenged, stale=stale, status=200)
            how = "after a digest challenge" if challenged else "no challenge"
            if granted is not None and granted != reg.expires:
                how += f"; {granted} s granted"
            return done("G.13-registered", True, f"200 OK ({how})", challenged=challenged,
                        stale=stale, status=resp.status)
        if resp.status == 423 and reg.expires < (least := _min_expires(resp)) <= _MAX_EXPIRES:
            reg.expires = least  # RFC 3261 §10.2.8: again, asking at least Min-Expires
            if authorization is not None and creds is not None and cache.challenge is not None:
                authorization = answer_challenge(cache, cache.challenge, creds, method="REGISTER",
                                                 uri=reg.uri)
            continue
        if resp.status != 401:
            return done("G.13-registrar-refused", False, _refusal(resp), challenged=challenged, stale=stale,
                        status=resp.status)
        try:
            offered = sip.digest_challenges(resp, "WWW-Authenticate")
        except DecodeError as exc:  # the registrar answered: refused, not unreachable (module docstring)
            return done("G.13-registrar-refused", False, f"401 {resp.reason}: its digest challenge does not "
                        f"parse ({exc})", challenged=True, stale=stale, status=401)
        picked = sip.pick_challenge(offered)
        if picked is None or not picked.get("nonce"):
            return done("G.13-registrar-refused", False, _unanswerable(resp, offered), challenged=True,
                        stale=stale, status=401)
        challenge = picked
        is_stale = sip.ascii_upper(challenge.get("stale", "")) == "TRUE"
        if authorization is not None and not is_stale and not from_cache:
            cache.challenge = None  # refused: the next registration starts afresh
            return done("G.13-digest-rejected", False, "401 again after the digest answer: credentials "
                        "refused", challenged=True, stale=stale, status=401)
        if creds is None:
            realm = challenge.get("realm", "?")
            return done("G.13-no-credentials", False, f"challenged (401, realm {realm}) but the config "
                        "carries no digest credentials", challenged=True, status=401)
        stale = stale or (authorization is not None and is_stale)
        challenged, from_cache = True, False
        authorization = answer_challenge(cache, challenge, creds, method="REGISTER", uri=reg.uri)
    if resp.status == 423:
        return done("G.13-registrar-refused", False, f"{_refusal(resp)} after {_MAX_REQUESTS} REGISTERs",
                    challenged=challenged, stale=stale, status=423)
    return done("G.13-digest-rejected", False, f"still challenged after {_MAX_REQUESTS} REGISTERs",
                challenged=True, stale=stale, status=401)


def _min_expires(resp: sip.SipMessage) -> int:
    """A 423's Min-Expires (0 when absent or not a number)."""
    raw = (resp.header("min-expires") or "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else 0


def _granted(resp: sip.SipMessage, reg: _Register) -> int | None:
    """The interval a 2xx grants the phone's binding: its Contact's ``expires`` parameter, else the
    Expires header (RFC 3261 §10.2.4); None when it says neither."""
    expires = None
    for k, v in resp.headers:
        if k.lower() not in ("contact", "m"):
            continue
        for contact in v.split(","):  # several values in one header, or repeated headers (RFC 3261 §7.3.1)
            uri, _, params = contact.strip().partition(">")
            if uri.strip("<").strip().lower() != reg.contact_uri.lower():
                continue
            for param in params.split(";"):
                name, _, value = param.partition("=")
                if name.strip().lower() == "expires" and value.strip().isdigit() and len(value.strip()) <= 9:
                    expires = int(value.strip())
    if expires is not None:
        return expires
    raw = (resp.header("expires") or "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 9 else None


def _refusal(resp: sip.SipMessage) -> str:
    """A final status the phone stops at, with what it says about where or when to try again."""
    why = f"{resp.status} {resp.reason}".rstrip()
    notes = []
    if resp.status == 407:
        notes.append("a proxy's Proxy-Authenticate challenge: the phone answers only a registrar's 401 "
                     "WWW-Authenticate")
    if resp.status == 423:
        notes.append(f"Min-Expires {resp.header('min-expires') or 'absent'}, the phone asked "
                     f"{_EXPIRES} s, at most {_MAX_EXPIRES} s")
    if resp.status is not None and 300 <= resp.status < 400 and (contact := resp.header("contact")):
        notes.append(f"redirected to {contact[:80]} (the phone does not follow redirects)")
    if (after := resp.header("retry-after")) is not None:
        notes.append(f"Retry-After {after[:40]}")
    return f"{why} ({'; '.join(notes)})" if notes else why


def _unanswerable(resp: sip.SipMessage, offered: list[dict[str, str]]) -> str:
    """Why a 401's challenges are none the phone can answer."""
    if not offered:
        schemes = [(v.split(None, 1) or ["(empty)"])[0][:20] for k, v in resp.headers
                   if k.lower() == "www-authenticate"]
        named = f" (only {', '.join(schemes)})" if schemes else " (no WWW-Authenticate)"
        return f"401 {resp.reason} without a Digest challenge{named}"
    if all(ch.get("nonce") for ch in offered) or sip.pick_challenge(offered) is None:
        kinds = ", ".join(f"algorithm {ch.get('algorithm', 'MD5')[:20]} qop {ch.get('qop', '-')[:20]}"
                          for ch in offered)
        return f"401 {resp.reason}: no digest challenge the phone can answer ({kinds}; it answers MD5 " \
               "or MD5-sess, qop auth or auth-int)"
    return f"401 {resp.reason}: its digest challenge carries no nonce"
