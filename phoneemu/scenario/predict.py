"""``phoneemu predict``: would a phone that holds these trust lists accept these new files? (spec §G)

The pre-flight check of a migration, a certificate regeneration or a rollback, from files alone
(``tftp get ITLFile.tlv`` from each cluster, or a phone's flash): a fresh emulated phone is given
the *installed* CTL/ITL as if it had accepted them earlier, then boots once on the *new* files with
the same boot code and §G rules as every other phone.

Rules (our conventions, stated in the README):

* Installed lists are restored as first accepted by G.2 trust on first use; they are parsed
  strictly (a malformed or oversized one is an error naming the file, nothing is predicted), and
  their header FILENAME must name the kind they are given as
  (:func:`phoneemu.phone.rules.trust_list_name_problem`, the check the boot applies to every new
  trust list — so a CTL/ITL mix-up among the *new* files is a ``G.3.1-wrong-file-name`` decision). The
  installed config (``.cnf.xml.sgn`` or ``.cnf.xml``) is the phone's current one: it names the TVS
  servers the phone may ask (spec §E.7.5; without it TVS is not usable, as on a real phone). A phone
  flash's ``config.xml`` is installed under the name its ``state.json`` records (``SEP<MAC>.cnf.xml.sgn``),
  as the phone's boot restores it: the §G rules decide per name (G.3.5 "the served config is unchanged").
* The phone requests its usual names; each new file (or each file of a given folder, e.g. a copy
  of a cluster's TFTP root) is served under its own base name, read when requested, and
  ``CTLFile.tlv`` / ``ITLFile.tlv`` also answer ``CTLSEP<MAC>.tlv`` / ``ITLSEP<MAC>.tlv`` (and the
  other way round). Any other name is "file not found", as from a cluster without it; with a folder
  given (a whole TFTP root) such a name is reported as not in it, not as a file to add.
* The phone's MAC is ``--mac``, else the MAC in a new ``SEP<MAC>...`` file name, else 001122334455.
* TVS is unreachable unless ``--tvs-cert`` is given: then it vouches for those certificates (with
  ``--tvs-roles``) and answers "not found" for any other, as in ``replay``. ``tvs_reachable`` without
  certificates: TVS answers, but "not found" to everything (the old cluster's TVS before any bulk
  certificate export, spec §G.6 problem 3, vs. problem 2: unreachable). ``tvs_live``: the servers the
  installed config names are asked over the network, and present their own certificates
  (:mod:`.predict_live_tvs`). CAPF is unreachable.
  When the phone cannot ask TVS at all (no installed config, or one naming no TVS server), the
  result carries a note saying why ``--tvs-cert`` went unused.
* An installed ``.enc.sgn`` config is decrypted with ``installed_config_key`` (the phone's key);
  without one it is an error saying so.
* **The TVS server's own certificate** (spec §E.1, §G.5): the phone talks only to a TVS whose
  certificate matches a TVS record of its installed ITL (the same check as every boot,
  :func:`~phoneemu.phone.rules.tvs_server_trusted`). The certificate a server presents is
  ``--tvs-server-cert`` when given (every server the config names presents one of them), else, by
  inference, the certificate of the new ITL's TVS record(s) with the same address (IP or DNS name) as
  the server and the same subject as a TVS record of the installed ITL — the same cluster's TVS, e.g.
  after ``regenerate tvs``: the server there presents its new certificate. Else a ``--tvs-cert``
  certificate with the subject of a TVS record of the installed ITL is that TVS's own certificate now
  (a TVS vouches for its own, as the lab's does), presented at that record's address — so a TVS
  regenerated behind a rollback ITL, whose TVS records are blanked (spec §B.7), is refused as on the
  boot. Otherwise (another cluster's TVS, as in a migration) the server is taken to present a
  certificate the phone trusts.
  A server whose presented certificates are all refused is not asked (``G.3.4-`` /
  ``G.4-tvs-server-untrusted`` when every one is), and a note names it and the certificate.
  Servers are tried in priority order, as by the boot's TVS client; with no answer the deciding reason
  and the timeline name each server (``HOST:PORT``) and why, in the boot's words (``no TVS server
  answered: 10.0.0.5:2445: TVS unavailable offline ...``).
  When the new ITL has no TVS record naming a certificate or key at all (the rollback ITL) and a
  server taken to present a trusted certificate answered, a note says the prediction assumed it and
  how to remove the assumption (``--tvs-server-cert``, ``--tvs-live``); a migration's new ITL names
  its own cluster's TVS records, so its notes do not change.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from phoneemu.crypto.certs import subject_of_der
from phoneemu.errors import PhoneEmuError, TransportError
from phoneemu.files import phone_config_in, read_at_most
from phoneemu.formats._tlv import printable
from phoneemu.phone.lab_signers import LabSigners
from phoneemu.phone.rules import NO_CONFIG_HELD, TVS_NOT_USABLE
from phoneemu.scenario.bounds import MAX_FLEET
from phoneemu.values import host_port
from phoneemu.words import counted

if TYPE_CHECKING:
    from phoneemu.phone.boot import BootReport
    from phoneemu.phone.flashes import FlashEntry
    from phoneemu.phone.phone import Phone
    from phoneemu.phone.profile import PhoneProfile
    from phoneemu.phone.store import AcceptedConfig
    from phoneemu.scenario.predict_live_tvs import LiveTvs

__all__ = ["NO_CONFIG_GIVEN", "TVS_KNOWS_NOTHING", "TVS_OFFLINE_ASK", "Installed", "PredictInputs",
           "PredictResult", "hold_flash_keys", "installed_config", "load_installed",
           "predict_boot", "rests_on_no_config", "rests_on_offline_tvs", "rests_on_tvs_knowing_nothing"]

_MAX_FILE = 16 << 20
#: new files given, in all: a TFTP root of MAX_FLEET phones (each its configs .cnf.xml, .sgn and
#: .enc.sgn, ITLSEP and CTLSEP files) and the cluster's own (about 45 MB of names at 400,000)
_MAX_FILES = 8 * MAX_FLEET
_SEP_MAC = re.compile(r"^SEP([0-9A-Fa-f]{12})\.")
_PER_PHONE = re.compile(r"SEP[0-9A-Fa-f]{12}")
_ALIASES = {"CTLFile.tlv": "CTLSEP{mac}.tlv", "ITLFile.tlv": "ITLSEP{mac}.tlv"}


NOT_GIVEN = "not given"
"""How a name the phone asked for and no given file holds is answered (named files, not a folder)."""


@dataclass(frozen=True, kw_only=True)
class PredictResult:
    """The offline boot: what was asked for, what was served, what the phone decided."""

    mac: str
    served: tuple[tuple[str, str], ...]
    report: BootReport
    #: What the prediction could not use and why (e.g. ``--tvs-cert`` with no TVS to ask), and TVS
    #: servers the phone refused to talk to (their certificate is not an installed ITL TVS record).
    notes: tuple[str, ...] = ()
    #: its SIP registration over TLS before a reset and after the boot
    #: (:class:`phoneemu.scenario.predict_sip.SipForecast`; None: nothing to say)
    sip: Any = None
    #: whether the files served and the installed lists are a lab's (False: a cluster that is not one, the
    #: ways out name no lab command; None: no signed file to tell; :mod:`phoneemu.phone.lab_signers`)
    signed_by_lab: bool | None = None

    @property
    def not_given(self) -> tuple[str, ...]:
        """The names the phone asked for that the new files did not hold."""
        return tuple(name for name, answer in self.served if answer.startswith(NOT_GIVEN))


class _FileFetcher:
    """Serves the given files by name (module rules), read when asked for; records every request."""

    def __init__(self, files: Mapping[str, Path], mac: str, *, folder: bool = False,
                 read: Any = None) -> None:
        self.files = files  # not copied: a fleet shares one name → path map of a whole TFTP root
        self.folder = folder  # a folder (a TFTP root) was given: what it lacks, the cluster does not serve
        self.read = read if read is not None else (lambda path: read_at_most(path, _MAX_FILE, what="file"))
        self.alias: dict[str, Path] = {}
        for general, own in _ALIASES.items():
            per_phone = own.format(mac=mac)
            if general in files and per_phone not in files:
                self.alias[per_phone] = files[general]
            elif per_phone in files and general not in files:
                self.alias[general] = files[per_phone]
        self.served: list[tuple[str, str]] = []
        self.mac = mac
        self.signers = LabSigners()  # whose files they are: a lab's or not (phone.lab_signers)

    async def fetch(self, name: str) -> bytes:
        path = self.files.get(name) or self.alias.get(name)
        if path is None:
            self.served.append((name, "not in the given folder → not found" if self.folder
                                else f"{NOT_GIVEN} → not found"))
            raise TransportError("not among the given files", kind="not-found", code=1, path=name)
        data: bytes = self.read(path)
        self.signers.saw(data, name)
        alias = "" if name in self.files else f" ({path.name})"
        self.served.append((name, f"{len(data)} bytes{alias}"))
        return data


class PredictInputs:
    """The new files of a prediction, gathered once and shared by many phones (``predict --fleet-flash``):
    the name → path map (a whole TFTP root is listed once), the bytes of the cluster-wide files (not
    ``SEP<MAC>`` ones), parsed new ITLs and parsed installed trust lists (by content: phones of one
    generation hold identical ones). Every phone still makes its own decisions on its own lists."""

    _MAX_CACHED = 64 << 20  # bytes of new files kept in memory

    def __init__(self, new_files: Sequence[Path]) -> None:
        self.files = _files(new_files)
        self.folder = any(p.is_dir() for p in new_files)
        #: files named one by one (not found in a folder): one the phone never asks for is a note
        self.named = tuple(dict.fromkeys(p for p in new_files if not p.is_dir()))
        self._data: dict[Path, bytes] = {}
        self._cached = 0
        self._new_itls: dict[tuple[str, int, bytes], Any] = {}
        self._installed: dict[tuple[str, int, bytes], Any] = {}

    def read(self, path: Path) -> bytes:
        data = self._data.get(path)
        if data is not None:
            return data
        data = read_at_most(path, _MAX_FILE, what="file")
        if not _PER_PHONE.search(path.name) and self._cached + len(data) <= self._MAX_CACHED:
            self._data[path] = data
            self._cached += len(data)
        return data

    def new_itl(self, mac: str, limit: int) -> Any:
        """The new ITL the phone will download (its per-device name first), or None (absent or broken:
        the boot itself says what is wrong with it); parsed once per content (``ITLSEP<MAC>.tlv``
        files are copies of one ITL)."""
        from phoneemu.formats import trustlist

        for name in (f"ITLSEP{mac}.tlv", "ITLFile.tlv"):
            if name in self.files:
                try:
                    data = self.read(self.files[name])
                except PhoneEmuError:
                    return None
                key = ("ITL", limit, data)
                if key not in self._new_itls:
                    try:
                        tl = trustlist.parse(data, limit=limit, kind="ITL")
                    except PhoneEmuError:
                        tl = None  # the boot itself says what is wrong with it
                    if len(self._new_itls) < 256:
                        self._new_itls[key] = tl
                    return tl
                return self._new_itls[key]
        return None

    def installed_list(self, data: bytes, kind: Literal["CTL", "ITL"], limit: int) -> Any:
        """The parsed installed list (parsed once per content); PhoneEmuError when it does not parse."""
        from phoneemu.formats import trustlist

        key = (kind, limit, data)
        tl = self._installed.get(key)
        if tl is None:
            tl = trustlist.parse(data, limit=limit, kind=kind)
            if len(self._installed) < 256:
                self._installed[key] = tl
        return tl


class _GivenFiles(Mapping[str, Path]):
    """Name → path of the new files (:func:`_files`): a file of a given folder is kept as its name and the
    folder's index, not as a path of its own, so a TFTP root of :data:`MAX_FLEET` phones (hundreds of
    thousands of files) costs a name each (about 110 bytes; a ``Path`` each was 410)."""

    def __init__(self) -> None:
        self._folders: list[Path] = []
        self._where: dict[str, Path | int] = {}

    def __getitem__(self, name: str) -> Path:
        where = self._where[name]
        return self._folders[where] / name if isinstance(where, int) else where

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def folder(self, path: Path) -> int:
        self._folders.append(path)
        return len(self._folders) - 1

    def add(self, name: str, where: Path | int) -> None:
        self._where[name] = where


def _files(paths: Sequence[Path]) -> Mapping[str, Path]:
    """Name → path of the given files; a folder gives its files (a TFTP root), at most _MAX_FILES in all.
    The same file given twice (a folder and a file in it, a name repeated) is taken once, as the name it
    was given by; two different files of one name are an error naming both."""
    found = _GivenFiles()
    for p in paths:
        if p.is_dir():
            index = found.folder(p)
            with os.scandir(p) as listing:  # a file's name is all that is kept (sorted below, as before)
                members: list[tuple[str, Path | int]] = [(e.name, index) for e in listing if e.is_file()]
            members.sort()
        elif p.is_file():
            members = [(p.name, p)]
        else:
            raise PhoneEmuError(f"{p}: no such file", path="files")
        for name, where in members:
            if name in found:
                other = found[name]
                here = where if isinstance(where, Path) else p / name
                if _same_file(here, other):
                    if isinstance(where, Path):  # named: the name it was given by (its note, if unasked)
                        found.add(name, where)
                    continue
                raise PhoneEmuError(f"{here}: a second file named {name} (the other: {other})", path="files")
            found.add(name, where)
            if len(found) > _MAX_FILES:
                raise PhoneEmuError(f"{p}: more than {_MAX_FILES:,} files given (a TFTP root of "
                                    f"{MAX_FLEET:,} phones holds fewer)", path="files")
    return found


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _default_mac(names: Sequence[str]) -> tuple[str, list[str]]:
    """The lowest MAC among the ``SEP<MAC>`` file names (else 001122334455), and a note when the files
    are those of several phones: the prediction is for one of them, and says which and how to choose."""
    macs = sorted({m.group(1).upper() for name in names if (m := _SEP_MAC.match(name))})
    if not macs:
        return "001122334455", []
    if len(macs) == 1:
        return macs[0], []
    return macs[0], [f"no --mac: predicted for {macs[0]}, the first of the {len(macs)} phones whose "
                     "SEP<MAC> files are given (--mac MAC for another; --fleet-flash DIR for many)"]


#: by the option that gave a config (:func:`installed_config`), the options of the command that take a trust
#: list instead: predict's ``--installed-itl`` / ``--installed-ctl``, tvs's ``--itl`` (it takes no CTL; was
#: "give it as --installed-itl" there too, an option tvs does not have)
_TRUST_LIST_OPTIONS = {"installed-config": {"itl": "--installed-itl", "ctl": "--installed-ctl"},
                       "installed-config-dir": {"itl": "--installed-itl", "ctl": "--installed-ctl"},
                       "config": {"itl": "--itl"}}

_CONFIG_TAKES = "a config (.cnf.xml, .cnf.xml.sgn or .enc.sgn)"
#: by the option that names an installed file: what it takes and what to give it, in a message's words
#: (:func:`_wrong_kind`; ``config`` is tvs's ``--config``, ``installed-config-dir`` predict --models' folder)
_TAKES = {
    "installed-config": (_CONFIG_TAKES, "give the phone's config now (SEP<MAC>.cnf.xml.sgn, as its cluster's "
                         "TFTP serves it)"),
    "installed-config-dir": (_CONFIG_TAKES, "put the phone's SEP<MAC>.cnf.xml.sgn (or .cnf.xml) there"),
    "config": ("a config (.cnf.xml or .cnf.xml.sgn)", "give the phone's config (SEP<MAC>.cnf.xml.sgn, as its "
               "cluster's TFTP serves it)"),
    "installed-itl": ("an ITL (ITLFile.tlv)", "give the ITL the phone holds now (tftp get ITLFile.tlv from "
                      "its cluster)"),
    "installed-ctl": ("a CTL (CTLFile.tlv)", "give the CTL the phone holds now (tftp get CTLFile.tlv from "
                      "its cluster)"),
    "itl": ("an ITL (ITLFile.tlv)", "give the ITL the phone holds now (tftp get ITLFile.tlv from its "
            "cluster)"),
}
#: what else a file given as tvs's ``--itl`` may be, in tvs's options (:func:`_wrong_kind`; was predict's
#: --installed-config, --installed-config-key and --tvs-cert, options tvs does not have)
_TVS_ITL_ALSO = {"config": "a phone's config is --config's",
                 "certificate": "a certificate to ask TVS about is the last argument (CERT_OR_FILE)"}
#: a PEM block's first line (RFC 7468 §2), at the start of a line; searched in a file's first bytes only
_PEM_BEGIN = re.compile(rb"^[ \t]*-----BEGIN ([\x20-\x7e]{1,64}?)-----[ \t]*\r?$", re.MULTILINE)
_PEM_SEARCHED = 16 << 10


def _sniff(data: bytes, name: str) -> tuple[str | None, str | None]:
    """What an installed file is: :func:`~phoneemu.formats.detect.detect`'s kind (None: none fits) and
    the file in a message's words (:func:`~phoneemu.formats.detect.what_it_is`; a damaged DER certificate
    or key with where it goes wrong; for bytes no format fits, ``a PEM file (LABEL)`` or ``an empty file (0
    bytes)``, else None: the parser then says what is wrong, as of a damaged file of the kind asked for)."""
    from phoneemu.formats.detect import detect, what_it_is

    try:
        kind = detect(data, name)
    except PhoneEmuError as exc:
        if exc.fmt == "der":  # a certificate or key cut short or damaged: named with where it goes wrong
            return "der", f"a damaged DER file ({exc})"
        if not data:
            return None, "an empty file (0 bytes)"
        labels = dict.fromkeys(m.group(1).decode("ascii") for m in _PEM_BEGIN.finditer(data[:_PEM_SEARCHED]))
        return None, f"a PEM file ({', '.join(list(labels)[:3])})" if labels else None
    return kind, what_it_is(data, name)


def _wrong_kind(path: Path, option: str, words: str, kind: str | None) -> PhoneEmuError:
    """A file given as an installed one that is of another kind (ours): ``--installed-config cert.der: a DER
    file (CERTIFICATE), not a config (...): give ...``, and the option that takes it where one does (a
    config given as a trust list, a private key, a certificate). Was the parser's first complaint: "not
    well-formed XML", "the first TLV must be VERSION", "a record must start with RECORD_LENGTH"."""
    takes, give = _TAKES.get(option, (_CONFIG_TAKES, "give the phone's config"))
    also: list[str] = []
    config = kind in ("xml", "sgn", "enc")
    certificate = re.search(r"[(, ]CERTIFICATE[,)]", words) is not None
    if option in ("installed-itl", "installed-ctl") and config:
        also.append("a phone's config is --installed-config's")
    if option.startswith("installed-") and "PRIVATE KEY" in words:
        also.append("the phone's private key is --installed-config-key's (PEM)")
    if option.startswith("installed-") and certificate:
        also.append("a certificate TVS vouches for is --tvs-cert's (PEM)")
    if option == "itl":  # tvs's --itl: tvs's own options (it has no key option)
        also += [_TVS_ITL_ALSO[what] for what, found in (("config", config), ("certificate", certificate))
                 if found]
    more = "".join(f"; {a}" for a in also)
    return PhoneEmuError(f"--{option} {path}: {words}, not {takes}: {give}{more}", path=option)


def installed_config(path: Path, key: Any = None, *, option: str = "installed-config") -> AcceptedConfig:
    """The phone's current config: a signed ``.sgn`` (its body), plain XML, or an ``.enc.sgn``
    decrypted with ``key`` (the phone's private key), installed under its file name (a flash's
    ``config.xml``: the name the phone accepted it under, :func:`_flash_config_name`); PhoneEmuError
    naming the file and ``option``
    (the command's option that gave it; only ``installed-config`` has a key option to decrypt with); a
    file of another kind (a trust list, a DER or PEM certificate or key, an empty file) is said as such,
    a damaged config by its parser (where and what)."""
    from phoneemu.formats import config as config_fmt
    from phoneemu.formats import encrypted, signed
    from phoneemu.phone.store import AcceptedConfig

    data = read_at_most(path, _MAX_FILE, what="installed config")
    kind, words = _sniff(data, path.name)
    if kind in ("itl", "ctl", "firmware"):  # was: "not well-formed XML at line 1" of its records
        what = "a firmware image" if kind == "firmware" else f"a trust list ({kind.upper()})"
        given_as = _TRUST_LIST_OPTIONS.get(option, {}).get(kind)
        instead = f" (give it as {given_as})" if given_as else ""
        raise PhoneEmuError(f"{path}: installed config: is {what}, not a config{instead}", path=option)
    if kind not in ("xml", "sgn", "enc") and words is not None:  # a DER or PEM certificate or key, empty
        raise _wrong_kind(path, option, words, kind)
    if kind is None:
        kind = "xml"  # config_fmt.parse says what is wrong with it
    if kind == "enc" and key is None:
        how = ("give the phone's private key to decrypt it (--installed-config-key PEM: its LSC key, or the "
               "MIC key when it has no LSC), or " if option == "installed-config" else "give ")
        raise PhoneEmuError(f"{path}: installed config is encrypted (.enc.sgn): {how}the config as plain XML "
                            "(SEP<MAC>.cnf.xml)", path=option)
    try:
        if kind == "enc":
            xml = encrypted.decrypt_pki(encrypted.parse(data), key)
        else:
            xml = signed.parse(data).body if data[:3] == b"\x01\x00\x02" else data
        name = _flash_config_name(path, xml) or path.name
        return AcceptedConfig(file=name, xml=xml, config=config_fmt.parse(xml))
    except PhoneEmuError as exc:
        raise PhoneEmuError(f"{path}: installed config: {exc}", path=option) from None


def _flash_config_name(path: Path, xml: bytes) -> str | None:
    """The name a phone accepted its flash's ``config.xml`` under, when ``xml`` is the config that flash
    holds (:meth:`phoneemu.phone.flash.Flash.held_config`, the boot's own rule), or None (the file's own
    name): the config is installed under that name, as the phone's boot restores it — the §G rules
    decide per name (G.3.5 "unchanged": the same name and XML), so ``config.xml`` would decide otherwise
    than the phone. Not a flash's ``config.xml``, a ``state.json`` that is missing, damaged, unreadable
    or vouches for other XML: None."""
    from phoneemu.phone.flash import CONFIG_FILE, Flash
    from phoneemu.phone.profile import get_profile

    if path.name != CONFIG_FILE:
        return None
    try:  # the profile does not matter to the config (only to the trust lists' limit)
        held = Flash(path.parent, profile=get_profile("cp-8861")).held_config()
    except OSError:
        return None
    return held.file if held is not None and held.xml == xml else None


def _tvs_notes(tvs_certs: Sequence[Any], config: AcceptedConfig | None,
               config_path: Path | None, *, option: str = "--tvs-cert", listed: bool = False) -> list[str]:
    """Why ``--tvs-cert`` (``--tvs-reachable``, ``--tvs-live``) cannot be used by this phone (spec §E.7.5:
    its current config names the TVS servers it asks); empty when it can. ``listed`` (``--models``): the
    config comes from ``--installed-config-dir`` and no phone key is given, so the advice says how."""
    if not tvs_certs:
        return []
    if config is None:
        give = ("put its SEP<MAC>.cnf.xml.sgn (or .cnf.xml) in --installed-config-dir" if listed else
                "give --installed-config (its SEP<MAC>.cnf.xml.sgn, or .cnf.xml), or a flash holding "
                "config.xml")
        return [f"{option} not used: the phone learns its TVS servers from its current config, and it "
                f"holds none; {give}"]
    if not config.config.tvs_servers:
        name = config_path.name if config_path is not None else "config"
        if config.config.encr_config and not config.config.full_config:  # spec §G.12 step 1
            give = ("--models reads no encrypted config (no phone key): predict this phone with --flash, or "
                    "--installed-config SEP<MAC>.cnf.xml.enc.sgn --installed-config-key PEM" if listed else
                    "give its SEP<MAC>.cnf.xml.enc.sgn with --installed-config-key")
            return [f"{option} not used: the installed config {name} is the short config of an encrypted "
                    f"phone (encrConfig true): {give}"]
        return [f"{option} not used: the installed config {name} names no TVS server (no <TVS><members> "
                "element), so the phone has no TVS to ask"]
    return []


def _record_hosts(r: Any) -> set[str]:
    import ipaddress

    hosts = {r.dns_name} if r.dns_name else set()
    if r.ip_address is not None and len(r.ip_address) in (4, 16):
        hosts.add(str(ipaddress.ip_address(r.ip_address)))
    return hosts


def _inferred_tvs_certs(new_itl: Any, installed_itl: Any) -> dict[str, list[bytes]]:
    """Address → certificates (DER) the TVS there presents now, read from the new ITL (module rules):
    TVS records whose subject is also a TVS record subject of the installed ITL (the same cluster; the
    subjects compared in any RDN order, ``certs.dn_key``: a list written by certutils names them in the
    certificate's stored order, spec §A.7)."""
    from phoneemu.crypto.certs import dn_key
    from phoneemu.formats.trustlist import Role
    from phoneemu.phone import rules

    if new_itl is None or installed_itl is None:
        return {}
    known = {dn_key(r.subject) for r in rules.readable_records(installed_itl)
             if r.role == Role.TVS and r.subject}
    out: dict[str, list[bytes]] = {}
    for r in rules.readable_records(new_itl):
        if r.role == Role.TVS and r.certificate and r.subject and dn_key(r.subject) in known:
            for host in _record_hosts(r):
                out.setdefault(host, []).append(r.certificate)
    return out


def _vouched_tvs_certs(tvs_certs: Sequence[bytes], installed_itl: Any) -> dict[str, list[bytes]]:
    """Address → certificates (DER) the TVS there presents now, read from ``--tvs-cert`` (module rules):
    a certificate TVS vouches for whose subject is that of a TVS record of the installed ITL is that
    TVS's own certificate now (the same cluster's TVS vouches for its own, as the lab's does), presented
    at the record's address(es). Subjects are compared in any RDN order (``certs.dn_key``, spec §A.7: an ITL
    written by certutils names them in the certificate's stored order)."""
    from phoneemu.crypto.certs import dn_key
    from phoneemu.formats.trustlist import Role
    from phoneemu.phone import rules

    if not tvs_certs or installed_itl is None:
        return {}
    by_subject: dict[tuple[str, ...], list[bytes]] = {}
    for der in tvs_certs:
        by_subject.setdefault(dn_key(subject_of_der(der)), []).append(der)
    out: dict[str, list[bytes]] = {}
    for r in rules.readable_records(installed_itl):
        if r.role == Role.TVS and r.subject:
            for host in _record_hosts(r):
                for der in by_subject.get(dn_key(r.subject), []):
                    if der not in out.setdefault(host, []):
                        out[host].append(der)
    return {host: ders for host, ders in out.items() if ders}


def _names_no_tvs_certificate(new_itl: Any) -> bool:
    """The new ITL has no TVS record naming a certificate or key (a rollback ITL: its TVS records are
    blanked, spec §B.7): nothing in it tells what certificate a TVS presents now."""
    from phoneemu.formats.trustlist import Role
    from phoneemu.phone import rules

    return new_itl is not None and not any(
        r.role == Role.TVS and (r.certificate or r.public_key) for r in rules.readable_records(new_itl))


def _assumed_note(server: str) -> str:
    """Module rules: a TVS taken to present a certificate the phone trusts, the new ITL unable to tell."""
    return (f"TVS {server} assumed to present a certificate the installed ITL trusts: the new ITL has no TVS "
            "record with a certificate to compare (a rollback ITL blanks them, spec §B.7), so a TVS "
            "regenerated since, which the phone would refuse (spec §E.1) and lock out, is not seen; to "
            "remove the assumption give the certificate it presents (--tvs-server-cert PEM) or ask it "
            "(--tvs-live)")


def _server_checking_tvs(inner: Any, *, explicit: Sequence[bytes], inferred: dict[str, list[bytes]],
                         refused: list[str], vouched: dict[str, list[bytes]] | None = None,
                         assumed: list[str] | None = None) -> Any:
    """Wrap the offline TVS as the phone's TVS client (:mod:`phoneemu.net.tvs_client`): the servers in
    priority order, each one's certificate checked before it is asked (module rules); the first not
    refused is asked. No answer → TransportError naming each server and why, as on the boot
    (``no TVS server answered: HOST:PORT: ...``). A server taken to present a trusted certificate that
    then answered is added to ``assumed`` (when given: the caller asks for it only when the new ITL
    could not tell)."""
    from phoneemu.net.tvs_client import NO_TVS_ANSWER, SERVER_REFUSED, judge_server, servers_to_try

    vouched = vouched or {}

    async def ask(servers: Any, key: Any, *, device_name: str, accept_server: Any) -> Any:
        order = servers_to_try(servers)
        failures: list[str] = []
        last = "unreachable"
        for host, port in order:
            presented = list(explicit) or inferred.get(host) or vouched.get(host, [])
            if accept_server is not None and presented and \
                    not any(judge_server(accept_server, host, port, der) for der in presented):
                refused.append(_refused_note(host, port, presented[0], how=_presented_how(
                    explicit=bool(explicit), inferred=host in inferred)))
                failures.append(f"{host_port(host, port)}: {SERVER_REFUSED}")
                last = "tls"
                continue
            try:
                answer = await inner(servers, key, device_name=device_name, accept_server=accept_server)
            except TransportError as exc:
                failures.append(f"{host_port(host, port)}: {exc.message}")
                last = exc.kind
                continue
            if accept_server is not None and not presented and assumed is not None:
                assumed.append(host_port(host, port))  # it answered: the prediction rests on it
            return answer
        raise TransportError(NO_TVS_ANSWER + "; ".join(failures), kind=last)
    return ask


def _presented_how(*, explicit: bool, inferred: bool) -> str:
    """Where the certificate a TVS is taken to present comes from (module rules)."""
    if explicit:
        return "--tvs-server-cert"
    if inferred:
        return "the new ITL's TVS record for this address"
    return "the --tvs-cert of the installed ITL's TVS record's subject"


def _refused_note(host: str, port: int, presented: bytes, *, how: str) -> str:
    """The note of a TVS server the phone does not talk to (spec §E.1)."""
    return (f"TVS {host_port(host, port)} presents {subject_of_der(presented)} ({how}), which is not a TVS "
            "record of the installed ITL: the phone does not talk to it (spec §E.1)")


@dataclass(frozen=True, kw_only=True)
class Installed:
    """What a phone holds before the files it is given (``predict``'s and ``replay``'s starting point):
    its CTL, ITL (parsed) and current config, as if accepted earlier (see module rules)."""

    ctl: Any = None
    itl: Any = None
    config: AcceptedConfig | None = None

    def restore(self, phone: Any) -> None:
        """Put it in ``phone``'s trust store, as :data:`~phoneemu.fleet.engine.PRESTATE_RULES` say."""
        self.restore_store(phone.store)

    def signed_by_lab(self, served: bool | None = None) -> bool | None:
        """Whether the installed lists and the files whose verdict is ``served`` are a lab's
        (:mod:`phoneemu.phone.lab_signers`)."""
        signers = LabSigners(served)
        for kind, tl in (("CTL", self.ctl), ("ITL", self.itl)):
            if tl is not None:
                signers.saw(tl.raw, f"{kind}File.tlv")
        return signers.verdict

    def restore_store(self, store: Any) -> None:
        """Put it in a trust store (:meth:`restore`'s step)."""
        from phoneemu.fleet.engine import PRESTATE_RULES

        ctl_rule, itl_rule, cfg_rule = PRESTATE_RULES
        store.restore(ctl=self.ctl, itl=self.itl, config=self.config, ctl_rule=ctl_rule,
                      itl_rule=itl_rule, config_rule=cfg_rule)


def load_installed(*, limit: int, itl: Path | None = None, ctl: Path | None = None,
                   config: Path | None = None, config_key: Any = None,
                   parse: Callable[[bytes, Literal["CTL", "ITL"], int], Any] | None = None,
                   config_option: str = "installed-config", itl_option: str = "installed-itl") -> Installed:
    """Read and check the installed lists and config (module rules); PhoneEmuError naming the file and
    the option (``installed-itl`` ...; the config's: ``config_option``), a file of another kind said as
    such (:func:`_wrong_kind`, naming ``itl_option`` for the ITL: tvs's ``itl``). ``parse`` caches parsed
    lists (``PredictInputs.installed_list``)."""
    from phoneemu.formats import trustlist
    from phoneemu.phone import rules

    lists: dict[str, Any] = {}
    wanted: tuple[tuple[Literal["CTL", "ITL"], Path | None], ...] = (("CTL", ctl), ("ITL", itl))
    for kind, path in wanted:
        if path is None:
            continue
        data = read_at_most(path, limit, what=f"installed {kind}")
        try:
            tl = parse(data, kind, limit) if parse is not None else \
                trustlist.parse(data, limit=limit, kind=kind)
        except PhoneEmuError as exc:
            found, words = _sniff(data, path.name)  # another kind of file: said so (a damaged list: exc)
            if words is not None and found not in ("itl", "ctl"):
                option = itl_option if kind == "ITL" else "installed-ctl"
                raise _wrong_kind(path, option, words, found) from None
            raise PhoneEmuError(f"{path}: installed {kind}: {exc}",
                                path=f"installed-{kind.lower()}") from None
        # CTL and ITL share one layout (§B): the header FILENAME says which, checked as the boot does
        wrong = rules.trust_list_name_problem(tl.header.filename, kind=kind)
        if wrong is not None:
            raise PhoneEmuError(f"{path}: given as the installed {kind}, but its {wrong}",
                                path=f"installed-{kind.lower()}")
        lists[kind] = tl
    cfg = installed_config(config, config_key, option=config_option) if config is not None else None
    return Installed(ctl=lists.get("CTL"), itl=lists.get("ITL"), config=cfg)


async def predict_boot(new_files: Sequence[Path] | PredictInputs, *, installed_itl: Path | None = None,
                       installed_ctl: Path | None = None, installed_config: Path | None = None,
                       mac: str | None = None, profile: str = "cp-8861",
                       now: int, tvs_certs: Sequence[Any] = (),
                       tvs_roles: frozenset[int] = frozenset({0, 2}),
                       image_signers: Sequence[Any] = (), installed_config_key: Any = None,
                       tvs_server_certs: Sequence[Any] = (), tvs_reachable: bool = False,
                       tvs_live: LiveTvs | None = None,
                       asked: set[Path] | None = None, keys_from: Path | None = None,
                       callmanager_certs: Sequence[bytes] = (), listed: bool = False) -> PredictResult:
    """Boot a phone holding the installed lists on ``new_files`` (see module rules); a
    :class:`PredictInputs` shares the reading and parsing of the new files among many phones.
    ``asked`` (a fleet): the named files this phone asked for are added to it, and no note is made
    of those it did not (another phone's files are no typo; :func:`predict_fleet` notes the files no
    phone asked for, once). ``keys_from``: a phone's flash whose MIC, LSC and manual key the phone holds
    (read only), so that it decrypts new encrypted configs as that phone would. ``tvs_live``: the TVS
    servers of the installed config are asked over the network (:mod:`.predict_live_tvs`) instead.
    ``callmanager_certs`` (DER): the certificates the SIP forecast checks instead of the CTL's
    (:mod:`.predict_sip`). ``listed``: a phone of ``predict --models`` (its notes advise its options)."""
    from phoneemu.formats.config import normalise_mac
    from phoneemu.phone.boot import BootTarget
    from phoneemu.phone.capf_outcome import CAPF_OFFLINE, capf_not_deciding
    from phoneemu.phone.phone import Phone
    from phoneemu.phone.profile import get_profile
    from phoneemu.scenario.replay import offline_tvs

    prof = get_profile(profile)
    inputs = new_files if isinstance(new_files, PredictInputs) else PredictInputs(new_files)
    files = inputs.files
    phone_mac, mac_notes = (normalise_mac(mac), []) if mac else _default_mac(list(files))
    held = load_installed(limit=prof.trust_list_limit, itl=installed_itl, ctl=installed_ctl,
                          config=installed_config, config_key=installed_config_key,
                          parse=inputs.installed_list,
                          config_option="installed-config-dir" if listed else "installed-config")
    config = held.config
    option = "--tvs-cert" if tvs_certs else "--tvs-live" if tvs_live else "--tvs-reachable"
    notes = mac_notes + _tvs_notes(tvs_certs or ([True] if tvs_live or tvs_reachable else []), config,
                                   installed_config, option=option, listed=listed)

    async def no_capf(*_a: Any, **_k: Any) -> Any:
        raise TransportError(f"{CAPF_OFFLINE} (predict)", kind="unreachable")

    async def no_sleep(_s: float) -> None:
        return None

    from phoneemu.crypto.certs import cert_der

    refused: list[str] = []
    inner = offline_tvs(tvs_certs, tvs_roles)
    if tvs_reachable and not tvs_certs:
        async def knows_nothing(*_a: Any, **_k: Any) -> Any:
            from phoneemu.phone.store import TvsStatus
            return TvsStatus.NOT_FOUND
        inner = knows_nothing
    new_itl = inputs.new_itl(phone_mac, prof.trust_list_limit)
    assumed: list[str] = []
    tvs = tvs_live.asker(prof.tls_versions) if tvs_live is not None else _server_checking_tvs(
        inner, explicit=[cert_der(c) for c in tvs_server_certs],
        inferred=_inferred_tvs_certs(new_itl, held.itl),
        vouched=_vouched_tvs_certs([cert_der(c) for c in tvs_certs], held.itl), refused=refused,
        assumed=assumed if _names_no_tvs_certificate(new_itl) else None)
    phone = Phone(mac=phone_mac, profile=prof, flash=None, clock=lambda: now,
                  tvs=tvs, capf=no_capf, sleep=no_sleep,
                  image_signers=tuple(image_signers), capf_retries=0)
    held.restore(phone)
    if keys_from is not None:
        notes += hold_flash_keys(phone, keys_from, prof)
    fetcher = _FileFetcher(files, phone_mac, folder=inputs.folder, read=inputs.read)
    # the offline CAPF's failure is no live phone's: it does not decide a boot that accepted its config
    report = capf_not_deciding(await phone.boot(BootTarget(host="files", tftp_port=69, use_http=False),
                                                fetcher=fetcher))
    from phoneemu.phone.store import TrustStore
    from phoneemu.scenario.predict_sip import forecast_sip

    before = TrustStore(profile=prof)
    held.restore_store(before)
    sip = forecast_sip(before, phone.store, prof, callmanager_certs)
    notes += [TVS_KNOWS_NOTHING] if rests_on_tvs_knowing_nothing(report, knows_nothing=tvs_reachable and not
                                                                 tvs_certs and tvs_live is None) else []
    notes += list(dict.fromkeys(refused))
    notes += [_assumed_note(server) for server in dict.fromkeys(assumed)]
    if asked is None:
        notes += _unasked_notes(inputs.named, fetcher)
    else:
        asked.update(p for p in _used(fetcher) if p is not None)
    return PredictResult(mac=phone_mac, served=tuple(fetcher.served), report=report, notes=tuple(notes),
                         sip=sip, signed_by_lab=held.signed_by_lab(fetcher.signers.verdict))


def hold_flash_keys(phone: Phone, flash_dir: Path, profile: PhoneProfile) -> list[str]:
    """Give ``phone`` the MIC, LSC and manual key of the flash ``flash_dir`` (read only); the notes say
    what could not be used, and why."""
    from phoneemu.errors import EncodeError
    from phoneemu.phone.flash import Flash

    reader = Flash(flash_dir, profile=profile, durable=False)
    mic, lsc, symmetric = reader.held_keys()
    notes = [f"{flash_dir}: {problem}" for problem in reader.problems]
    phone.store.mic, phone.store.lsc = mic, lsc
    if symmetric is not None:
        try:
            phone.store.set_symmetric_key(symmetric)
        except EncodeError as exc:
            notes.append(f"{flash_dir}: symmetric.key: {exc.message}; not used")
    return notes


def _used(fetcher: _FileFetcher) -> set[Path | None]:
    """The given files the phone asked for."""
    return {fetcher.files.get(name) or fetcher.alias.get(name) for name, _ in fetcher.served}


def _unasked_notes(named: Sequence[Path], fetcher: _FileFetcher) -> list[str]:
    """A note for each file given by name that the phone never asked for (a file of another phone, a
    name the phone does not request): its content played no part in the prediction."""
    used = _used(fetcher)
    # the file's name with its control characters escaped: a note is printed (nothing raw on the terminal)
    return [f"{printable(p.name)} given but never asked for by phone {fetcher.mac}: not part of this "
            f"prediction (it asked for {', '.join(dict.fromkeys(n for n, _ in fetcher.served)) or 'nothing'})"
            for p in named if p not in used]


_UNASKED_SHOWN = 10  # file names the fleet's "asked for by no phone" note lists
#: The predicted outcomes of a phone, in the order they are reported.
OUTCOMES = ("accepted", "locked out", "failed")

#: the rules of a lockout because no TVS server answered (spec §G.3.4, §G.4 (c))
_TVS_UNREACHABLE_RULES = frozenset({"G.3.4-tvs-unreachable", "G.4-tvs-unreachable"})
#: what a lockout resting on the offline TVS waits on, said after "would lock out" (README: predict's TVS)
TVS_OFFLINE_ASK = "offline: ask it with --tvs-live, or give --tvs-cert"


def rests_on_offline_tvs(rule: object, reason: object) -> bool:
    """Whether a lockout decided by ``rule`` for ``reason`` rests on predict's offline default, every TVS
    server unreachable (no ``--tvs-cert``, ``--tvs-reachable`` nor ``--tvs-live``, README): a
    ``-tvs-unreachable`` rule (spec §G.3.4, §G.4) whose servers were tried offline — not a QUERY too large
    to send, nor a config naming no TVS server, which no TVS answer changes. Such a phone is said to lock out
    *if its TVS cannot be reached* (was: plainly, 200 of 200 where the real boot was 200 ok, TVS vouching).
    Told by the offline TVS's own words in the reason, after each server tried
    (:data:`phoneemu.scenario.replay.TVS_UNAVAILABLE_OFFLINE`, imported: never a copy that could drift)."""
    from phoneemu.scenario.replay import TVS_UNAVAILABLE_OFFLINE

    return rule in _TVS_UNREACHABLE_RULES and isinstance(reason, str) and TVS_UNAVAILABLE_OFFLINE in reason


#: the TVS rules deciding on its "not found" (spec §G.3.4, §G.4, §E.7.1)
_TVS_UNKNOWN_RULES = frozenset({"G.3.4-tvs-unknown-signer", "G.4-tvs-unknown-signer",
                                "E.7.1-https-tvs-unknown"})
#: the note of a verdict resting on ``--tvs-reachable``'s TVS that knows nothing (README: predict's TVS)
TVS_KNOWS_NOTHING = ("TVS reachable but given no certificate to vouch for (--tvs-cert): it knows no signer; "
                     "ask the real one with --tvs-live, or give --tvs-cert with the certificate it would "
                     "return (a lab's: DIR/certs/itlrecovery.pem)")


def rests_on_tvs_knowing_nothing(report: BootReport, *, knows_nothing: bool) -> bool:
    """Whether the verdict of ``report`` (not accepted) rests on the TVS ``--tvs-reachable`` stands in for
    when no ``--tvs-cert`` is given (``knows_nothing``): it answers "not found" for every certificate, so a
    ``-tvs-unknown`` rule deciding says nothing of the real TVS, which knows its own cluster's new
    certificates (after ``lab regenerate DIR itlrecovery``: predicted locked out, the reboot ok). Such a
    prediction carries the note :data:`TVS_KNOWS_NOTHING` (text, JSON, JUnit; one phone and a fleet), as one
    resting on the offline TVS is qualified (:func:`rests_on_offline_tvs`); its result line stays plain: that
    TVS is a stand-in for one that does not know the signer, a real case (spec §G.6 problem 3)."""
    deciding = report.deciding
    return (knows_nothing and not report.ok and deciding is not None
            and deciding.rule in _TVS_UNKNOWN_RULES)


#: what a ``--models`` phone's lockout resting on no config given waits on (:func:`rests_on_no_config`)
NO_CONFIG_GIVEN = ("no TVS servers known: put each phone's SEP<MAC>.cnf.xml.sgn (or .cnf.xml) in "
                   "--installed-config-dir")


def rests_on_no_config(detail: Mapping[str, Any] | None) -> bool:
    """Whether the lockout of a fleet phone's prediction (its JSON view) rests on no config given for it: a
    phone listed by ``--models`` holding no config (none in ``--installed-config-dir``, or no folder given)
    whose lockout was decided because TVS was not usable for that alone — the config names the TVS servers
    (spec §E.7.5), so the real phone, which holds its config, asks its TVS, which may vouch (spec §G.3.4).
    Such a phone is said to lock out *only because no config was given* (was: plainly, 3 of 5 where the real
    boot was 5 ok, TVS vouching). Not when something else stands in TVS's way too — no ITL, the rollback
    ITL, no TVS record, a model without TVS — which a config would not change (was: said so of a phone
    holding a CTL and no ITL; and a config signer's G.4 rejection, "TVS is not usable", was not told).
    Told by the boot's words, the reason ending ``TVS not usable: <no config>`` (:data:`~phoneemu.phone.
    rules.TVS_NOT_USABLE`, :data:`~phoneemu.phone.rules.NO_CONFIG_HELD`, imported: never a copy). A
    ``--fleet-flash`` phone's flash is what the phone holds: no config there is none on the phone, its
    lockout as real as the rest."""
    detail = detail or {}
    deciding = detail.get("deciding") or {}
    reason = deciding.get("reason")
    return ("listed" in detail and (detail.get("installed") or {}).get("config") is None
            and isinstance(reason, str) and reason.endswith(f"{TVS_NOT_USABLE}: {NO_CONFIG_HELD}"))


@dataclass(frozen=True, kw_only=True)
class FleetPhone:
    """One entry of a fleet flash folder: a phone's prediction (kept small: 100,000 of them fit), or
    why the entry was skipped."""

    entry: str
    mac: str | None = None
    profile: str | None = None
    outcome: str | None = None  # one of OUTCOMES; None when skipped
    rule: str | None = None  # the deciding rule ("(none)" when the boot decided nothing)
    detail: dict[str, Any] | None = None  # the JSON view of the prediction, notes apart
    notes: tuple[str, ...] = ()  # PredictResult.notes
    #: names the phone asked for that the new files did not hold, its MAC written ``<MAC>``
    not_given: tuple[str, ...] = ()
    skipped: str | None = None
    signed_by_lab: bool | None = None  # PredictResult.signed_by_lab


def run_wide_notes(phones: Sequence[FleetPhone]) -> tuple[str, ...]:
    """The notes every predicted phone of a fleet has (e.g. ``--tvs-cert`` unused by all): said once for
    the run, not per phone; in the order of the first phone's notes. None when nothing was predicted."""
    done = [ph for ph in phones if ph.outcome is not None]
    if not done:
        return ()
    common = set(done[0].notes).intersection(*(ph.notes for ph in done[1:]))
    return tuple(n for n in done[0].notes if n in common)


def outcome(report: BootReport) -> str:
    """``locked out`` (spec §G: the boot's ``locked_out``), ``accepted`` (ended with an accepted
    config), else ``failed`` (e.g. its config is not served: a problem, but not a lockout)."""
    return "locked out" if report.locked_out else "accepted" if report.ok else "failed"


async def predict_fleet(root: Path, new_files: Sequence[Path], *, profile: str | None, now: int,
                        limit: int | None = None, progress: Callable[[int, int], None] | None = None,
                        **options: Any) -> list[FleetPhone]:
    """:func:`predict_boot` for every phone flash ``root/<MAC>`` (``phone.json`` names its MAC and
    profile; its ITL, CTL and config are the installed ones; ``profile`` overrides). The new files are
    gathered once (:class:`PredictInputs`); an entry that is not a phone's flash, or whose installed
    files cannot be used, is skipped with the reason; so is a second folder naming a MAC already
    predicted (each phone counts once). ``progress(done, total)`` is called after every entry.
    PhoneEmuError for a bad ``root`` or new file."""
    from phoneemu.crypto import signatures
    from phoneemu.phone.flashes import phone_flashes

    entries = phone_flashes(root, profile=profile, limit=MAX_FLEET if limit is None else limit,
                            what="predict")
    inputs = PredictInputs(new_files)
    # identical signature checks (one new ITL against one installed generation) are made once
    old_cache = signatures.set_verify_cache(signatures.VerifyCache())
    asked: set[Path] = set()
    try:
        phones = await _predict_each(entries, inputs, now=now, progress=progress, asked=asked, **options)
    finally:
        signatures.set_verify_cache(old_cache)
    return _noting_unasked(phones, inputs, asked)


async def predict_listed(phones: Sequence[tuple[str, str]], new_files: Sequence[Path], *, now: int,
                         installed_itl: Path | None = None, installed_ctl: Path | None = None,
                         config_dir: Path | None = None, progress: Callable[[int, int], None] | None = None,
                         **options: Any) -> list[FleetPhone]:
    """:func:`predict_boot` for each listed phone (MAC, profile: a site's CUCM phone export, ``predict
    --models``), all holding ``installed_itl`` / ``installed_ctl`` (the old cluster's lists, which a
    phone that booted there holds) and each its own config from ``config_dir``
    (``SEP<MAC>.cnf.xml.sgn``, else ``.cnf.xml``; none there: it holds none, noted: its TVS servers
    unknown). A real site's fleet predicted from files, no emulated flash needed; no phone holds keys,
    so a new encrypted config is not decrypted (noted by the boot). PhoneEmuError for a bad new or
    installed file (checked once, before any phone)."""
    from phoneemu.crypto import signatures
    from phoneemu.formats.config import config_file_name
    from phoneemu.phone.profile import get_profile

    if len(phones) > MAX_FLEET:
        raise PhoneEmuError(f"{len(phones)} phones listed; predict at most {MAX_FLEET} at once",
                            path="models")
    inputs = PredictInputs(new_files)
    largest = max((get_profile(prof).trust_list_limit for _mac, prof in phones), default=1 << 16)
    load_installed(limit=largest, itl=installed_itl, ctl=installed_ctl)  # bad input: said before any phone
    old_cache = signatures.set_verify_cache(signatures.VerifyCache())
    asked: set[Path] = set()
    out: list[FleetPhone] = []
    try:
        for n, (mac, prof) in enumerate(phones):
            if progress is not None and n:
                progress(n, len(phones))
            config = None if config_dir is None else phone_config_in(config_dir, mac)
            missing = () if config is not None or config_dir is None else (
                f"no {config_file_name(mac, 'sgn')} (nor .cnf.xml) in {config_dir}: holds no config",)
            held = {"itl": installed_itl, "ctl": installed_ctl, "config": config}
            out.append(await _predict_one(inputs, mac, mac, prof, held, now=now, keys_from=None,
                                          where={"listed": mac}, notes=missing, asked=asked, listed=True,
                                          **options))
    finally:
        signatures.set_verify_cache(old_cache)
    if progress is not None:
        progress(len(phones), len(phones))
    return _noting_unasked(out, inputs, asked)


def _noting_unasked(phones: list[FleetPhone], inputs: PredictInputs, asked: set[Path]) -> list[FleetPhone]:
    """``phones`` with a note on each prediction naming the given files no phone asked for."""
    unasked = [printable(p.name) for p in inputs.named if p not in asked]  # printed: escaped, never raw
    if not unasked:
        return phones
    shown = ", ".join(unasked[:_UNASKED_SHOWN]) + (f" and {len(unasked) - _UNASKED_SHOWN} more"
                                                   if len(unasked) > _UNASKED_SHOWN else "")
    note = (f"{counted(len(unasked), 'file')} given but asked for by no phone of the fleet: {shown} (not "
            "part of any prediction)")
    return [replace(ph, notes=(*ph.notes, note)) if ph.outcome is not None else ph for ph in phones]


async def _predict_each(entries: list[FlashEntry], inputs: PredictInputs, *, now: int,
                        progress: Callable[[int, int], None] | None, **options: Any) -> list[FleetPhone]:
    from phoneemu.phone.flash import Flash, not_loaded_notes
    from phoneemu.phone.profile import get_profile

    out: list[FleetPhone] = []
    for n, e in enumerate(entries):
        if progress is not None and n:
            progress(n, len(entries))
        if e.skipped is not None or e.mac is None or e.profile is None:
            out.append(FleetPhone(entry=e.entry, mac=e.mac, skipped=e.skipped))
            continue
        d = e.path
        try:  # what its boot would load: a damaged file is left out and noted, as the boot does
            flash = Flash(d, profile=get_profile(e.profile))
            held = flash.held_files()
        except PhoneEmuError as exc:
            out.append(FleetPhone(entry=e.entry, mac=e.mac, profile=e.profile, skipped=str(exc)))
            continue
        out.append(await _predict_one(inputs, e.entry, e.mac, e.profile, held, now=now, keys_from=d,
                                      where={"flash": str(d)},
                                      notes=tuple(not_loaded_notes(d, flash.problems)), **options))
    if progress is not None:
        progress(len(entries), len(entries))
    return out


async def _predict_one(inputs: PredictInputs, entry: str, mac: str, prof: str, held: dict[str, Path | None],
                       *, now: int, keys_from: Path | None, where: dict[str, str],
                       notes: tuple[str, ...] = (), **options: Any) -> FleetPhone:
    """One phone of a fleet predicted (:func:`predict_boot`), holding ``held``; skipped with the reason
    when its installed files cannot be used. ``where`` (its flash, or that it was listed) and
    ``notes`` join its record."""
    from phoneemu.phone.boot import decision_dict

    try:
        r = await predict_boot(inputs, installed_itl=held["itl"], installed_ctl=held["ctl"],
                               installed_config=held["config"], mac=mac, profile=prof, now=now,
                               keys_from=keys_from, **options)
    except PhoneEmuError as exc:
        return FleetPhone(entry=entry, mac=mac, profile=prof, skipped=str(exc))
    except OSError as exc:  # e.g. an unreadable installed file: this phone only
        return FleetPhone(entry=entry, mac=mac, profile=prof,
                          skipped=f"{exc.filename or entry}: {exc.strerror or exc}")
    rep = r.report
    result = outcome(rep)
    return FleetPhone(entry=entry, mac=r.mac, profile=prof, outcome=result,
                      rule=rep.deciding.rule if rep.deciding is not None else "(none)",
                      detail={**where, "mac": r.mac, "profile": prof, "outcome": result,
                              "ok": rep.ok, "locked_out": rep.locked_out,
                              "installed": {k: v.name if v else None for k, v in held.items()},
                              "trust": dict(rep.trust), "config": rep.config,
                              "config_file": rep.config_file,
                              "deciding": decision_dict(rep.deciding) if rep.deciding else None,
                              "decisions": [{"rule": x.rule, "accepted": x.accepted, "file": x.file}
                                            for x in rep.decisions],
                              # the lists it would hold, which choose its ways out (ways_out.ways_group):
                              # a phone not accepted only (a dict each: 100,000 phones stay small)
                              "held": rep.held.as_json() if rep.held is not None and result != "accepted"
                              else None,
                              **({"sip": r.sip.as_dict()} if r.sip is not None else {})},
                      notes=(*notes, *r.notes),
                      not_given=tuple(name.replace(r.mac, "<MAC>") for name in r.not_given),
                      signed_by_lab=r.signed_by_lab)
