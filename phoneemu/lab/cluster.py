"""The lab cluster: a CUCM stand-in that builds, signs and serves the files phones download.

Served files (rebuilt from the state after every change, spec §B.5, §B.7, §C, §G, §H.5, §H.6):

* ``ITLFile.tlv``: ITLRecovery (SAST), the TFTP node's CallManager cert (CCM+TFTP and SAST), every
  TVS cert (TVS), the CAPF cert (CAPF), plus the bulk "extra" certificates (TVS role, see
  :meth:`LabCluster.add_certs`). Signed by ITLRecovery; by the CallManager key between
  ``itl reset`` and :meth:`LabCluster.restart_tftp` (spec §G.7).
* Rollback ("Prepare Cluster for Rollback to pre-8.0", spec §B.7 [UNK] → our convention shared with
  ``formats.trustlist.rollback_records``): TVS and CCM/TFTP/CCM+TFTP records reduced to
  RECORD_LENGTH + DNS_NAME + ROLE + IP_ADDRESS, SAST and CAPF intact, signed by the usual signer.
* ``CTLFile.tlv`` once mixed mode was turned on: SAST ITLRecovery + SAST CallManager, CCM+TFTP per
  node, CAPF; signed by ITLRecovery, by CallManager after ``ctl reset localkey`` until ``ctl update``.
  Mixed mode off (non-secure): the CTL stays with its CCM+TFTP records emptied (spec §B.5).
* ``ITLSEP<MAC>.tlv`` / ``CTLSEP<MAC>.tlv``: the same bytes (internal filename ``ITLFile.tlv`` /
  ``CTLFile.tlv``). :meth:`LabCluster.files` lists them for known phones; :meth:`LabCluster.get`
  answers them for any MAC (spec §H.6).
* ``SEP<MAC>.cnf.xml`` and ``.cnf.xml.sgn`` (TVS and CAPF servers and the CallManager group's
  registrar — ``devicePool`` — with the cluster host and the ports in the state). Encryption PKI:
  ``.cnf.xml.enc.sgn`` wrapped to the phone's LSC if it has one, else its MIC, and the stub
  (``fullConfig=false``, ``certHash`` = MD5 of that certificate) as
  ``.cnf.xml.sgn`` and ``.cnf.xml`` (spec §C.3, §C.4). Symmetric: ``.cnf.xml.enc.sgn`` only.
* ``XmlDefault.cnf.xml`` (unsigned, for phones without Security By Default) and, with SBD on,
  ``XmlDefault.cnf.xml.sgn`` (spec §G.10); absent when autoregistration is off.
* ``<load>.loads`` firmware for every load named by ``loadInformation`` (signed by the image-signing
  identity, SHA-512), and the static ``g3-tones.xml`` / ``AppDialRules.xml`` with ``.sgn`` twins.

All files are signed with the state's TFTP signature algorithm (SHA-1 or SHA-512 enterprise
parameter), except firmware (SHA-512). File timestamps are the lab clock.

Lab conveniences (ours): the MIC key of each phone is kept in ``DIR/phones/<MAC>/mic.key`` (0600)
with ``mic.pem`` so an emulated phone can be provisioned with it — a real MIC key never leaves the
phone. LSCs issued by CAPF are recorded in ``DIR/phones/<MAC>/lsc.pem``; the state (its SHA-256)
is the commit point, see :meth:`LabCluster.record_lsc`.

Tampering (:meth:`LabCluster.tamper`) flips one byte of a served file until a change rebuilds that file (a
cluster-wide operation; a one-phone change rebuilds only that phone's files, below);
tampering ``ITLFile.tlv`` / ``CTLFile.tlv`` also tampers the per-device copies (same file).

Our conventions where the spec is silent ([UNK]/[INF]):

* Rebuilds: a cluster-wide change re-signs every file (timestamp = lab clock); a change to one
  phone (add, encryption, CAPF, LSC) rebuilds only that phone's files, as CUCM re-signs device files
  when their data changes (spec §C.1). A change's files are staged in ``tftp/.pending/`` and put in place
  once the state is saved (:class:`_ServedChange`): an operation killed at any point leaves, when the lab is
  next opened, the old files with the old state or the new files with the new, never a mix. The identities
  an operation makes (regenerate, add-node, add-certs, an ITLRecovery key restored) and the phones' MICs
  it issues or imports (phone add) go with that change, staged in ``private/.pending/`` (:mod:`.pki`): old
  key pairs with the old state, or new with new (a new phone's folder only with its state). The
  per-phone copies of a trust list are hard links of one file (never written in place).
* TVS vouches for (roles): ITLRecovery (SAST), each CallManager (SAST, CCM+TFTP), each TVS (TVS),
  CAPF (CAPF), the extra certificates (TVS), the HTTPS identity (TFTP), and after a bulk exchange the
  peer's ITLRecovery and CallManager certificates with the roles of the trust stores they were imported
  into (:data:`EXCHANGE_STORES`: both stores, spec §G.6's procedure, SAST + TFTP; CallManager-trust
  alone, TFTP). TTL from the state (86 400 s default, spec §H.2).
* ``itl reset remotekey`` first restores the ITLRecovery identity from the exported key file, then
  behaves like ``localkey`` (ITL signed by CallManager until ``restart_tftp``).
* Regenerations the phones may not have followed (:meth:`LabCluster.untaken_regenerations`, ``lab
  regenerate``'s warning): the lab records no boot, so it counts from the last ``itl-reset`` or
  ``ctl-reset``, or the ``restart-tftp`` / ``ctl-update`` that closes it, in the change log
  (:data:`PHONES_RESET_AT`) that did not leave the phones locked (each records it, :data:`_LISTS_TAKEN`); the
  list signer and every TVS the configs name new since (an ITLRecovery key imported back from an earlier
  export is not) is the lockout ``G.3.4-tvs-server-untrusted`` of a phone that took no ITL between. A CTL
  served, that list is the CTL's: every phone checks the CTL first, holding one or not
  (:class:`UntakenRegenerations`).
* ITLRecovery validity (seed "Certificate Management Changes for ITLRecovery Certificate", spec §G.8):
  an ``upgraded`` cluster starts with the 5-year certificate CUCM carried over the upgrade; a fresh
  install and every regeneration issue ``itlrecovery_years`` (default 20) — "when you regenerate an
  ITLRecovery certificate or when you do a fresh install ... the validity of ITLRecovery gets extended
  to 20 years", upgraded or not. An explicit ``itlrecovery_years`` (5/10/15/20 selectable, §G.8) is
  also the validity of the initial certificate.
* ``add_certs`` extra certificates carry role TVS: CUCM lists every TVS certificate of the cluster
  in the ITL, so they stand for the TVS certificates of a large cluster. They share one key.
* The dial plan (seed "Authorization"; :mod:`.dial_plan`): each phone's line partition and calling
  search space live in the state (:meth:`LabCluster.set_calling_search_space`), in no served file; the
  SIP registrar reads them at each call between phones.
* ``SEP<MAC>.cnf.xml.enc.sgn`` (PKI) is never byte-identical between runs, even seeded: the RSA
  PKCS#1 v1.5 key wrap pads with fresh randomness. Every other file is deterministic when seeded.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import hashlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal, TypeVar
from xml.sax.saxutils import escape as xml_escape

from cryptography import x509

from phoneemu.crypto import certs, keys
from phoneemu.crypto.keys import KeySpec, PrivateKey, PublicKey
from phoneemu.errors import DecodeError, EncodeError, PhoneEmuError, VerificationError, VerifyReason
from phoneemu.files import PEM_LIMIT, atomic_write, read_at_most, remove_dead_temps
from phoneemu.formats import config, encrypted, firmware, signed, trustlist
from phoneemu.formats.header import FileSigner
from phoneemu.formats.trustlist import Role, TrustRecord
from phoneemu.inspection import own_signature_check
from phoneemu.lab.defaults import SECURE_URL_SCHEMES
from phoneemu.lab.dial_plan import DialPlan, css_arg, partition_arg
from phoneemu.lab.lock import hold_lab_lock, try_lab_lock
from phoneemu.lab.pki import (
    Identity,
    LabPki,
    cert_pem,
    node_identity,
    pending_identities,
    put_staged_identities,
    read_mic,
)
from phoneemu.lab.state import (
    CALL_MANAGER_GROUP_SIZE,
    ClusterState,
    LogEntry,
    PhoneState,
    TrustedCert,
    load_state,
    node_registrars,
    save_state,
)
from phoneemu.protocols.capf import names_device
from phoneemu.protocols.sip import SIP_PORT, SIPS_PORT
from phoneemu.protocols.tvs import TvsEntry
from phoneemu.values import check_time, host_port, is_ascii_digits

__all__ = [
    "ADMIN_OPERATIONS",
    "CAPF_AUTH_MODES",
    "CLUSTER_KEYS",
    "EXCHANGE_STORES",
    "PHONES_RESET_AT",
    "CapfPending",
    "LabCluster",
    "UntakenRegenerations",
    "check_host",
    "cluster_key_problem",
]

_TRUST_DEVICE_RE = re.compile(r"(ITL|CTL)SEP([0-9A-F]{12})\.tlv")
_DEVICE_CONFIG_RE = re.compile(r"SEP[0-9A-F]{12}\.cnf\.xml(\.sgn|\.enc\.sgn)?")
_STATIC_FILES = {
    "g3-tones.xml": b'<?xml version="1.0" encoding="UTF-8"?>\n'
                    b'<tones><tone name="dial" freq="350,440"/></tones>\n',
    "AppDialRules.xml": b'<?xml version="1.0" encoding="UTF-8"?>\n<DialRules></DialRules>\n',
}
_FIRMWARE_SIZE = 8192
#: A new LSC before the state that names it is saved (:meth:`LabCluster.record_lsc`).
_STAGED_LSC = ".lsc-staged.pem"
_CAPF_OPERATIONS = ("install", "fetch", "delete")
_ENCRYPT_MODES = ("pki", "symmetric")
_HASHES = {"sha1": 1, "sha-1": 1, "1": 1, "sha512": 3, "sha-512": 3, "3": 3}
_REGENERATABLE = ("callmanager", "tvs", "itlrecovery", "capf")
#: CUCM's plain-HTTP directory (Tomcat, port 8080) as a config's secureDirectoryURL names it
PLAIN_DIRECTORY_URL = "http://{address}/ccmcip/xmldirectory.jsp"
_SECURITY_MODES = {"non-secure": 1, "authenticated": 2, "encrypted": 3, "1": 1, "2": 2, "3": 3}
_SECURITY_MODE_NAMES = {1: "non-secure", 2: "authenticated", 3: "encrypted"}

#: Admin operation names accepted by :meth:`LabCluster.apply` (same names as the CLI and scenarios).
ADMIN_OPERATIONS = (
    "regenerate", "mixed-mode", "itl-reset", "restart-tftp", "restart-tvs", "ctl-reset", "ctl-update",
    "rollback", "add-certs", "remove-certs", "encryption", "signature-algorithm", "exchange", "load", "capf",
    "autoregistration", "tvs-ttl", "sbd", "upgraded", "tamper", "ports", "clock", "add-node", "remove-node",
    "security-mode", "itl-capf", "digest", "calling-search-space", "secure-urls",
)

#: ``exchange`` ``store``: the trust stores a bulk certificate exchange imports the other cluster's
#: certificates into, and the roles TVS then answers for them. Spec §G.6's procedure imports into
#: CallManager-trust and Phone-SAST-trust (``both``, the default); §E.6 gives roles by store only by
#: example (Phone-SAST-trust -> SAST) and is silent on CallManager-trust. **Our convention**: Phone-SAST-trust
#: gives SAST, CallManager-trust gives TFTP (the other role CUCM's TVS returned for a CallManager
#: certificate in a migration, {SAST, TFTP}, §E.6): ``callmanager-trust`` alone leaves a trust list's signer
#: known without SAST — TVS answers, the phone refuses it (``G.3.4-tvs-wrong-role``, §E.7.4).
EXCHANGE_STORES: dict[str, tuple[Role, ...]] = {
    "both": (Role.SAST, Role.TFTP),
    "callmanager-trust": (Role.TFTP,),
}

#: The keys a cluster's identities may have (``lab init --key``, a scenario cluster's ``key:``): its
#: file signers are RSA (spec §G.5) of a size a signed file's header has a modulus code for (§A.5).
CLUSTER_KEYS = ("rsa1024", "rsa2048", "rsa4096")


def cluster_key_problem(spec: KeySpec) -> str | None:
    """Why a cluster cannot have keys of ``spec`` (not one of :data:`CLUSTER_KEYS`), or None."""
    if str(spec) in CLUSTER_KEYS:
        return None
    why = " (the cluster's file signers must be RSA, spec §G.5)" if spec.kind != "rsa" else ""
    return f"expected {', '.join(CLUSTER_KEYS[:-1])} or {CLUSTER_KEYS[-1]}, got {str(spec)!r}{why}"


#: Listening addresses that mean "every interface": never an address a config can name.
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", "[::]", "*"})

Now = dt.datetime | int | float | None
_T = TypeVar("_T")


#: the change log operations :meth:`LabCluster.untaken_regenerations` counts from (ours: the lab records no
#: phone's boot, so it takes the phones to be reset where the seed's procedure resets them): ``itl-reset``,
#: the phones reset before TFTP is restarted (seed Perform Bulk Reset of ITL File, spec §G.7), and the first
#: ``restart-tftp`` after it, which closes it (the phones reset by then). A ``restart-tftp`` with no
#: ``itl-reset`` open changes nothing a phone holds and resets none (was: counted from as well, so
#: ``regenerate tvs``, ``restart-tftp``, ``regenerate itlrecovery`` said nothing and locked the phones out).
#: Each counts only where the phones took the ITL served right after it: one recorded as leaving them
#: locked (:data:`_LISTS_TAKEN`) does not (was: counted, so ``regenerate tvs``, ``regenerate callmanager``,
#: ``itl-reset``, ``regenerate itlrecovery``, ``restart-tftp`` said nothing after the reset's warning and
#: locked the phones out). A CTL served, the CTL reset the same way (seed Reset CTL Localkey): ``ctl-reset``,
#: the phones reset before ``ctl-update``, and the first ``ctl-update`` after it; a phone taking the CTL
#: takes the ITL too, the CTL naming its signer (G.3.2; was: neither counted, so ``regenerate tvs``,
#: ``regenerate itlrecovery``, ``ctl-reset``, ``ctl-update``, ``regenerate callmanager`` warned that the
#: phones reset between lock out and named ``phone erase``: real boots, they booted)
PHONES_RESET_AT = ("itl-reset", "restart-tftp", "ctl-reset", "ctl-update")

#: each list reset of :data:`PHONES_RESET_AT` and the operation that closes it (signs that list with the
#: ITLRecovery key again): counted only with its reset open
_RESET_CLOSED_BY = {"itl-reset": "restart-tftp", "ctl-reset": "ctl-update"}

#: the argument a :data:`PHONES_RESET_AT` entry records, False where the phones reset then took no ITL: a
#: lasting lockout in force with the lists served right after it, counted from the reset point before
#: (:meth:`LabCluster._lists_untaken`). Absent (the phones took it, or a lab older than the record): counted
_LISTS_TAKEN = "lists_taken"

#: what :attr:`UntakenRegenerations.itl_way` / ``ctl_way`` name: the list reset (``lab itl-reset`` /
#: ``ctl-reset``: signed by the CallManager key), the list signed by ITLRecovery again (``restart-tftp`` /
#: ``ctl-update``), or the phone's lists erased (``phone erase``: the next taken on first use, §G.2, §G.6)
WayOutKind = Literal["reset", "recovery-signed", "erase"]


@dataclass(frozen=True, kw_only=True)
class UntakenRegenerations:
    """Trust certificates regenerated since the phones were last taken to hold the lists served
    (:meth:`LabCluster.untaken_regenerations`), together a lockout of every phone that took no ITL between
    (spec §E.1, §G.3.4: ``G.3.4-tvs-server-untrusted``): the signer of the ITL (``itl_signer``) or the CTL
    (``ctl_signer``) served now where it is new (None: the phones hold it), which such a phone trusts only
    through TVS, and every TVS the configs name (``tvs``), whose certificate its ITL lacks. ``new``: every
    certificate new since (``itlrecovery`` only where its certificate is none the phones held then: an
    ``itlrecovery import`` of an earlier export restores it). ``entries``: the change log entries of those
    the lockout and its way out rest on (:attr:`at_stake`), oldest first; ``since``: the entry counted from
    (:data:`PHONES_RESET_AT`), None for the whole log.

    ``ctl_served`` (a CTL served, mixed mode or its non-secure CTL): every phone asks for the CTL first
    (spec §C.6) and checks it before the ITL (§G.3): one holding a CTL against it (G.3.2), one holding none
    against its ITL (G.3.3; not trust on first use, its ITL installed) — the same SAST keys, ITLRecovery and
    CallManager (§B.5), so the phones holding a CTL and those holding none lock out alike, and only where
    the CTL's signer is new; the CTL it takes names both list signers SAST records, so a new ITL signer alone
    locks out no phone (ours, from real boots: tests/unit/test_walk_s35_p11_regenerate_lockout_warning.py;
    was: a warning, every phone booted). The CTL's signer new and the ITL's not (:attr:`lasting` False), a
    phone refuses the CTL at its next boot but takes the ITL, which names the new CTL signer: the boot after
    takes the CTL."""

    itl_signer: str | None
    ctl_signer: str | None
    tvs: tuple[str, ...]
    new: frozenset[str]
    entries: tuple[LogEntry, ...]
    since: LogEntry | None
    ctl_served: bool = False

    @property
    def signers(self) -> tuple[str, ...]:
        """The new signers of the lists served, sorted."""
        return tuple(sorted({s for s in (self.itl_signer, self.ctl_signer) if s is not None}))

    @property
    def at_stake(self) -> frozenset[str]:
        """The certificates whose regeneration completes this lockout or changes its way out: the new
        signers, every TVS named, and the CallManager and ITLRecovery certificates where new (the keys of the
        ways out: a reset list is signed by the CallManager key, ``restart-tftp`` / ``ctl-update`` sign with
        ITLRecovery's)."""
        return frozenset({*self.signers, *self.tvs, *(self.new & {"callmanager", "itlrecovery"})})

    @property
    def lasting(self) -> bool:
        """Whether a locked phone stays locked at the boots that follow: False only where a CTL is served and
        the ITL's signer is not new (the phone takes the ITL at its locked boot, and with it the new CTL
        signer, a SAST record: it takes the CTL at the next)."""
        return not self.ctl_served or self.itl_signer is not None

    @property
    def itl_way(self) -> WayOutKind | None:
        """The way out through the ITL (None: a CTL served, which every phone checks first, or the ITL's
        signer not new): :func:`_way_out`."""
        return None if self.ctl_served or self.itl_signer is None else _way_out(self.itl_signer, self.new)

    @property
    def ctl_way(self) -> WayOutKind | None:
        """The way out through the CTL, of every phone where one is served (None: the CTL's signer is not
        new): :func:`_way_out`; the CTL taken names the ITL's signer, so the ITL follows."""
        return None if self.ctl_signer is None else _way_out(self.ctl_signer, self.new)


def _way_out(signer: str, new: frozenset[str]) -> WayOutKind:
    """The way out of a lockout by the new ``signer`` of a list, ``new`` the certificates new since the
    phones took theirs (spec §G.3.2, §G.3.3: a list signed by a SAST record they hold is taken; TVS is of no
    use, its certificate new): the list reset, signed by the CallManager key, where it is not new; else the
    list signed by ITLRecovery again where the CallManager key signs it now and ITLRecovery's is not new;
    else nothing the cluster serves: the phone's lists erased (checked with real boots:
    tests/unit/test_walk_s35_p11_regenerate_lockout_warning.py)."""
    if "callmanager" not in new:
        return "reset"
    if signer == "callmanager" and "itlrecovery" not in new:
        return "recovery-signed"
    return "erase"


def _replaced(entry: LogEntry) -> str | None:
    """The identity a change log entry replaced with another key: ``regenerate``'s, or ITLRecovery for an
    ``itlrecovery import`` (None: none)."""
    if entry.op == "regenerate" and isinstance(entry.args.get("cert"), str):
        return str(entry.args["cert"])
    return "itlrecovery" if entry.op == "itlrecovery-import" else None


def _exported_certificates(file: str) -> set[bytes]:
    """The certificates (DER) in an ``itlrecovery export`` file now; none where it is gone or unreadable."""
    try:
        found = certs.load_certs_pem(read_at_most(file, PEM_LIMIT, what="key file"), source=file)
    except (OSError, PhoneEmuError):
        return set()
    return {certs.cert_der(c) for c in found}


@dataclass(frozen=True, kw_only=True)
class CapfPending:
    """A CAPF operation waiting for phone ``mac`` (what the CAPF server should do, spec §F)."""

    mac: str
    operation: str
    auth_mode: int
    auth_string: str
    key_type: str
    key_size: int
    curve: str


def _unix(now: Now) -> int | None:
    if now is None:
        return None
    if isinstance(now, dt.datetime):
        return int(now.timestamp())
    return int(now)


def _bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("on", "true", "yes", "1", "off", "false", "no", "0"):
        return value.lower() in ("on", "true", "yes", "1")
    raise EncodeError(f"{what} must be on/off, got {value!r}", path=what)


def _regeneratable_text(nodes: int) -> str:
    """The identities ``regenerate`` takes, in words: ``one of callmanager, capf, itlrecovery or tvs`` and
    the numbered ones of the other nodes (``callmanager-2``, ``tvs-2`` ...; none in a cluster of one)."""
    single = sorted(_REGENERATABLE)
    text = f"one of {', '.join(single[:-1])} or {single[-1]}"
    if nodes == 1:
        return text + " (callmanager-N and tvs-N name node N of a cluster of several nodes; this one has 1)"
    numbered = "2" if nodes == 2 else f"2..{nodes}"
    return text + f", or another node's callmanager-N or tvs-N (N = {numbered}, e.g. tvs-2)"


_NAMES_SHOWN = 8
"""``tamper``'s refusal lists at most this many of the served files (the rest counted: a lab of 2,000
phones serves over 4,000 files)."""


def _served_names_text(names: list[str], root: Path | None) -> str:
    """``the served files: A, B, C`` (the first :data:`_NAMES_SHOWN`, then how many more, and the command
    that lists them all when the lab is in ``root``: not a scenario's throw-away folder, gone by then)."""
    if not names:
        return "the lab serves no file"
    shown = ", ".join(names[:_NAMES_SHOWN])
    listed = f" (phoneemu lab show {root} --files lists them)" if root is not None else ""
    more = f" and {len(names) - _NAMES_SHOWN} more{listed}" if len(names) > _NAMES_SHOWN else ""
    return f"the served files: {shown}{more}"


_INIT_MAKES = ("private", "certs", "tftp", "cluster.json", ".served.lock")
"""What :meth:`LabCluster.init` makes in a folder it was given (and removes again when it fails)."""


def _claim_new_root(root: Path) -> bool:
    """Claim ``root`` for one :meth:`LabCluster.init`: its ``private/`` made there, never one that exists
    (``mkdir`` is atomic: of two ``lab init`` of one folder at once, which both passed
    :meth:`LabCluster.check_new_root`, one makes it, the other stops here with one line, having made and
    removing nothing; was: both went on, writing their keys over each other's, and a loser that failed
    removed the folder or its content, the winner's lab). Returns whether it made ``root`` itself."""
    try:
        root.mkdir(parents=True)
        made_root = True
    except FileExistsError:  # check_new_root let in an empty folder (or another init made it meanwhile)
        made_root = False
    try:
        (root / "private").mkdir(mode=0o700)
    except FileExistsError:
        raise PhoneEmuError("another lab init is making a cluster in this folder (its private/ appeared "
                            "after this one checked the folder was empty): give another folder, or see "
                            "what the other one made", path=str(root)) from None
    return made_root


def _remove_made(root: Path, *, whole: bool) -> None:
    """Remove what a failed :meth:`LabCluster.init` made in ``root``: the folder itself when it made it
    (``whole``), else what init makes there (:data:`_INIT_MAKES`; it claimed the empty folder
    :meth:`LabCluster.check_new_root` let in, :func:`_claim_new_root`), nothing another process put beside."""
    if whole:
        shutil.rmtree(root, ignore_errors=True)
        return
    with contextlib.suppress(OSError):
        for name in _INIT_MAKES:
            child = root / name
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


_PENDING = ".pending"
"""In ``DIR/tftp``: the served files of a change not yet in place (hidden: never served, never listed)."""
_PENDING_NOTE = ".pending.json"
"""In ``DIR/tftp``: written once every file of a change is in :data:`_PENDING`; what
:func:`_settle_served` reads (see :class:`_ServedChange`)."""
_PENDING_LOCK = ".served.lock"
"""In ``DIR`` (beside ``tftp/``, whose listing is the served files): ``flock``-ed by the process whose
change is under way, from its first staged file to its last rename. :func:`_settle_served` leaves a change
it finds held alone (a live operation's, seen by a reader that does not hold the lab lock: ``lab serve``
starting, ``phone``), settles one it can lock (its process gone: a kill frees the lock)."""
_LAST_PUT = ("CTLFile.tlv", "ITLFile.tlv")  # put in place last: LabCluster.open reads a lab by its ITL


def _lock_change(tftp: Path) -> int | None:
    """The descriptor of :data:`_PENDING_LOCK` locked exclusively, without waiting; None while another
    process (or another change of this one) holds it."""
    fd = os.open(tftp.parent / _PENDING_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _not_regular(mode: int) -> str:
    kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a folder" if stat.S_ISDIR(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket")
    return (f"is {kind}, not a file the lab wrote: remove it (the next lab operation that re-signs every "
            "file writes it again)")


def _read_regular(path: str | Path) -> bytes:
    """The bytes of the regular file ``path``; anything else (a FIFO, which a blocking open waits on for
    ever; a device; a folder) is a PhoneEmuError naming it, found without blocking (``O_NONBLOCK``, then
    ``fstat``). FileNotFoundError passes through."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with open(fd, "rb", closefd=True) as f:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise PhoneEmuError(_not_regular(mode), path=str(path))
        return f.read()


def _state_digest(root: Path) -> str:
    """SHA-256 of the saved ``cluster.json`` ("" when there is none yet: a ``lab init``)."""
    try:
        return hashlib.sha256(_read_regular(root / "cluster.json")).hexdigest()
    except FileNotFoundError:
        return ""


class _ServedChange:
    """The served files one change writes and removes, put in place whole: "old or new, never half".

    The files are written into ``DIR/tftp/.pending/``, then the note ``.pending.json`` (atomic) names the
    saved state the change started from (its SHA-256; None: a rebuild of the state as saved, with no save
    to wait for) and the files it removes. The identities the change makes are staged before the note in
    ``private/.pending/`` (:func:`~phoneemu.lab.pki.pending_identities`) and go with it. The state's save is
    the commit point; then the identities are put in place, the files renamed
    into ``tftp/`` (the trust lists last), the removed ones unlinked, the note and the folders removed. A
    kill (or a failure) at any step leaves a lab :func:`_settle_served` makes whole when it is next opened
    or changed: no note, the change never was (its folder removed); a note and the state it names still
    saved, the save did not happen (rolled back: the folder removed, the old files untouched); a note and
    another state saved, the save happened (rolled forward: what is left renamed into place). Was: each file
    replaced one at a time, the state saved last: a kill between served a mix of two generations' files
    (new keys' lists beside old configs) under the old state, and ``lab serve`` and ``lab show`` read it.
    """

    def __init__(self, tftp: Path, before: str | None) -> None:
        self.tftp = tftp
        self.folder = tftp / _PENDING
        self.before = before
        self.writes: set[str] = set()
        self.removes: set[str] = set()
        #: the :meth:`LabCluster.saved_once` group whose one save commits it (None: saved at once)
        self.group: object = None
        self.durable = True  # identities put in place are fsynced (LabPki.durable)
        self._lock: int | None = None  # _PENDING_LOCK, held from begin() to release()

    def begin(self) -> None:
        """Hold :data:`_PENDING_LOCK` and make the folder (a change of another process under way, one
        that does not hold the lab lock: a PhoneEmuError, nothing touched)."""
        self.tftp.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_change(self.tftp)
        if self._lock is None:
            raise PhoneEmuError("held: another process is changing the served files; run this again once it "
                                "is done", path=str(self.tftp.parent / _PENDING_LOCK))
        self.folder.mkdir(exist_ok=True)

    def release(self) -> None:
        """Let go of :data:`_PENDING_LOCK` (the change applied, discarded, or left to be settled)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def put(self, name: str, data: bytes, *, same_as: str | None = None) -> None:
        """Stage ``data`` as served file ``name`` (a second put of one name replaces the first), always as a
        new file: a staged file never changes once written. ``same_as``: a file with the same bytes, linked
        (``os.link``) when this change staged it, not written again — the per-phone copies of a trust list:
        a regeneration makes no new file for each of 40,000 phones."""
        if not name or "/" in name or name.startswith("."):  # never a served file's name: never written
            raise EncodeError(f"not a served file's name: {name!r}", path="file")
        path = self.folder / name
        path.unlink(missing_ok=True)
        linked = False
        if same_as is not None and same_as != name and same_as in self.writes:
            with contextlib.suppress(OSError):  # a file system without hard links: written
                os.link(self.folder / same_as, path)
                linked = True
        if not linked:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            with open(fd, "wb", closefd=True) as f:
                f.write(data)
        self.writes.add(name)
        self.removes.discard(name)

    def remove(self, name: str) -> None:
        """Have served file ``name`` removed (and not written, if it was staged)."""
        if name in self.writes:
            self.writes.discard(name)
            (self.folder / name).unlink(missing_ok=True)
        self.removes.add(name)

    def seal(self) -> None:
        """Write the note: every staged file is whole (before the state's save)."""
        note = {"state_before": self.before, "removes": sorted(self.removes)}
        atomic_write(self.tftp / _PENDING_NOTE, json.dumps(note).encode(), tmp_name=_PENDING_NOTE + ".tmp")

    def apply(self) -> None:
        """Put the staged files in place (the trust lists last), unlink the removed ones, then the note and
        the folder. Idempotent: run again after a kill, it finishes what is left."""
        put_staged_identities(self.tftp.parent, durable=self.durable)  # first: the new files name them
        for name in sorted(self.writes, key=lambda n: n in _LAST_PUT):
            with contextlib.suppress(FileNotFoundError):  # put in place by a run before a kill
                os.replace(self.folder / name, self.tftp / name)
        for name in self.removes:
            (self.tftp / name).unlink(missing_ok=True)
        self.discard()
        self.release()

    def discard(self) -> None:
        """Forget the change: the note first (a kill then leaves a folder with no note: never was)."""
        (self.tftp / _PENDING_NOTE).unlink(missing_ok=True)
        shutil.rmtree(self.folder, ignore_errors=True)
        shutil.rmtree(pending_identities(self.tftp.parent), ignore_errors=True)
        (self.tftp / (_PENDING_NOTE + ".tmp")).unlink(missing_ok=True)  # a seal killed half-way


def _list_copied(name: str, data: bytes, files: Mapping[str, bytes]) -> str | None:
    """``ITLFile.tlv`` / ``CTLFile.tlv`` when ``name`` is a per-phone copy of it holding its bytes (``files``:
    the served files by name), else None (:meth:`_ServedChange.put`'s ``same_as``)."""
    m = _TRUST_DEVICE_RE.fullmatch(name)
    if m is None:
        return None
    base = f"{m.group(1)}File.tlv"
    return base if files.get(base) == data else None


def _settle_served(root: Path) -> None:
    """Make the served files of ``root`` whole after an operation killed (or failed) while it changed
    them (:class:`_ServedChange`): rolled back or forward as the saved state says; nothing when none was
    left (two ``stat`` calls). One a live process holds (:data:`_PENDING_LOCK`) is left to it: the old files
    are all in place until its save."""
    tftp = root / "tftp"
    note_path = tftp / _PENDING_NOTE
    if not note_path.exists() and not (tftp / _PENDING).is_dir() and not pending_identities(root).is_dir():
        return
    try:
        lock = _lock_change(tftp)
        if lock is None:
            return
        try:
            _settle_locked(root, tftp, note_path)
        finally:
            os.close(lock)
    except OSError as exc:
        raise PhoneEmuError(f"cannot finish the change of served files an interrupted lab operation left "
                            f"({exc.strerror or exc})", path=str(tftp)) from None


def _settle_locked(root: Path, tftp: Path, note_path: Path) -> None:
    """:func:`_settle_served` holding :data:`_PENDING_LOCK`."""
    try:
        text = _read_regular(note_path)
    except FileNotFoundError:  # killed before its note: the change never was
        _ServedChange(tftp, None).discard()
        return
    before, removes = _pending_note(text, note_path)
    change = _ServedChange(tftp, before)
    if before is not None and before == _state_digest(root):
        change.discard()  # the state was not saved: the old files stand
        return
    with contextlib.suppress(FileNotFoundError), os.scandir(change.folder) as listing:
        change.writes = {e.name for e in listing if e.is_file(follow_symlinks=False)}
    change.removes = removes
    change.apply()


def _pending_note(text: bytes, path: Path) -> tuple[str | None, set[str]]:
    """(state_before, removes) of a :data:`_PENDING_NOTE`; a note not as :meth:`_ServedChange.seal` writes
    it (names that are not served files' included: it names files to remove) is a DecodeError naming it."""
    try:
        note = json.loads(text)
    except ValueError:
        note = None
    if isinstance(note, dict):
        before, removes = note.get("state_before"), note.get("removes")
        if (before is None or isinstance(before, str)) and isinstance(removes, list) and all(
                isinstance(n, str) and n not in ("", ".", "..") and "/" not in n and "\0" not in n
                for n in removes):
            return before, set(removes)
    raise DecodeError("not a note of a change of served files this lab wrote: remove it and the folder "
                      f"{_PENDING}/ beside it, then run a lab operation to write the served files again",
                      path=str(path))


def _mac(text: str) -> str:
    return config.normalise_mac(text)


def _ip(host: str) -> str | None:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    return host


_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def check_host(host: str) -> str:
    """``host`` as configs and ITL records can name it: an IPv4/IPv6 address (no brackets, no port)
    or an ASCII DNS name (labels of letters, digits and hyphens, at most 253 characters). Anything else
    — empty, a wildcard, ``host:port``, ``[::1]``, non-ASCII, a path — is an EncodeError naming it."""
    text = host.strip()
    why = None
    if not text or text in WILDCARD_HOSTS:
        why = "empty or a wildcard"
    else:
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            labels = text.rstrip(".").split(".")
            if len(text) > 253 or not text.isascii() or not all(_HOST_LABEL.fullmatch(x) for x in labels):
                why = ("not an IP address (IPv6 without brackets or port) nor a DNS name (ASCII letters, "
                       "digits, hyphens, dots; at most 253 characters)")
            elif labels[-1].isdigit():  # 127.0.0.256: no DNS name ends in a numeric label (RFC 3696 §2)
                why = "not a valid IPv4 address, and no DNS name ends in a number"
        else:
            if addr.is_unspecified:
                why = "empty or a wildcard"
            elif isinstance(addr, ipaddress.IPv6Address) and addr.scope_id:
                why = "a scoped IPv6 address (the scope cannot be written into configs)"
    if why is not None:
        shown = text if len(text) <= 80 else text[:80] + "..."
        raise EncodeError(f"host {shown!r} cannot be written into configs ({why}): give the address "
                          "phones reach the cluster at", path="host")
    return text


def _flip(data: bytes, offset: int | None) -> tuple[bytes, int]:
    if not data:
        raise EncodeError("cannot tamper an empty file", path="tamper")
    off = len(data) - 1 if offset is None else offset
    if off < 0:
        off += len(data)
    if not 0 <= off < len(data):
        raise EncodeError(f"offset {offset} outside the file (0..{len(data) - 1})", path="tamper.offset")
    buf = bytearray(data)
    buf[off] ^= 0xFF
    return bytes(buf), off


def _same_folder(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one folder, by any paths (a symlink, a bind mount: its device and inode);
    by resolved path when one cannot be read."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def _file_stamp(path: Path) -> tuple[int, int, int]:
    """(inode, size, mtime in ns) of ``path``: changes when the file is replaced or rewritten."""
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


def _device_extra(ph: PhoneState | None) -> dict[str, str]:
    """Extra config elements of a device: its model and, unless excluded, its SIP digest credentials."""
    if ph is None:
        return {}
    extra = {"phoneModel": f"CP-{ph.model}"}
    if ph.digest_user is not None and not ph.exclude_digest:
        user, password = (xml_escape(v) for v in (ph.digest_user, ph.digest_password or ""))
        extra["sipLines"] = (f'<sipLines><line button="1"><authName>{user}</authName>'
                             f"<authPassword>{password}</authPassword></line></sipLines>")
    return extra


@functools.lru_cache(maxsize=8)
def _device_pool(host: str, ports: tuple[tuple[int, int], ...]) -> str:
    """The CallManager group of every config (spec §H.5): a member per node, in node order, on its
    registrar's TCP and TLS ports; the same for every phone."""
    return config.device_pool_xml([
        config.CallManager(host=host, priority=i, sip_port=sip, secured_sip_port=sips)
        for i, (sip, sips) in enumerate(ports)])


def _write_atomic(path: Path, data: bytes) -> None:
    atomic_write(path, data)  # served files and certificates: rebuilt from the state if lost


class LabCluster:
    """One lab cluster rooted at a directory; use :meth:`init` or :meth:`open`."""

    def __init__(self, root: Path, state: ClusterState, pki: LabPki) -> None:
        self.root = Path(root)
        self.state = state
        self.pki = pki
        #: every served file by name; None until first used after :meth:`open` (``_files``)
        self._served: dict[str, bytes] | None = {}
        self._tvs: list[tuple[bytes, tuple[str, ...], int, tuple[str, ...], tuple[int, ...]]] = []
        self._rand_counter = 0
        self._central_for: list[LabCluster] = []  # clusters whose device files this TFTP also serves
        self._mtime: tuple[int, int, int] = (0, 0, 0)
        self._unloadable: tuple[int, int, int] | None = None  # a saved state that failed to load
        self._unsaved = False  # a save failed: the state in memory is ahead of the disk (_save)
        #: inside :meth:`saved_once`: what runs after its one save (None: every change saves at once)
        self._after_save: list[Callable[[], None]] | None = None
        self._save_due = False  # inside saved_once: a change asked for a save
        self._reload_lock = threading.Lock()  # lab serve reloads from its loop and its TVS threads
        #: :meth:`update_locked` re-read a change another process saved (before writing its own): the next
        #: :meth:`reload_if_changed` reports it, so ``lab serve`` says what it picked up (a CAPF outcome
        #: recorded right after an operation used to take the operation's change in silently)
        self._unreported = False
        #: MIC (certificate, key) per MAC, valid while ``mic.key`` keeps the (inode, size, mtime) it had
        #: when cached: loading a PEM RSA key checks it with a test signature (keys._rsa_key_problem).
        self._mic_cache: dict[str, tuple[tuple[int, int, int], x509.Certificate, PrivateKey]] = {}
        #: told the number of phones before every served file is built again (each config signed
        #: again: about a minute for 40,000 phones); the ``lab`` commands say so on a large lab
        self.on_rebuild: Callable[[int], None] | None = None
        self._change: _ServedChange | None = None  # the served files being changed (_served_change)

    # ============================================================== creation
    @staticmethod
    def check_new_root(root: str | Path) -> None:
        """PhoneEmuError unless ``root`` can take a new cluster: a new folder or an empty one (see
        :meth:`init`); ``lab init`` asks before it starts making keys."""
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise PhoneEmuError("is a file, not a folder: give a new or empty folder", path=str(root))
        if (root / "cluster.json").exists():
            raise PhoneEmuError(f"already holds a lab cluster: give a new or empty folder for another "
                                f"one, or change this one with the lab operations (phoneemu lab show {root}, "
                                f"phoneemu lab --help)", path=str(root))
        if root.is_dir() and any(root.iterdir()):
            # a lab init killed before cluster.json left private/ (was: this line alone, and lab show
            # said "create one with lab init": each sent the user to the other)
            unfinished = ("; it holds private/ but no cluster.json: a lab init that did not finish? Remove "
                          "the folder and run lab init again") if (root / "private").is_dir() else ""
            raise PhoneEmuError("is not empty and holds no lab cluster: give a new or empty folder "
                                "(the lab writes certs/, private/, tftp/ and removes other files from tftp/)"
                                + unfinished, path=str(root))

    @classmethod
    def init(
        cls,
        root: str | Path,
        *,
        seed: int | None = None,
        name: str = "lab",
        host: str = "127.0.0.1",
        nodes: int = 1,
        itlrecovery_years: int | None = None,
        upgraded: bool = False,
        key_spec: KeySpec | str = "rsa2048",
        key: str | None = None,
        now: Now = None,
        tvs_ttl: int = 86400,
        sbd: bool = True,
        load: str | None = None,
        autoregistration: bool = True,
        https_key: str | None = None,
        itl_signer: str = "itlrecovery",
        pre_8_0: bool = False,
        durable: bool = True,
        before_keys: Callable[[], object] | None = None,
    ) -> LabCluster:
        """Create a cluster in ``root``: a new folder or an empty one. A folder holding anything else
        is refused (PhoneEmuError), a cluster or not: the lab writes ``certs/``, ``private/`` and
        ``tftp/`` there and removes from ``tftp/`` every file it does not serve, so ``lab init`` on a
        copy of a real cluster's TFTP root, or on a typo'd home folder, would lose the user's files.

        The first ITLRecovery certificate lasts ``itlrecovery_years``, by default 20 (fresh) or 5
        (``upgraded``: carried over); regenerated ones ``itlrecovery_years`` or 20, spec §G.8. ``key`` is an
        alias of ``key_spec`` (scenario option name). ``now`` defaults to the lab epoch when seeded,
        else the real time; it becomes the lab clock. ``https_key`` (e.g. ``ec-p256``) adds the HTTPS
        (6971) provisioning identity ``tftp-https``: an EC record with role TFTP in the ITL, which is
        then written with SIGNER_VERSION 1.1 (spec §G.5, §A.6). ``itl_signer="callmanager"`` models a
        pre-10.0 cluster whose ITL is signed by the TFTP server's CallManager key (seed "Initial Trust
        List": "soft eToken"); the default is the ITLRecovery key (spec §B.5). ``pre_8_0`` models a release
        before Security By Default: no ITL is served, configs name no TVS, and files are served unsigned
        unless the cluster is in mixed mode (signed by the CallManager key, verified on the CTL).
        ``durable=False``: a throw-away cluster (a scenario's temporary folder) whose keys and
        certificates are written without fsyncs (see :class:`LabPki`); kept across reloads.
        ``before_keys`` is called once every option is checked, just before the keys are made (the
        CLI's progress line: a refused option is one line, not a progress line and then an error).
        """
        host = check_host(host)
        if itl_signer not in ("itlrecovery", "callmanager"):
            raise EncodeError(f"itl_signer {itl_signer!r}: itlrecovery or callmanager", path="itl_signer")
        root = Path(root)
        cls.check_new_root(root)
        spec = KeySpec.parse(key) if key is not None else (
            KeySpec.parse(key_spec) if isinstance(key_spec, str) else key_spec)
        problem = cluster_key_problem(spec)  # refused before anything is made: rsa512 or ec-p256 is
        if problem is not None:              # no half-made folder (keys, then a file it cannot sign)
            raise EncodeError(problem, path="key")
        if not 1 <= nodes <= 8:
            raise EncodeError(f"nodes must be 1..8, got {nodes}", path="nodes")
        regen_years = itlrecovery_years if itlrecovery_years is not None else 20
        years = itlrecovery_years if itlrecovery_years is not None else (5 if upgraded else 20)
        if not 1 <= years <= 30:
            raise EncodeError(f"ITLRecovery validity {years} years outside 1..30", path="itlrecovery_years")
        if not name or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}", name):
            raise EncodeError(f"cluster name {name!r}: letters, digits, . _ - (max 32)", path="name")
        if not 1 <= tvs_ttl <= 2_592_000:
            raise EncodeError(f"TVS TTL {tvs_ttl} outside 1..2592000 s (spec §H.2)", path="tvs_ttl")
        if load is not None:
            firmware.loads_file_name(load)
        https_spec = KeySpec.parse(https_key) if https_key is not None else None
        start = _unix(now)
        if start is None:
            start = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()) if seed is not None \
                else int(time.time())
        state = ClusterState(name=name, host=host, seed=seed, key_spec=str(spec), nodes=nodes,
                             itlrecovery_years=regen_years, upgraded=upgraded, clock=start, tvs_ttl=tvs_ttl,
                             sbd=sbd, load=load, autoregistration=autoregistration,
                             https_key=str(https_spec) if https_spec is not None else None,
                             itl_signer=itl_signer, base_itl_signer=itl_signer, pre_8_0=bool(pre_8_0))
        made_root = _claim_new_root(root)
        try:
            pki = LabPki(root, seed=seed, key_spec=spec, cluster_name=name, durable=durable)
            if before_keys is not None:
                before_keys()
            for ident in cls._core_names(nodes):
                years_for = years if ident == "itlrecovery" else None
                pki.create(ident, now=start, generation=0, years=years_for)
                state.identity_generations[ident] = 0
            if https_spec is not None:
                pki.create("tftp-https", now=start, generation=0, spec=https_spec)
                state.identity_generations["tftp-https"] = 0
            cluster = cls(root, state, pki)
            cluster._commit("init", {"seed": seed, "name": name, "host": host, "nodes": nodes,
                                     "itlrecovery_years": years, "key": str(spec)}, None, bump=False)
        except BaseException:  # failed (or interrupted) half-way: leave the folder as it was found
            _remove_made(root, whole=made_root)
            raise
        return cluster

    @staticmethod
    def _core_names(nodes: int) -> list[str]:
        names = ["itlrecovery", "capf", "mfgca", "imagesigning"]
        for n in range(1, nodes + 1):
            names += [node_identity("callmanager", n), node_identity("tvs", n)]
        return names

    @classmethod
    def open(cls, root: str | Path, *, durable: bool = True) -> LabCluster:
        """Open an existing cluster; served files come from ``DIR/tftp`` (rebuilt if missing).
        ``durable``: as in :meth:`init`."""
        root = Path(root)
        state = load_state(root)
        try:
            spec = KeySpec.parse(state.key_spec)
        except EncodeError as exc:
            raise DecodeError(exc.message, path=f"{root}/cluster.json:key_spec") from None
        cluster = cls(root, state, LabPki(root, seed=state.seed, key_spec=spec, cluster_name=state.name,
                                          durable=durable))
        _settle_served(root)  # an operation killed while it changed the served files: its old or new ones
        for folder in ("", "certs", "private", "exported"):  # a killed write's temporary copies (files rules)
            remove_dead_temps(root / folder)
        tftp = root / "tftp"
        if tftp.is_dir() and (tftp / "ITLFile.tlv").exists():
            cluster._served = None  # read when first used: a `lab show` needs two of them
            cluster._index_tvs()
        else:
            cluster._rebuild()
            cluster._put_unsaved()
        cluster._mtime = cluster._state_mtime()
        return cluster

    @property
    def _files(self) -> dict[str, bytes]:
        """Every served file by name, read from ``DIR/tftp`` on first use after :meth:`open` (a
        40,000-phone lab's ``lab show`` reads its ITL and CTL, not 80,000 files)."""
        if self._served is None:
            self._served = self._read_served()
        return self._served

    @_files.setter
    def _files(self, files: dict[str, bytes]) -> None:
        self._served = files

    def load_served(self) -> None:
        """Read the served files now (``LabServers.start``: before the first phone asks, not during
        a storm)."""
        _ = self._files

    def read_whole(self) -> None:
        """Have the state and every served file of one save in memory (``LabServers.start``): re-read
        under the lab lock, shared and without waiting (:class:`LabBusyError` while an operation holds it,
        nothing read), when the state was saved since :meth:`open` — which reads without the lock and may
        have met an operation's new files beside the state before it — else the files read now."""
        with try_lab_lock(self.root), self._reload_lock:
            seen = self._state_mtime()
            if seen != self._mtime:
                self._reload(seen)
            else:
                self.load_served()

    def _read_served(self) -> dict[str, bytes]:
        """The files of ``DIR/tftp``; identical contents (every CTLSEP<MAC>/ITLSEP<MAC> is the same
        list) share one bytes object: a 40,000-phone lab holds each trust list once, not 80,000 times."""
        same: dict[bytes, bytes] = {}
        files: dict[str, bytes] = {}
        for name, path in sorted(self._served_entries()):  # sorted as strings: Paths sort 10x slower
            try:
                data = _read_regular(path)  # a FIFO is refused, not waited on for ever
            except FileNotFoundError:  # a broken link, or removed since listed
                continue
            files[name] = same.setdefault(data, data)
        return files

    def _served_file(self, name: str) -> bytes | None:
        """One served file, without reading the others when they are not read yet."""
        if self._served is not None:
            return self._served.get(name)
        try:
            return _read_regular(self.root / "tftp" / name)  # a FIFO is refused, not waited on for ever
        except FileNotFoundError:
            return None

    def _served_count(self) -> int:
        return len(self._served) if self._served is not None else len(self._served_entries())

    def _served_entries(self) -> list[tuple[str, str]]:
        """(name, path) of each served file in ``DIR/tftp`` (hidden files are not served, nor folders; a FIFO
        or a device is, to be refused by name when read: was left out in silence)."""
        with os.scandir(self.root / "tftp") as listing:
            return [(e.name, e.path) for e in listing if not e.name.startswith(".") and not e.is_dir()]

    def _state_mtime(self) -> tuple[int, int, int]:
        """Identity of the saved state: (inode, mtime ns, size); atomic saves change the inode."""
        try:
            st = (self.root / "cluster.json").stat()
        except OSError:
            return (0, 0, 0)
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def reload_if_changed(self) -> bool:
        """Re-read state and files when another process (the CLI) changed them; True if reloaded, or
        if :meth:`update_locked` re-read such a change since the last call (once: the caller says what it
        picked up either way).

        A saved state that cannot be loaded raises once (PhoneEmuError) and is not tried again until
        the state file changes again: the cluster keeps serving what it had (callers may ask per request).
        The state is read under the lab lock, shared and without waiting (:func:`try_lab_lock`): while a
        ``phoneemu lab`` operation holds it the lab may be half-written, so :class:`LabBusyError` is raised,
        nothing is read, and the next call tries again.
        """
        if self._state_mtime() in (self._mtime, self._unloadable):
            return self._take_unreported()
        with self._reload_lock:  # one reload at a time; a caller that waited finds it done
            if self._state_mtime() in (self._mtime, self._unloadable):
                unreported, self._unreported = self._unreported, False
                return unreported
            with try_lab_lock(self.root):
                reloaded = self._reload(self._state_mtime())  # seen under the lock: the state it reads
                self._unreported = False
                return reloaded

    def _take_unreported(self) -> bool:
        """True once after :meth:`update_locked` re-read a change another process saved (see
        :meth:`reload_if_changed`): it was picked up, though not by a reload of its own."""
        if not self._unreported:
            return False
        with self._reload_lock:
            unreported, self._unreported = self._unreported, False
        return unreported

    def update_locked(self, change: Callable[[], _T], *, wait: bool = True) -> _T:
        """Run ``change`` (a change that saves the state, e.g. :meth:`set_ports`) holding the lab lock
        exclusively, on the state as saved: when another process saved the state since this cluster read
        it, it is re-read first. So a ``phoneemu lab`` operation and ``lab serve``'s own write (its ports,
        its ``--host``) run one after the other and neither loses the other's change (each saves the
        whole state; the save is atomic, :func:`phoneemu.files.atomic_write`). ``wait=False``: the lock
        is tried without waiting, :class:`~phoneemu.lab.lock.LabBusyError` while an operation holds it
        (nothing read, nothing written). A saved state that cannot be loaded is a PhoneEmuError and
        nothing is written over it. A change whose save fails (a full disk) is undone in memory too: the
        cluster goes on serving the state as saved, and the error goes to the caller."""
        lock = hold_lab_lock(self.root) if wait else try_lab_lock(self.root, exclusive=True)
        with lock, self._reload_lock:
            seen = self._state_mtime()
            if seen != self._mtime:
                self._reload(seen)
                self._unreported = True  # another process's change: reload_if_changed reports it
            self._unsaved = False
            try:
                return change()
            except BaseException:
                if self._unsaved:  # the change did not reach the disk: serve the state as saved again
                    self._unsaved = False
                    with contextlib.suppress(PhoneEmuError):
                        self._reload(self._state_mtime())
                raise

    @contextlib.contextmanager
    def saved_once(self) -> Iterator[None]:
        """Changes made inside save the state once, at the end (a group commit: the CAPF server records
        the sessions that finished together with one save, not one save of the whole state each); what a
        change does after its save (:meth:`_after_saving`) runs after that one. Use it inside
        :meth:`update_locked`: a failure inside, or of the save, leaves the state in memory ahead of the
        disk, which update_locked puts back as saved — none of the changes then stands — whatever failed (an
        OSError staging the first record's files included: was only once a save was due, its files kept in
        memory), and the group's change of served files is let go of and settled (was: its lock held, every
        other process's operation refused until this cluster's next change)."""
        if self._after_save is not None:  # nested: the outer one saves
            yield
            return
        group: list[Callable[[], None]] = []
        self._after_save, self._save_due = group, False
        try:
            yield
            self._after_save = None
            if self._save_due:
                self._save()
            for fn in group:
                fn()
        except BaseException:
            self._unsaved = True
            if self._change is not None and self._change.group is group:
                self._drop_change()
                with contextlib.suppress(PhoneEmuError):
                    _settle_served(self.root)  # rolled back, or forward when the save was made
            raise
        finally:
            self._after_save, self._save_due = None, False

    @contextlib.contextmanager
    def _phone_change_undone_on_error(self, mac: str) -> Iterator[None]:
        """A change of one phone (a CAPF record) that raises is undone in memory: the phone's fields, the
        clock, the generation and the log are put back. Its files need nothing: :meth:`_rebuild_phones`
        builds them all before it replaces any. Before, a record whose files could not be built (an EC
        LSC for a phone whose config is encrypted to it, spec §C.3) left the phone recorded in memory
        — its install no longer pending — though nothing was saved, and a group commit would save that."""
        ph = self._phone(mac)
        before = replace(ph)
        clock, generation, log = self.state.clock, self.state.generation, list(self.state.log)
        try:
            yield
        except BaseException:
            for f in fields(ph):
                setattr(ph, f.name, getattr(before, f.name))
            self.state.clock, self.state.generation = clock, generation
            self.state.log[:] = log  # as it was (an entry added may have trimmed the log's front)
            raise

    def _after_saving(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once the state is saved: now, or after :meth:`saved_once`'s save."""
        if self._after_save is None:
            fn()
        else:
            self._after_save.append(fn)

    def _save(self) -> None:
        """Save the state (atomic); a save that fails marks the state in memory as ahead of the disk,
        which :meth:`update_locked` then puts back as saved. Inside :meth:`saved_once` it only asks for
        that one save. With no change of served files of its own under way it first settles a change
        another process left (:func:`_settle_served`, by the state as saved *before* this save: its note
        names that state; was: a state-only save — the clock, ``lab serve``'s HTTPS identity — made the
        note's "another state saved", and the next open rolled a killed operation's key pair and files
        forward under a state that never recorded them)."""
        if self._after_save is not None:
            self._save_due = True
            return
        try:
            if self._change is None:
                _settle_served(self.root)
            save_state(self.root, self.state)
        except BaseException:
            self._unsaved = True
            raise
        self._mtime = self._state_mtime()

    def _reload(self, seen: tuple[int, int, int]) -> bool:
        """Take the saved lab as read now. Its identity is ``seen``, taken before reading (ours): a save
        made while it was read (a writer not holding the lab lock, e.g. the Python API) differs from it,
        so the next :meth:`reload_if_changed` reads again — the identity taken after reading was that
        save's, and the lab read before it was served for good."""
        try:
            fresh = LabCluster.open(self.root, durable=self.pki.durable)
            fresh.load_served()  # here, under the lab lock: one generation's files, never a mix
        except PhoneEmuError:
            self._unloadable = seen
            raise
        except OSError as exc:
            self._unloadable = seen
            raise PhoneEmuError(f"cannot read the saved cluster: {exc}", path=str(self.root)) from None
        self.state, self.pki, self._files, self._tvs = fresh.state, fresh.pki, fresh._files, fresh._tvs
        self._mtime = seen
        return True

    # ============================================================== serving
    def files(self) -> Mapping[str, bytes]:
        """A snapshot of every served file by name (per-device trust lists of known phones included)."""
        return dict(self._files)

    def get(self, name: str) -> bytes | None:
        """The served file ``name`` or None; per-device trust lists are answered for any MAC."""
        name = name.lstrip("/")
        hit = self._files.get(name)
        if hit is not None:
            return hit
        m = _TRUST_DEVICE_RE.fullmatch(name)
        if m:
            return self._files.get(f"{m.group(1)}File.tlv")
        if _DEVICE_CONFIG_RE.fullmatch(name):
            for other in self._central_for:
                found = other.get(name)
                if found is not None:
                    return found
        return None

    def serve_device_files_of(self, other: LabCluster) -> None:
        """Be the centralized TFTP of ``other``: serve its phones' configuration files (as ``other``
        signed or encrypted them, CUCM's Alternate File Location) beside this cluster's own trust
        lists and files (seed "Update ITL File for Cisco Unified IP Phones", spec §G.11). Not kept in
        ``cluster.json``: a scenario (or a caller) wires the two running clusters together."""
        if other is self:
            raise EncodeError("a cluster cannot be its own centralized TFTP", path="tftp_for")
        self._central_for.append(other)

    @property
    def generation(self) -> int:
        return self.state.generation

    @property
    def clock(self) -> int:
        """The lab clock (Unix seconds)."""
        return self.state.clock

    # ============================================================== identities
    def identity(self, name: str) -> Identity:
        return self.pki.get(name)

    def identity_names(self) -> list[str]:
        """The cluster's own identities: ITLRecovery, CAPF, the manufacturing CA, image signing, and
        each node's CallManager and TVS."""
        return self._core_names(self.state.nodes)

    def certificates(self) -> dict[str, dict[str, str]]:
        """Each identity's certificate as Certificate Management lists it (seed "View the Validity
        Period of ITLRecovery Certificate"): subject, validity (UTC) and SHA-1 fingerprint."""
        from phoneemu.crypto.certs import dn_text, fingerprint

        out: dict[str, dict[str, str]] = {}
        for name in self.identity_names():
            cert = self.identity(name).cert
            out[name] = {"subject": dn_text(cert.subject),
                         "not_before": cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "sha1": fingerprint(cert)}
        return out

    def callmanager(self, node: int = 1) -> Identity:
        return self.pki.get(node_identity("callmanager", node))

    def tvs_identity(self, node: int = 1) -> Identity:
        return self.pki.get(node_identity("tvs", node))

    def phone_dir(self, mac: str) -> Path:
        return self.root / "phones" / _mac(mac)

    def phone_identity(self, mac: str, *, paired: bool = True) -> tuple[x509.Certificate, PrivateKey]:
        """The MIC (certificate, key) the lab issued for ``mac`` (lab convenience, see docstring): the one an
        operation under way staged (:meth:`LabPki.stage_mic`), else the pair on disk (:func:`read_mic`: the
        key checked to be the certificate's; ``paired=False``, for its certificate alone: not checked)."""
        staged = self.pki.staged_mic(_mac(mac))
        if staged is not None:
            return staged
        d = self.phone_dir(mac)
        try:
            stamp = _file_stamp(d / "mic.key")
            hit = self._mic_cache.get(mac)
            if hit is not None and hit[0] == stamp:
                return hit[1], hit[2]
            cert, key = read_mic(d, paired=paired)
        except FileNotFoundError:
            raise self._no_phone(mac) from None
        if paired or keys.public_key_spki_der(certs.cert_public_key(cert)) == keys.public_key_spki_der(
                key.public_key()):
            self._mic_cache[mac] = (stamp, cert, key)  # a pair only: a paired read refuses the others
        return cert, key

    def phone_lsc(self, mac: str) -> x509.Certificate | None:
        """The LSC the saved state records for ``mac`` (None: none recorded). The state is the commit
        point (:meth:`record_lsc`): ``lsc.pem`` counts only when it holds the certificate the state names
        (``lsc_sha256``), else the staged copy a record interrupted after its commit left does; a file
        the state does not name (a record that failed before its commit, a delete not yet tidied) is not
        the phone's LSC."""
        ph = self.state.phones.get(_mac(mac))
        if ph is None or not ph.has_lsc:
            return None
        d = self.phone_dir(mac)
        for path in (d / "lsc.pem", d / _STAGED_LSC):
            if not path.exists():
                continue
            found = certs.load_certs_pem(read_at_most(path, PEM_LIMIT, what="certificate file"),
                                         source=str(path))
            if ph.lsc_sha256 is None:  # a lab saved before the field: lsc.pem as it is
                return found[0] if found else None
            if found and hashlib.sha256(certs.cert_der(found[0])).hexdigest() == ph.lsc_sha256:
                return found[0]
        return None

    def lsc_problem(self, mac: str, *, now: Now = None) -> str | None:
        """Why the LSC recorded for ``mac`` no longer authenticates it (CAPF by existing certificate, the
        registrar: :meth:`verify_device_cert`), e.g. ``expired 2027-12-06`` or ``not issued by the current
        CAPF (regenerated since)``; None when it does, or none is recorded. ``lab show`` says it beside
        ``LSC yes``: the record alone reads as a working LSC."""
        try:
            cert = self.phone_lsc(mac)
        except PhoneEmuError as exc:
            return f"unreadable ({exc})"
        if cert is None:
            return None
        try:
            self.pki.verify_issued(cert, "capf", what="LSC")
        except VerificationError:
            return "not issued by the current CAPF (regenerated since)"
        when = _unix(now)
        when = self.state.clock if when is None else when
        if when > int(cert.not_valid_after_utc.timestamp()):
            return f"expired {cert.not_valid_after_utc:%Y-%m-%d}"
        if when < int(cert.not_valid_before_utc.timestamp()):
            return f"not valid before {cert.not_valid_before_utc:%Y-%m-%d}"
        return None

    def _settle_lsc(self, ph: PhoneState) -> None:
        """After the state's commit: put the staged LSC in place as ``lsc.pem``, or remove the files of
        one no longer recorded. A failure here changes nothing :meth:`phone_lsc` answers (it reads the
        state first); the next record or delete of the phone tidies up."""
        d = self.phone_dir(ph.mac)
        staged, path = d / _STAGED_LSC, d / "lsc.pem"
        with contextlib.suppress(OSError):
            if ph.has_lsc and staged.exists():
                os.replace(staged, path)
            elif not ph.has_lsc:
                path.unlink(missing_ok=True)
                staged.unlink(missing_ok=True)

    def phone_cert(self, mac: str) -> x509.Certificate:
        """The certificate encrypted configs are wrapped to: the LSC if recorded, else the MIC."""
        return self.phone_lsc(mac) or self.phone_identity(mac, paired=False)[0]

    # ============================================================== phones
    def add_phone(
        self,
        mac: str,
        *,
        model: str | None = None,
        encrypt: str | None = None,
        symmetric_key: str | None = None,
        capf_operation: str | None = None,
        capf_auth_mode: int | str | None = None,
        auth_string: str | int | None = None,
        lsc_key: str | None = None,
        capf: Mapping[str, Any] | None = None,
        mic: tuple[x509.Certificate, PrivateKey] | None = None,
        now: Now = None,
    ) -> None:
        """Add phone ``mac`` (or update the options given for a known one) and issue its MIC.

        ``capf`` is the scenario form ``{operation, auth_mode, auth_string, key}``. ``mic`` imports an
        existing MIC instead of issuing one (a phone that moves between lab clusters). Only this
        phone's files are rebuilt (CUCM re-signs device files when their data changes, spec §C.1).
        """
        self.add_phones([mac], model=model, encrypt=encrypt, symmetric_key=symmetric_key,
                        capf_operation=capf_operation, capf_auth_mode=capf_auth_mode,
                        auth_string=auth_string, lsc_key=lsc_key, capf=capf, mic=mic, now=now)

    def add_phones(
        self,
        macs: Iterable[str],
        *,
        model: str | None = None,
        encrypt: str | None = None,
        symmetric_key: str | None = None,
        capf_operation: str | None = None,
        capf_auth_mode: int | str | None = None,
        auth_string: str | int | None = None,
        lsc_key: str | None = None,
        capf: Mapping[str, Any] | None = None,
        mic: tuple[x509.Certificate, PrivateKey] | None = None,
        now: Now = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """:meth:`add_phone` for many phones with one state write (fleets); ``progress(done, total)`` is
        told after each phone's MIC (a fresh RSA key each: 40,000 phones take minutes)."""
        mac_list = [_mac(m) for m in macs]
        if mic is not None and len(mac_list) != 1:
            raise EncodeError("an imported MIC belongs to exactly one phone", path="mic")
        self._tick(now)
        added: list[str] = []
        with self._put_back_on_error():  # a phone refused after others were staged: none of them stands
            for done, mac in enumerate(mac_list, 1):
                if self._add_one(mac, model=model, encrypt=encrypt, symmetric_key=symmetric_key,
                                 capf_operation=capf_operation, capf_auth_mode=capf_auth_mode,
                                 auth_string=auth_string, lsc_key=lsc_key, capf=capf, mic=mic):
                    added.append(mac)
                if progress is not None:
                    progress(done, len(mac_list))
        op = "phone-add" if added else "phone-update"
        args: dict[str, Any] = {"macs": mac_list} if len(mac_list) != 1 else {"mac": mac_list[0]}
        args.update(model=model, encrypt=encrypt, capf=capf_operation or (capf or {}).get("operation"))
        self._commit(op, args, now, phones=mac_list)

    def _add_one(self, mac: str, *, model: str | None, encrypt: str | None, symmetric_key: str | None,
                 capf_operation: str | None, capf_auth_mode: int | str | None, auth_string: str | int | None,
                 lsc_key: str | None, capf: Mapping[str, Any] | None,
                 mic: tuple[x509.Certificate, PrivateKey] | None) -> bool:
        if capf:
            capf_operation = capf.get("operation", capf_operation)
            capf_auth_mode = capf.get("auth_mode", capf_auth_mode)
            auth_string = capf.get("auth_string", auth_string)
            lsc_key = capf.get("key", lsc_key)
        old = self.state.phones.get(mac)
        new = old is None
        ph = PhoneState(mac=mac) if old is None else replace(old)
        if model is not None:
            ph.model = _model(model)
        self._set_encryption(ph, encrypt, symmetric_key, explicit=encrypt is not None)
        if model is not None or encrypt is not None or symmetric_key is not None:
            _check_manual_key(ph, given=symmetric_key is not None)
        self._set_capf(ph, capf_operation, _auth_mode(capf_auth_mode),
                       None if auth_string is None else str(auth_string), lsc_key)
        if new or mic is not None:  # written with the state's save (the module docstring)
            if mic is None:
                cert, key = self.pki.issue_mic(mac, model=ph.model, now=self.state.clock,
                                               spec=KeySpec.parse(self.state.key_spec))
            else:
                cert, key = mic
            self.pki.stage_mic(mac, cert, key)
            self._mic_cache.pop(mac, None)
        self.state.phones[mac] = ph
        return new

    def _set_encryption(self, ph: PhoneState, mode: str | None, key: str | None, *, explicit: bool) -> None:
        if not explicit:
            if key is not None:
                ph.symmetric_key = _hex_key(key)
            return
        if mode not in _ENCRYPT_MODES:
            raise EncodeError(f"encryption mode {mode!r} not one of {_ENCRYPT_MODES}", path="encrypt")
        if key is not None:
            ph.symmetric_key = _hex_key(key)
        if mode == "symmetric" and ph.symmetric_key is None:
            raise EncodeError("symmetric encryption needs a key (32 or 64 hex digits)", path="symmetric_key")
        ph.encrypt = mode

    def _check_pki_recipient(self, mac: str) -> None:
        """PKI config encryption wraps the file key for the phone's certificate with RSA (spec §C.3; an EC
        wrap is unknown): a phone whose LSC (else MIC) has an EC key is refused now, naming the way out,
        not later by every rebuild of the served files (each CAPF outcome then failed to record)."""
        lsc = self.phone_lsc(mac)
        key = keys.key_description(certs.cert_public_key(self.phone_cert(mac)))
        if not key.startswith("RSA"):
            which = "LSC" if lsc is not None else "MIC"
            raise EncodeError(f"phone {mac}: PKI config encryption wraps the key for the phone's "
                              f"certificate with RSA (spec §C.3); its {which} has an {key} key: --mode "
                              "symmetric, or enrol an RSA LSC first (lab capf ... --lsc-key rsa2048)",
                              path="encrypt")

    def _set_capf(self, ph: PhoneState, operation: str | None, auth_mode: int | None,
                  auth_string: str | None, lsc_key: str | None) -> None:
        if lsc_key is not None:
            spec = KeySpec.parse(lsc_key)
            ph.lsc_key = str(spec)
        if auth_string is not None:
            if not (auth_string.isascii() and auth_string.isdigit() and 4 <= len(auth_string) <= 16):
                raise EncodeError("authentication string must be 4..16 digits", path="auth_string")
            if auth_mode not in (None, 1):  # a string with another mode: which one was meant?
                raise EncodeError(f"an authentication string goes with CAPF auth mode string (1), not "
                                  f"{_AUTH_MODE_TEXT.get(auth_mode, auth_mode)} ({auth_mode}): --auth-string "
                                  "implies --auth-mode string (give one or the other)", path="auth_mode")
            ph.auth_string = auth_string
            if auth_mode is None:  # a string given without a mode is mode 1, whatever the last one was
                auth_mode = 1       # (--auth-string implies --auth-mode string; a null-string mode stayed)
        if auth_mode is not None:
            if not isinstance(auth_mode, int) or not 0 <= auth_mode <= 4:
                raise EncodeError(f"CAPF auth mode {auth_mode!r} not in 0..4 (spec §H.5)", path="auth_mode")
            ph.capf_auth_mode = auth_mode
        if operation is not None:
            if operation in ("none", ""):
                ph.capf_operation = None
                return
            if operation not in _CAPF_OPERATIONS:
                raise EncodeError(f"CAPF operation {operation!r} not one of {_CAPF_OPERATIONS}",
                                  path="capf_operation")
            ph.capf_operation = operation
            if auth_mode is None and ph.capf_auth_mode == 0:
                ph.capf_auth_mode = 1 if ph.auth_string else 2
        if ph.capf_auth_mode == 1 and ph.capf_operation and not ph.auth_string:
            raise EncodeError("CAPF auth mode 1 (authentication string) needs --auth-string",
                              path="auth_string")

    def _phone(self, mac: str) -> PhoneState:
        ph = self.state.phones.get(_mac(mac))
        if ph is None:
            raise self._no_phone(mac)
        return ph

    def _no_phone(self, mac: str) -> PhoneEmuError:
        """A MAC the lab has no phone for, with the command that adds it to this lab (was: 'lab phone add',
        no folder, no MAC); a scenario's throw-away lab gets the operation's name only."""
        add = (f"phoneemu lab phone add {shlex.quote(str(self.root))} --mac {_mac(mac)}" if self.pki.durable
               else "lab phone add")
        return PhoneEmuError(f"no phone {_mac(mac)} in this cluster (add it with '{add}')", path="mac")

    # --- CAPF (used by the CAPF server) --------------------------------------------------------
    def capf_pending(self, mac: str) -> CapfPending | None:
        ph = self.state.phones.get(_mac(mac))
        if ph is None or ph.capf_operation is None:
            return None
        spec = KeySpec.parse(ph.lsc_key)
        return CapfPending(mac=ph.mac, operation=ph.capf_operation, auth_mode=ph.capf_auth_mode,
                           auth_string=ph.auth_string or "", key_type=spec.kind, key_size=spec.bits,
                           curve=spec.curve)

    def issue_lsc(self, device_name: str, public_key: bytes | PublicKey, *, now: Now = None,
                  days: int = 365) -> bytes:
        """LSC DER for ``device_name`` signed by CAPF (spec §F.9), matching ``protocols.capf.IssueLsc``."""
        when = _unix(now)
        if when is None:
            when = self.state.clock
        return certs.cert_der(self.pki.issue_lsc(device_name, public_key, now=when, days=days))

    def verify_device_cert(self, cert: x509.Certificate, cert_type: int, *, device_name: str | None = None,
                           now: Now = None) -> None:
        """CAPF: an LSC must chain to CAPF, a MIC to the manufacturing CA (``CertType`` 1/2).

        With ``device_name`` (CAPF authentication by existing certificate, spec §F.7: the chain is
        validated, so dates count), the certificate must also be within its validity at ``now`` (default:
        the lab clock) and name that device: CN equal to it or ending in ``-<name>`` (a MIC's
        ``CP-8861-SEP…``, a CUCM LSC's, §F.9) or a SAN URI equal to it — another phone's MIC or LSC does
        not authenticate this one."""
        what = {1: "LSC", 2: "MIC"}.get(cert_type)
        if what is None:
            raise VerificationError(f"unknown certificate type {cert_type}", reason=VerifyReason.OTHER)
        self.pki.verify_issued(cert, "capf" if cert_type == 1 else "mfgca", what=what)
        if device_name is None:
            return
        when = _unix(now)
        when = self.state.clock if when is None else when
        start, end = int(cert.not_valid_before_utc.timestamp()), int(cert.not_valid_after_utc.timestamp())
        if not start <= when <= end:
            state = "expired" if when > end else "not yet valid"
            iso = "%Y-%m-%dT%H:%M:%SZ"
            raise VerificationError(
                f"{what} {certs.dn_text(cert.subject)!r} {state} at the lab clock "
                f"{dt.datetime.fromtimestamp(when, dt.UTC):{iso}} (valid "
                f"{cert.not_valid_before_utc:{iso}} .. {cert.not_valid_after_utc:{iso}})",
                reason=VerifyReason.EXPIRED)
        if not names_device(cert, device_name):  # the phone's own rule for its LSC (protocols.capf)
            raise VerificationError(f"{what} {certs.dn_text(cert.subject)!r} does not name device "
                                    f"{device_name!r} (CN or SAN URI)", reason=VerifyReason.OTHER)

    def record_lsc(self, mac: str, cert: x509.Certificate | bytes | None, *, now: Now = None,
                   operation: str | None = None) -> None:
        """Record the LSC CAPF issued to ``mac`` (None = deleted) and clear the pending operation.

        ``operation``: the pending operation the CAPF session ran. The pending operation is cleared only
        while it is still that one: an administrator who set another one for the phone meanwhile (another
        process, saved while the session ran) keeps it — the LSC is recorded either way, the phone has
        it. None clears whatever is pending.

        The saved state is the commit point: the new LSC is written first under a staged name
        (``.lsc-staged.pem``), the state naming it (``lsc_sha256``) is saved, then the staged file is
        renamed to ``lsc.pem`` (a delete removes ``lsc.pem`` after the save). A failure or a kill at any
        step leaves a lab whose :meth:`phone_lsc` agrees with its state: the old LSC (or none) when
        the save did not happen, the new one when it did."""
        with self._phone_change_undone_on_error(mac):
            self._record_lsc(mac, cert, now=now, operation=operation)

    def _record_lsc(self, mac: str, cert: x509.Certificate | bytes | None, *, now: Now,
                    operation: str | None) -> None:
        ph = self._phone(mac)
        if cert is None:
            ph.has_lsc, ph.lsc_sha256 = False, None
        else:
            c = certs.load_cert_der(cert) if isinstance(cert, bytes) else cert
            staged = self.phone_dir(ph.mac) / _STAGED_LSC
            staged.parent.mkdir(parents=True, exist_ok=True)
            _write_atomic(staged, cert_pem(c))
            ph.has_lsc, ph.lsc_sha256 = True, hashlib.sha256(certs.cert_der(c)).hexdigest()
        if operation is None or ph.capf_operation == operation:
            ph.capf_operation = None
        self._commit("capf-lsc", {"mac": ph.mac, "lsc": cert is not None,
                                  "pending": ph.capf_operation}, now, phones=[ph.mac])
        self._after_saving(lambda: self._settle_lsc(ph))

    def capf_done(self, mac: str, *, now: Now = None, operation: str | None = None) -> None:
        """Clear the pending CAPF operation of ``mac`` (fetch finished, or delete done: the LSC is
        forgotten). ``operation``: the operation the CAPF session ran (None: the one pending); the
        pending one is cleared only while it is still that one, as in :meth:`record_lsc`."""
        with self._phone_change_undone_on_error(mac):
            self._capf_done(mac, now=now, operation=operation)

    def _capf_done(self, mac: str, *, now: Now, operation: str | None) -> None:
        ph = self._phone(mac)
        ran = ph.capf_operation if operation is None else operation
        if ran == "delete":  # forgotten in the state (the commit point), lsc.pem removed after the save
            ph.has_lsc, ph.lsc_sha256 = False, None
        if operation is None or ph.capf_operation == operation:
            ph.capf_operation = None
        self._commit("capf-done", {"mac": ph.mac, "operation": operation, "pending": ph.capf_operation},
                     now, phones=[ph.mac])
        if ran == "delete":
            self._after_saving(lambda: self._settle_lsc(ph))

    # ============================================================== TVS
    def tvs_lookup(self, key: bytes | tuple[str, bytes, str]) -> TvsEntry | None:
        """What TVS vouches for: VERIFY by certificate DER, QUERY by (issuer, serial, subject), the names
        compared as a phone compares them (``certs.dn_key``: in any RDN order, spec §A.7, §B.4 — CUCM's
        ``;`` text or certutils' ``,`` one; was: in order, a certutils-order QUERY was "not found")."""
        if isinstance(key, bytes):
            for der, _iss, _ser, _sub, roles in self._tvs:
                if der == key:
                    return TvsEntry(cert_der=der, roles=roles, ttl=self.state.tvs_ttl)
            return None
        issuer, serial, subject = key
        want_iss = certs.dn_key(issuer)
        want_ser = certs.serial_from_bytes(serial)
        want_sub = certs.dn_key(subject)
        any_sub = want_sub == ("",)  # no subject (nothing but blanks and separators): any certificate's
        for der, iss, ser, sub, roles in self._tvs:
            if ser == want_ser and iss == want_iss and (any_sub or sub == want_sub):
                return TvsEntry(cert_der=der, roles=roles, ttl=self.state.tvs_ttl)
        return None

    def tvs_trusted(self) -> list[tuple[x509.Certificate, tuple[int, ...]]]:
        """(certificate, roles) for everything TVS vouches for."""
        return [(certs.load_cert_der(der), roles) for der, *_rest, roles in self._tvs]

    def _tvs_entries(self) -> list[tuple[Identity | x509.Certificate, tuple[int, ...]]]:
        out: list[tuple[Identity | x509.Certificate, tuple[int, ...]]] = [
            (self.pki.get("itlrecovery"), (Role.SAST,)), (self.pki.get("capf"), (Role.CAPF,))]
        for n in range(1, self.state.nodes + 1):
            out.append((self.callmanager(n), (Role.SAST, Role.CCM_TFTP)))
            out.append((self.tvs_identity(n), (Role.TVS,)))
        out += [(self.pki.get(f"extra-{i}"), (Role.TVS,)) for i in range(1, self.state.extra_certs + 1)]
        if self.state.https_key is not None:
            out.append((self.pki.get("tftp-https"), (Role.TFTP,)))
        for t in self.state.tvs_trust:
            found = certs.load_certs_pem(t.pem.encode(), source="tvs_trust")
            out += [(c, tuple(t.roles)) for c in found]
        return out

    def _index_tvs(self) -> None:
        index = []
        for item, roles in self._tvs_entries():
            cert = item.cert if isinstance(item, Identity) else item
            index.append((certs.cert_der(cert), certs.dn_key(certs.dn_text(cert.issuer)),
                          cert.serial_number, certs.dn_key(certs.dn_text(cert.subject)), roles))
        self._tvs = index

    # ============================================================== admin operations (spec §G)
    def regenerate(self, cert: str, *, now: Now = None) -> None:
        """Regenerate an identity (``callmanager``, ``tvs``, ``itlrecovery``, ``capf``, or ``tvs-2`` ...)."""
        base = cert.split("-", 1)[0]
        valid = set(self._core_names(self.state.nodes)) - {"mfgca", "imagesigning"}
        if base not in _REGENERATABLE or cert not in valid:
            raise EncodeError(f"cannot regenerate {cert!r}: {_regeneratable_text(self.state.nodes)}",
                              path="cert")
        self._tick(now)
        gen = self.state.identity_generations.get(cert, 0) + 1
        years = self.state.itlrecovery_years if cert == "itlrecovery" else None
        self.pki.forget(cert)
        self.pki.create(cert, now=self.state.clock, generation=gen, years=years, staged=True)
        self.state.identity_generations[cert] = gen
        self._commit("regenerate", {"cert": cert, "identity_generation": gen}, now)

    def untaken_regenerations(self, *, at_reset: bool = False) -> UntakenRegenerations | None:
        """Whether the change log shows the signer of the list a phone checks first now (the CTL where one is
        served, else the ITL: :class:`UntakenRegenerations`) and every TVS the configs name new since the
        phones were last taken to hold the lists served: a phone still holding those of before refuses the
        new signer, TVS presenting a certificate its ITL lacks (``G.3.4-tvs-server-untrusted``).
        ``at_reset``: the last change log entry is a reset point just made (``itl-reset``, ``ctl-reset``, or
        the ``ctl-update`` closing one), counted from the reset point before it (the lockout it leaves a phone
        that took no lists since: ``lab itl-reset``'s, ``ctl-reset``'s and ``ctl-update``'s warnings).
        CUCM regenerates one certificate at a time, the phones reset between, the ITL bringing them the new
        TVS certificate (seed Initial Trust List). None when not both (a TVS the configs name not new answers;
        a signer they hold vouches), or before 8.0 (no ITL).

        What the rule assumes (ours): the lab records no boot, so the phones are taken to be reset only where
        the seed's procedure resets them, the bulk ITL reset and the CTL reset (:data:`PHONES_RESET_AT`), and
        to take the lists there only where no lasting lockout was in force (:data:`_LISTS_TAKEN`); not by a
        ``restart-tftp`` alone, a regeneration, ``rollback`` (CUCM 10.5 and later restarts them itself, the
        lab does not: a phone booted in between is not seen) or by erasing a phone's lists. A certificate is
        new where regenerated since; ITLRecovery's where imported too, unless the certificate held now is one
        the phones held then: one that an ``itlrecovery export`` made while it was held wrote, in that file as
        the last export to it left it (read now: gone, unreadable or changed, it is not known, and counted as
        new)."""
        st = self.state
        if st.pre_8_0:
            return None
        start = self._phones_reset_index(len(st.log) - 1 if at_reset else len(st.log))
        window = st.log[start + 1:] if start is not None else st.log
        changed = [e for e in window if _replaced(e) is not None]
        new = {str(_replaced(e)) for e in changed}
        if "itlrecovery" in new and self._recovery_held_at(start):
            new.discard("itlrecovery")
        itl_signer = st.itl_signer if st.itl_signer in new else None
        ctl_signer = st.ctl_signer if st.ctl_exists and st.ctl_signer in new else None
        tvs = self._tvs_named()
        if (ctl_signer if st.ctl_exists else itl_signer) is None or not set(tvs) <= new:
            return None
        since = st.log[start] if start is not None else None
        found = UntakenRegenerations(itl_signer=itl_signer, ctl_signer=ctl_signer, tvs=tvs,
                                     new=frozenset(new), entries=(), since=since, ctl_served=st.ctl_exists)
        return replace(found, entries=tuple(e for e in changed if _replaced(e) in found.at_stake))

    def _phones_reset_index(self, end: int) -> int | None:
        """The index in the change log's first ``end`` entries of the last :data:`PHONES_RESET_AT` entry the
        phones took the lists at: an ``itl-reset`` or ``ctl-reset``, or the first ``restart-tftp`` /
        ``ctl-update`` after one (closing it, :data:`_RESET_CLOSED_BY`), not recorded as leaving them locked
        (:data:`_LISTS_TAKEN`; was: every one, so a reset that left them locked, and the restart closing it,
        counted as taken); None without one."""
        point: int | None = None
        open_resets: set[str] = set()
        closed = {close: reset for reset, close in _RESET_CLOSED_BY.items()}
        for i, entry in enumerate(self.state.log[:end]):
            if entry.op in _RESET_CLOSED_BY:
                open_resets.add(entry.op)
            elif closed.get(entry.op) in open_resets:
                open_resets.discard(closed[entry.op])
            else:
                continue
            if entry.args.get(_LISTS_TAKEN) is not False:
                point = i
        return point

    def _lists_untaken(self) -> bool:
        """Whether the phones reset now, the change log's last entry not yet this one, take no ITL: a lockout
        in force with the lists served now, counted from the reset point before
        (:meth:`untaken_regenerations`), that lasts (:attr:`UntakenRegenerations.lasting`: a phone refusing
        only the CTL takes the ITL, which names the CTL's new signer, checked with real boots:
        tests/unit/test_walk_s35_p11_regenerate_lockout_warning.py)."""
        found = self.untaken_regenerations()
        return found is not None and found.lasting

    def _reset_open(self, reset: str) -> bool:
        """Whether the change log's last ``reset`` (``itl-reset`` or ``ctl-reset``) has not the operation
        closing it after it (:data:`_RESET_CLOSED_BY`: ``restart-tftp``, ``ctl-update``)."""
        pair = (reset, _RESET_CLOSED_BY[reset])
        return next((e.op for e in reversed(self.state.log) if e.op in pair), None) == reset

    def _recovery_held_at(self, start: int | None) -> bool:
        """Whether the ITLRecovery certificate held now is one held just after change log entry ``start``
        (None: before the first): one in the file of an ``itlrecovery export`` made while that key was held,
        the last export to that file (:meth:`untaken_regenerations`). A key is held from one entry replacing
        it (``regenerate``, ``itlrecovery import``, ``itl-reset remotekey``) to the next."""
        held_from, start_key, last_export = 0, 0, {}
        for i, entry in enumerate(self.state.log):
            restored = entry.op == "itl-reset" and entry.args.get("key") == "remotekey"
            if restored or _replaced(entry) == "itlrecovery":
                held_from = i + 1
            elif entry.op == "itlrecovery-export" and isinstance(entry.args.get("file"), str):
                last_export[str(entry.args["file"])] = held_from
            if i == start:
                start_key = held_from
        now = certs.cert_der(self.pki.get("itlrecovery").cert)
        return any(key == start_key and now in _exported_certificates(file)
                   for file, key in last_export.items())

    def _tvs_named(self) -> tuple[str, ...]:
        """The TVS identities the configs name, in their order (:meth:`_device_config`: node 1's, then each
        node whose TVS port is recorded, at most ``config.MAX_SERVERS``)."""
        st = self.state
        nodes = [1, *(n for n in range(2, st.nodes + 1) if f"tvs-{n}" in st.ports)][:config.MAX_SERVERS]
        return tuple(node_identity("tvs", n) for n in nodes)

    def set_mixed_mode(self, on: bool, *, now: Now = None) -> None:
        """Mixed mode on creates/serves the CTL; off keeps it with CCM+TFTP records emptied (§B.5)."""
        if on:
            self.state.ctl_exists = True
        elif not self.state.ctl_exists:
            raise PhoneEmuError("the cluster has never been in mixed mode (no CTL to make non-secure)")
        self.state.mixed_mode = on
        self._commit("mixed-mode", {"on": on}, now)

    def itl_reset(self, key: str = "localkey", *, key_file: str | Path | None = None,
                  now: Now = None) -> None:
        """``utils itl reset localkey|remotekey`` (§G.7): the ITL is signed by the CallManager key until
        :meth:`restart_tftp`. ``remotekey`` first restores the ITLRecovery identity from ``key_file``
        (made by :meth:`export_itlrecovery`)."""
        if key not in ("localkey", "remotekey"):
            raise EncodeError(f"itl reset {key!r}: localkey or remotekey", path="key")
        if key == "localkey" and key_file is not None:  # else the key the user named is silently not restored
            raise EncodeError("--key-file is for remotekey (localkey signs with the CallManager key and "
                              "restores nothing)", path="key_file")
        if key == "remotekey":
            if key_file is None:
                key_file = self.root / DEFAULT_EXPORT
                if not key_file.exists():
                    raise EncodeError(self._no_exported_recovery_key(key_file), path="key_file")
            ident = LabPki.read_identity_file(Path(key_file), "itlrecovery")
            self.pki.store(ident, staged=True)
        self.state.itl_signer = "callmanager"
        self._commit("itl-reset", {"key": key, _LISTS_TAKEN: False if self._lists_untaken() else None}, now)

    def _no_exported_recovery_key(self, default: Path) -> str:
        """``itl reset remotekey`` with no key file given and none at ``default`` (where a scenario's
        ``itlrecovery-export`` step keeps it): the CLI's export writes the file it is given, so the advice is
        ``--key-file`` with that file (was: "run 'itlrecovery export' first", which never writes ``default``
        from the CLI: the same error followed)."""
        if not self.pki.durable:
            return ("itl reset remotekey needs an exported recovery key: an itlrecovery-export step before "
                    "it (none exported in this scenario)")
        lab = shlex.quote(str(self.root))
        return (f"itl reset remotekey needs the ITLRecovery key exported earlier: give --key-file FILE, the "
                f"file 'phoneemu lab itlrecovery {lab} export FILE' wrote (none at {default}, read without "
                "--key-file)")

    def restart_tftp(self, *, now: Now = None) -> None:
        """TFTP service restart: the ITL is signed by its usual signer again (ITLRecovery, §G.7). Closing an
        ``itl-reset``, it records whether the phones take that ITL (:data:`_LISTS_TAKEN`)."""
        closes = self._reset_open("itl-reset")
        self.state.itl_signer = self.state.base_itl_signer
        untaken = closes and self._lists_untaken()
        self._commit("restart-tftp", {_LISTS_TAKEN: False if untaken else None}, now)

    def set_service(self, name: str, running: bool, *, now: Now = None) -> None:
        """Stop (``running=False``) or start a service of a running ``lab serve`` — ``tftp``, ``http``,
        ``tvs``, ``capf``, ``tvs-N`` (node N's TVS), ``sip`` or ``sips`` (the registrar; ``sip-N`` /
        ``sips-N`` node N's), ``https-config`` (the HTTPS config download, 6971, of a lab with the
        ``tftp-https`` identity, §H.1): a TVS outage during a certificate change (spec §E.7.6), the
        CallManager the configs name down (§H.5), 6971 down (phones take their config over HTTP/TFTP).
        Only recorded here (``stopped``); the server follows within its watch interval."""
        nodes = [f"tvs-{n}" for n in range(2, self.state.nodes + 1)]
        https = ["https-config"] if self.state.https_key is not None else []
        known = ["tftp", "http", "tvs", "capf", *nodes, "sip", "sips", *node_registrars(self.state.nodes),
                 *https]
        if name not in known:
            raise EncodeError(f"{name!r} is not a service of this cluster: one of {', '.join(known)}",
                              path="service")
        stopped = [s for s in self.state.stopped if s != name] + ([] if running else [name])
        self.state.stopped = sorted(stopped)
        self._commit("service", {"service": name, "action": "start" if running else "stop"}, now,
                     phones=[])  # no served file changes

    def restart_tvs(self, *, now: Now = None) -> None:
        """TVS restart: nothing served changes (the servers layer restarts the listener)."""
        self._commit("restart-tvs", {}, now)

    def ctl_reset(self, key: str = "localkey", *, now: Now = None) -> None:
        """``utils ctl reset localkey``: the CTL is signed by the CallManager key until ``ctl update``. A
        reset point (:data:`PHONES_RESET_AT`): it records whether the phones take the lists
        (:data:`_LISTS_TAKEN`)."""
        if key != "localkey":
            raise EncodeError(f"ctl reset {key!r}: only localkey", path="key")
        if not self.state.ctl_exists:
            raise PhoneEmuError("no CTL: turn mixed mode on first")
        self.state.ctl_signer = "callmanager"
        self._commit("ctl-reset", {"key": key, _LISTS_TAKEN: False if self._lists_untaken() else None}, now)

    def ctl_update(self, *, now: Now = None) -> None:
        """``utils ctl update CTLFile``: re-sign the CTL with ITLRecovery. Closing a ``ctl-reset``, it records
        whether the phones take the lists (:data:`_LISTS_TAKEN`)."""
        if not self.state.ctl_exists:
            raise PhoneEmuError("no CTL: turn mixed mode on first")
        closes = self._reset_open("ctl-reset")
        self.state.ctl_signer = "itlrecovery"
        untaken = closes and self._lists_untaken()
        self._commit("ctl-update", {_LISTS_TAKEN: False if untaken else None}, now)

    def add_node(self, *, now: Now = None) -> None:
        """Add a CallManager/TVS node (the next number, at most 8): its CallManager and TVS identities
        are made, its TVS certificate joins the ITL and what TVS vouches for, its CallManager one the
        CTL; device configs list its TVS once the servers record its port ("tvs-N", spec §H.5)."""
        node = self.state.nodes + 1
        if node > 8:
            raise EncodeError("a lab cluster has at most 8 nodes", path="nodes")
        self._tick(now)
        with self._put_back_on_error():  # the second identity failed: the first one staged goes too
            for base in ("callmanager", "tvs"):
                name = node_identity(base, node)
                self.pki.forget(name)
                gen = self.state.identity_generations.get(name, -1) + 1
                self.pki.create(name, now=self.state.clock, generation=gen, staged=True)
                self.state.identity_generations[name] = gen
        self.state.nodes = node
        self._commit("add-node", {"node": node}, now)

    def remove_node(self, *, now: Now = None) -> None:
        """Remove the last node (never the publisher): its TVS and CallManager certificates leave the
        ITL, the CTL and TVS; configs stop listing its TVS (seed "Trust Verification Service":
        "Addition or removal of trust certificates are automatically reflected")."""
        node = self.state.nodes
        if node <= 1:
            raise PhoneEmuError("the publisher (node 1) cannot be removed", path="nodes")
        for base in ("callmanager", "tvs"):
            self.pki.forget(node_identity(base, node))
        for svc in ("tvs", "sip", "sips"):
            self.state.ports.pop(f"{svc}-{node}", None)
        # a service of this node kept stopped goes with it: a node added later is a new one, started
        gone = {f"{svc}-{node}" for svc in ("tvs", "sip", "sips")}
        self.state.stopped = [name for name in self.state.stopped if name not in gone]
        self.state.nodes = node - 1
        self._commit("remove-node", {"node": node}, now)

    def set_rollback(self, on: bool, *, now: Now = None) -> None:
        """Prepare Cluster for Rollback to pre-8.0: serve the empty ITL (§B.7, our convention)."""
        self.state.rollback = on
        self._commit("rollback", {"on": on}, now)

    def set_digest(self, macs: Iterable[str], user: str | None, password: str | None, *,
                   exclude: bool = False, now: Now = None) -> None:
        """SIP digest credentials for phones (seed "Digest Authentication": after a reset "the credentials
        exist in the phone configuration file that the TFTP server offers to the phone"; ``exclude``:
        "Exclude Digest Credential in Configuration File"). Carried as ``<sipLines><line button="1">
        <authName>/<authPassword>``; ``user`` None removes them."""
        self._tick(now)
        if user is not None and password is None:
            raise EncodeError("digest: a user needs a password", path="password")
        changed = []
        for mac in macs:
            ph = self._phone(mac)
            ph.digest_user = None if user is None else str(user)
            ph.digest_password = None if user is None else str(password)
            ph.exclude_digest = exclude
            changed.append(ph.mac)
        self._commit("digest", {"macs": list(macs), "user": user, "exclude": exclude}, now, phones=changed)

    def set_calling_search_space(self, macs: Iterable[str], *, partition: str | None = None,
                                 css: Sequence[str] | None = None, now: Now = None) -> None:
        """The dial plan of phones (seed "Authorization": "calling search spaces and partitions"; our
        convention, :mod:`.dial_plan`): their line's ``partition`` (``<None>`` or "": back to none) and
        their calling search space ``css`` (the partitions their calls reach; empty: ``<None>`` only).
        None leaves that part as it is; at least one is given. No served file changes: the registrar reads
        the dial plan at each call (:meth:`dial_plan`)."""
        macs = [_mac(m) for m in macs]
        if not macs:
            raise EncodeError("no phone given", path="macs")
        if partition is None and css is None:
            raise EncodeError("give a partition, a calling search space, or both", path="partition")
        stored = None if partition is None else partition_arg(partition)
        names = None if css is None else css_arg(css)
        updated = {}
        for mac in macs:
            ph = replace(self._phone(mac))
            if partition is not None:
                ph.partition = stored
            if names is not None:
                ph.calling_search_space = list(names)
            updated[mac] = ph
        self.state.phones.update(updated)
        self._commit("calling-search-space", {"macs": macs, "partition": partition, "css": names}, now,
                     phones=[])

    def dial_plan(self, mac: str) -> DialPlan | None:
        """Phone ``mac``'s partition and calling search space (:mod:`.dial_plan`); None: no such phone."""
        ph = self.state.phones.get(mac)
        return None if ph is None else DialPlan(ph.partition, tuple(ph.calling_search_space))

    def set_secure_urls(self, scheme: str, *, now: Now = None) -> None:
        """The enterprise parameters' secure service URLs: ``https`` (CUCM's) or ``http`` — the workaround
        while phones cannot verify the directory server (seed "Update ITL File for Cisco Unified IP Phones"
        step 4, "Roll Back Cluster to a Pre-8.0 Release"; spec §G.11: "make 'secure' URLs plain HTTP").
        With ``http`` every config names ``secureDirectoryURL`` http://HOST:8080/ccmcip/xmldirectory.jsp
        (ours: without the element a phone uses the directory over HTTPS); phones take it at their next
        config download (a reset)."""
        if scheme not in SECURE_URL_SCHEMES:
            raise EncodeError(f"secure URLs scheme {scheme!r}: one of {', '.join(SECURE_URL_SCHEMES)}",
                              path="scheme")
        self._tick(now)
        self.state.secure_urls_http = scheme == "http"
        self._commit("secure-urls", {"scheme": scheme}, now)

    def set_itl_capf(self, on: bool, *, now: Now = None) -> None:
        """Whether the ITL carries a CAPF record. Without it the phone cannot find the CAPF server's
        certificate locally and asks TVS, which knows it with role CAPF (seed "Initial Trust List": "The
        CAPF certificate isn't required in the ITL File (TVS can authenticate it)"; spec §F.1, §G.5)."""
        self._tick(now)
        self.state.itl_capf = on
        self._commit("itl-capf", {"on": on}, now)

    def add_certs(self, count: int, *, now: Now = None) -> None:
        """Add ``count`` extra certificates to the ITL (and to TVS) with role TVS.

        CUCM lists every TVS certificate of the cluster in the ITL, so a large cluster grows the
        ITL by one TVS record per node; that is what these stand for. They share one key (only the
        record size matters: crossing 64 KB / ~39 certificates, spec §B.5) but are distinct
        certificates with their own subject and serial.
        """
        if not isinstance(count, int) or not 1 <= count <= 200:
            raise EncodeError(f"count must be 1..200, got {count!r}", path="count")
        self._tick(now)
        start = self.state.extra_certs
        with self._put_back_on_error():  # one certificate failed: those staged before it go too
            for i in range(start + 1, start + count + 1):
                name = f"extra-{i}"
                self.pki.create(name, now=self.state.clock, generation=0,
                                shared_key_of=None if i == 1 else "extra-1", staged=True)
                self.state.identity_generations[name] = 0
        self.state.extra_certs = start + count
        self._commit("add-certs", {"count": count, "total": self.state.extra_certs}, now)

    def remove_certs(self, count: int | None = None, *, now: Now = None) -> None:
        """Remove the last ``count`` extra certificates (None: all) from the ITL and TVS — back under
        64 KB after an oversized-ITL test (:meth:`add_certs`)."""
        have = self.state.extra_certs
        if count is None:
            count = have
        if not isinstance(count, int) or not 1 <= count <= have:
            raise EncodeError(f"count must be 1..{have} (the extra certificates the ITL holds), got {count!r}"
                              if have else "the ITL holds no extra certificates (add-certs adds them)",
                              path="count")
        self.state.extra_certs = have - count
        self._commit("remove-certs", {"count": count, "total": self.state.extra_certs}, now)

    def set_encryption(self, macs: Iterable[str], on: bool, *, mode: str = "pki",
                       symmetric_key: str | None = None, now: Now = None) -> None:
        """Configuration file encryption per phone (§C.3-C.5)."""
        macs = [_mac(m) for m in macs]
        if not macs:
            raise EncodeError("no phone given", path="macs")
        updated = {}
        for mac in macs:
            ph = replace(self._phone(mac))
            if on:
                self._set_encryption(ph, mode, symmetric_key, explicit=True)
                _check_manual_key(ph)
                if ph.encrypt == "pki":
                    self._check_pki_recipient(mac)
            else:
                ph.encrypt = None
            updated[mac] = ph
        self.state.phones.update(updated)
        self._commit("encryption", {"macs": macs, "on": on, "mode": mode if on else None}, now, phones=macs)

    def set_security_mode(self, macs: Iterable[str], mode: str | int, *, now: Now = None) -> None:
        """Device security mode of the phones' security profile (``deviceSecurityMode``, spec §H.5, §G.9):
        ``non-secure`` (1), ``authenticated`` (2, TLS) or ``encrypted`` (3, TLS + SRTP)."""
        macs = [_mac(m) for m in macs]
        if not macs:
            raise EncodeError("no phone given", path="macs")
        code = _SECURITY_MODES.get(str(mode).lower())
        if code is None:
            raise EncodeError(f"security mode {mode!r}: one of {', '.join(_SECURITY_MODES)}", path="mode")
        updated = {}
        for mac in macs:
            ph = replace(self._phone(mac))
            ph.security_mode = code
            updated[mac] = ph
        self.state.phones.update(updated)
        self._commit("security-mode", {"macs": macs, "mode": code}, now, phones=macs)

    def set_signature_algorithm(self, hash_name: str | int, *, now: Now = None) -> None:
        """TFTP file signature algorithm enterprise parameter: SHA-1 or SHA-512 (§A.4 codes 1/3)."""
        code = _HASHES.get(str(hash_name).lower())
        if code is None:
            raise EncodeError(f"signature algorithm {hash_name!r}: sha1 or sha512", path="hash")
        self.state.hash_alg = code
        self._commit("signature-algorithm", {"hash": "sha1" if code == 1 else "sha512"}, now)

    def set_upgraded(self, on: bool, *, years: int | None = None, now: Now = None) -> None:
        """Mark the cluster as upgraded or not, spec §G.8. CUCM carries the ITLRecovery certificate
        over an upgrade, so the current one is kept as it is; a regenerated one lasts ``years``
        (1..30; None: unchanged, 20 unless chosen otherwise) — the seed: "when you regenerate an
        ITLRecovery certificate ... the validity of ITLRecovery gets extended to 20 years".
        """
        if years is not None and not 1 <= years <= 30:
            raise EncodeError(f"ITLRecovery validity {years} years outside 1..30", path="years")
        self.state.upgraded = on
        if years is not None:
            self.state.itlrecovery_years = years
        self._commit("upgraded", {"on": on, "years": self.state.itlrecovery_years}, now)

    def itlrecovery_validity_years(self) -> int:
        """The validity period of the current ITLRecovery certificate in whole years (what the
        administrator sees under Certificate Management, seed "View the Validity Period of ITLRecovery
        Certificate")."""
        cert = self.identity("itlrecovery").cert
        return cert.not_valid_after_utc.year - cert.not_valid_before_utc.year

    def exchange_certificates(self, other: LabCluster | str | Path, *, store: str = "both",
                              now: Now = None) -> None:
        """Bulk certificate exchange (§G.6): each TVS then vouches for the other's CallManager and
        ITLRecovery certificates with the roles of ``store`` (:data:`EXCHANGE_STORES`: ``both``, SAST +
        TFTP; ``callmanager-trust``, TFTP — ours). Both labs are written: a caller beside other writers
        holds both lab locks (``lab exchange``: :func:`phoneemu.lab.lock.hold_lab_locks`)."""
        roles = EXCHANGE_STORES.get(store)
        if roles is None:
            raise EncodeError(f"exchange: unknown store {store!r} (expected one of: "
                              f"{', '.join(EXCHANGE_STORES)})", path="store")
        peer = other if isinstance(other, LabCluster) else LabCluster.open(other)
        if _same_folder(peer.root, self.root):  # by any path (was: resolved paths; a bind mount's differ)
            raise PhoneEmuError("cannot exchange certificates with the same cluster")
        a_certs = self.exported_certs()
        b_certs = peer.exported_certs()
        peer._import_trust(b_certs_source=self.state.name, found=a_certs, store=store, now=now)
        self._import_trust(b_certs_source=peer.state.name, found=b_certs, store=store, now=now)

    def app_server_identity(self, *, now: Now = None) -> Identity:
        """The HTTPS application server ("directory service") identity ``tomcat``, made on demand.

        Like CUCM's Tomcat certificate it is self-signed RSA-2048 and NOT in the ITL; the cluster's TVS
        vouches for it with role APP-SERVER (7), added to the TVS trust database like an imported
        certificate (spec §E.7.1, §G.5 "HTTPS XML services: APP-SERVER role, or TVS"). A new one goes with
        the state's save that records it, staged as an operation's identities are (was: written in place
        before it: a ``lab serve`` killed between left the pair under a state whose TVS did not know it).
        """
        try:
            ident = self.pki.get("tomcat")
        except DecodeError:
            t = _unix(now)
            ident = self.pki.create("tomcat", now=self.state.clock if t is None else t, generation=0,
                                    spec=KeySpec.parse("rsa2048"), staged=True)
        pem = cert_pem(ident.cert).decode()
        known = any(t.pem == pem for t in self.state.tvs_trust)
        if not known:
            # Only the TVS database changes (no served file does): index and save, no rebuild.
            self.state.tvs_trust.append(TrustedCert(pem=pem, roles=[int(Role.APP_SERVER)], source="tomcat"))
            self._tick(now)
            self.state.add_log(LogEntry(time=self.state.clock, generation=self.state.generation,
                                       op="app-server", args={"cert": "tomcat"}))
            self._index_tvs()
        if not known or "tomcat" in self.pki.staged_names():
            self._save_served()  # the staged identity with it (none staged: the state alone)
        return ident

    def exported_certs(self) -> list[x509.Certificate]:
        """What a bulk certificate export of this cluster carries: ITLRecovery and each node's CallManager."""
        out = [self.pki.get("itlrecovery").cert]
        out += [self.callmanager(n).cert for n in range(1, self.state.nodes + 1)]
        return out

    def _import_trust(self, *, b_certs_source: str, found: list[x509.Certificate], store: str,
                      now: Now) -> None:
        """Import ``found`` into ``store`` (:data:`EXCHANGE_STORES`). A certificate imported before keeps
        its entry and gains the roles it lacks: in another store too, TVS answers both stores' roles (ours,
        as §G.4's proxy fix: imported into Phone-SAST-trust, TVS vouches for it)."""
        roles = [int(r) for r in EXCHANGE_STORES[store]]
        have = {t.pem: t for t in self.state.tvs_trust}
        added = 0
        for cert in found:
            pem = cert_pem(cert).decode()
            known = have.get(pem)
            if known is None:
                self.state.tvs_trust.append(TrustedCert(pem=pem, roles=roles, source=b_certs_source))
                added += 1
            else:
                known.roles = sorted(set(known.roles) | set(roles))
        self._commit("exchange", {"with": b_certs_source, "store": store, "added": added}, now)

    def tamper(self, name: str, *, offset: int | None = None, now: Now = None) -> int:
        """Flip one byte (default: the last) of served file ``name`` until a change rebuilds that file (module
        rules: a cluster-wide operation, not a one-phone change such as ``phone add``)."""
        name = name.lstrip("/")  # as get() reads it (was: "/ITLFile.tlv" written at the file system's root)
        data = self.get(name)
        if data is None:
            served = _served_names_text(sorted(self._files), self.root if self.pki.durable else None)
            raise PhoneEmuError(f"no served file {name!r}; {served}", path="file")
        tampered, off = _flip(data, offset)
        targets = [name]
        if name in ("ITLFile.tlv", "CTLFile.tlv"):
            prefix = name[:3] + "SEP"
            targets += [n for n in self._files if n.startswith(prefix)]
        change = self._served_change()  # all the copies or none (a kill between two served a mix)
        for t in targets:
            self._files[t] = tampered
            self.state.tampered[t] = off
            change.put(t, tampered, same_as=name)
        self._tick(now)
        self.state.add_log(LogEntry(time=self.state.clock, generation=self.state.generation,
                                   op="tamper", args={"file": name, "offset": off}))
        self._save_served()
        return off

    def set_sbd(self, on: bool, *, now: Now = None) -> None:
        """Security By Default for the default config: on = also serve ``XmlDefault.cnf.xml.sgn``."""
        self.state.sbd = on
        self._commit("sbd", {"on": on}, now)

    def set_autoregistration(self, on: bool, *, now: Now = None) -> None:
        self.state.autoregistration = on
        self._commit("autoregistration", {"on": on}, now)

    def set_tvs_ttl(self, seconds: int, *, now: Now = None) -> None:
        if not isinstance(seconds, int) or not 1 <= seconds <= 2_592_000:
            raise EncodeError(f"TVS TTL {seconds!r} outside 1..2592000 s (spec §H.2)", path="seconds")
        self.state.tvs_ttl = seconds
        self._commit("tvs-ttl", {"seconds": seconds}, now)

    def set_load(self, name: str, *, macs: Iterable[str] = (), tamper: bool = False, now: Now = None) -> None:
        """Name firmware ``name`` in ``loadInformation`` (cluster-wide, or for ``macs``); ``tamper`` serves
        a load whose signature does not verify (persistently, unlike :meth:`tamper`)."""
        firmware.loads_file_name(name)
        macs = [_mac(m) for m in macs]
        for mac in macs:
            self._phone(mac).load = name
        if not macs:
            self.state.load = name
        self.state.loads[name] = bool(tamper)
        self._commit("load", {"name": name, "macs": macs, "tamper": bool(tamper)}, now)

    def set_capf(self, macs: Iterable[str], operation: str, *, auth_mode: int | str | None = None,
                 auth_string: str | int | None = None, key: str | None = None, now: Now = None) -> None:
        """Set a pending CAPF operation (install/fetch/delete/none) on phones (spec §F)."""
        macs = [_mac(m) for m in macs]
        if not macs:
            raise EncodeError("no phone given", path="macs")
        updated = {}
        for mac in macs:
            ph = replace(self._phone(mac))
            self._set_capf(ph, operation, _auth_mode(auth_mode),
                           None if auth_string is None else str(auth_string), key)
            if ph.capf_operation == "install" and ph.encrypt == "pki" and ph.lsc_key is not None \
                    and not ph.lsc_key.startswith("rsa"):
                raise EncodeError(f"phone {mac}: its config is encrypted for its certificate (PKI, "
                                  f"spec §C.3), which needs an RSA key, and an {ph.lsc_key} LSC could not "
                                  "be wrapped to: --lsc-key rsa2048, or lab encryption ... --mode symmetric "
                                  "first", path="lsc_key")
            updated[mac] = ph
        self.state.phones.update(updated)
        mode = _auth_mode(auth_mode) if auth_mode is not None else (1 if auth_string is not None else None)
        self._commit("capf", {"macs": macs, "operation": operation, "auth_mode": mode}, now, phones=macs)

    def set_host(self, host: str, *, now: Now = None) -> bool:
        """Name ``host`` in the configs (TVS and CAPF servers) and the ITL/CTL records instead of the
        ``lab init --host`` address; the same signers sign the re-issued files (G.3.3: phones follow).
        Returns whether anything changed."""
        host = check_host(host)
        if host == self.state.host:
            return False
        old, self.state.host = self.state.host, host
        self._commit("host", {"host": host, "was": old}, now)
        return True

    def set_ports(self, *, now: Now = None, **ports: int) -> None:
        """Record the ports the servers really listen on (configs name them, spec §H.5). ``https-config``
        (the 6971 server of a lab with the ``tftp-https`` identity, §H.1) is recorded for ``boot --lab``;
        no config names it, so a change of it alone rebuilds no file."""
        changed = named = False
        for svc, port in ports.items():
            node = re.fullmatch(r"(?:tvs|sips?)-([2-8])", svc)  # the TVS, registrar of node 2..8
            node_ok = node is not None and int(node[1]) <= self.state.nodes
            https_ok = svc == "https-config" and self.state.https_key is not None
            if svc not in ("tftp", "http", "tvs", "capf", "sip", "sips") and not node_ok and not https_ok:
                raise EncodeError(f"unknown service {svc!r}", path="ports")
            if not isinstance(port, int) or not 0 < port < 65536:
                raise EncodeError(f"port {port!r} for {svc} outside 1..65535", path=f"ports.{svc}")
            if self.state.ports.get(svc) != port:
                changed = True
                named |= not https_ok
            self.state.ports[svc] = port
        if changed:
            self._commit("ports", dict(ports), now, phones=None if named else [])

    def advance_clock(self, seconds: int) -> None:
        """Move the lab clock forward (scenarios: expiry, TTLs); does not rebuild files."""
        if seconds < 0:
            raise EncodeError("the lab clock only moves forward", path="seconds")
        self.state.clock = check_time(self.state.clock + seconds, "lab clock")
        self.state.add_log(LogEntry(time=self.state.clock, generation=self.state.generation,
                                   op="clock", args={"advance": seconds}))
        self._save()

    def export_itlrecovery(self, path: str | Path | None = None) -> None:
        """``file get tftp ITLRecovery.p12`` stand-in: cert + key PEM, mode 0600 (§G.7); by default into
        ``DIR/exported/itlrecovery.pem``, which ``itl reset remotekey`` uses when no file is given."""
        path = self.root / DEFAULT_EXPORT if path is None else Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.pki.export_identity("itlrecovery", Path(path))
        self.state.add_log(LogEntry(time=self.state.clock, generation=self.state.generation,
                                   op="itlrecovery-export", args={"file": str(path)}))
        self._save()

    def import_itlrecovery(self, path: str | Path, *, now: Now = None) -> None:
        """Replace the ITLRecovery identity with an exported one."""
        self.pki.store(LabPki.read_identity_file(Path(path), "itlrecovery"), staged=True)
        self._commit("itlrecovery-import", {"file": str(path)}, now)

    def _tamper_op(self, name: str, offset: Any, now: Now) -> None:
        self.tamper(name, offset=None if offset is None else int(offset), now=now)

    # --- dispatcher (scenarios) ----------------------------------------------------------------
    def apply(self, op: str, *, now: Now = None, **args: Any) -> None:
        """Run admin operation ``op`` with scenario-style arguments (see ``scenario.loader``)."""
        macs = list(args.pop("macs", []) or [])
        handlers: dict[str, Callable[[], None]] = {
            "regenerate": lambda: self.regenerate(str(args["cert"]), now=now),
            "mixed-mode": lambda: self.set_mixed_mode(_bool(args.get("on", True), "on"), now=now),
            "itl-reset": lambda: self.itl_reset(str(args.get("key", "localkey")),
                                                key_file=args.get("key_file"), now=now),
            "restart-tftp": lambda: self.restart_tftp(now=now),
            "itlrecovery-export": lambda: self.export_itlrecovery(args.get("file")),
            "restart-tvs": lambda: self.restart_tvs(now=now),
            "ctl-reset": lambda: self.ctl_reset(str(args.get("key", "localkey")), now=now),
            "ctl-update": lambda: self.ctl_update(now=now),
            "rollback": lambda: self.set_rollback(_bool(args.get("on", True), "on"), now=now),
            "digest": lambda: self.set_digest(
                macs or list(self.state.phones), args.get("user"), args.get("password"),
                exclude=_bool(args.get("exclude", False), "exclude"), now=now),
            "itl-capf": lambda: self.set_itl_capf(_bool(args.get("on", True), "on"), now=now),
            "secure-urls": lambda: self.set_secure_urls(str(args.get("scheme", "https")), now=now),
            "calling-search-space": lambda: self.set_calling_search_space(
                macs or list(self.state.phones), partition=args.get("partition"), css=args.get("css"),
                now=now),
            "add-node": lambda: self.add_node(now=now),
            "remove-node": lambda: self.remove_node(now=now),
            "add-certs": lambda: self.add_certs(int(args["count"]), now=now),
            "remove-certs": lambda: self.remove_certs(
                None if args.get("count") is None else int(args["count"]), now=now),
            "encryption": lambda: self.set_encryption(
                macs or list(self.state.phones), _bool(args.get("on", True), "on"),
                mode=str(args.get("mode", "pki")), symmetric_key=args.get("symmetric_key"), now=now),
            "signature-algorithm": lambda: self.set_signature_algorithm(args["hash"], now=now),
            "security-mode": lambda: self.set_security_mode(macs or list(self.state.phones), args["mode"],
                                                            now=now),
            "exchange": lambda: self.exchange_certificates(
                args["other"], store=str(args.get("store", "both")), now=now),
            "load": lambda: self.set_load(str(args["name"]), macs=macs, tamper=bool(args.get("tamper")),
                                          now=now),
            "capf": lambda: self.set_capf(
                macs or list(self.state.phones), str(args.get("operation", "install")),
                auth_mode=args.get("auth_mode"), auth_string=args.get("auth_string"), key=args.get("key"),
                now=now),
            "autoregistration": lambda: self.set_autoregistration(_bool(args.get("on", True), "on"), now=now),
            "tvs-ttl": lambda: self.set_tvs_ttl(int(args["seconds"]), now=now),
            "sbd": lambda: self.set_sbd(_bool(args.get("on", True), "on"), now=now),
            "upgraded": lambda: self.set_upgraded(_bool(args.get("on", True), "on"), years=args.get("years"),
                                                  now=now),
            "tamper": lambda: self._tamper_op(str(args["file"]), args.get("offset"), now),
            "ports": lambda: self.set_ports(now=now, **{k: int(v) for k, v in args.items()}),
            "clock": lambda: self.advance_clock(int(args["advance"])),
        }
        handler = handlers.get(op)
        if handler is None:
            raise EncodeError(f"unknown lab operation {op!r}; one of {', '.join(ADMIN_OPERATIONS)}",
                              path="op")
        try:
            handler()
        except KeyError as exc:
            raise EncodeError(f"{op}: missing argument {exc.args[0]!r}", path=op) from None
        except (TypeError, ValueError) as exc:
            raise EncodeError(f"{op}: bad argument: {exc}", path=op) from None

    # ============================================================== state changes
    def _tick(self, now: Now) -> None:
        t = _unix(now)
        if t is not None:
            self.state.clock = t

    def _commit(self, op: str, args: dict[str, Any], now: Now, *, bump: bool = True,
                phones: list[str] | None = None) -> None:
        """Log ``op``, bump the generation, rebuild (all files, or only ``phones``' files), save. One that
        fails (its files, its save) puts the cluster back as saved — state, served files, identities — unless
        inside :meth:`saved_once` (whose caller undoes its own): was: the operation's state, files and
        staged identities left in memory, written in part by the next save of the same cluster (a state-only
        save recorded a regeneration whose key it did not write; a phone's files put beside the lists of
        before, the new key in force)."""
        try:
            self._tick(now)
            if bump:
                self.state.generation += 1
            self.state.add_log(LogEntry(time=self.state.clock, generation=self.state.generation, op=op,
                                       args={k: v for k, v in args.items() if v is not None}))
            if phones is None or "ITLFile.tlv" not in self._files:
                self._rebuild()
            else:
                self._rebuild_phones(phones)
            self._save_served()
        except Exception:
            if self._after_save is None:
                self._put_back_as_saved()
            raise

    @contextlib.contextmanager
    def _put_back_on_error(self) -> Iterator[None]:
        """An operation's steps before its :meth:`_commit` (identities or MICs staged, the state changed in
        memory): one that fails puts the cluster back as saved, as :meth:`_commit` does (was: what it staged
        left in memory, saved by the next operation of the same cluster object: a node's identities, a
        phone the failed ``add_phones`` had added)."""
        try:
            yield
        except Exception:
            if self._after_save is None:
                self._put_back_as_saved()
            raise

    def _put_back_as_saved(self) -> None:
        """After an operation failed: the cluster as saved again (:meth:`_reload`); a lab that cannot be read
        now is left as it is, the operation's error said."""
        self._drop_change()
        with contextlib.suppress(PhoneEmuError, OSError):
            self._reload(self._state_mtime())
            self._unsaved = False

    def _served_change(self) -> _ServedChange:
        """The change of served files under way (:class:`_ServedChange`): one per save, so the changes of a
        :meth:`saved_once` group share one; one a failed save (or a killed process) left is settled first."""
        change = self._change
        if change is not None and self._after_save is not None and change.group is self._after_save:
            return change
        self._drop_change()
        _settle_served(self.root)
        change = _ServedChange(self.root / "tftp", _state_digest(self.root))
        change.begin()
        change.group = self._after_save
        change.durable = self.pki.durable
        self._change = change
        return change

    def _drop_change(self) -> None:
        """Let go of a change of served files a failure left (settled by the next reader or change)."""
        change, self._change = self._change, None
        if change is not None:
            change.release()

    def _save_served(self) -> None:
        """Save the state with the change of served files under way: its note written, the state saved (the
        commit point), then its files put in place (after :meth:`saved_once`'s one save, inside one). A save
        that fails leaves the lab as :func:`_settle_served` finds it: the old files while the old state
        stands (and :meth:`_commit` puts the cluster that tried back as saved)."""
        change = self._change
        if change is None and self.pki.has_staged():
            change = self._served_change()  # a change of identities alone: staged all the same
        if change is None:
            self._save()
            return
        self.pki.write_staged()  # before the note: an identity counts once the note names the state
        change.seal()
        try:
            self._save()
        except BaseException:
            self.pki.drop_staged()
            self._drop_change()
            with contextlib.suppress(PhoneEmuError):
                _settle_served(self.root)
            raise
        self._after_saving(self._put_served)

    def _put_served(self) -> None:
        """Put the change of served files in place (the state naming them is saved)."""
        change, self._change = self._change, None
        self.pki.staged_saved()
        if change is not None:
            change.apply()

    def _put_unsaved(self) -> None:
        """Put in place the files a rebuild of the state as saved made (:meth:`open`): no save to wait for,
        so a kill while they are put is finished by the next reader, never rolled back."""
        change = self._change
        if change is not None:
            change.before = None
            change.seal()
            self._put_served()

    def _rebuild(self) -> None:
        if self.on_rebuild is not None:
            self.on_rebuild(len(self.state.phones))
        self._rand_counter = 0
        tampered = set(self.state.tampered)
        self.state.tampered.clear()
        files = self._build_files()
        for name in ("ITLFile.tlv", "CTLFile.tlv"):
            old = self._files.get(name)
            if name in files and old is not None and name not in tampered \
                    and _same_trust_list(old, files[name]):
                files[name] = old
                for other in files:
                    if other.startswith(name[:3] + "SEP"):
                        files[other] = old
        tftp = self.root / "tftp"
        change = self._served_change()
        for name, data in files.items():
            if self._files.get(name) != data or not (tftp / name).exists():
                change.put(name, data, same_as=_list_copied(name, data, files))
        for p in tftp.iterdir():
            if p.is_file() and p.name not in files and not p.name.startswith(_PENDING):
                change.remove(p.name)
        self._files = files
        self._index_tvs()

    def _rebuild_phones(self, macs: list[str]) -> None:
        """Rebuild only the files of ``macs`` (device configs and per-device trust-list copies)."""
        self._rand_counter = 0
        tftp = self.root / "tftp"
        change = self._served_change()
        for mac in macs:
            fresh = self._phone_all_files(mac, self._files)
            # The names a phone's files can have (looked up, not scanned: O(1) per phone, not O(files)).
            candidates = set(fresh) | {f"ITLSEP{mac}.tlv", f"CTLSEP{mac}.tlv",
                                       *(config.config_file_name(mac, k) for k in ("plain", "sgn", "enc"))}
            old = {n for n in candidates if n in self._files}
            for name in old - set(fresh):
                del self._files[name]
                self.state.tampered.pop(name, None)
                change.remove(name)
            for name, data in fresh.items():
                self.state.tampered.pop(name, None)
                if self._files.get(name) != data or not (tftp / name).exists():
                    change.put(name, data, same_as=_list_copied(name, data, self._files))
                self._files[name] = data

    def _phone_all_files(self, mac: str, base: Mapping[str, bytes]) -> dict[str, bytes]:
        out = {f"ITLSEP{mac}.tlv": base["ITLFile.tlv"]} if "ITLFile.tlv" in base else {}
        if "CTLFile.tlv" in base:
            out[f"CTLSEP{mac}.tlv"] = base["CTLFile.tlv"]
        out.update(self._phone_files(self.state.phones[mac], self.callmanager(1).signer))
        return out

    def _rand(self, label: str) -> Callable[[int], bytes]:
        """Randomness for encrypted files: os.urandom, or a hash stream in seeded mode."""
        if self.state.seed is None:
            return os.urandom
        self._rand_counter += 1
        base = f"{self.state.seed}:{self.state.generation}:{label}:{self._rand_counter}".encode()
        blocks = [0]

        def rand(n: int) -> bytes:
            out = b""
            while len(out) < n:
                blocks[0] += 1
                out += hashlib.sha256(base + blocks[0].to_bytes(4, "big")).digest()
            return out[:n]

        return rand

    # ============================================================== building
    def _record(self, ident: Identity, role: int) -> TrustRecord:
        host = self.state.host
        return TrustRecord.from_certificate(ident.cert, role, dns_name=host, ip=_ip(host))

    def itl_records(self) -> list[TrustRecord]:
        """ITL records in our order: ITLRecovery SAST, CallManager SAST and CCM+TFTP, CAPF, TVS..."""
        cm = self.callmanager(1)
        recs = [self._record(self.pki.get("itlrecovery"), Role.SAST), self._record(cm, Role.SAST),
                self._record(cm, Role.CCM_TFTP)]
        if self.state.itl_capf:
            recs.append(self._record(self.pki.get("capf"), Role.CAPF))
        recs += [self._record(self.tvs_identity(n), Role.TVS) for n in range(1, self.state.nodes + 1)]
        if self.state.https_key is not None:
            recs.append(self._record(self.pki.get("tftp-https"), Role.TFTP))
        recs += [self._record(self.pki.get(f"extra-{i}"), Role.TVS)
                 for i in range(1, self.state.extra_certs + 1)]
        return recs

    def ctl_records(self) -> list[TrustRecord]:
        """CTL records: SAST ITLRecovery + CallManager, CCM+TFTP per node and CAPF; non-secure: CCM+TFTP
        records emptied, CAPF without its SIGNATURE field (spec §B.5, §B.6)."""
        host = self.state.host
        recs = [self._record(self.pki.get("itlrecovery"), Role.SAST),
                self._record(self.callmanager(1), Role.SAST)]
        for n in range(1, self.state.nodes + 1):
            if self.state.mixed_mode:
                recs.append(self._record(self.callmanager(n), Role.CCM_TFTP))
            else:
                recs.append(trustlist.empty_record(Role.CCM_TFTP, dns_name=host, ip=_ip(host)))
        capf = self._record(self.pki.get("capf"), Role.CAPF)
        # the non-secure CUCM CTL carries its CAPF record without SIGNATURE (spec §B.6, 1004 bytes)
        recs.append(capf if self.state.mixed_mode else replace(capf, signature=None))
        return recs

    def _build_files(self) -> dict[str, bytes]:
        st = self.state
        ts, h = st.clock, st.hash_alg
        files: dict[str, bytes] = {}
        itl_recs = self.itl_records()
        if st.rollback:
            itl_recs = list(trustlist.rollback_records(itl_recs))
        itl_signer = self.pki.get("callmanager" if st.itl_signer == "callmanager" else "itlrecovery").signer
        if not st.pre_8_0:  # before 8.0 there is no ITL (no Security By Default)
            files["ITLFile.tlv"] = trustlist.build(
                kind="ITL", records=itl_recs, signer=itl_signer, timestamp=ts, hash_alg=h,
                signer_version=(1, 1) if st.https_key is not None else None)
        signing = not st.pre_8_0 or st.mixed_mode  # pre-8.0: files are signed in mixed mode only
        if st.ctl_exists:
            ctl_name = "callmanager" if st.ctl_signer == "callmanager" else "itlrecovery"
            ctl_signer = self.pki.get(ctl_name).signer
            files["CTLFile.tlv"] = trustlist.build(kind="CTL", records=self.ctl_records(), signer=ctl_signer,
                                                   timestamp=ts, hash_alg=h)
        tftp_signer = self.callmanager(1).signer
        for mac in sorted(st.phones):
            files.update(self._phone_all_files(mac, files))
        if st.autoregistration:
            default = config.build(self._device_config(None, st.load))
            files[config.default_config_name("plain")] = default
            if st.sbd and signing:
                name = config.default_config_name("sgn")
                files[name] = signed.build(body=default, filename=name, signer=tftp_signer, timestamp=ts,
                                           hash_alg=h)
        for name, body in _STATIC_FILES.items():
            files[name] = body
            if signing:
                files[name + ".sgn"] = signed.build(body=body, filename=name + ".sgn", signer=tftp_signer,
                                                    timestamp=ts, hash_alg=h)
        loads = set(st.loads) | ({st.load} if st.load else set())
        loads |= {p.load for p in st.phones.values() if p.load}
        image = self.pki.get("imagesigning").signer
        for load in sorted(loads):
            fname = firmware.loads_file_name(load)
            data = firmware.build(load_name=load, payload=_firmware_payload(load), signer=image, timestamp=ts,
                                  hash_alg=3)
            files[fname] = _flip(data, None)[0] if st.loads.get(load) else data
        return files

    def _call_manager_ports(self) -> Iterator[tuple[int, int]]:
        """(sipPort, securedSipPort) of each node the configs list as a CallManager (``_device_config``)."""
        ports = self.state.ports
        yield ports.get("sip", SIP_PORT), ports.get("sips", SIPS_PORT)
        for n in range(2, min(self.state.nodes, CALL_MANAGER_GROUP_SIZE) + 1):
            if f"sip-{n}" in ports or f"sips-{n}" in ports:
                yield ports.get(f"sip-{n}", SIP_PORT), ports.get(f"sips-{n}", SIPS_PORT)

    def _device_config(self, ph: PhoneState | None, load: str | None) -> config.DeviceConfig:
        st = self.state
        # every node runs TVS (seed "Default Security Overview"); node N is listed once its TVS port is
        # recorded ("tvs-N", by the servers that listen for it), in node order = priority order
        tvs_ports = [st.ports["tvs"]] + [st.ports[f"tvs-{n}"] for n in range(2, st.nodes + 1)
                                         if f"tvs-{n}" in st.ports]
        # a config names at most config.MAX_SERVERS TVS servers: with more nodes (up to 8) the first ones
        # are listed; the others still run TVS and stay in the ITL (lab serve failed to start at 6 nodes)
        tvs_ports = tvs_ports[:config.MAX_SERVERS]
        tvs = tuple(config.Server(host=st.host, port=port, priority=i) for i, port in enumerate(tvs_ports)) \
            if not st.pre_8_0 else ()  # no TVS before 8.0
        capf = (config.Server(host=st.host, port=st.ports["capf"], priority=0),)
        auth_mode = ph.capf_auth_mode if ph is not None and ph.capf_operation else 0
        extra = _device_extra(ph)
        # the CallManager group (spec §H.5): node 1's registrar, on the ports lab serve --sip-port /
        # --sips-port recorded, else CUCM's (5060/5061, where nothing listens until one is served), then
        # the other nodes' whose registrars lab serve runs (ports recorded as sip-N / sips-N)
        extra["devicePool"] = _device_pool(st.host, tuple(self._call_manager_ports()))
        if st.secure_urls_http:
            extra["secureDirectoryURL"] = PLAIN_DIRECTORY_URL.format(address=host_port(st.host, 8080))
        return config.DeviceConfig(
            device_name=config.device_name_for(ph.mac) if ph is not None else None,
            full_config=True, capf_auth_mode=auth_mode, capf_servers=capf, tvs_servers=tvs,
            load_information=load, encr_config=ph is not None and ph.encrypt is not None,
            device_security_mode=ph.security_mode if ph is not None else 1,
            # the static files served beside the configs (spec §C.6 row 6): the locale's g3-tones.xml
            # and the dial rules, signed like the configs in the same states (seed "File Authentication")
            network_locale="United_States", dial_template="AppDialRules.xml",
            extra=extra,
        )

    def _phone_files(self, ph: PhoneState, signer: FileSigner) -> dict[str, bytes]:
        st = self.state
        ts, h = st.clock, st.hash_alg
        cfg = self._device_config(ph, ph.load or st.load)
        full = config.build(cfg)
        plain = config.config_file_name(ph.mac, "plain")
        sgn = config.config_file_name(ph.mac, "sgn")
        enc = config.config_file_name(ph.mac, "enc")
        out: dict[str, bytes] = {}
        if st.pre_8_0 and not st.mixed_mode:  # nothing signed (nor encrypted) before 8.0 in non-secure mode
            out[plain] = full
            return out
        if ph.encrypt is None:
            out[plain] = full
            out[sgn] = self._signed(full, sgn, signer, ts, h)
            return out
        if ph.encrypt == "symmetric":
            key = bytes.fromhex(ph.symmetric_key or "")
            out[enc] = encrypted.build_symmetric(plaintext=full, filename=enc, signer=signer, key=key,
                                                 timestamp=ts, hash_alg=h, rand=self._rand(enc))
            return out
        recipient = self.phone_cert(ph.mac)
        out[enc] = encrypted.build_pki(plaintext=full, filename=enc, signer=signer, recipient_cert=recipient,
                                       timestamp=ts, hash_alg=h, rand=self._rand(enc))
        stub = config.build(config.stub_of(cfg, certs.fingerprint(recipient, "md5")))
        out[plain] = stub
        out[sgn] = self._signed(stub, sgn, signer, ts, h)
        return out

    def _signed(self, body: bytes, name: str, signer: FileSigner, ts: int, hash_alg: int) -> bytes:
        """``name`` signed over ``body``: the file served now when it already is that — same body, name,
        hash and signer, and its signature verifies (a tampered copy does not) — else signed anew with
        the lab clock as timestamp. A device file is re-signed only when its data changes (spec §C.1), so
        an operation that changes nothing of a phone's config leaves its file as it was: a
        40,000-phone lab no longer re-signs and rewrites 40,000 configs for a TVS TTL."""
        old = self._files.get(name)
        if old is not None:
            try:
                sf = signed.parse(old)
                h = sf.header
                if (sf.body == body and h.filename == name and h.hash_alg == hash_alg
                        and h.signer == signer.info):
                    signed.verify(sf, signer.cert)
                    return old
            except PhoneEmuError:
                pass  # not the file it should be (damaged, tampered): signed anew
        return signed.build(body=body, filename=name, signer=signer, timestamp=ts, hash_alg=hash_alg)

    # ============================================================== views
    def summary(self) -> dict[str, Any]:
        st = self.state
        itl = self._served_file("ITLFile.tlv") or b""
        ctl = self._served_file("CTLFile.tlv")
        return {
            "name": st.name, "dir": str(self.root), "host": st.host, "seed": st.seed, "nodes": st.nodes,
            "generation": st.generation, "clock": dt.datetime.fromtimestamp(st.clock, dt.UTC).isoformat(),
            "ports": dict(st.ports), "mixed_mode": st.mixed_mode, "ctl": ctl is not None,
            "itl_signer": st.itl_signer, "ctl_signer": st.ctl_signer if ctl is not None else None,
            "rollback": st.rollback, "secure_urls": "http" if st.secure_urls_http else "https",
            "itl_capf": st.itl_capf, "extra_certs": st.extra_certs,
            "signature_algorithm": "sha1" if st.hash_alg == 1 else "sha512",
            "upgraded": st.upgraded, "itlrecovery_years": self.itlrecovery_validity_years(),
            "itlrecovery_regenerate_years": st.itlrecovery_years, "sbd": st.sbd,
            "autoregistration": st.autoregistration, "tvs_ttl": st.tvs_ttl, "load": st.load,
            "itl_md5": hashlib.md5(itl, usedforsecurity=False).hexdigest(),
            "itl_sha1": hashlib.sha1(itl, usedforsecurity=False).hexdigest(), "itl_length": len(itl),
            "ctl_md5": hashlib.md5(ctl, usedforsecurity=False).hexdigest() if ctl is not None else None,
            "ctl_sha1": hashlib.sha1(ctl, usedforsecurity=False).hexdigest() if ctl is not None else None,
            "phones": {m: {"model": p.model, "encrypt": p.encrypt, "capf": p.capf_operation, "lsc": p.has_lsc,
                           "security": _SECURITY_MODE_NAMES[p.security_mode], "partition": p.partition,
                           "css": list(p.calling_search_space)}
                       for m, p in sorted(st.phones.items())},
            "tvs_trust": len(st.tvs_trust), "tampered": dict(st.tampered), "files": self._served_count(),
            "stopped": list(st.stopped), "certificates": self.certificates(),
        }

    def checksums(self, kind: Literal["CTL", "ITL"]) -> dict[str, str] | None:
        """The checksums ``show itl`` / ``show ctl`` print for the served file (MD5 and SHA-1, lower-case
        hex), None when the cluster serves no such file (spec §H.4). A phone's reported checksum is
        compared with these ("ITL File Status": Match / MisMatch, spec §G.1)."""
        data = self._served_file(f"{kind}File.tlv")
        if data is None:
            return None
        return {"md5": hashlib.md5(data, usedforsecurity=False).hexdigest(),
                "sha1": hashlib.sha1(data, usedforsecurity=False).hexdigest()}

    def show_itl(self) -> str:
        """``show itl`` text (spec §H.4, our analogue of ``show ctl``)."""
        return self._show("ITL")

    def show_ctl(self) -> str:
        """``show ctl`` text (spec §H.4)."""
        return self._show("CTL")

    def _show(self, kind: Literal["CTL", "ITL"]) -> str:
        data = self._served_file(f"{kind}File.tlv")
        if data is None:
            return (f"Length of {kind} file: 0\n{kind} File not found. Please run CTLClient plugin or "
                    f"run the "
                    f"CLI - utils ctl.. to generate the {kind} file.\nError parsing the {kind} File.\n")
        sums = self.checksums(kind) or {}
        lines = [f"The checksum value of the {kind} file:",
                 f"{sums['md5']}(MD5)",
                 f"{sums['sha1']}(SHA1)",
                 f"Length of {kind} file: {len(data)}",
                 f"The {kind} File was last modified on "
                 f"{dt.datetime.fromtimestamp(self.state.clock, dt.UTC):%a %b %d %H:%M:%S UTC %Y}",
                 f"Parse {kind} File", "----------------"]
        try:
            tl = trustlist.parse(data, limit=1 << 20, kind=kind)
        except PhoneEmuError as exc:
            return "\n".join([*lines, f"Error parsing the {kind} File: {exc}", ""])
        hdr = tl.header
        lines.append(f"Version:        {hdr.version[0]}.{hdr.version[1]}")
        lines.append(f"HeaderLength:   {hdr.header_length} (BYTES)")
        lines.append(f"Signer:         {hdr.signer.name} (serial {hdr.signer.serial.hex().upper()})")
        verified, signer_index = own_signature_check(tl)
        for i, rec in enumerate(tl.records, 1):
            lines.append(f"{kind} Record #:{i}")
            lines.append(f"  FUNCTION      {rec.role_name}")
            if rec.dns_name is not None:
                lines.append(f"  DNSNAME       {rec.dns_name}")
            if rec.subject is not None:
                lines.append(f"  SUBJECTNAME   {rec.subject}")
            if rec.issuer is not None:
                lines.append(f"  ISSUERNAME    {rec.issuer}")
            if rec.serial is not None:
                lines.append(f"  SERIALNUMBER  {':'.join(f'{b:02X}' for b in rec.serial)}")
            if rec.certificate is not None:
                lines.append(f"  CERTIFICATE   {rec.sha1_fingerprint()} (SHA1 Hash HEX)")
            if rec.role == Role.SAST:
                used = "was used" if i - 1 == signer_index else "was not used"
                lines.append(f"This etoken {used} to sign the {kind} file.")
        lines.append(_verified_line(kind, verified))
        return "\n".join(lines) + "\n"


def _verified_line(kind: str, check: dict[str, Any]) -> str:
    """``show itl``'s last line: the list verified as ``inspect`` verifies it, by its own SAST record naming
    its signer as a phone finds it, issuer and serial (:func:`phoneemu.inspection.own_signature_check`,
    spec §B.4, §G.3; was: the record found by serial only, "verified" while phones refuse the list)."""
    if check["ok"]:
        return f"The {kind} file was verified successfully."
    return f"The {kind} file could not be verified ({check['reason']}): {check['detail']}"


DEFAULT_EXPORT = "exported/itlrecovery.pem"


def _same_trust_list(old: bytes, new: bytes) -> bool:
    """True when ``new`` differs from ``old`` only by its signing time: same records, signer, hash and
    version. The lab then keeps serving ``old`` byte for byte, so the checksum ``show itl`` prints and
    phones report changes only when the ITL is modified (seed "Initial Trust List" note: "The checksum
    value of the ITL file changes only when you modify the ITL file"); a rebuild for another reason
    (TVS restart, a phone's config, a later lab clock) does not re-sign it."""
    try:
        a = trustlist.parse(old, limit=1 << 20)
        b = trustlist.parse(new, limit=1 << 20)
    except PhoneEmuError:
        return False
    ha, hb = a.header, b.header
    return (a.kind == b.kind and a.records == b.records and ha.signer == hb.signer
            and ha.hash_alg == hb.hash_alg and ha.version == hb.version
            and ha.signer_version == hb.signer_version and ha.filename == hb.filename)


def _model(text: str) -> str:
    """``8861`` or ``CP-8861`` (profile style) → ``8861``."""
    model = text[3:] if text.upper().startswith("CP-") else text
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9\-]{0,15}", model):
        raise EncodeError(f"model {text!r}: letters, digits and '-'", path="model")
    return model


#: capfAuthMode names (spec §H.5) the lab and scenarios accept besides the codes 0..4
CAPF_AUTH_MODES = {"none": 0, "password": 1, "string": 1, "auth-string": 1, "null-string": 2, "null": 2,
                   "lsc": 3, "mic": 4}
_AUTH_MODE_TEXT = {0: "none", 1: "string", 2: "null-string", 3: "lsc", 4: "mic"}


def _auth_mode(value: int | str | None) -> int | None:
    """capfAuthMode as 0..4 or a name (none, string, null-string, lsc, mic), spec §H.5."""
    if value is None or isinstance(value, int):
        return value
    text = value.strip().lower()
    if is_ascii_digits(text) and len(text) < 4:
        return int(text)
    if text not in CAPF_AUTH_MODES:
        raise EncodeError(f"CAPF auth mode {value!r}: 0..4 or one of {sorted(CAPF_AUTH_MODES)}",
                          path="auth_mode")
    return CAPF_AUTH_MODES[text]


def _check_manual_key(ph: PhoneState, *, given: bool = False) -> None:
    """The manual key the lab encrypts ``ph``'s config with (:meth:`PhoneState.manual_key`) is one the phone
    holds (spec §C.5): not all zeros (32 zero digits CLEAR the phone's key: it would never ask for its
    ``.enc.sgn`` and take XmlDefault), and, for a model with a profile that takes a manual key, of the size
    it takes (the trust store's own rule, :func:`_manual_key_problem`). EncodeError otherwise (path
    ``symmetric_key``: the CLI names ``--symmetric-key``). A model with no manual key at all is the CLI's
    warning, not a refusal (the lab may rehearse it). ``given``: the key was given now, so it is checked
    even when the config is not encrypted with it (stored for a later ``lab encryption ... on --mode
    symmetric``, which names no key: was stored unchecked, then that command refused it naming
    ``--symmetric-key HEX``, an option it had not been given)."""
    key = ph.symmetric_key if given else ph.manual_key()
    if key is None:
        return
    if not any(bytes.fromhex(key)):
        raise EncodeError(f"phone {ph.mac}: an all-zero key clears a phone's manual config key (spec §C.5): "
                          "the phone would never ask for its .enc.sgn and take XmlDefault; give a key that "
                          "is not all zeros", path="symmetric_key")
    problem = _manual_key_problem(ph.model, key)
    if problem is not None:
        raise EncodeError(f"phone {ph.mac} (model {ph.model}): {problem} (spec §C.5)", path="symmetric_key")


@functools.lru_cache(maxsize=64)
def _manual_key_problem(model: str, key: str) -> str | None:
    """Why a phone of ``model`` cannot hold the manual key ``key`` (hex), by
    :meth:`phoneemu.phone.store.TrustStore.set_symmetric_key` with its profile; None when it can, or when
    phoneemu has no profile for the model or its profile takes no manual key. Cached: a fleet's phones
    share a model and a key (40,000 phones, one store made)."""
    from phoneemu.phone.profile import get_profile
    from phoneemu.phone.store import TrustStore
    from phoneemu.scenario.phone_models import profile_for_model

    name = profile_for_model(model)
    profile = get_profile(name) if name is not None else None
    if profile is None or not profile.symmetric_key_bits:
        return None
    try:
        TrustStore(profile=profile).set_symmetric_key(bytes.fromhex(key))
    except EncodeError as exc:
        return exc.message
    return None


def _hex_key(text: str) -> str:
    """``--symmetric-key`` as stored: 32 or 64 hex digits, lower case; an EncodeError says what is wrong as
    the phone's manual key entry does (``encrypted.hex_key_problem``: a character that is not a hex digit
    and where, an odd number of digits, the counts a key has; was "must be 32 or 64 hex digits")."""
    t = text.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{32}|[0-9a-f]{64}", t):
        problem = encrypted.hex_key_problem(text) or "not 32 or 64 hex digits"
        raise EncodeError(f"symmetric key: {problem} (spec §C.5)", path="symmetric_key")
    return t


def _firmware_payload(load: str) -> bytes:
    """Deterministic stand-in image bytes for load ``load``."""
    out = b""
    i = 0
    while len(out) < _FIRMWARE_SIZE:
        out += hashlib.sha256(f"phoneemu-firmware:{load}:{i}".encode()).digest()
        i += 1
    return out[:_FIRMWARE_SIZE]
