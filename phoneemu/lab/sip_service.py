"""The lab SIP registrar: REGISTER with digest authentication, over TCP and TLS (spec §G.13, §G.9, §G.5).

A stand-in for the CallManager's SIP line side, as far as the trust client sees it: the phone
registers over TCP (``sip``, 5060) or, in authenticated/encrypted mode with a CUCM certificate in its
CTL, over TLS (``sips``, 5061) presenting the node's CallManager certificate — the one the CTL lists
as CCM+TFTP (spec §G.5). Rules (spec §G.13, from the seed chapter's "Digest Authentication"):

* A device is named by ``From: <sip:SEP<MAC>@...>`` (our convention: a phone whose line has no
  directory number), else by its Contact's ``+sip.instance`` (``urn:uuid:00000000-0000-0000-0000-<MAC>``,
  what a line with a number leaves); one the cluster does not know gets ``404 Not Found``. A known
  device without a digest user registers at once (``200 OK``): digest
  authentication is per device, independent of the cluster security mode.
* Over TLS (mutual authentication, seed "Device Authentication"): the phone's certificate is asked for
  in the handshake and must chain to the manufacturing CA (a MIC) or the current CAPF (an LSC) — one
  that does not fails the handshake with OpenSSL's alert (``unknown ca``) —, and a REGISTER is answered
  ``403 Forbidden`` when the phone presented none or one whose common name does not end with its
  device name (ours: CUCM's checks are not in the spec; ``lab.servers`` gives the trust).
* A device with a digest user is challenged: ``401 Unauthorized`` with ``WWW-Authenticate: Digest
  realm="ccmsipline", nonce=..., algorithm=MD5, qop="auth"`` (realm: "SIP Station Realm"). Its answer
  is checked against the credentials the cluster holds (not those in its config: "Exclude Digest
  Credential in Configuration File" leaves the phone without them, and it cannot answer).
* A nonce is valid for the phone security profile's "Nonce Validity Time", 600 s of the registrar's
  clock (``lab serve``: the real time elapsed, whatever the lab's date; a scenario: its clock): past
  it the answer gets ``401`` with ``stale=TRUE`` (the phone answers the new nonce without asking
  anyone, RFC 2617 §3.2.1). A nonce count not above the last one seen for that nonce is a replay
  (RFC 2617 §3.2.2: the server detects replays with ``nc``): ``401``, a fresh challenge.
* Nonces cost no memory until answered, are bound to the device challenged, and only answered ones
  are kept, bounded (ours): :mod:`.sip_nonces`.
* Wrong user, realm, URI or response: ``401`` with a fresh challenge (RFC 2617; the phone gives up).
  A call's INVITE and BYE are authenticated the same way (certificate over TLS, digest: CUCM challenges
  every request, spec §G.13) and go, with the ACK, to the lab's media resources (``media``,
  :mod:`.media_service`, spec §G.14) or, to ``sip:SEP<MAC>@…`` of a phone registered on an open
  connection, on to that phone (``relay``, :mod:`.call_relay`: CUCM between the two); a call's ACK and
  BYE count only over the connection its INVITE came on (ours; an ACK is never authenticated, and a
  Call-ID alone must not make the lab write to a phone). Another method (a call's too, without
  either): ``405``.
  A request missing Via, From, To, Call-ID or CSeq, or whose CSeq is not a number below 2**31 and its
  method (RFC 3261 §8.1.1, §8.1.1.5), gets ``400`` naming it (an ACK nothing), logged ``malformed``, before
  anything else is looked at; the connection stays (was: challenged, registered, its answer without the
  header) — until :data:`MAX_REFUSED_IN_A_ROW` (32) requests in a row are refused by the registrar (its own
  4xx: malformed, a wrong or stale digest answer, unknown device, forbidden, not allowed, not routable...;
  or a malformed ACK) with none served between: then the connection is closed after the last answer,
  logged ``flood`` (ours: a phone is refused at most three times in a row before it is served or gives up;
  a challenge — a 401 to a request without credentials — refuses nothing the client said and costs no
  memory, :mod:`.sip_nonces`: not counted, nor a call's answer from the media resources or the called
  phone, a 486, a 488; was: such a client kept its connection for ever, only its log rate-limited). A
  challenge serves nothing either: the refusals on either side of it are in a row (was: it started the
  count again, so 31 refusals and a challenge, over and over, kept the connection for ever).
  A malformed message: ``400`` and the connection is closed. Each message must be complete within
  ``read_timeout`` of the connection's start, of the previous message or of a CRLF keep-alive (RFC 5626
  §4.4.1); bytes that do not complete it do not extend that (ours: a client sending one byte at a time
  cannot hold a connection), and one begun but not complete then is logged ``timeout`` and the
  connection closed; a connection idle that long is closed. Memory per connection is bounded by the
  message limits of :mod:`phoneemu.protocols.sip`. Answers must be taken too, and so must what is
  still unsent when the connection ends: while some wait unsent, the client must take at least
  :data:`TAKEN_PER_WAIT` bytes of them (less than an answer; all of them when fewer) each
  ``read_timeout``, else its connection is aborted, logged ``timeout``: a client that sends and never
  reads, or takes a byte at a time, cannot hold it (was: its answers waited for ever, the connection and
  its descriptor held whatever ``read_timeout`` said — 8.6 MB of REGISTERs and one connection was
  never let go); one reading slowly but steadily is served (review R5: was cut when it took less than
  the 48 KiB between asyncio's write-buffer marks within one ``read_timeout``). Taken is the lab's one
  rule (:mod:`phoneemu.net._taken`): the transport's buffer plus the kernel's send queue shrinking, over
  the last ``read_timeout``, looked at four times one (was: the buffer alone, in fixed windows — with a
  moderate send buffer Linux refills its queue only once a third of it is free, and a steady reader
  was cut meanwhile).
* Authorization of a call to another phone (seed "Authorization": "calling search spaces and partitions";
  our convention, :mod:`.dial_plan`): once the caller is authenticated, its INVITE to ``sip:SEP<MAC>@…``
  is routed only when the called phone's partition is ``<None>`` or in the caller's calling search space
  (``dial_plan(mac)``, read at each call; None: a device the cluster does not know, in ``<None>`` with an
  empty one); otherwise ``404 Not Found`` (what CUCM gives a SIP phone for a number it cannot route;
  ours), logged ``not-routable`` naming the partition and the calling search space. The media
  resources are in ``<None>``.
* A device registered (``200``) reports the checksum of its installed ITL (``X-Phoneemu-ITL-Hash``, ours:
  :mod:`.registrations`); ``on_registered(mac, report)`` sees it (None: no usable report).
* ``attacker`` (:mod:`.on_path`, a scenario's ``network: {tamper_signalling, replay_sip}``) sits on the
  path of every connection: it rewrites a call's SDP over TCP, alters the TLS records of a call's answer,
  replays a REGISTER it saw over TCP once it was answered ``200``.
* ``on_log(peer, device, outcome, detail)`` sees every answer (outcome ``registered``, ``challenged``,
  ``stale``, ``replayed``, ``refused``, ``unknown-device``, ``malformed``, ``not-allowed``,
  ``not-routable``, ``timeout``, ``truncated``: a connection closed inside a message, with its bytes,
  ``flood``: one closed after requests refused in a row).
* The log (``sip: PEER DEVICE: OUTCOME DETAIL``) says a problem of the client's message or of its
  connection — ``malformed``, ``truncated``, ``timeout`` (cut by the server), ``flood`` — at WARNING (or
  ``problem_log_level``: a scenario's lab, INFO), as the TVS and CAPF servers do theirs, under the lab's
  flood rule (:class:`phoneemu.net.tls.FailureLog`, as their failures): the first after a quiet second at
  once, the others of each second in one line with their count and outcomes (``sip: 299 SIP problems in
  the last 1.0 s (malformed 299)``), each still a line at INFO; :meth:`SipRegistrar.flush` says the last
  count when the server stops. Every other outcome, a phone's own doing, at INFO (``lab serve -v``). Was:
  all at INFO, so a plain ``lab serve`` said nothing of a malformed SIP message while TVS and CAPF warned
  (and a truncated one was not logged); then a WARNING line each — a request missing its dialog headers
  keeps its connection, so one connection wrote a warning per request, as fast as it sent them.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable

from cryptography.x509.oid import NameOID

from phoneemu.crypto import certs
from phoneemu.errors import DecodeError, EncodeError
from phoneemu.lab.call_relay import CallRelay
from phoneemu.lab.dial_plan import DialPlan, routing_refusal
from phoneemu.lab.media_service import MediaResources
from phoneemu.lab.on_path import SignallingAttacker
from phoneemu.lab.registrations import ITL_HASH_HEADER, reported_itl
from phoneemu.lab.sip_nonces import (
    MAX_NONCES,
    MAX_NONCES_PER_DEVICE,
    NONCE_VALIDITY_S,
    NonceIssuer,
    _AnsweredNonces,
)
from phoneemu.net._taken import unsent, until_taken
from phoneemu.net.tls import FailureLog, peer_certificate_der
from phoneemu.protocols import sip
from phoneemu.values import host_port

__all__ = ["MAX_NONCES", "MAX_NONCES_PER_DEVICE", "MAX_REFUSED_IN_A_ROW", "NONCE_VALIDITY_S",
           "TAKEN_PER_WAIT", "SipRegistrar"]

_log = logging.getLogger("phoneemu.lab.sip")
#: outcomes said at ``problem_log_level`` (module rules): the client's message or connection at fault
_PROBLEMS = frozenset({"malformed", "truncated", "timeout", "flood"})

#: a nonce a caller may adopt (:meth:`SipRegistrar.adopt_nonce`): what a quoted Digest parameter carries
_ADOPTABLE_NONCE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,256}")
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 481: "Call/Transaction Does Not Exist"}


#: the headers every request carries (RFC 3261 §8.1.1); a request without one of them gets 400
_REQUIRED = ("Via", "From", "To", "Call-ID", "CSeq")
#: a CSeq value: a sequence number of at most 10 digits and a method (RFC 3261 §20.16)
_CSEQ = re.compile(r"([0-9]{1,10})[ \t]+([A-Za-z!%*_+`'~.-]+)")

#: a phone's device name as a request's user (``SEP<MAC>``): a call to another phone (:mod:`.call_relay`)
_PHONE_USER = re.compile(r"SEP[0-9A-Fa-f]{12}")


def _host(address: str) -> str:
    """The host of ``HOST:PORT`` / ``[V6]:PORT``."""
    return address.rsplit(":", 1)[0].strip("[]")


def _dialog_header_problem(msg: sip.SipMessage) -> str | None:
    """What is wrong with request ``msg``'s dialog headers (RFC 3261 §8.1.1: Via, From, To, Call-ID and
    CSeq in every request; §8.1.1.5: CSeq is a number below 2**31 and the request's method), None when
    nothing is."""
    missing = [name for name in _REQUIRED if not msg.header(name)]  # an empty value is none
    if missing:
        return f"no {', '.join(missing)}"
    cseq = msg.header("CSeq") or ""
    found = _CSEQ.fullmatch(cseq)
    if found is None or int(found[1]) >= 2 ** 31 or found[2] != msg.method:
        return f"CSeq {cseq[:40]!r} is not a number below 2**31 and the method {msg.method}"
    return None


def _challenge_only(msg: sip.SipMessage, reply: bytes) -> bool:
    """Whether ``reply`` is a challenge to a request carrying no credentials: the first step of every
    digest authentication, not counted as a refusal (module rules)."""
    return reply.startswith(b"SIP/2.0 401 ") and msg.header("authorization") is None


def _device_cert_problem(der: bytes | None, device: str) -> str | None:
    """Why a phone's certificate over TLS does not authenticate ``device`` (``SEP<MAC>``), None when it
    does: one must be presented (its chain was verified in the handshake) and name the device in its
    common name (an LSC's CN is the device name, a MIC's ``CP-<model>-SEP<MAC>``, spec §F.9)."""
    if der is None:
        return "no device certificate presented over TLS (mutual authentication: an LSC or a MIC)"
    try:
        subject = certs.load_cert_der(der, path="device certificate").subject
    except DecodeError as exc:
        return f"device certificate unreadable: {exc}"
    cn = next((str(a.value) for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)), "")
    if not cn.upper().endswith(device.upper()):
        return f"the device certificate names {cn[:80]!r}, not {device}"
    return None


#: bytes of what is unsent a client must take each ``read_timeout`` (module rules): less than an answer
TAKEN_PER_WAIT = 256
#: requests refused in a row after which a connection is closed (module rules; ours): a phone registering
#: or calling is refused at most three times in a row before it is served or gives up
MAX_REFUSED_IN_A_ROW = 32


class _NotTakenError(Exception):
    """The client did not take an answer within ``read_timeout`` (module rules)."""


class SipRegistrar:
    """Per-connection handler for :class:`phoneemu.net.tls.TlsServer` (TCP or TLS; module rules).

    ``credentials(mac)`` gives a known device's digest user and password (``(None, None)``: known, no
    digest; None: unknown device); ``clock()`` the lab time in seconds."""

    def __init__(self, credentials: Callable[[str], tuple[str | None, str | None] | None], *,
                 clock: Callable[[], int] | None = None, read_timeout: float = 10.0,
                 nonce_validity: int = NONCE_VALIDITY_S,
                 on_log: Callable[[str, str, str, str], None] | None = None,
                 on_registered: Callable[[str, str | None], None] | None = None,
                 media: MediaResources | None = None, relay: CallRelay | None = None,
                 attacker: SignallingAttacker | None = None,
                 dial_plan: Callable[[str], DialPlan | None] | None = None,
                 problem_log_level: int = logging.WARNING,
                 max_refused_in_a_row: int = MAX_REFUSED_IN_A_ROW) -> None:
        self.credentials = credentials
        #: requests refused in a row after which a connection is closed (module rules)
        self.max_refused_in_a_row = max_refused_in_a_row
        #: the problems' lines (module rules: malformed, truncated, timeout, flood): at
        #: ``problem_log_level``, a flood of them once a second with their count and outcomes (each one
        #: still a line at INFO)
        self.problems = FailureLog(_log, "sip", ("SIP problem", "SIP problems"), level=problem_log_level)
        self.clock = clock if clock is not None else (lambda: int(time.time()))
        self.read_timeout = read_timeout
        self.nonce_validity = nonce_validity
        self.on_log = on_log
        self.on_registered = on_registered
        self.media = media
        self.relay = relay
        self.attacker = attacker
        self.dial_plan = dial_plan
        self._issuer = NonceIssuer(secrets.token_bytes(32))  # the nonces' HMAC key (:mod:`.sip_nonces`)
        # per device, expired ones forgotten first (:mod:`.sip_nonces` rules)
        self._answered = _AnsweredNonces(clock=lambda: int(self.clock()), validity=nonce_validity)
        #: adopted nonces not yet answered: nonce -> issue time (:meth:`adopt_nonce`)
        self._adopted: collections.OrderedDict[str, int] = collections.OrderedDict()

    @property
    def problem_log_level(self) -> int:
        """The level of the problems' lines (module rules: malformed, truncated, timeout, flood)."""
        return self.problems.level

    @problem_log_level.setter
    def problem_log_level(self, level: int) -> None:
        self.problems.level = level

    def flush(self) -> None:
        """Say the problems counted in the current interval (the server stops): none is left unsaid."""
        self.problems.flush()

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = host_port(peername[0], peername[1]) if peername else "?"
        sockname = writer.get_extra_info("sockname")
        local = host_port(sockname[0], sockname[1]) if sockname else "127.0.0.1:0"
        over_tls = writer.get_extra_info("ssl_object") is not None
        device_cert = peer_certificate_der(writer) if over_tls else None
        stream = sip.SipStream()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.read_timeout
        ending = False
        refused_in_a_row = 0  # requests the registrar refused since the last one served (module rules)
        try:
            while True:
                msg = stream.next()
                if msg is None:
                    if not stream.pending():  # nothing of a message begun: the next one has read_timeout
                        deadline = loop.time() + self.read_timeout
                    chunk = await self._read_before(reader, deadline, stream, peer)
                    if not chunk:
                        return
                    stream.feed(chunk)
                    continue
                if msg.status is not None:  # a phone's response to a call relayed to it
                    if self.relay is not None:
                        self.relay.response(msg)
                else:
                    refused = await self._handle(msg, writer, peer=peer, local=local, over_tls=over_tls,
                                                 device_cert=device_cert)
                    if refused is not None:  # a challenge, an ACK taken: neither counted nor served
                        refused_in_a_row = refused_in_a_row + 1 if refused else 0
                    if refused_in_a_row >= self.max_refused_in_a_row:
                        self._log(peer, "?", "flood", f"{refused_in_a_row} requests in a row refused (the "
                                  f"last {msg.method}): connection closed")
                        return
                deadline = loop.time() + self.read_timeout  # the next message's, from this one's answer
        except DecodeError as exc:
            self._log(peer, "?", "malformed", str(exc))
            try:
                await self._send(writer, sip.build_message("SIP/2.0 400 Bad Request", []))
            except _NotTakenError as not_taken:
                self._cut(writer, peer, str(not_taken))
            except (ConnectionError, OSError):  # a client gone meanwhile gets no 400
                pass
        except _NotTakenError as exc:
            self._cut(writer, peer, str(exc))
        except (TimeoutError, ConnectionError, OSError):
            return
        except asyncio.CancelledError:  # the server's close: it ends the connection, nothing waited for
            ending = True
            raise
        finally:
            if self.relay is not None:
                self.relay.line_down(writer)
            await self._close(writer, peer, ending=ending)

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        """Write ``data``; the client must go on taking it (module rules: :meth:`_taken`), else
        :class:`_NotTakenError`. No wait when the kernel took it all (the common case: no timer)."""
        writer.write(data)
        if not writer.transport.get_write_buffer_size():
            return
        left = await self._taken(writer, writer.drain())
        if left is not None:
            raise _NotTakenError(f"an answer not taken within {self.read_timeout:g}s ({left} bytes unsent)")

    async def _close(self, writer: asyncio.StreamWriter, peer: str, *, ending: bool = False) -> None:
        """Close the connection; the client must go on taking what is still unsent (module rules:
        :meth:`_taken`), else the connection is aborted (logged ``timeout``): a close waits for its unsent
        bytes, and one that waited for ever held the descriptor after the server had let the connection
        go. ``ending`` (the server's close cancelled the handler): no wait, the server ends the connection
        (was: its close waited as long as the client read slowly but steadily)."""
        writer.close()
        if ending or not writer.transport.get_write_buffer_size():  # 0 after an abort: nothing to wait for
            return
        unsent_at_close = unsent(writer)
        try:
            left = await self._taken(writer, writer.wait_closed())
        except (ConnectionError, OSError):
            return
        if left is not None:
            self._cut(writer, peer, f"the last {left} of {unsent_at_close} bytes not taken within "
                                    f"{self.read_timeout:g}s")

    async def _taken(self, writer: asyncio.StreamWriter, sent: Awaitable[None]) -> int | None:
        """Await ``sent`` (an answer's drain, or the close) while the client takes what is unsent: at least
        :data:`TAKEN_PER_WAIT` bytes of it (or all, when less) within each ``read_timeout``
        (:func:`phoneemu.net._taken.until_taken`: the transport's buffer and the kernel's send queue,
        looked at four times a ``read_timeout``; module rules). None once ``sent`` is done, else the bytes
        still unsent when the client stopped taking them (or when a call relayed to it wrote meanwhile)."""
        return await until_taken(writer, sent, self.read_timeout, floor=TAKEN_PER_WAIT)

    def _cut(self, writer: asyncio.StreamWriter, peer: str, why: str) -> None:
        """Abort a connection whose client does not take what it is sent (module rules); logged
        ``timeout``."""
        self._log(peer, "?", "timeout", f"{why}: connection aborted")
        writer.transport.abort()

    async def _read_before(self, reader: asyncio.StreamReader, deadline: float, stream: sip.SipStream,
                           peer: str) -> bytes:
        """The next bytes of the connection; b"" when it ends: the client closed, or ``deadline`` passed
        (a message begun and not complete by then is logged ``timeout``, one the client's end cut
        ``truncated``; an idle connection just ends).
        Bytes that do not complete a message do not move the deadline (module rules: a client sending
        one byte at a time cannot hold the connection)."""
        left = deadline - asyncio.get_running_loop().time()
        try:
            chunk = await asyncio.wait_for(reader.read(4096), max(0.0, left))
        except TimeoutError:
            if stream.pending():
                self._log(peer, "?", "timeout", f"no complete message within {self.read_timeout:g}s ("
                          f"{stream.pending()} byte(s) of one received): connection closed")
            return b""
        if not chunk and stream.pending():  # the client's end inside a message (module rules)
            self._log(peer, "?", "truncated", f"connection closed inside a message ({stream.pending()} "
                                              "byte(s) of it received)")
        return chunk

    async def _handle(self, msg: sip.SipMessage, writer: asyncio.StreamWriter, *, peer: str, local: str,
                      over_tls: bool, device_cert: bytes | None) -> bool | None:
        """Answer one request on its connection: past the on-path attacker when there is one (the clear
        offer rewritten, the answer rewritten or its records altered, a REGISTER replayed once the phone
        registered), the phone's line up for calls once it registered (module rules). Whether the
        registrar refused it (True) or served it (False); None for neither: a challenge, an ACK it took
        (:meth:`_respond`)."""
        attacker = self.attacker if self.attacker is not None and self.attacker.active else None
        device = f"SEP{sip.device_mac(msg) or '?'}"
        if attacker is not None and not over_tls:
            msg = await attacker.offer_in(msg, device=device, lab_host=_host(local))
        reply, refused = await self._respond(msg, peer, over_tls=over_tls, device_cert=device_cert,
                                             local=local, origin=writer)
        ok = reply.startswith(b"SIP/2.0 200 ")
        if attacker is not None and msg.method == "INVITE" and reply and (ok or not over_tls):
            reply = self._past_attacker(attacker, msg, reply, writer, device=device, over_tls=over_tls)
        replayed = attacker is not None and not over_tls and ok and attacker.will_replay(msg, device=device,
                                                                                          peer=peer)
        if reply:
            await self._send(writer, reply)
        if self.relay is not None and msg.method == "REGISTER" and ok:
            self.relay.line_up(device, writer, over_tls=over_tls, local=local)
        if replayed and attacker is not None:  # after the phone's: the latest registration holds the line
            host, port = local.rsplit(":", 1)
            await attacker.replay_register(msg, device=device, registrar=(host.strip("[]"), int(port)))
        return refused

    @staticmethod
    def _past_attacker(attacker: SignallingAttacker, msg: sip.SipMessage, reply: bytes,
                       writer: asyncio.StreamWriter, *, device: str, over_tls: bool) -> bytes:
        """A call's answer on its way past the on-path attacker (:mod:`.on_path`): rewritten over TCP (a
        refusal closes the relay its offer got); over TLS the records that carry a ``200`` altered."""
        if not attacker.tamper:
            return reply
        if not over_tls:
            return attacker.answer_out(msg, reply)
        conn = writer.get_extra_info("tls_accept")
        if conn is not None:
            conn.alter_once = attacker.alter_answer(device)
        return reply

    def _nonce_state(self, device: str, nonce: str) -> tuple[int, int, bool] | None:
        """(issue time, last nonce count, forgotten) of a nonce this registrar issued (or adopted) as
        ``device`` answers it, None for another; ``forgotten``: not on record of ``device`` and issued
        before one forgotten that it may have answered (:mod:`.sip_nonces` rules)."""
        record = self._answered.get(device, nonce)
        if record is not None:
            return record[0], record[1], False
        adopted = self._adopted.get(nonce)
        if adopted is not None:
            return adopted, 0, False
        made = self._issuer.issued(nonce, device)
        if made is None:
            return None
        return made[0], 0, made[1] <= self._answered.forgotten_up_to(device)

    def _remember(self, device: str, nonce: str, issued: int, count: int) -> None:
        """Keep ``device``'s last nonce count ``count`` of ``nonce`` (:class:`.sip_nonces._AnsweredNonces`);
        an adopted nonce becomes the answering device's."""
        made = self._issuer.issued(nonce, device)
        self._adopted.pop(nonce, None)
        self._answered.remember(device, nonce, issued=issued, count=count,
                                serial=made[1] if made is not None else -1)

    def adopt_nonce(self, nonce: str, *, issued: int) -> None:
        """Take ``nonce`` as one this registrar issued at lab time ``issued`` and not yet answered: the
        first right answer of a device (a nonce count above 0) registers and makes it that device's,
        then it is counted and expires as the registrar's own nonces (module rules; another device's
        answer is then to a nonce not issued). At most :data:`MAX_NONCES` wait, the earliest adopted
        dropped first (ours). For a client whose nonce is fixed in advance (the fuzz target's seeds, the
        same in every process); EncodeError for a nonce a Digest header cannot carry (1..256 printable
        ASCII characters, no quote or backslash)."""
        if not _ADOPTABLE_NONCE.fullmatch(nonce):
            raise EncodeError(f"nonce {nonce[:40]!r}: 1..256 printable ASCII characters, no quote or "
                              "backslash", path="nonce")
        self._adopted[nonce] = int(issued)
        self._adopted.move_to_end(nonce)
        while len(self._adopted) > MAX_NONCES:
            self._adopted.popitem(last=False)

    def _log(self, peer: str, device: str, outcome: str, detail: str) -> None:
        """Log an outcome (module rules: a problem — malformed, truncated, timeout, flood — through
        :attr:`problems`, the flood rule at ``problem_log_level``; the others at INFO) and tell ``on_log``."""
        if outcome in _PROBLEMS:
            self.problems.failed(f"{peer} {device}", f"{outcome} {detail}", outcome)
        else:
            _log.info("sip: %s %s: %s %s", peer, device, outcome, detail)
        if self.on_log is not None:
            self.on_log(peer, device, outcome, detail)

    def answer(self, msg: sip.SipMessage, peer: str = "?", *, over_tls: bool = False,
               device_cert: bytes | None = None) -> bytes:
        """The response to one request other than a call's (module rules); a response is ignored (b"").
        ``over_tls``: the request came over TLS, where ``device_cert`` is the certificate the phone
        presented (DER)."""
        if msg.method is None:
            return b""
        refused = self._refuse_malformed(msg, peer)
        return refused if refused is not None else self._answer(msg, peer, over_tls=over_tls,
                                                                device_cert=device_cert)

    def _answer(self, msg: sip.SipMessage, peer: str, *, over_tls: bool, device_cert: bytes | None) -> bytes:
        """:meth:`answer` of a request whose dialog headers are whole (:meth:`_refuse_malformed`)."""
        assert msg.method is not None
        if msg.method != "REGISTER":
            found = sip.device_mac(msg)
            self._log(peer, f"SEP{found}" if found else "?", "not-allowed", msg.method)
            allow = "REGISTER, INVITE, ACK, BYE" if self.media is not None else "REGISTER"
            return self._response(msg, 405, [("Allow", allow)])
        device, refusal = self._admit(msg, peer, over_tls=over_tls, device_cert=device_cert,
                                      outcome="registered")
        return refusal if refusal is not None else self._ok(msg, device)

    async def respond(self, msg: sip.SipMessage, peer: str = "?", *, over_tls: bool = False,
                      device_cert: bytes | None = None, local: str = "127.0.0.1:0",
                      origin: object = None) -> bytes:
        """The response to one request: a call's INVITE, ACK (none) and BYE go to the media resources
        (:mod:`.media_service`) once the device is authenticated as for a REGISTER; the rest
        :meth:`answer`. ``peer`` / ``local``: the connection's two ends (``HOST:PORT``); ``origin``: the
        connection itself (a call's ACK and BYE must come over its INVITE's)."""
        reply, _verdict = await self._respond(msg, peer, over_tls=over_tls, device_cert=device_cert,
                                              local=local, origin=origin)
        return reply

    async def _respond(self, msg: sip.SipMessage, peer: str, *, over_tls: bool, device_cert: bytes | None,
                       local: str, origin: object) -> tuple[bytes, bool | None]:
        """:meth:`respond`'s answer, and whether it is the registrar's own refusal of the request (True: a
        4xx, or a malformed ACK's silence: what :data:`MAX_REFUSED_IN_A_ROW` counts) or serves it (False: a
        200, a call's answer from the media resources or the called phone, a 486, a 488...: the count starts
        again); None for neither (module rules): a challenge — a 401 to a request without credentials —
        nor an ACK taken (was: a challenge was a request served, so a refusal short of the rule, a
        challenge, and again kept the connection for ever)."""
        relay, media = self.relay, self.media
        if msg.method is None:
            return b"", None
        refused = self._refuse_malformed(msg, peer)
        if refused is not None:
            return refused, True
        if (media is None and relay is None) or msg.method not in ("INVITE", "ACK", "BYE"):
            reply = self._answer(msg, peer, over_tls=over_tls, device_cert=device_cert)
            return reply, None if _challenge_only(msg, reply) else not reply.startswith(b"SIP/2.0 200 ")
        if msg.method == "ACK":  # never answered, never challenged (RFC 3261 §17.1.1.3, §22.1)
            if relay is not None and relay.owns(msg):
                relay.ack(msg, origin)
            elif media is not None:
                media.ack(msg, origin)
            return b"", None
        device, refusal = self._admit(msg, peer, over_tls=over_tls, device_cert=device_cert,
                                      outcome="authenticated")
        if refusal is not None:
            return refusal, None if _challenge_only(msg, refusal) else True
        if msg.method == "BYE":
            if relay is not None and relay.owns(msg):
                return await relay.bye(msg, origin), False
            return (await media.bye(msg, origin) if media is not None else self._response(msg, 481)), False
        user = sip.request_user(msg)
        if relay is not None and (relay.reaches(user) or _PHONE_USER.fullmatch(user)):  # another phone
            refused = self._not_routable(msg, peer, device, user)
            if refused is not None:
                return refused, True
            reply = await relay.invite(msg, user=user, caller_tls=over_tls, device=device, origin=origin)
            return reply, False
        if media is None:
            return self._response(msg, 404), True
        return await media.invite(msg, peer_host=_host(peer), local_host=_host(local), over_tls=over_tls,
                                  device=device, origin=origin), False

    def _refuse_malformed(self, msg: sip.SipMessage, peer: str) -> bytes | None:
        """The ``400`` naming what is wrong with request ``msg``'s dialog headers (module rules; b"" for an
        ACK, never answered), logged ``malformed``; None when they are whole."""
        why = _dialog_header_problem(msg)
        if why is None:
            return None
        found = sip.device_mac(msg)
        self._log(peer, f"SEP{found}" if found else "?", "malformed", f"{msg.method}: {why}")
        if msg.method == "ACK":
            return b""
        return sip.response_to(msg, 400, f"Bad Request ({why})", to_tag="lab")

    def _not_routable(self, msg: sip.SipMessage, peer: str, device: str, user: str) -> bytes | None:
        """The ``404`` to an authenticated ``device``'s INVITE to phone ``user`` (``SEP<MAC>``) that its
        calling search space does not reach (module rules, :mod:`.dial_plan`); None: routed."""
        if self.dial_plan is None:
            return None
        caller = self.dial_plan(device[3:].upper()) or DialPlan()
        called = self.dial_plan(user[3:].upper()) or DialPlan()
        why = routing_refusal(caller, called, called_name=user.upper())
        if why is None:
            return None
        self._log(peer, device, "not-routable", why)
        return self._response(msg, 404)

    def _admit(self, msg: sip.SipMessage, peer: str, *, over_tls: bool, device_cert: bytes | None,
               outcome: str) -> tuple[str, bytes | None]:
        """The device a request comes from, and the refusal to send it (None: known and authenticated:
        its certificate over TLS, its digest answer when it has a digest user; module rules)."""
        found = sip.device_mac(msg)
        device = f"SEP{found}" if found else "?"
        creds = self.credentials(found) if found else None
        if creds is None:
            self._log(peer, device, "unknown-device", "no such device on the cluster")
            return device, self._response(msg, 404)
        if over_tls:
            refused = _device_cert_problem(device_cert, device)
            if refused is not None:
                self._log(peer, device, "forbidden", refused)
                return device, self._response(msg, 403)
        user, password = creds
        if user is None:
            self._log(peer, device, outcome, "no digest authentication for this device")
            return device, None
        auth = msg.header("authorization")
        if auth is None:
            self._log(peer, device, "challenged", f"digest user {user}")
            return device, self._challenge(msg, device)
        try:
            got = sip.parse_digest(auth, field="Authorization")
        except DecodeError as exc:
            self._log(peer, device, "refused", str(exc))
            return device, self._challenge(msg, device)
        why = self._check(got, device=device, user=user, password=password or "", uri=msg.uri or "",
                          method=msg.method or "")
        if why is None:
            self._log(peer, device, outcome, f"digest user {user}")
            return device, None
        result, detail = why
        self._log(peer, device, result, detail)
        return device, self._challenge(msg, device, stale=result == "stale")

    def _check(self, got: dict[str, str], *, device: str, user: str, password: str, uri: str,
               method: str = "REGISTER") -> tuple[str, str] | None:
        """None when ``device``'s answer is right (and kept as its answer); else (outcome, why)."""
        if got.get("username") != user or got.get("realm") != sip.REALM or got.get("uri") != uri:
            return "refused", "username, realm or uri is not the expected one"
        nonce = got.get("nonce", "")
        known = self._nonce_state(device, nonce)
        if known is None:
            return "refused", "a nonce this registrar did not issue"
        issued, last, forgotten = known
        qop, nc, cnonce = got.get("qop", ""), got.get("nc", ""), got.get("cnonce", "")
        expected = sip.digest_response(username=user, realm=sip.REALM, password=password, method=method,
                                       uri=uri, nonce=nonce, nc=nc, cnonce=cnonce, qop=qop)
        # as bytes: compare_digest raises TypeError on a str with non-ASCII characters (the peer's text)
        if not secrets.compare_digest(got.get("response", "").encode("utf-8"), expected.encode("ascii")):
            return "refused", "wrong response (password)"
        if self.clock() - issued > self.nonce_validity:
            return "stale", f"nonce older than {self.nonce_validity} s"
        if forgotten:
            return "stale", ("nonce not on record, issued before one forgotten (more than "
                             f"{MAX_NONCES_PER_DEVICE} answered nonces of the device since, or more than "
                             f"{MAX_NONCES} in all)")
        if qop == "auth" and not re.fullmatch(r"[0-9a-fA-F]{8}", nc):
            return "refused", f"qop=auth without a nonce count of 8 hex digits (nc {nc[:20]!r})"
        count = int(nc, 16) if qop == "auth" else 1  # without qop (RFC 2069) a nonce is good once
        if count <= last:
            return "replayed", f"nonce count {nc or '(none)'} not above {last:08x}"
        self._remember(device, nonce, issued, count)
        return None

    def _challenge(self, msg: sip.SipMessage, device: str, *, stale: bool = False) -> bytes:
        """A ``401`` with a fresh nonce for ``device`` (module rules)."""
        nonce = self._issuer.issue(device, int(self.clock()))
        params = [("realm", sip.REALM), ("nonce", nonce), ("algorithm", "MD5"), ("qop", "auth")]
        if stale:
            params.append(("stale", "TRUE"))
        value = sip.format_digest(params, unquoted=frozenset({"algorithm", "stale"}))
        return self._response(msg, 401, [("WWW-Authenticate", value)])

    def _ok(self, msg: sip.SipMessage, device: str) -> bytes:
        if self.on_registered is not None:
            self.on_registered(device[3:], reported_itl(msg.header(ITL_HASH_HEADER)))
        extra = [(k, v) for k in ("Contact",) if (v := msg.header(k)) is not None]
        return self._response(msg, 200, [*extra, ("Expires", msg.header("expires") or "3600")])

    @staticmethod
    def _response(msg: sip.SipMessage, status: int, extra: list[tuple[str, str]] | None = None) -> bytes:
        """A response copying the request's dialog headers (:func:`phoneemu.protocols.sip.response_to`)."""
        return sip.response_to(msg, status, _REASONS[status], extra, to_tag="lab")
