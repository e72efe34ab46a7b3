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
  servers the phone may ask (spec §E.7.5; without it TVS is not usable, as on a real phone).
* The phone requests its usual names; each new file (or each file of a given folder, e.g. a copy
  of a cluster's TFTP root) is served under its own base name, read when requested, and
  ``CTLFile.tlv`` / ``ITLFile.tlv`` also answer ``CTLSEP<MAC>.tlv`` / ``ITLSEP<MAC>.tlv`` (and the
  other way round). Any other name is "file not found", as from a cluster without it.
* The phone's MAC is ``--mac``, else the MAC in a new ``SEP<MAC>...`` file name, else 001122334455.
* TVS is unreachable unless ``--tvs-cert`` is given: then it vouches for those certificates (with
  ``--tvs-roles``) and answers "not found" for any other, as in ``replay``. CAPF is unreachable.
  When the phone cannot ask TVS at all (no installed config, or one naming no TVS server), the
  result carries a note saying why ``--tvs-cert`` went unused.
* An installed ``.enc.sgn`` config is decrypted with ``installed_config_key`` (the phone's key);
  without one it is an error saying so.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from phoneemu.errors import PhoneEmuError, TransportError
from phoneemu.files import read_at_most

if TYPE_CHECKING:
    from phoneemu.phone.boot import BootReport
    from phoneemu.phone.store import AcceptedConfig

__all__ = ["PredictResult", "predict_boot"]

_MAX_FILE = 16 << 20
_MAX_FILES = 10_000
_SEP_MAC = re.compile(r"^SEP([0-9A-Fa-f]{12})\.")
_ALIASES = {"CTLFile.tlv": "CTLSEP{mac}.tlv", "ITLFile.tlv": "ITLSEP{mac}.tlv"}


@dataclass(frozen=True, kw_only=True)
class PredictResult:
    """The offline boot: what was asked for, what was served, what the phone decided."""

    mac: str
    served: tuple[tuple[str, str], ...]
    report: BootReport
    #: What the prediction could not use and why (e.g. ``--tvs-cert`` with no TVS to ask).
    notes: tuple[str, ...] = ()


class _FileFetcher:
    """Serves the given files by name (module rules), read when asked for; records every request."""

    def __init__(self, files: dict[str, Path], mac: str) -> None:
        self.files = dict(files)
        for general, own in _ALIASES.items():
            per_phone = own.format(mac=mac)
            if general in files and per_phone not in files:
                self.files[per_phone] = files[general]
            elif per_phone in files and general not in files:
                self.files[general] = files[per_phone]
        self.given = set(files)
        self.served: list[tuple[str, str]] = []

    async def fetch(self, name: str) -> bytes:
        path = self.files.get(name)
        if path is None:
            self.served.append((name, "not given → not found"))
            raise TransportError("not among the given files", kind="not-found", code=1, path=name)
        data = read_at_most(path, _MAX_FILE, what="file")
        alias = "" if name in self.given else f" ({path.name})"
        self.served.append((name, f"{len(data)} bytes{alias}"))
        return data


def _files(paths: Sequence[Path]) -> dict[str, Path]:
    """Name → path of the given files; a folder gives its files (a TFTP root), at most _MAX_FILES."""
    found: dict[str, Path] = {}
    for p in paths:
        members = sorted(q for q in p.iterdir() if q.is_file()) if p.is_dir() else [p]
        for q in members:
            if not p.is_dir() and not q.is_file():
                raise PhoneEmuError(f"{q}: no such file", path="files")
            if q.name in found:
                raise PhoneEmuError(f"{q}: a second file named {q.name} (the other: {found[q.name]})",
                                    path="files")
            found[q.name] = q
            if len(found) > _MAX_FILES:
                raise PhoneEmuError(f"more than {_MAX_FILES} files given", path="files")
    return found


def _default_mac(names: Sequence[str]) -> str:
    for name in names:
        m = _SEP_MAC.match(name)
        if m:
            return m.group(1).upper()
    return "001122334455"


def _installed_config(path: Path, key: Any = None) -> AcceptedConfig:
    """The phone's current config: a signed ``.sgn`` (its body), plain XML, or an ``.enc.sgn``
    decrypted with ``key`` (the phone's private key)."""
    from phoneemu.formats import config as config_fmt
    from phoneemu.formats import encrypted, signed
    from phoneemu.formats.detect import detect
    from phoneemu.phone.store import AcceptedConfig

    data = read_at_most(path, _MAX_FILE, what="installed config")
    try:
        kind = detect(data, path.name)
    except PhoneEmuError:
        kind = "xml"  # config_fmt.parse says what is wrong with it
    if kind == "enc" and key is None:
        raise PhoneEmuError(
            f"{path}: installed config is encrypted (.enc.sgn): give the phone's private key to decrypt it "
            "(--installed-config-key PEM: its LSC key, or the MIC key when it has no LSC), or the "
            "config as plain XML (SEP<MAC>.cnf.xml)", path="installed-config")
    try:
        if kind == "enc":
            xml = encrypted.decrypt_pki(encrypted.parse(data), key)
        else:
            xml = signed.parse(data).body if data[:3] == b"\x01\x00\x02" else data
        return AcceptedConfig(file=path.name, xml=xml, config=config_fmt.parse(xml))
    except PhoneEmuError as exc:
        raise PhoneEmuError(f"{path}: installed config: {exc}", path="installed-config") from None


def _tvs_notes(tvs_certs: Sequence[Any], config: AcceptedConfig | None,
               config_path: Path | None) -> list[str]:
    """Why ``--tvs-cert`` cannot be used by this phone (spec §E.7.5: its current config names the TVS
    servers it asks); empty when it can."""
    if not tvs_certs:
        return []
    if config is None:
        return ["--tvs-cert not used: the phone learns its TVS servers from its current config; give "
                "--installed-config (its SEP<MAC>.cnf.xml.sgn, or .cnf.xml)"]
    if not config.config.tvs_servers:
        name = config_path.name if config_path is not None else "config"
        return [f"--tvs-cert not used: the installed config {name} names no TVS server (no <TVS><members> "
                "element), so the phone has no TVS to ask"]
    return []


async def predict_boot(new_files: Sequence[Path], *, installed_itl: Path | None = None,
                       installed_ctl: Path | None = None, installed_config: Path | None = None,
                       mac: str | None = None, profile: str = "cp-8861",
                       now: int, tvs_certs: Sequence[Any] = (),
                       tvs_roles: frozenset[int] = frozenset({0, 2}),
                       image_signers: Sequence[Any] = (), installed_config_key: Any = None) -> PredictResult:
    """Boot a phone holding the installed lists on ``new_files`` (see module rules)."""
    from phoneemu.fleet.engine import PRESTATE_RULES
    from phoneemu.formats import trustlist
    from phoneemu.formats.config import normalise_mac
    from phoneemu.phone import rules
    from phoneemu.phone.boot import BootTarget
    from phoneemu.phone.phone import Phone
    from phoneemu.phone.profile import get_profile
    from phoneemu.scenario.replay import offline_tvs

    prof = get_profile(profile)
    files = _files(new_files)
    phone_mac = normalise_mac(mac) if mac else _default_mac(list(files))
    installed: dict[str, Any] = {}
    wanted: tuple[tuple[Literal["CTL", "ITL"], Path | None], ...] = (("CTL", installed_ctl),
                                                                    ("ITL", installed_itl))
    for kind, path in wanted:
        if path is not None:
            data = read_at_most(path, prof.trust_list_limit, what=f"installed {kind}")
            try:
                tl = trustlist.parse(data, limit=prof.trust_list_limit, kind=kind)
            except PhoneEmuError as exc:
                raise PhoneEmuError(f"{path}: installed {kind}: {exc}",
                                    path=f"installed-{kind.lower()}") from None
            # CTL and ITL share one layout (§B): the header FILENAME says which, checked as the boot does
            wrong = rules.trust_list_name_problem(tl.header.filename, kind=kind)
            if wrong is not None:
                raise PhoneEmuError(f"{path}: given as the installed {kind}, but its {wrong}",
                                    path=f"installed-{kind.lower()}")
            installed[kind] = tl

    config = _installed_config(installed_config, installed_config_key) if installed_config is not None \
        else None
    notes = _tvs_notes(tvs_certs, config, installed_config)

    async def no_capf(*_a: Any, **_k: Any) -> Any:
        raise TransportError("CAPF unavailable offline (predict)", kind="unreachable")

    async def no_sleep(_s: float) -> None:
        return None

    phone = Phone(mac=phone_mac, profile=prof, flash=None, clock=lambda: now,
                  tvs=offline_tvs(tvs_certs, tvs_roles), capf=no_capf, sleep=no_sleep,
                  image_signers=tuple(image_signers), capf_retries=0)
    ctl_rule, itl_rule, cfg_rule = PRESTATE_RULES
    phone.store.restore(ctl=installed.get("CTL"), itl=installed.get("ITL"), config=config,
                        ctl_rule=ctl_rule, itl_rule=itl_rule, config_rule=cfg_rule)
    fetcher = _FileFetcher(files, phone_mac)
    report = await phone.boot(BootTarget(host="files", tftp_port=69, use_http=False), fetcher=fetcher)
    return PredictResult(mac=phone_mac, served=tuple(fetcher.served), report=report, notes=tuple(notes))
