"""Whether a phone's files come from a phoneemu lab or from a cluster that is not one (our convention).

``boot`` knows it from ``--lab``; ``predict``, ``replay`` and ``phone show --flash`` have only files (a
flash keeps the cluster's address alone). A lab's cluster identities carry ``O=phoneemu lab NAME`` in
their subject (:meth:`phoneemu.lab.pki.LabPki.subject_for`), and a signed file's header names its
signer's subject (tag 4, spec §A.1; ``;``- or ``,``-separated, §A.7). Rules:

* a file counts when it is one the cluster signs, by the name it is served as: a trust list
  (``.tlv``: ITLRecovery or SAST) or signed XML (``.xml.sgn``, ``.xml.enc.sgn``: configs, dial rules,
  tones; the CallManager/TFTP identity). A firmware image (the manufacturer's signature: ``.loads``,
  ``.sbn``, ``.cop.sgn`` ...), unsigned XML, or a file whose header does not parse does not;
* the files are a lab's (True) when every file that counts names a signer with ``O=phoneemu lab ...``;
  of a cluster that is not a lab (False) as soon as one names another signer — a lab command cannot act
  on that cluster, whichever side of a migration it is on; unknown (None) when no file counts (then the
  ways out are said as before, with their lab commands).

Not a lab: the ways out name no lab command, as ``boot`` without ``--lab`` says them
(:data:`phoneemu.phone.ways_out.NOT_A_LAB`, :func:`not_a_lab_fill`).
"""

from __future__ import annotations

import re

from phoneemu.errors import PhoneEmuError
from phoneemu.phone.ways_out import NOT_A_LAB

__all__ = ["LAB_ORGANISATION", "LabSigners", "joined", "names_a_lab", "not_a_lab_fill", "signed_by_lab"]

#: how a lab identity's organisation starts (``O=phoneemu lab NAME``, :mod:`phoneemu.lab.pki`)
LAB_ORGANISATION = "phoneemu lab "

#: the names of the files a cluster signs (module rules)
_COUNTED_SUFFIXES = (".tlv", ".xml.sgn", ".xml.enc.sgn")
_RDN_SEPARATORS = re.compile(r"[;,]")


def names_a_lab(dn: str) -> bool:
    """Whether the DN text ``dn`` (``;`` or ``,`` separated, spec §A.7) has an organisation ``O=phoneemu
    lab ...`` (any case for ``O``, the value possibly quoted)."""
    for part in _RDN_SEPARATORS.split(dn):
        key, eq, value = part.partition("=")
        if eq and key.strip().casefold() == "o" and value.strip().strip('"').startswith(LAB_ORGANISATION):
            return True
    return False


def signed_by_lab(data: bytes, name: str) -> bool | None:
    """Whether ``data`` (served as ``name``) is signed by a lab identity: None when it does not count
    (module rules: not a ``.tlv``, ``.xml.sgn`` or ``.xml.enc.sgn``, or a header that does not parse)."""
    if not name.lower().endswith(_COUNTED_SUFFIXES) or data[:3] != b"\x01\x00\x02":  # spec §A.1
        return None
    from phoneemu.formats.header import parse_header

    try:
        return names_a_lab(parse_header(data, fmt="signer").header.signer.name)
    except PhoneEmuError:
        return None


def joined(a: bool | None, b: bool | None) -> bool | None:
    """Two verdicts as one (module rules): not a lab when either is not, a lab when either is, else
    unknown."""
    if a is False or b is False:
        return False
    return True if a or b else None


class LabSigners:
    """The verdict on the files seen so far (module rules): :meth:`saw` each one, :attr:`verdict`."""

    __slots__ = ("verdict",)

    def __init__(self, verdict: bool | None = None) -> None:
        self.verdict: bool | None = verdict

    def saw(self, data: bytes, name: str) -> None:
        """Take file ``data`` (served as ``name``) into the verdict; once not a lab, nothing is parsed."""
        if self.verdict is not False:
            self.verdict = joined(self.verdict, signed_by_lab(data, name))


def not_a_lab_fill(verdict: bool | None, where: str) -> dict[str, str]:
    """The ways out's ``fill`` (:func:`phoneemu.phone.ways_out.way_out_lines`) saying that the files are
    not a lab's (:data:`~phoneemu.phone.ways_out.NOT_A_LAB`, ``where`` the cluster or its files); empty
    for a lab's or unknown files: the lab commands as before."""
    return {NOT_A_LAB: where} if verdict is False else {}
