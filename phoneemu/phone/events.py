"""Decisions and events the phone records (spec §G rules, §H.2 status-message bound).

A :class:`Decision` is what every rule in :mod:`phoneemu.phone.rules` returns: the rule's
name, whether the artefact is accepted, a human reason, the file, the signer, and a stable
:class:`~phoneemu.errors.VerifyReason` when rejected. Two optional fields drive the I/O shell:
``needs_tvs`` (ask TVS this :class:`QueryKey`, then call the rule again with the answer) and
``action`` (e.g. ``"start-capf"``, ``"fetch-encrypted"``, ``"retry"``, ``"use-tcp"``).
``kind`` says what the decision is about (``"CTL"``, ``"ITL"``, ``"config"``, ``"firmware"``,
``"transport"``); ``artefact`` carries the accepted object for
:meth:`phoneemu.phone.store.TrustStore.apply` — the only way anything gets installed.

An :class:`EventLog` keeps the last ``limit`` events (default 200) and, separately, the last
30 status messages like the phone's Status Messages screen (spec §H.2).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from phoneemu.errors import EncodeError, VerifyReason
from phoneemu.phone.status import STATUS_MESSAGES_KEPT

__all__ = ["DEFAULT_EVENT_LIMIT", "Decision", "Event", "EventLog", "QueryKey"]

DEFAULT_EVENT_LIMIT = 200


@dataclass(frozen=True, kw_only=True, slots=True)
class QueryKey:
    """What the phone sends in a TVS QUERY for an unknown signer (spec §E.7.2, §B.4)."""

    subject: str
    issuer: str
    serial: bytes


@dataclass(frozen=True, kw_only=True, slots=True)
class Decision:
    """The outcome of one named rule (spec §G); ``rule`` is never empty."""

    rule: str
    accepted: bool
    reason: str
    file: str
    signer: str | None = None
    reason_code: VerifyReason | None = None
    status: str | None = None
    needs_tvs: QueryKey | None = None
    action: str | None = None
    kind: str = ""
    artefact: object = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not self.rule:
            raise EncodeError("a decision must name its rule", path="rule")
        if self.accepted and self.reason_code is not None:
            raise EncodeError("an accepting decision carries no reason_code", path="reason_code")
        if self.accepted and self.needs_tvs is not None:
            raise EncodeError("an accepting decision cannot still need TVS", path="needs_tvs")

    @property
    def pending(self) -> bool:
        """True when the rule cannot decide before the caller asks TVS (``needs_tvs``)."""
        return self.needs_tvs is not None

    def summary(self) -> str:
        """``RULE (accepted|rejected) FILE: REASON`` (no file for a decision about none, e.g. CAPF's)."""
        verdict = "accepted" if self.accepted else "rejected"
        return f"{self.rule} ({verdict}) " + (f"{self.file}: " if self.file else "") + self.reason


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """One recorded phone event: a decision, a status message, a transport problem."""

    time: int
    phone: str
    kind: str
    rule: str | None = None
    file: str | None = None
    signer: str | None = None
    reason: str | None = None
    accepted: bool | None = None
    detail: str | None = None

    @classmethod
    def of(cls, decision: Decision, *, time: int, phone: str, kind: str = "decision") -> Event:
        """The event recording ``decision``."""
        code = decision.reason_code.value if decision.reason_code is not None else None
        return cls(time=time, phone=phone, kind=kind, rule=decision.rule, file=decision.file,
                   signer=decision.signer, reason=decision.reason, accepted=decision.accepted,
                   detail=code)


#: An event not built yet (:meth:`EventLog.note`, :meth:`EventLog.log`): the fields of an :class:`Event`
#: in its field order, ``rule`` to ``accepted`` left out of a note's (5 values) — read as that Event
_Unbuilt = tuple[int, str, str, str | None, str | None] | \
    tuple[int, str, str, str | None, str | None, str | None, str | None, bool | None, str | None]


def _built(e: Event | _Unbuilt) -> Event:
    if isinstance(e, Event):
        return e
    if len(e) == 5:
        return Event(time=e[0], phone=e[1], kind=e[2], file=e[3], detail=e[4])
    return Event(time=e[0], phone=e[1], kind=e[2], rule=e[3], file=e[4], signer=e[5], reason=e[6],
                 accepted=e[7], detail=e[8])


class EventLog:
    """The last ``limit`` events and the last 30 status messages (spec §H.2).

    :meth:`note` and :meth:`log` add an event whose :class:`Event` is built only when the log is read
    (issue #6: a fleet storm records a dozen events per boot that nobody reads); what is read is the same.
    Each bounded deque is made at its first entry (issue #6: an empty deque holds ~0.75 KiB whatever its
    bound, and a fleet holds thousands of phones not booted yet); an empty log reads as empty."""

    __slots__ = ("_events", "_limit", "_status", "_status_limit")

    def __init__(self, limit: int = DEFAULT_EVENT_LIMIT, status_limit: int = STATUS_MESSAGES_KEPT) -> None:
        if limit < 1 or status_limit < 1:
            raise EncodeError("event and status limits must be at least 1", path="limit")
        self._limit = limit
        self._status_limit = status_limit
        self._events: deque[Event | _Unbuilt] | None = None
        self._status: deque[str] | None = None

    def _event_deque(self) -> deque[Event | _Unbuilt]:
        """The events' deque, made at the first event."""
        held = self._events
        if held is None:
            held = self._events = deque(maxlen=self._limit)
        return held

    def _add_status(self, text: str) -> None:
        """Keep ``text`` (the status deque made at the first message; oldest dropped beyond the bound)."""
        held = self._status
        if held is None:
            held = self._status = deque(maxlen=self._status_limit)
        held.append(text)

    def add(self, event: Event) -> None:
        self._event_deque().append(event)

    def note(self, *, time: int, phone: str, kind: str, file: str | None = None,
             detail: str | None = None) -> None:
        """``add(Event(time=..., phone=..., kind=..., file=..., detail=...))``, the Event built when read."""
        held = self._events  # (_event_deque inlined: a boot's hot path)
        if held is None:
            held = self._events = deque(maxlen=self._limit)
        held.append((time, phone, kind, file, detail))

    def record(self, decision: Decision, *, time: int, phone: str) -> Event:
        """Add the event for ``decision`` and its status message, if any; return the event."""
        ev = Event.of(decision, time=time, phone=phone)
        self._event_deque().append(ev)
        if decision.status:
            self._add_status(decision.status)
        return ev

    def log(self, decision: Decision, *, time: int, phone: str) -> None:
        """:meth:`record` without returning the event (built when the log is read, as ``Event.of``)."""
        code = decision.reason_code.value if decision.reason_code is not None else None
        held = self._events  # (_event_deque inlined: a boot's hot path)
        if held is None:
            held = self._events = deque(maxlen=self._limit)
        held.append((time, phone, "decision", decision.rule, decision.file, decision.signer, decision.reason,
                     decision.accepted, code))
        if decision.status:
            self._add_status(decision.status)

    def status(self, text: str) -> None:
        """Add a status message (oldest dropped beyond the bound)."""
        self._add_status(text)

    def _all_built(self) -> tuple[Event, ...]:
        """The events, each built now if it was not (kept built: the same objects at every read)."""
        held = self._events
        if held is None:
            return ()
        if not all(isinstance(e, Event) for e in held):
            self._events = held = deque((_built(e) for e in held), maxlen=held.maxlen)
        return tuple(held)  # type: ignore[arg-type]

    @property
    def events(self) -> tuple[Event, ...]:
        return self._all_built()

    @property
    def status_messages(self) -> tuple[str, ...]:
        return tuple(self._status) if self._status is not None else ()

    def __iter__(self) -> Iterator[Event]:
        return iter(self._all_built())

    def __len__(self) -> int:
        return len(self._events) if self._events is not None else 0
