"""The lab registrar's digest nonces: issued, checked, and the answered ones kept (spec §G.13).

Rules (ours, after RFC 2617 §3.2.1's "time-stamp H(time-stamp ":" private-key)"; the registrar's
answers to them are :mod:`.sip_service`'s rules):

* Nonces cost no memory until answered: a nonce carries its issue time and a serial number with their
  HMAC under a secret the registrar draws when it starts (:class:`NonceIssuer`), and is checked by that
  HMAC. The HMAC covers the device the challenged request names too (ours): the digest answer covers no
  header naming the device, and devices may share a digest user (``lab digest`` sets one for many), so a
  device answering a nonce issued to another — a captured answer replayed under another device's name —
  answers a nonce not issued (``401``), and replay detection per device stays whole. So a challenge
  keeps nothing, and a client asking for challenges, however many, pushes out no phone's nonce.
* What is kept is each *answered* nonce's last nonce count (replay detection), per device (the one the
  request names and whose digest answer is right; ours, :class:`_AnsweredNonces`): at most
  :data:`MAX_NONCES_PER_DEVICE` of a device, its least recently answered forgotten first, and at most
  :data:`MAX_NONCES` in all, forgotten first from the device holding the most — so one device answering
  nonces without end forgets only its own, and many devices doing so keep memory bounded all the same.
* A right answer of a device to a nonce not on record that was issued before the last one forgotten
  *of that device* gets ``401`` with ``stale=TRUE`` (RFC 7616 §3.3: the nonce, not the password, is
  refused; the phone answers the new nonce at once), so a forgotten nonce is never a replay accepted; a
  device whose last nonce was forgotten (more than :data:`MAX_NONCES` devices each holding one) is
  forgotten too, and what it had answered is then stale for every device (one round trip more, never a
  replay accepted). A restarted registrar draws a new secret: its earlier nonces are ones it did not
  issue.
"""

from __future__ import annotations

import collections
import hashlib
import heapq
import hmac
import re
import struct
from collections.abc import Callable

__all__ = ["MAX_NONCES", "MAX_NONCES_PER_DEVICE", "NONCE_VALIDITY_S", "NonceIssuer"]

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


class NonceIssuer:
    """The nonces of one registrar (module rules): each its issue time and serial number with their HMAC
    under ``key`` (the secret the registrar draws when it starts), which covers the device too."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._serial = 0  # of the last nonce issued

    def issue(self, device: str, now: int) -> str:
        """A fresh nonce for ``device`` at lab time ``now``: the next serial number; nothing is kept."""
        self._serial += 1
        fields = _NONCE_FIELDS.pack(now, self._serial)
        return (fields + self._mac(fields, device)).hex()

    def _mac(self, fields: bytes, device: str) -> bytes:
        mac = hmac.new(self._key, fields + device.encode("utf-8"), hashlib.sha256)
        return mac.digest()[:_NONCE_MAC_SIZE]

    def issued(self, nonce: str, device: str) -> tuple[int, int] | None:
        """(issue time, serial number) of a nonce this issuer issued to ``device`` (its HMAC checks);
        None for any other text, and for a nonce issued to another device (module rules)."""
        if not _NONCE_RE.fullmatch(nonce):
            return None
        raw = bytes.fromhex(nonce)
        fields, mac = raw[:_NONCE_FIELDS.size], raw[_NONCE_FIELDS.size:]
        if not hmac.compare_digest(mac, self._mac(fields, device)):
            return None
        issued, serial = _NONCE_FIELDS.unpack(fields)
        return issued, serial


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
