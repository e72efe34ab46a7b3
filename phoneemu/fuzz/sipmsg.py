"""Seeds, mutation and phoneemu targets of SIP registration messages (spec §G.13, RFC 3261, RFC 2617).

Rules implemented here:

* Formats: ``sip-response`` — what a registering phone reads: the registrar's answers to its REGISTERs,
  back to back as they come over one connection (a 401 challenge, then the 200 after the digest
  answer) —, and ``sip-request`` — what the lab registrar reads: one or more REGISTERs (or other
  requests) from a phone. Messages are text, not signed: ``--resign-ratio`` does not apply, and there
  is no byte round trip (one message has several spellings: header order, compact names, folding).
* Seeds are built with :func:`phoneemu.protocols.sip.build_message` and the phone's own REGISTER
  (:class:`phoneemu.phone.sip._Register`) with fixed Call-ID, tags, Via branches (``z9hG4bK`` and the
  CSeq number in four digits) and nonces, so they are the same in every process; the phone target's
  REGISTERs carry the same Call-ID, tag and branches, so a seed's responses are of their transactions
  (the phone matches a response by its Via branch, Call-ID and CSeq, RFC 3261 §17.1.3).
* Mutation is structure-aware: each message is split into its start line, header lines and body, and
  changed there — the start line (method, URI, version, status code), header lines removed, duplicated,
  reordered, renamed (compact form, case, no colon, space before it, unknown), their values (empty,
  64 KiB, control characters, NUL, bytes that are not UTF-8, CR or LF alone), folded continuation
  lines, ``Content-Length`` lies (missing, twice, negative, not a number, over the limit, ±1), the
  parameters of a digest header (removed, duplicated, unbalanced or escaped quotes, lying ``qop``,
  ``stale``, other algorithms, 1,000 parameters), bare LF line ends, a body, raw garbage, messages
  dropped, repeated or swapped; then, sometimes, a cut at a line boundary or bit flips.
* Targets (``--target phoneemu``): ``sip-response`` runs the phone's registration conversation
  (:func:`phoneemu.phone.sip._converse`) over an in-memory connection whose registrar says the input
  and then closes, with digest credentials from its config (its REGISTERs as the seeds', above);
  ``sip-request`` feeds the input to the lab registrar (:class:`phoneemu.lab.sip_service.SipRegistrar`)
  as one connection does, a known device with a digest user, a known device without one, and a nonce
  the seeds answer. DecodeError and TransportError are rejections. Oracles (a finding when broken): the
  phone registers only when a final ``200`` of one of its REGISTERs came (that REGISTER's Call-ID, CSeq
  and Via branch, one Via: checked here on their own, not with the phone's code); every REGISTER the
  phone writes is one well-formed message with no control character in any header (a challenge's
  nonce or realm echoed into its Authorization header must not inject a header); every answer of the
  registrar parses, and a ``200`` answers a REGISTER of a known device that has no digest user or whose
  Authorization carries the right digest response for an issued nonce.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from phoneemu.errors import DecodeError, EncodeError, TransportError
from phoneemu.fuzz.messages import finish_mutant
from phoneemu.protocols import sip

__all__ = ["SIP_FORMATS", "SipAcceptanceError", "SipMutator", "sip_callable", "sip_seeds"]

SIP_FORMATS = ("sip-response", "sip-request")
_MAC = "001122334455"
_DEVICE = f"SEP{_MAC}"
_OPEN_MAC = "001122334466"  # a known device without a digest user
_USER, _PASSWORD = "alice", "s3cret"
_HOST = "10.0.0.1"
_URI = f"sip:{_HOST}"
_NONCE = "5eed0000000000000000000000000001"
_CALL_ID = "fuzz0001@SEP001122334455"


def _branch(cseq: int) -> str:
    """The Via branch of the seeds' (and the phone target's) REGISTER ``cseq`` (module docstring)."""
    return f"z9hG4bK{cseq:04d}"


def _headers(cseq: int, *, mac: str = _MAC) -> list[tuple[str, str]]:
    aor = f"<sip:SEP{mac}@{_HOST}>"
    return [("Via", f"SIP/2.0/TCP 10.0.0.9:5060;branch={_branch(cseq)}"), ("Max-Forwards", "70"),
            ("From", f"{aor};tag=a1b2"), ("To", aor), ("Call-ID", _CALL_ID), ("CSeq", f"{cseq} REGISTER"),
            ("Contact", f'<sip:SEP{mac}@10.0.0.9:5060;transport=tcp>;+sip.instance='
                        f'"<urn:uuid:00000000-0000-0000-0000-{mac}>"'), ("Expires", "3600")]


def _challenge(*, stale: bool = False, qop: bool = True) -> str:
    params = [("realm", sip.REALM), ("nonce", _NONCE), ("algorithm", "MD5")]
    if qop:
        params.append(("qop", "auth"))
    if stale:
        params.append(("stale", "TRUE"))
    return sip.format_digest(params, unquoted=frozenset({"algorithm", "stale"}))


def _authorization(nc: int = 1) -> str:
    ncs, cnonce = f"{nc:08x}", "0a0b0c0d"
    response = sip.digest_response(username=_USER, realm=sip.REALM, password=_PASSWORD, method="REGISTER",
                                   uri=_URI, nonce=_NONCE, nc=ncs, cnonce=cnonce, qop="auth")
    return sip.format_digest([("username", _USER), ("realm", sip.REALM), ("nonce", _NONCE), ("uri", _URI),
                              ("response", response), ("algorithm", "MD5"), ("qop", "auth"), ("nc", ncs),
                              ("cnonce", cnonce)])


def sip_seeds(fmt: str) -> list[tuple[str, bytes]]:
    """Named valid inputs of ``fmt`` (see module docstring)."""
    m = sip.build_message
    if fmt == "sip-response":
        def resp(status: str, cseq: int, *extra: tuple[str, str]) -> bytes:
            return m(f"SIP/2.0 {status}", [*_headers(cseq), *extra])

        ok = resp("200 OK", 2, ("Contact", "<sip:SEP001122334455@10.0.0.9:5060>;expires=3600"))
        return [
            ("challenge-then-ok", resp("401 Unauthorized", 1, ("WWW-Authenticate", _challenge())) + ok),
            ("ok", resp("200 OK", 1)),
            ("trying-then-ok", resp("100 Trying", 1) + resp("200 OK", 1)),
            ("challenge-no-qop-then-ok",
             resp("401 Unauthorized", 1, ("WWW-Authenticate", _challenge(qop=False))) + ok),
            ("stale-then-ok", resp("401 Unauthorized", 1, ("WWW-Authenticate", _challenge()))
             + resp("401 Unauthorized", 2, ("WWW-Authenticate", _challenge(stale=True)))
             + resp("200 OK", 3, ("Contact", "<sip:SEP001122334455@10.0.0.9:5060>;expires=3600"))),
            ("forbidden", resp("403 Forbidden", 1)),
        ]
    if fmt == "sip-request":
        def reg(cseq: int, *extra: tuple[str, str], mac: str = _MAC) -> bytes:
            return m(f"REGISTER {_URI} SIP/2.0", [*_headers(cseq, mac=mac), *extra])

        return [
            ("register", reg(1)),
            ("register-answered", reg(2, ("Authorization", _authorization()))),
            ("register-twice", reg(1) + reg(2, ("Authorization", _authorization(2)))),
            ("register-open-device", reg(1, mac=_OPEN_MAC)),
            ("options", m(f"OPTIONS {_URI} SIP/2.0", _headers(1))),
        ]
    raise EncodeError(f"{fmt!r} is not a SIP format ({', '.join(SIP_FORMATS)})", path="format")


# --------------------------------------------------------------------------- mutation
@dataclass(kw_only=True)
class _Msg:
    start: bytes
    headers: list[bytes]
    body: bytes


def _split(data: bytes) -> list[_Msg]:
    """The messages of ``data`` (by blank line and Content-Length); never fails: what does not frame is
    the last message's body."""
    out: list[_Msg] = []
    pos = 0
    while pos < len(data) and len(out) < 16:
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            lines = data[pos:].split(b"\r\n")
            out.append(_Msg(start=lines[0], headers=lines[1:], body=b""))
            return out
        lines = data[pos:end].split(b"\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() in (b"content-length", b"l") and value.strip().isdigit():
                length = int(value.strip())
        out.append(_Msg(start=lines[0], headers=lines[1:], body=data[end + 4:end + 4 + length]))
        pos = end + 4 + length
    if pos < len(data) and out:
        out[-1].body += data[pos:]
    return out


def _join(msgs: list[_Msg]) -> bytes:
    return b"".join(b"\r\n".join([m.start, *m.headers]) + b"\r\n\r\n" + m.body for m in msgs)


def _fix_length(m: _Msg) -> None:
    for i, line in enumerate(m.headers):
        name, sep, _ = line.partition(b":")
        if sep and name.strip().lower() in (b"content-length", b"l"):
            m.headers[i] = name + b": " + str(len(m.body)).encode()


_VALUES = (b"", b" ", b"\x00", b"\r", b"\n", b"\x7f", b"\xff\xfe", "\u00e9\u4e2d".encode(), b"\t\t",
           b'"', b"\\", b",", b";", b"=", b"<", b">", b"%00", b"sip:", b"0" * 40)


def _value(rng: random.Random) -> bytes:
    pick = rng.random()
    if pick < 0.1:
        return b"A" * rng.choice((1024, 8192, 65536))
    if pick < 0.2:
        return rng.randbytes(rng.choice((1, 4, 16)))
    return b"".join(rng.choice(_VALUES) for _ in range(rng.randint(1, 4)))


_DIGEST_PARAMS = (b"realm", b"nonce", b"qop", b"algorithm", b"stale", b"opaque", b"username", b"uri",
                  b"response", b"nc", b"cnonce", b"domain")


def _digest_mutant(rng: random.Random, value: bytes) -> bytes:
    """A digest header value changed in its parameters (module docstring)."""
    scheme, _, rest = value.partition(b" ")
    params = [p.strip() for p in rest.split(b",") if p.strip()]
    op = rng.randrange(9)
    if op == 0 and params:
        del params[rng.randrange(len(params))]
    elif op == 1 and params:
        params.insert(rng.randrange(len(params) + 1), rng.choice(params))
    elif op == 2:
        name = rng.choice(_DIGEST_PARAMS)
        quoted = rng.choice((b'"' + _value(rng) + b'"', _value(rng), b'"unbalanced', b'"a\\"b"', b'"a\\',
                             b'"\\\r"', b"auth-int", b"auth,auth-int", b"TRUE", b"SHA-256", b"MD5-sess"))
        params.insert(rng.randrange(len(params) + 1), name + b"=" + quoted)
    elif op == 3:
        params = [b"x%d=%d" % (i, i) for i in range(rng.choice((33, 1000)))]
    elif op == 4:
        scheme = rng.choice((b"Basic", b"digest", b"DIGEST", b"", b"Digest\t", b"Bearer"))
    elif op == 5 and params:
        i = rng.randrange(len(params))
        name, _, v = params[i].partition(b"=")
        params[i] = name + rng.choice((b"", b"=", b" = ", b"==")) + v
    elif op == 6:
        rng.shuffle(params)
    elif op == 7 and params:
        i = rng.randrange(len(params))
        name, _, v = params[i].partition(b"=")
        params[i] = name + b"=" + v[: rng.randrange(len(v) + 1)]
    else:
        return value + rng.choice((b",", b", ", b',x="', b"\x00"))
    return scheme + b" " + b", ".join(params)


_LINE_END = re.compile(b"\r\n")
_DIGEST_HEADERS = (b"www-authenticate", b"authorization")
_NAMES = (b"Via", b"v", b"From", b"f", b"To", b"t", b"Call-ID", b"i", b"CSeq", b"Contact", b"m",
          b"Content-Length", b"l", b"WWW-Authenticate", b"Authorization", b"Expires", b"X-Unknown", b"",
          b"Bad Name", b"\xff", b"Content-Length ")


class SipMutator:
    """Mutants of a SIP format's seeds; ``mutate(rng)`` is deterministic in ``rng``."""

    OPS = ("start-line", "header-remove", "header-duplicate", "header-reorder", "header-name", "header-value",
           "header-fold", "content-length-lie", "digest-param", "bare-lf", "body", "raw-garbage",
           "message-drop", "message-repeat", "message-swap", "many-headers")

    def __init__(self, fmt: str, seeds: tuple[bytes, ...], *, max_ops: int = 3) -> None:
        if fmt not in SIP_FORMATS:
            raise EncodeError(f"{fmt!r} is not a SIP format ({', '.join(SIP_FORMATS)})", path="format")
        self.fmt = fmt
        self.seeds = seeds
        self.max_ops = max(1, max_ops)

    def mutate(self, rng: random.Random) -> tuple[int, bytes, tuple[str, ...]]:
        si = rng.randrange(len(self.seeds))
        msgs = _split(self.seeds[si])
        applied: list[str] = []
        length_lie = False
        bare_lf = False
        n_ops = 1 + sum(rng.random() < 0.3 for _ in range(self.max_ops - 1))
        for _ in range(n_ops):
            op = rng.choice(self.OPS)
            if not msgs:
                break
            m = msgs[rng.randrange(len(msgs))]
            hs = m.headers
            if op == "start-line":
                m.start = rng.choice((
                    b"SIP/2.0 " + rng.choice((b"000", b"199", b"200", b"299", b"401", b"407", b"699", b"99",
                                              b"2000", b"abc")) + b" " + _value(rng),
                    rng.choice((b"REGISTER", b"INVITE", b"register", b"", b"A" * 17)) + b" " + _value(rng)
                    + b" SIP/2.0",
                    m.start.replace(b"SIP/2.0", rng.choice((b"SIP/3.0", b"SIP/2.0 ", b"HTTP/1.1", b""))),
                    m.start + _value(rng), _value(rng)))
            elif op == "header-remove" and hs:
                del hs[rng.randrange(len(hs))]
            elif op == "header-duplicate" and hs:
                hs.insert(rng.randrange(len(hs) + 1), rng.choice(hs))
            elif op == "header-reorder" and len(hs) > 1:
                rng.shuffle(hs)
            elif op == "header-name" and hs:
                i = rng.randrange(len(hs))
                _, sep, value = hs[i].partition(b":")
                hs[i] = rng.choice(_NAMES) + rng.choice((sep or b":", b"", b" :", b"::")) + value
            elif op == "header-value" and hs:
                i = rng.randrange(len(hs))
                name, _, value = hs[i].partition(b":")
                hs[i] = name + b": " + rng.choice((_value(rng), value + _value(rng), _value(rng) + value))
            elif op == "header-fold" and hs:
                hs.insert(rng.randrange(len(hs) + 1), rng.choice((b" ", b"\t")) + _value(rng))
            elif op == "content-length-lie":
                length_lie = True
                lie = rng.choice((b"", b"-1", b"4097", b"99999999", b"0x10", b"1 2", b"\xd9\xa3",
                                  str(len(m.body) + 1).encode(), str(max(0, len(m.body) - 1)).encode()))
                hs = [h for h in hs if h.partition(b":")[0].strip().lower() not in (b"content-length", b"l")]
                if rng.random() < 0.8:
                    hs.append(b"Content-Length: " + lie)
                if rng.random() < 0.2:
                    hs.append(b"l: " + str(len(m.body)).encode())
                m.headers = hs
            elif op == "digest-param":
                idx = [i for i, h in enumerate(hs) if h.lower().startswith(_DIGEST_HEADERS)]
                if not idx:
                    continue
                i = rng.choice(idx)
                name, _, value = hs[i].partition(b":")
                hs[i] = name + b": " + _digest_mutant(rng, value.strip())
            elif op == "bare-lf":
                bare_lf = True
            elif op == "body":
                m.body = rng.choice((b"v=0\r\n", _value(rng), b"\r\n\r\n", b"x" * 5000))
            elif op == "raw-garbage":
                msgs[-1].body += rng.choice((b"\r\n", b"\r\n\r\n", b"SIP/2.0 200 OK\r\n", rng.randbytes(8)))
                length_lie = True  # the garbage is not counted
            elif op == "message-drop" and len(msgs) > 1:
                del msgs[rng.randrange(len(msgs))]
            elif op == "message-repeat":
                again = _Msg(start=m.start, headers=list(m.headers), body=m.body)
                msgs.insert(rng.randrange(len(msgs) + 1), again)
            elif op == "message-swap" and len(msgs) > 1:
                rng.shuffle(msgs)
            elif op == "many-headers":
                hs.extend(b"X-Many-%d: %d" % (k, k) for k in range(rng.choice((sip.MAX_HEADERS, 200))))
            else:
                continue
            applied.append(op)
        if not length_lie:
            for m in msgs:
                _fix_length(m)
        data = _join(msgs)
        if bare_lf:
            data = data.replace(b"\r\n", b"\n")
        cuts = [0, *(m.end() for m in _LINE_END.finditer(data))]
        data = finish_mutant(rng, data, cuts, "truncate-line", applied)
        return si, data, tuple(applied)


# --------------------------------------------------------------------------- targets
class SipAcceptanceError(AssertionError):
    """The phone or the lab registrar accepted what the module's oracles say it must not (a finding)."""


class _Connection:
    """An in-memory connection: the registrar says ``data`` then closes; what the phone writes is kept."""

    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(bytes(data))

    async def drain(self) -> None:
        return None


def _check_phone_request(data: bytes) -> None:
    """A REGISTER the phone wrote: one well-formed message, no control character in a header line."""
    head = data.partition(b"\r\n\r\n")[0]
    for n, line in enumerate(head.split(b"\r\n")):
        bad = next((c for c in line if (c < 0x20 and c != 0x09) or c == 0x7F), None)
        if bad is not None:
            raise SipAcceptanceError(f"the phone's REGISTER line {n} carries control character 0x{bad:02x} "
                                     f"(a header injected from the registrar's answer?): {line[:120]!r}")
    try:
        sip.parse_message(data)
    except DecodeError as exc:
        raise SipAcceptanceError(f"the phone's REGISTER does not parse: {exc}") from None


_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')  # a quoted string (a comma in it separates no values)


def _final_200(data: bytes, sent: list[bytes]) -> bool:
    """Whether ``data`` frames, in order, to some final 200 answering one of the REGISTERs the phone
    ``sent`` (what a registration needs): one Via, carrying that REGISTER's branch, its Call-ID, its
    CSeq (module docstring; read here on their own, not with the phone's code)."""
    numbers = set()
    for request in sent:
        with contextlib.suppress(DecodeError):
            numbers.add(_cseq_number(sip.parse_message(request), "REGISTER"))
    stream = sip.SipStream()
    stream.feed(data)
    while True:
        msg = stream.next()
        if msg is None:
            return False
        number = _cseq_number(msg, "REGISTER")
        vias = [v for k, v in msg.headers if k.lower() in ("via", "v")]
        if msg.status != 200 or number is None or number not in numbers or msg.header("call-id") != _CALL_ID \
                or len(vias) != 1 or "," in _QUOTED.sub("", vias[0]):
            continue
        params = [p.partition("=") for p in vias[0].split(";")[1:]]
        if any(k.strip().lower() == "branch" and v.strip() == _branch(number) for k, _, v in params):
            return True


def _cseq_number(msg: sip.SipMessage, method: str) -> int | None:
    """The number of ``msg``'s CSeq when its method is ``method`` (None otherwise, or without one)."""
    parts = (msg.header("cseq") or "").split()
    if len(parts) != 2 or parts[1] != method or not (parts[0].isascii() and parts[0].isdigit()):
        return None
    return int(parts[0]) if len(parts[0]) <= 10 else None


def _phone_target() -> Callable[[bytes], None]:
    from phoneemu.phone.sip import DigestCache, SipResult, _converse, _Register

    class Register(_Register):
        """The phone's REGISTERs with the seeds' Call-ID, From tag and branches (module docstring)."""

        def __init__(self) -> None:
            super().__init__(_MAC, _HOST, "tcp", "10.0.0.9:5060")
            self.call_id, self.tag = _CALL_ID, "a1b2"

        def branch(self) -> str:
            return _branch(self.cseq)

    loop = asyncio.new_event_loop()

    def done(rule: str, ok: bool, reason: str, **_kw: object) -> SipResult:
        return SipResult(registered=ok, rule=rule, reason=reason)

    def run(data: bytes) -> None:
        reader = asyncio.StreamReader(loop=loop)
        reader.feed_data(data)
        reader.feed_eof()
        conn = _Connection()
        reg = Register()
        coro = _converse(reg, reader, conn, (_USER, _PASSWORD), DigestCache(server=_HOST),  # type: ignore[arg-type]
                         timeout=1.0, done=done)
        try:
            result = loop.run_until_complete(coro)
        finally:
            for request in conn.written:
                _check_phone_request(request)
        if result.registered:
            try:
                framed_ok = _final_200(data, conn.written)
            except DecodeError:
                framed_ok = False
            if not framed_ok:
                raise SipAcceptanceError(f"registered ({result.rule}) without a final 200 from the registrar "
                                         "answering one of its REGISTERs")

    weakref.finalize(run, loop.close)  # one loop for every input, closed with the target
    return run


def _registrar_target() -> Callable[[bytes], None]:
    from phoneemu.lab.sip_service import SipRegistrar

    def credentials(mac: str) -> tuple[str | None, str | None] | None:
        return {_MAC: (_USER, _PASSWORD), _OPEN_MAC: (None, None)}.get(mac.upper())

    def verified(msg: sip.SipMessage) -> bool:
        """Independently of the registrar: the REGISTER's digest answer is right for the nonce the seeds
        were issued (the only one the registrar had issued)."""
        try:
            got = sip.parse_digest(msg.header("authorization") or "", field="Authorization")
        except DecodeError:
            return False
        if got.get("nonce") != _NONCE or got.get("username") != _USER or got.get("uri") != msg.uri:
            return False
        want = sip.digest_response(username=_USER, realm=sip.REALM, password=_PASSWORD, method="REGISTER",
                                   uri=msg.uri or "", nonce=_NONCE, nc=got.get("nc", ""),
                                   cnonce=got.get("cnonce", ""), qop=got.get("qop", ""))
        return got.get("response") == want

    def run(data: bytes) -> None:
        decided: list[tuple[str, str]] = []  # (device, outcome) of each answer, from the registrar's log
        def log(_peer: str, device: str, outcome: str, _detail: str) -> None:
            decided.append((device, outcome))

        registrar = SipRegistrar(credentials, clock=lambda: 1_000, on_log=log)
        registrar.adopt_nonce(_NONCE, issued=1_000)  # the seeds' nonce, fixed: the same in every process
        stream = sip.SipStream()
        stream.feed(data)
        for seen in range(64):
            msg = stream.next()  # DecodeError: the registrar answers 400 and closes (a rejection)
            if msg is None:
                if seen == 0:  # the connection closed inside its first request
                    raise DecodeError(f"no whole SIP request in {len(data)} bytes", fmt="sip",
                                      offset=len(data), path="request")
                return
            decided.clear()
            answer = registrar.answer(msg, "10.0.0.9:5060")
            try:
                got = sip.parse_message(answer) if answer else None
            except DecodeError as exc:
                raise SipAcceptanceError(f"the registrar's answer does not parse: {exc}") from None
            if got is None or got.status != 200:
                continue
            device = decided[-1][0] if decided else "?"
            if msg.method != "REGISTER" or (device == _DEVICE and not verified(msg)):
                raise SipAcceptanceError(f"the registrar answered 200 to {msg.method} {msg.uri!r} of "
                                         f"{device} whose digest answer is not right for an issued nonce")
        raise DecodeError("more than 64 requests in one input", fmt="sip", path="request")

    return run


def sip_callable(fmt: str) -> Callable[[bytes], None]:
    """What our phone or lab registrar does with one input of ``fmt`` (see module docstring)."""
    if fmt == "sip-response":
        target = _phone_target()

        def phone(data: bytes) -> None:
            try:
                target(data)
            except TransportError as exc:  # the registrar closed or said nothing final: a rejection
                raise DecodeError(f"no registration: {exc}", fmt="sip", path="response") from None

        return phone
    if fmt == "sip-request":
        return _registrar_target()
    raise EncodeError(f"no phoneemu target for format {fmt!r}", path="format")
