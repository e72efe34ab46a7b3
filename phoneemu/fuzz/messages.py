"""Seeds, mutation and phoneemu targets of the TVS and CAPF messages (spec §E, §F; issue #7 follow-up).

Rules implemented here:

* A message is a fixed header (TVS: 10 bytes ``0x57 | version | type | reserved | session id u32 |
  body length u16``; CAPF: 8 bytes ``0x55 | command | session id u32 | body length u16``) and element
  TLVs (tag u8, length u16 BE, value) — :mod:`phoneemu.protocols._elements`. Messages are not signed:
  there is nothing to re-sign, so ``--resign-ratio`` does not apply to them.
* Formats: ``tvs-response`` (server answers, what the phone's TVS client parses), ``tvs-request``
  (phone requests, what the lab TVS server parses), ``capf`` (both directions: one decoder).
* Seeds are built with the protocol builders (``tvs.verify_request``, ``tvs.response``,
  ``capf.message`` ...) from the fixed fuzzing identities of :mod:`phoneemu.fuzz.corpus`, so they are
  the same in every process.
* Mutation is structure-aware: the message is split into header and elements (lossless; bytes that
  are not a whole element stay a raw tail) and changed there — header fields (discriminator,
  version, type, reserved byte, session id), the body length (a lie: 0, ±1, 0xFFFF), an element's
  length (a lie), duplicate / removed / reordered / unknown elements, element values (empty, cut,
  extended, flipped, 64 KiB, a lying inner length at bytes 1..2 as in the CAPF certificate wrapper
  and SHA2_SIGNED_DATA), raw garbage; then, sometimes, a cut at an element boundary or bit flips.
  The header's body length is recomputed unless the body-length lie was applied.
* Targets (``--target phoneemu``): ``tvs-response`` feeds the bytes to :class:`TvsClientExchange` of a
  VERIFY request (or a QUERY request when byte 2 says QUERY_RESPONSE), session id of the seeds, then
  ``eof()``; a response that decodes then goes where a phone's goes (:func:`phone_after_tvs`): what
  the phone keeps of it (:func:`phoneemu.phone.store.query_answer`) decides, by the §G.3.4 rule, an
  ITL signed by the corpus CallManager — a signer the phone's installed ITL holds only with role
  CCM+TFTP. Oracle: the ITL may be accepted only when the response says valid, gives role SAST (0)
  and returns a certificate with the signer's public key, and the rule decides (a decision, never an
  error: the response is network input it must judge) — else :class:`TvsAcceptanceError`, a
  finding; ``tvs-request`` to a :class:`TvsServerConnection` whose lookup knows the corpus
  certificates; ``capf`` decodes the frame and every element value with a typed decoder
  (certificate wrapper, SHA2_SIGNED_DATA, SUDI_DATA, NUL-terminated strings). A message that decodes
  must encode back to the same bytes (round trip).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from phoneemu.crypto import certs
from phoneemu.errors import DecodeError, EncodeError, PhoneEmuError
from phoneemu.fuzz import MESSAGE_FORMATS
from phoneemu.protocols import capf, tvs

__all__ = ["MESSAGE_FORMATS", "MessageMutator", "finish_mutant", "message_callable", "message_seeds"]

_SESSION = 0x1234ABCD
_DEVICE = "CP-8861-SEP001122334455"
_SERIAL = b"\x00\x83\xe9\x08\x00\x31"  # the corpus CallManager certificate's serial


def _header_size(fmt: str) -> int:
    return capf.HEADER_SIZE if fmt == "capf" else tvs.HEADER_SIZE


def message_seeds(fmt: str, cert_der: bytes, other_der: bytes) -> list[tuple[str, bytes]]:
    """Named valid messages of ``fmt`` (see module docstring)."""
    verify = tvs.verify_request(_SESSION, _DEVICE, cert_der)
    query = tvs.query_request(_SESSION, _DEVICE, "CN=fuzz-pub;OU=LAB;O=phoneemu;L=Lab;ST=Lab;C=US",
                              "CN=fuzz-pub;OU=LAB;O=phoneemu;L=Lab;ST=Lab;C=US", _SERIAL)
    if fmt == "tvs-request":
        return [("verify-request", tvs.encode(verify)), ("query-request", tvs.encode(query))]
    if fmt == "tvs-response":
        return [
            ("verify-valid", tvs.encode(tvs.response(verify, status=0, roles=(0, 21), ttl=86400))),
            ("verify-invalid", tvs.encode(tvs.response(verify, status=1, reserved=0xF7))),
            ("query-valid", tvs.encode(tvs.response(query, status=0, roles=(1,), ttl=3600,
                                                    certificate=cert_der))),
            ("query-vouches-signer", tvs.encode(tvs.response(query, status=0, roles=(0, 2), ttl=86400,
                                                              certificate=cert_der))),
        ]
    if fmt == "capf":
        c, t = capf.CapfCommand, capf.CapfTag
        m = capf.message
        sig = capf.encode_sha2_signed_data(b"\x5a" * 128)
        sudi = capf.encode_sudi_data(capf.SudiData(certificate=other_der, sha1_signature=b"\x11" * 128,
                                                   sha512_signature=None))
        msgs = [
            ("auth-request", m(c.AUTH_REQUEST, _SESSION, (t.VERSION, b"\x03"), (t.AUTH_TYPE, b"\x01"))),
            ("auth-response", m(c.AUTH_RESPONSE, _SESSION,
                                (t.DEVICE_NAME, capf.encode_cstring("SEP001122334455")),
                                (t.PASSWORD, capf.encode_cstring("123456")))),
            ("auth-response-cert", m(c.AUTH_RESPONSE, _SESSION,
                                     (t.DEVICE_NAME, capf.encode_cstring("SEP001122334455")),
                                     (t.CERTIFICATE, capf.encode_certificate(cert_der)),
                                     (t.SHA2_SIGNED_DATA, sig), (t.SUDI_DATA, sudi))),
            ("key-generate", m(c.KEY_GENERATE_REQUEST, _SESSION, (t.KEY_TYPE, b"\x00"),
                               (t.KEY_SIZE, b"\x08\x00"))),
            ("store-certificate", m(c.STORE_CERTIFICATE_REQUEST, _SESSION,
                                    (t.CERTIFICATE, capf.encode_certificate(other_der)))),
            ("end-session", m(c.END_SESSION, _SESSION, (t.REASON, b"\x01"))),
        ]
        return [(n, capf.encode(msg)) for n, msg in msgs]
    raise EncodeError(f"{fmt!r} is not a message format ({', '.join(MESSAGE_FORMATS)})", path="format")


# --------------------------------------------------------------------------- mutation
@dataclass(kw_only=True)
class _Split:
    header: bytearray
    elements: list[tuple[int, bytes]]
    tail: bytes  # bytes that are not a whole element


def _split(data: bytes, hsize: int) -> _Split:
    """Header, whole elements and the rest; never fails, lossless (``_join`` gives ``data`` back
    when the header's body length is left as it was)."""
    header = bytearray(data[:hsize])
    els: list[tuple[int, bytes]] = []
    i = hsize
    while i + 3 <= len(data):
        n = int.from_bytes(data[i + 1:i + 3], "big")
        if i + 3 + n > len(data):
            break
        els.append((data[i], data[i + 3:i + 3 + n]))
        i += 3 + n
    return _Split(header=header, elements=els, tail=data[i:])


def _element(tag: int, value: bytes, length: int | None = None) -> bytes:
    n = len(value) if length is None else length
    return bytes([tag & 0xFF]) + min(n, 0xFFFF).to_bytes(2, "big") + value


def _rand(rng: random.Random, n: int) -> bytes:
    return rng.randbytes(n)


class MessageMutator:
    """Mutants of a message format's seeds; ``mutate(rng)`` is deterministic in ``rng``."""

    OPS = ("header-field", "body-length-lie", "length-lie", "duplicate", "remove", "reorder",
           "unknown-tag", "value", "inner-length-lie", "raw-garbage")

    def __init__(self, fmt: str, seeds: tuple[bytes, ...], *, max_ops: int = 3) -> None:
        self.fmt = fmt
        self.hsize = _header_size(fmt)
        self.seeds = seeds
        self.max_ops = max(1, max_ops)
        self.known_tags = sorted((tvs.TvsTag if fmt.startswith("tvs") else capf.CapfTag)._value2member_map_)

    def mutate(self, rng: random.Random) -> tuple[int, bytes, tuple[str, ...]]:
        si = rng.randrange(len(self.seeds))
        m = _split(self.seeds[si], self.hsize)
        applied: list[str] = []
        raw_elements: dict[int, bytes] = {}  # index -> element bytes written with a lying length
        body_lie: int | None = None
        n_ops = 1 + sum(rng.random() < 0.3 for _ in range(self.max_ops - 1))
        for _ in range(n_ops):
            op = rng.choice(self.OPS)
            els = m.elements
            if op == "header-field":
                pos = rng.randrange(self.hsize - 2)  # not the body length: that is its own op
                m.header[pos] = rng.choice((0, 1, 2, 3, 4, 5, 0x55, 0x57, 0x7F, 0xFF, rng.randrange(256)))
            elif op == "body-length-lie":
                body_lie = rng.choice((0, 1, 0xFFFF, rng.randrange(0x10000), -1, +1))
            elif op == "length-lie" and els:
                i = rng.randrange(len(els))
                tag, value = els[i]
                lie = rng.choice((0, len(value) + 1, max(0, len(value) - 1), 0xFFFF, rng.randrange(0x10000)))
                raw_elements[i] = _element(tag, value, lie)
            elif op == "duplicate" and els:
                i = rng.randrange(len(els))
                els.insert(rng.randrange(len(els) + 1), els[i])
            elif op == "remove" and els:
                del els[rng.randrange(len(els))]
            elif op == "reorder" and len(els) > 1:
                rng.shuffle(els)
            elif op == "unknown-tag":
                tag = rng.choice((0, 6, 14, 15, 21, 0x7F, 0xFF, rng.randrange(256)))
                els.insert(rng.randrange(len(els) + 1), (tag, _rand(rng, rng.choice((0, 1, 4, 32)))))
            elif op == "value" and els:
                i = rng.randrange(len(els))
                tag, v = els[i]
                v = rng.choice((b"", v[:-1], v + b"\0", v[: rng.randrange(len(v) + 1)],
                                bytes(b ^ (1 << rng.randrange(8)) if rng.random() < 0.05 else b for b in v),
                                _rand(rng, rng.choice((1, 2, 4, 5))), b"\xff" * rng.choice((1, 4)),
                                b"\x00" * 300, _rand(rng, 0xFFF0 - self.hsize)))
                els[i] = (tag, v)
            elif op == "inner-length-lie" and els:
                i = rng.randrange(len(els))
                tag, v = els[i]
                if len(v) >= 3:
                    lie = rng.choice((0, 1, 2, 0xFFFF, len(v), len(v) + 1, rng.randrange(0x10000)))
                    els[i] = (tag, v[:1] + lie.to_bytes(2, "big") + v[3:])
            elif op == "raw-garbage":
                m.tail += rng.choice((b"\x01", b"\x04\xff", b"\x02\xff\xff", _rand(rng, 5)))
            else:
                continue
            applied.append(op)
        if "length-lie" in applied:
            raw_elements = {i: b for i, b in raw_elements.items() if i < len(m.elements)}
        body = b"".join(raw_elements.get(i) or _element(t, v) for i, (t, v) in enumerate(m.elements)) + m.tail
        header = bytes(m.header)
        if len(header) == self.hsize:
            n = len(body)
            if body_lie is not None:
                n = n + body_lie if body_lie in (-1, 1) else body_lie
            header = header[:-2] + (n & 0xFFFF).to_bytes(2, "big")
        data = header + body
        cuts = [0, self.hsize]
        for _tag, v in m.elements:
            cuts.append(cuts[-1] + 3 + len(v))
        data = finish_mutant(rng, data, cuts, "truncate-boundary", applied)
        return si, data, tuple(applied)


def finish_mutant(rng: random.Random, data: bytes, cuts: list[int], cut_name: str,
                  applied: list[str]) -> bytes:
    """The last step of a message mutant: sometimes (8 %) cut at one of ``cuts`` (boundaries of the
    format: ``cut_name`` in ``applied``), else sometimes (4 %) one to eight bit flips."""
    finish = rng.random()
    if finish < 0.08:
        data = data[: rng.choice([c for c in cuts if c <= len(data)] or [0])]
        applied.append(cut_name)
    elif finish < 0.12 and data:
        b = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        data = bytes(b)
        applied.append("bit-flip")
    return data


# --------------------------------------------------------------------------- targets
def _round_trip(fmt: str, data: bytes, again: bytes) -> None:
    from phoneemu.fuzz.targets import _check_round_trip

    _check_round_trip(fmt, data, again)


def _tvs_round_trip(fmt: str, data: bytes) -> None:
    """A TVS message that decodes must encode back to its exact bytes (one that does not decode is
    left to the exchange, which rejects it)."""
    try:
        msg = tvs.decode(data)
    except DecodeError:
        return
    _round_trip(fmt, data, tvs.encode(msg))


class TvsAcceptanceError(AssertionError):
    """The phone accepted a trust list on a TVS answer that does not vouch for its signer, or its rule
    raised instead of deciding on an answer that decoded (a finding)."""


@lru_cache(maxsize=4)
def phone_after_tvs(bits: int) -> Callable[[tvs.TvsResponse], None]:
    """A phone (cp-8861) that asked TVS about the signer of a new ITL, as :func:`message_callable`'s
    ``tvs-response`` target uses it (see module docstring): its installed ITL holds the corpus
    ITLRecovery (SAST), CallManager (CCM+TFTP) and TVS (TVS) records, its config (signed by the
    CallManager) lists a TVS server, and the new ITL is signed by the CallManager."""
    from phoneemu.crypto.keys import public_key_spki_der
    from phoneemu.formats import config as config_fmt
    from phoneemu.formats import signed, trustlist
    from phoneemu.fuzz.corpus import _TIMESTAMP, _identities
    from phoneemu.phone import rules
    from phoneemu.phone.profile import get_profile
    from phoneemu.phone.store import InternCache, TrustStore, query_answer

    ids = _identities(bits)
    sast, ccm, tvs_id = ids["itlrecovery"], ids["callmanager"], ids["tvs"]
    role, rec = trustlist.Role, trustlist.TrustRecord.from_certificate
    profile, now = get_profile("cp-8861"), _TIMESTAMP
    store = TrustStore(profile=profile, intern=InternCache())
    installed = trustlist.build(kind="ITL", signer=sast.signer, timestamp=now - 86400, records=[
        rec(sast.cert, role.SAST), rec(ccm.cert, role.CCM_TFTP, dns_name="fuzz-pub", ip="10.0.0.1"),
        rec(tvs_id.cert, role.TVS, dns_name="fuzz-pub")])
    server = config_fmt.Server(host="10.0.0.1", port=2445, priority=0)
    body = config_fmt.build(config_fmt.DeviceConfig(device_name="SEP001122334455", tvs_servers=(server,)))
    config = signed.build(body=body, filename="SEP001122334455.cnf.xml.sgn", signer=ccm.signer, timestamp=now)
    for d in (rules.decide_trust_list(store, installed, kind="ITL", profile=profile, now=now),
              rules.decide_config(store, "SEP001122334455.cnf.xml.sgn", config, profile=profile, now=now)):
        assert d.accepted, d
        store.apply(d)
    new_itl = trustlist.build(kind="ITL", signer=ccm.signer, timestamp=now, records=[
        rec(ccm.cert, role.SAST), rec(tvs_id.cert, role.TVS, dns_name="fuzz-pub")])
    assert rules.decide_trust_list(store, new_itl, kind="ITL", profile=profile, now=now).pending
    signer_key = public_key_spki_der(ccm.cert.public_key())  # type: ignore[arg-type]

    def decide(response: tvs.TvsResponse) -> None:
        try:
            d = rules.decide_trust_list(store, new_itl, kind="ITL", profile=profile, now=now,
                                        tvs_answer=query_answer(response))
        except PhoneEmuError as exc:  # the response decoded: rejecting it is the rule's decision to make
            raise TvsAcceptanceError(f"the §G.3.4 rule raised instead of deciding on a TVS response that "
                                     f"decoded: {type(exc).__name__}: {exc}") from exc
        if not d.accepted:
            return
        key = None
        if response.certificate:
            try:
                key = public_key_spki_der(certs.load_cert_der(response.certificate).public_key())  # type: ignore[arg-type]
            except (DecodeError, ValueError):
                key = None
        if not (response.valid and int(role.SAST) in response.roles and key == signer_key):
            raise TvsAcceptanceError(f"ITL accepted ({d.rule}) on a TVS response that does not vouch for "
                                     f"its signer: valid={response.valid}, roles={response.roles}, "
                                     f"certificate with the signer's key: {key == signer_key}")

    return decide


def message_callable(fmt: str, cert_der: bytes, *, round_trip: bool = True) -> Callable[[bytes], None]:
    """What our client or server does with one message of ``fmt`` (see module docstring)."""
    if fmt == "tvs-response":
        verify = tvs.verify_request(_SESSION, _DEVICE, cert_der)
        query = tvs.query_request(_SESSION, _DEVICE, "CN=x", "CN=y", b"\x01")
        phone = phone_after_tvs(certs.load_cert_der(cert_der).public_key().key_size)  # type: ignore[union-attr]

        def run_response(data: bytes) -> None:
            request = query if len(data) > 2 and data[2] == tvs.TvsMsgType.QUERY_RESPONSE else verify
            if round_trip and len(data) >= tvs.HEADER_SIZE:
                _tvs_round_trip(fmt, data)
            exchange = tvs.TvsClientExchange(request)
            response = exchange.receive(data)
            exchange.eof()
            if response is not None:
                phone(response)

        return run_response
    if fmt == "tvs-request":
        entry = tvs.TvsEntry(cert_der=cert_der, roles=(0, 21))

        def lookup(key: bytes | tvs.QueryKey) -> tvs.TvsEntry | None:
            known = key == cert_der or (isinstance(key, tuple) and key[1] == _SERIAL)
            return entry if known else None

        def run_request(data: bytes) -> None:
            if round_trip:
                _tvs_round_trip(fmt, data)
            conn = tvs.TvsServerConnection(lookup)
            answers = conn.receive(data)
            for out in answers:
                tvs.decode(out)  # what we answer must itself decode
            if not answers:  # the input held no whole request (the connection closed inside one)
                raise DecodeError(f"no whole TVS request in {len(data)} bytes", fmt="tvs", offset=len(data),
                                  path="request")

        return run_request
    if fmt == "capf":
        t = capf.CapfTag

        def run_capf(data: bytes) -> None:
            msg = capf.decode(data)
            if round_trip:
                _round_trip(fmt, data, capf.encode(msg))
            for el in msg.elements:
                if el.tag == t.CERTIFICATE:
                    _, der = capf.decode_certificate(el.value)
                    if der:
                        certs.load_cert_der(der, path="CERTIFICATE.der", tag=el.tag)
                elif el.tag == t.SHA2_SIGNED_DATA:
                    capf.decode_sha2_signed_data(el.value)
                elif el.tag == t.SUDI_DATA:
                    capf.decode_sudi_data(el.value)
                elif el.tag in (t.DEVICE_NAME, t.PASSWORD):
                    capf.decode_cstring(el.value, field=t(el.tag).name.lower(), tag=el.tag)

        return run_capf
    raise EncodeError(f"no phoneemu target for format {fmt!r}", path="format")
