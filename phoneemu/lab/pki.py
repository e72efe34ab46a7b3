"""The lab cluster's PKI: the identities a CUCM-like cluster holds (spec §B.5, §G.5, §G.8, §F.9).

Identities (name → what it does):

* ``callmanager`` (node 1, the TFTP node; ``callmanager-N`` for node N): signs configs and other
  TFTP files; role CCM+TFTP in the CTL, CCM+TFTP and SAST in the ITL (spec §B.5, §G.5).
* ``itlrecovery``: the SAST signer of the ITL and of the tokenless CTL; validity 20 years on a
  fresh cluster and when regenerated, 5 for the one an "upgraded" cluster carried over (seed; spec §G.8
  disagreement → configurable).
* ``tvs`` (``tvs-N``): one TLS identity per node for TVS (role 21).
* ``capf``: TLS identity of CAPF and issuer of LSCs (CUCM's CAPF signs LSCs, spec §F.9).
* ``mfgca``: a lab "Manufacturing CA" issuing MICs to emulated phones (:meth:`LabPki.issue_mic`).
* ``imagesigning``: signs firmware loads (spec §D, our convention in ``formats.firmware``).

Storage: ``DIR/private/<name>.key`` (PKCS#8 PEM, mode 0600) and ``DIR/certs/<name>.pem``.
An identity a lab operation makes or replaces (``create(..., staged=True)``, ``store(..., staged=True)``)
is in force in memory at once but reaches the disk with the operation's state save (our convention, as
the lab's served files; ``cluster._ServedChange``): :meth:`LabPki.write_staged` writes it to
``DIR/private/.pending/`` before the save, :func:`put_staged_identities` puts it in place after it. So a
kill at any point leaves the old pair with the old state or the new pair with the new (was: the new pair
written in place before the save, so a kill between left it under the old state: the next operation
signed with a key the lab's change log never recorded). A phone's MIC an operation issues or imports
(:meth:`LabPki.stage_mic`; kept as ``DIR/phones/<MAC>/mic.key`` + ``mic.pem``, a lab convenience) goes the
same way, staged in ``DIR/private/.pending/phones/`` (ours; was: written in place before the save: a kill
between the two files left a new key beside the old certificate, one after them a MIC the state did not
record). :func:`read_mic` reads a phone's pair, the key checked to be the certificate's.

Seeded mode (labs and tests only, never production): keys come from
``generate_key(spec, unsafe_seed=f"{seed}:{name}:{generation}")``, serials from a hash of the same
string, and generation-0 certificates start at the lab epoch (2026-01-01 UTC), so two clusters
made with the same seed hold identical files. Our convention: the manufacturing CA and MICs are
seeded independently of the cluster seed (``phoneemu-mfg`` and the key spec), because every cluster
trusts the same manufacturer — a phone moved between two seeded lab clusters with the same key spec
keeps a MIC both recognise.
Seeded RSA keys are generated in pure Python (slow for 2048 bits), so in seeded mode the MIC *keys*
come from a pool of ``MIC_KEY_POOL`` seeded keys chosen by the MAC (two phones may share a key pair;
each still has its own MIC certificate, subject and serial). So in a seeded lab a config PKI-encrypted to
one phone's MIC (spec §C.3, §C.4) may be decrypted by another phone holding the same key pair: a test
that one phone cannot read another's encrypted config passes falsely there; run it on an unseeded lab
(README, ``lab init --seed``). Unseeded clusters give every phone its
own fresh key; :meth:`LabPki.prepare_mic_keys` makes a batch of them on all cores first (OpenSSL
releases the GIL), which is how scenario phone groups of hundreds start in seconds.
Unseeded keys (identities and MICs) come from :mod:`phoneemu.crypto.key_supply`: fresh OpenSSL keys,
each handed out once, made ahead of need on an idle core (or inline when none is ready).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from phoneemu.crypto import certs, key_supply, keys
from phoneemu.crypto.keys import KeySpec, PrivateKey, PublicKey
from phoneemu.errors import DecodeError, EncodeError, VerificationError, VerifyReason
from phoneemu.files import PEM_LIMIT, atomic_write, read_at_most, sync_folder
from phoneemu.formats.header import FileSigner
from phoneemu.values import is_ascii_digits

__all__ = [
    "CORE_IDENTITIES",
    "LAB_EPOCH",
    "MFG_SEED",
    "MIC_KEY_POOL",
    "Identity",
    "LabPki",
    "add_years",
    "cert_pem",
    "node_identity",
    "pending_identities",
    "pending_mics",
    "put_staged_identities",
    "read_mic",
]

#: Start of validity of generation-0 certificates in seeded mode.
LAB_EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
#: Seed of the manufacturer (shared by every seeded lab cluster, see module docstring).
MFG_SEED = "phoneemu-mfg"
#: Seeded mode only: MIC keys come from a pool of this many seeded keys (see module docstring).
MIC_KEY_POOL = 16
CORE_IDENTITIES = ("callmanager", "itlrecovery", "tvs", "capf", "mfgca", "imagesigning")

_VALIDITY_YEARS = {"callmanager": 5, "tvs": 5, "capf": 5, "mfgca": 30, "imagesigning": 20, "extra": 5}
_MIC_YEARS = 10  # spec §H.2
_MIC_KEY, _MIC_CERT, _STAGED_MIC = "mic.key", "mic.pem", ".mic.pem.staged"  # in DIR/phones/<MAC>/
_KEYS_PER_BATCH = 4  # MIC keys a core makes between two looks at prepare_mic_keys' stop()
_BACKDATE = dt.timedelta(days=1)


def add_years(when: dt.datetime, years: int) -> dt.datetime:
    """``when`` plus whole calendar years (29 February becomes 28 February)."""
    try:
        return when.replace(year=when.year + years)
    except ValueError:
        return when.replace(year=when.year + years, day=28)


def node_identity(base: str, node: int) -> str:
    """``callmanager`` for node 1, ``callmanager-2`` for node 2 ..."""
    return base if node == 1 else f"{base}-{node}"


def _base(name: str) -> str:
    return name.split("-", 1)[0]


def _key_path(root: Path, name: str) -> Path:
    return root / "private" / f"{name}.key"


def _cert_path(root: Path, name: str) -> Path:
    return root / "certs" / f"{name}.pem"


def _staged_cert_path(root: Path, name: str) -> Path:
    return root / "certs" / f".{name}.pem.staged"


def pending_identities(root: Path) -> Path:
    """``DIR/private/.pending/``: the identities of a lab operation whose state is not saved yet, each as
    ``<name>.key`` (0600) and ``<name>.pem`` (:meth:`LabPki.write_staged`)."""
    return Path(root) / "private" / ".pending"


def pending_mics(root: Path) -> Path:
    """``DIR/private/.pending/phones/``: the MICs of a lab operation whose state is not saved yet, each as
    ``<MAC>.key`` (0600) and ``<MAC>.pem`` (:meth:`LabPki.write_staged`); removed with its parent."""
    return pending_identities(root) / "phones"


def _staged_stems(folder: Path) -> list[str]:
    """The names staged in ``folder`` (``<name>.key`` / ``<name>.pem``); none when there is no folder."""
    try:
        with os.scandir(folder) as listing:
            return sorted({Path(e.name).stem for e in listing
                           if not e.name.startswith(".") and e.name.endswith((".key", ".pem"))})
    except FileNotFoundError:
        return []


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file (hard links: a rename of one onto the other does nothing)."""
    try:
        return os.path.samefile(a, b)
    except FileNotFoundError:
        return False


def _put_pair(folder: Path, stem: str, key_path: Path, cert_path: Path, staged_cert: Path) -> None:
    """Put the pair ``folder/<stem>.key`` + ``.pem`` in place: the certificate linked to ``staged_cert``, the
    key renamed onto ``key_path``, the staged certificate renamed onto ``cert_path``. A reader between two
    steps finds the old pair, or the new key beside its staged certificate (:func:`_take_staged_cert`). The
    staged ``.pem`` stays until the caller removes ``folder``, so a run again after a kill finds the pair
    and finishes it (was renamed: a kill after the key left the new key, its certificate only staged)."""
    staged_pem = folder / f"{stem}.pem"
    if staged_pem.exists() and not _same_file(staged_pem, cert_path):  # same: in place, by a run before
        staged_cert.unlink(missing_ok=True)
        try:
            os.link(staged_pem, staged_cert)
        except OSError:  # a file system without hard links: a copy
            atomic_write(staged_cert, staged_pem.read_bytes())
    with contextlib.suppress(FileNotFoundError):  # put in place by a run before a kill
        os.replace(folder / f"{stem}.key", key_path)
    with contextlib.suppress(FileNotFoundError):  # or another process's reader put it in place
        os.replace(staged_cert, cert_path)


def put_staged_identities(root: Path, *, durable: bool = True) -> None:
    """Put the identities staged in :func:`pending_identities` in place (their state is saved), then the
    phones' MICs staged in :func:`pending_mics` (each phone's folder made if new), each pair by
    :func:`_put_pair`: the order of :meth:`LabPki.store`, so a reader between two renames gets the old pair
    or the new (:meth:`LabPki.get`, :func:`read_mic`). Idempotent: run again after a kill, it finishes what
    is left. ``durable``: the folders are fsynced after. The folder itself is left to the caller to remove."""
    root = Path(root)
    folder = pending_identities(root)
    names = _staged_stems(folder)
    for name in names:
        _put_pair(folder, name, _key_path(root, name), _cert_path(root, name), _staged_cert_path(root, name))
    if durable and names:
        sync_folder(root / "private")
        sync_folder(root / "certs")
    mics = pending_mics(root)
    macs = _staged_stems(mics)
    for mac in macs:
        phone = root / "phones" / mac
        phone.mkdir(parents=True, exist_ok=True)
        _put_pair(mics, mac, phone / _MIC_KEY, phone / _MIC_CERT, phone / _STAGED_MIC)
        if durable:
            sync_folder(phone)
    if durable and macs:
        sync_folder(root / "phones")


def _take_staged_cert(staged: Path, cert_path: Path, key: PrivateKey) -> x509.Certificate | None:
    """The certificate staged at ``staged`` for ``key`` (a put or store killed, or read, between the key and
    the certificate): put in place at ``cert_path`` and returned; None when there is none for ``key``. A lab
    this process cannot write (a read-only copy, another user's) is read all the same: the certificate is
    returned, left staged (was: the OSError, the lab unreadable)."""
    try:
        found = certs.load_certs_pem(read_at_most(staged, PEM_LIMIT, what="certificate file"),
                                     source=str(staged))
    except (OSError, DecodeError):
        return None
    mine = keys.public_key_spki_der(key.public_key())
    if not found or keys.public_key_spki_der(certs.cert_public_key(found[0])) != mine:
        return None
    with contextlib.suppress(OSError):  # another process put it in place first, or a read-only lab
        os.replace(staged, cert_path)
    return found[0]


def read_mic(folder: Path, *, paired: bool = True) -> tuple[x509.Certificate, PrivateKey]:
    """The MIC in phone folder ``folder`` (``mic.pem``, ``mic.key``), the key checked to be the
    certificate's; a new key beside its staged certificate (:func:`_put_pair` under way or killed): that
    certificate. FileNotFoundError when a file is missing; a DecodeError naming the key when it is another
    certificate's (was: taken as it was: ``boot --lab`` booted a phone holding a key its MIC does not
    certify, to fail later at CAPF or at an encrypted config). ``paired=False`` (only the certificate is
    wanted: the lab's served files): such a pair is returned as it is."""
    kpath, cpath = folder / _MIC_KEY, folder / _MIC_CERT
    key = keys.load_private_key_pem(read_at_most(kpath, PEM_LIMIT, what="key file"), source=str(kpath))
    found = certs.load_certs_pem(read_at_most(cpath, PEM_LIMIT, what="certificate file"), source=str(cpath))
    if not found:
        raise DecodeError("no certificate", path=str(cpath))
    spki = keys.public_key_spki_der
    if spki(certs.cert_public_key(found[0])) == spki(key.public_key()):
        return found[0], key
    staged = _take_staged_cert(folder / _STAGED_MIC, cpath, key)
    if staged is not None:
        return staged, key
    if not paired:
        return found[0], key
    raise DecodeError(f"not the private key of the MIC {cpath.name} beside it (a file replaced?)",
                      path=str(kpath))


@dataclass(frozen=True, kw_only=True)
class Identity:
    """A named key pair with its certificate."""

    name: str
    key: PrivateKey
    cert: x509.Certificate

    @property
    def signer(self) -> FileSigner:
        """The identity as a file signer (RSA keys only; EC raises EncodeError)."""
        return FileSigner(key=self.key, cert=self.cert)

    @property
    def der(self) -> bytes:
        return certs.cert_der(self.cert)


def _as_datetime(now: dt.datetime | int | float) -> dt.datetime:
    if isinstance(now, dt.datetime):
        return now if now.tzinfo is not None else now.replace(tzinfo=dt.UTC)
    return dt.datetime.fromtimestamp(int(now), dt.UTC)


def _serial(label: str | None) -> int:
    """A positive 16-byte serial (CUCM self-signed certificates carry 16 bytes, spec §B.2)."""
    raw = bytearray(hashlib.sha256(label.encode()).digest()[:16] if label is not None else os.urandom(16))
    raw[0] = (raw[0] & 0x7F) | 0x40
    return int.from_bytes(raw, "big")


def cert_pem(cert: x509.Certificate) -> bytes:
    """PEM text of ``cert`` (written by hand: only ``phoneemu.crypto`` may import hazmat)."""
    b64 = base64.b64encode(certs.cert_der(cert)).decode("ascii")
    lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
    return ("-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n").encode()


def _holds(path: Path, data: bytes) -> bool:
    """Whether the file at ``path`` holds ``data`` (False when it cannot be read)."""
    try:
        return read_at_most(path, len(data) + 1, what="certificate file") == data
    except (OSError, DecodeError):
        return False


def _write_atomic(path: Path, data: bytes, mode: int = 0o644, *, durable: bool = True) -> None:
    atomic_write(path, data, mode=mode, durable=durable, make_parents=True)


def _write_new(path: Path, data: bytes, mode: int, *, durable: bool) -> None:
    """``data`` as a new file ``path`` (one there before removed), ``mode`` from its first byte, fsynced
    when ``durable`` (its folder not: the caller syncs it once)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with open(fd, "wb", closefd=True) as f:
        f.write(data)
        if durable:
            f.flush()
            os.fsync(f.fileno())


class LabPki:
    """The identities of one lab cluster, kept on disk under ``root``.

    ``seed`` None = random keys and serials. ``key_spec`` is the default for cluster identities
    (file signers must be RSA). ``subjects`` maps an identity name to its subject DN. ``durable``
    (default): keys and certificates are fsynced (file and folder) so that they survive a crash —
    an unseeded key lost is an identity lost; False for throw-away labs (a scenario's temporary
    folder): still written atomically, without the fsyncs.
    """

    def __init__(self, root: Path, *, seed: int | None, key_spec: KeySpec, cluster_name: str,
                 durable: bool = True) -> None:
        self.root = Path(root)
        self.durable = durable
        self.seed = seed
        self.key_spec = key_spec
        self.cluster_name = cluster_name
        self._cache: dict[str, Identity] = {}
        self._staged: dict[str, Identity] = {}  # in force in memory, on disk once the state is saved
        self._staged_mics: dict[str, tuple[x509.Certificate, PrivateKey]] = {}  # by MAC, the same way
        self._spare_mic_keys: dict[str, list[PrivateKey]] = {}

    # --- names and paths -----------------------------------------------------------------------
    def key_path(self, name: str) -> Path:
        return _key_path(self.root, name)

    def cert_path(self, name: str) -> Path:
        return _cert_path(self.root, name)

    def subject_for(self, name: str, generation: int = 0) -> str:
        """CUCM-like subject DNs; the cluster name keeps clusters apart (spec §A.7 ``;`` style)."""
        org = f"O=phoneemu lab {self.cluster_name};L=Lab;ST=Lab;C=US"
        base = _base(name)
        suffix = name.split("-", 1)[1] if "-" in name else ""
        numbered = base in ("callmanager", "tvs") and is_ascii_digits(suffix) and len(suffix) < 6
        node = suffix if numbered else "1"
        host = f"{self.cluster_name}-pub" if node == "1" else f"{self.cluster_name}-sub{int(node) - 1}"
        if base == "callmanager":
            cn = host
        elif base == "itlrecovery":
            cn = f"ITLRECOVERY_{host}"
        elif base == "tvs":
            cn = f"{host}-TVS"
        elif base == "capf":
            digest = hashlib.sha256(f"{self.cluster_name}:{self.seed}:{generation}".encode()).hexdigest()
            cn = f"CAPF-{digest[:8]}"
        elif base == "mfgca":
            return "CN=phoneemu Lab Manufacturing CA;O=phoneemu lab manufacturer;C=US"
        elif base == "imagesigning":
            return "CN=phoneemu Lab Image Signing;O=phoneemu lab manufacturer;C=US"
        else:
            cn = f"{host}-{name}"
        return f"CN={cn};OU=phoneemu;{org}"

    def _seed_label(self, name: str, generation: int) -> str | None:
        if self.seed is None:
            return None
        if name in ("mfgca", "imagesigning"):
            return f"{MFG_SEED}:{name}:{generation}"
        return f"{self.seed}:{name}:{generation}"

    def _not_before(self, now: dt.datetime, generation: int) -> dt.datetime:
        if self.seed is not None and generation == 0:
            return min(LAB_EPOCH, now.replace(hour=0, minute=0, second=0, microsecond=0))
        return now.replace(microsecond=0) - _BACKDATE

    # --- creation -------------------------------------------------------------------------------
    def create(self, name: str, *, now: dt.datetime | int | float, generation: int = 0,
               years: int | None = None, spec: KeySpec | None = None,
               subject: str | None = None, shared_key_of: str | None = None,
               staged: bool = False) -> Identity:
        """Make (or remake, with a new ``generation``) identity ``name`` and write it to disk (``staged``:
        with the next state save, as :meth:`store`).

        ``shared_key_of`` reuses another identity's key (used for the bulk "extra" ITL certificates).
        """
        when = _as_datetime(now)
        label = self._seed_label(name, generation)
        if shared_key_of is not None:
            key = self.get(shared_key_of).key
        else:
            key_spec = spec or self.key_spec
            if label is not None and name in ("mfgca", "imagesigning"):
                label = f"{label}:{key_spec}"
            key = (keys.generate_key(key_spec, unsafe_seed=label) if label is not None
                   else key_supply.take(key_spec))
        validity = years if years is not None else _VALIDITY_YEARS.get(_base(name), 5)
        not_before = self._not_before(when, generation)
        ca = name == "mfgca" or _base(name) == "capf"
        req = certs.CertRequest(
            subject=subject or self.subject_for(name, generation), public_key=key.public_key(),
            serial=_serial(label), not_before=not_before, not_after=add_years(not_before, validity),
            ca=ca,
            key_usage=("digital_signature", "key_encipherment") if not ca else ("digital_signature",),
            extended_key_usage=(("code_signing",) if name == "imagesigning"
                                else ("server_auth", "client_auth")),
        )
        cert = certs.issue_certificate(req, issuer_key=key)
        ident = Identity(name=name, key=key, cert=cert)
        self.store(ident, staged=staged)
        return ident

    def staged_cert_path(self, name: str) -> Path:
        """Where :meth:`store` puts the new certificate until the new key is in place."""
        return _staged_cert_path(self.root, name)

    def store(self, ident: Identity, *, staged: bool = False) -> None:
        """Write key (0600) and certificate, replacing any previous ones. ``staged`` (a lab operation's):
        only in memory until :meth:`write_staged` (see the module docstring). Else the certificate staged
        first (:meth:`staged_cert_path`), then the key, then the certificate renamed into place, so that a
        kill at any point leaves the old pair, or the new key with its staged certificate, which
        :meth:`get` puts in place (was: key, then certificate: killed between the two, a key without its
        certificate, the identity lost)."""
        if staged:
            self._staged[ident.name] = ident
            self._cache[ident.name] = ident
            return
        pending = self.staged_cert_path(ident.name)
        pem = cert_pem(ident.cert)
        _write_atomic(pending, pem, durable=self.durable)
        keys.write_private_key(self.key_path(ident.name), ident.key, durable=self.durable)
        cpath = self.cert_path(ident.name)
        try:
            os.replace(pending, cpath)
        except OSError as exc:
            # gone: another process's get read the new key and put this certificate in place itself
            # (:meth:`_staged_cert`; was: "cannot write", the operation failed with its new key written)
            if not (isinstance(exc, FileNotFoundError) and _holds(cpath, pem)):
                raise OSError(exc.errno, f"cannot write: {exc.strerror}", str(cpath)) from None
        self._cache[ident.name] = ident

    def staged_names(self) -> list[str]:
        """The identities :meth:`store` holds for the next state save."""
        return sorted(self._staged)

    def stage_mic(self, mac: str, cert: x509.Certificate, key: PrivateKey) -> None:
        """Phone ``mac``'s new MIC: in force in memory (:meth:`staged_mic`) until the next state save, which
        writes it (:meth:`write_staged`, :func:`put_staged_identities`; see the module docstring)."""
        self._staged_mics[mac] = (cert, key)

    def staged_mic(self, mac: str) -> tuple[x509.Certificate, PrivateKey] | None:
        """The MIC :meth:`stage_mic` holds for ``mac`` (None: the one on disk stands)."""
        return self._staged_mics.get(mac)

    def has_staged(self) -> bool:
        """Whether identities or MICs wait for the next state save."""
        return bool(self._staged or self._staged_mics)

    def write_staged(self) -> None:
        """Write the identities held for the state save into :func:`pending_identities` and the MICs into
        :func:`pending_mics` (keys 0600, ``durable``: fsynced), before the save;
        :func:`put_staged_identities` puts them in place after it. The MICs (a ``lab phone add --count``
        stages thousands) are written as new files, each fsynced, their folder once: the folder is
        discarded whole unless the change's note, written after, names it."""
        if not self.has_staged():
            return
        folder = pending_identities(self.root)
        folder.mkdir(mode=0o700, exist_ok=True)
        for name, ident in sorted(self._staged.items()):
            keys.write_private_key(folder / f"{name}.key", ident.key, durable=self.durable)
            _write_atomic(folder / f"{name}.pem", cert_pem(ident.cert), durable=self.durable)
        if self._staged_mics:
            mics = pending_mics(self.root)
            mics.mkdir(mode=0o700, exist_ok=True)
            for mac, (cert, key) in self._staged_mics.items():
                _write_new(mics / f"{mac}.key", keys.private_key_pem(key), 0o600, durable=self.durable)
                _write_new(mics / f"{mac}.pem", cert_pem(cert), 0o644, durable=self.durable)
            if self.durable:
                sync_folder(mics)
                sync_folder(folder)
        if self.durable:
            sync_folder(folder.parent)

    def staged_saved(self) -> None:
        """The state naming the staged identities is saved: they are this lab's (put in place by then)."""
        self._staged.clear()
        self._staged_mics.clear()

    def drop_staged(self) -> None:
        """The save of the staged identities failed: forgotten, the ones on disk in force again."""
        for name in self._staged:
            self._cache.pop(name, None)
        self._staged.clear()
        self._staged_mics.clear()

    def _staged_cert(self, name: str, key: PrivateKey) -> x509.Certificate | None:
        """The certificate :meth:`store` staged for ``key`` and did not put in place (killed between the
        key and the certificate; :func:`_take_staged_cert`)."""
        return _take_staged_cert(self.staged_cert_path(name), self.cert_path(name), key)

    def get(self, name: str) -> Identity:
        """Load identity ``name`` from disk (cached)."""
        hit = self._cache.get(name)
        if hit is not None:
            return hit
        try:
            kpath, cpath = self.key_path(name), self.cert_path(name)
            key = keys.load_private_key_pem(read_at_most(kpath, PEM_LIMIT, what="key file"),
                                            source=str(kpath))
            cert_list = certs.load_certs_pem(read_at_most(cpath, PEM_LIMIT, what="certificate file"),
                                             source=str(cpath))
        except FileNotFoundError:
            raise DecodeError(f"identity {name!r} is missing (expected {self.key_path(name)} and "
                              f"{self.cert_path(name)})", path="pki") from None
        if not cert_list:
            raise DecodeError(f"no certificate in {self.cert_path(name)}", path="pki")
        cert = cert_list[0]
        mine = keys.public_key_spki_der(key.public_key())
        if keys.public_key_spki_der(certs.cert_public_key(cert)) != mine:
            # a store killed between its key and its certificate: the staged one; else the pair is refused
            # (was: taken; a CAPF or manufacturing CA key of another pair signed LSCs and MICs no phone
            # could verify, in silence; a CallManager key: "header: signer: ...", no file named)
            staged = self._staged_cert(name, key)
            if staged is None:
                raise DecodeError(f"identity {name!r}: the private key {kpath} does not belong to the "
                                  f"certificate {cpath} (a file replaced?)", path="pki")
            cert = staged
        ident = Identity(name=name, key=key, cert=cert)
        self._cache[name] = ident
        return ident

    def forget(self, name: str) -> None:
        self._cache.pop(name, None)
        self._staged.pop(name, None)

    # --- MIC and LSC ----------------------------------------------------------------------------
    def issue_mic(self, mac: str, key: PrivateKey | None = None, *, model: str = "8861",
                  now: dt.datetime | int | float,
                  spec: KeySpec | None = None) -> tuple[x509.Certificate, PrivateKey]:
        """A manufacturer certificate for phone ``mac`` (10 years, spec §H.2); key made if not given."""
        when = _as_datetime(now)
        key_spec = spec or self.key_spec
        label = f"{MFG_SEED}:mic:{mac}:{model}:{key_spec}" if self.seed is not None else None
        if key is None and self.seed is None and self._spare_mic_keys.get(str(key_spec)):
            key = self._spare_mic_keys[str(key_spec)].pop()
        if key is None:
            pool = int(hashlib.sha256(mac.encode()).hexdigest(), 16) % MIC_KEY_POOL
            key = (keys.generate_key(key_spec, unsafe_seed=f"{MFG_SEED}:mic-key:{key_spec}:{pool}")
                   if self.seed is not None else key_supply.take(key_spec))
        ca = self.get("mfgca")
        not_before = (min(LAB_EPOCH, when.replace(hour=0, minute=0, second=0, microsecond=0))
                      if self.seed is not None else when.replace(microsecond=0) - _BACKDATE)
        req = certs.CertRequest(
            subject=f"CN=CP-{model}-SEP{mac};OU=phoneemu phones;O=phoneemu lab manufacturer;C=US",
            public_key=key.public_key(), serial=_serial(label), not_before=not_before,
            not_after=add_years(not_before, _MIC_YEARS),
            key_usage=("digital_signature", "key_encipherment"),
            extended_key_usage=("client_auth",),
        )
        return certs.issue_certificate(req, issuer_key=ca.key, issuer=ca.cert), key

    def prepare_mic_keys(self, count: int, spec: KeySpec | None = None, *,
                         stop: Callable[[], bool] | None = None) -> None:
        """Make ``count`` fresh MIC keys on all cores for the next :meth:`issue_mic` calls (unseeded
        labs only; each key is used once, so every phone still has its own key pair). ``stop()`` is asked
        between batches of a few keys a core (RSA-2048 keys for 100,000 phones take hours): once true,
        the keys made so far are kept and no more are made."""
        key_spec = spec or self.key_spec
        spare = self._spare_mic_keys.setdefault(str(key_spec), [])
        missing = count - len(spare)
        if self.seed is not None or missing <= 0:
            return
        if missing == 1:
            spare.append(key_supply.take(key_spec))
            return
        workers = min(missing, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            while missing > 0 and not (stop is not None and stop()):
                batch = min(missing, workers * _KEYS_PER_BATCH)
                spare.extend(pool.map(lambda _: key_supply.take(key_spec), range(batch)))
                missing -= batch

    def issue_lsc(self, device_name: str, public_key: PublicKey | bytes, *,
                  now: dt.datetime | int | float, days: int = 365) -> x509.Certificate:
        """An LSC signed by CAPF (spec §F.9): CN = device name (+ O/OU/L/ST/C of the issuer), SAN URI =
        device name, CA:FALSE, digitalSignature+keyEncipherment, EKU server/client/IPsec end system,
        SHA-256, 128-bit serial, ``days`` validity (1..1825, CUCM's range)."""
        if not 1 <= days <= 1825:
            raise EncodeError(f"LSC validity {days} days outside 1..1825", path="lsc.days")
        if not device_name or not device_name.isascii() or not device_name.isalnum():
            raise EncodeError(f"device name {device_name!r} is not alphanumeric", path="lsc.device_name")
        pub = keys.load_public_key_spki_der(public_key) if isinstance(public_key, bytes) else public_key
        issuer = self.get("capf")
        when = _as_datetime(now).replace(microsecond=0)
        rest = [rdn.rfc4514_string() for rdn in reversed(issuer.cert.subject.rdns)
                if not rdn.rfc4514_string().startswith("CN=")]
        label = None
        if self.seed is not None:
            spki = keys.public_key_spki_der(pub)
            label = (f"{self.seed}:lsc:{device_name}:{hashlib.sha256(spki).hexdigest()}:"
                     f"{int(when.timestamp())}")
        req = certs.CertRequest(
            subject=";".join([f"CN={device_name}", *rest]), public_key=pub, serial=_serial(label),
            not_before=when - dt.timedelta(minutes=5), not_after=when + dt.timedelta(days=days),
            key_usage=("digital_signature", "key_encipherment"),
            extended_key_usage=("server_auth", "client_auth", "ipsec_end_system"),
            san_uri=(device_name,),
        )
        return certs.issue_certificate(req, issuer_key=issuer.key, issuer=issuer.cert)

    def verify_issued(self, cert: x509.Certificate, issuer_name: str, *, what: str) -> None:
        """Raise VerificationError unless ``cert`` was signed by identity ``issuer_name`` (MIC CA / CAPF)."""
        issuer = self.get(issuer_name)
        if cert.issuer != issuer.cert.subject:
            raise VerificationError(f"{what} issued by {certs.dn_text(cert.issuer)!r}, not by "
                                    f"{certs.dn_text(issuer.cert.subject)!r}",
                                    reason=VerifyReason.UNKNOWN_SIGNER)
        try:
            cert.verify_directly_issued_by(issuer.cert)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise VerificationError(f"{what} signature does not verify with "
                                    f"{certs.dn_text(issuer.cert.subject)!r}: {exc}",
                                    reason=VerifyReason.BAD_SIGNATURE) from None

    # --- export/import of the recovery key (spec §G.7 ``file get tftp ITLRecovery.p12``) --------
    def export_identity(self, name: str, path: Path) -> None:
        """Certificate and private key in one PEM file, mode 0600 (our stand-in for the .p12)."""
        ident = self.get(name)
        _write_atomic(Path(path), cert_pem(ident.cert) + keys.private_key_pem(ident.key), mode=0o600)

    @staticmethod
    def read_identity_file(path: Path, name: str) -> Identity:
        data = read_at_most(path, PEM_LIMIT, what="key file")
        key = keys.load_private_key_pem(data, source=str(path))
        found = certs.load_certs_pem(data, source=str(path))
        if not found:
            raise DecodeError(f"no certificate in {path}", path="key-file")
        mine = keys.public_key_spki_der(key.public_key())
        for cert in found:
            if keys.public_key_spki_der(certs.cert_public_key(cert)) == mine:
                return Identity(name=name, key=key, cert=cert)
        raise DecodeError(f"{path}: the private key does not match its certificate", path="key-file")

    def all_cached(self) -> Mapping[str, Identity]:
        return dict(self._cache)
