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
* A nonce is valid for the phone security profile's "Nonce Validity Time", 600 s of the lab clock:
  past it the answer gets ``401`` with ``stale=TRUE`` (the phone answers the new nonce without asking
  anyone, RFC 2617 §3.2.1). A nonce count not above the last one seen for that nonce is a replay
  (RFC 2617 §3.2.2: the server detects replays with ``nc``): ``401``, a fresh challenge.
* Nonces cost no memory until answered (ours, after RFC 2617 §3.2.1's "time-stamp H(time-stamp ":"
  private-key)"): a nonce carries its issue time and a serial number with their HMAC under a secret the
  registrar draws when it starts, and is checked by that HMAC. The HMAC covers the device the challenged
  request names too (ours): the digest answer covers no header naming the device, and devices may share
  a digest user (``lab digest`` sets one for many), so a device answering a nonce issued to another —
  a captured answer replayed under another device's name — answers a nonce not issued (``401``), and
  replay detection per device stays whole. So a challenge keeps nothing, and a client
  asking for challenges, however many, pushes out no phone's nonce. What is kept is each *answered*
  nonce's last nonce count (replay detection), per device (the one the request names and whose digest
  answer is right; ours, :class:`_AnsweredNonces`): at most :data:`MAX_NONCES_PER_DEVICE` of a device,
  its least recently answered forgotten first, and at most :data:`MAX_NONCES` in all, forgotten first
  from the device holding the most — so one device answering nonces without end forgets only its own,
  and many devices doing so keep memory bounded all the same. A right answer of a device to a nonce
  not on record that was issued before the last one forgotten *of that device* gets ``401`` with
  ``stale=TRUE`` (RFC 7616 §3.3: the nonce, not the password, is refused; the phone answers the new
  nonce at once), so a forgotten nonce is never a replay accepted; a device whose last nonce was
  forgotten (more than :data:`MAX_NONCES` devices each holding one) is forgotten too, and what it had
  answered is then stale for every device (one round trip more, never a replay accepted). A restarted
  registrar draws a new secret: its earlier nonces are ones it did not issue.
* Wrong user, realm, URI or response: ``401`` with a fresh challenge (RFC 2617; the phone gives up).
  A call's INVITE and BYE are authenticated the same way (certificate over TLS, digest: CUCM challenges
  every request, spec §G.13) and go, with the ACK, to the lab's media resources (``media``,
  :mod:`.media_service`, spec §G.14) or, to ``sip:SEP<MAC>@…`` of a phone registered on an open
  connection, on to that phone (``relay``, :mod:`.call_relay`: CUCM between the two); a call's ACK and
  BYE count only over the connection its INVITE came on (ours; an ACK is never authenticated, and a
  Call-ID alone must not make the lab write to a phone). Another method (a call's too, without
  either): ``405``.
  A malformed message: ``400`` and the connection is closed. Each message must be complete within
  ``read_timeout`` of the connection's start, of the previous message or of a CRLF keep-alive (RFC 5626
  §4.4.1); bytes that do not complete it do not extend that (ours: a client sending one byte at a time
  cannot hold a connection), and one begun but not complete then is logged ``timeout`` and the
  connection closed; a connection idle that long is closed. Memory per connection is bounded by the
  message limits of :mod:`phoneemu.protocols.sip`.
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
  ``not-routable``, ``timeout``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import heapq
import hmac
import logging
import re
import secrets
import struct
import time
from collections.abc import Callable

from cryptography.x509.oid import NameOID

from phoneemu.crypto import certs
from phoneemu.errors import DecodeError, EncodeError
from phoneemu.lab.call_relay import CallRelay
from phoneemu.lab.dial_plan import DialPlan, routing_refusal
from phoneemu.lab.media_service import MediaResources
from phoneemu.lab.on_path import SignallingAttacker
from phoneemu.lab.registrations import ITL_HASH_HEADER, reported_itl
from phoneemu.net.tls import peer_certificate_der
from phoneemu.protocols import sip
from phoneemu.values import host_port

__all__ = ["MAX_NONCES", "MAX_NONCES_PER_DEVICE", "NONCE_VALIDITY_S", "SipRegistrar"]

_log = logging.getLogger("phoneemu.lab.sip")

#: CUCM phone security profile "Nonce Validity Time" default (spec §G.13)
NONCE_VALIDITY_S = 600
#: Most answered nonces kept with their last nonce count, all devices together (module rules; a
#: challenge keeps nothing)
MAX_NONCES = 10_000
#: Most answered nonces kept of one device (ours, module rules: a phone answers one nonce at a time,
#: a few when its REGISTER and a call's requests are challenged apart)
MAX_NONCES_PER_DEVICE = 100
#: A nonce: issue time (int64) and serial number (uint64), then the first bytes of their HMAC-SHA256
_NONCE_FIELDS = struct.Struct(">qQ")
_NONCE_MAC_SIZE = 16
_NONCE_RE = re.compile(rf"[0-9a-f]{{{2 * (_NONCE_FIELDS.size + _NONCE_MAC_SIZE)}}}")
#: a nonce a caller may adopt (:meth:`SipRegistrar.adopt_nonce`): what a quoted Digest parameter carries
_ADOPTABLE_NONCE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,256}")
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 481: "Call/Transaction Does Not Exist"}


#: a phone's device name as a request's user (``SEP<MAC>``): a call to another phone (:mod:`.call_relay`)
_PHONE_USER = re.compile(r"SEP[0-9A-Fa-f]{12}")


def _host(address: str) -> str:
    """The host of ``HOST:PORT`` / ``[V6]:PORT``."""
    return address.rsplit(":", 1)[0].strip("[]")


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


class _AnsweredNonces:
    """The answered nonces of each device with their last nonce count (module rules): at most
    :data:`MAX_NONCES_PER_DEVICE` of a device, its least recently answered forgotten first; at most
    :data:`MAX_NONCES` in all, forgotten first from the device holding the most (of those, the one that
    came to hold that many first). Each forgotten nonce's serial is noted for its device (a nonce issued
    no later may have been answered); a device left with none is dropped, its note raised to all
    devices' (``floor``), so memory is bounded by :data:`MAX_NONCES` whatever the number of devices.

    Before any of that, a nonce expired (issued more than ``validity`` s before now: its answer is stale
    whatever it says, module rules) is forgotten the same way, so a busy registrar forgets dead nonces
    before live ones (ours). Now is ``clock()``; without a clock, the issue time of the nonce being
    answered (no later than now: expired ones may then be forgotten later, never earlier). The issue
    order is kept apart (a heap), as a device's answers need not come in the order its nonces were
    issued."""

    def __init__(self, *, clock: Callable[[], int] | None = None, validity: int = NONCE_VALIDITY_S) -> None:
        #: device -> nonce -> [issue time, last nonce count, serial (-1: adopted)], least recently
        #: answered first
        self._kept: dict[str, collections.OrderedDict[str, list[int]]] = {}
        self._clock = clock
        self._validity = validity
        #: (issue time, order, device, nonce) of each kept nonce, earliest issued first; an entry whose
        #: nonce is no longer kept (or kept with another issue time) is dropped when met, or all at once
        #: when the entries are more than twice the kept nonces (:meth:`_compact`)
        self._by_issue: list[tuple[int, int, str, str]] = []
        self._pushed = 0  # entries pushed so far (their order)
        self._forgotten: dict[str, int] = {}  # device -> the latest serial forgotten of its nonces
        self._holding: dict[int, dict[str, None]] = {}  # n -> the devices holding n nonces, in order
        self._most = 0  # no device holds more
        self.total = 0
        self.floor = -1  # the latest serial forgotten of a device dropped

    def get(self, device: str, nonce: str) -> list[int] | None:
        """``[issue time, last nonce count, serial]`` of ``device``'s answered ``nonce``; None if not kept."""
        kept = self._kept.get(device)
        return kept.get(nonce) if kept is not None else None

    def forgotten_up_to(self, device: str) -> int:
        """The latest serial forgotten that ``device`` may have answered (-1: none)."""
        return max(self.floor, self._forgotten.get(device, -1))

    def remember(self, device: str, nonce: str, *, issued: int, count: int, serial: int) -> None:
        """Keep ``device``'s answer to ``nonce`` (its last nonce count ``count``), then forget what is
        past the bounds (class rules): expired nonces first."""
        self._forget_expired(self._clock() if self._clock is not None else issued)
        kept = self._kept.setdefault(device, collections.OrderedDict())
        if nonce not in kept or kept[nonce][0] != issued:
            if nonce not in kept:
                self._recount(device, len(kept), len(kept) + 1)
                self.total += 1
            self._pushed += 1
            heapq.heappush(self._by_issue, (issued, self._pushed, device, nonce))
        kept[nonce] = [issued, count, serial]
        kept.move_to_end(nonce)
        while len(kept) > MAX_NONCES_PER_DEVICE:
            self._forget_oldest(device)
        while self.total > MAX_NONCES:
            self._forget_oldest(self._holding_most())

    def _forget_expired(self, now: int) -> None:
        """Forget every nonce issued more than ``validity`` s before ``now`` (class rules)."""
        heap = self._by_issue
        while heap and now - heap[0][0] > self._validity:
            issued, _order, device, nonce = heapq.heappop(heap)
            if self._holds(device, nonce, issued):
                self._forget(device, nonce)
        if len(heap) > 2 * self.total + 64:
            self._compact()

    def _holds(self, device: str, nonce: str, issued: int) -> bool:
        """``device``'s ``nonce`` is kept, with issue time ``issued``."""
        record = self.get(device, nonce)
        return record is not None and record[0] == issued

    def _compact(self) -> None:
        """Keep one issue-order entry per kept nonce, drop the others (each entry met once: amortised)."""
        met: set[tuple[str, str]] = set()
        entries = []
        for entry in self._by_issue:
            issued, _order, device, nonce = entry
            if (device, nonce) not in met and self._holds(device, nonce, issued):
                met.add((device, nonce))
                entries.append(entry)
        heapq.heapify(entries)
        self._by_issue = entries

    def _holding_most(self) -> str:
        while self._most not in self._holding:
            self._most -= 1
        return next(iter(self._holding[self._most]))

    def _forget_oldest(self, device: str) -> None:
        self._forget(device, next(iter(self._kept[device])))

    def _forget(self, device: str, nonce: str) -> None:
        """Forget ``device``'s ``nonce``, noting its serial; drop the device left with none (class rules)."""
        kept = self._kept[device]
        _issued, _count, serial = kept.pop(nonce)
        self.total -= 1
        self._recount(device, len(kept) + 1, len(kept))
        forgotten = max(self._forgotten.get(device, -1), serial)
        if kept:
            self._forgotten[device] = forgotten
        else:  # dropped: what it answered may be answered again by it, as any device's (class rules)
            del self._kept[device]
            self._forgotten.pop(device, None)
            self.floor = max(self.floor, forgotten)

    def _recount(self, device: str, before: int, after: int) -> None:
        """Move ``device`` from those holding ``before`` nonces to those holding ``after``."""
        if before:
            holders = self._holding[before]
            del holders[device]
            if not holders:
                del self._holding[before]
        if after:
            self._holding.setdefault(after, {})[device] = None
            self._most = max(self._most, after)


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
                 dial_plan: Callable[[str], DialPlan | None] | None = None) -> None:
        self.credentials = credentials
        self.clock = clock if clock is not None else (lambda: int(time.time()))
        self.read_timeout = read_timeout
        self.nonce_validity = nonce_validity
        self.on_log = on_log
        self.on_registered = on_registered
        self.media = media
        self.relay = relay
        self.attacker = attacker
        self.dial_plan = dial_plan
        self._nonce_key = secrets.token_bytes(32)  # the nonces' HMAC key (module rules)
        self._serial = 0  # of the last nonce issued
        # per device, expired ones forgotten first (module rules)
        self._answered = _AnsweredNonces(clock=lambda: int(self.clock()), validity=nonce_validity)
        #: adopted nonces not yet answered: nonce -> issue time (:meth:`adopt_nonce`)
        self._adopted: collections.OrderedDict[str, int] = collections.OrderedDict()

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
                    await self._handle(msg, writer, peer=peer, local=local, over_tls=over_tls,
                                       device_cert=device_cert)
                deadline = loop.time() + self.read_timeout  # the next message's, from this one's answer
        except DecodeError as exc:
            self._log(peer, "?", "malformed", str(exc))
            with contextlib.suppress(ConnectionError, OSError):  # a client gone meanwhile gets no 400
                writer.write(sip.build_message("SIP/2.0 400 Bad Request", []))
                await writer.drain()
        except (TimeoutError, ConnectionError, OSError):
            return
        finally:
            if self.relay is not None:
                self.relay.line_down(writer)
            writer.close()

    async def _read_before(self, reader: asyncio.StreamReader, deadline: float, stream: sip.SipStream,
                           peer: str) -> bytes:
        """The next bytes of the connection; b"" when it ends: the client closed, or ``deadline`` passed
        (a message begun and not complete by then is logged ``timeout``; an idle connection just ends).
        Bytes that do not complete a message do not move the deadline (module rules: a client sending
        one byte at a time cannot hold the connection)."""
        left = deadline - asyncio.get_running_loop().time()
        try:
            return await asyncio.wait_for(reader.read(4096), max(0.0, left))
        except TimeoutError:
            if stream.pending():
                self._log(peer, "?", "timeout", f"no complete message within {self.read_timeout:g}s ("
                          f"{stream.pending()} byte(s) of one received): connection closed")
            return b""

    async def _handle(self, msg: sip.SipMessage, writer: asyncio.StreamWriter, *, peer: str, local: str,
                      over_tls: bool, device_cert: bytes | None) -> None:
        """Answer one request on its connection: past the on-path attacker when there is one (the clear
        offer rewritten, the answer rewritten or its records altered, a REGISTER replayed once the phone
        registered), the phone's line up for calls once it registered (module rules)."""
        attacker = self.attacker if self.attacker is not None and self.attacker.active else None
        device = f"SEP{sip.device_mac(msg) or '?'}"
        if attacker is not None and not over_tls:
            msg = await attacker.offer_in(msg, device=device, lab_host=_host(local))
        reply = await self.respond(msg, peer, over_tls=over_tls, device_cert=device_cert, local=local,
                                   origin=writer)
        ok = reply.startswith(b"SIP/2.0 200 ")
        if attacker is not None and msg.method == "INVITE" and reply and (ok or not over_tls):
            reply = self._past_attacker(attacker, msg, reply, writer, device=device, over_tls=over_tls)
        replayed = attacker is not None and not over_tls and ok and attacker.will_replay(msg, device=device,
                                                                                          peer=peer)
        if reply:
            writer.write(reply)
            await writer.drain()
        if self.relay is not None and msg.method == "REGISTER" and ok:
            self.relay.line_up(device, writer, over_tls=over_tls, local=local)
        if replayed and attacker is not None:  # after the phone's: the latest registration holds the line
            host, port = local.rsplit(":", 1)
            await attacker.replay_register(msg, device=device, registrar=(host.strip("[]"), int(port)))

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

    def _nonce(self, device: str) -> str:
        """A fresh nonce for ``device``: the lab time and the next serial number, with their HMAC, which
        covers the device too (module rules); nothing is kept."""
        self._serial += 1
        fields = _NONCE_FIELDS.pack(int(self.clock()), self._serial)
        return (fields + self._nonce_mac(fields, device)).hex()

    def _nonce_mac(self, fields: bytes, device: str) -> bytes:
        mac = hmac.new(self._nonce_key, fields + device.encode("utf-8"), hashlib.sha256)
        return mac.digest()[:_NONCE_MAC_SIZE]

    def _issued(self, nonce: str, device: str) -> tuple[int, int] | None:
        """(issue time, serial number) of a nonce this registrar issued to ``device`` (its HMAC checks);
        None for any other text, and for a nonce issued to another device (module rules)."""
        if not _NONCE_RE.fullmatch(nonce):
            return None
        raw = bytes.fromhex(nonce)
        fields, mac = raw[:_NONCE_FIELDS.size], raw[_NONCE_FIELDS.size:]
        if not hmac.compare_digest(mac, self._nonce_mac(fields, device)):
            return None
        issued, serial = _NONCE_FIELDS.unpack(fields)
        return issued, serial

    def _nonce_state(self, device: str, nonce: str) -> tuple[int, int, bool] | None:
        """(issue time, last nonce count, forgotten) of a nonce this registrar issued (or adopted) as
        ``device`` answers it, None for another; ``forgotten``: not on record of ``device`` and issued
        before one forgotten that it may have answered (module rules)."""
        record = self._answered.get(device, nonce)
        if record is not None:
            return record[0], record[1], False
        adopted = self._adopted.get(nonce)
        if adopted is not None:
            return adopted, 0, False
        made = self._issued(nonce, device)
        if made is None:
            return None
        return made[0], 0, made[1] <= self._answered.forgotten_up_to(device)

    def _remember(self, device: str, nonce: str, issued: int, count: int) -> None:
        """Keep ``device``'s last nonce count ``count`` of ``nonce`` (:class:`_AnsweredNonces`); an
        adopted nonce becomes the answering device's."""
        made = self._issued(nonce, device)
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
        _log.info("sip %s %s: %s %s", peer, device, outcome, detail)
        if self.on_log is not None:
            self.on_log(peer, device, outcome, detail)

    def answer(self, msg: sip.SipMessage, peer: str = "?", *, over_tls: bool = False,
               device_cert: bytes | None = None) -> bytes:
        """The response to one request other than a call's (module rules); a response is ignored (b"").
        ``over_tls``: the request came over TLS, where ``device_cert`` is the certificate the phone
        presented (DER)."""
        if msg.method is None:
            return b""
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
        relay, media = self.relay, self.media
        if (media is None and relay is None) or msg.method not in ("INVITE", "ACK", "BYE"):
            return self.answer(msg, peer, over_tls=over_tls, device_cert=device_cert)
        if msg.method == "ACK":  # never answered, never challenged (RFC 3261 §17.1.1.3, §22.1)
            if relay is not None and relay.owns(msg):
                relay.ack(msg, origin)
            elif media is not None:
                media.ack(msg, origin)
            return b""
        device, refusal = self._admit(msg, peer, over_tls=over_tls, device_cert=device_cert,
                                      outcome="authenticated")
        if refusal is not None:
            return refusal
        if msg.method == "BYE":
            if relay is not None and relay.owns(msg):
                return await relay.bye(msg, origin)
            return await media.bye(msg, origin) if media is not None else self._response(msg, 481)
        user = sip.request_user(msg)
        if relay is not None and (relay.reaches(user) or _PHONE_USER.fullmatch(user)):  # another phone
            refused = self._not_routable(msg, peer, device, user)
            if refused is not None:
                return refused
            return await relay.invite(msg, user=user, caller_tls=over_tls, device=device, origin=origin)
        if media is None:
            return self._response(msg, 404)
        return await media.invite(msg, peer_host=_host(peer), local_host=_host(local), over_tls=over_tls,
                                  device=device, origin=origin)

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
        params = [("realm", sip.REALM), ("nonce", self._nonce(device)), ("algorithm", "MD5"), ("qop", "auth")]
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
