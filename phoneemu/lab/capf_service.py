"""The lab CAPF server: TLS on TCP 3804 enrolling, fetching and deleting LSCs (spec §F, §H.6).

Rules:

* TLS with the cluster's CAPF identity (role CAPF (4) in the CTL/ITL, spec §F.1); TLS 1.0 to 1.3
  (7900 series: TLS 1.0 only, §F.1); no client certificate is requested (authentication is inside the
  protocol, §F.7).
* The server speaks first with AUTH_REQUEST (§F.1, §F.6). The device — and so its pending operation
  — is only known from the AUTH_RESPONSE that follows, so **our convention** (like capfd, §F.6 notes)
  is to send AUTH_TYPE = 0 in AUTH_REQUEST and enforce the device's configured mode afterwards; the
  phone takes its mode from ``capfAuthMode`` in its config (§H.5), which the cluster writes.
* When AUTH_RESPONSE arrives, a :class:`phoneemu.protocols.capf.CapfServerSession` is made with the
  device's pending operation from :meth:`LabCluster.capf_pending` (install/fetch/delete, auth mode,
  auth string, key type/size/curve) — "none" when nothing is pending, and END_SESSION REASON 9 for a
  device the cluster does not know (``SEP<MAC>`` of a phone in the cluster state).
* Certificate authentication (modes 3/4) checks the phone's MIC against the lab manufacturer CA and
  an LSC against the CAPF issuer (:meth:`LabCluster.verify_device_cert`); LSCs come from the lab PKI
  (:meth:`LabCluster.issue_lsc`).
* Every frame is written with ONE write (header and body together): capfd notes that splitting them
  stalls the phone's CAPF client (§F.2).
* Outcome → cluster: "installed" records the LSC (:meth:`LabCluster.record_lsc`, so encrypted
  configs are wrapped to it) and clears the pending operation; "fetched" and "deleted" clear it
  (:meth:`LabCluster.capf_done`, which also forgets the LSC after a delete). Failures leave it
  pending: the phone retries (§F.1: 3 more times, 30 s apart).
* **Recorded before the phone is told** (our convention): a successful operation's END_SESSION is held
  back (``CapfServerSession(confirm_end=True)``) until the outcome is in the lab. The record is a write
  of the lab like a ``phoneemu lab`` operation's: under the lab lock held exclusively, on the state as
  saved (:meth:`LabCluster.update_locked`, re-read first when another process saved it since), so a
  concurrent operation's change and this one are both kept; the pending operation is cleared only if
  it is still the one the session ran. While an operation holds the lock the record waits (tried every
  :data:`phoneemu.lab.lock.LOCK_POLL_S`, the event loop serving meanwhile) at most ``lock_wait`` seconds
  (:data:`CAPF_LOCK_WAIT_S`, well inside the phone's 30 s read timeout). Still held then, or the record
  failing (e.g. the phone removed meanwhile): nothing is written, the phone gets END_SESSION REASON 7
  (failure) instead of the success — it keeps its old LSC (an install is not stored, a delete not
  done) — the outcome is logged as ``error: ... not recorded``, and the operation stays pending for
  the phone's next CAPF session.
* **Group commit** (perf; the rules above unchanged): the records of the sessions that finish while
  one is being saved wait and are then made together, in one :meth:`LabCluster.update_locked` with one
  save of the state (:meth:`LabCluster.saved_once`), each session told its own outcome. A record that
  fails on its own (the checks above) fails only its session; a save that fails, or a lock still held
  after ``lock_wait``, fails every session of that group, none of their records standing. Before, each
  record saved the whole state: in a storm of N enrolments against a lab of N phones, O(N²) work
  (a 2,000-phone lab: ~70 ms of lab CPU per enrolment, phones timing out). The commit runs on the event
  loop (a 300-phone storm holds it ~0.1-0.5 s a commit, ~13 ms a record, mostly file writes): in a thread
  the loop served the records' rebuilt configs before they were saved — a save that then failed rolled
  them back, the phones holding files of a state never recorded (tried, and undone: making the change
  visible only once saved is a change of :class:`LabCluster` of its own).
* **Issued by the CAPF identity current at the record** (our convention): ``phoneemu lab regenerate DIR
  capf`` run by another process while a session runs makes the LSC that session issued (from the CAPF
  key it had) one the lab no longer vouches for. Under the lock, on the state as saved, the record
  checks that the LSC still verifies with the current CAPF identity; if not, nothing is written and the
  phone gets END_SESSION REASON 7 (failure, §F.5) like any record that fails: it keeps its old LSC,
  the install stays pending, and its retry (§F.1) is served by the new CAPF identity (TLS and issuer).
  Issuing again inside the session is not possible: the phone stored the LSC before the record
  (STORE_CERTIFICATE comes before END_SESSION, §F.6).
* A failed authentication (§F.7: a wrong string, a bad signature, a certificate the lab did not issue, or
  one whose key is neither RSA nor EC — DSA, Ed25519, §F.8), or malformed authentication data (a broken
  CERTIFICATE, a PASSWORD without its NUL: §F.6 "bad data"), is answered as CAPF answers it, END_SESSION
  REASON 7 (§F.6), and logged in one line as ``bad-auth`` with the reason; the server goes on serving.
* **Failed sessions** (logging): every session that did not do what was asked — ``bad-auth``,
  ``unknown-device``, ``keygen-failed``, ``store-failed``, ``fetch-failed``, ``delete-failed``, a
  ``malformed``, ``timeout``, ``truncated``, ``error`` (``not recorded`` included) or a lost connection —
  is a problem line with its reason at ``problem_log_level`` (WARNING; a scenario's lab: INFO), under the
  lab's flood rule (:class:`phoneemu.net.tls.FailureLog`, as failed TLS handshakes): the first after a quiet
  second said at once (``capf: PEER (TLS) SEP... op=install: bad-auth authentication string does not
  match``), the others of each second in one line with their count and outcomes (``capf: 99 CAPF sessions
  failed in the last 1.0 s (bad-auth 99)``), each still a line at INFO (``lab serve -v``);
  :meth:`CapfHandler.flush` says the last count when the server stops. Was: an outcome word without ``:``
  (``bad-auth``, ...) at INFO, so 100 refused authentications left no line without ``-v``. Successes
  (installed, fetched, deleted, nothing-pending) and a phone's own close between frames stay INFO.
* A malformed frame or a protocol violation closes that one connection with the reason logged; a whole
  session is bounded by ``session_timeout``. **Frame deadline** (ours): a client's frame must be complete
  within ``read_timeout`` of its first byte (§F.2 gives where it ends), and a client sending nothing at
  all is waited for ``read_timeout`` too. So a client dripping a frame one byte at a time is cut after
  ``read_timeout`` (logged ``timeout`` naming the bytes of the frame it had), not held to
  ``session_timeout``; a phone's own pause — computing its key after KEY_GENERATE_REQUEST (§F.6, §F.8),
  then sending the frame in one write — is not charged to its frame, so no phone the per-read timeout
  let through is cut. A phone that leaves before taking a frame ends its session with ``closed:
  connection lost in state ...`` logged (after a recorded outcome: that outcome, saying its END_SESSION
  was not sent); no exception escapes. One that closes (or resets) inside a frame it began is logged
  ``truncated`` as a problem, naming the bytes of the frame received and the state (as the TVS server
  does; was: ``closed: peer closed``, at INFO, like a clean close between frames).
* **Slow key generation** (ours; §F.6 REQUEST_IN_PROGRESS, §F.8 "half an hour or more"): a phone that
  sends REQUEST_IN_PROGRESS more often than ``read_timeout`` while it generates its key keeps the session;
  a phone silent for ``read_timeout`` is cut (logged ``timeout: nothing for ...s in state wait-keygen``,
  naming REQUEST_IN_PROGRESS). ``session_timeout`` stays the hard bound, keep-alives or not (a client
  sending REQUEST_IN_PROGRESS forever must not hold a session forever): a key generation still running
  then is logged ``timeout: key generation longer than ...s`` with the session bound and the
  REQUEST_IN_PROGRESS count. On either timeout in state ``wait-keygen`` the phone is sent END_SESSION
  REASON 7 (failure) before the connection is closed, so it learns why; nothing is recorded, the install
  stays pending. At most ``max_in_progress`` REQUEST_IN_PROGRESS are accepted in one session
  (:data:`phoneemu.protocols.capf.MAX_IN_PROGRESS`, 256): one more is a flood, logged ``malformed``,
  the connection closed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from phoneemu.crypto import certs
from phoneemu.errors import DecodeError, EncodeError, PhoneEmuError, ProtocolError, VerificationError
from phoneemu.formats import config
from phoneemu.lab.lock import LabBusyError, when_lab_lock_free
from phoneemu.lab.log_lines import loggable
from phoneemu.lab.tvs_service import peer_text, tls_summary
from phoneemu.net.tls import FailureLog
from phoneemu.protocols import capf

if TYPE_CHECKING:
    from phoneemu.lab.cluster import LabCluster

__all__ = ["CAPF_LOCK_WAIT_S", "CapfHandler", "CapfSessionLog", "mac_of_device_name"]

_log = logging.getLogger("phoneemu.lab.capf")

_READ_SIZE = 65536
#: How long a finished CAPF operation waits for a ``phoneemu lab`` operation holding the lab lock before
#: the phone is told it failed (our convention: well inside the phone's 30 s read timeout, §F.1)
CAPF_LOCK_WAIT_S = 10.0
#: Longest pause between two group commits (perf; :meth:`CapfHandler._commit_groups`)
_MAX_GROUP_WAIT_S = 0.25
#: Longest wait for the END_SESSION sent when a key generation times out to be taken (ours)
_END_SEND_WAIT_S = 1.0


#: Most characters of a client-chosen DEVICE_NAME (and of an outcome's detail) one log line carries
_NAME_LOG_LIMIT = 64
#: the outcomes of a session that did what was asked (:class:`phoneemu.protocols.capf.CapfResult`)
_SUCCEEDED = frozenset({"installed", "fetched", "deleted", "nothing-pending"})
_DETAIL_LOG_LIMIT = 512


@dataclass(frozen=True, kw_only=True)
class CapfSessionLog:
    """One CAPF connection and how it ended."""

    peer: str
    tls: str
    device_name: str
    operation: str  # what was pending: install | fetch | delete | none | "" (never authenticated)
    outcome: str  # CapfResult.outcome, or "malformed: ..." / "timeout" / "closed: ..."
    detail: str = ""


def mac_of_device_name(name: str) -> str | None:
    """``SEP001122AABBCC`` → ``001122AABBCC``; None when the name is not a SEP device name (§F.4)."""
    if not name.startswith("SEP"):
        return None
    try:
        return config.normalise_mac(name[3:])
    except PhoneEmuError:
        return None


class CapfHandler:
    """Per-connection handler for :class:`phoneemu.net.tls.TlsServer` over a :class:`LabCluster`.

    ``clock`` returns Unix seconds for LSC validity and the cluster log (None: the cluster clock).
    ``lock_wait``: how long recording an outcome waits for the lab lock (module docstring).
    ``max_in_progress``: most REQUEST_IN_PROGRESS frames accepted in one session (module docstring).
    """

    def __init__(self, cluster: LabCluster, *, clock: Callable[[], int] | None = None,
                 read_timeout: float = 30.0, session_timeout: float = 120.0,
                 lock_wait: float = CAPF_LOCK_WAIT_S, max_in_progress: int = capf.MAX_IN_PROGRESS,
                 on_log: Callable[[CapfSessionLog], None] | None = None,
                 problem_log_level: int = logging.WARNING) -> None:
        self.cluster = cluster
        #: the level a session ending in a problem (timeout, malformed, lost) is logged at: a scenario's
        #: lab rehearses them on purpose (INFO: its request log has each one, ``on_log``)
        self.problem_log_level = problem_log_level
        #: the sessions that failed (module rules "Failed sessions"): said at ``problem_log_level``, a flood
        #: of them once a second with their count and outcomes (each one still a line at INFO)
        self.failures = FailureLog(_log, "capf", ("CAPF session failed", "CAPF sessions failed"),
                                   level=problem_log_level)
        self.clock = clock
        self.read_timeout = read_timeout
        self.session_timeout = session_timeout
        self.lock_wait = lock_wait
        self.max_in_progress = max_in_progress
        self.on_log = on_log
        self.results: dict[str, int] = {}
        self._group: list[_Record] = []  # records awaiting their commit
        self._committing: asyncio.Task[None] | None = None
        self.commits = 0  # group commits made (one save of the state each); for tests and figures

    def flush(self) -> None:
        """Say the failures counted in the current interval (the server stops): none is left unsaid."""
        self.failures.flush()

    def _now(self) -> int | None:
        return self.clock() if self.clock is not None else None

    def _emit(self, entry: CapfSessionLog) -> None:
        """Count, log and report one session's end (module rules "Failed sessions"): a success or a phone's
        own close at INFO; every failure through :attr:`failures`, with its reason."""
        word = entry.outcome.split(":", 1)[0]
        self.results[word] = self.results.get(word, 0) + 1
        who = (f"{entry.peer} ({entry.tls}) {loggable(entry.device_name, _NAME_LOG_LIMIT) or '-'} "
               f"op={entry.operation or '-'}")
        why = f"{entry.outcome} {loggable(entry.detail, _DETAIL_LOG_LIMIT)}".rstrip()
        if _failed(entry.outcome):
            self.failures.failed(who, why, word)
        else:
            _log.info("capf: %s: %s", who, why)
        if self.on_log is not None:
            try:
                self.on_log(entry)
            except Exception:
                _log.exception("capf: log callback failed")

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = peer_text(writer)
        tls = tls_summary(writer)
        _log.info("capf: %s TLS HS Done (%s)", peer, tls)
        state = _Conn(peer=peer, tls=tls)
        try:
            await asyncio.wait_for(self._run(reader, writer, state), self.session_timeout)
        except TimeoutError:
            if state.keygen_since is None or state.session is None or state.session.state != "wait-keygen":
                self._emit(state.log(f"timeout: session longer than {self.session_timeout}s"))
                return
            waited = asyncio.get_running_loop().time() - state.keygen_since
            outcome = (f"timeout: key generation longer than {waited:.1f}s (the session bound is "
                       f"{self.session_timeout:g}s; {state.session.in_progress_received} REQUEST_IN_PROGRESS "
                       "received)")
            self._emit(state.log(outcome + await self._give_up_keygen(writer, state, outcome)))

    async def _run(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, st: _Conn) -> None:
        session_id = secrets.randbits(32)
        # AUTH_REQUEST {VERSION=3, AUTH_TYPE=0}: the device is not known yet (module docstring).
        first = capf.message(capf.CapfCommand.AUTH_REQUEST, session_id,
                             (capf.CapfTag.VERSION, bytes([capf.CAPF_VERSION])),
                             (capf.CapfTag.AUTH_TYPE, bytes([capf.AuthType.NONE])))
        writer.write(capf.encode(first))
        try:
            await writer.drain()
        except OSError:  # gone at once: a phone that refused this server's certificate (spec §F.1)
            self._emit(st.log("closed: peer closed before AUTH_REQUEST"))
            return
        decoder = capf.FrameDecoder()  # where the client's frames end (§F.2): AUTH_RESPONSE, frame deadline
        pending = b""  # raw bytes before the session exists (bounded: at most one frame + one read)
        session: capf.CapfServerSession | None = None
        loop = asyncio.get_running_loop()
        frame_due: float | None = None  # when the client's frame begun must be complete (None: none begun)
        while True:
            wait = self.read_timeout if frame_due is None else max(0.0, frame_due - loop.time())
            try:
                data = await asyncio.wait_for(reader.read(_READ_SIZE), wait)
            except TimeoutError:
                outcome = self._timeout_outcome(decoder.buffered, session.state if session else "wait-auth")
                self._emit(st.log(outcome + await self._give_up_keygen(writer, st, outcome)))
                return
            except OSError as exc:
                if decoder.buffered:
                    self._emit(st.log(_truncated(decoder.buffered, session, f"connection lost ({exc})")))
                elif session is None:  # reset before answering AUTH_REQUEST: a phone refusing us (§F.1)
                    self._emit(st.log(f"closed: peer closed (reset) in state wait-auth: {exc}"))
                else:
                    self._emit(st.log(f"closed: connection lost: {exc}"))
                return
            if not data:
                where = session.state if session else "wait-auth"
                outcome = (_truncated(decoder.buffered, session, "peer closed") if decoder.buffered
                           else f"closed: peer closed in state {where}")
                self._emit(st.log(outcome))
                return
            try:
                # the session decodes the same bytes: what fails here fails there, with the same error
                msgs = decoder.feed(data)
                frame_due = self._frame_due(frame_due, begun=decoder.buffered > 0, framed=bool(msgs),
                                            now=loop.time())
                if session is None:
                    pending += data
                    if not msgs:
                        continue
                    session = st.session = self._open_session(session_id, msgs[0], st)
                    session.start()  # its AUTH_REQUEST was already sent (ours, AUTH_TYPE 0)
                    data, pending = pending, b""  # the session re-reads everything from AUTH_RESPONSE on
                frames = session.receive(data)
            except DecodeError as exc:  # ProtocolError included: bad frame or out-of-sequence command
                self._emit(st.log(f"malformed: {exc}"))
                return
            except PhoneEmuError as exc:  # the cluster's pending operation cannot run (configuration)
                self._emit(st.log(f"error: {exc}"))
                return
            if session.state == "wait-keygen" and st.keygen_since is None:
                st.keygen_since = loop.time()  # KEY_GENERATE_REQUEST goes now: the phone's key generation
            lost = await _send(writer, frames)
            if lost is not None:
                ended = f" after {session.result.outcome}" if session.result is not None else ""
                self._emit(st.log(f"closed: connection lost in state {session.state}{ended}: {lost}"))
                return
            if session.error is not None and session.unconfirmed is None:
                # garbage after good frames in the same read: answered first
                self._emit(st.log(f"malformed: {session.error}"))
                return
            if session.unconfirmed is not None:  # succeeded: record it, then tell the phone
                if session.error is not None:  # what followed the last frame is not answered
                    _log.warning("capf %s: after the operation's last frame: %s (ignored)", st.peer,
                                 session.error)
                lost = await _send(writer, [await self._finish(st, session)])
                result = session.result
                assert result is not None
                told = "" if lost is None else f"connection lost before END_SESSION was sent: {lost}"
                detail = "; ".join(text for text in (result.detail, told) if text)
                if result.outcome == "not-recorded":
                    self._emit(st.log(f"error: {detail}"))
                else:
                    self._emit(st.log(result.outcome, detail=detail))
                return
            if session.done:
                result = session.result
                assert result is not None
                self._emit(st.log(result.outcome, detail=result.detail))
                return

    def _frame_due(self, due: float | None, *, begun: bool, framed: bool, now: float) -> float | None:
        """The frame deadline after a read (module rules): none when no frame is begun; ``read_timeout``
        from now when one began in this read (nothing was begun before, or a frame ended in it); else
        unchanged — bytes that do not end a frame do not extend it."""
        if not begun:
            return None
        if due is None or framed:
            return now + self.read_timeout
        return due

    def _timeout_outcome(self, buffered: int, state: str) -> str:
        """The ``timeout`` logged when a read's time ran out: a frame begun and not complete (naming the
        bytes of it received), else a client silent for ``read_timeout`` (in ``wait-keygen``: saying that
        a phone generating its key keeps the session with REQUEST_IN_PROGRESS, §F.6)."""
        if buffered:
            return (f"timeout: frame not complete within {self.read_timeout:g}s of its first byte "
                    f"({buffered} byte(s) of it received) in state {state}")
        if state == "wait-keygen":
            return (f"timeout: nothing for {self.read_timeout}s in state {state} (a phone still generating "
                    "its key keeps the session by sending REQUEST_IN_PROGRESS, spec §F.6)")
        return f"timeout: nothing for {self.read_timeout}s in state {state}"

    async def _give_up_keygen(self, writer: asyncio.StreamWriter, st: _Conn, why: str) -> str:
        """A timeout while the phone generates its key (module docstring): END_SESSION REASON 7 sent to it
        (waited for at most :data:`_END_SEND_WAIT_S`); what to add to the logged outcome ("" in any other
        state: nothing is sent)."""
        frame = st.session.end_on_timeout(why) if st.session is not None else None
        if frame is None:
            return ""
        try:
            lost = await asyncio.wait_for(_send(writer, [frame]), _END_SEND_WAIT_S)
        except TimeoutError:
            lost = f"not taken within {_END_SEND_WAIT_S:g}s"
        return "; END_SESSION REASON 7 sent" if lost is None else f"; END_SESSION REASON 7 not sent: {lost}"

    def _open_session(self, session_id: int, auth: capf.CapfMessage, st: _Conn) -> capf.CapfServerSession:
        if auth.command != capf.CapfCommand.AUTH_RESPONSE:
            raise ProtocolError(f"capf-server: expected AUTH_RESPONSE, got command {auth.command}",
                                     fmt="capf", path="capf-server.wait-auth", tag=auth.command)
        name = auth.string(capf.CapfTag.DEVICE_NAME)
        st.device_name = name
        mac = mac_of_device_name(name)
        st.mac = mac if mac is not None and mac in self.cluster.state.phones else None
        pending = self.cluster.capf_pending(st.mac) if st.mac is not None else None
        st.operation = pending.operation if pending is not None else "none"
        known = st.mac is not None
        if pending is None:
            return capf.CapfServerSession(session_id=session_id, known_device=lambda _n: known)
        try:
            return capf.CapfServerSession(
                session_id=session_id, known_device=lambda _n: known,
                verify_device_cert=lambda cert, cert_type: self.cluster.verify_device_cert(
                    cert, cert_type, device_name=name, now=self._now()),
                operation=pending.operation, auth_mode=pending.auth_mode, auth_string=pending.auth_string,
                key_type=pending.key_type, key_size=pending.key_size, curve=pending.curve,
                issue_lsc=lambda dev, spki: self.cluster.issue_lsc(dev, spki, now=self._now()),
                confirm_end=True, max_in_progress=self.max_in_progress)
        except EncodeError as exc:
            raise EncodeError(f"pending CAPF operation for {name} cannot run: {exc.message}",
                              path="capf_pending") from None

    async def _finish(self, st: _Conn, session: capf.CapfServerSession) -> bytes:
        """Record the successful outcome in the lab under the lab lock (module docstring); the
        END_SESSION to send: the success once recorded, else REASON 7 with nothing written."""
        result = session.unconfirmed
        assert result is not None
        mac, ran, now = st.mac, st.operation, self._now()
        if mac is None:  # a device the cluster does not know never gets an operation; defensive
            return session.refuse("device not in the cluster")

        def record() -> None:
            if result.outcome == "installed":
                lsc = certs.load_cert_der(result.certificate or b"")
                try:  # the CAPF identity as saved now (update_locked re-read the lab): still the issuer?
                    self.cluster.verify_device_cert(lsc, capf.CertType.LSC)
                except VerificationError as exc:
                    raise PhoneEmuError(f"the CAPF identity was regenerated during the session ("
                                        f"{exc.message}); not recorded, the phone's retry gets an LSC "
                                        "from the current CAPF") from None
                self.cluster.record_lsc(mac, lsc, now=now, operation=ran)
            else:  # fetched, deleted
                self.cluster.capf_done(mac, now=now, operation=ran)

        try:
            await self._record(_Record(record, f"record the CAPF {result.outcome} of {st.device_name}"))
        except LabBusyError as exc:
            return session.refuse(f"lab busy: {exc.message}; the operation stays pending")
        except PhoneEmuError as exc:
            return session.refuse(f"cluster update failed: {exc}")
        except OSError as exc:  # the state could not be saved (a full disk): undone, still pending
            return session.refuse(f"cluster update failed: cannot save the lab: {exc}; the operation "
                                  "stays pending")
        return session.confirm()

    async def _record(self, rec: _Record) -> None:
        """Make ``rec`` in the lab with the other records of its group (module docstring): returns once
        saved, or raises what failed it (its own PhoneEmuError, or the group's)."""
        self._group.append(rec)
        if self._committing is None:
            self._committing = asyncio.get_running_loop().create_task(self._commit_groups())
        await rec.done

    async def _commit_groups(self) -> None:
        """Commit the groups while records wait. After a commit, wait as long as its save took (at most
        :data:`_MAX_GROUP_WAIT_S`): the sessions under way meanwhile finish and join the next group, so
        saving takes at most about half of the loop's time however large the lab's state."""
        try:
            await asyncio.sleep(0)  # the sessions finishing in this turn of the loop join the group
            while self._group:
                group, self._group = self._group, []
                took = await self._commit(group)
                await asyncio.sleep(min(took, _MAX_GROUP_WAIT_S))
        finally:
            self._committing = None

    async def _commit(self, group: list[_Record]) -> float:
        """Make ``group``'s records with one save; tell each its outcome; the seconds that took (not
        counting a wait for the lab lock)."""
        own: list[BaseException | None] = [None] * len(group)
        took = 0.0

        def make_all() -> None:
            nonlocal took
            start = time.monotonic()
            with self.cluster.saved_once():
                for i, rec in enumerate(group):
                    try:
                        rec.change()
                    except PhoneEmuError as exc:  # this session's only: LabCluster undid it in memory
                        own[i] = exc
            took = time.monotonic() - start

        what = group[0].what if len(group) == 1 else \
            f"record {len(group)} CAPF outcomes ({group[0].what.removeprefix('record ')}, ...)"
        try:
            await when_lab_lock_free(lambda: self.cluster.update_locked(make_all, wait=False),
                                     root=self.cluster.root, limit=self.lock_wait, what=what)
        except Exception as exc:  # the group's (lock still held, the save failed): each session's, as before
            own = [exc] * len(group)
        self.commits += 1
        for rec, failed in zip(group, own, strict=True):
            if not rec.done.done():  # a session cancelled meanwhile (timeout) no longer waits
                if failed is None:
                    rec.done.set_result(None)
                else:
                    rec.done.set_exception(failed)
        return took


def _failed(outcome: str) -> bool:
    """Whether a session's ``outcome`` is a failure (module rules "Failed sessions"): all but the
    successes (:data:`_SUCCEEDED`) and a phone's own close between frames (``closed: peer closed``, its
    choice: e.g. one that refused this server's certificate, spec §F.1)."""
    return outcome not in _SUCCEEDED and not outcome.startswith("closed: peer closed")


def _truncated(buffered: int, session: capf.CapfServerSession | None, how: str) -> str:
    """The outcome of a connection that ended inside a client's frame (module rules): ``truncated``, a
    problem logged as such with the bytes of the frame received (was: ``closed: peer closed``, at INFO,
    as a clean close between frames)."""
    where = session.state if session is not None else "wait-auth"
    return f"truncated: {how} inside a frame ({buffered} byte(s) received) in state {where}"


async def _send(writer: asyncio.StreamWriter, frames: list[bytes]) -> str | None:
    """Write ``frames``, one write per frame (header and body together, §F.2), and wait until taken; None
    when sent, else why not (the phone left: a reset, a closed connection)."""
    if not frames:
        return None
    try:
        for frame in frames:
            writer.write(frame)
        await writer.drain()
    except OSError as exc:  # ConnectionResetError, BrokenPipeError, ssl.SSLError
        return str(exc) or type(exc).__name__
    return None


class _Record:
    """One finished session's change of the lab, awaiting its group commit."""

    __slots__ = ("change", "done", "what")

    def __init__(self, change: Callable[[], None], what: str) -> None:
        self.change = change
        self.what = what
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()


class _Conn:
    __slots__ = ("device_name", "keygen_since", "mac", "operation", "peer", "session", "tls")

    def __init__(self, *, peer: str, tls: str) -> None:
        self.peer = peer
        self.tls = tls
        self.device_name = ""
        self.mac: str | None = None
        self.operation = ""
        self.session: capf.CapfServerSession | None = None
        #: loop time when KEY_GENERATE_REQUEST was sent (None: not sent)
        self.keygen_since: float | None = None

    def log(self, outcome: str, *, detail: str = "") -> CapfSessionLog:
        return CapfSessionLog(peer=self.peer, tls=self.tls, device_name=self.device_name,
                              operation=self.operation, outcome=outcome, detail=detail)
