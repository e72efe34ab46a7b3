"""A phone's flash: the trust store persisted in one directory with crash-safe writes (spec §G.1).

Layout of the directory (ours; real phones keep ``/CTLFile.tlv``, ``/ITLFile.tlv`` + ``.bak``):

* ``CTLFile.tlv``, ``ITLFile.tlv`` — the installed trust lists, byte for byte;
* ``config.xml`` — plaintext XML of the last accepted config;
* ``mic.der`` + ``mic.key``, ``lsc.der`` + ``lsc.key`` — certificates (DER) and keys (PEM, mode 0600);
  ``.mic.der.new`` / ``.mic.key.new`` (and ``.lsc.*.new``) only while a pair is being replaced (below);
* ``symmetric.key`` — the manual config key (raw bytes, mode 0600);
* ``state.json`` — capfAuthMode, running load, the config's file name and SHA-256, and the rule that
  accepted each file;
* ``last-boot.json`` — what the last boot ended with (when, against what, ok / locked out and by
  which refused list, trust-list and config outcomes, the deciding decision, its rule and kind of
  file), so that ``phoneemu phone show`` can say a phone at rest is locked out, why and the ways out;
  removed by an erase of the trust lists (the lock no longer holds) and by a factory reset.

Rules:

* Every file is replaced atomically: write ``.<name>.tmp``, flush + fsync, ``os.replace`` onto the
  name, fsync the directory. A crash at any point leaves the old file or the new one, never a
  torn mix. Files are written one after the other (``state.json`` last); a crash between two files
  can leave e.g. a new CTL beside the old ITL, each whole. Stale temp files are removed on load (below).
* A certificate and its key (``mic.*``, ``lsc.*``) are replaced as a pair (our convention): both are
  first written whole under staged names, ``.<stem>.der.new`` then ``.<stem>.key.new`` (each atomically
  as above); then ``.der.new`` is renamed onto ``.der`` — the commit point — and ``.key.new`` onto
  ``.key``. Loading (and the next save) settles an interrupted replacement from what is left: a
  ``.der.new`` means the commit never happened, so both staged files are removed and the old pair
  stands; a ``.key.new`` alone means it did, so it is renamed onto ``.key`` and the new pair stands. A
  crash at any point thus loads the old pair or the new one, never a mix. The pair's files keep their
  names and formats: a flash without staged files (every flash of an older phoneemu) loads as before,
  and an older phoneemu, which ignores the staged files, sees the old pair or a new certificate beside
  the old key (refused by the pair check below). Removing a pair (the phone holds no such credential)
  deletes ``.der`` then ``.key``: a crash between leaves the key alone, noted and not loaded — the
  removal's own outcome.
  A flash made with ``durable=False`` (the scenario runner's throw-away phones) skips the fsyncs:
  still atomic for readers, no longer crash-safe.
* One process at a time loads or saves a flash (ours): each load, save, erase and reset holds an
  ``flock`` on the flash folder itself (no lock file: the folder's listing is unchanged), exclusive — a
  load settles and cleans too — or shared for the read-only views (:meth:`held_files` ...). Without it a
  second ``boot --flash`` of the same folder loading while the first saved removed the first's temporary
  and staged files (its save failed, or a pair replacement was undone half-way), and two saves shared
  the temporary names (one renamed the other's half-written file into place). Each save writes the
  whole state, so after two boots at once the flash holds the state of the one that saved last — whole,
  never a mix of the two (the other's outcome is lost: boot one phone once at a time). The phone's
  ``phone.json`` (its MAC and model, :data:`phoneemu.phone.phone.PHONE_FILE`) is written by the same
  locked save (``identity``), atomically as the other files, after ``state.json``: written after the
  lock's release, two first boots of one new folder shared its temporary name, and a load cleaning up
  removed it under the other's rename (that boot failed). A lock held for longer than ``lock_wait``
  seconds (:data:`LOCK_WAIT` unless given; a process stopped mid-save) is a :class:`FlashInUseError` (an
  OSError) naming the folder. A fleet's flashes wait :data:`FLEET_LOCK_WAIT` (0.05 s, ours;
  ``lock_wait=0`` tries once and never sleeps): a fleet's phones share one event loop, where one flash
  waited for 10 s stalled every phone of the shard; a reader's brief shared lock is waited out (with no
  wait at all, a ``phone show --fleet-flash`` during a storm failed the boots whose flash it was
  reading), a longer hold fails that phone, its reason naming the folder, and the others boot on. A folder
  whose filesystem takes no ``flock`` (``ENOSYS`` on a Lustre mount without ``-o flock``, ``ENOLCK`` ...)
  is loaded and saved unlocked, as before the lock: never refused for it.
* A load removes the temporary files a crash left under this module's own names only
  (``.ITLFile.tlv.tmp`` ...), never any other ``.*.tmp`` of the folder: ``phone show --flash`` given a
  folder that is not a flash (a home folder) must not delete a user's files.
* Key material is created with mode 0600 (never world-readable, even for an instant).
* ``state.json`` and ``last-boot.json`` are written by :func:`phoneemu.json_doc.dumps`: a lone surrogate
  a string holds (bytes kept by ``surrogateescape``) is written U+FFFD, so strict JSON readers take the
  file; everything else reads back as it was written (the same text ``json.dumps`` wrote before).
* Loading re-applies the profile limit: a trust file above it, or one that does not parse, is not
  loaded (noted in :attr:`Flash.problems`) — the phone boots as if it were absent. So is any file of
  the flash that is not a regular file (a folder, a FIFO, a device): it is never opened for reading,
  so a FIFO cannot make ``phone show`` or a boot wait for a writer for ever; saving replaces it (a
  folder is not removed: saving over it is an OSError naming it). A phone shows these problems as
  the first statuses of its next boot (``flash: ITLFile.tlv: ...; not loaded``): a trust list lost
  to a damaged file is then taken again as on a phone with none, and the user sees why. Our decision
  where §G is silent (a real phone keeps a ``.bak``): a damaged list is an absent one, never a lock.
  The other list still decides (a new ITL is checked by an intact CTL, a new CTL by an intact ITL,
  §G.3); only a phone left holding neither takes the next list on first use (§G.2) — what
  ``phone erase``, the one way out of a lock, would lead to, and no more than deleting the file, which
  whoever can damage it can do. The boot's first status names the damaged file, and its decision says
  "first CTL accepted unchecked".
* ``config.xml`` is restored only as the config ``state.json`` says the phone accepted: under the file
  name it records, and only when the SHA-256 it records is that of ``config.xml``. The two are written
  one after the other (``state.json`` last), so a crash between them leaves a new config beside the old
  state, each whole; restoring it would install a config under a name the phone never accepted it
  under (the §G.4 rules decide per file name: signed or not, which name the signature covers). A
  config ``state.json`` does not vouch for — another SHA-256, no name, no SHA-256 (a flash of an older
  phoneemu), a damaged ``state.json`` — is not loaded and named (``flash: config.xml: SHA-256 ... is
  not the ... state.json records for SEP<MAC>.cnf.xml.sgn (a crash between writing the two?); not
  loaded``): the phone boots without a config and takes one afresh under the §G rules; the next save
  makes the pair consistent again. A ``state.json`` naming a config beside no ``config.xml`` is
  reported too (no config).
* The MIC and the LSC are checked at load, as the other files are: the certificate (``.der``) must be
  one whole DER certificate, the key (``.key``) a whole PEM private key — its structure only; RSA's
  slow consistency check waits for the key's first use — and the key that of the certificate. A pair
  that fails (truncated, empty, garbage, one half missing, or a key beside another certificate: an
  older phoneemu's crash between writing the two) is not loaded, and the problem names the file, what
  is wrong and the offset where known (``flash: mic.key at offset 0: truncated: a PEM private key
  block with no END line (...); not loaded (the phone runs without its MIC)``). The phone then runs as
  one without that credential: without an LSC it uses its MIC (a config encrypted for the LSC fails to
  decrypt, CAPF may install a new LSC); without a MIC, a PKI-encrypted config is refused ("no LSC or
  MIC") and MIC-authenticated CAPF fails, until a MIC is given (``boot --lab`` or
  ``--mic``/``--mic-key``, which replaces it: the status then says so). The files of such a pair stay
  on the flash (ours): a save leaves them, so that no command loses the phone's private key to a
  damaged certificate beside it (``phone set-key``, ``phone erase`` and every boot save the flash; they
  removed the pair, the good half too), and each load says again why they are not loaded, until the
  user repairs them, a new pair replaces them (``--mic``, a CAPF install) or a factory reset removes an
  LSC (never the MIC). An LSC key alone (its certificate gone) is the outcome of an interrupted
  removal: the next save finishes it.
* :meth:`Flash.erase_trust_lists` removes CTL and ITL ("Erasing CTL and ITL files");
  :meth:`Flash.factory_reset` removes everything but the MIC.

The TVS certificate cache and the "locked" flag live in RAM only and are not restored: after a
reboot the phone re-evaluates its trust lists (``last-boot.json`` is a report, never read back into
the store). Files written before ``state.json`` recorded a rule
(never the case for files this module wrote) are restored with the rule name ``flash-restore``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from phoneemu import files, json_doc
from phoneemu.crypto import certs
from phoneemu.errors import DecodeError, EncodeError
from phoneemu.formats.trustlist import TrustList
from phoneemu.phone import status
from phoneemu.phone.profile import PhoneProfile
from phoneemu.phone.store import AcceptedConfig, Credential, InternCache, TrustStore

__all__ = ["FLEET_LOCK_WAIT", "KEY_FILES", "LOCK_WAIT", "Flash", "FlashInUseError", "atomic_write",
           "dropped_credential", "not_loaded_notes"]

CTL_FILE = "CTLFile.tlv"
ITL_FILE = "ITLFile.tlv"
CONFIG_FILE = "config.xml"
STATE_FILE = "state.json"
LAST_BOOT_FILE = "last-boot.json"
#: Files holding secrets; always mode 0600.
KEY_FILES = frozenset({"mic.key", "lsc.key", "symmetric.key"})
_ALL = (CTL_FILE, ITL_FILE, CONFIG_FILE, "mic.der", "mic.key", "lsc.der", "lsc.key", "symmetric.key",
        STATE_FILE, LAST_BOOT_FILE)
_TMP_PREFIX = "."
_TMP_SUFFIX = ".tmp"
_STAGED_SUFFIX = ".new"
#: the identity file the phone writes beside these (:data:`phoneemu.phone.phone.PHONE_FILE`)
_PHONE_FILE = "phone.json"
#: The temporary files this module (and the phone's ``phone.json``) write, by name: the only ones a load
#: removes — never another ``.*.tmp`` of the folder (``phone show --flash ~`` must not delete a user's).
_OWN_TEMPS = frozenset(f"{_TMP_PREFIX}{n}{_TMP_SUFFIX}" for n in (*_ALL, _PHONE_FILE, *(
    f"{_TMP_PREFIX}{n}{_STAGED_SUFFIX}" for n in ("mic.der", "mic.key", "lsc.der", "lsc.key"))))
#: How long a load or save waits for another process's load or save of the same flash (module rules),
#: unless the flash is made with its own ``lock_wait`` (a fleet's: :data:`FLEET_LOCK_WAIT`).
LOCK_WAIT = 10.0
#: A fleet's flashes wait this long (ours): a reader's shared lock (``phone show --fleet-flash``, ``predict
#: --fleet-flash`` run during a storm) holds a flash for a few milliseconds and is waited out; a process
#: holding it longer is not waited for (the shard's loop stalls while it waits: module rules).
FLEET_LOCK_WAIT = 0.05
_LOCK_POLL = 0.01
_MAX_STATE = 64 * 1024
#: A MIC's or LSC's DER at most: what a CAPF CERTIFICATE element can carry (spec §F.4, a 16-bit length;
#: an LSC the phone installed is saved, so its flash must load it back), and a key's PEM at most.
_MAX_CERT = 0xFFFF
_MAX_KEY = 16384


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _state_bytes(store: TrustStore) -> bytes:
    """The ``state.json`` a save writes for ``store`` (module rules)."""
    state = {
        "capf_auth_mode": store.capf_auth_mode,
        "firmware_load": store.firmware_load,
        "config_file": store.config.file if store.config is not None else None,
        "config_sha256": None if store.config is None else hashlib.sha256(store.config.xml).hexdigest(),
        "ctl_rule": store.ctl_rule,
        "itl_rule": store.itl_rule,
        "config_rule": store.config_rule,
    }
    return json_doc.dumps(state, sort_keys=True, indent=1).encode()


def _files_of(store: TrustStore) -> tuple[object, ...]:
    """What a save writes as the flash's other files (trust lists, config, credentials, manual key): compared
    object by object (the same objects a load made compare at once)."""
    return (store.ctl, store.itl, store.config, store.mic, store.lsc, store.symmetric_key)


@dataclass(frozen=True, slots=True)
class _Loaded:
    """What :meth:`Flash.load` read (:meth:`Flash.unchanged`): the store's files, ``state.json`` and
    ``phone.json`` as they were, and whether the folder was private (0700)."""

    files: tuple[object, ...]
    state: bytes | None
    identity: bytes | None
    private: bool


class FlashInUseError(OSError):
    """Another process holds the flash's lock longer than this one waits (module rules); its text names the
    folder first: ``DIR: flash in use: ...``."""

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically (temp + rename); ``durable`` adds the fsyncs of the
    file and its directory that make the new content survive a power cut."""
    files.atomic_write(path, data, mode=mode, durable=durable,
                       tmp_name=f"{_TMP_PREFIX}{path.name}{_TMP_SUFFIX}")


def dropped_credential(stem: Literal["mic", "lsc"]) -> str:
    """How a flash problem with the MIC or LSC files ends: what the phone does about it (module rules)."""
    return f"not loaded (the phone runs without its {stem.upper()})"


def not_loaded_notes(path: Path, problems: list[str]) -> list[str]:
    """A note per file of the flash at ``path`` a boot would not load (:attr:`Flash.problems`), for the
    offline tools: ``flash DIR: ITLFile.tlv: ...; not loaded (the phone boots as if it were absent)``."""
    return [f"flash {path}: {p} (the phone boots as if it were absent)" for p in problems]


class Flash:
    """One phone's flash directory; :meth:`load` builds a :class:`TrustStore`, :meth:`save` writes one."""

    __slots__ = ("_kept", "_loaded", "_lock_depth", "_lock_fd", "durable", "intern", "lock_wait", "path",
                 "problems", "profile")

    def __init__(self, path: Path | str, *, profile: PhoneProfile, intern: InternCache | None = None,
                 durable: bool = True, lock_wait: float | None = None) -> None:
        """``durable=False`` skips the fsyncs (a scenario's throw-away flash: atomic, not crash-safe);
        ``lock_wait``: seconds a load or save waits for another process's (None: :data:`LOCK_WAIT`; 0: one
        try, no sleep — a fleet's, module rules)."""
        self.durable = durable
        self.lock_wait = lock_wait
        self.path = Path(path)
        self.profile = profile
        self.intern = intern
        self.problems: list[str] = []
        #: MIC/LSC files present at the last load but not loaded (damaged): a save leaves them (rules)
        self._kept: set[str] = set()
        #: what the last load read, for :meth:`unchanged` (None: no load, or a save since)
        self._loaded: _Loaded | None = None
        self._lock_fd = -1
        self._lock_depth = 0

    @contextlib.contextmanager
    def _locked(self, *, shared: bool = False) -> Iterator[None]:
        """Hold the flash folder's ``flock`` (module rules): one load or save of a flash at a time across
        processes; re-entrant within this object. Waits at most ``lock_wait`` seconds (:data:`LOCK_WAIT`
        unless given; 0: one try, never a sleep), then a :class:`FlashInUseError` naming the folder. A
        folder that cannot be opened is not locked (its own error comes next), nor one whose filesystem
        refuses ``flock`` (module rules)."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            yield
            return
        try:
            mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
            wait = LOCK_WAIT if self.lock_wait is None else max(0.0, self.lock_wait)
            tries = max(1, int(wait / _LOCK_POLL))  # bounded: ``wait`` seconds at most
            for attempt in range(tries):
                try:
                    fcntl.flock(fd, mode)
                except BlockingIOError:
                    if attempt + 1 < tries:
                        time.sleep(_LOCK_POLL)
                    continue
                except OSError:  # a filesystem without flock (Lustre's ENOSYS, ENOLCK ...): unlocked (rules)
                    pass
                break
            else:
                if tries > 1:
                    why = f"another process has been loading or saving it for {wait:g} s (two boots of one " \
                          "phone at once?)"
                else:
                    why = "another process is loading or saving it (not waited for: the fleet's other " \
                          "phones would stall)"
                raise FlashInUseError(errno.EWOULDBLOCK, f"flash in use: {why}; try again when it ends",
                                      str(self.path))
            self._lock_fd, self._lock_depth = fd, 1
            try:
                yield
            finally:
                self._lock_fd, self._lock_depth = -1, 0
        finally:
            os.close(fd)  # releases the lock

    def _file(self, name: str) -> Path:
        return self.path / name

    def _read(self, name: str, limit: int) -> bytes | None:
        p = self._file(name)
        try:  # without blocking: open() of a FIFO would wait for a writer for ever
            fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                self.problems.append(f"{name}: not a regular file; not loaded")
                return None
            with os.fdopen(os.dup(fd), "rb") as fh:
                data = fh.read(limit + 1)
        finally:
            os.close(fd)
        if len(data) > limit:
            self.problems.append(f"{name}: larger than {limit} bytes; not loaded")
            return None
        return data

    def _write(self, name: str, data: bytes | None) -> None:
        p = self._file(name)
        if data is None:
            if name in self._kept:  # damaged, not loaded: left for the user (module rules)
                return
            if os.path.lexists(p):
                p.unlink()
                if self.durable:
                    _fsync_dir(self.path)
            return
        self._kept.discard(name)  # replaced
        if self._unchanged(name, data):  # not rewritten
            return
        atomic_write(p, data, mode=0o600 if name in KEY_FILES else 0o644, durable=self.durable)

    def _unchanged(self, name: str, data: bytes) -> bool:
        """True when ``name`` is a regular file holding ``data`` already (a FIFO is never read)."""
        try:
            st = self._file(name).stat()
        except FileNotFoundError:
            return False
        return stat.S_ISREG(st.st_mode) and st.st_size == len(data) and self._file(name).read_bytes() == data

    def _staged(self, name: str) -> Path:
        return self._file(f"{_TMP_PREFIX}{name}{_STAGED_SUFFIX}")

    def _write_pair(self, stem: Literal["mic", "lsc"], cred: Credential | None) -> None:
        """Replace (or remove) a certificate and its key as one pair (module rules)."""
        der_name, key_name = f"{stem}.der", f"{stem}.key"
        self._settle_pair(stem, strict=True)
        if cred is None:
            self._write(der_name, None)
            self._write(key_name, None)
            return
        self._kept -= {der_name, key_name}  # a damaged pair is replaced by the new one
        if self._unchanged(der_name, cred.cert_der) and self._unchanged(key_name, cred.key_pem):
            return
        staged_der, staged_key = self._staged(der_name), self._staged(key_name)
        atomic_write(staged_der, cred.cert_der, durable=self.durable)
        atomic_write(staged_key, cred.key_pem, mode=0o600, durable=self.durable)
        os.replace(staged_der, self._file(der_name))  # the commit point: the new pair stands
        if self.durable:
            _fsync_dir(self.path)
        os.replace(staged_key, self._file(key_name))
        if self.durable:
            _fsync_dir(self.path)

    def _settle_pair(self, stem: Literal["mic", "lsc"], *, strict: bool = False) -> None:
        """Undo (not committed) or finish (committed) a pair replacement a crash interrupted (module
        rules). A flash that cannot be changed (read-only) is left as it is and noted, unless ``strict``
        (a save): then the OSError propagates."""
        der_name, key_name = f"{stem}.der", f"{stem}.key"
        staged_der, staged_key = self._staged(der_name), self._staged(key_name)
        try:
            if os.path.lexists(staged_der):  # staged, never committed: the old pair stands
                staged_key.unlink(missing_ok=True)  # the key first: a crash here leaves a rollback again
                staged_der.unlink()
            elif os.path.lexists(staged_key):  # committed: the new certificate is in place, finish
                os.replace(staged_key, self._file(key_name))
            else:
                return
            if self.durable:
                _fsync_dir(self.path)
        except OSError as exc:
            if strict:
                raise
            self.problems.append(f"{key_name}: an interrupted replacement of the {stem.upper()} could not "
                                 f"be settled: {exc}")

    def _clean_temps(self) -> None:
        """Remove the temporary files a crash left: this module's own names only (:data:`_OWN_TEMPS`), those
        the folder's listing holds (one listing, not an unlink a name: every boot of a fleet loads its
        flash, and 15 unlinks of names that are not there doubled a load's time)."""
        try:
            present = _OWN_TEMPS.intersection(os.listdir(self.path))
        except OSError:
            return
        for name in present:
            with contextlib.suppress(OSError):
                os.unlink(self._file(name))

    # ------------------------------------------------------------------ load / save
    def load(self) -> TrustStore:
        """Read the flash into a new store (missing directory → factory-fresh store without MIC)."""
        self.problems = []
        self._kept = set()
        self._loaded = None
        store = TrustStore(profile=self.profile, intern=self.intern)
        if not self.path.is_dir():
            return store
        with self._locked():
            self._load_into(store)
            self._loaded = _Loaded(files=_files_of(store), state=self._quietly_read(STATE_FILE),
                                   identity=self._quietly_read(_PHONE_FILE), private=self._private())
        return store

    def unchanged(self, store: TrustStore, *, identity: bytes) -> bool:
        """True when a :meth:`save` of ``store`` with ``identity`` would change nothing (ours): the last
        :meth:`load` read this flash whole (no problem noted: a save would settle nothing, remove nothing),
        ``store`` still holds the very files it read, the flash's ``state.json`` and ``phone.json`` are the
        bytes a save writes (not a flash of an older phoneemu, whose state a save completes; not a new
        folder, whose ``phone.json`` the first save writes), and the folder is private (0700). A phone made
        from such a flash need not write it back: a fleet's 3,000 phones spent a third of their making on
        saves that wrote nothing, each file read back to find it unchanged."""
        loaded = self._loaded
        if loaded is None or self.problems or not loaded.private:
            return False
        return (loaded.files == _files_of(store) and loaded.identity == identity
                and loaded.state == _state_bytes(store))

    def _quietly_read(self, name: str) -> bytes | None:
        """``name``'s bytes as :meth:`_read` reads them (None: absent, not a regular file, too large), noting
        nothing: a load notes its own files' problems once, and ``phone.json``'s are not the store's."""
        noted = len(self.problems)
        try:
            return self._read(name, _MAX_STATE)
        except OSError:
            return None
        finally:
            del self.problems[noted:]

    def _private(self) -> bool:
        """The folder is 0700, as :meth:`save` makes it."""
        try:
            return stat.S_IMODE(os.stat(self.path).st_mode) == 0o700
        except OSError:
            return False

    def _load_into(self, store: TrustStore) -> None:
        """:meth:`load`'s reading, the flash locked."""
        self._clean_temps()
        self._settle_pair("mic")
        self._settle_pair("lsc")
        state = self._state()
        store.mic = self._credential("mic")
        store.lsc = self._credential("lsc")
        sym = self._read("symmetric.key", 64)
        if sym:
            try:
                store.set_symmetric_key(sym)
            except EncodeError as exc:
                self.problems.append(f"symmetric.key: {exc.message}")
        ctl = self._trust_list("CTL", store.intern)
        itl = self._trust_list("ITL", store.intern)
        cfg = self._config(state, store.intern)

        def rule(key: str) -> str | None:
            v = state.get(key)
            return v if isinstance(v, str) and v else "flash-restore"

        store.restore(ctl=ctl, itl=itl, config=cfg, ctl_rule=rule("ctl_rule"), itl_rule=rule("itl_rule"),
                      config_rule=rule("config_rule"))
        mode = state.get("capf_auth_mode")
        if isinstance(mode, int) and not isinstance(mode, bool) and 0 <= mode <= 4:
            store.capf_auth_mode = mode
        load = state.get("firmware_load")
        if isinstance(load, str) and load:
            store.firmware_load = load

    def held_keys(self) -> tuple[Credential | None, Credential | None, bytes | None]:
        """The MIC, LSC and manual config key (``symmetric.key``) the flash holds, each read and checked
        as :meth:`load` reads it (a damaged one is noted in :attr:`problems` and None), **without
        changing anything**: no interrupted pair replacement settled, no temporary file removed
        (``predict`` reads a phone's flash to decrypt the new configs as the phone would, spec §G.12)."""
        self.problems = []
        if not self.path.is_dir():
            return None, None, None
        kept = set(self._kept)
        try:
            with self._locked(shared=True):
                mic, lsc = self._credential("mic"), self._credential("lsc")
                return mic, lsc, self._read("symmetric.key", 64) or None
        finally:
            self._kept = kept

    def held_files(self) -> dict[str, Path | None]:
        """The ITL, CTL and config :meth:`load` would load (keys ``itl``, ``ctl``, ``config``; None: absent,
        or not loaded — above the profile's limit, not parsing, a config ``state.json`` does not vouch
        for — and noted in :attr:`problems`: the phone boots as if it were absent), read and checked as
        load reads them, **without changing anything** (``predict`` and ``replay --flash`` start from
        what the phone would hold, so that they decide as its boot does)."""
        self.problems = []
        if not self.path.is_dir():
            return {"itl": None, "ctl": None, "config": None}
        intern = InternCache(max_items=4)
        with self._locked(shared=True):
            state = self._state()
            ctl = self._trust_list("CTL", intern)
            itl = self._trust_list("ITL", intern)
            cfg = self._config(state, intern)
        return {"itl": self.path / ITL_FILE if itl is not None else None,
                "ctl": self.path / CTL_FILE if ctl is not None else None,
                "config": self.path / CONFIG_FILE if cfg is not None else None}

    def held_config(self) -> AcceptedConfig | None:
        """The config :meth:`load` would restore — its XML and the name the phone accepted it under
        (``state.json``'s ``config_file``, module rules) — or None: absent, or not loaded (a config
        ``state.json`` does not vouch for, one not parsing; noted in :attr:`problems`). Read and checked
        as load reads it, **without changing anything**: the one rule for which config a flash holds
        and under which name (``predict`` and ``replay`` install a flash's ``config.xml`` under it)."""
        self.problems = []
        if not self.path.is_dir():
            return None
        with self._locked(shared=True):
            return self._config(self._state(), InternCache(max_items=1))

    def _state(self) -> dict[str, Any]:
        return self._json_object(STATE_FILE) or {}

    def _json_object(self, name: str) -> dict[str, Any] | None:
        """The JSON object file ``name`` holds; None when absent, not one, or not JSON (that noted in
        :attr:`problems`: deep nesting too, :mod:`phoneemu.json_doc`)."""
        raw = self._read(name, _MAX_STATE)
        if raw is None:
            return None
        try:
            obj = json_doc.loads(raw.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self.problems.append(f"{name}: {exc}")
            return None
        return obj if isinstance(obj, dict) else None

    def _config(self, state: dict[str, Any], intern: InternCache) -> AcceptedConfig | None:
        """The config, only as the file ``state.json`` says the phone accepted it (module rules)."""
        noted = len(self.problems)
        state_damaged = any(p.startswith(f"{STATE_FILE}:") for p in self.problems)
        xml = self._read(CONFIG_FILE, 1 << 20)
        name, want = state.get("config_file"), state.get("config_sha256")
        if xml is None:
            if len(self.problems) == noted and isinstance(name, str) and name:
                self.problems.append(f"{CONFIG_FILE}: missing, though {STATE_FILE} names {name} (a crash "
                                     f"between writing the two?); no config")
            return None
        why = self._config_mismatch(xml, name, want, state_damaged=state_damaged)
        if why is not None or not isinstance(name, str):
            self.problems.append(f"{CONFIG_FILE}: {why}; not loaded")
            return None
        try:
            return intern.config(xml, file=name)
        except DecodeError as exc:
            self.problems.append(f"{CONFIG_FILE}: {exc}")
            return None

    @staticmethod
    def _config_mismatch(xml: bytes, name: Any, want: Any, *, state_damaged: bool) -> str | None:
        """Why ``config.xml`` is not the config ``state.json`` says was accepted, or None when it is."""
        if state_damaged:
            return f"{STATE_FILE} is damaged: nothing says which file it came in"
        if not isinstance(name, str) or not name:
            return f"{STATE_FILE} names no config file for it (a crash between writing the two?)"
        if not isinstance(want, str):
            return f"{STATE_FILE} records no SHA-256 for it (a flash of an older phoneemu?)"
        got = hashlib.sha256(xml).hexdigest()
        if got != want.lower():
            return (f"SHA-256 {got[:16]}... is not the {want[:16]}... {STATE_FILE} records for {name} "
                    "(a crash between writing the two?)")
        return None

    def _credential(self, stem: Literal["mic", "lsc"]) -> Credential | None:
        """The MIC or LSC, checked (module rules): a damaged or unmatched pair is noted and not loaded."""
        der_name, key_name = f"{stem}.der", f"{stem}.key"
        noted = len(self.problems)
        der = self._read(der_name, _MAX_CERT)
        pem = self._read(key_name, _MAX_KEY)
        if der is None and pem is None:
            self._keep_damaged(stem)
            return None
        without = dropped_credential(stem)
        if der is None or pem is None:
            if len(self.problems) == noted:  # one half missing (not already noted as unreadable)
                there, gone = (key_name, der_name) if der is None else (der_name, key_name)
                self.problems.append(f"{there}: no {gone} beside it; {without}")
            self._keep_damaged(stem)
            return None
        try:
            problem = certs.der_extent_problem(der)
            if problem is not None:
                raise DecodeError(problem[0], path=der_name, offset=problem[1])
            Credential.check_pair(certs.load_cert_der(der, path=der_name), pem, cert_name=der_name,
                                  key_name=key_name)
        except DecodeError as exc:
            self.problems.append(f"{exc}; {without}")
            self._keep_damaged(stem)
            return None
        return Credential(cert_der=der, key_pem=pem)

    def _keep_damaged(self, stem: Literal["mic", "lsc"]) -> None:
        """Note the files of a MIC or LSC not loaded as ones a save leaves (module rules): every one there,
        but an LSC key alone, the outcome of an interrupted removal, which the next save finishes."""
        der, key = self._file(f"{stem}.der"), self._file(f"{stem}.key")
        if stem == "lsc" and not os.path.lexists(der):
            return
        self._kept.update(p.name for p in (der, key) if os.path.lexists(p))

    def _trust_list(self, kind: Literal["CTL", "ITL"], intern: InternCache) -> TrustList | None:
        name = CTL_FILE if kind == "CTL" else ITL_FILE
        limit = self.profile.trust_list_limit
        raw = self._read(name, limit)
        if raw is None:
            return None
        try:
            return intern.trust_list(raw, kind=kind, limit=limit)
        except DecodeError as exc:
            self.problems.append(f"{name}: {exc}; not loaded")
            return None

    def save(self, store: TrustStore, *, identity: bytes | None = None) -> None:
        """Write ``store`` (each file atomically; unchanged files are not rewritten) and, given, the
        phone's ``identity`` as ``phone.json`` — after ``state.json``, in the same locked save (module
        rules)."""
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)
        self._loaded = None  # what a load read is no longer what the flash holds
        with self._locked():
            self._save(store)
            if identity is not None:
                self._write(_PHONE_FILE, identity)

    def _save(self, store: TrustStore) -> None:
        """:meth:`save`'s writing, the flash locked."""
        self._write(CTL_FILE, store.ctl.raw if store.ctl is not None else None)
        self._write(ITL_FILE, store.itl.raw if store.itl is not None else None)
        self._write(CONFIG_FILE, store.config.xml if store.config is not None else None)
        self._write_pair("mic", store.mic)
        self._write_pair("lsc", store.lsc)
        self._write("symmetric.key", store.symmetric_key)
        self._write(STATE_FILE, _state_bytes(store))

    def save_last_boot(self, summary: dict[str, Any]) -> None:
        """Write what the last boot ended with (``last-boot.json``, module rules)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with self._locked():
            self._write(LAST_BOOT_FILE, json_doc.dumps(summary, sort_keys=True, indent=1).encode())

    def last_boot(self) -> dict[str, Any] | None:
        """The last boot's summary, or None (never booted, erased, or unreadable: noted in problems)."""
        with self._locked(shared=True):
            return self._json_object(LAST_BOOT_FILE)

    # ------------------------------------------------------------------ admin
    def erase_trust_lists(self) -> str:
        """Delete CTL and ITL from flash (and the last boot's report: its lock no longer holds); returns
        "Erasing CTL and ITL files" (spec §G.6)."""
        self._loaded = None
        if self.path.is_dir():
            with self._locked():
                self._write(CTL_FILE, None)
                self._write(ITL_FILE, None)
                self._write(LAST_BOOT_FILE, None)
        return status.ERASING_CTL_ITL

    def factory_reset(self) -> str:
        """Remove everything but the MIC (certificate and key)."""
        self._loaded = None
        if self.path.is_dir():
            with self._locked():
                for name in ("lsc.key", "lsc.der"):  # the staged key first: no rollback state is a commit
                    self._staged(name).unlink(missing_ok=True)
                self._kept -= {"lsc.der", "lsc.key"}  # asked for: a damaged LSC goes too
                for name in _ALL:
                    if not name.startswith("mic."):
                        self._write(name, None)
                self._clean_temps()
        return status.ERASING_CTL_ITL

    def files(self) -> tuple[str, ...]:
        """Names present in the flash directory (for tests and the UI)."""
        if not self.path.is_dir():
            return ()
        return tuple(sorted(p.name for p in self.path.iterdir()))
