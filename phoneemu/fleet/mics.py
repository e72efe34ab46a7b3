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
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from phoneemu.crypto import certs
from phoneemu.errors import DecodeError, PhoneEmuError
from phoneemu.files import PEM_LIMIT, read_at_most
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


def lab_mic(folder: Path, mac: str) -> Credential:
    """The MIC the lab issued ``mac`` (see module docstring); PhoneEmuError naming the file."""
    d = folder / mac
    cert_path, key_path = d / MIC_CERT, d / MIC_KEY
    try:
        found = certs.load_certs_pem(read_at_most(cert_path, PEM_LIMIT, what="certificate file"),
                                     source=str(cert_path))
        key_pem = read_at_most(key_path, PEM_LIMIT, what="key file")
    except FileNotFoundError as exc:
        raise PhoneEmuError(f"{exc.filename}: no such file (the lab has no MIC for {mac})",
                            path="lab") from None
    except OSError as exc:
        raise PhoneEmuError(f"{exc.filename or d}: cannot read: {exc.strerror or exc}", path="lab") from None
    if not found:
        raise DecodeError("no certificate in the file", path=str(cert_path))
    Credential.check_pair(found[0], key_pem, cert_name=str(cert_path), key_name=str(key_path))
    return Credential(cert_der=certs.cert_der(found[0]), key_pem=key_pem)
