"""Every lab operation a user runs (each of ``phoneemu lab --help``'s, and ``lab serve``'s own writes),
killed with a real SIGKILL just before one of its disk writes, leaves a lab that opens whole: the old state
or the new, and every file of the lab folder (identities, MICs, LSCs, served files) the old lab's or the
new's with it; the served files what a fresh rebuild of that state gives, signed by the identities in force,
each key its certificate's (a phone's MIC too), and the trust lists naming them; nothing staged left over;
keys 0600. Each operation is killed at every write, or, with many, at about :data:`AT_MOST` of them spread
over it plus every one next to the state's save (:func:`tests.killed_write_helpers.kill_points`)."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import signal
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from phoneemu.crypto import certs, keys
from phoneemu.crypto.keys import KeySpec
from phoneemu.errors import PhoneEmuError
from phoneemu.formats import encrypted, firmware, signed, trustlist
from phoneemu.formats.header import SignedHeader, verify_signature
from phoneemu.lab.cluster import DEFAULT_EXPORT, LabCluster
from phoneemu.lab.state import load_state
from tests.killed_write_helpers import (
    count_writes,
    kill_points,
    killed_copy,
    restore_copy,
    run_call_killed,
    write_log,
)

NOW = 1_780_000_000
LATER = NOW + 3600
PKI_MAC, PLAIN_MAC = "001122334455", "00112233445A"  # in every lab: a config encrypted to its MIC; a plain
NEW_MACS = ("00AABBCCDD01", "00AABBCCDD02", "00AABBCCDD03")
#: write points tried per operation, besides the ones next to the state's save (all when fewer)
AT_MOST = 5
OTHER = "other"  # the folder of the exchange's other lab, beside the lab's copy
_TIME_OF_A_LAB_FILE = 0  # a file's signing time, as compared (:func:`_meaning`)

Tree = dict[str, tuple[int, object]]
Operation = Callable[[LabCluster], object]


def _regenerate(name: str) -> Operation:
    return lambda c: c.regenerate(name, now=LATER)


def _record_lsc(c: LabCluster) -> None:
    """``lab serve``'s CAPF records the LSC it issued to a phone (:meth:`LabCluster.record_lsc`)."""
    key = keys.generate_key(KeySpec.parse("rsa1024"), unsafe_seed="lsc of the killed operations")
    lsc = c.issue_lsc(f"SEP{PLAIN_MAC}", keys.public_key_spki_der(key.public_key()), now=LATER)
    c.record_lsc(PLAIN_MAC, lsc, now=LATER)


#: each operation (by the name it has in ``lab --help``, with its case) and the lab it runs on
#: (:func:`pristines`): ``main`` in mixed mode with two nodes, extra certificates, two phones and an
#: exported ITLRecovery key it regenerated since; ``reset`` the same after itl-reset and ctl-reset;
#: ``plain`` one node and one phone, never in mixed mode
OPERATIONS: dict[str, tuple[str, Operation]] = {
    "phone-add": ("main", lambda c: c.add_phone(NEW_MACS[0], encrypt="pki", now=LATER)),
    "phone-add-count": ("main", lambda c: c.add_phones(NEW_MACS, now=LATER)),
    "phone-add-update": ("main", lambda c: c.add_phone(PLAIN_MAC, model="8861", encrypt="symmetric",
                                                       symmetric_key="11" * 16, now=LATER)),
    "phone-add-mic": ("main", lambda c: c.add_phone(PKI_MAC, mic=c.phone_identity(PLAIN_MAC), now=LATER)),
    **{f"regenerate-{name}": ("main", _regenerate(name))
       for name in ("callmanager", "tvs", "itlrecovery", "capf", "callmanager-2", "tvs-2")},
    "mixed-mode-on": ("plain", lambda c: c.set_mixed_mode(True, now=LATER)),
    "mixed-mode-off": ("main", lambda c: c.set_mixed_mode(False, now=LATER)),
    "itl-reset-localkey": ("main", lambda c: c.itl_reset("localkey", now=LATER)),
    "itl-reset-remotekey": ("main", lambda c: c.itl_reset("remotekey", now=LATER)),  # DIR/exported's key
    "restart-tftp": ("reset", lambda c: c.restart_tftp(now=LATER)),
    "restart-tvs": ("main", lambda c: c.restart_tvs(now=LATER)),
    "service": ("main", lambda c: c.set_service("tvs-2", False, now=LATER)),
    "ctl-reset": ("main", lambda c: c.ctl_reset("localkey", now=LATER)),
    "ctl-update": ("reset", lambda c: c.ctl_update(now=LATER)),
    "add-node": ("main", lambda c: c.add_node(now=LATER)),
    "remove-node": ("main", lambda c: c.remove_node(now=LATER)),
    "rollback": ("main", lambda c: c.set_rollback(True, now=LATER)),
    "add-certs": ("main", lambda c: c.add_certs(3, now=LATER)),
    "remove-certs": ("main", lambda c: c.remove_certs(None, now=LATER)),
    "encryption-on": ("main", lambda c: c.set_encryption([PLAIN_MAC], True, mode="pki", now=LATER)),
    "encryption-off": ("main", lambda c: c.set_encryption([PKI_MAC], False, now=LATER)),
    "security-mode": ("main", lambda c: c.set_security_mode([PKI_MAC, PLAIN_MAC], "encrypted", now=LATER)),
    "calling-search-space": ("main", lambda c: c.set_calling_search_space([PKI_MAC], partition="lab",
                                                                          css=["lab"], now=LATER)),
    "digest": ("main", lambda c: c.set_digest([PKI_MAC, PLAIN_MAC], "user", "secret", now=LATER)),
    "itl-capf": ("main", lambda c: c.set_itl_capf(False, now=LATER)),
    "secure-urls": ("main", lambda c: c.set_secure_urls("http", now=LATER)),
    "signature-algorithm": ("main", lambda c: c.set_signature_algorithm("sha512", now=LATER)),
    "upgraded": ("main", lambda c: c.set_upgraded(True, years=10, now=LATER)),
    "exchange": ("main", lambda c: c.exchange_certificates(c.root.parent / OTHER, now=LATER)),
    "tamper-itl": ("main", lambda c: c.tamper("ITLFile.tlv", now=LATER)),
    "tamper-config": ("main", lambda c: c.tamper(f"SEP{PLAIN_MAC}.cnf.xml.sgn", offset=100, now=LATER)),
    "sbd": ("main", lambda c: c.set_sbd(False, now=LATER)),
    "autoregistration": ("main", lambda c: c.set_autoregistration(False, now=LATER)),
    "tvs-ttl": ("main", lambda c: c.set_tvs_ttl(600, now=LATER)),
    "load": ("main", lambda c: c.set_load("sip88xx.14-3-1", now=LATER)),
    "load-tampered": ("main", lambda c: c.set_load("sip88xx.14-3-2", macs=[PLAIN_MAC], tamper=True,
                                                   now=LATER)),
    "capf": ("main", lambda c: c.set_capf([PLAIN_MAC], "install", auth_mode="null-string", now=LATER)),
    "itlrecovery-export": ("main", lambda c: c.export_itlrecovery(c.root / "exported" / "again.pem")),
    "itlrecovery-import": ("main", lambda c: c.import_itlrecovery(c.root / DEFAULT_EXPORT, now=LATER)),
    "clock": ("main", lambda c: c.advance_clock(3600)),
    # lab serve's own writes: the address and ports it serves on, its HTTPS identity, a CAPF outcome
    "serve-host": ("main", lambda c: c.set_host("lab.example", now=LATER)),
    "serve-ports": ("main", lambda c: c.set_ports(tvs=12445, now=LATER)),
    "serve-https-identity": ("main", lambda c: c.app_server_identity(now=LATER)),
    "serve-capf-lsc": ("main", _record_lsc),
}


@pytest.fixture(scope="module")
def pristines(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The seeded labs the operations run on (:data:`OPERATIONS`), and the exchange's other lab."""
    top = tmp_path_factory.mktemp("every-operation")
    made = {}
    plain = LabCluster.init(top / "plain", seed=7, key_spec="rsa1024", now=NOW, durable=False)
    plain.add_phone(PLAIN_MAC, model="7962", now=NOW)
    made["plain"] = plain.root
    main = LabCluster.init(top / "main", seed=7, key_spec="rsa1024", now=NOW, durable=False)
    main.export_itlrecovery()  # DIR/exported/itlrecovery.pem: what remotekey and import restore
    main.regenerate("itlrecovery", now=NOW)
    main.set_mixed_mode(True, now=NOW)
    main.add_node(now=NOW)
    main.add_certs(2, now=NOW)
    main.add_phone(PKI_MAC, encrypt="pki", now=NOW)
    main.add_phone(PLAIN_MAC, model="7962", now=NOW)
    made["main"] = main.root
    shutil.copytree(main.root, top / "reset")
    reset = LabCluster.open(top / "reset", durable=False)
    reset.itl_reset("localkey", now=NOW)
    reset.ctl_reset("localkey", now=NOW)
    made["reset"] = reset.root
    made[OTHER] = LabCluster.init(top / OTHER, seed=8, name="other", key_spec="rsa1024", now=NOW,
                                  durable=False).root
    return made


@pytest.fixture(scope="module")
def before(pristines: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Tree]:
    """The files of a pristine lab (:func:`pristines`), opened whole and its served files a fresh rebuild's
    (:func:`_opened_whole`), checked once for the module on a copy of it: every copy is the same tree (its
    names relative, its bytes and modes copied), the old lab of each operation run on that one."""
    top = tmp_path_factory.mktemp("before")
    trees: dict[str, Tree] = {}

    def tree(base: str) -> Tree:
        if base not in trees:
            shutil.copytree(pristines[base], top / base)
            trees[base] = _opened_whole(top / base, f"the {base} lab before", rebuilt=True)
        return trees[base]
    return tree


#: what the comparison of two labs' files leaves out: the locks; the temporary file of an atomic write killed
#: before its rename (``phoneemu.files.atomic_write``: ``.NAME.tmpPID-THREAD``, never read; left alone, see
#: the report); a phone's LSC files (its own commit rule, :meth:`LabCluster.record_lsc`: compared as the LSC
#: :meth:`LabCluster.phone_lsc` answers, :func:`_opened_whole`)
_NOT_COMPARED = re.compile(r"(?:.*\.lock|(?:.*/)?\.[^/]+\.tmp\d+-\d+"
                           r"|phones/[^/]+/(?:lsc\.pem|\.lsc-staged\.pem))")


def _entries(folder: str, prefix: str = "") -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Every entry under ``folder`` (as ``Path.rglob("*")`` lists them: into no linked folder), by its name
    relative to it (``/``-separated); through ``os.scandir``: the lab folder is listed at each kill, and
    ``rglob`` with ``relative_to`` was a third of :func:`_tree`'s CPU."""
    with os.scandir(folder) as listing:
        found = list(listing)
    for entry in found:
        yield prefix + entry.name, entry
        if entry.is_dir(follow_symlinks=False):
            yield from _entries(entry.path, f"{prefix}{entry.name}/")


def _tree(root: Path, lab: LabCluster) -> Tree:
    """Every file and folder of the lab folder (but :data:`_NOT_COMPARED`), with its mode and bytes (None: a
    folder); an ``.enc.sgn``, never the same bytes twice (its key wrap is random: the cluster module's
    docstring), decrypted (:func:`_meaning`)."""
    out: Tree = {}
    for name, entry in sorted(_entries(str(root)), key=lambda named: named[0]):
        if _NOT_COMPARED.fullmatch(name):
            continue
        mode = stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode)
        data = None if entry.is_dir() else Path(entry.path).read_bytes()
        out[name] = (mode, _meaning(lab, entry.name, data) if data and name.endswith(".enc.sgn") else data)
    return out


def _served(root: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((root / "tftp").iterdir())
            if p.is_file() and not p.name.startswith(".")}


def _unsigned(header: SignedHeader, *, wrap: bool = False) -> SignedHeader:
    """``header`` without what a signing at another time changes (and without the random key wrap)."""
    plain = dataclasses.replace(header, timestamp=_TIME_OF_A_LAB_FILE, signature=b"")
    return dataclasses.replace(plain, encryption=None) if wrap else plain


def _signer_key(lab: LabCluster, name: str) -> keys.PublicKey:
    """The key in force that signs served file ``name``."""
    if name.startswith("ITL"):
        signer = lab.state.itl_signer
    elif name.startswith("CTL"):
        signer = lab.state.ctl_signer
    else:
        signer = "imagesigning" if name.endswith(".loads") else "callmanager"
    return certs.cert_public_key(lab.identity(signer).cert)


def _meaning(lab: LabCluster, name: str, data: bytes) -> object:
    """What served file ``name`` says, its signature checked with the key in force: the bytes but for the
    signing time, a PKI ``.enc.sgn`` decrypted with the phone's MIC."""
    if name.endswith(".tlv"):
        tl = trustlist.parse(data, limit=1 << 20)
        verify_signature(tl.parsed_header, _signer_key(lab, name), fmt="tlv")
        return _unsigned(tl.header), tuple(tl.records)
    if name.endswith(".enc.sgn"):
        ef = encrypted.parse(data)
        verify_signature(ef.parsed_header, _signer_key(lab, name), fmt="enc")
        ph = lab.state.phones[name[3:15]]
        if ph.encrypt == "symmetric":
            assert ph.symmetric_key is not None
            plaintext = encrypted.decrypt_symmetric(ef, bytes.fromhex(ph.symmetric_key))
            return _unsigned(ef.header, wrap=True), plaintext
        return _unsigned(ef.header, wrap=True), encrypted.decrypt_pki(ef, lab.phone_identity(ph.mac)[1])
    if name.endswith(".sgn"):
        sf = signed.parse(data)
        verify_signature(sf.parsed_header, _signer_key(lab, name), fmt="sgn")
        return _unsigned(sf.header), sf.body
    if name.endswith(".loads") and not lab.state.loads.get(name.removesuffix(".loads")):
        img = firmware.parse(data)
        verify_signature(img.parsed_header, _signer_key(lab, name), fmt="firmware")
        return _unsigned(img.header), img.load_name, img.payload
    return data


def _untampered(data: bytes, offset: int | None) -> bytes:
    """A file ``lab tamper`` flipped a byte of, as it was (the flip again)."""
    if offset is None:
        return data
    flipped = bytearray(data)
    flipped[offset] ^= 0xFF
    return bytes(flipped)


def _as_rebuilt(root: Path, lab: LabCluster, where: str) -> None:
    """The served files of ``lab`` are what a fresh rebuild of its state from its identities gives (the
    ``tftp/`` folder of a copy removed, the copy opened), but for signing times; each signed by the key in
    force."""
    fresh_root = root.with_name(root.name + "-rebuilt")
    shutil.rmtree(fresh_root, ignore_errors=True)
    shutil.copytree(root, fresh_root, ignore=lambda folder, names: ["tftp"] if folder == str(root) else [])
    try:
        fresh = LabCluster.open(fresh_root, durable=False)
        rebuilt = {name: _meaning(fresh, name, data) for name, data in _served(fresh_root).items()}
    finally:
        shutil.rmtree(fresh_root, ignore_errors=True)
    served = _served(root)
    tampered = load_state(root).tampered
    assert sorted(served) == sorted(rebuilt), where
    for name, data in served.items():
        as_served = _meaning(lab, name, _untampered(data, tampered.get(name)))
        assert as_served == rebuilt[name], f"{where}: {name} is not the rebuilt one"


def _opened_whole(root: Path, where: str, *, rebuilt: bool = False) -> Tree:
    """Open the lab in ``root`` (as any command does) and check it is whole: nothing staged left, keys
    0600, each identity's key its certificate's, each phone's MIC a pair and each folder a phone's, the
    trust lists naming the signers in force (``rebuilt``: the served files a fresh rebuild's); its files
    (:func:`_tree`)."""
    try:
        lab = LabCluster.open(root, durable=False)
        lab.load_served()
    except PhoneEmuError as exc:
        pytest.fail(f"{where}: the lab does not open: {exc}")
    tree = _tree(root, lab)
    assert [n for n in tree if ".pending" in n or n.endswith((".staged", ".tmp"))] == [], where
    assert {n: mode for n, (mode, _) in tree.items() if n.endswith(".key") and mode != 0o600} == {}, where
    for name in lab.identity_names():
        ident = lab.identity(name)
        assert keys.public_key_spki_der(ident.key.public_key()) == \
            keys.public_key_spki_der(certs.cert_public_key(ident.cert)), f"{where}: {name}"
    folders = sorted(p.name for p in (root / "phones").iterdir()) if (root / "phones").exists() else []
    assert folders == sorted(lab.state.phones), where
    for mac in lab.state.phones:
        lab.phone_identity(mac)  # its key its MIC's, or a DecodeError naming it
        lsc = lab.phone_lsc(mac)
        tree[f"phones/{mac}: the LSC in force"] = (0, None if lsc is None else certs.cert_der(lsc))
    assert dict(lab.files()) == _served(root), where
    for kind in ("ITL", "CTL"):
        data = lab.get(f"{kind}File.tlv")
        if data is not None and f"{kind}File.tlv" not in lab.state.tampered:
            records = trustlist.parse(data, limit=1 << 20).records
            in_list = {r.certificate for r in records if r.certificate}
            assert {lab.identity("itlrecovery").der, lab.callmanager().der} <= in_list, f"{where}: {kind}"
    if rebuilt:
        _as_rebuilt(root, lab, where)
    return tree


def _outcome(tree: Tree, old: Tree, new: Tree, where: str, *, ahead: str | None = None) -> str:
    """``old`` or ``new``: the lab ``tree`` is, whole (but ``ahead``, a file written before the save: the old
    one or the new, whole, with either state)."""
    state = tree.get("cluster.json")
    assert state in (old["cluster.json"], new["cluster.json"]), f"{where}: a state neither old nor new"
    outcome, whole = ("new", new) if state == new["cluster.json"] else ("old", old)
    mixed = sorted(n for n in set(tree) | set(whole) if tree.get(n) != whole.get(n)
                   and not (n == ahead and tree.get(n) in (old.get(n), new.get(n))))
    assert mixed == [], f"{where}: the {outcome} state, beside files not its own: {mixed}"
    return outcome


#: an operation that writes a file of the lab's folder before its state's save, and the file (compared as
#: old or new whole with either state, :func:`_outcome`): the exported key, the log entry naming the export
#: after it (the export is what the user asked for, there either way; see the report)
WRITTEN_BEFORE_ITS_SAVE = {"itlrecovery-export": "exported/again.pem"}


@pytest.mark.slow  # about a dozen forks for each of about fifty operations
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.parametrize("op", list(OPERATIONS))
def test_an_operation_killed_at_its_writes_leaves_a_lab_that_opens_whole(
        pristines: dict[str, Path], before: Callable[[str], Tree], tmp_path: Path, op: str) -> None:
    """The old lab or the new, whole, at each write point tried; the exchange: each of its two labs, the
    other lab saved first (two saves, never one: see the report)."""
    base, operation = OPERATIONS[op]
    pristine, work, other = pristines[base], tmp_path / "work", tmp_path / OTHER
    also = [(pristines[OTHER], other)] if op == "exchange" else []
    shutil.copytree(pristine, work)
    old = before(base)
    old_other, new_other = {}, {}  # the other lab's files, before and after: the exchange's alone
    if also:  # the one operation that writes the other lab
        shutil.copytree(pristines[OTHER], other)
        old_other = before(OTHER)
    counted = tmp_path / "counted"
    writes = count_writes(work, operation, counted)
    log = write_log(counted)
    new = _opened_whole(work, f"{op}: run to its end", rebuilt=True)
    if also:
        new_other = _opened_whole(other, f"{op}: the other lab after", rebuilt=True)
    assert new["cluster.json"] != old["cluster.json"] and writes > 0
    outcomes = set()
    for kill_at in kill_points(log, AT_MOST, around=lambda write: write.endswith("/cluster.json")):
        where = f"{op} killed before write {kill_at} of {writes} ({log[kill_at - 1]})"
        killed_copy(pristine, work, operation, kill_at, counted, also=also)
        outcome = _outcome(_opened_whole(work, where), old, new, where, ahead=WRITTEN_BEFORE_ITS_SAVE.get(op))
        outcomes.add(outcome)
        if op == "exchange":
            theirs = _outcome(_opened_whole(other, where), old_other, new_other, f"{where}: the other lab")
            assert (theirs, outcome) != ("old", "new"), where
    assert "old" in outcomes


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_lab_init_killed_at_its_writes_leaves_a_lab_or_says_to_remove_the_folder(tmp_path: Path) -> None:
    """``lab init`` killed: the lab, whole, or a folder every command says is an init that did not finish,
    to remove (as ``lab init`` again says). Was, once init began to put its served files in place: "not a
    lab cluster ... create one with 'phoneemu lab init DIR'", which init then refused (the folder held the
    served files' lock ``.served.lock``, a name the check of what a killed init leaves did not know)."""
    root, counted = tmp_path / "lab", tmp_path / "counted"

    def init() -> Callable[[], object]:
        return lambda: LabCluster.init(root, seed=7, key_spec="rsa1024", now=NOW, durable=False)

    assert run_call_killed(init, 0, counted) == 0
    new = _opened_whole(root, "lab init run to its end", rebuilt=True)
    log = write_log(counted)
    outcomes = set()
    for kill_at in kill_points(log, 2 * AT_MOST, around=lambda write: write.endswith("/cluster.json")):
        where = f"lab init killed before write {kill_at} of {len(log)} ({log[kill_at - 1]})"
        shutil.rmtree(root)
        assert run_call_killed(init, kill_at, counted) == -signal.SIGKILL, where
        try:
            LabCluster.open(root, durable=False)
        except PhoneEmuError as exc:
            outcomes.add("refused")
            assert "a lab init that did not finish" in str(exc) and "Remove the folder" in str(exc), where
            with pytest.raises(PhoneEmuError, match="a lab init that did not finish"):
                LabCluster.check_new_root(root)
            continue
        outcomes.add("new")
        assert _outcome(_opened_whole(root, where), new, new, where) == "new"
    assert outcomes == {"refused", "new"}


def _as_copied(root: Path) -> dict[str, tuple[int, int, int, bytes | None]]:
    """Each entry under ``root`` (itself too): its type and mode, modification time, links and bytes (a
    file's)."""
    out = {}
    for path in (root, *root.rglob("*")):
        st = path.lstat()
        data = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
        links = st.st_nlink if data is not None else 0
        out[path.relative_to(root).as_posix()] = (st.st_mode, st.st_mtime_ns, links, data)
    return out


def test_a_copy_restored_is_what_a_fresh_copy_is(tmp_path: Path) -> None:
    """The copy each kill starts from (:func:`tests.killed_write_helpers.restore_copy`, in place of removing
    and copying the lab folder again): after what a killed operation may leave — a file rewritten (one with
    the same bytes, one with others at the same time), a mode changed, one removed, one added, a folder added
    and one removed, a file where a folder was, a hard link between two files of equal bytes, a symbolic
    link — the same names, kinds, modes, modification times, links and bytes as ``shutil.copytree`` makes."""
    source = tmp_path / "source"
    for name, data in {"a.pem": b"a", "b.key": b"b", "same1": b"=", "same2": b"=", "sub/c": b"c",
                       "sub/deep/d": b"d", "gone/e": b"e", "at-its-time": b"t"}.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(data)
    (source / "b.key").chmod(0o600)
    (source / "sub").chmod(0o750)
    os.utime(source / "same2", ns=(NOW * 10**9, NOW * 10**9))  # the link below the only difference
    os.utime(source / "same1", ns=(NOW * 10**9, NOW * 10**9))
    copy = tmp_path / "copy"
    restore_copy(source, copy)  # none yet: copied
    (copy / "a.pem").write_bytes(b"A")
    (copy / "sub" / "deep" / "d").write_bytes(b"d")  # its bytes again, at another time
    (copy / "at-its-time").write_bytes(b"T")  # other bytes, at the time it had
    os.utime(copy / "at-its-time", ns=(NOW * 10**9, (source / "at-its-time").stat().st_mtime_ns))
    (copy / "b.key").chmod(0o644)
    (copy / "sub" / "c").unlink()
    (copy / "sub" / ".c.staged").write_bytes(b"c2")
    (copy / "sub" / "deep" / "new").mkdir()
    (copy / "sub" / "deep" / "new" / "f").write_bytes(b"f")
    shutil.rmtree(copy / "gone")
    (copy / "gone").write_bytes(b"a file where a folder was")
    (copy / "same2").unlink()
    os.link(copy / "same1", copy / "same2")
    (copy / "link").symlink_to(copy / "sub")
    restore_copy(source, copy)
    fresh = tmp_path / "fresh"
    shutil.copytree(source, fresh)
    assert _as_copied(copy) == _as_copied(fresh)
