"""phoneemu tvs: ask a TVS server about one certificate, as a phone would (spec §E).

A phone that meets a signer its trust lists do not hold asks the TVS servers its config names
(QUERY by the signer's subject, issuer and serial, spec §E.7.2); this command asks a TVS that very
question — about a certificate, or about the signer of a signed file (an ITL, CTL or .sgn: what the
phone would ask on downloading it) — and shows the answer (status, roles, TTL, the certificate
returned), the certificate the server presented and, with --itl, whether a phone holding that ITL
would talk to it at all (its certificate must be a TVS record of the ITL, spec §E.1). --verify sends
the whole certificate instead (VERIFY, §E.7.1). A QUERY or VERIFY changes nothing on the cluster.

--flash DIR asks as an emulated phone would (boot --flash DIR): the TVS servers of its config, in its
device name, over its model's TLS versions, and whether it would talk to each (its ITL). A flash holding
no ITL talks to no TVS (it has no TVS record to check a server's certificate against, spec §E.1,
§E.7.5): each server is asked all the same and said "not talked to", exit 1, with what such a phone does
instead (no CTL either: it takes the first ITL it downloads unchecked, rule G.2-first-itl-tofu).

Several servers (given, or named by a phone's config with --config) are each asked, at once: does
every TVS node know it? A phone asks them in priority order and moves on only when one does not
answer (or, with --itl, is not a TVS record of its ITL), so the first that answers decides; the
summary says which one decides now and what each later one would say if the earlier ones were down
(a node that does not vouch locks phones out on failover, spec §E.1). One server asked gets the same
summary (its text; its --json is its answer alone, without --config or --flash).

A QUERY answer vouches only with the certificate returned: the phone verifies the signer with it
(spec §E.3, §E.7.2), so "valid" without one, or with another certificate than the one asked about (its
serial or issuer differ), is, on a phone, "TVS does not know the signer" (§G.3.4).

Exit status: 0 when every TVS asked vouches for the certificate (and, with --itl, the phone would
talk to each), 1 when one does not (a QUERY answered valid without the certificate included, or with
another one), the phone would not talk to it (also: a --flash holding no ITL), it does not answer, or
its answer is malformed (status valid with a certificate that does not parse; an element repeated with
another value); 2 on bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from phoneemu import json_doc
from phoneemu.commands._argtypes import positive_float
from phoneemu.errors import DecodeError, EncodeError, PhoneEmuError, TransportError, naming_file
from phoneemu.files import read_at_most
from phoneemu.interrupts import asyncio_run
from phoneemu.values import host_port, parse_host_port

if TYPE_CHECKING:  # the phone's rules, its TLS and the TVS client are imported where one asks (start-up time)
    from cryptography import x509

    from phoneemu.net.tvs_client import TvsReply
    from phoneemu.phone.events import QueryKey
    from phoneemu.phone.store import AcceptedConfig, TrustStore
    from phoneemu.protocols.tvs import TvsResponse

__all__ = ["register"]

TVS_PORT = 2445
_FILE_LIMIT = 1 << 20  # a certificate or a signed header: the size of a trust list at most

_EPILOG = """\
examples:
  phoneemu tvs 10.0.0.5 new/ITLFile.tlv             does the TVS know the signer of the new ITL?
  phoneemu tvs 10.0.0.5 b/ITLRecovery.pem --itl a/ITLFile.tlv
                                                   ...and would a phone holding a's ITL ask it?
  phoneemu tvs 127.0.0.1:42445 callmanager.pem --verify --json
  phoneemu tvs [::1]:2445 SEP001122334455.cnf.xml.sgn --tls 1.0   as a TLS 1.0-only phone (7900 series)
  phoneemu tvs b/ITLRecovery.pem --config a/SEP001122334455.cnf.xml.sgn --itl a/ITLFile.tlv
                                                   every TVS that phone's config names: all of them?
  phoneemu tvs 10.0.0.5 10.0.0.6 10.0.0.7:2445 new/ITLFile.tlv     each node of a cluster
  phoneemu tvs --flash /tmp/ph1 new/ITLFile.tlv     as that emulated phone would ask (config, ITL, model)
"""


def register(sub: Any) -> None:
    p = sub.add_parser("tvs", help="ask a TVS server about a certificate or a file's signer, as a phone "
                       "would", description=__doc__, epilog=_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("servers", nargs="*", metavar="HOST[:PORT]",
                   help=f"the TVS server(s) asked (port {TVS_PORT} when not given); none needed with "
                   "--config")
    p.add_argument("subject", type=Path, metavar="CERT_OR_FILE",
                   help="a certificate (PEM or DER), or a signed file (ITL, CTL, .sgn, .enc.sgn): its signer")
    p.add_argument("--verify", action="store_true",
                   help="send the whole certificate (VERIFY, spec §E.7.1) instead of a QUERY by issuer "
                   "and serial; a certificate only")
    p.add_argument("--itl", type=Path, metavar="FILE",
                   help="the ITL a phone holds: say whether it would talk to each server asked (its "
                   "certificate a TVS record of the ITL, spec §E.1)")
    p.add_argument("--config", type=Path, metavar="FILE",
                   help="a phone's config (SEP<MAC>.cnf.xml or .cnf.xml.sgn): also ask each TVS server it "
                   "names, in its priority order (after the servers given)")
    p.add_argument("--flash", type=Path, metavar="DIR",
                   help="an emulated phone's flash (boot --flash DIR): its config as --config, its ITL as "
                   "--itl, its model's TLS versions as --tls")
    p.add_argument("--device-name", default=None, metavar="NAME",
                   help="the device name sent (default: the --config phone's as phones send it, "
                   "CP-<model>-SEP<MAC> (spec §E.4), else CP-8861-SEP001122334455)")
    p.add_argument("--tls", default=None, metavar="VERSIONS",
                   help="TLS versions the phone speaks, e.g. 1.2 or 1.0 (default: a cp-8861's)")
    p.add_argument("--timeout", type=positive_float, default=5.0, metavar="S",
                   help="seconds for connect, handshake and answer (default 5)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=handler)


def _subject(path: Path) -> tuple[QueryKey, x509.Certificate | None, str]:
    """The QUERY key of ``path`` (a certificate, else a signed file's signer), the certificate when it
    is one, and what it is."""
    from phoneemu.crypto import certs
    from phoneemu.formats import detect, header
    from phoneemu.phone.rules import https_query_key, query_key

    data = read_at_most(path, _FILE_LIMIT, what="certificate or signed file")
    try:
        found = certs.load_certs_pem(data, source=str(path)) if b"-----BEGIN" in data else \
            [certs.load_cert_der(data)] if data[:1] == b"\x30" else []
    except DecodeError as exc:
        raise naming_file(exc, str(path)) from None
    if found:
        return https_query_key(found[0]), found[0], "certificate"
    try:
        kind = detect.detect(data, name=path.name)
        if kind == "xml":
            raise DecodeError("an unsigned XML file has no signer to ask about", path="file")
        parsed = header.parse_header(data, fmt=kind)
    except DecodeError as exc:
        raise naming_file(exc, str(path)) from None
    return query_key(parsed.header), None, f"signer of {path.name} ({kind})"


def _itl_store(path: Path, profile_name: str) -> TrustStore:
    """A trust store of ``profile_name`` holding ``path`` as its ITL, read and checked as ``predict``
    reads an installed ITL (an error names the file)."""
    from phoneemu.phone.profile import get_profile
    from phoneemu.phone.store import InternCache, TrustStore
    from phoneemu.scenario.predict import load_installed

    profile = get_profile(profile_name)
    store = TrustStore(profile=profile, intern=InternCache())
    store.itl = load_installed(limit=profile.trust_list_limit, itl=path, itl_option="itl").itl  # its --itl
    return store


def _roles(roles: tuple[int, ...]) -> list[str]:
    """Each role code of an answer once, in the order sent, as ``CCM+TFTP (2)``, an unknown one as
    ``Unknown (6)``: a phone keeps the set (:meth:`~phoneemu.phone.store.TvsAnswer.from_reply`). Was each
    code as often as sent (a TVS repeating them filled a line with thousands) and ``Unknown (6) (6)``."""
    from phoneemu.formats.trustlist import Role, role_text

    return [f"{role_text(r)} ({r})" if r in Role._value2member_map_ else role_text(r)
            for r in dict.fromkeys(roles)]


def _servers(args: argparse.Namespace) -> list[tuple[str, int]]:
    """The servers asked: those given, then those ``--config`` names in priority order (spec §E.1),
    each once; PhoneEmuError when there is none."""
    from phoneemu.net.tvs_client import server_order
    from phoneemu.phone.profile import get_profile
    from phoneemu.protocols.tvs import phone_device_name
    from phoneemu.scenario.predict import installed_config

    asked = [parse_host_port(text, what="server", default_port=TVS_PORT) for text in args.servers]
    if args.config is not None:
        accepted = installed_config(args.config, option="config")
        cfg = accepted.config
        if args.device_name is None and cfg.device_name:  # the phone asks in its own name (spec §E.4)
            args.device_name = phone_device_name(get_profile(args.profile).model, cfg.device_name)
        named = server_order(cfg.tvs_servers)
        if not named:
            raise PhoneEmuError(f"{args.config}: the config names no TVS server (<TVS><members>)"
                                f"{_short_config_hint(accepted)}", path="config")
        asked += named
    if not asked:
        raise PhoneEmuError("no TVS server to ask: give HOST[:PORT], or --config a phone's config",
                            path="server")
    return list(dict.fromkeys(asked))


def _short_config_hint(accepted: AcceptedConfig) -> str:
    """For ``--config`` of an encrypted phone's short config (encrConfig, spec §G.12): its TVS servers are
    in the ``.cnf.xml.enc.sgn`` (was only "names no TVS server", as for a config that has none). A config
    accepted from the ``.enc.sgn`` (a flash's, ``--flash``: the decrypted full config, encrConfig true as
    well) is no short config: it names the TVS servers it has, none on a cluster without TVS (was told it
    was the short config, and to give the --flash it came from)."""
    if not accepted.config.encr_config or accepted.file.lower().endswith(".enc.sgn"):
        return ""
    return ("; it is an encrypted phone's short config (encrConfig, spec §G.12): the TVS servers are in its "
            ".cnf.xml.enc.sgn, which --config does not decrypt: give the servers as HOST[:PORT], or --flash "
            "DIR of an emulated phone that booted on it (its flash holds the decrypted config)")


def _doc(args: argparse.Namespace, server: tuple[str, int], key: QueryKey, what: str, *,
         reply: TvsReply | None, error: TransportError | None, trusted: bool | None) -> dict[str, Any]:
    from phoneemu.crypto import certs

    doc: dict[str, Any] = {"server": host_port(*server), "device_name": args.device_name,
                           "request": "VERIFY" if args.verify else "QUERY", "about": what,
                           "subject": key.subject, "issuer": key.issuer, "serial": key.serial.hex()}
    if error is not None:
        doc["error"] = {"kind": error.kind, "message": error.message,
                        "try": _what_to_try(server, error, args.timeout)}
        return doc
    assert reply is not None
    presented = reply.server_cert
    doc["tls"] = reply.tls
    doc["server_certificate"] = None if presented is None else {
        "subject": certs.subject_of_der(presented), "sha1": certs.fingerprint(presented)}
    if trusted is not None:
        doc["phone_would_talk"] = trusted
    doc["answer"] = _answer(reply.response, None if args.verify else key)
    return doc


def _what_to_try(server: tuple[str, int], error: TransportError, timeout: float) -> str:
    """What a server that gave no answer (``error``, :mod:`phoneemu.net.tvs_client`'s) likely means and what
    to try, for the end of its one line (ours; was the failure alone: ``connection refused``, a raw
    resolver errno). CUCM's TVS listens on TCP 2445 (spec §H.1): another port asked is said so. "Nothing
    listens" only for a connection refused: a server that took the connection and closed or reset it is
    something listening (was said as nothing listening), another connect failure (no route) names the
    route. A server that answered, but not with TLS, is said so (was: "the TLS handshake ... failed", and
    another TLS version to try, where no handshake took place)."""
    from phoneemu.phone.ways_out import CUCM_SERVICEABILITY, CUCM_TVS_SERVICE  # the ways out's words

    host, port = server
    where = host_port(host, port) + (f" (CUCM's TVS is on {TVS_PORT})" if port != TVS_PORT else "")
    message = error.message
    if "cannot resolve" in message:
        return (f"the name {host} does not resolve here: give the TVS node's address, or a name this "
                "machine resolves")
    if error.kind == "unreachable" and "connection refused" in message:
        return (f"nothing listens on {where}: is {CUCM_TVS_SERVICE} running on that node "
                f"({CUCM_SERVICEABILITY})?")
    if error.kind == "unreachable" and "cannot connect" in message and "connection reset" not in message:
        return (f"no connection to {where}: is the address right, and is there a route to it (a firewall "
                f"rejecting TCP {port})?")
    if error.kind == "unreachable":  # it took the connection, then closed or reset it (maybe as soon as
        # connected: "cannot connect: ... connection reset by peer"): something listens
        return (f"{where} took the connection, then closed it: is it a TVS port? A TVS refusing the phone's "
                "TLS versions may close so (--tls 1.0 for a 7900 series)")
    if error.kind == "timeout" and "connect timeout" in message:
        return (f"no answer to the connection to {where} within {timeout:g} s: a firewall dropping TCP "
                f"{port}, or the node down? (--timeout S waits longer)")
    if error.kind == "timeout":
        return (f"connected, but no TVS answer within {timeout:g} s: is {where} a TVS port? (--timeout S "
                "for a slow node)")
    if error.kind == "tls":
        from phoneemu.net.tls_client import NOT_TLS

        if NOT_TLS in message:  # no handshake took place: no TLS version to try
            return f"{where} answered, but not with TLS: is it a TVS port?"
        return (f"the TLS handshake with {where} failed: is it a TVS port? A phone of another model speaks "
                "other TLS versions (--tls 1.0 for a 7900 series)")
    return f"the answer is not a TVS response: is {where} a TVS port?"


def _answer(resp: TvsResponse, query: QueryKey | None) -> dict[str, Any]:
    """The answer as shown (``query``: the QUERY's key; None for a VERIFY). A "valid" STATUS is no answer
    a phone can use (``valid`` False, ``problem`` says why) with a certificate that does not parse, or, to
    a QUERY, with no certificate at all, one whose key no phone can verify with (:func:`_unusable_key`) or
    another one than asked about (``mismatch``: the serial and/or
    issuer returned and asked): the phone verifies the signer with the certificate TVS returns (spec §E.3,
    §E.7.2, §G.3.4; rules ``_tvs_cert`` and :func:`~phoneemu.phone.rules.tvs_cert_mismatch`: none or
    another → "TVS does not know the signer"). A VERIFY answer returns none (the phone sent it): status 0
    alone vouches."""
    from phoneemu.crypto import certs

    subject, problem = None, None
    mismatch: dict[str, dict[str, str]] = {}
    if resp.certificate:
        try:
            cert = certs.load_cert_der(resp.certificate)
        except DecodeError as exc:
            subject = f"(unreadable certificate, {len(resp.certificate)} bytes)"
            problem = f"the certificate returned ({len(resp.certificate)} bytes) is unreadable: {exc.message}"
        else:
            subject = certs.dn_text(cert.subject)
            if query is not None:
                mismatch = _mismatch(cert, query)
                problem = None if mismatch else _unusable_key(cert)
        if mismatch:
            problem = ("the certificate returned is not the one asked about (" + "; ".join(
                f"{what} {m['returned']} returned, {m['asked']} asked" for what, m in mismatch.items())
                + "): a phone takes it as \"TVS does not know the signer\" (spec §E.7.2, §G.3.4)")
    elif query is not None:
        problem = ("no certificate returned (a QUERY answer returns the signer's certificate and the phone "
                   "verifies the signer with it, spec §E.3, §E.7.2): a phone takes it as \"TVS does not know "
                   "the signer\" (§G.3.4)")
    out: dict[str, Any] = {"valid": resp.valid and problem is None, "status": resp.status,
                           "roles": _roles(resp.roles), "ttl": resp.ttl, "certificate": subject}
    if resp.valid and problem is not None:
        out["problem"] = problem
        if mismatch:
            out["mismatch"] = mismatch
    return out


#: How the problem of a QUERY answer returning a certificate whose key no phone can use begins.
_NO_USABLE_KEY = "the certificate returned has no key a phone can verify a signer with"


def _unusable_key(cert: x509.Certificate) -> str | None:
    """Why the signer certificate a QUERY answer returned has no key a phone can verify with (a DSA or
    Ed25519 key, an unknown key algorithm), else None: the phone refuses that signer (rules
    ``G.3-unsupported-key`` / ``G.4-unsupported-key``), so the answer vouches for nothing."""
    from phoneemu.crypto import certs

    try:
        certs.cert_public_key(cert)
    except DecodeError as exc:
        return f"{_NO_USABLE_KEY} ({exc.message})"
    return None


def _mismatch(cert: x509.Certificate, key: QueryKey) -> dict[str, dict[str, str]]:
    """What of ``cert`` differs from the signer ``key`` asked about, as the phone compares them (rules
    :func:`~phoneemu.phone.rules.tvs_cert_mismatch`): ``{"serial"|"issuer": {"returned", "asked"}}``,
    shown as the QUERY lines show them (serial in hex, issuer as DN text)."""
    from phoneemu.crypto import certs
    from phoneemu.phone.rules import tvs_cert_mismatch

    shown = {"serial": (certs.serial_bytes(cert.serial_number).hex(), key.serial.hex()),
             "issuer": (certs.dn_text(cert.issuer), key.issuer)}
    return {what: {"returned": shown[what][0], "asked": shown[what][1]}
            for what in tvs_cert_mismatch(cert, key)}


def _ttl(ttl: int | None) -> str:
    """An answer's TTL, with what a phone does with it when that is not the TTL itself: none sent, it keeps
    the answer 86400 s (spec §E.4: CUCM sends that); 0, it keeps it not at all; above 30 days, 30 days
    (§H.2; :meth:`~phoneemu.phone.store.TvsAnswer.from_reply`, ``TrustStore.cache_tvs``). Was the TTL
    alone: ``TTL 4294967295s``, as if a phone trusted the answer for 136 years."""
    from phoneemu.phone.store import TVS_TTL_DEFAULT, TVS_TTL_MAX

    if ttl is None:
        return f"no TTL (a phone keeps it {TVS_TTL_DEFAULT}s)"
    if ttl == 0:
        return "TTL 0s (a phone does not keep the answer: it asks again for the next file)"
    if ttl > TVS_TTL_MAX:
        return f"TTL {ttl}s (a phone keeps it {TVS_TTL_MAX}s at most, spec §H.2)"
    return f"TTL {ttl}s"


#: How the ITL of a phone holding none is named (:func:`_itl_named`): it talks to no TVS (spec §E.1).
_NO_ITL = "no ITL"


def _itl_named(args: argparse.Namespace) -> str:
    """The ITL a phone is said to hold: ``the --itl ITL``, ``the ITL of --flash DIR`` (the flash's), or
    ``no ITL (--flash DIR holds none)``."""
    if args.flash is not None:
        return f"the ITL of --flash {args.flash}" if args.itl is not None else \
            f"{_NO_ITL} (--flash {args.flash} holds none)"
    return "the --itl ITL"


def _no_itl_note(args: argparse.Namespace) -> str | None:
    """What a phone whose flash holds no ITL does instead of asking TVS (spec §E.1, §E.7.5, §G.2), or
    None when it holds one (or no --flash was given)."""
    if args.flash is None or args.itl is not None:
        return None
    then = ("with a CTL, a signer its CTL does not hold is not vouched for: G.3.4-tvs-server-untrusted"
            if args.flash_holds_ctl else "with no CTL either, it takes the first ITL it downloads unchecked: "
            "G.2-first-itl-tofu")
    return (f"--flash {args.flash} holds no ITL: the phone talks to no TVS, it has no TVS record to check a "
            f"server's certificate against (spec §E.1, §E.7.5); {then}")


def _not_talked_why(itl: str) -> str:
    """Why a phone holding ``itl`` (:func:`_itl_named`) does not talk to a TVS server."""
    if itl.startswith(_NO_ITL):
        return "it has no TVS record to check the server's certificate against (spec §E.1, §E.7.5)"
    return f"its certificate is not a TVS record of {itl} (spec §E.1)"


def _text(doc: dict[str, Any], itl: str = "the --itl ITL") -> str:
    lines = [f"{doc['request']} {doc['server']} about the {doc['about']}:",
             f"  subject {doc['subject']}", f"  issuer  {doc['issuer']}", f"  serial  {doc['serial']}"]
    if "error" in doc:
        err = doc["error"]
        lines.append(f"  no answer ({err['kind']}): {err['message']}: {err['try']}")
        return "\n".join(lines)
    sc = doc["server_certificate"]
    lines.append(f"  server  {doc['tls']}, presents " +
                 ("no certificate" if sc is None else f"{sc['subject']} (SHA-1 {sc['sha1']})"))
    if "phone_would_talk" in doc:
        lines.append(f"  a phone holding {itl} " + ("talks to it: its certificate is a TVS record of the ITL"
                     if doc["phone_would_talk"] else f"does NOT talk to it: {_not_talked_why(itl)}"))
    a = doc["answer"]
    if "problem" in a and (a["certificate"] is None or "mismatch" in a):  # a QUERY: none, or another one
        lines.append(f"  answer  does NOT vouch: status 0 (valid) but {a['problem']}; roles "
                     f"{', '.join(a['roles']) or 'none'}, {_ttl(a['ttl'])}")
    elif "problem" in a:
        lines.append(f"  answer  malformed: status 0 (valid) but {a['problem']}: a phone cannot use it")
    elif a["valid"]:
        got = f", returns {a['certificate']}" if a["certificate"] else ""
        lines.append(f"  answer  valid: roles {', '.join(a['roles']) or 'none'}, {_ttl(a['ttl'])}{got}")
    else:
        lines.append(f"  answer  not known to this TVS (status {a['status']})")
    return "\n".join(lines)


def _versions(text: str | None, profile: str = "cp-8861") -> tuple[str, ...]:
    """``--tls 1.0`` / ``1.2,1.3``; ``profile``'s when not given."""
    from phoneemu.phone.profile import check_tls_versions, get_profile

    if text is None:
        return tuple(get_profile(profile).tls_versions)
    try:
        return check_tls_versions([v.strip() for v in text.split(",")], what="--tls")
    except EncodeError as exc:
        raise PhoneEmuError(exc.message, path="tls") from None


if TYPE_CHECKING:
    _Asked = tuple[TvsReply | None, TransportError | None, bool | None]


async def _ask(args: argparse.Namespace, server: tuple[str, int], key: QueryKey,
               cert: x509.Certificate | None, store: TrustStore | None) -> _Asked:
    """One server asked: its reply or why none came, and (with ``store``) whether a phone holding that
    ITL would talk to it — asked anyway, so that its answer is shown with that verdict."""
    from phoneemu.crypto import certs
    from phoneemu.net.tls import phone_client_context
    from phoneemu.net.tvs_client import tvs_query, tvs_verify
    from phoneemu.phone.rules import tvs_server_trusted

    seen: list[bytes | None] = []

    def note(der: bytes | None) -> bool:
        seen.append(der)
        return True

    ctx = phone_client_context(_versions(args.tls, args.profile))
    reply: TvsReply | None = None
    error: TransportError | None = None
    try:
        if args.verify:
            assert cert is not None
            reply = await tvs_verify([server], args.device_name, certs.cert_der(cert), timeout=args.timeout,
                                     tls=ctx, accept_server=note)
        else:
            reply = await tvs_query([server], args.device_name, key.subject, key.issuer, key.serial,
                                    timeout=args.timeout, tls=ctx, accept_server=note)
    except TransportError as exc:
        error = exc
    return reply, error, tvs_server_trusted(store, seen[-1]) if store is not None and seen else None


def _escaped(value: Any) -> Any:
    """``value`` (a document of :func:`_doc`, the summary, a note) with each text escaped
    (:func:`~phoneemu.formats._tlv.printable`) for the text output. Its names come from a file's header
    (the signer's subject and issuer), a certificate and the server (the certificate it presents, the one
    it returns): was printed as they were, so a crafted ITL or a hostile TVS sent its escape sequences
    (``ESC]0;...BEL`` retitles the terminal, U+202E turns the line around) to the user's terminal. The
    JSON output holds them as they are (JSON escapes them)."""
    from phoneemu.formats._tlv import printable

    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value


def _vouches(doc: dict[str, Any]) -> bool:
    return "answer" in doc and doc["answer"]["valid"] and doc.get("phone_would_talk") is not False


def _verdict(doc: dict[str, Any], itl: str = "the --itl ITL") -> str:
    if "error" in doc:
        return f"no answer ({doc['error']['kind']})"
    if doc.get("phone_would_talk") is False:
        return "not talked to (a phone holding no ITL talks to no TVS)" if itl.startswith(_NO_ITL) else \
            f"not talked to (not a TVS record of {itl})"
    a = doc["answer"]
    if "mismatch" in a:
        return "does NOT vouch (valid, another certificate returned)"
    if "problem" in a and a["problem"].startswith(_NO_USABLE_KEY):
        return "does NOT vouch (valid, a certificate with no key a phone can use returned)"
    if "problem" in a:
        return "malformed answer (unreadable certificate)" if a["certificate"] else \
            "does NOT vouch (valid, no certificate returned)"
    return "vouches" if doc["answer"]["valid"] else "does NOT vouch (not known)"


def _summary(docs: list[dict[str, Any]], itl: str = "the --itl ITL") -> dict[str, Any]:
    """Who decides for a phone asking ``docs``' servers in their order (the first that answers and
    that it talks to, spec §E.1), and what each later one would say were the earlier ones down."""
    answering = [d for d in docs if "answer" in d and d.get("phone_would_talk") is not False]
    return {"asked": len(docs), "vouching": sum(1 for d in docs if _vouches(d)),
            "decides_now": answering[0]["server"] if answering else None,
            "failover": [{"server": d["server"], "verdict": _verdict(d, itl)} for d in answering[1:]]}


def _several_text(docs: list[dict[str, Any]], summary: dict[str, Any], itl: str = "the --itl ITL") -> str:
    lines = [line for d in docs for line in (_text(d, itl), "")]
    lines.append(f"{summary['vouching']} of {summary['asked']} TVS servers vouch: "
                 + "; ".join(f"{d['server']} {_verdict(d, itl)}" for d in docs))
    now = summary["decides_now"]
    if now is None and any(d.get("phone_would_talk") is False for d in docs):
        lines.append("a phone asking them in this order talks to none of them (spec §E.1)" + (
            "" if itl.startswith(_NO_ITL) else ": a signer only TVS could vouch for is not vouched for "
            "(G.3.4-tvs-server-untrusted)"))
        return "\n".join(lines)
    if now is None:
        lines.append("a phone asking them in this order gets no answer: unreachable (spec §G.3.4)")
        return "\n".join(lines)
    first = next(d for d in docs if d["server"] == now)
    lines.append(f"a phone asking them in this order: {now} decides now ({_verdict(first, itl)})")
    lines += [f"  were the servers before it down: {f['server']} {f['verdict']}" for f in summary["failover"]]
    return "\n".join(lines)


def _from_flash(args: argparse.Namespace) -> None:
    """``--flash DIR``: its config and ITL (those its boot would load, :meth:`Flash.held_files`: a file it
    would not load — a ``config.xml`` its ``state.json`` does not vouch for, an ITL not parsing — is
    left out and said on stderr) and its model, in place of --config, --itl and the default --tls
    (given with them: refused). ``args.flash_holds_ctl``: whether it holds a CTL (said with no ITL)."""
    from phoneemu.phone.profile import get_profile

    args.profile = "cp-8861"
    args.flash_holds_ctl = False
    if args.flash is None:
        return
    from phoneemu.commands._installed import refuse_file_as_flash
    from phoneemu.commands._said import say
    from phoneemu.phone.flash import Flash, not_loaded_notes
    from phoneemu.phone.phone import read_phone_file

    if args.config is not None or args.itl is not None:
        raise PhoneEmuError("--flash takes the phone's config and ITL: give --flash, or --config / --itl",
                            path="flash")
    refuse_file_as_flash(args.flash, "--flash")  # a file: said what it is
    if not args.flash.is_dir():
        raise PhoneEmuError(f"{args.flash}: no such flash directory (boot --flash DIR makes one)",
                            path="flash")
    ident = read_phone_file(args.flash)
    args.profile = str(ident.get("profile") or "cp-8861")
    flash = Flash(args.flash, profile=get_profile(args.profile))
    held = flash.held_files()
    for note in not_loaded_notes(args.flash, flash.problems):
        say(args, note)
    args.config, args.itl = held["config"], held["itl"]
    args.flash_holds_ctl = held["ctl"] is not None
    if args.config is None and not args.servers:
        raise PhoneEmuError(f"{args.flash}: holds no accepted config, so no TVS server to ask (name one: "
                            "phoneemu tvs HOST[:PORT] ...)", path="flash")


def _check_request(args: argparse.Namespace, key: QueryKey, cert: x509.Certificate | None, *,
                   given: bool) -> None:
    """Refuse, before any server is asked, a request that cannot be sent: a device name that is not ASCII
    (or holds a NUL), or a QUERY (VERIFY) whose device name, subject, issuer and serial (certificate) do
    not fit in a TVS body (uint16 length, spec §E.2) — the certificate's fault, named with its file, unless
    the device name (``given``: ``--device-name``; else the ``--config`` phone's) alone makes it too long.
    Was an error of the codec naming neither option nor file (``tvs: elements: body of 72851 bytes exceeds
    65535``, ``element.value (tag 1): element value of 70001 bytes exceeds 65535``)."""
    from phoneemu.crypto import certs
    from phoneemu.formats._tlv import printable
    from phoneemu.protocols._elements import MAX_BODY  # a TVS body's uint16 length (spec §E.2)
    from phoneemu.protocols.tvs import query_request_fits, verify_request_fits

    name = args.device_name
    where = "device_name" if given else "config"
    said = f"{printable(name[:80])}{'...' if len(name) > 80 else ''}"
    if not name.isascii() or "\0" in name:
        raise PhoneEmuError(f"device name '{said}' is not ASCII without NUL: a phone sends "
                            "CP-<model>-SEP<MAC> (spec §E.4)", path=where)

    def fits(device_name: str) -> bool:
        if args.verify:
            assert cert is not None
            return verify_request_fits(device_name, certs.cert_der(cert))
        return query_request_fits(device_name, key.subject, key.issuer, key.serial)

    if fits(name):
        return
    request = "VERIFY" if args.verify else "QUERY"
    if fits("CP-8861-SEP001122334455"):
        raise PhoneEmuError(f"a device name of {len(name)} characters makes the TVS {request} longer than a "
                            f"TVS message carries ({MAX_BODY} bytes, spec §E.2): a phone sends "
                            "CP-<model>-SEP<MAC> (spec §E.4)", path=where)
    if args.verify:
        assert cert is not None
        size = f"the certificate ({len(certs.cert_der(cert))} bytes) does"
    else:
        size = (f"the signer's subject and issuer ({len(key.subject.encode('utf-8', 'surrogateescape'))} and "
                f"{len(key.issuer.encode('utf-8', 'surrogateescape'))} bytes) do")
    raise PhoneEmuError(f"{printable(str(args.subject))}: {size} not fit in a TVS {request} (at most "
                        f"{MAX_BODY} bytes, spec §E.2): no phone can ask TVS about it, nor take a signer "
                        "only TVS could vouch for")


def _order_mistake(args: argparse.Namespace) -> None:
    """A CERT_OR_FILE that does not exist while a server argument is an existing file: the two were given
    in the wrong order, said with the command line to write (ours; was: ``127.0.0.1: No such file or
    directory``, the server taken for the file)."""
    if _exists(args.subject):
        return
    files = [text for text in args.servers if _exists(Path(text), file=True)]
    if not files:
        return
    import shlex

    servers = [text for text in args.servers if text not in files] + [str(args.subject)]
    raise PhoneEmuError(f"{args.subject}: no such file, and the server argument {files[0]} is a file: "
                        "the servers come first, the certificate or signed file last "
                        f"({shlex.join(['phoneemu', 'tvs', *servers, files[0]])})",
                        path="CERT_OR_FILE")  # escaped where printed; quoted to be run as shown


def _exists(path: Path, *, file: bool = False) -> bool:
    """Whether ``path`` exists (is a file); False where the question cannot be asked (a name too long, a
    NUL): the file's own error comes later, naming it."""
    try:
        return path.is_file() if file else path.exists()
    except (OSError, ValueError):
        return False


def handler(args: argparse.Namespace) -> int:
    import asyncio

    from phoneemu.phone.profile import get_profile
    from phoneemu.phone.store import InternCache, TrustStore
    from phoneemu.protocols.tvs import phone_device_name

    _order_mistake(args)
    _from_flash(args)
    _versions(args.tls)  # a bad --tls is said before anything is read or asked
    key, cert, what = _subject(args.subject)
    if args.verify and cert is None:
        raise PhoneEmuError(f"--verify sends a whole certificate: {args.subject} is a signed file (its "
                            "header names the signer only; a QUERY asks about it)", path="verify")
    store = _itl_store(args.itl, args.profile) if args.itl is not None else None
    if store is None and args.flash is not None:  # a flash holding no ITL: a phone's store without one
        store = TrustStore(profile=get_profile(args.profile), intern=InternCache())
    given_name = args.device_name
    servers = _servers(args)
    if args.device_name is None:
        args.device_name = phone_device_name(get_profile(args.profile).model, "SEP001122334455")
    _check_request(args, key, cert, given=given_name is not None)

    async def ask_all() -> list[_Asked]:
        return list(await asyncio.gather(*(_ask(args, s, key, cert, store) for s in servers)))

    docs = [_doc(args, server, key, what, reply=reply, error=error, trusted=trusted)
            for server, (reply, error, trusted) in zip(servers, asyncio_run(ask_all()), strict=True)]
    note = _no_itl_note(args)
    itl = _itl_named(args)
    summary = {**_summary(docs, itl), **({"note": note} if note else {})}
    if args.json and len(docs) == 1 and args.config is None:  # one server named: its answer's JSON, as it
        # always was (a --config or --flash one: the summary's, servers listed)
        print(json_doc.dumps({**docs[0], "note": note} if note else docs[0], indent=2))
    elif args.json:
        print(json_doc.dumps({**summary, "servers": docs}, indent=2))
    else:  # the summary under each server's answer, one server's too (was: none for one named)
        print("\n".join([_several_text(_escaped(docs), _escaped(summary), _escaped(itl)),
                         *_escaped([note] if note else [])]))
    return 0 if all(_vouches(d) for d in docs) else 1

