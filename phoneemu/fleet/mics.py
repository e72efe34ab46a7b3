"""Fleet phones holding the MICs a lab issued them (``fleet boot --lab DIR``; spec §F.7, §H.2).

A lab keeps each phone's MIC as ``DIR/phones/<MAC>/mic.pem`` (certificate) and ``mic.key`` (PKCS#8
key, 0600). A fleet phone given its lab's MIC authenticates to CAPF with it (capfAuthMode 4, "by
existing certificate") as a scenario's phones do. Rules:

* :func:`missing_macs` (the parent, before any boot): the MACs of the run the lab has no folder for —
  one ``scandir`` of ``phones/``, so 40,000 phones cost no more than a directory listing.
* :func:`lab_mic` (each shard, per phone): both files read within ``PEM_LIMIT``, the first certificate
  of ``mic.pem`` kept as DER and ``mic.key`` kept as PEM bytes, after the check a phone's flash makes
  of its own credentials (:meth:`Credential.check_pair`: the key is that certificate's). The key
  itself is loaded, with its check, when the phone uses it: a phone that never signs with it never
  pays for it. Anything wrong is a PhoneEmuError naming the file.
* The two files are read under the lab lock, shared (:func:`phoneemu.lab.lock.hold_lab_lock`), held for
  that one phone's read: a ``lab`` operation that regenerates or imports a phone's MIC during the storm
  writes ``mic.key`` then ``mic.pem`` under the lock, exclusive, so a phone holds the pair from before it
  or from after it, never a new key beside the old certificate (it would not boot: ``not-booted``). A
  read that finds an operation under way waits for it, said once per process on stderr (``on_wait``).
  Per read, not once before the storm: the lock costs ~20 us a phone (a stat, an open, a flock, a
  close) beside ~130 us for the read and check, where reading 40,000 phones' MICs in the parent under
  one hold would take ~5 s before the first boot and ~115 MiB more in the parent, then 105 MB sent to
  the shards (measured, rsa2048 MICs, 2 cores).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from phoneemu.crypto import certs
from phoneemu.errors import DecodeError, PhoneEmuError
from phoneemu.files import PEM_LIMIT, read_at_most
from phoneemu.lab.lock import hold_lab_lock
from phoneemu.phone.store import Credential

__all__ = ["MIC_CERT", "MIC_KEY", "lab_mic", "missing_macs", "phones_folder"]

MIC_CERT = "mic.pem"
MIC_KEY = "mic.key"


def phones_folder(lab_dir: Path) -> Path:
    """``DIR/phones`` of a lab cluster folder; PhoneEmuError when DIR is not one."""
    if not (lab_dir / "cluster.json").is_file():
        raise PhoneEmuError(f"--lab {lab_dir}: not a lab cluster folder (no cluster.json; make one with "
                            "'phoneemu lab init')", path="lab")
    folder = lab_dir / "phones"
    if not folder.is_dir():
        raise PhoneEmuError(f"--lab {lab_dir}: the lab has no phones (add them with 'phoneemu lab phone "
                            "add')", path="lab")
    return folder


def missing_macs(folder: Path, macs: Iterable[str]) -> list[str]:
    """The MACs (upper-case hex, as the lab names its folders) with no folder in ``folder``, in order."""
    try:
        with os.scandir(folder) as entries:
            present = {entry.name for entry in entries}
    except OSError as exc:
        raise PhoneEmuError(f"{folder}: cannot list: {exc.strerror or exc}", path="lab") from None
    return [mac for mac in macs if mac not in present]


_waits_said: set[Path] = set()  # the labs whose lock a read of this process has waited for

#: who says a MIC read's wait on stderr unless told: the one command that reads MICs this way, as typed
FLEET_BOOT = "phoneemu fleet boot"


def _say_waiting(lab: Path, said_by: str) -> Callable[[str], None]:
    """A MIC read waits for an operation on ``lab``: said on stderr, once per lab and process (a shard),
    as ``said_by: waiting ...`` (the command as typed, :mod:`phoneemu.cli` rules)."""
    def say(text: str) -> None:
        if lab not in _waits_said:
            _waits_said.add(lab)
            print(f"{said_by}: {text}", file=sys.stderr, flush=True)
    return say


def lab_mic(folder: Path, mac: str, *, on_wait: Callable[[str], None] | None = None,
            said_by: str = FLEET_BOOT) -> Credential:
    """The MIC the lab issued ``mac`` (see module docstring), both files read under the lab lock of
    ``folder``'s lab, shared (``on_wait``: told when an operation holds it, before waiting; default: said
    on stderr by ``said_by``, once per lab and process); PhoneEmuError naming the file."""
    d = folder / mac
    cert_path, key_path = d / MIC_CERT, d / MIC_KEY
    waiting = on_wait or _say_waiting(folder.parent, said_by)
    try:
        with hold_lab_lock(folder.parent, shared=True, on_wait=waiting):
            cert_pem = read_at_most(cert_path, PEM_LIMIT, what="certificate file")
            key_pem = read_at_most(key_path, PEM_LIMIT, what="key file")
    except FileNotFoundError as exc:
        raise PhoneEmuError(f"{exc.filename}: no such file (the lab has no MIC for {mac})",
                            path="lab") from None
    except OSError as exc:
        raise PhoneEmuError(f"{exc.filename or d}: cannot read: {exc.strerror or exc}", path="lab") from None
    found = certs.load_certs_pem(cert_pem, source=str(cert_path))
    if not found:
        raise DecodeError("no certificate in the file", path=str(cert_path))
    Credential.check_pair(found[0], key_pem, cert_name=str(cert_path), key_name=str(key_path))
    return Credential(cert_der=certs.cert_der(found[0]), key_pem=key_pem)
